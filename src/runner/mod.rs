//! The host runner: the kubelet of a control plane without nodes. It registers a Node (kept Ready by
//! a Lease heartbeat, [`kubelet::NodeAgent`]), watches the pods the real scheduler binds to it, fills
//! their ConfigMap and Secret volumes from the API into folders, runs their containers in order as
//! local processes ([`local::run_pod`]) and reports pod status as the kubelet does
//! ([`sim::report_running`], [`sim::report_finished`]). Everything else is Kubernetes' own: the Job
//! controller creates the pods and sets the Jobs' conditions from their phases, enforces
//! `activeDeadlineSeconds` (by deleting the pod, which stops it here) and `backoffLimit`; the
//! TTL-after-finished and garbage collectors delete what is finished or orphaned. A pod being deleted
//! has its containers killed and its deletion finished (grace period 0), as the kubelet does. The
//! Node points the API server at the runner's HTTPS log endpoint ([`kubelet`]), so `kubectl logs`
//! and `pods/log` work.

pub mod kubelet;
pub mod local;
pub mod sim;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use local::{LocalOptions, Materials, PodDirs};

use crate::contract::env;

/// What stops the host runner or one of its pods.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or could not be reached (no credentials, RBAC, network).
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A local file or socket operation (the work folder, the log port, a signal handler).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The log server's self-signed certificate could not be made.
    #[error("certificate for the log server: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The log server's TLS configuration was refused.
    #[error("TLS for the log server: {0}")]
    Tls(#[from] rustls::Error),
    /// A volume's ConfigMap or Secret does not exist and is not `optional` (the kubelet's
    /// `FailedMount`).
    #[error("{kind} \"{name}\" not found")]
    VolumeSourceMissing {
        /// `configmap` or `secret`.
        kind: &'static str,
        /// The object's name.
        name: String,
    },
}

/// `healer host-runner` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Run only the pods of this namespace that are bound to the Node (default: all namespaces).
    #[arg(long, env = env::NAMESPACE)]
    pub namespace: Option<String>,
    /// The Node this runner registers; the scheduler binds pods to it.
    #[arg(long, env = env::NODE_NAME, default_value = "healer-host-runner")]
    pub node_name: String,
    /// Address of the kubelet log endpoint (HTTPS). Port 0 picks a free port.
    #[arg(long, env = env::KUBELET_ADDR, default_value = "127.0.0.1:0")]
    pub kubelet_addr: SocketAddr,
    /// Folder for pods' volumes and logs (default: a new temporary folder).
    #[arg(long, env = env::RUNNER_DIR)]
    pub work_dir: Option<PathBuf>,
    /// The `healer` binary that stands in for the healer image (default: this executable).
    #[arg(long, env = env::RUNNER_BINARY)]
    pub healer_binary: Option<PathBuf>,
    /// Pods run at the same time (more wait for a slot).
    #[arg(long, env = env::RUNNER_PARALLEL, default_value_t = 2)]
    pub parallel: usize,
    /// Keep pods' volume folders (workspaces) after they finish; logs are always kept.
    #[arg(long, env = env::RUNNER_KEEP_VOLUMES)]
    pub keep_volumes: bool,
    /// Pods the Node offers the scheduler (its `pods` capacity); cpu and memory are the host's.
    #[arg(long, env = env::RUNNER_MAX_PODS, default_value_t = 16)]
    pub max_pods: i32,
}

