//! Hostile data on the command line (issue 11): files that are wrong on
//! purpose or by accident, endless streams and pipes. Each must end in exit
//! code 2 with one `error: ...` line, never a panic, an abort or unbounded
//! memory; a pipe must give the same data as the file.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn show(&self) -> String {
        format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr)
    }
}

/// An address-space cap for the child, so a loader that grows without bound
/// dies quickly (an abort, which the assertions report) instead of eating
/// the machine. 4 GiB is far above what these small inputs need.
const ADDRESS_SPACE_KIB: u64 = 4 << 20;

/// How long a run may take before it counts as hanging.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs the binary under the address-space cap with `args`, feeding `stdin`
/// (None: an empty stdin) and, when `endless` is given, repeating that chunk
/// on stdin until the binary closes it.
fn run_with(args: &[&str], stdin: Option<Vec<u8>>, endless: Option<&'static [u8]>) -> Run {
    // The run folders (runs/...) land in a scratch folder of this test binary.
    let cwd = std::env::temp_dir().join(format!("wgpu-mlp-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).expect("a scratch folder");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {ADDRESS_SPACE_KIB}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_wgpu-mlp"))
        .args(args)
        .current_dir(&cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wgpu-mlp binary starts");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let feeder = std::thread::spawn(move || {
        if let Some(bytes) = stdin {
            let _ = pipe.write_all(&bytes);
        }
        if let Some(chunk) = endless {
            // Stops when the binary closes its end (a broken pipe).
            while pipe.write_all(chunk).is_ok() {}
        }
    });
    let start = Instant::now();
    while child.try_wait().expect("wait works").is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("the output is read");
    let _ = feeder.join();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn wgpu_mlp(args: &[&str]) -> Run {
    run_with(args, None, None)
}

/// Exit code 2 and one `error: ...` line containing every fragment.
fn assert_bad_input(run: &Run, fragments: &[&str]) {
    assert!(run.code.is_some() && !run.stderr.contains("panicked"), "panicked or was killed\n{}", run.show());
    assert_eq!(run.code, Some(2), "expected exit code 2\n{}", run.show());
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stderr\n{}", run.show());
    assert!(lines[0].starts_with("error: "), "an error line\n{}", run.show());
    for fragment in fragments {
        assert!(lines[0].contains(fragment), "wanted {fragment:?}\n{}", run.show());
    }
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn csv_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    format!("csv:{}", path.display())
}

const QUICK: [&str; 4] = ["--epochs", "1", "--device", "cpu"];

fn with_quick<'a>(args: &[&'a str]) -> Vec<&'a str> {
    args.iter().copied().chain(QUICK).collect()
}

#[test]
fn duplicate_or_ambiguous_target_columns_exit_2() {
    let dir = scratch("targets");
    let plain = csv_file(&dir, "plain.csv", "1,2,3,4\n5,6,7,8\n9,8,7,6\n5,4,3,2\n");
    let headed = csv_file(&dir, "headed.csv", "p,q,r,y\n1,2,3,4\n5,6,7,8\n9,8,7,6\n5,4,3,2\n");
    let ambiguous = csv_file(&dir, "ambiguous.csv", "a,a,y\n1,2,3\n4,5,6\n7,8,9\n1,1,1\n");
    for (data, target, fragments) in [
        (&plain, "3,3", vec!["column 3", "twice"]),
        (&headed, "y,y", vec!["column 3 (y)", "twice"]),
        (&headed, "y,3", vec!["column 3 (y)", "twice"]),
        (&ambiguous, "a", vec!["'a'", "columns 0 and 1"]),
    ] {
        assert_bad_input(&wgpu_mlp(&with_quick(&["--data", data, "--target", target])), &fragments);
    }
}

#[test]
fn endless_fields_and_lines_stop_at_a_limit() {
    // One endless field of NUL bytes.
    assert_bad_input(&wgpu_mlp(&with_quick(&["--data", "csv:/dev/zero"])), &["/dev/zero", "field", "MiB"]);
    // One endless line, from a pipe: of long numbers, then of short ones.
    let run = run_with(&with_quick(&["--data", "csv:/dev/stdin"]), None, Some(b"0.123456789012345678,"));
    assert_bad_input(&run, &["line 1", "record", "MiB"]);
    let run = run_with(&with_quick(&["--data", "csv:-"]), Some(b"x,y\n1,2\n".to_vec()), Some(b"1,2,3,4,5,6,7,8,"));
    assert_bad_input(&run, &["standard input", "line 3", "fields"]);
}

/// An IDX file of unsigned bytes with these dimensions and values, gzipped.
fn idx_gz(dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    dims.iter().for_each(|d| bytes.extend_from_slice(&d.to_be_bytes()));
    bytes.extend_from_slice(values);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&bytes).unwrap();
    encoder.finish().unwrap()
}

