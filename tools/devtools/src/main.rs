//! `nlebench-dev`: the benchmarks of BENCHMARKS.md (engine, metrics, dashboard).

use std::process::ExitCode;

use clap::Parser;

mod args;
mod bench;
mod dashboard;

use args::{BenchCommand, Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(BenchCommand::Engine(a)) => bench::engine(a),
        Command::Bench(BenchCommand::Gemm(a)) => bench::gemm(a),
        Command::Bench(BenchCommand::Metrics(a)) => bench::metrics(a),
        Command::Bench(BenchCommand::Dashboard(a)) => dashboard::run(a).await,
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}
