//! Training's DP-SGD flags (`--dp` and `--dp-*`): resolved into the
//! library's [`DpSgd`] and the [`PrivacyLedger`] that counts what the run
//! spends, with the guarantee stated in one sentence.

use std::io::Write;

use rand::TryRngCore;
use wgpu_mlp::accountant::{default_delta, noise_multiplier_for_epsilon, RdpAccountant};
use wgpu_mlp::dp::{DpSgd, PrivacyLedger};

use crate::bad_input;

/// The DP-SGD flags of training.
#[derive(Debug, clap::Args)]
pub(crate) struct DpArgs {
    /// Train with DP-SGD (differentially private SGD, as Opacus and TF
    /// Privacy run it): each step takes every training row independently with
    /// probability --batch-size / rows (Poisson sampling, so batches vary),
    /// clips each row's gradient to --dp-max-grad-norm, adds Gaussian noise
    /// of --dp-noise-multiplier times that norm, and divides by the expected
    /// batch. The privacy spent (epsilon at --dp-delta, by the Rényi DP
    /// accountant) is reported every epoch.
    #[arg(long)]
    pub(crate) dp: bool,

    /// DP-SGD: the L2 norm each row's gradient is clipped to, positive [default: 1].
    #[arg(long, requires = "dp", value_parser = crate::args::parse_positive, allow_negative_numbers = true)]
    pub(crate) dp_max_grad_norm: Option<f32>,

    /// DP-SGD: sigma, the noise's standard deviation over the clipping norm, positive.
    #[arg(
        long,
        requires = "dp",
        value_parser = crate::args::parse_positive,
        conflicts_with = "dp_target_epsilon",
        allow_negative_numbers = true
    )]
    pub(crate) dp_noise_multiplier: Option<f32>,

    /// DP-SGD: the epsilon to spend over --epochs; the noise multiplier is
    /// found for it by bisection, to 0.01 (as Opacus's make_private_with_epsilon).
    #[arg(long, requires = "dp", allow_negative_numbers = true)]
    pub(crate) dp_target_epsilon: Option<f64>,

    /// DP-SGD: the delta of the (epsilon, delta) guarantee, in (0, 1)
    /// [default: the largest power of ten below 1 / training rows].
    #[arg(long, requires = "dp", allow_negative_numbers = true)]
    pub(crate) dp_delta: Option<f64>,

    /// DP-SGD: draw the key of the sampling and the noise from the operating
    /// system instead of --seed, so nobody who knows the seed can reproduce
    /// them (the run is then not reproducible, and checkpoints do not hold the key).
    #[arg(long, requires = "dp")]
    pub(crate) dp_secure: bool,
}

/// A resolved DP-SGD run: its settings and what it spends.
pub(crate) struct Private {
    pub(crate) dp: DpSgd,
    pub(crate) ledger: PrivacyLedger,
    /// How the noise multiplier and delta were chosen, when not given.
    pub(crate) notes: Vec<String>,
}

