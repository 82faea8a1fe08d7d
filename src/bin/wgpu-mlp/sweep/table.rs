//! A sweep's results: one row per model (sweep.csv, --json), the mean and
//! spread of each setting's folds (folds.csv), and the winner.

use std::path::Path;

use wgpu_mlp::train::{EpochMetrics, Monitor};

use super::grid::SWEPT;

/// What one model of the sweep did.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) model: usize,
    /// Its fold's index, with --folds.
    pub(crate) fold: Option<usize>,
    /// Every flag of [`SWEPT`] as the model resolved it, in that order.
    pub(crate) settings: Vec<(&'static str, String)>,
    /// The monitored metric's value that ranks the model: that of the model
    /// kept (--keep: its best epoch, or its last); None when it diverged.
    pub(crate) score: Option<f32>,
    pub(crate) best_epoch: Option<usize>,
    /// The epoch of the model kept (--keep).
    pub(crate) kept_epoch: usize,
    /// Epochs trained.
    pub(crate) epochs: usize,
    /// "epochs", "early-stopping" or "non-finite-loss" (the model diverged).
    pub(crate) stop_reason: &'static str,
    /// The metrics of the best epoch (the last one where none is monitored).
    pub(crate) best: Option<EpochMetrics>,
    pub(crate) last: Option<EpochMetrics>,
    /// Training seconds.
    pub(crate) seconds: f64,
    /// The single run with the same result.
    pub(crate) command: String,
}

impl Row {
    /// The value of the swept setting `flag`.
    pub(crate) fn setting(&self, flag: &str) -> &str {
        self.settings.iter().find(|(f, _)| *f == flag).map_or("", |(_, v)| v.as_str())
    }

