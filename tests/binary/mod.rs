//! Running the built `wgpu-mlp` binary from a test: what one run did, shown
//! whole in assertion messages, and the checks every CLI test makes.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// What one run of the binary did.
pub struct Run {
    /// The arguments, quoted, for messages.
    pub args: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The run of `args` that gave `output`.
    pub fn from_output(args: &[&str], output: Output) -> Run {
        Run {
            args: args.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" "),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The whole run, for assertion messages.
    pub fn show(&self) -> String {
        format!(
            "`wgpu-mlp {}` exited with {:?}\n--- stdout\n{}--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    /// Standard output as the one JSON value `--json` prints.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e})\n{}", self.show()))
    }
}

/// The cache folder of every run of the binary from a test (its GPU matmul
/// tuning file), so no test writes into the user's own.
pub fn test_cache() -> PathBuf {
    std::env::temp_dir().join(format!("wgpu-mlp-test-cache-{}", std::process::id()))
}

/// The binary with `args`, run in `cwd` (where default run folders land),
/// its cache folder [`test_cache`].
pub fn command(cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"));
    command.current_dir(cwd).args(args).env("XDG_CACHE_HOME", test_cache());
    command
}

/// Runs the binary with `args` in `cwd` to its end.
pub fn wgpu_mlp_in(cwd: &Path, args: &[&str]) -> Run {
    Run::from_output(args, command(cwd, args).output().expect("the wgpu-mlp binary starts"))
}

/// Exit code 0 and no panic.
pub fn assert_success(run: &Run) {
    assert!(!run.stderr.contains("panicked"), "panicked\n{}", run.show());
    assert_eq!(run.code, Some(0), "expected success\n{}", run.show());
}

/// A fresh, empty scratch folder `name` of the test binary `test`.
pub fn scratch(test: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-{test}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Exit code 2 with `fragment` in the error, and no panic.
pub fn assert_bad_input(run: &Run, fragment: &str) {
    assert!(!run.stderr.contains("panicked"), "panicked\n{}", run.show());
    assert_eq!(run.code, Some(2), "expected exit code 2\n{}", run.show());
    assert!(run.stderr.contains(fragment), "the error does not say {fragment:?}\n{}", run.show());
}

/// Writes a CSV of three classes the tests train on (60 rows, inputs a..d,
/// then `label`) into `dir` and returns its `--data` flag.
pub fn three_classes(dir: &Path) -> String {
    let mut text = String::from("a,b,c,d,label\n");
    for i in 0..60 {
        let label = i % 3;
        let v = |k: usize| ((i * 7 + k * 13) % 10) as f64 * 0.1 + label as f64;
        text += &format!("{},{},{},{},{label}\n", v(0), v(1), v(2), v(3));
    }
    let path = dir.join("three.csv");
    std::fs::write(&path, text).expect("the CSV is written");
    format!("csv:{}", path.display())
}

/// Writes `rows` rows of two classes that a wide net overfits into `dir` and
/// returns its `--data` flag: `inputs` columns a, b, c, ... in [0, 1), then
/// `label`, which follows the first input but is flipped on every fifth row,
/// so memorising the flips raises the validation loss after a few epochs.
pub fn noisy_csv(dir: &Path, rows: usize, inputs: usize) -> String {
    let names: Vec<String> = (0..inputs).map(|k| ((b'a' + k as u8) as char).to_string()).collect();
    let mut text = format!("{},label\n", names.join(","));
    for i in 0..rows {
        let v = |k: usize| ((i * 37 + k * 11) % 101) as f64 / 101.0;
        let clean = usize::from(v(0) > 0.5);
        let label = if i % 5 == 0 { 1 - clean } else { clean };
        let values: Vec<String> = (0..inputs).map(|k| v(k).to_string()).collect();
        text += &format!("{},{label}\n", values.join(","));
    }
    let path = dir.join("noisy.csv");
    std::fs::write(&path, text).expect("the CSV is written");
    format!("csv:{}", path.display())
}

/// The metadata of the checkpoint at `path`.
pub fn checkpoint_metadata(path: &Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).expect("the checkpoint is read");
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("a safetensors file");
    header.metadata().clone().expect("checkpoints carry metadata")
}

/// The bytes of every `layers.*` tensor of the checkpoint at `path`, by name:
/// two checkpoints' parameters compared bit for bit.
pub fn layer_tensors(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).expect("the checkpoint is read");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("a safetensors file");
    let mut names: Vec<&str> = file.names().into_iter().filter(|n| n.starts_with("layers.")).collect();
    names.sort();
    names.into_iter().map(|n| file.tensor(n).expect("named above").data().to_vec()).collect()
}
