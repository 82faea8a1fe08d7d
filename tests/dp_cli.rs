//! DP-SGD from the command line (issue 14): the epsilon of every epoch in
//! the terminal line, metrics.csv, --json and the checkpoints, the same as
//! `wgpu-mlp privacy` computes for the run's plan; a resume that goes on
//! counting and lands on the unbroken run bit for bit; --verify with DP on;
//! and the bad inputs, each exit 2 naming its flag.

mod binary;
mod common;

use binary::{
    assert_bad_input, assert_success, checkpoint_metadata, layer_tensors, scratch, three_classes, wgpu_mlp_in,
};

/// 60 rows of three classes, 36 of them for training after the test and
/// validation splits; batch 6 expected, so q = 1/6 and 6 steps an epoch.
fn dp_run(dir: &std::path::Path, extra: &[&str]) -> binary::Run {
    dp_run_clipped_to(dir, "0.7", extra)
}

fn dp_run_clipped_to(dir: &std::path::Path, max_grad_norm: &str, extra: &[&str]) -> binary::Run {
    let data = three_classes(dir);
    let args = [
        &["--data", data.as_str(), "--task", "classify", "--hidden", "5", "--batch-size", "6", "--device", "cpu"][..],
        &["--dp", "--dp-noise-multiplier", "1.3", "--dp-max-grad-norm", max_grad_norm, "--lr", "0.05", "--json"],
        extra,
    ]
    .concat();
    wgpu_mlp_in(dir, &args)
}

fn metrics_csv_epsilons(path: &std::path::Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == "epsilon").expect("an epsilon column");
    lines.map(|line| line.split(',').nth(at).unwrap().parse().unwrap()).collect()
}

#[test]
fn every_epoch_reports_the_epsilon_that_the_privacy_planner_computes() {
    let dir = scratch("dp-cli", "epsilon");
    let run = dp_run(&dir, &["--epochs", "4", "--out", dir.join("run").to_str().unwrap()]);
    assert_success(&run);
    let summary = run.json();
    let privacy = &summary["privacy"];
    let rows = summary["samples"].as_u64().unwrap();
    let history: Vec<f64> =
        summary["history"].as_array().unwrap().iter().map(|h| h["epsilon"].as_f64().unwrap()).collect();
    assert_eq!(history.len(), 4);
    assert!(history.windows(2).all(|w| w[0] < w[1]), "epsilon grows every epoch: {history:?}");
    assert_eq!(metrics_csv_epsilons(&dir.join("run/metrics.csv")), history, "metrics.csv has --json's epsilons");
    assert_eq!(privacy["epsilon"].as_f64(), history.last().copied());
    assert_eq!(privacy["steps"].as_u64(), Some(4 * rows.div_ceil(6)));
    // The planner, given the same plan, says the same.
    let delta = privacy["delta"].as_f64().unwrap().to_string();
    // The noise multiplier as the run used it (an f32).
    let sigma = privacy["noise_multiplier"].as_f64().unwrap().to_string();
    let plan = wgpu_mlp_in(
        &dir,
        &[
            "privacy",
            "--rows",
            &rows.to_string(),
            "--batch-size",
            "6",
            "--epochs",
            "4",
            "--noise-multiplier",
            &sigma,
            "--delta",
            &delta,
            "--json",
        ],
    );
    assert_success(&plan);
    let planned = plan.json()["epsilon"].as_f64().unwrap();
    let spent = privacy["epsilon"].as_f64().unwrap();
    assert!((planned - spent).abs() <= 1e-12 * spent, "planned {planned}, spent {spent}");
    // Every epoch's line says it too, and the end states the guarantee.
    assert!(run.stderr.contains("epsilon"), "{}", run.show());
    assert!(run.stderr.contains("-differentially private with respect to each of the"), "{}", run.show());
    // The checkpoint keeps the accountant.
    let saved = checkpoint_metadata(&dir.join("run/checkpoint-epoch4.safetensors"));
    assert_eq!(saved["dp.accountant"], privacy["accountant"].as_str().unwrap());
}

