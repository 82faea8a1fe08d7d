//! `--device` and the GPU path flags turned into the library's one [`Backend`].

use wgpu_mlp::gpu::{GpuPath, MatmulKernel};
use wgpu_mlp::Backend;

use crate::args::DeviceChoice;

/// The backend `--device` names, with the GPU path and matmul kernel (None:
/// the adapter's) a GPU takes. Auto takes a hardware GPU when there is one
/// and otherwise the CPU, and says which and why in one line on stderr.
pub(crate) fn choose_backend(
    choice: DeviceChoice,
    path: GpuPath,
    matmul: Option<MatmulKernel>,
) -> anyhow::Result<Backend> {
    Ok(match choice {
        DeviceChoice::Cpu => Backend::Cpu,
        DeviceChoice::Gpu => Backend::gpu(path, matmul)?,
        DeviceChoice::Auto => {
            let (backend, why) = Backend::auto(path, matmul)?;
            eprintln!("notice: --device auto took {why}");
            backend
        }
    })
}
