//! LLM providers behind one small interface: a chat turn in, text and token usage out.
//!
//! Two wire formats: [`anthropic`] (Messages API) and [`openai`] (chat completions, which Gemini's,
//! Grok's, vLLM's and Ollama's OpenAI-compatible endpoints also speak). Transport failures, `429` and
//! `5xx` (and Anthropic's `529`) are retried with bounded exponential backoff that honours
//! `Retry-After` (seconds or an HTTP date) and `retry-after-ms`; what remains becomes an [`LlmError`]
//! with a stable reason.

pub mod anthropic;
pub mod openai;
pub mod proxy;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::contract::{LlmProvider, LlmSettings, env};

/// Longest wait between retries (and longest `Retry-After` honoured).
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `user`: ci-healer (the prompt, tool results).
    User,
    /// `assistant`: the model.
    Assistant,
}

/// One content block of a message, in the providers' common shape (Anthropic content blocks;
/// OpenAI `content`, `tool_calls` and `role: "tool"` messages).
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Text. Never empty on the wire: the APIs reject empty text blocks.
    Text(String),
    /// The model asks for a tool: Anthropic `tool_use` (`id`, `name`, `input`), OpenAI
    /// `tool_calls[]` (`id`, `function.name`, `function.arguments` as JSON text). Arguments that are
    /// not a JSON object arrive as [`serde_json::Value::String`] with the raw text.
    ToolUse {
        /// The provider's call id, echoed in the [`Block::ToolResult`].
        id: String,
        /// The tool's name (one of [`ToolSpec::name`]).
        name: String,
        /// The call's arguments (a JSON object, or a string with the raw text).
        input: serde_json::Value,
    },
    /// The answer to a [`Block::ToolUse`]: Anthropic `tool_result`, OpenAI a `role: "tool"` message.
    ToolResult {
        /// The [`Block::ToolUse`] id it answers.
        tool_use_id: String,
        /// The result text (masked).
        content: String,
        /// The call was refused or failed.
        is_error: bool,
    },
    /// A provider block ci-healer does not act on (Anthropic `thinking`, `server_tool_use` …): sent
    /// back verbatim to the same provider (needed to continue a `pause_turn`), dropped otherwise.
    Raw(serde_json::Value),
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// Its content blocks, in order.
    pub blocks: Vec<Block>,
}

impl Message {
    /// A user message with one text block.
    pub fn user(text: impl Into<String>) -> Self {
        Self { role: Role::User, blocks: vec![Block::Text(text.into())] }
    }

    /// An assistant message with one text block.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self { role: Role::Assistant, blocks: vec![Block::Text(text.into())] }
    }

    /// The text blocks concatenated as they are (no separator: a provider may split one answer,
    /// even one line of a diff, across blocks).
    pub fn text(&self) -> String {
        self.blocks.iter().filter_map(|b| if let Block::Text(t) = b { Some(t.as_str()) } else { None }).collect()
    }

    /// True when the message has no block a provider accepts (no non-blank text, no tool use or result).
    pub fn is_empty(&self) -> bool {
        self.blocks.iter().all(|b| matches!(b, Block::Text(t) if t.trim().is_empty()))
    }
}

/// A tool the model may call: name, description and a JSON Schema of its input (Anthropic
/// `tools[].input_schema`, OpenAI `tools[].function.parameters`).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// The tool's name (`read_file`, `finish` …).
    pub name: &'static str,
    /// What it does, for the model.
    pub description: String,
    /// A JSON Schema (draft 2020-12 subset both providers accept) of its input object.
    pub input_schema: serde_json::Value,
}

/// One request: system prompt, conversation, limits, tools.
#[derive(Debug, Clone)]
pub struct ChatRequest<'a> {
    /// The system prompt (Anthropic `system`; OpenAI a first `role: "system"` message).
    pub system: &'a str,
    /// The conversation so far, oldest first.
    pub messages: &'a [Message],
    /// Most output tokens of this answer (already bounded by what is left of the budget).
    pub max_tokens: u32,
    /// Sent only when set *and* the model family takes it (see [`takes_temperature`]).
    pub temperature: Option<f32>,
    /// Tools offered; empty: none (the diff answer format).
    pub tools: &'a [ToolSpec],
    /// Mark the stable prefix for prompt caching (Anthropic `cache_control` breakpoints on the system
    /// prompt, the first user message and the newest message; OpenAI caches by itself).
    pub cache: bool,
}

