//! The misbehaving custom handler of `tests/fidelity/handler.rs` as a program of its own: `tests/fidelity.rs` starts
//! it as its handler (`env!("CARGO_BIN_EXE_durable-host-fidelity-handler")`), with the log file in
//! `DURABLE_HOST_FIDELITY_LOG`.

#[path = "../fidelity/handler.rs"]
mod handler;

fn main() -> std::process::ExitCode {
    let Some(log) = std::env::var_os(handler::LOG_ENV) else {
        eprintln!(
            "a test handler of durable-host: set {} to the log file",
            handler::LOG_ENV
        );
        return std::process::ExitCode::from(2);
    };
    handler::serve(log.into());
    std::process::ExitCode::SUCCESS
}
