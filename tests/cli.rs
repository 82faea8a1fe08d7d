//! The command line end to end: runs the built `wgpu-mlp` binary and checks
//! what it prints, its JSON and its exit codes (0 success, 2 bad input, 1 any
//! other failure), and that no input makes it panic or abort.
//!
//! GPU cases probe `--device gpu` once per test binary and are skipped, saying
//! so, when there is no adapter; with REQUIRE_GPU=1 a missing adapter fails
//! them instead (CI sets it).

use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

mod binary;

use binary::three_classes;

/// A GPU run and the CPU reference start from the same parameters and differ
/// only by the rounding of exp and of sums taken in another order: on lavapipe
/// about 1e-8 after these short runs. A wrong kernel is off by far more than
/// 1e-3, and 1e-3 leaves room for other adapters' exp and fused multiply-adds.
const GPU_PARAM_ATOL: f64 = 1e-3;

/// The same drift seen in the final loss, a mean of squares near 0.1.
const GPU_LOSS_ATOL: f64 = 1e-4;

/// What one run of the binary did.
struct Run {
    args: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The whole run, for assertion messages.
    fn show(&self) -> String {
        format!(
            "`wgpu-mlp {}` exited with {:?}\n--- stdout\n{}--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    /// Stdout as exactly one JSON object (serde_json rejects anything after it).
    fn json(&self) -> Value {
        let value: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e})\n{}", self.show()));
        assert!(value.is_object(), "the JSON is not an object\n{}", self.show());
        value
    }

    /// (epoch, loss) of each "epoch N ... loss X" progress line in `text`.
    fn epochs(text: &str) -> Vec<(usize, f64)> {
        text.lines()
            .filter(|line| line.starts_with("epoch "))
            .map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let epoch = words[1].parse().unwrap_or_else(|_| panic!("no epoch number in {line:?}"));
                let at = words.iter().position(|w| *w == "loss").unwrap_or_else(|| panic!("no loss in {line:?}"));
                let loss = words.get(at + 1).and_then(|w| w.parse().ok());
                (epoch, loss.unwrap_or_else(|| panic!("no loss value in {line:?}")))
            })
            .collect()
    }

    /// (final, initial) from the line after the last epoch line of `text`:
    /// "final loss F (initial I); S steps in T s, R steps/s".
    fn final_line(text: &str) -> (f64, f64) {
        let line = text.lines().find(|l| l.starts_with("final loss ")).unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(words.len() > 4, "no final loss line: {text:?}");
        let mut after = text.lines().skip_while(|l| !l.starts_with("final loss ")).skip(1);
        assert!(after.all(|l| !l.starts_with("epoch ")), "the final loss follows every epoch line: {text:?}");
        let number = |word: &str| -> f64 {
            word.trim_end_matches([';', ')']).parse().unwrap_or_else(|_| panic!("{word:?} in {line:?} is no number"))
        };
        assert_eq!(words[3], "(initial", "in {line:?}");
        (number(words[2]), number(words[4]))
    }
}

/// Runs the binary with `args`, inheriting the environment (WGPU_BACKEND and
/// WGPU_ADAPTER_NAME included) plus `env`, in a scratch folder that collects
/// the default run folders (runs/...).
fn wgpu_mlp_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let cwd = std::env::temp_dir().join(format!("wgpu-mlp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).expect("a scratch folder");
    let output = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"))
        .current_dir(&cwd)
        .args(args)
        .env("XDG_CACHE_HOME", binary::test_cache())
        .envs(env.iter().copied())
        .output()
        .expect("the wgpu-mlp binary starts");
    Run {
        args: args.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" "),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn wgpu_mlp(args: &[&str]) -> Run {
    wgpu_mlp_env(args, &[])
}

/// Arguments written as one line: `words("--device cpu --json")`.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// An exit code (so no signal, no abort) and no Rust panic message.
fn assert_no_panic(run: &Run) {
    assert!(run.code.is_some(), "killed by a signal (an abort?)\n{}", run.show());
    assert!(!run.stderr.contains("panicked"), "panicked\n{}", run.show());
}

fn assert_success(run: &Run) {
    assert_no_panic(run);
    assert_eq!(run.code, Some(0), "expected success\n{}", run.show());
}

/// Exit code 2, an error on stderr containing `fragment`, nothing on stdout.
/// Returns what is wrong instead of panicking, so a table of cases can report
/// every failing case at once.
fn bad_input_problem(run: &Run, fragment: &str) -> Option<String> {
    let problem = if run.code.is_none() || run.stderr.contains("panicked") {
        "panicked or was killed"
    } else if run.code != Some(2) {
        "exit code is not 2"
    } else if !run.stderr.contains("error") {
        "no error message on stderr"
    } else if !run.stderr.contains(fragment) {
        "the message does not contain the expected text"
    } else if !run.stdout.trim().is_empty() {
        "something was printed on stdout"
    } else {
        return None;
    };
    Some(format!("{problem} (wanted {fragment:?})\n{}", run.show()))
}

fn assert_no_problems(problems: Vec<String>) {
    assert!(problems.is_empty(), "{} case(s) failed:\n\n{}", problems.len(), problems.join("\n"));
}

/// The adapter `--device gpu` trains on, probed once per test binary; None
/// when the probe fails the way a machine without a GPU does (exit code 1).
fn gpu_adapter() -> Option<&'static str> {
    static ADAPTER: OnceLock<Option<String>> = OnceLock::new();
    ADAPTER
        .get_or_init(|| {
            let run = wgpu_mlp(&["--device", "gpu", "--epochs", "0", "--json"]);
            assert_no_panic(&run);
            match run.code {
                Some(0) => {
                    let json = run.json();
                    assert_eq!(json["device"], "gpu", "{}", run.show());
                    let adapter = json["adapter"].as_str().unwrap_or_else(|| panic!("no adapter name\n{}", run.show()));
                    assert!(!adapter.is_empty(), "{}", run.show());
                    eprintln!("GPU tests run on {adapter}");
                    Some(adapter.to_owned())
                }
                Some(1) => {
                    eprintln!("no GPU adapter: {}", run.stderr.trim());
                    None
                }
                _ => panic!("the GPU probe should succeed or fail with exit code 1\n{}", run.show()),
            }
        })
        .as_deref()
}

fn gpu_available() -> bool {
    gpu_adapter().is_some()
}

/// For a test that needs a GPU: the adapter, or None after saying the test is
/// skipped. With REQUIRE_GPU=1 a missing adapter fails the test instead.
fn gpu_or_skip() -> Option<&'static str> {
    if !gpu_available() {
        if std::env::var("REQUIRE_GPU").is_ok_and(|v| v == "1") {
            panic!("REQUIRE_GPU=1 but `wgpu-mlp --device gpu` finds no GPU adapter");
        }
        eprintln!("skipped: no GPU adapter (set REQUIRE_GPU=1 to fail instead)");
    }
    gpu_adapter()
}

