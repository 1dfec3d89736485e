//! The built-in agent: deterministic fixers first, then (when configured and still needed) the LLM.
//!
//! The LLM works in one of two modes:
//! - **tools** (default): the model reads, searches and edits the repository through the tools of
//!   [`super::tools`] (Anthropic tool use, OpenAI function calling), runs the validation commands and
//!   calls `finish`; ci-healer validates once more and sends failures back. A plain text answer with
//!   a ```diff block is applied too (on top of the current files).
//! - **diff**, for OpenAI-compatible servers without tool support (a `400` that names tools on the
//!   first request switches to it): each answer is a complete change against the failing commit
//!   (```diff or `<file>` blocks), applied with `git apply`, validated, and fed back.
//!
//! Both are bounded by `maxTurns` (a turn ends when the model stops calling tools and its change is
//! validated), the token budget (each request's `max_tokens` is cut to what is left), a request count
//! and wall time ([`ToolLimits`]). Every stop reason is handled: a cut-off answer (`max_tokens`,
//! `length`) is never applied and is asked again with a note; an empty answer is never sent back as
//! an empty turn; `pause_turn` is continued; a refusal ends the attempt with `ProviderRefused`, a
//! content filter with `ProviderContentFiltered`.

use std::path::Path;
use std::time::{Duration, Instant};

use super::llm::{self, Block, ChatRequest, ChatResponse, LlmError, Message, ProposedChange, Role, StopReason, Usage};
use super::tools::{ToolLimits, ToolOutcome, Toolbox};
use super::{StepEnv, cost, diff, fixers, process, prompt, validate};
use crate::contract::TokenUsage;

/// How the agent step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEnd {
    /// The workspace holds a change (validated by the agent or not: the validate step decides).
    Changed {
        /// What was wrong and what the change does.
        diagnosis: String,
    },
    /// Nothing was changed, or the attempt must end; a precise reason (`NoUsableChange`,
    /// `PatchDoesNotApply`, `BudgetExhausted`, `ProviderRefused`, `ProviderContentFiltered`,
    /// `AnswerTruncated`, `ContextWindowExceeded`, `ProviderUnreachable`, `ApiKeyMissing` …) and a message.
    Failed {
        /// The stable reason.
        reason: String,
        /// For people (masked).
        message: String,
    },
    /// Nothing to do (no fixer applies, no LLM configured): the validate step will say `NoChange`.
    Nothing {
        /// Why nothing was tried.
        diagnosis: String,
    },
}

/// What the agent used, recorded for the verdict.
#[derive(Debug, Clone, Default)]
pub struct AgentStats {
    /// Input and output tokens (input includes cached tokens), for the verdict.
    pub tokens: TokenUsage,
    /// The same with the cache reads and writes, as the provider reported them.
    pub usage: Usage,
    /// Completed turns (a change proposed and validated, or an answer without a change).
    pub turns: u32,
    /// Model requests made (tool round trips included).
    pub requests: u32,
    /// Tool calls made.
    pub tool_calls: u32,
    /// `fixers`, `llm`, `fixers+llm`, `external`; with `/tools` or `/diff` for the LLM's mode.
    pub method: String,
    /// Micro-dollars spent (when the profile has a price).
    pub cost_micros: u64,
    /// Whether a price was known (so `cost_micros` means something).
    pub priced: bool,
}

