//! The command line against hostile files and streams: an `--out` that is a
//! symlink, a FIFO or a device; a standard output that is full or closed; a
//! run resumed into its own folder; and inputs that must be refused, not
//! allocated, under a memory limit. Runs the built `wgpu-mlp` binary; no GPU.
//!
//! Every file here is one the test made in its own scratch folder. The only
//! device written to is /dev/null, and only by the test that checks it stays
//! a device (the bug it guards against was first shown with a FIFO and a
//! symlink, never with /dev/null).

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod binary;

use binary::{three_classes, Run};

fn scratch(name: &str) -> PathBuf {
    binary::scratch("hostile", name)
}

fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"));
    command.args(args).current_dir(std::env::temp_dir());
    command
}

/// Waits for `child` at most `limit`, killing it after that: a test that
/// hangs (a FIFO nobody opens) fails instead of blocking the suite.
fn finish(mut child: std::process::Child, args: &[&str], limit: Duration) -> Run {
    let started = Instant::now();
    while child.try_wait().expect("the child can be waited on").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run::from_output(args, child.wait_with_output().expect("the child's output"))
}

fn wgpu_mlp(args: &[&str]) -> Run {
    let child = command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary starts");
    finish(child, args, Duration::from_secs(120))
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

/// Trains one epoch into `dir/run` and returns the data flag and the checkpoint.
fn trained(dir: &Path) -> (String, String) {
    let data = three_classes(dir);
    let out = dir.join("run");
    let run = wgpu_mlp(&[
        "--data",
        &data,
        "--task",
        "classify",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_success(&run);
    (data, out.join("checkpoint-epoch1.safetensors").display().to_string())
}

fn predict_args<'a>(data: &'a str, checkpoint: &'a str) -> Vec<&'a str> {
    vec!["predict", "--checkpoint", checkpoint, "--data", data, "--task", "classify", "--device", "cpu"]
}

#[test]
fn predict_out_through_a_symlink_replaces_the_target_and_keeps_the_link() {
    let dir = scratch("symlink");
    let (data, checkpoint) = trained(&dir);
    let target = dir.join("target.csv");
    std::fs::write(&target, "the previous predictions\n").unwrap();
    let link = dir.join("link.csv");
    std::os::unix::fs::symlink("target.csv", &link).unwrap();

    let mut args = predict_args(&data, &checkpoint);
    args.extend(["--out", link.to_str().unwrap()]);
    let run = wgpu_mlp(&args);
    assert_success(&run);
    let kind = std::fs::symlink_metadata(&link).unwrap().file_type();
    assert!(kind.is_symlink(), "the link was replaced by a {kind:?}\n{}", run.show());
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.starts_with("class,p0,p1,p2\n"), "the target holds the predictions: {text:?}");

    // A dangling link: its target is created, the link kept.
    let dangling = dir.join("dangling.csv");
    std::os::unix::fs::symlink("not-yet.csv", &dangling).unwrap();
    let mut args = predict_args(&data, &checkpoint);
    args.extend(["--out", dangling.to_str().unwrap()]);
    assert_success(&wgpu_mlp(&args));
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    assert!(std::fs::read_to_string(dir.join("not-yet.csv")).unwrap().starts_with("class,"));
}

#[test]
fn predict_out_to_a_fifo_writes_into_it_and_keeps_it() {
    let dir = scratch("fifo");
    let (data, checkpoint) = trained(&dir);
    let fifo = dir.join("predictions.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());

    // The reader opens first; a writer that replaces the FIFO instead of
    // opening it leaves this thread blocked, and the test fails below.
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::fs::File::open(&reader_path).unwrap().read_to_string(&mut text).unwrap();
        text
    });
    let mut args = predict_args(&data, &checkpoint);
    args.extend(["--out", fifo.to_str().unwrap()]);
    let child = command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let run = finish(child, &args, Duration::from_secs(60));
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced by a {kind:?}\n{}", run.show());
    assert_success(&run);
    let text = reader.join().unwrap();
    assert!(text.starts_with("class,p0,p1,p2\n") && text.lines().count() > 1, "{text:?}");
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(names.iter().all(|n| !n.to_string_lossy().contains(".tmp-")), "no temporary left: {names:?}");
}

/// Writes `predict`'s CSV into a FIFO in `dir` and says whether the FIFO is
/// still one afterwards (and its reader got the CSV).
fn fifo_survives_predict(dir: &Path, data: &str, checkpoint: &str) -> bool {
    let fifo = dir.join("canary.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs").success());
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read_to_string(reader_path).unwrap_or_default());
    let mut args = predict_args(data, checkpoint);
    args.extend(["--out", fifo.to_str().unwrap()]);
    let child = command(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let run = finish(child, &args, Duration::from_secs(60));
    // A replaced FIFO leaves the reader blocked: do not join it then.
    run.code == Some(0)
        && std::fs::symlink_metadata(&fifo).is_ok_and(|m| m.file_type().is_fifo())
        && reader.join().is_ok_and(|text| text.starts_with("class,"))
}

