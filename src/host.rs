//! What the host can hold. A run's host memory is computed from its sizes
//! before anything large is allocated and compared with what the machine can
//! still give this process, so a typo such as `--layers 50000,50000,1` is
//! refused with the figure instead of growing until the kernel kills it.

use crate::error::{Error, Result};
use crate::model::MlpSpec;
use crate::train::{Optimizer, TrainConfig};

/// Bytes this process can still allocate: the machine's MemAvailable,
/// capped by the address-space limit (`ulimit -v`, `prlimit --as`) less what
/// is mapped already. None where neither can be read (not Linux): then no
/// check is made. Read from /proc because the standard library has no such
/// call and a libc binding for two numbers is not worth a dependency.
pub fn available_bytes() -> Option<u64> {
    let kib = |text: &str, key: &str| -> Option<u64> {
        let line = text.lines().find(|line| line.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse::<u64>().ok().map(|k| k * 1024)
    };
    let free = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| kib(&text, "MemAvailable:"));
    let address_space = std::fs::read_to_string("/proc/self/limits").ok().and_then(|limits| {
        let line = limits.lines().find(|line| line.starts_with("Max address space"))?;
        let soft = line["Max address space".len()..].split_whitespace().next()?.parse::<u64>().ok()?;
        let mapped = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| kib(&s, "VmSize:")).unwrap_or(0);
        Some(soft.saturating_sub(mapped))
    });
    match (free, address_space) {
        (Some(free), Some(space)) => Some(free.min(space)),
        (one, other) => one.or(other),
    }
}

/// Refuses `needed` bytes for `what` when they are more than
/// [`available_bytes`].
pub fn check_host_bytes(what: &str, needed: u64, advice: &'static str) -> Result<()> {
    match available_bytes() {
        Some(available) if needed > available => {
            Err(Error::ExceedsHostMemory { what: what.to_string(), needed, available, advice })
        }
        _ => Ok(()),
    }
}

/// Host bytes a CPU training run allocates beyond its caller's copy of the
/// data, from the sizes alone: the trainer's copy of the data; the
/// parameters, their gradients (one set per batch size, at most two), the
/// optimizer state and the epoch-start copy of parameters and state; each
/// batch size's rows and activations; and a forward pass over the larger of
/// the training and test sets for the metrics.
pub fn cpu_training_bytes(spec: &MlpSpec, config: &TrainConfig, train_rows: usize, test_rows: usize) -> u64 {
    let (inputs, outputs) = (spec.inputs() as u64, spec.outputs() as u64);
    let params = spec.num_params() as u64;
    let optimizer = match config.optimizer {
        Optimizer::Sgd => 0,
        Optimizer::Momentum { .. } => 1,
        Optimizer::Adam { .. } => 2,
    };
    let parameter_copies = 1 + 2 + optimizer + (1 + optimizer);
    let batch = config.rows_per_batch_of(train_rows);
    // One set of step buffers per batch size: the batch, and a shorter last one.
    let batch_rows = batch as u64 + if batch > 0 { (train_rows % batch) as u64 } else { 0 };
    let layer_outputs: u64 = spec.sizes()[1..].iter().map(|&s| s as u64).sum();
    // A GELU layer's forward pass keeps its z too (MlpSpec::pre_activation_width).
    let kept = layer_outputs + spec.pre_activation_width() as u64;
    // With dropout, the dropped output of each hidden layer that drops units too.
    let sizes = spec.sizes();
    let dropped = config.dropout.dropped_width(&sizes[1..sizes.len() - 1]) as u64;
    let batch_buffers = batch_rows.saturating_mul(inputs + outputs + layer_outputs + kept + dropped);
    let evaluation = (train_rows.max(test_rows) as u64).saturating_mul(kept + outputs);
    let data = ((train_rows + test_rows) as u64).saturating_mul(inputs + outputs);
    let floats = params
        .saturating_mul(parameter_copies)
        .saturating_add(batch_buffers)
        .saturating_add(evaluation)
        .saturating_add(data);
    floats.saturating_mul(4)
}
