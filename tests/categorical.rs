//! Categorical columns and missing values (issue 15, item 13): the loader
//! reads categories as codes and missing values as NaN, the encoder learns
//! categories and fills from the training rows only, the checkpoint keeps
//! it, and predict and eval apply exactly what training did.

use std::path::{Path, PathBuf};

use ndarray::array;
use wgpu_mlp::data::{self, ColumnEncoding, CsvOptions, Encoder, Missing, UnknownCategory};

mod binary;
mod common;

use binary::{assert_bad_input, assert_success, wgpu_mlp_in, Run};

fn scratch(name: &str) -> PathBuf {
    binary::scratch("categorical", name)
}

fn wgpu_mlp(args: &[&str]) -> Run {
    wgpu_mlp_in(&std::env::temp_dir(), args)
}

fn options(categorical: &[&str], missing: Missing) -> CsvOptions {
    CsvOptions {
        categorical: categorical.iter().map(|c| c.parse().unwrap()).collect(),
        missing,
        ..CsvOptions::default()
    }
}

fn load(text: &str, options: &CsvOptions) -> wgpu_mlp::Result<(wgpu_mlp::Dataset, data::CsvLayout)> {
    data::load_csv_with_layout(text.as_bytes(), "test.csv", options)
}

const TABLE: &str = "age,colour,y\n3,red,1\n,blue,0\n5,red,1\nNA,green,0\n9,,1\n";

#[test]
fn categories_are_read_as_codes_and_missing_values_as_nan() {
    let (data, layout) = load(TABLE, &options(&["colour"], Missing::Mean)).unwrap();
    assert_eq!(layout.texts, vec![None, Some(vec!["red".to_string(), "blue".into(), "green".into()])]);
    let x = &data.x;
    assert_eq!(x.column(1).iter().take(4).copied().collect::<Vec<_>>(), [0.0, 1.0, 0.0, 2.0]);
    assert!(x[(1, 0)].is_nan() && x[(3, 0)].is_nan() && x[(4, 1)].is_nan(), "{x}");
    assert_eq!((x[(0, 0)], x[(2, 0)], x[(4, 0)]), (3.0, 5.0, 9.0));

    let (dropped, layout) = load(TABLE, &options(&["colour"], Missing::Drop)).unwrap();
    assert_eq!((dropped.len(), layout.dropped), (2, 3), "rows 1 and 3 are whole");
    assert_eq!(dropped.y.column(0).to_vec(), [1.0, 1.0]);
}

#[test]
fn a_missing_value_by_default_and_a_missing_target_name_their_line_and_column() {
    let error = load(TABLE, &options(&["colour"], Missing::Error)).unwrap_err().to_string();
    assert!(error.contains("line 3, column 0 (age): a missing value (an empty cell)"), "{error}");
    assert!(error.contains("`missing` mean, median or drop"), "{error}");

    let no_target = "a,y\n1,2\n3,\n";
    let error = load(no_target, &options(&[], Missing::Median)).unwrap_err().to_string();
    assert!(error.contains("line 3, column 1 (y): the target is missing"), "{error}");
    let error = load("a,y\n1,\n3,NaN\n", &options(&[], Missing::Drop)).unwrap_err().to_string();
    assert!(error.contains("every one of the 2 data rows has a missing value"), "{error}");
}

#[test]
fn text_in_a_number_column_suggests_categorical_and_categorical_cannot_name_a_target() {
    let error = load(TABLE, &options(&[], Missing::Mean)).unwrap_err().to_string();
    assert!(error.contains("line 2, column 1 (colour): 'red' is not a number"), "{error}");
    assert!(error.contains("`categorical` colour one-hot encodes it"), "{error}");
    let error = load(TABLE, &options(&["y"], Missing::Mean)).unwrap_err().to_string();
    assert!(error.contains("`categorical` names column 2 (y), a target column"), "{error}");
    let error = load(TABLE, &options(&["colour", "1"], Missing::Mean)).unwrap_err().to_string();
    assert!(error.contains("names column 1 (colour) twice"), "{error}");
}

