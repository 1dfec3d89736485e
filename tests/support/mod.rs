//! Shared test support: the local control plane (kube-apiserver, etcd, the real controller manager
//! and scheduler), one namespace per test, the controller as a real subprocess, a kubelet stand-in
//! that finishes the pods the real Job controller creates with chosen termination messages, and the
//! Argo Events Sensor evaluator built from Argo's own code (`argo_eval`); the attempt tests' real
//! git repositories, Jobs from the real builders and pods run as local processes (`attempt`); the
//! loopback LLM providers (`llm`). The one harness of every integration test.
#![allow(dead_code)]

pub mod argo_eval;
pub mod attempt;
pub mod github;
pub mod llm;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ci_healer::contract::{Diffstat, Outcome, Verdict};
use ci_healer::crd::{HealingAttempt, HealingCommand, HealingRun};
use ci_healer::runner::kubelet::{self, Capacity, NodeAgent};
use ci_healer::runner::sim::{self, StepOutcome};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt, ResourceExt};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kubeconfig of the local control plane: `$KUBECONFIG`, else the one `hack/control-plane.sh`
/// writes. Panics with the command to run when neither exists.
pub fn kubeconfig() -> PathBuf {
    if let Ok(p) = std::env::var("KUBECONFIG") {
        return PathBuf::from(p);
    }
    let out = Command::new("bash")
        .arg(root().join("hack/control-plane.sh"))
        .arg("env")
        .output()
        .expect("run control-plane.sh env");
    let text = String::from_utf8_lossy(&out.stdout);
    let p = text
        .lines()
        .find_map(|l| l.strip_prefix("export KUBECONFIG="))
        .map(PathBuf::from)
        .expect("control-plane.sh env prints KUBECONFIG");
    assert!(p.exists(), "no local control plane: run `make control-plane` (or `hack/control-plane.sh start`) first");
    p
}

/// A client for the local control plane.
pub async fn client() -> Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig()).expect("read kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kubeconfig is usable");
    Client::try_from(cfg).expect("client")
}

/// Apply both CRDs (server-side apply) and wait until they are Established.
pub async fn install_crds(client: &Client) {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in [HealingRun::crd(), HealingAttempt::crd(), HealingCommand::crd()] {
        let name = crd.name_any();
        api.patch(&name, &PatchParams::apply("ci-healer-tests").force(), &Patch::Apply(&crd)).await.expect("apply CRD");
        wait_for(&format!("CRD {name} established"), Duration::from_secs(30), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let c = api.get(&name).await.ok()?;
                c.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
            }
        })
        .await;
    }
}

/// A fresh namespace for one test: `<prefix>-<random>`. Its pods must pass Pod Security `restricted`
/// (enforced by the API server's admission) and are pinned to the namespace's own Node,
/// [`node_for`] (the `PodNodeSelector` admission plugin adds the node selector), so each test's
/// kubelet (the host runner or [`ensure_node`]) gets only its own pods. Returns once the controller
/// manager has made the namespace's `default` ServiceAccount (pods are refused before).
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let suffix: String = format!("{:x}", rand_u64()).chars().take(6).collect();
    let name = format!("{prefix}-{suffix}");
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {
        "name": name,
        "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
        },
        "annotations": {"scheduler.alpha.kubernetes.io/node-selector": format!("kubernetes.io/hostname={}", node_for(&name))},
    }}))
    .unwrap();
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create namespace");
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), &name);
    wait_for(
        &format!("ServiceAccount {name}/default (the controller manager makes it)"),
        Duration::from_secs(30),
        || {
            let sas = sas.clone();
            async move { sas.get_opt("default").await.ok().flatten().map(|_| ()) }
        },
    )
    .await;
    name
}

/// The Node that a test namespace's pods are scheduled to.
pub fn node_for(namespace: &str) -> String {
    format!("{namespace}-node")
}

/// Stand-in kubelets, one per namespace, kept alive (Lease heartbeat) for the rest of the test.
#[allow(clippy::type_complexity)]
static NODES: std::sync::Mutex<Vec<(String, NodeAgent, tokio::task::JoinHandle<()>)>> =
    std::sync::Mutex::new(Vec::new());

