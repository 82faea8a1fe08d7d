//! The fused small-net path (one workgroup, many steps per dispatch) against
//! the CPU reference from the same Params and data, compared at every
//! read-back, and the runs it must turn away.

mod common;

use common::{classes, gpu, trajectories_match};
use wgpu_mlp::gpu::FusedTrainer;
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::train::Optimizer;
use wgpu_mlp::{CpuTrainer, Dataset, MlpSpec, Params, TrainConfig, Trainer};

struct Case {
    spec: MlpSpec,
    init: Init,
    train: Dataset,
    config: TrainConfig,
    epochs: usize,
    /// None: the trainer's own choice.
    epochs_per_dispatch: Option<usize>,
}

/// Trains the case fused and on the CPU and compares them at every read-back.
fn fused_matches_cpu(case: Case) {
    let Some((ctx, _)) = gpu() else { return };
    let Case { spec, init, train, config, epochs, epochs_per_dispatch } = case;
    assert!(FusedTrainer::fits(ctx, &spec, &train, None, &config), "layers {spec} must fit the fused path");
    let params = Params::init(&spec, init, 7).unwrap();
    let mut fused = FusedTrainer::new(ctx, &spec, &params, &train, None, &config).unwrap();
    if let Some(n) = epochs_per_dispatch {
        fused.set_epochs_per_dispatch(n);
    }
    let mut on_cpu = CpuTrainer::new(&spec, params.clone(), train, None, &config).unwrap();
    let what = format!("fused, layers {spec} {:?}, batch {:?}", config.optimizer, config.batch_size);
    assert_eq!(fused.params().unwrap(), params, "{what}: the uploaded params read back unchanged");
    trajectories_match(&what, &mut fused, &mut on_cpu, &params, config.optimizer, epochs, config.log_every);
}

#[test]
fn seed_problem_fused_matches_cpu_at_every_read_back() {
    let spec = MlpSpec::new(vec![10, 5, 1]).unwrap();
    let train = Dataset::seed_problem(100, 10, 1, 7).unwrap();
    let config = TrainConfig { lr: 0.01, log_every: 100, ..TrainConfig::default() };
    fused_matches_cpu(Case { spec, init: Init::Normal, train, config, epochs: 1000, epochs_per_dispatch: None });
}

#[test]
fn deep_odd_tanh_net_with_momentum_and_uneven_batches_fused_matches_cpu() {
    // 37 rows in batches of 8: four full batches and a last one of 5; three
    // epochs per dispatch, so a call of 10 epochs takes four dispatches.
    let spec = MlpSpec::new(vec![13, 7, 9, 3]).unwrap().with(Activation::Tanh, Output::Identity, Loss::Mse).unwrap();
    let train = Dataset::seed_problem(37, 13, 3, 7).unwrap();
    let config = TrainConfig {
        lr: 0.05,
        optimizer: Optimizer::Momentum { momentum: 0.9 },
        weight_decay: 1e-3,
        batch_size: Some(8),
        log_every: 10,
        ..TrainConfig::default()
    };
    fused_matches_cpu(Case { spec, init: Init::Xavier, train, config, epochs: 40, epochs_per_dispatch: Some(3) });
}

#[test]
fn adam_relu_softmax_classification_fused_matches_cpu() {
    // 53 rows in batches of 16 (the last of 5), with accuracy counted.
    let spec =
        MlpSpec::new(vec![6, 11, 4]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let config = TrainConfig {
        lr: 0.01,
        optimizer: Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        weight_decay: 1e-4,
        batch_size: Some(16),
        log_every: 7,
        ..TrainConfig::default()
    };
    let train = classes(53, 6, 4, 1);
    fused_matches_cpu(Case { spec, init: Init::He, train, config, epochs: 30, epochs_per_dispatch: None });
}

#[test]
fn sigmoid_outputs_counting_classes_without_hidden_layers_fused_matches_cpu() {
    // One layer only, sigmoid outputs under MSE, and accuracy from their argmax.
    let spec = MlpSpec::new(vec![4, 3]).unwrap();
    let config = TrainConfig { lr: 0.5, log_every: 5, ..TrainConfig::default() };
    fused_matches_cpu(Case {
        spec,
        init: Init::Xavier,
        train: classes(40, 4, 3, 5),
        config,
        epochs: 20,
        epochs_per_dispatch: None,
    });
}

#[test]
fn fits_turns_away_what_the_fused_path_cannot_run() {
    let Some((ctx, _)) = gpu() else { return };
    let spec = MlpSpec::new(vec![10, 5, 1]).unwrap();
    let train = Dataset::seed_problem(100, 10, 1, 7).unwrap();
    let config = TrainConfig::default();
    assert!(FusedTrainer::fits(ctx, &spec, &train, None, &config), "the seed problem fits");

    // Too big: 784 inputs of 1000 rows alone are 3 MB, far above any workgroup memory.
    let big = MlpSpec::new(vec![784, 256, 10]).unwrap();
    let big_train = Dataset::seed_problem(1000, 784, 10, 7).unwrap();
    assert!(!FusedTrainer::fits(ctx, &big, &big_train, None, &config));
    let params = Params::init(&big, Init::Xavier, 7).unwrap();
    let error =
        FusedTrainer::new(ctx, &big, &params, &big_train, None, &config).err().expect("too big for one workgroup");
    assert!(error.to_string().contains("max_compute_workgroup_storage_size"), "{error}");

    // Just past the limit: the data alone one float more than the adapter allows.
    let limit_floats = ctx.limits.max_compute_workgroup_storage_size as usize / 4;
    let wide = Dataset::seed_problem(1, limit_floats, 1, 7).unwrap();
    let wide_spec = MlpSpec::new(vec![limit_floats, 1]).unwrap();
    assert!(!FusedTrainer::fits(ctx, &wide_spec, &wide, None, &config));

    let shuffled = TrainConfig { shuffle: true, ..config.clone() };
    assert!(!FusedTrainer::fits(ctx, &spec, &train, None, &shuffled), "shuffling is not supported");
    assert!(!FusedTrainer::fits(ctx, &spec, &train, Some(&train), &config), "a test set is not supported");
    let huge_hidden = MlpSpec::new(vec![10, 1 << 40, 1]).unwrap();
    assert!(!FusedTrainer::fits(ctx, &huge_hidden, &train, None, &config), "a layer wider than the pool");
    let deep = MlpSpec::new(vec![2; 10]).unwrap();
    let deep_train = Dataset::seed_problem(4, 2, 2, 7).unwrap();
    assert!(!FusedTrainer::fits(ctx, &deep, &deep_train, None, &config), "9 layers, above 8");
    let bad = TrainConfig { lr: -1.0, ..config };
    assert!(!FusedTrainer::fits(ctx, &spec, &train, None, &bad), "a bad config never fits");
}
