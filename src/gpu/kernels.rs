//! The kernel table: one compute pipeline per WGSL entry point, built once per
//! device (uniform structs in uniforms.rs). Each kernel method binds buffers to
//! its pipeline and returns a [`Dispatch`]: done at construction, so a training
//! step only records.

use bytemuck::Pod;

use std::sync::Arc;

use super::context::{Counters, GpuContext, Region};
use super::settings::{KernelSettings, MatmulKernel};
use super::shaders::compile;
use super::tuning::MatmulTuning;
use super::uniforms::{
    activation_code, ActivationParams, AdamParams, BceParams, ColumnSumParams, CountCorrectParams, DropoutMask,
    Epilogue, GatherParams, GradNormParams, MatmulParams, MomentumParams, MseParams, NoiseParams, RegressionParams,
    RowNormParams, ScaleRowsParams, SgdParams, SoftmaxCrossEntropyParams, ADAM_STATE_LEN, GRAD_NORM_GROUPS,
    STEP_CONTROL_LEN,
};
use crate::error::{Error, Result};
use crate::model::Activation;

/// Invocations per workgroup of the element-wise kernels (all but matmul).
pub const WORKGROUP_SIZE: u32 = 256;
/// The columns of pred and expected, both (rows, cols): a caller's bug otherwise.
fn rows_by_cols(label: &str, pred: Region, expected: Region, rows: u32) -> u32 {
    let cols = (pred.len / u64::from(rows)) as u32;
    assert_eq!(
        (pred.len, expected.len),
        (u64::from(rows * cols), pred.len),
        "{label}: pred and expected must be (rows, cols)"
    );
    cols
}

/// Storage buffers the matmul kernel binds (shaders/matmul_common.wgsl), the
/// most of any kernel: the adapter must allow this many in one shader.
const MATMUL_STORAGE_BUFFERS: u32 = 8;
/// Source chunks shaders/gather.wgsl can read: data sets up to this many
/// storage bindings stay on the GPU.
pub const MAX_CHUNKS: usize = 4;

/// A pipeline with its bound buffers and grid, ready to record.
#[derive(Clone, Debug)]
pub struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
    counters: Arc<Counters>,
    /// The params uniform (binding 0), which a step may overwrite in part
    /// (DP-SGD writes each step's row count into the loss kernels').
    params: wgpu::Buffer,
}

impl Dispatch {
    /// Records the dispatch into `pass` and counts it; recording only, the
    /// work runs when the encoder is submitted.
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.counters.add_dispatch();
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }

    /// The params uniform it reads, COPY_DST: a copy into its first word
    /// before the dispatch changes the rows (or elements) a loss kernel covers.
    pub fn params_buffer(&self) -> &wgpu::Buffer {
        &self.params
    }

    /// Workgroups in the grid; mse_grad writes one loss partial per workgroup.
    pub fn workgroup_count(&self) -> u32 {
        self.workgroups.iter().product()
    }
}

/// Every kernel's pipeline on one device.
#[derive(Clone, Debug)]
pub struct Kernels {
    ctx: GpuContext,
    /// The matmul kernel of every product, unless `tuning` chooses per shape class.
    matmul_kernel: MatmulKernel,
    /// With tuning, the kernel of each shape class, timed at its first product.
    tuning: Option<Arc<MatmulTuning>>,
    /// The most workgroups a grid-stride kernel gets; None: one per 256 elements.
    strided_groups: Option<u32>,
    /// Per kernel built (the one of the settings, or every one with
    /// tuning): a pipeline per (trans_a, trans_b), indexed 2 * trans_a + trans_b.
    matmul: Vec<(MatmulKernel, [wgpu::ComputePipeline; 4])>,
    /// activation_backward for sigmoid, relu, tanh, leaky relu and gelu,
    /// indexed by code - 1 (the identity needs no dispatch).
    activation_backward: [wgpu::ComputePipeline; 5],
    mse_grad: wgpu::ComputePipeline,
    bce_grad: wgpu::ComputePipeline,
    softmax_cross_entropy: wgpu::ComputePipeline,
    count_correct: wgpu::ComputePipeline,
    column_sum: wgpu::ComputePipeline,
    gather_rows: wgpu::ComputePipeline,
    gather_elements: wgpu::ComputePipeline,
    sgd_update: wgpu::ComputePipeline,
    momentum_update: wgpu::ComputePipeline,
    adam_tick: wgpu::ComputePipeline,
    adam_update: wgpu::ComputePipeline,
    square_partials: wgpu::ComputePipeline,
    clip_scale: wgpu::ComputePipeline,
    dp_row_norms: wgpu::ComputePipeline,
    dp_scale_rows: wgpu::ComputePipeline,
    dp_add_noise: wgpu::ComputePipeline,
    regression_sums: wgpu::ComputePipeline,
}

