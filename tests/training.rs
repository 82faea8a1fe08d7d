//! Whole training runs: the GPU trainer against the CPU reference from the same
//! Params and data, compared at every read-back, and loss going down on a
//! problem that can be learned.

mod common;

use common::{classes, gpu, trajectories_match};
use ndarray::Axis;
use wgpu_mlp::gpu::GpuTrainer;
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::train::Optimizer;
use wgpu_mlp::{fit, CpuTrainer, Dataset, MlpSpec, Params, TrainConfig, Trainer};

struct Case {
    spec: MlpSpec,
    init: Init,
    train: Dataset,
    test: Option<Dataset>,
    config: TrainConfig,
    epochs: usize,
}

/// Trains the case on the GPU's layered path and on the CPU and compares them
/// at every read-back.
fn gpu_matches_cpu(case: Case) {
    let Some((ctx, kernels)) = gpu() else { return };
    let Case { spec, init, train, test, config, epochs } = case;
    let params = Params::init(&spec, init, 7).unwrap();
    let mut on_gpu = GpuTrainer::new(ctx, kernels, &spec, &params, &train, test.as_ref(), &config).unwrap();
    let mut on_cpu = CpuTrainer::new(&spec, params.clone(), train, test, &config).unwrap();
    let what = format!("layers {spec} {:?}, batch {:?}", config.optimizer, config.batch_size);
    trajectories_match(&what, &mut on_gpu, &mut on_cpu, &params, config.optimizer, epochs, config.log_every);
}

fn sgd(lr: f32, batch_size: Option<usize>, log_every: usize) -> TrainConfig {
    TrainConfig { lr, batch_size, log_every, ..TrainConfig::default() }
}

#[test]
fn seed_problem_gpu_matches_cpu_at_every_read_back() {
    let spec = MlpSpec::new(vec![10, 5, 1]).unwrap();
    let train = Dataset::seed_problem(100, 10, 1, 7).unwrap();
    gpu_matches_cpu(Case { spec, init: Init::Normal, train, test: None, config: sgd(0.01, None, 100), epochs: 1000 });
}

#[test]
fn deep_odd_net_with_mini_batches_gpu_matches_cpu() {
    // 37 rows in batches of 8: four full batches and a last one of 5.
    let spec = MlpSpec::new(vec![13, 7, 9, 3]).unwrap();
    let train = Dataset::seed_problem(37, 13, 3, 7).unwrap();
    gpu_matches_cpu(Case { spec, init: Init::Normal, train, test: None, config: sgd(0.5, Some(8), 20), epochs: 60 });
}

#[test]
fn single_sample_and_wide_layer_gpu_matches_cpu() {
    let spec = MlpSpec::new(vec![1, 300, 2]).unwrap();
    let train = Dataset::seed_problem(1, 1, 2, 7).unwrap();
    gpu_matches_cpu(Case { spec, init: Init::Normal, train, test: None, config: sgd(0.1, None, 10), epochs: 20 });
}

