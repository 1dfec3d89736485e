//! The kubelet's pod status reports (the one part of a node the local control plane lacks), and the
//! pod a Job's template makes, for the tests that run a pod's steps with no API server.
//!
//! The real kube-controller-manager creates each Job's pods and sets the Job's conditions from the
//! pods' phases; the real scheduler binds them. What is left to stand in for is the kubelet:
//! [`report_running`] and [`report_finished`] write the pod status a kubelet writes. The host runner
//! uses them for the steps it really runs; tests use them to finish a pod with each step's exit code
//! and termination message of their choosing.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// Label the Job controller puts on a Job's pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// The outcome of one container, as the kubelet would report it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// Container name (`prepare`, `checkout`, `agent`, `validate`).
    pub name: String,
    /// The container's exit code (0 = success).
    pub exit_code: i32,
    /// Termination message (at most 4096 bytes are kept, as the kubelet does).
    pub message: Option<String>,
    /// When the container started (`state.terminated.startedAt`).
    pub started_at: Option<Time>,
    /// When it exited (`state.terminated.finishedAt`).
    pub finished_at: Option<Time>,
}

impl StepOutcome {
    /// A step that exited with `exit_code` and left `message`, timed now.
    pub fn new(name: &str, exit_code: i32, message: Option<&str>) -> Self {
        let now = now();
        Self {
            name: name.into(),
            exit_code,
            message: message.map(Into::into),
            started_at: Some(now.clone()),
            finished_at: Some(now),
        }
    }
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// The pod the Job controller would create for `job`: the template's metadata and spec, the Job's
/// labels, an ownerReference to the Job, and `generateName: <job>-`. Pure. Used only where no API
/// server runs (the step tests that run a Job's pod as local processes); on a control plane the real
/// Job controller creates the pod.
pub fn pod_for_job(job: &Job) -> Pod {
    let tmpl = job.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let meta = tmpl.metadata.unwrap_or_default();
    let mut labels: BTreeMap<String, String> = meta.labels.unwrap_or_default();
    let name = job.name_any();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    labels.insert(JOB_NAME_LABEL.into(), name.clone());
    labels.insert("job-name".into(), name.clone());
    labels.insert("batch.kubernetes.io/controller-uid".into(), uid.clone());
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: job.namespace(),
            labels: Some(labels),
            annotations: meta.annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: tmpl.spec,
        status: None,
    }
}

fn status_of(name: &str, image: &str, state: ContainerState, ready: bool) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        image: image.into(),
        image_id: String::new(),
        ready,
        restart_count: 0,
        started: Some(state.running.is_some()),
        state: Some(state),
        ..Default::default()
    }
}

/// (container name, image, native sidecar) triples.
type Images = Vec<(String, String, bool)>;

fn images(pod: &Pod) -> (Images, Images) {
    let spec = pod.spec.clone().unwrap_or_default();
    let f = |cs: Vec<k8s_openapi::api::core::v1::Container>| {
        cs.into_iter()
            .map(|c| {
                let sidecar = super::local::is_sidecar(&c);
                (c.name, c.image.unwrap_or_default(), sidecar)
            })
            .collect()
    };
    (f(spec.init_containers.unwrap_or_default()), f(spec.containers))
}

fn running() -> ContainerState {
    ContainerState { running: Some(ContainerStateRunning { started_at: Some(now()) }), ..Default::default() }
}

fn waiting(reason: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), message: None }),
        ..Default::default()
    }
}

fn terminated(o: &StepOutcome) -> ContainerState {
    let mut msg = o.message.clone();
    if let Some(m) = msg.as_mut() {
        // The kubelet keeps at most 4096 bytes of a termination message.
        let mut cut = m.len().min(4096);
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
    }
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: o.exit_code,
            reason: Some(if o.exit_code == 0 { "Completed" } else { "Error" }.into()),
            message: msg,
            started_at: o.started_at.clone(),
            finished_at: o.finished_at.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_condition(type_: &str, ok: bool) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        last_transition_time: Some(now()),
        ..Default::default()
    }
}

