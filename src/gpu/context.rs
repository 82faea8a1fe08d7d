//! Adapter, device and queue, chosen by wgpu's environment conventions, with
//! the adapter's own limits; buffer creation that checks those limits first;
//! error scopes; and reading buffers back to the host.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};

/// Printed, with the reason, when no adapter can be had.
pub const NO_ADAPTER_HELP: &str = "no GPU adapter found; on a machine without a GPU install Mesa's \
software Vulkan driver (Debian/Ubuntu: apt-get install mesa-vulkan-drivers) or use --device cpu";

/// A part of a buffer of f32: `len` floats starting `offset` floats in.
#[derive(Clone, Copy, Debug)]
pub struct Region<'a> {
    /// The buffer the floats live in.
    pub buffer: &'a wgpu::Buffer,
    /// Where the region starts, in floats (not bytes) from the buffer's start.
    pub offset: u64,
    /// How many floats it spans.
    pub len: u64,
}

impl<'a> Region<'a> {
    /// The first `len` floats of `buffer`.
    pub fn new(buffer: &'a wgpu::Buffer, len: usize) -> Self {
        Self { buffer, offset: 0, len: len as u64 }
    }

    /// The region as a bind group entry's resource, offset and size in bytes.
    /// The offset must meet the adapter's `min_storage_buffer_offset_alignment`
    /// (wgpu validates it when the bind group is made).
    pub fn binding(&self) -> wgpu::BindingResource<'a> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer,
            offset: self.offset * 4,
            size: NonZeroU64::new(self.len * 4),
        })
    }
}

/// What a context has done, counted where it happens: the bench command
/// reports these per step.
#[derive(Debug, Default)]
pub struct Counters {
    dispatches: AtomicU64,
    submits: AtomicU64,
    readbacks: AtomicU64,
}

thread_local! {
    /// Bytes of every buffer this thread created (nothing is freed during a
    /// run). Per thread, so what one trainer's construction allocated is exact
    /// even while other threads (parallel tests) share the device.
    static BYTES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl Counters {
    /// Counts one compute dispatch; called by whatever records one into a
    /// pass (kernels.rs's `Dispatch::record`, the fused trainer).
    pub fn add_dispatch(&self) {
        self.dispatches.fetch_add(1, Ordering::Relaxed);
    }

    fn add_bytes(&self, bytes: u64) {
        BYTES.with(|total| total.set(total.get() + bytes));
    }
}

/// A reading of [`Counters`]; `bytes` counts this thread's buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Compute dispatches recorded since the context was made.
    pub dispatches: u64,
    /// Command buffers submitted through [`GpuContext::submit`].
    pub submits: u64,
    /// Buffers mapped back to the host by [`GpuContext::map_read`].
    pub readbacks: u64,
    /// Bytes of the buffers this thread created through the context's
    /// constructors, on any context.
    pub bytes: u64,
}

/// Every adapter wgpu finds on the backends WGPU_BACKEND allows, with its
/// limits; a WGPU_BACKEND that names no backend is an error.
pub fn adapters() -> Result<Vec<(wgpu::AdapterInfo, wgpu::Limits)>> {
    check_backend_env()?;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    Ok(pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(|adapter| (adapter.get_info(), adapter.limits()))
        .collect())
}

/// The names wgpu takes in WGPU_BACKEND (a comma-separated list).
const BACKEND_NAMES: [&str; 10] = ["vulkan", "vk", "dx12", "d3d12", "metal", "mtl", "opengl", "gles", "gl", "webgpu"];

/// wgpu skips a WGPU_BACKEND name it does not know with only a log line, so
/// `WGPU_BACKEND=bogus` would look like a machine without a GPU: refuse it,
/// naming the value.
fn check_backend_env() -> Result<()> {
    let Ok(value) = std::env::var("WGPU_BACKEND") else { return Ok(()) };
    let unknown: Vec<&str> =
        value.split(',').map(str::trim).filter(|name| !BACKEND_NAMES.contains(&name.to_lowercase().as_str())).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidInput(format!(
        "WGPU_BACKEND={value}: {} is not a backend; use vulkan, metal, dx12, gl or webgpu (comma-separated for several)",
        unknown.iter().map(|name| format!("'{name}'")).collect::<Vec<_>>().join(", ")
    )))
}

