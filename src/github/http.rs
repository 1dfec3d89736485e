//! The transport under every GitHub call: octocrab's HTTP stack (base URL, authentication, redirects,
//! connect/read timeouts) with what the controller needs on top of it, in one place:
//!
//! - **a deadline and a size bound on every call** ([`Limits`]);
//! - **rate limits** read from `x-ratelimit-remaining` / `x-ratelimit-reset` (primary: once the
//!   remaining count is 0, calls fail fast with [`Error::RateLimited`] until the reset) and from
//!   403/429 answers with `Retry-After` or GitHub's "secondary rate limit" message. A rate-limited call
//!   never sleeps inside a reconcile: it returns the wait, and the controller requeues;
//! - **5xx retried with backoff** for reads (GET); a write that got a 5xx is returned at once,
//!   because the write may have happened and the caller looks it up before writing again;
//! - **conditional requests** (`If-None-Match` with the ETag of the last answer) for reads marked
//!   [`Call::conditional`]; a `304 Not Modified` is answered from a bounded cache and costs no rate
//!   limit (GitHub's "use conditional requests" guidance).
//!
//! Octocrab's own retry layer (which sleeps until a rate limit resets, inside the call) and its
//! in-memory ETag cache (unbounded, and panics on a 304 whose entry is gone) are not used; its
//! request tracing is off because it would log redirect URLs, whose query strings are credentials.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use octocrab::Octocrab;
use serde::de::DeserializeOwned;

use super::error::{Error, Result};

/// Bounds of every call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Deadline of one call, body included. Default 30 s.
    pub request_timeout: Duration,
    /// Largest JSON answer read, in bytes. Default 8 MiB.
    pub max_response_bytes: usize,
    /// Extra tries of a GET that got a 5xx. Default 2.
    pub server_retries: u32,
    /// First backoff after a 5xx (doubles). Default 500 ms.
    pub server_backoff: Duration,
    /// Wait when GitHub signals a secondary rate limit without `Retry-After`. Default 60 s.
    pub default_rate_limit_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 8 << 20,
            server_retries: 2,
            server_backoff: Duration::from_millis(500),
            default_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

/// One finished call, for metrics and logs: the operation (GitHub's `operationId`), the status
/// (0 when no answer came), and the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// GitHub's OpenAPI `operationId`, e.g. `pulls/create`.
    pub operation: &'static str,
    /// The HTTP method.
    pub method: Method,
    /// Status code of the last answer; 0 when none came.
    pub status: u16,
    /// `ok`, `not_modified`, `rate_limited`, `server_error`, `transport_error` or `client_error`.
    pub outcome: &'static str,
    /// For `rate_limited`: the wait GitHub asked for.
    pub wait: Option<Duration>,
}

/// Receives every [`CallRecord`] (the controller's metrics).
pub type Observer = std::sync::Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// A request to GitHub's REST API: a relative path (the client adds the base URL), an optional
/// JSON body, and the operation's `operationId` for metrics.
#[derive(Debug, Clone)]
pub struct Call {
    pub(crate) operation: &'static str,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Option<serde_json::Value>,
    pub(crate) accept: &'static str,
    pub(crate) conditional: bool,
    pub(crate) extra_headers: Vec<(header::HeaderName, String)>,
}

impl Call {
    fn new(operation: &'static str, method: Method, path: String) -> Self {
        Self {
            operation,
            method,
            path,
            query: Vec::new(),
            body: None,
            accept: "application/vnd.github+json",
            conditional: false,
            extra_headers: Vec::new(),
        }
    }
    /// `GET path`.
    pub fn get(operation: &'static str, path: impl Into<String>) -> Self {
        Self::new(operation, Method::GET, path.into())
    }
    /// `POST path` with a JSON body.
    pub fn post(operation: &'static str, path: impl Into<String>, body: serde_json::Value) -> Self {
        Self { body: Some(body), ..Self::new(operation, Method::POST, path.into()) }
    }
    /// `PATCH path` with a JSON body.
    pub fn patch(operation: &'static str, path: impl Into<String>, body: serde_json::Value) -> Self {
        Self { body: Some(body), ..Self::new(operation, Method::PATCH, path.into()) }
    }
    /// `DELETE path`.
    pub fn delete(operation: &'static str, path: impl Into<String>) -> Self {
        Self::new(operation, Method::DELETE, path.into())
    }
    /// Add a query parameter.
    pub fn query(mut self, k: &str, v: impl ToString) -> Self {
        self.query.push((k.into(), v.to_string()));
        self
    }
    /// Send `If-None-Match` with the ETag of the last answer to the same path and query.
    pub fn conditional(mut self) -> Self {
        self.conditional = true;
        self
    }
    /// Ask for another media type (e.g. `application/vnd.github.raw+json`).
    pub fn accept(mut self, accept: &'static str) -> Self {
        self.accept = accept;
        self
    }
    /// Add a request header (e.g. `Range`).
    pub fn header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.extra_headers.push((name, value.into()));
        self
    }

    fn uri(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        format!("{}?{}", self.path, q.join("&"))
    }
}