/// Why the model stopped, normalised over both APIs (Anthropic `stop_reason`, OpenAI `finish_reason`
/// and `message.refusal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// `end_turn` / `stop`: a complete answer.
    EndTurn,
    /// `stop_sequence`: a configured stop sequence (ci-healer sets none), complete as far as it goes.
    StopSequence,
    /// `tool_use` / `tool_calls`: the model waits for tool results.
    ToolUse,
    /// `max_tokens` / `length`: the answer was cut off. Never applied as it is.
    MaxTokens,
    /// `pause_turn`: a long turn paused by the provider; send the answer back to continue it.
    PauseTurn,
    /// `refusal` (Anthropic), or `message.refusal` set (OpenAI): the model declined.
    Refusal,
    /// `content_filter` (OpenAI): the provider withheld the content.
    ContentFilter,
    /// `model_context_window_exceeded` (Anthropic): the conversation no longer fits.
    ContextWindowExceeded,
    /// Anything else the provider said (kept for the message), or nothing at all.
    Other(String),
}

/// Tokens of one answer, as the provider reported them. `input` counts every input token, cached
/// or not (Anthropic `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`; OpenAI
/// `prompt_tokens`); `cache_read` and `cache_write` are the parts read from and written to the cache
/// (Anthropic `cache_read_input_tokens` / `cache_creation_input_tokens`; OpenAI
/// `prompt_tokens_details.cached_tokens` / `.cache_write_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Input tokens, cached or not.
    pub input: u64,
    /// Output tokens (Anthropic `output_tokens`; OpenAI `completion_tokens`).
    pub output: u64,
    /// The part of `input` read from the prompt cache.
    pub cache_read: u64,
    /// The part of `input` written to the prompt cache.
    pub cache_write: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Self) {
        self.input += o.input;
        self.output += o.output;
        self.cache_read += o.cache_read;
        self.cache_write += o.cache_write;
    }
}

/// The model's answer and what it cost, as the provider reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The answer's blocks in order (text, tool uses, raw blocks).
    pub blocks: Vec<Block>,
    /// Why the model stopped.
    pub stop: StopReason,
    /// The refusal's own text (OpenAI `message.refusal`; Anthropic `stop_details.explanation`).
    pub refusal: Option<String>,
    /// The tokens this answer cost.
    pub usage: Usage,
}

impl ChatResponse {
    /// The text blocks concatenated without a separator.
    pub fn text(&self) -> String {
        self.blocks.iter().filter_map(|b| if let Block::Text(t) = b { Some(t.as_str()) } else { None }).collect()
    }

