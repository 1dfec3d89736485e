//! Triage: from a failed CI job (its log, names and changed files) to a failure class, an agent
//! profile, an error hash for dedup and a bounded excerpt for the agent.
//!
//! PLACEHOLDER API (spine issue): the triage issue replaces the internals; the controller depends only
//! on [`TriageInput`], [`TriageResult`], [`RoutingConfig`] and [`triage`].

pub mod cli;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What triage looks at. `log` may be any bytes (invalid UTF-8, ANSI, GitHub Actions markers).
#[derive(Debug, Clone, Default)]
pub struct TriageInput<'a> {
    pub log: &'a [u8],
    pub workflow_name: Option<&'a str>,
    pub job_name: Option<&'a str>,
    pub failed_steps: &'a [String],
    pub changed_files: &'a [String],
    pub error_type: Option<&'a str>,
}

/// What to do about the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RouteAction {
    /// Run agent attempts with the chosen profile.
    #[default]
    Agent,
    /// The failure looks flaky or infrastructural: ask CI to re-run instead of changing code.
    Rerun,
}

/// The triage verdict for one failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriageResult {
    /// e.g. `rust_fmt`, `frontend_format`, `unknown`.
    pub failure_class: String,
    /// 0.0 to 1.0.
    pub confidence: f32,
    /// The agent profile to use.
    pub profile: String,
    pub action: RouteAction,
    /// 16 lowercase hex digits; stable across reruns of the same failure.
    pub error_hash: String,
    /// The step that failed, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_step: Option<String>,
    /// The excerpt given to agents, bounded in bytes.
    pub excerpt: String,
}

/// Routing rules from the controller config (`routing:`); ordered, falling back to `fallbackProfile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingConfig {
    #[serde(default = "default_fallback")]
    pub fallback_profile: String,
}

fn default_fallback() -> String {
    "general".into()
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self { fallback_profile: default_fallback() }
    }
}

/// Classify, route and hash one failure. Never panics; bounded in time and memory.
pub fn triage(input: &TriageInput<'_>, routing: &RoutingConfig) -> TriageResult {
    let text = String::from_utf8_lossy(input.log);
    let mut h = Sha256::new();
    for part in [input.workflow_name.unwrap_or(""), input.job_name.unwrap_or("")] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for s in input.failed_steps {
        h.update(s.as_bytes());
        h.update([0]);
    }
    h.update(text.as_bytes());
    TriageResult {
        failure_class: "unknown".into(),
        confidence: 0.0,
        profile: routing.fallback_profile.clone(),
        action: RouteAction::Agent,
        error_hash: hex::encode(&h.finalize()[..8]),
        failing_step: input.failed_steps.first().cloned(),
        excerpt: text.chars().take(65536).collect(),
    }
}
