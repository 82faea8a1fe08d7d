//! Numeric CSV files, plain or gzip: a header found or declared, metadata lines
//! skipped, target columns by index or name, and every bad value reported with
//! its line and column.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use ndarray::Array2;

use super::encode::{is_missing, Missing, MAX_CATEGORIES};
use super::limits::Limited;
use super::{class_count, Dataset};
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
    /// The number of classes; None infers largest label + 1 (see
    /// [`MAX_CLASSES`](super::MAX_CLASSES) for what is refused).
    pub classes: Option<usize>,
    /// The byte between fields; 0 means a comma (the default).
    pub delimiter: u8,
    /// Columns kept out of the inputs (`ignore_columns`, `id_column`): not
    /// read, so they may hold any text. Only [`load_csv_with_layout`] uses it.
    pub ignore: Vec<TargetColumn>,
    /// Input columns holding categories (`categorical`), read as codes (see
    /// [`CsvLayout::texts`]). Only [`load_csv_with_layout`] uses it; for
    /// [`load_csv_columns`], [`ModelColumns::categorical`] says it.
    pub categorical: Vec<TargetColumn>,
    /// What a missing value (see [`is_missing`]) does: an error naming its
    /// line and column; with `mean` or `median`, NaN in x for the
    /// [`Encoder`](super::Encoder) to fill (a missing target is still an
    /// error); with `drop`, the row is left out.
    pub missing: Missing,
    /// Refuse a target outside [0, 1], naming its line: the targets of a
    /// binary cross-entropy (`loss` bce). Ignored with `classify`.
    pub unit_targets: bool,
    /// Columns naming each row's group (`group`; a sensitive attribute for
    /// the per-group report of [`fairness`](crate::fairness)): each is read
    /// as a categorical input, as `categorical` reads one, and
    /// [`CsvLayout::groups`] lists them, so the caller can take them out of
    /// the inputs again. Only [`load_csv_with_layout`] uses it; for
    /// [`load_csv_columns`], [`ModelColumns::groups`] says it.
    pub group: Vec<TargetColumn>,
}

/// gzip's first two bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// `input` as it is, or undone when it starts with gzip's magic bytes. The
/// bytes looked at are handed on, not read twice: a pipe or standard input
/// cannot be opened again.
fn ungzip<'a>(mut input: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut magic = [0u8; 2];
    let mut seen = 0;
    // A pipe may hand over one byte at a time, so read until two or the end.
    while seen < magic.len() {
        match input.read(&mut magic[seen..]) {
            Ok(0) => break,
            Ok(n) => seen += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let input = std::io::Cursor::new(magic).take(seen as u64).chain(input);
    if seen == 2 && magic == GZIP_MAGIC {
        Ok(Box::new(Gunzip(flate2::read::GzDecoder::new(input))))
    } else {
        Ok(Box::new(input))
    }
}

/// gzip's decoder, its complaints about the stream told as bad data: flate2
/// reports a corrupt header or deflate stream as ErrorKind::InvalidInput,
/// which would read as a failing machine (exit code 1), not a bad file (2).
struct Gunzip<R>(flate2::read::GzDecoder<R>);

impl<R: Read> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            _ => e,
        })
    }
}

/// Opens a file once, undoing gzip when it starts with gzip's magic bytes:
/// the reader [`load_csv_with_layout`] and [`load_csv_columns`] take.
pub fn open_csv(path: &Path) -> Result<Box<dyn Read>> {
    open(path)
}

/// Opens a file once, undoing gzip when it starts with gzip's magic bytes.
pub(super) fn open(path: &Path) -> Result<Box<dyn Read>> {
    let unreadable = |e: std::io::Error| Error::io(format!("cannot read {}", path.display()), e);
    let file = std::fs::File::open(path).map_err(unreadable)?;
    ungzip(file).map_err(unreadable)
}

/// Reads `path` into a data set: the target columns become y (one-hot when
/// classifying), every other column becomes x.
pub fn load_csv(path: &Path, options: &CsvOptions) -> Result<Dataset> {
    load_csv_from(open(path)?, &path.display().to_string(), options)
}

