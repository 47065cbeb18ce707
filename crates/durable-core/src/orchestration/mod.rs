//! Orchestrations: the authoring API and the replay engine behind it.

mod calls;
mod context;
mod entities;
mod entity_events;
mod events;
pub(crate) mod executor;
mod futures;
mod retry;
mod rewind;
mod state;

pub use calls::CallOptions;
pub use context::{ContinueAsNewOptions, OrchestrationContext};
pub use entities::{EntityLock, LockFuture};
pub use futures::{DurableFuture, LocalBoxFuture, WhenAll, WhenAny, when_all, when_any};
pub use retry::RetryPolicy;
pub use state::ParentInfo;

pub(crate) use futures::decode_json;
