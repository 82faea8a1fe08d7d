//! DP-SGD (issue 14, items 2-4): Poisson sampling, per-row clipping without
//! per-row gradient tensors, and Philox noise drawn the same on the CPU and
//! the GPU, so the two train the same DP-SGD run step for step, and a
//! resumed run is the unbroken one bit for bit.

mod common;

use common::{assert_close, classes, flat, gpu, gpu_backends, label, trajectories_match};
use ndarray::{s, Array1, Array2};
use wgpu_mlp::cpu;
use wgpu_mlp::dp::DpSgd;
use wgpu_mlp::gpu::{FusedTrainer, GpuPath, Region, NO_CLIP_VALUE, STEP_CONTROL_LEN};
use wgpu_mlp::model::{Activation, Init, Loss, MlpSpec, Output, Params};
use wgpu_mlp::noise;
use wgpu_mlp::train::Optimizer;
use wgpu_mlp::{Backend, CpuTrainer, Dataset, Run, TrainConfig};

/// 5-7-3 tanh then softmax: odd widths, so no kernel's tile fits exactly.
fn net() -> (MlpSpec, Dataset, Params) {
    let spec =
        MlpSpec::new(vec![5, 7, 3]).unwrap().with(Activation::Tanh, Output::Softmax, Loss::CrossEntropy).unwrap();
    let train = classes(37, 5, 3, 3);
    let params = Params::init(&spec, Init::Xavier, 1).unwrap();
    (spec, train, params)
}

fn dp_config(optimizer: Optimizer) -> TrainConfig {
    TrainConfig {
        lr: if optimizer == Optimizer::Sgd { 0.5 } else { 0.01 },
        optimizer,
        batch_size: Some(8),
        seed: 5,
        dp: Some(DpSgd { max_grad_norm: 0.3, noise_multiplier: 0.9, key: 0x0123_4567_89ab_cdef }),
        ..TrainConfig::default()
    }
}

#[test]
fn clipping_by_row_norms_equals_clipping_each_rows_own_gradient() {
    let (spec, train, params) = net();
    // Rows of the batch, and C small enough that some rows are clipped and large enough that some are not.
    let x = train.x.slice(s![..9, ..]).to_owned();
    let y = train.y.slice(s![..9, ..]).to_owned();
    let expected_batch = 6.0f64;
    // Outside the DP code: each row's gradient from a batch of that row
    // alone, its norm, clipped, summed, over the expected batch.
    let row_grads: Vec<Params> = (0..x.nrows())
        .map(|r| {
            let (xr, yr) = (x.slice(s![r..r + 1, ..]), y.slice(s![r..r + 1, ..]));
            let pass = cpu::forward(&spec, &params, xr);
            cpu::backward(&spec, &params, xr, &pass, yr).0
        })
        .collect();
    let row_norms: Vec<f32> = row_grads.iter().map(|g| flat(g).iter().map(|v| v * v).sum::<f32>().sqrt()).collect();
    // C between the rows' norms: some are clipped, some not.
    let mut sorted = row_norms.clone();
    sorted.sort_by(f32::total_cmp);
    let max_norm = sorted[sorted.len() / 2];
    let mut want = params.zeros_like();
    let mut clipped = 0;
    for (grads, norm) in row_grads.iter().zip(&row_norms) {
        let factor = (max_norm / (norm + 1e-6)).min(1.0);
        clipped += usize::from(factor < 1.0);
        for (w, g) in want.layers.iter_mut().zip(&grads.layers) {
            w.w.scaled_add(factor / expected_batch as f32, &g.w);
            w.b.scaled_add(factor / expected_batch as f32, &g.b);
        }
    }
    assert!(clipped > 0 && clipped < x.nrows(), "{clipped} of {} rows clipped: pick another C", x.nrows());
    // The DP code: the batch's dZ, the norms from them, the rows scaled, the gradients.
    let pass = cpu::forward(&spec, &params, x.view());
    let mut dacts = cpu::layer_buffers(&spec, x.nrows());
    cpu::backward_deltas_into(&spec, &params, &pass, y.view(), &mut dacts, None);
    let mut norms = Array1::zeros(x.nrows());
    for (l, dz) in dacts.iter().enumerate() {
        let input = if l == 0 { x.view() } else { pass.acts[l - 1].view() };
        cpu::dp_row_norms(input, dz.view(), &mut norms);
    }
    let rows = x.nrows() as f32;
    cpu::dp_clip_factors(&mut norms, max_norm, rows, (x.nrows() as f64 / expected_batch) as f32, x.nrows());
    for dz in &mut dacts {
        cpu::dp_scale_rows(dz, norms.view());
    }
    let mut got = params.zeros_like();
    cpu::weight_grads_into(x.view(), &pass, &dacts, &mut got);
    assert_close("clipped gradient sum", &flat(&got), &flat(&want), 1e-6, 1e-4);
}