/// Reads CSV text (plain or gzip) from `input`, standard input say, as
/// [`load_csv`] reads a file; `name` names it in messages.
pub fn load_csv_from(input: impl Read, name: &str, options: &CsvOptions) -> Result<Dataset> {
    Ok(load_csv_with_layout(input, name, options)?.0)
}

/// Where a file's columns went: input i of the model is column `inputs[i]`,
/// target j is `targets[j]`; columns in neither were not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvLayout {
    /// The header row, where the file has one.
    pub header: Option<Vec<String>>,
    /// The 0-based columns of the inputs, in the model's order.
    pub inputs: Vec<usize>,
    /// The 0-based columns of the targets; empty when the file has none.
    pub targets: Vec<usize>,
    /// The fields of each row: more than inputs and targets where columns
    /// were ignored (`ignore_columns`) or, in predict, not read.
    pub width: usize,
    /// One entry per input: None for a number column; for a categorical
    /// column, its distinct texts in the order first seen, so value k of
    /// that column in x stands for `texts[k]` (NaN: missing).
    pub texts: Vec<Option<Vec<String>>>,
    /// Data rows left out because a value was missing (`missing` drop).
    pub dropped: usize,
    /// The 0-based columns of the groups (`group`), in the order given; each
    /// is also a categorical input (in `inputs`) until taken out with
    /// [`CsvLayout::without_inputs`].
    pub groups: Vec<usize>,
}

impl CsvLayout {
    /// `columns` as another file can find them again: by header name where
    /// this file has a header, else by 0-based index.
    pub fn named(&self, columns: &[usize]) -> Vec<TargetColumn> {
        columns
            .iter()
            .map(|&c| match &self.header {
                Some(names) => TargetColumn::Name(names[c].clone()),
                None => TargetColumn::Index(c),
            })
            .collect()
    }

    /// Each input's name for messages: "column 3 (colour)", or "column 3"
    /// in a file without a header.
    pub fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|&c| column_name(self.header.as_deref(), c)).collect()
    }
}

/// "column 3 (colour)", or "column 3" without a header.
fn column_name(header: Option<&[String]>, c: usize) -> String {
    header.map_or(format!("column {c}"), |h| format!("column {c} ({})", h[c]))
}

/// The columns of a file a loader reads, as 0-based columns of its rows.
struct Plan {
    inputs: Vec<usize>,
    targets: Vec<usize>,
    /// The inputs (positions in `inputs`) read as categories.
    categorical: Vec<usize>,
    /// The group columns, each also among `inputs` as a category.
    groups: Vec<usize>,
}

/// Reads CSV text as [`load_csv_from`] does and says which columns became the
/// inputs and targets, so a checkpoint can name them.
pub fn load_csv_with_layout(input: impl Read, name: &str, options: &CsvOptions) -> Result<(Dataset, CsvLayout)> {
    read_csv(input, name, options, |width, header| {
        let column_name = |c: usize| column_name(header, c);
        let targets = target_columns(&options.target, width, header)?;
        if let Some(column) = targets.iter().enumerate().find(|(i, c)| targets[..*i].contains(c)).map(|(_, &c)| c) {
            return Err(format!("`target` names {} twice", column_name(column)));
        }
        if targets.len() >= width {
            return Err("every column is a target; no input columns are left".into());
        }
        if options.classify && targets.len() != 1 {
            return Err(format!("`task` classify takes one target column, got {}", targets.len()));
        }
        let ignored = find_columns("ignore_columns", &options.ignore, width, header)?;
        if let Some(&column) = ignored.iter().find(|c| targets.contains(c)) {
            return Err(format!("`ignore_columns` names {}, a target column", column_name(column)));
        }
        let inputs: Vec<usize> = (0..width).filter(|c| !targets.contains(c) && !ignored.contains(c)).collect();
        if inputs.is_empty() {
            return Err("every column is a target or ignored; no input columns are left".into());
        }
        let mut categorical = Vec::new();
        for column in find_columns("categorical", &options.categorical, width, header)? {
            match inputs.iter().position(|&c| c == column) {
                Some(input) if !categorical.contains(&input) => categorical.push(input),
                Some(_) => return Err(format!("`categorical` names {} twice", column_name(column))),
                None if targets.contains(&column) => {
                    return Err(format!(
                        "`categorical` names {}, a target column; a class target is read with `task` classify",
                        column_name(column)
                    ))
                }
                None => return Err(format!("`categorical` names {}, an ignored column", column_name(column))),
            }
        }
        let groups = find_columns("group", &options.group, width, header)?;
        for (k, &column) in groups.iter().enumerate() {
            match inputs.iter().position(|&c| c == column) {
                _ if groups[..k].contains(&column) => {
                    return Err(format!("`group` names {} twice", column_name(column)))
                }
                Some(input) if !categorical.contains(&input) => categorical.push(input),
                Some(_) => {}
                None if targets.contains(&column) => {
                    return Err(format!(
                        "`group` names {}, the target column; a group is a column beside the inputs and the target",
                        column_name(column)
                    ))
                }
                None => return Err(format!("`group` names {}, an ignored column", column_name(column))),
            }
        }
        Ok(Plan { inputs, targets, categorical, groups })
    })
}

