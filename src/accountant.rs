//! Privacy accounting for DP-SGD: the Rényi-DP (RDP) accountant of the
//! Poisson-subsampled Gaussian mechanism, computed as Google's dp_accounting
//! computes it (`dp_accounting.rdp.RdpAccountant` with its default orders,
//! rdp_privacy_accountant.py; the same code in dp-accounting 0.6.0 and on its
//! main branch), in f64, and checked against it (tests/accountant.rs,
//! scripts/check-dp-accounting).
//!
//! Each step of DP-SGD samples every row with probability `q` (Poisson
//! sampling) and adds Gaussian noise of standard deviation `sigma` times the
//! clipping norm. A step's RDP at order a is ln(A_a) / (a - 1) (Mironov, Talwar
//! and Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian
//! Mechanism"); steps compose by adding RDP; the (epsilon, delta) guarantee is
//! the least over the orders of the conversion of Balle et al. 2020
//! ("Hypothesis Testing Interpretations and Renyi Differential Privacy").
//!
//! ```
//! use wgpu_mlp::accountant::RdpAccountant;
//!
//! // 20 epochs of batches of 256 expected rows out of 60000, noise multiplier 0.8.
//! let mut accountant = RdpAccountant::new();
//! accountant.record(256.0 / 60000.0, 0.8, 4688);
//! let spent = accountant.epsilon(1e-5);
//! assert!((spent.epsilon - 3.03).abs() < 0.01, "{spent:?}");
//! assert_eq!(spent.order, 5.8);
//!
//! // The text form that checkpoints keep reads back to the same numbers.
//! let text = accountant.to_string();
//! assert_eq!(text, "0.004266666666666667 0.8 4688");
//! assert_eq!(text.parse::<RdpAccountant>(), Ok(accountant));
//! ```

use std::f64::consts::{PI, SQRT_2};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The RDP orders, as dp_accounting's `DEFAULT_RDP_ORDERS`
/// (rdp_privacy_accountant.py): 1.1 to 10.9 by 0.1 (written there as
/// `1 + x / 10.0`, which gives these literals' f64 bits), 11 to 63, then 128,
/// 256, 512 and 1024. Opacus's `RDPAccountant.DEFAULT_ALPHAS` is a different
/// list (1.1 to 10.9, then 12 to 63), so its epsilons can differ slightly.
pub const DEFAULT_ORDERS: [f64; 156] = [
    1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0, //
    3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0, 4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0, //
    5.1, 5.2, 5.3, 5.4, 5.5, 5.6, 5.7, 5.8, 5.9, 6.0, 6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7, 6.8, 6.9, 7.0, //
    7.1, 7.2, 7.3, 7.4, 7.5, 7.6, 7.7, 7.8, 7.9, 8.0, 8.1, 8.2, 8.3, 8.4, 8.5, 8.6, 8.7, 8.8, 8.9, 9.0, //
    9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8, 9.9, 10.0, 10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 10.9, //
    11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0, 22.0, 23.0, 24.0, 25.0, 26.0, 27.0, //
    28.0, 29.0, 30.0, 31.0, 32.0, 33.0, 34.0, 35.0, 36.0, 37.0, 38.0, 39.0, 40.0, 41.0, 42.0, 43.0, 44.0, //
    45.0, 46.0, 47.0, 48.0, 49.0, 50.0, 51.0, 52.0, 53.0, 54.0, 55.0, 56.0, 57.0, 58.0, 59.0, 60.0, 61.0, //
    62.0, 63.0, 128.0, 256.0, 512.0, 1024.0,
];

/// One run of steps of the Poisson-subsampled Gaussian mechanism.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoissonGaussian {
    /// The probability that a step samples each row (expected batch / rows), in [0, 1].
    pub q: f64,
    /// The noise multiplier: the noise's standard deviation over the clipping norm.
    pub sigma: f64,
    /// How many steps.
    pub steps: u64,
}

/// The steps taken so far, as runs of equal (q, sigma), oldest first.
///
/// An entry with q outside [0, 1] or a negative or NaN sigma has no known
/// guarantee: every epsilon is then infinite. Text parsed with
/// [`FromStr`] never holds one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RdpAccountant {
    entries: Vec<PoissonGaussian>,
}

/// An (epsilon, delta) guarantee and the RDP order that gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrivacySpent {
    /// The least epsilon over the orders, at least 0 (infinite when no order
    /// gives a bound).
    pub epsilon: f64,
    /// The order of that epsilon (the first of [`DEFAULT_ORDERS`] when no step
    /// was taken or no order gives a bound).
    pub order: f64,
}

