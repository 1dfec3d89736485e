//! The HealingRun phase machine, as one pure function: observed state in, desired status and actions out.
//!
//! ```text
//!   Queued ──triaged, unique──► Running ──attempt n passed──► Fixed
//!     │  ▲                        │  │
//!     │  └─duplicate of X (waits)─┘  └─attempt n failed: n < max → attempt n+1; n = max → Escalated
//!     ├─ spec.action=abort at any non-final point ──────────────────────────────► Aborted
//!     ├─ a loop-prevention or opt-out rule holds (no attempt) ──────────────────► Skipped
//!     └─ triage answers "re-run" and GitHub can re-run the job (no attempt) ────► Rerun
//!
//!   Fixed ──approve──► Fixed (Approved)     Fixed ──deny──► Denied ──retry──► Running
//!   Escalated ──retry──► Running            any ──resolve──► Resolved
//! ```
//! People's actions are judged by [`super::actions`]; each is recorded once in `status.history`.
//! A duplicate takes the final phase of the run it waits behind. Every change of phase or condition
//! is also returned as a [`Transition`] for Events and logs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::actions::{self, Effect};
use super::error::SpecProblem;
use crate::config::ActionPolicy;
use crate::crd::conditions::{self, Reason, RunCondition, get};
use crate::crd::run::{ActionResult, RetryRequest};
use crate::crd::{AttemptPhase, Diffstat, HealingRun, HealingRunStatus, PatchRef, RunAction, RunPhase};
use crate::triage::FailureClass;

/// Whether `run`'s attempts must stop: a person asked to abort or resolve it (`spec.action: abort`
/// or `resolve`) or it is Aborted or Resolved. The one stop rule: the run's phase machine and the
/// attempt's both decide by it.
pub fn abort_requested(run: &HealingRun) -> bool {
    matches!(run.spec.action, Some(RunAction::Abort | RunAction::Resolve))
        || matches!(run.status.as_ref().and_then(|s| s.phase), Some(RunPhase::Aborted | RunPhase::Resolved))
}

/// One attempt of the run as the run controller sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttemptView {
    /// The attempt number (`spec.attempt`).
    pub number: i32,
    /// The HealingAttempt's name.
    pub name: String,
    /// Its phase (Pending when it has no status yet).
    pub phase: AttemptPhase,
    /// Why it failed, as the step or verdict said.
    pub failure_reason: Option<String>,
    /// The verdict's summary, when not empty.
    pub summary: Option<String>,
    /// The ConfigMap holding its patch, once kept.
    pub patch_config_map: Option<String>,
    /// The size of its change.
    pub diffstat: Option<Diffstat>,
    /// The tokens (and cost) its agent used, from the verdict.
    pub tokens: Option<crate::contract::TokenUsage>,
    /// The protected paths its passing change touches, from the verdict.
    pub protected_paths: Vec<String>,
}

/// The tokens and cost of all attempts together; `None` when no attempt reported any. The cost is
/// summed over the attempts that have one.
pub fn total_usage(attempts: &[AttemptView]) -> Option<crate::contract::TokenUsage> {
    let mut any = false;
    let mut t = crate::contract::TokenUsage::default();
    for u in attempts.iter().filter_map(|a| a.tokens.as_ref()) {
        any = true;
        t.input = t.input.saturating_add(u.input);
        t.output = t.output.saturating_add(u.output);
        t.cache_read = t.cache_read.saturating_add(u.cache_read);
        t.cache_write = t.cache_write.saturating_add(u.cache_write);
        if let Some(c) = u.cost_micro_usd {
            t.cost_micro_usd = Some(t.cost_micro_usd.unwrap_or(0).saturating_add(c));
        }
    }
    any.then_some(t)
}

/// Triage's answer for the run.
#[derive(Debug, Clone, PartialEq)]
pub struct TriageView {
    /// The failure class.
    pub failure_class: FailureClass,
    /// How sure the classifier is, 0.0 to 1.0.
    pub confidence: f32,
    /// The agent profile the attempts use (a configured one).
    pub agent: String,
    /// The error hash (16 hex digits), part of the dedup key.
    pub error_hash: String,
    /// Triage answered "re-run CI" instead of an agent (a flaky or infrastructural class).
    pub rerun: bool,
}

/// The older active run with the same repository, head SHA and error hash.
#[derive(Debug, Clone, PartialEq)]
pub struct PrimaryView {
    /// Its name.
    pub name: String,
    /// Its phase.
    pub phase: Option<RunPhase>,
}

/// Everything [`decide`] needs.
#[derive(Debug, Clone)]
pub struct RunObservation<'a> {
    /// The run, as the reflector holds it.
    pub run: &'a HealingRun,
    /// Attempts owned by the run, any order.
    pub attempts: Vec<AttemptView>,
    /// `Ok` with triage's answer, or the problem with a spec the controller cannot act on.
    pub triage: Result<TriageView, SpecProblem>,
    /// The run this one duplicates, if any (see [`super::dedup::find_primary`]).
    pub primary: Option<PrimaryView>,
    /// The time to stamp on changed conditions.
    pub now: Time,
    /// A loop-prevention or opt-out rule that stops the run before any attempt
    /// ([`super::skip::check`]).
    pub skip: Option<super::skip::SkipView>,
    /// The Actions job GitHub can re-run instead of an attempt, when triage answers "re-run"
    /// ([`super::skip::rerun_job`]).
    pub rerun_job: Option<i64>,
    /// What people's actions may do (controller config `actions`).
    pub actions: ActionPolicy,
    /// The configured agent profiles (a retry may name one).
    pub profiles: Vec<String>,
}

/// What the controller should do.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The status to write (unchanged means: write nothing).
    pub status: HealingRunStatus,
    /// Start attempt number n (create `<run>-<n>`).
    pub start_attempt: Option<i32>,
    /// Attempts outlive an abort: keep watching until they stop (the attempt controller stops
    /// them, by the same [`abort_requested`] rule).
    pub stop_attempts: bool,
    /// Ask GitHub to re-run this Actions job (before the status that says so is written).
    pub rerun_job: Option<i64>,
}

/// An observable change, published as an Event and logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// A Warning Event (else Normal).
    pub warning: bool,
    /// The Event's reason.
    pub reason: Reason,
    /// The Event's note, for people.
    pub message: String,
}

