//! Criterion over the cases of `wgpu-mlp bench` (the defaults: the seed
//! problem, the 784-256-10 step, one tiny dispatch and the matmuls), on the GPU when there is an
//! adapter and on the CPU, grouped as "{case}/{device}" for regression
//! tracking. `wgpu-mlp bench` gives the same figures as one table.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use wgpu_mlp::bench::{runner, Case};
use wgpu_mlp::gpu::GpuPath;
use wgpu_mlp::Backend;

fn bench_cases(c: &mut Criterion) {
    let mut devices = vec![("cpu", Backend::Cpu)];
    match Backend::gpu(GpuPath::Auto, None) {
        Ok(gpu) => devices.insert(0, ("gpu", gpu)),
        Err(error) => eprintln!("no GPU ({error}): the gpu benchmarks are skipped"),
    }
    for case in Case::defaults() {
        let mut group = c.benchmark_group(case.to_string());
        group.sample_size(10).measurement_time(Duration::from_secs(3));
        for (name, device) in &devices {
            if !device.is_gpu() && !case.runs_on_cpu() {
                continue;
            }
            let mut run = runner(&case, device).expect("the case sets up");
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
