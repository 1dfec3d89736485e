//! `metav1.Condition` handling per the Kubernetes API conventions: conditions are a list keyed by
//! `type`; `lastTransitionTime` moves only when `status` changes; `observedGeneration` records the
//! spec generation the condition was computed from.
//!
//! The condition types of both kinds ([`RunCondition`], [`AttemptCondition`]) and every reason the
//! controller itself writes ([`Reason`]: condition reasons, Event reasons, error and metric labels)
//! are enums here, in one place. Reasons a step reports from inside the pod (a verdict's `reason`, a
//! [`StepFailure`](crate::contract::StepFailure)'s) cross the contract as strings and are kept as
//! they came.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `status` of a condition that holds.
pub const TRUE: &str = "True";
/// `status` of a condition that does not hold.
pub const FALSE: &str = "False";

/// A condition type: a CamelCase name unique within one object's `status.conditions`.
pub trait ConditionType: Copy {
    /// The `type` string.
    fn as_str(self) -> &'static str;
}

/// Condition types of a HealingRun.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunCondition {
    /// The spec can be acted on (False: a spec problem, with the reason; the run waits for a change).
    Accepted,
    /// Triage classified the failure and chose an agent profile.
    Triaged,
    /// Another active run heals the same failure; this one waits behind it.
    Duplicate,
    /// An attempt is running (False once the run is final).
    Healing,
    /// An attempt's validation passed.
    Fixed,
    /// The attempts ran out; people must look.
    Escalated,
    /// A person aborted the run.
    Aborted,
    /// Triage answered "re-run CI" (a flaky or infrastructural failure). True with
    /// [`Reason::RerunRequested`] once GitHub re-runs the failed job; False with
    /// [`Reason::RerunNotImplemented`] when ci-healer cannot (no GitHub identity, no job id, or the
    /// job was re-run already), and attempts proceed.
    Rerun,
    /// The latest person's action (`spec.action`) took effect (False: refused, the message says why).
    ActionApplied,
    /// A person approved the kept patch.
    Approved,
    /// A person refused the kept patch; the run is Denied.
    Denied,
    /// A person fixed the failure themselves; the run is Resolved.
    Resolved,
    /// The failing job's log was read from GitHub (False: expired, unreachable, or no log; triage
    /// goes on with names and annotations).
    LogFetched,
    /// The fix was delivered as a draft pull request (`mode: pull-request`; False: why not).
    Delivered,
    /// A loop-prevention or opt-out rule stopped the run before any attempt (the reason says which).
    Skipped,
    /// The run's state is on GitHub: the `ci-healer` check run (or commit status) and the one pull
    /// request comment (True, [`Reason::ReportSent`]; False, [`Reason::GitHubRejected`]: GitHub
    /// refused the report for good, e.g. a missing `checks: write`).
    Reported,
    /// The run's Slack message shows its state (True, [`Reason::SlackNotified`]; False,
    /// [`Reason::SlackUnavailable`]: Slack is down or rate-limited and the message catches up later;
    /// False, [`Reason::SlackRejected`]: Slack refused for good, e.g. `channel_not_found`).
    Notified,
    /// The failing pull request carries the healing labels (`github.healingLabels`, default
    /// `ci-healer`) while the run heals, so update bots leave its branch alone (True,
    /// [`Reason::LabelsAdded`]); False once the run ended and they were removed
    /// ([`Reason::LabelsRemoved`]), or when GitHub refused them ([`Reason::GitHubRejected`]).
    Labeled,
}

impl ConditionType for RunCondition {
    fn as_str(self) -> &'static str {
        match self {
            RunCondition::Accepted => "Accepted",
            RunCondition::Triaged => "Triaged",
            RunCondition::Duplicate => "Duplicate",
            RunCondition::Healing => "Healing",
            RunCondition::Fixed => "Fixed",
            RunCondition::Escalated => "Escalated",
            RunCondition::Aborted => "Aborted",
            RunCondition::Rerun => "Rerun",
            RunCondition::ActionApplied => "ActionApplied",
            RunCondition::Approved => "Approved",
            RunCondition::Denied => "Denied",
            RunCondition::Resolved => "Resolved",
            RunCondition::LogFetched => "LogFetched",
            RunCondition::Delivered => "Delivered",
            RunCondition::Skipped => "Skipped",
            RunCondition::Reported => "Reported",
            RunCondition::Notified => "Notified",
            RunCondition::Labeled => "Labeled",
        }
    }
}

