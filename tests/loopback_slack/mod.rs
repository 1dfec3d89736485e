//! A loopback Slack for tests (test support only, never part of the `healer` binary).
//!
//! It speaks Slack's Web API (`POST /chat.postMessage`, `POST /chat.update`,
//! `GET /conversations.history`) and incoming webhooks (`POST /services/…`), and **checks every
//! Web API request against Slack's own published OpenAPI description**
//! (`tests/fixtures/slack-web-api/`, see its PROVENANCE.md): the operation exists for the path and
//! method, the content type is one the operation consumes, every field is a documented parameter
//! of the right type, required ones are present, and the bot token comes as `Authorization:
//! Bearer`. A request Slack's description does not allow is answered as Slack would
//! (`invalid_arg_name`, `invalid_form_data`, …) and recorded in [`LoopbackSlack::violations`].
//! Its own answers are checked against the operation's documented success or error schema (an
//! error code outside the operation's documented list is a loopback bug, also a violation).
//!
//! It keeps messages per channel (updates in place, thread replies), records every request
//! ([`LoopbackSlack::requests`]), and can be told to answer HTTP 500, or 429 with `Retry-After`,
//! until told otherwise ([`LoopbackSlack::fault`]).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, Method, Response, Uri};
use serde_json::{Value, json};

/// Where the vendored description is.
const SPEC: &str = "tests/fixtures/slack-web-api/slack_web_openapi_v2.subset.json";

/// One request the loopback received.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// From 1.
    pub seq: u64,
    /// `chat.postMessage`, `chat.update`, `conversations.history`, or `webhook`.
    pub method: String,
    /// The JSON body (Web API POST, webhook), or the query as an object (GET).
    pub body: Value,
    /// The HTTP status answered.
    pub status: u16,
    /// The `error` answered with `ok: false`, if any.
    pub error: Option<String>,
    /// Every header as received (lower-case names, `Authorization` included), for the secret scans.
    pub headers: Vec<(String, String)>,
}

/// A message as the loopback keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Channel id.
    pub channel: String,
    /// `ts`.
    pub ts: String,
    /// The parent's `ts` for a thread reply.
    pub thread_ts: Option<String>,
    /// The current text.
    pub text: String,
    /// The current blocks.
    pub blocks: Value,
    /// How many times `chat.update` changed it.
    pub updates: u32,
}

/// What the loopback answers instead of serving a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// HTTP 500.
    ServerError,
    /// HTTP 429 with `Retry-After: secs`.
    RateLimited(u64),
}

#[derive(Default)]
struct State {
    token: String,
    channels: BTreeMap<String, String>,
    messages: Vec<StoredMessage>,
    records: Vec<Recorded>,
    violations: Vec<String>,
    fault: Option<Fault>,
    faulted: u64,
    next_ts: u64,
    webhook_path: String,
}

struct Inner {
    spec: Value,
    state: Mutex<State>,
    base: OnceLock<String>,
}

/// The loopback Slack.
pub struct LoopbackSlack {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LoopbackSlack {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LoopbackSlack {
    /// Start on a free port of 127.0.0.1, accepting `token` as the bot token, with the channels
    /// `(id, name)`.
    pub async fn start(token: &str, channels: &[(&str, &str)]) -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC);
        let spec: Value = serde_json::from_slice(&std::fs::read(&root).expect("the Slack description")).unwrap();
        let state = State {
            token: token.into(),
            channels: channels.iter().map(|(i, n)| (i.to_string(), n.to_string())).collect(),
            webhook_path: "/services/T0HEALER/B0HEALER/canaryWEBHOOKsecret0000".into(),
            ..Default::default()
        };
        let inner = Arc::new(Inner { spec, state: Mutex::new(state), base: OnceLock::new() });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback Slack");
        let _ = inner.base.set(format!("http://{}", l.local_addr().unwrap()));
        let app = axum::Router::new().fallback(handler).with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Self { inner, task }
    }

    /// The Web API base URL (`slack.apiUrl`).
    pub fn api_url(&self) -> String {
        self.inner.base.get().cloned().unwrap_or_default()
    }

    /// The incoming-webhook URL (a secret, as Slack's are).
    pub fn webhook_url(&self) -> String {
        format!("{}{}", self.api_url(), self.state().webhook_path)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap()
    }

