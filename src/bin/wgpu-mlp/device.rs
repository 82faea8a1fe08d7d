//! The GPU or the CPU, chosen once, and a trainer on it.

use wgpu_mlp::gpu::{self, GpuContext, KernelChoice, KernelSettings, Kernels, MatmulKernel};
use wgpu_mlp::{CpuTrainer, Dataset, Error, MlpSpec, Params, TrainConfig, Trainer};

use crate::args::DeviceChoice;

/// Where training runs, chosen before anything large is allocated.
#[allow(clippy::large_enum_variant)] // one per process
pub(crate) enum Device {
    Gpu(GpuContext, Kernels),
    Cpu,
}

/// Picks the device for `--device`; auto falls back to the CPU with a notice.
/// On a GPU, `matmul` picks the matmul kernel (None: the adapter's).
pub(crate) fn choose_device(choice: DeviceChoice, matmul: Option<MatmulKernel>) -> anyhow::Result<Device> {
    let gpu = |ctx: GpuContext| -> anyhow::Result<Device> {
        let mut settings = KernelSettings::for_adapter(&ctx.info);
        settings.matmul = matmul.unwrap_or(settings.matmul);
        let kernels = Kernels::with_settings(&ctx, settings)?;
        Ok(Device::Gpu(ctx, kernels))
    };
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Gpu => gpu(GpuContext::new()?),
        DeviceChoice::Auto => match GpuContext::new() {
            Ok(ctx) => {
                if ctx.info.device_type == wgpu::DeviceType::Cpu {
                    eprintln!(
                        "notice: {} is a software adapter on the CPU cores; --device cpu is usually faster here",
                        ctx.info.name
                    );
                }
                gpu(ctx)
            }
            Err(Error::NoAdapter(reason)) => {
                eprintln!("notice: {reason}; training on the CPU");
                Ok(Device::Cpu)
            }
            Err(other) => Err(other.into()),
        },
    }
}

pub(crate) fn make_trainer(
    device: &Device,
    kernel: KernelChoice,
    spec: &MlpSpec,
    params: &Params,
    train: &Dataset,
    test: Option<&Dataset>,
    config: &TrainConfig,
) -> anyhow::Result<Box<dyn Trainer>> {
    Ok(match device {
        Device::Gpu(ctx, kernels) => gpu::trainer(ctx, kernels, kernel, spec, params, train, test, config)?,
        Device::Cpu => Box::new(CpuTrainer::new(spec, params.clone(), train.clone(), test.cloned(), config)?),
    })
}
