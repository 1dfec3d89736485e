//! The controllers: HealingRun → HealingAttempt → Job, and results back up.
//!
//! Two kube-runtime controllers share one [`Context`]. Each reconcile is a pipeline: observe (read the
//! object and its children), decide (a pure function, [`state::decide`] / [`crate::resources::job::observe`]),
//! build (pure builders), apply (create-if-absent for immutable children, server-side apply under
//! [`FIELD_MANAGER`] otherwise), write status (skipped when unchanged).

pub mod actions;
pub mod apply;
pub mod attempt;
pub mod attempt_state;
pub mod cache;
pub mod claim;
pub mod command;
pub mod dedup;
pub mod deliver;
pub mod error;
pub mod failure;
pub mod healing_labels;
pub mod memory;
pub mod notify;
pub mod patch;
pub mod report;
pub mod run;
pub mod skip;
pub mod state;
pub mod watches;

pub use error::{Error, Result, SpecProblem};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use prometheus_client::registry::Registry;
use tokio::sync::RwLock;

use crate::config::ControllerConfig;
use crate::contract::env;
use crate::crd::{HealingAttempt, HealingCommand, HealingRun};
use crate::resources::attempt::attempt_name;
use crate::resources::labels;
use crate::telemetry::{ControllerLabels, ErrorLabels, Metrics};

/// Server-side apply field manager for everything the controller writes.
pub const FIELD_MANAGER: &str = "ci-healer";

/// Flags of `healer controller`; each has an environment fallback.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Controller configuration file (profiles, routing, attempt defaults). Absent: built-in defaults.
    #[arg(long, env = env::CONFIG)]
    pub config: Option<PathBuf>,
    /// Address of the metrics and health server (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, env = env::METRICS_ADDR, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = env::NAMESPACE)]
    pub namespace: Option<String>,
    /// Seconds between checks while waiting for the CRDs to be installed.
    #[arg(long, env = env::CRD_WAIT_SECONDS, default_value_t = 5)]
    pub crd_wait_seconds: u64,
    /// Elect a leader on a Lease before reconciling, so replicas never act at once.
    #[arg(long, env = env::LEADER_ELECTION, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the leader-election Lease (default: the watched namespace, else `POD_NAMESPACE`, else `default`).
    #[arg(long, env = env::LEASE_NAMESPACE)]
    pub lease_namespace: Option<String>,
    /// Seconds a leader's Lease stays valid without renewal; a successor waits at most this long.
    #[arg(long, env = env::LEASE_DURATION_SECONDS, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Most distinct repositories the metrics' `repository` label takes (then `_other`); 0 drops the
    /// label. Bounds the series of a large fleet.
    #[arg(long, env = env::METRICS_REPOSITORY_LIMIT, default_value_t = crate::telemetry::DEFAULT_REPOSITORY_LIMIT)]
    pub metrics_repository_limit: usize,
}

/// State shared by both controllers.
pub struct Context {
    /// The API client (the controller's ServiceAccount in a cluster).
    pub client: Client,
    /// The controller config (profiles, routing, attempt defaults).
    pub config: ControllerConfig,
    /// The one Event recorder of both controllers.
    pub recorder: Recorder,
    /// The metrics served on `/metrics`.
    pub metrics: Metrics,
    /// Runs seen by the run controller's reflector (for dedup lookups).
    pub runs: kube::runtime::reflector::Store<HealingRun>,
    /// Attempts, for the run reconciler (its attempts without a LIST).
    pub attempts: cache::Cache<HealingAttempt>,
    /// The controller's Jobs, without their specs, for the attempt reconciler.
    pub jobs: cache::Cache<Job>,
    /// Attempt pods, without their specs, for the attempt reconciler.
    pub pods: cache::Cache<Pod>,
    /// The GitHub client, when the config has a `github:` section.
    pub github: Option<Arc<dyn crate::github::GitHub>>,
    /// The Slack client, when the config has a `slack:` section.
    pub slack: Option<Arc<dyn crate::notify::Slack>>,
    /// Consecutive failures per object, for per-object exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The comment author's permission as read for each unfinished HealingCommand
    /// (`<namespace>/<name>`), so a retried reconcile does not ask GitHub again.
    permissions: Mutex<HashMap<String, String>>,
}

