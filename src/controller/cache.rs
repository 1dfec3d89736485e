//! Shared watches: one watch per kind, reflected into a store that the reconcilers read instead of
//! the API server, and fanned out to every controller that kind wakes.
//!
//! Before, each controller opened its own watch of a kind (four of HealingRuns), and the reconcilers
//! asked the API server for what they decide on: a LIST of a run's attempts, a GET of an attempt's
//! Job and a LIST of its pods, per reconcile (about 15 reads per lifecycle in the controller
//! benchmark). Here a kind is watched once ([`shared`]); the store is written **before** an event
//! reaches any controller, so a reconcile that an event woke always reads at least that event's
//! state from the store (client-go's shared informers give the same order: indexer first, then the
//! handlers). The objects are trimmed before they are stored: no `managedFields` anywhere, and no
//! `spec` of Jobs and pods, which the controller never reads (their pod templates are most of their
//! bytes).
//!
//! A store is only trusted once its first list is complete ([`Cache::ready`]); until then, after a
//! controller restart, the reconcilers ask the API server as they did before.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodStatus};
use kube::Resource;
use kube::api::ObjectMeta;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::watcher;

/// A reflector store of `K` and whether its first list has completed.
#[derive(Clone)]
pub struct Cache<K: 'static + Lookup>
where
    K::DynamicType: Hash + Eq,
{
    store: Store<K>,
    ready: Arc<AtomicBool>,
}

impl<K> Cache<K>
where
    K: 'static + Lookup + Clone,
    K::DynamicType: Hash + Eq + Clone,
{
    /// The store, once the first list has filled it (`None` before: ask the API server).
    pub fn ready(&self) -> Option<&Store<K>> {
        self.ready.load(Ordering::Acquire).then_some(&self.store)
    }

    /// The store, filled or not (for lookups that fall back on a miss anyway).
    pub fn store(&self) -> &Store<K> {
        &self.store
    }
}

/// One watch of `K` (`stream`, from [`super::watches::watch`]), trimmed by `trim`, reflected into a
/// [`Cache`] and fanned out to `subscribers` trigger streams (for `Controller::for_stream`,
/// `owns_stream` and `watches_stream`).
///
/// Returns the cache, the trigger streams, and the driver: the future that polls the watch, which
/// the caller must run (spawn it) for anything to happen. Every event is applied to the store
/// before it is sent to a trigger. A watch error (already backed off by the stream) is logged, not
/// passed on: the controllers' own trigger backoff adds no wait ([`super::watches::NoExtraWait`]).
/// A trigger whose controller stopped is skipped.
pub fn shared<K, S>(
    stream: S,
    trim: fn(&mut K),
    subscribers: usize,
) -> (Cache<K>, Vec<impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static>, impl Future<Output = ()>)
where
    K: Resource + Lookup + Clone + Debug + Send + Sync + 'static,
    <K as Lookup>::DynamicType: Default + Hash + Eq + Clone,
    S: Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
{
    let (store, mut writer) = reflector::store::<K>();
    let ready = Arc::new(AtomicBool::new(false));
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..subscribers).map(|_| mpsc::unbounded()).unzip();
    let cache = Cache { store, ready: ready.clone() };
    let what = std::any::type_name::<K>();
    let driver = async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(mut event) => {
                    event = event.modify(trim);
                    writer.apply_watcher_event(&event);
                    if matches!(event, watcher::Event::InitDone) {
                        ready.store(true, Ordering::Release);
                    }
                    for tx in &senders {
                        let _ = tx.unbounded_send(event.clone());
                    }
                }
                Err(e) => tracing::warn!(watch = what, error = %e, "watch failed; it is retried with backoff"),
            }
        }
    };
    let triggers = receivers.into_iter().map(|rx| rx.map(Ok)).collect();
    (cache, triggers, driver)
}

