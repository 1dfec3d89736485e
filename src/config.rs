//! The controller's configuration file (`--config`, a ConfigMap rendered from Helm values in a cluster).
//!
//! It names the agent profiles (images, commands, secrets), the attempt defaults and the routing rules.
//! Secrets are referenced by name, never inlined. A missing file means [`ControllerConfig::default`].

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::ResourceRequirements;
use serde::{Deserialize, Serialize};

use crate::contract::paths::BINARY;
use crate::contract::{AgentSettings, Step};
use crate::crd::{EnvVar, SecretKeyRef, StepSpec};
use crate::triage::RoutingConfig;

/// Top-level controller configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControllerConfig {
    /// Image that carries the `healer` binary (and git, for checkout).
    #[serde(default = "default_healer_image")]
    pub healer_image: String,
    /// Defaults for every attempt's Job.
    #[serde(default)]
    pub attempt: AttemptDefaults,
    /// The Secret key holding the git token for checkout (and pushes, in pull-request mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_token_secret: Option<SecretKeyRef>,
    /// Agent profiles by name. `general` must exist: it is the routing fallback.
    #[serde(default = "default_profiles")]
    pub profiles: BTreeMap<String, Profile>,
    /// Triage routing rules.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Prices per model name (USD per million tokens), used for a profile's `llm.price` when it sets
    /// none; frozen into each attempt's settings with the rest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub llm_prices: BTreeMap<String, crate::contract::settings::ModelPrice>,
    /// GitHub: the identity (an App or a token, from Secrets), the API URL, the call bounds and what
    /// the controller does on GitHub ([`crate::github::GitHubConfig`]). Absent: the controller reads
    /// nothing from GitHub and heals only `spec.failure.excerpt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<crate::github::GitHubConfig>,
    /// Which repositories runs in each namespace may heal (`namespace: [owner, owner/name-glob]`);
    /// a run outside its namespace's allowance gets `Accepted=False`, `RepositoryNotAllowed`, and no
    /// GitHub call. Only consulted when `github` is set. Default: nothing.
    #[serde(default, skip_serializing_if = "crate::github::allow::RepositoryAllowlist::is_empty")]
    pub allowed_repositories: crate::github::allow::RepositoryAllowlist,
    /// Memory of past fixes (see [`crate::controller::memory`]).
    #[serde(default)]
    pub memory: MemoryConfig,
    /// What people's actions (`spec.action`) may do.
    #[serde(default)]
    pub actions: ActionPolicy,
    /// Slack: the bot token or incoming-webhook URL (from a Secret) and the channels
    /// ([`crate::notify::SlackConfig`]). Absent: no Slack messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<crate::notify::SlackConfig>,
}

/// Memory of past fixes: validated patches kept as labelled ConfigMaps in the run's namespace,
/// reused by later runs of the same repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryConfig {
    /// Remember validated fixes and reuse them. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Most remembered fixes per repository and namespace; the oldest go first. Default 50.
    #[serde(default = "default_memory_entries")]
    pub max_entries_per_repository: usize,
    /// Days a remembered fix is kept. Default 90.
    #[serde(default = "default_memory_days")]
    pub max_age_days: u32,
    /// Most past fixes of the same class offered to the model as examples. Default 3; 0 offers none.
    #[serde(default = "default_memory_examples")]
    pub max_examples: usize,
    /// Largest patch offered as an example, in bytes (larger ones are left out). Default 8192.
    #[serde(default = "default_memory_example_bytes")]
    pub max_example_bytes: usize,
}

