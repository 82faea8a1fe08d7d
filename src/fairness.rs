//! Per-group metrics: how a model's predictions fare on each group of rows,
//! a group being a value of a sensitive attribute (or of several, their
//! intersection), and the gaps between the groups.
//!
//! Each is defined as fairlearn defines it, so `scripts/check-fairlearn`
//! checks them against it: per group, `MetricFrame` of `accuracy_score`,
//! `selection_rate`, `true_positive_rate` and `false_positive_rate` (one
//! class against the rest: the positive class 1 of a binary task, each
//! class of a multi-class one), or of `mean_squared_error` and
//! `mean_absolute_error` for a regression; the gaps are
//! `demographic_parity_difference` (the largest selection rate less the
//! smallest), `demographic_parity_ratio` (the smallest over the largest)
//! and `equalized_odds_difference` (the larger of the true and the false
//! positive rates' differences; `agg="worst_case"`), all `between_groups`.
//!
//! As in fairlearn (scikit-learn's `confusion_matrix(normalize="true")`), a
//! group with no positive rows has a true positive rate of 0, and one with
//! no negative rows a false positive rate of 0, and both count in the gaps;
//! a ratio whose largest selection rate is 0 is undefined (fairlearn's NaN,
//! None here). A group with no rows (one the training rows had, say) is
//! listed with 0 rows and no metrics, and left out of the gaps, as
//! fairlearn leaves out the empty intersections it lists as NaN.

use std::collections::BTreeSet;

use ndarray::ArrayView2;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// One class's rates in one group, that class against the rest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassRates {
    /// The class counted as positive.
    pub class: usize,
    /// The share of the group's rows predicted as the class.
    pub selection_rate: f64,
    /// Of the group's rows of the class, the share predicted as it; 0 when
    /// the group has none.
    pub true_positive_rate: f64,
    /// Of the group's rows of other classes, the share predicted as the
    /// class; 0 when the group has none.
    pub false_positive_rate: f64,
}

/// How a model fares on one group's rows.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupScores {
    /// The group's name: its texts in the group columns, joined by
    /// [`GROUP_JOIN`](crate::data::GROUP_JOIN).
    pub group: String,
    /// The group's rows among those scored.
    pub rows: usize,
    /// The share of its rows predicted right (classification); None for a
    /// regression or a group with no rows.
    pub accuracy: Option<f64>,
    /// Classification: the rates of each class of [`rated_classes`]; empty
    /// for a regression or a group with no rows.
    pub rates: Vec<ClassRates>,
    /// Regression: the mean squared error over the group's rows and every
    /// output; None for classes or a group with no rows.
    pub mse: Option<f64>,
    /// Regression: the mean absolute error, as `mse` is.
    pub mae: Option<f64>,
}

/// The gaps between the groups in one class's rates, that class against the rest.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassGaps {
    /// The class counted as positive.
    pub class: usize,
    /// The largest selection rate less the smallest.
    pub demographic_parity_difference: f64,
    /// The smallest selection rate over the largest; None when the largest is 0.
    pub demographic_parity_ratio: Option<f64>,
    /// The larger of the differences (largest less smallest) of the true
    /// positive rates and of the false positive rates.
    pub equalized_odds_difference: f64,
}

/// The gaps between the groups with rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Gaps {
    /// Classification: one entry per class of [`rated_classes`]; empty for a
    /// regression or when no group has rows.
    pub classes: Vec<ClassGaps>,
    /// Regression: the largest group MSE less the smallest; None for classes
    /// or when no group has rows.
    pub mse_difference: Option<f64>,
    /// Regression: the largest group MAE less the smallest, as `mse_difference` is.
    pub mae_difference: Option<f64>,
    /// The groups compared: those with rows.
    pub groups: usize,
    /// The groups left out, having no rows, by name.
    pub left_out: Vec<String>,
}

/// The per-group metrics and the gaps between groups of one set of predictions.
#[derive(Clone, Debug, PartialEq)]
pub struct FairnessReport {
    /// One entry per group, sorted by name.
    pub groups: Vec<GroupScores>,
    /// The gaps between the groups that have rows.
    pub gaps: Gaps,
    /// The number of classes of a classification; None for a regression.
    pub classes: Option<usize>,
}

/// The predictions a report scores, one entry (row) per scored row.
#[derive(Clone, Copy, Debug)]
pub enum Predictions<'a> {
    /// Class labels in `0..classes`: the true ones and the predicted ones
    /// (each row's argmax).
    Classes {
        /// The true class of each row.
        truth: &'a [usize],
        /// The predicted class of each row.
        predicted: &'a [usize],
        /// The number of classes (at least 2).
        classes: usize,
    },
    /// A regression's values, both (N, OUT).
    Values {
        /// The true targets.
        truth: ArrayView2<'a, f32>,
        /// The predicted values.
        predicted: ArrayView2<'a, f32>,
    },
}

