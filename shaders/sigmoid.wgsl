// sigmoid_forward:  values(len) = 1 / (1 + exp(-values)), in place (z -> a).
// sigmoid_backward: values(len) *= act * (1 - act), in place (dA -> dZ), where
//                   act(len) is the forward output a = sigmoid(z).
//
// binding  name    access      shape
// 0        params  uniform     ActivationParams
// 1        values  read_write  (len)  z or dA
// 2        act     read        (len)  a (sigmoid_backward only)
//
// One invocation per element over a possibly 2-D grid; extra invocations return.

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
    let i = (group.y * groups.x + group.x) * 256u + local;
    if (i >= params.len) {
        return;
    }
    // exp(-z) overflows to +inf for very negative z, and 1 / inf = 0 is the right limit.
    values[i] = 1.0 / (1.0 + exp(-values[i]));
}

@compute @workgroup_size(256)
fn sigmoid_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = (group.y * groups.x + group.x) * 256u + local;
    if (i >= params.len) {
        return;
    }
    let a = act[i];
    values[i] *= a * (1.0 - a);
}
