//! Subcommands run inside the attempt pod.
//!
//! Exit codes: `checkout` and `agent` exit 0 on success, 1 after writing a [`StepFailure`]
//! (`{"reason","message"}`) to the termination message; `agent` writes an [`AgentReport`] on success.
//! `validate` always exits 0 after writing a verdict; non-zero only when it cannot write one.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::builtin::{self, AgentEnd, AgentStats};
use super::checkout::{self, CheckoutPlan};
use super::context::Masker;
use super::validate::{self, ValidateInput};
use super::{StepEnv, external, process};
use crate::contract::{AgentReport, Outcome, Step, StepFailure, Verdict, env, patch};

/// `healer install-binary --to PATH`: copy this executable to PATH (the pod's shared bin volume).
#[derive(clap::Args, Debug)]
pub struct InstallBinaryArgs {
    /// Where to copy the binary (the pod's `/healer/bin/healer`).
    #[arg(long, env = env::INSTALL_TO)]
    pub to: PathBuf,
}

/// `healer checkout` arguments (everything comes from the step's environment).
#[derive(clap::Args, Debug)]
pub struct CheckoutArgs {}

/// `healer agent` arguments.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {
    /// Run an external agent: write the prompt file, then run the command after `--` in the
    /// workspace with the prompt file's path in its environment (e.g. `healer agent --exec -- ./fix.sh`).
    #[arg(long, env = env::AGENT_EXEC)]
    pub exec: bool,
    /// Only write the prompt file (`prompt.md` in the state dir) and print its path, for images
    /// that run their own agent afterwards.
    #[arg(long, env = env::AGENT_PREPARE_PROMPT, conflicts_with = "exec")]
    pub prepare_prompt: bool,
    /// The external agent's command (with `--exec`).
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// `healer validate` arguments (everything comes from the step's environment).
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {}

/// Copy the running executable to `args.to`, mode 0755. Errors: I/O.
pub fn install_binary(args: InstallBinaryArgs) -> anyhow::Result<ExitCode> {
    let me = std::env::current_exe()?;
    if let Some(dir) = args.to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(&me, &args.to)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.to, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn fail(reason: &str, message: &str, masker: &Masker) -> anyhow::Result<ExitCode> {
    let f = StepFailure { reason: reason.into(), message: super::context::bound(&masker.mask(message), 3000) };
    eprintln!("{}: {}", f.reason, f.message);
    process::write_termination_message(&f.to_termination_message())?;
    Ok(ExitCode::FAILURE)
}

/// `healer checkout`: clone the failing commit into the workspace.
pub async fn checkout(_args: CheckoutArgs) -> anyhow::Result<ExitCode> {
    let masker = Masker::from_env();
    let plan = match CheckoutPlan::from_env() {
        Ok(p) => p,
        Err(e) => return fail(e.reason, &e.message, &masker),
    };
    match checkout::checkout(&plan, &masker).await {
        Ok(sha) => {
            println!("checked out {sha}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(e.reason, &e.message, &masker),
    }
}

/// `healer agent`: fixers then the LLM (built-in), or an external agent (`--exec`).
pub async fn agent(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let env = match StepEnv::from_env(Step::Agent) {
        Ok(e) => e,
        Err(e) => return fail("SettingsInvalid", &e.to_string(), &Masker::from_env()),
    };
    if args.prepare_prompt {
        let p = external::prepare_prompt(&env)?;
        println!("{}", p.display());
        return Ok(ExitCode::SUCCESS);
    }
    let mut stats = AgentStats::default();
    let validation = super::validate::validation_commands(&env.settings, &env.context, &env.workspace);
    let replayed = match args.exec {
        // The built-in agent replays after the repository's opt-out checks.
        false => None,
        true => match super::memory::replay(
            &env.context.memory,
            env.attempt,
            &env.workspace,
            &validation,
            env.settings.validation_timeout(),
            &env.masker,
        )
        .await
        {
            super::memory::Replay::Applied { diagnosis } => Some(diagnosis),
            super::memory::Replay::Dropped { why } => {
                tracing::warn!(%why, "remembered fix dropped");
                None
            }
            super::memory::Replay::None => None,
        },
    };
    let end = if let Some(diagnosis) = replayed {
        stats.method = "memory".into();
        AgentEnd::Changed { diagnosis }
    } else if args.exec {
        stats.method = "external".into();
        if env.settings.fixers.as_ref().is_some_and(|f| !f.is_empty()) {
            let names = env.settings.fixers.clone().unwrap_or_default();
            super::fixers::run_fixers(&names, &env.workspace, env.settings.validation_timeout()).await;
        }
        match external::exec(&env, &args.command).await {
            Err(e) => AgentEnd::Failed { reason: "ExternalAgentNotStarted".into(), message: e.to_string() },
            Ok(x) if x.exit_code == Some(0) => AgentEnd::Changed {
                diagnosis: if x.diagnosis.is_empty() { "the external agent finished".into() } else { x.diagnosis },
            },
            Ok(x) => AgentEnd::Failed {
                reason: "ExternalAgentFailed".into(),
                message: format!(
                    "the external agent exited with {}: {}",
                    x.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "a signal".into()),
                    x.tail
                ),
            },
        }
    } else {
        builtin::run(&env, &mut stats).await
    };
    process::write_record(
        Step::Agent.name(),
        &serde_json::json!({
            "seconds": builtin::seconds(start),
            "tokens": stats.verdict_tokens(),
            "costMicroUsd": stats.priced.then_some(stats.cost_micros),
            "cacheReadTokens": stats.usage.cache_read,
            "cacheWriteTokens": stats.usage.cache_write,
            "turns": stats.turns,
            "requests": stats.requests,
            "toolCalls": stats.tool_calls,
            "method": stats.method,
        }),
    );
    tracing::info!(
        method = %stats.method,
        input_tokens = stats.tokens.input,
        output_tokens = stats.tokens.output,
        cache_read_tokens = stats.usage.cache_read,
        cache_write_tokens = stats.usage.cache_write,
        turns = stats.turns,
        requests = stats.requests,
        tool_calls = stats.tool_calls,
        "agent finished"
    );
    match end {
        AgentEnd::Changed { diagnosis } | AgentEnd::Nothing { diagnosis } => {
            let report = AgentReport { diagnosis: super::context::bound(&env.masker.mask(&diagnosis), 2000) };
            println!("{}", report.diagnosis);
            process::write_termination_message(&report.to_termination_message())?;
            Ok(ExitCode::SUCCESS)
        }
        AgentEnd::Failed { reason, message } => fail(&reason, &message, &env.masker),
    }
}

/// `healer validate`: judge the workspace, write the verdict, print the patch between the delimiters.
pub async fn validate(_args: ValidateArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let env = match StepEnv::from_env(Step::Validate) {
        Ok(e) => e,
        Err(e) => {
            let v = Verdict::new(Outcome::Error, "SettingsInvalid", e.to_string());
            process::write_termination_message(&v.to_termination_message())?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let input = ValidateInput {
        workspace: env.workspace.clone(),
        base: env.base_sha(),
        settings: env.settings.clone(),
        context: env.context.clone(),
    };
    let j = validate::judge(&input, &env.masker).await;
    let mut out = std::io::stdout().lock();
    writeln!(out, "verdict: {} {} — {}", j.verdict.outcome, j.verdict.reason, j.verdict.summary)?;
    if let Some(p) = &j.patch {
        out.write_all(patch::frame(p).as_bytes())?;
    }
    out.flush()?;
    process::write_termination_message(&j.verdict.to_termination_message())?;
    Ok(ExitCode::SUCCESS)
}
