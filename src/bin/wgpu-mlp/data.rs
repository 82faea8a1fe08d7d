//! The data `--data` names, read, split and scaled.

use std::io::Write;
use std::path::Path;

use wgpu_mlp::checkpoint::{self, DataSettings};
use wgpu_mlp::data::{
    self, CsvLayout, CsvOptions, Encoder, Missing, ModelColumns, Scale, Scaler, Source, TargetColumn, UnknownCategory,
};
use wgpu_mlp::model::Loss;
use wgpu_mlp::Dataset;

use crate::args::{DataArgs, ModelDataArgs, SplitArg, TargetScaleArg, TaskArg};
use crate::bad_input;

/// What [`load_data`] read.
pub(crate) struct Loaded {
    pub(crate) train: Dataset,
    /// Evaluated after every epoch; picks the best epoch.
    pub(crate) val: Option<Dataset>,
    /// Why there is no validation set, when the default one did not fit.
    pub(crate) val_note: Option<String>,
    /// Scored once, at the end, on the model kept.
    pub(crate) test: Option<Dataset>,
    /// The inputs' scaling.
    pub(crate) scaler: Scaler,
    /// For a CSV file, which of its columns became inputs and targets.
    pub(crate) layout: Option<CsvLayout>,
    /// The targets' scaling, when training with --scale-target.
    pub(crate) target_scaler: Option<Scaler>,
    /// For a CSV file with categorical columns or missing values filled,
    /// how its columns became the model's inputs.
    pub(crate) encoder: Option<Encoder>,
    /// For a CSV file with --group columns, the rows' groups.
    pub(crate) groups: Option<crate::groups::TrainingGroups>,
}

