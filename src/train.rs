//! What both devices share: the [`Trainer`] trait, the training settings, a
//! [`Run`] (everything a trainer is built from), and the fit loop that runs
//! epochs, reads the metrics back every `log_every` epochs and stops on a loss
//! that is no longer finite.
//!
//! A custom loop drives a [`Trainer`] directly:
//!
//! ```
//! use wgpu_mlp::model::{Init, MlpSpec, Params};
//! use wgpu_mlp::{Backend, Dataset, Run, TrainConfig};
//!
//! let spec = MlpSpec::new(vec![10, 5, 1])?;
//! let params = Params::init(&spec, Init::Normal, 0)?;
//! let train = Dataset::seed_problem(100, 10, 1, 0)?;
//! let config = TrainConfig::default(); // SGD, lr 0.01, full batch
//! let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
//! let mut trainer = Backend::Cpu.trainer(&run)?;
//! let before = trainer.evaluate()?;
//! let epochs = trainer.train(50)?; // one EpochMetrics per epoch
//! assert_eq!(epochs.len(), 50);
//! assert!(trainer.evaluate()? < before);
//! # Ok::<(), wgpu_mlp::Error>(())
//! ```

use std::time::Instant;

use crate::data::Dataset;
use crate::dp::DpSgd;
use crate::dropout::Dropout;
use crate::error::{Error, Result};
use crate::model::{Loss, MlpSpec, Params};
use crate::schedule::{LrSchedule, LrShape, Plateau};

/// The update rule (`--optimizer`); every one also takes the learning rate and
/// the L2 weight decay of [`TrainConfig`].
/// Written as checkpoints keep it: "sgd", "momentum 0.9", "adam 0.9 0.999 0.00000001".
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// Plain gradient descent: w -= lr * g.
    Sgd,
    /// Heavy-ball momentum, PyTorch's form: v = momentum * v + g; w -= lr * v.
    Momentum {
        /// How much of the velocity each step keeps, in [0, 1).
        momentum: f32,
    },
    /// Adam with bias correction.
    Adam {
        /// Decay of the first-moment average, in [0, 1).
        beta1: f32,
        /// Decay of the second-moment average, in [0, 1).
        beta2: f32,
        /// Added to sqrt(v) so the step stays finite; positive.
        eps: f32,
    },
}

impl std::fmt::Display for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Optimizer::Sgd => f.write_str("sgd"),
            Optimizer::Momentum { momentum } => write!(f, "momentum {momentum}"),
            Optimizer::Adam { beta1, beta2, eps } => write!(f, "adam {beta1} {beta2} {eps}"),
        }
    }
}

impl std::str::FromStr for Optimizer {
    type Err = String;

    /// The inverse of Display: the kind, then its settings as f32 (which
    /// Display writes in the shortest form that reads back to the same bits).
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let numbers = |count: usize| -> std::result::Result<Vec<f32>, String> {
            let values: Vec<f32> = words[1..]
                .iter()
                .map(|w| w.parse::<f32>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| format!("'{text}': the optimizer's settings are not numbers"))?;
            match values.len() == count {
                true => Ok(values),
                false => Err(format!("'{text}': {} takes {count} settings", words[0])),
            }
        };
        match words.first().copied() {
            Some("sgd") => numbers(0).map(|_| Optimizer::Sgd),
            Some("momentum") => numbers(1).map(|v| Optimizer::Momentum { momentum: v[0] }),
            Some("adam") => numbers(3).map(|v| Optimizer::Adam { beta1: v[0], beta2: v[1], eps: v[2] }),
            _ => Err(format!("'{text}' is not an optimizer: sgd, momentum M or adam BETA1 BETA2 EPS")),
        }
    }
}

