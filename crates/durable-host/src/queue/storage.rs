//! The queue operations the trigger and the output bindings use, on the SDK's `QueueClient`, with the service's
//! error codes kept so that callers can tell "gone" from "failed".

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::headers::HeaderName;
use azure_core::http::{RequestContent, XmlFormat};
use azure_storage_queue::QueueClient;
use azure_storage_queue::models::{
    QueueClientReceiveMessagesOptions, QueueMessage, ReceivedMessage,
};
use time::OffsetDateTime;

use super::connection::Connection;

const POP_RECEIPT: HeaderName = HeaderName::from_static("x-ms-popreceipt");

/// A failed storage call: what failed, and the service's error code when it answered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {detail}")]
pub(crate) struct StorageError {
    what: &'static str,
    detail: String,
    code: Option<String>,
}

impl StorageError {
    fn from_sdk(what: &'static str, e: &azure_core::Error) -> StorageError {
        let code = match e.kind() {
            azure_core::error::ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
            _ => None,
        };
        let detail = match (&code, e.http_status()) {
            (Some(code), Some(status)) => format!("HTTP {} {code}", u16::from(status)),
            _ => e.to_string(),
        };
        StorageError { what, detail, code }
    }

    /// The service's error code (`QueueNotFound`, `PopReceiptMismatch`, ...).
    pub(crate) fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The message or its queue is gone, or another consumer holds it: nothing left to do with it.
    pub(crate) fn message_gone(&self) -> bool {
        matches!(
            self.code(),
            Some(
                "MessageNotFound"
                    | "QueueNotFound"
                    | "PopReceiptMismatch"
                    | "QueueBeingDeleted"
                    | "QueueDisabled"
            )
        )
    }
}

/// One received message, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) id: String,
    pub(crate) pop_receipt: String,
    pub(crate) dequeue_count: i64,
    pub(crate) insertion_time: Option<OffsetDateTime>,
    pub(crate) expiration_time: Option<OffsetDateTime>,
    pub(crate) next_visible_time: Option<OffsetDateTime>,
    /// The message text on the wire (base64 when the writer encoded it).
    pub(crate) text: String,
}

impl Message {
    fn from_received(m: ReceivedMessage) -> Option<Message> {
        Some(Message {
            id: m.message_id?,
            pop_receipt: m.pop_receipt?,
            dequeue_count: m.dequeue_count.unwrap_or(1),
            insertion_time: m.insertion_time,
            expiration_time: m.expiration_time,
            next_visible_time: m.time_next_visible,
            text: m.message_text.unwrap_or_default(),
        })
    }
}

/// One queue of a connection.
#[derive(Clone)]
pub(crate) struct Queue {
    client: Arc<QueueClient>,
    name: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("name", &self.name).finish()
    }
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

impl Queue {
    pub(crate) fn new(connection: &Connection, name: &str) -> Result<Queue, String> {
        let client = connection
            .service
            .queue_client(name)
            .map_err(|e| format!("queue {name:?}: {e}"))?;
        Ok(Queue {
            client: Arc::new(client),
            name: name.to_owned(),
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) async fn exists(&self) -> Result<bool, StorageError> {
        self.client
            .exists()
            .await
            .map_err(|e| StorageError::from_sdk("check the queue", &e))
    }

    /// Creates the queue; one that already exists is fine.
    pub(crate) async fn create_if_missing(&self) -> Result<(), StorageError> {
        match self.client.create(None).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = StorageError::from_sdk("create the queue", &e);
                if e.code() == Some("QueueAlreadyExists") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Up to `count` messages (1 to 32), invisible to others for `visibility`.
    pub(crate) async fn receive(
        &self,
        count: u32,
        visibility: Duration,
    ) -> Result<Vec<Message>, StorageError> {
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(i32::try_from(count).unwrap_or(32)),
            visibility_timeout: Some(seconds(visibility)),
            ..Default::default()
        };
        let failed = |e: azure_core::Error| StorageError::from_sdk("receive messages", &e);
        let received = self
            .client
            .receive_messages(Some(options))
            .await
            .map_err(failed)?
            .into_model()
            .map_err(failed)?;
        Ok(received
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(Message::from_received)
            .collect())
    }

    pub(crate) async fn delete(&self, id: &str, pop_receipt: &str) -> Result<(), StorageError> {
        self.client
            .delete_message(id, pop_receipt, None)
            .await
            .map(drop)
            .map_err(|e| StorageError::from_sdk("delete the message", &e))
    }

    /// Makes a received message visible again after `visibility`; returns its new pop receipt.
    pub(crate) async fn update_visibility(
        &self,
        id: &str,
        pop_receipt: &str,
        visibility: Duration,
    ) -> Result<Option<String>, StorageError> {
        let response = self
            .client
            .update_message(id, pop_receipt, seconds(visibility), None)
            .await
            .map_err(|e| StorageError::from_sdk("update the message", &e))?;
        Ok(response
            .headers()
            .get_optional_str(&POP_RECEIPT)
            .map(str::to_owned))
    }

    /// Adds a message whose text is already in the queue's encoding.
    pub(crate) async fn send(&self, text: &str) -> Result<(), StorageError> {
        let failed = |e: azure_core::Error| StorageError::from_sdk("send a message", &e);
        let content: RequestContent<QueueMessage, XmlFormat> = QueueMessage {
            message_text: Some(text.to_owned()),
        }
        .try_into()
        .map_err(failed)?;
        self.client
            .send_message(content, None)
            .await
            .map(drop)
            .map_err(failed)
    }

    /// [`Queue::send`], creating the queue when it does not exist yet (`AddMessageAndCreateIfNotExistsAsync`).
    pub(crate) async fn send_creating(&self, text: &str) -> Result<(), StorageError> {
        match self.send(text).await {
            Err(e) if e.code() == Some("QueueNotFound") => {
                self.create_if_missing().await?;
                self.send(text).await
            }
            other => other,
        }
    }
}
