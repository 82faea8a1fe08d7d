//! Forward-only inference on the GPU: the parameters uploaded once, then the
//! rows streamed through in batches, one matmul dispatch (with its bias and
//! activation fused in) per layer. No gradients, optimizer state or training
//! data are allocated, so a model is served with a fraction of what training
//! it took.
//!
//! Buffers (B = rows of one batch, at most [`INFERENCE_BATCH_ROWS`]):
//!   params     every W_l (IN_l, OUT_l) and b_l (OUT_l), the layered path's layout
//!   batch.x    (B, IN): the batch's rows, written before each submit
//!   act_l      (B, OUT_l): layer outputs; the last is the prediction
//!   staging    (B, OUT): the last layer's output, mapped and read back

use ndarray::{s, Array2, ArrayView2};

use crate::error::Result;
use crate::model::{MlpSpec, Params};

use super::context::{GpuContext, Region};
use super::kernels::{Dispatch, Kernels};
use super::param_layout::ParamLayout;
use super::uniforms::{Epilogue, MatmulParams};

use wgpu::BufferUsages as Usage;

const STORAGE: Usage = Usage::STORAGE.union(Usage::COPY_SRC).union(Usage::COPY_DST);

/// Rows of one inference batch at most: big enough that the per-submit cost
/// fades, small enough that a wide net's activations stay a few MiB. The
/// adapter's binding limit may lower it (see [`GpuInference::new`]).
pub const INFERENCE_BATCH_ROWS: usize = 4096;

/// A model ready to run forward passes on one device.
pub struct GpuInference {
    ctx: GpuContext,
    kernels: Kernels,
    spec: MlpSpec,
    layout: ParamLayout,
    params: wgpu::Buffer,
    batch_rows: usize,
    x: wgpu::Buffer,
    acts: Vec<wgpu::Buffer>,
    staging: wgpu::Buffer,
    /// The layer dispatches per batch size met so far (the full batch and a
    /// shorter last one), built on first use.
    plans: Vec<(usize, Vec<Dispatch>)>,
}

impl GpuInference {
    /// Uploads `params` of `spec` and makes room for one batch.
    pub fn new(ctx: &GpuContext, kernels: &Kernels, spec: &MlpSpec, params: &Params) -> Result<Self> {
        let widest = spec.sizes().iter().copied().max().unwrap_or(1);
        let binding = ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size);
        let batch_rows = INFERENCE_BATCH_ROWS.min((binding / 4) as usize / widest).max(1);
        ctx.scoped("building the GPU inference path", || {
            let align = (ctx.limits.min_storage_buffer_offset_alignment as usize / 4).max(1);
            let layout = ParamLayout::new(spec, align);
            let params = ctx.upload("inference.params", &layout.pack(params), STORAGE, "use narrower layers")?;
            const BATCH: &str = "use narrower layers";
            let x = ctx.zeros("inference.x", batch_rows * spec.inputs(), STORAGE, BATCH)?;
            let acts = spec
                .layer_shapes()
                .enumerate()
                .map(|(l, (_, fan_out))| {
                    ctx.zeros(&format!("inference.layer{l}.act"), batch_rows * fan_out, STORAGE, BATCH)
                })
                .collect::<Result<Vec<_>>>()?;
            let staging = ctx.staging("inference.staging", batch_rows * spec.outputs())?;
            Ok(Self {
                ctx: ctx.clone(),
                kernels: kernels.clone(),
                spec: spec.clone(),
                layout,
                params,
                batch_rows,
                x,
                acts,
                staging,
                plans: Vec::new(),
            })
        })
    }

    /// The model this runs.
    pub fn spec(&self) -> &MlpSpec {
        &self.spec
    }

    /// Rows per submit.
    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }

    /// The network's output (N, OUT) for x (N, IN): logits for a softmax
    /// output, as [`crate::cpu::forward`]'s last layer. One submit and one
    /// read-back per batch of rows.
    pub fn forward(&mut self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        let (rows, outputs) = (x.nrows(), self.spec.outputs());
        let mut out = Array2::zeros((rows, outputs));
        let ctx = self.ctx.clone();
        ctx.scoped("running the model forward", || {
            for start in (0..rows).step_by(self.batch_rows) {
                let batch = self.batch_rows.min(rows - start);
                let plan = self.plan(batch)?;
                let block = x.slice(s![start..start + batch, ..]);
                let block = block.as_standard_layout();
                let flat = block.as_slice().expect("standard layout is contiguous");
                ctx.queue.write_buffer(&self.x, 0, bytemuck::cast_slice(flat));
                let mut encoder =
                    ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("inference") });
                {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("inference"),
                        timestamp_writes: None,
                    });
                    for dispatch in &self.plans[plan].1 {
                        dispatch.record(&mut pass);
                    }
                }
                let last = self.acts.last().expect("a network has at least one layer");
                let bytes = (batch * outputs * 4) as u64;
                encoder.copy_buffer_to_buffer(last, 0, &self.staging, 0, bytes);
                ctx.submit(encoder);
                let values = ctx.map_read(&self.staging, (batch * outputs) as u64)?;
                let values = ArrayView2::from_shape((batch, outputs), &values).expect("B * OUT floats were read");
                out.slice_mut(s![start..start + batch, ..]).assign(&values);
            }
            Ok(out)
        })
    }

    /// The index in `plans` of the dispatches for batches of `rows` rows.
    fn plan(&mut self, rows: usize) -> Result<usize> {
        if let Some(i) = self.plans.iter().position(|(r, _)| *r == rows) {
            return Ok(i);
        }
        let b = rows as u32;
        let mut dispatches = Vec::new();
        for (l, slots) in self.layout.layers.iter().enumerate() {
            let input = if l == 0 {
                Region::new(&self.x, rows * self.spec.inputs())
            } else {
                Region::new(&self.acts[l - 1], rows * slots.fan_in)
            };
            let out = Region::new(&self.acts[l], rows * slots.fan_out);
            // act_l (B, OUT) = activation(input (B, IN) · W_l (IN, OUT) + b_l)
            let shape = MatmulParams::new(b, slots.fan_in as u32, slots.fan_out as u32, false, false);
            // Inference keeps no z: only training's backward pass needs it.
            let epilogue = Epilogue::BiasActivation {
                bias: self.layout.bias(&self.params, l),
                activation: self.spec.activation(l),
                negative_slope: self.spec.negative_slope(),
                pre: None,
                dropout: None,
            };
            let weight = self.layout.weight(&self.params, l);
            let label = format!("inference.B{rows}.layer{l}.forward");
            dispatches.push(self.kernels.matmul_with(&label, input, weight, out, shape, epilogue)?);
        }
        self.plans.push((rows, dispatches));
        Ok(self.plans.len() - 1)
    }
}
