//! The network: its layer sizes, activations and loss ([`MlpSpec`]) and its
//! parameters on the host ([`Params`]), initialised from a seeded RNG so every
//! device starts from the same numbers.
//!
//! Layer l computes `a_l = act(a_{l-1} · W_l + b_l)`. The textbook default is
//! sigmoid everywhere and the mean squared error over all output elements.

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};

/// An element-wise activation; its kernels are `{name}_forward` and
/// `{name}_backward`, with the backward pass written in terms of the output
/// a, except for GELU's (see [`Activation::needs_pre_activation`]). Written
/// and parsed by its kebab-case name ("relu", "leaky-relu"), as the CLI,
/// checkpoints and config.json spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Activation {
    /// 1 / (1 + exp(-z)).
    Sigmoid,
    /// max(z, 0).
    Relu,
    /// tanh(z).
    Tanh,
    /// No activation: the layer's output is x · W + b.
    Identity,
    /// z for z > 0, else s * z, with the spec's [`MlpSpec::negative_slope`]
    /// s in [0, 1) (PyTorch's default 0.01). With s < 1 the output has the
    /// sign of z, so the derivative (1 or s) is still read off the output.
    LeakyRelu,
    /// GELU in its tanh form, 0.5 z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z^3))).
    /// Not monotonic below 0, so its derivative needs z itself: training
    /// keeps each GELU layer's z beside its output.
    Gelu,
}

impl Activation {
    /// Whether the backward pass needs the layer's pre-activation z as well
    /// as its output a: only GELU, whose derivative is no function of a.
    pub fn needs_pre_activation(self) -> bool {
        self == Activation::Gelu
    }
}

/// [`MlpSpec::negative_slope`] unless one is chosen: PyTorch's LeakyReLU default.
pub const DEFAULT_NEGATIVE_SLOPE: f32 = 0.01;

/// What the last layer outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Each output squashed to (0, 1). Under [`Loss::Bce`] the sigmoid is
    /// fused into the loss, so the network itself outputs logits and the
    /// sigmoid is applied where predictions are made (as for softmax).
    Sigmoid,
    /// The last layer's x · W + b as it is: for regression.
    Identity,
    /// Class probabilities; only with [`Loss::CrossEntropy`], which fuses the
    /// softmax into the loss, so the network itself outputs logits.
    Softmax,
}

/// What training minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Loss {
    /// Mean of (pred - target)^2 over all output elements.
    Mse,
    /// Mean over rows of -sum_j target_j log softmax(logits)_j.
    CrossEntropy,
    /// Binary cross-entropy of each output against a target in [0, 1]
    /// (binary or multi-label): the mean over all output elements of
    /// -(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))), computed from the
    /// logits z as max(z, 0) - z y + log(1 + exp(-|z|)). Only with
    /// [`Output::Sigmoid`], which it fuses. Accuracy is not measured under
    /// it (the accuracy kernels compare one class per row).
    Bce,
}

/// How [`Params::init`] draws the weights (biases always start at 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Init {
    /// N(0, 1), as in the textbook example.
    Normal,
    /// Glorot uniform: U(-r, r) with r = sqrt(6 / (IN + OUT)); for sigmoid and tanh.
    Xavier,
    /// He normal: N(0, 2 / IN); for relu.
    He,
}

/// The most parameters a model may have: 2^48 floats are a petabyte, so no
/// real model comes near, and every count and offset derived from the sizes
/// (padded layouts, byte counts) stays far from overflowing.
const MAX_PARAMS: usize = 1 << 48;

/// Layer sizes from input to output (e.g. `[10, 5, 1]`: two layers), the
/// hidden layers' activation (with leaky relu's negative slope), the output
/// and the loss.
///
/// ```
/// use wgpu_mlp::model::{Activation, Loss, MlpSpec, Output};
///
/// let spec = MlpSpec::new(vec![64, 32, 10])?.with(Activation::Relu, Output::Softmax, Loss::CrossEntropy)?;
/// assert_eq!((spec.inputs(), spec.outputs(), spec.num_params()), (64, 10, 64 * 32 + 32 + 32 * 10 + 10));
/// assert_eq!(spec.to_string(), "64,32,10");
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MlpSpec {
    sizes: Vec<usize>,
    hidden: Activation,
    /// Leaky relu's slope below 0; [`DEFAULT_NEGATIVE_SLOPE`] for every
    /// other hidden activation, so that specs of one network compare equal.
    negative_slope: f32,
    output: Output,
    loss: Loss,
}

