//! Rough throughput of the backend with a protocol-level worker in the same process.
//!
//! `cargo run -p durable-backend --release --example throughput -- [count] [memory|file] [full|normal|off]`
//!
//! Each orchestration is three turns: an activity, a zero-length timer, then completion.

#[path = "../tests/common/raw.rs"]
#[allow(dead_code, unreachable_pub)]
mod raw;

use std::time::{Duration, Instant};

use durable_backend::{Options, Synchronous};
use durable_proto::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args.get(1).map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let dir = tempfile_dir()?;
    let mut options = Options::new().with_bind("127.0.0.1:0".parse()?);
    options = match args.get(2).map(String::as_str) {
        Some("memory") => options.in_memory(),
        _ => options.with_db_path(dir.join("throughput.db")),
    };
    options = options.with_synchronous(match args.get(3).map(String::as_str) {
        Some("normal") => Synchronous::Normal,
        Some("off") => Synchronous::Off,
        _ => Synchronous::Full,
    });
    let backend = durable_backend::start(options).await?;
    let endpoint = backend.endpoint();

    let mut worker = raw::connect(&endpoint).await;
    let mut stream = worker
        .get_work_items(GetWorkItemsRequest {
            max_concurrent_orchestration_work_items: 200,
            max_concurrent_activity_work_items: 200,
            ..Default::default()
        })
        .await?
        .into_inner();
    tokio::spawn(async move {
        while let Ok(Some(item)) = stream.message().await {
            let mut client = worker.clone();
            tokio::spawn(async move {
                let _ = raw::handle(&mut client, item, Duration::ZERO).await;
            });
        }
    });

    let started = Instant::now();
    let mut client = raw::connect(&endpoint).await;
    let starts = (0..count).map(|i| {
        let mut client = client.clone();
        async move {
            client
                .start_instance(raw::start_request(
                    &format!("t-{i}"),
                    "double_then_nap",
                    &i.to_string(),
                ))
                .await
        }
    });
    for result in futures::future::join_all(starts).await {
        result?;
    }
    for i in 0..count {
        client
            .wait_for_instance_completion(GetInstanceRequest {
                instance_id: format!("t-{i}"),
                get_inputs_and_outputs: false,
            })
            .await?;
    }
    let elapsed = started.elapsed();
    // Per orchestration: start, 3 orchestrator turns, 1 activity, 1 timer.
    println!(
        "{count} orchestrations in {:.2?}: {:.0} orchestrations/s, {:.0} work items/s",
        elapsed,
        count as f64 / elapsed.as_secs_f64(),
        (count * 4) as f64 / elapsed.as_secs_f64()
    );
    backend.shutdown().await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("durable-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
