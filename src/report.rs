//! What a training run leaves in its run folder besides the checkpoint: the
//! metrics of every read-back as CSV, and a plot of them as SVG (always) and
//! PNG (when a TrueType font can be found to draw its text); and a
//! classifier's confusion matrix as CSV and SVG; and a per-group (fairness)
//! report as CSV and SVG. Every file is
//! written through [`write_atomically`], so a crash leaves either the previous
//! file or the new one, never half of one.

mod chart;
mod confusion;
mod fairness;
mod raster;
mod sweep;

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use plotters::prelude::{IntoDrawingArea, SVGBackend};

use crate::error::{Error, Result};
use crate::metrics::OutputScores;
use crate::train::EpochMetrics;

pub use confusion::{plot_confusion, write_confusion_csv};
pub use fairness::{plot_fairness, write_fairness_csv, FAIRNESS_CSV_CLASSES, FAIRNESS_CSV_REGRESSION};
pub use raster::{default_font_dirs, find_font};
pub use sweep::{plot_sweep, SweepPanel};

/// The first line of the metrics CSV, in the order of the fields of each row.
pub const METRICS_CSV_HEADER: [&str; 11] = [
    "epoch",
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "val_mae",
    "val_rmse",
    "val_r2",
    "lr",
    "epsilon",
    "seconds",
];

/// The columns run folders had before under other names: the held-out
/// columns were the test set's before validation sets. Older headers also
/// lack `lr`, `epsilon` and the validation errors; columns are read by name,
/// so those folders resume.
const OLD_COLUMN_NAMES: [(&str, &str); 2] = [("test_loss", "val_loss"), ("test_accuracy", "val_accuracy")];

/// One read-back of the metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsRow {
    /// Counted from the start of the first run, so a resumed run continues it.
    pub epoch: usize,
    /// The losses (and accuracies, where measured) of that epoch.
    pub metrics: EpochMetrics,
    /// The learning rate of the epoch's first step, where the run recorded it.
    pub lr: Option<f32>,
    /// With DP-SGD, the privacy spent after the epoch: epsilon at the run's delta.
    pub epsilon: Option<f64>,
    /// Wall time since training started when this epoch's metrics were read back.
    pub seconds: f64,
}

/// The per-output columns that follow [`METRICS_CSV_HEADER`] for a
/// regression with held-out rows: `val_mae_0,val_rmse_0,val_r2_0,...` for
/// `outputs` outputs.
fn output_columns(outputs: usize) -> Vec<String> {
    (0..outputs).flat_map(|c| OUTPUT_SCORES.map(|name| format!("{name}_{c}"))).collect()
}

/// The per-output columns' names before their output's index.
const OUTPUT_SCORES: [&str; 3] = ["val_mae", "val_rmse", "val_r2"];

/// How many outputs' columns a metrics CSV of `rows` has: those of the first
/// row's per-output validation errors (0 without them).
pub fn metrics_outputs(rows: &[MetricsRow]) -> usize {
    rows.first().map_or(0, |row| row.metrics.outputs_scored())
}

/// Writes `rows` as CSV under [`METRICS_CSV_HEADER`] and `outputs` outputs'
/// validation errors; a value the run did not measure (no test set, not a
/// classifier) is an empty field.
pub fn write_metrics_csv(path: &Path, rows: &[MetricsRow], outputs: usize) -> Result<()> {
    let mut header: Vec<String> = METRICS_CSV_HEADER.iter().map(|h| h.to_string()).collect();
    header.extend(output_columns(outputs));
    let mut text = header.join(",");
    text.push('\n');
    let text = [text.into_bytes(), metrics_csv_lines(rows, outputs)].concat();
    write_atomically(path, |file| file.write_all(&text))
}

/// Appends `rows` to the metrics CSV at `path`, which [`write_metrics_csv`]
/// started: a run's read-backs cost their own rows, not the whole file again.
/// The rows go in one write and are synced, so a crash leaves at most a last
/// line without its newline, which [`read_metrics_csv`] drops.
pub fn append_metrics_csv(path: &Path, rows: &[MetricsRow], outputs: usize) -> Result<()> {
    let context = || format!("cannot write {}", path.display());
    let text = metrics_csv_lines(rows, outputs);
    // Append follows a symlink and writes into a FIFO or device without
    // replacing it, as write_atomically does.
    let mut file = OpenOptions::new().append(true).open(path).map_err(|e| Error::io(context(), e))?;
    let write_failed = |source: io::Error| Error::Io { context: context(), source };
    file.write_all(&text).map_err(write_failed)?;
    if file.metadata().is_ok_and(|meta| meta.is_file()) {
        file.sync_data().map_err(write_failed)?;
    }
    Ok(())
}

