//! The chart, drawn the same way on any plotters backend: the SVG and the PNG
//! differ only in how their text is measured and drawn.

use std::ops::Range;

use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::MetricsRow;
use crate::train::EpochMetrics;

/// Train is always blue and validation always orange (matplotlib's first two
/// colours), in both panels, so one legend reading carries over.
const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VAL: RGBColor = RGBColor(255, 127, 14);
/// Above this many read-backs the markers would hide the line; below it they show
/// where the read-backs were, and make a single epoch visible at all.
const MAX_MARKED_POINTS: usize = 50;
const WIDTH: u32 = 960;
const PANEL_HEIGHT: u32 = 480;

/// One line of a panel: its legend name and its points (epoch, value).
struct Series {
    name: &'static str,
    color: RGBColor,
    points: Vec<(i64, f64)>,
}

/// The points where `value` was measured and finite: a run that stopped on a
/// NaN loss must still plot the epochs before it.
fn series(name: &'static str, color: RGBColor, rows: &[MetricsRow], value: fn(&EpochMetrics) -> Option<f32>) -> Series {
    let points = rows
        .iter()
        .filter_map(|row| value(&row.metrics).map(|v| (row.epoch as i64, f64::from(v))))
        .filter(|(_, v)| v.is_finite())
        .collect();
    Series { name, color, points }
}

fn accuracy_series(rows: &[MetricsRow]) -> [Series; 2] {
    [
        series("train accuracy", TRAIN, rows, |m| m.train_accuracy),
        series("validation accuracy", VAL, rows, |m| m.val_accuracy),
    ]
}

/// Pixels of the whole figure: the loss panel, and the accuracy panel below it
/// when the run measured any accuracy.
pub(super) fn figure_size(rows: &[MetricsRow]) -> (u32, u32) {
    let panels = if accuracy_series(rows).iter().any(|s| !s.points.is_empty()) { 2 } else { 1 };
    (WIDTH, PANEL_HEIGHT * panels)
}

/// Draws the figure of `rows` (at least one) on `root`, sized by
/// [`figure_size`], with `best_epoch` marked on every panel where given.
pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[MetricsRow],
    best_epoch: Option<usize>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let epochs = epoch_range(rows);
    let marker = if rows.len() <= MAX_MARKED_POINTS { 3 } else { 0 };
    let best = best_epoch.map(|e| e as i64).filter(|e| epochs.contains(e) || *e == epochs.end);
    let losses = [
        series("train loss", TRAIN, rows, |m| Some(m.train_loss)),
        series("validation loss", VAL, rows, |m| m.val_loss),
    ];
    let loss = Panel {
        what: "loss",
        lines: &losses,
        axis: loss_axis(&losses),
        legend_at: SeriesLabelPosition::UpperRight,
        best,
    };
    let accuracies = accuracy_series(rows);
    if accuracies.iter().any(|s| !s.points.is_empty()) {
        let axis = accuracy_axis(&accuracies);
        let accuracy =
            Panel { what: "accuracy", lines: &accuracies, axis, legend_at: SeriesLabelPosition::LowerRight, best };
        // One label width for both, so the epochs line up from panel to panel.
        let label_width = loss.label_width().max(accuracy.label_width());
        let (top, bottom) = root.split_vertically(PANEL_HEIGHT);
        loss.draw(&top, epochs.clone(), marker, label_width)?;
        accuracy.draw(&bottom, epochs, marker, label_width)?;
    } else {
        loss.draw(root, epochs, marker, loss.label_width())?;
    }
    root.present()
}

/// How values map to the height of a panel.
enum Axis {
    Linear(Range<f64>),
    /// For values > 0 spanning many decades, e.g. a loss that starts in the
    /// thousands on unscaled data and ends near zero: on a linear axis all but
    /// the first epochs would lie flat on the bottom.
    Log(Range<f64>),
}

/// Decades of loss above which the axis turns logarithmic.
const LOG_AXIS_DECADES: f64 = 2.0;

/// From the lowest to the highest finite loss with a 5% margin, so the end of
/// a converging curve keeps its detail; a flat or empty series gets a small
/// band around its value instead of a zero-height range.
fn loss_axis(lines: &[Series]) -> Axis {
    let values = || lines.iter().flat_map(|line| line.points.iter().map(|&(_, v)| v));
    let low = values().fold(f64::INFINITY, f64::min);
    let high = values().fold(f64::NEG_INFINITY, f64::max);
    if !(low.is_finite() && high.is_finite()) {
        return Axis::Linear(0.0..1.0);
    }
    if low > 0.0 && (high / low).log10() > LOG_AXIS_DECADES {
        return Axis::Log(low / 1.2..high * 1.2);
    }
    let margin = if high > low { (high - low) * 0.05 } else { (high.abs() * 0.05).max(1e-3) };
    Axis::Linear(low - margin..high + margin)
}

