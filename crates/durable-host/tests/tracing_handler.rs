//! One trace from an HTTP start to the last activity through the local host and a Rust custom handler (a child
//! process exporting over OTLP/HTTP to a collector in this test), over several orchestration turns: every span in
//! the caller's trace, each under the right parent, none twice; and the entity operation the starter signals runs
//! in a span under the starter's invocation.
//!
//! The handler is this test binary run again as a child process, with `DURABLE_HOST_TRACING_HANDLER` set: the
//! binary has its own `main` (`harness = false`), which serves the handler then and runs the test otherwise.

#[path = "../../durable-telemetry/tests/sink/mod.rs"]
mod sink;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, bail};
use durable_core::{
    ActivityContext, ActivityError, Entity, EntityError, OrchestrationContext, OrchestrationError,
    Registry, when_all,
};
use durable_host::{BackendChoice, HostOptions};
use durable_testkit::harness::Test;
use serde_json::{Value, json};

const HANDLER_ENV: &str = "DURABLE_HOST_TRACING_HANDLER";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
/// The trace of a start through the management webhook.
const WEBHOOK_TRACE_ID: &str = "7bf92f3577b34da6a3ce929d0e0e4736";

fn function_app() -> durable_handler::Handler {
    let mut registry = Registry::new();
    registry
        .add_orchestrator("Main", |ctx: OrchestrationContext, _: ()| async move {
            let a = ctx.call_activity::<_, String>("Greet", "a");
            let b = ctx.call_activity::<_, String>("Greet", "b");
            let mut out = Vec::new();
            for r in when_all(vec![a, b]).await {
                out.push(r?);
            }
            out.push(
                ctx.call_sub_orchestrator::<_, String>("Child", "c", None)
                    .await?,
            );
            Ok::<_, OrchestrationError>(out)
        })
        .add_orchestrator(
            "Child",
            |ctx: OrchestrationContext, name: String| async move {
                Ok::<_, OrchestrationError>(ctx.call_activity::<_, String>("Greet", name).await?)
            },
        )
        .add_activity("Greet", |_ctx: ActivityContext, name: String| async move {
            Ok::<_, ActivityError>(format!("hello {name}"))
        })
        .add_entity(
            "Counter",
            Entity::<i64>::new().operation("add", |value: &mut i64, _ctx, n: i64| {
                *value += n;
                Ok::<_, EntityError>(*value)
            }),
        );
    durable_handler::FunctionApp::new(registry)
        .http_starter(
            "Start",
            durable_handler::HttpTrigger::new()
                .route("start")
                .methods(["post"])
                .auth_level(durable_handler::AuthLevel::Anonymous),
            |_req, client, _ctx| async move {
                client
                    .signal_entity("@counter@traced", "add", &2, None)
                    .await?;
                let id = client
                    .schedule_new_orchestration(
                        "Main",
                        &(),
                        durable_grpc::StartOptions::new().with_instance_id("traced"),
                    )
                    .await?;
                Ok(client.create_check_status_response(&id))
            },
        )
        .build()
        .unwrap()
}

fn main() -> std::process::ExitCode {
    if std::env::var_os(HANDLER_ENV).is_some() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let _telemetry =
                durable_telemetry::init(durable_telemetry::TelemetryOptions::new("handler"))
                    .expect("OTLP export from the environment");
            durable_handler::serve(function_app()).await.unwrap();
        });
        return std::process::ExitCode::SUCCESS;
    }
    durable_testkit::harness::run(&[Test::new(
        "http_start_to_last_activity_is_one_trace_through_the_handler",
        || {
            durable_testkit::harness::block_on(
                http_start_to_last_activity_is_one_trace_through_the_handler(),
            )
        },
    )])
}