/// The devices a device-independent case runs on: cpu, and gpu where there is one.
fn devices() -> Vec<&'static str> {
    let mut devices = vec!["cpu"];
    if gpu_or_skip().is_some() {
        devices.push("gpu");
    }
    devices
}

fn number(json: &Value, key: &str) -> f64 {
    json[key].as_f64().unwrap_or_else(|| panic!("{key} is missing or not a number in {json}"))
}

#[test]
fn default_run_trains_the_textbook_example() {
    let run = wgpu_mlp(&[]);
    assert_success(&run);

    // Auto takes a hardware GPU, and the CPU when there is none or only a
    // software adapter ("name (backend, device type)" ends in ", Cpu)").
    let device = run.stdout.lines().next().unwrap_or("");
    let notice = run.stderr.lines().find(|line| line.starts_with("notice: --device auto took"));
    let notice = notice.unwrap_or_else(|| panic!("auto says what it took and why\n{}", run.show()));
    match gpu_adapter() {
        Some(adapter) if !adapter.contains(", Cpu)") => {
            assert!(device.starts_with(&format!("device: {adapter}")), "auto takes the GPU\n{}", run.show());
            assert!(notice.contains("hardware adapter"), "{}", run.show());
        }
        Some(software) => {
            assert_eq!(device, "device: cpu", "a software adapter is slower than the CPU\n{}", run.show());
            let name = software.split(" (").next().unwrap_or(software);
            assert!(notice.contains("software adapter") && notice.contains(name), "{}", run.show());
        }
        None => {
            assert_eq!(device, "device: cpu", "{}", run.show());
            assert!(notice.contains("no GPU adapter"), "{}", run.show());
        }
    }
    assert!(run.stdout.contains("layers 10,5,1 (61 parameters)"), "the model is described\n{}", run.show());

    let logged = Run::epochs(&run.stdout);
    let epochs: Vec<usize> = logged.iter().map(|&(epoch, _)| epoch).collect();
    assert_eq!(epochs, (1..=10).map(|i| i * 100).collect::<Vec<_>>(), "{}", run.show());
    for &(epoch, loss) in &logged {
        assert!(
            loss.is_finite() && loss > 0.0 && loss < 1.0,
            "epoch {epoch}: loss {loss} is no MSE of values in [0, 1]"
        );
    }

    let (final_loss, initial_loss) = Run::final_line(&run.stdout);
    assert!(final_loss < initial_loss, "1000 epochs lower the loss\n{}", run.show());
    assert!((final_loss - logged[9].1).abs() < 1e-3, "the final loss is near the last logged one\n{}", run.show());
}

#[test]
fn device_cpu_trains_on_the_cpu() {
    let run = wgpu_mlp(&["--device", "cpu", "--epochs", "20", "--log-every", "10"]);
    assert_success(&run);
    assert_eq!(run.stdout.lines().next(), Some("device: cpu"), "{}", run.show());
    assert!(!run.stderr.contains("notice"), "cpu was asked for, nothing fell back\n{}", run.show());
    let epochs: Vec<usize> = Run::epochs(&run.stdout).iter().map(|&(epoch, _)| epoch).collect();
    assert_eq!(epochs, [10, 20], "{}", run.show());
    let (final_loss, initial_loss) = Run::final_line(&run.stdout);
    assert!(final_loss < initial_loss, "{}", run.show());
}

#[test]
fn json_is_one_object_describing_the_run() {
    let run = wgpu_mlp(&words(
        "--device cpu --json --layers 10,5,1 --samples 64 --batch-size 16 --lr 0.5 --epochs 40 --log-every 10 --seed 3",
    ));
    assert_success(&run);
    assert_eq!(run.stdout.trim().lines().count(), 1, "one line of JSON\n{}", run.show());
    let json = run.json();

    assert_eq!(json["device"], "cpu", "{json}");
    assert!(json["adapter"].is_null(), "no adapter on the cpu: {json}");
    assert_eq!(json["layers"], serde_json::json!([10, 5, 1]), "{json}");
    assert_eq!(json["samples"], 64, "{json}");
    assert_eq!(json["batch_size"], 16, "{json}");
    assert_eq!(json["epochs"], 40, "{json}");
    assert_eq!(json["steps"], 40 * 4, "four batches of 16 per epoch: {json}");
    assert_eq!(number(&json, "lr"), 0.5, "{json}");
    assert_eq!(json["seed"], 3, "{json}");

    let (initial, last) = (number(&json, "initial_loss"), number(&json, "final_loss"));
    assert!(initial.is_finite() && last.is_finite(), "{json}");
    assert!(last < initial, "lr 0.5 for 160 steps learns something: {json}");
    for key in ["seconds", "steps_per_second"] {
        let value = number(&json, key);
        assert!(value.is_finite() && value >= 0.0, "{key} = {value}: {json}");
    }
    for key in ["cpu_final_loss", "max_abs_param_diff"] {
        assert!(json.get(key).is_none(), "{key} appears only with --verify: {json}");
    }

    // Progress went to stderr, so stdout could hold only the JSON.
    assert!(run.stderr.contains("device: cpu"), "{}", run.show());
    assert_eq!(Run::epochs(&run.stderr).len(), 4, "{}", run.show());
}

#[test]
fn verify_on_the_cpu_is_exact() {
    let run = wgpu_mlp(&["--device", "cpu", "--json", "--verify", "--epochs", "30", "--batch-size", "32"]);
    assert_success(&run);
    let json = run.json();
    assert_eq!(number(&json, "cpu_final_loss"), number(&json, "final_loss"), "{json}");
    assert_eq!(number(&json, "max_abs_param_diff"), 0.0, "the same code from the same start: {json}");
}

