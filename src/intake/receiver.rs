//! `POST /webhooks/github`: a signed GitHub delivery in, a HealingRun (a failure) or a
//! HealingCommand (a `/healer` comment) out.
//!
//! [`decide`] is the whole parse-and-map path and is pure (the fuzz target `fuzz/fuzz_targets/webhook.rs`
//! drives it): the size cap, the signature, the event header, `ping`, the JSON and [`map`]. Only
//! a delivery that passes all of them reaches the API server, with a bounded timeout, so GitHub gets
//! its answer within its 10 seconds.
//!
//! | delivery | answer |
//! |---|---|
//! | body over the cap | 413 |
//! | missing, malformed or wrong `X-Hub-Signature-256` | 401 |
//! | no `X-GitHub-Event`, a bad `X-GitHub-Delivery`, malformed JSON, a field the run needs missing | 400 |
//! | a form-encoded body (the webhook's content type is not JSON) | 415 |
//! | `ping` | 200 `pong` |
//! | any other kind than the four that start runs and `issue_comment` | 204 |
//! | a handled kind that the filters drop (not a failure, a bot, an own branch, an Actions copy; a comment edited, deleted, by a bot, too long or without a `/healer` line) | 204, `x-healer-dropped` says why |
//! | a new failure, a new `/healer` comment | 201, the run's or the command's name |
//! | a redelivery (the API server answers 409 for the same name) | 200 `duplicate` |
//! | the API server refuses the object (422) | 422 |
//! | the API server fails or does not answer within the timeout | 502 / 504 (redeliver later) |
//!
//! Every answer is logged with the delivery id (`X-GitHub-Delivery`), which the run also records
//! (`spec.source.deliveryId`; a command's `spec.deliveryId`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::Value;

use super::map::{COMMAND_EVENT, Delivery, Dropped, Intake, Kind, Mapped, deliver as map};
use super::signature;
use crate::crd::{HealingCommand, HealingRun};

/// The path GitHub delivers to.
pub const PATH: &str = "/webhooks/github";

/// The header that says why a delivery of a handled kind started no run (on a 204).
pub const DROPPED_HEADER: &str = "x-healer-dropped";

/// The headers [`decide`] reads, as raw bytes (GitHub's are ASCII; anything else is refused).
#[derive(Debug, Clone, Copy, Default)]
pub struct Incoming<'a> {
    /// `X-GitHub-Event`.
    pub event: Option<&'a [u8]>,
    /// `X-GitHub-Delivery`.
    pub delivery: Option<&'a [u8]>,
    /// `X-Hub-Signature-256`.
    pub signature: Option<&'a [u8]>,
    /// `Content-Type`.
    pub content_type: Option<&'a [u8]>,
    /// The raw body, exactly as received (the signature covers these bytes).
    pub body: &'a [u8],
}

/// What to do with a delivery.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Answer at once; nothing is created.
    Answer {
        /// The HTTP status.
        status: u16,
        /// The answer's body (for a 204: the reason, sent in [`DROPPED_HEADER`]).
        message: String,
    },
    /// Create this run or command.
    Create(Mapped),
}

impl Decision {
    fn answer(status: u16, message: impl Into<String>) -> Self {
        Decision::Answer { status, message: message.into() }
    }
}

/// The receiver's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The namespace the runs and commands are created in.
    pub namespace: String,
    /// Bodies larger than this are refused (413) before anything else is read.
    pub max_body_bytes: usize,
    /// The longest the API server may take to answer the create.
    pub api_timeout: Duration,
}

/// The parse-and-map path for one delivery under `secret`. Pure; never panics on any input.
pub fn decide(req: &Incoming, secret: &[u8], settings: &Settings) -> Decision {
    if req.body.len() > settings.max_body_bytes {
        return Decision::answer(413, format!("body over {} bytes", settings.max_body_bytes));
    }
    if let Err(r) = signature::verify(secret, req.signature, req.body) {
        return Decision::answer(401, r.message());
    }
    let Some(event) = req.event.and_then(|e| std::str::from_utf8(e).ok()).filter(|e| token(e, 64)) else {
        return Decision::answer(400, "missing or malformed X-GitHub-Event");
    };
    if event == "ping" {
        return Decision::answer(200, "pong");
    }
    if Kind::parse(event).is_none() && event != COMMAND_EVENT {
        return Decision::answer(204, Dropped::Unhandled { event: event.into() }.to_string());
    }
    let delivery = match req.delivery.map(std::str::from_utf8) {
        None => None,
        Some(Ok(d)) if token(d, 128) => Some(d),
        Some(_) => return Decision::answer(400, "malformed X-GitHub-Delivery (at most 128 visible ASCII characters)"),
    };
    if req.content_type.is_some_and(|c| c.starts_with(b"application/x-www-form-urlencoded")) {
        return Decision::answer(415, "the webhook's content type must be application/json");
    }
    let body: Value = match serde_json::from_slice(req.body) {
        Ok(v) => v,
        Err(e) => return Decision::answer(400, format!("malformed JSON: {e}")),
    };
    match map(&Delivery { event, id: delivery, body: &body }, &settings.namespace, Intake::Webhook) {
        Ok(made) => Decision::Create(made),
        Err(d @ Dropped::Missing { .. }) => Decision::answer(400, d.to_string()),
        Err(d) => Decision::answer(204, d.to_string()),
    }
}

