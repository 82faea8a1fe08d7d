//! Checkpoints in safetensors: every parameter under a readable name
//! (`layers.0.weight` is W_0 (IN, OUT), `layers.0.bias` is b_0 (OUT)), the
//! optimizer state under `optimizer.velocity.`, `optimizer.m.` and
//! `optimizer.v.` with the same names, and in the metadata what a resume must
//! match (format version, layer spec, activations, loss, optimizer, data
//! fingerprint) and where it resumes (epoch, Adam step, shuffle position).
//! The input scaling fitted on the training data rides along as
//! `scaler.shift` and `scaler.divisor` (IN), so predictions scale new rows the
//! same way. A regression trained on standardized targets (`scale_target`)
//! keeps that scaling as `target_scaler.shift` and `target_scaler.divisor`
//! (OUT), so predictions are turned back into the target's own units.
//! Written atomically, so a crash leaves the previous file whole.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors, View};

use crate::data::{Encoder, Missing, Scale, Scaler, Source, TargetColumn};
use crate::error::{Error, Result};
use crate::model::{Activation, Layer, Loss, MlpSpec, Output, Params};
use crate::train::{Optimizer, OptimizerState, TrainState};

/// The layout this build writes and reads.
pub const FORMAT_VERSION: &str = "2";
/// Format 1 wrote the model's enums by Rust's debug names ("Relu",
/// "CrossEntropy"), format 2 by the kebab-case names the CLI takes ("relu",
/// "cross-entropy"); both are read, format 1 translated on the way in.
const OLD_FORMAT_VERSION: &str = "1";

/// What a checkpoint holds besides the tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// What a trainer resumes from: parameters, optimizer state and the
    /// shuffle RNG's position, so a resumed run matches an unbroken one.
    pub state: TrainState,
    /// The update rule and its settings the run trained with.
    pub optimizer: Optimizer,
    /// Epochs trained when it was written.
    pub epoch: usize,
    /// The settings a resume must match, as written (see [`describe`]).
    pub metadata: HashMap<String, String>,
    /// The input scaling of the training data.
    pub scaler: Option<Scaler>,
    /// The target scaling the model was trained on, if any: its outputs are
    /// `(y - shift) / divisor`.
    pub target_scaler: Option<Scaler>,
}