impl MlpSpec {
    /// The textbook network: sigmoid on every layer, mean squared error.
    /// Checks that there are at least two sizes and none is zero.
    pub fn new(sizes: Vec<usize>) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::InvalidInput(format!(
                "`layers` needs at least two sizes (inputs and outputs), got {}",
                sizes.len()
            )));
        }
        if let Some(i) = sizes.iter().position(|&s| s == 0) {
            return Err(Error::InvalidInput(format!(
                "`layers` size {} (position {}) is 0; every layer needs at least one unit",
                sizes[i],
                i + 1
            )));
        }
        let params = sizes.windows(2).try_fold(0usize, |total, pair| {
            pair[0].checked_mul(pair[1]).and_then(|w| w.checked_add(pair[1])).and_then(|layer| total.checked_add(layer))
        });
        if params.is_none_or(|count| count > MAX_PARAMS) {
            let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
            return Err(Error::InvalidInput(format!(
                "`layers` {} make more than 2^48 parameters, more than the memory of any machine holds",
                sizes.join(",")
            )));
        }
        Ok(Self {
            sizes,
            hidden: Activation::Sigmoid,
            negative_slope: DEFAULT_NEGATIVE_SLOPE,
            output: Output::Sigmoid,
            loss: Loss::Mse,
        })
    }

    /// The same sizes with other activations and loss; softmax output and
    /// cross-entropy loss only come together, and bce needs a sigmoid
    /// output. A hidden activation other than leaky relu sets the negative
    /// slope back to [`DEFAULT_NEGATIVE_SLOPE`].
    pub fn with(self, hidden: Activation, output: Output, loss: Loss) -> Result<Self> {
        if (output == Output::Softmax) != (loss == Loss::CrossEntropy) {
            return Err(Error::InvalidInput(
                "`output` softmax and `loss` cross-entropy go together (the softmax is fused into the loss)".into(),
            ));
        }
        if loss == Loss::Bce && output != Output::Sigmoid {
            return Err(Error::InvalidInput(format!(
                "`loss` bce needs `output` sigmoid, not {output} (the sigmoid is fused into the loss)"
            )));
        }
        let negative_slope = if hidden == Activation::LeakyRelu { self.negative_slope } else { DEFAULT_NEGATIVE_SLOPE };
        Ok(Self { hidden, negative_slope, output, loss, ..self })
    }

    /// The same network with leaky relu's slope below 0 set to
    /// `negative_slope`, which must be finite and in [0, 1) (at 1 or above the
    /// output would no longer tell the sign of z); only for a leaky-relu
    /// hidden activation.
    pub fn with_negative_slope(self, negative_slope: f32) -> Result<Self> {
        if !(negative_slope.is_finite() && (0.0..1.0).contains(&negative_slope)) {
            return Err(Error::InvalidInput(format!(
                "`negative_slope` must be a finite number in [0, 1), got {negative_slope}"
            )));
        }
        if self.hidden != Activation::LeakyRelu {
            return Err(Error::InvalidInput(format!(
                "`negative_slope` applies to leaky-relu hidden layers, and these are {}",
                self.hidden
            )));
        }
        Ok(Self { negative_slope, ..self })
    }

    /// The hidden layers' activation.
    pub fn hidden(&self) -> Activation {
        self.hidden
    }

    /// Leaky relu's slope below 0, in [0, 1); [`DEFAULT_NEGATIVE_SLOPE`]
    /// unless the hidden activation is leaky relu with another one.
    pub fn negative_slope(&self) -> f32 {
        self.negative_slope
    }

    /// What the last layer outputs.
    pub fn output(&self) -> Output {
        self.output
    }

    /// What training minimises.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The activation layer `l` applies in the forward pass; the softmax of a
    /// softmax output and the sigmoid of a bce output are part of the loss,
    /// so those last layers are the identity (they output logits).
    pub fn activation(&self, l: usize) -> Activation {
        if l + 1 < self.num_layers() {
            return self.hidden;
        }
        match (self.output, self.loss) {
            (Output::Sigmoid, Loss::Bce) => Activation::Identity,
            (Output::Sigmoid, _) => Activation::Sigmoid,
            (Output::Identity | Output::Softmax, _) => Activation::Identity,
        }
    }

    /// Floats per row that training keeps of pre-activations z beside the
    /// layer outputs: the widths OUT_l of the layers whose activation
    /// [needs z](Activation::needs_pre_activation) (GELU), else 0.
    pub fn pre_activation_width(&self) -> usize {
        self.layer_shapes()
            .enumerate()
            .filter(|&(l, _)| self.activation(l).needs_pre_activation())
            .map(|(_, (_, fan_out))| fan_out)
            .sum()
    }

    /// Every layer size, inputs first, outputs last.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Inputs per row (IN of the first layer).
    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    /// Outputs per row (OUT of the last layer).
    pub fn outputs(&self) -> usize {
        *self.sizes.last().expect("MlpSpec::new keeps at least two sizes")
    }

    /// (fan_in, fan_out) of each layer, input side first.
    pub fn layer_shapes(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.sizes.windows(2).map(|pair| (pair[0], pair[1]))
    }

    /// Weight layers: one fewer than the sizes.
    pub fn num_layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// What a loss sum over `rows` rows is divided by for the mean: MSE and
    /// bce average over every output element, cross-entropy over rows.
    pub fn loss_divisor(&self, rows: usize) -> f32 {
        let per_row = match self.loss {
            Loss::Mse | Loss::Bce => self.outputs(),
            Loss::CrossEntropy => 1,
        };
        (rows * per_row) as f32
    }

    /// Number of weights and biases.
    pub fn num_params(&self) -> usize {
        self.layer_shapes().map(|(i, o)| i * o + o).sum()
    }
}

