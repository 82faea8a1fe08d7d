//! What the kernels are built and launched with on a device: the matmul
//! kernel and the grid of the element-wise kernels, chosen by adapter.

/// Which matmul kernel a device runs: both compute the same product and
/// epilogue (shaders/matmul_common.wgsl) with different tiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKernel {
    /// shaders/matmul_registers.wgsl: register tiles and no workgroup memory,
    /// for CPU adapters such as lavapipe, where barriers are slow.
    Registers,
    /// shaders/matmul_workgroup.wgsl: tiles staged in workgroup memory, for GPUs.
    Workgroup,
    /// shaders/matmul_tile128.wgsl: 128 x 128 tiles in workgroup memory, 8 x 8
    /// outputs per invocation, for large products on GPUs; only tuning picks it.
    Tile128,
}

impl MatmulKernel {
    /// Every kernel, for tests and benches that run each one.
    pub const ALL: [MatmulKernel; 3] = [MatmulKernel::Registers, MatmulKernel::Workgroup, MatmulKernel::Tile128];

    /// Register tiles on CPU adapters, workgroup tiles on every other.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Self {
        if info.device_type == wgpu::DeviceType::Cpu {
            MatmulKernel::Registers
        } else {
            MatmulKernel::Workgroup
        }
    }

    /// "registers", "workgroup" or "tile128", as bench rows, trainer
    /// descriptions and the tuning cache name it (the first two are words
    /// `--matmul` takes).
    pub fn name(self) -> &'static str {
        match self {
            MatmulKernel::Registers => "registers",
            MatmulKernel::Workgroup => "workgroup",
            MatmulKernel::Tile128 => "tile128",
        }
    }

    /// Rows and columns of out one workgroup covers.
    pub(super) fn tile(self) -> (u32, u32) {
        match self {
            MatmulKernel::Registers => (64, 32), // 8 x 8 invocations, 8 x 4 outputs each
            MatmulKernel::Workgroup => (64, 64), // 16 x 16 invocations, 4 x 4 outputs each
            MatmulKernel::Tile128 => (128, 128), // 16 x 16 invocations, 8 x 8 outputs each
        }
    }

    pub(super) fn shader(self) -> &'static str {
        match self {
            MatmulKernel::Registers => "matmul_registers",
            MatmulKernel::Workgroup => "matmul_workgroup",
            MatmulKernel::Tile128 => "matmul_tile128",
        }
    }
}

/// How the kernels are built and launched on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSettings {
    /// The matmul kernel every matmul pipeline is built from.
    pub matmul: MatmulKernel,
    /// The most workgroups a grid-stride kernel gets; None: one per 256
    /// elements (or per row), the grid 2-D where one dimension is too short.
    pub strided_groups: Option<u32>,
}

impl KernelSettings {
    /// What suits the adapter: on CPU adapters, which run workgroups on the
    /// host's threads and pay per workgroup, register-tiled matmuls and 4
    /// workgroups per host core; on GPUs, workgroup-memory matmuls and a
    /// workgroup per 256 elements.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let cpu_adapter = info.device_type == wgpu::DeviceType::Cpu;
        Self { matmul: MatmulKernel::for_adapter(info), strided_groups: cpu_adapter.then_some(4 * cores) }
    }
}
