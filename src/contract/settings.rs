//! Per-profile settings of the attempt steps (fixers, LLM, validation, guard rails).
//!
//! They live in the controller config (`profiles.<name>.settings`), are frozen into the
//! HealingAttempt's `spec.settings` (with the run's `spec.policy.protectedPaths` added) and reach the
//! pod as the non-secret variable [`env::SETTINGS`](super::env::SETTINGS) (JSON). Every field has a
//! default, so `{}` is valid.
//!
//! The API carries signed integers only (the Kubernetes API conventions allow no unsigned ones; the
//! schema's `minimum` keeps them in range); the pod runtime reads them through the accessors below,
//! which convert to the unsigned types and [`Duration`]s it computes with.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    #[schemars(range(min = 1))]
    pub validation_timeout_seconds: i64,
    /// Globs (gitignore-like, `**` allowed) the change must not touch, added to the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_paths: Vec<String>,
    /// Whether the built-in protected paths (workflows, security folders, lock files) apply. Default true.
    #[serde(default = "yes")]
    pub default_protected_paths: bool,
    /// Most files a change may touch. Default 20.
    #[serde(default = "default_max_files")]
    #[schemars(range(min = 1))]
    pub max_changed_files: i32,
    /// Most lines (added + removed) a change may have. Default 600.
    #[serde(default = "default_max_lines")]
    #[schemars(range(min = 1))]
    pub max_changed_lines: i32,
    /// Bytes of failure excerpt the agent sees. Default 65536.
    #[serde(default = "default_excerpt_bytes")]
    #[schemars(range(min = 0))]
    pub excerpt_max_bytes: i64,
    /// Git host base URL for checkout (`https://github.com`, a GitHub Enterprise URL, or `file:///…`).
    /// The clone URL is `<gitBaseUrl>/<owner>/<name>.git`. Default `https://github.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_base_url: Option<String>,
    /// What a repository's own `.github/ci-healer.yml` may ask for (see `agent::repo_config`).
    #[serde(default)]
    pub repository_config: RepoConfigPolicy,
}

/// What the cluster lets a repository's `.github/ci-healer.yml` change. Extra protected paths and
/// never-fix branches only make healing stricter and always apply.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepoConfigPolicy {
    /// Read the file at all. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Let `enabled: false` opt the repository out. Default true.
    #[serde(default = "yes")]
    pub allow_opt_out: bool,
    /// What the repository's `validationCommands` do. Default `add`.
    #[serde(default)]
    pub validation_commands: RepoValidationCommands,
    /// Quote the repository's `agentHints` in the prompt. Default true.
    #[serde(default = "yes")]
    pub allow_agent_hints: bool,
}

impl Default for RepoConfigPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_opt_out: true,
            validation_commands: RepoValidationCommands::Add,
            allow_agent_hints: true,
        }
    }
}

/// How a repository's validation commands combine with the profile's (or the failure class's).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RepoValidationCommands {
    /// Run after the profile's: they can only make validation stricter.
    #[default]
    Add,
    /// Replace the profile's (the repository decides what "fixed" means).
    Replace,
    /// Not used.
    Ignore,
}

/// A model's prices in USD per million tokens, as decimal strings (`"3"`, `"0.30"`, at most 6
/// decimals), as the providers publish them. A cache price left out is the input price.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrice {
    /// Uncached input tokens.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]{1,6})?$"))]
    pub input: String,
    /// Output tokens.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]{1,6})?$"))]
    pub output: String,
    /// Input tokens read from the prompt cache (Anthropic cache reads, OpenAI cached tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]{1,6})?$"))]
    pub cache_read: Option<String>,
    /// Input tokens written to the prompt cache (Anthropic cache writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]{1,6})?$"))]
    pub cache_write: Option<String>,
}

