//! The gRPC fuzzer's parts (see `tests/fuzz_grpc.rs`).

pub(crate) mod apply;
pub(crate) mod calls;
pub(crate) mod strategies;

use std::time::Duration;

use durable_proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use tonic::transport::Channel;

pub(crate) type Client = TaskHubSidecarServiceClient<Channel>;

/// The payload limit of the fuzzed backends: small, so that sizes around it are cheap.
pub(crate) const LIMIT: usize = 2048;
/// Any single call taking longer than this is a hang.
pub(crate) const CALL: Duration = Duration::from_secs(15);
/// How long a worker waits for more work before it moves on (not a check: nothing is asserted about it).
pub(crate) const IDLE: Duration = Duration::from_millis(40);
