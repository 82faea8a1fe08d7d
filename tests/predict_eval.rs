//! `wgpu-mlp predict` and `wgpu-mlp eval` end to end (issue 15, items 1, 2
//! and 12): predict answers every row of a file of the model's input columns,
//! matched by header name; eval and predict take the data settings of
//! training from the checkpoint; flags they do not use are refused.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod binary;

use binary::{assert_success, wgpu_mlp_in, Run};

fn wgpu_mlp(args: &[&str]) -> Run {
    wgpu_mlp_in(&std::env::temp_dir(), args)
}

/// Exit code 2 with `fragment` in the error and nothing on stdout.
fn assert_bad_input(run: &Run, fragment: &str) {
    binary::assert_bad_input(run, fragment);
    assert!(run.stdout.trim().is_empty(), "something was printed on stdout\n{}", run.show());
}

fn scratch(name: &str) -> PathBuf {
    binary::scratch("predict-eval", name)
}

/// Row i of the three-class problem: four inputs and the label.
fn row(i: usize) -> ([f64; 4], usize) {
    let label = i % 3;
    let v = |k: usize| ((i * 7 + k * 13) % 10) as f64 * 0.1 + label as f64;
    ([v(0), v(1), v(2), v(3)], label)
}

const ROWS: usize = 60;

/// A CSV of three classes with a header: a,b,c,d,label; 60 rows.
fn labeled_csv(dir: &Path, header: bool) -> PathBuf {
    let mut text = if header { String::from("a,b,c,d,label\n") } else { String::new() };
    for i in 0..ROWS {
        let ([a, b, c, d], label) = row(i);
        text += &format!("{a},{b},{c},{d},{label}\n");
    }
    let path = dir.join(if header { "labeled.csv" } else { "headerless.csv" });
    std::fs::write(&path, text).unwrap();
    path
}

/// Trains a few epochs on `data` and returns the JSON summary.
fn train(dir: &Path, data: &Path, extra: &[&str]) -> Value {
    let out = dir.join("run");
    let data = format!("csv:{}", data.display());
    let args = ["--data", &data, "--task", "classify", "--hidden", "6", "--epochs", "3", "--device", "cpu", "--json"];
    let run = wgpu_mlp(&[&args[..], extra, &["--out", out.to_str().unwrap()]].concat());
    assert_success(&run);
    run.json()
}

fn checkpoint_of(trained: &Value) -> String {
    trained["checkpoint"].as_str().expect("the last epoch is saved").to_string()
}

/// The data lines of predict's CSV on stdout (the header checked and dropped).
fn prediction_lines(run: &Run, header: &str) -> Vec<String> {
    assert_success(run);
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some(header), "{}", run.show());
    lines.map(str::to_string).collect()
}

#[test]
fn predict_answers_every_row_of_a_labeled_file_in_file_order() {
    let dir = scratch("every-row");
    let data = labeled_csv(&dir, true);
    let trained = train(&dir, &data, &[]);
    let checkpoint = checkpoint_of(&trained);
    let data_flag = format!("csv:{}", data.display());
    let all = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--data", &data_flag, "--device", "cpu"]);
    let all = prediction_lines(&all, "class,p0,p1,p2");
    assert_eq!(all.len(), ROWS, "a prediction for every row of the file");
    // The checkpoint names the data: no --data gives the same rows.
    let again = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--device", "cpu"]);
    assert_eq!(prediction_lines(&again, "class,p0,p1,p2"), all);
    // --split test keeps the held-out rows of training.
    let test = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--split", "test", "--device", "cpu"]);
    let test = prediction_lines(&test, "class,p0,p1,p2");
    assert_eq!(test.len() as u64, trained["test_samples"].as_u64().unwrap(), "the held-out rows");
    assert!(test.iter().all(|line| all.contains(line)), "the test rows are rows of the file");
}

#[test]
fn predict_matches_columns_by_name_and_ignores_the_others() {
    let dir = scratch("by-name");
    let data = labeled_csv(&dir, true);
    let checkpoint = checkpoint_of(&train(&dir, &data, &[]));
    let data_flag = format!("csv:{}", data.display());
    let want = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--data", &data_flag, "--device", "cpu"]);
    let want = prediction_lines(&want, "class,p0,p1,p2");

    // New rows: no label, the columns in another order, an id and a group column.
    let mut text = String::from("id,d,group,b,c,a\n");
    for i in 0..ROWS {
        let ([a, b, c, d], _) = row(i);
        text += &format!("{},{d},{},{b},{c},{a}\n", 1000 + i, i % 2);
    }
    let new_rows = dir.join("new.csv");
    std::fs::write(&new_rows, text).unwrap();
    let new_flag = format!("csv:{}", new_rows.display());
    let got = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--data", &new_flag, "--device", "cpu"]);
    assert_eq!(prediction_lines(&got, "class,p0,p1,p2"), want, "the same rows give the same predictions");

    // A column the model reads is missing: named in the error.
    std::fs::write(&new_rows, "a,b,d\n1,2,3\n").unwrap();
    let missing = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--data", &new_flag, "--device", "cpu"]);
    assert_bad_input(&missing, "'c'");
}

