//! The cases of `wgpu-mlp bench`: whole training steps and single matmuls,
//! timed on a device after a warm-up, with what each step costs in
//! dispatches, submits, read-backs and GPU memory.

use std::time::Instant;

use ndarray::Array2;

use crate::backend::{Backend, GpuBackend};
use crate::cpu;
use crate::data::Dataset;
use crate::dp::DpSgd;
use crate::dropout::Dropout;
use crate::error::{Error, Result};
use crate::gpu::{self, Counts, GpuContext, GpuPath, Kernels, MatmulParams, Region};
use crate::model::{Init, MlpSpec, Params};
use crate::schedule::{LrSchedule, LrShape};
use crate::train::{Clip, Run, TrainConfig};

/// Timed runs per case; the median is reported.
const RUNS: usize = 7;
/// Each timed run lasts about this long, so timer and read-back costs fade.
const RUN_SECONDS: f64 = 0.05;
/// The most steps one timed run records: the GPU trainers' metrics ring, so
/// a run reads back once.
const MAX_STEPS: usize = gpu::RING_EPOCHS;

/// Steps in an epoch of `mlp-dp`: its rows over its expected batch.
const DP_STEPS_PER_EPOCH: usize = 10;

/// A named benchmark case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Case {
    /// 10-5-1, 100 samples, full batch: the textbook example.
    Seed,
    /// 784-256-10, batch 256, sigmoid, MSE, SGD.
    Mlp,
    /// `mlp` with what regularizes a step: dropout 0.1, a cosine schedule and
    /// clipping by the global norm (layered GPU path): what they add per step.
    MlpRegularized,
    /// `mlp` trained with DP-SGD (layered GPU path): Poisson samples of 256
    /// rows expected out of 2560 (q = 0.1, so a step's buffers hold the
    /// 351 rows a sample may reach), per-row clipping and noise; beside `mlp`
    /// it gives what privacy costs a step. Runs whole epochs of 10 steps.
    MlpDp,
    /// 1024-1024-1024-10, batch 1024: for real GPUs.
    Wide,
    /// One out(M, N) = a(M, K) · b(K, N).
    Matmul {
        /// Rows of a and of out.
        m: usize,
        /// Columns of a, rows of b: the summed dimension.
        k: usize,
        /// Columns of b and of out.
        n: usize,
    },
    /// One dispatch of a single workgroup that updates one weight: what the
    /// adapter charges per dispatch, the floor of a step's overhead. GPU only.
    Dispatch,
}

impl Case {
    /// What runs without --case: every case but `wide`.
    pub fn defaults() -> Vec<Case> {
        vec![
            Case::Seed,
            Case::Mlp,
            Case::Dispatch,
            Case::Matmul { m: 512, k: 512, n: 512 },
            Case::Matmul { m: 256, k: 784, n: 256 },
            Case::Matmul { m: 784, k: 256, n: 256 },
        ]
    }

    /// Layer sizes and batch rows of a training case (with DP-SGD, the
    /// expected batch; its data holds [`Case::steps_per_call`] times as many rows).
    pub fn net(&self) -> Option<(Vec<usize>, usize)> {
        match self {
            Case::Seed => Some((vec![10, 5, 1], 100)),
            Case::Mlp | Case::MlpRegularized | Case::MlpDp => Some((vec![784, 256, 10], 256)),
            Case::Wide => Some((vec![1024, 1024, 1024, 10], 1024)),
            Case::Matmul { .. } | Case::Dispatch => None,
        }
    }

    /// The case's training settings: the textbook's (full-batch SGD), with
    /// dropout, a cosine schedule and norm clipping for `mlp-regularized`,
    /// DP-SGD at an expected batch of 256 for `mlp-dp`.
    pub fn config(&self) -> TrainConfig {
        let plain = TrainConfig::default();
        match self {
            Case::MlpRegularized => TrainConfig {
                dropout: Dropout::Every(0.1),
                lr_schedule: LrSchedule { shape: LrShape::Cosine { epochs: MAX_STEPS, min: 0.0 }, warmup_epochs: 0 },
                clip: Clip { norm: Some(1.0), value: None },
                dp: None,
                ..plain
            },
            Case::MlpDp => TrainConfig {
                batch_size: Some(256),
                dp: Some(DpSgd { max_grad_norm: 1.0, noise_multiplier: 1.0, key: 0 }),
                ..plain
            },
            _ => plain,
        }
    }

