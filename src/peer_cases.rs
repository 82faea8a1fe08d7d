//! The benchmark's plain training cases (`seed`, `mlp`) written out for other
//! frameworks (benches/peers/): the layer sizes, the initial parameters, the
//! data and the settings, and the loss the CPU device reaches after
//! [`CHECK_STEPS`] steps, so that a peer starts from the same point and shows
//! it computes the same step before it is timed.
//!
//! One safetensors file per case: `x` (N, IN), `y` (N, OUT),
//! `layers.{l}.weight` (IN_l, OUT_l) and `layers.{l}.bias` (OUT_l), f32; its
//! metadata holds `case`, `sizes` (comma-separated), `activation` (of the
//! hidden layers), `output` (of the last), `loss` (the mean of the squared errors over every element), `lr`,
//! `batch_rows` (every step takes all N rows), `check_steps`, `initial_loss`
//! and `loss_after_check_steps` (each a full pass over the N rows, as f32
//! decimals).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::Dtype;

use crate::bench::Case;
use crate::cpu::CpuTrainer;
use crate::error::{Error, Result};
use crate::model::{Init, Params};
use crate::train::{Run, Trainer};

/// Steps a peer takes from the initial parameters before its loss is
/// compared with ours.
pub const CHECK_STEPS: usize = 10;

/// Writes `case` to `path` (atomically), as the module docs say.
pub fn export(case: &Case, path: &Path) -> Result<()> {
    if !matches!(case, Case::Seed | Case::Mlp) {
        return Err(Error::InvalidInput(format!("--export writes the seed and mlp cases, not {case}")));
    }
    let (sizes, rows) = case.net().expect("seed and mlp are training cases");
    let (spec, data) = crate::bench::training_setup(&sizes, rows)?;
    let config = case.config();
    let params = Params::init(&spec, Init::Xavier, 0)?;
    let mut trainer =
        CpuTrainer::new(&Run { spec: &spec, params: &params, train: &data, test: None, config: &config })?;
    let initial_loss = trainer.evaluate()?;
    // Every step is a whole epoch here (full batch).
    trainer.train(CHECK_STEPS)?;
    let loss_after = trainer.evaluate()?;

    let bytes = |values: &mut dyn Iterator<Item = &f32>| values.flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = vec![
        ("x".into(), data.x.shape().to_vec(), bytes(&mut data.x.iter())),
        ("y".into(), data.y.shape().to_vec(), bytes(&mut data.y.iter())),
    ];
    for (l, layer) in params.layers.iter().enumerate() {
        tensors.push((format!("layers.{l}.weight"), layer.w.shape().to_vec(), bytes(&mut layer.w.iter())));
        tensors.push((format!("layers.{l}.bias"), layer.b.shape().to_vec(), bytes(&mut layer.b.iter())));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, data)| TensorView::new(Dtype::F32, shape.clone(), data).map(|view| (name.as_str(), view)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::InvalidInput(format!("cannot encode {}: {e}", path.display())))?;
    let sizes_text = sizes.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    let metadata = HashMap::from([
        ("case".to_string(), case.to_string()),
        ("sizes".to_string(), sizes_text),
        ("activation".to_string(), spec.hidden().to_string()),
        ("output".to_string(), spec.output().to_string()),
        ("loss".to_string(), spec.loss().to_string()),
        ("lr".to_string(), config.lr.to_string()),
        ("batch_rows".to_string(), rows.to_string()),
        ("check_steps".to_string(), CHECK_STEPS.to_string()),
        ("initial_loss".to_string(), initial_loss.to_string()),
        ("loss_after_check_steps".to_string(), loss_after.to_string()),
    ]);
    let encoded = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::InvalidInput(format!("cannot encode {}: {e}", path.display())))?;
    crate::report::write_atomically(path, |file| std::io::Write::write_all(file, &encoded))
}
