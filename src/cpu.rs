//! The CPU reference: the same math as the WGSL kernels, written as plain,
//! readable ndarray with the kernels' names (`matmul`, `bias_add`,
//! `sigmoid_forward`, `adam_update`, ...). It exists to prove the GPU right and
//! to train where there is no GPU. It is not a fast path in disguise: its
//! speed comes only from ndarray itself (its sgemm and rayon maps, shared
//! among the threads of [`crate::threads`]) and from ops that also come as `*_into`, writing into buffers
//! the trainer makes once, so that a training step allocates nothing. Shapes
//! are row-major: B is the batch, IN and OUT a layer's fan-in and fan-out, K
//! the number of classes.

use ndarray::{Array, Array1, Array2, ArrayView1, ArrayView2, Dimension, Zip};

use crate::data::{batches, Batch, Dataset, Shuffler};
use crate::dp::DpSgd;
use crate::dropout::{Dropout, DropoutKey, StepMasks};
use crate::error::{Error, Result};
use crate::model::{Activation, Loss, MlpSpec, Output, Params};
use crate::parallel::{share, Collective};
use crate::train::{Clip, EpochMetrics, Optimizer, OptimizerState, Run, TrainConfig, TrainState, Trainer};

/// out(M, N) = op(a) · op(b), where op transposes when asked:
/// a is (M, K) or, with `trans_a`, (K, M); b is (K, N) or, with `trans_b`, (N, K).
pub fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>, trans_a: bool, trans_b: bool) -> Array2<f32> {
    let rows = if trans_a { a.ncols() } else { a.nrows() };
    let cols = if trans_b { b.nrows() } else { b.ncols() };
    let mut out = Array2::zeros((rows, cols));
    matmul_into(a, b, trans_a, trans_b, &mut out);
    out
}

/// [`matmul`] into out (M, N).
pub fn matmul_into(a: ArrayView2<f32>, b: ArrayView2<f32>, trans_a: bool, trans_b: bool, out: &mut Array2<f32>) {
    let a = if trans_a { a.reversed_axes() } else { a };
    let b = if trans_b { b.reversed_axes() } else { b };
    crate::threads::matmul(a, b, out);
}

/// out(B, N) += bias(N), broadcast over rows.
pub fn bias_add(out: &mut Array2<f32>, bias: &Array1<f32>) {
    *out += bias;
}

/// Element-wise work on at least this many values is split across threads.
const PARALLEL_MIN: usize = 1 << 15;

/// values = f(values), in place; on several threads when there are many.
fn map_in_place(values: &mut Array2<f32>, f: impl Fn(f32) -> f32 + Sync + Send) {
    crate::threads::run(values.len(), PARALLEL_MIN, |parallel| match parallel {
        true => values.par_mapv_inplace(f),
        false => values.mapv_inplace(f),
    });
}

/// values = 1 / (1 + exp(-values)), in place: z (B, N) becomes a (B, N).
pub fn sigmoid_forward(values: &mut Array2<f32>) {
    map_in_place(values, |z| 1.0 / (1.0 + (-z).exp()));
}

/// values *= act * (1 - act), in place: dA (B, N) becomes dZ (B, N), where act
/// (B, N) is the forward output.
pub fn sigmoid_backward(values: &mut Array2<f32>, act: ArrayView2<f32>) {
    Zip::from(values).and(act).for_each(|g, &a| *g *= a * (1.0 - a));
}

/// values = max(values, 0), in place.
pub fn relu_forward(values: &mut Array2<f32>) {
    values.mapv_inplace(|z| z.max(0.0));
}

/// values = 0 where act <= 0, in place (the derivative at 0 is taken as 0).
pub fn relu_backward(values: &mut Array2<f32>, act: ArrayView2<f32>) {
    Zip::from(values).and(act).for_each(|g, &a| {
        if a <= 0.0 {
            *g = 0.0;
        }
    });
}

/// tanh(u) as 1 - 2 / (exp(2u) + 1), as the kernels write it: exact ±1 where
/// exp overflows.
fn tanh_by_exp(u: f32) -> f32 {
    1.0 - 2.0 / ((2.0 * u).exp() + 1.0)
}

/// values = tanh(values), in place, written as the kernel writes it.
pub fn tanh_forward(values: &mut Array2<f32>) {
    map_in_place(values, tanh_by_exp);
}

/// values *= 1 - act^2, in place.
pub fn tanh_backward(values: &mut Array2<f32>, act: ArrayView2<f32>) {
    Zip::from(values).and(act).for_each(|g, &a| *g *= 1.0 - a * a);
}

/// values = values where > 0, else slope * values, in place.
pub fn leaky_relu_forward(values: &mut Array2<f32>, slope: f32) {
    map_in_place(values, move |z| if z > 0.0 { z } else { slope * z });
}

/// values *= 1 where act > 0, else slope, in place: with slope in [0, 1) the
/// output has z's sign (the derivative at 0 is taken as the slope).
pub fn leaky_relu_backward(values: &mut Array2<f32>, act: ArrayView2<f32>, slope: f32) {
    Zip::from(values).and(act).for_each(|g, &a| *g *= if a > 0.0 { 1.0 } else { slope });
}

/// GELU's tanh form: sqrt(2 / pi) and the cubic's factor.
const GELU_SCALE: f32 = 0.797_884_6;
const GELU_CUBIC: f32 = 0.044715;

/// tanh(sqrt(2 / pi) (z + 0.044715 z^3)), the inner term of GELU.
fn gelu_tanh(z: f32) -> f32 {
    tanh_by_exp(GELU_SCALE * (z + GELU_CUBIC * z * z * z))
}

/// values = 0.5 z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z^3))), in place.
pub fn gelu_forward(values: &mut Array2<f32>) {
    map_in_place(values, |z| 0.5 * z * (1.0 + gelu_tanh(z)));
}

/// values *= gelu'(z), in place, where pre (B, N) holds the forward pass's z
/// (GELU's derivative is no function of its output):
/// gelu'(z) = 0.5 (1 + t) + 0.5 z (1 - t^2) sqrt(2 / pi) (1 + 3 * 0.044715 z^2),
/// with the second term 0 where t is ±1, so a z whose square overflows gives
/// 0 there, not 0 * inf = NaN.
pub fn gelu_backward(values: &mut Array2<f32>, pre: ArrayView2<f32>) {
    Zip::from(values).and(pre).for_each(|g, &z| {
        let t = gelu_tanh(z);
        let flat = 1.0 - t * t;
        let tail = if flat == 0.0 { 0.0 } else { 0.5 * z * flat * GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * (z * z)) };
        *g *= 0.5 * (1.0 + t) + tail;
    });
}