/// Run until a termination signal (SIGINT or SIGTERM; the Node is then deleted). Errors: no cluster
/// credentials, the log port is taken.
pub async fn run(args: Args) -> std::result::Result<(), Error> {
    let client = crate::kube_client::client(crate::kube_client::Component::HostRunner).await?;
    let (root, _tmp) = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("healer-host-runner-").tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let healer_binary = match &args.healer_binary {
        Some(b) => b.clone(),
        None => std::env::current_exe()?,
    };
    let index: kubelet::LogIndex = Default::default();
    let addr = kubelet::serve_logs(args.kubelet_addr, index.clone()).await?;
    let agent =
        kubelet::NodeAgent::start(&client, &args.node_name, addr.port(), kubelet::Capacity::of_host(args.max_pods))
            .await?;
    tracing::info!(node = %args.node_name, %addr, "registered Node; serving container logs");

    // The pods the scheduler bound to this Node, as the kubelet watches them.
    let pods: Api<Pod> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let cfg = watcher::Config::default().fields(&format!("spec.nodeName={}", args.node_name));
    // Backed off like the controller's watches (a dead API server is not spun on) and relisted at
    // once on 410 Gone.
    let mut stream = crate::controller::watches::watch(pods, cfg).boxed();
    let live: Arc<Mutex<HashMap<String, Arc<tokio::sync::watch::Sender<bool>>>>> = Default::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(args.parallel.max(1)));
    let runner =
        Runner { client: client.clone(), root: root.clone(), healer_binary, index, keep_volumes: args.keep_volumes };
    tracing::info!(node = %args.node_name, namespace = args.namespace.as_deref().unwrap_or("<all>"), root = %root.display(), "host runner started");
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        let ev = tokio::select! {
            _ = &mut shutdown => break,
            _ = sigterm.recv() => break,
            ev = stream.next() => ev,
        };
        let (pod, deleted) = match ev {
            Some(Ok(watcher::Event::Apply(p))) | Some(Ok(watcher::Event::InitApply(p))) => (p, false),
            Some(Ok(watcher::Event::Delete(p))) => (p, true),
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "pod watch error");
                continue;
            }
            None => break,
        };
        let uid = pod.uid().unwrap_or_default();
        let stopping = deleted || pod.metadata.deletion_timestamp.is_some();
        let running = live.lock().expect("live pods").get(&uid).cloned();
        match (running, stopping) {
            // A running pod is being deleted (the garbage collector, the Job controller's deadline,
            // a person): stop its containers; the pod's task then finishes the deletion.
            (Some(stop), true) => {
                let _ = stop.send(true);
            }
            (Some(_), false) => {}
            (None, true) if !deleted => {
                // Not running here (finished, or never started): nothing to stop, finish the deletion.
                let r = runner.clone();
                tokio::spawn(async move { r.finish_deletion(&pod).await });
            }
            (None, true) => {}
            (None, false) if is_terminal(&pod) => {}
            (None, false) => {
                let (tx, rx) = tokio::sync::watch::channel(false);
                live.lock().expect("live pods").insert(uid.clone(), Arc::new(tx));
                let (r, slots, live) = (runner.clone(), slots.clone(), live.clone());
                tokio::spawn(async move {
                    let _permit = slots.acquire_owned().await;
                    let name = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
                    if let Err(e) = r.run_pod(&pod, rx).await {
                        tracing::error!(pod = %name, error = %format!("{e:#}"), "running the pod failed");
                    }
                    live.lock().expect("live pods").remove(&uid);
                });
            }
        }
    }
    tracing::info!(node = %args.node_name, "host runner stopping; deleting its Node");
    if let Err(e) = agent.deregister().await {
        tracing::warn!(error = %e, "cannot delete the Node");
    }
    Ok(())
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Whether the kubelet already started `pod` (some container has a state): a pod this process did
/// not start but another did, before a restart.
fn started_before(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| {
        s.init_container_statuses
            .iter()
            .chain(s.container_statuses.iter())
            .flatten()
            .any(|c| c.state.as_ref().is_some_and(|st| st.running.is_some() || st.terminated.is_some()))
    })
}

fn first_container(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    spec.and_then(|s| s.init_containers.as_ref())
        .and_then(|c| c.first())
        .or_else(|| spec.and_then(|s| s.containers.first()))
        .map(|c| c.name.clone())
        .unwrap_or_default()
}

/// Runs the pods bound to this host's Node.
#[derive(Clone)]
pub struct Runner {
    /// The runner's client (its own credentials, as the kubelet has its own).
    pub client: Client,
    /// Folder under which each pod gets its folders.
    pub root: PathBuf,
    /// The executable standing in for the healer image's `healer`.
    pub healer_binary: PathBuf,
    /// Where the log endpoint finds each pod's logs.
    pub index: kubelet::LogIndex,
    /// Keep volume folders after a pod ends.
    pub keep_volumes: bool,
}