/// Reads the metrics CSV at `path`. A last line without its newline is what
/// a crash during [`append_metrics_csv`] leaves: it is dropped, not an error.
pub fn read_metrics_csv(path: &Path) -> Result<Vec<MetricsRow>> {
    let bad = |why: String| Error::InvalidInput(format!("cannot read the metrics in {}: {why}", path.display()));
    let text = std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |last| last + 1);
    let mut reader = csv::Reader::from_reader(&text[..whole]);
    let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let column = |name: &str| {
        header.iter().position(|h| h == name || OLD_COLUMN_NAMES.iter().any(|&(old, new)| new == name && h == old))
    };
    let columns = METRICS_CSV_HEADER.map(column);
    // val_mae_0, val_rmse_0, val_r2_0, ...: (score, output) of each per-output column.
    let output_column = |h: &str| {
        OUTPUT_SCORES.iter().enumerate().find_map(|(score, name)| {
            let index = h.strip_prefix(name)?.strip_prefix('_')?;
            index.bytes().all(|b| b.is_ascii_digit()).then(|| index.parse::<usize>().ok()).flatten().map(|c| (score, c))
        })
    };
    let known = |h: &str| {
        METRICS_CSV_HEADER.contains(&h)
            || OLD_COLUMN_NAMES.iter().any(|&(old, _)| old == h)
            || output_column(h).is_some()
    };
    let per_output: Vec<(usize, (usize, usize))> =
        header.iter().enumerate().filter_map(|(at, h)| output_column(h).map(|which| (at, which))).collect();
    let outputs = per_output.iter().map(|&(_, (_, c))| c + 1).max().unwrap_or(0);
    let [epoch_at, loss_at, .., seconds_at] = columns;
    if whole > 0 && (epoch_at.is_none() || loss_at.is_none() || seconds_at.is_none() || !header.iter().all(known)) {
        return Err(bad(format!("the header is not {}", METRICS_CSV_HEADER.join(","))));
    }
    let [epoch_at, loss_at, val_loss_at, train_accuracy_at, val_accuracy_at, mae_at, rmse_at, r2_at, lr_at, epsilon_at, seconds_at] =
        columns.map(|c| c.unwrap_or(usize::MAX));
    reader
        .records()
        .map(|record| {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let line = record.position().map_or(0, |p| p.line());
            let field = |i: usize| record.get(i).unwrap_or_default();
            let not_a_number = |i: usize| bad(format!("line {line}: {:?} is not a number", field(i)));
            // Parsed as the type written, so the value comes back bit for bit.
            let number = |i: usize| field(i).parse::<f32>().map_err(|_| not_a_number(i));
            let optional = |i: usize| (!field(i).is_empty()).then(|| number(i)).transpose();
            let epoch = field(epoch_at)
                .parse()
                .map_err(|_| bad(format!("line {line}: {:?} is not an epoch", field(epoch_at))))?;
            let metrics = EpochMetrics {
                train_loss: number(loss_at)?,
                val_loss: optional(val_loss_at)?,
                train_accuracy: optional(train_accuracy_at)?,
                val_accuracy: optional(val_accuracy_at)?,
                val_mae: optional(mae_at)?,
                val_rmse: optional(rmse_at)?,
                val_r2: optional(r2_at)?,
                val_outputs: None,
            };
            // Each output's errors, where the row has them.
            let mut scores = vec![[None; 3]; outputs];
            for &(at, (score, c)) in &per_output {
                if !field(at).is_empty() {
                    scores[c][score] = Some(field(at).parse::<f64>().map_err(|_| not_a_number(at))?);
                }
            }
            let whole: Option<Vec<OutputScores>> = scores
                .iter()
                .map(|[mae, rmse, r2]| Some(OutputScores { mae: (*mae)?, rmse: (*rmse)?, r2: (*r2)? }))
                .collect();
            let metrics = EpochMetrics { val_outputs: whole.filter(|w| !w.is_empty()), ..metrics };
            let epsilon = (!field(epsilon_at).is_empty())
                .then(|| field(epsilon_at).parse::<f64>().map_err(|_| not_a_number(epsilon_at)))
                .transpose()?;
            let seconds = field(seconds_at).parse::<f64>().map_err(|_| not_a_number(seconds_at))?;
            Ok(MetricsRow { epoch, metrics, lr: optional(lr_at)?, epsilon, seconds })
        })
        .collect()
}

