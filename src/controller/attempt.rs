//! HealingAttempt reconcile: observe (the attempt, its run from the reflector, its Job and pods) →
//! decide ([`attempt_state::decide`], pure) → apply (create the Job once, stop it on abort, keep the
//! patch) → write status, Events and metrics.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use super::apply::{self, Created, Notice};
use super::attempt_state::{self, AttemptAction, AttemptObservation, JobState, OwnerView};
use super::{Context, Error, Result, instrumented};
use crate::crd::{AttemptPhase, HealingAttempt, HealingRun};
use crate::resources::job;

/// Reconcile one HealingAttempt. Errors are transient API failures, retried with backoff.
pub async fn reconcile(attempt: Arc<HealingAttempt>, ctx: Arc<Context>) -> Result<Action> {
    instrumented(attempt.as_ref(), &ctx, reconcile_inner(&attempt, &ctx)).await
}

async fn reconcile_inner(attempt: &HealingAttempt, ctx: &Context) -> Result<Action> {
    let ns = attempt.namespace().ok_or(Error::MissingNamespace)?;
    let name = attempt.name_any();
    if attempt.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }

    // Observe. The run comes from the run controller's reflector (no GET per reconcile). A run the
    // cache does not hold (a restarted controller before its first list, or a deleted run) is asked
    // of the API server once, so a cold cache never passes a live run for a deleted one. Awaiting
    // `Store::wait_until_ready` here instead lost wake-ups: its one-shot channel wakes only the last
    // task that polled it, and the run controller's own runner polls it too (a standby that took over
    // the Lease then never reconciled an attempt again).
    let run = match ctx.runs.get(&ObjectRef::<HealingRun>::new(&attempt.spec.run_name).within(&ns)) {
        Some(r) => Some(r),
        None => {
            Api::<HealingRun>::namespaced(ctx.client.clone(), &ns).get_opt(&attempt.spec.run_name).await?.map(Arc::new)
        }
    };
    let owner = OwnerView::of(attempt, run.as_deref());
    let old = attempt.status.clone().unwrap_or_default();
    let needs_job = owner == OwnerView::Alive { aborted: false } && !old.phase.is_some_and(AttemptPhase::is_terminal);
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns);
    let (job_state, newest_pod) =
        if needs_job { observe_job(attempt, &ns, ctx, &jobs, &pods).await? } else { (JobState::NotRead, None) };
    let obs = AttemptObservation { attempt, owner, job: job_state, newest_pod, now: Time(jiff::Timestamp::now()) };

    // Decide.
    let mut decision = attempt_state::decide(&obs);

    // Apply.
    match &decision.action {
        AttemptAction::None => {}
        AttemptAction::CreateJob => {
            let built = job::build_job(attempt, &ctx.config.attempt.resources);
            match apply::create_once(ctx, &built).await? {
                Created::New(j) => {
                    ctx.metrics.jobs_created.inc();
                    tracing::info!(attempt = %name, namespace = %ns, job = %j.name_any(), "created Job");
                }
                // A Job of this name appeared since we looked: ours from an earlier reconcile, or not.
                Created::Existing(j) if !job::is_owned_by(&j, attempt) => {
                    decision = attempt_state::decide(&AttemptObservation { job: JobState::NotOwned, ..obs.clone() });
                }
                Created::Existing(_) => {}
            }
        }
        AttemptAction::StopJob => stop(attempt, &jobs, &pods).await?,
        AttemptAction::KeepPatch { pod, verdict } => {
            decision.status.patch_config_map = super::patch::keep_patch(attempt, pod.as_deref(), verdict, ctx).await?;
        }
    }

    // Status, Events, metrics, logs.
    if decision.status != old {
        apply::apply_status(ctx, attempt, attempt.resource_version().as_deref(), &decision.status).await?;
        if let Some(t) = attempt_state::transition(&old, &decision.status, attempt.spec.attempt) {
            tracing::info!(attempt = %name, namespace = %ns, reason = t.reason.as_str(), "{}", t.message);
            apply::publish(ctx, attempt, Notice::normal(t.reason, &t.message).warning_if(t.warning)).await;
            if decision.status.phase.is_some_and(|p| p.is_terminal()) {
                ctx.metrics.attempt_finished(attempt, run.as_deref(), &decision.status);
                // People read `kubectl describe healingrun`: tell the run too, unless the run's own
                // Event says it (a passing attempt makes the run Fixed, whose Event quotes the verdict).
                if let Some(run) = &run
                    && decision.status.phase != Some(AttemptPhase::Succeeded)
                {
                    let related = Some(attempt.object_ref(&()));
                    apply::publish(
                        ctx,
                        run.as_ref(),
                        Notice::normal(t.reason, t.message).warning_if(t.warning).related(related),
                    )
                    .await;
                }
            }
        }
    }
    if owner == OwnerView::Gone {
        tracing::info!(attempt = %name, namespace = %ns, "the run that owns this attempt is gone; waiting for garbage collection");
    }
    Ok(decision.requeue.map_or_else(Action::await_change, Action::requeue))
}

