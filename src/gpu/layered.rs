//! The GPU trainer. Construction uploads the parameters and data and builds
//! every buffer, uniform and bind group; a step then only records its
//! dispatches into one command encoder and submits it once.
//!
//! Buffers (B = rows of the largest batch, N = training rows, T = test rows):
//!   params, grads    every W_l (IN_l, OUT_l) and b_l (OUT_l), one flat buffer
//!                    each with the same layout, so one update covers all;
//!                    velocity, or m and v, for momentum and Adam, likewise
//!   train.x, .y      (N, IN), (N, OUT) in 1 to 4 chunks, uploaded once
//!   test.x, .y       (T, IN), (T, OUT), likewise
//!   train.order      (N) u32 per epoch of a read-back when shuffling (grown
//!                    to the longest `train` call so far, at most
//!                    [`order_epochs`]), else one: the epochs' row orders, written
//!                    once per read-back
//!   test.order       (T) u32: 0, 1, 2, ...
//!   batch.index      (B) u32: the step's slice of an order, copied on the GPU
//!   batch.x, .y      (B, IN), (B, OUT): the step's rows, gathered by index
//!   act_l, dact_l    (B, OUT_l): layer outputs a_l and their gradients
//!   pre_l            (B, OUT_l): z_l, only for a layer whose activation's
//!                    derivative needs it (GELU)
//!   partials         one partial loss or correct count per workgroup
//!   metrics          (S): running sums of the metrics the run has (train loss,
//!                    and train correct, test loss, test correct as they apply)
//!   ring             (S * E): each epoch's metrics, mapped and read back
//!                    together (it is its own staging buffer); E grows to the
//!                    longest `train` call so far, at most RING_EPOCHS

use ndarray::Array2;

use crate::data::{batches, Batch, Dataset, Shuffler};
use crate::dp::DpSgd;
use crate::dropout::Dropout;
use crate::error::{Error, Result};
use crate::model::{Loss, MlpSpec, Params};
use crate::schedule::LrSchedule;
use crate::train::{EpochMetrics, Optimizer, OptimizerState, Run, TrainConfig, TrainState, Trainer};

use super::context::{GpuContext, Region};
use super::dp_steps::DpSampling;
use super::kernels::{Dispatch, Kernels, MAX_CHUNKS};
use super::metrics::MetricSlots;
use super::param_layout::ParamLayout;
use super::uniforms::{
    AdamParams, Epilogue, MatmulParams, MomentumParams, RowNormParams, ADAM_STATE_LEN, GRAD_NORM_GROUPS, NO_CLIP_VALUE,
    STEP_CONTROL_LEN,
};

use wgpu::BufferUsages as Usage;

const STORAGE: Usage = Usage::STORAGE.union(Usage::COPY_SRC).union(Usage::COPY_DST);
/// Steps recorded into one command buffer before it is submitted: enough to
/// spread a submit's cost thin, few enough to bound the recorded commands.
const STEPS_PER_SUBMIT: usize = 64;

/// Epochs whose metrics the ring holds: a `train` call of more epochs reads
/// back once per this many (or per [`order_epochs`] when shuffling).
pub const RING_EPOCHS: usize = 1000;
/// The shuffled row orders uploaded for one read-back take at most this many
/// bytes, so a long read-back interval on a large data set stays small.
const MAX_ORDER_BYTES: usize = 16 << 20;

/// Epochs of shuffled row orders one read-back can hold for `rows` training
/// rows: at least 1, at most [`RING_EPOCHS`].
pub fn order_epochs(rows: usize) -> usize {
    (MAX_ORDER_BYTES / (4 * rows.max(1))).clamp(1, RING_EPOCHS)
}

/// A data set on the GPU: inputs and targets in chunks the gather kernel reads.
struct GpuData {
    x: Vec<wgpu::Buffer>,
    y: Vec<wgpu::Buffer>,
    /// Rows per chunk of x and of y.
    x_chunk_rows: u32,
    y_chunk_rows: u32,
    /// The row orders the batches take, `rows` u32 each: one per epoch of a
    /// read-back when shuffling the training set, else one, 0, 1, 2, ...
    order: wgpu::Buffer,
    rows: usize,
}

impl GpuData {
    /// Uploads `data` with room for `orders` row orders, each 0, 1, 2, ... at first.
    fn upload(ctx: &GpuContext, name: &str, data: &Dataset, orders: usize) -> Result<Self> {
        let (x, x_chunk_rows) = upload_chunks(ctx, &format!("{name}.x"), &data.x)?;
        let (y, y_chunk_rows) = upload_chunks(ctx, &format!("{name}.y"), &data.y)?;
        let identity: Vec<u32> = (0..orders).flat_map(|_| 0..data.len() as u32).collect();
        let order = ctx.upload(&format!("{name}.order"), &identity, STORAGE, "use fewer training rows")?;
        Ok(Self { x, y, x_chunk_rows, y_chunk_rows, order, rows: data.len() })
    }
}

/// Splits (rows, width) into at most [`MAX_CHUNKS`] buffers of whole rows,
/// each within one storage binding; returns them and the rows per chunk.
fn upload_chunks(ctx: &GpuContext, label: &str, values: &Array2<f32>) -> Result<(Vec<wgpu::Buffer>, u32)> {
    let (rows, width) = values.dim();
    let binding = ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size);
    let chunk_rows = ((binding / 4) as usize / width).clamp(1, u32::MAX as usize);
    if rows.div_ceil(chunk_rows) > MAX_CHUNKS {
        return Err(Error::ExceedsLimit {
            what: format!("{label} ({rows} x {width} floats)"),
            needed: (rows * width * 4) as u64,
            unit: "bytes",
            limit: "max_storage_buffer_binding_size (times 4 chunks)",
            allowed: binding * MAX_CHUNKS as u64,
            advice: "use fewer samples or narrower inputs",
        });
    }
    let flat = values.as_standard_layout();
    let flat = flat.as_slice().expect("standard layout is contiguous");
    let chunks = flat
        .chunks(chunk_rows * width)
        .enumerate()
        .map(|(c, chunk)| ctx.upload(&format!("{label}[{c}]"), chunk, STORAGE, "use fewer samples"))
        .collect::<Result<Vec<_>>>()?;
    Ok((chunks, chunk_rows as u32))
}

