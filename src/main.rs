//! The command line: parses flags, loads the data, builds the model, picks a
//! device, trains and reports. Library errors that come from the user's input
//! exit with code 2, every other failure with code 1.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use wgpu_mlp::bench::{self, BenchDevice};
use wgpu_mlp::checkpoint;
use wgpu_mlp::data::{self, CsvOptions, Scale, Scaler, Source, TargetColumn};
use wgpu_mlp::gpu::{self as gpu, GpuContext, GpuTrainer, KernelChoice, Kernels};
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::run::{RunFolder, RunHooks};
use wgpu_mlp::train::{fit_schedule, FitHooks, Schedule};
use wgpu_mlp::train::{EpochMetrics, Optimizer};
use wgpu_mlp::{CpuTrainer, Dataset, Error, MlpSpec, Params, TrainConfig, Trainer};

/// For runs that need no hooks.
struct NoHooks;
impl FitHooks for NoHooks {}

/// Train a multilayer perceptron with the whole training step on the GPU.
///
/// With no flags it trains the textbook example: 100 random samples of 10
/// inputs and 1 target drawn U(0,1), a 10-5-1 network with sigmoid on every
/// layer, mean squared error, plain gradient descent with lr 0.01, 1000 epochs.
///
/// With --data it trains on a real data set; the defaults then change to what
/// such data needs (relu, softmax with cross-entropy for classes, He init, Adam
/// with lr 0.001, batches of 128, shuffled, 10 epochs), each overridable.
#[derive(Debug, Parser)]
#[command(name = "wgpu-mlp", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Time training steps and matmuls on the CPU and the GPU and print a table
    /// (or JSON): microseconds per step, GFLOP/s, dispatches, submits and
    /// read-backs per step, and GPU memory.
    Bench(BenchArgs),

    /// Write the model's predictions for the data's test set (or every row when
    /// it has none) as CSV with a header: the class and each class's
    /// probability for classifiers, the outputs otherwise.
    Predict {
        #[command(flatten)]
        model: ModelArgs,

        /// Write the CSV here instead of to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },

    /// Print the model's loss and accuracy on the data's test set (or every
    /// row when it has none).
    Eval {
        #[command(flatten)]
        model: ModelArgs,

        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },

    /// List every GPU adapter wgpu finds (WGPU_BACKEND narrows the backends):
    /// backend, device type, driver and the limits that matter here.
    Adapters {
        /// Print a JSON array, one object per adapter.
        #[arg(long)]
        json: bool,
    },
}

/// A trained model and the data to run it on, for predict and eval.
#[derive(Debug, clap::Args)]
struct ModelArgs {
    /// A checkpoint written by training (its model, weights and input scaling).
    #[arg(long)]
    checkpoint: PathBuf,

    #[command(flatten)]
    input: DataArgs,

    /// Where to compute: auto takes a GPU adapter when there is one.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// A case: seed (10-5-1, 100 samples), mlp (784-256-10, batch 256), wide
    /// (1024-1024-1024-10, batch 1024) or matmul:M,K,N; repeatable
    /// [default: seed, mlp, matmul:512,512,512, matmul:256,784,256, matmul:784,256,256].
    #[arg(long = "case")]
    cases: Vec<bench::Case>,

    /// A device to run on, repeatable [default: gpu (when there is an adapter) and cpu].
    #[arg(long = "device", value_enum)]
    devices: Vec<BenchDeviceArg>,

    /// GPU path of the training cases, as for training.
    #[arg(long, value_enum, default_value_t = KernelArg::Auto)]
    kernel: KernelArg,

    /// Print a JSON array, one object per case and device.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BenchDeviceArg {
    Gpu,
    Cpu,
}

/// Where the data comes from and how it is read, split and scaled: the same
/// flags for training, predict and eval.
#[derive(Debug, clap::Args)]
struct DataArgs {
    /// Data: seed (the textbook's random data), csv:PATH (plain or gzip),
    /// fashion-mnist[:DIR] (default DIR /usr/share/datasets/fashion-mnist) or idx:DIR.
    #[arg(long, default_value = "seed")]
    data: Source,

