//! ONNX export: the exported model, run by tract (an ONNX runtime that shares
//! no code with this crate), gives what the CPU reference gives on the same
//! rows, for every hidden activation (GELU built from primitive ops), every
//! output and loss, with and without input scaling, on awkward shapes and
//! batch sizes; and `wgpu-mlp export` of a trained checkpoint agrees with
//! `wgpu-mlp predict`.

mod common;

use std::process::Command;

use ndarray::{Array1, Array2};
use prost::Message;
use tract_onnx::prelude::*;
use wgpu_mlp::data::Scaler;
use wgpu_mlp::export::{self, BATCH_DIM, INPUT_NAME, IR_VERSION, OPSET_VERSION, OUTPUT_NAME};
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::{cpu, MlpSpec, Params};

use common::{assert_close, random};

/// tract and the CPU reference do the same f32 arithmetic in another order
/// (tract's packed, FMA matmul kernels) and tract evaluates sigmoid, tanh and
/// exp with its own approximations: at most 9.5e-7 measured on these outputs,
/// which are of order 1 (1.7e-6 through GELU's nine primitive ops). A dropped bias or scaler, a transposed weight or a
/// missing activation is off by 1e-2 or more.
const ONNX_ATOL: f32 = 1e-5;

/// `wgpu-mlp predict` prints the shortest decimal that parses back to each
/// f32, so its CSV carries the reference's values exactly; the same bound.
const PREDICT_ATOL: f64 = ONNX_ATOL as f64;

/// Leaky relu's slope in these models: far from the default, so an export
/// that dropped it would fail.
const NEGATIVE_SLOPE: f32 = 0.2;

/// A spec, Xavier weights and biases drawn U(-0.5, 0.5), so that a model
/// which drops the biases fails; cross-entropy with softmax, else MSE.
fn network(sizes: &[usize], hidden: Activation, output: Output, seed: u64) -> (MlpSpec, Params) {
    let loss = if output == Output::Softmax { Loss::CrossEntropy } else { Loss::Mse };
    network_with_loss(sizes, hidden, output, loss, seed)
}

/// [`network`] with the loss given.
fn network_with_loss(sizes: &[usize], hidden: Activation, output: Output, loss: Loss, seed: u64) -> (MlpSpec, Params) {
    let mut spec = MlpSpec::new(sizes.to_vec()).unwrap().with(hidden, output, loss).unwrap();
    if hidden == Activation::LeakyRelu {
        spec = spec.with_negative_slope(NEGATIVE_SLOPE).unwrap();
    }
    let mut params = Params::init(&spec, Init::Xavier, seed).unwrap();
    for (l, layer) in params.layers.iter_mut().enumerate() {
        let values = random(layer.b.len(), seed * 100 + l as u64);
        layer.b = Array1::from_iter(values.into_iter().map(|v| 0.5 * v));
    }
    (spec, params)
}

/// Shifts in (-3, 3) and divisors in [0.5, 2.5), far enough from the
/// identity that a model without its scaling fails.
fn scaler(inputs: usize, seed: u64) -> Scaler {
    let shift = random(inputs, seed).into_iter().map(|v| 3.0 * v);
    let divisor = random(inputs, seed + 1).into_iter().map(|v| 1.5 + v);
    Scaler { shift: Array1::from_iter(shift), divisor: Array1::from_iter(divisor) }
}

/// Raw rows (N, IN) around the scaler's range.
fn rows(n: usize, inputs: usize, seed: u64) -> Array2<f32> {
    let values = random(n * inputs, seed).into_iter().map(|v| 4.0 * v).collect();
    Array2::from_shape_vec((n, inputs), values).unwrap()
}

/// What the ONNX model must give: the scaler on the host, the CPU forward
/// pass, then a softmax over each row for a softmax output, or a sigmoid
/// under bce. x is (N, IN), the result (N, OUT).
fn reference(spec: &MlpSpec, params: &Params, scaler: Option<&Scaler>, x: &Array2<f32>) -> Array2<f32> {
    let mut x = x.clone();
    if let Some(scaler) = scaler {
        scaler.apply(&mut x);
    }
    let mut out = cpu::forward(spec, params, x.view()).acts.pop().unwrap();
    if spec.output() == Output::Softmax {
        for mut row in out.rows_mut() {
            let top = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            row.mapv_inplace(|v| (v - top).exp());
            let total = row.sum();
            row /= total;
        }
    }
    if spec.loss() == Loss::Bce {
        out.mapv_inplace(|z| 1.0 / (1.0 + (-z).exp()));
    }
    out
}