impl std::fmt::Display for MlpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: Vec<String> = self.sizes.iter().map(usize::to_string).collect();
        f.write_str(&sizes.join(","))
    }
}

/// One layer's parameters: `w` is (IN, OUT), `b` is (OUT).
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Weights (IN, OUT), row-major: the layer computes x · w + b.
    pub w: Array2<f32>,
    /// Biases (OUT).
    pub b: Array1<f32>,
}

/// All parameters, input layer first.
///
/// ```
/// use wgpu_mlp::model::{Init, MlpSpec, Params};
///
/// let spec = MlpSpec::new(vec![10, 5, 1])?;
/// let params = Params::init(&spec, Init::Normal, 0)?;
/// assert_eq!(params.layers[0].w.dim(), (10, 5));
/// assert_eq!(params, Params::init(&spec, Init::Normal, 0)?, "the same seed, the same numbers");
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// One per weight layer, input side first.
    pub layers: Vec<Layer>,
}

impl Params {
    /// Weights drawn as `init` says and biases 0, from a ChaCha8 RNG seeded
    /// with `seed` (stream 0; other streams of the seed draw data and shuffles).
    pub fn init(spec: &MlpSpec, init: Init, seed: u64) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut layers = Vec::with_capacity(spec.num_layers());
        for (fan_in, fan_out) in spec.layer_shapes() {
            let mut w = zeros((fan_in, fan_out), "a weight matrix")?;
            match init {
                Init::Normal => w.mapv_inplace(|_| StandardNormal.sample(&mut rng)),
                Init::Xavier => {
                    let range = (6.0 / (fan_in + fan_out) as f32).sqrt();
                    w.mapv_inplace(|_| rng.random_range(-range..range));
                }
                Init::He => {
                    let std = (2.0 / fan_in as f32).sqrt();
                    w.mapv_inplace(|_| {
                        let z: f32 = StandardNormal.sample(&mut rng);
                        std * z
                    });
                }
            }
            layers.push(Layer { w, b: Array1::zeros(fan_out) });
        }
        Ok(Self { layers })
    }

    /// Zeros of the same shapes: the optimizers' starting state.
    pub fn zeros_like(&self) -> Params {
        let layers = self
            .layers
            .iter()
            .map(|layer| Layer { w: Array2::zeros(layer.w.raw_dim()), b: Array1::zeros(layer.b.raw_dim()) })
            .collect();
        Params { layers }
    }

    /// Overwrites every value with `other`'s, of the same shapes, without
    /// allocating (a trainer keeps its epoch-start copy this way).
    pub fn copy_from(&mut self, other: &Params) {
        for (layer, from) in self.layers.iter_mut().zip(&other.layers) {
            layer.w.assign(&from.w);
            layer.b.assign(&from.b);
        }
    }

    /// Largest |self - other| over every parameter; both must have one shape.
    pub fn max_abs_diff(&self, other: &Params) -> f32 {
        self.layers
            .iter()
            .zip(&other.layers)
            .flat_map(|(a, b)| {
                let dw = a.w.iter().zip(b.w.iter()).map(|(x, y)| (x - y).abs());
                let db = a.b.iter().zip(b.b.iter()).map(|(x, y)| (x - y).abs());
                dw.chain(db)
            })
            .fold(0.0, f32::max)
    }
}

/// A zeroed (rows, cols) matrix, or an error instead of an abort when the
/// host cannot hold it (a typo such as `--layers 100000,100000,1`).
pub fn zeros(shape: (usize, usize), what: &str) -> Result<Array2<f32>> {
    let too_large = || {
        Error::InvalidInput(format!(
            "{what} of {} x {} floats does not fit in host memory; use smaller sizes",
            shape.0, shape.1
        ))
    };
    let len = shape.0.checked_mul(shape.1).ok_or_else(too_large)?;
    let mut values = Vec::new();
    values.try_reserve_exact(len).map_err(|_| too_large())?;
    values.resize(len, 0.0f32);
    Ok(Array2::from_shape_vec(shape, values).expect("the vector holds rows * cols values"))
}

/// Display and FromStr through the kebab-case names clap's ValueEnum derive
/// gives each variant, so that the CLI, checkpoints and config.json spell an
/// enum one way.
macro_rules! named_by_value_enum {
    ($($name:ty),*) => {$(
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let value = clap::ValueEnum::to_possible_value(self).expect("no variant is skipped");
                f.write_str(value.get_name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> std::result::Result<Self, String> {
                <$name as clap::ValueEnum>::from_str(text, false)
            }
        }
    )*};
}
pub(crate) use named_by_value_enum;

named_by_value_enum!(Activation, Output, Loss, Init);
