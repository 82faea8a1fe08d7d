// Inverted dropout on a hidden layer's (B, OUT) block, in training steps only:
// dropout_forward:  dropped[i] = keep(i) ? values[i] * scale : 0, the layer's
//                   output as the next layer (and its weight gradient) sees it;
// dropout_backward: values[i] = keep(i) ? values[i] * scale : 0, on dZ of the
//                   layer, after the epilogue applied act' to the undropped
//                   output.
// keep(i) hashes (seed, step, layer, i) exactly as src/dropout.rs does
// (lowbias32 chained over the words): kept when the top 24 bits, as a
// fraction of 2^24, are at least p. The step is control[3], a u32 held in the
// f32 control buffer by its bits, copied in per step by the trainer.
//
// binding  name     access      shape
// 0        params   uniform     DropoutParams
// 1        control  read        (4)       [rate, scale, clip value, step] as u32 words
// 2        values   read_write  (len)     dropout_forward reads it; dropout_backward scales it
// 3        dropped  read_write  (len)     dropout_forward only
//
// Invocations stride over the elements across a possibly 2-D grid.

struct DropoutParams {
    len: u32,
    layer: u32,
    p: f32,
    scale: f32,
    seed_lo: u32,
    seed_hi: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: DropoutParams;
// Read as u32: the step's bits pass through untouched (as floats they may be NaN patterns).
@group(0) @binding(1) var<storage, read> control: array<u32>;
@group(0) @binding(2) var<storage, read_write> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> dropped: array<f32>;

fn mix(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

fn keeps(index: u32) -> bool {
    let step = control[3];
    let h = mix(params.seed_lo ^ mix(params.seed_hi ^ mix(step ^ mix(params.layer ^ mix(index)))));
    return f32(h >> 8u) * (1.0 / 16777216.0) >= params.p;
}

@compute @workgroup_size(256)
fn dropout_forward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.len; i += stride) {
        dropped[i] = select(0.0, values[i] * params.scale, keeps(i));
    }
}

@compute @workgroup_size(256)
fn dropout_backward(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.len; i += stride) {
        values[i] = select(0.0, values[i] * params.scale, keeps(i));
    }
}
