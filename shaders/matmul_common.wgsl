// matmul, the part both kernels share (matmul_registers.wgsl and
// matmul_workgroup.wgsl each follow this file in one shader module, after
// activation.wgsl, whose activate and dz_from_da the epilogue calls; the host
// picks one kernel per adapter):
// out(M, N) = op(a)(M, K) * op(b)(K, N); every matrix row-major.
// op(a) = a stored (M, K), or aᵀ with a stored (K, M) when trans_a = 1.
// op(b) = b stored (K, N), or bᵀ with b stored (N, K) when trans_b = 1.
// The transposes are pipeline constants (TRANS_A, TRANS_B; the host builds a
// pipeline for each of the four), so the inner loop holds no branch; the
// params repeat them so a dispatch's uniform states its whole shape.
// The transposes cover the whole pass: forward X·W, dX = dZ·Wᵀ, dW = Xᵀ·dZ.
// An epilogue fuses the element-wise work that follows, in this order:
//   bias = 1:        out += bias[col]                 (forward: X·W + b)
//   keep_pre = 1:    pre = out                        (forward: z kept for GELU's backward)
//   activation = c:  out = act_c(out)                 (forward: 1 sigmoid, 2 relu, 3 tanh,
//                                                     4 leaky relu, 5 gelu)
//   derivative = c:  out *= act_c'(given[row, col])   (backward: dA -> dZ of the layer
//                    below, from its output a, or its z for GELU; same codes)
// negative_slope is leaky relu's, for either activation or derivative.
//
// binding  name    access      shape
// 0        params  uniform     MatmulParams
// 1        a       read        (M, K) or (K, M)
// 2        b       read        (K, N) or (N, K)
// 3        out     read_write  (M, N)
// 4        bias    read        (N)     read only when bias = 1
// 5        given   read        (M, N)  read only when derivative != 0
// 6        pre     read_write  (M, N)  written only when keep_pre = 1

struct MatmulParams {
    m: u32,
    k: u32,
    n: u32,
    trans_a: u32,
    trans_b: u32,
    bias: u32,
    activation: u32,
    derivative: u32,
    negative_slope: f32,
    keep_pre: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> given: array<f32>;
@group(0) @binding(6) var<storage, read_write> pre: array<f32>;

fn epilogue(row: u32, col: u32, value: f32) -> f32 {
    var v = value;
    if (params.bias == 1u) {
        v += bias[col];
    }
    if (params.keep_pre == 1u) {
        pre[row * params.n + col] = v;
    }
    v = activate(params.activation, params.negative_slope, v);
    if (params.derivative != 0u) {
        v = dz_from_da(params.derivative, params.negative_slope, v, given[row * params.n + col]);
    }
    return v;
}

// out[row, col] = epilogue(value) where (row, col) lies inside out.
fn store(row: u32, col: u32, value: f32) {
    if (row < params.m && col < params.n) {
        out[row * params.n + col] = epilogue(row, col, value);
    }
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;

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
