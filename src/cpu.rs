//! The CPU reference: the same math as the WGSL kernels, written as plain,
//! readable ndarray with the kernels' names (`matmul`, `bias_add`,
//! `sigmoid_forward`, `adam_update`, ...). It exists to prove the GPU right and
//! to train where there is no GPU; it is not a fast path in disguise. Shapes are
//! row-major: B is the batch, IN and OUT a layer's fan-in and fan-out, K the
//! number of classes.

use ndarray::{Array, Array1, Array2, ArrayView2, Axis, CowArray, Dimension, Zip};

use crate::data::{batches, Batch, Dataset, Shuffler};
use crate::error::Result;
use crate::model::{Activation, Layer, Loss, MlpSpec, Params};
use crate::train::{EpochMetrics, Optimizer, OptimizerState, TrainConfig, TrainState, Trainer};

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

/// values = tanh(values), in place, written as the kernel writes it.
pub fn tanh_forward(values: &mut Array2<f32>) {
    values.mapv_inplace(|z| 1.0 - 2.0 / ((2.0 * z).exp() + 1.0));
}

/// values *= 1 - act^2, in place.
pub fn tanh_backward(values: &mut Array2<f32>, act: ArrayView2<f32>) {
    Zip::from(values).and(act).for_each(|g, &a| *g *= 1.0 - a * a);
}

/// The forward activation of a layer, in place on its z (B, OUT).
pub fn activation_forward(activation: Activation, values: &mut Array2<f32>) {
    match activation {
        Activation::Sigmoid => sigmoid_forward(values),
        Activation::Relu => relu_forward(values),
        Activation::Tanh => tanh_forward(values),
        Activation::Identity => {}
    }
}

/// The backward activation, in place: dA (B, OUT) becomes dZ given act = a.
pub fn activation_backward(activation: Activation, values: &mut Array2<f32>, act: ArrayView2<f32>) {
    match activation {
        Activation::Sigmoid => sigmoid_backward(values, act),
        Activation::Relu => relu_backward(values, act),
        Activation::Tanh => tanh_backward(values, act),
        Activation::Identity => {}
    }
}

/// pred and expected are (B, OUT). Returns dLoss/dpred (B, OUT) for the loss
/// mean((pred - expected)^2) over all B * OUT elements, and the sum of squares
/// (divided by the element count later, as the GPU's partial sums are).
pub fn mse_grad(pred: ArrayView2<f32>, expected: ArrayView2<f32>) -> (Array2<f32>, f32) {
    let scale = 2.0 / pred.len() as f32;
    let diff = &pred - &expected;
    let sum_sq = diff.iter().map(|d| d * d).sum();
    (diff * scale, sum_sq)
}

/// logits and expected are (B, K), each row of expected summing to 1. Returns
/// dLoss/dlogits = (softmax(logits) - expected) / B for the mean over rows of
/// -sum_j expected_j log softmax(logits)_j, and the sum of the rows' losses.
/// The row maximum is subtracted first, so no exp overflows.
pub fn softmax_cross_entropy(logits: ArrayView2<f32>, expected: ArrayView2<f32>) -> (Array2<f32>, f32) {
    let scale = 1.0 / logits.nrows() as f32;
    let mut grad = Array2::zeros(logits.raw_dim());
    let mut loss_sum = 0.0;
    for ((z, t), mut g) in logits.rows().into_iter().zip(expected.rows()).zip(grad.rows_mut()) {
        let top = z.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let total: f32 = z.iter().map(|&v| (v - top).exp()).sum();
        let dot: f32 = z.iter().zip(t).map(|(&v, &e)| e * (v - top)).sum();
        loss_sum += total.ln() - dot;
        Zip::from(&mut g).and(&z).and(&t).for_each(|g, &v, &e| *g = scale * ((v - top).exp() / total - e));
    }
    (grad, loss_sum)
}

