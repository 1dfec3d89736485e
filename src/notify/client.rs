//! The Slack client: Slack's Web API with a bot token, or an incoming webhook.
//!
//! - Web API: `POST {apiUrl}/chat.postMessage` and `POST {apiUrl}/chat.update` with JSON bodies
//!   (`Content-Type: application/json; charset=utf-8`), `GET {apiUrl}/conversations.history`, all
//!   with `Authorization: Bearer xoxb-…` (<https://api.slack.com/web>). Slack answers HTTP 200 with
//!   `{"ok": false, "error": "…"}` for refusals; [`super::TRANSIENT_CODES`] are retried later, the
//!   others are permanent.
//! - Incoming webhook: `POST {url}` with `{"text", "blocks"}`; `200 ok`, or a 4xx with a reason in
//!   the body (`invalid_payload`, `no_service`, `channel_is_archived`, …).
//! - HTTP 429 carries `Retry-After` seconds (<https://api.slack.com/apis/rate-limits>); 5xx and
//!   timeouts are transient. After any of these the client **pauses**: calls fail at once with
//!   [`Error::Paused`] until `Retry-After` has passed (429) or a backoff (2 s doubling to 30 s), so
//!   a run never waits for Slack and Slack is not hammered.
//! - Every call is bounded by `requestTimeoutSeconds`; an answer over 1 MiB is refused. Redirects
//!   are not followed (the token or webhook URL stays with Slack).
//!
//! The credential is read from its Secret when first needed and re-read after 60 s (a rotated
//! token is picked up); it never appears in an error, a log line or a message.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::{Value, json};

use super::{Error, Message, Mode, Posted, Result, Slack, SlackConfig};
use crate::crd::SecretKeyRef;

/// Largest answer read from Slack, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Longest pause after a 5xx or a timeout.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The pause after a 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How long a read credential is reused.
const CREDENTIAL_TTL: Duration = Duration::from_secs(60);

/// Where the token or webhook URL comes from.
pub enum CredentialSource {
    /// A Secret key, read through the API server.
    Kube {
        /// A client of the API server.
        client: kube::Client,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret and key.
        secret: SecretKeyRef,
    },
    /// A value given directly (tests, tools).
    Static(String),
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::Kube { namespace, secret, .. } => write!(f, "Secret {namespace}/{}", secret.name),
            CredentialSource::Static(_) => f.write_str("Static"),
        }
    }
}

#[derive(Default)]
struct Health {
    paused_until: Option<Instant>,
    failures: u32,
}

/// The Slack client ([`Slack`] over HTTP).
pub struct SlackClient {
    http: reqwest::Client,
    api_url: String,
    mode: Mode,
    source: CredentialSource,
    credential: tokio::sync::Mutex<Option<(Instant, String)>>,
    seen: Mutex<Vec<String>>,
    health: Mutex<Health>,
}

impl std::fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackClient").field("api_url", &self.api_url).field("mode", &self.mode).finish()
    }
}

