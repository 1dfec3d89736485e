//! A loopback GitHub for tests and `make run-local` (dev only: test support and the
//! `loopback_github` example binary, never part of the `healer` binary).
//!
//! It speaks GitHub's REST API as GitHub's own OpenAPI description (`@octokit/openapi`) documents
//! it, and **checks every request against that description** (method, path, parameters, required
//! fields, field types): a request GitHub would refuse is answered 422 (or 404 for a path GitHub
//! does not have) and recorded in [`LoopbackGitHub::violations`], so a typo fails a test instead of
//! failing on github.com. Answers are the description's examples overlaid with the loopback's state,
//! and are themselves checked against the documented response schema.
//!
//! It keeps state (refs, commits, pull requests, comments, labels, check runs, statuses, job
//! re-runs) so idempotency can be tested, verifies App JWTs (RS256 with the App's public key) and
//! installation tokens (scoped to the installation's repositories, with an expiry), serves job logs
//! from a second listener (another origin, as GitHub's blob storage is, so a client must not send its
//! credentials there) with suffix `Range` support, can be told to answer 410 / 403 with
//! `Retry-After` / 5xx or to hold a request ([`Fault`]), and records every request in order
//! ([`LoopbackGitHub::requests`]).
#![allow(dead_code)]

pub mod graphql;
pub mod handlers;
pub mod openapi;
pub mod state;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use handlers::{Ctx, Reply, Who};
pub use state::*;

/// Options of a loopback server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A path prefix, e.g. `/api/v3` to stand in for GitHub Enterprise Server.
    pub prefix: String,
    /// The log storage ignores `Range` and sends whole logs (as some proxies do).
    pub blob_ignores_range: bool,
}

/// One request the loopback received.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recorded {
    /// Order of arrival, from 1.
    pub seq: u64,
    /// The method.
    pub method: String,
    /// The path without the prefix and query.
    pub path: String,
    /// The query parameters.
    pub query: Vec<(String, String)>,
    /// The `operationId` (empty when the path is not GitHub's).
    pub operation: String,
    /// `none`, `jwt`, `installation:<id>`, `token:<login>`, `invalid:<why>`.
    pub auth: String,
    /// `If-None-Match`, when sent.
    pub if_none_match: Option<String>,
    /// `Range`, when sent.
    pub range: Option<String>,
    /// The JSON body, when sent.
    pub body: Option<Value>,
    /// The answer's status.
    pub status: u16,
    /// Every header as received (lower-case names, `Authorization` included), for the secret scans.
    pub headers: Vec<(String, String)>,
}

/// A request to the log storage.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BlobRequest {
    /// The path.
    pub path: String,
    /// Whether an `Authorization` header came along (it must not: another origin).
    pub had_authorization: bool,
    /// `Range`, when sent.
    pub range: Option<String>,
    /// The answer's status.
    pub status: u16,
    /// Bytes sent.
    pub bytes: u64,
}

/// What a [`Fault`] does to a matching request.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer this status, headers and message instead of handling the request.
    Status { status: u16, headers: Vec<(String, String)>, message: String },
    /// Hold the request until [`Hold::release`], then answer 503 without handling it (as if the
    /// request never reached GitHub).
    Hold(Hold),
}

/// A fault for requests of one operation (`operationId`, or `*`).
#[derive(Debug, Clone)]
pub struct Fault {
    pub operation: String,
    /// How many requests it applies to.
    pub times: u32,
    pub kind: FaultKind,
}

impl Fault {
    /// `status` with GitHub's error body.
    pub fn status(operation: &str, status: u16, times: u32) -> Self {
        Self {
            operation: operation.into(),
            times,
            kind: FaultKind::Status { status, headers: vec![], message: "Server Error".into() },
        }
    }
    /// A secondary rate limit: 403 with `Retry-After`.
    pub fn secondary_rate_limit(operation: &str, retry_after_seconds: u64, times: u32) -> Self {
        Self {
            operation: operation.into(),
            times,
            kind: FaultKind::Status {
                status: 403,
                headers: vec![("retry-after".into(), retry_after_seconds.to_string())],
                message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                    .into(),
            },
        }
    }
    /// A primary rate limit: 403 with `x-ratelimit-remaining: 0` and a reset `reset_in_seconds` away.
    pub fn primary_rate_limit(operation: &str, reset_in_seconds: u64, times: u32) -> Self {
        let reset =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + reset_in_seconds;
        Self {
            operation: operation.into(),
            times,
            kind: FaultKind::Status {
                status: 403,
                headers: vec![
                    ("x-ratelimit-remaining".into(), "0".into()),
                    ("x-ratelimit-reset".into(), reset.to_string()),
                ],
                message: "API rate limit exceeded for installation.".into(),
            },
        }
    }
}

