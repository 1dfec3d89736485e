//! The steps inside an attempt pod: `install-binary`, `checkout`, `agent`, `validate`.
//!
//! Each is a subcommand of the one `healer` binary that the `prepare` step copies into the pod, so
//! any toolchain image can run them as `/healer/bin/healer <step>`. Steps talk to each other only
//! through the workspace volume (the checkout, and records in the state dir) and to the controller
//! only through termination messages and, for validate, the patch in its log: every name and shape
//! that crosses those boundaries is in [`crate::contract`].
//!
//! | module | answers |
//! |---|---|
//! | [`checkout`] | how the failing commit gets into the workspace |
//! | [`context`] | what failure text the agent may see (bounded, stripped, masked) |
//! | [`fixers`] | which deterministic fixers and checks fit a failure |
//! | [`llm`] | how to talk to the Anthropic and OpenAI-compatible APIs |
//! | [`prompt`] | what the model is told |
//! | [`instructions`] | the repository's AGENTS.md, CLAUDE.md, Copilot and SELF_HEALING.md instructions |
//! | [`repo_config`] | the repository's `.github/ci-healer.yml`, merged under the cluster's policy |
//! | [`cost`] | prices and money, in micro-dollars |
//! | [`memory`] | re-applying a remembered fix, and past fixes as examples |
//! | [`builtin`] | the fixers-then-LLM loop (tool use, or the diff format) |
//! | [`tools`] | what the model can do in the workspace, bounded |
//! | [`external`] | how an external agent command is run |
//! | [`diff`] | what changed, and whether it is acceptable |
//! | [`validate`] | the verdict |

pub mod builtin;
pub mod checkout;
pub mod cli;
pub mod context;
pub mod cost;
pub mod diff;
pub mod external;
pub mod fixers;
pub mod instructions;
pub mod llm;
pub mod memory;
pub mod process;
pub mod prompt;
pub mod repo_config;
pub mod tools;
pub mod validate;

use std::path::{Path, PathBuf};

use context::{FailureContext, Masker};

use crate::contract::{AgentSettings, LlmSettings, Step, StepContext};

/// What every step reads from its environment.
#[derive(Debug, Clone)]
pub struct StepEnv {
    /// The repository checkout.
    pub workspace: PathBuf,
    /// The attempt's settings (defaults when the controller sent none).
    pub settings: AgentSettings,
    /// The failure the agent sees (excerpt, class, failing step).
    pub context: FailureContext,
    /// Masks the mounted secrets and known token formats in everything the step prints.
    pub masker: Masker,
    /// The agent profile.
    pub profile: String,
    /// The repository, `owner/name`.
    pub repository: String,
    /// The branch the failing commit was built on.
    pub branch: String,
    /// The failing commit.
    pub head_sha: String,
    /// The attempt's number (1 for the first).
    pub attempt: i32,
    /// The `llm-proxy` sidecar's URL, when the profile has a key Secret (the step never sees the key).
    pub llm_proxy_url: Option<String>,
    /// Give an external agent a placeholder key under this variable name.
    pub export_api_key_as: Option<String>,
}

impl StepEnv {
    /// Read the environment of `step` ([`StepContext::from_env`]): the workspace, settings, context
    /// dir, profile and source, and the secret files (for masking). Errors: invalid settings JSON.
    pub fn from_env(step: Step) -> Result<Self, crate::contract::env::EnvError> {
        let ctx = StepContext::from_env(step)?;
        let settings = ctx.settings_or_default();
        let mut masker = Masker::from_env();
        if let Some(url) = &ctx.llm_proxy_url {
            match llm::fingerprint_from_proxy(url) {
                Ok(fp) => masker.add_fingerprint(fp),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot get the LLM key's fingerprint from the proxy; it is not masked")
                }
            }
        }
        let context = FailureContext::load(&ctx.context_dir, &masker, settings.excerpt_cap());
        let source = ctx.source.clone().unwrap_or_default();
        Ok(Self {
            workspace: ctx.workspace.clone(),
            settings,
            context,
            masker,
            profile: ctx.profile.clone(),
            repository: source.repository,
            branch: source.branch,
            head_sha: source.head_sha,
            attempt: ctx.attempt,
            llm_proxy_url: ctx.llm_proxy_url.clone(),
            export_api_key_as: ctx.export_api_key_as.clone(),
        })
    }

    /// The failing commit: the checkout record's full SHA, else the head SHA the controller sent.
    pub fn base_sha(&self) -> String {
        process::read_record(Step::Checkout.name())
            .and_then(|r| r["sha"].as_str().map(str::to_string))
            .unwrap_or_else(|| self.head_sha.clone())
    }

    /// Render the prompt for the built-in agent.
    pub fn render_prompt(
        &self,
        llm: &LlmSettings,
        validation: &[String],
        mode: prompt::Mode,
    ) -> Result<String, prompt::PromptError> {
        self.render_prompt_with(llm.prompt_template.as_deref(), validation, mode)
    }

    /// The repository's `.github/ci-healer.yml` at the failing commit, merged under the profile's
    /// policy on top of `validation` (the profile's or the failure class's commands).
    pub fn repo_config(&self, validation: &[String]) -> repo_config::Merged {
        let file = instructions::at_revision(&self.workspace, &self.base_sha(), repo_config::PATH);
        let m = repo_config::merge(file.as_deref(), &self.settings.repository_config, &self.branch, validation, None);
        for n in &m.notes {
            tracing::warn!(note = %n, "repository config");
        }
        m
    }

    /// Render the prompt with an optional template file.
    pub fn render_prompt_with(
        &self,
        template: Option<&str>,
        validation: &[String],
        mode: prompt::Mode,
    ) -> Result<String, prompt::PromptError> {
        let repo = self.repo_config(validation);
        let tree: Vec<String> = std::process::Command::new("git")
            .args(["ls-files"])
            .current_dir(&self.workspace)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().take(200).map(str::to_string).collect())
            .unwrap_or_default();
        let vars = prompt::PromptVars {
            repository: self.repository.clone(),
            branch: self.branch.clone(),
            head_sha: self.head_sha.clone(),
            profile: self.profile.clone(),
            failure_class: self.context.failure_class.clone(),
            failing_step: self.context.failing_step.clone(),
            hint: self.context.hint.clone(),
            excerpt: self.context.excerpt.clone(),
            files: prompt::files_from_excerpt(&self.context.excerpt, &self.workspace, &self.masker),
            tree,
            validation_commands: validation.to_vec(),
            external: mode == prompt::Mode::External,
            tools: mode == prompt::Mode::Tools,
            instructions: instructions::read(&self.workspace, &self.base_sha(), &self.masker),
            agent_hints: repo.agent_hints.map(|h| self.masker.mask(&h)),
            past_fixes: memory::examples(&self.context.memory, &self.masker),
        };
        prompt::render(&self.profile, template.map(Path::new), &vars, &self.masker)
    }
}