impl RdpAccountant {
    /// An accountant with no steps.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `steps` steps of sampling rate `q` and noise multiplier `sigma`;
    /// they extend the last entry when its q and sigma are equal. No steps
    /// add nothing.
    pub fn record(&mut self, q: f64, sigma: f64, steps: u64) {
        if steps == 0 {
            return;
        }
        match self.entries.last_mut() {
            Some(last) if last.q == q && last.sigma == sigma => last.steps = last.steps.saturating_add(steps),
            _ => self.entries.push(PoissonGaussian { q, sigma, steps }),
        }
    }

    /// The runs of steps, oldest first.
    pub fn entries(&self) -> &[PoissonGaussian] {
        &self.entries
    }

    /// All the steps recorded.
    pub fn steps(&self) -> u64 {
        self.entries.iter().fold(0, |total, entry| total.saturating_add(entry.steps))
    }

    /// The (epsilon, `delta`) guarantee of every step recorded, as
    /// dp_accounting's `RdpAccountant.get_epsilon_and_optimal_order` gives it:
    /// epsilon 0 for no steps; infinite for a `delta` that is not above 0.
    pub fn epsilon(&self, delta: f64) -> PrivacySpent {
        if self.steps() == 0 {
            return PrivacySpent { epsilon: 0.0, order: DEFAULT_ORDERS[0] };
        }
        if delta.is_nan() || delta <= 0.0 {
            return PrivacySpent { epsilon: f64::INFINITY, order: DEFAULT_ORDERS[0] };
        }
        let rdp = DEFAULT_ORDERS.map(|order| {
            self.entries.iter().map(|entry| entry.steps as f64 * step_rdp(entry.q, entry.sigma, order)).sum::<f64>()
        });
        epsilon_from_rdp(&rdp, delta)
    }
}

impl fmt::Display for RdpAccountant {
    /// `q sigma steps` per entry, joined by `; `, each number in Rust's
    /// shortest form that reads back to the same f64; empty for no steps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {} {}", entry.q, entry.sigma, entry.steps)?;
        }
        Ok(())
    }
}

impl FromStr for RdpAccountant {
    type Err = String;

    /// Reads what [`Display`](fmt::Display) writes: `q sigma steps` entries
    /// separated by `;`, q in [0, 1], sigma a finite number >= 0, steps at
    /// least 1. Blank text is no steps.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let mut accountant = RdpAccountant::new();
        if text.trim().is_empty() {
            return Ok(accountant);
        }
        for (i, part) in text.split(';').enumerate() {
            let fields: Vec<&str> = part.split_whitespace().collect();
            let [q, sigma, steps] = fields[..] else {
                return Err(format!("entry {} is '{}', not `q sigma steps`", i + 1, part.trim()));
            };
            let q = match q.parse::<f64>() {
                Ok(q) if (0.0..=1.0).contains(&q) => q,
                _ => return Err(format!("entry {}: the sampling rate '{q}' is not a number in [0, 1]", i + 1)),
            };
            let sigma = match sigma.parse::<f64>() {
                Ok(s) if s.is_finite() && s >= 0.0 => s,
                _ => {
                    return Err(format!("entry {}: the noise multiplier '{sigma}' is not a finite number >= 0", i + 1))
                }
            };
            let steps = match steps.parse::<u64>() {
                Ok(k) if k >= 1 => k,
                _ => return Err(format!("entry {}: the steps '{steps}' are not a whole number of at least 1", i + 1)),
            };
            accountant.record(q, sigma, steps);
        }
        Ok(accountant)
    }
}

/// The noise multipliers the search tries, at most: more noise than this
/// leaves nothing of the gradient worth training on.
const MAX_NOISE_MULTIPLIER: f64 = 1e3;
/// The search stops at a noise multiplier whose epsilon is at most the target
/// and within this of it, as Opacus's `get_noise_multiplier`
/// (`epsilon_tolerance` 0.01).
pub const EPSILON_TOLERANCE: f64 = 0.01;
/// The search's first upper bound, doubled until its epsilon meets the target.
const FIRST_NOISE_MULTIPLIER: f64 = 10.0;
/// Halvings of the bracket at most; epsilon is continuous in sigma, so the
/// tolerance is met long before (a guard against a loop without end).
const MAX_HALVINGS: usize = 100;

