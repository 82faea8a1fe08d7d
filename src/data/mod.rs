//! Training data: a [`Dataset`] of inputs and targets, where it comes from
//! ([`Source`]: the seed problem, CSV, IDX), feature scaling, the seeded
//! train/test split, and each epoch's batches and order.

mod csv;
mod encode;
mod folds;
mod groups;
mod idx;
mod limits;
mod passthrough;
mod scale;
mod split;

pub use self::csv::{
    load_csv, load_csv_columns, load_csv_from, load_csv_with_layout, open_csv, CsvLayout, CsvOptions, ModelColumns,
    TargetColumn,
};
pub use encode::{is_missing, ColumnEncoding, Encoder, Missing, UnknownCategory, MAX_CATEGORIES};
pub use folds::{fold_split, max_folds, Fold};
pub use groups::{GROUP_JOIN, MISSING_GROUP};
pub use idx::{load_idx, read_idx, IdxArray, FASHION_MNIST_DIR};
pub use limits::{MAX_FIELDS, MAX_FIELD_BYTES, MAX_RECORD_BYTES};
pub use passthrough::{load_csv_text, TextColumns};
pub use scale::{Scale, Scaler};
pub use split::{held_out_count, split, validation_split};

use std::path::PathBuf;

use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::model::zeros;

/// `x` is (N, IN) inputs, `y` is (N, OUT) targets; row i is sample i. For
/// classification `y` is one-hot over `classes` columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Inputs (N, IN), one sample per row.
    pub x: Array2<f32>,
    /// Targets (N, OUT): one-hot rows for classification, values to regress otherwise.
    pub y: Array2<f32>,
    /// The number of classes (the columns of `y`) when classifying; None for regression.
    pub classes: Option<usize>,
}

