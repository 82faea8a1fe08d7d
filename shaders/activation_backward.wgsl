// activation_backward: values(len) = dz_from_da(ACTIVATION, values, act), in
// place: dA -> dZ of a layer whose forward output is act (activation.wgsl,
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
// 2        act     read        (len)  a
//
// Invocations stride over the elements across a possibly 2-D grid: one
// element each where the grid covers them all (GPUs), several where the host
// keeps the grid small (CPU adapters, which pay per workgroup).

override ACTIVATION: u32 = 0u;

struct ActivationParams {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: ActivationParams;
@group(0) @binding(1) var<storage, read_write> values: array<f32>;
@group(0) @binding(2) var<storage, read> act: array<f32>;

@compute @workgroup_size(256)
fn activation_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.len; i += stride) {
        values[i] = dz_from_da(ACTIVATION, values[i], act[i]);
    }
}
