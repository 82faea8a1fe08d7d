//! Tabular columns as the model's inputs: a categorical column one-hot
//! encoded over the categories of the training rows, and a missing value
//! filled with the training rows' mean, median or most frequent category.
//! Fitted on the training rows only (like the scaling), kept in checkpoints,
//! and applied unchanged by predict and eval.
//!
//! The CSV loader reads a categorical column as codes: value k of such a
//! column in x is the k-th distinct text of the file (its `texts`), and a
//! missing value is NaN. [`Encoder::fit`] and [`Encoder::transform`] take
//! those raw rows (N, RAW_IN) and give the model's inputs (N, IN).

use std::collections::HashMap;

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};

/// What to do with a missing value (an empty cell, `NA`, `N/A`, `NaN`,
/// `null`) in a CSV file (`--missing`); written and parsed by its name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Missing {
    /// Refuse the file, naming the row and column.
    #[default]
    Error,
    /// Fill an input with its column's mean over the training rows (a
    /// categorical column: its most frequent category).
    Mean,
    /// Fill an input with its column's median over the training rows (a
    /// categorical column: its most frequent category).
    Median,
    /// Leave out every row with a missing value.
    Drop,
}

crate::model::named_by_value_enum!(Missing);

/// What to do with a category the training rows do not have
/// (`--unknown-category`); written and parsed by its name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UnknownCategory {
    /// Refuse the rows, naming the column and the category.
    #[default]
    Error,
    /// Encode it as no category: every one-hot input of its column 0.
    Ignore,
}

crate::model::named_by_value_enum!(UnknownCategory);

/// The most distinct values a categorical column may hold: each becomes an
/// input of the model, so an id or a free-text column declared categorical
/// by mistake would otherwise ask for a net of millions of inputs.
pub const MAX_CATEGORIES: usize = 4096;

/// The texts a CSV file holds as missing values (`NaN`, `NA` and `null` in
/// any case).
pub fn is_missing(field: &str) -> bool {
    field.is_empty() || ["na", "n/a", "nan", "null"].iter().any(|missing| field.eq_ignore_ascii_case(missing))
}

/// How one raw input column becomes model inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnEncoding {
    /// One input, the value as it is; a missing one becomes `fill`.
    Number {
        /// The value of a missing cell; None refuses one.
        fill: Option<f32>,
    },
    /// One input per category, 1 for the row's category and 0 for the others.
    OneHot {
        /// The categories of the training rows, sorted (byte order): input k
        /// of this column is `categories[k]`.
        categories: Vec<String>,
        /// The category of a missing cell; None refuses one.
        fill: Option<String>,
    },
}

/// The fitted encoding of every raw input column, in the model's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoder {
    /// One entry per raw input column (RAW_IN).
    pub columns: Vec<ColumnEncoding>,
}

impl Encoder {
    /// The encoding of raw rows `x` (N, RAW_IN), the training rows: for each
    /// column, `texts[c]` is None for a number and the file's distinct texts
    /// for a categorical column (see the module docs). None when there is
    /// nothing to encode: no categorical column, and `missing` neither mean
    /// nor median. `names[c]` names column c in messages.
    pub fn fit(
        x: ArrayView2<f32>,
        texts: &[Option<Vec<String>>],
        missing: Missing,
        names: &[String],
    ) -> Result<Option<Self>> {
        let fills = matches!(missing, Missing::Mean | Missing::Median);
        if !fills && texts.iter().all(Option::is_none) {
            return Ok(None);
        }
        let no_values = |c: usize| {
            Error::InvalidInput(format!(
                "{} has no value in any training row, so `missing` {missing} has nothing to fill it with",
                names[c]
            ))
        };
        let mut columns = Vec::with_capacity(x.ncols());
        for (c, column) in x.columns().into_iter().enumerate() {
            let present: Vec<f32> = column.iter().copied().filter(|v| !v.is_nan()).collect();
            columns.push(match &texts[c] {
                None => {
                    let fill = match missing {
                        Missing::Mean if present.is_empty() => return Err(no_values(c)),
                        Missing::Mean => Some(mean(&present)),
                        Missing::Median if present.is_empty() => return Err(no_values(c)),
                        Missing::Median => Some(median(present)),
                        Missing::Error | Missing::Drop => None,
                    };
                    ColumnEncoding::Number { fill }
                }
                Some(texts) => {
                    // How often each code appears in the training rows.
                    let mut counts = vec![0usize; texts.len()];
                    present.iter().for_each(|&code| counts[code as usize] += 1);
                    let mut seen: Vec<usize> = (0..texts.len()).filter(|&k| counts[k] > 0).collect();
                    if seen.is_empty() {
                        return Err(Error::InvalidInput(format!("{} has no category in any training row", names[c])));
                    }
                    seen.sort_by(|&a, &b| texts[a].cmp(&texts[b]));
                    // The most frequent category; the first in sorted order on a tie.
                    let mode = seen.iter().copied().rev().max_by_key(|&k| counts[k]).expect("seen is not empty");
                    ColumnEncoding::OneHot {
                        categories: seen.iter().map(|&k| texts[k].clone()).collect(),
                        fill: fills.then(|| texts[mode].clone()),
                    }
                }
            });
        }
        Ok(Some(Self { columns }))
    }

