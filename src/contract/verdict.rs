//! What the steps report back: the validation step's [`Verdict`], a failed step's [`StepFailure`]
//! and the agent's [`AgentReport`], each as JSON in the container's termination message.
//!
//! The kubelet copies a container's `terminationMessagePath` (`/dev/termination-log`, at most 4096
//! bytes) into `pod.status.{init,}containerStatuses[].state.terminated.message`; the controller reads
//! it from there. Only the verdict decides whether an attempt succeeded; the agent's own claims are
//! never read as one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kubernetes truncates a termination message at 4096 bytes; a verdict must fit.
pub const MAX_VERDICT_BYTES: usize = 4096;

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

impl Outcome {
    /// The serialised name (`passed`, `failed`, `refused`, `error`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
        }
    }
}

impl std::fmt::Display for Outcome {
    /// The name for people: `Passed`, `Failed`, `Refused`, `Error`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Passed => "Passed",
            Outcome::Failed => "Failed",
            Outcome::Refused => "Refused",
            Outcome::Error => "Error",
        })
    }
}

/// Lines and files changed, as `git diff --numstat` counts them (binary files count 0 lines).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Diffstat {
    /// Files added, modified or deleted.
    #[schemars(range(min = 0))]
    pub files: i64,
    /// Lines added.
    #[schemars(range(min = 0))]
    pub insertions: i64,
    /// Lines removed.
    #[schemars(range(min = 0))]
    pub deletions: i64,
}

/// Tokens an LLM agent used, as the provider reported them (Anthropic `usage.input_tokens` plus cache
/// tokens and `usage.output_tokens`; OpenAI `usage.prompt_tokens` and `usage.completion_tokens`).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Input (prompt) tokens.
    #[schemars(range(min = 0))]
    pub input: i64,
    /// Output (completion) tokens.
    #[schemars(range(min = 0))]
    pub output: i64,
    /// Of the input tokens, those read from the prompt cache (Anthropic `cache_read_input_tokens`,
    /// OpenAI `prompt_tokens_details.cached_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0))]
    pub cache_read: i64,
    /// Of the input tokens, those written to the prompt cache (Anthropic `cache_creation_input_tokens`).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(range(min = 0))]
    pub cache_write: i64,
    /// What the tokens cost, in micro-dollars (1 USD = 1,000,000), when the profile has a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub cost_micro_usd: Option<i64>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl TokenUsage {
    /// Add one response's counts (the providers' unsigned counts, saturating at `i64::MAX`).
    pub fn add(&mut self, input: u64, output: u64) {
        self.input = self.input.saturating_add(i64::try_from(input).unwrap_or(i64::MAX));
        self.output = self.output.saturating_add(i64::try_from(output).unwrap_or(i64::MAX));
    }

    /// Input plus output tokens, as an unsigned count for budgets (negative counts count 0).
    pub fn total(&self) -> u64 {
        u64::try_from(self.input).unwrap_or(0).saturating_add(u64::try_from(self.output).unwrap_or(0))
    }
}

/// How long each step took, in seconds.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StepDurations {
    /// Seconds the checkout step took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout_seconds: Option<f64>,
    /// Seconds the agent step took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_seconds: Option<f64>,
    /// Seconds the validate step took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate_seconds: Option<f64>,
}

/// The verdict JSON written to the validate step's termination message (at most
/// [`MAX_VERDICT_BYTES`]), and kept in the attempt's `status.verdict`.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// Passed, failed, refused or error.
    pub outcome: Outcome,
    /// A CamelCase reason, stable for metrics and conditions (e.g. `ValidationPassed`, `TestWeakened`).
    pub reason: String,
    /// One or two sentences for people.
    #[serde(default)]
    pub summary: String,
    /// The size of the change, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffstat: Option<Diffstat>,
    /// The tokens the agent step used, when an LLM ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenUsage>,
    /// How long the steps took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durations: Option<StepDurations>,
    /// SHA-256 of the patch (hex), so the controller can check the patch it read from the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_sha256: Option<String>,
    /// The protected paths (workflows, security, dependency manifests, the policy's and the
    /// repository's own globs) a passing change touches, at most [`MAX_PROTECTED_PATHS`]: such a fix
    /// is held as a proposal that only a person's `approve` delivers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(max = 255)))]
    pub protected_paths: Vec<String>,
}

