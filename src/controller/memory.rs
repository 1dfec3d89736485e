//! Memory of past fixes: validated patches kept in the cluster and reused by later runs of the same
//! repository.
//!
//! **Storage.** One ConfigMap per remembered fix, in the run's namespace, named
//! `healer-fix-<20 hex digits of SHA-256(repository, patch)>` (the same patch is remembered once),
//! with the patch under [`paths::PATCH_KEY`], labelled ([`labels::COMPONENT`]` = memory`,
//! [`labels::REPOSITORY_HASH`], [`labels::ERROR_HASH`], [`labels::FAILURE_CLASS`],
//! [`labels::SOURCE_RUN`], [`labels::MEMORY_STATE`]) and annotated with the repository and the
//! fixing attempt's diagnosis. It has **no owner reference**, so it outlives the run and its
//! attempts (whose own patch ConfigMaps are garbage-collected with them). ConfigMaps rather than a
//! CRD: the entries are plain data that `kubectl get cm -l app.kubernetes.io/component=memory`
//! lists, the controller already may write ConfigMaps, and nothing needs a status or a schema
//! beyond what the labels select on.
//!
//! **Retention.** Per repository and namespace, at most [`MemoryConfig::max_entries_per_repository`]
//! validated entries (the oldest are deleted first) and as many denied ones, and no validated entry
//! older than [`MemoryConfig::max_age_days`] ([`to_prune`]). A patch is at most
//! [`super::patch::MAX_PATCH_BYTES`], so an entry fits a ConfigMap.
//!
//! **Reuse** ([`select`]): a validated entry with the run's error hash is re-applied by the first
//! attempt without a model; up to [`MemoryConfig::max_examples`] entries of the same failure class
//! are offered to the model as examples. A run's own entries are never offered back to it.
//!
//! **Deny.** A fix a person denied is never reused: its entry is relabelled
//! [`labels::MEMORY_STATE`]` = denied` (by [`forget`] when the run reaches the `Denied` phase, or by
//! hand: `kubectl label cm NAME cihealer.dev/memory-state=denied --overwrite`), and stays, so the
//! same patch validated again later is not remembered as reusable.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::apply::{self, Created, Notice};
use super::{Context, Error, Result};
use crate::config::MemoryConfig;
use crate::contract::memory::{MemoryContext, PastFix};
use crate::contract::paths;
use crate::crd::conditions::Reason;
use crate::crd::{HealingAttempt, HealingRun, HealingRunStatus};
use crate::resources::labels::{self, Component};

/// [`labels::MEMORY_STATE`] of a reusable entry.
pub const VALIDATED: &str = "validated";
/// [`labels::MEMORY_STATE`] of an entry a person refused.
pub const DENIED: &str = "denied";
/// Annotation: the repository (`owner/name`) an entry belongs to.
pub const REPOSITORY_ANNOTATION: &str = "cihealer.dev/repository";
/// Annotation: the fixing attempt's diagnosis.
pub const SUMMARY_ANNOTATION: &str = "cihealer.dev/summary";
/// Annotation: the attempt whose validation passed.
pub const SOURCE_ATTEMPT_ANNOTATION: &str = "cihealer.dev/source-attempt";
/// Most bytes of a summary kept.
const MAX_SUMMARY_BYTES: usize = 2000;

/// The [`labels::REPOSITORY_HASH`] value of `repository`: 16 hex digits of the SHA-256 of its
/// lower-cased `owner/name` (GitHub names are case-insensitive).
pub fn repository_hash(repository: &str) -> String {
    hex::encode(Sha256::digest(repository.to_ascii_lowercase().as_bytes()))[..16].to_string()
}

/// The name of the entry that remembers `patch` for `repository`.
pub fn entry_name(repository: &str, patch: &str) -> String {
    let mut h = Sha256::new();
    h.update(repository.to_ascii_lowercase().as_bytes());
    h.update([0]);
    h.update(patch.as_bytes());
    format!("healer-fix-{}", &hex::encode(h.finalize())[..20])
}

/// A remembered fix, as read from its ConfigMap.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The ConfigMap's name (`healer-fix-<hash>`).
    pub name: String,
    /// `owner/name` of the repository the fix was made in.
    pub repository: String,
    /// Triage's error hash of the failure it fixed.
    pub error_hash: String,
    /// Triage's failure class (`rust_fmt`, …).
    pub failure_class: String,
    /// The HealingRun that validated it.
    pub source_run: String,
    /// The validated attempt's diagnosis.
    pub summary: String,
    /// The patch, a unified diff.
    pub patch: String,
    /// A person denied it: never reused.
    pub denied: bool,
    /// `metadata.creationTimestamp`.
    pub created: Option<jiff::Timestamp>,
}