impl Dataset {
    /// The source example's data: `samples` rows of `inputs` values drawn
    /// U(0, 1) and `outputs` targets drawn U(0, 1), from ChaCha8 stream 1 of
    /// `seed` (stream 0 initialises the parameters).
    pub fn seed_problem(samples: usize, inputs: usize, outputs: usize, seed: u64) -> Result<Self> {
        if samples == 0 {
            return Err(Error::InvalidInput("`samples` must be at least 1".into()));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        let mut x = zeros((samples, inputs), "the input data")?;
        x.mapv_inplace(|_| rng.random::<f32>());
        let mut y = zeros((samples, outputs), "the target data")?;
        y.mapv_inplace(|_| rng.random::<f32>());
        Ok(Self { x, y, classes: None })
    }

    /// Inputs (N, IN) with class labels (N) as one-hot targets over `classes`
    /// columns; a label of `classes` or more is an error naming its row.
    pub fn classification(x: Array2<f32>, labels: &[usize], classes: usize) -> Result<Self> {
        let mut y = zeros((labels.len(), classes), "the one-hot targets")?;
        for (row, &label) in labels.iter().enumerate() {
            if label >= classes {
                return Err(Error::InvalidInput(format!(
                    "sample {} has label {label}, outside the {classes} classes (0..={})",
                    row + 1,
                    classes - 1
                )));
            }
            y[(row, label)] = 1.0;
        }
        Ok(Self { x, y, classes: Some(classes) })
    }

    /// Refuses classification data whose rows hold fewer than two distinct
    /// classes: training on them reaches loss 0 and accuracy 1 and learns
    /// nothing. (Data to evaluate on may hold one class.)
    pub fn require_two_classes(&self) -> Result<()> {
        if self.classes.is_none() {
            return Ok(());
        }
        let labels = self.labels();
        match labels.first() {
            Some(&first) if labels.iter().any(|&l| l != first) => Ok(()),
            first => Err(Error::InvalidInput(format!(
                "every training sample has label {}; classification needs at least two classes among the training rows",
                first.copied().unwrap_or(0)
            ))),
        }
    }

    /// The number of samples N (rows of x and y).
    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    /// True when it holds no samples (a test split of fraction 0, say).
    pub fn is_empty(&self) -> bool {
        self.x.nrows() == 0
    }

    /// A 64-bit FNV-1a hash of the shapes and every value's bits: a checkpoint
    /// records it, so a resume on other data (or other scaling) is refused.
    pub fn fingerprint(&self) -> u64 {
        let dims = [self.x.nrows(), self.x.ncols(), self.y.ncols()].map(|d| d as u64);
        let values = self.x.iter().chain(self.y.iter()).map(|v| u64::from(v.to_bits()));
        dims.into_iter().chain(values).fold(0xcbf2_9ce4_8422_2325, |hash, word| {
            word.to_le_bytes().iter().fold(hash, |h, &byte| (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
        })
    }

    /// Each row's class (the column of its largest target), for classification.
    pub fn labels(&self) -> Vec<usize> {
        self.y.rows().into_iter().map(crate::cpu::argmax).collect()
    }

    /// Scales each row's one-hot target by its class's weight (`class_weight`),
    /// so cross-entropy weighs that row's loss and gradient by it; `weights`
    /// has one positive, finite weight per class. Apply it to the training
    /// rows only: the held-out rows are scored unweighted.
    pub fn weight_classes(&mut self, weights: &[f32]) -> Result<()> {
        let Some(classes) = self.classes else {
            return Err(Error::InvalidInput(
                "`class_weight` applies to classification; this data is a regression".into(),
            ));
        };
        if weights.len() != classes {
            return Err(Error::InvalidInput(format!(
                "`class_weight` has {} weights, and the data has {classes} classes",
                weights.len()
            )));
        }
        if let Some(bad) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return Err(Error::InvalidInput(format!("`class_weight` {bad}: every weight must be positive and finite")));
        }
        let labels = self.labels();
        for (mut row, label) in self.y.rows_mut().into_iter().zip(labels) {
            row[label] = weights[label];
        }
        Ok(())
    }

    /// scikit-learn's "balanced" class weights of the rows: n_rows /
    /// (n_classes * count) per class, for classification data (a class
    /// without rows gets 1, as it weighs nothing).
    pub fn balanced_class_weights(&self) -> Vec<f32> {
        let classes = self.classes.unwrap_or(0);
        let mut counts = vec![0usize; classes];
        self.labels().into_iter().for_each(|label| counts[label] += 1);
        let rows = self.len() as f64;
        counts.iter().map(|&n| if n == 0 { 1.0 } else { (rows / (classes as f64 * n as f64)) as f32 }).collect()
    }

    /// The rows `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Dataset {
        let axis = ndarray::Axis(0);
        Dataset { x: self.x.select(axis, rows), y: self.y.select(axis, rows), classes: self.classes }
    }
}

/// The most classes a data set may have. A label decides the width of the
/// one-hot targets and of the output layer, so one stray huge label would
/// otherwise ask for gigabytes; 65536 is far above any real class count.
pub const MAX_CLASSES: usize = 65536;

/// The class count for the training rows' `labels` (each below
/// [`MAX_CLASSES`]): `given` (`classes`), or else the largest label + 1. Both
/// need two classes or more; an inferred count is refused when the largest
/// label leaves more than half the classes without a training row (one stray
/// label, not labels counted from 1). `place(row)` names a row in messages.
pub(crate) fn class_count(labels: &[usize], given: Option<usize>, place: impl Fn(usize) -> String) -> Result<usize> {
    if let Some(classes) = given {
        if !(2..=MAX_CLASSES).contains(&classes) {
            return Err(Error::InvalidInput(format!(
                "`classes` must be at least 2 and at most {MAX_CLASSES}, got {classes}"
            )));
        }
        return Ok(classes);
    }
    let Some((row, &largest)) = labels.iter().enumerate().max_by_key(|(row, &label)| (label, std::cmp::Reverse(*row)))
    else {
        return Err(Error::InvalidInput("no labels to count classes from".into()));
    };
    let mut seen = vec![false; largest + 1];
    labels.iter().for_each(|&label| seen[label] = true);
    let present = seen.iter().filter(|&&s| s).count();
    if present < 2 {
        return Err(Error::InvalidInput(format!(
            "every training sample has label {largest}; classification needs at least two classes among the training rows"
        )));
    }
    let classes = largest + 1;
    if present * 2 < classes {
        return Err(Error::InvalidInput(format!(
            "label {largest} ({}) leaves {} of the {classes} classes 0..={largest} without a training sample; give `classes` if that many are meant",
            place(row),
            classes - present
        )));
    }
    Ok(classes)
}

/// Where the data comes from (`--data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The textbook example's random data.
    Seed,
    /// A numeric CSV file (gzip or not).
    Csv(PathBuf),
    /// CSV (gzip or not) on standard input: `csv:-`.
    CsvStdin,
    /// IDX files (MNIST layout) in a folder, with their own test set.
    Idx(PathBuf),
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let (kind, path) = text.split_once(':').unwrap_or((text, ""));
        match (kind, path) {
            ("seed", "") => Ok(Source::Seed),
            ("csv", "-") => Ok(Source::CsvStdin),
            ("csv", path) if !path.is_empty() => Ok(Source::Csv(path.into())),
            ("fashion-mnist", "") => Ok(Source::Idx(FASHION_MNIST_DIR.into())),
            ("fashion-mnist" | "idx", path) if !path.is_empty() => Ok(Source::Idx(path.into())),
            _ => Err(format!("'{text}' is not a data source: use seed, csv:PATH (csv:- reads standard input), fashion-mnist[:DIR] or idx:DIR")),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Seed => f.write_str("seed"),
            Source::Csv(path) => write!(f, "csv:{}", path.display()),
            Source::CsvStdin => f.write_str("csv:-"),
            Source::Idx(dir) => write!(f, "idx:{}", dir.display()),
        }
    }
}

