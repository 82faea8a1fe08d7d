//! The folder a training run leaves behind (`--out`): `config.json` (every
//! setting, the adapter, the crate version), `metrics.csv` (one row per epoch,
//! appended at each read-back), the checkpoints and the loss plot. Every file
//! is written atomically, so an interrupted run leaves whole files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::checkpoint;
use crate::data::Scaler;
use crate::error::{Error, Result};
use crate::report::{self, MetricsRow, PlotWritten};
use crate::train::{EpochMetrics, FitHooks, Trainer};

/// A run's output folder and what has been written to it.
pub struct RunFolder {
    dir: PathBuf,
    rows: Vec<MetricsRow>,
    /// Whether `metrics.csv` has been started (its header and any rows kept
    /// from an earlier run written): later read-backs append to it.
    metrics_started: bool,
    /// What each checkpoint's metadata says of the model and run.
    checkpoint_metadata: HashMap<String, String>,
    /// The training data's input scaling, saved with each checkpoint.
    scaler: Option<Scaler>,
    /// Paths of the checkpoints written, oldest first.
    pub checkpoints: Vec<PathBuf>,
}

impl RunFolder {
    /// Creates `out`, or `runs/<UTC time>` (with a suffix if that exists).
    pub fn create(
        out: Option<&Path>,
        checkpoint_metadata: HashMap<String, String>,
        scaler: Option<Scaler>,
    ) -> Result<Self> {
        let dir = match out {
            Some(dir) => dir.to_path_buf(),
            None => {
                let stamp =
                    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "-");
                let base = Path::new("runs").join(stamp);
                (1..)
                    .map(|n| if n == 1 { base.clone() } else { base.with_extension(n.to_string()) })
                    .find(|p| !p.exists())
                    .expect("some suffix is free")
            }
        };
        // A file in the way (NotADirectory, or the path itself: /dev/null) is
        // the user's to fix, exit code 2; a read-only or full disk is not, 1.
        if dir.exists() && !dir.is_dir() {
            return Err(Error::InvalidInput(format!(
                "the run folder {} is a file, not a folder; give `out` a folder (new or empty)",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create the run folder {}", dir.display()), e))?;
        Ok(Self { dir, rows: Vec::new(), metrics_started: false, checkpoint_metadata, scaler, checkpoints: Vec::new() })
    }

    /// The folder: `out` as given, or the `runs/<UTC time>` it chose.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `config.json`.
    pub fn write_config(&self, config: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_string_pretty(config).expect("a JSON value always serialises");
        report::write_atomically(&self.dir.join("config.json"), |file| std::io::Write::write_all(file, text.as_bytes()))
    }

    /// For a run resumed after `epoch`: keeps the rows of the folder's
    /// `metrics.csv` up to `epoch` (a run resumed into its own folder keeps
    /// its history), dropping later ones, which this run trains again. No
    /// file keeps nothing. Call before the first [`RunFolder::record`].
    pub fn resume_metrics(&mut self, epoch: usize) -> Result<()> {
        let path = self.dir.join("metrics.csv");
        if !path.exists() {
            return Ok(());
        }
        let mut rows = report::read_metrics_csv(&path)?;
        rows.retain(|row| row.epoch <= epoch);
        self.rows = rows;
        Ok(())
    }

    /// Records a read-back's epochs, the last of which is `epoch`, appending
    /// them to `metrics.csv`; the first starts the file (header and the rows
    /// kept by [`RunFolder::resume_metrics`]), replacing any older one.
    pub fn record(&mut self, epoch: usize, epochs: &[EpochMetrics], seconds: f64) -> Result<()> {
        let path = self.dir.join("metrics.csv");
        if !self.metrics_started {
            report::write_metrics_csv(&path, &self.rows)?;
            self.metrics_started = true;
        }
        let first = epoch + 1 - epochs.len();
        let rows: Vec<MetricsRow> =
            epochs.iter().enumerate().map(|(i, m)| MetricsRow { epoch: first + i, metrics: *m, seconds }).collect();
        report::append_metrics_csv(&path, &rows)?;
        self.rows.extend(rows);
        Ok(())
    }

    /// Saves the trainer's state after `epoch` as `checkpoint-epoch{epoch}.safetensors`.
    pub fn save(&mut self, trainer: &mut dyn Trainer, epoch: usize) -> Result<PathBuf> {
        let path = self.dir.join(format!("checkpoint-epoch{epoch}.safetensors"));
        checkpoint::save(&path, &trainer.state()?, epoch, self.checkpoint_metadata.clone(), self.scaler.as_ref())?;
        self.checkpoints.push(path.clone());
        Ok(path)
    }

    /// Writes `loss.svg` and, where fonts are found, `loss.png`.
    pub fn plot(&self) -> Result<PlotWritten> {
        report::plot_losses(&self.dir.join("loss.svg"), Some(&self.dir.join("loss.png")), &self.rows)
    }
}

/// Fit hooks that keep the run folder, show each read-back's last epoch
/// through `log`, and stop when `stop` is set (by a Ctrl-C handler).
pub struct RunHooks<'a, L: FnMut(usize, &EpochMetrics)> {
    /// Gets each read-back's rows (metrics.csv) and each checkpoint.
    pub folder: &'a mut RunFolder,
    /// Called once per read-back with its last epoch and that epoch's
    /// metrics, not per epoch: the CLI's progress line.
    pub log: L,
    /// Read after each read-back; once set, the fit saves a checkpoint and
    /// returns [`crate::Error::Interrupted`].
    pub stop: &'a AtomicBool,
}

impl<L: FnMut(usize, &EpochMetrics)> FitHooks for RunHooks<'_, L> {
    fn logged(&mut self, epoch: usize, epochs: &[EpochMetrics], seconds: f64) -> Result<()> {
        (self.log)(epoch, epochs.last().expect("a read-back carries at least one epoch"));
        self.folder.record(epoch, epochs, seconds)
    }

    fn save(&mut self, trainer: &mut dyn Trainer, epoch: usize) -> Result<()> {
        self.folder.save(trainer, epoch).map(drop)
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}