/// Compute the next status and actions. Pure: same observation, same decision.
pub fn decide(obs: &RunObservation<'_>) -> Decision {
    let run = obs.run;
    let gen_ = run.metadata.generation;
    let now = obs.now.clone();
    let old = run.status.clone().unwrap_or_default();
    let mut st = old.clone();
    st.observed_generation = gen_;
    st.short_sha = Some(run.spec.source.head_sha.chars().take(7).collect());
    let set = |st: &mut HealingRunStatus, t: RunCondition, ok: bool, reason: Reason, msg: String| {
        conditions::set(&mut st.conditions, conditions::new(t, ok, reason, msg, gen_, now.clone()));
    };

    let mut attempts = obs.attempts.clone();
    attempts.sort_by_key(|a| a.number);
    let latest = attempts.last().cloned();
    st.attempts = st.attempts.max(attempts.len() as i32);
    if let Some(u) = total_usage(&attempts) {
        st.usage = Some(u);
    }
    if let Some(l) = &latest {
        st.current_attempt = Some(l.number);
    }
    let any_active = attempts.iter().any(|a| !a.phase.is_terminal());
    let mut d = Decision { status: st.clone(), start_attempt: None, stop_attempts: false, rerun_job: None };

    // A person's new request: judged once, recorded, then applied.
    let mut retried = false;
    let mut abort_by = None;
    if let Some(p) = actions::pending(run) {
        let has_profile = |name: &str| obs.profiles.iter().any(|p| p == name);
        let judged = actions::evaluate(run, &old, &p, &obs.actions, has_profile);
        let (result, reason, msg) = match &judged {
            Ok(effect) => (ActionResult::Applied, actions::applied_reason(effect), applied_message(&p, effect, &old)),
            Err(refusal) => (ActionResult::Refused, refusal.reason, refusal.message.clone()),
        };
        actions::record(&mut st.history, actions::entry(&p, result, msg.clone(), gen_, now.clone()));
        set(&mut st, RunCondition::ActionApplied, judged.is_ok(), reason, msg.clone());
        match judged {
            // A Fixed run's open pull request is withdrawn (closed, its branch kept).
            Ok(Effect::Abort) if old.phase == Some(RunPhase::Fixed) => {
                st.phase = Some(RunPhase::Aborted);
                st.completion_time = Some(now.clone());
                set(&mut st, RunCondition::Aborted, true, reason, msg);
                d.status = st;
                return d;
            }
            Ok(Effect::Abort) => abort_by = Some(actions::who(&p)),
            Ok(Effect::Approve) => set(&mut st, RunCondition::Approved, true, reason, msg),
            Ok(Effect::Deny) => {
                st.phase = Some(RunPhase::Denied);
                st.completion_time = Some(now.clone());
                set(&mut st, RunCondition::Denied, true, reason, msg);
                d.status = st;
                return d;
            }
            Ok(Effect::Resolve) => {
                st.phase = Some(RunPhase::Resolved);
                st.completion_time = Some(now.clone());
                set(&mut st, RunCondition::Resolved, true, reason, msg.clone());
                set(&mut st, RunCondition::Healing, false, reason, msg);
                d.stop_attempts = any_active;
                d.status = st;
                return d;
            }
            Ok(Effect::Retry) => {
                retried = true;
                st.retries += 1;
                st.retried_after_attempt = Some(latest.as_ref().map_or(0, |l| l.number));
                st.retry = Some(RetryRequest { agent: p.request.agent.clone(), hint: p.request.hint.clone() });
                st.escalation_reason = None;
                st.completion_time = None;
                st.patch = None;
                // A denied fix's pull request is closed and its branch deleted: the retried run's
                // fix is delivered afresh, on a branch of its own (`deliver::head_ref`).
                st.pull_request = None;
                for t in [
                    RunCondition::Escalated,
                    RunCondition::Denied,
                    RunCondition::Fixed,
                    RunCondition::Approved,
                    RunCondition::Delivered,
                ] {
                    if get(&st.conditions, t).is_some() {
                        set(&mut st, t, false, reason, msg.clone());
                    }
                }
            }
            Err(_) => {}
        }
    }

    // Final phases stay final (unless a person retried); an abort still stops attempts that
    // outlived it.
    if !retried && old.phase.is_some_and(RunPhase::is_terminal) {
        d.stop_attempts = abort_requested(run) && any_active;
        d.status = st;
        return d;
    }

    // A person's abort wins over everything else.
    if abort_requested(run) {
        st.phase = Some(RunPhase::Aborted);
        st.completion_time = Some(now.clone());
        let by = abort_by.map(|w| format!(" by {w}")).unwrap_or_else(|| " by request".into());
        let msg = match &latest {
            Some(l) if !l.phase.is_terminal() => {
                format!("aborted{by}; attempt {} stopped", l.number)
            }
            _ => format!("aborted{by}"),
        };
        set(&mut st, RunCondition::Aborted, true, Reason::AbortRequested, msg.clone());
        set(&mut st, RunCondition::Healing, false, Reason::Aborted, msg);
        d.stop_attempts = any_active;
        d.status = st;
        return d;
    }

    // A spec the controller cannot act on waits for a change.
    let triage = match &obs.triage {
        Ok(t) => t,
        Err(problem) => {
            st.phase = Some(RunPhase::Queued);
            set(&mut st, RunCondition::Accepted, false, problem.reason, problem.message.clone());
            d.status = st;
            return d;
        }
    };
    set(&mut st, RunCondition::Accepted, true, Reason::SpecValid, "the spec is valid".into());
    st.failure_class = Some(triage.failure_class);
    // A retry may ask for another profile.
    let agent = st.retry.as_ref().and_then(|r| r.agent.clone()).unwrap_or_else(|| triage.agent.clone());
    st.agent = Some(agent.clone());
    st.error_hash = Some(triage.error_hash.clone());
    set(
        &mut st,
        RunCondition::Triaged,
        true,
        Reason::Classified,
        format!(
            "classified as {} (confidence {:.2}); agent profile {}; error hash {}",
            triage.failure_class.as_str(),
            triage.confidence,
            triage.agent,
            triage.error_hash
        ),
    );
    // Loop prevention and opt-outs: a rule that holds ends the run before any attempt.
    if let Some(skip) = obs.skip.as_ref().filter(|_| attempts.is_empty()) {
        st.phase = Some(RunPhase::Skipped);
        st.completion_time = Some(now.clone());
        set(&mut st, RunCondition::Skipped, true, skip.reason, skip.message.clone());
        set(&mut st, RunCondition::Healing, false, skip.reason, skip.message.clone());
        d.status = st;
        return d;
    }
    // Triage's "re-run CI" answer: the job is re-run on GitHub once instead of an attempt; when
    // ci-healer cannot re-run it (no identity, no job id, a re-run that failed again) the answer is
    // reported and the agent attempts go ahead.
    if triage.rerun {
        match obs.rerun_job.filter(|_| attempts.is_empty()) {
            Some(job) => {
                let msg = format!(
                    "triage answers {} with a CI re-run (the failure looks flaky or infrastructural): asked GitHub \
                     to re-run job {job}; no attempt runs, and a failure of the re-run is healed normally",
                    triage.failure_class.as_str()
                );
                st.phase = Some(RunPhase::Rerun);
                st.completion_time = Some(now.clone());
                set(&mut st, RunCondition::Rerun, true, Reason::RerunRequested, msg.clone());
                set(&mut st, RunCondition::Healing, false, Reason::RerunRequested, msg);
                d.rerun_job = Some(job);
                d.status = st;
                return d;
            }
            None => set(
                &mut st,
                RunCondition::Rerun,
                false,
                Reason::RerunNotImplemented,
                format!(
                    "triage answers {} with a CI re-run (the failure looks flaky or infrastructural), but ci-healer \
                     cannot re-run this job (no GitHub identity, no job id, or it was re-run already); agent \
                     attempts proceed instead",
                    triage.failure_class.as_str()
                ),
            ),
        }
    }

    // Dedup: wait behind the primary, then take its final phase.
    if let Some(primary) = obs.primary.as_ref().filter(|_| attempts.is_empty()) {
        st.duplicate_of = Some(primary.name.clone());
        set(
            &mut st,
            RunCondition::Duplicate,
            true,
            Reason::DuplicateOfActiveRun,
            format!(
                "run {} heals the same failure (repository, head SHA and error hash); this run starts no attempts",
                primary.name
            ),
        );
        match primary.phase.filter(|p| p.is_terminal()) {
            Some(final_phase) => {
                st.phase = Some(final_phase);
                st.completion_time = Some(now.clone());
                let msg = format!("the run this one duplicates, {}, ended {final_phase}", primary.name);
                let (t, reason) = match final_phase {
                    RunPhase::Fixed => (RunCondition::Fixed, Reason::DuplicateFixed),
                    RunPhase::Aborted => (RunCondition::Aborted, Reason::DuplicateAborted),
                    _ => (RunCondition::Escalated, Reason::DuplicateEscalated),
                };
                if final_phase == RunPhase::Escalated {
                    st.escalation_reason = Some(msg.clone());
                }
                set(&mut st, t, true, reason, msg.clone());
                set(&mut st, RunCondition::Healing, false, reason, msg);
            }
            None => st.phase = Some(RunPhase::Queued),
        }
        d.status = st;
        return d;
    }
    if st.duplicate_of.is_none() {
        set(
            &mut st,
            RunCondition::Duplicate,
            false,
            Reason::NoActiveDuplicate,
            "no other active run heals the same failure".into(),
        );
    }

    // Each retry grants policy.maxAttempts attempts after the last one before it.
    let base = st.retried_after_attempt.unwrap_or(0);
    let max = base + run.spec.policy.max_attempts.max(1);
    match latest.filter(|l| l.number > base) {
        None => start(&mut st, &mut d, base + 1, max, &agent, &now, set),
        Some(l) if !l.phase.is_terminal() => {
            st.phase = Some(RunPhase::Running);
            st.start_time.get_or_insert(now.clone());
            // The message this attempt's start wrote stays while it runs: rewording it would cost
            // a status write per attempt and say nothing new.
            let started = get(&st.conditions, RunCondition::Healing).is_some_and(|c| {
                c.status == conditions::TRUE
                    && c.reason == Reason::AttemptRunning.as_str()
                    && c.message.starts_with(&format!("attempt {} of {} ", l.number, max))
            });
            if !started {
                set(
                    &mut st,
                    RunCondition::Healing,
                    true,
                    Reason::AttemptRunning,
                    format!("attempt {} of {} is running", l.number, max),
                );
            }
        }
        Some(l) if l.phase == AttemptPhase::Succeeded => {
            st.phase = Some(RunPhase::Fixed);
            st.completion_time = Some(now.clone());
            st.patch = Some(PatchRef {
                attempt: l.name.clone(),
                config_map: l.patch_config_map.clone(),
                diffstat: l.diffstat.clone(),
                protected_paths: l.protected_paths.clone(),
            });
            let msg = format!(
                "attempt {} passed validation{}",
                l.number,
                l.summary.as_deref().map(|s| format!(": {s}")).unwrap_or_default()
            );
            set(&mut st, RunCondition::Fixed, true, Reason::ValidationPassed, msg.clone());
            set(&mut st, RunCondition::Healing, false, Reason::Fixed, msg);
            if !l.protected_paths.is_empty() {
                let held = format!(
                    "the fix touches protected path(s) {}: it waits for a person's approval \
                     (`spec.action: approve`, or a `/healer approve` comment) before it is delivered",
                    l.protected_paths.join(", ")
                );
                set(&mut st, RunCondition::Approved, false, Reason::ProtectedPathNeedsApproval, held);
            }
        }
        Some(l) if l.number < max => start(&mut st, &mut d, l.number + 1, max, &agent, &now, set),
        Some(l) => {
            st.phase = Some(RunPhase::Escalated);
            st.completion_time = Some(now.clone());
            let reason = l.failure_reason.clone().unwrap_or_else(|| "Unknown".into());
            let msg = format!("all {} attempts failed; the last failed with {}", l.number, reason);
            st.escalation_reason = Some(msg.clone());
            set(&mut st, RunCondition::Escalated, true, Reason::AttemptsExhausted, msg.clone());
            set(&mut st, RunCondition::Healing, false, Reason::AttemptsExhausted, msg);
        }
    }
    d.status = st;
    d
}

