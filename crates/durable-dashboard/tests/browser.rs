//! The dashboard in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `scripts/setup-chromium.sh`) driven over the DevTools protocol, against the embedded backend with this
//! workspace's worker. The list shows a completed and a running instance and filters by status; an instance page
//! shows its timeline, payloads and failures; terminating from the page ends a running instance; hostile IDs stay
//! text. A screenshot of each page goes to `target/dashboard-screenshots/`.
//!
//! `durable_testkit::chromium` finds the browser. Without it the test prints `skipped: ...` and passes, except under
//! the verify script (`DURABLE_REQUIRE_PEERS`) or CI, where it fails.

mod support;

use std::path::PathBuf;

use anyhow::{Context as _, Result, ensure};
use durable_dashboard::DashboardOptions;
use durable_grpc::OrchestrationStatus;
use serde_json::{Value, json};
use support::Stack;
use support::cdp::Browser;

fn screenshots() -> PathBuf {
    // `CARGO_TARGET_TMPDIR` is `<target>/tmp`.
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("dashboard-screenshots"))
        .unwrap_or_else(|| PathBuf::from("dashboard-screenshots"))
}

fn js(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

const HOSTILE_ID: &str = "xss-<img src=x onerror=\"window.__owned=1\">";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() -> Result<()> {
    let Some(executable) = durable_testkit::chromium() else {
        return Ok(());
    };
    let stack = Stack::start().await?;
    let dashboard = stack
        .dashboard(DashboardOptions::new().with_task_hubs(["default"]))
        .await?;
    let base = support::base(&dashboard);
    let shots = screenshots();

    stack
        .start_instance(
            "ProcessOrder",
            "order-1001",
            json!({"id": "order-1001", "items": 2, "customer": "Contoso"}),
        )
        .await?;
    stack
        .start_instance(
            "AwaitApproval",
            "approval-2002",
            json!({"amount": 1200, "requestedBy": "ana"}),
        )
        .await?;
    stack
        .start_instance("ChargeCard", "charge-3003", json!(99))
        .await?;
    stack
        .start_instance("AwaitApproval", HOSTILE_ID, json!("<b>bold?</b>"))
        .await?;
    for i in 0..4 {
        stack
            .start_instance("Noop", &format!("nightly-report-{i}"), json!({"day": i}))
            .await?;
    }
    stack
        .start_instance("Transfer", "transfer-4004", json!(50))
        .await?;
    for (key, n) in [("visits", 41), ("signups", 7)] {
        stack
            .client
            .signal_entity(format!("@counter@{key}"), "add", &n, None)
            .await?;
    }
    stack.finished("order-1001").await?;
    stack.finished("charge-3003").await?;
    stack.custom_status_set("approval-2002").await?;
    stack.custom_status_set(HOSTILE_ID).await?;
    for i in 0..4 {
        stack.finished(&format!("nightly-report-{i}")).await?;
    }
    // The transfer holds the accounts' locks while it waits for its confirmation.
    let deadline = tokio::time::Instant::now() + support::LIMIT;
    loop {
        let alice = stack.client.get_entity("@account@alice", true).await?;
        if alice.as_ref().and_then(|a| a.locked_by.as_deref()) == Some("transfer-4004")
            && alice.and_then(|a| a.serialized_state).as_deref() == Some("-50")
        {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the transfer never took its locks"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let mut browser = Browser::launch(&executable).await?;
    let outcome = drive(&mut browser, &stack, &base, &shots).await;
    let errors = browser.errors.clone();
    browser.close().await?;
    outcome?;
    ensure!(errors.is_empty(), "the pages reported errors: {errors:?}");

    dashboard.shutdown().await;
    stack.stop().await
}

async fn drive(
    browser: &mut Browser,
    stack: &Stack,
    base: &str,
    shots: &std::path::Path,
) -> Result<()> {
    // The list: a completed and a running instance, each with its status.
    browser.open(base).await?;
    let statuses = browser
        .wait_for(
            "the completed and the running instance in the list",
            r#"(() => {
                const rows = [...document.querySelectorAll('#instances-table tbody tr[data-instance-id]')];
                const status = (id) => { const r = rows.find((r) => r.dataset.instanceId === id); return r && r.querySelector('.badge').textContent; };
                const done = status('order-1001'), running = status('approval-2002');
                return done && running ? { done, running, rows: rows.length } : null;
            })()"#,
        )
        .await?;
    assert_eq!(statuses["done"], "Completed");
    assert_eq!(statuses["running"], "Running");
    assert!(statuses["rows"].as_u64().unwrap() >= 9, "{statuses}");
    // A hostile ID is shown as the text it is, and nothing in it ran.
    let hostile = browser
        .eval(&format!(
            "(() => {{ const r = [...document.querySelectorAll('#instances-table tbody tr')].find((r) => r.dataset.instanceId === {id});
                return r ? r.querySelector('td a').textContent : null; }})()",
            id = js(HOSTILE_ID)
        ))
        .await?;
    assert_eq!(hostile, json!(HOSTILE_ID));
    assert_eq!(
        browser
            .eval("window.__owned === undefined && !document.querySelector('main img')")
            .await?,
        json!(true)
    );
    browser.screenshot(&shots.join("instances.png")).await?;

    // Filter by status through the page's own controls.
    browser.click("#filter-status").await?;
    browser
        .click("#filter-status + .menu input[value=Running]")
        .await?;
    browser.click("#filter-apply").await?;
    let running = browser
        .wait_for(
            "only running instances after filtering",
            r#"(() => {
                if (!location.search.includes('status=Running')) return null;
                const rows = [...document.querySelectorAll('#instances-table tbody tr[data-instance-id]')];
                return rows.length && rows.every((r) => r.dataset.status === 'Running') ? rows.map((r) => r.dataset.instanceId) : null;
            })()"#,
        )
        .await?;
    let running: Vec<String> = serde_json::from_value(running)?;
    assert!(running.contains(&"approval-2002".to_owned()), "{running:?}");
    assert!(!running.contains(&"order-1001".to_owned()), "{running:?}");
    browser
        .screenshot(&shots.join("instances-running.png"))
        .await?;

    // One instance: overview, payloads and the timeline of its activities, timer, sub-orchestration and entity.
    browser
        .open(&format!("{base}instance?id=order-1001"))
        .await?;
    let timeline = browser
        .wait_for(
            "the timeline",
            r#"(() => {
                const rows = [...document.querySelectorAll('#timeline .tl-row[data-kind]')];
                const kinds = rows.map((r) => r.dataset.kind);
                if (!kinds.includes('activity') || !kinds.includes('timer') || !kinds.includes('suborchestration')) return null;
                const bars = rows.map((r) => r.querySelector('.tl-bar')).filter((b) => b);
                const widths = bars.map((b) => b.getBoundingClientRect().width);
                return { kinds, widths, names: rows.map((r) => r.querySelector('.nm').textContent),
                         status: document.querySelector('#instance-status').textContent,
                         output: document.querySelector('#output pre').textContent,
                         input: document.querySelector('#input pre').textContent,
                         history: document.querySelectorAll('#history-table tbody tr').length };
            })()"#,
        )
        .await?;
    assert_eq!(timeline["status"], "Completed");
    let names: Vec<String> = serde_json::from_value(timeline["names"].clone())?;
    for name in ["ProcessOrder", "Validate", "ShipOrder"] {
        assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
    }
    // Every span with a duration is drawn as a bar the reader can see.
    let widths: Vec<f64> = serde_json::from_value(timeline["widths"].clone())?;
    assert!(
        widths.len() >= 5 && widths.iter().all(|w| *w >= 2.0),
        "{widths:?}"
    );
    assert!(
        timeline["output"]
            .as_str()
            .unwrap()
            .contains("\"shipped\": true"),
        "{timeline}"
    );
    assert!(
        timeline["input"].as_str().unwrap().contains("Contoso"),
        "{timeline}"
    );
    assert!(timeline["history"].as_u64().unwrap() > 10, "{timeline}");
    browser.screenshot(&shots.join("instance.png")).await?;

    // The sub-orchestration links back to its parent.
    browser
        .click("#timeline .tl-row[data-kind=suborchestration] a.nm")
        .await?;
    browser
        .wait_for(
            "the child's page with a link to its parent",
            "document.body.dataset.state === 'ready' && document.querySelector('#parent-link') && document.querySelector('#parent-link').textContent === 'order-1001'",
        )
        .await?;

    // A failure with the failure inside it.
    browser
        .open(&format!("{base}instance?id=charge-3003"))
        .await?;
    let failure = browser
        .wait_for(
            "the failure details",
            "document.querySelector('#failure') && [...document.querySelectorAll('#failure .etype')].map((e) => e.textContent)",
        )
        .await?;
    let types: Vec<String> = serde_json::from_value(failure)?;
    assert!(types.iter().any(|t| t == "GatewayError"), "{types:?}");
    assert_eq!(
        browser
            .eval("document.querySelector('#action-rewind').disabled")
            .await?,
        json!(false)
    );
    browser
        .screenshot(&shots.join("instance-failed.png"))
        .await?;

    // Entities: the counter with its state.
    browser.open(&format!("{base}entities")).await?;
    let state = browser
        .wait_for(
            "the counter entity",
            "(() => { const r = document.querySelector('#entities-table tr[data-entity-id=\"@counter@orders\"]'); return r && r.querySelector('pre').textContent; })()",
        )
        .await?;
    assert_eq!(state, "2");
    let locked = browser
        .eval("[...document.querySelectorAll('#entities-table tbody tr')].filter((r) => r.dataset.entityId.startsWith('@account@')).map((r) => r.querySelector('td.locked').textContent)")
        .await?;
    assert_eq!(locked, json!(["transfer-4004", "transfer-4004"]));
    browser.screenshot(&shots.join("entities.png")).await?;
    browser
        .click("#entities-table tr[data-entity-id=\"@counter@orders\"] a")
        .await?;
    browser
        .wait_for("the entity's page", "document.querySelector('#entity-state pre') && document.querySelector('#entity-state pre').textContent === '2'")
        .await?;
    browser.screenshot(&shots.join("entity.png")).await?;

    // Terminate from the page: confirm in the dialog, and the running instance ends.
    browser
        .open(&format!("{base}instance?id=approval-2002"))
        .await?;
    browser
        .wait_for(
            "the running instance",
            "document.querySelector('#instance-status').textContent === 'Running'",
        )
        .await?;
    browser.click("#action-terminate").await?;
    browser
        .wait_for(
            "the confirmation dialog",
            "document.querySelector('#dialog[open]') !== null",
        )
        .await?;
    browser
        .eval("document.querySelector('#dialog input[name=reason]').value = 'Stopped from the dashboard'")
        .await?;
    browser
        .screenshot_viewport(&shots.join("terminate-dialog.png"))
        .await?;
    // Nothing happens before the confirmation.
    assert_eq!(
        stack
            .client
            .get_instance("approval-2002", false)
            .await?
            .context("gone")?
            .status,
        OrchestrationStatus::Running
    );
    browser.click("#dialog-confirm").await?;
    browser
        .wait_for(
            "the instance shown as terminated",
            "!document.querySelector('#dialog') && document.querySelector('#instance-status').textContent === 'Terminated'",
        )
        .await?;
    let ended = stack.finished("approval-2002").await?;
    assert_eq!(ended.status, OrchestrationStatus::Terminated);
    assert_eq!(
        ended.output::<Value>()?,
        Some(json!("Stopped from the dashboard"))
    );
    assert_eq!(
        browser
            .eval("document.querySelector('#action-terminate').disabled")
            .await?,
        json!(true)
    );
    browser
        .screenshot(&shots.join("instance-terminated.png"))
        .await?;
    Ok(())
}
