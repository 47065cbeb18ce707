//! Orchestration versioning, as the Durable Task SDKs and Durable Functions do it.
//!
//! An orchestration gets a version when it starts (from the client, from the starter's default, or for a
//! sub-orchestration from its parent's default version); the code reads it with
//! [`OrchestrationContext::version`] and branches with [`OrchestrationContext::compare_version_to`]. A worker (or
//! handler) can also refuse orchestrations whose version it was not built for: [`Versioning`] gives the worker's
//! version, how an orchestration's version must relate to it ([`VersionMatchStrategy`]) and what happens when it
//! does not ([`VersionFailureStrategy`]: reject, so that another worker takes it, or fail the orchestration).
//!
//! The rules are the SDKs' (microsoft/durabletask-dotnet `src/Abstractions/TaskOrchestrationVersioningUtils.cs`
//! and `src/Worker/Grpc/GrpcDurableTaskWorker.Processor.cs`; microsoft/durabletask-python `durabletask/worker.py`):
//!
//! - versions compare as in [`compare_versions`]: an empty version is older than any other; two versions that both
//!   read as `major.minor[.build[.revision]]` compare numerically, component by component, a missing component
//!   being older than any present one (`1.0` < `1.0.0`); anything else compares as text, ignoring ASCII case;
//! - `Strict` accepts only the worker's version (an orchestration without a version is refused by a worker that has
//!   one), `CurrentOrOlder` accepts the worker's version and older ones (orchestrations without a version
//!   included), `None` accepts everything;
//! - a refused orchestration fails, under `Fail`, with the non-retriable failure `VersionMismatch`: "The
//!   orchestration version '2.0' does not match the worker version '1.0'." (`Strict`) or "... is greater than the
//!   worker version ..." (`CurrentOrOlder`); under `Reject`, the transport abandons the work item, which the
//!   backend hands out again, to a worker that accepts it;
//! - with `Strict`, the gRPC worker's work-item filters carry the worker's version, so that the scheduler only
//!   sends matching orchestrations; other strategies send no versions (any version may arrive);
//! - a sub-orchestration started without a version gets the default version: [`Versioning::default_version`], else
//!   the `defaultVersion` the Functions host sends with each turn (host.json `extensions.durableTask.defaultVersion`).
//!
//! ```
//! use durable_core::proto::{self, history_event::EventType};
//! use durable_core::{
//!     OrchestrationContext, OrchestrationError, Registry, VersionFailureStrategy, VersionMatchStrategy, Versioning,
//! };
//!
//! async fn checkout(ctx: OrchestrationContext, (): ()) -> Result<String, OrchestrationError> {
//!     Ok(format!("running as {}", ctx.version().unwrap_or_default()))
//! }
//! let mut registry = Registry::new();
//! registry.add_orchestrator("Checkout", checkout).set_versioning(
//!     Versioning::new("2.0")
//!         .match_strategy(VersionMatchStrategy::CurrentOrOlder)
//!         .failure_strategy(VersionFailureStrategy::Fail),
//! );
//!
//! let start = |version: &str| proto::OrchestratorRequest {
//!     instance_id: format!("order-{version}"),
//!     new_events: vec![proto::HistoryEvent {
//!         event_id: -1,
//!         timestamp: None,
//!         event_type: Some(EventType::ExecutionStarted(proto::ExecutionStartedEvent {
//!             name: "Checkout".into(),
//!             version: Some(version.into()),
//!             ..Default::default()
//!         })),
//!     }],
//!     ..Default::default()
//! };
//! // 1.5 is older than the worker's 2.0: it runs.
//! assert!(registry.check_orchestration_version(&start("1.5")).is_ok());
//! // 3.0 is newer: refused, and with `Fail` the orchestration fails.
//! let refused = registry.check_orchestration_version(&start("3.0")).unwrap_err();
//! assert_eq!(refused.details.error_type, "VersionMismatch");
//! assert_eq!(
//!     refused.details.error_message,
//!     "The orchestration version '3.0' is greater than the worker version '2.0'."
//! );
//! assert!(!refused.reject);
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::errors::FailureDetails;
use crate::orchestration::OrchestrationContext;
use crate::proto;
use crate::proto::history_event::EventType;
use crate::proto::orchestrator_action::OrchestratorActionType;
use crate::registry::{Registry, ReplayOptions};