/// Settings of training that every trainer takes.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Learning rate: positive and finite.
    pub lr: f32,
    /// The update rule.
    pub optimizer: Optimizer,
    /// L2 penalty added to every gradient as weight_decay * w (biases too).
    pub weight_decay: f32,
    /// Rows per step; `None` is the whole training set (full batch).
    pub batch_size: Option<usize>,
    /// A new order of the training rows every epoch (ChaCha8 stream 2 of `seed`).
    pub shuffle: bool,
    /// Seed of the shuffles (and, by convention, of the initialisation and the data).
    pub seed: u64,
    /// How the rate moves from `lr` over the run (constant by default).
    pub lr_schedule: LrSchedule,
    /// Gradient clipping (`clip_grad_norm`, `clip_grad_value`); none by default.
    pub clip: Clip,
    /// The probability of dropping each hidden unit in a training step,
    /// for every hidden layer or each (`dropout`, inverted dropout; see
    /// [`crate::dropout`]); off by default. Evaluation, predict and export
    /// never drop.
    pub dropout: Dropout,
    /// DP-SGD ([`crate::dp`]): Poisson-sampled steps of `batch_size` rows
    /// on average, per-row clipping and Gaussian noise; None trains as usual.
    pub dp: Option<DpSgd>,
}

/// Gradient clipping, before weight decay and the update: first the global
/// L2 norm of all gradients is scaled down to `norm` where it is larger
/// (PyTorch's clip_grad_norm_: factor min(1, norm / (total + 1e-6))), then
/// each element is clamped to [-value, value].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Clip {
    /// The largest global norm (`clip_grad_norm`), positive and finite.
    pub norm: Option<f32>,
    /// The largest magnitude of an element (`clip_grad_value`), positive and finite.
    pub value: Option<f32>,
}

impl Default for TrainConfig {
    /// The textbook run: plain gradient descent, lr 0.01, full batch, in order.
    fn default() -> Self {
        Self {
            lr: 0.01,
            optimizer: Optimizer::Sgd,
            weight_decay: 0.0,
            batch_size: None,
            shuffle: false,
            seed: 0,
            lr_schedule: LrSchedule::default(),
            clip: Clip::default(),
            dropout: Dropout::Off,
            dp: None,
        }
    }
}

impl TrainConfig {
    /// The schedule's settings: a gamma in (0, 1], a factor in (0, 1), a
    /// minimum rate in [0, lr), at least one epoch between cuts.
    fn check_schedule(&self) -> Result<()> {
        let bad = |message: String| Err(Error::InvalidInput(message));
        let gamma_ok = |gamma: f32| gamma.is_finite() && gamma > 0.0 && gamma <= 1.0;
        let min_ok = |min: f32| min.is_finite() && min >= 0.0 && min < self.lr;
        match self.lr_schedule.shape {
            LrShape::Constant => Ok(()),
            LrShape::Step { every: 0, .. } => bad("`lr_step_epochs` must be at least 1".into()),
            LrShape::Step { gamma, .. } | LrShape::Exponential { gamma } if !gamma_ok(gamma) => {
                bad(format!("`lr_gamma` must be in (0, 1], got {gamma}"))
            }
            LrShape::Cosine { min, .. } | LrShape::Plateau { min, .. } if !min_ok(min) => {
                bad(format!("`lr_min` must be >= 0 and below `lr` {}, got {min}", self.lr))
            }
            LrShape::Plateau { patience: 0, .. } => bad("`lr_patience` must be at least 1".into()),
            LrShape::Plateau { factor, .. } if !(factor.is_finite() && factor > 0.0 && factor < 1.0) => {
                bad(format!("`lr_factor` must be in (0, 1), got {factor}"))
            }
            _ => Ok(()),
        }
    }