#[test]
fn verify_on_the_gpu_matches_the_cpu_reference() {
    let Some(adapter) = gpu_or_skip() else { return };
    // Odd sizes and a short last batch (50 = 3 x 16 + 2) exercise the bounds guards.
    let run = wgpu_mlp(&words(
        "--device gpu --json --verify --layers 7,13,3 --samples 50 --batch-size 16 --lr 0.3 --epochs 25 --log-every 10",
    ));
    assert_success(&run);
    let json = run.json();
    assert_eq!(json["device"], "gpu", "{json}");
    assert_eq!(json["adapter"], adapter, "{json}");
    assert_eq!(json["layers"], serde_json::json!([7, 13, 3]), "{json}");
    assert_eq!(json["epochs"], 25, "{json}");

    let diff = number(&json, "max_abs_param_diff");
    assert!(diff.is_finite() && diff < GPU_PARAM_ATOL, "max |gpu - cpu| parameter {diff} >= {GPU_PARAM_ATOL}: {json}");
    let (gpu_loss, cpu_loss) = (number(&json, "final_loss"), number(&json, "cpu_final_loss"));
    assert!((gpu_loss - cpu_loss).abs() <= GPU_LOSS_ATOL, "final loss gpu {gpu_loss} cpu {cpu_loss}: {json}");
    assert!(gpu_loss < number(&json, "initial_loss"), "{json}");
}

#[test]
fn zero_epochs_report_the_initial_loss() {
    for device in devices() {
        let run = wgpu_mlp(&["--device", device, "--epochs", "0", "--json"]);
        assert_success(&run);
        let json = run.json();
        assert_eq!(json["device"], device, "{json}");
        assert_eq!(json["epochs"], 0, "{json}");
        assert_eq!(json["steps"], 0, "{json}");
        let initial = number(&json, "initial_loss");
        assert!(initial.is_finite(), "{json}");
        assert_eq!(number(&json, "final_loss"), initial, "no step changed the parameters: {json}");

        let run = wgpu_mlp(&["--device", device, "--epochs", "0"]);
        assert_success(&run);
        assert!(Run::epochs(&run.stdout).is_empty(), "no epoch ran\n{}", run.show());
        let (final_loss, initial_loss) = Run::final_line(&run.stdout);
        assert_eq!(final_loss, initial_loss, "{}", run.show());
    }
}

#[test]
fn bad_input_exits_2_with_a_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["--layers", ""], "--layers"),
        (&["--layers", "10"], "--layers"),
        (&["--layers", "10,0,1"], "--layers"),
        (&["--layers", "10,x,1"], "--layers"),
        (&["--lr", "0"], "--lr"),
        (&["--lr=-1"], "--lr"),
        (&["--lr", "nan"], "--lr"),
        (&["--lr", "inf"], "--lr"),
        (&["--batch-size", "0"], "--batch-size"),
        (&["--samples", "0"], "--samples"),
        (&["--log-every", "0"], "--log-every"),
        (&["--device", "tpu"], "--device"),
        (&["--activation", "leaky-relu", "--negative-slope=-0.1"], "--negative-slope"),
        (&["--activation", "leaky-relu", "--negative-slope", "1"], "--negative-slope"),
        (&["--activation", "leaky-relu", "--negative-slope", "nan"], "--negative-slope"),
        (&["--activation", "leaky-relu", "--negative-slope", "inf"], "--negative-slope"),
        (&["--negative-slope", "0.1"], "--negative-slope 0.1 applies to --activation leaky-relu"),
        (&["--activation", "gelu", "--negative-slope", "0.1"], "these hidden layers are gelu"),
    ];
    let mut problems = Vec::new();
    for (case, fragment) in cases {
        // Short and on the cpu, should a case wrongly be accepted.
        let mut args = case.to_vec();
        args.extend(["--epochs", "1"]);
        if !case.contains(&"--device") {
            args.extend(["--device", "cpu"]);
        }
        problems.extend(bad_input_problem(&wgpu_mlp(&args), fragment));
    }
    assert_no_problems(problems);
}

/// Each of these needs more bytes than any machine can address (or more than
/// a usize holds), so the allocation fails at once on every host. (A model of
/// tens of GB, such as `--layers 100000000,100000000,1`, would be refused on a
/// small machine but filled with random numbers for minutes on a large one.)
#[test]
fn a_model_too_large_for_host_memory_exits_2() {
    let cases: &[&[&str]] = &[
        &["--layers", "100000000000000,1"],          // the input data: 100 x 1e14 floats
        &["--layers", "1,1,100000000000000,1"],      // a weight matrix: 1 x 1e14 floats
        &["--layers", "10,1,3000000000000000000,1"], // 3e18 floats: the byte count overflows
    ];
    let mut problems = Vec::new();
    for case in cases {
        let mut args = case.to_vec();
        args.extend(["--device", "cpu", "--epochs", "1"]);
        problems.extend(bad_input_problem(&wgpu_mlp(&args), "memory"));
    }
    assert_no_problems(problems);
}

/// The activations of one full batch are checked against the adapter's limits
/// before anything is allocated on it, and the error names the limit.
#[test]
fn a_batch_over_the_adapters_limits_exits_2_naming_the_limit() {
    let Some(adapter) = gpu_or_skip() else { return };
    let mut cases: Vec<(&[&str], &str)> = Vec::new();
    if adapter.contains("llvmpipe") {
        // 10000 x 4000 floats = 160 MB, above lavapipe's 128 MiB per storage binding.
        cases.push((&["--layers", "10,4000,1", "--samples", "10000"], "lavapipe's 128 MiB binding"));
    }
    if adapter.contains("(Vulkan,") {
        // 110000 x 10000 floats = 4.4 GB, above any Vulkan adapter's
        // maxStorageBufferRange, a u32.
        cases.push((&["--layers", "10,10000,1", "--samples", "110000"], "a 32-bit binding range"));
    }
    if cases.is_empty() {
        eprintln!("skipped: no case known to exceed the limits of {adapter}");
        return;
    }
    let mut problems = Vec::new();
    for (case, why) in cases {
        let mut args = case.to_vec();
        args.extend(["--device", "gpu", "--epochs", "1"]);
        let run = wgpu_mlp(&args);
        problems.extend(bad_input_problem(&run, "max_").map(|p| format!("over {why}: {p}")));
    }
    assert_no_problems(problems);
}

