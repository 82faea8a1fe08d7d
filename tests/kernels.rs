//! Each WGSL kernel against its CPU twin in src/cpu.rs, on awkward shapes (1,
//! primes, one past the workgroup size) so partial workgroups are exercised.

mod common;

use common::{assert_close, gpu, gpu_each_grid, gpu_each_matmul, random};
use ndarray::{Array1, Array2};
use wgpu_mlp::cpu::{self, AdamSettings};
use wgpu_mlp::gpu::{
    AdamParams, Dispatch, Epilogue, GpuContext, KernelSettings, Kernels, MatmulParams, MomentumParams, Region,
    ADAM_STATE_LEN, GRAD_NORM_GROUPS, NO_CLIP_VALUE, STEP_CONTROL_LEN, WORKGROUP_SIZE,
};
use wgpu_mlp::model::Activation;

/// Matmul sums K products in another order than ndarray's sgemm: rounding
/// grows with K (here <= 257) and the values (|x| < 1).
const MATMUL_ATOL: f32 = 1e-4;
const MATMUL_RTOL: f32 = 1e-4;
/// exp on the GPU may differ from the host's by a few ulps.
const ELEMENTWISE_ATOL: f32 = 1e-6;
const ELEMENTWISE_RTOL: f32 = 1e-5;
/// Column and loss sums add up to a few thousand terms in another order.
const SUM_ATOL: f32 = 1e-4;
const SUM_RTOL: f32 = 1e-5;
/// Every activation the epilogue and activation_backward take.
const ACTIVATIONS: [Activation; 6] = [
    Activation::Identity,
    Activation::Sigmoid,
    Activation::Relu,
    Activation::Tanh,
    Activation::LeakyRelu,
    Activation::Gelu,
];
/// Leaky relu's slope in these tests: far from PyTorch's 0.01, so a kernel
/// that ignored the one it is given would fail.
const NEGATIVE_SLOPE: f32 = 0.2;

/// Adam divides by sqrt(v) + eps, which magnifies the last bits of v, and its
/// bias corrections come from pow on the GPU, powf on the host.
const ADAM_ATOL: f32 = 1e-5;
const ADAM_RTOL: f32 = 1e-4;

fn storage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
}

fn upload(ctx: &GpuContext, label: &str, values: &[f32]) -> wgpu::Buffer {
    ctx.upload(label, values, storage(), "test data").expect("test buffers fit")
}

fn run(ctx: &GpuContext, dispatches: &[Dispatch]) {
    ctx.scoped("running a test kernel", || {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for dispatch in dispatches {
                dispatch.record(&mut pass);
            }
        }
        ctx.queue.submit([encoder.finish()]);
        Ok(())
    })
    .expect("the kernel runs without GPU errors");
}

fn read(ctx: &GpuContext, buffer: &wgpu::Buffer) -> Vec<f32> {
    ctx.read_buffer(buffer).expect("read back")
}

/// The values row-major, whatever the array's memory layout.
fn flat<D: ndarray::Dimension>(array: &ndarray::Array<f32, D>) -> Vec<f32> {
    array.iter().copied().collect()
}

fn matrix(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    Array2::from_shape_vec((rows, cols), random(rows * cols, seed)).unwrap()
}

/// Tile edges of both kernels (64 x 32 and 64 x 64, K in steps of 16) plus
/// one and minus one, and several whole tiles with remainders on every side.
const MATMUL_SHAPES: [(usize, usize, usize); 8] =
    [(1, 1, 1), (3, 17, 5), (17, 65, 3), (65, 3, 257), (33, 31, 29), (1, 257, 1), (129, 64, 33), (130, 47, 193)];

#[test]
fn matmul_matches_cpu_for_every_transpose_and_kernel() {
    let Some((ctx, each)) = gpu_each_matmul() else { return };
    for kernels in each {
        matmul_matches_cpu_for_every_transpose(ctx, kernels);
    }
}

