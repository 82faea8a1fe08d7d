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
        what: String,
        needed: u64,
        /// What `needed` and `allowed` count, e.g. "bytes".
        unit: &'static str,
        limit: &'static str,
        allowed: u64,
        advice: &'static str,
    },

    /// No GPU adapter was found, or the one named by WGPU_ADAPTER_NAME is absent.
    #[error("{0}")]
    NoAdapter(String),

    /// wgpu reported an error (device request, validation, out of memory, map).
    #[error("GPU error while {context}: {message}")]
    Gpu { context: String, message: String },

    /// The training loss became NaN or infinite.
    #[error("the training loss became {value} at epoch {epoch}; try a smaller `lr`, or scale the data (`scale`)")]
    NonFiniteLoss { epoch: usize, value: f32 },

    /// The user asked training to stop (Ctrl-C); it stopped after `epoch`.
    #[error("interrupted after epoch {epoch}")]
    Interrupted { epoch: usize },
}

impl Error {
    /// True for errors caused by what the user asked for, as opposed to the
    /// machine or the run: the CLI exits with code 2 for these.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Error::InvalidInput(_) | Error::ExceedsLimit { .. })
    }
}

pub type Result<T> = std::result::Result<T, Error>;