    /// Checks the settings against each other and against the model and data.
    pub fn check(&self, spec: &MlpSpec, train: &Dataset, test: Option<&Dataset>) -> Result<()> {
        let bad = |message: String| Err(Error::InvalidInput(message));
        let finite_in = |value: f32, low: f32, high: f32| value.is_finite() && value >= low && value < high;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!("`lr` must be a positive finite number, got {}", self.lr));
        }
        if !finite_in(self.weight_decay, 0.0, f32::MAX) {
            return bad(format!("`weight_decay` must be a finite number >= 0, got {}", self.weight_decay));
        }
        self.check_schedule()?;
        if let Some(why) = self.dropout.misfit(spec.num_layers() - 1) {
            return bad(why);
        }
        for (name, limit) in [("clip_grad_norm", self.clip.norm), ("clip_grad_value", self.clip.value)] {
            if let Some(limit) = limit.filter(|l| !(l.is_finite() && *l > 0.0)) {
                return bad(format!("`{name}` must be a positive finite number, got {limit}"));
            }
        }
        match self.optimizer {
            Optimizer::Sgd => {}
            Optimizer::Momentum { momentum } if finite_in(momentum, 0.0, 1.0) => {}
            Optimizer::Momentum { momentum } => return bad(format!("`momentum` must be in [0, 1), got {momentum}")),
            Optimizer::Adam { beta1, beta2, eps } => {
                if !finite_in(beta1, 0.0, 1.0) || !finite_in(beta2, 0.0, 1.0) {
                    return bad(format!("`beta1` and `beta2` must be in [0, 1), got {beta1} and {beta2}"));
                }
                if !(eps.is_finite() && eps > 0.0) {
                    return bad(format!("`eps` must be a positive finite number, got {eps}"));
                }
            }
        }
        if self.batch_size == Some(0) {
            return bad("`batch_size` must be at least 1".into());
        }
        if let Some(dp) = self.dp {
            dp.check()?;
            if self.shuffle {
                return bad(
                    "DP-SGD takes each step's rows by Poisson sampling, which its privacy bound assumes; `shuffle` \
                     (fixed-size shuffled batches) is not covered: turn it off"
                        .into(),
                );
            }
            if let Some(name) = [("clip_grad_norm", self.clip.norm), ("clip_grad_value", self.clip.value)]
                .into_iter()
                .find_map(|(name, limit)| limit.map(|_| name))
            {
                return bad(format!(
                    "`{name}` clips the batch's gradient, which DP-SGD replaces by clipping each row's \
                     (`dp_max_grad_norm`): leave `{name}` out"
                ));
            }
        }
        for (name, data) in std::iter::once(("training", train)).chain(test.map(|t| ("test", t))) {
            if data.is_empty() {
                return bad(format!("the {name} set has no samples"));
            }
            if data.x.ncols() != spec.inputs() || data.y.ncols() != spec.outputs() {
                return bad(format!(
                    "the {name} data has {} inputs and {} targets per sample, but `layers` {spec} expects {} and {}",
                    data.x.ncols(),
                    data.y.ncols(),
                    spec.inputs(),
                    spec.outputs()
                ));
            }
        }
        if spec.loss() == Loss::CrossEntropy && train.classes.is_none() {
            return bad("cross-entropy needs class targets (`task` classify)".into());
        }
        if spec.loss() == Loss::Bce {
            if train.classes.is_some() {
                return bad(
                    "`loss` bce takes a target in [0, 1] per output (`task` regress); for one class per row, use \
                     cross-entropy"
                        .into(),
                );
            }
            for (name, data) in std::iter::once(("training", train)).chain(test.map(|t| ("test", t))) {
                if let Some(((row, col), value)) = data.y.indexed_iter().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
                    return bad(format!(
                        "`loss` bce needs targets in [0, 1], but the {name} set's row {row} has {value} in target {col}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Rows per step on `train`: the batch size, at most the whole set.
    pub fn rows_per_batch(&self, train: &Dataset) -> usize {
        self.rows_per_batch_of(train.len())
    }

    /// Rows per step on a training set of `rows` rows.
    pub fn rows_per_batch_of(&self, rows: usize) -> usize {
        self.batch_size.unwrap_or(rows).min(rows)
    }
}

/// One training run's inputs, as every trainer takes them: the model, its
/// starting parameters, the data and the settings. Trainers copy what they
/// keep (the CPU its host arrays, the GPU its buffers), so a `Run` only
/// borrows.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    /// The network.
    pub spec: &'a MlpSpec,
    /// Where training starts: every device starts from these same numbers.
    pub params: &'a Params,
    /// The rows trained on, as the model sees them (scaled already).
    pub train: &'a Dataset,
    /// Held-out rows evaluated after every epoch when given (into
    /// [`EpochMetrics::val_loss`]): a validation set, which may pick the
    /// best epoch, so not the test set that scores the model kept.
    pub test: Option<&'a Dataset>,
    /// The training settings.
    pub config: &'a TrainConfig,
}

impl Run<'_> {
    /// [`TrainConfig::check`] for this run's model and data.
    pub fn check(&self) -> Result<()> {
        self.config.check(self.spec, self.train, self.test)
    }
}

/// What one epoch measured. The training loss and accuracy are taken over the
/// epoch's batches, each before its own update (as Keras reports them); the
/// validation figures (of [`Run::test`]) after the epoch's last update.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    /// Mean loss over the epoch's batches.
    pub train_loss: f32,
    /// For classification.
    pub train_accuracy: Option<f32>,
    /// With held-out rows ([`Run::test`]).
    pub val_loss: Option<f32>,
    /// With held-out rows, for classification.
    pub val_accuracy: Option<f32>,
    /// With held-out rows, for a regression: the mean over the outputs of
    /// each output's mean absolute error (of the model's answers, in the
    /// targets' training units: scaled where `scale_target` scaled them).
    pub val_mae: Option<f32>,
    /// Likewise, the mean over the outputs of each output's RMSE.
    pub val_rmse: Option<f32>,
    /// Likewise, the mean over the outputs of each output's R².
    pub val_r2: Option<f32>,
    /// Likewise, each output's MAE, RMSE and R², output 0 first.
    pub val_outputs: Option<Vec<crate::metrics::OutputScores>>,
}

