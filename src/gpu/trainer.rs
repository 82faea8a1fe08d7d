//! The GPU trainer. Construction uploads the parameters and data and builds
//! every buffer, uniform and bind group; a step then only records its
//! dispatches into one command encoder and submits it once.
//!
//! Buffers (B = rows per batch, the largest batch; N = samples):
//!   params, grads   every W_l (IN_l, OUT_l) and b_l (OUT_l), one flat buffer
//!                   each with the same layout, so one sgd_update covers all
//!   data.x, data.y  (N, IN), (N, OUT): the whole data set
//!   batch.x/.y      (B, IN), (B, OUT): the step's rows, copied from data;
//!                   with a single batch the data buffers are bound instead
//!   act_l, dact_l   (B, OUT_l): layer outputs a_l and their gradients
//!   loss.partials   one sum of squares per mse_grad workgroup
//!   loss.epoch      (1): the running sum of squares of the current epoch
//!   loss.ring       (log_every): each epoch's sum, read back together

use ndarray::{Array1, Array2};

use crate::data::{batches, Batch, Dataset};
use crate::error::{Error, Result};
use crate::model::{Layer, MlpSpec, Params};
use crate::train::{TrainConfig, Trainer};

use super::context::{GpuContext, Region};
use super::kernels::{Dispatch, Kernels, MatmulParams};

use wgpu::BufferUsages as Usage;

/// One layer's place in the flat params and grads buffers: W (IN, OUT) starts
/// at `w`, b (OUT) at `b`, in floats.
struct LayerSlots {
    fan_in: usize,
    fan_out: usize,
    w: usize,
    b: usize,
}

/// The flat layout shared by params and grads; every tensor starts at a
/// multiple of the adapter's storage offset alignment so it can be bound alone.
struct ParamLayout {
    layers: Vec<LayerSlots>,
    len: usize,
}

impl ParamLayout {
    fn new(spec: &MlpSpec, align: usize) -> Self {
        let mut layers = Vec::new();
        let mut len = 0;
        for (fan_in, fan_out) in spec.layer_shapes() {
            let w = len;
            let b = (w + fan_in * fan_out).next_multiple_of(align);
            len = (b + fan_out).next_multiple_of(align);
            layers.push(LayerSlots {
                fan_in,
                fan_out,
                w,
                b,
            });
        }
        Self { layers, len }
    }

    fn weight<'a>(&self, buffer: &'a wgpu::Buffer, l: usize) -> Region<'a> {
        let slots = &self.layers[l];
        Region {
            buffer,
            offset: slots.w as u64,
            len: (slots.fan_in * slots.fan_out) as u64,
        }
    }

    fn bias<'a>(&self, buffer: &'a wgpu::Buffer, l: usize) -> Region<'a> {
        let slots = &self.layers[l];
        Region {
            buffer,
            offset: slots.b as u64,
            len: slots.fan_out as u64,
        }
    }

    /// The flat buffer's contents; the padding between tensors stays 0.
    fn pack(&self, params: &Params) -> Vec<f32> {
        let mut flat = vec![0.0; self.len];
        for (layer, slots) in params.layers.iter().zip(&self.layers) {
            flat[slots.w..slots.w + layer.w.len()]
                .iter_mut()
                .zip(layer.w.iter())
                .for_each(|(dst, src)| *dst = *src);
            flat[slots.b..slots.b + layer.b.len()]
                .iter_mut()
                .zip(layer.b.iter())
                .for_each(|(dst, src)| *dst = *src);
        }
        flat
    }

    fn unpack(&self, flat: &[f32]) -> Params {
        let layers = self
            .layers
            .iter()
            .map(|slots| Layer {
                w: Array2::from_shape_vec(
                    (slots.fan_in, slots.fan_out),
                    flat[slots.w..slots.w + slots.fan_in * slots.fan_out].to_vec(),
                )
                .expect("the slice holds IN * OUT floats"),
                b: Array1::from(flat[slots.b..slots.b + slots.fan_out].to_vec()),
            })
            .collect();
        Params { layers }
    }
}

/// The recorded work of one batch size (a run has at most two: the batch size
/// and the smaller last batch).
struct StepPlan {
    /// Layer by layer, then mse_grad and the loss total: also the evaluation pass.
    forward: Vec<Dispatch>,
    /// Last layer first: sigmoid_backward, dW, db and dX of each layer.
    backward: Vec<Dispatch>,
}