/// The metadata a model and run are described by; a resume compares these.
/// `negative_slope` is written only for a leaky-relu hidden activation, so a
/// checkpoint of any other (or one written before leaky relu was) has none,
/// and reads as [`DEFAULT_NEGATIVE_SLOPE`](crate::model::DEFAULT_NEGATIVE_SLOPE).
pub fn describe(spec: &MlpSpec, optimizer: Optimizer, seed: u64, data_fingerprint: u64) -> HashMap<String, String> {
    let negative_slope =
        (spec.hidden() == Activation::LeakyRelu).then(|| ("negative_slope", spec.negative_slope().to_string()));
    [
        ("format_version", FORMAT_VERSION.to_string()),
        ("layers", spec.to_string()),
        ("hidden", spec.hidden().to_string()),
        ("output", spec.output().to_string()),
        ("loss", spec.loss().to_string()),
        ("optimizer", optimizer.to_string()),
        ("seed", seed.to_string()),
        ("data_fingerprint", format!("{data_fingerprint:016x}")),
    ]
    .into_iter()
    .chain(negative_slope)
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// How a run read its data, so predict and eval can read the same rows
/// again: [`DataSettings::describe`] gives `data.*` metadata keys to add to
/// [`describe`]'s. A resume does not compare them (the data fingerprint
/// covers the data), and a checkpoint without them (older, or from
/// [`Mlp::save`](crate::Mlp::save)) simply has none.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSettings {
    /// `data.source`: the source as `--data` takes it (`csv:PATH`, `idx:DIR`, `seed`).
    pub source: Source,
    /// `data.samples`: the rows of the seed problem (seed data only).
    pub samples: Option<usize>,
    /// `data.columns`: a CSV's input columns in the model's order, as a JSON
    /// array of header names (`["a","b"]`) or, without a header, of 0-based
    /// indices (`[0,1]`). Empty for other sources.
    pub columns: Vec<TargetColumn>,
    /// `data.target`: a CSV's target columns, written as `data.columns` is.
    pub target: Vec<TargetColumn>,
    /// `data.task`: `classify` or `regress`.
    pub classify: bool,
    /// `data.classes`: the number of classes when classifying.
    pub classes: Option<usize>,
    /// `data.skip_rows`: lines skipped before a CSV's header or data.
    pub skip_rows: usize,
    /// `data.header`: `true` when the CSV had a header row (declared or found).
    pub header: bool,
    /// `data.scale`: the scaling fitted (`none`, `minmax`, `standard`, `pixels`).
    pub scale: Scale,
    /// `data.test_fraction`: the share of rows held out (0 for a source with
    /// its own test set, or none).
    pub test_fraction: f64,
    /// `data.seed`: the seed of the split.
    pub seed: u64,
    /// `data.scale_target`: whether a regression's targets were standardized
    /// (`standard`, else `none`); the scaling itself is in the tensors
    /// `target_scaler.*`. Read as false from a checkpoint without the key.
    pub scale_target: bool,
    /// `data.width`: the fields of a CSV's rows (with ignored columns, more
    /// than its inputs and targets); None for other sources, or a checkpoint
    /// written before the key.
    pub width: Option<usize>,
    /// `data.missing`: what a missing value in a CSV did (`error`, `mean`,
    /// `median`, `drop`). Read as error from a checkpoint without the key.
    pub missing: Missing,
    /// `data.encoder`: how a CSV's input columns became the model's inputs
    /// (one-hot categories, missing values filled), as JSON (see
    /// [`Encoder::to_json`]); None when the columns went in as they were.
    pub encoder: Option<Encoder>,
    /// `data.groups`: a CSV's group columns (`group`), written as
    /// `data.columns` is; empty (and no key) when training had none.
    pub groups: Vec<TargetColumn>,
    /// `data.group_values`: the groups of the training rows, sorted, as a
    /// JSON array of names, so a report lists a group even where no row
    /// scored has it; written with `data.groups`.
    pub group_values: Vec<String>,
}

