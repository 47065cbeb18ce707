//! A per-statement profile of the writer's connection, to find where the writer thread's time goes.
//!
//! It is off unless `DURABLE_STATEMENT_PROFILE` is set (to anything but empty or `0`) when the store opens. Then
//! SQLite reports each statement's time as it finishes (`SQLITE_TRACE_PROFILE`). The calls and times are summed by
//! the statement's SQL text (parameters, never values). The table goes to stderr when the store's last handle is
//! dropped, which a backend's shutdown does before it returns.
//!
//! A statement's time runs from its first step to its end, in wall-clock time. A statement kept open while others
//! run includes their time: the lease walks read each item they hand out as they go. A statement whose thread was
//! switched out includes that wait too. SQLite reads its clock to the millisecond for this, so each call counts
//! as 0, 1 or more whole milliseconds: over thousands of calls the sum is a fair estimate (a call spans a
//! millisecond boundary as often as its length makes it likely), while the figures of a statement run a few times
//! mean nothing. Profiling costs a lock and a hash of the SQL text per statement.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::trace::{TraceEvent, TraceEventCodes};

use crate::error::StoreError;

/// The environment variable that switches the profile on.
const ENV: &str = "DURABLE_STATEMENT_PROFILE";

/// Whether the environment asks for a profile.
fn wanted() -> bool {
    std::env::var_os(ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Calls and total time per statement.
#[derive(Debug, Default)]
pub(super) struct Totals {
    by_sql: HashMap<String, (u64, Duration)>,
}

impl Totals {
    fn add(&mut self, sql: &str, took: Duration) {
        match self.by_sql.get_mut(sql) {
            Some((calls, total)) => {
                *calls += 1;
                *total += took;
            }
            None => {
                self.by_sql.insert(sql.to_owned(), (1, took));
            }
        }
    }

    /// Calls of the statement whose SQL text is `sql`.
    #[cfg(test)]
    fn calls(&self, sql: &str) -> u64 {
        self.by_sql.get(sql).map_or(0, |(calls, _)| *calls)
    }

    /// A Markdown table, the most total time first: calls, total, time per call, and the statement with its
    /// whitespace collapsed and cut at 120 characters.
    pub(super) fn table(&self) -> String {
        let mut rows: Vec<_> = self.by_sql.iter().collect();
        rows.sort_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(b.0)));
        let mut out =
            String::from("| calls | total ms | us per call | statement |\n|---:|---:|---:|---|\n");
        for (sql, (calls, total)) in rows {
            let text: String = sql
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(120)
                .collect();
            let _ = writeln!(
                out,
                "| {calls} | {:.1} | {:.1} | `{}` |",
                total.as_secs_f64() * 1e3,
                total.as_secs_f64() * 1e6 / *calls as f64,
                text.replace('|', "\\|")
            );
        }
        out
    }
}

/// Prints the table when the store's last handle is dropped. The store holds it, not the connection: the writer
/// thread closes its connection on its own time, which a process that exits right after its shutdown would not wait
/// for.
#[derive(Debug)]
pub(super) struct Report {
    totals: Arc<Mutex<Totals>>,
}

impl Drop for Report {
    fn drop(&mut self) {
        let totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        eprintln!(
            "statement profile of the store's writer connection:\n{}",
            totals.table()
        );
    }
}

/// When the environment asks for it, profiles `conn` and returns what prints the table.
pub(super) fn start(conn: &mut Connection) -> Result<Option<Arc<Report>>, StoreError> {
    if !wanted() {
        return Ok(None);
    }
    let totals = Arc::new(Mutex::new(Totals::default()));
    install(conn, totals.clone())?;
    Ok(Some(Arc::new(Report { totals })))
}

/// Sums every statement `conn` runs into `totals`.
fn install(conn: &mut Connection, totals: Arc<Mutex<Totals>>) -> Result<(), StoreError> {
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_PROFILE,
        Some(move |event: TraceEvent<'_>| {
            if let TraceEvent::Profile(statement, took) = event {
                totals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .add(&statement.sql(), took);
            }
        }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_of_a_statement_is_counted_under_its_sql_text() {
        let totals = Arc::new(Mutex::new(Totals::default()));
        let mut c = Connection::open_in_memory().unwrap();
        install(&mut c, totals.clone()).unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT)")
            .unwrap();
        let insert = "INSERT INTO t (y) VALUES (?1)";
        for i in 0..5 {
            c.prepare_cached(insert)
                .unwrap()
                .execute([format!("secret-{i}")])
                .unwrap();
        }
        let count = "SELECT COUNT(*) FROM t";
        let n: i64 = c.query_row(count, [], |r| r.get(0)).unwrap();
        assert_eq!(n, 5);
        drop(c);
        let totals = totals.lock().unwrap();
        assert_eq!(totals.calls(insert), 5);
        assert_eq!(totals.calls(count), 1);
        let table = totals.table();
        assert!(table.contains("| 5 | "), "{table}");
        assert!(table.contains("`INSERT INTO t (y) VALUES (?1)`"), "{table}");
        assert!(
            !table.contains("secret"),
            "values must not reach the table: {table}"
        );
    }
}
