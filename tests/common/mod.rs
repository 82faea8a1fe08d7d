//! Shared by the GPU test binaries: one device per binary (several devices at
//! once can crash llvmpipe), the skip-or-fail rule, and the tolerance check.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::cmp::Ordering;
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgpu_mlp::backend::GpuBackend;
use wgpu_mlp::gpu::{FusedTrainer, GpuContext, GpuPath, KernelSettings, Kernels, MatmulKernel};
use wgpu_mlp::train::{EpochMetrics, Optimizer};
use wgpu_mlp::{Backend, Dataset, Params, Run, Trainer};

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

/// The test binary's GPU on each training path, layered then fused; empty
/// (after [`gpu`]'s skip-or-fail rule) without an adapter.
pub fn gpu_backends() -> Vec<Backend> {
    let Some((ctx, kernels)) = gpu() else { return Vec::new() };
    [GpuPath::Layered, GpuPath::Fused]
        .map(|path| Backend::Gpu(GpuBackend { ctx: ctx.clone(), kernels: kernels.clone(), path }))
        .to_vec()
}

/// Every backend a device-independent test body runs on: the CPU, then the
/// GPU's paths (see [`gpu_backends`]).
pub fn test_backends() -> Vec<Backend> {
    std::iter::once(Backend::Cpu).chain(gpu_backends()).collect()
}

/// The backend's name and GPU path, for messages.
pub fn label(backend: &Backend) -> String {
    match backend {
        Backend::Cpu => "cpu".into(),
        Backend::Gpu(gpu) => format!("gpu {}", gpu.path),
    }
}

/// The test binary's device with kernels for each matmul kernel, or None as [`gpu`].
pub fn gpu_each_matmul() -> Option<(&'static GpuContext, &'static [Kernels])> {
    static EACH: OnceLock<Vec<Kernels>> = OnceLock::new();
    let (ctx, _) = gpu()?;
    let each = EACH.get_or_init(|| {
        MatmulKernel::ALL
            .map(|matmul| {
                let settings = KernelSettings { matmul, ..KernelSettings::for_adapter(&ctx.info) };
                Kernels::with_settings(ctx, settings).expect("the shaders compile on this adapter")
            })
            .to_vec()
    });
    Some((ctx, each))
}

