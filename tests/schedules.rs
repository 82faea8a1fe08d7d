//! Learning-rate schedules (issue 12, item 3): the rates are the formulas',
//! every device trains with them step for step (the layered GPU path reads
//! each step's rate from a device buffer, with no read-back or re-recording),
//! the fused path turns them away, and a resumed plateau run cuts the rate
//! where an unbroken one does.

mod binary;
mod common;

use common::{classes, gpu_backends, label, trajectories_match};
use wgpu_mlp::gpu::{FusedTrainer, GpuPath};
use wgpu_mlp::model::{Init, MlpSpec, Params};
use wgpu_mlp::schedule::{LrSchedule, LrShape};
use wgpu_mlp::train::Optimizer;
use wgpu_mlp::{Backend, CpuTrainer, Run, TrainConfig};

use binary::{assert_bad_input, assert_success, wgpu_mlp_in, Run as Ran};

fn schedule(shape: LrShape, warmup_epochs: usize) -> LrSchedule {
    LrSchedule { shape, warmup_epochs }
}

#[test]
fn the_rates_are_the_formulas() {
    let per_epoch = 4;
    let at = |s: LrSchedule, step: u64| s.rate(0.1, step, per_epoch, 1.0);
    // Step: 0.1 for epochs 0-2, 0.05 for 3-5, 0.025 from 6 (steps 0-11, 12-23, 24-).
    let step = schedule(LrShape::Step { every: 3, gamma: 0.5 }, 0);
    assert_eq!([at(step, 11), at(step, 12), at(step, 24)], [0.1, 0.05, 0.025]);
    // Exponential: 0.1 * 0.9^2 in epoch 2, the same for every step of it.
    let exponential = schedule(LrShape::Exponential { gamma: 0.9 }, 0);
    assert_eq!(at(exponential, 8), at(exponential, 11));
    assert!((at(exponential, 8) - 0.081).abs() < 1e-8);
    // Cosine over 5 epochs (20 steps) to 0.01: 0.1 at the start, the middle 0.055 at step 10, 0.01 from step 20.
    let cosine = schedule(LrShape::Cosine { epochs: 5, min: 0.01 }, 0);
    assert_eq!(at(cosine, 0), 0.1);
    assert!((at(cosine, 10) - 0.055).abs() < 1e-8, "{}", at(cosine, 10));
    assert_eq!([at(cosine, 20), at(cosine, 99)], [0.01, 0.01]);
    // Warm-up over 2 epochs (8 steps): step k at (k + 1) / 8 of the rate, then the rate.
    let warm = schedule(LrShape::Constant, 2);
    assert_eq!([at(warm, 0), at(warm, 3), at(warm, 7), at(warm, 8)], [0.0125, 0.05, 0.1, 0.1]);
    assert!(!warm.is_constant() && LrSchedule::default().is_constant());
    // Plateau: the scale, never below the minimum.
    let plateau = schedule(LrShape::Plateau { patience: 2, factor: 0.5, min: 0.02 }, 0);
    assert_eq!([plateau.rate(0.1, 5, per_epoch, 0.5), plateau.rate(0.1, 5, per_epoch, 0.125)], [0.05, 0.02]);
}

#[test]
fn every_path_trains_with_the_same_rates_step_for_step() {
    // 37 rows in batches of 8 (a short last one), 3 classes, odd layer sizes.
    let spec = MlpSpec::new(vec![5, 13, 3]).unwrap().with(
        wgpu_mlp::model::Activation::Tanh,
        wgpu_mlp::model::Output::Softmax,
        wgpu_mlp::model::Loss::CrossEntropy,
    );
    let spec = spec.unwrap();
    let train = classes(37, 5, 3, 2);
    let params = Params::init(&spec, Init::Xavier, 5).unwrap();
    let shapes = [
        (LrShape::Cosine { epochs: 6, min: 0.001 }, 2, Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }),
        (LrShape::Step { every: 2, gamma: 0.5 }, 0, Optimizer::Momentum { momentum: 0.9 }),
        (LrShape::Exponential { gamma: 0.7 }, 1, Optimizer::Sgd),
    ];
    for (shape, warmup_epochs, optimizer) in shapes {
        let config = TrainConfig {
            lr: 0.05,
            optimizer,
            batch_size: Some(8),
            shuffle: true,
            seed: 4,
            lr_schedule: schedule(shape, warmup_epochs),
            ..TrainConfig::default()
        };
        let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
        for backend in gpu_backends() {
            let Backend::Gpu(gpu) = &backend else { unreachable!("gpu_backends are GPUs") };
            if gpu.path == GpuPath::Fused {
                // In order, so the schedule is what turns it away.
                let in_order = TrainConfig { shuffle: false, ..config.clone() };
                let run = Run { config: &in_order, ..run };
                let refused = FusedTrainer::check(&gpu.ctx, &run).unwrap_err().to_string();
                assert!(refused.contains("lr_schedule"), "{refused}");
                continue;
            }
            let mut on_gpu = backend.trainer(&run).unwrap();
            let mut on_cpu = CpuTrainer::new(&run).unwrap();
            let what = format!("{}, {shape:?} warm-up {warmup_epochs}", label(&backend));
            trajectories_match(&what, on_gpu.as_mut(), &mut on_cpu, &params, optimizer, 6, 2);
        }
    }
}

