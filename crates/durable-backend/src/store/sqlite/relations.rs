//! Walks over parent/child relations between orchestration instances.
//!
//! The relation is not a tree: a sub-orchestration may reuse the ID of a finished ancestor, so A's child B can
//! later start a child named A, and then A's parent is B and B's parent is A. Every walk therefore keeps a visited
//! set, goes breadth first without recursion (a deep chain must not grow the writer thread's stack), and stops at a
//! depth bound so that one request does a bounded amount of work.

use std::collections::{HashSet, VecDeque};

use rusqlite::Connection;

use super::instances::{self, InstanceRow};
use crate::error::StoreError;

/// Levels below the starting instance that recursive terminate and purge reach. Deeper descendants are left as
/// they are (and logged): nesting this deep is a runaway, not a design.
pub(super) const MAX_DEPTH: usize = 1000;

/// Which children a walk follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Children {
    /// Pending, running or suspended ones (what a recursive terminate reaches).
    Live,
    /// Completed, failed or terminated ones (what a recursive purge reaches).
    Finished,
}

impl Children {
    fn clause(self) -> &'static str {
        match self {
            Children::Live => "hub = ?1 AND parent_instance_id = ?2 AND status NOT IN (1, 3, 4, 5)",
            Children::Finished => "hub = ?1 AND parent_instance_id = ?2 AND status IN (1, 3, 4, 5)",
        }
    }
}

/// The descendants of `root` reached through `children`, each once, nearest first, `root` itself excluded. An
/// instance that is its own ancestor (an ID cycle) is visited once and the walk moves on.
pub(super) fn descendants(
    c: &Connection,
    hub: &str,
    root: &str,
    children: Children,
) -> Result<Vec<InstanceRow>, StoreError> {
    let mut seen: HashSet<String> = HashSet::from([root.to_owned()]);
    let mut queue: VecDeque<(String, usize)> = VecDeque::from([(root.to_owned(), 0)]);
    let mut found = Vec::new();
    while let Some((parent, depth)) = queue.pop_front() {
        if depth >= MAX_DEPTH {
            tracing::warn!(
                hub,
                instance = %root,
                "sub-orchestrations nested deeper than {MAX_DEPTH} levels were left out"
            );
            continue;
        }
        for child in instances::load_many(c, children.clause(), &[&hub, &parent])? {
            if seen.insert(child.instance_id.clone()) {
                queue.push_back((child.instance_id.clone(), depth + 1));
                found.push(child);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Synchronous;
    use crate::store::sqlite::instances::ParentRef;
    use crate::store::sqlite::schema;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        schema::prepare(&c, Synchronous::Off).unwrap();
        schema::ensure_hub(&c, "h").unwrap();
        c
    }

    fn put(c: &Connection, id: &str, parent: Option<&str>, status: i32) {
        InstanceRow {
            instance_id: id.to_owned(),
            execution_id: "e".to_owned(),
            name: "o".to_owned(),
            status,
            parent: parent.map(|p| ParentRef {
                instance_id: p.to_owned(),
                ..ParentRef::default()
            }),
            ..InstanceRow::default()
        }
        .save(c, "h")
        .unwrap();
    }

    fn ids(rows: &[InstanceRow]) -> Vec<&str> {
        rows.iter().map(|r| r.instance_id.as_str()).collect()
    }

    #[test]
    fn a_cycle_is_walked_once() {
        let c = db();
        put(&c, "a", Some("b"), 0);
        put(&c, "b", Some("a"), 0);
        put(&c, "c", Some("b"), 0);
        put(&c, "d", Some("d"), 0);
        assert_eq!(
            ids(&descendants(&c, "h", "a", Children::Live).unwrap()),
            ["b", "c"]
        );
        assert_eq!(
            ids(&descendants(&c, "h", "b", Children::Live).unwrap()),
            ["a", "c"]
        );
        assert!(
            descendants(&c, "h", "d", Children::Live)
                .unwrap()
                .is_empty()
        );
        assert!(
            descendants(&c, "h", "a", Children::Finished)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_chain_deeper_than_the_bound_is_cut_without_recursion() {
        let c = db();
        let total = MAX_DEPTH + 500;
        put(&c, "n0", None, 1);
        for i in 1..=total {
            put(&c, &format!("n{i}"), Some(&format!("n{}", i - 1)), 1);
        }
        let found = descendants(&c, "h", "n0", Children::Finished).unwrap();
        assert_eq!(found.len(), MAX_DEPTH);
        assert_eq!(found.last().unwrap().instance_id, format!("n{MAX_DEPTH}"));
    }
}
