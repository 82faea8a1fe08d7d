//! `wgpu-mlp predict` and `wgpu-mlp eval`: a checkpoint's model run on data.

use std::io::Write;

use wgpu_mlp::checkpoint;
use wgpu_mlp::cpu::{argmax, loss_grad, output_from_logits};
use wgpu_mlp::data::{TargetColumn, TextColumns};
use wgpu_mlp::fairness::Predictions;
use wgpu_mlp::gpu::GpuPath;
use wgpu_mlp::metrics::{ClassReport, RegressionReport};
use wgpu_mlp::{Dataset, MlpSpec};

use crate::args::ModelArgs;
use crate::data::{load_model_rows, ModelRows, Purpose};
use crate::device::choose_backend;
use crate::groups::RowGroups;

/// The checkpoint's model, the rows to run it on (scaled as in training), and
/// the network's outputs for them on the chosen device, with the loss where
/// the rows have targets.
struct Outputs {
    spec: MlpSpec,
    rows: Dataset,
    /// Whether the outputs are classes.
    classify: bool,
    /// (N, OUT): logits for a softmax output.
    outputs: ndarray::Array2<f32>,
    loss: Option<f32>,
    /// Whether the model learned scaled targets (--scale-target); `outputs`
    /// and `loss` are in the target's own units either way.
    target_scaled: bool,
    device: String,
    /// The columns copied as text, one entry per row.
    text: Option<TextColumns>,
    /// Eval's rows' groups, with group columns.
    groups: Option<RowGroups>,
}

fn run_model(
    args: &ModelArgs,
    purpose: Purpose,
    copy: &[TargetColumn],
    group: &[TargetColumn],
) -> anyhow::Result<Outputs> {
    // Inference reads the network only: a checkpoint without optimizer state will do.
    let saved = checkpoint::load_model(&args.checkpoint)?;
    let ModelRows { data: rows, classify, text, groups } =
        load_model_rows(&args.input, &saved, &args.checkpoint, purpose, copy, group)?;
    let spec = saved.spec.clone();
    let backend = choose_backend(args.device, GpuPath::Auto, None)?;
    let mut outputs = backend.forward(&spec, &saved.params, rows.x.view())?;
    // A model of scaled targets answers in their units; the rows' targets
    // are read as the file has them, so both meet in the target's units.
    if let Some(target) = &saved.target_scaler {
        outputs *= &target.divisor;
        outputs += &target.shift;
    }
    // The loss from the outputs, on the host, the same way for either device.
    let loss = (rows.y.ncols() == spec.outputs()).then(|| {
        let (_, loss_sum) = loss_grad(spec.loss(), outputs.view(), rows.y.view());
        loss_sum / spec.loss_divisor(rows.len())
    });
    let target_scaled = saved.target_scaler.is_some();
    Ok(Outputs { spec, rows, classify, outputs, loss, target_scaled, device: backend.name(), text, groups })
}

/// Each row's answers: probabilities for a softmax output or under bce (see
/// [`output_from_logits`]), else the outputs as they are.
fn probabilities(spec: &MlpSpec, outputs: &ndarray::Array2<f32>) -> ndarray::Array2<f32> {
    let mut probs = outputs.clone();
    output_from_logits(spec, &mut probs);
    probs
}

