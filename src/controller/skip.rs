//! Before the first attempt (issue 9): the loop-prevention and opt-out rules of
//! [`crate::github::guard`], and the re-run of a flaky job instead of an attempt.
//!
//! Loop prevention runs once per run, while it has no attempt and is not final: first the rule
//! that needs nothing from GitHub (the failing branch is one of ci-healer's own, `ci-healer/*`:
//! no GitHub call at all), then the rules that read the branch
//! ([`GitHub::branch_facts`](crate::github::GitHub::branch_facts): the head commit made by
//! ci-healer's identity, a `[skip-healer]` marker, bot-only commits, too many open ci-healer pull
//! requests). A rule that holds ends the run `Skipped` with its reason; no failure is read from
//! GitHub and no attempt starts. The cooldown rule is not applied yet.
//!
//! A flaky failure (triage's re-run answer) is re-run on GitHub once
//! (`POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun`) when the run is the job's first run
//! attempt (`spec.source.runAttempt` absent or 1): the run ends `Rerun`. A failure of a later run
//! attempt (the re-run failed again) is healed normally.

use super::{Context, Error, Result};
use crate::crd::conditions::Reason;
use crate::crd::{HealingMode, HealingRun};
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
    let (Some(gh), Some(cfg)) = (ctx.github.as_ref(), cfg) else { return Ok(None) };
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
            tracing::warn!(run = %kube::ResourceExt::name_any(run), error = %e, "loop prevention could not read the branch; going on");
            Ok(None)
        }
    }
}

/// The job to re-run instead of an attempt, when ci-healer can: a GitHub identity, a job id, and
/// the job's first run attempt. Pure.
pub fn rerun_job(run: &HealingRun, ctx: &Context) -> Option<i64> {
    let src = &run.spec.source;
    ctx.github.as_ref()?;
    (src.run_attempt.unwrap_or(1) <= 1).then_some(src.job_id).flatten()
}
