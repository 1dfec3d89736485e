//! The built-in agent: deterministic fixers first, then (when configured and still needed) the LLM
//! loop: prompt → change (diff or whole files) → `git apply` → validation commands → feedback, up to
//! the turn limit and the token budget.

use std::path::Path;
use std::time::Instant;

use super::llm::{self, ChatRequest, Message, ProposedChange, Role};
use super::{StepEnv, diff, fixers, process, prompt, validate};
use crate::contract::TokenUsage;

/// How the agent step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEnd {
    /// The workspace holds a change (validated by the agent or not: the validate step decides).
    Changed { diagnosis: String },
    /// Nothing was changed; a precise reason (`NoUsableChange`, `PatchDoesNotApply`,
    /// `TokenBudgetExhausted`, `ProviderUnreachable`, `ApiKeyMissing` …) and a message.
    Failed { reason: String, message: String },
    /// Nothing to do (no fixer applies, no LLM configured): the validate step will say `NoChange`.
    Nothing { diagnosis: String },
}

/// What the agent used, recorded for the verdict.
#[derive(Debug, Clone, Default)]
pub struct AgentStats {
    pub tokens: TokenUsage,
    pub turns: u32,
    pub method: String,
}

const COMMIT_ENV: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "ci-healer"),
    ("GIT_AUTHOR_EMAIL", "ci-healer@localhost"),
    ("GIT_COMMITTER_NAME", "ci-healer"),
    ("GIT_COMMITTER_EMAIL", "ci-healer@localhost"),
];

async fn has_changes(ws: &Path) -> bool {
    diff::git(ws, &["status", "--porcelain", "--untracked-files=all"])
        .await
        .map(|s| !s.trim().is_empty())
        .unwrap_or(false)
}