/// The forward activation of a layer, in place on its z (B, OUT);
/// `negative_slope` is leaky relu's (unused by the others).
pub fn activation_forward(activation: Activation, negative_slope: f32, values: &mut Array2<f32>) {
    match activation {
        Activation::Sigmoid => sigmoid_forward(values),
        Activation::Relu => relu_forward(values),
        Activation::Tanh => tanh_forward(values),
        Activation::LeakyRelu => leaky_relu_forward(values, negative_slope),
        Activation::Gelu => gelu_forward(values),
        Activation::Identity => {}
    }
}

/// The backward activation, in place: dA (B, OUT) becomes dZ, given the
/// layer's output a (B, OUT), or its z for an activation that
/// [needs it](Activation::needs_pre_activation).
pub fn activation_backward(
    activation: Activation,
    negative_slope: f32,
    values: &mut Array2<f32>,
    given: ArrayView2<f32>,
) {
    match activation {
        Activation::Sigmoid => sigmoid_backward(values, given),
        Activation::Relu => relu_backward(values, given),
        Activation::Tanh => tanh_backward(values, given),
        Activation::LeakyRelu => leaky_relu_backward(values, given, negative_slope),
        Activation::Gelu => gelu_backward(values, given),
        Activation::Identity => {}
    }
}

/// pred and expected are (B, OUT). Returns dLoss/dpred (B, OUT) for the loss
/// mean((pred - expected)^2) over all B * OUT elements, and the sum of squares
/// (divided by the element count later, as the GPU's partial sums are).
pub fn mse_grad(pred: ArrayView2<f32>, expected: ArrayView2<f32>) -> (Array2<f32>, f32) {
    let mut grad = Array2::zeros(pred.raw_dim());
    let sum_sq = mse_grad_into(pred, expected, &mut grad);
    (grad, sum_sq)
}

/// [`mse_grad`] into grad (B, OUT); returns the sum of squares.
pub fn mse_grad_into(pred: ArrayView2<f32>, expected: ArrayView2<f32>, grad: &mut Array2<f32>) -> f32 {
    let scale = 2.0 / pred.len() as f32;
    let mut sum_sq = 0.0;
    Zip::from(grad).and(pred).and(expected).for_each(|g, &p, &e| {
        let diff = p - e;
        sum_sq += diff * diff;
        *g = scale * diff;
    });
    sum_sq
}

/// logits and expected are (B, K), each row of expected summing to m_r: 1,
/// or a class weight w (a one-hot row scaled by it). Returns dLoss/dlogits =
/// (m_r softmax(logits) - expected) / B for the mean over rows of
/// -sum_j expected_j log softmax(logits)_j (w times the row's loss), and the
/// sum of the rows' losses. The row maximum is subtracted first, so no exp
/// overflows.
pub fn softmax_cross_entropy(logits: ArrayView2<f32>, expected: ArrayView2<f32>) -> (Array2<f32>, f32) {
    let mut grad = Array2::zeros(logits.raw_dim());
    let loss_sum = softmax_cross_entropy_into(logits, expected, &mut grad);
    (grad, loss_sum)
}

/// [`softmax_cross_entropy`] into grad (B, K); returns the rows' loss sum.
pub fn softmax_cross_entropy_into(logits: ArrayView2<f32>, expected: ArrayView2<f32>, grad: &mut Array2<f32>) -> f32 {
    let scale = 1.0 / logits.nrows() as f32;
    let mut loss_sum = 0.0;
    for ((z, t), mut g) in logits.rows().into_iter().zip(expected.rows()).zip(grad.rows_mut()) {
        let top = z.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let total: f32 = z.iter().map(|&v| (v - top).exp()).sum();
        let dot: f32 = z.iter().zip(t).map(|(&v, &e)| e * (v - top)).sum();
        // 1 for a one-hot row; a class weight scales the row's target, and so its loss and gradient.
        let mass: f32 = t.iter().sum();
        loss_sum += total.ln() * mass - dot;
        Zip::from(&mut g).and(&z).and(&t).for_each(|g, &v, &e| *g = scale * ((v - top).exp() / total * mass - e));
    }
    loss_sum
}

/// Clips the gradients in place as `clip` says: scaled by min(1, norm /
/// (global L2 norm + 1e-6)), then each clamped to [-value, value]; the same
/// as shaders/grad_norm.wgsl and step_control.wgsl (the GPU sums the squares
/// in another fixed order, so the norms agree to rounding).
pub fn clip_grads(grads: &mut Params, clip: Clip) {
    if let Some(max_norm) = clip.norm {
        let total: f32 = grads.layers.iter().flat_map(|g| g.w.iter().chain(g.b.iter())).map(|v| v * v).sum();
        let factor = (max_norm / (total.sqrt() + 1e-6)).min(1.0);
        for g in &mut grads.layers {
            g.w.mapv_inplace(|v| v * factor);
            g.b.mapv_inplace(|v| v * factor);
        }
    }
    if let Some(value) = clip.value {
        for g in &mut grads.layers {
            g.w.mapv_inplace(|v| v.clamp(-value, value));
            g.b.mapv_inplace(|v| v.clamp(-value, value));
        }
    }
}

/// logits and expected are (B, OUT), each target in [0, 1]. Returns
/// dLoss/dlogits = (sigmoid(logits) - expected) / (B * OUT) for the mean over
/// every element of the binary cross-entropy of sigmoid(logits), and the sum
/// of the elements' losses max(z, 0) - z y + log(1 + exp(-|z|)) (divided by
/// the element count later, as the GPU's partial sums are). That form never
/// overflows, whatever the logits.
pub fn bce_grad(logits: ArrayView2<f32>, expected: ArrayView2<f32>) -> (Array2<f32>, f32) {
    let mut grad = Array2::zeros(logits.raw_dim());
    let loss_sum = bce_grad_into(logits, expected, &mut grad);
    (grad, loss_sum)
}

/// [`bce_grad`] into grad (B, OUT); returns the loss sum.
pub fn bce_grad_into(logits: ArrayView2<f32>, expected: ArrayView2<f32>, grad: &mut Array2<f32>) -> f32 {
    let scale = 1.0 / logits.len() as f32;
    let mut loss_sum = 0.0;
    Zip::from(grad).and(logits).and(expected).for_each(|g, &z, &y| {
        loss_sum += z.max(0.0) - z * y + (1.0 + (-z.abs()).exp()).ln();
        *g = scale * (1.0 / (1.0 + (-z).exp()) - y);
    });
    loss_sum
}