/// Register the namespace's Node ([`node_for`]) with room for any number of pods, so the real
/// scheduler binds the pods the real Job controller creates; its Lease is renewed and the deletion of
/// its pods finished (as a kubelet does once a pod's containers stop) until the test ends.
/// Idempotent. For tests that play the kubelet themselves ([`finish_attempt`]).
pub async fn ensure_node(apis: &Apis) {
    let node = node_for(&apis.ns);
    if NODES.lock().unwrap().iter().any(|(n, _, _)| n == &node) {
        return;
    }
    let agent =
        NodeAgent::start(&apis.client, &node, 1, Capacity::unlimited()).await.expect("register the test's Node");
    let deleter = kubelet::finish_deletions(&apis.client, &node);
    NODES.lock().unwrap().push((node, agent, deleter));
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    h.finish()
}

/// Poll `f` every 100 ms until it returns `Some`, or panic after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the object `name` no longer exists (deleted, not merely terminating).
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_for(&format!("{name} to be deleted"), Duration::from_secs(20), || {
        let api = api.clone();
        let name = name.to_string();
        async move { api.get_opt(&name).await.unwrap().is_none().then_some(()) }
    })
    .await
}

/// `healer controller` as a real subprocess, watching one namespace; killed on drop.
pub struct ControllerProcess {
    child: Child,
    pub log: PathBuf,
}

impl ControllerProcess {
    /// Start the controller for `namespace` with an optional config file.
    pub fn start(namespace: &str, config: Option<&Path>) -> Self {
        Self::start_with_kubeconfig(namespace, config, &kubeconfig())
    }

    /// Start the controller with a specific kubeconfig (e.g. one that impersonates a ServiceAccount).
    pub fn start_with_kubeconfig(namespace: &str, config: Option<&Path>, kubeconfig: &Path) -> Self {
        let dir = std::env::temp_dir().join("ci-healer-test-logs");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join(format!("controller-{namespace}-{}.log", rand_u64() % 100000));
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_healer"));
        cmd.arg("controller")
            .arg("--namespace")
            .arg(namespace)
            .arg("--metrics-addr")
            .arg("127.0.0.1:0")
            .env("KUBECONFIG", kubeconfig)
            // A short Lease so a successor takes over quickly after a SIGKILL.
            .env("HEALER_LEASE_DURATION_SECONDS", "3")
            .env("HEALER_CRD_WAIT_SECONDS", "1")
            .env(
                "RUST_LOG",
                std::env::var("CIHEALER_TEST_RUST_LOG").unwrap_or_else(|_| "info,kube=warn,ci_healer=debug".into()),
            )
            .stdout(Stdio::null())
            .stderr(file);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd.spawn().expect("start healer controller");
        Self { child, log }
    }

    /// Kill the process at once (SIGKILL), as a node failure or OOM kill would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The metrics server's address, read from the controller's log line.
    pub async fn metrics_addr(&self) -> String {
        let log = self.log.clone();
        wait_for("the controller's metrics address", Duration::from_secs(20), || {
            let log = log.clone();
            async move {
                let text = std::fs::read_to_string(&log).ok()?;
                let line = text.lines().find(|l| l.contains("serving /metrics"))?;
                let addr = line.split("addr=").nth(1)?.split_whitespace().next()?.to_string();
                Some(addr)
            }
        })
        .await
    }