fn wgpu_mlp(args: &[&str]) -> Ran {
    wgpu_mlp_in(&std::env::temp_dir(), args)
}

/// 160 rows of two classes with every fifth label flipped (see
/// [`binary::noisy_csv`]): the validation loss stops improving within a few
/// epochs, so a plateau schedule cuts the rate.
fn noisy_csv(dir: &std::path::Path) -> String {
    binary::noisy_csv(dir, 160, 2)
}

#[test]
fn a_plateau_run_resumed_cuts_the_rate_where_an_unbroken_one_does() {
    let dir = binary::scratch("schedules", "plateau");
    let data = noisy_csv(&dir);
    let flags = [
        "--data",
        &data,
        "--task",
        "classify",
        "--hidden",
        "128,128",
        "--lr",
        "0.01",
        "--batch-size",
        "16",
        "--lr-schedule",
        "plateau",
        "--lr-patience",
        "2",
        "--lr-factor",
        "0.5",
        "--device",
        "cpu",
        "--json",
        "--quiet",
    ];
    let train = |out: &str, extra: &[&str]| {
        let run = wgpu_mlp(&[&flags[..], extra, &["--out", dir.join(out).to_str().unwrap()]].concat());
        assert_success(&run);
        run.json()
    };
    let straight = train("straight", &["--epochs", "16"]);
    let lr = |out: &str| -> Vec<String> {
        let csv = std::fs::read_to_string(dir.join(out).join("metrics.csv")).unwrap();
        assert!(
            csv.starts_with(
                "epoch,train_loss,val_loss,train_accuracy,val_accuracy,val_mae,val_rmse,val_r2,lr,epsilon,seconds\n"
            ),
            "{csv}"
        );
        let at = csv.lines().next().unwrap().split(',').position(|c| c == "lr").unwrap();
        csv.lines().skip(1).map(|l| l.split(',').nth(at).unwrap().to_string()).collect()
    };
    let rates = lr("straight");
    assert_eq!(rates[0], "0.01");
    assert!(rates.iter().any(|r| r == "0.005"), "the rate is cut at least once in 16 epochs: {rates:?}");
    train("halves", &["--epochs", "7"]);
    let checkpoint = dir.join("halves/checkpoint-epoch7.safetensors");
    let resumed = train("halves", &["--epochs", "16", "--resume", checkpoint.to_str().unwrap()]);
    assert_eq!(lr("halves"), rates, "the same rate every epoch");
    let params = |path: &str| binary::layer_tensors(std::path::Path::new(path));
    let (a, b) = (straight["checkpoint"].as_str().unwrap(), resumed["checkpoint"].as_str().unwrap());
    assert_eq!(params(a), params(b), "16 epochs straight and 7 + resume + 9, bit for bit");
}

#[test]
fn schedule_flags_are_checked() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--lr-schedule", "cosine", "--lr-gamma", "0.5"],
            "--lr-gamma applies to --lr-schedule step or exponential, not cosine",
        ),
        (&["--lr-patience", "3"], "--lr-patience applies to --lr-schedule plateau, not constant"),
        (&["--lr-schedule", "cosine", "--lr-min", "0.5"], "--lr-min must be >= 0 and below --lr 0.01, got 0.5"),
        (&["--lr-schedule", "plateau", "--lr-factor", "1.5"], "--lr-factor must be in (0, 1), got 1.5"),
        (&["--lr-schedule", "step", "--lr-gamma", "0"], "--lr-gamma must be in (0, 1], got 0"),
        (&["--lr-schedule", "cosine", "--device", "gpu", "--path", "fused"], "the fused path does not apply"),
    ];
    for (flags, says) in cases {
        if flags.contains(&"gpu") && common::gpu().is_none() {
            continue;
        }
        let device: &[&str] = if flags.contains(&"--device") { &[] } else { &["--device", "cpu"] };
        let run = wgpu_mlp(&[&["--epochs", "2"][..], device, flags].concat());
        assert_bad_input(&run, says);
    }
}
