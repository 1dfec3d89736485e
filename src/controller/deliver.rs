//! `mode: pull-request` (issue 9): a Fixed run's kept patch becomes a **draft** pull request into
//! the failing branch, built by the controller through the Git Data API
//! ([`GitHub::deliver_pull_request`]: head-SHA re-check, blobs, tree, a commit whose parent is
//! `headSha`, the ref `ci-healer/<run>`, then the pull request). No write token ever enters an
//! attempt pod; nothing is pushed to the failing branch; nothing is merged.
//!
//! Idempotent across restarts: the branch name is deterministic and the client finds an existing
//! branch and pull request by head ref before creating anything; once the `Delivered` condition is
//! set the run is not delivered again. Refused, with `Delivered=False` and its reason: a fork
//! ([`Reason::ForkBranch`]), a branch on the never-fix list or protected ([`Reason::ProtectedBranch`]),
//! no kept patch ([`Reason::NoPatch`]), a moved branch ([`Reason::BranchMoved`]: the patch stays
//! proposed), a patch that does not apply ([`Reason::PatchDoesNotApply`]). Transient GitHub errors
//! requeue the run; permanent ones are `Delivered=False`, [`Reason::GitHubRejected`].

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, ResourceExt};

use super::failure::ReadFailure;
use super::state::AttemptView;
use super::{Context, Error, Result};
use crate::contract::paths;
use crate::crd::AttemptPhase;
use crate::crd::conditions::{self, Reason, RunCondition};
use crate::crd::run::PullRequestStatus;
use crate::crd::{HealingRun, HealingRunStatus};
use crate::github::render::{self, AttemptRow, RunView};
use crate::github::{Delivery, GitHub, GitHubConfig, PullRequestRequest, Target};

/// The fix branch of `run`: `<branchPrefix><run>` (default `ci-healer/<run>`), so a restarted
/// controller finds it; after the n-th `retry`, `<branchPrefix><run>-retry-<n>`, so a retried
/// run's new fix never lands on the pull request a person closed or denied.
pub fn head_ref(gh: &GitHubConfig, run: &HealingRun, retries: i32) -> String {
    match retries {
        0 => format!("{}{}", gh.loop_prevention.branch_prefix, run.name_any()),
        n => format!("{}{}-retry-{n}", gh.loop_prevention.branch_prefix, run.name_any()),
    }
}

/// Whether the run still has a delivery to make: no `Delivered` condition yet, or one a `retry`
/// reset (`Delivered=False/RetryRequested`). Pure.
fn not_delivered(status: &HealingRunStatus) -> bool {
    conditions::get(&status.conditions, RunCondition::Delivered)
        .is_none_or(|c| c.status == conditions::FALSE && c.reason == Reason::RetryRequested.as_str())
}

/// Whether the kept patch touches protected paths and no person approved it yet: it is held. Pure.
pub fn held_for_approval(status: &HealingRunStatus) -> bool {
    status.patch.as_ref().is_some_and(|p| !p.protected_paths.is_empty())
        && !conditions::get(&status.conditions, RunCondition::Approved)
            .is_some_and(|c| c.status == conditions::TRUE && c.reason == Reason::ApprovedByReviewer.as_str())
}

/// Whether `status` still needs a delivery: Fixed, in pull-request mode or approved by a person
/// (`approve` in `propose` mode turns the kept patch into the draft pull request that
/// `pull-request` mode would have opened), not delivered or refused yet (or reset by a `retry`),
/// and not [held for approval](held_for_approval) because it touches protected paths.
pub fn pending(run: &HealingRun, status: &HealingRunStatus) -> bool {
    (run.spec.policy.mode == crate::crd::HealingMode::PullRequest
        || conditions::is_true(&status.conditions, RunCondition::Approved))
        && status.phase == Some(crate::crd::RunPhase::Fixed)
        && not_delivered(status)
        && !held_for_approval(status)
}

