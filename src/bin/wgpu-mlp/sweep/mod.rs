//! `wgpu-mlp sweep`: many models, each trained exactly as a single run of
//! its flags would train it, side by side on the CPU's threads (one after
//! another on a GPU), then ranked by the monitored metric.

mod grid;
mod ranks;
mod table;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use clap::Parser;
use wgpu_mlp::run::RunFolder;
use wgpu_mlp::train::{Monitor, StopReason};
use wgpu_mlp::{Backend, Error};

use crate::args::{Cli, TrainArgs};
use crate::bad_input;
use crate::device::choose_backend;
use crate::train::Prepared;
use grid::{Grid, SWEPT};
use table::Row;

/// The flags of `wgpu-mlp sweep`; every other flag is the training command's.
#[derive(Debug, clap::Args)]
pub(crate) struct SweepArgs {
    /// Settings one model per line, as flag=value pairs separated by spaces
    /// (`lr=0.01 hidden=64,64 seed=3`; a value is whole, so a layer list
    /// keeps its commas); `#` starts a comment. The flags are those a sweep
    /// varies; a line leaves the others as the command line gives them, and
    /// lists on the command line multiply the lines.
    #[arg(long)]
    pub(crate) sweep_file: Option<PathBuf>,

    /// K-fold cross-validation: every setting trains K models, the
    /// validation set of model I its fold I of the training rows (after the
    /// test split), stratified by class and chosen by --seed (as a single run
    /// with --fold I/K); folds.csv gives each setting's mean and standard
    /// deviation over its folds, which pick the winner. K is at least 2 and at
    /// most the training rows of the smallest class.
    #[arg(long)]
    pub(crate) folds: Option<usize>,

    /// Models trained at once on the CPU, each on one thread (its matmuls
    /// too) [default: the cores]; a GPU trains them one after another.
    #[arg(long, value_parser = parse_jobs)]
    pub(crate) jobs: Option<usize>,

    /// Which models' checkpoints stay in --out: best (only the winner's,
    /// checkpoint-best.safetensors) or all (also each model's kept model as
    /// models/model-I.safetensors, I as in sweep.csv).
    #[arg(long, value_enum, default_value_t = CheckpointsArg::Best)]
    pub(crate) checkpoints: CheckpointsArg,

    /// The sweep folder, new or empty: sweep.csv, sweep.svg, folds.csv (with
    /// --folds) and the checkpoints [default: runs/<UTC time>].
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,

    /// Print one JSON object on stdout (the rows of sweep.csv, the folds'
    /// means and the winner); the lines per model go to stderr.
    #[arg(long)]
    pub(crate) json: bool,

    /// No line per model.
    #[arg(long)]
    pub(crate) quiet: bool,

    /// The training flags (`wgpu-mlp --help`), with the swept ones' alternatives.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "TRAINING_FLAGS")]
    pub(crate) training: Vec<String>,
}

/// `--checkpoints`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CheckpointsArg {
    Best,
    All,
}

fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{text}' must be a whole number of at least 1")),
    }
}

/// The sweep's own flags that take a value, and those that do not.
const OWN_FLAGS: [&str; 5] = ["sweep-file", "folds", "jobs", "checkpoints", "out"];
const OWN_SWITCHES: [&str; 3] = ["json", "quiet", "help"];

/// The command line `args` with a sweep's own flags moved ahead of the
/// training flags, wherever they were given: clap gives every word after
/// the first training flag to [`SweepArgs::training`].
pub(crate) fn own_flags_first(args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).is_none_or(|command| command != "sweep") {
        return args;
    }
    let (mut own, mut training) = (Vec::new(), Vec::new());
    let mut rest = args[2..].iter().cloned();
    while let Some(arg) = rest.next() {
        let name = arg.to_str().and_then(|a| a.strip_prefix("--")).map(|a| a.split_once('=').map_or(a, |(n, _)| n));
        match name {
            Some(name) if OWN_FLAGS.contains(&name) => {
                let inline = arg.to_str().is_some_and(|a| a.contains('='));
                own.push(arg);
                if !inline {
                    own.extend(rest.next());
                }
            }
            Some(name) if OWN_SWITCHES.contains(&name) => own.push(arg),
            _ if arg == "-h" => own.push(arg),
            _ => training.push(arg),
        }
    }
    args[..2].iter().cloned().chain(own).chain(training).collect()
}

