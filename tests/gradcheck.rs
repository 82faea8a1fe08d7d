//! The CPU backward pass against central finite differences of the CPU loss,
//! for every weight and bias of small nets with each activation and loss. The
//! GPU is then held to the CPU by the other tests.

use ndarray::Array2;
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::{cpu, Dataset, MlpSpec, Params};

/// Step of the central difference: small enough that the truncation error
/// (~EPS^2) is tiny, large enough that f32 rounding of the loss (~1e-8) over
/// 2 * EPS stays near 1e-5.
const EPS: f32 = 1e-3;
const GRAD_ATOL: f32 = 1e-4;
const GRAD_RTOL: f32 = 1e-2;

fn check_gradients(spec: &MlpSpec, data: &Dataset, init: Init) {
    let params = Params::init(spec, init, 11).unwrap();
    let pass = cpu::forward(spec, &params, data.x.view());
    if matches!(spec.hidden(), Activation::Relu | Activation::LeakyRelu) {
        // A pre-activation within reach of a nudge would cross relu's kink and
        // make the finite difference meaningless: the case must avoid that.
        for (l, layer) in params.layers.iter().enumerate().take(params.layers.len() - 1) {
            let input = if l == 0 { data.x.view() } else { pass.acts[l - 1].view() };
            let mut z = cpu::matmul(input, layer.w.view(), false, false);
            cpu::bias_add(&mut z, &layer.b);
            let nearest = z.iter().fold(f32::INFINITY, |m, v| m.min(v.abs()));
            assert!(nearest > 20.0 * EPS, "layer {l} has a pre-activation {nearest} near relu's kink");
        }
    }
    let (grads, _) = cpu::backward(spec, &params, data.x.view(), &pass, data.y.view());
    let loss = |p: &Params| cpu::evaluate(spec, p, data).0;

    let mut checked = 0;
    let mut nonzero = 0;
    for l in 0..params.layers.len() {
        let numeric = |nudge: &dyn Fn(&mut Params, f32)| {
            let (mut plus, mut minus) = (params.clone(), params.clone());
            nudge(&mut plus, EPS);
            nudge(&mut minus, -EPS);
            (loss(&plus) - loss(&minus)) / (2.0 * EPS)
        };
        let mut compare = |what: String, got: f32, want: f32| {
            assert!(
                (got - want).abs() <= GRAD_ATOL + GRAD_RTOL * want.abs(),
                "{spec} {:?}/{:?}: {what}: backward {got}, finite difference {want}",
                spec.hidden(),
                spec.loss()
            );
            checked += 1;
            nonzero += usize::from(want.abs() > 1e-3);
        };
        let (rows, cols) = params.layers[l].w.dim();
        for i in 0..rows {
            for j in 0..cols {
                let want = numeric(&|p: &mut Params, d| p.layers[l].w[(i, j)] += d);
                compare(format!("layer {l} w[{i},{j}]"), grads.layers[l].w[(i, j)], want);
            }
        }
        for j in 0..cols {
            let want = numeric(&|p: &mut Params, d| p.layers[l].b[j] += d);
            compare(format!("layer {l} b[{j}]"), grads.layers[l].b[j], want);
        }
    }
    assert_eq!(checked, spec.num_params());
    assert!(
        nonzero > checked / 2,
        "most gradients should be far from 0 for the check to mean something ({nonzero} of {checked})"
    );
}

#[test]
fn sigmoid_mse_backward_matches_finite_differences() {
    let spec = MlpSpec::new(vec![4, 3, 5, 2]).unwrap();
    check_gradients(&spec, &Dataset::seed_problem(6, 4, 2, 11).unwrap(), Init::Normal);
}

#[test]
fn tanh_identity_mse_backward_matches_finite_differences() {
    let spec = MlpSpec::new(vec![4, 6, 2]).unwrap().with(Activation::Tanh, Output::Identity, Loss::Mse).unwrap();
    check_gradients(&spec, &Dataset::seed_problem(6, 4, 2, 12).unwrap(), Init::Xavier);
}