/// The recorded work of one batch size (a run has at most a few: the batch
/// size and the smaller last batches of the training and test sets).
struct StepPlan {
    rows: usize,
    /// batch.x and batch.y from the training set, then from the test set.
    gather_train: [Dispatch; 2],
    gather_test: Option<[Dispatch; 2]>,
    /// One fused matmul + bias + activation per layer.
    forward: Vec<Dispatch>,
    /// A training step's forward where it differs (dropout: each hidden
    /// layer's matmul also writes its output masked, the next layer reading that).
    forward_train: Option<Vec<Dispatch>>,
    /// The loss gradient and the sums of loss (and correct rows) into the
    /// training metrics, or into the test metrics.
    loss_train: Vec<Dispatch>,
    loss_test: Vec<Dispatch>,
    /// The last layer's activation backward, then last layer first: dW, db
    /// and dX (with the activation backward of the layer below fused in).
    backward: Vec<Dispatch>,
    /// A DP-SGD step's dispatches whose rows each step cuts to its sample's
    /// (none in other plans).
    row_bounds: Vec<RowBound>,
}

/// A word of a dispatch's params that a DP-SGD step overwrites before it
/// runs: byte `at` of `params` becomes word `count` of the step's dp.counts
/// entry (0: the sample's rows k, 1: k times the outputs). Rows past k then
/// cost no work (a matmul's tiles past m return at once, a dW sums k rows).
struct RowBound {
    params: wgpu::Buffer,
    at: u64,
    count: u64,
}

impl RowBound {
    /// A dispatch whose first params word (rows, m or len) takes the count.
    fn first_word(dispatch: &Dispatch, count: u64) -> Self {
        Self { params: dispatch.params_buffer().clone(), at: 0, count }
    }
}

/// The layered GPU path: one dispatch per op (matmul with its epilogue, loss,
/// gather, update), any depth and width, on the parameters, data and buffers
/// listed in the module docs. [`super::FusedTrainer`] is the other path, for
/// nets small enough for one kernel.
pub struct LayeredTrainer {
    ctx: GpuContext,
    /// Its products' matmul kernel, as [`Kernels::matmul_description`] says.
    matmul: String,
    spec: MlpSpec,
    layout: ParamLayout,
    params: wgpu::Buffer,
    train: GpuData,
    test: Option<GpuData>,
    batch_index: wgpu::Buffer,
    metrics: wgpu::Buffer,
    slots: MetricSlots,
    ring: wgpu::Buffer,
    train_batches: Vec<(Batch, usize)>,
    test_batches: Vec<(Batch, usize)>,
    plans: Vec<StepPlan>,
    update: Vec<Dispatch>,
    optimizer: OptimizerBuffers,
    /// What the update reads ([`STEP_CONTROL_LEN`] floats): the learning
    /// rate (the run's `lr`, or with a schedule each step's rate, copied in
    /// from `rates` before its update), the norm-clipping factor (1, or
    /// written each step by the clipping dispatches), the clip value.
    control: wgpu::Buffer,
    /// The rates of the steps of the epochs recorded ahead, one per step
    /// (grown as chunks need); unused with a constant rate.
    rates: wgpu::Buffer,
    /// With dropout, the step counts of the steps recorded ahead (u32, grown
    /// as chunks need), each copied into the control before its step: the
    /// masks' key.
    steps: Option<wgpu::Buffer>,
    /// The run's base rate and schedule, and where the schedule stands (the
    /// epoch trained next, the plateau scale).
    lr: (f32, LrSchedule),
    schedule: (usize, f32),
    /// The run's update rule, which a restored state must belong to.
    config_optimizer: Optimizer,
    /// Twins of the state buffers ([`LayeredTrainer::state_buffers`]), holding
    /// them as they were at the start of the current epoch.
    snapshot: Vec<wgpu::Buffer>,
    shuffler: Shuffler,
    /// With DP-SGD, its steps' plan and sample buffers.
    dp: Option<DpSteps>,
    /// A regression's test columns' sums of (y - mean y)², for R² (empty otherwise).
    test_totals: Vec<f64>,
    /// Bytes allocated by construction, counted by the context.
    gpu_bytes: u64,
}

/// A DP-SGD run's step: one plan over the room of a Poisson sample, and the
/// buffers each chunk's samples are written to (see [`super::dp_steps`]).
struct DpSteps {
    sampling: DpSampling,
    /// Its own, never shared with the evaluation's plans: a step overwrites
    /// its loss kernels' row counts.
    plan: StepPlan,
    rows: wgpu::Buffer,
    counts: wgpu::Buffer,
    sample: wgpu::Buffer,
}

impl LayeredTrainer {
    /// Uploads the run's parameters and data and builds every dispatch of a step.
    pub fn new(ctx: &GpuContext, kernels: &Kernels, run: &Run) -> Result<Self> {
        run.check()?;
        Self::check_limits(ctx, run.spec, run.config.rows_per_batch(run.train))?;
        let build = || Self::build(ctx, kernels, run);
        let (trainer, gpu_bytes) = ctx.scoped_counting("building the GPU trainer", build)?;
        Ok(Self { gpu_bytes, ..trainer })
    }

    /// What the buffers of a trainer should take, from the sizes alone:
    /// parameters, gradients, optimizer state, the epoch-start copies of the
    /// parameters and optimizer state (for a stop mid-epoch), one batch's
    /// activations (the batch rows, each layer's output and its gradient, and
    /// a GELU layer's z) and the data with its row orders. The small rest
    /// (uniforms, metrics, the ring) is left out: [`LayeredTrainer::gpu_bytes`]
    /// should come within a few percent of this.
    pub fn expected_gpu_bytes(spec: &MlpSpec, config: &TrainConfig, train_rows: usize, test_rows: usize) -> u64 {
        let params = spec.num_params();
        let optimizer_copies = match config.optimizer {
            Optimizer::Sgd => 0,
            Optimizer::Momentum { .. } => 1,
            Optimizer::Adam { .. } => 2,
        };
        let batch = config.batch_size.unwrap_or(train_rows).min(train_rows);
        let layer_outputs: usize = spec.sizes()[1..].iter().sum();
        // With dropout, the dropped output of each hidden layer that drops units too.
        let sizes = spec.sizes();
        let dropped = config.dropout.dropped_width(&sizes[1..sizes.len() - 1]);
        let activations =
            batch * (1 + spec.inputs() + spec.outputs() + 2 * layer_outputs + spec.pre_activation_width() + dropped);
        // One row order at first; shuffled runs grow it at their first read-back.
        let row = spec.inputs() + spec.outputs();
        let data = train_rows * (row + 1) + test_rows * (row + 1);
        // params, grads, optimizer state, and the snapshot of params and state
        let parameter_copies = 2 + optimizer_copies + (1 + optimizer_copies);
        4 * (parameter_copies * params + activations + data) as u64
    }

    /// Device memory this trainer allocated, in bytes.
    pub fn gpu_bytes(&self) -> u64 {
        self.gpu_bytes
    }

