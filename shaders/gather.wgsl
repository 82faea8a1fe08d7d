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
// One invocation per element of out over a possibly 2-D grid.

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
    let i = (group.y * groups.x + group.x) * 256u + local;
    if (i >= params.rows * params.width) {
        return;
    }
    let row = i / params.width;
    let col = i % params.width;
    let source_row = index[row];
    let chunk = source_row / params.rows_per_chunk;
    let at = (source_row % params.rows_per_chunk) * params.width + col;
    var value: f32;
    switch chunk {
        case 0u: { value = chunk0[at]; }
        case 1u: { value = chunk1[at]; }
        case 2u: { value = chunk2[at]; }
        default: { value = chunk3[at]; }
    }
    out[i] = value;
}
