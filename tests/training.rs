//! Whole training runs: one list of scenarios, each trained on every GPU path
//! that takes it (layered always; fused where the run fits one workgroup) and
//! on the CPU reference from the same Params and data, compared at every
//! read-back; loss going down on a learnable problem on every backend; the
//! runs the fused path must turn away; and the GPU memory a run takes.

mod common;

use common::{classes, gpu, gpu_backends, label, test_backends, trajectories_match};
use ndarray::Axis;
use wgpu_mlp::gpu::{FusedPool, FusedTrainer, GpuPath, LayeredTrainer};
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::train::Optimizer;
use wgpu_mlp::{fit, Backend, CpuTrainer, Dataset, MlpSpec, Params, Run, TrainConfig};

struct Case {
    spec: MlpSpec,
    init: Init,
    train: Dataset,
    test: Option<Dataset>,
    config: TrainConfig,
    epochs: usize,
    log_every: usize,
    /// Whether the fused path must take this run (a regression with a test
    /// set keeps it to the layered path).
    fused: bool,
}

/// Trains the case on each GPU path that takes it and on the CPU, and
/// compares them at every read-back.
fn gpu_matches_cpu(case: Case) {
    let Case { spec, init, train, test, config, epochs, log_every, fused } = case;
    let params = Params::init(&spec, init, 7).unwrap();
    let run = Run { spec: &spec, params: &params, train: &train, test: test.as_ref(), config: &config };
    for backend in gpu_backends() {
        let Backend::Gpu(gpu) = &backend else { unreachable!("gpu_backends are GPUs") };
        if gpu.path == GpuPath::Fused {
            assert_eq!(FusedTrainer::fits(&gpu.ctx, &run), fused, "layers {spec}: does the fused path take it?");
            if !fused {
                continue;
            }
        }
        let mut on_gpu = backend.trainer(&run).unwrap();
        let mut on_cpu = CpuTrainer::new(&run).unwrap();
        let what = format!("{}, layers {spec} {:?}, batch {:?}", label(&backend), config.optimizer, config.batch_size);
        assert_eq!(on_gpu.params().unwrap(), params, "{what}: the uploaded params read back unchanged");
        trajectories_match(&what, on_gpu.as_mut(), &mut on_cpu, &params, config.optimizer, epochs, log_every);
    }
}

fn sgd(lr: f32, batch_size: Option<usize>) -> TrainConfig {
    TrainConfig { lr, batch_size, ..TrainConfig::default() }
}

const ADAM: Optimizer = Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

#[test]
fn seed_problem_matches_cpu_at_every_read_back() {
    let spec = MlpSpec::new(vec![10, 5, 1]).unwrap();
    let train = Dataset::seed_problem(100, 10, 1, 7).unwrap();
    let config = sgd(0.01, None);
    gpu_matches_cpu(Case {
        spec,
        init: Init::Normal,
        train,
        test: None,
        config,
        epochs: 1000,
        log_every: 100,
        fused: true,
    });
}

#[test]
fn deep_odd_net_with_mini_batches_matches_cpu() {
    // 37 rows in batches of 8: four full batches and a last one of 5.
    let spec = MlpSpec::new(vec![13, 7, 9, 3]).unwrap();
    let train = Dataset::seed_problem(37, 13, 3, 7).unwrap();
    let config = sgd(0.5, Some(8));
    gpu_matches_cpu(Case {
        spec,
        init: Init::Normal,
        train,
        test: None,
        config,
        epochs: 60,
        log_every: 20,
        fused: true,
    });
}

#[test]
fn deep_odd_tanh_net_with_momentum_and_weight_decay_matches_cpu() {
    let spec = MlpSpec::new(vec![13, 7, 9, 3]).unwrap().with(Activation::Tanh, Output::Identity, Loss::Mse).unwrap();
    let train = Dataset::seed_problem(37, 13, 3, 7).unwrap();
    let config = TrainConfig {
        lr: 0.05,
        optimizer: Optimizer::Momentum { momentum: 0.9 },
        weight_decay: 1e-3,
        batch_size: Some(8),
        ..TrainConfig::default()
    };
    gpu_matches_cpu(Case {
        spec,
        init: Init::Xavier,
        train,
        test: None,
        config,
        epochs: 40,
        log_every: 10,
        fused: true,
    });
}