impl Context {
    fn backoff(&self, key: String) -> Duration {
        let mut f = self.failures.lock().expect("backoff map");
        let n = f.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        error::backoff_delay(*n)
    }

    /// The permission read for command `key` before, if any.
    fn permission(&self, key: &str) -> Option<String> {
        self.permissions.lock().expect("permission map").get(key).cloned()
    }

    /// Remember (`Some`) or forget (`None`) the permission read for command `key`.
    fn remember_permission(&self, key: &str, permission: Option<String>) {
        let mut m = self.permissions.lock().expect("permission map");
        match permission {
            Some(p) => m.insert(key.to_string(), p),
            None => m.remove(key),
        };
    }

    fn succeeded(&self, key: &str) {
        self.failures.lock().expect("backoff map").remove(key);
    }
}

fn object_key<K: Resource<DynamicType = ()>>(o: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        o.meta().namespace.as_deref().unwrap_or(""),
        o.meta().name.as_deref().unwrap_or("")
    )
}

/// Why the controller could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// No usable cluster credentials, or the API server refused a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The Lease cannot be created or read (RBAC: `coordination.k8s.io/leases`).
    #[error("leader election: {0}")]
    LeaderElection(#[from] kube_lease_manager::LeaseManagerError),
    /// The `github:` config cannot make a client (see [`crate::github::Error`]).
    #[error("GitHub client: {0}")]
    GitHub(#[from] crate::github::Error),
    /// The `slack:` config cannot make a client (see [`crate::notify::Error`]).
    #[error("Slack client: {0}")]
    Slack(#[from] crate::notify::Error),
    /// The leader-election task ended without an error of its own.
    #[error("leader election stopped: {0}")]
    LeaderElectionStopped(String),
    /// Another replica took the Lease: exit so a restart rejoins the election.
    #[error("lost leadership of the Lease; exiting so a restart rejoins the election")]
    LostLeadership,
}

/// Run both controllers until a termination signal.
///
/// Waits for the CRDs instead of crashing; serves `/metrics`, `/healthz` and `/readyz` on
/// `args.metrics_addr`. Errors: [`StartError`] (invalid config, no cluster credentials, the Lease
/// lost).
pub async fn run(args: Args) -> std::result::Result<(), StartError> {
    let config = match &args.config {
        Some(p) => ControllerConfig::load(p)?,
        None => ControllerConfig::default(),
    };
    let client = crate::kube_client::client(crate::kube_client::Component::Controller).await?;
    let mut registry = Registry::default();
    let metrics = Metrics::register_with(&mut registry, args.metrics_repository_limit);
    let github = github_client(&config, &client, args.namespace.as_deref(), &metrics)?;
    let slack = slack_client(&config, &client, args.namespace.as_deref())?;
    let ready = Arc::new(RwLock::new(false));
    let server = tokio::spawn(serve_metrics(args.metrics_addr, Arc::new(registry), ready.clone()));

    wait_for_crds(&client, args.crd_wait_seconds).await;
    let leadership = match args.leader_election {
        true => Some(acquire_leadership(&client, &args).await?),
        false => None,
    };

    // One watch per kind (see `cache`): the stores answer the reconcilers' reads, and every event
    // reaches the controllers it wakes after its store holds it. Each watch backs off alone and
    // relists at once on 410 Gone (see `watches`): kube-runtime's `Controller::new/owns/watches`
    // would put all of a controller's watches behind one backoff.
    let ns = args.namespace.as_deref();
    let (runs, mut run_triggers, run_driver) = cache::shared(
        watches::watch(scoped::<HealingRun>(&client, ns), watcher::Config::default()),
        cache::trim_meta,
        4,
    );
    let (attempts, mut attempt_triggers, attempt_driver) = cache::shared(
        watches::watch(scoped::<HealingAttempt>(&client, ns), watcher::Config::default()),
        cache::trim_meta,
        2,
    );
    // Jobs and pods: only the controller's own (by label), without their specs.
    let (jobs, mut job_triggers, job_driver) = cache::shared(
        watches::watch(scoped::<Job>(&client, ns), watcher::Config::default().labels(labels::MANAGED_SELECTOR)),
        cache::trim_job,
        1,
    );
    let (pods, mut pod_triggers, pod_driver) = cache::shared(
        watches::watch(scoped::<Pod>(&client, ns), watcher::Config::default().labels(labels::ATTEMPT)),
        cache::trim_pod,
        1,
    );
    let drivers =
        [tokio::spawn(run_driver), tokio::spawn(attempt_driver), tokio::spawn(job_driver), tokio::spawn(pod_driver)];
    fn next<T>(triggers: &mut Vec<T>) -> T {
        triggers.pop().expect("one trigger stream per subscriber")
    }

    let run_controller = Controller::for_stream(next(&mut run_triggers).applied_objects(), runs.store().clone());
    let duplicates_of = runs.store().clone();
    let run_controller = run_controller
        .owns_stream(next(&mut attempt_triggers).touched_objects())
        // A duplicate waits behind its primary: wake it when the primary changes.
        .watches_stream(next(&mut run_triggers).touched_objects(), move |primary: HealingRun| {
            let (ns, name) = (primary.metadata.namespace.clone(), primary.metadata.name.clone());
            duplicates_of
                .state_filter(|r| {
                    r.metadata.namespace == ns
                        && r.status.as_ref().and_then(|s| s.duplicate_of.as_ref()) == name.as_ref()
                })
                .into_iter()
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        })
        .trigger_backoff(watches::NoExtraWait)
        .shutdown_on_signal();
    let reporter = Reporter { controller: "ci-healer".into(), instance: std::env::var(env::POD_NAME).ok() };
    metrics.watch_runs(runs.store().clone());
    metrics.set_leader(true);
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        runs: runs.store().clone(),
        attempts: attempts.clone(),
        jobs,
        pods,
        github,
        slack,
        failures: Mutex::new(HashMap::new()),
        permissions: Mutex::new(HashMap::new()),
    });

    let attempt_controller =
        Controller::for_stream(next(&mut attempt_triggers).applied_objects(), attempts.store().clone())
            .owns_stream(next(&mut job_triggers).touched_objects())
            .watches_stream(next(&mut pod_triggers).touched_objects(), |pod: Pod| {
                let ns = pod.metadata.namespace.clone()?;
                let name = pod.metadata.labels.as_ref()?.get(labels::ATTEMPT)?.clone();
                Some(ObjectRef::<HealingAttempt>::new(&name).within(&ns))
            })
            .watches_stream(next(&mut run_triggers).touched_objects(), |run: HealingRun| {
                // A run's abort must reach its attempts.
                let ns = run.metadata.namespace.clone().unwrap_or_default();
                let name = run.metadata.name.clone().unwrap_or_default();
                let n = run.status.as_ref().map(|s| s.attempts).unwrap_or(0);
                (1..=n).map(move |i| ObjectRef::<HealingAttempt>::new(&attempt_name(&name, i)).within(&ns))
            })
            .trigger_backoff(watches::NoExtraWait)
            .shutdown_on_signal();

    // `/healer` comments: a relayed command wakes when its run changes (its history says the outcome).
    let (command_store, command_writer) = reflector::store();
    let relayed_to = command_store.clone();
    let command_controller = Controller::for_stream(
        watches::watch(scoped::<HealingCommand>(&client, ns), watcher::Config::default())
            .modify(cache::trim_meta)
            .reflect(command_writer)
            .applied_objects(),
        command_store,
    )
    .watches_stream(next(&mut run_triggers).touched_objects(), move |run: HealingRun| {
        let (ns, name) = (run.metadata.namespace.clone(), run.metadata.name.clone());
        relayed_to
            .state_filter(|c| {
                c.metadata.namespace == ns
                    && c.status
                        .as_ref()
                        .is_some_and(|s| s.phase == Some(crate::crd::CommandPhase::Relayed) && s.run_name == name)
            })
            .into_iter()
            .map(|c| ObjectRef::from_obj(c.as_ref()))
            .collect::<Vec<_>>()
    })
    .trigger_backoff(watches::NoExtraWait)
    .shutdown_on_signal();

    *ready.write().await = true;
    tracing::info!(namespace = args.namespace.as_deref().unwrap_or("<all>"), "controllers started");
    let c1 = ctx.clone();
    let runs = run_controller.run(run::reconcile, error_policy::<HealingRun>, c1).for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "run reconcile event");
        }
    });
    let c2 = ctx.clone();
    let attempts =
        attempt_controller.run(attempt::reconcile, error_policy::<HealingAttempt>, ctx).for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "attempt reconcile event");
            }
        });
    let commands =
        command_controller.run(command::reconcile, error_policy::<HealingCommand>, c2).for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "command reconcile event");
            }
        });
    let lost = async {
        match leadership {
            Some(mut ch) => loop {
                if ch.changed().await.is_err() || !*ch.borrow_and_update() {
                    return;
                }
            },
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        _ = async { tokio::join!(runs, attempts, commands) } => {
            server.abort();
            tracing::info!("controllers stopped");
            Ok(())
        }
        _ = lost => {
            // Another replica may already act: stop at once, as client-go's leader election does.
            Err(StartError::LostLeadership)
        }
    };
    drivers.iter().for_each(tokio::task::JoinHandle::abort);
    ended
}

