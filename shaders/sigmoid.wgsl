// sigmoid_forward:  values(len) = 1 / (1 + exp(-values)), in place (z -> a).
// sigmoid_backward: values(len) *= act * (1 - act), in place (dA -> dZ), where
//                   act(len) is the forward output a = sigmoid(z).
//
// binding  name    access      shape
// 0        params  uniform     ActivationParams
// 1        values  read_write  (len)  z or dA
// 2        act     read        (len)  a (sigmoid_backward only)
//
// Invocations stride over the elements across a possibly 2-D grid: one
// element each where the grid covers them all (GPUs), several where the host
// keeps the grid small (CPU adapters, which pay per workgroup).

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
fn sigmoid_forward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.len; i += stride) {
        // exp(-z) overflows to +inf for very negative z, and 1 / inf = 0 is the right limit.
        values[i] = 1.0 / (1.0 + exp(-values[i]));
    }
}

@compute @workgroup_size(256)
fn sigmoid_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.len; i += stride) {
        let a = act[i];
        values[i] *= a * (1.0 - a);
    }
}
