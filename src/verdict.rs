//! The validation step's verdict: the one contract between an attempt pod and the controller.
//!
//! `healer validate` writes it as JSON (at most [`MAX_VERDICT_BYTES`]) to its container's termination
//! message (`terminationMessagePath`, `/dev/termination-log` by default, Kubernetes caps it at 4096
//! bytes); the controller reads it from `pod.status.containerStatuses[name=validate].state.terminated.message`.
//! The agent's own claims are never read: only this step decides whether an attempt succeeded.
//! The full patch goes to the validate step's log between [`PATCH_BEGIN`] and [`PATCH_END`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kubernetes truncates a termination message at 4096 bytes; a verdict must fit.
pub const MAX_VERDICT_BYTES: usize = 4096;
/// Line that opens the patch in the validate step's log.
pub const PATCH_BEGIN: &str = "-----BEGIN CI-HEALER PATCH-----";
/// Line that closes the patch in the validate step's log.
pub const PATCH_END: &str = "-----END CI-HEALER PATCH-----";
/// The container name of the validation step, whose termination message carries the verdict.
pub const VALIDATE_CONTAINER: &str = "validate";

/// The judgement of the validation step.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The change is acceptable and the validation commands passed.
    Passed,
    /// The validation commands failed on the changed workspace.
    Failed,
    /// The change was refused before running anything (empty, protected paths, weakened tests, too big).
    Refused,
    /// The step itself could not judge (workspace missing, command not found …).
    Error,
}

/// Lines and files changed, as `git diff --numstat` counts them.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Diffstat {
    pub files: u32,
    pub insertions: u32,
    pub deletions: u32,
}

/// Tokens an LLM agent used, as the provider reported them.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
}

/// How long each step took, in seconds.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StepDurations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate_seconds: Option<f64>,
}

/// The verdict JSON written to the validate step's termination message.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub outcome: Outcome,
    /// A CamelCase reason, stable for metrics and conditions (e.g. `ValidationPassed`, `ProtectedPath`).
    pub reason: String,
    /// One or two sentences for people.
    #[serde(default)]
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffstat: Option<Diffstat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durations: Option<StepDurations>,
    /// SHA-256 of the patch (hex), so the controller can check the patch it read from the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_sha256: Option<String>,
}

/// Why a termination message is not a verdict.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerdictError {
    #[error("no termination message")]
    Missing,
    #[error("termination message is not a verdict: {0}")]
    Malformed(String),
}

impl Verdict {
    /// Parse a termination message. Errors: [`VerdictError::Missing`] for an empty message,
    /// [`VerdictError::Malformed`] for anything that is not the verdict JSON.
    pub fn from_termination_message(message: Option<&str>) -> Result<Self, VerdictError> {
        let msg = message.map(str::trim).filter(|m| !m.is_empty()).ok_or(VerdictError::Missing)?;
        serde_json::from_str(msg).map_err(|e| VerdictError::Malformed(e.to_string()))
    }

    /// Serialise to at most [`MAX_VERDICT_BYTES`], shortening the summary if needed.
    pub fn to_termination_message(&self) -> String {
        let mut v = self.clone();
        loop {
            let s = serde_json::to_string(&v).expect("verdict serialises");
            if s.len() <= MAX_VERDICT_BYTES || v.summary.is_empty() {
                return s;
            }
            let keep = v.summary.len().saturating_sub(s.len() - MAX_VERDICT_BYTES + 16);
            let mut cut = keep.min(v.summary.len());
            while !v.summary.is_char_boundary(cut) {
                cut -= 1;
            }
            v.summary.truncate(cut);
            v.summary.push('…');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let v = Verdict {
            outcome: Outcome::Passed,
            reason: "ValidationPassed".into(),
            summary: "cargo clippy passed".into(),
            diffstat: Some(Diffstat { files: 1, insertions: 2, deletions: 1 }),
            tokens: None,
            durations: None,
            patch_sha256: None,
        };
        let msg = v.to_termination_message();
        assert_eq!(Verdict::from_termination_message(Some(&msg)).unwrap(), v);
        assert_eq!(Verdict::from_termination_message(Some("  ")), Err(VerdictError::Missing));
        assert!(matches!(Verdict::from_termination_message(Some("I fixed it!")), Err(VerdictError::Malformed(_))));
    }

    #[test]
    fn long_summary_is_cut_to_fit_the_termination_message() {
        let v = Verdict {
            outcome: Outcome::Failed,
            reason: "ValidationFailed".into(),
            summary: "é".repeat(5000),
            diffstat: None,
            tokens: None,
            durations: None,
            patch_sha256: None,
        };
        let msg = v.to_termination_message();
        assert!(msg.len() <= MAX_VERDICT_BYTES, "{}", msg.len());
        assert_eq!(Verdict::from_termination_message(Some(&msg)).unwrap().outcome, Outcome::Failed);
    }
}
