//! Dropout (issue 12, item 4): the masks come from one counter-based hash,
//! written in Rust (src/dropout.rs) and WGSL (shaders/dropout.wgsl), so the
//! CPU and the layered GPU path drop the same units every step; evaluation
//! drops nothing; a resumed run draws the same masks as an unbroken one.

mod binary;
mod common;

use common::{classes, gpu, gpu_backends, label, trajectories_match};
use wgpu_mlp::dropout::{Dropout, DropoutKey};
use wgpu_mlp::gpu::{
    DropoutMask, Epilogue, FusedTrainer, GpuPath, MatmulParams, Region, NO_CLIP_VALUE, STEP_CONTROL_LEN,
};
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
fn the_matmul_epilogues_draw_the_rust_masks() {
    // out (M, N) = a (M, K) · I (K = N): the product is a itself, so what the
    // epilogues mask is known; 41 x 29, neither a multiple of a tile, on both
    // matmul kernels, the forward's copy and the backward's in-place mask.
    let Some((ctx, each)) = common::gpu_each_matmul() else { return };
    let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let (m, n) = (41usize, 29usize);
    let values: Vec<f32> = (0..m * n).map(|i| 0.5 + i as f32 * 0.01).collect();
    let identity: Vec<f32> = (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect();
    let seed = 0x1234_5678_9abc_def0;
    for kernels in each {
        for step in [0u32, 5, 4_000_000_000] {
            let key = DropoutKey { seed, step: u64::from(step), p: 0.4 };
            let control =
                ctx.upload("control", &[0.1, 1.0, NO_CLIP_VALUE, f32::from_bits(step)], storage, "test").unwrap();
            let buffer = |label: &str, data: &[f32]| ctx.upload(label, data, storage, "test").unwrap();
            let (a, b) = (buffer("a", &values), buffer("identity", &identity));
            let (bias, out, dropped, given, dz) = (
                buffer("bias", &vec![0.0; n]),
                buffer("out", &vec![9.0; m * n]),
                buffer("dropped", &vec![9.0; m * n]),
                buffer("given", &vec![0.5; m * n]),
                buffer("dz", &vec![9.0; m * n]),
            );
            let mask = DropoutMask { control: Region::new(&control, STEP_CONTROL_LEN), layer: 3, p: 0.4, seed };
            let shape = MatmulParams::new(m as u32, n as u32, n as u32, false, false);
            let forward = Epilogue::BiasActivation {
                bias: Region::new(&bias, n),
                activation: Activation::Identity,
                negative_slope: 0.0,
                pre: None,
                dropout: Some((mask, Region::new(&dropped, m * n))),
            };
            let backward = Epilogue::Derivative {
                activation: Activation::Identity,
                negative_slope: 0.0,
                given: Region::new(&given, m * n),
                dropout: Some(mask),
            };
            let (a, b, out_region) = (Region::new(&a, m * n), Region::new(&b, n * n), Region::new(&out, m * n));
            let dispatches = [
                kernels.matmul_with("forward", a, b, out_region, shape, forward).unwrap(),
                kernels.matmul_with("backward", a, b, Region::new(&dz, m * n), shape, backward).unwrap(),
            ];
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                dispatches.iter().for_each(|d| d.record(&mut pass));
            }
            ctx.queue.submit([encoder.finish()]);
            let want: Vec<f32> = values
                .iter()
                .enumerate()
                .map(|(i, &v)| if key.keeps(3, i as u32) { v * key.scale() } else { 0.0 })
                .collect();
            // (Buffers may be allocated past the block; only its first m * n values are it.)
            let differs = |got: Vec<f32>| got[..m * n].iter().zip(&want).filter(|(g, w)| g != w).count();
            let what = format!("{} matmul at step {step}", kernels.matmul_kernel().name());
            assert_eq!(differs(ctx.read_buffer(&dropped).unwrap()), 0, "{what}: the forward's dropped copy");
            assert_eq!(ctx.read_buffer(&out).unwrap()[..m * n], values[..], "{what}: the forward's output stays whole");
            assert_eq!(differs(ctx.read_buffer(&dz).unwrap()), 0, "{what}: the backward's masked dZ");
        }
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
    let adam = Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    // One rate for both hidden layers, and one per layer with the first kept whole.
    let cases = [
        (Optimizer::Sgd, Dropout::Every(0.25)),
        (adam, Dropout::Every(0.25)),
        (Optimizer::Sgd, Dropout::Layers(vec![0.0, 0.35])),
    ];
    for (optimizer, dropout) in cases {
        let config = TrainConfig {
            lr: if optimizer == Optimizer::Sgd { 0.2 } else { 0.01 },
            optimizer,
            batch_size: Some(8),
            shuffle: true,
            seed: 11,
            dropout: dropout.clone(),
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
            let what = format!("{}, dropout {dropout:?}, {optimizer:?}", label(&backend));
            trajectories_match(&what, on_gpu.as_mut(), &mut on_cpu, &params, optimizer, 6, 2);
        }
    }
}

#[test]
fn evaluation_drops_nothing_and_training_with_dropout_differs_from_without() {
    let (spec, train, params) = net();
    let config = TrainConfig { lr: 0.2, batch_size: Some(8), dropout: Dropout::Every(0.5), ..TrainConfig::default() };
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    let mut cpu = CpuTrainer::new(&run).unwrap();
    // Before any step, the loss over the training rows is the whole network's.
    let whole = wgpu_mlp::cpu::evaluate(&spec, &params, &train).0;
    assert_eq!(cpu.evaluate().unwrap(), whole);
    cpu.train(2).unwrap();
    let plain_config = TrainConfig { dropout: Dropout::Off, ..config.clone() };
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
        dropout: Dropout::Layers(vec![0.3, 0.1]),
        ..TrainConfig::default()
    };
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    common::resumes_bit_for_bit(&run, 3);
}

