//! `wgpu-mlp predict` and `wgpu-mlp eval`: a checkpoint's model run on data.

use std::io::Write;

use wgpu_mlp::checkpoint;
use wgpu_mlp::cpu::{argmax, loss_grad, softmax_rows};
use wgpu_mlp::gpu::GpuPath;
use wgpu_mlp::model::Output;
use wgpu_mlp::{Dataset, MlpSpec};

use crate::args::ModelArgs;
use crate::data::{load_model_rows, ModelRows, Purpose};
use crate::device::choose_backend;

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
    device: String,
}

fn run_model(args: &ModelArgs, purpose: Purpose) -> anyhow::Result<Outputs> {
    // Inference reads the network only: a checkpoint without optimizer state will do.
    let saved = checkpoint::load_model(&args.checkpoint)?;
    let ModelRows { data: rows, classify } = load_model_rows(&args.input, &saved, &args.checkpoint, purpose)?;
    let spec = saved.spec.clone();
    let backend = choose_backend(args.device, GpuPath::Auto, None)?;
    let outputs = backend.forward(&spec, &saved.params, rows.x.view())?;
    // The loss from the outputs, on the host, the same way for either device.
    let loss = (rows.y.ncols() == spec.outputs()).then(|| {
        let (_, loss_sum) = loss_grad(spec.loss(), outputs.view(), rows.y.view());
        loss_sum / spec.loss_divisor(rows.len())
    });
    Ok(Outputs { spec, rows, classify, outputs, loss, device: backend.name() })
}

/// Each row's probabilities (softmax of the logits for a softmax output).
fn probabilities(spec: &MlpSpec, outputs: &ndarray::Array2<f32>) -> ndarray::Array2<f32> {
    let mut probs = outputs.clone();
    if spec.output() == Output::Softmax {
        softmax_rows(&mut probs);
    }
    probs
}

/// `wgpu-mlp predict`: predictions as CSV.
pub(crate) fn predict(args: &ModelArgs, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let Outputs { spec, rows, classify, outputs, device, .. } = run_model(args, Purpose::Predict)?;
    eprintln!("predict: {} rows on {device}", rows.len());
    let values = probabilities(&spec, &outputs);
    let mut csv = ::csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = Vec::new();
    if classify {
        header.push("class".into());
        header.extend((0..spec.outputs()).map(|j| format!("p{j}")));
    } else {
        header.extend((0..spec.outputs()).map(|j| format!("output{j}")));
    }
    csv.write_record(&header)?;
    for row in values.rows() {
        let mut record: Vec<String> = Vec::with_capacity(header.len());
        if classify {
            record.push(argmax(row).to_string());
        }
        record.extend(row.iter().map(f32::to_string));
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

/// `wgpu-mlp eval`: loss and accuracy.
pub(crate) fn evaluate(args: &ModelArgs, json: bool) -> anyhow::Result<()> {
    let Outputs { rows, outputs, loss, device, .. } = run_model(args, Purpose::Eval)?;
    let loss = loss.expect("eval's rows have targets");
    let accuracy = rows.classes.map(|_| {
        let labels = rows.labels();
        let hits = outputs.rows().into_iter().zip(&labels).filter(|(row, &label)| argmax(*row) == label).count();
        hits as f32 / rows.len() as f32
    });
    let mut stdout = crate::stream::stdout();
    if json {
        let summary = serde_json::json!({ "device": device, "rows": rows.len(), "loss": loss, "accuracy": accuracy });
        writeln!(stdout, "{summary}")?;
    } else {
        let accuracy = accuracy.map_or(String::new(), |a| format!("  accuracy {a:.4}"));
        writeln!(stdout, "{} rows on {device}: loss {loss:.6}{accuracy}", rows.len())?;
    }
    Ok(stdout.flush()?)
}
