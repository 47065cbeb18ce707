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
/// Given the connection inside an open transaction, or the error that prevented opening one. With the finisher it
/// says whether the group can still be committed: an operation run without a savepoint that failed after writing
/// leaves changes in the transaction that nothing can take back but rolling the whole group back.
type Job = Box<dyn FnOnce(Result<&Connection, &StoreError>) -> (Finisher, Intact) + Send>;

/// Whether the group's transaction holds only what its operations meant to write.
type Intact = bool;

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
        self.submit(move |conn| (in_savepoint(conn, op), true))
    }

    /// Like [`Writer::run`] but without a savepoint, for the operations every work item runs (completions). A
    /// savepoint makes SQLite copy each page the operation is the first to change into its sub-journal, and once
    /// one operation of the group has copied more than the in-memory limit that journal is a file: every later
    /// page of the group was then a `pwrite` of its own, about a quarter of the writer's time. Such an operation
    /// must do whatever it can fail on for its caller's reasons (stale lease, bad request) before its first write;
    /// if it fails after writing anyway (a storage error), the whole group is rolled back and every caller in it
    /// gets an error, none an acknowledgement.
    pub(super) fn run_unguarded<T, F>(&self, op: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(move |conn| unguarded(conn, op))
    }

    fn submit<T, F>(&self, op: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> (Result<T, StoreError>, Intact) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let (result, intact) = match conn {
                Ok(conn) => op(conn),
                Err(e) => (Err(e.clone()), true),
            };
            let finish: Finisher = Box::new(move |commit_error: Option<&StoreError>| {
                let _ = reply.send(match (commit_error, result) {
                    // The operation's own failure says more than the group's that it caused or shared.
                    (Some(_), Err(own)) => Err(own),
                    (Some(e), Ok(_)) => Err(e.clone()),
                    (None, result) => result,
                });
            });
            (finish, intact)
        });
        if self.jobs.send(job).is_err() {
            return futures::future::ready(Err(StoreError::Closed)).boxed();
        }
        async move { answer.await.map_err(|_| StoreError::Closed)? }.boxed()
    }
}

fn unguarded<T>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> (Result<T, StoreError>, Intact) {
    let mark = leases::mark();
    let before = conn.total_changes();
    let result = op(conn);
    if result.is_err() {
        leases::roll_back_to(mark);
        // A statement that fails undoes its own rows, so an unchanged count means the operation wrote nothing.
        if conn.total_changes() != before {
            tracing::error!(
                "a store operation failed after writing; its commit group is rolled back"
            );
            return (result, false);
        }
    }
    (result, true)
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
                job(Err(&error)).0(None);
            }
            continue;
        }
        let ran = catch_unwind(AssertUnwindSafe(|| {
            let mut spoiled: Option<StoreError> = None;
            let finishers = batch
                .into_iter()
                .map(|job| {
                    // Operations after a spoiled one are not run: the group will not be committed.
                    let (finish, intact) = match &spoiled {
                        Some(e) => job(Err(e)),
                        None => job(Ok(&conn)),
                    };
                    if spoiled.is_none() && !intact {
                        spoiled = Some(StoreError::Internal(
                            "an operation of the commit group failed after writing; the group was rolled back"
                                .to_owned(),
                        ));
                    } else if spoiled.is_none() && conn.is_autocommit() {
                        // SQLite rolled the group back (disk full, I/O error): a later operation would run
                        // outside any transaction, each statement committed on its own.
                        spoiled = Some(StoreError::Internal(
                            "the operation's commit group was rolled back after a storage failure"
                                .to_owned(),
                        ));
                    }
                    finish
                })
                .collect::<Vec<_>>();
            (finishers, spoiled)
        }));
        match ran {
            Ok((finishers, spoiled)) => {
                let commit = if let Some(e) = spoiled {
                    Err(e)
                } else if conn.is_autocommit() {
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use futures::executor::block_on;
    use rusqlite::Connection;
    use tokio::sync::broadcast;

    use super::Writer;
    use crate::error::StoreError;
    use crate::store::sqlite::leases::Leases;

    /// A writer over a table `t`, with a first operation that holds the thread until `release` is sent, so that
    /// whatever is submitted meanwhile forms the next commit group together.
    fn held_writer() -> (Writer, mpsc::Sender<()>) {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .expect("schema");
        let writer =
            Writer::spawn(conn, 64, broadcast::channel(4).0, Leases::default()).expect("writer");
        let (release, hold) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel::<()>();
        drop(writer.run(move |_| {
            let _ = started.send(());
            let _ = hold.recv();
            Ok(())
        }));
        running.recv().expect("the first operation runs");
        (writer, release)
    }

    fn insert(c: &Connection, x: i64) -> Result<(), StoreError> {
        c.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
        Ok(())
    }

    fn rows(writer: &Writer) -> i64 {
        block_on(writer.run(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)))
            .expect("count")
    }

    #[test]
    fn an_unguarded_operation_that_fails_after_writing_rolls_its_whole_group_back() {
        let (writer, release) = held_writer();
        let before = writer.run(|c| insert(c, 1));
        let failing = writer.run_unguarded(|c| {
            insert(c, 2)?;
            Err::<(), _>(StoreError::InvalidArgument("after a write".into()))
        });
        let after = writer.run(|c| insert(c, 3));
        release.send(()).expect("release");
        assert!(matches!(
            block_on(failing),
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(block_on(before).is_err(), "its group was not committed");
        assert!(block_on(after).is_err(), "its group was not committed");
        assert_eq!(rows(&writer), 0);
        // The writer goes on with the next group.
        block_on(writer.run(|c| insert(c, 4))).expect("a later group commits");
        assert_eq!(rows(&writer), 1);
    }

    #[test]
    fn an_unguarded_operation_that_fails_before_writing_leaves_its_group_alone() {
        let (writer, release) = held_writer();
        let before = writer.run(|c| insert(c, 1));
        let failing = writer.run_unguarded(|c| {
            // A statement that fails undoes itself: nothing of this operation is in the transaction.
            insert(c, 1)?;
            Ok(())
        });
        let unguarded = writer.run_unguarded(|c| insert(c, 2));
        let after = writer.run(|c| insert(c, 3));
        release.send(()).expect("release");
        assert!(block_on(failing).is_err(), "the key is taken");
        block_on(before).expect("committed");
        block_on(unguarded).expect("committed");
        block_on(after).expect("committed");
        assert_eq!(rows(&writer), 3);
    }
}