/// Drop what no reconciler reads of any object: its `managedFields`.
pub fn trim_meta<K: Resource>(o: &mut K) {
    o.meta_mut().managed_fields = None;
}

/// A Job as the attempt controller reads it ([`crate::resources::job::observe`],
/// [`crate::resources::job::is_owned_by`]): its name, namespace, labels, ownerReferences and
/// creationTimestamp, and of its status the start and completion times and the conditions. The
/// spec (the pod template, most of its bytes) and everything else are dropped.
pub fn trim_job(j: &mut Job) {
    j.metadata = slim_meta(std::mem::take(&mut j.metadata), true);
    j.spec = None;
    j.status = j.status.take().map(|s| JobStatus {
        conditions: s.conditions,
        start_time: s.start_time,
        completion_time: s.completion_time,
        ..Default::default()
    });
}

/// A pod as the attempt controller reads it ([`crate::resources::job::observe`]): its name,
/// namespace, labels and creationTimestamp, and of its status the phase, message, start time and
/// each container's name and state (a terminated step's exit code, time and termination message:
/// the verdict). The spec and the rest of the status (images, IPs, conditions) are dropped.
pub fn trim_pod(p: &mut Pod) {
    p.metadata = slim_meta(std::mem::take(&mut p.metadata), false);
    p.spec = None;
    let steps = |cs: Option<Vec<ContainerStatus>>| {
        cs.map(|cs| {
            cs.into_iter().map(|c| ContainerStatus { name: c.name, state: c.state, ..Default::default() }).collect()
        })
    };
    p.status = p.status.take().map(|s| PodStatus {
        phase: s.phase,
        message: s.message,
        start_time: s.start_time,
        init_container_statuses: steps(s.init_container_statuses),
        container_statuses: steps(s.container_statuses),
        ..Default::default()
    });
}

