//! The command line: parses flags, builds the model and data, picks a device,
//! trains and reports. Library errors that come from the user's input exit
//! with code 2, every other failure with code 1.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use wgpu_mlp::gpu::{GpuContext, GpuTrainer, Kernels};
use wgpu_mlp::{fit, CpuTrainer, Dataset, Error, MlpSpec, Params, TrainConfig, Trainer};

/// Train a multilayer perceptron with the whole training step on the GPU.
///
/// With no flags it trains the textbook example: 100 random samples of 10
/// inputs and 1 target drawn U(0,1), a 10-5-1 network with sigmoid on every
/// layer, mean squared error, plain gradient descent with lr 0.01, 1000 epochs.
#[derive(Debug, Parser)]
#[command(name = "wgpu-mlp", version)]
struct Cli {
    /// Layer sizes from inputs to outputs, comma-separated (any depth, each >= 1).
    #[arg(long, default_value = "10,5,1", value_parser = parse_layers)]
    layers: MlpSpec,

    /// Number of random samples of the seed problem.
    #[arg(long, default_value_t = 100, value_parser = parse_at_least_one)]
    samples: usize,

    /// Learning rate (positive, finite).
    #[arg(long, default_value_t = 0.01, value_parser = parse_lr)]
    lr: f32,

    /// Passes over the data; 0 only reports the initial loss.
    #[arg(long, default_value_t = 1000)]
    epochs: usize,

    /// Seed of the parameter initialisation and of the generated data.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Rows per gradient step, taken in order, the last batch holding the rest
    /// [default: all samples (full batch)].
    #[arg(long, value_parser = parse_at_least_one)]
    batch_size: Option<usize>,

    /// Read the loss back and print it every this many epochs (and after the last).
    #[arg(long, default_value_t = 100, value_parser = parse_at_least_one)]
    log_every: usize,

    /// Where to train: auto takes a GPU adapter when there is one, else the CPU.
    /// WGPU_BACKEND and WGPU_ADAPTER_NAME choose among adapters.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,

    /// Also train with the CPU reference from the same start and compare.
    #[arg(long)]
    verify: bool,

    /// Print one JSON object on stdout; progress goes to stderr.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DeviceChoice {
    Auto,
    Gpu,
    Cpu,
}

fn parse_layers(text: &str) -> Result<MlpSpec, String> {
    let sizes = text
        .split(',')
        .map(|part| {
            part.trim()
                .parse::<usize>()
                .map_err(|_| format!("'{}' is not a layer size (a whole number)", part.trim()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    MlpSpec::new(sizes).map_err(|e| e.to_string())
}

fn parse_at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{text}' must be a whole number of at least 1")),
    }
}

fn parse_lr(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(lr) if lr.is_finite() && lr > 0.0 => Ok(lr),
        _ => Err(format!("'{text}' must be a positive finite number")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let bad_input = error
                .downcast_ref::<Error>()
                .is_some_and(Error::is_bad_input);
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

/// Picks the trainer for `--device`; auto falls back to the CPU with a notice.
fn make_trainer(
    cli: &Cli,
    spec: &MlpSpec,
    params: &Params,
    data: &Dataset,
    config: &TrainConfig,
) -> anyhow::Result<Box<dyn Trainer>> {
    let gpu = |ctx: GpuContext| -> anyhow::Result<Box<dyn Trainer>> {
        let kernels = Kernels::new(&ctx)?;
        Ok(Box::new(GpuTrainer::new(
            &ctx, &kernels, spec, params, data, config,
        )?))
    };
    let cpu = || -> anyhow::Result<Box<dyn Trainer>> {
        Ok(Box::new(CpuTrainer::new(
            spec,
            params.clone(),
            data.clone(),
            config,
        )?))
    };
    match cli.device {
        DeviceChoice::Cpu => cpu(),
        DeviceChoice::Gpu => gpu(GpuContext::new()?),
        DeviceChoice::Auto => match GpuContext::new() {
            Ok(ctx) => gpu(ctx),
            Err(Error::NoAdapter(reason)) => {
                eprintln!("notice: {reason}; training on the CPU");
                cpu()
            }
            Err(other) => Err(other.into()),
        },
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let spec = cli.layers.clone();
    let data = Dataset::seed_problem(cli.samples, spec.inputs(), spec.outputs(), cli.seed)?;
    let params = Params::init(&spec, cli.seed)?;
    let config = TrainConfig {
        lr: cli.lr,
        batch_size: cli.batch_size,
        log_every: cli.log_every,
    };
    config.check(&spec, &data)?;

    // Progress goes to stderr under --json, so stdout holds only the JSON.
    let mut out: Box<dyn Write> = if cli.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let mut trainer = make_trainer(cli, &spec, &params, &data, &config)?;
    let device = trainer.device();
    let on_gpu = device != "cpu";
    writeln!(out, "device: {device}")?;
    writeln!(
        out,
        "model: layers {spec} ({} parameters), {} samples, batch {}, lr {}, {} epochs, seed {}",
        spec.num_params(),
        data.len(),
        cli.batch_size.map_or("full".to_string(), |b| b.to_string()),
        cli.lr,
        cli.epochs,
        cli.seed
    )?;
    let report = fit(
        trainer.as_mut(),
        cli.epochs,
        cli.log_every,
        |epoch, loss| {
            writeln!(out, "epoch {epoch:>7}  loss {loss:.6}").ok();
        },
    )?;
    writeln!(
        out,
        "final loss {:.6} (initial {:.6}); {} steps in {:.3} s, {:.0} steps/s",
        report.final_loss,
        report.initial_loss,
        report.steps,
        report.seconds,
        report.steps_per_second()
    )?;

    let mut summary = serde_json::json!({
        "device": if on_gpu { "gpu" } else { "cpu" },
        "adapter": if on_gpu { Some(device) } else { None },
        "layers": spec.sizes(),
        "samples": data.len(),
        "batch_size": cli.batch_size.unwrap_or(data.len()),
        "epochs": cli.epochs,
        "lr": cli.lr,
        "seed": cli.seed,
        "initial_loss": report.initial_loss,
        "final_loss": report.final_loss,
        "steps": report.steps,
        "seconds": report.seconds,
        "steps_per_second": report.steps_per_second(),
        "logged": report.logged.iter().map(|&(epoch, loss)| serde_json::json!({"epoch": epoch, "loss": loss})).collect::<Vec<_>>(),
    });

    if cli.verify {
        let mut reference = CpuTrainer::new(&spec, params, data, &config)?;
        let cpu_report = fit(&mut reference, cli.epochs, cli.log_every, |_, _| {})
            .context("the CPU reference run failed")?;
        let diff = trainer.params()?.max_abs_diff(&reference.params()?);
        writeln!(
            out,
            "verify: cpu final loss {:.6}; max |param difference| {:.3e}",
            cpu_report.final_loss, diff
        )?;
        summary["cpu_final_loss"] = cpu_report.final_loss.into();
        summary["max_abs_param_diff"] = diff.into();
    }
    if cli.json {
        println!("{summary}");
    }
    Ok(())
}
