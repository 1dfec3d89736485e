//! HealingRun reconcile: observe → triage → dedup → decide → start an attempt → write status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::state::{self, AttemptView, PrimaryView, RunObservation, TriageView};
use super::{Context, Error, FIELD_MANAGER, Result, instrumented};
use crate::config::ControllerConfig;
use crate::crd::{HealingAttempt, HealingRun, LABEL_ERROR_HASH, LABEL_RUN, RunPhase};
use crate::resources::{attempt::build_attempt, configmap};
use crate::telemetry::PhaseLabels;
use crate::triage::{self, TriageInput, TriageResult};

/// Reconcile one HealingRun. Errors are transient (API failures) and retried with backoff; a spec the
/// controller cannot act on is reported through the `Accepted=False` condition instead.
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
        .list(&ListParams::default().labels(&format!("{LABEL_RUN}={name}")))
        .await?
        .into_iter()
        .filter(|a| a.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref()))
        .map(|a| attempt_view(&a))
        .collect();
    let triaged = triage_run(run, &ctx.config);
    let triage_view = triaged.as_ref().map(|(v, _)| v.clone()).map_err(Clone::clone);
    let primary = match &triaged {
        Ok((v, _)) => find_primary(run, &v.error_hash, &ctx.runs.state(), &ctx.config),
        Err(_) => None,
    };

    // Decide.
    let now = Time(jiff::Timestamp::now());
    let decision = state::decide(&RunObservation { run, attempts, triage: triage_view, primary, now });

    // Apply.
    if let Ok((view, result)) = &triaged {
        ensure_hash_label(run, &view.error_hash, ctx).await?;
        if let Some(n) = decision.start_attempt {
            start_attempt(run, n, &view.agent, result, ctx).await?;
        }
    }

    // Status, Events, metrics, logs.
    if run.status.as_ref() != Some(&decision.status) {
        let api = Api::<HealingRun>::namespaced(ctx.client.clone(), &ns);
        let patch = json!({"apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun", "status": decision.status});
        api.patch_status(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(patch)).await?;
        let old_phase = run.status.as_ref().and_then(|s| s.phase);
        if let Some(p) = decision.status.phase.filter(|p| Some(*p) != old_phase) {
            ctx.metrics.run_transitions.get_or_create(&PhaseLabels { phase: format!("{p:?}") }).inc();
        }
        for t in state::transitions(run.status.as_ref(), &decision.status) {
            tracing::info!(run = %name, namespace = %ns, reason = t.reason, phase = ?decision.status.phase, "{}", t.message);
            let related = (t.reason == "AttemptStarted")
                .then_some(decision.status.current_attempt)
                .flatten()
                .map(|n| attempt_ref(run, n));
            publish(ctx, run, t.warning, t.reason, &t.message, related).await;
        }
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
        diffstat: st.verdict.and_then(|v| v.diffstat),
    }
}