#[test]
fn a_resumed_dp_run_goes_on_counting_and_lands_on_the_unbroken_run() {
    let dir = scratch("dp-cli", "resume");
    let whole = dir.join("whole");
    let first = dir.join("first");
    assert_success(&dp_run(&dir, &["--epochs", "6", "--keep", "last", "--out", whole.to_str().unwrap()]));
    let broken = dp_run(&dir, &["--epochs", "3", "--keep", "last", "--out", first.to_str().unwrap()]);
    assert_success(&broken);
    let checkpoint = first.join("checkpoint-epoch3.safetensors");
    let resumed = dp_run(
        &dir,
        &[
            "--epochs",
            "6",
            "--keep",
            "last",
            "--resume",
            checkpoint.to_str().unwrap(),
            "--out",
            first.to_str().unwrap(),
        ],
    );
    assert_success(&resumed);
    assert_eq!(
        layer_tensors(&first.join("checkpoint-epoch6.safetensors")),
        layer_tensors(&whole.join("checkpoint-epoch6.safetensors")),
        "the same parameters, bit for bit"
    );
    assert_eq!(metrics_csv_epsilons(&first.join("metrics.csv")), metrics_csv_epsilons(&whole.join("metrics.csv")));
    assert_eq!(
        resumed.json()["privacy"],
        binary::Run::json(&dp_run(
            &dir,
            &["--epochs", "6", "--keep", "last", "--out", dir.join("again").to_str().unwrap()]
        ))["privacy"]
    );
    // Other DP settings, or none, do not continue this run.
    let other = dp_run_clipped_to(
        &dir,
        "0.5",
        &["--epochs", "6", "--resume", checkpoint.to_str().unwrap(), "--out", first.to_str().unwrap()],
    );
    assert_bad_input(&other, "its dp is max_grad_norm 0.7");
    // A run trained without DP-SGD cannot be continued with it: its earlier
    // steps spent privacy no accountant counted.
    let plain = dir.join("plain");
    let data = three_classes(&dir);
    let base = ["--data", data.as_str(), "--task", "classify", "--hidden", "5", "--batch-size", "6", "--device", "cpu"];
    assert_success(&wgpu_mlp_in(
        &dir,
        &[&base[..], &["--epochs", "2", "--no-shuffle", "--out", plain.to_str().unwrap()]].concat(),
    ));
    let plain_checkpoint = plain.join("checkpoint-epoch2.safetensors");
    let resumed_with_dp = dp_run(
        &dir,
        &["--epochs", "4", "--resume", plain_checkpoint.to_str().unwrap(), "--out", plain.to_str().unwrap()],
    );
    assert_bad_input(&resumed_with_dp, "its dp is missing");
}

#[test]
fn verify_runs_the_gpu_in_lock_step_with_dp_on() {
    if common::gpu().is_none() {
        return;
    }
    let dir = scratch("dp-cli", "verify");
    let data = three_classes(&dir);
    let run = wgpu_mlp_in(
        &dir,
        &[
            "--data",
            &data,
            "--task",
            "classify",
            "--hidden",
            "7",
            "--batch-size",
            "5",
            "--epochs",
            "3",
            "--device",
            "gpu",
            "--path",
            "layered",
            "--dropout",
            "0.2",
            "--dp",
            "--dp-noise-multiplier",
            "0.9",
            "--verify",
            "--out",
            dir.join("run").to_str().unwrap(),
        ],
    );
    assert_success(&run);
    assert!(run.stdout.contains("read-backs in lock step with the CPU reference"), "{}", run.show());
}

#[test]
fn bad_dp_settings_are_refused_naming_the_flag() {
    let dir = scratch("dp-cli", "bad");
    let data = three_classes(&dir);
    let base = ["--data", data.as_str(), "--task", "classify", "--batch-size", "6", "--epochs", "2", "--device", "cpu"];
    let refused = |extra: &[&str], fragment: &str| {
        let run = wgpu_mlp_in(&dir, &[&base[..], extra].concat());
        assert_bad_input(&run, fragment);
    };
    refused(&["--dp"], "--dp needs --dp-noise-multiplier or --dp-target-epsilon");
    refused(&["--dp-noise-multiplier", "1"], "--dp");
    refused(&["--dp", "--dp-noise-multiplier", "0"], "must be a positive finite number");
    refused(&["--dp", "--dp-noise-multiplier", "nan"], "must be a positive finite number");
    refused(&["--dp", "--dp-max-grad-norm", "-1", "--dp-noise-multiplier", "1"], "must be a positive finite number");
    refused(&["--dp", "--dp-noise-multiplier", "1", "--dp-delta", "1.5"], "--dp-delta must be in (0, 1)");
    refused(&["--dp", "--dp-noise-multiplier", "1", "--dp-delta", "0"], "--dp-delta must be in (0, 1)");
    refused(&["--dp", "--dp-target-epsilon", "0.001", "--dp-delta", "1e-6"], "target");
    refused(&["--dp", "--dp-target-epsilon", "-2"], "--dp-target-epsilon must be a positive finite number");
    refused(&["--dp", "--dp-noise-multiplier", "1", "--shuffle"], "--shuffle with --dp");
    refused(&["--dp", "--dp-noise-multiplier", "1", "--clip-grad-norm", "1"], "--clip-grad-norm");
    refused(&["--dp", "--dp-noise-multiplier", "1", "--dp-target-epsilon", "1"], "cannot be used with");
    // A delta at or above 1 / rows is allowed, with a warning.
    let warned = wgpu_mlp_in(
        &dir,
        &[
            &base[..],
            &["--dp", "--dp-noise-multiplier", "1", "--dp-delta", "0.5", "--out", dir.join("weak").to_str().unwrap()],
        ]
        .concat(),
    );
    assert_success(&warned);
    assert!(warned.stderr.contains("warning: --dp-delta"), "{}", warned.show());
}