/// How an orchestration's version must relate to the worker's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum VersionMatchStrategy {
    /// Every version is accepted.
    #[default]
    None,
    /// Only the worker's version.
    Strict,
    /// The worker's version and older ones.
    CurrentOrOlder,
}

/// What happens to an orchestration whose version the worker does not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum VersionFailureStrategy {
    /// The work item is abandoned, for another worker to take.
    #[default]
    Reject,
    /// The orchestration fails with `VersionMismatch`.
    Fail,
}

/// A strategy name that is not one of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}' (expected one of: {expected})")]
pub struct UnknownStrategy {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for VersionMatchStrategy {
    type Err = UnknownStrategy;

    /// `None`, `Strict` or `CurrentOrOlder`, ignoring ASCII case (the spelling of host.json's
    /// `versionMatchStrategy`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "strict" => Ok(Self::Strict),
            "currentorolder" => Ok(Self::CurrentOrOlder),
            _ => Err(UnknownStrategy {
                what: "version match strategy",
                value: s.to_owned(),
                expected: "None, Strict, CurrentOrOlder",
            }),
        }
    }
}

impl FromStr for VersionFailureStrategy {
    type Err = UnknownStrategy;

    /// `Reject` or `Fail`, ignoring ASCII case (the spelling of host.json's `versionFailureStrategy`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reject" => Ok(Self::Reject),
            "fail" => Ok(Self::Fail),
            _ => Err(UnknownStrategy {
                what: "version failure strategy",
                value: s.to_owned(),
                expected: "Reject, Fail",
            }),
        }
    }
}

/// A worker's versioning settings (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Versioning {
    /// The worker's version: what the match strategy compares orchestration versions with.
    pub version: Option<String>,
    /// The version of sub-orchestrations started without one; `None` leaves it to the host's `defaultVersion`.
    pub default_version: Option<String>,
    /// How orchestration versions must relate to `version`.
    pub match_strategy: VersionMatchStrategy,
    /// What happens to orchestrations that do not match.
    pub failure_strategy: VersionFailureStrategy,
}

impl Versioning {
    /// Worker version `version`; no matching (`None`), `Reject`, and no default version until set otherwise
    /// (as in the SDKs, the worker's version and the default version of sub-orchestrations are separate).
    pub fn new(version: impl Into<String>) -> Self {
        Self {
            version: Some(version.into()),
            ..Self::default()
        }
    }

    /// Sets the default version of sub-orchestrations (`None`: the host's `defaultVersion`, if any).
    pub fn default_version(mut self, version: impl Into<Option<String>>) -> Self {
        self.default_version = version.into();
        self
    }

    /// Sets the match strategy.
    pub fn match_strategy(mut self, strategy: VersionMatchStrategy) -> Self {
        self.match_strategy = strategy;
        self
    }

    /// Sets the failure strategy.
    pub fn failure_strategy(mut self, strategy: VersionFailureStrategy) -> Self {
        self.failure_strategy = strategy;
        self
    }

    /// Why an orchestration of version `orchestration_version` is refused, or `None` when it is accepted.
    pub fn evaluate(&self, orchestration_version: Option<&str>) -> Option<FailureDetails> {
        let ours = self.version.as_deref().unwrap_or_default();
        let theirs = orchestration_version.unwrap_or_default();
        let ordering = compare_versions(theirs, ours);
        let message = match self.match_strategy {
            VersionMatchStrategy::None => return None,
            VersionMatchStrategy::Strict if ordering != Ordering::Equal => format!(
                "The orchestration version '{theirs}' does not match the worker version '{ours}'."
            ),
            VersionMatchStrategy::CurrentOrOlder if ordering == Ordering::Greater => format!(
                "The orchestration version '{theirs}' is greater than the worker version '{ours}'."
            ),
            _ => return None,
        };
        Some(FailureDetails::new("VersionMismatch", message).with_non_retriable(true))
    }

