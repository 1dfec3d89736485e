//! Per-profile settings of the attempt steps (fixers, LLM, validation, guard rails).
//!
//! They live in the controller config (`profiles.<name>.settings`), are frozen into the
//! HealingAttempt's `spec.settings` (with the run's `spec.policy.protectedPaths` added) and reach the
//! pod as the non-secret env var [`SETTINGS_ENV`] (JSON). Every field has a default, so `{}` is valid.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Env var carrying [`AgentSettings`] as JSON into the agent and validate steps.
pub const SETTINGS_ENV: &str = "HEALER_SETTINGS";

/// Settings of one agent profile.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentSettings {
    /// Deterministic fixers to try before the LLM. Absent: chosen from the failure class (and the
    /// excerpt when the class is unknown). Empty list: none. Names: `cargo-fmt`, `cargo-clippy`,
    /// `prettier`, `eslint`, `ruff-check`, `ruff-format`, `gofmt`, `go-mod-tidy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixers: Option<Vec<String>>,
    /// The built-in LLM agent. Absent: no LLM (fixers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<LlmSettings>,
    /// Shell commands (`sh -c`) that must all exit 0 on the changed workspace. Empty: derived from
    /// the failure class (e.g. `cargo clippy --all-targets -- -D warnings` for `rust_clippy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_commands: Vec<String>,
    /// Seconds each validation command may run. Default 900.
    #[serde(default = "default_validation_timeout")]
    pub validation_timeout_seconds: u64,
    /// Globs (gitignore-like, `**` allowed) the change must not touch, added to the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_paths: Vec<String>,
    /// Whether the built-in protected paths (workflows, security folders, lock files) apply. Default true.
    #[serde(default = "yes")]
    pub default_protected_paths: bool,
    /// Most files a change may touch. Default 20.
    #[serde(default = "default_max_files")]
    pub max_changed_files: u32,
    /// Most lines (added + removed) a change may have. Default 600.
    #[serde(default = "default_max_lines")]
    pub max_changed_lines: u32,
    /// Bytes of failure excerpt the agent sees. Default 65536.
    #[serde(default = "default_excerpt_bytes")]
    pub excerpt_max_bytes: usize,
    /// Git host base URL for checkout (`https://github.com`, a GitHub Enterprise URL, or `file:///…`).
    /// The clone URL is `<gitBaseUrl>/<owner>/<name>.git`. Default `https://github.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_base_url: Option<String>,
}

/// Which wire format the LLM provider speaks.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LlmProvider {
    /// Anthropic Messages API: `POST {baseUrl}/v1/messages`.
    #[default]
    Anthropic,
    /// OpenAI chat completions: `POST {baseUrl}/chat/completions` (OpenAI, Gemini, Grok, vLLM, Ollama …).
    OpenaiCompatible,
}

/// The built-in LLM agent's settings.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LlmSettings {
    #[serde(default)]
    pub provider: LlmProvider,
    /// Base URL. Default `https://api.anthropic.com` or `https://api.openai.com/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Model name as the provider knows it.
    pub model: String,
    /// Sampling temperature. Default 0.2.
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    /// `max_tokens` per response. Default 4096.
    #[serde(default = "default_max_tokens")]
    pub max_tokens_per_turn: u32,
    /// Total tokens (input + output, as reported) the attempt may use. Default 200000.
    #[serde(default = "default_budget")]
    pub token_budget: u64,
    /// Most model turns (request → change → validation). Default 4.
    #[serde(default = "default_turns")]
    pub max_turns: u32,
    /// Seconds one HTTP request may take. Default 300.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// Retries of a 429 / 5xx / connection failure. Default 4.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First backoff in milliseconds (doubles each retry, capped at 30 s; `Retry-After` wins). Default 1000.
    #[serde(default = "default_backoff")]
    pub initial_backoff_millis: u64,
    /// A prompt template file (minijinja) replacing the built-in one of the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_template: Option<String>,
}

impl Default for AgentSettings {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

impl AgentSettings {
    /// Read from [`SETTINGS_ENV`]; absent means defaults. Errors: invalid JSON.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var(SETTINGS_ENV) {
            Ok(s) if !s.trim().is_empty() => {
                serde_json::from_str(&s).map_err(|e| anyhow::anyhow!("{SETTINGS_ENV} is not valid settings JSON: {e}"))
            }
            _ => Ok(Self::default()),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_validation_timeout() -> u64 {
    900
}
fn default_max_files() -> u32 {
    20
}
fn default_max_lines() -> u32 {
    600
}
fn default_excerpt_bytes() -> usize {
    64 * 1024
}
fn default_temperature() -> f32 {
    0.2
}
fn default_max_tokens() -> u32 {
    4096
}
fn default_budget() -> u64 {
    200_000
}
fn default_turns() -> u32 {
    4
}
fn default_request_timeout() -> u64 {
    300
}
fn default_retries() -> u32 {
    4
}
fn default_backoff() -> u64 {
    1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_json_gives_defaults() {
        let s = AgentSettings::default();
        assert_eq!(s.max_changed_files, 20);
        assert!(s.default_protected_paths);
        assert!(s.llm.is_none());
        let l: LlmSettings = serde_json::from_str(r#"{"provider":"openai-compatible","model":"m"}"#).unwrap();
        assert_eq!(l.provider, LlmProvider::OpenaiCompatible);
        assert_eq!(l.max_turns, 4);
    }
}
