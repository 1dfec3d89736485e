//! The host runner: stands in for the Job controller, the scheduler and the kubelet on a control
//! plane without nodes, running an attempt Job's steps as local processes.
//!
//! It watches Jobs labelled `app.kubernetes.io/component=attempt`; for each unfinished Job it creates
//! the pod ([`sim::ensure_pod`]), binds it to its own Node ([`sim::bind`]), materialises the pod's
//! ConfigMap and Secret volumes from the API into folders, runs the containers in order
//! ([`local::run_pod`]), and reports pod and Job status as the kubelet and Job controller would
//! ([`sim::report_running`], [`sim::report_finished`], [`sim::report_job_finished`]). Its Node points
//! the API server at its HTTPS log endpoint ([`kubelet`]), so `kubectl logs` and `pods/log` work.

pub mod kubelet;
pub mod local;
pub mod sim;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

use local::{LocalOptions, Materials, PodDirs};

use crate::contract::env;

/// `healer host-runner` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Watch attempt Jobs in this namespace only (default: all namespaces).
    #[arg(long, env = env::NAMESPACE)]
    pub namespace: Option<String>,
    /// The Node this runner registers and binds pods to.
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
    /// Pods run at the same time.
    #[arg(long, env = env::RUNNER_PARALLEL, default_value_t = 2)]
    pub parallel: usize,
    /// Keep pods' volume folders (workspaces) after they finish; logs are always kept.
    #[arg(long, env = env::RUNNER_KEEP_VOLUMES)]
    pub keep_volumes: bool,
    /// Skip the Node and the log endpoint (pods are still bound to `--node-name`).
    #[arg(long, env = env::RUNNER_NO_KUBELET)]
    pub no_kubelet: bool,
}

/// Run until a termination signal. Errors: no cluster credentials, the log port is taken.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::try_default().await?;
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
    if !args.no_kubelet {
        let addr = kubelet::serve_logs(args.kubelet_addr, index.clone()).await?;
        kubelet::register_node(&client, &args.node_name, addr.port()).await?;
        tracing::info!(node = %args.node_name, %addr, "registered Node; serving container logs");
        let (c, n) = (client.clone(), args.node_name.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                if let Err(e) = kubelet::register_node(&c, &n, addr.port()).await {
                    tracing::warn!(error = %e, "node heartbeat failed");
                }
            }
        });
    }
    let jobs: Api<Job> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let seen: Arc<Mutex<HashSet<String>>> = Default::default();
    let slots = Arc::new(tokio::sync::Semaphore::new(args.parallel.max(1)));
    let cfg = watcher::Config::default().labels("app.kubernetes.io/component=attempt");
    let mut stream = watcher::watcher(jobs, cfg).boxed();
    tracing::info!(namespace = args.namespace.as_deref().unwrap_or("<all>"), root = %root.display(), "host runner started");
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        let ev = tokio::select! {
            _ = &mut shutdown => break,
            ev = stream.next() => ev,
        };
        let job = match ev {
            Some(Ok(watcher::Event::Apply(j))) | Some(Ok(watcher::Event::InitApply(j))) => j,
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "job watch error");
                continue;
            }
            None => break,
        };
        if finished(&job) {
            continue;
        }
        let uid = job.uid().unwrap_or_default();
        if !seen.lock().expect("seen").insert(uid) {
            continue;
        }
        let runner = Runner {
            client: client.clone(),
            node: args.node_name.clone(),
            root: root.clone(),
            healer_binary: healer_binary.clone(),
            index: index.clone(),
            keep_volumes: args.keep_volumes,
        };
        let slots = slots.clone();
        tokio::spawn(async move {
            let _permit = slots.acquire_owned().await;
            let name = format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any());
            if let Err(e) = runner.run_job(&job).await {
                tracing::error!(job = %name, error = %format!("{e:#}"), "running the job failed");
            }
        });
    }
    tracing::info!("host runner stopped");
    Ok(())
}

fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"))
}

/// Runs one Job's pod on this host.
#[derive(Clone)]
pub struct Runner {
    pub client: Client,
    pub node: String,
    pub root: PathBuf,
    pub healer_binary: PathBuf,
    pub index: kubelet::LogIndex,
    pub keep_volumes: bool,
}

