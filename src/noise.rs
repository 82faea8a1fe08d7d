//! DP-SGD's randomness (see [`crate::dp`]), counter-based so that nothing but
//! the step count and the key is state: which rows a step samples, and the
//! Gaussian noise added to each gradient element.
//!
//! The generator is Philox4x32-10 (Salmon et al., "Parallel random numbers:
//! as easy as 1, 2, 3", SC 2011), written once here and once in
//! shaders/dp_sgd.wgsl with the same integer operations, so the CPU and the
//! GPU draw the same numbers. It is written by hand because no kept crate
//! gives a Philox whose every step can be mirrored in WGSL (the 32 x 32 -> 64
//! multiply has to be split into 16-bit halves there). Philox is not a
//! cryptographic generator: a DP guarantee assumes the key is secret, which
//! `--dp-secure` gives by drawing it from the operating system.
//!
//! Counters: word 0 is the draw's index, word 1 the stream ([`SAMPLING`] for
//! the rows, [`noise_stream`] for a tensor's noise), words 2 and 3 the step.

/// The Philox key, the run's seed split into two words.
pub fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

const MULTIPLIERS: [u32; 2] = [0xD251_1F53, 0xCD9E_8D57];
/// The key schedule's Weyl increments (the golden ratio and sqrt(3) - 1 in 32 bits).
const WEYL: [u32; 2] = [0x9E37_79B9, 0xBB67_AE85];

/// Philox4x32 with 10 rounds: four pseudo-random words of `counter` under `key`.
#[inline(always)]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    philox_lanes(counter.map(|word| [word]), key).map(|[word]| word)
}

/// [`philox4x32_10`] of N counters side by side, word w of counter i at
/// `[w][i]`: each round is one loop over the lanes, which runs as vector code.
#[inline(always)]
fn philox_lanes<const N: usize>(counters: [[u32; N]; 4], key: [u32; 2]) -> [[u32; N]; 4] {
    let mut ctr = counters;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(WEYL[0]), k[1].wrapping_add(WEYL[1])];
        }
        #[allow(clippy::needless_range_loop)] // one index over the four words' lanes reads best
        for lane in 0..N {
            let p0 = u64::from(MULTIPLIERS[0]) * u64::from(ctr[0][lane]);
            let p1 = u64::from(MULTIPLIERS[1]) * u64::from(ctr[2][lane]);
            let (c1, c3) = (ctr[1][lane], ctr[3][lane]);
            ctr[0][lane] = (p1 >> 32) as u32 ^ c1 ^ k[0];
            ctr[1][lane] = p1 as u32;
            ctr[2][lane] = (p0 >> 32) as u32 ^ c3 ^ k[1];
            ctr[3][lane] = p0 as u32;
        }
    }
    ctr
}

/// The stream of the rows' sampling.
pub const SAMPLING: u32 = 0;

/// The noise stream of tensor `tensor`: 2l for layer l's weights, 2l + 1 for its bias.
pub fn noise_stream(tensor: u32) -> u32 {
    1 + tensor
}

/// A word as a uniform f32 in (0, 1): its top 24 bits plus a half, over 2^24
/// (never 0, so its log is finite).
#[inline(always)]
pub fn uniform_open(word: u32) -> f32 {
    ((word >> 8) as i32 as f32 + 0.5) * (1.0 / 16_777_216.0)
}

/// ln(u) for u in (0, 1], from u's exponent and a series in
/// s = (m - 1) / (m + 1) for its mantissa m taken in [sqrt(1/2), sqrt(2))
/// (|s| < 0.172, the first term left out below 4e-10). Written out instead
/// of f32::ln so that the loops over a tensor's noise run as vector code, and
/// so that shaders/dp_sgd.wgsl computes it with the same operations.
#[inline(always)]
pub fn ln_unit(u: f32) -> f32 {
    let bits = u.to_bits();
    let exponent = ((bits >> 23) as i32 - 127) as f32;
    let mantissa = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000); // [1, 2)
                                                                       // Selects, not branches.
    let high = mantissa > std::f32::consts::SQRT_2;
    let mantissa = if high { mantissa * 0.5 } else { mantissa };
    let exponent = if high { exponent + 1.0 } else { exponent };
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s2 = s * s;
    let series = s * (2.0 + s2 * (2.0 / 3.0 + s2 * (2.0 / 5.0 + s2 * (2.0 / 7.0 + s2 * (2.0 / 9.0)))));
    exponent * std::f32::consts::LN_2 + series
}

