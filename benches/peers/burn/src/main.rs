//! The seed and mlp steps in burn 0.22: sigmoid layers, the mean squared
//! error over every element, plain SGD on the whole batch, f32 on the CPU,
//! from the cases `wgpu-mlp bench --export DIR` writes (benches/peers/).
//!
//!     burn-peer CASE.safetensors...
//!
//! Two variants on each CPU backend (NdArray, Flex), both under Autodiff:
//! "manual SGD" (raw tensors: forward, `backward`, `grad`, `w - lr * g`) and
//! "Linear + Sgd" (burn's `Linear` modules and its `Sgd` optimizer). Each
//! first takes the case's check steps and must reach wgpu-mlp's loss, then is
//! timed as peer_case.py does: one warm-up run, then the median of 7 runs,
//! each from the initial weights and ending with a device sync. One JSON line
//! per measurement on stdout, as the Python peers print.
//!
//! Both backends run with burn's default features: SIMD kernels and rayon
//! threads over every core, as JAX and TensorFlow use theirs. burn 0.22's
//! other CPU backend, CubeCL's `cpu`, is left out: its build script downloads
//! a prebuilt LLVM/MLIR bundle from GitHub (tracel-llvm-bundler), which is not
//! a crates.io build; candle is no longer a burn backend.

use std::collections::HashMap;
use std::process::exit;
use std::time::Instant;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

/// Timed runs per measurement, as in peer_case.py.
const RUNS: usize = 7;
/// How far a peer's loss after the check steps may be from ours.
const LOSS_RTOL: f64 = 1e-4;
/// Reported as the "framework" field; keep in step with Cargo.lock.
const FRAMEWORK: &str = "burn 0.22.1";

/// A case file: data, initial layers (w (IN, OUT), b (OUT)) and settings, as
/// host vectors with their shapes, so each backend builds its own tensors.
struct Case {
    name: String,
    lr: f32,
    check_steps: usize,
    loss_after: f64,
    steps_per_run: usize,
    x: (Vec<f32>, Vec<usize>),
    y: (Vec<f32>, Vec<usize>),
    layers: Vec<((Vec<f32>, Vec<usize>), (Vec<f32>, Vec<usize>))>,
}

fn fail(message: String) -> ! {
    eprintln!("error: {message}");
    exit(1)
}

impl Case {
    fn read(path: &str) -> Case {
        let bytes = std::fs::read(path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap_or_else(|e| fail(format!("{path}: {e}")));
        let meta: HashMap<String, String> = header.metadata().clone().unwrap_or_default();
        let get = |key: &str| meta.get(key).cloned().unwrap_or_else(|| fail(format!("{path}: no `{key}` in metadata")));
        let kinds = (get("activation"), get("output"), get("loss"));
        if kinds != ("sigmoid".into(), "sigmoid".into(), "mse".into()) {
            fail(format!("{path}: the peers build sigmoid layers with an MSE loss, not {kinds:?}"));
        }
        let number = |key: &str| get(key).parse::<f64>().unwrap_or_else(|e| fail(format!("{path}: {key}: {e}")));
        let tensors = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| fail(format!("{path}: {e}")));
        let tensor = |name: &str| {
            let view = tensors.tensor(name).unwrap_or_else(|e| fail(format!("{path}: {e}")));
            if view.dtype() != Dtype::F32 {
                fail(format!("{path}: {name} is {:?}, not F32", view.dtype()));
            }
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            (values, view.shape().to_vec())
        };
        let name = get("case");
        let steps_per_run = match name.as_str() {
            "seed" => 1000,
            "mlp" => 50,
            other => fail(format!("{path}: unknown case {other}")),
        };
        let layer_count = get("sizes").split(',').count() - 1;
        Case {
            lr: number("lr") as f32,
            check_steps: number("check_steps") as usize,
            loss_after: number("loss_after_check_steps"),
            steps_per_run,
            x: tensor("x"),
            y: tensor("y"),
            layers: (0..layer_count)
                .map(|l| (tensor(&format!("layers.{l}.weight")), tensor(&format!("layers.{l}.bias"))))
                .collect(),
            name,
        }
    }

    /// Exits unless `loss`, the peer's after the check steps, is ours.
    fn check(&self, variant: &str, loss: f64) {
        if !((loss - self.loss_after).abs() <= LOSS_RTOL * self.loss_after.abs()) {
            fail(format!(
                "burn ({variant}) on {}: loss {loss} after {} steps, wgpu-mlp's is {} (relative tolerance {LOSS_RTOL})",
                self.name, self.check_steps, self.loss_after
            ));
        }
    }
}

fn tensor<const D: usize>((values, shape): &(Vec<f32>, Vec<usize>), device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values.clone(), shape.clone()), device)
}

/// The mean of the squared errors over every element, as an f32 read back to
/// the host (which also waits for every step before it).
fn mse(out: Tensor<2>, y: &Tensor<2>) -> Tensor<1> {
    (out - y.clone()).square().mean()
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f32>() as f64
}

/// Variant (a): raw tensors. The parameters live on the plain (inner) device;
/// each step lifts them onto the autodiff device as fresh leaves, runs the
/// forward pass and `backward`, reads each `grad` (a plain tensor) and forms
/// `w - lr * g` on the plain device, so the update itself is not recorded.
struct Manual {
    layers: Vec<(Tensor<2>, Tensor<1>)>,
}

