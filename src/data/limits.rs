//! Length limits on CSV text, checked on the bytes as they stream in, before
//! the csv crate buffers them: `csv:/dev/zero` or a file that is one endless
//! line must stop with an error, in bounded memory, not grow until the
//! machine runs out.

use std::io::Read;

/// The longest field, in bytes. A number needs at most a few dozen
/// characters and a header name a few hundred; 1 MiB is far above either.
pub const MAX_FIELD_BYTES: usize = 1 << 20;

/// The longest record (line, outside quotes), in bytes: a million columns
/// of 16 characters. The csv crate holds one whole record in memory.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// The most fields in one record. The csv crate keeps 8 bytes per field
/// beside the text, so a line of bare commas would otherwise cost 4x its
/// length; a million columns is far beyond any table this trainer reads.
pub const MAX_FIELDS: usize = 1 << 20;

/// A reader that counts what the csv crate will buffer (the current field,
/// record and field count, tracking quotes as RFC 4180 does: `""` inside a
/// quoted field toggles twice) and fails with InvalidData past a limit.
pub(super) struct Limited<R> {
    inner: R,
    /// The byte between fields.
    delimiter: u8,
    in_quotes: bool,
    field: usize,
    record: usize,
    fields: usize,
    /// Physical lines seen so far, for the message (1-based line = lines + 1).
    lines: u64,
}

impl<R: Read> Limited<R> {
    pub(super) fn new(inner: R, delimiter: u8) -> Self {
        Self { inner, delimiter, in_quotes: false, field: 0, record: 0, fields: 1, lines: 0 }
    }

    fn check(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        for &byte in bytes {
            match byte {
                b'"' => self.in_quotes = !self.in_quotes,
                b'\n' | b'\r' if !self.in_quotes => (self.field, self.record, self.fields) = (0, 0, 1),
                _ if byte == self.delimiter && !self.in_quotes => (self.field, self.fields) = (0, self.fields + 1),
                _ => {}
            }
            if byte == b'\n' {
                self.lines += 1;
            }
            self.field += 1;
            self.record += 1;
            let line = self.lines + 1;
            let too_long = if self.field > MAX_FIELD_BYTES {
                Some(format!(
                    "line {line}: a field is longer than {} MiB, the limit for one field",
                    MAX_FIELD_BYTES >> 20
                ))
            } else if self.record > MAX_RECORD_BYTES {
                Some(format!(
                    "line {line}: a record is longer than {} MiB, the limit for one line",
                    MAX_RECORD_BYTES >> 20
                ))
            } else if self.fields > MAX_FIELDS {
                Some(format!("line {line}: a record has more than {MAX_FIELDS} fields, the limit for one line"))
            } else {
                None
            };
            if let Some(message) = too_long {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.check(&buf[..n])?;
        Ok(n)
    }
}
