//! Training on the real data sets when their files are present (scripts/get-data
//! puts them in place; CI runs it and sets REQUIRE_DATA=1 so these cannot skip
//! there): scikit-learn's digits on both devices, and Fashion-MNIST's loader.

mod common;

use std::path::{Path, PathBuf};

use common::gpu_backends;
use wgpu_mlp::data::{load_csv, load_idx, split, CsvOptions, Scale, FASHION_MNIST_DIR};
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::train::Optimizer;
use wgpu_mlp::{fit, CpuTrainer, MlpSpec, Params, Run, TrainConfig, Trainer};

/// The path when it exists; else None after saying so, or a failure when
/// REQUIRE_DATA=1.
fn present(path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    if std::env::var("REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("REQUIRE_DATA=1 but {} is missing; run scripts/get-data", path.display());
    }
    eprintln!("skipped: {} is missing (scripts/get-data installs it)", path.display());
    None
}

fn digits_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sklearn/digits.csv.gz")
}

/// Fewer epochs than the README's run (it reaches 0.97+), enough to prove learning.
const DIGITS_EPOCHS: usize = 12;
const DIGITS_MIN_ACCURACY: f32 = 0.93;
/// Both devices draw the same shuffles from the same start; only rounding differs.
const DEVICE_ACCURACY_GAP: f32 = 0.02;

#[test]
fn digits_trains_to_high_accuracy_on_both_devices() {
    let Some(path) = present(digits_path()) else { return };
    let data = load_csv(&path, &CsvOptions { classify: true, ..Default::default() }).unwrap();
    assert_eq!((data.len(), data.x.ncols(), data.classes), (1797, 64, Some(10)));
    let (mut train, test) = split(data, 0.25, 0).unwrap();
    let mut test = test.unwrap();
    assert_eq!((train.len(), test.len()), (1346, 451), "25% of each class, rounded");
    Scale::Standard.apply(&mut train.x, Some(&mut test.x));

    let spec =
        MlpSpec::new(vec![64, 64, 10]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let params = Params::init(&spec, Init::He, 0).unwrap();
    let config = TrainConfig {
        lr: 0.001,
        optimizer: Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        batch_size: Some(32),
        shuffle: true,
        ..TrainConfig::default()
    };
    let accuracy = |trainer: &mut dyn Trainer| {
        let report = fit(trainer, DIGITS_EPOCHS, DIGITS_EPOCHS, |_, _| {}).unwrap();
        let accuracy = report.last().unwrap().val_accuracy.unwrap();
        eprintln!("digits on {}: test accuracy {accuracy:.4} after {DIGITS_EPOCHS} epochs", trainer.device());
        assert!(accuracy >= DIGITS_MIN_ACCURACY, "{}: test accuracy {accuracy}", trainer.device());
        accuracy
    };
    let run = Run { spec: &spec, params: &params, train: &train, test: Some(&test), config: &config };
    let on_cpu = accuracy(&mut CpuTrainer::new(&run).unwrap());
    // Shuffled batches and a test set: the layered path.
    if let Some(gpu) = gpu_backends().into_iter().next() {
        let on_gpu = accuracy(gpu.trainer(&run).unwrap().as_mut());
        assert!((on_gpu - on_cpu).abs() <= DEVICE_ACCURACY_GAP, "gpu {on_gpu} vs cpu {on_cpu}");
    }
}

#[test]
fn fashion_mnist_loads_with_its_ten_balanced_classes() {
    let Some(dir) = present(PathBuf::from(FASHION_MNIST_DIR)) else { return };
    let (train, test) = load_idx(&dir, None).unwrap();
    assert_eq!((train.x.dim(), test.x.dim()), ((60000, 784), (10000, 784)));
    assert_eq!((train.classes, test.classes), (Some(10), Some(10)));
    let mut counts = [0usize; 10];
    train.labels().into_iter().for_each(|l| counts[l] += 1);
    assert_eq!(counts, [6000; 10]);
    let (low, high) = train.x.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert_eq!((low, high), (0.0, 255.0), "raw pixels before scaling");
}