/// `rows` as CSV lines, each ending in a newline. Display of f32 and f64 is
/// the shortest text that parses back to the same value, so the file
/// round-trips exactly.
fn metrics_csv_lines(rows: &[MetricsRow], outputs: usize) -> Vec<u8> {
    let optional = |value: Option<f32>| value.map(|v| v.to_string()).unwrap_or_default();
    let mut text = String::new();
    for row in rows {
        let metrics = &row.metrics;
        let mut fields = vec![
            row.epoch.to_string(),
            metrics.train_loss.to_string(),
            optional(metrics.val_loss),
            optional(metrics.train_accuracy),
            optional(metrics.val_accuracy),
            optional(metrics.val_mae),
            optional(metrics.val_rmse),
            optional(metrics.val_r2),
            optional(row.lr),
            row.epsilon.map(|e| e.to_string()).unwrap_or_default(),
            row.seconds.to_string(),
        ];
        for c in 0..outputs {
            let scores = metrics.val_outputs.as_ref().and_then(|o| o.get(c));
            fields.extend(match scores {
                Some(o) => [o.mae, o.rmse, o.r2].map(|v| v.to_string()),
                None => [(); 3].map(|_| String::new()),
            });
        }
        // Numbers and empty fields: nothing a CSV would quote.
        text += &fields.join(",");
        text.push('\n');
    }
    text.into_bytes()
}

/// Tells temporary files of one process apart when two threads write the same target.
static TEMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Writes `path` through `write`. What is at `path` decides how:
///
/// - nothing, or a regular file: `write` fills a temporary file in the same
///   folder, synced to disk and then renamed over `path`. A rename within one
///   file system is atomic, so readers and crashes see the old file or the new
///   one, whole. If `write` fails (or panics) the temporary file is removed
///   and `path` is untouched.
/// - a symlink: followed (through every link, to at most [`MAX_LINKS`]), and
///   its target written by these same rules; the link itself is kept, since
///   the user pointed it somewhere on purpose. A dangling link creates its
///   target.
/// - a FIFO, a character or block device, a socket: opened for writing,
///   without creating or truncating, and written straight into; it is never
///   replaced (as root, a rename over `/dev/null` would replace the device).
///   Opening a FIFO waits until a reader opens the other end. Such a write is
///   not atomic: there is no file to swap in.
/// - a folder: refused, [`Error::InvalidInput`].
pub fn write_atomically(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let context = || format!("cannot write {}", path.display());
    // Creating and renaming fail on a wrong path (a missing folder, a folder
    // in the file's place): the user's to fix. Once the file is open, a failed
    // write or sync is the machine's (disk full), whatever its kind.
    let path_failed = |e: io::Error| Error::io(context(), e);
    let write_failed = |source: io::Error| Error::Io { context: context(), source };
    // What the path finally opens, as the kernel resolves it: a pipe or a
    // terminal behind /dev/stdout (a link to /proc/self/fd/1, whose target
    // names no file) is written straight into through the path itself.
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() && !meta.is_dir() {
            let mut file = OpenOptions::new().write(true).open(path).map_err(path_failed)?;
            return write(&mut file).map_err(write_failed);
        }
    }
    let target = follow_links(path).map_err(|e| match e {
        Followed::TooMany => Error::InvalidInput(format!("{}: more than {MAX_LINKS} symlinks in a row", context())),
        Followed::Failed(e) => path_failed(e),
    })?;
    match std::fs::symlink_metadata(&target) {
        Ok(meta) if meta.is_dir() => {
            return Err(Error::InvalidInput(format!("{}: it is a folder, not a file", context())));
        }
        Ok(meta) if !meta.is_file() => {
            let mut file = OpenOptions::new().write(true).open(&target).map_err(path_failed)?;
            // No sync: a FIFO or a terminal refuses one (EINVAL), and there is
            // no rename whose durability it would guard.
            return write(&mut file).map_err(write_failed);
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(path_failed(e)),
    }

    let name = target
        .file_name()
        .ok_or_else(|| Error::InvalidInput(format!("{}: the path does not name a file", context())))?;
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    // Hidden, and named after the target so a leftover says where it came from;
    // the pid and sequence keep concurrent writers off each other's file.
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".tmp-{}-{}", std::process::id(), TEMP_SEQUENCE.fetch_add(1, Ordering::Relaxed)));
    let mut temp = TempFile { path: folder.join(temp_name), armed: true };

    let mut file = File::create(&temp.path).map_err(path_failed)?;
    write(&mut file).map_err(write_failed)?;
    // Without the sync, a crash soon after the rename can leave the new name
    // pointing at blocks that never reached the disk.
    file.sync_all().map_err(write_failed)?;
    drop(file);
    std::fs::rename(&temp.path, &target).map_err(path_failed)?;
    temp.armed = false;
    sync_folder(folder);
    Ok(())
}

