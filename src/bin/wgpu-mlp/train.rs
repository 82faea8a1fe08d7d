//! The default command: train, with progress, Ctrl-C, a run folder, an
//! optional check against the CPU reference and a JSON summary.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context;
use wgpu_mlp::checkpoint;
use wgpu_mlp::data::{Scaler, Source};
use wgpu_mlp::model::{Activation, Init};
use wgpu_mlp::run::{RunFolder, RunHooks};
use wgpu_mlp::train::{fit_schedule, FitHooks, Schedule};
use wgpu_mlp::train::{EpochMetrics, Optimizer};
use wgpu_mlp::{Backend, CpuTrainer, Dataset, Error, FitReport, MlpSpec, Params, Run, TrainConfig, Trainer};

use crate::args::{OptimizerArg, Sizes, TrainArgs};
use crate::bad_input;
use crate::data::load_data;
use crate::device::choose_backend;
use crate::spec::build_spec;

/// For runs that need no hooks.
struct NoHooks;
impl FitHooks for NoHooks {}

/// "loss 0.1234  acc 0.9512  test loss 0.2345  test acc 0.9321", with what there is.
fn describe(metrics: &EpochMetrics) -> String {
    let mut line = format!("loss {:.6}", metrics.train_loss);
    let parts =
        [("acc", metrics.train_accuracy), ("test loss", metrics.test_loss), ("test acc", metrics.test_accuracy)];
    for (name, value) in parts {
        if let Some(value) = value {
            line += &format!("  {name} {value:.4}");
        }
    }
    line
}

/// Everything a training run is made of, resolved from the flags and the
/// data: each "seed problem or real data" default is decided here.
struct Settings {
    spec: MlpSpec,
    init: Init,
    config: TrainConfig,
    epochs: usize,
    log_every: usize,
    train: Dataset,
    test: Option<Dataset>,
    scaler: Scaler,
}

/// Reads the data and resolves every setting the flags leave open.
fn resolve_settings(cli: &TrainArgs) -> anyhow::Result<Settings> {
    let seed_data = cli.input.data == Source::Seed;
    let outputs_hint = cli.layers.as_ref().and_then(|l| l.0.last().copied()).filter(|_| !seed_data);
    if let Some(Sizes(layers)) = &cli.layers {
        MlpSpec::new(layers.clone())?; // fewer than two sizes is an error before any data is read
    }
    let seed_sizes = cli.layers.as_ref().map_or((10, 1), |Sizes(s)| (s[0], s[s.len() - 1]));
    let (train, test, scaler) = load_data(&cli.input, seed_sizes, outputs_hint, None)?;
    if let (Some(classes), None) = (cli.input.classes, train.classes) {
        return Err(bad_input(format!(
            "--classes {classes} applies to classification (--task classify, or IDX data), but this data is a regression"
        )));
    }
    let spec = build_spec(cli, &train, seed_data)?;
    let init = match cli.init {
        Some(init) => init,
        None if seed_data => Init::Normal,
        None if spec.hidden() == Activation::Relu => Init::He,
        None => Init::Xavier,
    };
    let optimizer = match cli.optimizer {
        Some(OptimizerArg::Sgd) => Optimizer::Sgd,
        Some(OptimizerArg::Momentum) => Optimizer::Momentum { momentum: cli.momentum },
        Some(OptimizerArg::Adam) => Optimizer::Adam { beta1: cli.beta1, beta2: cli.beta2, eps: cli.eps },
        None if seed_data => Optimizer::Sgd,
        None => Optimizer::Adam { beta1: cli.beta1, beta2: cli.beta2, eps: cli.eps },
    };
    let default_lr = if matches!(optimizer, Optimizer::Adam { .. }) { 0.001 } else { 0.01 };
    let config = TrainConfig {
        lr: cli.lr.unwrap_or(default_lr),
        optimizer,
        weight_decay: cli.weight_decay,
        batch_size: cli.batch_size.or(if seed_data { None } else { Some(128) }),
        shuffle: if cli.shuffle || cli.no_shuffle { cli.shuffle } else { !seed_data },
        seed: cli.input.seed,
    };
    config.check(&spec, &train, test.as_ref())?;
    Ok(Settings {
        spec,
        init,
        config,
        epochs: cli.epochs.unwrap_or(if seed_data { 1000 } else { 10 }),
        log_every: cli.log_every.unwrap_or(if seed_data { 100 } else { 1 }),
        train,
        test,
        scaler,
    })
}

