//! Each WGSL kernel against its CPU twin in src/cpu.rs, on awkward shapes (1,
//! primes, one past the workgroup size) so partial workgroups are exercised.

mod common;

use common::{assert_close, gpu, random};
use ndarray::{Array1, Array2};
use wgpu_mlp::cpu;
use wgpu_mlp::gpu::{Dispatch, GpuContext, MatmulParams, Region, WORKGROUP_SIZE};

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

fn storage() -> wgpu::BufferUsages {
    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST
}

fn upload(ctx: &GpuContext, label: &str, values: &[f32]) -> wgpu::Buffer {
    ctx.upload(label, values, storage(), "test data")
        .expect("test buffers fit")
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

const MATMUL_SHAPES: [(usize, usize, usize); 7] = [
    (1, 1, 1),
    (3, 17, 5),
    (17, 65, 3),
    (65, 3, 257),
    (33, 31, 29),
    (1, 257, 1),
    (129, 64, 33),
];

#[test]
fn matmul_matches_cpu_for_every_transpose() {
    let Some((ctx, kernels)) = gpu() else { return };
    for (case, &(m, k, n)) in MATMUL_SHAPES.iter().enumerate() {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let a_shape = if trans_a { (k, m) } else { (m, k) };
            let b_shape = if trans_b { (n, k) } else { (k, n) };
            let a = Array2::from_shape_vec(a_shape, random(m * k, case as u64)).unwrap();
            let b = Array2::from_shape_vec(b_shape, random(k * n, 100 + case as u64)).unwrap();
            let want = cpu::matmul(a.view(), b.view(), trans_a, trans_b);

            let a_buf = upload(ctx, "a", a.as_slice().unwrap());
            let b_buf = upload(ctx, "b", b.as_slice().unwrap());
            let out = upload(ctx, "out", &vec![f32::NAN; m * n]);
            let params = MatmulParams {
                m: m as u32,
                k: k as u32,
                n: n as u32,
                trans_a: trans_a.into(),
                trans_b: trans_b.into(),
                _pad: [0; 3],
            };
            let dispatch = kernels
                .matmul(
                    "matmul",
                    Region::new(&a_buf, m * k),
                    Region::new(&b_buf, k * n),
                    Region::new(&out, m * n),
                    params,
                )
                .unwrap();
            run(ctx, &[dispatch]);
            let what = format!("matmul M={m} K={k} N={n} trans_a={trans_a} trans_b={trans_b}");
            let want: Vec<f32> = want.iter().copied().collect(); // row-major, whatever the layout
            assert_close(&what, &read(ctx, &out), &want, MATMUL_ATOL, MATMUL_RTOL);
        }
    }
}

#[test]
fn bias_add_matches_cpu() {
    let Some((ctx, kernels)) = gpu() else { return };
    for (rows, cols) in [(1, 1), (3, 17), (65, 257), (300, 3)] {
        let mut want = Array2::from_shape_vec((rows, cols), random(rows * cols, 1)).unwrap();
        let bias = Array1::from(random(cols, 2));
        let out = upload(ctx, "out", want.as_slice().unwrap());
        let bias_buf = upload(ctx, "bias", bias.as_slice().unwrap());
        cpu::bias_add(&mut want, &bias);
        let dispatch = kernels
            .bias_add(
                "bias_add",
                Region::new(&out, rows * cols),
                Region::new(&bias_buf, cols),
                rows as u32,
                cols as u32,
            )
            .unwrap();
        run(ctx, &[dispatch]);
        let what = format!("bias_add {rows}x{cols}");
        assert_close(
            &what,
            &read(ctx, &out),
            want.as_slice().unwrap(),
            ELEMENTWISE_ATOL,
            ELEMENTWISE_RTOL,
        );
    }
}

#[test]
fn sigmoid_forward_and_backward_match_cpu() {
    let Some((ctx, kernels)) = gpu() else { return };
    for len in [1, 3, 255, 256, 257, 1000] {
        // Wide inputs reach the flat tails where exp overflows.
        let z: Vec<f32> = random(len, 3).iter().map(|v| v * 120.0).collect();
        let mut act = Array2::from_shape_vec((1, len), z.clone()).unwrap();
        cpu::sigmoid_forward(&mut act);
        let values = upload(ctx, "values", &z);
        run(
            ctx,
            &[kernels
                .sigmoid_forward("sigmoid_forward", Region::new(&values, len))
                .unwrap()],
        );
        let what = format!("sigmoid_forward len {len}");
        assert_close(
            &what,
            &read(ctx, &values),
            act.as_slice().unwrap(),
            ELEMENTWISE_ATOL,
            ELEMENTWISE_RTOL,
        );

        let act: Array2<f32> = Array2::from_shape_vec((1, len), random(len, 4))
            .unwrap()
            .mapv(|v| v.abs());
        let mut grad = Array2::from_shape_vec((1, len), random(len, 5)).unwrap();
        let grad_buf = upload(ctx, "grad", grad.as_slice().unwrap());
        let act_buf = upload(ctx, "act", act.as_slice().unwrap());
        cpu::sigmoid_backward(&mut grad, act.view());
        let dispatch = kernels
            .sigmoid_backward(
                "sigmoid_backward",
                Region::new(&grad_buf, len),
                Region::new(&act_buf, len),
            )
            .unwrap();
        run(ctx, &[dispatch]);
        let what = format!("sigmoid_backward len {len}");
        assert_close(
            &what,
            &read(ctx, &grad_buf),
            grad.as_slice().unwrap(),
            ELEMENTWISE_ATOL,
            ELEMENTWISE_RTOL,
        );
    }
}

