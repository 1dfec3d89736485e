//! HealingCommand reconcile: one `/healer` comment, answered once.
//!
//! Observe (the command, the runs of its namespace, the author's permission when needed) → decide
//! ([`decide`], pure) → act (relay the action to the run's `spec.action`, start a run for
//! `/healer fix`, react on the comment, reply) → write status, an Event, the metric
//! `cihealer_commands_total{command,outcome}` and a log line.
//!
//! | comment                  | needs             | result                                                    |
//! |--------------------------|-------------------|-----------------------------------------------------------|
//! | a Bot's, ci-healer's own | –                 | Ignored; nothing posted                                   |
//! | `/healer help`           | –                 | Applied; a reply listing the commands                     |
//! | `/healer <unknown>`      | –                 | Refused; a reply listing the commands                     |
//! | any other command        | write access      | else Refused, with a reply saying why                     |
//! | `abort`, `approve`, `deny [reason]`, `retry [hint]`, `resolve` | a run about the PR | Relayed (`eyes`), then Applied (`+1`) or Refused (`-1` and a reply quoting the run) |
//! | `fix`                    | a failed check on the PR's head | a new run (`+1`), or a reply that it exists   |
//!
//! Exactly once: the relayed request carries `actionRequest.id: comment-<comment id>`, which the
//! run's `status.history` records, so a restart finds the request in the run (pending or handled)
//! instead of sending it again. Replies carry a hidden marker and are looked up before posting;
//! reactions are kept in `status.reactions`. A transient GitHub or API failure is retried with
//! backoff. A command about a run is owned by that run (garbage-collected with it); a finished
//! command about no run is deleted `actions.commandTtlSeconds` after its creation.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::apply::{self, Notice};
use super::{Context, Error, FIELD_MANAGER, Result, actions, instrumented};
use crate::crd::conditions::{self, CommandCondition, Reason};
use crate::crd::run::{ActionRecord, ActionRequest, ActionResult, ActionSource};
use crate::crd::{
    CommandPhase, FailureSource, HealingCommand, HealingCommandStatus, HealingRun, Provider, RunAction, SourceEvent,
};
use crate::github::{LatestFailure, Target};

/// Permissions that may command (`GET /repos/{owner}/{repo}/collaborators/{username}/permission`).
pub const COMMANDING_PERMISSIONS: [&str; 3] = ["admin", "maintain", "write"];

/// Most characters of a `deny` reason kept (`actionRequest.reason`'s schema bound).
pub const MAX_REASON: usize = 1024;
/// Most characters of a `retry` hint kept (`actionRequest.hint`'s schema bound).
pub const MAX_HINT: usize = 4096;

/// How often a relayed command looks at its run when no watch event woke it.
const RELAYED_RECHECK: Duration = Duration::from_secs(30);
/// How long a command waits while its run still holds another person's unhandled request.
const BUSY_RECHECK: Duration = Duration::from_secs(3);

/// The annotation naming the HealingCommand that started a run (`/healer fix`).
pub const COMMAND_ANNOTATION: &str = "cihealer.dev/command";

/// The label value of runs `/healer fix` starts (`app.kubernetes.io/created-by`).
pub const CREATED_BY_COMMENT: &str = "ci-healer-comment";

/// What a `/healer` line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/healer fix`: start a run for the pull request's newest failure.
    Fix,
    /// `/healer abort|approve|deny|retry|resolve [argument]`: an action on the run about the pull
    /// request; the argument is `deny`'s reason or `retry`'s hint.
    Act {
        /// The action.
        action: RunAction,
        /// The rest of the line, when not empty.
        argument: Option<String>,
    },
    /// `/healer help`.
    Help,
    /// `/healer <anything else>` (the word as written; empty for a bare `/healer`).
    Unknown(String),
}

impl Command {
    /// The command's name, as `status.command` and the metric label say it (`unknown` for
    /// [`Command::Unknown`]).
    pub fn name(&self) -> &str {
        match self {
            Command::Fix => "fix",
            Command::Act { action, .. } => action.as_str(),
            Command::Help => "help",
            Command::Unknown(_) => "unknown",
        }
    }
}

/// The command in `body`: its first line that starts with `/healer` (after leading blanks)
/// followed by a blank or the line's end; the command word is case-insensitive. `None`: no such
/// line.
pub fn parse(body: &str) -> Option<Command> {
    let rest = body.lines().map(str::trim).find_map(|l| {
        let rest = l.strip_prefix("/healer")?;
        (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest.trim())
    })?;
    let (word, arg) = match rest.split_once(char::is_whitespace) {
        Some((w, a)) => (w, a.trim()),
        None => (rest, ""),
    };
    let argument = |max: usize| (!arg.is_empty()).then(|| arg.chars().take(max).collect::<String>());
    Some(match word.to_ascii_lowercase().as_str() {
        "fix" => Command::Fix,
        "help" => Command::Help,
        "abort" => Command::Act { action: RunAction::Abort, argument: None },
        "approve" => Command::Act { action: RunAction::Approve, argument: None },
        "resolve" => Command::Act { action: RunAction::Resolve, argument: None },
        "deny" => Command::Act { action: RunAction::Deny, argument: argument(MAX_REASON) },
        "retry" => Command::Act { action: RunAction::Retry, argument: argument(MAX_HINT) },
        _ => Command::Unknown(word.chars().take(64).collect()),
    })
}

