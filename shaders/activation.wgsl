// The activations by code, the one table of them on the GPU: the matmul
// epilogue (before matmul_common.wgsl), the element-wise backward kernel
// (before activation_backward.wgsl) and the fused path (before
// fused_mlp.wgsl) all take them from here. The host's codes come from
// src/gpu/uniforms.rs::activation_code; src/cpu.rs computes the same formulas.
//
// defines: SIGMOID, RELU, TANH (codes; 0 and any other is the identity),
//          activate(code, z), derivative(code, a), dz_from_da(code, grad, a)

const SIGMOID: u32 = 1u;
const RELU: u32 = 2u;
const TANH: u32 = 3u;

// a = act(z).
fn activate(code: u32, z: f32) -> f32 {
    switch code {
        // exp(-z) overflows to +inf for very negative z, and 1 / inf = 0 is the right limit.
        case SIGMOID: { return 1.0 / (1.0 + exp(-z)); }
        case RELU: { return max(z, 0.0); }
        // 1 - 2 / (exp(2z) + 1): exact ±1 where exp overflows.
        case TANH: { return 1.0 - 2.0 / (exp(2.0 * z) + 1.0); }
        default: { return z; }
    }
}

// d act / dz written in terms of the output a = act(z) (relu'(0) = 0).
fn derivative(code: u32, a: f32) -> f32 {
    switch code {
        case SIGMOID: { return a * (1.0 - a); }
        case RELU: { return select(0.0, 1.0, a > 0.0); }
        case TANH: { return 1.0 - a * a; }
        default: { return 1.0; }
    }
}

// dZ from dA, given a: grad * act'(a), except that relu zeroes the gradient
// outright where a <= 0 (as the CPU does), so an infinite grad there gives 0,
// not NaN.
fn dz_from_da(code: u32, grad: f32, a: f32) -> f32 {
    if (code == RELU) {
        return select(0.0, grad, a > 0.0);
    }
    return grad * derivative(code, a);
}
