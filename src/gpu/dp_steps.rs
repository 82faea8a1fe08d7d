//! DP-SGD's steps on the layered path, host side: each chunk of epochs draws
//! its steps' Poisson samples ([`crate::noise::poisson_rows`], the same rows
//! the CPU takes) and writes them once, padded to the plan's room, with each
//! step's size; the recorded steps copy theirs into place, so a varying batch
//! needs no re-recording and no read-back.
//!
//! Buffers (C = the room of a step, [`crate::dp::capacity`]):
//!   dp.rows    (steps, C) u32: each step's sampled rows, then row 0 as padding
//!   dp.counts  (steps, 2) u32: each step's rows k and k * OUT, copied into
//!              dp.sample (the clip factors' mask) and into the first word of
//!              the loss kernels' params (rows for softmax cross-entropy and
//!              the correct count, elements for mse and bce), so the padding
//!              adds no loss, no correct row and no gradient
//!   dp.sample  (1) u32: the step's k
//!   dp.norms   (C) f32: each row's squared gradient norm, then its factor

use crate::dp::DpSgd;
use crate::error::{Error, Result};

/// One chunk's samples as the recorded steps read them.
pub(super) struct ChunkSamples {
    /// (steps, room) row indices, padded with row 0.
    pub rows: Vec<u32>,
    /// (steps, 2): k and k * outputs.
    pub counts: Vec<u32>,
    /// Rows sampled in each epoch of the chunk: the divisor of its metrics.
    pub epoch_rows: Vec<usize>,
}

/// Where a DP-SGD run's sampling stands on the GPU path.
#[derive(Clone, Copy, Debug)]
pub(super) struct DpSampling {
    /// The run's settings.
    pub dp: DpSgd,
    /// q, the probability a step takes a row.
    pub q: f64,
    /// The training rows.
    pub train_rows: usize,
    /// C, the rows a step's buffers have room for.
    pub room: usize,
    /// Steps in an epoch ([`crate::dp::steps_per_epoch`]).
    pub steps_per_epoch: usize,
}

impl DpSampling {
    /// Draws the samples of `epochs` epochs of `steps` steps from step
    /// `first`; an error names the step whose sample outgrows the room
    /// (probability at most [`crate::dp::OVERFLOW_PROBABILITY`] a step).
    pub fn draw(&self, first: u64, epochs: usize, steps: usize, outputs: usize) -> Result<ChunkSamples> {
        let key = crate::noise::key(self.dp.key);
        let mut samples = ChunkSamples { rows: Vec::new(), counts: Vec::new(), epoch_rows: Vec::new() };
        for epoch in 0..epochs {
            let mut epoch_rows = 0;
            for i in 0..steps {
                let step = first + (epoch * steps + i) as u64;
                let sample = crate::noise::poisson_rows(key, step, self.train_rows, self.q);
                if sample.len() > self.room {
                    return Err(Error::InvalidInput(format!(
                        "DP-SGD's step {step} sampled {} rows, more than the {} its GPU buffers hold (a chance \
                         below {:e} a step): run again with another `seed`",
                        sample.len(),
                        self.room,
                        crate::dp::OVERFLOW_PROBABILITY
                    )));
                }
                epoch_rows += sample.len();
                samples.counts.extend([sample.len() as u32, (sample.len() * outputs) as u32]);
                samples.rows.extend_from_slice(&sample);
                samples.rows.resize(samples.rows.len() + self.room - sample.len(), 0);
            }
            samples.epoch_rows.push(epoch_rows);
        }
        Ok(samples)
    }
}
