// The slices of op(a) and op(b) that the workgroup-memory matmul kernels
// (matmul_workgroup.wgsl, matmul_tile128.wgsl) stage in workgroup memory,
// and the copy that fills them: after matmul_common.wgsl, before a kernel
// that declares the slices' shape (TILE and STEP_K, with
// STEP_K * TILE / 4 = 256 invocations) and runs load_slices for each step of K.

// vec4s per k row of a slice: TILE / 4, plus one of padding.
const ROW_VEC4S: u32 = TILE / 4u + 1u;

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

// Copies op(a)[row0 .., k0 ..] and op(b)[k0 .., col0 ..] into the slices. A
// slice holds STEP_K x TILE / 4 vec4s, one per invocation (256 of them), each
// written whole: 4 values along m (or n) at one k. The index that runs fastest across invocations is
// the one contiguous in memory for this transpose: k where op(a) rows (or
// op(b) columns) are stored contiguously, else the vec4 position.
fn load_slices(index: u32, row0: u32, col0: u32, k0: u32) {
    var k: u32;
    var m: u32; // first of the 4 rows of op(a)
    if (TRANS_A) {
        m = 4u * (index % (TILE / 4u));
        k = index / (TILE / 4u);
    } else {
        k = index % STEP_K;
        m = 4u * (index / STEP_K);
    }
    let a_col = k0 + k;
    let a_row = row0 + m;
    a_slice[k * ROW_VEC4S + m / 4u] = vec4<f32>(
        a_or_zero(a_row, a_col),
        a_or_zero(a_row + 1u, a_col),
        a_or_zero(a_row + 2u, a_col),
        a_or_zero(a_row + 3u, a_col),
    );
    var n: u32; // first of the 4 columns of op(b)
    if (TRANS_B) {
        k = index % STEP_K;
        n = 4u * (index / STEP_K);
    } else {
        n = 4u * (index % (TILE / 4u));
        k = index / (TILE / 4u);
    }
    let b_row = k0 + k;
    let b_col = col0 + n;
    b_slice[k * ROW_VEC4S + n / 4u] = vec4<f32>(
        b_or_zero(b_row, b_col),
        b_or_zero(b_row, b_col + 1u),
        b_or_zero(b_row, b_col + 2u),
        b_or_zero(b_row, b_col + 3u),
    );
}