/// The test binary's device with kernels on two grids for the element-wise
/// kernels: the adapter's own (one pass per invocation on GPUs) and one capped
/// at 3 workgroups, so their grid-stride loops take several passes whatever
/// the adapter and the core count. None as [`gpu`].
pub fn gpu_each_grid() -> Option<(&'static GpuContext, &'static [(String, Kernels)])> {
    static EACH: OnceLock<Vec<(String, Kernels)>> = OnceLock::new();
    let (ctx, adapters) = gpu()?;
    let each = EACH.get_or_init(|| {
        let settings = KernelSettings { strided_groups: Some(3), ..KernelSettings::for_adapter(&ctx.info) };
        let capped = Kernels::with_settings(ctx, settings).expect("the shaders compile on this adapter");
        vec![("adapter's grid".to_string(), adapters.clone()), ("3 workgroups".to_string(), capped)]
    });
    Some((ctx, each))
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

/// After hundreds of steps a GPU path's and the CPU's parameters differ only
/// by the rounding of exp and of differently ordered sums, carried along.
const PARAM_ATOL: f32 = 1e-5;
const PARAM_RTOL: f32 = 1e-4;
/// Adam divides by sqrt(v) + eps, which magnifies those last bits.
const ADAM_PARAM_ATOL: f32 = 1e-4;
const ADAM_PARAM_RTOL: f32 = 1e-3;
/// Loss sums are added in another order on the GPU.
const LOSS_RTOL: f32 = 1e-4;
/// A row whose two largest outputs are within rounding of each other may be
/// counted differently; allow one such row per read-back.
const ACCURACY_ATOL: f32 = 0.02;

/// Every weight and bias, layer by layer.
pub fn flat(params: &Params) -> Vec<f32> {
    params.layers.iter().flat_map(|l| l.w.iter().chain(l.b.iter()).copied()).collect()
}

/// Classes from the inputs: the argmax of a fixed mix of the first columns.
pub fn classes(samples: usize, inputs: usize, classes: usize, seed: u64) -> Dataset {
    let x = Dataset::seed_problem(samples, inputs, 1, seed).unwrap().x;
    let labels: Vec<usize> = x
        .rows()
        .into_iter()
        .map(|r| ((r[0] + 2.0 * r[1 % inputs]) * classes as f32 / 3.0) as usize % classes)
        .collect();
    Dataset::classification(x, &labels, classes).unwrap()
}

/// Takes one metric out of an epoch's.
type Pick = fn(&EpochMetrics) -> Option<f32>;

/// Trains `device` and the CPU `reference`, both built from `initial`, in
/// chunks of `log_every` epochs and checks the initial and final loss, every
/// epoch's metrics and all parameters after every chunk; prints the largest
/// parameter difference seen and the final losses' relative one.
pub fn trajectories_match(
    what: &str,
    device: &mut dyn Trainer,
    reference: &mut dyn Trainer,
    initial: &Params,
    optimizer: Optimizer,
    epochs: usize,
    log_every: usize,
) {
    assert_eq!(device.steps_per_epoch(), reference.steps_per_epoch());
    let (atol, rtol) = match optimizer {
        Optimizer::Adam { .. } => (ADAM_PARAM_ATOL, ADAM_PARAM_RTOL),
        _ => (PARAM_ATOL, PARAM_RTOL),
    };
    let loss = (device.evaluate().unwrap(), reference.evaluate().unwrap());
    assert_close(&format!("{what}: initial loss"), &[loss.0], &[loss.1], 0.0, LOSS_RTOL);
    let mut epoch = 0;
    let mut worst_param = 0.0f32;
    while epoch < epochs {
        let chunk = log_every.min(epochs - epoch);
        let (got, want) = (device.train(chunk).unwrap(), reference.train(chunk).unwrap());
        assert_eq!(got.len(), chunk);
        epoch += chunk;
        let at = format!("{what}, epochs up to {epoch}");
        let column = |metrics: &[EpochMetrics], pick: Pick| {
            metrics.iter().map(|m| pick(m).unwrap_or(-1.0)).collect::<Vec<f32>>()
        };
        let metrics: [(&str, Pick, f32, f32); 4] = [
            ("train loss", |m| Some(m.train_loss), 0.0, LOSS_RTOL),
            ("test loss", |m| m.val_loss, 1e-6, LOSS_RTOL),
            ("train accuracy", |m| m.train_accuracy, ACCURACY_ATOL, 0.0),
            ("test accuracy", |m| m.val_accuracy, ACCURACY_ATOL, 0.0),
        ];
        for (name, pick, atol, rtol) in metrics {
            assert_close(&format!("{at}: {name}"), &column(&got, pick), &column(&want, pick), atol, rtol);
        }
        let (params_got, params_want) = (device.params().unwrap(), reference.params().unwrap());
        assert_close(&format!("{at}: params"), &flat(&params_got), &flat(&params_want), atol, rtol);
        worst_param = worst_param.max(params_got.max_abs_diff(&params_want));
        assert_ne!(flat(&params_got), flat(initial), "training must move the parameters");
    }
    let loss = (device.evaluate().unwrap(), reference.evaluate().unwrap());
    assert_close(&format!("{what}: final loss"), &[loss.0], &[loss.1], 0.0, LOSS_RTOL);
    let loss_rel = (loss.0 - loss.1).abs() / loss.1.abs();
    eprintln!(
        "{what}: max |device - cpu| over the params {worst_param:e}; final loss relative difference {loss_rel:e}"
    );
}

/// On the CPU and each GPU path that takes the run (the fused one takes
/// neither dropout nor DP-SGD): `2 * half` epochs straight, and `half` epochs,
/// a restore of their state into a new trainer and `half` more, end on the
/// same bits.
pub fn resumes_bit_for_bit(run: &Run, half: usize) {
    let takes = |backend: &Backend| match backend {
        Backend::Gpu(gpu) if gpu.path == GpuPath::Fused => FusedTrainer::fits(&gpu.ctx, run),
        _ => true,
    };
    for backend in std::iter::once(Backend::Cpu).chain(gpu_backends()).filter(takes) {
        let mut straight = backend.trainer(run).unwrap();
        straight.train(2 * half).unwrap();
        let mut first = backend.trainer(run).unwrap();
        first.train(half).unwrap();
        let state = first.state().unwrap();
        let mut resumed = backend.trainer(run).unwrap();
        resumed.restore(&state).unwrap();
        resumed.set_schedule(half, 1.0);
        resumed.train(half).unwrap();
        let (got, want) = (flat(&resumed.params().unwrap()), flat(&straight.params().unwrap()));
        assert_close(&label(&backend), &got, &want, 0.0, 0.0);
    }
}
