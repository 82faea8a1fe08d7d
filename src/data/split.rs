//! The seeded train/test split for sources without a test set, and the
//! validation split of the training rows: stratified by class for
//! classification, so both parts keep the class proportions.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Dataset;
use crate::error::{Error, Result};

/// Moves `fraction` of the rows (rounded, per class when classifying) into a
/// test set, chosen with ChaCha8 stream 3 of `seed`; both parts keep the file's
/// row order.
pub fn split(data: Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Option<Dataset>)> {
    split_by_stream(data, fraction, seed, 3, ("test_fraction", "testing"))
}

/// Moves `fraction` of the training rows into a validation set as [`split`]
/// does, with ChaCha8 stream 4 of `seed`, so the choice is independent of the
/// test split's.
pub fn validation_split(data: Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Option<Dataset>)> {
    split_by_stream(data, fraction, seed, 4, ("val_fraction", "validation"))
}

/// How many rows a split of `fraction` holds out of `data`: the fraction of
/// each class, rounded (of all rows for a regression), as [`split`] takes them.
pub fn held_out_count(data: &Dataset, fraction: f64) -> usize {
    let take = |rows: usize| (rows as f64 * fraction).round() as usize;
    match data.classes {
        Some(classes) => {
            let mut counts = vec![0usize; classes];
            data.labels().into_iter().for_each(|label| counts[label] += 1);
            counts.into_iter().map(take).sum()
        }
        None => take(data.len()),
    }
}

/// The split of `fraction` with ChaCha8 stream `stream` of `seed`; `names`
/// are the setting and the held-out part, for messages.
fn split_by_stream(
    data: Dataset,
    fraction: f64,
    seed: u64,
    stream: u64,
    (setting, held_out): (&str, &str),
) -> Result<(Dataset, Option<Dataset>)> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(Error::InvalidInput(format!("`{setting}` must be in [0, 1), got {fraction}")));
    }
    if fraction == 0.0 {
        return Ok((data, None));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let groups = rows_by_class(&data);
    let mut test_rows = Vec::new();
    for mut group in groups {
        group.shuffle(&mut rng);
        let take = (group.len() as f64 * fraction).round() as usize;
        test_rows.extend_from_slice(&group[..take]);
    }
    test_rows.sort_unstable();
    let mut is_test = vec![false; data.len()];
    test_rows.iter().for_each(|&row| is_test[row] = true);
    let train_rows: Vec<usize> = (0..data.len()).filter(|&row| !is_test[row]).collect();
    if train_rows.is_empty() || test_rows.is_empty() {
        return Err(Error::InvalidInput(format!(
            "`{setting}` {fraction} of {} samples leaves {} for training and {} for {held_out}; both need at least one",
            data.len(),
            train_rows.len(),
            test_rows.len()
        )));
    }
    Ok((data.select(&train_rows), Some(data.select(&test_rows))))
}

/// The rows of each class, in order (a stratified split or fold deals each
/// class's rows out on its own); all rows as one group without classes.
pub(crate) fn rows_by_class(data: &Dataset) -> Vec<Vec<usize>> {
    match data.classes {
        Some(classes) => {
            let mut groups = vec![Vec::new(); classes];
            for (row, label) in data.labels().into_iter().enumerate() {
                groups[label].push(row);
            }
            groups
        }
        None => vec![(0..data.len()).collect()],
    }
}
