//! The kernels' uniforms: one `#[repr(C)]` params struct per kernel, fields in the WGSL struct's
//! order, and the matmul's epilogue.

use bytemuck::{Pod, Zeroable};

use super::context::Region;
use crate::model::Activation;

/// shaders/matmul_common.wgsl: out(M, N) = op(a)(M, K) · op(b)(K, N), then the
/// epilogue: + bias, a copy of z, an activation, or the derivative of one
/// (codes from `activation_code`: 0 identity, 1 sigmoid, 2 relu, 3 tanh,
/// 4 leaky relu, 5 gelu).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MatmulParams {
    /// Rows of out and of op(a).
    pub m: u32,
    /// The summed dimension: columns of op(a), rows of op(b).
    pub k: u32,
    /// Columns of out and of op(b).
    pub n: u32,
    /// 1 when a is stored (K, M) and used transposed. The pipeline constant
    /// TRANS_A decides; this repeats it so the uniform states the whole shape.
    pub trans_a: u32,
    /// 1 when b is stored (N, K) and used transposed; repeats TRANS_B likewise.
    pub trans_b: u32,
    /// 1 to add bias (N) to every row before the activation.
    pub bias: u32,
    /// The activation applied to out, by its code (`activation_code`); 0 (identity) for none.
    pub activation: u32,
    /// Nonzero: multiply out by this activation's derivative at the given
    /// layer output (M, N) (its z for GELU), turning dA into dZ; 0 for none.
    pub derivative: u32,
    /// Leaky relu's slope below 0, for `activation` or `derivative`.
    pub negative_slope: f32,
    /// 1 to store out, after the bias and before the activation, to `pre`
    /// (M, N): a GELU layer's z, which its backward pass needs.
    pub keep_pre: u32,
    /// Dropout's masks ([`crate::dropout`]): 0 none; 1 (forward) also store
    /// out masked and scaled to `dropped`; 2 (backward) mask and scale out.
    pub dropout: u32,
    /// The layer whose masks these are (part of their key).
    pub dropout_layer: u32,
    /// The probability of dropping a unit.
    pub dropout_p: f32,
    /// 1 / (1 - p), what a kept unit is multiplied by.
    pub dropout_scale: f32,
    /// The seed's low and high 32 bits (part of the masks' key).
    pub dropout_seed: [u32; 2],
}

impl MatmulParams {
    /// A plain product, no epilogue.
    pub fn new(m: u32, k: u32, n: u32, trans_a: bool, trans_b: bool) -> Self {
        let (trans_a, trans_b) = (trans_a.into(), trans_b.into());
        Self {
            m,
            k,
            n,
            trans_a,
            trans_b,
            bias: 0,
            activation: 0,
            derivative: 0,
            negative_slope: 0.0,
            keep_pre: 0,
            dropout: 0,
            dropout_layer: 0,
            dropout_p: 0.0,
            dropout_scale: 1.0,
            dropout_seed: [0; 2],
        }
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
        Activation::LeakyRelu => 4,
        Activation::Gelu => 5,
    }
}

/// What a matmul does to its result before storing it.
#[derive(Clone, Copy, Debug)]
pub enum Epilogue<'a> {
    /// Store the product as it is (dW = Xᵀ·dZ, a bench matmul).
    None,
    /// Forward: out = activation(out + bias), bias (N).
    BiasActivation {
        /// The layer's bias, N floats.
        bias: Region<'a>,
        /// The layer's activation.
        activation: Activation,
        /// Leaky relu's slope below 0 (the spec's; unused by the others).
        negative_slope: f32,
        /// Where z = out + bias (M, N) is also stored, before the
        /// activation: a GELU layer's, kept for its backward pass; None to
        /// keep nothing.
        pre: Option<Region<'a>>,
        /// In a training step with dropout: the masks, and where out is also
        /// stored masked and scaled (M, N), what the next layer reads.
        dropout: Option<(DropoutMask<'a>, Region<'a>)>,
    },
    /// Backward: out = dZ of the layer below, given its output (M, N).
    Derivative {
        /// The activation of the layer below, whose derivative is taken.
        activation: Activation,
        /// Leaky relu's slope below 0 (the spec's; unused by the others).
        negative_slope: f32,
        /// Where the derivative is evaluated (M, N): that layer's output a,
        /// or its z where the activation [needs it](Activation::needs_pre_activation).
        given: Region<'a>,
        /// With dropout: dZ masked and scaled as the layer's output was.
        dropout: Option<DropoutMask<'a>>,
    },
}

