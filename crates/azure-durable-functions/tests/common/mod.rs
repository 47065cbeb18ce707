//! Shared by the tests that create an app from the template, build it with cargo and run it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

pub(crate) const LIMIT: Duration = Duration::from_secs(60);

/// This test run's own cargo target directory. Apps built by the tests share it: they depend on this workspace's
/// crates by path, so their dependencies are the very units the test build made, and only the app itself (whose
/// name no workspace crate has) is new.
pub(crate) fn shared_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `cargo`, as the test runner was started with, on the shared target directory, and without the variables cargo
/// sets for tests: a build script that watches one of them (ring watches `CARGO_MANIFEST_DIR`) would otherwise
/// run again, and the test run and the app's build would keep rebuilding each other's dependencies.
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    for (key, _) in std::env::vars() {
        let set_by_cargo = matches!(
            key.as_str(),
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
        ) || key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_");
        if set_by_cargo {
            command.env_remove(key);
        }
    }
    command.env("CARGO_TARGET_DIR", shared_target_dir());
    command
}

/// A folder for the apps of one test, emptied first. It lives at the same path in every run, so cargo sees the same
/// package each time and replaces its outputs instead of adding another copy of an executable to the target dir.
pub(crate) fn apps_dir(test: &str) -> Result<PathBuf> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("apps")
        .join(test);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `azure-durable-functions new <parent>/<name> --facade-path <this crate>`, plus this workspace's lock file so
/// that the app resolves to the versions already built (and needs no registry).
pub(crate) fn new_app(parent: &Path, name: &str) -> Result<PathBuf> {
    let dir = parent.join(name);
    let output = Command::new(env!("CARGO_BIN_EXE_azure-durable-functions"))
        .arg("new")
        .arg(&dir)
        .arg("--facade-path")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .output()?;
    ensure!(output.status.success(), "new failed: {}", text(&output));
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock"))?;
    Ok(dir)
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A child process stopped with SIGTERM (so that it stops its own children), then killed if it lingers.
/// `POST {base}/api/orchestrators/{name}` with a JSON body; returns the `statusQueryGetUri` of the 202.
pub(crate) async fn start_orchestration(base: &str, name: &str, input: &Value) -> Result<String> {
    let reply = reqwest::Client::new()
        .post(format!("{base}/api/orchestrators/{name}"))
        .json(input)
        .send()
        .await?;
    let status = reply.status();
    let body: Value = reply.json().await?;
    ensure!(status.as_u16() == 202, "{status}: {body}");
    Ok(body["statusQueryGetUri"]
        .as_str()
        .context("statusQueryGetUri")?
        .to_owned())
}

/// Polls a `statusQueryGetUri` until the instance is done (200), within [`LIMIT`].
pub(crate) async fn wait_done(status_url: &str) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let reply = reqwest::get(status_url).await?;
        match reply.status().as_u16() {
            200 => return Ok(reply.json().await?),
            202 => {}
            other => bail!("status {other}: {}", reply.text().await?),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("not done within {LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
