//! Where the math runs: one [`Backend`] value, made once per process, decides
//! it for training ([`Backend::trainer`]) and for inference
//! ([`Backend::forward`], [`Backend::inference`]). Everything else (the CLI's
//! commands, the bench, the library API, the tests) asks it instead of
//! choosing a device of its own.

use ndarray::{s, Array2, ArrayView2};

use crate::cpu::{self, CpuTrainer};
use crate::error::{Error, Result};
use crate::gpu::{
    self, GpuContext, GpuInference, GpuPath, KernelSettings, Kernels, MatmulKernel, INFERENCE_BATCH_ROWS,
};
use crate::model::{MlpSpec, Params};
use crate::train::{Run, TrainConfig, Trainer};

/// A GPU device with its compiled kernels and the training path to take.
#[derive(Clone, Debug)]
pub struct GpuBackend {
    /// The adapter's device and queue.
    pub ctx: GpuContext,
    /// Every pipeline, compiled once for this device.
    pub kernels: Kernels,
    /// Which training path trainers take.
    pub path: GpuPath,
}

/// The CPU reference or one GPU. Cloning shares the GPU device.
///
/// ```
/// use wgpu_mlp::gpu::GpuPath;
/// use wgpu_mlp::model::{Init, MlpSpec, Params};
/// use wgpu_mlp::ndarray::Array2;
/// use wgpu_mlp::Backend;
///
/// // A hardware GPU when there is one, else the CPU, with the reason.
/// let (backend, why) = Backend::auto(GpuPath::Auto, None)?;
/// println!("{why}");
/// let spec = MlpSpec::new(vec![3, 4, 2])?;
/// let params = Params::init(&spec, Init::Xavier, 0)?;
/// let outputs = backend.forward(&spec, &params, Array2::zeros((5, 3)).view())?;
/// assert_eq!(outputs.dim(), (5, 2));
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone, Debug)]
#[expect(clippy::large_enum_variant, reason = "a few per process; a box would only add an indirection")]
pub enum Backend {
    /// The ndarray reference in [`crate::cpu`].
    Cpu,
    /// A GPU adapter (or a software one, when asked for by name).
    Gpu(GpuBackend),
}

impl Backend {
    /// The GPU adapter wgpu's environment picks (WGPU_BACKEND,
    /// WGPU_ADAPTER_NAME, WGPU_POWER_PREF), with the adapter's kernel
    /// settings, `matmul` if given, and the path `path`. Software adapters
    /// such as lavapipe are taken too.
    ///
    /// Without `matmul`, each shape class's matmul kernel is the fastest of a
    /// timing at its first product, kept per adapter and driver in the
    /// user's cache folder ([`gpu::MatmulTuning`]); `WGPU_MLP_MATMUL_TUNING=off`
    /// takes the device type's kernel instead.
    pub fn gpu(path: GpuPath, matmul: Option<MatmulKernel>) -> Result<Self> {
        let ctx = GpuContext::new()?;
        let mut settings = KernelSettings::for_adapter(&ctx.info);
        settings.matmul = matmul.unwrap_or(settings.matmul);
        if matmul.is_none() && gpu::tuning_enabled() {
            let tuning = gpu::MatmulTuning::load(gpu::cache_path(), gpu::AdapterKey::of(&ctx.info));
            let kernels = Kernels::tuned(&ctx, settings, tuning)?;
            return Ok(Backend::Gpu(GpuBackend { ctx, kernels, path }));
        }
        Self::gpu_with(ctx, settings, path)
    }

    /// A GPU backend on `ctx` with kernels built from `settings`.
    pub fn gpu_with(ctx: GpuContext, settings: KernelSettings, path: GpuPath) -> Result<Self> {
        let kernels = Kernels::with_settings(&ctx, settings)?;
        Ok(Backend::Gpu(GpuBackend { ctx, kernels, path }))
    }

    /// The fastest real choice: a hardware GPU when wgpu finds one (or the
    /// adapter WGPU_ADAPTER_NAME names), otherwise the CPU, since a software
    /// adapter runs the shaders on the same cores the CPU path uses, 10 to 20
    /// times slower. Returns the backend and one sentence saying which and why.
    pub fn auto(path: GpuPath, matmul: Option<MatmulKernel>) -> Result<(Self, String)> {
        let named = std::env::var("WGPU_ADAPTER_NAME").ok();
        let adapters = gpu::adapters()?;
        let hardware = adapters.iter().find(|(info, _)| info.device_type != wgpu::DeviceType::Cpu);
        if named.is_none() && hardware.is_none() {
            let why = match adapters.first() {
                Some((info, _)) => format!(
                    "only the software adapter {} was found, which is slower than the CPU path; ask for the GPU itself (--device gpu, Backend::gpu) to use it anyway",
                    info.name
                ),
                None => "no GPU adapter was found".to_string(),
            };
            return Ok((Backend::Cpu, format!("cpu: {why}")));
        }
        match Self::gpu(path, matmul) {
            Ok(backend) => {
                let why = match &named {
                    Some(name) => format!("WGPU_ADAPTER_NAME={name}"),
                    None => "a hardware adapter".to_string(),
                };
                Ok((backend.clone(), format!("gpu: {} ({why})", backend.name())))
            }
            Err(Error::NoAdapter(reason)) => Ok((Backend::Cpu, format!("cpu: {reason}"))),
            Err(other) => Err(other),
        }
    }