    /// Every request, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().records.clone()
    }

    /// The requests Slack served (HTTP 200 with `ok: true`), in order.
    pub fn served(&self) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.status == 200 && r.error.is_none()).collect()
    }

    /// The messages, in posting order.
    pub fn messages(&self) -> Vec<StoredMessage> {
        self.state().messages.clone()
    }

    /// Every way a request differed from Slack's description (and every answer of the loopback's
    /// that did). Tests assert this is empty.
    pub fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// Answer every request with `f` until [`Self::clear_fault`].
    pub fn fault(&self, f: Fault) {
        self.state().fault = Some(f);
    }

    /// Serve requests again.
    pub fn clear_fault(&self) {
        self.state().fault = None;
    }

    /// How many requests were answered with a fault.
    pub fn faulted(&self) -> u64 {
        self.state().faulted
    }
}

fn reply(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn handler(
    AxState(inner): AxState<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let mut st = inner.state.lock().unwrap();
    let seq = st.records.len() as u64 + 1;
    let path = uri.path().to_string();
    let is_webhook = path.starts_with("/services/");
    let name = if is_webhook { "webhook".to_string() } else { path.trim_start_matches('/').to_string() };
    let parsed: Value = if method == Method::GET {
        let q: Vec<(String, String)> = uri.query().map(url_pairs).unwrap_or_default();
        Value::Object(q.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let mut record = Recorded {
        seq,
        method: name.clone(),
        body: parsed.clone(),
        status: 200,
        error: None,
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
    };
    if let Some(f) = st.fault {
        st.faulted += 1;
        let resp = match f {
            Fault::ServerError => {
                record.status = 500;
                Response::builder().status(500).body(Body::from("internal error")).unwrap()
            }
            Fault::RateLimited(secs) => {
                record.status = 429;
                Response::builder().status(429).header("retry-after", secs.to_string()).body(Body::from("")).unwrap()
            }
        };
        st.records.push(record);
        return resp;
    }
    if is_webhook {
        let (status, text) = webhook(&mut st, &path, &headers, &parsed);
        record.status = status;
        if status != 200 {
            record.error = Some(text.clone());
        }
        st.records.push(record);
        return Response::builder().status(status).header("content-type", "text/html").body(Body::from(text)).unwrap();
    }
    let answer = web_api(&inner.spec, &mut st, &method, &name, &headers, &parsed);
    let (status, body) = match answer {
        Ok(v) => (200, v),
        Err((status, error)) => (status, json!({"ok": false, "error": error})),
    };
    // The loopback's own answer must be what the description documents (HTTP 200, ok or not).
    if status == 200 {
        check_answer(&inner.spec, &mut st, &name, &method, &body);
    }
    record.status = status;
    record.error = body["error"].as_str().map(str::to_string);
    st.records.push(record);
    reply(status, body)
}

/// A `ts` as Slack makes them: Unix seconds and microseconds of now, strictly increasing.
fn next_ts(st: &mut State) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    st.next_ts = now.max(st.next_ts + 1);
    format!("{}.{:06}", st.next_ts / 1_000_000, st.next_ts % 1_000_000)
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec =
                |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (dec(k), dec(v))
        })
        .collect()
}

/// The operation object for `name` and `method`, if the description has it.
fn operation<'a>(spec: &'a Value, name: &str, method: &Method) -> Option<&'a Value> {
    spec["paths"].get(format!("/{name}"))?.get(method.as_str().to_lowercase())
}

