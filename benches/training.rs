//! One training step of the seed problem (10-5-1, 100 samples, full batch) and
//! of a 784-256-10 net at batch 256, on the CPU and on the GPU. Group names are
//! "{case}/{device}". Steps run in chunks ending in one loss read-back, as in a
//! real run, so GPU time includes waiting for the GPU to finish.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use wgpu_mlp::gpu::{GpuContext, GpuTrainer, Kernels};
use wgpu_mlp::model::Init;
use wgpu_mlp::{CpuTrainer, Dataset, MlpSpec, Params, TrainConfig, Trainer};

/// Steps between read-backs, as with the CLI's default --log-every.
const CHUNK: usize = 100;

struct Case {
    name: &'static str,
    layers: Vec<usize>,
    samples: usize,
}

fn cases() -> Vec<Case> {
    vec![
        Case { name: "seed", layers: vec![10, 5, 1], samples: 100 },
        Case { name: "mlp", layers: vec![784, 256, 10], samples: 256 },
    ]
}

/// Times `iters` one-step epochs in chunks of at most CHUNK.
fn time_steps(trainer: &mut dyn Trainer, iters: u64) -> Duration {
    let start = Instant::now();
    let mut left = iters as usize;
    while left > 0 {
        let chunk = left.min(CHUNK);
        trainer.train(chunk).expect("training runs");
        left -= chunk;
    }
    start.elapsed()
}

fn bench_steps(c: &mut Criterion) {
    let gpu = GpuContext::new().ok().map(|ctx| {
        let kernels = Kernels::new(&ctx).expect("the shaders compile");
        (ctx, kernels)
    });
    if gpu.is_none() {
        eprintln!("no GPU adapter: the gpu benchmarks are skipped");
    }
    for case in cases() {
        let spec = MlpSpec::new(case.layers.clone()).expect("a valid spec");
        let data = Dataset::seed_problem(case.samples, spec.inputs(), spec.outputs(), 0).expect("data");
        let params = Params::init(&spec, Init::Normal, 0).expect("params");
        let config = TrainConfig { log_every: CHUNK, ..TrainConfig::default() };

        let mut group = c.benchmark_group(case.name);
        group.sample_size(20);
        let mut cpu = CpuTrainer::new(&spec, params.clone(), data.clone(), None, &config).expect("cpu trainer");
        group.bench_function("cpu", |b| b.iter_custom(|iters| time_steps(&mut cpu, iters)));
        if let Some((ctx, kernels)) = &gpu {
            let mut trainer = GpuTrainer::new(ctx, kernels, &spec, &params, &data, None, &config).expect("gpu trainer");
            group.bench_function("gpu", |b| b.iter_custom(|iters| time_steps(&mut trainer, iters)));
        }
        group.finish();
    }
}

criterion_group!(benches, bench_steps);
criterion_main!(benches);
