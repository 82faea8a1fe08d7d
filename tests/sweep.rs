//! `wgpu-mlp sweep` end to end: every model of a sweep against the single
//! run of its settings, bit for bit on the CPU (every tensor of the kept
//! checkpoint, optimizer state included, and its metadata), for every flag a
//! sweep varies and for folds; the folds themselves; and the refusals of
//! bad input, each exit code 2 and one line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use wgpu_mlp::data::{fold_split, max_folds, Fold};
use wgpu_mlp::Dataset;

mod binary;

use binary::{assert_bad_input, assert_success, scratch, wgpu_mlp_in};

/// Writes 40 rows of two classes from three inputs (a ring: the label is
/// whether a point lies outside a radius), data no other test uses, into
/// `dir`; returns its `--data` flag.
fn ring_csv(dir: &Path) -> String {
    let mut text = String::from("x,y,z,outside\n");
    for i in 0..40 {
        let (x, y) = (((i * 17) % 23) as f64 / 23.0 - 0.5, ((i * 29) % 31) as f64 / 31.0 - 0.5);
        let z = ((i * 5) % 7) as f64 / 7.0;
        let outside = usize::from(x * x + y * y > 0.09);
        text += &format!("{x:.4},{y:.4},{z:.4},{outside}\n");
    }
    let path = dir.join("ring.csv");
    std::fs::write(&path, text).expect("the CSV is written");
    format!("csv:{}", path.display())
}

/// Every tensor of the checkpoint at `path` by name, as bytes, and its metadata.
fn checkpoint(path: &Path) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, String>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("a safetensors file");
    let tensors = file.names().into_iter().map(|n| (n.to_string(), file.tensor(n).unwrap().data().to_vec())).collect();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("a safetensors file");
    (tensors, header.metadata().clone().unwrap_or_default().into_iter().collect())
}

/// The training flags every model and single run share.
fn shared(data: &str) -> Vec<String> {
    ["--data", data, "--task", "classify", "--epochs", "3", "--device", "cpu", "--quiet"].map(String::from).to_vec()
}

