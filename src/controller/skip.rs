//! Before the first attempt (issue 9): the loop-prevention and opt-out rules of
//! [`crate::github::guard`], and the re-run of a flaky job instead of an attempt.
//!
//! Loop prevention runs once per run, while it has no attempt and is not final: first the rule
//! that needs nothing from GitHub (the failing branch is one of ci-healer's own, `ci-healer/*`:
//! no GitHub call at all), then the rules that read the branch
//! ([`GitHub::branch_facts`](crate::github::GitHub::branch_facts): the head commit made by
//! ci-healer's identity, a `[skip-healer]` marker, bot-only commits, too many open ci-healer pull
//! requests). A rule that holds ends the run `Skipped` with its reason; no failure is read from
//! GitHub and no attempt starts.
//!
//! The cooldown ([`cooldown`], `github.loopPrevention.cooldownSeconds`, default 600, 0 turns it
//! off; only with a GitHub identity, the only way ci-healer writes anything a new failure could
//! come from) needs no GitHub call either: a run is skipped (`Cooldown`) when another run in its
//! namespace for the same repository and branch, but another head commit, was created less than
//! the window before it. Runs of the same commit (several failing jobs of one push) are not a loop
//! and are left to dedup; runs that were themselves skipped or re-run do not count, so a flake's
//! second failure heals. Creation times are compared, not the clock, so the answer survives
//! restarts.
//!
//! A `check_run` run that is the GitHub Actions app's copy of a workflow job ([`actions_check_run`])
//! is skipped as a duplicate (`ActionsCheckRun`): from the spec when the job's own `workflow_job`
//! run exists, else once the failure read shows the check run's app.
//!
//! A flaky failure (triage's re-run answer) is re-run on GitHub once
//! (`POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun`) when the run is the job's first run
//! attempt (`spec.source.runAttempt` absent or 1): the run ends `Rerun`. A failure of a later run
//! attempt (the re-run failed again) is healed normally.

use std::sync::Arc;

use kube::ResourceExt;

use super::failure::ReadFailure;
use super::{Context, Error, Result};
use crate::crd::conditions::Reason;
use crate::crd::{HealingMode, HealingRun, RunPhase, SourceEvent};
use crate::github::config::LoopPrevention;
use crate::github::{Target, guard};

/// A rule that stops the run before any attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct SkipView {
    /// The rule's reason (`OwnBranch`, `OwnCommit`, ...).
    pub reason: Reason,
    /// What a person reads.
    pub message: String,
}

fn reason_of(rule: &str) -> Reason {
    match rule {
        "OwnBranch" => Reason::OwnBranch,
        "OwnCommit" => Reason::OwnCommit,
        "SkipMarker" => Reason::SkipMarker,
        "BotCommits" => Reason::BotCommits,
        "TooManyOpenPullRequests" => Reason::TooManyOpenPullRequests,
        "Cooldown" => Reason::Cooldown,
        _ => Reason::Skipped,
    }
}

fn view(s: guard::Skip) -> SkipView {
    SkipView { reason: reason_of(s.reason), message: s.message }
}

/// Whether the rules are still to be checked: no attempt yet and not final. Pure.
pub fn wanted(run: &HealingRun, attempts: usize) -> bool {
    attempts == 0 && !run.status.as_ref().and_then(|s| s.phase).is_some_and(|p| p.is_terminal())
}

/// The rule that stops `run`, if any. The branch rule needs no GitHub call; the others read the
/// branch once (conditional requests make a repeat cheap). A GitHub error other than a transient
/// one does not stop the run (the failure read reports it). Errors: a transient GitHub error (the
/// run requeues at the time GitHub names).
pub async fn check(run: &HealingRun, ctx: &Context) -> Result<Option<SkipView>> {
    let src = &run.spec.source;
    let cfg = ctx.config.github.as_ref();
    let default_rules = LoopPrevention::default();
    let rules = cfg.map(|c| &c.loop_prevention).unwrap_or(&default_rules);
    if let Some(s) = guard::check_branch(&src.branch, rules) {
        return Ok(Some(view(s)));
    }
    if let Some(s) = actions_check_run(run, None, &ctx.runs.state()) {
        return Ok(Some(s));
    }
    let (Some(gh), Some(cfg)) = (ctx.github.as_ref(), cfg) else { return Ok(None) };
    if let Some(s) = cooldown(run, &ctx.runs.state(), rules) {
        return Ok(Some(s));
    }
    let target = Target::new(src.repository.clone());
    let recent = rules.bot_commits.max(0) as usize;
    match gh.branch_facts(&target, &src.branch, &src.head_sha, recent, &rules.branch_prefix).await {
        Ok(facts) => {
            // The open-pull-request cap only matters to a run that would open one.
            let max_open = match run.spec.policy.mode {
                HealingMode::PullRequest => cfg.pull_request.max_open_per_repository,
                _ => 0,
            };
            Ok(guard::check_facts(&facts, rules, max_open).map(view))
        }
        Err(e) if e.is_transient() => Err(Error::GitHub(e)),
        Err(e) => {
            tracing::warn!(run = %run.name_any(), error = %e, "loop prevention could not read the branch; going on");
            Ok(None)
        }
    }
}

