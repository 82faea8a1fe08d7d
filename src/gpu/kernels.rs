//! The kernel table: one compute pipeline per WGSL entry point, built once per
//! device, and one `#[repr(C)]` params struct per kernel with the fields in the
//! WGSL struct's order. Each kernel method binds buffers to its pipeline and
//! returns a [`Dispatch`]: done at construction, so a training step only records.

use bytemuck::{Pod, Zeroable};

use super::context::{GpuContext, Region};
use crate::error::{Error, Result};

/// Invocations per workgroup of the element-wise kernels (all but matmul).
pub const WORKGROUP_SIZE: u32 = 256;
/// Rows and columns of out covered by one matmul workgroup (8 x 8 invocations, 4 x 4 each).
const MATMUL_TILE: u32 = 32;

/// shaders/matmul.wgsl: out(M, N) = op(a)(M, K) · op(b)(K, N).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MatmulParams {
    pub m: u32,
    pub k: u32,
    pub n: u32,
    pub trans_a: u32,
    pub trans_b: u32,
    pub _pad: [u32; 3],
}

/// shaders/bias_add.wgsl: out(rows, cols) += bias(cols).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BiasAddParams {
    pub rows: u32,
    pub cols: u32,
    pub _pad: [u32; 2],
}

/// shaders/sigmoid.wgsl: both entry points, over `len` elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SigmoidParams {
    pub len: u32,
    pub _pad: [u32; 3],
}

/// shaders/mse.wgsl: grad = scale * (pred - target) over `len` elements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct MseParams {
    pub len: u32,
    pub scale: f32,
    pub _pad: [u32; 2],
}

/// shaders/reduce.wgsl: out(cols) (+)= column sums of input(rows, cols).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ColumnSumParams {
    pub rows: u32,
    pub cols: u32,
    pub accumulate: u32,
    pub _pad: u32,
}

/// shaders/sgd.wgsl: weights(len) -= lr * grads(len).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SgdParams {
    pub len: u32,
    pub lr: f32,
    pub _pad: [u32; 2],
}

