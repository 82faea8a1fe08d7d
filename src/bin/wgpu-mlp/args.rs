//! The flags: every clap struct and value enum, and the value parsers.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use wgpu_mlp::bench;
use wgpu_mlp::data::{Missing, Scale, Source, TargetColumn, UnknownCategory};
use wgpu_mlp::dropout::Dropout;
use wgpu_mlp::gpu::{GpuPath, MatmulKernel};
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::train::Monitor;

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
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,

    #[command(flatten)]
    pub(crate) train: TrainArgs,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Time training steps and matmuls on the CPU and the GPU and print a table
    /// (or JSON): microseconds per step, GFLOP/s, dispatches, submits and
    /// read-backs per step, and GPU memory.
    Bench(BenchArgs),

    /// Write the model's predictions as CSV with a header: the class and each
    /// class's probability for classifiers, the outputs otherwise (each
    /// output's probability under bce). By default
    /// every row of the data, in file order (a CSV's columns matched by header
    /// name, so ids and targets may be there or not); --split test gives the
    /// rows training held out. The data settings are training's, from the
    /// checkpoint, unless a flag says otherwise.
    Predict {
        #[command(flatten)]
        model: ModelArgs,

        /// Write the CSV here instead of to stdout.
        #[arg(long)]
        out: Option<PathBuf>,

        #[command(flatten)]
        copy: CopyArgs,
    },

    /// Print the model's loss and accuracy: by default on the training run's
    /// own test set (its data, split and scaling from the checkpoint), or on
    /// every row of another --data file.
    Eval {
        #[command(flatten)]
        model: ModelArgs,

        /// Print one JSON object.
        #[arg(long)]
        json: bool,

        /// CSV: a group column (a sensitive attribute), by 0-based index or
        /// header name, comma-separated or repeated for their intersection:
        /// the metrics and gaps per group [default: training's --group,
        /// where the data has those columns].
        #[arg(long, value_delimiter = ',')]
        group: Vec<TargetColumn>,
    },

    /// Write a checkpoint's model as ONNX (opset 13): input `input`, float32
    /// [batch, IN], raw rows (the input scaling is in the graph); output
    /// `output`, float32 [batch, OUT], class probabilities for a softmax output
    /// and each output's probability under bce (not logits), else the last
    /// layer's outputs.
    Export {
        /// A checkpoint written by training.
        #[arg(long)]
        checkpoint: PathBuf,

        /// The .onnx file to write (replaced atomically; not a folder).
        #[arg(long)]
        out: PathBuf,
    },

    /// Plan a DP-SGD privacy budget: the (epsilon, delta) that training with
    /// Poisson-sampled batches of --batch-size expected rows out of --rows and
    /// Gaussian noise of --noise-multiplier spends, by the RDP accountant of
    /// Google's dp_accounting; or, with --target-epsilon, the noise multiplier
    /// that stays within it (to 0.01 in epsilon, as Opacus's search). Give
    /// one of --epochs and --steps, and one of --noise-multiplier and
    /// --target-epsilon.
    Privacy(PrivacyArgs),

    /// Train many models and rank them: every combination of the swept
    /// flags' alternatives, each line of --sweep-file, each of --folds K
    /// folds. Takes every training flag (`wgpu-mlp --help`); --lr,
    /// --weight-decay, --seed, --batch-size and --activation list
    /// alternatives with commas (`--lr 0.1,0.01`), while --hidden and
    /// --dropout, whose commas separate layers, are repeated instead
    /// (`--hidden 64 --hidden 128,128` is two models); any swept flag may
    /// also be repeated. Each model ends with exactly the parameters of the
    /// single run of its flags (sweep.csv's `command`), on the CPU many at a
    /// time. Writes sweep.csv (one row per model), sweep.svg (the monitored
    /// metric against each swept setting) and the winner's checkpoint to
    /// --out, and prints the winner. At most 100000 models.
    Sweep(crate::sweep::SweepArgs),

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
pub(crate) struct ModelArgs {
    /// A checkpoint written by training (its model, weights, input scaling
    /// and the data settings of training).
    #[arg(long)]
    pub(crate) checkpoint: PathBuf,

    #[command(flatten)]
    pub(crate) input: ModelDataArgs,

    /// Where to compute: auto takes a hardware GPU when there is one, else
    /// the CPU; gpu takes any adapter, software ones (lavapipe) too.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub(crate) device: DeviceChoice,
}