/// Report `pod` as Running with `done` init containers finished and the next one running
/// (or, when all init containers are done, the main containers running). A native sidecar
/// (`restartPolicy: Always`) that every earlier init container has passed is reported running,
/// started and ready, next to the init container that runs after it. The kubelet's part.
pub async fn report_running(client: &Client, pod: &Pod, done: &[StepOutcome]) -> kube::Result<Pod> {
    let (inits, mains) = images(pod);
    let mut init_statuses = Vec::new();
    let mut running_assigned = false;
    for (name, image, sidecar) in &inits {
        let st = match done.iter().find(|o| &o.name == name) {
            Some(o) => status_of(name, image, terminated(o), o.exit_code == 0),
            None if *sidecar && !running_assigned => status_of(name, image, running(), true),
            None if !running_assigned => {
                running_assigned = true;
                status_of(name, image, running(), false)
            }
            None => status_of(name, image, waiting("PodInitializing"), false),
        };
        init_statuses.push(st);
    }
    let main_statuses: Vec<_> = mains
        .iter()
        .map(|(name, image, _)| {
            if running_assigned {
                status_of(name, image, waiting("PodInitializing"), false)
            } else {
                status_of(name, image, running(), true)
            }
        })
        .collect();
    let status = PodStatus {
        phase: Some(if running_assigned { "Pending" } else { "Running" }.into()),
        start_time: pod.status.as_ref().and_then(|s| s.start_time.clone()).or_else(|| Some(now())),
        host_ip: Some("127.0.0.1".into()),
        pod_ip: Some("127.0.0.1".into()),
        conditions: Some(vec![pod_condition("PodScheduled", true), pod_condition("Initialized", !running_assigned)]),
        init_container_statuses: Some(init_statuses),
        container_statuses: Some(main_statuses),
        ..Default::default()
    };
    write_pod_status(client, pod, status).await
}

/// Report `pod` finished with `outcomes` (one per container that ran, in order). The phase is
/// Succeeded when every container that ran exited 0 and all main containers ran, else Failed; as
/// for the kubelet, a native sidecar's exit (stopped after the main containers) does not count.
pub async fn report_finished(client: &Client, pod: &Pod, outcomes: &[StepOutcome]) -> kube::Result<Pod> {
    let (inits, mains) = images(pod);
    let find = |n: &str| outcomes.iter().find(|o| o.name == n);
    let sidecars: Vec<&str> = inits.iter().filter(|(_, _, s)| *s).map(|(n, _, _)| n.as_str()).collect();
    let init_statuses: Vec<_> = inits
        .iter()
        .map(|(n, i, sidecar)| match find(n) {
            Some(o) => status_of(n, i, terminated(o), o.exit_code == 0 && !sidecar),
            None => status_of(n, i, waiting("PodInitializing"), false),
        })
        .collect();
    let main_statuses: Vec<_> = mains
        .iter()
        .map(|(n, i, _)| match find(n) {
            Some(o) => status_of(n, i, terminated(o), false),
            None => status_of(n, i, waiting("PodInitializing"), false),
        })
        .collect();
    let ok = outcomes.iter().filter(|o| !sidecars.contains(&o.name.as_str())).all(|o| o.exit_code == 0)
        && mains.iter().all(|(n, _, _)| find(n).is_some());
    let status = PodStatus {
        phase: Some(if ok { "Succeeded" } else { "Failed" }.into()),
        start_time: pod.status.as_ref().and_then(|s| s.start_time.clone()).or_else(|| Some(now())),
        host_ip: Some("127.0.0.1".into()),
        pod_ip: Some("127.0.0.1".into()),
        conditions: Some(vec![
            pod_condition("PodScheduled", true),
            pod_condition("Initialized", true),
            pod_condition("Ready", false),
        ]),
        init_container_statuses: Some(init_statuses),
        container_statuses: Some(main_statuses),
        ..Default::default()
    };
    write_pod_status(client, pod, status).await
}

async fn write_pod_status(client: &Client, pod: &Pod, status: PodStatus) -> kube::Result<Pod> {
    let pods = Api::<Pod>::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let patch = json!({"status": status});
    pods.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(patch)).await
}
