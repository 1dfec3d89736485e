//! People's actions on a run (`spec.action` with `spec.actionRequest`): which request is new, whether
//! it fits the run, and the record it leaves. Pure; [`super::state::decide`] applies the result.
//!
//! | action    | fits a run that is          | result                                              |
//! |-----------|-----------------------------|-----------------------------------------------------|
//! | `abort`   | Queued or Running, or Fixed | Aborted; the running attempt is stopped, or the     |
//! |           | with an open pull request   | Fixed run's pull request closed                     |
//! | `approve` | Fixed, not yet approved     | `Approved=True` (not by the failing run's sender)   |
//! | `deny`    | Fixed                       | Denied, with the reason recorded                    |
//! | `retry`   | Escalated or Denied         | Running: `policy.maxAttempts` more attempts         |
//! | `resolve` | anything but Resolved       | Resolved; any running attempt is stopped            |
//!
//! A request is identified by a digest of the action, its `actionRequest` and the generation
//! ([`request_key`]); the controller handles it when it differs from the newest `status.history`
//! entry, then clears it from the spec, so a restart or a stale cache never applies it twice and
//! the same command sent again later is a new request.

use sha2::{Digest, Sha256};

use crate::config::ActionPolicy;
use crate::crd::conditions::{Reason, RunCondition, is_true};
use crate::crd::run::{ActionRecord, ActionRequest, ActionResult};
use crate::crd::{HealingRun, HealingRunStatus, RunAction, RunPhase};

/// How many entries `status.history` keeps (the oldest are dropped first).
pub const HISTORY_LIMIT: usize = 20;

/// The actor recorded when a request names nobody (no admission policy installed).
pub const UNKNOWN_ACTOR: &str = "unknown";

/// A request the controller has not handled yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The action asked for.
    pub action: RunAction,
    /// Its details (defaults when the spec has none).
    pub request: ActionRequest,
    /// [`request_key`] of the spec.
    pub key: String,
}

impl Pending {
    /// Who asked, or [`UNKNOWN_ACTOR`].
    pub fn actor(&self) -> &str {
        self.request.requested_by.as_deref().filter(|s| !s.is_empty()).unwrap_or(UNKNOWN_ACTOR)
    }
}

/// What an applicable action does to the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// End the run Aborted and stop its attempt.
    Abort,
    /// Mark the kept patch approved.
    Approve,
    /// End the run Denied.
    Deny,
    /// Start more attempts.
    Retry,
    /// End the run Resolved and stop its attempt.
    Resolve,
}

/// Why an action was refused: the `ActionApplied=False` reason and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The condition's and Event's reason.
    pub reason: Reason,
    /// For people: what does not fit and what would.
    pub message: String,
}

/// A digest (16 hex digits of SHA-256) of the run's `action`, `actionRequest` and
/// `metadata.generation`, or `None` when the run asks for nothing. The controller clears a handled
/// request from the spec, so the same command sent again arrives in a new generation: a new request.
pub fn request_key(run: &HealingRun) -> Option<String> {
    let action = run.spec.action?;
    let body = serde_json::json!({
        "action": action, "request": run.spec.action_request, "generation": run.metadata.generation
    });
    let digest = Sha256::digest(body.to_string().as_bytes());
    Some(hex::encode(&digest[..8]))
}

/// The run's request when the controller has not handled it yet (it differs from the newest
/// history entry).
pub fn pending(run: &HealingRun) -> Option<Pending> {
    let key = request_key(run)?;
    let last = run.status.as_ref().and_then(|s| s.history.last());
    if last.is_some_and(|l| l.request_key == key) {
        return None;
    }
    Some(Pending { action: run.spec.action?, request: run.spec.action_request.clone().unwrap_or_default(), key })
}

