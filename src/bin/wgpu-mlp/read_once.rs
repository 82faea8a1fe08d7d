//! A sweep's models read the same CSV with the same options: once reading
//! once is turned on, the first read of a source is kept and every later one
//! gets a copy, the same rows bit for bit (standard input too, which could
//! not be read twice). A single run reads as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use wgpu_mlp::data::{CsvLayout, CsvOptions, Source};
use wgpu_mlp::Dataset;

static ON: AtomicBool = AtomicBool::new(false);

/// What was read, by source and options.
type Reads = Vec<(Source, CsvOptions, (Dataset, CsvLayout))>;

static READS: Mutex<Reads> = Mutex::new(Vec::new());

/// Keeps every CSV read from now on, for the rest of the process.
pub(crate) fn keep_reads() {
    ON.store(true, Ordering::Relaxed);
}

/// `read()` of `source` with `options`, or a copy of its earlier result
/// while reads are kept. The first read holds the lock, so a file is parsed
/// once however many threads ask for it at the same time.
pub(crate) fn csv(
    source: &Source,
    options: &CsvOptions,
    read: impl FnOnce() -> wgpu_mlp::Result<(Dataset, CsvLayout)>,
) -> wgpu_mlp::Result<(Dataset, CsvLayout)> {
    if !ON.load(Ordering::Relaxed) {
        return read();
    }
    // A thread that panicked while holding it left whole entries only.
    let mut reads = READS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, _, kept)) = reads.iter().find(|(s, o, _)| s == source && o == options) {
        return Ok(kept.clone());
    }
    let fresh = read()?;
    reads.push((source.clone(), options.clone(), fresh.clone()));
    Ok(fresh)
}