/// Percent-encode a query component (RFC 3986 unreserved characters pass).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encode one path segment (a branch name may hold `/`, which GitHub wants kept in refs
/// paths; use this only for segments that must stay one segment, such as a label name).
pub fn encode_segment(s: &str) -> String {
    encode(s)
}

/// What the rate-limit headers and status of an answer mean. Pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitSignal {
    /// Not limited.
    None,
    /// This answer was refused by the primary limit; wait this long.
    Primary(Duration),
    /// This answer was refused by a secondary limit; wait this long.
    Secondary(Duration),
}

/// Classify an answer's rate-limit state from its status, headers and body text, at `now`
/// (seconds since the Unix epoch). Follows GitHub's "Rate limits for the REST API":
/// 403/429 with `x-ratelimit-remaining: 0` wait until `x-ratelimit-reset`; 403/429 with
/// `Retry-After` wait that many seconds; a 403/429 whose message names a secondary rate limit waits
/// `default_wait`. A 429 is always a rate limit.
pub fn rate_limit_signal(
    status: u16,
    headers: &HeaderMap,
    body: &str,
    now: u64,
    default_wait: Duration,
) -> RateLimitSignal {
    if status != 403 && status != 429 {
        return RateLimitSignal::None;
    }
    let num = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(secs) = num("retry-after") {
        return RateLimitSignal::Secondary(Duration::from_secs(secs.max(1)));
    }
    if num("x-ratelimit-remaining") == Some(0) {
        let wait = num("x-ratelimit-reset").map(|r| r.saturating_sub(now).max(1)).unwrap_or(default_wait.as_secs());
        return RateLimitSignal::Primary(Duration::from_secs(wait));
    }
    let lower = body.to_ascii_lowercase();
    if status == 429 || lower.contains("secondary rate limit") || lower.contains("abuse detection") {
        return RateLimitSignal::Secondary(default_wait);
    }
    RateLimitSignal::None
}

/// When a successful answer says the primary limit is used up, the instant it resets. Pure.
pub fn exhausted_until(headers: &HeaderMap, now: u64) -> Option<Duration> {
    let num = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    (num("x-ratelimit-remaining")? == 0)
        .then(|| Duration::from_secs(num("x-ratelimit-reset").unwrap_or(now + 60).saturating_sub(now).max(1)))
}

fn now_epoch() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Cached `(etag, body)` per key, and the keys oldest first.
type EtagEntries = (HashMap<String, (String, Bytes)>, VecDeque<String>);

/// A bounded cache of the last answer per path for conditional requests: at most `max_entries`
/// entries of at most `max_entry_bytes` each; the oldest is dropped first.
#[derive(Debug)]
pub struct EtagCache {
    inner: Mutex<EtagEntries>,
    max_entries: usize,
    max_entry_bytes: usize,
}

impl EtagCache {
    /// An empty cache.
    pub fn new(max_entries: usize, max_entry_bytes: usize) -> Self {
        Self { inner: Mutex::new((HashMap::new(), VecDeque::new())), max_entries, max_entry_bytes }
    }
    fn etag(&self, key: &str) -> Option<String> {
        self.inner.lock().expect("etag cache").0.get(key).map(|(e, _)| e.clone())
    }
    fn body(&self, key: &str) -> Option<Bytes> {
        self.inner.lock().expect("etag cache").0.get(key).map(|(_, b)| b.clone())
    }
    fn put(&self, key: String, etag: String, body: Bytes) {
        if body.len() > self.max_entry_bytes || self.max_entries == 0 {
            return;
        }
        let mut g = self.inner.lock().expect("etag cache");
        let (map, order) = &mut *g;
        if map.insert(key.clone(), (etag, body)).is_none() {
            order.push_back(key);
        }
        while map.len() > self.max_entries {
            match order.pop_front() {
                Some(old) => {
                    map.remove(&old);
                }
                None => break,
            }
        }
    }
}

