//! The GPU path: a thin context over wgpu ([`GpuContext`]), the kernel table
//! ([`Kernels`], one pipeline per WGSL entry point), the two training paths
//! ([`LayeredTrainer`]: a dispatch per op; [`FusedTrainer`]: many steps of a
//! small net per dispatch) and forward-only inference ([`GpuInference`]).

mod context;
mod dp_steps;
mod fused;
mod inference;
mod kernels;
mod layered;
mod metrics;
mod param_layout;
mod settings;
mod shaders;
mod tuning;
mod uniforms;

pub use context::{adapters, Counters, Counts, GpuContext, Region, NO_ADAPTER_HELP};
pub use fused::{FusedPool, FusedTrainer};
pub use inference::{GpuInference, INFERENCE_BATCH_ROWS};
pub use kernels::{Dispatch, Kernels, MAX_CHUNKS, WORKGROUP_SIZE};
pub use layered::{order_epochs, LayeredTrainer, RING_EPOCHS};
pub use settings::{KernelSettings, MatmulKernel};
pub use shaders::{ShaderSource, SHADERS};
pub use tuning::{cache_path, shape_class, tuning_enabled, AdapterKey, MatmulTuning, TUNED_MIN_MACS, TUNING_ENV};
pub use uniforms::{
    ActivationParams, AdamParams, BceParams, ColumnSumParams, CountCorrectParams, DropoutMask, Epilogue, GatherParams,
    GradNormParams, MatmulParams, MomentumParams, MseParams, SgdParams, SoftmaxCrossEntropyParams, ADAM_STATE_LEN,
    GRAD_NORM_GROUPS, NO_CLIP_VALUE, STEP_CONTROL_LEN,
};

use crate::error::Result;
use crate::train::{EpochMetrics, Run, Trainer};

/// Which GPU path trains (`--path`); written and parsed by its kebab-case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GpuPath {
    /// The fused path where it takes the run and is the faster (small nets:
    /// see FusedTrainer::preferred), else the layered one.
    Auto,
    /// One dispatch for many steps; an error when the run does not fit it.
    Fused,
    /// A dispatch per op of every step.
    Layered,
}

impl GpuPath {
    /// Fused or Layered: what Auto means for this run.
    pub fn resolve(self, ctx: &GpuContext, run: &Run) -> Self {
        match self {
            GpuPath::Auto if FusedTrainer::preferred(ctx, run) => GpuPath::Fused,
            GpuPath::Auto => GpuPath::Layered,
            chosen => chosen,
        }
    }
}

crate::model::named_by_value_enum!(GpuPath);

/// A GPU trainer of `run` on the chosen path.
pub(crate) fn trainer(ctx: &GpuContext, kernels: &Kernels, path: GpuPath, run: &Run) -> Result<Box<dyn Trainer>> {
    Ok(match path.resolve(ctx, run) {
        GpuPath::Fused => Box::new(FusedTrainer::new(ctx, run)?),
        _ => Box::new(LayeredTrainer::new(ctx, kernels, run)?),
    })
}

/// Trains `epochs` epochs as calls of at most `capacity` epochs each (what a
/// GPU trainer's metrics ring holds), so a caller may ask for any number; a
/// call that returns fewer epochs than asked was stopped, and so is this.
fn train_in_chunks(
    epochs: usize,
    capacity: usize,
    mut train_chunk: impl FnMut(usize) -> Result<Vec<EpochMetrics>>,
) -> Result<Vec<EpochMetrics>> {
    let mut history = Vec::new();
    while history.len() < epochs {
        let chunk = capacity.max(1).min(epochs - history.len());
        let done = train_chunk(chunk)?;
        let stopped = done.len() < chunk;
        history.extend(done);
        if stopped {
            break;
        }
    }
    Ok(history)
}