impl DataSettings {
    /// The `data.*` metadata keys.
    pub fn describe(&self) -> HashMap<String, String> {
        let json = |columns: &[TargetColumn]| {
            let values: Vec<serde_json::Value> = columns
                .iter()
                .map(|c| match c {
                    TargetColumn::Index(i) => (*i).into(),
                    TargetColumn::Name(name) => name.as_str().into(),
                })
                .collect();
            serde_json::Value::Array(values).to_string()
        };
        let mut keys = vec![
            ("data.source", self.source.to_string()),
            ("data.columns", json(&self.columns)),
            ("data.target", json(&self.target)),
            ("data.task", if self.classify { "classify" } else { "regress" }.to_string()),
            ("data.skip_rows", self.skip_rows.to_string()),
            ("data.header", self.header.to_string()),
            ("data.scale", self.scale.to_string()),
            ("data.scale_target", if self.scale_target { "standard" } else { "none" }.to_string()),
            ("data.test_fraction", self.test_fraction.to_string()),
            ("data.seed", self.seed.to_string()),
        ];
        keys.extend(self.samples.map(|n| ("data.samples", n.to_string())));
        keys.extend(self.classes.map(|n| ("data.classes", n.to_string())));
        keys.extend(self.width.map(|n| ("data.width", n.to_string())));
        keys.push(("data.missing", self.missing.to_string()));
        keys.extend(self.encoder.as_ref().map(|e| ("data.encoder", e.to_json().to_string())));
        if !self.groups.is_empty() {
            keys.push(("data.groups", json(&self.groups)));
            keys.push(("data.group_values", serde_json::Value::from(self.group_values.clone()).to_string()));
        }
        keys.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The settings `metadata` holds; None when it has no `data.source` (a
    /// checkpoint written without them). A key that is missing or does not
    /// parse is an error naming it.
    pub fn from_metadata(metadata: &HashMap<String, String>) -> Result<Option<Self>> {
        let Some(source) = metadata.get("data.source") else {
            return Ok(None);
        };
        let bad = |key: &str, what: &str| {
            let value = metadata.get(key).map_or("missing".to_string(), |v| format!("'{v}'"));
            Error::InvalidInput(format!("the metadata's '{key}' is {value}, not {what}"))
        };
        let field = |key: &str, what: &str| metadata.get(key).ok_or_else(|| bad(key, what));
        let parse = |key: &str, what: &str| -> Result<u64> { field(key, what)?.parse().map_err(|_| bad(key, what)) };
        let optional = |key: &str| -> Result<Option<usize>> {
            metadata.get(key).map(|v| v.parse().map_err(|_| bad(key, "a whole number"))).transpose()
        };
        let columns = |key: &str| -> Result<Vec<TargetColumn>> {
            let what = "a JSON array of column names or indices";
            let values: Vec<serde_json::Value> = serde_json::from_str(field(key, what)?).map_err(|_| bad(key, what))?;
            values
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::String(name) => Ok(TargetColumn::Name(name)),
                    v => v.as_u64().map(|i| TargetColumn::Index(i as usize)).ok_or_else(|| bad(key, what)),
                })
                .collect()
        };
        let test_fraction: f64 =
            field("data.test_fraction", "a number")?.parse().map_err(|_| bad("data.test_fraction", "a number"))?;
        Ok(Some(Self {
            source: source.parse().map_err(|_| bad("data.source", "a data source"))?,
            samples: optional("data.samples")?,
            columns: columns("data.columns")?,
            target: columns("data.target")?,
            classify: match field("data.task", "classify or regress")?.as_str() {
                "classify" => true,
                "regress" => false,
                _ => return Err(bad("data.task", "classify or regress")),
            },
            classes: optional("data.classes")?,
            skip_rows: usize::try_from(parse("data.skip_rows", "a whole number")?)
                .map_err(|_| bad("data.skip_rows", "a whole number"))?,
            header: field("data.header", "true or false")?.parse().map_err(|_| bad("data.header", "true or false"))?,
            scale: field("data.scale", "a scaling")?.parse().map_err(|_| bad("data.scale", "a scaling"))?,
            test_fraction,
            seed: parse("data.seed", "a whole number")?,
            scale_target: match metadata.get("data.scale_target").map(String::as_str) {
                None | Some("none") => false,
                Some("standard") => true,
                Some(_) => return Err(bad("data.scale_target", "none or standard")),
            },
            width: optional("data.width")?,
            missing: match metadata.get("data.missing") {
                None => Missing::Error,
                Some(missing) => missing.parse().map_err(|_| bad("data.missing", "error, mean, median or drop"))?,
            },
            groups: match metadata.get("data.groups") {
                None => Vec::new(),
                Some(_) => columns("data.groups")?,
            },
            group_values: match metadata.get("data.group_values") {
                None => Vec::new(),
                Some(json) => {
                    serde_json::from_str(json).map_err(|_| bad("data.group_values", "a JSON array of names"))?
                }
            },
            encoder: match metadata.get("data.encoder") {
                None => None,
                Some(json) => {
                    let json: serde_json::Value =
                        serde_json::from_str(json).map_err(|_| bad("data.encoder", "JSON"))?;
                    let encoder = Encoder::from_json(&json).map_err(|e| {
                        Error::InvalidInput(format!("the metadata's 'data.encoder' is not an encoding: {e}"))
                    })?;
                    Some(encoder)
                }
            },
        }))
    }
}

/// The metadata key of a DP-SGD run's accountant ([`crate::accountant::RdpAccountant`]'s text).
pub const DP_ACCOUNTANT: &str = "dp.accountant";