impl AgentStats {
    /// The usage as the verdict carries it: tokens with the cache parts, and the cost when priced.
    pub fn verdict_tokens(&self) -> TokenUsage {
        let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        TokenUsage {
            cache_read: i(self.usage.cache_read),
            cache_write: i(self.usage.cache_write),
            cost_micro_usd: self.priced.then(|| i(self.cost_micros)),
            ..self.tokens.clone()
        }
    }
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
async fn checkpoint(ws: &Path, msg: &str) -> Result<(), diff::GitError> {
    diff::git(ws, &["add", "--all"]).await?;
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(["commit", "-q", "--no-verify", "--allow-empty", "-m", msg]).current_dir(ws).envs(COMMIT_ENV);
    let out = cmd.output().await?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(diff::GitError::Failed { command: "commit".into(), stderr });
    }
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
    let repo = env.repo_config(&validate::validation_commands(s, &env.context, ws));
    if repo.opted_out {
        return AgentEnd::Failed {
            reason: "RepositoryOptedOut".into(),
            message: format!("{} sets `enabled: false`; nothing is changed", super::repo_config::PATH),
        };
    }
    if let Some(g) = &repo.branch_never_fixed {
        return AgentEnd::Failed {
            reason: "BranchNeverFixed".into(),
            message: format!(
                "the branch {} matches neverFixBranches {g:?} of {}",
                env.branch,
                super::repo_config::PATH
            ),
        };
    }
    let validation = repo.validation_commands.clone();
    let timeout = s.validation_timeout();

    // 0. A remembered fix of the same error (first attempt only, no model).
    match super::memory::replay(&env.context.memory, env.attempt, ws, &validation, timeout, &env.masker).await {
        super::memory::Replay::Applied { diagnosis } => {
            stats.method = "memory".into();
            return AgentEnd::Changed { diagnosis };
        }
        super::memory::Replay::Dropped { why } => tracing::warn!(%why, "remembered fix dropped"),
        super::memory::Replay::None => {}
    }

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

    // 2. The LLM.
    stats.method = if fixed_something { "fixers+llm".into() } else { "llm".into() };
    // The key stays in the `llm-proxy` sidecar: this step (and the repository's code it runs)
    // only knows the proxy's loopback URL.
    let Some(proxy_url) = env.llm_proxy_url.as_deref() else {
        let e = llm::Client::no_proxy();
        return AgentEnd::Failed { reason: e.reason().into(), message: e.to_string() };
    };
    let masker = env.masker.clone();
    let client = match llm::Client::through_proxy(&llm_settings, proxy_url) {
        Ok(c) => c,
        Err(e) => {
            return AgentEnd::Failed { reason: "ProviderClientError".into(), message: e.to_string() };
        }
    };
    if fixed_something && let Err(e) = checkpoint(ws, "ci-healer: fixers").await {
        return AgentEnd::Failed { reason: "WorkspaceError".into(), message: e.to_string() };
    }
    let mut globs: Vec<String> = if s.default_protected_paths {
        diff::DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect()
    } else {
        vec![]
    };
    globs.extend(s.protected_paths.iter().cloned());
    globs.extend(repo.protected_paths.iter().cloned());
    let protected = match diff::protected_set(&globs) {
        Ok(p) => p,
        Err(e) => return AgentEnd::Failed { reason: "InvalidProtectedPath".into(), message: e.to_string() },
    };
    if let Err(e) = llm_settings.check_money() {
        return AgentEnd::Failed { reason: "SettingsInvalid".into(), message: e };
    }
    let prices = match llm_settings.price.as_ref().map(cost::Prices::from_settings).transpose() {
        Ok(p) => p,
        Err(e) => return AgentEnd::Failed { reason: "SettingsInvalid".into(), message: e },
    };
    let cost_budget = match llm_settings.cost_budget_usd.as_deref().map(cost::parse_usd).transpose() {
        Ok(b) => b,
        Err(e) => return AgentEnd::Failed { reason: "SettingsInvalid".into(), message: e },
    };
    let temperature = match llm_settings.temperature {
        Some(t) if !llm::takes_temperature(llm_settings.provider, &llm_settings.model) => {
            tracing::warn!(
                temperature = t,
                model = %llm_settings.model,
                "the profile sets a temperature, but this model family takes none; it is not sent"
            );
            None
        }
        t => t,
    };
    let limits = ToolLimits {
        max_requests: llm_settings.requests(),
        wall_time: llm_settings.loop_timeout(),
        max_output_bytes: llm_settings.tool_output_cap(),
        ..ToolLimits::default()
    };
    stats.priced = prices.is_some();
    let mut session = Session {
        client: &client,
        masker: &masker,
        limits,
        max_tokens_per_turn: llm_settings.max_tokens().max(1),
        token_budget: llm_settings.budget(),
        temperature,
        cache: llm_settings.prompt_caching,
        prices,
        cost_budget,
        started: Instant::now(),
        last_input: 0,
        stats,
    };
    let max_turns = llm_settings.turns();
    let mut mode = if llm_settings.tool_use { prompt::Mode::Tools } else { prompt::Mode::Diff };
    loop {
        let prompt_text = match env.render_prompt(&llm_settings, &validation, mode) {
            Ok(p) => p,
            Err(e) => {
                return AgentEnd::Failed { reason: "PromptTemplateInvalid".into(), message: e.to_string() };
            }
        };
        let _ = std::fs::write(process::state_dir().join("prompt.md"), &prompt_text);
        let base = session.stats.method.split('/').next().unwrap_or("llm").to_string();
        session.stats.method = format!("{base}/{}", if mode == prompt::Mode::Tools { "tools" } else { "diff" });
        let end = match mode {
            prompt::Mode::Tools => {
                let mut toolbox =
                    Toolbox::new(ws, validation.clone(), timeout, &masker, protected.clone(), session.limits.clone());
                let end = tool_loop(&mut session, &mut toolbox, prompt_text, max_turns, ws).await;
                session.stats.tool_calls += toolbox.calls;
                end
            }
            _ => diff_loop(&mut session, prompt_text, max_turns, ws, &validation, timeout, fixed_something).await,
        };
        match end {
            LoopEnd::ToolsUnsupported(detail) if mode == prompt::Mode::Tools => {
                tracing::warn!(%detail, "the provider does not take tools; answering in the diff format");
                mode = prompt::Mode::Diff;
            }
            LoopEnd::ToolsUnsupported(detail) => {
                return AgentEnd::Failed { reason: "ProviderRejected".into(), message: detail };
            }
            LoopEnd::Done(end) => {
                if fixed_something
                    && let AgentEnd::Failed { reason, .. } = &end
                    && !matches!(reason.as_str(), "ProviderRefused" | "ProviderContentFiltered")
                {
                    return AgentEnd::Changed {
                        diagnosis: "deterministic fixers changed the code, but the validation commands still fail"
                            .into(),
                    };
                }
                return end;
            }
        }
    }
}

