//! `package` end to end: a new app packaged with `cargo run -- package`, the zip's layout and modes, and the local
//! host serving the unzipped folder exactly as it would be deployed (it starts the packaged executable itself).
//!
//! The executable is the `dev` profile's, to keep the test quick; `release` (the default) differs only in the
//! profile cargo is given.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use azure_durable_functions::host::{self, BackendChoice, HostOptions};
use common::{cargo, new_app, start_orchestration, text, wait_done};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packaged_app_unzips_and_serves() -> Result<()> {
    let clock = Instant::now();
    let tmp = tempfile::tempdir()?;
    let dir = new_app(&common::apps_dir("package")?, "ship-it")?;
    // Local secrets next to the app must stay where they are.
    std::fs::write(
        dir.join("local.settings.json"),
        r#"{"Values":{"AzureWebJobsStorage":"DefaultEndpointsProtocol=https;AccountName=x;AccountKey=c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}}"#,
    )?;
    let out = tmp.path().join("out");

    let packaged = cargo()
        .current_dir(&dir)
        .args([
            "run",
            "--quiet",
            "--",
            "package",
            "--profile",
            "dev",
            "--out",
        ])
        .arg(&out)
        .output()?;
    ensure!(packaged.status.success(), "package: {}", text(&packaged));
    let report = String::from_utf8_lossy(&packaged.stdout).into_owned();
    let zip_path = out.join("ship-it.zip");
    for expected in [
        zip_path.to_string_lossy().as_ref(),
        "built for x86_64-unknown-linux-",
        "az durabletask scheduler create",
        "az durabletask taskhub create",
        "APP=ship-it",
        "--runtime custom",
        "\"Durable Task Data Contributor\"",
        "FUNCTIONS_WORKER_RUNTIME=custom TASKHUB_NAME=$TASKHUB",
        "\"DURABLE_TASK_SCHEDULER_CONNECTION_STRING=Endpoint=",
        "Authentication=ManagedIdentity;ClientID=",
        "az functionapp deployment source config-zip",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
    let package_time = clock.elapsed();

    // The layout: everything at the root, the executable 0755, nothing else.
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path)?)?;
    let mut modes = BTreeMap::new();
    for i in 0..archive.len() {
        let entry = archive.by_index(i)?;
        modes.insert(
            entry.name().to_owned(),
            entry.unix_mode().context("no Unix mode")? & 0o777,
        );
    }
    let expected: BTreeMap<String, u32> = [
        ("host.json", 0o644),
        ("ship-it", 0o755),
        ("Greetings/", 0o755),
        ("Greetings/function.json", 0o644),
        ("SayHello/", 0o755),
        ("SayHello/function.json", 0o644),
        // Entity names are case-insensitive, and the registry keeps them in lower case.
        ("counter/", 0o755),
        ("counter/function.json", 0o644),
        ("HttpStart/", 0o755),
        ("HttpStart/function.json", 0o644),
    ]
    .into_iter()
    .map(|(name, mode)| (name.to_owned(), mode))
    .collect();
    assert_eq!(modes, expected);

    let read = |archive: &mut zip::ZipArchive<std::fs::File>, name: &str| -> Result<Value> {
        Ok(serde_json::from_reader(archive.by_name(name)?)?)
    };
    let shipped_host = read(&mut archive, "host.json")?;
    let app_host: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("host.json"))?)?;
    assert_eq!(shipped_host, app_host);
    let orchestrator = read(&mut archive, "Greetings/function.json")?;
    assert_eq!(orchestrator["bindings"][0]["type"], "orchestrationTrigger");
    let starter = read(&mut archive, "HttpStart/function.json")?;
    assert_eq!(starter["bindings"][1]["type"], "durableClient");

    // Deployed as Azure would unpack it: the local host reads host.json and starts ./ship-it from the folder.
    let site = tmp.path().join("site");
    archive.extract(&site)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(site.join("ship-it"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }
    // The app settings that the deploy commands set on the function app.
    std::fs::write(
        site.join("local.settings.json"),
        r#"{"Values":{"FUNCTIONS_WORKER_RUNTIME":"custom","TASKHUB_NAME":"shipped"}}"#,
    )?;
    let host = host::start(
        HostOptions::new(&site)
            .with_port(0)
            .with_backend(BackendChoice::EmbeddedInMemory)
            .with_timers(false),
    )
    .await?;
    let status_url = start_orchestration(host.base_url(), "Greetings", &json!(["Kyiv"])).await?;
    let done = wait_done(&status_url).await;
    host.stop().await?;
    let done = done?;
    assert_eq!(done["runtimeStatus"], "Completed", "{done}");
    assert_eq!(
        done["output"],
        json!({"greetings": ["Hello Kyiv!"], "total": 1})
    );

    eprintln!(
        "package: new app packaged in {:.1?}, whole test {:.1?}",
        package_time,
        clock.elapsed()
    );
    Ok(())
}