    /// The versions to put in work-item filters: the worker's version under `Strict`, none otherwise.
    pub fn filter_versions(&self) -> Vec<String> {
        match (&self.match_strategy, &self.version) {
            (VersionMatchStrategy::Strict, Some(v)) if !v.trim().is_empty() => vec![v.clone()],
            _ => Vec::new(),
        }
    }
}

/// Compares two versions as the Durable Task SDKs do (see the [module docs](self)).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (a_empty, b_empty) = (a.trim().is_empty(), b.trim().is_empty());
    match (a_empty, b_empty) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        (false, false) => {}
    }
    if let (Some(x), Some(y)) = (numeric_version(a), numeric_version(b)) {
        return x.cmp(&y);
    }
    let upper = |s: &str| {
        s.bytes()
            .map(|b| b.to_ascii_uppercase())
            .collect::<Vec<u8>>()
    };
    upper(a).cmp(&upper(b))
}

/// `major.minor[.build[.revision]]`, each a non-negative 32-bit integer; absent parts are -1, so they sort first.
fn numeric_version(s: &str) -> Option<[i64; 4]> {
    let parts: Vec<&str> = s.trim().split('.').collect();
    if !(2..=4).contains(&parts.len()) {
        return None;
    }
    let mut out = [-1i64; 4];
    for (slot, part) in out.iter_mut().zip(&parts) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = i64::from(part.parse::<i32>().ok()?);
    }
    Some(out)
}

/// An orchestration refused by the worker's versioning.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionMismatch {
    /// The `VersionMismatch` failure.
    pub details: FailureDetails,
    /// True under `Reject`: the transport should abandon the work item rather than answer it.
    pub reject: bool,
}

impl fmt::Display for VersionMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.details, f)
    }
}

impl std::error::Error for VersionMismatch {}

impl ReplayOptions {
    /// Sets the worker's versioning.
    pub fn versioning(mut self, versioning: Option<Versioning>) -> Self {
        self.versioning = versioning;
        self
    }
}

/// The version in the request's `ExecutionStarted`, or `None` when the request has no `ExecutionStarted`.
fn started_version(request: &proto::OrchestratorRequest) -> Option<Option<&str>> {
    request
        .past_events
        .iter()
        .chain(&request.new_events)
        .find_map(|e| match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => Some(s.version.as_deref()),
            _ => None,
        })
}

/// The default version of sub-orchestrations for one turn: the worker's, else the host's `defaultVersion`.
pub(crate) fn default_version(
    registry: &Registry,
    request: &proto::OrchestratorRequest,
) -> Option<String> {
    if let Some(v) = registry
        .versioning()
        .and_then(|v| v.default_version.clone())
        .filter(|v| !v.is_empty())
    {
        return Some(v);
    }
    match request
        .properties
        .get("defaultVersion")
        .and_then(|v| v.kind.as_ref())
    {
        Some(prost_types::value::Kind::StringValue(v)) if !v.is_empty() => Some(v.clone()),
        _ => None,
    }
}

impl Registry {
    /// Sets the worker's versioning (`execute_orchestrator` and the transports apply it).
    pub fn set_versioning(&mut self, versioning: Versioning) -> &mut Self {
        let options = self.replay_options().clone().versioning(Some(versioning));
        self.set_replay_options(options)
    }

    /// The worker's versioning, if set.
    pub fn versioning(&self) -> Option<&Versioning> {
        self.replay_options().versioning.as_ref()
    }

    /// Whether the worker's versioning accepts the orchestration of this turn. A request without an
    /// `ExecutionStarted` is accepted (it cannot be judged).
    pub fn check_orchestration_version(
        &self,
        request: &proto::OrchestratorRequest,
    ) -> Result<(), VersionMismatch> {
        let Some(versioning) = self.versioning() else {
            return Ok(());
        };
        let Some(version) = started_version(request) else {
            return Ok(());
        };
        match versioning.evaluate(version) {
            None => Ok(()),
            Some(details) => Err(VersionMismatch {
                details,
                reject: versioning.failure_strategy == VersionFailureStrategy::Reject,
            }),
        }
    }

