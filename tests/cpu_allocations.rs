//! A CPU training step allocates nothing of its own: its buffers are made once
//! per batch size. What is left per step is ndarray's sgemm, which allocates one
//! packing buffer per matmul call. Counted with a counting global allocator,
//! alone in this test binary so no other test's allocations mix in. The net is
//! small enough that no element-wise op is split across threads (rayon's
//! bookkeeping is not counted here).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use wgpu_mlp::model::Init;
use wgpu_mlp::{CpuTrainer, Dataset, MlpSpec, Params, Run, TrainConfig, Trainer};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations of the second epoch (the first may warm caches up) of a
/// 10-64-32-1 net on 96 rows in batches of `batch`, shuffled.
fn allocations_in_an_epoch(batch: usize) -> usize {
    let spec = MlpSpec::new(vec![10, 64, 32, 1]).unwrap();
    let data = Dataset::seed_problem(96, 10, 1, 0).unwrap();
    let params = Params::init(&spec, Init::Xavier, 0).unwrap();
    let config = TrainConfig { batch_size: Some(batch), shuffle: true, ..TrainConfig::default() };
    let mut trainer =
        CpuTrainer::new(&Run { spec: &spec, params: &params, train: &data, test: None, config: &config }).unwrap();
    trainer.train(1).unwrap();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    trainer.train(1).unwrap();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn a_cpu_step_allocates_only_inside_sgemm() {
    // 48 steps of 2 rows against 1 step of 96 rows: the difference is 47 steps.
    let (many, one) = (allocations_in_an_epoch(2), allocations_in_an_epoch(96));
    let per_step = (many - one) as f64 / 47.0;
    // 3 layers: 3 forward matmuls, 3 weight gradients and 2 input gradients.
    let matmuls_per_step = 8.0;
    assert!(
        per_step <= matmuls_per_step,
        "{per_step:.2} allocations per step ({many} in 48 steps, {one} in 1) for {matmuls_per_step} matmuls"
    );
}