/// How a loop ended.
enum LoopEnd {
    Done(AgentEnd),
    /// The first request with tools was rejected for them (HTTP 400/422 naming tools).
    ToolsUnsupported(String),
}

/// One conversation with a provider: limits, budget and usage.
struct Session<'a> {
    client: &'a llm::Client,
    masker: &'a super::context::Masker,
    limits: ToolLimits,
    max_tokens_per_turn: u32,
    token_budget: u64,
    temperature: Option<f32>,
    /// Mark cache breakpoints.
    cache: bool,
    /// The model's prices, when known.
    prices: Option<cost::Prices>,
    /// Most micro-dollars the attempt may spend.
    cost_budget: Option<u64>,
    started: Instant,
    /// Input tokens of the last request (the conversation only grows: the next one is at least that).
    last_input: u64,
    stats: &'a mut AgentStats,
}

/// Why [`Session::ask`] gave no usable answer.
enum AskEnd {
    End(AgentEnd),
    ToolsUnsupported(String),
}

fn failed(reason: &str, message: impl Into<String>) -> AskEnd {
    AskEnd::End(AgentEnd::Failed { reason: reason.into(), message: message.into() })
}

/// Most times in a row an answer may be cut off or empty before the attempt gives up.
const MAX_RETRIES_IN_A_ROW: u32 = 2;

/// Add `blocks` to the conversation as user content, merged into the last message when it is a user
/// message (the turns stay alternating).
fn push_user(messages: &mut Vec<Message>, blocks: Vec<Block>) {
    match messages.last_mut() {
        Some(m) if m.role == Role::User => m.blocks.extend(blocks),
        _ => messages.push(Message { role: Role::User, blocks }),
    }
}