/// The training and test sets `--data` names, split, encoded and scaled
/// with what the training rows give, their scaling, for a CSV file which of
/// its columns became inputs and targets and how, and when training with
/// --scale-target the targets' scaling. `model_sizes` is the model's
/// (inputs, outputs) from --layers, checked when `outputs_hint` (its last
/// size) is given; for seed data, the sizes to draw. `unit_targets` refuses
/// a CSV target outside [0, 1] by its line (--loss bce).
pub(crate) fn load_data(
    cli: &DataArgs,
    model_sizes: (usize, usize),
    outputs_hint: Option<usize>,
    unit_targets: bool,
) -> anyhow::Result<Loaded> {
    let mut csv_layout = None;
    let mut csv_options = None;
    let csv_only = [
        ("--target", !cli.target.is_empty()),
        ("--task", cli.task.is_some()),
        ("--header", cli.header),
        ("--no-header", cli.no_header),
        ("--skip-rows", cli.skip_rows > 0),
        ("--ignore-columns", !cli.ignore_columns.is_empty()),
        ("--id-column", cli.id_column.is_some()),
        ("--categorical", !cli.categorical.is_empty()),
        ("--missing", cli.missing != Missing::Error),
        ("--unknown-category", cli.unknown_category != UnknownCategory::Error),
        ("--val-data", cli.val_data.is_some()),
        ("--group", !cli.group.is_empty()),
        ("--group-as-feature", cli.group_as_feature),
    ];
    let is_csv = matches!(cli.data, Source::Csv(_) | Source::CsvStdin);
    if !is_csv {
        if let Some((flag, _)) = csv_only.iter().find(|(_, given)| *given) {
            return Err(bad_input(format!("{flag} applies to --data csv:PATH only")));
        }
    }
    if cli.samples.is_some() && cli.data != Source::Seed {
        return Err(bad_input("--samples applies to --data seed only".into()));
    }
    // The classes come from --classes or the labels, and --layers is fitted
    // to the data afterwards, so a wrong input size is told as such rather
    // than as labels outside --layers' last size.
    let classes = cli.classes;
    let (mut train, mut test, default_scale, kind) = match &cli.data {
        Source::Seed => {
            let (inputs, outputs) = model_sizes;
            let train = Dataset::seed_problem(cli.samples.unwrap_or(100), inputs, outputs, cli.seed)?;
            (train, None, Scale::None, "seed")
        }
        Source::Csv(_) | Source::CsvStdin => {
            let options = CsvOptions {
                target: cli.target.clone(),
                header: if cli.header || cli.no_header { Some(cli.header) } else { None },
                skip_rows: cli.skip_rows,
                classify: cli.task == Some(TaskArg::Classify),
                classes,
                delimiter: match &cli.data {
                    Source::Csv(path) => cli.delimiter.or_else(|| crate::sniff::sniff_delimiter(path, cli.skip_rows)),
                    _ => cli.delimiter,
                }
                .unwrap_or(b','),
                ignore: cli.id_column.iter().chain(&cli.ignore_columns).cloned().collect(),
                categorical: cli.categorical.clone(),
                missing: cli.missing,
                unit_targets,
                group: cli.group.clone(),
            };
            let (data, layout) = crate::read_once::csv(&cli.data, &options, || match &cli.data {
                Source::Csv(path) => {
                    data::load_csv_with_layout(data::open_csv(path)?, &path.display().to_string(), &options)
                }
                _ => data::load_csv_with_layout(std::io::stdin().lock(), "standard input", &options),
            })?;
            csv_layout = Some(layout);
            csv_options = Some(options);
            (data, None, Scale::Standard, "csv")
        }
        Source::Idx(dir) => {
            if cli.test_fraction.is_some() {
                return Err(bad_input("--test-fraction does not apply to IDX data, which has its own test set".into()));
            }
            let (train, test) = data::load_idx(dir, classes)?;
            (train, Some(test), Scale::Pixels, "idx")
        }
    };
    if test.is_none() {
        let fraction = cli.test_fraction.unwrap_or(default_test_fraction(kind));
        (train, test) = data::split(train, fraction, cli.seed)?;
    }
    // The validation rows: a file of their own, or a share of the training rows.
    let mut val_note = None;
    let (mut val, mut val_layout) = match (&cli.val_data, &csv_options, &csv_layout) {
        (Some(source), Some(options), Some(layout)) => {
            let (rows, layout) = load_val_csv(source, options, layout, train.classes)?;
            (Some(rows), Some(layout))
        }
        (Some(source), _, _) => {
            return Err(bad_input(format!("--val-data {source}: a validation file is read for --data csv:PATH only")))
        }
        (None, _, _) if cli.fold.is_some() => {
            let fold = cli.fold.expect("matched as given");
            let val;
            (train, val) = data::fold_split(train, fold, cli.seed)?;
            (Some(val), csv_layout.clone())
        }
        (None, _, _) => match cli.val_fraction {
            Some(fraction) => {
                let val;
                (train, val) = data::validation_split(train, fraction, cli.seed)?;
                (val, csv_layout.clone())
            }
            // By default a table too small to give up a tenth of its rows
            // (per class) trains without a validation set.
            None => {
                let (rows, fraction) = (train.len(), default_val_fraction(kind));
                let held_out = data::held_out_count(&train, fraction);
                if fraction > 0.0 && (held_out == 0 || held_out == rows) {
                    val_note = Some(format!(
                        "no validation set: {fraction} of {rows} training rows is too few to hold out (--val-fraction to choose)"
                    ));
                    (None, None)
                } else {
                    let val;
                    (train, val) = data::validation_split(train, fraction, cli.seed)?;
                    (val, csv_layout.clone())
                }
            }
        },
    };
    let groups = match &mut csv_layout {
        Some(layout) => {
            let val = val.as_mut().zip(val_layout.as_mut());
            crate::groups::take_training_groups(
                layout,
                &mut train,
                val,
                test.as_mut(),
                cli.group_as_feature,
                &cli.categorical,
            )?
        }
        None => None,
    };
    // Categories and fills come from the training rows only, as the scaling does.
    let encoder = match &csv_layout {
        Some(layout) => {
            let held_out =
                [(val.as_mut(), val_layout.as_ref(), "validation row"), (test.as_mut(), Some(layout), "test row")];
            encode(&mut train, held_out, layout, cli.missing, cli.unknown_category)?
        }
        None => None,
    };
    if let Some(outputs) = outputs_hint {
        let fit = |data: Dataset| fit_layers(data, model_sizes.0, outputs, cli.classes.is_some());
        train = fit(train)?;
        val = val.map(fit).transpose()?;
        test = test.map(fit).transpose()?;
    }
    train.require_two_classes()?;
    let mut scaler = cli.scale.unwrap_or(default_scale).fit(&train.x);
    if let Some(encoder) = &encoder {
        scaler.keep_unscaled(&encoder.one_hot_inputs());
    }
    scaler.apply(&mut train.x);
    val.iter_mut().chain(test.iter_mut()).for_each(|t| scaler.apply(&mut t.x));
    let target_scaler = match cli.scale_target {
        Some(TargetScaleArg::Standard) if train.classes.is_some() => {
            return Err(bad_input("--scale-target applies to a regression; this data's targets are classes".into()))
        }
        // Fitted on the training rows only, as the inputs' scaling is.
        Some(TargetScaleArg::Standard) => {
            let target_scaler = Scale::Standard.fit(&train.y);
            std::iter::once(&mut train)
                .chain(val.iter_mut())
                .chain(test.iter_mut())
                .for_each(|d| target_scaler.apply(&mut d.y));
            Some(target_scaler)
        }
        Some(TargetScaleArg::None) | None => None,
    };
    Ok(Loaded { train, val, val_note, test, scaler, layout: csv_layout, target_scaler, encoder, groups })
}