#[test]
fn predict_reads_a_headerless_file_of_the_input_columns_only() {
    let dir = scratch("headerless");
    let data = labeled_csv(&dir, false);
    let checkpoint = checkpoint_of(&train(&dir, &data, &[]));
    let data_flag = format!("csv:{}", data.display());
    let want = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--data", &data_flag, "--device", "cpu"]);
    let want = prediction_lines(&want, "class,p0,p1,p2");
    assert_eq!(want.len(), ROWS);

    let mut text = String::new();
    for i in 0..ROWS {
        let ([a, b, c, d], _) = row(i);
        text += &format!("{a},{b},{c},{d}\n");
    }
    let features = dir.join("features.csv");
    std::fs::write(&features, text).unwrap();
    let features_flag = format!("csv:{}", features.display());
    let got = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--data", &features_flag, "--device", "cpu"]);
    assert_eq!(prediction_lines(&got, "class,p0,p1,p2"), want);

    // Neither the training file's width nor the model's inputs.
    std::fs::write(&features, "1,2,3\n4,5,6\n").unwrap();
    let narrow = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--data", &features_flag, "--device", "cpu"]);
    assert_bad_input(&narrow, "3 columns");
}

#[test]
fn eval_without_data_scores_the_runs_own_test_set() {
    let dir = scratch("eval-own");
    let data = labeled_csv(&dir, true);
    // Another seed and test fraction than the defaults, so defaults would score other rows.
    let trained = train(&dir, &data, &["--seed", "5", "--test-fraction", "0.3"]);
    let checkpoint = checkpoint_of(&trained);
    // From another folder, so a relative path in the metadata would not do.
    let elsewhere = scratch("eval-own-cwd");
    let eval = wgpu_mlp_in(&elsewhere, &["eval", "--checkpoint", &checkpoint, "--device", "cpu", "--json"]);
    assert_success(&eval);
    assert!(!eval.stderr.contains("overlap"), "no warning for the run's own test set\n{}", eval.show());
    let eval = eval.json();
    assert_eq!(eval["rows"], trained["test_samples"], "the test rows of the training run");
    let (got, want) = (eval["loss"].as_f64().unwrap(), trained["test_loss"].as_f64().unwrap());
    assert!((got - want).abs() <= 1e-5 * want.abs(), "eval loss {got}, training's test loss {want}");
    assert_eq!(eval["accuracy"], trained["test_accuracy"]);
}

#[test]
fn eval_reports_a_classifiers_classes_and_confusion_matrix() {
    let dir = scratch("eval-classes");
    let data = labeled_csv(&dir, true);
    let checkpoint = checkpoint_of(&train(&dir, &data, &[]));
    let eval = wgpu_mlp(&["eval", "--checkpoint", &checkpoint, "--device", "cpu", "--json"]);
    assert_success(&eval);
    let eval = eval.json();
    let report = &eval["classification_report"];
    // The top level's accuracy is an f32, the report's an f64 of the same count.
    let (top, reported) = (eval["accuracy"].as_f64().unwrap(), report["accuracy"].as_f64().unwrap());
    assert!((top - reported).abs() <= 1e-6, "accuracy {top} at the top, {reported} in the report");
    let confusion: Vec<Vec<u64>> = serde_json::from_value(report["confusion"].clone()).unwrap();
    assert_eq!(confusion.len(), 3, "a row per class: {confusion:?}");
    assert!(confusion.iter().all(|row| row.len() == 3), "a column per class: {confusion:?}");
    let rows = eval["rows"].as_u64().unwrap();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), rows, "every row counted once");
    let hits: u64 = (0..3).map(|c| confusion[c][c]).sum();
    assert_eq!(hits as f64 / rows as f64, reported, "the diagonal is the accuracy");
    for (c, class) in report["classes"].as_array().unwrap().iter().enumerate() {
        assert_eq!(class["class"], c);
        assert_eq!(class["support"].as_f64().unwrap(), confusion[c].iter().sum::<u64>() as f64, "class {c}");
    }
    assert!(eval.get("regression").is_none(), "a classifier has no regression errors");

    let text = wgpu_mlp(&["eval", "--checkpoint", &checkpoint, "--device", "cpu"]);
    assert_success(&text);
    assert!(text.stdout.lines().next().unwrap().contains(" rows on cpu: loss "), "{}", text.show());
    for words in ["precision    recall  f1-score   support", "weighted avg", "true\\predicted"] {
        assert!(text.stdout.contains(words), "no {words:?}\n{}", text.show());
    }
}