    /// GET a path from the metrics server with a plain HTTP/1.1 request.
    pub async fn http_get(&self, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.metrics_addr().await;
        let mut s = tokio::net::TcpStream::connect(&addr).await.expect("connect to metrics server");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// The value of one metric series (`name{labels}` exactly as `/metrics` prints it), 0 when the
    /// series has not been created yet.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.http_get("/metrics").await;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Wait until the log contains `needle`.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) {
        let log = self.log.clone();
        wait_for(&format!("controller log line {needle:?}"), timeout, || {
            let log = log.clone();
            async move { std::fs::read_to_string(&log).ok()?.contains(needle).then_some(()) }
        })
        .await
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `healer host-runner` for one namespace, with its own Node: runs the attempt pods the real
/// scheduler binds there as local processes and serves their logs as a kubelet would; stopped on drop.
pub struct HostRunner {
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl HostRunner {
    /// Start it for `ns`, registering the Node [`node_for`] (admin kubeconfig: it plays the kubelet).
    pub fn start(ns: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("host-runner.log");
        let child = Command::new(env!("CARGO_BIN_EXE_healer"))
            .args(["host-runner", "--namespace", ns, "--node-name", &node_for(ns), "--work-dir"])
            .arg(dir.path().join("pods"))
            .env("KUBECONFIG", kubeconfig())
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start host runner");
        Self { child, log, _dir: dir }
    }

    /// Its log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where it keeps its pods (`<namespace>/<pod>/` with `logs/<container>.log`, the volumes and
    /// the termination messages).
    pub fn pods_dir(&self) -> PathBuf {
        self._dir.path().join("pods")
    }
}

impl Drop for HostRunner {
    /// SIGTERM first, so the runner deletes its Node, then SIGKILL if it lingers.
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Typed APIs for a test namespace.
#[derive(Clone)]
pub struct Apis {
    pub client: Client,
    pub ns: String,
    pub runs: Api<HealingRun>,
    pub attempts: Api<HealingAttempt>,
    pub jobs: Api<Job>,
    pub pods: Api<Pod>,
    pub events: Api<Event>,
}

impl Apis {
    pub fn new(client: &Client, ns: &str) -> Self {
        Self {
            client: client.clone(),
            ns: ns.into(),
            runs: Api::namespaced(client.clone(), ns),
            attempts: Api::namespaced(client.clone(), ns),
            jobs: Api::namespaced(client.clone(), ns),
            pods: Api::namespaced(client.clone(), ns),
            events: Api::namespaced(client.clone(), ns),
        }
    }

    /// Wait until the Job `name` exists.
    pub async fn job(&self, name: &str) -> Job {
        let jobs = self.jobs.clone();
        wait_for(&format!("Job {name}"), Duration::from_secs(30), || {
            let jobs = jobs.clone();
            let name = name.to_string();
            async move { jobs.get_opt(&name).await.ok().flatten() }
        })
        .await
    }

    /// Wait until run `name` reaches `phase`.
    pub async fn run_phase(&self, name: &str, phase: &str) -> HealingRun {
        let runs = self.runs.clone();
        wait_for(&format!("HealingRun {name} phase {phase}"), Duration::from_secs(45), || {
            let runs = runs.clone();
            let name = name.to_string();
            let phase = phase.to_string();
            async move {
                let r = runs.get(&name).await.ok()?;
                let p = r.status.as_ref()?.phase?;
                (format!("{p:?}") == phase).then_some(r)
            }
        })
        .await
    }

    /// All Jobs in the namespace, sorted by name.
    pub async fn job_names(&self) -> Vec<String> {
        let mut v: Vec<_> =
            self.jobs.list(&ListParams::default()).await.unwrap().items.iter().map(|j| j.name_any()).collect();
        v.sort();
        v
    }

    /// The core/v1 Events about `kind`/`name`.
    pub async fn events_about(&self, kind: &str, name: &str) -> Vec<Event> {
        let all = self.events.list(&ListParams::default()).await.unwrap().items;
        all.into_iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some(kind) && e.involved_object.name.as_deref() == Some(name)
            })
            .collect()
    }

    /// How many times an Event with `reason` was recorded about `kind`/`name` (the recorder folds
    /// repeats into one Event with a series count, as client-go's does).
    pub async fn event_count(&self, kind: &str, name: &str, reason: &str) -> i32 {
        self.events_about(kind, name)
            .await
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1).max(1))
            .sum()
    }

    /// Reasons of the Events about `kind`/`name`, oldest first.
    pub async fn event_reasons(&self, kind: &str, name: &str) -> Vec<String> {
        let mut evs = self.events_about(kind, name).await;
        evs.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
        evs.into_iter().filter_map(|e| e.reason).collect()
    }
}

/// A verdict as the validate step writes it.
pub fn verdict(outcome: Outcome, reason: &str, summary: &str) -> String {
    Verdict {
        outcome,
        reason: reason.into(),
        summary: summary.into(),
        diffstat: Some(Diffstat { files: 1, insertions: 3, deletions: 2 }),
        tokens: None,
        durations: None,
        patch_sha256: None,
        protected_paths: vec![],
    }
    .to_termination_message()
}