#[test]
fn relu_softmax_cross_entropy_backward_matches_finite_differences() {
    let spec =
        MlpSpec::new(vec![4, 7, 3]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let x = Dataset::seed_problem(6, 4, 1, 18).unwrap().x;
    let data = Dataset::classification(x, &[0, 2, 1, 1, 0, 2], 3).unwrap();
    check_gradients(&spec, &data, Init::He);
}

#[test]
fn mse_grad_is_the_derivative_of_the_mean() {
    // loss = mean((p - t)^2) over 6 elements, so dloss/dp = 2 (p - t) / 6.
    let pred = Array2::from_shape_vec((2, 3), vec![0.1, 0.5, 0.9, 0.3, 0.2, 0.7]).unwrap();
    let expected = Array2::from_shape_vec((2, 3), vec![0.0, 1.0, 1.0, 0.5, 0.0, 0.7]).unwrap();
    let (grad, sum_sq) = cpu::mse_grad(pred.view(), expected.view());
    let diffs = [0.1f32, -0.5, -0.1, -0.2, 0.2, 0.0];
    for (g, d) in grad.iter().zip(diffs) {
        assert!((g - 2.0 * d / 6.0).abs() < 1e-6, "{g} vs {}", 2.0 * d / 6.0);
    }
    let want_sum: f32 = diffs.iter().map(|d| d * d).sum();
    assert!((sum_sq - want_sum).abs() < 1e-6);
}

#[test]
fn softmax_cross_entropy_is_stable_for_huge_logits() {
    // Logits of 1e4 overflow a naive exp; the loss of the right class is ~0.
    let logits = Array2::from_shape_vec((2, 3), vec![1e4, 0.0, -1e4, -5e3, 5e3, 0.0]).unwrap();
    let expected = Array2::from_shape_vec((2, 3), vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0]).unwrap();
    let (grad, loss_sum) = cpu::softmax_cross_entropy(logits.view(), expected.view());
    assert!(grad.iter().all(|g| g.is_finite()));
    // Row 0 is right (loss ~0); row 1 puts class 2 5e3 below class 1 (loss 5e3).
    assert!((loss_sum - 5e3).abs() < 1.0, "loss sum {loss_sum}");
}

#[test]
fn leaky_relu_mse_backward_matches_finite_differences() {
    // The relu case's data and weights, so its pre-activations stay as far
    // from the kink; a slope far from the default.
    let spec = MlpSpec::new(vec![4, 7, 3])
        .unwrap()
        .with(Activation::LeakyRelu, Output::Identity, Loss::Mse)
        .unwrap()
        .with_negative_slope(0.2)
        .unwrap();
    check_gradients(&spec, &Dataset::seed_problem(6, 4, 3, 18).unwrap(), Init::He);
}

#[test]
fn gelu_mse_backward_matches_finite_differences() {
    // Two GELU layers: the derivative at a kept z below the output and below
    // another GELU layer.
    let spec = MlpSpec::new(vec![4, 6, 5, 2]).unwrap().with(Activation::Gelu, Output::Identity, Loss::Mse).unwrap();
    check_gradients(&spec, &Dataset::seed_problem(6, 4, 2, 13).unwrap(), Init::Xavier);
}

#[test]
fn sigmoid_bce_backward_matches_finite_differences() {
    // Soft targets in [0, 1) on three outputs.
    let spec = MlpSpec::new(vec![4, 6, 3]).unwrap().with(Activation::Tanh, Output::Sigmoid, Loss::Bce).unwrap();
    check_gradients(&spec, &Dataset::seed_problem(6, 4, 3, 14).unwrap(), Init::Xavier);
}

/// `values` as one (1, N) row, as the CPU ops take them.
fn row_of(values: &[f32]) -> Array2<f32> {
    Array2::from_shape_vec((1, values.len()), values.to_vec()).unwrap()
}

#[test]
fn leaky_relu_and_its_derivative_follow_the_formula() {
    let z = [-2.0f32, -0.5, 0.0, 0.5, 2.0];
    let mut a = row_of(&z);
    cpu::leaky_relu_forward(&mut a, 0.2);
    assert_eq!(a.as_slice().unwrap(), &[-0.4, -0.1, 0.0, 0.5, 2.0]);
    // Read off the output: 1 where it is above 0, else the slope (at 0 too).
    let mut grad = row_of(&[3.0; 5]);
    cpu::leaky_relu_backward(&mut grad, a.view(), 0.2);
    let want = [0.6f32, 0.6, 0.6, 3.0, 3.0];
    for (g, w) in grad.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{g} vs {w}");
    }
}

