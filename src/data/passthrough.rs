//! Columns of a CSV file kept as text (an id, a group, a label of the row),
//! for predict to copy beside its answers: nothing in them is parsed, so a
//! string id is fine.

use std::io::Read;

use super::csv::{find_columns, CsvOptions, CsvRows, TargetColumn};
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
    // Opened, skipped and with its header found as the numeric loader's is.
    let CsvRows { mut reader, first: mut record, header } = CsvRows::open(input, name, options)?;
    let is_header = header.is_some();
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
        if !reader.next_into(&mut record)? {
            break;
        }
    }
    Ok(TextColumns { names, rows })
}