    /// The model's inputs IN: one per number column, one per category.
    pub fn width(&self) -> usize {
        self.columns.iter().map(ColumnEncoding::width).sum()
    }

    /// The model inputs that are one-hot (not scaled: they are 0 or 1 already).
    pub fn one_hot_inputs(&self) -> Vec<usize> {
        let mut start = 0;
        let mut inputs = Vec::new();
        for column in &self.columns {
            if let ColumnEncoding::OneHot { categories, .. } = column {
                inputs.extend(start..start + categories.len());
            }
            start += column.width();
        }
        inputs
    }

    /// Which raw input columns are categorical.
    pub fn categorical(&self) -> Vec<usize> {
        (0..self.columns.len()).filter(|&c| matches!(self.columns[c], ColumnEncoding::OneHot { .. })).collect()
    }

    /// The model's inputs (N, IN) of raw rows `x` (N, RAW_IN) read with
    /// `texts` (as [`Encoder::fit`] takes them; a file's own). A missing value
    /// without a fill, and (unless `unknown` says ignore) a category the
    /// training rows did not have, are errors naming the column and the first
    /// such row, counted from 1 and called a `row` ("test row", say).
    pub fn transform(
        &self,
        x: ArrayView2<f32>,
        texts: &[Option<Vec<String>>],
        unknown: UnknownCategory,
        names: &[String],
        row_name: &str,
    ) -> Result<Array2<f32>> {
        if x.ncols() != self.columns.len() {
            return Err(Error::InvalidInput(format!(
                "the data has {} input columns, the encoding takes {}",
                x.ncols(),
                self.columns.len()
            )));
        }
        let mut out = crate::model::zeros((x.nrows(), self.width()), "the encoded inputs")?;
        let mut start = 0;
        for (c, (column, encoding)) in x.columns().into_iter().zip(&self.columns).enumerate() {
            let missing = |row: usize| {
                Error::InvalidInput(format!(
                    "{}: {row_name} {} has a missing value, and training (`missing` error or drop) left nothing to fill it with",
                    names[c],
                    row + 1
                ))
            };
            match (encoding, &texts[c]) {
                (ColumnEncoding::Number { fill }, None) => {
                    for (row, &value) in column.iter().enumerate() {
                        out[(row, start)] = match (value.is_nan(), fill) {
                            (false, _) => value,
                            (true, Some(fill)) => *fill,
                            (true, None) => return Err(missing(row)),
                        };
                    }
                }
                (ColumnEncoding::OneHot { categories, fill }, Some(texts)) => {
                    let index: HashMap<&str, usize> =
                        categories.iter().enumerate().map(|(k, text)| (text.as_str(), k)).collect();
                    // Each of the file's codes as an input of this column, or None when unknown.
                    let of_code: Vec<Option<usize>> = texts.iter().map(|t| index.get(t.as_str()).copied()).collect();
                    let fill = fill.as_ref().map(|f| index[f.as_str()]);
                    for (row, &code) in column.iter().enumerate() {
                        let category = if code.is_nan() {
                            Some(fill.ok_or_else(|| missing(row))?)
                        } else {
                            of_code[code as usize]
                        };
                        match (category, unknown) {
                            (Some(k), _) => out[(row, start + k)] = 1.0,
                            (None, UnknownCategory::Ignore) => {}
                            (None, UnknownCategory::Error) => {
                                let text = &texts[code as usize];
                                let more = column.iter().filter(|&&v| !v.is_nan() && v == code).count() - 1;
                                let more = if more > 0 { format!(" (and {more} more)") } else { String::new() };
                                return Err(Error::InvalidInput(format!(
                                    "{}: {row_name} {}{more} has category '{text}', which no training row has (they have {}); `unknown_category` ignore encodes it as no category",
                                    names[c],
                                    row + 1,
                                    listed(categories)
                                )));
                            }
                        }
                    }
                }
                (ColumnEncoding::Number { .. }, Some(_)) => {
                    return Err(Error::InvalidInput(format!(
                        "{} was read as categories, but the model takes it as a number",
                        names[c]
                    )))
                }
                (ColumnEncoding::OneHot { .. }, None) => {
                    return Err(Error::InvalidInput(format!(
                        "{} was read as numbers, but the model takes it as categories",
                        names[c]
                    )))
                }
            }
            start += encoding.width();
        }
        Ok(out)
    }
}