#[test]
fn every_model_ends_as_its_single_run() {
    let dir = scratch("sweep", "alone");
    let data = ring_csv(&dir);
    // Each --sweep-file line moves other flags; the command line multiplies them.
    let file = dir.join("settings.txt");
    std::fs::write(
        &file,
        "# one model per line\nweight-decay=0.01 seed=7\nbatch-size=5 activation=tanh\n--dropout=0.3\n",
    )
    .unwrap();
    let out = dir.join("sweep");
    let mut args = shared(&data);
    args.extend(
        [
            "--lr",
            "0.01,0.05",
            "--hidden",
            "3",
            "--hidden",
            "4,2",
            "--folds",
            "2",
            "--jobs",
            "2",
            "--checkpoints",
            "all",
        ]
        .map(String::from),
    );
    args.extend(["--sweep-file".into(), file.display().to_string(), "--out".into(), out.display().to_string()]);
    args.push("--json".into());
    let args: Vec<&str> = std::iter::once("sweep").chain(args.iter().map(String::as_str)).collect();
    let sweep = wgpu_mlp_in(&dir, &args);
    assert_success(&sweep);
    let json = sweep.json();
    let models = json["models"].as_array().expect("models");
    assert_eq!(models.len(), 3 * 2 * 2 * 2, "lines x lr x hidden x folds\n{}", sweep.show());

    // Every combination once, in the order lines, lr, hidden, fold.
    let settings = |m: &Value, key: &str| m["settings"][key].as_str().unwrap().to_string();
    let keys = ["lr", "hidden", "weight_decay", "seed", "activation", "dropout", "batch_size"];
    let seen: BTreeSet<(Vec<String>, u64)> =
        models.iter().map(|m| (keys.iter().map(|k| settings(m, k)).collect(), m["fold"].as_u64().unwrap())).collect();
    assert_eq!(seen.len(), models.len(), "no model twice");
    for (line, (decay, seed, activation, dropout)) in
        [("0.01", "7", "relu", "0"), ("0", "0", "tanh", "0"), ("0", "0", "relu", "0.3")].iter().enumerate()
    {
        for (k, m) in models[line * 8..(line + 1) * 8].iter().enumerate() {
            assert_eq!(settings(m, "lr"), ["0.01", "0.05"][k / 4]);
            assert_eq!(settings(m, "hidden"), ["3", "4,2"][k / 2 % 2]);
            assert_eq!(m["fold"], k % 2);
            assert_eq!((settings(m, "weight_decay"), settings(m, "seed")), (decay.to_string(), seed.to_string()));
            assert_eq!(
                (settings(m, "activation"), settings(m, "dropout")),
                (activation.to_string(), dropout.to_string())
            );
        }
    }
    assert_eq!(settings(&models[8], "batch_size"), "5");

    for (i, model) in models.iter().enumerate() {
        // The single run, from the model's resolved settings: every swept flag explicit.
        let single = dir.join(format!("single-{i}"));
        let mut run = shared(&data);
        for (flag, key) in [
            ("--lr", "lr"),
            ("--weight-decay", "weight_decay"),
            ("--hidden", "hidden"),
            ("--seed", "seed"),
            ("--batch-size", "batch_size"),
            ("--activation", "activation"),
            ("--dropout", "dropout"),
        ] {
            run.extend([flag.to_string(), settings(model, key)]);
        }
        run.extend(["--fold".into(), format!("{}/2", model["fold"]), "--out".into(), single.display().to_string()]);
        let run: Vec<&str> = run.iter().map(String::as_str).collect();
        assert_success(&wgpu_mlp_in(&dir, &run));
        let (want, want_meta) = checkpoint(&single.join("checkpoint-best.safetensors"));
        let (got, got_meta) = checkpoint(&out.join(format!("models/model-{i}.safetensors")));
        assert!(want.keys().any(|k| k.starts_with("optimizer.")), "Adam's state is compared too");
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "model {i}: tensor names");
        for (name, bytes) in &want {
            assert!(got[name] == *bytes, "model {i} ({run:?}): {name} differs from the single run's");
        }
        assert_eq!(got_meta, want_meta, "model {i}: checkpoint metadata");
    }

    // The winner is the best mean over folds, and its checkpoint is its best fold's model.
    let winner = json["winner"]["model"].as_u64().expect("a winner") as usize;
    let means: Vec<f64> = json["folds"].as_array().unwrap().iter().map(|f| f["mean"].as_f64().unwrap()).collect();
    let best_setting = (0..means.len()).min_by(|&a, &b| means[a].total_cmp(&means[b])).unwrap();
    assert_eq!(winner / 2, best_setting, "{}", sweep.show());
    let (best, _) = checkpoint(&out.join("checkpoint-best.safetensors"));
    assert_eq!(best, checkpoint(&out.join(format!("models/model-{winner}.safetensors"))).0);
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + models.len());
    assert!(csv.starts_with("model,fold,lr,weight_decay,hidden,seed,batch_size,activation,dropout,monitor,score,"));
    assert_eq!(std::fs::read_to_string(out.join("folds.csv")).unwrap().lines().count(), 1 + models.len() / 2);
    assert!(std::fs::read_to_string(out.join("sweep.svg")).unwrap().contains("val-loss by lr"));
    assert!(sweep.stderr.lines().any(|l| l.starts_with("winner: ")), "{}", sweep.show());
}

