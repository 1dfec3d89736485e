//! The claim that makes dedup atomic: before a run starts its first attempt it creates a ConfigMap
//! named after its failure (repository, head SHA, error hash). The API server lets exactly one
//! create of a name succeed, so two runs of one failure never both act, even when both were
//! reconciled before either reached the other's cache ([`super::dedup::find_primary`] decides from
//! the reflector's snapshot and orders runs by a creationTimestamp of one-second precision: a run
//! created later in the same second can sort first). Found by the chaos scenario R4 (a redelivery
//! storm made two Jobs for one failure).
//!
//! The claim is owned by the run that holds it (the garbage collector removes it with the run). A
//! claim whose holder is gone, terminal or being deleted is stale: the next run of that failure
//! takes it over with a patch carrying the claim's `resourceVersion` as a precondition,
//! so of two runs taking over at once one gets a 409 and retries.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::state::PrimaryView;
use super::{Context, Error, FIELD_MANAGER, Result};
use crate::crd::{HealingRun, RunPhase};
use crate::resources::labels::{self, Component};

/// The ConfigMap data key that names the run holding the claim.
pub const HOLDER_KEY: &str = "run";

/// Name of the claim of a failure: `healer-claim-<first 20 hex digits of the SHA-256 of the
/// lower-cased repository, the head SHA and the error hash>`. Pure.
pub fn claim_name(repository: &str, head_sha: &str, error_hash: &str) -> String {
    let mut h = Sha256::new();
    for part in [repository.to_ascii_lowercase().as_str(), head_sha, error_hash] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("healer-claim-{}", &hex::encode(h.finalize())[..20])
}

/// The claim ConfigMap of `run` for `error_hash`, held by `run`. `None` when the run has no name,
/// namespace or uid (it did not come from the API server).
pub fn build_claim(run: &HealingRun, error_hash: &str) -> Option<ConfigMap> {
    let owner = run.controller_owner_ref(&())?;
    let src = &run.spec.source;
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(claim_name(&src.repository, &src.head_sha, error_hash)),
            namespace: Some(run.namespace()?),
            labels: Some(labels::for_child(Component::Claim, &run.name_any(), None)),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(HOLDER_KEY.into(), run.name_any())])),
        ..Default::default()
    })
}

/// What [`claim`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// `run` holds the failure's claim (created now, held since an earlier reconcile, or taken over
    /// from a stale holder): it may start its first attempt.
    Ours,
    /// Another active run holds it: `run` duplicates that one.
    Held(PrimaryView),
}

/// Claim `run`'s failure before its first attempt. Errors: the API request failed (a 409 when
/// another run took over a stale claim at the same moment: retried).
pub async fn claim(run: &HealingRun, error_hash: &str, ctx: &Context) -> Result<Claim> {
    let ns = run.namespace().ok_or(Error::MissingNamespace)?;
    let cm = build_claim(run, error_hash).ok_or(Error::MissingNamespace)?;
    let api = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns);
    let pp = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    let existing = match api.create(&pp, &cm).await {
        Ok(_) => return Ok(Claim::Ours),
        Err(kube::Error::Api(s)) if s.code == 409 => api.get(&cm.name_any()).await?,
        Err(e) => return Err(e.into()),
    };
    let holder = existing.data.as_ref().and_then(|d| d.get(HOLDER_KEY)).cloned().unwrap_or_default();
    if holder == run.name_any() {
        return Ok(Claim::Ours);
    }
    let holder_uid = existing.owner_references().first().map(|o| o.uid.clone());
    // The holder from the cache, else (a cache that lags the holder's create) from the API server.
    let held_by = match ctx.runs.get(&ObjectRef::<HealingRun>::new(&holder).within(&ns)) {
        Some(r) => Some(r),
        None => Api::<HealingRun>::namespaced(ctx.client.clone(), &ns).get_opt(&holder).await?.map(std::sync::Arc::new),
    };
    if let Some(h) = held_by.filter(|h| h.metadata.uid == holder_uid && h.metadata.deletion_timestamp.is_none()) {
        let phase = h.status.as_ref().and_then(|s| s.phase);
        if !phase.is_some_and(RunPhase::is_terminal) {
            return Ok(Claim::Held(PrimaryView { name: holder, phase }));
        }
    }
    // Stale: take it over, unless someone changed it since we read it (a JSON merge patch replaces
    // the ownerReferences list whole; its resourceVersion is the precondition).
    let take = serde_json::json!({
        "metadata": {
            "resourceVersion": existing.resource_version(),
            "labels": cm.metadata.labels,
            "ownerReferences": cm.metadata.owner_references,
        },
        "data": cm.data,
    });
    let pp = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    api.patch(&cm.name_any(), &pp, &Patch::Merge(take)).await?;
    tracing::info!(run = %run.name_any(), namespace = %ns, claim = %cm.name_any(), stale_holder = %holder, "took over a stale claim");
    Ok(Claim::Ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_names_are_per_failure_and_valid_object_names() {
        let a = claim_name("Octo/Hello", "3484a3f", "abc");
        assert_eq!(a, claim_name("octo/hello", "3484a3f", "abc"), "repositories compare case-insensitively");
        assert_ne!(a, claim_name("octo/hello", "3484a3f", "abd"));
        assert_ne!(a, claim_name("octo/hello", "3484a3e", "abc"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(claim_name("o/r", "ab", "c"), claim_name("o/r", "a", "bc"));
        assert!(a.len() <= 63 && a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{a}");
    }
}