impl Checkpoint {
    /// The privacy a DP-SGD run had spent by this checkpoint (`dp.accountant`),
    /// when the run that wrote it was one.
    pub fn privacy(&self) -> Result<Option<crate::accountant::RdpAccountant>> {
        let Some(text) = self.metadata.get(DP_ACCOUNTANT) else { return Ok(None) };
        text.parse().map(Some).map_err(|why: String| {
            Error::InvalidInput(format!("the metadata's {DP_ACCOUNTANT} '{text}' does not parse: {why}"))
        })
    }

    /// Where a plateau schedule stood (`lr_scale`, `lr_plateau_best`,
    /// `lr_plateau_wait`), when the run that wrote it had one.
    pub fn plateau(&self) -> Result<Option<crate::schedule::Plateau>> {
        let get = |key: &str| self.metadata.get(key);
        let (Some(scale), Some(best), Some(wait)) = (get("lr_scale"), get("lr_plateau_best"), get("lr_plateau_wait"))
        else {
            return Ok(None);
        };
        let bad = || {
            Error::InvalidInput(format!(
                "the metadata's lr_scale '{scale}', lr_plateau_best '{best}' and lr_plateau_wait '{wait}' do not parse"
            ))
        };
        Ok(Some(crate::schedule::Plateau {
            scale: scale.parse().map_err(|_| bad())?,
            best: best.parse().map_err(|_| bad())?,
            wait: wait.parse().map_err(|_| bad())?,
        }))
    }

    /// The best epoch of the run that wrote it (`best_epoch`, `best_value`),
    /// when that run monitored one; a value that does not parse is an error.
    pub fn best(&self) -> Result<Option<crate::train::BestEpoch>> {
        let (Some(epoch), Some(value)) = (self.metadata.get("best_epoch"), self.metadata.get("best_value")) else {
            return Ok(None);
        };
        let bad = || {
            Error::InvalidInput(format!("the metadata's best_epoch '{epoch}' and best_value '{value}' do not parse"))
        };
        Ok(Some(crate::train::BestEpoch {
            epoch: epoch.parse().map_err(|_| bad())?,
            value: value.parse().map_err(|_| bad())?,
        }))
    }
}

/// The keys of [`describe`] a resume must match, in the order they are checked.
const MUST_MATCH: [&str; 9] =
    ["format_version", "layers", "hidden", "negative_slope", "output", "loss", "optimizer", "dp", "data_fingerprint"];

/// One f32 tensor, little-endian, for safetensors.
struct Tensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl Tensor {
    fn new<'a>(shape: Vec<usize>, values: impl Iterator<Item = &'a f32>) -> Self {
        Self { shape, bytes: values.flat_map(|v| v.to_le_bytes()).collect() }
    }
}

impl View for &Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        (&self.bytes[..]).into()
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn params_tensors(prefix: &str, params: &Params) -> Vec<(String, Tensor)> {
    params
        .layers
        .iter()
        .enumerate()
        .flat_map(|(l, layer)| {
            [
                (format!("{prefix}layers.{l}.weight"), Tensor::new(layer.w.shape().to_vec(), layer.w.iter())),
                (format!("{prefix}layers.{l}.bias"), Tensor::new(vec![layer.b.len()], layer.b.iter())),
            ]
        })
        .collect()
}

/// Writes `state` after `epoch` epochs to `path`, atomically, with `metadata`
/// from [`describe`] and the training data's input scaling.
pub fn save(
    path: &Path,
    state: &TrainState,
    epoch: usize,
    metadata: HashMap<String, String>,
    scaler: Option<&Scaler>,
) -> Result<()> {
    save_scaled(path, state, epoch, metadata, scaler, None)
}