/// The data flags of predict and eval. Each defaults to what the checkpoint
/// says training read; the scaling and the classes are the model's, so they
/// are not flags here.
#[derive(Debug, clap::Args)]
pub(crate) struct ModelDataArgs {
    /// Data: csv:PATH (plain or gzip), fashion-mnist[:DIR], idx:DIR or seed
    /// [default: the training data, from the checkpoint].
    #[arg(long)]
    pub(crate) data: Option<Source>,

    /// The rows: all (every row, in file order; IDX: training then test
    /// images) or test (the rows training held out, or IDX's test images)
    /// [default: all for predict; for eval test on the training data, all on
    /// other data].
    #[arg(long, value_enum)]
    pub(crate) split: Option<SplitArg>,

    /// CSV: the target column(s), by 0-based index or header name, comma-separated [default: training's].
    #[arg(long, value_delimiter = ',')]
    pub(crate) target: Vec<TargetColumn>,

    /// CSV: what the target is [default: training's].
    #[arg(long, value_enum)]
    pub(crate) task: Option<TaskArg>,

    /// CSV: the first row (after --skip-rows) is a header [default: training's
    /// for its own file, else detected].
    #[arg(long)]
    pub(crate) header: bool,

    /// CSV: the first row is data, even with text in it (categories)
    /// [default: training's for its own file, else detected].
    #[arg(long, conflicts_with = "header")]
    pub(crate) no_header: bool,

    /// CSV: lines to skip before the header or data [default: training's for its own file, else 0].
    #[arg(long)]
    pub(crate) skip_rows: Option<usize>,

    /// --split test: the seed of the split [default: training's]; also the
    /// seed of seed data.
    #[arg(long)]
    pub(crate) seed: Option<u64>,

    /// --split test: the share of the rows held out [default: training's].
    #[arg(long)]
    pub(crate) test_fraction: Option<f64>,

    /// Samples of the seed problem [default: training's].
    #[arg(long, value_parser = parse_at_least_one)]
    pub(crate) samples: Option<usize>,

    /// CSV: a category of a categorical column that no training row had:
    /// error (naming it), or ignore (every one-hot input of its column 0).
    #[arg(long, value_enum, default_value_t = UnknownCategory::Error)]
    pub(crate) unknown_category: UnknownCategory,
}

/// CSV columns predict copies, as text, into its output ahead of its
/// answers; with either, the output also ends with the true target column(s)
/// (`target`, or `target0`, `target1`, ...) when the file has them.
#[derive(Debug, clap::Args)]
pub(crate) struct CopyArgs {
    /// CSV: the rows' id column, by 0-based index or header name, copied first.
    #[arg(long)]
    pub(crate) id_column: Option<TargetColumn>,

    /// CSV: more columns to copy after the id, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub(crate) passthrough: Vec<TargetColumn>,
}

impl CopyArgs {
    /// Every column to copy, the id first.
    pub(crate) fn columns(&self) -> Vec<TargetColumn> {
        self.id_column.iter().chain(&self.passthrough).cloned().collect()
    }
}

/// `--class-weight`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ClassWeightArg {
    Balanced,
    Weights(Vec<f32>),
}

/// Which model a run ends with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeepArg {
    Best,
    Last,
}

/// Which rows predict and eval run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SplitArg {
    All,
    Test,
}

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// A case: seed (10-5-1, 100 samples), mlp (784-256-10, batch 256),
    /// mlp-regularized (mlp with dropout 0.1, a cosine schedule and norm
    /// clipping), mlp-dp (mlp with DP-SGD: Poisson samples of 256 rows expected
    /// of 2560), wide (1024-1024-1024-10, batch 1024), matmul:M,K,N, or
    /// dispatch (the cost of one tiny dispatch, GPU only); repeatable
    /// [default: seed, mlp, dispatch, matmul:512,512,512, matmul:256,784,256, matmul:784,256,256].
    #[arg(long = "case")]
    pub(crate) cases: Vec<bench::Case>,

    /// A device to run on, repeatable [default: gpu (when there is an adapter) and cpu].
    #[arg(long = "device", value_enum)]
    pub(crate) devices: Vec<BenchDeviceArg>,

    #[command(flatten)]
    pub(crate) gpu: GpuPathArgs,

    /// CPU threads of the cpu device's products and element-wise work, comma-separated or
    /// repeated: each count's runs in turn with the others' [default: WGPU_MLP_THREADS,
    /// else the machine's cores]; 1 runs everything on one thread. WGPU_MLP_THREADS
    /// sets the same for training, predict and eval.
    #[arg(long, value_delimiter = ',')]
    pub(crate) threads: Vec<usize>,

    /// Print a JSON array, one object per case and device.
    #[arg(long)]
    pub(crate) json: bool,

    /// Time nothing: write each --case (seed and mlp, the default here) to DIR/CASE.safetensors,
    /// its net, initial weights, data and the loss after a few steps, for the
    /// same steps in other frameworks (benches/peers/).
    #[arg(long, value_name = "DIR")]
    pub(crate) export: Option<std::path::PathBuf>,
}

