//! The controllers' one error type, with a stable [`Reason`] for each kind, and the retry policy.
//!
//! Transient errors (the API server, a conflict, a leftover awaiting garbage collection) requeue
//! with per-object exponential backoff; a [`Error::Permanent`] one (a spec the controller cannot act
//! on) has already been reported as a `False` condition and waits for the object to change.

use std::time::Duration;

use crate::crd::conditions::Reason;

/// What can go wrong in a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API request failed (transient: retried with backoff).
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// The object has no namespace (both kinds are namespaced, so the API server never sends one).
    #[error("object has no namespace")]
    MissingNamespace,
    /// A value could not be serialised to JSON.
    #[error("cannot serialise: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The next attempt's name is taken by a deleted run's leftover (retried until the garbage
    /// collector removes it).
    #[error(
        "HealingAttempt {0} exists but belongs to another run (a deleted run's leftover awaiting garbage collection)"
    )]
    AttemptNameTaken(String),
    /// The profile a run was triaged to is gone from the config (a reload race; retried).
    #[error("agent profile {0} is not configured any more")]
    ProfileVanished(String),
    /// A GitHub call failed transiently (a rate limit, 5xx, a timeout): retried, at the time GitHub
    /// named when it named one; never fails the run.
    #[error("{0}")]
    GitHub(crate::github::Error),
    /// The spec cannot be acted on; `Accepted=False` says so and the object waits for a change.
    #[error("{message}")]
    Permanent {
        /// Why, as the condition's reason.
        reason: Reason,
        /// For people, as the condition's message.
        message: String,
    },
}

impl Error {
    /// The stable reason: condition reasons, Event reasons and the `reason` metric label.
    pub fn reason(&self) -> Reason {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => Reason::Conflict,
            Error::Kube(kube::Error::Api(s)) if s.code == 404 => Reason::NotFound,
            Error::Kube(kube::Error::Api(_)) => Reason::ApiError,
            Error::Kube(_) => Reason::KubeClientError,
            Error::MissingNamespace => Reason::MissingNamespace,
            Error::Serialization(_) => Reason::SerializationError,
            Error::AttemptNameTaken(_) => Reason::AttemptNameTaken,
            Error::ProfileVanished(_) => Reason::ProfileVanished,
            Error::GitHub(e) if e.is_transient() => Reason::GitHubUnavailable,
            Error::GitHub(_) => Reason::GitHubRejected,
            Error::Permanent { reason, .. } => *reason,
        }
    }

    /// When to retry, if the error said (a GitHub rate limit's reset or `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::GitHub(e) => e.retry_after(),
            _ => None,
        }
    }

    /// True for errors that retrying cannot fix: the object must change first.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::Permanent { .. })
    }
}

/// A spec the controller cannot act on: the pure form of [`Error::Permanent`], which the pure
/// phase machine turns into `Accepted=False`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// Why, as the condition's reason.
    pub reason: Reason,
    /// For people, as the condition's message.
    pub message: String,
}

impl From<SpecProblem> for Error {
    fn from(p: SpecProblem) -> Self {
        Error::Permanent { reason: p.reason, message: p.message }
    }
}

/// Result of a reconcile step, failing with the controller's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The longest wait between retries of one object.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// The wait before retry `n` (1-based) of one object: 1 s, 2 s, 4 s … doubling, capped at
/// [`MAX_BACKOFF`] (5 minutes).
pub fn backoff_delay(n: u32) -> Duration {
    let exp = n.saturating_sub(1).min(20);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_the_five_minute_cap() {
        let secs: Vec<u64> = (1..=11).map(|n| backoff_delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff_delay(0), Duration::from_secs(1));
        assert_eq!(backoff_delay(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn reasons_are_stable_and_permanent_errors_keep_theirs() {
        let p: Error = SpecProblem { reason: Reason::UnknownProfile, message: "no such profile".into() }.into();
        assert_eq!(p.reason(), Reason::UnknownProfile);
        assert!(p.is_permanent());
        assert_eq!(p.to_string(), "no such profile");
        let conflict =
            Error::Kube(kube::Error::Api(kube::core::Status::failure("conflict", "Conflict").with_code(409).boxed()));
        assert_eq!((conflict.reason(), conflict.is_permanent()), (Reason::Conflict, false));
        assert_eq!(Error::AttemptNameTaken("r-1".into()).reason().as_str(), "AttemptNameTaken");
    }
}
