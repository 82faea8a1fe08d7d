//! What both devices share: the [`Trainer`] trait, the training settings, and
//! the fit loop that runs epochs, reads the loss back every `log_every` epochs
//! and stops on a loss that is no longer finite.

use std::time::Instant;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{MlpSpec, Params};

/// Settings of gradient descent that every trainer takes.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Learning rate: positive and finite.
    pub lr: f32,
    /// Rows per step; `None` is the whole data set (full-batch).
    pub batch_size: Option<usize>,
    /// The loss is read back once every this many epochs (at least 1); the GPU
    /// keeps the epochs in between in a ring on the device.
    pub log_every: usize,
}

impl TrainConfig {
    /// Checks the settings against each other and against the model and data.
    pub fn check(&self, spec: &MlpSpec, data: &Dataset) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::InvalidInput(format!(
                "--lr must be a positive finite number, got {}",
                self.lr
            )));
        }
        if self.batch_size == Some(0) {
            return Err(Error::InvalidInput(
                "--batch-size must be at least 1".into(),
            ));
        }
        if self.log_every == 0 {
            return Err(Error::InvalidInput("--log-every must be at least 1".into()));
        }
        if data.is_empty() {
            return Err(Error::InvalidInput("the data set has no samples".into()));
        }
        if data.x.ncols() != spec.inputs() || data.y.ncols() != spec.outputs() {
            return Err(Error::InvalidInput(format!(
                "the data has {} inputs and {} targets per sample, but --layers {} expects {} and {}",
                data.x.ncols(),
                data.y.ncols(),
                spec,
                spec.inputs(),
                spec.outputs()
            )));
        }
        Ok(())
    }
}

/// A device that trains one model on one data set, both given at construction.
pub trait Trainer {
    /// What runs the math, e.g. "cpu" or the GPU adapter's name.
    fn device(&self) -> String;

    /// Gradient-descent steps (batches) in one epoch.
    fn steps_per_epoch(&self) -> usize;

    /// Trains `epochs` epochs and returns each epoch's mean training loss (the
    /// squared errors of its batches, before each batch's update, over all
    /// output elements), read back once at the end.
    fn train(&mut self, epochs: usize) -> Result<Vec<f32>>;

    /// Mean squared error of the current parameters over the whole data set.
    fn evaluate(&mut self) -> Result<f32>;

    /// The current parameters, on the host.
    fn params(&mut self) -> Result<Params>;
}

/// What a [`fit`] run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct FitReport {
    /// Loss of the initial parameters over the whole data set.
    pub initial_loss: f32,
    /// Loss of the final parameters over the whole data set.
    pub final_loss: f32,
    pub epochs: usize,
    pub steps: usize,
    /// Wall time of the training epochs, read-backs included, evaluation not.
    pub seconds: f64,
    /// (epoch, that epoch's mean training loss) at every read-back.
    pub logged: Vec<(usize, f32)>,
}

impl FitReport {
    pub fn steps_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.steps as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Runs `epochs` epochs, reading the losses back every `log_every` epochs and
/// after the last; `on_log(epoch, loss)` sees each read-back. Fails with
/// [`Error::NonFiniteLoss`] naming the first epoch whose loss is NaN or infinite.
pub fn fit(
    trainer: &mut dyn Trainer,
    epochs: usize,
    log_every: usize,
    mut on_log: impl FnMut(usize, f32),
) -> Result<FitReport> {
    let initial_loss = trainer.evaluate()?;
    let mut logged = Vec::new();
    let start = Instant::now();
    let mut done = 0;
    while done < epochs {
        let chunk = log_every.min(epochs - done);
        let losses = trainer.train(chunk)?;
        if let Some(i) = losses.iter().position(|l| !l.is_finite()) {
            return Err(Error::NonFiniteLoss {
                epoch: done + i + 1,
                value: losses[i],
            });
        }
        done += chunk;
        let last = *losses
            .last()
            .expect("train returns one loss per epoch and chunk >= 1");
        on_log(done, last);
        logged.push((done, last));
    }
    let seconds = start.elapsed().as_secs_f64();
    let final_loss = trainer.evaluate()?;
    Ok(FitReport {
        initial_loss,
        final_loss,
        epochs,
        steps: epochs * trainer.steps_per_epoch(),
        seconds,
        logged,
    })
}