impl Runner {
    /// Run `pod`'s containers and report its status until it ends or `stop` turns true (the pod is
    /// being deleted: its containers are killed and the deletion finished). Errors: API failures.
    pub async fn run_pod(&self, pod: &Pod, stop: tokio::sync::watch::Receiver<bool>) -> std::result::Result<(), Error> {
        let ns = pod.namespace().unwrap_or_default();
        let pod_name = pod.name_any();
        let dirs = PodDirs::new(&self.root, &ns, &pod_name);
        self.index.write().expect("log index").insert((ns.clone(), pod_name.clone()), dirs.logs.clone());
        if started_before(pod) {
            // A node that restarted loses its containers; with restartPolicy Never the pod fails.
            let outcomes = [sim::StepOutcome::new(
                &first_container(pod),
                137,
                Some("the host runner restarted while the pod ran"),
            )];
            sim::report_finished(&self.client, pod, &outcomes).await?;
            return Ok(());
        }
        tracing::info!(pod = %format!("{ns}/{pod_name}"), root = %dirs.root.display(), "running pod");

        let materials = match self.materials(pod).await {
            Ok(m) => m,
            Err(e) => {
                // The kubelet would leave the pod Pending (CreateContainerConfigError); say why and fail it.
                let msg = format!("cannot mount volumes: {e}");
                tracing::warn!(pod = %pod_name, %msg);
                let f = crate::contract::StepFailure { reason: "VolumeMountFailed".into(), message: msg };
                let outcome = sim::StepOutcome::new(&first_container(pod), 1, Some(&f.to_termination_message()));
                sim::report_finished(&self.client, pod, &[outcome]).await?;
                return Ok(());
            }
        };
        local::materialise(pod, &dirs, &materials)?;
        let running = sim::report_running(&self.client, pod, &[]).await?;
        let opts = LocalOptions {
            healer_binary: self.healer_binary.clone(),
            root: self.root.clone(),
            extra_env: std::env::var(env::LOG_FILTER)
                .map(|v| vec![(env::LOG_FILTER.to_string(), v)])
                .unwrap_or_default(),
            // The pod's own deadline is the kubelet's to keep; a Job's `activeDeadlineSeconds` is the
            // Job controller's (it deletes the pod, which stops it here).
            deadline: pod
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                .map(|s| Duration::from_secs(s.max(1) as u64)),
        };
        let client = self.client.clone();
        let reported = Arc::new(tokio::sync::Mutex::new(running));
        let total = pod
            .spec
            .as_ref()
            .map(|s| s.init_containers.iter().flatten().filter(|c| !local::is_sidecar(c)).count() + s.containers.len())
            .unwrap_or(0);
        let runs = local::run_pod(
            pod,
            &dirs,
            &opts,
            |done| {
                let client = client.clone();
                let reported = reported.clone();
                async move {
                    if done.len() < total && done.iter().all(|o| o.exit_code == 0) {
                        let p = reported.lock().await.clone();
                        match sim::report_running(&client, &p, &done).await {
                            Ok(np) => *reported.lock().await = np,
                            Err(e) => tracing::warn!(error = %e, "pod status report failed"),
                        }
                    }
                }
            },
            || {
                let stop = stop.clone();
                async move { !*stop.borrow() }
            },
        )
        .await;
        let outcomes: Vec<sim::StepOutcome> = runs.iter().map(|r| r.outcome.clone()).collect();
        for r in &runs {
            tracing::info!(pod = %pod_name, container = %r.outcome.name, exit_code = r.outcome.exit_code, seconds = r.elapsed.as_secs_f64(), "container finished");
        }
        let current = reported.lock().await.clone();
        match sim::report_finished(&self.client, &current, &outcomes).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) if !*stop.borrow() => return Err(e.into()),
            Err(e) => tracing::debug!(error = %e, "final status of a deleted pod not written"),
        }
        if *stop.borrow() {
            tracing::info!(pod = %pod_name, "pod deleted while running; containers stopped");
            self.finish_deletion(pod).await;
        }
        self.cleanup(&dirs);
        Ok(())
    }

    /// The kubelet's last word on a pod being deleted: once its containers are stopped, delete it
    /// for good (grace period 0, only this uid). A failure is logged.
    pub async fn finish_deletion(&self, pod: &Pod) {
        let pods = Api::<Pod>::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let dp = kube::api::DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(kube::api::Preconditions { uid: pod.uid(), resource_version: None }),
            ..Default::default()
        };
        match pods.delete(&pod.name_any(), &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(pod = %pod.name_any(), error = %e, "cannot finish the pod's deletion"),
        }
    }

    fn cleanup(&self, dirs: &PodDirs) {
        if !self.keep_volumes {
            let _ = std::fs::remove_dir_all(&dirs.volumes);
        }
    }

    /// The files of the pod's ConfigMap and Secret volumes, read from the API (by the runner's
    /// credentials, as the kubelet reads them by its own). Errors: a required object is missing.
    pub async fn materials(&self, pod: &Pod) -> std::result::Result<Materials, Error> {
        let ns = pod.namespace().unwrap_or_default();
        let mut out = Materials::new();
        for v in pod.spec.as_ref().and_then(|s| s.volumes.clone()).unwrap_or_default() {
            if let Some(cm) = &v.config_map {
                match Api::<ConfigMap>::namespaced(self.client.clone(), &ns).get_opt(&cm.name).await? {
                    Some(c) => {
                        let mut files: BTreeMap<String, Vec<u8>> =
                            c.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
                        files.extend(c.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
                        out.insert(v.name.clone(), files);
                    }
                    None if cm.optional == Some(true) => {}
                    None => return Err(Error::VolumeSourceMissing { kind: "configmap", name: cm.name.clone() }),
                }
            }
            if let Some(s) = &v.secret {
                let name = s.secret_name.clone().unwrap_or_default();
                match Api::<Secret>::namespaced(self.client.clone(), &ns).get_opt(&name).await? {
                    Some(sec) => {
                        let mut files: BTreeMap<String, Vec<u8>> =
                            sec.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
                        files.extend(sec.string_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())));
                        out.insert(v.name.clone(), files);
                    }
                    None if s.optional == Some(true) => {}
                    None => return Err(Error::VolumeSourceMissing { kind: "secret", name }),
                }
            }
        }
        Ok(out)
    }
}
