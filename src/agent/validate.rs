//! `healer validate`: judges the workspace independently of the agent.
//!
//! Order: diff against the failing commit → refuse when empty (`NoChange`), touching protected paths
//! (`ProtectedPath`), weakening tests (`TestWeakened`) or too large (`PatchTooLarge`) → run the
//! validation commands (`ValidationFailed`, `ValidationTimedOut`) → `ValidationPassed`. Nothing the
//! agent wrote is read except the workspace itself and its token count (for the verdict's record).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::context::{FailureContext, Masker};
use super::diff::{self, DEFAULT_PROTECTED};
use super::{fixers, process};
use crate::contract::{AgentSettings, Outcome, Step, StepDurations, TokenUsage, Verdict};

/// What validation needs.
#[derive(Debug, Clone)]
pub struct ValidateInput {
    pub workspace: PathBuf,
    /// The failing commit (full SHA from the checkout record, or the head SHA the controller sent).
    pub base: String,
    pub settings: AgentSettings,
    pub context: FailureContext,
}

/// The verdict and, when the change is non-empty and within caps, the patch (for the log).
#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    pub patch: Option<String>,
}

/// The validation commands in force: the profile's, else the failure class's defaults.
pub fn validation_commands(settings: &AgentSettings, ctx: &FailureContext, ws: &Path) -> Vec<String> {
    if !settings.validation_commands.is_empty() {
        return settings.validation_commands.clone();
    }
    let named: Option<Vec<String>> =
        settings.fixers.as_ref().filter(|f| !f.is_empty()).map(|names| {
            names.iter().filter_map(|n| fixers::by_name(n)).map(|f| fixers::check_command(f, ws)).collect()
        });
    match named {
        Some(v) if !v.is_empty() => v,
        _ => fixers::default_validation(&ctx.failure_class, &ctx.excerpt, ws),
    }
}

/// Run `commands` in order in `ws`; the first failure is returned as `(reason, summary)`.
pub async fn run_commands(
    commands: &[String],
    ws: &Path,
    timeout: Duration,
    masker: &Masker,
) -> Result<(), (&'static str, String)> {
    for c in commands {
        match process::shell(c, ws, timeout).await {
            Ok(o) if o.success() => {}
            Ok(o) if o.timed_out => {
                return Err(("ValidationTimedOut", format!("`{c}` did not finish within {}s", timeout.as_secs())));
            }
            Ok(o) => {
                let out = masker.mask(&super::context::strip_control(process::last_bytes(&o.output, 4000)));
                let code = o.code.map(|c| c.to_string()).unwrap_or_else(|| "signal".into());
                return Err(("ValidationFailed", format!("`{c}` failed (exit {code}):\n{out}")));
            }
            Err(e) => return Err(("ValidationFailed", format!("`{c}` could not start: {e}"))),
        }
    }
    Ok(())
}

/// Judge the workspace. Never fails: problems become an `error` verdict.
pub async fn judge(input: &ValidateInput, masker: &Masker) -> Judgement {
    let start = Instant::now();
    let mut j = judge_inner(input, masker).await;
    let mut d = StepDurations {
        checkout_seconds: process::read_record(Step::Checkout.name()).and_then(|r| r["seconds"].as_f64()),
        agent_seconds: process::read_record(Step::Agent.name()).and_then(|r| r["seconds"].as_f64()),
        validate_seconds: None,
    };
    d.validate_seconds = Some(start.elapsed().as_secs_f64());
    j.verdict.durations = Some(d);
    j.verdict.tokens = process::read_record(Step::Agent.name())
        .and_then(|r| serde_json::from_value::<TokenUsage>(r["tokens"].clone()).ok())
        .filter(|t| t.total() > 0);
    j.verdict.summary = masker.mask(&j.verdict.summary);
    j
}

fn verdict(outcome: Outcome, reason: &str, summary: impl Into<String>) -> Verdict {
    Verdict::new(outcome, reason, summary)
}

async fn judge_inner(input: &ValidateInput, masker: &Masker) -> Judgement {
    let ws = &input.workspace;
    if !ws.join(".git").exists() {
        return Judgement {
            verdict: verdict(Outcome::Error, "WorkspaceMissing", format!("no git checkout at {}", ws.display())),
            patch: None,
        };
    }
    let d = match diff::workspace_diff(ws, &input.base).await {
        Ok(d) => d,
        Err(e) => {
            return Judgement { verdict: verdict(Outcome::Error, "DiffFailed", e.to_string()), patch: None };
        }
    };
    if d.is_empty() {
        return Judgement {
            verdict: verdict(Outcome::Refused, "NoChange", "the agent left the workspace unchanged"),
            patch: None,
        };
    }
    let stat = d.diffstat();
    let sha = hex::encode(Sha256::digest(d.patch.as_bytes()));
    let with = |mut v: Verdict, keep_patch: bool| {
        v.diffstat = Some(stat.clone());
        if keep_patch {
            v.patch_sha256 = Some(sha.clone());
        }
        Judgement { verdict: v, patch: keep_patch.then(|| d.patch.clone()) }
    };
    let s = &input.settings;
    if let Some(why) = diff::too_large(&d, s.files_cap(), s.lines_cap()) {
        return with(verdict(Outcome::Refused, "PatchTooLarge", why), false);
    }
    let mut globs: Vec<String> =
        if s.default_protected_paths { DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect() } else { vec![] };
    globs.extend(s.protected_paths.iter().cloned());
    // The repository's own config, read at the failing commit (never from the changed workspace).
    let repo = super::repo_config::merge(
        super::instructions::at_revision(ws, &input.base, super::repo_config::PATH).as_deref(),
        &s.repository_config,
        "",
        &validation_commands(s, &input.context, ws),
        None,
    );
    globs.extend(repo.protected_paths.iter().cloned());
    match diff::protected_set(&globs) {
        Ok(set) => {
            if let Some(p) = diff::protected_hit(&d.files, &set) {
                return with(
                    verdict(Outcome::Refused, "ProtectedPath", format!("the change touches the protected path {p}")),
                    true,
                );
            }
        }
        Err(e) => {
            return with(verdict(Outcome::Error, "InvalidProtectedPath", e.to_string()), false);
        }
    }
    if let Some(why) = diff::weakened_tests(&d) {
        return with(verdict(Outcome::Refused, "TestWeakened", why), true);
    }
    let commands = repo.validation_commands;
    if commands.is_empty() {
        return with(
            verdict(
                Outcome::Error,
                "NoValidationCommands",
                format!(
                    "no validation commands are configured or known for failure class {}",
                    input.context.failure_class
                ),
            ),
            true,
        );
    }
    match run_commands(&commands, ws, s.validation_timeout(), masker).await {
        Ok(()) => with(
            verdict(
                Outcome::Passed,
                "ValidationPassed",
                format!("{} file(s) changed; passed: {}", stat.files, commands.join("; ")),
            ),
            true,
        ),
        Err((reason, summary)) => with(verdict(Outcome::Failed, reason, summary), true),
    }
}
