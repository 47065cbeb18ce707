//! The sample app's executable. `cargo run` serves it on http://localhost:7071 with the local host and the embedded
//! backend; the Functions host runs it as the custom handler; `durable-app --help` lists the other commands
//! (`worker`, `functions write`, `package`, ...), which all come from `azure_durable_functions::run`.

use std::process::ExitCode;

// Every invocation through the Functions host allocates and frees the request's envelope, its JSON and base64 text
// and the reply's, from whichever runtime thread serves it; glibc's allocator spent a large share of the handler's
// CPU on that (consolidating its fast bins), mimalloc's thread-local free lists much less. See
// crates/durable-host/BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    azure_durable_functions::run(durable_app::function_app())
}