/// The lines that say what is about to run.
fn print_header(
    out: &mut dyn Write,
    cli: &TrainArgs,
    settings: &Settings,
    trainer: &dyn Trainer,
) -> anyhow::Result<()> {
    let Settings { spec, init, config, epochs, train, test, .. } = settings;
    writeln!(out, "device: {}", trainer.device())?;
    if let Some(bytes) = trainer.gpu_bytes() {
        writeln!(out, "GPU memory: {:.2} MiB", bytes as f64 / (1 << 20) as f64)?;
    }
    writeln!(
        out,
        "data: {}, {} training and {} test samples{}",
        cli.input.data,
        train.len(),
        test.as_ref().map_or(0, Dataset::len),
        train.classes.map_or(String::new(), |k| format!(", {k} classes"))
    )?;
    writeln!(
        out,
        "model: layers {spec} ({} parameters), {} hidden, {} output, {} loss, {} init",
        spec.num_params(),
        spec.hidden(),
        spec.output(),
        spec.loss(),
        init
    )?;
    writeln!(
        out,
        "training: {}, lr {}, weight decay {}, batch {}, shuffle {}, {} epochs, seed {}",
        config.optimizer,
        config.lr,
        config.weight_decay,
        config.batch_size.map_or("full".to_string(), |b| b.to_string()),
        if config.shuffle { "on" } else { "off" },
        epochs,
        config.seed
    )?;
    Ok(())
}

/// `wgpu-mlp` with no command: train and report.
pub(crate) fn run(cli: &TrainArgs) -> anyhow::Result<()> {
    let settings = resolve_settings(cli)?;
    let backend = choose_backend(cli.device, cli.gpu.path, cli.gpu.matmul.kernel())?;
    let Settings { spec, init, config, .. } = &settings;
    let (train, test) = (&settings.train, settings.test.as_ref());
    backend.check_fits(spec, config, train.len(), test.map_or(0, Dataset::len))?;
    let params = Params::init(spec, *init, config.seed)?;
    let mut metadata = checkpoint::describe(spec, config.optimizer, config.seed, train.fingerprint());
    // How the data was read, so predict and eval can read the same rows.
    metadata.extend(crate::data::data_settings(&cli.input, train).describe());
    let resume = match &cli.resume {
        Some(path) => {
            let saved = checkpoint::load(path, spec)?;
            saved.check_matches(&metadata, path)?;
            Some((path.clone(), saved))
        }
        None => None,
    };
    let run = Run { spec, params: &params, train, test, config };

    // Progress goes to stderr under --json, so stdout holds only the JSON.
    let mut out = if cli.json { crate::stream::stderr() } else { crate::stream::stdout() };
    let mut trainer = backend.trainer(&run)?;
    print_header(&mut out, cli, &settings, trainer.as_ref())?;
    let first_epoch = match &resume {
        Some((path, saved)) => {
            trainer.restore(&saved.state)?;
            writeln!(out, "resuming from {} after epoch {}", path.display(), saved.epoch)?;
            saved.epoch
        }
        None => 0,
    };
    let schedule = Schedule {
        first_epoch,
        last_epoch: settings.epochs.max(first_epoch),
        log_every: settings.log_every,
        save_every: Some(cli.save_every.unwrap_or(usize::MAX)),
    };
    let mut folder = RunFolder::create(cli.out.as_deref(), metadata, Some(settings.scaler.clone()))?;
    if resume.is_some() {
        folder.resume_metrics(first_epoch)?;
    }
    folder.write_config(&config_json(cli, &settings, trainer.as_ref(), first_epoch))?;
    let report = train_with_folder(&mut out, cli, trainer.as_mut(), schedule, &mut folder)?;
    let plot = folder.plot()?;
    writeln!(
        out,
        "final loss {:.6} (initial {:.6}); {} steps in {:.3} s, {:.0} steps/s",
        report.final_loss,
        report.initial_loss,
        report.steps,
        report.seconds,
        report.steps_per_second()
    )?;
    writeln!(
        out,
        "run folder: {} ({}metrics.csv, loss.svg{}{})",
        folder.dir().display(),
        if folder.checkpoints.is_empty() { "" } else { "checkpoints, " },
        if plot.png { ", loss.png" } else { "" },
        plot.png_skipped_because.as_ref().map_or(String::new(), |why| format!("; no loss.png: {why}"))
    )?;
    let mut summary = summary_json(cli, &settings, &backend, trainer.as_ref(), &report, first_epoch, &folder);
    if cli.verify {
        let mut reference = CpuTrainer::new(&run)?;
        if let Some((_, saved)) = &resume {
            reference.restore(&saved.state)?;
        }
        let schedule = Schedule { save_every: None, ..schedule };
        let cpu_report =
            fit_schedule(&mut reference, schedule, &mut NoHooks).context("the CPU reference run failed")?;
        let diff = trainer.params()?.max_abs_diff(&reference.params()?);
        writeln!(out, "verify: cpu final loss {:.6}; max |param difference| {:.3e}", cpu_report.final_loss, diff)?;
        summary["cpu_final_loss"] = cpu_report.final_loss.into();
        summary["cpu_test_accuracy"] = cpu_report.last().and_then(|m| m.test_accuracy).into();
        summary["max_abs_param_diff"] = diff.into();
    }
    if cli.json {
        let mut stdout = crate::stream::stdout();
        writeln!(stdout, "{summary}")?;
        stdout.flush()?;
    }
    Ok(out.flush()?)
}