/// [`save`], with the target scaling of a model trained on scaled targets.
pub fn save_scaled(
    path: &Path,
    state: &TrainState,
    epoch: usize,
    metadata: HashMap<String, String>,
    scaler: Option<&Scaler>,
    target_scaler: Option<&Scaler>,
) -> Result<()> {
    let mut tensors = params_tensors("", &state.params);
    for (prefix, scaler) in [("scaler", scaler), ("target_scaler", target_scaler)] {
        if let Some(scaler) = scaler {
            let (shift, divisor) = (&scaler.shift, &scaler.divisor);
            tensors.push((format!("{prefix}.shift"), Tensor::new(vec![shift.len()], shift.iter())));
            tensors.push((format!("{prefix}.divisor"), Tensor::new(vec![divisor.len()], divisor.iter())));
        }
    }
    let mut metadata = metadata;
    metadata.insert("epoch".into(), epoch.to_string());
    metadata.insert("shuffle_position".into(), state.shuffle_position.to_string());
    metadata.insert("crate_version".into(), env!("CARGO_PKG_VERSION").into());
    match &state.optimizer {
        OptimizerState::Sgd => {}
        OptimizerState::Momentum { velocity } => tensors.extend(params_tensors("optimizer.velocity.", velocity)),
        OptimizerState::Adam { m, v, step } => {
            tensors.extend(params_tensors("optimizer.m.", m));
            tensors.extend(params_tensors("optimizer.v.", v));
            metadata.insert("adam_step".into(), step.to_string());
        }
    }
    let bytes = safetensors::serialize(tensors.iter().map(|(name, t)| (name.as_str(), t)), Some(metadata))
        .map_err(|e| Error::InvalidInput(format!("cannot encode the checkpoint {}: {e}", path.display())))?;
    crate::report::write_atomically(path, |file| std::io::Write::write_all(file, &bytes))
}

/// Reads a checkpoint to resume from: `spec` gives the shapes its tensors
/// must have, and the optimizer state the metadata names must be there.
/// Every tensor and field is checked (see [`load_model`]).
pub fn load(path: &Path, spec: &MlpSpec) -> Result<Checkpoint> {
    let (bytes, metadata) = read_with_metadata(path)?;
    let file = CheckpointFile::parse(path, &bytes, metadata)?;
    let saved_layers = file.field("layers")?;
    if *saved_layers != spec.to_string() {
        return Err(file.bad(format!("it holds layers {saved_layers}, but the model has layers {spec}")));
    }
    let optimizer: Optimizer = file.field("optimizer")?.parse().map_err(|e: String| file.bad(e))?;
    let optimizer_state = match optimizer {
        Optimizer::Sgd => OptimizerState::Sgd,
        Optimizer::Momentum { .. } => OptimizerState::Momentum { velocity: file.params(spec, "optimizer.velocity.")? },
        Optimizer::Adam { .. } => OptimizerState::Adam {
            m: file.params(spec, "optimizer.m.")?,
            v: file.params(spec, "optimizer.v.")?,
            step: u32::try_from(file.number("adam_step")?).map_err(|_| file.bad("'adam_step' is too large".into()))?,
        },
    };
    file.check_names(spec, Some(optimizer))?;
    let shuffle_position = file.number("shuffle_position")?;
    let state = TrainState { params: file.params(spec, "")?, optimizer: optimizer_state, shuffle_position };
    Ok(Checkpoint {
        state,
        optimizer,
        epoch: file.epoch()?,
        scaler: file.scaler("scaler", spec.inputs())?,
        target_scaler: file.scaler("target_scaler", spec.outputs())?,
        metadata: file.metadata,
    })
}

/// A trained network as inference needs it: what [`load_model`] reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// The network, from the metadata.
    pub spec: MlpSpec,
    /// Its parameters.
    pub params: Params,
    /// The input scaling of the training data, if the run had one.
    pub scaler: Option<Scaler>,
    /// The target scaling, if the model was trained on scaled targets: an
    /// output o is `o * divisor + shift` in the target's units.
    pub target_scaler: Option<Scaler>,
    /// Epochs trained when it was written.
    pub epoch: usize,
    /// Everything the metadata holds.
    pub metadata: HashMap<String, String>,
}