impl EpochMetrics {
    /// The outputs whose validation errors it holds (0 but for a regression with held-out rows).
    pub fn outputs_scored(&self) -> usize {
        self.val_outputs.as_ref().map_or(0, Vec::len)
    }

    /// The validation errors of a regression, from its report.
    pub fn with_val_errors(self, report: Option<&crate::metrics::RegressionReport>) -> Self {
        Self {
            val_mae: report.map(|r| r.mae as f32),
            val_rmse: report.map(|r| r.rmse as f32),
            val_r2: report.map(|r| r.r2 as f32),
            val_outputs: report.map(|r| r.outputs.clone()),
            ..self
        }
    }
}

/// The optimizer's state, shaped like the parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum OptimizerState {
    /// Plain gradient descent keeps nothing.
    Sgd,
    /// The velocity of each parameter.
    Momentum {
        /// v, shaped like the parameters.
        velocity: Params,
    },
    /// The moving averages and the number of updates done.
    Adam {
        /// The first-moment averages.
        m: Params,
        /// The second-moment averages.
        v: Params,
        /// Updates done so far (the bias corrections' exponent).
        step: u32,
    },
}

impl OptimizerState {
    /// "sgd", "momentum" or "adam": the optimizer this state belongs to.
    pub fn kind(&self) -> &'static str {
        match self {
            OptimizerState::Sgd => "sgd",
            OptimizerState::Momentum { .. } => "momentum",
            OptimizerState::Adam { .. } => "adam",
        }
    }

    /// Overwrites this state with `other`, reusing the arrays when both are
    /// of one optimizer (the usual case), so that copying allocates nothing.
    pub fn copy_from(&mut self, other: &OptimizerState) {
        match (self, other) {
            (OptimizerState::Sgd, OptimizerState::Sgd) => {}
            (OptimizerState::Momentum { velocity }, OptimizerState::Momentum { velocity: from }) => {
                velocity.copy_from(from)
            }
            (OptimizerState::Adam { m, v, step }, OptimizerState::Adam { m: from_m, v: from_v, step: from_step }) => {
                m.copy_from(from_m);
                v.copy_from(from_v);
                *step = *from_step;
            }
            (this, other) => *this = other.clone(),
        }
    }

    /// The state an optimizer starts from: zeros.
    pub fn zeros(optimizer: Optimizer, params: &Params) -> Self {
        match optimizer {
            Optimizer::Sgd => OptimizerState::Sgd,
            Optimizer::Momentum { .. } => OptimizerState::Momentum { velocity: params.zeros_like() },
            Optimizer::Adam { .. } => OptimizerState::Adam { m: params.zeros_like(), v: params.zeros_like(), step: 0 },
        }
    }
}