#[test]
fn single_sample_and_wide_layer_matches_cpu() {
    let spec = MlpSpec::new(vec![1, 300, 2]).unwrap();
    let train = Dataset::seed_problem(1, 1, 2, 7).unwrap();
    let config = sgd(0.1, None);
    let fused = gpu().is_some_and(|(ctx, _)| {
        // 300 hidden units need more workgroup memory than some adapters give.
        let params = Params::init(&spec, Init::Normal, 7).unwrap();
        FusedTrainer::fits(ctx, &Run { spec: &spec, params: &params, train: &train, test: None, config: &config })
    });
    gpu_matches_cpu(Case { spec, init: Init::Normal, train, test: None, config, epochs: 20, log_every: 10, fused });
}

#[test]
fn adam_relu_softmax_in_order_matches_cpu() {
    // 53 rows in batches of 16 (the last of 5), with accuracy counted.
    let spec =
        MlpSpec::new(vec![6, 11, 4]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let config =
        TrainConfig { lr: 0.01, optimizer: ADAM, weight_decay: 1e-4, batch_size: Some(16), ..TrainConfig::default() };
    let train = classes(53, 6, 4, 1);
    gpu_matches_cpu(Case { spec, init: Init::He, train, test: None, config, epochs: 30, log_every: 7, fused: true });
}

#[test]
fn adam_relu_softmax_with_shuffled_batches_and_a_test_set_matches_cpu() {
    let spec =
        MlpSpec::new(vec![6, 11, 4]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let config = TrainConfig {
        lr: 0.01,
        optimizer: ADAM,
        weight_decay: 1e-4,
        batch_size: Some(16),
        shuffle: true,
        seed: 3,
        ..TrainConfig::default()
    };
    // 53 rows in batches of 16 (the last of 5); the test set of 17 in 16 + 1.
    let (train, test) = (classes(53, 6, 4, 1), classes(17, 6, 4, 2));
    gpu_matches_cpu(Case {
        spec,
        init: Init::He,
        train,
        test: Some(test),
        config,
        epochs: 30,
        log_every: 7,
        fused: true,
    });
}

/// Adam on a 7-300-5 net: its state (4 x 3905 floats) is above lavapipe's
/// 32 KiB of workgroup memory, so there the pool is a storage buffer.
fn storage_pool_run_parts() -> (MlpSpec, Dataset, Dataset, TrainConfig) {
    let spec =
        MlpSpec::new(vec![7, 300, 5]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let config = TrainConfig {
        lr: 0.005,
        optimizer: ADAM,
        batch_size: Some(13),
        shuffle: true,
        seed: 11,
        ..TrainConfig::default()
    };
    // 61 rows in batches of 13 (the last of 9); a test set of 23 in 13 + 10.
    (spec, classes(61, 7, 5, 8), classes(23, 7, 5, 9), config)
}

#[test]
fn adam_shuffled_with_a_test_set_on_a_net_above_workgroup_memory_matches_cpu() {
    let (spec, train, test, config) = storage_pool_run_parts();
    if let Some((ctx, _)) = gpu() {
        let params = Params::init(&spec, Init::He, 7).unwrap();
        let run = Run { spec: &spec, params: &params, train: &train, test: Some(&test), config: &config };
        let pool = FusedTrainer::check(ctx, &run).unwrap();
        let adam_state_bytes = 4 * 3905 * 4;
        if (ctx.limits.max_compute_workgroup_storage_size as usize) < adam_state_bytes {
            assert_eq!(pool, FusedPool::Storage);
        }
        // Steps of 13 x 3600 multiply-adds: auto takes the storage pool on a
        // CPU adapter only, where it was measured faster for small steps.
        let on_cpu_adapter = ctx.info.device_type == wgpu::DeviceType::Cpu;
        let auto = if pool == FusedPool::Workgroup || on_cpu_adapter { GpuPath::Fused } else { GpuPath::Layered };
        assert_eq!(GpuPath::Auto.resolve(ctx, &run), auto);
    }
    gpu_matches_cpu(Case {
        spec,
        init: Init::He,
        train,
        test: Some(test),
        config,
        epochs: 9,
        log_every: 4,
        fused: true,
    });
}

#[test]
fn shuffled_adam_runs_with_a_test_set_resume_bit_for_bit() {
    // In workgroup memory (6-11-4) and, on lavapipe, in a storage buffer (7-300-5).
    let (spec, train, test, config) = storage_pool_run_parts();
    let params = Params::init(&spec, Init::He, 3).unwrap();
    common::resumes_bit_for_bit(
        &Run { spec: &spec, params: &params, train: &train, test: Some(&test), config: &config },
        3,
    );
    let small =
        MlpSpec::new(vec![6, 11, 4]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let (train, test) = (classes(53, 6, 4, 1), classes(17, 6, 4, 2));
    let config = TrainConfig { batch_size: Some(16), ..config };
    let params = Params::init(&small, Init::He, 3).unwrap();
    common::resumes_bit_for_bit(
        &Run { spec: &small, params: &params, train: &train, test: Some(&test), config: &config },
        4,
    );
}

#[test]
fn momentum_tanh_regression_with_a_test_set_matches_cpu() {
    let spec = MlpSpec::new(vec![5, 9, 2]).unwrap().with(Activation::Tanh, Output::Identity, Loss::Mse).unwrap();
    let config = TrainConfig {
        lr: 0.05,
        optimizer: Optimizer::Momentum { momentum: 0.9 },
        batch_size: Some(10),
        shuffle: true,
        seed: 5,
        ..TrainConfig::default()
    };
    let (train, test) = (Dataset::seed_problem(41, 5, 2, 3).unwrap(), Dataset::seed_problem(9, 5, 2, 4).unwrap());
    gpu_matches_cpu(Case {
        spec,
        init: Init::Xavier,
        train,
        test: Some(test),
        config,
        epochs: 12,
        log_every: 4,
        fused: false,
    });
}

#[test]
fn sigmoid_outputs_with_mse_count_accuracy_on_classes() {
    let spec = MlpSpec::new(vec![4, 6, 3]).unwrap();
    let (train, test) = (classes(40, 4, 3, 5), classes(20, 4, 3, 6));
    let config = TrainConfig { batch_size: Some(7), lr: 0.5, ..TrainConfig::default() };
    gpu_matches_cpu(Case {
        spec,
        init: Init::Xavier,
        train,
        test: Some(test),
        config,
        epochs: 10,
        log_every: 5,
        fused: true,
    });
}

#[test]
fn one_layer_sigmoid_classes_without_hidden_layers_matches_cpu() {
    let spec = MlpSpec::new(vec![4, 3]).unwrap();
    let config = TrainConfig { lr: 0.5, ..TrainConfig::default() };
    let train = classes(40, 4, 3, 5);
    gpu_matches_cpu(Case {
        spec,
        init: Init::Xavier,
        train,
        test: None,
        config,
        epochs: 20,
        log_every: 5,
        fused: true,
    });
}

#[test]
fn one_call_of_more_epochs_than_the_ring_holds_is_split_into_read_backs() {
    // RING_EPOCHS epochs plus a few in one train() call: every path accepts
    // it and returns one metrics row per epoch, equal to the CPU's.
    let spec = MlpSpec::new(vec![3, 2, 1]).unwrap();
    let train = Dataset::seed_problem(5, 3, 1, 9).unwrap();
    let config = sgd(0.1, Some(2));
    let epochs = wgpu_mlp::gpu::RING_EPOCHS + 3;
    gpu_matches_cpu(Case {
        spec,
        init: Init::Xavier,
        train,
        test: None,
        config,
        epochs,
        log_every: epochs,
        fused: true,
    });
}

#[test]
fn fused_with_few_epochs_per_dispatch_matches_cpu() {
    // Three epochs per dispatch, so a call of 10 epochs takes four dispatches.
    let Some((ctx, _)) = gpu() else { return };
    let spec = MlpSpec::new(vec![13, 7, 9, 3]).unwrap().with(Activation::Tanh, Output::Identity, Loss::Mse).unwrap();
    let train = Dataset::seed_problem(37, 13, 3, 7).unwrap();
    let config = TrainConfig {
        lr: 0.05,
        optimizer: Optimizer::Momentum { momentum: 0.9 },
        batch_size: Some(8),
        ..TrainConfig::default()
    };
    let params = Params::init(&spec, Init::Xavier, 7).unwrap();
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    let mut fused = FusedTrainer::new(ctx, &run).unwrap();
    fused.set_epochs_per_dispatch(3);
    let mut on_cpu = CpuTrainer::new(&run).unwrap();
    trajectories_match("fused, 3 epochs per dispatch", &mut fused, &mut on_cpu, &params, config.optimizer, 40, 10);
}

#[test]
fn fused_shuffled_with_a_test_set_and_few_epochs_per_dispatch_matches_cpu() {
    // Two epochs per dispatch and reads back every 5: each dispatch after the
    // first in a read-back starts at its epoch's row order and ring entry.
    let Some((ctx, _)) = gpu() else { return };
    let (spec, train, test, config) = storage_pool_run_parts();
    let params = Params::init(&spec, Init::He, 5).unwrap();
    let run = Run { spec: &spec, params: &params, train: &train, test: Some(&test), config: &config };
    let mut fused = FusedTrainer::new(ctx, &run).unwrap();
    fused.set_epochs_per_dispatch(2);
    let mut on_cpu = CpuTrainer::new(&run).unwrap();
    let what = "fused, shuffled, a test set, 2 epochs per dispatch";
    trajectories_match(what, &mut fused, &mut on_cpu, &params, config.optimizer, 10, 5);
}

#[test]
fn leaky_relu_net_with_mini_batches_matches_cpu() {
    // 37 rows in batches of 8 (the last of 5), a slope far from the default.
    let spec = MlpSpec::new(vec![13, 7, 9, 3])
        .unwrap()
        .with(Activation::LeakyRelu, Output::Identity, Loss::Mse)
        .unwrap()
        .with_negative_slope(0.2)
        .unwrap();
    let train = Dataset::seed_problem(37, 13, 3, 7).unwrap();
    let config = TrainConfig {
        lr: 0.05,
        optimizer: Optimizer::Momentum { momentum: 0.9 },
        batch_size: Some(8),
        ..TrainConfig::default()
    };
    gpu_matches_cpu(Case { spec, init: Init::He, train, test: None, config, epochs: 40, log_every: 10, fused: true });
}

#[test]
fn gelu_net_with_mini_batches_matches_cpu() {
    // Two GELU layers, so the backward pass reads a kept z below a GELU
    // layer and below the output; 37 rows in batches of 8 (the last of 5).
    let spec = MlpSpec::new(vec![7, 13, 5, 2]).unwrap().with(Activation::Gelu, Output::Identity, Loss::Mse).unwrap();
    let train = Dataset::seed_problem(37, 7, 2, 8).unwrap();
    let config = TrainConfig { lr: 0.01, optimizer: ADAM, batch_size: Some(8), ..TrainConfig::default() };
    gpu_matches_cpu(Case { spec, init: Init::He, train, test: None, config, epochs: 30, log_every: 10, fused: true });
}

#[test]
fn gelu_with_shuffled_batches_and_a_test_set_matches_cpu() {
    let spec = MlpSpec::new(vec![5, 13, 3]).unwrap().with(Activation::Gelu, Output::Identity, Loss::Mse).unwrap();
    let config = TrainConfig { lr: 0.05, batch_size: Some(6), shuffle: true, seed: 4, ..TrainConfig::default() };
    let (train, test) = (Dataset::seed_problem(37, 5, 3, 3).unwrap(), Dataset::seed_problem(7, 5, 3, 4).unwrap());
    gpu_matches_cpu(Case {
        spec,
        init: Init::Xavier,
        train,
        test: Some(test),
        config,
        epochs: 12,
        log_every: 4,
        fused: false,
    });
}

/// Multi-label targets, 0 or 1 each: output j is on when inputs j and j + 1
/// add up to more than 1 (their mean is U(0, 1)'s).
fn multi_label(samples: usize, inputs: usize, outputs: usize, seed: u64) -> Dataset {
    let mut data = Dataset::seed_problem(samples, inputs, outputs, seed).unwrap();
    for (x, mut y) in data.x.rows().into_iter().zip(data.y.rows_mut()) {
        for (j, t) in y.iter_mut().enumerate() {
            *t = if x[j % inputs] + x[(j + 1) % inputs] > 1.0 { 1.0 } else { 0.0 };
        }
    }
    data
}

#[test]
fn bce_multi_label_in_order_matches_cpu() {
    // 53 rows in batches of 16 (the last of 5), three labels per row.
    let spec = MlpSpec::new(vec![6, 11, 3]).unwrap().with(Activation::Relu, Output::Sigmoid, Loss::Bce).unwrap();
    let config = TrainConfig { lr: 0.01, optimizer: ADAM, batch_size: Some(16), ..TrainConfig::default() };
    let train = multi_label(53, 6, 3, 1);
    gpu_matches_cpu(Case { spec, init: Init::He, train, test: None, config, epochs: 30, log_every: 7, fused: true });
}

#[test]
fn bce_binary_with_soft_targets_shuffled_and_a_test_set_matches_cpu() {
    // One output, targets anywhere in [0, 1), leaky relu below; 13 rows in
    // batches of 4 (the last of 1), a test set of 7.
    let spec = MlpSpec::new(vec![4, 9, 1]).unwrap().with(Activation::LeakyRelu, Output::Sigmoid, Loss::Bce).unwrap();
    let config = TrainConfig {
        lr: 0.5,
        batch_size: Some(4),
        shuffle: true,
        seed: 2,
        weight_decay: 1e-3,
        ..TrainConfig::default()
    };
    let (train, test) = (Dataset::seed_problem(13, 4, 1, 5).unwrap(), Dataset::seed_problem(7, 4, 1, 6).unwrap());
    gpu_matches_cpu(Case {
        spec,
        init: Init::He,
        train,
        test: Some(test),
        config,
        epochs: 20,
        log_every: 5,
        fused: false,
    });
}

/// y = mean of the inputs: smooth, in (0, 1), and learnable by a small net.
fn learnable(samples: usize) -> (MlpSpec, Dataset) {
    let spec = MlpSpec::new(vec![4, 8, 1]).unwrap();
    let mut data = Dataset::seed_problem(samples, 4, 1, 3).unwrap();
    data.y = data.x.mean_axis(Axis(1)).unwrap().insert_axis(Axis(1));
    (spec, data)
}

#[test]
fn loss_decreases_on_a_learnable_problem_on_every_backend() {
    let (spec, data) = learnable(64);
    let params = Params::init(&spec, Init::Normal, 1).unwrap();
    let config = sgd(2.0, Some(16));
    let run = Run { spec: &spec, params: &params, train: &data, test: None, config: &config };
    for backend in test_backends() {
        let mut trainer = backend.trainer(&run).unwrap();
        let report = fit(trainer.as_mut(), 300, 100, |_, _| {}).unwrap();
        let what = label(&backend);
        assert!(
            report.final_loss < 0.2 * report.initial_loss,
            "{what}: loss went from {} to {}",
            report.initial_loss,
            report.final_loss
        );
        let logged: Vec<f32> = report.history.iter().step_by(100).map(|m| m.train_loss).collect();
        assert!(logged.windows(2).all(|pair| pair[1] < pair[0]), "{what}: losses must fall: {logged:?}");
    }
}

#[test]
fn fits_turns_away_what_the_fused_path_cannot_run() {
    let Some((ctx, _)) = gpu() else { return };
    // fits() looks at the shapes and settings only, so no parameters are made
    // (some of these models could not be).
    let no_params = Params { layers: Vec::new() };
    let fits = |spec: &MlpSpec, train: &Dataset, test: Option<&Dataset>, config: &TrainConfig| {
        FusedTrainer::fits(ctx, &Run { spec, params: &no_params, train, test, config })
    };
    let spec = MlpSpec::new(vec![10, 5, 1]).unwrap();
    let train = Dataset::seed_problem(100, 10, 1, 7).unwrap();
    let config = TrainConfig::default();
    assert!(fits(&spec, &train, None, &config), "the seed problem fits");

    // The data stay out of the pool, so 784 inputs of 1000 rows take only
    // the storage pool's (784 + 256 + 10) floats a row of the batch beside
    // the net: the fused path takes it when asked, but auto leaves it to the
    // layered path (steps of 256 x 203 k multiply-adds).
    let big = MlpSpec::new(vec![784, 256, 10]).unwrap();
    let big_train = Dataset::seed_problem(1000, 784, 10, 7).unwrap();
    let big_config = TrainConfig { batch_size: Some(256), ..config.clone() };
    let big_run = Run { spec: &big, params: &no_params, train: &big_train, test: None, config: &big_config };
    assert_eq!(FusedTrainer::check(ctx, &big_run).unwrap(), FusedPool::Storage);
    assert_eq!(GpuPath::Auto.resolve(ctx, &big_run), GpuPath::Layered);

    // Just past the limit: a net whose pool is one float more than the
    // workgroup allows goes to the storage pool (its one weight and bias,
    // their gradients, a row and an output beside the inputs).
    let limit_floats = ctx.limits.max_compute_workgroup_storage_size as usize / 4;
    let wide = Dataset::seed_problem(1, limit_floats, 1, 7).unwrap();
    let wide_spec = MlpSpec::new(vec![limit_floats, 1]).unwrap();
    let wide_run = Run { spec: &wide_spec, params: &no_params, train: &wide, test: None, config: &config };
    assert_eq!(FusedTrainer::check(ctx, &wide_run).unwrap(), FusedPool::Storage);
    assert_eq!(
        FusedTrainer::check(ctx, &Run { spec: &spec, train: &train, ..wide_run }).unwrap(),
        FusedPool::Workgroup
    );

    let shuffled = TrainConfig { shuffle: true, ..config.clone() };
    assert!(fits(&spec, &train, None, &shuffled), "shuffled batches are taken");
    let labelled = classes(100, 10, 3, 7);
    let classify = MlpSpec::new(vec![10, 5, 3]).unwrap();
    assert!(fits(&classify, &labelled, Some(&labelled), &shuffled), "a test set is taken when classifying");
    let regression_test = FusedTrainer::check(
        ctx,
        &Run { spec: &spec, params: &no_params, train: &train, test: Some(&train), config: &config },
    );
    let why = regression_test.unwrap_err().to_string();
    assert!(why.contains("classification only"), "a regression's test set is refused with the reason: {why}");
    let huge_hidden = MlpSpec::new(vec![10, 1 << 40, 1]).unwrap();
    assert!(!fits(&huge_hidden, &train, None, &config), "a layer wider than the pool");
    let deep = MlpSpec::new(vec![2; 10]).unwrap();
    let deep_train = Dataset::seed_problem(4, 2, 2, 7).unwrap();
    assert!(!fits(&deep, &deep_train, None, &config), "9 layers, above 8");
    let bad = TrainConfig { lr: -1.0, ..config };
    assert!(!fits(&spec, &train, None, &bad), "a bad config never fits");
}

/// The seed problem and real-sized nets; for nets of a few hundred parameters
/// the fixed costs (uniforms, the metrics ring, alignment padding) weigh more.
#[test]
fn gpu_memory_is_what_the_model_optimizer_batch_and_data_need() {
    let Some((ctx, kernels)) = gpu() else { return };
    let sigmoid = Activation::Sigmoid;
    let cases = [
        (vec![10, 5, 1], sigmoid, 100, 0, TrainConfig::default()),
        (
            vec![784, 256, 10],
            sigmoid,
            256,
            0,
            TrainConfig { optimizer: Optimizer::Momentum { momentum: 0.9 }, ..TrainConfig::default() },
        ),
        (
            vec![784, 64, 10],
            sigmoid,
            500,
            100,
            TrainConfig { batch_size: Some(64), optimizer: ADAM, shuffle: true, ..TrainConfig::default() },
        ),
        // GELU layers keep their z: wide ones and a large batch, so that the
        // z buffers are a fifth of the total.
        (vec![64, 512, 512, 10], Activation::Gelu, 512, 0, TrainConfig::default()),
    ];
    for (sizes, hidden, train_rows, test_rows, config) in cases {
        let spec = MlpSpec::new(sizes).unwrap().with(hidden, Output::Sigmoid, Loss::Mse).unwrap();
        let train = classes(train_rows, spec.inputs(), spec.outputs().max(2), 1);
        let train = Dataset { y: train.y.slice(ndarray::s![.., ..spec.outputs()]).to_owned(), ..train };
        let test = (test_rows > 0).then(|| Dataset {
            classes: train.classes,
            ..Dataset::seed_problem(test_rows, spec.inputs(), spec.outputs(), 2).unwrap()
        });
        let params = Params::init(&spec, Init::Xavier, 0).unwrap();
        let run = Run { spec: &spec, params: &params, train: &train, test: test.as_ref(), config: &config };
        let trainer = LayeredTrainer::new(ctx, kernels, &run).unwrap();
        let expected = LayeredTrainer::expected_gpu_bytes(&spec, &config, train_rows, test_rows);
        let ratio = trainer.gpu_bytes() as f64 / expected as f64;
        eprintln!("layers {spec}: {} bytes allocated, {expected} expected, ratio {ratio:.3}", trainer.gpu_bytes());
        assert!(
            (0.9..=1.1).contains(&ratio),
            "layers {spec}: {} bytes allocated, {expected} expected",
            trainer.gpu_bytes()
        );
    }
}

/// A `stop` that says true from its `after`-th question on.
fn stop_after(after: usize) -> impl Fn() -> bool {
    let asked = std::cell::Cell::new(0);
    move || {
        asked.set(asked.get() + 1);
        asked.get() > after
    }
}

#[test]
fn a_stop_mid_epoch_goes_back_to_the_epoch_start_and_resumes_bit_for_bit() {
    // 150 rows in batches of 2: 75 steps an epoch, more than one GPU submit
    // (64 steps), so the layered path's stop lands mid-epoch; the CPU is asked
    // every step. Shuffled, with Adam: every piece of state must go back.
    let spec = MlpSpec::new(vec![3, 6, 2]).unwrap();
    let train = Dataset::seed_problem(150, 3, 2, 4).unwrap();
    let config =
        TrainConfig { lr: 0.01, optimizer: ADAM, batch_size: Some(2), shuffle: true, ..TrainConfig::default() };
    let params = Params::init(&spec, Init::Xavier, 2).unwrap();
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    for backend in test_backends() {
        let fused = matches!(&backend, Backend::Gpu(gpu) if gpu.path == GpuPath::Fused);
        let what = label(&backend);
        // The CPU asks before each of the 75 steps, the layered path after
        // each submit, the fused path before each dispatch: stop in the
        // second epoch on the first two, at the second dispatch on the last.
        let asks = match &backend {
            Backend::Cpu => 75 + 30,
            _ if fused => 1,
            _ => 2,
        };
        let mut stopped = backend.trainer(&run).unwrap();
        if let Some(gpu) = backend.gpu_context().filter(|_| fused) {
            let mut trainer = FusedTrainer::new(gpu, &run).unwrap();
            trainer.set_epochs_per_dispatch(1);
            stopped = Box::new(trainer);
        }
        let done = stopped.train_until(4, &stop_after(asks)).unwrap();
        assert_eq!(done.len(), 1, "{what}: the first epoch is whole, the second was stopped");

        let mut one = backend.trainer(&run).unwrap();
        let one_epoch = one.train(1).unwrap();
        assert_eq!(done, one_epoch, "{what}: the same metrics for the epoch done");
        assert_eq!(stopped.state().unwrap(), one.state().unwrap(), "{what}: back at the end of epoch 1, bit for bit");

        let mut straight = backend.trainer(&run).unwrap();
        straight.train(3).unwrap();
        stopped.train(2).unwrap();
        assert_eq!(stopped.state().unwrap(), straight.state().unwrap(), "{what}: 1 + stop + 2 epochs = 3 straight");
    }
}

#[test]
fn a_stop_at_an_epoch_end_returns_only_the_epochs_done() {
    // 128 rows in batches of 2: 64 steps an epoch, so the layered path's
    // first submit (64 steps) ends exactly at the end of epoch 1.
    let spec = MlpSpec::new(vec![3, 4, 1]).unwrap();
    let train = Dataset::seed_problem(128, 3, 1, 5).unwrap();
    let config = TrainConfig { lr: 0.05, batch_size: Some(2), ..TrainConfig::default() };
    let params = Params::init(&spec, Init::Xavier, 3).unwrap();
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    for backend in test_backends() {
        let what = label(&backend);
        let mut trainer = backend.trainer(&run).unwrap();
        if let Some(gpu) =
            backend.gpu_context().filter(|_| matches!(&backend, Backend::Gpu(g) if g.path == GpuPath::Fused))
        {
            let mut fused = FusedTrainer::new(gpu, &run).unwrap();
            fused.set_epochs_per_dispatch(1);
            trainer = Box::new(fused);
        }
        // The CPU asks before epoch 1, before each of its 64 steps, then
        // before epoch 2; the GPU paths after the first submit or dispatch.
        let asks = if matches!(backend, Backend::Cpu) { 65 } else { 1 };
        let done = trainer.train_until(5, &stop_after(asks)).unwrap();
        assert_eq!(done.len(), 1, "{what}: one epoch done, none after it reported");
        let mut one = backend.trainer(&run).unwrap();
        assert_eq!(done, one.train(1).unwrap(), "{what}");
        assert_eq!(trainer.state().unwrap(), one.state().unwrap(), "{what}: the state after epoch 1");
    }
}