    /// [`execute_orchestrator`](Self::execute_orchestrator) for transports that can abandon a work item: a turn
    /// the versioning rejects comes back as `Err`, to be abandoned. (`execute_orchestrator` itself, which must
    /// answer, fails such an orchestration.)
    pub fn try_execute_orchestrator(
        &self,
        request: &proto::OrchestratorRequest,
    ) -> Result<proto::OrchestratorResponse, VersionMismatch> {
        match self.check_orchestration_version(request) {
            Err(mismatch) if mismatch.reject => Err(mismatch),
            _ => Ok(self.execute_orchestrator(request)),
        }
    }
}

/// The answer to a turn the versioning refuses: the orchestration fails with the mismatch.
pub(crate) fn refused_response(
    request: &proto::OrchestratorRequest,
    mismatch: &VersionMismatch,
) -> proto::OrchestratorResponse {
    if mismatch.reject {
        tracing::warn!(
            instance_id = %request.instance_id,
            "{mismatch}; the transport cannot abandon the work item, so the orchestration fails"
        );
    }
    proto::OrchestratorResponse {
        instance_id: crate::orchestration::executor::instance_id_of(request),
        actions: vec![proto::OrchestratorAction {
            id: -1,
            orchestrator_action_type: Some(OrchestratorActionType::CompleteOrchestration(
                proto::CompleteOrchestrationAction {
                    orchestration_status: proto::OrchestrationStatus::Failed as i32,
                    failure_details: Some(mismatch.details.to_proto()),
                    ..Default::default()
                },
            )),
        }],
        ..Default::default()
    }
}

impl OrchestrationContext {
    /// Compares the orchestration's version with `other` ([`compare_versions`]): `Greater` when the orchestration
    /// is newer. An orchestration without a version is older than any version.
    pub fn compare_version_to(&self, other: &str) -> Ordering {
        compare_versions(self.version().as_deref().unwrap_or_default(), other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_follows_the_sdks() {
        use Ordering::*;
        let cases = [
            ("1.1", "1.0", Greater),
            ("1.0", "1.1", Less),
            ("1.0", "1.0", Equal),
            ("", "1.0", Less),
            ("1.0", "", Greater),
            ("", "", Equal),
            ("1.0.1", "1.0.0", Greater),
            ("1.0", "1.0.0", Less),
            ("1.10", "1.9", Greater),
            ("alpha", "beta", Less),
            ("beta", "alpha", Greater),
            ("Alpha", "alpha", Equal),
            ("2", "10", Greater),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare_versions(a, b), expected, "{a} vs {b}");
        }
    }

    #[test]
    fn strategies_accept_and_refuse_as_documented() {
        let strict = Versioning::new("1.0").match_strategy(VersionMatchStrategy::Strict);
        assert_eq!(strict.evaluate(Some("1.0")), None);
        let refused = strict.evaluate(None).unwrap();
        assert_eq!(
            refused.error_message,
            "The orchestration version '' does not match the worker version '1.0'."
        );
        assert!(refused.non_retriable);
        assert_eq!(strict.filter_versions(), ["1.0"]);

        let older = Versioning::new("2.0").match_strategy(VersionMatchStrategy::CurrentOrOlder);
        assert_eq!(older.evaluate(None), None);
        assert_eq!(older.evaluate(Some("1.9")), None);
        assert_eq!(older.evaluate(Some("2.0")), None);
        assert!(older.evaluate(Some("2.0.1")).is_some());
        assert!(older.filter_versions().is_empty());

        assert_eq!(Versioning::new("1.0").evaluate(Some("9.0")), None);
        assert_eq!(
            "currentOrOlder".parse::<VersionMatchStrategy>(),
            Ok(VersionMatchStrategy::CurrentOrOlder)
        );
        assert_eq!(
            "FAIL".parse::<VersionFailureStrategy>(),
            Ok(VersionFailureStrategy::Fail)
        );
        assert!("sometimes".parse::<VersionMatchStrategy>().is_err());
    }
}