/// Whether `s` is a USD amount as [`ModelPrice`] takes it.
pub fn is_usd_amount(s: &str) -> bool {
    let (int, frac) = s.split_once('.').unwrap_or((s, "x"));
    let frac_ok = frac == "x" || (!frac.is_empty() && frac.len() <= 6 && frac.bytes().all(|b| b.is_ascii_digit()));
    !int.is_empty() && int.len() <= 12 && int.bytes().all(|b| b.is_ascii_digit()) && frac_ok
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

impl LlmProvider {
    /// The provider's public base URL, used when the settings name none: `https://api.anthropic.com`
    /// or `https://api.openai.com/v1`.
    pub const fn default_base_url(self) -> &'static str {
        match self {
            LlmProvider::Anthropic => "https://api.anthropic.com",
            LlmProvider::OpenaiCompatible => "https://api.openai.com/v1",
        }
    }

    /// The `kebab-case` name (`anthropic`, `openai-compatible`), as in the settings.
    pub const fn name(self) -> &'static str {
        match self {
            LlmProvider::Anthropic => "anthropic",
            LlmProvider::OpenaiCompatible => "openai-compatible",
        }
    }
}

impl std::str::FromStr for LlmProvider {
    type Err = String;

    /// Parse a [`LlmProvider::name`]. Errors: any other text, with the accepted names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [LlmProvider::Anthropic, LlmProvider::OpenaiCompatible]
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown LLM provider {s:?}: expected anthropic or openai-compatible"))
    }
}

/// The built-in LLM agent's settings.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LlmSettings {
    /// The wire format. Default `anthropic`.
    #[serde(default)]
    pub provider: LlmProvider,
    /// Base URL. Default `https://api.anthropic.com` or `https://api.openai.com/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Model name as the provider knows it.
    pub model: String,
    /// Sampling temperature. Absent (the default): none is sent. Sent only to model families that
    /// take one (not Anthropic's current Messages API, not OpenAI reasoning models); otherwise the
    /// agent step logs that it was left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// `max_tokens` per response. Default 4096.
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 1))]
    pub max_tokens_per_turn: i32,
    /// Total tokens (input + output, as reported) the attempt may use. Default 200000.
    #[serde(default = "default_budget")]
    #[schemars(range(min = 0))]
    pub token_budget: i64,
    /// Most model turns (request → change → validation). Default 4.
    #[serde(default = "default_turns")]
    #[schemars(range(min = 1))]
    pub max_turns: i32,
    /// Seconds one HTTP request may take. Default 300.
    #[serde(default = "default_request_timeout")]
    #[schemars(range(min = 1))]
    pub request_timeout_seconds: i64,
    /// Retries of a 429 / 5xx / connection failure. Default 4.
    #[serde(default = "default_retries")]
    #[schemars(range(min = 0))]
    pub max_retries: i32,
    /// First backoff in milliseconds (doubles each retry, capped at 30 s; `Retry-After` wins). Default 1000.
    #[serde(default = "default_backoff")]
    #[schemars(range(min = 0))]
    pub initial_backoff_millis: i64,
    /// A prompt template file (minijinja) replacing the built-in one of the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_template: Option<String>,
    /// Work through the provider's tool API (Anthropic tool use, OpenAI function calling). False:
    /// the model answers with a diff (servers without tools). Default true.
    #[serde(default = "yes")]
    pub tool_use: bool,
    /// Mark the stable prefix for prompt caching (Anthropic `cache_control`). Default true.
    #[serde(default = "yes")]
    pub prompt_caching: bool,
    /// Most model requests of one attempt (each tool round trip is one). Default 40.
    #[serde(default = "default_requests")]
    #[schemars(range(min = 1))]
    pub max_requests: i32,
    /// Seconds the LLM loop may run, model and tools together. Default 1200.
    #[serde(default = "default_loop_timeout")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: i64,
    /// Most bytes of one tool result sent to the model. Default 16384.
    #[serde(default = "default_tool_output")]
    #[schemars(range(min = 1024))]
    pub max_tool_output_bytes: i64,
    /// The model's prices; absent: the controller config's `llmPrices` entry for the model, if any.
    /// Without a price no cost is computed and `costBudgetUsd` cannot apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<ModelPrice>,
    /// Most USD one attempt may spend (decimal string); needs a price. Each request's `max_tokens`
    /// is cut to what the rest pays for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]{1,6})?$"))]
    pub cost_budget_usd: Option<String>,
}