/// The flags of `wgpu-mlp privacy`.
#[derive(Debug, clap::Args)]
pub(crate) struct PrivacyArgs {
    /// Rows of the training set.
    #[arg(long)]
    pub(crate) rows: usize,

    /// The expected batch size: each step samples every row with
    /// probability q = batch size / rows.
    #[arg(long)]
    pub(crate) batch_size: usize,

    /// Epochs of ceil(rows / batch size) steps each.
    #[arg(long)]
    pub(crate) epochs: Option<u64>,

    /// Steps in all, instead of --epochs.
    #[arg(long)]
    pub(crate) steps: Option<u64>,

    /// The noise's standard deviation over the clipping norm.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) noise_multiplier: Option<f64>,

    /// The epsilon to stay within: prints the noise multiplier that does.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) target_epsilon: Option<f64>,

    /// Delta, in (0, 1) [default: the largest power of ten below 1 / rows].
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) delta: Option<f64>,

    /// Print one JSON object: q, sigma, steps, delta, epsilon, order.
    #[arg(long)]
    pub(crate) json: bool,
}

/// How the GPU trains: the same flags for training and bench.
#[derive(Debug, clap::Args)]
pub(crate) struct GpuPathArgs {
    /// GPU path: fused runs many steps per dispatch in one workgroup (small
    /// nets; shuffled batches and a classification test set allowed; no
    /// clipping, dropout, DP-SGD or schedule); layered runs a dispatch per op;
    /// auto takes fused when the net and its state fit workgroup memory (on a
    /// GPU with the training rows beside them), and on a CPU adapter such as
    /// lavapipe for small steps beyond it.
    /// (--kernel is the old name.)
    #[arg(long, alias = "kernel", value_enum, default_value_t = GpuPath::Auto)]
    pub(crate) path: GpuPath,

    /// GPU matmul kernel of the layered path: registers (no workgroup memory,
    /// for CPU adapters such as lavapipe), workgroup (tiles in workgroup
    /// memory, for GPUs), or auto: each shape class's fastest, timed at its first
    /// product on the adapter and kept per adapter and driver in
    /// $XDG_CACHE_HOME/wgpu-mlp/matmul-tuning.json (WGPU_MLP_MATMUL_TUNING=off:
    /// by the adapter's device type instead).
    #[arg(long, value_enum, default_value_t = MatmulArg::Auto)]
    pub(crate) matmul: MatmulArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum BenchDeviceArg {
    Gpu,
    Cpu,
}

/// Where the data comes from and how it is read, split and scaled: the same
/// flags for training, predict and eval.
#[derive(Debug, clap::Args)]
pub(crate) struct DataArgs {
    /// Data: seed (the textbook's random data), csv:PATH (plain or gzip),
    /// fashion-mnist[:DIR] (default DIR /usr/share/datasets/fashion-mnist) or idx:DIR.
    #[arg(long, default_value = "seed")]
    pub(crate) data: Source,

    /// Seed of the initialisation, the generated data, the shuffles and the split.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,

    /// Samples of the seed problem.
    #[arg(long, value_parser = parse_at_least_one)]
    pub(crate) samples: Option<usize>,

    /// CSV: the target column(s), by 0-based index or header name, comma-separated [default: the last column].
    #[arg(long, value_delimiter = ',')]
    pub(crate) target: Vec<TargetColumn>,

    /// CSV: what the target is [default: regress].
    #[arg(long, value_enum)]
    pub(crate) task: Option<TaskArg>,