impl MemoryConfig {
    /// Retention bounds of 0 would remember each fix and delete it again on every reconcile (a
    /// create and a delete per Fixed run): remembering nothing is `enabled: false`. Errors: the
    /// message for `ConfigError::Invalid`.
    fn validate(&self) -> Result<(), String> {
        for (field, v) in
            [("maxEntriesPerRepository", self.max_entries_per_repository), ("maxAgeDays", self.max_age_days as usize)]
        {
            if self.enabled && v == 0 {
                return Err(format!(
                    "memory.{field} must be at least 1, got 0 (to remember no fixes, set memory.enabled: false)"
                ));
            }
        }
        Ok(())
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_entries_per_repository: default_memory_entries(),
            max_age_days: default_memory_days(),
            max_examples: default_memory_examples(),
            max_example_bytes: default_memory_example_bytes(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_memory_entries() -> usize {
    50
}
fn default_memory_days() -> u32 {
    90
}
fn default_memory_examples() -> usize {
    3
}
fn default_memory_example_bytes() -> usize {
    8192
}

/// Limits on people's actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionPolicy {
    /// How many times one run may be retried (each retry starts up to `policy.maxAttempts` more
    /// attempts). Default 2.
    #[serde(default = "default_max_retries")]
    pub max_retries: i32,
    /// Whether the person who triggered the failing run (`spec.source.sender`) may approve its fix
    /// alone. Default false, as GitHub's Copilot agent pull requests require.
    #[serde(default)]
    pub allow_self_approval: bool,
    /// Approve, without a person, a fix that only deterministic fixers made (the passing attempt
    /// used no LLM tokens, and its profile's agent step is the built-in `healer agent`, not an
    /// external image): with a GitHub identity it goes straight to a pull request that is ready for
    /// review, not a draft. Default false.
    #[serde(default)]
    pub auto_approve: bool,
    /// Seconds a finished HealingCommand (a `/healer` comment) that is about no run is kept before
    /// the controller deletes it; a command about a run is owned by that run and goes with it.
    /// Default 86400 (one day).
    #[serde(default = "default_command_ttl")]
    pub command_ttl_seconds: u64,
}

impl Default for ActionPolicy {
    fn default() -> Self {
        Self {
            max_retries: default_max_retries(),
            allow_self_approval: false,
            auto_approve: false,
            command_ttl_seconds: default_command_ttl(),
        }
    }
}

fn default_max_retries() -> i32 {
    2
}

fn default_command_ttl() -> u64 {
    86_400
}

/// Job-level defaults for attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttemptDefaults {
    /// Seconds before Kubernetes stops an attempt's Job (`activeDeadlineSeconds`). Default 1800.
    #[serde(default = "default_deadline")]
    pub active_deadline_seconds: i64,
    /// Seconds a finished Job is kept (`ttlSecondsAfterFinished`). Default 86400.
    #[serde(default = "default_ttl")]
    pub ttl_seconds_after_finished: i32,
    /// Requests and limits for steps that set none.
    #[serde(default = "default_resources")]
    pub resources: ResourceRequirements,
}

/// An agent profile: which images run the agent and validation steps, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// Toolchain image for the agent and validate steps (e.g. `rust:1.95`, `node:22`).
    pub image: String,
    /// The agent step. Default: `healer agent` (fixers, then the built-in LLM agent).
    #[serde(default = "default_agent_step")]
    pub agent: ProfileStep,
    /// The validation step. Default: `healer validate`.
    #[serde(default = "default_validate_step")]
    pub validate: ProfileStep,
    /// The Secret key holding the LLM provider's API key, mounted into the attempt pod's `llm-proxy`
    /// sidecar only (no step of the attempt sees it; see [`crate::contract::proxy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_api_key_secret: Option<SecretKeyRef>,
    /// Fixers, LLM provider and model, validation commands and guard rails of the steps
    /// (see [`AgentSettings`]); frozen into each attempt's `spec.settings`.
    #[serde(default)]
    pub settings: AgentSettings,
}

/// One step of a profile. `image` overrides the profile's image (an external agent image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileStep {
    /// The step's image; absent: the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Entrypoint and arguments, exec form (e.g. `[/healer/bin/healer, agent]`).
    #[serde(default)]
    pub command: Vec<String>,
    /// Extra non-secret environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Requests and limits; absent: `attempt.resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl ProfileStep {
    /// Resolve into the frozen [`StepSpec`] an attempt records.
    pub fn resolve(&self, profile_image: &str) -> StepSpec {
        StepSpec {
            image: self.image.clone().unwrap_or_else(|| profile_image.to_string()),
            command: self.command.clone(),
            env: self.env.clone(),
            resources: self.resources.clone(),
        }
    }
}

