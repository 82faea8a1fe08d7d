//! Every shader in shaders/ parses and validates with naga: no GPU needed.

use std::path::Path;

#[test]
fn every_shader_validates_with_naga() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("shaders/ exists") {
        let path = entry.expect("a readable directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("a readable shader");
        let name = path.display();
        let module =
            naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(&source)));
        assert!(!module.entry_points.is_empty(), "{name} has no entry point");
        checked.push(path.file_name().expect("a file name").to_string_lossy().into_owned());
    }
    checked.sort();
    let expected = [
        "accuracy.wgsl",
        "adam.wgsl",
        "bias_add.wgsl",
        "fused_mlp.wgsl",
        "gather.wgsl",
        "matmul.wgsl",
        "momentum.wgsl",
        "mse.wgsl",
        "reduce.wgsl",
        "relu.wgsl",
        "sgd.wgsl",
        "sigmoid.wgsl",
        "softmax_cross_entropy.wgsl",
        "tanh.wgsl",
    ];
    assert_eq!(checked, expected);
}
