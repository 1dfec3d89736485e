//! Labels while a run heals (issue 9, item 7): the failing pull request carries the configured
//! healing labels (`github.healingLabels`, default `ci-healer`; Renovate's `stop-updating` can be
//! added) while the run is `Running`, so update bots leave its branch alone, and they are removed
//! when the run ends (any terminal phase).
//!
//! GitHub's calls: `POST /repos/{owner}/{repo}/issues/{number}/labels` (`issues/add-labels`;
//! adding a label the pull request has is a no-op) and
//! `DELETE /repos/{owner}/{repo}/issues/{number}/labels/{name}` (`issues/remove-label`; a label
//! already gone, 404, is not an error). Both are idempotent, so a controller restarted before the
//! status write repeats the call harmlessly and never adds a second label.
//!
//! The state is the [`RunCondition::Labeled`] condition: True ([`Reason::LabelsAdded`]) after the
//! add, False ([`Reason::LabelsRemoved`]) after the removal; a run retried after it ended is
//! labelled again. Another run of the same repository and branch that still heals (and carries
//! the labels) keeps them: the last run to end removes them. A transient GitHub error (rate limit,
//! 5xx, timeout) requeues the run; a permanent refusal (no `issues: write`) is recorded as
//! `Labeled=False`, [`Reason::GitHubRejected`], with a Warning Event, and never fails the run.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::failure::ReadFailure;
use super::{Context, Error, Result};
use crate::crd::conditions::{self, Reason, RunCondition};
use crate::crd::{HealingRun, HealingRunStatus, RunPhase};
use crate::github::{GitHub, Target};

/// What to do with the healing labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Add them to pull request `number`.
    Add(i64),
    /// Remove them from pull request `number`.
    Remove(i64),
}

/// The step `status` calls for, on the failing pull request `pr`. Pure.
///
/// Add while `Running` when not added yet (or removed by an earlier end of the run); remove once
/// the phase is terminal when they were added. A refusal is not retried for the same state.
pub fn plan(status: &HealingRunStatus, pr: Option<i64>, labels: &[String]) -> Option<Step> {
    if labels.is_empty() {
        return None;
    }
    let phase = status.phase?;
    let cond = conditions::get(&status.conditions, RunCondition::Labeled);
    let added = cond.is_some_and(|c| c.status == conditions::TRUE);
    // The number the labels went on is kept in the condition's message ("… #<n>").
    let labelled_pr = cond.and_then(|c| c.message.rsplit_once('#')).and_then(|(_, n)| n.trim().parse::<i64>().ok());
    if phase == RunPhase::Running {
        let removed = cond.is_some_and(|c| c.reason == Reason::LabelsRemoved.as_str());
        return (cond.is_none() || removed).then_some(pr).flatten().map(Step::Add);
    }
    (phase.is_terminal() && added).then(|| labelled_pr.or(pr)).flatten().map(Step::Remove)
}

/// Whether another run of the same repository and branch still heals with the labels on. Pure.
pub fn kept_by_another(run: &HealingRun, runs: &[Arc<HealingRun>]) -> Option<String> {
    let src = &run.spec.source;
    runs.iter()
        .filter(|o| o.metadata.uid != run.metadata.uid)
        .filter(|o| {
            let s = &o.spec.source;
            s.repository.eq_ignore_ascii_case(&src.repository) && s.branch == src.branch
        })
        .find(|o| {
            o.status.as_ref().is_some_and(|s| {
                s.phase.is_some_and(|p| !p.is_terminal()) && conditions::is_true(&s.conditions, RunCondition::Labeled)
            })
        })
        .map(|o| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()))
}

