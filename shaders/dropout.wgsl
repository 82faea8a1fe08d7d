// Dropout's masks, a prelude of the matmul modules, whose epilogue drops a
// hidden layer's units in training steps (matmul_common.wgsl): whether a step
// keeps element `index` of layer `layer`'s (B, OUT) block, from a hash of
// (seed, step, layer, index) computed exactly as src/dropout.rs does
// (lowbias32 chained over the words): kept when the top 24 bits of the hash,
// as a fraction of 2^24, are at least p.
//
// defines: dropout_keeps(seed, step, layer, index, p)

fn dropout_mix(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

fn dropout_keeps(seed: vec2<u32>, step: u32, layer: u32, index: u32, p: f32) -> bool {
    let h = dropout_mix(seed.x ^ dropout_mix(seed.y ^ dropout_mix(step ^ dropout_mix(layer ^ dropout_mix(index)))));
    return f32(h >> 8u) * (1.0 / 16777216.0) >= p;
}
