//! The practitioner's loop (issue 12): a validation split evaluated every
//! epoch, the best epoch kept (checkpoint-best.safetensors) whatever ends the
//! run, early stopping, the test set scored once on the kept model, and
//! resumes that pick the same best epoch.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod binary;
mod common;

use binary::{assert_bad_input, assert_success, wgpu_mlp_in, Run};

fn scratch(name: &str) -> PathBuf {
    binary::scratch("practitioner", name)
}

fn wgpu_mlp(args: &[&str]) -> Run {
    wgpu_mlp_in(&std::env::temp_dir(), args)
}

/// 200 rows of two classes that a wide net overfits (see [`binary::noisy_csv`]).
fn noisy_csv(dir: &Path) -> String {
    binary::noisy_csv(dir, 200, 3)
}

/// Trains on `data` on the CPU into `dir/out` with `extra` flags; the JSON summary.
fn train(dir: &Path, out: &str, data: &str, extra: &[&str]) -> Value {
    let out = dir.join(out);
    let base = ["--data", data, "--task", "classify", "--device", "cpu", "--json", "--quiet"];
    let run = wgpu_mlp(&[&base[..], extra, &["--out", out.to_str().unwrap()]].concat());
    assert_success(&run);
    run.json()
}

const OVERFIT: [&str; 6] = ["--hidden", "256,256", "--lr", "0.01", "--batch-size", "16"];

fn metadata(path: &str) -> std::collections::HashMap<String, String> {
    binary::checkpoint_metadata(Path::new(path))
}

fn number(json: &Value, key: &str) -> f64 {
    json[key].as_f64().unwrap_or_else(|| panic!("no number {key} in {json}"))
}

