//! The web dashboard at `/dashboard` of the local host: its pages are open, its API follows the management
//! webhooks' key rules (open on loopback by default; the system or master key when checks are on), and it shows
//! what the host's backend holds.
//!
//! The handler is the recording fake handler of `support` (the `durable-host-fake-handler` program).

mod support;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use durable_host::{BackendChoice, HostHandle, HostOptions};
use serde_json::Value;

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn app_dir(settings: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "host.json",
        r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"not-used"}}}"#,
    );
    write(
        d,
        "HelloOrch/function.json",
        r#"{"bindings":[{"name":"context","type":"orchestrationTrigger","direction":"in"}]}"#,
    );
    write(
        d,
        "SayHello/function.json",
        r#"{"bindings":[{"name":"input","type":"activityTrigger","direction":"in"}]}"#,
    );
    if let Some(settings) = settings {
        write(d, "local.settings.json", settings);
    }
    dir
}

async fn start_host(app: &Path) -> Result<HostHandle> {
    let log = app.join("requests.jsonl");
    Ok(durable_host::start(
        HostOptions::new(app)
            .with_port(0)
            .with_handler(env!("CARGO_BIN_EXE_durable-host-fake-handler"))
            .with_handler_env(support::LOG_ENV, log.to_string_lossy())
            .with_backend(BackendChoice::EmbeddedInMemory)
            .with_master_key("mkey")
            .with_timers(false),
    )
    .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_the_management_key_rules() -> Result<()> {
    let app = app_dir(Some(r#"{"Values":{"DURABLE_HOST_ENABLE_AUTH":"true"}}"#));
    let host = start_host(app.path()).await?;
    let system = host.system_key().context("no system key")?.to_owned();
    assert_eq!(
        host.dashboard_url(),
        format!("{}/dashboard/", host.base_url())
    );
    let base = format!("http://{}/dashboard/", host.local_addr());
    let http = reqwest::Client::new();

    // A finished instance, started through the webhooks with the key.
    let started = http
        .post(format!(
            "http://{}/runtime/webhooks/durabletask/orchestrators/HelloOrch/shown-1?timeout=60",
            host.local_addr()
        ))
        .header("x-functions-key", &system)
        .send()
        .await?;
    assert_eq!(started.status().as_u16(), 200);

    // The pages load without a key (they hold no data), under the host's path.
    for path in ["", "instance?id=shown-1", "entities"] {
        let page = http.get(format!("{base}{path}")).send().await?;
        assert_eq!(page.status().as_u16(), 200, "{path}");
        assert!(
            page.text().await?.contains("<base href=\"/dashboard/\">"),
            "{path}"
        );
    }
    let bare = http
        .get(format!("http://{}/dashboard", host.local_addr()))
        .send()
        .await?;
    assert_eq!(bare.status().as_u16(), 200);

    // The API takes the system key or the master key, in the header or as `code`, and nothing else.
    let url = format!("{base}api/instances");
    assert_eq!(http.get(&url).send().await?.status().as_u16(), 401);
    assert_eq!(
        http.get(&url)
            .header("x-functions-key", "wrong")
            .send()
            .await?
            .status()
            .as_u16(),
        401
    );
    let terminate = http
        .post(format!("{base}api/instance/terminate"))
        .header("content-type", "application/json")
        .header("x-dashboard-request", "1")
        .body(r#"{"instanceId":"shown-1"}"#)
        .send()
        .await?;
    assert_eq!(terminate.status().as_u16(), 401);
    let listed: Value = http
        .get(&url)
        .header("x-functions-key", &system)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(listed["items"][0]["instanceId"], "shown-1", "{listed}");
    assert_eq!(listed["items"][0]["status"], "Completed");
    let info = http.get(format!("{base}api/info?code=mkey")).send().await?;
    assert_eq!(info.status().as_u16(), 200);
    let info: Value = info.json().await?;
    assert_eq!(info["taskHubs"][0], host.task_hub());
    let detail: Value = http
        .get(format!("{base}api/instance?id=shown-1&code=mkey"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(detail["instance"]["output"], "\"Hello Tokyo!\"", "{detail}");
    host.stop().await?;

    // Checks off (the default on loopback): open, as the webhooks are.
    let app = app_dir(None);
    let host = start_host(app.path()).await?;
    let reply = tokio::time::timeout(
        Duration::from_secs(30),
        http.get(format!(
            "http://{}/dashboard/api/instances",
            host.local_addr()
        ))
        .send(),
    )
    .await??;
    assert_eq!(reply.status().as_u16(), 200);
    host.stop().await?;
    Ok(())
}
