//! Per-group (fairness) reports: the metrics and fairlearn's gaps on small
//! cases worked by hand, the loaders' group columns, and --group on
//! training and eval (scripts/check-fairlearn checks the numbers against
//! fairlearn itself).

use std::path::{Path, PathBuf};

use ndarray::array;
use wgpu_mlp::data::{self, CsvOptions, Missing};
use wgpu_mlp::fairness::{FairnessReport, Predictions};

mod binary;

use binary::{assert_bad_input, assert_success, checkpoint_metadata, wgpu_mlp_in, Run};

/// Exact in binary or not, the rates are sums of a few ones divided once.
const EXACT: f64 = 1e-12;

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= EXACT
}

fn names(groups: &[&str]) -> Vec<String> {
    groups.iter().map(|g| g.to_string()).collect()
}

#[test]
fn binary_rates_and_gaps_as_fairlearn_defines_them() {
    // Group A: truth 1 1 0 0, predicted 1 0 1 0. Group B: truth 1 1 1 0,
    // predicted 1 0 0 0. C is declared (a training group) with no rows here.
    let truth = [1, 1, 0, 0, 1, 1, 1, 0];
    let predicted = [1, 0, 1, 0, 1, 0, 0, 0];
    let groups = names(&["A", "A", "A", "A", "B", "B", "B", "B"]);
    let report = FairnessReport::new(
        Predictions::Classes { truth: &truth, predicted: &predicted, classes: 2 },
        &groups,
        &names(&["C"]),
    )
    .unwrap();
    let [a, b, c] = &report.groups[..] else { panic!("three groups: {report:?}") };
    // A: 2 of 4 right; 2 of 4 predicted 1; 1 of its 2 positives found; 1 of its 2 negatives flagged.
    assert_eq!((a.group.as_str(), a.rows, a.accuracy), ("A", 4, Some(0.5)));
    assert_eq!(a.rates[0].class, 1);
    assert_eq!(
        (a.rates[0].selection_rate, a.rates[0].true_positive_rate, a.rates[0].false_positive_rate),
        (0.5, 0.5, 0.5)
    );
    // B: 2 of 4 right; 1 of 4 predicted 1; 1 of its 3 positives; 0 of its 1 negative.
    assert_eq!((b.rows, b.accuracy), (4, Some(0.5)));
    assert_eq!((b.rates[0].selection_rate, b.rates[0].false_positive_rate), (0.25, 0.0));
    assert!(close(b.rates[0].true_positive_rate, 1.0 / 3.0));
    // C: listed, no metrics, left out of the gaps.
    assert_eq!((c.group.as_str(), c.rows, c.accuracy, c.rates.len()), ("C", 0, None, 0));
    let gaps = &report.gaps;
    assert_eq!((gaps.groups, gaps.left_out.clone()), (2, names(&["C"])));
    let gap = gaps.classes[0];
    // Selection 0.5 and 0.25: difference 0.25, ratio 0.5. TPR 0.5 and 1/3
    // differ by 1/6, FPR 0.5 and 0 by 0.5: equalized odds takes the larger.
    assert_eq!((gap.demographic_parity_difference, gap.demographic_parity_ratio), (0.25, Some(0.5)));
    assert_eq!(gap.equalized_odds_difference, 0.5);

    let json = report.to_json();
    assert_eq!(json["gaps"]["demographic_parity_ratio"], 0.5);
    assert_eq!(json["gaps"]["left_out"][0], "C");
    assert_eq!(json["groups"][2]["rows"], 0);
    assert!(json["groups"][2]["selection_rate"].is_null(), "{json}");
    let text = report.text("sex");
    assert!(text.contains("per group of sex"), "{text}");
    assert!(text.contains("left out of the gaps, having no rows: C"), "{text}");
}

#[test]
fn a_group_without_positives_has_a_true_positive_rate_of_0_that_counts() {
    // A: truth 0 0, predicted 0 1: no positive (TPR 0, scikit-learn's
    // nan_to_num), FPR 1/2. B: truth 1 0, predicted 1 0: TPR 1, FPR 0.
    // Equalized odds: max(1 - 0, 0.5 - 0) = 1.
    let (truth, predicted) = ([0, 0, 1, 0], [0, 1, 1, 0]);
    let groups = names(&["A", "A", "B", "B"]);
    let report =
        FairnessReport::new(Predictions::Classes { truth: &truth, predicted: &predicted, classes: 2 }, &groups, &[])
            .unwrap();
    assert_eq!(report.groups[0].rates[0].true_positive_rate, 0.0);
    assert_eq!(report.groups[0].rates[0].false_positive_rate, 0.5);
    assert_eq!(report.gaps.classes[0].equalized_odds_difference, 1.0);
}

