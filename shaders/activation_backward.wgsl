// activation_backward: values(len) = dz_from_da(ACTIVATION, slope, values, given),
// in place: dA -> dZ of a layer whose forward output is a (activation.wgsl,
// before this file, defines dz_from_da). Training needs it only for the last
// layer; the layers below get theirs in the epilogue of the matmul that
// makes their dA. The forward activations have no kernel of their own: the
// matmul epilogue applies them.
//
// ACTIVATION is a pipeline constant (the host builds one pipeline per code).
//
// binding  name    access      shape
// 0        params  uniform     ActivationParams
// 1        values  read_write  (len)  dA, becomes dZ
// 2        given   read        (len)  a, or z for GELU (see activation.wgsl)
//
// Invocations stride over the elements across a possibly 2-D grid: one
// element each where the grid covers them all (GPUs), several where the host
// keeps the grid small (CPU adapters, which pay per workgroup).

override ACTIVATION: u32 = 0u;

struct ActivationParams {
    len: u32,
    negative_slope: f32,  // leaky relu's; unused by the others
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: ActivationParams;
@group(0) @binding(1) var<storage, read_write> values: array<f32>;
@group(0) @binding(2) var<storage, read> given: array<f32>;

@compute @workgroup_size(256)
fn activation_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.len; i += stride) {
        values[i] = dz_from_da(ACTIVATION, params.negative_slope, values[i], given[i]);
    }
}