    /// CSV: the first row (after --skip-rows) is a header [default: detected].
    #[arg(long)]
    pub(crate) header: bool,

    /// CSV: the first row is data, even with text in it (categories): the
    /// file has no header.
    #[arg(long, conflicts_with = "header")]
    pub(crate) no_header: bool,

    /// CSV: lines to skip before the header or data (scikit-learn's CSVs start with one).
    #[arg(long, default_value_t = 0)]
    pub(crate) skip_rows: usize,

    /// CSV: columns kept out of the inputs, by 0-based index or header name,
    /// comma-separated; they may hold any text.
    #[arg(long, value_delimiter = ',')]
    pub(crate) ignore_columns: Vec<TargetColumn>,

    /// CSV: the rows' id column, kept out of the inputs (any text).
    #[arg(long)]
    pub(crate) id_column: Option<TargetColumn>,

    /// Number of classes [default: the largest label + 1, or --layers' last size].
    #[arg(long, value_parser = parse_at_least_one)]
    pub(crate) classes: Option<usize>,

    /// Feature scaling, fitted on the training rows [default: none for seed,
    /// pixels (x / 255) for IDX images, standard for CSV].
    #[arg(long, value_enum)]
    pub(crate) scale: Option<Scale>,

    /// Target scaling of a regression: standard trains on (y - mean) / std
    /// per target column, fitted on the training rows; predict answers in the
    /// target's own units [default: none].
    #[arg(long, value_enum)]
    pub(crate) scale_target: Option<TargetScaleArg>,

    /// Share of the rows held out as a test set, stratified by class, for
    /// sources without one [default: 0 for seed, 0.25 for CSV]. The test set
    /// is scored once, at the end, on the model kept.
    #[arg(long)]
    pub(crate) test_fraction: Option<f64>,

    /// Share of the training rows (after the test split) held out as a
    /// validation set, stratified by class and chosen by --seed: evaluated
    /// after every epoch, it picks the best epoch (--monitor) [default: 0.1
    /// with --data, 0 for seed].
    #[arg(long, conflicts_with = "val_data")]
    pub(crate) val_fraction: Option<f64>,

    /// CSV: a separate validation file, read with the training file's
    /// settings and encoded and scaled as the training rows were.
    #[arg(long)]
    pub(crate) val_data: Option<Source>,

    /// K-fold cross-validation's fold I/K (I from 0) as the validation set:
    /// the training rows (after the test split) dealt into K folds,
    /// stratified by class and chosen by --seed; `wgpu-mlp sweep --folds K`
    /// trains every fold.
    #[arg(long, conflicts_with_all = ["val_fraction", "val_data"])]
    pub(crate) fold: Option<wgpu_mlp::data::Fold>,

    /// CSV: the field delimiter, one character (`;`, or `tab`)
    /// [default: `;` or tab when the first line has one and no comma, else `,`].
    #[arg(long, value_parser = parse_delimiter)]
    pub(crate) delimiter: Option<u8>,

    /// CSV: input columns holding categories (text, or numbers that are codes),
    /// by 0-based index or header name, comma-separated: each is one-hot
    /// encoded over the categories of the training rows, which the
    /// checkpoint keeps.
    #[arg(long, value_delimiter = ',')]
    pub(crate) categorical: Vec<TargetColumn>,

    /// CSV: what a missing value (an empty cell, NA, N/A, NaN or null) does:
    /// error names its line and column; mean and median fill an input with
    /// that of the training rows (a categorical column with its most
    /// frequent category), and predict and eval fill it the same way; drop
    /// leaves the row out.
    #[arg(long, value_enum, default_value_t = Missing::Error)]
    pub(crate) missing: Missing,

    /// CSV: a category of a --categorical column that no training row has
    /// (in the test rows): error, or ignore (every one-hot input of its column 0).
    #[arg(long, value_enum, default_value_t = UnknownCategory::Error)]
    pub(crate) unknown_category: UnknownCategory,

    /// CSV: a group column (a sensitive attribute), by 0-based index or
    /// header name, comma-separated or repeated for their intersection: the
    /// test set's metrics and gaps per group at the end (and fairness.csv,
    /// fairness.svg); read as text and kept out of the inputs.
    #[arg(long, value_delimiter = ',')]
    pub(crate) group: Vec<TargetColumn>,

