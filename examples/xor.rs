//! The smallest complete program: learn XOR and print what the model says.
//!
//!     cargo run --example xor

use wgpu_mlp::model::Activation;
use wgpu_mlp::ndarray::array;
use wgpu_mlp::Mlp;

fn main() -> wgpu_mlp::Result<()> {
    let x = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let labels = [0, 1, 1, 0];

    let mut mlp = Mlp::builder().hidden([8]).activation(Activation::Tanh).lr(0.05).epochs(400).seed(1).build()?;
    let report = mlp.fit_classes(x.view(), &labels)?;
    println!("loss {:.4} -> {:.4} in {} epochs", report.initial_loss, report.final_loss, report.epochs);

    let probabilities = mlp.predict(x.view())?;
    for (row, p) in x.rows().into_iter().zip(probabilities.rows()) {
        println!("{} xor {} -> P(1) = {:.3}", row[0], row[1], p[1]);
    }
    Ok(())
}
