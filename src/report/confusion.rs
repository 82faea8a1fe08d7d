//! A classifier's confusion matrix as files: counts as CSV, and a heat map
//! as SVG whose cells are shaded by the share of their row (of the true
//! class), so a rare class's mistakes show as plainly as a common one's.

use std::io::Write;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{cannot_draw, write_atomically};
use crate::error::Result;
use crate::metrics::{class_names, ClassReport};

/// Above this many classes the cells are too small to hold their counts.
const MAX_COUNTED_CLASSES: usize = 30;
/// The side of the matrix in pixels, whatever the number of classes, for
/// cells between [`MIN_CELL`] and [`MAX_CELL`].
const GRID: u32 = 600;
const MIN_CELL: u32 = 8;
const MAX_CELL: u32 = 100;
/// Room for the title above the grid and the right edge; the figure is at
/// least as wide as the title.
const TOP: u32 = 60;
const RIGHT: u32 = 30;
const TITLE: &str = "confusion matrix (rows shaded by share)";
const MIN_WIDTH: u32 = 420;
/// An estimate of a character's width at [`TICK_SIZE`], for the layout: the
/// SVG leaves drawing the text to its viewer.
const TICK_SIZE: u32 = 14;
const TICK_CHAR_WIDTH: u32 = 8;
/// matplotlib's "Blues" ends: an empty share is near white, a whole row dark blue.
const EMPTY: (f64, f64, f64) = (247.0, 251.0, 255.0);
const FULL: (f64, f64, f64) = (8.0, 48.0, 107.0);

/// Writes the confusion matrix of `report` as CSV: a header
/// `true\predicted,<class>,...`, then one line per true class, its name and
/// its counts per predicted class. Classes are named by `names`, else by index.
pub fn write_confusion_csv(path: &Path, report: &ClassReport, names: Option<&[String]>) -> Result<()> {
    let labels = class_names(names, report.classes.len());
    let mut csv = csv::Writer::from_writer(Vec::new());
    let header = std::iter::once("true\\predicted".to_string()).chain(labels.iter().cloned());
    let rows = labels
        .iter()
        .zip(report.confusion.rows())
        .map(|(label, row)| std::iter::once(label.clone()).chain(row.iter().map(usize::to_string)).collect::<Vec<_>>());
    // Into memory, every record of the same length: nothing can fail.
    let in_memory = "a CSV of equal-length records written into memory";
    csv.write_record(header).expect(in_memory);
    for row in rows {
        csv.write_record(row).expect(in_memory);
    }
    let bytes = csv.into_inner().expect(in_memory);
    write_atomically(path, |file| file.write_all(&bytes))
}

/// Draws the confusion matrix of `report` as an SVG heat map at `svg`: true
/// classes down, predicted classes across, each cell shaded by its count's
/// share of the row and, up to 30 classes, holding the count. Classes are
/// named by `names`, else by index.
pub fn plot_confusion(svg: &Path, report: &ClassReport, names: Option<&[String]>) -> Result<()> {
    let labels = class_names(names, report.classes.len());
    let layout = Layout::new(&labels);
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, layout.size()).into_drawing_area();
        draw(&root, report, &labels, &layout).map_err(|e| cannot_draw(svg, e))?;
    }
    write_atomically(svg, |file| file.write_all(text.as_bytes()))
}

/// Where the grid sits, in pixels.
struct Layout {
    classes: u32,
    cell: u32,
    /// The grid's top left corner.
    left: u32,
    top: u32,
    /// Below the grid: the predicted classes' names and the axis title.
    bottom: u32,
    /// Whether the predicted classes' names run upwards, being too wide for
    /// their columns.
    upright_columns: bool,
}

impl Layout {
    fn new(labels: &[String]) -> Layout {
        let classes = labels.len().max(1) as u32;
        let cell = (GRID / classes).clamp(MIN_CELL, MAX_CELL);
        let widest = labels.iter().map(|l| l.chars().count() as u32).max().unwrap_or(1) * TICK_CHAR_WIDTH;
        let upright_columns = widest + 4 > cell;
        let below = if upright_columns { widest } else { TICK_SIZE };
        // Names, a gap, the axis title and a margin on either side of the grid.
        Layout { classes, cell, left: widest + 60, top: TOP, bottom: below + 60, upright_columns }
    }

    fn size(&self) -> (u32, u32) {
        let grid = self.cell * self.classes;
        ((self.left + grid + RIGHT).max(MIN_WIDTH), self.top + grid + self.bottom)
    }

    /// The top left corner of the cell of true class `row`, predicted `column`.
    fn corner(&self, row: usize, column: usize) -> (i32, i32) {
        ((self.left + column as u32 * self.cell) as i32, (self.top + row as u32 * self.cell) as i32)
    }
}

/// The colour of a cell holding `share` (0..=1) of its row.
fn shade(share: f64) -> RGBColor {
    let mix = |empty: f64, full: f64| (empty + (full - empty) * share).round() as u8;
    RGBColor(mix(EMPTY.0, FULL.0), mix(EMPTY.1, FULL.1), mix(EMPTY.2, FULL.2))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &ClassReport,
    labels: &[String],
    layout: &Layout,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (width, height) = layout.size();
    let centred =
        |size: u32| ("sans-serif", size).into_font().into_text_style(root).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw_text(TITLE, &centred(20), ((width / 2) as i32, (TOP / 2) as i32))?;

    let cell = layout.cell as i32;
    let count_size = (layout.cell * 2 / 5).clamp(8, 18);
    for (row, counts) in report.confusion.rows().into_iter().enumerate() {
        let total: usize = counts.sum();
        for (column, &count) in counts.iter().enumerate() {
            let share = if total == 0 { 0.0 } else { count as f64 / total as f64 };
            let (x, y) = layout.corner(row, column);
            root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], shade(share).filled()))?;
            if labels.len() <= MAX_COUNTED_CLASSES {
                let ink = if share > 0.5 { WHITE } else { BLACK };
                root.draw_text(&count.to_string(), &centred(count_size).color(&ink), (x + cell / 2, y + cell / 2))?;
            }
        }
    }
    let grid = (layout.cell * layout.classes) as i32;
    let (left, top) = (layout.left as i32, layout.top as i32);
    root.draw(&Rectangle::new([(left, top), (left + grid, top + grid)], BLACK.stroke_width(1)))?;

    // Tick names: true classes left of their rows, predicted ones below their columns.
    let tick = ("sans-serif", TICK_SIZE).into_font().into_text_style(root);
    for (c, label) in labels.iter().enumerate() {
        let (x, y) = layout.corner(c, c);
        root.draw_text(label, &tick.pos(Pos::new(HPos::Right, VPos::Center)), (left - 6, y + cell / 2))?;
        let below = (x + cell / 2, top + grid + 6);
        if layout.upright_columns {
            let upright = tick.transform(FontTransform::Rotate270).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw_text(label, &upright, below)?;
        } else {
            root.draw_text(label, &tick.pos(Pos::new(HPos::Center, VPos::Top)), below)?;
        }
    }
    root.draw_text("predicted", &centred(16), (left + grid / 2, height as i32 - 20))?;
    let upright = centred(16).transform(FontTransform::Rotate270);
    root.draw_text("true", &upright, (18, top + grid / 2))?;
    root.present()
}