/// The noise multiplier for which `steps` steps of sampling rate `q` spend at
/// most (`target_epsilon`, `delta`), found as Opacus's `get_noise_multiplier`
/// finds it: double an upper bound from 10 until its epsilon is at most the
/// target, then halve the bracket until the upper end's epsilon is within
/// [`EPSILON_TOLERANCE`] of the target; the upper end is the answer.
///
/// [`Error::InvalidInput`] for a target that is not a positive number, a
/// delta outside (0, 1), q outside (0, 1], no steps, or a target that no
/// noise multiplier up to 1000 reaches.
pub fn noise_multiplier_for_epsilon(target_epsilon: f64, delta: f64, q: f64, steps: u64) -> Result<f64> {
    if !(target_epsilon.is_finite() && target_epsilon > 0.0) {
        return Err(Error::InvalidInput(format!("`target_epsilon` must be a positive number, not {target_epsilon}")));
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(Error::InvalidInput(format!("`delta` must be in (0, 1), not {delta}")));
    }
    if !(q > 0.0 && q <= 1.0) {
        return Err(Error::InvalidInput(format!("the sampling rate q must be in (0, 1], not {q}")));
    }
    if steps == 0 {
        return Err(Error::InvalidInput("`steps` must be at least 1: no steps spend no privacy".into()));
    }
    let epsilon_at = |sigma: f64| {
        let mut accountant = RdpAccountant::new();
        accountant.record(q, sigma, steps);
        accountant.epsilon(delta).epsilon
    };
    let (mut low, mut high) = (0.0, FIRST_NOISE_MULTIPLIER);
    let mut epsilon_high = epsilon_at(high);
    while epsilon_high > target_epsilon {
        if high >= MAX_NOISE_MULTIPLIER {
            return Err(Error::InvalidInput(format!(
                "no noise multiplier up to {MAX_NOISE_MULTIPLIER} reaches `target_epsilon` {target_epsilon} at \
                 delta {delta:e} in {steps} steps of q = {q}: {MAX_NOISE_MULTIPLIER} gives epsilon {epsilon_high}"
            )));
        }
        low = high;
        high = (2.0 * high).min(MAX_NOISE_MULTIPLIER);
        epsilon_high = epsilon_at(high);
    }
    for _ in 0..MAX_HALVINGS {
        if target_epsilon - epsilon_high <= EPSILON_TOLERANCE {
            break;
        }
        let middle = (low + high) / 2.0;
        let epsilon = epsilon_at(middle);
        if epsilon < target_epsilon {
            (high, epsilon_high) = (middle, epsilon);
        } else {
            low = middle;
        }
    }
    Ok(high)
}

/// The largest power of ten strictly below 1 / `rows` (60000 rows: 1e-5;
/// 100 rows: 1e-3), the usual delta of a data set that size; 0 rows count as 1.
pub fn default_delta(rows: usize) -> f64 {
    // 10^-k < 1/rows exactly when 10^k > rows: k is the digit count of rows.
    let digits = rows.max(1).ilog10() + 1;
    // 10^k is exact in f64 for k <= 22 (usize has at most 20 digits), and the
    // division rounds once: the f64 nearest 10^-k, as the literal `1e-k` is.
    1.0 / 10f64.powi(digits as i32)
}

/// The RDP at `order` of one step of sampling rate `q` and noise multiplier
/// `sigma`: dp_accounting's `_compute_rdp_poisson_subsampled_gaussian`.
fn step_rdp(q: f64, sigma: f64, order: f64) -> f64 {
    if !(0.0..=1.0).contains(&q) || sigma.is_nan() || sigma < 0.0 {
        return f64::INFINITY;
    }
    if q == 0.0 {
        return 0.0;
    }
    if sigma == 0.0 {
        return f64::INFINITY;
    }
    if sigma == f64::INFINITY {
        return 0.0;
    }
    if q == 1.0 {
        return order / (2.0 * sigma * sigma);
    }
    let log_a =
        if order.fract() == 0.0 { log_a_integer(q, sigma, order as u64) } else { log_a_fraction(q, sigma, order) };
    log_a / (order - 1.0)
}