    /// Steps a runner of the case runs at a time: its steps come in whole
    /// epochs (10 for `mlp-dp`, 1 for the others).
    pub fn steps_per_call(&self) -> usize {
        match self {
            Case::MlpDp => DP_STEPS_PER_EPOCH,
            _ => 1,
        }
    }

    /// Whether the case means anything on the CPU device.
    pub fn runs_on_cpu(&self) -> bool {
        *self != Case::Dispatch
    }
}

impl std::str::FromStr for Case {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "seed" => Ok(Case::Seed),
            "mlp" => Ok(Case::Mlp),
            "mlp-regularized" => Ok(Case::MlpRegularized),
            "mlp-dp" => Ok(Case::MlpDp),
            "wide" => Ok(Case::Wide),
            "dispatch" => Ok(Case::Dispatch),
            _ => {
                let shape = text.strip_prefix("matmul:").ok_or_else(|| {
                    format!("'{text}' is not a case: use seed, mlp, mlp-regularized, mlp-dp, wide, dispatch or matmul:M,K,N")
                })?;
                let dims: Vec<usize> = shape.split(',').map(|d| d.trim().parse().unwrap_or(0)).collect();
                match dims[..] {
                    [m, k, n] if m > 0 && k > 0 && n > 0 => Ok(Case::Matmul { m, k, n }),
                    _ => Err(format!("'{text}': matmul takes three sizes >= 1, as matmul:M,K,N")),
                }
            }
        }
    }
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Case::Seed => f.write_str("seed"),
            Case::Mlp => f.write_str("mlp"),
            Case::MlpRegularized => f.write_str("mlp-regularized"),
            Case::MlpDp => f.write_str("mlp-dp"),
            Case::Wide => f.write_str("wide"),
            Case::Matmul { m, k, n } => write!(f, "matmul:{m},{k},{n}"),
            Case::Dispatch => f.write_str("dispatch"),
        }
    }
}

/// One case on one device.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// The case as `--case` names it ([`Case`]'s Display): "seed", "matmul:512,512,512".
    pub case: String,
    /// "cpu" or "gpu".
    pub device: String,
    /// The GPU adapter's description (name, backend, driver); None on the CPU.
    pub adapter: Option<String>,
    /// The GPU path of a training case: "fused" or "layered".
    pub kernel: Option<String>,
    /// The GPU matmul kernel(s) of the case's products ("registers",
    /// "workgroup", "registers+workgroup"), after "tuned: " where each shape
    /// class's kernel was chosen by timing; None where no matmul dispatch runs.
    pub matmul_kernel: Option<String>,
    /// The CPU threads ([`crate::threads::cpu_threads`]); None on the GPU.
    pub threads: Option<usize>,
    /// Median over the timed runs.
    pub us_per_step: f64,
    /// Useful FLOPs (the matmuls) per second, in 10^9.
    pub gflops: f64,
    /// For training cases with matmul dispatches (CPU, layered GPU path): the
    /// step's matmuls alone, each timed like a matmul case.
    pub matmul_us_per_step: Option<f64>,
    /// For `mlp-dp`: the same step without DP-SGD (the `mlp` case), timed in
    /// turn with it, so their ratio holds when the machine's speed drifts.
    pub plain_us_per_step: Option<f64>,
    /// Compute dispatches recorded per step, warm-up steps included (0 on the CPU).
    pub dispatches_per_step: f64,
    /// Queue submits per step (0 on the CPU).
    pub submits_per_step: f64,
    /// Buffers mapped back to the host per step (0 on the CPU).
    pub readbacks_per_step: f64,
    /// Device memory the case allocated, in bytes (0 on the CPU).
    pub gpu_bytes: u64,
}