#[test]
fn the_noise_is_standard_normal_and_independent_across_its_key() {
    let key = noise::key(42);
    let draws: Vec<f64> = (0..200_000).map(|i| f64::from(noise::normal(key, 3, noise::noise_stream(1), i))).collect();
    let n = draws.len() as f64;
    let mean = draws.iter().sum::<f64>() / n;
    let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n;
    let fourth = draws.iter().map(|d| (d - mean).powi(4)).sum::<f64>() / n / (var * var);
    // Standard errors at n = 2e5: mean 0.0022, variance 0.0032; 5 of them each.
    assert!(mean.abs() < 0.011, "mean {mean}");
    assert!((var - 1.0).abs() < 0.016, "variance {var}");
    assert!((fourth - 3.0).abs() < 0.1, "kurtosis {fourth}: a normal's is 3");
    // Neighbours share a Philox block but not a value; other steps, streams and keys differ.
    let base: Vec<f32> = (0..64).map(|i| noise::normal(key, 3, 2, i)).collect();
    for other in [
        (0..64).map(|i| noise::normal(key, 4, 2, i)).collect::<Vec<_>>(),
        (0..64).map(|i| noise::normal(key, 3, 3, i)).collect(),
        (0..64).map(|i| noise::normal(noise::key(43), 3, 2, i)).collect(),
        (0..64).map(|i| noise::normal(noise::key(42 | (1 << 40)), 3, 2, i)).collect(),
    ] {
        assert_ne!(other, base);
    }
    let correlation: f64 = (0..100_000u32)
        .map(|i| f64::from(noise::normal(key, 0, 1, 2 * i)) * f64::from(noise::normal(key, 0, 1, 2 * i + 1)))
        .sum::<f64>()
        / 100_000.0;
    assert!(correlation.abs() < 0.016, "a Box-Muller pair's correlation {correlation}");
}

#[test]
fn poisson_samples_take_each_row_with_probability_q() {
    let (rows, q, steps) = (500usize, 0.04, 2000u64);
    let mut taken = vec![0u32; rows];
    let mut sizes = Vec::new();
    for step in 0..steps {
        let sample = noise::poisson_rows(noise::key(9), step, rows, q);
        sizes.push(sample.len() as f64);
        for r in sample {
            taken[r as usize] += 1;
        }
    }
    let mean = sizes.iter().sum::<f64>() / steps as f64;
    let var = sizes.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / steps as f64;
    // Binomial(500, 0.04): mean 20, variance 19.2; standard errors 0.1 and 0.6.
    assert!((mean - 20.0).abs() < 0.5, "mean sample {mean}");
    assert!((var - 19.2).abs() < 3.0, "sample variance {var}");
    // Each row: Binomial(2000, 0.04), mean 80, sd 8.8; none is favoured.
    let (low, high) = (taken.iter().min().unwrap(), taken.iter().max().unwrap());
    assert!(*low > 40 && *high < 125, "rows taken between {low} and {high} times");
}

#[test]
fn the_gpu_draws_the_rust_noise() {
    let Some((ctx, kernels)) = gpu() else { return };
    let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let (fan_in, fan_out) = (37, 13);
    let key = noise::key(0xfeed_beef_0000_0007);
    for step in [0u32, 9, 3_000_000_000] {
        let control = ctx.upload("control", &[0.1, 1.0, NO_CLIP_VALUE, f32::from_bits(step)], storage, "test").unwrap();
        let weights = ctx.upload("w", &vec![0.5f32; fan_in * fan_out], storage, "test").unwrap();
        let bias = ctx.upload("b", &vec![-0.25f32; fan_out], storage, "test").unwrap();
        let regions = (
            Region::new(&control, STEP_CONTROL_LEN),
            Region::new(&weights, fan_in * fan_out),
            Region::new(&bias, fan_out),
        );
        let dispatch = kernels.dp_add_noise("noise", regions.0, regions.1, regions.2, 2, 0.3, key).unwrap();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            dispatch.record(&mut pass);
        }
        ctx.queue.submit([encoder.finish()]);
        let mut want = Params {
            layers: vec![wgpu_mlp::model::Layer {
                w: Array2::from_elem((fan_in, fan_out), 0.5),
                b: Array1::from_elem(fan_out, -0.25),
            }],
        };
        // Layer 2's tensors are 4 and 5; the CPU adds noise to layer 0 of a one-layer Params, so shift.
        let mut shifted = Params { layers: vec![want.layers[0].clone(); 3] };
        cpu::dp_add_noise(&mut shifted, key, u64::from(step), 0.3);
        want.layers[0] = shifted.layers[2].clone();
        let got = [ctx.read_buffer(&weights).unwrap(), ctx.read_buffer(&bias).unwrap()].concat();
        // The GPU's log, cos and sin are within a few ulp of the CPU's.
        assert_close(&format!("noise at step {step}"), &got, &flat(&want), 1e-6, 1e-5);
    }
}

