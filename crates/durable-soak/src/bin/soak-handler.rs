//! The soak run's custom handler: the workload of `durable_soak::workload` served to the local host over HTTP
//! (the host starts it with `FUNCTIONS_CUSTOMHANDLER_PORT` set).

fn main() -> anyhow::Result<()> {
    let app = durable_handler::FunctionApp::new(durable_soak::workload::registry()).build()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(durable_handler::serve(app))?;
    Ok(())
}