/// The attempt's Job (owned or not) and, for its own Job, what its pods say; plus the newest pod's
/// name (whose validate log holds the patch). Errors: API failures.
///
/// Read from the caches ([`super::cache`]), which hold the controller's own Jobs and attempt pods;
/// the API server is asked only when they cannot answer:
/// - the Job is not cached: before this attempt created one (`status.jobName` unset) it is
///   [`JobState::Absent`] (creating it is create-if-absent, and a same-named Job that is not ours
///   is found then); after, it is read with a GET (a Job the watch has not delivered yet, or one
///   deleted: the GET says which, as it did before the caches);
/// - the pod cache has not completed its first list (a controller that just started): a LIST.
async fn observe_job(
    attempt: &HealingAttempt,
    ns: &str,
    ctx: &Context,
    jobs: &Api<Job>,
    pods: &Api<Pod>,
) -> Result<(JobState, Option<String>)> {
    let name = job::job_name(attempt);
    let cached = ctx.jobs.ready().and_then(|s| s.get(&ObjectRef::<Job>::new(&name).within(ns)));
    let created_before = attempt.status.as_ref().is_some_and(|s| s.job_name.is_some());
    let current = match cached {
        Some(j) => j,
        None if ctx.jobs.ready().is_some() && !created_before => return Ok((JobState::Absent, None)),
        None => match jobs.get_opt(&name).await? {
            Some(j) => Arc::new(j),
            None => return Ok((JobState::Absent, None)),
        },
    };
    if !job::is_owned_by(&current, attempt) {
        return Ok((JobState::NotOwned, None));
    }
    let attempt_name = attempt.name_any();
    let pod_list: Vec<Pod> = match ctx.pods.ready() {
        Some(store) => store
            .state_filter(|p| {
                p.metadata.namespace.as_deref() == Some(ns)
                    && p.labels().get(crate::resources::labels::ATTEMPT) == Some(&attempt_name)
            })
            .iter()
            .map(|p| p.as_ref().clone())
            .collect(),
        None => pods.list(&ListParams::default().labels(&job::pod_selector(&attempt_name))).await?.items,
    };
    let newest =
        pod_list.iter().max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0)).map(|p| p.name_any());
    Ok((JobState::Observed(Box::new(job::observe(Some(&current), &pod_list))), newest))
}

async fn stop(attempt: &HealingAttempt, jobs: &Api<Job>, pods: &Api<Pod>) -> Result<()> {
    let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
    match jobs.delete(&job::job_name(attempt), &dp).await {
        Ok(_) => tracing::info!(attempt = %attempt.name_any(), "deleted Job (run aborted)"),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    // The garbage collector would remove the pods; delete them now so the attempt stops at once.
    let lp = ListParams::default().labels(&job::pod_selector(&attempt.name_any()));
    pods.delete_collection(&DeleteParams::default(), &lp).await?;
    Ok(())
}