/// How many protected paths a verdict names (the rest are counted in its summary).
pub const MAX_PROTECTED_PATHS: usize = 20;

/// Why a termination message is not a verdict.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerdictError {
    /// The validate step left an empty termination message.
    #[error("no termination message")]
    Missing,
    /// The termination message is not the verdict JSON (the serde error is the detail).
    #[error("termination message is not a verdict: {0}")]
    Malformed(String),
}

impl Verdict {
    /// A verdict with the given outcome, reason and summary, and nothing else.
    pub fn new(outcome: Outcome, reason: &str, summary: impl Into<String>) -> Self {
        Self {
            outcome,
            reason: reason.into(),
            summary: summary.into(),
            diffstat: None,
            tokens: None,
            durations: None,
            patch_sha256: None,
            protected_paths: Vec::new(),
        }
    }

    /// Parse a termination message. Errors: [`VerdictError::Missing`] for an empty message,
    /// [`VerdictError::Malformed`] for anything that is not the verdict JSON.
    pub fn from_termination_message(message: Option<&str>) -> Result<Self, VerdictError> {
        let msg = message.map(str::trim).filter(|m| !m.is_empty()).ok_or(VerdictError::Missing)?;
        let v: Self = serde_json::from_str(msg).map_err(|e| VerdictError::Malformed(e.to_string()))?;
        if !is_reason(&v.reason) {
            return Err(VerdictError::Malformed(format!(
                "reason {:?} is not a CamelCase reason (a letter, then up to 63 letters or digits)",
                v.reason.chars().take(80).collect::<String>()
            )));
        }
        Ok(v)
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

/// What a step other than validate leaves in its termination message when it fails (and exits 1):
/// `{"reason":"CommitNotFound","message":"…"}`. The controller takes plain text as the message and
/// [`Step::failed_reason`](super::Step::failed_reason) as the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepFailure {
    /// A CamelCase reason (`CommitNotFound`, `AccessDenied`, `ProviderUnreachable` …).
    pub reason: String,
    /// For people; masked and bounded by the step.
    #[serde(default)]
    pub message: String,
}

impl StepFailure {
    /// The termination message text: this failure as JSON.
    pub fn to_termination_message(&self) -> String {
        serde_json::to_string(self).expect("a step failure serialises")
    }

    /// Read a failed step's termination message: the JSON form, else the text as the message with
    /// `fallback_reason`. `None` for an empty message.
    pub fn from_termination_message(message: Option<&str>, fallback_reason: &str) -> Option<Self> {
        let m = message.map(str::trim).filter(|m| !m.is_empty())?;
        Some(
            serde_json::from_str(m)
                .ok()
                .filter(|f: &StepFailure| is_reason(&f.reason))
                .unwrap_or_else(|| StepFailure { reason: fallback_reason.into(), message: m.into() }),
        )
    }
}

/// Whether `r` may be a reason the controller keeps (a condition's `reason`, `failureReason`): it
/// comes from the pod, which runs the repository's code, so it must look like the Kubernetes API
/// conventions' CamelCase reasons: an ASCII letter, then at most 63 ASCII letters or digits.
pub fn is_reason(r: &str) -> bool {
    r.len() <= 64
        && r.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && r.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What the agent step leaves in its termination message when it succeeds: a diagnosis for people.
/// Informational only; success is decided by the validate step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AgentReport {
    /// One paragraph: what the agent found and changed (masked, at most 2000 bytes).
    #[serde(default)]
    pub diagnosis: String,
}

impl AgentReport {
    /// The termination message text: this report as JSON.
    pub fn to_termination_message(&self) -> String {
        serde_json::to_string(self).expect("an agent report serialises")
    }