/// The bug replaced /dev/null (as root) with a regular file. This test writes
/// to /dev/null only when the same binary has just left a FIFO in place (the
/// same code path as a device), so a regression fails on the canary instead
/// of breaking the machine's /dev/null.
#[test]
fn predict_out_to_dev_null_leaves_the_device_alone() {
    let null = Path::new("/dev/null");
    if !std::fs::metadata(null).is_ok_and(|m| m.file_type().is_char_device()) {
        eprintln!("skipped: /dev/null is not a character device here");
        return;
    }
    let dir = scratch("dev-null");
    let (data, checkpoint) = trained(&dir);
    assert!(fifo_survives_predict(&dir, &data, &checkpoint), "a FIFO is replaced: /dev/null is not tried");
    let mut args = predict_args(&data, &checkpoint);
    args.extend(["--out", "/dev/null"]);
    assert_success(&wgpu_mlp(&args));
    assert!(std::fs::metadata(null).unwrap().file_type().is_char_device(), "/dev/null is still a device");
}

#[test]
fn predict_out_to_a_folder_exits_2() {
    let dir = scratch("out-folder");
    let (data, checkpoint) = trained(&dir);
    let folder = dir.join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let mut args = predict_args(&data, &checkpoint);
    args.extend(["--out", folder.to_str().unwrap()]);
    let run = wgpu_mlp(&args);
    assert_no_panic(&run);
    assert_eq!(run.code, Some(2), "{}", run.show());
    assert!(run.stderr.contains(&format!("cannot write {}", folder.display())), "{}", run.show());
    assert!(folder.is_dir());
}

/// Runs `args` with /dev/full as standard output (opened for writing, never
/// created or truncated).
fn with_full_stdout(args: &[&str]) -> Option<Run> {
    let Ok(full) = OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full");
        return None;
    };
    let child = command(args).stdout(full).stderr(Stdio::piped()).spawn().unwrap();
    Some(finish(child, args, Duration::from_secs(120)))
}

/// The commands that write to stdout, each as its arguments: predict, eval
/// (plain and --json) and training (plain and --json), on a run trained in `dir`.
fn every_stdout_writer(dir: &Path) -> Vec<Vec<String>> {
    let (data, checkpoint) = trained(dir);
    // A run folder holds one run, so each training case has its own.
    let out = dir.join("train-run").display().to_string();
    let out_json = format!("{out}-json");
    let eval = ["eval", "--checkpoint", &checkpoint, "--data", &data, "--task", "classify", "--device", "cpu"];
    let cases: Vec<Vec<&str>> = vec![
        predict_args(&data, &checkpoint),
        eval.to_vec(),
        [&eval[..], &["--json"]].concat(),
        vec!["--device", "cpu", "--epochs", "3", "--out", &out],
        vec!["--device", "cpu", "--epochs", "3", "--json", "--out", &out_json],
    ];
    cases.into_iter().map(|args| args.into_iter().map(str::to_string).collect()).collect()
}