    /// The tool calls, in order: `(id, name, input)`.
    pub fn tool_uses(&self) -> impl Iterator<Item = (&str, &str, &serde_json::Value)> {
        self.blocks.iter().filter_map(|b| match b {
            Block::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }

    /// The answer as the assistant message to send back: blank text blocks dropped.
    pub fn to_message(&self) -> Message {
        let blocks =
            self.blocks.iter().filter(|b| !matches!(b, Block::Text(t) if t.trim().is_empty())).cloned().collect();
        Message { role: Role::Assistant, blocks }
    }
}

/// Whether the model family takes a `temperature`: Anthropic's current Messages API has none
/// (`MessageCreateParams` of the anthropic SDK 2.14.0 lists no `temperature`, `top_p` or `top_k`);
/// OpenAI reasoning models (`o1`, `o3`, `o4-*`, `gpt-5*`) accept only the default.
pub fn takes_temperature(provider: LlmProvider, model: &str) -> bool {
    match provider {
        LlmProvider::Anthropic => false,
        LlmProvider::OpenaiCompatible => !is_openai_reasoning_model(model),
    }
}

/// OpenAI reasoning model families, which reject `max_tokens` and a non-default `temperature`.
pub fn is_openai_reasoning_model(model: &str) -> bool {
    let m = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    m.starts_with("gpt-5") || ["o1", "o3", "o4"].iter().any(|p| m == *p || m.starts_with(&format!("{p}-")))
}

/// Whether the output cap goes in `max_completion_tokens` (OpenAI itself, where `max_tokens` is
/// deprecated, and reasoning models anywhere) or in `max_tokens` (other OpenAI-compatible servers:
/// vLLM, Ollama, Gemini's and Grok's endpoints document `max_tokens`).
pub fn uses_max_completion_tokens(base_url: &str, model: &str) -> bool {
    base_url.contains("://api.openai.com") || is_openai_reasoning_model(model)
}

/// Why a provider call failed, with a stable CamelCase [`LlmError::reason`].
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// `ApiKeyMissing`: no key Secret is configured, or its mounted file is absent or blank (why).
    #[error("no LLM API key: {0}")]
    ApiKeyMissing(String),
    /// `ProviderUnreachable`: connection errors or timeouts on every attempt.
    #[error("the provider at {url} is unreachable after {attempts} attempt(s): {detail}")]
    Unreachable {
        /// The endpoint called.
        url: String,
        /// Calls made, the first included.
        attempts: u32,
        /// The last transport error.
        detail: String,
    },
    /// `ProviderRateLimited`: HTTP 429 on every attempt.
    #[error("the provider kept answering 429 Too Many Requests after {attempts} attempt(s): {detail}")]
    RateLimited {
        /// Calls made, the first included.
        attempts: u32,
        /// The last response body (masked, shortened).
        detail: String,
    },
    /// `ProviderUnavailable`: HTTP 5xx (or Anthropic's 529 overloaded) on every attempt.
    #[error("the provider kept failing with HTTP {status} after {attempts} attempt(s): {detail}")]
    Unavailable {
        /// The last HTTP status.
        status: u16,
        /// Calls made, the first included.
        attempts: u32,
        /// The last response body (masked, shortened).
        detail: String,
    },
    /// `ProviderAuthFailed`: HTTP 401 or 403; not retried.
    #[error("the provider refused the API key (HTTP {status}): {detail}")]
    AuthFailed {
        /// 401 or 403.
        status: u16,
        /// The response body (masked, shortened).
        detail: String,
    },
    /// `ProviderRejected`: another 4xx (a bad model name, a malformed request); not retried.
    #[error("the provider rejected the request (HTTP {status}): {detail}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The response body (masked, shortened).
        detail: String,
    },
    /// `ProviderResponseInvalid`: a 2xx body that is not the provider's documented shape.
    #[error("the provider's response is not in the expected format: {0}")]
    InvalidResponse(String),
}

impl LlmError {
    /// A stable reason for step failures, conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            LlmError::ApiKeyMissing(_) => "ApiKeyMissing",
            LlmError::Unreachable { .. } => "ProviderUnreachable",
            LlmError::RateLimited { .. } => "ProviderRateLimited",
            LlmError::Unavailable { .. } => "ProviderUnavailable",
            LlmError::AuthFailed { .. } => "ProviderAuthFailed",
            LlmError::Rejected { .. } => "ProviderRejected",
            LlmError::InvalidResponse(_) => "ProviderResponseInvalid",
        }
    }
}

/// A configured provider client. In an attempt pod it holds no key: it talks to the `llm-proxy`
/// sidecar ([`Client::through_proxy`]), which adds the key. With [`Client::new`] the key is held in
/// memory only and sent as the provider's header; it never appears in errors.
pub struct Client {
    http: reqwest::Client,
    settings: LlmSettings,
    /// The provider's base URL (what the settings name), for errors and wire-format choices.
    base_url: String,
    /// Where requests go: the provider's base URL, or the proxy's.
    endpoint: String,
    /// `None` through the proxy.
    api_key: Option<String>,
}

