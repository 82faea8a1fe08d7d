//! A fuzzing harness on stable Rust for the two parsers of outside input that
//! tests/fuzz_data.rs does not cover: safetensors checkpoints (the file and
//! its metadata) and the command line's values. proptest mutates valid
//! inputs (bit flips, truncations, splices, huge and special numbers) and
//! every case must end in a success or an input error, never a panic, and a
//! checkpoint read never allocates more than `64 MiB + 64 x file bytes` above
//! what was live before it (the file itself, its parsed tensors and their
//! copies as parameters and optimizer state fit several times in 64 per byte).
//!
//! `FUZZ_CASES` cases for checkpoints (default 64) and an eighth of that for
//! the command line, whose cases each start the binary; a longer run:
//! `FUZZ_CASES=20000 cargo test --release --test fuzz_checkpoint`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

mod peak_alloc;

use peak_alloc::{peak_of, PeakAllocator};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use wgpu_mlp::checkpoint;
use wgpu_mlp::data::Scale;
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::train::Optimizer;
use wgpu_mlp::{CpuTrainer, Dataset, MlpSpec, Params, Run, TrainConfig, Trainer};

#[global_allocator]
static GLOBAL: PeakAllocator = PeakAllocator;

const FIXED_BYTES: usize = 64 << 20;
const BYTES_PER_INPUT_BYTE: usize = 64;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-fuzz-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A real checkpoint (Adam, a scaler) of a small net, as bytes.
fn valid_checkpoint(dir: &Path) -> Vec<u8> {
    let spec =
        MlpSpec::new(vec![4, 5, 3]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let x = Dataset::seed_problem(20, 4, 1, 1).unwrap().x;
    let labels: Vec<usize> = (0..20).map(|i| i % 3).collect();
    let data = Dataset::classification(x, &labels, 3).unwrap();
    let config = TrainConfig {
        optimizer: Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        batch_size: Some(8),
        ..TrainConfig::default()
    };
    let params = Params::init(&spec, Init::He, 0).unwrap();
    let mut trainer =
        CpuTrainer::new(&Run { spec: &spec, params: &params, train: &data, test: None, config: &config }).unwrap();
    trainer.train(2).unwrap();
    let path = dir.join("valid.safetensors");
    let metadata = checkpoint::describe(&spec, config.optimizer, 0, data.fingerprint());
    checkpoint::save(&path, &trainer.state().unwrap(), 2, metadata, Some(&Scale::Standard.fit(&data.x))).unwrap();
    std::fs::read(&path).unwrap()
}

/// The same checkpoint with one metadata field set to `value`, re-encoded.
fn with_field(bytes: &[u8], key: &str, value: &str) -> Vec<u8> {
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut metadata: HashMap<String, String> = header.metadata().clone().unwrap();
    metadata.insert(key.into(), value.into());
    safetensors::serialize(file.tensors(), Some(metadata)).unwrap()
}

/// How a case changes the valid bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Splice(usize, Vec<u8>),
    Field(&'static str, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let keys = prop::sample::select(vec![
        "format_version",
        "layers",
        "hidden",
        "output",
        "loss",
        "optimizer",
        "seed",
        "data_fingerprint",
        "epoch",
        "shuffle_position",
        "adam_step",
    ]);
    let values = prop::sample::select(vec![
        "",
        "x",
        "-1",
        "0",
        "1e39",
        "NaN",
        "inf",
        "18446744073709551616",
        "340282366920938463463374607431768211456",
        "4,0,3",
        "4,5,3,",
        "4,99999999999,3",
        "1",
        "99",
        "Relu",
        "relu",
        "softmax",
        "adam",
        "adam 0.9 0.999",
        "momentum NaN",
        "sgd",
        "ffffffffffffffff",
        "\u{0}",
        "4,5",
    ]);
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64)).prop_map(|(at, b)| Mutation::Splice(at, b)),
        (keys, values).prop_map(|(k, v)| Mutation::Field(k, v.to_string())),
    ]
}

fn apply(valid: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    match mutation {
        Mutation::Flip(at, bits) => {
            let at = at % bytes.len();
            bytes[at] ^= bits;
        }
        Mutation::Truncate(at) => bytes.truncate(at % bytes.len()),
        Mutation::Splice(at, extra) => {
            let at = at % bytes.len();
            bytes.splice(at..at, extra.iter().copied());
        }
        Mutation::Field(key, value) => bytes = with_field(valid, key, value),
    }
    bytes
}

#[test]
fn checkpoint_readers_refuse_mutated_files_without_panics_or_large_allocations() {
    let dir = scratch();
    let valid = valid_checkpoint(&dir);
    let spec = checkpoint::read_spec(&dir.join("valid.safetensors")).unwrap();
    let path = dir.join("mutated.safetensors");
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    let largest = AtomicUsize::new(0);
    runner
        .run(&mutation(), |mutation| {
            let bytes = apply(&valid, &mutation);
            std::fs::write(&path, &bytes).unwrap();
            let bound = FIXED_BYTES + BYTES_PER_INPUT_BYTE * bytes.len();
            let (results, peak) = peak_of(|| {
                [
                    checkpoint::read_spec(&path).map(drop),
                    checkpoint::load(&path, &spec).map(drop),
                    checkpoint::load_model(&path).map(drop),
                ]
            });
            largest.fetch_max(peak, Ordering::Relaxed);
            for result in results {
                if let Err(error) = result {
                    prop_assert!(error.is_bad_input(), "{mutation:?}: not an input error: {error:?}");
                }
            }
            prop_assert!(peak <= bound, "{mutation:?}: {peak} bytes at the peak, above {bound}");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let largest = largest.load(Ordering::Relaxed);
    eprintln!("{} checkpoint cases; largest peak {largest} bytes for a {} byte file", cases(), valid.len());
}

/// Values for the command line's numeric flags: numbers at and past their
/// types' ends, special floats, signs, other notations and text.
fn flag_value() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        "0",
        "-0",
        "1",
        "-1",
        "0.5",
        "1e39",
        "-1e39",
        "1e-45",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "1e309",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "0x10",
        "1_000",
        " 3",
        "3 ",
        "",
        "٣",
        "1,2",
        "1,,2",
        ",",
        "10,0,1",
        "2,3,4,5,6,7,8,9,10",
        "+5",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        special,
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        "\\PC{0,8}"
    ]
}

#[test]
fn numeric_flags_end_in_a_run_or_exit_2_without_panics() {
    // Each case starts the binary on a tiny run (1 epoch of 8 samples).
    let flags = prop::sample::select(vec![
        "--lr",
        "--weight-decay",
        "--momentum",
        "--beta1",
        "--beta2",
        "--eps",
        "--batch-size",
        "--log-every",
        "--save-every",
        "--samples",
        "--seed",
        "--test-fraction",
        "--layers",
        "--hidden",
        "--classes",
    ]);
    let out = scratch().join("runs");
    let cases = (cases() / 8).max(4);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    runner
        .run(&(flags, flag_value()), |(flag, value)| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"));
            command.args(["--device", "cpu", "--quiet", "--epochs", "1"]);
            if flag != "--samples" {
                command.args(["--samples", "8"]);
            }
            let run = command
                .arg(format!("{flag}={value}"))
                .arg("--out")
                .arg(&out)
                .output()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let stderr = String::from_utf8_lossy(&run.stderr);
            prop_assert!(!stderr.contains("panicked"), "{flag}={value:?}: {stderr}");
            prop_assert!(matches!(run.status.code(), Some(0 | 2)), "{flag}={value:?}: {:?} {stderr}", run.status);
            let _ = std::fs::remove_dir_all(&out);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
