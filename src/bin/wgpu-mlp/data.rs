//! The data `--data` names, read, split and scaled.

use wgpu_mlp::data::{self, CsvOptions, Scale, Scaler, Source};
use wgpu_mlp::Dataset;

use crate::args::{DataArgs, TaskArg};
use crate::bad_input;

/// The training and test sets `--data` names, scaled and split.
/// `model_sizes` is the model's (inputs, outputs) where one is known: from
/// --layers when training with `outputs_hint` (its last size), from the
/// checkpoint when `scaler` is given; for seed data, the sizes to draw.
pub(crate) fn load_data(
    cli: &DataArgs,
    model_sizes: (usize, usize),
    outputs_hint: Option<usize>,
    scaler: Option<&Scaler>,
) -> anyhow::Result<(Dataset, Option<Dataset>, Scaler)> {
    let csv_only = [
        ("--target", !cli.target.is_empty()),
        ("--task", cli.task.is_some()),
        ("--header", cli.header),
        ("--skip-rows", cli.skip_rows > 0),
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
    let training = scaler.is_none();
    // Training takes the classes from --classes or the labels, and fits
    // --layers to the data afterwards, so a wrong input size is told as such
    // rather than as labels outside --layers' last size. Predict and eval
    // take the checkpoint's classes.
    let classes = if training { cli.classes } else { cli.classes.or(outputs_hint) };
    let (mut train, mut test, default_scale, kind) = match &cli.data {
        Source::Seed => {
            let (inputs, outputs) = model_sizes;
            let train = Dataset::seed_problem(cli.samples.unwrap_or(100), inputs, outputs, cli.seed)?;
            (train, None, Scale::None, "seed")
        }
        Source::Csv(_) | Source::CsvStdin => {
            let options = CsvOptions {
                target: cli.target.clone(),
                header: cli.header.then_some(true),
                skip_rows: cli.skip_rows,
                classify: cli.task == Some(TaskArg::Classify),
                classes,
                delimiter: match &cli.data {
                    Source::Csv(path) => cli.delimiter.or_else(|| crate::sniff::sniff_delimiter(path, cli.skip_rows)),
                    _ => cli.delimiter,
                }
                .unwrap_or(b','),
            };
            let data = match &cli.data {
                Source::Csv(path) => data::load_csv(path, &options)?,
                _ => data::load_csv_from(std::io::stdin().lock(), "standard input", &options)?,
            };
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
    if training {
        if let Some(outputs) = outputs_hint {
            train = fit_layers(train, model_sizes.0, outputs, cli.classes.is_some())?;
            test = test.map(|t| fit_layers(t, model_sizes.0, outputs, cli.classes.is_some())).transpose()?;
        }
        train.require_two_classes()?;
    }
    if test.is_none() {
        let fraction = cli.test_fraction.unwrap_or(if kind == "csv" { 0.25 } else { 0.0 });
        (train, test) = data::split(train, fraction, cli.seed)?;
    }
    let scale = cli.scale.unwrap_or(default_scale);
    // Predict and eval scale as the training data was; training fits anew.
    let scaler = match scaler {
        Some(saved) => {
            if saved.shift.len() != train.x.ncols() {
                return Err(bad_input(format!(
                    "the data has {} inputs per sample, the checkpoint's model takes {}",
                    train.x.ncols(),
                    saved.shift.len()
                )));
            }
            saved.apply(&mut train.x);
            test.iter_mut().for_each(|t| saved.apply(&mut t.x));
            saved.clone()
        }
        None => scale.apply(&mut train.x, test.as_mut().map(|t| &mut t.x)),
    };
    Ok((train, test, scaler))
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