/// A held request's handle.
#[derive(Debug, Clone, Default)]
pub struct Hold {
    held: Arc<Notify>,
    is_held: Arc<AtomicBool>,
    release: Arc<Notify>,
    released: Arc<AtomicBool>,
}

impl Hold {
    /// Wait until a request is being held.
    pub async fn wait_held(&self) {
        loop {
            let n = self.held.notified();
            if self.is_held.load(Ordering::SeqCst) {
                return;
            }
            n.await;
        }
    }
    /// Let the held request go (answered 503, not handled).
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        self.release.notify_waiters();
    }
}

struct Inner {
    state: Mutex<State>,
    records: Mutex<Vec<Recorded>>,
    blobs: Mutex<Vec<BlobRequest>>,
    violations: Mutex<Vec<String>>,
    faults: Mutex<Vec<Fault>>,
    seq: AtomicU64,
    used: Mutex<HashMap<String, u64>>,
    opts: Options,
    base: OnceLock<String>,
    blob_base: OnceLock<String>,
}

/// A running loopback GitHub; stops when dropped.
pub struct LoopbackGitHub {
    inner: Arc<Inner>,
    api: SocketAddr,
    blob: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for LoopbackGitHub {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl LoopbackGitHub {
    /// Start on two free ports of 127.0.0.1 (the API and the log storage). Loads GitHub's OpenAPI
    /// description (panics with the command to install it when it is missing).
    pub async fn start(opts: Options) -> Self {
        let _ = openapi::spec();
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            records: Mutex::new(Vec::new()),
            blobs: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            used: Mutex::new(HashMap::new()),
            opts,
            base: OnceLock::new(),
            blob_base: OnceLock::new(),
        });
        let api_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback API");
        let blob_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback log storage");
        let (api, blob) = (api_l.local_addr().unwrap(), blob_l.local_addr().unwrap());
        let _ = inner.base.set(format!("http://{api}{}", inner.opts.prefix));
        let _ = inner.blob_base.set(format!("http://{blob}"));
        let api_app = axum::Router::new().fallback(api_handler).with_state(inner.clone());
        let blob_app = axum::Router::new().fallback(blob_handler).with_state(inner.clone());
        let tasks = vec![
            tokio::spawn(async move {
                let _ = axum::serve(api_l, api_app).await;
            }),
            tokio::spawn(async move {
                let _ = axum::serve(blob_l, blob_app).await;
            }),
        ];
        Self { inner, api, blob, tasks }
    }

    /// The REST API base URL (`github.apiUrl`).
    pub fn api_url(&self) -> String {
        self.inner.base.get().cloned().unwrap_or_default()
    }

    /// The state, to seed or inspect.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.records.lock().unwrap().clone()
    }

    /// The operations received, in order.
    pub fn operations(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.operation).collect()
    }

    /// Requests to the log storage.
    pub fn blob_requests(&self) -> Vec<BlobRequest> {
        self.inner.blobs.lock().unwrap().clone()
    }

    /// Every way a request differed from GitHub's description, and every answer of the loopback
    /// that did (a loopback bug). Tests assert this is empty.
    pub fn violations(&self) -> Vec<String> {
        self.inner.violations.lock().unwrap().clone()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.inner.records.lock().unwrap().clear();
        self.inner.blobs.lock().unwrap().clear();
    }

    /// Add a fault.
    pub fn fault(&self, f: Fault) {
        self.inner.faults.lock().unwrap().push(f);
    }

    /// Hold the next request of `operation`; returns its handle.
    pub fn hold(&self, operation: &str) -> Hold {
        let h = Hold::default();
        self.fault(Fault { operation: operation.into(), times: 1, kind: FaultKind::Hold(h.clone()) });
        h
    }
}