#[test]
fn a_validation_split_is_held_out_and_the_test_set_scores_the_kept_model_once() {
    let dir = scratch("validation");
    let data = noisy_csv(&dir);
    let json = train(&dir, "run", &data, &["--epochs", "4"]);
    // 200 rows: 50 test rows (stratified 25%), then 10% of the 150 left.
    assert_eq!(
        (json["test_samples"].as_u64(), json["val_samples"].as_u64(), json["samples"].as_u64()),
        (Some(50), Some(15), Some(135)),
        "{json}"
    );
    let history = json["history"].as_array().unwrap();
    assert!(history.iter().all(|h| h["val_loss"].is_number() && h["val_accuracy"].is_number()), "{json}");
    assert_eq!(json["monitor"], "val-loss");
    // The kept model is the best epoch's; eval of its checkpoint scores the
    // run's own test rows exactly as training's summary did.
    let best = json["best_checkpoint"].as_str().unwrap();
    assert_eq!(metadata(best)["epoch"], json["best_epoch"].to_string());
    assert_eq!(json["kept_epoch"], json["best_epoch"]);
    let eval = wgpu_mlp(&["eval", "--checkpoint", best, "--device", "cpu", "--json"]);
    assert_success(&eval);
    let eval = eval.json();
    assert_eq!(eval["rows"], 50);
    let (got, want) = (number(&eval, "loss"), number(&json, "test_loss"));
    assert!((got - want).abs() <= 1e-6 * want, "eval {got}, training's test loss {want}");
    assert_eq!(eval["accuracy"], json["test_accuracy"]);
    // The kept model's test figures: a classification report, and the confusion matrix as a file.
    let report = &json["classification_report"];
    assert!((number(report, "accuracy") - number(&json, "test_accuracy")).abs() < 1e-6, "{report}");
    assert_eq!(eval["classification_report"]["confusion"], report["confusion"], "eval of the kept model agrees");
    let confusion = std::fs::read_to_string(dir.join("run/confusion.csv")).unwrap();
    let counted: usize =
        confusion.lines().skip(1).flat_map(|l| l.split(',').skip(1)).map(|n| n.parse::<usize>().unwrap()).sum();
    assert_eq!(counted, 50, "every test row once:\n{confusion}");
    assert!(std::fs::read_to_string(dir.join("run/confusion.svg")).unwrap().contains("<svg"));
    let out = dir.join("regression");
    let args = [
        "--data",
        &data,
        "--target",
        "a",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--json",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    let regression = wgpu_mlp(&args);
    assert_success(&regression);
    let regression = regression.json();
    assert!(
        regression["regression"]["r2"].is_number() && regression["classification_report"].is_null(),
        "{regression}"
    );
    let csv = std::fs::read_to_string(dir.join("run/metrics.csv")).unwrap();
    assert!(
        csv.starts_with(
            "epoch,train_loss,val_loss,train_accuracy,val_accuracy,val_mae,val_rmse,val_r2,lr,epsilon,seconds\n"
        ),
        "{csv}"
    );
}

#[test]
fn early_stopping_stops_an_overfitting_run_and_keeps_the_best_epoch() {
    let dir = scratch("early");
    let data = noisy_csv(&dir);
    let json = train(&dir, "run", &data, &[&OVERFIT[..], &["--epochs", "200", "--early-stopping", "5"]].concat());
    let (best, stopped) = (json["best_epoch"].as_u64().unwrap(), json["stopped_epoch"].as_u64().unwrap());
    assert_eq!(json["stop_reason"], "early-stopping", "{json}");
    assert_eq!(stopped, best + 5, "5 epochs without improvement: {json}");
    assert!(stopped < 200);
    // The best epoch has the lowest validation loss of every epoch trained.
    let history = json["history"].as_array().unwrap();
    assert_eq!(history.len() as u64, stopped);
    let val: Vec<f64> = history.iter().map(|h| h["val_loss"].as_f64().unwrap()).collect();
    let lowest = val.iter().cloned().fold(f64::INFINITY, f64::min);
    assert_eq!(val[best as usize - 1], lowest, "{val:?}");
    assert_eq!(number(&json, "best_value"), lowest);
    // The last checkpoint is the stopped epoch's (to resume), the best one the kept model.
    assert!(json["checkpoint"].as_str().unwrap().ends_with(&format!("checkpoint-epoch{stopped}.safetensors")));
    assert_eq!(metadata(json["best_checkpoint"].as_str().unwrap())["epoch"], best.to_string());

    // --keep last trains every epoch and keeps the last one.
    let last = train(&dir, "last", &data, &[&OVERFIT[..], &["--epochs", "12", "--keep", "last"]].concat());
    assert_eq!(
        (last["kept"].as_str(), last["kept_epoch"].as_u64(), last["best_epoch"].as_u64()),
        (Some("last"), Some(12), None)
    );
    assert!(last["best_checkpoint"].is_null() && !dir.join("last/checkpoint-best.safetensors").exists());
}

#[test]
fn a_resumed_run_picks_the_same_best_epoch_and_stops_at_the_same_epoch() {
    let dir = scratch("resume");
    let data = noisy_csv(&dir);
    let flags = [&OVERFIT[..], &["--early-stopping", "4"]].concat();
    let straight = train(&dir, "straight", &data, &[&flags[..], &["--epochs", "60"]].concat());
    let stopped = straight["stopped_epoch"].as_u64().unwrap();
    assert_eq!(straight["stop_reason"], "early-stopping", "{straight}");
    // Stop halfway, in another folder, and resume into a third.
    let half = (stopped / 2).max(1).to_string();
    let first = train(&dir, "first", &data, &[&flags[..], &["--epochs", &half, "--keep", "best"]].concat());
    let args = [&flags[..], &["--epochs", "60", "--resume", first["checkpoint"].as_str().unwrap()]].concat();
    let resumed = train(&dir, "second", &data, &args);
    for key in ["best_epoch", "stopped_epoch", "kept_epoch", "test_loss", "test_accuracy", "best_value"] {
        assert_eq!(resumed[key], straight[key], "{key}: straight {straight}\nresumed {resumed}");
    }
    let params = |path: &str| binary::layer_tensors(Path::new(path));
    for key in ["best_checkpoint", "checkpoint"] {
        let (a, b) = (straight[key].as_str().unwrap(), resumed[key].as_str().unwrap());
        assert_eq!(params(a), params(b), "{key}: {a} and {b} differ");
    }
}

#[test]
fn a_separate_validation_file_is_read_with_the_training_settings() {
    let dir = scratch("val-data");
    let data = noisy_csv(&dir);
    let val = dir.join("val.csv");
    // Columns in another order: found by name.
    std::fs::write(&val, "label,c,b,a\n0,0.5,0.5,0.1\n1,0.5,0.5,0.9\n1,0.2,0.3,0.8\n").unwrap();
    let val_flag = format!("csv:{}", val.display());
    let json = train(&dir, "run", &data, &["--epochs", "2", "--val-data", &val_flag]);
    assert_eq!((json["val_samples"].as_u64(), json["samples"].as_u64()), (Some(3), Some(150)), "{json}");
    let broken = dir.join("broken.csv");
    std::fs::write(&broken, "label,a\n0,0.5\n").unwrap();
    let run = wgpu_mlp(&[
        "--data",
        &data,
        "--task",
        "classify",
        "--device",
        "cpu",
        "--val-data",
        &format!("csv:{}", broken.display()),
    ]);
    assert_bad_input(&run, "--val-data");
    assert!(run.stderr.contains("no column 'b'"), "{}", run.show());
}

#[test]
fn a_non_finite_loss_leaves_the_best_model_named() {
    let dir = scratch("nan");
    let out = dir.join("run");
    // An identity output trained by plain gradient descent at lr 1e10 overflows within a few epochs.
    let args = ["--output", "identity", "--lr", "1e10", "--epochs", "50", "--log-every", "1", "--keep", "best"];
    let run = wgpu_mlp(&[&args[..], &["--device", "cpu", "--out", out.to_str().unwrap()]].concat());
    assert_ne!(run.code, Some(0), "{}", run.show());
    assert!(!run.stderr.contains("panicked"), "{}", run.show());
    assert!(run.stderr.contains("the best model so far (epoch 1) is in"), "{}", run.show());
    assert!(out.join("checkpoint-best.safetensors").exists());
}

#[test]
fn bad_monitoring_flags_are_refused_naming_the_flag() {
    let dir = scratch("flags");
    let data = noisy_csv(&dir);
    let base = ["--data", &data, "--task", "classify", "--device", "cpu", "--epochs", "1"];
    let cases: [(&[&str], &str); 7] = [
        (&["--val-fraction", "0", "--monitor", "val-loss"], "--monitor val-loss needs a validation set"),
        (&["--val-fraction", "1.5"], "--val-fraction must be in [0, 1), got 1.5"),
        (&["--val-fraction", "0.999"], "leaves 0 for training"),
        (
            &["--keep", "last", "--monitor", "train-loss"],
            "--monitor picks the best epoch, which --keep last without --early-stopping does not use",
        ),
        (&["--min-delta=-1"], "must be a finite number >= 0"),
        (&["--early-stopping", "0"], "must be a whole number of at least 1"),
        (&["--val-data", "seed"], "--val-data seed: give a csv:PATH file"),
    ];
    for (extra, says) in cases {
        let run = wgpu_mlp(&[&base[..], extra].concat());
        assert_bad_input(&run, says);
    }
    let regression = wgpu_mlp(&["--data", &data, "--device", "cpu", "--epochs", "1", "--monitor", "val-accuracy"]);
    assert_bad_input(&regression, "--monitor val-accuracy applies to classification");
}

/// The largest |GPU - CPU| parameter difference after a short Adam run, as tests/cli.rs allows.
const GPU_PARAM_ATOL: f64 = 1e-3;

#[test]
fn early_stopping_on_the_gpu_stops_where_the_cpu_does() {
    if common::gpu().is_none() {
        return;
    }
    let dir = scratch("gpu");
    let data = noisy_csv(&dir);
    // Odd sizes: 7 hidden units, a batch that leaves a short last one.
    let flags = ["--hidden", "64,7", "--lr", "0.01", "--batch-size", "13", "--epochs", "40", "--early-stopping", "3"];
    let cpu = train(&dir, "cpu", &data, &flags);
    let gpu_args = [&flags[..], &["--device", "gpu", "--verify"]].concat();
    let out = dir.join("gpu");
    let base = ["--data", &data, "--task", "classify", "--json", "--quiet", "--out", out.to_str().unwrap()];
    let gpu = wgpu_mlp(&[&base[..], &gpu_args].concat());
    assert_success(&gpu);
    let gpu = gpu.json();
    for key in ["best_epoch", "stopped_epoch", "stop_reason"] {
        assert_eq!(gpu[key], cpu[key], "{key}: gpu {gpu}\ncpu {cpu}");
    }
    let diff = number(&gpu, "max_abs_param_diff");
    assert!(diff < GPU_PARAM_ATOL, "max |GPU - CPU| parameter difference {diff}: {gpu}");
}

#[test]
fn a_resume_with_every_feature_on_lands_on_the_unbroken_run_bit_for_bit() {
    let dir = scratch("every-feature");
    let data = noisy_csv(&dir);
    // Shuffled batches with a short last one, per-layer dropout, a warm-up
    // then a cosine schedule, both clippings, balanced class weights, Adam,
    // early stopping and the best epoch kept.
    let flags = [
        "--hidden",
        "24,9",
        "--activation",
        "gelu",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "13",
        "--shuffle",
        "--dropout",
        "0.3,0.1",
        "--lr-schedule",
        "cosine",
        "--warmup-epochs",
        "2",
        "--clip-grad-norm",
        "0.5",
        "--clip-grad-value",
        "0.05",
        "--class-weight",
        "balanced",
        "--early-stopping",
        "30",
        "--keep",
        "best",
    ];
    let devices: &[&str] = if common::gpu().is_some() { &["cpu", "gpu"] } else { &["cpu"] };
    for device in devices {
        let run = |out: &str, extra: &[&str]| {
            let out = dir.join(format!("{device}-{out}"));
            let base = ["--data", &data, "--task", "classify", "--device", device, "--json", "--quiet"];
            let run = wgpu_mlp(&[&base[..], &flags[..], extra, &["--out", out.to_str().unwrap()]].concat());
            assert_success(&run);
            run.json()
        };
        let straight = run("straight", &["--epochs", "8", "--save-every", "1"]);
        // Epochs 5 to 8 again, from the straight run's checkpoint of epoch 4, in a folder of their own.
        let halfway = dir.join(format!("{device}-straight/checkpoint-epoch4.safetensors"));
        let resumed = run("resumed", &["--epochs", "8", "--resume", halfway.to_str().unwrap()]);
        for key in ["best_epoch", "kept_epoch", "test_loss", "test_accuracy", "best_value", "final_loss"] {
            assert_eq!(resumed[key], straight[key], "{device} {key}: straight {straight}\nresumed {resumed}");
        }
        let params = |path: &str| binary::layer_tensors(Path::new(path));
        for key in ["best_checkpoint", "checkpoint"] {
            let (a, b) = (straight[key].as_str().unwrap(), resumed[key].as_str().unwrap());
            assert_eq!(params(a), params(b), "{device} {key}: {a} and {b} differ");
        }
        let rows = |out: &str| -> Vec<String> {
            let csv = std::fs::read_to_string(dir.join(format!("{device}-{out}")).join("metrics.csv")).unwrap();
            let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
            let columns = ["train_loss", "val_loss", "lr"].map(|c| header.iter().position(|h| *h == c).unwrap());
            let cells = |l: &str| -> String {
                let cells: Vec<&str> = l.split(',').collect();
                columns.iter().map(|&c| cells[c]).collect::<Vec<_>>().join(",")
            };
            csv.lines().skip(1).map(cells).collect()
        };
        // A resume into a new folder writes the epochs it trains.
        assert_eq!(rows("resumed"), rows("straight")[4..], "{device}: the losses and rates of epochs 5 to 8");
    }
}