/// One adapter's device and queue. Cloning shares them.
#[derive(Clone, Debug)]
pub struct GpuContext {
    /// Opened with all of the adapter's limits, not wgpu's defaults.
    pub device: wgpu::Device,
    /// The device's one queue; submit through [`GpuContext::submit`] so it counts.
    pub queue: wgpu::Queue,
    /// The adapter's name, backend, device type (Cpu for lavapipe) and driver.
    pub info: wgpu::AdapterInfo,
    /// The limits the device was opened with (the adapter's own), checked
    /// before every allocation.
    pub limits: wgpu::Limits,
    /// The first error no error scope caught, kept instead of wgpu's default panic.
    uncaptured: Arc<Mutex<Option<String>>>,
    /// Dispatches, submits and read-backs so far, shared by every clone.
    pub counters: Arc<Counters>,
}

impl GpuContext {
    /// Picks the adapter named by WGPU_ADAPTER_NAME (a case-insensitive
    /// substring) or else wgpu's default, on the backends WGPU_BACKEND allows,
    /// and opens a device with all of the adapter's limits.
    pub fn new() -> Result<Self> {
        check_backend_env()?;
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = match std::env::var("WGPU_ADAPTER_NAME") {
            Ok(wanted) => {
                let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
                let names: Vec<String> =
                    adapters.iter().map(|a| format!("{} ({:?})", a.get_info().name, a.get_info().backend)).collect();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&wanted.to_lowercase()))
                    .ok_or_else(|| {
                        Error::NoAdapter(format!(
                            "WGPU_ADAPTER_NAME={wanted} matches no adapter; found: {}",
                            if names.is_empty() { "none".to_string() } else { names.join(", ") }
                        ))
                    })?
            }
            Err(_) => {
                let options = wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::from_env()
                        .unwrap_or(wgpu::PowerPreference::HighPerformance),
                    ..Default::default()
                };
                pollster::block_on(instance.request_adapter(&options))
                    .map_err(|e| Error::NoAdapter(format!("{NO_ADAPTER_HELP} ({e})")))?
            }
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let descriptor =
            wgpu::DeviceDescriptor { label: Some("wgpu-mlp"), required_limits: limits.clone(), ..Default::default() };
        let (device, queue) = pollster::block_on(adapter.request_device(&descriptor))
            .map_err(|e| Error::Gpu { context: format!("opening {}", info.name), message: e.to_string() })?;
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = Arc::clone(&uncaptured);
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            let mut first = sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            first.get_or_insert_with(|| error.to_string());
        }));
        Ok(Self { device, queue, info, limits, uncaptured, counters: Arc::default() })
    }

    /// The counters so far.
    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        Counts {
            dispatches: c.dispatches.load(Ordering::Relaxed),
            submits: c.submits.load(Ordering::Relaxed),
            readbacks: c.readbacks.load(Ordering::Relaxed),
            bytes: BYTES.with(std::cell::Cell::get),
        }
    }

    /// Submits one command buffer (every submit goes through here, to be
    /// counted) and returns its index, for [`GpuContext::wait_for`].
    pub fn submit(&self, encoder: wgpu::CommandEncoder) -> wgpu::SubmissionIndex {
        self.counters.submits.fetch_add(1, Ordering::Relaxed);
        self.queue.submit([encoder.finish()])
    }

    /// Blocks until the submission `index` has run: a trainer waits for the
    /// submit before the one it just made, so at most two are queued and a
    /// stop request is acted on within about two submits' work. Not a
    /// read-back: nothing is mapped.
    pub fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        let wait = wgpu::PollType::Wait { submission_index: Some(index), timeout: None };
        self.device
            .poll(wait)
            .map(drop)
            .map_err(|e| Error::Gpu { context: "waiting for the GPU".into(), message: e.to_string() })
    }

    /// A buffer with these initial bytes; counted.
    pub fn buffer_init(&self, label: &str, contents: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.counters.add_bytes(contents.len() as u64);
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: Some(label), contents, usage })
    }

    /// "name (backend, device type)", e.g. "llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)".
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {:?})", self.info.name, self.info.backend, self.info.device_type)
    }

    /// Runs `work` inside validation and out-of-memory error scopes and turns
    /// what they caught, or any earlier uncaught error, into [`Error::Gpu`].
    pub fn scoped<T>(&self, context: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let out_of_memory = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let result = work();
        let caught = pollster::block_on(validation.pop()).or(pollster::block_on(out_of_memory.pop()));
        let gpu_error = |message: String| Error::Gpu { context: context.to_string(), message };
        if let Some(error) = caught {
            return Err(gpu_error(error.to_string()));
        }
        let uncaptured = self.uncaptured.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(message) = uncaptured {
            return Err(gpu_error(message));
        }
        result
    }

    /// [`GpuContext::scoped`], also returning the bytes of the buffers `work` made.
    pub fn scoped_counting<T>(&self, context: &str, work: impl FnOnce() -> Result<T>) -> Result<(T, u64)> {
        let before = self.counts().bytes;
        let value = self.scoped(context, work)?;
        Ok((value, self.counts().bytes - before))
    }

    /// Checks that a buffer of `bytes` fits the adapter (and, for storage
    /// buffers, one binding) before wgpu is asked for it; the error names the
    /// limit and `advice` says what to reduce.
    pub fn check_size(&self, what: &str, bytes: u64, storage: bool, advice: &'static str) -> Result<()> {
        let mut checks = vec![("max_buffer_size", self.limits.max_buffer_size)];
        if storage {
            checks.push(("max_storage_buffer_binding_size", self.limits.max_storage_buffer_binding_size));
        }
        for (limit, allowed) in checks {
            if bytes > allowed {
                return Err(Error::ExceedsLimit {
                    what: what.to_string(),
                    needed: bytes,
                    unit: "bytes",
                    limit,
                    allowed,
                    advice,
                });
            }
        }
        Ok(())
    }

    /// A buffer holding `contents` (f32 or u32), after checking its size.
    pub fn upload<T: bytemuck::Pod>(
        &self,
        label: &str,
        contents: &[T],
        usage: wgpu::BufferUsages,
        advice: &'static str,
    ) -> Result<wgpu::Buffer> {
        let bytes = std::mem::size_of_val(contents) as u64;
        self.check_size(label, bytes, usage.contains(wgpu::BufferUsages::STORAGE), advice)?;
        Ok(self.buffer_init(label, bytemuck::cast_slice(contents), usage))
    }

    /// A zeroed storage buffer of `len` floats, after checking its size.
    pub fn zeros(
        &self,
        label: &str,
        len: usize,
        usage: wgpu::BufferUsages,
        advice: &'static str,
    ) -> Result<wgpu::Buffer> {
        let bytes = (len.max(1) as u64) * 4;
        self.check_size(label, bytes, usage.contains(wgpu::BufferUsages::STORAGE), advice)?;
        self.counters.add_bytes(bytes);
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage,
            mapped_at_creation: false,
        }))
    }

    /// A staging buffer the host can map, for [`GpuContext::read_back`].
    pub fn staging(&self, label: &str, len: usize) -> Result<wgpu::Buffer> {
        self.zeros(label, len, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, "read back less at once")
    }

    /// Copies `region` into `staging` (at least `region.len` floats, mappable),
    /// waits for the GPU, and returns the values.
    pub fn read_back(&self, region: Region<'_>, staging: &wgpu::Buffer) -> Result<Vec<f32>> {
        let mut encoder =
            self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read back") });
        encoder.copy_buffer_to_buffer(region.buffer, region.offset * 4, staging, 0, region.len * 4);
        self.submit(encoder);
        self.map_read(staging, region.len)
    }

    /// Waits for the GPU and returns the first `len` floats of a mappable
    /// buffer (MAP_READ | COPY_DST): one read-back.
    pub fn map_read(&self, buffer: &wgpu::Buffer, len: u64) -> Result<Vec<f32>> {
        let bytes = len * 4;
        self.counters.readbacks.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        buffer.map_async(wgpu::MapMode::Read, 0..bytes, move |result| {
            sender.send(result).ok();
        });
        let map_error = |message: String| Error::Gpu { context: "reading results back".into(), message };
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| map_error(e.to_string()))?;
        pollster::block_on(receiver.receive())
            .ok_or_else(|| map_error("the map callback never ran".into()))?
            .map_err(|e| map_error(e.to_string()))?;
        let values = {
            let view = buffer.get_mapped_range(0..bytes).map_err(|e| map_error(e.to_string()))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        buffer.unmap();
        Ok(values)
    }

    /// Reads a whole buffer of f32 back through a new staging buffer; for tests
    /// and one-off reads (the trainer keeps its staging buffer).
    pub fn read_buffer(&self, buffer: &wgpu::Buffer) -> Result<Vec<f32>> {
        let len = (buffer.size() / 4) as usize;
        let staging = self.staging("read_buffer.staging", len)?;
        self.read_back(Region::new(buffer, len), &staging)
    }
}
