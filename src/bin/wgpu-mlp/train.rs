//! The default command: train, with progress, Ctrl-C, a run folder, an
//! optional check against the CPU reference and a JSON summary.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context;
use clap::ValueEnum;
use wgpu_mlp::checkpoint::{self, DataSettings};
use wgpu_mlp::data::{ColumnEncoding, Missing, Scaler, Source, TargetColumn};
use wgpu_mlp::dp::PrivacyLedger;
use wgpu_mlp::dropout::Dropout;
use wgpu_mlp::fairness::Predictions;
use wgpu_mlp::gpu::{FusedPool, FusedTrainer, GpuPath};
use wgpu_mlp::metrics::{ClassReport, RegressionReport};
use wgpu_mlp::model::{Activation, Init, Loss};
use wgpu_mlp::run::{Reuse, RunFolder, RunHooks};
use wgpu_mlp::schedule::{LrSchedule, LrShape};
use wgpu_mlp::train::{fit_schedule, BestEpoch, Clip, Monitor, Monitoring, PlateauWatch, Schedule, StopReason};
use wgpu_mlp::train::{EpochMetrics, Optimizer};
use wgpu_mlp::verify::{Compared, LockStep, Tolerance};
use wgpu_mlp::CpuTrainer;
use wgpu_mlp::{Backend, Dataset, Error, FitReport, MlpSpec, Params, Run, TrainConfig, Trainer};

use crate::args::{ClassWeightArg, KeepArg, LrScheduleArg, OptimizerArg, Sizes, TargetScaleArg, TrainArgs};
use crate::bad_input;
use crate::data::load_data;
use crate::data_parallel::Ranks;
use crate::device::choose_backend;
use crate::progress::{Progress, Ticking};
use crate::spec::build_spec;

mod alone;
pub(crate) use alone::Prepared;

/// "loss 0.1234  acc 0.9512  val loss 0.2345  val acc 0.9321", with what there is.
fn describe(metrics: &EpochMetrics) -> String {
    let mut line = format!("loss {:.6}", metrics.train_loss);
    let parts = [
        ("acc", metrics.train_accuracy),
        ("val loss", metrics.val_loss),
        ("val acc", metrics.val_accuracy),
        ("val mae", metrics.val_mae),
        ("val rmse", metrics.val_rmse),
        ("val r2", metrics.val_r2),
    ];
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
    /// Evaluated after every epoch: picks the best epoch.
    val: Option<Dataset>,
    /// Scored once, at the end, on the model kept.
    test: Option<Dataset>,
    /// What picks the best epoch and may stop the run early; None with
    /// --keep last and no --early-stopping.
    monitoring: Option<Monitoring>,
    /// Which model the run ends with.
    keep: KeepArg,
    /// The metric a plateau schedule watches (--monitor or its default).
    monitor: Monitor,
    scaler: Scaler,
    /// The targets' scaling (--scale-target): the model learns scaled targets.
    target_scaler: Option<Scaler>,
    /// How the data was read (for the checkpoint and config.json).
    data: DataSettings,
    /// CSV rows left out for a missing value (--missing drop).
    dropped_rows: usize,
    /// The classes' cross-entropy weights, when --class-weight gave them.
    class_weights: Option<Vec<f32>>,
    /// Why the batch size and epochs are what they are, when taken from the
    /// data's size rather than the flags.
    defaults_why: Option<String>,
    /// With --dp: DP-SGD's settings and the privacy it spends.
    private: Option<crate::dp::Private>,
    /// The test rows' groups (--group), for the per-group report at the end.
    test_groups: Option<crate::groups::RowGroups>,
}

/// The largest default batch, and the smallest: a tenth of the rows in
/// between, so a small table still gets ten steps or more per epoch.
const DEFAULT_BATCH: (usize, usize) = (8, 128);

/// Default epochs: enough for about this many steps...
const DEFAULT_STEPS: usize = 500;

/// ...but at least and at most these many (Fashion-MNIST's 469 steps an
/// epoch get 10; iris's 11 get 46).
const DEFAULT_EPOCHS: (usize, usize) = (10, 200);

/// The batch and epochs for `rows` training rows of real data, where the
/// flags leave them open, and a sentence saying how they were chosen.
fn small_data_defaults(rows: usize, batch: Option<usize>, epochs: Option<usize>) -> (usize, usize, Option<String>) {
    let (low, high) = DEFAULT_BATCH;
    let batch_size = batch.unwrap_or_else(|| (rows / 10).clamp(low, high).min(rows.max(1)));
    let steps_per_epoch = rows.div_ceil(batch_size).max(1);
    let (fewest, most) = DEFAULT_EPOCHS;
    let chosen_epochs = epochs.unwrap_or_else(|| DEFAULT_STEPS.div_ceil(steps_per_epoch).clamp(fewest, most));
    let mut why = Vec::new();
    if batch.is_none() {
        why.push(format!(
            "batch {batch_size} (a tenth of the {rows} training rows, within {low}..={high}; --batch-size to change)"
        ));
    }
    if epochs.is_none() {
        why.push(format!(
            "{chosen_epochs} epochs ({steps_per_epoch} steps an epoch, so {} steps: about {DEFAULT_STEPS}, \
             within {fewest}..={most} epochs; --epochs to change)",
            chosen_epochs * steps_per_epoch
        ));
    }
    (batch_size, chosen_epochs, (!why.is_empty()).then(|| format!("defaults: {}", why.join("; "))))
}