/// Why the branch may not get a fix pull request, before any write. Pure.
pub fn refusal(gh: &GitHubConfig, run: &HealingRun, read: Option<&ReadFailure>) -> Option<(Reason, String)> {
    let branch = &run.spec.source.branch;
    if read.and_then(|r| r.pull_request.as_ref()).is_some_and(|p| p.fork) {
        return Some((
            Reason::ForkBranch,
            format!("branch {branch} lives in a fork; ci-healer cannot push a fix there"),
        ));
    }
    if gh.never_fix(branch) {
        return Some((
            Reason::ProtectedBranch,
            format!(
                "branch {branch} is on the never-fix list (github.pullRequest.neverFixBranches); the patch stays proposed"
            ),
        ));
    }
    None
}

/// Deliver `status`'s kept patch and record the outcome in `status` (the `Delivered` condition and
/// `status.pullRequest`). Returns the Event to publish. Errors: the API server, a transient GitHub
/// error (the run requeues).
pub async fn deliver(
    run: &HealingRun,
    gh: &dyn GitHub,
    read: Option<&ReadFailure>,
    attempts: &[AttemptView],
    status: &mut HealingRunStatus,
    now: Time,
    ctx: &Context,
) -> Result<(Reason, String, bool)> {
    let Some(cfg) = ctx.config.github.as_ref() else { return Ok((Reason::Fixed, String::new(), false)) };
    let draft = !auto_approved(status);
    let outcome = attempt(run, gh, cfg, read, attempts, status, ctx).await?;
    let (ok, reason, message) = match outcome {
        Outcome::Delivered(pr, existed) => {
            let m = format!(
                "{} {} pull request #{} ({}) from {} into {}",
                if existed { "found the" } else { "opened" },
                if draft { "draft" } else { "ready-for-review" },
                pr.number,
                pr.url,
                pr.head_ref,
                run.spec.source.branch
            );
            status.pull_request = Some(pr);
            (true, Reason::PullRequestOpened, m)
        }
        Outcome::Refused(reason, message) => (false, reason, message),
    };
    let c = conditions::new(RunCondition::Delivered, ok, reason, message.clone(), run.metadata.generation, now);
    conditions::set(&mut status.conditions, c);
    Ok((reason, message, !ok))
}

enum Outcome {
    Delivered(PullRequestStatus, bool),
    Refused(Reason, String),
}