/// `wgpu-mlp sweep`: trains every model, writes the folder, prints the winner.
pub(crate) fn run(args: &SweepArgs) -> anyhow::Result<()> {
    let grid = grid::models(&args.training, args.sweep_file.as_deref(), args.folds)?;
    crate::read_once::keep_reads();
    // Every model's flags are checked as a run's before any model trains,
    // and the first model's data and settings (the folds too).
    for model in &grid.models {
        training_flags(&model.args(&grid.shared))?;
    }
    let ranks = ranks::Ranks::join()?;
    // This rank's models: all of them, or with mpirun its share.
    let mine: Vec<usize> = (0..grid.models.len()).filter(|&m| ranks.owns(m)).collect();
    let first = training_flags(&grid.models[0].args(&grid.shared))?;
    let monitor = Prepared::new(&first)?.monitor();
    let backend = choose_backend(first.device, first.gpu.path, first.gpu.matmul.kernel())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = if backend.is_gpu() { 1 } else { args.jobs.unwrap_or(cores).min(mine.len()).max(1) };
    // One thread per model's own CPU work: read once, at the first product,
    // which has not run yet. A value the user set stays.
    if jobs > 1 && std::env::var_os(wgpu_mlp::threads::THREADS_ENV).is_none() {
        std::env::set_var(wgpu_mlp::threads::THREADS_ENV, "1");
    }
    // A rank but the first keeps its models in a scratch folder, removed at the end.
    let scratch = ranks.scratch();
    let _remove_scratch = crate::data_parallel::Scratch(scratch.clone());
    let out = scratch.as_deref().or(args.out.as_deref());
    if let Some(out) = out.filter(|out| out.read_dir().is_ok_and(|mut names| names.next().is_some())) {
        return Err(bad_input(format!(
            "the sweep folder {} is not empty; give --out a new or empty folder",
            out.display()
        )));
    }
    let folder = RunFolder::create(out, Default::default(), None)?;
    let dir = folder.dir();
    let models_dir = dir.join("models");
    std::fs::create_dir_all(&models_dir).with_context(|| format!("cannot create {}", models_dir.display()))?;
    let swept = swept_flags(&grid);
    let done = AtomicUsize::new(0);
    let train = |model: usize, backend: &Backend| -> anyhow::Result<Row> {
        let row = train_model(&grid, model, backend, monitor, &models_dir)?;
        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
        if !args.quiet {
            let _ =
                writeln!(std::io::stderr(), "{}", progress_line(&row, &swept, finished, grid.models.len(), monitor));
        }
        Ok(row)
    };
    let rows = match &backend {
        Backend::Cpu => wgpu_mlp::sweep::run_models(jobs, mine.len(), |i| train(mine[i], &Backend::Cpu))??,
        gpu => mine.iter().map(|&m| train(m, gpu)).collect::<anyhow::Result<Vec<_>>>()?,
    };
    // With mpirun, rank 0 goes on with every rank's rows and checkpoints.
    let Some(rows) = ranks.gather(rows, &models_dir)? else {
        return Ok(());
    };
    table::write_csv(&dir.join("sweep.csv"), monitor, &rows)?;
    let folds = args.folds.map(|k| table::fold_summaries(&rows, k));
    if let Some(summaries) = &folds {
        table::write_folds_csv(&dir.join("folds.csv"), monitor, &rows, summaries)?;
    }
    wgpu_mlp::report::plot_sweep(&dir.join("sweep.svg"), &monitor.to_string(), &plot_panels(&rows, &swept))?;
    let winner = table::winner(monitor, &rows, folds.as_deref());
    let best_checkpoint = dir.join(wgpu_mlp::run::BEST_CHECKPOINT);
    if let Some(winner) = winner {
        let bytes = std::fs::read(model_checkpoint(&models_dir, winner))
            .with_context(|| format!("cannot read model {winner}'s checkpoint"))?;
        wgpu_mlp::report::write_atomically(&best_checkpoint, |file| file.write_all(&bytes))?;
    }
    if args.checkpoints == CheckpointsArg::Best {
        std::fs::remove_dir_all(&models_dir).with_context(|| format!("cannot remove {}", models_dir.display()))?;
    }
    let line = winner_line(winner, &rows, folds.as_deref(), &swept, monitor, &best_checkpoint);
    let mut out = crate::stream::stdout();
    if args.json {
        let json = serde_json::json!({
            "out": dir.display().to_string(),
            "monitor": monitor.to_string(),
            "models": rows.iter().map(table::row_json).collect::<Vec<_>>(),
            "folds": folds.as_ref().map(|summaries| summaries.iter().map(|s| serde_json::json!({
                "models": s.models,
                "mean": s.mean_std.map(|m| m.0),
                "std": s.mean_std.map(|m| m.1),
            })).collect::<Vec<_>>()),
            "winner": winner.map(|w| serde_json::json!({
                "model": w,
                "settings": table::row_json(&rows[w])["settings"],
                "checkpoint": best_checkpoint.display().to_string(),
            })),
            "swept": swept,
        });
        let _ = writeln!(crate::stream::stderr(), "{line}");
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "{line}")?;
    }
    Ok(out.flush()?)
}

