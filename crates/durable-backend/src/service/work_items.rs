//! `GetWorkItems` with an encoder that writes an orchestrator turn's past events as the store read them (see
//! [`EncodedPastEvents`]); every other method, and every message type, is the generated one.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use durable_proto::task_hub_sidecar_service_server::TaskHubSidecarServiceServer;
use durable_proto::{GetWorkItemsRequest, OrchestratorRequest, WorkItem, work_item};
use futures::StreamExt;
use prost::Message;
use prost::bytes::BufMut;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, StdError, http};
use tonic::server::{Grpc, NamedService, ServerStreamingService};
use tonic::{Request, Response, Status};

use super::{Service, Shared, worker};
use crate::past_events::EncodedPastEvents;
use crate::server::MAX_MESSAGE_BYTES;

/// The route of `GetWorkItems` (the generated server's name for the service, then the method).
const GET_WORK_ITEMS: &str = "/TaskHubSidecarService/GetWorkItems";

/// The key of `WorkItem.orchestratorRequest` (field 1, length-delimited).
const ORCHESTRATOR_REQUEST_KEY: u8 = 1 << 3 | 2;

/// A work item as it goes on the wire: the generated message, and the past events still encoded.
#[derive(Debug, Clone, Default)]
pub(crate) struct WireWorkItem {
    pub(crate) item: WorkItem,
    pub(crate) past_events: EncodedPastEvents,
}

impl From<WorkItem> for WireWorkItem {
    fn from(item: WorkItem) -> Self {
        WireWorkItem {
            item,
            past_events: EncodedPastEvents::default(),
        }
    }
}

impl WireWorkItem {
    /// Writes what prost writes for the work item with the past events decoded into it. prost writes fields in
    /// field-number order and leaves out empty ones, so the request is its fields before `pastEvents` (1, 2), the
    /// stored events (3), then its other fields, each part encoded by the generated code; the work item's
    /// `completionToken` (10) follows the request (1).
    pub(crate) fn encode(self, dst: &mut impl BufMut) -> Result<(), prost::EncodeError> {
        let WireWorkItem { item, past_events } = self;
        let completion_token = item.completion_token;
        let mut request = match item.request {
            Some(work_item::Request::OrchestratorRequest(request)) if !past_events.is_empty() => {
                request
            }
            request => {
                return WorkItem {
                    request,
                    completion_token,
                }
                .encode(dst);
            }
        };
        let head = OrchestratorRequest {
            instance_id: std::mem::take(&mut request.instance_id),
            execution_id: request.execution_id.take(),
            ..OrchestratorRequest::default()
        };
        let len = head.encoded_len() + past_events.as_bytes().len() + request.encoded_len();
        dst.put_u8(ORCHESTRATOR_REQUEST_KEY);
        prost::encode_length_delimiter(len, dst)?;
        head.encode(dst)?;
        dst.put_slice(past_events.as_bytes());
        request.encode(dst)?;
        WorkItem {
            request: None,
            completion_token,
        }
        .encode(dst)
    }

    /// The generated message with the past events decoded into it.
    pub(crate) fn into_generated(mut self) -> Result<WorkItem, Status> {
        self.past_events
            .decode_into(&mut self.item)
            .map_err(|e| Status::from(crate::error::StoreError::from(e)))?;
        Ok(self.item)
    }
}

/// The generated codec's decoder for the request, [`WireWorkItem::encode`] for the responses.
#[derive(Debug, Clone, Copy, Default)]
struct WorkItemCodec;

impl Codec for WorkItemCodec {
    type Encode = WireWorkItem;
    type Decode = GetWorkItemsRequest;
    type Encoder = WorkItemCodec;
    type Decoder = tonic_prost::ProstDecoder<GetWorkItemsRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        WorkItemCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

impl Encoder for WorkItemCodec {
    type Item = WireWorkItem;
    type Error = Status;

    fn encode(&mut self, item: WireWorkItem, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode a work item: {e}")))
    }
}

/// The gRPC service as served: the generated server, except for `GetWorkItems`.
#[derive(Debug, Clone)]
pub(crate) struct Routes {
    generated: TaskHubSidecarServiceServer<Service>,
    shared: Arc<Shared>,
}

impl Routes {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let generated = TaskHubSidecarServiceServer::new(Service {
            shared: shared.clone(),
        })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Routes { generated, shared }
    }
}

impl NamedService for Routes {
    const NAME: &'static str = <TaskHubSidecarServiceServer<Service> as NamedService>::NAME;
}

impl<B> tonic::codegen::Service<http::Request<B>> for Routes
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        <TaskHubSidecarServiceServer<Service> as tonic::codegen::Service<http::Request<B>>>::poll_ready(
            &mut self.generated,
            cx,
        )
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != GET_WORK_ITEMS {
            return self.generated.call(request);
        }
        let method = GetWorkItems(self.shared.clone());
        Box::pin(async move {
            let mut grpc = Grpc::new(WorkItemCodec)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
            Ok(grpc.server_streaming(method, request).await)
        })
    }
}

#[derive(Debug)]
struct GetWorkItems(Arc<Shared>);

impl ServerStreamingService<GetWorkItemsRequest> for GetWorkItems {
    type Response = WireWorkItem;
    type ResponseStream = worker::WorkItemStream;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<GetWorkItemsRequest>) -> Self::Future {
        let shared = self.0.clone();
        Box::pin(async move { worker::get_work_items(&shared, request).await })
    }
}

/// The stream of the generated `GetWorkItems`, which [`Routes`] does not call: the same items, decoded.
pub(crate) type GeneratedWorkItemStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<WorkItem, Status>> + Send>>;

pub(crate) fn generated(stream: worker::WorkItemStream) -> GeneratedWorkItemStream {
    Box::pin(stream.map(|item| item.and_then(WireWorkItem::into_generated)))
}

#[cfg(test)]
#[path = "work_items_tests.rs"]
mod tests;
