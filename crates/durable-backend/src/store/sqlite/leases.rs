//! Leases of orchestrator turns and activities, held in memory instead of in the rows.
//!
//! A lease lives exactly as long as the streams of this process: a restarted backend has no streams, so nothing is
//! leased and every unfinished item is available again. Keeping them out of the database means handing work out
//! writes no page, and a completion does not undo what its lease wrote. The writer thread owns the table for its
//! operations (reached through a thread-local, like the change set); other threads only read the next expiry.
//!
//! The table follows the database's transactions: every change records the entry it replaced, so an operation
//! rolled back to its savepoint, or a group whose commit failed, leaves the leases as they were.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use durable_proto::HistoryEvent;

/// An orchestrator turn handed out and not yet completed.
#[derive(Debug, Clone)]
pub(super) struct OrchestrationLease {
    pub(super) token: String,
    pub(super) expires_at: i64,
    /// The dispatch time: the turn's `OrchestratorStarted`.
    pub(super) started_at: i64,
    /// The inbox rows delivered with the turn (bare wake-ups too); a completion deletes exactly these.
    pub(super) rows: Vec<MessageKey>,
    /// The delivered events in delivery order, appended to the history on completion.
    pub(super) events: Vec<HistoryEvent>,
    /// The `seq` of the instance's next history row: nothing but this turn's completion appends to the history
    /// while the turn is out (a replaced or purged instance loses its lease).
    pub(super) next_seq: i64,
    /// The trace context stored for this execution when the turn was handed out, encoded: a completion that
    /// returns the same one does not write it again.
    pub(super) trace: Option<Vec<u8>>,
}

/// An inbox row of an instance, by the rest of its key: `(priority, id)`.
pub(super) type MessageKey = (i64, i64);

/// An activity handed out and not yet completed: what its result is routed by.
#[derive(Debug, Clone)]
pub(super) struct ActivityLease {
    pub(super) token: String,
    pub(super) expires_at: i64,
    pub(super) instance_id: String,
    pub(super) execution_id: String,
    pub(super) task_id: i32,
}

type InstanceKey = (String, String);
type ActivityKey = (String, i64);

#[derive(Debug)]
enum Undo {
    Orchestration(InstanceKey, Option<OrchestrationLease>),
    Activity(ActivityKey, Option<ActivityLease>),
    Held(InstanceKey, bool),
}

/// Per hub, so that looking a lease up by borrowed names allocates nothing (lease calls look at every queued item).
#[derive(Debug, Default)]
struct Hub {
    orchestrations: HashMap<String, OrchestrationLease>,
    activities: HashMap<i64, ActivityLease>,
    /// Instances with messages queued outside the ready index while their turn was out (see `hold`).
    held: HashSet<String>,
}

#[derive(Debug, Default)]
struct Table {
    hubs: HashMap<String, Hub>,
    /// The entries replaced by the current commit group, oldest first.
    undo: Vec<Undo>,
    /// The id the next inbox message gets, once known (see `next_message_id`).
    next_message: Option<i64>,
}

/// The lease table of one store, shared by its writer (every change) and its reader (next expiry).
#[derive(Debug, Clone, Default)]
pub(super) struct Leases(Arc<Mutex<Table>>);

impl Leases {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // The table is valid after any panic (each change is one map operation), so poisoning is ignored.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The earliest lease of `hub` that runs out after `now`.
    pub(super) fn next_expiry(&self, hub: &str, now: i64) -> Option<i64> {
        let table = self.lock();
        let hub = table.hubs.get(hub)?;
        let orchestrations = hub.orchestrations.values().map(|l| l.expires_at);
        let activities = hub.activities.values().map(|l| l.expires_at);
        orchestrations.chain(activities).filter(|t| *t > now).min()
    }
}

thread_local! {
    // Set once on the writer thread before it runs any operation.
    static CURRENT: RefCell<Option<Leases>> = const { RefCell::new(None) };
}

/// Makes `leases` the table of the operations run on this thread (the writer's).
pub(super) fn install(leases: Leases) {
    CURRENT.with(|c| *c.borrow_mut() = Some(leases));
}

fn with<T>(f: impl FnOnce(&mut Table) -> T) -> T {
    CURRENT.with(|c| {
        let current = c.borrow();
        // Operations run only on the writer thread, which installs its table first; a table made here would
        // simply hold no leases.
        let leases = current.clone().unwrap_or_default();
        let mut table = leases.lock();
        f(&mut table)
    })
}

impl Table {
    fn put_orchestration(
        &mut self,
        (hub, id): InstanceKey,
        lease: Option<OrchestrationLease>,
    ) -> Option<OrchestrationLease> {
        match lease {
            Some(lease) => self
                .hubs
                .entry(hub)
                .or_default()
                .orchestrations
                .insert(id, lease),
            None => self.hubs.get_mut(&hub)?.orchestrations.remove(&id),
        }
    }

