//! Queue triggers on Azure Storage queues (Azurite locally): poll, invoke in the host format, delete on success,
//! release for a retry on failure, and move a message to `<queue>-poison` after its fifth failed attempt, as the
//! Functions queue extension does with its defaults (`maxDequeueCount` 5, `visibilityTimeout` 0, batch of 16).

mod storage;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{FunctionKind, FunctionMeta};
use crate::error::{HostError, Result};
use crate::invoke::{Invoker, host_string, host_value};

pub(crate) use storage::{Account, Message};

const MAX_DEQUEUE_COUNT: u32 = 5;
const BATCH: u32 = 16;
/// The longest wait between polls of an empty queue.
const MAX_POLL: Duration = Duration::from_secs(2);

/// The running queue pollers.
#[derive(Debug)]
pub(crate) struct Queues {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// One queue-triggered function, resolved against the app settings.
struct Listener {
    function: String,
    binding: String,
    queue: String,
    account: Account,
    invoker: Invoker,
    invisible_for: Duration,
}

impl Queues {
    /// Resolves every queue trigger's connection (default `AzureWebJobsStorage`) up front, so a missing setting
    /// stops the start with a clear error.
    pub(crate) fn start(
        functions: &[FunctionMeta],
        settings: &BTreeMap<String, String>,
        invoker: &Invoker,
        invisible_for: Duration,
    ) -> Result<Queues> {
        let (stop, stopped) = watch::channel(false);
        let mut listeners = Vec::new();
        for f in functions {
            let FunctionKind::Queue { queue, connection } = &f.kind else {
                continue;
            };
            let setting = connection.as_deref().unwrap_or("AzureWebJobsStorage");
            let config = |message: String| HostError::Config {
                path: format!("{}/function.json", f.name).into(),
                message,
            };
            let value = settings
                .get(setting)
                .cloned()
                .or_else(|| std::env::var(setting).ok())
                .ok_or_else(|| {
                    config(format!(
                        "the queue connection setting {setting:?} is not set"
                    ))
                })?;
            let account = Account::from_connection_string(&value)
                .map_err(|e| config(format!("{setting}: {e}")))?;
            listeners.push(Listener {
                function: f.name.clone(),
                binding: f.trigger_binding.clone(),
                queue: queue.to_lowercase(),
                account,
                invoker: invoker.clone(),
                invisible_for,
            });
        }
        let mut tasks = JoinSet::new();
        for listener in listeners {
            tasks.spawn(listener.run(stopped.clone()));
        }
        Ok(Queues { stop, tasks })
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

impl Listener {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut wait = Duration::from_millis(100);
        let mut reported = false;
        loop {
            if *stop.borrow() {
                return;
            }
            let got = self
                .account
                .get_messages(&self.queue, BATCH, self.invisible_for.as_secs().max(1))
                .await;
            let messages = match got {
                Ok(messages) => {
                    reported = false;
                    messages
                }
                Err(e) => {
                    // One line per outage, not one per poll.
                    if !reported {
                        tracing::warn!(target: "host", "[{}] queue {:?}: {e}; retrying", self.function, self.queue);
                        reported = true;
                    }
                    if e.contains("QueueNotFound") {
                        let _ = self.account.create_queue(&self.queue).await;
                    }
                    Vec::new()
                }
            };
            if messages.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped(&mut stop) => return,
                }
                wait = (wait * 2).min(MAX_POLL);
                continue;
            }
            wait = Duration::from_millis(100);
            let mut batch = JoinSet::new();
            for message in messages {
                let this = self.clone_for_message();
                batch.spawn(async move { this.process(message).await });
            }
            while batch.join_next().await.is_some() {}
        }
    }

    fn clone_for_message(&self) -> Listener {
        Listener {
            function: self.function.clone(),
            binding: self.binding.clone(),
            queue: self.queue.clone(),
            account: self.account.clone(),
            invoker: self.invoker.clone(),
            invisible_for: self.invisible_for,
        }
    }

    async fn process(&self, message: Message) {
        let (data, metadata) = envelope(&self.binding, &message);
        let reason = format!("New queue message detected on '{}'.", self.queue);
        // A JSON object message also lends its properties to the binding data, as in the host.
        let text = decoded_text(&message);
        let outcome = self
            .invoker
            .invoke_trigger(&self.function, &reason, data, metadata, Some(&text))
            .await;
        let result = match outcome {
            Ok(_) => self.account.delete_message(&self.queue, &message).await,
            Err(_) if message.dequeue_count >= MAX_DEQUEUE_COUNT => {
                let poison = format!("{}-poison", self.queue);
                tracing::warn!(target: "host", "[{}] message {} failed {} times; moving it to {poison}", self.function, message.id, message.dequeue_count);
                let moved = async {
                    self.account.create_queue(&poison).await?;
                    self.account.put_message(&poison, &message.text).await?;
                    self.account.delete_message(&self.queue, &message).await
                };
                moved.await
            }
            Err(_) => self.account.release_message(&self.queue, &message).await,
        };
        if let Err(e) = result {
            tracing::warn!(target: "host", "[{}] queue {:?}: {e}", self.function, self.queue);
        }
    }
}

/// The message text: base64-decoded, as the extension's default encoding, when it decodes to UTF-8.
fn decoded_text(message: &Message) -> String {
    BASE64
        .decode(message.text.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| message.text.clone())
}

/// The queue trigger's `Data` and `Metadata`: the message text (base64-decoded, as the extension's default
/// encoding) as a .NET string, and the message properties as binding data.
pub(crate) fn envelope(
    binding: &str,
    message: &Message,
) -> (Map<String, Value>, Map<String, Value>) {
    let text = decoded_text(message);
    let mut data = Map::new();
    data.insert(binding.to_owned(), host_string(&text));
    let mut metadata = Map::new();
    metadata.insert(
        "DequeueCount".into(),
        host_value(Value::from(message.dequeue_count)),
    );
    // DateTimeOffset values are written as themselves, not re-serialized like strings.
    metadata.insert(
        "ExpirationTime".into(),
        Value::String(message.expiration_time.clone()),
    );
    metadata.insert("Id".into(), host_string(&message.id));
    metadata.insert(
        "InsertionTime".into(),
        Value::String(message.insertion_time.clone()),
    );
    metadata.insert(
        "NextVisibleTime".into(),
        Value::String(message.next_visible_time.clone()),
    );
    metadata.insert("PopReceipt".into(), host_string(&message.pop_receipt));
    (data, metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_decoded_and_encoded_like_the_host() {
        let message = Message {
            id: "m1".into(),
            pop_receipt: "p".into(),
            dequeue_count: 1,
            insertion_time: "2026-11-25T17:00:00+00:00".into(),
            expiration_time: "2026-12-02T17:00:00+00:00".into(),
            next_visible_time: "2026-11-25T17:10:00+00:00".into(),
            text: BASE64.encode(r#"{"order":7}"#),
        };
        let (data, metadata) = envelope("msg", &message);
        assert_eq!(data["msg"], json!("\"{\\\"order\\\":7}\""));
        assert_eq!(metadata["DequeueCount"], json!("1"));
        assert_eq!(metadata["Id"], json!("\"m1\""));
        assert_eq!(
            metadata["InsertionTime"],
            json!("2026-11-25T17:00:00+00:00")
        );
        let plain = Message {
            text: "not base64!".into(),
            ..message
        };
        assert_eq!(envelope("msg", &plain).0["msg"], json!("\"not base64!\""));
    }
}
