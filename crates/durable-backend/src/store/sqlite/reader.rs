//! A read-only connection on its own thread for file databases: reads see the last commit (WAL snapshots) and
//! never wait behind, or hold up, the writer's commit groups.

use std::sync::mpsc;

use futures::FutureExt;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::store::StoreFuture;

type Job = Box<dyn FnOnce(&Connection) + Send>;

#[derive(Debug, Clone)]
pub(super) struct Reader {
    jobs: mpsc::Sender<Job>,
}

impl Reader {
    pub(super) fn spawn(conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "query_only", true)?;
        super::schema::stable_plans(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(128);
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("durable-reader".to_owned())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    job(&conn);
                }
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the reader thread: {e}")))?;
        Ok(Reader { jobs })
    }

    /// Runs `op` in one read transaction, so a multi-statement read sees one consistent snapshot.
    pub(super) fn run<T, F>(&self, op: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = (|| {
                conn.prepare_cached("BEGIN")?.execute([])?;
                let result = op(conn);
                conn.prepare_cached("COMMIT")?.execute([])?;
                result
            })();
            if result.is_err() && !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            let _ = reply.send(result);
        });
        if self.jobs.send(job).is_err() {
            return futures::future::ready(Err(StoreError::Closed)).boxed();
        }
        async move { answer.await.map_err(|_| StoreError::Closed)? }.boxed()
    }
}