impl Client {
    /// Build a client that calls the provider itself with `api_key`. Errors: the HTTP client cannot
    /// be built (TLS setup).
    pub fn new(settings: &LlmSettings, api_key: String) -> Result<Self, reqwest::Error> {
        let mut c = Self::build(settings, None)?;
        c.api_key = Some(api_key);
        Ok(c)
    }

    /// Build a client that sends its requests, without a key, to the `llm-proxy` sidecar at
    /// `proxy_url` ([`crate::contract::proxy`]), which adds the key and forwards them to the
    /// provider. Errors: the HTTP client cannot be built.
    pub fn through_proxy(settings: &LlmSettings, proxy_url: &str) -> Result<Self, reqwest::Error> {
        Self::build(settings, Some(proxy_url))
    }

    fn build(settings: &LlmSettings, proxy_url: Option<&str>) -> Result<Self, reqwest::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout())
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("ci-healer/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let base_url = settings.effective_base_url();
        let endpoint = proxy_url.map(|u| u.trim_end_matches('/').to_string()).unwrap_or_else(|| base_url.clone());
        Ok(Self { http, settings: settings.clone(), base_url, endpoint, api_key: None })
    }

    /// The error of an agent step without a proxy to talk to: no key Secret is configured for its
    /// profile, so the pod has no `llm-proxy` sidecar ([`LlmError::ApiKeyMissing`]).
    pub fn no_proxy() -> LlmError {
        LlmError::ApiKeyMissing(format!(
            "no LLM API key Secret is configured for the profile ({} is unset: the pod has no {} sidecar)",
            env::LLM_PROXY_URL,
            crate::contract::proxy::CONTAINER
        ))
    }

    /// The wire format this client speaks.
    pub fn provider(&self) -> LlmProvider {
        self.settings.provider
    }

    /// The model name sent with every request.
    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// The endpoint and JSON body of a request: `POST {base}/v1/messages` (Anthropic) or
    /// `POST {base}/chat/completions` (OpenAI-compatible), `{base}` being the proxy's URL when
    /// the client goes through it.
    pub fn request(&self, req: &ChatRequest<'_>) -> (String, serde_json::Value) {
        let model = &self.settings.model;
        match self.settings.provider {
            LlmProvider::Anthropic => (format!("{}/v1/messages", self.endpoint), anthropic::request_body(model, req)),
            LlmProvider::OpenaiCompatible => (
                format!("{}/chat/completions", self.endpoint),
                openai::request_body(model, req, uses_max_completion_tokens(&self.base_url, model)),
            ),
        }
    }

    /// The provider's authentication and version headers, the only place a key is used
    /// (Anthropic `x-api-key` + `anthropic-version`; OpenAI `Authorization: Bearer`). Through the
    /// proxy only the version header: the proxy adds the key.
    fn authenticate(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (self.settings.provider, &self.api_key) {
            (LlmProvider::Anthropic, key) => {
                let rb = rb.header("anthropic-version", anthropic::API_VERSION);
                match key {
                    Some(k) => rb.header("x-api-key", k),
                    None => rb,
                }
            }
            (LlmProvider::OpenaiCompatible, Some(k)) => rb.bearer_auth(k),
            (LlmProvider::OpenaiCompatible, None) => rb,
        }
    }

    /// The provider's URL for an endpoint URL this client calls (the proxy's, mapped back), for
    /// errors.
    fn provider_url(&self, url: &str) -> String {
        match url.strip_prefix(&self.endpoint) {
            Some(rest) => format!("{}{rest}", self.base_url),
            None => url.to_string(),
        }
    }

    /// One chat turn, with retries. Errors: [`LlmError`].
    pub async fn complete(&self, req: &ChatRequest<'_>) -> Result<ChatResponse, LlmError> {
        let (url, body) = self.request(req);
        let max_attempts = self.settings.retries() + 1;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let rb = self.authenticate(self.http.post(&url).json(&body));
            let last = attempt >= max_attempts;
            let resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    let detail = transport_detail(&e);
                    if last {
                        return Err(LlmError::Unreachable { url: self.provider_url(&url), attempts: attempt, detail });
                    }
                    tracing::warn!(attempt, %detail, "LLM request failed; retrying");
                    tokio::time::sleep(self.backoff(attempt, None)).await;
                    continue;
                }
            };
            let status = resp.status();
            let headers = resp.headers().clone();
            let text = resp.text().await.unwrap_or_default();
            match headers.get(crate::contract::proxy::ERROR_HEADER).and_then(|v| v.to_str().ok()) {
                // The proxy could not reach the provider: a transport failure, retried like one.
                Some(crate::contract::proxy::REASON_UNREACHABLE) => {
                    let detail = error_detail(&text);
                    if last {
                        return Err(LlmError::Unreachable { url: self.provider_url(&url), attempts: attempt, detail });
                    }
                    tracing::warn!(attempt, %detail, "LLM request failed; retrying");
                    tokio::time::sleep(self.backoff(attempt, None)).await;
                    continue;
                }
                Some(crate::contract::proxy::REASON_KEY_MISSING) => {
                    return Err(LlmError::ApiKeyMissing(error_detail(&text)));
                }
                _ => {}
            }
            if status.is_success() {
                let parsed = match self.settings.provider {
                    LlmProvider::Anthropic => anthropic::parse_response(&text),
                    LlmProvider::OpenaiCompatible => openai::parse_response(&text),
                };
                return parsed.map_err(LlmError::InvalidResponse);
            }
            let detail = error_detail(&text);
            let retryable =
                status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() || status.as_u16() == 529;
            if retryable && !last {
                let wait = self.backoff(attempt, retry_after(&headers));
                tracing::warn!(
                    attempt,
                    status = status.as_u16(),
                    wait_ms = wait.as_millis() as u64,
                    "LLM provider asked us to retry"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(match status.as_u16() {
                429 => LlmError::RateLimited { attempts: attempt, detail },
                401 | 403 => LlmError::AuthFailed { status: status.as_u16(), detail },
                s if retryable => LlmError::Unavailable { status: s, attempts: attempt, detail },
                s => LlmError::Rejected { status: s, detail },
            });
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(MAX_BACKOFF);
        }
        let base = self.settings.initial_backoff();
        base.saturating_mul(1u32 << (attempt - 1).min(10)).min(MAX_BACKOFF)
    }
}