fn matmul_matches_cpu_for_every_transpose(ctx: &GpuContext, kernels: &Kernels) {
    for (case, &(m, k, n)) in MATMUL_SHAPES.iter().enumerate() {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = if trans_a { matrix(k, m, case as u64) } else { matrix(m, k, case as u64) };
            let b = if trans_b { matrix(n, k, 100 + case as u64) } else { matrix(k, n, 100 + case as u64) };
            let want = cpu::matmul(a.view(), b.view(), trans_a, trans_b);
            let a_buf = upload(ctx, "a", &flat(&a));
            let b_buf = upload(ctx, "b", &flat(&b));
            let out = upload(ctx, "out", &vec![f32::NAN; m * n]);
            let (m32, k32, n32) = (m as u32, k as u32, n as u32);
            let params = MatmulParams::new(m32, k32, n32, trans_a, trans_b);
            let regions = (Region::new(&a_buf, m * k), Region::new(&b_buf, k * n), Region::new(&out, m * n));
            run(ctx, &[kernels.matmul("matmul", regions.0, regions.1, regions.2, params).unwrap()]);
            let kernel = kernels.matmul_kernel().name();
            let what = format!("{kernel} matmul M={m} K={k} N={n} trans_a={trans_a} trans_b={trans_b}");
            assert_close(&what, &read(ctx, &out), &flat(&want), MATMUL_ATOL, MATMUL_RTOL);
        }
    }
}

#[test]
fn matmul_epilogues_match_the_cpu_ops_they_fuse_for_every_kernel() {
    let Some((ctx, each)) = gpu_each_matmul() else { return };
    for kernels in each {
        matmul_epilogues_match_the_cpu_ops_they_fuse(ctx, kernels);
    }
}

fn matmul_epilogues_match_the_cpu_ops_they_fuse(ctx: &GpuContext, kernels: &Kernels) {
    let kernel = kernels.matmul_kernel().name();
    for &(m, k, n) in &[(1, 1, 1), (17, 65, 3), (65, 3, 257), (70, 33, 40)] {
        let (a, b) = (matrix(m, k, 30), matrix(k, n, 31));
        let (a_buf, b_buf) = (upload(ctx, "a", &flat(&a)), upload(ctx, "b", &flat(&b)));
        let bias = Array1::from(random(n, 32));
        let bias_buf = upload(ctx, "bias", &flat(&bias));
        // Outputs of a layer below, in (0, 1) and around 0, for the
        // derivative; signed for leaky relu (whose outputs are) and, four
        // times wider, for GELU (where they are its z, in its curved part).
        let below_output = matrix(m, n, 33).mapv(|v| v.abs());
        let below_signed = matrix(m, n, 33).mapv(|v| 4.0 * v);
        let (a_region, b_region) = (Region::new(&a_buf, m * k), Region::new(&b_buf, k * n));
        let params = MatmulParams::new(m as u32, k as u32, n as u32, false, false);
        for activation in ACTIVATIONS {
            let mut z = cpu::matmul(a.view(), b.view(), false, false);
            cpu::bias_add(&mut z, &bias);
            let mut want = z.clone();
            cpu::activation_forward(activation, NEGATIVE_SLOPE, &mut want);
            let out = upload(ctx, "out", &vec![f32::NAN; m * n]);
            // z is kept where training keeps it, for GELU.
            let pre = upload(ctx, "pre", &vec![f32::NAN; m * n]);
            let keep = activation.needs_pre_activation().then(|| Region::new(&pre, m * n));
            let bias_region = Region::new(&bias_buf, n);
            let epilogue = Epilogue::BiasActivation {
                bias: bias_region,
                activation,
                negative_slope: NEGATIVE_SLOPE,
                pre: keep,
                dropout: None,
            };
            run(
                ctx,
                &[kernels
                    .matmul_with("forward", a_region, b_region, Region::new(&out, m * n), params, epilogue)
                    .unwrap()],
            );
            let what = format!("{kernel} matmul + bias + {activation:?}, {m}x{k}x{n}");
            assert_close(&what, &read(ctx, &out), &flat(&want), MATMUL_ATOL, MATMUL_RTOL);
            if keep.is_some() {
                assert_close(&format!("{what}: kept z"), &read(ctx, &pre), &flat(&z), MATMUL_ATOL, MATMUL_RTOL);
            }

            let below = if matches!(activation, Activation::LeakyRelu | Activation::Gelu) {
                &below_signed
            } else {
                &below_output
            };
            let below_buf = upload(ctx, "below", &flat(below));
            let mut want = cpu::matmul(a.view(), b.view(), false, false);
            cpu::activation_backward(activation, NEGATIVE_SLOPE, &mut want, below.view());
            let out = upload(ctx, "out", &vec![f32::NAN; m * n]);
            let given = Region::new(&below_buf, m * n);
            let epilogue = Epilogue::Derivative { activation, negative_slope: NEGATIVE_SLOPE, given, dropout: None };
            run(
                ctx,
                &[kernels
                    .matmul_with("backward", a_region, b_region, Region::new(&out, m * n), params, epilogue)
                    .unwrap()],
            );
            let what = format!("{kernel} matmul then {activation:?} backward, {m}x{k}x{n}");
            assert_close(&what, &read(ctx, &out), &flat(&want), MATMUL_ATOL, MATMUL_RTOL);
        }
    }
}

