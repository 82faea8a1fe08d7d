//! `wgpu-mlp export`: a checkpoint's model as an ONNX file.

use std::path::Path;

use wgpu_mlp::checkpoint;
use wgpu_mlp::export::{write_onnx, INPUT_NAME, OUTPUT_NAME};
use wgpu_mlp::model::Output;

pub(crate) fn export(checkpoint_path: &Path, out: &Path) -> anyhow::Result<()> {
    let saved = checkpoint::load_model(checkpoint_path)?;
    let spec = &saved.spec;
    write_onnx(out, spec, &saved.params, saved.scaler.as_ref())?;
    let what = match spec.output() {
        Output::Softmax => "class probabilities",
        Output::Sigmoid | Output::Identity => "the last layer's outputs",
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
