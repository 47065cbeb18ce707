//! Client-side RPCs: starting, inspecting, waiting for and controlling instances; entity signals.

use std::pin::Pin;
use std::time::Duration;

use durable_proto::*;
use futures::Stream;
use prost::Message;
use tonic::{Request, Response, Status};

use super::{Shared, validate};
use crate::codec::is_terminal;

/// History chunks of `StreamInstanceHistory`.
pub(crate) type HistoryStream = Pin<Box<dyn Stream<Item = Result<HistoryChunk, Status>> + Send>>;

/// Events per history chunk, and the byte budget of one chunk (well under gRPC's 4 MB default).
const CHUNK_EVENTS: usize = 500;
const CHUNK_BYTES: usize = 1024 * 1024;

pub(super) async fn start_instance(
    shared: &Shared,
    request: Request<CreateInstanceRequest>,
) -> Result<Response<CreateInstanceResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let r = request.into_inner();
    if !r.instance_id.is_empty() {
        validate::instance_id(&r.instance_id)?;
    }
    if r.name.is_empty() {
        return Err(Status::invalid_argument("the orchestration name is empty"));
    }
    validate::payload("input", r.input.as_ref(), shared.options.max_payload_bytes)?;
    let instance_id = shared.store.start_instance(hub, r).await?;
    Ok(Response::new(CreateInstanceResponse { instance_id }))
}

pub(super) async fn get_instance(
    shared: &Shared,
    request: Request<GetInstanceRequest>,
) -> Result<Response<GetInstanceResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let r = request.into_inner();
    let state = shared
        .store
        .get_instance(hub, r.instance_id, r.get_inputs_and_outputs)
        .await?;
    Ok(Response::new(GetInstanceResponse {
        exists: state.is_some(),
        orchestration_state: state,
    }))
}

/// The call's deadline from the `grpc-timeout` header, if the client set one. The gRPC protocol allows at most 8
/// digits and one unit (`H`, `M`, `S`, `m`, `u`, `n`), so the longest deadline is 99,999,999 hours; anything else
/// is refused rather than guessed at.
fn deadline<T>(request: &Request<T>) -> Result<Option<Duration>, Status> {
    let Some(value) = request.metadata().get("grpc-timeout") else {
        return Ok(None);
    };
    let invalid = || {
        let shown: String = String::from_utf8_lossy(value.as_bytes())
            .chars()
            .take(32)
            .collect();
        Status::invalid_argument(format!(
            "the grpc-timeout header {shown:?} is not a gRPC timeout (1 to 8 digits and a unit: H, M, S, m, u or n)"
        ))
    };
    let value = value.to_str().map_err(|_| invalid())?;
    let Some((digits, unit)) = value.len().checked_sub(1).map(|n| value.split_at(n)) else {
        return Err(invalid());
    };
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    Ok(Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return Err(invalid()),
    }))
}

/// Long-polls until the instance has started (`completion = false`) or finished, woken by the instance's own
/// changes. Without a deadline it waits as long as it takes.
pub(super) async fn wait_for_instance(
    shared: &Shared,
    request: Request<GetInstanceRequest>,
    completion: bool,
) -> Result<Response<GetInstanceResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    // Eight digits of hours fit any clock, but an instant that cannot be represented means "no deadline" anyway.
    let until = deadline(&request)?.and_then(|d| tokio::time::Instant::now().checked_add(d));
    let r = request.into_inner();
    let mut watch = shared.watch_instance(&hub, &r.instance_id);
    let changed = watch.receiver();
    let mut shutdown = shared.shutdown.clone();
    let outcome = loop {
        changed.borrow_and_update();
        let state = match shared
            .store
            .get_instance(hub.clone(), r.instance_id.clone(), r.get_inputs_and_outputs)
            .await
        {
            Ok(state) => state,
            Err(e) => break Err(Status::from(e)),
        };
        let done = match &state {
            None => true,
            Some(s) if completion => is_terminal(s.orchestration_status),
            Some(s) => s.orchestration_status != OrchestrationStatus::Pending as i32,
        };
        if done {
            break Ok(Response::new(GetInstanceResponse {
                exists: state.is_some(),
                orchestration_state: state,
            }));
        }
        let wait = async {
            match until {
                Some(t) => tokio::time::timeout_at(t, changed.changed()).await.ok(),
                None => Some(changed.changed().await),
            }
        };
        tokio::select! {
            woke = wait => match woke {
                Some(Ok(())) => continue,
                Some(Err(_)) => break Err(Status::unavailable("the backend is shutting down")),
                None => break Err(Status::deadline_exceeded(format!(
                    "instance '{}' did not {} before the call's deadline",
                    r.instance_id,
                    if completion { "complete" } else { "start" }
                ))),
            },
            _ = shutdown.wait_for(|stop| *stop) => break Err(Status::unavailable("the backend is shutting down")),
        }
    };
    drop(watch);
    outcome
}

pub(super) async fn raise_event(
    shared: &Shared,
    request: Request<RaiseEventRequest>,
) -> Result<Response<RaiseEventResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let r = request.into_inner();
    validate::instance_id(&r.instance_id)?;
    if r.name.is_empty() {
        return Err(Status::invalid_argument("the event name is empty"));
    }
    validate::payload(
        "event data",
        r.input.as_ref(),
        shared.options.max_payload_bytes,
    )?;
    shared.store.raise_event(hub, r).await?;
    Ok(Response::new(RaiseEventResponse {}))
}