/// The accuracies' own range with a 5% margin, within 0..1: a run between
/// 0.85 and 0.9 would lie flat on a 0..1 axis.
fn accuracy_axis(lines: &[Series]) -> Axis {
    let values = || lines.iter().flat_map(|line| line.points.iter().map(|&(_, v)| v));
    let low = values().fold(f64::INFINITY, f64::min);
    let high = values().fold(f64::NEG_INFINITY, f64::max);
    if !(low.is_finite() && high.is_finite()) {
        return Axis::Linear(0.0..1.0);
    }
    let margin = ((high - low) * 0.05).max(0.005);
    Axis::Linear((low - margin).max(0.0)..(high + margin).min(1.0))
}

/// One chart: a quantity's train and validation lines against the epochs,
/// and the best epoch marked, where there is one.
struct Panel<'a> {
    what: &'static str,
    lines: &'a [Series],
    axis: Axis,
    legend_at: SeriesLabelPosition,
    best: Option<i64>,
}

impl Panel<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        epochs: Range<i64>,
        marker: u32,
        label_width: u32,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let axes = Axes { epochs, marker, label_width };
        match &self.axis {
            Axis::Linear(range) => self.draw_on(area, axes, range.clone(), &linear_labels(range)),
            Axis::Log(range) => self.draw_on(area, axes, range.clone().log_scale(), &log_label),
        }
    }

    /// Room for the longest tick label plus the axis title, in pixels: labels
    /// like 0.00012305 need more than labels like 0.5.
    fn label_width(&self) -> u32 {
        let longest = match &self.axis {
            Axis::Linear(range) => longest_label(&RangedCoordf64::from(range.clone()), &linear_labels(range)),
            Axis::Log(range) => longest_label(&LogCoord::from(range.clone().log_scale()), &log_label),
        };
        40 + 9 * longest as u32
    }

    fn draw_on<DB: DrawingBackend, Y>(
        &self,
        area: &DrawingArea<DB, Shift>,
        Axes { epochs, marker, label_width }: Axes,
        values: Y,
        label: &dyn Fn(&f64) -> String,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{} per epoch", self.what), ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(label_width)
            .build_cartesian_2d(epochs, values)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(self.what)
            .y_label_formatter(label)
            .label_style(("sans-serif", 15))
            .draw()?;
        let mut labelled = false;
        for line in self.lines.iter().filter(|line| !line.points.is_empty()) {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)).point_size(marker))?
                .label(line.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2)));
            labelled = true;
        }
        if let Some(best) = self.best {
            // A dashed grey line at the kept epoch, from the bottom of the axis to the top.
            let (bottom, top) = (chart.y_range().start, chart.y_range().end);
            let grey = RGBColor(110, 110, 110);
            chart
                .draw_series(DashedLineSeries::new([(best, bottom), (best, top)], 6, 4, grey.stroke_width(2)))?
                .label(format!("best epoch {best}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], grey.stroke_width(2)));
            labelled = true;
        }
        // plotters draws an empty legend box when no series has a label.
        if labelled {
            chart
                .configure_series_labels()
                .position(self.legend_at.clone())
                .label_font(("sans-serif", 15))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
        Ok(())
    }
}

/// What the panels of one figure share.
struct Axes {
    epochs: Range<i64>,
    marker: u32,
    label_width: u32,
}

/// plotters' default number of tick labels on the y axis, kept.
const Y_LABELS: usize = 10;

/// Characters in the longest tick label plotters will put on `axis`.
fn longest_label<Y: Ranged<ValueType = f64>>(axis: &Y, label: &dyn Fn(&f64) -> String) -> usize {
    axis.key_points(Y_LABELS).iter().map(|v| label(v).chars().count()).max().unwrap_or(4)
}

/// Labels with as many decimals as the tick spacing needs, the same for every
/// tick; scientific when that would be long (very large or very small values).
fn linear_labels(range: &Range<f64>) -> impl Fn(&f64) -> String {
    let step = (range.end - range.start) / Y_LABELS as f64;
    let largest = range.start.abs().max(range.end.abs());
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let digits = ((largest.log10().floor() - step.log10().floor()) as usize + 1).clamp(1, 8);
    let scientific = largest >= 1e6 || decimals > 6;
    move |&value| {
        // A tick a rounding error away from zero would print as -0.00.
        let value = if value.abs() < step / 2.0 { 0.0 } else { value };
        if scientific {
            format!("{value:.*e}", digits - 1)
        } else {
            format!("{value:.decimals$}")
        }
    }
}

/// Three significant digits, trailing zeros dropped: 0.001, 0.25, 2000.
fn log_label(value: &f64) -> String {
    let magnitude = value.abs().log10().floor();
    if !(-4.0..6.0).contains(&magnitude) {
        return format!("{value:.2e}");
    }
    let text = format!("{value:.*}", (2.0 - magnitude).max(0.0) as usize);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The epochs on the x axis; one epoch gets a unit either side so its point
/// sits mid-axis instead of on a zero-width range.
fn epoch_range(rows: &[MetricsRow]) -> Range<i64> {
    let first = rows.iter().map(|row| row.epoch as i64).min().unwrap_or(0);
    let last = rows.iter().map(|row| row.epoch as i64).max().unwrap_or(0);
    if first == last {
        first - 1..last + 1
    } else {
        first..last
    }
}