/// The reply to `/healer help` (and after an unknown command).
pub const HELP: &str = "ci-healer answers these commands, each on its own line of a comment on the failing pull \
request or on ci-healer's fix pull request (people with write access only):\n\n\
| command | what it does |\n|---|---|\n\
| `/healer fix` | start a run for the pull request's newest failed check |\n\
| `/healer retry [hint…]` | more attempts on an escalated or denied run, with an optional hint for the agent |\n\
| `/healer approve` | accept the fix (in `propose` mode, opens its draft pull request); not by the person whose push failed |\n\
| `/healer deny [reason…]` | refuse the fix: its pull request is closed and its branch deleted |\n\
| `/healer abort` | stop a queued or running run |\n\
| `/healer resolve` | you fixed it yourself: the run ends Resolved |\n\
| `/healer help` | this list |\n";

/// The hidden marker of the reply to command `key` (`<namespace>/<name>`).
pub fn reply_marker(key: &str) -> String {
    format!("<!-- ci-healer:command={key} -->")
}

/// The id a relayed request carries (`actionRequest.id`), from the comment's id.
pub fn request_id(comment_id: i64) -> String {
    format!("comment-{comment_id}")
}

/// What the controller knows when it decides.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// The command.
    pub command: &'a HealingCommand,
    /// The controller's own GitHub login (`None`: not known yet).
    pub own_login: Option<&'a str>,
    /// The config allows the command's namespace to heal its repository.
    pub allowed: bool,
    /// The author's permission on the repository (`None`: not asked yet).
    pub permission: Option<&'a str>,
    /// The run the command is about: the one `status.runName` names once known, else the newest
    /// run of the pull request ([`find_run`]). `None`: there is none (or it is gone).
    pub run: Option<&'a HealingRun>,
}

/// The next step for a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Finished before anything is asked of GitHub: nothing is posted.
    Ignore {
        /// Why, for the status and the log.
        message: String,
    },
    /// The controller's own login is needed (to ignore its own comments).
    NeedLogin,
    /// The author's permission is needed.
    NeedPermission,
    /// Finish the command: reply (when `reply` is set) and react (when `reaction` is set), then
    /// write the final status.
    Answer(Answer),
    /// Write the action to the run's spec, then react `eyes` and write phase Relayed.
    Relay {
        /// The run's name.
        run: String,
        /// The action.
        action: RunAction,
        /// Its request (`source: comment`, `requestedBy` the author, `id` from the comment).
        request: ActionRequest,
    },
    /// The request is in the run's spec: make sure the status says Relayed (with the run's request
    /// key), then wait for the run's history.
    Relayed {
        /// The run's name.
        run: String,
        /// [`actions::request_key`] of the run.
        key: Option<String>,
    },
    /// The run still holds another unhandled request: try again shortly.
    Busy {
        /// The run's name.
        run: String,
    },
    /// `/healer fix`: read the pull request's newest failure and start its run.
    StartRun,
}

/// A final answer to a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Applied or Refused.
    pub phase: CommandPhase,
    /// The `Handled` condition's and the Event's reason.
    pub reason: Reason,
    /// For people: the status message.
    pub message: String,
    /// The reply comment's text (markdown), when the author gets one.
    pub reply: Option<String>,
    /// The reaction on the comment, when it gets one.
    pub reaction: Option<&'static str>,
}

impl Answer {
    fn refuse(reason: Reason, message: String, reply: String) -> Self {
        Self { phase: CommandPhase::Refused, reason, message, reply: Some(reply), reaction: None }
    }
}

/// The bots GitHub marks by login alone (`<app>[bot]`), or by `type: Bot`.
fn is_bot(login: &str, author_type: Option<&str>) -> bool {
    author_type == Some("Bot") || login.ends_with("[bot]")
}

