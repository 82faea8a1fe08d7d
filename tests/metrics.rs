//! The classification and regression reports on cases small enough to score
//! by hand: every expected value is derived in the comments beside it, as
//! scikit-learn defines it (zero_division=0, force_finite=True). No GPU needed.

use wgpu_mlp::metrics::{ClassReport, ClassScores, OutputScores, RegressionReport};
use wgpu_mlp::ndarray::{array, Array2};

/// Floating-point sums of a handful of terms: a few ulps from the exact fraction.
const TOLERANCE: f64 = 1e-12;

fn assert_close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= TOLERANCE, "{what}: got {got}, want {want}");
}

fn assert_scores(got: &ClassScores, [precision, recall, f1, support]: [f64; 4], what: &str) {
    assert_close(got.precision, precision, &format!("{what} precision"));
    assert_close(got.recall, recall, &format!("{what} recall"));
    assert_close(got.f1, f1, &format!("{what} f1"));
    assert_close(got.support, support, &format!("{what} support"));
}

/// Four classes: class 2 has rows but is never predicted, class 3 is
/// predicted once but has no rows.
fn four_classes() -> ClassReport {
    let truth = [0, 0, 0, 1, 1, 2, 2];
    let predicted = [0, 0, 1, 1, 3, 0, 1];
    ClassReport::new(&truth, &predicted, 4)
}

#[test]
fn confusion_rows_are_true_classes_and_columns_predicted_ones() {
    let report = four_classes();
    // True 0 -> predicted 0, 0, 1; true 1 -> 1, 3; true 2 -> 0, 1; no true 3.
    let want: Array2<usize> = array![[2, 1, 0, 0], [0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 0, 0]];
    assert_eq!(report.confusion, want);
}

#[test]
fn a_class_never_predicted_and_a_class_without_rows_score_zero() {
    let report = four_classes();
    // Predicted counts (column sums): 3, 3, 0, 1; supports (row sums): 3, 2, 2, 0.
    // Class 0: 2 hits; precision 2/3, recall 2/3, F1 2/3.
    assert_scores(&report.classes[0], [2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 3.0], "class 0");
    // Class 1: 1 hit; precision 1/3, recall 1/2, F1 2(1/3)(1/2)/(1/3 + 1/2) = (1/3)/(5/6) = 2/5.
    assert_scores(&report.classes[1], [1.0 / 3.0, 0.5, 0.4, 2.0], "class 1");
    // Class 2: never predicted, so precision 0 (zero_division); no hits, so recall 0, F1 0.
    assert_scores(&report.classes[2], [0.0, 0.0, 0.0, 2.0], "class 2");
    // Class 3: predicted once, wrongly: precision 0/1; no rows, so recall 0; F1 0.
    assert_scores(&report.classes[3], [0.0, 0.0, 0.0, 0.0], "class 3");
}

#[test]
fn averages_and_accuracy_of_four_classes() {
    let report = four_classes();
    // 3 hits (the diagonal 2 + 1 + 0 + 0) in 7 rows.
    assert_close(report.accuracy, 3.0 / 7.0, "accuracy");
    // Macro: precision (2/3 + 1/3 + 0 + 0)/4 = 1/4; recall (2/3 + 1/2)/4 = 7/24;
    // F1 (2/3 + 2/5)/4 = (16/15)/4 = 4/15; support all 7 rows.
    assert_scores(&report.macro_avg, [0.25, 7.0 / 24.0, 4.0 / 15.0, 7.0], "macro avg");
    // Weighted by supports 3, 2, 2, 0 over 7: precision (3(2/3) + 2(1/3))/7 = (8/3)/7 = 8/21;
    // recall (3(2/3) + 2(1/2))/7 = 3/7 (the accuracy, as always);
    // F1 (3(2/3) + 2(2/5))/7 = (14/5)/7 = 2/5.
    assert_scores(&report.weighted_avg, [8.0 / 21.0, 3.0 / 7.0, 0.4, 7.0], "weighted avg");
}

#[test]
fn a_class_absent_from_truth_and_predictions_still_counts_in_the_macro_average() {
    // Classes 0 and 1 perfect; class 2 nowhere: its scores are 0.
    let report = ClassReport::new(&[0, 1], &[0, 1], 3);
    assert_scores(&report.classes[2], [0.0, 0.0, 0.0, 0.0], "class 2");
    // Macro precision (1 + 1 + 0)/3 = 2/3; weighted (1 + 1 + 0 * 0)/2 = 1.
    assert_scores(&report.macro_avg, [2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 2.0], "macro avg");
    assert_scores(&report.weighted_avg, [1.0, 1.0, 1.0, 2.0], "weighted avg");
    assert_close(report.accuracy, 1.0, "accuracy");
}

#[test]
fn no_rows_give_zeros() {
    let report = ClassReport::new(&[], &[], 2);
    assert_eq!(report.confusion, Array2::<usize>::zeros((2, 2)));
    for scores in report.classes.iter().chain([&report.macro_avg, &report.weighted_avg]) {
        assert_scores(scores, [0.0; 4], "every score");
    }
    assert_eq!(report.accuracy, 0.0);
}

/// Two classes, three rows: true 0, 1, 1 predicted 0, 1, 0.
fn two_classes() -> ClassReport {
    ClassReport::new(&[0, 1, 1], &[0, 1, 0], 2)
}