/// GELU's tanh form and its derivative in f64, from the formula.
fn gelu64(z: f64) -> f64 {
    0.5 * z * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (z + 0.044715 * z * z * z)).tanh())
}

#[test]
fn gelu_and_its_derivative_follow_the_tanh_form() {
    let z: Vec<f32> = (-60..=60).map(|i| i as f32 * 0.1).collect();
    let mut a = row_of(&z);
    cpu::gelu_forward(&mut a);
    let mut grad = row_of(&vec![1.0; z.len()]);
    cpu::gelu_backward(&mut grad, row_of(&z).view());
    for ((&z, &a), &g) in z.iter().zip(&a).zip(&grad) {
        let z64 = f64::from(z);
        let want = gelu64(z64);
        assert!((f64::from(a) - want).abs() < 1e-6, "gelu({z}) = {a}, the formula gives {want}");
        let h = 1e-5;
        let slope = (gelu64(z64 + h) - gelu64(z64 - h)) / (2.0 * h);
        assert!((f64::from(g) - slope).abs() < 1e-5, "gelu'({z}) = {g}, the formula's slope is {slope}");
    }
    // Far out the tanh is ±1: the output is z or 0 and the derivative 1 or
    // 0, finite even where z^3 (or z^2) overflows.
    let far = [-1e30f32, -50.0, 50.0, 1e30];
    let mut a = row_of(&far);
    cpu::gelu_forward(&mut a);
    let mut grad = row_of(&[1.0; 4]);
    cpu::gelu_backward(&mut grad, row_of(&far).view());
    assert_eq!(a.mapv(f32::abs).as_slice().unwrap(), &[0.0, 0.0, 50.0, 1e30]);
    assert_eq!(grad.as_slice().unwrap(), &[0.0, 0.0, 1.0, 1.0]);
}

#[test]
fn bce_grad_is_the_mean_binary_cross_entropy_and_stable_for_huge_logits() {
    // loss = mean over the 6 elements of -(y ln p + (1 - y) ln(1 - p)), p = sigmoid(z),
    // and dloss/dz = (p - y) / 6.
    let z = [-3.0f32, -0.5, 0.0, 0.7, 2.0, 5.0];
    let y = [0.0f32, 1.0, 0.5, 0.2, 1.0, 0.0];
    let logits = Array2::from_shape_vec((2, 3), z.to_vec()).unwrap();
    let expected = Array2::from_shape_vec((2, 3), y.to_vec()).unwrap();
    let (grad, loss_sum) = cpu::bce_grad(logits.view(), expected.view());
    let mut want_sum = 0.0f64;
    for ((&z, &y), &g) in z.iter().zip(&y).zip(&grad) {
        let (z, y) = (f64::from(z), f64::from(y));
        let p = 1.0 / (1.0 + (-z).exp());
        want_sum += -(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
        assert!((f64::from(g) - (p - y) / 6.0).abs() < 1e-7, "grad {g} vs {}", (p - y) / 6.0);
    }
    assert!((f64::from(loss_sum) - want_sum).abs() < 1e-5, "loss sum {loss_sum} vs {want_sum}");

    // Logits of ±1e4 overflow a naive exp or log(0): right answers cost ~0,
    // a wrong one costs |z|.
    let logits = Array2::from_shape_vec((1, 3), vec![1e4, -1e4, 1e4]).unwrap();
    let expected = Array2::from_shape_vec((1, 3), vec![1.0, 0.0, 0.0]).unwrap();
    let (grad, loss_sum) = cpu::bce_grad(logits.view(), expected.view());
    assert!(grad.iter().all(|g| g.is_finite()));
    assert_eq!(grad.as_slice().unwrap(), &[0.0, 0.0, 1.0 / 3.0]);
    assert!((loss_sum - 1e4).abs() < 1.0, "loss sum {loss_sum}");
}
