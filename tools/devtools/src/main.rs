//! `nlebench-dev`: the benchmarks of BENCHMARKS.md (engine, device, metrics, dashboard) and
//! the device parity check of tools/gpu/check.sh.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod bench;
mod dashboard;
mod device;
mod parity;
mod report;
mod scheduler;

use args::{BenchCommand, Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(BenchCommand::Engine(a)) => bench::engine(a),
        Command::Bench(BenchCommand::Gemm(a)) => bench::gemm(a),
        Command::Bench(BenchCommand::Metrics(a)) => bench::metrics(a),
        Command::Bench(BenchCommand::Dashboard(a)) => dashboard::run(a).await,
        Command::Bench(BenchCommand::Device(a)) => device::run(a),
        Command::Bench(BenchCommand::Scheduler(a)) => scheduler::run(a).await,
        Command::Parity(a) => parity::run(a),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })
}