/// Reads the data and resolves every setting the flags leave open.
fn resolve_settings(cli: &TrainArgs) -> anyhow::Result<Settings> {
    let seed_data = cli.input.data == Source::Seed;
    let outputs_hint = cli.layers.as_ref().and_then(|l| l.0.last().copied()).filter(|_| !seed_data);
    if let Some(Sizes(layers)) = &cli.layers {
        MlpSpec::new(layers.clone())?; // fewer than two sizes is an error before any data is read
    }
    let seed_sizes = cli.layers.as_ref().map_or((10, 1), |Sizes(s)| (s[0], s[s.len() - 1]));
    let bce = cli.loss == Some(Loss::Bce);
    if bce && cli.input.scale_target == Some(TargetScaleArg::Standard) {
        return Err(bad_input(
            "--scale-target standard does not apply to --loss bce, whose targets are probabilities in [0, 1]".into(),
        ));
    }
    let crate::data::Loaded { mut train, val, val_note, test, scaler, layout, target_scaler, encoder, groups } =
        load_data(&cli.input, seed_sizes, outputs_hint, bce).map_err(|e| with_csv_hints(e, cli))?;
    let data = crate::data::data_settings(&cli.input, &train, layout.as_ref(), encoder.as_ref(), groups.as_ref());
    if let (Some(classes), None) = (cli.input.classes, train.classes) {
        return Err(bad_input(format!(
            "--classes {classes} applies to classification (--task classify, or IDX data), but this data is a regression"
        )));
    }
    let spec = build_spec(cli, &train, seed_data)?;
    let class_weights = match &cli.class_weight {
        Some(_) if spec.loss() != wgpu_mlp::model::Loss::CrossEntropy => {
            return Err(bad_input(
                "--class-weight weighs the cross-entropy loss; this run's loss is not cross-entropy".into(),
            ))
        }
        Some(ClassWeightArg::Balanced) => Some(train.balanced_class_weights()),
        Some(ClassWeightArg::Weights(weights)) => Some(weights.clone()),
        None => None,
    };
    if let Some(weights) = &class_weights {
        train.weight_classes(weights)?;
    }
    let init = match cli.init {
        Some(init) => init,
        None if seed_data => Init::Normal,
        None if matches!(spec.hidden(), Activation::Relu | Activation::LeakyRelu) => Init::He,
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
    let (batch_size, epochs, mut defaults_why) = if seed_data {
        (cli.batch_size, cli.epochs.unwrap_or(1000), None)
    } else {
        let (batch, epochs, why) = small_data_defaults(train.len(), cli.batch_size, cli.epochs);
        (Some(batch), epochs, why)
    };
    let private = crate::dp::resolve(
        &cli.privacy,
        train.len(),
        batch_size.unwrap_or(train.len()).min(train.len()),
        epochs,
        cli.input.seed,
    )?;
    if private.is_some() && cli.shuffle {
        return Err(bad_input(
            "--shuffle with --dp: DP-SGD takes each step's rows by Poisson sampling, which its privacy bound \
             assumes; fixed-size shuffled batches are not covered (leave --shuffle out)"
                .into(),
        ));
    }
    let config = TrainConfig {
        lr: cli.lr.unwrap_or(default_lr),
        optimizer,
        weight_decay: cli.weight_decay,
        batch_size,
        shuffle: if cli.shuffle || cli.no_shuffle { cli.shuffle } else { !seed_data && private.is_none() },
        seed: cli.input.seed,
        lr_schedule: resolve_lr_schedule(cli, epochs)?,
        clip: Clip { norm: cli.clip_grad_norm, value: cli.clip_grad_value },
        dropout: cli.dropout.clone().unwrap_or_default(),
        dp: private.as_ref().map(|p| p.dp),
    };
    config.check(&spec, &train, val.as_ref())?;
    config.check(&spec, &train, test.as_ref())?;
    if let Some(note) = val_note {
        defaults_why = Some(defaults_why.map_or(note.clone(), |why| format!("{why}\n{note}")));
    }
    // A validation set, or a metric asked for, picks a best epoch to keep.
    let keep = cli.keep.unwrap_or(if val.is_some() || cli.monitor.is_some() { KeepArg::Best } else { KeepArg::Last });
    let (monitoring, monitor) = resolve_monitoring(cli, keep, val.as_ref(), train.classes.is_some())?;
    Ok(Settings {
        spec,
        init,
        config,
        epochs,
        log_every: cli.log_every.unwrap_or(if seed_data { 100 } else { 1 }),
        train,
        val,
        test,
        monitoring,
        keep,
        monitor,
        scaler,
        target_scaler,
        data,
        dropped_rows: layout.as_ref().map_or(0, |l| l.dropped),
        class_weights,
        defaults_why,
        private,
        test_groups: groups.and_then(|g| g.test_rows()),
    })
}

/// The schedule --lr-schedule and its flags give, over `epochs` epochs; a
/// flag the schedule does not take is refused naming it.
fn resolve_lr_schedule(cli: &TrainArgs, epochs: usize) -> anyhow::Result<LrSchedule> {
    let given = [
        ("--lr-step-epochs", cli.lr_step_epochs.is_some(), &[LrScheduleArg::Step][..]),
        ("--lr-gamma", cli.lr_gamma.is_some(), &[LrScheduleArg::Step, LrScheduleArg::Exponential]),
        ("--lr-min", cli.lr_min.is_some(), &[LrScheduleArg::Cosine, LrScheduleArg::Plateau]),
        ("--lr-patience", cli.lr_patience.is_some(), &[LrScheduleArg::Plateau]),
        ("--lr-factor", cli.lr_factor.is_some(), &[LrScheduleArg::Plateau]),
    ];
    if let Some((flag, _, takes)) = given.iter().find(|(_, given, takes)| *given && !takes.contains(&cli.lr_schedule)) {
        let names: Vec<String> =
            takes.iter().map(|t| t.to_possible_value().expect("named").get_name().to_string()).collect();
        return Err(bad_input(format!(
            "{flag} applies to --lr-schedule {}, not {}",
            names.join(" or "),
            cli.lr_schedule.to_possible_value().expect("named").get_name()
        )));
    }
    let min = cli.lr_min.unwrap_or(0.0);
    let shape = match cli.lr_schedule {
        LrScheduleArg::Constant => LrShape::Constant,
        LrScheduleArg::Step => {
            LrShape::Step { every: cli.lr_step_epochs.unwrap_or(10), gamma: cli.lr_gamma.unwrap_or(0.1) }
        }
        LrScheduleArg::Exponential => LrShape::Exponential { gamma: cli.lr_gamma.unwrap_or(0.95) },
        LrScheduleArg::Cosine => LrShape::Cosine { epochs, min },
        LrScheduleArg::Plateau => {
            LrShape::Plateau { patience: cli.lr_patience.unwrap_or(5), factor: cli.lr_factor.unwrap_or(0.1), min }
        }
    };
    Ok(LrSchedule { shape, warmup_epochs: cli.warmup_epochs })
}

/// The metric that picks the best epoch and that a plateau schedule watches
/// (--monitor, by default the validation loss where there is a validation
/// set, else the training loss), and the monitoring of the best epoch with
/// its patience (--early-stopping); None when neither is wanted (--keep last
/// without --early-stopping). A metric the run cannot measure is refused.
fn resolve_monitoring(
    cli: &TrainArgs,
    keep: KeepArg,
    val: Option<&Dataset>,
    classify: bool,
) -> anyhow::Result<(Option<Monitoring>, Monitor)> {
    let plateau = cli.lr_schedule == LrScheduleArg::Plateau;
    let watched = keep == KeepArg::Best || cli.early_stopping.is_some();
    if !watched && !plateau {
        if let Some((flag, _)) = [("--monitor", cli.monitor.is_some()), ("--min-delta", cli.min_delta != 0.0)]
            .iter()
            .find(|(_, given)| *given)
        {
            return Err(bad_input(format!(
                "{flag} picks the best epoch, which --keep last without --early-stopping does not use"
            )));
        }
    }
    let monitor = cli.monitor.unwrap_or(if val.is_some() { Monitor::ValLoss } else { Monitor::TrainLoss });
    match monitor {
        Monitor::ValLoss | Monitor::ValAccuracy if val.is_none() => {
            return Err(bad_input(format!(
                "--monitor {monitor} needs a validation set, and this run has none (--val-fraction 0); give --val-fraction or --val-data, or --monitor train-loss"
            )))
        }
        Monitor::ValAccuracy if !classify => {
            return Err(bad_input("--monitor val-accuracy applies to classification; this data is a regression".into()))
        }
        _ => {}
    }
    let monitoring = watched.then_some(Monitoring {
        monitor,
        patience: cli.early_stopping,
        min_delta: cli.min_delta,
        resumed_best: None,
    });
    Ok((monitoring, monitor))
}

/// A CSV error, with what to pass when the cause is a common one: a
/// metadata first line shorter than the rows (scikit-learn's CSVs), or
/// fields that are not separated by commas.
fn with_csv_hints(error: anyhow::Error, cli: &TrainArgs) -> anyhow::Error {
    let Some(Error::InvalidInput(message)) = error.downcast_ref::<Error>() else {
        return error;
    };
    let short_first_line = message.rsplit_once(" fields, but the first row has ").and_then(|(before, first)| {
        let fields: usize = before.rsplit(' ').next()?.parse().ok()?;
        Some(fields > first.trim().parse::<usize>().ok()?)
    });
    let hint = if short_first_line == Some(true) && cli.input.skip_rows == 0 {
        "; if the first line is metadata (scikit-learn's CSVs start with one), pass `skip_rows` 1"
    } else if message.ends_with("no input columns are left") && cli.input.delimiter.is_none() {
        "; if the fields are not separated by commas, pass `delimiter` (`;`, `tab`, ...)"
    } else {
        return error;
    };
    bad_input(format!("{message}{hint}"))
}

/// What was done to a CSV's columns and rows besides scaling, when anything
/// was: "columns: colour one-hot (3 categories); missing values: mean of
/// the training rows; 2 rows dropped".
fn encoding_line(settings: &Settings) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(encoder) = &settings.data.encoder {
        let one_hot: Vec<String> = encoder
            .columns
            .iter()
            .zip(&settings.data.columns)
            .filter_map(|(encoding, column)| match encoding {
                ColumnEncoding::OneHot { categories, .. } => {
                    let name = match column {
                        TargetColumn::Name(name) => name.clone(),
                        TargetColumn::Index(i) => format!("column {i}"),
                    };
                    Some(format!("{name} ({} categories)", categories.len()))
                }
                ColumnEncoding::Number { .. } => None,
            })
            .collect();
        if !one_hot.is_empty() {
            parts.push(format!("one-hot: {}", one_hot.join(", ")));
        }
    }
    match settings.data.missing {
        Missing::Mean | Missing::Median => {
            parts.push(format!("missing values filled with the training rows' {}", settings.data.missing))
        }
        Missing::Drop => parts.push(format!("{} rows with a missing value dropped", settings.dropped_rows)),
        Missing::Error => {}
    }
    parts.extend(crate::groups::header_part(&settings.data));
    (!parts.is_empty()).then(|| format!("columns: {}", parts.join("; ")))
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
    if let Some(line) = encoding_line(settings) {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "model: layers {spec} ({} parameters), {} hidden{}, {} output, {} loss, {} init",
        spec.num_params(),
        spec.hidden(),
        match spec.hidden() {
            Activation::LeakyRelu => format!(" (negative slope {})", spec.negative_slope()),
            _ => String::new(),
        },
        spec.output(),
        spec.loss(),
        init
    )?;
    writeln!(
        out,
        "training: {}, lr {}{}, weight decay {}, batch {}, shuffle {}, {} epochs, seed {}",
        config.optimizer,
        config.lr,
        match schedule_json(&config.lr_schedule)["name"].as_str() {
            Some("constant") if config.lr_schedule.warmup_epochs == 0 => String::new(),
            Some(name) => format!(
                " ({name} schedule{})",
                match config.lr_schedule.warmup_epochs {
                    0 => String::new(),
                    w => format!(", {w} warm-up epochs"),
                }
            ),
            None => String::new(),
        },
        config.weight_decay,
        config.batch_size.map_or("full".to_string(), |b| b.to_string()),
        if config.shuffle { "on" } else { "off" },
        epochs,
        config.seed
    )?;
    if let Some(weights) = &settings.class_weights {
        let listed: Vec<String> = weights.iter().map(|w| format!("{w:.4}")).collect();
        writeln!(out, "class weights: {} (the training loss is weighted)", listed.join(", "))?;
    }
    if let Some(why) = &settings.defaults_why {
        writeln!(out, "{why}")?;
    }
    if let Some(private) = &settings.private {
        let (dp, ledger) = (&private.dp, &private.ledger);
        writeln!(
            out,
            "DP-SGD: Poisson sampling at q = {:.6} (expected batch {}), {} steps an epoch, each row's gradient clipped to \
             norm {}, noise multiplier {}, delta {:e}{}",
            ledger.q,
            config.rows_per_batch(train),
            ledger.steps_per_epoch,
            dp.max_grad_norm,
            dp.noise_multiplier,
            ledger.delta,
            if cli.privacy.dp_secure { ", key from the operating system" } else { ", key from --seed" }
        )?;
        for note in &private.notes {
            writeln!(out, "DP-SGD: {note}")?;
        }
    }
    Ok(())
}

