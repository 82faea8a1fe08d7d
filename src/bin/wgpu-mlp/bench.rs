//! `wgpu-mlp bench`: training steps and matmuls timed on each device.

use std::io::Write;

use wgpu_mlp::bench;
use wgpu_mlp::{Backend, Error};

use crate::args::{BenchArgs, BenchDeviceArg};

/// `wgpu-mlp bench`: every case on every device, as a table or JSON.
pub(crate) fn run_bench(args: &BenchArgs) -> anyhow::Result<()> {
    let mut out = crate::stream::stdout();
    if let Some(dir) = &args.export {
        let cases = if args.cases.is_empty() { vec![bench::Case::Seed, bench::Case::Mlp] } else { args.cases.clone() };
        return export_cases(&cases, dir, &mut out);
    }
    for &count in &args.threads {
        wgpu_mlp::threads::with_cpu_threads(count, || ())?;
    }
    let cases = if args.cases.is_empty() { bench::Case::defaults() } else { args.cases.clone() };
    let wants = |device: BenchDeviceArg| args.devices.is_empty() || args.devices.contains(&device);
    // Without --device, the GPU is measured when there is any adapter,
    // software ones too: a bench compares, it does not pick.
    let gpu = match wants(BenchDeviceArg::Gpu) {
        true => match Backend::gpu(args.gpu.path, args.gpu.matmul.kernel()) {
            Ok(backend) => Some(backend),
            Err(Error::NoAdapter(reason)) if args.devices.is_empty() => {
                eprintln!("notice: {reason}; benchmarking the CPU only");
                None
            }
            Err(other) => return Err(other.into()),
        },
        false => None,
    };
    if let Some(gpu) = &gpu {
        eprintln!("gpu: {}", gpu.name());
    }
    let mut devices: Vec<Backend> = gpu.iter().cloned().collect();
    if wants(BenchDeviceArg::Cpu) {
        devices.push(Backend::Cpu);
    }
    // A GPU-only case asked for by name needs a GPU; among the defaults it is
    // skipped without one.
    if gpu.is_none() {
        if let Some(case) = args.cases.iter().find(|case| !case.runs_on_cpu()) {
            return Err(Error::InvalidInput(format!("the {case} case runs on the GPU only; add --device gpu")).into());
        }
    }
    if !args.json {
        writeln!(
            out,
            "{:<22} {:<4} {:<18} {:>12} {:>9} {:>12} {:>10} {:>9} {:>9} {:>9}",
            "case", "on", "kernel", "us/step", "GFLOP/s", "matmul us", "dispatch", "submit", "readback", "GPU MiB"
        )?;
    }
    let mut rows = Vec::new();
    let mut plain_lines = Vec::new();
    for case in &cases {
        for device in &devices {
            if !device.is_gpu() && !case.runs_on_cpu() {
                continue;
            }
            for m in bench::measure(case, device, &args.threads)? {
                if let (Some(plain), false) = (m.plain_us_per_step, args.json) {
                    plain_lines.push(format!(
                    "{} on {}: {:.2} us a step against {plain:.2} without DP-SGD (mlp, timed in turn with it): {:.2}x",
                    m.case,
                    m.device,
                    m.us_per_step,
                    m.us_per_step / plain
                ));
                }
                if args.json {
                    rows.push(serde_json::json!({
                        "case": m.case,
                        "device": m.device,
                        "adapter": m.adapter,
                        "kernel": m.kernel,
                        "matmul_kernel": m.matmul_kernel,
                        "threads": m.threads,
                        "us_per_step": m.us_per_step,
                        "gflops": m.gflops,
                        "matmul_us_per_step": m.matmul_us_per_step,
                        "plain_us_per_step": m.plain_us_per_step,
                        "dispatches_per_step": m.dispatches_per_step,
                        "submits_per_step": m.submits_per_step,
                        "readbacks_per_step": m.readbacks_per_step,
                        "gpu_bytes": m.gpu_bytes,
                    }));
                } else {
                    writeln!(
                        out,
                        "{:<22} {:<4} {:<18} {:>12.2} {:>9.2} {:>12} {:>10.2} {:>9.3} {:>9.3} {:>9.2}",
                        m.case,
                        m.device,
                        [
                            m.kernel.clone(),
                            m.matmul_kernel.clone(),
                            m.threads.map(|n| format!("{n} thread{}", if n == 1 { "" } else { "s" }))
                        ]
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
                    )?;
                }
            }
        }
    }
    if args.json {
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    }
    for line in &plain_lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `bench --export DIR`: the cases' files for benches/peers/ (seed and mlp
/// without --case), nothing timed.
fn export_cases(cases: &[bench::Case], dir: &std::path::Path, out: &mut impl Write) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::InvalidInput(format!("cannot make {}: {e}", dir.display())))?;
    for case in cases {
        let path = dir.join(format!("{case}.safetensors"));
        wgpu_mlp::peer_cases::export(case, &path)?;
        writeln!(out, "{}", path.display())?;
    }
    Ok(())
}
