//! The fused small-net path: when the whole net, its gradients, the optimizer
//! state and the training data fit in one workgroup's memory, one dispatch of
//! shaders/fused_mlp.wgsl runs many whole training steps (a single workgroup
//! looping over epochs and batches with barriers between the phases), so an
//! epoch costs no dispatch and no global memory traffic at all.
//!
//! What it takes ([`FusedTrainer::check`], [`FusedTrainer::fits`]): batches in
//! order (no shuffling; any batch size, the last batch may be shorter), no test
//! set, at most [`MAX_LAYERS`] layers, and a pool (below) within the adapter's
//! `max_compute_workgroup_storage_size` (32 KiB on lavapipe, 16 KiB by default).
//! Anything else goes to the layered [`super::LayeredTrainer`].
//!
//! The pool, one `array<f32, POOL_FLOATS>` in workgroup memory, sized to the
//! model (P = parameters, S = optimizer state: 0, P or 2P; N rows, B batch rows):
//!   params (P) | grads (P) | state (S) | x (N, IN) | y (N, OUT) |
//!   a_l (B, OUT_l) per layer | z_l (B, OUT_l) per GELU layer |
//!   delta0, delta1 (B, max OUT_l) | reduce (2, WG)
//! WG, the workgroup's invocations, is 256 on a GPU and 8 on a CPU driver.
//! Params and state are also in storage buffers, read at the start of each
//! dispatch and written back at its end; each epoch's loss sum and correct count
//! go to a ring of [`RING_EPOCHS`] entries, read back once per `train` call (per
//! [`RING_EPOCHS`] epochs in a longer call).

use bytemuck::{Pod, Zeroable};
use ndarray::Array2;

use crate::data::{batches, Dataset};
use crate::error::{Error, Result};
use crate::model::{Loss, MlpSpec, Params};
use crate::train::{EpochMetrics, Optimizer, OptimizerState, Run, TrainConfig, TrainState, Trainer};

use super::layered::RING_EPOCHS;
use super::metrics::{MetricSlots, FUSED_RING_ENTRY as RING_ENTRY};

use super::context::{GpuContext, Region};
use super::param_layout::ParamLayout;
use super::shaders;
use super::uniforms::activation_code;

use wgpu::BufferUsages as Usage;

/// Layers the uniform has room for (sizes, offsets: vec4 arrays in WGSL).
pub const MAX_LAYERS: usize = 8;
/// Invocations of the one workgroup (shaders/fused_mlp.wgsl's WORKGROUP) on a GPU.
const GPU_WORKGROUP: usize = 256;
/// On a CPU driver: lavapipe runs a whole workgroup on one thread, 8 lanes
/// (256 bits) at a time, and switches between those groups at every barrier;
/// the seed problem's 1000 epochs took 0.05 s with one group, 0.09 s with 256
/// invocations.
const CPU_WORKGROUP: usize = 8;
/// Workgroup bytes the shader declares beside the pool (one u32), rounded up.
const SCALAR_BYTES: u64 = 16;
/// Multiply-adds one dispatch may run: bounds a dispatch's time (about 0.2 s
/// on lavapipe's one thread, far less on a GPU) so no GPU watchdog sees a hung
/// queue; the seed problem runs ~4000 epochs per dispatch under it.
const MAX_MACS_PER_DISPATCH: usize = 1 << 26;
/// FusedParams.optimizer: shaders/fused_mlp.wgsl's SGD, MOMENTUM, ADAM.
const OPTIMIZER_SGD: u32 = 0;
const OPTIMIZER_MOMENTUM: u32 = 1;
const OPTIMIZER_ADAM: u32 = 2;
/// Floats in shaders/fused_mlp.wgsl's Control.
const CONTROL_LEN: usize = 4;
/// Control.eval_loss, in floats.
const EVAL_LOSS: u64 = 3;

const STORAGE: Usage = Usage::STORAGE.union(Usage::COPY_SRC).union(Usage::COPY_DST);

/// shaders/fused_mlp.wgsl's FusedParams; offsets and lengths in floats.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct FusedParams {
    layers: u32,
    rows: u32,
    batch: u32,
    epochs_per_dispatch: u32,
    hidden: u32,
    output: u32,
    loss: u32,
    optimizer: u32,
    classify: u32,
    params_len: u32,
    state_len: u32,
    grads_off: u32,
    state_off: u32,
    x_off: u32,
    y_off: u32,
    reduce_off: u32,
    delta0_off: u32,
    delta1_off: u32,
    negative_slope: f32,
    _pad0: u32,
    lr: f32,
    weight_decay: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    _pad1: [u32; 2],
    sizes: [u32; 12],
    w_off: [u32; MAX_LAYERS],
    b_off: [u32; MAX_LAYERS],
    act_off: [u32; MAX_LAYERS],
    pre_off: [u32; MAX_LAYERS],
}

