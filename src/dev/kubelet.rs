//! The kubelet's API-facing parts the host runner needs: a Node object the pods are bound to, and the
//! kubelet's HTTPS log endpoint (`GET /containerLogs/{namespace}/{pod}/{container}`), which the API
//! server proxies `pods/{name}/log` to. The API server reaches it at the Node's `InternalIP`
//! (127.0.0.1) and `status.daemonEndpoints.kubeletEndpoint.Port`; it does not verify the kubelet's
//! certificate unless `--kubelet-certificate-authority` is set, so a self-signed one (rcgen) serves.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where each pod's container logs are: `(namespace, pod)` → logs folder (`<container>.log` files).
pub type LogIndex = Arc<RwLock<HashMap<(String, String), PathBuf>>>;

/// Register (or refresh) the Node `name` with `InternalIP` 127.0.0.1, the kubelet port and a Ready
/// condition. Errors: API failures.
pub async fn register_node(client: &Client, name: &str, port: u16) -> kube::Result<()> {
    let nodes = Api::<Node>::all(client.clone());
    if nodes.get_opt(name).await?.is_none() {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": std::env::consts::OS, "cihealer.dev/host-runner": "true"}},
            "spec": {}
        }))
        .expect("node object");
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let now = jiff::Timestamp::now().to_string();
    let status = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ci-healer host runner is ready",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "nodeInfo": {"kubeletVersion": concat!("ci-healer-host-runner/", env!("CARGO_PKG_VERSION")), "operatingSystem": std::env::consts::OS,
                     "architecture": std::env::consts::ARCH, "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                     "osImage": "host", "containerRuntimeVersion": "host://processes", "kubeProxyVersion": ""},
        "capacity": {"cpu": "2", "memory": "8Gi", "pods": "16"},
        "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "16"}
    }});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await?;
    Ok(())
}

/// `tailLines` and `limitBytes` of a `containerLogs` query (other parameters are ignored: the log is
/// returned as it is now, without following).
fn log_query(q: Option<&str>) -> (Option<usize>, Option<usize>) {
    let mut out = (None, None);
    for kv in q.unwrap_or("").split('&') {
        match kv.split_once('=') {
            Some(("tailLines", v)) => out.0 = v.parse().ok(),
            Some(("limitBytes", v)) => out.1 = v.parse().ok(),
            _ => {}
        }
    }
    out
}

async fn container_logs(
    State(index): State<LogIndex>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> impl IntoResponse {
    let (tail_lines, limit_bytes) = log_query(q.as_deref());
    let dir = index.read().expect("log index").get(&(ns.clone(), pod.clone())).cloned();
    let Some(dir) = dir else {
        return (StatusCode::NOT_FOUND, format!("pod {ns}/{pod} is not on this node\n")).into_response();
    };
    if container.contains('/') || container.contains("..") {
        return (StatusCode::BAD_REQUEST, "bad container name\n".to_string()).into_response();
    }
    let Ok(bytes) = tokio::fs::read(dir.join(format!("{container}.log"))).await else {
        return (StatusCode::BAD_REQUEST, format!("container \"{container}\" in pod \"{pod}\" is waiting to start\n"))
            .into_response();
    };
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if let Some(n) = tail_lines {
        let lines: Vec<&str> = text.lines().collect();
        text = lines[lines.len().saturating_sub(n)..].join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
    }
    if let Some(l) = limit_bytes {
        let mut cut = l.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    (StatusCode::OK, [("content-type", "text/plain")], text).into_response()
}

/// A TLS listener for axum: TCP accept, then a rustls handshake (5 s cap; failures are dropped).
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(stream)).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Why the log endpoint cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The self-signed certificate cannot be made.
    #[error("cannot make the kubelet certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// TLS cannot be configured with it.
    #[error("cannot configure TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The port is taken.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
}

/// Bind the log server on `addr` (port 0: any free port) with a fresh self-signed certificate for
/// 127.0.0.1/localhost, and serve it in the background. Returns the bound address. Errors:
/// [`ServeError`] (the port is taken, or the certificate cannot be made).
pub async fn serve_logs(addr: SocketAddr, index: LogIndex) -> Result<SocketAddr, ServeError> {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpListener::bind(addr).await?;
    let local = tcp.local_addr()?;
    let app = axum::Router::new()
        .route("/containerLogs/{ns}/{pod}/{container}", axum::routing::get(container_logs))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .with_state(index);
    let listener = TlsListener { tcp, acceptor: TlsAcceptor::from(Arc::new(cfg)) };
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "kubelet log server stopped");
        }
    });
    Ok(local)
}