    /// Seed of the initialisation, the generated data, the shuffles and the split.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    /// Samples of the seed problem.
    #[arg(long, value_parser = parse_at_least_one)]
    samples: Option<usize>,

    /// CSV: the target column(s), by 0-based index or header name, comma-separated [default: the last column].
    #[arg(long, value_delimiter = ',')]
    target: Vec<TargetColumn>,

    /// CSV: what the target is [default: regress].
    #[arg(long, value_enum)]
    task: Option<TaskArg>,

    /// CSV: the first row (after --skip-rows) is a header [default: detected].
    #[arg(long)]
    header: bool,

    /// CSV: lines to skip before the header or data (scikit-learn's CSVs start with one).
    #[arg(long, default_value_t = 0)]
    skip_rows: usize,

    /// Number of classes [default: the largest label + 1, or --layers' last size].
    #[arg(long, value_parser = parse_at_least_one)]
    classes: Option<usize>,

    /// Feature scaling, fitted on the training rows [default: none for seed,
    /// pixels (x / 255) for IDX images, standard for CSV].
    #[arg(long, value_enum)]
    scale: Option<ScaleArg>,

    /// Share of the rows held out as a test set, stratified by class, for
    /// sources without one [default: 0 for seed, 0.25 for CSV].
    #[arg(long)]
    test_fraction: Option<f64>,
}

