// regression_sums: a regression's validation errors without reading the
// predictions back. For each output column c of a batch's pred (B, OUT)
// against expected (B, OUT), the sums over its rows of |e| and e^2, with e
// the model's answer minus the target (the answer is sigmoid(logit) under
// bce, else the output itself), added in row order to the running metrics
// metrics[slot + 2c] and metrics[slot + 2c + 1]; the host turns them into
// MAE, RMSE and R² (src/metrics.rs RegressionReport::from_sums).
//
// binding  name      access      shape
// 0        params    uniform     RegressionParams
// 1        pred      read        (B, OUT)
// 2        expected  read        (B, OUT)
// 3        metrics   read_write  the running sums
//
// One invocation per column.

struct RegressionParams {
    rows: u32,
    cols: u32,
    slot: u32,
    sigmoid: u32,
}

@group(0) @binding(0) var<uniform> params: RegressionParams;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> expected: array<f32>;
@group(0) @binding(3) var<storage, read_write> metrics: array<f32>;

@compute @workgroup_size(64)
fn regression_sums(@builtin(global_invocation_id) id: vec3<u32>) {
    let c = id.x;
    if (c >= params.cols) {
        return;
    }
    var absolute = 0.0;
    var squared = 0.0;
    for (var r = 0u; r < params.rows; r++) {
        let i = r * params.cols + c;
        let output = pred[i];
        let answer = select(output, 1.0 / (1.0 + exp(-output)), params.sigmoid == 1u);
        let e = answer - expected[i];
        absolute += abs(e);
        squared += e * e;
    }
    metrics[params.slot + 2u * c] += absolute;
    metrics[params.slot + 2u * c + 1u] += squared;
}