/// An exported model loaded by tract, optimized once with its batch
/// dimension still symbolic, so one plan runs every batch size.
fn load(bytes: &[u8]) -> Arc<TypedRunnableModel> {
    let model = tract_onnx::onnx().model_for_read(&mut &bytes[..]).expect("tract reads the exported model");
    model.into_optimized().expect("tract types and optimizes it").into_runnable().expect("tract plans it")
}

/// The model run by tract on x (N, IN); (N, OUT).
fn run(model: &Arc<TypedRunnableModel>, x: &Array2<f32>) -> Array2<f32> {
    let input = Tensor::from_shape(&[x.nrows(), x.ncols()], x.as_standard_layout().as_slice().unwrap()).unwrap();
    let outputs = model.run(tvec!(input.into())).expect("tract runs the model");
    assert_eq!(outputs.len(), 1, "one output");
    let view = outputs[0].to_plain_array_view::<f32>().expect("a float32 output");
    assert_eq!(view.ndim(), 2, "the output is [batch, OUT]");
    let (n, out) = (view.shape()[0], view.shape()[1]);
    Array2::from_shape_vec((n, out), view.iter().copied().collect()).unwrap()
}

/// Exports the network, runs it on batches of 1, 2 and 37 rows, and compares.
fn check(sizes: &[usize], hidden: Activation, output: Output, scaled: bool, seed: u64) {
    let (spec, params) = network(sizes, hidden, output, seed);
    check_network(&spec, &params, scaled, seed);
}

/// [`check`] of a network made already.
fn check_network(spec: &MlpSpec, params: &Params, scaled: bool, seed: u64) {
    let (hidden, output) = (spec.hidden(), spec.output());
    let scaler = scaled.then(|| scaler(spec.inputs(), seed + 7));
    let bytes = export::onnx_model(spec, params, scaler.as_ref()).unwrap();
    let model = load(&bytes);
    for n in [1, 2, 37] {
        let x = rows(n, spec.inputs(), seed + n as u64);
        let got = run(&model, &x);
        let want = reference(spec, params, scaler.as_ref(), &x);
        assert_eq!(got.dim(), want.dim(), "{spec} {hidden:?} {output:?}, batch {n}");
        let what = format!("{spec} hidden {hidden:?} output {output:?} scaled {scaled} batch {n}");
        assert_close(&what, got.as_slice().unwrap(), want.as_slice().unwrap(), ONNX_ATOL, 0.0);
        let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0, f32::max);
        eprintln!("{what}: max |tract - cpu| {worst:e}");
    }
}

#[test]
fn every_activation_and_output_matches_the_cpu_reference() {
    let mut seed = 1;
    for hidden in [Activation::Sigmoid, Activation::Relu, Activation::Tanh, Activation::LeakyRelu, Activation::Gelu] {
        for output in [Output::Sigmoid, Output::Identity, Output::Softmax] {
            for scaled in [false, true] {
                check(&[7, 13, 5, 3], hidden, output, scaled, seed);
                seed += 1;
            }
        }
    }
}

#[test]
fn tiny_single_layer_and_wide_shapes_match_the_cpu_reference() {
    check(&[1, 1, 1], Activation::Sigmoid, Output::Sigmoid, false, 50);
    check(&[1, 1, 1], Activation::Tanh, Output::Identity, true, 51);
    // A single layer: no hidden activation at all.
    check(&[5, 3], Activation::Relu, Output::Softmax, true, 52);
    check(&[5, 1], Activation::Relu, Output::Identity, false, 53);
    // Two classes and sizes past a matmul kernel's tile edges.
    check(&[33, 65, 17, 2], Activation::Relu, Output::Softmax, true, 54);
}

#[test]
fn a_bce_model_outputs_probabilities_through_a_sigmoid() {
    for (hidden, scaled, seed) in [(Activation::Gelu, false, 60), (Activation::LeakyRelu, true, 61)] {
        let (spec, params) = network_with_loss(&[7, 13, 5, 3], hidden, Output::Sigmoid, Loss::Bce, seed);
        check_network(&spec, &params, scaled, seed);
    }
    // One output, as for a binary target.
    let (spec, params) = network_with_loss(&[4, 6, 1], Activation::Relu, Output::Sigmoid, Loss::Bce, 62);
    check_network(&spec, &params, false, 62);
}