/// Where everything sits in the pool (floats). Params are packed without
/// padding, W_l (IN, OUT) then b_l (OUT) per layer, in the storage buffer too.
struct PoolLayout {
    params: ParamLayout,
    state_len: usize,
    grads_off: usize,
    state_off: usize,
    x_off: usize,
    y_off: usize,
    act_off: Vec<usize>,
    /// z_l of each layer whose activation needs it (GELU); None elsewhere.
    pre_off: Vec<Option<usize>>,
    delta_off: [usize; 2],
    reduce_off: usize,
    /// Invocations of the workgroup; the reduce area holds two floats per invocation.
    workgroup: usize,
    len: usize,
}

impl PoolLayout {
    fn new(spec: &MlpSpec, rows: usize, batch: usize, optimizer: Optimizer, workgroup: usize) -> Self {
        let params = ParamLayout::new(spec, 1);
        let params_len = params.len;
        let state_len = match optimizer {
            Optimizer::Sgd => 0,
            Optimizer::Momentum { .. } => params_len,
            Optimizer::Adam { .. } => 2 * params_len,
        };
        let grads_off = params_len;
        let state_off = grads_off + params_len;
        let x_off = state_off + state_len;
        let y_off = x_off + rows * spec.inputs();
        let mut len = y_off + rows * spec.outputs();
        let mut act_off = Vec::new();
        for (_, fan_out) in spec.layer_shapes() {
            act_off.push(len);
            len += batch * fan_out;
        }
        let mut pre_off = Vec::new();
        for (l, (_, fan_out)) in spec.layer_shapes().enumerate() {
            let keeps_z = spec.activation(l).needs_pre_activation();
            pre_off.push(keeps_z.then_some(len));
            if keeps_z {
                len += batch * fan_out;
            }
        }
        let widest = spec.layer_shapes().map(|(_, fan_out)| fan_out).max().unwrap_or(1);
        let delta_off = [len, len + batch * widest];
        let reduce_off = len + 2 * batch * widest;
        len = reduce_off + RING_ENTRY * workgroup;
        Self {
            params,
            state_len,
            grads_off,
            state_off,
            x_off,
            y_off,
            act_off,
            pre_off,
            delta_off,
            reduce_off,
            workgroup,
            len,
        }
    }
}

/// Trains a small net with one dispatch per chunk of epochs (see the module docs).
pub struct FusedTrainer {
    ctx: GpuContext,
    spec: MlpSpec,
    layout: PoolLayout,
    uniform: wgpu::Buffer,
    settings: FusedParams,
    optimizer: Optimizer,
    weights: wgpu::Buffer,
    /// Momentum's velocity, or Adam's m then v, in the layout of `weights`.
    state: wgpu::Buffer,
    control: wgpu::Buffer,
    ring: wgpu::Buffer,
    staging: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    train_pipeline: wgpu::ComputePipeline,
    evaluate_pipeline: wgpu::ComputePipeline,
    rows: usize,
    steps_per_epoch: usize,
    classify: bool,
    /// Bytes allocated by construction, counted by the context.
    gpu_bytes: u64,
}

impl FusedTrainer {
    /// Whether the fused path takes this run; [`FusedTrainer::check`] says why not.
    pub fn fits(ctx: &GpuContext, run: &Run) -> bool {
        Self::check(ctx, run).is_ok()
    }

    /// Ok when the fused path takes this run, else an error saying what stops it.
    pub fn check(ctx: &GpuContext, run: &Run) -> Result<()> {
        run.check()?;
        Self::plan(ctx, run).map(|_| ())
    }

