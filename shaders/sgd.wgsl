// sgd_update: weights(len) -= rate * (clipped(grads) + weight_decay * weights):
// plain gradient descent, with L2 weight decay folded into the gradient and
// the gradient clipped as the step's control says (step_control.wgsl). The
// learning rate is read from the control buffer, so a schedule changes it per
// step without re-recording (the trainer copies each step's rate into it).
// The trainer keeps every weight and bias in one flat buffer (and the gradients
// in a twin), so one dispatch updates the whole model.
//
// binding  name     access      shape
// 0        params   uniform     SgdParams
// 1        weights  read_write  (len)
// 2        grads    read        (len)
// 3        control  read        (3)     this step's rate, norm scale, clip value
//
// Invocations stride over the elements across a possibly 2-D grid: one
// element each where the grid covers them all (GPUs), several where the host
// keeps the grid small (CPU adapters, which pay per workgroup).

struct SgdParams {
    len: u32,
    weight_decay: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: SgdParams;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read> control: array<f32>;

@compute @workgroup_size(256)
fn sgd_update(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.len; i += stride) {
        weights[i] -= control[0] * (clipped(grads[i]) + params.weight_decay * weights[i]);
    }
}
