//! The matmul tuning cache (src/gpu/tuning.rs): written, read back, dropped
//! when the driver changes, a corrupt file ignored and rewritten; and tuned
//! kernels on the GPU against the CPU. Every file lives in a scratch folder,
//! never the user's cache.

mod common;

use std::path::PathBuf;

use common::{assert_close, gpu, random};
use ndarray::Array2;
use wgpu_mlp::cpu;
use wgpu_mlp::gpu::{
    shape_class, AdapterKey, KernelSettings, Kernels, MatmulKernel, MatmulParams, MatmulTuning, Region, TUNED_MIN_MACS,
};

/// As tests/kernels.rs: K products summed in another order than the CPU's.
const MATMUL_ATOL: f32 = 1e-4;
const MATMUL_RTOL: f32 = 1e-4;

/// A cache file path in a fresh folder of this test's own.
fn cache_file(test: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(format!("wgpu-mlp-tuning-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    folder.join("wgpu-mlp").join("matmul-tuning.json")
}

fn key(driver_info: &str) -> AdapterKey {
    AdapterKey {
        name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
        backend: "Vulkan".into(),
        driver: "llvmpipe".into(),
        driver_info: driver_info.into(),
    }
}

const CLASS: &str = "m256.k1024.n256.ta0.tb0";

#[test]
fn a_choice_is_written_and_read_back() {
    let path = cache_file("round-trip");
    let tuning = MatmulTuning::load(Some(path.clone()), key("Mesa 25.0.7"));
    assert_eq!(tuning.choice(CLASS), None);
    tuning.record(CLASS, MatmulKernel::Workgroup).unwrap();
    assert!(path.is_file(), "the cache file is written, folders made");
    let again = MatmulTuning::load(Some(path.clone()), key("Mesa 25.0.7"));
    assert_eq!(again.choice(CLASS), Some(MatmulKernel::Workgroup));
    // Another class added keeps the first.
    again.record("m1.k1.n1.ta0.tb0", MatmulKernel::Registers).unwrap();
    let third = MatmulTuning::load(Some(path), key("Mesa 25.0.7"));
    assert_eq!(third.choice(CLASS), Some(MatmulKernel::Workgroup));
    assert_eq!(third.choice("m1.k1.n1.ta0.tb0"), Some(MatmulKernel::Registers));
}

#[test]
fn a_new_driver_invalidates_the_choices_and_other_adapters_are_kept() {
    let path = cache_file("driver");
    MatmulTuning::load(Some(path.clone()), key("Mesa 22.3.6")).record(CLASS, MatmulKernel::Workgroup).unwrap();
    let other = AdapterKey { name: "NVIDIA H200".into(), ..key("550.54") };
    MatmulTuning::load(Some(path.clone()), other.clone()).record(CLASS, MatmulKernel::Workgroup).unwrap();

    let upgraded = MatmulTuning::load(Some(path.clone()), key("Mesa 25.0.7"));
    assert_eq!(upgraded.choice(CLASS), None, "choices timed on another driver do not hold");
    upgraded.record(CLASS, MatmulKernel::Registers).unwrap();
    assert_eq!(MatmulTuning::load(Some(path.clone()), key("Mesa 22.3.6")).choice(CLASS), None, "the old entry is gone");
    assert_eq!(MatmulTuning::load(Some(path.clone()), key("Mesa 25.0.7")).choice(CLASS), Some(MatmulKernel::Registers));
    assert_eq!(MatmulTuning::load(Some(path), other).choice(CLASS), Some(MatmulKernel::Workgroup));
}

#[test]
fn a_corrupt_file_is_ignored_and_rewritten() {
    let path = cache_file("corrupt");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let corrupt: [&[u8]; 5] = [
        b"not json",
        b"{\"version\": 1, \"adapters\": 3}",
        b"{\"version\": 99, \"adapters\": []}",
        b"{\"version\": 1, \"adapters\": [{\"adapter\": 1, \"choices\": {\"x\": \"none\"}}]}",
        &[0xff, 0xfe, 0x00],
    ];
    for bytes in corrupt {
        std::fs::write(&path, bytes).unwrap();
        let tuning = MatmulTuning::load(Some(path.clone()), key("Mesa 25.0.7"));
        assert_eq!(tuning.choice(CLASS), None);
        tuning.record(CLASS, MatmulKernel::Registers).unwrap();
        let again = MatmulTuning::load(Some(path.clone()), key("Mesa 25.0.7"));
        assert_eq!(
            again.choice(CLASS),
            Some(MatmulKernel::Registers),
            "rewritten after {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    // A choice naming no kernel is skipped, the others kept.
    let entry = format!(
        "{{\"version\": 1, \"adapters\": [{{\"adapter\": {{\"name\": \"llvmpipe (LLVM 15.0.6, 256 bits)\", \"backend\": \"Vulkan\", \"driver\": \"llvmpipe\", \"driver_info\": \"Mesa 25.0.7\"}}, \"choices\": {{\"{CLASS}\": \"registers\", \"m1.k1.n1.ta0.tb0\": \"tensor-cores\"}}}}]}}"
    );
    std::fs::write(&path, entry).unwrap();
    let tuning = MatmulTuning::load(Some(path), key("Mesa 25.0.7"));
    assert_eq!(tuning.choice(CLASS), Some(MatmulKernel::Registers));
    assert_eq!(tuning.choice("m1.k1.n1.ta0.tb0"), None);
}

#[test]
fn shape_classes_round_each_size_up_to_a_power_of_4() {
    let class = |m, k, n, trans_a, trans_b| shape_class(&MatmulParams::new(m, k, n, trans_a, trans_b));
    assert_eq!(class(256, 784, 256, false, false), "m256.k1024.n256.ta0.tb0");
    assert_eq!(class(784, 256, 10, true, false), "m1024.k256.n16.ta1.tb0");
    assert_eq!(class(1, 5, 65, false, true), "m1.k16.n256.ta0.tb1");
    assert_eq!(class(200, 250, 256, false, false), class(256, 193, 129, false, false));
}

fn matrix(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    Array2::from_shape_vec((rows, cols), random(rows * cols, seed)).unwrap()
}

#[test]
fn tuned_kernels_match_the_cpu_on_awkward_shapes_and_record_each_class() {
    let Some((ctx, _)) = gpu() else { return };
    let path = cache_file("gpu");
    let tuning = MatmulTuning::load(Some(path.clone()), AdapterKey::of(&ctx.info));
    let kernels = Kernels::tuned(ctx, KernelSettings::for_adapter(&ctx.info), tuning).unwrap();
    let storage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let shapes =
        [(1, 1, 1, false, false), (33, 17, 65, true, false), (130, 47, 193, false, true), (65, 300, 3, true, true)];
    for (case, &(m, k, n, trans_a, trans_b)) in shapes.iter().enumerate() {
        let a = if trans_a { matrix(k, m, case as u64) } else { matrix(m, k, case as u64) };
        let b = if trans_b { matrix(n, k, 50 + case as u64) } else { matrix(k, n, 50 + case as u64) };
        let want = cpu::matmul(a.view(), b.view(), trans_a, trans_b);
        let flat = |x: &Array2<f32>| x.iter().copied().collect::<Vec<f32>>();
        let a_buf = ctx.upload("a", &flat(&a), storage, "test data").unwrap();
        let b_buf = ctx.upload("b", &flat(&b), storage, "test data").unwrap();
        let out = ctx.upload("out", &vec![f32::NAN; m * n], storage, "test data").unwrap();
        let params = MatmulParams::new(m as u32, k as u32, n as u32, trans_a, trans_b);
        let regions = (Region::new(&a_buf, m * k), Region::new(&b_buf, k * n), Region::new(&out, m * n));
        let dispatch = kernels.matmul("tuned", regions.0, regions.1, regions.2, params).unwrap();
        ctx.scoped("a tuned matmul", || {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            dispatch.record(&mut encoder.begin_compute_pass(&Default::default()));
            ctx.wait_for(ctx.submit(encoder))
        })
        .unwrap();
        let kernel = kernels.matmul_kernel_for(&params).unwrap().name();
        let what = format!("tuned ({kernel}) matmul M={m} K={k} N={n} trans_a={trans_a} trans_b={trans_b}");
        assert_close(&what, &ctx.read_buffer(&out).unwrap(), &flat(&want), MATMUL_ATOL, MATMUL_RTOL);
        let cached = MatmulTuning::load(Some(path.clone()), AdapterKey::of(&ctx.info)).choice(&shape_class(&params));
        if (m * k * n) as u64 >= TUNED_MIN_MACS {
            assert_eq!(cached.map(MatmulKernel::name), Some(kernel), "{what}: cached");
        } else {
            assert_eq!((cached, kernel), (None, kernels.matmul_kernel().name()), "{what}: untimed, not cached");
        }
    }
    assert!(kernels.matmul_description().starts_with("tuned: "), "{}", kernels.matmul_description());
}
