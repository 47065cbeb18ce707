//! The five-minute path: `azure-durable-functions new`, `cargo build`, `<app> start`, and an orchestration
//! through the app's HTTP starter, all as real processes outside this workspace.

mod common;

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, ensure};
use common::{cargo, new_app, start_orchestration, text, wait_done};
use durable_testkit::Spawned;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_app_builds_starts_and_completes_an_orchestration() -> Result<()> {
    let clock = Instant::now();
    let dir = new_app(&common::apps_dir("new_app")?, "hello-durable")?;

    for file in [
        "Cargo.toml",
        "src/main.rs",
        "host.json",
        "local.settings.sample.json",
        ".gitignore",
        "README.md",
    ] {
        ensure!(dir.join(file).is_file(), "{file} was not written");
    }
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    assert!(manifest.contains("name = \"hello-durable\""), "{manifest}");
    assert!(manifest.contains("\n[workspace]"), "{manifest}");
    let facade = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR"))?;
    assert!(
        manifest.contains(&format!("path = {:?}", facade.to_string_lossy())),
        "{manifest}"
    );
    let host: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("host.json"))?)?;
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "hello-durable"
    );
    assert_eq!(
        host["extensions"]["durableTask"]["storageProvider"]["type"],
        "azureManaged"
    );
    assert_eq!(host["extensionBundle"]["version"], "[4.30.0, 5.0.0)");

    let built = cargo()
        .current_dir(&dir)
        .args(["build", "--message-format=short"])
        .output()?;
    ensure!(built.status.success(), "cargo build: {}", text(&built));
    let log = text(&built);
    assert!(
        !log.lines()
            .any(|l| l.contains("src/main.rs") && l.contains("warning")),
        "the template's code has warnings: {log}"
    );
    let build_time = clock.elapsed();

    let executable = common::shared_target_dir().join("debug/hello-durable");
    let mut app = Spawned::start(Command::new(&executable).current_dir(&dir).args([
        "start",
        "--port",
        "0",
        "--in-memory",
    ]))?;
    // The start command prints the URL it listens on once every part is up.
    let base = app
        .wait_for_stdout(common::LIMIT, |line| {
            line.split_once("listening on ")
                .map(|(_, url)| url.trim().to_owned())
        })
        .map_err(anyhow::Error::msg)?;

    let status_url = start_orchestration(&base, "Greetings", &json!(["Tokyo", "Lisbon"])).await?;
    let done = wait_done(&status_url).await?;
    assert_eq!(done["runtimeStatus"], "Completed", "{done}");
    assert_eq!(done["name"], "Greetings");
    assert_eq!(
        done["output"],
        json!({"greetings": ["Hello Tokyo!", "Hello Lisbon!"], "total": 2})
    );
    // The counter entity keeps its total across instances.
    let again =
        wait_done(&start_orchestration(&base, "Greetings", &json!(["Oslo"])).await?).await?;
    assert_eq!(again["output"]["total"], 3, "{again}");

    let status = app.terminate(common::LIMIT).map_err(anyhow::Error::msg)?;
    assert!(
        status.success(),
        "start ended with {status}: {}",
        app.output()
    );
    eprintln!(
        "new app: created and built in {:.1?}, whole test {:.1?}",
        build_time,
        clock.elapsed()
    );
    Ok(())
}

#[test]
fn new_refuses_a_folder_in_use_and_a_bad_name() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let used = tmp.path().join("used");
    std::fs::create_dir(&used)?;
    std::fs::write(used.join("notes.txt"), "mine")?;
    let output = Command::new(env!("CARGO_BIN_EXE_azure-durable-functions"))
        .arg("new")
        .arg(&used)
        .output()?;
    assert!(!output.status.success());
    assert!(
        text(&output).contains("already exists and is not empty"),
        "{}",
        text(&output)
    );
    assert_eq!(std::fs::read_to_string(used.join("notes.txt"))?, "mine");
    assert_eq!(
        std::fs::read_dir(&used)?.count(),
        1,
        "something was written"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_azure-durable-functions"))
        .arg("new")
        .arg(tmp.path().join("9lives"))
        .output()?;
    assert!(!output.status.success());
    assert!(
        text(&output).contains("'9lives' cannot name the app"),
        "{}",
        text(&output)
    );
    assert!(!tmp.path().join("9lives").exists());

    let output = Command::new(env!("CARGO_BIN_EXE_azure-durable-functions"))
        .arg("new")
        .arg(tmp.path().join("elsewhere"))
        .arg("--facade-path")
        .arg(tmp.path())
        .output()?;
    assert!(!output.status.success());
    assert!(
        text(&output).contains("is not the azure-durable-functions crate"),
        "{}",
        text(&output)
    );

    // An empty folder is fine, and --name overrides the folder's name.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty)?;
    let output = Command::new(env!("CARGO_BIN_EXE_azure-durable-functions"))
        .arg("new")
        .arg(&empty)
        .args(["--name", "orders"])
        .output()?;
    assert!(output.status.success(), "{}", text(&output));
    let manifest = std::fs::read_to_string(empty.join("Cargo.toml"))?;
    assert!(manifest.contains("name = \"orders\""), "{manifest}");
    assert!(
        manifest.contains(&format!(
            "azure-durable-functions = \"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{manifest}"
    );
    Ok(())
}
