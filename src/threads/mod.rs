//! The CPU path's threads: how many (`WGPU_MLP_THREADS`, else what the
//! machine offers; `bench --threads` through [`with_cpu_threads`]) and how
//! work is shared among them.
//!
//! Work is cut into blocks that whichever thread is free takes next (rayon's
//! work stealing, the calling thread one of the pool's), and a thread that
//! waits sleeps. A static split, as the threaded sgemm of matrixmultiply
//! makes (half the rows to each thread, the caller yield-spinning on the
//! other half), waits on a thread the kernel has descheduled for another
//! process: with one of two cores busy, its `mlp` step was 1.4x to 6x slower
//! than a single thread (BENCHMARKS.md). Here, when the other thread is not
//! running, the one that is takes its blocks, and while it sleeps its core is
//! free for the descheduled one. Blocks are large enough that what a block
//! repeats (packing the shared operand) stays small, and work too small to
//! pay for a hand-off to another thread runs on the caller.
//!
//! The thread that first does CPU work (with more than one thread) stays
//! one of that pool's threads for the life of the process, so rayon work it
//! starts itself afterwards also runs on this pool; a program with a rayon
//! setup of its own can set `WGPU_MLP_THREADS=1` (no pool at all).
//!
//! Whether a kind of work is split at all is chosen by how each way ran
//! lately (the `timing` module): with a core taken by another process a
//! split can cost more than it saves. The block split never changes a
//! result: every element of a product is summed in the same order whatever
//! the thread count or the choice.

mod timing;

use std::sync::OnceLock;

use ndarray::linalg::general_mat_mul;
use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

use crate::error::{Error, Result};

/// The environment variable that sets the CPU thread count of every command.
pub const THREADS_ENV: &str = "WGPU_MLP_THREADS";

/// The most threads a count may ask for: far above any core count this runs
/// on, low enough that a typo (`WGPU_MLP_THREADS=20000`) is an error.
pub const MAX_THREADS: usize = 1024;

/// A product of fewer multiply-adds than this runs on the caller's thread:
/// about 10 us of one AVX-512 core, while handing a block to a sleeping
/// thread and waiting for it costs a few microseconds. So `seed`'s products
/// and `mlp`'s 256 x 256 x 10 ones stay on the caller.
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// The fewest rows of a product's block: matrixmultiply's A panel height
/// (64 on x86), so a block is whole panels and packing B once per block costs
/// at most about 1/16 of the block's arithmetic.
const BLOCK_MIN_ROWS: usize = 64;

/// Blocks per thread, at most: a few, so a thread that runs late leaves only
/// a small share of the work to the others' wait.
const BLOCKS_PER_THREAD: usize = 4;

/// A thread count and the pool that runs the CPU path's parallel work on it.
struct Threads {
    /// The count asked for.
    asked: usize,
    /// The threads that run: `asked`, or 1 where the pool could not start.
    count: usize,
    /// None with one thread: everything runs on the caller.
    pool: Option<rayon::ThreadPool>,
}

/// The count of every thread's work unless [`with_cpu_threads`] says
/// otherwise, fixed at first use.
static THREADS: OnceLock<Threads> = OnceLock::new();

/// Parses a thread count as `name` gives it: an integer from 1 to [`MAX_THREADS`].
pub fn parse_count(name: &str, text: &str) -> Result<usize> {
    match text.trim().parse::<usize>() {
        Ok(count @ 1..=MAX_THREADS) => Ok(count),
        _ => Err(Error::InvalidInput(format!("{name} must be a thread count from 1 to {MAX_THREADS}, not '{text}'"))),
    }
}

/// The count `WGPU_MLP_THREADS` asks for; None when it is unset or empty.
fn count_from_env() -> Result<Option<usize>> {
    match std::env::var(THREADS_ENV) {
        Ok(text) if !text.trim().is_empty() => parse_count(THREADS_ENV, &text).map(Some),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::InvalidInput(format!("{THREADS_ENV} must be a thread count, not a non-UTF-8 string")))
        }
    }
}

