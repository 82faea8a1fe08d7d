//! ONNX export: a trained network as a standard ONNX model, so runtimes that
//! know nothing of this crate (onnxruntime, tract, browsers) can run it.
//!
//! The graph takes one float32 input `input` of shape [batch, IN] (`batch` a
//! symbolic dimension) and gives one float32 output `output` [batch, OUT]:
//!
//! ```text
//! input -> Sub(scaler.shift) -> Div(scaler.divisor)      only with a scaler
//!       -> Gemm(layers.l.weight, layers.l.bias) -> act   per layer l
//!       -> Softmax(axis 1)                               only for Output::Softmax
//!       -> Sigmoid                                       only for Loss::Bce
//!       -> output
//! ```
//!
//! The activations are ONNX's Sigmoid, Relu, Tanh and LeakyRelu (alpha: the
//! negative slope); opset 13 has no Gelu, so a GELU layer is built from
//! Mul, Add and Tanh as 0.5 z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z z z))),
//! with its constants as scalar initializers (`gelu.*`).
//!
//! The initializers carry the checkpoint's names. Training fuses the softmax
//! (or, under bce, the sigmoid) into the loss, so the network's last layer
//! outputs logits; the export adds the Softmax or Sigmoid so the model's
//! output is probabilities, as `predict`'s.

mod onnx_proto;

use std::path::Path;

use prost::Message;

use crate::data::Scaler;
use crate::error::{Error, Result};
use crate::model::{Activation, Loss, MlpSpec, Output, Params};
use onnx_proto::tensor_shape_proto::{dimension, Dimension};
use onnx_proto::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto, ATTRIBUTE_FLOAT, ATTRIBUTE_INT, DATA_TYPE_FLOAT,
};

/// IR version 8 (onnx 1.10+) is read by every current runtime, and opset 13
/// has every op used here in its present form (Softmax's axis semantics
/// changed in 13), without needing anything newer.
pub const IR_VERSION: i64 = 8;
/// The default-domain opset the model imports; see [`IR_VERSION`] for why 13.
pub const OPSET_VERSION: i64 = 13;

/// The graph's input: float32 [batch, IN].
pub const INPUT_NAME: &str = "input";
/// The graph's output: float32 [batch, OUT].
pub const OUTPUT_NAME: &str = "output";
/// The symbolic name of the batch dimension of input and output.
pub const BATCH_DIM: &str = "batch";

/// The ONNX model of `spec` with `params`, scaling its input with `scaler`
/// first when given, as the bytes of a .onnx file.
pub fn onnx_model(spec: &MlpSpec, params: &Params, scaler: Option<&Scaler>) -> Result<Vec<u8>> {
    check_shapes(spec, params, scaler)?;
    let mut graph = GraphBuilder { graph: GraphProto { name: "wgpu-mlp".into(), ..GraphProto::default() } };
    let mut x = INPUT_NAME.to_string();
    if let Some(scaler) = scaler {
        // x is (N, IN); shift and divisor are (IN), broadcast over rows.
        let shift = graph.initializer("scaler.shift", &[scaler.shift.len()], scaler.shift.iter());
        let divisor = graph.initializer("scaler.divisor", &[scaler.divisor.len()], scaler.divisor.iter());
        x = graph.node("Sub", "scaler.sub", &[&x, &shift], vec![]);
        x = graph.node("Div", "scaler.div", &[&x, &divisor], vec![]);
    }
    for (l, layer) in params.layers.iter().enumerate() {
        // x is (N, IN_l), w is (IN_l, OUT_l) as in training (so no transB), b is (OUT_l).
        let w = graph.initializer(&format!("layers.{l}.weight"), layer.w.shape(), layer.w.iter());
        let b = graph.initializer(&format!("layers.{l}.bias"), layer.b.shape(), layer.b.iter());
        x = graph.node("Gemm", &format!("layers.{l}.gemm"), &[&x, &w, &b], vec![]);
        let name = |op: &str| format!("layers.{l}.{op}");
        x = match spec.activation(l) {
            Activation::Sigmoid => graph.node("Sigmoid", &name("sigmoid"), &[&x], vec![]),
            Activation::Relu => graph.node("Relu", &name("relu"), &[&x], vec![]),
            Activation::Tanh => graph.node("Tanh", &name("tanh"), &[&x], vec![]),
            Activation::LeakyRelu => {
                let alpha =
                    AttributeProto { name: "alpha".into(), f: spec.negative_slope(), r#type: ATTRIBUTE_FLOAT, i: 0 };
                graph.node("LeakyRelu", &name("leakyrelu"), &[&x], vec![alpha])
            }
            Activation::Gelu => graph.gelu(&x, &name("gelu")),
            Activation::Identity => x,
        };
    }
    match (spec.output(), spec.loss()) {
        (Output::Softmax, _) => {
            let axis = AttributeProto { name: "axis".into(), i: 1, r#type: ATTRIBUTE_INT, f: 0.0 };
            graph.node("Softmax", "softmax", &[&x], vec![axis]);
        }
        (Output::Sigmoid, Loss::Bce) => {
            graph.node("Sigmoid", "sigmoid", &[&x], vec![]);
        }
        (Output::Sigmoid | Output::Identity, _) => {}
    }
    graph.name_last_output(OUTPUT_NAME);
    graph.graph.input.push(value_info(INPUT_NAME, spec.inputs()));
    graph.graph.output.push(value_info(OUTPUT_NAME, spec.outputs()));

    let model = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "wgpu-mlp".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "layers {spec}, hidden {}{}, output {}, loss {}; input scaled in the graph: {}",
            spec.hidden(),
            match spec.hidden() {
                Activation::LeakyRelu => format!(" (negative slope {})", spec.negative_slope()),
                _ => String::new(),
            },
            spec.output(),
            spec.loss(),
            if scaler.is_some() { "yes" } else { "no" }
        ),
        graph: Some(graph.graph),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET_VERSION }],
    };
    Ok(model.encode_to_vec())
}

