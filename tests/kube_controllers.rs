//! What Kubernetes itself does for the operator, on the local control plane with the real
//! kube-controller-manager and kube-scheduler: the Job controller creates each attempt's pod and
//! ends its Job, `activeDeadlineSeconds` and `ttlSecondsAfterFinished` are enforced by Kubernetes,
//! the garbage collector removes a deleted run's children through ownerReferences, and Pod Security
//! admission (`restricted`) refuses a pod that is not locked down while admitting the attempt pods.
//! The test plays only the kubelet ([`support::finish_attempt`] and friends).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use ci_healer::contract::Outcome;
use ci_healer::crd::HealingRun;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use support::{Apis, ControllerProcess};

fn sample_run(ns: &str) -> HealingRun {
    let text =
        std::fs::read_to_string(support::root().join("config/samples/healingrun-from-workflow-job.yaml")).unwrap();
    let mut run: HealingRun = serde_yaml_ng::from_str(&text).unwrap();
    run.metadata.namespace = Some(ns.into());
    run
}

/// A controller config with the given attempt defaults (the four default profiles).
fn config(dir: &tempfile::TempDir, attempt: serde_json::Value) -> PathBuf {
    let p = dir.path().join("config.yaml");
    std::fs::write(&p, serde_yaml_ng::to_string(&serde_json::json!({ "attempt": attempt })).unwrap()).unwrap();
    p
}

async fn setup(prefix: &str, attempt: serde_json::Value) -> (Apis, ControllerProcess, tempfile::TempDir) {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, prefix).await;
    let dir = tempfile::tempdir().unwrap();
    let ctrl = ControllerProcess::start(&ns, Some(&config(&dir, attempt)));
    (Apis::new(&client, &ns), ctrl, dir)
}

fn job_condition(job: &Job, type_: &str) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| (c.reason.clone().unwrap_or_default(), c.message.clone().unwrap_or_default()))
}

#[tokio::test]
async fn the_job_controller_creates_the_pod_and_completes_the_job() {
    let (apis, _ctrl, _dir) = setup("kcm-job", serde_json::json!({})).await;
    let name = apis.runs.create(&PostParams::default(), &sample_run(&apis.ns)).await.unwrap().name_any();
    let job = apis.job(&format!("{name}-1")).await;
    let pod = support::attempt_pod(&apis, &job).await;
    // The Job controller's pod: owned by the Job, tracked by its finalizer, bound by the scheduler.
    let owner = &pod.owner_references()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Job", job.name_any().as_str()));
    assert!(pod.finalizers().iter().any(|f| f == "batch.kubernetes.io/job-tracking"), "{:?}", pod.finalizers());
    assert_eq!(pod.spec.as_ref().unwrap().node_name.as_deref(), Some(support::node_for(&apis.ns).as_str()));
    assert_eq!(pod.labels().get("cihealer.dev/attempt").map(String::as_str), Some(format!("{name}-1").as_str()));

    support::finish_attempt(&apis, &job, &support::verdict(Outcome::Passed, "ValidationPassed", "ok")).await;
    apis.run_phase(&name, "Fixed").await;
    let jobs = apis.jobs.clone();
    let done = support::wait_for("the Job controller to complete the Job", Duration::from_secs(30), || {
        let (jobs, n) = (jobs.clone(), job.name_any());
        async move { jobs.get(&n).await.ok().filter(|j| job_condition(j, "Complete").is_some()) }
    })
    .await;
    assert!(job_condition(&done, "SuccessCriteriaMet").is_some());
    let st = done.status.unwrap();
    assert_eq!((st.succeeded, st.failed.unwrap_or(0)), (Some(1), 0));
}

#[tokio::test]
async fn kubernetes_enforces_the_attempt_deadline() {
    let (apis, ctrl, _dir) = setup("kcm-deadline", serde_json::json!({"activeDeadlineSeconds": 30})).await;
    let mut run = sample_run(&apis.ns);
    run.spec.policy.max_attempts = 1;
    let name = apis.runs.create(&PostParams::default(), &run).await.unwrap().name_any();
    let job = apis.job(&format!("{name}-1")).await;
    assert_eq!(job.spec.as_ref().unwrap().active_deadline_seconds, Some(30));
    // The pod runs and never finishes; the Job controller ends the Job at its deadline (30 s, the
    // schema's minimum) and deletes the pod (the stand-in kubelet finishes the deletion).
    let pod = support::start_attempt_pod(&apis, &job).await;
    let escalated = apis.run_phase(&name, "Escalated").await;
    let attempt = apis.attempts.get(&format!("{name}-1")).await.unwrap().status.unwrap();
    assert_eq!(attempt.failure_reason.as_deref(), Some("DeadlineExceeded"), "{attempt:?}\n{}", ctrl.logs());
    let failed = apis.jobs.get(&job.name_any()).await.unwrap();
    let (reason, _) = job_condition(&failed, "Failed").expect("Job Failed");
    assert_eq!(reason, "DeadlineExceeded");
    support::wait_gone(&apis.pods, &pod.name_any()).await;
    assert_eq!(escalated.status.unwrap().attempts, 1);
}