/// The loss gradient with respect to the network output and the batch's loss
/// sum, for any loss.
pub fn loss_grad(loss: Loss, pred: ArrayView2<f32>, expected: ArrayView2<f32>) -> (Array2<f32>, f32) {
    let mut grad = Array2::zeros(pred.raw_dim());
    let loss_sum = loss_grad_into(loss, pred, expected, &mut grad);
    (grad, loss_sum)
}

/// [`loss_grad`] into grad (B, OUT); returns the loss sum.
pub fn loss_grad_into(loss: Loss, pred: ArrayView2<f32>, expected: ArrayView2<f32>, grad: &mut Array2<f32>) -> f32 {
    match loss {
        Loss::Mse => mse_grad_into(pred, expected, grad),
        Loss::CrossEntropy => softmax_cross_entropy_into(pred, expected, grad),
        Loss::Bce => bce_grad_into(pred, expected, grad),
    }
}

/// The column of a row's largest value (ties: the first; 0 for an empty row).
pub fn argmax(row: ArrayView1<f32>) -> usize {
    row.iter().enumerate().fold(0, |best, (j, &v)| if v > row[best] { j } else { best })
}

/// Rows of pred (B, K) whose largest value sits where expected's does (ties:
/// the first column).
pub fn count_correct(pred: ArrayView2<f32>, expected: ArrayView2<f32>) -> usize {
    pred.rows().into_iter().zip(expected.rows()).filter(|(p, e)| argmax(*p) == argmax(*e)).count()
}

/// values (B, K) = softmax of each row, in place: logits become class
/// probabilities. The row maximum is subtracted first, so no exp overflows.
pub fn softmax_rows(values: &mut Array2<f32>) {
    for mut row in values.rows_mut() {
        let top = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - top).exp());
        let total = row.sum();
        row /= total;
    }
}

/// values (B, OUT), the network's output, become what the model predicts, in
/// place: the losses that fuse the output's squashing train on logits, so
/// a softmax output takes [`softmax_rows`] here and a sigmoid output under
/// bce takes [`sigmoid_forward`]; every other output is already the answer.
pub fn output_from_logits(spec: &MlpSpec, values: &mut Array2<f32>) {
    match (spec.output(), spec.loss()) {
        (Output::Softmax, _) => softmax_rows(values),
        (Output::Sigmoid, Loss::Bce) => sigmoid_forward(values),
        (Output::Sigmoid | Output::Identity, _) => {}
    }
}

/// out(B, W) = `source[index[r], :]`: a batch's rows in the epoch's order.
pub fn gather_rows(source: ArrayView2<f32>, index: &[u32]) -> Array2<f32> {
    let mut out = Array2::zeros((index.len(), source.ncols()));
    gather_rows_into(source, index, &mut out);
    out
}

/// [`gather_rows`] into out (B, W).
pub fn gather_rows_into(source: ArrayView2<f32>, index: &[u32], out: &mut Array2<f32>) {
    let width = source.ncols();
    match (source.as_slice(), out.as_slice_mut()) {
        // Whole rows copied as slices (a memcpy each), the usual case.
        (Some(from), Some(to)) if width > 0 => {
            for (row, &i) in to.chunks_exact_mut(width).zip(index) {
                let start = i as usize * width;
                row.copy_from_slice(&from[start..start + width]);
            }
        }
        _ => {
            for (mut row, &i) in out.rows_mut().into_iter().zip(index) {
                row.assign(&source.row(i as usize));
            }
        }
    }
}

/// out(N) = sum over rows of input (B, N): the bias gradient.
pub fn column_sum(input: ArrayView2<f32>) -> Array1<f32> {
    let mut out = Array1::zeros(input.ncols());
    column_sum_into(input, &mut out);
    out
}

/// [`column_sum`] into out (N).
pub fn column_sum_into(input: ArrayView2<f32>, out: &mut Array1<f32>) {
    out.fill(0.0);
    for row in input.rows() {
        *out += &row;
    }
}

/// weights -= lr * (grads + weight_decay * weights), any shape.
pub fn sgd_update<D: Dimension>(weights: &mut Array<f32, D>, grads: &Array<f32, D>, lr: f32, weight_decay: f32) {
    Zip::from(weights).and(grads).for_each(|w, &g| *w -= lr * (g + weight_decay * *w));
}

/// g = grads + weight_decay * weights; velocity = momentum * velocity + g;
/// weights -= lr * velocity.
pub fn momentum_update<D: Dimension>(
    weights: &mut Array<f32, D>,
    grads: &Array<f32, D>,
    velocity: &mut Array<f32, D>,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
) {
    Zip::from(weights).and(grads).and(velocity).for_each(|w, &g, v| {
        let g = g + weight_decay * *w;
        *v = momentum * *v + g;
        *w -= lr * *v;
    });
}

/// Adam's settings, as shaders/adam.wgsl takes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamSettings {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to sqrt(v / c2).
    pub eps: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
}

/// One Adam update at 1-based `step`: g = grads + weight_decay * weights;
/// m, v = the moving averages of g and g^2; weights -= lr * (m / c1) /
/// (sqrt(v / c2) + eps) with c = 1 - beta^step.
pub fn adam_update<D: Dimension>(
    weights: &mut Array<f32, D>,
    grads: &Array<f32, D>,
    m: &mut Array<f32, D>,
    v: &mut Array<f32, D>,
    adam: AdamSettings,
    step: u32,
) {
    let c1 = 1.0 - adam.beta1.powf(step as f32);
    let c2 = 1.0 - adam.beta2.powf(step as f32);
    Zip::from(weights).and(grads).and(m).and(v).for_each(|w, &g, m, v| {
        let g = g + adam.weight_decay * *w;
        *m = adam.beta1 * *m + (1.0 - adam.beta1) * g;
        *v = adam.beta2 * *v + (1.0 - adam.beta2) * g * g;
        *w -= adam.lr * (*m / c1) / ((*v / c2).sqrt() + adam.eps);
    });
}

/// A batch's forward pass, as the backward pass reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Forward {
    /// Each layer's output a_l = act_l(a_{l-1} · W_l + b_l), (B, OUT_l),
    /// first layer first; the last one is the prediction (logits for a
    /// softmax output, or a sigmoid one under bce).
    pub acts: Vec<Array2<f32>>,
    /// Each layer's pre-activation z_l = a_{l-1} · W_l + b_l, (B, OUT_l),
    /// where its activation's derivative [needs it](Activation::needs_pre_activation)
    /// (GELU); None for the other layers, whose derivative is read off a_l.
    pub pre: Vec<Option<Array2<f32>>>,
    /// Each hidden layer's output after dropout (B, OUT_l), what the next
    /// layer and its weight gradient see, in a training step with dropout;
    /// None elsewhere.
    pub dropped: Vec<Option<Array2<f32>>>,
}