#[test]
fn only_the_winner_is_kept_by_default() {
    let dir = scratch("sweep", "winner");
    let data = ring_csv(&dir);
    let out = dir.join("sweep");
    let mut args = vec!["sweep".to_string()];
    args.extend(shared(&data));
    args.extend(["--seed", "1,2,3", "--out"].map(String::from));
    args.push(out.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = wgpu_mlp_in(&dir, &args);
    assert_success(&run);
    let line = run.stdout.trim();
    assert!(line.starts_with("winner: model ") && line.contains("seed ") && !line.contains('\n'), "{}", run.show());
    assert!(out.join("checkpoint-best.safetensors").is_file() && !out.join("models").exists());
}

#[test]
fn folds_are_stratified_disjoint_and_seeded() {
    let labels: Vec<usize> = (0..23).map(|i| usize::from(i % 3 == 0)).collect();
    let x = ndarray::Array2::from_shape_fn((23, 1), |(i, _)| i as f32);
    let data = Dataset::classification(x, &labels, 2).unwrap();
    assert_eq!(max_folds(&data), 8);
    let mut held_out = Vec::new();
    for index in 0..4 {
        let (train, val) = fold_split(data.clone(), Fold { index, of: 4 }, 9).unwrap();
        assert_eq!(train.len() + val.len(), 23);
        let ones = val.labels().iter().filter(|&&l| l == 1).count();
        assert_eq!(ones, 2, "fold {index} keeps the class share: 8 rows of class 1 over 4 folds");
        held_out.extend(val.x.column(0).iter().map(|&v| v as usize));
        assert_eq!(fold_split(data.clone(), Fold { index, of: 4 }, 9).unwrap().1, val, "seeded");
    }
    held_out.sort_unstable();
    assert_eq!(held_out, (0..23).collect::<Vec<_>>(), "every row held out exactly once");
    let (_, other_seed) = fold_split(data.clone(), Fold { index: 0, of: 4 }, 10).unwrap();
    assert_ne!(other_seed, fold_split(data.clone(), Fold { index: 0, of: 4 }, 9).unwrap().1);
    assert!(fold_split(data, Fold { index: 0, of: 9 }, 0).is_err(), "9 folds of a class of 8 rows");
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let dir = scratch("sweep", "bad");
    let data = ring_csv(&dir);
    let bad_file = dir.join("bad.txt");
    std::fs::write(&bad_file, "lr=0.1\nepochs=3\n").unwrap();
    let many: Vec<String> = (0..400).map(|i| format!("0.{:04}", i + 1)).collect();
    let seeds: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    let (many, seeds) = (many.join(","), seeds.join(","));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--lr", "0.1,"], "--lr '0.1,': an empty value in the list"),
        (vec!["--lr", "0.1,,0.2"], "an empty value in the list"),
        (vec!["--hidden", ""], "--hidden '': an empty value"),
        (vec!["--lr", "0.1,abc"], "'abc' must be a positive finite number"),
        (vec!["--hidden", "4,x"], "'x' is not a layer size"),
        (vec!["--lr", "0.1,0.1"], "--lr lists 0.1 twice"),
        (vec!["--lr"], "--lr needs a value"),
        (vec!["--lr", &many, "--seed", &seeds], "the sweep is 120000 models (400 --lr x 300 --seed)"),
        (vec!["--folds", "1"], "--folds 1: cross-validation needs at least 2 folds"),
        (vec!["--folds", "30"], "--folds 30 is more than the data can fill"),
        (vec!["--folds", "2", "--val-fraction", "0.2"], "leave out --val-fraction"),
        (vec!["--resume", "x.safetensors"], "--resume does not apply to a sweep"),
        (vec!["--fold", "0/2"], "--fold does not apply to a sweep"),
        (vec!["--sweep-file", bad_file.to_str().unwrap()], "line 2: 'epochs' is not a flag a sweep varies"),
        (
            vec!["--lr", "0.1,0.2", "--sweep-file", bad_file.to_str().unwrap()],
            "--lr is also listed on the command line",
        ),
        (vec!["--sweep-file", "/nonexistent/file"], "--sweep-file /nonexistent/file: cannot read it"),
        (vec!["--seed", "1,2", "--out", dir.to_str().unwrap()], "is not empty; give --out a new or empty folder"),
    ];
    for (extra, fragment) in cases {
        let mut args = vec!["sweep", "--data", &data, "--task", "classify", "--epochs", "1", "--device", "cpu"];
        args.extend(extra);
        let run = wgpu_mlp_in(&dir, &args);
        assert_bad_input(&run, fragment);
        assert!(run.stderr.contains("--sweep-file") || !fragment.starts_with("the sweep is"), "{}", run.show());
        assert_eq!(run.stderr.lines().count(), 1, "one line\n{}", run.show());
        assert!(run.stdout.is_empty(), "{}", run.show());
    }
}

