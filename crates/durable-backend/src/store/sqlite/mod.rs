//! SQLite implementation of [`Store`]: one writer thread owns the connection and commits queued operations in
//! groups (one transaction, one fsync, many operations), acknowledging each only after the commit.

mod activity;
mod blobs;
mod changes;
mod control;
mod entity;
mod entity_lock;
mod entity_query;
mod instances;
mod leases;
mod orchestration;
mod query;
#[cfg(test)]
mod query_plans;
mod reader;
mod relations;
mod schema;
mod statement_profile;
mod writer;

use std::path::Path;

use durable_proto::{
    ActivityResponse, CleanEntityStorageRequest, CleanEntityStorageResponse, CreateInstanceRequest,
    EntityBatchResult, EntityMetadata, EntityQuery, HistoryEvent, InstanceQuery,
    ListInstanceIdsRequest, ListInstanceIdsResponse, OrchestrationState, OrchestratorResponse,
    PurgeInstancesRequest, PurgeInstancesResponse, QueryEntitiesResponse, QueryInstancesResponse,
    RaiseEventRequest, RestartInstanceRequest, RewindInstanceRequest, SignalEntityRequest,
    TerminateRequest,
};

use std::sync::Arc;

use tokio::sync::broadcast;

use super::{Changes, LeaseRequest, LeasedWork, Store, StoreFuture, WorkKind};
use crate::codec::now_ms;
use crate::error::StoreError;
use crate::options::{Storage, Synchronous};

/// WAL frames between automatic checkpoints (SQLite's default is 1,000; pages are 4 KiB, so about 40 MB of WAL).
const WAL_CHECKPOINT_PAGES: i64 = 10_000;

/// The SQLite store. Cheap to clone; all clones share one writer thread.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: writer::Writer,
    /// File databases only: an in-memory database exists on the writer's connection alone.
    reader: Option<reader::Reader>,
    changes: broadcast::Sender<Arc<Changes>>,
    leases: leases::Leases,
    /// `DURABLE_STATEMENT_PROFILE`: prints the writer's statement profile when the last clone is dropped.
    _profile: Option<Arc<statement_profile::Report>>,
}

impl SqliteStore {
    /// Opens (creating and migrating when needed) the database and starts its writer thread. Leases left by a
    /// previous process are released, so one database file must be served by one process at a time.
    pub fn open(
        storage: &Storage,
        synchronous: Synchronous,
        max_commit_batch: usize,
    ) -> Result<Self, StoreError> {
        let mut conn = match storage {
            Storage::InMemory => rusqlite::Connection::open_in_memory()?,
            Storage::File(path) => {
                create_parent(path)?;
                rusqlite::Connection::open(path)?
            }
        };
        schema::prepare(&conn, synchronous)?;
        schema::release_all_leases(&conn)?;
        // Every hot statement stays compiled (the default cache of 16 is smaller than the statement set).
        conn.set_prepared_statement_cache_capacity(256);
        // Checkpoints run on the writer thread inside a commit and copy every page the WAL holds into the
        // database. Hot pages (index leaves, the instances being worked on) are written to the WAL over and over;
        // checkpointing less often copies each of them once per checkpoint instead of once per 1,000 frames.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
        let profile = statement_profile::start(&mut conn)?;
        let reader = match storage {
            Storage::InMemory => None,
            Storage::File(path) => Some(reader::Reader::spawn(rusqlite::Connection::open(path)?)?),
        };
        let (changes, _) = broadcast::channel(1024);
        let leases = leases::Leases::default();
        Ok(SqliteStore {
            writer: writer::Writer::spawn(conn, max_commit_batch, changes.clone(), leases.clone())?,
            reader,
            changes,
            leases,
            _profile: profile,
        })
    }
}

impl SqliteStore {
    /// Runs a read-only operation on the reader connection when there is one.
    fn read<T, F>(&self, op: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.reader {
            Some(reader) => reader.run(op),
            None => self.writer.run(op),
        }
    }
}

fn create_parent(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Internal(format!("cannot create {}: {e}", parent.display()))
        })?;
    }
    Ok(())
}

