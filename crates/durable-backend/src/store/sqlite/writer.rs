//! The single writer thread and its group commit.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use futures::FutureExt;
use rusqlite::Connection;
use std::sync::Arc;

use tokio::sync::{broadcast, oneshot};

use super::{changes, leases};
use crate::store::Changes;

use crate::error::StoreError;
use crate::store::StoreFuture;

/// Called after the group's commit with the commit's error, if any, to answer the waiting caller.
type Finisher = Box<dyn FnOnce(Option<&StoreError>) + Send>;
/// Given the connection inside an open transaction, or the error that prevented opening one.
type Job = Box<dyn FnOnce(Result<&Connection, &StoreError>) -> Finisher + Send>;

#[derive(Debug, Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn spawn(
        conn: Connection,
        max_batch: usize,
        notify: broadcast::Sender<Arc<Changes>>,
        table: leases::Leases,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("durable-writer".to_owned())
            .spawn(move || {
                leases::install(table);
                run(conn, queue, max_batch, notify)
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `op` inside the next group transaction (in its own savepoint, so a failing operation does not undo the
    /// others) and resolves once that transaction is committed.
    pub(super) fn run<T, F>(&self, op: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => in_savepoint(conn, op),
                Err(e) => Err(e.clone()),
            };
            Box::new(move |commit_error: Option<&StoreError>| {
                let _ = reply.send(match commit_error {
                    Some(e) => Err(e.clone()),
                    None => result,
                });
            })
        });
        if self.jobs.send(job).is_err() {
            return futures::future::ready(Err(StoreError::Closed)).boxed();
        }
        async move { answer.await.map_err(|_| StoreError::Closed)? }.boxed()
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.prepare_cached("SAVEPOINT op")?.execute([])?;
    let mark = leases::mark();
    let result = op(conn);
    if let Err(e) = &result {
        leases::roll_back_to(mark);
        if conn.is_autocommit() {
            // SQLite already rolled the whole group back (disk full, I/O error, out of memory): there is no
            // savepoint left to undo, and this operation's own error is the one worth reporting.
            tracing::error!(error = %e, "a store operation failed and SQLite rolled back its commit group");
            return result;
        }
        conn.prepare_cached("ROLLBACK TO op")?.execute([])?;
    }
    conn.prepare_cached("RELEASE op")?.execute([])?;
    result
}

fn run(
    conn: Connection,
    queue: mpsc::Receiver<Job>,
    max_batch: usize,
    notify: broadcast::Sender<Arc<Changes>>,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
        {
            let error = StoreError::from(e);
            for job in batch {
                job(Err(&error))(None);
            }
            continue;
        }
        let ran = catch_unwind(AssertUnwindSafe(|| {
            batch
                .into_iter()
                .map(|job| job(Ok(&conn)))
                .collect::<Vec<_>>()
        }));
        match ran {
            Ok(finishers) => {
                let commit = if conn.is_autocommit() {
                    // An operation's failure made SQLite roll the group back: nothing of it was kept.
                    Err(StoreError::Internal(
                        "the operation's commit group was rolled back after a storage failure"
                            .to_owned(),
                    ))
                } else {
                    conn.prepare_cached("COMMIT")
                        .and_then(|mut s| s.execute([]))
                        .map(|_| ())
                        .map_err(StoreError::from)
                };
                if commit.is_err() {
                    let _ = conn.execute_batch("ROLLBACK");
                    leases::roll_back_to(0);
                } else {
                    leases::keep();
                }
                let touched = changes::take();
                for finish in finishers {
                    finish(commit.as_ref().err());
                }
                if commit.is_ok() && !touched.is_empty() {
                    // Nobody listening is fine: the service subscribes before it serves.
                    let _ = notify.send(Arc::new(touched));
                }
            }
            Err(_) => {
                // A bug in an operation: undo the whole group; the callers whose answers were lost see Closed.
                tracing::error!("a store operation panicked; its commit group was rolled back");
                let _ = conn.execute_batch("ROLLBACK");
                leases::roll_back_to(0);
                let _ = changes::take();
            }
        }
    }
}