/// Check a request against the operation's parameters; `Err` is the error code Slack answers.
fn check_request(op: &Value, method: &Method, headers: &HeaderMap, body: &Value) -> Result<(), (String, String)> {
    let consumes: Vec<&str> = op["consumes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if *method == Method::POST {
        let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !consumes.contains(&mime) {
            return Err(("invalid_post_type".into(), format!("content type '{ct}' is not one of {consumes:?}")));
        }
        if !body.is_object() {
            return Err(("invalid_json".into(), "the body is not a JSON object".into()));
        }
    }
    let params: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().collect();
    let location = if *method == Method::GET { "query" } else { "formData" };
    let obj = body.as_object().cloned().unwrap_or_default();
    for (k, v) in &obj {
        let Some(p) = params.iter().find(|p| p["name"] == k.as_str() && p["in"] == location) else {
            return Err(("invalid_arg_name".into(), format!("'{k}' is not a documented {location} parameter")));
        };
        let ty = p["type"].as_str().unwrap_or("string");
        let json_array = p["description"].as_str().is_some_and(|d| d.contains("JSON-based array"));
        let ok = match (ty, v) {
            (_, Value::Array(_)) if json_array => true,
            ("string", Value::String(s)) if json_array => serde_json::from_str::<Vec<Value>>(s).is_ok(),
            ("string", Value::String(_)) => true,
            ("boolean", Value::Bool(_)) => true,
            ("boolean", Value::String(s)) if *method == Method::GET => s == "true" || s == "false",
            ("integer", Value::Number(n)) => n.is_i64(),
            ("integer", Value::String(s)) if *method == Method::GET => s.parse::<i64>().is_ok(),
            ("number", Value::Number(_)) => true,
            ("number", Value::String(s)) if *method == Method::GET => s.parse::<f64>().is_ok(),
            _ => false,
        };
        if !ok {
            return Err(("invalid_form_data".into(), format!("'{k}' must be a {ty}, got {v}")));
        }
    }
    for p in params.iter().filter(|p| p["required"] == true && p["in"] != "header") {
        let n = p["name"].as_str().unwrap_or("");
        if !obj.contains_key(n) {
            return Err(("invalid_arg_name".into(), format!("the required parameter '{n}' is missing")));
        }
    }
    Ok(())
}