#[test]
fn the_text_is_laid_out_as_scikit_learns_classification_report() {
    // Class 0: 1 hit of 2 predicted, 1 row: precision 0.5, recall 1, F1 1/1.5 = 0.6667.
    // Class 1: 1 hit of 1 predicted, 2 rows: precision 1, recall 0.5, F1 0.6667.
    // Accuracy 2/3; macro (0.75, 0.75, 0.6667); weighted precision (0.5 + 2)/3 = 0.8333,
    // recall (1 + 1)/3 = 0.6667, F1 0.6667. Names right-aligned to "weighted avg" (12
    // characters), then two spaces and 9-wide fields one space apart.
    let want = "              precision    recall  f1-score   support\n\
                \n\
                \x20          0     0.5000    1.0000    0.6667         1\n\
                \x20          1     1.0000    0.5000    0.6667         2\n\
                \n\
                \x20   accuracy                         0.6667         3\n\
                \x20  macro avg     0.7500    0.7500    0.6667         3\n\
                weighted avg     0.8333    0.6667    0.6667         3\n";
    assert_eq!(two_classes().text(None), want);
}

#[test]
fn names_label_the_text_the_grid_and_the_json() {
    let report = two_classes();
    let names = ["cat".to_string(), "dog".to_string()];
    let text = report.text(Some(&names));
    assert!(text.contains("         cat     0.5000"), "{text}");
    // True cat -> cat; true dog -> dog, cat.
    let grid = "true\\predicted  cat  dog\n\
                cat               1    0\n\
                dog               1    1\n";
    assert_eq!(report.confusion_text(Some(&names)), grid);

    let json = report.to_json(Some(&names));
    assert_eq!(json["classes"][1]["class"], "dog");
    assert_eq!(json["classes"][1]["precision"], 1.0);
    assert_eq!(json["classes"][1]["support"], 2.0);
    assert_eq!(json["confusion"], serde_json::json!([[1, 0], [1, 1]]));
    assert_eq!(json["macro_avg"]["recall"], 0.75);
    assert_close(json["accuracy"].as_f64().unwrap(), 2.0 / 3.0, "accuracy");
    // Without names, classes are their indices.
    assert_eq!(report.to_json(None)["classes"][0]["class"], 0);
}

fn assert_output(got: &OutputScores, [mae, rmse, r2]: [f64; 3], what: &str) {
    assert_close(got.mae, mae, &format!("{what} mae"));
    assert_close(got.rmse, rmse, &format!("{what} rmse"));
    assert_close(got.r2, r2, &format!("{what} r2"));
}

#[test]
fn regression_errors_per_output_and_a_constant_target_mispredicted() {
    // Output 0: truth 1, 2, 3 and predictions 1.5, 2, 2.5: residuals -0.5, 0, 0.5.
    // Output 1: truth 5, 5, 5 (constant) and predictions 5, 5, 6: residuals 0, 0, -1.
    let truth = array![[1.0f32, 5.0], [2.0, 5.0], [3.0, 5.0]];
    let predicted = array![[1.5f32, 5.0], [2.0, 5.0], [2.5, 6.0]];
    let report = RegressionReport::new(truth.view(), predicted.view());
    // Output 0: MAE 1/3; MSE (0.25 + 0.25)/3 = 1/6; residual squares 0.5,
    // total squares about the mean 2: 1 + 0 + 1 = 2, so R² 1 - 0.5/2 = 0.75.
    assert_output(&report.outputs[0], [1.0 / 3.0, (1.0f64 / 6.0).sqrt(), 0.75], "output 0");
    // Output 1: MAE 1/3; MSE 1/3; total squares 0 and a residual: R² 0.
    assert_output(&report.outputs[1], [1.0 / 3.0, (1.0f64 / 3.0).sqrt(), 0.0], "output 1");
    // Plain means over the two outputs; RMSE is the mean of the RMSEs.
    assert_close(report.mae, 1.0 / 3.0, "mae");
    assert_close(report.rmse, ((1.0f64 / 6.0).sqrt() + (1.0f64 / 3.0).sqrt()) / 2.0, "rmse");
    assert_close(report.r2, 0.375, "r2");

    let json = report.to_json();
    assert_eq!(json["outputs"].as_array().unwrap().len(), 2);
    assert_eq!(json["outputs"][0]["r2"], 0.75);
    assert_eq!(json["r2"], 0.375);
    let text = report.text();
    assert_eq!(text.lines().count(), 4, "a header, two outputs and the average\n{text}");
    assert!(text.lines().last().unwrap().trim_start().starts_with("average"), "{text}");
}

#[test]
fn a_constant_target_predicted_exactly_has_r2_one() {
    // Truth 4, 4 and predictions 4, 4: no residual and no variance: R² 1.
    let truth = array![[4.0f32], [4.0]];
    let report = RegressionReport::new(truth.view(), truth.view());
    assert_output(&report.outputs[0], [0.0, 0.0, 1.0], "output 0");
}

#[test]
fn a_constant_tenth_is_still_constant() {
    // 0.1 is inexact, but three f32 copies sum exactly in f64, so the mean is
    // the value and the total squares 0; predictions 0.1, 0.1, 0.2: R² 0.
    let truth = array![[0.1f32], [0.1], [0.1]];
    let predicted = array![[0.1f32], [0.1], [0.2]];
    let report = RegressionReport::new(truth.view(), predicted.view());
    assert_eq!(report.outputs[0].r2, 0.0);
}