/// Errors reading the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not the config's YAML (syntax, an unknown field, a wrong type).
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file (`<inline>` for text).
        path: String,
        /// The YAML error, with its line and column.
        source: serde_yaml_ng::Error,
    },
    /// The config parses but cannot work (a missing fallback profile, a rule naming an unknown
    /// profile, settings out of range).
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl ControllerConfig {
    /// Read and validate a YAML config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::from_yaml(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse { path: path.display().to_string(), source },
            other => other,
        })
    }

    /// Parse and validate YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let cfg: Self =
            serde_yaml_ng::from_str(text).map_err(|source| ConfigError::Parse { path: "<inline>".into(), source })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.profiles.contains_key(&self.routing.fallback_profile) {
            return Err(ConfigError::Invalid(format!(
                "routing.fallbackProfile '{}' is not a configured profile (have: {})",
                self.routing.fallback_profile,
                self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        for (name, p) in &self.profiles {
            if p.image.is_empty() {
                return Err(ConfigError::Invalid(format!("profile '{name}' has no image")));
            }
            p.settings.validate().map_err(|e| ConfigError::Invalid(format!("profile '{name}': settings.{e}")))?;
        }
        // Rules a user wrote must name configured profiles. The built-in rules may name profiles a
        // config leaves out; triage then falls back to `fallbackProfile`.
        if !self.routing.rules.is_empty() {
            let names: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            self.routing.validate(&names).map_err(ConfigError::Invalid)?;
        }
        if let Some(gh) = &self.github {
            gh.validate().map_err(ConfigError::Invalid)?;
        }
        self.allowed_repositories.validate().map_err(ConfigError::Invalid)?;
        self.memory.validate().map_err(ConfigError::Invalid)?;
        if let Some(slack) = &self.slack {
            slack.validate().map_err(ConfigError::Invalid)?;
        }
        Ok(())
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            healer_image: default_healer_image(),
            attempt: AttemptDefaults::default(),
            git_token_secret: None,
            profiles: default_profiles(),
            routing: RoutingConfig::default(),
            llm_prices: BTreeMap::new(),
            github: None,
            allowed_repositories: Default::default(),
            memory: MemoryConfig::default(),
            actions: ActionPolicy::default(),
            slack: None,
        }
    }
}

impl Default for AttemptDefaults {
    fn default() -> Self {
        Self {
            active_deadline_seconds: default_deadline(),
            ttl_seconds_after_finished: default_ttl(),
            resources: default_resources(),
        }
    }
}

fn default_healer_image() -> String {
    format!("ghcr.io/ci-healer/healer:{}", env!("CARGO_PKG_VERSION"))
}
fn default_deadline() -> i64 {
    1800
}
fn default_ttl() -> i32 {
    86400
}
fn default_resources() -> ResourceRequirements {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let q = |cpu: &str, mem: &str| {
        BTreeMap::from([("cpu".to_string(), Quantity(cpu.into())), ("memory".to_string(), Quantity(mem.into()))])
    };
    ResourceRequirements { requests: Some(q("500m", "1Gi")), limits: Some(q("2", "4Gi")), ..Default::default() }
}
fn default_agent_step() -> ProfileStep {
    ProfileStep { command: vec![BINARY.into(), Step::Agent.subcommand().into()], ..Default::default() }
}
fn default_validate_step() -> ProfileStep {
    ProfileStep { command: vec![BINARY.into(), Step::Validate.subcommand().into()], ..Default::default() }
}
fn default_profiles() -> BTreeMap<String, Profile> {
    let p = |image: &str| Profile {
        image: image.into(),
        agent: default_agent_step(),
        validate: default_validate_step(),
        llm_api_key_secret: None,
        settings: Default::default(),
    };
    BTreeMap::from([
        ("general".into(), p("docker.io/library/buildpack-deps:bookworm")),
        ("rust".into(), p("docker.io/library/rust:1.95")),
        ("frontend".into(), p("docker.io/library/node:22")),
        ("infrastructure".into(), p("docker.io/alpine/helm:3")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_four_default_profiles() {
        let cfg = ControllerConfig::from_yaml("{}").unwrap();
        assert_eq!(cfg.profiles.keys().collect::<Vec<_>>(), ["frontend", "general", "infrastructure", "rust"]);
        assert_eq!(cfg.profiles["rust"].agent.command, [BINARY, "agent"]);
    }

    #[test]
    fn a_routing_rule_must_name_a_configured_profile() {
        let err = ControllerConfig::from_yaml("routing: {rules: [{name: docs, job: 'mkdocs', profile: writer}]}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("routing rule 'docs' names profile 'writer', which is not configured"), "{err}");
    }

    #[test]
    fn settings_out_of_the_schema_range_are_rejected_at_load() {
        let err = ControllerConfig::from_yaml(
            "profiles: {general: {image: x}, rust: {image: rust:1, settings: {llm: {model: m, maxTurns: 0}}}}",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("profile 'rust': settings.llm.maxTurns must be at least 1, got 0"), "{err}");
    }

    #[test]
    fn a_memory_that_keeps_nothing_is_rejected_unless_disabled() {
        let base = "profiles: {general: {image: x}}\n";
        for (field, want) in [
            ("maxEntriesPerRepository", "memory.maxEntriesPerRepository must be at least 1, got 0"),
            ("maxAgeDays", "memory.maxAgeDays must be at least 1, got 0"),
        ] {
            let err = ControllerConfig::from_yaml(&format!("{base}memory: {{{field}: 0}}")).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("memory.enabled: false"), "{err}");
            let off = ControllerConfig::from_yaml(&format!("{base}memory: {{enabled: false, {field}: 0}}"));
            assert!(off.is_ok(), "{off:?}");
        }
        assert!(ControllerConfig::from_yaml(&format!("{base}memory: {{maxEntriesPerRepository: 1}}")).is_ok());
    }

    #[test]
    fn unknown_fields_and_missing_fallback_are_rejected() {
        let err = ControllerConfig::from_yaml("healerImg: x").unwrap_err().to_string();
        assert!(err.contains("unknown field `healerImg`"), "{err}");
        let err = ControllerConfig::from_yaml("profiles: {rust: {image: rust:1}}").unwrap_err().to_string();
        assert!(err.contains("fallbackProfile 'general' is not a configured profile"), "{err}");
    }
}