impl Manual {
    fn forward(layers: &[(Tensor<2>, Tensor<1>)], x: &Tensor<2>) -> Tensor<2> {
        let mut a = x.clone();
        for (w, b) in layers {
            // b (OUT) broadcasts over the rows as (1, OUT).
            a = sigmoid(a.matmul(w.clone()) + b.clone().unsqueeze::<2>());
        }
        a
    }

    fn step(&mut self, x: &Tensor<2>, y: &Tensor<2>, lr: f32) {
        let leaves: Vec<_> = self
            .layers
            .iter()
            .map(|(w, b)| (w.clone().autodiff().require_grad(), b.clone().autodiff().require_grad()))
            .collect();
        let grads = mse(Self::forward(&leaves, x), y).backward();
        for ((w, b), (lw, lb)) in self.layers.iter_mut().zip(&leaves) {
            let gw = lw.grad(&grads).expect("w has a gradient");
            let gb = lb.grad(&grads).expect("b has a gradient");
            *w = w.clone() - gw.mul_scalar(lr);
            *b = b.clone() - gb.mul_scalar(lr);
        }
    }

    fn loss(&self, x: &Tensor<2>, y: &Tensor<2>) -> f64 {
        scalar(mse(Self::forward(&self.layers, x), y))
    }
}

/// Variant (b): burn's modules and optimizer.
#[derive(Module, Debug)]
struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    /// `Linear`s holding the case's weights. burn's `Linear` stores its weight
    /// as (IN, OUT) and computes `x W + b`, the layout of the case files.
    fn new(case: &Case, device: &Device) -> Mlp {
        let layers = case
            .layers
            .iter()
            .map(|(w, b)| {
                // LinearConfig's initializer is replaced right away by our weights.
                let mut linear = LinearConfig::new(w.1[0], w.1[1]).init(device);
                linear.weight = Param::from_tensor(tensor(w, device));
                linear.bias = Some(Param::from_tensor(tensor(b, device)));
                linear
            })
            .collect();
        Mlp { layers }
    }

    fn forward(&self, x: &Tensor<2>) -> Tensor<2> {
        self.layers.iter().fold(x.clone(), |a, layer| sigmoid(layer.forward(a)))
    }
}

/// One warm-up, then the median of RUNS timed runs of `run(steps)` (which
/// must wait for its result), in microseconds per step.
fn median_us_per_step(mut run: impl FnMut(usize), steps: usize) -> f64 {
    run(steps);
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run(steps);
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2] / steps as f64 * 1e6
}

fn report(variant: &str, case: &Case, us_per_step: f64, loss: f64) {
    // Plain formatting keeps the dependencies to burn and safetensors; the
    // variant names hold no characters JSON would need escaped.
    println!(
        "{{\"framework\": \"{FRAMEWORK}\", \"variant\": \"{variant}\", \"case\": \"{}\", \"us_per_step\": {us_per_step}, \"loss_after_check_steps\": {loss}}}",
        case.name
    );
}

fn bench_backend(backend: &str, device: Device, case: &Case) {
    // `device` has autodiff; `plain` is the same backend without it.
    let plain = device.clone().inner();
    let lr = case.lr;

    // (a) manual SGD: x, y and the parameters on the plain device.
    {
        let variant = format!("{backend} + Autodiff, manual SGD");
        let x = tensor::<2>(&case.x, &plain);
        let y = tensor::<2>(&case.y, &plain);
        let start: Vec<_> = case.layers.iter().map(|(w, b)| (tensor::<2>(w, &plain), tensor::<1>(b, &plain))).collect();
        let mut net = Manual { layers: start.clone() };
        for _ in 0..case.check_steps {
            net.step(&x, &y, lr);
        }
        let loss = net.loss(&x, &y);
        case.check(&variant, loss);
        let us = median_us_per_step(
            |steps| {
                let mut net = Manual { layers: start.clone() };
                for _ in 0..steps {
                    net.step(&x, &y, lr);
                }
                plain.sync().expect("sync");
            },
            case.steps_per_run,
        );
        report(&variant, case, us, loss);
    }

    // (b) Linear + Sgd: everything on the autodiff device.
    {
        let variant = format!("{backend} + Autodiff, Linear + Sgd");
        let x = tensor::<2>(&case.x, &device);
        let y = tensor::<2>(&case.y, &device);
        let start = Mlp::new(case, &device);
        let train = |mut model: Mlp, steps: usize| {
            let mut optim = SgdConfig::new().init();
            for _ in 0..steps {
                let grads = mse(model.forward(&x), &y).backward();
                let grads = GradientsParams::from_grads(grads, &model);
                model = optim.step(lr as f64, model, grads);
            }
            model
        };
        let checked = train(start.clone(), case.check_steps);
        let loss = scalar(mse(checked.valid().forward(&x.clone().inner()), &y.clone().inner()));
        case.check(&variant, loss);
        let us = median_us_per_step(
            |steps| {
                train(start.clone(), steps);
                device.sync().expect("sync");
            },
            case.steps_per_run,
        );
        report(&variant, case, us, loss);
    }
}

#[allow(deprecated)] // NdArray is deprecated in burn 0.22 in favour of Flex; still timed.
fn ndarray() -> Device {
    Device::ndarray()
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        fail("usage: burn-peer CASE.safetensors...".into());
    }
    for path in &paths {
        let case = Case::read(path);
        bench_backend("NdArray", ndarray().autodiff(), &case);
        bench_backend("Flex", Device::flex().autodiff(), &case);
    }
}
