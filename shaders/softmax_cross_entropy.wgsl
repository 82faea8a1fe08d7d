// softmax_cross_entropy: the fused, numerically stable softmax + cross-entropy
// of each row of logits against a target distribution (one-hot for classes).
//   m_r           = sum_j expected_rj: 1 for a one-hot row; a class weight
//                   scales a row's target, and so its loss and gradient
//   loss_r        = m_r logsumexp(logits_r) - sum_j expected_rj * logits_rj
//   grad(B, K)    = scale * (m_r softmax(logits_r) - expected_r), scale = 1 / B
//   partials(g)   = sum of loss_r over the rows of workgroup g
// Subtracting the row maximum keeps exp from overflowing for any logits.
//
// binding  name      access      shape
// 0        params    uniform     SoftmaxCrossEntropyParams
// 1        logits    read        (B, K)  the last layer's output z (identity)
// 2        expected  read        (B, K)  rows summing to 1 (or a class weight)
// 3        grad      read_write  (B, K)  dLoss/dlogits
// 4        partials  read_write  (number of workgroups)
//
// One invocation per row over a possibly 2-D grid.

struct SoftmaxCrossEntropyParams {
    rows: u32,
    cols: u32,
    scale: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: SoftmaxCrossEntropyParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> expected: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(256)
fn softmax_cross_entropy(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let group_index = group.y * groups.x + group.x;
    let row = group_index * WORKGROUP + local;
    var loss = 0.0;
    if (row < params.rows) {
        let base = row * params.cols;
        var top = logits[base];
        for (var j = 1u; j < params.cols; j++) {
            top = max(top, logits[base + j]);
        }
        var total = 0.0;
        var dot = 0.0;
        var mass = 0.0;
        for (var j = 0u; j < params.cols; j++) {
            total += exp(logits[base + j] - top);
            dot += expected[base + j] * (logits[base + j] - top);
            mass += expected[base + j];
        }
        loss = log(total) * mass - dot;
        for (var j = 0u; j < params.cols; j++) {
            let p = exp(logits[base + j] - top) / total;
            grad[base + j] = params.scale * (p * mass - expected[base + j]);
        }
    }
    let total = workgroup_sum(local, loss);
    if (local == 0u) {
        partials[group_index] = total;
    }
}
