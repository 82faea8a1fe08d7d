// bce_grad: binary cross-entropy of each logit against its target in [0, 1],
// with the sigmoid fused in, and partial sums of the loss.
//   loss_i             = max(z, 0) - z * y + log(1 + exp(-|z|))   (stable for any z)
//   grad(len)          = scale * (sigmoid(z) - y), scale = 1 / len of the batch
//   partials(groups)   = sum over the workgroup's elements of loss_i
// The partial sums are added up in a fixed order by reduce.wgsl::column_sum, so
// the loss is deterministic; the host divides the sum by the element count.
//
// binding  name      access      shape
// 0        params    uniform     BceParams
// 1        logits    read        (len)  the last layer's output z (identity), (B, OUT) flattened
// 2        expected  read        (len)  (B, OUT) flattened, each in [0, 1]
// 3        grad      read_write  (len)  dLoss/dlogits
// 4        partials  read_write  (number of workgroups)

struct BceParams {
    len: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: BceParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> expected: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(256)
fn bce_grad(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let group_index = group.y * groups.x + group.x;
    let i = group_index * WORKGROUP + local;
    var loss = 0.0;
    if (i < params.len) {
        let z = logits[i];
        let y = expected[i];
        // exp(-z) overflows to +inf for very negative z, and 1 / inf = 0 is the right limit.
        grad[i] = params.scale * (1.0 / (1.0 + exp(-z)) - y);
        loss = max(z, 0.0) - z * y + log(1.0 + exp(-abs(z)));
    }
    let total = workgroup_sum(local, loss);
    if (local == 0u) {
        partials[group_index] = total;
    }
}
