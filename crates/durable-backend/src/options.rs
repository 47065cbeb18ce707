//! Start-up options of the backend.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The longest lease or ping interval accepted: longer ones are refused when the backend starts.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where the store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Storage {
    /// A SQLite database in memory: gone when the backend stops. Tests and benchmarks.
    InMemory,
    /// A SQLite database file (created with its parent directory when missing).
    File(PathBuf),
}

/// SQLite's `synchronous` setting: how hard each commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Synchronous {
    /// fsync on every commit, including the WAL: a committed turn survives power loss. The default.
    Full,
    /// fsync at checkpoints only: a committed turn survives a process crash but maybe not power loss.
    Normal,
    /// No fsync at all: for throwaway benchmarks.
    Off,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
            Synchronous::Off => "OFF",
        }
    }
}

/// The shape of entity work items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntityFormat {
    /// `entityRequest` (`EntityBatchRequest`): understood by every Durable Task SDK. The default, because a
    /// worker has no way to say it prefers the other one.
    Batch,
    /// `entityRequestV2` (`EntityRequest` with the operations as history events), as the scheduler sends.
    V2,
}

/// How to run the backend. Build with [`Options::new`] and the `with_*` methods.
///
/// ```
/// use durable_backend::Options;
/// let options = Options::new().in_memory().with_bind("127.0.0.1:0".parse().unwrap());
/// assert_eq!(options.default_hub(), "default");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    pub(crate) storage: Storage,
    pub(crate) synchronous: Synchronous,
    pub(crate) bind: SocketAddr,
    pub(crate) default_hub: String,
    pub(crate) task_hubs: Vec<String>,
    pub(crate) max_payload_bytes: usize,
    pub(crate) orchestration_lease: Duration,
    pub(crate) activity_lease: Duration,
    pub(crate) entity_lease: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) max_entity_batch: usize,
    pub(crate) history_streaming_threshold: usize,
    pub(crate) entity_format: EntityFormat,
    pub(crate) default_max_concurrency: usize,
    pub(crate) max_commit_batch: usize,
    pub(crate) max_chunked_turn_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Options {
    /// Defaults like the scheduler emulator: `127.0.0.1:8080`, hub `default`, file `./.durable/backend.db`,
    /// 1 MB payloads, 5 minute leases, a health ping every 30 s.
    pub fn new() -> Self {
        Options {
            storage: Storage::File(PathBuf::from(".durable/backend.db")),
            synchronous: Synchronous::Full,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            default_hub: "default".to_owned(),
            task_hubs: Vec::new(),
            max_payload_bytes: 1024 * 1024,
            orchestration_lease: Duration::from_secs(300),
            activity_lease: Duration::from_secs(300),
            entity_lease: Duration::from_secs(300),
            ping_interval: Duration::from_secs(30),
            max_entity_batch: 50,
            history_streaming_threshold: 2 * 1024 * 1024,
            entity_format: EntityFormat::Batch,
            default_max_concurrency: 100,
            max_commit_batch: 256,
            max_chunked_turn_bytes: crate::server::MAX_MESSAGE_BYTES,
        }
    }

    /// Keep everything in memory.
    pub fn in_memory(mut self) -> Self {
        self.storage = Storage::InMemory;
        self
    }

    /// Keep everything in this SQLite file.
    pub fn with_db_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.storage = Storage::File(path.into());
        self
    }

    /// Choose the storage explicitly.
    pub fn with_storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// SQLite's `synchronous` mode (default [`Synchronous::Full`]).
    pub fn with_synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// The address to listen on; port 0 picks a free port (see [`crate::Handle::local_addr`]).
    pub fn with_bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The hub used when a call carries no `taskhub` header (default `default`).
    pub fn with_default_hub(mut self, hub: impl Into<String>) -> Self {
        self.default_hub = hub.into();
        self
    }

    /// Hubs created at start-up (like the emulator's `DTS_TASK_HUB_NAMES`). Other hubs are created on first use.
    pub fn with_task_hubs<I, S>(mut self, hubs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.task_hubs = hubs.into_iter().map(Into::into).collect();
        self
    }

    /// The largest accepted payload (input, output, event data, entity state), in bytes. Default 1 MiB.
    pub fn with_max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// How long a worker may hold an orchestration work item before it is handed out again (above zero, at most
    /// [`MAX_DURATION`]).
    pub fn with_orchestration_lease(mut self, lease: Duration) -> Self {
        self.orchestration_lease = lease;
        self
    }

    /// How long a worker may hold an activity work item before it is handed out again (above zero, at most
    /// [`MAX_DURATION`]).
    pub fn with_activity_lease(mut self, lease: Duration) -> Self {
        self.activity_lease = lease;
        self
    }

    /// How long a worker may hold an entity work item before it is handed out again (above zero, at most
    /// [`MAX_DURATION`]).
    pub fn with_entity_lease(mut self, lease: Duration) -> Self {
        self.entity_lease = lease;
        self
    }

    /// How often an idle work-item stream gets a health ping (default 30 s; SDKs reconnect after 120 s of silence;
    /// at most [`MAX_DURATION`]).
    pub fn with_ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// The most queued operations put into one entity work item (default 50).
    pub fn with_max_entity_batch(mut self, operations: usize) -> Self {
        self.max_entity_batch = operations;
        self
    }

    /// Past histories larger than this (bytes) go to workers that advertise `HISTORY_STREAMING` through
    /// `StreamInstanceHistory` instead of inside the work item (default 2 MiB, well under gRPC's 4 MB default).
    pub fn with_history_streaming_threshold(mut self, bytes: usize) -> Self {
        self.history_streaming_threshold = bytes;
        self
    }

    /// The entity work-item format (default [`EntityFormat::Batch`]); [`EntityFormat::V2`] exercises a worker's
    /// scheduler-format path.
    pub fn with_entity_format(mut self, format: EntityFormat) -> Self {
        self.entity_format = format;
        self
    }

    /// In-flight work items per kind for a stream whose request leaves `maxConcurrent*` at 0 (default 100).
    pub fn with_default_max_concurrency(mut self, items: usize) -> Self {
        self.default_max_concurrency = items;
        self
    }

    /// The most queued store operations committed in one SQLite transaction (group commit; default 256).
    pub fn with_max_commit_batch(mut self, operations: usize) -> Self {
        self.max_commit_batch = operations;
        self
    }

    /// The most bytes of actions one orchestrator turn may send in chunks (`isPartial` completions) before its
    /// last chunk (default 64 MiB, the largest gRPC message the backend accepts, so a chunked turn can be as large as
    /// a whole one and no larger). A turn whose chunks add up to more fails the orchestration with
    /// `PayloadTooLarge`, and the chunk that crossed the bound is refused with `RESOURCE_EXHAUSTED`.
    pub fn with_max_chunked_turn_bytes(mut self, bytes: usize) -> Self {
        self.max_chunked_turn_bytes = bytes;
        self
    }

    /// Where data is kept.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The hub used when a call names none.
    pub fn default_hub(&self) -> &str {
        &self.default_hub
    }

    /// The address the server will bind.
    pub fn bind(&self) -> SocketAddr {
        self.bind
    }

    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        let bad = |m: &str| Err(crate::Error::InvalidOption(m.to_owned()));
        if self.default_hub.trim().is_empty() {
            return bad("the default task hub name is empty");
        }
        if self.task_hubs.iter().any(|h| h.trim().is_empty()) {
            return bad("a task hub name is empty");
        }
        if self.max_payload_bytes == 0 {
            return bad("the payload limit must be above zero");
        }
        if self.ping_interval.is_zero() || self.ping_interval > MAX_DURATION {
            return bad("the ping interval must be above zero and at most 365 days");
        }
        if [
            self.orchestration_lease,
            self.activity_lease,
            self.entity_lease,
        ]
        .iter()
        .any(|d| d.is_zero() || *d > MAX_DURATION)
        {
            return bad("lease durations must be above zero and at most 365 days");
        }
        if self.max_chunked_turn_bytes == 0 {
            return bad("the chunked turn limit must be above zero");
        }
        if self.max_entity_batch == 0
            || self.default_max_concurrency == 0
            || self.max_commit_batch == 0
        {
            return bad("batch sizes and concurrency limits must be above zero");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_past_the_maximum_are_refused() {
        assert!(Options::new().validate().is_ok());
        let longest = Options::new()
            .with_ping_interval(MAX_DURATION)
            .with_orchestration_lease(MAX_DURATION)
            .with_activity_lease(MAX_DURATION)
            .with_entity_lease(MAX_DURATION);
        assert!(longest.validate().is_ok());
        let too_long = [
            Options::new().with_ping_interval(Duration::MAX),
            Options::new().with_orchestration_lease(Duration::MAX),
            Options::new().with_activity_lease(MAX_DURATION + Duration::from_secs(1)),
            Options::new().with_entity_lease(Duration::MAX),
            Options::new().with_entity_lease(Duration::ZERO),
            Options::new().with_max_chunked_turn_bytes(0),
        ];
        for options in too_long {
            let refused = options.validate().unwrap_err();
            assert!(
                matches!(refused, crate::Error::InvalidOption(_)),
                "{refused}"
            );
        }
    }
}
