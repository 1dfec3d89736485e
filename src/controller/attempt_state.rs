//! The HealingAttempt phase machine, as one pure function: the attempt, its run and its Job in,
//! the next status and the one action to take out.
//!
//! ```text
//!   (no Job) ──create Job──► Pending ──pod runs──► Running ──verdict passed──► Succeeded (keep patch)
//!      │                        │                     └────verdict failed, step failed, no verdict──► Failed
//!      └─ a Job of that name is not ours: JobCreated=False (JobNameTaken), retry
//!   any non-final phase ── the run aborted ([`abort_requested`]) ──► Failed (Aborted), Job deleted
//!   the run is gone ──► nothing (the garbage collector removes the attempt)
//! ```

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::state::{Transition, abort_requested};
use crate::contract::{Outcome, Verdict};
use crate::crd::conditions::{self, AttemptCondition, Reason};
use crate::crd::{AttemptPhase, HealingAttempt, HealingAttemptStatus, HealingRun};
use crate::resources::job::{self, JobObservation};

/// The run that owns the attempt, as the reflector holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerView {
    /// No run of that name, or one with another uid (deleted and re-created): the attempt is a
    /// leftover the garbage collector removes.
    Gone,
    /// The owning run; `aborted` by [`abort_requested`].
    Alive {
        /// The run's attempts must stop.
        aborted: bool,
    },
}

impl OwnerView {
    /// The view of `run` (the reflector's entry named by `spec.runName`) as `attempt`'s owner.
    pub fn of(attempt: &HealingAttempt, run: Option<&HealingRun>) -> Self {
        match run {
            Some(r)
                if attempt
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| Some(&o.uid) == r.metadata.uid.as_ref()) =>
            {
                OwnerView::Alive { aborted: abort_requested(r) }
            }
            _ => OwnerView::Gone,
        }
    }
}

/// The attempt's Job, as observed.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// Not read: the attempt is final or its run is gone, so the Job does not matter.
    NotRead,
    /// No Job of the attempt's name.
    Absent,
    /// A Job of the attempt's name that the attempt does not own.
    NotOwned,
    /// The attempt's own Job and pods, read back by [`job::observe`].
    Observed(Box<JobObservation>),
}

/// Everything [`decide`] needs.
#[derive(Debug, Clone)]
pub struct AttemptObservation<'a> {
    /// The attempt.
    pub attempt: &'a HealingAttempt,
    /// Its run.
    pub owner: OwnerView,
    /// Its Job.
    pub job: JobState,
    /// The newest pod of the Job (whose log holds the patch).
    pub newest_pod: Option<String>,
    /// The time to stamp on changed conditions.
    pub now: Time,
}

/// The one side effect a reconcile carries out.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptAction {
    /// Nothing to do.
    None,
    /// Create the attempt's Job ([`job::build_job`]), once.
    CreateJob,
    /// Delete the Job and its pods (the run was aborted).
    StopJob,
    /// Read the patch from the validate step's log of `pod` and keep it in a ConfigMap.
    KeepPatch {
        /// The pod whose validate log holds the patch.
        pod: Option<String>,
        /// The verdict whose `patchSha256` the patch must match.
        verdict: Box<Verdict>,
    },
}

/// What the controller should do.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptDecision {
    /// The status to write (unchanged means: write nothing). A kept patch's ConfigMap is filled in
    /// by the apply step.
    pub status: HealingAttemptStatus,
    /// The side effect.
    pub action: AttemptAction,
    /// When to look again: `None` waits for a change.
    pub requeue: Option<Duration>,
}

/// How long to wait before looking again at an attempt whose Job name is taken.
pub const NAME_TAKEN_RETRY: Duration = Duration::from_secs(60);
/// The periodic resync of an attempt in flight (watches wake it sooner).
pub const RESYNC: Duration = Duration::from_secs(300);

