// DP-SGD on the layered path (src/dp.rs), after the backward pass has made
// every layer's dZ and before the weight gradients are formed from them:
// dp_row_norms:  norms[r] (+)= (|input_r|^2 + 1) |dz_r|^2, one dispatch per
//                layer, first layer first (the first writes, the others add);
//                the last layer's dispatch (finish) turns the sums into each
//                row's factor: min(1, C / (loss_rows sqrt(norm) + 1e-6)) *
//                row_scale for rows below the step's sample size, 0 past it
//                (the padding of a batch that has room for more rows).
// dp_scale_rows: dz[r, :] *= factor[r], a 0 factor writing 0.
// dp_add_noise:  a layer's weight and bias gradients += std * N(0, 1), the
//                normal of (key, step, tensor, element) as src/noise.rs draws it
//                (Philox4x32-10, Box-Muller); tensor 2l is W_l, 2l + 1 is b_l.
// sample_rows holds the step's sample size, control is the step's control
// block as u32 words ([3] the step); the trainer copies both in before the step.
//
// dp_row_norms   0 params RowNormParams, 1 sample_rows (1), 2 input (B, IN), 3 dz (B, OUT), 4 norms (B) read_write
// dp_scale_rows  0 params ScaleRowsParams, 1 factors (B), 2 dz (B, OUT) read_write
// dp_add_noise   0 params NoiseParams, 1 control, 2 weights' grads (IN * OUT) read_write, 3 bias grads (OUT) read_write

struct RowNormParams {
    rows: u32,
    fan_in: u32,
    fan_out: u32,
    accumulate: u32,
    finish: u32,
    max_norm: f32,
    loss_rows: f32,
    row_scale: f32,
}

struct ScaleRowsParams {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

struct NoiseParams {
    weights: u32,
    biases: u32,
    tensor: u32,
    deviation: f32,
    key_lo: u32,
    key_hi: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> norm_params: RowNormParams;
@group(0) @binding(1) var<storage, read> sample_rows: array<u32>;
@group(0) @binding(2) var<storage, read> norm_input: array<f32>;
@group(0) @binding(3) var<storage, read> norm_dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> norms: array<f32>;

// The sum of squares of `len` values from `start` of the layer's input
// (`of_dz` false) or its dz, as src/cpu.rs::sum_squares adds them: element i
// into partial sum i % 8, the eight added in order. (WGSL passes no storage
// array to a function, hence the flag.)
fn sum_squares(of_dz: bool, start: u32, len: u32) -> f32 {
    var lanes: array<f32, 8>;
    for (var i = 0u; i < len; i++) {
        var v: f32;
        if (of_dz) {
            v = norm_dz[start + i];
        } else {
            v = norm_input[start + i];
        }
        lanes[i % 8u] += v * v;
    }
    var total = 0.0;
    for (var l = 0u; l < 8u; l++) {
        total += lanes[l];
    }
    return total;
}

@compute @workgroup_size(64)
fn dp_row_norms(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let r = (group.y * groups.x + group.x) * 64u + local;
    if (r >= norm_params.rows) {
        return;
    }
    let a2 = sum_squares(false, r * norm_params.fan_in, norm_params.fan_in);
    let z2 = sum_squares(true, r * norm_params.fan_out, norm_params.fan_out);
    var norm = (a2 + 1.0) * z2;
    if (norm_params.accumulate != 0u) {
        norm += norms[r];
    }
    if (norm_params.finish != 0u) {
        let clip = min(1.0, norm_params.max_norm / (norm_params.loss_rows * sqrt(norm) + 1e-6));
        norm = select(0.0, clip * norm_params.row_scale, r < sample_rows[0]);
    }
    norms[r] = norm;
}

@group(0) @binding(0) var<uniform> scale_params: ScaleRowsParams;
@group(0) @binding(1) var<storage, read> factors: array<f32>;
@group(0) @binding(2) var<storage, read_write> scaled: array<f32>;

@compute @workgroup_size(256)
fn dp_scale_rows(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let len = scale_params.rows * scale_params.cols;
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < len; i += stride) {
        let factor = factors[i / scale_params.cols];
        scaled[i] = select(scaled[i] * factor, 0.0, factor == 0.0);
    }
}

@group(0) @binding(0) var<uniform> noise_params: NoiseParams;
@group(0) @binding(1) var<storage, read> noise_control: array<u32>;
@group(0) @binding(2) var<storage, read_write> weight_grads: array<f32>;
@group(0) @binding(3) var<storage, read_write> bias_grads: array<f32>;

// (hi, lo) of the 64-bit product a * b, from 16-bit halves (WGSL has no u64).
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = a_hi * b_hi + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var ctr = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k += vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
        }
        let p0 = mul_hi_lo(0xd2511f53u, ctr.x);
        let p1 = mul_hi_lo(0xcd9e8d57u, ctr.z);
        ctr = vec4<u32>(p1.x ^ ctr.y ^ k.x, p1.y, p0.x ^ ctr.w ^ k.y, p0.y);
    }
    return ctr;
}

