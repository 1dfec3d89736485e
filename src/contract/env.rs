//! Every environment variable name the `healer` binary writes or reads, and the typed
//! [`StepContext`] that the Job builder writes into each step and the step reads back.
//!
//! Both sides go through [`StepContext::to_env`] and [`StepContext::from_lookup`], so a variable
//! renamed here changes both at once, and the round trip is a unit test. Nothing secret is ever a
//! value: secrets are files in mounted Secret volumes, and only their paths travel (the `*_FILE`
//! variables).

use std::path::PathBuf;

use super::paths;
use super::settings::AgentSettings;
use super::step::Step;

// --- Set by the controller on every step of an attempt pod. ---

/// The step's name ([`Step::name`]).
pub const STEP: &str = "HEALER_STEP";
/// The HealingRun's name.
pub const RUN: &str = "HEALER_RUN";
/// The attempt number, 1-based.
pub const ATTEMPT: &str = "HEALER_ATTEMPT";
/// The agent profile's name.
pub const PROFILE: &str = "HEALER_PROFILE";
/// The repository checkout ([`paths::SOURCE_DIR`]).
pub const WORKSPACE: &str = "HEALER_WORKSPACE";
/// Step records and caches ([`paths::STATE_DIR`]).
pub const STATE_DIR: &str = "HEALER_STATE_DIR";
/// The mounted context ConfigMap ([`paths::CONTEXT_DIR`]).
pub const CONTEXT_DIR: &str = "HEALER_CONTEXT_DIR";
/// Where the step writes its termination message ([`paths::TERMINATION_LOG`]).
pub const TERMINATION_MESSAGE_PATH: &str = "HEALER_TERMINATION_MESSAGE_PATH";
/// `HOME`, on the writable workspace volume ([`paths::HOME_DIR`]).
pub const HOME: &str = "HOME";
/// `TMPDIR`, the writable `tmp` volume ([`paths::TMP_DIR`]): every root filesystem is read-only.
pub const TMPDIR: &str = "TMPDIR";

// --- Set by the controller on checkout, agent and validate. ---

/// The HealingAttempt's name (`<run>-<n>`).
pub const ATTEMPT_NAME: &str = "HEALER_ATTEMPT_NAME";
/// The repository, `owner/name`.
pub const REPOSITORY: &str = "HEALER_REPOSITORY";
/// The branch the failing commit was built on.
pub const BRANCH: &str = "HEALER_BRANCH";
/// The failing commit (7 to 40 hex digits).
pub const HEAD_SHA: &str = "HEALER_HEAD_SHA";
/// The git host's base URL (the profile's `settings.gitBaseUrl`), when set.
pub const GIT_BASE_URL: &str = "HEALER_GIT_BASE_URL";
/// The attempt's [`AgentSettings`] as JSON.
pub const SETTINGS: &str = "HEALER_SETTINGS";
/// A full clone URL that replaces `<gitBaseUrl>/<repository>.git` (a profile's step env may set it).
pub const REPO_URL: &str = "HEALER_REPO_URL";

// --- Secret files: the only way a secret reaches a step. Every `HEALER_*_FILE` value is masked. ---

/// The git token file ([`paths::git_token_file`]), in `checkout` only.
pub const GIT_TOKEN_FILE: &str = "HEALER_GIT_TOKEN_FILE";
/// The LLM API key file ([`paths::llm_key_file`]), in the `llm-proxy` sidecar only: no step of
/// the attempt reads the key.
pub const LLM_API_KEY_FILE: &str = "HEALER_LLM_API_KEY_FILE";
/// Set in a profile's agent step env: give an external agent a variable of this name (e.g.
/// `ANTHROPIC_API_KEY`) for tools that insist on one. Its value is [`super::proxy::PLACEHOLDER_KEY`],
/// never the key: the `llm-proxy` sidecar adds the real one.
pub const EXPORT_API_KEY_AS: &str = "HEALER_EXPORT_API_KEY_AS";

// --- The LLM credential proxy ([`super::proxy`]). ---

