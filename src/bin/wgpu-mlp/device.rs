//! `--device` and the GPU path flags turned into the library's one [`Backend`].

use wgpu_mlp::gpu::{GpuPath, MatmulKernel};
use wgpu_mlp::Backend;

use crate::args::DeviceChoice;
use crate::bad_input;

/// The backend `--device` names, with the GPU path and matmul kernel (None:
/// the adapter's) a GPU takes. Auto takes a hardware GPU when there is one
/// and otherwise the CPU, and says which and why in one line on stderr.
pub(crate) fn choose_backend(
    choice: DeviceChoice,
    path: GpuPath,
    matmul: Option<MatmulKernel>,
) -> anyhow::Result<Backend> {
    // The flags of the GPU path, as given (auto is their default).
    let gpu_flags: Vec<String> = [
        (path != GpuPath::Auto).then(|| format!("--path {path}")),
        matmul.map(|kernel| format!("--matmul {}", kernel.name())),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok(match choice {
        DeviceChoice::Cpu if !gpu_flags.is_empty() => {
            return Err(bad_input(format!(
                "{} chooses how the GPU trains, but --device cpu trains on the CPU; drop it or use --device gpu",
                gpu_flags.join(" and ")
            )))
        }
        DeviceChoice::Cpu => Backend::Cpu,
        DeviceChoice::Gpu => Backend::gpu(path, matmul)?,
        DeviceChoice::Auto => {
            let (backend, why) = Backend::auto(path, matmul)?;
            eprintln!("notice: --device auto took {why}");
            if !backend.is_gpu() && !gpu_flags.is_empty() {
                eprintln!("notice: {} does nothing on the CPU", gpu_flags.join(" and "));
            }
            backend
        }
    })
}
