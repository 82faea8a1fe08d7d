//! Columns of a CSV file kept as text (an id, a group, a label of the row),
//! for predict to copy beside its answers: nothing in them is parsed, so a
//! string id is fine.

use std::io::Read;

use super::csv::{find_columns, ungzip, CsvOptions, TargetColumn};
use super::limits::Limited;
use crate::error::{Error, Result};

/// The text of some columns of every data row, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextColumns {
    /// The columns' names: the header's, or `column{i}` in a file without one.
    pub names: Vec<String>,
    /// One entry per data row, the columns' fields in `names`' order.
    pub rows: Vec<Vec<String>>,
}

/// Reads `columns` of CSV text (plain or gzip) from `input` as text, the
/// file read as [`load_csv_columns`](super::load_csv_columns) reads it with
/// the same `options` (skipped lines, header, delimiter), so row i here is
/// row i there; `name` names the input in messages.
pub fn load_csv_text(
    input: impl Read,
    name: &str,
    options: &CsvOptions,
    columns: &[TargetColumn],
) -> Result<TextColumns> {
    let bad = |message: String| Error::InvalidInput(format!("{name}: {message}"));
    let input = ungzip(input).map_err(|e| Error::io(format!("cannot read {name}"), e))?;
    let delimiter = if options.delimiter == 0 { b',' } else { options.delimiter };
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .delimiter(delimiter)
        .from_reader(Limited::new(input, delimiter));
    let failed = |e: ::csv::Error| {
        let message = e.to_string();
        match e.into_kind() {
            ::csv::ErrorKind::Io(source) => Error::io(format!("cannot read {name}"), source),
            _ => bad(message),
        }
    };
    // Skipped lines are metadata, whatever their bytes, as for the numbers.
    let mut skipped = ::csv::ByteRecord::new();
    for _ in 0..options.skip_rows {
        if !reader.read_byte_record(&mut skipped).map_err(failed)? {
            break;
        }
    }
    let mut record = ::csv::StringRecord::new();
    if !reader.read_record(&mut record).map_err(failed)? {
        return Err(bad(format!("no rows after skipping {}", options.skip_rows)));
    }
    // The header is found as the numeric loader finds it.
    let is_header = options.header.unwrap_or_else(|| record.iter().any(|field| field.parse::<f64>().is_err()));
    let header: Option<Vec<String>> = is_header.then(|| record.iter().map(str::to_string).collect());
    let found = find_columns("passthrough", columns, record.len(), header.as_deref()).map_err(bad)?;
    let names = found.iter().map(|&c| header.as_ref().map_or_else(|| format!("column{c}"), |h| h[c].clone())).collect();
    let mut rows = Vec::new();
    let mut is_data = !is_header;
    loop {
        if is_data {
            // A short row is the numeric loader's error to report.
            rows.push(found.iter().map(|&c| record.get(c).unwrap_or("").to_string()).collect());
        }
        is_data = true;
        if !reader.read_record(&mut record).map_err(failed)? {
            break;
        }
    }
    Ok(TextColumns { names, rows })
}