/// Decide a command's next step. Pure.
pub fn decide(obs: &Observation<'_>) -> Next {
    let cmd = obs.command;
    let spec = &cmd.spec;
    let status = cmd.status.clone().unwrap_or_default();
    let author = spec.author.as_str();
    let ignore = |message: String| Next::Ignore { message };
    if spec.provider != Provider::Github {
        return ignore(format!("provider '{}' has no comments ci-healer answers", spec.provider.as_str()));
    }
    if is_bot(author, spec.author_type.as_deref()) {
        return ignore(format!("{author} is a bot: bots' comments are not commands"));
    }
    let Some(command) = parse(&spec.body) else {
        return ignore("the comment has no line starting with /healer".into());
    };
    if !obs.allowed {
        return ignore(format!(
            "the controller config does not allow this namespace to heal {}: no GitHub call is made",
            spec.repository
        ));
    }
    let Some(own) = obs.own_login else { return Next::NeedLogin };
    if author.eq_ignore_ascii_case(own) {
        return ignore(format!("{author} is ci-healer's own identity"));
    }
    let mention = format!("@{author}");
    let act = match command {
        Command::Help => {
            return Next::Answer(Answer {
                phase: CommandPhase::Applied,
                reason: Reason::HelpAnswered,
                message: "answered /healer help".into(),
                reply: Some(format!("{mention}, {HELP}")),
                reaction: None,
            });
        }
        Command::Unknown(word) => {
            let shown = if word.is_empty() { "/healer".to_string() } else { format!("/healer {word}") };
            return Next::Answer(Answer::refuse(
                Reason::UnknownCommand,
                format!("`{shown}` is not a command ci-healer knows"),
                format!("{mention}, `{shown}` is not a command I know. {HELP}"),
            ));
        }
        c => c,
    };
    let id = request_id(spec.comment_id);
    // A run that still holds another person's unhandled request: wait before asking GitHub anything.
    if let (Command::Act { .. }, Some(run)) = (&act, obs.run)
        && run.spec.action.is_some()
        && run.spec.action_request.as_ref().and_then(|r| r.id.as_deref()) != Some(id.as_str())
        && outcome(run, &id).is_none()
    {
        return Next::Busy { run: run.name_any() };
    }
    // Every other command needs write access (checked once: a relayed command was checked).
    let checked = status.phase == Some(CommandPhase::Relayed);
    let permission = match obs.permission {
        Some(p) => p,
        None if checked => "write",
        None => return Next::NeedPermission,
    };
    if !COMMANDING_PERMISSIONS.contains(&permission) {
        return Next::Answer(Answer::refuse(
            Reason::WriteAccessRequired,
            format!("{author} has '{permission}' permission on {}; commands need write access", spec.repository),
            format!(
                "{mention}, only people with write access to {} may command ci-healer (your permission: \
                 `{permission}`). Nothing was changed.",
                spec.repository
            ),
        ));
    }
    let (action, argument) = match act {
        Command::Fix if !spec.pull_request => {
            return Next::Answer(Answer::refuse(
                Reason::NoFailureFound,
                format!("#{} is an issue, not a pull request", spec.issue_number),
                format!(
                    "{mention}, `/healer fix` works on a pull request whose checks failed; #{} is an issue.",
                    spec.issue_number
                ),
            ));
        }
        Command::Fix => {
            return match status.run_name {
                // Started before a restart: answer as the start did.
                Some(run) => Next::Answer(Answer {
                    phase: CommandPhase::Applied,
                    reason: Reason::RunStartedByComment,
                    message: format!("started HealingRun {run}"),
                    reply: None,
                    reaction: Some("+1"),
                }),
                None => Next::StartRun,
            };
        }
        Command::Act { action, argument } => (action, argument),
        Command::Help | Command::Unknown(_) => unreachable!("answered above"),
    };
    let Some(run) = obs.run else {
        return Next::Answer(Answer::refuse(
            Reason::RunNotFound,
            match &status.run_name {
                Some(r) => format!("HealingRun {r} is gone"),
                None => format!("no HealingRun is about {}#{}", spec.repository, spec.issue_number),
            },
            match &status.run_name {
                Some(r) => format!("{mention}, the run `{r}` this command was relayed to is gone."),
                None => format!(
                    "{mention}, ci-healer has no run about #{} to {}: commands work on a pull request whose \
                     failure ci-healer reported, or on ci-healer's own fix pull request. `/healer fix` starts a run \
                     for the newest failure.",
                    spec.issue_number,
                    action.as_str()
                ),
            },
        ));
    };
    let run_name = run.name_any();
    if let Some(h) = outcome(run, &id) {
        return Next::Answer(match h.result {
            ActionResult::Applied => Answer {
                phase: CommandPhase::Applied,
                reason: Reason::CommandApplied,
                message: format!("{run_name}: {}", h.message),
                reply: None,
                reaction: Some("+1"),
            },
            ActionResult::Refused => Answer {
                phase: CommandPhase::Refused,
                reason: Reason::CommandRefused,
                message: format!("{run_name}: {}", h.message),
                reply: Some(format!(
                    "{mention}, `/healer {}` was refused by the run `{run_name}`:\n\n> {}",
                    action.as_str(),
                    h.message.replace('\n', "\n> ")
                )),
                reaction: Some("-1"),
            },
        });
    }
    if run.spec.action_request.as_ref().and_then(|r| r.id.as_deref()) == Some(id.as_str()) {
        return Next::Relayed { run: run_name, key: actions::request_key(run) };
    }
    let (reason, hint) = match action {
        RunAction::Deny => (argument, None),
        RunAction::Retry => (None, argument),
        _ => (None, None),
    };
    Next::Relay {
        run: run_name,
        action,
        request: ActionRequest {
            requested_by: Some(author.to_string()),
            source: ActionSource::Comment,
            id: Some(id),
            reason,
            hint,
            agent: None,
        },
    }
}

/// The run's history entry for the request with `id`, when the run handled it.
pub fn outcome<'a>(run: &'a HealingRun, id: &str) -> Option<&'a ActionRecord> {
    run.status.as_ref()?.history.iter().rev().find(|h| h.request_id.as_deref() == Some(id))
}

/// The newest run in `runs` of `namespace` and `repository` whose failing pull request
/// (`status.report.pullRequestNumber`) or fix pull request (`status.pullRequest.number`) is
/// `number`.
pub fn find_run<'a>(
    runs: impl IntoIterator<Item = &'a HealingRun>,
    namespace: &str,
    repository: &str,
    number: i64,
) -> Option<&'a HealingRun> {
    runs.into_iter()
        .filter(|r| r.namespace().as_deref() == Some(namespace))
        .filter(|r| r.spec.source.repository.eq_ignore_ascii_case(repository))
        .filter(|r| {
            let st = r.status.as_ref();
            st.and_then(|s| s.report.as_ref()).and_then(|p| p.pull_request_number) == Some(number)
                || st.and_then(|s| s.pull_request.as_ref()).map(|p| p.number) == Some(number)
        })
        .max_by_key(|r| (r.metadata.creation_timestamp.clone().map(|t| t.0), r.name_any()))
}

