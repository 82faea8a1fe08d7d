//! Tabular data end to end (issue 15, items 14 and 15): a regression trained
//! on standardized targets answers in the target's own units, and id or
//! other text columns are kept out of training and copied by predict.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod binary;

use binary::{assert_bad_input, assert_success, wgpu_mlp_in, Run};

fn scratch(name: &str) -> PathBuf {
    binary::scratch("tabular", name)
}

fn wgpu_mlp(args: &[&str]) -> Run {
    wgpu_mlp_in(&std::env::temp_dir(), args)
}

const ROWS: usize = 80;

/// Row i of a regression: three inputs in [0, 1) and a target around 1000
/// with a spread of about 100.
fn regression_row(i: usize) -> [f64; 4] {
    let v = |k: usize| ((i * 7 + k * 13) % 17) as f64 / 17.0;
    let (a, b, c) = (v(0), v(1), v(2));
    [a, b, c, 1000.0 + 170.0 * (a - 0.5) + 120.0 * (b - c)]
}

fn regression_csv(dir: &Path) -> PathBuf {
    let mut text = String::from("a,b,c,price\n");
    for i in 0..ROWS {
        let [a, b, c, y] = regression_row(i);
        text += &format!("{a},{b},{c},{y}\n");
    }
    let path = dir.join("prices.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// Trains on `data` with `extra` flags into `dir/run` and returns the JSON summary.
fn train(dir: &Path, data: &Path, extra: &[&str]) -> Value {
    let out = dir.join("run");
    let data = format!("csv:{}", data.display());
    let args = ["--data", &data, "--hidden", "8", "--epochs", "20", "--device", "cpu", "--json", "--quiet"];
    let run = wgpu_mlp(&[&args[..], extra, &["--out", out.to_str().unwrap()]].concat());
    assert_success(&run);
    run.json()
}

/// A tensor of the checkpoint as f32 values.
fn tensor(file: &safetensors::SafeTensors, name: &str) -> Vec<f32> {
    let view = file.tensor(name).unwrap_or_else(|e| panic!("the checkpoint has no {name}: {e}"));
    view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[test]
fn scale_target_standard_predicts_in_the_targets_units() {
    let dir = scratch("scale-target");
    let data = regression_csv(&dir);
    let trained = train(&dir, &data, &["--scale-target", "standard"]);
    let checkpoint = trained["checkpoint"].as_str().expect("the last epoch is saved").to_string();
    let data_flag = format!("csv:{}", data.display());
    let predicted = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--data", &data_flag, "--device", "cpu"]);
    assert_success(&predicted);
    let mut lines = predicted.stdout.lines();
    assert_eq!(lines.next(), Some("output0"), "{}", predicted.show());
    let outputs: Vec<f64> = lines.map(|l| l.parse().unwrap()).collect();
    assert_eq!(outputs.len(), ROWS);
    assert!(outputs.iter().all(|&o| (500.0..1500.0).contains(&o)), "outputs in the target's range: {outputs:?}");

    // The same forward pass from the checkpoint's own tensors: scale the
    // inputs, relu hidden layer, identity output, unscale the output.
    let bytes = std::fs::read(&checkpoint).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let metadata = header.metadata().clone().unwrap();
    assert_eq!((metadata["hidden"].as_str(), metadata["output"].as_str()), ("relu", "identity"));
    let (shift, divisor) = (tensor(&file, "scaler.shift"), tensor(&file, "scaler.divisor"));
    let (y_shift, y_divisor) = (tensor(&file, "target_scaler.shift"), tensor(&file, "target_scaler.divisor"));
    assert!((900.0..1100.0).contains(&y_shift[0]), "the mean of the training targets: {y_shift:?}");
    assert!(y_divisor[0] > 10.0 && y_divisor[0] < 200.0, "their std: {y_divisor:?}");
    let (w0, b0, w1, b1) = (
        tensor(&file, "layers.0.weight"),
        tensor(&file, "layers.0.bias"),
        tensor(&file, "layers.1.weight"),
        tensor(&file, "layers.1.bias"),
    );
    let hidden = b0.len();
    for (i, &got) in outputs.iter().enumerate() {
        let x: Vec<f32> =
            regression_row(i)[..3].iter().enumerate().map(|(k, &v)| (v as f32 - shift[k]) / divisor[k]).collect();
        let h: Vec<f32> =
            (0..hidden).map(|j| (b0[j] + (0..3).map(|k| x[k] * w0[k * hidden + j]).sum::<f32>()).max(0.0)).collect();
        let out = b1[0] + (0..hidden).map(|j| h[j] * w1[j]).sum::<f32>();
        let want = (out * y_divisor[0] + y_shift[0]) as f64;
        assert!(
            (got - want).abs() <= 1e-3 * want.abs(),
            "row {i}: predict gave {got}, the checkpoint's tensors {want}"
        );
    }

    // Eval scores in the target's units, and says so.
    let eval = wgpu_mlp(&["eval", "--checkpoint", &checkpoint, "--device", "cpu"]);
    assert_success(&eval);
    assert!(eval.stdout.contains("target's units"), "{}", eval.show());
    let eval = wgpu_mlp(&["eval", "--checkpoint", &checkpoint, "--device", "cpu", "--json"]);
    assert_success(&eval);
    assert_eq!(eval.json()["loss_units"], "target", "{}", eval.show());
}

#[test]
fn scale_target_is_refused_for_classes() {
    let dir = scratch("scale-target-classes");
    let data = labeled_csv(&dir);
    let data_flag = format!("csv:{}", data.display());
    let run = wgpu_mlp(&[
        "--data",
        &data_flag,
        "--task",
        "classify",
        "--target",
        "label",
        "--id-column",
        "id",
        "--ignore-columns",
        "group",
        "--scale-target",
        "standard",
        "--device",
        "cpu",
        "--out",
        dir.join("run").to_str().unwrap(),
    ]);
    assert_bad_input(&run, "--scale-target applies to a regression");
}

/// Three classes with a text id and a group column: id,a,b,group,label.
fn labeled_csv(dir: &Path) -> PathBuf {
    let mut text = String::from("id,a,b,group,label\n");
    for i in 0..ROWS {
        let label = i % 3;
        let v = |k: usize| ((i * 7 + k * 13) % 10) as f64 * 0.1 + label as f64;
        text += &format!("row-{i},{},{},g{},{label}\n", v(0), v(1), i % 2);
    }
    let path = dir.join("labeled.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn id_and_ignored_columns_stay_out_of_training() {
    let dir = scratch("id-column");
    let data = labeled_csv(&dir);
    let data_flag = format!("csv:{}", data.display());
    let out = dir.join("refused");
    let base = ["--data", &data_flag, "--task", "classify", "--target", "label", "--device", "cpu", "--json"];
    // Text in a column that would be an input is an error...
    let refused = wgpu_mlp(&[&base[..], &["--ignore-columns", "group", "--out", out.to_str().unwrap()]].concat());
    assert_bad_input(&refused, "'row-0' is not a number");
    // ...unless it is the id or ignored, by name or by index.
    let trained =
        train(&dir, &data, &["--task", "classify", "--target", "label", "--id-column", "id", "--ignore-columns", "3"]);
    let rows = ["samples", "val_samples", "test_samples"].map(|key| trained[key].as_u64().unwrap());
    assert_eq!(rows.iter().sum::<u64>(), ROWS as u64, "{trained}");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("run/config.json")).unwrap()).unwrap();
    assert_eq!(config["columns"], serde_json::json!(["a", "b"]), "only a and b are inputs");
}

#[test]
fn predict_copies_the_id_and_passthrough_columns_and_the_true_target() {
    let dir = scratch("passthrough");
    let data = labeled_csv(&dir);
    let trained = train(
        &dir,
        &data,
        &["--task", "classify", "--target", "label", "--id-column", "id", "--ignore-columns", "group"],
    );
    let checkpoint = trained["checkpoint"].as_str().unwrap().to_string();
    let args =
        ["predict", "--checkpoint", &checkpoint, "--device", "cpu", "--id-column", "id", "--passthrough", "group"];
    let run = wgpu_mlp(&args);
    assert_success(&run);
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some("id,group,class,p0,p1,p2,target"), "{}", run.show());
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), ROWS, "every row, in file order");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!((row[0].as_str(), row[1].clone()), (format!("row-{i}").as_str(), format!("g{}", i % 2)));
        assert_eq!(row[6], (i % 3).to_string(), "the true label of row {i}");
    }

    // New rows without labels: the id, and no target column.
    let mut text = String::from("b,id,a\n");
    for i in 0..5 {
        text += &format!("0.{i},new-{i},1.{i}\n");
    }
    let new_rows = dir.join("new.csv");
    std::fs::write(&new_rows, text).unwrap();
    let new_flag = format!("csv:{}", new_rows.display());
    let run = wgpu_mlp(&[
        "predict",
        "--checkpoint",
        &checkpoint,
        "--data",
        &new_flag,
        "--device",
        "cpu",
        "--id-column",
        "id",
    ]);
    assert_success(&run);
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some("id,class,p0,p1,p2"), "{}", run.show());
    assert!(lines.next().unwrap().starts_with("new-0,"), "{}", run.show());

    // Copying needs every row in file order.
    let split = wgpu_mlp(&[&args[..], &["--split", "test"]].concat());
    assert_bad_input(&split, "--split all");
}