    /// CSV: the --group columns are inputs too, one-hot encoded as
    /// --categorical columns are.
    #[arg(long)]
    pub(crate) group_as_feature: bool,
}

/// The training flags (the default command).
#[derive(Debug, clap::Args)]
pub(crate) struct TrainArgs {
    #[command(flatten)]
    pub(crate) input: DataArgs,

    /// All layer sizes from inputs to outputs, comma-separated; with --data the
    /// first and last must match the data's inputs and outputs.
    #[arg(long, conflicts_with = "hidden")]
    pub(crate) layers: Option<Sizes>,

    /// Only the hidden layer sizes (e.g. 128 or 256,128): the input and output
    /// sizes are taken from the data [default with --data: 128].
    #[arg(long)]
    pub(crate) hidden: Option<Sizes>,

    /// Hidden layers' activation (gelu: its tanh form) [default: sigmoid for
    /// seed, else relu].
    #[arg(long, value_enum)]
    pub(crate) activation: Option<Activation>,

    /// Leaky relu's slope below 0, in [0, 1); with --activation leaky-relu
    /// only [default: 0.01].
    #[arg(long, value_parser = parse_negative_slope)]
    pub(crate) negative_slope: Option<f32>,

    /// Output layer [default: sigmoid for seed or bce, softmax for classes,
    /// else identity].
    #[arg(long, value_enum)]
    pub(crate) output: Option<Output>,

    /// Loss [default: cross-entropy with a softmax output, else mse]; bce is
    /// binary cross-entropy over sigmoid outputs, for targets in [0, 1]
    /// (binary or multi-label, --task regress).
    #[arg(long, value_enum)]
    pub(crate) loss: Option<Loss>,

    /// Weight initialisation [default: normal for seed, he for relu and
    /// leaky-relu, else xavier].
    #[arg(long, value_enum)]
    pub(crate) init: Option<Init>,

    /// Update rule [default: sgd for seed, else adam].
    #[arg(long, value_enum)]
    pub(crate) optimizer: Option<OptimizerArg>,

    /// Learning rate, positive and finite [default: 0.01, 0.001 for adam].
    #[arg(long, value_parser = parse_positive)]
    pub(crate) lr: Option<f32>,

    /// How the rate moves over the run: constant; step (x --lr-gamma every
    /// --lr-step-epochs); exponential (x --lr-gamma every epoch); cosine (down
    /// to --lr-min over --epochs, every step); plateau (x --lr-factor after
    /// --lr-patience epochs without the --monitor metric improving, down to
    /// --lr-min). The rate of each epoch goes to metrics.csv (`lr`).
    #[arg(long, value_enum, default_value_t = LrScheduleArg::Constant)]
    pub(crate) lr_schedule: LrScheduleArg,

    /// --lr-schedule step: epochs between cuts [default: 10].
    #[arg(long, value_parser = parse_at_least_one)]
    pub(crate) lr_step_epochs: Option<usize>,

    /// --lr-schedule step and exponential: the factor of each cut, in (0, 1]
    /// [default: 0.1 for step, 0.95 for exponential].
    #[arg(long)]
    pub(crate) lr_gamma: Option<f32>,

    /// --lr-schedule cosine and plateau: the least rate, in [0, --lr) [default: 0].
    #[arg(long)]
    pub(crate) lr_min: Option<f32>,

    /// --lr-schedule plateau: epochs without improvement before a cut [default: 5].
    #[arg(long, value_parser = parse_at_least_one)]
    pub(crate) lr_patience: Option<usize>,

    /// --lr-schedule plateau: the factor of a cut, in (0, 1) [default: 0.1].
    #[arg(long)]
    pub(crate) lr_factor: Option<f32>,

    /// Cross-entropy weights of the classes: balanced (n_rows / (n_classes *
    /// count), as scikit-learn defines it, from the training rows) or one
    /// positive weight per class, comma-separated. Each training row's loss
    /// and gradient are scaled by its class's weight; the validation and test
    /// rows are scored unweighted.
    #[arg(long, value_parser = parse_class_weight)]
    pub(crate) class_weight: Option<ClassWeightArg>,