/// What the machine offers this process: its cores, or fewer where an
/// affinity mask or a cgroup quota says so.
fn machine_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A pool of `count` threads of which the calling thread is one, where it
/// can be: then a product's blocks go on the caller's own queue, it starts
/// on them at once and takes back those no other thread has taken, so no
/// block waits on a thread that is not running, and no hand-off happens at
/// all. A thread can be in one pool only: a second pool on it (another count
/// in `bench --threads 2,3`) gets `count` threads of its own, the caller
/// waiting on them.
fn build(count: usize) -> Threads {
    let builder = || rayon::ThreadPoolBuilder::new().num_threads(count).thread_name(|i| format!("wgpu-mlp-cpu-{i}"));
    let pool = (count > 1)
        .then(|| {
            builder()
                .use_current_thread()
                .build()
                .or_else(|_| builder().build())
                // A machine that cannot start threads still trains, on one.
                .ok()
        })
        .flatten();
    Threads { asked: count, count: if pool.is_some() { count } else { 1 }, pool }
}

/// The CPU thread count of this thread's work: [`with_cpu_threads`]'s, else
/// `WGPU_MLP_THREADS`, else the machine's cores (fixed at first use). An
/// error (bad input) when `WGPU_MLP_THREADS` is not a count;
/// [`Trainer`](crate::Trainer)s on the CPU call this when they are made, so
/// a bad value stops a run at its start.
pub fn cpu_threads() -> Result<usize> {
    if COUNT_HERE.get().is_some() {
        return Ok(threads().count);
    }
    if let Some(fixed) = THREADS.get() {
        return Ok(fixed.count);
    }
    let count = count_from_env()?.unwrap_or_else(machine_count);
    Ok(THREADS.get_or_init(|| build(count)).count)
}

thread_local! {
    /// A count [`with_cpu_threads`] set for this thread's work, over the fixed one.
    static COUNT_HERE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The pools of the counts [`with_cpu_threads`] asked for, made once each and
/// kept for the process.
static POOLS_BY_COUNT: std::sync::Mutex<Vec<&'static Threads>> = std::sync::Mutex::new(Vec::new());

/// The threads this thread's work runs on: [`with_cpu_threads`]'s, else the
/// fixed ones; a `WGPU_MLP_THREADS` that is not a count (which
/// [`cpu_threads`] reports) gives one thread here.
fn threads() -> &'static Threads {
    if let Some(count) = COUNT_HERE.get() {
        let mut pools = POOLS_BY_COUNT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(&found) = pools.iter().find(|threads| threads.asked == count) {
            return found;
        }
        let made: &'static Threads = Box::leak(Box::new(build(count)));
        pools.push(made);
        return made;
    }
    THREADS.get_or_init(|| build(count_from_env().ok().flatten().unwrap_or_else(machine_count)))
}

/// Runs `work` with the CPU path's work of this thread on `count` threads,
/// whatever count is fixed: `bench --threads 1,2` times both in one run.
pub fn with_cpu_threads<R>(count: usize, work: impl FnOnce() -> R) -> Result<R> {
    parse_count("`threads`", &count.to_string())?;
    let before = COUNT_HERE.replace(Some(count));
    let result = work();
    COUNT_HERE.set(before);
    Ok(result)
}

/// Runs `work` on the pool's threads when there are several, `elements` is
/// at least `min_elements` and splitting has paid lately ([`timing`]); on
/// the caller otherwise, with `parallel` false.
pub(crate) fn run<R: Send>(elements: usize, min_elements: usize, work: impl FnOnce(bool) -> R + Send) -> R {
    let fixed = threads();
    match &fixed.pool {
        Some(pool) if elements >= min_elements => {
            timing::timed_choice(("map", [elements, 0, 0], fixed.count), |split| match split {
                true => pool.install(|| work(true)),
                false => work(false),
            })
        }
        _ => work(false),
    }
}

