//! `healer llm-proxy`: the credential-injecting proxy that runs as the attempt pod's `llm-proxy`
//! native sidecar ([`crate::contract::proxy`]), so that no step of the attempt holds the LLM key.
//!
//! It listens on a loopback address, reads the key from the mounted Secret file on every request
//! (never from its environment or arguments, and a rotated Secret is picked up), and forwards each
//! request to the provider's base URL:
//!
//! - only paths below the base URL's path are forwarded (`..` segments are resolved first);
//!   anything else, and `CONNECT`, gets `403` with [`proxy::ERROR_HEADER`] `PathNotAllowed`: it is
//!   no open proxy;
//! - every incoming authentication header (`Authorization`, `x-api-key`, `api-key`,
//!   `x-goog-api-key`, `Proxy-Authorization`) and the hop-by-hop headers of RFC 9110 §7.6.1 are
//!   dropped; the provider's header is added (Anthropic `x-api-key`; OpenAI-compatible
//!   `Authorization: Bearer`); other headers (`anthropic-version`, `content-type` …) pass;
//! - the provider's status, headers and body come back as they are, the body streamed chunk by
//!   chunk;
//! - when the provider cannot be reached the answer is `502` with [`proxy::ERROR_HEADER`]
//!   `ProviderUnreachable`; a missing or blank key file gives `401` with `ApiKeyMissing`. Both
//!   carry a JSON body `{"error":{"type":"proxy_error","message":…}}` (the providers' error shape).
//!
//! `GET` [`proxy::FINGERPRINT_PATH`] is answered by the proxy itself with the key's salted
//! [`proxy::KeyFingerprint`], which the agent step's masker uses to mask the key wherever it
//! appears (a failure log, a tool's output) without holding it. Nothing it logs contains the key or
//! a request body.

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::contract::{LlmProvider, env, proxy};

/// Largest request body forwarded (a long conversation with file contents stays far below).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Incoming headers that carry a credential: dropped before forwarding.
const AUTH_HEADERS: &[&str] = &["authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the HTTP client sets itself.
const HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-connection",
    "host",
    "content-length",
];

/// `healer llm-proxy` arguments (the Job sets them through the environment).
#[derive(clap::Args, Debug, Clone)]
pub struct ProxyArgs {
    /// Loopback address to listen on.
    #[arg(long, env = env::LLM_PROXY_LISTEN, default_value_t = proxy::listen_addr())]
    pub listen: String,
    /// The provider's base URL; requests are forwarded only below its path.
    #[arg(long, env = env::LLM_PROXY_UPSTREAM)]
    pub upstream: String,
    /// Which authentication header to add: `anthropic` (`x-api-key`) or `openai-compatible`
    /// (`Authorization: Bearer`).
    #[arg(long, env = env::LLM_PROXY_PROVIDER, default_value = "anthropic")]
    pub provider: LlmProvider,
    /// The mounted file holding the API key (read on every request).
    #[arg(long, env = env::LLM_API_KEY_FILE)]
    pub key_file: PathBuf,
}

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// `--upstream` is not an absolute `http(s)` URL.
    #[error("the upstream {0:?} is not an http or https URL")]
    Upstream(String),
    /// `--listen` is not a socket address.
    #[error("the listen address {0:?} is not IP:PORT")]
    Listen(String),
    /// The HTTP client cannot be built (TLS set-up).
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// Binding or serving failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The forwarding state: where to, which header, where the key is.
#[derive(Debug, Clone)]
pub struct Forwarder {
    http: reqwest::Client,
    upstream: reqwest::Url,
    provider: LlmProvider,
    key_file: PathBuf,
    /// Random per start: the salt of [`proxy::KeyFingerprint`].
    salt: String,
}