    /// "lr 0.01, hidden 64" for the settings in `swept`.
    pub(crate) fn describe(&self, swept: &[&str]) -> String {
        let parts: Vec<String> = swept.iter().map(|flag| format!("{flag} {}", self.setting(flag))).collect();
        if parts.is_empty() {
            "the flags given".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One metric of an epoch, where measured.
type Metric = fn(&EpochMetrics) -> Option<f32>;

/// The metrics columns, each as best_* and final_*.
const METRICS: [(&str, Metric); 5] = [
    ("train_loss", |m| Some(m.train_loss)),
    ("train_accuracy", |m| m.train_accuracy),
    ("val_loss", |m| m.val_loss),
    ("val_accuracy", |m| m.val_accuracy),
    ("val_rmse", |m| m.val_rmse),
];

fn column_name(flag: &str) -> String {
    flag.replace('-', "_")
}

fn number(value: Option<f32>) -> String {
    value.map_or(String::new(), |v| v.to_string())
}

/// sweep.csv: a header, then one line per model, written atomically.
pub(crate) fn write_csv(path: &Path, monitor: Monitor, rows: &[Row]) -> anyhow::Result<()> {
    let mut header = vec!["model".to_string(), "fold".to_string()];
    header.extend(SWEPT.iter().map(|(flag, _)| column_name(flag)));
    header.extend(["monitor", "score", "best_epoch", "kept_epoch", "epochs", "stop_reason"].map(String::from));
    for at in ["best", "final"] {
        header.extend(METRICS.iter().map(|(name, _)| format!("{at}_{name}")));
    }
    header.extend(["seconds", "command"].map(String::from));
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(&header)?;
    for row in rows {
        let mut record = vec![row.model.to_string(), row.fold.map_or(String::new(), |f| f.to_string())];
        record.extend(SWEPT.iter().map(|(flag, _)| row.setting(flag).to_string()));
        record.push(monitor.to_string());
        record.push(number(row.score));
        record.push(row.best_epoch.map_or(String::new(), |e| e.to_string()));
        record.extend([row.kept_epoch, row.epochs].map(|n| n.to_string()));
        record.push(row.stop_reason.to_string());
        for metrics in [&row.best, &row.last] {
            record.extend(METRICS.iter().map(|(_, value)| number(metrics.as_ref().and_then(value))));
        }
        record.push(format!("{:.3}", row.seconds));
        record.push(row.command.clone());
        csv.write_record(&record)?;
    }
    let bytes = csv.into_inner().map_err(|e| anyhow::anyhow!("cannot write sweep.csv: {e}"))?;
    wgpu_mlp::report::write_atomically(path, |file| std::io::Write::write_all(file, &bytes))?;
    Ok(())
}

/// A row as --json gives it: the same fields as sweep.csv.
pub(crate) fn row_json(row: &Row) -> serde_json::Value {
    let settings: serde_json::Map<String, serde_json::Value> =
        row.settings.iter().map(|(flag, value)| (column_name(flag), value.as_str().into())).collect();
    let metrics = |m: &Option<EpochMetrics>| -> serde_json::Value {
        METRICS
            .iter()
            .map(|(name, value)| (name.to_string(), serde_json::Value::from(m.as_ref().and_then(value))))
            .collect()
    };
    serde_json::json!({
        "model": row.model,
        "fold": row.fold,
        "settings": settings,
        "score": row.score,
        "best_epoch": row.best_epoch,
        "kept_epoch": row.kept_epoch,
        "epochs": row.epochs,
        "stop_reason": row.stop_reason,
        "best": metrics(&row.best),
        "final": metrics(&row.last),
        "seconds": (row.seconds * 1000.0).round() / 1000.0,
        "command": row.command,
    })
}

/// The [`Row`] of [`row_json`] (its metrics those of sweep.csv, its seconds
/// to the millisecond): how a rank's rows reach rank 0.
#[cfg(feature = "mpi")]
pub(crate) fn row_from_json(json: &serde_json::Value) -> anyhow::Result<Row> {
    use anyhow::Context;
    let bad = || anyhow::anyhow!("a rank's row is malformed: {json}");
    let count = |key: &str| json[key].as_u64().map(|v| v as usize);
    let metrics = |key: &str| -> Option<EpochMetrics> {
        let m = &json[key];
        let value = |name: &str| m[name].as_f64().map(|v| v as f32);
        Some(EpochMetrics {
            train_loss: value("train_loss")?,
            train_accuracy: value("train_accuracy"),
            val_loss: value("val_loss"),
            val_accuracy: value("val_accuracy"),
            val_mae: None,
            val_rmse: value("val_rmse"),
            val_r2: None,
            val_outputs: None,
        })
    };
    let settings = SWEPT
        .iter()
        .map(|(flag, _)| Some((*flag, json["settings"][column_name(flag)].as_str()?.to_string())))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    let stop_reason = ["epochs", "early-stopping", "non-finite-loss"]
        .into_iter()
        .find(|reason| json["stop_reason"] == *reason)
        .ok_or_else(bad)?;
    Ok(Row {
        model: count("model").ok_or_else(bad)?,
        fold: count("fold"),
        settings,
        score: json["score"].as_f64().map(|v| v as f32),
        best_epoch: count("best_epoch"),
        kept_epoch: count("kept_epoch").ok_or_else(bad)?,
        epochs: count("epochs").ok_or_else(bad)?,
        stop_reason,
        best: metrics("best"),
        last: metrics("final"),
        seconds: json["seconds"].as_f64().ok_or_else(bad)?,
        command: json["command"].as_str().context("a rank's row has no command")?.to_string(),
    })
}

/// One setting's folds: their scores' mean and spread.
#[derive(Clone, Debug)]
pub(crate) struct FoldSummary {
    /// The setting's first model (its fold 0).
    pub(crate) first: usize,
    /// Its models, one per fold.
    pub(crate) models: Vec<usize>,
    /// Over the folds; None when a fold diverged.
    pub(crate) mean_std: Option<(f64, f64)>,
}

/// Each setting's `folds` models: a setting's folds are consecutive models.
pub(crate) fn fold_summaries(rows: &[Row], folds: usize) -> Vec<FoldSummary> {
    rows.chunks(folds)
        .map(|setting| {
            let scores: Option<Vec<f64>> = setting.iter().map(|row| row.score.map(f64::from)).collect();
            FoldSummary {
                first: setting[0].model,
                models: setting.iter().map(|row| row.model).collect(),
                mean_std: scores.map(|s| wgpu_mlp::sweep::mean_std(&s)),
            }
        })
        .collect()
}

/// folds.csv: per setting, its settings, folds, and the mean and standard
/// deviation (ddof 0) of their scores; written atomically.
pub(crate) fn write_folds_csv(
    path: &Path,
    monitor: Monitor,
    rows: &[Row],
    summaries: &[FoldSummary],
) -> anyhow::Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = SWEPT.iter().map(|(flag, _)| column_name(flag)).collect();
    header.extend(["monitor", "folds", "mean", "std", "models"].map(String::from));
    csv.write_record(&header)?;
    for summary in summaries {
        let row = &rows[summary.first];
        let mut record: Vec<String> = SWEPT.iter().map(|(flag, _)| row.setting(flag).to_string()).collect();
        record.push(monitor.to_string());
        record.push(summary.models.len().to_string());
        let (mean, std) =
            summary.mean_std.map_or((String::new(), String::new()), |(m, s)| (m.to_string(), s.to_string()));
        record.extend([mean, std]);
        record.push(summary.models.iter().map(usize::to_string).collect::<Vec<_>>().join(" "));
        csv.write_record(&record)?;
    }
    let bytes = csv.into_inner().map_err(|e| anyhow::anyhow!("cannot write folds.csv: {e}"))?;
    wgpu_mlp::report::write_atomically(path, |file| std::io::Write::write_all(file, &bytes))?;
    Ok(())
}

/// The winning model: the best score (the best mean over folds, then the
/// best fold of that setting); the first in model order on a tie; None
/// when every model diverged.
pub(crate) fn winner(monitor: Monitor, rows: &[Row], summaries: Option<&[FoldSummary]>) -> Option<usize> {
    let score = |m: usize| rows[m].score.map(f64::from);
    match summaries {
        None => best_by(monitor, (0..rows.len()).filter_map(|m| Some((m, score(m)?)))),
        Some(summaries) => {
            let setting = best_by(monitor, summaries.iter().filter_map(|s| Some((s, s.mean_std?.0))))?;
            best_by(monitor, setting.models.iter().filter_map(|&m| Some((m, score(m)?))))
        }
    }
}

/// The candidate whose value is best under `monitor` (lower, or higher for
/// an accuracy), the first on a tie; NaN values never win.
fn best_by<T>(monitor: Monitor, candidates: impl IntoIterator<Item = (T, f64)>) -> Option<T> {
    let beats = |a: f64, b: f64| if monitor == Monitor::ValAccuracy { a > b } else { a < b };
    let mut best: Option<(T, f64)> = None;
    for (candidate, value) in candidates.into_iter().filter(|(_, v)| !v.is_nan()) {
        if best.as_ref().is_none_or(|(_, b)| beats(value, *b)) {
            best = Some((candidate, value));
        }
    }
    best.map(|(candidate, _)| candidate)
}