/// WGPU_ADAPTER_NAME naming no adapter is how a machine without a GPU looks
/// to `--device gpu` (a failure, exit 1) and to `--device auto` (a notice and
/// the CPU), on any machine.
#[test]
fn no_matching_adapter_fails_gpu_and_falls_back_on_auto() {
    let env = [("WGPU_ADAPTER_NAME", "no-such-adapter-anywhere")];

    let run = wgpu_mlp_env(&["--device", "gpu", "--epochs", "1"], &env);
    assert_no_panic(&run);
    assert_eq!(run.code, Some(1), "no adapter is not bad input\n{}", run.show());
    assert!(run.stderr.contains("error") && run.stderr.contains("WGPU_ADAPTER_NAME"), "{}", run.show());
    assert!(run.stdout.trim().is_empty(), "{}", run.show());

    let run = wgpu_mlp_env(&["--device", "auto", "--epochs", "1", "--json"], &env);
    assert_success(&run);
    assert!(run.stderr.contains("notice"), "the fallback is announced\n{}", run.show());
    assert_eq!(run.json()["device"], "cpu", "{}", run.show());
}

#[test]
fn help_lists_the_flags_and_version_names_the_crate() {
    let run = wgpu_mlp(&["--help"]);
    assert_success(&run);
    for flag in words("--layers --samples --lr --epochs --seed --batch-size --log-every --device --verify --json") {
        assert!(run.stdout.contains(flag), "--help does not mention {flag}\n{}", run.show());
    }

    let run = wgpu_mlp(&["--version"]);
    assert_success(&run);
    assert_eq!(run.stdout.trim(), format!("wgpu-mlp {}", env!("CARGO_PKG_VERSION")), "{}", run.show());
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn bad_data_inputs_exit_2_naming_the_problem() {
    let dir = scratch("bad-data");
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        format!("csv:{}", path.display())
    };
    let good = file("good.csv", "a,b,label\n0.1,0.2,0\n0.3,0.4,1\n0.5,0.6,2\n0.7,0.8,1\n");
    let ragged = file("ragged.csv", "1,2,0\n3,4\n");
    let text = file("text.csv", "a,b,label\n1,2,0\n3,oops,1\n");
    let nan = file("nan.csv", "1,2,0\n3,NaN,1\n");
    let not_binary = file("not-binary.csv", "a,b,y\n0.1,0.2,0\n0.3,0.4,1.5\n0.5,0.6,1\n");
    let binary = file("binary.csv", "a,b,y\n0.1,0.2,0\n0.3,0.4,1\n0.5,0.6,1\n0.7,0.8,0\n");
    let no_dir = "idx:/nonexistent/wgpu-mlp-idx".to_string();
    let classify = ["--task", "classify", "--test-fraction", "0"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--data", "csv:/nonexistent/wgpu-mlp.csv"], "cannot read /nonexistent/wgpu-mlp.csv"),
        (vec!["--data", &no_dir], "is not a folder"),
        (vec!["--data", &ragged], "line 2 has 2 fields"),
        (vec!["--data", &text], "line 3, column 1 (b): 'oops'"),
        (vec!["--data", &nan], "line 2, column 1: a missing value ('NaN'); --missing mean, median or drop"),
        (vec!["--data", &good, "--target", "price"], "no column named 'price'"),
        (vec!["--data", &good, "--target", "7"], "target column 7 does not exist"),
        ([vec!["--data", &good, "--layers", "2,4,2"], classify.to_vec()].concat(), "label 2, outside the 2 classes"),
        ([vec!["--data", &good, "--layers", "5,4,3"], classify.to_vec()].concat(), "does not fit the data"),
        ([vec!["--data", &good, "--loss", "cross-entropy"], vec!["--test-fraction", "0"]].concat(), "class targets"),
        (vec!["--data", "parquet:x"], "--data"),
        (vec!["--data", &good, "--test-fraction", "1.5"], "--test-fraction"),
        (vec!["--data", &good, "--samples", "10"], "--samples applies to --data seed only"),
        (vec!["--target", "0"], "--target applies to --data csv:PATH only"),
        (vec!["--output", "softmax", "--loss", "mse"], "go together"),
        (vec!["--optimizer", "momentum", "--momentum", "1.5"], "--momentum"),
        (vec!["--optimizer", "adam", "--beta2", "1"], "--beta1 and --beta2"),
        (vec!["--weight-decay=-1"], "--weight-decay"),
        (vec!["--activation", "swish"], "--activation"),
        (
            vec!["--data", &not_binary, "--loss", "bce"],
            "line 3, column 2 (y): the target 1.5 is outside [0, 1], which --loss bce needs",
        ),
        (
            [vec!["--data", &good, "--loss", "bce"], classify.to_vec()].concat(),
            "--loss bce takes a target in [0, 1] per output (--task regress)",
        ),
        (vec!["--data", &binary, "--loss", "bce", "--output", "identity"], "--loss bce needs --output sigmoid"),
        (vec!["--data", &binary, "--loss", "bce", "--scale-target", "standard"], "does not apply to --loss bce"),
    ];
    let mut problems = Vec::new();
    for (case, fragment) in &cases {
        let mut args = case.clone();
        args.extend(["--epochs", "1", "--device", "cpu"]);
        problems.extend(bad_input_problem(&wgpu_mlp(&args), fragment));
    }
    assert_no_problems(problems);
}

#[test]
fn a_loss_that_overflows_stops_naming_the_epoch() {
    // Targets near f32::MAX make the squared error infinite in the first epoch.
    let dir = scratch("overflow");
    let path = dir.join("huge.csv");
    std::fs::write(&path, "1,3e38\n2,-3e38\n3,3e38\n").unwrap();
    let data = format!("csv:{}", path.display());
    for device in devices() {
        let args = ["--data", &data, "--scale", "none", "--test-fraction", "0", "--epochs", "3", "--device", device];
        let run = wgpu_mlp(&args);
        assert_no_panic(&run);
        assert_eq!(run.code, Some(1), "a non-finite loss is not bad input\n{}", run.show());
        assert!(run.stderr.contains("the training loss became inf at epoch 1"), "{}", run.show());
    }
}

