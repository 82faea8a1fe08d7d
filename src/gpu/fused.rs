//! The fused small-net path: one dispatch of shaders/fused_mlp.wgsl runs
//! many whole training steps (a single workgroup looping over epochs and
//! batches with barriers between the phases), so an epoch costs no dispatch.
//!
//! What it takes ([`FusedTrainer::check`], [`FusedTrainer::fits`]): any batch
//! size (the last batch may be shorter), shuffled or in-order batches, a test
//! set scored after every epoch when classifying (a regression's test errors
//! would need per-output sums: not taken), at most [`MAX_LAYERS`] layers, no
//! clipping, dropout, DP-SGD or schedule. Anything else goes to the layered
//! [`super::LayeredTrainer`].
//!
//! The pool, one f32 array sized to the model (P = parameters, S = optimizer
//! state: 0, P or 2P; B batch rows):
//!   params (P) | grads (P) | state (S) | batch_x (B, IN) | batch_y (B, OUT) |
//!   a_l (B, OUT_l) per layer | z_l (B, OUT_l) per GELU layer |
//!   delta0, delta1 (B, max OUT_l) | reduce (2, WG)
//! lives in workgroup memory ([`FusedPool::Workgroup`]) when it fits the
//! adapter's `max_compute_workgroup_storage_size` (32 KiB on lavapipe, 16 KiB
//! by default), else in a storage buffer ([`FusedPool::Storage`]).
//! WG, the workgroup's invocations, is 256 on a GPU and 8 on a CPU driver.
//! The data stay in storage buffers: x (N + T, IN) and y (N + T, OUT), the
//! training rows then the test rows; each step gathers its batch through the
//! epoch's row order (order, (E, N) u32: the same [`Shuffler`] stream as the
//! other paths, written for the epochs of a read-back). Params and state are
//! also in storage buffers, read at the start of each dispatch and written
//! back at its end; each epoch's sums (loss, correct count, then the test
//! set's) go to a ring of [`RING_EPOCHS`] entries, read back once per `train`
//! call (per [`RING_EPOCHS`] epochs in a longer call, or per
//! [`order_epochs`] when shuffling).

use bytemuck::{Pod, Zeroable};
use ndarray::Array2;

use crate::data::{batches, Dataset, Shuffler};
use crate::error::{Error, Result};
use crate::model::{Loss, MlpSpec, Params};
use crate::train::{EpochMetrics, Optimizer, OptimizerState, Run, TrainState, Trainer};

use super::layered::{order_epochs, RING_EPOCHS};
use super::metrics::{MetricSlots, FUSED_SUMS};

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
/// Storage buffers both variants bind (weights, state, x, y, control, ring,
/// order); the storage variant binds its pool as one more.
const STORAGE_BINDINGS: u32 = 7;
/// On a CPU adapter, `--path auto` takes the storage pool for steps of up to
/// this many multiply-adds of the forward pass (batch rows times weights).
/// Measured on lavapipe (BENCHMARKS.md, 2026-12-01, load average 4.3 on 2
/// cores), where the one workgroup runs on one thread and the layered kernels
/// on every core, digits in batches of 32, fused over layered time: 64-64-10
/// (151 k) 0.45-0.69x, 64-128-10 (303 k) 0.58-0.77x, 64-256-10 (606 k)
/// 0.72-0.82x, 64-512-10 (1.2 M) 0.71-1.21x. An idle machine gives the
/// layered path its second core, so the line is drawn below the last two.
const MAX_AUTO_STORAGE_STEP_MACS: usize = 1 << 19;
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
    batch_x_off: u32,
    batch_y_off: u32,
    reduce_off: u32,
    delta0_off: u32,
    delta1_off: u32,
    negative_slope: f32,
    test_rows: u32,
    lr: f32,
    weight_decay: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    order_stride: u32,
    ring_entry: u32,
    sizes: [u32; 12],
    w_off: [u32; MAX_LAYERS],
    b_off: [u32; MAX_LAYERS],
    act_off: [u32; MAX_LAYERS],
    pre_off: [u32; MAX_LAYERS],
}