/// The checkpoints' metadata of a run of `settings`: the model, and how the
/// data was read (predict and eval read the same rows from it, and a resume
/// on other data says what differs).
fn checkpoint_metadata(settings: &Settings) -> HashMap<String, String> {
    let Settings { spec, config, train, .. } = settings;
    let val = settings.val.as_ref();
    let mut metadata = checkpoint::describe(spec, config.optimizer, config.seed, train.fingerprint());
    metadata.extend(settings.data.describe());
    metadata.insert("data.train_rows".into(), train.len().to_string());
    metadata.insert("data.val_rows".into(), val.map_or(0, Dataset::len).to_string());
    // The validation rows pick the best epoch: a resume must monitor the same ones.
    metadata.insert("val_fingerprint".into(), format!("{:016x}", val.map_or(0, Dataset::fingerprint)));
    if let Some(private) = &settings.private {
        metadata.insert("dp".into(), crate::dp::describe(&private.dp, &private.ledger));
    }
    metadata
}

/// When a run of `settings` reads back, saves, monitors and cuts the rate,
/// from `first_epoch` (a resume's, with the best epoch and plateau state its
/// checkpoint had; 0 and None for a new run).
fn schedule_for(
    cli: &TrainArgs,
    settings: &Settings,
    first_epoch: usize,
    resumed_best: Option<BestEpoch>,
    resumed_plateau: Option<wgpu_mlp::schedule::Plateau>,
) -> Schedule {
    let plateau = match settings.config.lr_schedule.shape {
        LrShape::Plateau { patience, factor, .. } => Some(PlateauWatch {
            monitor: settings.monitor,
            patience,
            factor,
            state: resumed_plateau.unwrap_or_default(),
        }),
        _ => None,
    };
    Schedule {
        first_epoch,
        last_epoch: settings.epochs.max(first_epoch),
        log_every: settings.log_every,
        save_every: Some(cli.save_every.unwrap_or(usize::MAX)),
        monitor: settings.monitoring.map(|m| Monitoring { resumed_best, ..m }),
        plateau,
    }
}