/// ln(A_a) for an integer order a and 0 < q < 1: the binomial expansion
/// A_a = sum over i of C(a, i) q^i (1 - q)^(a - i) exp((i^2 - i) / (2 sigma^2)),
/// summed in log space (`_compute_log_a_int`).
fn log_a_integer(q: f64, sigma: f64, order: u64) -> f64 {
    let (log_q, log_1mq) = (q.ln(), (-q).ln_1p());
    let a = order as f64;
    let mut log_a = f64::NEG_INFINITY;
    for i in 0..=order {
        let i = i as f64;
        let log_term = log_binomial(a, i) + i * log_q + (a - i) * log_1mq + (i * i - i) / (2.0 * sigma * sigma);
        log_a = log_add(log_a, log_term);
    }
    log_a
}

/// The terms of [`log_a_fraction`]'s series at most, as dp_accounting's
/// `_MAX_STEPS_LOG_A_FRAC`; a series that has not converged by then leaves its
/// order out (an infinite RDP), as there.
const MAX_FRACTION_TERMS: usize = 1000;

/// ln(A_a) for a fractional order a and 0 < q < 1: the two series over the
/// integrals below and above z0 (Mironov et al. 2019, section 3.3;
/// `_compute_log_a_frac`), stopped where both terms fall and are e^-30 of the
/// total.
fn log_a_fraction(q: f64, sigma: f64, order: f64) -> f64 {
    let (log_q, log_1mq) = (q.ln(), (-q).ln_1p());
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let (mut last_s0, mut last_s1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for i in 0..MAX_FRACTION_TERMS {
        let i = i as f64;
        let j = order - i;
        let log_coefficient = log_binomial(order, i);
        let log_t0 = log_coefficient + i * log_q + j * log_1mq;
        let log_t1 = log_coefficient + j * log_q + i * log_1mq;
        let log_e0 = 0.5f64.ln() + log_erfc((i - z0) / (SQRT_2 * sigma));
        let log_e1 = 0.5f64.ln() + log_erfc((z0 - j) / (SQRT_2 * sigma));
        let log_s0 = log_t0 + (i * i - i) / (2.0 * sigma * sigma) + log_e0;
        let log_s1 = log_t1 + (j * j - j) / (2.0 * sigma * sigma) + log_e1;
        log_a0 = log_add(log_a0, log_s0);
        log_a1 = log_add(log_a1, log_s1);
        let total = log_add(log_a0, log_a1);
        if log_s0 < last_s0 && log_s1 < last_s1 && log_s0.max(log_s1) < total - 30.0 {
            return total;
        }
        (last_s0, last_s1) = (log_s0, log_s1);
    }
    f64::INFINITY
}

/// ln |C(n, k)| through ln |Gamma| (scipy's `gammaln`, which is what
/// dp_accounting uses; for a fractional n and k > n the coefficient's sign is
/// dropped there too).
fn log_binomial(n: f64, k: f64) -> f64 {
    libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0)
}

/// ln(e^x + e^y) without overflow.
fn log_add(x: f64, y: f64) -> f64 {
    let (low, high) = if x < y { (x, y) } else { (y, x) };
    if low == f64::NEG_INFINITY {
        return high;
    }
    (low - high).exp().ln_1p() + high
}

/// From here on [`log_erfc`] uses the asymptotic series: erfc(26) is about
/// 5.6e-296, still a normal f64 that `erfc` gives to an ulp, while erfc(27)
/// is subnormal (precision lost) and erfc(28) rounds to 0.
const ERFC_ASYMPTOTIC_FROM: f64 = 26.0;

/// ln(erfc(x)), accurate where erfc(x) itself underflows. The fractional
/// orders' series need it at arguments up to z0 / (sqrt(2) sigma), hundreds
/// for a small q, where erfc is far below the smallest f64 (dp_accounting
/// uses scipy's `log_ndtr` for the same reason). Below 26 the log of libm's
/// `erfc` (relative error about an ulp) is exact enough; from 26 on,
/// erfc(x) = e^(-x^2) / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(2x^2)^2 - 15/(2x^2)^3 + ...),
/// whose ninth term there is below 1e-18 of the sum.
fn log_erfc(x: f64) -> f64 {
    if x < ERFC_ASYMPTOTIC_FROM {
        return libm::erfc(x).ln();
    }
    let inverse = 1.0 / (2.0 * x * x);
    let (mut term, mut series) = (1.0, 1.0);
    for k in 1..=8 {
        term *= -f64::from(2 * k - 1) * inverse;
        series += term;
    }
    -x * x - x.ln() - 0.5 * PI.ln() + series.ln()
}