#[test]
fn csv_classification_reports_accuracy_and_test_metrics() {
    let dir = scratch("classes");
    let path = dir.join("blobs.csv");
    // Two well-separated classes: x around (0, 0) or (4, 4).
    let mut text = String::from("x0,x1,class\n");
    for i in 0..60 {
        let (shift, label) = if i % 2 == 0 { (0.0, 0) } else { (4.0, 1) };
        let jitter = (i as f64 * 0.37).sin();
        text += &format!("{},{},{label}\n", shift + jitter, shift - jitter);
    }
    std::fs::write(&path, text).unwrap();
    let data = format!("csv:{}", path.display());
    for device in devices() {
        let args = [
            "--data", &data, "--task", "classify", "--hidden", "8", "--lr", "0.05", "--epochs", "30", "--device",
            device, "--json",
        ];
        let run = wgpu_mlp(&args);
        assert_success(&run);
        let json = run.json();
        assert_eq!(json["layers"], serde_json::json!([2, 8, 2]), "sizes come from the data with --hidden");
        assert_eq!(
            (json["samples"].as_u64(), json["val_samples"].as_u64(), json["test_samples"].as_u64()),
            (Some(40), Some(4), Some(16)),
            "25% held out for testing, then 10% of the rest for validation, rounded per class"
        );
        assert_eq!(json["epochs_run"], 30);
        assert!(number(&json, "train_accuracy") >= 0.95, "{}", run.show());
        assert!(number(&json, "test_accuracy") >= 0.95, "{}", run.show());
        assert!(number(&json, "test_loss") < 0.3, "{}", run.show());
        assert_eq!(json["history"].as_array().map(Vec::len), Some(30));
    }
}

/// Two 0/1 targets per row (multi-label): y0 when x0 > x1, y1 when x0 + x1 > 1.
fn multi_label_csv(dir: &std::path::Path) -> String {
    let mut text = String::from("x0,x1,y0,y1\n");
    for i in 0..80 {
        let (x0, x1) = (((i * 37) % 80) as f64 / 80.0, ((i * 53 + 11) % 80) as f64 / 80.0);
        text += &format!("{x0},{x1},{},{}\n", u8::from(x0 > x1), u8::from(x0 + x1 > 1.0));
    }
    let path = dir.join("labels.csv");
    std::fs::write(&path, text).unwrap();
    format!("csv:{}", path.display())
}

#[test]
fn bce_learns_multi_label_targets_and_predicts_probabilities() {
    let dir = scratch("bce");
    let data = multi_label_csv(&dir);
    let common = ["--data", &data, "--target", "y0,y1"];
    for device in devices() {
        // GELU below, which the fused path takes too (its z kept in the pool).
        let paths: &[&str] = if device == "gpu" { &["layered", "fused"] } else { &["auto"] };
        for path in paths {
            let out = dir.join(format!("run-{device}-{path}"));
            let flags = [
                "--loss",
                "bce",
                "--activation",
                "gelu",
                "--hidden",
                "16",
                "--lr",
                "0.02",
                "--epochs",
                "60",
                "--no-shuffle",
                "--val-fraction",
                "0",
                "--device",
                device,
                "--path",
                path,
                "--json",
                "--quiet",
            ];
            let run = wgpu_mlp(&[&common[..], &flags, &["--out", out.to_str().unwrap()]].concat());
            assert_success(&run);
            let json = run.json();
            let what = format!("{device} {path}");
            if device == "gpu" {
                let adapter = json["adapter"].as_str().unwrap_or_default();
                assert_eq!(adapter.ends_with(" fused"), *path == "fused", "{what}: {adapter}");
            }
            assert_eq!(json["layers"], serde_json::json!([2, 16, 2]), "{what}");
            assert!(json["train_accuracy"].is_null() && json["test_accuracy"].is_null(), "{what}: no accuracy");
            let (initial, last) = (number(&json, "initial_loss"), number(&json, "final_loss"));
            assert!(last < 0.6 * initial, "{what}: the loss fell from {initial} to {last}\n{}", run.show());

            let checkpoint = json["checkpoint"].as_str().expect("the last epoch is saved").to_string();
            let predictions = dir.join(format!("predictions-{device}-{path}.csv"));
            let predict = ["predict", "--checkpoint", &checkpoint, "--device", device];
            assert_success(&wgpu_mlp(&[&predict[..], &common[..], &["--out", predictions.to_str().unwrap()]].concat()));
            let text = std::fs::read_to_string(&predictions).unwrap();
            assert!(text.starts_with("output0,output1\n"), "{text}");
            let probabilities: Vec<f64> =
                text.lines().skip(1).flat_map(|l| l.split(',').map(|f| f.parse::<f64>().unwrap())).collect();
            assert_eq!(probabilities.len(), 160, "{what}: two answers for each of the 80 rows");
            assert!(probabilities.iter().all(|p| (0.0..=1.0).contains(p)), "{what}: probabilities, not logits");

            let eval = wgpu_mlp(&[&["eval", "--checkpoint", &checkpoint], &common[..], &["--json"]].concat());
            assert_success(&eval);
            let eval = eval.json();
            assert!(eval["accuracy"].is_null(), "{what}: {eval}");
            let (got, want) = (number(&eval, "loss"), number(&json, "test_loss"));
            assert!((got - want).abs() <= 1e-5 * want, "{what}: eval loss {got}, training's test loss {want}");
        }
    }
}

#[test]
fn adapters_lists_what_wgpu_finds() {
    let run = wgpu_mlp(&["adapters", "--json"]);
    assert_success(&run);
    let adapters: Value = serde_json::from_str(run.stdout.trim()).expect("JSON on stdout");
    let list = adapters.as_array().expect("a JSON array");
    if let Some(adapter) = gpu_adapter() {
        let names: Vec<&str> = list.iter().filter_map(|a| a["name"].as_str()).collect();
        assert!(names.iter().any(|name| adapter.contains(name)), "{adapter} among {names:?}");
        for key in [
            "backend",
            "device_type",
            "driver",
            "max_storage_buffer_binding_size",
            "max_compute_workgroup_storage_size",
        ] {
            assert!(list.iter().all(|a| !a[key].is_null()), "{key} missing\n{}", run.show());
        }
        if list.iter().all(|a| a["device_type"] == "Cpu") {
            assert!(run.stderr.contains("only software adapters"), "{}", run.show());
        }
    }
    let text = wgpu_mlp(&["adapters"]);
    assert_success(&text);
    assert_eq!(text.stdout.lines().filter(|l| !l.starts_with(' ')).count(), list.len(), "{}", text.show());
}