/// `wgpu-mlp` with no command: train and report.
pub(crate) fn run(cli: &TrainArgs, ranks: Option<Ranks>) -> anyhow::Result<()> {
    let settings = resolve_settings(cli)?;
    let backend = choose_backend(cli.device, cli.gpu.path, cli.gpu.matmul.kernel())?;
    if ranks.is_some() && backend.is_gpu() {
        return Err(bad_input("--data-parallel trains on the CPU device for now: add --device cpu".into()));
    }
    let Settings { spec, init, config, .. } = &settings;
    let (train, val) = (&settings.train, settings.val.as_ref());
    backend.check_fits(spec, config, train.len(), val.map_or(0, Dataset::len))?;
    let params = Params::init(spec, *init, config.seed)?;
    let metadata = checkpoint_metadata(&settings);
    let resume = match &cli.resume {
        Some(path) => {
            let saved = checkpoint::load(path, spec)?;
            saved.check_matches(&metadata, path)?;
            if let Some(saved_val) =
                saved.metadata.get("val_fingerprint").filter(|v| **v != metadata["val_fingerprint"])
            {
                return Err(bad_input(format!(
                    "{} was trained with other validation rows (fingerprint {saved_val}, now {}; {} rows then, {} now): give the --val-fraction or --val-data it had",
                    path.display(),
                    metadata["val_fingerprint"],
                    saved.metadata.get("data.val_rows").map_or("?", String::as_str),
                    metadata["data.val_rows"]
                )));
            }
            if settings.epochs <= saved.epoch {
                return Err(bad_input(format!(
                    "{} is from after epoch {}, and --epochs {} leaves nothing to train: --epochs counts the \
                     checkpoint's epochs too, so give more than {}",
                    path.display(),
                    saved.epoch,
                    settings.epochs,
                    saved.epoch
                )));
            }
            Some((path.clone(), saved))
        }
        None => None,
    };
    let run = Run { spec, params: &params, train, test: val, config };

    // Progress goes to stderr under --json, so stdout holds only the JSON.
    let mut out = if cli.json { crate::stream::stderr() } else { crate::stream::stdout() };
    // Kept to the end of the run: a data-parallel rank's scratch folder.
    let (mut trainer, rank_count, _scratch): (Box<dyn Trainer>, _, _) = match ranks {
        Some(Ranks { collective, scratch }) => {
            let count = collective.ranks();
            (Box::new(CpuTrainer::data_parallel(&run, collective)?), Some(count), Some(scratch))
        }
        None => (backend.trainer(&run)?, None, None),
    };
    // --path auto on a GPU: say why the run is not on the fused path, when it is not.
    if let Backend::Gpu(gpu) = &backend {
        if gpu.path == GpuPath::Auto {
            let why = match FusedTrainer::check(&gpu.ctx, &run) {
                Err(why) => Some(crate::in_flag_names(&why.to_string())),
                Ok(FusedPool::Storage) if !FusedTrainer::preferred(&gpu.ctx, &run) => Some(
                    "the fused path would keep the net and its state in a storage buffer, above the adapter's \
                     workgroup memory, measured faster only for small steps on CPU adapters; `--path fused` takes it"
                        .to_string(),
                ),
                Ok(_) => None,
            };
            if let Some(why) = why {
                let _ = writeln!(crate::stream::stderr(), "notice: the layered GPU path trains this run ({why})");
            }
        }
    }
    // --verify: the CPU reference trains beside it and is compared at every read-back.
    let mut verified = None;
    if cli.verify {
        let tolerance = Tolerance { atol: cli.verify_tolerance, rtol: cli.verify_tolerance };
        let lock_step = LockStep::new(trainer, &run, None, tolerance)?;
        verified = Some(lock_step.history());
        trainer = Box::new(lock_step);
    }
    print_header(&mut out, cli, &settings, trainer.as_ref())?;
    let (first_epoch, resumed_best, resumed_plateau, resumed_privacy) = match &resume {
        Some((path, saved)) => {
            trainer.restore(&saved.state)?;
            writeln!(out, "resuming from {} after epoch {}", path.display(), saved.epoch)?;
            (saved.epoch, saved.best()?, saved.plateau()?, saved.privacy()?)
        }
        None => (0, None, None, None),
    };
    // A resumed DP-SGD run goes on from the privacy its checkpoint had spent.
    let ledger = settings.private.as_ref().map(|private| PrivacyLedger {
        before: resumed_privacy.clone().unwrap_or_default(),
        first_epoch,
        ..private.ledger.clone()
    });
    let schedule = schedule_for(cli, &settings, first_epoch, resumed_best, resumed_plateau);
    let Schedule { monitor, plateau, .. } = schedule;
    let reuse = match (&cli.resume, cli.overwrite) {
        (Some(_), _) => Reuse::Resume,
        (None, true) => Reuse::Overwrite,
        (None, false) => Reuse::Refuse,
    };
    let mut folder = RunFolder::create_reusing(cli.out.as_deref(), reuse, metadata, Some(settings.scaler.clone()))?
        .with_target_scaler(settings.target_scaler.clone())
        .with_lr(config.lr, config.lr_schedule, trainer.steps_per_epoch());
    folder.plateau = plateau.map(|p| p.state);
    folder.privacy = ledger.clone();
    if let Some((path, _)) = &resume {
        folder.resume_metrics(first_epoch)?;
        if monitor.is_some() {
            folder.best = resumed_best;
        }
        if monitor.is_some() && settings.keep == KeepArg::Best {
            carry_best_checkpoint(path, resumed_best, &folder)?;
        }
    }
    folder.write_config(&config_json(cli, &settings, trainer.as_ref(), first_epoch))?;
    let report = train_with_folder(&mut out, cli, trainer.as_mut(), schedule, &mut folder, verified.as_ref())?;
    let kept = keep_model(&settings, &backend, trainer.as_mut(), &report, first_epoch, &folder)?;
    let plot = folder.plot()?;
    // The two differ: the epoch's loss averages its batches, each taken
    // before that batch's update; the final loss is one pass at the end.
    if let Some(last) = report.last() {
        writeln!(out, "last epoch loss {:.6} (over its batches, before each update)", last.train_loss)?;
    }
    writeln!(
        out,
        "final loss {:.6} (initial {:.6}) in a full pass after training; {} steps in {:.3} s, {:.0} steps/s",
        kept.train_loss,
        report.initial_loss,
        report.steps,
        report.seconds,
        report.steps_per_second()
    )?;
    if settings.monitoring.is_some() || kept.test.is_some() {
        writeln!(out, "{}", kept.describe(&report))?;
    }
    // Every epoch trained is counted, whichever the run keeps.
    let stopped_epoch = first_epoch + report.epochs;
    if let (Some(private), Some(ledger)) = (&settings.private, &ledger) {
        writeln!(out, "{}", crate::dp::guarantee(&private.dp, ledger, stopped_epoch, train.len()))?;
    }
    if let (Some(fairness), Some(groups)) = (&kept.fairness, &settings.test_groups) {
        writeln!(out, "\n{}", fairness.text(&groups.by))?;
    }
    let data_parallel = rank_count.zip(trainer.communication_seconds()).map(|(ranks, seconds)| {
        let per_step_us = seconds / report.steps.max(1) as f64 * 1e6;
        (ranks, seconds, per_step_us)
    });
    if let Some((ranks, seconds, per_step_us)) = data_parallel {
        writeln!(
            out,
            "data-parallel on {ranks} ranks: {seconds:.3} s of the {:.3} s summing gradients ({per_step_us:.1} us a step)",
            report.seconds
        )?;
    }
    writeln!(
        out,
        "run folder: {} ({}metrics.csv, loss.svg{}{}{}{})",
        folder.dir().display(),
        if folder.checkpoints.is_empty() { "" } else { "checkpoints, " },
        if plot.png { ", loss.png" } else { "" },
        if folder.dir().join("confusion.csv").exists() { ", confusion.csv, confusion.svg" } else { "" },
        if kept.fairness.is_some() { ", fairness.csv, fairness.svg" } else { "" },
        plot.png_skipped_because.as_ref().map_or(String::new(), |why| format!("; no loss.png: {why}"))
    )?;
    let mut summary = summary_json(cli, &settings, &backend, trainer.as_ref(), &report, &folder, &kept);
    if let Some((kind, test_report)) = &kept.test_report {
        summary[*kind] = test_report.clone();
    }
    if let (Some(private), Some(ledger)) = (&settings.private, &ledger) {
        summary["privacy"] = crate::dp::summary(&private.dp, ledger, stopped_epoch, cli.privacy.dp_secure);
    }
    if let Some(fairness) = &kept.fairness {
        summary["fairness"] = fairness.to_json();
    }
    if let Some((ranks, seconds, per_step_us)) = data_parallel {
        summary["data_parallel"] = serde_json::json!({
            "ranks": ranks,
            "communication_seconds": seconds,
            "communication_us_per_step": per_step_us,
        });
    }
    if let Some(history) = &verified {
        let history = history.borrow();
        let largest = history.iter().max_by(|a, b| a.max_abs_diff.total_cmp(&b.max_abs_diff));
        let last = history.last().map_or(0.0, |c| c.max_abs_diff);
        if let Some(largest) = largest {
            writeln!(
                out,
                "verify: {} read-backs in lock step with the CPU reference; largest |param difference| {:.3e} ({}, after epoch {}), {:.3e} at the last",
                history.len(),
                largest.max_abs_diff,
                largest.tensor,
                first_epoch + largest.epoch,
                last
            )?;
        }
        summary["max_abs_param_diff"] = last.into();
        // Of the last epoch's parameters, as `last_final_loss` is on the device.
        summary["cpu_final_loss"] = history.last().map(|c| c.reference_loss).into();
        summary["verify"] = history
            .iter()
            .map(|c| serde_json::json!({ "epoch": first_epoch + c.epoch, "max_abs_param_diff": c.max_abs_diff, "tensor": c.tensor }))
            .collect::<Vec<_>>()
            .into();
    }
    if cli.json {
        let mut stdout = crate::stream::stdout();
        writeln!(stdout, "{summary}")?;
        stdout.flush()?;
    }
    Ok(out.flush()?)
}

