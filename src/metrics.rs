//! The metrics people read after training: a classifier's per-class
//! precision, recall, F1 and confusion matrix, and a regression's MAE, RMSE
//! and R² per output. Each is defined as scikit-learn defines it
//! (`classification_report` with `zero_division=0`, `confusion_matrix`,
//! `mean_absolute_error`, `root_mean_squared_error`, `r2_score`), so the
//! numbers can be checked against it (`scripts/check-sklearn` does).
//! Sums are in f64 whatever the inputs are.

use ndarray::{Array2, ArrayView2};
use serde_json::{json, Value};

/// Precision, recall and F1 of one class, or their average over classes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassScores {
    /// Of the rows predicted as the class, the share that are; 0 when the
    /// class was never predicted.
    pub precision: f64,
    /// Of the rows of the class, the share predicted as it; 0 when no row is.
    pub recall: f64,
    /// The harmonic mean of precision and recall; 0 when both are.
    pub f1: f64,
    /// The rows whose true class it is; for an average, all the rows.
    pub support: f64,
}

impl ClassScores {
    fn to_json(self) -> Value {
        json!({ "precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support })
    }
}

/// A classifier's scores on labelled rows, as scikit-learn's
/// `classification_report(labels=range(classes), zero_division=0)` and
/// `confusion_matrix` give them. Every class in `0..classes` has a row, even
/// one neither true nor predicted for any row (its scores are 0, and they
/// count in the macro average).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassReport {
    /// One entry per class, in class order.
    pub classes: Vec<ClassScores>,
    /// The plain mean of the classes' scores.
    pub macro_avg: ClassScores,
    /// The classes' scores weighted by their support.
    pub weighted_avg: ClassScores,
    /// The share of rows predicted right; 0 for no rows.
    pub accuracy: f64,
    /// (classes, classes): row = true class, column = predicted class.
    pub confusion: Array2<usize>,
}

impl ClassReport {
    /// The report of `predicted` against `truth`, labels in `0..classes`.
    /// No rows give zero scores.
    ///
    /// # Panics
    ///
    /// If the slices differ in length or a label is not below `classes`:
    /// a caller's bug, not bad data.
    pub fn new(truth: &[usize], predicted: &[usize], classes: usize) -> ClassReport {
        assert_eq!(truth.len(), predicted.len(), "as many predictions as true labels");
        let mut confusion = Array2::<usize>::zeros((classes, classes));
        for (&t, &p) in truth.iter().zip(predicted) {
            assert!(t < classes && p < classes, "labels {t} and {p} must be below the {classes} classes");
            confusion[[t, p]] += 1;
        }
        let share = |part: usize, whole: usize| if whole == 0 { 0.0 } else { part as f64 / whole as f64 };
        let scores: Vec<ClassScores> = (0..classes)
            .map(|c| {
                let hits = confusion[[c, c]];
                let support = confusion.row(c).sum();
                let precision = share(hits, confusion.column(c).sum());
                let recall = share(hits, support);
                let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
                ClassScores { precision, recall, f1, support: support as f64 }
            })
            .collect();
        let rows = truth.len();
        let average = |weight: &dyn Fn(&ClassScores) -> f64| {
            let total: f64 = scores.iter().map(weight).sum();
            let mean = |score: fn(&ClassScores) -> f64| {
                if total == 0.0 {
                    0.0
                } else {
                    scores.iter().map(|s| weight(s) * score(s)).sum::<f64>() / total
                }
            };
            ClassScores {
                precision: mean(|s| s.precision),
                recall: mean(|s| s.recall),
                f1: mean(|s| s.f1),
                support: rows as f64,
            }
        };
        let macro_avg = average(&|_| 1.0);
        let weighted_avg = average(&|s| s.support);
        let accuracy = share(confusion.diag().sum(), rows);
        ClassReport { classes: scores, macro_avg, weighted_avg, accuracy, confusion }
    }

