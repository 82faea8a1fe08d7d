//! Classification from a CSV file, with a checkpoint: read the file (last
//! column the class), hold out a stratified quarter, fit on the rest, score
//! the held-out rows, save the model, load it back and predict again.
//!
//!     cargo run --example csv_classify -- data/sklearn/iris.csv 1
//!
//! The first argument is the CSV (plain or gzip), the second the metadata
//! lines to skip (scikit-learn's iris.csv has one). With no arguments it
//! writes a small CSV of two noisy clusters to the temp folder and uses that.

use std::path::PathBuf;

use wgpu_mlp::data::{load_csv, split, CsvOptions};
use wgpu_mlp::{Backend, Mlp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (path, skip_rows) = match args.next() {
        Some(path) => (PathBuf::from(path), args.next().map_or(Ok(0), |n| n.parse())?),
        None => (write_example_csv()?, 0),
    };
    let data = load_csv(&path, &CsvOptions { classify: true, skip_rows, ..CsvOptions::default() })?;
    let (train, test) = split(data, 0.25, 0)?;
    let test = test.ok_or("the file has too few rows to hold some out")?;
    println!(
        "{}: {} training rows, {} test rows, {:?} classes",
        path.display(),
        train.len(),
        test.len(),
        train.classes
    );

    // A hardware GPU when there is one, else the CPU; the line says which.
    let (backend, why) = Backend::auto(wgpu_mlp::gpu::GpuPath::Auto, None)?;
    println!("{why}");
    let mut mlp = Mlp::builder().hidden([16]).lr(0.01).batch_size(Some(16)).epochs(100).backend(backend).build()?;
    let report = mlp.fit_classes(train.x.view(), &train.labels())?;
    println!("training loss {:.4} -> {:.4}", report.initial_loss, report.final_loss);

    let accuracy = |predicted: &[usize]| {
        let hits = predicted.iter().zip(test.labels()).filter(|(p, t)| **p == *t).count();
        hits as f64 / test.len() as f64
    };
    let predicted = mlp.predict_classes(test.x.view())?;
    println!("test accuracy {:.4}", accuracy(&predicted));

    let checkpoint = std::env::temp_dir().join("csv_classify.safetensors");
    mlp.save(&checkpoint)?;
    let loaded = Mlp::load(&checkpoint)?;
    let again = loaded.predict_classes(test.x.view())?;
    println!("saved {}; loaded back, test accuracy {:.4}", checkpoint.display(), accuracy(&again));
    Ok(())
}

/// Two classes of 60 rows each around (0, 0) and (3, 3), with a header.
fn write_example_csv() -> std::io::Result<PathBuf> {
    let path = std::env::temp_dir().join("csv_classify_example.csv");
    let mut text = String::from("a,b,class\n");
    for i in 0..120 {
        let class = i % 2;
        // A fixed, seedless scatter: the i-th point of a small spiral around its centre.
        let angle = i as f32 * 2.4;
        let radius = 0.2 + (i % 7) as f32 * 0.15;
        let centre = 3.0 * class as f32;
        text += &format!("{},{},{class}\n", centre + radius * angle.cos(), centre + radius * angle.sin());
    }
    std::fs::write(&path, text)?;
    Ok(path)
}