/// The matmuls of one training step of `sizes` at `rows` rows, as (M, K, N,
/// trans_a, trans_b): forward X·W, dW = Xᵀ·dZ, and dX = dZ·Wᵀ but for the first layer.
fn step_matmuls(sizes: &[usize], rows: usize) -> Vec<(usize, usize, usize, bool, bool)> {
    let mut shapes = Vec::new();
    for (l, pair) in sizes.windows(2).enumerate() {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        shapes.push((rows, fan_in, fan_out, false, false));
        shapes.push((fan_in, rows, fan_out, true, false));
        if l > 0 {
            shapes.push((rows, fan_out, fan_in, false, true));
        }
    }
    shapes
}

fn flops(shapes: &[(usize, usize, usize, bool, bool)]) -> f64 {
    shapes.iter().map(|&(m, k, n, _, _)| 2.0 * (m * k * n) as f64).sum()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What timing one thing measured.
struct Timing {
    /// Median over the timed runs.
    seconds_per_step: f64,
    /// Dispatches, submits and read-backs per step, warm-up included (its own
    /// steps only, when timed beside another runner).
    dispatches: f64,
    submits: f64,
    readbacks: f64,
    /// Device memory allocated to set it up.
    bytes: u64,
}

fn counts(device: &Backend) -> Counts {
    device.gpu_context().map_or_else(Counts::default, GpuContext::counts)
}

/// Runs a case's steps and waits for them to finish: `run(steps)`.
pub type Runner<'a> = Box<dyn FnMut(usize) -> Result<()> + 'a>;

/// Sets a case up on a device (a training case on the backend's GPU path);
/// its runner runs the steps asked, rounded up to a multiple of
/// [`Case::steps_per_call`].
pub fn runner<'a>(case: &Case, device: &'a Backend) -> Result<Runner<'a>> {
    match (case.net(), case) {
        (Some((sizes, rows)), _) => {
            training_runner(&sizes, rows * case.steps_per_call(), case.config(), case.steps_per_call(), device)
        }
        (None, &Case::Matmul { m, k, n }) => matmul_runner(&[(m, k, n, false, false)], device),
        (None, Case::Dispatch) => dispatch_runner(device),
        (None, _) => unreachable!("every case but matmul and dispatch has a net"),
    }
}

/// A runner under the clock: what its setup allocated, its steps per timed
/// run, and the counts and seconds of the steps it ran.
struct Timed<'a> {
    run: Runner<'a>,
    bytes: u64,
    steps_per_run: usize,
    steps: usize,
    counted: Counts,
    per_step: Vec<f64>,
}

impl<'a> Timed<'a> {
    /// Sets up with `setup` and warms up with 1 step and then 10, which pick the steps
    /// per run so that a run lasts about RUN_SECONDS.
    fn new(device: &Backend, unit: usize, setup: impl FnOnce() -> Result<Runner<'a>>) -> Result<Self> {
        let before = counts(device);
        let run = setup()?;
        let bytes = counts(device).bytes - before.bytes;
        let mut timed =
            Self { run, bytes, steps_per_run: 0, steps: 0, counted: Counts::default(), per_step: Vec::new() };
        // One step first, untimed: lavapipe compiles a pipeline at its first
        // dispatch, and a calibration that timed the compiler would give a
        // run of 10 steps where thousands fit.
        // Steps come in multiples of `unit` (a case's whole epochs).
        timed.run_steps(device, unit)?;
        let warm = timed.run_steps(device, 10 * unit)?;
        let steps = ((RUN_SECONDS / warm.max(1e-9)) as usize).clamp(10 * unit, MAX_STEPS);
        timed.steps_per_run = steps.div_ceil(unit) * unit;
        Ok(timed)
    }

