//! Extended sessions (host.json `extendedSessionsEnabled`): DurableTask.Core keeps an instance's work in one
//! session while new messages keep arriving within the idle timeout, and the extension then invokes the handler
//! without the history (or entity state), expecting the worker to still hold it (`WorkItemMetadata`,
//! `RemoteInstanceConfiguration.IncludeState` in Azure/durabletask and Azure/azure-functions-durable-extension).
//! A worker that does not hold it answers `requiresHistory` / `requiresState`, which ends the session; the work
//! then runs again with everything included.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::history::SessionTurn;

/// The instances in a session and when their last turn ended.
#[derive(Debug)]
pub(crate) struct Sessions {
    idle: Option<Duration>,
    last_turn: Mutex<HashMap<String, Instant>>,
}

impl Sessions {
    /// `idle_seconds` is `None` when extended sessions are off.
    pub(crate) fn new(idle_seconds: Option<u32>) -> Self {
        Sessions {
            idle: idle_seconds.map(|s| Duration::from_secs(u64::from(s))),
            last_turn: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.last_turn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How the next turn of `instance_id` is sent.
    pub(crate) fn turn(&self, instance_id: &str) -> SessionTurn {
        let Some(idle) = self.idle else {
            return SessionTurn::FULL;
        };
        let mut map = self.map();
        map.retain(|_, last| last.elapsed() < idle);
        if map.contains_key(instance_id) {
            SessionTurn {
                is_extended_session: true,
                include_state: false,
            }
        } else {
            SessionTurn::FULL
        }
    }

    /// A turn went through and the instance goes on: the session continues.
    pub(crate) fn continue_with(&self, instance_id: &str) {
        if self.idle.is_some() {
            self.map().insert(instance_id.to_owned(), Instant::now());
        }
    }

    /// The session is over (the instance finished, failed, or the worker asked for its history).
    pub(crate) fn end(&self, instance_id: &str) {
        if self.idle.is_some() {
            self.map().remove(instance_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_continued_session_leaves_the_state_out() {
        let off = Sessions::new(None);
        off.continue_with("a");
        assert_eq!(off.turn("a"), SessionTurn::FULL);

        let on = Sessions::new(Some(30));
        assert_eq!(on.turn("a"), SessionTurn::FULL);
        on.continue_with("a");
        assert_eq!(
            on.turn("a"),
            SessionTurn {
                is_extended_session: true,
                include_state: false
            }
        );
        on.end("a");
        assert_eq!(on.turn("a"), SessionTurn::FULL);

        let expired = Sessions::new(Some(0));
        expired.continue_with("a");
        assert_eq!(expired.turn("a"), SessionTurn::FULL);
    }
}
