//! Data-parallel training: K ranks (MPI processes, or threads in one process)
//! train one model, each taking its share of every batch. After each step's
//! backward pass the ranks' gradients, each scaled by its share of the batch,
//! are summed in rank order, the same sum on every rank, so every rank
//! applies the same update and the models stay equal bit for bit. The result
//! equals a one-process run with the same global batch up to the order of
//! the sums (within the GPU-vs-CPU tolerance; see tests/data_parallel.rs).
//!
//! [`Collective`] is what a rank needs of the others; `crate::mpi` (the `mpi`
//! cargo feature) gives one over MPI, [`ThreadGroup`] one over threads.

use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

use crate::error::{Error, Result};

/// The ranks of a data-parallel run, seen from one of them.
pub trait Collective {
    /// This rank, from 0.
    fn rank(&self) -> usize;
    /// How many ranks train the model.
    fn ranks(&self) -> usize;
    /// values = the sum over ranks of each rank's values, added in rank
    /// order (rank 0's first), the same on every rank. Every rank calls it
    /// with as many values.
    fn sum_in_rank_order(&mut self, values: &mut [f32]) -> Result<()>;
    /// Seconds spent in [`Collective::sum_in_rank_order`] so far.
    fn seconds(&self) -> f64;
}

/// Rank `rank`'s share of a batch of `rows` rows among `ranks`: (first row,
/// rows), contiguous, rank order, sizes differing by at most one.
pub fn share(rows: usize, rank: usize, ranks: usize) -> (usize, usize) {
    let (base, extra) = (rows / ranks, rows % ranks);
    let first = rank * base + rank.min(extra);
    (first, base + usize::from(rank < extra))
}

/// summed = the sum of `parts` (one per rank, each as long as summed), the
/// first part first: the order every rank adds in.
pub fn sum_in_order<'a>(parts: impl IntoIterator<Item = &'a [f32]>, summed: &mut [f32]) {
    let mut parts = parts.into_iter();
    match parts.next() {
        Some(first) => summed.copy_from_slice(first),
        None => summed.fill(0.0),
    }
    for part in parts {
        summed.iter_mut().zip(part).for_each(|(s, &v)| *s += v);
    }
}

/// Ranks as threads of one process ([`ThreadGroup::new`] gives one
/// [`Collective`] per thread): what tests and a library user can run without MPI.
pub struct ThreadGroup {
    rank: usize,
    ranks: usize,
    shared: Arc<Shared>,
    seconds: f64,
}

struct Shared {
    /// Each rank's values of the current sum, rank order.
    slots: Mutex<Vec<Vec<f32>>>,
    barrier: Barrier,
}

impl ThreadGroup {
    /// One member per rank, `ranks` of them (at least 1).
    pub fn new(ranks: usize) -> Vec<ThreadGroup> {
        let ranks = ranks.max(1);
        let shared = Arc::new(Shared { slots: Mutex::new(vec![Vec::new(); ranks]), barrier: Barrier::new(ranks) });
        (0..ranks).map(|rank| ThreadGroup { rank, ranks, shared: shared.clone(), seconds: 0.0 }).collect()
    }
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.ranks
    }

    fn sum_in_rank_order(&mut self, values: &mut [f32]) -> Result<()> {
        let started = Instant::now();
        let poisoned = || Error::InvalidInput("a rank of the thread group panicked".into());
        self.shared.slots.lock().map_err(|_| poisoned())?[self.rank] = values.to_vec();
        self.shared.barrier.wait();
        {
            let slots = self.shared.slots.lock().map_err(|_| poisoned())?;
            if slots.iter().any(|slot| slot.len() != values.len()) {
                return Err(Error::InvalidInput("the ranks summed different numbers of values".into()));
            }
            sum_in_order(slots.iter().map(Vec::as_slice), values);
        }
        // No rank writes its slot for the next sum before every rank has read this one.
        self.shared.barrier.wait();
        self.seconds += started.elapsed().as_secs_f64();
        Ok(())
    }

    fn seconds(&self) -> f64 {
        self.seconds
    }
}