/// Reads the network of a checkpoint for inference (predict, eval, export):
/// the optimizer's tensors may be there or not. Refuses, naming what is
/// wrong, a file whose tensors are not the ones its metadata implies (an
/// extra, a missing one, another shape or dtype), a weight or scaling value
/// that is NaN or infinite, a scaling divisor of 0 or less, and metadata that
/// does not parse.
pub fn load_model(path: &Path) -> Result<Model> {
    let spec = read_spec(path)?;
    let (bytes, metadata) = read_with_metadata(path)?;
    let file = CheckpointFile::parse(path, &bytes, metadata)?;
    let optimizer = file.field("optimizer")?.parse::<Optimizer>().map_err(|e| file.bad(e))?;
    let has_state = file.tensors.names().iter().any(|name| name.starts_with("optimizer."));
    file.check_names(&spec, has_state.then_some(optimizer))?;
    Ok(Model {
        params: file.params(&spec, "")?,
        scaler: file.scaler("scaler", spec.inputs())?,
        target_scaler: file.scaler("target_scaler", spec.outputs())?,
        epoch: file.epoch()?,
        spec,
        metadata: file.metadata,
    })
}

/// A checkpoint file read and parsed, with its path for messages.
struct CheckpointFile<'a> {
    path: &'a Path,
    tensors: SafeTensors<'a>,
    metadata: HashMap<String, String>,
}

impl<'a> CheckpointFile<'a> {
    /// Parses the bytes [`read_with_metadata`] read and checks the metadata
    /// fields every checkpoint has.
    fn parse(path: &'a Path, bytes: &'a [u8], metadata: HashMap<String, String>) -> Result<Self> {
        let bad = |message: String| Error::InvalidInput(format!("{}: {message}", path.display()));
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a valid checkpoint ({e})")))?;
        let file = Self { path, tensors, metadata };
        file.field("seed")?
            .parse::<u64>()
            .map_err(|_| file.bad(format!("'seed' is '{}', not a whole number", file.metadata["seed"])))?;
        let fingerprint = file.field("data_fingerprint")?;
        if fingerprint.len() != 16 || u64::from_str_radix(fingerprint, 16).is_err() {
            return Err(file.bad(format!("'data_fingerprint' is '{fingerprint}', not 16 hexadecimal digits")));
        }
        file.number("shuffle_position")?;
        file.epoch()?;
        Ok(file)
    }

    fn bad(&self, message: String) -> Error {
        Error::InvalidInput(format!("{}: {message}", self.path.display()))
    }

    fn field(&self, key: &str) -> Result<&String> {
        self.metadata.get(key).ok_or_else(|| self.bad(format!("the metadata has no '{key}'")))
    }

    fn number(&self, key: &str) -> Result<u128> {
        let text = self.field(key)?;
        text.parse().map_err(|_| self.bad(format!("'{key}' is '{text}', not a whole number")))
    }

    fn epoch(&self) -> Result<usize> {
        usize::try_from(self.number("epoch")?).map_err(|_| self.bad("'epoch' is too large".into()))
    }

    /// The f32 values of a tensor of `shape`, every one finite.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let view = self.tensors.tensor(name).map_err(|_| self.bad(format!("the tensor {name} is missing")))?;
        if view.dtype() != Dtype::F32 || view.shape() != shape {
            return Err(self.bad(format!(
                "{name} is {:?} {:?}, the model needs F32 {shape:?}",
                view.dtype(),
                view.shape()
            )));
        }
        let values: Vec<f32> =
            view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        if let Some((i, value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(self.bad(format!("{name}[{i}] is {value}; a checkpoint holds finite values only")));
        }
        Ok(values)
    }

    /// Every layer's weights and biases under `prefix`.
    fn params(&self, spec: &MlpSpec, prefix: &str) -> Result<Params> {
        let layers = spec
            .layer_shapes()
            .enumerate()
            .map(|(l, (fan_in, fan_out))| {
                let w = self.tensor(&format!("{prefix}layers.{l}.weight"), &[fan_in, fan_out])?;
                let b = self.tensor(&format!("{prefix}layers.{l}.bias"), &[fan_out])?;
                let w = Array2::from_shape_vec((fan_in, fan_out), w).expect("the shape was checked");
                Ok(Layer { w, b: Array1::from(b) })
            })
            .collect::<Result<_>>()?;
        Ok(Params { layers })
    }