    /// Checks, before anything is allocated, that the parameters and one
    /// batch's buffers fit the adapter's limits, so a model too large fails at
    /// once with the limit named instead of after the host has built it.
    pub fn check_limits(ctx: &GpuContext, spec: &MlpSpec, batch_rows: usize) -> Result<()> {
        let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
        let bytes = |floats: usize| (floats as u64).saturating_mul(4);
        ctx.check_size("params", bytes(ParamLayout::new(spec, align).len), true, "use narrower `layers`")?;
        let widest = spec.sizes().iter().max().copied().unwrap_or(1);
        ctx.check_size(
            "one batch of the widest layer",
            bytes(batch_rows.saturating_mul(widest)),
            true,
            "use a smaller `batch_size`",
        )
    }

    fn build(ctx: &GpuContext, kernels: &Kernels, run: &Run) -> Result<Self> {
        let Run { spec, params, train, test, config } = *run;
        let batch_rows = config.rows_per_batch(train);
        let sampling = config.dp.map(|dp| {
            let q = crate::dp::sample_rate(batch_rows, train.len());
            let (room, steps_per_epoch) =
                (crate::dp::capacity(train.len(), q), crate::dp::steps_per_epoch(batch_rows, train.len()));
            DpSampling { dp, q, train_rows: train.len(), room, steps_per_epoch }
        });
        // The step buffers' rows: a batch, or the room of a DP-SGD sample where larger.
        let room = sampling.map_or(batch_rows, |s| s.room.max(batch_rows));
        let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
        let layout = ParamLayout::new(spec, align);
        const MODEL: &str = "use narrower `layers`";
        let params_buf = ctx.upload("params", &layout.pack(params), STORAGE, MODEL)?;
        let grads = ctx.zeros("grads", layout.len, STORAGE, MODEL)?;

        let train_data = GpuData::upload(ctx, "train", train, 1)?;
        let test_data = test.map(|t| GpuData::upload(ctx, "test", t, 1)).transpose()?;

        const BATCH: &str = "use a smaller `batch_size`";
        let batch_index = ctx.zeros("batch.index", room, STORAGE, BATCH)?;
        let batch_x = ctx.zeros("batch.x", room * spec.inputs(), STORAGE, BATCH)?;
        let batch_y = ctx.zeros("batch.y", room * spec.outputs(), STORAGE, BATCH)?;
        let mut acts = Vec::new();
        let mut dacts = Vec::new();
        let mut pre = Vec::new();
        let mut dropped = Vec::new();
        let last = spec.num_layers() - 1;
        for (l, (_, fan_out)) in spec.layer_shapes().enumerate() {
            // A hidden layer's output after dropout, what the next layer reads in training.
            dropped.push(
                (config.dropout.rate(l) > 0.0 && l < last)
                    .then(|| ctx.zeros(&format!("layer{l}.dropped"), room * fan_out, STORAGE, BATCH))
                    .transpose()?,
            );
            acts.push(ctx.zeros(&format!("layer{l}.act"), room * fan_out, STORAGE, BATCH)?);
            dacts.push(ctx.zeros(&format!("layer{l}.dact"), room * fan_out, STORAGE, BATCH)?);
            let keeps_z = spec.activation(l).needs_pre_activation();
            pre.push(keeps_z.then(|| ctx.zeros(&format!("layer{l}.pre"), room * fan_out, STORAGE, BATCH)).transpose()?);
        }
        let most_partials = kernels.partial_count((room * spec.outputs()) as u32)?;
        let partials = ctx.zeros("partials", most_partials as usize, STORAGE, BATCH)?;
        let slots = MetricSlots::new(train.classes.is_some(), test.is_some(), spec.outputs());
        let metrics = ctx.zeros("metrics", slots.count, STORAGE, BATCH)?;
        let ring = ctx.staging("metrics.ring", slots.count)?;
        let clip_value = config.clip.value.unwrap_or(NO_CLIP_VALUE);
        // The step count (its bits) starts at 0; with dropout each step copies its own in.
        let control = ctx.upload("step.control", &[config.lr, 1.0, clip_value, f32::from_bits(0)], STORAGE, MODEL)?;

        let buffers = Buffers {
            params: &params_buf,
            grads: &grads,
            batch_index: &batch_index,
            batch_x: &batch_x,
            batch_y: &batch_y,
            acts: &acts,
            dacts: &dacts,
            pre: &pre,
            dropped: &dropped,
            control: &control,
            dropout: config.dropout.is_on().then_some((&config.dropout, config.seed)),
            partials: &partials,
            metrics: &metrics,
            slots,
            train: &train_data,
            test: test_data.as_ref(),
        };
        let mut plans: Vec<StepPlan> = Vec::new();
        let mut plan_for = |batch: Batch| -> Result<(Batch, usize)> {
            if let Some(i) = plans.iter().position(|p| p.rows == batch.rows) {
                return Ok((batch, i));
            }
            plans.push(plan_step(kernels, &layout, spec, &buffers, batch.rows, None)?);
            Ok((batch, plans.len() - 1))
        };
        let train_batches = batches(train.len(), batch_rows).into_iter().map(&mut plan_for).collect::<Result<_>>()?;
        let test_batches = match test {
            Some(test) => batches(test.len(), batch_rows).into_iter().map(&mut plan_for).collect::<Result<_>>()?,
            None => Vec::new(),
        };
        let dp = sampling.map(|sampling| plan_dp_steps(ctx, kernels, &layout, spec, &buffers, sampling)).transpose()?;
        // Grown to a chunk's steps by `write_growing` when the chunk needs them.
        let rates = ctx.zeros("lr.rates", 1, STORAGE, MODEL)?;
        let keyed_by_step = config.dropout.is_on() || config.dp.is_some();
        let steps = keyed_by_step.then(|| ctx.zeros("step.counts", 1, STORAGE, MODEL)).transpose()?;
        let (update, optimizer) = plan_update(ctx, kernels, &layout, &params_buf, &grads, &control, config)?;
        let mut snapshot = vec![ctx.zeros("snapshot.params", layout.len, STORAGE, MODEL)?];
        match &optimizer {
            OptimizerBuffers::Sgd => {}
            OptimizerBuffers::Momentum { .. } => {
                snapshot.push(ctx.zeros("snapshot.velocity", layout.len, STORAGE, MODEL)?)
            }
            OptimizerBuffers::Adam { .. } => {
                snapshot.push(ctx.zeros("snapshot.adam.state", ADAM_STATE_LEN, STORAGE, MODEL)?);
                snapshot.push(ctx.zeros("snapshot.adam.m", layout.len, STORAGE, MODEL)?);
                snapshot.push(ctx.zeros("snapshot.adam.v", layout.len, STORAGE, MODEL)?);
            }
        }

        Ok(Self {
            ctx: ctx.clone(),
            matmul: kernels.matmul_description(),
            spec: spec.clone(),
            layout,
            params: params_buf,
            train: train_data,
            test: test_data,
            batch_index,
            metrics,
            slots,
            ring,
            train_batches,
            test_batches,
            plans,
            update,
            optimizer,
            control,
            rates,
            steps,
            lr: (config.lr, config.lr_schedule),
            schedule: (0, 1.0),
            config_optimizer: config.optimizer,
            snapshot,
            shuffler: Shuffler::new(config.shuffle, config.seed),
            dp,
            test_totals: match test {
                Some(test) if test.classes.is_none() => {
                    test.y.columns().into_iter().map(crate::metrics::total_squares).collect()
                }
                _ => Vec::new(),
            },
            gpu_bytes: 0,
        })
    }