    fn plan(ctx: &GpuContext, run: &Run) -> Result<PoolLayout> {
        let Run { spec, train, test, config, .. } = *run;
        let no = |why: String| Err(Error::InvalidInput(format!("the fused path does not apply: {why}")));
        if config.shuffle {
            return no("it takes the batches in order, without shuffling".into());
        }
        if test.is_some() {
            return no("it does not evaluate a test set".into());
        }
        if config.clip != crate::train::Clip::default() {
            return no("it does not clip gradients (`clip_grad_norm`, `clip_grad_value`)".into());
        }
        if config.dropout.is_on() {
            return no("it does not drop units (`dropout`)".into());
        }
        if config.dp.is_some() {
            return no("it does not run DP-SGD (`dp`)".into());
        }
        if !config.lr_schedule.is_constant() {
            return no("it trains at one learning rate, and `lr_schedule` changes it".into());
        }
        if spec.num_layers() > MAX_LAYERS {
            return no(format!("{} layers, above its {MAX_LAYERS}", spec.num_layers()));
        }
        let limits = &ctx.limits;
        let workgroup = match ctx.info.device_type {
            wgpu::DeviceType::Cpu => CPU_WORKGROUP,
            _ => GPU_WORKGROUP,
        };
        if (limits.max_compute_invocations_per_workgroup as usize) < workgroup
            || (limits.max_compute_workgroup_size_x as usize) < workgroup
        {
            return no(format!("the adapter runs fewer than {workgroup} invocations per workgroup"));
        }
        let allowed = u64::from(limits.max_compute_workgroup_storage_size);
        // A layer or a data set larger than the whole pool cannot fit; ruling
        // them out first keeps the layout's products far from overflowing.
        let pool_floats = (allowed / 4) as usize;
        if train.len() > pool_floats || spec.sizes().iter().any(|&size| size > pool_floats) {
            return no(format!(
                "{} rows of layers {spec} exceed the adapter's max_compute_workgroup_storage_size of {allowed} bytes",
                train.len()
            ));
        }
        let layout = PoolLayout::new(spec, train.len(), config.rows_per_batch(train), config.optimizer, workgroup);
        let bytes = (layout.len as u64).saturating_mul(4).saturating_add(SCALAR_BYTES);
        if bytes > allowed {
            return no(format!(
                "the net, its state and the data need {bytes} bytes of workgroup memory, above the adapter's \
                 max_compute_workgroup_storage_size of {allowed}"
            ));
        }
        Ok(layout)
    }

    /// Uploads `params` and the data and builds the pipelines (the pool sized
    /// to this model) and the one bind group; fails if the run does not fit.
    pub fn new(ctx: &GpuContext, run: &Run) -> Result<Self> {
        run.check()?;
        let layout = Self::plan(ctx, run)?;
        let build = || Self::build(ctx, run.spec, run.params, run.train, run.config, layout);
        let (trainer, gpu_bytes) = ctx.scoped_counting("building the fused trainer", build)?;
        Ok(Self { gpu_bytes, ..trainer })
    }

