//! A sweep's plot (`sweep.svg`): for each swept setting, a panel of every
//! model's score against that setting's values, each value's mean joined
//! by a line, so one glance shows which way each setting pulls.

use std::io::Write;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{cannot_draw, write_atomically};
use crate::error::Result;

const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 360;
/// The models' points, and the line through each value's mean.
const POINTS: RGBColor = RGBColor(31, 119, 180);
const MEAN: RGBColor = RGBColor(255, 127, 14);
/// More values than this get fewer labels, so that they stay readable.
const MOST_LABELS: usize = 24;

/// One panel: a swept setting, its values in the order shown, and each
/// model's score at one of them (value index, score).
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPanel {
    /// The setting's name, e.g. "lr".
    pub setting: String,
    /// Its values as text, left to right.
    pub values: Vec<String>,
    /// (index into `values`, the model's score); non-finite scores are left out.
    pub points: Vec<(usize, f64)>,
}

/// Draws `panels` (one or more) stacked, their y axis `metric`, as an SVG at `svg`.
pub fn plot_sweep(svg: &Path, metric: &str, panels: &[SweepPanel]) -> Result<()> {
    let size = (WIDTH, PANEL_HEIGHT * panels.len().max(1) as u32);
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        draw(&root, metric, panels).map_err(|e| cannot_draw(svg, e))?;
    }
    write_atomically(svg, |file| file.write_all(text.as_bytes()))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    metric: &str,
    panels: &[SweepPanel],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    for (area, panel) in root.split_evenly((panels.len().max(1), 1)).iter().zip(panels) {
        draw_panel(area, metric, panel)?;
    }
    root.present()
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    metric: &str,
    panel: &SweepPanel,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let finite: Vec<(usize, f64)> = panel.points.iter().copied().filter(|(_, v)| v.is_finite()).collect();
    let low = finite.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let high = finite.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (low, high) = match (low.is_finite(), high > low) {
        (false, _) => (0.0, 1.0),
        (true, true) => (low - (high - low) * 0.05, high + (high - low) * 0.05),
        (true, false) => (low - low.abs().max(1e-3) * 0.05, low + low.abs().max(1e-3) * 0.05),
    };
    let count = panel.values.len() as i32;
    // A value's slot either side of the ends, so the outer points are not on the frame.
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{metric} by {}", panel.setting), ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-1..count, low..high)?;
    let label = |i: &i32| usize::try_from(*i).ok().and_then(|i| panel.values.get(i)).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .x_labels((panel.values.len() + 2).min(MOST_LABELS))
        .x_label_formatter(&label)
        .x_desc(panel.setting.as_str())
        .y_desc(metric)
        .label_style(("sans-serif", 14))
        .draw()?;
    chart.draw_series(finite.iter().map(|&(i, v)| Circle::new((i as i32, v), 3, POINTS.filled())))?;
    let means: Vec<(i32, f64)> = (0..panel.values.len())
        .filter_map(|i| {
            let at: Vec<f64> = finite.iter().filter(|p| p.0 == i).map(|p| p.1).collect();
            (!at.is_empty()).then(|| (i as i32, at.iter().sum::<f64>() / at.len() as f64))
        })
        .collect();
    chart.draw_series(LineSeries::new(means, MEAN.stroke_width(2)).point_size(4))?;
    Ok(())
}