/// Writes [`onnx_model`] to `path`, atomically, refusing a folder.
pub fn write_onnx(path: &Path, spec: &MlpSpec, params: &Params, scaler: Option<&Scaler>) -> Result<()> {
    if path.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is a folder; give the path of the .onnx file to write",
            path.display()
        )));
    }
    let bytes = onnx_model(spec, params, scaler)?;
    crate::report::write_atomically(path, |file| std::io::Write::write_all(file, &bytes))
}

/// Params (and the scaler) must have the shapes `spec` says: a mismatch would
/// give a model that every runtime refuses, or worse, one that runs wrongly.
fn check_shapes(spec: &MlpSpec, params: &Params, scaler: Option<&Scaler>) -> Result<()> {
    if params.layers.len() != spec.num_layers() {
        return Err(Error::InvalidInput(format!(
            "the parameters have {} layers, the model {spec} has {}",
            params.layers.len(),
            spec.num_layers()
        )));
    }
    for (l, (layer, (fan_in, fan_out))) in params.layers.iter().zip(spec.layer_shapes()).enumerate() {
        if layer.w.dim() != (fan_in, fan_out) || layer.b.len() != fan_out {
            return Err(Error::InvalidInput(format!(
                "layer {l} has weights {:?} and bias {:?}, the model {spec} needs [{fan_in}, {fan_out}] and [{fan_out}]",
                layer.w.shape(),
                layer.b.shape()
            )));
        }
    }
    if let Some(scaler) = scaler {
        if scaler.shift.len() != spec.inputs() || scaler.divisor.len() != spec.inputs() {
            return Err(Error::InvalidInput(format!(
                "the scaler has {} shifts and {} divisors, the model {spec} has {} inputs",
                scaler.shift.len(),
                scaler.divisor.len(),
                spec.inputs()
            )));
        }
    }
    Ok(())
}

/// Appends nodes and initializers, naming each node's output after the node.
struct GraphBuilder {
    graph: GraphProto,
}

impl GraphBuilder {
    /// A float32 constant of `shape`; returns its name.
    fn initializer<'a>(&mut self, name: &str, shape: &[usize], values: impl Iterator<Item = &'a f32>) -> String {
        // ndarray's iter() walks in logical row-major order whatever the memory
        // layout, which is the order raw_data must hold.
        let raw_data = values.flat_map(|v| v.to_le_bytes()).collect();
        let dims = shape.iter().map(|&d| dim(d)).collect();
        self.graph.initializer.push(TensorProto { dims, data_type: DATA_TYPE_FLOAT, name: name.into(), raw_data });
        name.into()
    }

    /// A node of `op` named `name` whose one output is also called `name`; returns it.
    fn node(&mut self, op: &str, name: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.into()],
            name: name.into(),
            op_type: op.into(),
            attribute,
        });
        name.into()
    }

    /// GELU of z in its tanh form, from opset 13's primitive ops (it has no
    /// Gelu): 0.5 z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z z z))), the nodes
    /// named `{name}.*`; the constants are scalar initializers made once and
    /// shared by every GELU layer. Returns the result's name.
    fn gelu(&mut self, z: &str, name: &str) -> String {
        let mut constant = |what: &str, value: f32| {
            let constant = format!("gelu.{what}");
            if !self.graph.initializer.iter().any(|t| t.name == constant) {
                self.initializer(&constant, &[], [value].iter());
            }
            constant
        };
        let (cubic, scale) = (constant("cubic", 0.044715), constant("scale", 0.797_884_6));
        let (one, half) = (constant("one", 1.0), constant("half", 0.5));
        let op = |what: &str| format!("{name}.{what}");
        let z2 = self.node("Mul", &op("z2"), &[z, z], vec![]);
        let z3 = self.node("Mul", &op("z3"), &[&z2, z], vec![]);
        let cubed = self.node("Mul", &op("cubic"), &[&z3, &cubic], vec![]);
        let inner = self.node("Add", &op("inner"), &[z, &cubed], vec![]);
        let scaled = self.node("Mul", &op("scaled"), &[&inner, &scale], vec![]);
        let t = self.node("Tanh", &op("tanh"), &[&scaled], vec![]);
        let one_plus = self.node("Add", &op("one_plus"), &[&t, &one], vec![]);
        let half_z = self.node("Mul", &op("half_z"), &[z, &half], vec![]);
        self.node("Mul", name, &[&half_z, &one_plus], vec![])
    }

    /// Renames the last node's output, so the graph's output is that value.
    fn name_last_output(&mut self, output: &str) {
        let last = self.graph.node.last_mut().expect("every network has at least one layer, so one Gemm node");
        last.output = vec![output.into()];
    }
}

/// A float32 [batch, width] graph input or output.
fn value_info(name: &str, width: usize) -> ValueInfoProto {
    let dims = vec![
        Dimension { value: Some(dimension::Value::DimParam(BATCH_DIM.into())) },
        Dimension { value: Some(dimension::Value::DimValue(dim(width))) },
    ];
    let tensor = type_proto::Tensor { elem_type: DATA_TYPE_FLOAT, shape: Some(TensorShapeProto { dim: dims }) };
    ValueInfoProto { name: name.into(), r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)) }) }
}

/// A size as ONNX's int64.
fn dim(size: usize) -> i64 {
    i64::try_from(size).expect("a size held in memory fits in i64")
}
