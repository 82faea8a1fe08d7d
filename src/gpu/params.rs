//! One `#[repr(C)]` params struct per kernel, fields in the WGSL struct's
//! order, and the matmul's epilogue.

use bytemuck::{Pod, Zeroable};

use super::context::Region;
use crate::model::Activation;

/// shaders/matmul_common.wgsl: out(M, N) = op(a)(M, K) · op(b)(K, N), then the
/// epilogue: + bias, an activation, or the derivative of one (codes from
/// [`activation_code`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub k: u32,
    pub n: u32,
    pub trans_a: u32,
    pub trans_b: u32,
    pub bias: u32,
    pub activation: u32,
    pub derivative: u32,
}

impl MatmulParams {
    /// A plain product, no epilogue.
    pub fn new(m: u32, k: u32, n: u32, trans_a: bool, trans_b: bool) -> Self {
        let (trans_a, trans_b) = (trans_a.into(), trans_b.into());
        Self { m, k, n, trans_a, trans_b, bias: 0, activation: 0, derivative: 0 }
    }
}

/// The code shaders/activation.wgsl gives an activation (the matmul epilogue's
/// and the fused path's).
pub fn activation_code(activation: Activation) -> u32 {
    match activation {
        Activation::Identity => 0,
        Activation::Sigmoid => 1,
        Activation::Relu => 2,
        Activation::Tanh => 3,
    }
}

/// What a matmul does to its result before storing it.
#[derive(Clone, Copy, Debug)]
pub enum Epilogue<'a> {
    None,
    /// Forward: out = activation(out + bias), bias (N).
    BiasActivation {
        bias: Region<'a>,
        activation: Activation,
    },
    /// Backward: out = dZ of the layer below, given its output (M, N).
    Derivative {
        activation: Activation,
        output: Region<'a>,
    },
}

/// shaders/bias_add.wgsl: out(rows, cols) += bias(cols).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BiasAddParams {
    pub rows: u32,
    pub cols: u32,
    pub _pad: [u32; 2],
}

/// shaders/{sigmoid,relu,tanh}.wgsl: forward and backward, over `len` elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ActivationParams {
    pub len: u32,
    pub _pad: [u32; 3],
}

/// shaders/mse.wgsl: grad = scale * (pred - target) over `len` elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MseParams {
    pub len: u32,
    pub scale: f32,
    pub _pad: [u32; 2],
}

/// shaders/reduce.wgsl: out[offset..offset + cols] (+)= column sums of input(rows, cols).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ColumnSumParams {
    pub rows: u32,
    pub cols: u32,
    pub accumulate: u32,
    pub offset: u32,
}

/// shaders/softmax_cross_entropy.wgsl: rows of K logits against targets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SoftmaxCrossEntropyParams {
    pub rows: u32,
    pub cols: u32,
    pub scale: f32,
    pub _pad: u32,
}

/// shaders/accuracy.wgsl: rows of K predictions against one-hot targets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct CountCorrectParams {
    pub rows: u32,
    pub cols: u32,
    pub _pad: [u32; 2],
}

/// shaders/gather.wgsl: out(rows, width) = source[index[r], :].
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GatherParams {
    pub rows: u32,
    pub width: u32,
    pub rows_per_chunk: u32,
    pub _pad: u32,
}

/// shaders/sgd.wgsl: weights(len) -= lr * (grads + weight_decay * weights).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SgdParams {
    pub len: u32,
    pub lr: f32,
    pub weight_decay: f32,
    pub _pad: u32,
}

/// shaders/momentum.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MomentumParams {
    pub len: u32,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

/// shaders/adam.wgsl, both entry points.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct AdamParams {
    pub len: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub _pad: [u32; 2],
}

/// Floats in shaders/adam.wgsl's AdamState (step, c1, c2, padding).
pub const ADAM_STATE_LEN: usize = 4;
