//! Running one invocation: decode the trigger value for the function's kind, run it, encode the reply.

use durable_core::proto;
use futures::FutureExt as _;
use serde_json::{Map, Value};
use tracing::Instrument;
use tracing::Level;

use crate::app::{FunctionDef, FunctionKind, Handler, names};
use crate::client_binding::ClientBinding;
use crate::context::InvocationContext;
use crate::envelope::{
    InvocationRequest, activity_input, decode_layered_owned, decode_proto_trigger, metadata_string,
};
use crate::error::InvocationError;
use crate::http_types::HttpRequest;
use crate::logs::LogSink;
use crate::reply::{self, ReturnValue};

/// A successful invocation's `Outputs` and `ReturnValue`.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub(crate) outputs: Map<String, Value>,
    pub(crate) return_value: ReturnValue,
}

pub(crate) async fn dispatch(
    handler: &Handler,
    def: &FunctionDef,
    mut request: InvocationRequest,
    invocation_id: Option<String>,
    sink: &LogSink,
    trace: Option<proto::TraceContext>,
) -> Result<Reply, InvocationError> {
    if let Some(method) = request.method_name()
        && !method.eq_ignore_ascii_case(&def.name)
    {
        sink.log(
            Level::WARN,
            &format!(
                "the host asked for '{method}' (Metadata.sys.MethodName) on the path of '{}'; running '{}'",
                def.name, def.name
            ),
        );
    }
    match &def.kind {
        FunctionKind::Orchestrator => orchestrator(handler, def, &request, sink).await,
        FunctionKind::Entity => entity(handler, def, &request, sink, trace).await,
        FunctionKind::Activity => activity(handler, def, &request, sink, trace).await,
        FunctionKind::Http { handler: f, .. } => {
            let req = http_request(&mut request)?;
            let ctx = context(def, request, invocation_id, sink);
            let response = run_user(def, sink, f(req, ctx.clone())).await?;
            let mut reply = collect(&ctx);
            reply.outputs.insert(
                names::HTTP_RESPONSE.to_owned(),
                response.to_output_binding(),
            );
            Ok(reply)
        }
        FunctionKind::Starter { handler: f, .. } => {
            let req = http_request(&mut request)?;
            let value = request
                .binding(names::DURABLE_CLIENT, false)
                .ok_or_else(|| missing(names::DURABLE_CLIENT))?;
            let binding = ClientBinding::from_binding_value(names::DURABLE_CLIENT, value)?;
            let client = handler.inner.clients.get(binding).map_err(|e| {
                InvocationError::binding(
                    names::DURABLE_CLIENT,
                    format!("cannot set up a client for rpcBaseUrl ({e})"),
                )
            })?;
            let ctx = context(def, request, invocation_id, sink);
            // What the starter starts becomes a child of this invocation (of its span when OpenTelemetry is set
            // up, else of the context the host sent).
            let parent = durable_telemetry::context_of(&tracing::Span::current()).or(trace);
            let started =
                Box::pin(crate::client::STARTER_TRACE.scope(parent, f(req, client, ctx.clone())));
            let response = run_user(def, sink, started).await?;
            let mut reply = collect(&ctx);
            reply.outputs.insert(
                names::HTTP_RESPONSE.to_owned(),
                response.to_output_binding(),
            );
            Ok(reply)
        }
        FunctionKind::Queue { handler: f, .. } | FunctionKind::Timer { handler: f, .. } => {
            let binding = match &def.kind {
                FunctionKind::Queue { .. } => names::QUEUE_MESSAGE,
                _ => names::TIMER,
            };
            let value = request
                .binding(binding, true)
                .cloned()
                .ok_or_else(|| missing(binding))?;
            let ctx = context(def, request, invocation_id, sink);
            let fut = f(binding, &value, ctx.clone())?;
            run_user(def, sink, fut).await?;
            Ok(collect(&ctx))
        }
    }
}

/// The W3C context of an invocation request's `traceparent` (and `tracestate`) headers, when valid.
pub(crate) fn trace_header(headers: &axum::http::HeaderMap) -> Option<proto::TraceContext> {
    let parent = headers.get("traceparent")?.to_str().ok()?;
    let state = headers.get("tracestate").and_then(|v| v.to_str().ok());
    durable_core::trace::TraceParent::parse(parent).map(|p| p.to_proto(state))
}

fn missing(binding: &str) -> InvocationError {
    InvocationError::binding(binding, "missing from Data")
}

fn trigger_value<'a>(
    request: &'a InvocationRequest,
    binding: &str,
) -> Result<&'a Value, InvocationError> {
    request
        .binding(binding, true)
        .ok_or_else(|| missing(binding))
}

