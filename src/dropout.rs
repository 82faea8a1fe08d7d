//! Dropout's masks (`dropout`): which units a training step drops, from a
//! counter-based hash keyed by (seed, step, layer, element), written once here
//! and once in shaders/dropout.wgsl with the same integer operations, so the
//! CPU and the GPU drop the same units and a resumed run draws the same masks
//! as an unbroken one (nothing but the step count is kept).
//!
//! The hash is Chris Wellons' "lowbias32" integer finalizer, chained over the
//! key's words; a unit is kept when the top 24 bits of its hash, as a fraction
//! of 2^24, are at least p. Kept units are scaled by 1 / (1 - p) (inverted
//! dropout), so evaluation, predict and export use the network unchanged.

/// lowbias32: a 32-bit integer hash with low bias (an avalanche finalizer).
pub fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Where one step's masks come from: the run's seed, the step (counted from
/// the start of the first run), and the drop probability of hidden layers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutKey {
    /// The run's seed.
    pub seed: u64,
    /// The training step, counted from 0 at the start of the first run
    /// (wrapping past 2^32 steps).
    pub step: u64,
    /// The probability of dropping a unit, in [0, 1).
    pub p: f32,
}

impl DropoutKey {
    /// Whether element `index` (row-major in the batch's (B, OUT_l) block) of
    /// layer `layer` is kept.
    pub fn keeps(&self, layer: u32, index: u32) -> bool {
        let h = mix(self.seed as u32 ^ mix((self.seed >> 32) as u32 ^ mix(self.step as u32 ^ mix(layer ^ mix(index)))));
        (h >> 8) as f32 * (1.0 / 16_777_216.0) >= self.p
    }

    /// 1 / (1 - p) as an f32, what a kept unit is multiplied by on every device.
    pub fn scale(&self) -> f32 {
        1.0 / (1.0 - self.p)
    }
}