/// The cooldown rule over the cluster's runs (see the module docs): the newest earlier run in
/// `run`'s namespace for the same repository and branch but another head commit, when it was
/// created within `rules.cooldownSeconds` before `run`. Pure.
pub fn cooldown(run: &HealingRun, runs: &[Arc<HealingRun>], rules: &LoopPrevention) -> Option<SkipView> {
    let key = |r: &HealingRun| (r.metadata.creation_timestamp.clone().map(|t| t.0), r.name_any());
    let mine = key(run);
    let created = mine.0?;
    let src = &run.spec.source;
    let newest = runs
        .iter()
        .filter(|o| o.namespace() == run.namespace() && o.name_any() != run.name_any())
        .filter(|o| {
            let s = &o.spec.source;
            s.repository.eq_ignore_ascii_case(&src.repository) && s.branch == src.branch && s.head_sha != src.head_sha
        })
        .filter(|o| {
            !o.status.as_ref().and_then(|s| s.phase).is_some_and(|p| matches!(p, RunPhase::Skipped | RunPhase::Rerun))
        })
        .filter(|o| key(o) < mine)
        .max_by_key(|o| key(o))?;
    let since = created.duration_since(newest.metadata.creation_timestamp.clone()?.0);
    let since = std::time::Duration::try_from(since).unwrap_or_default();
    guard::check_cooldown(Some(since), Some(&newest.name_any()), rules).map(view)
}

/// The job to re-run instead of an attempt, when ci-healer can: a GitHub identity, an Actions job
/// (a `workflow_job` failure, or a `check_run` of the GitHub Actions app, whose id is its job's),
/// and the job's first run attempt. Another App's check run or a commit status names no Actions
/// job: ci-healer cannot re-run it, so it is healed. Pure.
pub fn rerun_job(run: &HealingRun, read: Option<&ReadFailure>, ctx: &Context) -> Option<i64> {
    ctx.github.as_ref()?;
    rerunnable_job(run, read)
}

/// [`rerun_job`] without the identity. Pure.
pub fn rerunnable_job(run: &HealingRun, read: Option<&ReadFailure>) -> Option<i64> {
    let src = &run.spec.source;
    let actions_job = match src.event {
        SourceEvent::WorkflowJob => true,
        SourceEvent::CheckRun => read.is_some_and(|r| r.actions_check_run),
        _ => false,
    };
    (actions_job && src.run_attempt.unwrap_or(1) <= 1).then_some(src.job_id).flatten()
}