async fn attempt(
    run: &HealingRun,
    gh: &dyn GitHub,
    cfg: &GitHubConfig,
    read: Option<&ReadFailure>,
    attempts: &[AttemptView],
    status: &HealingRunStatus,
    ctx: &Context,
) -> Result<Outcome> {
    if let Some((reason, message)) = refusal(cfg, run, read) {
        return Ok(Outcome::Refused(reason, message));
    }
    let src = &run.spec.source;
    let target = Target::new(src.repository.clone());
    let Some(patch) = kept_patch(run, status, ctx).await? else {
        return Ok(Outcome::Refused(Reason::NoPatch, "the passing attempt kept no patch; nothing to deliver".into()));
    };
    if !cfg.pull_request.allow_protected_branches {
        match gh.branch_facts(&target, &src.branch, &src.head_sha, 0, &cfg.loop_prevention.branch_prefix).await {
            Ok(f) if f.protected => {
                return Ok(Outcome::Refused(
                    Reason::ProtectedBranch,
                    format!("branch {} is protected on GitHub; the patch stays proposed", src.branch),
                ));
            }
            Ok(_) => {}
            Err(e) if e.is_transient() => return Err(Error::GitHub(e)),
            Err(e) => return Ok(Outcome::Refused(Reason::GitHubRejected, e.to_string())),
        }
    }
    let mut view = view(run, status, read);
    view.ready = auto_approved(status);
    view.attempts = attempt_rows(attempts);
    view.diagnosis = diagnosis(attempts);
    let req = PullRequestRequest {
        target,
        base_branch: src.branch.clone(),
        head_sha: src.head_sha.clone(),
        head_ref: head_ref(cfg, run, status.retries),
        patch: patch.into_bytes(),
        commit_message: render::commit_message(&view),
        title: render::pr_title(&cfg.pull_request.title_prefix, &view),
        body: render::pr_body(&view),
        labels: cfg.pull_request.labels.clone(),
        draft: !auto_approved(status),
    };
    let ready = (!req.draft).then_some(true);
    let pr = |p: crate::github::PullRequestRef| PullRequestStatus {
        number: p.number,
        url: p.url,
        head_ref: p.head_ref,
        state: p.state,
        ready_for_review: ready,
    };
    Ok(match gh.deliver_pull_request(&req).await {
        Ok(Delivery::Opened(p)) => Outcome::Delivered(pr(p), false),
        Ok(Delivery::Existing(p)) => Outcome::Delivered(pr(p), true),
        Ok(Delivery::BranchMoved { current }) => Outcome::Refused(
            Reason::BranchMoved,
            format!(
                "branch {} moved from {} to {} since the failure; no pull request, the patch stays proposed",
                src.branch,
                short(&src.head_sha),
                current.as_deref().map(short).unwrap_or("<deleted>")
            ),
        ),
        Ok(Delivery::Refused { reason, message }) => {
            let r = match reason {
                "PatchDoesNotApply" | "PatchEmpty" | "PatchUnreadable" | "PatchUnsupported" => {
                    Reason::PatchDoesNotApply
                }
                _ => Reason::GitHubRejected,
            };
            Outcome::Refused(r, format!("{reason}: {message}"))
        }
        Err(e) if e.is_transient() => return Err(Error::GitHub(e)),
        Err(e) => Outcome::Refused(Reason::GitHubRejected, e.to_string()),
    })
}

fn short(s: &str) -> &str {
    &s[..s.len().min(7)]
}

/// The kept patch from the passing attempt's ConfigMap. Errors: the API server.
pub(super) async fn kept_patch(run: &HealingRun, status: &HealingRunStatus, ctx: &Context) -> Result<Option<String>> {
    let Some(name) = status.patch.as_ref().and_then(|p| p.config_map.clone()) else { return Ok(None) };
    let ns = run.namespace().ok_or(Error::MissingNamespace)?;
    let cm = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns).get_opt(&name).await?;
    Ok(cm.and_then(|c| c.data?.remove(paths::PATCH_KEY)).filter(|p| !p.trim().is_empty()))
}

/// The attempts as the reports list them, in order.
pub(super) fn attempt_rows(attempts: &[AttemptView]) -> Vec<AttemptRow> {
    let mut rows: Vec<&AttemptView> = attempts.iter().collect();
    rows.sort_by_key(|a| a.number);
    rows.into_iter()
        .map(|a| AttemptRow {
            number: a.number,
            phase: a.phase.as_str().into(),
            reason: a.failure_reason.clone(),
            summary: a.summary.clone(),
            tokens: a.tokens.as_ref().map(|t| t.input + t.output),
        })
        .collect()
}

/// The passing attempt's summary.
pub(super) fn diagnosis(attempts: &[AttemptView]) -> Option<String> {
    attempts.iter().find(|a| a.phase == AttemptPhase::Succeeded).and_then(|a| a.summary.clone())
}

