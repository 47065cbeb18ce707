//! The Durable Task sidecar protocol (`TaskHubSidecarService`) as Rust types.
//!
//! The `.proto` in this crate is wire-compatible with the protocol spoken by the Durable Task Scheduler, its emulator
//! and Microsoft's Durable Task SDKs. It has no `package`, so method paths are `/TaskHubSidecarService/<Method>`.
//!
//! `google.protobuf.StringValue` fields map to `Option<String>`: `None` is "absent", `Some("")` is "empty", and the
//! two are different on the wire.
//!
//! The messages depend on prost alone. The tonic stubs come with features: `client` adds
//! `task_hub_sidecar_service_client`, `server` adds `task_hub_sidecar_service_server`.

#![allow(
    missing_docs,
    clippy::all,
    unreachable_pub,
    missing_debug_implementations
)]

include!(concat!(env!("OUT_DIR"), "/_.rs"));

pub use prost;
pub use prost_types;

#[cfg(any(feature = "client", feature = "server"))]
pub mod codec;

/// The fully qualified gRPC service name (no package).
pub const SERVICE_NAME: &str = "TaskHubSidecarService";

/// Prefix of every method path of the service.
pub const METHOD_PATH_PREFIX: &str = "/TaskHubSidecarService/";

impl OrchestrationStatus {
    /// Whether an instance in this status will not run again without an outside action (restart, rewind).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Canceled | Self::Terminated
        )
    }
}
