//! HealingRun reconcile: observe → triage → dedup → decide → start an attempt → write status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::apply::{self, Created, Notice};
use super::error::SpecProblem;
use super::failure::{self, ReadFailure};
use super::state::{self, AttemptView, RunObservation, TriageView};
use super::{Context, Error, Result, actions, claim, dedup, instrumented, memory};
use super::{deliver, healing_labels, report, skip};
use crate::agent::context::Masker;
use crate::config::ControllerConfig;
use crate::contract::paths;
use crate::crd::conditions::{self, Reason, RunCondition};
use crate::crd::{HealingAttempt, HealingMode, HealingRun, Provider, RunPhase};
use crate::resources::{attempt::attempt_name, attempt::build_attempt, configmap, labels};
use crate::triage::{self, FailureClass, RouteAction, TriageInput, TriageResult};

/// Reconcile one HealingRun. Transient errors (API failures) are retried with backoff; a spec the
/// controller cannot act on is reported through the `Accepted=False` condition and then returned as
/// [`Error::Permanent`], which waits for a change.
pub async fn reconcile(run: Arc<HealingRun>, ctx: Arc<Context>) -> Result<Action> {
    instrumented(run.as_ref(), &ctx, reconcile_inner(&run, &ctx)).await
}

async fn reconcile_inner(run: &HealingRun, ctx: &Context) -> Result<Action> {
    let ns = run.namespace().ok_or(Error::MissingNamespace)?;
    if run.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = run.name_any();

    // Observe.
    let attempts = observe_attempts(run, &ns, &name, ctx).await?;
    let accepted = accept(run, &ctx.config).is_ok();
    // Loop prevention and opt-outs, before anything else is read from GitHub.
    let skip = if accepted && skip::wanted(run, attempts.len()) { skip::check(run, ctx).await? } else { None };
    let skipped = skip.is_some() || run.status.as_ref().and_then(|s| s.phase) == Some(RunPhase::Skipped);
    // The failure, read from GitHub once (then from the context ConfigMap) when the spec has no
    // excerpt; never for a run the controller cannot accept or skips (no GitHub call for it).
    let read = match &ctx.github {
        Some(gh) if failure::wanted(run) && accepted && !skipped => Some(read_failure(run, gh.as_ref(), ctx).await?),
        _ => None,
    };
    // A check run that GitHub shows as the Actions app's copy of a workflow job is a duplicate.
    let skip = match skip {
        None if accepted && skip::wanted(run, attempts.len()) => skip::actions_check_run(run, read.as_ref(), &[]),
        s => s,
    };
    // Triage's text (its excerpt and diagnostics) is stored in the context ConfigMap: an inline
    // excerpt was masked by pattern before triage, and here the controller's own secret values
    // (its GitHub token, its Slack token) are masked too, which a sender's log may hold.
    let triaged =
        triage_run_with(run, &ctx.config, read.as_ref()).map(|(v, t)| (v, mask_triage(t, &failure::own_masker(ctx))));
    let triage_view = triaged.as_ref().map(|(v, _)| v.clone()).map_err(Clone::clone);
    let primary = match &triaged {
        Ok((v, _)) => dedup::find_primary(run, &v.error_hash, &ctx.runs.state(), &ctx.config),
        Err(_) => None,
    };

    // Decide.
    let now = Time(jiff::Timestamp::now());
    let rerun_job = skip::rerun_job(run, read.as_ref(), ctx);
    let mut obs = RunObservation {
        run,
        attempts,
        triage: triage_view,
        primary,
        now: now.clone(),
        actions: ctx.config.actions.clone(),
        profiles: ctx.config.profiles.keys().cloned().collect(),
        skip,
        rerun_job,
    };
    let mut decision = state::decide(&obs);
    // A flaky failure: GitHub re-runs the job before the status that says so is written. A
    // refusal (the job cannot be re-run now) falls back to the attempts.
    if let (Some(job), Some(gh)) = (decision.rerun_job, &ctx.github) {
        let target = crate::github::Target::new(run.spec.source.repository.clone());
        match gh.rerun_job(&target, job).await {
            Ok(()) => tracing::info!(run = %name, namespace = %ns, "asked GitHub to re-run job {job}"),
            Err(e) if e.is_transient() => return Err(Error::GitHub(e)),
            Err(e) => {
                tracing::warn!(run = %name, namespace = %ns, error = %e, "GitHub refused to re-run job {job}; attempts proceed");
                obs.rerun_job = None;
                decision = state::decide(&obs);
            }
        }
    }
    // The first attempt waits for the failure's claim: another run of the same failure that this
    // reconcile's cache did not show yet may hold it, and then this run is its duplicate. The error
    // hash label and the memory of past fixes, which an attempt needs too, are written and read at
    // the same time (three requests in the time of one: they are what a run waits for before its
    // first Job).
    let (mut labelled, mut recalled) = (None, None);
    if let (Some(n), Ok((view, result))) = (decision.start_attempt, &triaged) {
        let claimed = async {
            match n {
                1 => claim::claim(run, &view.error_hash, ctx).await.map(Some),
                _ => Ok(None),
            }
        };
        let (claimed, label, memory) = tokio::join!(
            claimed,
            ensure_hash_label(run, &view.error_hash, ctx),
            memory::recall(run, &result.error_hash, &result.failure_class, ctx)
        );
        labelled = Some(label?);
        recalled = Some(memory?);
        if let Some(claim::Claim::Held(p)) = claimed? {
            tracing::info!(run = %name, namespace = %ns, primary = %p.name, "another run of this failure holds its claim");
            obs.primary = Some(p);
            decision = state::decide(&obs);
        }
    }
    if let Some(r) = &read {
        let c = conditions::new(
            RunCondition::LogFetched,
            r.log.fetched,
            failure::reason_of(&r.log),
            r.log.message.clone(),
            run.metadata.generation,
            now.clone(),
        );
        conditions::set(&mut decision.status.conditions, c);
    }
    // actions.autoApprove: a fix only deterministic fixers made is approved without a person.
    if ctx.github.is_some() && deliver::auto_approvable(&decision.status, &obs.attempts, &ctx.config) {
        let m = "approved by the controller: deterministic fixers alone made this fix (no LLM tokens), and \
                 actions.autoApprove is on; it is delivered as a pull request ready for review"
            .to_string();
        let c = conditions::new(
            RunCondition::Approved,
            true,
            Reason::AutoApproved,
            m.clone(),
            run.metadata.generation,
            now.clone(),
        );
        conditions::set(&mut decision.status.conditions, c);
        apply::publish(ctx, run, Notice::normal(Reason::AutoApproved, m)).await;
    }
    // mode: pull-request: a Fixed run's patch becomes a draft pull request, once.
    if let Some(gh) = &ctx.github
        && deliver::pending(run, &decision.status)
    {
        let (reason, message, warning) =
            deliver::deliver(run, gh.as_ref(), read.as_ref(), &obs.attempts, &mut decision.status, now.clone(), ctx)
                .await?;
        tracing::info!(run = %name, namespace = %ns, reason = reason.as_str(), "{message}");
        apply::publish(ctx, run, Notice::normal(reason, message).warning_if(warning)).await;
    }

    // A person's approve takes a pull-request mode run's draft out of draft.
    if let Some(gh) = &ctx.github
        && deliver::ready_pending(run, &decision.status)
    {
        let (reason, message, warning) = deliver::mark_ready(run, gh.as_ref(), &mut decision.status).await?;
        tracing::info!(run = %name, namespace = %ns, reason = reason.as_str(), "{message}");
        apply::publish(ctx, run, Notice::normal(reason, message).warning_if(warning)).await;
    }

    // A denied (or aborted) run's fix pull request is closed, a denied fix's branch deleted.
    if let Some(gh) = &ctx.github
        && deliver::withdraw_pending(&decision.status)
    {
        let (message, warning) = match deliver::withdraw(run, gh.as_ref(), &mut decision.status, ctx).await? {
            Ok(m) => (m, false),
            Err(m) => (m, true),
        };
        tracing::info!(run = %name, namespace = %ns, "{message}");
        let reason = if warning { Reason::GitHubRejected } else { Reason::PullRequestClosed };
        apply::publish(ctx, run, Notice::normal(reason, message).warning_if(warning)).await;
    }

    // The failing pull request carries the healing labels while the run heals.
    if let Some(gh) = &ctx.github
        && accepted
        && let Some(warning) =
            healing_labels::sync(run, gh.as_ref(), read.as_ref(), &mut decision.status, now.clone(), ctx).await?
    {
        apply::publish(ctx, run, Notice::normal(Reason::GitHubRejected, warning).warning_if(true)).await;
    }

    // Report on GitHub: the check run (or commit status) and the one pull request comment, created
    // once and edited in place whenever the reported state changes.
    if let Some(gh) = &ctx.github
        && accepted
        && let Some(warning) =
            report::report(run, gh.as_ref(), read.as_ref(), &obs.attempts, &mut decision.status, now.clone(), ctx)
                .await?
    {
        apply::publish(ctx, run, Notice::normal(Reason::GitHubRejected, warning).warning_if(true)).await;
    }

    // Slack: the run's one message, updated in place, and a thread reply per attempt. Never fails
    // or holds back the run; a message behind the run asks for an earlier requeue.
    let slack_retry = match (&ctx.slack, &ctx.config.slack) {
        (Some(s), Some(cfg)) if accepted => {
            let (attempts, st) = (&obs.attempts, &mut decision.status);
            let o = super::notify::notify(run, s.as_ref(), cfg, attempts, st, now.clone(), &ctx.metrics).await;
            if let Some(w) = o.warning {
                apply::publish(ctx, run, Notice::normal(Reason::SlackRejected, w).warning_if(true)).await;
            }
            o.retry_after
        }
        _ => None,
    };

    // Apply.
    let mut version = run.resource_version();
    if let Ok((view, result)) = &triaged {
        let label = match labelled {
            Some(l) => l,
            None => ensure_hash_label(run, &view.error_hash, ctx).await?,
        };
        if let Some(v) = label {
            version = Some(v);
        }
        if let Some(n) = decision.start_attempt {
            // A retry may have asked for another profile and given a hint.
            let agent = decision.status.agent.as_deref().unwrap_or(&view.agent);
            let hint = decision.status.retry.as_ref().and_then(|r| r.hint.as_deref());
            let memory = match recalled {
                Some(m) => m,
                None => memory::recall(run, &result.error_hash, &result.failure_class, ctx).await?,
            };
            let next = NextAttempt { number: n, profile: agent, hint, memory };
            start_attempt(run, next, result, read.as_ref(), ctx).await?;
        }
    }

    // Status, Events, metrics, logs.
    if run.status.as_ref() != Some(&decision.status) {
        apply::apply_status(ctx, run, version.as_deref(), &decision.status).await?;
        ctx.metrics.run_status_changed(run, run.status.as_ref(), &decision.status);
        for t in state::transitions(run.status.as_ref(), &decision.status) {
            let phase = decision.status.phase.map(|p| p.as_str()).unwrap_or("");
            tracing::info!(run = %name, namespace = %ns, reason = t.reason.as_str(), phase, "{}", t.message);
            let related = (t.reason == Reason::AttemptStarted)
                .then_some(decision.status.current_attempt)
                .flatten()
                .map(|n| apply::reference::<HealingAttempt>(run.namespace(), &attempt_name(&name, n)));
            apply::publish(ctx, run, Notice::normal(t.reason, t.message).warning_if(t.warning).related(related)).await;
        }
    }

    // Memory of past fixes: a Fixed run's fix is remembered, a denied one is never reused.
    match decision.status.phase {
        Some(RunPhase::Fixed) => memory::remember(run, &decision.status, ctx).await?,
        Some(RunPhase::Denied) => memory::forget(run, ctx).await?,
        _ => {}
    }

    // A handled request is cleared from the spec (its record is in status.history), so the same
    // command sent again by anyone is a new request, as annotation triggers are cleared once acted on.
    if run.spec.action.is_some()
        && decision.status.history.last().map(|h| &h.request_key) == actions::request_key(run).as_ref()
    {
        clear_handled_action(run, ctx).await?;
    }

    // A spec that cannot be acted on waits for a change (error_policy answers await_change).
    if let Err(problem) = triaged {
        return Err(problem.into());
    }
    Ok(match (decision.status.phase, slack_retry) {
        (_, Some(wait)) => Action::requeue(wait.min(Duration::from_secs(300))),
        (Some(p), None) if p.is_terminal() && !decision.stop_attempts => Action::await_change(),
        // A periodic resync covers anything a watch might miss; children wake us sooner.
        _ => Action::requeue(Duration::from_secs(300)),
    })
}