    /// Trains `epochs` epochs, at most the ring's and the orders' capacity,
    /// with one read-back at the end. `stop` is asked after every submit; a
    /// stop in the middle of an epoch copies back the state saved at its
    /// start (see [`LayeredTrainer::record_snapshot`]).
    fn train_chunk(&mut self, epochs: usize, stop: &dyn Fn() -> bool) -> Result<Vec<EpochMetrics>> {
        if (self.ring.size() / 4) as usize / self.slots.count < epochs {
            // Only copies and maps use the ring, so a larger one needs no new bind group.
            self.ring = self.ctx.staging("metrics.ring", self.slots.count * epochs)?;
        }
        let orders = (self.train.order.size() / 4) as usize / self.train.rows;
        if self.shuffler.is_shuffling() && orders < epochs {
            // Only copies read the orders, so a larger buffer needs no new bind group.
            let len = self.train.rows * epochs;
            self.train.order = self.ctx.zeros("train.order", len, STORAGE, "use a smaller `log_every`")?;
        }
        if stop() {
            return Ok(Vec::new());
        }
        let ctx = self.ctx.clone();
        ctx.scoped("training", || {
            // Every epoch's order, written once; it lands before the first
            // submit below, after everything submitted before. Without
            // shuffling the one order stays 0, 1, 2, ... as uploaded. The
            // shuffler's position before each epoch, for a stop to go back to.
            let mut positions = Vec::new();
            let mut orders = Vec::new();
            for _ in 0..epochs {
                positions.push(self.shuffler.position());
                orders.extend(self.shuffler.epoch_order(self.train.rows).unwrap_or_default());
            }
            let shuffled = self.shuffler.is_shuffling();
            if shuffled {
                self.ctx.queue.write_buffer(&self.train.order, 0, bytemuck::cast_slice(&orders));
            }
            // Each step's learning rate, written once like the orders: the
            // steps copy theirs into `rate`, so none is re-recorded or read back.
            let scheduled = !self.lr.1.is_constant();
            let per_epoch = self.steps_per_epoch();
            let first = (self.schedule.0 * per_epoch) as u64;
            // With DP-SGD, every step's sample, written once like the orders.
            let dp_epoch_rows = match &mut self.dp {
                Some(dp) => {
                    let samples = dp.sampling.draw(first, epochs, per_epoch, self.spec.outputs())?;
                    write_growing(&self.ctx, &mut dp.rows, "dp.rows", &samples.rows)?;
                    write_growing(&self.ctx, &mut dp.counts, "dp.counts", &samples.counts)?;
                    Some(samples.epoch_rows)
                }
                None => None,
            };
            if scheduled {
                let rates = self.lr.1.rates(self.lr.0, first, epochs * per_epoch, per_epoch, self.schedule.1);
                write_growing(&self.ctx, &mut self.rates, "lr.rates", &rates)?;
            }
            // With dropout or DP-SGD, each step's count from the start of the
            // first run (their masks' and noise's key), written once like the rates.
            if let Some(steps) = &mut self.steps {
                let counts: Vec<u32> = (0..(epochs * per_epoch) as u64).map(|k| (first + k) as u32).collect();
                write_growing(&self.ctx, steps, "step.counts", &counts)?;
            }
            let last = per_epoch - 1;
            let mut encoder = self.encoder("steps");
            let mut recorded = 0;
            let mut in_flight = None;
            // Epochs whose steps are all submitted, and whether the next has
            // some submitted too (then the state on the GPU is mid-epoch).
            let (mut whole, mut partial) = (0, false);
            let mut stopped = false;
            'epochs: for epoch in 0..epochs {
                let slot = if shuffled { epoch } else { 0 };
                for i in 0..per_epoch {
                    if i == 0 {
                        // An epoch of one step always ends on a submit's
                        // boundary, so it is never stopped midway.
                        if last > 0 {
                            self.record_snapshot(&mut encoder, true);
                        }
                        self.record_metrics_clear(&mut encoder, 0..self.slots.first_test);
                    }
                    let k = (epoch * per_epoch + i) as u64;
                    let plan = match &self.dp {
                        Some(dp) => {
                            self.record_sample_copies(&mut encoder, dp, k);
                            &dp.plan
                        }
                        None => {
                            let (batch, plan) = self.train_batches[i];
                            self.record_index_copy(&mut encoder, &self.train, slot, batch);
                            &self.plans[plan]
                        }
                    };
                    if scheduled {
                        encoder.copy_buffer_to_buffer(&self.rates, k * 4, &self.control, 0, 4);
                    }
                    if let Some(steps) = &self.steps {
                        encoder.copy_buffer_to_buffer(steps, k * 4, &self.control, 12, 4);
                    }
                    let forward = plan.forward_train.as_ref().unwrap_or(&plan.forward);
                    let step = plan.gather_train.iter().chain(forward).chain(&plan.loss_train);
                    self.record_pass(&mut encoder, "step", step.chain(&plan.backward).chain(&self.update));
                    if i == last {
                        if let Some(test) = &self.test {
                            self.record_test_evaluation(&mut encoder, test);
                        }
                        let size = self.slots.count as u64 * 4;
                        encoder.copy_buffer_to_buffer(&self.metrics, 0, &self.ring, epoch as u64 * size, size);
                    }
                    recorded += 1;
                    if recorded == STEPS_PER_SUBMIT {
                        let index = self.ctx.submit(std::mem::replace(&mut encoder, self.encoder("steps")));
                        recorded = 0;
                        (whole, partial) = if i == last { (epoch + 1, false) } else { (epoch, true) };
                        if let Some(previous) = in_flight.replace(index) {
                            self.ctx.wait_for(previous)?;
                        }
                        if stop() {
                            stopped = true;
                            break 'epochs;
                        }
                    }
                }
            }
            if stopped {
                // What is recorded but not submitted is dropped, and a partly
                // submitted epoch is undone. (A stop at an epoch's end has
                // nothing to undo, but the epochs after it were never run.)
                let mut restore = self.encoder("restore epoch start");
                if partial {
                    self.record_snapshot(&mut restore, false);
                }
                self.ctx.submit(restore);
                self.shuffler.set_position(positions[whole]);
            } else {
                self.ctx.submit(encoder);
                whole = epochs;
            }
            self.schedule.0 += whole;
            if whole == 0 {
                return Ok(Vec::new());
            }
            let sums = self.ctx.map_read(&self.ring, (whole * self.slots.count) as u64)?;
            let test_rows = self.test.as_ref().map(|t| t.rows);
            Ok(match dp_epoch_rows {
                // Each DP-SGD epoch's metrics are over the rows its samples took.
                Some(epoch_rows) => sums
                    .chunks_exact(self.slots.count)
                    .zip(epoch_rows)
                    .flat_map(|(epoch, rows)| {
                        self.slots.decode(epoch, &self.spec, rows.max(1), test_rows, &self.test_totals)
                    })
                    .collect(),
                None => self.slots.decode(&sums, &self.spec, self.train.rows, test_rows, &self.test_totals),
            })
        })
    }

    /// Copies the parameters and the optimizer state to their snapshot twins
    /// (`save`), or back: recorded at the start of every epoch, so a stop in
    /// the middle of one can return to where it began.
    fn record_snapshot(&self, encoder: &mut wgpu::CommandEncoder, save: bool) {
        for (live, copy) in self.state_buffers().into_iter().zip(&self.snapshot) {
            let (from, to) = if save { (live, copy) } else { (copy, live) };
            encoder.copy_buffer_to_buffer(from, 0, to, 0, live.size());
        }
    }

    /// Every buffer a training step changes that a resume needs: the
    /// parameters and the optimizer's state.
    fn state_buffers(&self) -> Vec<&wgpu::Buffer> {
        let mut buffers = vec![&self.params];
        match &self.optimizer {
            OptimizerBuffers::Sgd => {}
            OptimizerBuffers::Momentum { velocity } => buffers.push(velocity),
            OptimizerBuffers::Adam { step, m, v } => buffers.extend([step, m, v]),
        }
        buffers
    }

    fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Copies DP-SGD step `k`'s (of the chunk) sample into batch.index, and
    /// its size into dp.sample and the loss kernels' params.
    fn record_sample_copies(&self, encoder: &mut wgpu::CommandEncoder, dp: &DpSteps, k: u64) {
        let room = dp.sampling.room as u64 * 4;
        encoder.copy_buffer_to_buffer(&dp.rows, k * room, &self.batch_index, 0, room);
        encoder.copy_buffer_to_buffer(&dp.counts, k * 8, &dp.sample, 0, 4);
        for bound in &dp.plan.row_bounds {
            encoder.copy_buffer_to_buffer(&dp.counts, k * 8 + 4 * bound.count, &bound.params, bound.at, 4);
        }
    }

    /// Copies the batch's slice of order number `slot` of `data` into batch.index.
    fn record_index_copy(&self, encoder: &mut wgpu::CommandEncoder, data: &GpuData, slot: usize, batch: Batch) {
        let start = (slot * data.rows + batch.start) as u64 * 4;
        encoder.copy_buffer_to_buffer(&data.order, start, &self.batch_index, 0, batch.rows as u64 * 4);
    }

    fn record_pass<'a>(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        label: &str,
        dispatches: impl Iterator<Item = &'a Dispatch>,
    ) {
        let mut pass =
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
        for dispatch in dispatches {
            dispatch.record(&mut pass);
        }
    }

    /// Zeroes the running sums of slots `slots`.
    fn record_metrics_clear(&self, encoder: &mut wgpu::CommandEncoder, slots: std::ops::Range<usize>) {
        encoder.clear_buffer(&self.metrics, slots.start as u64 * 4, Some(slots.len() as u64 * 4));
    }

    /// Forward passes over every training batch, summing into the training metrics.
    fn record_train_evaluation(&self, encoder: &mut wgpu::CommandEncoder) {
        self.record_metrics_clear(encoder, 0..self.slots.first_test);
        for &(batch, plan) in &self.train_batches {
            let plan = &self.plans[plan];
            self.record_index_copy(encoder, &self.train, 0, batch);
            self.record_pass(
                encoder,
                "evaluate train",
                plan.gather_train.iter().chain(&plan.forward).chain(&plan.loss_train),
            );
        }
    }

    /// Forward passes over every test batch, summing into the test metrics.
    fn record_test_evaluation(&self, encoder: &mut wgpu::CommandEncoder, test: &GpuData) {
        self.record_metrics_clear(encoder, self.slots.first_test..self.slots.count);
        for &(batch, plan) in &self.test_batches {
            let plan = &self.plans[plan];
            let gather = plan.gather_test.as_ref().expect("plans have test gathers when there is a test set");
            self.record_index_copy(encoder, test, 0, batch);
            self.record_pass(encoder, "evaluate test", gather.iter().chain(&plan.forward).chain(&plan.loss_test));
        }
    }
}