#[test]
fn a_list_of_rates_drops_each_layer_at_its_own_rate() {
    let (spec, train, params) = net();
    let config =
        |dropout: Dropout| TrainConfig { lr: 0.2, batch_size: Some(8), seed: 5, dropout, ..TrainConfig::default() };
    let trained = |dropout: Dropout| {
        let config = config(dropout);
        let mut cpu =
            CpuTrainer::new(&Run { spec: &spec, params: &params, train: &train, test: None, config: &config }).unwrap();
        cpu.train(3).unwrap();
        cpu.params().unwrap()
    };
    // The same rate listed for each layer is that rate for all; zeros are no dropout.
    assert_eq!(trained(Dropout::Layers(vec![0.3, 0.3])), trained(Dropout::Every(0.3)));
    assert_eq!(trained(Dropout::Layers(vec![0.0, 0.0])), trained(Dropout::Off));
    // Each layer's rate is its own: dropping only the second differs from both and from none.
    let second_only = trained(Dropout::Layers(vec![0.0, 0.3]));
    for other in [Dropout::Off, Dropout::Every(0.3), Dropout::Layers(vec![0.3, 0.0])] {
        assert_ne!(second_only, trained(other.clone()), "{other:?}");
    }
    // A list of another length than the hidden layers is refused.
    let three = config(Dropout::Layers(vec![0.1, 0.2, 0.3]));
    let refused = three.check(&spec, &train, None).unwrap_err().to_string();
    assert!(refused.contains("3 rates") && refused.contains("2 hidden layers"), "{refused}");
}

#[test]
fn a_list_of_the_wrong_length_or_a_bad_rate_in_it_is_refused_naming_the_flag() {
    let dir = std::env::temp_dir();
    let args = ["--hidden", "8,6", "--dropout", "0.2,0.1,0.1", "--epochs", "1", "--device", "cpu"];
    binary::assert_bad_input(
        &binary::wgpu_mlp_in(&dir, &args),
        "--dropout has 3 rates, one per hidden layer, but the network has 2 hidden layers",
    );
    let args = ["--hidden", "8,6", "--dropout", "0.2,1.5", "--epochs", "1", "--device", "cpu"];
    binary::assert_bad_input(&binary::wgpu_mlp_in(&dir, &args), "'1.5' must be a probability in [0, 1)");
    let args = ["--hidden", "8,6", "--dropout", "0.2,", "--epochs", "1", "--device", "cpu"];
    binary::assert_bad_input(&binary::wgpu_mlp_in(&dir, &args), "'' must be a probability in [0, 1)");
}

#[test]
fn a_bad_probability_is_refused_naming_the_flag() {
    let run = binary::wgpu_mlp_in(&std::env::temp_dir(), &["--dropout", "1", "--epochs", "1", "--device", "cpu"]);
    binary::assert_bad_input(&run, "'1' must be a probability in [0, 1)");
}

#[test]
fn dropout_schedule_and_clipping_add_two_dispatches_and_no_read_back_to_a_layered_step() {
    if gpu().is_none() {
        return;
    }
    // A context of its own: its counters count this test's dispatches only,
    // while other tests run on the shared one.
    // The adapter's own kernels, untuned: the counts do not depend on a timing.
    let ctx = wgpu_mlp::gpu::GpuContext::new().unwrap();
    let settings = wgpu_mlp::gpu::KernelSettings::for_adapter(&ctx.info);
    let layered = Backend::gpu_with(ctx, settings, GpuPath::Layered).unwrap();
    let Backend::Gpu(gpu) = &layered else { unreachable!("Backend::gpu is a GPU") };
    // 784-256-10 as bench's mlp and mlp-regularized (timed there, counted here over a fixed number of steps).
    let spec = MlpSpec::new(vec![784, 256, 10]).unwrap();
    let train = wgpu_mlp::Dataset::seed_problem(64, 784, 10, 0).unwrap();
    let params = Params::init(&spec, Init::Xavier, 0).unwrap();
    let plain = TrainConfig { batch_size: Some(16), ..TrainConfig::default() };
    let regularized = TrainConfig {
        dropout: Dropout::Every(0.1),
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
    // Clipping's two; dropout's masks are in the matmuls' epilogues and the schedule's rate is a copy.
    assert_eq!(regularized.0 - plain.0, 2.0, "dispatches per step: {plain:?} and {regularized:?}");
    assert_eq!((regularized.1, regularized.2), (plain.1, plain.2), "submits and read-backs per step");
}

#[test]
fn auto_says_why_a_run_with_dropout_leaves_the_fused_path() {
    if gpu().is_none() {
        return;
    }
    let dir = binary::scratch("dropout", "notice");
    let out = dir.join("run");
    let args = ["--device", "gpu", "--epochs", "1", "--dropout", "0.2", "--out", out.to_str().unwrap()];
    let run = binary::wgpu_mlp_in(&dir, &args);
    binary::assert_success(&run);
    assert!(
        run.stderr.contains("notice: the layered GPU path trains this run") && run.stderr.contains("--dropout"),
        "{}",
        run.show()
    );
}