/// A setting outside its range, as the controller config loader reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be at least {min}, got {value}")]
pub struct SettingOutOfRange {
    /// The camelCase field path, e.g. `llm.maxTurns`.
    pub field: &'static str,
    /// The smallest value allowed.
    pub min: i64,
    /// The value given.
    pub value: i64,
}

fn at_least(field: &'static str, value: i64, min: i64) -> Result<(), SettingOutOfRange> {
    if value < min { Err(SettingOutOfRange { field, min, value }) } else { Ok(()) }
}

fn unsigned_u32(v: impl Into<i64>) -> u32 {
    u32::try_from(v.into().max(0)).unwrap_or(u32::MAX)
}

fn unsigned_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Default for AgentSettings {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

impl AgentSettings {
    /// Parse the JSON of [`env::SETTINGS`](super::env::SETTINGS); absent or blank means defaults.
    /// Errors: the text is not settings JSON (the serde message).
    pub fn from_json(text: Option<&str>) -> Result<Self, serde_json::Error> {
        match text.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => serde_json::from_str(t),
            None => Ok(Self::default()),
        }
    }

    /// Check the ranges the CRD schema enforces, so a bad controller config fails at load time
    /// instead of at the API server. Errors: the first field out of range.
    pub fn validate(&self) -> Result<(), SettingOutOfRange> {
        at_least("validationTimeoutSeconds", self.validation_timeout_seconds, 1)?;
        at_least("maxChangedFiles", self.max_changed_files.into(), 1)?;
        at_least("maxChangedLines", self.max_changed_lines.into(), 1)?;
        at_least("excerptMaxBytes", self.excerpt_max_bytes, 0)?;
        if let Some(l) = &self.llm {
            at_least("llm.maxTokensPerTurn", l.max_tokens_per_turn.into(), 1)?;
            at_least("llm.tokenBudget", l.token_budget, 0)?;
            at_least("llm.maxTurns", l.max_turns.into(), 1)?;
            at_least("llm.requestTimeoutSeconds", l.request_timeout_seconds, 1)?;
            at_least("llm.maxRetries", l.max_retries.into(), 0)?;
            at_least("llm.initialBackoffMillis", l.initial_backoff_millis, 0)?;
            at_least("llm.maxRequests", l.max_requests.into(), 1)?;
            at_least("llm.timeoutSeconds", l.timeout_seconds, 1)?;
            at_least("llm.maxToolOutputBytes", l.max_tool_output_bytes, 1024)?;
        }
        Ok(())
    }

    /// How long each validation command (and fixer) may run.
    pub fn validation_timeout(&self) -> Duration {
        Duration::from_secs(unsigned_u64(self.validation_timeout_seconds))
    }

    /// [`Self::max_changed_files`] as the pod runtime counts.
    pub fn files_cap(&self) -> u32 {
        unsigned_u32(self.max_changed_files)
    }

    /// [`Self::max_changed_lines`] as the pod runtime counts.
    pub fn lines_cap(&self) -> u32 {
        unsigned_u32(self.max_changed_lines)
    }

    /// [`Self::excerpt_max_bytes`] in bytes.
    pub fn excerpt_cap(&self) -> usize {
        usize::try_from(self.excerpt_max_bytes.max(0)).unwrap_or(usize::MAX)
    }
}

impl LlmSettings {
    /// The provider's base URL without a trailing `/`: [`Self::base_url`], or the provider's
    /// [`LlmProvider::default_base_url`].
    pub fn effective_base_url(&self) -> String {
        self.base_url.as_deref().unwrap_or(self.provider.default_base_url()).trim_end_matches('/').to_string()
    }

    /// Most model turns, at least 1.
    pub fn turns(&self) -> u32 {
        unsigned_u32(self.max_turns).max(1)
    }

    /// Retries after the first request.
    pub fn retries(&self) -> u32 {
        unsigned_u32(self.max_retries)
    }

    /// `max_tokens` of each request.
    pub fn max_tokens(&self) -> u32 {
        unsigned_u32(self.max_tokens_per_turn)
    }