/// The API of `K` in `namespace`, or in all namespaces when `None` (the controller's `--namespace`).
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The GitHub client of `config.github`, reading its Secrets from `github.secretNamespace`, else
/// `$POD_NAMESPACE`, else the watched namespace, else `default`. `None` without a `github:` section.
/// Every call it makes is counted in `metrics` ([`Metrics::github_observer`]).
/// Errors: an invalid identity config.
fn github_client(
    config: &ControllerConfig,
    client: &Client,
    watched: Option<&str>,
    metrics: &Metrics,
) -> std::result::Result<Option<Arc<dyn crate::github::GitHub>>, crate::github::Error> {
    let Some(gh) = &config.github else { return Ok(None) };
    let namespace = gh
        .secret_namespace
        .clone()
        .or_else(|| std::env::var(env::POD_NAMESPACE).ok())
        .or_else(|| watched.map(str::to_string))
        .unwrap_or_else(|| "default".into());
    let secrets = crate::github::SecretSource::Kube { client: client.clone(), namespace };
    let identity = crate::github::Identity::new(gh.clone(), secrets, Some(metrics.github_observer()))?;
    tracing::info!(api_url = %gh.api_url, kind = ?identity.kind(), "GitHub client configured");
    Ok(Some(Arc::new(crate::github::RestGitHub::new(Arc::new(identity)))))
}