#[test]
fn activation_backward_matches_cpu() {
    // The forward activations run only in the matmul epilogue (tested above);
    // the last layer's backward has a kernel of its own.
    let Some((ctx, grids)) = gpu_each_grid() else { return };
    for (grid, kernels) in grids {
        for activation in ACTIVATIONS.into_iter().filter(|&a| a != Activation::Identity) {
            for len in [1, 3, 255, 256, 257, 1000] {
                // Wide inputs reach the flat tails where exp overflows, and
                // relu's zeros; GELU's derivative is taken at z itself.
                let z = matrix(1, len, 3).mapv(|v| v * 120.0);
                let mut act = z.clone();
                cpu::activation_forward(activation, NEGATIVE_SLOPE, &mut act);
                let given = if activation.needs_pre_activation() { z } else { act };
                let mut grad = matrix(1, len, 5);
                let grad_buf = upload(ctx, "grad", &flat(&grad));
                let given_buf = upload(ctx, "given", &flat(&given));
                cpu::activation_backward(activation, NEGATIVE_SLOPE, &mut grad, given.view());
                let (grad_region, given_region) = (Region::new(&grad_buf, len), Region::new(&given_buf, len));
                let backward = kernels
                    .activation_backward("backward", activation, NEGATIVE_SLOPE, grad_region, given_region)
                    .unwrap();
                run(ctx, &[backward.expect("not the identity")]);
                let what = format!("{grid}: {activation:?} backward, len {len}");
                assert_close(&what, &read(ctx, &grad_buf), &flat(&grad), ELEMENTWISE_ATOL, ELEMENTWISE_RTOL);
            }
        }
        let one = upload(ctx, "x", &[1.0]);
        let identity = kernels.activation_backward(
            "identity",
            Activation::Identity,
            NEGATIVE_SLOPE,
            Region::new(&one, 1),
            Region::new(&one, 1),
        );
        assert!(identity.unwrap().is_none(), "the identity's backward is no dispatch");
    }
}

#[test]
fn mse_grad_and_loss_partials_match_cpu() {
    let Some((ctx, kernels)) = gpu() else { return };
    for len in [1, 3, 255, 256, 257, 4097] {
        let pred = matrix(1, len, 6);
        let expected = matrix(1, len, 7);
        let (want_grad, want_sum) = cpu::mse_grad(pred.view(), expected.view());
        let partial_count = kernels.partial_count(len as u32).unwrap() as usize;
        assert_eq!(partial_count, len.div_ceil(WORKGROUP_SIZE as usize));
        let pred_buf = upload(ctx, "pred", &flat(&pred));
        let expected_buf = upload(ctx, "expected", &flat(&expected));
        let grad = upload(ctx, "grad", &vec![f32::NAN; len]);
        let partials = upload(ctx, "partials", &vec![f32::NAN; partial_count]);
        let total = upload(ctx, "total", &[0.5]);
        let partials_region = Region::new(&partials, partial_count);
        let (pred_region, expected_region) = (Region::new(&pred_buf, len), Region::new(&expected_buf, len));
        let dispatches = [
            kernels
                .mse_grad("mse_grad", pred_region, expected_region, Region::new(&grad, len), partials_region)
                .unwrap(),
            // The trainer totals the partials this way, onto what is already there.
            kernels
                .column_sum("loss_total", partials_region, Region::new(&total, 1), partial_count as u32, true)
                .unwrap(),
        ];
        run(ctx, &dispatches);
        let what = format!("mse_grad len {len}");
        assert_close(&what, &read(ctx, &grad), &flat(&want_grad), ELEMENTWISE_ATOL, ELEMENTWISE_RTOL);
        let partial_sum: f32 = read(ctx, &partials).iter().sum();
        assert_close(&format!("{what} partials"), &[partial_sum], &[want_sum], SUM_ATOL, SUM_RTOL);
        assert_close(&format!("{what} accumulated total"), &read(ctx, &total), &[0.5 + want_sum], SUM_ATOL, SUM_RTOL);
    }
}