/// Whether `wgpu-mlp --device gpu` finds an adapter; with REQUIRE_GPU=1 a
/// missing one fails the test instead of skipping it.
fn gpu_or_skip(dir: &Path) -> bool {
    let probe = wgpu_mlp_in(dir, &["--device", "gpu", "--epochs", "0", "--quiet", "--out", "probe"]);
    assert!(!probe.stderr.contains("panicked"), "{}", probe.show());
    if probe.code != Some(0) {
        assert!(
            std::env::var("REQUIRE_GPU").map_or(true, |v| v != "1"),
            "REQUIRE_GPU=1 but no GPU adapter\n{}",
            probe.show()
        );
        eprintln!("skipped: no GPU adapter (set REQUIRE_GPU=1 to fail instead)");
    }
    probe.code == Some(0)
}

#[test]
fn gpu_models_end_as_their_single_runs() {
    let dir = scratch("sweep", "gpu");
    if !gpu_or_skip(&dir) {
        return;
    }
    let data = ring_csv(&dir);
    let out = dir.join("sweep");
    let gpu = |args: &mut Vec<String>| {
        args.extend(
            ["--data", &data, "--task", "classify", "--epochs", "2", "--device", "gpu", "--quiet"].map(String::from),
        )
    };
    let mut args = vec!["sweep".to_string()];
    gpu(&mut args);
    args.extend(["--lr", "0.01,0.05", "--checkpoints", "all", "--out"].map(String::from));
    args.push(out.display().to_string());
    let sweep = wgpu_mlp_in(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_success(&sweep);
    for (i, lr) in ["0.01", "0.05"].iter().enumerate() {
        let single = dir.join(format!("single-{i}"));
        let mut args = Vec::new();
        gpu(&mut args);
        args.extend(["--lr".to_string(), lr.to_string(), "--out".to_string(), single.display().to_string()]);
        assert_success(&wgpu_mlp_in(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>()));
        let (want, want_meta) = checkpoint(&single.join("checkpoint-best.safetensors"));
        let (got, got_meta) = checkpoint(&out.join(format!("models/model-{i}.safetensors")));
        assert!(got == want, "model {i} (--lr {lr}) on the GPU differs from its single run");
        assert_eq!(got_meta, want_meta);
    }
}

#[test]
fn keep_last_early_stopping_and_a_plateau_schedule_end_as_single_runs() {
    let dir = scratch("sweep", "last");
    let data = ring_csv(&dir);
    let out = dir.join("sweep");
    let flags =
        ["--keep", "last", "--lr-schedule", "plateau", "--lr-patience", "1", "--early-stopping", "2", "--epochs", "8"];
    let mut args = vec!["sweep".to_string()];
    args.extend(shared(&data).into_iter().filter(|a| a != "--epochs" && a != "3"));
    args.extend(flags.map(String::from));
    args.extend(["--lr", "0.02,0.2", "--checkpoints", "all", "--out"].map(String::from));
    args.push(out.display().to_string());
    let sweep = wgpu_mlp_in(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_success(&sweep);
    for (i, lr) in ["0.02", "0.2"].iter().enumerate() {
        let single = dir.join(format!("single-{i}"));
        let mut args: Vec<String> = shared(&data).into_iter().filter(|a| a != "--epochs" && a != "3").collect();
        args.extend(flags.map(String::from));
        args.extend(["--lr".to_string(), lr.to_string(), "--out".to_string(), single.display().to_string()]);
        assert_success(&wgpu_mlp_in(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>()));
        let last: Vec<_> = std::fs::read_dir(&single)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("checkpoint-epoch"))
            .collect();
        assert_eq!(last.len(), 1, "{last:?}");
        let (want, want_meta) = checkpoint(&last[0]);
        let (got, got_meta) = checkpoint(&out.join(format!("models/model-{i}.safetensors")));
        assert!(got == want, "model {i} (--lr {lr}) differs from its single run's last checkpoint");
        assert_eq!(got_meta, want_meta, "model {i}: the metadata (best epoch, plateau state) too");
    }
}