/// The Slack client of `config.slack`, reading its Secret from `slack.secretNamespace`, else
/// `$POD_NAMESPACE`, else the watched namespace, else `default`. `None` without a `slack:` section.
/// Errors: an invalid `slack:` config.
fn slack_client(
    config: &ControllerConfig,
    client: &Client,
    watched: Option<&str>,
) -> std::result::Result<Option<Arc<dyn crate::notify::Slack>>, crate::notify::Error> {
    let Some(cfg) = &config.slack else { return Ok(None) };
    let namespace = cfg
        .secret_namespace
        .clone()
        .or_else(|| std::env::var(env::POD_NAMESPACE).ok())
        .or_else(|| watched.map(str::to_string))
        .unwrap_or_else(|| "default".into());
    let secret = cfg.token_secret.clone().or_else(|| cfg.webhook_url_secret.clone()).unwrap_or_default();
    let source = crate::notify::client::CredentialSource::Kube { client: client.clone(), namespace, secret };
    let c = crate::notify::SlackClient::new(cfg, source)?;
    tracing::info!(api_url = %cfg.api_url, mode = ?crate::notify::Slack::mode(&c), "Slack client configured");
    Ok(Some(Arc::new(c)))
}

/// Block until this process holds the `ci-healer` Lease; returns the channel that reports loss.
/// Errors: the Lease cannot be created or read (RBAC: `coordination.k8s.io/leases`).
async fn acquire_leadership(
    client: &Client,
    args: &Args,
) -> std::result::Result<tokio::sync::watch::Receiver<bool>, StartError> {
    let ns = args
        .lease_namespace
        .clone()
        .or_else(|| args.namespace.clone())
        .or_else(|| std::env::var(env::POD_NAMESPACE).ok())
        .unwrap_or_else(|| "default".into());
    let duration = args.lease_duration_seconds.max(2);
    let mut builder = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), "ci-healer")
        .with_namespace(&ns)
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .with_field_manager(FIELD_MANAGER);
    if let Ok(pod) = std::env::var(env::POD_NAME) {
        builder = builder.with_identity(pod);
    }
    let manager = builder.build().await?;
    let (mut ch, task) = manager.watch().await;
    tracing::info!(lease = %format!("{ns}/ci-healer"), "waiting for leadership");
    while !*ch.borrow_and_update() {
        if ch.changed().await.is_err() {
            return Err(match task.await {
                Ok(Err(e)) => StartError::LeaderElection(e),
                Ok(Ok(_)) => StartError::LeaderElectionStopped("the Lease watch ended".into()),
                Err(e) => StartError::LeaderElectionStopped(e.to_string()),
            });
        }
    }
    tracing::info!(lease = %format!("{ns}/ci-healer"), "acquired leadership");
    Ok(ch)
}

