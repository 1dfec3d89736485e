//! The kubelet's API-facing parts the host runner needs: a Node object the scheduler binds pods to,
//! kept Ready by a Lease heartbeat ([`NodeAgent`]), and the kubelet's HTTPS log endpoint (`GET /containerLogs/{namespace}/{pod}/{container}`), which the API
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
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Where each pod's container logs are: `(namespace, pod)` → logs folder (`<container>.log` files).
pub type LogIndex = Arc<RwLock<HashMap<(String, String), PathBuf>>>;

/// The resources a Node offers the scheduler (`status.capacity` = `status.allocatable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// CPU cores, as a Kubernetes quantity (`"2"`).
    pub cpu: String,
    /// Memory, as a quantity (`"8Gi"`).
    pub memory: String,
    /// Pods the Node runs at once.
    pub pods: i32,
}

impl Capacity {
    /// This host's cores and memory (`/proc/meminfo`, Linux; 8 GiB elsewhere) and `pods`.
    pub fn of_host(pods: i32) -> Self {
        let cpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string();
        let mem_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
            })
            .unwrap_or(8 * 1024 * 1024);
        Self { cpu, memory: format!("{mem_kib}Ki"), pods }
    }

    /// Room for any number of pods: for a Node whose pods never run (a test's kubelet stand-in that
    /// only reports chosen outcomes).
    pub fn unlimited() -> Self {
        Self { cpu: "1000".into(), memory: "4Ti".into(), pods: 100_000 }
    }
}

/// Seconds a Node's Lease stays valid (the kubelet's `nodeLeaseDurationSeconds`).
pub const NODE_LEASE_SECONDS: i32 = 40;
/// How often the Lease is renewed (a quarter of its duration, as the kubelet does).
pub const NODE_LEASE_RENEW: Duration = Duration::from_secs(10);
/// Namespace of Node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// Field manager of what the Node agent writes.
pub const NODE_FIELD_MANAGER: &str = "ci-healer-host-runner";

/// Register (or refresh) the Node `name` with `InternalIP` 127.0.0.1, the kubelet port, `capacity`
/// and a Ready condition, labelled `kubernetes.io/hostname=<name>` (what a namespace's
/// `scheduler.alpha.kubernetes.io/node-selector` names). Errors: API failures.
pub async fn register_node(client: &Client, name: &str, port: u16, capacity: &Capacity) -> kube::Result<Node> {
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
    let quantities = json!({"cpu": capacity.cpu, "memory": capacity.memory, "pods": capacity.pods.to_string()});
    let status = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ci-healer host runner is ready",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "nodeInfo": {"kubeletVersion": concat!("ci-healer-host-runner/", env!("CARGO_PKG_VERSION")), "operatingSystem": std::env::consts::OS,
                     "architecture": std::env::consts::ARCH, "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
                     "osImage": "host", "containerRuntimeVersion": "host://processes", "kubeProxyVersion": ""},
        "capacity": quantities,
        "allocatable": quantities
    }});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(status)).await
}

/// Renew the Node's Lease in `kube-node-lease` (holder: the Node, [`NODE_LEASE_SECONDS`], owned by
/// the Node so the garbage collector removes it with the Node), as the kubelet's heartbeat does; the
/// node-lifecycle controller taints a Node whose Lease goes stale. Errors: API failures.
pub async fn renew_lease(client: &Client, node: &Node) -> kube::Result<()> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let leases = Api::<Lease>::namespaced(client.clone(), NODE_LEASE_NAMESPACE);
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "Node", "name": name, "uid": node.metadata.uid.clone().unwrap_or_default()}]},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": NODE_LEASE_SECONDS,
                 "renewTime": MicroTime(jiff::Timestamp::now())}
    });
    leases.patch(&name, &PatchParams::apply(NODE_FIELD_MANAGER).force(), &Patch::Apply(lease)).await?;
    Ok(())
}

/// A registered Node kept alive: its Lease renewed every [`NODE_LEASE_RENEW`] and its status every
/// five minutes, as the kubelet does. Dropping it stops the heartbeat (the Node then goes NotReady);
/// [`NodeAgent::deregister`] deletes the Node.
pub struct NodeAgent {
    client: Client,
    name: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl NodeAgent {
    /// Register the Node and start its heartbeat. Errors: API failures.
    pub async fn start(client: &Client, name: &str, port: u16, capacity: Capacity) -> kube::Result<Self> {
        let node = register_node(client, name, port, &capacity).await?;
        renew_lease(client, &node).await?;
        let (c, n) = (client.clone(), name.to_string());
        let heartbeat = tokio::spawn(async move {
            let mut node = node;
            let mut ticks = 0u32;
            loop {
                tokio::time::sleep(NODE_LEASE_RENEW).await;
                ticks += 1;
                if ticks.is_multiple_of(30) {
                    match register_node(&c, &n, port, &capacity).await {
                        Ok(fresh) => node = fresh,
                        Err(e) => tracing::warn!(node = %n, error = %e, "node status update failed"),
                    }
                }
                if let Err(e) = renew_lease(&c, &node).await {
                    tracing::warn!(node = %n, error = %e, "node lease renewal failed");
                    // Re-register: the Node may have been deleted (its uid changes).
                    if let Ok(fresh) = register_node(&c, &n, port, &capacity).await {
                        node = fresh;
                    }
                }
            }
        });
        Ok(Self { client: client.clone(), name: name.into(), heartbeat })
    }

    /// The Node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stop the heartbeat and delete the Node (its Lease follows through the garbage collector;
    /// pods still bound to it are removed by the pod garbage collector). Errors: API failures.
    pub async fn deregister(self) -> kube::Result<()> {
        self.heartbeat.abort();
        match Api::<Node>::all(self.client.clone()).delete(&self.name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// For a Node whose pods run nowhere (a test's kubelet stand-in): finish the deletion of each of its
/// pods that is being deleted (grace period 0, that uid only), as a kubelet does once the pod's
/// containers have stopped. Without it a deleted pod on such a Node stays `Terminating`. Runs until
/// the task is aborted.
pub fn finish_deletions(client: &Client, node: &str) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    use kube::ResourceExt;
    let pods = Api::<Pod>::all(client.clone());
    let cfg = kube::runtime::watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    tokio::spawn(async move {
        let mut stream = crate::controller::watches::watch(pods.clone(), cfg).boxed();
        while let Some(ev) = stream.next().await {
            let pod = match ev {
                Ok(kube::runtime::watcher::Event::Apply(p) | kube::runtime::watcher::Event::InitApply(p)) => p,
                _ => continue,
            };
            if pod.metadata.deletion_timestamp.is_none() {
                continue;
            }
            let api = Api::<Pod>::namespaced(pods.clone().into_client(), &pod.namespace().unwrap_or_default());
            let dp = kube::api::DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(kube::api::Preconditions { uid: pod.uid(), resource_version: None }),
                ..Default::default()
            };
            if let Err(e) = api.delete(&pod.name_any(), &dp).await {
                tracing::debug!(pod = %pod.name_any(), error = %e, "finishing a pod's deletion failed");
            }
        }
    })
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

/// Bind the log server on `addr` (port 0: any free port) with a fresh self-signed certificate for
/// 127.0.0.1/localhost, and serve it in the background. Returns the bound address. Errors: the port
/// is taken, or the certificate cannot be made.
pub async fn serve_logs(addr: SocketAddr, index: LogIndex) -> Result<SocketAddr, super::Error> {
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