/// Everything a trainer needs to go on exactly where it was: a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainState {
    /// The current parameters.
    pub params: Params,
    /// The optimizer's state for them.
    pub optimizer: OptimizerState,
    /// How far the shuffles' RNG has gone (its ChaCha8 word position; 0
    /// without shuffling).
    pub shuffle_position: u128,
}

impl TrainState {
    /// Checks that the saved optimizer state is `optimizer`'s kind and that
    /// the saved parameters and state have the shapes of `like` (a trainer's
    /// current parameters): every trainer's `restore` starts here.
    pub fn check_fits(&self, like: &Params, optimizer: Optimizer) -> Result<()> {
        let saved_kind = self.optimizer.kind();
        if saved_kind != OptimizerState::zeros(optimizer, &Params { layers: Vec::new() }).kind() {
            return Err(Error::InvalidInput(format!(
                "the saved optimizer state is {saved_kind}'s, but this run's optimizer is {optimizer}"
            )));
        }
        let shapes = |p: &Params| p.layers.iter().map(|l| (l.w.dim(), l.b.len())).collect::<Vec<_>>();
        let want = shapes(like);
        let mut saved = vec![("parameters", shapes(&self.params))];
        match &self.optimizer {
            OptimizerState::Sgd => {}
            OptimizerState::Momentum { velocity } => saved.push(("momentum velocity", shapes(velocity))),
            OptimizerState::Adam { m, v, .. } => {
                saved.push(("Adam m", shapes(m)));
                saved.push(("Adam v", shapes(v)));
            }
        }
        match saved.into_iter().find(|(_, got)| *got != want) {
            Some((what, got)) => {
                Err(Error::InvalidInput(format!("the saved {what} have shapes {got:?}, the model needs {want:?}")))
            }
            None => Ok(()),
        }
    }
}

/// A device that trains one model on one data set, both given at construction.
pub trait Trainer {
    /// What runs the math, e.g. "cpu" or the GPU adapter's name.
    fn device(&self) -> String;

    /// Gradient-descent steps (batches) in one epoch.
    fn steps_per_epoch(&self) -> usize;

    /// Device memory the trainer allocated, in bytes; None on the CPU.
    fn gpu_bytes(&self) -> Option<u64> {
        None
    }

    /// Data-parallel ([`crate::parallel`]): seconds this rank has spent
    /// summing gradients with the others; None for a trainer on its own.
    fn communication_seconds(&self) -> Option<f64> {
        None
    }

    /// Trains `epochs` epochs and returns each epoch's metrics, read back once
    /// at the end (a GPU trainer reads back once per [`crate::gpu::RING_EPOCHS`]
    /// in a longer call).
    fn train(&mut self, epochs: usize) -> Result<Vec<EpochMetrics>> {
        self.train_until(epochs, &|| false)
    }

    /// [`Trainer::train`], asking `stop` as it goes: after every step on the
    /// CPU, between submits (every 64 steps at most) on the GPU. Once it says
    /// true, the trainer goes back to the start of the epoch it was in, so its
    /// state is exactly that after the epochs it returns (fewer than asked),
    /// and a checkpoint of it resumes bit for bit.
    fn train_until(&mut self, epochs: usize, stop: &dyn Fn() -> bool) -> Result<Vec<EpochMetrics>>;

    /// Mean loss of the current parameters over the whole training set.
    fn evaluate(&mut self) -> Result<f32>;

    /// The current parameters, optimizer state and shuffle position, on the host.
    fn state(&mut self) -> Result<TrainState>;