/// A batch: positions `start .. start + rows` of the epoch's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The first position in the epoch's order (not a row index of the data
    /// when shuffling).
    pub start: usize,
    /// How many positions it takes: `batch_size`, or fewer for the last batch.
    pub rows: usize,
}

/// The batches of one epoch over `samples` rows, in order, each `batch_size`
/// rows but the last, which holds what is left (never dropped).
pub fn batches(samples: usize, batch_size: usize) -> Vec<Batch> {
    assert!(batch_size > 0, "batch size is checked when the config is built");
    (0..samples).step_by(batch_size).map(|start| Batch { start, rows: batch_size.min(samples - start) }).collect()
}

/// The order of the rows in each epoch: a fresh permutation per epoch from
/// ChaCha8 stream 2 of the seed when shuffling, else 0, 1, 2, ... Every device
/// draws the same sequence, so runs compare step for step.
#[derive(Clone, Debug)]
pub struct Shuffler {
    rng: Option<ChaCha8Rng>,
}

impl Shuffler {
    /// A shuffler drawing from `seed`'s stream 2, or one that keeps the rows'
    /// order when `shuffle` is false.
    pub fn new(shuffle: bool, seed: u64) -> Self {
        let rng = shuffle.then(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(2);
            rng
        });
        Self { rng }
    }

    /// Whether each epoch gets a new order.
    pub fn is_shuffling(&self) -> bool {
        self.rng.is_some()
    }

    /// How far the RNG has gone: its word position (0 without shuffling).
    pub fn position(&self) -> u128 {
        self.rng.as_ref().map_or(0, |rng| rng.get_word_pos())
    }

    /// Moves the RNG to a position [`Shuffler::position`] gave.
    pub fn set_position(&mut self, position: u128) {
        if let Some(rng) = &mut self.rng {
            rng.set_word_pos(position);
        }
    }

    /// The next epoch's order of `samples` rows; None when not shuffling (the
    /// order is always 0, 1, 2, ...).
    pub fn epoch_order(&mut self, samples: usize) -> Option<Vec<u32>> {
        let rng = self.rng.as_mut()?;
        let mut order: Vec<u32> = (0..samples as u32).collect();
        order.shuffle(rng);
        Some(order)
    }
}
