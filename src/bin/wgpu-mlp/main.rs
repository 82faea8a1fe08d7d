//! The command line: parses flags, loads the data, builds the model, picks a
//! device, trains and reports. Library errors that come from the user's input
//! exit with code 2, every other failure with code 1.

#![recursion_limit = "256"]

mod adapters;
mod args;
mod bench;
mod data;
mod data_parallel;
mod device;
mod dp;
mod export;
mod groups;
mod predict;
mod privacy;
mod progress;
mod read_once;
mod sniff;
mod spec;
mod stream;
mod sweep;
mod train;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use wgpu_mlp::Error;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let mut cli = Cli::parse_from(sweep::own_flags_first(std::env::args_os().collect()));
    let result = match &cli.command {
        None => data_parallel::join(&mut cli.train).and_then(|ranks| train::run(&cli.train, ranks)),
        Some(Command::Bench(args)) => bench::run_bench(args),
        Some(Command::Adapters { json }) => adapters::list_adapters(*json),
        Some(Command::Predict { model, out, copy }) => predict::predict(model, out.as_deref(), &copy.columns()),
        Some(Command::Eval { model, json, group }) => predict::evaluate(model, *json, group),
        Some(Command::Export { checkpoint, out }) => export::export(checkpoint, out),
        Some(Command::Privacy(args)) => privacy::plan(args),
        Some(Command::Sweep(args)) => sweep::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout left (`| head -1`): it has what it wanted.
        Err(error) if stream::is_closed_stdout(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // Not eprintln!, which panics when stderr fails too.
            let _ = writeln!(std::io::stderr(), "error: {}", in_flag_names(&format!("{error:#}")));
            let bad_input = error.downcast_ref::<Error>().is_some_and(Error::is_bad_input);
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}

/// Input mistakes the CLI itself finds; exit code 2 like the library's.
fn bad_input(message: String) -> anyhow::Error {
    Error::InvalidInput(message).into()
}

/// The library names settings as its API does, in backticks (`batch_size`);
/// on the command line each is the flag of the same name (--batch-size).
pub(crate) fn in_flag_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('`');
    out.push_str(parts.next().unwrap_or_default());
    let mut inside = true;
    for part in parts {
        let is_name =
            !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        match (inside, is_name) {
            (true, true) => out.push_str(&format!("--{}", part.replace('_', "-"))),
            (true, false) => out.push_str(&format!("`{part}`")),
            (false, _) => out.push_str(part),
        }
        inside = !inside;
    }
    out
}
