//! Run folders, resume, config.json and the training command's output and
//! defaults (issue 15): each test runs the built binary, mostly on the CPU.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod binary;

use binary::{assert_success, command, wgpu_mlp_in, Run};

fn scratch(name: &str) -> PathBuf {
    binary::scratch("run-folders", name)
}

/// The folder named by a run's "run folder: DIR (...)" line.
fn folder_of(run: &Run) -> PathBuf {
    let line = run.stdout.lines().find_map(|l| l.strip_prefix("run folder: ")).expect("a run folder line");
    PathBuf::from(line.split(" (").next().unwrap())
}

fn run_in(cwd: &Path, args: &[&str]) -> Run {
    wgpu_mlp_in(cwd, args)
}

/// Exit code 2 with every one of `fragments` on stderr.
fn assert_bad_input(run: &Run, fragments: &[&str]) {
    assert_eq!(run.code, Some(2), "expected exit code 2\n{}", run.show());
    for fragment in fragments {
        assert!(run.stderr.contains(fragment), "stderr lacks {fragment:?}\n{}", run.show());
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// A 3-class table like iris: `rows` rows of 4 features and a label, the
/// classes apart enough to learn, written with `delimiter` after `preamble`.
fn iris_like(dir: &Path, rows: usize, delimiter: &str, preamble: &str) -> PathBuf {
    let mut text = preamble.to_string();
    for i in 0..rows {
        let class = i % 3;
        let wobble = |k: usize| ((i * 7 + k * 13) % 10) as f32 / 10.0;
        let fields: Vec<String> = (0..4)
            .map(|k| format!("{:.2}", class as f32 * 1.5 + wobble(k)))
            .chain(std::iter::once(class.to_string()))
            .collect();
        text += &(fields.join(delimiter) + "\n");
    }
    let path = dir.join(format!("iris-like-{}.csv", delimiter.escape_default()));
    std::fs::write(&path, text).unwrap();
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn resume_with_epochs_not_past_the_checkpoint_is_refused_before_the_folder() {
    let dir = scratch("resume-epochs");
    let first = dir.join("first");
    assert_success(&run_in(&dir, &["--device", "cpu", "--epochs", "3", "--out", path_str(&first)]));
    let checkpoint = first.join("checkpoint-epoch3.safetensors");
    for epochs in ["3", "2"] {
        let second = dir.join(format!("second-{epochs}"));
        let args =
            ["--device", "cpu", "--epochs", epochs, "--resume", path_str(&checkpoint), "--out", path_str(&second)];
        let run = run_in(&dir, &args);
        assert_bad_input(&run, &["epoch 3", "--epochs"]);
        assert!(!second.exists(), "no run folder is made\n{}", run.show());
    }
}

#[test]
fn a_data_mismatch_on_resume_says_what_differs() {
    let dir = scratch("resume-data");
    let csv = iris_like(&dir, 60, ",", "");
    let data = format!("csv:{}", csv.display());
    let first = dir.join("first");
    let base = ["--device", "cpu", "--data", &data, "--task", "classify", "--hidden", "4"];
    assert_success(&run_in(&dir, &[&base[..], &["--epochs", "1", "--out", path_str(&first)]].concat()));
    let checkpoint = first.join("checkpoint-epoch1.safetensors");
    let resume = ["--epochs", "2", "--resume", path_str(&checkpoint)];

    // Another seed splits the rows otherwise.
    let run = run_in(&dir, &[&base[..], &resume[..], &["--seed", "4", "--out", path_str(&dir.join("a"))]].concat());
    assert_bad_input(&run, &["its --seed is 0, this run's is 4", "--seed", "--test-fraction", "--skip-rows"]);
    // Another test fraction leaves another number of training rows.
    let run = run_in(
        &dir,
        &[&base[..], &resume[..], &["--test-fraction", "0.5", "--out", path_str(&dir.join("b"))]].concat(),
    );
    assert_bad_input(&run, &["39 training rows", "27", "--test-fraction", "--val-fraction"]);
    // Another scaling: the same shapes, other values; named as a flag to check.
    let run =
        run_in(&dir, &[&base[..], &resume[..], &["--scale", "minmax", "--out", path_str(&dir.join("c"))]].concat());
    assert_bad_input(&run, &["scale", "--scale"]);
    assert!(!run.stderr.contains("fingerprint is"), "no bare hashes\n{}", run.show());
}

#[test]
fn a_used_out_folder_is_refused_unless_overwrite_or_resume() {
    let dir = scratch("reuse");
    let out = dir.join("run");
    let train = |extra: &[&str]| {
        let args = [&["--device", "cpu", "--out", path_str(&out)][..], extra].concat();
        run_in(&dir, &args)
    };
    assert_success(&train(&["--epochs", "4", "--save-every", "2"]));
    let run = train(&["--epochs", "3"]);
    assert_bad_input(&run, &["--overwrite", "--resume"]);
    assert!(files(&out).contains(&"checkpoint-epoch4.safetensors".to_string()), "the earlier run is left alone");

    // --overwrite clears the earlier run's files first.
    assert_success(&train(&["--epochs", "3", "--overwrite"]));
    assert_eq!(
        files(&out),
        ["checkpoint-epoch3.safetensors", "config.json", "loss.png", "loss.svg", "metrics.csv"]
            .into_iter()
            .filter(|f| *f != "loss.png" || out.join("loss.png").exists())
            .collect::<Vec<_>>()
    );

    // A resume into the run's own folder keeps working.
    let checkpoint = out.join("checkpoint-epoch3.safetensors");
    assert_success(&train(&["--epochs", "5", "--resume", path_str(&checkpoint)]));
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 1 + 5, "epochs 1-3 kept, 4-5 added: {metrics}");

    // Anything a run does not write stops --overwrite, by name.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let run = train(&["--epochs", "1", "--overwrite"]);
    assert_bad_input(&run, &["notes.txt"]);
    assert!(out.join("metrics.csv").exists(), "nothing is cleared\n{}", run.show());
}

#[test]
fn runs_started_together_get_folders_of_their_own() {
    let dir = scratch("together");
    let children: Vec<_> = (0..4)
        .map(|_| {
            command(&dir, &["--device", "cpu", "--epochs", "1"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut folders: Vec<PathBuf> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            let run = Run::from_output(&["--device", "cpu", "--epochs", "1"], output);
            assert_success(&run);
            folder_of(&run)
        })
        .collect();
    folders.sort();
    folders.dedup();
    assert_eq!(folders.len(), 4, "one folder per run: {folders:?}");
    for folder in &folders {
        let names = files(&dir.join(folder));
        assert_eq!(names.iter().filter(|n| n.starts_with("checkpoint")).count(), 1, "{folder:?}: {names:?}");
    }
}

#[test]
fn config_json_holds_every_setting_as_given() {
    let dir = scratch("config");
    let csv = iris_like(&dir, 40, ",", "");
    let data = format!("csv:{}", csv.display());
    let out = dir.join("run");
    let args = [
        "--device",
        "cpu",
        "--data",
        &data,
        "--task",
        "classify",
        "--target",
        "4",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--lr",
        "0.001",
        "--weight-decay",
        "0.0001",
        "--test-fraction",
        "0.2",
        "--scale",
        "minmax",
        "--out",
        path_str(&out),
    ];
    assert_success(&run_in(&dir, &args));
    let text = std::fs::read_to_string(out.join("config.json")).unwrap();
    let config: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(config["scale"], "minmax", "{text}");
    assert_eq!(config["task"], "classify", "{text}");
    // Columns as the checkpoint's data.target writes them: indices without a header.
    assert_eq!(config["target"], serde_json::json!([4]), "{text}");
    assert_eq!(config["skip_rows"], 0, "{text}");
    assert_eq!(config["test_fraction"], 0.2, "{text}");
    assert_eq!(config["path"], "auto", "{text}");
    assert_eq!(config["matmul"], "auto", "{text}");
    assert_eq!(config["optimizer"], serde_json::json!({"kind": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}));
    assert!(text.contains("\"lr\": 0.001,"), "lr as given: {text}");
    assert!(text.contains("\"weight_decay\": 0.0001"), "weight decay as given: {text}");
}

#[test]
fn without_a_terminal_each_read_back_is_one_plain_line() {
    let dir = scratch("plain");
    let run = run_in(&dir, &["--device", "cpu", "--epochs", "6", "--log-every", "2"]);
    assert_success(&run);
    let epochs: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 3, "{}", run.show());
    assert!(!run.stdout.contains('\r') && !run.stderr.contains('\r'), "no bar drawing\n{}", run.show());
}

#[test]
fn the_last_epoch_loss_and_the_final_loss_say_what_each_is() {
    let dir = scratch("final");
    let run = run_in(&dir, &["--device", "cpu", "--epochs", "5"]);
    assert_success(&run);
    assert!(run.stdout.contains("last epoch loss"), "{}", run.show());
    assert!(run.stdout.contains("before each update"), "{}", run.show());
    assert!(run.stdout.contains("a full pass after training"), "{}", run.show());
}

#[test]
fn small_tables_get_a_batch_and_epochs_that_train() {
    let dir = scratch("small");
    let csv = iris_like(&dir, 150, ",", "");
    let data = format!("csv:{}", csv.display());
    let run = run_in(&dir, &["--device", "cpu", "--data", &data, "--task", "classify", "--json", "--quiet"]);
    assert_success(&run);
    let json = run.json();
    let batch = json["batch_size"].as_u64().unwrap();
    assert!((8..=16).contains(&batch), "a batch near a tenth of 112 rows: {json}");
    assert!(json["steps"].as_u64().unwrap() >= 500, "enough steps: {json}");
    assert!(json["test_accuracy"].as_f64().unwrap() > 0.9, "it learns: {json}");
    assert!(run.stderr.contains("a tenth of the"), "the header says why\n{}", run.show());
}

#[test]
fn csv_hints_metadata_lines_and_delimiters() {
    let dir = scratch("hints");
    // scikit-learn's metadata line (wine: 5 fields over rows of 14).
    let short = iris_like(&dir, 30, ",", "30,4\n");
    let run = run_in(&dir, &["--device", "cpu", "--data", &format!("csv:{}", short.display()), "--task", "classify"]);
    assert_bad_input(&run, &["--skip-rows 1"]);

    for delimiter in [";", "\t"] {
        let csv = iris_like(&dir, 30, delimiter, "");
        let data = format!("csv:{}", csv.display());
        let base = ["--device", "cpu", "--data", &data, "--task", "classify", "--epochs", "1", "--json", "--quiet"];
        let run = run_in(&dir, &base);
        assert_success(&run);
        assert_eq!(run.json()["layers"][0], 4, "detected {delimiter:?}\n{}", run.show());
        let run = run_in(&dir, &[&base[..], &["--delimiter", delimiter]].concat());
        assert_success(&run);
        assert_eq!(run.json()["layers"][0], 4, "given {delimiter:?}\n{}", run.show());
    }
}

#[test]
fn fused_trains_shuffled_batches_with_a_validation_split() {
    let dir = scratch("fused");
    let csv = iris_like(&dir, 30, ",", "");
    let data = format!("csv:{}", csv.display());
    let args = ["--device", "gpu", "--path", "fused", "--data", &data, "--task", "classify", "--test-fraction", "0"];
    let run = run_in(&dir, &[&args[..], &["--epochs", "3", "--json", "--quiet"]].concat());
    if run.code == Some(1) && run.stderr.contains("adapter") {
        eprintln!("skipped: no GPU adapter\n{}", run.show());
        return;
    }
    assert_success(&run);
    let json = run.json();
    assert!(json["adapter"].as_str().unwrap().ends_with(" fused"), "{json}");
    assert!(json["val_loss"].as_f64().is_some() && json["val_accuracy"].as_f64().is_some(), "{json}");
}
