//! A per-group (fairness) report as files: one CSV row per group (and
//! class), and a grouped bar chart as SVG, one cluster of bars per metric
//! and one bar per group, with the gaps written under it.

use std::io::Write;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{cannot_draw, write_atomically};
use crate::error::Result;
use crate::fairness::FairnessReport;

/// The header of a classification's `fairness.csv`.
pub const FAIRNESS_CSV_CLASSES: [&str; 7] =
    ["group", "class", "rows", "accuracy", "selection_rate", "true_positive_rate", "false_positive_rate"];

/// The header of a regression's `fairness.csv`.
pub const FAIRNESS_CSV_REGRESSION: [&str; 4] = ["group", "rows", "mse", "mae"];

/// Writes `report` as CSV: for a classification, under
/// [`FAIRNESS_CSV_CLASSES`], one row per group and class rated (the
/// positive class 1 of a binary task, each class of a multi-class one),
/// the group's rows and accuracy on each; for a regression, under
/// [`FAIRNESS_CSV_REGRESSION`], one row per group. A group with no rows
/// has one row, its metrics empty.
pub fn write_fairness_csv(path: &Path, report: &FairnessReport) -> Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    let in_memory = "a CSV of equal-length records written into memory";
    let value = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
    match report.classes {
        Some(_) => {
            csv.write_record(FAIRNESS_CSV_CLASSES).expect(in_memory);
            for g in &report.groups {
                if g.rates.is_empty() {
                    let record = [g.group.clone(), String::new(), g.rows.to_string(), value(g.accuracy)];
                    csv.write_record(record.into_iter().chain(std::iter::repeat_n(String::new(), 3))).expect(in_memory);
                }
                for r in &g.rates {
                    let record = [
                        g.group.clone(),
                        r.class.to_string(),
                        g.rows.to_string(),
                        value(g.accuracy),
                        r.selection_rate.to_string(),
                        r.true_positive_rate.to_string(),
                        r.false_positive_rate.to_string(),
                    ];
                    csv.write_record(record).expect(in_memory);
                }
            }
        }
        None => {
            csv.write_record(FAIRNESS_CSV_REGRESSION).expect(in_memory);
            for g in &report.groups {
                csv.write_record([g.group.clone(), g.rows.to_string(), value(g.mse), value(g.mae)]).expect(in_memory);
            }
        }
    }
    let bytes = csv.into_inner().expect(in_memory);
    write_atomically(path, |file| file.write_all(&bytes))
}

/// matplotlib's "tab10", one colour per group (repeating past ten).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const PLOT_HEIGHT: u32 = 360;
const TOP: u32 = 60;
const LEFT: u32 = 70;
const BAR: u32 = 22;
const CLUSTER_GAP: u32 = 24;
/// Below the plot: the metrics' names, then the lines of gaps.
const BELOW: u32 = 50;
const LINE: u32 = 20;
/// An estimate of a character's width at 14 px, for the legend's width.
const CHAR_WIDTH: u32 = 8;
const MIN_PLOT_WIDTH: u32 = 360;

/// Draws `report` as an SVG grouped bar chart at `svg`: a cluster per
/// metric (accuracy, then each rated class's selection rate, true and
/// false positive rates; or MSE and MAE), a bar per group with rows, a
/// legend of the groups (noting those with none), and the gaps below;
/// `by` names the group columns in the title.
pub fn plot_fairness(svg: &Path, report: &FairnessReport, by: &str) -> Result<()> {
    let chart = Chart::new(report);
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, chart.size()).into_drawing_area();
        chart.draw(&root, report, by).map_err(|e| cannot_draw(svg, e))?;
    }
    write_atomically(svg, |file| file.write_all(text.as_bytes()))
}

/// The bars to draw: each metric's name, and its value per group with rows.
struct Chart {
    metrics: Vec<(String, Vec<f64>)>,
    /// The groups with rows, in the report's order.
    groups: Vec<String>,
    /// The top of the value axis.
    top: f64,
    legend_width: u32,
    gap_lines: Vec<String>,
}

