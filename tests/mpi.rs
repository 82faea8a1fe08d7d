//! `mpirun -np 2 wgpu-mlp --data-parallel` (issue 10, item 4), in a build with
//! the `mpi` feature: `cargo test --features mpi --test mpi`, as .ci/run does
//! with Open MPI from Debian. Without the feature this file is empty.
#![cfg(feature = "mpi")]

mod binary;
mod common;

use std::process::Command;

use binary::{assert_bad_input, assert_success, Run};

/// How far the two ranks' model may be from one process's (the CPU
/// reference that --verify trains beside rank 0): the same sums in another order.
const DATA_PARALLEL_ATOL: f64 = 1e-5;

/// `mpirun -np ranks wgpu-mlp args...` in `cwd`, to its end.
fn mpirun(cwd: &std::path::Path, ranks: usize, args: &[&str]) -> Run {
    let output = Command::new("mpirun")
        .current_dir(cwd)
        // CI runs as root, which Open MPI refuses unless told twice.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .args(["-np", &ranks.to_string(), "--oversubscribe", env!("CARGO_BIN_EXE_wgpu-mlp")])
        .args(args)
        .output()
        .expect("mpirun starts (Open MPI: apt-get install openmpi-bin)");
    Run::from_output(args, output)
}

#[test]
fn two_ranks_train_the_one_process_model() {
    let dir = binary::scratch("mpi", "two-ranks");
    let data = binary::noisy_csv(&dir, 200, 3);
    let out = dir.join("run");
    // 135 training rows in shuffled batches of 16 (a last one of 7: shares of 4 and 3).
    let args = [
        "--data",
        &data,
        "--task",
        "classify",
        "--hidden",
        "24,9",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "16",
        "--epochs",
        "6",
        "--clip-grad-norm",
        "1",
        "--device",
        "cpu",
        "--data-parallel",
        "--verify",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    let run = mpirun(&dir, 2, &args);
    assert_success(&run);
    // Only rank 0 prints: one JSON value on stdout.
    let json = run.json();
    assert_eq!(json["data_parallel"]["ranks"], 2, "{json}");
    assert!(json["data_parallel"]["communication_seconds"].as_f64().is_some_and(|s| s > 0.0), "{json}");
    let diff = json["max_abs_param_diff"].as_f64().expect("verify's difference");
    assert!(diff <= DATA_PARALLEL_ATOL, "two ranks {diff} from one process: {json}");
    assert_eq!(json["history"].as_array().map(Vec::len), Some(6), "{json}");
    assert!(out.join("metrics.csv").exists() && out.join("checkpoint-epoch6.safetensors").exists());
}

#[test]
fn a_batch_that_does_not_split_across_the_ranks_is_refused() {
    let dir = binary::scratch("mpi", "split");
    let data = binary::noisy_csv(&dir, 40, 2);
    // 27 training rows in batches of 13: the last has 1 row for 2 ranks.
    let args = ["--data", &data, "--task", "classify", "--batch-size", "13", "--device", "cpu", "--data-parallel"];
    let run = mpirun(&dir, 2, &args);
    assert!(run.stderr.contains("a batch of 1 rows does not split across 2 ranks"), "{}", run.show());
    assert!(run.stderr.contains("--batch-size"), "{}", run.show());
    assert_ne!(run.code, Some(0), "{}", run.show());
}

#[test]
fn the_gpu_is_refused_and_one_rank_is_told() {
    let dir = binary::scratch("mpi", "refused");
    let data = binary::noisy_csv(&dir, 40, 2);
    let base = ["--data", &data, "--task", "classify", "--epochs", "1", "--data-parallel"];
    if common::gpu().is_some() {
        let gpu = binary::wgpu_mlp_in(&dir, &[&base[..], &["--device", "gpu"]].concat());
        assert_bad_input(&gpu, "--data-parallel trains on the CPU device for now: add --device cpu");
    }
    let out = dir.join("alone");
    let alone = binary::wgpu_mlp_in(&dir, &[&base[..], &["--device", "cpu", "--out", out.to_str().unwrap()]].concat());
    assert_success(&alone);
    assert!(alone.stderr.contains("notice: --data-parallel with one rank"), "{}", alone.show());
}

#[test]
fn two_ranks_split_a_sweep_and_rank_0_writes_what_one_process_does() {
    let dir = binary::scratch("mpi", "sweep");
    let data = binary::noisy_csv(&dir, 120, 3);
    let sweep = |out: &str| -> Vec<String> {
        let out = dir.join(out);
        let flags = [
            "sweep",
            "--data",
            &data,
            "--task",
            "classify",
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--quiet",
            "--lr",
            "0.01,0.05",
            "--hidden",
            "3",
            "--hidden",
            "4,2",
            "--seed",
            "0,1",
            "--checkpoints",
            "all",
            "--out",
            out.to_str().unwrap(),
        ];
        flags.iter().map(|f| f.to_string()).collect()
    };
    let args = sweep("alone");
    let alone = binary::wgpu_mlp_in(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_success(&alone);
    let args = sweep("ranks");
    let ranks = mpirun(&dir, 2, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_success(&ranks);
    // One winner line: rank 1 prints nothing.
    assert_eq!(ranks.stdout.lines().count(), 1, "{}", ranks.show());
    assert_eq!(ranks.stdout, alone.stdout.replace("alone", "ranks"), "the winner line");
    // sweep.csv without its seconds column, which differs run to run.
    let table = |out: &str| -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(dir.join(out).join("sweep.csv")).unwrap();
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let seconds = header.iter().position(|h| *h == "seconds").expect("a seconds column");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        reader
            .records()
            .map(|r| r.unwrap().iter().enumerate().filter(|(i, _)| *i != seconds).map(|(_, v)| v.to_string()).collect())
            .collect()
    };
    assert_eq!(table("ranks"), table("alone"), "sweep.csv, row by row");
    // Every checkpoint's tensors bit for bit and its metadata (safetensors
    // writes the metadata in a process's own hash order, so not the bytes).
    let same = |file: &str| {
        let (a, b) = (dir.join("alone").join(file), dir.join("ranks").join(file));
        assert_eq!(binary::layer_tensors(&a), binary::layer_tensors(&b), "{file}'s tensors");
        assert_eq!(binary::checkpoint_metadata(&a), binary::checkpoint_metadata(&b), "{file}'s metadata");
    };
    for model in 0..8 {
        same(&format!("models/model-{model}.safetensors"));
    }
    same("checkpoint-best.safetensors");
}
