//! The progress bar of a training run on a terminal. Metrics come back only
//! at read-backs, which on a wide net is once an epoch or less, so the bar
//! also moves on the trainers' stop checks (after every CPU step and every
//! GPU submit): each check advances it by an estimate of the steps between
//! two checks, so it costs no read-back. The estimate is recalibrated at
//! every read-back, where the true step count is known.

use std::cell::Cell;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use wgpu_mlp::schedule::Plateau;
use wgpu_mlp::train::EpochMetrics;
use wgpu_mlp::train::{BestEpoch, FitHooks, Schedule};
use wgpu_mlp::{Error, Trainer};

/// The least time between two redraws on ticks.
const REDRAW: Duration = Duration::from_millis(100);

/// The bar and what it knows of the run; `&self` throughout, since the stop
/// check it listens to gets only a shared borrow of the hooks.
pub(crate) struct Progress {
    pub(crate) bar: ProgressBar,
    schedule: Schedule,
    steps_per_epoch: u64,
    /// Steps done, relative to the run's first epoch, at the last read-back.
    read_back_steps: Cell<u64>,
    /// The epoch of the last read-back (counted from the first run).
    read_back_epoch: Cell<usize>,
    /// Stop checks since the last read-back.
    checks: Cell<u64>,
    /// Steps between two stop checks, estimated.
    steps_per_check: Cell<f64>,
    /// The last read-back's metrics, shown after the counts.
    metrics: std::cell::RefCell<String>,
    /// When the line was last redrawn: ticks come per CPU step, and a
    /// redraw a few times a second is all a reader sees.
    shown: Cell<Option<std::time::Instant>>,
}

impl Progress {
    /// A bar for `schedule` on `trainer`, drawn on stderr.
    pub(crate) fn new(schedule: Schedule, trainer: &dyn Trainer) -> Self {
        let steps_per_epoch = trainer.steps_per_epoch() as u64;
        let total = ((schedule.last_epoch - schedule.first_epoch) as u64).saturating_mul(steps_per_epoch);
        let bar = ProgressBar::new(total);
        // Everything but a short bar is {wide_msg}, which is cut to what the
        // terminal's width leaves, so the line never wraps: a wrapped line
        // leaves its first half behind when the bar is cleared.
        let style = ProgressStyle::with_template("{bar:12} {wide_msg}").expect("the template is valid");
        bar.set_style(style);
        // Elapsed time, rate and ETA refresh even while one submit runs long.
        bar.enable_steady_tick(Duration::from_millis(250));
        // The CPU checks after every step, the layered GPU path after every
        // submit of up to 64 steps, the fused path before each dispatch (an
        // epoch or more); the first read-back corrects the guess.
        let device = trainer.device();
        let guess = if device == "cpu" {
            1.0
        } else if device.ends_with("fused") {
            steps_per_epoch.max(1) as f64
        } else {
            64.0
        };
        let progress = Self {
            bar,
            schedule,
            steps_per_epoch,
            read_back_steps: Cell::new(0),
            read_back_epoch: Cell::new(schedule.first_epoch),
            checks: Cell::new(0),
            steps_per_check: Cell::new(guess),
            metrics: Default::default(),
            shown: Cell::new(None),
        };
        progress.show(0);
        progress
    }

    /// Shows `steps` done (relative to the first epoch), the epoch they are
    /// in, a rate rounded to whole steps and the time left.
    fn show(&self, steps: u64) {
        let Schedule { first_epoch, last_epoch, .. } = self.schedule;
        let epoch = (first_epoch + (steps / self.steps_per_epoch.max(1)) as usize + 1).min(last_epoch);
        let seconds = self.bar.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 { steps as f64 / seconds } else { 0.0 };
        let total = self.bar.length().unwrap_or(steps);
        let left = if rate > 0.0 {
            format!("  eta {}", indicatif::HumanDuration(Duration::from_secs_f64((total - steps) as f64 / rate)))
        } else {
            String::new()
        };
        let metrics = self.metrics.borrow();
        let metrics = if metrics.is_empty() { String::new() } else { format!("  {metrics}") };
        self.bar.set_position(steps);
        self.bar.set_message(format!(
            "epoch {epoch}/{last_epoch}  {steps}/{total} steps  {rate:.0} steps/s{left}{metrics}"
        ));
    }

    /// A stop check: a step or a submit has gone by.
    pub(crate) fn tick(&self) {
        let checks = self.checks.get() + 1;
        self.checks.set(checks);
        if self.shown.get().is_some_and(|at| at.elapsed() < REDRAW) {
            return;
        }
        // Never past the next read-back, which the fit has not reached yet.
        let next = (self.read_back_epoch.get() + self.schedule.log_every).min(self.schedule.last_epoch);
        let limit = ((next - self.schedule.first_epoch) as u64 * self.steps_per_epoch).saturating_sub(1);
        let estimate = self.read_back_steps.get() + (checks as f64 * self.steps_per_check.get()) as u64;
        self.show(estimate.min(limit).max(self.read_back_steps.get()));
    }

    /// A read-back after `epoch`: the true position, and a better estimate.
    pub(crate) fn read_back(&self, epoch: usize, metrics: &str) {
        let steps = (epoch - self.schedule.first_epoch) as u64 * self.steps_per_epoch;
        let (done, checks) = (steps - self.read_back_steps.get(), self.checks.get());
        if checks > 0 {
            self.steps_per_check.set(done as f64 / checks as f64);
        }
        self.read_back_steps.set(steps);
        self.read_back_epoch.set(epoch);
        self.checks.set(0);
        *self.metrics.borrow_mut() = metrics.to_string();
        self.show(steps);
    }
}

/// The run's hooks, with every stop check also a tick of the bar.
pub(crate) struct Ticking<'a> {
    pub(crate) hooks: &'a mut dyn FitHooks,
    pub(crate) progress: Option<&'a Progress>,
}

impl FitHooks for Ticking<'_> {
    fn logged(&mut self, epoch: usize, epochs: &[EpochMetrics], seconds: f64) -> Result<(), Error> {
        self.hooks.logged(epoch, epochs, seconds)
    }

    fn save(&mut self, trainer: &mut dyn Trainer, epoch: usize) -> Result<(), Error> {
        self.hooks.save(trainer, epoch)
    }

    fn stop_requested(&self) -> bool {
        if let Some(progress) = self.progress {
            progress.tick();
        }
        self.hooks.stop_requested()
    }

    fn improved(&mut self, trainer: &mut dyn Trainer, best: BestEpoch) -> Result<(), Error> {
        self.hooks.improved(trainer, best)
    }

    fn plateau(&mut self, state: Plateau) {
        self.hooks.plateau(state)
    }
}
