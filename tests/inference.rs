//! Forward-only inference: every backend's `forward` against the CPU
//! reference's forward pass, on awkward shapes, every activation and output,
//! and row counts on both sides of the inference batch.

mod common;

use common::{assert_close, label, random, test_backends};
use ndarray::Array2;
use wgpu_mlp::gpu::INFERENCE_BATCH_ROWS;
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::{cpu, Backend, MlpSpec, Params};

/// A forward pass is one matmul per layer with the bias and activation fused
/// in; the GPU's exp and its order of summation differ from the CPU's in the
/// last bits only.
const FORWARD_ATOL: f32 = 1e-5;
const FORWARD_RTOL: f32 = 1e-4;

/// Params of `spec` with non-zero biases, so that a lost bias shows.
fn params_with_biases(spec: &MlpSpec, seed: u64) -> Params {
    let mut params = Params::init(spec, Init::Xavier, seed).unwrap();
    for (l, layer) in params.layers.iter_mut().enumerate() {
        let values = random(layer.b.len(), seed + 100 + l as u64);
        layer.b.iter_mut().zip(values).for_each(|(b, v)| *b = v);
    }
    params
}

fn inputs(rows: usize, width: usize, seed: u64) -> Array2<f32> {
    Array2::from_shape_vec((rows, width), random(rows * width, seed)).unwrap()
}

#[test]
fn forward_matches_the_cpu_reference_on_every_backend() {
    let nets: [(Vec<usize>, Activation, Output, Loss); 5] = [
        (vec![7, 13, 5, 3], Activation::Sigmoid, Output::Sigmoid, Loss::Mse),
        (vec![1, 1, 1], Activation::Relu, Output::Identity, Loss::Mse),
        (vec![6, 11, 4], Activation::Relu, Output::Softmax, Loss::CrossEntropy),
        (vec![9, 17, 8, 2], Activation::Tanh, Output::Identity, Loss::Mse),
        (vec![5, 3], Activation::Sigmoid, Output::Softmax, Loss::CrossEntropy),
    ];
    // A single row, an odd count, and past one inference batch with a short last one.
    let row_counts = [1, 37, INFERENCE_BATCH_ROWS + 3];
    for backend in test_backends() {
        for (n, (sizes, hidden, output, loss)) in nets.iter().enumerate() {
            let spec = MlpSpec::new(sizes.clone()).unwrap().with(*hidden, *output, *loss).unwrap();
            let params = params_with_biases(&spec, n as u64);
            let mut model = backend.inference(&spec, &params).unwrap();
            for rows in row_counts {
                let x = inputs(rows, spec.inputs(), 7 + n as u64);
                let got = model.forward(x.view()).unwrap();
                let want = cpu::forward(&spec, &params, x.view()).acts.pop().unwrap();
                assert_eq!(got.dim(), (rows, spec.outputs()));
                let what = format!("{}: layers {spec} {hidden:?}/{output:?}, {rows} rows", label(&backend));
                let (got, want) = (got.iter().copied().collect::<Vec<_>>(), want.iter().copied().collect::<Vec<_>>());
                assert_close(&what, &got, &want, FORWARD_ATOL, FORWARD_RTOL);
            }
        }
    }
}

#[test]
fn forward_refuses_inputs_of_the_wrong_width_and_params_of_another_model() {
    let spec = MlpSpec::new(vec![4, 3, 2]).unwrap();
    let params = params_with_biases(&spec, 1);
    let other = MlpSpec::new(vec![4, 5, 2]).unwrap();
    for backend in test_backends() {
        let error = backend.forward(&spec, &params, inputs(3, 5, 1).view()).unwrap_err().to_string();
        assert!(error.contains("5 columns") && error.contains("takes 4"), "{}: {error}", label(&backend));
        let error = backend.inference(&other, &params).err().expect("params of 4,3,2 for 4,5,2").to_string();
        assert!(error.contains("4,5,2"), "{}: {error}", label(&backend));
        let empty = backend.forward(&spec, &params, inputs(0, 4, 1).view()).unwrap();
        assert_eq!(empty.dim(), (0, 2), "{}: no rows in, no rows out", label(&backend));
    }
}

#[test]
fn cpu_forward_is_the_reference_exactly() {
    // The CPU backend batches rows; batching must not change a single bit.
    let spec = MlpSpec::new(vec![3, 4, 2]).unwrap().with(Activation::Tanh, Output::Identity, Loss::Mse).unwrap();
    let params = params_with_biases(&spec, 2);
    let x = inputs(INFERENCE_BATCH_ROWS + 1, 3, 3);
    let got = Backend::Cpu.forward(&spec, &params, x.view()).unwrap();
    assert_eq!(got, cpu::forward(&spec, &params, x.view()).acts.pop().unwrap());
}