/// The share of the training rows held out for validation by default:
/// real data gets a validation set, the textbook example none.
pub(crate) fn default_val_fraction(kind: &str) -> f64 {
    if kind == "seed" {
        0.0
    } else {
        0.1
    }
}

/// Reads `--val-data` with the training file's `options`, finding the
/// training `layout`'s columns in it (by name where both have a header),
/// its labels one-hot over the training data's `classes`.
fn load_val_csv(
    source: &Source,
    options: &CsvOptions,
    layout: &CsvLayout,
    classes: Option<usize>,
) -> anyhow::Result<(Dataset, CsvLayout)> {
    let Source::Csv(path) = source else {
        return Err(bad_input(format!("--val-data {source}: give a csv:PATH file")));
    };
    let columns = ModelColumns {
        inputs: layout.named(&layout.inputs),
        targets: layout.named(&layout.targets),
        targets_optional: false,
        width: Some(layout.width),
        categorical: (0..layout.texts.len()).filter(|&i| layout.texts[i].is_some()).collect(),
        groups: layout.named(&layout.groups),
        groups_optional: false,
    };
    let options = CsvOptions { classes, ..options.clone() };
    let name = path.display().to_string();
    let (rows, val_layout) = data::load_csv_columns(data::open_csv(path)?, &name, &options, &columns)
        .map_err(|e| anyhow::Error::from(e).context("--val-data"))?;
    Ok((rows, val_layout))
}

/// Encodes the raw CSV rows of `train` (read with `layout`) and of each
/// `held_out` set (read with its own layout; named in messages) as an
/// encoder fitted on `train` gives them; None and the rows unchanged when
/// there is nothing to encode (see [`Encoder::fit`]).
fn encode<'a>(
    train: &mut Dataset,
    held_out: impl IntoIterator<Item = (Option<&'a mut Dataset>, Option<&'a CsvLayout>, &'a str)>,
    layout: &CsvLayout,
    missing: Missing,
    unknown: UnknownCategory,
) -> anyhow::Result<Option<Encoder>> {
    let names = layout.input_names();
    let Some(encoder) = Encoder::fit(train.x.view(), &layout.texts, missing, &names)? else {
        return Ok(None);
    };
    train.x = encoder.transform(train.x.view(), &layout.texts, unknown, &names, "training row")?;
    for (rows, rows_layout, row_name) in held_out {
        if let (Some(rows), Some(rows_layout)) = (rows, rows_layout) {
            let names = rows_layout.input_names();
            rows.x = encoder.transform(rows.x.view(), &rows_layout.texts, unknown, &names, row_name)?;
        }
    }
    Ok(Some(encoder))
}

/// The share of rows held out of a source without a test set of its own.
pub(crate) fn default_test_fraction(kind: &str) -> f64 {
    if kind == "csv" {
        0.25
    } else {
        0.0
    }
}