    /// The report as JSON: "classes" (one object per class: "class", which
    /// is its name from `names` or else its index, "precision", "recall",
    /// "f1", "support"), "macro_avg", "weighted_avg", "accuracy" and
    /// "confusion" (rows of counts, row = true class).
    pub fn to_json(&self, names: Option<&[String]>) -> Value {
        let classes: Vec<Value> = self
            .classes
            .iter()
            .enumerate()
            .map(|(c, scores)| {
                let mut entry = scores.to_json();
                entry["class"] = names.and_then(|n| n.get(c)).map_or_else(|| c.into(), |name| name.as_str().into());
                entry
            })
            .collect();
        let confusion: Vec<Vec<usize>> = self.confusion.rows().into_iter().map(|row| row.to_vec()).collect();
        json!({
            "classes": classes,
            "macro_avg": self.macro_avg.to_json(),
            "weighted_avg": self.weighted_avg.to_json(),
            "accuracy": self.accuracy,
            "confusion": confusion,
        })
    }

    /// The report as the table scikit-learn's `classification_report`
    /// prints with `digits=4`: precision, recall, f1-score and support per
    /// class, then accuracy, macro avg and weighted avg.
    pub fn text(&self, names: Option<&[String]>) -> String {
        let labels = class_names(names, self.classes.len());
        let width = labels.iter().map(|l| l.chars().count()).chain(["weighted avg".len()]).max().unwrap_or(0);
        let row = |label: &str, s: &ClassScores| {
            format!("{label:>width$}  {:>9.4} {:>9.4} {:>9.4} {:>9}\n", s.precision, s.recall, s.f1, s.support)
        };
        let mut text =
            format!("{:>width$}  {:>9} {:>9} {:>9} {:>9}\n\n", "", "precision", "recall", "f1-score", "support");
        for (label, scores) in labels.iter().zip(&self.classes) {
            text += &row(label, scores);
        }
        text.push('\n');
        text += &format!(
            "{:>width$}  {:>9} {:>9} {:>9.4} {:>9}\n",
            "accuracy", "", "", self.accuracy, self.macro_avg.support
        );
        text += &row("macro avg", &self.macro_avg);
        text += &row("weighted avg", &self.weighted_avg);
        text
    }

    /// The confusion matrix as a plain text grid: a header of predicted
    /// classes, then one line per true class.
    pub fn confusion_text(&self, names: Option<&[String]>) -> String {
        let labels = class_names(names, self.classes.len());
        let counts = self.confusion.iter().map(|n| n.to_string().len());
        let cell = labels.iter().map(|l| l.chars().count()).chain(counts).max().unwrap_or(1);
        let corner = "true\\predicted";
        let first = labels.iter().map(|l| l.chars().count()).chain([corner.len()]).max().unwrap_or(0);
        let mut text = format!("{corner:<first$}");
        for label in &labels {
            text += &format!("  {label:>cell$}");
        }
        text.push('\n');
        for (label, row) in labels.iter().zip(self.confusion.rows()) {
            text += &format!("{label:<first$}");
            for count in row {
                text += &format!("  {count:>cell$}");
            }
            text.push('\n');
        }
        text
    }
}

/// The names of `classes` classes: those in `names`, and the index for any
/// class past their end.
pub(crate) fn class_names(names: Option<&[String]>, classes: usize) -> Vec<String> {
    (0..classes).map(|c| names.and_then(|n| n.get(c)).cloned().unwrap_or_else(|| c.to_string())).collect()
}

/// The errors of one output of a regression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutputScores {
    /// Mean absolute error, in the target's units.
    pub mae: f64,
    /// Root mean squared error, in the target's units.
    pub rmse: f64,
    /// Coefficient of determination: 1 - residual sum of squares / total sum
    /// of squares. For a constant target (total 0), 1 when every prediction
    /// is exact and else 0, as scikit-learn's `force_finite=True`.
    pub r2: f64,
}

impl OutputScores {
    /// "mae", "rmse" and "r2".
    pub fn to_json(self) -> Value {
        json!({ "mae": self.mae, "rmse": self.rmse, "r2": self.r2 })
    }
}

/// One output's sums over the rows scored: of |residual|, of residual², and
/// of (target - the targets' mean)², the total that R² is measured against.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ColumnSums {
    /// Sum of |target - prediction|.
    pub absolute: f64,
    /// Sum of (target - prediction)².
    pub squared: f64,
    /// Sum of (target - mean target)².
    pub total: f64,
}