/// A resumed run's best epoch so far is `best`, whose state the folder of
/// the checkpoint at `resumed` holds as its best checkpoint: copied into this
/// run's folder when that is another, so the kept model is there either way.
fn carry_best_checkpoint(resumed: &Path, best: Option<BestEpoch>, folder: &RunFolder) -> anyhow::Result<()> {
    let Some(best) = best else { return Ok(()) };
    let source = resumed.parent().unwrap_or(Path::new(".")).join(wgpu_mlp::run::BEST_CHECKPOINT);
    let target = folder.best_checkpoint();
    if same_file(&source, &target) {
        return Ok(());
    }
    let bytes = std::fs::read(&source).map_err(|e| {
        bad_input(format!(
            "{} says its best epoch was {}, whose checkpoint {} cannot be read ({e}): resume from the run folder that holds both, or with --keep last",
            resumed.display(),
            best.epoch,
            source.display()
        ))
    })?;
    wgpu_mlp::report::write_atomically(&target, |file| file.write_all(&bytes))?;
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The model a run ends with, and how it scores.
struct Kept {
    /// The epoch the run started after (a resume's checkpoint epoch, else 0).
    first_epoch: usize,
    /// The epoch its parameters are from.
    epoch: usize,
    /// Whether that is the best epoch (else the last, --keep last).
    best: bool,
    /// Its loss over the training rows, in one pass.
    train_loss: f32,
    /// Its loss and (for classes) accuracy on the test set, scored once here.
    test: Option<(f32, Option<f32>)>,
    /// The test set's classification report or regression errors, as JSON.
    test_report: Option<(&'static str, serde_json::Value)>,
    /// The test set's metrics per group (--group).
    fairness: Option<wgpu_mlp::fairness::FairnessReport>,
}

impl Kept {
    /// "kept model: epoch 6, the best val-loss (0.3120); stopped after epoch 9 (early stopping); test loss 0.31  accuracy 0.88".
    fn describe(&self, report: &FitReport) -> String {
        let first_epoch = self.first_epoch;
        let how = match (self.best, report.best) {
            (true, Some(best)) => format!(", the best by its monitored metric ({:.6})", best.value),
            _ => " (the last)".to_string(),
        };
        let stopped = match report.stop_reason {
            StopReason::EarlyStopping => {
                format!("; stopped early after epoch {}", first_epoch + report.epochs)
            }
            StopReason::Epochs => String::new(),
        };
        let test = match self.test {
            Some((loss, accuracy)) => format!(
                "; test loss {loss:.6}{}",
                accuracy.map_or(String::new(), |a| format!("  test accuracy {a:.4}"))
            ),
            None => String::new(),
        };
        format!("kept model: epoch {}{how}{stopped}{test}", self.epoch)
    }
}

/// Puts the kept model (--keep) in the trainer, the best epoch's state from
/// the best checkpoint or the last epoch's as trained, and scores it: its
/// loss over the training rows and, once, on the test set.
fn keep_model(
    settings: &Settings,
    backend: &Backend,
    trainer: &mut dyn Trainer,
    report: &FitReport,
    first_epoch: usize,
    folder: &RunFolder,
) -> anyhow::Result<Kept> {
    let last_epoch = first_epoch + report.epochs;
    let mut kept = Kept {
        first_epoch,
        epoch: last_epoch,
        best: false,
        train_loss: report.final_loss,
        test: None,
        test_report: None,
        fairness: None,
    };
    if let (KeepArg::Best, Some(best)) = (settings.keep, report.best) {
        if best.epoch != last_epoch {
            let saved = checkpoint::load(&folder.best_checkpoint(), &settings.spec)?;
            trainer.restore(&saved.state)?;
            kept.train_loss = trainer.evaluate()?;
        }
        (kept.epoch, kept.best) = (best.epoch, true);
    }
    if let Some(test) = &settings.test {
        let params = trainer.params()?;
        let outputs = backend.forward(&settings.spec, &params, test.x.view())?;
        let (_, loss_sum) = wgpu_mlp::cpu::loss_grad(settings.spec.loss(), outputs.view(), test.y.view());
        let loss = loss_sum / settings.spec.loss_divisor(test.len());
        let accuracy = test.classes.map(|_| {
            let hits = outputs
                .rows()
                .into_iter()
                .zip(test.labels())
                .filter(|(row, label)| wgpu_mlp::cpu::argmax(*row) == *label)
                .count();
            hits as f32 / test.len() as f32
        });
        kept.test = Some((loss, accuracy));
        kept.test_report = Some(match test.classes {
            Some(classes) => {
                // The figures people read, and the confusion matrix beside the run's plot.
                let predicted: Vec<usize> = outputs.rows().into_iter().map(wgpu_mlp::cpu::argmax).collect();
                let scores = ClassReport::new(&test.labels(), &predicted, classes);
                wgpu_mlp::report::write_confusion_csv(&folder.dir().join("confusion.csv"), &scores, None)?;
                wgpu_mlp::report::plot_confusion(&folder.dir().join("confusion.svg"), &scores, None)?;
                let truth = test.labels();
                let predictions = Predictions::Classes { truth: &truth, predicted: &predicted, classes };
                kept.fairness = crate::groups::test_report(settings.test_groups.as_ref(), predictions, folder.dir())?;
                ("classification_report", scores.to_json(None))
            }
            None => {
                // In the target's own units where training scaled the targets,
                // as probabilities under bce.
                let (mut outputs, mut truth) = (outputs, test.y.clone());
                wgpu_mlp::cpu::output_from_logits(&settings.spec, &mut outputs);
                if let Some(target) = &settings.target_scaler {
                    for values in [&mut outputs, &mut truth] {
                        *values *= &target.divisor;
                        *values += &target.shift;
                    }
                }
                let predictions = Predictions::Values { truth: truth.view(), predicted: outputs.view() };
                kept.fairness = crate::groups::test_report(settings.test_groups.as_ref(), predictions, folder.dir())?;
                ("regression", RegressionReport::new(truth.view(), outputs.view()).to_json())
            }
        });
    }
    Ok(kept)
}

/// "; the best model so far (epoch 4) is in DIR/checkpoint-best.safetensors", or nothing.
fn best_so_far(folder: &RunFolder) -> String {
    folder.best.map_or(String::new(), |best| {
        format!("; the best model so far (epoch {}) is in {}", best.epoch, folder.best_checkpoint().display())
    })
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
    verified: Option<&Rc<RefCell<Vec<Compared>>>>,
) -> anyhow::Result<FitReport> {
    let progress = (!cli.quiet && std::io::stderr().is_terminal()).then(|| Progress::new(schedule, &*trainer));
    // A progress line is not worth the run: the first one that cannot be
    // written stops the printing, the run goes on to its end, and then the
    // command fails with that error (or ends quietly on a closed pipe).
    let mut log_failed: Option<std::io::Error> = None;
    let ledger = folder.privacy.clone();
    let log = |epoch: usize, metrics: &EpochMetrics| {
        let mut line = format!("epoch {epoch:>7}  {}", describe(metrics));
        if let Some(ledger) = &ledger {
            line += &format!("  epsilon {:.4}", ledger.epsilon_after(epoch));
        }
        if let Some(latest) = verified.and_then(|history| history.borrow().last().cloned()) {
            line += &format!("  |param - cpu| {:.2e}", latest.max_abs_diff);
        }
        let written = match &progress {
            Some(progress) => {
                progress.read_back(epoch, &describe(metrics));
                progress.bar.suspend(|| writeln!(out, "{line}"))
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
    // The handler runs on its own thread: it draws over the bar, so it
    // clears or suspends it first and never leaves a stale bar line.
    let bar = progress.as_ref().map(|p| p.bar.clone());
    ctrlc::set_handler(move || {
        STOP.store(true, Ordering::Relaxed);
        match CTRL_C.fetch_add(1, Ordering::Relaxed) {
            0 => {}
            1 => {
                let say = || eprintln!("\nstopping: the checkpoint is being written (Ctrl-C again to quit without it)");
                bar.as_ref().map_or_else(say, |bar| bar.suspend(say))
            }
            _ => {
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                std::process::exit(130)
            }
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    let mut hooks = RunHooks { folder, log, stop: &STOP };
    let fitted = fit_schedule(trainer, schedule, &mut Ticking { hooks: &mut hooks, progress: progress.as_ref() });
    if let Some(progress) = &progress {
        progress.bar.finish_and_clear();
    }
    match fitted {
        Err(Error::Interrupted { epoch }) => {
            folder.plot()?;
            let saved = folder.checkpoints.last().expect("an interrupt saves a checkpoint first");
            eprintln!(
                "interrupted after epoch {epoch}; saved {} and the metrics so far in {}{}\nresume with the same flags and --resume {}",
                saved.display(),
                folder.dir().display(),
                best_so_far(folder),
                saved.display()
            );
            std::process::exit(130);
        }
        Err(error @ Error::NonFiniteLoss { .. }) if folder.best.is_some() => {
            folder.plot()?;
            Err(anyhow::Error::from(error).context(format!("training stopped{}", best_so_far(folder))))
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

/// An f32 setting as the user wrote it: through its shortest decimal form,
/// so 0.001 is written 0.001, not 0.0010000000474974513.
fn as_given(value: f32) -> f64 {
    format!("{value}").parse().expect("an f32's decimal form parses as an f64")
}

/// Dropout as given: null when off, a rate for every hidden layer, or a list of one per hidden layer.
fn dropout_json(dropout: &Dropout) -> serde_json::Value {
    match dropout {
        Dropout::Off => serde_json::Value::Null,
        Dropout::Every(p) => as_given(*p).into(),
        Dropout::Layers(rates) => rates.iter().map(|&p| as_given(p)).collect(),
    }
}

/// The optimizer as an object: its kind and its parameters.
fn optimizer_json(optimizer: Optimizer) -> serde_json::Value {
    match optimizer {
        Optimizer::Sgd => serde_json::json!({"kind": "sgd"}),
        Optimizer::Momentum { momentum } => serde_json::json!({"kind": "momentum", "momentum": as_given(momentum)}),
        Optimizer::Adam { beta1, beta2, eps } => serde_json::json!({
            "kind": "adam", "beta1": as_given(beta1), "beta2": as_given(beta2), "eps": as_given(eps),
        }),
    }
}

/// config.json: every setting that decides the run (as resolved, defaults
/// included), the command line and the device.
/// The schedule as config.json holds it: its name and settings, f32s as given.
fn schedule_json(schedule: &LrSchedule) -> serde_json::Value {
    let mut json = match schedule.shape {
        LrShape::Constant => serde_json::json!({ "name": "constant" }),
        LrShape::Step { every, gamma } => {
            serde_json::json!({ "name": "step", "step_epochs": every, "gamma": as_given(gamma) })
        }
        LrShape::Exponential { gamma } => serde_json::json!({ "name": "exponential", "gamma": as_given(gamma) }),
        LrShape::Cosine { epochs, min } => {
            serde_json::json!({ "name": "cosine", "epochs": epochs, "min": as_given(min) })
        }
        LrShape::Plateau { patience, factor, min } => serde_json::json!({
            "name": "plateau", "patience": patience, "factor": as_given(factor), "min": as_given(min)
        }),
    };
    json["warmup_epochs"] = schedule.warmup_epochs.into();
    json
}

fn config_json(cli: &TrainArgs, settings: &Settings, trainer: &dyn Trainer, first_epoch: usize) -> serde_json::Value {
    let Settings { spec, init, config, train, test, .. } = settings;
    let data = &settings.data;
    let columns = |columns: &[TargetColumn]| -> Vec<serde_json::Value> {
        columns
            .iter()
            .map(|column| match column {
                TargetColumn::Index(i) => (*i).into(),
                TargetColumn::Name(name) => name.as_str().into(),
            })
            .collect()
    };
    let name = |value: Option<clap::builder::PossibleValue>| value.map(|v| v.get_name().to_string());
    serde_json::json!({
        "crate_version": env!("CARGO_PKG_VERSION"),
        "command": std::env::args().collect::<Vec<_>>(),
        "device": trainer.device(),
        "device_choice": name(cli.device.to_possible_value()),
        "path": name(cli.gpu.path.to_possible_value()),
        "matmul": name(cli.gpu.matmul.to_possible_value()),
        "data": cli.input.data.to_string(),
        "columns": columns(&data.columns),
        "target": columns(&data.target),
        "task": if data.classify { "classify" } else { "regress" },
        "skip_rows": cli.input.skip_rows,
        "delimiter": cli.input.delimiter.map(|d| (d as char).to_string()),
        "categorical": columns(&cli.input.categorical),
        "missing": data.missing.to_string(),
        "unknown_category": cli.input.unknown_category.to_string(),
        "scale": data.scale.to_string(),
        "scale_target": if settings.target_scaler.is_some() { "standard" } else { "none" },
        "test_fraction": data.test_fraction,
        "fold": cli.input.fold.map(|fold| fold.to_string()),
        "train_samples": train.len(),
        "test_samples": test.as_ref().map(Dataset::len),
        "dropped_rows": settings.dropped_rows,
        "class_weight": settings.class_weights.as_ref().map(|w| w.iter().map(|&v| as_given(v)).collect::<Vec<_>>()),
        "classes": train.classes,
        "layers": spec.sizes(),
        "hidden": spec.hidden().to_string(),
        "negative_slope": (spec.hidden() == Activation::LeakyRelu).then(|| as_given(spec.negative_slope())),
        "output": spec.output().to_string(),
        "loss": spec.loss().to_string(),
        "init": init.to_string(),
        "optimizer": optimizer_json(config.optimizer),
        "lr": as_given(config.lr),
        "lr_schedule": schedule_json(&config.lr_schedule),
        "weight_decay": as_given(config.weight_decay),
        "dropout": dropout_json(&config.dropout),
        "clip_grad_norm": config.clip.norm.map(as_given),
        "clip_grad_value": config.clip.value.map(as_given),
        "dp": settings.private.as_ref().map(|private| serde_json::json!({
            "max_grad_norm": as_given(private.dp.max_grad_norm),
            "noise_multiplier": as_given(private.dp.noise_multiplier),
            "target_epsilon": cli.privacy.dp_target_epsilon,
            "delta": private.ledger.delta,
            "sample_rate": private.ledger.q,
            "steps_per_epoch": private.ledger.steps_per_epoch,
            "secure": cli.privacy.dp_secure,
        })),
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
    folder: &RunFolder,
    kept: &Kept,
) -> serde_json::Value {
    let first_epoch = kept.first_epoch;
    let Settings { spec, config, train, val, test, .. } = settings;
    let last = report.last();
    // As metrics.csv recorded them, not counted again.
    let epsilons: HashMap<usize, f64> =
        folder.rows().iter().filter_map(|row| row.epsilon.map(|e| (row.epoch, e))).collect();
    serde_json::json!({
        "device": if backend.is_gpu() { "gpu" } else { "cpu" },
        "adapter": backend.is_gpu().then(|| trainer.device()),
        "data": cli.input.data.to_string(),
        "layers": spec.sizes(),
        "samples": train.len(),
        "val_samples": val.as_ref().map(Dataset::len),
        "test_samples": test.as_ref().map(Dataset::len),
        "batch_size": config.rows_per_batch(train),
        "epochs": settings.epochs,
        "epochs_run": report.history.len(),
        "first_epoch": first_epoch,
        "out": folder.dir().display().to_string(),
        "checkpoint": folder.checkpoints.last().map(|p| p.display().to_string()),
        "best_checkpoint": folder.best.map(|_| folder.best_checkpoint().display().to_string()),
        "monitor": settings.monitoring.map(|m| m.monitor.to_string()),
        "best_epoch": report.best.map(|b| b.epoch),
        "best_value": report.best.map(|b| b.value),
        "stopped_epoch": first_epoch + report.epochs,
        "stop_reason": report.stop_reason.name(),
        "kept": if kept.best { "best" } else { "last" },
        "kept_epoch": kept.epoch,
        "lr": as_given(config.lr),
        "seed": config.seed,
        "initial_loss": report.initial_loss,
        "final_loss": kept.train_loss,
        "last_final_loss": report.final_loss,
        "train_accuracy": last.and_then(|m| m.train_accuracy),
        "val_loss": last.and_then(|m| m.val_loss),
        "val_accuracy": last.and_then(|m| m.val_accuracy),
        "test_loss": kept.test.map(|t| t.0),
        "test_accuracy": kept.test.and_then(|t| t.1),
        "steps": report.steps,
        "gpu_bytes": trainer.gpu_bytes(),
        // Milliseconds are all a timing of whole runs can claim.
        "seconds": (report.seconds * 1000.0).round() / 1000.0,
        "steps_per_second": report.steps_per_second(),
        "history": report.history.iter().enumerate().map(|(i, m)| serde_json::json!({
            "epoch": first_epoch + i + 1,
            "train_loss": m.train_loss,
            "train_accuracy": m.train_accuracy,
            "val_loss": m.val_loss,
            "val_accuracy": m.val_accuracy,
            "val_mae": m.val_mae,
            "val_rmse": m.val_rmse,
            "val_r2": m.val_r2,
            "val_outputs": m.val_outputs.as_ref().map(|outputs| outputs.iter().map(|o| o.to_json()).collect::<Vec<_>>()),
            "epsilon": epsilons.get(&(first_epoch + i + 1)),
        })).collect::<Vec<_>>(),
    })
}