impl SlackClient {
    /// A client for `config`, reading its credential from `source`. Errors: [`Error::Credential`]
    /// when the config is invalid or the HTTP client cannot be built.
    pub fn new(config: &SlackConfig, source: CredentialSource) -> Result<Self> {
        config.validate().map_err(Error::Credential)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout())
            .connect_timeout(config.request_timeout().min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ci-healer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Credential(format!("cannot build the HTTP client: {e}")))?;
        let mode = if config.token_secret.is_some() { Mode::WebApi } else { Mode::Webhook };
        Ok(Self {
            http,
            api_url: config.api_url.trim_end_matches('/').to_string(),
            mode,
            source,
            credential: tokio::sync::Mutex::new(None),
            seen: Mutex::new(Vec::new()),
            health: Mutex::new(Health::default()),
        })
    }

    async fn credential(&self) -> Result<String> {
        let mut cached = self.credential.lock().await;
        if let Some((at, v)) = cached.as_ref()
            && at.elapsed() < CREDENTIAL_TTL
        {
            return Ok(v.clone());
        }
        let v = match &self.source {
            CredentialSource::Static(v) => v.clone(),
            CredentialSource::Kube { client, namespace, secret } => {
                let s =
                    Api::<Secret>::namespaced(client.clone(), namespace).get_opt(&secret.name).await.map_err(|e| {
                        Error::Transport {
                            method: "read Secret".into(),
                            message: format!("{namespace}/{}: {e}", secret.name),
                        }
                    })?;
                let s =
                    s.ok_or_else(|| Error::Credential(format!("Secret {namespace}/{} does not exist", secret.name)))?;
                s.data
                    .as_ref()
                    .and_then(|d| d.get(&secret.key))
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .ok_or_else(|| {
                        Error::Credential(format!("Secret {namespace}/{} has no key {}", secret.name, secret.key))
                    })?
            }
        };
        let v = v.trim().to_string();
        if v.is_empty() {
            return Err(Error::Credential(format!("the Slack credential ({:?}) is empty", self.source)));
        }
        {
            let mut seen = self.seen.lock().expect("seen");
            if !seen.contains(&v) {
                seen.push(v.clone());
            }
        }
        *cached = Some((Instant::now(), v.clone()));
        Ok(v)
    }

    fn check_pause(&self) -> Result<()> {
        let h = self.health.lock().expect("health");
        match h.paused_until {
            Some(t) if t > Instant::now() => Err(Error::Paused { remaining: t - Instant::now() }),
            _ => Ok(()),
        }
    }

    /// Record the outcome of a call: a transient failure pauses the client, success resets it.
    fn record<T>(&self, r: &Result<T>) {
        let mut h = self.health.lock().expect("health");
        match r {
            Ok(_) => *h = Health::default(),
            Err(Error::RateLimited { retry_after, .. }) => {
                h.paused_until = Some(Instant::now() + *retry_after);
            }
            Err(e) if e.is_transient() && !matches!(e, Error::Paused { .. }) => {
                h.failures = h.failures.saturating_add(1);
                let wait = Duration::from_secs(1u64 << h.failures.min(6)).min(MAX_BACKOFF);
                h.paused_until = Some(Instant::now() + wait);
            }
            Err(_) => {}
        }
    }

    /// Send `rb`, read at most [`MAX_RESPONSE_BYTES`] of the answer. Errors: transport, 429, 5xx.
    async fn send(&self, method: &str, rb: reqwest::RequestBuilder) -> Result<(u16, String)> {
        let mut resp = rb.send().await.map_err(|e| Error::Transport { method: method.into(), message: detail(&e) })?;
        let status = resp.status().as_u16();
        if status == 429 {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_RETRY_AFTER);
            return Err(Error::RateLimited { method: method.into(), retry_after });
        }
        if status >= 500 {
            return Err(Error::Unavailable { method: method.into(), status });
        }
        let mut body = Vec::new();
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| Error::Transport { method: method.into(), message: detail(&e) })?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Error::Transport {
                    method: method.into(),
                    message: format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    /// One Web API call: `rb` for `method`, its JSON answer when `ok` is true.
    async fn web_api(&self, method: &str, body: Option<&Value>, query: &[(&str, String)]) -> Result<Value> {
        self.check_pause()?;
        let r: Result<Value> = async {
            let token = self.credential().await?;
            let url = format!("{}/{method}", self.api_url);
            let rb = match body {
                Some(b) => self.http.post(&url).json(b),
                None => {
                    let url = reqwest::Url::parse_with_params(&url, query).map_err(|e| Error::Transport {
                        method: method.into(),
                        message: format!("bad API URL: {e}"),
                    })?;
                    self.http.get(url)
                }
            };
            let (status, text) = self.send(method, rb.bearer_auth(token)).await?;
            let v = match serde_json::from_str::<Value>(&text) {
                Ok(v) if status == 200 => v,
                Ok(v) => {
                    let error = v["error"].as_str().map(str::to_string).unwrap_or_else(|| format!("http_{status}"));
                    return Err(Error::Api { method: method.into(), error });
                }
                Err(_) => return Err(Error::Unavailable { method: method.into(), status }),
            };
            if v["ok"].as_bool() == Some(true) {
                Ok(v)
            } else {
                let error = v["error"].as_str().unwrap_or("unknown_error").chars().take(100).collect();
                Err(Error::Api { method: method.into(), error })
            }
        }
        .await;
        self.record(&r);
        r
    }

    async fn webhook(&self, message: &Message) -> Result<()> {
        self.check_pause()?;
        let r: Result<()> = async {
            let url = self.credential().await?;
            let body = json!({"text": message.text, "blocks": message.blocks});
            let (status, text) = self.send("webhook", self.http.post(&url).json(&body)).await?;
            if status == 200 {
                return Ok(());
            }
            // Slack's webhook errors are a word in the body; nothing else of the body is kept.
            let word: String =
                text.trim().chars().take(60).take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let error = if word.is_empty() { format!("http_{status}") } else { word };
            Err(Error::Api { method: "webhook".into(), error })
        }
        .await;
        self.record(&r);
        r
    }
}

