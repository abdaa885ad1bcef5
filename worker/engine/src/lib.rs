//! The candle inference engine: model loading from local dirs, the HF cache or the Hub,
//! GPT-2 (NorGPT), GPT-J and the Llama family (Llama 1–3, Mistral, Mixtral, Qwen2/3, Gemma 2/3), batched log-likelihood scoring and perplexity, a model cache, and
//! deterministic random-weight models.

pub mod bert;
pub mod cache;
pub mod config;
pub mod content;
pub mod continuous;
pub mod device;
pub mod error;
pub mod files;
pub mod generate;
pub mod gpt2;
pub mod gptj;
pub mod hub;
pub mod kernels;
pub mod layers;
pub mod llama;
pub mod lora;
pub mod metric_models;
pub mod model;
pub mod random;
pub mod rope;
pub mod scoring;
pub mod weights;

pub use cache::ModelCache;
pub use continuous::{Request, generate_continuous};
pub use error::{EngineError, Result};
pub use files::{Locations, ModelFiles, locate};
pub use generate::{Generation, GenerationConfig, StopReason, generate};
pub use metric_models::LastHiddenState;
pub use model::LoadedModel;
pub use scoring::{
    BatchSize, ContinuationScore, Layout, Scoring, TextScore, classify, continuation_logprobs,
    perplexities, perplexities_of_ids,
};

/// Version of the engine; part of every run's fingerprint. Raised whenever outputs can change:
/// 0.2.0 ran the linear layers through `nlebench-linear`'s ordered sums, which moved
/// perplexities by about 1e-6 relative; 0.3.0 runs CPU f32 attention through
/// `nlebench-attention`'s FMA chains over the keys each query sees, which moves them in the last
/// bits and could flip a greedy token at a near tie; 0.4.0 runs CPU bf16 and f16 through weights
/// packed in their dtype with f32 sums and through the f32 attention kernel (f32 outputs are
/// unchanged). Runs of an older version are not reused for new ones.
pub const ENGINE_VERSION: &str = "0.4.0";