impl Forwarder {
    /// A forwarder to `upstream`. Errors: the URL is not `http(s)`, the client cannot be built.
    pub fn new(upstream: &str, provider: LlmProvider, key_file: PathBuf) -> Result<Self, ProxyError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut url = reqwest::Url::parse(upstream.trim()).map_err(|_| ProxyError::Upstream(upstream.into()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ProxyError::Upstream(upstream.into()));
        }
        url.set_query(None);
        url.set_fragment(None);
        let trimmed = url.path().trim_end_matches('/').to_string();
        url.set_path(&trimmed);
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let salt = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(format!("{:?}{}{upstream}", std::time::SystemTime::now(), std::process::id()));
            h.update(std::collections::hash_map::RandomState::new().hash_one(0u8).to_le_bytes());
            hex::encode(&h.finalize()[..16])
        };
        Ok(Self { http, upstream: url, provider, key_file, salt })
    }

    /// The provider URL for an incoming request target (`/path?query`), or `None` when it would
    /// leave the provider's base URL (another host, or a path outside the base path once `.` and
    /// `..` segments are resolved). Pure.
    pub fn target(&self, path_and_query: &str) -> Option<reqwest::Url> {
        if !path_and_query.starts_with('/') || path_and_query.starts_with("//") {
            return None;
        }
        let base = self.upstream.as_str().trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{base}{path_and_query}")).ok()?;
        let same_origin = url.scheme() == self.upstream.scheme()
            && url.host_str() == self.upstream.host_str()
            && url.port_or_known_default() == self.upstream.port_or_known_default();
        let prefix = self.upstream.path().trim_end_matches('/');
        let below = url.path().strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/') && rest.len() > 1);
        let encoded_dots = url.path().to_ascii_lowercase().contains("%2e") || url.path().contains("/../");
        (same_origin && below && !encoded_dots && url.username().is_empty() && url.password().is_none()).then_some(url)
    }

    /// Forward one request. Never fails: problems become the proxy's own error answers.
    pub async fn forward(&self, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        if parts.method == Method::GET && parts.uri.path() == proxy::FINGERPRINT_PATH {
            return match read_key(&self.key_file) {
                Some(k) => Response::builder()
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Body::from(
                        serde_json::to_string(&proxy::KeyFingerprint::of(&k, &self.salt)).unwrap_or_default(),
                    ))
                    .expect("static response parts"),
                None => {
                    error(StatusCode::UNAUTHORIZED, proxy::REASON_KEY_MISSING, "the API key file is missing or empty")
                }
            };
        }
        let target = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let url = match (parts.method == Method::CONNECT, self.target(target)) {
            (false, Some(u)) => u,
            _ => {
                tracing::warn!(method = %parts.method, path = %parts.uri.path(), "refused: not below the provider's base URL");
                let msg = format!("only paths below {} are forwarded", self.upstream);
                return error(StatusCode::FORBIDDEN, proxy::REASON_FORBIDDEN, &msg);
            }
        };
        let key = match read_key(&self.key_file) {
            Some(k) => k,
            None => {
                let msg = format!("the API key file {} is missing or empty", self.key_file.display());
                tracing::warn!(%msg, "no key to add");
                return error(StatusCode::UNAUTHORIZED, proxy::REASON_KEY_MISSING, &msg);
            }
        };
        let body = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
            Ok(b) => b,
            Err(e) => return error(StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLarge", &e.to_string()),
        };
        let mut headers = forwardable(&parts.headers);
        let auth = match self.provider {
            LlmProvider::Anthropic => ("x-api-key", HeaderValue::from_str(&key)),
            LlmProvider::OpenaiCompatible => ("authorization", HeaderValue::from_str(&format!("Bearer {key}"))),
        };
        match auth.1 {
            Ok(mut v) => {
                v.set_sensitive(true);
                headers.insert(HeaderName::from_static(auth.0), v);
            }
            Err(_) => {
                let msg = format!("the API key in {} is not a valid header value", self.key_file.display());
                return error(StatusCode::UNAUTHORIZED, proxy::REASON_KEY_MISSING, &msg);
            }
        }
        let path = url.path().to_string();
        let sent = self.http.request(parts.method.clone(), url.clone()).headers(headers).body(body).send().await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("{} ({url})", super::transport_detail(&e));
                tracing::warn!(%msg, "provider unreachable");
                return error(StatusCode::BAD_GATEWAY, proxy::REASON_UNREACHABLE, &msg);
            }
        };
        tracing::info!(method = %parts.method, %path, status = resp.status().as_u16(), "forwarded");
        let mut out = Response::builder().status(resp.status());
        if let Some(h) = out.headers_mut() {
            *h = forwardable(resp.headers());
        }
        let stream = futures::stream::unfold(Some(resp), |resp| async move {
            let mut r = resp?;
            match r.chunk().await {
                Ok(Some(b)) => Some((Ok::<_, reqwest::Error>(b), Some(r))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        });
        out.body(Body::from_stream(stream))
            .unwrap_or_else(|_| error(StatusCode::BAD_GATEWAY, "ProxyError", "bad response"))
    }
}

