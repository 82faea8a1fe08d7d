// Adam (Kingma & Ba, PyTorch's form), with L2 weight decay folded into the
// gradient. The step count lives on the GPU, so steps can be recorded ahead:
// adam_tick:   step += 1 and the bias corrections 1 - beta^step, one invocation
// adam_update: g = grads + weight_decay * weights
//              m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//              weights -= rate * (m / c1) / (sqrt(v / c2) + eps)
// with grads clipped (step_control.wgsl) and the rate read from the control
// buffer, as in shaders/sgd.wgsl.
//
// binding  name     access      shape
// 0        params   uniform     AdamParams
// 1        state    read_write  AdamState
// 2        weights  read_write  (len)            adam_update only
// 3        grads    read        (len)            adam_update only
// 4        m        read_write  (len)            adam_update only
// 5        v        read_write  (len)            adam_update only
// 6        control  read        (3)              adam_update only: rate, norm scale, clip value
//
// Invocations stride over the elements across a possibly 2-D grid: one
// element each where the grid covers them all (GPUs), several where the host
// keeps the grid small (CPU adapters, which pay per workgroup).

struct AdamParams {
    len: u32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// step: updates done so far; c1, c2: 1 - beta1^step, 1 - beta2^step.
struct AdamState {
    step: u32,
    c1: f32,
    c2: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: AdamParams;
@group(0) @binding(1) var<storage, read_write> state: AdamState;
@group(0) @binding(2) var<storage, read_write> weights: array<f32>;
@group(0) @binding(3) var<storage, read> grads: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<storage, read> control: array<f32>;

@compute @workgroup_size(1)
fn adam_tick() {
    let step = state.step + 1u;
    state.step = step;
    state.c1 = 1.0 - pow(params.beta1, f32(step));
    state.c2 = 1.0 - pow(params.beta2, f32(step));
}

@compute @workgroup_size(256)
fn adam_update(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.len; i += stride) {
        let g = clipped(grads[i]) + params.weight_decay * weights[i];
        let m_new = params.beta1 * m[i] + (1.0 - params.beta1) * g;
        let v_new = params.beta2 * v[i] + (1.0 - params.beta2) * g * g;
        m[i] = m_new;
        v[i] = v_new;
        weights[i] -= control[0] * (m_new / state.c1) / (sqrt(v_new / state.c2) + params.eps);
    }
}