/// A `check_run` run that is the GitHub Actions app's copy of a workflow job, whose own
/// `workflow_job` delivery makes (or made) the run that heals it: the Sensor and the receiver drop
/// such deliveries (`app.slug` github-actions), so this catches one created another way. Known
/// from the spec alone when a `workflow_job` run in the namespace has the same job id (an Actions
/// check run's id is its job's id); else from the check run that GitHub showed (`read`). Pure.
pub fn actions_check_run(run: &HealingRun, read: Option<&ReadFailure>, runs: &[Arc<HealingRun>]) -> Option<SkipView> {
    let src = &run.spec.source;
    if src.event != SourceEvent::CheckRun {
        return None;
    }
    let twin = src.job_id.and_then(|id| {
        runs.iter().find(|o| {
            o.namespace() == run.namespace()
                && o.spec.source.event == SourceEvent::WorkflowJob
                && o.spec.source.job_id == Some(id)
                && o.spec.source.repository.eq_ignore_ascii_case(&src.repository)
        })
    });
    let message = match (twin, read.is_some_and(|r| r.actions_check_run)) {
        (Some(t), _) => format!(
            "check run {} is the GitHub Actions copy of job {}, which run {} heals",
            src.job_id.unwrap_or_default(),
            src.job_id.unwrap_or_default(),
            t.name_any()
        ),
        (None, true) => format!(
            "check run {} was created by the GitHub Actions app: it is the copy of a workflow job, whose \
             workflow_job delivery makes the run that heals it",
            src.job_id.unwrap_or_default()
        ),
        (None, false) => return None,
    };
    Some(SkipView { reason: Reason::ActionsCheckRun, message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{FailureSource, HealingPolicy, HealingRunSpec, HealingRunStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn run(name: &str, branch: &str, sha: &str, created_s: i64, phase: Option<RunPhase>) -> Arc<HealingRun> {
        let mut r = HealingRun::new(
            name,
            HealingRunSpec {
                source: FailureSource {
                    repository: "o/r".into(),
                    branch: branch.into(),
                    head_sha: sha.into(),
                    ..Default::default()
                },
                failure: None,
                policy: HealingPolicy::default(),
                action: None,
                action_request: None,
            },
        );
        r.metadata.namespace = Some("team".into());
        r.metadata.creation_timestamp = Some(Time(jiff::Timestamp::from_second(1_800_000_000 + created_s).unwrap()));
        r.status = phase.map(|p| HealingRunStatus { phase: Some(p), ..Default::default() });
        Arc::new(r)
    }

    #[test]
    fn an_actions_check_run_is_skipped_as_the_copy_of_its_job() {
        let mut job = (*run("gh-1-1-42", "feature", "aaa", 0, None)).clone();
        job.spec.source.job_id = Some(42);
        let check = |id: i64, event: SourceEvent| {
            let mut r = (*run("gh-check-run-x", "feature", "aaa", 5, None)).clone();
            r.spec.source.event = event;
            r.spec.source.job_id = Some(id);
            r
        };
        let runs = vec![Arc::new(job.clone())];
        let s = actions_check_run(&check(42, SourceEvent::CheckRun), None, &runs).expect("its job's run exists");
        assert_eq!(s.reason, Reason::ActionsCheckRun);
        assert!(s.message.contains("gh-1-1-42"), "{}", s.message);
        // Another check run, another event, or the job's run in another namespace: not a copy.
        assert!(actions_check_run(&check(43, SourceEvent::CheckRun), None, &runs).is_none());
        assert!(actions_check_run(&check(42, SourceEvent::CheckSuite), None, &runs).is_none());
        let mut elsewhere = job.clone();
        elsewhere.metadata.namespace = Some("other".into());
        assert!(actions_check_run(&check(42, SourceEvent::CheckRun), None, &[Arc::new(elsewhere)]).is_none());
        // What GitHub showed: the check run's app is github-actions.
        let read: ReadFailure = serde_json::from_value(serde_json::json!({
            "log": {"fetched": false, "reason": "NoJobLog", "message": ""},
            "logBytes": 0,
            "actionsCheckRun": true,
            "triage": serde_json::to_value(crate::triage::triage(&Default::default(), &Default::default())).unwrap(),
        }))
        .unwrap();
        let s = actions_check_run(&check(43, SourceEvent::CheckRun), Some(&read), &[]).expect("GitHub says Actions");
        assert_eq!(s.reason, Reason::ActionsCheckRun);
        let not_actions = ReadFailure { actions_check_run: false, ..read };
        assert!(actions_check_run(&check(43, SourceEvent::CheckRun), Some(&not_actions), &[]).is_none());
    }

    #[test]
    fn only_an_actions_job_is_re_run() {
        let mut r = (*run("r", "feature", "aaa", 0, None)).clone();
        r.spec.source.job_id = Some(7);
        assert_eq!(rerunnable_job(&r, None), Some(7));
        r.spec.source.run_attempt = Some(2);
        assert_eq!(rerunnable_job(&r, None), None, "a re-run that failed again is healed");
        r.spec.source.run_attempt = Some(1);
        for e in [SourceEvent::CheckRun, SourceEvent::CheckSuite, SourceEvent::Status] {
            r.spec.source.event = e;
            assert_eq!(rerunnable_job(&r, None), None, "{e:?}: jobId is no Actions job");
        }
    }

    #[test]
    fn a_new_commits_failure_within_the_cooldown_is_skipped() {
        let rules = LoopPrevention::default();
        let first = run("first", "feature", "aaa", 0, Some(RunPhase::Running));
        let runs = vec![first.clone()];
        let s = cooldown(&run("second", "feature", "bbb", 30, None), &runs, &rules).expect("skipped");
        assert_eq!(s.reason, Reason::Cooldown);
        assert!(s.message.contains("first") && s.message.contains("30s ago"), "{}", s.message);
        // Outside the window, the same commit (another job of the same push), another branch, a
        // later run, or an earlier run that was itself skipped or re-run: no cooldown.
        assert!(cooldown(&run("late", "feature", "bbb", 601, None), &runs, &rules).is_none());
        assert!(cooldown(&run("sibling", "feature", "aaa", 5, None), &runs, &rules).is_none());
        assert!(cooldown(&run("other", "main", "bbb", 5, None), &runs, &rules).is_none());
        assert!(cooldown(&first, &[run("second", "feature", "bbb", 30, None)], &rules).is_none());
        for p in [RunPhase::Skipped, RunPhase::Rerun] {
            let earlier = vec![run("first", "feature", "aaa", 0, Some(p))];
            assert!(cooldown(&run("second", "feature", "bbb", 30, None), &earlier, &rules).is_none(), "{p}");
        }
        let off = LoopPrevention { cooldown_seconds: 0, ..rules };
        assert!(cooldown(&run("second", "feature", "bbb", 30, None), &runs, &off).is_none());
    }
}