impl Forward {
    /// Zeroed room for a forward pass over `rows` rows.
    pub fn new(spec: &MlpSpec, rows: usize) -> Self {
        let pre = spec
            .layer_shapes()
            .enumerate()
            .map(|(l, (_, fan_out))| spec.activation(l).needs_pre_activation().then(|| Array2::zeros((rows, fan_out))))
            .collect();
        Self { acts: layer_buffers(spec, rows), pre, dropped: vec![None; spec.num_layers()] }
    }

    /// [`Forward::new`] with room for the dropped outputs of the hidden
    /// layers `dropout` drops units of.
    pub fn with_dropout(spec: &MlpSpec, rows: usize, dropout: &Dropout) -> Self {
        let mut pass = Self::new(spec, rows);
        let hidden = spec.num_layers() - 1;
        for (l, (_, fan_out)) in spec.layer_shapes().enumerate().take(hidden) {
            if dropout.rate(l) > 0.0 {
                pass.dropped[l] = Some(Array2::zeros((rows, fan_out)));
            }
        }
        pass
    }

    /// The input of layer l (l >= 1): layer l - 1's output, after dropout where it was dropped.
    fn input(&self, l: usize) -> ArrayView2<'_, f32> {
        self.dropped[l - 1].as_ref().unwrap_or(&self.acts[l - 1]).view()
    }

    /// The last layer's output (B, OUT): the network's prediction.
    pub fn output(&self) -> ArrayView2<'_, f32> {
        self.acts.last().expect("a network has at least one layer").view()
    }

    /// Where layer l's activation derivative is evaluated: z_l where kept, else a_l.
    fn given(&self, l: usize) -> ArrayView2<'_, f32> {
        self.pre[l].as_ref().unwrap_or(&self.acts[l]).view()
    }
}

/// x is (B, IN). Returns each layer's output, and the pre-activations the
/// backward pass needs (see [`Forward`]).
pub fn forward(spec: &MlpSpec, params: &Params, x: ArrayView2<f32>) -> Forward {
    let mut pass = Forward::new(spec, x.nrows());
    forward_into(spec, params, x, &mut pass);
    pass
}

/// One (B, OUT_l) matrix per layer, zeroed: room for a batch's outputs or gradients.
pub fn layer_buffers(spec: &MlpSpec, rows: usize) -> Vec<Array2<f32>> {
    spec.layer_shapes().map(|(_, fan_out)| Array2::zeros((rows, fan_out))).collect()
}

/// [`forward`] into `pass` (see [`Forward::new`]).
pub fn forward_into(spec: &MlpSpec, params: &Params, x: ArrayView2<f32>, pass: &mut Forward) {
    forward_train_into(spec, params, x, pass, None);
}

/// [`forward_into`] of a training step: with `dropout`, each hidden layer
/// that drops units also writes its output dropped into `pass.dropped`
/// (which [`Forward::with_dropout`] made room for), and the next layer reads that.
pub fn forward_train_into(
    spec: &MlpSpec,
    params: &Params,
    x: ArrayView2<f32>,
    pass: &mut Forward,
    dropout: Option<StepMasks>,
) {
    let last = params.layers.len() - 1;
    for (l, layer) in params.layers.iter().enumerate() {
        let mut z = std::mem::take(&mut pass.acts[l]);
        let input = if l == 0 { x } else { pass.input(l) };
        matmul_into(input, layer.w.view(), false, false, &mut z);
        bias_add(&mut z, &layer.b);
        if let Some(pre) = &mut pass.pre[l] {
            pre.assign(&z);
        }
        activation_forward(spec.activation(l), spec.negative_slope(), &mut z);
        let key = dropout.and_then(|masks| masks.key(l));
        if let (Some(key), Some(dropped), true) = (key, pass.dropped[l].as_mut(), l < last) {
            mask_into(key, l, z.view(), dropped);
        }
        pass.acts[l] = z;
    }
}

/// Data-parallel: `grads`, the mean gradients of this rank's `rows` rows of a
/// batch of `batch_rows`, become the whole batch's (each rank's scaled by its
/// share, then summed in rank order), and (loss sum, correct count) the batch's.
fn sum_across_ranks(
    ranks: &mut dyn Collective,
    grads: &mut Params,
    (loss_sum, correct): (f32, usize),
    rows: usize,
    batch_rows: usize,
) -> Result<(f32, usize)> {
    let share = rows as f32 / batch_rows as f32;
    // The gradients, then the loss sum and the correct count (exact in f32 below 2^24 rows).
    let mut flat: Vec<f32> =
        grads.layers.iter().flat_map(|l| l.w.iter().chain(l.b.iter())).map(|v| v * share).collect();
    flat.extend([loss_sum, correct as f32]);
    ranks.sum_in_rank_order(&mut flat)?;
    let n = flat.len() - 2;
    let values = grads.layers.iter_mut().flat_map(|l| l.w.iter_mut().chain(l.b.iter_mut()));
    for (v, &summed) in values.zip(&flat[..n]) {
        *v = summed;
    }
    Ok((flat[n], flat[n + 1] as usize))
}

/// Step `step`'s dropout masks under `config`; None without dropout.
fn step_masks(config: &TrainConfig, step: u64) -> Option<StepMasks<'_>> {
    config.dropout.is_on().then_some(StepMasks { dropout: &config.dropout, seed: config.seed, step })
}

/// out = values with the units `key` drops at layer `layer` set to 0 and the
/// kept ones scaled by 1 / (1 - p); element i is row-major in the (B, OUT) block.
fn mask_into(key: DropoutKey, layer: usize, values: ArrayView2<f32>, out: &mut Array2<f32>) {
    let scale = key.scale();
    for (i, (o, &v)) in out.iter_mut().zip(values.iter()).enumerate() {
        *o = if key.keeps(layer as u32, i as u32) { v * scale } else { 0.0 };
    }
}

/// The gradients of the batch's mean loss with respect to every parameter
/// (same shapes as `params`), and the batch's loss sum. x is (B, IN), y is
/// (B, OUT), pass is `forward(spec, params, x)`.
pub fn backward(
    spec: &MlpSpec,
    params: &Params,
    x: ArrayView2<f32>,
    pass: &Forward,
    y: ArrayView2<f32>,
) -> (Params, f32) {
    let mut dacts = layer_buffers(spec, x.nrows());
    let mut grads = params.zeros_like();
    let loss_sum = backward_into(spec, params, x, pass, y, &mut dacts, &mut grads);
    (grads, loss_sum)
}