#[test]
fn leaky_relu_carries_its_slope_and_gelu_is_built_from_primitive_ops() {
    let (spec, params) = network_with_loss(&[4, 6, 5, 2], Activation::LeakyRelu, Output::Sigmoid, Loss::Bce, 12);
    let model = tract_onnx::pb::ModelProto::decode(&export::onnx_model(&spec, &params, None).unwrap()[..]).unwrap();
    let graph = model.graph.unwrap();
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["Gemm", "LeakyRelu", "Gemm", "LeakyRelu", "Gemm", "Sigmoid"]);
    let alpha = &graph.node[1].attribute[0];
    assert_eq!((alpha.name.as_str(), alpha.f), ("alpha", NEGATIVE_SLOPE));
    assert_eq!(alpha.r#type, tract_onnx::pb::attribute_proto::AttributeType::Float as i32);
    assert_eq!(graph.node.last().unwrap().output, [OUTPUT_NAME]);

    // Opset 13 has no Gelu: each GELU layer is nine primitive nodes, its
    // constants four scalars shared by the layers.
    let (spec, params) = network(&[4, 6, 5, 2], Activation::Gelu, Output::Identity, 13);
    let model = tract_onnx::pb::ModelProto::decode(&export::onnx_model(&spec, &params, None).unwrap()[..]).unwrap();
    let graph = model.graph.unwrap();
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    let gelu = ["Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"];
    assert_eq!(ops, [&["Gemm"][..], &gelu, &["Gemm"], &gelu, &["Gemm"]].concat());
    let scalars: Vec<&str> = graph.initializer.iter().filter(|t| t.dims.is_empty()).map(|t| t.name.as_str()).collect();
    assert_eq!(scalars, ["gelu.cubic", "gelu.scale", "gelu.one", "gelu.half"]);
}

/// The bytes decoded with tract's own onnx.proto types (generated by
/// prost-build from the official file, so independent of our declarations):
/// every tag we wrote lands in the field it is meant for.
#[test]
fn the_model_decodes_with_the_official_schema() {
    let (spec, params) = network(&[4, 6, 3], Activation::Relu, Output::Softmax, 9);
    let scaler = scaler(4, 10);
    let bytes = export::onnx_model(&spec, &params, Some(&scaler)).unwrap();
    let model = tract_onnx::pb::ModelProto::decode(&bytes[..]).expect("a ModelProto");
    assert_eq!(model.ir_version, IR_VERSION);
    assert_eq!(model.producer_name, "wgpu-mlp");
    assert_eq!(model.producer_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(model.opset_import.len(), 1);
    assert_eq!((model.opset_import[0].domain.as_str(), model.opset_import[0].version), ("", OPSET_VERSION));
    let graph = model.graph.expect("a graph");

    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["Sub", "Div", "Gemm", "Relu", "Gemm", "Softmax"]);
    let softmax = graph.node.last().unwrap();
    assert_eq!(softmax.output, [OUTPUT_NAME]);
    assert_eq!((softmax.attribute[0].name.as_str(), softmax.attribute[0].i), ("axis", 1));
    assert_eq!(softmax.attribute[0].r#type, tract_onnx::pb::attribute_proto::AttributeType::Int as i32);
    assert_eq!(graph.node[0].input, [INPUT_NAME, "scaler.shift"]);
    assert_eq!(graph.node[2].input[1..], ["layers.0.weight", "layers.0.bias"]);

    let float = tract_onnx::pb::tensor_proto::DataType::Float as i32;
    let initializers: Vec<(&str, &[i64])> =
        graph.initializer.iter().map(|t| (t.name.as_str(), t.dims.as_slice())).collect();
    assert_eq!(
        initializers,
        [
            ("scaler.shift", &[4][..]),
            ("scaler.divisor", &[4]),
            ("layers.0.weight", &[4, 6]),
            ("layers.0.bias", &[6]),
            ("layers.1.weight", &[6, 3]),
            ("layers.1.bias", &[3]),
        ]
    );
    for tensor in &graph.initializer {
        assert_eq!(tensor.data_type, float, "{}", tensor.name);
    }
    let w0: Vec<f32> =
        graph.initializer[2].raw_data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(w0, params.layers[0].w.iter().copied().collect::<Vec<_>>(), "row-major (IN, OUT)");

    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    for (values, name, width) in [(&graph.input, INPUT_NAME, 4), (&graph.output, OUTPUT_NAME, 3)] {
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].name, name);
        let Some(tract_onnx::pb::type_proto::Value::TensorType(tensor)) = &values[0].r#type.as_ref().unwrap().value
        else {
            panic!("{name} is not a tensor");
        };
        assert_eq!(tensor.elem_type, float, "{name}");
        let dims: Vec<Option<Value>> = tensor.shape.as_ref().unwrap().dim.iter().map(|d| d.value.clone()).collect();
        assert_eq!(dims, [Some(Value::DimParam(BATCH_DIM.into())), Some(Value::DimValue(width))], "{name}");
    }
}