fn documented_errors(op: &Value) -> Vec<String> {
    op["responses"]["default"]["schema"]["properties"]["error"]["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect()
}

fn web_api(
    spec: &Value,
    st: &mut State,
    method: &Method,
    name: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Result<Value, (u16, String)> {
    let Some(op) = operation(spec, name, method) else {
        st.violations.push(format!("{method} /{name}: not an operation of Slack's description"));
        return Err((404, "unknown_method".into()));
    };
    let errors = documented_errors(op);
    let fail = |st: &mut State, code: &str| -> (u16, String) {
        if !errors.iter().any(|e| e == code) {
            st.violations.push(format!("loopback bug: {name} answered '{code}', not a documented error of it"));
        }
        (200, code.to_string())
    };
    if let Err((code, why)) = check_request(op, method, headers, body) {
        st.violations.push(format!("{method} /{name}: {why}"));
        return Err(fail(st, &code));
    }
    // Authorization: Bearer <bot token> (the description's `token` header parameter).
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    match auth.strip_prefix("Bearer ") {
        None => return Err(fail(st, "not_authed")),
        Some(t) if t != st.token => return Err(fail(st, "invalid_auth")),
        Some(_) => {}
    }
    let field = |k: &str| body[k].as_str().map(str::to_string);
    let channel_arg = field("channel").unwrap_or_default();
    let channel = st
        .channels
        .iter()
        .find(|(id, n)| **id == channel_arg || **n == channel_arg.trim_start_matches('#'))
        .map(|(id, _)| id.clone());
    let Some(channel) = channel else { return Err(fail(st, "channel_not_found")) };
    match name {
        "chat.postMessage" => {
            let text = field("text").unwrap_or_default();
            let blocks = body.get("blocks").cloned().unwrap_or(json!([]));
            if text.is_empty() && blocks.as_array().is_none_or(Vec::is_empty) {
                return Err(fail(st, "no_text"));
            }
            let thread_ts = field("thread_ts");
            if let Some(t) = &thread_ts
                && !st.messages.iter().any(|m| m.channel == channel && &m.ts == t && m.thread_ts.is_none())
            {
                st.violations.push(format!("chat.postMessage: thread_ts {t} is not a message of {channel}"));
            }
            let ts = next_ts(st);
            st.messages.push(StoredMessage {
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts: thread_ts.clone(),
                text: text.clone(),
                blocks: blocks.clone(),
                updates: 0,
            });
            let mut message = json!({"type": "message", "subtype": "bot_message", "text": text, "ts": ts, "bot_id": "B0HEALER1", "user": "U0HEALER1"});
            if let Some(t) = thread_ts {
                message["thread_ts"] = json!(t);
            }
            Ok(json!({"ok": true, "channel": channel, "ts": ts, "message": message}))
        }
        "chat.update" => {
            let ts = field("ts").unwrap_or_default();
            let Some(m) = st.messages.iter_mut().find(|m| m.channel == channel && m.ts == ts) else {
                return Err(fail(st, "message_not_found"));
            };
            if let Some(t) = field("text") {
                m.text = t;
            }
            if let Some(b) = body.get("blocks") {
                m.blocks = b.clone();
            }
            m.updates += 1;
            let text = m.text.clone();
            Ok(json!({"ok": true, "channel": channel, "ts": ts, "text": text, "message": {"text": text}}))
        }
        "conversations.history" => {
            let oldest: f64 = field("oldest").and_then(|o| o.parse().ok()).unwrap_or(0.0);
            let limit: usize = field("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
            // Newest first, top-level messages only (thread replies are not in a channel's history).
            let messages: Vec<Value> = st
                .messages
                .iter()
                .rev()
                .filter(|m| m.channel == channel && m.thread_ts.is_none())
                .filter(|m| m.ts.parse::<f64>().unwrap_or(0.0) > oldest)
                .take(limit)
                .map(|m| json!({"type": "message", "text": m.text, "ts": m.ts, "bot_id": "B0HEALER1", "user": "U0HEALER1"}))
                .collect();
            Ok(json!({"ok": true, "messages": messages, "has_more": false, "pin_count": 0,
                      "channel_actions_ts": [], "channel_actions_count": 0}))
        }
        _ => Err(fail(st, "unknown_method")),
    }
}

/// Check the loopback's answer against the operation's documented success or error schema.
fn check_answer(spec: &Value, st: &mut State, name: &str, method: &Method, body: &Value) {
    let Some(op) = operation(spec, name, method) else { return };
    // `messages: []` is what Slack answers for an empty range; the description says minItems 1.
    if name == "conversations.history" && body["messages"].as_array().is_some_and(Vec::is_empty) {
        return;
    }
    let which = if body["ok"] == true { "200" } else { "default" };
    let mut schema = op["responses"][which]["schema"].clone();
    if let Value::Object(m) = &mut schema {
        m.insert("definitions".into(), spec["definitions"].clone());
    }
    let v =
        match jsonschema::options().with_draft(jsonschema::Draft::Draft4).should_validate_formats(false).build(&schema)
        {
            Ok(v) => v,
            Err(e) => {
                st.violations.push(format!("cannot compile the success schema of {name}: {e}"));
                return;
            }
        };
    let errs: Vec<String> = v.iter_errors(body).map(|e| format!("{e} at {}", e.instance_path())).collect();
    if !errs.is_empty() {
        st.violations.push(format!("loopback bug: {name}'s answer does not match its schema: {}", errs.join("; ")));
    }
}

/// An incoming webhook: `{"text", "blocks"}` (and the other documented message fields).
fn webhook(st: &mut State, path: &str, headers: &HeaderMap, body: &Value) -> (u16, String) {
    if path != st.webhook_path {
        return (404, "no_service".into());
    }
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.starts_with("application/json") {
        st.violations.push(format!("webhook: content type '{ct}'"));
        return (400, "invalid_payload".into());
    }
    let Some(obj) = body.as_object() else { return (400, "invalid_payload".into()) };
    const KNOWN: &[&str] = &["text", "blocks", "attachments", "thread_ts", "mrkdwn", "unfurl_links", "unfurl_media"];
    if let Some(k) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        st.violations.push(format!("webhook: unknown field '{k}'"));
        return (400, "invalid_payload".into());
    }
    let text = obj.get("text").and_then(Value::as_str).unwrap_or("");
    if text.is_empty() && obj.get("blocks").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        return (400, "no_text".into());
    }
    let ts = next_ts(st);
    st.messages.push(StoredMessage {
        channel: "webhook".into(),
        ts,
        thread_ts: None,
        text: text.into(),
        blocks: obj.get("blocks").cloned().unwrap_or(json!([])),
        updates: 0,
    });
    (200, "ok".into())
}