impl Store for SqliteStore {
    fn changes(&self) -> broadcast::Receiver<Arc<Changes>> {
        self.changes.subscribe()
    }

    fn ensure_hubs(&self, hubs: Vec<String>) -> StoreFuture<()> {
        self.writer.run(move |c| {
            for hub in &hubs {
                schema::ensure_hub(c, hub)?;
            }
            Ok(())
        })
    }

    fn create_hub(&self, hub: String, recreate: bool) -> StoreFuture<()> {
        self.writer.run(move |c| {
            if recreate {
                changes::note_work(&hub);
                schema::delete_hub(c, &hub)?;
            }
            schema::ensure_hub(c, &hub)
        })
    }

    fn delete_hub(&self, hub: String) -> StoreFuture<()> {
        self.writer.run(move |c| schema::delete_hub(c, &hub))
    }

    fn start_instance(&self, hub: String, request: CreateInstanceRequest) -> StoreFuture<String> {
        self.writer
            .run(move |c| instances::start(c, &hub, request, now_ms()))
    }

    fn get_instance(
        &self,
        hub: String,
        id: String,
        payloads: bool,
    ) -> StoreFuture<Option<OrchestrationState>> {
        self.read(move |c| Ok(instances::load(c, &hub, &id)?.map(|row| row.to_state(payloads))))
    }

    fn raise_event(&self, hub: String, request: RaiseEventRequest) -> StoreFuture<()> {
        self.writer
            .run(move |c| control::raise_event(c, &hub, request, now_ms()))
    }

    fn terminate(&self, hub: String, request: TerminateRequest) -> StoreFuture<()> {
        self.writer
            .run(move |c| control::terminate(c, &hub, request, now_ms()))
    }

    fn suspend_resume(
        &self,
        hub: String,
        id: String,
        reason: Option<String>,
        suspend: bool,
    ) -> StoreFuture<()> {
        self.writer
            .run(move |c| control::suspend_resume(c, &hub, &id, reason, suspend, now_ms()))
    }

    fn restart(&self, hub: String, request: RestartInstanceRequest) -> StoreFuture<String> {
        self.writer
            .run(move |c| control::restart(c, &hub, request, now_ms()))
    }

    fn rewind(&self, hub: String, request: RewindInstanceRequest) -> StoreFuture<()> {
        self.writer
            .run(move |c| control::rewind(c, &hub, request, now_ms()))
    }

    fn purge(
        &self,
        hub: String,
        request: PurgeInstancesRequest,
    ) -> StoreFuture<PurgeInstancesResponse> {
        self.writer.run(move |c| query::purge(c, &hub, request))
    }

    fn query_instances(
        &self,
        hub: String,
        query: InstanceQuery,
    ) -> StoreFuture<QueryInstancesResponse> {
        self.read(move |c| query::query_instances(c, &hub, query))
    }

    fn list_instance_ids(
        &self,
        hub: String,
        request: ListInstanceIdsRequest,
    ) -> StoreFuture<ListInstanceIdsResponse> {
        self.read(move |c| query::list_instance_ids(c, &hub, request))
    }

    fn history(&self, hub: String, id: String) -> StoreFuture<Option<Vec<HistoryEvent>>> {
        self.read(move |c| {
            if instances::load(c, &hub, &id)?.is_none() {
                return Ok(None);
            }
            Ok(Some(instances::history(c, &hub, &id)?))
        })
    }

    fn lease(&self, hub: String, request: LeaseRequest) -> StoreFuture<Vec<LeasedWork>> {
        self.writer.run(move |c| {
            let now = now_ms();
            let mut out = Vec::new();
            if request.orchestrations > 0 {
                out.extend(orchestration::lease(c, &hub, &request, now)?);
            }
            if request.activities > 0 {
                out.extend(activity::lease(c, &hub, &request, now)?);
            }
            if request.entities > 0 {
                out.extend(entity::lease(c, &hub, &request, now)?);
            }
            Ok(out)
        })
    }