/// Visible ASCII, 1 to `max` characters.
fn token(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic())
}

/// The receiver's state: the client that creates runs and commands, the secret's file, the settings.
#[derive(Clone)]
pub struct App {
    client: Client,
    secret_file: Arc<std::path::PathBuf>,
    settings: Arc<Settings>,
}

impl App {
    /// A receiver that creates runs and commands with `client` and checks signatures against the secret in
    /// `secret_file` (read on every delivery, so a rotated Secret applies without a restart).
    pub fn new(client: Client, secret_file: std::path::PathBuf, settings: Settings) -> Self {
        Self { client, secret_file: Arc::new(secret_file), settings: Arc::new(settings) }
    }
}

/// The receiver's routes: `POST /webhooks/github`, `GET /healthz`, `GET /readyz`.
pub fn router(app: App) -> Router {
    let max = app.settings.max_body_bytes;
    Router::new()
        .route(PATH, post(deliver))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        // The extractor's own cap a little above ours, so ours answers (413 with a reason).
        .layer(axum::extract::DefaultBodyLimit::max(max.saturating_add(1)))
        .with_state(app)
}

async fn deliver(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let delivery = header(&headers, "x-github-delivery").unwrap_or("-").to_string();
    let event = header(&headers, "x-github-event").unwrap_or("-").to_string();
    let (status, message, run) = handle(&app, &headers, body).await;
    let outcome = match status {
        201 => "created",
        200 if message.starts_with("duplicate") => "duplicate",
        200 => "answered",
        204 => "dropped",
        _ => "refused",
    };
    tracing::info!(delivery = %delivery, event = %event, status, outcome, run = %run.unwrap_or_default(), "webhook delivery {delivery}: {message}");
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if code == StatusCode::NO_CONTENT {
        let mut r = code.into_response();
        if let Ok(v) = HeaderValue::from_str(&message.replace(|c: char| !c.is_ascii_graphic() && c != ' ', "?")) {
            r.headers_mut().insert(DROPPED_HEADER, v);
        }
        return r;
    }
    (code, format!("{message}\n")).into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The answer's status and message, and the run's or command's name when one was made or found.
async fn handle(app: &App, headers: &HeaderMap, body: Body) -> (u16, String, Option<String>) {
    let max = app.settings.max_body_bytes;
    let declared = header(headers, "content-length").and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|l| l > max as u64) {
        return (413, format!("body over {max} bytes"), None);
    }
    let bytes = match axum::body::to_bytes(body, max.saturating_add(1)).await {
        Ok(b) => b,
        Err(e) => return (413, format!("body over {max} bytes or unreadable: {e}"), None),
    };
    let secret = match tokio::fs::read(app.secret_file.as_path()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(file = %app.secret_file.display(), error = %e, "cannot read the webhook secret");
            return (500, "the receiver cannot read its webhook secret".into(), None);
        }
    };
    let secret = trim_newline(&secret);
    let raw = |n: &str| headers.get(n).map(HeaderValue::as_bytes);
    let req = Incoming {
        event: raw("x-github-event"),
        delivery: raw("x-github-delivery"),
        signature: raw("x-hub-signature-256"),
        content_type: raw("content-type"),
        body: &bytes,
    };
    let made = match decide(&req, secret, &app.settings) {
        Decision::Answer { status, message } => return (status, message, None),
        Decision::Create(made) => made,
    };
    let (name, kind) = (made.name().to_string(), made.kind());
    let (client, ns, pp) = (app.client.clone(), app.settings.namespace.as_str(), PostParams::default());
    let create = async {
        match &made {
            Mapped::Run(run) => Api::<HealingRun>::namespaced(client, ns).create(&pp, run).await.map(drop),
            Mapped::Command(cmd) => Api::<HealingCommand>::namespaced(client, ns).create(&pp, cmd).await.map(drop),
        }
    };
    match tokio::time::timeout(app.settings.api_timeout, create).await {
        Ok(Ok(())) => (201, format!("created {kind} {ns}/{name}"), Some(name)),
        Ok(Err(kube::Error::Api(s))) if s.code == 409 => {
            (200, format!("duplicate: {kind} {ns}/{name} exists (a redelivery)"), Some(name))
        }
        Ok(Err(kube::Error::Api(s))) if s.code == 422 || s.code == 400 => {
            (422, format!("the API server refused {kind} {name}: {}", s.message), None)
        }
        Ok(Err(e)) => {
            tracing::warn!(object = %name, kind, error = %e, "creating the object failed");
            (502, format!("creating {kind} {name} failed; redeliver later"), None)
        }
        Err(_) => {
            (504, format!("the API server did not answer within {:?}; redeliver later", app.settings.api_timeout), None)
        }
    }
}