/// The proxy's base URL (`http://127.0.0.1:<port>`), in `agent` only, when a key Secret is
/// configured: the LLM client's provider base URL.
pub const LLM_PROXY_URL: &str = "HEALER_LLM_PROXY_URL";
/// `healer llm-proxy --listen`: the loopback address it serves on.
pub const LLM_PROXY_LISTEN: &str = "HEALER_LLM_PROXY_LISTEN";
/// `healer llm-proxy --upstream`: the provider's base URL, the only place it forwards to.
pub const LLM_PROXY_UPSTREAM: &str = "HEALER_LLM_PROXY_UPSTREAM";
/// `healer llm-proxy --provider`: which authentication header it adds (`anthropic`,
/// `openai-compatible`).
pub const LLM_PROXY_PROVIDER: &str = "HEALER_LLM_PROXY_PROVIDER";

// --- Set by `healer agent --exec` for an external agent command. ---

/// The prompt file (Markdown).
pub const PROMPT_FILE: &str = "HEALER_PROMPT_FILE";
/// Where the external agent may write a one-paragraph diagnosis.
pub const DIAGNOSIS_FILE: &str = "HEALER_DIAGNOSIS_FILE";
/// The commands that must pass, one per line.
pub const VALIDATION_COMMANDS: &str = "HEALER_VALIDATION_COMMANDS";
/// Triage's failure class (`rust_fmt`, …).
pub const FAILURE_CLASS: &str = "HEALER_FAILURE_CLASS";

// --- Environment fallbacks of command-line flags (`healer <subcommand> --help` lists them). ---

/// `healer --log-format`.
pub const LOG_FORMAT: &str = "HEALER_LOG_FORMAT";
/// `healer --log-filter` (the standard `RUST_LOG`).
pub const LOG_FILTER: &str = "RUST_LOG";
/// `healer controller --config` and `healer triage --config`.
pub const CONFIG: &str = "HEALER_CONFIG";
/// `healer controller --metrics-addr`.
pub const METRICS_ADDR: &str = "HEALER_METRICS_ADDR";
/// `healer controller --metrics-repository-limit`.
pub const METRICS_REPOSITORY_LIMIT: &str = "HEALER_METRICS_REPOSITORY_LIMIT";
/// `healer controller --namespace`, `healer host-runner --namespace`, `healer dashboard --namespace` and
/// `healer webhook --namespace`.
pub const NAMESPACE: &str = "HEALER_NAMESPACE";
/// `healer dashboard --addr`.
pub const DASHBOARD_ADDR: &str = "HEALER_DASHBOARD_ADDR";
/// `healer dashboard --github-web-url`.
pub const GITHUB_WEB_URL: &str = "HEALER_GITHUB_WEB_URL";
/// `healer webhook --addr`.
pub const WEBHOOK_ADDR: &str = "HEALER_WEBHOOK_ADDR";
/// `healer webhook --secret-file`: the file holding the GitHub webhook's secret.
pub const WEBHOOK_SECRET_FILE: &str = "HEALER_WEBHOOK_SECRET_FILE";
/// `healer webhook --max-body-bytes`.
pub const WEBHOOK_MAX_BODY_BYTES: &str = "HEALER_WEBHOOK_MAX_BODY_BYTES";
/// `healer webhook --api-timeout-ms`.
pub const WEBHOOK_API_TIMEOUT_MS: &str = "HEALER_WEBHOOK_API_TIMEOUT_MS";
/// `healer controller --crd-wait-seconds`.
pub const CRD_WAIT_SECONDS: &str = "HEALER_CRD_WAIT_SECONDS";
/// `healer controller --leader-election`.
pub const LEADER_ELECTION: &str = "HEALER_LEADER_ELECTION";
/// `healer controller --lease-namespace`.
pub const LEASE_NAMESPACE: &str = "HEALER_LEASE_NAMESPACE";
/// `healer controller --lease-duration-seconds`.
pub const LEASE_DURATION_SECONDS: &str = "HEALER_LEASE_DURATION_SECONDS";
/// The pod's own name (downward API), the controller's Event reporter instance and Lease identity.
pub const POD_NAME: &str = "POD_NAME";
/// The pod's namespace (downward API), the Lease's default namespace.
pub const POD_NAMESPACE: &str = "POD_NAMESPACE";
/// `healer install-binary --to`.
pub const INSTALL_TO: &str = "HEALER_INSTALL_TO";
/// `healer agent --exec`.
pub const AGENT_EXEC: &str = "HEALER_AGENT_EXEC";
/// `healer agent --prepare-prompt`.
pub const AGENT_PREPARE_PROMPT: &str = "HEALER_AGENT_PREPARE_PROMPT";
/// `healer triage --file`.
pub const TRIAGE_FILE: &str = "HEALER_TRIAGE_FILE";
/// `healer triage --workflow`.
pub const WORKFLOW_NAME: &str = "HEALER_WORKFLOW_NAME";
/// `healer triage --job`.
pub const JOB_NAME: &str = "HEALER_JOB_NAME";
/// `healer triage --step` (one per line).
pub const FAILED_STEPS: &str = "HEALER_FAILED_STEPS";
/// `healer triage --changed-file` (one per line).
pub const CHANGED_FILES: &str = "HEALER_CHANGED_FILES";
/// `healer triage --error-type`.
pub const ERROR_TYPE: &str = "HEALER_ERROR_TYPE";
/// `healer triage --language`: the repository's languages, `NAME=BYTES` one per line (GitHub's
/// `GET /repos/{owner}/{repo}/languages`).
pub const REPOSITORY_LANGUAGES: &str = "HEALER_REPOSITORY_LANGUAGES";
/// `healer host-runner --node-name` (dev only).
pub const NODE_NAME: &str = "HEALER_NODE_NAME";
/// `healer host-runner --kubelet-addr` (dev only).
pub const KUBELET_ADDR: &str = "HEALER_KUBELET_ADDR";
/// `healer host-runner --work-dir` (dev only).
pub const RUNNER_DIR: &str = "HEALER_RUNNER_DIR";
/// `healer host-runner --healer-binary` (dev only).
pub const RUNNER_BINARY: &str = "HEALER_RUNNER_BINARY";
/// `healer host-runner --parallel` (dev only).
pub const RUNNER_PARALLEL: &str = "HEALER_RUNNER_PARALLEL";
/// `healer host-runner --keep-volumes` (dev only).
pub const RUNNER_KEEP_VOLUMES: &str = "HEALER_RUNNER_KEEP_VOLUMES";
/// `healer host-runner --max-pods` (dev only).
pub const RUNNER_MAX_PODS: &str = "HEALER_RUNNER_MAX_PODS";