    fn build(
        ctx: &GpuContext,
        spec: &MlpSpec,
        params: &Params,
        train: &Dataset,
        config: &TrainConfig,
        layout: PoolLayout,
    ) -> Result<Self> {
        let rows = train.len();
        let batch = config.rows_per_batch(train);
        let steps_per_epoch = batches(rows, batch).len();
        let macs_per_epoch = rows * 3 * spec.layer_shapes().map(|(i, o)| i * o).sum::<usize>();
        let settings = Self::settings(spec, &layout, train, config, MAX_MACS_PER_DISPATCH / macs_per_epoch.max(1));

        const ADVICE: &str = "use the layered GPU path";
        let uniform = ctx.buffer_init("fused.params", bytemuck::bytes_of(&settings), Usage::UNIFORM | Usage::COPY_DST);
        let weights = ctx.upload("fused.weights", &layout.params.pack(params), STORAGE, ADVICE)?;
        let state = ctx.zeros("fused.state", layout.state_len, STORAGE, ADVICE)?;
        let flat = |values: &Array2<f32>| values.as_standard_layout().iter().copied().collect::<Vec<f32>>();
        let x = ctx.upload("fused.x", &flat(&train.x), STORAGE, ADVICE)?;
        let y = ctx.upload("fused.y", &flat(&train.y), STORAGE, ADVICE)?;
        let control = ctx.zeros("fused.control", CONTROL_LEN, STORAGE, ADVICE)?;
        let ring = ctx.zeros("fused.ring", RING_EPOCHS * RING_ENTRY, STORAGE, ADVICE)?;
        let staging = ctx.staging("fused.staging", (RING_EPOCHS * RING_ENTRY).max(layout.params.len))?;

        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let uniform_entry = wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        // One layout for both entry points: fused_evaluate leaves state and ring unused.
        let bind_layout = ctx.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("fused.bind_layout"),
            entries: &[
                uniform_entry,
                storage(1, false),
                storage(2, false),
                storage(3, true),
                storage(4, true),
                storage(5, false),
                storage(6, false),
            ],
        });
        let buffers = [&uniform, &weights, &state, &x, &y, &control, &ring];
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, buffer)| wgpu::BindGroupEntry { binding: i as u32, resource: buffer.as_entire_binding() })
            .collect();
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("fused.bind_group"),
            layout: &bind_layout,
            entries: &entries,
        });
        let pipeline_layout = ctx.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("fused.pipeline_layout"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let module = shaders::compile(&ctx.device, "fused_mlp");
        let constants = [("POOL_FLOATS", layout.len as f64), ("WORKGROUP", layout.workgroup as f64)];
        let pipeline = |entry: &str| {
            ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                // The shader writes every pool float before reading it, so
                // zeroing the pool first would be wasted work.
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
        };
        Ok(Self {
            ctx: ctx.clone(),
            spec: spec.clone(),
            train_pipeline: pipeline("fused_train"),
            evaluate_pipeline: pipeline("fused_evaluate"),
            layout,
            uniform,
            settings,
            optimizer: config.optimizer,
            weights,
            state,
            control,
            ring,
            staging,
            bind_group,
            rows,
            steps_per_epoch,
            classify: train.classes.is_some(),
            gpu_bytes: 0,
        })
    }

    fn settings(
        spec: &MlpSpec,
        layout: &PoolLayout,
        train: &Dataset,
        config: &TrainConfig,
        epochs_per_dispatch: usize,
    ) -> FusedParams {
        let u = |value: usize| u32::try_from(value).expect("the pool fits in workgroup memory, far below u32::MAX");
        let mut settings = FusedParams::zeroed();
        for (i, &size) in spec.sizes().iter().enumerate() {
            settings.sizes[i] = u(size);
        }
        for l in 0..spec.num_layers() {
            settings.w_off[l] = u(layout.params.layers[l].w);
            settings.b_off[l] = u(layout.params.layers[l].b);
            settings.act_off[l] = u(layout.act_off[l]);
            settings.pre_off[l] = u(layout.pre_off[l].unwrap_or(0));
        }
        let (optimizer, momentum, (beta1, beta2, eps)) = match config.optimizer {
            Optimizer::Sgd => (OPTIMIZER_SGD, 0.0, (0.0, 0.0, 0.0)),
            Optimizer::Momentum { momentum } => (OPTIMIZER_MOMENTUM, momentum, (0.0, 0.0, 0.0)),
            Optimizer::Adam { beta1, beta2, eps } => (OPTIMIZER_ADAM, 0.0, (beta1, beta2, eps)),
        };
        FusedParams {
            layers: u(spec.num_layers()),
            rows: u(train.len()),
            batch: u(config.rows_per_batch(train)),
            epochs_per_dispatch: u(epochs_per_dispatch.clamp(1, u32::MAX as usize)),
            hidden: activation_code(spec.hidden()),
            output: activation_code(spec.activation(spec.num_layers() - 1)),
            loss: match spec.loss() {
                Loss::Mse => 0,
                Loss::CrossEntropy => 1,
                Loss::Bce => 2,
            },
            optimizer,
            classify: train.classes.is_some().into(),
            params_len: u(layout.params.len),
            state_len: u(layout.state_len),
            grads_off: u(layout.grads_off),
            state_off: u(layout.state_off),
            x_off: u(layout.x_off),
            y_off: u(layout.y_off),
            reduce_off: u(layout.reduce_off),
            delta0_off: u(layout.delta_off[0]),
            delta1_off: u(layout.delta_off[1]),
            negative_slope: spec.negative_slope(),
            lr: config.lr,
            weight_decay: config.weight_decay,
            momentum,
            beta1,
            beta2,
            eps,
            ..settings
        }
    }

    /// Epochs one dispatch runs at most (a `train` call records as many
    /// dispatches as its epochs need, in one submit).
    pub fn epochs_per_dispatch(&self) -> usize {
        self.settings.epochs_per_dispatch as usize
    }

    /// Sets [`FusedTrainer::epochs_per_dispatch`] (at least 1): fewer bound
    /// each dispatch's time more tightly, more save dispatches.
    pub fn set_epochs_per_dispatch(&mut self, epochs: usize) {
        self.settings.epochs_per_dispatch = epochs.clamp(1, u32::MAX as usize) as u32;
        // Lands before the next submit, as every write of this trainer does.
        self.ctx.queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&self.settings));
    }

    /// Trains `epochs` epochs, at most the ring's [`RING_EPOCHS`], with one
    /// read-back at the end. Each dispatch is a submit of its own, asking
    /// `stop` before it: a dispatch ends on an epoch boundary, so stopping
    /// needs no going back.
    fn train_chunk(&mut self, epochs: usize, stop: &dyn Fn() -> bool) -> Result<Vec<EpochMetrics>> {
        self.ctx.scoped("training (fused)", || {
            // Control.epochs_left and .ring_pos; Control.adam_step stays on the GPU.
            let start = [epochs as u32, 0u32];
            self.ctx.queue.write_buffer(&self.control, 4, bytemuck::cast_slice(&start));
            let (mut submitted, mut in_flight) = (0, None);
            while submitted < epochs && !stop() {
                let index = self.submit("fused_train", &self.train_pipeline, 1);
                submitted = (submitted + self.epochs_per_dispatch()).min(epochs);
                if let Some(previous) = in_flight.replace(index) {
                    self.ctx.wait_for(previous)?;
                }
            }
            if submitted == 0 {
                return Ok(Vec::new());
            }
            let sums = self.ctx.read_back(Region::new(&self.ring, submitted * RING_ENTRY), &self.staging)?;
            Ok(MetricSlots::fused(self.classify).decode(&sums, &self.spec, self.rows, None, &[]))
        })
    }

    /// Records `dispatches` dispatches of `pipeline` in one pass and submits.
    fn submit(&self, label: &str, pipeline: &wgpu::ComputePipeline, dispatches: usize) -> wgpu::SubmissionIndex {
        let mut encoder =
            self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        {
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(label), timestamp_writes: None });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &self.bind_group, &[]);
            for _ in 0..dispatches {
                pass.dispatch_workgroups(1, 1, 1);
                self.ctx.counters.add_dispatch();
            }
        }
        self.ctx.submit(encoder)
    }
}

