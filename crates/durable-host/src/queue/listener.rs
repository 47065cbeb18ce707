//! One queue trigger: the polling loop and the life of a message (`QueueListener` and `QueueProcessor` in
//! `Azure/azure-sdk-for-net` `sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared/Queues/`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinSet;

use super::Watchers;
use super::options::{Backoff, QueuesOptions};
use super::storage::{Message, Queue, StorageError};
use crate::invoke::{Invoker, host_string, host_value};

/// A received message stays invisible this long while its function runs, and is renewed at half of it
/// (the extension's fixed ten minutes).
const RECEIVE_VISIBILITY: Duration = Duration::from_secs(10 * 60);
/// After a failed renewal, the next try comes sooner (`LinearSpeedupStrategy`'s minimum).
const RENEWAL_RETRY: Duration = Duration::from_secs(60);

pub(super) struct Listener {
    pub(super) function: String,
    pub(super) binding: String,
    pub(super) queue: Queue,
    pub(super) poison: Option<Queue>,
    pub(super) options: Arc<QueuesOptions>,
    pub(super) invoker: Invoker,
    pub(super) wake: Arc<Notify>,
    pub(super) watchers: Arc<Watchers>,
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

impl Listener {
    pub(super) async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(self.options.max_polling_interval);
        let mut found_since_delay = false;
        let mut exists = false;
        // The last problem logged: one line per outage, not one per poll.
        let mut reported: Option<String> = None;
        let mut in_flight = JoinSet::new();
        let threshold = usize::try_from(self.options.new_batch_threshold).unwrap_or(usize::MAX);
        loop {
            if *stop.borrow() {
                break;
            }
            while in_flight.try_join_next().is_some() {}
            let messages = match self.poll(&mut exists).await {
                Ok(Polled::Messages(messages)) => {
                    if reported.take().is_some() {
                        tracing::info!(target: "host", "[{}] queue {:?} is reachable again", self.function, self.queue.name());
                    }
                    messages
                }
                Ok(Polled::NoQueue) => {
                    let note = "the queue does not exist; the trigger waits for it".to_owned();
                    if reported.as_ref() != Some(&note) {
                        tracing::info!(target: "host", "[{}] queue {:?}: {note}", self.function, self.queue.name());
                        reported = Some(note);
                    }
                    Vec::new()
                }
                Err(e) => {
                    let note = e.to_string();
                    if reported.as_ref() != Some(&note) {
                        tracing::warn!(target: "host", "[{}] queue {:?}: {note}; retrying", self.function, self.queue.name());
                        reported = Some(note);
                    }
                    Vec::new()
                }
            };
            if messages.is_empty() {
                let wait = backoff.next(found_since_delay);
                found_since_delay = false;
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => {}
                    _ = stopped(&mut stop) => break,
                }
                continue;
            }
            found_since_delay = true;
            for message in messages {
                let this = Arc::clone(&self);
                in_flight.spawn(async move { this.process(message).await });
            }
            // The next batch is fetched once no more than `newBatchThreshold` messages are in flight.
            while in_flight.len() > threshold {
                tokio::select! {
                    _ = in_flight.join_next() => {}
                    _ = stopped(&mut stop) => break,
                }
            }
        }
        // Messages in flight finish (and are deleted or released) before the listener stops.
        while in_flight.join_next().await.is_some() {}
    }

    async fn poll(&self, exists: &mut bool) -> Result<Polled, StorageError> {
        // Existence is checked before receiving (and again after any error), as the extension does, rather than
        // creating the queue: a trigger never creates its own queue.
        if !*exists {
            *exists = self.queue.exists().await?;
            if !*exists {
                return Ok(Polled::NoQueue);
            }
        }
        match self
            .queue
            .receive(self.options.batch_size, RECEIVE_VISIBILITY)
            .await
        {
            Ok(messages) => Ok(Polled::Messages(messages)),
            Err(e) => {
                *exists = false;
                if e.code() == Some("QueueNotFound") {
                    Ok(Polled::NoQueue)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn process(&self, message: Message) {
        let options = &self.options;
        if message.dequeue_count > options.max_dequeue_count {
            self.to_poison(&message, &message.pop_receipt).await;
            return;
        }
        let Some(bytes) = options.message_encoding.decode(&message.text) else {
            tracing::warn!(target: "host", "[{}] Message decoding has failed! Check MessageEncoding settings. MessageId={}.", self.function, message.id);
            self.to_poison(&message, &message.pop_receipt).await;
            return;
        };
        // The trigger binds the message as a string (`ToValidUTF8String`).
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let pop_receipt = Arc::new(Mutex::new(message.pop_receipt.clone()));
        let (done, done_rx) = oneshot::channel();
        let renewal = tokio::spawn(renew(
            self.queue.clone(),
            message.id.clone(),
            Arc::clone(&pop_receipt),
            done_rx,
        ));
        let (data, metadata) = envelope(&self.binding, &message, &text);
        let reason = format!("New queue message detected on '{}'.", self.queue.name());
        let outcome = self
            .invoker
            .invoke_trigger(&self.function, &reason, data, metadata, Some(&text))
            .await;
        // A renewal in progress finishes, so that the pop receipt below is the current one.
        let _ = done.send(());
        let _ = renewal.await;
        let pop_receipt = match pop_receipt.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let result = match (outcome, &self.poison) {
            (Ok(_), _) => self.queue.delete(&message.id, &pop_receipt).await,
            (Err(_), Some(_)) if message.dequeue_count >= options.max_dequeue_count => {
                self.to_poison(&message, &pop_receipt).await;
                Ok(())
            }
            (Err(_), Some(_)) => self
                .queue
                .update_visibility(&message.id, &pop_receipt, options.visibility_timeout)
                .await
                .map(drop),
            // Without a poison queue a failed message stays invisible rather than failing again at once.
            (Err(_), None) => Ok(()),
        };
        self.report(&message, result);
    }

    /// Copies the message, as stored, to the poison queue (creating it) and deletes it here.
    async fn to_poison(&self, message: &Message, pop_receipt: &str) {
        let Some(poison) = &self.poison else {
            return;
        };
        tracing::warn!(
            target: "host",
            "[{}] Message has reached MaxDequeueCount of {}. Moving message to queue '{}'.",
            self.function, self.options.max_dequeue_count, poison.name()
        );
        let moved = match poison.send_creating(&message.text).await {
            Ok(()) => {
                self.watchers.notify(poison.name());
                self.queue.delete(&message.id, pop_receipt).await
            }
            Err(e) => Err(e),
        };
        self.report(message, moved);
    }

    fn report(&self, message: &Message, result: Result<(), StorageError>) {
        match result {
            Ok(()) => {}
            Err(e) if e.message_gone() => {
                tracing::debug!(target: "host", "[{}] message {}: {e}", self.function, message.id);
            }
            Err(e) => {
                tracing::warn!(target: "host", "[{}] queue {:?}, message {}: {e}", self.function, self.queue.name(), message.id);
            }
        }
    }
}

enum Polled {
    Messages(Vec<Message>),
    NoQueue,
}

/// Keeps a message invisible while its function runs: at half the visibility, the visibility is renewed and the
/// new pop receipt kept. Ends when `done` fires, after finishing an update in progress.
async fn renew(
    queue: Queue,
    id: String,
    pop_receipt: Arc<Mutex<String>>,
    mut done: oneshot::Receiver<()>,
) {
    let mut wait = RECEIVE_VISIBILITY / 2;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut done => return,
        }
        let current = match pop_receipt.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match queue
            .update_visibility(&id, &current, RECEIVE_VISIBILITY)
            .await
        {
            Ok(Some(next)) => {
                *match pop_receipt.lock() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                } = next;
                wait = RECEIVE_VISIBILITY / 2;
            }
            Ok(None) => wait = RECEIVE_VISIBILITY / 2,
            // Someone else has the message now, or it is gone: nothing to keep invisible.
            Err(e) if e.message_gone() => return,
            Err(e) => {
                tracing::warn!(target: "host", "queue {:?}, message {id}: {e}; retrying the renewal", queue.name());
                wait = RENEWAL_RETRY;
            }
        }
    }
}

