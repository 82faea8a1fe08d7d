//! Gradient clipping (issue 12, item 5): by the global L2 norm, summed on the
//! GPU in a fixed order (shaders/grad_norm.wgsl), and by value; the layered GPU
//! path and the CPU clip the same gradients, and the fused path turns them away.

mod binary;
mod common;

use common::{classes, gpu_backends, label, trajectories_match};
use ndarray::array;
use wgpu_mlp::cpu::clip_grads;
use wgpu_mlp::gpu::{FusedTrainer, GpuPath};
use wgpu_mlp::model::{Activation, Init, Layer, Loss, MlpSpec, Output, Params};
use wgpu_mlp::train::{Clip, Optimizer};
use wgpu_mlp::{Backend, CpuTrainer, Run, TrainConfig};

#[test]
fn the_cpu_clips_by_the_global_norm_then_by_value() {
    // Gradients 3, 4 (w) and 12 (b): norm 13.
    let grads = || Params { layers: vec![Layer { w: array![[3.0], [4.0]], b: array![12.0] }] };
    let mut by_norm = grads();
    clip_grads(&mut by_norm, Clip { norm: Some(6.5), value: None });
    let factor = 6.5 / (13.0 + 1e-6);
    assert_eq!(by_norm.layers[0].w, array![[3.0 * factor], [4.0 * factor]]);
    assert_eq!(by_norm.layers[0].b, array![12.0 * factor]);
    let mut under = grads();
    clip_grads(&mut under, Clip { norm: Some(20.0), value: None });
    assert_eq!(under, grads(), "a norm under the limit is left alone (factor exactly 1)");
    let mut both = grads();
    clip_grads(&mut both, Clip { norm: Some(6.5), value: Some(2.5) });
    // Scaled to 1.5, 2 and 6; then only 6 is above 2.5.
    assert_eq!(both.layers[0].w, array![[3.0 * factor], [4.0 * factor]]);
    assert_eq!(both.layers[0].b, array![2.5]);
}

#[test]
fn every_path_clips_the_same_gradients() {
    let spec =
        MlpSpec::new(vec![6, 11, 3]).unwrap().with(Activation::Relu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let train = classes(41, 6, 3, 9);
    let params = Params::init(&spec, Init::He, 4).unwrap();
    // Limits small enough that these steps' gradients cross them (the last
    // assertion shows each kind of clipping changes the run).
    let cases = [
        (Clip { norm: Some(0.05), value: None }, Optimizer::Sgd, 0.1),
        (Clip { norm: Some(0.1), value: Some(0.01) }, Optimizer::Momentum { momentum: 0.9 }, 0.1),
        (Clip { norm: None, value: Some(0.01) }, Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }, 0.005),
    ];
    for (clip, optimizer, lr) in cases {
        let config = TrainConfig { lr, optimizer, batch_size: Some(8), clip, ..TrainConfig::default() };
        let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
        for backend in gpu_backends() {
            let Backend::Gpu(gpu) = &backend else { unreachable!("gpu_backends are GPUs") };
            if gpu.path == GpuPath::Fused {
                let refused = FusedTrainer::check(&gpu.ctx, &run).unwrap_err().to_string();
                assert!(refused.contains("clip_grad_norm"), "{refused}");
                continue;
            }
            let mut on_gpu = backend.trainer(&run).unwrap();
            let mut on_cpu = CpuTrainer::new(&run).unwrap();
            let what = format!("{}, {clip:?}, {optimizer:?}", label(&backend));
            trajectories_match(&what, on_gpu.as_mut(), &mut on_cpu, &params, optimizer, 6, 2);
        }
    }
    // The clipping happened: a clipped run ends elsewhere than an unclipped one.
    let train_with = |clip| {
        let config = TrainConfig { lr: 0.1, batch_size: Some(8), clip, ..TrainConfig::default() };
        let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
        let mut cpu = CpuTrainer::new(&run).unwrap();
        wgpu_mlp::Trainer::train(&mut cpu, 3).unwrap();
        wgpu_mlp::Trainer::params(&mut cpu).unwrap()
    };
    let unclipped = train_with(Clip::default());
    assert_ne!(train_with(Clip { norm: Some(0.05), value: None }), unclipped);
    assert_ne!(train_with(Clip { norm: None, value: Some(0.01) }), unclipped);
}

#[test]
fn bad_clip_values_are_refused_naming_the_flag() {
    for (flags, says) in [
        (["--clip-grad-norm", "0"], "'0' must be a positive finite number"),
        (["--clip-grad-value", "inf"], "'inf' must be a positive finite number"),
    ] {
        let run =
            binary::wgpu_mlp_in(&std::env::temp_dir(), &[&["--epochs", "1", "--device", "cpu"][..], &flags].concat());
        binary::assert_bad_input(&run, says);
    }
}