/// The run's attempts (labelled with its name and owned by its uid), from the attempt cache once
/// its first list is complete, else by a LIST. The cache is written before any event wakes the run,
/// so it holds at least what woke this reconcile; a status write decided on an older copy is
/// refused by its resourceVersion precondition and retried. Errors: the LIST failed.
async fn observe_attempts(run: &HealingRun, ns: &str, name: &str, ctx: &Context) -> Result<Vec<AttemptView>> {
    let uid = run.metadata.uid.as_ref();
    let ours = |a: &HealingAttempt| {
        a.labels().get(labels::RUN).map(String::as_str) == Some(name)
            && a.owner_references().iter().any(|o| Some(&o.uid) == uid)
    };
    let mut attempts: Vec<AttemptView> = match ctx.attempts.ready() {
        Some(store) => store
            .state_filter(|a| a.metadata.namespace.as_deref() == Some(ns) && ours(a))
            .iter()
            .map(|a| attempt_view(a))
            .collect(),
        None => Api::<HealingAttempt>::namespaced(ctx.client.clone(), ns)
            .list(&ListParams::default().labels(&labels::run_selector(name)))
            .await?
            .into_iter()
            .filter(ours)
            .map(|a| attempt_view(&a))
            .collect(),
    };
    attempts.sort_by_key(|a| a.number);
    Ok(attempts)
}

