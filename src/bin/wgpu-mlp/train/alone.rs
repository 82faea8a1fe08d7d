//! One model trained without a run folder, progress or Ctrl-C: what
//! `wgpu-mlp sweep` runs for each of its models. It resolves the flags, starts,
//! schedules and keeps the model exactly as the training command does, so a
//! model of a sweep ends with the parameters of a single run of the same
//! flags (bit for bit on the CPU).

use std::collections::HashMap;
use std::path::Path;

use wgpu_mlp::checkpoint;
use wgpu_mlp::schedule::Plateau;
use wgpu_mlp::train::{fit_schedule, BestEpoch, FitHooks, Monitor, Schedule, TrainState};
use wgpu_mlp::{Backend, FitReport, Params, Run, Trainer};

use super::{checkpoint_metadata, resolve_settings, schedule_for, Settings};
use crate::args::{KeepArg, TrainArgs};

/// A model's settings resolved from its flags and its data read, ready to train.
pub(crate) struct Prepared {
    settings: Settings,
    schedule: Schedule,
}

impl Prepared {
    /// Reads the data and resolves every setting of `cli`, as a run does.
    pub(crate) fn new(cli: &TrainArgs) -> anyhow::Result<Prepared> {
        let settings = resolve_settings(cli)?;
        let schedule = schedule_for(cli, &settings, 0, None, None);
        Ok(Prepared { settings, schedule })
    }

    /// The metric that picks the best epoch (--monitor, or its default).
    pub(crate) fn monitor(&self) -> Monitor {
        self.settings.monitor
    }

    /// The settings a sweep may vary, as resolved (defaults included), by
    /// flag name: "lr" "0.001", "hidden" "64,64", "dropout" "0" for none, ...
    pub(crate) fn swept_values(&self) -> Vec<(&'static str, String)> {
        let Settings { spec, config, train, .. } = &self.settings;
        let sizes = spec.sizes();
        let hidden: Vec<String> = sizes[1..sizes.len() - 1].iter().map(usize::to_string).collect();
        vec![
            ("lr", config.lr.to_string()),
            ("weight-decay", config.weight_decay.to_string()),
            ("hidden", hidden.join(",")),
            ("seed", config.seed.to_string()),
            ("batch-size", config.rows_per_batch(train).to_string()),
            ("activation", spec.hidden().to_string()),
            ("dropout", config.dropout.to_string()),
        ]
    }

    /// Trains on `backend` to the end of the schedule and keeps the model
    /// --keep names. A loss that stops being finite is
    /// [`wgpu_mlp::Error::NonFiniteLoss`], as in a run.
    pub(crate) fn train(&self, backend: &Backend) -> anyhow::Result<Trained<'_>> {
        let Settings { spec, init, config, train, .. } = &self.settings;
        let val = self.settings.val.as_ref();
        backend.check_fits(spec, config, train.len(), val.map_or(0, wgpu_mlp::Dataset::len))?;
        let params = Params::init(spec, *init, config.seed)?;
        let run = Run { spec, params: &params, train, test: val, config };
        let mut trainer = backend.trainer(&run)?;
        let keep_best = self.settings.keep == KeepArg::Best;
        let mut hooks = KeepInMemory { keep_best, plateau: self.schedule.plateau.map(|p| p.state), best: None };
        let report = fit_schedule(trainer.as_mut(), self.schedule, &mut hooks)?;
        let kept = match hooks.best {
            Some(best) if keep_best => best,
            _ => Kept { best: report.best, plateau: report.plateau, state: trainer.state()?, epoch: report.epochs },
        };
        Ok(Trained { report, kept, metadata: checkpoint_metadata(&self.settings), settings: self })
    }
}

/// A trained model and what its run measured.
pub(crate) struct Trained<'a> {
    pub(crate) report: FitReport,
    kept: Kept,
    metadata: HashMap<String, String>,
    settings: &'a Prepared,
}

impl Trained<'_> {
    /// The epoch of the model kept: the best (--keep best) or the last.
    pub(crate) fn kept_epoch(&self) -> usize {
        self.kept.epoch
    }

    /// Saves the model kept as a run saves it (its best checkpoint, or its
    /// last epoch's): the same tensors and metadata.
    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        let Kept { best, plateau, state, epoch } = &self.kept;
        let mut metadata = self.metadata.clone();
        if let Some(best) = best {
            metadata.insert("best_epoch".into(), best.epoch.to_string());
            metadata.insert("best_value".into(), best.value.to_string());
        }
        if let Some(plateau) = plateau {
            metadata.insert("lr_scale".into(), plateau.scale.to_string());
            metadata.insert("lr_plateau_best".into(), plateau.best.to_string());
            metadata.insert("lr_plateau_wait".into(), plateau.wait.to_string());
        }
        let settings = &self.settings.settings;
        if let Some(private) = &settings.private {
            metadata.insert(checkpoint::DP_ACCOUNTANT.into(), private.ledger.after(*epoch).to_string());
        }
        let (scaler, target) = (Some(&settings.scaler), settings.target_scaler.as_ref());
        Ok(checkpoint::save_scaled(path, state, *epoch, metadata, scaler, target)?)
    }
}

/// A model's state and what its checkpoint says of the run at that epoch.
struct Kept {
    /// The best epoch so far then.
    best: Option<BestEpoch>,
    /// A plateau schedule's state then.
    plateau: Option<Plateau>,
    state: TrainState,
    epoch: usize,
}

/// Fit hooks that keep the best epoch's state in memory (where a run writes
/// its best checkpoint) and follow a plateau schedule's state.
struct KeepInMemory {
    keep_best: bool,
    plateau: Option<Plateau>,
    best: Option<Kept>,
}

impl FitHooks for KeepInMemory {
    fn improved(&mut self, trainer: &mut dyn Trainer, best: BestEpoch) -> wgpu_mlp::Result<()> {
        if self.keep_best {
            let state = trainer.state()?;
            self.best = Some(Kept { best: Some(best), plateau: self.plateau, state, epoch: best.epoch });
        }
        Ok(())
    }

    fn plateau(&mut self, state: Plateau) {
        self.plateau = Some(state);
    }
}