/// Which units a training step drops from a hidden layer's (M, N) block
/// ([`crate::dropout`]), for a matmul's epilogue.
#[derive(Clone, Copy, Debug)]
pub struct DropoutMask<'a> {
    /// The step's control values; the step is their fourth word.
    pub control: Region<'a>,
    /// The layer, part of the masks' key.
    pub layer: u32,
    /// The probability of dropping a unit, in [0, 1).
    pub p: f32,
    /// The run's seed, part of the masks' key.
    pub seed: u64,
}

/// shaders/activation_backward.wgsl: dA -> dZ over `len` elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ActivationParams {
    /// Elements of values and of given, any shape flattened.
    pub len: u32,
    /// Leaky relu's slope below 0 (unused by the others).
    pub negative_slope: f32,
    /// Zero; pads the struct to 16 bytes, as the WGSL struct is padded.
    pub _pad: [u32; 2],
}

/// shaders/mse.wgsl: grad = scale * (pred - target) over `len` elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MseParams {
    /// Elements of pred, expected and grad: the batch's (B, OUT) flattened.
    pub len: u32,
    /// The gradient's factor, 2 / len: the derivative of the mean over every element.
    pub scale: f32,
    /// Zero; pads the struct to 16 bytes, as the WGSL struct is padded.
    pub _pad: [u32; 2],
}

/// shaders/bce.wgsl: grad = scale * (sigmoid(logits) - target) over `len` elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BceParams {
    /// Elements of logits, expected and grad: the batch's (B, OUT) flattened.
    pub len: u32,
    /// The gradient's factor, 1 / len: the loss is the mean over every element.
    pub scale: f32,
    /// Zero; pads the struct to 16 bytes, as the WGSL struct is padded.
    pub _pad: [u32; 2],
}

/// shaders/reduce.wgsl: out[offset..offset + cols] (+)= column sums of input(rows, cols).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ColumnSumParams {
    /// Rows of input summed into each column's total.
    pub rows: u32,
    /// Columns of input: totals written (1 when totalling loss partials).
    pub cols: u32,
    /// 1 to add the totals to what out holds (a running metric), 0 to overwrite.
    pub accumulate: u32,
    /// The first float of out written, in floats: a metric's slot, 0 for db.
    pub offset: u32,
}

/// shaders/softmax_cross_entropy.wgsl: rows of K logits against targets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SoftmaxCrossEntropyParams {
    /// Rows B of logits, expected and grad: one sample each.
    pub rows: u32,
    /// Columns K: the classes.
    pub cols: u32,
    /// The gradient's factor, 1 / B: the loss is the mean over rows.
    pub scale: f32,
    /// Zero; pads the struct to 16 bytes, as the WGSL struct is padded.
    pub _pad: u32,
}

/// shaders/accuracy.wgsl: rows of K predictions against one-hot targets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct CountCorrectParams {
    /// Rows B of pred and expected: one sample each.
    pub rows: u32,
    /// Columns K: the classes compared by argmax.
    pub cols: u32,
    /// Zero; pads the struct to 16 bytes, as the WGSL struct is padded.
    pub _pad: [u32; 2],
}

/// shaders/gather.wgsl: out(rows, width) = `source[index[r], :]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GatherParams {
    /// Rows B gathered: the length of index, the rows of out.
    pub rows: u32,
    /// Floats per row W, in the source and in out.
    pub width: u32,
    /// Source rows in each chunk but the last; source row r is in chunk
    /// r / rows_per_chunk, since the source can outgrow one storage binding.
    pub rows_per_chunk: u32,
    /// Zero; pads the struct to 16 bytes, as the WGSL struct is padded.
    pub _pad: u32,
}

/// shaders/sgd.wgsl: weights(len) -= rate * (grads + weight_decay * weights),
/// the rate read from a buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SgdParams {
    /// Elements of weights and grads: every weight and bias of the model.
    pub len: u32,
    /// The L2 factor added to the gradient as weight_decay * weights; 0 for none.
    pub weight_decay: f32,
    /// Zero; pads the struct to 16 bytes, as the WGSL struct is padded.
    pub _pad: [u32; 2],
}

/// The step's control values the update kernels read (step_control.wgsl):
/// the learning rate, the global-norm clipping factor, the clip value, and
/// the step count's u32 bits (dropout's masks and DP-SGD's noise are keyed by it).
pub const STEP_CONTROL_LEN: usize = 4;

/// The clip value that means none: step_control.wgsl clamps below it only.
pub const NO_CLIP_VALUE: f32 = f32::MAX;