#[test]
fn bce_grad_and_loss_partials_match_cpu() {
    let Some((ctx, kernels)) = gpu() else { return };
    for len in [1, 3, 255, 256, 257, 4097] {
        // Logits up to ±40 reach where exp(-z) overflows and sigmoid is 0 or
        // 1 to f32; targets in [0, 1], some exactly 0 or 1.
        let logits = matrix(1, len, 40).mapv(|v| v * 40.0);
        let expected = matrix(1, len, 41).mapv(|v| (v * 1.5).clamp(-0.5, 0.5) + 0.5);
        let (want_grad, want_sum) = cpu::bce_grad(logits.view(), expected.view());
        let partial_count = kernels.partial_count(len as u32).unwrap() as usize;
        let logits_buf = upload(ctx, "logits", &flat(&logits));
        let expected_buf = upload(ctx, "expected", &flat(&expected));
        let grad = upload(ctx, "grad", &vec![f32::NAN; len]);
        let partials = upload(ctx, "partials", &vec![f32::NAN; partial_count]);
        let (logits_region, expected_region) = (Region::new(&logits_buf, len), Region::new(&expected_buf, len));
        let dispatch = kernels
            .bce_grad(
                "bce_grad",
                logits_region,
                expected_region,
                Region::new(&grad, len),
                Region::new(&partials, partial_count),
            )
            .unwrap();
        run(ctx, &[dispatch]);
        let what = format!("bce_grad len {len}");
        assert_close(&what, &read(ctx, &grad), &flat(&want_grad), ELEMENTWISE_ATOL, ELEMENTWISE_RTOL);
        let partial_sum: f32 = read(ctx, &partials).iter().sum();
        assert_close(&format!("{what} loss sum"), &[partial_sum], &[want_sum], SUM_ATOL, SUM_RTOL);
    }
}

/// One-hot targets (rows, classes) with labels spread over the classes.
fn one_hot(rows: usize, classes: usize, seed: u64) -> Array2<f32> {
    let labels: Vec<usize> =
        random(rows, seed).iter().map(|v| ((v + 1.0) * 0.5 * classes as f32) as usize % classes).collect();
    wgpu_mlp::Dataset::classification(Array2::zeros((rows, 1)), &labels, classes).unwrap().y
}

#[test]
fn softmax_cross_entropy_matches_cpu() {
    let Some((ctx, kernels)) = gpu() else { return };
    for (rows, cols) in [(1, 1), (1, 3), (3, 10), (257, 3), (300, 10)] {
        // Logits up to ±40 would overflow exp without the max subtraction.
        let logits = matrix(rows, cols, 8).mapv(|v| v * 40.0);
        let expected = one_hot(rows, cols, 9);
        let (want_grad, want_sum) = cpu::softmax_cross_entropy(logits.view(), expected.view());
        let partial_count = kernels.partial_count(rows as u32).unwrap() as usize;
        let logits_buf = upload(ctx, "logits", &flat(&logits));
        let expected_buf = upload(ctx, "expected", &flat(&expected));
        let grad = upload(ctx, "grad", &vec![f32::NAN; rows * cols]);
        let partials = upload(ctx, "partials", &vec![f32::NAN; partial_count]);
        let len = rows * cols;
        let dispatch = kernels
            .softmax_cross_entropy(
                "softmax_cross_entropy",
                Region::new(&logits_buf, len),
                Region::new(&expected_buf, len),
                Region::new(&grad, len),
                Region::new(&partials, partial_count),
                rows as u32,
            )
            .unwrap();
        run(ctx, &[dispatch]);
        let what = format!("softmax_cross_entropy {rows}x{cols}");
        assert_close(&what, &read(ctx, &grad), &flat(&want_grad), ELEMENTWISE_ATOL, ELEMENTWISE_RTOL);
        let partial_sum: f32 = read(ctx, &partials).iter().sum();
        assert_close(&format!("{what} loss sum"), &[partial_sum], &[want_sum], SUM_ATOL, SUM_RTOL);
    }
}

