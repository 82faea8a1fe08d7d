// matmul: out(M, N) = op(a)(M, K) * op(b)(K, N); every matrix row-major.
// op(a) = a stored (M, K), or aᵀ with a stored (K, M) when trans_a = 1.
// op(b) = b stored (K, N), or bᵀ with b stored (N, K) when trans_b = 1.
// The transposes are pipeline constants (TRANS_A, TRANS_B; the host builds a
// pipeline for each of the four), so the inner loop holds no branch; the
// params repeat them so a dispatch's uniform states its whole shape.
// The transposes cover the whole pass: forward X·W, dX = dZ·Wᵀ, dW = Xᵀ·dZ.
// An epilogue fuses the element-wise work that follows, in this order:
//   bias = 1:        out += bias[col]                 (forward: X·W + b)
//   activation = c:  out = act_c(out)                 (forward: 1 sigmoid, 2 relu, 3 tanh)
//   derivative = c:  out *= act_c'(given[row, col])   (backward: dA -> dZ of the layer
//                    below, from its output a; same codes)
//
// binding  name    access      shape
// 0        params  uniform     MatmulParams
// 1        a       read        (M, K) or (K, M)
// 2        b       read        (K, N) or (N, K)
// 3        out     read_write  (M, N)
// 4        bias    read        (N)     read only when bias = 1
// 5        given   read        (M, N)  read only when derivative != 0
//
// A workgroup of 8 x 8 invocations computes a 32 x 32 tile of out in
// registers, without workgroup memory (barriers are slow on CPU adapters).
// Invocation (x, y) owns rows 4y .. 4y+3 of the tile and columns x, x+8, x+16,
// x+24: the eight invocations that share y (one SIMD batch on CPU adapters)
// read the same a values and neighbouring b values. Tiles wholly inside out
// skip the bounds checks; edge tiles load 0 outside and skip stores outside,
// so any M, K, N works.

struct MatmulParams {
    m: u32,
    k: u32,
    n: u32,
    trans_a: u32,
    trans_b: u32,
    bias: u32,
    activation: u32,
    derivative: u32,
}

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> given: array<f32>;

const SIGMOID: u32 = 1u;
const RELU: u32 = 2u;
const TANH: u32 = 3u;

// The forward activation; the formulas are those of sigmoid.wgsl, relu.wgsl, tanh.wgsl.
fn activate(code: u32, z: f32) -> f32 {
    switch code {
        case SIGMOID: { return 1.0 / (1.0 + exp(-z)); }
        case RELU: { return max(z, 0.0); }
        case TANH: { return 1.0 - 2.0 / (exp(2.0 * z) + 1.0); }
        default: { return z; }
    }
}

// dA -> dZ given the activation's output a, as in the *_backward kernels.
fn backward(code: u32, grad: f32, a: f32) -> f32 {
    switch code {
        case SIGMOID: { return grad * a * (1.0 - a); }
        case RELU: { return select(0.0, grad, a > 0.0); }
        case TANH: { return grad * (1.0 - a * a); }
        default: { return grad; }
    }
}

fn epilogue(row: u32, col: u32, value: f32) -> f32 {
    var v = value;
    if (params.bias == 1u) {
        v += bias[col];
    }
    v = activate(params.activation, v);
    if (params.derivative != 0u) {
        v = backward(params.derivative, v, given[row * params.n + col]);
    }
    return v;
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;

const TILE: u32 = 32u;
const TILE_M: u32 = 64u;
const LANES: u32 = 8u;

// op(a)[row, col], no bounds check.
fn a_at(row: u32, col: u32) -> f32 {
    if (TRANS_A) {
        return a[col * params.m + row];
    }
    return a[row * params.k + col];
}

// op(b)[row, col], no bounds check.
fn b_at(row: u32, col: u32) -> f32 {
    if (TRANS_B) {
        return b[col * params.k + row];
    }
    return b[row * params.n + col];
}

// op(a)[row, col], 0 outside (M, K).
fn a_checked(row: u32, col: u32) -> f32 {
    if (row >= params.m) {
        return 0.0;
    }
    return a_at(row, col);
}

// op(b)[row, col], 0 outside (K, N).
fn b_checked(row: u32, col: u32) -> f32 {
    if (col >= params.n) {
        return 0.0;
    }
    return b_at(row, col);
}

// Dispatch: (ceil(N / 32), ceil(M / 32), 1) workgroups.
@compute @workgroup_size(8, 8)
fn matmul(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let row0 = group.y * TILE_M + local.y * 8u;
    let col0 = group.x * TILE + local.x;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    // Uniform per workgroup: the whole tile lies inside out.
    let interior = group.y * TILE_M + TILE_M <= params.m && group.x * TILE + TILE <= params.n;
    if (interior) {
        for (var kk = 0u; kk < params.k; kk++) {
            let b_row = vec4<f32>(b_at(kk, col0), b_at(kk, col0 + 8u), b_at(kk, col0 + 16u), b_at(kk, col0 + 24u));
            acc0 += a_at(row0, kk) * b_row;
            acc1 += a_at(row0 + 1u, kk) * b_row;
            acc2 += a_at(row0 + 2u, kk) * b_row;
            acc3 += a_at(row0 + 3u, kk) * b_row;
            acc4 += a_at(row0 + 4u, kk) * b_row;
            acc5 += a_at(row0 + 5u, kk) * b_row;
            acc6 += a_at(row0 + 6u, kk) * b_row;
            acc7 += a_at(row0 + 7u, kk) * b_row;
        }
    } else {
        for (var kk = 0u; kk < params.k; kk++) {
            let b_row = vec4<f32>(
                b_checked(kk, col0),
                b_checked(kk, col0 + 8u),
                b_checked(kk, col0 + 16u),
                b_checked(kk, col0 + 24u),
            );
            acc0 += a_checked(row0, kk) * b_row;
            acc1 += a_checked(row0 + 1u, kk) * b_row;
            acc2 += a_checked(row0 + 2u, kk) * b_row;
            acc3 += a_checked(row0 + 3u, kk) * b_row;
            acc4 += a_checked(row0 + 4u, kk) * b_row;
            acc5 += a_checked(row0 + 5u, kk) * b_row;
            acc6 += a_checked(row0 + 6u, kk) * b_row;
            acc7 += a_checked(row0 + 7u, kk) * b_row;
        }
    }
    store(row0, col0, acc0);
    store(row0 + 1u, col0, acc1);
    store(row0 + 2u, col0, acc2);
    store(row0 + 3u, col0, acc3);
    store(row0 + 4u, col0, acc4);
    store(row0 + 5u, col0, acc5);
    store(row0 + 6u, col0, acc6);
    store(row0 + 7u, col0, acc7);
}

// Writes values[c] to out[row, col0 + 8c] where inside out.
fn store(row: u32, col0: u32, values: vec4<f32>) {
    if (row >= params.m) {
        return;
    }
    for (var c = 0u; c < 4u; c++) {
        let col = col0 + c * LANES;
        if (col < params.n) {
            out[row * params.n + col] = epilogue(row, col, values[c]);
        }
    }
}
