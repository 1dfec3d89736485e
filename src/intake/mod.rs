//! Deliveries in: how a GitHub failure becomes a HealingRun, and a `/healer` comment a
//! HealingCommand.
//!
//! Two intakes create the same objects: the Argo Events Sensor (`config/argo-events/`) for clusters
//! that run Argo Events, and `healer webhook` ([`receiver`]), ci-healer's own signed receiver, for
//! teams without it. Both apply one mapping, [`map::deliver`] (the Sensor as YAML, checked against
//! this function on every real payload by `tests/argo_events.rs`).
//!
//! `healer webhook` is its own process (and its own Deployment in the chart, `webhook.enabled`)
//! rather than a port of the controller: it faces the internet, so it runs with a ServiceAccount
//! that may only create HealingRuns and HealingCommands (no Secrets, no Jobs, no GitHub identity),
//! it can run several replicas behind a Service while the controller runs one leader, and a burst
//! of deliveries can never slow a reconcile.

pub mod map;
pub mod receiver;
pub mod signature;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::contract::env;

/// What stops `healer webhook`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No cluster credentials (kubeconfig or in-cluster ServiceAccount).
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// The address cannot be bound, the secret cannot be read, or the server stopped with an I/O error.
    #[error("serving the webhook receiver: {0}")]
    Io(#[from] std::io::Error),
    /// The secret file is empty.
    #[error("the webhook secret file {0} is empty")]
    EmptySecret(PathBuf),
}

/// Flags of `healer webhook`; each has an environment fallback.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to serve `POST /webhooks/github` on (`127.0.0.1:0` picks a free port and logs it).
    #[arg(long, env = env::WEBHOOK_ADDR, default_value = "0.0.0.0:8082")]
    pub addr: SocketAddr,
    /// The namespace the HealingRuns and HealingCommands are created in.
    #[arg(long, env = env::NAMESPACE)]
    pub namespace: String,
    /// The file that holds the GitHub webhook's secret (a mounted Secret key). Read on every
    /// delivery, so a rotated Secret applies without a restart; one trailing newline is ignored.
    #[arg(long, env = env::WEBHOOK_SECRET_FILE)]
    pub secret_file: PathBuf,
    /// Larger bodies are refused with 413 (GitHub caps payloads at 25 MB; a failure's delivery is
    /// a few KB).
    #[arg(long, env = env::WEBHOOK_MAX_BODY_BYTES, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// The longest the API server may take to create a run; GitHub waits 10 s for the answer.
    #[arg(long, env = env::WEBHOOK_API_TIMEOUT_MS, default_value_t = 5000)]
    pub api_timeout_ms: u64,
}

/// Serve the receiver until the process is stopped.
///
/// Errors: no cluster credentials, an unreadable or empty secret file at start, or the address
/// cannot be bound.
pub async fn run(args: Args) -> Result<(), Error> {
    if std::fs::read(&args.secret_file)?.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::EmptySecret(args.secret_file));
    }
    let client = crate::kube_client::client(crate::kube_client::Component::Webhook).await?;
    let settings = receiver::Settings {
        namespace: args.namespace.clone(),
        max_body_bytes: args.max_body_bytes,
        api_timeout: Duration::from_millis(args.api_timeout_ms),
    };
    let app = receiver::App::new(client, args.secret_file, settings);
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, namespace = %args.namespace, url = %format!("http://{addr}{}", receiver::PATH), "serving the GitHub webhook receiver");
    axum::serve(listener, receiver::router(app)).with_graceful_shutdown(crate::dashboard::shutdown()).await?;
    tracing::info!("stopped the webhook receiver");
    Ok(())
}
