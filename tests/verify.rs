//! Lock-step `--verify` (issue 12, item 9): the CPU reference trains beside
//! the checked trainer and the first read-back beyond the tolerance stops the
//! run naming the epoch, the tensor, the index and both values.

use wgpu_mlp::model::{Init, MlpSpec, Params};
use wgpu_mlp::train::{EpochMetrics, TrainState};
use wgpu_mlp::verify::{compare, LockStep, Tolerance};
use wgpu_mlp::{Dataset, Error, Run, TrainConfig, Trainer};

mod binary;
mod common;

/// A trainer that goes wrong: after `bad_epoch` epochs it adds 0.5 to one weight.
struct Faulty {
    inner: Box<dyn Trainer>,
    epochs: usize,
    bad_epoch: usize,
}

impl Trainer for Faulty {
    fn device(&self) -> String {
        "faulty".into()
    }
    fn steps_per_epoch(&self) -> usize {
        self.inner.steps_per_epoch()
    }
    fn train_until(&mut self, epochs: usize, stop: &dyn Fn() -> bool) -> wgpu_mlp::Result<Vec<EpochMetrics>> {
        let metrics = self.inner.train_until(epochs, stop)?;
        let before = self.epochs;
        self.epochs += metrics.len();
        if before < self.bad_epoch && self.epochs >= self.bad_epoch {
            let mut state = self.inner.state()?;
            state.params.layers[1].w[(2, 0)] += 0.5;
            self.inner.restore(&state)?;
        }
        Ok(metrics)
    }
    fn evaluate(&mut self) -> wgpu_mlp::Result<f32> {
        self.inner.evaluate()
    }
    fn state(&mut self) -> wgpu_mlp::Result<TrainState> {
        self.inner.state()
    }
    fn restore(&mut self, state: &TrainState) -> wgpu_mlp::Result<()> {
        self.inner.restore(state)
    }
    fn set_schedule(&mut self, next_epoch: usize, lr_scale: f32) {
        self.inner.set_schedule(next_epoch, lr_scale)
    }
}

const TOLERANCE: Tolerance = Tolerance { atol: 1e-3, rtol: 1e-3 };

#[test]
fn the_first_read_back_beyond_the_tolerance_names_the_epoch_tensor_index_and_values() {
    let spec = MlpSpec::new(vec![5, 7, 3]).unwrap();
    let params = Params::init(&spec, Init::Normal, 1).unwrap();
    let train = Dataset::seed_problem(23, 5, 3, 1).unwrap();
    let config = TrainConfig { batch_size: Some(8), ..TrainConfig::default() };
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    for backend in common::test_backends() {
        let faulty = Faulty { inner: backend.trainer(&run).unwrap(), epochs: 0, bad_epoch: 3 };
        let mut lock_step = LockStep::new(Box::new(faulty), &run, None, TOLERANCE).unwrap();
        let history = lock_step.history();
        assert_eq!(lock_step.train(2).unwrap().len(), 2, "{}", common::label(&backend));
        match lock_step.train(2) {
            Err(Error::VerifyFailed { epoch, tensor, index, got, want }) => {
                assert_eq!((epoch, tensor.as_str(), index), (4, "layers.1.weight", vec![2, 0]));
                assert!((got - want - 0.5).abs() < 1e-3, "{got} vs {want}");
            }
            other => panic!("{}: expected the fault found, got {other:?}", common::label(&backend)),
        }
        let history = history.borrow();
        assert_eq!(history.iter().map(|c| c.epoch).collect::<Vec<_>>(), [2, 4]);
        assert!(history[0].max_abs_diff < TOLERANCE.atol, "{history:?}");
        assert_eq!(history[1].tensor, "layers.1.weight");
    }
}

#[test]
fn compare_finds_the_largest_difference_and_treats_nan_as_beyond_any_tolerance() {
    let spec = MlpSpec::new(vec![3, 2]).unwrap();
    let want = Params::init(&spec, Init::Normal, 0).unwrap();
    let mut got = want.clone();
    got.layers[0].b[1] += 0.25;
    got.layers[0].w[(1, 0)] += 1e-6;
    let (max, tensor, beyond) = compare(&got, &want, TOLERANCE);
    assert_eq!((max, tensor.as_str()), (0.25, "layers.0.bias"));
    let beyond = beyond.expect("0.25 is beyond 1e-3");
    assert_eq!((beyond.tensor.as_str(), beyond.index), ("layers.0.bias", vec![1]));
    got.layers[0].b[1] = want.layers[0].b[1];
    got.layers[0].w[(2, 1)] = f32::NAN;
    let (max, tensor, beyond) = compare(&got, &want, TOLERANCE);
    assert_eq!((max, tensor.as_str()), (f32::INFINITY, "layers.0.weight"));
    assert_eq!(beyond.unwrap().index, vec![2, 1]);
}

#[test]
fn verify_prints_and_records_every_read_back() {
    if common::gpu().is_none() {
        return;
    }
    let args = ["--device", "gpu", "--verify", "--json", "--layers", "6,9,2", "--samples", "37", "--batch-size", "8"];
    let run =
        binary::wgpu_mlp_in(&std::env::temp_dir(), &[&args[..], &["--epochs", "12", "--log-every", "4"]].concat());
    binary::assert_success(&run);
    let json = run.json();
    let verify = json["verify"].as_array().expect("one entry per read-back");
    assert_eq!(verify.iter().map(|v| v["epoch"].as_u64().unwrap()).collect::<Vec<_>>(), [4, 8, 12], "{json}");
    assert!(verify.iter().all(|v| v["max_abs_param_diff"].as_f64().unwrap() < 1e-3), "{json}");
    assert_eq!(run.stderr.matches("|param - cpu|").count(), 3, "{}", run.show());
    assert!(run.stderr.contains("verify: 3 read-backs in lock step"), "{}", run.show());
}
