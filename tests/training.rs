//! Whole training runs: the GPU trainer against the CPU reference from the same
//! Params and data, compared at every read-back, and loss going down on a
//! problem that can be learned.

mod common;

use common::{assert_close, gpu};
use ndarray::Axis;
use wgpu_mlp::gpu::GpuTrainer;
use wgpu_mlp::{fit, CpuTrainer, Dataset, MlpSpec, Params, TrainConfig, Trainer};

/// After hundreds of steps the GPU and CPU parameters differ only by the
/// rounding of exp and of differently ordered sums, carried along.
const PARAM_ATOL: f32 = 1e-5;
const PARAM_RTOL: f32 = 1e-4;
const LOSS_RTOL: f32 = 1e-5;

fn flat(params: &Params) -> Vec<f32> {
    params
        .layers
        .iter()
        .flat_map(|l| l.w.iter().chain(l.b.iter()).copied())
        .collect()
}

struct Case {
    layers: &'static [usize],
    samples: usize,
    batch_size: Option<usize>,
    lr: f32,
    epochs: usize,
    log_every: usize,
}

/// Trains the case on both devices in chunks of `log_every` epochs and checks
/// the epoch losses and all parameters after every chunk.
fn gpu_matches_cpu(case: Case) {
    let Some((ctx, kernels)) = gpu() else { return };
    let spec = MlpSpec::new(case.layers.to_vec()).unwrap();
    let data = Dataset::seed_problem(case.samples, spec.inputs(), spec.outputs(), 7).unwrap();
    let params = Params::init(&spec, 7).unwrap();
    let config = TrainConfig {
        lr: case.lr,
        batch_size: case.batch_size,
        log_every: case.log_every,
    };
    let mut on_gpu = GpuTrainer::new(ctx, kernels, &spec, &params, &data, &config).unwrap();
    let mut on_cpu = CpuTrainer::new(&spec, params.clone(), data, &config).unwrap();
    assert_eq!(on_gpu.steps_per_epoch(), on_cpu.steps_per_epoch());
    let what = format!("layers {spec}, batch {:?}", case.batch_size);
    assert_close(
        &format!("{what}: initial loss"),
        &[on_gpu.evaluate().unwrap()],
        &[on_cpu.evaluate().unwrap()],
        0.0,
        LOSS_RTOL,
    );

    let mut epoch = 0;
    while epoch < case.epochs {
        let losses_gpu = on_gpu.train(case.log_every).unwrap();
        let losses_cpu = on_cpu.train(case.log_every).unwrap();
        epoch += case.log_every;
        assert_close(
            &format!("{what}: losses up to epoch {epoch}"),
            &losses_gpu,
            &losses_cpu,
            0.0,
            LOSS_RTOL,
        );
        let (params_gpu, params_cpu) = (on_gpu.params().unwrap(), on_cpu.params().unwrap());
        assert_close(
            &format!("{what}: params at epoch {epoch}"),
            &flat(&params_gpu),
            &flat(&params_cpu),
            PARAM_ATOL,
            PARAM_RTOL,
        );
        assert_ne!(
            flat(&params_gpu),
            flat(&params),
            "training must move the parameters"
        );
    }
    assert_close(
        &format!("{what}: final loss"),
        &[on_gpu.evaluate().unwrap()],
        &[on_cpu.evaluate().unwrap()],
        0.0,
        LOSS_RTOL,
    );
}

#[test]
fn seed_problem_gpu_matches_cpu_at_every_read_back() {
    gpu_matches_cpu(Case {
        layers: &[10, 5, 1],
        samples: 100,
        batch_size: None,
        lr: 0.01,
        epochs: 1000,
        log_every: 100,
    });
}

#[test]
fn deep_odd_net_with_mini_batches_gpu_matches_cpu() {
    // 37 rows in batches of 8: four full batches and a last one of 5.
    gpu_matches_cpu(Case {
        layers: &[13, 7, 9, 3],
        samples: 37,
        batch_size: Some(8),
        lr: 0.5,
        epochs: 60,
        log_every: 20,
    });
}

#[test]
fn single_sample_and_wide_layer_gpu_matches_cpu() {
    gpu_matches_cpu(Case {
        layers: &[1, 300, 2],
        samples: 1,
        batch_size: None,
        lr: 0.1,
        epochs: 20,
        log_every: 10,
    });
}

/// y = mean of the inputs: smooth, in (0, 1), and learnable by a small net.
fn learnable(samples: usize) -> (MlpSpec, Dataset) {
    let spec = MlpSpec::new(vec![4, 8, 1]).unwrap();
    let mut data = Dataset::seed_problem(samples, 4, 1, 3).unwrap();
    data.y = data.x.mean_axis(Axis(1)).unwrap().insert_axis(Axis(1));
    (spec, data)
}

fn assert_learns(trainer: &mut dyn Trainer) {
    let report = fit(trainer, 300, 100, |_, _| {}).unwrap();
    assert!(
        report.final_loss < 0.2 * report.initial_loss,
        "{}: loss went from {} to {}",
        trainer.device(),
        report.initial_loss,
        report.final_loss
    );
    let logged: Vec<f32> = report.logged.iter().map(|&(_, loss)| loss).collect();
    assert!(
        logged.windows(2).all(|pair| pair[1] < pair[0]),
        "logged losses must fall: {logged:?}"
    );
}

#[test]
fn loss_decreases_on_a_learnable_problem() {
    let (spec, data) = learnable(64);
    let params = Params::init(&spec, 1).unwrap();
    let config = TrainConfig {
        lr: 2.0,
        batch_size: Some(16),
        log_every: 100,
    };
    assert_learns(&mut CpuTrainer::new(&spec, params.clone(), data.clone(), &config).unwrap());
    if let Some((ctx, kernels)) = gpu() {
        assert_learns(&mut GpuTrainer::new(ctx, kernels, &spec, &params, &data, &config).unwrap());
    }
}
