//! The seeded train/test split for sources without a test set: stratified by
//! class for classification, so both parts keep the class proportions.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Dataset;
use crate::error::{Error, Result};

/// Moves `fraction` of the rows (rounded, per class when classifying) into a
/// test set, chosen with ChaCha8 stream 3 of `seed`; both parts keep the file's
/// row order.
pub fn split(data: Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Option<Dataset>)> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(Error::InvalidInput(format!("`test_fraction` must be in [0, 1), got {fraction}")));
    }
    if fraction == 0.0 {
        return Ok((data, None));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(3);
    let groups: Vec<Vec<usize>> = match data.classes {
        Some(classes) => {
            let mut groups = vec![Vec::new(); classes];
            for (row, label) in data.labels().into_iter().enumerate() {
                groups[label].push(row);
            }
            groups
        }
        None => vec![(0..data.len()).collect()],
    };
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
            "`test_fraction` {fraction} of {} samples leaves {} for training and {} for testing; both need at least one",
            data.len(),
            train_rows.len(),
            test_rows.len()
        )));
    }
    Ok((data.select(&train_rows), Some(data.select(&test_rows))))
}
