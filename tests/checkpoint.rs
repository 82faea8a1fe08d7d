//! Checkpoints: exact round trips between devices, resume giving the same bits
//! as an unbroken run, and refusals of files that do not fit.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{gpu_backends, label, test_backends};
use wgpu_mlp::checkpoint::{self, describe};
use wgpu_mlp::data::Scale;
use wgpu_mlp::gpu::GpuPath;
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::train::{Optimizer, TrainState};
use wgpu_mlp::{Backend, CpuTrainer, Dataset, MlpSpec, Params, Run, TrainConfig, Trainer};

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-checkpoint-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A classification run with Adam, shuffling and weight decay: every piece of
/// state a resume must carry.
fn run() -> (MlpSpec, Dataset, TrainConfig) {
    let spec =
        MlpSpec::new(vec![5, 9, 3]).unwrap().with(Activation::Tanh, Output::Softmax, Loss::CrossEntropy).unwrap();
    let x = Dataset::seed_problem(45, 5, 1, 4).unwrap().x;
    let labels: Vec<usize> = x.rows().into_iter().map(|r| ((r[0] + r[1]) * 1.5) as usize % 3).collect();
    let data = Dataset::classification(x, &labels, 3).unwrap();
    let config = TrainConfig {
        lr: 0.01,
        optimizer: Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        weight_decay: 1e-3,
        batch_size: Some(8),
        shuffle: true,
        seed: 6,
        lr_schedule: Default::default(),
        clip: Default::default(),
        dropout: Default::default(),
        dp: None,
    };
    (spec, data, config)
}

fn metadata(spec: &MlpSpec, data: &Dataset, config: &TrainConfig) -> HashMap<String, String> {
    describe(spec, config.optimizer, config.seed, data.fingerprint())
}

/// Trains `first` epochs, saves, loads into a new trainer from `make`, trains
/// `second` more; returns that state and the state of one unbroken run.
fn resumed_and_straight(
    make: &dyn Fn() -> Box<dyn Trainer>,
    spec: &MlpSpec,
    meta: &HashMap<String, String>,
    name: &str,
) -> (TrainState, TrainState) {
    let (first, second) = (4, 6);
    let mut straight = make();
    straight.train(first + second).unwrap();
    let mut before = make();
    before.train(first).unwrap();
    let path = folder(name).join("half.safetensors");
    checkpoint::save(&path, &before.state().unwrap(), first, meta.clone(), None).unwrap();
    let saved = checkpoint::load(&path, spec).unwrap();
    assert_eq!(saved.epoch, first);
    saved.check_matches(meta, &path).unwrap();
    let mut after = make();
    after.restore(&saved.state).unwrap();
    after.train(second).unwrap();
    (after.state().unwrap(), straight.state().unwrap())
}

#[test]
fn resume_is_bit_identical_on_every_backend() {
    let (spec, data, shuffled) = run();
    let params = Params::init(&spec, Init::Xavier, 1).unwrap();
    for backend in test_backends() {
        // The fused path takes batches in order only.
        let fused = matches!(&backend, Backend::Gpu(gpu) if gpu.path == GpuPath::Fused);
        let config = TrainConfig { shuffle: !fused, ..shuffled.clone() };
        let run = Run { spec: &spec, params: &params, train: &data, test: None, config: &config };
        let make = || backend.trainer(&run).unwrap();
        let what = label(&backend);
        let (resumed, straight) = resumed_and_straight(&make, &spec, &metadata(&spec, &data, &config), &what);
        assert_eq!(resumed, straight, "{what}: params, optimizer state, step and shuffle position all equal");
    }
}