/// The run `/healer fix` starts for `failure` of pull request `number`, named as intake names the
/// delivery of that failure (`gh-<run id>-<run attempt>-<job id>` for an Actions job,
/// `gh-check-run-<id>` for another App's check run), so a webhook that arrives later collides
/// with it. Errors: the reply for a pull request with nothing to fix.
pub fn fix_run(
    cmd: &HealingCommand,
    failure: &LatestFailure,
) -> std::result::Result<HealingRun, (Reason, String, String)> {
    let spec = &cmd.spec;
    let mention = format!("@{}", spec.author);
    if failure.closed {
        return Err((
            Reason::NoFailureFound,
            format!("#{} is closed", spec.issue_number),
            format!("{mention}, #{} is closed: there is nothing to fix.", spec.issue_number),
        ));
    }
    let Some(check) = &failure.check else {
        return Err((
            Reason::NoFailureFound,
            format!("no failed check run on {}", short(&failure.head_sha)),
            format!(
                "{mention}, no check failed on the head of #{} (`{}`): there is nothing to fix.",
                spec.issue_number,
                short(&failure.head_sha)
            ),
        ));
    };
    let mut source = FailureSource {
        provider: Provider::Github,
        repository: spec.repository.clone(),
        branch: failure.branch.clone(),
        head_sha: failure.head_sha.clone(),
        job_name: Some(check.name.clone()),
        job_id: Some(check.id),
        url: check.url.clone(),
        sender: Some(spec.author.clone()),
        ..Default::default()
    };
    let name = match &check.job {
        Some(job) => {
            source.event = SourceEvent::WorkflowJob;
            source.workflow_name = job.workflow_name.clone();
            source.run_id = Some(job.run_id);
            source.run_attempt = Some(job.run_attempt);
            source.failed_steps = job.failed_steps.clone();
            crate::intake::map::workflow_job_run_name(job.run_id, job.run_attempt, check.id)
        }
        None => {
            source.event = SourceEvent::CheckRun;
            source.check_suite_id = check.check_suite_id;
            crate::intake::map::check_run_run_name(check.id)
        }
    };
    let mut run = crate::intake::map::new_run(&name, "", source, CREATED_BY_COMMENT);
    run.metadata.namespace = cmd.namespace();
    Ok(run)
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// Reconcile one HealingCommand. Errors are transient API or GitHub failures, retried with
/// backoff.
pub async fn reconcile(cmd: Arc<HealingCommand>, ctx: Arc<Context>) -> Result<Action> {
    instrumented(cmd.as_ref(), &ctx, reconcile_inner(&cmd, &ctx)).await
}

async fn reconcile_inner(cached: &HealingCommand, ctx: &Context) -> Result<Action> {
    let ns = cached.namespace().ok_or(Error::MissingNamespace)?;
    // Read afresh: each step writes to GitHub, so it must never be decided from a cached copy that
    // misses the status an earlier reconcile wrote.
    let commands: Api<HealingCommand> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(fresh) = commands.get_opt(&cached.name_any()).await? else { return Ok(Action::await_change()) };
    let cmd = &fresh;
    // The version the final status write is conditional on (an ownerReference patch moves it).
    let mut version = cmd.resource_version();
    if cmd.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let old = cmd.status.clone().unwrap_or_default();
    if old.phase.is_some_and(CommandPhase::is_terminal) {
        return collect(cmd, ctx).await;
    }
    let spec = &cmd.spec;
    let target = Target::new(&spec.repository);
    let allowed = ctx.github.is_some() && ctx.config.allowed_repositories.allows(&ns, &spec.repository);

    // Observe: the run (the one already named, else the newest of the pull request). Listed from
    // the API server, not a cache, so a cold cache never answers "no run".
    let runs: Api<HealingRun> = Api::namespaced(ctx.client.clone(), &ns);
    let run = match (&old.run_name, parse(&spec.body)) {
        (Some(name), _) => runs.get_opt(name).await?,
        (None, Some(Command::Act { .. })) if allowed => {
            let list = runs.list(&ListParams::default()).await?.items;
            find_run(&list, &ns, &spec.repository, spec.issue_number).cloned()
        }
        _ => None,
    };
    let key = format!("{ns}/{}", cmd.name_any());
    let mut own_login = None;
    let mut permission = ctx.permission(&key);
    let name = parse(&spec.body).map(|c| c.name().to_string());
    let mut status =
        HealingCommandStatus { observed_generation: cmd.metadata.generation, command: name.clone(), ..old.clone() };
    let now = Time(jiff::Timestamp::now());
    // A GitHub refusal that retrying cannot fix (the comment deleted, no access) ends the command
    // Refused instead of retrying for ever; transient failures are retried with backoff.
    let acted: Result<Option<Duration>> = async {
        let next = loop {
            let obs = Observation {
                command: cmd,
                own_login: own_login.as_deref(),
                allowed,
                permission: permission.as_deref(),
                run: run.as_ref(),
            };
            match decide(&obs) {
                Next::NeedLogin => own_login = Some(github(ctx)?.login().await.map_err(Error::GitHub)?),
                Next::NeedPermission => {
                    let p = github(ctx)?.permission(&target, &spec.author).await.map_err(Error::GitHub)?;
                    ctx.remember_permission(&key, Some(p.clone()));
                    permission = Some(p);
                }
                next => break next,
            }
        };

        Ok(match next {
            Next::NeedLogin | Next::NeedPermission => unreachable!("resolved above"),
            Next::Ignore { message } => {
                finish(&mut status, CommandPhase::Ignored, Reason::CommandIgnored, &message, cmd, &now);
                None
            }
            Next::Busy { run } => {
                tracing::debug!(command = %cmd.name_any(), namespace = %ns, run, "the run holds another request; waiting");
                Some(BUSY_RECHECK)
            }
            Next::Relay { run: run_name, action, request } => {
                let run = run.as_ref().expect("decide relays to a run");
                let patched = relay(ctx, run, action, &request).await?;
                status.run_name = Some(run_name.clone());
                status.request_key = actions::request_key(&patched);
                if let Some(v) = own(ctx, cmd, &patched).await? {
                    version = Some(v);
                }
                relayed(ctx, cmd, &target, &mut status, &run_name, &now).await?;
                let note = format!("relayed /healer {} by {} to HealingRun {run_name}", action.as_str(), spec.author);
                tracing::info!(command = %cmd.name_any(), namespace = %ns, run = %run_name, "{note}");
                apply::publish(ctx, cmd, Notice::normal(Reason::CommandRelayed, &note)).await;
                Some(RELAYED_RECHECK)
            }
            Next::Relayed { run: run_name, key } => {
                if status.request_key.is_none() {
                    status.request_key = key;
                }
                if let Some(run) = &run
                    && let Some(v) = own(ctx, cmd, run).await?
                {
                    version = Some(v);
                }
                relayed(ctx, cmd, &target, &mut status, &run_name, &now).await?;
                Some(RELAYED_RECHECK)
            }
            Next::StartRun => {
                let (answer, started) = start_run(ctx, cmd, &target, &runs).await?;
                if let Some(run) = started {
                    status.run_name = Some(run.name_any());
                    if let Some(v) = own(ctx, cmd, &run).await? {
                        version = Some(v);
                    }
                }
                answer_with(ctx, cmd, &target, &mut status, answer, &now).await?;
                None
            }
            Next::Answer(answer) => {
                if let Some(r) =
                    run.as_ref().filter(|_| matches!(answer.reason, Reason::CommandApplied | Reason::CommandRefused))
                {
                    status.run_name = Some(r.name_any());
                }
                answer_with(ctx, cmd, &target, &mut status, answer, &now).await?;
                None
            }
        })
    }
    .await;
    let requeue = match acted {
        Ok(r) => r,
        Err(Error::GitHub(e)) if !e.is_transient() => {
            let message = format!("GitHub refused a request for this command: {e}");
            finish(&mut status, CommandPhase::Refused, Reason::GitHubRejected, &message, cmd, &now);
            None
        }
        Err(e) => return Err(e),
    };
    if status != old {
        apply::apply_status(ctx, cmd, version.as_deref(), &status).await?;
        if let Some(phase) = status.phase.filter(|p| p.is_terminal() && old.phase != Some(*p)) {
            ctx.remember_permission(&key, None);
            ctx.metrics.command_finished(name.as_deref().unwrap_or("none"), phase);
            let (message, reason) = handled(&status);
            tracing::info!(command = %cmd.name_any(), namespace = %ns, author = %spec.author, phase = %phase, reason, "{message}");
            let notice = match phase {
                CommandPhase::Applied | CommandPhase::Ignored => Notice::normal(reason_of(reason), message),
                _ => Notice::warning(reason_of(reason), message),
            };
            apply::publish(ctx, cmd, notice).await;
        }
    }
    Ok(match requeue {
        Some(wait) => Action::requeue(wait),
        None => Action::requeue(ttl_left(cmd, ctx).unwrap_or(Duration::from_secs(3600))),
    })
}

/// `/healer fix`: read the pull request's newest failure and create its run. A run of that name
/// that this command made before (its [`COMMAND_ANNOTATION`] names the command: a restart after the
/// create) counts as started; another is "exists already". Errors: GitHub or the API server.
async fn start_run(
    ctx: &Context,
    cmd: &HealingCommand,
    target: &Target,
    runs: &Api<HealingRun>,
) -> Result<(Answer, Option<HealingRun>)> {
    let spec = &cmd.spec;
    let failure = github(ctx)?.latest_failure(target, spec.issue_number).await.map_err(Error::GitHub)?;
    let mut new_run = match fix_run(cmd, &failure) {
        Ok(r) => r,
        Err((reason, message, reply)) => return Ok((Answer::refuse(reason, message, reply), None)),
    };
    new_run.annotations_mut().insert(COMMAND_ANNOTATION.into(), cmd.name_any());
    let run_name = new_run.name_any();
    let check = new_run.spec.source.job_name.clone().unwrap_or_default();
    let started = |run: HealingRun| {
        let answer = Answer {
            phase: CommandPhase::Applied,
            reason: Reason::RunStartedByComment,
            message: format!("started HealingRun {run_name} for check '{check}' of {}", short(&failure.head_sha)),
            reply: None,
            reaction: Some("+1"),
        };
        Ok((answer, Some(run)))
    };
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match runs.create(&params, &new_run).await {
        Ok(created) => started(created),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = runs.get(&run_name).await?;
            if existing.annotations().get(COMMAND_ANNOTATION) == Some(&cmd.name_any()) {
                return started(existing);
            }
            let answer = Answer::refuse(
                Reason::RunExists,
                format!("HealingRun {run_name} exists already"),
                format!(
                    "@{}, ci-healer already has a run for the newest failure of #{} (`{run_name}`, check `{check}` \
                     on `{}`).",
                    spec.author,
                    spec.issue_number,
                    short(&failure.head_sha)
                ),
            );
            Ok((answer, None))
        }
        Err(e) => Err(e.into()),
    }
}