fn approx_tokens(messages: &[Message]) -> u64 {
    let bytes: usize = messages
        .iter()
        .flat_map(|m| &m.blocks)
        .map(|b| match b {
            Block::Text(t) => t.len(),
            Block::ToolUse { input, .. } => input.to_string().len(),
            Block::ToolResult { content, .. } => content.len(),
            Block::Raw(v) => v.to_string().len(),
        })
        .sum();
    (bytes / 4) as u64
}

impl Session<'_> {
    fn used(&self) -> u64 {
        self.stats.tokens.total()
    }

    /// One complete, usable answer (`end_turn`, `stop_sequence` or `tool_use`, with content), with
    /// retries for what can be retried: a cut-off answer is kept out of the workspace and asked again
    /// with a note; an empty one too; `pause_turn` is continued. Every other stop ends the attempt.
    async fn ask(&mut self, messages: &mut Vec<Message>, tools: &[llm::ToolSpec]) -> Result<ChatResponse, AskEnd> {
        let mut in_a_row = 0;
        loop {
            if self.stats.requests >= self.limits.max_requests {
                return Err(failed(
                    "AgentLimitReached",
                    format!("{} model requests made, the limit", self.stats.requests),
                ));
            }
            if self.started.elapsed() >= self.limits.wall_time {
                return Err(failed(
                    "AgentTimedOut",
                    format!("the agent ran for {}s, its limit", self.limits.wall_time.as_secs()),
                ));
            }
            // Budget within the turn: the answer may use what is left after the input, which is at
            // least as long as the last one plus what was added since.
            let used = self.used();
            let input_estimate = self.last_input.max(approx_tokens(messages));
            let left = self.token_budget.saturating_sub(used).saturating_sub(input_estimate);
            if left < 256.min(self.max_tokens_per_turn as u64) {
                return Err(failed(
                    "BudgetExhausted",
                    format!(
                        "{used} tokens used of a budget of {}; the next request needs about {input_estimate} input tokens",
                        self.token_budget
                    ),
                ));
            }
            let mut max_tokens = (self.max_tokens_per_turn as u64).min(left) as u32;
            if let (Some(p), Some(budget)) = (self.prices, self.cost_budget) {
                let spent = self.stats.cost_micros;
                // With caching, what was sent before is read from the cache; the rest is new input.
                let (cached, fresh) = if self.cache {
                    (self.last_input.min(input_estimate), input_estimate.saturating_sub(self.last_input))
                } else {
                    (0, input_estimate)
                };
                let affordable = p.output_tokens_for(budget.saturating_sub(spent), cached, fresh);
                if affordable < 256.min(self.max_tokens_per_turn as u64) {
                    return Err(failed(
                        "BudgetExhausted",
                        format!(
                            "{} USD spent of a budget of {} USD; the next request needs about {input_estimate} input tokens",
                            cost::format_usd(spent),
                            cost::format_usd(budget)
                        ),
                    ));
                }
                max_tokens = max_tokens.min(u32::try_from(affordable).unwrap_or(u32::MAX));
            }
            let budget_limited = max_tokens < self.max_tokens_per_turn;
            let req = ChatRequest {
                system: prompt::SYSTEM,
                messages,
                max_tokens,
                temperature: self.temperature,
                tools,
                cache: self.cache,
            };
            self.stats.requests += 1;
            let resp = match self.client.complete(&req).await {
                Ok(r) => r,
                Err(LlmError::Rejected { status, detail })
                    if !tools.is_empty()
                        && self.stats.requests == 1
                        && self.client.provider() == crate::contract::LlmProvider::OpenaiCompatible
                        && matches!(status, 400 | 422)
                        && detail.to_ascii_lowercase().contains("tool") =>
                {
                    self.stats.requests = 0;
                    return Err(AskEnd::ToolsUnsupported(format!("HTTP {status}: {detail}")));
                }
                Err(e) => return Err(failed(e.reason(), self.masker.mask(&e.to_string()))),
            };
            self.last_input = resp.usage.input;
            self.stats.usage += resp.usage;
            self.stats.tokens.add(resp.usage.input, resp.usage.output);
            if let Some(p) = self.prices {
                self.stats.cost_micros = p.cost(&self.stats.usage);
            }
            tracing::info!(
                request = self.stats.requests,
                input_tokens = resp.usage.input,
                output_tokens = resp.usage.output,
                cache_read_tokens = resp.usage.cache_read,
                cache_write_tokens = resp.usage.cache_write,
                max_tokens,
                stop = ?resp.stop,
                tool_calls = resp.tool_uses().count(),
                "model answered"
            );
            let answer = resp.to_message();
            match &resp.stop {
                StopReason::Refusal => {
                    let text = [resp.text().trim().to_string(), resp.refusal.clone().unwrap_or_default()]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect::<Vec<_>>()
                        .join(" — ");
                    let text = if text.is_empty() { "(no text given)".to_string() } else { text };
                    return Err(failed("ProviderRefused", self.masker.mask(&format!("the model refused: {text}"))));
                }
                StopReason::ContentFilter => {
                    return Err(failed(
                        "ProviderContentFiltered",
                        "the provider withheld the answer (finish_reason content_filter)",
                    ));
                }
                StopReason::ContextWindowExceeded => {
                    return Err(failed(
                        "ContextWindowExceeded",
                        format!(
                            "the conversation ({} input tokens) no longer fits the model's context window",
                            resp.usage.input
                        ),
                    ));
                }
                StopReason::PauseTurn => {
                    // Send the paused turn back as it is; the provider continues it.
                    if !answer.is_empty() {
                        messages.push(answer);
                    }
                    continue;
                }
                StopReason::MaxTokens => {
                    if budget_limited {
                        return Err(failed(
                            "BudgetExhausted",
                            format!(
                                "the answer was cut off at {max_tokens} tokens, all that was left of the budget of {} ({} used)",
                                self.token_budget,
                                self.used()
                            ),
                        ));
                    }
                    in_a_row += 1;
                    if in_a_row > MAX_RETRIES_IN_A_ROW {
                        return Err(failed(
                            "AnswerTruncated",
                            format!(
                                "{in_a_row} answers in a row were cut off at the output limit of {max_tokens} tokens"
                            ),
                        ));
                    }
                    let note = format!(
                        "Your previous answer was cut off at the output limit of {max_tokens} tokens, so none of it was applied or run. \
                         Answer again, more briefly: smaller steps, edit_file with short exact strings, or a shorter diff."
                    );
                    let mut results = Vec::new();
                    for (id, _, _) in resp.tool_uses() {
                        results.push(Block::ToolResult {
                            tool_use_id: id.to_string(),
                            content: "not run: the answer was cut off".into(),
                            is_error: true,
                        });
                    }
                    if !answer.is_empty() {
                        messages.push(answer);
                    }
                    results.push(Block::Text(note));
                    push_user(messages, results);
                    continue;
                }
                StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse | StopReason::Other(_) => {
                    if answer.is_empty() {
                        in_a_row += 1;
                        if in_a_row > MAX_RETRIES_IN_A_ROW {
                            return Err(failed(
                                "NoUsableChange",
                                format!("the model answered with empty content {in_a_row} times in a row"),
                            ));
                        }
                        push_user(
                            messages,
                            vec![Block::Text("Your previous answer was empty. Continue with the task.".into())],
                        );
                        continue;
                    }
                    messages.push(answer);
                    return Ok(resp);
                }
            }
        }
    }
}

