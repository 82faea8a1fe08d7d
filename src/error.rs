//! The library's one error type. Each variant says what went wrong and, where
//! the user can fix it, what to change.

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting or shape the user gave cannot work (exit code 2 in the CLI).
    #[error("{0}")]
    InvalidInput(String),

    /// The model, batch or data needs more than the adapter allows (exit code 2).
    #[error("{what} needs {needed} {unit}, above the adapter's {limit} of {allowed}; {advice}")]
    ExceedsLimit {
        /// The resource, by its label and shape: "layer1.w (784 x 256 floats)".
        what: String,
        /// How much of `unit` it needs.
        needed: u64,
        /// What `needed` and `allowed` count, e.g. "bytes".
        unit: &'static str,
        /// The limit's name, as wgpu's `Limits` field or the kernel's own
        /// bound: "max_storage_buffer_binding_size".
        limit: &'static str,
        /// The most the adapter (or kernel) allows, in `unit`.
        allowed: u64,
        /// What to change to fit, naming settings in backticks: "use a smaller `batch_size`".
        advice: &'static str,
    },

    /// A run would need more host memory than the machine has free (exit code 2).
    #[error("{what} needs {} MiB of host memory, above the {} MiB this process can still get; {advice}", needed / (1 << 20), available / (1 << 20))]
    ExceedsHostMemory {
        /// What would be allocated: "training layers 10,100000000,1 on the CPU".
        what: String,
        /// Bytes it needs, estimated from the sizes before allocating.
        needed: u64,
        /// Bytes free: MemAvailable, capped by the address-space limit.
        available: u64,
        /// What to change to fit, naming settings in backticks.
        advice: &'static str,
    },

    /// No GPU adapter was found, or the one named by WGPU_ADAPTER_NAME is absent.
    #[error("{0}")]
    NoAdapter(String),

    /// wgpu reported an error (device request, validation, out of memory, map).
    #[error("GPU error while {context}: {message}")]
    Gpu {
        /// What the library was doing: "opening llvmpipe", "reading results back".
        context: String,
        /// wgpu's own message (the first error an error scope caught).
        message: String,
    },

    /// The training loss became NaN or infinite.
    #[error("the training loss became {value} at epoch {epoch}; try a smaller `lr`, or scale the data (`scale`)")]
    NonFiniteLoss {
        /// The epoch, counting from 1, whose training loss it was.
        epoch: usize,
        /// The loss read back: NaN or ±infinity.
        value: f32,
    },

    /// Lock-step verification found a parameter beyond the tolerance of the
    /// CPU reference (exit code 1): a device or driver bug, not bad input.
    #[error("verify: after epoch {epoch}, {tensor}{index:?} is {got} here and {want} on the CPU reference, beyond the tolerance (`verify_tolerance`)")]
    VerifyFailed {
        /// The epoch of the read-back, counting from 1 in this run.
        epoch: usize,
        /// `layers.{l}.weight` or `layers.{l}.bias`.
        tensor: String,
        /// The index in it: `[row, column]`, or `[i]` for a bias.
        index: Vec<usize>,
        /// The checked trainer's value.
        got: f32,
        /// The CPU reference's value.
        want: f32,
    },

    /// The user asked training to stop (Ctrl-C); it stopped after `epoch`.
    #[error("interrupted after epoch {epoch}")]
    Interrupted {
        /// Epochs done, counting from 1: the epoch the fit's hooks were asked
        /// to save (a run folder writes its checkpoint).
        epoch: usize,
    },

    /// Reading or writing a file failed for a reason of the machine, not of
    /// the path the user gave: a full disk, a read-only file system, a denied
    /// permission, a device error (exit code 1). A wrong path (one that does
    /// not exist, a folder for a file) is [`Error::InvalidInput`] instead.
    ///
    /// The message is `context` alone and the OS's reason is the
    /// [`source`](std::error::Error::source): reporters that walk the chain,
    /// as anyhow's `{:#}` in the CLI does, print "context: reason" once.
    /// Repeating the reason in the message would print it twice there.
    #[error("{context}")]
    Io {
        /// What was being done, naming the path: "cannot write runs/x/metrics.csv".
        context: String,
        /// The OS's reason; its `kind()` tells a full disk (StorageFull)
        /// from a denied permission (PermissionDenied) and the rest.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True for errors caused by what the user asked for, as opposed to the
    /// machine or the run: the CLI exits with code 2 for these.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::InvalidInput(_) | Error::ExceedsLimit { .. } | Error::ExceedsHostMemory { .. })
    }

    /// A failed read or write of a path the user named, `context` naming it.
    /// The kinds that mean the path itself is wrong (it does not exist, a
    /// folder where a file belongs or a file where a folder belongs) or the
    /// file's bytes are (a cut-short or corrupt gzip stream) are the user's to
    /// fix: [`Error::InvalidInput`], exit code 2. Every other kind is
    /// [`Error::Io`], exit code 1: the same command can work on another day or
    /// machine (disk full, permissions, EIO).
    pub(crate) fn io(context: String, source: std::io::Error) -> Error {
        use std::io::ErrorKind::*;
        match source.kind() {
            NotFound | NotADirectory | IsADirectory | InvalidData | UnexpectedEof => {
                Error::InvalidInput(format!("{context}: {source}"))
            }
            _ => Error::Io { context, source },
        }
    }
}

/// The library's result: every fallible function returns [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