impl Runner {
    /// Create, bind, run and report the pod of `job`, then the Job's status. Errors: API failures.
    pub async fn run_job(&self, job: &Job) -> anyhow::Result<()> {
        let ns = job.namespace().unwrap_or_default();
        let pod = sim::ensure_pod(&self.client, job).await?;
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()).is_some_and(|p| p == "Succeeded" || p == "Failed") {
            return Ok(());
        }
        match sim::bind(&self.client, &pod, &self.node).await {
            Ok(()) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        let pods = Api::<Pod>::namespaced(self.client.clone(), &ns);
        let pod = pods.get(&pod.name_any()).await?;
        let dirs = PodDirs::new(&self.root, &ns, &pod.name_any());
        self.index.write().expect("log index").insert((ns.clone(), pod.name_any()), dirs.logs.clone());
        tracing::info!(pod = %format!("{ns}/{}", pod.name_any()), root = %dirs.root.display(), "running pod");

        let materials = match self.materials(&pod).await {
            Ok(m) => m,
            Err(e) => {
                // The kubelet would leave the pod Pending (CreateContainerConfigError); say why and fail it.
                let msg = format!("cannot mount volumes: {e}");
                tracing::warn!(pod = %pod.name_any(), %msg);
                let first = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.init_containers.as_ref())
                    .and_then(|c| c.first())
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                let f = crate::contract::StepFailure { reason: "VolumeMountFailed".into(), message: msg };
                let outcome = sim::StepOutcome::new(&first, 1, Some(&f.to_termination_message()));
                sim::report_finished(&self.client, &pod, &[outcome]).await?;
                sim::report_job_finished(&self.client, job, false).await?;
                return Ok(());
            }
        };
        local::materialise(&pod, &dirs, &materials)?;
        let running = sim::report_running(&self.client, &pod, &[]).await?;
        let opts = LocalOptions {
            healer_binary: self.healer_binary.clone(),
            root: self.root.clone(),
            extra_env: std::env::var(env::LOG_FILTER)
                .map(|v| vec![(env::LOG_FILTER.to_string(), v)])
                .unwrap_or_default(),
            deadline: job
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                .map(|s| Duration::from_secs(s.max(1) as u64)),
        };
        let client = self.client.clone();
        let pod_name = pod.name_any();
        let reported = Arc::new(tokio::sync::Mutex::new(running));
        let total = pod
            .spec
            .as_ref()
            .map(|s| s.init_containers.as_ref().map_or(0, |v| v.len()) + s.containers.len())
            .unwrap_or(0);
        let runs = local::run_pod(
            &pod,
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
                let pods = pods.clone();
                let name = pod_name.clone();
                async move { !matches!(pods.get_opt(&name).await, Ok(None)) }
            },
        )
        .await;
        let Some(current) = pods.get_opt(&pod_name).await? else {
            tracing::info!(pod = %pod_name, "pod was deleted while running; stopped");
            self.cleanup(&dirs);
            return Ok(());
        };
        let outcomes: Vec<sim::StepOutcome> = runs.iter().map(|r| r.outcome.clone()).collect();
        for r in &runs {
            tracing::info!(pod = %pod_name, container = %r.outcome.name, exit_code = r.outcome.exit_code, seconds = r.elapsed.as_secs_f64(), "container finished");
        }
        let finished = sim::report_finished(&self.client, &current, &outcomes).await?;
        let ok = finished.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded");
        if Api::<Job>::namespaced(self.client.clone(), &ns).get_opt(&job.name_any()).await?.is_some() {
            sim::report_job_finished(&self.client, job, ok).await?;
        }
        self.cleanup(&dirs);
        Ok(())
    }

    fn cleanup(&self, dirs: &PodDirs) {
        if !self.keep_volumes {
            let _ = std::fs::remove_dir_all(&dirs.volumes);
        }
    }

    /// The files of the pod's ConfigMap and Secret volumes, read from the API (by the runner's
    /// credentials, as the kubelet reads them by its own). Errors: a required object is missing.
    pub async fn materials(&self, pod: &Pod) -> anyhow::Result<Materials> {
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
                    None => anyhow::bail!("configmap \"{}\" not found", cm.name),
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
                    None => anyhow::bail!("secret \"{name}\" not found"),
                }
            }
        }
        Ok(out)
    }
}
