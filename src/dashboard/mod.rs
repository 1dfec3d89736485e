//! `healer dashboard`: a read-only web view of HealingRuns, served from a watch cache.
//!
//! The dashboard is its own process (and its own Deployment in the chart, off by default) rather
//! than a port of the controller: it needs only `get`/`list`/`watch` (a ServiceAccount that can
//! write nothing), it can run several replicas while the controller runs one leader, and a page
//! view can never slow a reconcile. It watches HealingRuns, HealingAttempts and the controller's
//! ConfigMaps through kube-runtime reflectors ([`cache`]) and answers every request from them: no
//! request ever reaches the API server per page view. Pages are rendered on the server ([`view`],
//! [`web`]), so the tables and filters work without JavaScript; Server-Sent Events push re-rendered
//! fragments when the cache changes.
//!
//! It shows no secret and no log bytes beyond the masked, bounded excerpt that triage stored, and
//! it changes nothing: actions stay with `kubectl` and `/healer` comments, which carry an identity.

pub mod cache;
pub mod grafana;
pub mod view;
pub mod web;

use std::net::SocketAddr;

use crate::contract::env;

/// What stops `healer dashboard`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No cluster credentials (kubeconfig or in-cluster ServiceAccount).
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// The address cannot be bound, or the server stopped with an I/O error.
    #[error("serving the dashboard: {0}")]
    Io(#[from] std::io::Error),
}

/// Flags of `healer dashboard`; each has an environment fallback.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to serve the dashboard on (`127.0.0.1:0` picks a free port and logs it).
    #[arg(long, env = env::DASHBOARD_ADDR, default_value = "0.0.0.0:8081")]
    pub addr: SocketAddr,
    /// Show only this namespace (default: all namespaces the ServiceAccount may list).
    #[arg(long, env = env::NAMESPACE)]
    pub namespace: Option<String>,
    /// The web address of GitHub (or GitHub Enterprise) for links to repositories, commits and jobs.
    #[arg(long, env = env::GITHUB_WEB_URL, default_value = "https://github.com")]
    pub github_web_url: String,
}

/// Serve the dashboard until the process is stopped.
///
/// Errors: no cluster credentials, or the address cannot be bound. Watch errors (RBAC, the API
/// server restarting) are logged and retried; the pages show what the cache holds meanwhile.
pub async fn run(args: Args) -> Result<(), Error> {
    let client = crate::kube_client::client(crate::kube_client::Component::Dashboard).await?;
    let (cache, driver) = cache::Cache::watch(client, args.namespace.as_deref());
    tokio::spawn(driver);
    let links = view::Links { github: args.github_web_url.trim_end_matches('/').to_string() };
    let app = web::App::new(cache.clone(), links);
    let ready = app.clone();
    tokio::spawn(async move {
        cache.wait_until_ready().await;
        tracing::info!(runs = cache.runs.len(), attempts = cache.attempts.len(), "dashboard cache is complete");
        ready.set_ready();
    });
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, url = %format!("http://{addr}/"), "serving the dashboard");
    // No graceful drain: live pages hold their event streams open for as long as they are open,
    // and a browser reconnects to the next replica on its own.
    tokio::select! {
        served = axum::serve(listener, web::router(app)) => served?,
        _ = shutdown() => tracing::info!("stopping the dashboard"),
    }
    Ok(())
}

/// SIGTERM (Kubernetes stopping the pod) or SIGINT (a person at a terminal).
pub(crate) async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
