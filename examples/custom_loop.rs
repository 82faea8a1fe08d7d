//! A custom training loop over the `Trainer` trait, below the `Mlp` API: the
//! backend picked once, a trainer built from a `Run`, one epoch per call,
//! early stopping when the validation loss has not improved for 5 epochs, and a
//! checkpoint of the best epoch's state.
//!
//!     cargo run --example custom_loop

use wgpu_mlp::checkpoint;
use wgpu_mlp::gpu::GpuPath;
use wgpu_mlp::model::{Activation, Init, Loss, Output};
use wgpu_mlp::train::Optimizer;
use wgpu_mlp::{Backend, Dataset, MlpSpec, Params, Run, TrainConfig};

fn main() -> wgpu_mlp::Result<()> {
    // y = x0 * x1 + sin(3 x2) on the seed problem's uniform inputs.
    let make = |rows, seed| {
        let mut data = Dataset::seed_problem(rows, 3, 1, seed)?;
        for (x, mut y) in data.x.rows().into_iter().zip(data.y.rows_mut()) {
            y[0] = x[0] * x[1] + (3.0 * x[2]).sin();
        }
        Ok::<_, wgpu_mlp::Error>(data)
    };
    let (train, val) = (make(400, 1)?, make(100, 2)?);
    let spec = MlpSpec::new(vec![3, 32, 1])?.with(Activation::Tanh, Output::Identity, Loss::Mse)?;
    let params = Params::init(&spec, Init::Xavier, 0)?;
    let config = TrainConfig {
        lr: 0.01,
        optimizer: Optimizer::Adam { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        batch_size: Some(32),
        shuffle: true,
        ..TrainConfig::default()
    };

    let (backend, why) = Backend::auto(GpuPath::Auto, None)?;
    println!("{why}");
    let run = Run { spec: &spec, params: &params, train: &train, test: Some(&val), config: &config };
    let mut trainer = backend.trainer(&run)?;

    let (patience, mut best, mut since_best) = (5, (f32::INFINITY, 0, trainer.state()?), 0);
    for epoch in 1..=200 {
        let metrics = trainer.train(1)?.remove(0);
        let val_loss = metrics.val_loss.expect("the run has a validation set");
        if val_loss < best.0 {
            best = (val_loss, epoch, trainer.state()?);
            since_best = 0;
        } else {
            since_best += 1;
        }
        if epoch % 10 == 0 || since_best == patience {
            println!("epoch {epoch:>3}  train loss {:.5}  validation loss {val_loss:.5}", metrics.train_loss);
        }
        if since_best == patience {
            println!("no improvement for {patience} epochs: stopping");
            break;
        }
    }
    let (loss, epoch, state) = best;
    let path = std::env::temp_dir().join("custom_loop_best.safetensors");
    let metadata = checkpoint::describe(&spec, config.optimizer, config.seed, train.fingerprint());
    checkpoint::save(&path, &state, epoch, metadata, None)?;
    println!("best validation loss {loss:.5} at epoch {epoch}, saved to {}", path.display());
    Ok(())
}
