//! Dedup: which older active run a new run duplicates. Pure, over the reflector's snapshot.

use std::sync::Arc;

use kube::ResourceExt;

use super::run::triage_run;
use super::state::PrimaryView;
use crate::config::ControllerConfig;
use crate::crd::conditions::{self, RunCondition};
use crate::crd::{HealingRun, RunPhase};

/// The run `run` duplicates: the oldest other active run in the same namespace with the same
/// repository, head SHA and error hash. Once a run is marked a duplicate it keeps its primary.
/// Pure over the reflector's snapshot; every replica and every restart computes the same answer
/// because the order (creationTimestamp, name) is fixed and the hash is a function of the spec.
pub fn find_primary(
    run: &HealingRun,
    error_hash: &str,
    runs: &[Arc<HealingRun>],
    config: &ControllerConfig,
) -> Option<PrimaryView> {
    let ns = run.namespace();
    if let Some(p) = run.status.as_ref().and_then(|s| s.duplicate_of.clone()) {
        if let Some(other) = runs.iter().find(|o| o.namespace() == ns && o.name_any() == p) {
            return Some(PrimaryView { name: p, phase: other.status.as_ref().and_then(|s| s.phase) });
        }
        return None;
    }
    let key = |r: &HealingRun| (r.metadata.creation_timestamp.clone().map(|t| t.0), r.name_any());
    let src = &run.spec.source;
    runs.iter()
        .filter(|o| o.namespace() == ns && o.name_any() != run.name_any())
        .filter(|o| {
            o.spec.source.repository.eq_ignore_ascii_case(&src.repository) && o.spec.source.head_sha == src.head_sha
        })
        .filter(|o| key(o) < key(run))
        .filter(|o| o.metadata.deletion_timestamp.is_none())
        .filter(|o| {
            let st = o.status.as_ref();
            !st.and_then(|s| s.phase).is_some_and(RunPhase::is_terminal)
                && st.and_then(|s| s.duplicate_of.as_ref()).is_none()
                && !st.is_some_and(|s| conditions::is_false(&s.conditions, RunCondition::Accepted))
        })
        .filter(|o| {
            let h = o.status.as_ref().and_then(|s| s.error_hash.clone());
            let h = h.or_else(|| triage_run(o, config).ok().map(|(v, _)| v.error_hash));
            h.as_deref() == Some(error_hash)
        })
        .min_by_key(|o| key(o))
        .map(|o| PrimaryView { name: o.name_any(), phase: o.status.as_ref().and_then(|s| s.phase) })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    use super::*;
    use crate::crd::{FailureExcerpt, FailureSource, HealingPolicy, HealingRunSpec, HealingRunStatus};

    const SHA: &str = "3484a3fb816e0859fd6e1cea078d76385ff50625";
    const EXCERPT: &str = "Run yarn run format-check\n[warn] src/greet.ts\n[warn] Code style issues found in the above file. Run Prettier with --write to fix.\n";

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    /// A run named `name` in namespace `ns`, created at second `created`, failing on `sha`.
    fn run(name: &str, ns: &str, created: i64, sha: &str) -> HealingRun {
        let mut r = HealingRun::new(
            name,
            HealingRunSpec {
                source: FailureSource {
                    repository: "Codertocat/Hello-World".into(),
                    branch: "main".into(),
                    head_sha: sha.into(),
                    job_name: Some("linters".into()),
                    failed_steps: vec!["Run yarn run format-check".into()],
                    ..Default::default()
                },
                failure: Some(FailureExcerpt { excerpt: EXCERPT.into(), error_type: None }),
                policy: HealingPolicy::default(),
                action: None,
                action_request: None,
            },
        );
        r.metadata.namespace = Some(ns.into());
        r.metadata.creation_timestamp = Some(t(created));
        r
    }

    fn hash(r: &HealingRun) -> String {
        triage_run(r, &ControllerConfig::default()).unwrap().0.error_hash
    }

    fn with_status(mut r: HealingRun, f: impl FnOnce(&mut HealingRunStatus)) -> HealingRun {
        let mut st =
            HealingRunStatus { error_hash: Some(hash(&r)), phase: Some(RunPhase::Running), ..Default::default() };
        f(&mut st);
        r.status = Some(st);
        r
    }

    fn primary_of(r: &HealingRun, others: Vec<HealingRun>) -> Option<PrimaryView> {
        let snapshot: Vec<Arc<HealingRun>> = others.into_iter().chain([r.clone()]).map(Arc::new).collect();
        find_primary(r, &hash(r), &snapshot, &ControllerConfig::default())
    }

    /// Every reason a run is or is not the primary of a newer one, including the ones a broken
    /// lookup would get wrong (another commit, repository or namespace).
    #[test]
    fn find_primary_table() {
        let new = run("new", "ns", 200, SHA);
        let old = || with_status(run("old", "ns", 100, SHA), |_| {});
        let other_repo = {
            let mut r = old();
            r.spec.source.repository = "Codertocat/Other".into();
            r
        };
        let same_repo_other_case = {
            let mut r = old();
            r.spec.source.repository = "codertocat/hello-world".into();
            r
        };
        let deleted = {
            let mut r = old();
            r.metadata.deletion_timestamp = Some(t(150));
            r
        };
        let other_failure = {
            let mut r = old();
            r.spec.failure = Some(FailureExcerpt {
                excerpt: "error[E0308]: mismatched types\n --> src/lib.rs:3:5\n".into(),
                error_type: None,
            });
            r.spec.source.failed_steps = vec!["Run cargo build".into()];
            r.status.as_mut().unwrap().error_hash = None;
            r
        };
        let no_status_hash = {
            let mut r = old();
            r.status = None;
            r
        };
        let rejected = with_status(run("old", "ns", 100, SHA), |s| {
            s.conditions.push(Condition {
                type_: "Accepted".into(),
                status: "False".into(),
                reason: "UnknownProfile".into(),
                message: "x".into(),
                observed_generation: None,
                last_transition_time: t(100),
            })
        });
        let cases: Vec<(&str, Vec<HealingRun>, Option<&str>)> = vec![
            ("an older active run with the same failure", vec![old()], Some("old")),
            ("the same repository in another case", vec![same_repo_other_case], Some("old")),
            ("its hash is computed when its status has none yet", vec![no_status_hash], Some("old")),
            ("another commit", vec![with_status(run("old", "ns", 100, "0123456"), |_| {})], None),
            ("another repository", vec![other_repo], None),
            ("another namespace", vec![with_status(run("old", "other-ns", 100, SHA), |_| {})], None),
            ("another failure on the same commit", vec![other_failure], None),
            (
                "a finished run",
                vec![with_status(run("old", "ns", 100, SHA), |s| s.phase = Some(RunPhase::Fixed))],
                None,
            ),
            (
                "an escalated run",
                vec![with_status(run("old", "ns", 100, SHA), |s| s.phase = Some(RunPhase::Escalated))],
                None,
            ),
            ("a deleted run", vec![deleted], None),
            (
                "a run that is itself a duplicate",
                vec![with_status(run("old", "ns", 100, SHA), |s| s.duplicate_of = Some("older".into()))],
                None,
            ),
            ("a run whose spec was not accepted", vec![rejected], None),
            ("a newer run", vec![with_status(run("newer", "ns", 300, SHA), |_| {})], None),
            (
                "a hash that differs",
                vec![with_status(run("old", "ns", 100, SHA), |s| s.error_hash = Some("ffffffffffffffff".into()))],
                None,
            ),
            (
                "the oldest of several",
                vec![
                    with_status(run("b-second", "ns", 120, SHA), |_| {}),
                    with_status(run("a-first", "ns", 110, SHA), |_| {}),
                ],
                Some("a-first"),
            ),
            (
                "the same second: the name breaks the tie",
                vec![with_status(run("b", "ns", 100, SHA), |_| {}), with_status(run("a", "ns", 100, SHA), |_| {})],
                Some("a"),
            ),
            ("nothing else", vec![], None),
        ];
        for (name, others, want) in cases {
            let got = primary_of(&new, others);
            assert_eq!(got.as_ref().map(|p| p.name.as_str()), want, "{name}");
        }
    }

    #[test]
    fn a_marked_duplicate_keeps_its_primary_and_follows_its_phase() {
        let new = with_status(run("new", "ns", 200, SHA), |s| s.duplicate_of = Some("old".into()));
        let fixed = with_status(run("old", "ns", 100, SHA), |s| s.phase = Some(RunPhase::Fixed));
        let got = primary_of(&new, vec![fixed]).unwrap();
        assert_eq!((got.name.as_str(), got.phase), ("old", Some(RunPhase::Fixed)), "even once the primary is final");
        assert_eq!(primary_of(&new, vec![with_status(run("old", "other-ns", 100, SHA), |_| {})]), None);
        assert_eq!(primary_of(&new, vec![]), None, "a primary that is gone");
        let a_run_is_not_its_own_primary = run("new", "ns", 200, SHA);
        assert_eq!(primary_of(&a_run_is_not_its_own_primary, vec![]), None);
    }
}