/// The buffers a step reads and writes, for [`plan_step`].
#[derive(Clone, Copy)]
struct Buffers<'a> {
    params: &'a wgpu::Buffer,
    grads: &'a wgpu::Buffer,
    batch_index: &'a wgpu::Buffer,
    batch_x: &'a wgpu::Buffer,
    batch_y: &'a wgpu::Buffer,
    acts: &'a [wgpu::Buffer],
    dacts: &'a [wgpu::Buffer],
    /// z_l per layer, for the layers whose activation needs it.
    pre: &'a [Option<wgpu::Buffer>],
    /// Each hidden layer's output after dropout, with dropout.
    dropped: &'a [Option<wgpu::Buffer>],
    /// The step's control values (rate, clipping, step count).
    control: &'a wgpu::Buffer,
    /// Dropout's rates and the seed of its masks, with dropout.
    dropout: Option<(&'a Dropout, u64)>,
    partials: &'a wgpu::Buffer,
    metrics: &'a wgpu::Buffer,
    slots: MetricSlots,
    train: &'a GpuData,
    test: Option<&'a GpuData>,
}

/// What a DP-SGD step binds beyond a plain one (see [`super::dp_steps`]).
#[derive(Clone, Copy)]
struct DpBinding<'a> {
    dp: DpSgd,
    /// q * training rows, what the summed gradients are divided by.
    expected_batch: f64,
    sample: &'a wgpu::Buffer,
    norms: &'a wgpu::Buffer,
}

