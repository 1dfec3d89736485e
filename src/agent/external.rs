//! External agents (Claude Code, Codex CLI, aider, a shell script …): `healer agent --exec -- CMD…`
//! writes the prompt to a file and runs CMD in the workspace.
//!
//! Contract for CMD ([`ExternalAgentEnv`](crate::contract::ExternalAgentEnv)): the working directory and [`crate::contract::env::WORKSPACE`] are the
//! repository at the failing commit; [`crate::contract::env::PROMPT_FILE`] is the prompt (Markdown);
//! [`crate::contract::env::VALIDATION_COMMANDS`] the commands that must pass, one per line; [`crate::contract::env::DIAGNOSIS_FILE`]
//! where to write a one-paragraph diagnosis (optional); [`crate::contract::env::FAILURE_CLASS`] triage's class.
//!
//! The agent gets no API key. When the profile has a key Secret, the pod's `llm-proxy` sidecar
//! ([`crate::contract::proxy`]) holds it, and the agent gets the sidecar's loopback URL as its
//! provider base URL ([`crate::contract::env::LLM_PROXY_URL`], and `ANTHROPIC_BASE_URL` /
//! `OPENAI_BASE_URL`, [`PROVIDER_BASE_URL_VARS`]); the sidecar adds the key and forwards below the
//! profile's provider base URL only. An agent that insists on a key variable gets
//! [`crate::contract::proxy::PLACEHOLDER_KEY`] under the name a profile sets in
//! [`crate::contract::env::EXPORT_API_KEY_AS`] (e.g. `ANTHROPIC_API_KEY`). Exit 0 means "done"; the
//! change is whatever the workspace holds. Its output is masked before it reaches the pod log.

use std::path::PathBuf;
use std::process::Stdio;

use std::io::Write;

use tokio::io::{AsyncBufReadExt, BufReader};

use super::{StepEnv, process, validate};
use crate::contract::ExternalAgentEnv;

/// Why an external agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// `--exec` was given without a command.
    #[error("--exec needs a command after `--`")]
    NoCommand,
    /// The prompt could not be rendered.
    #[error(transparent)]
    Prompt(#[from] super::prompt::PromptError),
    /// The prompt file could not be written, or the command's output could not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The command could not be started (not found, not executable).
    #[error("cannot start the external agent {command:?}: {source}")]
    Start {
        /// The program.
        command: String,
        /// The reason.
        source: std::io::Error,
    },
}

/// Render the prompt for an external agent and write it to `<state>/prompt.md`. Returns the path.
/// Errors: template or I/O failures ([`ExternalError`]).
pub fn prepare_prompt(env: &StepEnv) -> Result<PathBuf, ExternalError> {
    let validation = validate::validation_commands(&env.settings, &env.context, &env.workspace);
    let llm = env.settings.llm.clone();
    let text = env.render_prompt_with(
        llm.as_ref().and_then(|l| l.prompt_template.as_deref()),
        &validation,
        super::prompt::Mode::External,
    )?;
    let dir = process::state_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("prompt.md");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The outcome of an external agent.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalEnd {
    /// Its exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// What it wrote to the diagnosis file (masked, at most 1000 characters).
    pub diagnosis: String,
    /// Last lines of its (masked) output, for the failure message.
    pub tail: String,
}

/// Variables that name the provider's base URL for common agents (Claude Code and the Anthropic
/// SDKs read `ANTHROPIC_BASE_URL`; the OpenAI SDKs and Codex CLI `OPENAI_BASE_URL`): each is set
/// to the `llm-proxy` sidecar's URL, to which the SDKs append their paths (`/v1/messages`,
/// `/chat/completions`) and which the sidecar maps below the profile's provider base URL.
pub const PROVIDER_BASE_URL_VARS: [&str; 2] = ["ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"];

/// Write the prompt and run `command` with the contract's environment; its stdout and stderr are
/// masked line by line and forwarded to this step's stdout/stderr. Errors: the command cannot start.
pub async fn exec(env: &StepEnv, command: &[String]) -> Result<ExternalEnd, ExternalError> {
    if command.is_empty() {
        return Err(ExternalError::NoCommand);
    }
    let prompt = prepare_prompt(env)?;
    let validation = validate::validation_commands(&env.settings, &env.context, &env.workspace);
    let diag = process::state_dir().join("diagnosis.txt");
    let _ = std::fs::remove_file(&diag);
    let masker = env.masker.clone();
    let mut cmd = tokio::process::Command::new(&command[0]);
    let contract = ExternalAgentEnv {
        prompt_file: prompt,
        diagnosis_file: diag.clone(),
        validation_commands: validation,
        failure_class: env.context.failure_class.clone(),
    };
    cmd.args(&command[1..])
        .current_dir(&env.workspace)
        .envs(contract.to_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    process::tool_env(&mut cmd);
    if let Some(url) = &env.llm_proxy_url {
        // The provider base URL every common agent reads; the proxy adds the key.
        for var in PROVIDER_BASE_URL_VARS {
            cmd.env(var, url);
        }
        cmd.env(crate::contract::env::LLM_PROXY_URL, url);
        if let Some(var) = &env.export_api_key_as {
            cmd.env(var, crate::contract::proxy::PLACEHOLDER_KEY);
        }
    }
    let mut child = cmd.spawn().map_err(|source| ExternalError::Start { command: command[0].clone(), source })?;
    let tail = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::<String>::new()));
    let forward = |r: Box<dyn tokio::io::AsyncRead + Unpin + Send>, to_err: bool| {
        let masker = masker.clone();
        let tail = tail.clone();
        async move {
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let l = masker.mask(&l);
                // Small line writes: blocking std handles are fine here.
                if to_err {
                    let _ = writeln!(std::io::stderr(), "{l}");
                } else {
                    let _ = writeln!(std::io::stdout(), "{l}");
                }
                let mut t = tail.lock().expect("tail");
                t.push_back(l);
                if t.len() > 20 {
                    t.pop_front();
                }
            }
        }
    };
    let so = child.stdout.take().expect("piped");
    let se = child.stderr.take().expect("piped");
    let (_, _, status) = tokio::join!(forward(Box::new(so), false), forward(Box::new(se), true), child.wait());
    let status = status?;
    let diagnosis =
        std::fs::read_to_string(&diag).map(|d| masker.mask(d.trim())).unwrap_or_default().chars().take(1000).collect();
    let tail = tail.lock().expect("tail").iter().cloned().collect::<Vec<_>>().join("\n");
    Ok(ExternalEnd { exit_code: status.code(), diagnosis, tail })
}
