//! The data `--data` names, read, split and scaled.

use wgpu_mlp::data::{self, CsvOptions, Scale, Scaler, Source};
use wgpu_mlp::Dataset;

use crate::args::{DataArgs, TaskArg};
use crate::bad_input;

/// The training and test sets `--data` names, scaled and split.
pub(crate) fn load_data(
    cli: &DataArgs,
    seed_sizes: (usize, usize),
    outputs_hint: Option<usize>,
    scaler: Option<&Scaler>,
) -> anyhow::Result<(Dataset, Option<Dataset>, Scaler)> {
    let csv_only = [
        ("--target", !cli.target.is_empty()),
        ("--task", cli.task.is_some()),
        ("--header", cli.header),
        ("--skip-rows", cli.skip_rows > 0),
    ];
    if !matches!(cli.data, Source::Csv(_)) {
        if let Some((flag, _)) = csv_only.iter().find(|(_, given)| *given) {
            return Err(bad_input(format!("{flag} applies to --data csv:PATH only")));
        }
    }
    if cli.samples.is_some() && cli.data != Source::Seed {
        return Err(bad_input("--samples applies to --data seed only".into()));
    }
    let classes = cli.classes.or(outputs_hint);
    let (mut train, mut test, default_scale, kind) = match &cli.data {
        Source::Seed => {
            let (inputs, outputs) = seed_sizes;
            let train = Dataset::seed_problem(cli.samples.unwrap_or(100), inputs, outputs, cli.seed)?;
            (train, None, Scale::None, "seed")
        }
        Source::Csv(path) => {
            let options = CsvOptions {
                target: cli.target.clone(),
                header: cli.header.then_some(true),
                skip_rows: cli.skip_rows,
                classify: cli.task == Some(TaskArg::Classify),
                classes,
            };
            (data::load_csv(path, &options)?, None, Scale::Standard, "csv")
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