/// [`backward`] into grads (shaped as params), with dacts (one (B, OUT_l) per
/// layer, see [`layer_buffers`]) for dA and dZ; returns the loss sum.
pub fn backward_into(
    spec: &MlpSpec,
    params: &Params,
    x: ArrayView2<f32>,
    pass: &Forward,
    y: ArrayView2<f32>,
    dacts: &mut [Array2<f32>],
    grads: &mut Params,
) -> f32 {
    backward_train_into(spec, params, x, pass, y, dacts, grads, None)
}

/// [`backward_into`] of a training step with `dropout`, for the pass
/// [`forward_train_into`] made with it: the weight gradients take the dropped
/// inputs, and each hidden layer's dZ is masked and scaled as its output was.
#[allow(clippy::too_many_arguments)] // backward_into's, and the dropout key
pub fn backward_train_into(
    spec: &MlpSpec,
    params: &Params,
    x: ArrayView2<f32>,
    pass: &Forward,
    y: ArrayView2<f32>,
    dacts: &mut [Array2<f32>],
    grads: &mut Params,
    dropout: Option<StepMasks>,
) -> f32 {
    let loss_sum = backward_deltas_into(spec, params, pass, y, dacts, dropout);
    weight_grads_into(x, pass, dacts, grads);
    loss_sum
}

/// The first half of a backward pass: every layer's dZ_l (B, OUT_l) into
/// dacts, from the loss gradient down (dA_{l-1} = dZ_l · W_lᵀ with W_l
/// before the update, then act'), masked as [`backward_train_into`] says;
/// returns the loss sum. DP-SGD scales these rows before the second half.
pub fn backward_deltas_into(
    spec: &MlpSpec,
    params: &Params,
    pass: &Forward,
    y: ArrayView2<f32>,
    dacts: &mut [Array2<f32>],
    dropout: Option<StepMasks>,
) -> f32 {
    let acts = &pass.acts;
    let last = acts.len() - 1;
    let loss_sum = loss_grad_into(spec.loss(), acts[last].view(), y, &mut dacts[last]);
    for l in (0..=last).rev() {
        let (below, here) = dacts.split_at_mut(l);
        let grad = &mut here[0];
        // grad becomes dZ_l (B, OUT_l)
        activation_backward(spec.activation(l), spec.negative_slope(), grad, pass.given(l));
        let key = dropout.and_then(|masks| masks.key(l));
        if let (Some(key), true) = (key, l < last && pass.dropped[l].is_some()) {
            let unmasked = grad.clone();
            mask_into(key, l, unmasked.view(), grad);
        }
        if l > 0 {
            matmul_into(grad.view(), params.layers[l].w.view(), false, true, &mut below[l - 1]);
            // dA_{l-1} (B, IN_l)
        }
    }
    loss_sum
}

/// The second half: dW_l (IN_l, OUT_l) = input_lᵀ · dZ_l and db_l = the
/// column sums of dZ_l, for every layer, from the dZ in dacts.
pub fn weight_grads_into(x: ArrayView2<f32>, pass: &Forward, dacts: &[Array2<f32>], grads: &mut Params) {
    for (l, (grad, layer)) in dacts.iter().zip(&mut grads.layers).enumerate() {
        let input = if l == 0 { x } else { pass.input(l) };
        matmul_into(input, grad.view(), true, false, &mut layer.w);
        column_sum_into(grad.view(), &mut layer.b);
    }
}

/// DP-SGD's per-row squared gradient norms, one layer at a time: norms (B)
/// += (|input_r|^2 + 1) |dZ_r|^2 for input (B, IN) and dZ (B, OUT), the
/// squared norms of row r's weight gradient input_r ⊗ dZ_r and bias gradient
/// dZ_r. Layers are added first to last, each |.|^2 in eight interleaved
/// sums (element i into sum i % 8), as shaders/dp_sgd.wgsl adds them.
pub fn dp_row_norms(input: ArrayView2<f32>, dz: ArrayView2<f32>, norms: &mut Array1<f32>) {
    dp_row_norms_of(input.rows().into_iter().map(sum_squares), dz, norms);
}

/// [`dp_row_norms`] with the inputs' squared norms |input_r|^2 given (the
/// first layer's are its rows', the same every step, so worked out once).
pub fn dp_row_norms_of(input_squares: impl Iterator<Item = f32>, dz: ArrayView2<f32>, norms: &mut Array1<f32>) {
    for ((a2, z), norm) in input_squares.zip(dz.rows()).zip(norms.iter_mut()) {
        *norm += (a2 + 1.0) * sum_squares(z);
    }
}

/// Each row's sum of squares, as [`dp_row_norms`] adds them.
pub fn row_squares(values: ArrayView2<f32>) -> Vec<f32> {
    values.rows().into_iter().map(sum_squares).collect()
}

/// The sum of a row's squares: element i goes to partial sum i % 8, and the
/// eight are added in order, so the loop runs eight lanes wide.
fn sum_squares(row: ArrayView1<f32>) -> f32 {
    let mut lanes = [0.0f32; 8];
    match row.as_slice() {
        Some(values) => {
            let mut chunks = values.chunks_exact(8);
            for chunk in &mut chunks {
                for (lane, v) in lanes.iter_mut().zip(chunk) {
                    *lane += v * v;
                }
            }
            for (lane, v) in lanes.iter_mut().zip(chunks.remainder()) {
                *lane += v * v;
            }
        }
        None => {
            for (i, v) in row.iter().enumerate() {
                lanes[i % 8] += v * v;
            }
        }
    }
    lanes.iter().sum()
}

/// Turns the squared norms (B) into each row's factor on its dZ: the loss
/// gradient of a batch of `loss_rows` rows carries 1 / loss_rows, so row r's
/// own gradient norm is n_r = loss_rows sqrt(norms_r); its factor is
/// min(1, C / (n_r + 1e-6)) times `row_scale` (loss_rows over the expected
/// batch), and 0 for the rows from `count` on (a GPU batch's padding).
pub fn dp_clip_factors(norms: &mut Array1<f32>, max_norm: f32, loss_rows: f32, row_scale: f32, count: usize) {
    for (r, norm) in norms.iter_mut().enumerate() {
        let clip = (max_norm / (loss_rows * norm.sqrt() + crate::dp::NORM_EPSILON)).min(1.0);
        *norm = if r < count { clip * row_scale } else { 0.0 };
    }
}