pub struct GpuTrainer {
    ctx: GpuContext,
    layout: ParamLayout,
    params: wgpu::Buffer,
    data_x: wgpu::Buffer,
    data_y: wgpu::Buffer,
    /// The per-step copies of the batch rows; None when one batch is the data.
    batch_xy: Option<(wgpu::Buffer, wgpu::Buffer)>,
    epoch_loss: wgpu::Buffer,
    loss_ring: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// Each batch of an epoch and the index of its plan.
    batches: Vec<(Batch, usize)>,
    plans: Vec<StepPlan>,
    update: Dispatch,
    inputs: usize,
    outputs: usize,
    /// Output elements in one epoch: the loss is the sum of squares over this.
    elements: f32,
}

impl GpuTrainer {
    /// Uploads `params` and `data` and builds every dispatch of a step.
    pub fn new(
        ctx: &GpuContext,
        kernels: &Kernels,
        spec: &MlpSpec,
        params: &Params,
        data: &Dataset,
        config: &TrainConfig,
    ) -> Result<Self> {
        config.check(spec, data)?;
        ctx.scoped("building the GPU trainer", || {
            Self::build(ctx, kernels, spec, params, data, config)
        })
    }

    fn build(
        ctx: &GpuContext,
        kernels: &Kernels,
        spec: &MlpSpec,
        params: &Params,
        data: &Dataset,
        config: &TrainConfig,
    ) -> Result<Self> {
        let storage = Usage::STORAGE | Usage::COPY_SRC | Usage::COPY_DST;
        let samples = data.len();
        let batch_rows = config.batch_size.unwrap_or(samples).min(samples);
        let batch_list = batches(samples, batch_rows);
        let single = batch_list.len() == 1;

        let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
        let layout = ParamLayout::new(spec, align);
        const MODEL: &str = "use narrower --layers";
        let params_buf = ctx.upload("params", &layout.pack(params), storage, MODEL)?;
        let grads = ctx.zeros("grads", layout.len, storage, MODEL)?;

        // The data set is bound directly only when it is the one batch.
        const DATA: &str = "use fewer --samples or a --batch-size";
        let data_usage = if single {
            storage
        } else {
            Usage::COPY_SRC | Usage::COPY_DST
        };
        let x_flat = data.x.as_standard_layout();
        let y_flat = data.y.as_standard_layout();
        let x_values = x_flat.as_slice().expect("standard layout is contiguous");
        let y_values = y_flat.as_slice().expect("standard layout is contiguous");
        let data_x = ctx.upload("data.x", x_values, data_usage, DATA)?;
        let data_y = ctx.upload("data.y", y_values, data_usage, DATA)?;

        const BATCH: &str = "use a smaller --batch-size";
        let batch_xy = if single {
            None
        } else {
            Some((
                ctx.zeros("batch.x", batch_rows * spec.inputs(), storage, BATCH)?,
                ctx.zeros("batch.y", batch_rows * spec.outputs(), storage, BATCH)?,
            ))
        };
        let (x_buf, y_buf) = batch_xy
            .as_ref()
            .map_or((&data_x, &data_y), |(x, y)| (x, y));

        let mut acts = Vec::new();
        let mut dacts = Vec::new();
        for (l, (_, fan_out)) in spec.layer_shapes().enumerate() {
            acts.push(ctx.zeros(
                &format!("layer{l}.act"),
                batch_rows * fan_out,
                storage,
                BATCH,
            )?);
            dacts.push(ctx.zeros(
                &format!("layer{l}.dact"),
                batch_rows * fan_out,
                storage,
                BATCH,
            )?);
        }
        let max_partials = kernels.mse_partials((batch_rows * spec.outputs()) as u32)? as usize;
        let partials = ctx.zeros("loss.partials", max_partials, storage, BATCH)?;
        let epoch_loss = ctx.zeros("loss.epoch", 1, storage, BATCH)?;
        let ring_len = config.log_every;
        let loss_ring = ctx.zeros("loss.ring", ring_len, storage, "use a smaller --log-every")?;
        let staging = ctx.staging("staging", ring_len.max(layout.len))?;

        let buffers = Buffers {
            x: x_buf,
            y: y_buf,
            params: &params_buf,
            grads: &grads,
            acts: &acts,
            dacts: &dacts,
            partials: &partials,
            epoch_loss: &epoch_loss,
        };
        let mut plans = Vec::new();
        let mut plan_rows = Vec::new();
        let mut batch_plans = Vec::new();
        for batch in batch_list {
            let plan = match plan_rows.iter().position(|&rows| rows == batch.rows) {
                Some(plan) => plan,
                None => {
                    plans.push(plan_step(kernels, &layout, &buffers, batch.rows)?);
                    plan_rows.push(batch.rows);
                    plans.len() - 1
                }
            };
            batch_plans.push((batch, plan));
        }
        let update = kernels.sgd_update(
            "sgd_update",
            Region::new(&params_buf, layout.len),
            Region::new(&grads, layout.len),
            config.lr,
        )?;

        Ok(Self {
            ctx: ctx.clone(),
            layout,
            params: params_buf,
            data_x,
            data_y,
            batch_xy,
            epoch_loss,
            loss_ring,
            staging,
            batches: batch_plans,
            plans,
            update,
            inputs: spec.inputs(),
            outputs: spec.outputs(),
            elements: data.y.len() as f32,
        })
    }