/// How many symlinks in a row [`write_atomically`] follows: Linux's own limit
/// (ELOOP after 40), so a path that opens elsewhere is written here too.
pub const MAX_LINKS: usize = 40;

enum Followed {
    TooMany,
    Failed(io::Error),
}

/// `path` with its last component's symlinks followed: the file a write to
/// `path` lands in, which may not exist yet (a dangling link, a new file).
/// Folders above it may be links too; the kernel follows those, and the
/// temporary file beside the target is then on the target's file system.
fn follow_links(path: &Path) -> std::result::Result<PathBuf, Followed> {
    let mut path = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&path).map_err(Followed::Failed)?;
                // A relative link is relative to the link's folder; joining
                // an absolute one replaces the folder.
                path = match path.parent() {
                    Some(folder) => folder.join(link),
                    None => link,
                };
            }
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path),
            Err(e) => return Err(Followed::Failed(e)),
        }
    }
    Err(Followed::TooMany)
}

/// Removes the temporary file when dropped: on an error or a panic in the
/// caller's closure. Disarmed once the rename has consumed it.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Makes the rename itself durable. Best effort: some file systems refuse to
/// sync a folder, and the file is complete under one name or the other anyway.
fn sync_folder(folder: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = File::open(folder) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = folder;
}

/// What [`plot_losses`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlotWritten {
    /// False only when there was nothing to plot.
    pub svg: bool,
    /// Whether the PNG was written; when asked for but not, `png_skipped_because` says why.
    pub png: bool,
    /// The font the PNG's text was drawn with.
    pub png_font: Option<PathBuf>,
    /// Why the PNG asked for was not written: no epochs (then no SVG either),
    /// or no font. None when everything asked for was written. Reads after
    /// "no loss.png: ".
    pub png_skipped_because: Option<String>,
}

/// Plots the losses per epoch, train and test, and below them the accuracies
/// when the run measured any, as an SVG at `svg` and, given `png`, a PNG when a
/// font is found in [`default_font_dirs`]. No rows write nothing; a missing
/// font skips the PNG; neither is an error, the result says so. A
/// `best_epoch` (the model a run kept) is marked on every panel.
pub fn plot_losses(
    svg: &Path,
    png: Option<&Path>,
    rows: &[MetricsRow],
    best_epoch: Option<usize>,
) -> Result<PlotWritten> {
    let dirs = default_font_dirs();
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    plot_losses_with_fonts(svg, png, rows, &dirs, best_epoch)
}

/// [`plot_losses`] with the PNG's font looked for in `font_dirs` (and their
/// subfolders) only.
pub fn plot_losses_with_fonts(
    svg: &Path,
    png: Option<&Path>,
    rows: &[MetricsRow],
    font_dirs: &[&Path],
    best_epoch: Option<usize>,
) -> Result<PlotWritten> {
    let skipped =
        |svg: bool, reason: String| PlotWritten { svg, png: false, png_font: None, png_skipped_because: Some(reason) };
    if rows.is_empty() {
        return Ok(skipped(false, "no epochs to plot".into()));
    }
    let size = chart::figure_size(rows);
    let mut text = String::new();
    {
        // The SVG names the fonts and leaves drawing them to the viewer, so it
        // needs none here; plotters' text estimate is only used for layout.
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        chart::draw(&root, rows, best_epoch).map_err(|e| cannot_draw(svg, e))?;
    }
    write_atomically(svg, |file| file.write_all(text.as_bytes()))?;

    let Some(png) = png else {
        return Ok(PlotWritten { svg: true, png: false, png_font: None, png_skipped_because: None });
    };
    let Some(font) = raster::load_font(font_dirs) else {
        let dirs: Vec<String> = font_dirs.iter().map(|dir| dir.display().to_string()).collect();
        let dirs = if dirs.is_empty() { "no folder (none given)".to_string() } else { dirs.join(", ") };
        let reason = format!("no usable TrueType or OpenType font (.ttf, .otf) under {dirs}");
        return Ok(skipped(true, reason));
    };
    let bytes = raster::render_png(rows, best_epoch, &font, size).map_err(|e| cannot_draw(png, e))?;
    write_atomically(png, |file| file.write_all(&bytes))?;
    Ok(PlotWritten { svg: true, png: true, png_font: Some(font.path), png_skipped_because: None })
}

fn cannot_draw(path: &Path, error: impl std::fmt::Display) -> Error {
    Error::InvalidInput(format!("cannot draw {}: {error}", path.display()))
}
