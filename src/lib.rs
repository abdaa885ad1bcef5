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
    BaselinesCommand, Cli, Command, Global, Grouped, ModelsCommand, Options, SweepsCommand,
    TasksCommand, UsersCommand,
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
            let text = error_text(&e);
            eprintln!("error: {}", context::disk_full(&text).unwrap_or(text));
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
    // Each command's option groups become the settings' overrides (the others stay default).
    let with = |o: Options| Global {
        options: o,
        ..cli.global.clone()
    };
    match cli.command {
        Command::Run(a) => commands::run::run(&with(a.options()), a, &hooks).await,
        Command::Eval(a) => commands::eval::eval(&with(a.options()), a, &hooks).await,
        Command::Submit(a) => commands::submit::submit(&with(a.options()), a).await,
        Command::Worker(a) => commands::worker::worker(&with(a.options()), a, &hooks).await,
        Command::Status(a) => commands::status::status(&with(a.options()), a).await,
        Command::Cancel(a) => commands::cancel::cancel(&with(a.options()), a).await,
        Command::Retry(a) => commands::retry::retry(&with(a.options()), a).await,
        Command::Export(a) => commands::export::export(&with(a.options()), a).await,
        Command::Rescore(a) => commands::rescore::rescore(&with(a.options()), a).await,
        Command::Import(a) => commands::import::import(&with(a.options()), a).await,
        Command::Compare(a) => commands::compare::compare(&with(a.options()), a).await,
        Command::Report(a) => commands::report::report(&with(a.options()), a).await,
        Command::Migrate(a) => commands::migrate::migrate(&with(a.options()), a).await,
        Command::Tag(a) => commands::tag::tag(&with(a.options()), a, true).await,
        Command::Untag(a) => commands::tag::tag(&with(a.options()), a, false).await,
        Command::Note(a) => commands::note::note(&with(a.options()), a).await,
        Command::Sweeps(SweepsCommand::Archive(a)) => {
            commands::sweeps::shelve(&with(a.options()), &a.sweep, true).await
        }
        Command::Sweeps(SweepsCommand::Restore(a)) => {
            commands::sweeps::shelve(&with(a.options()), &a.sweep, false).await
        }
        Command::Reconcile(a) => commands::reconcile::reconcile(&with(a.options()), a).await,
        Command::Tasks(TasksCommand::List(a)) => commands::tasks::list(&with(a.options()), a),
        Command::Tasks(TasksCommand::Requests(a)) => commands::tasks::requests(a),
        Command::Tasks(TasksCommand::Score(a)) => commands::tasks::score(a),
        Command::Score(a) => commands::score::score(&with(a.options()), a),
        Command::Baselines(BaselinesCommand::Import(a)) => {
            commands::baselines::import(&with(a.options()), a).await
        }
        Command::Baselines(BaselinesCommand::List(a)) => {
            commands::baselines::list(&with(a.options()), a).await
        }
        Command::Models(ModelsCommand::Random(a)) => {
            commands::models::random(&with(a.options()), a)
        }
        Command::Models(ModelsCommand::Pull(a)) => commands::models::pull(a),
        Command::Models(ModelsCommand::List(a)) => commands::models::list(&with(a.options())),
        Command::Models(ModelsCommand::RenderChat(a)) => {
            commands::models::render_chat(&with(a.options()), a)
        }
        Command::Serve(a) => commands::serve::serve(&with(a.options()), a).await,
        Command::Users(UsersCommand::Add(a)) => commands::users::add(&with(a.options()), a).await,
        Command::Users(UsersCommand::List(a)) => commands::users::list(&with(a.options()), a).await,
        Command::Users(UsersCommand::Remove(a)) => {
            commands::users::remove(&with(a.options()), a).await
        }
        Command::Generate(a) => commands::generate::generate(&with(a.options()), a),
        Command::Perplexity(a) => commands::perplexity::perplexity(&with(a.options()), a),
    }
}