impl Entry {
    /// Read an entry; `None` for a ConfigMap that is not one (no patch or no repository).
    pub fn from_config_map(cm: &ConfigMap) -> Option<Self> {
        let l = cm.labels();
        let a = cm.annotations();
        Some(Self {
            name: cm.name_any(),
            repository: a.get(REPOSITORY_ANNOTATION)?.clone(),
            error_hash: l.get(labels::ERROR_HASH).cloned().unwrap_or_default(),
            failure_class: l.get(labels::FAILURE_CLASS).cloned().unwrap_or_default(),
            source_run: l.get(labels::SOURCE_RUN).cloned().unwrap_or_default(),
            summary: a.get(SUMMARY_ANNOTATION).cloned().unwrap_or_default(),
            patch: cm.data.as_ref()?.get(paths::PATCH_KEY)?.clone(),
            denied: l.get(labels::MEMORY_STATE).map(String::as_str) != Some(VALIDATED),
            created: cm.metadata.creation_timestamp.as_ref().map(|t| t.0),
        })
    }

    fn past_fix(&self) -> PastFix {
        PastFix {
            entry: self.name.clone(),
            source_run: self.source_run.clone(),
            failure_class: self.failure_class.clone(),
            error_hash: self.error_hash.clone(),
            summary: self.summary.clone(),
            patch: self.patch.clone(),
        }
    }
}

/// What a run may reuse, from `entries` (any order). Pure. Only validated entries of the same
/// repository that another run made count; newest first. The replay is the newest with the same
/// error hash; the examples are the newest others of the same failure class whose patch is at most
/// `cfg.max_example_bytes`, at most `cfg.max_examples`.
pub fn select(
    entries: &[Entry],
    repository: &str,
    error_hash: &str,
    failure_class: &str,
    run: &str,
    cfg: &MemoryConfig,
) -> MemoryContext {
    if !cfg.enabled {
        return MemoryContext::default();
    }
    let mut usable: Vec<&Entry> = entries
        .iter()
        .filter(|e| !e.denied && e.source_run != run && e.repository.eq_ignore_ascii_case(repository))
        .collect();
    usable.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)));
    let replay = usable.iter().find(|e| !error_hash.is_empty() && e.error_hash == error_hash).map(|e| e.past_fix());
    let examples = usable
        .iter()
        .filter(|e| e.failure_class == failure_class && replay.as_ref().is_none_or(|r| r.entry != e.name))
        .filter(|e| e.patch.len() <= cfg.max_example_bytes)
        .take(cfg.max_examples)
        .map(|e| e.past_fix())
        .collect();
    MemoryContext { replay, examples }
}

/// The entries of one repository to delete at `now`: validated ones older than `max_age_days`,
/// then the oldest beyond `max_entries_per_repository` of the validated and of the denied ones.
/// Pure.
pub fn to_prune(entries: &[Entry], now: jiff::Timestamp, cfg: &MemoryConfig) -> Vec<String> {
    let max_age = jiff::SignedDuration::from_hours(24 * i64::from(cfg.max_age_days));
    let mut out = Vec::new();
    for denied in [false, true] {
        let mut group: Vec<&Entry> = entries.iter().filter(|e| e.denied == denied).collect();
        group.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)));
        for (i, e) in group.iter().enumerate() {
            let too_old = !denied && e.created.is_some_and(|c| now.duration_since(c) > max_age);
            if too_old || i >= cfg.max_entries_per_repository {
                out.push(e.name.clone());
            }
        }
    }
    out
}

/// The ConfigMap that remembers `patch`, the fix `attempt` validated for `run`. Pure. `None` when
/// the run's status has no error hash or failure class.
pub fn build_entry(
    run: &HealingRun,
    status: &HealingRunStatus,
    attempt: &str,
    patch: &str,
    summary: &str,
) -> Option<ConfigMap> {
    let repository = &run.spec.source.repository;
    let error_hash = status.error_hash.clone().filter(|h| !h.is_empty())?;
    let class = status.failure_class?.as_str();
    let mut l = BTreeMap::from([
        (labels::NAME.to_string(), labels::CI_HEALER.to_string()),
        (labels::MANAGED_BY.to_string(), labels::CI_HEALER.to_string()),
        (labels::COMPONENT.to_string(), Component::Memory.as_str().to_string()),
        (labels::REPOSITORY_HASH.to_string(), repository_hash(repository)),
        (labels::ERROR_HASH.to_string(), error_hash),
        (labels::FAILURE_CLASS.to_string(), class.to_string()),
        (labels::MEMORY_STATE.to_string(), VALIDATED.to_string()),
    ]);
    l.insert(labels::SOURCE_RUN.into(), run.name_any());
    let summary = crate::agent::context::bound(summary, MAX_SUMMARY_BYTES);
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(entry_name(repository, patch)),
            namespace: run.namespace(),
            labels: Some(l),
            annotations: Some(BTreeMap::from([
                (REPOSITORY_ANNOTATION.to_string(), repository.clone()),
                (SUMMARY_ANNOTATION.to_string(), summary),
                (SOURCE_ATTEMPT_ANNOTATION.to_string(), attempt.to_string()),
            ])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(paths::PATCH_KEY.to_string(), patch.to_string())])),
        ..Default::default()
    })
}