/// The message of an applied action, e.g. "approved by alice (kubectl)".
fn applied_message(p: &actions::Pending, effect: &Effect, old: &HealingRunStatus) -> String {
    let who = actions::who(p);
    match effect {
        Effect::Abort => match &old.pull_request {
            Some(pr) if pr.state == "open" && old.phase == Some(RunPhase::Fixed) => {
                format!("aborted by {who}; its pull request #{} is closed", pr.number)
            }
            _ => format!("aborted by {who}"),
        },
        Effect::Approve => match &old.pull_request {
            Some(pr) if pr.state == "open" => format!(
                "the kept patch was approved by {who}; draft pull request #{} is marked ready for review",
                pr.number
            ),
            _ => format!("the kept patch was approved by {who}"),
        },
        Effect::Deny => format!(
            "the fix was denied by {who}{}",
            p.request.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
        ),
        Effect::Retry => format!(
            "retry {} requested by {who}{}{}",
            old.retries + 1,
            p.request.agent.as_deref().map(|a| format!(" with agent profile {a}")).unwrap_or_default(),
            p.request.hint.as_deref().map(|_| " and a hint for the agent").unwrap_or_default()
        ),
        Effect::Resolve => format!("resolved by {who}: a person fixed the failure"),
    }
}

fn start(
    st: &mut HealingRunStatus,
    d: &mut Decision,
    n: i32,
    max: i32,
    agent: &str,
    now: &Time,
    set: impl Fn(&mut HealingRunStatus, RunCondition, bool, Reason, String),
) {
    d.start_attempt = Some(n);
    st.phase = Some(RunPhase::Running);
    st.attempts = st.attempts.max(n);
    st.current_attempt = Some(n);
    st.start_time.get_or_insert(now.clone());
    set(
        st,
        RunCondition::Healing,
        true,
        Reason::AttemptRunning,
        format!("attempt {n} of {max} started with agent profile {agent}"),
    );
}

