//! --group: each row's group, taken from the group columns the CSV loaders
//! read as categorical inputs (so a group follows its row through the
//! splits), those columns taken out of the inputs again unless they are
//! the model's, and the per-group report of the rows scored.

use std::path::Path;

use wgpu_mlp::checkpoint::DataSettings;
use wgpu_mlp::data::{CsvLayout, TargetColumn, GROUP_JOIN};
use wgpu_mlp::fairness::{FairnessReport, Predictions};
use wgpu_mlp::Dataset;

use crate::bad_input;

/// The groups of the rows a report scores.
pub(crate) struct RowGroups {
    /// The group columns' names, joined as the groups are: "sex & age".
    pub(crate) by: String,
    /// One group per scored row.
    pub(crate) labels: Vec<String>,
    /// Groups listed even without a row here: the training rows'.
    pub(crate) declared: Vec<String>,
}

/// What training's data has of groups.
pub(crate) struct TrainingGroups {
    /// The group columns' names, joined: "sex & age".
    pub(crate) by: String,
    /// The groups of the training (and validation) rows, sorted, once each.
    pub(crate) values: Vec<String>,
    /// One group per test row, when there is a test set.
    pub(crate) test: Option<Vec<String>>,
}

impl TrainingGroups {
    /// The groups of the test rows, for the report at the end of training.
    pub(crate) fn test_rows(&self) -> Option<RowGroups> {
        let labels = self.test.clone()?;
        Some(RowGroups { by: self.by.clone(), labels, declared: self.values.clone() })
    }
}

/// Takes the groups of the rows training read with `layout` (`train`,
/// `test`, and `val` with its own layout) and, unless `as_feature`, takes
/// the group columns out of their inputs and layouts. None without
/// --group. `categorical` is --categorical, refused on a group column that
/// is kept out of the inputs.
pub(crate) fn take_training_groups(
    layout: &mut CsvLayout,
    train: &mut Dataset,
    val: Option<(&mut Dataset, &mut CsvLayout)>,
    test: Option<&mut Dataset>,
    as_feature: bool,
    categorical: &[TargetColumn],
) -> anyhow::Result<Option<TrainingGroups>> {
    if layout.groups.is_empty() {
        return Ok(None);
    }
    if !as_feature {
        let named = |wanted: &TargetColumn, column: usize| match wanted {
            TargetColumn::Index(i) => *i == column,
            TargetColumn::Name(name) => layout.header.as_ref().is_some_and(|h| h[column] == *name),
        };
        for (&column, name) in layout.groups.iter().zip(layout.group_names()) {
            if categorical.iter().any(|wanted| named(wanted, column)) {
                return Err(bad_input(format!(
                    "--categorical names column {column} ({name}), a --group column, which is kept out of the inputs; --group-as-feature makes it an input too"
                )));
            }
        }
    }
    let labels = |layout: &CsvLayout, data: &Dataset| -> Vec<String> {
        layout.group_labels(data.x.view()).expect("the group columns are inputs until taken out here")
    };
    let mut values = labels(layout, train);
    if let Some((val, val_layout)) = &val {
        values.extend(labels(val_layout, val));
    }
    values.sort_unstable();
    values.dedup();
    let test_labels = test.as_ref().map(|t| labels(layout, t));
    let by = layout.group_names().join(GROUP_JOIN);
    if !as_feature {
        let kept = take_out_groups(layout, 0);
        train.keep_inputs(&kept);
        if let Some(test) = test {
            test.keep_inputs(&kept);
        }
        if let Some((val, val_layout)) = val {
            let kept = take_out_groups(val_layout, 0);
            val.keep_inputs(&kept);
        }
    }
    Ok(Some(TrainingGroups { by, values, test: test_labels }))
}

/// Takes the group columns at or past input `first` out of `layout`, and
/// gives the inputs kept, for [`Dataset::keep_inputs`].
fn take_out_groups(layout: &mut CsvLayout, first: usize) -> Vec<usize> {
    let positions: Vec<usize> = layout.group_inputs().into_iter().flatten().filter(|&p| p >= first).collect();
    let (without, kept) = layout.without_inputs(&positions);
    *layout = without;
    kept
}

/// Takes the groups of the rows eval scores (`rows`, read with `layout`)
/// and takes the group columns at or past input `model_inputs` (those that
/// are not the model's) out of both. `wanted` are the group columns asked
/// for, `declared` the groups to list without rows. None without group
/// columns, or with a warning when some of `wanted` are not in the file.
pub(crate) fn take_eval_groups(
    layout: &mut CsvLayout,
    rows: &mut Dataset,
    model_inputs: usize,
    wanted: &[TargetColumn],
    declared: &[String],
) -> Option<RowGroups> {
    if wanted.is_empty() {
        return None;
    }
    let found = layout.groups.len() == wanted.len();
    let labels = found.then(|| layout.group_labels(rows.x.view())).flatten();
    let by = layout.group_names().join(GROUP_JOIN);
    let kept = take_out_groups(layout, model_inputs);
    rows.keep_inputs(&kept);
    if labels.is_none() {
        crate::data::warn(&format!(
            "the data lacks some of the group columns training had ({}): no per-group report (--group names others)",
            listed(wanted)
        ));
    }
    Some(RowGroups { by, labels: labels?, declared: declared.to_vec() })
}

/// "'sex', 'age'", or indices as they are.
fn listed(columns: &[TargetColumn]) -> String {
    let names: Vec<String> = columns
        .iter()
        .map(|c| match c {
            TargetColumn::Index(i) => i.to_string(),
            TargetColumn::Name(n) => format!("'{n}'"),
        })
        .collect();
    names.join(", ")
}

/// The per-group report of `predictions` over `groups`, and when `folder`
/// is given, fairness.csv and fairness.svg written in it.
pub(crate) fn report(
    groups: &RowGroups,
    predictions: Predictions<'_>,
    folder: Option<&Path>,
) -> anyhow::Result<FairnessReport> {
    let report = FairnessReport::new(predictions, &groups.labels, &groups.declared)?;
    if let Some(folder) = folder {
        wgpu_mlp::report::write_fairness_csv(&folder.join("fairness.csv"), &report)?;
        wgpu_mlp::report::plot_fairness(&folder.join("fairness.svg"), &report, &groups.by)?;
    }
    Ok(report)
}

/// The kept model's report on the test rows' `groups` (--group), written
/// into the run `folder` too; None without --group or a test set.
pub(crate) fn test_report(
    groups: Option<&RowGroups>,
    predictions: Predictions<'_>,
    folder: &Path,
) -> anyhow::Result<Option<FairnessReport>> {
    groups.map(|groups| report(groups, predictions, Some(folder))).transpose()
}

/// Training's header's words on its group columns: "groups: sex (2 in the
/// training rows; not inputs)", or None without --group.
pub(crate) fn header_part(data: &DataSettings) -> Option<String> {
    if data.groups.is_empty() {
        return None;
    }
    let inputs = if data.groups.iter().all(|g| data.columns.contains(g)) { "inputs too" } else { "not inputs" };
    let names: Vec<String> = data
        .groups
        .iter()
        .map(|g| match g {
            TargetColumn::Name(name) => name.clone(),
            TargetColumn::Index(i) => format!("column {i}"),
        })
        .collect();
    Some(format!("groups: {} ({} in the training rows; {inputs})", names.join(GROUP_JOIN), data.group_values.len()))
}