    /// Continues from `state` (of a trainer of the same model and settings).
    fn restore(&mut self, state: &TrainState) -> Result<()>;

    /// Where the learning-rate schedule stands: the epoch trained next,
    /// counted from the start of the first run (a resume's checkpoint epoch),
    /// and the plateau scale of the base rate (see [`crate::schedule`]).
    /// A new trainer starts at epoch 0, scale 1; each epoch trained moves it on.
    fn set_schedule(&mut self, next_epoch: usize, lr_scale: f32);

    /// The current parameters, on the host.
    fn params(&mut self) -> Result<Params> {
        Ok(self.state()?.params)
    }
}

/// What a [`fit`] run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct FitReport {
    /// Loss of the initial parameters over the whole training set.
    pub initial_loss: f32,
    /// Loss of the final parameters over the whole training set.
    pub final_loss: f32,
    /// Epochs trained by this run (after a resume, not counting earlier ones).
    pub epochs: usize,
    /// Gradient steps taken: epochs times batches per epoch.
    pub steps: usize,
    /// Wall time of the training epochs, read-backs included, evaluation not.
    pub seconds: f64,
    /// Every epoch's metrics, first epoch first.
    pub history: Vec<EpochMetrics>,
    /// With [`Schedule::monitor`]: the best read-back epoch so far (a
    /// resumed run's earlier epochs included).
    pub best: Option<BestEpoch>,
    /// Why the run ended.
    pub stop_reason: StopReason,
    /// A plateau schedule's state at the end.
    pub plateau: Option<Plateau>,
}

/// Why a [`fit_schedule`] run ended without an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// It trained every epoch of the schedule.
    Epochs,
    /// The monitored metric did not improve for `patience` epochs.
    EarlyStopping,
}

impl StopReason {
    /// "epochs" or "early-stopping", as `--json` writes it.
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Epochs => "epochs",
            StopReason::EarlyStopping => "early-stopping",
        }
    }
}

/// The metric that picks the best epoch (`--monitor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Monitor {
    /// The loss over the held-out rows ([`EpochMetrics::val_loss`]); lower is better.
    ValLoss,
    /// The accuracy over the held-out rows; higher is better.
    ValAccuracy,
    /// The epoch's training loss; lower is better.
    TrainLoss,
}

crate::model::named_by_value_enum!(Monitor);

impl Monitor {
    /// Its value in an epoch's metrics; None where the run does not measure it.
    pub fn value(self, metrics: &EpochMetrics) -> Option<f32> {
        match self {
            Monitor::ValLoss => metrics.val_loss,
            Monitor::ValAccuracy => metrics.val_accuracy,
            Monitor::TrainLoss => Some(metrics.train_loss),
        }
    }

    /// Whether `value` beats `best` by more than `min_delta`. NaN never does.
    pub fn improves(self, value: f32, best: f32, min_delta: f32) -> bool {
        match self {
            Monitor::ValLoss | Monitor::TrainLoss => value < best - min_delta,
            Monitor::ValAccuracy => value > best + min_delta,
        }
    }
}

/// The best epoch a monitored run has seen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BestEpoch {
    /// Counted from the start of the first run.
    pub epoch: usize,
    /// The monitored metric's value at that epoch.
    pub value: f32,
}

/// Which metric picks the best epoch, and when a lack of progress ends the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Monitoring {
    /// The metric.
    pub monitor: Monitor,
    /// Stop once this many epochs have passed since the best one
    /// (`early_stopping`); None trains every epoch.
    pub patience: Option<usize>,
    /// The least change that counts as an improvement (`min_delta`), >= 0.
    pub min_delta: f32,
    /// The best epoch of the run a checkpoint came from (None for a new run),
    /// so that a resumed run picks the same best epoch as an unbroken one.
    pub resumed_best: Option<BestEpoch>,
}

impl FitReport {
    /// Steps over the training seconds (0 when no time was measured).
    pub fn steps_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.steps as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The last epoch's metrics; None after 0 epochs.
    pub fn last(&self) -> Option<&EpochMetrics> {
        self.history.last()
    }
}

