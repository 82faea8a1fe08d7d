//! The one-page API: [`Mlp`], a network with its training settings, built by
//! [`MlpBuilder`], that fits ndarray arrays, predicts on new rows, and saves
//! to and loads from a checkpoint in one call each. Everything underneath
//! ([`Backend`], [`Trainer`](crate::Trainer), [`crate::checkpoint`])
//! stays available for those who need more.
//!
//! ```
//! use wgpu_mlp::ndarray::array;
//! use wgpu_mlp::model::Activation;
//! use wgpu_mlp::Mlp;
//!
//! # fn main() -> wgpu_mlp::Result<()> {
//! let x = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
//! let labels = [0, 1, 1, 0];
//! let mut mlp = Mlp::builder().hidden([8]).activation(Activation::Tanh).lr(0.05).epochs(400).seed(1).build()?;
//! mlp.fit_classes(x.view(), &labels)?;
//! assert_eq!(mlp.predict_classes(x.view())?, labels);
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use ndarray::{Array2, ArrayView2};

use crate::backend::Backend;
use crate::checkpoint;
use crate::cpu::{argmax, output_from_logits};
use crate::data::{Dataset, Scale, Scaler};
use crate::dropout::Dropout;
use crate::error::{Error, Result};
use crate::model::{Activation, Init, Loss, MlpSpec, Output, Params};
use crate::train::{fit, FitReport, Optimizer, OptimizerState, Run, TrainConfig, TrainState};

/// The settings of an [`Mlp`]; every one has a default that suits a small
/// tabular problem (relu, Adam with lr 0.001, batches of 32 reshuffled every
/// epoch, 100 epochs, standard scaling, seed 0, the CPU).
#[derive(Clone, Debug)]
pub struct MlpBuilder {
    hidden: Vec<usize>,
    activation: Activation,
    negative_slope: Option<f32>,
    output: Option<Output>,
    loss: Option<Loss>,
    init: Option<Init>,
    config: TrainConfig,
    epochs: usize,
    scale: Scale,
    backend: Backend,
}

impl Default for MlpBuilder {
    fn default() -> Self {
        Self {
            hidden: vec![32],
            activation: Activation::Relu,
            negative_slope: None,
            output: None,
            loss: None,
            init: None,
            config: TrainConfig {
                lr: 0.001,
                optimizer: Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
                weight_decay: 0.0,
                batch_size: Some(32),
                shuffle: true,
                seed: 0,
                lr_schedule: Default::default(),
                clip: Default::default(),
                dropout: Dropout::Off,
                dp: None,
            },
            epochs: 100,
            scale: Scale::Standard,
            backend: Backend::Cpu,
        }
    }
}

impl MlpBuilder {
    /// The hidden layer sizes, input side first (`[]` for none); the input
    /// and output sizes come from the data `fit` gets.
    pub fn hidden(mut self, sizes: impl IntoIterator<Item = usize>) -> Self {
        self.hidden = sizes.into_iter().collect();
        self
    }

    /// The hidden layers' activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Leaky relu's slope below 0, in [0, 1) [default: 0.01]; only with
    /// `activation(Activation::LeakyRelu)` (`build` refuses it otherwise).
    pub fn negative_slope(mut self, negative_slope: f32) -> Self {
        self.negative_slope = Some(negative_slope);
        self
    }

    /// The output layer [default: softmax for classes, sigmoid under bce,
    /// identity otherwise].
    pub fn output(mut self, output: Output) -> Self {
        self.output = Some(output);
        self
    }

    /// The loss [default: cross-entropy with a softmax output, else MSE].
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = Some(loss);
        self
    }

    /// How weights start [default: He for relu, Xavier otherwise].
    pub fn init(mut self, init: Init) -> Self {
        self.init = Some(init);
        self
    }

    /// The update rule.
    pub fn optimizer(mut self, optimizer: Optimizer) -> Self {
        self.config.optimizer = optimizer;
        self
    }

    /// The learning rate.
    pub fn lr(mut self, lr: f32) -> Self {
        self.config.lr = lr;
        self
    }

    /// L2 weight decay added to every gradient.
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        self.config.weight_decay = weight_decay;
        self
    }

    /// Rows per step; `None` is the whole training set.
    pub fn batch_size(mut self, batch_size: Option<usize>) -> Self {
        self.config.batch_size = batch_size;
        self
    }

    /// A new order of the training rows every epoch.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.config.shuffle = shuffle;
        self
    }

    /// The seed of the initialisation and the shuffles.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Passes over the training data in each `fit`.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// How input columns are scaled, with statistics of the training rows;
    /// the scaling is kept with the model and applied to every row predicted.
    pub fn scale(mut self, scale: Scale) -> Self {
        self.scale = scale;
        self
    }

    /// Where the math runs (a GPU's [`Backend`], or the CPU).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Checks the settings that do not depend on the data.
    pub fn build(self) -> Result<Mlp> {
        if self.hidden.contains(&0) {
            return Err(Error::InvalidInput(format!(
                "every hidden layer needs a unit, got `hidden` {:?}",
                self.hidden
            )));
        }
        if let (Some(output), Some(loss)) = (self.output, self.loss) {
            MlpSpec::new(vec![1, 1])?.with(self.activation, output, loss)?;
        }
        if let Some(negative_slope) = self.negative_slope {
            let stand_in = MlpSpec::new(vec![1, 1])?.with(self.activation, Output::Identity, Loss::Mse)?;
            stand_in.with_negative_slope(negative_slope)?;
        }
        // The data-dependent checks run in fit; these need only a stand-in.
        let stand_in = Dataset::seed_problem(1, 1, 1, 0)?;
        self.config.check(&MlpSpec::new(vec![1, 1])?, &stand_in, None)?;
        Ok(Mlp { settings: self, model: None })
    }
}