#[test]
fn a_full_stdout_exits_1_saying_it_was_standard_output() {
    let dir = scratch("full");
    let cases = every_stdout_writer(&dir);
    let mut problems = Vec::new();
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let args = &args;
        let Some(run) = with_full_stdout(args) else { return };
        let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        let wanted = "error: cannot write to standard output: No space left on device";
        if run.code != Some(1) || run.stderr.contains("panicked") || errors.len() != 1 || !errors[0].starts_with(wanted)
        {
            problems.push(format!("wanted exit 1 and one {wanted:?} line\n{}", run.show()));
        }
    }
    assert!(problems.is_empty(), "{} case(s) failed:\n\n{}", problems.len(), problems.join("\n"));
}

/// A reader that goes away (`wgpu-mlp ... | head -1`) ends the command
/// quietly with exit 0: it took what it wanted. Here the pipe's read end is
/// closed before the first write, so every write meets EPIPE.
#[test]
fn a_closed_stdout_pipe_ends_quietly_with_exit_0() {
    let dir = scratch("epipe");
    let cases = every_stdout_writer(&dir);
    let mut problems = Vec::new();
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let args = &args;
        let mut child = command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take());
        let run = finish(child, args, Duration::from_secs(120));
        if run.code != Some(0) || run.stderr.contains("panicked") || run.stderr.contains("error:") {
            problems.push(run.show());
        }
    }
    assert!(problems.is_empty(), "{} case(s) failed:\n\n{}", problems.len(), problems.join("\n"));

    // And through a shell, as a user would type it.
    let line = format!("'{}' --device cpu --epochs 300 --json | head -c 1 >/dev/null", env!("CARGO_BIN_EXE_wgpu-mlp"));
    let shell = Command::new("sh").args(["-c", &line]).current_dir(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&shell.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("error:"), "{stderr}");
}

/// (epoch, whole line) of each row of a metrics.csv, checking the header.
fn metrics_epochs(path: &Path) -> Vec<usize> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "every line is whole: {text:?}");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("epoch,train_loss,val_loss,train_accuracy,val_accuracy,val_mae,val_rmse,val_r2,lr,epsilon,seconds")
    );
    lines
        .map(|line| {
            assert_eq!(line.split(',').count(), 11, "{line:?} in\n{text}");
            line.split(',').next().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn resuming_into_the_run_folder_keeps_the_earlier_metrics() {
    let dir = scratch("resume-metrics");
    let data = three_classes(&dir);
    let out = dir.join("run");
    let out_flag = out.to_str().unwrap();
    let common = ["--data", &data, "--task", "classify", "--hidden", "5", "--device", "cpu", "--quiet"];
    let run = wgpu_mlp(&[&common[..], &["--epochs", "4", "--save-every", "2", "--out", out_flag]].concat());
    assert_success(&run);
    assert_eq!(metrics_epochs(&out.join("metrics.csv")), [1, 2, 3, 4]);

    // From epoch 2 into the same folder: epochs 3 and 4 are trained again,
    // replacing the rows of the first run's 3 and 4, and 5, 6 follow.
    let half = out.join("checkpoint-epoch2.safetensors");
    let args = [&common[..], &["--epochs", "6", "--resume", half.to_str().unwrap(), "--out", out_flag]].concat();
    assert_success(&wgpu_mlp(&args));
    assert_eq!(metrics_epochs(&out.join("metrics.csv")), [1, 2, 3, 4, 5, 6]);

    // A crash tore the last line (no newline): resuming drops it.
    let metrics = out.join("metrics.csv");
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    text += "7,0.12";
    std::fs::write(&metrics, text).unwrap();
    let last = out.join("checkpoint-epoch6.safetensors");
    let args = [&common[..], &["--epochs", "8", "--resume", last.to_str().unwrap(), "--out", out_flag]].concat();
    assert_success(&wgpu_mlp(&args));
    assert_eq!(metrics_epochs(&metrics), [1, 2, 3, 4, 5, 6, 7, 8]);
}

/// The `prlimit` program, or None (saying so) when it is absent and
/// REQUIRE_PRLIMIT is not 1.
fn prlimit() -> Option<&'static str> {
    let found = Command::new("prlimit").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var("REQUIRE_PRLIMIT").as_deref() != Ok("1"), "prlimit is missing and REQUIRE_PRLIMIT=1");
        eprintln!("skipped: no prlimit (util-linux); set REQUIRE_PRLIMIT=1 to fail instead");
        return None;
    }
    Some("prlimit")
}

