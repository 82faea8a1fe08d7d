//! Class weights (issue 12, item 6): a class's weight scales its training
//! rows' one-hot targets, and the cross-entropy kernels (the layered loss, the
//! fused path, the CPU) weigh each row's loss and gradient by its target's
//! mass, so every path trains the same weighted loss.

mod binary;
mod common;

use common::{classes, gpu_backends, label, trajectories_match};
use ndarray::array;
use wgpu_mlp::cpu;
use wgpu_mlp::model::{Activation, Init, Loss, MlpSpec, Output, Params};
use wgpu_mlp::{Backend, CpuTrainer, Dataset, Run, TrainConfig};

#[test]
fn balanced_weights_are_scikit_learns_formula() {
    // Labels 0, 0, 0, 0, 1, 2: 6 / (3 * 4), 6 / (3 * 1), 6 / (3 * 1).
    let x = ndarray::Array2::zeros((6, 1));
    let data = Dataset::classification(x, &[0, 0, 0, 0, 1, 2], 3).unwrap();
    assert_eq!(data.balanced_class_weights(), [0.5, 2.0, 2.0]);
    let mut weighted = data.clone();
    weighted.weight_classes(&[0.5, 2.0, 2.0]).unwrap();
    assert_eq!(weighted.y.row(4).to_vec(), [0.0, 2.0, 0.0]);
    assert_eq!(weighted.labels(), data.labels(), "the classes stay where they were");
    let error = weighted.weight_classes(&[1.0, 2.0]).unwrap_err().to_string();
    assert!(error.contains("`class_weight` has 2 weights, and the data has 3 classes"), "{error}");
    let error = weighted.weight_classes(&[1.0, 0.0, 1.0]).unwrap_err().to_string();
    assert!(error.contains("positive and finite"), "{error}");
}

#[test]
fn a_weighted_row_has_its_loss_and_gradient_scaled_by_its_weight() {
    let logits = array![[0.3, -1.2, 2.0], [1.5, 0.1, -0.7]];
    let plain = array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]];
    let weighted = array![[0.0, 0.0, 2.5], [0.75, 0.0, 0.0]];
    let (grad, loss) = cpu::softmax_cross_entropy(logits.view(), plain.view());
    let (wgrad, wloss) = cpu::softmax_cross_entropy(logits.view(), weighted.view());
    // The loss of each row alone, from the unweighted rows.
    let row_loss = |r: usize| {
        cpu::softmax_cross_entropy(logits.slice(ndarray::s![r..r + 1, ..]), plain.slice(ndarray::s![r..r + 1, ..])).1
    };
    assert!((wloss - (2.5 * row_loss(0) + 0.75 * row_loss(1))).abs() < 1e-6, "{wloss}");
    assert!(loss > 0.0);
    for (r, w) in [(0, 2.5f32), (1, 0.75)] {
        for j in 0..3 {
            assert!((wgrad[(r, j)] - w * grad[(r, j)]).abs() < 1e-7, "row {r} column {j}");
        }
    }
}

#[test]
fn every_path_trains_the_same_weighted_loss() {
    let spec =
        MlpSpec::new(vec![4, 9, 3]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let mut train = classes(29, 4, 3, 8);
    let weights = train.balanced_class_weights();
    train.weight_classes(&[weights[0], weights[1] * 3.0, weights[2]]).unwrap();
    let params = Params::init(&spec, Init::He, 2).unwrap();
    // In order, no held-out rows: the fused path takes it too.
    let config = TrainConfig { lr: 0.05, batch_size: Some(8), ..TrainConfig::default() };
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    for backend in gpu_backends() {
        let Backend::Gpu(_) = &backend else { unreachable!("gpu_backends are GPUs") };
        let mut on_gpu = backend.trainer(&run).unwrap();
        let mut on_cpu = CpuTrainer::new(&run).unwrap();
        trajectories_match(&label(&backend), on_gpu.as_mut(), &mut on_cpu, &params, config.optimizer, 6, 3);
    }
}

#[test]
fn the_flag_weighs_the_training_rows_and_is_checked() {
    let dir = binary::scratch("class-weights", "flag");
    let data = binary::three_classes(&dir);
    let out = dir.join("run");
    let args = ["--data", &data, "--task", "classify", "--epochs", "2", "--device", "cpu", "--quiet"];
    let run = binary::wgpu_mlp_in(
        &dir,
        &[&args[..], &["--class-weight", "1,2,0.5", "--out", out.to_str().unwrap()]].concat(),
    );
    binary::assert_success(&run);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["class_weight"], serde_json::json!([1.0, 2.0, 0.5]));
    let cases: [(&[&str], &str); 3] = [
        (&["--class-weight", "1,2"], "--class-weight has 2 weights, and the data has 3 classes"),
        (&["--class-weight", "1,-2,1"], "'-2' is not a positive finite weight"),
        (
            &["--class-weight", "balanced", "--loss", "mse", "--output", "sigmoid"],
            "--class-weight weighs the cross-entropy loss",
        ),
    ];
    for (extra, says) in cases {
        binary::assert_bad_input(&binary::wgpu_mlp_in(&dir, &[&args[..], extra].concat()), says);
    }
}
