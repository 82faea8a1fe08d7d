//! The command line: parses flags, loads the data, builds the model, picks a
//! device, trains and reports. Library errors that come from the user's input
//! exit with code 2, every other failure with code 1.

mod adapters;
mod args;
mod bench;
mod data;
mod device;
mod export;
mod predict;
mod spec;
mod train;

use std::process::ExitCode;

use clap::Parser;
use wgpu_mlp::Error;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None => train::run(&cli.train),
        Some(Command::Bench(args)) => bench::run_bench(args),
        Some(Command::Adapters { json }) => adapters::list_adapters(*json),
        Some(Command::Predict { model, out }) => predict::predict(model, out.as_deref()),
        Some(Command::Eval { model, json }) => predict::evaluate(model, *json),
        Some(Command::Export { checkpoint, out }) => export::export(checkpoint, out),
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