    /// "cpu", or the GPU adapter, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)".
    pub fn name(&self) -> String {
        match self {
            Backend::Cpu => "cpu".into(),
            Backend::Gpu(gpu) => gpu.ctx.describe(),
        }
    }

    /// True for a GPU backend.
    pub fn is_gpu(&self) -> bool {
        matches!(self, Backend::Gpu(_))
    }

    /// The GPU device, if this is one.
    pub fn gpu_context(&self) -> Option<&GpuContext> {
        match self {
            Backend::Cpu => None,
            Backend::Gpu(gpu) => Some(&gpu.ctx),
        }
    }

    /// The same device with another GPU path (the CPU stays the CPU).
    pub fn with_path(self, path: GpuPath) -> Self {
        match self {
            Backend::Cpu => Backend::Cpu,
            Backend::Gpu(gpu) => Backend::Gpu(GpuBackend { path, ..gpu }),
        }
    }

    /// Checks, before the parameters are made, that training a model of
    /// `spec` with `config` on `train_rows` (and `test_rows`) rows fits: the
    /// host's free memory on the CPU, the adapter's limits on a GPU.
    pub fn check_fits(&self, spec: &MlpSpec, config: &TrainConfig, train_rows: usize, test_rows: usize) -> Result<()> {
        match self {
            Backend::Cpu => crate::host::check_host_bytes(
                &format!("training layers {spec} on the CPU"),
                crate::host::cpu_training_bytes(spec, config, train_rows, test_rows),
                "use narrower `layers`, a smaller `batch_size` or fewer rows",
            ),
            Backend::Gpu(gpu) => {
                gpu::LayeredTrainer::check_limits(&gpu.ctx, spec, config.rows_per_batch_of(train_rows))
            }
        }
    }

    /// A trainer of `run` on this device: the CPU reference, or the GPU path
    /// this backend names (auto: fused when the run fits it, else layered).
    pub fn trainer(&self, run: &Run) -> Result<Box<dyn Trainer>> {
        match self {
            Backend::Cpu => Ok(Box::new(CpuTrainer::new(run)?)),
            Backend::Gpu(gpu) => gpu::trainer(&gpu.ctx, &gpu.kernels, gpu.path, run),
        }
    }

    /// The GPU path a run takes here: None on the CPU.
    pub fn path_for(&self, run: &Run) -> Option<GpuPath> {
        match self {
            Backend::Cpu => None,
            Backend::Gpu(gpu) => Some(gpu.path.resolve(&gpu.ctx, run)),
        }
    }

    /// A model of `spec` with `params` made ready for forward passes: on the
    /// GPU the parameters are uploaded once; no gradient or optimizer state
    /// is allocated on either device.
    pub fn inference(&self, spec: &MlpSpec, params: &Params) -> Result<Inference> {
        if params.layers.len() != spec.num_layers()
            || params.layers.iter().zip(spec.layer_shapes()).any(|(layer, shape)| layer.w.dim() != shape)
        {
            return Err(Error::InvalidInput(format!("the parameters do not have the shapes of layers {spec}")));
        }
        Ok(match self {
            Backend::Cpu => Inference::Cpu { spec: spec.clone(), params: params.clone() },
            Backend::Gpu(gpu) => Inference::Gpu(GpuInference::new(&gpu.ctx, &gpu.kernels, spec, params)?),
        })
    }

    /// The network's output (N, OUT) for x (N, IN): logits for a softmax
    /// output (see [`crate::cpu::softmax_rows`] for probabilities).
    pub fn forward(&self, spec: &MlpSpec, params: &Params, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.inference(spec, params)?.forward(x)
    }
}

/// A model ready to answer forward passes on one device (see
/// [`Backend::inference`]).
#[expect(clippy::large_enum_variant, reason = "one per served model; a box would only add an indirection")]
pub enum Inference {
    /// The reference's forward pass, on host copies of the model.
    Cpu {
        /// The network.
        spec: MlpSpec,
        /// Its parameters.
        params: Params,
    },
    /// The parameters on the GPU and room for a batch.
    Gpu(GpuInference),
}

impl Inference {
    /// The network's output (N, OUT) for x (N, IN), in batches of at most
    /// [`INFERENCE_BATCH_ROWS`] rows on either device, so memory stays bounded
    /// whatever N is.
    pub fn forward(&mut self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        match self {
            Inference::Cpu { spec, params } => {
                if x.ncols() != spec.inputs() {
                    return Err(wrong_width(spec, x.ncols()));
                }
                let mut out = crate::model::zeros((x.nrows(), spec.outputs()), "the model's outputs")?;
                for start in (0..x.nrows()).step_by(INFERENCE_BATCH_ROWS) {
                    let rows = s![start..(start + INFERENCE_BATCH_ROWS).min(x.nrows()), ..];
                    out.slice_mut(rows).assign(&cpu::forward(spec, params, x.slice(rows)).output());
                }
                Ok(out)
            }
            Inference::Gpu(gpu) => {
                if x.ncols() != gpu.spec().inputs() {
                    return Err(wrong_width(gpu.spec(), x.ncols()));
                }
                gpu.forward(x)
            }
        }
    }
}

fn wrong_width(spec: &MlpSpec, columns: usize) -> Error {
    Error::InvalidInput(format!(
        "the input has {columns} columns, but the model (layers {spec}) takes {}",
        spec.inputs()
    ))
}
