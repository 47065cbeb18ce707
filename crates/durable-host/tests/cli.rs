//! The `durable-host` command on folders that are not a custom-handler app: each gets a plain error naming what
//! is missing and a failing exit code, before anything is started. And on one that is: what it prints at start.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use durable_testkit::Spawned;

/// How long the host may take to start or to stop; only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(60);

fn durable_host(args: &[&str], app: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_durable-host"))
        .arg("--app-dir")
        .arg(app)
        .args(args)
        .env_remove("DURABLE_TASK_SCHEDULER_CONNECTION_STRING")
        .output()
        .expect("durable-host runs")
}

/// Starts `durable-host` on `app`, in memory on a free port, with `configure`'s changes to its command, and waits
/// for the line that names its address; returns the running host and its port.
fn start_host(app: &Path, configure: impl FnOnce(&mut Command)) -> (Spawned, u16) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_durable-host"));
    command
        .arg("--app-dir")
        .arg(app)
        .args(["--in-memory", "-p", "0"])
        .env_remove("DURABLE_TASK_SCHEDULER_CONNECTION_STRING");
    configure(&mut command);
    let mut host = Spawned::start(&mut command).unwrap();
    let port = host
        .wait_for_stdout(LIMIT, |line| {
            line.strip_prefix("durable-host listening on http://localhost:")
                .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        })
        .unwrap_or_else(|e| panic!("{e}: {}", host.stderr()));
    (host, port)
}

fn assert_fails_with(output: &Output, code: i32, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn folders_that_are_not_apps_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path();

    let missing = durable_host(&["--in-memory"], &app.join("nope"));
    assert_fails_with(&missing, 1, "nope: no such folder");

    let empty = durable_host(&["--in-memory"], app);
    assert_fails_with(&empty, 1, "no host.json here");

    std::fs::write(app.join("host.json"), r#"{"version":"2.0"}"#).unwrap();
    let no_handler = durable_host(&["--in-memory"], app);
    assert_fails_with(
        &no_handler,
        1,
        "host.json has no customHandler.description.defaultExecutablePath",
    );

    std::fs::write(
        app.join("host.json"),
        r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"}}}"#,
    )
    .unwrap();
    let no_functions = durable_host(&["--in-memory"], app);
    assert_fails_with(
        &no_functions,
        1,
        "no functions: no <Function>/function.json folders",
    );

    std::fs::write(app.join("host.json"), "{ not json").unwrap();
    let broken = durable_host(&["--in-memory"], app);
    assert_fails_with(&broken, 1, "host.json: not valid JSON");
}

#[test]
fn bad_settings_and_flags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path();
    std::fs::write(
        app.join("host.json"),
        r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"}}}"#,
    )
    .unwrap();
    std::fs::create_dir(app.join("Hello")).unwrap();
    std::fs::write(
        app.join("Hello/function.json"),
        r#"{"bindings":[{"name":"context","type":"orchestrationTrigger","direction":"in"}]}"#,
    )
    .unwrap();
    std::fs::write(
        app.join("local.settings.json"),
        r#"{"Host":{"LocalHttpPort":"seventy"}}"#,
    )
    .unwrap();
    let bad_port = durable_host(&["--in-memory"], app);
    assert_fails_with(&bad_port, 1, "Host.LocalHttpPort must be a port number");

    let conflicting = durable_host(&["--in-memory", "--db", "x.db"], app);
    assert_fails_with(&conflicting, 2, "cannot be used with");
}

#[test]
fn keys_given_by_the_user_are_never_printed_and_generated_ones_are() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path();
    let exe = env!("CARGO_BIN_EXE_durable-host-fake-handler");
    let host_json = serde_json::json!({
        "version": "2.0",
        "customHandler": {"description": {
            "defaultExecutablePath": exe,
        }},
    });
    std::fs::write(app.join("host.json"), host_json.to_string()).unwrap();
    std::fs::create_dir(app.join("Hello")).unwrap();
    std::fs::write(
        app.join("Hello/function.json"),
        r#"{"bindings":[{"name":"context","type":"orchestrationTrigger","direction":"in"}]}"#,
    )
    .unwrap();
    let settings = serde_json::json!({"Values": {
        support::LOG_ENV: app.join("requests.jsonl"),
        "DURABLE_HOST_MASTER_KEY": "user-master-secret",
        "DURABLE_HOST_ENABLE_AUTH": "true",
    }});
    std::fs::write(app.join("local.settings.json"), settings.to_string()).unwrap();
    let (mut host, _) = start_host(app, |command| {
        command
            .env_remove("DURABLE_HOST_FUNCTION_KEY")
            .env_remove("DURABLE_HOST_SYSTEM_KEY");
    });
    // SIGTERM right after the line: the host must neither lose it nor die of it.
    let status = host.terminate(LIMIT).unwrap();
    let stderr = host.stderr();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("user-master-secret"), "{stderr}");
    assert!(stderr.contains("function key: "), "{stderr}");
    assert!(stderr.contains("durabletask_extension key: "), "{stderr}");
    assert!(!stderr.contains("master key: "), "{stderr}");
}

/// A proxy named in the environment (`HTTP_PROXY` and its kin, set on many corporate machines) is for the
/// outside world: the host's calls to its own handler on loopback (the start-up probe, invocations, forwarded
/// requests) never go through it.
#[test]
fn a_proxy_in_the_environment_is_not_used_for_the_handler() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path();
    let host_json = serde_json::json!({
        "version": "2.0",
        "customHandler": {
            "description": {"defaultExecutablePath": env!("CARGO_BIN_EXE_durable-host-fake-handler")},
            "enableForwardingHttpRequest": true,
        },
    });
    std::fs::write(app.join("host.json"), host_json.to_string()).unwrap();
    std::fs::create_dir(app.join("Fwd")).unwrap();
    std::fs::write(
        app.join("Fwd/function.json"),
        r#"{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","authLevel":"anonymous","route":"fwd/{x}"},
                        {"name":"res","type":"http","direction":"out"}]}"#,
    )
    .unwrap();
    let settings = serde_json::json!({"Values": {support::LOG_ENV: app.join("requests.jsonl")}});
    std::fs::write(app.join("local.settings.json"), settings.to_string()).unwrap();
    // Port 1 on loopback: nothing listens there, so a request sent to the proxy fails at once.
    let proxy = "http://127.0.0.1:1";
    let (mut host, port) = start_host(app, |command| {
        for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            command.env(name, proxy);
        }
        for name in ["NO_PROXY", "no_proxy"] {
            command.env_remove(name);
        }
    });

    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(b"PUT /api/fwd/1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.ends_with("forwarded PUT abc"), "{answer}");

    let status = host.terminate(LIMIT).unwrap();
    assert!(status.success(), "{status}: {}", host.stderr());
}
