//! Command line of `nlebench-dev`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Development tools of nlebench: the benchmarks of BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(name = "nlebench-dev", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The tools.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Benchmarks (see BENCHMARKS.md)
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The engine on a device (CUDA) against the engine on the CPU and transformers' recorded
    /// logits, for every fixture architecture and dtype; fails past the stated tolerances
    Parity(ParityArgs),
}

#[derive(Debug, Args)]
pub struct ParityArgs {
    /// Device to check: cuda, cuda:N (or cpu, which checks only the reduced precisions)
    #[arg(long, default_value = "cuda:0")]
    pub device: types::DeviceSpec,
    /// The fixture models (tools/parity/make_arch_fixtures.py)
    #[arg(long, default_value = "tests/fixtures")]
    pub fixtures: PathBuf,
    /// Also write the results as JSON to this file
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Engine throughput and peak memory on the workload of tools/bench/engine_reference.py
    Engine(BenchEngineArgs),
    /// This machine's f32 matrix-multiply rate through the engine's GEMM (the peak the scoring
    /// workload's FLOP/s is compared with)
    Gemm(BenchGemmArgs),
    /// Time the text metrics over the NorGLM authors' released CoT and toxicity outputs
    Metrics(BenchMetricsArgs),
    /// Dashboard latency under concurrent clients on a (seeded) store
    Dashboard(BenchDashboardArgs),
    /// Scheduling: worker processes on PostgreSQL and Redis running many one-example jobs over
    /// many random models: jobs/s, time between a worker's jobs, model loads against the minimum
    Scheduler(BenchSchedulerArgs),
    /// Scoring and generation throughput and peak memory on a device (the GPU check's
    /// benchmark): a seeded synthetic workload, generation at several batch sizes
    Device(BenchDeviceArgs),
}

#[derive(Debug, Args)]
pub struct BenchSchedulerArgs {
    /// An empty PostgreSQL database: postgres://USER:PASS@HOST/DB
    #[arg(long, env = "NLEBENCH_DATABASE_URL")]
    pub database_url: String,
    /// Redis: redis://HOST:PORT
    #[arg(long, env = "NLEBENCH_QUEUE_URL")]
    pub queue_url: String,
    /// The nlebench binary the workers run [default: the one next to this binary]
    #[arg(long)]
    pub nlebench: Option<PathBuf>,
    /// Worker processes
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Random models (norgpt-tiny with seeds 1..=N)
    #[arg(long, default_value_t = 20)]
    pub models: usize,
    /// Runs per model (the sweep's seeds)
    #[arg(long, default_value_t = 20)]
    pub runs_per_model: usize,
    /// Examples per run, each its own job (jobs = models × runs × examples; at most 33)
    #[arg(long, default_value_t = 25)]
    pub examples: usize,
    /// Replace the scheduler section of this BENCHMARKS.md with the report
    #[arg(long)]
    pub write: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchDeviceArgs {
    /// Model: a directory, or `random:PRESET[@SEED]` (written under --models-dir when missing)
    #[arg(long)]
    pub model: String,
    /// Where random models are written
    #[arg(long, default_value = ".nlebench/models")]
    pub models_dir: PathBuf,
    /// Device: auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    pub device: types::DeviceSpec,
    /// Weight dtype: f32, f16 or bf16
    #[arg(long, default_value = "f32")]
    pub dtype: types::Dtype,
    /// Texts scored
    #[arg(long, default_value_t = 512)]
    pub sentences: usize,
    /// Tokens per scored text (each between half this and this)
    #[arg(long, default_value_t = 64)]
    pub sentence_tokens: usize,
    /// Texts per scoring batch
    #[arg(long, default_value_t = 32)]
    pub score_batch: usize,
    /// Generation batch sizes
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub batch_sizes: Vec<usize>,
    /// Prompt tokens per generated row
    #[arg(long, default_value_t = 32)]
    pub prompt_tokens: usize,
    /// New tokens per row (EOS suppressed, so every row makes this many)
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,
    /// Timed repetitions (after one warm-up)
    #[arg(long, default_value_t = 2)]
    pub repeats: usize,
    /// The device's memory bandwidth in GB/s, for decode's fraction of it
    #[arg(long)]
    pub bandwidth_gbs: Option<f64>,
    /// Write the workload (the model's folder, the scored texts' and the prompts' token ids)
    /// to this JSON file, for a reference run on the same inputs
    /// (`tools/gpu/transformers_reference.py`)
    #[arg(long, value_name = "FILE")]
    pub workload_out: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchDashboardArgs {
    /// Store to measure: postgres://USER:PASS@HOST/DB or sqlite://FILE
    #[arg(
        long,
        env = "NLEBENCH_DATABASE_URL",
        default_value = "sqlite://.nlebench/nlebench.sqlite"
    )]
    pub database_url: String,
    /// First write a synthetic history into the (empty) store
    #[arg(long)]
    pub seed: bool,
    /// Sweeps to seed
    #[arg(long, default_value_t = 100)]
    pub sweeps: usize,
    /// Runs to seed
    #[arg(long, default_value_t = 10_000)]
    pub runs: usize,
    /// Samples per seeded run
    #[arg(long, default_value_t = 100)]
    pub samples_per_run: usize,
    /// Metric rows per seeded run
    #[arg(long, default_value_t = 5)]
    pub metrics_per_run: usize,
    /// Concurrent clients
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds of load
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Replace the dashboard section of this BENCHMARKS.md with the report
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// The dashboard's aggregate cache lifetime in milliseconds, as `serve --cache-ms`
    #[arg(long, default_value_t = 2000)]
    pub cache_ms: u64,
}