/// A secret file's bytes less one trailing newline (`echo secret > file`, `kubectl create secret
/// --from-file` of such a file).
fn trim_newline(s: &[u8]) -> &[u8] {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    s.strip_suffix(b"\r").unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::ResourceExt;
    use serde_json::json;

    fn settings() -> Settings {
        Settings { namespace: "ci-healer".into(), max_body_bytes: 4096, api_timeout: Duration::from_secs(1) }
    }

    fn failure() -> Vec<u8> {
        serde_json::to_vec(&json!({
            "action": "completed",
            "workflow_job": {"id": 3, "run_id": 1, "run_attempt": 2, "name": "lint", "workflow_name": null,
                "head_branch": "main", "head_sha": "3484a3f", "conclusion": "failure", "html_url": null, "steps": []},
            "repository": {"full_name": "o/r"}, "sender": {"login": "u", "type": "User"}
        }))
        .unwrap()
    }

    fn status_of(d: &Decision) -> u16 {
        match d {
            Decision::Answer { status, .. } => *status,
            Decision::Create(_) => 201,
        }
    }

    #[test]
    fn every_answer() {
        let big = vec![b' '; 4097];
        let big_sig = signature::sign(b"s3cret", &big);
        let body = failure();
        let sig = signature::sign(b"s3cret", &body);
        let good = Incoming {
            event: Some(b"workflow_job"),
            delivery: Some(b"d-1"),
            signature: Some(sig.as_bytes()),
            content_type: Some(b"application/json"),
            body: &body,
        };
        let with = |f: &dyn Fn(&mut Incoming)| {
            let mut r = good;
            f(&mut r);
            status_of(&decide(&r, b"s3cret", &settings()))
        };
        match decide(&good, b"s3cret", &settings()) {
            Decision::Create(Mapped::Run(run)) => assert_eq!(run.name_any(), "gh-1-2-3"),
            other => panic!("{other:?}"),
        }
        assert_eq!(status_of(&decide(&good, b"other", &settings())), 401);
        assert_eq!(with(&|r| r.signature = None), 401);
        assert_eq!(with(&|r| r.event = None), 400);
        assert_eq!(with(&|r| r.event = Some(b"work flow")), 400);
        assert_eq!(with(&|r| r.delivery = None), 400, "the run records its delivery");
        assert_eq!(with(&|r| r.delivery = Some("d\u{e9}".as_bytes())), 400);
        assert_eq!(with(&|r| r.content_type = Some(b"application/x-www-form-urlencoded")), 415);
        let oversize = Incoming { body: &big, signature: Some(big_sig.as_bytes()), ..good };
        assert_eq!(status_of(&decide(&oversize, b"s3cret", &settings())), 413);
        for (event, body, want) in [
            ("ping", &b"{\"zen\":\"Keep it logically awesome.\"}"[..], 200),
            ("pull_request", &b"{}"[..], 204),
            ("workflow_job", &b"{not json"[..], 400),
            ("workflow_job", &b"{\"action\":\"in_progress\"}"[..], 204),
            ("issue_comment", &b"{\"action\":\"edited\"}"[..], 204),
            ("issue_comment", &b"{\"action\":\"created\",\"comment\":{\"id\":9,\"body\":\"/healer help\",\"html_url\":null,\"user\":{\"login\":\"u\",\"type\":\"User\"}},\"issue\":{\"number\":1},\"repository\":{\"full_name\":\"o/r\"}}"[..], 201),
            ("issue_comment", &b"{\"action\":\"created\",\"comment\":{\"id\":9,\"body\":\"/healer help\",\"html_url\":null,\"user\":{\"login\":\"u\",\"type\":\"User\"}},\"repository\":{\"full_name\":\"o/r\"}}"[..], 400),
        ] {
            let sig = signature::sign(b"s3cret", body);
            let r = Incoming { event: Some(event.as_bytes()), body, signature: Some(sig.as_bytes()), ..good };
            assert_eq!(
                status_of(&decide(&r, b"s3cret", &settings())),
                want,
                "{event} {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_secret_files_trailing_newline_is_not_part_of_the_secret() {
        assert_eq!(trim_newline(b"s3cret\n"), b"s3cret");
        assert_eq!(trim_newline(b"s3cret\r\n"), b"s3cret");
        assert_eq!(trim_newline(b"s3cret"), b"s3cret");
    }
}