/// Binds every dispatch of a step over `rows` rows (B below); with `dp`, a
/// DP-SGD step's backward pass (per-row clipping, then noise).
fn plan_step(
    kernels: &Kernels,
    layout: &ParamLayout,
    spec: &MlpSpec,
    bufs: &Buffers,
    rows: usize,
    dp: Option<DpBinding>,
) -> Result<StepPlan> {
    let b = rows as u32;
    let last = layout.layers.len() - 1;
    let (inputs, outputs) = (spec.inputs(), spec.outputs());
    let act = |l: usize| Region::new(&bufs.acts[l], rows * layout.layers[l].fan_out);
    let dact = |l: usize| Region::new(&bufs.dacts[l], rows * layout.layers[l].fan_out);
    let pre = |l: usize| bufs.pre[l].as_ref().map(|z| Region::new(z, rows * layout.layers[l].fan_out));
    // Where layer l's activation derivative is evaluated: its z where kept, else its output.
    let given = |l: usize| pre(l).unwrap_or(act(l));
    let negative_slope = spec.negative_slope();
    let batch_x = Region::new(bufs.batch_x, rows * inputs);
    let batch_y = Region::new(bufs.batch_y, rows * outputs);
    let input = |l: usize| if l == 0 { batch_x } else { act(l - 1) };
    let dropped = |l: usize| bufs.dropped[l].as_ref().map(|d| Region::new(d, rows * layout.layers[l].fan_out));
    // What layer l reads in a training step: the layer below's output after dropout, where dropped.
    let train_input = |l: usize| if l == 0 { batch_x } else { dropped(l - 1).unwrap_or(act(l - 1)) };
    let control = Region::new(bufs.control, STEP_CONTROL_LEN);
    let name = |l: usize, op: &str| format!("B{rows}.layer{l}.{op}");

    // batch.x (B, IN) and batch.y (B, OUT) = the rows batch.index names.
    let index = Region::new(bufs.batch_index, rows);
    let gather = |data: &GpuData, set: &str| -> Result<[Dispatch; 2]> {
        fn chunks(buffers: &[wgpu::Buffer]) -> Vec<Region<'_>> {
            buffers.iter().map(|c| Region::new(c, (c.size() / 4) as usize)).collect()
        }
        Ok([
            kernels.gather_rows(
                &format!("B{rows}.{set}.gather_x"),
                index,
                batch_x,
                &chunks(&data.x),
                data.x_chunk_rows,
            )?,
            kernels.gather_rows(
                &format!("B{rows}.{set}.gather_y"),
                index,
                batch_y,
                &chunks(&data.y),
                data.y_chunk_rows,
            )?,
        ])
    };
    let gather_train = gather(bufs.train, "train")?;
    // What a DP-SGD step cuts to its sample's rows (kept only for a DP plan).
    let mut bounds: Vec<RowBound> = gather_train.iter().map(|d| RowBound::first_word(d, 0)).collect();
    let gather_test = bufs.test.map(|test| gather(test, "test")).transpose()?;

    // With dropout, the masks of hidden layer l in a training step where it
    // drops units (see crate::dropout).
    let mask = |l: usize| {
        let (dropout, seed) = bufs.dropout?;
        let p = dropout.rate(l);
        (p > 0.0).then_some(crate::gpu::uniforms::DropoutMask { control, layer: l as u32, p, seed })
    };
    // act_l (B, OUT) = activation(input (B, IN) · W_l (IN, OUT) + b_l), one
    // dispatch that also keeps z_l (B, OUT) for a GELU layer and, in a
    // training step with dropout, writes the output masked where the next
    // layer reads it.
    let layer_forward = |l: usize, input: Region, op: &str, training: bool| -> Result<Dispatch> {
        let slots = &layout.layers[l];
        let shape = MatmulParams::new(b, slots.fan_in as u32, slots.fan_out as u32, false, false);
        let epilogue = Epilogue::BiasActivation {
            bias: layout.bias(bufs.params, l),
            activation: spec.activation(l),
            negative_slope,
            pre: pre(l),
            dropout: mask(l).zip(dropped(l)).filter(|_| training),
        };
        kernels.matmul_with(&name(l, op), input, layout.weight(bufs.params, l), act(l), shape, epilogue)
    };
    let forward =
        (0..layout.layers.len()).map(|l| layer_forward(l, input(l), "forward", false)).collect::<Result<Vec<_>>>()?;
    if bufs.dropout.is_none() {
        bounds.extend(forward.iter().map(|d| RowBound::first_word(d, 0)));
    }
    // A training step's forward with dropout: each layer reads the one below
    // after its mask, which that layer's matmul wrote.
    let forward_train = match bufs.dropout {
        Some(_) => {
            let mut dispatches = Vec::new();
            for l in 0..layout.layers.len() {
                let matmul = layer_forward(l, train_input(l), "forward_train", true)?;
                bounds.push(RowBound::first_word(&matmul, 0));
                dispatches.push(matmul);
            }
            Some(dispatches)
        }
        None => None,
    };

    // dact_last (B, OUT) = dLoss/dpred; the batch's loss sum (and correct rows)
    // are added to the metrics.
    let loss = |set: &str, loss_sum: usize, correct_sum: Option<usize>| -> Result<Vec<Dispatch>> {
        let total = |what: &str, partials: Region, into: usize| {
            kernels.add_total(
                &format!("B{rows}.{set}.{what}_total"),
                partials,
                Region::new(bufs.metrics, bufs.slots.count),
                into as u32,
            )
        };
        let label = format!("B{rows}.{set}.loss");
        let mut dispatches = Vec::new();
        let partials = match spec.loss() {
            Loss::Mse => {
                let partials = Region::new(bufs.partials, kernels.partial_count(b * outputs as u32)? as usize);
                dispatches.push(kernels.mse_grad(&label, act(last), batch_y, dact(last), partials)?);
                partials
            }
            Loss::Bce => {
                let partials = Region::new(bufs.partials, kernels.partial_count(b * outputs as u32)? as usize);
                dispatches.push(kernels.bce_grad(&label, act(last), batch_y, dact(last), partials)?);
                partials
            }
            Loss::CrossEntropy => {
                let partials = Region::new(bufs.partials, kernels.partial_count(b)? as usize);
                dispatches.push(kernels.softmax_cross_entropy(&label, act(last), batch_y, dact(last), partials, b)?);
                partials
            }
        };
        dispatches.push(total("loss", partials, loss_sum)?);
        if let Some(slot) = correct_sum {
            let partials = Region::new(bufs.partials, kernels.partial_count(b)? as usize);
            let label = format!("B{rows}.{set}.correct");
            dispatches.push(kernels.count_correct(&label, act(last), batch_y, partials, b)?);
            dispatches.push(total("correct", partials, slot)?);
        }
        Ok(dispatches)
    };
    let slots = bufs.slots;
    let loss_train = loss("train", MetricSlots::TRAIN_LOSS, slots.train_correct)?;
    // loss_train is [loss, its total, then the correct count and its total when
    // classifying]: the loss kernel covers rows (cross-entropy) or elements.
    bounds.push(RowBound::first_word(&loss_train[0], u64::from(spec.loss() != Loss::CrossEntropy)));
    if let Some(correct) = loss_train.get(2) {
        bounds.push(RowBound::first_word(correct, 0));
    }
    // The held-out rows' passes, for the plans that evaluate them.
    let mut loss_test = match (slots.test_loss, bufs.test) {
        (Some(slot), Some(_)) => loss("test", slot, slots.test_correct)?,
        _ => Vec::new(),
    };
    if let (Some(first), Some(_)) = (slots.test_errors, bufs.test) {
        let metrics = Region::new(bufs.metrics, slots.count);
        let sigmoid = spec.loss() == Loss::Bce;
        let label = format!("B{rows}.test.regression_sums");
        loss_test.push(kernels.regression_sums(&label, act(last), batch_y, metrics, b, first as u32, sigmoid)?);
    }

    // dact_last becomes dZ_last (B, OUT); lower layers get theirs from the
    // epilogue of the matmul that makes their dA.
    let mut backward = Vec::new();
    backward.extend(kernels.activation_backward(
        &name(last, "activation_backward"),
        spec.activation(last),
        negative_slope,
        dact(last),
        given(last),
    )?);
    // dW_l (IN, OUT) = input (B, IN)ᵀ · dZ_l (B, OUT), db_l (OUT) = column sums of dZ_l
    let weight_grads = |l: usize| -> Result<[Dispatch; 2]> {
        let slots = &layout.layers[l];
        let shape = MatmulParams::new(slots.fan_in as u32, b, slots.fan_out as u32, true, false);
        let weight_grad =
            kernels.matmul(&name(l, "weight_grad"), train_input(l), dact(l), layout.weight(bufs.grads, l), shape)?;
        let bias_grad = kernels.column_sum(&name(l, "bias_grad"), dact(l), layout.bias(bufs.grads, l), b, false)?;
        Ok([weight_grad, bias_grad])
    };
    for (l, slots) in layout.layers.iter().enumerate().rev() {
        let (fan_in, fan_out) = (slots.fan_in as u32, slots.fan_out as u32);
        // With DP-SGD the weight gradients wait for every layer's dZ rows to be clipped.
        if dp.is_none() {
            backward.extend(weight_grads(l)?);
        }
        if l > 0 {
            // dact_{l-1} (B, IN) = dZ_{l-1} = (dZ_l (B, OUT) · W_l (IN, OUT)ᵀ) ⊙ act'(a_{l-1})
            // (act'(z_{l-1}) for GELU), with W_l before this step's update
            let shape = MatmulParams::new(b, fan_out, fan_in, false, true);
            // dZ_{l-1} masked and scaled as the layer's output was, with dropout.
            let dropout = mask(l - 1).filter(|_| dropped(l - 1).is_some());
            let epilogue = Epilogue::Derivative {
                activation: spec.activation(l - 1),
                negative_slope,
                given: given(l - 1),
                dropout,
            };
            let weight = layout.weight(bufs.params, l);
            let input_grad =
                kernels.matmul_with(&name(l, "input_grad"), dact(l), weight, dact(l - 1), shape, epilogue)?;
            bounds.push(RowBound::first_word(&input_grad, 0));
            backward.push(input_grad);
        }
    }
    if let Some(dp) = dp {
        // Each row's squared gradient norm over the layers, first to last,
        // then its factor; every layer's dZ rows scaled by it; the gradients;
        // then the noise, before the update reads them.
        let norms = Region::new(dp.norms, rows);
        let sample = Region::new(dp.sample, 1);
        let row_scale = (rows as f64 / dp.expected_batch) as f32;
        for (l, slots) in layout.layers.iter().enumerate() {
            let params = RowNormParams {
                rows: b,
                fan_in: slots.fan_in as u32,
                fan_out: slots.fan_out as u32,
                accumulate: u32::from(l > 0),
                finish: u32::from(l == last),
                max_norm: dp.dp.max_grad_norm,
                loss_rows: rows as f32,
                row_scale,
            };
            backward.push(kernels.dp_row_norms(
                &name(l, "dp_row_norms"),
                sample,
                train_input(l),
                dact(l),
                norms,
                params,
            )?);
        }
        for l in 0..=last {
            backward.push(kernels.dp_scale_rows(&name(l, "dp_scale_rows"), norms, dact(l), b)?);
        }
        for l in (0..=last).rev() {
            let [weight_grad, bias_grad] = weight_grads(l)?;
            // dW's rows are its k, the summed dimension (MatmulParams' second word).
            bounds.push(RowBound { params: weight_grad.params_buffer().clone(), at: 4, count: 0 });
            bounds.push(RowBound::first_word(&bias_grad, 0));
            backward.extend([weight_grad, bias_grad]);
        }
        let (std, key) = (dp.dp.noise_std(dp.expected_batch), crate::noise::key(dp.dp.key));
        for l in 0..=last {
            let (weights, bias) = (layout.weight(bufs.grads, l), layout.bias(bufs.grads, l));
            backward.push(kernels.dp_add_noise(
                &name(l, "dp_add_noise"),
                control,
                weights,
                bias,
                l as u32,
                std,
                key,
            )?);
        }
    }
    if dp.is_none() {
        bounds.clear();
    }
    let row_bounds = bounds;
    Ok(StepPlan {
        rows,
        gather_train,
        gather_test,
        forward,
        forward_train,
        loss_train,
        loss_test,
        backward,
        row_bounds,
    })
}