/// The tool loop (see the module doc).
async fn tool_loop(
    session: &mut Session<'_>,
    toolbox: &mut Toolbox<'_>,
    prompt_text: String,
    max_turns: u32,
    ws: &Path,
) -> LoopEnd {
    let specs = toolbox.specs();
    let mut messages = vec![Message::user(prompt_text)];
    let mut last: (String, String) = ("NoUsableChange".into(), "the model proposed no change".into());
    let mut diagnosis = String::new();
    loop {
        let resp = match session.ask(&mut messages, &specs).await {
            Ok(r) => r,
            Err(AskEnd::ToolsUnsupported(d)) => return LoopEnd::ToolsUnsupported(d),
            Err(AskEnd::End(end)) => return LoopEnd::Done(end_with_changes(end, ws, &diagnosis).await),
        };
        let d = llm::diagnosis(&resp.text());
        if !d.is_empty() {
            diagnosis = session.masker.mask(&d);
        }
        let calls: Vec<(String, String, serde_json::Value)> =
            resp.tool_uses().map(|(i, n, v)| (i.to_string(), n.to_string(), v.clone())).collect();
        let mut feedback: Vec<Block> = Vec::new();
        let turn_ended;
        if !calls.is_empty() {
            let mut finished = false;
            for (id, name, input) in calls {
                let (content, is_error) = match toolbox.call(&name, &input).await {
                    ToolOutcome::Result { content, is_error } => (content, is_error),
                    ToolOutcome::Finish { diagnosis: d } => {
                        if !d.trim().is_empty() {
                            diagnosis = d;
                        }
                        finished = true;
                        match finish(toolbox, ws).await {
                            Ok(msg) => {
                                session.stats.turns += 1;
                                return LoopEnd::Done(AgentEnd::Changed { diagnosis: or_default(&diagnosis, &msg) });
                            }
                            Err((reason, out)) => {
                                last = (reason.clone(), process::last_bytes(&out, 500).to_string());
                                (out, true)
                            }
                        }
                    }
                };
                feedback.push(Block::ToolResult { tool_use_id: id, content, is_error });
            }
            turn_ended = finished;
        } else {
            // A text answer: a change in the diff format, or the model thinks it is done.
            turn_ended = true;
            let text = resp.text();
            let outcome = match llm::parse_change(&text) {
                Some(change) => match apply(ws, &change, session.stats.requests).await {
                    Err(e) => {
                        last = ("PatchDoesNotApply".into(), session.masker.mask(&e));
                        Err(format!(
                            "Your change could not be applied; the files were left as they were. `git apply` said:\n```\n{}\n```\nUse edit_file (exact strings) or answer with a diff against the current files.",
                            session.masker.mask(&e)
                        ))
                    }
                    Ok(()) => {
                        toolbox.validated = None;
                        finish(toolbox, ws).await.map_err(|(reason, out)| {
                            last = (reason, process::last_bytes(&out, 500).to_string());
                            out
                        })
                    }
                },
                None if has_changes(ws).await => finish(toolbox, ws).await.map_err(|(reason, out)| {
                    last = (reason, process::last_bytes(&out, 500).to_string());
                    out
                }),
                None => {
                    last = ("NoUsableChange".into(), "the model's answer contains no change".into());
                    Err("Your answer contained no change in the required format. Change the files with the tools (edit_file, write_file) or answer with exactly one ```diff block, then call finish.".to_string())
                }
            };
            match outcome {
                Ok(msg) => {
                    session.stats.turns += 1;
                    return LoopEnd::Done(AgentEnd::Changed { diagnosis: or_default(&diagnosis, &msg) });
                }
                Err(f) => feedback.push(Block::Text(f)),
            }
        }
        if turn_ended {
            session.stats.turns += 1;
            if session.stats.turns >= max_turns {
                break;
            }
            let left = max_turns - session.stats.turns;
            feedback.push(Block::Text(format!("({left} turn(s) left.)")));
        }
        push_user(&mut messages, feedback);
    }
    LoopEnd::Done(end_with_changes(AgentEnd::Failed { reason: last.0, message: last.1 }, ws, &diagnosis).await)
}

