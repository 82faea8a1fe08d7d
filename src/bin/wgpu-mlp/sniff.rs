//! The field delimiter of a CSV file, guessed from its first line when
//! `--delimiter` is not given: a semicolon- or tab-separated file (Excel in
//! many locales, most TSV exports) otherwise reads as one column per line.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The most of the file looked at; a first line is far shorter.
const SNIFF_BYTES: u64 = 1 << 16;

/// `;` or tab when the first line after `skip_rows` holds one of them and no
/// comma; None (a comma) otherwise, and for a file that cannot be read here
/// (the CSV reader then says why). Only a regular file is looked at: a pipe
/// or standard input (`csv:/dev/stdin`) can be read once only, by the reader
/// itself, and needs `--delimiter`.
pub(crate) fn sniff_delimiter(path: &Path, skip_rows: usize) -> Option<u8> {
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let mut file = std::fs::File::open(path).ok()?.take(SNIFF_BYTES);
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic).ok()?;
    let head = std::io::Cursor::new(magic).chain(file);
    let reader: Box<dyn Read> =
        if magic == [0x1f, 0x8b] { Box::new(flate2::read::GzDecoder::new(head)) } else { Box::new(head) };
    let line = BufReader::new(reader.take(SNIFF_BYTES)).split(b'\n').nth(skip_rows)?.ok()?;
    let count = |delimiter: u8| line.iter().filter(|&&b| b == delimiter).count();
    if count(b',') > 0 {
        return None;
    }
    [b';', b'\t'].into_iter().filter(|&d| count(d) > 0).max_by_key(|&d| count(d))
}
