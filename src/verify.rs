//! Lock-step verification (`--verify`): the CPU reference trains beside the
//! chosen trainer, the same epochs from the same state, and the two are
//! compared at every read-back, not only at the end. The first read-back
//! where a parameter differs beyond the tolerance stops the run, naming the
//! epoch, the tensor, the index and both values: a driver or kernel bug
//! shows where it starts, apart from a training problem, which both share.

use std::cell::RefCell;
use std::rc::Rc;

use crate::error::{Error, Result};
use crate::model::Params;
use crate::train::{EpochMetrics, Run, TrainState, Trainer};
use crate::CpuTrainer;

/// How far apart a parameter may be: |got - want| <= atol + rtol * |want|.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// The absolute part.
    pub atol: f32,
    /// The part relative to the reference's value.
    pub rtol: f32,
}

/// What one read-back's comparison found.
#[derive(Clone, Debug, PartialEq)]
pub struct Compared {
    /// The epoch of the read-back, counted from the start of this run's
    /// trainer (add a resumed run's first epoch for the run's own count).
    pub epoch: usize,
    /// The largest |got - want| over every parameter.
    pub max_abs_diff: f32,
    /// Where it is: `layers.{l}.weight` or `layers.{l}.bias`.
    pub tensor: String,
    /// The reference's loss over the training rows at that read-back, as
    /// [`Trainer::evaluate`] gives it.
    pub reference_loss: f32,
}

/// A parameter beyond the tolerance: where, and both values.
#[derive(Clone, Debug, PartialEq)]
pub struct Beyond {
    /// `layers.{l}.weight` or `layers.{l}.bias`.
    pub tensor: String,
    /// Its index: `[row, column]` of a weight, `[i]` of a bias.
    pub index: Vec<usize>,
    /// The checked trainer's value.
    pub got: f32,
    /// The CPU reference's value.
    pub want: f32,
}

/// The chosen trainer with the CPU reference beside it: a [`Trainer`] that
/// trains both and compares their parameters after every call to train.
pub struct LockStep {
    checked: Box<dyn Trainer>,
    reference: CpuTrainer,
    tolerance: Tolerance,
    epochs: usize,
    history: Rc<RefCell<Vec<Compared>>>,
}

impl LockStep {
    /// `checked` (built from `run`) beside a CPU reference built from the
    /// same run, both from `state` when resuming.
    pub fn new(checked: Box<dyn Trainer>, run: &Run, state: Option<&TrainState>, tolerance: Tolerance) -> Result<Self> {
        let mut reference = CpuTrainer::new(run)?;
        if let Some(state) = state {
            reference.restore(state)?;
        }
        Ok(Self { checked, reference, tolerance, epochs: 0, history: Rc::default() })
    }

    /// Every read-back's comparison so far, first first; shared, so a
    /// progress line can show the latest while the fit loop holds the trainer.
    pub fn history(&self) -> Rc<RefCell<Vec<Compared>>> {
        Rc::clone(&self.history)
    }
}

/// `layers.{l}.weight`/`bias`, the flat values of every tensor of `params`.
fn tensors(params: &Params) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    params
        .layers
        .iter()
        .enumerate()
        .flat_map(|(l, layer)| {
            [
                (format!("layers.{l}.weight"), layer.w.shape().to_vec(), layer.w.iter().copied().collect()),
                (format!("layers.{l}.bias"), layer.b.shape().to_vec(), layer.b.iter().copied().collect()),
            ]
        })
        .collect()
}

/// The largest difference of `got` from `want` and its tensor, and the first
/// parameter beyond `tolerance` (in tensor order), if any.
pub fn compare(got: &Params, want: &Params, tolerance: Tolerance) -> (f32, String, Option<Beyond>) {
    let (mut max, mut max_tensor, mut beyond) = (0.0f32, String::new(), None);
    for ((name, shape, got), (_, _, want)) in tensors(got).into_iter().zip(tensors(want)) {
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let diff = (g - w).abs();
            // NaN on either side is beyond any tolerance, and the largest difference.
            let diff = if diff.is_nan() { f32::INFINITY } else { diff };
            if diff > max || max_tensor.is_empty() {
                (max, max_tensor) = (diff, name.clone());
            }
            let limit = tolerance.atol + tolerance.rtol * w.abs();
            if beyond.is_none() && (diff > limit || limit.is_nan()) {
                let index = if shape.len() == 2 { vec![i / shape[1], i % shape[1]] } else { vec![i] };
                beyond = Some(Beyond { tensor: name.clone(), index, got: g, want: w });
            }
        }
    }
    (max, max_tensor, beyond)
}

impl Trainer for LockStep {
    fn device(&self) -> String {
        self.checked.device()
    }

    fn steps_per_epoch(&self) -> usize {
        self.checked.steps_per_epoch()
    }

    fn gpu_bytes(&self) -> Option<u64> {
        self.checked.gpu_bytes()
    }

    fn communication_seconds(&self) -> Option<f64> {
        self.checked.communication_seconds()
    }

    /// Trains the checked trainer, then the reference the same whole epochs
    /// (a stop mid-epoch leaves both at an epoch's start), and compares.
    fn train_until(&mut self, epochs: usize, stop: &dyn Fn() -> bool) -> Result<Vec<EpochMetrics>> {
        let metrics = self.checked.train_until(epochs, stop)?;
        if metrics.is_empty() {
            return Ok(metrics);
        }
        self.reference.train(metrics.len())?;
        self.epochs += metrics.len();
        let (max_abs_diff, tensor, beyond) =
            compare(&self.checked.params()?, &self.reference.params()?, self.tolerance);
        let reference_loss = self.reference.evaluate()?;
        self.history.borrow_mut().push(Compared { epoch: self.epochs, max_abs_diff, tensor, reference_loss });
        if let Some(Beyond { tensor, index, got, want }) = beyond {
            return Err(Error::VerifyFailed { epoch: self.epochs, tensor, index, got, want });
        }
        Ok(metrics)
    }

    fn evaluate(&mut self) -> Result<f32> {
        self.checked.evaluate()
    }

    fn state(&mut self) -> Result<TrainState> {
        self.checked.state()
    }

    /// Restores both, so they go on from the same state.
    fn restore(&mut self, state: &TrainState) -> Result<()> {
        self.checked.restore(state)?;
        self.reference.restore(state)
    }

    fn params(&mut self) -> Result<Params> {
        self.checked.params()
    }

    fn set_schedule(&mut self, next_epoch: usize, lr_scale: f32) {
        self.checked.set_schedule(next_epoch, lr_scale);
        self.reference.set_schedule(next_epoch, lr_scale);
    }
}