fn selector(repository: &str) -> String {
    format!("{},{}={}", Component::Memory.selector(), labels::REPOSITORY_HASH, repository_hash(repository))
}

async fn entries(ctx: &Context, ns: &str, repository: &str) -> Result<Vec<Entry>> {
    let api = Api::<ConfigMap>::namespaced(ctx.client.clone(), ns);
    let list = api.list(&ListParams::default().labels(&selector(repository))).await?;
    Ok(list.items.iter().filter_map(Entry::from_config_map).collect())
}

/// What `run` may reuse (see [`select`]). Errors: transient API failures.
pub async fn recall(run: &HealingRun, error_hash: &str, failure_class: &str, ctx: &Context) -> Result<MemoryContext> {
    if !ctx.config.memory.enabled {
        return Ok(MemoryContext::default());
    }
    let ns = run.namespace().ok_or(Error::MissingNamespace)?;
    let repository = &run.spec.source.repository;
    let all = entries(ctx, &ns, repository).await?;
    Ok(select(&all, repository, error_hash, failure_class, &run.name_any(), &ctx.config.memory))
}

/// Remember the validated fix of a Fixed run (idempotent: an entry of the same patch is left as
/// it is, denied or not), then apply the retention bound. Does nothing when memory is off, the run
/// kept no patch, or the patch ConfigMap is gone. Errors: transient API failures.
pub async fn remember(run: &HealingRun, status: &HealingRunStatus, ctx: &Context) -> Result<()> {
    if !ctx.config.memory.enabled {
        return Ok(());
    }
    let Some(patch_ref) = &status.patch else { return Ok(()) };
    let Some(cm_name) = &patch_ref.config_map else { return Ok(()) };
    let ns = run.namespace().ok_or(Error::MissingNamespace)?;
    let cms = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns);
    let Some(patch) = cms.get_opt(cm_name).await?.and_then(|c| c.data?.remove(paths::PATCH_KEY)) else {
        return Ok(());
    };
    if patch.trim().is_empty() {
        return Ok(());
    }
    let repository = &run.spec.source.repository;
    let name = entry_name(repository, &patch);
    if cms.get_metadata_opt(&name).await?.is_some() {
        return Ok(());
    }
    let summary = Api::<HealingAttempt>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&patch_ref.attempt)
        .await?
        .and_then(|a| a.status)
        .and_then(|s| s.diagnosis.or(s.verdict.map(|v| v.summary)))
        .unwrap_or_default();
    let Some(entry) = build_entry(run, status, &patch_ref.attempt, &patch, &summary) else { return Ok(()) };
    if let Created::New(_) = apply::create_once(ctx, &entry).await? {
        tracing::info!(run = %run.name_any(), namespace = %ns, entry = %name, "remembered the validated fix");
        let note = format!("remembered the validated fix as ConfigMap {name} for later runs of {repository}");
        apply::publish(ctx, run, Notice::normal(Reason::FixRemembered, note)).await;
    }
    prune(ctx, &ns, repository).await
}

