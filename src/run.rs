//! The folder a training run leaves behind (`--out`): `config.json` (every
//! setting, the adapter, the crate version), `metrics.csv` (one row per epoch,
//! appended at each read-back), the checkpoints and the loss plot. Every file
//! is written atomically, so an interrupted run leaves whole files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::checkpoint;
use crate::data::Scaler;
use crate::dp::PrivacyLedger;
use crate::error::{Error, Result};
use crate::report::{self, MetricsRow, PlotWritten};
use crate::schedule::{LrSchedule, Plateau};
use crate::train::{BestEpoch, EpochMetrics, FitHooks, Trainer};

/// The best epoch's checkpoint, rewritten whenever the monitored metric improves.
pub const BEST_CHECKPOINT: &str = "checkpoint-best.safetensors";

/// A run's output folder and what has been written to it.
pub struct RunFolder {
    dir: PathBuf,
    rows: Vec<MetricsRow>,
    /// Whether `metrics.csv` has been started (its header and any rows kept
    /// from an earlier run written): later read-backs append to it.
    metrics_started: bool,
    /// The outputs whose validation errors `metrics.csv` has columns for.
    metrics_outputs: usize,
    /// What each checkpoint's metadata says of the model and run.
    checkpoint_metadata: HashMap<String, String>,
    /// The training data's input scaling, saved with each checkpoint.
    scaler: Option<Scaler>,
    /// The target scaling of a regression trained on scaled targets.
    target_scaler: Option<Scaler>,
    /// Paths of the checkpoints written, oldest first.
    pub checkpoints: Vec<PathBuf>,
    /// The best epoch so far, when the run monitors one: in every
    /// checkpoint's metadata (`best_epoch`, `best_value`), and its state in
    /// [`BEST_CHECKPOINT`].
    pub best: Option<BestEpoch>,
    /// A plateau schedule's state, in every checkpoint's metadata
    /// (`lr_scale`, `lr_plateau_best`, `lr_plateau_wait`).
    pub plateau: Option<Plateau>,
    /// The base rate, the schedule and the steps per epoch, for the `lr`
    /// column of `metrics.csv`; None leaves it empty.
    lr: Option<(f32, LrSchedule, usize)>,
    /// A DP-SGD run's privacy spent: the `epsilon` column of `metrics.csv`,
    /// and the accountant in every checkpoint's metadata (`dp.accountant`).
    pub privacy: Option<PrivacyLedger>,
}

/// What may already be in `--out`: a run folder holds one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// The folder must be new or empty.
    Refuse,
    /// An earlier run's files are removed first (`overwrite`); a folder
    /// holding anything else is refused.
    Overwrite,
    /// A resume: the files stay, and [`RunFolder::resume_metrics`] keeps the
    /// epochs up to the checkpoint's.
    Resume,
}

/// Whether `name` is a file a run writes (and so `overwrite` may remove).
fn is_run_file(name: &str) -> bool {
    matches!(
        name,
        "config.json"
            | "metrics.csv"
            | "loss.svg"
            | "loss.png"
            | "confusion.csv"
            | "confusion.svg"
            | "fairness.csv"
            | "fairness.svg"
            | BEST_CHECKPOINT
    ) || name
        .strip_prefix("checkpoint-epoch")
        .and_then(|rest| rest.strip_suffix(".safetensors"))
        .is_some_and(|epoch| !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()))
}

impl RunFolder {
    /// Creates `out` (new or empty), or `runs/<UTC time>` (with a suffix if
    /// that exists).
    pub fn create(
        out: Option<&Path>,
        checkpoint_metadata: HashMap<String, String>,
        scaler: Option<Scaler>,
    ) -> Result<Self> {
        Self::create_reusing(out, Reuse::Refuse, checkpoint_metadata, scaler)
    }