impl Trainer for FusedTrainer {
    fn device(&self) -> String {
        format!("{} fused", self.ctx.describe())
    }

    fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    fn gpu_bytes(&self) -> Option<u64> {
        Some(self.gpu_bytes)
    }

    /// The fused path takes constant rates only ([`FusedTrainer::check`]),
    /// so there is no schedule to follow.
    fn set_schedule(&mut self, _next_epoch: usize, _lr_scale: f32) {}

    fn train_until(&mut self, epochs: usize, stop: &dyn Fn() -> bool) -> Result<Vec<EpochMetrics>> {
        super::train_in_chunks(epochs, RING_EPOCHS, |chunk| self.train_chunk(chunk, stop))
    }

    fn evaluate(&mut self) -> Result<f32> {
        self.ctx.scoped("evaluating the loss (fused)", || {
            self.submit("fused_evaluate", &self.evaluate_pipeline, 1);
            let eval_loss = Region { buffer: &self.control, offset: EVAL_LOSS, len: 1 };
            let sum = self.ctx.read_back(eval_loss, &self.staging)?;
            Ok(sum[0] / self.spec.loss_divisor(self.rows))
        })
    }

    fn params(&mut self) -> Result<Params> {
        let flat = self.ctx.scoped("reading the parameters (fused)", || {
            self.ctx.read_back(Region::new(&self.weights, self.layout.params.len), &self.staging)
        })?;
        Ok(self.layout.params.unpack(&flat))
    }

    fn state(&mut self) -> Result<TrainState> {
        let params = self.params()?;
        let len = self.layout.params.len;
        let optimizer = self.ctx.scoped("reading the optimizer state (fused)", || {
            let flat = self.ctx.read_buffer(&self.state)?;
            let unpack = |part: usize| self.layout.params.unpack(&flat[part * len..(part + 1) * len]);
            Ok(match self.optimizer {
                Optimizer::Sgd => OptimizerState::Sgd,
                Optimizer::Momentum { .. } => OptimizerState::Momentum { velocity: unpack(0) },
                Optimizer::Adam { .. } => {
                    let control = self.ctx.read_buffer(&self.control)?;
                    OptimizerState::Adam {
                        m: unpack(0),
                        v: unpack(1),
                        step: bytemuck::cast_slice::<f32, u32>(&control)[0],
                    }
                }
            })
        })?;
        // Batches go in order here: there is no shuffle to resume.
        Ok(TrainState { params, optimizer, shuffle_position: 0 })
    }

    fn restore(&mut self, state: &TrainState) -> Result<()> {
        state.check_fits(&self.params()?, self.optimizer)?;
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.weights, 0, bytemuck::cast_slice(&self.layout.params.pack(&state.params)));
        let saved: Vec<f32> = match &state.optimizer {
            OptimizerState::Sgd => return Ok(()),
            OptimizerState::Momentum { velocity } => self.layout.params.pack(velocity),
            OptimizerState::Adam { m, v, step } => {
                queue.write_buffer(&self.control, 0, bytemuck::bytes_of(step));
                [self.layout.params.pack(m), self.layout.params.pack(v)].concat()
            }
        };
        queue.write_buffer(&self.state, 0, bytemuck::cast_slice(&saved));
        Ok(())
    }
}
