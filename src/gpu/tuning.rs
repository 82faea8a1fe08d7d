//! The matmul kernel chosen by measurement: the first product of a shape
//! class on an adapter times every candidate kernel on it, and the fastest
//! is kept in a small file in the user's cache folder
//! (`$XDG_CACHE_HOME/wgpu-mlp/matmul-tuning.json`, else `~/.cache/...`), per
//! adapter and driver, so later runs reuse it without timing. The choices of
//! an adapter hold only while its name, backend, driver and driver info are
//! the ones they were timed on; a file that cannot be read as such is
//! ignored and rewritten. `--matmul registers|workgroup` skips all of this,
//! and `WGPU_MLP_MATMUL_TUNING=off` takes the device type's kernel instead
//! (reproducible runs, tests).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Value};

use super::context::Region;
use super::kernels::Kernels;
use super::settings::MatmulKernel;
use super::uniforms::MatmulParams;
use crate::error::{Error, Result};

/// The environment variable that turns tuning off: `off` or `0`.
pub const TUNING_ENV: &str = "WGPU_MLP_MATMUL_TUNING";

/// The cache file under the cache folder.
const CACHE_FILE: &str = "wgpu-mlp/matmul-tuning.json";

/// The file format's version; a file of another is ignored and rewritten.
const CACHE_VERSION: u64 = 1;

/// Timed submits per candidate, after one untimed (which compiles the
/// pipeline on lavapipe) and one that sizes them; the median is compared.
const TIMED_REPS: usize = 3;

/// A timed submit holds about this much work, repeats of the product, so
/// that the cost of a submit and its wait (tens to hundreds of microseconds)
/// does not decide between kernels whose products take less.
const TIMED_SUBMIT_SECONDS: f64 = 0.002;

/// The most repeats of a product in one timed submit.
const MAX_REPEATS: usize = 64;

/// A class's product is timed at most this large in each dimension, so the
/// first run of a 4096-wide net on lavapipe times seconds, not minutes.
const TIMED_MAX_DIM: u32 = 512;

/// A product of fewer multiply-adds than this takes the device type's kernel
/// untimed: its time is the dispatch's overhead whichever kernel runs it,
/// while timing it costs the compile of every candidate (a second or more
/// on lavapipe for a small net's five classes).
pub const TUNED_MIN_MACS: u64 = 1 << 18;

/// Whether matmuls are tuned: `WGPU_MLP_MATMUL_TUNING` is not `off` or `0`.
pub fn tuning_enabled() -> bool {
    !matches!(std::env::var(TUNING_ENV).as_deref().map(str::trim), Ok("off" | "0"))
}

/// `$XDG_CACHE_HOME/wgpu-mlp/matmul-tuning.json`, else under `$HOME/.cache`;
/// None when neither is set (to an absolute path, as the XDG spec asks).
pub fn cache_path() -> Option<PathBuf> {
    let absolute = |name: &str| std::env::var_os(name).map(PathBuf::from).filter(|path| path.is_absolute());
    let folder = absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|home| home.join(".cache")))?;
    Some(folder.join(CACHE_FILE))
}

/// What a cache's choices hold for: one adapter and its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterKey {
    /// The adapter's name: "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// "Vulkan", "Metal", ...
    pub backend: String,
    /// The driver's name: "llvmpipe".
    pub driver: String,
    /// The driver's version: "Mesa 25.0.7-1~bpo12+1 (LLVM 15.0.6)".
    pub driver_info: String,
}

impl AdapterKey {
    /// The key of the adapter `info` describes.
    pub fn of(info: &wgpu::AdapterInfo) -> Self {
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
        }
    }

    fn to_json(&self) -> Value {
        json!({ "name": self.name, "backend": self.backend, "driver": self.driver, "driver_info": self.driver_info })
    }

    fn matches(&self, entry: &Value) -> bool {
        entry.get("adapter") == Some(&self.to_json())
    }

    fn same_adapter(&self, entry: &Value) -> bool {
        let field = |name: &str| entry.get("adapter").and_then(|a| a.get(name)).and_then(Value::as_str);
        field("name") == Some(&self.name) && field("backend") == Some(&self.backend)
    }
}

/// The class a product belongs to: each of M, K and N rounded up to a power
/// of 4 (1, 4, 16, 64, 256, 1024, ...), and the transposes, as
/// "m256.k1024.n256.ta0.tb1". Shapes of a class run alike, so one timing
/// stands for the class.
pub fn shape_class(params: &MatmulParams) -> String {
    let round = |x: u32| {
        let mut bound = 1u64;
        while bound < u64::from(x) {
            bound *= 4;
        }
        bound
    };
    let MatmulParams { m, k, n, trans_a, trans_b, .. } = *params;
    format!("m{}.k{}.n{}.ta{trans_a}.tb{trans_b}", round(m), round(k), round(n))
}

/// The kernel chosen for each shape class on one adapter, read from the
/// cache file and added to as classes are timed.
#[derive(Debug)]
pub struct MatmulTuning {
    /// The cache file; None: choices live for the process only.
    path: Option<PathBuf>,
    key: AdapterKey,
    choices: Mutex<BTreeMap<String, MatmulKernel>>,
    /// The kernels products of this process ran with, for descriptions.
    used: Mutex<BTreeSet<&'static str>>,
}

fn kernel_named(name: &str) -> Option<MatmulKernel> {
    MatmulKernel::ALL.into_iter().find(|kernel| kernel.name() == name)
}

