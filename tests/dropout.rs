//! Dropout (issue 12, item 4): the masks come from one counter-based hash,
//! written in Rust (src/dropout.rs) and WGSL (shaders/dropout.wgsl), so the
//! CPU and the layered GPU path drop the same units every step; evaluation
//! drops nothing; a resumed run draws the same masks as an unbroken one.

mod binary;
mod common;

use common::{classes, gpu, gpu_backends, label, trajectories_match};
use wgpu_mlp::dropout::DropoutKey;
use wgpu_mlp::gpu::{FusedTrainer, GpuPath, Region, NO_CLIP_VALUE, STEP_CONTROL_LEN};
use wgpu_mlp::model::{Activation, Init, Loss, MlpSpec, Output, Params};
use wgpu_mlp::train::Optimizer;
use wgpu_mlp::{Backend, CpuTrainer, Run, TrainConfig, Trainer};

#[test]
fn the_masks_drop_about_p_of_the_units_and_change_with_every_key_word() {
    let key = DropoutKey { seed: 7, step: 3, p: 0.3 };
    let kept = (0..20_000u32).filter(|&i| key.keeps(1, i)).count() as f64 / 20_000.0;
    assert!((kept - 0.7).abs() < 0.015, "kept {kept} of the units at p 0.3");
    let mask = |key: DropoutKey, layer: u32| (0..256u32).map(|i| key.keeps(layer, i)).collect::<Vec<_>>();
    let base = mask(key, 1);
    for other in [
        mask(DropoutKey { seed: 8, ..key }, 1),
        mask(DropoutKey { seed: 7 | (1 << 40), ..key }, 1),
        mask(DropoutKey { step: 4, ..key }, 1),
        mask(key, 2),
    ] {
        assert_ne!(other, base, "every word of the key changes the mask");
    }
    assert!((0..1000).all(|i| DropoutKey { p: 0.0, ..key }.keeps(0, i)), "p 0 keeps every unit");
    assert_eq!(key.scale(), 1.0 / 0.7);
}

#[test]
fn the_gpu_kernel_draws_the_rust_masks() {
    let Some((ctx, kernels)) = gpu() else { return };
    let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let len = 1000 + 37;
    let values: Vec<f32> = (0..len).map(|i| 0.5 + i as f32 * 0.01).collect();
    let seed = 0x1234_5678_9abc_def0;
    for step in [0u32, 5, 4_000_000_000] {
        let key = DropoutKey { seed, step: u64::from(step), p: 0.4 };
        let control = ctx.upload("control", &[0.1, 1.0, NO_CLIP_VALUE, f32::from_bits(step)], storage, "test").unwrap();
        let input = ctx.upload("values", &values, storage, "test").unwrap();
        let dropped = ctx.upload("dropped", &vec![9.0; len], storage, "test").unwrap();
        let regions = (Region::new(&control, STEP_CONTROL_LEN), Region::new(&input, len), Region::new(&dropped, len));
        let forward = kernels.dropout_forward("dropout", regions.0, regions.1, regions.2, 3, 0.4, seed).unwrap();
        let backward = kernels.dropout_backward("dropout_backward", regions.0, regions.1, 3, 0.4, seed).unwrap();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            forward.record(&mut pass);
            backward.record(&mut pass);
        }
        ctx.queue.submit([encoder.finish()]);
        let want: Vec<f32> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| if key.keeps(3, i as u32) { v * key.scale() } else { 0.0 })
            .collect();
        // (Buffers may be allocated past `len`; only its first `len` values are the block.)
        let differs = |got: Vec<f32>| got[..len].iter().zip(&want).filter(|(g, w)| g != w).count();
        assert_eq!(
            differs(ctx.read_buffer(&dropped).unwrap()),
            0,
            "forward at step {step}: the same units, the same scale"
        );
        assert_eq!(differs(ctx.read_buffer(&input).unwrap()), 0, "backward in place at step {step}");
    }
}

fn net() -> (MlpSpec, wgpu_mlp::Dataset, Params) {
    let spec =
        MlpSpec::new(vec![5, 13, 7, 3]).unwrap().with(Activation::Tanh, Output::Softmax, Loss::CrossEntropy).unwrap();
    let train = classes(37, 5, 3, 6);
    let params = Params::init(&spec, Init::Xavier, 3).unwrap();
    (spec, train, params)
}

