//! The CPU backward pass against central finite differences of the CPU loss,
//! for every weight and bias of a small net. The GPU is then held to the CPU.

use ndarray::Array2;
use wgpu_mlp::{cpu, Dataset, MlpSpec, Params};

/// Step of the central difference: small enough that the truncation error
/// (~EPS^2) is tiny, large enough that f32 rounding of the loss (~1e-8) over
/// 2 * EPS stays near 1e-5.
const EPS: f32 = 1e-3;
const GRAD_ATOL: f32 = 1e-4;
const GRAD_RTOL: f32 = 1e-2;

fn loss(params: &Params, data: &Dataset) -> f32 {
    cpu::loss(params, data)
}

#[test]
fn backward_matches_finite_differences() {
    let spec = MlpSpec::new(vec![4, 3, 5, 2]).unwrap();
    let data = Dataset::seed_problem(6, 4, 2, 11).unwrap();
    let params = Params::init(&spec, 11).unwrap();
    let acts = cpu::forward(&params, data.x.view());
    let (grads, _) = cpu::backward(&params, data.x.view(), &acts, data.y.view());

    let mut checked = 0;
    let mut nonzero = 0;
    for l in 0..params.layers.len() {
        let numeric = |nudge: &dyn Fn(&mut Params, f32)| {
            let (mut plus, mut minus) = (params.clone(), params.clone());
            nudge(&mut plus, EPS);
            nudge(&mut minus, -EPS);
            (loss(&plus, &data) - loss(&minus, &data)) / (2.0 * EPS)
        };
        let w_shape: (usize, usize) = params.layers[l].w.dim();
        for i in 0..w_shape.0 {
            for j in 0..w_shape.1 {
                let want = numeric(&|p: &mut Params, d| p.layers[l].w[(i, j)] += d);
                let got = grads.layers[l].w[(i, j)];
                assert!(
                    (got - want).abs() <= GRAD_ATOL + GRAD_RTOL * want.abs(),
                    "layer {l} w[{i},{j}]: backward {got}, finite difference {want}"
                );
                checked += 1;
                nonzero += usize::from(want.abs() > 1e-3);
            }
        }
        for j in 0..params.layers[l].b.len() {
            let want = numeric(&|p: &mut Params, d| p.layers[l].b[j] += d);
            let got = grads.layers[l].b[j];
            assert!(
                (got - want).abs() <= GRAD_ATOL + GRAD_RTOL * want.abs(),
                "layer {l} b[{j}]: backward {got}, finite difference {want}"
            );
            checked += 1;
            nonzero += usize::from(want.abs() > 1e-3);
        }
    }
    assert_eq!(checked, spec.num_params());
    assert!(nonzero > checked / 2, "most gradients should be far from 0 for the check to mean something ({nonzero} of {checked})");
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
