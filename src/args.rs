//! Command-line arguments. Every global option can also be set with an `NLEBENCH_*`
//! environment variable or in `nlebench.toml`; flags win over variables, variables over the file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run and track evaluations of generative language models on NLEBench.
#[derive(Debug, Parser)]
#[command(name = "nlebench", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Config file
    #[arg(
        long,
        env = "NLEBENCH_CONFIG",
        global = true,
        default_value = "nlebench.toml"
    )]
    pub config: PathBuf,
    /// More log output (-v info, -vv debug)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The options of the command that runs (taken from its arguments, not parsed here).
    #[arg(skip)]
    pub options: Options,
}

/// Where the store and the queue are, and when a worker counts as alive: what every command
/// that reads or writes the history needs.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Store and queue")]
pub struct StoreOpts {
    /// Store URL: postgres://USER:PASS@HOST/DB (team mode) or sqlite://FILE
    /// [default: sqlite://.nlebench/nlebench.sqlite]
    #[arg(long, env = "NLEBENCH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Queue URL: redis://HOST:PORT (team mode) or sqlite://FILE
    /// [default: sqlite://.nlebench/queue.sqlite]
    #[arg(long, env = "NLEBENCH_QUEUE_URL")]
    pub queue_url: Option<String>,
    /// Queue name shared by submitters and workers [default: nlebench-jobs]
    #[arg(long, env = "NLEBENCH_QUEUE_NAME")]
    pub queue_name: Option<String>,
    /// Directory of the embedded store and queue and of generated models [default: .nlebench]
    #[arg(long, env = "NLEBENCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Seconds between worker heartbeats [default: 10]
    #[arg(long, env = "NLEBENCH_HEARTBEAT_SECS")]
    pub heartbeat_secs: Option<u64>,
    /// Missed heartbeats after which a worker's jobs go to another worker [default: 3]
    #[arg(long, env = "NLEBENCH_MISSED_HEARTBEATS")]
    pub missed_heartbeats: Option<usize>,
}

/// Where generated (random-weight) models are written, for commands without a store.
#[derive(Debug, Args, Clone, Default)]
pub struct DataOpts {
    /// Directory of generated models (under `models/`) [default: .nlebench]
    #[arg(long, env = "NLEBENCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Where task definitions and the model catalog are.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Task and model files")]
pub struct SpecOpts {
    /// Directory of task definitions [default: experiments/tasks]
    #[arg(long, env = "NLEBENCH_TASKS_DIR")]
    pub tasks_dir: Option<PathBuf>,
    /// Model catalog [default: experiments/models/catalog.toml]
    #[arg(long, env = "NLEBENCH_CATALOG")]
    pub catalog: Option<PathBuf>,
}

/// How a worker treats its jobs.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Workers")]
pub struct WorkerOpts {
    /// Attempts per job before its run fails [default: 3]
    #[arg(long, env = "NLEBENCH_MAX_ATTEMPTS")]
    pub max_attempts: Option<u32>,
    /// First retry delay in seconds, doubling per attempt (with jitter) [default: 5]
    #[arg(long, env = "NLEBENCH_BACKOFF_SECS")]
    pub backoff_secs: Option<u64>,
    /// Seconds a worker waits out a store outage before releasing its job [default: 120]
    #[arg(long, env = "NLEBENCH_STORE_OUTAGE_SECS")]
    pub store_outage_secs: Option<u64>,
    /// Seconds between the workers' reconciler passes; 0 turns them off [default: 30]
    #[arg(long, env = "NLEBENCH_RECONCILE_SECS")]
    pub reconcile_secs: Option<u64>,
    /// Memory a worker offers its jobs in GiB; it takes no job that needs more
    /// [default: the GPU's memory, or the machine's]
    #[arg(long, env = "NLEBENCH_MEMORY_GB")]
    pub memory_gb: Option<String>,
    /// Perspective API key: workers score toxicity tasks' outputs with it (never logged)
    #[arg(long, env = "NLEBENCH_PERSPECTIVE_KEY", hide_env_values = true)]
    pub perspective_key: Option<String>,
    /// Perspective endpoint [default: the public comments:analyze]
    #[arg(long, env = "NLEBENCH_PERSPECTIVE_URL")]
    pub perspective_url: Option<String>,
    /// Perspective requests per second, retries included [default: 1]
    #[arg(long, env = "NLEBENCH_PERSPECTIVE_QPS")]
    pub perspective_qps: Option<String>,
}

/// Where models run.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Device")]
pub struct DeviceOpts {
    /// Inference device: auto, cpu, cuda or cuda:N [default: auto]
    #[arg(long, env = "NLEBENCH_DEVICE")]
    pub device: Option<String>,
    /// Memory budget of a scoring forward pass in MiB, when a setting names no batch size
    /// [default: 2048]
    #[arg(long, env = "NLEBENCH_MEMORY_BUDGET_MB")]
    pub memory_budget_mb: Option<String>,
}

/// How metrics are computed.
#[derive(Debug, Args, Clone, Default)]
pub struct MetricOpts {
    /// Bootstrap resamples per metric interval; 0 turns intervals off [default: 1000]
    #[arg(long, env = "NLEBENCH_BOOTSTRAP_ITERATIONS")]
    pub bootstrap_iterations: Option<String>,
}

/// The option groups a command was given (the others left at their defaults).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Store and queue.
    pub store: StoreOpts,
    /// Generated models' directory (commands without a store).
    pub data: DataOpts,
    /// Task and model files.
    pub spec: SpecOpts,
    /// Workers.
    pub worker: WorkerOpts,
    /// Device.
    pub device: DeviceOpts,
    /// Metrics.
    pub metric: MetricOpts,
}

