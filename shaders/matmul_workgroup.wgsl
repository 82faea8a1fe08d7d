// matmul for GPUs, after matmul_common.wgsl: tiles staged in workgroup memory.
//
// A workgroup of 16 x 16 invocations computes a 64 x 64 tile of out, walking
// K in steps of 16. Each step the workgroup copies the (64 x 16) slice of
// op(a) and the (16 x 64) slice of op(b) into workgroup memory, every
// invocation loading 4 values of each (one whole vec4 store per slice), and
// then each invocation multiplies from there into its 4 x 4 block of out:
// rows 4y .. 4y+3 and columns 4x .. 4x+3 of the tile.
// The slices are stored k-major as vec4 rows, so an invocation reads its 4 a
// values and its 4 b values with one vec4 load each; a row is padded by one
// vec4 so that copies along k do not all hit one memory bank. Values outside
// (M, K) or (K, N) load as 0 and stores outside out are skipped, so any
// M, K, N works.

const TILE: u32 = 64u;
const STEP_K: u32 = 16u;

// Dispatch: (ceil(N / 64), ceil(M / 64), 1) workgroups.
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
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < params.k; k0 += STEP_K) {
        load_slices(index, row0, col0, k0);
        workgroupBarrier();
        for (var k = 0u; k < STEP_K; k++) {
            let a4 = a_slice[k * ROW_VEC4S + local.y];
            let b4 = b_slice[k * ROW_VEC4S + local.x];
            acc0 += a4.x * b4;
            acc1 += a4.y * b4;
            acc2 += a4.z * b4;
            acc3 += a4.w * b4;
        }
        workgroupBarrier();
    }
    let row = row0 + 4u * local.y;
    let col = col0 + 4u * local.x;
    for (var c = 0u; c < 4u; c++) {
        store(row, col + c, acc0[c]);
        store(row + 1u, col + c, acc1[c]);
        store(row + 2u, col + c, acc2[c]);
        store(row + 3u, col + c, acc3[c]);
    }
}