fn github(ctx: &Context) -> Result<&Arc<dyn crate::github::GitHub>> {
    ctx.github.as_ref().ok_or_else(|| Error::Permanent {
        reason: Reason::CommandIgnored,
        message: "the controller has no GitHub identity".into(),
    })
}

fn handled(status: &HealingCommandStatus) -> (String, &str) {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == "Handled")
        .map(|c| (c.message.clone(), c.reason.as_str()))
        .unwrap_or_default()
}

fn reason_of(s: &str) -> Reason {
    Reason::ALL.iter().copied().find(|r| r.as_str() == s).unwrap_or(Reason::CommandIgnored)
}

fn finish(
    status: &mut HealingCommandStatus,
    phase: CommandPhase,
    reason: Reason,
    message: &str,
    cmd: &HealingCommand,
    now: &Time,
) {
    status.phase = Some(phase);
    status.message = Some(message.to_string());
    let ok = phase == CommandPhase::Applied;
    conditions::set(
        &mut status.conditions,
        conditions::new(CommandCondition::Handled, ok, reason, message, cmd.metadata.generation, now.clone()),
    );
}

/// Reply (found by its marker first), react once, and set the final phase.
async fn answer_with(
    ctx: &Context,
    cmd: &HealingCommand,
    target: &Target,
    status: &mut HealingCommandStatus,
    answer: Answer,
    now: &Time,
) -> Result<()> {
    let gh = github(ctx)?;
    if let Some(reply) = &answer.reply
        && status.reply_comment_id.is_none()
    {
        let key = format!("{}/{}", cmd.namespace().unwrap_or_default(), cmd.name_any());
        let id =
            gh.comment_once(target, cmd.spec.issue_number, &reply_marker(&key), reply).await.map_err(Error::GitHub)?;
        status.reply_comment_id = Some(id);
    }
    if let Some(reaction) = answer.reaction {
        react_once(gh.as_ref(), cmd, target, status, reaction).await?;
    }
    finish(status, answer.phase, answer.reason, &answer.message, cmd, now);
    Ok(())
}

