//! The controllers' writes, each in one place: status applied under the field manager, children
//! created once, labels and owned objects applied server-side, Events published with typed reasons.
//!
//! Every write goes through here so the field manager, the `apiVersion`/`kind` of apply patches
//! (taken from the types, never a literal) and the write metrics are the same for all of them.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Context, Error, FIELD_MANAGER, Result};
use crate::crd::conditions::Reason;
use crate::telemetry::ControllerLabels;

/// A namespaced kind the controller reads and writes.
pub trait Namespaced:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Serialize + Debug
{
}

impl<K> Namespaced for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Serialize + Debug
{
}

/// The typed API of `obj`'s namespace. Errors: [`Error::MissingNamespace`].
pub fn api_for<K: Namespaced>(ctx: &Context, obj: &impl Resource) -> Result<Api<K>> {
    let ns = obj.meta().namespace.as_deref().ok_or(Error::MissingNamespace)?;
    Ok(Api::namespaced(ctx.client.clone(), ns))
}

/// Server-side apply `status` to `obj`'s status subresource under [`FIELD_MANAGER`] (forced: the
/// controller owns status), and count the write in `cihealer_status_writes_total`. Callers skip the
/// call when nothing changed. The apply carries `obj`'s `metadata.resourceVersion` as a
/// precondition: a reconcile that decided from a stale cached copy gets a 409 Conflict (and is
/// retried from the fresh object) instead of writing its decision and announcing the transition a
/// second time (found by the chaos scenario R1). `resource_version` is the version the decision was
/// made from (`obj`'s, or the one a write in the same reconcile returned). Errors: the API request
/// failed (409: stale).
pub async fn apply_status<K: Namespaced>(
    ctx: &Context,
    obj: &K,
    resource_version: Option<&str>,
    status: &impl Serialize,
) -> Result<()> {
    let api: Api<K> = api_for(ctx, obj)?;
    let mut patch = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status});
    if let Some(rv) = resource_version {
        patch["metadata"] = json!({"name": obj.name_any(), "resourceVersion": rv});
    }
    api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(patch)).await?;
    ctx.metrics.status_writes.get_or_create(&ControllerLabels { controller: K::kind(&()).to_string() }).inc();
    Ok(())
}

/// Server-side apply `labels` to `obj`'s metadata under [`FIELD_MANAGER`]; returns the object as
/// written. Errors: the API request failed.
pub async fn apply_labels<K: Namespaced>(ctx: &Context, obj: &K, labels: serde_json::Value) -> Result<K> {
    let api: Api<K> = api_for(ctx, obj)?;
    let patch = json!({
        "apiVersion": K::api_version(&()), "kind": K::kind(&()),
        "metadata": {"name": obj.name_any(), "labels": labels}
    });
    Ok(api.patch(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(patch)).await?)
}

/// Server-side apply a whole owned object (a ConfigMap) under [`FIELD_MANAGER`]. Errors: the API
/// request failed.
pub async fn apply_object<K: Namespaced>(ctx: &Context, obj: &K) -> Result<K> {
    let api: Api<K> = api_for(ctx, obj)?;
    Ok(api.patch(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(obj)).await?)
}

/// What [`create_once`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Created<K> {
    /// This call created the object.
    New(K),
    /// An object of that name already existed (created earlier, perhaps by a previous process, or
    /// by someone else: check its owner).
    Existing(K),
}

/// Create `obj` unless an object of its name exists; never update it (an attempt's spec and a Job's
/// template are frozen at creation). Errors: the API request failed.
pub async fn create_once<K: Namespaced>(ctx: &Context, obj: &K) -> Result<Created<K>> {
    let api: Api<K> = api_for(ctx, obj)?;
    match api.create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, obj).await {
        Ok(created) => Ok(Created::New(created)),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Created::Existing(api.get(&obj.name_any()).await?)),
        Err(e) => Err(e.into()),
    }
}

/// An Event to publish about an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// A Warning Event (else Normal).
    pub warning: bool,
    /// Why: the Event's `reason`.
    pub reason: Reason,
    /// What the controller was doing: the Event's `action` (defaults to the reason).
    pub action: Reason,
    /// For people (cut to 1024 characters).
    pub note: String,
    /// The object the Event is also about (`related`), e.g. the attempt of a run's Event.
    pub related: Option<ObjectReference>,
}

impl Notice {
    /// A Normal Event.
    pub fn normal(reason: Reason, note: impl Into<String>) -> Self {
        Self { warning: false, reason, action: reason, note: note.into(), related: None }
    }

    /// A Warning Event.
    pub fn warning(reason: Reason, note: impl Into<String>) -> Self {
        Self { warning: true, ..Self::normal(reason, note) }
    }

    /// The same Event, Warning when `warning`.
    pub fn warning_if(self, warning: bool) -> Self {
        Self { warning, ..self }
    }

    /// The same Event with another action.
    pub fn action(self, action: Reason) -> Self {
        Self { action, ..self }
    }

    /// The same Event, also about `related`.
    pub fn related(self, related: Option<ObjectReference>) -> Self {
        Self { related, ..self }
    }
}

/// Publish `notice` about `obj` through the controller's one Recorder (repeats fold into a series,
/// as client-go's do). A failure is logged, never returned: an Event is a report, not state.
pub async fn publish<K: Resource<DynamicType = ()>>(ctx: &Context, obj: &K, notice: Notice) {
    let ev = Event {
        type_: if notice.warning { EventType::Warning } else { EventType::Normal },
        reason: notice.reason.as_str().into(),
        note: Some(notice.note.chars().take(1024).collect()),
        action: notice.action.as_str().into(),
        // The attempt an Event is about, so each attempt gets its own Event instead of one series.
        secondary: notice.related,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, reason = notice.reason.as_str(), "cannot publish Event");
    }
}

/// An `ObjectReference` to the namespaced object `name` of kind `K` (for an Event's `related`).
pub fn reference<K: Resource<DynamicType = ()>>(namespace: Option<String>, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: Some(name.into()),
        namespace,
        ..Default::default()
    }
}
