//! Standard output and error as the commands write them. A failed write says
//! which stream failed ("cannot write to standard output: No space left on
//! device"), since the OS's reason alone reads like a file of the run's. Every
//! write to stdout goes through here, never `println!`, which panics on a
//! failed write.
//!
//! A closed pipe (EPIPE: `wgpu-mlp ... | head -1`, the reader took what it
//! wanted and left) is no failure: `main` ends the command quietly with exit
//! code 0, as `head`'s reader would expect. Any other failure exits 1: a full
//! disk or a device error is the machine's, not the user's input.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Standard output or error, naming itself in its write errors.
pub(crate) struct Stream {
    name: &'static str,
    inner: Box<dyn Write>,
}

/// Set once a process should write nothing (a data-parallel rank but the first).
static SILENT: AtomicBool = AtomicBool::new(false);

/// From now on [`stdout`] and [`stderr`] write nowhere.
#[cfg(feature = "mpi")]
pub(crate) fn silence() {
    SILENT.store(true, Ordering::Relaxed);
}

fn or_sink(stream: impl Write + 'static) -> Box<dyn Write> {
    if SILENT.load(Ordering::Relaxed) {
        Box::new(io::sink())
    } else {
        Box::new(stream)
    }
}

pub(crate) fn stdout() -> Stream {
    Stream { name: "standard output", inner: or_sink(io::stdout()) }
}

pub(crate) fn stderr() -> Stream {
    Stream { name: "standard error", inner: or_sink(io::stderr()) }
}

impl Stream {
    /// Keeps the error's kind (write_all retries Interrupted; main looks for
    /// BrokenPipe) and names the stream; the OS's reason is the source.
    fn failed(&self, source: io::Error) -> io::Error {
        io::Error::new(source.kind(), StreamError { stream: self.name, source })
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.failed(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.failed(e))
    }
}

/// "cannot write to standard output", caused by the OS's error.
#[derive(Debug)]
struct StreamError {
    stream: &'static str,
    source: io::Error,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write to {}", self.stream)
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Whether `error` is standard output's reader having gone away (EPIPE).
pub(crate) fn is_closed_stdout(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|e| {
            e.kind() == io::ErrorKind::BrokenPipe
                && e.get_ref()
                    .and_then(|inner| inner.downcast_ref::<StreamError>())
                    .is_some_and(|s| s.stream == "standard output")
        })
    })
}