/// Sum of (v - mean)² over a column, in f64: an f32 column summed in f64 is
/// exact (up to 2^29 rows), so a constant column's mean is its value and its
/// total is 0.
pub fn total_squares(column: ndarray::ArrayView1<f32>) -> f64 {
    let rows = column.len();
    let centre = if rows == 0 { 0.0 } else { column.iter().map(|&v| f64::from(v)).sum::<f64>() / rows as f64 };
    column.iter().map(|&v| (f64::from(v) - centre).powi(2)).sum::<f64>()
}

/// A regression's errors on rows with targets: per output, and averaged over
/// the outputs with equal weight (scikit-learn's
/// `multioutput='uniform_average'`, which for RMSE averages each output's RMSE).
#[derive(Clone, Debug, PartialEq)]
pub struct RegressionReport {
    /// One entry per output column, in column order.
    pub outputs: Vec<OutputScores>,
    /// The mean of the outputs' MAE.
    pub mae: f64,
    /// The mean of the outputs' RMSE.
    pub rmse: f64,
    /// The mean of the outputs' R².
    pub r2: f64,
}

impl RegressionReport {
    /// The errors of `predicted` against `truth`, both (N, OUT): N rows of
    /// OUT outputs.
    ///
    /// No rows give errors of 0 and R² of 1 (nothing was mispredicted).
    ///
    /// # Panics
    ///
    /// If the shapes differ: a caller's bug, not bad data.
    pub fn new(truth: ArrayView2<f32>, predicted: ArrayView2<f32>) -> RegressionReport {
        assert_eq!(truth.dim(), predicted.dim(), "the predictions have the targets' shape");
        let sums: Vec<ColumnSums> = truth
            .columns()
            .into_iter()
            .zip(predicted.columns())
            .map(|(t, p)| {
                let residuals = || t.iter().zip(p).map(|(&t, &p)| f64::from(t) - f64::from(p));
                ColumnSums {
                    absolute: residuals().map(f64::abs).sum::<f64>(),
                    squared: residuals().map(|r| r * r).sum::<f64>(),
                    total: total_squares(t),
                }
            })
            .collect();
        Self::from_sums(truth.nrows(), &sums)
    }

    /// The report from each output's sums over `rows` rows (what the GPU
    /// adds up without reading the predictions back).
    pub fn from_sums(rows: usize, sums: &[ColumnSums]) -> RegressionReport {
        let mean = |sum: f64| if rows == 0 { 0.0 } else { sum / rows as f64 };
        let outputs: Vec<OutputScores> = sums
            .iter()
            .map(|&ColumnSums { absolute, squared, total }| {
                let r2 = match (total == 0.0, squared == 0.0) {
                    (false, _) => 1.0 - squared / total,
                    (true, true) => 1.0,
                    (true, false) => 0.0,
                };
                OutputScores { mae: mean(absolute), rmse: mean(squared).sqrt(), r2 }
            })
            .collect();
        let average = |score: fn(&OutputScores) -> f64| {
            if outputs.is_empty() {
                0.0
            } else {
                outputs.iter().map(score).sum::<f64>() / outputs.len() as f64
            }
        };
        let (mae, rmse, r2) = (average(|o| o.mae), average(|o| o.rmse), average(|o| o.r2));
        RegressionReport { outputs, mae, rmse, r2 }
    }

    /// The report as JSON: "outputs" (one object per output: "mae", "rmse",
    /// "r2"), then the averages "mae", "rmse" and "r2".
    pub fn to_json(&self) -> Value {
        let outputs: Vec<Value> = self.outputs.iter().map(|o| o.to_json()).collect();
        json!({ "outputs": outputs, "mae": self.mae, "rmse": self.rmse, "r2": self.r2 })
    }

    /// The report as a table: one line per output, then their average.
    pub fn text(&self) -> String {
        let row =
            |label: &str, o: &OutputScores| format!("{label:>7}  {:>12.6} {:>12.6} {:>9.4}\n", o.mae, o.rmse, o.r2);
        let mut text = format!("{:>7}  {:>12} {:>12} {:>9}\n", "output", "mae", "rmse", "r2");
        for (j, output) in self.outputs.iter().enumerate() {
            text += &row(&j.to_string(), output);
        }
        text += &row("average", &OutputScores { mae: self.mae, rmse: self.rmse, r2: self.r2 });
        text
    }
}
