// count_correct: how many rows of pred have their largest value at the same
// column as the largest value of the row of expected (ties: the first column),
// as one partial count per workgroup (f32, exact below 2^24 per workgroup).
//
// binding  name      access      shape
// 0        params    uniform     CountCorrectParams
// 1        pred      read        (B, K)  the network output (logits or probabilities)
// 2        expected  read        (B, K)  one-hot targets
// 3        partials  read_write  (number of workgroups)
//
// One invocation per row over a possibly 2-D grid.

struct CountCorrectParams {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: CountCorrectParams;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> expected: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

fn argmax_pred(base: u32) -> u32 {
    var best = 0u;
    for (var j = 1u; j < params.cols; j++) {
        if (pred[base + j] > pred[base + best]) {
            best = j;
        }
    }
    return best;
}

fn argmax_expected(base: u32) -> u32 {
    var best = 0u;
    for (var j = 1u; j < params.cols; j++) {
        if (expected[base + j] > expected[base + best]) {
            best = j;
        }
    }
    return best;
}

@compute @workgroup_size(256)
fn count_correct(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let group_index = group.y * groups.x + group.x;
    let row = group_index * WORKGROUP + local;
    var hit = 0.0;
    if (row < params.rows) {
        let base = row * params.cols;
        hit = select(0.0, 1.0, argmax_pred(base) == argmax_expected(base));
    }
    let total = workgroup_sum(local, hit);
    if (local == 0u) {
        partials[group_index] = total;
    }
}
