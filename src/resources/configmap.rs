//! ConfigMaps the controller owns: a run's context (excerpt and triage result, mounted into attempt
//! pods) and an attempt's patch.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use super::labels::{self, Component};
use crate::contract::paths;
use crate::crd::{HealingAttempt, HealingRun};

/// Name of a run's context ConfigMap: `<run>-context`.
pub fn context_name(run: &str) -> String {
    format!("{run}-context")
}

/// Name of an attempt's patch ConfigMap: `<attempt>-patch`.
pub fn patch_name(attempt: &str) -> String {
    format!("{attempt}-patch")
}

/// The context ConfigMap of `run`: [`paths::context::EXCERPT`] (the bounded, masked failure excerpt)
/// and [`paths::context::TRIAGE`] (triage's answer as JSON). Owned by the run. `None` when the run
/// has no name or uid (it did not come from the API server).
pub fn build_context(run: &HealingRun, excerpt: &str, triage_json: &str) -> Option<ConfigMap> {
    let owner = run.controller_owner_ref(&())?;
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(context_name(&run.name_any())),
            namespace: run.namespace(),
            labels: Some(labels::for_child(Component::Context, &run.name_any(), None)),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (paths::context::EXCERPT.into(), excerpt.into()),
            (paths::context::TRIAGE.into(), triage_json.into()),
        ])),
        ..Default::default()
    })
}

/// The patch ConfigMap of `attempt` ([`paths::PATCH_KEY`]: the unified diff), owned by the attempt.
/// `None` when the attempt has no name or uid.
pub fn build_patch(attempt: &HealingAttempt, patch: &str) -> Option<ConfigMap> {
    let owner = attempt.controller_owner_ref(&())?;
    let name = attempt.name_any();
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(patch_name(&name)),
            namespace: attempt.namespace(),
            labels: Some(labels::for_child(
                Component::Patch,
                &attempt.spec.run_name,
                Some((&name, attempt.spec.attempt)),
            )),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(paths::PATCH_KEY.into(), patch.into())])),
        ..Default::default()
    })
}