fn attempt_view(a: &HealingAttempt) -> AttemptView {
    let st = a.status.clone().unwrap_or_default();
    AttemptView {
        number: a.spec.attempt,
        name: a.name_any(),
        phase: st.phase.unwrap_or_default(),
        failure_reason: st.failure_reason,
        summary: st.verdict.as_ref().map(|v| v.summary.clone()).filter(|s| !s.is_empty()),
        patch_config_map: st.patch_config_map,
        tokens: st.verdict.as_ref().and_then(|v| v.tokens.clone()),
        protected_paths: st.verdict.as_ref().map(|v| v.protected_paths.clone()).unwrap_or_default(),
        diffstat: st.verdict.and_then(|v| v.diffstat),
    }
}

/// What the controller read from GitHub about `run`'s failure: the stored read, else a fresh one
/// (stored in the context ConfigMap, with an Event). Errors: the API server, a transient GitHub error.
async fn read_failure(run: &HealingRun, gh: &dyn crate::github::GitHub, ctx: &Context) -> Result<ReadFailure> {
    if let Some(r) = failure::stored(run, ctx).await? {
        return Ok(r);
    }
    let r = failure::fetch(run, gh, ctx).await?;
    if let Some(cm) = failure::context_configmap(run, &r)? {
        apply::apply_object::<ConfigMap>(ctx, &cm).await?;
    }
    let note = format!(
        "read the failure from GitHub: {}; {} failed step(s), {} annotation(s), {} changed file(s){}",
        r.log.message,
        r.failed_steps.len(),
        r.annotations,
        r.changed_files.len(),
        r.step.as_ref().map(|s| format!(", step '{}'", s.step)).unwrap_or_default()
    );
    tracing::info!(run = %run.name_any(), namespace = ?run.namespace(), reason = %r.log.reason, log_bytes = r.log_bytes, "{note}");
    apply::publish(ctx, run, Notice::normal(Reason::FailureRead, note).warning_if(!r.log.fetched)).await;
    Ok(r)
}

