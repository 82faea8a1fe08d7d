//! Many models side by side on the CPU: each model is one task of a thread
//! pool, trained as it would be alone (its own trainer, data and seed), so
//! a sweep only changes when a model trains, never its numbers.
//!
//! One small model's step leaves most cores idle, so models in parallel are
//! faster than one model's matmuls split across threads; set
//! `WGPU_MLP_THREADS=1` ([`crate::threads`]) before the process's first
//! product so that each model's CPU work stays on its thread instead of
//! oversubscribing the cores. Neither choice changes a result: a product's
//! split never changes its sums, and the maps are element-wise.

use crate::error::{Error, Result};

/// Runs `model(i)` for every i in 0..`count` on a pool of `jobs` threads
/// (at least 1), one model per task so that a slow model does not hold
/// others back, and returns their results in model order; the first error
/// (in model order) stops the rest from starting.
pub fn run_models<T: Send, E: Send>(
    jobs: usize,
    count: usize,
    model: impl Fn(usize) -> std::result::Result<T, E> + Sync,
) -> Result<std::result::Result<Vec<T>, E>> {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .thread_name(|i| format!("sweep-{i}"))
        .build()
        .map_err(|e| Error::Io {
        context: "cannot start the sweep's threads".into(),
        source: std::io::Error::other(e),
    })?;
    Ok(pool.install(|| (0..count).into_par_iter().with_max_len(1).map(&model).collect()))
}

/// The mean and the standard deviation (of the population, as numpy's
/// default, ddof 0) of `values`; NaN for none.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, variance.sqrt())
}
