//! Ctrl-C (SIGINT) on a run that reads back rarely: training stops soon, goes
//! back to the start of the epoch it was in, writes a checkpoint of that
//! state, exits with 130, and a resume from the checkpoint ends with the same
//! parameters as a run that was never stopped.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wgpu_mlp::checkpoint;

/// A run that would take many minutes without the stop: the test waits this
/// long at most for the process to end after SIGINT, so a stop that is not
/// noticed fails the test instead of hanging it. It is a bound on liveness,
/// far above the ~1 s a stop takes, not a speed figure.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-interrupt-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary, with a cache folder of its own (the GPU matmul tuning file)
/// instead of the user's.
fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"));
    command.env("XDG_CACHE_HOME", std::env::temp_dir().join(format!("wgpu-mlp-test-cache-{}", std::process::id())));
    command
}

/// The devices to try: cpu, and gpu when `--device gpu` finds an adapter
/// (required with REQUIRE_GPU=1).
fn devices() -> Vec<&'static str> {
    let probe = binary().args(["--device", "gpu", "--epochs", "0", "--quiet", "--out"]).arg(scratch("probe")).output();
    let gpu = probe.is_ok_and(|out| out.status.success());
    if !gpu && std::env::var("REQUIRE_GPU").is_ok_and(|v| v == "1") {
        panic!("REQUIRE_GPU=1 but `wgpu-mlp --device gpu` finds no GPU adapter");
    }
    if gpu {
        vec!["cpu", "gpu"]
    } else {
        vec!["cpu"]
    }
}

#[test]
fn ctrl_c_with_a_long_log_interval_stops_soon_and_resumes_bit_for_bit() {
    for device in devices() {
        let dir = scratch(device);
        // Shuffled mini-batches of 4 over the seed problem's 100 rows with
        // Adam: 25 steps an epoch, a read-back only every 10^9 epochs.
        let common = ["--device", device, "--batch-size", "4", "--shuffle", "--optimizer", "adam", "--quiet"];
        let mut child = binary()
            .args(common)
            .args(["--epochs", "1000000000", "--log-every", "1000000000", "--out"])
            .arg(dir.join("stopped"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        std::thread::sleep(Duration::from_millis(1500));
        let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
        assert!(sent.success(), "{device}: SIGINT sent");
        let asked = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if asked.elapsed() > STOP_TIMEOUT {
                child.kill().ok();
                panic!("{device}: still running {STOP_TIMEOUT:?} after SIGINT");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        eprintln!("{device}: stopped {:.2} s after SIGINT", asked.elapsed().as_secs_f64());
        assert_eq!(status.code(), Some(130), "{device}: {stderr}");
        assert!(!stderr.contains("panicked"), "{device}: {stderr}");
        let saved = std::fs::read_dir(dir.join("stopped"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| path.extension().is_some_and(|e| e == "safetensors"))
            .unwrap_or_else(|| panic!("{device}: the stop writes a checkpoint\n{stderr}"));
        let spec = checkpoint::read_spec(&saved).unwrap();
        let at = checkpoint::load(&saved, &spec).unwrap();
        assert!(stderr.contains(&format!("interrupted after epoch {}", at.epoch)), "{device}: {stderr}");
        assert!(at.epoch < 1_000_000_000, "{device}: stopped early, at epoch {}", at.epoch);

        // Resume to a few epochs past the stop, and train that far straight.
        let target = (at.epoch + 3).to_string();
        let resumed = binary()
            .args(common)
            .args(["--epochs", &target, "--resume"])
            .arg(&saved)
            .arg("--out")
            .arg(dir.join("resumed"))
            .output()
            .unwrap();
        assert!(resumed.status.success(), "{device}: {}", String::from_utf8_lossy(&resumed.stderr));
        let straight =
            binary().args(common).args(["--epochs", &target, "--out"]).arg(dir.join("straight")).output().unwrap();
        assert!(straight.status.success(), "{device}: {}", String::from_utf8_lossy(&straight.stderr));
        let last = |run: &str| {
            let path = dir.join(run).join(format!("checkpoint-epoch{target}.safetensors"));
            checkpoint::load(&path, &spec).unwrap_or_else(|e| panic!("{device}: {e}")).state
        };
        assert_eq!(last("resumed"), last("straight"), "{device}: stop + resume = straight, bit for bit");
    }
}
