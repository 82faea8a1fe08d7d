//! Whether a kind of work runs split across the pool or on the caller alone,
//! chosen by how each way has run lately in this process: on a machine where
//! another process holds a core, a split can cost more than it saves (the
//! other thread waits for a core while the caller waits for its block), and
//! when the core comes free, splitting pays again. Both ways give the same
//! bits (see the parent module), so the choice changes only the speed.
//!
//! Each kind (a product's shape, a map's length, on a thread count) keeps a
//! moving average of seconds per call for each way. It runs the faster one,
//! and the other every EXPLORE_EVERY calls, so a change of the machine's load
//! is seen within a few dozen calls (a few training steps).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// One call in this many runs the way that looks slower, to see whether it
/// still is: a few percent of the calls, at most a few percent slower.
const EXPLORE_EVERY: u64 = 16;

/// Weight of the newest call in a moving average: two looks at a way that
/// became twice as fast are enough to take it, and one preempted call costs
/// the way it ran at most two looks.
const NEWEST_WEIGHT: f64 = 0.5;

/// A kind of work: what it is and its size, and the pool's thread count.
pub(super) type WorkKind = (&'static str, [usize; 3], usize);

/// Seconds per call of each way, as moving averages; None until it ran.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct WayTimes {
    pub(super) split: Option<f64>,
    pub(super) alone: Option<f64>,
    pub(super) calls: u64,
}

impl WayTimes {
    /// Whether the next call splits: each way once first, then the faster,
    /// and the other one call in EXPLORE_EVERY.
    pub(super) fn next_splits(&self) -> bool {
        match (self.split, self.alone) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(split), Some(alone)) => (split <= alone) != (self.calls % EXPLORE_EVERY == EXPLORE_EVERY - 1),
        }
    }

    pub(super) fn record(&mut self, split: bool, seconds: f64) {
        let average = if split { &mut self.split } else { &mut self.alone };
        *average = Some(average.map_or(seconds, |old| old + NEWEST_WEIGHT * (seconds - old)));
        self.calls += 1;
    }
}

static TIMES: Mutex<Option<HashMap<WorkKind, WayTimes>>> = Mutex::new(None);

/// Runs `work(split)`, `split` chosen for `kind` as the module says, and
/// times it.
pub(super) fn timed_choice<R>(kind: WorkKind, work: impl FnOnce(bool) -> R) -> R {
    let split = TIMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .get(&kind)
        .is_none_or(WayTimes::next_splits);
    let start = Instant::now();
    let result = work(split);
    let seconds = start.elapsed().as_secs_f64();
    TIMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .entry(kind)
        .or_default()
        .record(split, seconds);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_way_runs_once_then_the_faster_with_a_look_at_the_other() {
        let mut times = WayTimes::default();
        assert!(times.next_splits());
        times.record(true, 2.0);
        assert!(!times.next_splits());
        times.record(false, 1.0);
        let splits: Vec<bool> = (0..2 * EXPLORE_EVERY)
            .map(|_| {
                let split = times.next_splits();
                // Times that do not change: alone stays faster.
                times.record(split, if split { 2.0 } else { 1.0 });
                split
            })
            .collect();
        assert_eq!(splits.iter().filter(|&&split| split).count(), 2, "{splits:?}");
    }

    #[test]
    fn a_way_that_becomes_faster_is_taken_after_a_look() {
        let mut times = WayTimes { split: Some(2.0), alone: Some(1.0), calls: 0 };
        // The machine frees a core: splitting now takes 0.5.
        let mut taken = Vec::new();
        for _ in 0..3 * EXPLORE_EVERY {
            let split = times.next_splits();
            times.record(split, if split { 0.5 } else { 1.0 });
            taken.push(split);
        }
        assert!(
            taken[taken.len() - EXPLORE_EVERY as usize..].iter().filter(|&&s| s).count() >= EXPLORE_EVERY as usize - 1
        );
    }
}