/// The columns a trained model reads, as its checkpoint names them (see
/// [`CsvLayout::named`]), for predict and eval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelColumns {
    /// The input columns, in the model's order.
    pub inputs: Vec<TargetColumn>,
    /// The target columns.
    pub targets: Vec<TargetColumn>,
    /// Rows without the targets will do (predict): the data set's y then has
    /// no columns. Otherwise a missing target is an error (eval).
    pub targets_optional: bool,
    /// The fields of the training file's rows, where known: with columns
    /// ignored in training, a file without a header has more than the
    /// inputs and targets. None: just those.
    pub width: Option<usize>,
    /// The inputs (positions in `inputs`) that are categorical.
    pub categorical: Vec<usize>,
    /// The group columns to read (`group`), found as `targets` are: one
    /// among the inputs must be categorical there, and any other is
    /// appended to the inputs as a category, for the caller to take out
    /// again (see [`CsvLayout::groups`]).
    pub groups: Vec<TargetColumn>,
    /// A group column the file lacks is left out (the layout's `groups`
    /// then lists fewer), not an error.
    pub groups_optional: bool,
}

/// Reads the model's columns of CSV text (plain or gzip) from `input`. With a
/// header, columns are found by name wherever they are, and other columns (an
/// id, a group) are not read; a missing input is an error naming it. Without
/// one, the file has the training file's columns, or only the inputs in the
/// model's order. `options.target` is not used: `columns` says it.
pub fn load_csv_columns(
    input: impl Read,
    name: &str,
    options: &CsvOptions,
    columns: &ModelColumns,
) -> Result<(Dataset, CsvLayout)> {
    read_csv(input, name, options, |width, header| {
        let (mut inputs, targets) = columns.find(width, header)?;
        let mut categorical = columns.categorical.clone();
        let mut groups = Vec::with_capacity(columns.groups.len());
        for wanted in &columns.groups {
            let column = match find_columns("group", std::slice::from_ref(wanted), width, header) {
                Ok(found) => found[0],
                Err(_) if columns.groups_optional => continue,
                Err(message) => return Err(message),
            };
            let column_name = column_name(header, column);
            match inputs.iter().position(|&c| c == column) {
                _ if groups.contains(&column) => return Err(format!("`group` names {column_name} twice")),
                Some(input) if categorical.contains(&input) => {}
                Some(_) => {
                    return Err(format!(
                        "`group` names {column_name}, which the model reads as a number; a group column is read as text"
                    ))
                }
                None if targets.contains(&column) => {
                    return Err(format!("`group` names {column_name}, the target column"))
                }
                None => {
                    categorical.push(inputs.len());
                    inputs.push(column);
                }
            }
            groups.push(column);
        }
        Ok(Plan { inputs, targets, categorical, groups })
    })
}

