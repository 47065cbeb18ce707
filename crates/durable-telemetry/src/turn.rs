//! Running one orchestration turn traced: in its span, then emitting the spans it finished.

use std::convert::Infallible;

use durable_core::proto;
use durable_core::trace::{turn_context, turn_trace};
use tracing::Level;

use crate::spans::turn_span;

/// Runs one orchestration turn (`run`, which answers `request`) inside its `orchestration:<Name>:turn` span, then
/// emits the spans the turn finished ([`turn_trace`], [`emit`](crate::emit)), as every transport that runs turns
/// does.
///
/// When no subscriber takes the engine's spans (neither a [`tracing_opentelemetry`] layer nor the
/// `durabletask::span` debug log), nothing is computed from the history: `run` runs on its own.
pub fn orchestration_turn(
    request: &proto::OrchestratorRequest,
    run: impl FnOnce() -> proto::OrchestratorResponse,
) -> proto::OrchestratorResponse {
    match try_orchestration_turn(request, || Ok::<_, Infallible>(run())) {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// [`orchestration_turn`] for a turn that may not answer (a version the worker's versioning rejects, say): the
/// turn's spans are emitted only when `run` returns a response.
pub fn try_orchestration_turn<E>(
    request: &proto::OrchestratorRequest,
    run: impl FnOnce() -> Result<proto::OrchestratorResponse, E>,
) -> Result<proto::OrchestratorResponse, E> {
    // Asked before anything is read from the history: with tracing off, a turn costs what the engine costs.
    let logged = tracing::enabled!(target: "durabletask::span", Level::DEBUG);
    if !logged && !tracing::span_enabled!(target: "durabletask", Level::INFO) {
        return run();
    }
    let Some(context) = turn_context(request) else {
        return run();
    };
    let (span, exported) = turn_span(&context);
    let response = span.in_scope(run)?;
    // The spans the turn finished are computed from the whole history: only for a subscriber that takes them.
    if (exported || logged)
        && let Some(trace) = turn_trace(request, &response)
    {
        span.in_scope(|| trace.spans.iter().for_each(crate::emit));
    }
    Ok(response)
}