fn auth_of(headers: &HeaderMap, st: &State) -> Who {
    let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) else { return Who::Anonymous };
    let token = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("token ")).unwrap_or(v).trim();
    if token.matches('.').count() == 2 {
        let Some(app) = &st.auth.app else { return Who::Invalid("no App is registered".into()) };
        let key = match jsonwebtoken::DecodingKey::from_rsa_pem(app.public_key_pem.as_bytes()) {
            Ok(k) => k,
            Err(e) => return Who::Invalid(format!("bad App public key: {e}")),
        };
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        // `iss` is the App id as a number, which jsonwebtoken's string claim check does not read: checked below.
        v.set_required_spec_claims(&["exp"]);
        v.leeway = 0;
        #[derive(serde::Deserialize)]
        struct Claims {
            iss: Value,
            iat: i64,
            exp: i64,
        }
        return match jsonwebtoken::decode::<Claims>(token, &key, &v) {
            Ok(d) => {
                let iss = d.claims.iss.as_i64().or_else(|| d.claims.iss.as_str().and_then(|s| s.parse().ok()));
                if iss != Some(app.id) {
                    Who::Invalid(format!("JWT iss {:?} is not App {}", d.claims.iss, app.id))
                } else if d.claims.exp - d.claims.iat > 660 {
                    Who::Invalid("JWT lives longer than 10 minutes".into())
                } else {
                    Who::App(app.id)
                }
            }
            Err(e) => Who::Invalid(format!("JWT: {e}")),
        };
    }
    if let Some(m) = st.minted.get(token) {
        if m.expires <= std::time::Instant::now() {
            return Who::Invalid("installation token expired".into());
        }
        return Who::Installation(m.installation_id);
    }
    match st.auth.tokens.get(token) {
        Some(login) => Who::Token(login.clone()),
        None => Who::Invalid("unknown token".into()),
    }
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (openapi::decode(k, true), openapi::decode(v, true))
        })
        .collect()
}