async fn orchestrator(
    handler: &Handler,
    def: &FunctionDef,
    request: &InvocationRequest,
    sink: &LogSink,
) -> Result<Reply, InvocationError> {
    let binding = names::DURABLE_CONTEXT;
    let req: proto::OrchestratorRequest =
        decode_proto_trigger(binding, trigger_value(request, binding)?)?;
    let summary = format!(
        "orchestrator '{}' instance '{}': {} past + {} new events",
        def.name,
        req.instance_id,
        req.past_events.len(),
        req.new_events.len()
    );
    let registry = &handler.inner.registry;
    let scoped = sink.clone();
    // A turn is replay over in-memory events with no I/O to await, so it runs right here, as the gRPC worker runs
    // it on the work item's task: a task of its own (or the blocking pool before it) cost every turn a wake-up of
    // another thread and one back. The engine contains a panic of the user's code itself; `catch_unwind` keeps
    // one of its own out of the connection too. The turn's span hangs under the orchestration span derived from
    // history, whatever the host's header says: the extension never hands back the orchestration's trace context,
    // and the derived one is the same each turn.
    let response = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        durable_telemetry::orchestration_turn(&req, || {
            scoped.sync_scope(|| registry.execute_orchestrator(&req))
        })
    }))
    .map_err(|payload| {
        InvocationError::Internal(format!(
            "the orchestrator engine failed: {}",
            panic_message(payload)
        ))
    })?;
    sink.log(
        Level::DEBUG,
        &format!("{summary} -> {} actions", response.actions.len()),
    );
    Ok(Reply {
        outputs: Map::new(),
        return_value: reply::proto(&response),
    })
}

async fn entity(
    handler: &Handler,
    def: &FunctionDef,
    request: &InvocationRequest,
    sink: &LogSink,
    trace: Option<proto::TraceContext>,
) -> Result<Reply, InvocationError> {
    let binding = names::DURABLE_CONTEXT;
    let req: proto::EntityBatchRequest =
        decode_proto_trigger(binding, trigger_value(request, binding)?)?;
    match req.instance_id.parse::<durable_core::EntityId>() {
        Ok(id) if id.name.eq_ignore_ascii_case(&def.name) => {}
        Ok(id) => {
            return Err(InvocationError::binding(
                binding,
                format!(
                    "entity instance '{}' belongs to entity '{}', not to function '{}'",
                    req.instance_id, id.name, def.name
                ),
            ));
        }
        Err(_) => {
            return Err(InvocationError::binding(
                binding,
                format!(
                    "instanceId '{}' is not an entity instance ID (@name@key)",
                    req.instance_id
                ),
            ));
        }
    }
    let operations = req.operations.len();
    let registry = handler.inner.registry.clone();
    let scoped = sink.clone();
    // Each operation runs in its own span: under the operation's trace context when it has one, else under the
    // invocation's `traceparent`, as an activity runs under it.
    let invocation = tracing::Span::current();
    let result = tokio::task::spawn_blocking(move || {
        let span_for = |op: &proto::OperationRequest| {
            let span = durable_telemetry::entity_operation_span(&req.instance_id, op);
            if op.trace_context.is_none() {
                durable_telemetry::set_parent_from_proto(&span, trace.as_ref());
            }
            span
        };
        invocation.in_scope(|| {
            scoped.sync_scope(|| registry.execute_entity_batch_traced(&req, None, &span_for))
        })
    })
    .await
    .map_err(|e| InvocationError::Internal(format!("the entity engine failed: {e}")))?;
    sink.log(
        Level::DEBUG,
        &format!("entity '{}': {operations} operations", def.name),
    );
    Ok(Reply {
        outputs: Map::new(),
        return_value: reply::proto(&result),
    })
}

async fn activity(
    handler: &Handler,
    def: &FunctionDef,
    request: &InvocationRequest,
    sink: &LogSink,
    trace: Option<proto::TraceContext>,
) -> Result<Reply, InvocationError> {
    let input = activity_input(names::ACTIVITY_INPUT, request)?;
    let instance_id = orchestration_instance_id(request, input.as_deref(), def, sink);
    let req = proto::ActivityRequest {
        name: def.name.clone(),
        input,
        orchestration_instance: Some(proto::OrchestrationInstance {
            instance_id: instance_id.clone(),
            execution_id: None,
        }),
        // The host's invocation request is the only place an activity's trace context can travel.
        parent_trace_context: trace,
        ..Default::default()
    };
    let span = durable_telemetry::activity_span(&req);
    let fut = span.in_scope(|| handler.inner.registry.execute_activity(req));
    // Awaited on the invocation's own task, as a turn is run: a task of its own would only wake another of the
    // runtime's threads to pick it up, and the invocation waits for it all the same. `catch_unwind` contains a
    // panic in the user's code as the task did.
    let outcome = std::panic::AssertUnwindSafe(sink.clone().scope(fut).instrument(span.clone()))
        .catch_unwind()
        .await;
    if let Ok(proto::ActivityResponse {
        failure_details: Some(details),
        ..
    }) = &outcome
    {
        span.record("otel.status_code", "error");
        span.record("otel.status_description", details.error_message.as_str());
    }
    let details = match outcome {
        Ok(proto::ActivityResponse {
            failure_details: Some(details),
            ..
        }) => details,
        Ok(response) => {
            let return_value = match response.result.as_deref() {
                None => Value::Null,
                Some(text) => serde_json::from_str(text).map_err(|e| {
                    InvocationError::Internal(format!(
                        "activity '{}' produced a result that is not JSON: {e}",
                        def.name
                    ))
                })?,
            };
            return Ok(Reply {
                outputs: Map::new(),
                return_value: return_value.into(),
            });
        }
        Err(payload) => proto::TaskFailureDetails {
            error_type: "Panic".to_owned(),
            error_message: panic_message(payload),
            ..Default::default()
        },
    };
    sink.log(
        Level::WARN,
        &format!(
            "activity '{}' for instance '{instance_id}' failed: {}: {}",
            def.name, details.error_type, details.error_message
        ),
    );
    // A non-2xx would reach the orchestration as a bare HTTP error; the envelope keeps type and message.
    Ok(Reply {
        outputs: Map::new(),
        return_value: durable_core::failure_envelope::encode(&details).into(),
    })
}

