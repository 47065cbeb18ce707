//! Reading an instance's history through `StreamInstanceHistory`.

use durable_proto as proto;

use crate::connection::Connection;
use crate::error::Result;

/// Collects every chunk of the stream, in order.
pub(crate) async fn fetch(
    connection: &Connection,
    request: proto::StreamInstanceHistoryRequest,
) -> Result<Vec<proto::HistoryEvent>> {
    let mut stub = connection.stub();
    let mut stream = stub
        .stream_instance_history(connection.request(request).await?)
        .await?
        .into_inner();
    let mut events = Vec::new();
    while let Some(chunk) = stream.message().await? {
        events.extend(chunk.events);
    }
    Ok(events)
}
