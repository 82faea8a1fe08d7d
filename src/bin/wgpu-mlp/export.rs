//! `wgpu-mlp export`: a checkpoint's model as an ONNX file.

use std::path::Path;

use wgpu_mlp::checkpoint;
use wgpu_mlp::export::{write_onnx, INPUT_NAME, OUTPUT_NAME};
use wgpu_mlp::model::{Loss, Output};

pub(crate) fn export(checkpoint_path: &Path, out: &Path) -> anyhow::Result<()> {
    let saved = checkpoint::load_model(checkpoint_path)?;
    let spec = &saved.spec;
    if saved.target_scaler.is_some() {
        // The graph would give scaled targets, which no reader of the file could tell.
        return Err(crate::bad_input(format!(
            "{} was trained on scaled targets (--scale-target), and export does not put their unscaling in the graph yet",
            checkpoint_path.display()
        )));
    }
    let data = checkpoint::DataSettings::from_metadata(&saved.metadata)
        .map_err(|e| crate::bad_input(format!("{}: {e}", checkpoint_path.display())))?;
    if data.is_some_and(|d| d.encoder.is_some()) {
        // The graph would take the encoded inputs, whose layout no reader of the file could tell.
        return Err(crate::bad_input(format!(
            "{} was trained with --categorical columns or missing values filled (--missing mean or median), and export does not put that encoding in the graph yet",
            checkpoint_path.display()
        )));
    }
    write_onnx(out, spec, &saved.params, saved.scaler.as_ref())?;
    let what = match (spec.output(), spec.loss()) {
        (Output::Softmax, _) => "class probabilities",
        (Output::Sigmoid, Loss::Bce) => "each output's probability",
        (Output::Sigmoid | Output::Identity, _) => "the last layer's outputs",
    };
    let scaled = if saved.scaler.is_some() { ", scaled inside the graph as in training" } else { "" };
    eprintln!(
        "export: wrote {} ({} layers {spec}): input '{INPUT_NAME}' float32 [batch, {}]{scaled}; output '{OUTPUT_NAME}' float32 [batch, {}], {what}",
        out.display(),
        spec.num_layers(),
        spec.inputs(),
        spec.outputs()
    );
    Ok(())
}
