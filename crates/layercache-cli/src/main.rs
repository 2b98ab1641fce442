//! `layercache`: the command-line tool of the layercache caching toolkit.
//!
//! - `layercache sim` replays a cache trace (or a built-in Zipf workload) through the real
//!   [`layercache_memory::Cache`] for each policy and capacity asked for, and reports hit
//!   ratios next to Bélády's optimum.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod capacity;
mod replay;
mod report;
mod sim;

/// layercache: caching toolkit command-line tool.
#[derive(Parser, Debug)]
#[command(name = "layercache", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay a cache trace through the engine and report hit ratios per policy and capacity.
    Sim(sim::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Sim(args) => sim::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` prints the error with its causes on one line, without a backtrace.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
