// gather_rows: out(B, W) = source[index[r], :] for r < B: the rows of a batch,
// in the order of the epoch's shuffle. The source (N, W) may be larger than one
// storage binding, so it comes in up to four chunks of rows_per_chunk rows each
// (unused chunk bindings hold a placeholder and are never read).
//
// binding  name    access      shape
// 0        params  uniform     GatherParams
// 1        index   read        (B)  u32 row numbers into the source
// 2        out     read_write  (B, W)
// 3..6     chunk0..chunk3  read  (rows_per_chunk, W) each, the last one shorter
//
// Two entry points, the host picking by the row width:
// gather_rows (wide rows): a workgroup copies a row, its invocations striding
//   over the columns, so no invocation divides by the width;
// gather_elements (narrow rows): invocations stride over the elements of out,
//   so few invocations idle.
// Both stride across a possibly 2-D grid: one row or element each where the
// grid covers them all (GPUs), several where the host keeps the grid small
// (CPU adapters, which pay per workgroup).

struct GatherParams {
    rows: u32,
    width: u32,
    rows_per_chunk: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: GatherParams;
@group(0) @binding(1) var<storage, read> index: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> chunk0: array<f32>;
@group(0) @binding(4) var<storage, read> chunk1: array<f32>;
@group(0) @binding(5) var<storage, read> chunk2: array<f32>;
@group(0) @binding(6) var<storage, read> chunk3: array<f32>;

@compute @workgroup_size(256)
fn gather_rows(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let first = group.y * groups.x + group.x;
    for (var row = first; row < params.rows; row += groups.x * groups.y) {
        let source_row = index[row];
        let at = (source_row % params.rows_per_chunk) * params.width;
        let to = row * params.width;
        switch source_row / params.rows_per_chunk {
            case 0u: {
                for (var col = local; col < params.width; col += 256u) { out[to + col] = chunk0[at + col]; }
            }
            case 1u: {
                for (var col = local; col < params.width; col += 256u) { out[to + col] = chunk1[at + col]; }
            }
            case 2u: {
                for (var col = local; col < params.width; col += 256u) { out[to + col] = chunk2[at + col]; }
            }
            default: {
                for (var col = local; col < params.width; col += 256u) { out[to + col] = chunk3[at + col]; }
            }
        }
    }
}

@compute @workgroup_size(256)
fn gather_elements(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.rows * params.width; i += stride) {
        let source_row = index[i / params.width];
        let at = (source_row % params.rows_per_chunk) * params.width + i % params.width;
        var value: f32;
        switch source_row / params.rows_per_chunk {
            case 0u: { value = chunk0[at]; }
            case 1u: { value = chunk1[at]; }
            case 2u: { value = chunk2[at]; }
            default: { value = chunk3[at]; }
        }
        out[i] = value;
    }
}