fn or_default(diagnosis: &str, msg: &str) -> String {
    if diagnosis.trim().is_empty() { msg.to_string() } else { diagnosis.to_string() }
}

/// `finish`: the change must exist and pass validation. `Ok` with a summary, else the reason and
/// the text for the model.
async fn finish(toolbox: &mut Toolbox<'_>, ws: &Path) -> Result<String, (String, String)> {
    if !has_changes(ws).await {
        return Err((
            "NoUsableChange".into(),
            "Nothing is changed yet: the files are as they were at the failing commit. Fix the cause with edit_file or write_file, then call finish.".into(),
        ));
    }
    if toolbox.validated == Some(true) {
        return Ok("the model's change passes the validation commands".into());
    }
    match toolbox.validate(None).await {
        Ok(s) => Ok(format!("the model's change passes the validation commands ({s})")),
        Err(out) => Err((
            "ValidationFailed".into(),
            format!(
                "Not finished: the validation commands fail on the current files:\n```\n{out}\n```\nFix the cause and call finish again."
            ),
        )),
    }
}

/// A loop that ends without a validated change: keep what the workspace holds for the validate step
/// when the end is not one that must stop the attempt.
async fn end_with_changes(end: AgentEnd, ws: &Path, diagnosis: &str) -> AgentEnd {
    match end {
        AgentEnd::Failed { reason, message }
            if !matches!(reason.as_str(), "ProviderRefused" | "ProviderContentFiltered") && has_changes(ws).await =>
        {
            AgentEnd::Changed {
                diagnosis: if diagnosis.is_empty() {
                    format!("the model's change did not pass validation ({reason}): {message}")
                } else {
                    diagnosis.to_string()
                },
            }
        }
        other => other,
    }
}

