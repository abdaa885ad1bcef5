//! `nlebench`: run and track evaluations of generative language models on NLEBench. The
//! binary is [`main`]; the library exists so that the end-to-end tests' own binary can run the
//! same commands with [`worker::Hooks`] installed (`tests/bin/nlebench_test.rs`).

/// `println!` that ends the process quietly when stdout is closed (e.g. piped into `head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod args;
mod commands;
mod context;
mod environment;
mod render;
mod variables;

use clap::Parser;

use crate::args::{
    BaselinesCommand, Cli, Command, ModelsCommand, SweepsCommand, TasksCommand, UsersCommand,
};

/// Parse the command line and run the command.
pub fn main() -> std::process::ExitCode {
    main_with(worker::Hooks::default())
}

/// [`main`], with `hooks` given to every worker the command starts.
pub fn main_with(hooks: worker::Hooks) -> std::process::ExitCode {
    let cli = Cli::parse();
    for w in variables::warnings(environment::names()) {
        eprintln!("warning: {w}");
    }
    metrics::nltk::search_first(environment::nltk_data());
    context::init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli, hooks)) {
        Ok(code) => code,
        // The reader of our output went away (`nlebench export … | head`): end quietly.
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether the error is a write to a closed pipe (directly, or inside a CSV or JSON writer's
/// error).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let broken = |k: std::io::ErrorKind| k == std::io::ErrorKind::BrokenPipe;
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| broken(io.kind()))
            || cause
                .downcast_ref::<csv::Error>()
                .is_some_and(|c| matches!(c.kind(), csv::ErrorKind::Io(io) if broken(io.kind())))
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                .is_some_and(broken)
    })
}

/// The error and its causes, leaving out causes whose text the message already contains.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(&format!("\n  caused by: {c}"));
        }
    }
    text
}

async fn dispatch(cli: Cli, hooks: worker::Hooks) -> anyhow::Result<std::process::ExitCode> {
    let global = cli.global;
    match cli.command {
        Command::Run(a) => commands::run::run(&global, a, &hooks).await,
        Command::Eval(a) => commands::eval::eval(&global, a, &hooks).await,
        Command::Submit(a) => commands::submit::submit(&global, a).await,
        Command::Worker(a) => commands::worker::worker(&global, a, &hooks).await,
        Command::Status(a) => commands::status::status(&global, a).await,
        Command::Cancel(a) => commands::cancel::cancel(&global, a).await,
        Command::Retry(a) => commands::retry::retry(&global, a).await,
        Command::Export(a) => commands::export::export(&global, a).await,
        Command::Rescore(a) => commands::rescore::rescore(&global, a).await,
        Command::Import(a) => commands::import::import(&global, a).await,
        Command::Compare(a) => commands::compare::compare(&global, a).await,
        Command::Report(a) => commands::report::report(&global, a).await,
        Command::Migrate(a) => commands::migrate::migrate(&global, a).await,
        Command::Tag(a) => commands::tag::tag(&global, a, true).await,
        Command::Untag(a) => commands::tag::tag(&global, a, false).await,
        Command::Note(a) => commands::note::note(&global, a).await,
        Command::Sweeps(SweepsCommand::Archive(a)) => {
            commands::sweeps::shelve(&global, &a.sweep, true).await
        }
        Command::Sweeps(SweepsCommand::Restore(a)) => {
            commands::sweeps::shelve(&global, &a.sweep, false).await
        }
        Command::Reconcile(a) => commands::reconcile::reconcile(&global, a).await,
        Command::Tasks(TasksCommand::List(a)) => commands::tasks::list(&global, a),
        Command::Score(a) => commands::score::score(&global, a),
        Command::Baselines(BaselinesCommand::Import(a)) => {
            commands::baselines::import(&global, a).await
        }
        Command::Baselines(BaselinesCommand::List(a)) => {
            commands::baselines::list(&global, a).await
        }
        Command::Models(ModelsCommand::Random(a)) => commands::models::random(&global, a),
        Command::Models(ModelsCommand::Pull(a)) => commands::models::pull(a),
        Command::Models(ModelsCommand::List) => commands::models::list(&global),
        Command::Serve(a) => commands::serve::serve(&global, a).await,
        Command::Users(UsersCommand::Add(a)) => commands::users::add(&global, a).await,
        Command::Users(UsersCommand::List(a)) => commands::users::list(&global, a).await,
        Command::Users(UsersCommand::Remove(a)) => commands::users::remove(&global, a).await,
        Command::Generate(a) => commands::generate::generate(&global, a),
        Command::Perplexity(a) => commands::perplexity::perplexity(&global, a),
    }
}
