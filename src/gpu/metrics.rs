//! The layout of one epoch's metric sums as both GPU paths write them to
//! their ring, and the one decoding of those sums into [`EpochMetrics`].

use crate::metrics::{ColumnSums, RegressionReport};
use crate::model::MlpSpec;
use crate::train::EpochMetrics;

/// Floats per data set in an entry of shaders/fused_mlp.wgsl's ring: loss
/// sum, correct count (for the training rows, then the test rows if any).
pub(super) const FUSED_SUMS: usize = 2;

/// Where each running sum sits in an epoch's entry: the training loss sum
/// first, then the training correct count, the test loss sum and the test
/// correct count where the run has them, so one clear and one copy per epoch
/// move them all.
#[derive(Clone, Copy, Debug)]
pub(super) struct MetricSlots {
    pub(super) train_correct: Option<usize>,
    pub(super) test_loss: Option<usize>,
    pub(super) test_correct: Option<usize>,
    /// A regression's first test-error slot: output c's sums at 2c and 2c + 1 from it.
    pub(super) test_errors: Option<usize>,
    /// The first test slot, or `count`.
    pub(super) first_test: usize,
    /// Floats per entry.
    pub(super) count: usize,
}

impl MetricSlots {
    /// The training loss sum is always slot 0.
    pub(super) const TRAIN_LOSS: usize = 0;

    /// Only the metrics the run has: the layered path's entries; a
    /// regression's test rows also get each of its `outputs` columns' sums
    /// of |e| and e² (shaders/regression.wgsl).
    pub(super) fn new(classify: bool, test: bool, outputs: usize) -> Self {
        let train_correct = classify.then_some(1);
        let first_test = 1 + usize::from(classify);
        let test_loss = test.then_some(first_test);
        let test_correct = (test && classify).then_some(first_test + 1);
        let after_loss = first_test + usize::from(test) + usize::from(test && classify);
        let test_errors = (test && !classify).then_some(after_loss);
        let count = after_loss + if test_errors.is_some() { 2 * outputs } else { 0 };
        Self { train_correct, test_loss, test_correct, test_errors, first_test, count }
    }

    /// The fused path's entries: loss sum and correct count always (the
    /// count unused unless classifying), then the same two for the test set
    /// when the run has one (it takes no regression with a test set).
    pub(super) fn fused(classify: bool, test: bool) -> Self {
        let first_test = FUSED_SUMS;
        let count = FUSED_SUMS * (1 + usize::from(test));
        let train_correct = classify.then_some(1);
        let test_loss = test.then_some(first_test);
        let test_correct = (test && classify).then_some(first_test + 1);
        Self { train_correct, test_loss, test_correct, test_errors: None, first_test, count }
    }

    /// One [`EpochMetrics`] per entry of `sums` (epochs * count floats): the
    /// sums over `train_rows` (and `test_rows`) turned into means and shares;
    /// `test_totals` are a regression's test columns' sums of (y - mean y)²,
    /// for R².
    pub(super) fn decode(
        &self,
        sums: &[f32],
        spec: &MlpSpec,
        train_rows: usize,
        test_rows: Option<usize>,
        test_totals: &[f64],
    ) -> Vec<EpochMetrics> {
        sums.chunks_exact(self.count)
            .map(|m| {
                let errors = self.test_errors.zip(test_rows).map(|(first, rows)| {
                    let column = |c: usize| ColumnSums {
                        absolute: f64::from(m[first + 2 * c]),
                        squared: f64::from(m[first + 2 * c + 1]),
                        total: test_totals[c],
                    };
                    RegressionReport::from_sums(rows, &(0..test_totals.len()).map(column).collect::<Vec<_>>())
                });
                EpochMetrics {
                    train_loss: m[Self::TRAIN_LOSS] / spec.loss_divisor(train_rows),
                    train_accuracy: self.train_correct.map(|slot| m[slot] / train_rows as f32),
                    val_loss: self.test_loss.zip(test_rows).map(|(slot, rows)| m[slot] / spec.loss_divisor(rows)),
                    val_accuracy: self.test_correct.zip(test_rows).map(|(slot, rows)| m[slot] / rows as f32),
                    val_mae: None,
                    val_rmse: None,
                    val_r2: None,
                    val_outputs: None,
                }
                .with_val_errors(errors.as_ref())
            })
            .collect()
    }
}
