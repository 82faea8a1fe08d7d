//! Numeric CSV files, plain or gzip: a header found or declared, metadata lines
//! skipped, target columns by index or name, and every bad value reported with
//! its line and column.

use std::io::Read;
use std::path::Path;

use ndarray::Array2;

use super::Dataset;
use crate::error::{Error, Result};

/// A target column, by 0-based index or by header name (`--target`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetColumn {
    /// The column at this 0-based position; what a number parses as.
    Index(usize),
    /// The column whose header is this name (the file needs a header).
    Name(String),
}

impl std::str::FromStr for TargetColumn {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("a target column needs an index or a header name".into());
        }
        Ok(text.parse().map_or_else(|_| TargetColumn::Name(text.to_string()), TargetColumn::Index))
    }
}

/// How to read a CSV file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// The target columns; empty means the last column.
    pub target: Vec<TargetColumn>,
    /// Some(true): the first row (after the skipped ones) is a header; None: a
    /// header is detected (a first row with a field that is not a number).
    pub header: Option<bool>,
    /// Lines to skip before the header or data (scikit-learn's metadata line).
    pub skip_rows: usize,
    /// Turn one integer target column into classes.
    pub classify: bool,
    /// The number of classes; None infers largest label + 1.
    pub classes: Option<usize>,
}

/// Opens a file, undoing gzip when it starts with gzip's magic bytes.
pub(super) fn open(path: &Path) -> Result<Box<dyn Read>> {
    let unreadable = |e: std::io::Error| Error::io(format!("cannot read {}", path.display()), e);
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let mut magic = [0u8; 2];
    let read = file.read(&mut magic).map_err(unreadable)?;
    let file = std::fs::File::open(path).map_err(unreadable)?;
    if read == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::GzDecoder::new(file)))
    } else {
        Ok(Box::new(file))
    }
}

/// Reads `path` into a data set: the target columns become y (one-hot when
/// classifying), every other column becomes x.
pub fn load_csv(path: &Path, options: &CsvOptions) -> Result<Dataset> {
    let name = path.display();
    let bad = |message: String| Error::InvalidInput(format!("{name}: {message}"));
    let mut reader =
        ::csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(::csv::Trim::All).from_reader(open(path)?);
    let mut records = Vec::new();
    for record in reader.records().skip(options.skip_rows) {
        records.push(record.map_err(|e| {
            let message = e.to_string();
            match e.into_kind() {
                // A read that fails midway (EIO, or a gzip stream cut short).
                ::csv::ErrorKind::Io(source) => Error::io(format!("cannot read {name}"), source),
                _ => bad(message),
            }
        })?);
    }
    let Some(first) = records.first() else {
        return Err(bad(format!("no rows after skipping {}", options.skip_rows)));
    };
    let is_header = options.header.unwrap_or_else(|| first.iter().any(|field| field.parse::<f64>().is_err()));
    let header: Option<Vec<String>> = is_header.then(|| first.iter().map(str::to_string).collect());
    let width = first.len();
    let rows = &records[usize::from(is_header)..];
    if rows.is_empty() {
        return Err(bad("no data rows".into()));
    }
    let column_name = |c: usize| header.as_ref().map_or(format!("column {c}"), |h| format!("column {c} ({})", h[c]));

    let targets: Vec<usize> = if options.target.is_empty() {
        vec![width - 1]
    } else {
        options
            .target
            .iter()
            .map(|target| match target {
                TargetColumn::Index(i) if *i < width => Ok(*i),
                TargetColumn::Index(i) => {
                    Err(bad(format!("target column {i} does not exist; columns are 0..={}", width - 1)))
                }
                TargetColumn::Name(wanted) => match &header {
                    None => Err(bad(format!("target column '{wanted}' needs a header row, and the file has none"))),
                    Some(names) => names.iter().position(|n| n == wanted).ok_or_else(|| {
                        bad(format!("no column named '{wanted}'; the header has: {}", names.join(", ")))
                    }),
                },
            })
            .collect::<Result<_>>()?
    };
    if targets.len() >= width {
        return Err(bad("every column is a target; no input columns are left".into()));
    }
    if options.classify && targets.len() != 1 {
        return Err(bad(format!("`task` classify takes one target column, got {}", targets.len())));
    }

    let inputs = width - targets.len();
    let mut x = Vec::with_capacity(rows.len() * inputs);
    let mut y = Vec::with_capacity(rows.len() * targets.len());
    for record in rows {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != width {
            return Err(bad(format!("line {line} has {} fields, but the first row has {width}", record.len())));
        }
        for (c, field) in record.iter().enumerate() {
            let value: f32 = field
                .parse()
                .map_err(|_| bad(format!("line {line}, {}: '{field}' is not a number", column_name(c))))?;
            if !value.is_finite() {
                return Err(bad(format!("line {line}, {}: {field} is not a finite number", column_name(c))));
            }
            if targets.contains(&c) {
                y.push(value);
            } else {
                x.push(value);
            }
        }
    }
    let x = Array2::from_shape_vec((rows.len(), inputs), x).expect("every row has `inputs` features");
    if !options.classify {
        let y = Array2::from_shape_vec((rows.len(), targets.len()), y).expect("every row has its targets");
        return Ok(Dataset { x, y, classes: None });
    }
    let mut labels = Vec::with_capacity(y.len());
    for (row, &value) in rows.iter().zip(&y) {
        if value < 0.0 || value.fract() != 0.0 {
            let line = row.position().map_or(0, |p| p.line());
            return Err(bad(format!("line {line}: class label {value} is not a whole number >= 0")));
        }
        labels.push(value as usize);
    }
    let classes = options.classes.unwrap_or_else(|| labels.iter().max().map_or(1, |m| m + 1));
    Dataset::classification(x, &labels, classes).map_err(|e| bad(e.to_string()))
}