/// A trained network: what `predict` and `save` use.
#[derive(Clone, Debug)]
struct Fitted {
    spec: MlpSpec,
    /// The parameters and the optimizer's state, as a checkpoint holds them.
    state: TrainState,
    scaler: Scaler,
    /// The training data's fingerprint and the epochs trained, for the checkpoint.
    fingerprint: u64,
    epochs: usize,
}

/// A multilayer perceptron and its training settings (see the module docs
/// for an example). `fit` trains it from a fresh, seeded start; `predict`
/// runs it forward on new rows; the same settings and data give the same
/// model bit for bit on the CPU.
#[derive(Clone, Debug)]
pub struct Mlp {
    settings: MlpBuilder,
    model: Option<Fitted>,
}

impl Mlp {
    /// The settings, each with its default, to change and `build`.
    pub fn builder() -> MlpBuilder {
        MlpBuilder::default()
    }

    /// Fits a regression: x is (N, IN), y is (N, OUT) targets. The output is
    /// the identity and the loss MSE unless the builder chose others.
    pub fn fit(&mut self, x: ArrayView2<f32>, y: ArrayView2<f32>) -> Result<FitReport> {
        check_rows(x, y.nrows())?;
        check_finite("y", y)?;
        self.train(x, y.to_owned(), None)
    }

    /// Fits a classifier: x is (N, IN), `labels` (N) are classes 0..K, where K
    /// is the largest label + 1. The output is a softmax with cross-entropy
    /// unless the builder chose others.
    pub fn fit_classes(&mut self, x: ArrayView2<f32>, labels: &[usize]) -> Result<FitReport> {
        check_rows(x, labels.len())?;
        let classes = labels.iter().max().map_or(0, |&top| top + 1);
        if classes < 2 {
            return Err(Error::InvalidInput("classification needs at least two classes in the labels".into()));
        }
        let targets = Dataset::classification(Array2::zeros((labels.len(), 0)), labels, classes)?.y;
        self.train(x, targets, Some(classes))
    }

    /// x (N, IN) to the network's outputs (N, OUT): class probabilities for a
    /// softmax output (each row sums to 1), each output's probability under
    /// bce, the last layer's values otherwise.
    pub fn predict(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        let model = self.fitted()?;
        if x.ncols() != model.spec.inputs() {
            return Err(Error::InvalidInput(format!(
                "x has {} columns, but the model was fitted on {}",
                x.ncols(),
                model.spec.inputs()
            )));
        }
        check_finite("x", x)?;
        let mut scaled = x.to_owned();
        model.scaler.apply(&mut scaled);
        let mut outputs = self.settings.backend.forward(&model.spec, &model.state.params, scaled.view())?;
        output_from_logits(&model.spec, &mut outputs);
        Ok(outputs)
    }

    /// Each row's class: the column of its largest output.
    pub fn predict_classes(&self, x: ArrayView2<f32>) -> Result<Vec<usize>> {
        Ok(self.predict(x)?.rows().into_iter().map(argmax).collect())
    }

    /// The network and its parameters, once fitted or loaded.
    pub fn model(&self) -> Option<(&MlpSpec, &Params)> {
        self.model.as_ref().map(|m| (&m.spec, &m.state.params))
    }