    /// Runs `steps` steps, counting what they record; returns seconds per step.
    fn run_steps(&mut self, device: &Backend, steps: usize) -> Result<f64> {
        let before = counts(device);
        let start = Instant::now();
        (self.run)(steps)?;
        let seconds = start.elapsed().as_secs_f64() / steps as f64;
        let after = counts(device);
        self.counted.dispatches += after.dispatches - before.dispatches;
        self.counted.submits += after.submits - before.submits;
        self.counted.readbacks += after.readbacks - before.readbacks;
        self.steps += steps;
        Ok(seconds)
    }

    fn timing(&self) -> Timing {
        let steps = self.steps as f64;
        Timing {
            seconds_per_step: median(self.per_step.clone()),
            dispatches: self.counted.dispatches as f64 / steps,
            submits: self.counted.submits as f64 / steps,
            readbacks: self.counted.readbacks as f64 / steps,
            bytes: self.bytes,
        }
    }
}

/// Times runners side by side: RUNS rounds, each running every runner once
/// in turn, so that drift in the machine's speed touches all of them alike;
/// each keeps the median seconds per step of its runs.
fn time_interleaved(device: &Backend, timed: &mut [Timed]) -> Result<Vec<Timing>> {
    for _ in 0..RUNS {
        for one in timed.iter_mut() {
            let seconds = one.run_steps(device, one.steps_per_run)?;
            one.per_step.push(seconds);
        }
    }
    Ok(timed.iter().map(Timed::timing).collect())
}

/// The net and random data of `rows` rows of a training case: full-batch
/// steps (sigmoid, MSE), each step an epoch.
pub(crate) fn training_setup(sizes: &[usize], rows: usize) -> Result<(MlpSpec, Dataset)> {
    let spec = MlpSpec::new(sizes.to_vec())?;
    let data = Dataset::seed_problem(rows, spec.inputs(), spec.outputs(), 0)?;
    Ok((spec, data))
}

/// Training steps; a run of up to MAX_STEPS (the GPU's metrics ring) reads
/// back once.
fn training_runner<'a>(
    sizes: &[usize],
    rows: usize,
    config: TrainConfig,
    steps_per_epoch: usize,
    device: &'a Backend,
) -> Result<Runner<'a>> {
    let (spec, data) = training_setup(sizes, rows)?;
    let params = Params::init(&spec, Init::Xavier, 0)?;
    let mut trainer =
        device.trainer(&Run { spec: &spec, params: &params, train: &data, test: None, config: &config })?;
    debug_assert_eq!(trainer.steps_per_epoch(), steps_per_epoch);
    Ok(Box::new(move |steps| trainer.train(steps.div_ceil(steps_per_epoch)).map(drop)))
}

/// The matmuls `shapes` (M, K, N, trans_a, trans_b) as one step: on the GPU
/// recorded into one pass per run and waited for, on the CPU with ndarray.
fn matmul_runner<'a>(shapes: &[(usize, usize, usize, bool, bool)], device: &'a Backend) -> Result<Runner<'a>> {
    for &(m, k, n, _, _) in shapes {
        // a, b and out on the host (the GPU's are uploaded from them).
        let floats = [m.saturating_mul(k), k.saturating_mul(n), m.saturating_mul(n)];
        let bytes = floats.iter().fold(0u64, |sum, &f| sum.saturating_add(f as u64)).saturating_mul(4);
        crate::host::check_host_bytes(&format!("the matmul {m} x {k} x {n}"), bytes, "use smaller sizes")?;
    }
    let operands = |&(m, k, n, trans_a, trans_b): &(usize, usize, usize, bool, bool)| {
        let a = Array2::from_elem(if trans_a { (k, m) } else { (m, k) }, 0.5f32);
        let b = Array2::from_elem(if trans_b { (n, k) } else { (k, n) }, 0.25f32);
        (a, b)
    };
    match device {
        Backend::Cpu => {
            let inputs: Vec<_> = shapes.iter().map(|shape| (operands(shape), shape.3, shape.4)).collect();
            Ok(Box::new(move |steps| {
                for _ in 0..steps {
                    for ((a, b), trans_a, trans_b) in &inputs {
                        std::hint::black_box(cpu::matmul(a.view(), b.view(), *trans_a, *trans_b));
                    }
                }
                Ok(())
            }))
        }
        Backend::Gpu(GpuBackend { ctx, kernels, .. }) => {
            let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
            let mut dispatches = Vec::new();
            for shape @ &(m, k, n, trans_a, trans_b) in shapes {
                let (a, b) = operands(shape);
                let a_buf =
                    ctx.upload("bench.a", a.as_slice().expect("standard layout"), storage, "use a smaller case")?;
                let b_buf =
                    ctx.upload("bench.b", b.as_slice().expect("standard layout"), storage, "use a smaller case")?;
                let out = ctx.zeros("bench.out", m * n, storage, "use a smaller case")?;
                let params = MatmulParams::new(m as u32, k as u32, n as u32, trans_a, trans_b);
                let (a, b, out) = (Region::new(&a_buf, m * k), Region::new(&b_buf, k * n), Region::new(&out, m * n));
                dispatches.push(kernels.matmul("bench.matmul", a, b, out, params)?);
            }
            Ok(pass_runner(ctx, dispatches))
        }
    }
}