    /// Inverted dropout: in each training step every hidden unit is dropped
    /// with this probability, in [0, 1), or with one probability per hidden
    /// layer, first first (0.3,0.1; 0 keeps a layer whole). The masks come
    /// from a hash of the seed, step, layer and unit, the same on every
    /// device; evaluation, predict and export use the whole network.
    #[arg(long, value_name = "P[,P...]", value_parser = parse_dropout)]
    pub(crate) dropout: Option<Dropout>,

    /// Scale all gradients down together where their global L2 norm is above
    /// this (PyTorch's clip_grad_norm_), before weight decay and the update;
    /// summed on the GPU in a fixed order.
    #[arg(long, value_parser = parse_positive)]
    pub(crate) clip_grad_norm: Option<f32>,

    /// Clamp each gradient element to [-V, V] (after --clip-grad-norm).
    #[arg(long, value_parser = parse_positive)]
    pub(crate) clip_grad_value: Option<f32>,

    #[command(flatten)]
    pub(crate) privacy: crate::dp::DpArgs,

    /// Epochs of linear warm-up from 0 at the start, under any schedule (step
    /// k of the W warm-up steps trains at (k + 1) / W of the rate).
    #[arg(long, default_value_t = 0)]
    pub(crate) warmup_epochs: usize,

    /// Momentum of --optimizer momentum, in [0, 1).
    #[arg(long, default_value_t = 0.9)]
    pub(crate) momentum: f32,

    /// Adam's first-moment decay, in [0, 1).
    #[arg(long, default_value_t = 0.9)]
    pub(crate) beta1: f32,

    /// Adam's second-moment decay, in [0, 1).
    #[arg(long, default_value_t = 0.999)]
    pub(crate) beta2: f32,

    /// Adam's epsilon, positive.
    #[arg(long, default_value_t = 1e-8)]
    pub(crate) eps: f32,

    /// L2 weight decay added to every gradient (weight_decay * w), >= 0.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) weight_decay: f32,

    /// Passes over the training data; 0 only reports the initial loss
    /// [default: 1000 for seed, else 10].
    #[arg(long)]
    pub(crate) epochs: Option<usize>,

    /// Rows per gradient step; the last batch holds the rest
    /// [default: all rows for seed, else 128].
    #[arg(long, value_parser = parse_at_least_one)]
    pub(crate) batch_size: Option<usize>,

    /// Shuffle the training rows every epoch [default: on, except for seed].
    #[arg(long, overrides_with = "no_shuffle")]
    pub(crate) shuffle: bool,

    /// Keep the training rows in file order.
    #[arg(long)]
    pub(crate) no_shuffle: bool,

    /// Read the metrics back and print them every this many epochs (and after
    /// the last) [default: 100 for seed, else 1].
    #[arg(long, value_parser = parse_at_least_one)]
    pub(crate) log_every: Option<usize>,

    /// Stop once this many epochs pass without the --monitor metric improving
    /// by more than --min-delta [default: train every epoch].
    #[arg(long, value_parser = parse_at_least_one)]
    pub(crate) early_stopping: Option<usize>,

    /// The metric that picks the best epoch, checked at every read-back
    /// [default: val-loss with a validation set, else train-loss].
    #[arg(long, value_enum)]
    pub(crate) monitor: Option<Monitor>,

    /// The least change of the --monitor metric that counts as an improvement.
    #[arg(long, default_value_t = 0.0, value_parser = parse_non_negative)]
    pub(crate) min_delta: f32,

    /// The model the run ends with (the summary and the test metrics):
    /// best (the --monitor metric's best epoch, whatever ends the run, saved
    /// as checkpoint-best.safetensors) or last (the last epoch trained)
    /// [default: best with a validation set or --monitor, else last].
    #[arg(long, value_enum)]
    pub(crate) keep: Option<KeepArg>,

    /// Where to train: auto takes a hardware GPU when there is one, else the
    /// CPU (a software adapter such as lavapipe is slower than the CPU path);
    /// gpu takes any adapter. WGPU_BACKEND and WGPU_ADAPTER_NAME choose among
    /// adapters (a name given makes auto take that adapter).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub(crate) device: DeviceChoice,

    #[command(flatten)]
    pub(crate) gpu: GpuPathArgs,

    /// Train the CPU reference beside the chosen device, from the same start,
    /// and compare every parameter at every read-back: the largest difference
    /// is shown per read-back, and the first one beyond --verify-tolerance
    /// stops the run naming the epoch, tensor, index and both values.
    #[arg(long)]
    pub(crate) verify: bool,