/// The classes whose rates a report of `classes` classes gives: the
/// positive class 1 of a binary task, else each class.
pub fn rated_classes(classes: usize) -> Vec<usize> {
    if classes == 2 {
        vec![1]
    } else {
        (0..classes).collect()
    }
}

/// `part / whole`, 0 for an empty whole (scikit-learn's `nan_to_num`).
fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The largest and the smallest of `values`; None for none.
fn spread(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |range, v| match range {
        None => Some((v, v)),
        Some((high, low)) => Some((high.max(v), low.min(v))),
    })
}

impl FairnessReport {
    /// The report of `predictions` over the groups of their rows (`groups`,
    /// one name per row). `declared` names groups to list even with no
    /// rows here (the training rows' groups, say). Rows and groups of
    /// different lengths, or a label outside the classes, are an error.
    pub fn new(predictions: Predictions<'_>, groups: &[String], declared: &[String]) -> Result<FairnessReport> {
        let rows = match predictions {
            Predictions::Classes { truth, predicted, classes } => {
                if truth.len() != predicted.len() {
                    return Err(Error::InvalidInput(format!(
                        "{} true labels and {} predicted ones",
                        truth.len(),
                        predicted.len()
                    )));
                }
                if let Some(label) = truth.iter().chain(predicted).find(|&&l| l >= classes) {
                    return Err(Error::InvalidInput(format!("label {label} is outside the {classes} classes")));
                }
                truth.len()
            }
            Predictions::Values { truth, predicted } => {
                if truth.dim() != predicted.dim() {
                    return Err(Error::InvalidInput(format!(
                        "targets of shape {:?} and predictions of shape {:?}",
                        truth.dim(),
                        predicted.dim()
                    )));
                }
                truth.nrows()
            }
        };
        if groups.len() != rows {
            return Err(Error::InvalidInput(format!("{rows} rows scored and {} group names", groups.len())));
        }
        let names: BTreeSet<&String> = groups.iter().chain(declared).collect();
        let scores: Vec<GroupScores> = names
            .into_iter()
            .map(|name| {
                let members: Vec<usize> = (0..rows).filter(|&r| groups[r] == *name).collect();
                group_scores(name, &members, predictions)
            })
            .collect();
        let gaps = gaps(&scores, predictions);
        let classes = match predictions {
            Predictions::Classes { classes, .. } => Some(classes),
            Predictions::Values { .. } => None,
        };
        Ok(FairnessReport { groups: scores, gaps, classes })
    }

