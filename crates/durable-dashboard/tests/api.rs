//! The dashboard's JSON API over real HTTP, against the embedded backend over real gRPC with this workspace's
//! worker running the orchestrations: lists and their filters and pages, an instance with its history and
//! timeline, entities, every action, the refusals, the API guard and the pages' headers.

mod support;

use std::collections::BTreeSet;

use anyhow::Result;
use durable_dashboard::DashboardOptions;
use durable_grpc::{OrchestrationStatus, StartOptions};
use serde_json::{Value, json};
use support::{Stack, act, get};

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["instanceId"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_and_page_on_the_backend() -> Result<()> {
    let stack = Stack::start().await?;
    let dashboard = stack.dashboard(DashboardOptions::new()).await?;
    let base = support::base(&dashboard);
    let http = reqwest::Client::new();

    stack
        .start_instance(
            "ProcessOrder",
            "order-1",
            json!({"id": "order-1", "items": 2}),
        )
        .await?;
    stack
        .start_instance("AwaitApproval", "approval-1", json!({}))
        .await?;
    for i in 0..7 {
        stack
            .start_instance("Noop", &format!("page-{i:02}"), json!(i))
            .await?;
    }
    stack.finished("order-1").await?;
    stack.custom_status_set("approval-1").await?;
    for i in 0..7 {
        stack.finished(&format!("page-{i:02}")).await?;
    }

    let (status, all) = get(&http, &format!("{base}api/instances")).await?;
    assert_eq!(status, 200, "{all}");
    let listed = ids(&all);
    for id in ["order-1", "order-1:0002", "approval-1", "page-00"] {
        assert!(listed.contains(&id.to_owned()), "{id} in {listed:?}");
    }
    assert!(all["next"].is_null());

    let (_, running) = get(&http, &format!("{base}api/instances?status=Running")).await?;
    assert_eq!(ids(&running), ["approval-1"]);
    assert_eq!(running["items"][0]["name"], "AwaitApproval");
    assert_eq!(running["items"][0]["status"], "Running");
    let (_, two) = get(
        &http,
        &format!("{base}api/instances?status=running,Completed&prefix=order"),
    )
    .await?;
    assert_eq!(ids(&two), ["order-1", "order-1:0002"]);

    // A name filter is matched by the dashboard: case-insensitive, any part of the name.
    let (_, named) = get(&http, &format!("{base}api/instances?name=process")).await?;
    assert_eq!(ids(&named), ["order-1"]);
    let (_, named) = get(&http, &format!("{base}api/instances?name=ORDER")).await?;
    assert_eq!(ids(&named), ["order-1", "order-1:0002"]);

    // Creation time goes to the backend: nothing was created after now, everything before.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let (_, future) = get(
        &http,
        &format!("{base}api/instances?createdFrom={}", now + 60_000),
    )
    .await?;
    assert!(ids(&future).is_empty(), "{future}");
    let (_, past) = get(
        &http,
        &format!(
            "{base}api/instances?createdTo={}&prefix=page-",
            now + 60_000
        ),
    )
    .await?;
    assert_eq!(ids(&past).len(), 7);

    // Pages of 3: every instance once, in order, and no token after the last page.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..3 {
        let mut url = format!("{base}api/instances?prefix=page-&pageSize=3");
        if let Some(t) = &token {
            url.push_str(&format!("&token={t}"));
        }
        let (status, page) = get(&http, &url).await?;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        token = page["next"].as_str().map(str::to_owned);
    }
    assert_eq!(
        seen,
        (0..7).map(|i| format!("page-{i:02}")).collect::<Vec<_>>()
    );
    assert!(token.is_none());

    // A name-filtered page can end in the middle of the backend's page and go on from there.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("{base}api/instances?name=noop&pageSize=2");
        if let Some(t) = &token {
            url.push_str(&format!("&token={t}"));
        }
        let (_, page) = get(&http, &url).await?;
        let found = ids(&page);
        assert!(found.len() <= 2, "{page}");
        seen.extend(found);
        match page["next"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..7).map(|i| format!("page-{i:02}")).collect::<Vec<_>>()
    );

    // Refusals are JSON with a reason.
    for (query, reason) in [
        ("status=Done", "unknown status"),
        ("createdFrom=yesterday", "not a time"),
        ("token=abc", "page token"),
        ("pageSize=0", "pageSize"),
        ("pageSize=100000", "pageSize"),
        ("hub=elsewhere", "task hubs"),
    ] {
        let (status, body) = get(&http, &format!("{base}api/instances?{query}")).await?;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap_or_default().contains(reason),
            "{query}: {body}"
        );
    }

    dashboard.shutdown().await;
    stack.stop().await
}