/// The least epsilon over [`DEFAULT_ORDERS`] for the composed `rdp` at each
/// and a `delta` above 0: dp_accounting's `compute_epsilon`, with the bound
/// of Balle et al. 2020 (Proposition 12 of arXiv:2004.00010),
/// epsilon = rdp + ln(1 - 1/a) - ln(delta a) / (a - 1), for orders above 1.01;
/// epsilon 0 where the KL bound delta <= sqrt(1 - e^-rdp) already holds.
fn epsilon_from_rdp(rdp: &[f64; DEFAULT_ORDERS.len()], delta: f64) -> PrivacySpent {
    let mut best = PrivacySpent { epsilon: f64::INFINITY, order: DEFAULT_ORDERS[0] };
    for (&a, &r) in DEFAULT_ORDERS.iter().zip(rdp) {
        let epsilon = if r.is_nan() {
            f64::INFINITY
        } else if r < 0.0 {
            // Only numerical trouble gives a negative divergence; dp_accounting takes 0.
            0.0
        } else if delta * delta + (-r).exp_m1() > 0.0 {
            0.0
        } else if a > 1.01 {
            r + (-1.0 / a).ln_1p() - (delta * a).ln() / (a - 1.0)
        } else {
            f64::INFINITY
        };
        // The first order of the least, as numpy's argmin.
        if epsilon < best.epsilon {
            best = PrivacySpent { epsilon, order: a };
        }
    }
    best.epsilon = best.epsilon.max(0.0);
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_orders_are_dp_accountings() {
        let mut orders: Vec<f64> = (1..100).map(|x| 1.0 + f64::from(x) / 10.0).collect();
        orders.extend((11..64).map(f64::from));
        orders.extend([128.0, 256.0, 512.0, 1024.0]);
        assert_eq!(DEFAULT_ORDERS.to_vec(), orders);
    }

    #[test]
    fn no_steps_spend_nothing() {
        let mut accountant = RdpAccountant::new();
        assert_eq!(accountant.epsilon(1e-5).epsilon, 0.0);
        accountant.record(0.01, 1.0, 0);
        assert!(accountant.entries().is_empty());
        assert_eq!(accountant.epsilon(0.0).epsilon, 0.0);
    }

    #[test]
    fn no_sampling_spends_nothing() {
        let mut accountant = RdpAccountant::new();
        accountant.record(0.0, 0.0, 1000);
        assert_eq!(accountant.epsilon(1e-5).epsilon, 0.0);
        assert!(DEFAULT_ORDERS.iter().all(|&a| step_rdp(0.0, 1.0, a) == 0.0));
    }

    #[test]
    fn full_batches_are_the_gaussian_mechanism() {
        for &a in &DEFAULT_ORDERS {
            assert_eq!(step_rdp(1.0, 2.0, a), a / 8.0);
        }
    }

    #[test]
    fn no_noise_or_a_bad_entry_has_no_guarantee() {
        for (q, sigma) in [(0.01, 0.0), (1.5, 1.0), (-0.1, 1.0), (f64::NAN, 1.0), (0.01, -1.0), (0.01, f64::NAN)] {
            let mut accountant = RdpAccountant::new();
            accountant.record(q, sigma, 10);
            assert_eq!(accountant.epsilon(1e-5).epsilon, f64::INFINITY, "q {q}, sigma {sigma}");
        }
    }

    #[test]
    fn a_delta_not_above_zero_has_no_guarantee() {
        let mut accountant = RdpAccountant::new();
        accountant.record(0.01, 1.0, 10);
        for delta in [0.0, -1e-5, f64::NAN] {
            assert_eq!(accountant.epsilon(delta).epsilon, f64::INFINITY, "delta {delta}");
        }
    }

    #[test]
    fn epsilon_grows_with_steps_and_falls_with_noise() {
        let epsilon = |q, sigma, steps| {
            let mut accountant = RdpAccountant::new();
            accountant.record(q, sigma, steps);
            accountant.epsilon(1e-5).epsilon
        };
        assert!(epsilon(0.01, 1.0, 100) < epsilon(0.01, 1.0, 1000));
        assert!(epsilon(0.01, 2.0, 1000) < epsilon(0.01, 1.0, 1000));
        assert!(epsilon(0.001, 1.0, 1000) < epsilon(0.01, 1.0, 1000));
    }

    #[test]
    fn integer_and_fractional_series_meet() {
        // The two computations of ln(A_a) are the same function of a: the
        // fractional one just beside an integer order lands beside it.
        for (q, sigma) in [(0.01, 1.0), (0.1, 2.0), (0.001, 0.7)] {
            for a in [2u64, 5, 12] {
                let exact = log_a_integer(q, sigma, a);
                let near = log_a_fraction(q, sigma, a as f64 + 1e-9);
                assert!(
                    (exact - near).abs() <= 1e-6 * exact.abs().max(1e-3),
                    "q {q} sigma {sigma} a {a}: {exact} {near}"
                );
            }
        }
    }

    #[test]
    fn log_erfc_matches_mpmath() {
        // ln(erfc(x)) from mpmath at 40 digits.
        let cases = [
            (-5.0, 0.6931471805591766),
            (0.5, -0.7350111298370844),
            (1.0, -1.8496055099332482),
            (10.0, -102.87988902484489),
            (25.0, -628.7920391740716),
            (26.0, -679.8311997631943),
            (27.0, -732.8688865078974),
            (30.0, -903.9741171106439),
            (100.0, -10005.177585122665),
            (1e4, -100000009.78270532),
        ];
        for (x, want) in cases {
            let got = log_erfc(x);
            assert!((got - want).abs() <= 1e-14 * want.abs(), "ln erfc({x}): {got}, mpmath {want}");
        }
        let below = libm::erfc(ERFC_ASYMPTOTIC_FROM).ln();
        let series = log_erfc(ERFC_ASYMPTOTIC_FROM);
        assert!((below - series).abs() <= 1e-13 * series.abs(), "{below} against {series}");
    }

    #[test]
    fn record_merges_equal_runs_only() {
        let mut accountant = RdpAccountant::new();
        accountant.record(0.01, 1.0, 10);
        accountant.record(0.01, 1.0, 5);
        accountant.record(0.02, 1.0, 1);
        accountant.record(0.01, 1.0, 2);
        let runs: Vec<(f64, u64)> = accountant.entries().iter().map(|e| (e.q, e.steps)).collect();
        assert_eq!(runs, [(0.01, 15), (0.02, 1), (0.01, 2)]);
        assert_eq!(accountant.steps(), 18);
    }

    #[test]
    fn text_form_reads_back_bit_for_bit() {
        let mut accountant = RdpAccountant::new();
        accountant.record(256.0 / 60000.0, 0.8, 4688);
        accountant.record(0.1 + 0.2, 1.0 / 3.0, 1);
        accountant.record(1.0, 5e-324, u64::MAX);
        let text = accountant.to_string();
        assert_eq!(text.parse::<RdpAccountant>(), Ok(accountant));
        assert_eq!("".parse::<RdpAccountant>(), Ok(RdpAccountant::new()));
        assert_eq!("  ".parse::<RdpAccountant>(), Ok(RdpAccountant::new()));
    }

    #[test]
    fn text_form_refuses_what_it_never_writes() {
        for text in
            ["0.1 1", "0.1 1 2 3", "1.5 1 2", "NaN 1 2", "0.1 -1 2", "0.1 inf 2", "0.1 1 0", "0.1 1 2.5", "0.1 1 2;"]
        {
            assert!(text.parse::<RdpAccountant>().is_err(), "{text:?} was read");
        }
    }

    #[test]
    fn default_delta_is_the_power_of_ten_below_one_over_rows() {
        let cases = [(0, 0.1), (1, 0.1), (9, 0.1), (10, 0.01), (99, 0.01), (100, 1e-3), (60000, 1e-5), (100000, 1e-6)];
        for (rows, delta) in cases {
            assert_eq!(default_delta(rows), delta, "{rows} rows");
        }
        assert_eq!(default_delta(usize::MAX), 1e-20);
    }

    #[test]
    fn noise_search_refuses_bad_settings() {
        let refused = |target, delta, q, steps| {
            matches!(noise_multiplier_for_epsilon(target, delta, q, steps), Err(Error::InvalidInput(_)))
        };
        assert!(refused(0.0, 1e-5, 0.01, 100));
        assert!(refused(f64::NAN, 1e-5, 0.01, 100));
        assert!(refused(1.0, 0.0, 0.01, 100));
        assert!(refused(1.0, 1.0, 0.01, 100));
        assert!(refused(1.0, 1e-5, 0.0, 100));
        assert!(refused(1.0, 1e-5, 1.5, 100));
        assert!(refused(1.0, 1e-5, 0.01, 0));
        // Full batches for many steps: even sigma 1000 spends more than 1e-3.
        assert!(refused(1e-3, 1e-5, 1.0, 100000));
    }
}
