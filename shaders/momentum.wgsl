// momentum_update: gradient descent with momentum (PyTorch's form), with L2
// weight decay folded into the gradient:
//   g = grads + weight_decay * weights
//   velocity = momentum * velocity + g
//   weights -= rate * velocity
// with grads clipped (step_control.wgsl) and the rate read from the control
// buffer, as in shaders/sgd.wgsl.
//
// binding  name      access      shape
// 0        params    uniform     MomentumParams
// 1        weights   read_write  (len)
// 2        grads     read        (len)
// 3        velocity  read_write  (len)
// 4        control   read        (3)     this step's rate, norm scale, clip value
//
// Invocations stride over the elements across a possibly 2-D grid: one
// element each where the grid covers them all (GPUs), several where the host
// keeps the grid small (CPU adapters, which pay per workgroup).

struct MomentumParams {
    len: u32,
    momentum: f32,
    weight_decay: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: MomentumParams;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;
@group(0) @binding(4) var<storage, read> control: array<f32>;

@compute @workgroup_size(256)
fn momentum_update(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.len; i += stride) {
        let g = clipped(grads[i]) + params.weight_decay * weights[i];
        let v = params.momentum * velocity[i] + g;
        velocity[i] = v;
        weights[i] -= control[0] * v;
    }
}