/// The training command's flags `args`, parsed as a single run parses them;
/// a clap error becomes one line, exit code 2.
fn training_flags(args: &[String]) -> anyhow::Result<TrainArgs> {
    let argv = std::iter::once("wgpu-mlp".to_string()).chain(args.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(Cli { command: None, train }) => Ok(train),
        Ok(Cli { command: Some(_), .. }) => Err(bad_input("a sweep takes training flags, not a command".into())),
        Err(error) => {
            let text = error.render().to_string();
            let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
            Err(bad_input(format!("the training flags: {first}")))
        }
    }
}

/// Trains model `model` of `grid` on `backend` and saves its kept model
/// into `models_dir`; a model whose loss stopped being finite is a row
/// without a score.
fn train_model(
    grid: &Grid,
    model: usize,
    backend: &Backend,
    monitor: Monitor,
    models_dir: &Path,
) -> anyhow::Result<Row> {
    let flags = &grid.models[model];
    let args = flags.args(&grid.shared);
    let command = shell_words(&args);
    let in_model = || format!("model {model} ({command})");
    let prepared = Prepared::new(&training_flags(&args)?).with_context(in_model)?;
    if prepared.monitor() != monitor {
        return Err(bad_input(format!(
            "{}: it monitors {}, and model 0 {monitor}; a sweep ranks its models by one metric (give --monitor)",
            in_model(),
            prepared.monitor()
        )));
    }
    let mut row = Row {
        model,
        fold: flags.fold.map(|f| f.index),
        settings: prepared.swept_values(),
        score: None,
        best_epoch: None,
        kept_epoch: 0,
        epochs: 0,
        stop_reason: "non-finite-loss",
        best: None,
        last: None,
        seconds: 0.0,
        command: command.clone(),
    };
    let trained = match prepared.train(backend) {
        Ok(trained) => trained,
        Err(error) => match error.downcast_ref::<Error>() {
            Some(Error::NonFiniteLoss { epoch, .. }) => {
                row.epochs = *epoch;
                return Ok(row);
            }
            _ => return Err(error.context(in_model())),
        },
    };
    trained.save(&model_checkpoint(models_dir, model))?;
    let report = &trained.report;
    let best_index = report.best.map_or(report.epochs, |b| b.epoch).checked_sub(1);
    row.best = best_index.and_then(|i| report.history.get(i)).cloned();
    row.last = report.last().cloned();
    row.best_epoch = report.best.map(|b| b.epoch);
    row.kept_epoch = trained.kept_epoch();
    // The model kept is the one a user gets: --keep best's best epoch, or --keep last's last.
    let kept = row.kept_epoch.checked_sub(1).and_then(|i| report.history.get(i));
    row.score = kept.and_then(|metrics| monitor.value(metrics));
    row.epochs = report.epochs;
    row.stop_reason = match report.stop_reason {
        StopReason::Epochs => "epochs",
        StopReason::EarlyStopping => "early-stopping",
    };
    row.seconds = report.seconds;
    Ok(row)
}

fn model_checkpoint(models_dir: &Path, model: usize) -> PathBuf {
    models_dir.join(format!("model-{model}.safetensors"))
}

/// The command line of `args` as a shell reads it, quoted where needed.
fn shell_words(args: &[String]) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.,/:=+@%".contains(c);
    let quoted = args.iter().map(|arg| match !arg.is_empty() && arg.chars().all(plain) {
        true => arg.clone(),
        false => format!("'{}'", arg.replace('\'', r"'\''")),
    });
    std::iter::once("wgpu-mlp".to_string()).chain(quoted).collect::<Vec<_>>().join(" ")
}