/// `retry-after-ms` (OpenAI) or `Retry-After` (seconds, or an HTTP date).
pub fn retry_after(h: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = h.get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some(Duration::from_millis(ms.max(0.0) as u64));
    }
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Some(Duration::from_millis((secs.max(0.0) * 1000.0) as u64));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let d = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(d).unwrap_or(Duration::ZERO))
}

fn transport_detail(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut root = String::new();
    while let Some(s) = src {
        root = s.to_string();
        src = s.source();
    }
    if root.is_empty() { kind.into() } else { format!("{kind}: {root}") }
}

/// The provider's own error message (`error.message` in both formats), bounded.
fn error_detail(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let msg = v["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| body.chars().take(300).collect());
    msg.chars().take(500).collect()
}

/// The LLM key's [`KeyFingerprint`](crate::contract::proxy::KeyFingerprint) from the `llm-proxy`
/// sidecar at `proxy_url` (`http://HOST:PORT`): `GET` [`crate::contract::proxy::FINGERPRINT_PATH`]
/// over a plain loopback HTTP/1.1 connection, blocking, 2 s per try, 3 tries 200 ms apart (the step
/// reads its environment before any runtime work). Errors: no answer, or not a fingerprint.
pub fn fingerprint_from_proxy(proxy_url: &str) -> Result<crate::contract::proxy::KeyFingerprint, String> {
    use std::io::{Read, Write};
    let hostport = proxy_url.strip_prefix("http://").unwrap_or(proxy_url).split('/').next().unwrap_or_default();
    let mut last = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
        let addr: std::net::SocketAddr = match hostport.parse() {
            Ok(a) => a,
            Err(_) => return Err(format!("{proxy_url} is not http://IP:PORT")),
        };
        let mut s = match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => s,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n",
            crate::contract::proxy::FINGERPRINT_PATH
        );
        let mut buf = Vec::new();
        if let Err(e) = s.write_all(req.as_bytes()).and_then(|_| s.read_to_end(&mut buf)) {
            last = e.to_string();
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            last = "no HTTP response".into();
            continue;
        };
        if !head.starts_with("HTTP/1.1 200") {
            return Err(head.lines().next().unwrap_or_default().to_string());
        }
        return serde_json::from_str(body.trim()).map_err(|e| e.to_string());
    }
    Err(last)
}

