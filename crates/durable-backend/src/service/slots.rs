//! The slots of one work-item stream: its `maxConcurrent*` per kind and the leases it holds.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::lock;
use crate::store::WorkKind;

/// In-flight work of one stream, to honour its `maxConcurrent*`, to give its leases back when it ends and to let
/// go of the ones that lapse.
#[derive(Debug)]
pub(crate) struct StreamSlots {
    limits: [usize; 3],
    in_flight: Mutex<InFlight>,
    freed: Notify,
}

/// The stream loop looks at its slots on every wake-up (about once per completion under load) while hundreds of
/// leases are out: the counts and the earliest expiry are kept beside the map so that a look is not a walk.
#[derive(Debug, Default)]
struct InFlight {
    /// token -> (kind, when the lease runs out).
    leases: HashMap<String, (WorkKind, Instant)>,
    /// Leases out per kind.
    used: [usize; 3],
    /// No lease runs out before this. It may be earlier than the true first expiry once that lease is gone; the
    /// first look past it walks the map and makes it exact again.
    earliest: Option<Instant>,
}

fn slot(kind: WorkKind) -> usize {
    match kind {
        WorkKind::Orchestration => 0,
        WorkKind::Activity => 1,
        WorkKind::Entity => 2,
    }
}

impl StreamSlots {
    /// Room for `limits` items of each kind: orchestrations, activities, entities.
    pub(crate) fn new(limits: [usize; 3]) -> Self {
        StreamSlots {
            limits,
            in_flight: Mutex::new(InFlight::default()),
            freed: Notify::new(),
        }
    }

    /// Free slots per kind.
    pub(crate) fn free(&self) -> [usize; 3] {
        let used = lock(&self.in_flight).used;
        [0, 1, 2].map(|i| self.limits[i].saturating_sub(used[i]))
    }

    /// Takes a slot for a lease that runs out at `ends`.
    pub(crate) fn insert(&self, token: String, kind: WorkKind, ends: Instant) {
        let mut f = lock(&self.in_flight);
        if let Some((old, _)) = f.leases.insert(token, (kind, ends)) {
            f.used[slot(old)] -= 1;
        }
        f.used[slot(kind)] += 1;
        f.earliest = Some(f.earliest.map_or(ends, |e| e.min(ends)));
    }

    /// Frees the lease's slot, if it still holds one, and wakes the stream.
    pub(crate) fn finish(&self, token: &str) {
        if lock(&self.in_flight).remove(token).is_some() {
            self.freed.notify_one();
        }
    }

    /// Resolves once a slot was freed since the last time.
    pub(crate) async fn freed(&self) {
        self.freed.notified().await;
    }

    /// No lease of the stream runs out before this.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        lock(&self.in_flight).earliest
    }

    /// Removes and returns the leases that ran out by `now`.
    pub(crate) fn take_lapsed(&self, now: Instant) -> Vec<(WorkKind, String)> {
        let mut f = lock(&self.in_flight);
        if f.earliest.is_none_or(|e| e > now) {
            return Vec::new();
        }
        let tokens: Vec<String> = f
            .leases
            .iter()
            .filter(|(_, (_, ends))| *ends <= now)
            .map(|(token, _)| token.clone())
            .collect();
        let lapsed = tokens
            .into_iter()
            .filter_map(|token| f.remove(&token).map(|kind| (kind, token)))
            .collect();
        f.earliest = f.leases.values().map(|(_, at)| *at).min();
        lapsed
    }

    /// Removes and returns every lease (the stream ended).
    pub(crate) fn drain(&self) -> Vec<(WorkKind, String)> {
        let mut f = lock(&self.in_flight);
        f.used = [0; 3];
        f.earliest = None;
        f.leases
            .drain()
            .map(|(token, (kind, _))| (kind, token))
            .collect()
    }
}

impl InFlight {
    fn remove(&mut self, token: &str) -> Option<WorkKind> {
        let (kind, _) = self.leases.remove(token)?;
        self.used[slot(kind)] -= 1;
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn counts_and_the_first_expiry_follow_inserts_and_removals() {
        let slots = StreamSlots::new([2, 3, 1]);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(slots.free(), [2, 3, 1]);
        assert_eq!(slots.next_expiry(), None);
        slots.insert("o1".into(), WorkKind::Orchestration, at(30));
        slots.insert("a1".into(), WorkKind::Activity, at(10));
        slots.insert("a2".into(), WorkKind::Activity, at(20));
        slots.insert("o2".into(), WorkKind::Orchestration, at(40));
        slots.insert("o3".into(), WorkKind::Orchestration, at(50));
        assert_eq!(slots.free(), [0, 1, 1], "a kind over its limit has no room");
        assert_eq!(slots.next_expiry(), Some(at(10)));
        // The same token again replaces its lease rather than taking a second slot.
        slots.insert("a2".into(), WorkKind::Activity, at(25));
        assert_eq!(slots.free(), [0, 1, 1]);

        slots.finish("a1");
        slots.finish("a1");
        assert_eq!(slots.free(), [0, 2, 1], "a lease frees its slot once");
        // The bound stays until a look past it makes it exact.
        assert_eq!(slots.next_expiry(), Some(at(10)));
        assert!(slots.take_lapsed(at(9)).is_empty());
        assert!(slots.take_lapsed(at(24)).is_empty());
        assert_eq!(slots.next_expiry(), Some(at(25)));

        let mut lapsed = slots.take_lapsed(at(40));
        lapsed.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(
            lapsed,
            vec![
                (WorkKind::Activity, "a2".to_owned()),
                (WorkKind::Orchestration, "o1".to_owned()),
                (WorkKind::Orchestration, "o2".to_owned()),
            ]
        );
        assert_eq!(slots.free(), [1, 3, 1]);
        assert_eq!(slots.next_expiry(), Some(at(50)));

        assert_eq!(
            slots.drain(),
            vec![(WorkKind::Orchestration, "o3".to_owned())]
        );
        assert_eq!(slots.free(), [2, 3, 1]);
        assert_eq!(slots.next_expiry(), None);
        assert!(slots.take_lapsed(at(1000)).is_empty());
    }
}
