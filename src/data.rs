//! Training data: a [`Dataset`] of inputs and targets, the seed problem's
//! generator, and the split into batches.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::model::zeros;

/// `x` is (N, IN) inputs, `y` is (N, OUT) targets; row i is sample i.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub x: Array2<f32>,
    pub y: Array2<f32>,
}

impl Dataset {
    /// The source example's data: `samples` rows of `inputs` values drawn
    /// U(0, 1) and `outputs` targets drawn U(0, 1), from ChaCha8 stream 1 of
    /// `seed` (stream 0 initialises the parameters).
    pub fn seed_problem(samples: usize, inputs: usize, outputs: usize, seed: u64) -> Result<Self> {
        if samples == 0 {
            return Err(Error::InvalidInput("--samples must be at least 1".into()));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        let mut x = zeros((samples, inputs), "the input data")?;
        x.mapv_inplace(|_| rng.random::<f32>());
        let mut y = zeros((samples, outputs), "the target data")?;
        y.mapv_inplace(|_| rng.random::<f32>());
        Ok(Self { x, y })
    }

    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }
}

/// A batch: rows `start .. start + rows` of the data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    pub start: usize,
    pub rows: usize,
}

/// The batches of one epoch over `samples` rows, in order, each `batch_size`
/// rows but the last, which holds what is left (never dropped).
pub fn batches(samples: usize, batch_size: usize) -> Vec<Batch> {
    assert!(
        batch_size > 0,
        "batch size is checked when the config is built"
    );
    (0..samples)
        .step_by(batch_size)
        .map(|start| Batch {
            start,
            rows: batch_size.min(samples - start),
        })
        .collect()
}
