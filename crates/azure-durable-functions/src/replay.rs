//! `replay-check` and `export-histories`: the replay check of `durable-core` as commands, over histories fetched
//! from a backend or read from export files.

use std::path::{Path, PathBuf};

use durable_core::Registry;
use durable_core::replay_check::{
    RecordedHistory, ReplayCheckOptions, ReplayCheckReport, check_histories, read_export,
};
use durable_grpc::{ConnectionOptions, DurableClient, InstanceQuery, OrchestrationStatus};

use crate::error::Error;

/// Which instances to fetch from a backend.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct HistorySelection {
    /// These instances only; empty means every instance the query finds.
    pub instance_ids: Vec<String>,
    /// Only instances that have not ended (pending, running, suspended): the ones new code would replay.
    pub running_only: bool,
    /// Only instances whose id starts with this.
    pub instance_id_prefix: Option<String>,
}

impl HistorySelection {
    /// Every instance.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an instance to fetch (the query is then not used).
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_ids.push(id.into());
        self
    }

    /// Only instances that have not ended.
    pub fn with_running_only(mut self, yes: bool) -> Self {
        self.running_only = yes;
        self
    }

    /// Only instances whose id starts with `prefix`.
    pub fn with_instance_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.instance_id_prefix = Some(prefix.into());
        self
    }
}

/// The histories of the selected instances, through the client's history API (`StreamInstanceHistory`), in the
/// order the backend lists the instances.
pub async fn fetch_histories(
    client: &DurableClient,
    selection: &HistorySelection,
) -> Result<Vec<RecordedHistory>, Error> {
    let ids = if selection.instance_ids.is_empty() {
        list_instances(client, selection).await?
    } else {
        selection.instance_ids.clone()
    };
    let mut histories = Vec::with_capacity(ids.len());
    for id in ids {
        let events = client.get_history(&id).await.map_err(Error::Backend)?;
        histories.push(RecordedHistory::new(id, events));
    }
    Ok(histories)
}

async fn list_instances(
    client: &DurableClient,
    selection: &HistorySelection,
) -> Result<Vec<String>, Error> {
    let mut query = InstanceQuery::new();
    if selection.running_only {
        query = query.with_statuses([
            OrchestrationStatus::Pending,
            OrchestrationStatus::Running,
            OrchestrationStatus::Suspended,
        ]);
    }
    if let Some(prefix) = &selection.instance_id_prefix {
        query = query.with_instance_id_prefix(prefix.clone());
    }
    let mut ids = Vec::new();
    loop {
        let page = client
            .query_instances(&query)
            .await
            .map_err(Error::Backend)?;
        let empty = page.items.is_empty();
        ids.extend(page.items.into_iter().map(|i| i.instance_id));
        match page.continuation_token {
            // An empty page with a token would loop forever on some servers.
            Some(token) if !empty => query = query.with_continuation_token(Some(token)),
            _ => break,
        }
    }
    Ok(ids)
}

/// Reads export files (see [`RecordedHistory::to_export_line`]).
pub fn read_export_files(paths: &[PathBuf]) -> Result<Vec<RecordedHistory>, Error> {
    let mut histories = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        histories.extend(read_export(&text).map_err(|source| Error::HistoryFile {
            path: path.clone(),
            source,
        })?);
    }
    Ok(histories)
}

/// Writes histories to `path` in the export format, one instance per line.
pub fn write_export_file(path: &Path, histories: &[RecordedHistory]) -> Result<(), Error> {
    let mut text = String::new();
    for history in histories {
        text.push_str(&history.to_export_line());
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn client_for(connection_string: &str) -> Result<DurableClient, Error> {
    let connection =
        ConnectionOptions::from_connection_string(connection_string).map_err(Error::Backend)?;
    DurableClient::new(&connection).map_err(Error::Backend)
}

/// The check as the command runs it: prints the report and fails when an instance departs from its history.
pub(crate) fn report(
    registry: &Registry,
    histories: &[RecordedHistory],
    options: &ReplayCheckOptions,
) -> Result<ReplayCheckReport, Error> {
    let report = check_histories(registry, histories, options);
    println!("{report}");
    let mismatched = report.mismatches().count();
    if mismatched > 0 {
        return Err(Error::ReplayMismatches {
            mismatched,
            checked: report.checked(),
        });
    }
    Ok(report)
}
