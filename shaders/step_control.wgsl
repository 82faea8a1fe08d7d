// The step's control values, the one place the update kernels (sgd, momentum,
// adam) take them from; each declares `control` (3 floats: the learning rate,
// the global-norm clipping factor, the clip value) at its own binding.
//
// defines: clipped(grad)

// A gradient element as the step uses it: times the norm factor (1 without
// `clip_grad_norm`), then clamped to [-value, value] where a clip value is set
// (`clip_grad_value`; 3e38 and above means none, so NaN passes unclamped).
fn clipped(grad: f32) -> f32 {
    let g = grad * control[1];
    if (control[2] < 3.0e38) {
        return clamp(g, -control[2], control[2]);
    }
    return g;
}