/// Where the fused shader's pool lives: the prelude its variant is built with
/// (shaders/fused_pool_workgroup.wgsl or fused_pool_storage.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FusedPool {
    /// In workgroup memory, within the adapter's max_compute_workgroup_storage_size.
    Workgroup,
    /// In a storage buffer, for nets whose state is above it.
    Storage,
}

/// Where everything sits in the pool (floats). Params are packed without
/// padding, W_l (IN, OUT) then b_l (OUT) per layer, in the storage buffer too.
struct PoolLayout {
    params: ParamLayout,
    state_len: usize,
    grads_off: usize,
    state_off: usize,
    batch_x_off: usize,
    batch_y_off: usize,
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
    fn new(spec: &MlpSpec, batch: usize, optimizer: Optimizer, workgroup: usize) -> Self {
        let params = ParamLayout::new(spec, 1);
        let params_len = params.len;
        let state_len = match optimizer {
            Optimizer::Sgd => 0,
            Optimizer::Momentum { .. } => params_len,
            Optimizer::Adam { .. } => 2 * params_len,
        };
        let grads_off = params_len;
        let state_off = grads_off + params_len;
        let batch_x_off = state_off + state_len;
        let batch_y_off = batch_x_off + batch * spec.inputs();
        let mut len = batch_y_off + batch * spec.outputs();
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
        len = reduce_off + FUSED_SUMS * workgroup;
        Self {
            params,
            state_len,
            grads_off,
            state_off,
            batch_x_off,
            batch_y_off,
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
    /// The training rows then the test rows: (N + T, IN) and (N + T, OUT).
    x: wgpu::Buffer,
    y: wgpu::Buffer,
    control: wgpu::Buffer,
    ring: wgpu::Buffer,
    /// Each epoch's row order of a read-back when shuffling, else one (0, 1, 2, ...).
    order: wgpu::Buffer,
    /// The pool of the storage variant; None where it is in workgroup memory.
    pool: Option<wgpu::Buffer>,
    staging: wgpu::Buffer,
    bind_layout: wgpu::BindGroupLayout,
    bind_group: wgpu::BindGroup,
    train_pipeline: wgpu::ComputePipeline,
    evaluate_pipeline: wgpu::ComputePipeline,
    rows: usize,
    test_rows: Option<usize>,
    steps_per_epoch: usize,
    slots: MetricSlots,
    shuffler: Shuffler,
    /// Bytes allocated by construction, counted by the context.
    gpu_bytes: u64,
}

impl FusedTrainer {
    /// Whether the fused path takes this run; [`FusedTrainer::check`] says why not.
    pub fn fits(ctx: &GpuContext, run: &Run) -> bool {
        Self::check(ctx, run).is_ok()
    }

    /// Where the pool of this run goes, or an error saying what stops the fused path.
    pub fn check(ctx: &GpuContext, run: &Run) -> Result<FusedPool> {
        run.check()?;
        Self::plan(ctx, run).map(|(_, pool)| pool)
    }

    /// Whether `--path auto` takes the fused path. With the pool in workgroup
    /// memory: on a CPU adapter always; on a GPU by the rule from before the
    /// data left the pool, that the pool and the training rows fit workgroup
    /// memory together (one workgroup works through every row, so more rows
    /// go to the layered path's many workgroups until a GPU has measured the
    /// line). With the storage pool: on a CPU adapter for steps of at most
    /// 2^19 multiply-adds in the forward pass; on a GPU never, as none has measured it.
    pub fn preferred(ctx: &GpuContext, run: &Run) -> bool {
        if run.check().is_err() {
            return false;
        }
        let Ok((layout, pool)) = Self::plan(ctx, run) else { return false };
        let on_cpu_adapter = ctx.info.device_type == wgpu::DeviceType::Cpu;
        match pool {
            FusedPool::Workgroup => {
                let data_floats = run.train.len() * (run.spec.inputs() + run.spec.outputs());
                let bytes = ((layout.len + data_floats) as u64).saturating_mul(4).saturating_add(SCALAR_BYTES);
                on_cpu_adapter || bytes <= u64::from(ctx.limits.max_compute_workgroup_storage_size)
            }
            FusedPool::Storage => on_cpu_adapter && step_macs(run) <= MAX_AUTO_STORAGE_STEP_MACS,
        }
    }

    fn plan(ctx: &GpuContext, run: &Run) -> Result<(PoolLayout, FusedPool)> {
        let Run { spec, train, test, config, .. } = *run;
        let no = |why: String| Err(Error::InvalidInput(format!("the fused path does not apply: {why}")));
        if test.is_some() && train.classes.is_none() {
            return no(
                "it scores a test set for classification only (a regression's test errors need sums per output)".into(),
            );
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
        let in_workgroup = u64::from(limits.max_compute_workgroup_storage_size);
        let in_storage = limits.max_storage_buffer_binding_size;
        // A layer larger than the largest pool cannot fit; ruling it out
        // first keeps the layout's products far from overflowing.
        let pool_floats = (in_storage.max(in_workgroup) / 4) as usize;
        let batch = config.rows_per_batch(train);
        if batch > pool_floats || spec.sizes().iter().any(|&size| size > pool_floats) {
            return no(format!(
                "batches of {batch} rows of layers {spec} exceed the adapter's max_storage_buffer_binding_size of \
                 {in_storage} bytes"
            ));
        }
        // x holds the training then the test rows in one binding (y is narrower
        // unless the net has more outputs than inputs).
        let data_rows = train.len() + test.map_or(0, Dataset::len);
        let widest = spec.inputs().max(spec.outputs());
        let data_bytes = (data_rows as u64).saturating_mul(widest as u64).saturating_mul(4);
        if data_bytes > in_storage {
            return no(format!(
                "its {data_rows} rows of {widest} values take {data_bytes} bytes in one buffer, above the adapter's \
                 max_storage_buffer_binding_size of {in_storage}"
            ));
        }
        let layout = PoolLayout::new(spec, batch, config.optimizer, workgroup);
        let bytes = (layout.len as u64).saturating_mul(4);
        if bytes.saturating_add(SCALAR_BYTES) <= in_workgroup {
            return Ok((layout, FusedPool::Workgroup));
        }
        if limits.max_storage_buffers_per_shader_stage < STORAGE_BINDINGS + 1 {
            return no(format!(
                "the net and its state need {bytes} bytes, above the adapter's max_compute_workgroup_storage_size \
                 of {in_workgroup}, and the adapter binds fewer than {} storage buffers for the storage pool",
                STORAGE_BINDINGS + 1
            ));
        }
        if bytes > in_storage {
            return no(format!(
                "the net, its state and a batch need {bytes} bytes, above the adapter's \
                 max_storage_buffer_binding_size of {in_storage}"
            ));
        }
        Ok((layout, FusedPool::Storage))
    }

    /// Uploads `params` and the data and builds the pipelines (the pool sized
    /// to this model) and the one bind group; fails if the run does not fit.
    pub fn new(ctx: &GpuContext, run: &Run) -> Result<Self> {
        run.check()?;
        let (layout, pool) = Self::plan(ctx, run)?;
        let build = || Self::build(ctx, run, layout, pool);
        let (trainer, gpu_bytes) = ctx.scoped_counting("building the fused trainer", build)?;
        Ok(Self { gpu_bytes, ..trainer })
    }

    fn build(ctx: &GpuContext, run: &Run, layout: PoolLayout, pool: FusedPool) -> Result<Self> {
        let Run { spec, params, train, test, config } = *run;
        let rows = train.len();
        let test_rows = test.map(Dataset::len);
        let batch = config.rows_per_batch(train);
        let steps_per_epoch = batches(rows, batch).len();
        let slots = MetricSlots::fused(train.classes.is_some(), test.is_some());
        let rows_per_epoch = 3 * rows + test_rows.unwrap_or(0);
        let macs_per_epoch = rows_per_epoch * spec.layer_shapes().map(|(i, o)| i * o).sum::<usize>();
        let epochs_per_dispatch = MAX_MACS_PER_DISPATCH / macs_per_epoch.max(1);
        let settings = Self::settings(run, &layout, &slots, epochs_per_dispatch);

        const ADVICE: &str = "use the layered GPU path";
        let uniform = ctx.buffer_init("fused.params", bytemuck::bytes_of(&settings), Usage::UNIFORM | Usage::COPY_DST);
        let weights = ctx.upload("fused.weights", &layout.params.pack(params), STORAGE, ADVICE)?;
        let state = ctx.zeros("fused.state", layout.state_len, STORAGE, ADVICE)?;
        // (N + T, width): the training rows, then the test rows.
        let flat = |pick: fn(&Dataset) -> &Array2<f32>| {
            std::iter::once(train).chain(test).flat_map(|data| pick(data).as_standard_layout().into_owned()).collect()
        };
        let (x_values, y_values): (Vec<f32>, Vec<f32>) = (flat(|d| &d.x), flat(|d| &d.y));
        let x = ctx.upload("fused.x", &x_values, STORAGE, ADVICE)?;
        let y = ctx.upload("fused.y", &y_values, STORAGE, ADVICE)?;
        let control = ctx.zeros("fused.control", CONTROL_LEN, STORAGE, ADVICE)?;
        let ring = ctx.zeros("fused.ring", RING_EPOCHS * slots.count, STORAGE, ADVICE)?;
        // One order at first; shuffled runs grow it at their first read-back.
        let identity: Vec<u32> = (0..rows as u32).collect();
        let order = ctx.upload("fused.order", &identity, STORAGE, "use fewer training rows")?;
        let pool_buffer = match pool {
            FusedPool::Workgroup => None,
            FusedPool::Storage => Some(ctx.zeros("fused.pool", layout.len, Usage::STORAGE, ADVICE)?),
        };
        let staging = ctx.staging("fused.staging", (RING_EPOCHS * slots.count).max(layout.params.len))?;

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
        // One layout for both entry points: fused_evaluate leaves state, ring and order unused.
        let mut entries = vec![
            uniform_entry,
            storage(1, false),
            storage(2, false),
            storage(3, true),
            storage(4, true),
            storage(5, false),
            storage(6, false),
            storage(7, true),
        ];
        if pool_buffer.is_some() {
            entries.push(storage(8, false));
        }
        let bind_layout = ctx.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("fused.bind_layout"),
            entries: &entries,
        });
        let pipeline_layout = ctx.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("fused.pipeline_layout"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let (module_name, constants) = match pool {
            FusedPool::Workgroup => ("fused_mlp_workgroup", vec![("POOL_FLOATS", layout.len as f64)]),
            FusedPool::Storage => ("fused_mlp_storage", Vec::new()),
        };
        let constants = [constants, vec![("WORKGROUP", layout.workgroup as f64)]].concat();
        let module = shaders::compile(&ctx.device, module_name);
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
        let bound = [&uniform, &weights, &state, &x, &y, &control, &ring, &order];
        let bind_group = bind_all(ctx, &bind_layout, bound.into_iter().chain(&pool_buffer));
        Ok(Self {
            ctx: ctx.clone(),
            spec: spec.clone(),
            train_pipeline: pipeline("fused_train"),
            evaluate_pipeline: pipeline("fused_evaluate"),
            bind_group,
            bind_layout,
            layout,
            uniform,
            settings,
            optimizer: config.optimizer,
            weights,
            state,
            x,
            y,
            control,
            ring,
            order,
            pool: pool_buffer,
            staging,
            rows,
            test_rows,
            steps_per_epoch,
            slots,
            shuffler: Shuffler::new(config.shuffle, config.seed),
            gpu_bytes: 0,
        })
    }

    fn settings(run: &Run, layout: &PoolLayout, slots: &MetricSlots, epochs_per_dispatch: usize) -> FusedParams {
        let Run { spec, train, test, config, .. } = *run;
        let u = |value: usize| u32::try_from(value).expect("sizes and offsets fit one storage binding, below u32::MAX");
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
            batch_x_off: u(layout.batch_x_off),
            batch_y_off: u(layout.batch_y_off),
            reduce_off: u(layout.reduce_off),
            delta0_off: u(layout.delta_off[0]),
            delta1_off: u(layout.delta_off[1]),
            negative_slope: spec.negative_slope(),
            test_rows: u(test.map_or(0, Dataset::len)),
            lr: config.lr,
            weight_decay: config.weight_decay,
            momentum,
            beta1,
            beta2,
            eps,
            order_stride: if config.shuffle { u(train.len()) } else { 0 },
            ring_entry: u(slots.count),
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

    /// Trains `epochs` epochs, at most the ring's [`RING_EPOCHS`] (and when
    /// shuffling [`order_epochs`]), with one read-back at the end. Each
    /// dispatch is a submit of its own, asking `stop` before it: a dispatch
    /// ends on an epoch boundary, so a stop only puts the shuffler back to
    /// where the epochs run end.
    fn train_chunk(&mut self, epochs: usize, stop: &dyn Fn() -> bool) -> Result<Vec<EpochMetrics>> {
        let orders = (self.order.size() / 4) as usize / self.rows;
        if self.shuffler.is_shuffling() && orders < epochs {
            self.order = self.ctx.zeros("fused.order", self.rows * epochs, STORAGE, "use a smaller `log_every`")?;
            let bound = [&self.uniform, &self.weights, &self.state, &self.x, &self.y, &self.control, &self.ring];
            let bound = bound.into_iter().chain([&self.order]).chain(&self.pool);
            self.bind_group = bind_all(&self.ctx, &self.bind_layout, bound);
        }
        let ctx = self.ctx.clone();
        ctx.scoped("training (fused)", || {
            // Every epoch's order, written once; it lands before the first
            // submit below. Without shuffling the one order stays 0, 1, 2, ...
            // The shuffler's position before each epoch and after the last,
            // for a stop to go back to.
            let mut positions = Vec::with_capacity(epochs + 1);
            let mut orders = Vec::new();
            for _ in 0..epochs {
                positions.push(self.shuffler.position());
                orders.extend(self.shuffler.epoch_order(self.rows).unwrap_or_default());
            }
            positions.push(self.shuffler.position());
            if !orders.is_empty() {
                self.ctx.queue.write_buffer(&self.order, 0, bytemuck::cast_slice(&orders));
            }
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
            self.shuffler.set_position(positions[submitted]);
            if submitted == 0 {
                return Ok(Vec::new());
            }
            let sums = self.ctx.read_back(Region::new(&self.ring, submitted * self.slots.count), &self.staging)?;
            Ok(self.slots.decode(&sums, &self.spec, self.rows, self.test_rows, &[]))
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
        let capacity = if self.shuffler.is_shuffling() { order_epochs(self.rows) } else { RING_EPOCHS };
        super::train_in_chunks(epochs, capacity, |chunk| self.train_chunk(chunk, stop))
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
        Ok(TrainState { params, optimizer, shuffle_position: self.shuffler.position() })
    }

    fn restore(&mut self, state: &TrainState) -> Result<()> {
        state.check_fits(&self.params()?, self.optimizer)?;
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.weights, 0, bytemuck::cast_slice(&self.layout.params.pack(&state.params)));
        self.shuffler.set_position(state.shuffle_position);
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

/// The one bind group: `buffers` at bindings 0, 1, 2, ... in that order.
fn bind_all<'a>(
    ctx: &GpuContext,
    layout: &wgpu::BindGroupLayout,
    buffers: impl IntoIterator<Item = &'a wgpu::Buffer>,
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = buffers
        .into_iter()
        .enumerate()
        .map(|(i, buffer)| wgpu::BindGroupEntry { binding: i as u32, resource: buffer.as_entire_binding() })
        .collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("fused.bind_group"),
        layout,
        entries: &entries,
    })
}

/// Multiply-adds of one step's forward pass: batch rows times the weights.
fn step_macs(run: &Run) -> usize {
    let weights: usize = run.spec.layer_shapes().map(|(fan_in, fan_out)| fan_in * fan_out).sum();
    run.config.rows_per_batch(run.train).saturating_mul(weights)
}