impl Chart {
    fn new(report: &FairnessReport) -> Chart {
        let counted: Vec<_> = report.groups.iter().filter(|g| g.rows > 0).collect();
        let mut metrics: Vec<(String, Vec<f64>)> = Vec::new();
        match report.classes {
            Some(classes) => {
                metrics.push(("accuracy".into(), counted.iter().map(|g| g.accuracy.unwrap_or(0.0)).collect()));
                let rated = crate::fairness::rated_classes(classes);
                for (k, class) in rated.iter().enumerate() {
                    let suffix = if classes == 2 { String::new() } else { format!(" {class}") };
                    let rates = |pick: fn(&crate::fairness::ClassRates) -> f64| -> Vec<f64> {
                        counted.iter().map(|g| g.rates.get(k).map_or(0.0, pick)).collect()
                    };
                    metrics.push((format!("selection{suffix}"), rates(|r| r.selection_rate)));
                    metrics.push((format!("TPR{suffix}"), rates(|r| r.true_positive_rate)));
                    metrics.push((format!("FPR{suffix}"), rates(|r| r.false_positive_rate)));
                }
            }
            None => {
                metrics.push(("MSE".into(), counted.iter().map(|g| g.mse.unwrap_or(0.0)).collect()));
                metrics.push(("MAE".into(), counted.iter().map(|g| g.mae.unwrap_or(0.0)).collect()));
            }
        }
        let highest = metrics.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite()).fold(0.0, f64::max);
        let top = match report.classes {
            Some(_) => 1.0,
            None if highest > 0.0 => highest * 1.1,
            None => 1.0,
        };
        let labels =
            report.groups.iter().map(|g| if g.rows == 0 { format!("{} (no rows)", g.group) } else { g.group.clone() });
        let legend_width = labels.map(|l| l.chars().count() as u32).max().unwrap_or(0) * CHAR_WIDTH + 50;
        let gap_lines = gap_lines(report);
        Chart { metrics, groups: counted.iter().map(|g| g.group.clone()).collect(), top, legend_width, gap_lines }
    }

    fn cluster_width(&self) -> u32 {
        self.groups.len().max(1) as u32 * BAR + CLUSTER_GAP
    }

    fn plot_width(&self) -> u32 {
        (self.metrics.len() as u32 * self.cluster_width()).max(MIN_PLOT_WIDTH)
    }

    fn size(&self) -> (u32, u32) {
        let longest = self.gap_lines.iter().map(|l| l.chars().count() as u32).max().unwrap_or(0) * 7 + 2 * LEFT / 2;
        let width = (LEFT + self.plot_width() + self.legend_width + 20).max(longest);
        (width, TOP + PLOT_HEIGHT + BELOW + LINE * self.gap_lines.len() as u32 + 10)
    }

    /// The height in pixels of `value` above the axis.
    fn y(&self, value: f64) -> i32 {
        let share = (value / self.top).clamp(0.0, 1.0);
        (TOP + PLOT_HEIGHT) as i32 - (share * PLOT_HEIGHT as f64).round() as i32
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        report: &FairnessReport,
        by: &str,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let (width, _) = self.size();
        let font = |size: u32| ("sans-serif", size).into_font().into_text_style(root);
        let centred = |size: u32| font(size).pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text(&format!("per group of {by}"), &centred(20), ((width / 2) as i32, (TOP / 2) as i32))?;

        // The value axis: ticks at fifths of its height, with light grid lines.
        let (left, right) = (LEFT as i32, (LEFT + self.plot_width()) as i32);
        for tick in 0..=5 {
            let value = self.top * f64::from(tick) / 5.0;
            let y = self.y(value);
            root.draw(&PathElement::new(vec![(left, y), (right, y)], RGBColor(225, 225, 225)))?;
            let label = if self.top == 1.0 { format!("{value:.1}") } else { format!("{value:.3}") };
            root.draw_text(&label, &font(12).pos(Pos::new(HPos::Right, VPos::Center)), (left - 6, y))?;
        }
        let bottom = self.y(0.0);
        root.draw(&PathElement::new(vec![(left, TOP as i32), (left, bottom), (right, bottom)], BLACK))?;

        // The clusters share the plot's width, each its bars centred.
        let cluster = (self.plot_width() / self.metrics.len().max(1) as u32) as i32;
        let bars = (self.groups.len() as u32 * BAR) as i32;
        for (m, (name, values)) in self.metrics.iter().enumerate() {
            let start = left + m as i32 * cluster + (cluster - bars) / 2;
            for (g, &value) in values.iter().enumerate() {
                let x = start + g as i32 * BAR as i32;
                let colour = PALETTE[g % PALETTE.len()];
                root.draw(&Rectangle::new([(x, self.y(value)), (x + BAR as i32 - 2, bottom)], colour.filled()))?;
            }
            let middle = left + m as i32 * cluster + cluster / 2;
            root.draw_text(name, &font(13).pos(Pos::new(HPos::Center, VPos::Top)), (middle, bottom + 8))?;
        }

        // The legend: every group, those without rows marked and unbarred.
        let legend_x = right + 20;
        let mut counted = 0;
        for (row, g) in report.groups.iter().enumerate() {
            let y = TOP as i32 + row as i32 * LINE as i32;
            let label = if g.rows == 0 {
                format!("{} (no rows)", g.group)
            } else {
                let colour = PALETTE[counted % PALETTE.len()];
                counted += 1;
                root.draw(&Rectangle::new([(legend_x, y), (legend_x + 14, y + 14)], colour.filled()))?;
                g.group.clone()
            };
            root.draw_text(&label, &font(14).pos(Pos::new(HPos::Left, VPos::Top)), (legend_x + 20, y))?;
        }

        for (k, line) in self.gap_lines.iter().enumerate() {
            let y = bottom + BELOW as i32 + k as i32 * LINE as i32;
            root.draw_text(line, &font(13).pos(Pos::new(HPos::Left, VPos::Center)), (LEFT as i32 / 2, y))?;
        }
        root.present()
    }
}

/// The gaps as lines of text under the chart.
fn gap_lines(report: &FairnessReport) -> Vec<String> {
    let gaps = &report.gaps;
    let ratio = |r: Option<f64>| r.map_or_else(|| "undefined".to_string(), |r| format!("{r:.4}"));
    let mut lines: Vec<String> = gaps
        .classes
        .iter()
        .map(|c| {
            let class = if report.classes == Some(2) { String::new() } else { format!("class {}: ", c.class) };
            format!(
                "{class}demographic parity difference {:.4}, ratio {}; equalized odds difference {:.4}",
                c.demographic_parity_difference,
                ratio(c.demographic_parity_ratio),
                c.equalized_odds_difference
            )
        })
        .collect();
    if let (Some(mse), Some(mae)) = (gaps.mse_difference, gaps.mae_difference) {
        lines.push(format!("MSE difference {mse:.6}, MAE difference {mae:.6}"));
    }
    if !gaps.left_out.is_empty() {
        lines.push(format!("left out of the gaps, having no rows: {}", gaps.left_out.join(", ")));
    }
    lines
}