    /// The report as JSON: "groups" (one object per group: "group", "rows",
    /// then for a binary task "accuracy", "selection_rate",
    /// "true_positive_rate" and "false_positive_rate" of the positive class
    /// 1, for a multi-class one "accuracy" and "classes" (one object per
    /// class: "class" and its three rates), for a regression "mse" and
    /// "mae"; null for a group with no rows) and "gaps" ("groups" compared,
    /// "left_out", then "demographic_parity_difference",
    /// "demographic_parity_ratio" (null when undefined) and
    /// "equalized_odds_difference", for a multi-class task per class under
    /// "classes", or "mse_difference" and "mae_difference").
    pub fn to_json(&self) -> Value {
        let task = self.task();
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|g| {
                let mut entry = json!({ "group": g.group, "rows": g.rows });
                match task {
                    Task::Binary => {
                        entry["accuracy"] = g.accuracy.into();
                        let rates = g.rates.first();
                        entry["selection_rate"] = rates.map(|r| r.selection_rate).into();
                        entry["true_positive_rate"] = rates.map(|r| r.true_positive_rate).into();
                        entry["false_positive_rate"] = rates.map(|r| r.false_positive_rate).into();
                    }
                    Task::MultiClass => {
                        entry["accuracy"] = g.accuracy.into();
                        entry["classes"] = g.rates.iter().map(rates_json).collect::<Vec<_>>().into();
                    }
                    Task::Regression => {
                        entry["mse"] = g.mse.into();
                        entry["mae"] = g.mae.into();
                    }
                }
                entry
            })
            .collect();
        let gaps = &self.gaps;
        let mut gaps_json = json!({ "groups": gaps.groups, "left_out": gaps.left_out });
        match task {
            Task::Binary => {
                let first = gaps.classes.first();
                gaps_json["demographic_parity_difference"] = first.map(|c| c.demographic_parity_difference).into();
                gaps_json["demographic_parity_ratio"] = first.and_then(|c| c.demographic_parity_ratio).into();
                gaps_json["equalized_odds_difference"] = first.map(|c| c.equalized_odds_difference).into();
            }
            Task::MultiClass => {
                gaps_json["classes"] = gaps.classes.iter().map(class_gaps_json).collect::<Vec<_>>().into()
            }
            Task::Regression => {
                gaps_json["mse_difference"] = gaps.mse_difference.into();
                gaps_json["mae_difference"] = gaps.mae_difference.into();
            }
        }
        json!({ "groups": groups, "gaps": gaps_json })
    }

    /// The report as a table, one line per group (and class, for a
    /// multi-class task), then the gaps; `by` names the group columns.
    pub fn text(&self, by: &str) -> String {
        let task = self.task();
        let dash = || "-".to_string();
        let number = |v: Option<f64>| v.map_or_else(dash, |v| format!("{v:.4}"));
        let width = self.groups.iter().map(|g| g.group.chars().count()).chain(["group".len()]).max().unwrap_or(5);
        let mut text = match task {
            Task::Binary => format!("per group of {by} (positive class 1):\n"),
            _ => format!("per group of {by}:\n"),
        };
        match task {
            Task::Binary => {
                text += &format!(
                    "{:<width$}  {:>6}  {:>8}  {:>9}  {:>6}  {:>6}\n",
                    "group", "rows", "accuracy", "selection", "TPR", "FPR"
                );
                for g in &self.groups {
                    let rates = g.rates.first();
                    text += &format!(
                        "{:<width$}  {:>6}  {:>8}  {:>9}  {:>6}  {:>6}\n",
                        g.group,
                        g.rows,
                        number(g.accuracy),
                        number(rates.map(|r| r.selection_rate)),
                        number(rates.map(|r| r.true_positive_rate)),
                        number(rates.map(|r| r.false_positive_rate)),
                    );
                }
            }
            Task::MultiClass => {
                text += &format!(
                    "{:<width$}  {:>6}  {:>8}  {:>5}  {:>9}  {:>6}  {:>6}\n",
                    "group", "rows", "accuracy", "class", "selection", "TPR", "FPR"
                );
                for g in &self.groups {
                    let head = format!("{:<width$}  {:>6}  {:>8}", g.group, g.rows, number(g.accuracy));
                    if g.rates.is_empty() {
                        text += &format!("{head}  {:>5}  {:>9}  {:>6}  {:>6}\n", "-", "-", "-", "-");
                    }
                    for (k, r) in g.rates.iter().enumerate() {
                        let head = if k == 0 { head.clone() } else { format!("{:<width$}  {:>6}  {:>8}", "", "", "") };
                        text += &format!(
                            "{head}  {:>5}  {:>9.4}  {:>6.4}  {:>6.4}\n",
                            r.class, r.selection_rate, r.true_positive_rate, r.false_positive_rate
                        );
                    }
                }
            }
            Task::Regression => {
                text += &format!("{:<width$}  {:>6}  {:>12}  {:>12}\n", "group", "rows", "mse", "mae");
                for g in &self.groups {
                    let value = |v: Option<f64>| v.map_or_else(dash, |v| format!("{v:.6}"));
                    text +=
                        &format!("{:<width$}  {:>6}  {:>12}  {:>12}\n", g.group, g.rows, value(g.mse), value(g.mae));
                }
            }
        }
        text += &self.gaps_text(task);
        text
    }

    /// Which metrics the report holds.
    fn task(&self) -> Task {
        match self.classes {
            Some(2) => Task::Binary,
            Some(_) => Task::MultiClass,
            None => Task::Regression,
        }
    }

    /// The gaps' lines of [`FairnessReport::text`].
    fn gaps_text(&self, task: Task) -> String {
        let gaps = &self.gaps;
        let ratio =
            |r: Option<f64>| r.map_or_else(|| "undefined (no group selected)".to_string(), |r| format!("{r:.4}"));
        let class_line = |c: &ClassGaps| {
            format!(
                "demographic parity difference {:.4}, ratio {}; equalized odds difference {:.4}",
                c.demographic_parity_difference,
                ratio(c.demographic_parity_ratio),
                c.equalized_odds_difference
            )
        };
        let mut text = format!("gaps between the {} groups with rows (as fairlearn defines them):", gaps.groups);
        match task {
            Task::Binary => {
                text += &gaps.classes.first().map_or_else(String::new, |c| format!(" {}", class_line(c)));
                text.push('\n');
            }
            Task::MultiClass => {
                text.push('\n');
                for c in &gaps.classes {
                    text += &format!("  class {}: {}\n", c.class, class_line(c));
                }
            }
            Task::Regression => {
                if let (Some(mse), Some(mae)) = (gaps.mse_difference, gaps.mae_difference) {
                    text += &format!(" mse difference {mse:.6}, mae difference {mae:.6}");
                }
                text.push('\n');
            }
        }
        if !gaps.left_out.is_empty() {
            text += &format!("left out of the gaps, having no rows: {}\n", gaps.left_out.join(", "));
        }
        text
    }
}