/// Whether `name` names a mounted secret file (`HEALER_*_FILE`), whose content steps must mask.
pub fn is_secret_file_var(name: &str) -> bool {
    name.starts_with("HEALER_") && name.ends_with("_FILE")
}

/// The commit an attempt works on, as the steps see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    /// `owner/name`.
    pub repository: String,
    /// The branch the failing commit was built on.
    pub branch: String,
    /// The failing commit.
    pub head_sha: String,
}

/// What the controller tells one step through its environment, and what the step reads back.
/// Only non-secret values; [`Self::git_token_file`] is a path, and no step learns where the LLM
/// key is ([`Self::llm_proxy_url`] is the sidecar that holds it).
#[derive(Debug, Clone, PartialEq)]
pub struct StepContext {
    /// Which step this is.
    pub step: Step,
    /// The HealingRun's name.
    pub run: String,
    /// The attempt number.
    pub attempt: i32,
    /// The agent profile.
    pub profile: String,
    /// The repository checkout.
    pub workspace: PathBuf,
    /// Step records and caches, outside the repository.
    pub state_dir: PathBuf,
    /// The mounted context ConfigMap (`excerpt.txt`, `triage.json`).
    pub context_dir: PathBuf,
    /// The step's termination message file.
    pub termination_message_path: PathBuf,
    /// `HOME` for the step's tools.
    pub home: PathBuf,
    /// `TMPDIR` for the step's tools.
    pub tmp_dir: PathBuf,
    /// The attempt's name (work steps only).
    pub attempt_name: Option<String>,
    /// The failing commit (work steps only).
    pub source: Option<Source>,
    /// The git host's base URL, when the profile sets one.
    pub git_base_url: Option<String>,
    /// A full clone URL overriding the base URL.
    pub repo_url: Option<String>,
    /// The attempt's settings (work steps only).
    pub settings: Option<AgentSettings>,
    /// The git token file (checkout only, when a token Secret is configured).
    pub git_token_file: Option<PathBuf>,
    /// The `llm-proxy` sidecar's base URL (agent only, when a key Secret is configured): where
    /// the step's LLM client sends its requests, without a key.
    pub llm_proxy_url: Option<String>,
    /// Give an external agent a placeholder key under this variable name.
    pub export_api_key_as: Option<String>,
}