#[test]
fn count_correct_matches_cpu() {
    let Some((ctx, kernels)) = gpu() else { return };
    for (rows, cols) in [(1, 2), (5, 3), (257, 10), (600, 2)] {
        let pred = matrix(rows, cols, 10);
        let expected = one_hot(rows, cols, 11);
        let want = cpu::count_correct(pred.view(), expected.view());
        let partial_count = kernels.partial_count(rows as u32).unwrap() as usize;
        let pred_buf = upload(ctx, "pred", &flat(&pred));
        let expected_buf = upload(ctx, "expected", &flat(&expected));
        let partials = upload(ctx, "partials", &vec![f32::NAN; partial_count]);
        let (len, out) = (rows * cols, Region::new(&partials, partial_count));
        let (pred_region, expected_region) = (Region::new(&pred_buf, len), Region::new(&expected_buf, len));
        run(ctx, &[kernels.count_correct("count_correct", pred_region, expected_region, out, rows as u32).unwrap()]);
        let got: f32 = read(ctx, &partials).iter().sum();
        assert_eq!(got, want as f32, "count_correct {rows}x{cols}");
        assert!(want > 0 && want < rows || rows < 10, "the case should have hits and misses: {want} of {rows}");
    }
}

#[test]
fn gather_rows_matches_cpu_across_chunks() {
    let Some((ctx, grids)) = gpu_each_grid() else { return };
    for (grid, kernels) in grids {
        // Narrow rows (an invocation per element) and wide ones (a workgroup per
        // row from 128 columns; 300 is more than a workgroup's 256 invocations),
        // and more rows than a CPU adapter's capped grid has workgroups.
        for (source_rows, width, rows_per_chunk, rows) in
            [(1, 1, 1, 1), (10, 3, 4, 7), (300, 17, 101, 300), (9, 5, 3, 20), (40, 300, 15, 33), (20, 128, 7, 45)]
        {
            let source = matrix(source_rows, width, 12);
            let index: Vec<u32> = random(rows, 13)
                .iter()
                .map(|v| ((v + 1.0) * 0.5 * source_rows as f32) as u32 % source_rows as u32)
                .collect();
            let want = cpu::gather_rows(source.view(), &index);
            let chunk_buffers: Vec<wgpu::Buffer> =
                flat(&source).chunks(rows_per_chunk * width).map(|chunk| upload(ctx, "chunk", chunk)).collect();
            let chunks: Vec<Region> = chunk_buffers.iter().map(|b| Region::new(b, (b.size() / 4) as usize)).collect();
            let index_buf = ctx.upload("index", &index, storage(), "test data").unwrap();
            let out = upload(ctx, "out", &vec![f32::NAN; rows * width]);
            let (index_region, out_region) = (Region::new(&index_buf, rows), Region::new(&out, rows * width));
            run(
                ctx,
                &[kernels
                    .gather_rows("gather_rows", index_region, out_region, &chunks, rows_per_chunk as u32)
                    .unwrap()],
            );
            let what = format!("{grid}: gather_rows of {rows} from {source_rows}x{width} in {} chunks", chunks.len());
            assert_close(&what, &read(ctx, &out), &flat(&want), 0.0, 0.0);
        }
    }
}

#[test]
fn column_sum_matches_cpu() {
    let Some((ctx, kernels)) = gpu() else { return };
    for (rows, cols) in [(1, 1), (3, 5), (17, 300), (257, 3), (1000, 1)] {
        let input = matrix(rows, cols, 8);
        let want = cpu::column_sum(input.view());
        let input_buf = upload(ctx, "input", &flat(&input));
        let out = upload(ctx, "out", &vec![f32::NAN; cols]);
        let (input_region, out_region) = (Region::new(&input_buf, rows * cols), Region::new(&out, cols));
        run(ctx, &[kernels.column_sum("column_sum", input_region, out_region, rows as u32, false).unwrap()]);
        assert_close(&format!("column_sum {rows}x{cols}"), &read(ctx, &out), &flat(&want), SUM_ATOL, SUM_RTOL);
    }
}