/// The training flags (the default command).
#[derive(Debug, clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    input: DataArgs,

    /// All layer sizes from inputs to outputs, comma-separated; with --data the
    /// first and last must match the data's inputs and outputs.
    #[arg(long, conflicts_with = "hidden")]
    layers: Option<Sizes>,

    /// Only the hidden layer sizes (e.g. 128 or 256,128): the input and output
    /// sizes are taken from the data [default with --data: 128].
    #[arg(long)]
    hidden: Option<Sizes>,

    /// Hidden layers' activation [default: sigmoid for seed, else relu].
    #[arg(long, value_enum)]
    activation: Option<ActivationArg>,

    /// Output layer [default: sigmoid for seed, softmax for classes, else identity].
    #[arg(long, value_enum)]
    output: Option<OutputArg>,

    /// Loss [default: cross-entropy with a softmax output, else mse].
    #[arg(long, value_enum)]
    loss: Option<LossArg>,

    /// Weight initialisation [default: normal for seed, he for relu, else xavier].
    #[arg(long, value_enum)]
    init: Option<InitArg>,

    /// Update rule [default: sgd for seed, else adam].
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,

    /// Learning rate, positive and finite [default: 0.01, 0.001 for adam].
    #[arg(long, value_parser = parse_positive)]
    lr: Option<f32>,

    /// Momentum of --optimizer momentum, in [0, 1).
    #[arg(long, default_value_t = 0.9)]
    momentum: f32,

    /// Adam's first-moment decay, in [0, 1).
    #[arg(long, default_value_t = 0.9)]
    beta1: f32,

    /// Adam's second-moment decay, in [0, 1).
    #[arg(long, default_value_t = 0.999)]
    beta2: f32,

    /// Adam's epsilon, positive.
    #[arg(long, default_value_t = 1e-8)]
    eps: f32,

    /// L2 weight decay added to every gradient (weight_decay * w), >= 0.
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,

    /// Passes over the training data; 0 only reports the initial loss
    /// [default: 1000 for seed, else 10].
    #[arg(long)]
    epochs: Option<usize>,

    /// Rows per gradient step; the last batch holds the rest
    /// [default: all rows for seed, else 128].
    #[arg(long, value_parser = parse_at_least_one)]
    batch_size: Option<usize>,

    /// Shuffle the training rows every epoch [default: on, except for seed].
    #[arg(long, overrides_with = "no_shuffle")]
    shuffle: bool,

    /// Keep the training rows in file order.
    #[arg(long)]
    no_shuffle: bool,

    /// Read the metrics back and print them every this many epochs (and after
    /// the last) [default: 100 for seed, else 1].
    #[arg(long, value_parser = parse_at_least_one)]
    log_every: Option<usize>,

    /// Where to train: auto takes a GPU adapter when there is one, else the CPU.
    /// WGPU_BACKEND and WGPU_ADAPTER_NAME choose among adapters.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,

    /// GPU path: fused runs many steps per dispatch with the whole net in one
    /// workgroup's memory (small nets, batches in order, no test set); layered
    /// runs a dispatch per op; auto takes fused when the run fits it.
    #[arg(long, value_enum, default_value_t = KernelArg::Auto)]
    kernel: KernelArg,

    /// Also train with the CPU reference from the same start and compare.
    #[arg(long)]
    verify: bool,

    /// Print one JSON object on stdout; progress goes to stderr.
    #[arg(long)]
    json: bool,

    /// No progress bar and no per-epoch lines.
    #[arg(long)]
    quiet: bool,

    /// The run folder: config.json, metrics.csv, checkpoints, loss.svg
    /// [default: runs/<UTC time>].
    #[arg(long)]
    out: Option<PathBuf>,

    /// Save a checkpoint every this many epochs; the last epoch is always saved.
    #[arg(long, value_parser = parse_at_least_one)]
    save_every: Option<usize>,

    /// Continue from a checkpoint of the same model, optimizer and data, up to
    /// --epochs in all (the checkpoint's epochs count).
    #[arg(long)]
    resume: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DeviceChoice {
    Auto,
    Gpu,
    Cpu,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum KernelArg {
    Auto,
    Fused,
    Layered,
}

impl From<KernelArg> for KernelChoice {
    fn from(arg: KernelArg) -> Self {
        match arg {
            KernelArg::Auto => KernelChoice::Auto,
            KernelArg::Fused => KernelChoice::Fused,
            KernelArg::Layered => KernelChoice::Layered,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ActivationArg {
    Sigmoid,
    Relu,
    Tanh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputArg {
    Sigmoid,
    Identity,
    Softmax,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LossArg {
    Mse,
    CrossEntropy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum InitArg {
    Normal,
    Xavier,
    He,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OptimizerArg {
    Sgd,
    Momentum,
    Adam,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TaskArg {
    Regress,
    Classify,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ScaleArg {
    None,
    Minmax,
    Standard,
    Pixels,
}

/// Comma-separated layer sizes, each at least 1.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sizes(Vec<usize>);

impl std::str::FromStr for Sizes {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let sizes = text
            .split(',')
            .map(|part| {
                let part = part.trim();
                part.parse::<usize>().map_err(|_| format!("'{part}' is not a layer size (a whole number)"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match sizes.iter().position(|&s| s == 0) {
            Some(i) => Err(format!("size {} is 0; every layer needs at least one unit", i + 1)),
            None => Ok(Sizes(sizes)),
        }
    }
}

fn parse_at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{text}' must be a whole number of at least 1")),
    }
}

fn parse_positive(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("'{text}' must be a positive finite number")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None => run(&cli.train),
        Some(Command::Bench(args)) => run_bench(args),
        Some(Command::Adapters { json }) => list_adapters(*json),
        Some(Command::Predict { model, out }) => predict(model, out.as_deref()),
        Some(Command::Eval { model, json }) => evaluate(model, *json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            let bad_input = error.downcast_ref::<Error>().is_some_and(Error::is_bad_input);
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

/// Input mistakes the CLI itself finds; exit code 2 like the library's.
fn bad_input(message: String) -> anyhow::Error {
    Error::InvalidInput(message).into()
}

/// The training and test sets `--data` names, scaled and split.
fn load_data(
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
    let scale = match cli.scale {
        None => default_scale,
        Some(ScaleArg::None) => Scale::None,
        Some(ScaleArg::Minmax) => Scale::MinMax,
        Some(ScaleArg::Standard) => Scale::Standard,
        Some(ScaleArg::Pixels) => Scale::Pixels,
    };
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

/// The network for the data: --layers as given, or --hidden between the
/// data's input and output sizes, and the activations and loss.
fn build_spec(cli: &TrainArgs, train: &Dataset, seed_data: bool) -> anyhow::Result<MlpSpec> {
    let (inputs, outputs) = (train.x.ncols(), train.y.ncols());
    let sizes = match (&cli.layers, &cli.hidden) {
        (Some(Sizes(layers)), _) => {
            if layers.len() >= 2 && (layers[0] != inputs || layers[layers.len() - 1] != outputs) {
                return Err(bad_input(format!(
                    "--layers {} does not fit the data: it has {inputs} inputs and {outputs} outputs per sample \
                     (give only the hidden sizes with --hidden to take them from the data)",
                    join(layers)
                )));
            }
            layers.clone()
        }
        (None, hidden) => {
            let default_hidden = if seed_data { vec![5] } else { vec![128] };
            let hidden = hidden.clone().map_or(default_hidden, |s| s.0);
            std::iter::once(inputs).chain(hidden).chain(std::iter::once(outputs)).collect()
        }
    };
    let classify = train.classes.is_some();
    let hidden = match cli.activation {
        Some(ActivationArg::Sigmoid) => Activation::Sigmoid,
        Some(ActivationArg::Relu) => Activation::Relu,
        Some(ActivationArg::Tanh) => Activation::Tanh,
        None if seed_data => Activation::Sigmoid,
        None => Activation::Relu,
    };
    let output = match (cli.output, cli.loss) {
        (Some(OutputArg::Sigmoid), _) => Output::Sigmoid,
        (Some(OutputArg::Identity), _) => Output::Identity,
        (Some(OutputArg::Softmax), _) | (None, Some(LossArg::CrossEntropy)) => Output::Softmax,
        (None, _) if seed_data => Output::Sigmoid,
        (None, Some(LossArg::Mse)) | (None, None) if !classify => Output::Identity,
        (None, Some(LossArg::Mse)) => Output::Sigmoid,
        (None, None) => Output::Softmax,
    };
    let loss = match cli.loss {
        Some(LossArg::Mse) => Loss::Mse,
        Some(LossArg::CrossEntropy) => Loss::CrossEntropy,
        None if output == Output::Softmax => Loss::CrossEntropy,
        None => Loss::Mse,
    };
    Ok(MlpSpec::new(sizes)?.with(hidden, output, loss)?)
}

fn join(sizes: &[usize]) -> String {
    sizes.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

/// Where training runs, chosen before anything large is allocated.
#[allow(clippy::large_enum_variant)] // one per process
enum Device {
    Gpu(GpuContext, Kernels),
    Cpu,
}

/// Picks the device for `--device`; auto falls back to the CPU with a notice.
fn choose_device(choice: DeviceChoice) -> anyhow::Result<Device> {
    let gpu = |ctx: GpuContext| -> anyhow::Result<Device> {
        let kernels = Kernels::new(&ctx)?;
        Ok(Device::Gpu(ctx, kernels))
    };
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Gpu => gpu(GpuContext::new()?),
        DeviceChoice::Auto => match GpuContext::new() {
            Ok(ctx) => gpu(ctx),
            Err(Error::NoAdapter(reason)) => {
                eprintln!("notice: {reason}; training on the CPU");
                Ok(Device::Cpu)
            }
            Err(other) => Err(other.into()),
        },
    }
}

fn make_trainer(
    device: &Device,
    kernel: KernelChoice,
    spec: &MlpSpec,
    params: &Params,
    train: &Dataset,
    test: Option<&Dataset>,
    config: &TrainConfig,
) -> anyhow::Result<Box<dyn Trainer>> {
    Ok(match device {
        Device::Gpu(ctx, kernels) => gpu::trainer(ctx, kernels, kernel, spec, params, train, test, config)?,
        Device::Cpu => Box::new(CpuTrainer::new(spec, params.clone(), train.clone(), test.cloned(), config)?),
    })
}

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

fn run(cli: &TrainArgs) -> anyhow::Result<()> {
    let seed_data = cli.input.data == Source::Seed;
    let outputs_hint = cli.layers.as_ref().and_then(|l| l.0.last().copied()).filter(|_| !seed_data);
    if let Some(Sizes(layers)) = &cli.layers {
        MlpSpec::new(layers.clone())?; // fewer than two sizes is an error before any data is read
    }
    let seed_sizes = cli.layers.as_ref().map_or((10, 1), |Sizes(s)| (s[0], s[s.len() - 1]));
    let (train, test, scaler) = load_data(&cli.input, seed_sizes, outputs_hint, None)?;
    let spec = build_spec(cli, &train, seed_data)?;
    let init = match cli.init {
        Some(InitArg::Normal) => Init::Normal,
        Some(InitArg::Xavier) => Init::Xavier,
        Some(InitArg::He) => Init::He,
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
        log_every: cli.log_every.unwrap_or(if seed_data { 100 } else { 1 }),
    };
    let epochs = cli.epochs.unwrap_or(if seed_data { 1000 } else { 10 });
    config.check(&spec, &train, test.as_ref())?;
    let device = choose_device(cli.device)?;
    if let Device::Gpu(ctx, _) = &device {
        GpuTrainer::check_limits(ctx, &spec, config.rows_per_batch(&train))?;
    }
    let params = Params::init(&spec, init, cli.input.seed)?;
    let metadata = checkpoint::describe(&spec, config.optimizer, cli.input.seed, train.fingerprint());
    let resume = match &cli.resume {
        Some(path) => {
            let saved = checkpoint::load(path, &spec)?;
            saved.check_matches(&metadata, path)?;
            Some((path.clone(), saved))
        }
        None => None,
    };

    // Progress goes to stderr under --json, so stdout holds only the JSON.
    let mut out: Box<dyn Write> = if cli.json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    let mut trainer = make_trainer(&device, cli.kernel.into(), &spec, &params, &train, test.as_ref(), &config)?;
    let device = trainer.device();
    let on_gpu = device != "cpu";
    writeln!(out, "device: {device}")?;
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
        "model: layers {spec} ({} parameters), {:?} hidden, {:?} output, {:?} loss, {:?} init",
        spec.num_params(),
        spec.hidden(),
        spec.output(),
        spec.loss(),
        init
    )?;
    writeln!(
        out,
        "training: {:?}, lr {}, weight decay {}, batch {}, shuffle {}, {} epochs, seed {}",
        config.optimizer,
        config.lr,
        config.weight_decay,
        config.batch_size.map_or("full".to_string(), |b| b.to_string()),
        if config.shuffle { "on" } else { "off" },
        epochs,
        cli.input.seed
    )?;
    let first_epoch = match &resume {
        Some((path, saved)) => {
            trainer.restore(&saved.state)?;
            writeln!(out, "resuming from {} after epoch {}", path.display(), saved.epoch)?;
            saved.epoch
        }
        None => 0,
    };
    let mut folder = RunFolder::create(cli.out.as_deref(), metadata, Some(scaler))?;
    folder.write_config(&serde_json::json!({
        "crate_version": env!("CARGO_PKG_VERSION"),
        "command": std::env::args().collect::<Vec<_>>(),
        "device": device,
        "data": cli.input.data.to_string(),
        "train_samples": train.len(),
        "test_samples": test.as_ref().map(Dataset::len),
        "classes": train.classes,
        "layers": spec.sizes(),
        "hidden": format!("{:?}", spec.hidden()),
        "output": format!("{:?}", spec.output()),
        "loss": format!("{:?}", spec.loss()),
        "init": format!("{init:?}"),
        "optimizer": format!("{:?}", config.optimizer),
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "batch_size": config.rows_per_batch(&train),
        "shuffle": config.shuffle,
        "epochs": epochs,
        "log_every": config.log_every,
        "save_every": cli.save_every,
        "seed": cli.input.seed,
        "resumed_from": cli.resume.as_ref().map(|p| p.display().to_string()),
        "first_epoch": first_epoch,
    }))?;
    let schedule = Schedule {
        first_epoch,
        last_epoch: epochs.max(first_epoch),
        log_every: config.log_every,
        save_every: Some(cli.save_every.unwrap_or(usize::MAX)),
    };
    // A terminal gets a progress bar with each read-back printed above it; logs
    // and pipes get the plain lines; --quiet neither.
    let steps_per_epoch = trainer.steps_per_epoch() as u64;
    let bar = (!cli.quiet && std::io::stderr().is_terminal()).then(|| {
        let total = (epochs.saturating_sub(first_epoch) as u64) * steps_per_epoch;
        let bar = indicatif::ProgressBar::new(total);
        let style = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  eta {eta}  {msg}")
            .expect("the template is valid");
        bar.set_style(style);
        bar
    });
    let log = |epoch: usize, metrics: &EpochMetrics| {
        let line = format!("epoch {epoch:>7}  {}", describe(metrics));
        match &bar {
            Some(bar) => {
                bar.set_position((epoch - first_epoch) as u64 * steps_per_epoch);
                bar.set_message(describe(metrics));
                bar.suspend(|| writeln!(out, "{line}").ok());
            }
            None if !cli.quiet => {
                writeln!(out, "{line}").ok();
            }
            None => {}
        }
    };
    // Ctrl-C stops training at the next read-back, after a checkpoint; a
    // second Ctrl-C exits at once.
    static STOP: AtomicBool = AtomicBool::new(false);
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    let hooks = &mut RunHooks { folder: &mut folder, log, stop: &STOP };
    let fitted = fit_schedule(trainer.as_mut(), schedule, hooks);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = match fitted {
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
        other => other?,
    };
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

    let last = report.last();
    let mut summary = serde_json::json!({
        "device": if on_gpu { "gpu" } else { "cpu" },
        "adapter": if on_gpu { Some(device) } else { None },
        "data": cli.input.data.to_string(),
        "layers": spec.sizes(),
        "samples": train.len(),
        "test_samples": test.as_ref().map(Dataset::len),
        "batch_size": config.rows_per_batch(&train),
        "epochs": epochs,
        "epochs_run": report.history.len(),
        "first_epoch": first_epoch,
        "out": folder.dir().display().to_string(),
        "checkpoint": folder.checkpoints.last().map(|p| p.display().to_string()),
        "lr": config.lr,
        "seed": cli.input.seed,
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
    });

    writeln!(
        out,
        "run folder: {} ({}metrics.csv, loss.svg{}{})",
        folder.dir().display(),
        if folder.checkpoints.is_empty() { "" } else { "checkpoints, " },
        if plot.png { ", loss.png" } else { "" },
        plot.png_skipped_because.as_ref().map_or(String::new(), |why| format!("; no loss.png: {why}"))
    )?;
    if cli.verify {
        let mut reference = CpuTrainer::new(&spec, params, train, test, &config)?;
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
        println!("{summary}");
    }
    Ok(())
}

/// `wgpu-mlp bench`: every case on every device, as a table or JSON.
fn run_bench(args: &BenchArgs) -> anyhow::Result<()> {
    let cases = if args.cases.is_empty() { bench::Case::defaults() } else { args.cases.clone() };
    let gpu = if args.devices.is_empty() || args.devices.contains(&BenchDeviceArg::Gpu) {
        match choose_device(if args.devices.is_empty() { DeviceChoice::Auto } else { DeviceChoice::Gpu })? {
            Device::Gpu(ctx, kernels) => Some((ctx, kernels)),
            Device::Cpu => None,
        }
    } else {
        None
    };
    let mut devices = Vec::new();
    if let Some((ctx, kernels)) = &gpu {
        devices.push(BenchDevice::Gpu(ctx, kernels));
    }
    if args.devices.is_empty() || args.devices.contains(&BenchDeviceArg::Cpu) {
        devices.push(BenchDevice::Cpu);
    }
    if let Some((ctx, _)) = &gpu {
        eprintln!("gpu: {}", ctx.describe());
    }
    if !args.json {
        println!(
            "{:<22} {:<12} {:>12} {:>9} {:>12} {:>10} {:>9} {:>9} {:>9}",
            "case", "device", "us/step", "GFLOP/s", "matmul us", "dispatch", "submit", "readback", "GPU MiB"
        );
    }
    let mut rows = Vec::new();
    for case in &cases {
        for device in &devices {
            let m = bench::measure(case, device, args.kernel.into())?;
            if args.json {
                rows.push(serde_json::json!({
                    "case": m.case,
                    "device": m.device,
                    "adapter": m.adapter,
                    "kernel": m.kernel,
                    "us_per_step": m.us_per_step,
                    "gflops": m.gflops,
                    "matmul_us_per_step": m.matmul_us_per_step,
                    "dispatches_per_step": m.dispatches_per_step,
                    "submits_per_step": m.submits_per_step,
                    "readbacks_per_step": m.readbacks_per_step,
                    "gpu_bytes": m.gpu_bytes,
                }));
            } else {
                println!(
                    "{:<22} {:<12} {:>12.2} {:>9.2} {:>12} {:>10.2} {:>9.3} {:>9.3} {:>9.2}",
                    m.case,
                    m.kernel.as_ref().map_or(m.device.clone(), |k| format!("{} {k}", m.device)),
                    m.us_per_step,
                    m.gflops,
                    m.matmul_us_per_step.map_or("-".to_string(), |us| format!("{us:.2}")),
                    m.dispatches_per_step,
                    m.submits_per_step,
                    m.readbacks_per_step,
                    m.gpu_bytes as f64 / (1 << 20) as f64
                );
            }
        }
    }
    if args.json {
        println!("{}", serde_json::Value::Array(rows));
    }
    Ok(())
}

/// `wgpu-mlp adapters`: what wgpu finds, and a warning when only software is there.
fn list_adapters(json: bool) -> anyhow::Result<()> {
    let found = gpu::adapters();
    let rows: Vec<serde_json::Value> = found
        .iter()
        .map(|(info, limits)| {
            serde_json::json!({
                "name": info.name,
                "backend": format!("{:?}", info.backend),
                "device_type": format!("{:?}", info.device_type),
                "driver": info.driver,
                "driver_info": info.driver_info,
                "max_buffer_size": limits.max_buffer_size,
                "max_storage_buffer_binding_size": limits.max_storage_buffer_binding_size,
                "max_compute_workgroup_storage_size": limits.max_compute_workgroup_storage_size,
                "max_compute_invocations_per_workgroup": limits.max_compute_invocations_per_workgroup,
                "max_compute_workgroups_per_dimension": limits.max_compute_workgroups_per_dimension,
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::Value::Array(rows));
    } else {
        for (info, limits) in &found {
            println!("{} ({:?}, {:?})", info.name, info.backend, info.device_type);
            println!("    driver: {} {}", info.driver, info.driver_info);
            println!(
                "    max buffer {} MiB, max storage binding {} MiB, workgroup memory {} KiB, {} invocations per workgroup, {} workgroups per dimension",
                limits.max_buffer_size >> 20,
                limits.max_storage_buffer_binding_size >> 20,
                limits.max_compute_workgroup_storage_size >> 10,
                limits.max_compute_invocations_per_workgroup,
                limits.max_compute_workgroups_per_dimension
            );
        }
    }
    if found.is_empty() {
        eprintln!("warning: {}", wgpu_mlp::gpu::NO_ADAPTER_HELP);
    } else if found.iter().all(|(info, _)| info.device_type == wgpu::DeviceType::Cpu) {
        eprintln!("warning: only software adapters were found; they run on the CPU cores, where --device cpu is usually faster");
    }
    Ok(())
}

/// The checkpoint's model, the rows to run it on (scaled as in training), and
/// the network's outputs for them on the chosen device, with the loss.
struct Outputs {
    spec: MlpSpec,
    rows: Dataset,
    /// (N, OUT): logits for a softmax output.
    outputs: ndarray::Array2<f32>,
    loss: f32,
    device: String,
}

fn run_model(args: &ModelArgs) -> anyhow::Result<Outputs> {
    let spec = checkpoint::read_spec(&args.checkpoint)?;
    let saved = checkpoint::load(&args.checkpoint, &spec)?;
    let scaler = saved.scaler.clone().unwrap_or_else(|| Scale::None.fit(&ndarray::Array2::zeros((1, spec.inputs()))));
    let classes =
        (spec.loss() == Loss::CrossEntropy || args.input.task == Some(TaskArg::Classify)).then_some(spec.outputs());
    let (train, test, _) = load_data(&args.input, (spec.inputs(), spec.outputs()), classes, Some(&scaler))?;
    let rows = test.unwrap_or(train);
    if rows.x.ncols() != spec.inputs() || rows.y.ncols() != spec.outputs() {
        return Err(bad_input(format!(
            "the data has {} inputs and {} targets per sample, the checkpoint's model {spec} takes {} and gives {}",
            rows.x.ncols(),
            rows.y.ncols(),
            spec.inputs(),
            spec.outputs()
        )));
    }
    let config = TrainConfig { batch_size: Some(1024), log_every: 1, ..TrainConfig::default() };
    let (outputs, loss, device) = match choose_device(args.device)? {
        Device::Gpu(ctx, kernels) => {
            let mut trainer = GpuTrainer::new(&ctx, &kernels, &spec, &saved.state.params, &rows, None, &config)?;
            (trainer.predict()?, trainer.evaluate()?, trainer.device())
        }
        Device::Cpu => {
            let acts = wgpu_mlp::cpu::forward(&spec, &saved.state.params, rows.x.view());
            let (loss, _) = wgpu_mlp::cpu::evaluate(&spec, &saved.state.params, &rows);
            (acts.last().expect("a network has at least one layer").clone(), loss, "cpu".to_string())
        }
    };
    Ok(Outputs { spec, rows, outputs, loss, device })
}

/// Row r's probabilities (softmax of the logits for a softmax output).
fn probabilities(spec: &MlpSpec, outputs: &ndarray::Array2<f32>) -> ndarray::Array2<f32> {
    let mut probs = outputs.clone();
    if spec.output() == Output::Softmax {
        for mut row in probs.rows_mut() {
            let top = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            row.mapv_inplace(|v| (v - top).exp());
            let total = row.sum();
            row /= total;
        }
    }
    probs
}

fn argmax(row: ndarray::ArrayView1<f32>) -> usize {
    row.iter().enumerate().fold(0, |best, (j, &v)| if v > row[best] { j } else { best })
}

/// `wgpu-mlp predict`: predictions as CSV.
fn predict(args: &ModelArgs, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let Outputs { spec, rows, outputs, device, .. } = run_model(args)?;
    eprintln!("predict: {} rows on {device}", rows.len());
    let classify = rows.classes.is_some();
    let values = probabilities(&spec, &outputs);
    let mut csv = ::csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = Vec::new();
    if classify {
        header.push("class".into());
        header.extend((0..spec.outputs()).map(|j| format!("p{j}")));
    } else {
        header.extend((0..spec.outputs()).map(|j| format!("output{j}")));
    }
    csv.write_record(&header)?;
    for row in values.rows() {
        let mut record: Vec<String> = Vec::with_capacity(header.len());
        if classify {
            record.push(argmax(row).to_string());
        }
        record.extend(row.iter().map(f32::to_string));
        csv.write_record(&record)?;
    }
    let bytes = csv.into_inner().map_err(|e| anyhow::anyhow!("cannot write the predictions: {e}"))?;
    match out {
        Some(path) => wgpu_mlp::report::write_atomically(path, |file| file.write_all(&bytes))?,
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(())
}

/// `wgpu-mlp eval`: loss and accuracy.
fn evaluate(args: &ModelArgs, json: bool) -> anyhow::Result<()> {
    let Outputs { rows, outputs, loss, device, .. } = run_model(args)?;
    let accuracy = rows.classes.map(|_| {
        let labels = rows.labels();
        let hits = outputs.rows().into_iter().zip(&labels).filter(|(row, &label)| argmax(*row) == label).count();
        hits as f32 / rows.len() as f32
    });
    if json {
        println!("{}", serde_json::json!({ "device": device, "rows": rows.len(), "loss": loss, "accuracy": accuracy }));
    } else {
        let accuracy = accuracy.map_or(String::new(), |a| format!("  accuracy {a:.4}"));
        println!("{} rows on {device}: loss {loss:.6}{accuracy}", rows.len());
    }
    Ok(())
}