fn tensor_bytes(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<u8>)> =
        file.tensors().into_iter().map(|(name, view)| (name, view.data().to_vec())).collect();
    tensors.sort();
    tensors
}

#[test]
fn a_run_folder_holds_config_metrics_plot_and_checkpoints_and_resumes_exactly() {
    let dir = scratch("run-folder");
    let data = three_classes(&dir);
    for device in devices() {
        let whole = dir.join(format!("whole-{device}"));
        let common = ["--data", &data, "--task", "classify", "--hidden", "6", "--batch-size", "8", "--device", device];
        let run = wgpu_mlp(
            &[&common[..], &["--epochs", "4", "--save-every", "2", "--out", whole.to_str().unwrap()]].concat(),
        );
        assert_success(&run);
        let config: Value = serde_json::from_str(&std::fs::read_to_string(whole.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["layers"], serde_json::json!([4, 6, 3]));
        assert_eq!(config["crate_version"], env!("CARGO_PKG_VERSION"));
        let metrics = std::fs::read_to_string(whole.join("metrics.csv")).unwrap();
        let lines: Vec<&str> = metrics.lines().collect();
        assert_eq!(
            lines[0],
            "epoch,train_loss,val_loss,train_accuracy,val_accuracy,val_mae,val_rmse,val_r2,lr,epsilon,seconds"
        );
        assert_eq!(lines.len(), 5, "a row per epoch:\n{metrics}");
        // Every column but a regression's errors (5 to 7) and epsilon (9), which only DP-SGD runs have.
        let filled =
            |line: &str| line.split(',').enumerate().all(|(i, f)| (5..=7).contains(&i) || i == 9 || !f.is_empty());
        assert!(lines[4].starts_with("4,") && filled(lines[4]), "{metrics}");
        assert!(std::fs::read_to_string(whole.join("loss.svg")).unwrap().contains("<svg"));
        for epoch in [2, 4] {
            assert!(whole.join(format!("checkpoint-epoch{epoch}.safetensors")).is_file(), "epoch {epoch} saved");
        }

        // 2 epochs, resume, 2 more: the same bits as 4 in one go.
        let resumed = dir.join(format!("resumed-{device}"));
        let half = whole.join("checkpoint-epoch2.safetensors");
        let run = wgpu_mlp(
            &[&common[..], &["--epochs", "4", "--resume", half.to_str().unwrap(), "--out", resumed.to_str().unwrap()]]
                .concat(),
        );
        assert_success(&run);
        assert!(run.stdout.contains("resuming from") && run.stdout.contains("after epoch 2"), "{}", run.show());
        assert_eq!(
            tensor_bytes(&resumed.join("checkpoint-epoch4.safetensors")),
            tensor_bytes(&whole.join("checkpoint-epoch4.safetensors")),
            "on {device}"
        );

        // A checkpoint of another model, or a damaged one, is refused.
        let other = wgpu_mlp(
            &[&common[..4], &["--hidden", "7", "--device", device, "--resume", half.to_str().unwrap()]].concat(),
        );
        assert!(bad_input_problem(&other, "layers 4,6,3").is_none(), "{}", other.show());
        let damaged = dir.join("damaged.safetensors");
        std::fs::write(&damaged, &std::fs::read(&half).unwrap()[..100]).unwrap();
        let run = wgpu_mlp(&[&common[..], &["--resume", damaged.to_str().unwrap()]].concat());
        assert!(bad_input_problem(&run, "not a valid checkpoint").is_none(), "{}", run.show());
    }
}

#[test]
fn eval_and_predict_agree_with_the_training_run() {
    let dir = scratch("eval");
    let data = three_classes(&dir);
    let out = dir.join("run");
    let common = ["--data", &data, "--task", "classify"];
    let run = wgpu_mlp(
        &[
            &common[..],
            &["--hidden", "6", "--epochs", "3", "--device", "cpu", "--json", "--out", out.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_success(&run);
    let trained = run.json();
    let checkpoint = trained["checkpoint"].as_str().expect("the last epoch is saved").to_string();
    for device in devices() {
        let eval =
            wgpu_mlp(&[&["eval", "--checkpoint", &checkpoint], &common[..], &["--device", device, "--json"]].concat());
        assert_success(&eval);
        let eval = eval.json();
        assert_eq!(eval["rows"], trained["test_samples"], "the test rows of the training run");
        let (got, want) = (number(&eval, "loss"), number(&trained, "test_loss"));
        assert!((got - want).abs() <= 1e-5 * want.abs(), "{device}: eval loss {got}, training's test loss {want}");
        assert_eq!(eval["accuracy"], trained["test_accuracy"], "{device}");

        let predictions = dir.join(format!("predictions-{device}.csv"));
        let run = wgpu_mlp(
            &[
                // The held-out rows, as eval scores them (predict's default is every row).
                &["predict", "--checkpoint", &checkpoint, "--split", "test"],
                &common[..],
                &["--device", device, "--out", predictions.to_str().unwrap()],
            ]
            .concat(),
        );
        assert_success(&run);
        let text = std::fs::read_to_string(&predictions).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "class,p0,p1,p2");
        assert_eq!(lines.len() as u64 - 1, trained["test_samples"].as_u64().unwrap());
        for line in &lines[1..] {
            let fields: Vec<f64> = line.split(',').map(|f| f.parse().unwrap()).collect();
            let probabilities = &fields[1..];
            assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{line}");
            let best = (0..3).max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b])).unwrap();
            assert_eq!(fields[0] as usize, best, "{line}");
        }
    }
}