#[test]
fn eval_reports_a_regressions_errors_per_output() {
    let dir = scratch("eval-regression");
    let mut text = String::from("a,b,y0,y1\n");
    for i in 0..ROWS {
        let (a, b) = ((i * 7 % 10) as f64 * 0.1, (i * 3 % 10) as f64 * 0.1);
        text += &format!("{a},{b},{},{}\n", a + 2.0 * b, 10.0 * a * b);
    }
    let data = dir.join("regression.csv");
    std::fs::write(&data, text).unwrap();
    let data = format!("csv:{}", data.display());
    let out = dir.join("run");
    let args = ["--data", &data, "--target", "y0,y1", "--hidden", "6", "--epochs", "3", "--device", "cpu"];
    let trained = wgpu_mlp(&[&args[..], &["--json", "--out", out.to_str().unwrap()]].concat());
    assert_success(&trained);
    let checkpoint = checkpoint_of(&trained.json());

    let eval = wgpu_mlp(&["eval", "--checkpoint", &checkpoint, "--device", "cpu", "--json"]);
    assert_success(&eval);
    let eval = eval.json();
    let regression = &eval["regression"];
    let outputs = regression["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2, "one entry per target: {regression}");
    for key in ["mae", "rmse", "r2"] {
        let mean = (outputs[0][key].as_f64().unwrap() + outputs[1][key].as_f64().unwrap()) / 2.0;
        let got = regression[key].as_f64().unwrap();
        assert!((got - mean).abs() <= 1e-12, "{key} {got} is not the mean of the outputs' {mean}");
    }
    // The loss is the mean squared error over both outputs: the mean of the RMSEs squared.
    let mse = outputs.iter().map(|o| o["rmse"].as_f64().unwrap().powi(2)).sum::<f64>() / 2.0;
    let loss = eval["loss"].as_f64().unwrap();
    assert!((loss - mse).abs() <= 1e-5 * mse, "loss {loss}, mean squared error {mse}");
    assert!(eval.get("classification_report").is_none(), "a regression has no classes");

    let text = wgpu_mlp(&["eval", "--checkpoint", &checkpoint, "--device", "cpu"]);
    assert_success(&text);
    assert!(text.stdout.contains("rmse") && text.stdout.contains("average"), "{}", text.show());
}

#[test]
fn eval_with_a_split_that_overlaps_training_warns() {
    let dir = scratch("eval-overlap");
    let data = labeled_csv(&dir, true);
    let checkpoint = checkpoint_of(&train(&dir, &data, &[]));
    for flags in [&["--seed", "1"][..], &["--test-fraction", "0.5"]] {
        let eval = wgpu_mlp(&[&["eval", "--checkpoint", &checkpoint, "--device", "cpu"], flags].concat());
        assert_success(&eval);
        assert!(eval.stderr.contains("warning") && eval.stderr.contains("overlap"), "{}", eval.show());
    }
    // A smaller fraction with the same seed takes a part of the same test rows.
    let eval = wgpu_mlp(&["eval", "--checkpoint", &checkpoint, "--device", "cpu", "--test-fraction", "0.1"]);
    assert_success(&eval);
    assert!(!eval.stderr.contains("overlap"), "{}", eval.show());
}

#[test]
fn a_checkpoint_without_data_settings_needs_data() {
    use wgpu_mlp::ndarray::array;
    let dir = scratch("library");
    let x = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let mut mlp = wgpu_mlp::Mlp::builder().hidden([4]).epochs(2).build().unwrap();
    mlp.fit_classes(x.view(), &[0, 1, 1, 0]).unwrap();
    let path = dir.join("library.safetensors");
    mlp.save(&path).unwrap();
    let checkpoint = path.to_str().unwrap();
    for command in ["eval", "predict"] {
        assert_bad_input(&wgpu_mlp(&[command, "--checkpoint", checkpoint, "--device", "cpu"]), "--data");
    }
}

#[test]
fn predict_and_eval_refuse_flags_they_do_not_use() {
    let dir = scratch("flags");
    let data = labeled_csv(&dir, true);
    let checkpoint = checkpoint_of(&train(&dir, &data, &[]));
    for command in ["eval", "predict"] {
        for flags in [&["--scale", "minmax"][..], &["--lr", "0.1"], &["--epochs", "2"], &["--classes", "3"]] {
            let run = wgpu_mlp(&[&[command, "--checkpoint", &checkpoint, "--device", "cpu"], flags].concat());
            assert_bad_input(&run, flags[0]);
        }
        let help = wgpu_mlp(&[command, "--help"]);
        assert_success(&help);
        assert!(!help.stdout.contains("--scale"), "{command} --help offers --scale\n{}", help.show());
        assert!(!help.stdout.contains("Train a multilayer"), "{command} --help describes training\n{}", help.show());
    }
    // predict's --split test uses the split; without it --seed and --test-fraction do nothing.
    let run = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--device", "cpu", "--seed", "3"]);
    assert_bad_input(&run, "--split test");
}