/// Whether `p` fits the run in `status`. `has_profile` answers whether a retry's agent profile is
/// configured. Errors: the [`Refusal`] that `ActionApplied=False` reports.
pub fn evaluate(
    run: &HealingRun,
    status: &HealingRunStatus,
    p: &Pending,
    policy: &ActionPolicy,
    has_profile: impl Fn(&str) -> bool,
) -> Result<Effect, Refusal> {
    let phase = status.phase.unwrap_or_default();
    let not_applicable = |fits: &str| Refusal {
        reason: Reason::ActionNotApplicable,
        message: format!("{} does not fit a {phase} run: it {fits}", p.action.as_str()),
    };
    match p.action {
        RunAction::Abort
            if phase == RunPhase::Fixed && status.pull_request.as_ref().is_some_and(|p| p.state == "open") =>
        {
            Ok(Effect::Abort)
        }
        RunAction::Abort if phase.is_terminal() => Err(not_applicable(
            "stops runs that are Queued or Running, or withdraws a Fixed run's open pull request; this run is already final",
        )),
        RunAction::Abort => Ok(Effect::Abort),
        RunAction::Approve if phase != RunPhase::Fixed => Err(not_applicable("accepts the kept patch of a Fixed run")),
        RunAction::Approve if is_true(&status.conditions, RunCondition::Approved) => Err(Refusal {
            reason: Reason::ActionNotApplicable,
            message: "approve does not fit: the patch is already approved".into(),
        }),
        RunAction::Approve => {
            let sender = run.spec.source.sender.as_deref().unwrap_or("");
            if !policy.allow_self_approval && !sender.is_empty() && p.actor().eq_ignore_ascii_case(sender) {
                return Err(Refusal {
                    reason: Reason::SelfApprovalRefused,
                    message: format!(
                        "{} triggered the failing run and cannot approve its fix alone; another reviewer must \
                         approve (controller config actions.allowSelfApproval)",
                        p.actor()
                    ),
                });
            }
            Ok(Effect::Approve)
        }
        RunAction::Deny if phase != RunPhase::Fixed => Err(not_applicable("refuses the kept patch of a Fixed run")),
        RunAction::Deny => Ok(Effect::Deny),
        RunAction::Retry if !matches!(phase, RunPhase::Escalated | RunPhase::Denied) => {
            Err(not_applicable("starts more attempts on an Escalated or Denied run"))
        }
        RunAction::Retry if status.retries >= policy.max_retries => Err(Refusal {
            reason: Reason::RetryLimitReached,
            message: format!(
                "retry refused: the run was retried {} times, the most the controller config allows \
                 (actions.maxRetries); create a new HealingRun or resolve it",
                status.retries
            ),
        }),
        RunAction::Retry => match p.request.agent.as_deref() {
            Some(agent) if !has_profile(agent) => Err(Refusal {
                reason: Reason::UnknownRetryProfile,
                message: format!("retry refused: agent profile '{agent}' is not configured"),
            }),
            _ => Ok(Effect::Retry),
        },
        RunAction::Resolve if phase == RunPhase::Resolved => Err(not_applicable("ends a run that is not Resolved yet")),
        RunAction::Resolve => Ok(Effect::Resolve),
    }
}

/// The reason of an applied action's condition and Event.
pub fn applied_reason(effect: &Effect) -> Reason {
    match effect {
        Effect::Abort => Reason::AbortRequested,
        Effect::Approve => Reason::ApprovedByReviewer,
        Effect::Deny => Reason::DeniedByReviewer,
        Effect::Retry => Reason::RetryRequested,
        Effect::Resolve => Reason::ResolvedByPerson,
    }
}

/// "alice (kubectl)": who asked and from where, for messages.
pub fn who(p: &Pending) -> String {
    format!("{} ({})", p.actor(), p.request.source.as_str())
}

/// Append `record` to `history`, dropping the oldest entries beyond [`HISTORY_LIMIT`].
pub fn record(history: &mut Vec<ActionRecord>, record: ActionRecord) {
    history.push(record);
    if history.len() > HISTORY_LIMIT {
        let drop = history.len() - HISTORY_LIMIT;
        history.drain(..drop);
    }
}

/// The history entry for `p`.
pub fn entry(
    p: &Pending,
    result: ActionResult,
    message: String,
    generation: Option<i64>,
    now: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> ActionRecord {
    ActionRecord {
        action: p.action,
        actor: p.actor().to_string(),
        source: p.request.source,
        time: now,
        result,
        message,
        generation,
        request_key: p.key.clone(),
        request_id: p.request.id.clone(),
    }
}
