//! Every shader module the GPU path compiles parses and validates with naga,
//! and every file in shaders/ is part of one: no GPU needed.

use std::collections::BTreeSet;
use std::path::Path;

use wgpu_mlp::gpu::SHADERS;

#[test]
fn every_shader_module_validates_with_naga() {
    for shader in SHADERS {
        let (name, source) = (shader.name, shader.source);
        let module =
            naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
        assert!(!module.entry_points.is_empty(), "{name} has no entry point");
    }
}

#[test]
fn every_file_in_shaders_is_in_a_module() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .map(|entry| entry.expect("a readable directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".wgsl"))
        .collect();
    let used: BTreeSet<String> = SHADERS.iter().flat_map(|s| s.files.iter().map(|f| f.to_string())).collect();
    assert_eq!(on_disk, used, "files in shaders/ versus files the modules are made of");
}
