//! The models of a sweep, from its flags: the swept flags' alternatives
//! (a scalar flag's comma list, a layer-list flag repeated), the lines of
//! --sweep-file, and --folds, multiplied out into one flag list per model.

use std::path::Path;

use wgpu_mlp::data::Fold;

use crate::bad_input;

/// How a swept flag lists its alternatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One number or name per model: `--lr 0.1,0.01` is two models (and so
    /// is `--lr 0.1 --lr 0.01`).
    Scalar,
    /// A list per model (one value per hidden layer), so a comma belongs to
    /// the list: `--hidden 64 --hidden 128,128` is two models.
    Layers,
}

/// The flags a sweep may vary, in the order of sweep.csv's columns.
pub(crate) const SWEPT: [(&str, Kind); 7] = [
    ("lr", Kind::Scalar),
    ("weight-decay", Kind::Scalar),
    ("hidden", Kind::Layers),
    ("seed", Kind::Scalar),
    ("batch-size", Kind::Scalar),
    ("activation", Kind::Scalar),
    ("dropout", Kind::Layers),
];

/// Training flags a sweep does not take, and why.
const REFUSED: [(&str, &str); 5] = [
    ("resume", "a sweep trains every model from the start"),
    ("verify", "run --verify on a single run of the model"),
    ("save-every", "a sweep keeps each model's kept checkpoint only (see --checkpoints)"),
    ("overwrite", "give --out a new or empty folder"),
    ("fold", "give --folds K to train every fold"),
];

/// At most this many models in one sweep.
pub(crate) const MAX_MODELS: u128 = 100_000;

/// One model: its swept settings and fold, on top of the flags every model shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ModelFlags {
    /// (flag, value) for each swept flag or --sweep-file key it sets.
    pub(crate) settings: Vec<(&'static str, String)>,
    pub(crate) fold: Option<Fold>,
}

impl ModelFlags {
    /// The training command's flags of this model: `shared`, then its own
    /// as `--flag=value` (so a value may start with a dash).
    pub(crate) fn args(&self, shared: &[String]) -> Vec<String> {
        let own = self.settings.iter().map(|(flag, value)| format!("--{flag}={value}"));
        shared.iter().cloned().chain(own).chain(self.fold.map(|f| format!("--fold={f}"))).collect()
    }
}

/// The sweep's models and the flags they share.
#[derive(Debug)]
pub(crate) struct Grid {
    /// The training flags every model takes, as given.
    pub(crate) shared: Vec<String>,
    pub(crate) models: Vec<ModelFlags>,
}

/// The flags each swept setting listed, in the order given.
struct Axis {
    flag: &'static str,
    values: Vec<String>,
}