/// Runs the schedule with the folder's hooks, a progress bar on a terminal
/// (plain lines elsewhere, neither with --quiet) and Ctrl-C handling: a
/// Ctrl-C stops training within about two GPU submits (or one CPU step), back
/// at the start of the epoch it was in, writes a checkpoint of that state and
/// exits with 130; a second Ctrl-C is told that the checkpoint is coming, a
/// third exits at once without one.
fn train_with_folder(
    out: &mut dyn Write,
    cli: &TrainArgs,
    trainer: &mut dyn Trainer,
    schedule: Schedule,
    folder: &mut RunFolder,
) -> anyhow::Result<FitReport> {
    let first_epoch = schedule.first_epoch;
    let steps_per_epoch = trainer.steps_per_epoch() as u64;
    let bar = (!cli.quiet && std::io::stderr().is_terminal()).then(|| {
        let total = ((schedule.last_epoch - first_epoch) as u64).saturating_mul(steps_per_epoch);
        let bar = indicatif::ProgressBar::new(total);
        let style = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}")
            .expect("the template is valid");
        bar.set_style(style);
        bar
    });
    // A progress line is not worth the run: the first one that cannot be
    // written stops the printing, the run goes on to its end, and then the
    // command fails with that error (or ends quietly on a closed pipe).
    let mut log_failed: Option<std::io::Error> = None;
    let log = |epoch: usize, metrics: &EpochMetrics| {
        let line = format!("epoch {epoch:>7}  {}", describe(metrics));
        let written = match &bar {
            Some(bar) => {
                bar.set_position(((epoch - first_epoch) as u64).saturating_mul(steps_per_epoch));
                bar.set_message(describe(metrics));
                bar.suspend(|| writeln!(out, "{line}"))
            }
            None if !cli.quiet && log_failed.is_none() => writeln!(out, "{line}"),
            None => Ok(()),
        };
        if let Err(error) = written {
            log_failed.get_or_insert(error);
        }
    };
    static STOP: AtomicBool = AtomicBool::new(false);
    static CTRL_C: AtomicUsize = AtomicUsize::new(0);
    ctrlc::set_handler(|| {
        STOP.store(true, Ordering::Relaxed);
        match CTRL_C.fetch_add(1, Ordering::Relaxed) {
            0 => {}
            1 => eprintln!("\nstopping: the checkpoint is being written (Ctrl-C again to quit without it)"),
            _ => std::process::exit(130),
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    let hooks = &mut RunHooks { folder, log, stop: &STOP };
    let fitted = fit_schedule(trainer, schedule, hooks);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match fitted {
        Err(Error::Interrupted { epoch }) => {
            folder.plot()?;
            let saved = folder.checkpoints.last().expect("an interrupt saves a checkpoint first");
            eprintln!(
                "interrupted after epoch {epoch}; saved {} and the metrics so far in {}\nresume with the same flags and --resume {}",
                saved.display(),
                folder.dir().display(),
                saved.display()
            );
            std::process::exit(130);
        }
        other => {
            let report = other?;
            if let Some(error) = log_failed {
                folder.plot()?;
                return Err(error.into());
            }
            Ok(report)
        }
    }
}

/// config.json: every setting of the run, the command line and the device.
fn config_json(cli: &TrainArgs, settings: &Settings, trainer: &dyn Trainer, first_epoch: usize) -> serde_json::Value {
    let Settings { spec, init, config, train, test, .. } = settings;
    serde_json::json!({
        "crate_version": env!("CARGO_PKG_VERSION"),
        "command": std::env::args().collect::<Vec<_>>(),
        "device": trainer.device(),
        "data": cli.input.data.to_string(),
        "train_samples": train.len(),
        "test_samples": test.as_ref().map(Dataset::len),
        "classes": train.classes,
        "layers": spec.sizes(),
        "hidden": spec.hidden().to_string(),
        "output": spec.output().to_string(),
        "loss": spec.loss().to_string(),
        "init": init.to_string(),
        "optimizer": config.optimizer.to_string(),
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "batch_size": config.rows_per_batch(train),
        "shuffle": config.shuffle,
        "epochs": settings.epochs,
        "log_every": settings.log_every,
        "save_every": cli.save_every,
        "seed": config.seed,
        "resumed_from": cli.resume.as_ref().map(|p| p.display().to_string()),
        "first_epoch": first_epoch,
    })
}

/// The `--json` summary of a finished run.
fn summary_json(
    cli: &TrainArgs,
    settings: &Settings,
    backend: &Backend,
    trainer: &dyn Trainer,
    report: &FitReport,
    first_epoch: usize,
    folder: &RunFolder,
) -> serde_json::Value {
    let Settings { spec, config, train, test, .. } = settings;
    let last = report.last();
    serde_json::json!({
        "device": if backend.is_gpu() { "gpu" } else { "cpu" },
        "adapter": backend.is_gpu().then(|| trainer.device()),
        "data": cli.input.data.to_string(),
        "layers": spec.sizes(),
        "samples": train.len(),
        "test_samples": test.as_ref().map(Dataset::len),
        "batch_size": config.rows_per_batch(train),
        "epochs": settings.epochs,
        "epochs_run": report.history.len(),
        "first_epoch": first_epoch,
        "out": folder.dir().display().to_string(),
        "checkpoint": folder.checkpoints.last().map(|p| p.display().to_string()),
        "lr": config.lr,
        "seed": config.seed,
        "initial_loss": report.initial_loss,
        "final_loss": report.final_loss,
        "train_accuracy": last.and_then(|m| m.train_accuracy),
        "test_loss": last.and_then(|m| m.test_loss),
        "test_accuracy": last.and_then(|m| m.test_accuracy),
        "steps": report.steps,
        "gpu_bytes": trainer.gpu_bytes(),
        "seconds": report.seconds,
        "steps_per_second": report.steps_per_second(),
        "history": report.history.iter().enumerate().map(|(i, m)| serde_json::json!({
            "epoch": first_epoch + i + 1,
            "train_loss": m.train_loss,
            "train_accuracy": m.train_accuracy,
            "test_loss": m.test_loss,
            "test_accuracy": m.test_accuracy,
        })).collect::<Vec<_>>(),
    })
}