/// When a [`fit_schedule`] run reads back and saves, and where it starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    /// Epochs done before (by the run a checkpoint came from); 0 for a new run.
    pub first_epoch: usize,
    /// The epoch to stop after, counted from the start of the first run.
    pub last_epoch: usize,
    /// Metrics are read back every this many epochs, and at every save.
    pub log_every: usize,
    /// A checkpoint every this many epochs (and after the last), if any.
    pub save_every: Option<usize>,
    /// The best epoch is tracked at each read-back (its last epoch, so
    /// every epoch with `log_every` 1), told to [`FitHooks::improved`], and
    /// may end the run early; None: neither.
    pub monitor: Option<Monitoring>,
    /// A plateau schedule's watch (`lr_schedule` plateau): the rate is cut at
    /// read-backs; None for every other schedule.
    pub plateau: Option<PlateauWatch>,
}

/// What a plateau schedule watches, and where it stood when the run resumed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauWatch {
    /// The metric whose lack of improvement cuts the rate.
    pub monitor: Monitor,
    /// Epochs without improvement before a cut (`lr_patience`).
    pub patience: usize,
    /// The factor of each cut (`lr_factor`).
    pub factor: f32,
    /// Where it stood: [`Plateau::default`] for a new run, the checkpoint's for a resume.
    pub state: Plateau,
}

/// What [`fit_schedule`] tells its caller as it goes.
pub trait FitHooks {
    /// A read-back: the metrics of the epochs since the last one, of which the
    /// last is epoch `epoch` (counted from the first run); `seconds` since this
    /// run's training started.
    fn logged(&mut self, _epoch: usize, _epochs: &[EpochMetrics], _seconds: f64) -> Result<()> {
        Ok(())
    }

    /// Time to save a checkpoint after `epoch`.
    fn save(&mut self, _trainer: &mut dyn Trainer, _epoch: usize) -> Result<()> {
        Ok(())
    }

    /// Asked as training goes (see [`Trainer::train_until`]): true stops the
    /// run at the last whole epoch, after a save.
    fn stop_requested(&self) -> bool {
        false
    }

    /// The monitored metric improved at read-back epoch `best.epoch`: the
    /// trainer holds that epoch's state (save it to keep the best model).
    /// Called before any [`FitHooks::save`] of the same epoch.
    fn improved(&mut self, _trainer: &mut dyn Trainer, _best: BestEpoch) -> Result<()> {
        Ok(())
    }

    /// A plateau schedule's state after a read-back (before any save of the
    /// same epoch), for checkpoints to keep.
    fn plateau(&mut self, _state: Plateau) {}
}

