//! The sample app's functions: durable ones in a [`Registry`], ordinary ones on the [`FunctionApp`].
//!
//! The same registrations serve every mode: the custom handler under the Functions host (or the local host), the
//! direct gRPC worker against the Durable Task Scheduler, and the `function.json` files written from code.
//!
//! | function | kind | what it does |
//! |---|---|---|
//! | `HelloCities` | orchestrator | chains `SayHello` over Tokyo, Seattle, London; counts greetings in `@counter@greetings` |
//! | `FanOutFanIn` | orchestrator | `CountLetters` for every city in parallel (with retries), then sums |
//! | `ApprovalWorkflow` | orchestrator | waits for the `Approval` event (`true`/`false`) with a durable timeout |
//! | `SayHello`, `CountLetters`, `RecordDecision` | activities | |
//! | `Counter` | entity | `add`, `get`, `reset`, `delete` on an `i64` |
//! | `HttpStart` | HTTP + durable client | `POST /api/orchestrators/{functionName}`: start, answer the check-status response |
//! | `CounterGet`, `CounterSignal` | HTTP + durable client | `GET /api/counter/{key}`, `POST /api/counter/{key}/{operation}` |
//! | `Hello` | HTTP | `GET /api/hello?name=...`, nothing durable |
#![warn(missing_docs)]

#[path = "app/activities.rs"]
mod activities;
#[path = "app/entities.rs"]
mod entities;
#[path = "app/http.rs"]
mod http;
#[path = "app/orchestrations.rs"]
mod orchestrations;

pub use activities::{CountLetters, RecordDecision, SayHello};
pub use entities::{Add, COUNTER, Counter, Delete, Get, Reset};
pub use orchestrations::{
    ApprovalOutcome, ApprovalRequest, ApprovalWorkflow, FanOutFanIn, HelloCities, LetterCount,
};

use azure_durable_functions::{FunctionApp, Registry};

/// The orchestrators, activities and entities of the sample.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    orchestrations::register(&mut registry);
    activities::register(&mut registry);
    entities::register(&mut registry);
    registry
}

/// The whole Functions app: the durable functions plus the HTTP functions.
pub fn function_app() -> FunctionApp {
    http::register(FunctionApp::new(registry()))
}
