//! `wgpu-mlp privacy` end to end: the sentence and the JSON of a planned
//! run, the noise multiplier for a target epsilon, and every bad input
//! refused with exit code 2 and a message naming its flag.

mod binary;

use binary::{assert_bad_input, assert_success, wgpu_mlp_in, Run};
use wgpu_mlp::accountant::RdpAccountant;

fn privacy(args: &[&str]) -> Run {
    wgpu_mlp_in(&std::env::temp_dir(), &[&["privacy"], args].concat())
}

/// MNIST's DP-SGD example: batches of 256 expected rows of 60000.
const MNIST: [&str; 4] = ["--rows", "60000", "--batch-size", "256"];

#[test]
fn a_planned_run_prints_its_epsilon_in_one_sentence() {
    let run = privacy(&[&MNIST[..], &["--epochs", "20", "--noise-multiplier", "0.8"]].concat());
    assert_success(&run);
    let mut accountant = RdpAccountant::new();
    accountant.record(256.0 / 60000.0, 0.8, 20 * 235);
    let spent = accountant.epsilon(1e-5);
    let start = "60000 rows, expected batch 256 (q = 0.004267), 4700 steps (20 epochs of 235), noise multiplier 0.8: \
                 (epsilon = ";
    let end = format!(", delta = 1e-5)-DP (RDP order {})", spent.order);
    let shown = run.stdout.strip_prefix(start).and_then(|rest| rest.split_once(&end));
    let Some((epsilon, _)) = shown else { panic!("want {start:?}..{end:?}\n{}", run.show()) };
    let epsilon: f64 = epsilon.parse().expect("a number");
    assert!((epsilon - spent.epsilon).abs() <= 5e-4, "{epsilon} against {}", spent.epsilon);
    assert!(run.stdout.contains("delta is the default"), "{}", run.show());
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.show());
    assert!(run.stderr.is_empty(), "{}", run.show());
}

#[test]
fn json_gives_every_figure_in_full() {
    let run =
        privacy(&[&MNIST[..], &["--steps", "4688", "--noise-multiplier", "0.8", "--delta", "1e-6", "--json"]].concat());
    assert_success(&run);
    let object = run.json();
    let mut accountant = RdpAccountant::new();
    accountant.record(256.0 / 60000.0, 0.8, 4688);
    let spent = accountant.epsilon(1e-6);
    assert_eq!(object["q"], 256.0 / 60000.0);
    assert_eq!(object["sigma"], 0.8);
    assert_eq!(object["steps"], 4688);
    assert_eq!(object["delta"], 1e-6);
    assert_eq!(object["epsilon"], spent.epsilon);
    assert_eq!(object["order"], spent.order);
}

#[test]
fn a_target_epsilon_prints_the_noise_multiplier_that_meets_it() {
    let run = privacy(&[&MNIST[..], &["--epochs", "20", "--target-epsilon", "3", "--json"]].concat());
    assert_success(&run);
    let object = run.json();
    let sigma = object["sigma"].as_f64().expect("a number");
    let epsilon = object["epsilon"].as_f64().expect("a number");
    assert!((2.99..=3.0).contains(&epsilon), "{}", run.show());
    assert!(sigma > 0.7 && sigma < 0.9, "{}", run.show());

    let run = privacy(&[&MNIST[..], &["--epochs", "20", "--target-epsilon", "3"]].concat());
    assert_success(&run);
    assert!(run.stdout.contains(&format!("noise multiplier {sigma} (found for --target-epsilon 3)")), "{}", run.show());
}

#[test]
fn a_delta_not_below_one_over_rows_is_warned_of() {
    let run = privacy(&[
        "--rows",
        "100",
        "--batch-size",
        "10",
        "--epochs",
        "5",
        "--noise-multiplier",
        "1",
        "--delta",
        "0.05",
    ]);
    assert_success(&run);
    assert!(run.stderr.contains("warning: --delta 5e-2 is not below 1 / --rows"), "{}", run.show());
    assert!(!run.stdout.contains("default"), "{}", run.show());
}

#[test]
fn bad_inputs_exit_2_naming_the_flag() {
    let base = ["--rows", "1000", "--batch-size", "10", "--epochs", "3"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--noise-multiplier", "0"], "--noise-multiplier must be a positive number"),
        (vec!["--noise-multiplier", "-1"], "--noise-multiplier must be a positive number"),
        (vec!["--noise-multiplier", "inf"], "--noise-multiplier must be a positive number"),
        (vec!["--noise-multiplier", "NaN"], "--noise-multiplier must be a positive number"),
        (vec!["--noise-multiplier", "1", "--delta", "0"], "--delta must be in (0, 1)"),
        (vec!["--noise-multiplier", "1", "--delta", "1"], "--delta must be in (0, 1)"),
        (vec!["--noise-multiplier", "1", "--delta", "-1e-5"], "--delta must be in (0, 1)"),
        (vec!["--noise-multiplier", "1", "--target-epsilon", "1"], "give one of --noise-multiplier"),
        (vec![], "give one of --noise-multiplier"),
        (vec!["--target-epsilon", "0"], "--target-epsilon must be a positive number"),
        (vec!["--target-epsilon", "1e-9"], "no noise multiplier up to 1000 reaches --target-epsilon 0.000000001"),
    ];
    for (extra, fragment) in cases {
        let run = privacy(&[&base[..], &extra].concat());
        assert_bad_input(&run, fragment);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.show());
        assert!(run.stdout.is_empty(), "{}", run.show());
    }
    let sigma = ["--noise-multiplier", "1"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--rows", "0", "--batch-size", "1", "--epochs", "1"], "--rows must be at least 1"),
        (vec!["--rows", "10", "--batch-size", "0", "--epochs", "1"], "--batch-size must be at least 1"),
        (vec!["--rows", "10", "--batch-size", "11", "--epochs", "1"], "--batch-size 11 is above --rows 10"),
        (vec!["--rows", "10", "--batch-size", "5", "--epochs", "0"], "--epochs must be at least 1"),
        (vec!["--rows", "10", "--batch-size", "5", "--steps", "0"], "--steps must be at least 1"),
        (vec!["--rows", "10", "--batch-size", "5"], "give one of --epochs and --steps"),
        (
            vec!["--rows", "10", "--batch-size", "5", "--epochs", "1", "--steps", "2"],
            "give one of --epochs and --steps",
        ),
        (
            vec!["--rows", "10", "--batch-size", "1", "--epochs", "18446744073709551615"],
            "--epochs 18446744073709551615",
        ),
    ];
    for (args, fragment) in cases {
        let run = privacy(&[&args[..], &sigma].concat());
        assert_bad_input(&run, fragment);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.show());
    }
}