/// The flags whose value differs between models (in sweep.csv's order),
/// with "fold" last under --folds.
fn swept_flags(grid: &Grid) -> Vec<&'static str> {
    let mut swept: Vec<&'static str> = SWEPT
        .iter()
        .map(|(flag, _)| *flag)
        .filter(|flag| {
            let value = |m: &grid::ModelFlags| m.settings.iter().find(|(f, _)| f == flag).map(|(_, v)| v.clone());
            let first = value(&grid.models[0]);
            grid.models.iter().any(|m| value(m) != first)
        })
        .collect();
    if grid.models[0].fold.is_some() {
        swept.push("fold");
    }
    swept
}

/// "model 3 of 64 (lr 0.01, hidden 64) val-loss 0.123456, best epoch 9, 1.23 s".
fn progress_line(row: &Row, swept: &[&str], done: usize, total: usize, monitor: Monitor) -> String {
    let result = match row.score {
        Some(score) => format!("{monitor} {score:.6} at its kept epoch {}", row.kept_epoch),
        None if row.stop_reason == "non-finite-loss" => {
            format!("diverged: the loss stopped being finite at epoch {}", row.epochs)
        }
        None => format!("no {monitor} measured"),
    };
    format!("[{done}/{total}] model {} ({}): {result}, {:.2} s", row.model, with_fold(row, swept), row.seconds)
}

/// The row's swept settings, and its fold.
fn with_fold(row: &Row, swept: &[&str]) -> String {
    let settings: Vec<&str> = swept.iter().copied().filter(|f| *f != "fold").collect();
    match row.fold {
        Some(fold) if settings.is_empty() => format!("fold {fold}"),
        Some(fold) => format!("{}, fold {fold}", row.describe(&settings)),
        None => row.describe(&settings),
    }
}

/// One panel per swept setting (or, with none, one of the models by
/// index): each model's score at its value, numbers in numeric order.
fn plot_panels(rows: &[Row], swept: &[&str]) -> Vec<wgpu_mlp::report::SweepPanel> {
    let value_of = |row: &Row, flag: &str| match flag {
        "fold" => row.fold.map_or(String::new(), |f| f.to_string()),
        "model" => row.model.to_string(),
        _ => row.setting(flag).to_string(),
    };
    let flags: Vec<&str> = if swept.is_empty() { vec!["model"] } else { swept.to_vec() };
    flags
        .into_iter()
        .map(|flag| {
            let mut values: Vec<String> = Vec::new();
            for row in rows {
                let value = value_of(row, flag);
                if !values.contains(&value) {
                    values.push(value);
                }
            }
            if values.iter().all(|v| v.parse::<f64>().is_ok()) {
                values.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
            }
            let points = rows
                .iter()
                .filter_map(|row| {
                    let at = values.iter().position(|v| *v == value_of(row, flag))?;
                    Some((at, f64::from(row.score?)))
                })
                .collect();
            wgpu_mlp::report::SweepPanel { setting: flag.to_string(), values, points }
        })
        .collect()
}

/// "winner: model 5 (lr 0.01): val-loss 0.104421 at epoch 9; checkpoint DIR/checkpoint-best.safetensors".
fn winner_line(
    winner: Option<usize>,
    rows: &[Row],
    folds: Option<&[table::FoldSummary]>,
    swept: &[&str],
    monitor: Monitor,
    checkpoint: &Path,
) -> String {
    let Some(winner) = winner else {
        return format!(
            "no winner: none of the {} models has a {monitor} (sweep.csv says which diverged; --epochs 0 measures none)",
            rows.len()
        );
    };
    let row = &rows[winner];
    let settings: Vec<&str> = swept.iter().copied().filter(|f| *f != "fold").collect();
    let score = row.score.unwrap_or(f32::NAN);
    let at = format!(" at epoch {}", row.kept_epoch);
    match folds.and_then(|summaries| summaries.iter().find(|s| s.models.contains(&winner))) {
        Some(summary) => {
            let (mean, std) = summary.mean_std.unwrap_or((f64::NAN, f64::NAN));
            format!(
                "winner: {}: {monitor} {mean:.6} (mean over {} folds, std {std:.6}); its best fold, {} (model {winner}, \
                 {score:.6}{at}), is {}",
                row.describe(&settings),
                summary.models.len(),
                row.fold.unwrap_or(0),
                checkpoint.display()
            )
        }
        None => format!(
            "winner: model {winner} ({}): {monitor} {score:.6}{at}; checkpoint {}",
            row.describe(&settings),
            checkpoint.display()
        ),
    }
}