/// A `DateTimeOffset` binding value as the host sends it: re-parsed from its text, so whole seconds, and written
/// by Newtonsoft in ISO 8601 with its offset (storage times are UTC).
fn date_time_offset(at: OffsetDateTime) -> Value {
    let t = at.to_offset(time::UtcOffset::UTC);
    Value::String(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// The queue trigger's `Data` and `Metadata` (`QueueTriggerBinding.CreateBindingData`): the message text as a
/// .NET string, `DequeueCount` as a number, `Id` and `PopReceipt` as strings and the three times as
/// `DateTimeOffset`s (an absent expiry or next-visible time is `DateTimeOffset.MaxValue`, an absent insertion
/// time is now).
pub(crate) fn envelope(
    binding: &str,
    message: &Message,
    text: &str,
) -> (Map<String, Value>, Map<String, Value>) {
    let max_value = OffsetDateTime::new_utc(
        time::Date::from_calendar_date(9999, time::Month::December, 31).unwrap_or(time::Date::MAX),
        time::Time::from_hms(23, 59, 59).unwrap_or(time::Time::MIDNIGHT),
    );
    let mut data = Map::new();
    data.insert(binding.to_owned(), host_string(text));
    let mut metadata = Map::new();
    metadata.insert(
        "DequeueCount".into(),
        host_value(Value::from(message.dequeue_count)),
    );
    metadata.insert(
        "ExpirationTime".into(),
        date_time_offset(message.expiration_time.unwrap_or(max_value)),
    );
    metadata.insert("Id".into(), host_string(&message.id));
    metadata.insert(
        "InsertionTime".into(),
        date_time_offset(
            message
                .insertion_time
                .unwrap_or_else(OffsetDateTime::now_utc),
        ),
    );
    metadata.insert(
        "NextVisibleTime".into(),
        date_time_offset(message.next_visible_time.unwrap_or(max_value)),
    );
    metadata.insert("PopReceipt".into(), host_string(&message.pop_receipt));
    (data, metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_bound_like_the_host() {
        let at = |s: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        let message = Message {
            id: "m1".into(),
            pop_receipt: "p".into(),
            dequeue_count: 1,
            insertion_time: Some(at("2026-11-25T17:00:00.25Z")),
            expiration_time: None,
            next_visible_time: Some(at("2026-11-25T18:10:00+01:00")),
            text: "eyJvcmRlciI6N30=".into(),
        };
        let (data, metadata) = envelope("msg", &message, r#"{"order":7}"#);
        assert_eq!(data["msg"], json!("\"{\\\"order\\\":7}\""));
        assert_eq!(metadata["DequeueCount"], json!("1"));
        assert_eq!(metadata["Id"], json!("\"m1\""));
        assert_eq!(metadata["PopReceipt"], json!("\"p\""));
        assert_eq!(
            metadata["InsertionTime"],
            json!("2026-11-25T17:00:00+00:00")
        );
        assert_eq!(
            metadata["NextVisibleTime"],
            json!("2026-11-25T17:10:00+00:00")
        );
        assert_eq!(
            metadata["ExpirationTime"],
            json!("9999-12-31T23:59:59+00:00")
        );
    }
}
