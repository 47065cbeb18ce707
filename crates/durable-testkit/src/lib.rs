//! Test support shared by the workspace's own tests (never published):
//!
//! - [`peers`]: where the interop peers are (Microsoft's Python and JavaScript SDKs, Azurite, Chromium) and the
//!   one rule for a missing one: a failure under the verify script (`DURABLE_REQUIRE_PEERS`) or CI, a visible
//!   `skipped: ...` line otherwise;
//! - [`timers`]: proof from a recorded history that durable timers fired no earlier than their fire time;
//! - [`harness`]: a small runner for test binaries that need their own `main` (a binary that is also a custom
//!   handler, or that must set process-wide state before any thread starts);
//! - [`process`]: child processes a test waits on with deadlines, never hanging the run;
//! - [`machine`]: the facts benchmarks print so that two runs can be compared (CPU, kernel, load, fsync floor,
//!   CPU time per process and thread).

#![warn(missing_docs)]

pub mod harness;
pub mod machine;
pub mod peers;
pub mod process;
pub mod timers;

pub use peers::{azurite_queue, chromium, node_with_package, peers_required, python, python_with};
pub use process::Spawned;
pub use timers::{FiredTimer, fired_timers};
