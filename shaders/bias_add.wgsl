// bias_add: out(rows, cols) += bias(cols), broadcast over rows; row-major.
//
// binding  name    access      shape
// 0        params  uniform     BiasAddParams
// 1        out     read_write  (rows, cols)
// 2        bias    read        (cols)
//
// Invocations stride over the elements across a possibly 2-D grid: one
// element each where the grid covers them all (GPUs), several where the host
// keeps the grid small (CPU adapters, which pay per workgroup).

struct BiasAddParams {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: BiasAddParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;

@compute @workgroup_size(256)
fn bias_add(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let stride = groups.x * groups.y * 256u;
    for (var i = (group.y * groups.x + group.x) * 256u + local; i < params.rows * params.cols; i += stride) {
        out[i] += bias[i % params.cols];
    }
}