/// The file's entries, or none where it is missing, unreadable, not JSON of
/// this version or otherwise not a cache: such a file is rewritten whole.
fn read_entries(path: &Path) -> Vec<Value> {
    let Some(file) = std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok()) else {
        return Vec::new();
    };
    match (file.get("version").and_then(Value::as_u64), file.get("adapters").and_then(Value::as_array)) {
        (Some(CACHE_VERSION), Some(entries)) => entries.clone(),
        _ => Vec::new(),
    }
}

impl MatmulTuning {
    /// The choices `path` holds for the adapter `key`; none when the file is
    /// missing or corrupt or holds them for another driver.
    pub fn load(path: Option<PathBuf>, key: AdapterKey) -> Self {
        let entries = path.as_deref().map(read_entries).unwrap_or_default();
        let choices = entries
            .iter()
            .find(|entry| key.matches(entry))
            .and_then(|entry| entry.get("choices").and_then(Value::as_object))
            .map(|choices| {
                let known = |(class, kernel): (&String, &Value)| Some((class.clone(), kernel_named(kernel.as_str()?)?));
                choices.iter().filter_map(known).collect()
            })
            .unwrap_or_default();
        Self { path, key, choices: Mutex::new(choices), used: Mutex::new(BTreeSet::new()) }
    }

    /// The kernel chosen for `class`, if it was timed on this adapter and driver.
    pub fn choice(&self, class: &str) -> Option<MatmulKernel> {
        self.choices.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(class).copied()
    }

    /// Keeps `kernel` for `class` and rewrites the cache file atomically with
    /// it: this adapter's entry replaced (one of another driver dropped),
    /// other adapters' kept.
    pub fn record(&self, class: &str, kernel: MatmulKernel) -> Result<()> {
        let choices = {
            let mut choices = self.choices.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            choices.insert(class.to_string(), kernel);
            choices.iter().map(|(class, kernel)| (class.clone(), Value::from(kernel.name()))).collect()
        };
        let Some(path) = &self.path else { return Ok(()) };
        let mut entries = read_entries(path);
        entries.retain(|entry| !self.key.same_adapter(entry));
        entries.push(json!({ "adapter": self.key.to_json(), "choices": Value::Object(choices) }));
        let file = json!({ "version": CACHE_VERSION, "adapters": entries });
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|e| Error::io(format!("cannot make the cache folder {}", folder.display()), e))?;
        }
        crate::report::write_atomically(path, |out| {
            serde_json::to_writer_pretty(&mut *out, &file)?;
            std::io::Write::write_all(out, b"\n")
        })
    }

    pub(super) fn mark_used(&self, kernel: MatmulKernel) {
        self.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(kernel.name());
    }

    /// "tuned: registers" (the kernels this process's products ran with).
    pub(super) fn describe(&self) -> String {
        let used = self.used.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match used.is_empty() {
            true => "tuned".to_string(),
            false => format!("tuned: {}", used.iter().copied().collect::<Vec<_>>().join("+")),
        }
    }
}

/// The fastest of `candidates` on the product `params` (capped at
/// TIMED_MAX_DIM a side): each run once untimed, then in TIMED_REPS submits
/// of about TIMED_SUBMIT_SECONDS each, waited for; the smallest median wins.
pub(super) fn fastest(kernels: &Kernels, candidates: &[MatmulKernel], params: &MatmulParams) -> Result<MatmulKernel> {
    let ctx = kernels.context();
    let (m, k, n) = (params.m.min(TIMED_MAX_DIM), params.k.min(TIMED_MAX_DIM), params.n.min(TIMED_MAX_DIM));
    let timed = MatmulParams::new(m, k, n, params.trans_a == 1, params.trans_b == 1);
    // Made on the device itself, not counted: they live only for the timing.
    let scratch = |label: &str, floats: u32| {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: u64::from(floats.max(1)) * 4,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (a, b, out) = (scratch("tuning.a", m * k), scratch("tuning.b", k * n), scratch("tuning.out", m * n));
    let regions = (Region::new(&a, (m * k) as usize), Region::new(&b, (k * n) as usize));
    let out = Region::new(&out, (m * n) as usize);
    let mut best: Option<(f64, MatmulKernel)> = None;
    for &kernel in candidates {
        let dispatch = kernels.matmul_on(kernel, "tuning.matmul", regions.0, regions.1, out, timed)?;
        // `dispatches` products in one submit, waited for: seconds per product.
        let run = |dispatches: usize| -> Result<f64> {
            let start = Instant::now();
            ctx.scoped("timing a matmul kernel", || {
                let mut encoder = ctx.device.create_command_encoder(&Default::default());
                {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    (0..dispatches).for_each(|_| dispatch.record(&mut pass));
                }
                let index = ctx.submit(encoder);
                ctx.wait_for(index)
            })?;
            Ok(start.elapsed().as_secs_f64() / dispatches as f64)
        };
        // The first compiles the pipeline (on lavapipe); the second says how
        // many products fill a timed submit, so a submit's own cost fades.
        run(1)?;
        let repeats = ((TIMED_SUBMIT_SECONDS / run(1)?.max(1e-9)) as usize).clamp(1, MAX_REPEATS);
        let mut seconds = (0..TIMED_REPS).map(|_| run(repeats)).collect::<Result<Vec<f64>>>()?;
        seconds.sort_by(f64::total_cmp);
        let median = seconds[seconds.len() / 2];
        if best.is_none_or(|(fastest, _)| median < fastest) {
            best = Some((median, kernel));
        }
    }
    Ok(best.expect("at least one candidate").1)
}