async fn react_once(
    gh: &dyn crate::github::GitHub,
    cmd: &HealingCommand,
    target: &Target,
    status: &mut HealingCommandStatus,
    reaction: &str,
) -> Result<()> {
    if !status.reactions.iter().any(|r| r == reaction) {
        gh.react(target, cmd.spec.comment_id, reaction).await.map_err(Error::GitHub)?;
        status.reactions.push(reaction.to_string());
    }
    Ok(())
}

/// React `eyes` once and set phase Relayed.
async fn relayed(
    ctx: &Context,
    cmd: &HealingCommand,
    target: &Target,
    status: &mut HealingCommandStatus,
    run: &str,
    now: &Time,
) -> Result<()> {
    react_once(github(ctx)?.as_ref(), cmd, target, status, "eyes").await?;
    status.phase = Some(CommandPhase::Relayed);
    status.run_name = Some(run.to_string());
    let message = format!("relayed to HealingRun {run}; waiting for it to act");
    status.message = Some(message.clone());
    let mut c = conditions::new(
        CommandCondition::Handled,
        false,
        Reason::CommandRelayed,
        message,
        cmd.metadata.generation,
        now.clone(),
    );
    c.status = "Unknown".into();
    conditions::set(&mut status.conditions, c);
    Ok(())
}

/// Write `action` with `request` to the run's spec (a merge patch under the controller's field
/// manager, with the run's resourceVersion as precondition: a request that arrived meanwhile is
/// never overwritten). Returns the patched run. Errors: the API request failed (409: retried).
async fn relay(ctx: &Context, run: &HealingRun, action: RunAction, request: &ActionRequest) -> Result<HealingRun> {
    let api: Api<HealingRun> = apply::api_for(ctx, run)?;
    let patch = json!({
        "metadata": {"resourceVersion": run.resource_version()},
        "spec": {"action": action, "actionRequest": {
            "requestedBy": request.requested_by, "source": request.source, "id": request.id,
            "reason": request.reason, "hint": request.hint, "agent": null,
        }}
    });
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    Ok(api.patch(&run.name_any(), &params, &Patch::Merge(patch)).await?)
}

/// Make `run` an owner of the command (not its controller), so the command goes with the run.
/// Returns the command's new resourceVersion when it wrote.
async fn own(ctx: &Context, cmd: &HealingCommand, run: &HealingRun) -> Result<Option<String>> {
    let Some(uid) = run.uid() else { return Ok(None) };
    if cmd.owner_references().iter().any(|o| o.uid == uid) {
        return Ok(None);
    }
    let owner = OwnerReference {
        api_version: HealingRun::api_version(&()).into(),
        kind: HealingRun::kind(&()).into(),
        name: run.name_any(),
        uid,
        ..Default::default()
    };
    let api: Api<HealingCommand> = apply::api_for(ctx, cmd)?;
    let patch = json!({"metadata": {"ownerReferences": [owner]}});
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    Ok(api.patch(&cmd.name_any(), &params, &Patch::Merge(patch)).await?.resource_version())
}

/// How long a finished command about no run is still kept (`None`: it has a run and goes with it).
fn ttl_left(cmd: &HealingCommand, ctx: &Context) -> Option<Duration> {
    if !cmd.owner_references().is_empty() {
        return None;
    }
    let created = cmd.metadata.creation_timestamp.as_ref()?.0;
    let ttl = Duration::from_secs(ctx.config.actions.command_ttl_seconds);
    let age = jiff::Timestamp::now().duration_since(created).unsigned_abs();
    Some(ttl.saturating_sub(age))
}

