// matmul for CPU adapters such as lavapipe, after matmul_common.wgsl: register
// tiles without workgroup memory (barriers are slow there).
//
// A workgroup of 8 x 8 invocations computes a 64 x 32 tile of out.
// Invocation (x, y) owns rows 8y .. 8y+7 of the tile and columns x, x+8, x+16,
// x+24: the eight invocations that share y (one SIMD batch on CPU adapters)
// read the same a values and neighbouring b values. Tiles wholly inside out
// skip the bounds checks; edge tiles load 0 outside and skip stores outside,
// so any M, K, N works.

const TILE_N: u32 = 32u;
const TILE_M: u32 = 64u;
const LANES: u32 = 8u;

// op(a)[row, col], 0 outside (M, K).
fn a_checked(row: u32, col: u32) -> f32 {
    if (row >= params.m) {
        return 0.0;
    }
    return a_at(row, col);
}

// op(b)[row, col], 0 outside (K, N).
fn b_checked(row: u32, col: u32) -> f32 {
    if (col >= params.n) {
        return 0.0;
    }
    return b_at(row, col);
}

// Dispatch: (ceil(N / 32), ceil(M / 64), 1) workgroups.
@compute @workgroup_size(8, 8)
fn matmul(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    // A tile wholly past out does nothing: a DP-SGD step sets m below the
    // rows its grid was recorded for.
    if (group.y * TILE_M >= params.m || group.x * TILE_N >= params.n) {
        return;
    }
    let row0 = group.y * TILE_M + local.y * 8u;
    let col0 = group.x * TILE_N + local.x;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    // Uniform per workgroup: the whole tile lies inside out.
    let interior = group.y * TILE_M + TILE_M <= params.m && group.x * TILE_N + TILE_N <= params.n;
    if (interior) {
        for (var kk = 0u; kk < params.k; kk++) {
            let b_row = vec4<f32>(b_at(kk, col0), b_at(kk, col0 + 8u), b_at(kk, col0 + 16u), b_at(kk, col0 + 24u));
            acc0 += a_at(row0, kk) * b_row;
            acc1 += a_at(row0 + 1u, kk) * b_row;
            acc2 += a_at(row0 + 2u, kk) * b_row;
            acc3 += a_at(row0 + 3u, kk) * b_row;
            acc4 += a_at(row0 + 4u, kk) * b_row;
            acc5 += a_at(row0 + 5u, kk) * b_row;
            acc6 += a_at(row0 + 6u, kk) * b_row;
            acc7 += a_at(row0 + 7u, kk) * b_row;
        }
    } else {
        for (var kk = 0u; kk < params.k; kk++) {
            let b_row = vec4<f32>(
                b_checked(kk, col0),
                b_checked(kk, col0 + 8u),
                b_checked(kk, col0 + 16u),
                b_checked(kk, col0 + 24u),
            );
            acc0 += a_checked(row0, kk) * b_row;
            acc1 += a_checked(row0 + 1u, kk) * b_row;
            acc2 += a_checked(row0 + 2u, kk) * b_row;
            acc3 += a_checked(row0 + 3u, kk) * b_row;
            acc4 += a_checked(row0 + 4u, kk) * b_row;
            acc5 += a_checked(row0 + 5u, kk) * b_row;
            acc6 += a_checked(row0 + 6u, kk) * b_row;
            acc7 += a_checked(row0 + 7u, kk) * b_row;
        }
    }
    store_lanes(row0, col0, acc0);
    store_lanes(row0 + 1u, col0, acc1);
    store_lanes(row0 + 2u, col0, acc2);
    store_lanes(row0 + 3u, col0, acc3);
    store_lanes(row0 + 4u, col0, acc4);
    store_lanes(row0 + 5u, col0, acc5);
    store_lanes(row0 + 6u, col0, acc6);
    store_lanes(row0 + 7u, col0, acc7);
}

// Stores values[c] at out[row, col0 + 8c].
fn store_lanes(row: u32, col0: u32, values: vec4<f32>) {
    for (var c = 0u; c < 4u; c++) {
        store(row, col0 + c * LANES, values[c]);
    }
}