/// The metadata the caches keep of a Job or pod; the ownerReferences only when `owners`.
fn slim_meta(m: ObjectMeta, owners: bool) -> ObjectMeta {
    ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        creation_timestamp: m.creation_timestamp,
        deletion_timestamp: m.deletion_timestamp,
        labels: m.labels,
        owner_references: if owners { m.owner_references } else { None },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::ResourceExt;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector::ObjectRef;

    fn cm(name: &str, v: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                managed_fields: Some(vec![Default::default()]),
                ..Default::default()
            },
            data: Some([("k".to_string(), v.to_string())].into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn every_subscriber_sees_each_event_after_the_store_holds_it() {
        use watcher::Event::*;
        let (input, rx) = mpsc::unbounded();
        let (cache, triggers, driver) = shared(rx.map(Ok), trim_meta::<ConfigMap>, 2);
        let driver = tokio::spawn(driver);
        let mut triggers: Vec<_> = triggers.into_iter().map(Box::pin).collect();
        let key = ObjectRef::<ConfigMap>::new("a").within("ns");
        let held = || cache.store().get(&key).and_then(|c| c.data.clone()).map(|d| d["k"].clone());
        assert!(cache.ready().is_none(), "not ready before the first list");
        // (event, what the store holds once a trigger has it, ready)
        let steps = [
            (Init, None, false),
            (InitApply(cm("a", "1")), None, false), // a relist is swapped in whole, at InitDone
            (InitDone, Some("1"), true),
            (Apply(cm("a", "2")), Some("2"), true),
            (Delete(cm("a", "2")), None, true),
        ];
        for (event, want, ready) in steps {
            input.unbounded_send(event.clone()).unwrap();
            for t in &mut triggers {
                let got = t.next().await.expect("a trigger event").expect("no error");
                // Trimmed (no managedFields) before the store and the triggers.
                assert_eq!(format!("{got:?}"), format!("{:?}", event.clone().modify(trim_meta)));
            }
            assert_eq!(held().as_deref(), want, "after {event:?}");
            assert_eq!(cache.ready().is_some(), ready, "after {event:?}");
        }
        if let Some(Ok(Apply(c))) = triggers[0].next().now_or_never().flatten() {
            panic!("an event nobody sent: {c:?}");
        }
        drop(input);
        driver.await.unwrap();
    }

    #[test]
    fn trimming_keeps_what_the_reconcilers_read() {
        let mut c = cm("a", "1");
        trim_meta(&mut c);
        assert!(c.metadata.managed_fields.is_none() && c.data.is_some() && c.metadata.name.is_some());
    }

    /// A real Job and pod, as the API server returned them for an attempt, keep exactly what
    /// `job::observe` and `job::is_owned_by` read: the observation is the same before and after.
    #[test]
    fn a_trimmed_job_and_pod_give_the_same_observation_in_a_fraction_of_the_bytes() {
        use crate::resources::job;
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-1-x7k2p", "namespace": "ns", "uid": "u", "creationTimestamp": "2026-12-08T01:00:00Z",
                "labels": {"cihealer.dev/attempt": "r-1", "batch.kubernetes.io/job-name": "r-1"},
                "annotations": {"a": "b"}, "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "r-1", "uid": "j"}],
                "managedFields": [{"manager": "kubelet", "operation": "Update"}]},
            "spec": {"containers": [{"name": "validate", "image": "healer:1", "env": [{"name": "A", "value": "b"}]}]},
            "status": {"phase": "Succeeded", "startTime": "2026-12-08T01:00:01Z", "hostIP": "10.0.0.1", "podIP": "10.1.0.9",
                "conditions": [{"type": "Ready", "status": "False"}], "qosClass": "Burstable",
                "initContainerStatuses": [{"name": "agent", "image": "healer:1", "imageID": "sha256:1", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "message": "{\"diagnosis\":\"reformatted\"}", "finishedAt": "2026-12-08T01:00:05Z"}}}],
                "containerStatuses": [{"name": "validate", "image": "healer:1", "imageID": "sha256:1", "containerID": "host://1",
                    "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": "2026-12-08T01:00:09Z",
                        "message": "{\"outcome\":\"passed\",\"reason\":\"ValidationPassed\",\"summary\":\"ok\"}"}}}]}
        }))
        .unwrap();
        let job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-1", "namespace": "ns", "labels": {"app.kubernetes.io/managed-by": "ci-healer"},
                "ownerReferences": [{"apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingAttempt", "name": "r-1", "uid": "a", "controller": true}],
                "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}]},
            "spec": {"template": {"spec": {"containers": [{"name": "validate", "image": "healer:1"}]}}},
            "status": {"startTime": "2026-12-08T01:00:00Z", "completionTime": "2026-12-08T01:00:10Z", "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": "2026-12-08T01:00:10Z"}]}
        }))
        .unwrap();
        let before = format!("{:?}", job::observe(Some(&job), std::slice::from_ref(&pod)));
        let (mut j, mut p) = (job.clone(), pod.clone());
        trim_job(&mut j);
        trim_pod(&mut p);
        assert_eq!(format!("{:?}", job::observe(Some(&j), std::slice::from_ref(&p))), before);
        assert!(before.contains("Judged") && before.contains("reformatted"), "{before}");
        assert_eq!(j.owner_references(), job.owner_references());
        assert_eq!(p.labels().get("cihealer.dev/attempt").map(String::as_str), Some("r-1"));
        assert!(j.spec.is_none() && p.spec.is_none() && p.metadata.managed_fields.is_none());
        let json = |v: &Pod| serde_json::to_string(v).unwrap();
        for gone in ["hostIP", "podIP", "qosClass", "Ready", "sha256:1", "host://1", "annotations", "env"] {
            assert!(json(&pod).contains(gone) && !json(&p).contains(gone), "{gone} dropped: {}", json(&p));
        }
        let j = serde_json::to_string(&j).unwrap();
        assert!(!j.contains("template") && !j.contains("succeeded") && !j.contains("managedFields"), "{j}");
    }
}
