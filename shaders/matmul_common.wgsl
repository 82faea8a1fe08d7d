// matmul, the part every kernel shares (matmul_registers.wgsl,
// matmul_workgroup.wgsl and matmul_tile128.wgsl each follow this file in one
// shader module, after activation.wgsl and dropout.wgsl, whose activate,
// dz_from_da and dropout_keeps the epilogue calls; the host picks a kernel
// per adapter, or per shape class by timing):
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
//   dropout = 1:     dropped = keep ? out * scale : 0 (forward, training: the hidden
//                    layer's output as the next layer sees it; out stays whole)
//   dropout = 2:     out = keep ? out * scale : 0     (backward: dZ masked as the
//                    layer's output was)
// negative_slope is leaky relu's, for either activation or derivative; keep
// is dropout_keeps of the element's index row * n + col in layer
// dropout_layer at the step control[3] holds.
//
// binding  name    access      shape
// 0        params  uniform     MatmulParams
// 1        a       read        (M, K) or (K, M)
// 2        b       read        (K, N) or (N, K)
// 3        out     read_write  (M, N)
// 4        bias    read        (N)     read only when bias = 1
// 5        given   read        (M, N)  read only when derivative != 0
// 6        pre     read_write  (M, N)  written only when keep_pre = 1
// 7        dropped read_write  (M, N)  written only when dropout = 1
// 8        control read        the step's control words, read only when dropout != 0

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
    dropout: u32,
    dropout_layer: u32,
    dropout_p: f32,
    dropout_scale: f32,
    dropout_seed_lo: u32,
    dropout_seed_hi: u32,
}

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> given: array<f32>;
@group(0) @binding(6) var<storage, read_write> pre: array<f32>;
@group(0) @binding(7) var<storage, read_write> dropped: array<f32>;
// Read as u32: the step's bits pass through untouched.
@group(0) @binding(8) var<storage, read> control: array<u32>;

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
    if (params.dropout != 0u) {
        let i = row * params.n + col;
        let seed = vec2<u32>(params.dropout_seed_lo, params.dropout_seed_hi);
        let kept = dropout_keeps(seed, control[3], params.dropout_layer, i, params.dropout_p);
        let masked = select(0.0, v * params.dropout_scale, kept);
        if (params.dropout == 1u) {
            dropped[i] = masked;
        } else {
            v = masked;
        }
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