#[test]
fn sgd_update_matches_cpu_with_strided_and_two_dimensional_grids() {
    let Some((ctx, adapters)) = gpu() else { return };
    // A workgroup per 256 elements, whatever the adapter: the widest length
    // then needs more than 65535 workgroups, so the grid goes 2-D. The
    // adapter's own settings cap the grid on CPU adapters, so there each
    // invocation strides over many elements.
    let settings = KernelSettings { strided_groups: None, ..KernelSettings::for_adapter(&ctx.info) };
    let one_per_256 = Kernels::with_settings(ctx, settings).expect("the shaders compile");
    let wide = 65535 * WORKGROUP_SIZE as usize + 300;
    for (kernels, name) in [(adapters, "adapter's grid"), (&one_per_256, "a workgroup per 256")] {
        for len in [1, 3, 257, 1000, wide] {
            // A cheap pattern: the wide case is 16.7 M values.
            let mut weights = Array1::from_shape_fn(len, |i| (i % 97) as f32 * 0.01 - 0.5);
            let grads = Array1::from_shape_fn(len, |i| (i % 89) as f32 * 0.02 - 0.9);
            let weights_buf = upload(ctx, "weights", &flat(&weights));
            let grads_buf = upload(ctx, "grads", &flat(&grads));
            cpu::sgd_update(&mut weights, &grads, 0.3, 0.01);
            let rate_buf = upload(ctx, "control", &[0.3, 1.0, NO_CLIP_VALUE, 0.0]);
            let (w, g, rate) = (
                Region::new(&weights_buf, len),
                Region::new(&grads_buf, len),
                Region::new(&rate_buf, STEP_CONTROL_LEN),
            );
            let dispatch = kernels.sgd_update("sgd_update", w, g, rate, 0.01).unwrap();
            if len == wide && std::ptr::eq(kernels, &one_per_256) {
                assert!(dispatch.workgroup_count() > 65535, "the wide case must use a 2-D grid");
            }
            run(ctx, &[dispatch]);
            let what = format!("sgd_update len {len}, {name}");
            assert_close(&what, &read(ctx, &weights_buf), &flat(&weights), ELEMENTWISE_ATOL, ELEMENTWISE_RTOL);
        }
    }
}

#[test]
fn grad_norm_clip_finds_the_cpus_factor_on_every_length() {
    let Some((ctx, kernels)) = gpu() else { return };
    // One element, a part of one workgroup, and more than the 64 workgroups cover at once.
    for len in [1, 300, 64 * 256 * 3 + 17] {
        let values = random(len, 31);
        let norm = values.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        let grads = upload(ctx, "grads", &values);
        let partials = upload(ctx, "partials", &[0.0; GRAD_NORM_GROUPS]);
        for max_norm in [norm as f32 / 3.0, norm as f32 * 2.0] {
            let control = upload(ctx, "control", &[0.1, 1.0, NO_CLIP_VALUE, 0.0]);
            let regions = (
                Region::new(&grads, len),
                Region::new(&partials, GRAD_NORM_GROUPS),
                Region::new(&control, STEP_CONTROL_LEN),
            );
            run(ctx, &kernels.grad_norm_clip("clip", regions.0, regions.1, regions.2, max_norm).unwrap());
            let got = read(ctx, &control);
            let want = (f64::from(max_norm) / (norm + 1e-6)).min(1.0) as f32;
            assert_close(&format!("clip factor, len {len}, max norm {max_norm}"), &got[1..2], &[want], 0.0, 1e-5);
            assert_eq!((got[0], got[2], got[3]), (0.1, NO_CLIP_VALUE, 0.0), "only the factor is written");
        }
    }
}