/// dZ (B, OUT) rows times their factors (B), in place; a 0 factor writes 0.
pub fn dp_scale_rows(dz: &mut Array2<f32>, factors: ArrayView1<f32>) {
    for (mut row, &factor) in dz.rows_mut().into_iter().zip(factors) {
        if factor == 0.0 {
            row.fill(0.0);
        } else {
            row *= factor;
        }
    }
}

/// grads += std * N(0, 1), element i of tensor t (2l for W_l, 2l + 1 for
/// b_l, row-major) drawing [`crate::noise::normal`] at (key, step, t, i).
pub fn dp_add_noise(grads: &mut Params, key: [u32; 2], step: u64, std: f32) {
    let add = |values: &mut [f32], tensor: usize| {
        crate::noise::add_normals(values, key, step, crate::noise::noise_stream(tensor as u32), std);
    };
    for (l, layer) in grads.layers.iter_mut().enumerate() {
        add(layer.w.as_slice_mut().expect("gradients are in standard layout"), 2 * l);
        add(layer.b.as_slice_mut().expect("gradients are in standard layout"), 2 * l + 1);
    }
}

/// Mean loss of `params` over a whole data set, and its correct count.
pub fn evaluate(spec: &MlpSpec, params: &Params, data: &Dataset) -> (f32, usize) {
    let pass = forward(spec, params, data.x.view());
    loss_and_correct(spec, pass.output(), data)
}

/// The mean loss of the network's outputs pred (N, OUT) on `data`, and its correct count.
fn loss_and_correct(spec: &MlpSpec, pred: ArrayView2<f32>, data: &Dataset) -> (f32, usize) {
    let (_, loss_sum) = loss_grad(spec.loss(), pred, data.y.view());
    (loss_sum / spec.loss_divisor(data.len()), count_correct(pred, data.y.view()))
}

/// A data set scored by a model: what every epoch reports of its held-out rows.
pub struct Scored {
    /// Mean loss.
    pub loss: f32,
    /// The share of rows whose argmax matches (meaningful for classes).
    pub accuracy: f32,
    /// For a regression (no classes): the errors of the model's answers
    /// ([`output_from_logits`]) against the targets.
    pub errors: Option<crate::metrics::RegressionReport>,
}

/// [`evaluate`], with the errors of a regression's answers.
pub fn evaluate_scored(spec: &MlpSpec, params: &Params, data: &Dataset) -> Scored {
    let pass = forward(spec, params, data.x.view());
    let pred = pass.output();
    let (loss, correct) = loss_and_correct(spec, pred, data);
    let accuracy = correct as f32 / data.len().max(1) as f32;
    let errors = data.classes.is_none().then(|| {
        let mut answers = pred.to_owned();
        output_from_logits(spec, &mut answers);
        crate::metrics::RegressionReport::new(data.y.view(), answers.view())
    });
    Scored { loss, accuracy, errors }
}

/// What one training step writes, made once per batch size so that a step
/// allocates nothing.
struct StepBuffers {
    rows: usize,
    /// The batch's rows (B, IN) and targets (B, OUT), gathered when shuffling.
    x: Array2<f32>,
    y: Array2<f32>,
    /// Each layer's output a_l (and z_l where kept), then dA_l / dZ_l, (B, OUT_l).
    pass: Forward,
    dacts: Vec<Array2<f32>>,
    grads: Params,
}

impl StepBuffers {
    fn new(spec: &MlpSpec, params: &Params, rows: usize, dropout: &Dropout) -> Self {
        Self {
            rows,
            x: Array2::zeros((rows, spec.inputs())),
            y: Array2::zeros((rows, spec.outputs())),
            pass: Forward::with_dropout(spec, rows, dropout),
            dacts: layer_buffers(spec, rows),
            grads: params.zeros_like(),
        }
    }
}

impl StepBuffers {
    /// Room for `rows` rows instead, in the same allocations while they are
    /// large enough (a DP-SGD sample's size changes every step).
    fn resize(&mut self, rows: usize) {
        if rows == self.rows {
            return;
        }
        let pass = &mut self.pass;
        let per_layer = pass.acts.iter_mut().chain(&mut self.dacts);
        let kept = pass.pre.iter_mut().chain(&mut pass.dropped).flatten();
        for values in [&mut self.x, &mut self.y].into_iter().chain(per_layer).chain(kept) {
            resize_rows(values, rows);
        }
        self.rows = rows;
    }
}

/// values (R, C) become (rows, C), the allocation kept where it has room
/// (the rows' values are for the caller to write).
fn resize_rows(values: &mut Array2<f32>, rows: usize) {
    let cols = values.ncols();
    let (mut flat, _) = std::mem::take(values).into_raw_vec_and_offset();
    flat.resize(rows * cols, 0.0);
    *values = Array2::from_shape_vec((rows, cols), flat).expect("rows * cols values");
}

/// Trains on the host with the functions above.
pub struct CpuTrainer {
    spec: MlpSpec,
    params: Params,
    train: Dataset,
    test: Option<Dataset>,
    config: TrainConfig,
    state: OptimizerState,
    shuffler: Shuffler,
    /// One per batch size of an epoch (the full batch and a shorter last one).
    buffers: Vec<StepBuffers>,
    /// The parameters and optimizer state at the start of the current epoch,
    /// restored when a stop comes mid-epoch.
    epoch_start: (Params, OptimizerState),
    /// The epoch trained next and the plateau scale (see [`Trainer::set_schedule`]).
    schedule: (usize, f32),
    /// With DP-SGD, the buffers of the last step's sample, resized to each
    /// next one's.
    dp_buffers: Option<StepBuffers>,
    /// With DP-SGD, each training row's sum of squares (its share of every
    /// step's first-layer gradient norms); empty otherwise.
    input_squares: Vec<f32>,
    /// Data-parallel ([`crate::parallel`]): the other ranks, with whom each
    /// step's gradients are summed; this trainer steps on its share of each batch.
    collective: Option<Box<dyn Collective>>,
}

impl CpuTrainer {
    /// Copies the run's parameters and data to train them on the host.
    pub fn new(run: &Run) -> Result<Self> {
        Self::for_rank(run, None)
    }

