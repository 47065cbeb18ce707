//! Peak memory of one large upload through the local host and this workspace's handler: how many times the
//! host process and the handler process hold the body at their peak.
//!
//! `cargo bench -p durable-host --bench upload_memory` (32 MiB; `BENCH_UPLOAD_MIB` overrides it). Each case runs
//! in a fresh child process, whose high-water mark (`VmHWM` in `/proc/self/status`) is read after a warm-up
//! request and again after the upload; the handler's is read the same way from `/proc/<pid>/status`. The upload
//! is `application/octet-stream` bytes of every value, to an HTTP function that checks it received them exactly:
//!
//! - **wrapped**: the host base64-encodes the body into the `{"Data","Metadata"}` invocation (the JSON the handler
//!   parses is 4/3 of the payload);
//! - **forwarded**: `enableForwardingHttpRequest`, the bytes pass through as they are.
//!
//! Linux only (it reads `/proc`). The binary is also its own custom handler: the host starts it again with
//! `FUNCTIONS_CUSTOMHANDLER_PORT` set.

use anyhow::{Context as _, Result, bail};
use durable_handler::{AuthLevel, FunctionApp, HttpResponse, HttpTrigger};
use durable_host::{BackendChoice, HostOptions};

const MODE_ENV: &str = "BENCH_UPLOAD_MODE";
const REPORT_MARK: &str = "upload-memory-report: ";

fn handler_app() -> durable_handler::Handler {
    FunctionApp::new(durable_core::Registry::new())
        .http(
            "Upload",
            HttpTrigger::new()
                .route("upload")
                .methods(["post"])
                .auth_level(AuthLevel::Anonymous),
            |req, _ctx| async move {
                let bytes = req.body_bytes()?;
                let sum = bytes.iter().fold(0u64, |acc, b| {
                    acc.wrapping_mul(31).wrapping_add(u64::from(*b))
                });
                Ok(HttpResponse::text(format!("{} {sum}", bytes.len())))
            },
        )
        .build()
        .expect("a valid app")
}

fn payload(bytes: usize) -> (Vec<u8>, String) {
    let data: Vec<u8> = (0..bytes).map(|i| (i * 7 % 251) as u8).collect();
    let sum = data.iter().fold(0u64, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(*b))
    });
    let expected = format!("{} {sum}", data.len());
    (data, expected)
}

/// `VmHWM` of a process, in bytes.
fn high_water_mark(pid: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM line")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("no VmHWM value")?
        .parse()?;
    Ok(kb * 1024)
}

fn main() -> Result<()> {
    if std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_some() {
        let runtime = tokio::runtime::Runtime::new()?;
        return Ok(runtime.block_on(durable_handler::serve(handler_app()))?);
    }
    let mib: usize = match std::env::var("BENCH_UPLOAD_MIB") {
        Ok(v) => v.parse().context("BENCH_UPLOAD_MIB")?,
        Err(_) => 32,
    };
    if let Ok(mode) = std::env::var(MODE_ENV) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let report = runtime.block_on(measure(&mode, mib << 20))?;
        println!("{REPORT_MARK}{report}");
        return Ok(());
    }
    println!(
        "upload of {mib} MiB; peak memory growth over the warmed-up process, in MiB and in payloads"
    );
    println!("| mode | host process | handler process |");
    println!("|---|---|---|");
    for mode in ["wrapped", "forwarded"] {
        let output = std::process::Command::new(std::env::current_exe()?)
            .env(MODE_ENV, mode)
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout.lines().find_map(|l| l.strip_prefix(REPORT_MARK)) else {
            bail!(
                "{mode}: no report ({}):\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let report: serde_json::Value = serde_json::from_str(line)?;
        let cell = |key: &str| {
            let grown = report[key].as_f64().unwrap_or(f64::NAN) / f64::from(1 << 20);
            format!("{grown:.1} MiB ({:.2}x)", grown / mib as f64)
        };
        println!("| {mode} | {} | {} |", cell("host"), cell("handler"));
    }
    Ok(())
}

async fn measure(mode: &str, bytes: usize) -> Result<serde_json::Value> {
    let app = tempfile::tempdir()?;
    let forwarding = mode == "forwarded";
    let host_json = serde_json::json!({
        "version": "2.0",
        "customHandler": {
            "description": {"defaultExecutablePath": "not-used"},
            "enableForwardingHttpRequest": forwarding,
        },
    });
    std::fs::write(app.path().join("host.json"), host_json.to_string())?;
    handler_app().write_function_files(app.path())?;
    let host = durable_host::start(
        HostOptions::new(app.path())
            .with_port(0)
            .with_handler(std::env::current_exe()?)
            .with_backend(BackendChoice::EmbeddedInMemory)
            .with_timers(false),
    )
    .await?;
    let url = format!("{}/api/upload", host.base_url());
    let http = reqwest::Client::new();
    let (data, expected) = payload(bytes);
    let (small, small_expected) = payload(1024);
    upload(&http, &url, small, &small_expected).await?;

    let handler_pid = host.handler_pid().to_string();
    let host_before = high_water_mark("self")?;
    let handler_before = high_water_mark(&handler_pid)?;
    upload(&http, &url, data, &expected).await?;
    let host_after = high_water_mark("self")?;
    let handler_after = high_water_mark(&handler_pid)?;
    host.stop().await?;
    Ok(serde_json::json!({
        "host": host_after - host_before,
        "handler": handler_after - handler_before,
    }))
}

async fn upload(http: &reqwest::Client, url: &str, data: Vec<u8>, expected: &str) -> Result<()> {
    let reply = http
        .post(url)
        .header("content-type", "application/octet-stream")
        .body(data)
        .send()
        .await?;
    let status = reply.status();
    let text = reply.text().await?;
    if !status.is_success() || text != expected {
        bail!("upload answered {status}: {text:?}, expected {expected:?}");
    }
    Ok(())
}