/// DP-SGD's settings for `rows` training rows, an expected batch of `batch`
/// and `epochs` epochs in all (a resume's included), or None without --dp.
pub(crate) fn resolve(
    args: &DpArgs,
    rows: usize,
    batch: usize,
    epochs: usize,
    seed: u64,
) -> anyhow::Result<Option<Private>> {
    if !args.dp {
        return Ok(None);
    }
    let q = wgpu_mlp::dp::sample_rate(batch, rows);
    let steps_per_epoch = wgpu_mlp::dp::steps_per_epoch(batch, rows);
    let mut notes = Vec::new();
    let delta = match args.dp_delta {
        Some(delta) if !(delta > 0.0 && delta < 1.0) => {
            return Err(bad_input(format!("--dp-delta must be in (0, 1), got {delta}")));
        }
        Some(delta) => {
            if delta >= 1.0 / rows as f64 {
                // Releasing one random row whole meets such a delta: a weak guarantee.
                let _ = writeln!(
                    crate::stream::stderr(),
                    "warning: --dp-delta {delta:e} is not below 1 / {rows} training rows; the usual choice is below it"
                );
            }
            delta
        }
        None => {
            let delta = default_delta(rows);
            notes.push(format!("delta {delta:e}: the largest power of ten below 1 / {rows} training rows"));
            delta
        }
    };
    let sigma = match (args.dp_noise_multiplier, args.dp_target_epsilon) {
        (Some(sigma), _) => sigma,
        (None, Some(target)) => {
            if !(target.is_finite() && target > 0.0) {
                return Err(bad_input(format!("--dp-target-epsilon must be a positive finite number, got {target}")));
            }
            let steps = (epochs * steps_per_epoch) as u64;
            let sigma = noise_multiplier_for_epsilon(target, delta, q, steps)
                .map_err(|e| bad_input(e.to_string().replace("`target_epsilon`", "--dp-target-epsilon")))?
                as f32;
            notes.push(format!("noise multiplier {sigma}: found for --dp-target-epsilon {target} over {steps} steps"));
            sigma
        }
        (None, None) => {
            return Err(bad_input(
                "--dp needs --dp-noise-multiplier or --dp-target-epsilon (the noise, or the epsilon to spend)".into(),
            ))
        }
    };
    let key = if args.dp_secure {
        rand::rngs::OsRng
            .try_next_u64()
            .map_err(|e| anyhow::anyhow!("--dp-secure: the operating system gave no random key: {e}"))?
    } else {
        seed
    };
    let dp = DpSgd { max_grad_norm: args.dp_max_grad_norm.unwrap_or(1.0), noise_multiplier: sigma, key };
    let ledger = PrivacyLedger {
        before: RdpAccountant::new(),
        first_epoch: 0,
        q,
        sigma: f64::from(sigma),
        steps_per_epoch,
        delta,
    };
    Ok(Some(Private { dp, ledger, notes }))
}

/// What a resume must match: the clipping norm, the noise and the sampling rate.
pub(crate) fn describe(dp: &DpSgd, ledger: &PrivacyLedger) -> String {
    format!("max_grad_norm {} noise_multiplier {} sample_rate {}", dp.max_grad_norm, dp.noise_multiplier, ledger.q)
}

/// The guarantee in one sentence, after `epoch`.
pub(crate) fn guarantee(dp: &DpSgd, ledger: &PrivacyLedger, epoch: usize, rows: usize) -> String {
    let accountant = ledger.after(epoch);
    let spent = accountant.epsilon(ledger.delta);
    format!(
        "privacy: the trained model is ({:.4}, {:e})-differentially private with respect to each of the {rows} \
         training rows (adding or removing one row changes the odds of any outcome by at most e^epsilon, except \
         with probability delta), by the RDP accountant at order {} over {} steps, each a Poisson sample of \
         rate q = {:.6} clipped to norm {} with noise multiplier {}; the validation and test rows are not \
         covered (their metrics are released as measured)",
        spent.epsilon,
        ledger.delta,
        spent.order,
        accountant.steps(),
        ledger.q,
        dp.max_grad_norm,
        dp.noise_multiplier,
    )
}

/// The `--json` summary's `privacy`, after `epoch`.
pub(crate) fn summary(dp: &DpSgd, ledger: &PrivacyLedger, epoch: usize, secure: bool) -> serde_json::Value {
    let accountant = ledger.after(epoch);
    let spent = accountant.epsilon(ledger.delta);
    serde_json::json!({
        "epsilon": spent.epsilon,
        "delta": ledger.delta,
        "order": spent.order,
        "steps": accountant.steps(),
        "sample_rate": ledger.q,
        "noise_multiplier": ledger.sigma,
        "max_grad_norm": f64::from(dp.max_grad_norm),
        "sampling": "poisson",
        "key": if secure { "operating system" } else { "seed" },
        "accountant": accountant.to_string(),
    })
}