    /// --verify: how far a parameter may be from the CPU reference's, as
    /// |device - cpu| <= T + T * |cpu|.
    #[arg(long, default_value_t = 1e-3, value_parser = parse_positive)]
    pub(crate) verify_tolerance: f32,

    /// Print one JSON object on stdout; progress goes to stderr.
    #[arg(long)]
    pub(crate) json: bool,

    /// No progress bar and no per-epoch lines.
    #[arg(long)]
    pub(crate) quiet: bool,

    /// Train one model on the ranks of `mpirun -np K wgpu-mlp --data-parallel
    /// ...` (a build with `--features mpi`; the CPU device): each rank takes its
    /// share of every batch and the gradients are summed in rank order; rank 0
    /// prints and writes the run folder, the others train silently.
    #[arg(long)]
    pub(crate) data_parallel: bool,

    /// The run folder: config.json, metrics.csv, checkpoints, loss.svg
    /// [default: runs/<UTC time>].
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,

    /// Save a checkpoint every this many epochs; the last epoch is always saved.
    #[arg(long, value_parser = parse_at_least_one)]
    pub(crate) save_every: Option<usize>,

    /// Continue from a checkpoint of the same model, optimizer and data, up to
    /// --epochs in all (the checkpoint's epochs count).
    #[arg(long)]
    pub(crate) resume: Option<PathBuf>,

    /// Clear --out first when it holds an earlier run (only the files a run
    /// writes; a folder holding anything else is refused).
    #[arg(long, conflicts_with = "resume")]
    pub(crate) overwrite: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum DeviceChoice {
    Auto,
    Gpu,
    Cpu,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum MatmulArg {
    #[default]
    Auto,
    Registers,
    Workgroup,
}

impl MatmulArg {
    /// The kernel asked for; None for auto.
    pub(crate) fn kernel(self) -> Option<MatmulKernel> {
        match self {
            MatmulArg::Auto => None,
            MatmulArg::Registers => Some(MatmulKernel::Registers),
            MatmulArg::Workgroup => Some(MatmulKernel::Workgroup),
        }
    }
}

/// `--lr-schedule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LrScheduleArg {
    Constant,
    Step,
    Exponential,
    Cosine,
    Plateau,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OptimizerArg {
    Sgd,
    Momentum,
    Adam,
}

/// How a regression's targets are scaled for training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TargetScaleArg {
    None,
    Standard,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum TaskArg {
    Regress,
    Classify,
}

/// Comma-separated layer sizes, each at least 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sizes(pub(crate) Vec<usize>);

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

fn parse_class_weight(text: &str) -> Result<ClassWeightArg, String> {
    if text == "balanced" {
        return Ok(ClassWeightArg::Balanced);
    }
    text.split(',')
        .map(|w| match w.trim().parse::<f32>() {
            Ok(w) if w.is_finite() && w > 0.0 => Ok(w),
            _ => Err(format!("'{w}' is not a positive finite weight; give balanced or w0,w1,...")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(ClassWeightArg::Weights)
}

fn parse_probability(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() && (0.0..1.0).contains(&value) => Ok(value),
        _ => Err(format!("'{text}' must be a probability in [0, 1)")),
    }
}

/// One probability for every hidden layer, or a comma-separated list of one per hidden layer.
fn parse_dropout(text: &str) -> Result<Dropout, String> {
    let rates = text.split(',').map(|p| parse_probability(p.trim())).collect::<Result<Vec<_>, _>>()?;
    Ok(match rates[..] {
        [p] => Dropout::Every(p),
        _ => Dropout::Layers(rates),
    })
}

fn parse_non_negative(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!("'{text}' must be a finite number >= 0")),
    }
}

pub(crate) fn parse_positive(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("'{text}' must be a positive finite number")),
    }
}

fn parse_negative_slope(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(value) if value.is_finite() && (0.0..1.0).contains(&value) => Ok(value),
        _ => Err(format!("'{text}' must be a finite number in [0, 1)")),
    }
}

fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if text.len() == 1 && text.is_ascii() && !matches!(text, "\"" | "\n" | "\r") => Ok(text.as_bytes()[0]),
        _ => {
            Err(format!("'{text}' is not one ASCII character (`tab` names a tab); a quote or line break cannot be one"))
        }
    }
}
