// The fused path's pool in workgroup memory, for nets whose state fits the
// adapter's max_compute_workgroup_storage_size. Defines, for fused_mlp.wgsl:
// `pool` and `pool_barrier()`.

/// The host sizes the pool to the model (and checks it against the adapter's
/// max_compute_workgroup_storage_size); 4096 floats is WebGPU's minimum, 16 KiB.
override POOL_FLOATS: u32 = 4096u;
var<workgroup> pool: array<f32, POOL_FLOATS>;

/// Every invocation's pool writes before it are seen by every read after it.
fn pool_barrier() {
    workgroupBarrier();
}