async fn http_start_to_last_activity_is_one_trace_through_the_handler() -> Result<()> {
    let (collector, mut received) = sink::http().await;
    let dir = tempfile::tempdir()?;
    let host_json = json!({
        "version": "2.0",
        "customHandler": {"description": {"defaultExecutablePath": "not-used"}},
    });
    std::fs::write(dir.path().join("host.json"), host_json.to_string())?;
    function_app().write_function_files(dir.path())?;
    let host = durable_host::start(
        HostOptions::new(dir.path())
            .with_port(0)
            .with_handler(std::env::current_exe()?)
            .with_handler_env(HANDLER_ENV, "1")
            .with_handler_env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector}"))
            .with_handler_env("OTEL_SERVICE_NAME", "traced-handler")
            // Export each batch at once rather than every five seconds: the test awaits the spans.
            .with_handler_env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .with_backend(BackendChoice::EmbeddedInMemory)
            .with_timers(false),
    )
    .await?;
    let http = reqwest::Client::new();
    let started = http
        .post(format!("http://{}/api/start", host.local_addr()))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .send()
        .await?;
    if started.status().as_u16() != 202 {
        bail!("start: {} {}", started.status(), started.text().await?);
    }
    let hooks = format!("http://{}/runtime/webhooks/durabletask", host.local_addr());
    let webhook = http
        .post(format!("{hooks}/orchestrators/Main/webhooked"))
        .header(
            "traceparent",
            format!("00-{WEBHOOK_TRACE_ID}-{CALLER_SPAN}-01"),
        )
        .send()
        .await?;
    if webhook.status().as_u16() != 202 {
        bail!(
            "webhook start: {} {}",
            webhook.status(),
            webhook.text().await?
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let status = loop {
        let response = http.get(format!("{hooks}/instances/traced")).send().await?;
        if response.status().as_u16() == 200 {
            break response.json::<Value>().await?;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("not done: {}", response.text().await?);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        status["output"],
        json!(["hello a", "hello b", "hello c"]),
        "{status}"
    );
    loop {
        let entity = http
            .get(format!("{hooks}/entities/Counter/traced"))
            .send()
            .await?;
        if entity.status().as_u16() == 200 {
            assert_eq!(entity.json::<Value>().await?, json!(2));
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the signal never ran: {}", entity.status());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Wait for the last spans the handler finishes: the orchestration's and the entity operation's.
    let mut spans = Vec::new();
    let arrived = |spans: &[sink::Received], name: &str, trace: &str| {
        spans
            .iter()
            .any(|s| s.name == name && s.kind == 2 && s.trace_id == trace)
    };
    while !(arrived(&spans, "orchestration:Main", TRACE_ID)
        && arrived(&spans, "orchestration:Main", WEBHOOK_TRACE_ID)
        && arrived(&spans, "entity:counter:add", TRACE_ID))
    {
        match tokio::time::timeout_at(deadline, received.recv()).await {
            Ok(Some(batch)) => spans.extend(batch),
            _ => bail!("the orchestration or entity span never arrived: {spans:#?}"),
        }
    }
    host.stop().await?;
    while let Ok(batch) = received.try_recv() {
        spans.extend(batch);
    }

    let ours: Vec<&sink::Received> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
    let strays: Vec<_> = spans
        .iter()
        .filter(|s| s.trace_id != TRACE_ID && s.trace_id != WEBHOOK_TRACE_ID)
        .map(|s| &s.name)
        .collect();
    assert!(strays.is_empty(), "spans in another trace: {strays:?}");
    assert!(ours.iter().all(|s| s.service == "traced-handler"));
    let by_id: HashMap<&str, &sink::Received> =
        ours.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    assert_eq!(by_id.len(), ours.len(), "a span ID appears twice");
    let named = |name: &str, kind: i32| -> Vec<&sink::Received> {
        ours.iter()
            .copied()
            .filter(|s| s.name == name && s.kind == kind)
            .collect()
    };
    let (server, client, producer, internal) = (2, 3, 4, 1);

    // The starter's invocation runs under the caller's span; the start under it; the orchestration under that.
    let [create] = named("create_orchestration:Main", producer)[..] else {
        panic!("{ours:#?}")
    };
    let invocation = by_id[create.parent_span_id.as_str()];
    assert_eq!(invocation.parent_span_id, CALLER_SPAN);
    let [main] = named("orchestration:Main", server)[..] else {
        panic!("{ours:#?}")
    };
    assert_eq!(main.parent_span_id, create.span_id);
    let turns = named("orchestration:Main:turn", internal);
    assert!(turns.len() >= 3, "{} turns", turns.len());
    assert!(turns.iter().all(|t| t.parent_span_id == main.span_id));
    // Each activity once, its execution under its call, its call under its orchestration.
    let calls = named("activity:Greet", client);
    let runs = named("activity:Greet", server);
    assert_eq!((calls.len(), runs.len()), (3, 3), "{ours:#?}");
    for run in &runs {
        let call = by_id[run.parent_span_id.as_str()];
        assert_eq!((call.name.as_str(), call.kind), ("activity:Greet", client));
    }
    let [sub_call] = named("orchestration:Child", client)[..] else {
        panic!("{ours:#?}")
    };
    assert_eq!(sub_call.parent_span_id, main.span_id);
    let [child] = named("orchestration:Child", server)[..] else {
        panic!("{ours:#?}")
    };
    assert_eq!(child.parent_span_id, sub_call.span_id);
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.parent_span_id == child.span_id)
            .count(),
        1
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.parent_span_id == main.span_id)
            .count(),
        2
    );
    // The signal carried the starter invocation's context to the operation.
    let [operation] = named("entity:counter:add", server)[..] else {
        panic!("{ours:#?}")
    };
    assert_eq!(operation.parent_span_id, invocation.span_id);

    // The webhook start: the orchestration in the caller's trace (the host process has no exporter here, so no
    // span of its own sits between them).
    let webhooked: Vec<_> = spans
        .iter()
        .filter(|s| {
            s.trace_id == WEBHOOK_TRACE_ID && s.name == "orchestration:Main" && s.kind == server
        })
        .collect();
    let [webhooked] = webhooked[..] else {
        panic!("{spans:#?}")
    };
    assert_eq!(webhooked.parent_span_id, CALLER_SPAN);
    assert!(
        webhooked
            .attributes
            .contains(&("durabletask.task.instance_id".into(), "webhooked".into()))
    );
    Ok(())
}