    /// [`RunFolder::create`], taking an `out` that holds files as `reuse` says.
    pub fn create_reusing(
        out: Option<&Path>,
        reuse: Reuse,
        checkpoint_metadata: HashMap<String, String>,
        scaler: Option<Scaler>,
    ) -> Result<Self> {
        let dir = match out {
            Some(dir) => {
                prepare_out(dir, reuse)?;
                dir.to_path_buf()
            }
            None => create_unique(Path::new("runs"))?,
        };
        Ok(Self {
            dir,
            rows: Vec::new(),
            metrics_started: false,
            metrics_outputs: 0,
            checkpoint_metadata,
            scaler,
            target_scaler: None,
            checkpoints: Vec::new(),
            best: None,
            plateau: None,
            lr: None,
            privacy: None,
        })
    }

    /// Saves `target_scaler` with every checkpoint: the model trains on
    /// targets scaled by it (a regression's `scale_target`).
    pub fn with_target_scaler(mut self, target_scaler: Option<Scaler>) -> Self {
        self.target_scaler = target_scaler;
        self
    }

    /// Records the learning rate of each epoch (its first step's) in
    /// `metrics.csv`: `lr` under `schedule`, with `steps_per_epoch`.
    pub fn with_lr(mut self, lr: f32, schedule: LrSchedule, steps_per_epoch: usize) -> Self {
        self.lr = Some((lr, schedule, steps_per_epoch));
        self
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
            // A regression's per-output columns, as many as the run's outputs
            // (the rows kept from an earlier run, or this read-back's, say how many).
            let from_now = epochs.first().map_or(0, EpochMetrics::outputs_scored);
            self.metrics_outputs = report::metrics_outputs(&self.rows).max(from_now);
            report::write_metrics_csv(&path, &self.rows, self.metrics_outputs)?;
            self.metrics_started = true;
        }
        let first = epoch + 1 - epochs.len();
        let scale = self.plateau.map_or(1.0, |p| p.scale);
        let lr = |epoch: usize| {
            self.lr
                .map(|(lr, schedule, per_epoch)| schedule.rate(lr, ((epoch - 1) * per_epoch) as u64, per_epoch, scale))
        };
        let epsilon = |epoch: usize| self.privacy.as_ref().map(|ledger| ledger.epsilon_after(epoch));
        let rows: Vec<MetricsRow> = epochs
            .iter()
            .enumerate()
            .map(|(i, m)| MetricsRow {
                epoch: first + i,
                metrics: m.clone(),
                lr: lr(first + i),
                epsilon: epsilon(first + i),
                seconds,
            })
            .collect();
        report::append_metrics_csv(&path, &rows, self.metrics_outputs)?;
        self.rows.extend(rows);
        Ok(())
    }

    /// Every epoch's row of `metrics.csv` so far, a resumed run's earlier ones included.
    pub fn rows(&self) -> &[MetricsRow] {
        &self.rows
    }

    /// Saves the trainer's state after `epoch` as `checkpoint-epoch{epoch}.safetensors`.
    pub fn save(&mut self, trainer: &mut dyn Trainer, epoch: usize) -> Result<PathBuf> {
        let path = self.dir.join(format!("checkpoint-epoch{epoch}.safetensors"));
        self.write_checkpoint(&path, trainer, epoch)?;
        self.checkpoints.push(path.clone());
        Ok(path)
    }

    /// Saves the trainer's state, that of the new best epoch `best`, as
    /// [`BEST_CHECKPOINT`] (replacing the previous best atomically).
    pub fn save_best(&mut self, trainer: &mut dyn Trainer, best: BestEpoch) -> Result<PathBuf> {
        self.best = Some(best);
        let path = self.best_checkpoint();
        self.write_checkpoint(&path, trainer, best.epoch)?;
        Ok(path)
    }

    /// Where [`RunFolder::save_best`] writes.
    pub fn best_checkpoint(&self) -> PathBuf {
        self.dir.join(BEST_CHECKPOINT)
    }

    fn write_checkpoint(&self, path: &Path, trainer: &mut dyn Trainer, epoch: usize) -> Result<()> {
        let mut metadata = self.checkpoint_metadata.clone();
        if let Some(best) = self.best {
            metadata.insert("best_epoch".into(), best.epoch.to_string());
            metadata.insert("best_value".into(), best.value.to_string());
        }
        if let Some(plateau) = self.plateau {
            metadata.insert("lr_scale".into(), plateau.scale.to_string());
            metadata.insert("lr_plateau_best".into(), plateau.best.to_string());
            metadata.insert("lr_plateau_wait".into(), plateau.wait.to_string());
        }
        if let Some(ledger) = &self.privacy {
            metadata.insert(checkpoint::DP_ACCOUNTANT.into(), ledger.after(epoch).to_string());
        }
        checkpoint::save_scaled(
            path,
            &trainer.state()?,
            epoch,
            metadata,
            self.scaler.as_ref(),
            self.target_scaler.as_ref(),
        )
    }

    /// Writes `loss.svg` and, where fonts are found, `loss.png`.
    pub fn plot(&self) -> Result<PlotWritten> {
        let best = self.best.map(|b| b.epoch);
        report::plot_losses(&self.dir.join("loss.svg"), Some(&self.dir.join("loss.png")), &self.rows, best)
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

    fn improved(&mut self, trainer: &mut dyn Trainer, best: BestEpoch) -> Result<()> {
        self.folder.save_best(trainer, best).map(drop)
    }

    fn plateau(&mut self, state: Plateau) {
        self.folder.plateau = Some(state);
    }
}