    /// Copies the batch's rows of data into the batch buffers, when there are any.
    fn record_batch_copy(&self, encoder: &mut wgpu::CommandEncoder, batch: Batch) {
        if let Some((x, y)) = &self.batch_xy {
            let (start, rows) = (batch.start as u64, batch.rows as u64);
            let (inputs, outputs) = (self.inputs as u64, self.outputs as u64);
            encoder.copy_buffer_to_buffer(
                &self.data_x,
                start * inputs * 4,
                x,
                0,
                rows * inputs * 4,
            );
            encoder.copy_buffer_to_buffer(
                &self.data_y,
                start * outputs * 4,
                y,
                0,
                rows * outputs * 4,
            );
        }
    }

    fn record_pass<'a>(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        label: &str,
        dispatches: impl Iterator<Item = &'a Dispatch>,
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        for dispatch in dispatches {
            dispatch.record(&mut pass);
        }
    }
}

/// The buffers one step reads and writes, for [`plan_step`].
struct Buffers<'a> {
    x: &'a wgpu::Buffer,
    y: &'a wgpu::Buffer,
    params: &'a wgpu::Buffer,
    grads: &'a wgpu::Buffer,
    acts: &'a [wgpu::Buffer],
    dacts: &'a [wgpu::Buffer],
    partials: &'a wgpu::Buffer,
    epoch_loss: &'a wgpu::Buffer,
}

/// Binds every dispatch of a step over `rows` rows (B below).
fn plan_step(
    kernels: &Kernels,
    layout: &ParamLayout,
    bufs: &Buffers,
    rows: usize,
) -> Result<StepPlan> {
    let b = rows as u32;
    let last = layout.layers.len() - 1;
    let act = |l: usize| Region::new(&bufs.acts[l], rows * layout.layers[l].fan_out);
    let dact = |l: usize| Region::new(&bufs.dacts[l], rows * layout.layers[l].fan_out);
    let input = |l: usize| {
        if l == 0 {
            Region::new(bufs.x, rows * layout.layers[0].fan_in)
        } else {
            act(l - 1)
        }
    };
    let name = |l: usize, op: &str| format!("B{rows}.layer{l}.{op}");

    let mut forward = Vec::new();
    for (l, slots) in layout.layers.iter().enumerate() {
        let (fan_in, fan_out) = (slots.fan_in as u32, slots.fan_out as u32);
        // act_l (B, OUT) = sigmoid(input (B, IN) · W_l (IN, OUT) + b_l)
        let shape = MatmulParams {
            m: b,
            k: fan_in,
            n: fan_out,
            trans_a: 0,
            trans_b: 0,
            _pad: [0; 3],
        };
        forward.push(kernels.matmul(
            &name(l, "matmul"),
            input(l),
            layout.weight(bufs.params, l),
            act(l),
            shape,
        )?);
        forward.push(kernels.bias_add(
            &name(l, "bias_add"),
            act(l),
            layout.bias(bufs.params, l),
            b,
            fan_out,
        )?);
        forward.push(kernels.sigmoid_forward(&name(l, "sigmoid_forward"), act(l))?);
    }
    // dact_last (B, OUT) = dLoss/dpred; the batch's sum of squares is added to loss.epoch.
    let outputs = rows * layout.layers[last].fan_out;
    let partial_count = kernels.mse_partials(outputs as u32)?;
    let partials = Region::new(bufs.partials, partial_count as usize);
    let target = Region::new(bufs.y, outputs);
    forward.push(kernels.mse_grad(
        &format!("B{rows}.mse_grad"),
        act(last),
        target,
        dact(last),
        partials,
    )?);
    let epoch_loss = Region::new(bufs.epoch_loss, 1);
    forward.push(kernels.column_sum(
        &format!("B{rows}.loss_total"),
        partials,
        epoch_loss,
        partial_count,
        true,
    )?);

    let mut backward = Vec::new();
    for (l, slots) in layout.layers.iter().enumerate().rev() {
        let (fan_in, fan_out) = (slots.fan_in as u32, slots.fan_out as u32);
        // dact_l becomes dZ_l (B, OUT)
        backward.push(kernels.sigmoid_backward(&name(l, "sigmoid_backward"), dact(l), act(l))?);
        // dW_l (IN, OUT) = input (B, IN)ᵀ · dZ_l (B, OUT)
        let shape = MatmulParams {
            m: fan_in,
            k: b,
            n: fan_out,
            trans_a: 1,
            trans_b: 0,
            _pad: [0; 3],
        };
        backward.push(kernels.matmul(
            &name(l, "weight_grad"),
            input(l),
            dact(l),
            layout.weight(bufs.grads, l),
            shape,
        )?);
        // db_l (OUT) = column sums of dZ_l
        backward.push(kernels.column_sum(
            &name(l, "bias_grad"),
            dact(l),
            layout.bias(bufs.grads, l),
            b,
            false,
        )?);
        if l > 0 {
            // dact_{l-1} (B, IN) = dZ_l (B, OUT) · W_l (IN, OUT)ᵀ, with W_l before this step's update
            let shape = MatmulParams {
                m: b,
                k: fan_out,
                n: fan_in,
                trans_a: 0,
                trans_b: 1,
                _pad: [0; 3],
            };
            backward.push(kernels.matmul(
                &name(l, "input_grad"),
                dact(l),
                layout.weight(bufs.params, l),
                dact(l - 1),
                shape,
            )?);
        }
    }
    Ok(StepPlan { forward, backward })
}

