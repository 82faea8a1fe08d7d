//! A regression's validation errors every epoch (issue 12, item 7): MAE,
//! RMSE and R² averaged over the outputs, summed on the GPU without reading
//! the predictions back, equal to scikit-learn's definitions as
//! `RegressionReport` computes them from the same parameters' answers.

mod common;

use common::{assert_close, gpu_backends, label};
use wgpu_mlp::cpu;
use wgpu_mlp::gpu::GpuPath;
use wgpu_mlp::metrics::RegressionReport;
use wgpu_mlp::model::{Activation, Init, Loss, MlpSpec, Output, Params};
use wgpu_mlp::{Backend, Dataset, Run, TrainConfig};

/// The errors of `params`' answers on `data`, computed outside the trainers.
fn errors(spec: &MlpSpec, params: &Params, data: &Dataset) -> RegressionReport {
    let mut answers = cpu::forward(spec, params, data.x.view()).output().to_owned();
    cpu::output_from_logits(spec, &mut answers);
    RegressionReport::new(data.y.view(), answers.view())
}

/// Errors summed in f32 over batches on the GPU, in f64 by the report.
const ERROR_RTOL: f32 = 1e-4;

#[test]
fn every_epoch_reports_the_validation_errors_of_its_parameters() {
    // 3 outputs, 37 validation rows in batches of 8 (the last short), mse
    // and bce (whose answers are sigmoids of the logits).
    for (loss, output) in [(Loss::Mse, Output::Identity), (Loss::Bce, Output::Sigmoid)] {
        let spec = MlpSpec::new(vec![4, 9, 3]).unwrap().with(Activation::Tanh, output, loss).unwrap();
        let squash = |data: Dataset| match loss {
            Loss::Bce => Dataset { y: data.y.mapv(|v| 1.0 / (1.0 + (-v).exp())), ..data },
            _ => data,
        };
        let train = squash(Dataset::seed_problem(41, 4, 3, 1).unwrap());
        let val = squash(Dataset::seed_problem(37, 4, 3, 2).unwrap());
        let params = Params::init(&spec, Init::Xavier, 3).unwrap();
        let config = TrainConfig { lr: 0.05, batch_size: Some(8), ..TrainConfig::default() };
        let run = Run { spec: &spec, params: &params, train: &train, test: Some(&val), config: &config };
        let backends = std::iter::once(Backend::Cpu)
            .chain(gpu_backends().into_iter().filter(|b| matches!(b, Backend::Gpu(g) if g.path == GpuPath::Layered)));
        for backend in backends {
            let mut trainer = backend.trainer(&run).unwrap();
            for epoch in 1..=3 {
                let metrics = trainer.train(1).unwrap().remove(0);
                let want = errors(&spec, &trainer.params().unwrap(), &val);
                let got =
                    [metrics.val_mae, metrics.val_rmse, metrics.val_r2].map(|v| v.expect("a regression's errors"));
                let what = format!("{}, {loss}, epoch {epoch}: val mae, rmse, r2", label(&backend));
                assert_close(&what, &got, &[want.mae as f32, want.rmse as f32, want.r2 as f32], 1e-6, ERROR_RTOL);
                let scores = |o: &[wgpu_mlp::metrics::OutputScores]| -> Vec<f32> {
                    o.iter().flat_map(|o| [o.mae as f32, o.rmse as f32, o.r2 as f32]).collect()
                };
                let got = scores(metrics.val_outputs.as_deref().expect("each output's errors"));
                assert_close(&format!("{what}, per output"), &got, &scores(&want.outputs), 1e-6, ERROR_RTOL);
            }
        }
    }
}

#[test]
fn a_classifier_reports_no_regression_errors() {
    let spec =
        MlpSpec::new(vec![4, 5, 3]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let train = common::classes(30, 4, 3, 1);
    let val = common::classes(12, 4, 3, 2);
    let params = Params::init(&spec, Init::Xavier, 0).unwrap();
    let config = TrainConfig::default();
    let run = Run { spec: &spec, params: &params, train: &train, test: Some(&val), config: &config };
    for backend in std::iter::once(Backend::Cpu).chain(gpu_backends()) {
        let Ok(mut trainer) = backend.trainer(&run) else { continue }; // the fused path takes no held-out rows
        let metrics = trainer.train(1).unwrap().remove(0);
        assert_eq!((metrics.val_mae, metrics.val_rmse, metrics.val_r2), (None, None, None), "{}", label(&backend));
        assert_eq!(metrics.val_outputs, None, "{}", label(&backend));
    }
}
