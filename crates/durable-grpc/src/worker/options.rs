//! Worker settings.

use std::time::Duration;

/// An optional protocol feature the worker tells the scheduler it supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// Orchestrator work items may arrive without history; the worker fetches it with `StreamInstanceHistory`.
    HistoryStreaming,
    /// Scheduled tasks.
    ScheduledTasks,
}

impl Capability {
    pub(crate) fn to_proto(self) -> i32 {
        (match self {
            Self::HistoryStreaming => durable_proto::WorkerCapability::HistoryStreaming,
            Self::ScheduledTasks => durable_proto::WorkerCapability::ScheduledTasks,
        }) as i32
    }
}

/// How much work a worker takes on and how it behaves on the stream.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerOptions {
    pub(crate) max_orchestrations: usize,
    pub(crate) max_activities: usize,
    pub(crate) max_entities: usize,
    pub(crate) capabilities: Vec<Capability>,
    pub(crate) work_item_filters: bool,
    pub(crate) shutdown_grace: Duration,
    pub(crate) silence_timeout: Duration,
    pub(crate) worker_id: Option<String>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            max_orchestrations: 100 * cores,
            max_activities: 100 * cores,
            max_entities: 100 * cores,
            capabilities: Vec::new(),
            work_item_filters: false,
            shutdown_grace: Duration::from_secs(30),
            silence_timeout: Duration::from_secs(120),
            worker_id: None,
        }
    }
}

impl WorkerOptions {
    /// Defaults: 100 concurrent items of each kind per CPU core, no extra capabilities (as the Python SDK), no
    /// filters, 30 s grace.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most this many orchestration turns at once (at least 1).
    pub fn with_max_concurrent_orchestrations(mut self, n: usize) -> Self {
        self.max_orchestrations = n.max(1);
        self
    }

    /// At most this many activities at once (at least 1).
    pub fn with_max_concurrent_activities(mut self, n: usize) -> Self {
        self.max_activities = n.max(1);
        self
    }

    /// At most this many entity batches at once (at least 1).
    pub fn with_max_concurrent_entities(mut self, n: usize) -> Self {
        self.max_entities = n.max(1);
        self
    }

    /// The capabilities to announce (replaces the default list).
    pub fn with_capabilities(mut self, capabilities: impl IntoIterator<Item = Capability>) -> Self {
        self.capabilities = capabilities.into_iter().collect();
        self
    }

    /// Asks the scheduler for only the orchestrators, activities and entities this worker's executor knows, so
    /// that several apps can share a task hub.
    pub fn with_work_item_filters(mut self, yes: bool) -> Self {
        self.work_item_filters = yes;
        self
    }

    /// How long shutdown waits for work in hand before abandoning it (default 30 s; at most
    /// [`MAX_TIMEOUT`](crate::MAX_TIMEOUT)).
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace.min(crate::MAX_TIMEOUT);
        self
    }

    /// How long the stream may stay silent (no work, no health ping) before the worker reconnects (default 120 s;
    /// at most [`MAX_TIMEOUT`](crate::MAX_TIMEOUT)).
    pub fn with_silence_timeout(mut self, timeout: Duration) -> Self {
        self.silence_timeout = timeout.min(crate::MAX_TIMEOUT);
        self
    }

    /// Overrides the `workerid` header (default `<host>,<pid>,<uuid>`).
    pub fn with_worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    pub(crate) fn max_i32(n: usize) -> i32 {
        i32::try_from(n).unwrap_or(i32::MAX)
    }
}

pub(crate) fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!(
        "{host},{},{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}