#[test]
fn adam_relu_softmax_with_shuffled_batches_and_a_test_set_gpu_matches_cpu() {
    let spec =
        MlpSpec::new(vec![6, 11, 4]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let config = TrainConfig {
        lr: 0.01,
        optimizer: Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        weight_decay: 1e-4,
        batch_size: Some(16),
        shuffle: true,
        seed: 3,
        log_every: 7,
    };
    // 53 rows in batches of 16 (the last of 5); the test set of 17 in 16 + 1.
    let (train, test) = (classes(53, 6, 4, 1), classes(17, 6, 4, 2));
    gpu_matches_cpu(Case { spec, init: Init::He, train, test: Some(test), config, epochs: 30 });
}

#[test]
fn momentum_tanh_regression_with_a_test_set_gpu_matches_cpu() {
    let spec = MlpSpec::new(vec![5, 9, 2]).unwrap().with(Activation::Tanh, Output::Identity, Loss::Mse).unwrap();
    let config = TrainConfig {
        lr: 0.05,
        optimizer: Optimizer::Momentum { momentum: 0.9 },
        batch_size: Some(10),
        shuffle: true,
        seed: 5,
        log_every: 4,
        ..TrainConfig::default()
    };
    let (train, test) = (Dataset::seed_problem(41, 5, 2, 3).unwrap(), Dataset::seed_problem(9, 5, 2, 4).unwrap());
    gpu_matches_cpu(Case { spec, init: Init::Xavier, train, test: Some(test), config, epochs: 12 });
}

#[test]
fn sigmoid_outputs_with_mse_count_accuracy_on_classes() {
    let spec = MlpSpec::new(vec![4, 6, 3]).unwrap();
    let (train, test) = (classes(40, 4, 3, 5), classes(20, 4, 3, 6));
    let config = TrainConfig { batch_size: Some(7), log_every: 5, lr: 0.5, ..TrainConfig::default() };
    gpu_matches_cpu(Case { spec, init: Init::Xavier, train, test: Some(test), config, epochs: 10 });
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
    let logged: Vec<f32> = report.history.iter().step_by(100).map(|m| m.train_loss).collect();
    assert!(logged.windows(2).all(|pair| pair[1] < pair[0]), "losses must fall: {logged:?}");
}

#[test]
fn loss_decreases_on_a_learnable_problem() {
    let (spec, data) = learnable(64);
    let params = Params::init(&spec, Init::Normal, 1).unwrap();
    let config = sgd(2.0, Some(16), 100);
    assert_learns(&mut CpuTrainer::new(&spec, params.clone(), data.clone(), None, &config).unwrap());
    if let Some((ctx, kernels)) = gpu() {
        assert_learns(&mut GpuTrainer::new(ctx, kernels, &spec, &params, &data, None, &config).unwrap());
    }
}

/// The seed problem and real-sized nets; for nets of a few hundred parameters
/// the fixed costs (uniforms, the metrics ring, alignment padding) weigh more.
#[test]
fn gpu_memory_is_what_the_model_optimizer_batch_and_data_need() {
    let Some((ctx, kernels)) = gpu() else { return };
    let adam = Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let cases = [
        (vec![10, 5, 1], 100, 0, TrainConfig::default()),
        (
            vec![784, 256, 10],
            256,
            0,
            TrainConfig { optimizer: Optimizer::Momentum { momentum: 0.9 }, ..TrainConfig::default() },
        ),
        (
            vec![784, 64, 10],
            500,
            100,
            TrainConfig {
                batch_size: Some(64),
                optimizer: adam,
                shuffle: true,
                log_every: 1,
                ..TrainConfig::default()
            },
        ),
    ];
    for (sizes, train_rows, test_rows, config) in cases {
        let spec = MlpSpec::new(sizes).unwrap();
        let train = classes(train_rows, spec.inputs(), spec.outputs().max(2), 1);
        let train = Dataset { y: train.y.slice(ndarray::s![.., ..spec.outputs()]).to_owned(), ..train };
        let test = (test_rows > 0).then(|| Dataset {
            classes: train.classes,
            ..Dataset::seed_problem(test_rows, spec.inputs(), spec.outputs(), 2).unwrap()
        });
        let params = Params::init(&spec, Init::Xavier, 0).unwrap();
        let trainer = GpuTrainer::new(ctx, kernels, &spec, &params, &train, test.as_ref(), &config).unwrap();
        let expected = GpuTrainer::expected_gpu_bytes(&spec, &config, train_rows, test_rows);
        let ratio = trainer.gpu_bytes() as f64 / expected as f64;
        eprintln!("layers {spec}: {} bytes allocated, {expected} expected, ratio {ratio:.3}", trainer.gpu_bytes());
        assert!(
            (0.9..=1.1).contains(&ratio),
            "layers {spec}: {} bytes allocated, {expected} expected",
            trainer.gpu_bytes()
        );
    }
}