/// The diff loop (see the module doc): each answer is a complete change against the checkpoint.
async fn diff_loop(
    session: &mut Session<'_>,
    prompt_text: String,
    max_turns: u32,
    ws: &Path,
    validation: &[String],
    timeout: Duration,
    fixed_something: bool,
) -> LoopEnd {
    let masker = session.masker;
    let mut messages = vec![Message::user(prompt_text)];
    let mut last: (String, String) = ("NoUsableChange".into(), "the model proposed no change".into());
    let mut diagnosis = String::new();
    let mut applied_any = false;
    for turn in 1..=max_turns {
        let resp = match session.ask(&mut messages, &[]).await {
            Ok(r) => r,
            Err(AskEnd::ToolsUnsupported(d)) => return LoopEnd::ToolsUnsupported(d),
            Err(AskEnd::End(AgentEnd::Failed { reason, message })) => {
                if applied_any && !matches!(reason.as_str(), "ProviderRefused" | "ProviderContentFiltered") {
                    break;
                }
                return LoopEnd::Done(AgentEnd::Failed { reason, message });
            }
            Err(AskEnd::End(end)) => return LoopEnd::Done(end),
        };
        session.stats.turns = turn;
        let text = resp.text();
        let d = llm::diagnosis(&text);
        if !d.is_empty() {
            diagnosis = masker.mask(&d);
        }
        if applied_any {
            // Each answer is a complete change against the checkpoint, not a delta on the last one.
            reset_to_checkpoint(ws).await;
            applied_any = false;
        }
        let feedback = match llm::parse_change(&text) {
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
                    match validate::run_commands(validation, ws, timeout, masker).await {
                        Ok(()) => return LoopEnd::Done(AgentEnd::Changed { diagnosis }),
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
        if turn < max_turns {
            push_user(&mut messages, vec![Block::Text(feedback)]);
        }
    }
    if applied_any || fixed_something {
        let d = if diagnosis.is_empty() {
            format!("the model's change did not pass validation: {}", last.1)
        } else {
            diagnosis
        };
        return LoopEnd::Done(AgentEnd::Changed { diagnosis: d });
    }
    LoopEnd::Done(AgentEnd::Failed { reason: last.0, message: last.1 })
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
