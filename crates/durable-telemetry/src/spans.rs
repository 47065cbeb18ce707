//! `tracing` spans under a context that came over the wire, and the context of a span to send on.

use durable_core::proto;
use durable_core::trace::{TraceParent, TurnTrace, span_name};
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `parent` (with its `tracestate`) the OpenTelemetry parent of `span`. Without an OpenTelemetry layer in
/// the subscriber this does nothing.
pub fn set_parent(span: &tracing::Span, parent: &TraceParent, trace_state: Option<&str>) {
    parent_span(span, parent, trace_state);
}

/// [`set_parent`], telling whether an OpenTelemetry layer took the span.
fn parent_span(span: &tracing::Span, parent: &TraceParent, trace_state: Option<&str>) -> bool {
    let state = trace_state
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let context = SpanContext::new(
        TraceId::from_bytes(parent.trace_id),
        SpanId::from_bytes(parent.span_id),
        TraceFlags::new(parent.flags),
        true,
        state,
    );
    // Fails when the span is disabled, already started or has no OpenTelemetry layer: nothing to parent then.
    span.set_parent(Context::new().with_remote_span_context(context))
        .is_ok()
}

/// [`set_parent`] from a protocol `TraceContext`; an absent or invalid one leaves `span` as it is.
pub fn set_parent_from_proto(span: &tracing::Span, context: Option<&proto::TraceContext>) {
    if let Some((parent, state)) = parent_of(context) {
        set_parent(span, &parent, state.as_deref());
    }
}

/// The W3C context of a protocol `TraceContext`, with its `tracestate`.
pub fn parent_of(context: Option<&proto::TraceContext>) -> Option<(TraceParent, Option<String>)> {
    let context = context?;
    let parent = TraceParent::from_proto(context)?;
    Some((
        parent,
        context.trace_state.clone().filter(|s| !s.is_empty()),
    ))
}

/// The OpenTelemetry context of `span` as a protocol `TraceContext`, for the work it starts; `None` when the span
/// has none (no OpenTelemetry layer, or a disabled span).
pub fn context_of(span: &tracing::Span) -> Option<proto::TraceContext> {
    let context = span.context();
    let span_ref = context.span();
    let sc = span_ref.span_context();
    if !sc.is_valid() {
        return None;
    }
    let parent = TraceParent {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
    };
    let state = sc.trace_state().header();
    Some(parent.to_proto(Some(&state)))
}

/// The span of one orchestration turn (`orchestration:<Name>:turn`, INTERNAL): a child of the orchestration span
/// that the engine derived, so every turn lands under the one orchestration span, which is emitted when the
/// execution completes.
pub fn orchestration_turn_span(trace: &TurnTrace) -> tracing::Span {
    turn_span(trace).0
}

/// [`orchestration_turn_span`], and whether an OpenTelemetry layer records it.
pub(crate) fn turn_span(trace: &TurnTrace) -> (tracing::Span, bool) {
    let span = tracing::info_span!(
        target: "durabletask",
        "orchestration turn",
        otel.name = %format!("{}:turn", span_name("orchestration", &trace.name, trace.version.as_deref())),
        otel.kind = "internal",
        durabletask.r#type = "orchestration",
        durabletask.task.name = %trace.name,
        durabletask.task.instance_id = %trace.instance_id,
        durabletask.task.execution_id = trace.execution_id.as_deref(),
    );
    let exported = parent_span(&span, &trace.orchestration, trace.trace_state.as_deref());
    (span, exported)
}

/// The span of one activity execution (`activity:<Name>`, SERVER), under the context the activity request carried.
pub fn activity_span(request: &proto::ActivityRequest) -> tracing::Span {
    let instance_id = request
        .orchestration_instance
        .as_ref()
        .map(|i| i.instance_id.as_str())
        .unwrap_or_default();
    let span = tracing::info_span!(
        target: "durabletask",
        "activity",
        otel.name = %span_name("activity", &request.name, request.version.as_deref()),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
        durabletask.r#type = "activity",
        durabletask.task.name = %request.name,
        durabletask.task.instance_id = %instance_id,
        durabletask.task.task_id = request.task_id,
    );
    set_parent_from_proto(&span, request.parent_trace_context.as_ref());
    span
}

/// The span of one entity operation (`entity:<Entity>:<operation>`, SERVER), under the operation's `traceContext`
/// when it has one (a client's signal), else under the current span. For
/// [`Registry::execute_entity_batch_traced`](durable_core::Registry::execute_entity_batch_traced), which runs the
/// operation in it and records a failure on it.
pub fn entity_operation_span(
    entity_instance_id: &str,
    operation: &proto::OperationRequest,
) -> tracing::Span {
    let entity = entity_instance_id
        .strip_prefix('@')
        .and_then(|rest| rest.split_once('@'))
        .map(|(name, _)| name)
        .unwrap_or(entity_instance_id);
    let span = tracing::info_span!(
        target: "durabletask",
        "entity operation",
        otel.name = %format!("entity:{entity}:{}", operation.operation),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
        durabletask.r#type = "entity",
        durabletask.task.name = %entity,
        durabletask.task.instance_id = %entity_instance_id,
        durabletask.entity.operation = %operation.operation,
    );
    set_parent_from_proto(&span, operation.trace_context.as_ref());
    span
}