    /// Writes the fitted model to `path` as a checkpoint (safetensors, written
    /// atomically), with its input scaling, which `wgpu-mlp predict`, `eval`
    /// and `export` also read.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let model = self.fitted()?;
        let config = &self.settings.config;
        let metadata = checkpoint::describe(&model.spec, config.optimizer, config.seed, model.fingerprint);
        checkpoint::save(path, &model.state, model.epochs, metadata, Some(&model.scaler))
    }

    /// Reads a checkpoint written by [`Mlp::save`] or by a `wgpu-mlp` run,
    /// ready to predict on the CPU (see [`Mlp::with_backend`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Mlp> {
        let path = path.as_ref();
        // The optimizer's state comes along when the file has it, so a save
        // writes it back; a file of the network alone loads too.
        let saved = checkpoint::load_model(path)?;
        let spec = saved.spec;
        let optimizer: Optimizer = saved.metadata["optimizer"].parse().map_err(Error::InvalidInput)?;
        let state = match checkpoint::load(path, &spec) {
            Ok(full) => full.state,
            Err(_) => TrainState { params: saved.params, optimizer: OptimizerState::Sgd, shuffle_position: 0 },
        };
        let fingerprint = u64::from_str_radix(&saved.metadata["data_fingerprint"], 16).unwrap_or(0);
        let scaler = saved.scaler.unwrap_or_else(|| Scale::None.fit(&Array2::zeros((1, spec.inputs()))));
        let defaults = MlpBuilder::default();
        let config = TrainConfig { optimizer, ..defaults.config };
        let settings = MlpBuilder {
            hidden: spec.sizes()[1..spec.sizes().len() - 1].to_vec(),
            activation: spec.hidden(),
            negative_slope: (spec.hidden() == Activation::LeakyRelu).then(|| spec.negative_slope()),
            output: Some(spec.output()),
            loss: Some(spec.loss()),
            config,
            ..defaults
        };
        let model = Fitted { spec, state, scaler, fingerprint, epochs: saved.epoch };
        Ok(Mlp { settings, model: Some(model) })
    }

    /// The same model, trained and run on `backend` from now on.
    pub fn with_backend(self, backend: Backend) -> Mlp {
        Mlp { settings: MlpBuilder { backend, ..self.settings }, ..self }
    }

    fn fitted(&self) -> Result<&Fitted> {
        self.model.as_ref().ok_or_else(|| Error::InvalidInput("the model is not fitted yet: call fit first".into()))
    }

    /// Scales x, builds the net for the data's widths, and trains it from the
    /// seeded start.
    fn train(&mut self, x: ArrayView2<f32>, y: Array2<f32>, classes: Option<usize>) -> Result<FitReport> {
        check_finite("x", x)?;
        let settings = &self.settings;
        let mut x = x.to_owned();
        let scaler = settings.scale.apply(&mut x, None);
        let data = Dataset { x, y, classes };
        let sizes = std::iter::once(data.x.ncols()).chain(settings.hidden.iter().copied()).chain([data.y.ncols()]);
        let output = settings.output.unwrap_or(match (classes, settings.loss) {
            (_, Some(Loss::Bce)) => Output::Sigmoid,
            (Some(_), None | Some(Loss::CrossEntropy)) => Output::Softmax,
            (Some(_), Some(Loss::Mse)) => Output::Sigmoid,
            (None, Some(Loss::CrossEntropy)) => Output::Softmax,
            (None, _) => Output::Identity,
        });
        let loss = settings.loss.unwrap_or(if output == Output::Softmax { Loss::CrossEntropy } else { Loss::Mse });
        let mut spec = MlpSpec::new(sizes.collect())?.with(settings.activation, output, loss)?;
        if let Some(negative_slope) = settings.negative_slope {
            spec = spec.with_negative_slope(negative_slope)?;
        }
        let relu_like = matches!(settings.activation, Activation::Relu | Activation::LeakyRelu);
        let init = settings.init.unwrap_or(if relu_like { Init::He } else { Init::Xavier });
        settings.backend.check_fits(&spec, &settings.config, data.len(), 0)?;
        let params = Params::init(&spec, init, settings.config.seed)?;
        let run = Run { spec: &spec, params: &params, train: &data, test: None, config: &settings.config };
        let mut trainer = settings.backend.trainer(&run)?;
        // One read-back at the end: the history still holds every epoch.
        let report = fit(trainer.as_mut(), settings.epochs, settings.epochs.max(1), |_, _| {})?;
        let state = trainer.state()?;
        let fingerprint = data.fingerprint();
        self.model = Some(Fitted { spec, state, scaler, fingerprint, epochs: settings.epochs });
        Ok(report)
    }
}

/// x must have rows, as many as the targets.
fn check_rows(x: ArrayView2<f32>, targets: usize) -> Result<()> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(Error::InvalidInput(format!("x is {} x {}; fit needs rows and columns", x.nrows(), x.ncols())));
    }
    if x.nrows() != targets {
        return Err(Error::InvalidInput(format!("x has {} rows but there are {targets} targets", x.nrows())));
    }
    Ok(())
}

/// Every value finite, or an error naming the first that is not.
fn check_finite(name: &str, values: ArrayView2<f32>) -> Result<()> {
    match values.indexed_iter().find(|(_, v)| !v.is_finite()) {
        Some(((row, col), value)) => {
            Err(Error::InvalidInput(format!("{name}[{row}, {col}] is {value}; every value must be finite")))
        }
        None => Ok(()),
    }
}
