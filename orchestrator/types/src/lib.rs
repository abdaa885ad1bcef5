//! The small vocabulary shared by every nlebench crate, kept free of heavy dependencies so
//! that the engine and the metrics can use it without the store, the queue or each other:
//! where a model or dataset comes from ([`Source`]), the dtype and device a model runs on
//! ([`Dtype`], [`DeviceSpec`]), a computed metric ([`MetricValue`]), the Hugging Face
//! cache ([`HubSettings`]), and the retry policy of
//! every retry loop ([`Backoff`]).

mod backoff;
mod device;
mod dtype;
mod hub;
mod metric;
mod source;

pub use backoff::Backoff;
pub use device::{DeviceSpec, UnknownDevice};
pub use dtype::Dtype;
pub use hub::HubSettings;
pub use metric::MetricValue;
pub use source::{Source, SourceError};
