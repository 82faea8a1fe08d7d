//! Every shader module the GPU path compiles, as WGSL source. A module is one
//! file of shaders/, or several joined in order where they share code (WGSL
//! has no includes): the three matmul kernels each follow activation.wgsl,
//! dropout.wgsl and matmul_common.wgsl (the two that stage slices in
//! workgroup memory, matmul_slices.wgsl too); the element-wise activation backward
//! follows activation.wgsl; the fused path's two variants follow
//! activation.wgsl and the prelude that puts their pool in workgroup or in
//! storage memory; the three update kernels follow
//! step_control.wgsl; the loss, accuracy and gradient-norm kernels follow
//! workgroup_sum.wgsl.
//! tests/shaders.rs validates exactly these sources with naga.

/// One shader module: the files of shaders/ it is made of and their text joined.
#[derive(Clone, Copy, Debug)]
pub struct ShaderSource {
    /// The module's name, also its wgpu label.
    pub name: &'static str,
    /// The files of shaders/ it joins, preludes first.
    pub files: &'static [&'static str],
    /// Their text, concatenated in that order at compile time (include_str!).
    pub source: &'static str,
}

macro_rules! shader {
    ($name:literal: $($file:literal),+) => {
        ShaderSource {
            name: $name,
            files: &[$($file),+],
            source: concat!($(include_str!(concat!("../../shaders/", $file))),+),
        }
    };
}

/// Every module, each listed once; the kernel table compiles them from here
/// and tests/shaders.rs validates the same list.
pub const SHADERS: &[ShaderSource] = &[
    shader!("matmul_registers": "activation.wgsl", "dropout.wgsl", "matmul_common.wgsl", "matmul_registers.wgsl"),
    shader!("matmul_workgroup": "activation.wgsl", "dropout.wgsl", "matmul_common.wgsl", "matmul_slices.wgsl", "matmul_workgroup.wgsl"),
    shader!("matmul_tile128": "activation.wgsl", "dropout.wgsl", "matmul_common.wgsl", "matmul_slices.wgsl", "matmul_tile128.wgsl"),
    shader!("activation_backward": "activation.wgsl", "activation_backward.wgsl"),
    shader!("mse": "workgroup_sum.wgsl", "mse.wgsl"),
    shader!("bce": "workgroup_sum.wgsl", "bce.wgsl"),
    shader!("softmax_cross_entropy": "workgroup_sum.wgsl", "softmax_cross_entropy.wgsl"),
    shader!("accuracy": "workgroup_sum.wgsl", "accuracy.wgsl"),
    shader!("reduce": "reduce.wgsl"),
    shader!("gather": "gather.wgsl"),
    shader!("sgd": "step_control.wgsl", "sgd.wgsl"),
    shader!("momentum": "step_control.wgsl", "momentum.wgsl"),
    shader!("adam": "step_control.wgsl", "adam.wgsl"),
    shader!("grad_norm": "workgroup_sum.wgsl", "grad_norm.wgsl"),
    shader!("dp_sgd": "dp_sgd.wgsl"),
    shader!("regression": "regression.wgsl"),
    shader!("fused_mlp_workgroup": "activation.wgsl", "fused_pool_workgroup.wgsl", "fused_mlp.wgsl"),
    shader!("fused_mlp_storage": "activation.wgsl", "fused_pool_storage.wgsl", "fused_mlp.wgsl"),
];

/// The module called `name` in [`SHADERS`].
fn shader(name: &str) -> &'static ShaderSource {
    SHADERS.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no shader module {name}"))
}

/// Compiles the module called `name` on the context's device.
pub(super) fn compile(device: &wgpu::Device, name: &str) -> wgpu::ShaderModule {
    let shader = shader(name);
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(shader.name),
        source: wgpu::ShaderSource::Wgsl(shader.source.into()),
    })
}