fn uniform_open(word: u32) -> f32 {
    return (f32(i32(word >> 8u)) + 0.5) * (1.0 / 16777216.0);
}

// ln(u) for u in (0, 1], as src/noise.rs::ln_unit writes it out.
fn ln_unit(u: f32) -> f32 {
    let bits = bitcast<u32>(u);
    var exponent = f32(i32(bits >> 23u) - 127);
    var mantissa = bitcast<f32>((bits & 0x007fffffu) | 0x3f800000u);
    let high = mantissa > 1.4142135;
    mantissa = select(mantissa, mantissa * 0.5, high);
    exponent = select(exponent, exponent + 1.0, high);
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s2 = s * s;
    let series = s * (2.0 + s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0)))));
    return exponent * 0.6931472 + series;
}

// (cos, sin) of a word's turn, as src/noise.rs::cos_sin_turn writes it out.
fn cos_sin_turn(word: u32) -> vec2<f32> {
    let n = word >> 8u;
    let quarter = (n + (1u << 21u)) >> 22u;
    let t = (f32(i32(n) - i32(quarter << 22u)) + 0.5) * (1.5707964 / 4194304.0);
    let t2 = t * t;
    let sin_t = t * (1.0 - t2 * (1.0 / 6.0) * (1.0 - t2 * (1.0 / 20.0) * (1.0 - t2 * (1.0 / 42.0) * (1.0 - t2 * (1.0 / 72.0)))));
    let cos_t = 1.0 - t2 * 0.5 * (1.0 - t2 * (1.0 / 12.0) * (1.0 - t2 * (1.0 / 30.0) * (1.0 - t2 * (1.0 / 56.0) * (1.0 - t2 * (1.0 / 90.0)))));
    let q = quarter & 3u;
    let odd = (q & 1u) == 1u;
    let a = select(cos_t, sin_t, odd);
    let b = select(sin_t, cos_t, odd);
    let flip_a = ((q ^ (q >> 1u)) & 1u) << 31u;
    let flip_b = (q >> 1u) << 31u;
    return vec2<f32>(bitcast<f32>(bitcast<u32>(a) ^ flip_a), bitcast<f32>(bitcast<u32>(b) ^ flip_b));
}

// Two N(0, 1) from two words, as src/noise.rs::box_muller.
fn box_muller(radius_word: u32, turn_word: u32) -> vec2<f32> {
    return sqrt(-2.0 * ln_unit(uniform_open(radius_word))) * cos_sin_turn(turn_word);
}

// The N(0, 1) draw of `element` in stream `stream` at `step` (src/noise.rs::normal):
// lane element % 4 of the Box-Muller pairs of Philox block element / 4.
fn normal(step: u32, stream: u32, element: u32) -> f32 {
    let key = vec2<u32>(noise_params.key_lo, noise_params.key_hi);
    let words = philox4x32_10(vec4<u32>(element / 4u, stream, step, 0u), key);
    let lane = element % 4u;
    let pair = select(box_muller(words.x, words.y), box_muller(words.z, words.w), lane >= 2u);
    return select(pair.x, pair.y, (lane & 1u) == 1u);
}

@compute @workgroup_size(256)
fn dp_add_noise(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let step = noise_control[3];
    let len = noise_params.weights + noise_params.biases;
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < len; i += stride) {
        if (i < noise_params.weights) {
            weight_grads[i] += noise_params.deviation * normal(step, 1u + noise_params.tensor, i);
        } else {
            let j = i - noise_params.weights;
            bias_grads[j] += noise_params.deviation * normal(step, 2u + noise_params.tensor, j);
        }
    }
}