/// An answer with its status, headers and (bounded) body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code (after redirects).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most [`Limits::max_response_bytes`].
    pub body: Bytes,
}

impl Answer {
    /// Decode the body as JSON.
    pub fn json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode { path: path.into(), message: e.to_string() })
    }
}

/// The transport of one identity (one token or one App installation).
pub struct Transport {
    crab: Octocrab,
    limits: Limits,
    etags: EtagCache,
    exhausted_until: Mutex<Option<Instant>>,
    observer: Option<Observer>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("limits", &self.limits).finish_non_exhaustive()
    }
}

type RawResponse = http::Response<BoxBody<Bytes, octocrab::Error>>;

impl Transport {
    /// Wrap an authenticated octocrab client.
    pub fn new(crab: Octocrab, limits: Limits, observer: Option<Observer>) -> Self {
        Self { crab, limits, etags: EtagCache::new(256, 256 << 10), exhausted_until: Mutex::new(None), observer }
    }

    /// The limits this transport applies.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn observe(&self, call: &Call, status: u16, outcome: &'static str, wait: Option<Duration>) {
        if let Some(o) = &self.observer {
            o(&CallRecord { operation: call.operation, method: call.method.clone(), status, outcome, wait });
        }
        tracing::debug!(operation = call.operation, method = %call.method, path = %call.path, status, outcome, "GitHub call");
    }

    /// Send `call` and return the answer when its status is 2xx (or 304 served from the cache).
    /// Errors: see [`Error`]; 3xx other than redirects, 4xx and 5xx become the matching variant.
    pub async fn send(&self, call: &Call) -> Result<Answer> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(call).await {
                Err(Error::Server { .. } | Error::Transport { .. })
                    if call.method == Method::GET && attempt <= self.limits.server_retries =>
                {
                    let backoff = self.limits.server_backoff * 2u32.saturating_pow(attempt - 1);
                    tokio::time::sleep(backoff).await;
                }
                Err(Error::Server { method, path, status, .. }) => {
                    return Err(Error::Server { method, path, status, attempts: attempt });
                }
                other => return other,
            }
        }
    }

    /// Send `call` and decode a 2xx JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, call: &Call) -> Result<T> {
        self.send(call).await?.json(&call.path)
    }

    /// Send `call` and return the streaming response when its status is 2xx; the caller reads the
    /// body under its own bound (job logs). Errors as [`Transport::send`], plus 410 → [`Error::Gone`].
    pub async fn stream(&self, call: &Call) -> Result<RawResponse> {
        self.check_exhausted(call)?;
        let deadline = self.limits.request_timeout;
        let resp = match tokio::time::timeout(deadline, self.raw(call)).await {
            Ok(r) => r?,
            Err(_) => return Err(self.timeout(call)),
        };
        let status = resp.status();
        if status.is_success() {
            self.note_headers(resp.headers());
            self.observe(call, status.as_u16(), "ok", None);
            return Ok(resp);
        }
        let (parts, body) = resp.into_parts();
        let text = read_bounded(body, 64 << 10, &call.path).await.unwrap_or_default();
        Err(self.error_for(call, parts.status, &parts.headers, &String::from_utf8_lossy(&text)))
    }

    async fn send_once(&self, call: &Call) -> Result<Answer> {
        self.check_exhausted(call)?;
        let key = call.uri();
        let etag = if call.conditional { self.etags.etag(&key) } else { None };
        let mut call_h = call.clone();
        if let Some(e) = &etag {
            call_h.extra_headers.push((header::IF_NONE_MATCH, e.clone()));
        }
        let limit = self.limits.max_response_bytes;
        let fut = async {
            let resp = self.raw(&call_h).await?;
            let (parts, body) = resp.into_parts();
            let body = read_bounded(body, limit, &call.path).await?;
            Ok::<_, Error>((parts, body))
        };
        let (parts, body) = match tokio::time::timeout(self.limits.request_timeout, fut).await {
            Ok(r) => r?,
            Err(_) => return Err(self.timeout(call)),
        };
        let status = parts.status;
        if status == StatusCode::NOT_MODIFIED
            && let Some(cached) = self.etags.body(&key)
        {
            self.note_headers(&parts.headers);
            self.observe(call, 304, "not_modified", None);
            return Ok(Answer { status: StatusCode::OK, headers: parts.headers, body: cached });
        }
        if status.is_success() {
            self.note_headers(&parts.headers);
            if call.conditional
                && let Some(e) = parts.headers.get(header::ETAG).and_then(|v| v.to_str().ok())
            {
                self.etags.put(key, e.to_string(), body.clone());
            }
            self.observe(call, status.as_u16(), "ok", None);
            return Ok(Answer { status, headers: parts.headers, body });
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        Err(self.error_for(call, status, &parts.headers, &text))
    }

    fn check_exhausted(&self, call: &Call) -> Result<()> {
        let until = *self.exhausted_until.lock().expect("rate limit state");
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                let wait = until - now;
                self.observe(call, 0, "rate_limited", Some(wait));
                return Err(Error::RateLimited { path: call.path.clone(), kind: "primary", retry_after: wait });
            }
        }
        Ok(())
    }

    fn note_headers(&self, headers: &HeaderMap) {
        if let Some(wait) = exhausted_until(headers, now_epoch()) {
            *self.exhausted_until.lock().expect("rate limit state") = Some(Instant::now() + wait);
        }
    }

    fn timeout(&self, call: &Call) -> Error {
        self.observe(call, 0, "transport_error", None);
        Error::Transport {
            method: call.method.to_string(),
            path: call.path.clone(),
            message: format!("no complete answer within {}s", self.limits.request_timeout.as_secs()),
        }
    }

    fn error_for(&self, call: &Call, status: StatusCode, headers: &HeaderMap, body: &str) -> Error {
        let code = status.as_u16();
        let method = call.method.to_string();
        let path = call.path.clone();
        match rate_limit_signal(code, headers, body, now_epoch(), self.limits.default_rate_limit_wait) {
            RateLimitSignal::Primary(wait) => {
                *self.exhausted_until.lock().expect("rate limit state") = Some(Instant::now() + wait);
                self.observe(call, code, "rate_limited", Some(wait));
                return Error::RateLimited { path, kind: "primary", retry_after: wait };
            }
            RateLimitSignal::Secondary(wait) => {
                self.observe(call, code, "rate_limited", Some(wait));
                return Error::RateLimited { path, kind: "secondary", retry_after: wait };
            }
            RateLimitSignal::None => {}
        }
        let message = github_message(body);
        if status.is_server_error() {
            self.observe(call, code, "server_error", None);
            return Error::Server { method, path, status: code, attempts: 1 };
        }
        self.observe(call, code, "client_error", None);
        match code {
            401 => Error::Unauthorized { path, message },
            403 => Error::Forbidden { method, path, message },
            404 | 410 => Error::NotFound { path, status: code },
            400 | 409 | 422 => Error::Rejected { method, path, status: code, message },
            _ => Error::Unexpected { method, path, status: code, message },
        }
    }

    async fn raw(&self, call: &Call) -> Result<RawResponse> {
        let transport = |e: octocrab::Error| {
            self.observe(call, 0, "transport_error", None);
            Error::Transport { method: call.method.to_string(), path: call.path.clone(), message: short_error(&e) }
        };
        let mut b = http::Request::builder()
            .method(call.method.clone())
            .uri(call.uri())
            .header(header::ACCEPT, call.accept)
            .header(header::USER_AGENT, concat!("ci-healer/", env!("CARGO_PKG_VERSION")));
        for (k, v) in &call.extra_headers {
            b = b.header(k, v);
        }
        let req = self.crab.build_request(b, call.body.as_ref()).map_err(transport)?;
        self.crab.execute(req).await.map_err(transport)
    }
}

