//! Learning-rate schedules (`--lr-schedule`): the rate of every step,
//! computed on the host in f64 and rounded to f32 once, so every device
//! trains with the same f32 rates. The GPU trainers upload the rates of the
//! steps they record ahead into a device buffer; the CPU reads them as it goes.

/// The shape of the schedule over the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrShape {
    /// The same rate every step.
    Constant,
    /// lr * gamma^floor(epoch / every): cut by `gamma` every `every` epochs.
    Step {
        /// Epochs between cuts (`lr_step_epochs`), at least 1.
        every: usize,
        /// The factor of each cut (`lr_gamma`), in (0, 1].
        gamma: f32,
    },
    /// lr * gamma^epoch.
    Exponential {
        /// The factor per epoch (`lr_gamma`), in (0, 1].
        gamma: f32,
    },
    /// min + (lr - min) (1 + cos(pi t / T)) / 2 per step: t steps done, T the
    /// steps of `epochs` epochs (the run's planned length); `min` after that.
    Cosine {
        /// The epochs the curve spans (the run's `epochs`).
        epochs: usize,
        /// The rate it ends at (`lr_min`), below lr.
        min: f32,
    },
    /// lr * scale, where the fit loop multiplies the scale by `factor` after
    /// `patience` epochs without the monitored metric improving, never below
    /// `min` (see [`Plateau`]).
    Plateau {
        /// Epochs without improvement before a cut (`lr_patience`), at least 1.
        patience: usize,
        /// The factor of a cut (`lr_factor`), in (0, 1).
        factor: f32,
        /// The least rate (`lr_min`).
        min: f32,
    },
}

/// A schedule: its shape and a linear warm-up from 0 over the first epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    /// How the rate moves after (and under) the warm-up.
    pub shape: LrShape,
    /// Epochs of linear warm-up (`warmup_epochs`): step k of the W warm-up
    /// steps trains at (k + 1) / W of the shape's rate; 0 for none.
    pub warmup_epochs: usize,
}

impl Default for LrSchedule {
    /// A constant rate, no warm-up.
    fn default() -> Self {
        Self { shape: LrShape::Constant, warmup_epochs: 0 }
    }
}

impl LrSchedule {
    /// Whether every step trains at the base rate (no table is needed).
    pub fn is_constant(&self) -> bool {
        self.shape == LrShape::Constant && self.warmup_epochs == 0
    }

    /// The rate of step `step` (0-based, counted from the start of the first
    /// run) of `steps_per_epoch` per epoch, from the base rate `lr` and the
    /// plateau scale `scale` (1 for other shapes).
    pub fn rate(&self, lr: f32, step: u64, steps_per_epoch: usize, scale: f32) -> f32 {
        let per_epoch = steps_per_epoch.max(1) as u64;
        let epoch = (step / per_epoch) as f64;
        let lr = f64::from(lr);
        let shaped = match self.shape {
            LrShape::Constant => lr,
            LrShape::Step { every, gamma } => lr * f64::from(gamma).powi((epoch as usize / every.max(1)) as i32),
            LrShape::Exponential { gamma } => lr * f64::from(gamma).powf(epoch),
            LrShape::Cosine { epochs, min } => {
                let total = (epochs as u64 * per_epoch).max(1) as f64;
                let t = (step as f64).min(total);
                let min = f64::from(min);
                min + (lr - min) * (1.0 + (std::f64::consts::PI * t / total).cos()) / 2.0
            }
            LrShape::Plateau { min, .. } => (lr * f64::from(scale)).max(f64::from(min)),
        };
        let warmup = self.warmup_epochs as u64 * per_epoch;
        let warmed = if step < warmup { shaped * (step + 1) as f64 / warmup as f64 } else { shaped };
        warmed as f32
    }

    /// The rates of `steps` steps from `first` on.
    pub fn rates(&self, lr: f32, first: u64, steps: usize, steps_per_epoch: usize, scale: f32) -> Vec<f32> {
        (0..steps as u64).map(|k| self.rate(lr, first + k, steps_per_epoch, scale)).collect()
    }
}

/// Where a plateau schedule stands: the best value of the monitored metric,
/// the epochs since, and the scale of the base rate. Kept in checkpoints
/// (`lr_scale`, `lr_plateau_best`, `lr_plateau_wait`), so a resume cuts the
/// rate where an unbroken run does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Plateau {
    /// The best value seen (NaN before the first read-back).
    pub best: f32,
    /// Epochs since it.
    pub wait: usize,
    /// The base rate's multiplier: 1, then `factor`, `factor`^2, ...
    pub scale: f32,
}

impl Default for Plateau {
    fn default() -> Self {
        Self { best: f32::NAN, wait: 0, scale: 1.0 }
    }
}