/// The Events a status change deserves, computed from the old and new status. Pure.
pub fn transitions(old: Option<&HealingRunStatus>, new: &HealingRunStatus) -> Vec<Transition> {
    let empty = HealingRunStatus::default();
    let old = old.unwrap_or(&empty);
    let mut out = Vec::new();
    let became = |t: RunCondition, status: &str| {
        let n = get(&new.conditions, t).filter(|c| c.status == status)?;
        let o = get(&old.conditions, t);
        (o.map(|o| (&o.status, &o.reason)) != Some((&n.status, &n.reason))).then(|| n.message.clone())
    };
    // A person's action, applied or refused: one Event per handled request.
    let new_request = new.history.last().map(|h| &h.request_key) != old.history.last().map(|h| &h.request_key);
    if let (true, Some(h), Some(c)) =
        (new_request, new.history.last(), get(&new.conditions, RunCondition::ActionApplied))
    {
        let reason =
            Reason::ALL.iter().copied().find(|r| r.as_str() == c.reason).unwrap_or(Reason::ActionNotApplicable);
        out.push(Transition { warning: h.result == ActionResult::Refused, reason, message: h.message.clone() });
    }
    if let Some(m) = became(RunCondition::Approved, conditions::FALSE)
        && get(&new.conditions, RunCondition::Approved)
            .is_some_and(|c| c.reason == Reason::ProtectedPathNeedsApproval.as_str())
    {
        out.push(Transition { warning: false, reason: Reason::ProtectedPathNeedsApproval, message: m });
    }
    if let Some(m) = became(RunCondition::Accepted, conditions::FALSE) {
        out.push(Transition { warning: true, reason: Reason::InvalidSpec, message: m });
    }
    if let Some(m) = became(RunCondition::Triaged, conditions::TRUE) {
        out.push(Transition { warning: false, reason: Reason::Triaged, message: m });
    }
    if let Some(m) = became(RunCondition::Rerun, conditions::FALSE) {
        out.push(Transition { warning: true, reason: Reason::RerunNotImplemented, message: m });
    }
    if let Some(m) = became(RunCondition::Duplicate, conditions::TRUE) {
        out.push(Transition { warning: false, reason: Reason::Duplicate, message: m });
    }
    if new.current_attempt > old.current_attempt && new.phase == Some(RunPhase::Running) {
        let m = get(&new.conditions, RunCondition::Healing).map(|c| c.message.clone()).unwrap_or_default();
        out.push(Transition { warning: false, reason: Reason::AttemptStarted, message: m });
    }
    if new.phase != old.phase {
        let msg = |t| get(&new.conditions, t).map(|c| c.message.clone()).unwrap_or_default();
        match new.phase {
            Some(RunPhase::Fixed) => {
                out.push(Transition { warning: false, reason: Reason::Fixed, message: msg(RunCondition::Fixed) })
            }
            Some(RunPhase::Escalated) => {
                out.push(Transition { warning: true, reason: Reason::Escalated, message: msg(RunCondition::Escalated) })
            }
            Some(RunPhase::Aborted) => {
                out.push(Transition { warning: false, reason: Reason::Aborted, message: msg(RunCondition::Aborted) })
            }
            Some(RunPhase::Skipped) => {
                out.push(Transition { warning: false, reason: Reason::Skipped, message: msg(RunCondition::Skipped) })
            }
            Some(RunPhase::Rerun) => out.push(Transition {
                warning: false,
                reason: Reason::RerunRequested,
                message: msg(RunCondition::Rerun),
            }),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::conditions::is_true;
    use crate::crd::{FailureSource, HealingPolicy, HealingRunSpec};

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    fn run(status: Option<HealingRunStatus>) -> HealingRun {
        let mut r = HealingRun::new(
            "r",
            HealingRunSpec {
                source: FailureSource {
                    repository: "o/r".into(),
                    branch: "main".into(),
                    head_sha: "3484a3fb816e0859fd6e1cea078d76385ff50625".into(),
                    ..Default::default()
                },
                failure: None,
                policy: HealingPolicy::default(),
                action: None,
                action_request: None,
            },
        );
        r.metadata.generation = Some(1);
        r.status = status;
        r
    }

    fn triage() -> Result<TriageView, SpecProblem> {
        Ok(TriageView {
            failure_class: FailureClass::RustFmt,
            confidence: 0.9,
            agent: "rust".into(),
            error_hash: "abcd".into(),
            rerun: false,
        })
    }

    fn att(n: i32, phase: AttemptPhase) -> AttemptView {
        AttemptView {
            number: n,
            name: format!("r-{n}"),
            phase,
            failure_reason: Some("ValidationFailed".into()),
            ..Default::default()
        }
    }

    #[test]
    fn usage_is_summed_over_the_attempts() {
        use crate::contract::TokenUsage;
        assert_eq!(total_usage(&[att(1, AttemptPhase::Failed)]), None);
        let with = |n, input, cost| AttemptView {
            tokens: Some(TokenUsage { input, output: 10, cache_read: 5, cache_write: 1, cost_micro_usd: cost }),
            ..att(n, AttemptPhase::Failed)
        };
        assert_eq!(
            total_usage(&[with(1, 100, Some(7)), att(2, AttemptPhase::Failed), with(3, 50, None)]),
            Some(TokenUsage { input: 150, output: 20, cache_read: 10, cache_write: 2, cost_micro_usd: Some(7) })
        );
    }

    fn obs(r: &HealingRun, attempts: Vec<AttemptView>) -> RunObservation<'_> {
        RunObservation {
            run: r,
            attempts,
            triage: triage(),
            primary: None,
            now: t(100),
            actions: ActionPolicy::default(),
            profiles: vec!["rust".into(), "general".into()],
            skip: None,
            rerun_job: None,
        }
    }

    /// Walks the whole table of run transitions.
    #[test]
    fn phase_table() {
        use AttemptPhase::*;
        struct Case {
            name: &'static str,
            attempts: Vec<AttemptView>,
            phase: RunPhase,
            start: Option<i32>,
        }
        let cases = [
            Case { name: "new run starts attempt 1", attempts: vec![], phase: RunPhase::Running, start: Some(1) },
            Case {
                name: "pending attempt keeps running",
                attempts: vec![att(1, Pending)],
                phase: RunPhase::Running,
                start: None,
            },
            Case {
                name: "running attempt keeps running",
                attempts: vec![att(1, Running)],
                phase: RunPhase::Running,
                start: None,
            },
            Case {
                name: "passed attempt fixes",
                attempts: vec![att(1, Succeeded)],
                phase: RunPhase::Fixed,
                start: None,
            },
            Case {
                name: "failed attempt 1 starts 2",
                attempts: vec![att(1, Failed)],
                phase: RunPhase::Running,
                start: Some(2),
            },
            Case {
                name: "failed attempt 2 starts 3",
                attempts: vec![att(2, Failed), att(1, Failed)],
                phase: RunPhase::Running,
                start: Some(3),
            },
            Case {
                name: "failed attempt 3 of 3 escalates",
                attempts: vec![att(1, Failed), att(2, Failed), att(3, Failed)],
                phase: RunPhase::Escalated,
                start: None,
            },
            Case {
                name: "attempt 2 passed after 1 failed",
                attempts: vec![att(1, Failed), att(2, Succeeded)],
                phase: RunPhase::Fixed,
                start: None,
            },
        ];
        for c in cases {
            let r = run(None);
            let d = decide(&obs(&r, c.attempts));
            assert_eq!(d.status.phase, Some(c.phase), "{}", c.name);
            assert_eq!(d.start_attempt, c.start, "{}", c.name);
            assert!(!d.stop_attempts, "{}", c.name);
        }
    }

    /// A lifecycle costs one run status write when an attempt starts, none while it goes from
    /// Pending to Running, and one when it ends: the start's message is kept while it runs.
    #[test]
    fn a_started_attempt_costs_no_status_write_until_it_ends() {
        let r = run(None);
        let started = decide(&obs(&r, vec![]));
        assert_eq!(started.start_attempt, Some(1));
        let r = run(Some(started.status.clone()));
        for phase in [AttemptPhase::Pending, AttemptPhase::Running] {
            let d = decide(&obs(&r, vec![att(1, phase)]));
            assert_eq!(d.status, started.status, "{phase:?}: no write");
        }
        let d = decide(&obs(&r, vec![att(1, AttemptPhase::Succeeded)]));
        assert_eq!(d.status.phase, Some(RunPhase::Fixed));
        // A run that never wrote the start message (an older controller's status) gets it rewritten
        // once, with the attempt it is really running.
        let mut other = started.status.clone();
        for c in &mut other.conditions {
            if c.type_ == "Healing" {
                c.message = "attempt 2 of 3 started with agent profile rust".into();
            }
        }
        let r = run(Some(other));
        let d = decide(&obs(&r, vec![att(1, AttemptPhase::Running)]));
        let healing = get(&d.status.conditions, RunCondition::Healing).unwrap();
        assert_eq!(healing.message, "attempt 1 of 3 is running");
    }

    #[test]
    fn escalation_names_the_last_reason_and_emits_one_warning() {
        let r = run(Some(HealingRunStatus {
            phase: Some(RunPhase::Running),
            current_attempt: Some(3),
            attempts: 3,
            ..Default::default()
        }));
        let d = decide(&obs(
            &r,
            vec![att(1, AttemptPhase::Failed), att(2, AttemptPhase::Failed), att(3, AttemptPhase::Failed)],
        ));
        assert_eq!(
            d.status.escalation_reason.as_deref(),
            Some("all 3 attempts failed; the last failed with ValidationFailed")
        );
        assert_eq!(d.status.completion_time, Some(t(100)));
        let tr = transitions(r.status.as_ref(), &d.status);
        let esc: Vec<_> = tr.iter().filter(|t| t.reason == Reason::Escalated).collect();
        assert_eq!(esc.len(), 1);
        assert!(esc[0].warning);
    }

    #[test]
    fn max_attempts_one_escalates_after_one() {
        let mut r = run(None);
        r.spec.policy.max_attempts = 1;
        let d = decide(&obs(&r, vec![att(1, AttemptPhase::Failed)]));
        assert_eq!(d.status.phase, Some(RunPhase::Escalated));
        assert_eq!(d.start_attempt, None);
    }

    #[test]
    fn abort_stops_the_running_attempt_and_is_final() {
        let mut r = run(Some(HealingRunStatus { phase: Some(RunPhase::Running), ..Default::default() }));
        r.spec.action = Some(RunAction::Abort);
        let d = decide(&obs(&r, vec![att(1, AttemptPhase::Running)]));
        assert_eq!(d.status.phase, Some(RunPhase::Aborted));
        assert!(d.stop_attempts);
        assert_eq!(d.start_attempt, None);
        assert!(is_true(&d.status.conditions, RunCondition::Aborted));
        // Once Aborted, a failed attempt never starts another.
        let mut r2 = r.clone();
        r2.status = Some(d.status.clone());
        let d2 = decide(&obs(&r2, vec![att(1, AttemptPhase::Failed)]));
        assert_eq!(d2.status.phase, Some(RunPhase::Aborted));
        assert_eq!(d2.start_attempt, None);
        assert!(!d2.stop_attempts);
    }

    /// The abort's message names the attempt it stopped, and only when one was still running.
    #[test]
    fn abort_message_names_a_stopped_attempt_only_when_one_ran() {
        for (latest, message, stops) in [
            (AttemptPhase::Running, "aborted by unknown (kubectl); attempt 1 stopped", true),
            (AttemptPhase::Pending, "aborted by unknown (kubectl); attempt 1 stopped", true),
            (AttemptPhase::Failed, "aborted by unknown (kubectl)", false),
        ] {
            let mut r = run(Some(HealingRunStatus { phase: Some(RunPhase::Running), ..Default::default() }));
            r.spec.action = Some(RunAction::Abort);
            let d = decide(&obs(&r, vec![att(1, latest)]));
            for t in [RunCondition::Aborted, RunCondition::Healing] {
                let c = get(&d.status.conditions, t).unwrap_or_else(|| panic!("no {t:?} condition ({latest:?})"));
                assert_eq!(c.message, message, "{t:?} with attempt 1 {latest:?}");
            }
            assert_eq!(d.stop_attempts, stops, "{latest:?}");
        }
    }

    #[test]
    fn final_phases_never_start_attempts() {
        for p in [RunPhase::Fixed, RunPhase::Escalated, RunPhase::Aborted] {
            let r = run(Some(HealingRunStatus { phase: Some(p), ..Default::default() }));
            let d = decide(&obs(&r, vec![att(1, AttemptPhase::Failed)]));
            assert_eq!(d.status.phase, Some(p));
            assert_eq!(d.start_attempt, None);
        }
    }

    #[test]
    fn final_phases_keep_watching_attempts_only_after_an_abort() {
        let cases = [
            (RunPhase::Fixed, None, true, false),
            (RunPhase::Escalated, None, true, false),
            (RunPhase::Aborted, None, true, true),
            (RunPhase::Aborted, None, false, false),
            (RunPhase::Escalated, Some(RunAction::Abort), true, true),
        ];
        for (phase, action, active, want) in cases {
            let mut r = run(Some(HealingRunStatus { phase: Some(phase), ..Default::default() }));
            r.spec.action = action;
            let a = att(1, if active { AttemptPhase::Running } else { AttemptPhase::Failed });
            let d = decide(&obs(&r, vec![a]));
            assert_eq!(d.stop_attempts, want, "{phase:?} {action:?} active={active}");
            assert_eq!((d.status.phase, d.start_attempt), (Some(phase), None));
        }
        assert!(abort_requested(&run(Some(HealingRunStatus { phase: Some(RunPhase::Aborted), ..Default::default() }))));
        assert!(!abort_requested(&run(Some(HealingRunStatus { phase: Some(RunPhase::Fixed), ..Default::default() }))));
    }

    #[test]
    fn a_rerun_answer_is_reported_and_the_attempts_proceed() {
        let r = run(None);
        let mut o = obs(&r, vec![]);
        o.triage = Ok(TriageView { failure_class: FailureClass::InfraFlake, rerun: true, ..triage().unwrap() });
        let d = decide(&o);
        assert_eq!(d.start_attempt, Some(1));
        let c = get(&d.status.conditions, RunCondition::Rerun).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "RerunNotImplemented"));
        assert!(c.message.contains("infra_flake") && c.message.contains("cannot re-run"), "{}", c.message);
        let tr = transitions(None, &d.status);
        let rerun: Vec<_> = tr.iter().filter(|t| t.reason == Reason::RerunNotImplemented).collect();
        assert_eq!(rerun.len(), 1);
        assert!(rerun[0].warning);
        // Without a rerun answer there is no Rerun condition at all.
        let d = decide(&obs(&r, vec![]));
        assert!(get(&d.status.conditions, RunCondition::Rerun).is_none());
    }

    #[test]
    fn a_loop_prevention_rule_skips_the_run_and_starts_no_attempt() {
        let r = run(None);
        let mut o = obs(&r, vec![]);
        o.skip = Some(super::super::skip::SkipView { reason: Reason::OwnCommit, message: "ours".into() });
        let d = decide(&o);
        assert_eq!((d.start_attempt, d.status.phase), (None, Some(RunPhase::Skipped)));
        let c = get(&d.status.conditions, RunCondition::Skipped).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "OwnCommit"));
        let tr = transitions(None, &d.status);
        assert!(tr.iter().any(|t| t.reason == Reason::Skipped && !t.warning && t.message == "ours"), "{tr:?}");
        // Final: a later reconcile starts nothing either.
        let again = run(Some(d.status.clone()));
        assert_eq!(decide(&obs(&again, vec![])).start_attempt, None);
    }

    #[test]
    fn a_flaky_failure_is_rerun_once_instead_of_an_attempt() {
        let r = run(None);
        let mut o = obs(&r, vec![]);
        o.triage = Ok(TriageView { failure_class: FailureClass::InfraFlake, rerun: true, ..triage().unwrap() });
        o.rerun_job = Some(42);
        let d = decide(&o);
        assert_eq!((d.start_attempt, d.rerun_job, d.status.phase), (None, Some(42), Some(RunPhase::Rerun)));
        let c = get(&d.status.conditions, RunCondition::Rerun).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "RerunRequested"));
        assert!(transitions(None, &d.status).iter().any(|t| t.reason == Reason::RerunRequested));
        let again = run(Some(d.status.clone()));
        let d2 = decide(&obs(&again, vec![]));
        assert_eq!((d2.start_attempt, d2.rerun_job), (None, None), "re-run once, then final");
    }

    #[test]
    fn invalid_spec_waits_with_a_false_condition() {
        let r = run(None);
        let mut o = obs(&r, vec![]);
        o.triage = Err(SpecProblem {
            reason: Reason::UnknownProfile,
            message: "agent profile 'nope' is not configured".into(),
        });
        let d = decide(&o);
        assert_eq!(d.status.phase, Some(RunPhase::Queued));
        assert_eq!(d.start_attempt, None);
        let c = get(&d.status.conditions, RunCondition::Accepted).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "UnknownProfile"));
        let tr = transitions(None, &d.status);
        assert_eq!(tr[0].reason, Reason::InvalidSpec);
    }

    #[test]
    fn duplicate_waits_then_takes_the_primarys_final_phase() {
        let r = run(None);
        let mut o = obs(&r, vec![]);
        o.primary = Some(PrimaryView { name: "first".into(), phase: Some(RunPhase::Running) });
        let d = decide(&o);
        assert_eq!(d.status.phase, Some(RunPhase::Queued));
        assert_eq!(d.status.duplicate_of.as_deref(), Some("first"));
        assert_eq!(d.start_attempt, None);
        assert!(is_true(&d.status.conditions, RunCondition::Duplicate));
        let mut r2 = r.clone();
        r2.status = Some(d.status);
        let mut o2 = obs(&r2, vec![]);
        o2.primary = Some(PrimaryView { name: "first".into(), phase: Some(RunPhase::Fixed) });
        let d2 = decide(&o2);
        assert_eq!(d2.status.phase, Some(RunPhase::Fixed));
        assert_eq!(d2.start_attempt, None);
    }

    /// Each final phase of the primary: the duplicate's phase, the condition and reason that say
    /// so (on the phase's condition and on Healing), and an escalation reason only when escalated.
    #[test]
    fn a_duplicate_takes_each_final_phase_with_its_own_condition() {
        for (phase, cond, reason) in [
            (RunPhase::Fixed, RunCondition::Fixed, Reason::DuplicateFixed),
            (RunPhase::Aborted, RunCondition::Aborted, Reason::DuplicateAborted),
            (RunPhase::Escalated, RunCondition::Escalated, Reason::DuplicateEscalated),
        ] {
            let r = run(None);
            let mut o = obs(&r, vec![]);
            o.primary = Some(PrimaryView { name: "first".into(), phase: Some(phase) });
            let d = decide(&o);
            assert_eq!(d.status.phase, Some(phase));
            let msg = format!("the run this one duplicates, first, ended {phase}");
            let c = get(&d.status.conditions, cond).unwrap_or_else(|| panic!("no {cond:?} condition for {phase:?}"));
            assert_eq!(
                (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
                ("True", reason.as_str(), msg.as_str())
            );
            let h = get(&d.status.conditions, RunCondition::Healing).unwrap();
            assert_eq!((h.status.as_str(), h.reason.as_str()), ("False", reason.as_str()), "{phase:?}");
            let escalated = (phase == RunPhase::Escalated).then_some(msg);
            assert_eq!(d.status.escalation_reason, escalated, "{phase:?}");
            assert_eq!(d.status.completion_time, Some(t(100)), "{phase:?}");
            for other in
                [RunCondition::Fixed, RunCondition::Aborted, RunCondition::Escalated].into_iter().filter(|c| *c != cond)
            {
                assert!(!is_true(&d.status.conditions, other), "{other:?} set for {phase:?}");
            }
        }
    }

    #[test]
    fn steady_state_is_a_fixed_point() {
        let r = run(None);
        let d = decide(&obs(&r, vec![]));
        let mut r2 = r.clone();
        r2.status = Some(d.status.clone());
        let d2 = decide(&obs(&r2, vec![att(1, AttemptPhase::Running)]));
        let mut r3 = r.clone();
        r3.status = Some(d2.status.clone());
        let d3 = decide(&RunObservation { now: t(500), ..obs(&r3, vec![att(1, AttemptPhase::Running)]) });
        assert_eq!(d3.status, d2.status, "nothing changed, so nothing to write (even later)");
        assert!(transitions(Some(&d2.status), &d3.status).is_empty());
    }

    fn with_action(r: &HealingRun, action: RunAction, by: &str) -> HealingRun {
        let mut r = r.clone();
        r.spec.action = Some(action);
        r.spec.action_request = Some(crate::crd::ActionRequest { requested_by: Some(by.into()), ..Default::default() });
        r
    }

    fn phase_status(phase: RunPhase) -> HealingRunStatus {
        HealingRunStatus { phase: Some(phase), ..Default::default() }
    }

    /// Each action in each phase: applied (with its phase) or refused (with its reason), recorded
    /// once in the history, with one Event.
    #[test]
    fn people_actions_table() {
        use RunAction::*;
        use RunPhase::*;
        let cases = [
            (Approve, Fixed, Ok(Fixed)),
            (Approve, Running, Err(Reason::ActionNotApplicable)),
            (Deny, Fixed, Ok(Denied)),
            (Deny, Escalated, Err(Reason::ActionNotApplicable)),
            (Retry, Escalated, Ok(Running)),
            (Retry, Denied, Ok(Running)),
            (Retry, Fixed, Err(Reason::ActionNotApplicable)),
            (Resolve, Running, Ok(Resolved)),
            (Resolve, Escalated, Ok(Resolved)),
            (Resolve, Resolved, Err(Reason::ActionNotApplicable)),
            (Abort, Running, Ok(Aborted)),
            (Abort, Fixed, Err(Reason::ActionNotApplicable)),
        ];
        for (action, phase, want) in cases {
            let r = with_action(&run(Some(phase_status(phase))), action, "alice");
            let active = if phase == Running { AttemptPhase::Running } else { AttemptPhase::Failed };
            let d = decide(&obs(&r, vec![att(1, active)]));
            let h = d.status.history.last().expect("a history entry");
            assert_eq!((h.action, h.actor.as_str()), (action, "alice"));
            let c = get(&d.status.conditions, RunCondition::ActionApplied).unwrap();
            match want {
                Ok(p) => {
                    assert_eq!(d.status.phase, Some(p), "{action:?} on {phase:?}");
                    assert_eq!(h.result, ActionResult::Applied, "{action:?} on {phase:?}: {}", h.message);
                    assert_eq!(c.status, "True");
                }
                Err(reason) => {
                    assert_eq!(d.status.phase, Some(phase), "{action:?} on {phase:?} changes nothing");
                    assert_eq!((h.result, c.reason.as_str()), (ActionResult::Refused, reason.as_str()));
                    assert!(h.message.contains(phase.as_str()), "{}", h.message);
                }
            }
            let tr = transitions(r.status.as_ref(), &d.status);
            assert_eq!(tr.iter().filter(|t| t.message == h.message).count(), 1, "one Event: {tr:?}");
            // Handled once: the same request again changes nothing more.
            let mut again = r.clone();
            again.status = Some(d.status.clone());
            let d2 = decide(&obs(&again, vec![att(1, active)]));
            assert_eq!(d2.status.history.len(), 1, "{action:?} on {phase:?} handled twice");
        }
    }

    fn open_pr() -> crate::crd::run::PullRequestStatus {
        crate::crd::run::PullRequestStatus {
            number: 7,
            url: "https://github.com/o/r/pull/7".into(),
            head_ref: "ci-healer/r".into(),
            state: "open".into(),
            ready_for_review: None,
        }
    }

    /// The applied action's message names a pull request only when one is open and it acts on it
    /// (cargo-mutants: the guards in `applied_message` were untested).
    #[test]
    fn an_applied_actions_message_names_only_the_pull_request_it_acts_on() {
        let mut closed = open_pr();
        closed.state = "closed".into();
        let message = |phase: RunPhase, pr: Option<crate::crd::run::PullRequestStatus>, action: RunAction| {
            let st = HealingRunStatus { pull_request: pr, ..phase_status(phase) };
            let r = with_action(&run(Some(st)), action, "alice");
            let active = if phase == RunPhase::Running { AttemptPhase::Running } else { AttemptPhase::Succeeded };
            let d = decide(&obs(&r, vec![att(1, active)]));
            let h = d.status.history.last().unwrap().clone();
            assert_eq!(h.result, ActionResult::Applied, "{action:?} on {phase:?}: {}", h.message);
            h.message
        };
        // abort: a Running run's (stale) open pull request is not what the abort closes.
        assert_eq!(message(RunPhase::Running, Some(open_pr()), RunAction::Abort), "aborted by alice (kubectl)");
        assert_eq!(message(RunPhase::Running, None, RunAction::Abort), "aborted by alice (kubectl)");
        assert!(message(RunPhase::Fixed, Some(open_pr()), RunAction::Abort).ends_with("its pull request #7 is closed"));
        // approve: only an open draft is marked ready.
        assert_eq!(
            message(RunPhase::Fixed, Some(closed), RunAction::Approve),
            "the kept patch was approved by alice (kubectl)"
        );
        assert_eq!(
            message(RunPhase::Fixed, None, RunAction::Approve),
            "the kept patch was approved by alice (kubectl)"
        );
        assert!(
            message(RunPhase::Fixed, Some(open_pr()), RunAction::Approve)
                .ends_with("draft pull request #7 is marked ready for review")
        );
    }

    #[test]
    fn abort_withdraws_a_fixed_runs_open_pull_request() {
        let st = HealingRunStatus { pull_request: Some(open_pr()), ..phase_status(RunPhase::Fixed) };
        let r = with_action(&run(Some(st)), RunAction::Abort, "alice");
        let d = decide(&obs(&r, vec![att(1, AttemptPhase::Succeeded)]));
        assert_eq!(d.status.phase, Some(RunPhase::Aborted));
        let c = get(&d.status.conditions, RunCondition::Aborted).unwrap();
        assert!(c.message.contains("pull request #7 is closed"), "{}", c.message);
        assert!(crate::controller::deliver::withdraw_pending(&d.status), "the open pull request is closed next");
        assert!(!d.stop_attempts);
        // A closed one is nothing to withdraw: the run is final.
        let mut closed = open_pr();
        closed.state = "closed".into();
        let st = HealingRunStatus { pull_request: Some(closed), ..phase_status(RunPhase::Fixed) };
        let d = decide(&obs(&with_action(&run(Some(st)), RunAction::Abort, "alice"), vec![]));
        assert_eq!(d.status.phase, Some(RunPhase::Fixed));
    }

    #[test]
    fn a_retry_after_deny_delivers_its_new_fix_on_a_branch_of_its_own() {
        use crate::controller::deliver;
        let mut st = HealingRunStatus { pull_request: Some(open_pr()), ..phase_status(RunPhase::Denied) };
        st.conditions.push(conditions::new(
            RunCondition::Delivered,
            true,
            Reason::PullRequestOpened,
            "opened",
            None,
            t(1),
        ));
        let mut r = with_action(&run(Some(st)), RunAction::Retry, "alice");
        r.spec.policy.mode = crate::crd::HealingMode::PullRequest;
        let d = decide(&obs(&r, vec![att(1, AttemptPhase::Succeeded)]));
        assert_eq!(d.status.phase, Some(RunPhase::Running));
        assert_eq!(d.status.pull_request, None, "the denied pull request is no longer the run's");
        let c = get(&d.status.conditions, RunCondition::Delivered).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "RetryRequested"));
        // The retried attempt passes: the run is Fixed and its fix is delivered again.
        let mut again = r.clone();
        again.spec.action = None;
        again.status = Some(d.status.clone());
        let d2 = decide(&obs(&again, vec![att(1, AttemptPhase::Succeeded), att(2, AttemptPhase::Succeeded)]));
        assert_eq!(d2.status.phase, Some(RunPhase::Fixed));
        assert!(deliver::pending(&again, &d2.status), "{:?}", d2.status.conditions);
        let gh = crate::github::GitHubConfig::default();
        assert_eq!(deliver::head_ref(&gh, &again, 0), "ci-healer/r");
        assert_eq!(deliver::head_ref(&gh, &again, d2.status.retries), "ci-healer/r-retry-1");
    }

    #[test]
    fn a_fix_touching_protected_paths_waits_for_a_persons_approval() {
        use crate::controller::deliver;
        let mut r = run(Some(phase_status(RunPhase::Running)));
        r.spec.policy.mode = crate::crd::HealingMode::PullRequest;
        let passed =
            AttemptView { protected_paths: vec![".github/workflows/ci.yml".into()], ..att(1, AttemptPhase::Succeeded) };
        let d = decide(&obs(&r, vec![passed.clone()]));
        assert_eq!(d.status.phase, Some(RunPhase::Fixed));
        assert_eq!(d.status.patch.as_ref().unwrap().protected_paths, [".github/workflows/ci.yml"]);
        let c = get(&d.status.conditions, RunCondition::Approved).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "ProtectedPathNeedsApproval"));
        assert!(c.message.contains(".github/workflows/ci.yml"), "{}", c.message);
        assert!(!deliver::pending(&r, &d.status), "held: pull-request mode does not deliver it");
        let tr = transitions(r.status.as_ref(), &d.status);
        assert!(tr.iter().any(|t| t.reason == Reason::ProtectedPathNeedsApproval), "{tr:?}");
        // A person approves: now it is delivered.
        let mut approved = with_action(&r, RunAction::Approve, "alice");
        approved.status = Some(d.status.clone());
        let d2 = decide(&obs(&approved, vec![passed.clone()]));
        assert!(is_true(&d2.status.conditions, RunCondition::Approved));
        assert!(deliver::pending(&approved, &d2.status));
        // An unprotected fix in pull-request mode is delivered without one.
        let d3 = decide(&obs(&r, vec![att(1, AttemptPhase::Succeeded)]));
        assert!(get(&d3.status.conditions, RunCondition::Approved).is_none());
        assert!(deliver::pending(&r, &d3.status));
    }

    #[test]
    fn approval_by_the_failing_runs_sender_is_refused_unless_allowed() {
        let mut r = with_action(&run(Some(phase_status(RunPhase::Fixed))), RunAction::Approve, "Octocat");
        r.spec.source.sender = Some("octocat".into());
        let d = decide(&obs(&r, vec![att(1, AttemptPhase::Succeeded)]));
        let c = get(&d.status.conditions, RunCondition::ActionApplied).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "SelfApprovalRefused"));
        assert!(!is_true(&d.status.conditions, RunCondition::Approved));
        let mut o = obs(&r, vec![att(1, AttemptPhase::Succeeded)]);
        o.actions.allow_self_approval = true;
        assert!(is_true(&decide(&o).status.conditions, RunCondition::Approved));
    }

    #[test]
    fn retry_starts_a_fresh_budget_with_the_asked_profile_and_is_capped() {
        let mut r = with_action(&run(Some(phase_status(RunPhase::Escalated))), RunAction::Retry, "bob");
        r.spec.policy.max_attempts = 2;
        r.spec.action_request.as_mut().unwrap().agent = Some("general".into());
        let tried = vec![att(1, AttemptPhase::Failed), att(2, AttemptPhase::Failed)];
        let d = decide(&obs(&r, tried.clone()));
        assert_eq!((d.status.phase, d.start_attempt), (Some(RunPhase::Running), Some(3)));
        assert_eq!(d.status.agent.as_deref(), Some("general"));
        assert_eq!((d.status.retries, d.status.retried_after_attempt), (1, Some(2)));
        // Attempts 3 and 4 fail: escalated again after the fresh budget of 2.
        let mut r2 = r.clone();
        r2.status = Some(d.status.clone());
        let mut all = tried.clone();
        all.extend([att(3, AttemptPhase::Failed)]);
        assert_eq!(decide(&obs(&r2, all.clone())).start_attempt, Some(4));
        all.push(att(4, AttemptPhase::Failed));
        let d3 = decide(&obs(&r2, all.clone()));
        assert_eq!(d3.status.phase, Some(RunPhase::Escalated));
        // A second retry (a new request id) over the cap of 1 is refused.
        let mut r3 = r2.clone();
        r3.status = Some(d3.status.clone());
        r3.spec.action_request.as_mut().unwrap().id = Some("2".into());
        let mut o = obs(&r3, all);
        o.actions.max_retries = 1;
        let d4 = decide(&o);
        assert_eq!((d4.status.phase, d4.start_attempt), (Some(RunPhase::Escalated), None));
        let c = get(&d4.status.conditions, RunCondition::ActionApplied).unwrap();
        assert_eq!(c.reason, "RetryLimitReached");
        // An unknown profile is refused too.
        let mut r5 = with_action(&run(Some(phase_status(RunPhase::Escalated))), RunAction::Retry, "bob");
        r5.spec.action_request.as_mut().unwrap().agent = Some("cobol".into());
        let d5 = decide(&obs(&r5, vec![att(1, AttemptPhase::Failed)]));
        assert_eq!(get(&d5.status.conditions, RunCondition::ActionApplied).unwrap().reason, "UnknownRetryProfile");
    }

    /// A retry after a denied fix (its last attempt Succeeded) starts a fresh attempt: the attempts
    /// before the retry no longer count, not even the last one.
    #[test]
    fn a_retry_after_a_denied_fix_starts_a_new_attempt() {
        let r = with_action(&run(Some(phase_status(RunPhase::Denied))), RunAction::Retry, "bob");
        let d = decide(&obs(&r, vec![att(1, AttemptPhase::Succeeded)]));
        assert_eq!((d.status.phase, d.start_attempt), (Some(RunPhase::Running), Some(2)));
        assert_eq!(d.status.retried_after_attempt, Some(1));
    }

    /// What a person reads about an applied action: the ActionApplied condition and the history.
    #[test]
    fn applied_actions_say_what_was_done_and_by_whom() {
        for (phase, action, want) in [
            (RunPhase::Running, RunAction::Abort, "aborted by bob"),
            (RunPhase::Fixed, RunAction::Approve, "the kept patch was approved by bob"),
            (RunPhase::Fixed, RunAction::Deny, "the fix was denied by bob"),
            (RunPhase::Escalated, RunAction::Retry, "retry 1 requested by bob"),
        ] {
            let r = with_action(&run(Some(phase_status(phase))), action, "bob");
            let last = if phase == RunPhase::Running { AttemptPhase::Running } else { AttemptPhase::Succeeded };
            let d = decide(&obs(&r, vec![att(1, last)]));
            let c = get(&d.status.conditions, RunCondition::ActionApplied).unwrap();
            assert!(c.message.starts_with(want), "{action:?}: {:?}", c.message);
            assert_eq!(d.status.history.last().unwrap().message, c.message, "{action:?}");
        }
    }

    /// Approving a pull-request mode fix whose draft pull request is open marks it ready next.
    #[test]
    fn approving_a_delivered_draft_marks_it_ready_for_review() {
        use crate::controller::deliver;
        let mut st = phase_status(RunPhase::Fixed);
        st.pull_request =
            Some(crate::crd::run::PullRequestStatus { number: 8, state: "open".into(), ..Default::default() });
        let mut r = with_action(&run(Some(st)), RunAction::Approve, "bob");
        r.spec.policy.mode = crate::crd::HealingMode::PullRequest;
        assert!(!deliver::ready_pending(&r, r.status.as_ref().unwrap()), "not before the approval");
        let d = decide(&obs(&r, vec![att(1, AttemptPhase::Succeeded)]));
        let c = get(&d.status.conditions, RunCondition::ActionApplied).unwrap();
        assert!(c.message.contains("draft pull request #8 is marked ready for review"), "{}", c.message);
        assert!(is_true(&d.status.conditions, RunCondition::Approved));
        assert!(deliver::ready_pending(&r, &d.status));
        let mut done = d.status.clone();
        done.pull_request.as_mut().unwrap().ready_for_review = Some(true);
        assert!(!deliver::ready_pending(&r, &done), "once");
        // In propose mode, the approval opens the draft; it is not undrafted.
        r.spec.policy.mode = crate::crd::HealingMode::Propose;
        assert!(!deliver::ready_pending(&r, &d.status));
    }

    #[test]
    fn resolve_stops_a_running_attempt() {
        let r = with_action(&run(Some(phase_status(RunPhase::Running))), RunAction::Resolve, "carol");
        assert!(abort_requested(&r));
        let d = decide(&obs(&r, vec![att(1, AttemptPhase::Running)]));
        assert!(d.stop_attempts);
        assert_eq!(d.status.phase, Some(RunPhase::Resolved));
    }

    #[test]
    fn history_is_bounded() {
        let mut h = Vec::new();
        let p = actions::Pending { action: RunAction::Abort, request: Default::default(), key: "k".into() };
        for i in 0..30 {
            actions::record(&mut h, actions::entry(&p, ActionResult::Refused, i.to_string(), None, t(i)));
        }
        assert_eq!(h.len(), actions::HISTORY_LIMIT);
        assert_eq!(h.first().unwrap().message, "10");
    }

    /// Which Events a status change publishes: each final phase once (with its condition's
    /// message), an attempt start only while Running, a person's request once with its condition's
    /// reason (Warning when refused), and nothing when nothing changed.
    #[test]
    fn transitions_table() {
        use crate::crd::run::ActionRecord;
        use RunPhase::*;
        let st = |phase: RunPhase, attempt: i32, conds: &[(RunCondition, bool, Reason, &str)]| {
            let mut s = HealingRunStatus { phase: Some(phase), current_attempt: Some(attempt), ..Default::default() };
            for (kind, ok, r, m) in conds {
                conditions::set(&mut s.conditions, conditions::new(*kind, *ok, *r, m.to_string(), Some(1), t(0)));
            }
            s
        };
        let with_request = |mut s: HealingRunStatus, key: &str, result: ActionResult, reason: Reason| {
            s.history.push(ActionRecord {
                action: RunAction::Retry,
                actor: "bob".into(),
                source: Default::default(),
                time: t(0),
                result,
                message: format!("request {key}"),
                generation: Some(2),
                request_key: key.into(),
                request_id: None,
            });
            conditions::set(
                &mut s.conditions,
                conditions::new(
                    RunCondition::ActionApplied,
                    result == ActionResult::Applied,
                    reason,
                    "x",
                    Some(2),
                    t(0),
                ),
            );
            s
        };
        let healing = |m| (RunCondition::Healing, true, Reason::AttemptRunning, m);
        let running1 = st(Running, 1, &[healing("attempt 1")]);
        // (name, old status, new status, the Events wanted: warning, reason, message)
        type Case<'a> = (&'a str, HealingRunStatus, HealingRunStatus, Vec<(bool, Reason, &'a str)>);
        let cases: Vec<Case> = vec![
            (
                "fixed",
                running1.clone(),
                st(Fixed, 1, &[(RunCondition::Fixed, true, Reason::Fixed, "m-fixed")]),
                vec![(false, Reason::Fixed, "m-fixed")],
            ),
            (
                "escalated",
                running1.clone(),
                st(Escalated, 1, &[(RunCondition::Escalated, true, Reason::Escalated, "m-esc")]),
                vec![(true, Reason::Escalated, "m-esc")],
            ),
            (
                "aborted",
                running1.clone(),
                st(Aborted, 1, &[(RunCondition::Aborted, true, Reason::Aborted, "m-ab")]),
                vec![(false, Reason::Aborted, "m-ab")],
            ),
            ("phase unchanged", st(Fixed, 1, &[]), st(Fixed, 1, &[]), vec![]),
            (
                "next attempt",
                running1.clone(),
                st(Running, 2, &[healing("attempt 2")]),
                vec![(false, Reason::AttemptStarted, "attempt 2")],
            ),
            ("same attempt", running1.clone(), st(Running, 1, &[healing("attempt 1 again")]), vec![]),
            (
                "attempt count moved but escalated",
                running1.clone(),
                st(Escalated, 2, &[(RunCondition::Escalated, true, Reason::Escalated, "m-esc")]),
                vec![(true, Reason::Escalated, "m-esc")],
            ),
            (
                "applied request",
                running1.clone(),
                with_request(running1.clone(), "k1", ActionResult::Applied, Reason::RetryRequested),
                vec![(false, Reason::RetryRequested, "request k1")],
            ),
            (
                "refused request",
                running1.clone(),
                with_request(running1.clone(), "k1", ActionResult::Refused, Reason::RetryLimitReached),
                vec![(true, Reason::RetryLimitReached, "request k1")],
            ),
            (
                "request already handled",
                with_request(running1.clone(), "k1", ActionResult::Applied, Reason::RetryRequested),
                with_request(running1.clone(), "k1", ActionResult::Applied, Reason::RetryRequested),
                vec![],
            ),
        ];
        for (name, old, new, want) in cases {
            let got: Vec<(bool, Reason, String)> =
                transitions(Some(&old), &new).into_iter().map(|t| (t.warning, t.reason, t.message)).collect();
            let want: Vec<(bool, Reason, String)> = want.into_iter().map(|(w, r, m)| (w, r, m.to_string())).collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
