//! `nlebench`: run and track evaluations of generative language models on NLEBench.

fn main() -> std::process::ExitCode {
    nlebench::main()
}
