//! The fused small-net path (one workgroup, many steps per dispatch) against
//! the CPU reference from the same Params and data, compared at every
//! read-back, and the runs it must turn away.

mod common;

use common::{assert_close, gpu};
use wgpu_mlp::gpu::FusedTrainer;
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::train::{EpochMetrics, Optimizer};
use wgpu_mlp::{CpuTrainer, Dataset, MlpSpec, Params, TrainConfig, Trainer};

/// After hundreds of steps the GPU and CPU parameters differ only by the
/// rounding of exp and of differently ordered sums, carried along.
const PARAM_ATOL: f32 = 1e-5;
const PARAM_RTOL: f32 = 1e-4;
/// Adam divides by sqrt(v) + eps, which magnifies those last bits.
const ADAM_PARAM_ATOL: f32 = 1e-4;
const ADAM_PARAM_RTOL: f32 = 1e-3;
/// Loss sums are added in another order than the CPU's (per invocation, then
/// across the workgroup).
const LOSS_RTOL: f32 = 1e-4;
/// A row whose two largest outputs are within rounding of each other may be
/// counted differently; allow one such row per read-back.
const ACCURACY_ATOL: f32 = 0.02;

fn flat(params: &Params) -> Vec<f32> {
    params.layers.iter().flat_map(|l| l.w.iter().chain(l.b.iter()).copied()).collect()
}

struct Case {
    spec: MlpSpec,
    init: Init,
    train: Dataset,
    config: TrainConfig,
    epochs: usize,
    /// None: the trainer's own choice.
    epochs_per_dispatch: Option<usize>,
}

/// Trains the case fused and on the CPU in chunks of `log_every` epochs and
/// checks every epoch's metrics and all parameters after every chunk.
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
    assert_eq!(fused.steps_per_epoch(), on_cpu.steps_per_epoch());
    let (atol, rtol) = match config.optimizer {
        Optimizer::Adam { .. } => (ADAM_PARAM_ATOL, ADAM_PARAM_RTOL),
        _ => (PARAM_ATOL, PARAM_RTOL),
    };
    let what = format!("fused, layers {spec} {:?}, batch {:?}", config.optimizer, config.batch_size);
    assert_eq!(fused.params().unwrap(), params, "{what}: the uploaded params read back unchanged");
    let initial = (fused.evaluate().unwrap(), on_cpu.evaluate().unwrap());
    assert_close(&format!("{what}: initial loss"), &[initial.0], &[initial.1], 0.0, LOSS_RTOL);

    let mut epoch = 0;
    while epoch < epochs {
        let chunk = config.log_every.min(epochs - epoch);
        let (gpu_metrics, cpu_metrics) = (fused.train(chunk).unwrap(), on_cpu.train(chunk).unwrap());
        assert_eq!(gpu_metrics.len(), chunk);
        epoch += chunk;
        let at = format!("{what}, epochs up to {epoch}");
        let column = |metrics: &[EpochMetrics], pick: fn(&EpochMetrics) -> Option<f32>| {
            metrics.iter().map(|m| pick(m).unwrap_or(-1.0)).collect::<Vec<f32>>()
        };
        assert_close(
            &format!("{at}: train loss"),
            &column(&gpu_metrics, |m| Some(m.train_loss)),
            &column(&cpu_metrics, |m| Some(m.train_loss)),
            0.0,
            LOSS_RTOL,
        );
        assert_close(
            &format!("{at}: train accuracy"),
            &column(&gpu_metrics, |m| m.train_accuracy),
            &column(&cpu_metrics, |m| m.train_accuracy),
            ACCURACY_ATOL,
            0.0,
        );
        assert!(gpu_metrics.iter().all(|m| m.test_loss.is_none() && m.test_accuracy.is_none()));
        let (params_gpu, params_cpu) = (fused.params().unwrap(), on_cpu.params().unwrap());
        assert_close(&format!("{at}: params"), &flat(&params_gpu), &flat(&params_cpu), atol, rtol);
        assert_ne!(flat(&params_gpu), flat(&params), "training must move the parameters");
    }
    let last = (fused.evaluate().unwrap(), on_cpu.evaluate().unwrap());
    assert_close(&format!("{what}: final loss"), &[last.0], &[last.1], 0.0, LOSS_RTOL);
}

/// Classes from the inputs: the argmax of a fixed mix of the first columns.
fn classes(samples: usize, inputs: usize, classes: usize, seed: u64) -> Dataset {
    let x = Dataset::seed_problem(samples, inputs, 1, seed).unwrap().x;
    let labels: Vec<usize> = x
        .rows()
        .into_iter()
        .map(|r| ((r[0] + 2.0 * r[1 % inputs]) * classes as f32 / 3.0) as usize % classes)
        .collect();
    Dataset::classification(x, &labels, classes).unwrap()
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
