//! DP-SGD (Abadi et al. 2016) as Opacus and TF Privacy run it: each step
//! takes a Poisson sample of the training rows (every row independently with
//! probability q = batch / rows, [`crate::noise::poisson_rows`]), clips each
//! row's gradient to L2 norm C, sums them, adds N(0, sigma^2 C^2) to every
//! element and divides by the expected batch q * rows. The privacy spent is
//! counted by [`crate::accountant`].
//!
//! Per-sample gradients are never formed: for a dense layer, row r's weight
//! gradient is the outer product input_r ⊗ dz_r, whose squared norm is
//! |input_r|^2 |dz_r|^2 (plus |dz_r|^2 for the bias). Summed over the layers
//! that is row r's whole squared norm; every layer's dz rows are then scaled
//! by the row's factor (the same as scaling its loss gradient, since the
//! backward pass is linear in it), and the batch gradients formed as usual.
//! The CPU does this in [`crate::cpu`] (`dp_row_norms`, `dp_clip_factors`,
//! `dp_scale_rows`, `dp_add_noise`), the GPU with kernels of the same names
//! in shaders/dp_sgd.wgsl.
//!
//! On the GPU a step's rows vary, so its buffers have room for
//! [`capacity`] rows (a Poisson batch overflows it with probability below
//! [`OVERFLOW_PROBABILITY`]) and the rows past the sample are masked out.

use crate::accountant::RdpAccountant;

/// DP-SGD's settings (`--dp`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DpSgd {
    /// C: each row's gradient is scaled down to this L2 norm where larger
    /// (`dp_max_grad_norm`), positive and finite.
    pub max_grad_norm: f32,
    /// sigma: the noise's standard deviation in units of C
    /// (`dp_noise_multiplier`), positive and finite.
    pub noise_multiplier: f32,
    /// The key of the sampling and the noise ([`crate::noise::key`]): the
    /// run's seed, or drawn from the operating system (`dp_secure`).
    pub key: u64,
}

/// A step's Poisson batch exceeds [`capacity`] with at most this probability.
pub const OVERFLOW_PROBABILITY: f64 = 1e-9;

/// Added to a row's norm before C is divided by it, as Opacus does.
pub const NORM_EPSILON: f32 = 1e-6;

/// q: the probability that a step takes a row, the batch over the rows (at most 1).
pub fn sample_rate(batch: usize, rows: usize) -> f64 {
    (batch as f64 / rows.max(1) as f64).min(1.0)
}

/// Steps per epoch: rows / batch, rounded up, so an epoch takes each row once on average or more.
pub fn steps_per_epoch(batch: usize, rows: usize) -> usize {
    rows.div_ceil(batch.max(1)).max(1)
}

/// The rows a step's buffers make room for: the least c with P(Binomial(rows,
/// q) > c) below [`OVERFLOW_PROBABILITY`], summed from the upper tail in log
/// space (exact, and cheap: the tail past the mean is short).
pub fn capacity(rows: usize, q: f64) -> usize {
    if q >= 1.0 || rows == 0 {
        return rows;
    }
    let n = rows as f64;
    let ln_choose = |k: f64| ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0);
    let ln_pmf = |k: usize| ln_choose(k as f64) + k as f64 * q.ln() + (n - k as f64) * (-q).ln_1p();
    // From the mean upwards, the first c whose tail beyond it is small enough.
    let mean = (n * q).ceil() as usize;
    let mut tail: f64 = (mean + 1..=rows).map(|k| ln_pmf(k).exp()).take_while(|p| *p > 0.0).sum();
    let mut c = mean;
    while tail >= OVERFLOW_PROBABILITY && c < rows {
        c += 1;
        tail -= ln_pmf(c).exp();
    }
    c
}

/// ln Γ(x) for x > 0 by Lanczos' approximation (g = 7, 9 terms; about 15
/// digits), written here because std has no stable lgamma.
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let sum = C[1..].iter().enumerate().fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

impl DpSgd {
    /// The noise's standard deviation on the averaged gradient: sigma C / (q rows).
    pub fn noise_std(&self, expected_batch: f64) -> f32 {
        (f64::from(self.noise_multiplier) * f64::from(self.max_grad_norm) / expected_batch) as f32
    }

    /// Checks C and sigma.
    pub fn check(&self) -> crate::Result<()> {
        for (name, value) in [("dp_max_grad_norm", self.max_grad_norm), ("dp_noise_multiplier", self.noise_multiplier)]
        {
            if !(value.is_finite() && value > 0.0) {
                return Err(crate::Error::InvalidInput(format!(
                    "`{name}` must be a positive finite number, got {value}"
                )));
            }
        }
        Ok(())
    }
}

/// What a DP-SGD run has spent: the accountant of the run a checkpoint came
/// from (empty for a new run), then this run's epochs, every step one
/// Poisson-subsampled Gaussian mechanism of rate q and noise sigma.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivacyLedger {
    /// The resumed run's steps.
    pub before: RdpAccountant,
    /// The epoch this run starts after.
    pub first_epoch: usize,
    /// The sampling rate q.
    pub q: f64,
    /// The noise multiplier sigma, as the run used it (an f32).
    pub sigma: f64,
    /// Steps in an epoch.
    pub steps_per_epoch: usize,
    /// The delta of the (epsilon, delta) stated.
    pub delta: f64,
}

impl PrivacyLedger {
    /// The accountant after `epoch` (counted from the first run's start).
    pub fn after(&self, epoch: usize) -> RdpAccountant {
        let mut accountant = self.before.clone();
        let steps = epoch.saturating_sub(self.first_epoch) * self.steps_per_epoch;
        accountant.record(self.q, self.sigma, steps as u64);
        accountant
    }

    /// The epsilon spent after `epoch`, at [`PrivacyLedger::delta`].
    pub fn epsilon_after(&self, epoch: usize) -> f64 {
        self.after(epoch).epsilon(self.delta).epsilon
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        for (n, factorial) in [(1.0, 1.0), (5.0, 24.0), (11.0, 3_628_800.0f64)] {
            assert!((ln_gamma(n) - factorial.ln()).abs() < 1e-10, "ln_gamma({n})");
        }
    }

    #[test]
    fn capacity_covers_the_binomial_tail() {
        // 54000 rows, expected batch 256: sd = sqrt(256 (1 - q)) ~ 16, so about
        // 6 sd above the mean.
        let c = capacity(54_000, 256.0 / 54_000.0);
        assert!((340..=360).contains(&c), "capacity {c}");
        assert_eq!(capacity(10, 1.0), 10);
        assert!(capacity(100, 0.5) <= 100);
    }
}