/// Workgroups of shaders/grad_norm.wgsl's square_partials, at most: each
/// strides over its share, and clip_scale adds their partials in order.
pub const GRAD_NORM_GROUPS: usize = 64;

/// shaders/grad_norm.wgsl: the squares of `len` gradients summed by `groups`
/// workgroups, and the clipping factor for `max_norm`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GradNormParams {
    /// Elements of the gradient: every weight and bias of the model.
    pub len: u32,
    /// Workgroups of square_partials, one partial each.
    pub groups: u32,
    /// The norm above which the gradients are scaled down to it.
    pub max_norm: f32,
    /// Zero; pads the struct to 16 bytes, as the WGSL struct is padded.
    pub _pad: u32,
}

/// shaders/momentum.wgsl: velocity = momentum * velocity + g, weights -= lr *
/// velocity, with g = grads + weight_decay * weights (PyTorch's form).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MomentumParams {
    /// Elements of weights, grads and velocity: every weight and bias of the model.
    pub len: u32,
    /// The factor the velocity keeps each step, in [0, 1).
    pub momentum: f32,
    /// The L2 factor added to the gradient; 0 for none.
    pub weight_decay: f32,
    /// Zero; pads the struct to 16 bytes, as the WGSL struct is padded.
    pub _pad: u32,
}

/// shaders/adam.wgsl, both entry points: adam_tick advances the step and
/// bias corrections held on the GPU, adam_update moves m, v and the weights.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct AdamParams {
    /// Elements of weights, grads, m and v: every weight and bias of the model.
    pub len: u32,
    /// Decay of the first moment m per step (and the base of its bias correction).
    pub beta1: f32,
    /// Decay of the second moment v per step (and the base of its bias correction).
    pub beta2: f32,
    /// Added to sqrt(v̂) so the step stays finite where v is near 0.
    pub eps: f32,
    /// The L2 factor added to the gradient; 0 for none.
    pub weight_decay: f32,
    /// Zero; pads the struct to 32 bytes, as the WGSL struct is padded.
    pub _pad: [u32; 3],
}

/// Floats in shaders/adam.wgsl's AdamState (step, c1, c2, padding).
pub const ADAM_STATE_LEN: usize = 4;

/// shaders/dp_sgd.wgsl's dp_row_norms: one layer's part of each row's squared
/// gradient norm, and in the last layer's dispatch the rows' clip factors.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RowNormParams {
    /// Rows B of the batch buffers (the sample's room).
    pub rows: u32,
    /// The layer's inputs and units.
    pub fan_in: u32,
    /// The layer's units.
    pub fan_out: u32,
    /// 1: add to the norms (every layer but the first); 0: write them.
    pub accumulate: u32,
    /// 1 in the last layer's dispatch: turn the norms into factors.
    pub finish: u32,
    /// C, each row's largest gradient norm.
    pub max_norm: f32,
    /// The rows the loss gradient was divided by (B).
    pub loss_rows: f32,
    /// B over the expected batch, what each factor also carries.
    pub row_scale: f32,
}

/// shaders/dp_sgd.wgsl's dp_scale_rows: dZ (rows, cols) rows times their factors.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ScaleRowsParams {
    /// Rows B.
    pub rows: u32,
    /// The layer's units.
    pub cols: u32,
    /// Zero; pads the struct to 16 bytes, as the WGSL struct is padded.
    pub _pad: [u32; 2],
}

/// shaders/dp_sgd.wgsl's dp_add_noise: one layer's gradients plus Gaussian noise.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct NoiseParams {
    /// Elements of the weight gradient (IN * OUT).
    pub weights: u32,
    /// Elements of the bias gradient (OUT).
    pub biases: u32,
    /// 2l for layer l: the weights' tensor number (the bias is 2l + 1).
    pub tensor: u32,
    /// The noise's standard deviation.
    pub std: f32,
    /// The Philox key ([`crate::noise::key`]).
    pub key: [u32; 2],
    /// Zero; pads the struct to 32 bytes, as the WGSL struct is padded.
    pub _pad: [u32; 2],
}

/// shaders/regression.wgsl: a batch's per-column sums of |e| and e².
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RegressionParams {
    /// Rows B of the batch.
    pub rows: u32,
    /// Output columns OUT.
    pub cols: u32,
    /// The first metrics slot: column c's sums go to slot + 2c and slot + 2c + 1.
    pub slot: u32,
    /// 1: the answer is sigmoid(output) (a bce logit); 0: the output itself.
    pub sigmoid: u32,
}
