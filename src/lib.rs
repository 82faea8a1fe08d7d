//! wgpu-mlp trains multilayer perceptrons with the whole training step on the
//! GPU, as WGSL compute shaders run through wgpu, and checks every kernel and
//! every run against a plain ndarray reference on the CPU.
//!
//! The flow: an [`MlpSpec`] and a [`Dataset`] -> [`Params`] initialised on the
//! host from a seed -> a [`Trainer`] ([`CpuTrainer`] or [`gpu::GpuTrainer`]),
//! both starting from the same `Params` -> [`fit`] -> a [`FitReport`].

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod error;
pub mod export;
pub mod gpu;
pub mod model;
pub mod report;
pub mod run;
pub mod train;

pub use backend::{Backend, Inference};
pub use cpu::CpuTrainer;
pub use data::Dataset;
pub use error::{Error, Result};
pub use model::{MlpSpec, Params};
pub use train::{fit, FitReport, Run, TrainConfig, Trainer};

/// The array crate of the library's inputs and outputs, re-exported so that
/// users build `Array2<f32>` of the same version.
pub use ndarray;
