// fused_train: many whole training steps of a small MLP in ONE workgroup and one
// dispatch. The parameters, gradients, optimizer state, each batch's rows and
// every activation live in one array (`pool`, in workgroup memory or in a
// storage buffer: the prelude before this file declares it and its
// pool_barrier()) for the whole dispatch: params and state loaded at the
// start and written back at the end, each batch's rows gathered from x and y
// through the epoch's row order, and nothing but pool_barrier between the
// phases of a step. Same math as src/cpu.rs:
//   forward     a_l = act_l(a_{l-1} · W_l + b_l)           per layer
//               (and z_l kept for a GELU layer)
//   loss        MSE: grad = 2 / (R * OUT) * (pred - y), loss sum of squares
//               CE:  grad = (m softmax(z) - y) / R, loss sum of m logsumexp(z) - y·z,
//                    m = sum_j y_j (1 for a one-hot row; a class weight scales it)
//               BCE: grad = (sigmoid(z) - y) / (R * OUT), loss sum of
//                    max(z, 0) - z y + log(1 + exp(-|z|))
//   backward    dW_l = a_{l-1}ᵀ · dZ_l, db_l = column sums of dZ_l,
//               dZ_{l-1} = (dZ_l · W_lᵀ) * act'(a_{l-1})   (act'(z_{l-1}) for GELU)
//   update      sgd, momentum or Adam (PyTorch forms), weight decay added to g
// Step s of an epoch takes positions [s * batch, s * batch + R) of the
// epoch's row order (R = batch but for a shorter last batch). After each
// epoch the test rows (if any) are scored in batches of `batch`, in order.
// Each epoch's sums go to the metrics ring; all sums run in a fixed order (no
// atomics), so runs repeat bit for bit.
// fused_evaluate: the loss sum of the current params over the whole training
// set, in order, in batches of `batch` rows, into control.eval_loss.
//
// binding  name     access      shape
// 0        params   uniform     FusedParams (layer sizes and pool offsets in floats)
// 1        weights  read_write  (P)  every W_l (IN_l, OUT_l) then b_l (OUT_l), layer 0 first
// 2        state    read_write  (S)  momentum: velocity (P); Adam: m (P) then v (P); sgd: unused (1)
// 3        x        read        (N + T, IN)   training inputs then test inputs, row-major
// 4        y        read        (N + T, OUT)  training targets then test targets
// 5        control  read_write  Control
// 6        ring     read_write  (E, ring_entry)  per epoch: loss sum, correct count, then
//                               the test loss sum and correct count when there are test rows
// 7        order    read        (E_o, N) u32  each epoch's training row order when
//                               shuffling (epoch e of a read-back at e * N), else one: 0, 1, 2, ...
//
// The pool (offsets from the host, B = batch rows):
//   [0, P) params | grads (P) | state (S) | batch_x (B, IN) | batch_y (B, OUT) |
//   act_l (B, OUT_l) per layer | pre_l (B, OUT_l) per GELU layer |
//   delta0, delta1 (B, max OUT_l) | reduce (2, WORKGROUP)
// Each phase splits its outputs into elements (or 4 x 4 blocks in forward and
// backward), one per invocation, striding by WORKGROUP, so any shape works; every invocation reaches every barrier (the loop bounds are
// uniform: from the uniform buffer or read through workgroupUniformLoad).

/// Invocations of the one workgroup, set by the host: 256 on a GPU; on a CPU
/// driver (lavapipe runs a workgroup on one thread) a single SIMD group, since
/// more invocations only add switches at every barrier.
override WORKGROUP: u32 = 256u;
/// The side of the square block of outputs one invocation of forward() and
/// backward() computes at a time: four vec4 sums, as clamped() gives four
/// indices (on lavapipe's one thread, loads bound the step: a block needs 8
/// per 16 multiply-adds, a column of 4 rows 5 per 4).
const TILE: u32 = 4u;
/// FusedParams.hidden and .output hold the codes of activation.wgsl, which
/// this file follows in its shader module.
/// FusedParams.loss.
const MSE: u32 = 0u;
const CROSS_ENTROPY: u32 = 1u;
const BCE: u32 = 2u;
/// FusedParams.optimizer.
const SGD: u32 = 0u;
const MOMENTUM: u32 = 1u;
const ADAM: u32 = 2u;