impl Encoder {
    /// The encoding as JSON, a checkpoint's `data.encoder`: one object per
    /// raw input column, `{"number": {"fill": 2.5}}` or
    /// `{"one_hot": {"categories": ["a", "b"], "fill": "a"}}` (fill null
    /// when a missing value is refused). An f32 fill is written exactly: its
    /// f64 value reads back as the same f32.
    pub fn to_json(&self) -> serde_json::Value {
        let columns = self.columns.iter().map(|column| match column {
            ColumnEncoding::Number { fill } => serde_json::json!({ "number": { "fill": fill.map(f64::from) } }),
            ColumnEncoding::OneHot { categories, fill } => {
                serde_json::json!({ "one_hot": { "categories": categories, "fill": fill } })
            }
        });
        serde_json::Value::Array(columns.collect())
    }

    /// Reads what [`Encoder::to_json`] wrote, checking it: a finite fill, at
    /// least one category, no category twice, a fill among the categories.
    pub fn from_json(json: &serde_json::Value) -> std::result::Result<Self, String> {
        let columns = json.as_array().ok_or("not a JSON array")?;
        let column = |(c, column): (usize, &serde_json::Value)| -> std::result::Result<ColumnEncoding, String> {
            let bad = |what: &str| format!("column {c}: {what}");
            if let Some(number) = column.get("number") {
                let fill = match number.get("fill") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(fill) => {
                        let fill = fill.as_f64().ok_or_else(|| bad("the fill is not a number"))? as f32;
                        Some(fill).filter(|f| f.is_finite()).ok_or_else(|| bad("the fill is not a finite f32"))?.into()
                    }
                };
                return Ok(ColumnEncoding::Number { fill });
            }
            let one_hot = column.get("one_hot").ok_or_else(|| bad("neither \"number\" nor \"one_hot\""))?;
            let categories: Vec<String> = one_hot
                .get("categories")
                .and_then(|c| c.as_array())
                .ok_or_else(|| bad("no array of categories"))?
                .iter()
                .map(|c| c.as_str().map(str::to_string).ok_or_else(|| bad("a category is not a string")))
                .collect::<std::result::Result<_, _>>()?;
            if categories.is_empty() {
                return Err(bad("no categories"));
            }
            let mut sorted: Vec<&String> = categories.iter().collect();
            sorted.sort();
            if let Some(twice) = sorted.windows(2).find(|w| w[0] == w[1]) {
                return Err(bad(&format!("category '{}' is listed twice", twice[0])));
            }
            let fill = match one_hot.get("fill") {
                None | Some(serde_json::Value::Null) => None,
                Some(fill) => {
                    let fill = fill.as_str().ok_or_else(|| bad("the fill is not a string"))?;
                    if !categories.iter().any(|c| c == fill) {
                        return Err(bad(&format!("the fill '{fill}' is not one of the categories")));
                    }
                    Some(fill.to_string())
                }
            };
            Ok(ColumnEncoding::OneHot { categories, fill })
        };
        Ok(Self { columns: columns.iter().enumerate().map(column).collect::<std::result::Result<_, _>>()? })
    }
}

impl ColumnEncoding {
    /// The model inputs this column becomes.
    pub fn width(&self) -> usize {
        match self {
            ColumnEncoding::Number { .. } => 1,
            ColumnEncoding::OneHot { categories, .. } => categories.len(),
        }
    }
}

/// "a, b, c", or the first 10 and how many more.
fn listed(categories: &[String]) -> String {
    const SHOWN: usize = 10;
    let shown = categories.iter().take(SHOWN).map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ");
    match categories.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => format!("{shown} and {more} more"),
        _ => shown,
    }
}

/// The mean of `values` (not empty), summed in f64.
fn mean(values: &[f32]) -> f32 {
    (values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64) as f32
}

/// The median of `values` (not empty, no NaN): the middle value, or the mean
/// of the two middle ones for an even count (as numpy and scikit-learn take it).
fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        ((f64::from(values[middle - 1]) + f64::from(values[middle])) / 2.0) as f32
    }
}