#[test]
fn momentum_update_matches_cpu_over_steps() {
    let Some((ctx, grids)) = gpu_each_grid() else { return };
    for (grid, kernels) in grids {
        for len in [1, 257, 1000] {
            let mut weights = Array1::from(random(len, 14));
            let mut velocity = Array1::zeros(len);
            let weights_buf = upload(ctx, "weights", &flat(&weights));
            let velocity_buf = upload(ctx, "velocity", &vec![0.0; len]);
            let settings = MomentumParams { len: len as u32, momentum: 0.9, weight_decay: 0.01, _pad: 0 };
            let rate_buf = upload(ctx, "control", &[0.1, 1.0, NO_CLIP_VALUE, 0.0]);
            for step in 0..3 {
                let grads = Array1::from(random(len, 15 + step));
                let grads_buf = upload(ctx, "grads", &flat(&grads));
                cpu::momentum_update(&mut weights, &grads, &mut velocity, 0.1, 0.9, 0.01);
                let (w, g, v) =
                    (Region::new(&weights_buf, len), Region::new(&grads_buf, len), Region::new(&velocity_buf, len));
                let rate = Region::new(&rate_buf, STEP_CONTROL_LEN);
                run(ctx, &[kernels.momentum_update("momentum_update", w, g, v, rate, settings).unwrap()]);
            }
            let what = format!("{grid}: momentum_update len {len} after 3 steps");
            assert_close(
                &format!("{what}: weights"),
                &read(ctx, &weights_buf),
                &flat(&weights),
                ELEMENTWISE_ATOL,
                ELEMENTWISE_RTOL,
            );
            assert_close(
                &format!("{what}: velocity"),
                &read(ctx, &velocity_buf),
                &flat(&velocity),
                ELEMENTWISE_ATOL,
                ELEMENTWISE_RTOL,
            );
        }
    }
}

#[test]
fn adam_update_matches_cpu_over_steps() {
    let Some((ctx, grids)) = gpu_each_grid() else { return };
    for (grid, kernels) in grids {
        let adam = AdamSettings { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.001 };
        for len in [1, 257, 1000] {
            let mut weights = Array1::from(random(len, 16));
            let (mut m, mut v) = (Array1::zeros(len), Array1::zeros(len));
            let weights_buf = upload(ctx, "weights", &flat(&weights));
            let m_buf = upload(ctx, "m", &vec![0.0; len]);
            let v_buf = upload(ctx, "v", &vec![0.0; len]);
            let state = upload(ctx, "state", &[0.0; ADAM_STATE_LEN]);
            let settings = AdamParams {
                len: len as u32,
                beta1: adam.beta1,
                beta2: adam.beta2,
                eps: adam.eps,
                weight_decay: adam.weight_decay,
                _pad: [0; 3],
            };
            let rate_buf = upload(ctx, "control", &[adam.lr, 1.0, NO_CLIP_VALUE, 0.0]);
            for step in 1..=4 {
                let grads = Array1::from(random(len, 20 + step as u64));
                let grads_buf = upload(ctx, "grads", &flat(&grads));
                cpu::adam_update(&mut weights, &grads, &mut m, &mut v, adam, step);
                let regions =
                    (Region::new(&state, ADAM_STATE_LEN), Region::new(&weights_buf, len), Region::new(&grads_buf, len));
                let moments = (Region::new(&m_buf, len), Region::new(&v_buf, len));
                let dispatches = kernels
                    .adam_update(
                        "adam",
                        regions.0,
                        regions.1,
                        regions.2,
                        moments.0,
                        moments.1,
                        Region::new(&rate_buf, STEP_CONTROL_LEN),
                        settings,
                    )
                    .unwrap();
                run(ctx, &dispatches);
            }
            let what = format!("{grid}: adam_update len {len} after 4 steps");
            assert_close(&format!("{what}: weights"), &read(ctx, &weights_buf), &flat(&weights), ADAM_ATOL, ADAM_RTOL);
            assert_close(&format!("{what}: m"), &read(ctx, &m_buf), &flat(&m), ADAM_ATOL, ADAM_RTOL);
            assert_close(&format!("{what}: v"), &read(ctx, &v_buf), &flat(&v), ADAM_ATOL, ADAM_RTOL);
            let step_count = bytemuck::cast_slice::<f32, u32>(&read(ctx, &state))[0];
            assert_eq!(step_count, 4, "adam_tick counts the steps on the GPU");
        }
    }
}