struct FusedParams {
    layers: u32,
    rows: u32,                // N
    batch: u32,               // B, rows per step (the last step may have fewer)
    epochs_per_dispatch: u32,
    hidden: u32,              // activation of layers 0 .. layers - 2
    output: u32,              // activation of the last layer (identity under cross-entropy)
    loss: u32,
    optimizer: u32,
    classify: u32,            // 1: count rows whose argmax matches the target's
    params_len: u32,          // P
    state_len: u32,           // S
    grads_off: u32,
    state_off: u32,
    batch_x_off: u32,         // the batch's rows (B, IN)
    batch_y_off: u32,         // and their targets (B, OUT)
    reduce_off: u32,
    delta0_off: u32,
    delta1_off: u32,
    negative_slope: f32,      // leaky relu's slope below 0
    test_rows: u32,           // T, scored after every epoch; 0: none
    lr: f32,
    weight_decay: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    order_stride: u32,        // N when each epoch has its own row order, else 0
    ring_entry: u32,          // floats per epoch in the ring: 2, or 4 with test rows
    sizes: array<vec4<u32>, 3>,    // layers + 1 sizes, input first
    w_off: array<vec4<u32>, 2>,    // W_l within the params block
    b_off: array<vec4<u32>, 2>,    // b_l within the params block
    act_off: array<vec4<u32>, 2>,  // a_l (B, OUT_l) in the pool
    pre_off: array<vec4<u32>, 2>,  // z_l (B, OUT_l) in the pool for a GELU layer, else unused
}

struct Control {
    adam_step: u32,    // optimizer steps so far (Adam's bias corrections use it)
    epochs_left: u32,  // epochs still to run in this submit; the host sets it before
    ring_pos: u32,     // the ring entry of the next epoch; the host sets 0 before
    eval_loss: f32,    // fused_evaluate's loss sum
}

@group(0) @binding(0) var<uniform> params: FusedParams;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> control: Control;
@group(0) @binding(6) var<storage, read_write> ring: array<f32>;
@group(0) @binding(7) var<storage, read> order: array<u32>;

var<workgroup> uniform_count: u32;

fn size(i: u32) -> u32 {
    return params.sizes[i / 4u][i % 4u];
}

fn w_off(l: u32) -> u32 {
    return params.w_off[l / 4u][l % 4u];
}

fn b_off(l: u32) -> u32 {
    return params.b_off[l / 4u][l % 4u];
}

fn act_off(l: u32) -> u32 {
    return params.act_off[l / 4u][l % 4u];
}

fn pre_off(l: u32) -> u32 {
    return params.pre_off[l / 4u][l % 4u];
}

fn activation(l: u32) -> u32 {
    return select(params.hidden, params.output, l + 1u == params.layers);
}

/// Where layer l reads its input (R, IN_l).
fn input_off(l: u32) -> u32 {
    if (l == 0u) {
        return params.batch_x_off;
    }
    return act_off(l - 1u);
}

fn delta_off(l: u32) -> u32 {
    return select(params.delta0_off, params.delta1_off, l % 2u == 1u);
}

/// pool <- params (and the optimizer state when `with_state`).
fn load(local: u32, with_state: bool) {
    for (var i = local; i < params.params_len; i += WORKGROUP) {
        pool[i] = weights[i];
    }
    if (with_state) {
        for (var i = local; i < params.state_len; i += WORKGROUP) {
            pool[params.state_off + i] = state[i];
        }
    }
    pool_barrier();
}

