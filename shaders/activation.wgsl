// The activations by code, shared by the modules that apply one inside a
// larger kernel: the matmul epilogue (before matmul_common.wgsl) and the fused
// path (before fused_mlp.wgsl). The host's codes come from
// src/gpu/params.rs::activation_code; the formulas are those of sigmoid.wgsl,
// relu.wgsl and tanh.wgsl.

// Code 0, and any other, is the identity.
const SIGMOID: u32 = 1u;
const RELU: u32 = 2u;
const TANH: u32 = 3u;

// a = act(z).
fn activate(code: u32, z: f32) -> f32 {
    switch code {
        case SIGMOID: { return 1.0 / (1.0 + exp(-z)); }
        case RELU: { return max(z, 0.0); }
        // 1 - 2 / (exp(2z) + 1): exact ±1 where exp overflows, as tanh.wgsl.
        case TANH: { return 1.0 - 2.0 / (exp(2.0 * z) + 1.0); }
        default: { return z; }
    }
}
