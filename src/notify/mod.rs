//! Notifications for people: one Slack message per run, updated in place as the run moves, with a
//! thread reply per attempt (issue 10).
//!
//! The controller sees the small [`Slack`] trait; [`client::SlackClient`] implements it over Slack's
//! Web API (`chat.postMessage`, `chat.update`, `conversations.history`, bot token) or an incoming
//! webhook (post only). Tests drive the real client against a loopback Slack that checks each
//! request against Slack's published OpenAPI description (`tests/loopback_slack/`), never a mock of
//! this trait.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | the `slack:` section of the controller config, channel choice |
//! | [`client`] | the HTTP client: auth, errors, `429`/`Retry-After`, 5xx, timeouts, size bounds |
//! | [`render`] | the message (Block Kit blocks and a `text` fallback) from a run, pure |

pub mod client;
pub mod config;
pub mod render;

use std::time::Duration;

pub use client::SlackClient;
pub use config::SlackConfig;

/// A message: Block Kit `blocks` and the `text` Slack shows in notifications and where blocks
/// cannot be shown.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// The plain-text fallback (also what screen readers and push notifications show).
    pub text: String,
    /// Block Kit blocks (`section`, `context`, …), as JSON.
    pub blocks: Vec<serde_json::Value>,
}

/// A posted message: the channel id and `ts` Slack answered with (`chat.update` names both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The channel id (Slack answers with the id even when the request named the channel).
    pub channel: String,
    /// The message's timestamp id.
    pub ts: String,
}

/// How the controller reaches Slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The Web API with a bot token: post, update, thread replies.
    WebApi,
    /// An incoming webhook: post only (no ids come back, so no updates and no threads).
    Webhook,
}

/// Errors of a Slack call. Never contains the token or the webhook URL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Slack answered `{"ok": false, "error": …}` (Web API) or a 4xx with a reason (webhook).
    #[error("Slack refused {method}: {error}")]
    Api {
        /// The method (`chat.postMessage`, `chat.update`, `conversations.history`, `webhook`).
        method: String,
        /// Slack's error code, e.g. `channel_not_found`, `invalid_auth`, `not_in_channel`.
        error: String,
    },
    /// HTTP 429: Slack asked to wait `retry_after` (its `Retry-After` seconds).
    #[error("Slack rate-limited {method}; retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// The method.
        method: String,
        /// How long Slack asked to wait.
        retry_after: Duration,
    },
    /// HTTP 5xx, or an answer that is not Slack's JSON.
    #[error("Slack answered {method} with HTTP {status}")]
    Unavailable {
        /// The method.
        method: String,
        /// The HTTP status.
        status: u16,
    },
    /// The request did not complete (connection, TLS, timeout, a body over the size bound).
    #[error("Slack {method}: {message}")]
    Transport {
        /// The method.
        method: String,
        /// What failed.
        message: String,
    },
    /// The client skips calls for `remaining` after Slack rate-limited it or failed: a run never
    /// waits for Slack.
    #[error("Slack calls paused for {} s after a rate limit or failure", remaining.as_secs())]
    Paused {
        /// How long the pause lasts.
        remaining: Duration,
    },
    /// The credential cannot be read (a missing Secret or key), or the config cannot make a client.
    #[error("Slack credential: {0}")]
    Credential(String),
}

/// Error codes Slack answers with `ok: false` that a later try may not get (Slack's own
/// transient errors); every other code is permanent (`channel_not_found`, `invalid_auth`,
/// `not_in_channel`, `is_archived`, `msg_too_long`, `missing_scope`, …).
pub const TRANSIENT_CODES: &[&str] =
    &["ratelimited", "rate_limited", "request_timeout", "service_unavailable", "fatal_error", "internal_error"];

impl Error {
    /// Whether a later try may succeed (rate limits, 5xx, timeouts, Slack's transient codes, a
    /// pause, an API server error reading the Secret).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api { error, .. } => TRANSIENT_CODES.contains(&error.as_str()),
            Error::RateLimited { .. } | Error::Unavailable { .. } | Error::Transport { .. } | Error::Paused { .. } => {
                true
            }
            Error::Credential(_) => false,
        }
    }

    /// How long Slack asked to wait, when it did (or the pause's remainder).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => Some(*retry_after),
            Error::Paused { remaining } => Some(*remaining),
            _ => None,
        }
    }
}

/// Result of a Slack call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the controller does on Slack. [`SlackClient`] is the implementation.
#[async_trait::async_trait]
pub trait Slack: Send + Sync {
    /// Web API or incoming webhook.
    fn mode(&self) -> Mode;

    /// `chat.postMessage` to `channel` (a reply in the thread of `thread_ts` when given). A webhook
    /// posts to its own channel and returns `None` (it answers no ids).
    async fn post(&self, channel: &str, message: &Message, thread_ts: Option<&str>) -> Result<Option<Posted>>;

    /// `chat.update` of the message at `at`. A webhook cannot update: [`Error::Api`] `cannot_update`.
    async fn update(&self, at: &Posted, message: &Message) -> Result<()>;

    /// A message in `channel` posted since `oldest` (Unix seconds) whose text contains `marker`,
    /// from `conversations.history` (most recent 200 messages). `None` for a webhook.
    async fn find(&self, channel: &str, marker: &str, oldest: i64) -> Result<Option<Posted>>;

    /// The secret values this client holds (the token or webhook URL), for masking outgoing text.
    fn secret_values(&self) -> Vec<String>;
}
