//! K-fold cross-validation's splits: the training rows dealt into K folds,
//! stratified by class for classification (every fold keeps the class
//! proportions, to a row), seeded, so that fold I of K is the same rows on
//! every run and in a sweep.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Dataset;
use crate::error::{Error, Result};

/// One fold of K (`fold` I/K on the command line): fold `index` (0-based)
/// is the validation set, the other K - 1 folds train.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fold {
    /// Which fold is held out, in 0..`of`.
    pub index: usize,
    /// K, the number of folds, at least 2.
    pub of: usize,
}

impl std::fmt::Display for Fold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

impl std::str::FromStr for Fold {
    type Err = String;

    /// "I/K": fold I (from 0) of K folds.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let bad = || format!("'{text}' is not a fold: give I/K, fold I (0 to K-1) of K folds, K at least 2");
        let (index, of) = text.split_once('/').ok_or_else(bad)?;
        let (index, of) = (index.trim().parse::<usize>().map_err(|_| bad())?, of.trim().parse().map_err(|_| bad())?);
        match of >= 2 && index < of {
            true => Ok(Fold { index, of }),
            false => Err(bad()),
        }
    }
}

/// The most folds `data` can be split into: the rows of its smallest class
/// (of those with any rows), or all its rows for a regression, so that every
/// fold gets at least one row of each class.
pub fn max_folds(data: &Dataset) -> usize {
    match data.classes {
        Some(classes) => {
            let mut counts = vec![0usize; classes];
            data.labels().into_iter().for_each(|label| counts[label] += 1);
            counts.into_iter().filter(|&n| n > 0).min().unwrap_or(0)
        }
        None => data.len(),
    }
}

/// Splits `data` into (training, validation) for `fold`: each class's rows
/// (all rows for a regression) are shuffled with ChaCha8 stream 5 of `seed`
/// and dealt round the folds in turn, one count running on across the
/// classes so the folds' sizes differ by at most one; fold `fold.index` is
/// the validation set. Both keep the file's row order. Refused when there
/// are more folds than [`max_folds`].
pub fn fold_split(data: Dataset, fold: Fold, seed: u64) -> Result<(Dataset, Dataset)> {
    let Fold { index, of } = fold;
    if of < 2 || index >= of {
        return Err(Error::InvalidInput(format!(
            "`folds` {of} with fold {index}: give at least 2 folds, and a fold below them"
        )));
    }
    let most = max_folds(&data);
    if of > most {
        let smallest = match data.classes {
            Some(_) => format!("its smallest class has {most} training rows"),
            None => format!("it has {most} training rows"),
        };
        return Err(Error::InvalidInput(format!(
            "`folds` {of} is more than the data can fill: {smallest}, and every fold needs one (at most {most} folds)"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(5);
    let groups = super::split::rows_by_class(&data);
    let mut held_out = vec![false; data.len()];
    let mut dealt = 0;
    for mut group in groups {
        group.shuffle(&mut rng);
        for row in group {
            held_out[row] = dealt % of == index;
            dealt += 1;
        }
    }
    let (val, train): (Vec<usize>, Vec<usize>) = (0..data.len()).partition(|&row| held_out[row]);
    Ok((data.select(&train), data.select(&val)))
}
