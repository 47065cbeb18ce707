//! `Worker`: takes work items from the scheduler's stream and runs them through an [`Executor`].

mod dispatch;
mod executor;
mod options;
mod registry;

use std::sync::Arc;
use std::time::Duration;

use durable_proto as proto;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use crate::connection::{Connection, ConnectionOptions};
use crate::error::{Error, Result};
use dispatch::{Shared, dispatch};

pub use executor::{BoxFuture, Executor, ExecutorError};
pub use options::{Capability, WorkerOptions};

const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// After this many failed sessions in a row the channel itself is suspect (stale DNS, dead TLS session).
const RECREATE_CHANNEL_AFTER: u32 = 5;
/// After the grace period, abandoning what is left should be quick; this bounds it anyway.
const ABANDON_TIMEOUT: Duration = Duration::from_secs(10);

/// A worker, configured and not yet started.
pub struct Worker {
    connection: ConnectionOptions,
    executor: Arc<dyn Executor>,
    options: WorkerOptions,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("connection", &self.connection)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Worker`].
#[derive(Default)]
#[must_use]
pub struct WorkerBuilder {
    connection: Option<ConnectionOptions>,
    executor: Option<Arc<dyn Executor>>,
    options: WorkerOptions,
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("connection", &self.connection)
            .field("has_executor", &self.executor.is_some())
            .field("options", &self.options)
            .finish()
    }
}

impl WorkerBuilder {
    /// Where to take work from.
    pub fn connection(mut self, connection: ConnectionOptions) -> Self {
        self.connection = Some(connection);
        self
    }

    /// What runs the work items (a `durable_core::Registry`, or any other [`Executor`]).
    pub fn executor(mut self, executor: impl Executor) -> Self {
        self.executor = Some(Arc::new(executor));
        self
    }

    /// Runs work items with the engine: the registry's orchestrators, activities and entities.
    pub fn registry(self, registry: durable_core::Registry) -> Self {
        self.executor(registry)
    }

    /// Replaces every option at once.
    pub fn options(mut self, options: WorkerOptions) -> Self {
        self.options = options;
        self
    }

    /// See [`WorkerOptions::with_max_concurrent_orchestrations`].
    pub fn max_concurrent_orchestrations(mut self, n: usize) -> Self {
        self.options = self.options.with_max_concurrent_orchestrations(n);
        self
    }

    /// See [`WorkerOptions::with_max_concurrent_activities`].
    pub fn max_concurrent_activities(mut self, n: usize) -> Self {
        self.options = self.options.with_max_concurrent_activities(n);
        self
    }

    /// See [`WorkerOptions::with_max_concurrent_entities`].
    pub fn max_concurrent_entities(mut self, n: usize) -> Self {
        self.options = self.options.with_max_concurrent_entities(n);
        self
    }

    /// See [`WorkerOptions::with_capabilities`].
    pub fn capabilities(mut self, capabilities: impl IntoIterator<Item = Capability>) -> Self {
        self.options = self.options.with_capabilities(capabilities);
        self
    }

    /// See [`WorkerOptions::with_work_item_filters`].
    pub fn work_item_filters(mut self, yes: bool) -> Self {
        self.options = self.options.with_work_item_filters(yes);
        self
    }

    /// Checks that a connection and an executor were given.
    pub fn build(self) -> Result<Worker> {
        let connection = self
            .connection
            .ok_or_else(|| Error::InvalidArgument("the worker needs a connection".into()))?;
        let executor = self.executor.ok_or_else(|| {
            Error::InvalidArgument("the worker needs an executor (a registry)".into())
        })?;
        Ok(Worker {
            connection,
            executor,
            options: self.options,
        })
    }
}

/// A running worker. Dropping it leaves the worker running; call [`shutdown`](Self::shutdown) to stop it.
#[derive(Debug)]
pub struct WorkerHandle {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<()>>,
}

impl WorkerHandle {
    /// Stops taking work, waits up to the grace period for work in hand, abandons the rest, and returns.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(Error::Protocol(format!("the worker task failed: {e}"))),
        }
    }

    /// Whether the worker has stopped on its own (only a configuration error does that).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Worker {
    /// Starts building a worker.
    pub fn builder() -> WorkerBuilder {
        WorkerBuilder::default()
    }

    /// Spawns the worker on the current tokio runtime.
    pub fn start(self) -> WorkerHandle {
        let (shutdown, stop) = watch::channel(false);
        let task = tokio::spawn(self.run(stop));
        WorkerHandle { shutdown, task }
    }

    /// Runs until `shutdown` resolves, then drains as [`WorkerHandle::shutdown`] describes.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let (tx, stop) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        self.run(stop).await
    }

    async fn run(self, mut stop: watch::Receiver<bool>) -> Result<()> {
        let worker_id = self
            .options
            .worker_id
            .clone()
            .unwrap_or_else(options::default_worker_id);
        let mut connection = self.connection.connect(Some(&worker_id))?;
        let (hard_stop_tx, hard_stop) = watch::channel(false);
        let mut shared = Arc::new(Shared {
            connection: connection.clone(),
            executor: self.executor.clone(),
            orchestrations: Arc::new(Semaphore::new(self.options.max_orchestrations)),
            activities: Arc::new(Semaphore::new(self.options.max_activities)),
            entities: Arc::new(Semaphore::new(self.options.max_entities)),
            hard_stop,
        });
        let request = self.work_items_request();
        let mut tasks = JoinSet::new();
        let mut failures: u32 = 0;
        info!(
            endpoint = self.connection.endpoint(),
            worker_id, "worker starting"
        );
        loop {
            match session(&shared, &request, &self.options, &mut stop, &mut tasks).await {
                SessionEnd::Shutdown => break,
                SessionEnd::Failed { reason, received } => {
                    if received {
                        failures = 0;
                    }
                    failures += 1;
                    warn!(reason, failures, "work-item stream lost; reconnecting");
                    if failures.is_multiple_of(RECREATE_CHANNEL_AFTER) {
                        info!("recreating the gRPC channel");
                        connection = self.connection.connect(Some(&worker_id))?;
                        shared = Arc::new(Shared {
                            connection: connection.clone(),
                            executor: shared.executor.clone(),
                            orchestrations: shared.orchestrations.clone(),
                            activities: shared.activities.clone(),
                            entities: shared.entities.clone(),
                            hard_stop: shared.hard_stop.clone(),
                        });
                    }
                    let delay = backoff(failures);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
            }
        }
        info!(in_flight = tasks.len(), "worker stopping");
        let drained = tokio::time::timeout(self.options.shutdown_grace, drain(&mut tasks)).await;
        if drained.is_err() {
            warn!(
                left = tasks.len(),
                "grace period over; abandoning the remaining work items"
            );
            let _ = hard_stop_tx.send(true);
            if tokio::time::timeout(ABANDON_TIMEOUT, drain(&mut tasks))
                .await
                .is_err()
            {
                tasks.abort_all();
            }
        }
        drop(connection);
        Ok(())
    }

    fn work_items_request(&self) -> proto::GetWorkItemsRequest {
        let o = &self.options;
        let filters = o.work_item_filters.then(|| {
            let (orchestrators, activities, entities) = self.executor.names();
            let versions = self.executor.versions();
            proto::WorkItemFilters {
                orchestrations: orchestrators
                    .into_iter()
                    .map(|name| proto::OrchestrationFilter {
                        name,
                        versions: versions.clone(),
                    })
                    .collect(),
                activities: activities
                    .into_iter()
                    .map(|name| proto::ActivityFilter {
                        name,
                        versions: versions.clone(),
                    })
                    .collect(),
                entities: entities
                    .into_iter()
                    .map(|name| proto::EntityFilter {
                        name: name.to_lowercase(),
                    })
                    .collect(),
            }
        });
        proto::GetWorkItemsRequest {
            max_concurrent_orchestration_work_items: WorkerOptions::max_i32(o.max_orchestrations),
            max_concurrent_activity_work_items: WorkerOptions::max_i32(o.max_activities),
            max_concurrent_entity_work_items: WorkerOptions::max_i32(o.max_entities),
            capabilities: o.capabilities.iter().map(|c| c.to_proto()).collect(),
            work_item_filters: filters,
        }
    }
}

async fn drain(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// Jittered exponential backoff: uniform between a tenth of the cap and the cap (1 s doubling up to 30 s), so
/// reconnecting workers spread out without ever spinning.
fn backoff(failures: u32) -> Duration {
    let cap = BACKOFF_BASE
        .saturating_mul(1u32 << failures.saturating_sub(1).min(5))
        .min(BACKOFF_CAP);
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::random_range(millis / 10..=millis))
}

enum SessionEnd {
    Shutdown,
    Failed { reason: String, received: bool },
}

/// One connection's life: Hello, open the stream, dispatch until it ends, goes silent or shutdown is asked.
async fn session(
    shared: &Arc<Shared>,
    request: &proto::GetWorkItemsRequest,
    options: &WorkerOptions,
    stop: &mut watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> SessionEnd {
    let failed = |reason: String, received| SessionEnd::Failed { reason, received };
    let connection: &Connection = &shared.connection;
    let mut stub = connection.stub();
    let open = async {
        let hello = connection
            .request_with_timeout((), Some(HELLO_TIMEOUT))
            .await?;
        stub.hello(hello).await?;
        let call = connection.request(request.clone()).await?;
        Ok::<_, Error>(stub.get_work_items(call).await?.into_inner())
    };
    let mut stream = tokio::select! {
        opened = open => match opened {
            Ok(stream) => stream,
            Err(e) => return failed(format!("could not open the work-item stream: {e}"), false),
        },
        _ = stop.wait_for(|s| *s) => return SessionEnd::Shutdown,
    };
    debug!("work-item stream open");
    let mut received = false;
    loop {
        // Reap finished tasks so the set does not grow with every item ever processed.
        while tasks.try_join_next().is_some() {}
        let next = tokio::select! {
            next = tokio::time::timeout(options.silence_timeout, stream.message()) => next,
            _ = stop.wait_for(|s| *s) => return SessionEnd::Shutdown,
        };
        match next {
            Err(_) => {
                return failed(
                    format!("no message for {:?}", options.silence_timeout),
                    received,
                );
            }
            Ok(Err(status)) => {
                return failed(format!("stream error: {}", Error::from(status)), received);
            }
            Ok(Ok(None)) => return failed("the server closed the stream".into(), received),
            Ok(Ok(Some(item))) => {
                received = true;
                dispatch(shared, item, tasks);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for failures in 1..20 {
            let d = backoff(failures);
            assert!(d <= BACKOFF_CAP, "{failures}: {d:?}");
        }
        assert!(backoff(1) <= BACKOFF_BASE);
    }
}
