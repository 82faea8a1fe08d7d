//! `wgpu-mlp bench`: training steps and matmuls timed on each device.

use wgpu_mlp::bench::{self, BenchDevice};
use wgpu_mlp::Error;

use crate::args::{BenchArgs, BenchDeviceArg, DeviceChoice};
use crate::device::{choose_device, Device};

/// `wgpu-mlp bench`: every case on every device, as a table or JSON.
pub(crate) fn run_bench(args: &BenchArgs) -> anyhow::Result<()> {
    let cases = if args.cases.is_empty() { bench::Case::defaults() } else { args.cases.clone() };
    let gpu = if args.devices.is_empty() || args.devices.contains(&BenchDeviceArg::Gpu) {
        match choose_device(
            if args.devices.is_empty() { DeviceChoice::Auto } else { DeviceChoice::Gpu },
            args.gpu.matmul.kernel(),
        )? {
            Device::Gpu(ctx, kernels) => Some((ctx, kernels)),
            Device::Cpu => None,
        }
    } else {
        None
    };
    let mut devices = Vec::new();
    if let Some((ctx, kernels)) = &gpu {
        devices.push(BenchDevice::Gpu(ctx, kernels));
    }
    if args.devices.is_empty() || args.devices.contains(&BenchDeviceArg::Cpu) {
        devices.push(BenchDevice::Cpu);
    }
    if let Some((ctx, _)) = &gpu {
        eprintln!("gpu: {}", ctx.describe());
    }
    // A GPU-only case asked for by name needs a GPU; among the defaults it is
    // skipped without one.
    if gpu.is_none() {
        if let Some(case) = args.cases.iter().find(|case| !case.runs_on_cpu()) {
            return Err(Error::InvalidInput(format!("the {case} case runs on the GPU only; add --device gpu")).into());
        }
    }
    if !args.json {
        println!(
            "{:<22} {:<4} {:<18} {:>12} {:>9} {:>12} {:>10} {:>9} {:>9} {:>9}",
            "case", "on", "kernel", "us/step", "GFLOP/s", "matmul us", "dispatch", "submit", "readback", "GPU MiB"
        );
    }
    let mut rows = Vec::new();
    for case in &cases {
        for device in &devices {
            if matches!(device, BenchDevice::Cpu) && !case.runs_on_cpu() {
                continue;
            }
            let m = bench::measure(case, device, args.gpu.kernel.into())?;
            if args.json {
                rows.push(serde_json::json!({
                    "case": m.case,
                    "device": m.device,
                    "adapter": m.adapter,
                    "kernel": m.kernel,
                    "matmul_kernel": m.matmul_kernel,
                    "us_per_step": m.us_per_step,
                    "gflops": m.gflops,
                    "matmul_us_per_step": m.matmul_us_per_step,
                    "dispatches_per_step": m.dispatches_per_step,
                    "submits_per_step": m.submits_per_step,
                    "readbacks_per_step": m.readbacks_per_step,
                    "gpu_bytes": m.gpu_bytes,
                }));
            } else {
                println!(
                    "{:<22} {:<4} {:<18} {:>12.2} {:>9.2} {:>12} {:>10.2} {:>9.3} {:>9.3} {:>9.2}",
                    m.case,
                    m.device,
                    [m.kernel.as_deref(), m.matmul_kernel.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" "),
                    m.us_per_step,
                    m.gflops,
                    m.matmul_us_per_step.map_or("-".to_string(), |us| format!("{us:.2}")),
                    m.dispatches_per_step,
                    m.submits_per_step,
                    m.readbacks_per_step,
                    m.gpu_bytes as f64 / (1 << 20) as f64
                );
            }
        }
    }
    if args.json {
        println!("{}", serde_json::Value::Array(rows));
    }
    Ok(())
}
