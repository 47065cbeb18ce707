//! Storage queues, as the Functions queue extension (`Microsoft.Azure.WebJobs.Extensions.Storage.Queues`) runs
//! them: queue triggers poll in batches with a randomized back-off, invoke in the host format, delete on success,
//! release for a retry on failure and move a message to `<queue>-poison` after `maxDequeueCount` attempts; queue
//! output bindings send `Outputs.<name>` (one message, or one per array element) after a successful invocation of
//! any trigger kind. Every storage call goes through the Azure SDK for Rust (`azure_storage_queue`).

mod connection;
mod listener;
mod options;
mod outputs;
mod sas;
mod storage;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::config::{FunctionKind, FunctionMeta, substitute};
use crate::error::{HostError, Result};
use crate::invoke::Invoker;

use connection::{AppSettings, Connection};
use listener::Listener;
use options::QueuesOptions;
pub(crate) use outputs::QueueOutputs;
use storage::Queue;

/// Wakes a queue's trigger when this host adds a message to it, so that it polls at once instead of after its
/// back-off (`SharedQueueWatcher`).
#[derive(Debug, Default)]
pub(crate) struct Watchers {
    queues: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Watchers {
    fn watch(&self, queue: &str) -> Arc<Notify> {
        let mut queues = match self.queues.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(queues.entry(queue.to_owned()).or_default())
    }

    /// A message was added to `queue`.
    fn notify(&self, queue: &str) {
        let queues = match self.queues.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(notify) = queues.get(queue) {
            notify.notify_one();
        }
    }
}

/// Connections resolved once per setting name.
struct Connections<'a> {
    settings: &'a AppSettings,
    resolved: HashMap<String, Connection>,
}

impl Connections<'_> {
    fn get(&mut self, name: Option<&str>) -> std::result::Result<Connection, String> {
        let key = name.unwrap_or_default().to_ascii_lowercase();
        if let Some(found) = self.resolved.get(&key) {
            return Ok(found.clone());
        }
        let connection = connection::resolve(name, self.settings)?;
        self.resolved.insert(key, connection.clone());
        Ok(connection)
    }
}

/// Queue names as the extension takes them: `%SETTING%` resolved, lower-cased, and checked against the service's
/// naming rules (3 to 63 lower-case letters, digits and single dashes, starting and ending with a letter or digit).
fn queue_name(
    raw: &str,
    settings: &BTreeMap<String, String>,
) -> std::result::Result<String, String> {
    let name = substitute(raw, settings)?.to_lowercase();
    if name.contains('{') {
        return Err(format!(
            "queue name {raw:?}: binding expressions ({{...}}) are not supported by the local host"
        ));
    }
    if valid_queue_name(&name) {
        Ok(name)
    } else {
        Err(format!(
            "{name:?} is not a valid queue name: 3 to 63 lower-case letters, digits and dashes, starting and \
             ending with a letter or digit, without two dashes in a row"
        ))
    }
}

fn valid_queue_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && !name.contains("--")
}

/// Everything resolved before the host starts: options, connections, trigger listeners and output bindings. A
/// missing setting or a bad name stops the start with a clear error.
#[derive(Debug)]
pub(crate) struct Setup {
    listeners: Vec<ListenerSpec>,
    outputs: Arc<QueueOutputs>,
    options: Arc<QueuesOptions>,
    watchers: Arc<Watchers>,
}

#[derive(Debug)]
struct ListenerSpec {
    function: String,
    binding: String,
    queue: Queue,
    poison: Option<Queue>,
    connection: String,
}

impl Setup {
    pub(crate) fn new(
        app_dir: &Path,
        functions: &[FunctionMeta],
        settings: &BTreeMap<String, String>,
        host_json_queues: &serde_json::Value,
    ) -> Result<Setup> {
        let options = QueuesOptions::from_host_json(host_json_queues).map_err(|message| {
            HostError::Config {
                path: app_dir.join("host.json"),
                message,
            }
        })?;
        let app_settings = AppSettings::new(settings);
        let mut connections = Connections {
            settings: &app_settings,
            resolved: HashMap::new(),
        };
        let watchers = Arc::new(Watchers::default());
        let mut listeners = Vec::new();
        for f in functions {
            let config = |message: String| HostError::Config {
                path: app_dir.join(&f.name).join("function.json"),
                message,
            };
            let FunctionKind::Queue { queue, connection } = &f.kind else {
                continue;
            };
            let name = queue_name(queue, settings).map_err(config)?;
            let resolved = connections.get(connection.as_deref()).map_err(config)?;
            let poison_name = format!("{name}-poison");
            let poison = (!name.ends_with("-poison") && valid_queue_name(&poison_name))
                .then(|| Queue::new(&resolved, &poison_name))
                .transpose()
                .map_err(config)?;
            listeners.push(ListenerSpec {
                function: f.name.clone(),
                binding: f.trigger_binding.clone(),
                queue: Queue::new(&resolved, &name).map_err(config)?,
                poison,
                connection: resolved.description.clone(),
            });
        }
        let outputs = QueueOutputs::resolve(
            app_dir,
            functions,
            settings,
            &mut |name| connections.get(name),
            options.message_encoding,
            Arc::clone(&watchers),
        )?;
        Ok(Setup {
            listeners,
            outputs: Arc::new(outputs),
            options: Arc::new(options),
            watchers,
        })
    }

    /// What the invoker sends after a successful invocation.
    pub(crate) fn outputs(&self) -> Arc<QueueOutputs> {
        Arc::clone(&self.outputs)
    }
}

/// The running queue listeners.
#[derive(Debug)]
pub(crate) struct Queues {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Queues {
    pub(crate) fn start(setup: Setup, invoker: &Invoker) -> Queues {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for spec in setup.listeners {
            tracing::debug!(target: "host", "[{}] listening to queue {:?} on {}", spec.function, spec.queue.name(), spec.connection);
            let listener = Listener {
                wake: setup.watchers.watch(spec.queue.name()),
                function: spec.function,
                binding: spec.binding,
                queue: spec.queue,
                poison: spec.poison,
                options: Arc::clone(&setup.options),
                invoker: invoker.clone(),
                watchers: Arc::clone(&setup.watchers),
            };
            tasks.spawn(Arc::new(listener).run(stopped.clone()));
        }
        Queues { stop, tasks }
    }

    /// Stops polling and waits for the messages in flight.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_follow_the_service_rules() {
        let settings = BTreeMap::from([("Q".to_owned(), "From-Setting".to_owned())]);
        assert_eq!(queue_name("Orders", &settings).unwrap(), "orders");
        assert_eq!(queue_name("%Q%", &settings).unwrap(), "from-setting");
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a--b",
            "a_b",
            &"a".repeat(64),
            "{name}-x",
        ] {
            assert!(queue_name(bad, &settings).is_err(), "{bad}");
        }
        assert!(queue_name("%MISSING%", &settings).is_err());
        assert!(valid_queue_name(&"a".repeat(63)));
    }
}