    /// [`CpuTrainer::new`], stepping on this rank's share of each batch
    /// when `collective` is given (see [`CpuTrainer::data_parallel`]).
    fn for_rank(run: &Run, collective: Option<Box<dyn Collective>>) -> Result<Self> {
        run.check()?;
        // A bad WGPU_MLP_THREADS stops the run here, not silently later.
        crate::threads::cpu_threads()?;
        let Run { spec, params, train, test, config } = *run;
        let needed = crate::host::cpu_training_bytes(spec, config, train.len(), test.map_or(0, Dataset::len));
        let advice = "use narrower `layers`, a smaller `batch_size` or fewer rows";
        crate::host::check_host_bytes(&format!("training layers {spec} on the CPU"), needed, advice)?;
        let state = OptimizerState::zeros(config.optimizer, params);
        let shuffler = Shuffler::new(config.shuffle, config.seed);
        // The rows of each step this trainer takes: a whole batch, or its share of one.
        let step_rows = |batch: &Batch| match &collective {
            Some(ranks) => share(batch.rows, ranks.rank(), ranks.ranks()).1,
            None => batch.rows,
        };
        let mut sizes: Vec<usize> = batches(train.len(), config.rows_per_batch(train)).iter().map(step_rows).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let buffers = sizes.into_iter().map(|rows| StepBuffers::new(spec, params, rows, &config.dropout)).collect();
        Ok(Self {
            spec: spec.clone(),
            params: params.clone(),
            train: train.clone(),
            test: test.cloned(),
            config: config.clone(),
            epoch_start: (params.clone(), state.clone()),
            state,
            shuffler,
            buffers,
            schedule: (0, 1.0),
            dp_buffers: None,
            input_squares: if config.dp.is_some() { row_squares(train.x.view()) } else { Vec::new() },
            collective,
        })
    }

    /// [`CpuTrainer::new`] for one rank of a data-parallel run: every step
    /// takes this rank's share of the batch ([`crate::parallel::share`]) and
    /// sums the gradients with the other ranks before the update. Every batch
    /// needs a row per rank; DP-SGD and dropout are not split yet.
    pub fn data_parallel(run: &Run, collective: Box<dyn Collective>) -> Result<Self> {
        run.check()?;
        let config = run.config;
        let bad = |why: String| Err(Error::InvalidInput(why));
        if config.dp.is_some() {
            return bad("data-parallel training does not run DP-SGD (`dp`) yet".into());
        }
        if config.dropout.is_on() {
            return bad("data-parallel training does not drop units (`dropout`) yet".into());
        }
        let ranks = collective.ranks();
        let batches = batches(run.train.len(), config.rows_per_batch(run.train));
        if let Some(short) = batches.iter().map(|b| b.rows).filter(|&rows| rows < ranks).min() {
            return bad(format!(
                "a batch of {short} rows does not split across {ranks} ranks: every step's batch (the last one \
                 too) needs a row per rank; use a larger `batch_size` or fewer ranks"
            ));
        }
        Self::for_rank(run, Some(collective))
    }

    /// One update on a batch of the training set: the rows `order` names when
    /// shuffling, else the batch's rows in place. Returns the batch's loss sum
    /// and correct count (0 unless classifying).
    /// `step` is the step's count from the start of the first run (dropout's key).
    fn step(&mut self, batch: Batch, order: Option<&[u32]>, lr: f32, step: u64) -> Result<(f32, usize)> {
        let batch_rows = batch.rows;
        let batch = match &self.collective {
            Some(ranks) => {
                let (first, rows) = share(batch.rows, ranks.rank(), ranks.ranks());
                Batch { start: batch.start + first, rows }
            }
            None => batch,
        };
        let buffers = self.buffers.iter_mut().find(|b| b.rows == batch.rows).expect("buffers for every batch size");
        let (x, y) = match order {
            Some(order) => {
                let index = &order[batch.start..batch.start + batch.rows];
                gather_rows_into(self.train.x.view(), index, &mut buffers.x);
                gather_rows_into(self.train.y.view(), index, &mut buffers.y);
                (buffers.x.view(), buffers.y.view())
            }
            None => {
                let rows = ndarray::s![batch.start..batch.start + batch.rows, ..];
                (self.train.x.slice(rows), self.train.y.slice(rows))
            }
        };
        let (pass, dacts, grads) = (&mut buffers.pass, &mut buffers.dacts, &mut buffers.grads);
        let key = step_masks(&self.config, step);
        forward_train_into(&self.spec, &self.params, x, pass, key);
        let correct = if self.train.classes.is_some() { count_correct(pass.output(), y) } else { 0 };
        let loss_sum = backward_train_into(&self.spec, &self.params, x, pass, y, dacts, grads, key);
        let (loss_sum, correct) = match &mut self.collective {
            Some(ranks) => sum_across_ranks(ranks.as_mut(), grads, (loss_sum, correct), batch.rows, batch_rows)?,
            None => (loss_sum, correct),
        };
        clip_grads(grads, self.config.clip);
        apply_update(&mut self.params, &mut self.state, self.config.optimizer, grads, lr, self.config.weight_decay);
        Ok((loss_sum, correct))
    }

    /// An epoch's metrics from its steps' loss sum and correct count over
    /// `rows` training rows (a DP-SGD epoch's samples may take none), and
    /// the held-out rows evaluated now.
    fn epoch_metrics(&self, loss_sum: f32, correct: usize, rows: usize) -> EpochMetrics {
        let rows = rows.max(1);
        let classes = self.train.classes.is_some();
        let scored = self.test.as_ref().map(|test| evaluate_scored(&self.spec, &self.params, test));
        let metrics = EpochMetrics {
            train_loss: loss_sum / self.spec.loss_divisor(rows),
            train_accuracy: classes.then(|| correct as f32 / rows as f32),
            val_loss: scored.as_ref().map(|s| s.loss),
            val_accuracy: scored.as_ref().filter(|_| classes).map(|s| s.accuracy),
            val_mae: None,
            val_rmse: None,
            val_r2: None,
            val_outputs: None,
        };
        metrics.with_val_errors(scored.as_ref().and_then(|s| s.errors.as_ref()))
    }

