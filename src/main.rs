//! The sample app's executable. `cargo run` serves it on http://localhost:7071 with the local host and the embedded
//! backend; the Functions host runs it as the custom handler; `durable-app --help` lists the other commands
//! (`worker`, `functions write`, `package`, ...), which all come from `azure_durable_functions::run`.

use std::process::ExitCode;

fn main() -> ExitCode {
    azure_durable_functions::run(durable_app::function_app())
}