    /// The token budget (input + output).
    pub fn budget(&self) -> u64 {
        unsigned_u64(self.token_budget)
    }

    /// How long one HTTP request may take, at least 1 s.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(unsigned_u64(self.request_timeout_seconds).max(1))
    }

    /// The first backoff between retries.
    pub fn initial_backoff(&self) -> Duration {
        Duration::from_millis(unsigned_u64(self.initial_backoff_millis))
    }

    /// Most model requests, at least 1.
    pub fn requests(&self) -> u32 {
        unsigned_u32(self.max_requests).max(1)
    }

    /// How long the LLM loop may run, at least 1 s.
    pub fn loop_timeout(&self) -> Duration {
        Duration::from_secs(unsigned_u64(self.timeout_seconds).max(1))
    }

    /// Most bytes of one tool result, at least 1 KiB.
    pub fn tool_output_cap(&self) -> usize {
        usize::try_from(self.max_tool_output_bytes.max(1024)).unwrap_or(usize::MAX)
    }

    /// The prices and the cost budget as amounts. Errors: a value that is not a USD amount, or a
    /// budget without a price.
    pub fn check_money(&self) -> Result<(), String> {
        let amounts = self.price.iter().flat_map(|p| {
            [Some(&p.input), Some(&p.output), p.cache_read.as_ref(), p.cache_write.as_ref()].into_iter().flatten()
        });
        for a in amounts.chain(self.cost_budget_usd.iter()) {
            if !is_usd_amount(a) {
                return Err(format!("{a:?} is not a USD amount (a decimal such as \"3\" or \"0.30\")"));
            }
        }
        if self.cost_budget_usd.is_some() && self.price.is_none() {
            return Err("llm.costBudgetUsd needs llm.price (or an llmPrices entry for the model)".into());
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}
fn default_validation_timeout() -> i64 {
    900
}
fn default_max_files() -> i32 {
    20
}
fn default_max_lines() -> i32 {
    600
}
fn default_excerpt_bytes() -> i64 {
    64 * 1024
}
fn default_requests() -> i32 {
    40
}
fn default_loop_timeout() -> i64 {
    1200
}
fn default_tool_output() -> i64 {
    16 * 1024
}
fn default_max_tokens() -> i32 {
    4096
}
fn default_budget() -> i64 {
    200_000
}
fn default_turns() -> i32 {
    4
}
fn default_request_timeout() -> i64 {
    300
}
fn default_retries() -> i32 {
    4
}
fn default_backoff() -> i64 {
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
        assert_eq!(AgentSettings::from_json(None).unwrap(), s);
        assert_eq!(AgentSettings::from_json(Some("  ")).unwrap(), s);
        assert!(AgentSettings::from_json(Some("{")).is_err());
    }

    #[test]
    fn accessors_convert_to_the_runtime_types() {
        let s: AgentSettings = serde_json::from_value(serde_json::json!({
            "validationTimeoutSeconds": 7, "maxChangedFiles": 3, "maxChangedLines": 40, "excerptMaxBytes": 100,
            "llm": {"model": "m", "maxTurns": 0, "maxRetries": -2, "tokenBudget": 9, "maxTokensPerTurn": 8,
                    "requestTimeoutSeconds": 0, "initialBackoffMillis": 50}
        }))
        .unwrap();
        assert_eq!(s.validation_timeout(), Duration::from_secs(7));
        assert_eq!((s.files_cap(), s.lines_cap(), s.excerpt_cap()), (3, 40, 100));
        let l = s.llm.as_ref().unwrap();
        assert_eq!((l.turns(), l.retries(), l.budget(), l.max_tokens()), (1, 0, 9, 8));
        assert_eq!(l.request_timeout(), Duration::from_secs(1));
        assert_eq!(l.initial_backoff(), Duration::from_millis(50));
        let err = s.validate().unwrap_err();
        assert_eq!(err, SettingOutOfRange { field: "llm.maxTurns", min: 1, value: 0 });
        assert_eq!(err.to_string(), "llm.maxTurns must be at least 1, got 0");
        assert_eq!(AgentSettings::default().validate(), Ok(()));
    }
}