/// The models of `training` (the training flags, swept ones with their
/// alternatives), each line of `sweep_file` and each of `folds` folds.
pub(crate) fn models(training: &[String], sweep_file: Option<&Path>, folds: Option<usize>) -> anyhow::Result<Grid> {
    let (shared, axes) = split_flags(training)?;
    let lines = match sweep_file {
        Some(path) => read_sweep_file(path, &axes)?,
        None => vec![Vec::new()],
    };
    let folds = match folds {
        Some(k) if k < 2 => {
            return Err(bad_input(format!("--folds {k}: cross-validation needs at least 2 folds")));
        }
        Some(k) => k,
        None => 1,
    };
    let named = |flag: &str| shared.iter().any(|t| t == flag || t.starts_with(&format!("{flag}=")));
    if let Some(flag) = ["--val-fraction", "--val-data"].into_iter().find(|flag| folds > 1 && named(flag)) {
        return Err(bad_input(format!("--folds takes each model's validation set from the folds; leave out {flag}")));
    }
    let count = axes.iter().fold(lines.len() as u128 * folds as u128, |n, axis| n * axis.values.len() as u128);
    if count > MAX_MODELS {
        let mut factors: Vec<String> = axes.iter().map(|a| format!("{} --{}", a.values.len(), a.flag)).collect();
        if sweep_file.is_some() {
            factors.push(format!("{} --sweep-file lines", lines.len()));
        }
        if folds > 1 {
            factors.push(format!("{folds} --folds"));
        }
        return Err(bad_input(format!(
            "the sweep is {count} models ({}), more than the {MAX_MODELS} one sweep runs: narrow the lists, or give \
             only the settings wanted, one per line, with --sweep-file",
            factors.join(" x ")
        )));
    }
    let mut models = Vec::with_capacity(count as usize);
    for line in &lines {
        let mut combos: Vec<Vec<(&'static str, String)>> = vec![line.clone()];
        for axis in &axes {
            combos = combos
                .into_iter()
                .flat_map(|combo| {
                    axis.values.iter().map(move |value| {
                        let mut combo = combo.clone();
                        combo.push((axis.flag, value.clone()));
                        combo
                    })
                })
                .collect();
        }
        for settings in combos {
            let folds = (folds > 1).then_some(folds);
            let each_fold: Vec<Option<Fold>> = match folds {
                Some(of) => (0..of).map(|index| Some(Fold { index, of })).collect(),
                None => vec![None],
            };
            models.extend(each_fold.into_iter().map(|fold| ModelFlags { settings: settings.clone(), fold }));
        }
    }
    Ok(Grid { shared, models })
}

/// The training flags that every model shares, and the alternatives of each
/// swept flag (in the order their flags first appear).
fn split_flags(training: &[String]) -> anyhow::Result<(Vec<String>, Vec<Axis>)> {
    let mut shared = Vec::new();
    let mut axes: Vec<Axis> = Vec::new();
    let mut tokens = training.iter();
    while let Some(token) = tokens.next() {
        let Some(name) = token.strip_prefix("--") else {
            shared.push(token.clone());
            continue;
        };
        let (name, inline) = match name.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (name, None),
        };
        if let Some((flag, why)) = REFUSED.iter().find(|(flag, _)| *flag == name) {
            return Err(bad_input(format!("--{flag} does not apply to a sweep: {why}")));
        }
        let Some(&(flag, kind)) = SWEPT.iter().find(|(flag, _)| *flag == name) else {
            shared.push(token.clone());
            continue;
        };
        let value = match inline {
            Some(value) => value,
            None => tokens.next().cloned().ok_or_else(|| bad_input(format!("--{flag} needs a value")))?,
        };
        let values: Vec<String> = match kind {
            Kind::Scalar => value.split(',').map(|v| v.trim().to_string()).collect(),
            Kind::Layers => vec![value.trim().to_string()],
        };
        if values.iter().any(String::is_empty) {
            let how = match kind {
                Kind::Scalar => "values separated by single commas".to_string(),
                Kind::Layers => format!("one list per --{flag}"),
            };
            return Err(bad_input(format!("--{flag} '{value}': an empty value in the list; give {how}")));
        }
        let axis = match axes.iter_mut().position(|a| a.flag == flag) {
            Some(at) => &mut axes[at],
            None => {
                axes.push(Axis { flag, values: Vec::new() });
                axes.last_mut().expect("just pushed")
            }
        };
        for value in values {
            if axis.values.contains(&value) {
                return Err(bad_input(format!("--{flag} lists {value} twice")));
            }
            axis.values.push(value);
        }
    }
    Ok((shared, axes))
}

/// The settings of each line of the --sweep-file at `path`: `flag=value`
/// pairs separated by spaces (`lr=0.01 hidden=64,64`), a value whole (a
/// layer list's commas included); blank lines and `#` comments are skipped.
/// A flag may not also be swept on the command line (`axes`).
fn read_sweep_file(path: &Path, axes: &[Axis]) -> anyhow::Result<Vec<Vec<(&'static str, String)>>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad_input(format!("--sweep-file {}: cannot read it ({e})", path.display())))?;
    let names: Vec<&str> = SWEPT.iter().map(|(flag, _)| *flag).collect();
    let mut lines = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let at = || format!("--sweep-file {} line {}", path.display(), number + 1);
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut settings: Vec<(&'static str, String)> = Vec::new();
        for pair in line.split_whitespace() {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(bad_input(format!("{}: '{pair}' is not flag=value", at())));
            };
            let key = key.trim_start_matches("--");
            let Some(&flag) = names.iter().find(|name| **name == key) else {
                return Err(bad_input(format!(
                    "{}: '{key}' is not a flag a sweep varies ({})",
                    at(),
                    names.join(", ")
                )));
            };
            if value.is_empty() {
                return Err(bad_input(format!("{}: {flag} has no value", at())));
            }
            if settings.iter().any(|(f, _)| *f == flag) {
                return Err(bad_input(format!("{}: {flag} is set twice", at())));
            }
            if axes.iter().any(|a| a.flag == flag) {
                return Err(bad_input(format!(
                    "{}: --{flag} is also listed on the command line; give it in one place",
                    at()
                )));
            }
            settings.push((flag, value.to_string()));
        }
        lines.push(settings);
    }
    if lines.is_empty() {
        return Err(bad_input(format!(
            "--sweep-file {} holds no settings (one flag=value line per model)",
            path.display()
        )));
    }
    Ok(lines)
}