/// Add or remove the healing labels as [`plan`] says, recording the `Labeled` condition in
/// `status`. Returns the message of a Warning Event when GitHub refused for good. Errors: a
/// transient GitHub error (the run requeues).
pub async fn sync(
    run: &HealingRun,
    gh: &dyn GitHub,
    read: Option<&ReadFailure>,
    status: &mut HealingRunStatus,
    now: Time,
    ctx: &Context,
) -> Result<Option<String>> {
    let Some(cfg) = ctx.config.github.as_ref() else { return Ok(None) };
    let pr = read
        .and_then(|r| r.pull_request.as_ref())
        .map(|p| p.number)
        .or_else(|| status.report.as_ref().and_then(|r| r.pull_request_number));
    let Some(step) = plan(status, pr, &cfg.healing_labels) else { return Ok(None) };
    let target = Target::new(run.spec.source.repository.clone());
    let labels = cfg.healing_labels.join(", ");
    let (call, ok, reason, message) = match step {
        Step::Add(n) => (
            gh.set_labels(&target, n, &cfg.healing_labels, &[]).await,
            true,
            Reason::LabelsAdded,
            format!("labelled {labels} while the run heals: #{n}"),
        ),
        Step::Remove(n) => match kept_by_another(run, &ctx.runs.state()) {
            Some(other) => (
                Ok(()),
                false,
                Reason::LabelsRemoved,
                format!("the run ended; {labels} stay for run {other}, which still heals: #{n}"),
            ),
            None => (
                gh.set_labels(&target, n, &[], &cfg.healing_labels).await,
                false,
                Reason::LabelsRemoved,
                format!("the run ended; removed {labels}: #{n}"),
            ),
        },
    };
    let (ok, reason, message, warning) = match call {
        Ok(()) => (ok, reason, message, None),
        Err(e) if e.is_transient() => return Err(Error::GitHub(e)),
        Err(e) => {
            let n = match step {
                Step::Add(n) | Step::Remove(n) => n,
            };
            let m = format!("GitHub refused the labels {labels}: {e}; #{n}");
            tracing::warn!(run = %run.name_any(), namespace = ?run.namespace(), error = %e, "GitHub refused the healing labels");
            (false, Reason::GitHubRejected, m.clone(), Some(m))
        }
    };
    tracing::info!(run = %run.name_any(), namespace = ?run.namespace(), reason = reason.as_str(), "{message}");
    conditions::set(
        &mut status.conditions,
        conditions::new(RunCondition::Labeled, ok, reason, message, run.metadata.generation, now),
    );
    Ok(warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(phase: RunPhase, labeled: Option<(bool, Reason, &str)>) -> HealingRunStatus {
        let mut s = HealingRunStatus { phase: Some(phase), ..Default::default() };
        if let Some((ok, reason, msg)) = labeled {
            let now = Time(jiff::Timestamp::now());
            conditions::set(&mut s.conditions, conditions::new(RunCondition::Labeled, ok, reason, msg, None, now));
        }
        s
    }

    #[test]
    fn labels_go_on_while_healing_and_come_off_at_the_end_once() {
        let l = vec!["ci-healer".to_string()];
        // Running, nothing yet: add to the failing pull request (none known: nothing).
        assert_eq!(plan(&status(RunPhase::Running, None), Some(12), &l), Some(Step::Add(12)));
        assert_eq!(plan(&status(RunPhase::Running, None), None, &l), None);
        assert_eq!(plan(&status(RunPhase::Running, None), Some(12), &[]), None, "no labels configured");
        // Added: nothing more while running or queued; removed from the same number once terminal.
        let added = Some((true, Reason::LabelsAdded, "labelled ci-healer while the run heals: #12"));
        assert_eq!(plan(&status(RunPhase::Running, added), Some(12), &l), None);
        assert_eq!(plan(&status(RunPhase::Queued, added), Some(12), &l), None);
        for p in RunPhase::ALL.into_iter().filter(|p| p.is_terminal()) {
            assert_eq!(plan(&status(p, added), None, &l), Some(Step::Remove(12)), "{p}");
        }
        // Removed: nothing more once ended; a retried run is labelled again.
        let removed = Some((false, Reason::LabelsRemoved, "the run ended; removed ci-healer: #12"));
        assert_eq!(plan(&status(RunPhase::Escalated, removed), Some(12), &l), None);
        assert_eq!(plan(&status(RunPhase::Running, removed), Some(12), &l), Some(Step::Add(12)));
        // A refusal is not retried, and a run that never labelled removes nothing.
        let refused = Some((false, Reason::GitHubRejected, "GitHub refused the labels ci-healer: 403; #12"));
        assert_eq!(plan(&status(RunPhase::Running, refused), Some(12), &l), None);
        assert_eq!(plan(&status(RunPhase::Fixed, refused), Some(12), &l), None);
        assert_eq!(plan(&status(RunPhase::Skipped, None), Some(12), &l), None);
    }
}