    fn put_activity(
        &mut self,
        (hub, row): ActivityKey,
        lease: Option<ActivityLease>,
    ) -> Option<ActivityLease> {
        match lease {
            Some(lease) => self
                .hubs
                .entry(hub)
                .or_default()
                .activities
                .insert(row, lease),
            None => self.hubs.get_mut(&hub)?.activities.remove(&row),
        }
    }

    fn put_held(&mut self, (hub, id): InstanceKey, held: bool) -> bool {
        if held {
            !self.hubs.entry(hub).or_default().held.insert(id)
        } else {
            self.hubs.get_mut(&hub).is_some_and(|h| h.held.remove(&id))
        }
    }

    fn set_held(&mut self, key: InstanceKey, held: bool) -> bool {
        let old = self.put_held(key.clone(), held);
        if old != held {
            self.undo.push(Undo::Held(key, old));
        }
        old
    }

    fn set_orchestration(&mut self, key: InstanceKey, lease: Option<OrchestrationLease>) {
        let old = self.put_orchestration(key.clone(), lease);
        self.undo.push(Undo::Orchestration(key, old));
    }

    fn set_activity(&mut self, key: ActivityKey, lease: Option<ActivityLease>) {
        let old = self.put_activity(key.clone(), lease);
        self.undo.push(Undo::Activity(key, old));
    }

    fn orchestration(&self, hub: &str, id: &str) -> Option<&OrchestrationLease> {
        self.hubs.get(hub)?.orchestrations.get(id)
    }

    fn activity(&self, hub: &str, row: i64) -> Option<&ActivityLease> {
        self.hubs.get(hub)?.activities.get(&row)
    }
}

/// Where the current group's undo log stands, to roll one operation back to.
pub(super) fn mark() -> usize {
    with(|t| t.undo.len())
}

/// Undoes every change made since `mark`, newest first.
pub(super) fn roll_back_to(mark: usize) {
    with(|t| {
        while t.undo.len() > mark {
            match t.undo.pop() {
                Some(Undo::Orchestration(key, old)) => {
                    t.put_orchestration(key, old);
                }
                Some(Undo::Activity(key, old)) => {
                    t.put_activity(key, old);
                }
                Some(Undo::Held(key, old)) => {
                    t.put_held(key, old);
                }
                None => break,
            }
        }
    });
}

/// The group committed: its changes stay.
pub(super) fn keep() {
    with(|t| t.undo.clear());
}

/// The id of the next inbox message: ids grow with arrival across the file, which is the order the lease query
/// walks. The inbox is clustered by instance, so no B-tree hands out ids; the writer counts instead, starting
/// after the largest id stored (`largest`, asked only the first time). An operation rolled back leaves a gap, which
/// is harmless: only the order matters.
pub(super) fn next_message_id(
    largest: impl FnOnce() -> Result<i64, crate::error::StoreError>,
) -> Result<i64, crate::error::StoreError> {
    if let Some(id) = with(|t| {
        let id = t.next_message?;
        t.next_message = Some(id + 1);
        Some(id)
    }) {
        return Ok(id);
    }
    let id = largest()? + 1;
    with(|t| t.next_message = Some(id + 1));
    Ok(id)
}

/// Whether instance `id` has a lease that has not run out at `now`.
pub(super) fn orchestration_live(hub: &str, id: &str, now: i64) -> bool {
    with(|t| t.orchestration(hub, id).is_some_and(|l| l.expires_at > now))
}

/// Whether instance `id` has a lease, even one that ran out but was not handed out again.
pub(super) fn orchestration_held(hub: &str, id: &str) -> bool {
    with(|t| t.orchestration(hub, id).is_some())
}

/// Records a new lease of instance `id` (replacing a lapsed one, whose token is stale from now on).
pub(super) fn lease_orchestration(hub: &str, id: &str, lease: OrchestrationLease) {
    with(|t| t.set_orchestration((hub.to_owned(), id.to_owned()), Some(lease)));
}

/// Ends the lease of instance `id` held under `token` and returns it; `None` when `token` is not its lease.
pub(super) fn take_orchestration(hub: &str, id: &str, token: &str) -> Option<OrchestrationLease> {
    with(|t| {
        let lease = t
            .orchestration(hub, id)
            .filter(|l| l.token == token)?
            .clone();
        t.set_orchestration((hub.to_owned(), id.to_owned()), None);
        Some(lease)
    })
}

/// Notes that a message for instance `id` was queued outside the ready index because its turn is out: lease calls
/// would otherwise walk every such message again while the turn runs, and a fan-in's results are many.
pub(super) fn hold(hub: &str, id: &str) {
    with(|t| {
        t.set_held((hub.to_owned(), id.to_owned()), true);
    });
}

