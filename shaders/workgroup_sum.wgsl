// workgroup_sum: the total of one value from each invocation of a
// 256-invocation workgroup, added as a tree in a fixed order (no float
// atomics), so the partial sums of a kernel repeat bit for bit. The prelude of
// the loss, accuracy and gradient-norm kernels; called from uniform control
// flow, as every invocation must reach its barriers.

const WORKGROUP: u32 = 256u;
var<workgroup> workgroup_values: array<f32, WORKGROUP>;

/// The sum of every invocation's `value`; the same on every invocation.
fn workgroup_sum(local: u32, value: f32) -> f32 {
    workgroup_values[local] = value;
    workgroupBarrier();
    for (var stride = WORKGROUP / 2u; stride > 0u; stride /= 2u) {
        if (local < stride) {
            workgroup_values[local] += workgroup_values[local + stride];
        }
        workgroupBarrier();
    }
    return workgroup_values[0];
}