/// A command's arguments, with the option groups it takes.
pub trait Grouped {
    /// Its option groups.
    fn options(&self) -> Options;
}

/// `impl Grouped for ARGS { groups }`: the groups a command's arguments flatten.
macro_rules! grouped {
    ($args:ty: $($group:ident),*) => {
        impl Grouped for $args {
            fn options(&self) -> Options {
                Options {
                    $($group: self.$group.clone(),)*
                    ..Options::default()
                }
            }
        }
    };
}

grouped!(RunArgs: store, spec, worker, device, metric);
grouped!(EvalArgs: store, spec, worker, device, metric);
grouped!(SubmitArgs: store, spec);
grouped!(WorkerArgs: store, worker, device, metric);
grouped!(StatusArgs: store);
grouped!(SweepArg: store);
grouped!(ReconcileArgs: store);
grouped!(ExportArgs: store);
grouped!(RescoreArgs: store, device, metric);
grouped!(ImportArgs: store, spec, device, metric);
grouped!(CompareArgs: store);
grouped!(ReportArgs: store);
grouped!(MigrateArgs: store);
grouped!(TagArgs: store);
grouped!(NoteArgs: store);
grouped!(TasksListArgs: spec);
grouped!(TasksRequestsArgs:);
grouped!(TasksScoreArgs:);
grouped!(BaselinesImportArgs: store);
grouped!(BaselinesListArgs: store);
grouped!(ScoreArgs: spec, device, metric);
grouped!(RandomArgs: data);
grouped!(PullArgs:);
grouped!(RenderChatArgs: data);
grouped!(ModelsListArgs: spec);
grouped!(ServeArgs: store);
grouped!(UsersAddArgs: store);
grouped!(UsersListArgs: store);
grouped!(UsersRemoveArgs: store);
grouped!(GenerateArgs: data, device);
grouped!(PerplexityArgs: data, device);

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a sweep and evaluate it with in-process workers; print the results
    Run(RunArgs),
    /// Evaluate a model on tasks without a sweep file (one is written and reused for the same
    /// flags)
    Eval(EvalArgs),
    /// Put a sweep's missing or failed cells on the queue
    Submit(SubmitArgs),
    /// Pull jobs from the queue and run them until stopped
    Worker(WorkerArgs),
    /// Show sweeps, or one sweep's runs
    Status(StatusArgs),
    /// Cancel a sweep's queued and running runs
    Cancel(SweepArg),
    /// Put a sweep's failed and cancelled runs back on the queue (they resume)
    Retry(SweepArg),
    /// Queue again every unfinished job that neither a live worker nor the queue holds
    Reconcile(ReconcileArgs),
    /// Export a sweep's runs and metrics
    Export(ExportArgs),
    /// Recompute metrics from stored samples, without a model (SWEEP or run:ID)
    Rescore(RescoreArgs),
    /// Store outputs produced elsewhere as a scored run (source `import`)
    Import(ImportArgs),
    /// Test whether two runs of a task differ beyond chance (paired tests per metric)
    Compare(CompareArgs),
    /// A sweep's reproduction report: every value with a baseline, and the verdict
    Report(ReportArgs),
    /// Create or upgrade the store's tables
    Migrate(MigrateArgs),
    /// Archive sweeps (hidden from the lists, kept) or restore them
    #[command(subcommand)]
    Sweeps(SweepsCommand),
    /// Tag a sweep or a run (`run:ID`)
    Tag(TagArgs),
    /// Take tags off a sweep or a run (`run:ID`)
    Untag(TagArgs),
    /// Add a note to a sweep or a run (`run:ID`)
    Note(NoteArgs),
    /// Task definitions
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Baselines runs are compared with: import a CSV, list them
    #[command(subcommand)]
    Baselines(BaselinesCommand),
    /// Compute a task's metrics from an outputs file, without a model
    Score(ScoreArgs),
    /// Models: random-weight models, downloads, the catalog
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Serve the dashboard
    Serve(ServeArgs),
    /// Dashboard accounts
    #[command(subcommand)]
    Users(UsersCommand),
    /// Generate text with a model (and adapter)
    Generate(GenerateArgs),
    /// Perplexity of each line of a file (start token prepended, as Hugging Face `evaluate`)
    Perplexity(PerplexityArgs),
}