/// Compute the next status and action. Pure: same observation, same decision.
pub fn decide(obs: &AttemptObservation<'_>) -> AttemptDecision {
    let attempt = obs.attempt;
    let old = attempt.status.clone().unwrap_or_default();
    let phase = old.phase.unwrap_or_default();
    let gen_ = attempt.metadata.generation;
    let now = obs.now.clone();
    let keep = |status| AttemptDecision { status, action: AttemptAction::None, requeue: None };

    // The run that owns this attempt is gone (deleted, perhaps re-created under the same name): the
    // garbage collector removes the attempt; start nothing for it meanwhile.
    let aborted = match obs.owner {
        OwnerView::Gone => return keep(old),
        OwnerView::Alive { aborted } => aborted,
    };
    let mut st = old.clone();
    st.observed_generation = gen_;
    st.job_name = Some(job::job_name(attempt));
    let set = |st: &mut HealingAttemptStatus, t: AttemptCondition, ok: bool, reason: &str, msg: String| {
        conditions::set(&mut st.conditions, conditions::new(t, ok, reason, msg, gen_, now.clone()));
    };

    // An aborted run stops its running attempt: delete the Job and its pods.
    if aborted && !phase.is_terminal() {
        st.phase = Some(AttemptPhase::Failed);
        st.failure_reason = Some(Reason::Aborted.as_str().into());
        st.completion_time = Some(now.clone());
        let msg = "the run was aborted; the Job was deleted".to_string();
        set(&mut st, AttemptCondition::Completed, true, Reason::Aborted.as_str(), msg);
        return AttemptDecision { status: st, action: AttemptAction::StopJob, requeue: None };
    }
    if phase.is_terminal() {
        return keep(old);
    }

    let mut action = AttemptAction::None;
    let mut requeue = Some(RESYNC);
    let observed = match &obs.job {
        JobState::Observed(o) => Some(o.as_ref()),
        _ => None,
    };
    match (&obs.job, observed) {
        // Not read although needed: decide nothing now (the caller reads the Job in that case).
        (JobState::NotRead, _) => return keep(old),
        // Create the Job once. Its template is immutable: never edited, never recreated.
        (JobState::Absent, _) => {
            action = AttemptAction::CreateJob;
            st.phase = Some(AttemptPhase::Pending);
            let msg = format!("Job {} carries out the attempt", job::job_name(attempt));
            set(&mut st, AttemptCondition::JobCreated, true, Reason::JobCreated.as_str(), msg);
        }
        (JobState::NotOwned, _) => {
            let msg = "a Job with this attempt's name exists but is not owned by it".to_string();
            set(&mut st, AttemptCondition::JobCreated, false, Reason::JobNameTaken.as_str(), msg);
            requeue = Some(NAME_TAKEN_RETRY);
        }
        (_, Some(JobObservation::Missing | JobObservation::Pending)) => {
            st.phase = Some(AttemptPhase::Pending);
        }
        (_, Some(JobObservation::Running { started })) => {
            st.phase = Some(AttemptPhase::Running);
            // The first start seen stays until the verdict (which takes the pod's own): the Job's
            // startTime, then the pod's a moment later, would otherwise cost a second write.
            st.start_time = st.start_time.or_else(|| started.clone());
        }
        (_, Some(JobObservation::Judged { verdict, diagnosis, started, finished })) => {
            let passed = verdict.outcome == Outcome::Passed;
            if passed && st.patch_config_map.is_none() {
                action = AttemptAction::KeepPatch { pod: obs.newest_pod.clone(), verdict: Box::new(verdict.clone()) };
            }
            st.phase = Some(if passed { AttemptPhase::Succeeded } else { AttemptPhase::Failed });
            st.failure_reason = (!passed).then(|| verdict.reason.clone());
            st.diagnosis = diagnosis.clone();
            st.start_time = started.clone().or(st.start_time);
            st.completion_time = Some(finished.clone().unwrap_or_else(|| now.clone()));
            let msg = format!("{}: {} {}", verdict.outcome, verdict.reason, verdict.summary).trim().to_string();
            set(&mut st, AttemptCondition::Completed, true, &verdict.reason, msg);
            st.verdict = Some(verdict.clone());
        }
        (_, Some(JobObservation::Failed { reason, message, diagnosis, started, finished })) => {
            st.phase = Some(AttemptPhase::Failed);
            st.failure_reason = Some(reason.clone());
            st.diagnosis = diagnosis.clone();
            st.start_time = started.clone().or(st.start_time);
            st.completion_time = Some(finished.clone().unwrap_or_else(|| now.clone()));
            set(&mut st, AttemptCondition::Completed, true, reason, message.clone());
        }
        (JobState::Observed(_), None) => unreachable!("an observed Job has an observation"),
    }
    AttemptDecision { status: st, action, requeue }
}

