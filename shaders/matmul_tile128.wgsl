// matmul for large products on GPUs, after matmul_common.wgsl: 128 x 128
// tiles staged in workgroup memory, 8 x 8 outputs per invocation.
//
// A workgroup of 16 x 16 invocations computes a 128 x 128 tile of out,
// walking K in steps of 8. Each step the workgroup copies the (128 x 8) slice
// of op(a) and the (8 x 128) slice of op(b) into workgroup memory, every
// invocation loading one vec4 of each, and then each invocation multiplies
// from there into its 8 x 8 block of out: rows 8y .. 8y+7 and columns
// 8x .. 8x+7 of the tile, 64 accumulators for 4 vec4 loads per k, against
// matmul_workgroup.wgsl's 16 for 2. The slices are stored k-major as vec4
// rows padded by one vec4, as there. Values outside (M, K) or (K, N) load as 0
// and stores outside out are skipped, so any M, K, N works.

const TILE: u32 = 128u;
const STEP_K: u32 = 8u;

// Dispatch: (ceil(N / 128), ceil(M / 128), 1) workgroups.
@compute @workgroup_size(16, 16)
fn matmul(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) index: u32,
) {
    let row0 = group.y * TILE;
    let col0 = group.x * TILE;
    // A tile wholly past out does nothing: a DP-SGD step sets m below the
    // rows its grid was recorded for. Uniform per workgroup, so the barriers
    // below stay in uniform control flow.
    if (row0 >= params.m || col0 >= params.n) {
        return;
    }
    // acc[2r + h] holds row 8y + r of the block, columns 8x + 4h .. 8x + 4h + 3.
    var acc: array<vec4<f32>, 16>;
    for (var k0 = 0u; k0 < params.k; k0 += STEP_K) {
        load_slices(index, row0, col0, k0);
        workgroupBarrier();
        for (var k = 0u; k < STEP_K; k++) {
            let a_lo = a_slice[k * ROW_VEC4S + 2u * local.y];
            let a_hi = a_slice[k * ROW_VEC4S + 2u * local.y + 1u];
            let b_lo = b_slice[k * ROW_VEC4S + 2u * local.x];
            let b_hi = b_slice[k * ROW_VEC4S + 2u * local.x + 1u];
            for (var r = 0u; r < 4u; r++) {
                acc[2u * r] += a_lo[r] * b_lo;
                acc[2u * r + 1u] += a_lo[r] * b_hi;
                acc[8u + 2u * r] += a_hi[r] * b_lo;
                acc[9u + 2u * r] += a_hi[r] * b_hi;
            }
        }
        workgroupBarrier();
    }
    let row = row0 + 8u * local.y;
    let col = col0 + 8u * local.x;
    for (var r = 0u; r < 8u; r++) {
        for (var c = 0u; c < 4u; c++) {
            store(row + r, col + c, acc[2u * r][c]);
            store(row + r, col + 4u + c, acc[2u * r + 1u][c]);
        }
    }
}