/// `wgpu-mlp predict`: predictions as CSV. With `copy` columns, those come
/// first (as the file has them), and the true targets last where the file
/// has them, so any tool can score the file; without, the answers alone, as
/// before those flags.
pub(crate) fn predict(args: &ModelArgs, out: Option<&std::path::Path>, copy: &[TargetColumn]) -> anyhow::Result<()> {
    let Outputs { spec, rows, classify, outputs, device, text, .. } = run_model(args, Purpose::Predict, copy, &[])?;
    eprintln!("predict: {} rows on {device}", rows.len());
    let values = probabilities(&spec, &outputs);
    let mut csv = ::csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = text.as_ref().map_or_else(Vec::new, |t| t.names.clone());
    // Targets are only there when every one the model has was found.
    let targets = text.is_some() && rows.y.ncols() == spec.outputs();
    let target_columns = if classify { 1 } else { spec.outputs() };
    if classify {
        header.push("class".into());
        header.extend((0..spec.outputs()).map(|j| format!("p{j}")));
    } else {
        header.extend((0..spec.outputs()).map(|j| format!("output{j}")));
    }
    if targets {
        match target_columns {
            1 => header.push("target".into()),
            n => header.extend((0..n).map(|j| format!("target{j}"))),
        }
    }
    csv.write_record(&header)?;
    for (i, row) in values.rows().into_iter().enumerate() {
        let mut record: Vec<String> = Vec::with_capacity(header.len());
        if let Some(text) = &text {
            record.extend(text.rows[i].iter().cloned());
        }
        if classify {
            record.push(argmax(row).to_string());
        }
        record.extend(row.iter().map(f32::to_string));
        if targets && classify {
            // y is one-hot: the label is its largest entry.
            record.push(argmax(rows.y.row(i)).to_string());
        } else if targets {
            record.extend(rows.y.row(i).iter().map(f32::to_string));
        }
        csv.write_record(&record)?;
    }
    let bytes = csv.into_inner().map_err(|e| anyhow::anyhow!("cannot write the predictions: {e}"))?;
    match out {
        Some(path) => wgpu_mlp::report::write_atomically(path, |file| file.write_all(&bytes))?,
        None => {
            let mut stdout = crate::stream::stdout();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
        }
    }
    Ok(())
}

/// `wgpu-mlp eval`: loss and accuracy, then a classifier's per-class report
/// and confusion matrix, or a regression's errors per output (in the target's
/// units, as the outputs are), then with group columns (`group`, or
/// training's) the metrics per group.
pub(crate) fn evaluate(args: &ModelArgs, json: bool, group: &[TargetColumn]) -> anyhow::Result<()> {
    let Outputs { spec, rows, outputs, loss, target_scaled, device, groups, .. } =
        run_model(args, Purpose::Eval, &[], group)?;
    let loss = loss.expect("eval's rows have targets");
    let labels = rows.classes.map(|_| rows.labels());
    let predicted: Vec<usize> = outputs.rows().into_iter().map(argmax).collect();
    let accuracy = labels.as_ref().map(|labels| {
        let hits = predicted.iter().zip(labels).filter(|(p, label)| p == label).count();
        hits as f32 / rows.len() as f32
    });
    // Under bce, a regression's errors are of the probabilities predict gives.
    let values = probabilities(&spec, &outputs);
    let report = match &labels {
        Some(labels) => Report::Classes(ClassReport::new(labels, &predicted, outputs.ncols())),
        None => Report::Regression(RegressionReport::new(rows.y.view(), values.view())),
    };
    let fairness = match (&groups, &labels) {
        (Some(groups), Some(truth)) => {
            let predictions = Predictions::Classes { truth, predicted: &predicted, classes: outputs.ncols() };
            Some(crate::groups::report(groups, predictions, None)?)
        }
        (Some(groups), None) => {
            let predictions = Predictions::Values { truth: rows.y.view(), predicted: values.view() };
            Some(crate::groups::report(groups, predictions, None)?)
        }
        (None, _) => None,
    };
    let mut stdout = crate::stream::stdout();
    if json {
        let mut summary =
            serde_json::json!({ "device": device, "rows": rows.len(), "loss": loss, "accuracy": accuracy });
        if target_scaled {
            summary["loss_units"] = "target".into();
        }
        match &report {
            Report::Classes(report) => summary["classification_report"] = report.to_json(None),
            Report::Regression(report) => summary["regression"] = report.to_json(),
        }
        if let Some(fairness) = &fairness {
            summary["fairness"] = fairness.to_json();
        }
        writeln!(stdout, "{summary}")?;
    } else {
        let accuracy = accuracy.map_or(String::new(), |a| format!("  accuracy {a:.4}"));
        // Training's losses were of the scaled targets: say which this is.
        let units = if target_scaled { " (in the target's units, not the scaled ones training reports)" } else { "" };
        writeln!(stdout, "{} rows on {device}: loss {loss:.6}{units}{accuracy}", rows.len())?;
        match &report {
            Report::Classes(report) => write!(stdout, "\n{}\n{}", report.text(None), report.confusion_text(None))?,
            Report::Regression(report) => write!(stdout, "\n{}", report.text())?,
        }
        if let (Some(fairness), Some(groups)) = (&fairness, &groups) {
            write!(stdout, "\n{}", fairness.text(&groups.by))?;
        }
    }
    Ok(stdout.flush()?)
}

/// What eval reports beyond the loss.
enum Report {
    Classes(ClassReport),
    Regression(RegressionReport),
}