/// One single-workgroup SGD update of one weight per step, on the GPU.
fn dispatch_runner<'a>(device: &'a Backend) -> Result<Runner<'a>> {
    let Backend::Gpu(GpuBackend { ctx, kernels, .. }) = device else {
        return Err(Error::InvalidInput("the dispatch case runs on the GPU only".into()));
    };
    let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let weight = ctx.zeros("bench.weight", 1, storage, "use a smaller case")?;
    let grad = ctx.zeros("bench.grad", 1, storage, "use a smaller case")?;
    let control = [0.01, 1.0, crate::gpu::NO_CLIP_VALUE, 0.0];
    let rate = ctx.upload("bench.control", &control, storage, "use a smaller case")?;
    let regions = (Region::new(&weight, 1), Region::new(&grad, 1), Region::new(&rate, control.len()));
    let update = kernels.sgd_update("bench.dispatch", regions.0, regions.1, regions.2, 0.0)?;
    Ok(pass_runner(ctx, vec![update]))
}

/// Records `dispatches` once per step into one compute pass, submits it and
/// waits for the GPU.
fn pass_runner<'a>(ctx: &'a GpuContext, dispatches: Vec<gpu::Dispatch>) -> Runner<'a> {
    Box::new(move |steps| {
        ctx.scoped("timing dispatches", || {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for _ in 0..steps {
                    dispatches.iter().for_each(|d| d.record(&mut pass));
                }
            }
            ctx.submit(encoder);
            ctx.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map(drop)
                .map_err(|e| Error::Gpu { context: "waiting for the GPU".into(), message: e.to_string() })
        })
    })
}

/// The matmul kernels the products `shapes` (M, K, N, trans_a, trans_b) run
/// with, "+"-joined in the order first used: "registers", or where the
/// kernels are tuned, "tuned: registers+workgroup".
fn matmul_kernels(kernels: &Kernels, shapes: &[(usize, usize, usize, bool, bool)]) -> Result<String> {
    let mut names = Vec::new();
    for &(m, k, n, trans_a, trans_b) in shapes {
        let params = MatmulParams::new(m as u32, k as u32, n as u32, trans_a, trans_b);
        let name = kernels.matmul_kernel_for(&params)?.name();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let names = names.join("+");
    Ok(if kernels.matmul_tuned() { format!("tuned: {names}") } else { names })
}

/// Sets a runner up with its CPU work on `threads` threads (None: the
/// process's count), and runs it so.
fn on_threads<'a>(threads: Option<usize>, setup: impl FnOnce() -> Result<Runner<'a>>) -> Result<Runner<'a>> {
    let Some(count) = threads else { return setup() };
    let mut run = crate::threads::with_cpu_threads(count, setup)??;
    Ok(Box::new(move |steps| crate::threads::with_cpu_threads(count, || run(steps))?))
}