/// Condition types of a HealingAttempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptCondition {
    /// The attempt's Job exists (False: a Job of that name belongs to something else).
    JobCreated,
    /// The attempt ended; the reason is the verdict's or the failed step's.
    Completed,
}

impl ConditionType for AttemptCondition {
    fn as_str(self) -> &'static str {
        match self {
            AttemptCondition::JobCreated => "JobCreated",
            AttemptCondition::Completed => "Completed",
        }
    }
}

/// Condition types of a HealingCommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandCondition {
    /// The command was answered: True once applied (or help answered), False when refused or
    /// ignored; Unknown while relayed to its run.
    Handled,
}

impl ConditionType for CommandCondition {
    fn as_str(self) -> &'static str {
        match self {
            CommandCondition::Handled => "Handled",
        }
    }
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Every reason the controller writes itself: condition reasons, Event reasons, the reasons of
        /// its errors, and the `reason` label of its metrics. CamelCase, stable: dashboards and alerts
        /// key on them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $name, )*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name),*];

            /// The CamelCase string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Reason::$name => stringify!($name), )*
                }
            }
        }
    };
}

reasons! {
    // Accepted
    /// The spec is valid.
    SpecValid,
    /// `spec.policy.agent` names a profile the controller config does not have.
    UnknownProfile,
    /// `spec.policy.mode` asks for something not implemented yet (`pull-request`).
    ModeNotImplemented,
    /// `spec.source.provider` is a code host ci-healer cannot talk to yet.
    ProviderNotSupported,
    /// Event: the spec cannot be acted on (the condition's reason says why).
    InvalidSpec,
    /// The controller config does not allow the run's namespace to heal its repository.
    RepositoryNotAllowed,
    // LogFetched (src/github/)
    /// The job log's tail was read from GitHub.
    LogRead,
    /// The job log expired (GitHub answered 410: the repository's log retention).
    LogExpired,
    /// The job log could not be read (not found, forbidden, or GitHub unreachable after retries).
    LogUnreachable,
    /// The failure has no job log (another App's check run, a commit status): its output and
    /// annotations stand in for it.
    NoJobLog,
    /// Event: the failure was read from GitHub (log, annotations, changed files, step command).
    FailureRead,
    /// GitHub answered with a rate limit or a transient error; the run waits and retries.
    GitHubUnavailable,
    /// GitHub refused the controller's identity or request for good (credentials, permissions).
    GitHubRejected,
    // Delivered (mode: pull-request)
    /// A draft pull request into the failing branch carries the fix (also the Event).
    PullRequestOpened,
    /// The failing branch moved since `headSha`: no pull request; the patch stays proposed.
    BranchMoved,
    /// The failing branch is protected or on the never-fix list: no pull request.
    ProtectedBranch,
    /// The failing branch lives in a fork: ci-healer cannot push there.
    ForkBranch,
    /// The run kept no patch (too large, or not in the log): nothing to deliver.
    NoPatch,
    /// GitHub's files and the patch disagree (it does not apply, or changes nothing).
    PatchDoesNotApply,
    /// Event: the fix pull request was closed because a person denied the fix (its branch deleted)
    /// or aborted the run.
    PullRequestClosed,
    /// Event: a person's `approve` took the run's draft pull request out of draft.
    PullRequestReady,
    // Skipped (loop prevention and opt-outs, src/github/guard.rs)
    /// The failing branch is one of ci-healer's own (`ci-healer/*`).
    OwnBranch,
    /// The head commit was made by ci-healer's identity.
    OwnCommit,
    /// The head commit's message opts out (`[skip-healer]`, `[skip ci-healer]`).
    SkipMarker,
    /// The branch's last commits are all by bots (autofix.ci's rule).
    BotCommits,
    /// The repository has as many open ci-healer pull requests as allowed.
    TooManyOpenPullRequests,
    /// Another run for the same repository and branch (another commit) started within the cooldown.
    Cooldown,
    /// The check run is the GitHub Actions app's copy of a workflow job, healed through its
    /// `workflow_job` run: a duplicate, not a failure of its own.
    ActionsCheckRun,
    /// Event: a rule stopped the run before any attempt (the condition's reason says which).
    Skipped,
    // Reported (src/controller/report.rs)
    /// The check run (or commit status) and the pull request comment show the run's state.
    ReportSent,
    // Notified (src/controller/notify.rs)
    /// The run's Slack message (and its thread) shows the run's state.
    SlackNotified,
    /// Slack answered 5xx or 429, or did not answer; the message catches up when it does.
    SlackUnavailable,
    /// Slack refused the message for good (`channel_not_found`, `invalid_auth`, `not_in_channel`, …;
    /// also the Warning Event).
    SlackRejected,
    // Labeled (src/controller/healing_labels.rs)
    /// The healing labels were added to the failing pull request.
    LabelsAdded,
    /// The run ended: the healing labels were removed from the failing pull request.
    LabelsRemoved,
    // Rerun
    /// GitHub was asked to re-run the failed job; no attempt runs (also the Event).
    RerunRequested,
    // Triaged
    /// Triage classified the failure (also the Event's reason: [`Reason::Triaged`]).
    Classified,
    /// Event: the run was triaged.
    Triaged,
    /// Triage asked for a CI re-run, which ci-healer cannot do for this run (no GitHub identity, no
    /// job id, or the job was re-run once already); attempts proceed instead.
    RerunNotImplemented,
    // Duplicate
    /// Another active run heals the same failure.
    DuplicateOfActiveRun,
    /// No other active run heals the same failure.
    NoActiveDuplicate,
    /// Event: the run is a duplicate.
    Duplicate,
    /// The run this one duplicates was fixed.
    DuplicateFixed,
    /// The run this one duplicates was aborted.
    DuplicateAborted,
    /// The run this one duplicates was escalated.
    DuplicateEscalated,
    // Healing, Fixed, Escalated, Aborted
    /// An attempt is running (also the attempt's Event when its pod runs).
    AttemptRunning,
    /// Event: an attempt was started.
    AttemptStarted,
    /// Event: an attempt's validation passed.
    AttemptSucceeded,
    /// Event: an attempt failed.
    AttemptFailed,
    /// The validation step passed the change.
    ValidationPassed,
    /// The run is fixed (Healing=False; also the Event).
    Fixed,
    /// Every attempt failed.
    AttemptsExhausted,
    /// Event: the run was escalated.
    Escalated,
    /// A person asked to abort (`spec.action: abort`).
    AbortRequested,
    /// The run (or the attempt's run) was aborted.
    Aborted,
    // People's actions (ActionApplied, Approved, Denied, Resolved; also their Events)
    /// A person approved the kept patch.
    ApprovedByReviewer,
    /// The controller approved the kept patch: deterministic fixers alone made it (no LLM tokens)
    /// and the config's `actions.autoApprove` is on.
    AutoApproved,
    /// The kept patch touches protected paths (workflows, security, dependency manifests): it waits
    /// for a person's `approve` (`Approved=False`), and `autoApprove` never applies.
    ProtectedPathNeedsApproval,
    /// A person refused the kept patch.
    DeniedByReviewer,
    /// A person asked for more attempts.
    RetryRequested,
    /// A person fixed the failure themselves.
    ResolvedByPerson,
    /// The action does not fit the run's phase.
    ActionNotApplicable,
    /// The person who triggered the failing run may not approve its fix.
    SelfApprovalRefused,
    /// The run was retried as often as the controller config allows.
    RetryLimitReached,
    /// A retry named an agent profile the controller config does not have.
    UnknownRetryProfile,
    // HealingCommand
    /// Not a command for ci-healer to answer (a bot's comment, the controller's own, no `/healer`
    /// line, a provider other than GitHub): nothing is posted.
    CommandIgnored,
    /// The `/healer` line names no command ci-healer knows: the reply lists them.
    UnknownCommand,
    /// The comment's author lacks write access to the repository.
    WriteAccessRequired,
    /// No HealingRun is about the comment's pull request.
    RunNotFound,
    /// The command was written to its run's `spec.action`; the run acts on it.
    CommandRelayed,
    /// The run applied the relayed action.
    CommandApplied,
    /// The run refused the relayed action (its `status.history` says why).
    CommandRefused,
    /// `/healer help` was answered.
    HelpAnswered,
    /// `/healer fix` started a run for the pull request's newest failure.
    RunStartedByComment,
    /// `/healer fix`: the run for the newest failure exists already.
    RunExists,
    /// `/healer fix`: the pull request's head has no failed check run.
    NoFailureFound,
    // HealingAttempt
    /// The attempt's Job was created.
    JobCreated,
    /// A Job with the attempt's name exists and is not the attempt's.
    JobNameTaken,
    /// The validate step ended without a verdict.
    VerdictMissing,
    /// The validate step's termination message is not a verdict.
    VerdictMalformed,
    /// The pod failed without a step saying why.
    PodFailed,
    /// Kubernetes failed the Job without a reason.
    JobFailed,
    // Keeping the patch (Warning Events on the attempt)
    /// Event action: keeping a passed attempt's patch.
    KeepPatch,
    /// The validate step's log has no complete patch block.
    PatchNotInLog,
    /// The patch in the log does not match the verdict's SHA-256.
    PatchChecksumMismatch,
    /// The patch is larger than a ConfigMap may keep.
    PatchTooLargeToKeep,
    /// The validate step's log cannot be read (the pod or its node is gone).
    PatchLogUnavailable,
    // Memory of past fixes (Events on the run)
    /// Event: the run's validated fix was remembered for later runs of the repository.
    FixRemembered,
    /// Event: a person denied the run's fix; its memory entry is never reused.
    RememberedFixDenied,
    // Errors (the `reason` label of `cihealer_reconcile_errors_total`)
    /// The API server answered 409 Conflict.
    Conflict,
    /// The API server answered 404 Not Found.
    NotFound,
    /// The API server answered another error status.
    ApiError,
    /// The request did not reach the API server (connection, TLS, decoding).
    KubeClientError,
    /// The object has no namespace.
    MissingNamespace,
    /// A value could not be serialised.
    SerializationError,
    /// A HealingAttempt with the next attempt's name belongs to another (deleted) run.
    AttemptNameTaken,
    /// The profile a run was triaged to vanished from the config (a reload race).
    ProfileVanished,
}