/// Commit the current state locally so later turns can return to it (validate diffs against the
/// failing commit, so local commits do not hide anything).
async fn checkpoint(ws: &Path, msg: &str) -> anyhow::Result<()> {
    diff::git(ws, &["add", "--all"]).await?;
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(["commit", "-q", "--no-verify", "--allow-empty", "-m", msg]).current_dir(ws).envs(COMMIT_ENV);
    let out = cmd.output().await?;
    anyhow::ensure!(out.status.success(), "git commit failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

async fn reset_to_checkpoint(ws: &Path) {
    let _ = diff::git(ws, &["reset", "-q", "--hard", "HEAD"]).await;
    let _ = diff::git(ws, &["clean", "-q", "-fd"]).await;
}

/// Run the built-in agent in `env.workspace`.
pub async fn run(env: &StepEnv, stats: &mut AgentStats) -> AgentEnd {
    let ws = &env.workspace;
    let s = &env.settings;
    let validation = validate::validation_commands(s, &env.context, ws);
    let timeout = s.validation_timeout();

    // 1. Fixers.
    let names: Vec<String> = match &s.fixers {
        Some(v) => v.clone(),
        None => {
            fixers::for_class(&env.context.failure_class, &env.context.excerpt).into_iter().map(String::from).collect()
        }
    };
    let runs = fixers::run_fixers(&names, ws, timeout).await;
    let ran: Vec<&str> = runs.iter().filter(|r| r.status == "ran").map(|r| r.name.as_str()).collect();
    for r in &runs {
        tracing::info!(fixer = %r.name, status = r.status, seconds = r.seconds, "fixer");
    }
    let fixed_something = !ran.is_empty() && has_changes(ws).await;
    if fixed_something {
        stats.method = "fixers".into();
        let diagnosis = format!("deterministic fixer(s) {} changed the code", ran.join(", "));
        if validation.is_empty() || validate::run_commands(&validation, ws, timeout, &env.masker).await.is_ok() {
            return AgentEnd::Changed { diagnosis: format!("{diagnosis}; the validation commands pass") };
        }
        if s.llm.is_none() {
            return AgentEnd::Changed { diagnosis: format!("{diagnosis}, but the validation commands still fail") };
        }
    }
    let Some(llm_settings) = s.llm.clone() else {
        return AgentEnd::Nothing {
            diagnosis: if names.is_empty() {
                "no fixer applies to this failure and no LLM is configured for the profile".into()
            } else {
                format!("the fixers ({}) changed nothing and no LLM is configured for the profile", names.join(", "))
            },
        };
    };

    // 2. The LLM loop.
    stats.method = if fixed_something { "fixers+llm".into() } else { "llm".into() };
    let key = match llm::Client::read_key(env.llm_api_key_file.as_deref().and_then(Path::to_str)) {
        Ok(k) => k,
        Err(e) => {
            return AgentEnd::Failed { reason: e.reason().into(), message: e.to_string() };
        }
    };
    let mut masker = env.masker.clone();
    masker.add(&key);
    let client = match llm::Client::new(&llm_settings, key) {
        Ok(c) => c,
        Err(e) => {
            return AgentEnd::Failed { reason: "ProviderClientError".into(), message: e.to_string() };
        }
    };
    if fixed_something && let Err(e) = checkpoint(ws, "ci-healer: fixers").await {
        return AgentEnd::Failed { reason: "WorkspaceError".into(), message: e.to_string() };
    }
    let prompt_text = match env.render_prompt(&llm_settings, &validation, false) {
        Ok(p) => p,
        Err(e) => {
            return AgentEnd::Failed { reason: "PromptTemplateInvalid".into(), message: e.to_string() };
        }
    };
    let _ = std::fs::write(process::state_dir().join("prompt.md"), &prompt_text);

    let mut messages = vec![Message { role: Role::User, content: prompt_text }];
    let mut last: (String, String) = ("NoUsableChange".into(), "the model proposed no change".into());
    let mut diagnosis = String::new();
    let mut applied_any = false;
    for turn in 1..=llm_settings.turns() {
        let used = stats.tokens.total();
        if used >= llm_settings.budget() {
            last = (
                "TokenBudgetExhausted".into(),
                format!("{used} tokens used of a budget of {}", llm_settings.token_budget),
            );
            break;
        }
        stats.turns = turn;
        let req = ChatRequest {
            system: prompt::SYSTEM,
            messages: &messages,
            max_tokens: llm_settings.max_tokens(),
            temperature: llm_settings.temperature,
        };
        let resp = match client.complete(&req).await {
            Ok(r) => r,
            Err(e) => {
                if applied_any {
                    break;
                }
                return AgentEnd::Failed { reason: e.reason().into(), message: masker.mask(&e.to_string()) };
            }
        };
        stats.tokens.add(resp.input_tokens, resp.output_tokens);
        tracing::info!(turn, input_tokens = resp.input_tokens, output_tokens = resp.output_tokens, "model answered");
        let d = llm::diagnosis(&resp.text);
        if !d.is_empty() {
            diagnosis = masker.mask(&d);
        }
        messages.push(Message { role: Role::Assistant, content: resp.text.clone() });
        if applied_any {
            // Each answer is a complete change against the checkpoint, not a delta on the last one.
            reset_to_checkpoint(ws).await;
            applied_any = false;
        }
        let feedback = match llm::parse_change(&resp.text) {
            None => {
                last = (
                    "NoUsableChange".into(),
                    "the model's answer contains no ```diff block and no <file> block".into(),
                );
                "Your answer contained no change in the required format. Answer again with a diagnosis and exactly one ```diff block (or <file path=\"…\"> blocks).".to_string()
            }
            Some(change) => match apply(ws, &change, turn).await {
                Err(e) => {
                    last = ("PatchDoesNotApply".into(), masker.mask(&e));
                    format!(
                        "Your change could not be applied; the workspace was left as it was. `git apply` said:\n```\n{}\n```\nAnswer with a complete change against the files as originally shown, with exact context lines.",
                        masker.mask(&e)
                    )
                }
                Ok(()) if !has_changes(ws).await => {
                    last = ("NoUsableChange".into(), "the model's change leaves the files as they were".into());
                    "Your change leaves the files exactly as they were. Propose a change that fixes the failure."
                        .to_string()
                }
                Ok(()) => {
                    applied_any = true;
                    match validate::run_commands(&validation, ws, s.validation_timeout(), &masker).await {
                        Ok(()) => return AgentEnd::Changed { diagnosis },
                        Err((reason, out)) => {
                            last = (reason.into(), process::last_bytes(&out, 500).to_string());
                            format!(
                                "Your change applied, but validation failed:\n```\n{}\n```\nYour change has been reverted. Answer with a complete corrected change against the files as originally shown.",
                                process::last_bytes(&out, 6000)
                            )
                        }
                    }
                }
            },
        };
        if turn < llm_settings.turns() {
            messages.push(Message { role: Role::User, content: feedback });
        }
    }
    if applied_any || fixed_something {
        let d = if diagnosis.is_empty() {
            format!("the model's change did not pass validation: {}", last.1)
        } else {
            diagnosis
        };
        return AgentEnd::Changed { diagnosis: d };
    }
    AgentEnd::Failed { reason: last.0, message: last.1 }
}

/// Apply a proposed change to `ws`. Errors: `git apply`'s message, or an unsafe file path.
pub async fn apply(ws: &Path, change: &ProposedChange, turn: u32) -> Result<(), String> {
    match change {
        ProposedChange::Diff(d) => {
            let file = process::state_dir().join(format!("turn-{turn}.diff"));
            let _ = std::fs::create_dir_all(process::state_dir());
            std::fs::write(&file, d).map_err(|e| e.to_string())?;
            let f = file.to_string_lossy().to_string();
            let attempts: [&[&str]; 2] =
                [&["apply", "--recount", "--whitespace=nowarn"], &["apply", "--recount", "--whitespace=nowarn", "-C1"]];
            let mut err = String::new();
            for args in attempts {
                let mut a: Vec<&str> = args.to_vec();
                a.push(&f);
                match diff::git(ws, &a).await {
                    Ok(_) => return Ok(()),
                    Err(e) => err = e.to_string(),
                }
            }
            Err(err)
        }
        ProposedChange::Files(files) => {
            for (path, content) in files {
                let rel = Path::new(path.trim_start_matches("./"));
                if rel.is_absolute()
                    || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
                    || rel.starts_with(".git")
                {
                    return Err(format!("refusing to write outside the repository: {path}"));
                }
                let full = ws.join(rel);
                if let Some(dir) = full.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                std::fs::write(&full, content).map_err(|e| format!("cannot write {path}: {e}"))?;
            }
            Ok(())
        }
    }
}

/// Seconds since `start`, for records.
pub fn seconds(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}
