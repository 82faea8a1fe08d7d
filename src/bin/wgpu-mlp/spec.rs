//! The network's layer sizes, activations and loss, from the flags and the data.

use wgpu_mlp::model::{Activation, Loss, Output};
use wgpu_mlp::{Dataset, MlpSpec};

use crate::args::{Sizes, TrainArgs};
use crate::bad_input;

/// The network for the data: --layers as given, or --hidden between the
/// data's input and output sizes, and the activations and loss.
pub(crate) fn build_spec(cli: &TrainArgs, train: &Dataset, seed_data: bool) -> anyhow::Result<MlpSpec> {
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
        Some(activation) => activation,
        None if seed_data => Activation::Sigmoid,
        None => Activation::Relu,
    };
    let output = match (cli.output, cli.loss) {
        (Some(output), _) => output,
        (None, Some(Loss::CrossEntropy)) => Output::Softmax,
        (None, Some(Loss::Bce)) => Output::Sigmoid,
        (None, _) if seed_data => Output::Sigmoid,
        (None, Some(Loss::Mse)) | (None, None) if !classify => Output::Identity,
        (None, Some(Loss::Mse)) => Output::Sigmoid,
        (None, None) => Output::Softmax,
    };
    let loss = match cli.loss {
        Some(loss) => loss,
        None if output == Output::Softmax => Loss::CrossEntropy,
        None => Loss::Mse,
    };
    let spec = MlpSpec::new(sizes)?.with(hidden, output, loss)?;
    match cli.negative_slope {
        None => Ok(spec),
        Some(negative_slope) if hidden == Activation::LeakyRelu => Ok(spec.with_negative_slope(negative_slope)?),
        Some(negative_slope) => Err(bad_input(format!(
            "--negative-slope {negative_slope} applies to --activation leaky-relu; these hidden layers are {hidden}"
        ))),
    }
}

fn join(sizes: &[usize]) -> String {
    sizes.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}