/// What the pull request's title, body and commit message show.
pub(super) fn view(run: &HealingRun, status: &HealingRunStatus, read: Option<&ReadFailure>) -> RunView {
    let src = &run.spec.source;
    RunView {
        key: format!("{}/{}", run.namespace().unwrap_or_default(), run.name_any()),
        repository: src.repository.clone(),
        branch: src.branch.clone(),
        head_sha: src.head_sha.clone(),
        workflow: read.and_then(|r| r.workflow_name.clone()).or_else(|| src.workflow_name.clone()),
        job: read.and_then(|r| r.job_name.clone()).or_else(|| src.job_name.clone()),
        step: read.and_then(|r| r.failed_steps.first().cloned()).or_else(|| src.failed_steps.first().cloned()),
        job_url: src.url.clone(),
        phase: "Fixed".into(),
        reason: conditions::get(&status.conditions, RunCondition::Fixed).map(|c| c.reason.clone()),
        message: conditions::get(&status.conditions, RunCondition::Fixed).map(|c| c.message.clone()),
        failure_class: status.failure_class.map(|c| c.as_str().to_string()),
        max_attempts: run.spec.policy.max_attempts,
        diffstat: status.patch.as_ref().and_then(|p| p.diffstat.as_ref()).map(|d| (d.files, d.insertions, d.deletions)),
        mode: run.spec.policy.mode.as_str().into(),
        ..Default::default()
    }
}

/// Whether a person's `approve` must take the run's draft pull request out of draft: a
/// `pull-request` mode run approved by a person ([`Reason::ApprovedByReviewer`]) whose fix pull
/// request is open and not marked ready yet. Pure.
pub fn ready_pending(run: &HealingRun, status: &HealingRunStatus) -> bool {
    run.spec.policy.mode == crate::crd::HealingMode::PullRequest
        && conditions::get(&status.conditions, RunCondition::Approved)
            .is_some_and(|c| c.status == conditions::TRUE && c.reason == Reason::ApprovedByReviewer.as_str())
        && status.pull_request.as_ref().is_some_and(|p| p.state == "open" && p.ready_for_review.is_none())
}

/// Mark the run's draft pull request ready for review ([`ready_pending`]) and record it in
/// `status.pullRequest.readyForReview`. Returns the Event's reason, message and whether it is a
/// Warning (GitHub refused for good: recorded as `false`, not retried). Errors: a transient GitHub
/// error (the run requeues).
pub async fn mark_ready(
    run: &HealingRun,
    gh: &dyn GitHub,
    status: &mut HealingRunStatus,
) -> Result<(Reason, String, bool)> {
    let Some(pr) = status.pull_request.as_mut() else { return Ok((Reason::PullRequestReady, String::new(), false)) };
    match gh.mark_ready_for_review(&Target::new(run.spec.source.repository.clone()), pr.number).await {
        Ok(was_draft) => {
            pr.ready_for_review = Some(true);
            let how = if was_draft { "" } else { " (it was not a draft any more)" };
            Ok((Reason::PullRequestReady, format!("pull request #{} is ready for review{how}", pr.number), false))
        }
        Err(e) if e.is_transient() => Err(Error::GitHub(e)),
        Err(e) => {
            pr.ready_for_review = Some(false);
            Ok((
                Reason::GitHubRejected,
                format!(
                    "GitHub refused to mark pull request #{} ready for review: {e}; mark it ready on GitHub",
                    pr.number
                ),
                true,
            ))
        }
    }
}

/// Whether `status`'s fix pull request must be closed: the run ended `Denied` (a person refused the
/// fix) or `Aborted`, and its pull request is still open. Pure.
pub fn withdraw_pending(status: &HealingRunStatus) -> bool {
    matches!(status.phase, Some(crate::crd::RunPhase::Denied | crate::crd::RunPhase::Aborted))
        && status.pull_request.as_ref().is_some_and(|p| p.state == "open")
}

