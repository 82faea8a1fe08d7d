//! The GPU path: a thin context over wgpu ([`GpuContext`]), the kernel table
//! ([`Kernels`], one pipeline per WGSL entry point) and the trainer that wires
//! them into a training step ([`GpuTrainer`]).

mod context;
mod fused;
mod kernels;
mod trainer;

pub use context::{Counters, Counts, GpuContext, Region, NO_ADAPTER_HELP};
pub use fused::FusedTrainer;
pub use kernels::{
    ActivationParams, AdamParams, BiasAddParams, ColumnSumParams, CountCorrectParams, Dispatch, Epilogue, GatherParams,
    Kernels, MatmulParams, MomentumParams, MseParams, SgdParams, SoftmaxCrossEntropyParams, ADAM_STATE_LEN, MAX_CHUNKS,
    WORKGROUP_SIZE,
};
pub use trainer::GpuTrainer;