    fn complete_orchestration(
        &self,
        hub: String,
        response: OrchestratorResponse,
    ) -> StoreFuture<()> {
        let unguarded = orchestration::fails_before_writing(&response);
        let complete =
            move |c: &rusqlite::Connection| orchestration::complete(c, &hub, response, now_ms());
        if unguarded {
            self.writer.run_unguarded(complete)
        } else {
            self.writer.run(complete)
        }
    }

    fn complete_activity(&self, hub: String, response: ActivityResponse) -> StoreFuture<()> {
        // Its only failure of its own, a stale lease, is found before it writes.
        self.writer
            .run_unguarded(move |c| activity::complete(c, &hub, response, now_ms()))
    }

    fn complete_entity(&self, hub: String, result: EntityBatchResult) -> StoreFuture<()> {
        self.writer
            .run(move |c| entity::complete(c, &hub, result, now_ms()))
    }

    fn abandon(&self, hub: String, kind: WorkKind, token: String) -> StoreFuture<()> {
        self.writer.run(move |c| {
            if release_one(c, &hub, kind, &token)? {
                Ok(())
            } else {
                Err(StoreError::StaleLease(token))
            }
        })
    }

    fn release(&self, hub: String, leases: Vec<(WorkKind, String)>) -> StoreFuture<()> {
        self.writer.run(move |c| {
            for (kind, token) in &leases {
                release_one(c, &hub, *kind, token)?;
            }
            Ok(())
        })
    }

    fn next_due(&self, hub: String) -> StoreFuture<Option<i64>> {
        let leases = self.leases.clone();
        self.read(move |c| {
            let now = now_ms();
            let stored = query::next_due(c, &hub, now)?;
            let leased = leases.next_expiry(&hub, now);
            Ok(stored.into_iter().chain(leased).min())
        })
    }

    fn signal_entity(&self, hub: String, request: SignalEntityRequest) -> StoreFuture<()> {
        self.writer
            .run(move |c| entity::signal(c, &hub, request, now_ms()))
    }

    fn get_entity(
        &self,
        hub: String,
        id: String,
        include_state: bool,
    ) -> StoreFuture<Option<EntityMetadata>> {
        self.read(move |c| entity_query::get(c, &hub, &id, include_state))
    }

    fn query_entities(
        &self,
        hub: String,
        query: EntityQuery,
    ) -> StoreFuture<QueryEntitiesResponse> {
        self.read(move |c| entity_query::query(c, &hub, query))
    }

    fn clean_entity_storage(
        &self,
        hub: String,
        request: CleanEntityStorageRequest,
    ) -> StoreFuture<CleanEntityStorageResponse> {
        self.writer
            .run(move |c| entity_query::clean(c, &hub, request))
    }
}

/// Frees one lease so the work is handed out again at once. Returns whether the token was held. Orchestrator and
/// activity leases live in memory; the entity hint keeps SQLite from walking the whole hub by primary key, which it
/// prefers without statistics.
fn release_one(
    c: &rusqlite::Connection,
    hub: &str,
    kind: WorkKind,
    token: &str,
) -> Result<bool, StoreError> {
    changes::note_work(hub);
    let changed = match kind {
        WorkKind::Orchestration => match instances::leased_instance(token)
            .filter(|id| leases::take_orchestration(hub, id, token).is_some())
        {
            Some(id) => {
                instances::release_held(c, hub, id)?;
                true
            }
            None => false,
        },
        WorkKind::Activity => activity::leased_row(token)
            .and_then(|row| leases::take_activity(hub, row, token))
            .is_some(),
        WorkKind::Entity => {
            c.prepare_cached(
                "UPDATE entity_inbox SET lease_token = NULL WHERE hub = ?1 AND lease_token = ?2",
            )?
            .execute((hub, token))?;
            c.prepare_cached("UPDATE entities INDEXED BY entities_by_lease SET lease_token = NULL, lease_expires_at = NULL WHERE hub = ?1 AND lease_token = ?2")?.execute(
                (hub, token),
            )? > 0
        }
    };
    Ok(changed)
}