/// Runs one case on one device; on the CPU once per count of `threads`
/// (none: the process's count, [`crate::threads::cpu_threads`]), each
/// count's runs in turn with the others' so their ratios hold when the
/// machine's speed drifts. One measurement per count.
pub fn measure(case: &Case, device: &Backend, threads: &[usize]) -> Result<Vec<Measurement>> {
    let (name, adapter) = match device {
        Backend::Gpu(gpu) => ("gpu", Some(gpu.ctx.describe())),
        Backend::Cpu => ("cpu", None),
    };
    let path = match case.net() {
        Some((sizes, rows)) => {
            let (spec, data) = training_setup(&sizes, rows * case.steps_per_call())?;
            let config = case.config();
            let params = Params::init(&spec, Init::Xavier, 0)?;
            device.path_for(&Run { spec: &spec, params: &params, train: &data, test: None, config: &config })
        }
        None => None,
    };
    let counts: Vec<Option<usize>> = match device {
        Backend::Cpu if !threads.is_empty() => threads.iter().copied().map(Some).collect(),
        _ => vec![None],
    };
    // Training cases are timed beside their matmuls alone, except on the
    // fused path, which runs no matmul dispatch to compare with.
    let shapes = case.net().map(|(sizes, rows)| step_matmuls(&sizes, rows));
    let runs_matmuls = shapes.is_some() && path != Some(GpuPath::Fused);
    let mut timed = Vec::new();
    for &count in &counts {
        timed.push(Timed::new(device, case.steps_per_call(), || on_threads(count, || runner(case, device)))?);
        if let Some(shapes) = shapes.as_ref().filter(|_| runs_matmuls) {
            timed.push(Timed::new(device, 1, || on_threads(count, || matmul_runner(shapes, device)))?);
        }
        if *case == Case::MlpDp {
            timed.push(Timed::new(device, 1, || on_threads(count, || runner(&Case::Mlp, device)))?);
        }
    }
    let per_count = timed.len() / counts.len();
    let timings = time_interleaved(device, &mut timed)?;
    let useful_flops = match (&shapes, case) {
        (Some(shapes), _) => flops(shapes),
        (None, &Case::Matmul { m, k, n }) => flops(&[(m, k, n, false, false)]),
        (None, _) => 0.0,
    };
    let runs_matmul = matches!(case, Case::Matmul { .. }) || path == Some(GpuPath::Layered);
    let matmul_kernel = match (device, &shapes, case) {
        (Backend::Gpu(gpu), Some(shapes), _) if runs_matmul => Some(matmul_kernels(&gpu.kernels, shapes)?),
        (Backend::Gpu(gpu), None, &Case::Matmul { m, k, n }) => {
            Some(matmul_kernels(&gpu.kernels, &[(m, k, n, false, false)])?)
        }
        _ => None,
    };
    let mut measurements = Vec::new();
    for (count, timings) in counts.iter().zip(timings.chunks(per_count)) {
        let timing = &timings[0];
        let threads = match (device, count) {
            (Backend::Gpu(_), _) => None,
            (Backend::Cpu, Some(count)) => {
                Some(crate::threads::with_cpu_threads(*count, crate::threads::cpu_threads)??)
            }
            (Backend::Cpu, None) => Some(crate::threads::cpu_threads()?),
        };
        measurements.push(Measurement {
            case: case.to_string(),
            device: name.to_string(),
            adapter: adapter.clone(),
            kernel: path.map(|path| path.to_string()),
            matmul_kernel: matmul_kernel.clone(),
            threads,
            us_per_step: timing.seconds_per_step * 1e6,
            gflops: useful_flops / timing.seconds_per_step / 1e9,
            matmul_us_per_step: timings.get(1).filter(|_| runs_matmuls).map(|matmuls| matmuls.seconds_per_step * 1e6),
            plain_us_per_step: (*case == Case::MlpDp).then(|| timings[timings.len() - 1].seconds_per_step * 1e6),
            dispatches_per_step: timing.dispatches,
            submits_per_step: timing.submits,
            readbacks_per_step: timing.readbacks,
            gpu_bytes: timing.bytes,
        });
    }
    Ok(measurements)
}