    /// The diagnosis in an agent's termination message, if it is a report with a non-empty one.
    pub fn diagnosis_from(message: Option<&str>) -> Option<String> {
        serde_json::from_str::<AgentReport>(message?).ok().map(|r| r.diagnosis).filter(|d| !d.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let v = Verdict {
            diffstat: Some(Diffstat { files: 1, insertions: 2, deletions: 1 }),
            ..Verdict::new(Outcome::Passed, "ValidationPassed", "cargo clippy passed")
        };
        let msg = v.to_termination_message();
        assert_eq!(Verdict::from_termination_message(Some(&msg)).unwrap(), v);
        assert_eq!(Verdict::from_termination_message(Some("  ")), Err(VerdictError::Missing));
        assert!(matches!(Verdict::from_termination_message(Some("I fixed it!")), Err(VerdictError::Malformed(_))));
    }

    #[test]
    fn long_summary_is_cut_to_fit_the_termination_message() {
        let v = Verdict::new(Outcome::Failed, "ValidationFailed", "é".repeat(5000));
        let msg = v.to_termination_message();
        assert!(msg.len() <= MAX_VERDICT_BYTES, "{}", msg.len());
        assert_eq!(Verdict::from_termination_message(Some(&msg)).unwrap().outcome, Outcome::Failed);
    }

    #[test]
    fn step_failures_and_reports_round_trip() {
        let f = StepFailure { reason: "CommitNotFound".into(), message: "gone".into() };
        assert_eq!(StepFailure::from_termination_message(Some(&f.to_termination_message()), "X"), Some(f));
        assert_eq!(
            StepFailure::from_termination_message(Some(" boom "), "AgentFailed"),
            Some(StepFailure { reason: "AgentFailed".into(), message: "boom".into() })
        );
        assert_eq!(StepFailure::from_termination_message(Some(""), "AgentFailed"), None);
        // Found by the `verdict` fuzz target: JSON whose reason is empty, or not a reason at all, is
        // kept as text under the step's own reason (serde also reads a struct from an array).
        for m in ["[\"\"]", "{\"reason\":\"\"}", "{\"reason\":\"no spaces allowed\",\"message\":\"m\"}"] {
            assert_eq!(
                StepFailure::from_termination_message(Some(m), "AgentFailed"),
                Some(StepFailure { reason: "AgentFailed".into(), message: m.into() }),
                "{m}"
            );
        }
        for m in ["{\"outcome\":\"Passed\",\"reason\":\"\",\"summary\":\"s\"}", "[\"Passed\",\"a b\",\"s\"]"] {
            assert!(matches!(Verdict::from_termination_message(Some(m)), Err(VerdictError::Malformed(_))), "{m}");
        }
        assert!(is_reason("ValidationPassed") && is_reason("E0308") && !is_reason("") && !is_reason("0Day"));
        assert!(!is_reason(&"A".repeat(65)) && is_reason(&"A".repeat(64)));
        let r = AgentReport { diagnosis: "removed a needless return".into() };
        assert_eq!(
            AgentReport::diagnosis_from(Some(&r.to_termination_message())).as_deref(),
            Some(r.diagnosis.as_str())
        );
        assert_eq!(AgentReport::diagnosis_from(Some(r#"{"diagnosis":""}"#)), None);
        assert_eq!(AgentReport::diagnosis_from(Some("plain")), None);
    }

    #[test]
    fn token_usage_converts_unsigned_counts_at_the_boundary() {
        let mut t = TokenUsage::default();
        t.add(500, 60);
        t.add(u64::MAX, 1);
        assert_eq!((t.input, t.output), (i64::MAX, 61));
        assert_eq!(TokenUsage { input: 3, output: -1, ..Default::default() }.total(), 3);
    }
}
