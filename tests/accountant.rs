//! The RDP accountant against Google's dp-accounting: the epsilons of
//! tests/data/dp_accounting_vectors.csv and the noise multipliers of
//! tests/data/dp_accounting_noise_multipliers.csv, both made by
//! scripts/dp-accounting-vectors (the first line of each names the version).

use wgpu_mlp::accountant::{noise_multiplier_for_epsilon, RdpAccountant, EPSILON_TOLERANCE};
use wgpu_mlp::Error;

/// Both compute the same series in f64; only ulps of libm's erfc and lgamma
/// against scipy's log_ndtr and gammaln differ, far inside 1%. A wrong
/// series, order list or conversion moves epsilon by more.
const RELATIVE_TOLERANCE: f64 = 0.01;

/// The rows of a CSV under tests/data, less its comment line and header.
fn rows(name: &str) -> Vec<Vec<f64>> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .skip(1)
        .map(|line| line.split(',').map(|v| v.parse().unwrap_or_else(|_| panic!("{path}: '{v}'"))).collect())
        .collect()
}

fn epsilon(q: f64, sigma: f64, steps: u64, delta: f64) -> f64 {
    let mut accountant = RdpAccountant::new();
    accountant.record(q, sigma, steps);
    accountant.epsilon(delta).epsilon
}

fn relative_difference(ours: f64, theirs: f64) -> f64 {
    if ours == theirs {
        0.0
    } else {
        (ours - theirs).abs() / theirs.abs()
    }
}

#[test]
fn epsilon_matches_dp_accounting() {
    let vectors = rows("dp_accounting_vectors.csv");
    assert!(vectors.len() >= 40, "{} rows", vectors.len());
    let mut worst = (0.0, String::new());
    let mut failures = Vec::new();
    for row in &vectors {
        let [q, sigma, steps, delta, theirs] = row[..] else { panic!("row {row:?}") };
        let ours = epsilon(q, sigma, steps as u64, delta);
        let difference = relative_difference(ours, theirs);
        let shown =
            format!("q {q}, sigma {sigma}, {steps} steps, delta {delta:e}: {ours} here, {theirs} in dp-accounting");
        if difference.is_nan() || difference > RELATIVE_TOLERANCE {
            failures.push(shown.clone());
        }
        if difference >= worst.0 {
            worst = (difference, shown);
        }
    }
    println!("largest relative difference {:.3e} ({})", worst.0, worst.1);
    assert!(failures.is_empty(), "beyond {RELATIVE_TOLERANCE} relative:\n{}", failures.join("\n"));
}

#[test]
fn noise_multiplier_matches_the_same_search_over_dp_accounting() {
    for row in rows("dp_accounting_noise_multipliers.csv") {
        let [target, delta, q, steps, theirs] = row[..] else { panic!("row {row:?}") };
        let ours = noise_multiplier_for_epsilon(target, delta, q, steps as u64).expect("reachable");
        assert!(
            relative_difference(ours, theirs) <= RELATIVE_TOLERANCE,
            "target {target}, delta {delta:e}, q {q}, {steps} steps: sigma {ours} here, {theirs} over dp-accounting"
        );
    }
}

#[test]
fn noise_multiplier_meets_the_target_and_little_less_would_not() {
    for (target, delta, q, steps) in
        [(1.0, 1e-5, 256.0 / 60000.0, 4688), (8.0, 1e-5, 0.01, 10000), (0.5, 1e-3, 0.1, 100)]
    {
        let sigma = noise_multiplier_for_epsilon(target, delta, q, steps).expect("reachable");
        let at_sigma = epsilon(q, sigma, steps, delta);
        assert!(at_sigma <= target, "target {target}: sigma {sigma} gives {at_sigma}");
        assert!(at_sigma >= target - EPSILON_TOLERANCE, "target {target}: sigma {sigma} gives only {at_sigma}");
        let less = epsilon(q, sigma - 0.01, steps, delta);
        assert!(less > target - EPSILON_TOLERANCE, "target {target}: sigma {} already gives {less}", sigma - 0.01);
    }
}

#[test]
fn an_unreachable_target_names_itself_and_what_1000_gives() {
    match noise_multiplier_for_epsilon(1e-3, 1e-5, 1.0, 100000) {
        Err(Error::InvalidInput(message)) => {
            assert!(message.contains("`target_epsilon` 0.001"), "{message}");
            assert!(message.contains("1000 gives epsilon"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn text_form_reads_back_to_the_same_accountant_and_epsilon() {
    let mut accountant = RdpAccountant::new();
    accountant.record(256.0 / 60000.0, 0.8, 4688);
    accountant.record(0.01, 1.3, 100);
    accountant.record(0.01, 1.3, 20);
    let text = accountant.to_string();
    assert_eq!(text, "0.004266666666666667 0.8 4688; 0.01 1.3 120");
    let back: RdpAccountant = text.parse().expect("its own text");
    assert_eq!(back, accountant);
    assert_eq!(back.epsilon(1e-5), accountant.epsilon(1e-5));
    assert_eq!(RdpAccountant::new().to_string(), "");
    assert!("0.01 1.3".parse::<RdpAccountant>().unwrap_err().contains("entry 1"));
}

#[test]
fn merged_runs_spend_what_one_run_does() {
    let mut split = RdpAccountant::new();
    for _ in 0..10 {
        split.record(0.01, 1.0, 100);
    }
    assert_eq!(split.entries().len(), 1);
    assert_eq!(split.steps(), 1000);
    assert_eq!(split.epsilon(1e-5).epsilon, epsilon(0.01, 1.0, 1000, 1e-5));

    // Runs of different noise compose: more than either alone.
    split.record(0.01, 2.0, 1000);
    assert_eq!(split.entries().len(), 2);
    let both = split.epsilon(1e-5).epsilon;
    assert!(both > epsilon(0.01, 1.0, 1000, 1e-5) && both > epsilon(0.01, 2.0, 1000, 1e-5), "{both}");
}