/// Runs the epochs of `schedule`, reading the metrics back every `log_every`
/// epochs, at every save and after the last; the hooks see each read-back and
/// each save. Fails with [`Error::NonFiniteLoss`] naming the first epoch whose
/// loss is NaN or infinite, and with [`Error::Interrupted`] after saving when
/// the hooks ask to stop.
pub fn fit_schedule(trainer: &mut dyn Trainer, schedule: Schedule, hooks: &mut dyn FitHooks) -> Result<FitReport> {
    let Schedule { first_epoch, last_epoch, log_every, save_every, monitor, plateau } = schedule;
    if log_every == 0 || save_every == Some(0) {
        return Err(Error::InvalidInput("log_every and save_every must be at least 1".into()));
    }
    if monitor.is_some_and(|m| !(m.min_delta >= 0.0 && m.min_delta.is_finite())) {
        return Err(Error::InvalidInput("`min_delta` must be a finite number >= 0".into()));
    }
    let mut best = monitor.and_then(|m| m.resumed_best);
    let mut plateau_state = plateau.map(|p| p.state);
    let mut stop_reason = StopReason::Epochs;
    let epochs = last_epoch.saturating_sub(first_epoch);
    let initial_loss = trainer.evaluate()?;
    // Grows as epochs happen: nothing is sized by the epoch count up front.
    let mut history = Vec::new();
    let start = Instant::now();
    while history.len() < epochs {
        let done = first_epoch + history.len();
        let to_save = save_every.map_or(usize::MAX, |every| every - done % every);
        let chunk = log_every.min(epochs - history.len()).min(to_save);
        trainer.set_schedule(done, plateau_state.map_or(1.0, |p| p.scale));
        let metrics = {
            let hooks = &*hooks;
            trainer.train_until(chunk, &|| hooks.stop_requested())?
        };
        if let Some(i) = metrics.iter().position(|m| !m.train_loss.is_finite()) {
            let epoch = first_epoch + history.len() + i + 1;
            return Err(Error::NonFiniteLoss { epoch, value: metrics[i].train_loss });
        }
        history.extend_from_slice(&metrics);
        let epoch = first_epoch + history.len();
        if !metrics.is_empty() {
            hooks.logged(epoch, &metrics, start.elapsed().as_secs_f64())?;
        }
        if let (Some(watch), Some(state), Some(last)) = (plateau, plateau_state.as_mut(), metrics.last()) {
            let value = watch.monitor.value(last).ok_or_else(|| {
                Error::InvalidInput(format!("`monitor` {} is not measured by this run", watch.monitor))
            })?;
            if state.best.is_nan() || watch.monitor.improves(value, state.best, 0.0) {
                (state.best, state.wait) = (value, 0);
            } else {
                state.wait += metrics.len();
                if state.wait >= watch.patience {
                    (state.scale, state.wait) = (state.scale * watch.factor, 0);
                }
            }
            hooks.plateau(*state);
        }
        if let (Some(monitoring), Some(last)) = (monitor, metrics.last()) {
            let value = monitoring.monitor.value(last).ok_or_else(|| {
                Error::InvalidInput(format!("`monitor` {} is not measured by this run", monitoring.monitor))
            })?;
            if best.is_none_or(|b| monitoring.monitor.improves(value, b.value, monitoring.min_delta)) && !value.is_nan()
            {
                let improved = BestEpoch { epoch, value };
                best = Some(improved);
                hooks.improved(trainer, improved)?;
            }
            let since_best = epoch - best.map_or(first_epoch, |b| b.epoch);
            if monitoring.patience.is_some_and(|patience| since_best >= patience) && history.len() < epochs {
                stop_reason = StopReason::EarlyStopping;
                if save_every.is_some() {
                    hooks.save(trainer, epoch)?;
                }
                break;
            }
        }
        let stop = metrics.len() < chunk || hooks.stop_requested();
        if stop || save_every.is_some_and(|every| epoch % every == 0 || epoch == last_epoch) {
            hooks.save(trainer, epoch)?;
        }
        if stop {
            return Err(Error::Interrupted { epoch });
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let final_loss = trainer.evaluate()?;
    let epochs = history.len();
    let steps = epochs.saturating_mul(trainer.steps_per_epoch());
    Ok(FitReport {
        initial_loss,
        final_loss,
        epochs,
        steps,
        seconds,
        history,
        best,
        stop_reason,
        plateau: plateau_state,
    })
}

/// Runs `epochs` epochs of a new run, reading the metrics back every
/// `log_every` epochs and after the last; `on_log(epoch, metrics)` sees the
/// last epoch of each read-back.
pub fn fit(
    trainer: &mut dyn Trainer,
    epochs: usize,
    log_every: usize,
    on_log: impl FnMut(usize, &EpochMetrics),
) -> Result<FitReport> {
    struct Log<F>(F);
    impl<F: FnMut(usize, &EpochMetrics)> FitHooks for Log<F> {
        fn logged(&mut self, epoch: usize, epochs: &[EpochMetrics], _: f64) -> Result<()> {
            (self.0)(epoch, epochs.last().expect("a read-back carries at least one epoch"));
            Ok(())
        }
    }
    let schedule =
        Schedule { first_epoch: 0, last_epoch: epochs, log_every, save_every: None, monitor: None, plateau: None };
    fit_schedule(trainer, schedule, &mut Log(on_log))
}