/// A finished command: delete it once its TTL passed when no run owns it; else wait.
async fn collect(cmd: &HealingCommand, ctx: &Context) -> Result<Action> {
    match ttl_left(cmd, ctx) {
        None => Ok(Action::await_change()),
        Some(left) if !left.is_zero() => Ok(Action::requeue(left + Duration::from_secs(1))),
        Some(_) => {
            let api: Api<HealingCommand> = apply::api_for(ctx, cmd)?;
            match api.delete(&cmd.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(command = %cmd.name_any(), namespace = ?cmd.namespace(), "deleted a finished HealingCommand about no run (actions.commandTtlSeconds)");
            Ok(Action::await_change())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::HealingCommandSpec;
    use crate::crd::run::{PullRequestStatus, ReportStatus};
    use crate::crd::{HealingRunSpec, HealingRunStatus, RunPhase};

    fn command(author: &str, author_type: Option<&str>, body: &str) -> HealingCommand {
        let mut c = HealingCommand::new(
            "ghc-7",
            HealingCommandSpec {
                repository: "o/r".into(),
                issue_number: 12,
                pull_request: true,
                comment_id: 7,
                author: author.into(),
                author_type: author_type.map(str::to_string),
                body: body.into(),
                ..Default::default()
            },
        );
        c.metadata.namespace = Some("ns".into());
        c
    }

    fn run(name: &str, report_pr: Option<i64>, fix_pr: Option<i64>) -> HealingRun {
        let mut r = HealingRun::new(
            name,
            HealingRunSpec {
                source: FailureSource { repository: "o/r".into(), ..Default::default() },
                failure: None,
                policy: Default::default(),
                action: None,
                action_request: None,
            },
        );
        r.metadata.namespace = Some("ns".into());
        r.metadata.resource_version = Some("1".into());
        r.status = Some(HealingRunStatus {
            phase: Some(RunPhase::Fixed),
            report: report_pr.map(|n| ReportStatus { pull_request_number: Some(n), ..Default::default() }),
            pull_request: fix_pr.map(|n| PullRequestStatus { number: n, ..Default::default() }),
            ..Default::default()
        });
        r
    }

    #[test]
    fn parse_table() {
        let act = |action, arg: Option<&str>| Some(Command::Act { action, argument: arg.map(str::to_string) });
        let cases: &[(&str, Option<Command>)] = &[
            ("/healer fix", Some(Command::Fix)),
            ("thanks!\n  /healer APPROVE please\n/healer deny", act(RunAction::Approve, None)),
            ("/healer deny the test is wrong\nmore", act(RunAction::Deny, Some("the test is wrong"))),
            ("/healer retry   try the lockfile  ", act(RunAction::Retry, Some("try the lockfile"))),
            ("/healer retry", act(RunAction::Retry, None)),
            ("/healer abort", act(RunAction::Abort, None)),
            ("/healer resolve", act(RunAction::Resolve, None)),
            ("/healer help", Some(Command::Help)),
            ("/healer", Some(Command::Unknown(String::new()))),
            ("/healer merge", Some(Command::Unknown("merge".into()))),
            ("/healerfix", None),
            ("please /healer fix", None),
            ("LGTM", None),
        ];
        for (body, want) in cases {
            assert_eq!(&parse(body), want, "{body:?}");
        }
        let long = format!("/healer deny {}", "x".repeat(5000));
        let Some(Command::Act { argument: Some(a), .. }) = parse(&long) else { panic!() };
        assert_eq!(a.chars().count(), MAX_REASON);
    }

    /// Who may command, and what each step of a command leads to.
    #[test]
    fn decide_table() {
        let fixed = run("r1", Some(12), None);
        let mut pending_other = run("r1", Some(12), None);
        pending_other.spec.action = Some(RunAction::Abort);
        let mut relayed_here = run("r1", Some(12), None);
        relayed_here.spec.action = Some(RunAction::Approve);
        relayed_here.spec.action_request =
            Some(ActionRequest { id: Some("comment-7".into()), source: ActionSource::Comment, ..Default::default() });
        let with_history = |result: ActionResult| {
            let mut r = run("r1", Some(12), None);
            r.status.as_mut().unwrap().history.push(ActionRecord {
                action: RunAction::Approve,
                actor: "alice".into(),
                source: ActionSource::Comment,
                time: Time(jiff::Timestamp::UNIX_EPOCH),
                result,
                message: "alice triggered the failing run and cannot approve its fix alone".into(),
                generation: Some(2),
                request_key: "k".into(),
                request_id: Some("comment-7".into()),
            });
            r
        };
        let (applied, refused) = (with_history(ActionResult::Applied), with_history(ActionResult::Refused));

        enum Want {
            Ignore(&'static str),
            Need(Next),
            Answer(CommandPhase, Reason, Option<&'static str>, Option<&'static str>),
            Relay(RunAction, Option<&'static str>, Option<&'static str>),
            Relayed,
            Busy,
            Start,
        }
        use Want::*;
        /// The command, the controller's login, allowed, the permission, the run, and what to expect.
        type Case<'a> = (HealingCommand, Option<&'a str>, bool, Option<&'a str>, Option<&'a HealingRun>, Want);
        let cases: Vec<Case> = vec![
            (command("dependabot[bot]", Some("Bot"), "/healer approve"), Some("me"), true, None, None, Ignore("bot")),
            (command("renovate", Some("Bot"), "/healer approve"), Some("me"), true, None, None, Ignore("bot")),
            (command("alice", None, "LGTM"), Some("me"), true, None, None, Ignore("no line")),
            (command("alice", None, "/healer approve"), Some("me"), false, None, None, Ignore("does not allow")),
            (command("alice", None, "/healer approve"), None, true, None, None, Need(Next::NeedLogin)),
            (command("Healer-Bot", None, "/healer help"), Some("healer-bot"), true, None, None, Ignore("own")),
            (
                command("stranger", None, "/healer help"),
                Some("me"),
                true,
                None,
                None,
                Answer(CommandPhase::Applied, Reason::HelpAnswered, Some("/healer retry [hint…]"), None),
            ),
            (
                command("alice", None, "/healer merge"),
                Some("me"),
                true,
                None,
                None,
                Answer(CommandPhase::Refused, Reason::UnknownCommand, Some("`/healer merge` is not a command"), None),
            ),
            (command("alice", None, "/healer approve"), Some("me"), true, None, None, Need(Next::NeedPermission)),
            (
                command("stranger", None, "/healer approve"),
                Some("me"),
                true,
                Some("read"),
                Some(&fixed),
                Answer(CommandPhase::Refused, Reason::WriteAccessRequired, Some("your permission: `read`"), None),
            ),
            (
                command("stranger", None, "/healer fix"),
                Some("me"),
                true,
                Some("none"),
                None,
                Answer(CommandPhase::Refused, Reason::WriteAccessRequired, Some("write access"), None),
            ),
            (
                command("alice", None, "/healer approve"),
                Some("me"),
                true,
                Some("maintain"),
                None,
                Answer(CommandPhase::Refused, Reason::RunNotFound, Some("no run about #12"), None),
            ),
            (
                command("alice", None, "/healer approve"),
                Some("me"),
                true,
                Some("write"),
                Some(&fixed),
                Relay(RunAction::Approve, None, None),
            ),
            (
                command("alice", None, "/healer deny flaky test"),
                Some("me"),
                true,
                Some("admin"),
                Some(&fixed),
                Relay(RunAction::Deny, Some("flaky test"), None),
            ),
            (
                command("alice", None, "/healer retry use npm ci"),
                Some("me"),
                true,
                Some("admin"),
                Some(&fixed),
                Relay(RunAction::Retry, None, Some("use npm ci")),
            ),
            (command("alice", None, "/healer approve"), Some("me"), true, Some("write"), Some(&pending_other), Busy),
            (command("alice", None, "/healer approve"), Some("me"), true, Some("write"), Some(&relayed_here), Relayed),
            (
                command("alice", None, "/healer approve"),
                Some("me"),
                true,
                Some("write"),
                Some(&applied),
                Answer(CommandPhase::Applied, Reason::CommandApplied, None, Some("+1")),
            ),
            (
                command("alice", None, "/healer approve"),
                Some("me"),
                true,
                Some("write"),
                Some(&refused),
                Answer(
                    CommandPhase::Refused,
                    Reason::CommandRefused,
                    Some("> alice triggered the failing run"),
                    Some("-1"),
                ),
            ),
            (command("alice", None, "/healer fix"), Some("me"), true, Some("write"), None, Start),
            (
                {
                    let mut c = command("alice", None, "/healer fix");
                    c.spec.pull_request = false;
                    c
                },
                Some("me"),
                true,
                Some("write"),
                None,
                Answer(CommandPhase::Refused, Reason::NoFailureFound, Some("#12 is an issue"), None),
            ),
        ];
        for (cmd, own, allowed, permission, run, want) in cases {
            let obs = Observation { command: &cmd, own_login: own, allowed, permission, run };
            let got = decide(&obs);
            let what = format!("{} {:?}: {got:?}", cmd.spec.author, cmd.spec.body);
            match want {
                Ignore(fragment) => {
                    let Next::Ignore { message } = &got else { panic!("{what}") };
                    assert!(message.contains(fragment), "{what}");
                }
                Need(n) => assert_eq!(got, n, "{what}"),
                Answer(phase, reason, reply, reaction) => {
                    let Next::Answer(a) = &got else { panic!("{what}") };
                    assert_eq!((a.phase, a.reason, a.reaction), (phase, reason, reaction), "{what}");
                    match reply {
                        Some(f) => assert!(a.reply.as_deref().is_some_and(|r| r.contains(f)), "{what}"),
                        None => assert!(a.reply.is_none(), "{what}"),
                    }
                }
                Relay(action, reason, hint) => {
                    let Next::Relay { run, action: a, request } = &got else { panic!("{what}") };
                    assert_eq!((run.as_str(), *a), ("r1", action), "{what}");
                    assert_eq!(request.requested_by.as_deref(), Some("alice"));
                    assert_eq!(request.source, ActionSource::Comment);
                    assert_eq!(request.id.as_deref(), Some("comment-7"));
                    assert_eq!((request.reason.as_deref(), request.hint.as_deref()), (reason, hint), "{what}");
                }
                Relayed => assert!(matches!(got, Next::Relayed { .. }), "{what}"),
                Busy => assert!(matches!(got, Next::Busy { .. }), "{what}"),
                Start => assert_eq!(got, Next::StartRun, "{what}"),
            }
        }
    }

    #[test]
    fn the_newest_run_of_the_failing_or_the_fix_pull_request_is_found() {
        let t = |s: i64| Some(Time(jiff::Timestamp::from_second(s).unwrap()));
        let mut old = run("old", Some(12), None);
        old.metadata.creation_timestamp = t(100);
        let mut new = run("new", Some(12), None);
        new.metadata.creation_timestamp = t(200);
        let mut fix = run("fix", None, Some(40));
        fix.metadata.creation_timestamp = t(50);
        let mut elsewhere = run("elsewhere", Some(12), None);
        elsewhere.metadata.namespace = Some("other".into());
        elsewhere.metadata.creation_timestamp = t(300);
        let mut other_repo = run("other-repo", Some(12), None);
        other_repo.spec.source.repository = "o/x".into();
        let runs = [old, new, fix, elsewhere, other_repo];
        let name = |n| find_run(&runs, "ns", "O/R", n).map(|r| r.name_any());
        assert_eq!(name(12).as_deref(), Some("new"));
        assert_eq!(name(40).as_deref(), Some("fix"));
        assert_eq!(name(41), None);
    }

    #[test]
    fn fix_names_the_run_as_intake_names_the_failure() {
        use crate::github::{FailedCheck, FailedJob};
        let cmd = command("alice", None, "/healer fix");
        let check =
            |job| FailedCheck { id: 289782451, name: "linters".into(), check_suite_id: Some(5), url: None, job };
        let failure = |check| LatestFailure {
            head_sha: "3484a3fb816e0859fd6e1cea078d76385ff50625".into(),
            branch: "feature".into(),
            closed: false,
            check,
        };
        let job = FailedJob {
            run_id: 2202229078,
            run_attempt: 1,
            workflow_name: Some("CodeQL".into()),
            failed_steps: vec![],
        };
        let r = fix_run(&cmd, &failure(Some(check(Some(job))))).unwrap();
        assert_eq!(r.name_any(), "gh-2202229078-1-289782451");
        assert_eq!(r.spec.source.event, SourceEvent::WorkflowJob);
        assert_eq!(r.spec.source.sender.as_deref(), Some("alice"));
        assert_eq!(r.spec.source.branch, "feature");
        let r = fix_run(&cmd, &failure(Some(check(None)))).unwrap();
        assert_eq!((r.name_any().as_str(), r.spec.source.event), ("gh-check-run-289782451", SourceEvent::CheckRun));
        assert_eq!(fix_run(&cmd, &failure(None)).unwrap_err().0, Reason::NoFailureFound);
    }
}