/// The headers that may cross the proxy: not hop-by-hop, not a credential.
fn forwardable(h: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in h {
        let n = name.as_str();
        if !AUTH_HEADERS.contains(&n) && !HOP_HEADERS.contains(&n) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn read_key(path: &std::path::Path) -> Option<String> {
    let k = std::fs::read_to_string(path).ok()?;
    let k = k.trim();
    (!k.is_empty()).then(|| k.to_string())
}

fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({"type": "error", "error": {"type": "proxy_error", "message": format!("ci-healer llm-proxy: {message}")}});
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(proxy::ERROR_HEADER, reason)
        .body(Body::from(body.to_string()))
        .expect("static response parts")
}

/// Serve until SIGTERM or SIGINT, then exit cleanly (the kubelet stops a sidecar with SIGTERM
/// after the main containers end). Errors: bad arguments, the port is taken.
pub async fn run(args: ProxyArgs) -> Result<(), ProxyError> {
    let addr: SocketAddr = args.listen.parse().map_err(|_| ProxyError::Listen(args.listen.clone()))?;
    let fwd = Arc::new(Forwarder::new(&args.upstream, args.provider, args.key_file.clone())?);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, upstream = %fwd.upstream, provider = args.provider.name(), "llm-proxy listening");
    let app = axum::Router::new()
        .fallback(|State(f): State<Arc<Forwarder>>, req: Request| async move { f.forward(req).await })
        .with_state(fwd);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("llm-proxy stopping");
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(base: &str) -> Forwarder {
        Forwarder::new(base, LlmProvider::OpenaiCompatible, "/nonexistent".into()).unwrap()
    }

    #[test]
    fn only_paths_below_the_provider_base_are_forwarded() {
        let f = fwd("https://api.openai.com/v1/");
        assert_eq!(f.target("/chat/completions").unwrap().as_str(), "https://api.openai.com/v1/chat/completions");
        assert_eq!(f.target("/models?limit=2").unwrap().as_str(), "https://api.openai.com/v1/models?limit=2");
        for bad in ["/../v2/x", "/%2e%2e/admin", "//evil.example/x", "evil", "@evil.example/x", "/", "", "/./../x"] {
            assert!(f.target(bad).is_none(), "{bad} must be refused");
        }
        let a = fwd("http://127.0.0.1:8080");
        assert_eq!(a.target("/v1/messages").unwrap().as_str(), "http://127.0.0.1:8080/v1/messages");
        assert!(a.target("/").is_none());
        assert!(Forwarder::new("file:///etc", LlmProvider::Anthropic, "/k".into()).is_err());
        assert!(Forwarder::new("not a url", LlmProvider::Anthropic, "/k".into()).is_err());
    }

    #[test]
    fn credentials_and_hop_headers_never_cross() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer stolen"),
            ("x-api-key", "stolen"),
            ("api-key", "stolen"),
            ("x-goog-api-key", "stolen"),
            ("proxy-authorization", "Basic x"),
            ("connection", "close"),
            ("host", "127.0.0.1:8719"),
            ("anthropic-version", "2023-06-01"),
            ("content-type", "application/json"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let out = forwardable(&h);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["anthropic-version", "content-type"]);
    }
}