#[derive(Debug, Args)]
pub struct BenchMetricsArgs {
    /// The released outputs (norglm-results directory)
    #[arg(long, default_value = "../shared/data/norglm-results")]
    pub data: PathBuf,
    /// Timed repetitions (after one warm-up)
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchPhase {
    /// Perplexity of the input sentences
    Ppl,
    /// Greedy generation from the input prompts
    Gen,
    /// Greedy generation with continuous batching, each prompt to its own number of new tokens
    /// (inputs from tools/bench/continuous_reference.py)
    Continuous,
}

#[derive(Debug, Args)]
pub struct BenchGemmArgs {
    /// Rows of the left matrix (tokens of a batch)
    #[arg(long, default_value_t = 1600)]
    pub m: usize,
    /// Inner dimension
    #[arg(long, default_value_t = 1024)]
    pub k: usize,
    /// Columns of the right matrix
    #[arg(long, default_value_t = 4096)]
    pub n: usize,
    /// Timed repetitions (after one warm-up)
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Which product: the linear layers' packed kernels or candle's matmul (`gemm`)
    #[arg(long, value_enum, default_value_t = GemmKernel::Packed)]
    pub kernel: GemmKernel,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// The matrix products `bench gemm` can time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GemmKernel {
    /// `nlebench-linear` over a weight packed beforehand (what the linear layers run)
    Packed,
    /// candle's matmul, i.e. the `gemm` crate (what attention runs)
    Candle,
}

#[derive(Debug, Args)]
pub struct BenchEngineArgs {
    /// Model directory (e.g. from `nlebench models random --preset norgpt-369m`)
    #[arg(long)]
    pub model: PathBuf,
    /// Workload written by tools/bench/engine_reference.py (token ids), or for `continuous`
    /// by tools/bench/continuous_reference.py
    #[arg(long)]
    pub inputs: PathBuf,
    /// Which workload
    #[arg(long, value_enum)]
    pub phase: BenchPhase,
    /// Row layout of `ppl` scoring: right-padded, left-padded or packed
    #[arg(long, default_value = "packed")]
    pub layout: engine::Layout,
    /// Timed repetitions (after one warm-up)
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// The dtype the model is loaded and run in: f32, bf16 or f16
    #[arg(long, default_value = "f32")]
    pub dtype: types::Dtype,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