/// A pipeline with its bound buffers and grid, ready to record.
#[derive(Clone, Debug)]
pub struct Dispatch {
    pub label: String,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

impl Dispatch {
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
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
    matmul: wgpu::ComputePipeline,
    bias_add: wgpu::ComputePipeline,
    sigmoid_forward: wgpu::ComputePipeline,
    sigmoid_backward: wgpu::ComputePipeline,
    mse_grad: wgpu::ComputePipeline,
    column_sum: wgpu::ComputePipeline,
    sgd_update: wgpu::ComputePipeline,
}

impl Kernels {
    /// Compiles every shader in shaders/ and builds its pipelines.
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        ctx.scoped("building the compute pipelines", || {
            let module = |name: &str, source: &str| {
                ctx.device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(name),
                        source: wgpu::ShaderSource::Wgsl(source.into()),
                    })
            };
            let pipeline = |module: &wgpu::ShaderModule, entry: &str| {
                ctx.device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(entry),
                        layout: None,
                        module,
                        entry_point: Some(entry),
                        compilation_options: Default::default(),
                        cache: None,
                    })
            };
            let matmul = module("matmul.wgsl", include_str!("../../shaders/matmul.wgsl"));
            let bias_add = module("bias_add.wgsl", include_str!("../../shaders/bias_add.wgsl"));
            let sigmoid = module("sigmoid.wgsl", include_str!("../../shaders/sigmoid.wgsl"));
            let mse = module("mse.wgsl", include_str!("../../shaders/mse.wgsl"));
            let reduce = module("reduce.wgsl", include_str!("../../shaders/reduce.wgsl"));
            let sgd = module("sgd.wgsl", include_str!("../../shaders/sgd.wgsl"));
            Ok(Self {
                ctx: ctx.clone(),
                matmul: pipeline(&matmul, "matmul"),
                bias_add: pipeline(&bias_add, "bias_add"),
                sigmoid_forward: pipeline(&sigmoid, "sigmoid_forward"),
                sigmoid_backward: pipeline(&sigmoid, "sigmoid_backward"),
                mse_grad: pipeline(&mse, "mse_grad"),
                column_sum: pipeline(&reduce, "column_sum"),
                sgd_update: pipeline(&sgd, "sgd_update"),
            })
        })
    }

    /// out(M, N) = op(a) · op(b); a holds M*K floats, b K*N, out M*N.
    pub fn matmul(
        &self,
        label: &str,
        a: Region,
        b: Region,
        out: Region,
        params: MatmulParams,
    ) -> Result<Dispatch> {
        let MatmulParams { m, k, n, .. } = params;
        assert_eq!(
            (a.len, b.len, out.len),
            ((m * k) as u64, (k * n) as u64, (m * n) as u64),
            "{label}: regions must match (M, K, N)"
        );
        let grid = [n.div_ceil(MATMUL_TILE), m.div_ceil(MATMUL_TILE), 1];
        let widest = grid[0].max(grid[1]);
        if widest > self.ctx.limits.max_compute_workgroups_per_dimension {
            return Err(Error::ExceedsLimit {
                what: format!("{label} ({m} x {k} x {n})"),
                needed: widest.into(),
                limit: "max_compute_workgroups_per_dimension",
                allowed: self.ctx.limits.max_compute_workgroups_per_dimension.into(),
                advice: "use a smaller --batch-size or narrower --layers",
            });
        }
        self.bind(label, &self.matmul, &params, &[a, b, out], grid)
    }

    /// out(rows, cols) += bias(cols).
    pub fn bias_add(
        &self,
        label: &str,
        out: Region,
        bias: Region,
        rows: u32,
        cols: u32,
    ) -> Result<Dispatch> {
        assert_eq!(
            (out.len, bias.len),
            ((rows * cols) as u64, cols as u64),
            "{label}: regions must match (rows, cols)"
        );
        let params = BiasAddParams {
            rows,
            cols,
            _pad: [0; 2],
        };
        self.bind(
            label,
            &self.bias_add,
            &params,
            &[out, bias],
            self.grid_1d(label, rows * cols)?,
        )
    }

    /// values = sigmoid(values), in place.
    pub fn sigmoid_forward(&self, label: &str, values: Region) -> Result<Dispatch> {
        let len = values.len as u32;
        let params = SigmoidParams { len, _pad: [0; 3] };
        self.bind(
            label,
            &self.sigmoid_forward,
            &params,
            &[values],
            self.grid_1d(label, len)?,
        )
    }

    /// values *= act * (1 - act), in place; both hold the same number of floats.
    pub fn sigmoid_backward(&self, label: &str, values: Region, act: Region) -> Result<Dispatch> {
        assert_eq!(
            values.len, act.len,
            "{label}: gradient and activation must match"
        );
        let len = values.len as u32;
        let params = SigmoidParams { len, _pad: [0; 3] };
        self.bind(
            label,
            &self.sigmoid_backward,
            &params,
            &[values, act],
            self.grid_1d(label, len)?,
        )
    }

    /// grad = 2 / len * (pred - target), and one partial sum of squares per
    /// workgroup into `partials`, which must hold [`Kernels::mse_partials`] floats.
    pub fn mse_grad(
        &self,
        label: &str,
        pred: Region,
        target: Region,
        grad: Region,
        partials: Region,
    ) -> Result<Dispatch> {
        let len = pred.len as u32;
        assert_eq!(
            (target.len, grad.len),
            (pred.len, pred.len),
            "{label}: pred, target and grad must match"
        );
        let grid = self.grid_1d(label, len)?;
        assert_eq!(
            partials.len,
            grid.iter().product::<u32>() as u64,
            "{label}: one partial per workgroup"
        );
        let params = MseParams {
            len,
            scale: 2.0 / len as f32,
            _pad: [0; 2],
        };
        self.bind(
            label,
            &self.mse_grad,
            &params,
            &[pred, target, grad, partials],
            grid,
        )
    }

    /// How many partial sums mse_grad writes for `len` elements.
    pub fn mse_partials(&self, len: u32) -> Result<u32> {
        Ok(self.grid_1d("mse_grad", len)?.iter().product())
    }

    /// out(cols) = column sums of input(rows, cols), plus out when `accumulate`.
    pub fn column_sum(
        &self,
        label: &str,
        input: Region,
        out: Region,
        rows: u32,
        accumulate: bool,
    ) -> Result<Dispatch> {
        let cols = out.len as u32;
        assert_eq!(
            input.len,
            (rows * cols) as u64,
            "{label}: input must be (rows, cols)"
        );
        let params = ColumnSumParams {
            rows,
            cols,
            accumulate: accumulate.into(),
            _pad: 0,
        };
        self.bind(
            label,
            &self.column_sum,
            &params,
            &[input, out],
            self.grid_1d(label, cols)?,
        )
    }

    /// weights -= lr * grads; both hold the same number of floats.
    pub fn sgd_update(
        &self,
        label: &str,
        weights: Region,
        grads: Region,
        lr: f32,
    ) -> Result<Dispatch> {
        assert_eq!(
            weights.len, grads.len,
            "{label}: weights and gradients must match"
        );
        let len = weights.len as u32;
        let params = SgdParams {
            len,
            lr,
            _pad: [0; 2],
        };
        self.bind(
            label,
            &self.sgd_update,
            &params,
            &[weights, grads],
            self.grid_1d(label, len)?,
        )
    }

    /// A grid of 256-wide workgroups covering `len` elements: 1-D while it
    /// fits one dimension, else 2-D (the shaders flatten the workgroup id).
    fn grid_1d(&self, label: &str, len: u32) -> Result<[u32; 3]> {
        let max = self.ctx.limits.max_compute_workgroups_per_dimension;
        let groups = len.div_ceil(WORKGROUP_SIZE).max(1);
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max {
            return Err(Error::ExceedsLimit {
                what: format!("{label} over {len} elements"),
                needed: y.into(),
                limit: "max_compute_workgroups_per_dimension",
                allowed: max.into(),
                advice: "use a smaller --batch-size or narrower --layers",
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
    ) -> Result<Dispatch> {
        use wgpu::util::DeviceExt;
        let device = &self.ctx.device;
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(&format!("{label}.params")),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, region) in regions.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: region.binding(),
            });
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Ok(Dispatch {
            label: label.to_string(),
            pipeline: pipeline.clone(),
            bind_group,
            workgroups,
        })
    }
}