impl AsRef<str> for Reason {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Build a condition of type `t`; `reason` must be CamelCase (a [`Reason`], or a reason a step
/// reported), `message` is for people.
pub fn new(
    t: impl ConditionType,
    status: bool,
    reason: impl AsRef<str>,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: t.as_str().to_string(),
        status: if status { TRUE } else { FALSE }.to_string(),
        reason: reason.as_ref().to_string(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: now,
    }
}

/// Insert or update `cond` in `conds` by type, keeping the old `lastTransitionTime` when the status
/// did not change. Returns true when anything other than the timestamp changed.
pub fn set(conds: &mut Vec<Condition>, cond: Condition) -> bool {
    match conds.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(existing) => {
            let changed = existing.status != cond.status
                || existing.reason != cond.reason
                || existing.message != cond.message
                || existing.observed_generation != cond.observed_generation;
            if !changed {
                return false;
            }
            let ltt = if existing.status == cond.status {
                existing.last_transition_time.clone()
            } else {
                cond.last_transition_time.clone()
            };
            *existing = Condition { last_transition_time: ltt, ..cond };
            true
        }
        None => {
            conds.push(cond);
            true
        }
    }
}

/// The condition of type `t`, if present.
pub fn get(conds: &[Condition], t: impl ConditionType) -> Option<&Condition> {
    conds.iter().find(|c| c.type_ == t.as_str())
}

/// True when the condition of type `t` is present with status `True`.
pub fn is_true(conds: &[Condition], t: impl ConditionType) -> bool {
    get(conds, t).is_some_and(|c| c.status == TRUE)
}

/// True when the condition of type `t` is present with status `False`.
pub fn is_false(conds: &[Condition], t: impl ConditionType) -> bool {
    get(conds, t).is_some_and(|c| c.status == FALSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn transition_time_moves_only_with_status() {
        let fixed = RunCondition::Fixed;
        let mut conds = vec![];
        assert!(set(&mut conds, new(fixed, false, Reason::AttemptRunning, "a", Some(1), t(10))));
        assert!(set(&mut conds, new(fixed, false, Reason::AttemptRunning, "b", Some(1), t(20))));
        assert_eq!(conds[0].last_transition_time, t(10), "same status keeps the time");
        assert_eq!(conds[0].message, "b");
        assert!(!set(&mut conds, new(fixed, false, Reason::AttemptRunning, "b", Some(1), t(30))), "no-op");
        assert!(is_false(&conds, fixed) && !is_true(&conds, fixed));
        assert!(set(&mut conds, new(fixed, true, Reason::ValidationPassed, "c", Some(1), t(40))));
        assert_eq!(conds[0].last_transition_time, t(40));
        assert_eq!(conds.len(), 1);
        assert!(is_true(&conds, fixed));
        assert!(!is_true(&conds, RunCondition::Aborted) && !is_false(&conds, RunCondition::Aborted));
    }

    #[test]
    fn reasons_are_unique_camel_case() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let s = r.as_str();
            assert!(s.chars().next().is_some_and(|c| c.is_ascii_uppercase()), "{s}");
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
            assert!(seen.insert(s), "{s} twice");
            assert_eq!(r.to_string(), s);
        }
    }
}