#[test]
fn a_target_scaling_that_divides_by_zero_is_refused() {
    let dir = scratch("zero-divisor");
    let data = regression_csv(&dir);
    let trained = train(&dir, &data, &["--scale-target", "standard"]);
    let checkpoint = trained["checkpoint"].as_str().unwrap().to_string();
    // The same file, its target divisor set to 0.
    let bytes = std::fs::read(&checkpoint).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let zero = 0f32.to_le_bytes();
    let tensors: Vec<(String, safetensors::tensor::TensorView)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| match name.as_str() {
            "target_scaler.divisor" => {
                (name, safetensors::tensor::TensorView::new(view.dtype(), view.shape().to_vec(), &zero).unwrap())
            }
            _ => (name, view),
        })
        .collect();
    let broken = dir.join("broken.safetensors");
    std::fs::write(&broken, safetensors::serialize(tensors, header.metadata().clone()).unwrap()).unwrap();
    let run = wgpu_mlp(&["predict", "--checkpoint", broken.to_str().unwrap(), "--device", "cpu"]);
    assert_bad_input(&run, "target_scaler.divisor[0] is 0");
}

#[test]
fn a_headerless_file_with_an_ignored_column_is_predicted_again() {
    let dir = scratch("headerless");
    let mut text = String::new();
    for i in 0..ROWS {
        let label = i % 3;
        let v = |k: usize| ((i * 7 + k * 13) % 10) as f64 * 0.1 + label as f64;
        text += &format!("{},{},{},{label}\n", 5000 + i, v(0), v(1));
    }
    let data = dir.join("headerless.csv");
    std::fs::write(&data, text).unwrap();
    let trained = train(&dir, &data, &["--task", "classify", "--ignore-columns", "0"]);
    let checkpoint = trained["checkpoint"].as_str().unwrap().to_string();
    // The checkpoint knows the file has four fields, not only the three read.
    let run = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--device", "cpu", "--id-column", "0"]);
    assert_success(&run);
    let mut lines = run.stdout.lines();
    assert_eq!(lines.next(), Some("column0,class,p0,p1,p2,target"), "{}", run.show());
    let first: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!((first[0], first[5]), ("5000", "0"), "{}", run.show());
}

#[test]
fn a_resume_without_the_target_scaling_says_so() {
    let dir = scratch("resume");
    let data = regression_csv(&dir);
    let trained = train(&dir, &data, &["--scale-target", "standard"]);
    let checkpoint = trained["checkpoint"].as_str().unwrap().to_string();
    let data_flag = format!("csv:{}", data.display());
    let out = dir.join("run").to_str().unwrap().to_string();
    let args = ["--data", &data_flag, "--hidden", "8", "--epochs", "30", "--device", "cpu", "--quiet"];
    let run = wgpu_mlp(&[&args[..], &["--out", &out, "--resume", &checkpoint]].concat());
    assert_bad_input(&run, "scale-target is standard, this run's is none");
    let resumed =
        wgpu_mlp(&[&args[..], &["--out", &out, "--resume", &checkpoint, "--scale-target", "standard"]].concat());
    assert_success(&resumed);
}