/// Triage a run from its spec and pick its profile. Pure. `Err((reason, message))` when the spec names
/// a profile the config does not have.
pub fn triage_run(run: &HealingRun, config: &ControllerConfig) -> Result<(TriageView, TriageResult), (String, String)> {
    let src = &run.spec.source;
    let policy = &run.spec.policy;
    if policy.agent != "auto" && !config.profiles.contains_key(&policy.agent) {
        return Err((
            "UnknownProfile".into(),
            format!(
                "spec.policy.agent '{}' is not a configured profile (configured: {}); set it to 'auto' or one of those",
                policy.agent,
                config.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let excerpt = run.spec.failure.as_ref().map(|f| f.excerpt.as_bytes()).unwrap_or_default();
    let input = TriageInput {
        log: excerpt,
        workflow_name: src.workflow_name.as_deref(),
        job_name: src.job_name.as_deref(),
        failed_steps: &src.failed_steps,
        changed_files: &[],
        error_type: run.spec.failure.as_ref().and_then(|f| f.error_type.as_deref()),
        ..Default::default()
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
        failure_class: result.failure_class.clone(),
        confidence: result.confidence,
        agent,
        error_hash: result.error_hash.clone(),
    };
    Ok((view, result))
}

/// The run `run` duplicates: the oldest other active run in the same namespace with the same
/// repository, head SHA and error hash. Once a run is marked a duplicate it keeps its primary.
/// Pure over the reflector's snapshot; every replica and every restart computes the same answer
/// because the order (creationTimestamp, name) is fixed and the hash is a function of the spec.
pub fn find_primary(
    run: &HealingRun,
    error_hash: &str,
    runs: &[Arc<HealingRun>],
    config: &ControllerConfig,
) -> Option<PrimaryView> {
    let ns = run.namespace();
    if let Some(p) = run.status.as_ref().and_then(|s| s.duplicate_of.clone()) {
        if let Some(other) = runs.iter().find(|o| o.namespace() == ns && o.name_any() == p) {
            return Some(PrimaryView { name: p, phase: other.status.as_ref().and_then(|s| s.phase) });
        }
        return None;
    }
    let key = |r: &HealingRun| (r.metadata.creation_timestamp.clone().map(|t| t.0), r.name_any());
    let src = &run.spec.source;
    runs.iter()
        .filter(|o| o.namespace() == ns && o.name_any() != run.name_any())
        .filter(|o| {
            o.spec.source.repository.eq_ignore_ascii_case(&src.repository) && o.spec.source.head_sha == src.head_sha
        })
        .filter(|o| key(o) < key(run))
        .filter(|o| o.metadata.deletion_timestamp.is_none())
        .filter(|o| {
            let st = o.status.as_ref();
            !st.and_then(|s| s.phase).is_some_and(RunPhase::is_terminal)
                && st.and_then(|s| s.duplicate_of.as_ref()).is_none()
                && !st.is_some_and(|s| {
                    crate::crd::conditions::get(&s.conditions, state::cond::ACCEPTED)
                        .is_some_and(|c| c.status == "False")
                })
        })
        .filter(|o| {
            let h = o.status.as_ref().and_then(|s| s.error_hash.clone());
            let h = h.or_else(|| triage_run(o, config).ok().map(|(v, _)| v.error_hash));
            h.as_deref() == Some(error_hash)
        })
        .min_by_key(|o| key(o))
        .map(|o| PrimaryView { name: o.name_any(), phase: o.status.as_ref().and_then(|s| s.phase) })
}

async fn ensure_hash_label(run: &HealingRun, hash: &str, ctx: &Context) -> Result<()> {
    if run.labels().get(LABEL_ERROR_HASH).map(String::as_str) == Some(hash) {
        return Ok(());
    }
    let api = Api::<HealingRun>::namespaced(ctx.client.clone(), &run.namespace().ok_or(Error::MissingNamespace)?);
    let patch = json!({
        "apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun",
        "metadata": {"name": run.name_any(), "labels": {LABEL_ERROR_HASH: hash}}
    });
    api.patch(&run.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(patch)).await?;
    Ok(())
}

async fn start_attempt(run: &HealingRun, n: i32, profile: &str, triage: &TriageResult, ctx: &Context) -> Result<()> {
    let ns = run.namespace().ok_or(Error::MissingNamespace)?;
    let owner = run.controller_owner_ref(&()).ok_or(Error::MissingNamespace)?;
    // The context every attempt pod mounts: the bounded excerpt and triage's answer.
    let cm =
        configmap::build_context(&run.name_any(), &ns, owner, &triage.excerpt, &serde_json::to_string_pretty(triage)?);
    let cms = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(ctx.client.clone(), &ns);
    cms.patch(
        &configmap::context_name(&run.name_any()),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;

    let Some(attempt) = build_attempt(run, n, profile, &ctx.config) else {
        // triage_run only returns configured profiles, so this is a config reload race: retry.
        return Err(Error::Kube(kube::Error::Api(
            kube::core::Status::failure(&format!("profile {profile} vanished"), "NotFound").with_code(404).boxed(),
        )));
    };
    let api = Api::<HealingAttempt>::namespaced(ctx.client.clone(), &ns);
    // An attempt's spec is frozen at creation: create it once, never rewrite it.
    match api.create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &attempt).await {
        Ok(_) => {
            tracing::info!(run = %run.name_any(), namespace = %ns, attempt = n, profile, "created HealingAttempt")
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            // Ours from an earlier reconcile (a restart, a stale cache), or a leftover of a deleted run
            // with the same name that the garbage collector has not removed yet: wait for it.
            let existing = api.get(&attempt.name_any()).await?;
            if !existing.owner_references().iter().any(|o| Some(&o.uid) == run.metadata.uid.as_ref()) {
                return Err(Error::AttemptNameTaken(attempt.name_any()));
            }
            tracing::debug!(run = %run.name_any(), attempt = n, "HealingAttempt already exists")
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// An ObjectReference to attempt `n` of `run`, for an Event's `related` field.
fn attempt_ref(run: &HealingRun, n: i32) -> k8s_openapi::api::core::v1::ObjectReference {
    k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("cihealer.dev/v1alpha1".into()),
        kind: Some("HealingAttempt".into()),
        name: Some(crate::resources::attempt::attempt_name(&run.name_any(), n)),
        namespace: run.namespace(),
        ..Default::default()
    }
}

pub(crate) async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    warning: bool,
    reason: &str,
    note: &str,
    related: Option<k8s_openapi::api::core::v1::ObjectReference>,
) {
    let ev = Event {
        type_: if warning { EventType::Warning } else { EventType::Normal },
        reason: reason.into(),
        note: Some(note.chars().take(1024).collect()),
        action: reason.into(),
        // The attempt an Event is about, so each attempt gets its own Event instead of one series.
        secondary: related,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "cannot publish Event");
    }
}