/// The plan of a DP-SGD step over the room of a sample, and its buffers.
fn plan_dp_steps(
    ctx: &GpuContext,
    kernels: &Kernels,
    layout: &ParamLayout,
    spec: &MlpSpec,
    bufs: &Buffers,
    sampling: DpSampling,
) -> Result<DpSteps> {
    const BATCH: &str = "use a smaller `batch_size`";
    let room = sampling.room;
    let sample = ctx.zeros("dp.sample", 1, STORAGE, BATCH)?;
    let norms = ctx.zeros("dp.norms", room, STORAGE, BATCH)?;
    let expected_batch = sampling.q * sampling.train_rows as f64;
    let binding = DpBinding { dp: sampling.dp, expected_batch, sample: &sample, norms: &norms };
    // Only steps: the held-out rows are evaluated by the batch-sized plans.
    let plan = plan_step(kernels, layout, spec, &Buffers { test: None, ..*bufs }, room, Some(binding))?;
    // Grown to a chunk's steps by `write_growing`.
    let rows = ctx.zeros("dp.rows", room, STORAGE, BATCH)?;
    let counts = ctx.zeros("dp.counts", 2, STORAGE, BATCH)?;
    Ok(DpSteps { sampling, plan, rows, counts, sample })
}

/// The optimizer's dispatches over the whole flat parameter buffer, with its
/// state buffers (zeroed, as the optimizers start).
/// The optimizer's state on the GPU, in the flat parameter layout.
enum OptimizerBuffers {
    Sgd,
    Momentum {
        velocity: wgpu::Buffer,
    },
    /// `step` holds shaders/adam.wgsl's AdamState.
    Adam {
        step: wgpu::Buffer,
        m: wgpu::Buffer,
        v: wgpu::Buffer,
    },
}