/// batch_x, batch_y <- the R rows at positions [start, start + R): rows
/// order[base + position] when `through_order`, else rows base + position.
fn gather(local: u32, start: u32, rows: u32, through_order: bool, base: u32) {
    let ins = size(0u);
    let outs = size(params.layers);
    let width = ins + outs;
    for (var i = local; i < rows * width; i += WORKGROUP) {
        let r = i / width;
        let c = i % width;
        var row = base + start + r;
        if (through_order) {
            row = order[row];
        }
        if (c < ins) {
            pool[params.batch_x_off + r * ins + c] = x[row * ins + c];
        } else {
            pool[params.batch_y_off + r * outs + c - ins] = y[row * outs + c - ins];
        }
    }
    pool_barrier();
}

/// a_l (R, OUT_l) for every layer, on the R gathered rows.
fn forward(local: u32, rows: u32) {
    for (var l = 0u; l < params.layers; l++) {
        let fan_in = size(l);
        let fan_out = size(l + 1u);
        let input = input_off(l);
        let w = w_off(l);
        // Each invocation takes a TILE x TILE block (rows x output columns),
        // so every input it loads serves TILE columns and every weight TILE rows.
        let col_tiles = (fan_out + TILE - 1u) / TILE;
        let tiles = (rows + TILE - 1u) / TILE * col_tiles;
        for (var i = local; i < tiles; i += WORKGROUP) {
            let r0 = (i / col_tiles) * TILE;
            let o0 = (i % col_tiles) * TILE;
            // Rows and columns past the block's end repeat its last; their sums are dropped.
            let rows_in = input + clamped(r0, rows) * fan_in;
            let cols = w + clamped(o0, fan_out);
            // a (R, IN) · W (IN, OUT): along a row of the input, down a column of W.
            let acc = block_sums(rows_in, 1u, cols, fan_out, fan_in);
            let cols_left = min(TILE, fan_out - o0);
            store_a(acc.r0, r0, rows, o0, cols_left, l);
            store_a(acc.r1, r0 + 1u, rows, o0, cols_left, l);
            store_a(acc.r2, r0 + 2u, rows, o0, cols_left, l);
            store_a(acc.r3, r0 + 3u, rows, o0, cols_left, l);
        }
        pool_barrier();
    }
}

/// first, first + 1, first + 2, first + 3, each at most end - 1.
fn clamped(first: u32, end: u32) -> vec4<u32> {
    return min(vec4<u32>(first, first + 1u, first + 2u, first + 3u), vec4<u32>(end - 1u));
}

