//! `wgpu-mlp privacy`: a DP-SGD privacy budget planner, as Opacus's
//! compute_dp_sgd_privacy: the (epsilon, delta) of a planned run, or the
//! noise multiplier that meets a target epsilon.

use std::io::Write;

use wgpu_mlp::accountant::{default_delta, noise_multiplier_for_epsilon, RdpAccountant};

use crate::args::PrivacyArgs;
use crate::bad_input;

pub(crate) fn plan(args: &PrivacyArgs) -> anyhow::Result<()> {
    let (rows, batch) = (args.rows, args.batch_size);
    if rows == 0 {
        return Err(bad_input("--rows must be at least 1".into()));
    }
    if batch == 0 {
        return Err(bad_input("--batch-size must be at least 1".into()));
    }
    if batch > rows {
        return Err(bad_input(format!("--batch-size {batch} is above --rows {rows}: a batch samples the rows")));
    }
    let q = batch as f64 / rows as f64;
    let per_epoch = rows.div_ceil(batch) as u64;
    let (steps, how_many) = match (args.epochs, args.steps) {
        (Some(epochs), None) => {
            let steps = epochs.checked_mul(per_epoch).ok_or_else(|| {
                bad_input(format!("--epochs {epochs} of {per_epoch} steps each are more steps than can be counted"))
            })?;
            (steps, format!("{steps} steps ({epochs} epochs of {per_epoch})"))
        }
        (None, Some(steps)) => (steps, format!("{steps} steps")),
        _ => return Err(bad_input("give one of --epochs and --steps".into())),
    };
    if steps == 0 {
        let flag = if args.epochs.is_some() { "--epochs" } else { "--steps" };
        return Err(bad_input(format!("{flag} must be at least 1")));
    }
    let delta = args.delta.unwrap_or(default_delta(rows));
    if !(delta > 0.0 && delta < 1.0) {
        return Err(bad_input(format!("--delta must be in (0, 1), not {delta}")));
    }
    if delta >= 1.0 / rows as f64 {
        // Releasing one random row in full meets such a delta: a weak guarantee.
        let _ = writeln!(
            crate::stream::stderr(),
            "warning: --delta {delta:e} is not below 1 / --rows ({rows}); the usual choice is below it"
        );
    }
    let (sigma, found) =
        match (args.noise_multiplier, args.target_epsilon) {
            (Some(sigma), None) => {
                if !(sigma.is_finite() && sigma > 0.0) {
                    return Err(bad_input(format!("--noise-multiplier must be a positive number, not {sigma}")));
                }
                (sigma, None)
            }
            (None, Some(target)) => (noise_multiplier_for_epsilon(target, delta, q, steps)?, Some(target)),
            _ => return Err(bad_input(
                "give one of --noise-multiplier (to get epsilon) and --target-epsilon (to get the noise multiplier)"
                    .into(),
            )),
        };
    let mut accountant = RdpAccountant::new();
    accountant.record(q, sigma, steps);
    let spent = accountant.epsilon(delta);

    let mut out = crate::stream::stdout();
    if args.json {
        let object = serde_json::json!({
            "q": q, "sigma": sigma, "steps": steps, "delta": delta, "epsilon": spent.epsilon, "order": spent.order,
        });
        writeln!(out, "{object}")?;
        return Ok(());
    }
    let noise = match found {
        None => format!("noise multiplier {sigma}"),
        Some(target) => format!("noise multiplier {sigma} (found for --target-epsilon {target})"),
    };
    let default =
        if args.delta.is_none() { "; delta is the default, the largest power of ten below 1 / rows" } else { "" };
    writeln!(
        out,
        "{rows} rows, expected batch {batch} (q = {}), {how_many}, {noise}: (epsilon = {}, delta = {delta:e})-DP (RDP order {}){default}",
        four_digits(q),
        four_digits(spent.epsilon),
        spent.order
    )?;
    Ok(())
}

/// `x` to four significant digits, without an exponent or trailing zeros.
fn four_digits(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return x.to_string();
    }
    let decimals = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}
