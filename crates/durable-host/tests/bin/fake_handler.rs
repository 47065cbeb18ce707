//! The recording fake custom handler of `tests/support` as a program of its own: the host tests start it as their
//! handler (`env!("CARGO_BIN_EXE_durable-host-fake-handler")`), with the log file in `DURABLE_HOST_TEST_RECORDER_LOG`.

#[path = "../support/mod.rs"]
mod support;

fn main() -> std::process::ExitCode {
    let Some(log) = std::env::var_os(support::LOG_ENV) else {
        eprintln!(
            "a test handler of durable-host: set {} to the log file",
            support::LOG_ENV
        );
        return std::process::ExitCode::from(2);
    };
    support::serve(log.into());
    std::process::ExitCode::SUCCESS
}
