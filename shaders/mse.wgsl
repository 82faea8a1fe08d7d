// mse_grad: the gradient of the mean-squared error and partial sums of the loss.
//   grad(len)          = scale * (pred - expected), scale = 2 / len of the batch
//   partials(groups)   = sum over the workgroup's elements of (pred - expected)^2
// The partial sums are added up in a fixed order by reduce.wgsl::column_sum, so
// the loss is deterministic; the host divides the sum by the element count.
//
// binding  name      access      shape
// 0        params    uniform     MseParams
// 1        pred      read        (len)  the network output, (B, OUT) flattened
// 2        expected    read        (len)  (B, OUT) flattened
// 3        grad      read_write  (len)  dLoss/dpred
// 4        partials  read_write  (number of workgroups)

struct MseParams {
    len: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: MseParams;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> expected: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(256)
fn mse_grad(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let group_index = group.y * groups.x + group.x;
    let i = group_index * WORKGROUP + local;
    var square = 0.0;
    if (i < params.len) {
        let diff = pred[i] - expected[i];
        grad[i] = params.scale * diff;
        square = diff * diff;
    }
    let total = workgroup_sum(local, square);
    if (local == 0u) {
        partials[group_index] = total;
    }
}