/// An IDX folder with these training and test labels (2x2 pixel images).
fn idx_dir(name: &str, train: &[u8], test: &[u8]) -> PathBuf {
    let dir = scratch(name);
    for (set, labels) in [("train", train), ("t10k", test)] {
        let n = labels.len() as u32;
        std::fs::write(dir.join(format!("{set}-images-idx3-ubyte.gz")), idx_gz(&[n, 2, 2], &vec![9; labels.len() * 4]))
            .unwrap();
        std::fs::write(dir.join(format!("{set}-labels-idx1-ubyte.gz")), idx_gz(&[n], labels)).unwrap();
    }
    dir
}

#[test]
fn idx_bombs_and_wrong_labels_exit_2_in_words() {
    let dir = idx_dir("idx-bomb", &[0, 1, 2, 1], &[0, 1]);
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), idx_gz(&[4_000_000, 28, 28], &[0; 4096])).unwrap();
    let data = format!("idx:{}", dir.display());
    let run = wgpu_mlp(&with_quick(&["--data", &data]));
    assert_bad_input(&run, &["4000000 images", "4 labels"]);

    let dir = idx_dir("idx-short", &[0, 1, 2, 1], &[0, 1]);
    std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), idx_gz(&[2, 2, 2], &[0; 7])).unwrap();
    let run = wgpu_mlp(&with_quick(&["--data", &format!("idx:{}", dir.display())]));
    assert_bad_input(&run, &["2 x 2 x 2", "8 values", "7"]);
    assert!(!run.stderr.contains("Some(") && !run.stderr.contains("None"), "{}", run.show());

    for (name, train, test, fragments) in [
        ("idx-train-200", &[0u8, 1, 2, 200][..], &[0u8, 1][..], vec!["label 200", "sample 4"]),
        ("idx-test-255", &[0, 1, 2, 1], &[0, 255], vec!["test", "label 255", "sample 2"]),
        ("idx-one-class", &[4, 4, 4, 4], &[4, 4], vec!["at least two classes"]),
    ] {
        let dir = idx_dir(name, train, test);
        assert_bad_input(&wgpu_mlp(&with_quick(&["--data", &format!("idx:{}", dir.display())])), &fragments);
    }
}

#[test]
fn single_class_csv_exits_2() {
    let dir = scratch("one-class");
    let data = csv_file(&dir, "one.csv", "x,label\n1,3\n2,3\n3,3\n4,3\n5,3\n6,3\n7,3\n8,3\n");
    let run = wgpu_mlp(&with_quick(&["--data", &data, "--task", "classify"]));
    assert_bad_input(&run, &["at least two classes"]);
    // --classes declares more classes than the rows show: still one class.
    let run = wgpu_mlp(&with_quick(&["--data", &data, "--task", "classify", "--classes", "4"]));
    assert_bad_input(&run, &["at least two classes"]);
}

#[test]
fn layers_that_do_not_fit_the_inputs_say_so() {
    let dir = scratch("layers");
    let mut text = String::new();
    for row in 0..40 {
        let values: Vec<String> = (0..64).map(|c| ((row * 7 + c) % 17).to_string()).collect();
        text += &format!("{},{}\n", values.join(","), row % 10);
    }
    let data = csv_file(&dir, "wide.csv", &text);
    let run = wgpu_mlp(&with_quick(&["--data", &data, "--task", "classify", "--layers", "10,5,1"]));
    assert_bad_input(&run, &["64 inputs", "--layers", "10"]);
    assert!(!run.stderr.contains("label"), "{}", run.show());
}

/// The JSON of a short run, with the data's name taken out.
fn trained(data: &str, stdin: Option<Vec<u8>>) -> Value {
    let args = ["--data", data, "--task", "classify", "--hidden", "4", "--epochs", "3", "--device", "cpu", "--json"];
    let run = run_with(&args, stdin, None);
    assert_eq!(run.code, Some(0), "{}", run.show());
    let mut json: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}\n{}", run.show()));
    let object = json.as_object_mut().expect("an object");
    for key in ["data", "command", "out", "checkpoint", "best_checkpoint", "seconds"] {
        object.remove(key);
    }
    object.retain(|key, _| !key.contains("time") && !key.contains("per_second"));
    json
}

#[test]
fn csv_from_a_pipe_is_the_same_data_as_the_file() {
    let dir = scratch("pipe");
    let mut text = String::from("a,b,label\n");
    for i in 0..24 {
        text += &format!("{},{},{}\n", i % 5, (i * 3) % 7, i % 2);
    }
    let data = csv_file(&dir, "d.csv", &text);
    let from_file = trained(&data, None);
    assert_eq!(trained("csv:/dev/stdin", Some(text.clone().into_bytes())), from_file, "csv:/dev/stdin");
    assert_eq!(trained("csv:-", Some(text.clone().into_bytes())), from_file, "csv:-");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(text.as_bytes()).unwrap();
    assert_eq!(trained("csv:-", Some(gzip.finish().unwrap())), from_file, "gzip on csv:-");
}