/// The pod the real Job controller created for `job`, once the real scheduler has bound it to the
/// namespace's Node (registered here if needed).
pub async fn attempt_pod(apis: &Apis, job: &Job) -> Pod {
    ensure_node(apis).await;
    let node = node_for(&apis.ns);
    let lp = ListParams::default().labels(&format!("{}={}", sim::JOB_NAME_LABEL, job.name_any()));
    wait_for(&format!("the pod of Job {} bound to {node}", job.name_any()), Duration::from_secs(30), || {
        let (pods, lp, node) = (apis.pods.clone(), lp.clone(), node.clone());
        async move {
            let list = pods.list(&lp).await.ok()?;
            list.items.into_iter().find(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str())
            })
        }
    })
    .await
}

/// Play the kubelet for `job`'s pod: report it finished with `outcomes` (one per container that ran,
/// in order). The real Job controller then sets the Job's conditions.
pub async fn report_pod(apis: &Apis, job: &Job, outcomes: &[StepOutcome]) -> Pod {
    let pod = attempt_pod(apis, job).await;
    sim::report_finished(&apis.client, &pod, outcomes).await.expect("report pod finished")
}

/// Play the kubelet for `job`'s pod: report it running, then finished with all steps exiting 0 and
/// the validate step leaving `validate_message`.
pub async fn finish_attempt(apis: &Apis, job: &Job, validate_message: &str) {
    let pod = start_attempt_pod(apis, job).await;
    let outcomes = vec![
        StepOutcome::new("prepare", 0, None),
        StepOutcome::new("checkout", 0, None),
        StepOutcome::new("agent", 0, Some(r#"{"diagnosis":"reformatted src/lib.rs"}"#)),
        StepOutcome::new("validate", 0, Some(validate_message)),
    ];
    sim::report_finished(&apis.client, &pod, &outcomes).await.expect("report pod finished");
}

/// Play the kubelet for `job`'s pod: report every init step done and validate running.
pub async fn start_attempt_pod(apis: &Apis, job: &Job) -> Pod {
    let pod = attempt_pod(apis, job).await;
    let done = vec![
        StepOutcome::new("prepare", 0, None),
        StepOutcome::new("checkout", 0, None),
        StepOutcome::new("agent", 0, None),
    ];
    sim::report_running(&apis.client, &pod, &done).await.expect("report pod running")
}

/// Run the cached `helm` (`hack/control-plane.sh bin-dir`) in the repository root; returns its
/// stdout and panics with its stderr when it fails.
pub fn helm(args: &[&str]) -> String {
    let dir = Command::new("bash").arg(root().join("hack/control-plane.sh")).arg("bin-dir").output().unwrap();
    let out = Command::new(format!("{}/helm", String::from_utf8_lossy(&dir.stdout).trim()))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run helm");
    assert!(out.status.success(), "helm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Create Secret `name` in `ns` holding `key` = `value` (a credential a test's controller reads).
pub async fn create_secret(client: &Client, ns: &str, name: &str, key: &str, value: impl Into<Vec<u8>>) {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        data: Some([(key.to_string(), ByteString(value.into()))].into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &secret).await.expect("create Secret");
}

/// `helm template ci-healer charts/ci-healer --namespace <namespace> <args…>`: the chart as it
/// renders for a release `ci-healer` in `namespace`, with the given extra flags. Panics when helm fails.
pub fn render_chart(namespace: &str, args: &[&str]) -> String {
    let mut all = vec!["template", "ci-healer", "charts/ci-healer", "--namespace", namespace];
    all.extend_from_slice(args);
    helm(&all)
}

/// Run `kubectl` against the local control plane; returns (success, stdout+stderr).
pub fn kubectl(args: &[&str]) -> (bool, String) {
    let bin = std::env::var("KUBECTL_BIN").map(PathBuf::from).unwrap_or_else(|_| {
        let out = Command::new("bash").arg(root().join("hack/control-plane.sh")).arg("bin-dir").output().unwrap();
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("kubectl")
    });
    let out = Command::new(bin).args(args).env("KUBECONFIG", kubeconfig()).output().expect("run kubectl");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}
