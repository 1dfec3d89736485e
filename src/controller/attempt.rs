//! HealingAttempt reconcile: create the Job once, read its pod's outcome, keep the patch, stop on abort.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::run::publish;
use super::{Context, Error, FIELD_MANAGER, Result, instrumented};
use crate::contract::Outcome;
use crate::crd::conditions;
use crate::crd::{AttemptPhase, HealingAttempt, HealingAttemptStatus, HealingRun, RunAction, RunPhase};
use crate::resources::job::{self, JobObservation};
use crate::telemetry::OutcomeLabels;

/// Condition types of a HealingAttempt.
pub mod cond {
    pub const JOB_CREATED: &str = "JobCreated";
    pub const COMPLETED: &str = "Completed";
}

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
    let old = attempt.status.clone().unwrap_or_default();
    let phase = old.phase.unwrap_or_default();
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &ns);
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns);
    let now = Time(jiff::Timestamp::now());
    let gen_ = attempt.metadata.generation;
    let mut st = old.clone();
    st.observed_generation = gen_;
    st.job_name = Some(job::job_name(attempt));

    // An aborted run stops its running attempt: delete the Job and its pods.
    let run = Api::<HealingRun>::namespaced(ctx.client.clone(), &ns).get_opt(&attempt.spec.run_name).await?;
    // The run that owns this attempt is gone (deleted, perhaps re-created under the same name): the
    // garbage collector removes the attempt; start nothing for it meanwhile.
    let owner_alive = match &run {
        Some(r) => attempt.owner_references().iter().any(|o| Some(&o.uid) == r.metadata.uid.as_ref()),
        None => false,
    };
    if !owner_alive {
        tracing::info!(attempt = %name, namespace = %ns, "the run that owns this attempt is gone; waiting for garbage collection");
        return Ok(Action::await_change());
    }
    let aborted = run.as_ref().is_some_and(|r| {
        r.spec.action == Some(RunAction::Abort) || r.status.as_ref().and_then(|s| s.phase) == Some(RunPhase::Aborted)
    });
    if aborted && !phase.is_terminal() {
        stop(attempt, &jobs, &pods).await?;
        st.phase = Some(AttemptPhase::Failed);
        st.failure_reason = Some("Aborted".into());
        st.completion_time = Some(now.clone());
        conditions::set(
            &mut st.conditions,
            conditions::new(cond::COMPLETED, true, "Aborted", "the run was aborted; the Job was deleted", gen_, now),
        );
        write_status(attempt, &old, st, ctx, run.as_ref()).await?;
        return Ok(Action::await_change());
    }
    if phase.is_terminal() {
        return Ok(Action::await_change());
    }

    // Create the Job once. Its template is immutable: never edited, never recreated.
    let mut current = jobs.get_opt(&job::job_name(attempt)).await?;
    if current.is_none() {
        let built = job::build_job(attempt, &ctx.config.attempt.resources);
        match jobs.create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &built).await
        {
            Ok(j) => {
                ctx.metrics.jobs_created.inc();
                tracing::info!(attempt = %name, namespace = %ns, job = %j.name_any(), "created Job");
                current = Some(j);
            }
            Err(kube::Error::Api(s)) if s.code == 409 => current = jobs.get_opt(&job::job_name(attempt)).await?,
            Err(e) => return Err(e.into()),
        }
        conditions::set(
            &mut st.conditions,
            conditions::new(
                cond::JOB_CREATED,
                true,
                "JobCreated",
                format!("Job {} carries out the attempt", job::job_name(attempt)),
                gen_,
                now.clone(),
            ),
        );
    }
    let Some(current) = current.filter(|j| job::is_owned_by(j, attempt)) else {
        conditions::set(
            &mut st.conditions,
            conditions::new(
                cond::JOB_CREATED,
                false,
                "JobNameTaken",
                "a Job with this attempt's name exists but is not owned by it",
                gen_,
                now,
            ),
        );
        write_status(attempt, &old, st, ctx, run.as_ref()).await?;
        return Ok(Action::requeue(Duration::from_secs(60)));
    };

    // Observe the pod and judge.
    let pod_list = pods.list(&ListParams::default().labels(&job::pod_selector(&name))).await?.items;
    match job::observe(Some(&current), &pod_list) {
        JobObservation::Missing | JobObservation::Pending => {
            st.phase = Some(AttemptPhase::Pending);
        }
        JobObservation::Running { started } => {
            st.phase = Some(AttemptPhase::Running);
            st.start_time = started.or(st.start_time);
        }
        JobObservation::Judged { verdict, diagnosis, started, finished } => {
            let passed = verdict.outcome == Outcome::Passed;
            if passed && st.patch_config_map.is_none() {
                let newest = pod_list.iter().max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
                st.patch_config_map = super::patch::keep_patch(attempt, newest, &verdict, ctx).await?;
            }
            st.phase = Some(if passed { AttemptPhase::Succeeded } else { AttemptPhase::Failed });
            st.failure_reason = (!passed).then(|| verdict.reason.clone());
            st.diagnosis = diagnosis;
            st.start_time = started.or(st.start_time);
            st.completion_time = Some(finished.unwrap_or_else(|| now.clone()));
            let msg = format!("{:?}: {} {}", verdict.outcome, verdict.reason, verdict.summary).trim().to_string();
            conditions::set(
                &mut st.conditions,
                conditions::new(cond::COMPLETED, true, &verdict.reason, msg, gen_, now),
            );
            st.verdict = Some(verdict);
        }
        JobObservation::Failed { reason, message, diagnosis, started, finished } => {
            st.phase = Some(AttemptPhase::Failed);
            st.failure_reason = Some(reason.clone());
            st.diagnosis = diagnosis;
            st.start_time = started.or(st.start_time);
            st.completion_time = Some(finished.unwrap_or_else(|| now.clone()));
            conditions::set(&mut st.conditions, conditions::new(cond::COMPLETED, true, &reason, message, gen_, now));
        }
    }
    write_status(attempt, &old, st, ctx, run.as_ref()).await?;
    Ok(Action::requeue(Duration::from_secs(300)))
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