/// Which metrics a report holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Task {
    Binary,
    MultiClass,
    Regression,
}

fn rates_json(r: &ClassRates) -> Value {
    json!({
        "class": r.class,
        "selection_rate": r.selection_rate,
        "true_positive_rate": r.true_positive_rate,
        "false_positive_rate": r.false_positive_rate,
    })
}

fn class_gaps_json(c: &ClassGaps) -> Value {
    json!({
        "class": c.class,
        "demographic_parity_difference": c.demographic_parity_difference,
        "demographic_parity_ratio": c.demographic_parity_ratio,
        "equalized_odds_difference": c.equalized_odds_difference,
    })
}

/// The scores of the group `name` whose rows are `members`.
fn group_scores(name: &str, members: &[usize], predictions: Predictions<'_>) -> GroupScores {
    let mut scores = GroupScores {
        group: name.to_string(),
        rows: members.len(),
        accuracy: None,
        rates: Vec::new(),
        mse: None,
        mae: None,
    };
    if members.is_empty() {
        return scores;
    }
    match predictions {
        Predictions::Classes { truth, predicted, classes } => {
            let hits = members.iter().filter(|&&r| truth[r] == predicted[r]).count();
            scores.accuracy = Some(share(hits, members.len()));
            scores.rates = rated_classes(classes)
                .into_iter()
                .map(|class| {
                    let count = |keep: &dyn Fn(usize) -> bool| members.iter().filter(|&&r| keep(r)).count();
                    let positives = count(&|r| truth[r] == class);
                    let true_positives = count(&|r| truth[r] == class && predicted[r] == class);
                    let false_positives = count(&|r| truth[r] != class && predicted[r] == class);
                    ClassRates {
                        class,
                        selection_rate: share(count(&|r| predicted[r] == class), members.len()),
                        true_positive_rate: share(true_positives, positives),
                        false_positive_rate: share(false_positives, members.len() - positives),
                    }
                })
                .collect();
        }
        Predictions::Values { truth, predicted } => {
            // Every output of every member row, summed in f64.
            let (mut squared, mut absolute) = (0.0, 0.0);
            for &r in members {
                for (&t, &p) in truth.row(r).iter().zip(predicted.row(r)) {
                    let residual = f64::from(t) - f64::from(p);
                    squared += residual * residual;
                    absolute += residual.abs();
                }
            }
            let cells = (members.len() * truth.ncols()) as f64;
            let mean = |sum: f64| if cells == 0.0 { 0.0 } else { sum / cells };
            scores.mse = Some(mean(squared));
            scores.mae = Some(mean(absolute));
        }
    }
    scores
}

/// The gaps between the groups of `scores` with rows.
fn gaps(scores: &[GroupScores], predictions: Predictions<'_>) -> Gaps {
    let counted: Vec<&GroupScores> = scores.iter().filter(|g| g.rows > 0).collect();
    let left_out = scores.iter().filter(|g| g.rows == 0).map(|g| g.group.clone()).collect();
    let difference = |values: &mut dyn Iterator<Item = f64>| spread(values).map(|(high, low)| high - low);
    let mut gaps =
        Gaps { classes: Vec::new(), mse_difference: None, mae_difference: None, groups: counted.len(), left_out };
    match predictions {
        Predictions::Classes { classes, .. } => {
            if counted.is_empty() {
                return gaps;
            }
            gaps.classes = rated_classes(classes)
                .into_iter()
                .enumerate()
                .map(|(k, class)| {
                    let rates = || counted.iter().map(move |g| g.rates[k]);
                    let (high, low) = spread(rates().map(|r| r.selection_rate)).expect("a group with rows is counted");
                    let tpr = difference(&mut rates().map(|r| r.true_positive_rate)).unwrap_or(0.0);
                    let fpr = difference(&mut rates().map(|r| r.false_positive_rate)).unwrap_or(0.0);
                    ClassGaps {
                        class,
                        demographic_parity_difference: high - low,
                        demographic_parity_ratio: (high > 0.0).then(|| low / high),
                        equalized_odds_difference: tpr.max(fpr),
                    }
                })
                .collect();
        }
        Predictions::Values { .. } => {
            gaps.mse_difference = difference(&mut counted.iter().filter_map(|g| g.mse));
            gaps.mae_difference = difference(&mut counted.iter().filter_map(|g| g.mae));
        }
    }
    gaps
}