/// (cos, sin) of the turn a word's top 24 bits n give, 2 pi (n + 1/2) / 2^24:
/// the turn is cut into quarters, n + 1/2 = 2^22 q + f with |f| <= 2^21 (both
/// from integers, exactly), the Taylor series taken at t = (pi / 2) f / 2^22
/// (|t| <= pi / 4, the first terms left out below 3e-8) and turned by q
/// quarters with sign flips. Written out for the same reasons as [`ln_unit`].
#[inline(always)]
pub fn cos_sin_turn(word: u32) -> [f32; 2] {
    let n = word >> 8;
    let quarter = (n + (1 << 21)) >> 22; // 0..=4
    let t = ((n as i32 - (quarter << 22) as i32) as f32 + 0.5) * (std::f32::consts::FRAC_PI_2 / 4_194_304.0);
    let t2 = t * t;
    let sin = t
        * (1.0 - t2 * (1.0 / 6.0) * (1.0 - t2 * (1.0 / 20.0) * (1.0 - t2 * (1.0 / 42.0) * (1.0 - t2 * (1.0 / 72.0)))));
    let cos = 1.0
        - t2 * 0.5
            * (1.0
                - t2 * (1.0 / 12.0)
                    * (1.0 - t2 * (1.0 / 30.0) * (1.0 - t2 * (1.0 / 56.0) * (1.0 - t2 * (1.0 / 90.0)))));
    // q quarters on: (cos, sin), (-sin, cos), (-cos, -sin), (sin, -cos).
    let q = quarter & 3;
    let (a, b) = if q & 1 == 1 { (sin, cos) } else { (cos, sin) };
    let flip_a = ((q ^ (q >> 1)) & 1) << 31; // q 1 and 2
    let flip_b = (q >> 1) << 31; // q 2 and 3
    [f32::from_bits(a.to_bits() ^ flip_a), f32::from_bits(b.to_bits() ^ flip_b)]
}

/// Box-Muller: two independent N(0, 1) from two words: sqrt(-2 ln u) with u
/// [`uniform_open`] of the first, times (cos, sin) of the second's turn.
#[inline(always)]
pub fn box_muller(radius_word: u32, turn_word: u32) -> [f32; 2] {
    let radius = (-2.0 * ln_unit(uniform_open(radius_word))).sqrt();
    let [cos, sin] = cos_sin_turn(turn_word);
    [radius * cos, radius * sin]
}

/// The N(0, 1) draws of the N Philox blocks from `first_block` of `stream`
/// at `step`, z[j][i] being element 4 (first_block + i) + j: a block's four
/// words make two Box-Muller pairs.
#[inline(always)]
fn normal_lanes<const N: usize>(key: [u32; 2], step: u64, stream: u32, first_block: u32) -> [[f32; N]; 4] {
    let blocks = std::array::from_fn(|i| first_block.wrapping_add(i as u32));
    let words = philox_lanes([blocks, [stream; N], [step as u32; N], [(step >> 32) as u32; N]], key);
    let mut z = [[0.0f32; N]; 4];
    for pair in 0..2 {
        for lane in 0..N {
            let [a, b] = box_muller(words[2 * pair][lane], words[2 * pair + 1][lane]);
            z[2 * pair][lane] = a;
            z[2 * pair + 1][lane] = b;
        }
    }
    z
}

/// The N(0, 1) draw of element `element` of `stream` at `step`: lane
/// element % 4 of Philox block element / 4.
pub fn normal(key: [u32; 2], step: u64, stream: u32, element: u32) -> f32 {
    normal_lanes::<1>(key, step, stream, element / 4)[(element % 4) as usize][0]
}

/// values\[i\] += scale * [`normal`]\(key, step, stream, i) for every i. One
/// thread: split across threads it was faster on an idle machine and slower
/// on a busy one (0.45 against 0.53 ms, then 0.88, for the 203 k weights of
/// 784-256-10 on 2 cores with AVX-512), and DP-SGD's step should not
/// depend on what else the machine runs.
pub fn add_normals(values: &mut [f32], key: [u32; 2], step: u64, stream: u32, scale: f32) {
    add_normals_from(values, 0, key, step, stream, scale)
}

