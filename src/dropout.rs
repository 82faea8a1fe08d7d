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

/// Which hidden layers a run drops units of, and how often: one probability
/// for every hidden layer, or one per hidden layer (0 keeps that layer whole).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Dropout {
    /// No dropout.
    #[default]
    Off,
    /// Every hidden layer drops each unit with this probability, in [0, 1).
    Every(f32),
    /// Hidden layer l drops each unit with probability `rates[l]`, first
    /// hidden layer first: one rate per hidden layer, each in [0, 1).
    Layers(Vec<f32>),
}

impl Dropout {
    /// The drop probability of hidden layer `layer` (0 past the list).
    pub fn rate(&self, layer: usize) -> f32 {
        match self {
            Self::Off => 0.0,
            Self::Every(p) => *p,
            Self::Layers(rates) => rates.get(layer).copied().unwrap_or(0.0),
        }
    }

    /// Whether any layer drops units.
    pub fn is_on(&self) -> bool {
        match self {
            Self::Off => false,
            Self::Every(p) => *p > 0.0,
            Self::Layers(rates) => rates.iter().any(|&p| p > 0.0),
        }
    }

    /// Units per row whose dropped copies a training step keeps: the widths
    /// in `hidden_sizes` (first hidden layer first) of the layers that drop.
    pub fn dropped_width(&self, hidden_sizes: &[usize]) -> usize {
        hidden_sizes.iter().enumerate().filter(|&(l, _)| self.rate(l) > 0.0).map(|(_, &size)| size).sum()
    }

    /// Why these rates do not fit a network of `hidden_layers` hidden layers,
    /// if they do not: a rate outside [0, 1) or a list of another length.
    pub fn misfit(&self, hidden_layers: usize) -> Option<String> {
        let rates: &[f32] = match self {
            Self::Off => &[],
            Self::Every(p) => std::slice::from_ref(p),
            Self::Layers(rates) if rates.len() != hidden_layers => {
                let layers = if hidden_layers == 1 { "layer" } else { "layers" };
                return Some(format!(
                    "`dropout` has {} rates, one per hidden layer, but the network has {hidden_layers} hidden {layers}",
                    rates.len()
                ));
            }
            Self::Layers(rates) => rates,
        };
        let bad = rates.iter().find(|p| !(p.is_finite() && (0.0..1.0).contains(*p)))?;
        Some(format!("`dropout` must be in [0, 1), got {bad}"))
    }
}

/// As `--dropout` takes it: "0" when off, one rate, or the rates of the
/// hidden layers separated by commas.
impl std::fmt::Display for Dropout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => write!(f, "0"),
            Self::Every(p) => write!(f, "{p}"),
            Self::Layers(rates) => {
                let rates: Vec<String> = rates.iter().map(f32::to_string).collect();
                write!(f, "{}", rates.join(","))
            }
        }
    }
}

/// One training step's masks: the run's dropout, its seed and the step's
/// count from the start of the first run.
#[derive(Clone, Copy, Debug)]
pub struct StepMasks<'a> {
    /// The run's rates.
    pub dropout: &'a Dropout,
    /// The run's seed.
    pub seed: u64,
    /// The step, counted from 0 at the start of the first run.
    pub step: u64,
}

impl StepMasks<'_> {
    /// The key of hidden layer `layer`'s masks; None where it drops nothing.
    pub fn key(&self, layer: usize) -> Option<DropoutKey> {
        let p = self.dropout.rate(layer);
        (p > 0.0).then_some(DropoutKey { seed: self.seed, step: self.step, p })
    }
}
