//! Criterion over the cases of `wgpu-mlp bench` (the defaults: the seed
//! problem, the 784-256-10 step, one tiny dispatch and the matmuls), on the GPU when there is an
//! adapter and on the CPU, grouped as "{case}/{device}" for regression
//! tracking. `wgpu-mlp bench` gives the same figures as one table.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use wgpu_mlp::bench::{runner, BenchDevice, Case};
use wgpu_mlp::gpu::{GpuContext, KernelChoice, Kernels};

fn bench_cases(c: &mut Criterion) {
    let gpu = GpuContext::new().ok().map(|ctx| {
        let kernels = Kernels::new(&ctx).expect("the shaders compile");
        (ctx, kernels)
    });
    let mut devices = vec![("cpu", BenchDevice::Cpu)];
    match &gpu {
        Some((ctx, kernels)) => devices.insert(0, ("gpu", BenchDevice::Gpu(ctx, kernels))),
        None => eprintln!("no GPU adapter: the gpu benchmarks are skipped"),
    }
    for case in Case::defaults() {
        let mut group = c.benchmark_group(case.to_string());
        group.sample_size(10).measurement_time(Duration::from_secs(3));
        for (name, device) in &devices {
            if matches!(device, BenchDevice::Cpu) && !case.runs_on_cpu() {
                continue;
            }
            let mut run = runner(&case, device, KernelChoice::Auto).expect("the case sets up");
            group.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    run(iters as usize).expect("the case runs");
                    start.elapsed()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_cases);
criterion_main!(benches);