/// A change the model proposed.
#[derive(Debug, Clone, PartialEq)]
pub enum ProposedChange {
    /// A unified diff (`git apply` input).
    Diff(String),
    /// Whole files: (relative path, new content).
    Files(Vec<(String, String)>),
}

/// Extract the change from a model answer: ```diff / ```patch fenced blocks (joined), or else
/// `<file path="…">…</file>` blocks. `None` when the answer has neither.
pub fn parse_change(text: &str) -> Option<ProposedChange> {
    let mut diffs = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("```") {
        let after = &rest[i + 3..];
        let (lang, body_start) = match after.find('\n') {
            Some(n) => (after[..n].trim(), n + 1),
            None => break,
        };
        let body = &after[body_start..];
        let Some(end) = find_fence_end(body) else {
            break;
        };
        let block = &body[..end];
        if matches!(lang, "diff" | "patch" | "udiff")
            || (lang.is_empty() && (block.starts_with("diff --git") || block.starts_with("--- ")))
        {
            diffs.push(block.to_string());
        }
        rest = &body[(end + 3).min(body.len())..];
    }
    if !diffs.is_empty() {
        let mut d = diffs.join("\n");
        if !d.ends_with('\n') {
            d.push('\n');
        }
        return Some(ProposedChange::Diff(d));
    }
    let mut files = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("<file path=\"") {
        let after = &rest[i + 12..];
        let Some(q) = after.find('"') else { break };
        let path = after[..q].to_string();
        let Some(gt) = after[q..].find('>') else {
            break;
        };
        let body = &after[q + gt + 1..];
        let Some(end) = body.find("</file>") else {
            break;
        };
        let mut content = body[..end].strip_prefix('\n').unwrap_or(&body[..end]).to_string();
        // Tolerate a fenced block inside the file tag.
        if content.starts_with("```")
            && let Some(nl) = content.find('\n')
        {
            content = content[nl + 1..].to_string();
            if let Some(f) = content.rfind("```") {
                content.truncate(f);
            }
        }
        files.push((path, content));
        rest = &body[end + 7..];
    }
    (!files.is_empty()).then_some(ProposedChange::Files(files))
}

fn find_fence_end(body: &str) -> Option<usize> {
    let mut pos = 0;
    for line in body.split_inclusive('\n') {
        if line.trim_end() == "```" {
            return Some(pos);
        }
        pos += line.len();
    }
    None
}

/// The model's diagnosis: the text before the change, without the `Diagnosis:` label, one paragraph,
/// at most 1000 characters.
pub fn diagnosis(text: &str) -> String {
    let cut = [text.find("```"), text.find("<file path=")].into_iter().flatten().min().unwrap_or(text.len());
    let d = text[..cut].trim();
    let d = d.strip_prefix("Diagnosis:").or_else(|| d.strip_prefix("**Diagnosis:**")).unwrap_or(d).trim();
    d.split("\n\n").next().unwrap_or("").replace('\n', " ").chars().take(1000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_diff_and_file_answers() {
        let a = "Diagnosis: wrong type.\n\n```diff\ndiff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1 @@\n-a\n+b\n```\n";
        assert_eq!(
            parse_change(a),
            Some(ProposedChange::Diff(
                "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1 @@\n-a\n+b\n"
                    .into()
            ))
        );
        assert_eq!(diagnosis(a), "wrong type.");
        let f = "Diagnosis: x\n<file path=\"src/a.rs\">\nfn a() {}\n</file>\n";
        assert_eq!(parse_change(f), Some(ProposedChange::Files(vec![("src/a.rs".into(), "fn a() {}\n".into())])));
        assert_eq!(parse_change("I could not find a safe fix.\n```rust\nfn x() {}\n```"), None);
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }
}