#[tokio::test]
async fn kubernetes_deletes_a_finished_job_after_its_ttl_and_the_verdict_stays() {
    let (apis, _ctrl, _dir) = setup("kcm-ttl", serde_json::json!({"ttlSecondsAfterFinished": 1})).await;
    let name = apis.runs.create(&PostParams::default(), &sample_run(&apis.ns)).await.unwrap().name_any();
    let job = apis.job(&format!("{name}-1")).await;
    let pod = support::attempt_pod(&apis, &job).await;
    support::finish_attempt(&apis, &job, &support::verdict(Outcome::Passed, "ValidationPassed", "ok")).await;
    apis.run_phase(&name, "Fixed").await;
    // The TTL-after-finished controller deletes the Job; the garbage collector its pod.
    support::wait_gone(&apis.jobs, &job.name_any()).await;
    support::wait_gone(&apis.pods, &pod.name_any()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempt = apis.attempts.get(&format!("{name}-1")).await.unwrap().status.unwrap();
    assert_eq!(attempt.verdict.unwrap().reason, "ValidationPassed");
    let run = apis.runs.get(&name).await.unwrap().status.unwrap();
    assert_eq!((run.attempts, run.phase.map(|p| p.as_str())), (1, Some("Fixed")));
    assert!(apis.job_names().await.is_empty(), "no new Job once the attempt is final");
}

#[tokio::test]
async fn deleting_a_run_removes_its_attempts_jobs_pods_and_configmaps() {
    let (apis, _ctrl, _dir) = setup("kcm-gc", serde_json::json!({})).await;
    let name = apis.runs.create(&PostParams::default(), &sample_run(&apis.ns)).await.unwrap().name_any();
    let job = apis.job(&format!("{name}-1")).await;
    let pod = support::start_attempt_pod(&apis, &job).await;
    apis.run_phase(&name, "Running").await;
    let configmaps = Api::<ConfigMap>::namespaced(apis.client.clone(), &apis.ns);
    let context = format!("{name}-context");
    assert!(configmaps.get_opt(&context).await.unwrap().is_some());

    // Only the run is deleted; everything it owns, directly or not, goes with it.
    apis.runs.delete(&name, &DeleteParams::default()).await.unwrap();
    support::wait_gone(&apis.runs, &name).await;
    support::wait_gone(&apis.attempts, &format!("{name}-1")).await;
    support::wait_gone(&apis.jobs, &job.name_any()).await;
    support::wait_gone(&apis.pods, &pod.name_any()).await;
    support::wait_gone(&configmaps, &context).await;
    let left: Vec<String> = configmaps
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=ci-healer"))
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert!(left.is_empty(), "ConfigMaps left behind: {left:?}");
}

#[tokio::test]
async fn pod_security_restricted_refuses_a_pod_that_is_not_locked_down() {
    let client = support::client().await;
    let ns = support::namespace(&client, "kcm-pss").await;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let loose: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "loose"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}
    }))
    .unwrap();
    let err = pods.create(&PostParams::default(), &loose).await.expect_err("refused");
    let kube::Error::Api(status) = err else { panic!("{err}") };
    assert_eq!(status.code, 403);
    for needle in
        ["violates PodSecurity \"restricted:latest\"", "allowPrivilegeEscalation", "runAsNonRoot", "seccompProfile"]
    {
        assert!(status.message.contains(needle), "{needle} in {}", status.message);
    }
}

#[tokio::test]
async fn attempt_pods_are_admitted_under_pod_security_restricted() {
    // Every profile has an LLM key Secret, so the pod has the `llm-proxy` native sidecar too.
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "kcm-pss-attempt").await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ci_healer::config::ControllerConfig::default();
    for p in cfg.profiles.values_mut() {
        p.llm_api_key_secret = Some(ci_healer::crd::SecretKeyRef { name: "llm".into(), key: "key".into() });
    }
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
    let _ctrl = ControllerProcess::start(&ns, Some(&path));
    let apis = Apis::new(&client, &ns);
    // The namespace enforces `restricted`, so the pod below exists only because admission let it in.
    let ns = Api::<k8s_openapi::api::core::v1::Namespace>::all(apis.client.clone()).get(&apis.ns).await.unwrap();
    assert_eq!(ns.labels().get("pod-security.kubernetes.io/enforce").map(String::as_str), Some("restricted"));
    let name = apis.runs.create(&PostParams::default(), &sample_run(&apis.ns)).await.unwrap().name_any();
    let job = apis.job(&format!("{name}-1")).await;
    let pod = support::attempt_pod(&apis, &job).await;
    let spec = pod.spec.unwrap();
    assert_eq!(spec.automount_service_account_token, Some(false));
    let psc = spec.security_context.unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.seccomp_profile.map(|s| s.type_).as_deref(), Some("RuntimeDefault"));
    let inits = spec.init_containers.unwrap_or_default();
    let names: Vec<&str> = inits.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["prepare", "checkout", "llm-proxy", "agent"]);
    assert_eq!(inits[2].restart_policy.as_deref(), Some("Always"), "a native sidecar");
    let containers = inits.into_iter().chain(spec.containers);
    for c in containers {
        let sc = c.security_context.unwrap_or_default();
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}: read-only root filesystem", c.name);
        assert_eq!(sc.capabilities.and_then(|c| c.drop), Some(vec!["ALL".to_string()]), "{}", c.name);
    }
    // The Job controller never had a pod refused.
    let refused: Vec<String> = apis
        .events_about("Job", &job.name_any())
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("FailedCreate"))
        .filter_map(|e| e.message)
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
}