async fn prune(ctx: &Context, ns: &str, repository: &str) -> Result<()> {
    let all = entries(ctx, ns, repository).await?;
    let api = Api::<ConfigMap>::namespaced(ctx.client.clone(), ns);
    for name in to_prune(&all, jiff::Timestamp::now(), &ctx.config.memory) {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(namespace = %ns, entry = %name, "forgot a remembered fix (retention)"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A person denied `run`'s fix: mark every entry the run made as denied, so it is never reused.
/// Idempotent. Errors: transient API failures.
pub async fn forget(run: &HealingRun, ctx: &Context) -> Result<()> {
    let ns = run.namespace().ok_or(Error::MissingNamespace)?;
    let api = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns);
    let sel = format!(
        "{},{}={},{}={VALIDATED}",
        Component::Memory.selector(),
        labels::SOURCE_RUN,
        run.name_any(),
        labels::MEMORY_STATE
    );
    for cm in api.list(&ListParams::default().labels(&sel)).await?.items {
        apply::apply_labels(ctx, &cm, json!({ labels::MEMORY_STATE: DENIED })).await?;
        let note = format!("the fix remembered as ConfigMap {} was denied; it will not be reused", cm.name_any());
        tracing::info!(run = %run.name_any(), namespace = %ns, entry = %cm.name_any(), "denied a remembered fix");
        apply::publish(ctx, run, Notice::normal(Reason::RememberedFixDenied, note)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, hash: &str, class: &str, run: &str, age_days: i64) -> Entry {
        Entry {
            name: name.into(),
            repository: "Acme/Demo".into(),
            error_hash: hash.into(),
            failure_class: class.into(),
            source_run: run.into(),
            summary: format!("summary of {name}"),
            patch: format!("diff of {name}\n"),
            denied: false,
            created: Some(now() - jiff::SignedDuration::from_hours(24 * age_days)),
        }
    }

    fn now() -> jiff::Timestamp {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_same_hash_replays_and_the_same_class_gives_examples_newest_first() {
        let cfg = MemoryConfig { max_examples: 2, ..Default::default() };
        let entries = vec![
            e("old-same-hash", "h1", "rust_build", "r1", 9),
            e("new-same-hash", "h1", "rust_build", "r2", 1),
            e("class-a", "h2", "rust_build", "r3", 2),
            e("class-b", "h3", "rust_build", "r4", 3),
            e("class-c", "h4", "rust_build", "r5", 4),
            e("other-class", "h5", "frontend_types", "r6", 1),
            Entry { repository: "acme/other".into(), ..e("other-repo", "h1", "rust_build", "r7", 0) },
        ];
        let m = select(&entries, "acme/demo", "h1", "rust_build", "now", &cfg);
        assert_eq!(m.replay.as_ref().map(|r| r.entry.as_str()), Some("new-same-hash"));
        let ex: Vec<_> = m.examples.iter().map(|x| x.entry.as_str()).collect();
        assert_eq!(ex, ["class-a", "class-b"]);

        // No hash match: examples only (the same-hash entries are plain examples then).
        let m = select(&entries, "acme/demo", "zz", "rust_build", "now", &cfg);
        assert!(m.replay.is_none());
        assert_eq!(m.examples.iter().map(|x| x.entry.as_str()).collect::<Vec<_>>(), ["new-same-hash", "class-a"]);
    }

    #[test]
    fn denied_own_oversized_and_disabled_are_never_offered() {
        let cfg = MemoryConfig { max_example_bytes: 100, ..Default::default() };
        let entries = vec![
            Entry { denied: true, ..e("denied", "h1", "rust_build", "r1", 1) },
            e("own", "h1", "rust_build", "me", 0),
            Entry { patch: "x".repeat(101), ..e("big", "h2", "rust_build", "r2", 1) },
        ];
        let m = select(&entries, "acme/demo", "h1", "rust_build", "me", &cfg);
        assert!(m.is_empty(), "{m:?}");
        // An oversized fix may still be replayed (it is re-applied, not quoted).
        let m = select(&entries, "acme/demo", "h2", "rust_build", "me", &cfg);
        assert_eq!(m.replay.map(|r| r.entry), Some("big".into()));
        let off = MemoryConfig { enabled: false, ..Default::default() };
        assert!(select(&entries, "acme/demo", "h2", "rust_build", "me", &off).is_empty());
    }

    #[test]
    fn retention_drops_the_oldest_beyond_the_bound_and_the_expired() {
        let cfg = MemoryConfig { max_entries_per_repository: 2, max_age_days: 30, ..Default::default() };
        let entries = vec![
            e("a", "h", "c", "r", 1),
            e("b", "h", "c", "r", 2),
            e("c", "h", "c", "r", 3),
            e("expired", "h", "c", "r", 31),
            Entry { denied: true, ..e("denied-old", "h", "c", "r", 40) },
        ];
        let mut p = to_prune(&entries, now(), &cfg);
        p.sort();
        assert_eq!(p, ["c", "expired"]);
        assert!(to_prune(&entries[..2], now(), &cfg).is_empty());
    }

    #[test]
    fn names_and_hashes_are_stable_and_case_insensitive_in_the_repository() {
        assert_eq!(repository_hash("Acme/Demo"), repository_hash("acme/demo"));
        assert_eq!(repository_hash("acme/demo").len(), 16);
        let n = entry_name("acme/demo", "p");
        assert_eq!(n, entry_name("ACME/demo", "p"));
        assert_ne!(n, entry_name("acme/demo", "q"));
        assert!(n.starts_with("healer-fix-") && n.len() == 31, "{n}");
    }
}
