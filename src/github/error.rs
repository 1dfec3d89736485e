//! Errors of the GitHub client, split the way the controller acts on them: transient ones (rate
//! limits, 5xx, timeouts, connection failures) requeue the run and never fail it; permanent ones
//! (404, 403 without a rate limit, 422, a response over the size bound) become a False condition
//! with [`Error::reason`].

use std::time::Duration;

/// A GitHub API failure. Messages never carry a header value, a token or a redirect URL.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Error {
    /// Primary (`x-ratelimit-remaining: 0`) or secondary (403/429 with `Retry-After`, or GitHub's
    /// "secondary rate limit" message) rate limit. Retry after `retry_after`.
    #[error("GitHub rate limit on {path} ({kind}); retry in {}s", retry_after.as_secs())]
    RateLimited {
        /// The request path (no query string).
        path: String,
        /// `primary` or `secondary`.
        kind: &'static str,
        /// How long to wait: `Retry-After`, else until `x-ratelimit-reset`, else 60 s.
        retry_after: Duration,
    },
    /// A 5xx answer that stayed a 5xx through the client's retries.
    #[error("GitHub answered {status} to {method} {path} (after {attempts} tries)")]
    Server {
        /// The HTTP method.
        method: String,
        /// The request path (no query string).
        path: String,
        /// The last status code (500–599).
        status: u16,
        /// How many requests were made.
        attempts: u32,
    },
    /// No answer: connection refused or reset, DNS, TLS, or the request exceeded its timeout.
    #[error("GitHub request {method} {path} failed: {message}")]
    Transport {
        /// The HTTP method.
        method: String,
        /// The request path (no query string).
        path: String,
        /// What went wrong (from the HTTP client; never headers).
        message: String,
    },
    /// 404 (or 410 on endpoints other than job logs): the resource does not exist or the identity
    /// cannot see it.
    #[error("GitHub: {path} not found ({status})")]
    NotFound {
        /// The request path (no query string).
        path: String,
        /// 404 or 410.
        status: u16,
    },
    /// 410 on a job log: the log expired (the repository's retention setting).
    #[error("GitHub: the log at {path} has expired (410 Gone)")]
    Gone {
        /// The request path.
        path: String,
    },
    /// 401: the credentials are invalid or expired.
    #[error("GitHub rejected the credentials for {path} (401): {message}")]
    Unauthorized {
        /// The request path.
        path: String,
        /// GitHub's `message`.
        message: String,
    },
    /// 403 that is not a rate limit: the identity lacks a permission.
    #[error("GitHub refused {method} {path} (403): {message}")]
    Forbidden {
        /// The HTTP method.
        method: String,
        /// The request path.
        path: String,
        /// GitHub's `message` (e.g. "Resource not accessible by integration").
        message: String,
    },
    /// 409 or 422: the request conflicts with the state (e.g. "Reference already exists").
    #[error("GitHub rejected {method} {path} ({status}): {message}")]
    Rejected {
        /// The HTTP method.
        method: String,
        /// The request path.
        path: String,
        /// 400, 409 or 422.
        status: u16,
        /// GitHub's `message` and the `errors[].message`s.
        message: String,
    },
    /// Any other status.
    #[error("GitHub answered {status} to {method} {path}: {message}")]
    Unexpected {
        /// The HTTP method.
        method: String,
        /// The request path.
        path: String,
        /// The status code.
        status: u16,
        /// GitHub's `message`, if any.
        message: String,
    },
    /// The response body exceeded its bound.
    #[error("GitHub's answer to {path} is larger than {limit} bytes")]
    TooLarge {
        /// The request path.
        path: String,
        /// The bound in bytes.
        limit: usize,
    },
    /// The body was not the JSON shape GitHub documents.
    #[error("cannot read GitHub's answer to {path}: {message}")]
    Decode {
        /// The request path.
        path: String,
        /// The serde error.
        message: String,
    },
    /// The controller's GitHub configuration cannot be used (missing Secret or key, bad PEM, bad URL).
    #[error("GitHub identity: {0}")]
    Config(String),
}

impl Error {
    /// A stable CamelCase reason for conditions, Events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::RateLimited { .. } => "GitHubRateLimited",
            Error::Server { .. } => "GitHubServerError",
            Error::Transport { .. } => "GitHubUnreachable",
            Error::NotFound { .. } => "GitHubNotFound",
            Error::Gone { .. } => "LogExpired",
            Error::Unauthorized { .. } => "GitHubUnauthorized",
            Error::Forbidden { .. } => "GitHubForbidden",
            Error::Rejected { .. } => "GitHubRejected",
            Error::Unexpected { .. } => "GitHubUnexpectedStatus",
            Error::TooLarge { .. } => "GitHubResponseTooLarge",
            Error::Decode { .. } => "GitHubBadResponse",
            Error::Config(_) => "GitHubIdentityInvalid",
        }
    }

    /// Whether retrying later can succeed: rate limits, 5xx, transport failures, and 401 (an
    /// installation token that expired between the cache check and the call; a fresh one is minted).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. } | Error::Server { .. } | Error::Transport { .. } | Error::Unauthorized { .. }
        )
    }

    /// How long to wait before retrying, when GitHub said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Result of a GitHub call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
