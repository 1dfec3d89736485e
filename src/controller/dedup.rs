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