/// A model (and optional adapter) to load directly.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Model source: hf:ORG/NAME[@REV], path:DIR, random:PRESET[@SEED], or a directory
    #[arg(long)]
    pub model: String,
    /// LoRA adapter source: hf:ORG/NAME[@REV], path:DIR or a directory
    #[arg(long)]
    pub adapter: Option<String>,
    /// Weight dtype
    #[arg(long, value_enum, default_value_t = DtypeArg::F32)]
    pub dtype: DtypeArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DtypeArg {
    F32,
    F16,
    Bf16,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt (repeat for a batch)
    #[arg(long, required = true)]
    pub prompt: Vec<String>,
    /// Most new tokens [default: 20 unless --max-length is given]
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Most tokens including the (left-padded) prompt
    #[arg(long)]
    pub max_length: Option<usize>,
    /// EOS is suppressed until this many tokens are generated
    #[arg(long, default_value_t = 0)]
    pub min_new_tokens: usize,
    /// Sample instead of greedy decoding
    #[arg(long)]
    pub do_sample: bool,
    /// Sampling temperature
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Top-k sampling
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Nucleus sampling
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Beam width
    #[arg(long, default_value_t = 1)]
    pub num_beams: usize,
    /// Beam length penalty
    #[arg(long, default_value_t = 1.0)]
    pub length_penalty: f64,
    /// Forbid repeating n-grams of this size
    #[arg(long, default_value_t = 0)]
    pub no_repeat_ngram_size: usize,
    /// Repetition penalty
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f64,
    /// Stop string (repeatable)
    #[arg(long)]
    pub stop: Vec<String>,
    /// Sampling seed
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataOpts,
    #[command(flatten)]
    pub device: DeviceOpts,
}

#[derive(Debug, Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text file, one text per line
    #[arg(long)]
    pub input: PathBuf,
    /// Texts per forward pass [default: as many as fit NLEBENCH_MEMORY_BUDGET_MB]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Context cap in tokens (longer texts are truncated and flagged)
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// How texts share a forward pass: packed (several texts per row, a common beginning
    /// computed once), right-padded or left-padded; the perplexities are the same in each
    #[arg(long, default_value = "packed")]
    pub layout: engine::Layout,
    /// Print JSON with per-text perplexities and token counts
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataOpts,
    #[command(flatten)]
    pub device: DeviceOpts,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// A sweep name, or `run:ID`
    pub target: String,
    /// Tags: one word each (letters, digits, - _ . : /)
    #[arg(required = true)]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct NoteArgs {
    /// A sweep name, or `run:ID`
    pub target: String,
    /// The note
    pub text: String,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Subcommand)]
