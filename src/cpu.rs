//! The CPU reference: the same math as the WGSL kernels, written as plain,
//! readable ndarray with the kernels' names (`matmul`, `bias_add`,
//! `sigmoid_forward`, ...). It exists to prove the GPU right and to train where
//! there is no GPU; it is not a fast path in disguise. Shapes are row-major:
//! B is the batch, IN and OUT a layer's fan-in and fan-out.

use ndarray::{s, Array, Array1, Array2, ArrayView2, Dimension, Zip};

use crate::data::{batches, Batch, Dataset};
use crate::error::Result;
use crate::model::{Layer, MlpSpec, Params};
use crate::train::{TrainConfig, Trainer};

/// out(M, N) = op(a) · op(b), where op transposes when asked:
/// a is (M, K) or, with `trans_a`, (K, M); b is (K, N) or, with `trans_b`, (N, K).
pub fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>, trans_a: bool, trans_b: bool) -> Array2<f32> {
    let a = if trans_a { a.reversed_axes() } else { a };
    let b = if trans_b { b.reversed_axes() } else { b };
    a.dot(&b)
}

/// out(B, N) += bias(N), broadcast over rows.
pub fn bias_add(out: &mut Array2<f32>, bias: &Array1<f32>) {
    *out += bias;
}

/// values = 1 / (1 + exp(-values)), in place: z (B, N) becomes a (B, N).
pub fn sigmoid_forward(values: &mut Array2<f32>) {
    values.mapv_inplace(|z| 1.0 / (1.0 + (-z).exp()));
}

/// values *= act * (1 - act), in place: dA (B, N) becomes dZ (B, N), where act
/// (B, N) is the forward output.
pub fn sigmoid_backward(values: &mut Array2<f32>, act: ArrayView2<f32>) {
    Zip::from(values)
        .and(act)
        .for_each(|g, &a| *g *= a * (1.0 - a));
}

/// pred and target are (B, OUT). Returns dLoss/dpred (B, OUT) for the loss
/// mean((pred - target)^2) over all B * OUT elements, and the sum of squares
/// (the host divides by the element count, as for the GPU's partial sums).
pub fn mse_grad(pred: ArrayView2<f32>, target: ArrayView2<f32>) -> (Array2<f32>, f32) {
    let scale = 2.0 / pred.len() as f32;
    let diff = &pred - &target;
    let sum_sq = diff.iter().map(|d| d * d).sum();
    (diff * scale, sum_sq)
}

/// out(N) = sum over rows of input (B, N): the bias gradient.
pub fn column_sum(input: ArrayView2<f32>) -> Array1<f32> {
    input.sum_axis(ndarray::Axis(0))
}

/// weights -= lr * grads, any shape.
pub fn sgd_update<D: Dimension>(weights: &mut Array<f32, D>, grads: &Array<f32, D>, lr: f32) {
    Zip::from(weights).and(grads).for_each(|w, &g| *w -= lr * g);
}

/// x is (B, IN). Returns each layer's output a_l = sigmoid(a_{l-1} · W_l + b_l),
/// (B, OUT_l), first layer first; the last one is the prediction.
pub fn forward(params: &Params, x: ArrayView2<f32>) -> Vec<Array2<f32>> {
    let mut acts: Vec<Array2<f32>> = Vec::with_capacity(params.layers.len());
    for layer in &params.layers {
        let input = acts.last().map_or(x, |a| a.view());
        let mut z = matmul(input, layer.w.view(), false, false);
        bias_add(&mut z, &layer.b);
        sigmoid_forward(&mut z);
        acts.push(z);
    }
    acts
}

/// The gradients of the batch's mean squared error with respect to every
/// parameter (same shapes as `params`), and the batch's sum of squared errors.
/// x is (B, IN), y is (B, OUT), acts are `forward(params, x)`.
pub fn backward(
    params: &Params,
    x: ArrayView2<f32>,
    acts: &[Array2<f32>],
    y: ArrayView2<f32>,
) -> (Params, f32) {
    let pred = acts.last().expect("a network has at least one layer");
    let (mut grad, sum_sq) = mse_grad(pred.view(), y);
    let mut grads = Vec::with_capacity(params.layers.len());
    for l in (0..params.layers.len()).rev() {
        sigmoid_backward(&mut grad, acts[l].view()); // grad is now dZ_l (B, OUT_l)
        let input = if l == 0 { x } else { acts[l - 1].view() };
        let w = matmul(input, grad.view(), true, false); // (IN_l, OUT_l)
        let b = column_sum(grad.view()); // (OUT_l)
        if l > 0 {
            grad = matmul(grad.view(), params.layers[l].w.view(), false, true); // dA_{l-1} (B, IN_l)
        }
        grads.push(Layer { w, b });
    }
    grads.reverse();
    (Params { layers: grads }, sum_sq)
}

/// Mean squared error of `params` over the whole data set.
pub fn loss(params: &Params, data: &Dataset) -> f32 {
    let acts = forward(params, data.x.view());
    let pred = acts.last().expect("a network has at least one layer");
    let (_, sum_sq) = mse_grad(pred.view(), data.y.view());
    sum_sq / pred.len() as f32
}

/// Trains on the host with the functions above, batch by batch, in order.
pub struct CpuTrainer {
    params: Params,
    data: Dataset,
    batches: Vec<Batch>,
    lr: f32,
}

impl CpuTrainer {
    pub fn new(
        spec: &MlpSpec,
        params: Params,
        data: Dataset,
        config: &TrainConfig,
    ) -> Result<Self> {
        config.check(spec, &data)?;
        let batches = batches(data.len(), config.batch_size.unwrap_or(data.len()));
        Ok(Self {
            params,
            data,
            batches,
            lr: config.lr,
        })
    }

    /// One gradient-descent step on one batch; returns its sum of squared errors.
    fn step(&mut self, batch: Batch) -> f32 {
        let rows = s![batch.start..batch.start + batch.rows, ..];
        let x = self.data.x.slice(rows);
        let y = self.data.y.slice(rows);
        let acts = forward(&self.params, x);
        let (grads, sum_sq) = backward(&self.params, x, &acts, y);
        for (layer, grad) in self.params.layers.iter_mut().zip(&grads.layers) {
            sgd_update(&mut layer.w, &grad.w, self.lr);
            sgd_update(&mut layer.b, &grad.b, self.lr);
        }
        sum_sq
    }
}

impl Trainer for CpuTrainer {
    fn device(&self) -> String {
        "cpu".into()
    }

    fn steps_per_epoch(&self) -> usize {
        self.batches.len()
    }

    fn train(&mut self, epochs: usize) -> Result<Vec<f32>> {
        let elements = self.data.y.len() as f32;
        let mut losses = Vec::with_capacity(epochs);
        for _ in 0..epochs {
            let mut sum_sq = 0.0;
            for batch in self.batches.clone() {
                sum_sq += self.step(batch);
            }
            losses.push(sum_sq / elements);
        }
        Ok(losses)
    }

    fn evaluate(&mut self) -> Result<f32> {
        Ok(loss(&self.params, &self.data))
    }

    fn params(&mut self) -> Result<Params> {
        Ok(self.params.clone())
    }
}