/// Close the fix pull request of a Denied or Aborted run ([`withdraw_pending`]) with a comment that
/// says who and why; a denied fix's branch (`ci-healer/<run>`, only ever one of ci-healer's own) is
/// deleted too. Records `state: closed` in `status.pullRequest`. Returns the Event's message, or
/// `Err` with a Warning's message when GitHub refused for good (the pull request is then recorded
/// as closed anyway, so no retry loop; people see the Warning). Errors: a transient GitHub error
/// (the run requeues).
pub async fn withdraw(
    run: &HealingRun,
    gh: &dyn GitHub,
    status: &mut HealingRunStatus,
    ctx: &Context,
) -> Result<std::result::Result<String, String>> {
    let Some(cfg) = ctx.config.github.as_ref() else { return Ok(Ok(String::new())) };
    let Some(pr) = status.pull_request.clone() else { return Ok(Ok(String::new())) };
    let denied = status.phase == Some(crate::crd::RunPhase::Denied);
    let (cond, verb) = if denied { (RunCondition::Denied, "denied") } else { (RunCondition::Aborted, "aborted") };
    let why = conditions::get(&status.conditions, cond).map(|c| c.message.clone()).unwrap_or_else(|| verb.into());
    let ours = pr.head_ref.starts_with(&cfg.loop_prevention.branch_prefix);
    let delete_branch = (denied && ours).then(|| pr.head_ref.clone());
    let comment = format!(
        "ci-healer closed this pull request: {why}.{}\n\n<sub>HealingRun `{}/{}`</sub>",
        if delete_branch.is_some() { format!(" The branch `{}` is deleted.", pr.head_ref) } else { String::new() },
        run.namespace().unwrap_or_default(),
        run.name_any()
    );
    let req = crate::github::CloseRequest {
        target: Target::new(run.spec.source.repository.clone()),
        number: pr.number,
        key: format!("{}/{}", run.namespace().unwrap_or_default(), run.name_any()),
        comment,
        delete_branch: delete_branch.clone(),
    };
    let outcome = match gh.close_pull_request(&req).await {
        Ok(()) => Ok(format!(
            "closed pull request #{} ({verb}){}",
            pr.number,
            delete_branch.map(|b| format!(" and deleted branch {b}")).unwrap_or_default()
        )),
        Err(e) if e.is_transient() => return Err(Error::GitHub(e)),
        Err(e) => Err(format!("GitHub refused to close pull request #{}: {e}", pr.number)),
    };
    if let Some(p) = status.pull_request.as_mut() {
        p.state = "closed".into();
    }
    Ok(outcome)
}

/// Whether the run's fix was approved by the controller ([`Reason::AutoApproved`]). Pure.
pub fn auto_approved(status: &HealingRunStatus) -> bool {
    conditions::get(&status.conditions, RunCondition::Approved)
        .is_some_and(|c| c.status == conditions::TRUE && c.reason == Reason::AutoApproved.as_str())
}

/// Whether a Fixed run's fix may be approved without a person: `actions.autoApprove` is on, the
/// passing attempt used no LLM tokens, and the run's profile runs the built-in agent step (an
/// external agent image reports no tokens, so it never counts as deterministic). Pure.
pub fn auto_approvable(
    status: &HealingRunStatus,
    attempts: &[AttemptView],
    config: &crate::config::ControllerConfig,
) -> bool {
    if !config.actions.auto_approve || status.phase != Some(crate::crd::RunPhase::Fixed) {
        return false;
    }
    // Approved or refused already (a retry's reset does not count), delivered, or protected paths.
    let reset = |t: RunCondition| {
        conditions::get(&status.conditions, t).is_some_and(|c| c.reason != Reason::RetryRequested.as_str())
    };
    if reset(RunCondition::Approved)
        || !not_delivered(status)
        || status.patch.as_ref().is_some_and(|p| !p.protected_paths.is_empty())
    {
        return false;
    }
    let Some(passing) = attempts.iter().find(|a| a.phase == AttemptPhase::Succeeded) else { return false };
    let zero_tokens = passing.tokens.as_ref().is_none_or(|t| t.input + t.output == 0);
    let built_in =
        status.agent.as_deref().and_then(|a| config.profiles.get(a)).is_some_and(|p| p.agent.image.is_none());
    zero_tokens && built_in
}
