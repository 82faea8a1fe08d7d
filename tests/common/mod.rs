//! Shared by the GPU test binaries: one device per binary (several devices at
//! once can crash llvmpipe), the skip-or-fail rule, and the tolerance check.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::cmp::Ordering;
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgpu_mlp::gpu::{GpuContext, Kernels};

/// The test binary's device and kernels, or None (after saying so) when there
/// is no adapter. With REQUIRE_GPU=1 a missing adapter fails the test instead.
pub fn gpu() -> Option<&'static (GpuContext, Kernels)> {
    static GPU: OnceLock<Option<(GpuContext, Kernels)>> = OnceLock::new();
    let gpu = GPU.get_or_init(|| match GpuContext::new() {
        Ok(ctx) => {
            let kernels = Kernels::new(&ctx).expect("the shaders compile on this adapter");
            eprintln!("GPU tests run on {}", ctx.describe());
            Some((ctx, kernels))
        }
        Err(error) => {
            eprintln!("no GPU adapter: {error}");
            None
        }
    });
    if gpu.is_none() {
        if std::env::var("REQUIRE_GPU").is_ok_and(|v| v == "1") {
            panic!("REQUIRE_GPU=1 but no GPU adapter was found");
        }
        eprintln!("skipped: no GPU adapter (set REQUIRE_GPU=1 to fail instead)");
    }
    gpu.as_ref()
}

/// `len` values drawn U(-1, 1) from a seeded RNG.
pub fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Asserts |got - want| <= atol + rtol * |want| everywhere; on failure prints
/// the worst index with both values and the first few mismatches.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let excess = |i: usize| (got[i] - want[i]).abs() - (atol + rtol * want[i].abs());
    // A NaN excess (a NaN on either side) counts as a mismatch.
    let within = |i: usize| matches!(excess(i).partial_cmp(&0.0), Some(Ordering::Less | Ordering::Equal));
    let bad: Vec<usize> = (0..got.len()).filter(|&i| !within(i)).collect();
    if let Some(&worst) = bad.iter().max_by(|&&a, &&b| excess(a).total_cmp(&excess(b))) {
        let first: Vec<String> =
            bad.iter().take(5).map(|&i| format!("[{i}] got {} want {}", got[i], want[i])).collect();
        panic!(
            "{what}: {} of {} values outside atol {atol} + rtol {rtol}; worst [{worst}] got {} want {}; first: {}",
            bad.len(),
            got.len(),
            got[worst],
            want[worst],
            first.join(", ")
        );
    }
}