#[test]
fn quiet_prints_no_epoch_lines() {
    let run = wgpu_mlp(&["--device", "cpu", "--epochs", "300", "--quiet"]);
    assert_success(&run);
    assert!(!run.stdout.lines().any(|l| l.starts_with("epoch ")), "{}", run.show());
    assert!(run.stdout.contains("final loss"), "{}", run.show());
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_says_how_to_resume() {
    let dir = scratch("interrupt");
    let data = three_classes(&dir);
    let out = dir.join("run");
    let args = ["--data", &data, "--task", "classify", "--hidden", "6", "--device", "cpu", "--batch-size", "4"];
    let child = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"))
        .args(args)
        .args(["--epochs", "100000000", "--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Wait until a few epochs are on disk, then press Ctrl-C.
    let metrics = out.join("metrics.csv");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |t| t.lines().count()) < 3 {
        assert!(started.elapsed().as_secs() < 60, "no epochs after 60 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(kill.success());
    let output = child.wait_with_output().expect("the run ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted after epoch") && stderr.contains("--resume"), "{stderr}");
    let epoch: usize =
        stderr.split("interrupted after epoch ").nth(1).and_then(|t| t.split(';').next()).unwrap().parse().unwrap();
    let saved = out.join(format!("checkpoint-epoch{epoch}.safetensors"));
    assert!(saved.is_file(), "{stderr}");
    let rows = std::fs::read_to_string(&metrics).unwrap().lines().count() - 1;
    assert_eq!(rows, epoch, "metrics.csv holds every epoch up to the interrupt");

    let resumed = dir.join("resumed");
    let more = (epoch + 2).to_string();
    let run = wgpu_mlp(
        &[&args[..], &["--epochs", &more, "--resume", saved.to_str().unwrap(), "--out", resumed.to_str().unwrap()]]
            .concat(),
    );
    assert_success(&run);
    assert!(resumed.join(format!("checkpoint-epoch{more}.safetensors")).is_file(), "{}", run.show());
}

/// The objects of a `bench --json` run, one per case and device, by case name.
fn bench_rows(args: &[&str]) -> Vec<Value> {
    let run = wgpu_mlp(args);
    assert_success(&run);
    let rows: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e})\n{}", run.show()));
    let rows = rows.as_array().unwrap_or_else(|| panic!("not a JSON array\n{}", run.show())).clone();
    for row in &rows {
        for key in ["us_per_step", "gflops", "dispatches_per_step", "submits_per_step", "readbacks_per_step"] {
            assert!(number(row, key) >= 0.0, "{key} in {row}");
        }
        assert!(number(row, "us_per_step") > 0.0, "{row}");
        assert!(row["gpu_bytes"].as_u64().is_some(), "{row}");
    }
    rows
}

fn bench_row<'a>(rows: &'a [Value], case: &str, device: &str) -> &'a Value {
    rows.iter()
        .find(|row| row["case"] == case && row["device"] == device)
        .unwrap_or_else(|| panic!("no {case} on {device} in {rows:?}"))
}

#[test]
fn bench_json_reports_each_case_with_the_dispatches_it_records() {
    let cpu = bench_rows(&["bench", "--json", "--device", "cpu", "--case", "seed", "--case", "matmul:33,17,65"]);
    assert_eq!(cpu.len(), 2, "{cpu:?}");
    let matmul = bench_row(&cpu, "matmul:33,17,65", "cpu");
    assert!(number(matmul, "gflops") > 0.0, "{matmul}");
    let seed = bench_row(&cpu, "seed", "cpu");
    assert!(seed["kernel"].is_null() && seed["matmul_kernel"].is_null() && seed["adapter"].is_null(), "{seed}");
    assert!(number(seed, "matmul_us_per_step") > 0.0, "{seed}");

    let gpu_only = wgpu_mlp(&["bench", "--device", "cpu", "--case", "dispatch"]);
    assert_eq!(gpu_only.code, Some(2), "{}", gpu_only.show());
    assert!(gpu_only.stderr.contains("GPU only"), "{}", gpu_only.show());

    let bad = wgpu_mlp(&["bench", "--case", "matmul:3,0,2"]);
    assert_eq!(bad.code, Some(2), "{}", bad.show());
    assert!(bad.stderr.contains("three sizes >= 1"), "{}", bad.show());

    if gpu_or_skip().is_none() {
        return;
    }
    for matmul_kernel in ["registers", "workgroup"] {
        let args = ["bench", "--json", "--device", "gpu", "--kernel", "layered", "--matmul", matmul_kernel];
        let cases = ["--case", "seed", "--case", "dispatch", "--case", "matmul:33,17,65"];
        let rows = bench_rows(&[&args[..], &cases[..]].concat());
        assert_eq!(rows.len(), 3, "{rows:?}");
        // A layered step of an L-layer net with MSE and SGD, counted from the
        // plan: 2 gathers (x, y), L forward matmuls, the loss gradient and its
        // total, the output activation's derivative, per layer a weight and a
        // bias gradient, L - 1 input gradients, and one update.
        let layers = 2.0;
        let expected = 2.0 + layers + 2.0 + 1.0 + 2.0 * layers + (layers - 1.0) + 1.0;
        let seed = bench_row(&rows, "seed", "gpu");
        assert_eq!((seed["kernel"].as_str(), seed["matmul_kernel"].as_str()), (Some("layered"), Some(matmul_kernel)));
        assert_eq!(number(seed, "dispatches_per_step"), expected, "{seed}");
        assert!(number(seed, "matmul_us_per_step") > 0.0, "{seed}");
        // 64 steps per submit, plus one submit and one read-back to end each
        // timed run of at least 10 steps.
        assert!(number(seed, "submits_per_step") <= 1.0 / 64.0 + 0.1 + 1e-9, "{seed}");
        assert!(number(seed, "readbacks_per_step") <= 0.1 + 1e-9, "{seed}");
        assert_eq!(number(bench_row(&rows, "dispatch", "gpu"), "dispatches_per_step"), 1.0);
        let matmul = bench_row(&rows, "matmul:33,17,65", "gpu");
        assert_eq!(number(matmul, "dispatches_per_step"), 1.0, "{matmul}");
        assert_eq!(matmul["matmul_kernel"], matmul_kernel, "{matmul}");
    }
    let fused = bench_rows(&["bench", "--json", "--device", "gpu", "--case", "seed"]);
    let seed = bench_row(&fused, "seed", "gpu");
    assert_eq!(seed["kernel"], "fused", "{seed}");
    assert!(seed["matmul_kernel"].is_null() && seed["matmul_us_per_step"].is_null(), "{seed}");
    assert!(number(seed, "dispatches_per_step") < 0.1, "{seed}");
}