#[test]
fn no_group_selected_leaves_the_ratio_undefined() {
    // Nothing predicted 1: every selection rate is 0, so min / max is 0 / 0
    // (fairlearn's NaN) and the difference 0.
    let (truth, predicted) = ([1, 0, 1, 0], [0, 0, 0, 0]);
    let groups = names(&["b", "b", "a", "a"]);
    let report =
        FairnessReport::new(Predictions::Classes { truth: &truth, predicted: &predicted, classes: 2 }, &groups, &[])
            .unwrap();
    // Sorted by name whatever the rows' order.
    assert_eq!(report.groups.iter().map(|g| g.group.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let gap = report.gaps.classes[0];
    assert_eq!((gap.demographic_parity_difference, gap.demographic_parity_ratio), (0.0, None));
    assert!(report.to_json()["gaps"]["demographic_parity_ratio"].is_null());
    assert!(report.text("g").contains("ratio undefined"), "{}", report.text("g"));
}

#[test]
fn multi_class_rates_are_one_class_against_the_rest() {
    // G1: truth 0 1 2, predicted 0 2 2. G2: truth 0 0 1 2, predicted 1 0 1 2.
    let truth = [0, 1, 2, 0, 0, 1, 2];
    let predicted = [0, 2, 2, 1, 0, 1, 2];
    let groups = names(&["G1", "G1", "G1", "G2", "G2", "G2", "G2"]);
    let report =
        FairnessReport::new(Predictions::Classes { truth: &truth, predicted: &predicted, classes: 3 }, &groups, &[])
            .unwrap();
    let (g1, g2) = (&report.groups[0], &report.groups[1]);
    assert!(close(g1.accuracy.unwrap(), 2.0 / 3.0));
    assert_eq!(g2.accuracy, Some(0.75));
    // (selection, TPR, FPR) per class.
    let rates = |g: &wgpu_mlp::fairness::GroupScores| -> Vec<(f64, f64, f64)> {
        g.rates.iter().map(|r| (r.selection_rate, r.true_positive_rate, r.false_positive_rate)).collect()
    };
    let (third, half) = (1.0 / 3.0, 0.5);
    // G1 class 0: 1 of 3 predicted, its one 0 found, none of 2 others; class 1:
    // never predicted; class 2: 2 of 3 predicted, its one 2 found, 1 of 2 others.
    let expected_g1 = [(third, 1.0, 0.0), (0.0, 0.0, 0.0), (2.0 * third, 1.0, half)];
    for (got, want) in rates(g1).iter().zip(expected_g1) {
        assert!(close(got.0, want.0) && close(got.1, want.1) && close(got.2, want.2), "{got:?} vs {want:?}");
    }
    // G2 class 0: 1 of 4, 1 of its 2 zeros, 0 of 2; class 1: 2 of 4, its one 1,
    // 1 of 3 others; class 2: 1 of 4, its one 2, 0 of 3.
    let expected_g2 = [(0.25, half, 0.0), (half, 1.0, third), (0.25, 1.0, 0.0)];
    for (got, want) in rates(g2).iter().zip(expected_g2) {
        assert!(close(got.0, want.0) && close(got.1, want.1) && close(got.2, want.2), "{got:?} vs {want:?}");
    }
    // Class 0: 1/3 - 1/4 = 1/12, ratio 3/4, TPR 1 - 1/2. Class 1: 1/2 - 0,
    // ratio 0, TPR 1 - 0. Class 2: 2/3 - 1/4 = 5/12, ratio 3/8, FPR 1/2 - 0.
    let expected = [(1.0 / 12.0, 0.75, 0.5), (0.5, 0.0, 1.0), (5.0 / 12.0, 0.375, 0.5)];
    for (gap, (difference, ratio, odds)) in report.gaps.classes.iter().zip(expected) {
        assert!(close(gap.demographic_parity_difference, difference), "{gap:?}");
        assert!(close(gap.demographic_parity_ratio.unwrap(), ratio), "{gap:?}");
        assert!(close(gap.equalized_odds_difference, odds), "{gap:?}");
    }
    assert_eq!(report.to_json()["gaps"]["classes"][1]["class"], 1);
}

#[test]
fn regression_groups_get_their_squared_and_absolute_errors() {
    // G1: residuals 0 and -2, so MSE (0 + 4) / 2 = 2, MAE (0 + 2) / 2 = 1.
    // G2: residuals -1, -1, 1, so MSE 1 and MAE 1. Differences 1 and 0.
    let truth = array![[1.0f32], [2.0], [0.0], [0.0], [0.0]];
    let predicted = array![[1.0f32], [4.0], [1.0], [1.0], [-1.0]];
    let groups = names(&["G1", "G1", "G2", "G2", "G2"]);
    let report =
        FairnessReport::new(Predictions::Values { truth: truth.view(), predicted: predicted.view() }, &groups, &[])
            .unwrap();
    assert_eq!((report.groups[0].mse, report.groups[0].mae), (Some(2.0), Some(1.0)));
    assert_eq!((report.groups[1].mse, report.groups[1].mae), (Some(1.0), Some(1.0)));
    assert_eq!((report.gaps.mse_difference, report.gaps.mae_difference), (Some(1.0), Some(0.0)));
    assert!(report.gaps.classes.is_empty());
    assert_eq!(report.to_json()["groups"][0]["mse"], 2.0);
}

#[test]
fn mismatched_rows_and_labels_are_errors_not_panics() {
    let groups = names(&["a", "b"]);
    let short = FairnessReport::new(Predictions::Classes { truth: &[0, 1], predicted: &[0], classes: 2 }, &groups, &[]);
    assert!(short.is_err());
    let outside =
        FairnessReport::new(Predictions::Classes { truth: &[0, 2], predicted: &[0, 1], classes: 2 }, &groups, &[]);
    assert!(outside.unwrap_err().to_string().contains("label 2"));
    let fewer_groups = FairnessReport::new(
        Predictions::Classes { truth: &[0, 1, 1], predicted: &[0, 1, 1], classes: 2 },
        &groups,
        &[],
    );
    assert!(fewer_groups.unwrap_err().to_string().contains("3 rows scored and 2 group names"));
}

#[test]
fn the_loader_reads_group_columns_as_categories_and_labels_each_row() {
    let text = "sex,x,age,y\nf,1,old,0\nm,2,young,1\nf,3,,0\n";
    let options = CsvOptions {
        group: vec!["sex".parse().unwrap(), "2".parse().unwrap()],
        missing: Missing::Mean,
        ..Default::default()
    };
    let (rows, layout) = data::load_csv_with_layout(text.as_bytes(), "t.csv", &options).unwrap();
    assert_eq!(layout.groups, [0, 2]);
    assert_eq!(layout.group_names(), ["sex", "age"]);
    let labels = layout.group_labels(rows.x.view()).unwrap();
    assert_eq!(labels, ["f & old", "m & young", "f & (missing)"]);
    // Taken out, the inputs are x alone.
    let positions: Vec<usize> = layout.group_inputs().into_iter().flatten().collect();
    let (without, kept) = layout.without_inputs(&positions);
    assert_eq!((without.inputs.clone(), kept.clone()), (vec![1], vec![1]));
    let mut rows = rows;
    rows.keep_inputs(&kept);
    assert_eq!(rows.x, array![[1.0f32], [2.0], [3.0]]);
    assert_eq!(without.group_labels(rows.x.view()), None, "no longer inputs, the groups cannot be read");

    let bad = |group: &str| {
        let options = CsvOptions { group: vec![group.parse().unwrap()], ..Default::default() };
        data::load_csv_with_layout("sex,x,y\nf,1,0\n".as_bytes(), "t.csv", &options).unwrap_err().to_string()
    };
    assert!(
        bad("colour").contains("`group`: no column named 'colour'; the header has: sex, x, y"),
        "{}",
        bad("colour")
    );
    assert!(bad("y").contains("the target column"), "{}", bad("y"));
}

// The command line.

fn scratch(name: &str) -> PathBuf {
    binary::scratch("fairness", name)
}

/// 240 rows: two inputs, a `sex` and an `age` column of text, and a binary
/// label that favours one sex (a planted bias), every fifth label flipped.
fn people_csv(dir: &Path, name: &str, sexes: &[&str]) -> String {
    let mut text = String::from("x1,sex,x2,age,label\n");
    for i in 0..240 {
        let v = |k: usize| ((i * 37 + k * 11) % 101) as f64 / 101.0;
        let sex = sexes[i % sexes.len()];
        let age = if (i / 2) % 3 == 0 { "60+" } else { "under 60" };
        let lifted = if sex == "male" { 0.2 } else { 0.0 };
        let clean = usize::from(v(0) + lifted > 0.6);
        let label = if i % 5 == 0 { 1 - clean } else { clean };
        text += &format!("{},{sex},{},{age},{label}\n", v(0), v(1));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("the CSV is written");
    format!("csv:{}", path.display())
}

fn train(dir: &Path, data: &str, extra: &[&str]) -> Run {
    let out = dir.join("run");
    let mut args = vec!["--data", data, "--task", "classify", "--epochs", "3", "--device", "cpu", "--json"];
    args.extend_from_slice(&["--out", out.to_str().unwrap(), "--overwrite"]);
    args.extend_from_slice(extra);
    wgpu_mlp_in(dir, &args)
}

#[test]
fn training_reports_the_test_groups_and_eval_reports_the_same() {
    let dir = scratch("train-eval");
    let data = people_csv(&dir, "people.csv", &["female", "male"]);
    let run = train(&dir, &data, &["--group", "sex", "--group", "age"]);
    assert_success(&run);
    let summary = run.json();
    let fairness = &summary["fairness"];
    let groups = fairness["groups"].as_array().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g["group"].as_str().unwrap()).collect();
    assert_eq!(names, ["female & 60+", "female & under 60", "male & 60+", "male & under 60"]);
    let rows: u64 = groups.iter().map(|g| g["rows"].as_u64().unwrap()).sum();
    let test_rows = summary["classification_report"]["macro_avg"]["support"].as_f64().unwrap();
    assert_eq!(rows as f64, test_rows, "every test row is in one group\n{fairness}");
    for key in ["demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"] {
        assert!(fairness["gaps"][key].is_f64(), "{key}\n{fairness}");
    }
    // The group columns are kept out of the inputs: the model reads x1 and x2.
    assert_eq!(summary["layers"][0], 2, "{summary}");
    let folder = dir.join("run");
    let csv = std::fs::read_to_string(folder.join("fairness.csv")).unwrap();
    assert!(
        csv.starts_with("group,class,rows,accuracy,selection_rate,true_positive_rate,false_positive_rate\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let svg = std::fs::read_to_string(folder.join("fairness.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("male &amp; 60+"), "the legend names the groups");
    // The kept model: the best epoch's, by the validation rows.
    let checkpoint = folder.join("checkpoint-best.safetensors");
    let metadata = checkpoint_metadata(&checkpoint);
    assert_eq!(metadata["data.groups"], r#"["sex","age"]"#);

    // eval finds the columns from the checkpoint and scores the same test rows.
    let eval = wgpu_mlp_in(&dir, &["eval", "--checkpoint", checkpoint.to_str().unwrap(), "--device", "cpu", "--json"]);
    assert_success(&eval);
    assert_eq!(eval.json()["fairness"], *fairness);
    let text = wgpu_mlp_in(&dir, &["eval", "--checkpoint", checkpoint.to_str().unwrap(), "--device", "cpu"]);
    assert_success(&text);
    assert!(text.stdout.contains("per group of sex & age (positive class 1):"), "{}", text.show());
    assert!(text.stdout.contains("demographic parity difference"), "{}", text.show());
}

#[test]
fn a_group_as_feature_is_one_hot_encoded_too() {
    let dir = scratch("as-feature");
    let data = people_csv(&dir, "people.csv", &["female", "male"]);
    let run = train(&dir, &data, &["--group", "sex", "--group-as-feature", "--ignore-columns", "age"]);
    assert_success(&run);
    // x1, x2, and sex one-hot over its two values.
    let summary = run.json();
    assert_eq!(summary["layers"][0], 4, "{summary}");
    assert_eq!(summary["fairness"]["groups"].as_array().unwrap().len(), 2);
    let run = train(&dir, &data, &["--group", "sex", "--group-as-feature", "--categorical", "age"]);
    assert_success(&run);
    assert_eq!(run.json()["layers"][0], 6, "x1, x2, two sexes and two ages");
    let checkpoint = dir.join("run/checkpoint-best.safetensors");
    let eval = wgpu_mlp_in(&dir, &["eval", "--checkpoint", checkpoint.to_str().unwrap(), "--device", "cpu", "--json"]);
    assert_success(&eval);
    assert_eq!(eval.json()["fairness"], run.json()["fairness"]);
}

#[test]
fn a_training_group_without_rows_in_the_evaluated_data_is_listed_and_left_out() {
    let dir = scratch("empty-group");
    let data = people_csv(&dir, "people.csv", &["female", "male", "other"]);
    let run = train(&dir, &data, &["--group", "sex", "--ignore-columns", "age"]);
    assert_success(&run);
    // New rows with no "other": the group is listed with 0 rows, not a crash.
    let new = people_csv(&dir, "new.csv", &["female", "male"]);
    let checkpoint = dir.join("run/checkpoint-epoch3.safetensors");
    let eval = wgpu_mlp_in(
        &dir,
        &["eval", "--checkpoint", checkpoint.to_str().unwrap(), "--data", &new, "--device", "cpu", "--json"],
    );
    assert_success(&eval);
    let fairness = &eval.json()["fairness"];
    let other = &fairness["groups"][2];
    assert_eq!((other["group"].as_str(), other["rows"].as_u64()), (Some("other"), Some(0)), "{fairness}");
    assert!(other["accuracy"].is_null(), "{fairness}");
    assert_eq!(fairness["gaps"]["groups"], 2);
    assert_eq!(fairness["gaps"]["left_out"][0], "other");
    let text =
        wgpu_mlp_in(&dir, &["eval", "--checkpoint", checkpoint.to_str().unwrap(), "--data", &new, "--device", "cpu"]);
    assert_success(&text);
    assert!(text.stdout.contains("left out of the gaps, having no rows: other"), "{}", text.show());

    // A file without the group columns is scored without the groups, with a warning.
    let plain = dir.join("plain.csv");
    let rows: Vec<String> = std::fs::read_to_string(dir.join("new.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},{}", f[0], f[2], f[4])
        })
        .collect();
    std::fs::write(&plain, rows.join("\n") + "\n").unwrap();
    let plain = format!("csv:{}", plain.display());
    let eval = wgpu_mlp_in(
        &dir,
        &["eval", "--checkpoint", checkpoint.to_str().unwrap(), "--data", &plain, "--device", "cpu", "--json"],
    );
    assert_success(&eval);
    assert!(eval.json().get("fairness").is_none());
    assert!(eval.stderr.contains("no per-group report"), "{}", eval.show());
}

#[test]
fn a_regression_reports_errors_per_group() {
    let dir = scratch("regression");
    let data = people_csv(&dir, "people.csv", &["female", "male"]);
    let out = dir.join("run");
    let run = wgpu_mlp_in(
        &dir,
        &["--data", &data, "--target", "x2", "--ignore-columns", "age", "--group", "sex", "--epochs", "2"]
            .into_iter()
            .chain(["--device", "cpu", "--json", "--out", out.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    assert_success(&run);
    let fairness = &run.json()["fairness"];
    assert!(fairness["groups"][0]["mse"].is_f64() && fairness["groups"][1]["mae"].is_f64(), "{fairness}");
    assert!(fairness["gaps"]["mse_difference"].is_f64(), "{fairness}");
    let csv = std::fs::read_to_string(out.join("fairness.csv")).unwrap();
    assert!(csv.starts_with("group,rows,mse,mae\n"), "{csv}");
}

#[test]
fn the_group_flags_are_checked() {
    let dir = scratch("bad");
    let data = people_csv(&dir, "people.csv", &["female", "male"]);
    let missing = train(&dir, &data, &["--group", "gender", "--categorical", "age"]);
    assert_bad_input(&missing, "--group: no column named 'gender'; the header has: x1, sex, x2, age, label");
    assert_bad_input(
        &train(&dir, &data, &["--group", "label,age"]),
        "--group names column 4 (label), the target column",
    );
    assert_bad_input(&train(&dir, &data, &["--group", "sex,age", "--categorical", "sex"]), "--group-as-feature");
    let seed = wgpu_mlp_in(&dir, &["--group", "sex", "--epochs", "1", "--device", "cpu"]);
    assert_bad_input(&seed, "--group applies to --data csv:PATH only");

    let run = train(&dir, &data, &["--group", "sex,age"]);
    assert_success(&run);
    let checkpoint = dir.join("run/checkpoint-epoch3.safetensors");
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--checkpoint", checkpoint.to_str().unwrap(), "--device", "cpu"];
        args.extend_from_slice(extra);
        wgpu_mlp_in(&dir, &args)
    };
    assert_bad_input(&eval(&["--group", "gender"]), "--group: no column named 'gender'");
    assert_bad_input(&eval(&["--group", "x1"]), "which the model reads as a number");
    assert_bad_input(&eval(&["--data", "seed", "--group", "sex"]), "--group applies to --data csv:PATH only");
    // Another group column than training's, on its own.
    let other = eval(&["--group", "age", "--json"]);
    assert_success(&other);
    assert_eq!(other.json()["fairness"]["groups"].as_array().unwrap().len(), 2);
}