/// How training read its data (`cli`, and the `train` rows, CSV `layout`
/// and `groups` [`load_data`] gave), for the checkpoint's metadata: predict
/// and eval read the same rows from it. A file's path is made absolute, so
/// they find it from any folder.
pub(crate) fn data_settings(
    cli: &DataArgs,
    train: &Dataset,
    layout: Option<&CsvLayout>,
    encoder: Option<&Encoder>,
    groups: Option<&crate::groups::TrainingGroups>,
) -> DataSettings {
    let (columns, target, header) = match (&cli.data, layout) {
        (Source::Csv(_) | Source::CsvStdin, Some(layout)) => {
            (layout.named(&layout.inputs), layout.named(&layout.targets), layout.header.is_some())
        }
        _ => (Vec::new(), Vec::new(), false),
    };
    let (kind, default_scale) = match cli.data {
        Source::Seed => ("seed", Scale::None),
        Source::Csv(_) | Source::CsvStdin => ("csv", Scale::Standard),
        Source::Idx(_) => ("idx", Scale::Pixels),
    };
    DataSettings {
        source: absolute(&cli.data),
        samples: (cli.data == Source::Seed).then(|| cli.samples.unwrap_or(100)),
        columns,
        target,
        classify: train.classes.is_some(),
        classes: train.classes,
        skip_rows: cli.skip_rows,
        header,
        scale: cli.scale.unwrap_or(default_scale),
        test_fraction: cli.test_fraction.unwrap_or(default_test_fraction(kind)),
        seed: cli.seed,
        scale_target: cli.scale_target == Some(TargetScaleArg::Standard),
        width: layout.map(|l| l.width),
        missing: cli.missing,
        encoder: encoder.cloned(),
        groups: layout.map_or_else(Vec::new, |l| l.named(&l.groups)),
        group_values: groups.map_or_else(Vec::new, |g| g.values.clone()),
    }
}

/// `source` with its path made absolute where it names an existing one, so
/// two spellings of a file compare equal.
pub(crate) fn absolute(source: &Source) -> Source {
    let canonical = |path: &std::path::Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match source {
        Source::Csv(path) => Source::Csv(canonical(path)),
        Source::Idx(dir) => Source::Idx(canonical(dir)),
        other => other.clone(),
    }
}

/// The data checked against --layers (`inputs` first, `outputs` last): the
/// inputs must match, and classes inferred from the labels widen or narrow to
/// `outputs` (a label at or above it is an error naming its sample).
fn fit_layers(data: Dataset, inputs: usize, outputs: usize, classes_given: bool) -> anyhow::Result<Dataset> {
    if data.x.ncols() != inputs {
        return Err(bad_input(format!(
            "--layers does not fit the data: it has {} inputs per sample, and --layers starts with {inputs}",
            data.x.ncols()
        )));
    }
    match data.classes {
        Some(classes) if classes != outputs && !classes_given => {
            let labels = data.labels();
            Ok(Dataset::classification(data.x, &labels, outputs)?)
        }
        _ => Ok(data),
    }
}

/// The rows predict and eval run a model on, scaled as in training.
pub(crate) struct ModelRows {
    /// x (N, IN) scaled; y (N, OUT), or (N, 0) for rows without targets.
    pub(crate) data: Dataset,
    /// Whether the model classifies (its outputs are classes).
    pub(crate) classify: bool,
    /// The columns predict copies (`copy`), as text, one entry per row.
    pub(crate) text: Option<data::TextColumns>,
    /// Eval's rows' groups, with group columns (--group, or training's).
    pub(crate) groups: Option<crate::groups::RowGroups>,
}

/// Which command reads the rows: predict takes rows without targets, and
/// answers every row unless told otherwise.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Predict,
    Eval,
}