async fn write_status(
    attempt: &HealingAttempt,
    old: &HealingAttemptStatus,
    st: HealingAttemptStatus,
    ctx: &Context,
    run: Option<&HealingRun>,
) -> Result<()> {
    if &st == old {
        return Ok(());
    }
    let ns = attempt.namespace().ok_or(Error::MissingNamespace)?;
    let api = Api::<HealingAttempt>::namespaced(ctx.client.clone(), &ns);
    let patch = json!({"apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingAttempt", "status": st});
    api.patch_status(&attempt.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(patch)).await?;
    if st.phase != old.phase {
        let n = attempt.spec.attempt;
        let (warning, reason, msg) = match st.phase {
            Some(AttemptPhase::Running) => (false, "AttemptRunning", format!("attempt {n} is running")),
            Some(AttemptPhase::Succeeded) => (
                false,
                "AttemptSucceeded",
                format!(
                    "attempt {n} passed validation: {}",
                    st.verdict.as_ref().map(|v| v.summary.as_str()).unwrap_or("")
                ),
            ),
            Some(AttemptPhase::Failed) => {
                let detail =
                    conditions::get(&st.conditions, cond::COMPLETED).map(|c| c.message.clone()).unwrap_or_default();
                (
                    true,
                    "AttemptFailed",
                    format!("attempt {n} failed with {}: {detail}", st.failure_reason.as_deref().unwrap_or("Unknown")),
                )
            }
            _ => return Ok(()),
        };
        tracing::info!(attempt = %attempt.name_any(), namespace = %ns, reason, "{msg}");
        publish(ctx, attempt, warning, reason, &msg, None).await;
        if st.phase.is_some_and(AttemptPhase::is_terminal) {
            let outcome = format!("{:?}", st.phase.unwrap_or_default());
            let r = st.failure_reason.clone().unwrap_or_else(|| "ValidationPassed".into());
            ctx.metrics.attempts_finished.get_or_create(&OutcomeLabels { outcome, reason: r }).inc();
            // People read `kubectl describe healingrun`: tell the run too.
            if let Some(run) = run {
                publish(ctx, run, warning, reason, &msg, Some(attempt.object_ref(&()))).await;
            }
        }
    }
    Ok(())
}