#[test]
fn mismatched_parameters_are_refused() {
    let (spec, params) = network(&[4, 6, 3], Activation::Relu, Output::Softmax, 11);
    let (other, _) = network(&[4, 5, 3], Activation::Relu, Output::Softmax, 11);
    let error = export::onnx_model(&other, &params, None).unwrap_err();
    assert!(error.to_string().contains("layer 0 has weights [4, 6]"), "{error}");
    let error = export::onnx_model(&spec, &params, Some(&scaler(5, 1))).unwrap_err();
    assert!(error.to_string().contains("5 shifts"), "{error}");
}

/// Runs the built binary; panics with its output unless it exits with `code`.
fn wgpu_mlp(args: &[&str], code: i32) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp")).args(args).output().expect("the binary starts");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert_eq!(
        output.status.code(),
        Some(code),
        "`wgpu-mlp {}`\n--- stdout\n{stdout}--- stderr\n{stderr}",
        args.join(" ")
    );
    (stdout, stderr)
}

/// 45 rows of 4 unscaled inputs (offsets and spreads far from 0 and 1, so
/// the scaling inside the graph matters) and a last column that is a class
/// 0..3 or, for regression, a smooth function of the inputs.
fn csv_rows(classify: bool) -> (String, Array2<f32>) {
    let mut text = String::from("a,b,c,d,target\n");
    let mut x = Vec::new();
    for i in 0..45 {
        let label = i % 3;
        let row: Vec<f32> =
            (0..4).map(|k| 10.0 * k as f32 + ((i * 7 + k * 13) % 10) as f32 * 0.5 + label as f32).collect();
        let target = if classify { label.to_string() } else { (0.1 * row[0] - 0.05 * row[3]).to_string() };
        text += &format!("{},{},{},{},{target}\n", row[0], row[1], row[2], row[3]);
        x.extend(row);
    }
    (text, Array2::from_shape_vec((45, 4), x).unwrap())
}

#[test]
fn cli_export_of_a_trained_checkpoint_agrees_with_predict() {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (task, classify) in [("classify", true), ("regress", false)] {
        let (text, x) = csv_rows(classify);
        let csv = dir.join(format!("{task}.csv"));
        std::fs::write(&csv, text).unwrap();
        let data = format!("csv:{}", csv.display());
        let run_dir = dir.join(format!("run-{task}"));
        let common = ["--data", &data, "--task", task, "--device", "cpu"];
        let (stdout, _) = wgpu_mlp(
            &[
                &common[..],
                &["--hidden", "6", "--epochs", "5", "--json", "--quiet", "--out", run_dir.to_str().unwrap()],
            ]
            .concat(),
            0,
        );
        let trained: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let checkpoint = trained["checkpoint"].as_str().expect("the last epoch is saved").to_string();

        let onnx = dir.join(format!("{task}.onnx"));
        let (_, stderr) = wgpu_mlp(&["export", "--checkpoint", &checkpoint, "--out", onnx.to_str().unwrap()], 0);
        assert!(stderr.contains(&format!("wrote {}", onnx.display())), "{stderr}");
        assert!(stderr.contains("input 'input' float32 [batch, 4]"), "{stderr}");

        // Every row, in file order (predict's default, said here), through its CPU path.
        let predictions = dir.join(format!("{task}-predictions.csv"));
        let predict = ["predict", "--checkpoint", &checkpoint, "--split", "all"];
        wgpu_mlp(&[&predict[..], &common[..], &["--out", predictions.to_str().unwrap()]].concat(), 0);
        let text = std::fs::read_to_string(&predictions).unwrap();
        let skip = usize::from(classify); // the class column
        let want: Vec<Vec<f64>> =
            text.lines().skip(1).map(|line| line.split(',').skip(skip).map(|f| f.parse().unwrap()).collect()).collect();

        let got = run(&load(&std::fs::read(&onnx).unwrap()), &x);
        assert_eq!(got.nrows(), want.len(), "{task}: a prediction per row");
        let mut worst = 0.0f64;
        for (r, (got, want)) in got.rows().into_iter().zip(&want).enumerate() {
            assert_eq!(got.len(), want.len(), "{task} row {r}");
            for (g, w) in got.iter().zip(want) {
                worst = worst.max((*g as f64 - w).abs());
            }
        }
        eprintln!("{task}: tract vs predict, max |difference| {worst:e}");
        assert!(worst <= PREDICT_ATOL, "{task}: tract and predict differ by {worst}, above {PREDICT_ATOL}");
    }

    // A folder as --out is refused as bad input.
    let checkpoint = dir.join("run-classify/checkpoint-epoch5.safetensors");
    let (_, stderr) =
        wgpu_mlp(&["export", "--checkpoint", checkpoint.to_str().unwrap(), "--out", dir.to_str().unwrap()], 2);
    assert!(stderr.contains("is a folder"), "{stderr}");
}
