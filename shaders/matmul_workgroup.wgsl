// matmul for GPUs, after matmul_common.wgsl: tiles staged in workgroup memory.
//
// A workgroup of 16 x 16 invocations computes a 64 x 64 tile of out, walking
// K in steps of 16. Each step the workgroup copies the (64 x 16) slice of
// op(a) and the (16 x 64) slice of op(b) into workgroup memory, every
// invocation loading 4 values of each so that neighbouring invocations read
// neighbouring addresses, and then each invocation multiplies from there into
// its 4 x 4 block of out: rows 4y .. 4y+3 and columns 4x .. 4x+3 of the tile.
// The slices are stored k-major as vec4 rows, so an invocation reads its 4 a
// values and its 4 b values with one vec4 load each; a row is padded by one
// vec4 so that copies along k do not all hit one memory bank. Values outside
// (M, K) or (K, N) load as 0 and stores outside out are skipped, so any
// M, K, N works.

const TILE: u32 = 64u;
const STEP_K: u32 = 16u;
const INVOCATIONS: u32 = 256u;
// vec4s per k row of a slice: TILE / 4, plus one of padding.
const ROW_VEC4S: u32 = 17u;

// op(a)[row0 + m, k0 + k] is a_slice[k * ROW_VEC4S + m / 4][m % 4]; b likewise with n.
var<workgroup> a_slice: array<vec4<f32>, STEP_K * ROW_VEC4S>;
var<workgroup> b_slice: array<vec4<f32>, STEP_K * ROW_VEC4S>;

// op(a)[row, col], 0 outside (M, K).
fn a_or_zero(row: u32, col: u32) -> f32 {
    if (row >= params.m || col >= params.k) {
        return 0.0;
    }
    return a_at(row, col);
}

// op(b)[row, col], 0 outside (K, N).
fn b_or_zero(row: u32, col: u32) -> f32 {
    if (row >= params.k || col >= params.n) {
        return 0.0;
    }
    return b_at(row, col);
}

// Copies op(a)[row0 .., k0 ..] and op(b)[k0 .., col0 ..] into the slices.
// Element e of a slice goes to invocation e % 256; the index that runs
// fastest is the one contiguous in memory for this transpose.
fn load_slices(index: u32, row0: u32, col0: u32, k0: u32) {
    for (var i = 0u; i < TILE * STEP_K / INVOCATIONS; i++) {
        let e = index + i * INVOCATIONS;
        var m: u32;
        var k: u32;
        if (TRANS_A) {
            m = e % TILE;
            k = e / TILE;
        } else {
            k = e % STEP_K;
            m = e / STEP_K;
        }
        a_slice[k * ROW_VEC4S + m / 4u][m % 4u] = a_or_zero(row0 + m, k0 + k);
        var n: u32;
        if (TRANS_B) {
            k = e % STEP_K;
            n = e / STEP_K;
        } else {
            n = e % TILE;
            k = e / TILE;
        }
        b_slice[k * ROW_VEC4S + n / 4u][n % 4u] = b_or_zero(k0 + k, col0 + n);
    }
}

// Dispatch: (ceil(N / 64), ceil(M / 64), 1) workgroups.
@compute @workgroup_size(16, 16)
fn matmul(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
    @builtin(local_invocation_index) index: u32,
) {
    let row0 = group.y * TILE;
    let col0 = group.x * TILE;
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