/// A 4 x 4 block of sums: row i, column j is the sum over t < count of
/// pool[a[i] + t * a_step] * pool[b[j] + t * b_step], added in t order. Each
/// value loaded serves 4 sums. Four named rows: a matrix indexed by a
/// variable row would sit in memory.
struct Block {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

fn block_sums(a: vec4<u32>, a_step: u32, b: vec4<u32>, b_step: u32, count: u32) -> Block {
    var block = Block(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var t = 0u; t < count; t++) {
        let at_a = t * a_step;
        let at_b = t * b_step;
        let bs = vec4<f32>(pool[b.x + at_b], pool[b.y + at_b], pool[b.z + at_b], pool[b.w + at_b]);
        block.r0 += pool[a.x + at_a] * bs;
        block.r1 += pool[a.y + at_a] * bs;
        block.r2 += pool[a.z + at_a] * bs;
        block.r3 += pool[a.w + at_a] * bs;
    }
    return block;
}

/// Row r of layer l's block (its first `cols` values from column o0): z + b
/// through the activation into a_l (and z into z_l for GELU); nothing for a
/// row past the batch's `rows`.
fn store_a(acc: vec4<f32>, r: u32, rows: u32, o0: u32, cols: u32, l: u32) {
    if (r >= rows) {
        return;
    }
    let fan_out = size(l + 1u);
    let code = activation(l);
    for (var c = 0u; c < cols; c++) {
        let o = o0 + c;
        let at = r * fan_out + o;
        let z = acc[c] + pool[b_off(l) + o];
        if (code == GELU) {
            pool[pre_off(l) + at] = z;
        }
        pool[act_off(l) + at] = activate(code, params.negative_slope, z);
    }
}

/// Row k of a dW block (its first `cols` values from column o0) into dW at
/// `dw`; nothing for a row past `fan_in`.
fn store_dw(acc: vec4<f32>, k: u32, fan_in: u32, o0: u32, cols: u32, dw: u32, fan_out: u32) {
    if (k >= fan_in) {
        return;
    }
    for (var c = 0u; c < cols; c++) {
        pool[dw + k * fan_out + o0 + c] = acc[c];
    }
}

/// Row r of a dZ_{l-1} block (its first `cols` values from column k0), times
/// act' where `given` holds what it is evaluated at, into `delta`; nothing
/// for a row past `rows`.
fn store_dz(acc: vec4<f32>, r: u32, rows: u32, k0: u32, cols: u32, fan_in: u32, delta: u32, given: u32) {
    if (r >= rows) {
        return;
    }
    for (var c = 0u; c < cols; c++) {
        let at = r * fan_in + k0 + c;
        pool[delta + at] = acc[c] * derivative(params.hidden, params.negative_slope, pool[given + at]);
    }
}

/// The last layer's dZ (R, OUT) into its delta buffer; returns this
/// invocation's share of the batch's loss sum and correct rows.
fn loss(local: u32, rows: u32) -> vec2<f32> {
    let last = params.layers - 1u;
    let outs = size(params.layers);
    let pred = act_off(last);
    let grad = delta_off(last);
    let code = activation(last);
    var sums = vec2<f32>(0.0, 0.0);
    for (var r = local; r < rows; r += WORKGROUP) {
        let p = pred + r * outs;
        let t = params.batch_y_off + r * outs;
        let g = grad + r * outs;
        if (params.loss == CROSS_ENTROPY) {
            var top = pool[p];
            for (var j = 1u; j < outs; j++) {
                top = max(top, pool[p + j]);
            }
            var total = 0.0;
            var dot = 0.0;
            var mass = 0.0;
            for (var j = 0u; j < outs; j++) {
                total += exp(pool[p + j] - top);
                dot += pool[t + j] * (pool[p + j] - top);
                mass += pool[t + j];
            }
            sums.x += log(total) * mass - dot;
            let scale = 1.0 / f32(rows);
            for (var j = 0u; j < outs; j++) {
                pool[g + j] = scale * (exp(pool[p + j] - top) / total * mass - pool[t + j]);
            }
        } else if (params.loss == BCE) {
            // The last layer is the identity: pred holds the logits z.
            let scale = 1.0 / f32(rows * outs);
            for (var j = 0u; j < outs; j++) {
                let z = pool[p + j];
                let truth = pool[t + j];
                sums.x += max(z, 0.0) - z * truth + log(1.0 + exp(-abs(z)));
                pool[g + j] = scale * (1.0 / (1.0 + exp(-z)) - truth);
            }
        } else {
            let scale = 2.0 / f32(rows * outs);
            for (var j = 0u; j < outs; j++) {
                let diff = pool[p + j] - pool[t + j];
                sums.x += diff * diff;
                pool[g + j] = scale * diff * derivative(code, params.negative_slope, pool[p + j]);
            }
        }
        if (params.classify == 1u) {
            var best_p = 0u;
            var best_t = 0u;
            for (var j = 1u; j < outs; j++) {
                if (pool[p + j] > pool[p + best_p]) {
                    best_p = j;
                }
                if (pool[t + j] > pool[t + best_t]) {
                    best_t = j;
                }
            }
            sums.y += select(0.0, 1.0, best_p == best_t);
        }
    }
    pool_barrier();
    return sums;
}

/// Gradients of every layer into the grads block, last layer first.
fn backward(local: u32, rows: u32) {
    for (var step = 0u; step < params.layers; step++) {
        let l = params.layers - 1u - step;
        let fan_in = size(l);
        let fan_out = size(l + 1u);
        let input = input_off(l);
        let dz = delta_off(l);
        let w = w_off(l);
        let dw = params.grads_off + w;
        let db = params.grads_off + b_off(l);
        // Only read where l > 0, which is what the select guards.
        let prev = select(0u, l - 1u, l > 0u);
        // Where act' of layer l - 1 is evaluated: its output, or its z for GELU.
        let prev_given = select(act_off(prev), pre_off(prev), params.hidden == GELU);
        let prev_delta = delta_off(prev);
        // Each invocation takes a TILE x TILE block of dW_l (rows x columns),
        // or a column of db_l, or a TILE x TILE block of dZ_{l-1}, so every
        // value it loads serves TILE sums.
        let w_tiles = (fan_in + TILE - 1u) / TILE * ((fan_out + TILE - 1u) / TILE);
        let in_tiles = (fan_in + TILE - 1u) / TILE;
        let dz_tiles = select((rows + TILE - 1u) / TILE * in_tiles, 0u, l == 0u);
        for (var i = local; i < w_tiles + fan_out + dz_tiles; i += WORKGROUP) {
            if (i < w_tiles) {
                let k0 = (i % in_tiles) * TILE;
                let o0 = (i / in_tiles) * TILE;
                // Rows and columns past the block's end repeat its last; their sums are dropped.
                let ks = input + clamped(k0, fan_in);
                let os = dz + clamped(o0, fan_out);
                // inputᵀ · dZ: down a column of each, over the batch's rows.
                let acc = block_sums(ks, fan_in, os, fan_out, rows);
                let cols_left = min(TILE, fan_out - o0);
                store_dw(acc.r0, k0, fan_in, o0, cols_left, dw, fan_out);
                store_dw(acc.r1, k0 + 1u, fan_in, o0, cols_left, dw, fan_out);
                store_dw(acc.r2, k0 + 2u, fan_in, o0, cols_left, dw, fan_out);
                store_dw(acc.r3, k0 + 3u, fan_in, o0, cols_left, dw, fan_out);
            } else if (i < w_tiles + fan_out) {
                let o = i - w_tiles;
                var acc = 0.0;
                for (var r = 0u; r < rows; r++) {
                    acc += pool[dz + r * fan_out + o];
                }
                pool[db + o] = acc;
            } else {
                let t = i - w_tiles - fan_out;
                let r0 = (t / in_tiles) * TILE;
                let k0 = (t % in_tiles) * TILE;
                let dz_rows = dz + clamped(r0, rows) * fan_out;
                let w_rows = w + clamped(k0, fan_in) * fan_out;
                // dZ · Wᵀ: along a row of dZ and a row of W.
                let acc = block_sums(dz_rows, 1u, w_rows, 1u, fan_out);
                let cols_left = min(TILE, fan_in - k0);
                store_dz(acc.r0, r0, rows, k0, cols_left, fan_in, prev_delta, prev_given);
                store_dz(acc.r1, r0 + 1u, rows, k0, cols_left, fan_in, prev_delta, prev_given);
                store_dz(acc.r2, r0 + 2u, rows, k0, cols_left, fan_in, prev_delta, prev_given);
                store_dz(acc.r3, r0 + 3u, rows, k0, cols_left, fan_in, prev_delta, prev_given);
            }
        }
        pool_barrier();
    }
}

/// One optimizer update of every parameter; `step` is 1-based (Adam).
fn update(local: u32, step: u32) {
    let c1 = 1.0 - pow(params.beta1, f32(step));
    let c2 = 1.0 - pow(params.beta2, f32(step));
    let len = params.params_len;
    for (var i = local; i < len; i += WORKGROUP) {
        let w = pool[i];
        let g = pool[params.grads_off + i] + params.weight_decay * w;
        switch params.optimizer {
            case MOMENTUM: {
                let v = params.momentum * pool[params.state_off + i] + g;
                pool[params.state_off + i] = v;
                pool[i] = w - params.lr * v;
            }
            case ADAM: {
                let m = params.beta1 * pool[params.state_off + i] + (1.0 - params.beta1) * g;
                let v = params.beta2 * pool[params.state_off + len + i] + (1.0 - params.beta2) * g * g;
                pool[params.state_off + i] = m;
                pool[params.state_off + len + i] = v;
                pool[i] = w - params.lr * (m / c1) / (sqrt(v / c2) + params.eps);
            }
            default: {
                pool[i] = w - params.lr * g;
            }
        }
    }
    pool_barrier();
}

/// Every invocation's pair of sums into the reduce area, then invocation 0
/// adds them in index order; returns the totals on invocation 0 only.
fn reduce(local: u32, sums: vec2<f32>) -> vec2<f32> {
    pool[params.reduce_off + local] = sums.x;
    pool[params.reduce_off + WORKGROUP + local] = sums.y;
    pool_barrier();
    var total = vec2<f32>(0.0, 0.0);
    if (local == 0u) {
        for (var i = 0u; i < WORKGROUP; i++) {
            total += vec2<f32>(pool[params.reduce_off + i], pool[params.reduce_off + WORKGROUP + i]);
        }
    }
    // No invocation writes the area again before invocation 0 has read it:
    // the next write follows at least one more barrier.
    return total;
}

/// The loss sum and correct count of the T test rows, in batches of `batch`;
/// on invocation 0 only, as [`reduce`].
fn score_test(local: u32) -> vec2<f32> {
    let steps = (params.test_rows + params.batch - 1u) / params.batch;
    var sums = vec2<f32>(0.0, 0.0);
    for (var s = 0u; s < steps; s++) {
        let start = s * params.batch;
        let rows = min(params.batch, params.test_rows - start);
        // The test rows follow the N training rows in x and y.
        gather(local, start, rows, false, params.rows);
        forward(local, rows);
        sums += loss(local, rows);
    }
    return reduce(local, sums);
}

@compute @workgroup_size(WORKGROUP)
fn fused_train(@builtin(local_invocation_index) local: u32) {
    if (local == 0u) {
        uniform_count = min(params.epochs_per_dispatch, control.epochs_left);
    }
    let epochs = workgroupUniformLoad(&uniform_count);
    let ring_pos = control.ring_pos;
    var step = control.adam_step;
    load(local, true);
    let steps = (params.rows + params.batch - 1u) / params.batch;
    for (var epoch = 0u; epoch < epochs; epoch++) {
        let order_base = (ring_pos + epoch) * params.order_stride;
        var sums = vec2<f32>(0.0, 0.0);
        for (var s = 0u; s < steps; s++) {
            let start = s * params.batch;
            let rows = min(params.batch, params.rows - start);
            gather(local, start, rows, true, order_base);
            forward(local, rows);
            sums += loss(local, rows);
            backward(local, rows);
            step += 1u;
            update(local, step);
        }
        let total = reduce(local, sums);
        let slot = (ring_pos + epoch) * params.ring_entry;
        if (local == 0u && slot + 1u < arrayLength(&ring)) {
            ring[slot] = total.x;
            ring[slot + 1u] = total.y;
        }
        if (params.test_rows > 0u) {
            // The gather inside puts a barrier between reduce's read of its
            // area above and the next write to it.
            let test = score_test(local);
            if (local == 0u && slot + 3u < arrayLength(&ring)) {
                ring[slot + 2u] = test.x;
                ring[slot + 3u] = test.y;
            }
        }
    }
    // update() ended with a barrier, so the pool holds every invocation's writes.
    for (var i = local; i < params.params_len; i += WORKGROUP) {
        weights[i] = pool[i];
    }
    for (var i = local; i < params.state_len; i += WORKGROUP) {
        state[i] = pool[params.state_off + i];
    }
    if (local == 0u) {
        control.adam_step = step;
        control.epochs_left -= epochs;
        control.ring_pos = ring_pos + epochs;
    }
}

@compute @workgroup_size(WORKGROUP)
fn fused_evaluate(@builtin(local_invocation_index) local: u32) {
    load(local, false);
    let steps = (params.rows + params.batch - 1u) / params.batch;
    var sums = vec2<f32>(0.0, 0.0);
    for (var s = 0u; s < steps; s++) {
        let start = s * params.batch;
        let rows = min(params.batch, params.rows - start);
        gather(local, start, rows, false, 0u);
        forward(local, rows);
        sums += loss(local, rows);
    }
    let total = reduce(local, sums);
    if (local == 0u) {
        control.eval_loss = total.x;
    }
}