pub enum SweepsCommand {
    /// Hide a sweep from the lists (`status`, the dashboard); its runs stay in the history and
    /// in comparisons, and `restore` brings it back
    Archive(SweepArg),
    /// List an archived sweep again
    Restore(SweepArg),
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a dashboard user, or set an existing one's password and role (a new password
    /// ends the user's sessions)
    Add(UsersAddArgs),
    /// List the dashboard users with their role and live sessions
    List(UsersListArgs),
    /// Remove a dashboard user and end its sessions
    Remove(UsersRemoveArgs),
}

#[derive(Debug, Args)]
pub struct UsersListArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct UsersRemoveArgs {
    /// User name
    pub name: String,
    #[command(flatten)]
    pub store: StoreOpts,
}

/// Dashboard roles.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// May view the pages
    Viewer,
    /// May view, cancel, retry and import baselines
    Editor,
}

#[derive(Debug, Args)]
pub struct UsersAddArgs {
    /// User name
    pub name: String,
    /// Role
    #[arg(long, value_enum, default_value_t = RoleArg::Viewer)]
    pub role: RoleArg,
    /// Read the password from standard input (first line) instead of NLEBENCH_PASSWORD
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "NLEBENCH_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Pages are viewable without signing in (actions still need an editor)
    #[arg(long, env = "NLEBENCH_DASHBOARD_PUBLIC", value_parser = clap::builder::BoolishValueParser::new())]
    pub public: bool,
    /// Mark the session cookie Secure (serve behind HTTPS)
    #[arg(long, env = "NLEBENCH_SECURE_COOKIES", value_parser = clap::builder::BoolishValueParser::new())]
    pub secure_cookies: bool,
    /// Milliseconds the aggregate data of the sweeps, sweep and leaderboard pages is reused
    /// (0: never)
    #[arg(long, env = "NLEBENCH_DASHBOARD_CACHE_MS", default_value_t = 2000)]
    pub cache_ms: u64,
    /// Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For names
    /// the client for the sign-in limits and the logs; from others it is ignored
    #[arg(long, env = "NLEBENCH_TRUSTED_PROXIES", value_delimiter = ',', value_parser = web::proxy::TrustedProxies::parse_one)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Sweep file
    pub sweep: PathBuf,
    /// Redo cells that already have a successful run
    #[arg(long)]
    pub force: bool,
    /// In-process workers
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Every run's metrics table, not only the model × task summary of a multi-run sweep
    #[arg(long)]
    pub detail: bool,
    /// Afterwards, serve the dashboard on this address (default 127.0.0.1:8080) until Ctrl-C
    #[arg(long, value_name = "HOST:PORT", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub serve: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub store: StoreOpts,
    #[command(flatten)]
    pub spec: SpecOpts,
    #[command(flatten)]
    pub worker: WorkerOpts,
    #[command(flatten)]
    pub device: DeviceOpts,
    #[command(flatten)]
    pub metric: MetricOpts,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model: a source (`hf:ORG/NAME[@REV]`, `path:DIR`, `random:PRESET@SEED`), a directory or a name
    /// from the model catalog
    #[arg(long)]
    pub model: String,
    /// A LoRA adapter on the model (`hf:ORG/NAME[@REV]` or `path:DIR`)
    #[arg(long)]
    pub adapter: Option<String>,
    /// Tasks, comma-separated (see `nlebench tasks list`)
    #[arg(long, value_delimiter = ',', required = true)]
    pub tasks: Vec<String>,
    /// Evaluate only the first N examples of each task
    #[arg(long, value_name = "N", value_parser = whole_number_from_1)]
    pub limit: Option<u64>,
    /// Examples per forward pass (does not change results)
    #[arg(long, value_name = "B", value_parser = whole_number_from_1)]
    pub batch_size: Option<u64>,
    /// Solved examples of each task's `[fewshot]` pool before every prompt (0: zero-shot)
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub num_fewshot: u32,
    /// A task's dataset instead of the task's own (repeatable)
    #[arg(long = "dataset", value_name = "TASK=SOURCE")]
    pub datasets: Vec<String>,
    /// A task's few-shot pool instead of its `[fewshot]` (repeatable; a local file makes
    /// --num-fewshot work offline)
    #[arg(long = "fewshot-dataset", value_name = "TASK=SOURCE")]
    pub fewshot_datasets: Vec<String>,
    /// The sweep's name [default: eval- and a hash of the flags]
    #[arg(long)]
    pub name: Option<String>,
    /// Seed (sampling decoders and example draws)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Prompts as conversations through the model's chat template (as lm-eval's
    /// --apply_chat_template)
    #[arg(long)]
    pub apply_chat_template: bool,
    /// The system turn of those conversations
    #[arg(long, value_name = "TEXT")]
    pub system_prompt: Option<String>,
    /// Few-shot examples as alternating user and assistant turns (as lm-eval's
    /// --fewshot_as_multiturn)
    #[arg(long)]
    pub fewshot_as_multiturn: bool,
    /// A folder of lm-eval task files for `--tasks lm-eval:NAME` (repeatable; as lm-eval's
    /// --include_path)
    #[arg(long = "include-path", value_name = "DIR")]
    pub include_path: Vec<std::path::PathBuf>,
    /// Redo cells that already have a successful run
    #[arg(long)]
    pub force: bool,
    /// In-process workers
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Every run's metrics table, not only the model × task summary
    #[arg(long)]
    pub detail: bool,
    #[command(flatten)]
    pub store: StoreOpts,
    #[command(flatten)]
    pub spec: SpecOpts,
    #[command(flatten)]
    pub worker: WorkerOpts,
    #[command(flatten)]
    pub device: DeviceOpts,
    #[command(flatten)]
    pub metric: MetricOpts,
}