/// The protocol has no name filter, so one request reads at most the scan limit of instances and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_search_stops_at_its_budget_and_goes_on_from_there() -> Result<()> {
    let stack = Stack::start().await?;
    // A hub no worker serves: the instances stay pending, which is all a list needs.
    let quiet = stack.client.with_task_hub("quiet")?;
    let dashboard = durable_dashboard::start(
        "127.0.0.1:0".parse()?,
        quiet.clone(),
        DashboardOptions::new().with_name_scan_limit(100),
    )
    .await?;
    let base = support::base(&dashboard);
    let http = reqwest::Client::new();
    for i in 0..600 {
        quiet
            .schedule_new_orchestration(
                "Bulk",
                &i,
                StartOptions::new().with_instance_id(format!("bulk-{i:04}")),
            )
            .await?;
    }
    quiet
        .schedule_new_orchestration(
            "RareJob",
            &(),
            StartOptions::new().with_instance_id("zz-rare"),
        )
        .await?;

    let (status, first) = get(&http, &format!("{base}api/instances?name=rare")).await?;
    assert_eq!(status, 200, "{first}");
    assert!(ids(&first).is_empty(), "{first}");
    assert_eq!(first["scanLimitReached"], true);
    assert_eq!(first["scanned"], 500);
    let token = first["next"].as_str().expect("a token to go on");
    let (_, second) = get(
        &http,
        &format!("{base}api/instances?name=rare&token={token}"),
    )
    .await?;
    assert_eq!(ids(&second), ["zz-rare"]);
    assert_eq!(second["scanned"], 101);
    assert!(second["next"].is_null());
    assert_eq!(second["scanLimitReached"], false);

    dashboard.shutdown().await;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_comes_with_its_history_timeline_parent_and_children() -> Result<()> {
    let stack = Stack::start().await?;
    let dashboard = stack.dashboard(DashboardOptions::new()).await?;
    let base = support::base(&dashboard);
    let http = reqwest::Client::new();
    stack
        .start_instance(
            "ProcessOrder",
            "order-7",
            json!({"id": "order-7", "items": 3}),
        )
        .await?;
    stack
        .start_instance("ChargeCard", "charge-1", json!(25))
        .await?;
    let done = stack.finished("order-7").await?;
    assert_eq!(done.status, OrchestrationStatus::Completed);
    stack.finished("charge-1").await?;

    let (status, body) = get(&http, &format!("{base}api/instance?id=order-7")).await?;
    assert_eq!(status, 200, "{body}");
    let instance = &body["instance"];
    assert_eq!(instance["name"], "ProcessOrder");
    assert_eq!(instance["status"], "Completed");
    assert_eq!(instance["terminal"], true);
    let input: Value = serde_json::from_str(instance["input"].as_str().unwrap())?;
    assert_eq!(input, json!({"id": "order-7", "items": 3}));
    let output: Value = serde_json::from_str(instance["output"].as_str().unwrap())?;
    assert_eq!(output["label"], "parcel-order-7/LBL-7");
    assert_eq!(output["ordersSoFar"], 3);
    assert_eq!(instance["customStatus"], "{\"stage\":\"shipped\"}");

    let history = &body["history"];
    let events = history["events"].as_array().unwrap();
    assert_eq!(
        events.len(),
        history["eventCount"].as_u64().unwrap() as usize
    );
    assert_eq!(events[0]["type"], "OrchestratorStarted");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "TaskScheduled" && e["name"] == "Validate")
    );
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "ExecutionCompleted" && e["status"] == "Completed")
    );
    let spans = history["timeline"]["spans"].as_array().unwrap();
    let span = |kind: &str| spans.iter().find(|s| s["kind"] == kind).cloned();
    let validate = span("activity").expect("an activity span");
    assert_eq!(validate["name"], "Validate");
    assert_eq!(validate["status"], "completed");
    assert!(validate["end"].as_i64() >= validate["start"].as_i64());
    let timer = span("timer").expect("a timer span");
    assert_eq!(timer["status"], "fired");
    // It ended when it fired, at its time and not before.
    assert!(
        timer["end"].as_i64().unwrap() >= timer["plannedEnd"].as_i64().unwrap(),
        "{timer}"
    );
    assert!(
        timer["end"].as_i64().unwrap() > timer["start"].as_i64().unwrap(),
        "{timer}"
    );
    let child = span("suborchestration").expect("a sub-orchestration span");
    assert_eq!(child["name"], "ShipOrder");
    assert_eq!(child["instanceId"], "order-7:0002");
    assert!(
        span("entity").is_some() || span("signal").is_some(),
        "{spans:?}"
    );
    assert_eq!(spans[0]["kind"], "orchestration");
    assert_eq!(spans[0]["status"], "completed");
    assert_eq!(history["children"][0]["instanceId"], "order-7:0002");

    // The child knows its parent.
    let (_, child) = get(&http, &format!("{base}api/instance?id=order-7:0002")).await?;
    assert_eq!(child["instance"]["parentInstanceId"], "order-7");
    let kinds: BTreeSet<&str> = child["history"]["timeline"]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["kind"].as_str())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["activity", "orchestration"]));

    // A failure keeps its inner failures.
    let (_, failed) = get(&http, &format!("{base}api/instance?id=charge-1")).await?;
    assert_eq!(failed["instance"]["status"], "Failed");
    let failure = &failed["instance"]["failure"];
    assert!(
        failure["message"].as_str().unwrap().contains("declined"),
        "{failure}"
    );
    let mut types = Vec::new();
    let mut cursor = failure;
    while !cursor.is_null() {
        types.push(cursor["type"].as_str().unwrap_or_default().to_owned());
        cursor = &cursor["inner"];
    }
    assert!(
        types.contains(&"CardDeclined".to_owned()) && types.contains(&"GatewayError".to_owned()),
        "{types:?}"
    );
    let task = failed["history"]["timeline"]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "activity")
        .cloned()
        .unwrap();
    assert_eq!(task["status"], "failed");

    // One event in full.
    let seq = events
        .iter()
        .position(|e| e["type"] == "ExecutionStarted")
        .unwrap();
    let (_, one) = get(
        &http,
        &format!("{base}api/instance/event?id=order-7&seq={seq}"),
    )
    .await?;
    assert_eq!(one["type"], "ExecutionStarted");
    assert_eq!(one["seq"], seq);

    for (url, status) in [
        (format!("{base}api/instance?id=nobody"), 404),
        (format!("{base}api/instance"), 400),
        (
            format!("{base}api/instance/event?id=order-7&seq=100000"),
            404,
        ),
        (format!("{base}api/nothing-here"), 404),
    ] {
        let (got, body) = get(&http, &url).await?;
        assert_eq!(got, status, "{url}: {body}");
        assert!(body["error"].is_string(), "{url}: {body}");
    }

    // Entities: the counter the orders add to, with its state.
    let (_, entities) = get(&http, &format!("{base}api/entities?name=Counter")).await?;
    let counter = &entities["items"][0];
    assert_eq!(counter["entityId"], "@counter@orders");
    assert_eq!(counter["key"], "orders");
    assert_eq!(counter["state"], "3");
    assert!(counter["lockedBy"].is_null());
    let (_, one) = get(&http, &format!("{base}api/entity?id=@counter@orders")).await?;
    assert_eq!(one["state"], "3");
    let (status, _) = get(&http, &format!("{base}api/entity?id=@counter@nobody")).await?;
    assert_eq!(status, 404);
    let (status, _) = get(&http, &format!("{base}api/entities?key=x")).await?;
    assert_eq!(status, 400);

    dashboard.shutdown().await;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_does_what_it_says() -> Result<()> {
    let stack = Stack::start().await?;
    let dashboard = stack.dashboard(DashboardOptions::new()).await?;
    let base = support::base(&dashboard);
    let http = reqwest::Client::new();
    for id in ["approve-me", "pause-me", "stop-me"] {
        stack.start_instance("AwaitApproval", id, json!({})).await?;
        stack.custom_status_set(id).await?;
    }
    stack
        .start_instance("ChargeCard", "charge-2", json!(40))
        .await?;
    assert_eq!(
        stack.finished("charge-2").await?.status,
        OrchestrationStatus::Failed
    );

    // Raise an event: the waiting orchestration completes with it.
    let (status, body) = act(
        &http,
        &base,
        "raise-event",
        json!({"instanceId": "approve-me", "eventName": "Approval", "eventData": "true"}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let done = stack.finished("approve-me").await?;
    assert_eq!(done.output::<bool>()?, Some(true));

    // Suspend and resume.
    let (status, body) = act(
        &http,
        &base,
        "suspend",
        json!({"instanceId": "pause-me", "reason": "lunch"}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let deadline = tokio::time::Instant::now() + support::LIMIT;
    while stack.started("pause-me").await?.status != OrchestrationStatus::Suspended {
        assert!(tokio::time::Instant::now() < deadline, "never suspended");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, _) = act(&http, &base, "resume", json!({"instanceId": "pause-me"})).await?;
    assert_eq!(status, 200);
    while stack.started("pause-me").await?.status != OrchestrationStatus::Running {
        assert!(tokio::time::Instant::now() < deadline, "never resumed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Terminate, with the reason as the output.
    let (status, _) = act(
        &http,
        &base,
        "terminate",
        json!({"instanceId": "stop-me", "reason": "not needed"}),
    )
    .await?;
    assert_eq!(status, 200);
    let stopped = stack.finished("stop-me").await?;
    assert_eq!(stopped.status, OrchestrationStatus::Terminated);
    assert_eq!(stopped.output::<String>()?.as_deref(), Some("not needed"));

    // Rewind: the declined charge runs again and is accepted this time.
    let (status, body) = act(
        &http,
        &base,
        "rewind",
        json!({"instanceId": "charge-2", "reason": "card topped up"}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let deadline = tokio::time::Instant::now() + support::LIMIT;
    loop {
        let state = stack.client.get_instance("charge-2", true).await?.unwrap();
        if state.status == OrchestrationStatus::Completed {
            assert_eq!(state.output::<String>()?.as_deref(), Some("receipt-40"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never rewound: {state:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Restart under a new ID.
    let (status, body) = act(
        &http,
        &base,
        "restart",
        json!({"instanceId": "approve-me", "newInstanceId": true}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let new_id = body["instanceId"].as_str().unwrap().to_owned();
    assert_ne!(new_id, "approve-me");
    assert_eq!(stack.started(&new_id).await?.name, "AwaitApproval");

    // Refusals keep the backend's reason and change nothing.
    let (status, body) = act(&http, &base, "purge", json!({"instanceId": new_id})).await?;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("terminal"),
        "{body}"
    );
    assert!(stack.client.get_instance(&new_id, false).await?.is_some());
    let (status, body) = act(&http, &base, "rewind", json!({"instanceId": "stop-me"})).await?;
    assert_eq!(status, 409, "{body}");
    let (status, body) = act(
        &http,
        &base,
        "raise-event",
        json!({"instanceId": new_id, "eventName": "Approval", "eventData": "{nope"}),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not JSON"),
        "{body}"
    );
    let (status, _) = act(&http, &base, "explode", json!({"instanceId": "stop-me"})).await?;
    assert_eq!(status, 404);
    let (status, _) = act(
        &http,
        &base,
        "terminate",
        json!({"instanceId": "stop-me", "surprise": 1}),
    )
    .await?;
    assert_eq!(status, 400);

    // Without the header (a form on another site could not add it), nothing happens.
    let reply = http
        .post(format!("{base}api/instance/terminate"))
        .header("content-type", "application/json")
        .body(json!({"instanceId": new_id}).to_string())
        .send()
        .await?;
    assert_eq!(reply.status().as_u16(), 400);
    let reply = http
        .post(format!("{base}api/instance/terminate"))
        .header("content-type", "text/plain")
        .header("x-dashboard-request", "1")
        .body(json!({"instanceId": new_id}).to_string())
        .send()
        .await?;
    assert_eq!(reply.status().as_u16(), 400);
    assert_eq!(
        stack.started(&new_id).await?.status,
        OrchestrationStatus::Running
    );

    // Purge: gone, and a second purge finds nothing.
    let (status, body) = act(&http, &base, "purge", json!({"instanceId": "stop-me"})).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], 1);
    assert!(stack.client.get_instance("stop-me", false).await?.is_none());
    let (status, _) = act(&http, &base, "purge", json!({"instanceId": "stop-me"})).await?;
    assert_eq!(status, 404);

    dashboard.shutdown().await;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_closes_the_api_and_the_pages_carry_their_headers() -> Result<()> {
    let stack = Stack::start().await?;
    let dashboard = stack
        .dashboard(
            DashboardOptions::new()
                .with_task_hubs(["default", "second"])
                .with_api_guard(|headers, uri| {
                    headers
                        .get("x-functions-key")
                        .is_some_and(|k| k == "secret")
                        || uri
                            .query()
                            .is_some_and(|q| q.split('&').any(|p| p == "code=secret"))
                }),
        )
        .await?;
    let base = support::base(&dashboard);
    let http = reqwest::Client::new();

    let (status, body) = get(&http, &format!("{base}api/info")).await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("this dashboard needs a key"))
    );
    let reply = http
        .get(format!("{base}api/info"))
        .header("x-functions-key", "secret")
        .send()
        .await?;
    assert_eq!(reply.status().as_u16(), 200);
    assert_eq!(reply.headers()["cache-control"], "no-store");
    let info: Value = reply.json().await?;
    assert_eq!(info["taskHubs"], json!(["default", "second"]));
    let (status, _) = get(
        &http,
        &format!("{base}api/instances?code=secret&hub=second"),
    )
    .await?;
    assert_eq!(status, 200);
    let (status, _) = act(&http, &base, "terminate", json!({"instanceId": "x"})).await?;
    assert_eq!(status, 401);

    // The pages hold no data and stay open; they carry a strict policy and find their assets from their base.
    for path in ["", "instance?id=%3Cscript%3E", "entities", "entity?id=@a@b"] {
        let reply = http.get(format!("{base}{path}")).send().await?;
        assert_eq!(reply.status().as_u16(), 200, "{path}");
        let csp = reply.headers()["content-security-policy"]
            .to_str()?
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(reply.headers()["x-content-type-options"], "nosniff");
        let html = reply.text().await?;
        assert!(html.contains("<base href=\"/\">"), "{path}: {html}");
        assert!(
            !html.contains("script>\"") && !html.contains("%3Cscript"),
            "{path}"
        );
    }
    let script = http.get(format!("{base}assets/app.js")).send().await?;
    assert_eq!(script.status().as_u16(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()?
            .starts_with("text/javascript")
    );
    let etag = script.headers()["etag"].clone();
    let again = http
        .get(format!("{base}assets/app.js"))
        .header("if-none-match", etag)
        .send()
        .await?;
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(
        http.get(format!("{base}assets/other.js"))
            .send()
            .await?
            .status()
            .as_u16(),
        404
    );

    // Nested under a path, the pages point at it.
    let app = axum::Router::new().nest_service(
        "/dashboard",
        durable_dashboard::router(stack.client.clone(), DashboardOptions::new()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    for path in ["/dashboard", "/dashboard/", "/dashboard/instance?id=x"] {
        let html = http
            .get(format!("http://{addr}{path}"))
            .send()
            .await?
            .text()
            .await?;
        assert!(
            html.contains("<base href=\"/dashboard/\">"),
            "{path}: {html}"
        );
    }
    let (status, _) = get(&http, &format!("http://{addr}/dashboard/api/info")).await?;
    assert_eq!(status, 200);
    server.abort();

    dashboard.shutdown().await;
    stack.stop().await
}
