//! Orchestrations: the authoring API and the replay engine behind it.

mod context;
mod entities;
mod entity_events;
mod events;
pub(crate) mod executor;
mod futures;
mod retry;
mod state;

pub use context::{CallOptions, OrchestrationContext};
pub use entities::{EntityLock, LockFuture};
pub use futures::{DurableFuture, LocalBoxFuture, WhenAll, WhenAny, when_all, when_any};
pub use retry::RetryPolicy;
pub use state::ParentInfo;

pub(crate) use futures::decode_json;