/// Writes `values` (one per step of the chunk) at the start of `buffer`,
/// replacing it by a larger one labelled `label` first where it is too small.
fn write_growing<T: bytemuck::Pod>(
    ctx: &GpuContext,
    buffer: &mut wgpu::Buffer,
    label: &str,
    values: &[T],
) -> Result<()> {
    if buffer.size() < std::mem::size_of_val(values) as u64 {
        *buffer = ctx.zeros(label, values.len(), STORAGE, "use a smaller `log_every`")?;
    }
    ctx.queue.write_buffer(buffer, 0, bytemuck::cast_slice(values));
    Ok(())
}

fn plan_update(
    ctx: &GpuContext,
    kernels: &Kernels,
    layout: &ParamLayout,
    params: &wgpu::Buffer,
    grads: &wgpu::Buffer,
    control: &wgpu::Buffer,
    config: &TrainConfig,
) -> Result<(Vec<Dispatch>, OptimizerBuffers)> {
    const MODEL: &str = "use narrower `layers`";
    let len = layout.len;
    let (weights, grads, rate) =
        (Region::new(params, len), Region::new(grads, len), Region::new(control, STEP_CONTROL_LEN));
    let weight_decay = config.weight_decay;
    // Clipping by the global norm: its factor is written into the control
    // before the update reads it, by two dispatches of a fixed order.
    let clip = match config.clip.norm {
        Some(max_norm) => {
            let partials = ctx.zeros("clip.partials", GRAD_NORM_GROUPS, STORAGE, MODEL)?;
            let dispatches =
                kernels.grad_norm_clip("clip", grads, Region::new(&partials, GRAD_NORM_GROUPS), rate, max_norm)?;
            dispatches.into()
        }
        None => Vec::new(),
    };
    let (update, optimizer) = match config.optimizer {
        Optimizer::Sgd => {
            (vec![kernels.sgd_update("sgd_update", weights, grads, rate, weight_decay)?], OptimizerBuffers::Sgd)
        }
        Optimizer::Momentum { momentum } => {
            let velocity = ctx.zeros("momentum.velocity", len, STORAGE, MODEL)?;
            let settings = MomentumParams { len: len as u32, momentum, weight_decay, _pad: 0 };
            let velocity_region = Region::new(&velocity, len);
            let update = kernels.momentum_update("momentum_update", weights, grads, velocity_region, rate, settings)?;
            (vec![update], OptimizerBuffers::Momentum { velocity })
        }
        Optimizer::Adam { beta1, beta2, eps } => {
            let step = ctx.zeros("adam.state", ADAM_STATE_LEN, STORAGE, MODEL)?;
            let m = ctx.zeros("adam.m", len, STORAGE, MODEL)?;
            let v = ctx.zeros("adam.v", len, STORAGE, MODEL)?;
            let settings = AdamParams { len: len as u32, beta1, beta2, eps, weight_decay, _pad: [0; 3] };
            let regions = (Region::new(&step, ADAM_STATE_LEN), Region::new(&m, len), Region::new(&v, len));
            let update =
                kernels.adam_update("adam_update", regions.0, weights, grads, regions.1, regions.2, rate, settings)?;
            (update.into(), OptimizerBuffers::Adam { step, m, v })
        }
    };
    Ok((clip.into_iter().chain(update).collect(), optimizer))
}

impl Trainer for LayeredTrainer {
    fn device(&self) -> String {
        format!("{}, {} matmul", self.ctx.describe(), self.matmul)
    }

    fn steps_per_epoch(&self) -> usize {
        match &self.dp {
            Some(dp) => dp.sampling.steps_per_epoch,
            None => self.train_batches.len(),
        }
    }

    fn gpu_bytes(&self) -> Option<u64> {
        Some(self.gpu_bytes)
    }

    fn set_schedule(&mut self, next_epoch: usize, lr_scale: f32) {
        self.schedule = (next_epoch, lr_scale);
    }

    fn train_until(&mut self, epochs: usize, stop: &dyn Fn() -> bool) -> Result<Vec<EpochMetrics>> {
        let capacity = if self.shuffler.is_shuffling() { order_epochs(self.train.rows) } else { RING_EPOCHS };
        super::train_in_chunks(epochs, capacity, |chunk| self.train_chunk(chunk, stop))
    }

    fn evaluate(&mut self) -> Result<f32> {
        self.ctx.scoped("evaluating the loss", || {
            let mut encoder = self.encoder("evaluate");
            self.record_train_evaluation(&mut encoder);
            self.ctx.submit(encoder);
            let sum = self.ctx.read_back(Region::new(&self.metrics, 1), &self.ring)?;
            Ok(sum[0] / self.spec.loss_divisor(self.train.rows))
        })
    }

    fn state(&mut self) -> Result<TrainState> {
        // Staging buffers of their own, for these rare reads.
        let read = |buffer: &wgpu::Buffer| self.ctx.read_buffer(buffer).map(|flat| self.layout.unpack(&flat));
        self.ctx.scoped("reading the training state", || {
            let optimizer = match &self.optimizer {
                OptimizerBuffers::Sgd => OptimizerState::Sgd,
                OptimizerBuffers::Momentum { velocity } => OptimizerState::Momentum { velocity: read(velocity)? },
                OptimizerBuffers::Adam { step, m, v } => {
                    let step = bytemuck::cast_slice::<f32, u32>(&self.ctx.read_buffer(step)?)[0];
                    OptimizerState::Adam { m: read(m)?, v: read(v)?, step }
                }
            };
            Ok(TrainState { params: read(&self.params)?, optimizer, shuffle_position: self.shuffler.position() })
        })
    }

    fn restore(&mut self, state: &TrainState) -> Result<()> {
        let like = self.params()?;
        state.check_fits(&like, self.config_optimizer)?;
        let queue = &self.ctx.queue;
        let write = |buffer: &wgpu::Buffer, params: &Params| {
            queue.write_buffer(buffer, 0, bytemuck::cast_slice(&self.layout.pack(params)));
        };
        write(&self.params, &state.params);
        match (&self.optimizer, &state.optimizer) {
            (OptimizerBuffers::Sgd, OptimizerState::Sgd) => {}
            (OptimizerBuffers::Momentum { velocity }, OptimizerState::Momentum { velocity: saved }) => {
                write(velocity, saved)
            }
            (
                OptimizerBuffers::Adam { step, m, v },
                OptimizerState::Adam { m: saved_m, v: saved_v, step: saved_step },
            ) => {
                write(m, saved_m);
                write(v, saved_v);
                // adam_tick recomputes the bias corrections from the step.
                queue.write_buffer(step, 0, bytemuck::cast_slice(&[*saved_step, 0, 0, 0]));
            }
            _ => unreachable!("check_fits compared the optimizer kinds"),
        }
        self.shuffler.set_position(state.shuffle_position);
        Ok(())
    }
}
