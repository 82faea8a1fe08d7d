//! The GPU path: a thin context over wgpu ([`GpuContext`]), the kernel table
//! ([`Kernels`], one pipeline per WGSL entry point) and the trainer that wires
//! them into a training step ([`GpuTrainer`]).

mod context;
mod fused;
mod kernels;
mod param_layout;
mod params;
mod settings;
mod shaders;
mod trainer;

pub use context::{adapters, Counters, Counts, GpuContext, Region, NO_ADAPTER_HELP};
pub use fused::FusedTrainer;
pub use kernels::{Dispatch, Kernels, MAX_CHUNKS, WORKGROUP_SIZE};
pub use params::{
    ActivationParams, AdamParams, BiasAddParams, ColumnSumParams, CountCorrectParams, Epilogue, GatherParams,
    MatmulParams, MomentumParams, MseParams, SgdParams, SoftmaxCrossEntropyParams, ADAM_STATE_LEN,
};
pub use settings::{KernelSettings, MatmulKernel};
pub use shaders::{ShaderSource, SHADERS};
pub use trainer::GpuTrainer;

use crate::data::Dataset;
use crate::error::Result;
use crate::model::{MlpSpec, Params};
use crate::train::{TrainConfig, Trainer};

/// Which GPU path trains (`--kernel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelChoice {
    /// The fused path when the run fits it, else the layered one.
    Auto,
    /// One dispatch for many steps; an error when the run does not fit it.
    Fused,
    /// A dispatch per op of every step.
    Layered,
}

impl KernelChoice {
    /// Fused or Layered: what Auto means for this run.
    pub fn resolve(
        self,
        ctx: &GpuContext,
        spec: &MlpSpec,
        train: &Dataset,
        test: Option<&Dataset>,
        config: &TrainConfig,
    ) -> Self {
        match self {
            KernelChoice::Auto if FusedTrainer::fits(ctx, spec, train, test, config) => KernelChoice::Fused,
            KernelChoice::Auto => KernelChoice::Layered,
            chosen => chosen,
        }
    }
}

/// A GPU trainer on the chosen path.
#[allow(clippy::too_many_arguments)] // the trainers' own arguments, plus the choice
pub fn trainer(
    ctx: &GpuContext,
    kernels: &Kernels,
    choice: KernelChoice,
    spec: &MlpSpec,
    params: &Params,
    train: &Dataset,
    test: Option<&Dataset>,
    config: &TrainConfig,
) -> Result<Box<dyn Trainer>> {
    Ok(if choice.resolve(ctx, spec, train, test, config) == KernelChoice::Fused {
        Box::new(FusedTrainer::new(ctx, spec, params, train, test, config)?)
    } else {
        Box::new(GpuTrainer::new(ctx, kernels, spec, params, train, test, config)?)
    })
}
