//! Which function serves which orchestration, activity and entity name.

use std::collections::HashMap;

use crate::config::{FunctionKind, FunctionMeta};

/// A durable function: its folder name and trigger binding.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) function: String,
    pub(crate) binding: String,
}

/// The app's durable functions by the names work items carry.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    orchestrators: HashMap<String, Target>,
    activities: HashMap<String, Target>,
    /// Keyed by lower-case name, as entity IDs carry it.
    entities: HashMap<String, Target>,
}

impl Catalog {
    pub(crate) fn new(functions: &[FunctionMeta]) -> Self {
        let mut catalog = Catalog::default();
        for f in functions {
            let target = Target {
                function: f.name.clone(),
                binding: f.trigger_binding.clone(),
            };
            match &f.kind {
                FunctionKind::Orchestrator { orchestration } => {
                    catalog.orchestrators.insert(orchestration.clone(), target);
                }
                FunctionKind::Activity { activity } => {
                    catalog.activities.insert(activity.clone(), target);
                }
                FunctionKind::Entity { entity } => {
                    catalog.entities.insert(entity.to_lowercase(), target);
                }
                _ => {}
            }
        }
        catalog
    }

    /// Function names are case-insensitive in the host.
    fn find<'a>(map: &'a HashMap<String, Target>, name: &str) -> Option<&'a Target> {
        map.get(name).or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    }

    pub(crate) fn orchestrator(&self, name: &str) -> Option<&Target> {
        Self::find(&self.orchestrators, name)
    }

    pub(crate) fn activity(&self, name: &str) -> Option<&Target> {
        Self::find(&self.activities, name)
    }

    /// `name` is the lower-case name from an entity ID.
    pub(crate) fn entity(&self, name: &str) -> Option<&Target> {
        self.entities.get(name)
    }

    /// Orchestrator, activity and entity names.
    pub(crate) fn names(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        (
            self.orchestrators.keys().cloned().collect(),
            self.activities.keys().cloned().collect(),
            self.entities.keys().cloned().collect(),
        )
    }
}