/// Why a step cannot read its environment.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// [`SETTINGS`] is not settings JSON.
    #[error("{SETTINGS} is not valid settings JSON: {0}")]
    Settings(#[from] serde_json::Error),
}

impl StepContext {
    /// The context of `step` with the pod's standard paths and nothing else.
    pub fn new(step: Step, run: &str, attempt: i32, profile: &str) -> Self {
        Self {
            step,
            run: run.into(),
            attempt,
            profile: profile.into(),
            workspace: paths::SOURCE_DIR.into(),
            state_dir: paths::STATE_DIR.into(),
            context_dir: paths::CONTEXT_DIR.into(),
            termination_message_path: paths::TERMINATION_LOG.into(),
            home: paths::HOME_DIR.into(),
            tmp_dir: paths::TMP_DIR.into(),
            attempt_name: None,
            source: None,
            git_base_url: None,
            repo_url: None,
            settings: None,
            git_token_file: None,
            llm_proxy_url: None,
            export_api_key_as: None,
        }
    }

    /// The variables to set on the step's container, in a stable order. Absent fields are left out.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        let mut v = vec![
            (STEP, self.step.name().to_string()),
            (RUN, self.run.clone()),
            (ATTEMPT, self.attempt.to_string()),
            (PROFILE, self.profile.clone()),
            (WORKSPACE, path(&self.workspace)),
            (STATE_DIR, path(&self.state_dir)),
            (CONTEXT_DIR, path(&self.context_dir)),
            (TERMINATION_MESSAGE_PATH, path(&self.termination_message_path)),
            (HOME, path(&self.home)),
            (TMPDIR, path(&self.tmp_dir)),
        ];
        if let Some(n) = &self.attempt_name {
            v.push((ATTEMPT_NAME, n.clone()));
        }
        if let Some(s) = &self.source {
            v.push((REPOSITORY, s.repository.clone()));
            v.push((BRANCH, s.branch.clone()));
            v.push((HEAD_SHA, s.head_sha.clone()));
        }
        if let Some(b) = &self.git_base_url {
            v.push((GIT_BASE_URL, b.clone()));
        }
        if let Some(u) = &self.repo_url {
            v.push((REPO_URL, u.clone()));
        }
        if let Some(s) = &self.settings {
            v.push((SETTINGS, serde_json::to_string(s).expect("settings serialise")));
        }
        if let Some(f) = &self.git_token_file {
            v.push((GIT_TOKEN_FILE, path(f)));
        }
        if let Some(u) = &self.llm_proxy_url {
            v.push((LLM_PROXY_URL, u.clone()));
        }
        if let Some(e) = &self.export_api_key_as {
            v.push((EXPORT_API_KEY_AS, e.clone()));
        }
        v
    }

    /// Read the context of `step` through `get` (a variable's value, `None` when unset). Missing
    /// paths take the pod's standard ones; blank values count as unset. Errors: [`EnvError`].
    pub fn from_lookup(step: Step, get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let dir = |k: &str, default: &str| PathBuf::from(var(k).unwrap_or_else(|| default.into()));
        let source = match (var(REPOSITORY), var(BRANCH), var(HEAD_SHA)) {
            (None, None, None) => None,
            (r, b, h) => Some(Source {
                repository: r.unwrap_or_default(),
                branch: b.unwrap_or_default(),
                head_sha: h.unwrap_or_default(),
            }),
        };
        Ok(Self {
            step,
            run: var(RUN).unwrap_or_default(),
            attempt: var(ATTEMPT).and_then(|a| a.trim().parse().ok()).unwrap_or(0),
            profile: var(PROFILE).unwrap_or_default(),
            workspace: dir(WORKSPACE, paths::SOURCE_DIR),
            state_dir: dir(STATE_DIR, paths::STATE_DIR),
            context_dir: dir(CONTEXT_DIR, paths::CONTEXT_DIR),
            termination_message_path: dir(TERMINATION_MESSAGE_PATH, paths::TERMINATION_LOG),
            home: dir(HOME, paths::HOME_DIR),
            tmp_dir: dir(TMPDIR, paths::TMP_DIR),
            attempt_name: var(ATTEMPT_NAME),
            source,
            git_base_url: var(GIT_BASE_URL),
            repo_url: var(REPO_URL),
            settings: var(SETTINGS).map(|s| serde_json::from_str(&s)).transpose()?,
            git_token_file: var(GIT_TOKEN_FILE).map(PathBuf::from),
            llm_proxy_url: var(LLM_PROXY_URL),
            export_api_key_as: var(EXPORT_API_KEY_AS),
        })
    }

    /// Read the context of `step` from this process's environment. Errors: [`EnvError`].
    pub fn from_env(step: Step) -> Result<Self, EnvError> {
        Self::from_lookup(step, |k| std::env::var(k).ok())
    }

    /// The settings, or the defaults when the controller sent none.
    pub fn settings_or_default(&self) -> AgentSettings {
        self.settings.clone().unwrap_or_default()
    }
}