/// How many row blocks a product of `rows` rows and `macs` multiply-adds is
/// cut into on `count` threads: 1 (the caller alone) when it is small.
fn block_count(rows: usize, macs: usize, count: usize) -> usize {
    if count <= 1 || macs < PARALLEL_MIN_MACS {
        return 1;
    }
    let by_size = (macs / PARALLEL_MIN_MACS).min(rows / BLOCK_MIN_ROWS);
    by_size.min(count * BLOCKS_PER_THREAD).max(1)
}

/// out(M, N) = a(M, K) · b(K, N), any strides (a transposed operand is a
/// reversed view): the rows of out in blocks, each a single-threaded sgemm
/// taken by whichever thread is free; or one sgemm on the caller, where
/// that has been faster lately for this shape ([`timing`]).
pub(crate) fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>, out: &mut Array2<f32>) {
    let (rows, inner) = a.dim();
    let macs = rows.saturating_mul(inner).saturating_mul(b.ncols());
    let fixed = threads();
    let blocks = block_count(rows, macs, fixed.count);
    let Some(pool) = fixed.pool.as_ref().filter(|_| blocks > 1) else {
        general_mat_mul(1.0, &a, &b, 0.0, out);
        return;
    };
    timing::timed_choice(("matmul", [rows, inner, b.ncols()], fixed.count), |split| {
        if !split {
            general_mat_mul(1.0, &a, &b, 0.0, out);
            return;
        }
        // Whole panels per block: the last block takes the rows left over.
        let block_rows = rows.div_ceil(blocks).div_ceil(BLOCK_MIN_ROWS) * BLOCK_MIN_ROWS;
        let pairs: Vec<(ArrayViewMut2<f32>, ArrayView2<f32>)> =
            out.axis_chunks_iter_mut(Axis(0), block_rows).zip(a.axis_chunks_iter(Axis(0), block_rows)).collect();
        pool.install(|| {
            pairs.into_par_iter().with_max_len(1).for_each(|(mut out, a)| general_mat_mul(1.0, &a, &b, 0.0, &mut out));
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_products_stay_on_the_caller() {
        assert_eq!(block_count(100, 100 * 10 * 5, 2), 1);
        assert_eq!(block_count(256, 256 * 256 * 10, 2), 1);
        assert_eq!(block_count(4096, 1 << 30, 1), 1);
    }

    #[test]
    fn blocks_are_whole_panels_and_a_few_per_thread() {
        // mlp's forward product: 256 x 784 x 256 on 2 threads.
        assert_eq!(block_count(256, 256 * 784 * 256, 2), 256 / BLOCK_MIN_ROWS);
        assert_eq!(block_count(4096, 1 << 30, 2), 2 * BLOCKS_PER_THREAD);
        // Few rows but much work: no block thinner than a panel.
        assert_eq!(block_count(100, 100 * 4096 * 4096, 8), 1);
    }

    #[test]
    fn blocks_give_the_single_threaded_product_bit_for_bit() {
        // Awkward sizes: a last block shorter than the others, a transposed a.
        let (m, k, n) = (301, 257, 67);
        let a = Array2::from_shape_fn((k, m), |(i, j)| ((i * 7 + j * 3) % 23) as f32 / 23.0 - 0.4);
        let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j * 11) % 19) as f32 / 19.0 - 0.6);
        let a = a.t();
        let mut blocked = Array2::from_elem((m, n), f32::NAN);
        matmul(a, b.view(), &mut blocked);
        let mut whole = Array2::zeros((m, n));
        general_mat_mul(1.0, &a, &b, 0.0, &mut whole);
        assert!(blocked.iter().zip(whole.iter()).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn counts_are_parsed_with_the_name_in_the_error() {
        assert_eq!(parse_count(THREADS_ENV, " 3 ").ok(), Some(3));
        for bad in ["0", "-1", "two", "", "100000"] {
            let message = parse_count(THREADS_ENV, bad).expect_err(bad).to_string();
            assert!(message.contains(THREADS_ENV), "{message}");
        }
    }
}