#[test]
fn every_device_trains_the_same_dp_sgd_run_step_for_step() {
    let (spec, train, params) = net();
    let test = classes(11, 5, 3, 7);
    for optimizer in [Optimizer::Sgd, Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }] {
        let config = dp_config(optimizer);
        let run = Run { spec: &spec, params: &params, train: &train, test: Some(&test), config: &config };
        for backend in gpu_backends() {
            let Backend::Gpu(gpu) = &backend else { unreachable!("gpu_backends are GPUs") };
            if gpu.path == GpuPath::Fused {
                let refused = FusedTrainer::check(&gpu.ctx, &Run { test: None, ..run }).unwrap_err();
                assert!(refused.to_string().contains("DP-SGD"), "{refused}");
                continue;
            }
            let mut on_gpu = backend.trainer(&run).unwrap();
            let mut on_cpu = CpuTrainer::new(&run).unwrap();
            let what = format!("{}, DP-SGD, {optimizer:?}", label(&backend));
            trajectories_match(&what, on_gpu.as_mut(), &mut on_cpu, &params, optimizer, 6, 2);
        }
    }
}

#[test]
fn dp_sgd_with_dropout_on_a_regression_agrees_too() {
    // mse over two outputs (the loss kernel bounded by elements, not rows), relu, dropout.
    let spec = MlpSpec::new(vec![3, 9, 2]).unwrap().with(Activation::Relu, Output::Identity, Loss::Mse).unwrap();
    let train = Dataset::seed_problem(29, 3, 2, 4).unwrap();
    let params = Params::init(&spec, Init::Xavier, 2).unwrap();
    let config = TrainConfig {
        lr: 0.2,
        dropout: wgpu_mlp::dropout::Dropout::Every(0.2),
        batch_size: Some(5),
        ..dp_config(Optimizer::Sgd)
    };
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    for backend in gpu_backends().into_iter().filter(|b| matches!(b, Backend::Gpu(g) if g.path != GpuPath::Fused)) {
        let mut on_gpu = backend.trainer(&run).unwrap();
        let mut on_cpu = CpuTrainer::new(&run).unwrap();
        let what = format!("{}, DP-SGD with dropout, mse", label(&backend));
        trajectories_match(&what, on_gpu.as_mut(), &mut on_cpu, &params, Optimizer::Sgd, 4, 4);
    }
}

#[test]
fn a_resumed_dp_sgd_run_is_the_unbroken_one_bit_for_bit() {
    let (spec, train, params) = net();
    let config = dp_config(Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    common::resumes_bit_for_bit(&run, 3);
}

#[test]
fn dp_sgd_refuses_what_its_bound_does_not_cover() {
    let (spec, train, params) = net();
    let refused = |config: TrainConfig| {
        let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
        CpuTrainer::new(&run).err().expect("refused").to_string()
    };
    let base = dp_config(Optimizer::Sgd);
    assert!(refused(TrainConfig { shuffle: true, ..base.clone() }).contains("shuffle"));
    let clip = wgpu_mlp::train::Clip { norm: Some(1.0), value: None };
    assert!(refused(TrainConfig { clip, ..base.clone() }).contains("clip_grad_norm"));
    for (max_grad_norm, noise_multiplier, flag) in
        [(0.0, 1.0, "dp_max_grad_norm"), (f32::NAN, 1.0, "dp_max_grad_norm"), (1.0, -1.0, "dp_noise_multiplier")]
    {
        let dp = Some(DpSgd { max_grad_norm, noise_multiplier, key: 0 });
        assert!(refused(TrainConfig { dp, ..base.clone() }).contains(flag));
    }
}

#[test]
fn both_matmul_kernels_cut_a_steps_rows_to_its_sample() {
    // The tiles past a sample's rows return at once and dW sums only its
    // rows: on each matmul kernel, the same run as the CPU's.
    let Some((ctx, each)) = common::gpu_each_matmul() else { return };
    let (spec, train, params) = net();
    let config = dp_config(Optimizer::Sgd);
    let run = Run { spec: &spec, params: &params, train: &train, test: None, config: &config };
    for kernels in each {
        let gpu = wgpu_mlp::backend::GpuBackend { ctx: ctx.clone(), kernels: kernels.clone(), path: GpuPath::Layered };
        let mut on_gpu = Backend::Gpu(gpu).trainer(&run).unwrap();
        let mut on_cpu = CpuTrainer::new(&run).unwrap();
        let what = format!("DP-SGD on the {} matmul", kernels.matmul_kernel().name());
        trajectories_match(&what, on_gpu.as_mut(), &mut on_cpu, &params, Optimizer::Sgd, 3, 3);
    }
}