    /// The scaling under `prefix` (`scaler` of the inputs, `target_scaler` of
    /// the targets), `width` values each, when the file has one: both
    /// tensors, divisors above 0.
    fn scaler(&self, prefix: &str, width: usize) -> Result<Option<Scaler>> {
        let names = self.tensors.names();
        let (shift_name, divisor_name) = (format!("{prefix}.shift"), format!("{prefix}.divisor"));
        let (shift, divisor) = (names.contains(&shift_name.as_str()), names.contains(&divisor_name.as_str()));
        if !shift && !divisor {
            return Ok(None);
        }
        let shift = Array1::from(self.tensor(&shift_name, &[width])?);
        let divisor = Array1::from(self.tensor(&divisor_name, &[width])?);
        if let Some((i, value)) = divisor.iter().enumerate().find(|(_, &d)| d <= 0.0) {
            return Err(self.bad(format!("{divisor_name}[{i}] is {value}; a scaling divides by a positive number")));
        }
        Ok(Some(Scaler { shift, divisor }))
    }

    /// Refuses a tensor the model, the scaling and (when given) the
    /// optimizer's state do not account for.
    fn check_names(&self, spec: &MlpSpec, optimizer: Option<Optimizer>) -> Result<()> {
        let prefixes: &[&str] = match optimizer {
            None | Some(Optimizer::Sgd) => &[""],
            Some(Optimizer::Momentum { .. }) => &["", "optimizer.velocity."],
            Some(Optimizer::Adam { .. }) => &["", "optimizer.m.", "optimizer.v."],
        };
        let mut expected: Vec<String> = ["scaler", "target_scaler"]
            .iter()
            .flat_map(|prefix| [format!("{prefix}.shift"), format!("{prefix}.divisor")])
            .collect();
        for prefix in prefixes {
            for l in 0..spec.num_layers() {
                expected.push(format!("{prefix}layers.{l}.weight"));
                expected.push(format!("{prefix}layers.{l}.bias"));
            }
        }
        let mut names = self.tensors.names();
        names.sort();
        match names.into_iter().find(|name| !expected.iter().any(|e| e == name)) {
            Some(extra) => Err(self.bad(format!(
                "it holds a tensor '{extra}' that a checkpoint of layers {spec} and its {} state does not have",
                optimizer.map_or("optimizer's".to_string(), |o| o.to_string())
            ))),
            None => Ok(()),
        }
    }
}

/// The file's bytes and its metadata, in this build's format: a format 1
/// file's enum names are translated to format 2's.
fn read_with_metadata(path: &Path) -> Result<(Vec<u8>, HashMap<String, String>)> {
    let name = path.display();
    let bad = |message: String| Error::InvalidInput(format!("{name}: {message}"));
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("cannot read {name}"), e))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a valid checkpoint ({e})")))?;
    let mut metadata = header.metadata().clone().unwrap_or_default();
    match metadata.get("format_version").map(String::as_str) {
        Some(FORMAT_VERSION) => {}
        Some(OLD_FORMAT_VERSION) => {
            for key in ["hidden", "output", "loss"] {
                if let Some(value) = metadata.get_mut(key) {
                    *value = kebab_case(value);
                }
            }
            metadata.insert("format_version".into(), FORMAT_VERSION.into());
        }
        Some(version) => {
            return Err(bad(format!(
                "format version {version}, but this build reads versions {OLD_FORMAT_VERSION} and {FORMAT_VERSION}"
            )))
        }
        None => return Err(bad("the metadata has no 'format_version'".into())),
    }
    Ok((bytes, metadata))
}

