//! The one-page library API (`Mlp`) as a user calls it: fit, predict, save and
//! load on every backend, the same model on the GPU as on the CPU, and the
//! mistakes it must refuse with a message.

mod common;

use common::{assert_close, label, random, test_backends};
use wgpu_mlp::model::Activation;
use wgpu_mlp::ndarray::{array, Array2, Axis};
use wgpu_mlp::train::Optimizer;
use wgpu_mlp::{Backend, Mlp};

/// Plain SGD keeps the GPU's last-bit differences from growing (Adam's
/// division by sqrt(v) magnifies them), so predictions agree closely.
const PREDICT_ATOL: f32 = 1e-4;
const PREDICT_RTOL: f32 = 1e-3;

fn xor() -> (Array2<f32>, Vec<usize>) {
    (array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], vec![0, 1, 1, 0])
}

fn folder(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-library-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn xor_is_learned_on_every_backend_and_probabilities_sum_to_one() {
    let (x, labels) = xor();
    for backend in test_backends() {
        let what = label(&backend);
        let mut mlp = Mlp::builder()
            .hidden([8])
            .activation(Activation::Tanh)
            .lr(0.05)
            .epochs(400)
            .seed(1)
            .shuffle(false) // batches in order, so the fused path takes it too
            .backend(backend)
            .build()
            .unwrap();
        let report = mlp.fit_classes(x.view(), &labels).unwrap();
        assert!(report.final_loss < 0.1, "{what}: final loss {}", report.final_loss);
        assert_eq!(mlp.predict_classes(x.view()).unwrap(), labels, "{what}");
        let probabilities = mlp.predict(x.view()).unwrap();
        assert_eq!(probabilities.dim(), (4, 2));
        for sum in probabilities.sum_axis(Axis(1)) {
            assert!((sum - 1.0).abs() < 1e-5, "{what}: a row of probabilities sums to {sum}");
        }
    }
}

#[test]
fn a_regression_fits_and_the_gpu_predicts_what_the_cpu_does() {
    // y = (x0 - x1, x0 * x2) on 61 rows of unscaled inputs, batches of 16.
    let x = Array2::from_shape_vec((61, 3), random(183, 5)).unwrap() * 10.0 + 3.0;
    let y = Array2::from_shape_fn(
        (61, 2),
        |(r, c)| if c == 0 { x[(r, 0)] - x[(r, 1)] } else { x[(r, 0)] * x[(r, 2)] / 10.0 },
    );
    let fit_on = |backend: Backend| {
        let mut mlp = Mlp::builder()
            .hidden([9, 5])
            .optimizer(Optimizer::Sgd)
            .lr(0.01)
            .batch_size(Some(16))
            .shuffle(false) // batches in order, so the fused path takes it too
            .epochs(30)
            .backend(backend)
            .build()
            .unwrap();
        let report = mlp.fit(x.view(), y.view()).unwrap();
        (mlp, report)
    };
    let (on_cpu, report) = fit_on(Backend::Cpu);
    assert!(report.final_loss < 0.5 * report.initial_loss, "{} -> {}", report.initial_loss, report.final_loss);
    let want = on_cpu.predict(x.view()).unwrap();
    for backend in test_backends().into_iter().skip(1) {
        let what = label(&backend);
        let (on_gpu, _) = fit_on(backend);
        let got = on_gpu.predict(x.view()).unwrap();
        assert_close(&what, got.as_slice().unwrap(), want.as_slice().unwrap(), PREDICT_ATOL, PREDICT_RTOL);
    }
}

#[test]
fn save_and_load_give_the_same_predictions_on_every_backend() {
    let (x, labels) = xor();
    let mut mlp = Mlp::builder().hidden([5]).epochs(20).build().unwrap();
    mlp.fit_classes(x.view(), &labels).unwrap();
    let path = folder("save").join("xor.safetensors");
    mlp.save(&path).unwrap();
    let want = mlp.predict(x.view()).unwrap();
    for backend in test_backends() {
        let loaded = Mlp::load(&path).unwrap().with_backend(backend.clone());
        assert_eq!(loaded.model().unwrap().1, mlp.model().unwrap().1, "the parameters come back bit for bit");
        let got = loaded.predict(x.view()).unwrap();
        if matches!(backend, Backend::Cpu) {
            assert_eq!(got, want, "the CPU predicts the same bits after a round trip");
        } else {
            assert_close(&label(&backend), got.as_slice().unwrap(), want.as_slice().unwrap(), 1e-5, 1e-4);
        }
    }
    // The scaling is inside the checkpoint: unscaled rows in, the same answers out.
    let raw = x.mapv(|v| v * 1000.0 - 7.0);
    let mut scaled_fit = Mlp::builder().hidden([5]).epochs(20).build().unwrap();
    scaled_fit.fit_classes(raw.view(), &labels).unwrap();
    scaled_fit.save(&path).unwrap();
    assert_eq!(Mlp::load(&path).unwrap().predict(raw.view()).unwrap(), scaled_fit.predict(raw.view()).unwrap());
}

fn message<T>(result: wgpu_mlp::Result<T>) -> String {
    result.map(drop).unwrap_err().to_string()
}

#[test]
fn mistakes_are_refused_with_a_message() {
    let (x, labels) = xor();
    let mlp = Mlp::builder().build().unwrap();
    assert!(message(mlp.predict(x.view())).contains("not fitted"));

    let mut mlp = Mlp::builder().epochs(2).build().unwrap();
    assert!(message(mlp.fit_classes(x.view(), &[0, 0, 0, 0])).contains("two classes"));
    assert!(message(mlp.fit_classes(x.view(), &[0, 1])).contains("4 rows but there are 2 targets"));
    let mut bad = x.clone();
    bad[(2, 1)] = f32::NAN;
    assert!(message(mlp.fit_classes(bad.view(), &labels)).contains("x[2, 1] is NaN"));
    mlp.fit_classes(x.view(), &labels).unwrap();
    let wide = Array2::<f32>::zeros((2, 3));
    assert!(message(mlp.predict(wide.view())).contains("3 columns"));
    assert!(message(mlp.predict(bad.view())).contains("NaN"));

    assert!(Mlp::builder().lr(-1.0).build().unwrap_err().to_string().contains("`lr`"));
    assert!(Mlp::builder().hidden([4, 0]).build().unwrap_err().to_string().contains("hidden"));
    assert!(Mlp::builder().batch_size(Some(0)).build().unwrap_err().to_string().contains("`batch_size`"));
    let error = Mlp::load(folder("missing").join("none.safetensors")).unwrap_err().to_string();
    assert!(error.contains("none.safetensors"), "{error}");
}

#[test]
fn bce_with_leaky_relu_predicts_probabilities_and_the_slope_survives_a_save() {
    // Two labels per row of XOR: x0 xor x1, and x0 and x1.
    let (x, _) = xor();
    let y = array![[0.0f32, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]];
    let mut mlp = Mlp::builder()
        .hidden([8])
        .activation(Activation::LeakyRelu)
        .negative_slope(0.2)
        .loss(wgpu_mlp::model::Loss::Bce)
        .lr(0.05)
        .epochs(300)
        .seed(1)
        .build()
        .unwrap();
    let report = mlp.fit(x.view(), y.view()).unwrap();
    assert!(report.final_loss < 0.2 * report.initial_loss, "{} -> {}", report.initial_loss, report.final_loss);
    let probabilities = mlp.predict(x.view()).unwrap();
    assert!(probabilities.iter().all(|p| (0.0..=1.0).contains(p)), "{probabilities}");
    let rounded = probabilities.mapv(f32::round);
    assert_eq!(rounded, y, "{probabilities}");
    let (spec, _) = mlp.model().unwrap();
    assert_eq!((spec.output(), spec.negative_slope()), (wgpu_mlp::model::Output::Sigmoid, 0.2));

    let path = folder("bce").join("model.safetensors");
    mlp.save(&path).unwrap();
    let loaded = Mlp::load(&path).unwrap();
    assert_eq!(loaded.model().unwrap().0, spec);
    assert_eq!(loaded.predict(x.view()).unwrap(), probabilities, "the same numbers after a round trip");

    // The slope is leaky relu's alone, and below 1.
    let error = Mlp::builder().negative_slope(0.2).build().unwrap_err();
    assert!(error.to_string().contains("`negative_slope` applies to leaky-relu hidden layers"), "{error}");
    let error = Mlp::builder().activation(Activation::LeakyRelu).negative_slope(1.0).build().unwrap_err();
    assert!(error.to_string().contains("`negative_slope` must be a finite number in [0, 1), got 1"), "{error}");
}
