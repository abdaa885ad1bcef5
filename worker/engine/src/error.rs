//! Errors of the inference engine, each saying what is wrong and how to fix it.

use std::path::PathBuf;

/// An engine error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A local model directory does not exist.
    #[error(
        "model directory {0} does not exist\n  fix: correct the `path:` source or create the model there"
    )]
    ModelDirMissing(PathBuf),
    /// A required file is missing from a model directory.
    #[error("{dir} has no {file}\n  fix: {fix}")]
    MissingFile {
        /// The model directory.
        dir: PathBuf,
        /// The missing file.
        file: String,
        /// How to fix it.
        fix: String,
    },
    /// config.json names an architecture the engine does not implement.
    #[error(
        "{path}: model_type `{model_type}` is not supported; supported: {supported}\n  fix: use a model of a supported architecture"
    )]
    UnknownModelType {
        /// config.json.
        path: PathBuf,
        /// The model_type found.
        model_type: String,
        /// Comma-separated supported types.
        supported: String,
    },
    /// A valid config names a feature this engine does not implement.
    #[error(
        "{path}: {feature} is not supported by this version of nlebench (supported: {supported})\n  fix: evaluate a model without it; the file itself is valid"
    )]
    Unsupported {
        /// config.json.
        path: PathBuf,
        /// The feature, as the file names it.
        feature: String,
        /// What is supported instead.
        supported: String,
    },
    /// config.json could not be read or lacks a key.
    #[error(
        "{path}: {message}\n  fix: repair config.json (it must be the Hugging Face config of the model)"
    )]
    Config {
        /// config.json.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A weights file is corrupt or truncated.
    #[error(
        "{path}: corrupt or truncated safetensors file: {message}\n  fix: delete the file, then download or convert the model again (a random-weight model is written again by itself)"
    )]
    CorruptWeights {
        /// The weights file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// Weights do not fit the config (missing tensor, wrong shape).
    #[error(
        "{dir}: the weights do not match config.json: {message}\n  fix: make sure config.json and the safetensors files belong to the same model"
    )]
    Weights {
        /// The model directory.
        dir: PathBuf,
        /// candle's message.
        message: String,
    },
    /// tokenizer.json could not be read.
    #[error(
        "{path}: cannot read the tokenizer: {message}\n  fix: provide the model's tokenizer.json (Hugging Face tokenizers format)"
    )]
    Tokenizer {
        /// tokenizer.json.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// The tokenizer produces ids the model has no embedding for.
    #[error(
        "{dir}: the tokenizer has {tokenizer} entries but the model's vocabulary has only {model} (vocab_size in config.json), so token ids up to {max_id} would have no embedding\n  fix: use the tokenizer that belongs to the model"
    )]
    VocabMismatch {
        /// The model directory.
        dir: PathBuf,
        /// Tokenizer vocabulary size (with added tokens).
        tokenizer: usize,
        /// Model vocabulary size.
        model: usize,
        /// Largest token id.
        max_id: usize,
    },
    /// A Hub model is not in the local cache and could not be downloaded.
    #[error(
        "{repo}@{revision} is not in the local Hugging Face cache ({cache}) and could not be downloaded: {message}\n  fix: run `nlebench models pull hf:{repo}@{revision}` on a machine with network access to the Hub, or copy its cache folder to {cache}"
    )]
    NotAvailable {
        /// `ORG/NAME`.
        repo: String,
        /// Revision asked for.
        revision: String,
        /// The cache directory.
        cache: PathBuf,
        /// Why the download failed.
        message: String,
    },
    /// A random-model preset does not exist.
    #[error("unknown random-model preset `{0}`; presets: {1}\n  fix: use one of the presets")]
    UnknownPreset(String, String),
    /// A text to score has no tokens.
    #[error(
        "text {index} is empty, so it has no perplexity\n  fix: remove empty rows from the dataset"
    )]
    EmptyText {
        /// Position of the text in its batch input.
        index: usize,
    },
    /// An adapter that cannot be used with this base.
    #[error("adapter {dir}: {message}\n  fix: {fix}")]
    Adapter {
        /// The adapter directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// Generation parameters that cannot work.
    #[error("generation: {0}\n  fix: correct the decoding parameters")]
    Generation(String),
    /// File-system error.
    #[error("{path}: {source}\n  fix: {fix}", fix = io_fix(.source, .path))]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Tensor computation error.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Result of engine operations.
pub type Result<T> = std::result::Result<T, EngineError>;

/// What to do about a file-system error at `path`: free space, make a directory writable (a
/// generated model's, under the data directory), or check that the file is there.
fn io_fix(e: &std::io::Error, path: &std::path::Path) -> String {
    use std::io::ErrorKind;
    let dir = path.parent().unwrap_or(path).display();
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            format!("free space on the disk that holds {dir}, then run the command again")
        }
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => format!(
            "make {dir} writable (and readable), or choose another data directory with NLEBENCH_DATA_DIR / --data-dir"
        ),
        ErrorKind::NotFound => format!("check that {} exists", path.display()),
        _ => format!("check {} and the disk it is on", path.display()),
    }
}
