// The activations by code, the one table of them on the GPU: the matmul
// epilogue (before matmul_common.wgsl), the element-wise backward kernel
// (before activation_backward.wgsl) and the fused path (before
// fused_mlp.wgsl) all take them from here. The host's codes come from
// src/gpu/uniforms.rs::activation_code; src/cpu.rs computes the same formulas.
//
// defines: SIGMOID, RELU, TANH, LEAKY_RELU, GELU (codes; 0 and any other is
//          the identity), activate(code, slope, z), derivative(code, slope, given),
//          dz_from_da(code, slope, grad, given)
// `slope` is leaky relu's negative slope in [0, 1), unused by the others.
// `given` is the layer's output a, except for GELU, whose derivative is no
// function of a: there it is the pre-activation z, which the host keeps.

const SIGMOID: u32 = 1u;
const RELU: u32 = 2u;
const TANH: u32 = 3u;
const LEAKY_RELU: u32 = 4u;
const GELU: u32 = 5u;

// GELU's tanh form: sqrt(2 / pi) and the cubic's factor.
const GELU_SCALE: f32 = 0.7978846;
const GELU_CUBIC: f32 = 0.044715;

// 1 - 2 / (exp(2u) + 1): tanh, exact ±1 where exp overflows.
fn tanh_by_exp(u: f32) -> f32 {
    return 1.0 - 2.0 / (exp(2.0 * u) + 1.0);
}

// tanh(sqrt(2 / pi) (z + 0.044715 z^3)), the inner term of GELU.
fn gelu_tanh(z: f32) -> f32 {
    return tanh_by_exp(GELU_SCALE * (z + GELU_CUBIC * z * z * z));
}

// a = act(z).
fn activate(code: u32, slope: f32, z: f32) -> f32 {
    switch code {
        // exp(-z) overflows to +inf for very negative z, and 1 / inf = 0 is the right limit.
        case SIGMOID: { return 1.0 / (1.0 + exp(-z)); }
        case RELU: { return max(z, 0.0); }
        case TANH: { return tanh_by_exp(z); }
        case LEAKY_RELU: { return select(slope * z, z, z > 0.0); }
        case GELU: { return 0.5 * z * (1.0 + gelu_tanh(z)); }
        default: { return z; }
    }
}

// d act / dz at `given` (relu'(0) = 0, leaky relu's is the slope there).
fn derivative(code: u32, slope: f32, given: f32) -> f32 {
    switch code {
        case SIGMOID: { return given * (1.0 - given); }
        case RELU: { return select(0.0, 1.0, given > 0.0); }
        case TANH: { return 1.0 - given * given; }
        case LEAKY_RELU: { return select(slope, 1.0, given > 0.0); }
        case GELU: {
            // 0.5 (1 + t) + 0.5 z (1 - t^2) sqrt(2 / pi) (1 + 3 * 0.044715 z^2). Where
            // t is ±1 the second term is 0; written as 0 so that a z whose
            // square overflows gives 0, not 0 * inf = NaN.
            let t = gelu_tanh(given);
            let flat = 1.0 - t * t;
            let z2 = given * given;
            let tail = select(0.5 * given * flat * GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * z2), 0.0, flat == 0.0);
            return 0.5 * (1.0 + t) + tail;
        }
        default: { return 1.0; }
    }
}

// dZ from dA: grad * act'(given), except that relu zeroes the gradient
// outright where a <= 0 (as the CPU does), so an infinite grad there gives 0,
// not NaN.
fn dz_from_da(code: u32, slope: f32, grad: f32, given: f32) -> f32 {
    if (code == RELU) {
        return select(0.0, grad, given > 0.0);
    }
    return grad * derivative(code, slope, given);
}