/// The calling orchestration's instance ID, from `Metadata.instanceId`. The host copies the top-level properties
/// of an object input into the binding data over its own (`Utility.ApplyBindingData` in Azure/azure-functions-host),
/// so when the input has an `instanceId` property (in any case) the value there is the input's, and the real ID is
/// nowhere in the request: the activity then gets an empty ID rather than a wrong one, with a warning.
fn orchestration_instance_id(
    request: &InvocationRequest,
    input: Option<&str>,
    def: &FunctionDef,
    sink: &LogSink,
) -> String {
    let shadowed = input
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|value| match value {
            Value::Object(object) => Some(object.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("instanceId") && !v.is_null() && !v.is_array()
            })),
            _ => None,
        })
        .unwrap_or(false);
    if shadowed {
        sink.log(
            Level::WARN,
            &format!(
                "activity '{}': its input has an 'instanceId' property, which the Functions host copies over the \
                 orchestration's instance ID in the invocation's metadata; the instance ID is unknown for this call \
                 (rename the property to keep it)",
                def.name
            ),
        );
        return String::new();
    }
    request
        .metadata_value("instanceId")
        .and_then(metadata_string)
        .unwrap_or_default()
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    format!("the function panicked: {text}")
}

/// The request, taken out of the invocation: its body (up to the host's limit) is moved, not copied.
fn http_request(request: &mut InvocationRequest) -> Result<HttpRequest, InvocationError> {
    let value = request
        .take_binding(names::HTTP_REQUEST, false)
        .ok_or_else(|| missing(names::HTTP_REQUEST))?;
    decode_layered_owned(names::HTTP_REQUEST, value)
}

fn context(
    def: &FunctionDef,
    request: InvocationRequest,
    invocation_id: Option<String>,
    sink: &LogSink,
) -> InvocationContext {
    let declared = def
        .kind
        .outputs()
        .iter()
        .map(|o| o.name().to_owned())
        .collect();
    InvocationContext::new(
        def.name.clone(),
        invocation_id,
        request.metadata,
        sink.clone(),
        declared,
    )
}

fn collect(ctx: &InvocationContext) -> Reply {
    let outputs = ctx.take_outputs();
    Reply {
        outputs: outputs.bindings,
        return_value: outputs.return_value.unwrap_or(Value::Null).into(),
    }
}

/// Runs user code on its own task, so a panic fails this invocation only.
pub(crate) async fn run_user<T: Send + 'static>(
    def: &FunctionDef,
    sink: &LogSink,
    fut: crate::app::BoxFuture<Result<T, crate::error::FunctionError>>,
) -> Result<T, InvocationError> {
    // The user's code stays inside the invocation's span (its logs, its own spans, and the trace context that
    // the client's calls send on).
    let fut = sink.clone().scope(fut).instrument(tracing::Span::current());
    match tokio::spawn(fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(InvocationError::Function {
            function: def.name.clone(),
            detail: error.to_string(),
        }),
        Err(join) if join.is_panic() => Err(InvocationError::Function {
            function: def.name.clone(),
            detail: panic_message(join.into_panic()),
        }),
        Err(join) => Err(InvocationError::Internal(format!(
            "function '{}' was cancelled: {join}",
            def.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_readable() {
        assert_eq!(
            panic_message(Box::new("boom")),
            "the function panicked: boom"
        );
        assert_eq!(
            panic_message(Box::new(String::from("bang"))),
            "the function panicked: bang"
        );
        assert_eq!(
            panic_message(Box::new(42)),
            "the function panicked: unknown panic"
        );
    }
}