impl Trainer for GpuTrainer {
    fn device(&self) -> String {
        self.ctx.describe()
    }

    fn steps_per_epoch(&self) -> usize {
        self.batches.len()
    }

    fn train(&mut self, epochs: usize) -> Result<Vec<f32>> {
        let capacity = (self.loss_ring.size() / 4) as usize;
        if epochs > capacity {
            return Err(Error::InvalidInput(format!(
                "{epochs} epochs in one call, but the loss ring holds {capacity} (the trainer's log_every)"
            )));
        }
        if epochs == 0 {
            return Ok(Vec::new());
        }
        self.ctx.scoped("training", || {
            let last = self.batches.len() - 1;
            for epoch in 0..epochs {
                for (i, &(batch, plan)) in self.batches.iter().enumerate() {
                    let mut encoder =
                        self.ctx
                            .device
                            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                                label: Some("step"),
                            });
                    if i == 0 {
                        encoder.clear_buffer(&self.epoch_loss, 0, None);
                    }
                    self.record_batch_copy(&mut encoder, batch);
                    let plan = &self.plans[plan];
                    let dispatches = plan
                        .forward
                        .iter()
                        .chain(&plan.backward)
                        .chain([&self.update]);
                    self.record_pass(&mut encoder, "step", dispatches);
                    if i == last {
                        encoder.copy_buffer_to_buffer(
                            &self.epoch_loss,
                            0,
                            &self.loss_ring,
                            epoch as u64 * 4,
                            4,
                        );
                    }
                    self.ctx.queue.submit([encoder.finish()]);
                }
            }
            let sums = self
                .ctx
                .read_back(Region::new(&self.loss_ring, epochs), &self.staging)?;
            Ok(sums.iter().map(|sum| sum / self.elements).collect())
        })
    }

    fn evaluate(&mut self) -> Result<f32> {
        self.ctx.scoped("evaluating the loss", || {
            let mut encoder =
                self.ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("evaluate"),
                    });
            encoder.clear_buffer(&self.epoch_loss, 0, None);
            for &(batch, plan) in &self.batches {
                self.record_batch_copy(&mut encoder, batch);
                self.record_pass(&mut encoder, "evaluate", self.plans[plan].forward.iter());
            }
            self.ctx.queue.submit([encoder.finish()]);
            let sum = self
                .ctx
                .read_back(Region::new(&self.epoch_loss, 1), &self.staging)?;
            Ok(sum[0] / self.elements)
        })
    }

    fn params(&mut self) -> Result<Params> {
        let flat = self.ctx.scoped("reading the parameters", || {
            self.ctx
                .read_back(Region::new(&self.params, self.layout.len), &self.staging)
        })?;
        Ok(self.layout.unpack(&flat))
    }
}