/// Clears the note of `hold`; whether instance `id` had held messages.
pub(super) fn take_held(hub: &str, id: &str) -> bool {
    with(|t| {
        t.hubs.get(hub).is_some_and(|h| h.held.contains(id))
            && t.set_held((hub.to_owned(), id.to_owned()), false)
    })
}

/// Instances with held messages whose turn is no longer out at `now` (its lease ran out or went).
pub(super) fn held_without_live_lease(hub: &str, now: i64) -> Vec<String> {
    with(|t| {
        let Some(h) = t.hubs.get(hub) else {
            return Vec::new();
        };
        h.held
            .iter()
            .filter(|id| {
                h.orchestrations
                    .get(*id)
                    .is_none_or(|l| l.expires_at <= now)
            })
            .cloned()
            .collect()
    })
}

/// Whether activity row `row` has a lease that has not run out at `now`.
pub(super) fn activity_live(hub: &str, row: i64, now: i64) -> bool {
    with(|t| t.activity(hub, row).is_some_and(|l| l.expires_at > now))
}

/// Records a new lease of activity row `row`.
pub(super) fn lease_activity(hub: &str, row: i64, lease: ActivityLease) {
    with(|t| t.set_activity((hub.to_owned(), row), Some(lease)));
}

/// Ends the lease of activity row `row` held under `token` and returns it.
pub(super) fn take_activity(hub: &str, row: i64, token: &str) -> Option<ActivityLease> {
    with(|t| {
        let lease = t.activity(hub, row).filter(|l| l.token == token)?.clone();
        t.set_activity((hub.to_owned(), row), None);
        Some(lease)
    })
}

/// An instance's rows are gone (replaced, purged): its turn's lease and the leases of its activities go with them,
/// so a late completion is stale and a reused row id cannot inherit a lease.
pub(super) fn drop_instance(hub: &str, id: &str) {
    with(|t| {
        if t.orchestration(hub, id).is_some() {
            t.set_orchestration((hub.to_owned(), id.to_owned()), None);
        }
        t.set_held((hub.to_owned(), id.to_owned()), false);
        let activities: Vec<i64> = t.hubs.get(hub).map_or_else(Vec::new, |h| {
            h.activities
                .iter()
                .filter(|(_, l)| l.instance_id == id)
                .map(|(row, _)| *row)
                .collect()
        });
        for row in activities {
            t.set_activity((hub.to_owned(), row), None);
        }
    });
}

/// A hub was deleted: none of its leases hold any more.
pub(super) fn drop_hub(hub: &str) {
    with(|t| {
        let Some(leased) = t.hubs.get(hub) else {
            return;
        };
        let instances: Vec<String> = leased.orchestrations.keys().cloned().collect();
        let activities: Vec<i64> = leased.activities.keys().copied().collect();
        let held: Vec<String> = leased.held.iter().cloned().collect();
        for id in instances {
            t.set_orchestration((hub.to_owned(), id), None);
        }
        for id in held {
            t.set_held((hub.to_owned(), id), false);
        }
        for row in activities {
            t.set_activity((hub.to_owned(), row), None);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(token: &str, expires_at: i64) -> OrchestrationLease {
        OrchestrationLease {
            token: token.to_owned(),
            expires_at,
            started_at: 0,
            rows: vec![(1, 1)],
            events: Vec::new(),
            next_seq: 0,
            trace: None,
        }
    }

    #[test]
    fn a_rolled_back_operation_leaves_the_leases_as_they_were() {
        install(Leases::default());
        lease_orchestration("h", "kept", lease("a", 100));
        keep();
        let mark = mark();
        assert!(take_orchestration("h", "kept", "a").is_some());
        lease_orchestration("h", "new", lease("b", 100));
        hold("h", "new");
        roll_back_to(mark);
        assert!(!take_held("h", "new"));
        assert!(orchestration_live("h", "kept", 50));
        assert!(!orchestration_held("h", "new"));
        assert!(take_orchestration("h", "kept", "wrong token").is_none());
        assert!(orchestration_held("h", "kept"));
    }

    #[test]
    fn a_lapsed_lease_is_held_but_not_live_and_the_next_expiry_skips_it() {
        let leases = Leases::default();
        install(leases.clone());
        lease_orchestration("h", "lapsed", lease("a", 10));
        lease_orchestration("h", "live", lease("b", 90));
        lease_orchestration("other", "x", lease("c", 20));
        assert!(orchestration_held("h", "lapsed"));
        assert!(!orchestration_live("h", "lapsed", 10));
        hold("h", "lapsed");
        hold("h", "live");
        assert_eq!(held_without_live_lease("h", 10), ["lapsed"]);
        assert_eq!(leases.next_expiry("h", 10), Some(90));
        drop_hub("h");
        assert_eq!(leases.next_expiry("h", 0), None);
        assert_eq!(leases.next_expiry("other", 0), Some(20));
    }
}