/// Whether the controller can act on `run`'s spec at all: a code host it can talk to, a mode it
/// implements, a configured profile, and (with a GitHub identity) a repository the config allows
/// the run's namespace to heal. Pure. Errors: the [`SpecProblem`] that `Accepted=False` reports.
pub fn accept(run: &HealingRun, config: &ControllerConfig) -> Result<(), SpecProblem> {
    let src = &run.spec.source;
    let policy = &run.spec.policy;
    if src.provider != Provider::Github {
        return Err(SpecProblem {
            reason: Reason::ProviderNotSupported,
            message: format!(
                "spec.source.provider '{}' is not supported yet: ci-healer reads failures from GitHub only; \
                 use provider 'github'",
                src.provider.as_str()
            ),
        });
    }
    if config.github.is_some() {
        let ns = run.namespace().unwrap_or_default();
        if !config.allowed_repositories.allows(&ns, &src.repository) {
            let allowed = config.allowed_repositories.patterns(&ns);
            return Err(SpecProblem {
                reason: Reason::RepositoryNotAllowed,
                message: format!(
                    "the controller config does not allow namespace '{ns}' to heal {} (allowed: {}); \
                     add it to allowedRepositories.{ns}",
                    src.repository,
                    if allowed.is_empty() { "nothing".into() } else { allowed.join(", ") }
                ),
            });
        }
    }
    if policy.mode == HealingMode::PullRequest && config.github.is_none() {
        return Err(SpecProblem {
            reason: Reason::ModeNotImplemented,
            message: format!(
                "spec.policy.mode '{}' needs a GitHub identity (the controller config's github: section), \
                 which this controller has not: it keeps a validated patch in the cluster and opens no pull \
                 request; set mode to 'propose' or configure github",
                policy.mode.as_str()
            ),
        });
    }
    if policy.agent != "auto" && !config.profiles.contains_key(&policy.agent) {
        return Err(SpecProblem {
            reason: Reason::UnknownProfile,
            message: format!(
                "spec.policy.agent '{}' is not a configured profile (configured: {}); set it to 'auto' or one of those",
                policy.agent,
                config.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    Ok(())
}

/// Accept a run ([`accept`]), triage it from its spec and pick its profile. Pure. Errors: the
/// [`SpecProblem`] of a spec the controller cannot act on.
pub fn triage_run(run: &HealingRun, config: &ControllerConfig) -> Result<(TriageView, TriageResult), SpecProblem> {
    triage_run_with(run, config, None)
}

/// `t` with every string in it masked by `masker` (the excerpt, the diagnostics, the failing step).
/// The error hash, computed before, is kept as it is. Pure.
fn mask_triage(t: TriageResult, masker: &Masker) -> TriageResult {
    let hash = t.error_hash.clone();
    let masked = serde_json::to_value(&t).ok().and_then(|mut v| {
        masker.mask_json(&mut v);
        serde_json::from_value::<TriageResult>(v).ok()
    });
    match masked {
        Some(m) => TriageResult { error_hash: hash, ..m },
        // Only a masked identifier (a class or enum name) could fail to read back: keep the text masked.
        None => TriageResult { excerpt: masker.mask(&t.excerpt), diagnostics: vec![], ..t },
    }
}

/// [`triage_run`], with what was read from GitHub: its triage (of the masked log, names,
/// annotations and changed files) replaces triage of the spec's excerpt. Pure.
pub fn triage_run_with(
    run: &HealingRun,
    config: &ControllerConfig,
    read: Option<&ReadFailure>,
) -> Result<(TriageView, TriageResult), SpecProblem> {
    accept(run, config)?;
    let src = &run.spec.source;
    let policy = &run.spec.policy;
    // An inline excerpt is the sender's text: mask it before triage copies any of it into the
    // context ConfigMap (excerpt and triage JSON) or the status, as a log read from GitHub is.
    let excerpt = run.spec.failure.as_ref().map(|f| Masker::default().mask(&f.excerpt)).unwrap_or_default();
    let input = TriageInput {
        log: excerpt.as_bytes(),
        workflow_name: src.workflow_name.as_deref(),
        job_name: src.job_name.as_deref(),
        failed_steps: &src.failed_steps,
        changed_files: &[],
        error_type: run.spec.failure.as_ref().and_then(|f| f.error_type.as_deref()),
        ..Default::default()
    };
    let result = match read {
        Some(r) => r.triage.clone(),
        None => triage::triage(&input, &config.routing),
    };
    let agent = if policy.agent != "auto" {
        policy.agent.clone()
    } else if config.profiles.contains_key(&result.profile) {
        result.profile.clone()
    } else {
        config.routing.fallback_profile.clone()
    };
    let view = TriageView {
        failure_class: FailureClass::parse(&result.failure_class).unwrap_or(FailureClass::Unknown),
        confidence: result.confidence,
        agent,
        error_hash: result.error_hash.clone(),
        rerun: result.action == RouteAction::Rerun,
    };
    Ok((view, result))
}

/// Remove `spec.action` and `spec.actionRequest` once their request is recorded, with the
/// resourceVersion of a fresh read as precondition: a newer request that arrived meanwhile is never
/// dropped (the conflict requeues). Errors: the API request failed.
async fn clear_handled_action(run: &HealingRun, ctx: &Context) -> Result<()> {
    let api: Api<HealingRun> = Api::namespaced(ctx.client.clone(), &run.namespace().ok_or(Error::MissingNamespace)?);
    let Some(fresh) = api.get_opt(&run.name_any()).await? else { return Ok(()) };
    if actions::request_key(&fresh) != actions::request_key(run) {
        return Ok(()); // a newer request: the next reconcile handles it
    }
    let patch = json!({
        "metadata": {"resourceVersion": fresh.resource_version()},
        "spec": {"action": null, "actionRequest": null}
    });
    let params = kube::api::PatchParams { field_manager: Some(super::FIELD_MANAGER.into()), ..Default::default() };
    api.patch(&run.name_any(), &params, &kube::api::Patch::Merge(patch)).await?;
    Ok(())
}

/// Label the run with its error hash if it lacks it; returns the run's new resourceVersion when it
/// wrote. Errors: the API request failed.
async fn ensure_hash_label(run: &HealingRun, hash: &str, ctx: &Context) -> Result<Option<String>> {
    if run.labels().get(labels::ERROR_HASH).map(String::as_str) == Some(hash) {
        return Ok(None);
    }
    Ok(apply::apply_labels(ctx, run, json!({ labels::ERROR_HASH: hash })).await?.resource_version())
}

/// The attempt a reconcile starts: its number, agent profile, a person's hint, and the past fixes
/// it may reuse ([`memory::recall`]).
struct NextAttempt<'a> {
    number: i32,
    profile: &'a str,
    hint: Option<&'a str>,
    memory: crate::contract::memory::MemoryContext,
}

async fn start_attempt(
    run: &HealingRun,
    next: NextAttempt<'_>,
    triage: &TriageResult,
    read: Option<&ReadFailure>,
    ctx: &Context,
) -> Result<()> {
    let NextAttempt { number: n, profile, hint, memory } = next;
    let ns = run.namespace().ok_or(Error::MissingNamespace)?;
    // The context every attempt pod mounts: the bounded excerpt and triage's answer (and what was
    // read from GitHub, which the same apply must keep), a person's hint, and the past fixes the
    // attempts may reuse.
    let mut cm = match read {
        Some(r) => failure::context_configmap(run, r)?,
        None => configmap::build_context(run, &triage.excerpt, &serde_json::to_string_pretty(triage)?),
    }
    .ok_or(Error::MissingNamespace)?;
    if let Some(hint) = hint {
        cm.data.get_or_insert_default().insert(paths::context::HINT.into(), hint.into());
    }
    if let Some(r) = &memory.replay {
        tracing::info!(run = %run.name_any(), namespace = %ns, entry = %r.entry, from = %r.source_run, "a validated fix of the same error is remembered");
    }
    if !memory.is_empty() {
        cm.data.get_or_insert_default().insert(paths::context::MEMORY.into(), serde_json::to_string(&memory)?);
    }
    apply::apply_object::<ConfigMap>(ctx, &cm).await?;

    // triage_run only returns configured profiles, so a miss is a config reload race: retry.
    let attempt = build_attempt(run, n, profile, &ctx.config).ok_or_else(|| Error::ProfileVanished(profile.into()))?;
    // An attempt's spec is frozen at creation: create it once, never rewrite it.
    match apply::create_once(ctx, &attempt).await? {
        Created::New(_) => {
            tracing::info!(run = %run.name_any(), namespace = %ns, attempt = n, profile, "created HealingAttempt")
        }
        // Ours from an earlier reconcile (a restart, a stale cache), or a leftover of a deleted run
        // with the same name that the garbage collector has not removed yet: wait for it.
        Created::Existing(existing) => {
            if !existing.owner_references().iter().any(|o| Some(&o.uid) == run.metadata.uid.as_ref()) {
                return Err(Error::AttemptNameTaken(attempt.name_any()));
            }
            tracing::debug!(run = %run.name_any(), attempt = n, "HealingAttempt already exists")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{FailureSource, HealingPolicy, HealingRunSpec};

    fn run(provider: Provider, mode: HealingMode, agent: &str) -> HealingRun {
        HealingRun::new(
            "r",
            HealingRunSpec {
                source: FailureSource {
                    provider,
                    repository: "o/r".into(),
                    branch: "main".into(),
                    head_sha: "3484a3f".into(),
                    ..Default::default()
                },
                failure: None,
                policy: HealingPolicy { mode, agent: agent.into(), ..Default::default() },
                action: None,
                action_request: None,
            },
        )
    }

    /// An inline excerpt's secrets never reach what the controller stores: the triage answer (its
    /// excerpt, diagnostics and JSON form the context ConfigMap's two keys) holds none of them.
    #[test]
    fn an_inline_excerpts_secrets_are_masked_before_triage() {
        let token = "ghp_R5canaryR5canaryR5canaryR5canary1234";
        let aws = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYR5CANARYKEY";
        let password = "hunter2-R5-canary";
        let mut r = run(Provider::Github, HealingMode::Propose, "auto");
        r.spec.failure = Some(crate::crd::FailureExcerpt {
            excerpt: format!(
                "error[E0425]: cannot find value `x` in this scope\n --> src/lib.rs:1:1\n\
                 git clone https://x-access-token:{token}@github.com/o/r\n\
                 aws_secret_access_key = {aws}\n\
                 DATABASE_PASSWORD={password}\n\
                 error: could not compile `demo` due to 1 previous error\n"
            ),
            ..Default::default()
        });
        let (_, triage) = triage_run(&r, &ControllerConfig::default()).unwrap();
        let stored = format!("{}\n{}", triage.excerpt, serde_json::to_string(&triage).unwrap());
        assert!(stored.contains("cannot find value"), "triage still sees the failure: {stored}");
        for secret in [token, aws, password] {
            assert!(!stored.contains(secret), "{secret} stored: {stored}");
        }
    }

    /// The controller's own secret values (no known format: its GitHub token, say) in an inline
    /// excerpt are masked in all of triage's text before it is stored; the error hash is kept.
    #[test]
    fn the_controllers_own_secrets_are_masked_in_triages_text() {
        let own = "r5-own-github-token-0a1b2c";
        let mut r = run(Provider::Github, HealingMode::Propose, "auto");
        r.spec.failure = Some(crate::crd::FailureExcerpt {
            excerpt: format!(
                "error[E0425]: cannot find value `{own}` in this scope\n --> src/lib.rs:1:1\n\
                 Authorization: token {own}\n\
                 error: could not compile `demo` due to 1 previous error\n"
            ),
            ..Default::default()
        });
        let (_, triage) = triage_run(&r, &ControllerConfig::default()).unwrap();
        assert!(serde_json::to_string(&triage).unwrap().contains(own), "the fixture must reach triage's text");
        let masked = mask_triage(triage.clone(), &Masker::new([own.to_string()]));
        let stored = serde_json::to_string(&masked).unwrap();
        assert!(!stored.contains(own), "{stored}");
        assert!(masked.excerpt.contains("cannot find value `[MASKED]`"), "{}", masked.excerpt);
        assert_eq!(masked.error_hash, triage.error_hash);
        assert_eq!(masked.failure_class, triage.failure_class);
    }

    /// Nothing is accepted that nothing does: each spec the controller cannot act on gets a reason
    /// that says so.
    #[test]
    fn accept_table() {
        let cfg = ControllerConfig::default();
        let cases = [
            (Provider::Github, HealingMode::Propose, "auto", None),
            (Provider::Github, HealingMode::Propose, "rust", None),
            (Provider::Gitlab, HealingMode::Propose, "auto", Some((Reason::ProviderNotSupported, "provider 'gitlab'"))),
            (
                Provider::Generic,
                HealingMode::Propose,
                "auto",
                Some((Reason::ProviderNotSupported, "provider 'generic'")),
            ),
            (
                Provider::Github,
                HealingMode::PullRequest,
                "auto",
                Some((Reason::ModeNotImplemented, "mode 'pull-request'")),
            ),
            (
                Provider::Github,
                HealingMode::Propose,
                "quantum",
                Some((Reason::UnknownProfile, "'quantum' is not a configured")),
            ),
        ];
        for (provider, mode, agent, want) in cases {
            let got = accept(&run(provider, mode, agent), &cfg).err();
            match (want, got) {
                (None, None) => {}
                (Some((reason, fragment)), Some(p)) => {
                    assert_eq!(p.reason, reason, "{provider:?} {mode:?} {agent}");
                    assert!(p.message.contains(fragment), "{}", p.message);
                }
                (want, got) => panic!("{provider:?} {mode:?} {agent}: want {want:?}, got {got:?}"),
            }
        }
        let (view, _) = triage_run(&run(Provider::Github, HealingMode::Propose, "rust"), &cfg).unwrap();
        assert_eq!(view.agent, "rust");
    }
}
