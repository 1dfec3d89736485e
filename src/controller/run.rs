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
use super::state::{self, AttemptView, RunObservation, TriageView};
use super::{Context, Error, Result, actions, dedup, instrumented};
use crate::config::ControllerConfig;
use crate::crd::conditions::Reason;
use crate::crd::{HealingAttempt, HealingMode, HealingRun, Provider};
use crate::resources::{attempt::attempt_name, attempt::build_attempt, configmap, labels};
use crate::telemetry::PhaseLabels;
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
    let attempts_api = Api::<HealingAttempt>::namespaced(ctx.client.clone(), &ns);
    let uid = run.metadata.uid.clone();
    let attempts: Vec<AttemptView> = attempts_api
        .list(&ListParams::default().labels(&labels::run_selector(&name)))
        .await?
        .into_iter()
        .filter(|a| a.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref()))
        .map(|a| attempt_view(&a))
        .collect();
    let triaged = triage_run(run, &ctx.config);
    let triage_view = triaged.as_ref().map(|(v, _)| v.clone()).map_err(Clone::clone);
    let primary = match &triaged {
        Ok((v, _)) => dedup::find_primary(run, &v.error_hash, &ctx.runs.state(), &ctx.config),
        Err(_) => None,
    };

    // Decide.
    let now = Time(jiff::Timestamp::now());
    let decision = state::decide(&RunObservation {
        run,
        attempts,
        triage: triage_view,
        primary,
        now,
        actions: ctx.config.actions.clone(),
        profiles: ctx.config.profiles.keys().cloned().collect(),
    });

    // Apply.
    if let Ok((view, result)) = &triaged {
        ensure_hash_label(run, &view.error_hash, ctx).await?;
        if let Some(n) = decision.start_attempt {
            // A retry may have asked for another profile and given a hint.
            let agent = decision.status.agent.as_deref().unwrap_or(&view.agent);
            let hint = decision.status.retry.as_ref().and_then(|r| r.hint.as_deref());
            start_attempt(run, n, agent, hint, result, ctx).await?;
        }
    }

    // Status, Events, metrics, logs.
    if run.status.as_ref() != Some(&decision.status) {
        apply::apply_status(ctx, run, &decision.status).await?;
        let old_phase = run.status.as_ref().and_then(|s| s.phase);
        if let Some(p) = decision.status.phase.filter(|p| Some(*p) != old_phase) {
            ctx.metrics.run_transitions.get_or_create(&PhaseLabels { phase: p.as_str().into() }).inc();
        }
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
    Ok(match decision.status.phase {
        Some(p) if p.is_terminal() && !decision.stop_attempts => Action::await_change(),
        // A periodic resync covers anything a watch might miss; children wake us sooner.
        _ => Action::requeue(Duration::from_secs(300)),
    })
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
        diffstat: st.verdict.and_then(|v| v.diffstat),
    }
}

/// Whether the controller can act on `run`'s spec at all: a code host it can talk to, a mode it
/// implements, a configured profile. Pure. Errors: the [`SpecProblem`] that `Accepted=False` reports.
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
    if policy.mode == HealingMode::PullRequest {
        return Err(SpecProblem {
            reason: Reason::ModeNotImplemented,
            message: format!(
                "spec.policy.mode '{}' is not implemented yet: ci-healer keeps a validated patch in the \
                 cluster and opens no pull request; set mode to 'propose'",
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
    accept(run, config)?;
    let src = &run.spec.source;
    let policy = &run.spec.policy;
    let excerpt = run.spec.failure.as_ref().map(|f| f.excerpt.as_bytes()).unwrap_or_default();
    let input = TriageInput {
        log: excerpt,
        workflow_name: src.workflow_name.as_deref(),
        job_name: src.job_name.as_deref(),
        failed_steps: &src.failed_steps,
        changed_files: &[],
        error_type: run.spec.failure.as_ref().and_then(|f| f.error_type.as_deref()),
    };
    let result = triage::triage(&input, &config.routing);
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

async fn ensure_hash_label(run: &HealingRun, hash: &str, ctx: &Context) -> Result<()> {
    if run.labels().get(labels::ERROR_HASH).map(String::as_str) == Some(hash) {
        return Ok(());
    }
    apply::apply_labels(ctx, run, json!({ labels::ERROR_HASH: hash })).await
}

async fn start_attempt(
    run: &HealingRun,
    n: i32,
    profile: &str,
    hint: Option<&str>,
    triage: &TriageResult,
    ctx: &Context,
) -> Result<()> {
    let ns = run.namespace().ok_or(Error::MissingNamespace)?;
    // The context every attempt pod mounts: the bounded excerpt, triage's answer, a person's hint.
    let mut cm = configmap::build_context(run, &triage.excerpt, &serde_json::to_string_pretty(triage)?)
        .ok_or(Error::MissingNamespace)?;
    if let (Some(hint), Some(data)) = (hint, cm.data.as_mut()) {
        data.insert(crate::contract::paths::context::HINT.into(), hint.into());
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
