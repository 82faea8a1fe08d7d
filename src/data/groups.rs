//! The group columns of a CSV file (`group`): read as categorical inputs,
//! so that each row's group goes wherever its row goes (the splits, a
//! dropped row), then turned into one label per row and, unless they are
//! inputs of the model too, taken out of the inputs again.

use ndarray::{ArrayView2, Axis};

use super::csv::CsvLayout;
use super::Dataset;

/// What joins the texts of a row's group columns into its group, an
/// intersection of them: "female & 60+".
pub const GROUP_JOIN: &str = " & ";

/// The group text of a row whose group column is missing (`missing` mean or
/// median fill an input, never a group).
pub const MISSING_GROUP: &str = "(missing)";

impl CsvLayout {
    /// The positions in `inputs` of the group columns, in `groups`' order; a
    /// group column taken out of the inputs has none.
    pub fn group_inputs(&self) -> Vec<Option<usize>> {
        self.groups.iter().map(|g| self.inputs.iter().position(|c| c == g)).collect()
    }

    /// The names of the group columns: the header's, or "column 3" without one.
    pub fn group_names(&self) -> Vec<String> {
        self.groups
            .iter()
            .map(|&c| self.header.as_ref().map_or_else(|| format!("column {c}"), |h| h[c].clone()))
            .collect()
    }

    /// Each row's group, for rows `x` (N, IN) read with this layout while
    /// every group column was an input: the texts of its group columns
    /// joined by [`GROUP_JOIN`]. None when there are no group columns, or
    /// one of them is no longer an input.
    pub fn group_labels(&self, x: ArrayView2<f32>) -> Option<Vec<String>> {
        if self.groups.is_empty() {
            return None;
        }
        let positions: Vec<usize> = self.group_inputs().into_iter().collect::<Option<_>>()?;
        let text = |input: usize, code: f32| -> String {
            match &self.texts[input] {
                Some(texts) if code.is_finite() => {
                    texts.get(code as usize).cloned().unwrap_or_else(|| MISSING_GROUP.to_string())
                }
                _ => MISSING_GROUP.to_string(),
            }
        };
        let labels = x
            .rows()
            .into_iter()
            .map(|row| positions.iter().map(|&i| text(i, row[i])).collect::<Vec<_>>().join(GROUP_JOIN))
            .collect();
        Some(labels)
    }

    /// This layout with the inputs at `positions` (of `inputs`) left out,
    /// and the positions of the inputs kept, for [`Dataset::keep_inputs`].
    /// `groups` still lists the group columns.
    pub fn without_inputs(&self, positions: &[usize]) -> (CsvLayout, Vec<usize>) {
        let kept: Vec<usize> = (0..self.inputs.len()).filter(|i| !positions.contains(i)).collect();
        let layout = CsvLayout {
            inputs: kept.iter().map(|&i| self.inputs[i]).collect(),
            texts: kept.iter().map(|&i| self.texts[i].clone()).collect(),
            ..self.clone()
        };
        (layout, kept)
    }
}

impl Dataset {
    /// The inputs at `positions` of x only (columns, in that order); y as it is.
    pub fn keep_inputs(&mut self, positions: &[usize]) {
        self.x = self.x.select(Axis(1), positions);
    }
}