/// A permanent error (a spec the controller cannot act on, already reported as `Accepted=False`)
/// waits for the object to change; transient errors requeue with per-object exponential backoff
/// (1 s doubling to 5 min, [`error::backoff_delay`]). Both count in `cihealer_reconcile_errors_total`
/// by [`Error::reason`].
fn error_policy<K: Resource<DynamicType = ()>>(obj: Arc<K>, err: &Error, ctx: Arc<Context>) -> Action {
    let controller = K::kind(&()).to_string();
    let reason = err.reason().as_str();
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels { controller: controller.clone(), reason: reason.into() })
        .inc();
    let (name, namespace) = (obj.meta().name.as_deref().unwrap_or(""), obj.meta().namespace.as_deref().unwrap_or(""));
    if let Some(wait) = err.retry_after() {
        // GitHub named the time its rate limit resets: wait that long (plus a second), not less.
        tracing::warn!(kind = %controller, name, namespace, reason, error = %err, retry_in_seconds = wait.as_secs() + 1, "GitHub asked to wait; requeued");
        return Action::requeue(wait + Duration::from_secs(1));
    }
    if err.is_permanent() {
        ctx.succeeded(&object_key(obj.as_ref()));
        tracing::info!(kind = %controller, name, namespace, reason, error = %err, "cannot act on the spec; waiting for a change");
        return Action::await_change();
    }
    let delay = ctx.backoff(object_key(obj.as_ref()));
    tracing::warn!(
        kind = %controller,
        name,
        namespace,
        reason,
        error = %err,
        retry_in_seconds = delay.as_secs(),
        "reconcile failed; retrying"
    );
    Action::requeue(delay)
}

/// Bookkeeping every reconcile does: count it, time it, reset backoff on success.
pub(crate) async fn instrumented<K, F>(obj: &K, ctx: &Context, fut: F) -> Result<Action>
where
    K: Resource<DynamicType = ()>,
    F: std::future::Future<Output = Result<Action>>,
{
    let labels = ControllerLabels { controller: K::kind(&()).to_string() };
    ctx.metrics.reconciles.get_or_create(&labels).inc();
    let start = std::time::Instant::now();
    let res = fut.await;
    ctx.metrics.reconcile_duration.get_or_create(&labels).observe(start.elapsed().as_secs_f64());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    ctx.metrics.last_reconcile.get_or_create(&labels).set(now.as_secs_f64());
    if res.is_ok() {
        ctx.succeeded(&object_key(obj));
    }
    res
}

async fn wait_for_crds(client: &Client, every: u64) {
    loop {
        let runs = Api::<HealingRun>::all(client.clone()).list_metadata(&ListParams::default().limit(1)).await;
        let attempts = Api::<HealingAttempt>::all(client.clone()).list_metadata(&ListParams::default().limit(1)).await;
        match (runs, attempts) {
            (Ok(_), Ok(_)) => return,
            (r, a) => {
                let e = r.err().or(a.err()).map(|e| e.to_string()).unwrap_or_default();
                tracing::warn!(error = %e, "waiting for the HealingRun and HealingAttempt CRDs (install them with `healer crd | kubectl apply -f -`)");
                tokio::time::sleep(Duration::from_secs(every.max(1))).await;
            }
        }
    }
}

async fn serve_metrics(addr: SocketAddr, registry: Arc<Registry>, ready: Arc<RwLock<bool>>) -> std::io::Result<()> {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| {
                let registry = registry.clone();
                async move {
                    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                    match crate::telemetry::encode_for(accept, &registry) {
                        Ok((content_type, body)) => (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body),
                        Err(_) => {
                            (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain")], String::new())
                        }
                    }
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if *ready.read().await {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "waiting for CRDs")
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app).await?;
    Ok(())
}
