//! `wgpu-mlp adapters`: the GPUs wgpu can see.

use std::io::Write;

use wgpu_mlp::gpu;

/// `wgpu-mlp adapters`: what wgpu finds, and a warning when only software is there.
pub(crate) fn list_adapters(json: bool) -> anyhow::Result<()> {
    let mut out = crate::stream::stdout();
    let found = gpu::adapters()?;
    let rows: Vec<serde_json::Value> = found
        .iter()
        .map(|(info, limits)| {
            serde_json::json!({
                "name": info.name,
                "backend": format!("{:?}", info.backend),
                "device_type": format!("{:?}", info.device_type),
                "driver": info.driver,
                "driver_info": info.driver_info,
                "max_buffer_size": limits.max_buffer_size,
                "max_storage_buffer_binding_size": limits.max_storage_buffer_binding_size,
                "max_compute_workgroup_storage_size": limits.max_compute_workgroup_storage_size,
                "max_compute_invocations_per_workgroup": limits.max_compute_invocations_per_workgroup,
                "max_compute_workgroups_per_dimension": limits.max_compute_workgroups_per_dimension,
            })
        })
        .collect();
    if json {
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    } else {
        for (info, limits) in &found {
            writeln!(out, "{} ({:?}, {:?})", info.name, info.backend, info.device_type)?;
            writeln!(out, "    driver: {} {}", info.driver, info.driver_info)?;
            writeln!(out,
                "    max buffer {} MiB, max storage binding {} MiB, workgroup memory {} KiB, {} invocations per workgroup, {} workgroups per dimension",
                limits.max_buffer_size >> 20,
                limits.max_storage_buffer_binding_size >> 20,
                limits.max_compute_workgroup_storage_size >> 10,
                limits.max_compute_invocations_per_workgroup,
                limits.max_compute_workgroups_per_dimension
            )?;
        }
    }
    if found.is_empty() {
        eprintln!("warning: {}", wgpu_mlp::gpu::NO_ADAPTER_HELP);
    } else if found.iter().all(|(info, _)| info.device_type == wgpu::DeviceType::Cpu) {
        eprintln!("warning: only software adapters were found; they run on the CPU cores, where --device cpu is usually faster");
    }
    Ok(())
}