#[test]
fn a_categorical_column_of_ids_is_refused() {
    let mut text = String::from("id,y\n");
    (0..=data::MAX_CATEGORIES).for_each(|i| text += &format!("user{i},{}\n", i % 2));
    let error = load(&text, &options(&["id"], Missing::Error)).unwrap_err().to_string();
    assert!(error.contains(&format!("more than {} distinct categories", data::MAX_CATEGORIES)), "{error}");
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|c| format!("column {c}")).collect()
}

#[test]
fn the_encoder_learns_from_the_training_rows_only() {
    let texts = vec![None, Some(vec!["red".to_string(), "blue".into(), "green".into()])];
    // Training rows: ages 1, 2, 10 and a gap; colours red, blue, red, a gap. Green is only in the test rows.
    let nan = f32::NAN;
    let train = array![[1.0, 0.0], [2.0, 1.0], [10.0, 0.0], [nan, nan]];
    let mean = Encoder::fit(train.view(), &texts, Missing::Mean, &names(2)).unwrap().expect("an encoding");
    assert_eq!(
        mean.columns,
        [
            ColumnEncoding::Number { fill: Some(13.0 / 3.0) },
            ColumnEncoding::OneHot { categories: vec!["blue".into(), "red".into()], fill: Some("red".into()) },
        ]
    );
    let median = Encoder::fit(train.view(), &texts, Missing::Median, &names(2)).unwrap().unwrap();
    assert_eq!(median.columns[0], ColumnEncoding::Number { fill: Some(2.0) });
    let even = array![[1.0, 0.0], [2.0, 1.0], [10.0, 0.0], [4.0, 1.0]];
    let median = Encoder::fit(even.view(), &texts, Missing::Median, &names(2)).unwrap().unwrap();
    assert_eq!(median.columns[0], ColumnEncoding::Number { fill: Some(3.0) }, "the mean of the middle two");
    assert_eq!(
        median.columns[1],
        ColumnEncoding::OneHot { categories: vec!["blue".into(), "red".into()], fill: Some("blue".into()) },
        "a tie takes the first category"
    );

    // Inputs: age, then blue, red.
    let encoded = mean.transform(train.view(), &texts, UnknownCategory::Error, &names(2), "training row").unwrap();
    assert_eq!(encoded, array![[1.0, 0.0, 1.0], [2.0, 1.0, 0.0], [10.0, 0.0, 1.0], [13.0 / 3.0, 0.0, 1.0]]);
    assert_eq!((mean.width(), mean.one_hot_inputs(), mean.categorical()), (3, vec![1, 2], vec![1]));

    let test = array![[5.0, 1.0], [6.0, 2.0], [7.0, 2.0]];
    let error = mean.transform(test.view(), &texts, UnknownCategory::Error, &names(2), "test row").unwrap_err();
    let error = error.to_string();
    assert!(error.contains("column 1: test row 2 (and 1 more) has category 'green', which no training row has (they have 'blue', 'red')"), "{error}");
    let ignored = mean.transform(test.view(), &texts, UnknownCategory::Ignore, &names(2), "test row").unwrap();
    assert_eq!(ignored, array![[5.0, 1.0, 0.0], [6.0, 0.0, 0.0], [7.0, 0.0, 0.0]]);

    // Without fills, a gap is refused; with no categorical column and no fill there is nothing to encode.
    let refuses = Encoder::fit(train.view(), &texts, Missing::Error, &names(2)).unwrap().unwrap();
    let error = refuses.transform(train.view(), &texts, UnknownCategory::Error, &names(2), "data row").unwrap_err();
    assert!(error.to_string().contains("column 0: data row 4 has a missing value"), "{error}");
    assert_eq!(Encoder::fit(train.view(), &[None, None], Missing::Drop, &names(2)).unwrap(), None);
    let all_gaps = array![[nan, 0.0], [nan, 1.0]];
    let error = Encoder::fit(all_gaps.view(), &texts, Missing::Median, &names(2)).unwrap_err().to_string();
    assert!(error.contains("column 0 has no value in any training row"), "{error}");
}

