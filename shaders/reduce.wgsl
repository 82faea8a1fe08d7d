// column_sum: out[offset + c] = sum over rows of input(rows, cols)[., c],
// row-major, each column summed top to bottom by one invocation: a fixed order,
// no float atomics, so results repeat bit for bit. With accumulate = 1 the sum
// is added to what out holds. Used for the bias gradient db = sum_rows dZ
// (offset 0) and to total loss partials into one slot of the metrics (cols 1).
//
// binding  name    access      shape
// 0        params  uniform     ColumnSumParams
// 1        input   read        (rows, cols)
// 2        out     read_write  (offset + cols)

struct ColumnSumParams {
    rows: u32,
    cols: u32,
    accumulate: u32,
    offset: u32,
}

@group(0) @binding(0) var<uniform> params: ColumnSumParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn column_sum(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let col = (group.y * groups.x + group.x) * 256u + local;
    if (col >= params.cols) {
        return;
    }
    var sum = 0.0;
    for (var row = 0u; row < params.rows; row++) {
        sum += input[row * params.cols + col];
    }
    let at = params.offset + col;
    if (params.accumulate == 1u) {
        sum += out[at];
    }
    out[at] = sum;
}