impl ModelColumns {
    /// (inputs, targets) as 0-based columns of a file of `width` fields.
    fn find(&self, width: usize, header: Option<&[String]>) -> std::result::Result<(Vec<usize>, Vec<usize>), String> {
        let listed = |columns: &[TargetColumn]| {
            columns
                .iter()
                .map(|c| match c {
                    TargetColumn::Index(i) => i.to_string(),
                    TargetColumn::Name(n) => format!("'{n}'"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let by_name = self.inputs.iter().any(|c| matches!(c, TargetColumn::Name(_)));
        if let (Some(names), true) = (header, by_name) {
            let find = |wanted: &TargetColumn| -> std::result::Result<Option<usize>, String> {
                let TargetColumn::Name(wanted) = wanted else {
                    return Err("the model's columns mix names and indices".into());
                };
                let found: Vec<usize> = (0..names.len()).filter(|&c| names[c] == *wanted).collect();
                match found[..] {
                    [] => Ok(None),
                    [column] => Ok(Some(column)),
                    _ => Err(format!(
                        "the header names columns {} '{wanted}'; the model's column must be one",
                        and_list(&found)
                    )),
                }
            };
            let mut inputs = Vec::with_capacity(self.inputs.len());
            for wanted in &self.inputs {
                match find(wanted)? {
                    Some(column) => inputs.push(column),
                    None => {
                        return Err(format!(
                            "no column {}, which the model reads (its inputs are {}); the header has: {}",
                            listed(std::slice::from_ref(wanted)),
                            listed(&self.inputs),
                            names.join(", ")
                        ))
                    }
                }
            }
            let targets: Vec<Option<usize>> = self.targets.iter().map(find).collect::<std::result::Result<_, _>>()?;
            return match targets.iter().position(Option::is_none) {
                None => Ok((inputs, targets.into_iter().flatten().collect())),
                Some(_) if self.targets_optional => Ok((inputs, Vec::new())),
                Some(missing) => Err(format!(
                    "no target column {}; the header has: {}",
                    listed(&self.targets[missing..=missing]),
                    names.join(", ")
                )),
            };
        }
        let indices = |columns: &[TargetColumn]| -> Option<Vec<usize>> {
            columns.iter().map(|c| if let TargetColumn::Index(i) = c { Some(*i) } else { None }).collect()
        };
        let trained_width = self.width.unwrap_or(self.inputs.len() + self.targets.len());
        match (indices(&self.inputs), indices(&self.targets)) {
            (Some(inputs), Some(targets)) if width == trained_width && !by_name => Ok((inputs, targets)),
            _ if width == self.inputs.len() && self.targets_optional => Ok(((0..width).collect(), Vec::new())),
            _ if width == self.inputs.len() => {
                Err(format!("it has only the model's {width} input columns, and no target to score against"))
            }
            _ if by_name => Err(format!(
                "it has {width} columns and no header, so the model's inputs ({}) cannot be found by name; give it a header row, or exactly those {} columns in that order",
                listed(&self.inputs),
                self.inputs.len()
            )),
            _ => Err(format!(
                "it has {width} columns; the model reads columns {} of the training data's {trained_width} (or a file of just those {} input columns)",
                listed(&self.inputs),
                self.inputs.len()
            )),
        }
    }
}

/// What a column of the file is read into.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Not read at all (an id, a group column): it may hold any text.
    Skip,
    /// Input i of each row, a number.
    Input(usize),
    /// Input i of each row, a category: its code goes into x.
    Category(usize),
    /// Target j of each row.
    Target(usize),
}

/// A CSV file opened as every reader of it here opens it: gzip undone, the
/// length limits on, `options.skip_rows` lines skipped, and the first row
/// read, which is the header when `options.header` says so or, by default,
/// when it holds a field that is not a number.
pub(super) struct CsvRows<'a> {
    pub(super) reader: Records<'a>,
    /// The first row after the skipped lines: the header, or the first data row.
    pub(super) first: ::csv::StringRecord,
    /// The first row's fields, when it is the header.
    pub(super) header: Option<Vec<String>>,
}

/// The records of an opened CSV file, with its name for messages.
pub(super) struct Records<'a> {
    reader: ::csv::Reader<Limited<Box<dyn Read + 'a>>>,
    name: &'a str,
}

impl<'a> Records<'a> {
    /// Reads the next record into `record`; false at the end of the file.
    pub(super) fn next_into(&mut self, record: &mut ::csv::StringRecord) -> Result<bool> {
        self.reader.read_record(record).map_err(|e| read_failed(self.name, e))
    }
}

impl<'a> CsvRows<'a> {
    pub(super) fn open(input: impl Read + 'a, name: &'a str, options: &CsvOptions) -> Result<Self> {
        let input = ungzip(input).map_err(|e| Error::io(format!("cannot read {name}"), e))?;
        let delimiter = if options.delimiter == 0 { b',' } else { options.delimiter };
        let reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(::csv::Trim::All)
            .delimiter(delimiter)
            .from_reader(Limited::new(input, delimiter));
        let mut reader = Records { reader, name };
        // Skipped lines are metadata: only a failing read stops them, not their text.
        let mut skipped = ::csv::ByteRecord::new();
        for _ in 0..options.skip_rows {
            if !reader.reader.read_byte_record(&mut skipped).map_err(|e| read_failed(name, e))? {
                break;
            }
        }
        let mut first = ::csv::StringRecord::new();
        if !reader.next_into(&mut first)? {
            return Err(Error::InvalidInput(format!("{name}: no rows after skipping {}", options.skip_rows)));
        }
        let is_header = options.header.unwrap_or_else(|| first.iter().any(|field| field.parse::<f64>().is_err()));
        let header = is_header.then(|| first.iter().map(str::to_string).collect());
        Ok(Self { reader, first, header })
    }
}

/// A categorical column as it is read: its texts by code, and the code of each text.
type Categories = (Vec<String>, HashMap<String, u32>);

/// A failed CSV read: a read that fails midway (EIO, a gzip stream cut
/// short, a length limit) is the machine's or the file's as [`Error::io`]
/// decides; anything else the csv crate found is bad input.
fn read_failed(name: &str, e: ::csv::Error) -> Error {
    let message = e.to_string();
    match e.into_kind() {
        ::csv::ErrorKind::Io(source) => Error::io(format!("cannot read {name}"), source),
        _ => Error::InvalidInput(format!("{name}: {message}")),
    }
}

/// Reads CSV text with the columns `plan(width, header)` gives as (inputs,
/// targets) into a data set; the core of every loader above.
fn read_csv(
    input: impl Read,
    name: &str,
    options: &CsvOptions,
    plan: impl FnOnce(usize, Option<&[String]>) -> std::result::Result<Plan, String>,
) -> Result<(Dataset, CsvLayout)> {
    let bad = |message: String| Error::InvalidInput(format!("{name}: {message}"));
    let CsvRows { mut reader, first, header } = CsvRows::open(input, name, options)?;
    let is_header = header.is_some();
    let width = first.len();
    let column_name = |c: usize| column_name(header.as_deref(), c);
    let Plan { inputs, targets, categorical, groups } = plan(width, header.as_deref()).map_err(bad)?;
    if options.classify && targets.len() > 1 {
        return Err(bad(format!("`task` classify takes one target column, got {}", targets.len())));
    }
    let mut role = vec![Role::Skip; width];
    let roles = inputs
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, if categorical.contains(&i) { Role::Category(i) } else { Role::Input(i) }));
    for (column, r) in roles.chain(targets.iter().enumerate().map(|(j, &c)| (c, Role::Target(j)))) {
        match role.get(column) {
            Some(Role::Skip) => role[column] = r,
            Some(_) => return Err(bad(format!("{} is read twice", column_name(column)))),
            None => return Err(bad(format!("column {column} does not exist; columns are 0..={}", width - 1))),
        }
    }

    // Rows go straight into x and y, 4 bytes a value, never kept as text.
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let (mut row_x, mut row_y) = (vec![0f32; inputs.len()], vec![0f32; targets.len()]);
    // For classification: each row's label and line, for the messages.
    let (mut labels, mut lines) = (Vec::new(), Vec::new());
    let mut texts: Vec<Option<Categories>> =
        (0..inputs.len()).map(|i| categorical.contains(&i).then(Default::default)).collect();
    let (mut rows, mut dropped) = (0usize, 0usize);
    let mut record = first;
    let mut is_data = !is_header;
    loop {
        if is_data {
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != width {
                return Err(bad(format!("line {line} has {} fields, but the first row has {width}", record.len())));
            }
            let (mut label, mut drop) = (None, false);
            for (c, field) in record.iter().enumerate() {
                if role[c] == Role::Skip {
                    continue;
                }
                if is_missing(field) {
                    let shown = if field.is_empty() { "an empty cell".to_string() } else { format!("'{field}'") };
                    match (role[c], options.missing) {
                        (_, Missing::Drop) => drop = true,
                        (Role::Input(i) | Role::Category(i), Missing::Mean | Missing::Median) => row_x[i] = f32::NAN,
                        (Role::Target(_), Missing::Mean | Missing::Median) => {
                            return Err(bad(format!(
                                "line {line}, {}: the target is missing ({shown}); `missing` drop leaves such rows out",
                                column_name(c)
                            )))
                        }
                        _ => {
                            return Err(bad(format!(
                                "line {line}, {}: a missing value ({shown}); `missing` mean, median or drop fills it in or leaves the row out",
                                column_name(c)
                            )))
                        }
                    }
                    continue;
                }
                if let Role::Category(i) = role[c] {
                    let (by_code, codes) = texts[i].as_mut().expect("a categorical input has its texts");
                    let code = match codes.get(field) {
                        Some(&code) => code,
                        None if by_code.len() == MAX_CATEGORIES => {
                            return Err(bad(format!(
                                "line {line}, {}: more than {MAX_CATEGORIES} distinct categories; a column of ids or free text is no categorical input (`ignore_columns` leaves it out)",
                                column_name(c)
                            )))
                        }
                        None => {
                            let code = by_code.len() as u32;
                            by_code.push(field.to_string());
                            codes.insert(field.to_string(), code);
                            code
                        }
                    };
                    row_x[i] = code as f32;
                    continue;
                }
                let value: f32 = field.parse().map_err(|_| {
                    let named = header.as_ref().map_or(c.to_string(), |h| h[c].clone());
                    let hint = match role[c] {
                        Role::Input(_) => {
                            format!("; if the column holds categories, `categorical` {named} one-hot encodes it")
                        }
                        _ => String::new(),
                    };
                    bad(format!("line {line}, {}: '{field}' is not a number{hint}", column_name(c)))
                })?;
                if !value.is_finite() {
                    return Err(bad(format!("line {line}, {}: {field} is not a finite number", column_name(c))));
                }
                match role[c] {
                    Role::Input(i) => row_x[i] = value,
                    Role::Target(_) if options.unit_targets && !options.classify && !(0.0..=1.0).contains(&value) => {
                        return Err(bad(format!(
                            "line {line}, {}: the target {field} is outside [0, 1], which `loss` bce needs",
                            column_name(c)
                        )))
                    }
                    Role::Target(j) if !options.classify => row_y[j] = value,
                    // The one target of a classification (skipped and categorical columns went above).
                    _ => label = Some(class_label(value).map_err(|m| bad(format!("line {line}: {m}")))?),
                }
            }
            if drop {
                dropped += 1;
            } else {
                x.extend_from_slice(&row_x);
                if let Some(label) = label {
                    labels.push(label);
                    lines.push(line);
                } else if !options.classify {
                    y.extend_from_slice(&row_y);
                }
                rows += 1;
            }
        }
        is_data = true;
        if !reader.next_into(&mut record)? {
            break;
        }
    }
    if rows == 0 && dropped > 0 {
        return Err(bad(format!(
            "every one of the {dropped} data rows has a missing value, so `missing` drop leaves none"
        )));
    }
    if rows == 0 {
        return Err(bad("no data rows".into()));
    }
    let texts = texts.into_iter().map(|t| t.map(|(by_code, _)| by_code)).collect();
    let layout = CsvLayout { header, inputs, targets, width, texts, dropped, groups };
    // Every row pushed its inputs into x and its targets into y (or labels).
    let x = Array2::from_shape_vec((rows, layout.inputs.len()), x).expect("every row has `inputs` features");
    if !options.classify || layout.targets.is_empty() {
        let y = Array2::from_shape_vec((rows, layout.targets.len()), y).expect("every row has its targets");
        return Ok((Dataset { x, y, classes: None }, layout));
    }
    let classes =
        class_count(&labels, options.classes, |row| format!("line {}", lines[row])).map_err(|e| bad(e.to_string()))?;
    let data = Dataset::classification(x, &labels, classes).map_err(|e| bad(e.to_string()))?;
    Ok((data, layout))
}