/// A run: `12` or `run:12`, as `tag`, `note` and `rescore` take it.
fn run_id(s: &str) -> Result<i64, String> {
    s.strip_prefix("run:")
        .unwrap_or(s)
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id >= 1)
        .ok_or_else(|| format!("`{s}` is not a run: write its id, e.g. 12 or run:12"))
}

/// A whole number ≥ 1, said in those words when it is not.
fn whole_number_from_1(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number ≥ 1")),
    }
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// Sweep file
    pub sweep: PathBuf,
    /// Redo cells that already have a successful run
    #[arg(long)]
    pub force: bool,
    /// Print the plan (new / already done / failed → retried) and write nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub store: StoreOpts,
    #[command(flatten)]
    pub spec: SpecOpts,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Unique worker name [default: HOST-PID-RANDOM]
    #[arg(long, env = "NLEBENCH_WORKER_NAME")]
    pub name: Option<String>,
    /// Stop after this many seconds without a job (for batch schedulers such as Slurm)
    #[arg(long)]
    pub exit_when_idle: Option<u64>,
    /// Serve this worker's Prometheus metrics at http://ADDR/metrics (e.g. 0.0.0.0:9464)
    #[arg(long, env = "NLEBENCH_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Take jobs in queue order, without preferring the model it holds (for comparison)
    #[arg(long)]
    pub no_affinity: bool,
    #[command(flatten)]
    pub store: StoreOpts,
    #[command(flatten)]
    pub worker: WorkerOpts,
    #[command(flatten)]
    pub device: DeviceOpts,
    #[command(flatten)]
    pub metric: MetricOpts,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Sweep name (all sweeps when left out)
    pub sweep: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// List the archived sweeps instead (`nlebench sweeps archive|restore`)
    #[arg(long, conflicts_with = "sweep")]
    pub archived: bool,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Say what would be queued again; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Wait up to this many seconds for the store to accept connections (a database that
    /// starts beside this command, as in a compose stack or a Kubernetes job)
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub wait: u64,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct SweepArg {
    /// Sweep name
    pub sweep: String,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Task name
    #[arg(long, required_unless_present = "onto")]
    pub task: Option<String>,
    /// Name of the model that produced the outputs
    #[arg(long, required_unless_present = "onto")]
    pub model: Option<String>,
    /// Outputs file (CSV, JSON Lines, JSON or Parquet); with --onto, the samples export with
    /// a score column per attribute; with --task lm-eval:NAME, lm-eval's samples file, or the
    /// folder it wrote for one model (each task's newest samples_TASK_DATE.jsonl)
    #[arg(long)]
    pub file: PathBuf,
    /// How the file is laid out: `table` (columns named by --map) or `lm-eval` (a
    /// samples_TASK_DATE.jsonl of `lm_eval --log_samples`: outputs, targets and document
    /// fields; --map may still name `source=doc.FIELD`)
    #[arg(long, value_enum, default_value_t = ImportFormat::Table, conflicts_with = "onto")]
    pub format: ImportFormat,
    /// Add per-sample scores (e.g. toxicity attributes computed elsewhere) to stored run ID
    /// and recompute its metrics, instead of importing a new run
    #[arg(long, value_name = "RUN", conflicts_with_all = ["task", "model", "map", "filter"])]
    pub onto: Option<i64>,
    /// Columns by role: hyp=COLUMN,ref=COLUMN[,source=COLUMN][,prompt=COLUMN] (the prompt
    /// shown with each sample; default: the source)
    #[arg(long, value_parser = parse_map)]
    pub map: Option<std::collections::BTreeMap<String, String>>,
    /// Row filter applied first (`paper`: the NorGLM authors')
    #[arg(long, value_enum)]
    pub filter: Option<RowFilter>,
    /// Sweep the run is listed under
    #[arg(long, default_value = "imports")]
    pub sweep: String,
    /// For `--task lm-eval:NAME`: the folder of its task file, as lm-eval's --include_path
    /// (repeatable)
    #[arg(long = "include-path", value_name = "DIR", conflicts_with = "onto")]
    pub include_path: Vec<PathBuf>,
    /// For `--task lm-eval:NAME`: the few-shot examples the samples were made with (default:
    /// the task file's)
    #[arg(long, conflicts_with = "onto")]
    pub num_fewshot: Option<u32>,
    /// For `--task lm-eval:NAME`: the samples were made through the chat template of the model
    /// in DIR (lm-eval's --apply_chat_template)
    #[arg(long, value_name = "DIR", conflicts_with = "onto")]
    pub apply_chat_template: Option<PathBuf>,
    /// With --apply-chat-template: lm-eval's --system_instruction
    #[arg(long, requires = "apply_chat_template")]
    pub system_instruction: Option<String>,
    /// With --apply-chat-template: lm-eval's --fewshot_as_multiturn
    #[arg(long, requires = "apply_chat_template")]
    pub fewshot_as_multiturn: bool,
    #[command(flatten)]
    pub store: StoreOpts,
    #[command(flatten)]
    pub spec: SpecOpts,
    #[command(flatten)]
    pub device: DeviceOpts,
    #[command(flatten)]
    pub metric: MetricOpts,
}

/// How `import --file` is laid out.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportFormat {
    Table,
    LmEval,
}