#[test]
fn every_path_drops_the_same_units_step_for_step() {
    let (spec, train, params) = net();
    let test = classes(11, 5, 3, 7);
    for optimizer in [Optimizer::Sgd, Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }] {
        let config = TrainConfig {
            lr: if optimizer == Optimizer::Sgd { 0.2 } else { 0.01 },
            optimizer,
            batch_size: Some(8),
            shuffle: true,
            seed: 11,
            dropout: Some(0.25),
            ..TrainConfig::default()
        };
        let run = Run { spec: &spec, params: &params, train: &train, test: Some(&test), config: &config };
        for backend in gpu_backends() {
            let Backend::Gpu(gpu) = &backend else { unreachable!("gpu_backends are GPUs") };
            if gpu.path == GpuPath::Fused {
                let in_order = TrainConfig { shuffle: false, ..config.clone() };
                let refused = FusedTrainer::check(&gpu.ctx, &Run { config: &in_order, test: None, ..run }).unwrap_err();
                assert!(refused.to_string().contains("dropout"), "{refused}");
                continue;
            }
            let mut on_gpu = backend.trainer(&run).unwrap();
            let mut on_cpu = CpuTrainer::new(&run).unwrap();
            let what = format!("{}, dropout 0.25, {optimizer:?}", label(&backend));
            trajectories_match(&what, on_gpu.as_mut(), &mut on_cpu, &params, optimizer, 6, 2);
        }
    }
}

#[test]
fn evaluation_drops_nothing_and_training_with_dropout_differs_from_without() {
    let (spec, train, params) = net();
    let config = TrainConfig { lr: 0.2, batch_size: Some(8), dropout: Some(0.5), ..TrainConfig::default() };
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    let mut cpu = CpuTrainer::new(&run).unwrap();
    // Before any step, the loss over the training rows is the whole network's.
    let whole = wgpu_mlp::cpu::evaluate(&spec, &params, &train).0;
    assert_eq!(cpu.evaluate().unwrap(), whole);
    cpu.train(2).unwrap();
    let plain_config = TrainConfig { dropout: None, ..config.clone() };
    let mut plain = CpuTrainer::new(&Run { config: &plain_config, ..run }).unwrap();
    plain.train(2).unwrap();
    assert_ne!(cpu.params().unwrap(), plain.params().unwrap());
}

#[test]
fn a_resumed_run_draws_the_masks_of_an_unbroken_one() {
    let (spec, train, params) = net();
    let config = TrainConfig {
        lr: 0.2,
        batch_size: Some(8),
        shuffle: true,
        seed: 2,
        dropout: Some(0.3),
        ..TrainConfig::default()
    };
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    common::resumes_bit_for_bit(&run, 3);
}

#[test]
fn a_bad_probability_is_refused_naming_the_flag() {
    let run = binary::wgpu_mlp_in(&std::env::temp_dir(), &["--dropout", "1", "--epochs", "1", "--device", "cpu"]);
    binary::assert_bad_input(&run, "'1' must be a probability in [0, 1)");
}

#[test]
fn dropout_schedule_and_clipping_add_four_dispatches_and_no_read_back_to_a_layered_step() {
    if gpu().is_none() {
        return;
    }
    // A context of its own: its counters count this test's dispatches only,
    // while other tests run on the shared one.
    let layered = Backend::gpu(GpuPath::Layered, None).unwrap();
    let Backend::Gpu(gpu) = &layered else { unreachable!("Backend::gpu is a GPU") };
    // 784-256-10 as bench's mlp and mlp-regularized (timed there, counted here over a fixed number of steps).
    let spec = MlpSpec::new(vec![784, 256, 10]).unwrap();
    let train = wgpu_mlp::Dataset::seed_problem(64, 784, 10, 0).unwrap();
    let params = Params::init(&spec, Init::Xavier, 0).unwrap();
    let plain = TrainConfig { batch_size: Some(16), ..TrainConfig::default() };
    let regularized = TrainConfig {
        dropout: Some(0.1),
        lr_schedule: wgpu_mlp::schedule::LrSchedule {
            shape: wgpu_mlp::schedule::LrShape::Cosine { epochs: 10, min: 0.0 },
            warmup_epochs: 0,
        },
        clip: wgpu_mlp::train::Clip { norm: Some(1.0), value: None },
        ..plain.clone()
    };
    let per_step = |config: &TrainConfig| {
        let run = Run { spec: &spec, params: &params, train: &train, test: None, config };
        let mut trainer = layered.trainer(&run).unwrap();
        trainer.train(1).unwrap();
        let before = gpu.ctx.counts();
        trainer.train(5).unwrap();
        let after = gpu.ctx.counts();
        let steps = 5.0 * trainer.steps_per_epoch() as f64;
        let per = |a: u64, b: u64| (a - b) as f64 / steps;
        (
            per(after.dispatches, before.dispatches),
            per(after.submits, before.submits),
            per(after.readbacks, before.readbacks),
        )
    };
    let (plain, regularized) = (per_step(&plain), per_step(&regularized));
    // One hidden layer: its dropout mask forward and on dZ, and clipping's two; the schedule's rate is a copy.
    assert_eq!(regularized.0 - plain.0, 4.0, "dispatches per step: {plain:?} and {regularized:?}");
    assert_eq!((regularized.1, regularized.2), (plain.1, plain.2), "submits and read-backs per step");
}
