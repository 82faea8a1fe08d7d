// The fused path's pool in a storage buffer, for nets whose state is above
// the adapter's max_compute_workgroup_storage_size (digits 64-64-10 with Adam
// needs ~77 KB, lavapipe allows 32 KB). Still one workgroup, so a storage
// barrier orders the phases. Defines, for fused_mlp.wgsl: `pool` and
// `pool_barrier()`.

// binding  name  access      shape
// 8        pool  read_write  (POOL)  laid out as the workgroup pool
@group(0) @binding(8) var<storage, read_write> pool: array<f32>;

/// Every invocation's pool writes before it are seen by every read after it.
fn pool_barrier() {
    storageBarrier();
}
