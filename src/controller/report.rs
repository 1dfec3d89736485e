//! Reporting on GitHub (issue 9): the `ci-healer` check run on the head SHA (a commit status with a
//! plain token, which cannot create check runs) and one comment on the failing branch's pull
//! request, both created once and then edited in place as the run moves ([`GitHub::report`]:
//! `POST`/`PATCH /repos/{owner}/{repo}/check-runs[/{id}]`, `POST /repos/{owner}/{repo}/issues/{n}/comments`,
//! `PATCH /repos/{owner}/{repo}/issues/comments/{id}`).
//!
//! A report is sent when the run's reported state ([`key`]: `Queued`, `Running/<attempt>`, `Fixed`,
//! `Fixed/#<pr>`, `Escalated`, `Aborted`, `Denied`, `Resolved`, `Skipped`, `Rerun`) differs from
//! the one in `status.report.reported`. The ids GitHub gave (check run, comment) are kept in
//! `status.report`, so later reports edit them; a restarted controller whose status write was lost
//! finds both again by the run's key (the check run's `external_id`, the comment's hidden marker)
//! before creating anything, so a restart never posts a second one. A run that ends `Skipped` or
//! `Rerun` before anything was reported is not reported (those make no GitHub write beyond their
//! rule). The text is masked with the client's own secret values before it leaves.
//!
//! A transient GitHub error (rate limit, 5xx, timeout) requeues the run with backoff; a permanent
//! one sets `Reported=False`, [`Reason::GitHubRejected`], with a Warning Event, and the state counts
//! as reported (the next state tries again; no retry loop on a refusal).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::failure::ReadFailure;
use super::state::AttemptView;
use super::{Context, Error, Result, deliver};
use crate::agent::context::Masker;
use crate::crd::conditions::{self, Reason, RunCondition};
use crate::crd::run::ReportStatus;
use crate::crd::{HealingRun, HealingRunStatus, RunPhase};
use crate::github::render;
use crate::github::{GitHub, ReportIds, ReportRequest, SuggestRequest, Suggested, Target};

/// The state a report shows, or `None` when the run has no phase yet. Pure.
pub fn key(status: &HealingRunStatus) -> Option<String> {
    Some(match status.phase? {
        RunPhase::Running => format!("Running/{}", status.current_attempt.unwrap_or(0)),
        RunPhase::Fixed => match &status.pull_request {
            Some(p) => format!("Fixed/#{}", p.number),
            None => "Fixed".into(),
        },
        p => p.as_str().into(),
    })
}

/// Whether `status` needs a report: its [`key`] differs from the one last reported, and it is not a
/// `Skipped` or `Rerun` end of a run that reported nothing. Pure.
pub fn wanted(status: &HealingRunStatus) -> bool {
    let Some(key) = key(status) else { return false };
    let prev = status.report.as_ref().and_then(|r| r.reported.as_deref());
    if prev == Some(key.as_str()) {
        return false;
    }
    !(prev.is_none() && matches!(status.phase, Some(RunPhase::Skipped | RunPhase::Rerun)))
}

