//! Feature scaling, fitted on the training rows and applied unchanged to the
//! test rows, so nothing of the test set leaks into training.

use ndarray::{Array1, Array2, Axis};

/// How input columns are scaled (`--scale`); written and parsed by its
/// kebab-case name ("minmax").
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// Inputs as they are (a scaler of shift 0, divisor 1).
    None,
    /// (x - min) / (max - min) per column, to [0, 1] on the training rows.
    #[value(name = "minmax")]
    MinMax,
    /// (x - mean) / std per column (population std).
    Standard,
    /// x / 255: the default for images, whose pixels are 0..=255.
    Pixels,
}

/// A fitted scaling: x -> (x - shift) / divisor per column. Checkpoints keep
/// it, so predictions scale new data as the training data was scaled.
#[derive(Clone, Debug, PartialEq)]
pub struct Scaler {
    /// Subtracted from each column (IN): the training rows' min or mean, or 0.
    pub shift: Array1<f32>,
    /// Then divided by (IN): range, std or 255, and 1 where that would be 0
    /// (a constant column), so no column divides by zero.
    pub divisor: Array1<f32>,
}

impl Scaler {
    /// Scales the rows of `x` (N, IN) in place.
    pub fn apply(&self, x: &mut Array2<f32>) {
        *x -= &self.shift;
        *x /= &self.divisor;
    }

    /// Leaves the columns `inputs` as they are (shift 0, divisor 1): the
    /// one-hot inputs of categorical columns, which are 0 or 1 already.
    pub fn keep_unscaled(&mut self, inputs: &[usize]) {
        for &i in inputs {
            self.shift[i] = 0.0;
            self.divisor[i] = 1.0;
        }
    }
}

impl Scale {
    /// Scales `train` and `test` in place with statistics of `train` and
    /// returns the scaling. A column that is constant on the training rows is
    /// only shifted.
    pub fn apply(self, train: &mut Array2<f32>, test: Option<&mut Array2<f32>>) -> Scaler {
        let scaler = self.fit(train);
        for data in std::iter::once(train).chain(test) {
            scaler.apply(data);
        }
        scaler
    }

    /// The scaling of columns with statistics of `train` (N, IN).
    pub fn fit(self, train: &Array2<f32>) -> Scaler {
        let (shift, divisor): (Array1<f32>, Array1<f32>) = match self {
            Scale::None => (Array1::zeros(train.ncols()), Array1::ones(train.ncols())),
            Scale::Pixels => (Array1::zeros(train.ncols()), Array1::from_elem(train.ncols(), 255.0)),
            Scale::MinMax => {
                let min = train.fold_axis(Axis(0), f32::INFINITY, |m, &v| m.min(v));
                let max = train.fold_axis(Axis(0), f32::NEG_INFINITY, |m, &v| m.max(v));
                let range = &max - &min;
                (min, range)
            }
            Scale::Standard => {
                let mean = train.mean_axis(Axis(0)).expect("the training set has rows");
                (mean, train.std_axis(Axis(0), 0.0))
            }
        };
        Scaler { shift, divisor: divisor.mapv(|d| if d > 0.0 { d } else { 1.0 }) }
    }
}

crate::model::named_by_value_enum!(Scale);