#[test]
fn bench_times_the_cpu_at_each_thread_count_and_refuses_a_bad_one() {
    let rows = bench_rows(&["bench", "--json", "--device", "cpu", "--case", "seed", "--threads", "1,2"]);
    let threads: Vec<_> = rows.iter().map(|row| row["threads"].as_u64()).collect();
    assert_eq!(threads, [Some(1), Some(2)], "{rows:?}");
    let zero = wgpu_mlp(&["bench", "--device", "cpu", "--case", "seed", "--threads", "0"]);
    assert_eq!(zero.code, Some(2), "{}", zero.show());
    assert_eq!(zero.stderr.lines().count(), 1, "{}", zero.show());
    assert!(zero.stderr.contains("--threads must be a thread count"), "{}", zero.show());
    let word = wgpu_mlp(&["bench", "--device", "cpu", "--case", "seed", "--threads", "two"]);
    assert_eq!(word.code, Some(2), "{}", word.show());
    assert!(word.stderr.contains("--threads"), "{}", word.show());
    let run = wgpu_mlp_env(&["--device", "cpu", "--epochs", "1"], &[("WGPU_MLP_THREADS", "lots")]);
    assert_eq!(run.code, Some(2), "{}", run.show());
    assert!(run.stderr.contains("WGPU_MLP_THREADS must be a thread count"), "{}", run.show());
}

#[test]
fn bench_reports_the_tuned_matmul_kernel_and_caches_it_per_adapter() {
    if gpu_or_skip().is_none() {
        return;
    }
    let cache = std::env::temp_dir().join(format!("wgpu-mlp-cli-tuning-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let file = cache.join("wgpu-mlp").join("matmul-tuning.json");
    // 455 k multiply-adds: above TUNED_MIN_MACS, so timed.
    let args = ["bench", "--json", "--device", "gpu", "--case", "matmul:100,70,65"];
    let env = [("XDG_CACHE_HOME", cache.to_str().unwrap())];
    let run = wgpu_mlp_env(&args, &env);
    assert_eq!(run.code, Some(0), "{}", run.show());
    let rows: Vec<Value> = serde_json::from_str(&run.stdout).unwrap();
    let kernel = bench_row(&rows, "matmul:100,70,65", "gpu")["matmul_kernel"].clone();
    let chosen = kernel.as_str().and_then(|k| k.strip_prefix("tuned: ")).unwrap_or_else(|| panic!("{kernel}"));
    // Whichever kernel measured fastest on this adapter, tile128 included.
    assert!(wgpu_mlp::gpu::MatmulKernel::ALL.iter().any(|k| k.name() == chosen), "{kernel}");
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["adapters"][0]["choices"]["m256.k256.n256.ta0.tb0"], chosen, "{written}");
    // A run reads the choice back: the file is as it was.
    let again = wgpu_mlp_env(&args, &env);
    assert_eq!(again.code, Some(0), "{}", again.show());
    assert_eq!(serde_json::from_slice::<Value>(&std::fs::read(&file).unwrap()).unwrap(), written);
    // Off, the device type picks, and nothing is written.
    let _ = std::fs::remove_dir_all(&cache);
    let off = wgpu_mlp_env(&args, &[env[0], ("WGPU_MLP_MATMUL_TUNING", "off")]);
    let rows: Vec<Value> = serde_json::from_str(&off.stdout).unwrap();
    let kernel = &bench_row(&rows, "matmul:100,70,65", "gpu")["matmul_kernel"];
    assert!(kernel == "registers" || kernel == "workgroup", "{kernel}");
    assert!(!file.exists(), "tuning off writes no cache");
}

/// A path the user got wrong exits 2; a file system or device that fails a
/// right path exits 1 (Error::Io). Both messages name the path. (Training
/// prints its header on stdout before it makes the run folder, so stdout is
/// not checked.)
#[test]
fn a_wrong_path_exits_2_and_a_failing_file_system_exits_1() {
    let assert_fails = |run: &Run, code: i32, fragment: &str| {
        assert_no_panic(run);
        assert_eq!(run.code, Some(code), "{}", run.show());
        assert!(run.stderr.contains(fragment), "wanted {fragment:?}\n{}", run.show());
    };
    let train = |out: &str| wgpu_mlp(&["--epochs", "1", "--device", "cpu", "--quiet", "--out", out]);
    let dir = scratch("io");
    let file = dir.join("a-file");
    std::fs::write(&file, "in the way").unwrap();

    // A regular file where the run folder's parent should be (NotADirectory).
    let under_file = file.join("run").display().to_string();
    assert_fails(&train(&under_file), 2, &format!("cannot create the run folder {under_file}"));
    let missing = dir.join("none.safetensors").display().to_string();
    let run = wgpu_mlp(&["export", "--checkpoint", &missing, "--out", "x.onnx"]);
    assert_fails(&run, 2, &format!("cannot read {missing}"));

    #[cfg(target_os = "linux")]
    {
        // Reading a process's memory at offset 0 (never mapped) fails with EIO.
        let run = wgpu_mlp(&["export", "--checkpoint", "/proc/self/mem", "--out", "x.onnx"]);
        assert_fails(&run, 1, "cannot read /proc/self/mem");
        // sysfs refuses new folders: EPERM for root, EACCES for others, EROFS
        // in a container. Skipped where /sys is not sysfs, so as not to make one.
        if std::path::Path::new("/sys/kernel").is_dir() {
            assert_fails(&train("/sys/wgpu-mlp-run"), 1, "cannot create the run folder /sys/wgpu-mlp-run");
        }
    }
}

/// Flags that would do nothing are refused (issue 11.13), and an unknown
/// WGPU_BACKEND is named (11.14), each with exit code 2.
#[test]
fn flags_that_do_not_apply_and_an_unknown_backend_exit_2() {
    let mut problems = Vec::new();
    for (args, fragment) in [
        (&["--device", "cpu", "--path", "fused", "--epochs", "1"][..], "--device cpu trains on the CPU"),
        (&["--device", "cpu", "--kernel", "layered", "--epochs", "1"][..], "--path layered"),
        (&["--device", "cpu", "--matmul", "registers", "--epochs", "1"][..], "--matmul registers"),
        (&["--device", "cpu", "--classes", "3", "--epochs", "1"][..], "--classes 3 applies to classification"),
    ] {
        problems.extend(bad_input_problem(&wgpu_mlp(args), fragment));
    }
    let bogus = wgpu_mlp_env(&["--device", "auto", "--epochs", "1"], &[("WGPU_BACKEND", "vulkan,bogus")]);
    problems.extend(bad_input_problem(&bogus, "WGPU_BACKEND=vulkan,bogus: 'bogus' is not a backend"));
    assert_no_problems(problems);
}