/// A target's value as a class label: a whole number in 0..MAX_CLASSES.
fn class_label(value: f32) -> std::result::Result<usize, String> {
    if value < 0.0 || value.fract() != 0.0 {
        return Err(format!("class label {value} is not a whole number >= 0"));
    }
    if value >= super::MAX_CLASSES as f32 {
        return Err(format!("class label {value} is too large; at most {} classes are supported", super::MAX_CLASSES));
    }
    Ok(value as usize)
}

/// The 0-based positions of the `target` columns in rows of `width` fields
/// (the last column when none is named); a name must name one column.
fn target_columns(
    target: &[TargetColumn],
    width: usize,
    header: Option<&[String]>,
) -> std::result::Result<Vec<usize>, String> {
    if target.is_empty() {
        return Ok(vec![width - 1]);
    }
    target
        .iter()
        .map(|target| match target {
            TargetColumn::Index(i) if *i < width => Ok(*i),
            TargetColumn::Index(i) => Err(format!("target column {i} does not exist; columns are 0..={}", width - 1)),
            TargetColumn::Name(wanted) => {
                let Some(names) = header else {
                    return Err(format!("target column '{wanted}' needs a header row, and the file has none"));
                };
                let found: Vec<usize> = (0..names.len()).filter(|&c| names[c] == *wanted).collect();
                match found[..] {
                    [] => Err(format!("no column named '{wanted}'; the header has: {}", names.join(", "))),
                    [column] => Ok(column),
                    _ => Err(format!(
                        "the header names columns {} '{wanted}'; give the target column by its index",
                        and_list(&found)
                    )),
                }
            }
        })
        .collect()
}