/// Makes `dir` ready for a run: created if new, and an earlier run's files
/// refused, removed or kept as `reuse` says.
fn prepare_out(dir: &Path, reuse: Reuse) -> Result<()> {
    // A file in the way (NotADirectory, or the path itself: /dev/null) is
    // the user's to fix, exit code 2; a read-only or full disk is not, 1.
    if dir.exists() && !dir.is_dir() {
        return Err(Error::InvalidInput(format!(
            "the run folder {} is a file, not a folder; give `out` a folder (new or empty)",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create the run folder {}", dir.display()), e))?;
    let unreadable = |e| Error::io(format!("cannot read the run folder {}", dir.display()), e);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        names.push(entry.map_err(unreadable)?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    if names.is_empty() || reuse == Reuse::Resume {
        return Ok(());
    }
    if reuse == Reuse::Refuse {
        return Err(Error::InvalidInput(format!(
            "the run folder {} already holds {}; a run folder holds one run: give `out` a new or empty folder, \
             pass `overwrite` to replace that run, or `resume` from its checkpoint",
            dir.display(),
            names.join(", ")
        )));
    }
    // Only what a run writes goes: a folder holding anything else was
    // never (only) a run folder, and its files are not ours to delete.
    let foreign: Vec<&String> = names.iter().filter(|n| !is_run_file(n)).collect();
    if !foreign.is_empty() {
        let foreign: Vec<&str> = foreign.iter().map(|n| n.as_str()).collect();
        return Err(Error::InvalidInput(format!(
            "`overwrite` clears only a run's files, and the run folder {} also holds {}; move it away or give `out` another folder",
            dir.display(),
            foreign.join(", ")
        )));
    }
    for name in &names {
        let path = dir.join(name);
        std::fs::remove_file(&path).map_err(|e| Error::io(format!("cannot remove {}", path.display()), e))?;
    }
    Ok(())
}

/// Creates `parent/<UTC time>`, or with a suffix (`.2`, `.3`, ...) when that
/// exists. `create_dir` of the leaf fails on an existing one, so two runs
/// started in the same second never share a folder, whatever the timing.
fn create_unique(parent: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::io(format!("cannot create the folder {}", parent.display()), e))?;
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "-");
    let base = parent.join(stamp);
    for n in 1.. {
        let dir = if n == 1 { base.clone() } else { base.with_extension(n.to_string()) };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(format!("cannot create the run folder {}", dir.display()), e)),
        }
    }
    unreachable!("some suffix is free")
}
