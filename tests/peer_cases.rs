//! `wgpu-mlp bench --export` (the cases benches/peers/ time in other
//! frameworks): the file holds the case's data and initial weights, and the
//! loss it states after its check steps is that of plain gradient descent
//! written out here from the CPU reference's forward and backward passes.

mod binary;

use std::collections::HashMap;

use ndarray::{Array1, Array2};
use safetensors::SafeTensors;
use wgpu_mlp::model::{Init, Layer, MlpSpec, Params};
use wgpu_mlp::{cpu, Dataset};

fn tensor(file: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
    let view = file.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (view.shape().to_vec(), values)
}

#[test]
fn an_exported_case_holds_its_data_weights_and_the_loss_of_its_check_steps() {
    let dir = binary::scratch("peer_cases", "export");
    let run = binary::wgpu_mlp_in(&dir, &["bench", "--export", "cases", "--case", "seed"]);
    binary::assert_success(&run);
    let bytes = std::fs::read(dir.join("cases/seed.safetensors")).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta: HashMap<String, String> = header.metadata().clone().unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();

    assert_eq!(meta["sizes"], "10,5,1");
    let spec = MlpSpec::new(vec![10, 5, 1]).unwrap();
    let data = Dataset::seed_problem(100, 10, 1, 0).unwrap();
    assert_eq!(tensor(&file, "x"), (vec![100, 10], data.x.iter().copied().collect()));
    assert_eq!(tensor(&file, "y"), (vec![100, 1], data.y.iter().copied().collect()));
    let mut params = Params::init(&spec, Init::Xavier, 0).unwrap();
    let layers: Vec<Layer> = (0..2)
        .map(|l| {
            let (w_shape, w) = tensor(&file, &format!("layers.{l}.weight"));
            let (_, b) = tensor(&file, &format!("layers.{l}.bias"));
            Layer { w: Array2::from_shape_vec((w_shape[0], w_shape[1]), w).unwrap(), b: Array1::from(b) }
        })
        .collect();
    assert_eq!(layers, params.layers, "the initial weights");

    // Plain full-batch gradient descent at the stated rate, for the stated steps.
    let lr: f32 = meta["lr"].parse().unwrap();
    let steps: usize = meta["check_steps"].parse().unwrap();
    let initial: f32 = meta["initial_loss"].parse().unwrap();
    assert_eq!(initial, cpu::evaluate(&spec, &params, &data).0);
    for _ in 0..steps {
        let pass = cpu::forward(&spec, &params, data.x.view());
        let (grads, _) = cpu::backward(&spec, &params, data.x.view(), &pass, data.y.view());
        for (layer, grad) in params.layers.iter_mut().zip(&grads.layers) {
            cpu::sgd_update(&mut layer.w, &grad.w, lr, 0.0);
            cpu::sgd_update(&mut layer.b, &grad.b, lr, 0.0);
        }
    }
    let after: f32 = meta["loss_after_check_steps"].parse().unwrap();
    assert_eq!(after, cpu::evaluate(&spec, &params, &data).0);
    assert!(after < initial, "{after} after {steps} steps, {initial} before");
}

#[test]
fn export_refuses_a_case_the_peers_do_not_build() {
    let dir = binary::scratch("peer_cases", "refused");
    let run = binary::wgpu_mlp_in(&dir, &["bench", "--export", "cases", "--case", "wide"]);
    binary::assert_bad_input(&run, "--export writes the seed and mlp cases, not wide");
}
