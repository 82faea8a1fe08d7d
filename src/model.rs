//! The network: its layer sizes ([`MlpSpec`]) and its parameters on the host
//! ([`Params`]), initialised from a seeded RNG so every device starts from the
//! same numbers.
//!
//! Every layer is `a = sigmoid(x · W + b)` and the loss is the mean squared
//! error over all output elements, as in the textbook example this grew from.

use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};

/// Layer sizes from input to output, e.g. `[10, 5, 1]`: two layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MlpSpec {
    sizes: Vec<usize>,
}

impl MlpSpec {
    /// Checks that there are at least two sizes and none is zero.
    pub fn new(sizes: Vec<usize>) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::InvalidInput(format!(
                "--layers needs at least two sizes (inputs and outputs), got {}",
                sizes.len()
            )));
        }
        if let Some(i) = sizes.iter().position(|&s| s == 0) {
            return Err(Error::InvalidInput(format!(
                "--layers size {} (position {}) is 0; every layer needs at least one unit",
                sizes[i],
                i + 1
            )));
        }
        Ok(Self { sizes })
    }

    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    pub fn inputs(&self) -> usize {
        self.sizes[0]
    }

    pub fn outputs(&self) -> usize {
        *self
            .sizes
            .last()
            .expect("MlpSpec::new keeps at least two sizes")
    }

    /// (fan_in, fan_out) of each layer, input side first.
    pub fn layer_shapes(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.sizes.windows(2).map(|pair| (pair[0], pair[1]))
    }

    pub fn num_layers(&self) -> usize {
        self.sizes.len() - 1
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
    pub w: Array2<f32>,
    pub b: Array1<f32>,
}

/// All parameters, input layer first.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    pub layers: Vec<Layer>,
}

impl Params {
    /// Weights N(0, 1) and biases 0, as in the source example, from a ChaCha8
    /// RNG seeded with `seed` (stream 0; the seed problem's data uses stream 1).
    pub fn init(spec: &MlpSpec, seed: u64) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut layers = Vec::with_capacity(spec.num_layers());
        for (fan_in, fan_out) in spec.layer_shapes() {
            let mut w = zeros((fan_in, fan_out), "a weight matrix")?;
            w.mapv_inplace(|_| StandardNormal.sample(&mut rng));
            layers.push(Layer {
                w,
                b: Array1::zeros(fan_out),
            });
        }
        Ok(Self { layers })
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
