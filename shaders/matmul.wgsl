// matmul: out(M, N) = op(a)(M, K) * op(b)(K, N); every matrix row-major.
// op(a) = a stored (M, K), or aᵀ with a stored (K, M) when trans_a = 1.
// op(b) = b stored (K, N), or bᵀ with b stored (N, K) when trans_b = 1.
// The transposes cover the whole pass: forward X·W, dX = dZ·Wᵀ, dW = Xᵀ·dZ.
//
// binding  name    access      shape
// 0        params  uniform     MatmulParams
// 1        a       read        (M, K) or (K, M)
// 2        b       read        (K, N) or (N, K)
// 3        out     read_write  (M, N)
//
// Each invocation computes a 4x4 block of out in registers, without workgroup
// memory (barriers are slow on CPU adapters). Loads outside the matrices read 0
// and stores outside out are skipped, so any M, K, N works.

struct MatmulParams {
    m: u32,
    k: u32,
    n: u32,
    trans_a: u32,
    trans_b: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const BLOCK: u32 = 4u;

// op(a)[row, col], 0 outside (M, K).
fn load_a(row: u32, col: u32) -> f32 {
    if (row >= params.m || col >= params.k) {
        return 0.0;
    }
    if (params.trans_a == 1u) {
        return a[col * params.m + row];
    }
    return a[row * params.k + col];
}

// op(b)[row, col], 0 outside (K, N).
fn load_b(row: u32, col: u32) -> f32 {
    if (row >= params.k || col >= params.n) {
        return 0.0;
    }
    if (params.trans_b == 1u) {
        return b[col * params.k + row];
    }
    return b[row * params.n + col];
}

fn store(row: u32, col0: u32, values: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    for (var c = 0u; c < BLOCK; c++) {
        if (col0 + c < params.n) {
            out[row * params.n + col0 + c] = values[c];
        }
    }
}

// Dispatch: (ceil(N / 32), ceil(M / 32), 1) workgroups of 8x8.
@compute @workgroup_size(8, 8)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * BLOCK;
    let col0 = gid.x * BLOCK;
    if (row0 >= params.m || col0 >= params.n) {
        return;
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < params.k; kk++) {
        let b_row = vec4<f32>(load_b(kk, col0), load_b(kk, col0 + 1u), load_b(kk, col0 + 2u), load_b(kk, col0 + 3u));
        acc0 += load_a(row0, kk) * b_row;
        acc1 += load_a(row0 + 1u, kk) * b_row;
        acc2 += load_a(row0 + 2u, kk) * b_row;
        acc3 += load_a(row0 + 3u, kk) * b_row;
    }
    store(row0, col0, acc0);
    store(row0 + 1u, col0, acc1);
    store(row0 + 2u, col0, acc2);
    store(row0 + 3u, col0, acc3);
}