/// 2 GiB of address space: far below what the hostile inputs would take,
/// well above what the binary needs to refuse them.
const MEMORY_LIMIT: &str = "--as=2147483648";

/// Runs the binary under [`MEMORY_LIMIT`] and checks exit code 2 with
/// exactly one `error:` line and no panic or abort.
fn refused_under_a_memory_limit(args: &[&str]) {
    let Some(prlimit) = prlimit() else { return };
    let mut child = Command::new(prlimit);
    child.arg(MEMORY_LIMIT).arg(env!("CARGO_BIN_EXE_wgpu-mlp")).args(args).current_dir(std::env::temp_dir());
    let child = child.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let run = finish(child, args, Duration::from_secs(120));
    assert_no_panic(&run);
    assert_eq!(run.code, Some(2), "{}", run.show());
    let errors = run.stderr.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 1, "exactly one error line\n{}", run.show());
    assert!(!run.stderr.contains("memory allocation of"), "aborted on an allocation\n{}", run.show());
}

#[test]
fn a_layer_of_a_hundred_million_is_refused_under_a_memory_limit() {
    refused_under_a_memory_limit(&["--layers", "10,100000000,1", "--device", "cpu", "--epochs", "1"]);
}

/// An epoch count that can never finish is no error, but nothing may be
/// sized by it: under the memory limit the run trains until Ctrl-C, then
/// stops with its checkpoint (exit 130), no abort.
#[test]
fn an_epoch_count_of_u64_max_trains_within_a_memory_limit_until_ctrl_c() {
    let Some(prlimit) = prlimit() else { return };
    let out = std::env::temp_dir().join(format!("wgpu-mlp-hostile-{}-u64max", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let args = ["--epochs", "18446744073709551615", "--device", "cpu", "--quiet", "--out", out.to_str().unwrap()];
    let mut child = Command::new(prlimit);
    child.arg(MEMORY_LIMIT).arg(env!("CARGO_BIN_EXE_wgpu-mlp")).args(args);
    let child = child.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // prlimit execs the binary, so its pid is the binary's.
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let run = finish(child, &args, Duration::from_secs(60));
    assert_no_panic(&run);
    assert_eq!(run.code, Some(130), "stopped by Ctrl-C\n{}", run.show());
    assert!(!run.stderr.contains("memory allocation of"), "aborted on an allocation\n{}", run.show());
    let saved = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.path().extension().is_some_and(|x| x == "safetensors"));
    assert!(saved, "the stop wrote a checkpoint\n{}", run.show());
}

// The case's matrices would take 40 GB each: refused before they are made.
#[test]
fn a_huge_matmul_bench_case_is_refused_under_a_memory_limit() {
    refused_under_a_memory_limit(&["bench", "--case", "matmul:100000,100000,100000", "--device", "cpu"]);
}

#[test]
fn predict_out_to_dev_stdout_writes_into_the_pipe() {
    // /dev/stdout is a link to /proc/self/fd/1, whose target ("pipe:[...]")
    // names no file: the write goes through the path to the pipe.
    let dir = scratch("dev-stdout");
    let (data, checkpoint) = trained(&dir);
    let mut args = predict_args(&data, &checkpoint);
    args.extend(["--out", "/dev/stdout"]);
    let run = wgpu_mlp(&args);
    assert_success(&run);
    assert!(run.stdout.starts_with("class,p0,p1,p2\n"), "the predictions reach the pipe\n{}", run.show());
}

#[test]
fn a_run_folder_that_is_a_file_exits_2() {
    // /dev/null, a character device, is no folder: refused, and left as it is.
    let run = wgpu_mlp(&["--device", "cpu", "--epochs", "1", "--quiet", "--out", "/dev/null"]);
    assert_eq!(run.code, Some(2), "{}", run.show());
    assert!(run.stderr.contains("is a file, not a folder"), "{}", run.show());
    let kind = std::fs::metadata("/dev/null").unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&kind), "/dev/null is still a device");
}