/// Report `status` on GitHub when [`wanted`], recording the ids, the key and the `Reported`
/// condition in `status`. Returns the message of a Warning Event when GitHub refused for good.
/// Errors: the API server (reading the kept patch), a transient GitHub error (the run requeues).
pub async fn report(
    run: &HealingRun,
    gh: &dyn GitHub,
    read: Option<&ReadFailure>,
    attempts: &[AttemptView],
    status: &mut HealingRunStatus,
    now: Time,
    ctx: &Context,
) -> Result<Option<String>> {
    if !wanted(status) {
        return Ok(None);
    }
    let Some(key) = key(status) else { return Ok(None) };
    let prev = status.report.clone().unwrap_or_default();
    let pr_number = prev.pull_request_number.or_else(|| read.and_then(|r| r.pull_request.as_ref()).map(|p| p.number));
    let phase = status.phase.unwrap_or_default();
    let mut view = deliver::view(run, status, read);
    view.phase = phase.as_str().into();
    let cond = match phase {
        RunPhase::Fixed => Some(RunCondition::Fixed),
        RunPhase::Escalated => Some(RunCondition::Escalated),
        RunPhase::Aborted => Some(RunCondition::Aborted),
        RunPhase::Denied => Some(RunCondition::Denied),
        RunPhase::Resolved => Some(RunCondition::Resolved),
        RunPhase::Skipped => Some(RunCondition::Skipped),
        RunPhase::Rerun => Some(RunCondition::Rerun),
        RunPhase::Running => Some(RunCondition::Healing),
        RunPhase::Queued => None,
    };
    let c = cond.and_then(|t| conditions::get(&status.conditions, t));
    view.reason = c.map(|c| c.reason.clone());
    view.message = c.map(|c| c.message.clone());
    view.attempts = deliver::attempt_rows(attempts);
    view.diagnosis = deliver::diagnosis(attempts);
    view.pull_request = status.pull_request.as_ref().map(|p| (p.number, p.url.clone()));
    // Not delivered as a pull request (propose mode, or a refused delivery): the patch is offered.
    if phase == RunPhase::Fixed && view.pull_request.is_none() {
        view.patch = deliver::kept_patch(run, status, ctx).await?;
    }
    let masker = masker(gh);
    // propose mode on a pull request: the patch is also offered as GitHub suggestion blocks on its
    // diff, when it fits there.
    if phase == RunPhase::Fixed
        && view.pull_request.is_none()
        && let (Some(number), Some(patch)) = (pr_number, view.patch.as_deref())
    {
        let req = SuggestRequest {
            target: Target::new(run.spec.source.repository.clone()),
            number,
            head_sha: run.spec.source.head_sha.clone(),
            key: view.key.clone(),
            body: format!(
                "ci-healer's fix for the failing {}, as suggested changes: **Commit suggestion** applies them \
                 (the run's comment has the same patch).",
                view.job.as_deref().unwrap_or("job")
            ),
            patch: masker.mask(patch).into_bytes(),
        };
        view.suggested = match gh.suggest(&req).await {
            Ok(Suggested::Posted { review_id, count }) => {
                tracing::info!(run = %run.name_any(), namespace = ?run.namespace(), "posted {count} suggested change(s) in review {review_id} on #{number}");
                true
            }
            Ok(Suggested::Existing { .. }) => true,
            Ok(Suggested::DoesNotFit) => false,
            Err(e) if e.is_transient() => return Err(Error::GitHub(e)),
            Err(e) => {
                tracing::warn!(run = %run.name_any(), namespace = ?run.namespace(), error = %e, "GitHub refused the suggested changes; the comment carries the patch");
                false
            }
        };
    }
    let mut check = render::check_output(&view, pr_number.is_some());
    let mut comment = pr_number.map(|n| (n, render::comment(&view)));
    // Nothing the controller holds leaves in a report (the text quotes the failure and the agent).
    check.title = masker.mask(&check.title);
    check.summary = masker.mask(&check.summary);
    check.text = check.text.as_deref().map(|t| masker.mask(t));
    if let Some((_, body)) = &mut comment {
        *body = masker.mask(body);
    }
    let req = ReportRequest {
        target: Target::new(run.spec.source.repository.clone()),
        head_sha: run.spec.source.head_sha.clone(),
        key: view.key.clone(),
        check,
        comment,
        known: ReportIds { check_run_id: prev.check_run_id, comment_id: prev.comment_id },
    };
    let (ids, outcome) = match gh.report(&req).await {
        Ok(ids) => {
            let what = [
                ids.check_run_id.map(|id| format!("check run {id}")),
                ids.comment_id.map(|id| format!("comment {id} on #{}", pr_number.unwrap_or_default())),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
            let what = if what.is_empty() { "commit status".to_string() } else { what.join(", ") };
            tracing::info!(run = %run.name_any(), namespace = ?run.namespace(), reported = %key, "reported on GitHub: {what}");
            (ids, Ok(format!("reported {key} on GitHub: {what}")))
        }
        Err(e) if e.is_transient() => return Err(Error::GitHub(e)),
        Err(e) => {
            tracing::warn!(run = %run.name_any(), namespace = ?run.namespace(), error = %e, "GitHub refused the report of {key}");
            (req.known.clone(), Err(format!("GitHub refused the report of {key}: {}", masker.mask(&e.to_string()))))
        }
    };
    let (ok, reason, message) = match &outcome {
        Ok(m) => (true, Reason::ReportSent, m.clone()),
        Err(m) => (false, Reason::GitHubRejected, m.clone()),
    };
    conditions::set(
        &mut status.conditions,
        conditions::new(RunCondition::Reported, ok, reason, message, run.metadata.generation, now),
    );
    status.report = Some(ReportStatus {
        check_run_id: ids.check_run_id,
        comment_id: ids.comment_id,
        pull_request_number: pr_number,
        reported: Some(key),
    });
    Ok(outcome.err())
}

/// A masker of the client's secret values, each line of a multi-line one (a PEM key) included.
fn masker(gh: &dyn GitHub) -> Masker {
    let values = gh.secret_values();
    let mut m = Masker::new(values.clone());
    for line in values.iter().flat_map(|v| v.lines()) {
        m.add(line);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_has_its_key_and_is_reported_once() {
        let mut s = HealingRunStatus { phase: Some(RunPhase::Running), current_attempt: Some(2), ..Default::default() };
        assert_eq!(key(&s).as_deref(), Some("Running/2"));
        assert!(wanted(&s));
        s.report = Some(ReportStatus { reported: Some("Running/2".into()), ..Default::default() });
        assert!(!wanted(&s), "the same state is not reported twice");
        s.phase = Some(RunPhase::Fixed);
        assert_eq!(key(&s).as_deref(), Some("Fixed"));
        assert!(wanted(&s));
        s.pull_request = Some(crate::crd::run::PullRequestStatus { number: 7, ..Default::default() });
        assert_eq!(key(&s).as_deref(), Some("Fixed/#7"));
        s.phase = Some(RunPhase::Queued);
        assert_eq!(key(&s).as_deref(), Some("Queued"));
        assert_eq!(key(&HealingRunStatus::default()), None);
    }

    #[test]
    fn a_skip_or_rerun_is_reported_only_to_finish_an_earlier_report() {
        for p in [RunPhase::Skipped, RunPhase::Rerun] {
            let mut s = HealingRunStatus { phase: Some(p), ..Default::default() };
            assert!(!wanted(&s), "{p}: no write for a run that reported nothing");
            s.report = Some(ReportStatus { reported: Some("Queued".into()), ..Default::default() });
            assert!(wanted(&s), "{p}: the queued check run is completed");
        }
    }
}