/// The loss gradient with respect to the network output and the batch's loss
/// sum, for either loss.
pub fn loss_grad(loss: Loss, pred: ArrayView2<f32>, expected: ArrayView2<f32>) -> (Array2<f32>, f32) {
    match loss {
        Loss::Mse => mse_grad(pred, expected),
        Loss::CrossEntropy => softmax_cross_entropy(pred, expected),
    }
}

/// Rows of pred (B, K) whose largest value sits where expected's does (ties:
/// the first column).
pub fn count_correct(pred: ArrayView2<f32>, expected: ArrayView2<f32>) -> usize {
    let argmax = |row: ndarray::ArrayView1<f32>| {
        row.iter().enumerate().fold(0, |best, (j, &v)| if v > row[best] { j } else { best })
    };
    pred.rows().into_iter().zip(expected.rows()).filter(|(p, e)| argmax(*p) == argmax(*e)).count()
}

/// out(B, W) = source[index[r], :]: a batch's rows in the epoch's order.
pub fn gather_rows(source: ArrayView2<f32>, index: &[u32]) -> Array2<f32> {
    let rows: Vec<usize> = index.iter().map(|&i| i as usize).collect();
    source.select(Axis(0), &rows)
}

/// out(N) = sum over rows of input (B, N): the bias gradient.
pub fn column_sum(input: ArrayView2<f32>) -> Array1<f32> {
    input.sum_axis(Axis(0))
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
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
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

/// x is (B, IN). Returns each layer's output a_l = act_l(a_{l-1} · W_l + b_l),
/// (B, OUT_l), first layer first; the last one is the prediction (logits for
/// a softmax output).
pub fn forward(spec: &MlpSpec, params: &Params, x: ArrayView2<f32>) -> Vec<Array2<f32>> {
    let mut acts: Vec<Array2<f32>> = Vec::with_capacity(params.layers.len());
    for (l, layer) in params.layers.iter().enumerate() {
        let input = acts.last().map_or(x, |a| a.view());
        let mut z = matmul(input, layer.w.view(), false, false);
        bias_add(&mut z, &layer.b);
        activation_forward(spec.activation(l), &mut z);
        acts.push(z);
    }
    acts
}

/// The gradients of the batch's mean loss with respect to every parameter
/// (same shapes as `params`), and the batch's loss sum. x is (B, IN), y is
/// (B, OUT), acts are `forward(spec, params, x)`.
pub fn backward(
    spec: &MlpSpec,
    params: &Params,
    x: ArrayView2<f32>,
    acts: &[Array2<f32>],
    y: ArrayView2<f32>,
) -> (Params, f32) {
    let pred = acts.last().expect("a network has at least one layer");
    let (mut grad, loss_sum) = loss_grad(spec.loss(), pred.view(), y);
    let mut grads = Vec::with_capacity(params.layers.len());
    for l in (0..params.layers.len()).rev() {
        activation_backward(spec.activation(l), &mut grad, acts[l].view()); // grad is now dZ_l (B, OUT_l)
        let input = if l == 0 { x } else { acts[l - 1].view() };
        let w = matmul(input, grad.view(), true, false); // (IN_l, OUT_l)
        let b = column_sum(grad.view()); // (OUT_l)
        if l > 0 {
            grad = matmul(grad.view(), params.layers[l].w.view(), false, true); // dA_{l-1} (B, IN_l)
        }
        grads.push(Layer { w, b });
    }
    grads.reverse();
    (Params { layers: grads }, loss_sum)
}

/// The loss divisor of one row: MSE averages over every output element,
/// cross-entropy over rows.
pub fn loss_elements_per_row(spec: &MlpSpec) -> usize {
    match spec.loss() {
        Loss::Mse => spec.outputs(),
        Loss::CrossEntropy => 1,
    }
}

/// Mean loss of `params` over a whole data set, and its correct count.
pub fn evaluate(spec: &MlpSpec, params: &Params, data: &Dataset) -> (f32, usize) {
    let acts = forward(spec, params, data.x.view());
    let pred = acts.last().expect("a network has at least one layer");
    let (_, loss_sum) = loss_grad(spec.loss(), pred.view(), data.y.view());
    let loss = loss_sum / (data.len() * loss_elements_per_row(spec)) as f32;
    (loss, count_correct(pred.view(), data.y.view()))
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
}

impl CpuTrainer {
    pub fn new(
        spec: &MlpSpec,
        params: Params,
        train: Dataset,
        test: Option<Dataset>,
        config: &TrainConfig,
    ) -> Result<Self> {
        config.check(spec, &train, test.as_ref())?;
        let state = OptimizerState::zeros(config.optimizer, &params);
        let shuffler = Shuffler::new(config.shuffle, config.seed);
        Ok(Self { spec: spec.clone(), params, train, test, config: config.clone(), state, shuffler })
    }

    /// One update on a batch of the training set: the rows `order` names when
    /// shuffling, else the batch's rows in place. Returns the batch's loss sum
    /// and correct count (0 unless classifying).
    fn step(&mut self, batch: Batch, order: Option<&[u32]>) -> (f32, usize) {
        let (x, y) = match order {
            Some(order) => {
                let index = &order[batch.start..batch.start + batch.rows];
                (gather_rows(self.train.x.view(), index).into(), gather_rows(self.train.y.view(), index).into())
            }
            None => {
                let rows = ndarray::s![batch.start..batch.start + batch.rows, ..];
                (CowArray::from(self.train.x.slice(rows)), CowArray::from(self.train.y.slice(rows)))
            }
        };
        let acts = forward(&self.spec, &self.params, x.view());
        let pred = acts[acts.len() - 1].view();
        let correct = if self.train.classes.is_some() { count_correct(pred, y.view()) } else { 0 };
        let (grads, loss_sum) = backward(&self.spec, &self.params, x.view(), &acts, y.view());
        let (lr, weight_decay) = (self.config.lr, self.config.weight_decay);
        let layers = self.params.layers.iter_mut().zip(&grads.layers);
        match (&mut self.state, self.config.optimizer) {
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
        (loss_sum, correct)
    }
}

impl Trainer for CpuTrainer {
    fn device(&self) -> String {
        "cpu".into()
    }

    fn steps_per_epoch(&self) -> usize {
        batches(self.train.len(), self.config.rows_per_batch(&self.train)).len()
    }

    fn train(&mut self, epochs: usize) -> Result<Vec<EpochMetrics>> {
        let samples = self.train.len();
        let mut history = Vec::with_capacity(epochs);
        for _ in 0..epochs {
            let order = self.shuffler.epoch_order(samples);
            let (mut loss_sum, mut correct) = (0.0, 0);
            for batch in batches(samples, self.config.rows_per_batch(&self.train)) {
                let (loss, hits) = self.step(batch, order.as_deref());
                loss_sum += loss;
                correct += hits;
            }
            let train_loss = loss_sum / (samples * loss_elements_per_row(&self.spec)) as f32;
            let classes = self.train.classes.is_some();
            let test = self.test.as_ref().map(|test| (evaluate(&self.spec, &self.params, test), test.len()));
            history.push(EpochMetrics {
                train_loss,
                train_accuracy: classes.then(|| correct as f32 / samples as f32),
                test_loss: test.map(|((loss, _), _)| loss),
                test_accuracy: test.filter(|_| classes).map(|((_, hits), n)| hits as f32 / n as f32),
            });
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
        state.check_fits(&self.params)?;
        if std::mem::discriminant(&state.optimizer) != std::mem::discriminant(&self.state) {
            return Err(crate::error::Error::InvalidInput("the saved optimizer state is for another optimizer".into()));
        }
        self.params = state.params.clone();
        self.state = state.optimizer.clone();
        self.shuffler.set_position(state.shuffle_position);
        Ok(())
    }
}
