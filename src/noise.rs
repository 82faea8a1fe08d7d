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
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut ctr = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(WEYL[0]), k[1].wrapping_add(WEYL[1])];
        }
        let p0 = u64::from(MULTIPLIERS[0]) * u64::from(ctr[0]);
        let p1 = u64::from(MULTIPLIERS[1]) * u64::from(ctr[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        ctr = [hi1 ^ ctr[1] ^ k[0], lo1, hi0 ^ ctr[3] ^ k[1], lo0];
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
pub fn uniform_open(word: u32) -> f32 {
    ((word >> 8) as f32 + 0.5) * (1.0 / 16_777_216.0)
}

/// Box-Muller: two independent N(0, 1) from two uniforms in (0, 1); the
/// angle is taken in (-pi, pi), where the GPU's cos and sin are most exact.
pub fn box_muller(u0: f32, u1: f32) -> [f32; 2] {
    let radius = (-2.0 * u0.ln()).sqrt();
    let angle = std::f32::consts::TAU * u1 - std::f32::consts::PI;
    [radius * angle.cos(), radius * angle.sin()]
}

/// The N(0, 1) draw of element `element` of `stream` at `step`: one Philox
/// block serves four consecutive elements (two Box-Muller pairs).
pub fn normal(key: [u32; 2], step: u64, stream: u32, element: u32) -> f32 {
    let words = philox4x32_10([element / 4, stream, step as u32, (step >> 32) as u32], key);
    let lane = (element % 4) as usize;
    let pair = lane / 2;
    box_muller(uniform_open(words[2 * pair]), uniform_open(words[2 * pair + 1]))[lane % 2]
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
