// Gradient clipping by the global L2 norm (`clip_grad_norm`), in a fixed
// order (no float atomics), so it repeats bit for bit:
// square_partials: partials[g] = sum of grads[i]^2 over the elements of
//                  workgroup g: invocation t of it takes i = g * 256 + t,
//                  then i + stride, ... in order; the workgroup's 256 sums
//                  are then added as a tree.
// clip_scale:      one invocation adds the partials in order, norm =
//                  sqrt(sum), and writes control[1] = min(1, max_norm /
//                  (norm + 1e-6)) (PyTorch's clip_grad_norm_), the factor the
//                  update kernels multiply every gradient by.
//
// binding  name      access      shape
// 0        params    uniform     GradNormParams
// 1        grads     read        (len)        read by square_partials
// 2        partials  read_write  (groups)
// 3        control   read_write  (3)          written by clip_scale: [rate, scale, value]
//
// Both entry points name all three (a phony read), so one bind group layout
// serves both.

struct GradNormParams {
    len: u32,
    groups: u32,
    max_norm: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: GradNormParams;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> control: array<f32>;

@compute @workgroup_size(256)
fn square_partials(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) local: u32) {
    _ = control[0];
    let stride = params.groups * WORKGROUP;
    var sum = 0.0;
    for (var i = group.x * WORKGROUP + local; i < params.len; i += stride) {
        sum += grads[i] * grads[i];
    }
    let total = workgroup_sum(local, sum);
    if (local == 0u) {
        partials[group.x] = total;
    }
}

@compute @workgroup_size(1)
fn clip_scale() {
    _ = grads[0];
    var total = 0.0;
    for (var g = 0u; g < params.groups; g++) {
        total += partials[g];
    }
    let norm = sqrt(total);
    control[1] = min(1.0, params.max_norm / (norm + 1e-6));
}