#[test]
fn the_encoder_reads_back_what_it_writes_and_refuses_a_broken_one() {
    let encoder = Encoder {
        columns: vec![
            ColumnEncoding::Number { fill: Some(0.1) },
            ColumnEncoding::Number { fill: None },
            ColumnEncoding::OneHot { categories: vec!["a,b".into(), "\"q\"".into()], fill: None },
        ],
    };
    let text = encoder.to_json().to_string();
    let back = Encoder::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(back, encoder, "every f32 and text exactly: {text}");
    for (broken, says) in [
        (r#"[{"one_hot":{"categories":[],"fill":null}}]"#, "no categories"),
        (r#"[{"one_hot":{"categories":["a","a"]}}]"#, "listed twice"),
        (r#"[{"one_hot":{"categories":["a"],"fill":"b"}}]"#, "not one of the categories"),
        (r#"[{"number":{"fill":1e300}}]"#, "not a finite f32"),
        (r#"[{"text":{}}]"#, "neither"),
        (r#"{"number":1}"#, "not a JSON array"),
    ] {
        let error = Encoder::from_json(&serde_json::from_str(broken).unwrap()).unwrap_err();
        assert!(error.contains(says), "{broken}: {error}");
    }
}

/// 120 rows: a number with gaps, a colour and a size; the class depends on
/// both the number and the colour, so the one-hot inputs matter.
fn shop_csv(dir: &Path) -> String {
    let colours = ["red", "green", "blue"];
    let sizes = ["S", "M", "L", "XL"];
    let mut text = String::from("price,colour,size,bought\n");
    for i in 0..120 {
        let price = ((i * 37) % 100) as f64 / 10.0;
        let colour = colours[(i * 7) % 3];
        let bought = usize::from((colour == "red") != (price > 5.0));
        let price = if i % 11 == 4 { String::new() } else { price.to_string() };
        text += &format!("{price},{colour},{},{bought}\n", sizes[(i * 5) % 4]);
    }
    let path = dir.join("shop.csv");
    std::fs::write(&path, text).unwrap();
    format!("csv:{}", path.display())
}

const SHOP_FLAGS: [&str; 8] =
    ["--task", "classify", "--categorical", "colour,size", "--hidden", "8", "--quiet", "--json"];

/// The rows a run read: training, validation and test.
fn rows(json: &serde_json::Value) -> u64 {
    ["samples", "val_samples", "test_samples"].map(|key| json[key].as_u64().unwrap_or(0)).iter().sum()
}

/// Trains on [`shop_csv`] with `--missing` `missing` for 6 epochs, and `extra` flags.
fn train_shop(dir: &Path, device: &str, missing: &str, extra: &[&str]) -> serde_json::Value {
    let data = shop_csv(dir);
    let out = dir.join(format!("run-{device}"));
    let args = [
        &["--data", &data, "--device", device, "--out", out.to_str().unwrap(), "--missing", missing, "--epochs", "6"],
        &SHOP_FLAGS[..],
        extra,
    ]
    .concat();
    let run = wgpu_mlp(&args);
    assert_success(&run);
    run.json()
}

#[test]
fn predict_and_eval_apply_the_encoding_training_stored() {
    let dir = scratch("predict");
    let trained = train_shop(&dir, "cpu", "median", &[]);
    assert_eq!(trained["layers"][0], 8, "price, 3 colours and 4 sizes: {trained}");
    let checkpoint = trained["checkpoint"].as_str().unwrap().to_string();
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run-cpu/config.json")).unwrap()).unwrap();
    assert_eq!(
        (config["categorical"].to_string(), config["missing"].as_str()),
        (r#"["colour","size"]"#.into(), Some("median"))
    );

    // Eval alone scores the run's own test rows, as training did.
    let eval = wgpu_mlp(&["eval", "--checkpoint", &checkpoint, "--device", "cpu", "--json"]);
    assert_success(&eval);
    let scored = eval.json();
    assert_eq!(scored["rows"], trained["test_samples"], "{scored}");
    assert_eq!(scored["accuracy"], trained["test_accuracy"], "{scored} {trained}");

    // New rows, columns in another order, a gap filled with the training median, an unseen size.
    let new = dir.join("new.csv");
    std::fs::write(&new, "size,colour,price\nM,red,2\nS,blue,\nXXL,green,9\n").unwrap();
    let new_flag = format!("csv:{}", new.display());
    let refused = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--data", &new_flag, "--device", "cpu"]);
    assert_bad_input(&refused, "column 0 (size): data row 3 has category 'XXL', which no training row has");
    assert!(refused.stderr.contains("--unknown-category ignore"), "{}", refused.show());
    let args = [
        "predict",
        "--checkpoint",
        &checkpoint,
        "--data",
        &new_flag,
        "--device",
        "cpu",
        "--unknown-category",
        "ignore",
    ];
    let predicted = wgpu_mlp(&args);
    assert_success(&predicted);
    assert_eq!(predicted.stdout.lines().count(), 4, "a header and every row: {}", predicted.show());

    // The same rows written as training's encoder gives them, by hand: the
    // median of the training prices fills the gap.
    let metadata = binary::checkpoint_metadata(Path::new(&checkpoint));
    let encoder = Encoder::from_json(&serde_json::from_str(&metadata["data.encoder"]).unwrap()).unwrap();
    let ColumnEncoding::Number { fill: Some(fill) } = encoder.columns[0] else { panic!("{:?}", encoder.columns) };
    let filled = dir.join("filled.csv");
    std::fs::write(&filled, format!("price,colour,size\n2,red,M\n{fill},blue,S\n9,green,XXL\n")).unwrap();
    let filled_flag = format!("csv:{}", filled.display());
    let args = [
        "predict",
        "--checkpoint",
        &checkpoint,
        "--data",
        &filled_flag,
        "--device",
        "cpu",
        "--unknown-category",
        "ignore",
    ];
    let by_hand = wgpu_mlp(&args);
    assert_success(&by_hand);
    assert_eq!(by_hand.stdout, predicted.stdout, "the gap is filled with the stored median {fill}");

    // Export cannot put the encoding in the graph yet, and says so.
    let onnx = dir.join("model.onnx");
    let export = wgpu_mlp(&["export", "--checkpoint", &checkpoint, "--out", onnx.to_str().unwrap()]);
    assert_bad_input(&export, "export does not put that encoding in the graph yet");
    assert!(!onnx.exists());
}

#[test]
fn a_model_trained_with_drop_predicts_no_row_with_a_gap_and_eval_drops_as_training_did() {
    let dir = scratch("drop");
    let trained = train_shop(&dir, "cpu", "drop", &[]);
    assert_eq!(rows(&trained), 109, "11 rows have gaps: {trained}");
    let checkpoint = trained["checkpoint"].as_str().unwrap().to_string();
    let eval = wgpu_mlp(&["eval", "--checkpoint", &checkpoint, "--device", "cpu", "--json"]);
    assert_success(&eval);
    assert_eq!(eval.json()["rows"], trained["test_samples"]);
    let predict = wgpu_mlp(&["predict", "--checkpoint", &checkpoint, "--device", "cpu"]);
    assert_bad_input(
        &predict,
        "line 6, column 0 (price): a missing value (an empty cell); the model was trained with --missing drop",
    );
}

#[test]
fn the_flags_are_checked() {
    let dir = scratch("flags");
    let data = shop_csv(&dir);
    let run = wgpu_mlp(&["--data", &data, "--task", "classify", "--device", "cpu", "--epochs", "1"]);
    assert_bad_input(
        &run,
        "'red' is not a number; if the column holds categories, --categorical colour one-hot encodes it",
    );
    let run = wgpu_mlp(&["--data", &data, "--task", "classify", "--categorical", "colour,size", "--device", "cpu"]);
    assert_bad_input(&run, "line 6, column 0 (price): a missing value (an empty cell); --missing mean, median or drop");
    let run = wgpu_mlp(&["--data", &data, "--categorical", "bought", "--device", "cpu"]);
    assert_bad_input(&run, "--categorical names column 3 (bought), a target column");
    let run = wgpu_mlp(&["--data", &data, "--categorical", "shape", "--device", "cpu"]);
    assert_bad_input(&run, "--categorical: no column named 'shape'");
    for flags in [["--categorical", "0"], ["--missing", "mean"], ["--unknown-category", "ignore"]] {
        let run = wgpu_mlp(&[&["--data", "seed"][..], &flags].concat());
        assert_bad_input(&run, &format!("{} applies to --data csv:PATH only", flags[0]));
    }
    let run = wgpu_mlp(&["--data", &data, "--missing", "zero"]);
    assert_eq!(run.code, Some(2), "clap names the choices: {}", run.show());
    assert!(run.stderr.contains("error, mean, median, drop"), "{}", run.show());
}

#[test]
fn an_encoded_run_resumes_bit_for_bit() {
    let dir = scratch("resume");
    let data = shop_csv(&dir);
    let train = |out: &str, epochs: &str, extra: &[&str]| {
        let out = dir.join(out);
        let args = [
            &["--data", &data, "--device", "cpu", "--out", out.to_str().unwrap()],
            &SHOP_FLAGS[..],
            &["--missing", "mean", "--epochs", epochs],
            extra,
        ]
        .concat();
        let run = wgpu_mlp(&args);
        assert_success(&run);
        PathBuf::from(run.json()["checkpoint"].as_str().unwrap())
    };
    let straight = train("straight", "6", &[]);
    train("halves", "3", &[]);
    let half_path = dir.join("halves/checkpoint-epoch3.safetensors");
    let resumed = train("halves", "6", &["--resume", half_path.to_str().unwrap()]);
    let params = binary::layer_tensors;
    assert!(!params(&straight).is_empty());
    assert_eq!(params(&straight), params(&resumed), "6 epochs straight and 3 + resume + 3");
}

/// The largest |GPU - CPU| parameter difference after a short Adam run, as tests/cli.rs allows.
const GPU_PARAM_ATOL: f64 = 1e-3;

#[test]
fn an_encoded_run_agrees_on_the_gpu_and_the_cpu() {
    if common::gpu().is_none() {
        return;
    }
    let dir = scratch("gpu");
    let trained = train_shop(&dir, "gpu", "mean", &["--verify"]);
    let diff = trained["max_abs_param_diff"].as_f64().unwrap();
    assert!(diff < GPU_PARAM_ATOL, "max |GPU - CPU| parameter difference {diff}: {trained}");
}

#[test]
fn a_headerless_file_with_categories_is_read_whole_with_no_header() {
    let dir = scratch("no-header");
    let path = dir.join("plain.csv");
    let text: String = (0..40).map(|i| format!("{},{},{}\n", ["a", "b"][i % 2], i % 5, (i % 2 + i % 5) % 2)).collect();
    std::fs::write(&path, text).unwrap();
    let data = format!("csv:{}", path.display());
    let args = [
        "--data",
        &data,
        "--task",
        "classify",
        "--categorical",
        "0",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--json",
        "--quiet",
    ];
    // Detection takes the first row, which has text, for a header.
    let detected = wgpu_mlp(&[&args[..], &["--out", dir.join("detected").to_str().unwrap()]].concat());
    assert_success(&detected);
    assert_eq!(rows(&detected.json()), 39);
    let whole = wgpu_mlp(&[&args[..], &["--no-header", "--out", dir.join("whole").to_str().unwrap()]].concat());
    assert_success(&whole);
    let json = whole.json();
    assert_eq!(rows(&json), 40, "{json}");
    assert_eq!(json["layers"][0], 3, "a and b one-hot, then the number: {json}");
    // Predict reads the training file as training did: every row.
    let predicted = wgpu_mlp(&["predict", "--checkpoint", json["checkpoint"].as_str().unwrap(), "--device", "cpu"]);
    assert_success(&predicted);
    assert_eq!(predicted.stdout.lines().count(), 41, "a header line and 40 rows: {}", predicted.show());
}