pub(super) async fn terminate_instance(
    shared: &Shared,
    request: Request<TerminateRequest>,
) -> Result<Response<TerminateResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let r = request.into_inner();
    validate::instance_id(&r.instance_id)?;
    validate::payload(
        "termination output",
        r.output.as_ref(),
        shared.options.max_payload_bytes,
    )?;
    shared.store.terminate(hub, r).await?;
    Ok(Response::new(TerminateResponse {}))
}

pub(super) async fn restart_instance(
    shared: &Shared,
    request: Request<RestartInstanceRequest>,
) -> Result<Response<RestartInstanceResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let r = request.into_inner();
    validate::instance_id(&r.instance_id)?;
    let instance_id = shared.store.restart(hub, r).await?;
    Ok(Response::new(RestartInstanceResponse { instance_id }))
}

pub(super) async fn rewind_instance(
    shared: &Shared,
    request: Request<RewindInstanceRequest>,
) -> Result<Response<RewindInstanceResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let r = request.into_inner();
    validate::instance_id(&r.instance_id)?;
    validate::payload(
        "rewind reason",
        r.reason.as_ref(),
        shared.options.max_payload_bytes,
    )?;
    shared.store.rewind(hub, r).await?;
    Ok(Response::new(RewindInstanceResponse {}))
}

pub(super) async fn stream_history(
    shared: &Shared,
    request: Request<StreamInstanceHistoryRequest>,
) -> Result<Response<HistoryStream>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let r = request.into_inner();
    let Some(events) = shared.store.history(hub, r.instance_id.clone()).await? else {
        return Err(Status::not_found(format!(
            "no orchestration instance with ID '{}'",
            r.instance_id
        )));
    };
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for e in events {
        let size = e.encoded_len();
        if !current.is_empty() && (current.len() >= CHUNK_EVENTS || bytes + size > CHUNK_BYTES) {
            chunks.push(Ok(HistoryChunk {
                events: std::mem::take(&mut current),
            }));
            bytes = 0;
        }
        bytes += size;
        current.push(e);
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(Ok(HistoryChunk { events: current }));
    }
    Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
}

pub(super) async fn signal_entity(
    shared: &Shared,
    request: Request<SignalEntityRequest>,
) -> Result<Response<SignalEntityResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let r = request.into_inner();
    validate::entity_id(&r.instance_id)?;
    if r.name.is_empty() {
        return Err(Status::invalid_argument(
            "the entity operation name is empty",
        ));
    }
    validate::payload(
        "operation input",
        r.input.as_ref(),
        shared.options.max_payload_bytes,
    )?;
    shared.store.signal_entity(hub, r).await?;
    Ok(Response::new(SignalEntityResponse {}))
}

pub(super) async fn skip_graceful_terminations(
    shared: &Shared,
    request: Request<SkipGracefulOrchestrationTerminationsRequest>,
) -> Result<Response<SkipGracefulOrchestrationTerminationsResponse>, Status> {
    let (hub, _) = shared.hub(&request).await?;
    let r = request.into_inner();
    let ids = r.instance_batch.map(|b| b.instance_ids).unwrap_or_default();
    if ids.len() > 500 {
        return Err(Status::invalid_argument(
            "at most 500 instances can be terminated per call",
        ));
    }
    for id in &ids {
        validate::instance_id(id)?;
    }
    validate::payload(
        "termination reason",
        r.reason.as_ref(),
        shared.options.max_payload_bytes,
    )?;
    let mut unterminated = Vec::new();
    for id in ids {
        let result = shared
            .store
            .terminate(
                hub.clone(),
                TerminateRequest {
                    instance_id: id.clone(),
                    output: r.reason.clone(),
                    recursive: false,
                },
            )
            .await;
        if result.is_err() {
            unterminated.push(id);
        }
    }
    Ok(Response::new(
        SkipGracefulOrchestrationTerminationsResponse {
            unterminated_instance_ids: unterminated,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_parsed_in_every_unit() {
        let with = |v: &str| {
            let mut r = Request::new(());
            r.metadata_mut().insert("grpc-timeout", v.parse().unwrap());
            deadline(&r).ok().flatten()
        };
        assert_eq!(with("5S"), Some(Duration::from_secs(5)));
        assert_eq!(with("250m"), Some(Duration::from_millis(250)));
        assert_eq!(with("2M"), Some(Duration::from_secs(120)));
        assert_eq!(with("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(with("7u"), Some(Duration::from_micros(7)));
        assert_eq!(with("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(
            with("99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
        assert_eq!(deadline(&Request::new(())).unwrap(), None);
    }

    #[test]
    fn malformed_grpc_timeouts_are_refused() {
        for bad in [
            "x",
            "S",
            "5",
            "123456789S",
            "18446744073709551615S",
            "-1S",
            "+1S",
            "1 S",
            "5s",
            "5Z",
        ] {
            let mut r = Request::new(());
            r.metadata_mut()
                .insert("grpc-timeout", bad.parse().unwrap());
            let refused = deadline(&r).unwrap_err();
            assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{bad}");
            assert!(refused.message().contains("grpc-timeout"), "{bad}");
        }
    }
}