impl Kernels {
    /// Compiles every shader and builds its pipelines, with the matmul kernel
    /// that suits the adapter.
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        Self::with_settings(ctx, KernelSettings::for_adapter(&ctx.info))
    }

    /// Like [`Kernels::new`], with the given settings.
    pub fn with_settings(ctx: &GpuContext, settings: KernelSettings) -> Result<Self> {
        Self::build(ctx, settings, None)
    }

    /// Like [`Kernels::with_settings`], with every matmul kernel built and the
    /// one of each product's shape class taken from `tuning`, or timed at the
    /// class's first product and recorded there (see [`MatmulTuning`]).
    pub fn tuned(ctx: &GpuContext, settings: KernelSettings, tuning: MatmulTuning) -> Result<Self> {
        Self::build(ctx, settings, Some(Arc::new(tuning)))
    }

    fn build(ctx: &GpuContext, settings: KernelSettings, tuning: Option<Arc<MatmulTuning>>) -> Result<Self> {
        let KernelSettings { matmul: matmul_kernel, strided_groups } = settings;
        let storage = ctx.limits.max_storage_buffers_per_shader_stage;
        if storage < MATMUL_STORAGE_BUFFERS {
            return Err(Error::ExceedsLimit {
                what: "the matmul kernel's buffers (a, b, out, bias, given, pre, dropped, control)".into(),
                needed: MATMUL_STORAGE_BUFFERS.into(),
                unit: "storage buffers in one shader",
                limit: "max_storage_buffers_per_shader_stage",
                allowed: storage.into(),
                advice: "use another adapter (WGPU_ADAPTER_NAME), or --device cpu",
            });
        }
        ctx.scoped("building the compute pipelines", || {
            let pipeline_with = |module: &wgpu::ShaderModule, entry: &str, constants: &[(&str, f64)]| {
                ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions { constants, ..Default::default() },
                    cache: None,
                })
            };
            let pipeline = |module: &wgpu::ShaderModule, entry: &str| pipeline_with(module, entry, &[]);
            let built: Vec<MatmulKernel> = match tuning {
                Some(_) => MatmulKernel::ALL.to_vec(),
                None => vec![matmul_kernel],
            };
            let matmul_modules: Vec<_> =
                built.iter().map(|kernel| (*kernel, compile(&ctx.device, kernel.shader()))).collect();
            let activation_backward = compile(&ctx.device, "activation_backward");
            let mse = compile(&ctx.device, "mse");
            let bce = compile(&ctx.device, "bce");
            let softmax = compile(&ctx.device, "softmax_cross_entropy");
            let accuracy = compile(&ctx.device, "accuracy");
            let reduce = compile(&ctx.device, "reduce");
            let gather = compile(&ctx.device, "gather");
            let sgd = compile(&ctx.device, "sgd");
            let momentum = compile(&ctx.device, "momentum");
            let adam = compile(&ctx.device, "adam");
            let grad_norm = compile(&ctx.device, "grad_norm");
            let dp_sgd = compile(&ctx.device, "dp_sgd");
            let regression = compile(&ctx.device, "regression");
            Ok(Self {
                ctx: ctx.clone(),
                matmul_kernel,
                tuning,
                strided_groups,
                matmul: matmul_modules
                    .iter()
                    .map(|(kernel, module)| {
                        let transposes = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)];
                        (
                            *kernel,
                            transposes.map(|(a, b)| pipeline_with(module, "matmul", &[("TRANS_A", a), ("TRANS_B", b)])),
                        )
                    })
                    .collect(),
                activation_backward: [
                    Activation::Sigmoid,
                    Activation::Relu,
                    Activation::Tanh,
                    Activation::LeakyRelu,
                    Activation::Gelu,
                ]
                .map(|activation| {
                    let code = activation_code(activation);
                    pipeline_with(&activation_backward, "activation_backward", &[("ACTIVATION", f64::from(code))])
                }),
                mse_grad: pipeline(&mse, "mse_grad"),
                bce_grad: pipeline(&bce, "bce_grad"),
                softmax_cross_entropy: pipeline(&softmax, "softmax_cross_entropy"),
                count_correct: pipeline(&accuracy, "count_correct"),
                column_sum: pipeline(&reduce, "column_sum"),
                gather_rows: pipeline(&gather, "gather_rows"),
                gather_elements: pipeline(&gather, "gather_elements"),
                sgd_update: pipeline(&sgd, "sgd_update"),
                momentum_update: pipeline(&momentum, "momentum_update"),
                adam_tick: pipeline(&adam, "adam_tick"),
                adam_update: pipeline(&adam, "adam_update"),
                square_partials: pipeline(&grad_norm, "square_partials"),
                clip_scale: pipeline(&grad_norm, "clip_scale"),
                dp_row_norms: pipeline(&dp_sgd, "dp_row_norms"),
                dp_scale_rows: pipeline(&dp_sgd, "dp_scale_rows"),
                dp_add_noise: pipeline(&dp_sgd, "dp_add_noise"),
                regression_sums: pipeline(&regression, "regression_sums"),
            })
        })
    }

    /// The matmul kernel of the settings (see [`KernelSettings`]): every
    /// product's, unless the kernels are [tuned](Kernels::tuned).
    pub fn matmul_kernel(&self) -> MatmulKernel {
        self.matmul_kernel
    }

    /// The matmul kernel the product `params` runs with: the settings' one,
    /// or with tuning its shape class's, timing the candidates first if the
    /// class has no choice yet (the settings' one, untimed, for a product
    /// under [`TUNED_MIN_MACS`](super::TUNED_MIN_MACS) multiply-adds). A cache file that cannot be written costs
    /// only the reuse: the choice still holds for this process.
    pub fn matmul_kernel_for(&self, params: &MatmulParams) -> Result<MatmulKernel> {
        let Some(tuning) = &self.tuning else { return Ok(self.matmul_kernel) };
        let class = super::tuning::shape_class(params);
        let macs = u64::from(params.m) * u64::from(params.k) * u64::from(params.n);
        let kernel = match tuning.choice(&class) {
            Some(kernel) => kernel,
            None if macs < super::tuning::TUNED_MIN_MACS => self.matmul_kernel,
            None => {
                let kernel = super::tuning::fastest(self, &MatmulKernel::ALL, params)?;
                // Not fatal: a read-only or full cache folder only loses the reuse.
                let _ = tuning.record(&class, kernel);
                kernel
            }
        };
        tuning.mark_used(kernel);
        Ok(kernel)
    }

    /// True when each shape class's matmul kernel is chosen by timing.
    pub fn matmul_tuned(&self) -> bool {
        self.tuning.is_some()
    }

    /// "registers", "workgroup", or with tuning "tuned: registers" (the
    /// kernels products have run with so far).
    pub fn matmul_description(&self) -> String {
        match &self.tuning {
            Some(tuning) => tuning.describe(),
            None => self.matmul_kernel.name().to_string(),
        }
    }

    pub(super) fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// out(M, N) = op(a) · op(b) with an epilogue; a holds M*K floats, b K*N, out M*N.
    pub fn matmul_with<'a>(
        &self,
        label: &str,
        a: Region<'a>,
        b: Region<'a>,
        out: Region<'a>,
        params: MatmulParams,
        epilogue: Epilogue<'a>,
    ) -> Result<Dispatch> {
        let mut params = params;
        // Unused bindings hold a region of the same access, which the shader
        // skips: `a` for the read-only bias, given and control, `out` for the
        // read-write pre and dropped.
        let mut mask = |mask: DropoutMask<'a>, mode: u32| -> Region<'a> {
            params.dropout = mode;
            params.dropout_layer = mask.layer;
            params.dropout_p = mask.p;
            params.dropout_scale = crate::dropout::DropoutKey { seed: mask.seed, step: 0, p: mask.p }.scale();
            params.dropout_seed = [mask.seed as u32, (mask.seed >> 32) as u32];
            mask.control
        };
        let (bias, given, pre, dropped, control) = match epilogue {
            Epilogue::None => (a, a, out, out, a),
            Epilogue::BiasActivation { bias, activation, negative_slope, pre, dropout } => {
                assert_eq!(bias.len, u64::from(params.n), "{label}: bias must be (N)");
                let (control, dropped) = match dropout {
                    Some((dropout, dropped)) => {
                        assert_eq!(dropped.len, out.len, "{label}: the dropped output must be (M, N)");
                        (mask(dropout, 1), dropped)
                    }
                    None => (a, out),
                };
                (params.bias, params.activation) = (1, activation_code(activation));
                params.negative_slope = negative_slope;
                if let Some(pre) = pre {
                    assert_eq!(pre.len, out.len, "{label}: the kept z must be (M, N)");
                    params.keep_pre = 1;
                }
                (bias, a, pre.unwrap_or(out), dropped, control)
            }
            Epilogue::Derivative { activation, negative_slope, given, dropout } => {
                assert_eq!(given.len, out.len, "{label}: the layer output must be (M, N)");
                let control = dropout.map_or(a, |dropout| mask(dropout, 2));
                params.derivative = activation_code(activation);
                params.negative_slope = negative_slope;
                (a, given, out, out, control)
            }
        };
        self.matmul_bound(label, [a, b, out, bias, given, pre, dropped, control], params)
    }

    /// out(M, N) = op(a) · op(b); a holds M*K floats, b K*N, out M*N.
    pub fn matmul(&self, label: &str, a: Region, b: Region, out: Region, params: MatmulParams) -> Result<Dispatch> {
        self.matmul_with(label, a, b, out, params, Epilogue::None)
    }

    fn matmul_bound(&self, label: &str, regions: [Region; 8], params: MatmulParams) -> Result<Dispatch> {
        let kernel = self.matmul_kernel_for(&params)?;
        self.matmul_bound_on(kernel, label, regions, params)
    }

    /// out(M, N) = op(a) · op(b) on `kernel`, which must be built here.
    pub(super) fn matmul_on(
        &self,
        kernel: MatmulKernel,
        label: &str,
        a: Region,
        b: Region,
        out: Region,
        params: MatmulParams,
    ) -> Result<Dispatch> {
        self.matmul_bound_on(kernel, label, [a, b, out, a, a, out, out, a], params)
    }

    fn matmul_bound_on(
        &self,
        kernel: MatmulKernel,
        label: &str,
        regions: [Region; 8],
        params: MatmulParams,
    ) -> Result<Dispatch> {
        let MatmulParams { m, k, n, .. } = params;
        let [a, b, out, ..] = regions;
        assert_eq!(
            (a.len, b.len, out.len),
            ((m * k) as u64, (k * n) as u64, (m * n) as u64),
            "{label}: regions must match (M, K, N)"
        );
        let (tile_rows, tile_cols) = kernel.tile();
        let grid = [n.div_ceil(tile_cols), m.div_ceil(tile_rows), 1];
        let widest = grid[0].max(grid[1]);
        if widest > self.ctx.limits.max_compute_workgroups_per_dimension {
            return Err(Error::ExceedsLimit {
                what: format!("{label} ({m} x {k} x {n})"),
                needed: widest.into(),
                unit: "workgroups in one dimension",
                limit: "max_compute_workgroups_per_dimension",
                allowed: self.ctx.limits.max_compute_workgroups_per_dimension.into(),
                advice: "use a smaller `batch_size` or narrower `layers`",
            });
        }
        let (_, pipelines) = self
            .matmul
            .iter()
            .find(|(built, _)| *built == kernel)
            .expect("a product's kernel is the settings' one or, with tuning, one of all those built");
        let pipeline = &pipelines[(2 * params.trans_a + params.trans_b) as usize];
        Ok(self.bind(label, pipeline, &params, &regions, grid))
    }

    /// values (dA) becomes dZ in place, given the forward output a (or z,
    /// for an activation that [needs it](Activation::needs_pre_activation));
    /// None for the identity.
    pub fn activation_backward(
        &self,
        label: &str,
        activation: Activation,
        negative_slope: f32,
        values: Region,
        given: Region,
    ) -> Result<Option<Dispatch>> {
        assert_eq!(values.len, given.len, "{label}: gradient and activation must match");
        let pipeline = match activation {
            Activation::Identity => return Ok(None),
            other => &self.activation_backward[activation_code(other) as usize - 1],
        };
        let len = values.len as u32;
        let params = ActivationParams { len, negative_slope, _pad: [0; 2] };
        Ok(Some(self.bind(label, pipeline, &params, &[values, given], self.grid_elementwise(label, len)?)))
    }

    /// grad = 2 / len * (pred - expected), and one partial sum of squares per
    /// workgroup into `partials`, which holds `partial_count(len)` floats.
    pub fn mse_grad(
        &self,
        label: &str,
        pred: Region,
        expected: Region,
        grad: Region,
        partials: Region,
    ) -> Result<Dispatch> {
        let params = |len: u32| MseParams { len, scale: 2.0 / len as f32, _pad: [0; 2] };
        self.elementwise_loss(label, &self.mse_grad, [pred, expected, grad, partials], params)
    }

    /// grad = (sigmoid(logits) - expected) / len, and one partial sum of the
    /// elements' binary cross-entropies per workgroup into `partials`, which
    /// holds `partial_count(len)` floats.
    pub fn bce_grad(
        &self,
        label: &str,
        logits: Region,
        expected: Region,
        grad: Region,
        partials: Region,
    ) -> Result<Dispatch> {
        let params = |len: u32| BceParams { len, scale: 1.0 / len as f32, _pad: [0; 2] };
        self.elementwise_loss(label, &self.bce_grad, [logits, expected, grad, partials], params)
    }

    /// The dispatch of an element-wise loss kernel (mse_grad, bce_grad) over
    /// [output, expected, grad, partials]: one invocation per element, one
    /// partial sum per workgroup; `params` makes its uniform from the length.
    fn elementwise_loss<P: Pod>(
        &self,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        regions: [Region; 4],
        params: impl FnOnce(u32) -> P,
    ) -> Result<Dispatch> {
        let [output, expected, grad, partials] = regions;
        let len = output.len as u32;
        assert_eq!((expected.len, grad.len), (output.len, output.len), "{label}: output, expected and grad must match");
        let grid = self.grid_1d(label, len)?;
        assert_eq!(partials.len, u64::from(grid.iter().product::<u32>()), "{label}: one partial per workgroup");
        Ok(self.bind(label, pipeline, &params(len), &regions, grid))
    }

    /// grad (rows, cols) = (softmax(logits) - expected) / rows, and one partial
    /// sum of the rows' cross-entropies per workgroup (`partial_count(rows)`).
    pub fn softmax_cross_entropy(
        &self,
        label: &str,
        logits: Region,
        expected: Region,
        grad: Region,
        partials: Region,
        rows: u32,
    ) -> Result<Dispatch> {
        let cols = rows_by_cols(label, logits, expected, rows);
        assert_eq!(grad.len, logits.len, "{label}: logits, expected and grad must match");
        let grid = self.grid_1d(label, rows)?;
        assert_eq!(partials.len, u64::from(grid.iter().product::<u32>()), "{label}: one partial per workgroup");
        let params = SoftmaxCrossEntropyParams { rows, cols, scale: 1.0 / rows as f32, _pad: 0 };
        Ok(self.bind(label, &self.softmax_cross_entropy, &params, &[logits, expected, grad, partials], grid))
    }

    /// One partial count per workgroup (`partial_count(rows)`) of the rows whose
    /// argmax in pred matches the argmax in expected.
    pub fn count_correct(
        &self,
        label: &str,
        pred: Region,
        expected: Region,
        partials: Region,
        rows: u32,
    ) -> Result<Dispatch> {
        let cols = rows_by_cols(label, pred, expected, rows);
        let grid = self.grid_1d(label, rows)?;
        assert_eq!(partials.len, u64::from(grid.iter().product::<u32>()), "{label}: one partial per workgroup");
        let params = CountCorrectParams { rows, cols, _pad: [0; 2] };
        Ok(self.bind(label, &self.count_correct, &params, &[pred, expected, partials], grid))
    }

    /// A regression batch's per-column sums of |e| and e², added to
    /// `metrics[slot + 2c]` and `metrics[slot + 2c + 1]` for column c of
    /// pred (rows, cols): e is the answer (sigmoid of the output with
    /// `sigmoid`, a bce logit) minus the target.
    #[allow(clippy::too_many_arguments)] // the regions of shaders/regression.wgsl and where the sums go
    pub fn regression_sums(
        &self,
        label: &str,
        pred: Region,
        expected: Region,
        metrics: Region,
        rows: u32,
        slot: u32,
        sigmoid: bool,
    ) -> Result<Dispatch> {
        let cols = rows_by_cols(label, pred, expected, rows);
        assert!(u64::from(slot + 2 * cols) <= metrics.len, "{label}: the sums' slots inside the metrics");
        let params = RegressionParams { rows, cols, slot, sigmoid: sigmoid.into() };
        let grid = self.grid_of(label, cols.div_ceil(64))?;
        Ok(self.bind(label, &self.regression_sums, &params, &[pred, expected, metrics], grid))
    }

    /// How many partial sums a per-element (mse_grad, bce_grad) or per-row
    /// (softmax_cross_entropy, count_correct) kernel writes for `items`.
    pub fn partial_count(&self, items: u32) -> Result<u32> {
        Ok(self.grid_1d("partial sums", items)?.iter().product())
    }

    /// out(cols) = column sums of input(rows, cols), plus out when `accumulate`.
    pub fn column_sum(&self, label: &str, input: Region, out: Region, rows: u32, accumulate: bool) -> Result<Dispatch> {
        let cols = out.len as u32;
        assert_eq!(input.len, u64::from(rows * cols), "{label}: input must be (rows, cols)");
        let params = ColumnSumParams { rows, cols, accumulate: accumulate.into(), offset: 0 };
        Ok(self.bind(label, &self.column_sum, &params, &[input, out], self.grid_1d(label, cols)?))
    }

    /// `totals[slot]` += the sum of `partials`, in a fixed order: a running
    /// metric kept among others in one small buffer.
    pub fn add_total(&self, label: &str, partials: Region, totals: Region, slot: u32) -> Result<Dispatch> {
        assert!(u64::from(slot) < totals.len, "{label}: slot {slot} outside the totals");
        let params = ColumnSumParams { rows: partials.len as u32, cols: 1, accumulate: 1, offset: slot };
        Ok(self.bind(label, &self.column_sum, &params, &[partials, totals], [1, 1, 1]))
    }

    /// out(rows, width) = `source[index[r], :]`, the source given as 1 to 4
    /// chunks of `rows_per_chunk` rows (the last may be shorter).
    pub fn gather_rows(
        &self,
        label: &str,
        index: Region,
        out: Region,
        chunks: &[Region],
        rows_per_chunk: u32,
    ) -> Result<Dispatch> {
        assert!((1..=MAX_CHUNKS).contains(&chunks.len()), "{label}: 1 to {MAX_CHUNKS} source chunks");
        let rows = index.len as u32;
        let width = (out.len / index.len) as u32;
        assert_eq!(out.len, u64::from(rows * width), "{label}: out must be (rows, width)");
        let params = GatherParams { rows, width, rows_per_chunk, _pad: 0 };
        // Unused chunk bindings hold the first chunk; the shader never reads them.
        let mut regions = vec![index, out];
        regions.extend((0..MAX_CHUNKS).map(|c| *chunks.get(c).unwrap_or(&chunks[0])));
        // A workgroup per row once rows fill most of its 256 invocations.
        if width >= WORKGROUP_SIZE / 2 {
            Ok(self.bind(label, &self.gather_rows, &params, &regions, self.grid_strided(label, rows)?))
        } else {
            Ok(self.bind(label, &self.gather_elements, &params, &regions, self.grid_elementwise(label, rows * width)?))
        }
    }

    /// weights -= rate * (grads + weight_decay * weights); both hold the same number of
    /// floats, and `rate` (one float) holds the learning rate of the step.
    pub fn sgd_update(
        &self,
        label: &str,
        weights: Region,
        grads: Region,
        control: Region,
        weight_decay: f32,
    ) -> Result<Dispatch> {
        assert_eq!(weights.len, grads.len, "{label}: weights and gradients must match");
        assert_eq!(control.len, STEP_CONTROL_LEN as u64, "{label}: the step control is {STEP_CONTROL_LEN} floats");
        let len = weights.len as u32;
        let params = SgdParams { len, weight_decay, _pad: [0; 2] };
        Ok(self.bind(label, &self.sgd_update, &params, &[weights, grads, control], self.grid_elementwise(label, len)?))
    }

    /// Momentum: velocity = momentum * velocity + g; weights -= rate * velocity, `rate`
    /// (one float) holding the learning rate of the step.
    pub fn momentum_update(
        &self,
        label: &str,
        weights: Region,
        grads: Region,
        velocity: Region,
        control: Region,
        params: MomentumParams,
    ) -> Result<Dispatch> {
        assert_eq!(
            (grads.len, velocity.len),
            (weights.len, weights.len),
            "{label}: weights, gradients and velocity must match"
        );
        assert_eq!(u64::from(params.len), weights.len, "{label}: params.len must match");
        Ok(self.bind(
            label,
            &self.momentum_update,
            &params,
            &[weights, grads, velocity, control],
            self.grid_elementwise(label, params.len)?,
        ))
    }

    /// The two dispatches of an Adam step: the step count and bias corrections
    /// in `state` ([`ADAM_STATE_LEN`] floats), then the update itself at the learning
    /// rate held in `rate` (one float).
    #[allow(clippy::too_many_arguments)] // one region per binding of shaders/adam.wgsl
    pub fn adam_update(
        &self,
        label: &str,
        state: Region,
        weights: Region,
        grads: Region,
        m: Region,
        v: Region,
        control: Region,
        params: AdamParams,
    ) -> Result<[Dispatch; 2]> {
        assert_eq!(state.len, ADAM_STATE_LEN as u64, "{label}: the Adam state is {ADAM_STATE_LEN} floats");
        assert_eq!(
            (grads.len, m.len, v.len),
            (weights.len, weights.len, weights.len),
            "{label}: weights, gradients and moments must match"
        );
        assert_eq!(u64::from(params.len), weights.len, "{label}: params.len must match");
        let tick = self.bind(&format!("{label}.tick"), &self.adam_tick, &params, &[state], [1, 1, 1]);
        let grid = self.grid_elementwise(label, params.len)?;
        let update = self.bind(label, &self.adam_update, &params, &[state, weights, grads, m, v, control], grid);
        Ok([tick, update])
    }

    /// The two dispatches of clipping by the global norm: the squares of
    /// `grads` summed into `partials` (at most [`GRAD_NORM_GROUPS`] floats, one
    /// per workgroup) in a fixed order, then the factor min(1, `max_norm` /
    /// (norm + 1e-6)) into `control`'s second float, which the update reads.
    pub fn grad_norm_clip(
        &self,
        label: &str,
        grads: Region,
        partials: Region,
        control: Region,
        max_norm: f32,
    ) -> Result<[Dispatch; 2]> {
        let groups = grads.len.div_ceil(256).clamp(1, GRAD_NORM_GROUPS as u64) as u32;
        assert!(partials.len >= u64::from(groups), "{label}: a partial per workgroup");
        assert_eq!(control.len, STEP_CONTROL_LEN as u64, "{label}: the step control is {STEP_CONTROL_LEN} floats");
        let params = GradNormParams { len: grads.len as u32, groups, max_norm, _pad: 0 };
        let regions = [grads, partials, control];
        let squares = self.bind(&format!("{label}.squares"), &self.square_partials, &params, &regions, [groups, 1, 1]);
        let scale = self.bind(&format!("{label}.scale"), &self.clip_scale, &params, &regions, [1, 1, 1]);
        Ok([squares, scale])
    }

    /// DP-SGD's per-row norms of one layer (see shaders/dp_sgd.wgsl):
    /// norms (B) += (|input_r|^2 + 1) |dz_r|^2 for input (B, IN) and dz (B,
    /// OUT), written by the first layer (`params.accumulate` 0), turned into
    /// factors by the last (`params.finish` 1) for the rows below
    /// `sample[0]`, the step's sample size.
    pub fn dp_row_norms(
        &self,
        label: &str,
        sample: Region,
        input: Region,
        dz: Region,
        norms: Region,
        params: RowNormParams,
    ) -> Result<Dispatch> {
        let RowNormParams { rows, fan_in, fan_out, .. } = params;
        assert_eq!(
            (input.len, dz.len, norms.len),
            (u64::from(rows * fan_in), u64::from(rows * fan_out), u64::from(rows)),
            "{label}: input (B, IN), dz (B, OUT) and norms (B)"
        );
        let grid = self.grid_of(label, rows.div_ceil(64))?;
        Ok(self.bind(label, &self.dp_row_norms, &params, &[sample, input, dz, norms], grid))
    }

    /// dz (rows, cols) rows times `factors` (rows), in place; a 0 factor writes 0.
    pub fn dp_scale_rows(&self, label: &str, factors: Region, dz: Region, rows: u32) -> Result<Dispatch> {
        let cols = (dz.len / u64::from(rows)) as u32;
        assert_eq!(
            (dz.len, factors.len),
            (u64::from(rows * cols), u64::from(rows)),
            "{label}: dz (B, OUT), factors (B)"
        );
        let params = ScaleRowsParams { rows, cols, _pad: [0; 2] };
        let grid = self.grid_elementwise(label, rows * cols)?;
        Ok(self.bind(label, &self.dp_scale_rows, &params, &[factors, dz], grid))
    }

    /// Layer `layer`'s weight and bias gradients += `std` N(0, 1), drawn as
    /// [`crate::noise::normal`] at (`key`, the step `control` holds, tensor
    /// 2 `layer` and 2 `layer` + 1).
    #[allow(clippy::too_many_arguments)] // the regions of shaders/dp_sgd.wgsl and the noise's key
    pub fn dp_add_noise(
        &self,
        label: &str,
        control: Region,
        weight_grads: Region,
        bias_grads: Region,
        layer: u32,
        std: f32,
        key: [u32; 2],
    ) -> Result<Dispatch> {
        let params = NoiseParams {
            weights: weight_grads.len as u32,
            biases: bias_grads.len as u32,
            tensor: 2 * layer,
            std,
            key,
            _pad: [0; 2],
        };
        let grid = self.grid_elementwise(label, params.weights + params.biases)?;
        Ok(self.bind(label, &self.dp_add_noise, &params, &[control, weight_grads, bias_grads], grid))
    }

    /// The grid of a grid-stride kernel that covers its work with `groups`
    /// workgroups (one per 256 elements, or one per row): capped on CPU
    /// adapters, where each workgroup costs about a microsecond (lavapipe: an
    /// SGD update of 203 k weights took 1316 us with a workgroup per 256
    /// weights, 390 us with 16 workgroups on 2 cores).
    fn grid_strided(&self, label: &str, groups: u32) -> Result<[u32; 3]> {
        self.grid_of(label, self.strided_groups.map_or(groups, |most| groups.min(most)))
    }

    /// [`Self::grid_strided`] for a kernel over `len` elements. Their indices
    /// are u32 and the loop adds the grid's size to them, which cannot wrap
    /// below 2^31 elements (an f32 binding that large exists only on Metal).
    fn grid_elementwise(&self, label: &str, len: u32) -> Result<[u32; 3]> {
        const MOST: u32 = 1 << 31;
        if len > MOST {
            return Err(Error::ExceedsLimit {
                what: format!("{label} over {len} elements"),
                needed: len.into(),
                unit: "elements in one kernel",
                limit: "u32 indices in the element-wise kernels",
                allowed: MOST.into(),
                advice: "use narrower `layers`",
            });
        }
        self.grid_strided(label, len.div_ceil(WORKGROUP_SIZE))
    }

    /// A grid of 256-wide workgroups covering `len` elements.
    fn grid_1d(&self, label: &str, len: u32) -> Result<[u32; 3]> {
        self.grid_of(label, len.div_ceil(WORKGROUP_SIZE))
    }

    /// `groups` workgroups (at least 1): 1-D while they fit one dimension,
    /// else 2-D (the shaders flatten the workgroup id).
    fn grid_of(&self, label: &str, groups: u32) -> Result<[u32; 3]> {
        let max = self.ctx.limits.max_compute_workgroups_per_dimension;
        let groups = groups.max(1);
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max {
            return Err(Error::ExceedsLimit {
                what: format!("{label} over {groups} workgroups"),
                needed: y.into(),
                unit: "workgroups in one dimension",
                limit: "max_compute_workgroups_per_dimension",
                allowed: max.into(),
                advice: "use a smaller `batch_size` or narrower `layers`",
            });
        }
        Ok([x, y, 1])
    }

    /// Makes the params uniform and the bind group: binding 0 is the uniform,
    /// then the regions in the shader's binding order.
    fn bind<P: Pod>(
        &self,
        label: &str,
        pipeline: &wgpu::ComputePipeline,
        params: &P,
        regions: &[Region],
        workgroups: [u32; 3],
    ) -> Dispatch {
        let device = &self.ctx.device;
        let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        let uniform = self.ctx.buffer_init(&format!("{label}.params"), bytemuck::bytes_of(params), usage);
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        for (i, region) in regions.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: region.binding() });
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let counters = Arc::clone(&self.ctx.counters);
        Dispatch { pipeline: pipeline.clone(), bind_group, workgroups, counters, params: uniform }
    }
}