/// Read at most `limit` bytes of a body. Errors: [`Error::TooLarge`] past the bound, transport errors.
pub(crate) async fn read_bounded(mut body: BoxBody<Bytes, octocrab::Error>, limit: usize, path: &str) -> Result<Bytes> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Transport {
            method: "GET".into(),
            path: path.into(),
            message: short_error(&e),
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(Error::TooLarge { path: path.into(), limit });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// The first line of an HTTP client error, without octocrab's backtrace.
fn short_error(e: &octocrab::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s = format!("{s}: {inner}");
        src = inner.source();
    }
    s.lines().next().unwrap_or("").chars().take(300).collect()
}

/// GitHub's error `message` and its `errors[].message`/`code`s, from an error body. Pure.
pub fn github_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.chars().take(200).collect();
    };
    let mut msg = v.get("message").and_then(|m| m.as_str()).unwrap_or("").to_string();
    if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
        let details: Vec<String> = errs
            .iter()
            .filter_map(|e| {
                e.get("message").and_then(|m| m.as_str()).map(str::to_string).or_else(|| {
                    let field = e.get("field").and_then(|f| f.as_str()).unwrap_or("");
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    (!code.is_empty()).then(|| format!("{field} {code}").trim().to_string())
                })
            })
            .collect();
        if !details.is_empty() {
            msg = format!("{msg} ({})", details.join("; "));
        }
    }
    msg.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        m
    }

    #[test]
    fn rate_limit_table() {
        let d = Duration::from_secs(60);
        let s = |status, headers: &[(&str, &str)], body| rate_limit_signal(status, &h(headers), body, 1000, d);
        // Primary: remaining 0 waits until the reset.
        assert_eq!(
            s(403, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1030")], ""),
            RateLimitSignal::Primary(Duration::from_secs(30))
        );
        assert_eq!(
            s(429, &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")], ""),
            RateLimitSignal::Primary(Duration::from_secs(1))
        );
        // Secondary with Retry-After wins over the remaining count.
        assert_eq!(
            s(403, &[("retry-after", "7"), ("x-ratelimit-remaining", "0")], ""),
            RateLimitSignal::Secondary(Duration::from_secs(7))
        );
        assert_eq!(s(429, &[("retry-after", "0")], ""), RateLimitSignal::Secondary(Duration::from_secs(1)));
        // Secondary named in the message, no header.
        assert_eq!(
            s(403, &[], r#"{"message":"You have exceeded a secondary rate limit."}"#),
            RateLimitSignal::Secondary(d)
        );
        assert_eq!(s(429, &[], ""), RateLimitSignal::Secondary(d));
        // A plain 403 is a permission problem, not a limit; other statuses never are.
        assert_eq!(
            s(403, &[("x-ratelimit-remaining", "4999")], r#"{"message":"Resource not accessible by integration"}"#),
            RateLimitSignal::None
        );
        assert_eq!(s(500, &[("retry-after", "5")], ""), RateLimitSignal::None);
        assert_eq!(s(200, &[("x-ratelimit-remaining", "0")], ""), RateLimitSignal::None);
    }

    #[test]
    fn exhausted_after_a_successful_answer() {
        assert_eq!(
            exhausted_until(&h(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1100")]), 1000),
            Some(Duration::from_secs(100))
        );
        assert_eq!(exhausted_until(&h(&[("x-ratelimit-remaining", "1")]), 1000), None);
        assert_eq!(exhausted_until(&h(&[]), 1000), None);
    }

    #[test]
    fn etag_cache_is_bounded() {
        let c = EtagCache::new(2, 4);
        c.put("a".into(), "e1".into(), Bytes::from_static(b"1"));
        c.put("b".into(), "e2".into(), Bytes::from_static(b"2"));
        c.put("big".into(), "e3".into(), Bytes::from_static(b"12345"));
        assert_eq!(c.etag("big"), None, "entries over the byte bound are not kept");
        c.put("c".into(), "e4".into(), Bytes::from_static(b"3"));
        assert_eq!(c.etag("a"), None, "the oldest entry goes first");
        assert_eq!(c.etag("b").as_deref(), Some("e2"));
        assert_eq!(c.body("c").as_deref(), Some(&b"3"[..]));
    }

    #[test]
    fn messages_and_query_encoding() {
        assert_eq!(
            github_message(
                r#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for o:b."}]}"#
            ),
            "Validation Failed (A pull request already exists for o:b.)"
        );
        assert_eq!(
            github_message(
                r#"{"message":"Reference already exists","errors":[{"field":"ref","code":"already_exists"}]}"#
            ),
            "Reference already exists (ref already_exists)"
        );
        let c = Call::get("x", "/repos/o/r/pulls").query("head", "o:ci-healer/run 1").query("state", "all");
        assert_eq!(c.uri(), "/repos/o/r/pulls?head=o%3Aci-healer%2Frun%201&state=all");
    }
}
