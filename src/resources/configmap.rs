//! ConfigMaps the controller owns: a run's context (excerpt and triage result, mounted into attempt
//! pods) and an attempt's patch.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::contract::paths;
use crate::crd::{LABEL_ATTEMPT, LABEL_RUN, MANAGED_BY};

/// Name of a run's context ConfigMap.
pub fn context_name(run: &str) -> String {
    format!("{run}-context")
}

/// Name of an attempt's patch ConfigMap.
pub fn patch_name(attempt: &str) -> String {
    format!("{attempt}-patch")
}

/// The context ConfigMap of a run: `excerpt.txt` (the bounded, masked failure excerpt) and
/// `triage.json` (class, profile, failing step). Owned by the run.
pub fn build_context(run: &str, namespace: &str, owner: OwnerReference, excerpt: &str, triage_json: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(context_name(run)),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([
                ("app.kubernetes.io/managed-by".into(), MANAGED_BY.into()),
                (LABEL_RUN.into(), run.into()),
            ])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (paths::context::EXCERPT.into(), excerpt.into()),
            (paths::context::TRIAGE.into(), triage_json.into()),
        ])),
        ..Default::default()
    }
}

/// The patch ConfigMap of an attempt (`patch.diff`), owned by the attempt.
pub fn build_patch(attempt: &str, run: &str, namespace: &str, owner: OwnerReference, patch: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(patch_name(attempt)),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([
                ("app.kubernetes.io/managed-by".into(), MANAGED_BY.into()),
                (LABEL_RUN.into(), run.into()),
                (LABEL_ATTEMPT.into(), attempt.into()),
            ])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(paths::PATCH_KEY.into(), patch.into())])),
        ..Default::default()
    }
}