/// "CrossEntropy" -> "cross-entropy": a debug name as format 1 wrote it, as
/// format 2 writes it.
fn kebab_case(debug_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in debug_name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The model a checkpoint holds, from its metadata, for predict and eval.
pub fn read_spec(path: &Path) -> Result<MlpSpec> {
    let name = path.display();
    let bad = |message: String| Error::InvalidInput(format!("{name}: {message}"));
    let (_, metadata) = read_with_metadata(path)?;
    let field = |key: &str| metadata.get(key).ok_or_else(|| bad(format!("the metadata has no '{key}'")));
    let layers = field("layers")?;
    let sizes = layers
        .split(',')
        .map(|size| size.parse().map_err(|_| bad(format!("the layers '{layers}' are not sizes"))))
        .collect::<Result<Vec<usize>>>()?;
    let hidden: Activation = field("hidden")?.parse().map_err(|e| bad(format!("hidden activation: {e}")))?;
    let output: Output = field("output")?.parse().map_err(|e| bad(format!("output: {e}")))?;
    let loss: Loss = field("loss")?.parse().map_err(|e| bad(format!("loss: {e}")))?;
    let spec = MlpSpec::new(sizes)?.with(hidden, output, loss).map_err(|e| bad(e.to_string()))?;
    match metadata.get("negative_slope") {
        // Only a leaky-relu model writes the key (see describe).
        None => Ok(spec),
        Some(text) => {
            let slope: f32 = text.parse().map_err(|_| bad(format!("the negative slope '{text}' is not a number")))?;
            spec.with_negative_slope(slope).map_err(|e| bad(e.to_string()))
        }
    }
}

impl Checkpoint {
    /// Refuses a checkpoint of another model, optimizer or data set, naming
    /// the first setting that differs; `expected` comes from [`describe`].
    pub fn check_matches(&self, expected: &HashMap<String, String>, path: &Path) -> Result<()> {
        for key in MUST_MATCH {
            let (saved, now) = (self.metadata.get(key), expected.get(key));
            if saved == now {
                continue;
            }
            if key == "data_fingerprint" {
                return Err(Error::InvalidInput(self.data_differs(expected, path)));
            }
            return Err(Error::InvalidInput(format!(
                "{} does not fit this run: its {key} is {}, this run's is {}",
                path.display(),
                saved.map_or("missing", String::as_str),
                now.map_or("missing", String::as_str)
            )));
        }
        Ok(())
    }

    /// Why the training rows differ, in words: the hashes alone say nothing.
    /// The seed (it draws the split) and, from checkpoints that record them,
    /// the `data_*` keys the CLI adds (source, rows, scaling, split, ...); the
    /// flags that decide the data close the message either way.
    fn data_differs(&self, expected: &HashMap<String, String>, path: &Path) -> String {
        // The data.* keys of DataSettings::describe, and the rows training had.
        let names = [
            ("data.source", "data"),
            ("data.train_rows", "training rows"),
            ("data.scale", "scale"),
            ("data.scale_target", "scale_target"),
            ("data.test_fraction", "test_fraction"),
            ("data.skip_rows", "skip_rows"),
            ("data.target", "target"),
            ("data.task", "task"),
            ("data.seed", "seed"),
        ];
        let differences: Vec<String> = names
            .iter()
            .filter_map(|&(key, name)| {
                let (saved, now) = (self.metadata.get(key)?, expected.get(key)?);
                // Flag names in backticks, which the CLI shows as --flags.
                let name = if name.contains(' ') { name.to_string() } else { format!("`{name}`") };
                (saved != now).then(|| match key {
                    "data.train_rows" => format!("it was trained on {saved} training rows, this run has {now}"),
                    _ => format!("its {name} is {saved}, this run's is {now}"),
                })
            })
            .collect();
        let what = if differences.is_empty() {
            "the training rows hold other values (same shape, other data or other scaling)".to_string()
        } else {
            differences.join("; ")
        };
        format!(
            "{} was trained on other data: {what}. To resume, pass the `data`, `target`, `task`, `scale`, \
             `scale_target`, `test_fraction`, `val_fraction`, `class_weight`, `seed` and `skip_rows` of the run that wrote it",
            path.display()
        )
    }
}