impl From<ImportFormat> for worker::import::Layout {
    fn from(f: ImportFormat) -> Self {
        match f {
            ImportFormat::Table => worker::import::Layout::Table,
            ImportFormat::LmEval => worker::import::Layout::LmEval,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Sweep name
    pub sweep: String,
    /// Output format
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Write to a file instead of standard output
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// On the baseline's examples, a value within TOLERANCE · max(|baseline|, 1) of it agrees
    #[arg(long, default_value_t = analysis::reproduction::DEFAULT_TOLERANCE)]
    pub tolerance: f64,
    /// Equivalence margin for every metric, in its unit (else each task file's [margins]): a
    /// value whose 90 % interval lies within baseline ± MARGIN reproduces it
    #[arg(long, value_name = "MARGIN")]
    pub margin: Option<f64>,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run A, the reference: an id or `run:ID`
    #[arg(value_name = "RUN_A", value_parser = run_id)]
    pub a: i64,
    /// Run B: an id or `run:ID`
    #[arg(value_name = "RUN_B", value_parser = run_id)]
    pub b: i64,
    /// Bootstrap resamples
    #[arg(long, default_value_t = 10_000)]
    pub iterations: usize,
    /// Seed of the bootstrap
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct RescoreArgs {
    /// Sweep name, or `run:ID` for one run
    pub target: String,
    #[command(flatten)]
    pub store: StoreOpts,
    #[command(flatten)]
    pub device: DeviceOpts,
    #[command(flatten)]
    pub metric: MetricOpts,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Sweep name
    pub sweep: String,
    /// One row per sample (run_id, idx, model, adapter, task, prompt, output, reference)
    /// instead of one per metric
    #[arg(long)]
    pub samples: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Write to a file instead of standard output
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Send the runs to another tool instead: `--to mlflow URL` (the tracking server; each run
    /// with its manifest as params, metrics and intervals, tags, samples as an artifact;
    /// exporting again updates the same MLflow runs), or `--to lm-eval DIR` (finished runs as
    /// lm-evaluation-harness's `results_DATE.json` and `samples_TASK_DATE.jsonl`, a folder
    /// per model configuration)
    #[arg(long, num_args = 2, value_names = ["TOOL", "URL|DIR"], conflicts_with_all = ["samples", "format", "output"])]
    pub to: Option<Vec<String>>,
    /// The MLflow experiment [default: the sweep's name]
    #[arg(long, requires = "to")]
    pub experiment: Option<String>,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Subcommand)]
pub enum BaselinesCommand {
    /// Import baselines from a CSV (task,model,setting,metric,value,n,examples,source,note);
    /// rows already stored (same task, model, setting, metric and source) get the new value
    Import(BaselinesImportArgs),
    /// List the stored baselines
    List(BaselinesListArgs),
}

#[derive(Debug, Args)]
pub struct BaselinesListArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Args)]
pub struct BaselinesImportArgs {
    /// The CSV file
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreOpts,
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// List the task definitions (and lm-eval's, with --include-path)
    List(TasksListArgs),
    /// Every request lm-evaluation-harness would build for lm-eval tasks, without a model
    Requests(TasksRequestsArgs),
    /// lm-eval tasks' metrics from a model's responses to their requests, as lm-eval computes them
    Score(TasksScoreArgs),
}

/// Which lm-eval tasks, and how their requests are built.
#[derive(Debug, Args)]
pub struct LmEvalTasksOpts {
    /// lm-eval task, group or tag names (a tag or group stands for its tasks)
    #[arg(required = true)]
    pub tasks: Vec<String>,
    /// Folder of lm-eval task files, as lm-eval's `--include_path` (repeatable; later folders
    /// override earlier ones); an installed lm-eval's `lm_eval/tasks` folder may be named
    #[arg(long = "include-path", value_name = "DIR", required = true)]
    pub include_path: Vec<PathBuf>,
    /// Few-shot examples per document (ignored by tasks whose file sets 0, as in lm-eval)
    #[arg(long)]
    pub num_fewshot: Option<usize>,
    /// Only the first N documents of each task
    #[arg(long)]
    pub limit: Option<usize>,
    /// Few-shot sampling seed (lm-eval's fewshot_random_seed)
    #[arg(long, default_value_t = harness::DEFAULT_FEWSHOT_SEED)]
    pub seed: i64,
}

#[derive(Debug, Args)]
pub struct TasksRequestsArgs {
    #[command(flatten)]
    pub lm_eval: LmEvalTasksOpts,
    /// The prompts through the chat template of the model in DIR (its tokenizer_config.json
    /// or chat_template.jinja), as lm-eval's --apply_chat_template
    #[arg(long, value_name = "DIR")]
    pub apply_chat_template: Option<PathBuf>,
    /// A system turn before the task's description (lm-eval's --system_instruction)
    #[arg(long, requires = "apply_chat_template")]
    pub system_instruction: Option<String>,
    /// Few-shot examples as user and assistant turns (lm-eval's --fewshot_as_multiturn)
    #[arg(long, requires = "apply_chat_template")]
    pub fewshot_as_multiturn: bool,
    /// Print {task: [{doc_id, idx, request_type, arguments}]} as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TasksScoreArgs {
    #[command(flatten)]
    pub lm_eval: LmEvalTasksOpts,
    /// A model's responses: {task: [one per request, in `tasks requests` order]}, each
    /// [loglikelihood, is_greedy], a rolling log-likelihood, or the generated text
    #[arg(long)]
    pub responses: PathBuf,
    /// Print {task: {"METRIC,FILTER": value}} as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TasksListArgs {
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Also list the lm-eval tasks, groups and tags under this folder (repeatable)
    #[arg(long = "include-path", value_name = "DIR")]
    pub include_path: Vec<PathBuf>,
    #[command(flatten)]
    pub spec: SpecOpts,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// Task name
    #[arg(long)]
    pub task: String,
    /// Outputs file (CSV, JSON Lines or JSON)
    #[arg(long)]
    pub input: PathBuf,
    /// Columns by role for generation tasks: hyp=COLUMN,ref=COLUMN[,source=COLUMN]
    #[arg(long, value_parser = parse_map)]
    pub map: Option<std::collections::BTreeMap<String, String>>,
    /// Row filter applied first: `paper` = the NorGLM authors' (their 2048-token placeholder
    /// and empty cells drop the row)
    #[arg(long, value_enum)]
    pub filter: Option<RowFilter>,
    /// NLI classifier for the entailment ratios (`hf:NorGLM/Entailment`, `path:DIR` or a
    /// directory); needs `source=COLUMN` in --map
    #[arg(long, value_name = "SRC")]
    pub nli_model: Option<String>,
    /// Causal LM for MAUVE's features (the authors: `hf:openai-community/gpt2-large`)
    #[arg(long, value_name = "SRC")]
    pub mauve_model: Option<String>,
    /// Tokens of each text MAUVE's feature model reads (the authors: 256)
    #[arg(long, default_value_t = 256)]
    pub mauve_max_tokens: usize,
    /// Print one JSON object whose `metrics` maps metric names to numbers
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub spec: SpecOpts,
    #[command(flatten)]
    pub device: DeviceOpts,
    #[command(flatten)]
    pub metric: MetricOpts,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RowFilter {
    /// The authors' filter of their evaluation script
    Paper,
}

/// `hyp=COL,ref=COL[,source=COL]`.
fn parse_map(s: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not ROLE=COLUMN (e.g. hyp=generated_text)"))?;
        if !matches!(k, "hyp" | "ref" | "source" | "prompt" | "pred" | "label") {
            return Err(format!(
                "unknown role `{k}`; roles are hyp, ref, source and prompt (generation tasks), pred and label (classification tasks)"
            ));
        }
        if v.is_empty() {
            return Err(format!("role `{k}` has no column"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Write a deterministic random-weight model in Hugging Face layout
    Random(RandomArgs),
    /// Download a Hub model into the local Hugging Face cache
    Pull(PullArgs),
    /// List random-model presets and the catalog
    List(ModelsListArgs),
    /// Print a conversation as the model's chat template renders it (as transformers'
    /// apply_chat_template with tokenize=False)
    RenderChat(RenderChatArgs),
}

#[derive(Debug, Args)]
pub struct RenderChatArgs {
    /// Model source: hf:ORG/NAME[@REV], path:DIR, random:PRESET[@SEED], or a directory
    #[arg(long)]
    pub model: String,
    /// A JSON list of {"role", "content"} turns
    #[arg(long)]
    pub messages: PathBuf,
    /// End with the opening of the assistant's turn
    #[arg(long)]
    pub add_generation_prompt: bool,
    /// Print {"text": ...} instead of the text
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataOpts,
}

#[derive(Debug, Args)]
pub struct ModelsListArgs {
    #[command(flatten)]
    pub spec: SpecOpts,
}

#[derive(Debug, Args)]
pub struct RandomArgs {
    /// Preset (see `nlebench models list`)
    #[arg(long, default_value = "norgpt-tiny")]
    pub preset: String,
    /// Seed of the weights
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory [default: DATA_DIR/models/random-PRESET-seedSEED]
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataOpts,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// hf:ORG/NAME[@REVISION]
    pub source: String,
}