/// What `healer agent --exec` tells an external agent command (the external-agent contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAgentEnv {
    /// The prompt file.
    pub prompt_file: PathBuf,
    /// Where the agent may write its diagnosis.
    pub diagnosis_file: PathBuf,
    /// The commands that must pass.
    pub validation_commands: Vec<String>,
    /// Triage's failure class.
    pub failure_class: String,
}

impl ExternalAgentEnv {
    /// The variables to set on the external command.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (PROMPT_FILE, self.prompt_file.to_string_lossy().into_owned()),
            (DIAGNOSIS_FILE, self.diagnosis_file.to_string_lossy().into_owned()),
            (VALIDATION_COMMANDS, self.validation_commands.join("\n")),
            (FAILURE_CLASS, self.failure_class.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn round_trip(ctx: &StepContext) -> StepContext {
        let env: HashMap<&str, String> = ctx.to_env().into_iter().collect();
        StepContext::from_lookup(ctx.step, |k| env.get(k).cloned()).unwrap()
    }

    #[test]
    fn what_the_job_builder_writes_the_step_reads_back() {
        let bare = StepContext::new(Step::Prepare, "r", 2, "rust");
        assert_eq!(round_trip(&bare), bare);
        let full = StepContext {
            attempt_name: Some("r-2".into()),
            source: Some(Source { repository: "o/r".into(), branch: "main".into(), head_sha: "abc1234".into() }),
            git_base_url: Some("file:///tmp/remotes".into()),
            repo_url: Some("file:///tmp/x.git".into()),
            settings: Some(AgentSettings { max_changed_files: 3, ..Default::default() }),
            git_token_file: Some(paths::git_token_file().into()),
            llm_proxy_url: Some(crate::contract::proxy::url()),
            export_api_key_as: Some("ANTHROPIC_API_KEY".into()),
            ..StepContext::new(Step::Agent, "r", 2, "rust")
        };
        assert_eq!(round_trip(&full), full);
        let names: Vec<&str> = full.to_env().iter().map(|(k, _)| *k).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "each variable once: {names:?}");
    }

    #[test]
    fn missing_values_take_the_pod_defaults_and_bad_settings_are_an_error() {
        let ctx = StepContext::from_lookup(Step::Validate, |_| None).unwrap();
        assert_eq!(ctx.workspace, PathBuf::from(paths::SOURCE_DIR));
        assert_eq!(ctx.termination_message_path, PathBuf::from(paths::TERMINATION_LOG));
        assert_eq!((ctx.source, ctx.settings), (None, None));
        let only_sha = StepContext::from_lookup(Step::Checkout, |k| (k == HEAD_SHA).then(|| "abc1234".into())).unwrap();
        assert_eq!(only_sha.source.unwrap().head_sha, "abc1234");
        let err = StepContext::from_lookup(Step::Agent, |k| (k == SETTINGS).then(|| "{".into())).unwrap_err();
        assert!(err.to_string().starts_with("HEALER_SETTINGS is not valid settings JSON"), "{err}");
    }

    #[test]
    fn secret_file_variables_are_recognised() {
        assert!(is_secret_file_var(GIT_TOKEN_FILE) && is_secret_file_var(LLM_API_KEY_FILE));
        assert!(!is_secret_file_var(WORKSPACE) && !is_secret_file_var("X_FILE"));
    }
}