#[test]
fn leaky_relu_and_gelu_with_bce_resume_bit_identically_with_their_settings() {
    let (spec, data, shuffled) = run();
    let leaky = spec.with(Activation::LeakyRelu, Output::Softmax, Loss::CrossEntropy).unwrap();
    let leaky = leaky.with_negative_slope(0.3).unwrap();
    // The one-hot targets as multi-label ones for bce.
    let labels = Dataset { classes: None, ..data.clone() };
    let gelu_bce = MlpSpec::new(vec![5, 9, 3]).unwrap().with(Activation::Gelu, Output::Sigmoid, Loss::Bce).unwrap();
    for (spec, data) in [(&leaky, &data), (&gelu_bce, &labels)] {
        let params = Params::init(spec, Init::He, 1).unwrap();
        for backend in test_backends() {
            let fused = matches!(&backend, Backend::Gpu(gpu) if gpu.path == GpuPath::Fused);
            let config = TrainConfig { shuffle: !fused, ..shuffled.clone() };
            let run = Run { spec, params: &params, train: data, test: None, config: &config };
            let make = || backend.trainer(&run).unwrap();
            let what = format!("{} {}", label(&backend), spec.hidden());
            let (resumed, straight) = resumed_and_straight(&make, spec, &metadata(spec, data, &config), &what);
            assert_eq!(resumed, straight, "{what}: params, optimizer state, step and shuffle position all equal");
        }
    }

    // The slope is in the metadata, read back, and must match on resume.
    let meta = metadata(&leaky, &data, &shuffled);
    assert_eq!(meta["negative_slope"], "0.3");
    assert!(!metadata(&gelu_bce, &labels, &shuffled).contains_key("negative_slope"), "only leaky relu has one");
    let params = Params::init(&leaky, Init::He, 2).unwrap();
    let optimizer = wgpu_mlp::train::OptimizerState::zeros(shuffled.optimizer, &params);
    let state = TrainState { params, optimizer, shuffle_position: 0 };
    let dir = folder("leaky");
    let path = dir.join("leaky.safetensors");
    checkpoint::save(&path, &state, 0, meta.clone(), None).unwrap();
    assert_eq!(checkpoint::read_spec(&path).unwrap(), leaky);
    let other = leaky.clone().with_negative_slope(0.01).unwrap();
    let error = checkpoint::load(&path, &leaky)
        .unwrap()
        .check_matches(&metadata(&other, &data, &shuffled), &path)
        .unwrap_err()
        .to_string();
    assert!(error.contains("negative_slope is 0.3, this run's is 0.01"), "{error}");
    // A leaky-relu file without the key reads as PyTorch's default slope.
    let keyless = dir.join("keyless.safetensors");
    rewrite(&path, &keyless, |_, m| drop(m.remove("negative_slope")));
    assert_eq!(checkpoint::read_spec(&keyless).unwrap(), other);
    let bad = dir.join("bad-slope.safetensors");
    rewrite(&path, &bad, |_, m| drop(m.insert("negative_slope".into(), "1.5".into())));
    let error = checkpoint::read_spec(&bad).unwrap_err().to_string();
    assert!(error.contains("`negative_slope` must be a finite number in [0, 1), got 1.5"), "{error}");
}

#[test]
fn a_checkpoint_moves_between_devices_exactly() {
    let Some(gpu) = gpu_backends().into_iter().next() else { return };
    let (spec, data, config) = run();
    let params = Params::init(&spec, Init::Xavier, 2).unwrap();
    let run = Run { spec: &spec, params: &params, train: &data, test: None, config: &config };
    let meta = metadata(&spec, &data, &config);
    let dir = folder("devices");
    let mut on_cpu = CpuTrainer::new(&run).unwrap();
    on_cpu.train(3).unwrap();
    let from_cpu = on_cpu.state().unwrap();
    checkpoint::save(&dir.join("cpu.safetensors"), &from_cpu, 3, meta.clone(), None).unwrap();

    let mut on_gpu = gpu.trainer(&run).unwrap();
    on_gpu.restore(&checkpoint::load(&dir.join("cpu.safetensors"), &spec).unwrap().state).unwrap();
    assert_eq!(on_gpu.state().unwrap(), from_cpu, "CPU -> file -> GPU keeps every bit");
    checkpoint::save(&dir.join("gpu.safetensors"), &on_gpu.state().unwrap(), 3, meta, None).unwrap();

    let mut back = CpuTrainer::new(&run).unwrap();
    back.restore(&checkpoint::load(&dir.join("gpu.safetensors"), &spec).unwrap().state).unwrap();
    assert_eq!(back.state().unwrap(), from_cpu, "GPU -> file -> CPU keeps every bit");
}