/// values[i] += scale * the normal of element 4 `first_block` + i, a block
/// of four at a time. Compiled for AVX-512 and AVX2 as well, taken
/// where the CPU has them: the same operations (Rust never fuses a multiply
/// and an add), so the numbers are the same bits on every machine, only
/// more of them at once.
fn add_normals_from(values: &mut [f32], first_block: u32, key: [u32; 2], step: u64, stream: u32, scale: f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { add_normals_avx512(values, first_block, key, step, stream, scale) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { add_normals_avx2(values, first_block, key, step, stream, scale) };
        }
    }
    add_normals_portable(values, first_block, key, step, stream, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn add_normals_avx512(values: &mut [f32], first_block: u32, key: [u32; 2], step: u64, stream: u32, scale: f32) {
    add_normals_portable(values, first_block, key, step, stream, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_normals_avx2(values: &mut [f32], first_block: u32, key: [u32; 2], step: u64, stream: u32, scale: f32) {
    add_normals_portable(values, first_block, key, step, stream, scale)
}

/// Philox blocks [`add_normals`] draws side by side.
const LANES: usize = 16;

#[inline(always)]
fn add_normals_portable(values: &mut [f32], first_block: u32, key: [u32; 2], step: u64, stream: u32, scale: f32) {
    let mut groups = values.chunks_exact_mut(4 * LANES);
    let mut block = first_block;
    for group in &mut groups {
        let z = normal_lanes::<LANES>(key, step, stream, block);
        for (lane, chunk) in group.chunks_exact_mut(4).enumerate() {
            for (j, v) in chunk.iter_mut().enumerate() {
                *v += scale * z[j][lane];
            }
        }
        block = block.wrapping_add(LANES as u32);
    }
    for chunk in groups.into_remainder().chunks_mut(4) {
        let z = normal_lanes::<1>(key, step, stream, block);
        for (j, v) in chunk.iter_mut().enumerate() {
            *v += scale * z[j][0];
        }
        block = block.wrapping_add(1);
    }
}

/// Poisson sampling of one step: every one of `rows` rows taken independently
/// with probability `q`, in increasing order. The gaps between taken rows are
/// geometric, so a step costs one draw per taken row, not one per row: gap =
/// floor(ln U / ln(1 - q)) with U uniform in (0, 1] from 53 bits of a block's
/// two words (each block gives two gaps).
pub fn poisson_rows(key: [u32; 2], step: u64, rows: usize, q: f64) -> Vec<u32> {
    if q >= 1.0 {
        return (0..rows as u32).collect();
    }
    let log_keep = (-q).ln_1p(); // ln(1 - q) < 0
    let mut taken = Vec::new();
    let mut next = 0u64; // the first row the next gap starts from
    let mut block = 0u32;
    loop {
        let words = philox4x32_10([block, SAMPLING, step as u32, (step >> 32) as u32], key);
        block = block.wrapping_add(1);
        for pair in words.chunks_exact(2) {
            let bits = (u64::from(pair[0]) << 21) ^ u64::from(pair[1] >> 11); // 53 bits
            let u = (bits as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
            let gap = (u.ln() / log_keep).floor();
            let remaining = (rows as u64).saturating_sub(next) as f64;
            if gap.is_nan() || gap >= remaining {
                return taken;
            }
            let row = next + gap as u64;
            taken.push(row as u32);
            next = row + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_gives_random123s_known_answers() {
        // Random123's kat_vectors: counter, key, expected.
        let cases = [
            ([0; 4], [0; 2], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
            ([u32::MAX; 4], [u32::MAX; 2], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ];
        for (counter, key, expected) in cases {
            assert_eq!(philox4x32_10(counter, key), expected);
        }
    }

    #[test]
    fn the_written_out_math_is_within_rounding_of_std() {
        for n in (0..1u32 << 24).step_by(997).chain([0, (1 << 24) - 1, 1 << 21, (1 << 22) - 1, 1 << 22]) {
            let u = uniform_open(n << 8);
            let ln = ln_unit(u);
            assert!((ln - u.ln()).abs() <= 2e-7 * u.ln().abs().max(1.0), "ln {u}: {ln} against {}", u.ln());
            let [cos, sin] = cos_sin_turn(n << 8);
            let angle = std::f64::consts::TAU * (f64::from(n) + 0.5) / f64::from(1u32 << 24);
            assert!((f64::from(cos) - angle.cos()).abs() < 5e-7, "cos of the turn of {n}");
            assert!((f64::from(sin) - angle.sin()).abs() < 5e-7, "sin of the turn of {n}");
        }
    }

    #[test]
    fn a_tensors_noise_is_each_elements_own_draw() {
        // 4 * LANES * 2 + 7 elements: whole groups of lanes, and a remainder of blocks.
        let mut values = vec![0.0f32; 4 * LANES * 2 + 7];
        add_normals(&mut values, key(3), 11, 5, 2.0);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(*v, 2.0 * normal(key(3), 11, 5, i as u32), "element {i}");
        }
    }

    #[test]
    fn poisson_rows_are_increasing_and_in_range() {
        for step in 0..20 {
            let rows = poisson_rows(key(7), step, 1000, 0.05);
            assert!(rows.windows(2).all(|w| w[0] < w[1]));
            assert!(rows.iter().all(|&r| r < 1000));
        }
        assert!(poisson_rows(key(7), 0, 10, 1e-12).is_empty());
        assert_eq!(poisson_rows(key(7), 0, 5, 1.0), vec![0, 1, 2, 3, 4]);
    }
}