    /// One DP-SGD update on the training rows `rows` (a step's Poisson
    /// sample, any number of them, none included): per-row clipping, the
    /// noise of step `step`, and the update. Returns the rows' loss sum and
    /// correct count.
    fn dp_step(&mut self, dp: DpSgd, rows: &[u32], lr: f32, step: u64) -> (f32, usize) {
        let spec = &self.spec;
        let dropout = &self.config.dropout;
        let buffers = match &mut self.dp_buffers {
            Some(buffers) => {
                buffers.resize(rows.len());
                buffers
            }
            slot => slot.insert(StepBuffers::new(spec, &self.params, rows.len(), dropout)),
        };
        gather_rows_into(self.train.x.view(), rows, &mut buffers.x);
        gather_rows_into(self.train.y.view(), rows, &mut buffers.y);
        let (x, y) = (buffers.x.view(), buffers.y.view());
        let (pass, dacts, grads) = (&mut buffers.pass, &mut buffers.dacts, &mut buffers.grads);
        let key = step_masks(&self.config, step);
        forward_train_into(spec, &self.params, x, pass, key);
        let correct = if self.train.classes.is_some() { count_correct(pass.output(), y) } else { 0 };
        let loss_sum = backward_deltas_into(spec, &self.params, pass, y, dacts, key);
        let mut norms = Array1::zeros(rows.len());
        let input_squares = rows.iter().map(|&r| self.input_squares[r as usize]);
        dp_row_norms_of(input_squares, dacts[0].view(), &mut norms);
        for (l, dz) in dacts.iter().enumerate().skip(1) {
            dp_row_norms(pass.input(l), dz.view(), &mut norms);
        }
        let expected_batch = self.config.rows_per_batch(&self.train) as f64;
        let loss_rows = rows.len() as f32;
        let row_scale = (rows.len() as f64 / expected_batch) as f32;
        dp_clip_factors(&mut norms, dp.max_grad_norm, loss_rows, row_scale, rows.len());
        for dz in dacts.iter_mut() {
            dp_scale_rows(dz, norms.view());
        }
        weight_grads_into(x, pass, dacts, grads);
        dp_add_noise(grads, crate::noise::key(dp.key), step, dp.noise_std(expected_batch));
        apply_update(&mut self.params, &mut self.state, self.config.optimizer, grads, lr, self.config.weight_decay);
        (loss_sum, correct)
    }
}

/// params -= the optimizer's step for `grads` at rate `lr`, moving its state.
fn apply_update(
    params: &mut Params,
    state: &mut OptimizerState,
    optimizer: Optimizer,
    grads: &Params,
    lr: f32,
    weight_decay: f32,
) {
    let layers = params.layers.iter_mut().zip(&grads.layers);
    match (state, optimizer) {
        (OptimizerState::Sgd, _) => {
            for (layer, grad) in layers {
                sgd_update(&mut layer.w, &grad.w, lr, weight_decay);
                sgd_update(&mut layer.b, &grad.b, lr, weight_decay);
            }
        }
        (OptimizerState::Momentum { velocity }, Optimizer::Momentum { momentum }) => {
            for (l, (layer, grad)) in layers.enumerate() {
                let v = &mut velocity.layers[l];
                momentum_update(&mut layer.w, &grad.w, &mut v.w, lr, momentum, weight_decay);
                momentum_update(&mut layer.b, &grad.b, &mut v.b, lr, momentum, weight_decay);
            }
        }
        (OptimizerState::Adam { m, v, step }, Optimizer::Adam { beta1, beta2, eps }) => {
            *step += 1;
            let adam = AdamSettings { lr, beta1, beta2, eps, weight_decay };
            for (l, (layer, grad)) in layers.enumerate() {
                let (m, v) = (&mut m.layers[l], &mut v.layers[l]);
                adam_update(&mut layer.w, &grad.w, &mut m.w, &mut v.w, adam, *step);
                adam_update(&mut layer.b, &grad.b, &mut m.b, &mut v.b, adam, *step);
            }
        }
        _ => unreachable!("the state is built from the same optimizer"),
    }
}

impl Trainer for CpuTrainer {
    fn device(&self) -> String {
        "cpu".into()
    }

    fn communication_seconds(&self) -> Option<f64> {
        self.collective.as_ref().map(|c| c.seconds())
    }

    fn steps_per_epoch(&self) -> usize {
        let (rows, batch) = (self.train.len(), self.config.rows_per_batch(&self.train));
        match self.config.dp {
            Some(_) => crate::dp::steps_per_epoch(batch, rows),
            None => batches(rows, batch).len(),
        }
    }

    fn train_until(&mut self, epochs: usize, stop: &dyn Fn() -> bool) -> Result<Vec<EpochMetrics>> {
        let samples = self.train.len();
        let batches = batches(samples, self.config.rows_per_batch(&self.train));
        let steps = self.steps_per_epoch();
        let q = crate::dp::sample_rate(self.config.rows_per_batch(&self.train), samples);
        let mut history = Vec::new(); // grows with the epochs done, never sized by the count asked for
        for _ in 0..epochs {
            if stop() {
                break;
            }
            // Where this epoch starts, to go back to if it is stopped midway;
            // an epoch of one step cannot be (stop is asked before each step).
            if steps > 1 {
                self.epoch_start.0.copy_from(&self.params);
                self.epoch_start.1.copy_from(&self.state);
            }
            let position = self.shuffler.position();
            let order = self.shuffler.epoch_order(samples);
            // The rows the epoch's steps took: all of them, or with DP-SGD its samples' sizes.
            let (mut loss_sum, mut correct, mut rows) = (0.0, 0, 0);
            let mut stopped = false;
            let (epoch, scale) = self.schedule;
            let first_step = (epoch * steps) as u64;
            for i in 0..steps {
                if stop() {
                    stopped = true;
                    break;
                }
                let step = first_step + i as u64;
                let lr = self.config.lr_schedule.rate(self.config.lr, step, steps, scale);
                let (loss, hits) = match self.config.dp {
                    Some(dp) => {
                        let sample = crate::noise::poisson_rows(crate::noise::key(dp.key), step, samples, q);
                        rows += sample.len();
                        self.dp_step(dp, &sample, lr, step)
                    }
                    None => {
                        let batch = *batches.get(i).expect("one batch per step without DP-SGD");
                        rows += batch.rows;
                        self.step(batch, order.as_deref(), lr, step)?
                    }
                };
                loss_sum += loss;
                correct += hits;
            }
            if stopped {
                self.params.copy_from(&self.epoch_start.0);
                self.state.copy_from(&self.epoch_start.1);
                self.shuffler.set_position(position);
                break;
            }
            self.schedule.0 += 1;
            history.push(self.epoch_metrics(loss_sum, correct, rows));
        }
        Ok(history)
    }

    fn evaluate(&mut self) -> Result<f32> {
        Ok(evaluate(&self.spec, &self.params, &self.train).0)
    }

    fn state(&mut self) -> Result<TrainState> {
        Ok(TrainState {
            params: self.params.clone(),
            optimizer: self.state.clone(),
            shuffle_position: self.shuffler.position(),
        })
    }

    fn restore(&mut self, state: &TrainState) -> Result<()> {
        state.check_fits(&self.params, self.config.optimizer)?;
        self.params = state.params.clone();
        self.state = state.optimizer.clone();
        self.shuffler.set_position(state.shuffle_position);
        Ok(())
    }

    fn set_schedule(&mut self, next_epoch: usize, lr_scale: f32) {
        self.schedule = (next_epoch, lr_scale);
    }
}