#[test]
fn tensors_have_readable_names_and_shapes() {
    let (spec, data, config) = run();
    let params = Params::init(&spec, Init::Xavier, 3).unwrap();
    let mut trainer =
        CpuTrainer::new(&Run { spec: &spec, params: &params, train: &data, test: None, config: &config }).unwrap();
    trainer.train(1).unwrap();
    let path = folder("names").join("c.safetensors");
    let scaler = Scale::Standard.fit(&data.x);
    checkpoint::save(&path, &trainer.state().unwrap(), 1, metadata(&spec, &data, &config), Some(&scaler)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(names.len(), 14, "weights and biases of 2 layers, Adam's m and v for each, the input scaling");
    assert_eq!(checkpoint::load(&path, &spec).unwrap().scaler, Some(scaler), "the scaling comes back");
    assert_eq!(checkpoint::read_spec(&path).unwrap(), spec, "the model is described by the metadata");
    assert_eq!(file.tensor("layers.0.weight").unwrap().shape(), &[5, 9]);
    assert_eq!(file.tensor("layers.1.bias").unwrap().shape(), &[3]);
    assert_eq!(file.tensor("optimizer.v.layers.1.weight").unwrap().shape(), &[9, 3]);
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert_eq!((meta["epoch"].as_str(), meta["adam_step"].as_str(), meta["layers"].as_str()), ("1", "6", "5,9,3"));
}

#[test]
fn checkpoints_that_do_not_fit_are_refused_by_name() {
    let (spec, data, config) = run();
    let meta = metadata(&spec, &data, &config);
    let dir = folder("refusals");
    let params = Params::init(&spec, Init::Xavier, 4).unwrap();
    let mut trainer =
        CpuTrainer::new(&Run { spec: &spec, params: &params, train: &data, test: None, config: &config }).unwrap();
    let good = dir.join("good.safetensors");
    checkpoint::save(&good, &trainer.state().unwrap(), 0, meta.clone(), None).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let error = checkpoint::load(&truncated, &spec).unwrap_err().to_string();
    assert!(error.contains("not a valid checkpoint"), "{error}");

    // A path that does not exist or is a folder is the user's mistake (exit
    // code 2); a read the device fails is not (Error::Io, exit code 1).
    let missing = checkpoint::load(&dir.join("none.safetensors"), &spec).unwrap_err();
    assert!(missing.to_string().contains("cannot read"), "{missing}");
    assert!(missing.is_bad_input(), "{missing:?}");
    let folder = checkpoint::read_spec(&dir).unwrap_err();
    assert!(folder.is_bad_input() && folder.to_string().contains("cannot read"), "{folder:?}");
    #[cfg(target_os = "linux")]
    {
        // Reading a process's memory at offset 0 (never mapped) fails with EIO.
        let failed = checkpoint::load(std::path::Path::new("/proc/self/mem"), &spec).unwrap_err();
        assert!(matches!(failed, wgpu_mlp::Error::Io { .. }) && !failed.is_bad_input(), "{failed:?}");
        assert_eq!(failed.to_string(), "cannot read /proc/self/mem");
    }

    let other_shape =
        MlpSpec::new(vec![5, 8, 3]).unwrap().with(Activation::Tanh, Output::Softmax, Loss::CrossEntropy).unwrap();
    let error = checkpoint::load(&good, &other_shape).unwrap_err().to_string();
    assert!(error.contains("layers 5,9,3") && error.contains("5,8,3"), "{error}");

    let newer = dir.join("newer.safetensors");
    let mut future = meta.clone();
    future.insert("format_version".into(), "99".into());
    checkpoint::save(&newer, &trainer.state().unwrap(), 0, future, None).unwrap();
    let error = checkpoint::load(&newer, &spec).unwrap_err().to_string();
    assert!(error.contains("format version 99"), "{error}");

    let saved = checkpoint::load(&good, &spec).unwrap();
    let mut other_data = data.clone();
    other_data.x[(0, 0)] += 1.0;
    let error = saved.check_matches(&metadata(&spec, &other_data, &config), &good).unwrap_err().to_string();
    assert!(error.contains("trained on other data") && error.contains("`seed`"), "{error}");
    let sgd = TrainConfig { optimizer: Optimizer::Sgd, ..config.clone() };
    let error = saved.check_matches(&metadata(&spec, &data, &sgd), &good).unwrap_err().to_string();
    assert!(error.contains("optimizer is adam") && error.contains("sgd"), "{error}");

    // A crash between writing and renaming leaves the last good file whole.
    let failed = wgpu_mlp::report::write_atomically(&good, |file| {
        std::io::Write::write_all(file, b"half a checkpoint")?;
        Err(std::io::Error::other("killed"))
    });
    assert!(failed.is_err());
    assert_eq!(std::fs::read(&good).unwrap(), bytes, "the previous checkpoint is intact");
    trainer.restore(&checkpoint::load(&good, &spec).unwrap().state).unwrap();
}

#[test]
fn a_format_1_checkpoint_with_debug_names_still_loads_and_resumes() {
    let (spec, data, config) = run();
    let params = Params::init(&spec, Init::Xavier, 5).unwrap();
    let mut trainer =
        CpuTrainer::new(&Run { spec: &spec, params: &params, train: &data, test: None, config: &config }).unwrap();
    trainer.train(2).unwrap();
    let meta = metadata(&spec, &data, &config);
    assert_eq!((meta["hidden"].as_str(), meta["loss"].as_str()), ("tanh", "cross-entropy"), "format 2 names");
    let path = folder("format1").join("old.safetensors");
    // What format 1 wrote: the enums by their debug names.
    let mut old = meta.clone();
    old.insert("format_version".into(), "1".into());
    old.insert("hidden".into(), "Tanh".into());
    old.insert("output".into(), "Softmax".into());
    old.insert("loss".into(), "CrossEntropy".into());
    checkpoint::save(&path, &trainer.state().unwrap(), 2, old, None).unwrap();
    assert_eq!(checkpoint::read_spec(&path).unwrap(), spec);
    let saved = checkpoint::load(&path, &spec).unwrap();
    saved.check_matches(&meta, &path).unwrap();
    assert_eq!(saved.state, trainer.state().unwrap());
    assert_eq!(saved.optimizer, config.optimizer);
}

#[test]
fn optimizers_are_written_and_read_back_exactly() {
    for optimizer in [
        Optimizer::Sgd,
        Optimizer::Momentum { momentum: 0.9 },
        Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        Optimizer::Adam { beta1: 0.123_456_79, beta2: 0.5, eps: 3.3e-7 },
    ] {
        let text = optimizer.to_string();
        assert_eq!(text.parse::<Optimizer>(), Ok(optimizer), "{text}");
    }
    assert_eq!(Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 }.to_string(), "adam 0.9 0.999 0.00000001");
    for bad in ["", "adam 0.9", "momentum x", "rmsprop 0.9", "sgd 1"] {
        assert!(bad.parse::<Optimizer>().is_err(), "'{bad}' is refused");
    }
}