/// The Event a change of phase deserves (`AttemptRunning`, `AttemptSucceeded`, `AttemptFailed`),
/// computed from the old and new status of attempt number `n`. Pure.
pub fn transition(old: &HealingAttemptStatus, new: &HealingAttemptStatus, n: i32) -> Option<Transition> {
    if new.phase == old.phase {
        return None;
    }
    match new.phase? {
        AttemptPhase::Running => Some(Transition {
            warning: false,
            reason: Reason::AttemptRunning,
            message: format!("attempt {n} is running"),
        }),
        AttemptPhase::Succeeded => Some(Transition {
            warning: false,
            reason: Reason::AttemptSucceeded,
            message: format!(
                "attempt {n} passed validation: {}",
                new.verdict.as_ref().map(|v| v.summary.as_str()).unwrap_or("")
            ),
        }),
        AttemptPhase::Failed => {
            let detail = conditions::get(&new.conditions, AttemptCondition::Completed)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            Some(Transition {
                warning: true,
                reason: Reason::AttemptFailed,
                message: format!(
                    "attempt {n} failed with {}: {detail}",
                    new.failure_reason.as_deref().unwrap_or("Unknown")
                ),
            })
        }
        AttemptPhase::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;
    use crate::crd::{HealingAttemptSpec, RunAction, RunPhase};

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    fn attempt(phase: Option<AttemptPhase>) -> HealingAttempt {
        let mut a = HealingAttempt::new(
            "r-1",
            HealingAttemptSpec {
                run_name: "r".into(),
                attempt: 1,
                profile: "rust".into(),
                healer_image: "healer:1".into(),
                checkout: Default::default(),
                agent: Default::default(),
                validate: Default::default(),
                active_deadline_seconds: 600,
                ttl_seconds_after_finished: 60,
                git_token_secret: None,
                llm_api_key_secret: None,
                context_config_map: None,
                source: None,
                settings: None,
            },
        );
        a.metadata.generation = Some(1);
        a.metadata.uid = Some("attempt-uid".into());
        a.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "cihealer.dev/v1alpha1".into(),
            kind: "HealingRun".into(),
            name: "r".into(),
            uid: "run-uid".into(),
            controller: Some(true),
            block_owner_deletion: None,
        }]);
        a.status = phase.map(|p| HealingAttemptStatus { phase: Some(p), ..Default::default() });
        a
    }

    fn run(uid: &str, action: Option<RunAction>, phase: Option<RunPhase>) -> HealingRun {
        let mut r: HealingRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun",
            "metadata": {"name": "r", "uid": uid},
            "spec": {"source": {"repository": "o/r", "branch": "main", "headSha": "3484a3f"}}
        }))
        .unwrap();
        r.spec.action = action;
        r.status = phase.map(|p| crate::crd::HealingRunStatus { phase: Some(p), ..Default::default() });
        r
    }

    fn verdict(outcome: Outcome, reason: &str) -> Verdict {
        Verdict::new(outcome, reason, "summary")
    }

    fn obs(a: &HealingAttempt, owner: OwnerView, job: JobState) -> AttemptObservation<'_> {
        AttemptObservation { attempt: a, owner, job, newest_pod: Some("r-1-abcde".into()), now: t(100) }
    }

    fn observed(o: JobObservation) -> JobState {
        JobState::Observed(Box::new(o))
    }

    const ALIVE: OwnerView = OwnerView::Alive { aborted: false };
    const ABORTED: OwnerView = OwnerView::Alive { aborted: true };

    /// The Job's startTime, then the pod's a moment later: the first one seen stays while the
    /// attempt runs (one status write for Running, not two); the verdict takes the pod's.
    #[test]
    fn the_start_time_seen_first_stays_while_running() {
        let mut a = attempt(Some(AttemptPhase::Running));
        a.status.as_mut().unwrap().start_time = Some(t(10));
        let running = |started| {
            let o = JobObservation::Running { started: Some(t(started)) };
            decide(&obs(&a, ALIVE, JobState::Observed(Box::new(o)))).status.start_time
        };
        assert_eq!(running(12), Some(t(10)));
        let fresh = attempt(Some(AttemptPhase::Pending));
        let o = JobObservation::Running { started: Some(t(12)) };
        assert_eq!(decide(&obs(&fresh, ALIVE, JobState::Observed(Box::new(o)))).status.start_time, Some(t(12)));
    }

    #[test]
    fn the_owner_is_the_run_with_the_owner_references_uid_and_its_abort_is_the_runs_rule() {
        let a = attempt(None);
        assert_eq!(OwnerView::of(&a, None), OwnerView::Gone);
        assert_eq!(OwnerView::of(&a, Some(&run("other-uid", None, None))), OwnerView::Gone, "re-created run");
        assert_eq!(OwnerView::of(&a, Some(&run("run-uid", None, None))), ALIVE);
        assert_eq!(OwnerView::of(&a, Some(&run("run-uid", Some(RunAction::Abort), None))), ABORTED);
        assert_eq!(OwnerView::of(&a, Some(&run("run-uid", None, Some(RunPhase::Aborted)))), ABORTED);
        assert_eq!(OwnerView::of(&a, Some(&run("run-uid", None, Some(RunPhase::Fixed)))), ALIVE);
    }

    /// Walks the whole table of attempt transitions.
    #[test]
    fn phase_table() {
        use AttemptPhase::*;
        let judged = |v: Verdict| {
            observed(JobObservation::Judged {
                verdict: v,
                diagnosis: Some("d".into()),
                started: Some(t(10)),
                finished: Some(t(20)),
            })
        };
        let failed = observed(JobObservation::Failed {
            reason: "CommitNotFound".into(),
            message: "gone".into(),
            diagnosis: None,
            started: None,
            finished: None,
        });
        struct Case {
            name: &'static str,
            phase: Option<AttemptPhase>,
            owner: OwnerView,
            job: JobState,
            want_phase: Option<AttemptPhase>,
            action: &'static str,
            reason: Option<&'static str>,
            requeue: Option<Duration>,
        }
        let cases = vec![
            Case {
                name: "run gone: nothing",
                phase: Some(Running),
                owner: OwnerView::Gone,
                job: JobState::NotRead,
                want_phase: Some(Running),
                action: "none",
                reason: None,
                requeue: None,
            },
            Case {
                name: "no Job: create it",
                phase: None,
                owner: ALIVE,
                job: JobState::Absent,
                want_phase: Some(Pending),
                action: "create",
                reason: None,
                requeue: Some(RESYNC),
            },
            Case {
                name: "foreign Job: retry later",
                phase: None,
                owner: ALIVE,
                job: JobState::NotOwned,
                want_phase: None,
                action: "none",
                reason: None,
                requeue: Some(NAME_TAKEN_RETRY),
            },
            Case {
                name: "Job without pod",
                phase: Some(Pending),
                owner: ALIVE,
                job: observed(JobObservation::Pending),
                want_phase: Some(Pending),
                action: "none",
                reason: None,
                requeue: Some(RESYNC),
            },
            Case {
                name: "pod running",
                phase: Some(Pending),
                owner: ALIVE,
                job: observed(JobObservation::Running { started: Some(t(5)) }),
                want_phase: Some(Running),
                action: "none",
                reason: None,
                requeue: Some(RESYNC),
            },
            Case {
                name: "passed: keep the patch",
                phase: Some(Running),
                owner: ALIVE,
                job: judged(verdict(Outcome::Passed, "ValidationPassed")),
                want_phase: Some(Succeeded),
                action: "keep",
                reason: None,
                requeue: Some(RESYNC),
            },
            Case {
                name: "refused",
                phase: Some(Running),
                owner: ALIVE,
                job: judged(verdict(Outcome::Refused, "TestWeakened")),
                want_phase: Some(Failed),
                action: "none",
                reason: Some("TestWeakened"),
                requeue: Some(RESYNC),
            },
            Case {
                name: "a step failed",
                phase: Some(Running),
                owner: ALIVE,
                job: failed,
                want_phase: Some(Failed),
                action: "none",
                reason: Some("CommitNotFound"),
                requeue: Some(RESYNC),
            },
            Case {
                name: "abort stops a running attempt",
                phase: Some(Running),
                owner: ABORTED,
                job: JobState::NotRead,
                want_phase: Some(Failed),
                action: "stop",
                reason: Some("Aborted"),
                requeue: None,
            },
            Case {
                name: "abort stops a pending attempt",
                phase: None,
                owner: ABORTED,
                job: JobState::NotRead,
                want_phase: Some(Failed),
                action: "stop",
                reason: Some("Aborted"),
                requeue: None,
            },
            Case {
                name: "abort leaves a final attempt",
                phase: Some(Succeeded),
                owner: ABORTED,
                job: JobState::NotRead,
                want_phase: Some(Succeeded),
                action: "none",
                reason: None,
                requeue: None,
            },
            Case {
                name: "final stays final",
                phase: Some(Failed),
                owner: ALIVE,
                job: JobState::NotRead,
                want_phase: Some(Failed),
                action: "none",
                reason: None,
                requeue: None,
            },
        ];
        for c in cases {
            let a = attempt(c.phase);
            let d = decide(&obs(&a, c.owner, c.job));
            assert_eq!(d.status.phase, c.want_phase, "{}", c.name);
            let action = match &d.action {
                AttemptAction::None => "none",
                AttemptAction::CreateJob => "create",
                AttemptAction::StopJob => "stop",
                AttemptAction::KeepPatch { pod, verdict } => {
                    assert_eq!(pod.as_deref(), Some("r-1-abcde"), "{}", c.name);
                    assert_eq!(verdict.outcome, Outcome::Passed, "{}", c.name);
                    "keep"
                }
            };
            assert_eq!(action, c.action, "{}", c.name);
            assert_eq!(d.status.failure_reason.as_deref(), c.reason, "{}", c.name);
            assert_eq!(d.requeue, c.requeue, "{}", c.name);
        }
    }

    #[test]
    fn conditions_say_what_happened() {
        let a = attempt(None);
        let d = decide(&obs(&a, ALIVE, JobState::Absent));
        let c = conditions::get(&d.status.conditions, AttemptCondition::JobCreated).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "JobCreated"));
        assert_eq!(d.status.job_name.as_deref(), Some("r-1"));
        let d = decide(&obs(&a, ALIVE, JobState::NotOwned));
        let c = conditions::get(&d.status.conditions, AttemptCondition::JobCreated).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "JobNameTaken"));

        let running = attempt(Some(AttemptPhase::Running));
        let v = verdict(Outcome::Failed, "ValidationFailed");
        let judged = JobObservation::Judged {
            verdict: v,
            diagnosis: Some("d".into()),
            started: Some(t(10)),
            finished: Some(t(20)),
        };
        let d = decide(&obs(&running, ALIVE, observed(judged)));
        let c = conditions::get(&d.status.conditions, AttemptCondition::Completed).unwrap();
        assert_eq!((c.reason.as_str(), c.message.as_str()), ("ValidationFailed", "Failed: ValidationFailed summary"));
        assert_eq!((d.status.start_time.clone(), d.status.completion_time.clone()), (Some(t(10)), Some(t(20))));
        assert_eq!(d.status.diagnosis.as_deref(), Some("d"));

        let d = decide(&obs(&running, ABORTED, JobState::NotRead));
        let c = conditions::get(&d.status.conditions, AttemptCondition::Completed).unwrap();
        assert_eq!((c.reason.as_str(), d.status.completion_time.clone()), ("Aborted", Some(t(100))));
    }

    #[test]
    fn a_kept_patch_is_not_fetched_again_and_the_steady_state_is_a_fixed_point() {
        let mut a = attempt(Some(AttemptPhase::Running));
        let judged = || {
            observed(JobObservation::Judged {
                verdict: verdict(Outcome::Passed, "ValidationPassed"),
                diagnosis: None,
                started: Some(t(10)),
                finished: Some(t(20)),
            })
        };
        let mut st = decide(&obs(&a, ALIVE, judged())).status;
        st.phase = Some(AttemptPhase::Running);
        st.patch_config_map = Some("r-1-patch".into());
        a.status = Some(st);
        let d = decide(&obs(&a, ALIVE, judged()));
        assert_eq!(d.action, AttemptAction::None);
        // Running Job seen twice, later: nothing to write the second time.
        let mut b = attempt(Some(AttemptPhase::Pending));
        let running = || observed(JobObservation::Running { started: Some(t(5)) });
        b.status = Some(decide(&obs(&b, ALIVE, running())).status);
        let again = decide(&AttemptObservation { now: t(500), ..obs(&b, ALIVE, running()) });
        assert_eq!(Some(&again.status), b.status.as_ref(), "nothing changed, so nothing to write");
        assert!(transition(b.status.as_ref().unwrap(), &again.status, 1).is_none());
    }

    #[test]
    fn phase_changes_become_events() {
        let st = |p: AttemptPhase| HealingAttemptStatus { phase: Some(p), ..Default::default() };
        let old = st(AttemptPhase::Pending);
        let r = transition(&old, &st(AttemptPhase::Running), 2).unwrap();
        assert_eq!((r.reason, r.warning, r.message.as_str()), (Reason::AttemptRunning, false, "attempt 2 is running"));
        let mut ok = st(AttemptPhase::Succeeded);
        ok.verdict = Some(verdict(Outcome::Passed, "ValidationPassed"));
        let s = transition(&old, &ok, 2).unwrap();
        assert_eq!(
            (s.reason, s.warning, s.message.as_str()),
            (Reason::AttemptSucceeded, false, "attempt 2 passed validation: summary")
        );
        let mut bad = st(AttemptPhase::Failed);
        bad.failure_reason = Some("ValidationFailed".into());
        let f = transition(&old, &bad, 2).unwrap();
        assert_eq!((f.reason, f.warning), (Reason::AttemptFailed, true));
        assert!(f.message.starts_with("attempt 2 failed with ValidationFailed"), "{}", f.message);
        assert!(transition(&old, &old, 2).is_none());
        assert!(transition(&st(AttemptPhase::Running), &old, 2).is_none(), "back to Pending says nothing");
    }
}