#[test]
fn mse_grad_and_loss_partials_match_cpu() {
    let Some((ctx, kernels)) = gpu() else { return };
    for len in [1, 3, 255, 256, 257, 4097] {
        let pred = Array2::from_shape_vec((1, len), random(len, 6)).unwrap();
        let expected = Array2::from_shape_vec((1, len), random(len, 7)).unwrap();
        let (want_grad, want_sum) = cpu::mse_grad(pred.view(), expected.view());
        let partial_count = kernels.mse_partials(len as u32).unwrap() as usize;
        assert_eq!(partial_count, len.div_ceil(WORKGROUP_SIZE as usize));
        let pred_buf = upload(ctx, "pred", pred.as_slice().unwrap());
        let expected_buf = upload(ctx, "expected", expected.as_slice().unwrap());
        let grad = upload(ctx, "grad", &vec![f32::NAN; len]);
        let partials = upload(ctx, "partials", &vec![f32::NAN; partial_count]);
        let total = upload(ctx, "total", &[0.5]);
        let partials_region = Region::new(&partials, partial_count);
        let dispatches = [
            kernels
                .mse_grad(
                    "mse_grad",
                    Region::new(&pred_buf, len),
                    Region::new(&expected_buf, len),
                    Region::new(&grad, len),
                    partials_region,
                )
                .unwrap(),
            // The trainer totals the partials this way, onto what is already there.
            kernels
                .column_sum(
                    "loss_total",
                    partials_region,
                    Region::new(&total, 1),
                    partial_count as u32,
                    true,
                )
                .unwrap(),
        ];
        run(ctx, &dispatches);
        let what = format!("mse_grad len {len}");
        assert_close(
            &what,
            &read(ctx, &grad),
            want_grad.as_slice().unwrap(),
            ELEMENTWISE_ATOL,
            ELEMENTWISE_RTOL,
        );
        let partial_sum: f32 = read(ctx, &partials).iter().sum();
        assert_close(
            &format!("{what} partials"),
            &[partial_sum],
            &[want_sum],
            SUM_ATOL,
            SUM_RTOL,
        );
        assert_close(
            &format!("{what} accumulated total"),
            &read(ctx, &total),
            &[0.5 + want_sum],
            SUM_ATOL,
            SUM_RTOL,
        );
    }
}

#[test]
fn column_sum_matches_cpu() {
    let Some((ctx, kernels)) = gpu() else { return };
    for (rows, cols) in [(1, 1), (3, 5), (17, 300), (257, 3), (1000, 1)] {
        let input = Array2::from_shape_vec((rows, cols), random(rows * cols, 8)).unwrap();
        let want = cpu::column_sum(input.view());
        let input_buf = upload(ctx, "input", input.as_slice().unwrap());
        let out = upload(ctx, "out", &vec![f32::NAN; cols]);
        let dispatch = kernels
            .column_sum(
                "column_sum",
                Region::new(&input_buf, rows * cols),
                Region::new(&out, cols),
                rows as u32,
                false,
            )
            .unwrap();
        run(ctx, &[dispatch]);
        let what = format!("column_sum {rows}x{cols}");
        assert_close(
            &what,
            &read(ctx, &out),
            want.as_slice().unwrap(),
            SUM_ATOL,
            SUM_RTOL,
        );
    }
}

#[test]
fn sgd_update_matches_cpu_including_a_two_dimensional_grid() {
    let Some((ctx, kernels)) = gpu() else { return };
    // The last length needs more than 65535 workgroups, so the grid goes 2-D.
    let wide = 65535 * WORKGROUP_SIZE as usize + 300;
    for len in [1, 3, 257, 1000, wide] {
        let mut weights = Array1::from(random(len, 9));
        let grads = Array1::from(random(len, 10));
        let weights_buf = upload(ctx, "weights", weights.as_slice().unwrap());
        let grads_buf = upload(ctx, "grads", grads.as_slice().unwrap());
        cpu::sgd_update(&mut weights, &grads, 0.3);
        let dispatch = kernels
            .sgd_update(
                "sgd_update",
                Region::new(&weights_buf, len),
                Region::new(&grads_buf, len),
                0.3,
            )
            .unwrap();
        if len == wide {
            assert!(
                dispatch.workgroup_count() > 65535,
                "the wide case must use a 2-D grid"
            );
        }
        run(ctx, &[dispatch]);
        let what = format!("sgd_update len {len}");
        assert_close(
            &what,
            &read(ctx, &weights_buf),
            weights.as_slice().unwrap(),
            ELEMENTWISE_ATOL,
            ELEMENTWISE_RTOL,
        );
    }
}
