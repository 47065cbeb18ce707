//! Retry policies for activity and sub-orchestration calls. Waits between attempts are durable timers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::errors::FailureDetails;
use crate::time_util;

type RetryPredicate = dyn Fn(&FailureDetails) -> bool + Send + Sync;

/// How often, and how patiently, a failed call is retried.
///
/// Only retriable failures are retried: a failure marked non-retriable (see
/// [`ActivityError::non_retriable`](crate::ActivityError::non_retriable)) ends the call at once, and so does a failure
/// the optional [`retry_if`](Self::retry_if) predicate rejects.
#[derive(Clone)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Total attempts, including the first (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub first_interval: Duration,
    /// Multiplier applied to the wait after each failed attempt (at least 1.0).
    pub backoff_coefficient: f64,
    /// Upper bound for a single wait.
    pub max_interval: Option<Duration>,
    /// No new attempt starts after this much orchestration time has passed since the first one.
    pub retry_timeout: Option<Duration>,
    predicate: Option<Arc<RetryPredicate>>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("first_interval", &self.first_interval)
            .field("backoff_coefficient", &self.backoff_coefficient)
            .field("max_interval", &self.max_interval)
            .field("retry_timeout", &self.retry_timeout)
            .field("retry_if", &self.predicate.is_some())
            .finish()
    }
}

impl RetryPolicy {
    /// `max_attempts` attempts, waiting `first_interval` before the second one, without backoff.
    pub fn new(max_attempts: u32, first_interval: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            first_interval,
            backoff_coefficient: 1.0,
            max_interval: None,
            retry_timeout: None,
            predicate: None,
        }
    }

    /// Retries only failures for which `predicate` returns true (in addition to the non-retriable flag). The
    /// predicate must be deterministic: it runs again on every replay.
    pub fn retry_if(
        mut self,
        predicate: impl Fn(&FailureDetails) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    pub(crate) fn allows(&self, details: &FailureDetails) -> bool {
        self.predicate.as_ref().is_none_or(|p| p(details))
    }

    /// Sets the backoff coefficient (values below 1.0, or not finite, are treated as 1.0).
    pub fn backoff_coefficient(mut self, coefficient: f64) -> Self {
        self.backoff_coefficient = coefficient;
        self
    }

    /// Caps each wait.
    pub fn max_interval(mut self, max: Duration) -> Self {
        self.max_interval = Some(max);
        self
    }

    /// Stops retrying after this much orchestration time since the first attempt.
    pub fn retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = Some(timeout);
        self
    }

    /// The wait after failed attempt number `attempt` (1-based), or `None` when no further attempt is allowed.
    /// Deterministic: it only depends on the orchestration clock.
    pub(crate) fn next_delay(
        &self,
        attempt: u32,
        started: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        if let Some(timeout) = self.retry_timeout
            && now >= time_util::add(started, timeout)
        {
            return None;
        }
        let coefficient = if self.backoff_coefficient.is_finite() && self.backoff_coefficient >= 1.0
        {
            self.backoff_coefficient
        } else {
            1.0
        };
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let mut secs = self.first_interval.as_secs_f64() * coefficient.powi(exponent);
        if let Some(max) = self.max_interval {
            secs = secs.min(max.as_secs_f64());
        }
        // Clamp so a huge backoff cannot overflow the conversion.
        let secs = if secs.is_finite() {
            secs.clamp(0.0, 1.0e12)
        } else {
            1.0e12
        };
        Some(Duration::from_secs_f64(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_bounded() {
        let p = RetryPolicy::new(4, Duration::from_secs(2))
            .backoff_coefficient(3.0)
            .max_interval(Duration::from_secs(10));
        let t0 = time_util::clock_sentinel();
        assert_eq!(p.next_delay(1, t0, t0), Some(Duration::from_secs(2)));
        assert_eq!(p.next_delay(2, t0, t0), Some(Duration::from_secs(6)));
        assert_eq!(p.next_delay(3, t0, t0), Some(Duration::from_secs(10)));
        assert_eq!(p.next_delay(4, t0, t0), None);
    }

    #[test]
    fn timeout_stops_retries() {
        let p = RetryPolicy::new(10, Duration::from_secs(1)).retry_timeout(Duration::from_secs(5));
        let t0 = time_util::clock_sentinel();
        assert!(
            p.next_delay(1, t0, time_util::add(t0, Duration::from_secs(4)))
                .is_some()
        );
        assert!(
            p.next_delay(1, t0, time_util::add(t0, Duration::from_secs(5)))
                .is_none()
        );
    }
}
