#![warn(missing_docs)]
//! wgpu-mlp trains multilayer perceptrons with the whole training step on the
//! GPU, as WGSL compute shaders run through wgpu, and checks every kernel and
//! every run against a plain ndarray reference on the CPU.
//!
//! # In one page
//!
//! [`Mlp`] is the whole API most programs need: settings from a builder,
//! `fit` on ndarray arrays, `predict` on new rows, `save` and `load`.
//!
//! ```
//! use wgpu_mlp::ndarray::{array, Array2};
//! use wgpu_mlp::{Backend, Mlp};
//!
//! # fn main() -> wgpu_mlp::Result<()> {
//! // Rows of two features; the class is whether they sum past 1.
//! let x: Array2<f32> = array![[0.1, 0.2], [0.9, 0.8], [0.2, 0.1], [0.7, 0.9], [0.3, 0.3], [0.8, 0.6]];
//! let labels = [0, 1, 0, 1, 0, 1];
//!
//! let mut mlp = Mlp::builder()
//!     .hidden([16])            // one hidden layer; input and output sizes come from the data
//!     .lr(0.01)
//!     .epochs(200)
//!     .backend(Backend::Cpu)   // or Backend::gpu(..) / Backend::auto(..)
//!     .build()?;
//! mlp.fit_classes(x.view(), &labels)?;
//! let probabilities = mlp.predict(x.view())?; // (6, 2), each row sums to 1
//! assert_eq!(mlp.predict_classes(x.view())?, labels);
//!
//! let path = std::env::temp_dir().join("lib-doc-example.safetensors");
//! mlp.save(&path)?;                                  // weights, optimizer state, input scaling
//! let again = Mlp::load(&path)?.predict(x.view())?;   // the same numbers
//! assert_eq!(again, probabilities);
//! # Ok(())
//! # }
//! ```
//!
//! # Underneath
//!
//! The flow: an [`MlpSpec`] and a [`Dataset`] -> [`Params`] initialised on the
//! host from a seed -> a [`Run`] -> a [`Trainer`] made by a [`Backend`] (the
//! [`CpuTrainer`] reference, or a GPU's [`gpu::LayeredTrainer`] or
//! [`gpu::FusedTrainer`]), all starting from the same `Params` -> [`fit`] ->
//! a [`FitReport`]. [`Backend::forward`] runs a model forward only (no
//! gradient or optimizer buffers) on either device. [`checkpoint`] reads and
//! writes safetensors checkpoints, [`export`] writes ONNX.
//!
//! Errors are one [`Error`] enum; messages name settings as this API does
//! (`batch_size`), and the command line shows them as its flags.

pub mod accountant;
pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod dp;
pub mod dropout;
pub mod error;
pub mod export;
pub mod fairness;
pub mod gpu;
pub mod host;
pub mod metrics;
pub mod mlp;
pub mod model;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod noise;
pub mod parallel;
pub mod peer_cases;
pub mod report;
pub mod run;
pub mod schedule;
pub mod sweep;
pub mod threads;
pub mod train;
pub mod verify;

pub use backend::{Backend, Inference};
pub use cpu::CpuTrainer;
pub use data::Dataset;
pub use error::{Error, Result};
pub use mlp::{Mlp, MlpBuilder};
pub use model::{MlpSpec, Params};
pub use train::{fit, FitReport, Run, TrainConfig, Trainer};

/// The array crate of the library's inputs and outputs, re-exported so that
/// users build `Array2<f32>` of the same version.
pub use ndarray;