/// The 0-based positions of `columns` (the `setting` that names them, for
/// messages) in rows of `width` fields; a name must name one column.
pub(super) fn find_columns(
    setting: &str,
    columns: &[TargetColumn],
    width: usize,
    header: Option<&[String]>,
) -> std::result::Result<Vec<usize>, String> {
    columns
        .iter()
        .map(|column| match column {
            TargetColumn::Index(i) if *i < width => Ok(*i),
            TargetColumn::Index(i) => {
                Err(format!("`{setting}` names column {i}, which does not exist; columns are 0..={}", width - 1))
            }
            TargetColumn::Name(wanted) => {
                let Some(names) = header else {
                    return Err(format!(
                        "`{setting}` names column '{wanted}', which needs a header row, and the file has none"
                    ));
                };
                let found: Vec<usize> = (0..names.len()).filter(|&c| names[c] == *wanted).collect();
                match found[..] {
                    [] => Err(format!("`{setting}`: no column named '{wanted}'; the header has: {}", names.join(", "))),
                    [column] => Ok(column),
                    _ => Err(format!(
                        "`{setting}`: the header names columns {} '{wanted}'; give the column by its index",
                        and_list(&found)
                    )),
                }
            }
        })
        .collect()
}

/// "0 and 1", "0, 3 and 5".
fn and_list(columns: &[usize]) -> String {
    let names: Vec<String> = columns.iter().map(usize::to_string).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}