fn respond(status: u16, headers: Vec<(String, String)>, body: Option<&Value>) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (k, v) in &headers {
        b = b.header(k.as_str(), v.as_str());
    }
    match body {
        Some(v) => b
            .header("content-type", "application/json; charset=utf-8")
            .body(Body::from(serde_json::to_vec(v).unwrap()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

async fn api_handler(AxState(inner): AxState<Arc<Inner>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let seq = inner.seq.fetch_add(1, Ordering::SeqCst) + 1;
    let method = parts.method.to_string();
    let raw_path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query());
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let (json_body, not_json) = if bytes.is_empty() {
        (None, false)
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => (Some(v), false),
            Err(_) => (None, true),
        }
    };
    // Admin routes (not GitHub's): read what the loopback saw.
    if let Some(what) = raw_path.strip_prefix("/_loopback/") {
        let v = match what {
            "requests" => serde_json::to_value(inner.records.lock().unwrap().clone()).unwrap(),
            "violations" => serde_json::to_value(inner.violations.lock().unwrap().clone()).unwrap(),
            "blobs" => serde_json::to_value(inner.blobs.lock().unwrap().clone()).unwrap(),
            "state" => {
                let st = inner.state.lock().unwrap();
                json!(st.repos.values().map(|r| json!({
                    "repository": r.full_name(), "refs": r.refs, "pulls": r.pulls, "comments": r.comments,
                    "checkRuns": r.check_runs, "statuses": r.statuses,
                    "jobReruns": r.jobs.values().map(|j| json!({"id": j.id, "reruns": j.reruns})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>())
            }
            _ => json!({"message": "unknown loopback route"}),
        };
        return respond(200, vec![], Some(&v));
    }
    let record = |operation: &str, who: &str, status: u16| Recorded {
        seq,
        method: method.clone(),
        path: raw_path.strip_prefix(inner.opts.prefix.as_str()).unwrap_or(&raw_path).to_string(),
        query: query.clone(),
        operation: operation.into(),
        auth: who.into(),
        if_none_match: header("if-none-match"),
        range: header("range"),
        body: json_body.clone(),
        status,
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
    };
    let Some(path) = raw_path.strip_prefix(inner.opts.prefix.as_str()).filter(|p| p.starts_with('/')) else {
        inner
            .violations
            .lock()
            .unwrap()
            .push(format!("{method} {raw_path}: outside the API prefix {:?}", inner.opts.prefix));
        inner.records.lock().unwrap().push(record("", "", 404));
        return respond(404, vec![], Some(&json!({"message": "Not Found"})));
    };
    // GitHub's GraphQL endpoint: checked against GitHub's GraphQL schema, not the REST description.
    if method == "POST" && path == "/graphql" {
        let who = auth_of(&parts.headers, &inner.state.lock().unwrap());
        if matches!(who, Who::Anonymous | Who::Invalid(_)) {
            inner.records.lock().unwrap().push(record("graphql", &who.label(), 401));
            return respond(401, vec![], Some(&json!({"message": "This endpoint requires you to be authenticated."})));
        }
        let problems = graphql::check(&bytes).await;
        if !problems.is_empty() {
            inner.violations.lock().unwrap().extend(problems.iter().map(|p| format!("POST /graphql: {p}")));
            inner.records.lock().unwrap().push(record("graphql", &who.label(), 200));
            let errors: Vec<Value> = problems.iter().map(|p| json!({"message": p})).collect();
            return respond(200, vec![], Some(&json!({"errors": errors})));
        }
        let body = json_body.clone().unwrap_or_default();
        let (op, answer) = graphql::handle(&mut inner.state.lock().unwrap(), &body);
        inner.records.lock().unwrap().push(record(&format!("graphql/{op}"), &who.label(), 200));
        return respond(200, vec![], Some(&answer));
    }
    let spec = openapi::spec();
    let Some((op, params)) = spec.find(&method, path) else {
        inner.violations.lock().unwrap().push(format!("{method} {path}: not an operation of GitHub's REST API"));
        inner.records.lock().unwrap().push(record("", "", 404));
        return respond(
            404,
            vec![],
            Some(&json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
        );
    };
    let problems = spec.check_request(
        op,
        &params,
        &openapi::RequestView {
            method: &method,
            path,
            query: &query,
            body: json_body.as_ref(),
            body_not_json: not_json,
        },
    );
    let who = auth_of(&parts.headers, &inner.state.lock().unwrap());
    if !problems.is_empty() {
        inner.violations.lock().unwrap().extend(problems.iter().cloned());
        inner.records.lock().unwrap().push(record(&op.id, &who.label(), 422));
        return respond(422, vec![], Some(&json!({"message": "Invalid request.", "errors": problems})));
    }
    // Faults.
    let fault = {
        let mut faults = inner.faults.lock().unwrap();
        let pos = faults.iter().position(|f| (f.operation == op.id || f.operation == "*") && f.times > 0);
        pos.map(|i| {
            faults[i].times -= 1;
            faults[i].kind.clone()
        })
    };
    match fault {
        Some(FaultKind::Status { status, headers, message }) => {
            inner.records.lock().unwrap().push(record(&op.id, &who.label(), status));
            let body = json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()});
            return respond(status, headers, Some(&body));
        }
        Some(FaultKind::Hold(h)) => {
            h.is_held.store(true, Ordering::SeqCst);
            h.held.notify_waiters();
            loop {
                let n = h.release.notified();
                if h.released.load(Ordering::SeqCst) {
                    break;
                }
                n.await;
            }
            inner.records.lock().unwrap().push(record(&op.id, &who.label(), 503));
            return respond(503, vec![], Some(&json!({"message": "held by the test and released unhandled"})));
        }
        None => {}
    }
    let base = inner.base.get().cloned().unwrap_or_default();
    let blob_base = inner.blob_base.get().cloned().unwrap_or_default();
    let reply: Reply = {
        let mut st = inner.state.lock().unwrap();
        handlers::handle(
            &mut st,
            &Ctx {
                op,
                params: &params,
                query: &query,
                body: json_body.as_ref(),
                who: &who,
                base: &base,
                blob_base: &blob_base,
                spec: &spec,
            },
        )
    };
    if reply.status == 501 {
        inner.violations.lock().unwrap().push(format!("{}: not implemented by the loopback", op.id));
    }
    if (200..300).contains(&reply.status)
        && let Some(b) = &reply.body
    {
        for p in spec.check_response(op, reply.status, b) {
            inner.violations.lock().unwrap().push(format!("loopback answer: {p}"));
        }
    }
    let mut headers = reply.headers.clone();
    let mut status = reply.status;
    let mut body = reply.body.clone();
    if method == "GET" && status == 200 {
        let etag = format!("W/\"{}\"", state::object_id("etag", &serde_json::to_vec(&body).unwrap_or_default()));
        if header("if-none-match").as_deref() == Some(etag.as_str()) {
            status = 304;
            body = None;
        }
        headers.push(("etag".into(), etag));
    }
    // Rate-limit headers; a 304 costs nothing (GitHub's conditional-request rule).
    let used = {
        let mut u = inner.used.lock().unwrap();
        let n = u.entry(who.label()).or_insert(0);
        if status != 304 {
            *n += 1;
        }
        *n
    };
    let reset = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    headers.extend([
        ("x-ratelimit-limit".to_string(), "5000".to_string()),
        ("x-ratelimit-remaining".to_string(), 5000u64.saturating_sub(used).to_string()),
        ("x-ratelimit-used".to_string(), used.to_string()),
        ("x-ratelimit-reset".to_string(), reset.to_string()),
        ("x-ratelimit-resource".to_string(), "core".to_string()),
        ("x-github-request-id".to_string(), format!("LOOPBACK:{seq}")),
    ]);
    inner.records.lock().unwrap().push(record(&op.id, &who.label(), status));
    respond(status, headers, body.as_ref())
}

/// A fixed-width filler line of generated logs (so any byte offset is computable).
const FILLER: &[u8] = b"2024-05-01T10:00:00.0000000Z npm verb filler output of a long build, nothing to see here\n";

fn generated_range(total: u64, tail: Vec<u8>, start: u64, end: u64) -> impl Iterator<Item = Vec<u8>> {
    let filler_len = total.saturating_sub(tail.len() as u64);
    let mut pos = start;
    std::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let n = (end - pos).min(64 << 10);
        let mut chunk = Vec::with_capacity(n as usize);
        for i in pos..pos + n {
            chunk.push(if i < filler_len {
                FILLER[(i % FILLER.len() as u64) as usize]
            } else {
                tail[(i - filler_len) as usize]
            });
        }
        pos += n;
        Some(chunk)
    })
}

async fn blob_handler(AxState(inner): AxState<Arc<Inner>>, req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = parse_query(req.uri().query());
    let had_authorization = req.headers().contains_key("authorization");
    let range = req.headers().get("range").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut rec = BlobRequest { path: path.clone(), had_authorization, range: range.clone(), status: 404, bytes: 0 };
    // /logs/{owner}/{repo}/{job_id}?urlSignature=…
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let found = (parts.len() == 4 && parts[0] == "logs")
        .then(|| {
            let full = format!("{}/{}", parts[1], parts[2]);
            let id: i64 = parts[3].parse().ok()?;
            let sig = state::object_id(
                "sig",
                format!("{}-{id}", inner.state.lock().unwrap().repo(&full)?.full_name()).as_bytes(),
            );
            if query.iter().find(|(k, _)| k == "urlSignature").map(|(_, v)| v.as_str()) != Some(sig.as_str()) {
                return None;
            }
            inner.state.lock().unwrap().repo(&full)?.jobs.get(&id).map(|j| j.log.clone())
        })
        .flatten();
    let (total, tail, text): (u64, Vec<u8>, Option<Vec<u8>>) = match found {
        Some(Log::Text(t)) => (t.len() as u64, vec![], Some(t.into_bytes())),
        Some(Log::Generated { total, tail }) => (total.max(tail.len() as u64), tail.into_bytes(), None),
        _ => {
            inner.blobs.lock().unwrap().push(rec);
            return respond(404, vec![], None);
        }
    };
    let suffix = range
        .as_deref()
        .filter(|_| !inner.opts.blob_ignores_range)
        .and_then(|r| r.strip_prefix("bytes=-"))
        .and_then(|n| n.trim().parse::<u64>().ok());
    let (start, status) = match suffix {
        Some(n) if n < total => (total - n, 206),
        _ => (0, 200),
    };
    rec.status = status;
    rec.bytes = total - start;
    inner.blobs.lock().unwrap().push(rec);
    let mut b = Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .header("content-length", (total - start).to_string());
    if status == 206 {
        b = b.header("content-range", format!("bytes {start}-{}/{total}", total - 1));
    }
    let body = match text {
        Some(t) => Body::from(t[start as usize..].to_vec()),
        None => {
            let it = generated_range(total, tail, start, total).map(|c| Ok::<_, std::io::Error>(bytes::Bytes::from(c)));
            Body::from_stream(futures::stream::iter(it))
        }
    };
    let _ = StatusCode::OK;
    b.body(body).unwrap()
}

/// An RSA key pair for a test App, made with `openssl` (PKCS#1 private key, as GitHub generates
/// them; SPKI public key). Returns `(private_pem, public_pem)`.
pub fn app_keypair() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("app.pem");
    let ok = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(ok.success(), "openssl genrsa failed");
    let public = std::process::Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .output()
        .unwrap();
    (std::fs::read_to_string(&key).unwrap(), String::from_utf8(public.stdout).unwrap())
}