/// The rows of `cli`'s data for `model` (read from `path`): each setting the
/// flags leave open is training's, from the checkpoint's `data.*` metadata.
/// A checkpoint without them needs --data, and then reads as training would
/// have with the flags given. The `copy` columns of a CSV file are read
/// again as text (predict's --id-column and --passthrough). Eval reads the
/// groups of `group` (eval's --group), else training's where the file has them.
pub(crate) fn load_model_rows(
    cli: &ModelDataArgs,
    model: &checkpoint::Model,
    path: &Path,
    purpose: Purpose,
    copy: &[TargetColumn],
    group: &[TargetColumn],
) -> anyhow::Result<ModelRows> {
    let saved =
        DataSettings::from_metadata(&model.metadata).map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    let source = match (&cli.data, &saved) {
        (Some(source), _) => source.clone(),
        (None, Some(saved)) if saved.source == Source::CsvStdin => {
            return Err(bad_input("the training data came from standard input, which cannot be read again; give --data".into()))
        }
        (None, Some(saved)) => saved.source.clone(),
        (None, None) => {
            return Err(bad_input(format!(
                "{} does not say what data its model was trained on (it was written before checkpoints kept the data settings, or by Mlp::save); give --data",
                path.display()
            )))
        }
    };
    // The training data itself, read again: its file settings and split apply.
    let same = saved.as_ref().filter(|s| s.source == absolute(&source) && source != Source::CsvStdin);
    let split = cli.split.unwrap_or(match purpose {
        Purpose::Predict => SplitArg::All,
        Purpose::Eval if same.is_some() || saved.is_none() => SplitArg::Test,
        Purpose::Eval => SplitArg::All,
    });
    let is_csv = matches!(source, Source::Csv(_) | Source::CsvStdin);
    if !copy.is_empty() {
        // The copied text is read in a second pass, and matched to the
        // answers by row number, so it needs a file and every row in order.
        if !matches!(source, Source::Csv(_)) {
            return Err(bad_input("--id-column and --passthrough copy columns of a csv:PATH file only".into()));
        }
        if split != SplitArg::All {
            return Err(bad_input("--id-column and --passthrough take every row (--split all)".into()));
        }
    }
    let csv_only = [
        ("--target", !cli.target.is_empty()),
        ("--task", cli.task.is_some()),
        ("--header", cli.header),
        ("--no-header", cli.no_header),
        ("--skip-rows", cli.skip_rows.is_some()),
        ("--group", !group.is_empty()),
    ];
    if let (false, Some((flag, _))) = (is_csv, csv_only.iter().find(|(_, given)| *given)) {
        return Err(bad_input(format!("{flag} applies to --data csv:PATH only")));
    }
    if cli.samples.is_some() && source != Source::Seed {
        return Err(bad_input("--samples applies to --data seed only".into()));
    }
    if split == SplitArg::All {
        let seeds_data = source == Source::Seed;
        if let Some(flag) =
            [("--seed", cli.seed.is_some() && !seeds_data), ("--test-fraction", cli.test_fraction.is_some())]
                .iter()
                .find_map(|(flag, given)| given.then_some(flag))
        {
            return Err(bad_input(format!(
                "{flag} chooses the held-out rows of --split test; --split all runs every row"
            )));
        }
    }
    if cli.test_fraction.is_some() && matches!(source, Source::Idx(_)) {
        return Err(bad_input("--test-fraction does not apply to IDX data, which has its own test set".into()));
    }
    let spec = &model.spec;
    let classify = match (cli.task, &saved) {
        (Some(task), _) => task == TaskArg::Classify,
        (None, Some(saved)) => saved.classify,
        (None, None) => spec.loss() == Loss::CrossEntropy,
    };
    let classes = classify.then_some(spec.outputs());
    let seed = cli.seed.or(saved.as_ref().map(|s| s.seed)).unwrap_or(0);
    let needs_targets = purpose == Purpose::Eval || split == SplitArg::Test;

    let encoder = saved.as_ref().and_then(|s| s.encoder.as_ref());
    // A missing value is filled as training filled it, or refused; eval
    // leaves out rows as training did, predict answers every row.
    let missing = match saved.as_ref().map_or(Missing::Error, |s| s.missing) {
        Missing::Mean | Missing::Median => Missing::Mean,
        Missing::Drop if purpose == Purpose::Eval => Missing::Drop,
        Missing::Drop | Missing::Error => Missing::Error,
    };
    let mut text = None;
    // A CSV file's categorical texts and input names, for the encoder.
    let mut csv_layout = None;
    // The group columns eval reads, and the model's inputs ahead of them.
    let saved_groups = saved.as_ref().map_or(&[][..], |s| s.groups.as_slice());
    let groups_wanted = match purpose {
        Purpose::Eval if !group.is_empty() => group.to_vec(),
        Purpose::Eval if is_csv => saved_groups.to_vec(),
        _ => Vec::new(),
    };
    let mut model_inputs = 0;
    let (mut rows, fraction) = match &source {
        Source::Seed => {
            let samples = cli.samples.or(saved.as_ref().and_then(|s| s.samples)).unwrap_or(100);
            let data = Dataset::seed_problem(samples, spec.inputs(), spec.outputs(), seed)?;
            (data, default_test_fraction("seed"))
        }
        Source::Csv(_) | Source::CsvStdin => {
            let options = CsvOptions {
                target: cli.target.clone(),
                header: if cli.header || cli.no_header { Some(cli.header) } else { same.map(|s| s.header) },
                skip_rows: cli.skip_rows.or(same.map(|s| s.skip_rows)).unwrap_or(0),
                classify,
                classes,
                // A `;` or tab between fields is found as training found it.
                delimiter: match &source {
                    Source::Csv(path) => {
                        crate::sniff::sniff_delimiter(path, cli.skip_rows.or(same.map(|s| s.skip_rows)).unwrap_or(0))
                            .unwrap_or(0)
                    }
                    _ => 0,
                },
                missing,
                // A bce model's loss takes targets that are probabilities.
                unit_targets: spec.loss() == Loss::Bce && needs_targets,
                group: groups_wanted.clone(),
                ..Default::default()
            };
            let (input, name): (Box<dyn std::io::Read>, String) = match &source {
                Source::Csv(path) => (data::open_csv(path)?, path.display().to_string()),
                _ => (Box::new(std::io::stdin().lock()), "standard input".into()),
            };
            let (data, layout) = match saved.as_ref().filter(|s| !s.columns.is_empty()) {
                Some(saved) => {
                    if let Some(encoder) = encoder.filter(|e| e.columns.len() != saved.columns.len()) {
                        return Err(bad_input(format!(
                            "{}: its 'data.encoder' encodes {} columns, and its 'data.columns' lists {}",
                            path.display(),
                            encoder.columns.len(),
                            saved.columns.len()
                        )));
                    }
                    let columns = ModelColumns {
                        inputs: saved.columns.clone(),
                        targets: if cli.target.is_empty() { saved.target.clone() } else { cli.target.clone() },
                        targets_optional: !needs_targets,
                        width: saved.width,
                        categorical: encoder.map_or_else(Vec::new, Encoder::categorical),
                        groups: groups_wanted.clone(),
                        groups_optional: group.is_empty(),
                    };
                    model_inputs = saved.columns.len();
                    data::load_csv_columns(input, &name, &options, &columns)
                }
                None => data::load_csv_with_layout(input, &name, &options),
            }
            .map_err(|e| with_missing_hint(e, saved.as_ref().map_or(Missing::Error, |s| s.missing)))?;
            csv_layout = Some(layout);
            if let (false, Source::Csv(path)) = (copy.is_empty(), &source) {
                text = Some(data::load_csv_text(data::open_csv(path)?, &name, &options, copy)?);
            }
            (data, default_test_fraction("csv"))
        }
        Source::Idx(dir) => {
            let (train, test) = data::load_idx(dir, classes)?;
            let rows = match split {
                SplitArg::Test => test,
                SplitArg::All => Dataset {
                    x: ndarray::concatenate(ndarray::Axis(0), &[train.x.view(), test.x.view()])?,
                    y: ndarray::concatenate(ndarray::Axis(0), &[train.y.view(), test.y.view()])?,
                    classes: train.classes,
                },
            };
            if let (Some(_), SplitArg::All, Purpose::Eval) = (same, split, purpose) {
                warn("--split all scores the training images too: these rows overlap the training rows");
            }
            (rows, 0.0)
        }
    };
    if !matches!(source, Source::Idx(_)) {
        let fraction = cli.test_fraction.or(saved.as_ref().map(|s| s.test_fraction)).unwrap_or(fraction);
        rows = match split {
            SplitArg::All => {
                if let (Some(_), Purpose::Eval) = (same, purpose) {
                    warn("--split all scores every row of the training data: these rows overlap the training rows");
                }
                rows
            }
            SplitArg::Test => held_out(rows, fraction, seed, same)?,
        };
    }
    let declared = match saved.as_ref() {
        Some(saved) if groups_wanted == saved.groups => saved.group_values.clone(),
        _ => Vec::new(),
    };
    let groups = csv_layout
        .as_mut()
        .and_then(|layout| crate::groups::take_eval_groups(layout, &mut rows, model_inputs, &groups_wanted, &declared));
    if let (Some(encoder), Some(layout)) = (encoder, &csv_layout) {
        let scored = if split == SplitArg::All { "data row" } else { "test row" };
        rows.x =
            encoder.transform(rows.x.view(), &layout.texts, cli.unknown_category, &layout.input_names(), scored)?;
    }
    if rows.x.ncols() != spec.inputs() {
        return Err(bad_input(format!(
            "the data has {} inputs per sample, the checkpoint's model {spec} takes {}",
            rows.x.ncols(),
            spec.inputs()
        )));
    }
    if needs_targets && rows.y.ncols() != spec.outputs() {
        return Err(bad_input(format!(
            "the data has {} targets per sample, the checkpoint's model {spec} gives {} outputs",
            rows.y.ncols(),
            spec.outputs()
        )));
    }
    if let Some(scaler) = &model.scaler {
        scaler.apply(&mut rows.x);
    }
    if let Some(text) = &text {
        if text.rows.len() != rows.len() {
            return Err(bad_input(format!(
                "{} changed while it was read: {} rows, then {}",
                source,
                rows.len(),
                text.rows.len()
            )));
        }
    }
    Ok(ModelRows { data: rows, classify, text, groups })
}