fn posted(v: &Value, method: &str) -> Result<Posted> {
    match (v["channel"].as_str(), v["ts"].as_str()) {
        (Some(c), Some(t)) if !c.is_empty() && !t.is_empty() => Ok(Posted { channel: c.into(), ts: t.into() }),
        _ => Err(Error::Transport { method: method.into(), message: "the answer has no channel and ts".into() }),
    }
}

#[async_trait::async_trait]
impl Slack for SlackClient {
    fn mode(&self) -> Mode {
        self.mode
    }

    async fn post(&self, channel: &str, message: &Message, thread_ts: Option<&str>) -> Result<Option<Posted>> {
        if self.mode == Mode::Webhook {
            return self.webhook(message).await.map(|()| None);
        }
        let mut body =
            json!({"channel": channel, "text": message.text, "blocks": message.blocks, "unfurl_links": false});
        if let Some(t) = thread_ts {
            body["thread_ts"] = json!(t);
        }
        let v = self.web_api("chat.postMessage", Some(&body), &[]).await?;
        posted(&v, "chat.postMessage").map(Some)
    }

    async fn update(&self, at: &Posted, message: &Message) -> Result<()> {
        if self.mode == Mode::Webhook {
            return Err(Error::Api { method: "webhook".into(), error: "cannot_update".into() });
        }
        let body = json!({"channel": at.channel, "ts": at.ts, "text": message.text, "blocks": message.blocks});
        self.web_api("chat.update", Some(&body), &[]).await.map(|_| ())
    }

    async fn find(&self, channel: &str, marker: &str, oldest: i64) -> Result<Option<Posted>> {
        if self.mode == Mode::Webhook {
            return Ok(None);
        }
        let query = [("channel", channel.to_string()), ("oldest", oldest.to_string()), ("limit", "200".into())];
        let v = self.web_api("conversations.history", None, &query).await?;
        let found = v["messages"].as_array().into_iter().flatten().find(|m| {
            m["text"].as_str().is_some_and(|t| t.contains(marker))
                && m["thread_ts"].as_str().is_none_or(|t| Some(t) == m["ts"].as_str())
        });
        Ok(found.and_then(|m| m["ts"].as_str()).map(|ts| Posted { channel: channel.into(), ts: ts.into() }))
    }

    fn secret_values(&self) -> Vec<String> {
        let mut v = self.seen.lock().expect("seen").clone();
        if let CredentialSource::Static(s) = &self.source {
            v.push(s.clone());
        }
        v
    }
}

fn detail(e: &reqwest::Error) -> String {
    // reqwest's Display includes the URL, which for a webhook is the secret: keep only the kind.
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_redirect() {
        "redirected (not followed)".into()
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read".into()
    } else {
        "request failed".into()
    }
}