/// A copy of the checkpoint at `from`, written to `to` after `change` edits its
/// tensors (name, shape, f32 values) and metadata.
fn rewrite(
    from: &std::path::Path,
    to: &std::path::Path,
    change: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>, &mut HashMap<String, String>),
) {
    let bytes = std::fs::read(from).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name, view.shape().to_vec(), values)
        })
        .collect();
    change(&mut tensors, &mut metadata);
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, values)| (name, shape, values.iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = raw
        .iter()
        .map(|(name, shape, data)| {
            (name.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data).unwrap())
        })
        .collect();
    std::fs::write(to, safetensors::serialize(views, Some(metadata)).unwrap()).unwrap();
}

#[test]
fn every_tensor_and_field_is_validated_and_inference_needs_no_optimizer_state() {
    let (spec, data, config) = run();
    let params = Params::init(&spec, Init::Xavier, 6).unwrap();
    let mut trainer =
        CpuTrainer::new(&Run { spec: &spec, params: &params, train: &data, test: None, config: &config }).unwrap();
    trainer.train(1).unwrap();
    let dir = folder("validated");
    let good = dir.join("good.safetensors");
    let scaler = Scale::Standard.fit(&data.x);
    checkpoint::save(&good, &trainer.state().unwrap(), 1, metadata(&spec, &data, &config), Some(&scaler)).unwrap();
    assert!(checkpoint::load(&good, &spec).is_ok() && checkpoint::load_model(&good).is_ok());

    let set = |name: &str, index: usize, value: f32| {
        let name = name.to_string();
        move |tensors: &mut Vec<(String, Vec<usize>, Vec<f32>)>, _: &mut HashMap<String, String>| {
            tensors.iter_mut().find(|t| t.0 == name).unwrap().2[index] = value;
        }
    };
    type Change = Box<dyn FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>, &mut HashMap<String, String>)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "extra",
            Box::new(|t: &mut Vec<_>, _: &mut _| t.push(("layers.9.weight".into(), vec![1], vec![0.0]))),
            "'layers.9.weight'",
        ),
        ("nan weight", Box::new(set("layers.1.weight", 4, f32::NAN)), "layers.1.weight[4] is NaN"),
        ("infinite bias", Box::new(set("layers.0.bias", 0, f32::INFINITY)), "layers.0.bias[0] is inf"),
        ("zero divisor", Box::new(set("scaler.divisor", 2, 0.0)), "scaler.divisor[2] is 0"),
        (
            "seed",
            Box::new(|_: &mut Vec<_>, m: &mut HashMap<String, String>| drop(m.insert("seed".into(), "x".into()))),
            "'seed' is 'x'",
        ),
        (
            "fingerprint",
            Box::new(|_: &mut Vec<_>, m: &mut HashMap<String, String>| {
                drop(m.insert("data_fingerprint".into(), "zz".into()))
            }),
            "'data_fingerprint' is 'zz'",
        ),
        ("epoch", Box::new(|_: &mut Vec<_>, m: &mut HashMap<String, String>| drop(m.remove("epoch"))), "no 'epoch'"),
    ];
    for (what, change, says) in cases {
        let path = dir.join(format!("{}.safetensors", what.replace(' ', "-")));
        rewrite(&good, &path, change);
        for error in [checkpoint::load(&path, &spec).err(), checkpoint::load_model(&path).err()] {
            let error = error.unwrap_or_else(|| panic!("{what}: accepted")).to_string();
            assert!(error.contains(says), "{what}: {error}");
        }
    }

    // Without the optimizer's tensors: no resume, but inference reads it.
    let network_only = dir.join("network-only.safetensors");
    rewrite(&good, &network_only, |tensors, _| tensors.retain(|t| !t.0.starts_with("optimizer.")));
    let error = checkpoint::load(&network_only, &spec).unwrap_err().to_string();
    assert!(error.contains("optimizer.m.layers.0.weight is missing"), "{error}");
    let model = checkpoint::load_model(&network_only).unwrap();
    assert_eq!((model.spec, model.params, model.scaler), (spec, trainer.state().unwrap().params, Some(scaler)));
    let export = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"))
        .args(["export", "--checkpoint", network_only.to_str().unwrap(), "--out", dir.join("m.onnx").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(export.status.success(), "export reads it: {}", String::from_utf8_lossy(&export.stderr));
}