/// A CSV loader's error about a missing value, told in predict's and
/// eval's terms: they fill one only where training (`trained`) did.
fn with_missing_hint(error: wgpu_mlp::Error, trained: Missing) -> anyhow::Error {
    match &error {
        wgpu_mlp::Error::InvalidInput(message) if message.contains("a missing value (") => {
            let before = message.split_once("; `missing`").map_or(message.as_str(), |(before, _)| before);
            bad_input(format!(
                "{before}; the model was trained with --missing {trained}, so it has no value to fill in (a model trained with --missing mean or median fills missing values in)"
            ))
        }
        _ => error.into(),
    }
}

/// The test rows of `data` that a split of `fraction` by `seed` holds out
/// (every row when it holds out none), with a warning when they overlap the
/// training rows of `same`, the run that trained on this data.
fn held_out(data: Dataset, fraction: f64, seed: u64, same: Option<&DataSettings>) -> anyhow::Result<Dataset> {
    let trained = same.map(|s| (s.test_fraction, s.seed));
    if trained.is_some_and(|t| t != (fraction, seed)) {
        let (test, _) = split_rows(&data, fraction, seed)?;
        let (_, training) = split_rows(&data, trained.map_or(0.0, |t| t.0), trained.map_or(0, |t| t.1))?;
        let overlap = test.iter().filter(|&&row| training[row]).count();
        if overlap > 0 {
            warn(&format!(
                "--seed {seed} --test-fraction {fraction} holds out other rows than training did (--seed {} --test-fraction {}): {overlap} of the {} rows scored overlap the training rows",
                trained.map_or(0, |t| t.1),
                trained.map_or(0.0, |t| t.0),
                test.len()
            ));
        }
    }
    let (train, test) = data::split(data, fraction, seed)?;
    if test.is_none() && same.is_some() {
        warn("training held out no rows, so every row is scored: these rows overlap the training rows");
    }
    Ok(test.unwrap_or(train))
}

/// The rows a split of `fraction` by `seed` holds out, and for each row
/// whether it trains. The split is run on the row numbers themselves (two
/// exact f32 halves) with the same targets, so it groups the rows as the
/// real split does.
fn split_rows(data: &Dataset, fraction: f64, seed: u64) -> anyhow::Result<(Vec<usize>, Vec<bool>)> {
    let x =
        ndarray::Array2::from_shape_fn(
            (data.len(), 2),
            |(i, half)| {
                if half == 0 {
                    (i >> 16) as f32
                } else {
                    (i & 0xffff) as f32
                }
            },
        );
    let numbered = Dataset { x, y: data.y.clone(), classes: data.classes };
    let (train, test) = data::split(numbered, fraction, seed)?;
    let row = |r: ndarray::ArrayView1<f32>| ((r[0] as usize) << 16) | r[1] as usize;
    let mut trains = vec![false; data.len()];
    train.x.rows().into_iter().for_each(|r| trains[row(r)] = true);
    let test = test.map_or_else(Vec::new, |t| t.x.rows().into_iter().map(row).collect());
    Ok((test, trains))
}

/// A warning on stderr (a failing stderr is no reason to stop).
pub(crate) fn warn(message: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {message}");
}
