//! The `slack:` section of the controller config: how the controller reaches Slack (a bot token for
//! the Web API, or an incoming-webhook URL, each read from a Secret, never inlined) and which channel
//! each run's message goes to.
//!
//! ```yaml
//! slack:
//!   tokenSecret: {name: ci-healer-slack, key: token}      # a bot token (xoxb-…), scope chat:write
//!   # webhookUrlSecret: {name: ci-healer-slack, key: url}  # or an incoming webhook (post only)
//!   channel: C0123456789                                  # default channel (id or name)
//!   namespaces: {team-web: C0WEB}                         # per namespace
//!   repositories:                                          # per repository pattern, first match wins
//!     - {repository: "octo-org/web-*", channel: C0WEB}
//! ```
//!
//! A run's channel is the first `repositories` entry whose pattern matches its `owner/name`, else its
//! namespace's entry, else `channel`; no channel: no message. An incoming webhook posts to the channel
//! it was made for, so the channel settings do not apply to it.

use std::collections::BTreeMap;
use std::time::Duration;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use crate::crd::SecretKeyRef;

/// Slack settings of the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlackConfig {
    /// Web API base URL. Default `https://slack.com/api`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// The Secret key holding a bot token (`xoxb-…`, scope `chat:write`; `channels:history` lets a
    /// restarted controller find a message whose id it did not record, see
    /// [`crate::controller::notify`]). Sent as `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<SecretKeyRef>,
    /// Or the Secret key holding an incoming-webhook URL (`https://hooks.slack.com/services/…`):
    /// post only, no updates and no threads, so a run gets one message when first seen and one
    /// when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_secret: Option<SecretKeyRef>,
    /// Namespace of the Secret. Default: `$POD_NAMESPACE`, else the watched namespace, else `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_namespace: Option<String>,
    /// The default channel (an id such as `C0123456789`, or a name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Channels per namespace of the run.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespaces: BTreeMap<String, String>,
    /// Channels per repository pattern (`owner/name`, globs: `octo-org/*`), first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<RepositoryChannel>,
    /// Seconds one Slack call may take. Default 10.
    #[serde(default = "default_timeout")]
    pub request_timeout_seconds: u64,
}

/// One `repositories` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryChannel {
    /// `owner/name` pattern, case-insensitive (`*`, `?`, `[…]`).
    pub repository: String,
    /// The channel.
    pub channel: String,
}

fn default_api_url() -> String {
    "https://slack.com/api".into()
}
fn default_timeout() -> u64 {
    10
}

fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern.trim())
        .case_insensitive(true)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("slack.repositories: '{pattern}': {e}"))
}

impl SlackConfig {
    /// Check the section. Errors: a message naming the field (neither or both of `tokenSecret` and
    /// `webhookUrlSecret`, a bad pattern, an empty channel, a zero timeout, an API URL that is not http(s)).
    pub fn validate(&self) -> Result<(), String> {
        match (&self.token_secret, &self.webhook_url_secret) {
            (None, None) => return Err("slack needs tokenSecret (a bot token) or webhookUrlSecret".into()),
            (Some(_), Some(_)) => {
                return Err("slack: set either tokenSecret or webhookUrlSecret, not both".into());
            }
            _ => {}
        }
        if !(self.api_url.starts_with("https://") || self.api_url.starts_with("http://")) {
            return Err(format!("slack.apiUrl '{}' is not an http(s) URL", self.api_url));
        }
        if self.request_timeout_seconds == 0 {
            return Err("slack.requestTimeoutSeconds must be at least 1".into());
        }
        for r in &self.repositories {
            glob(&r.repository)?;
            if r.channel.trim().is_empty() {
                return Err(format!("slack.repositories: '{}' has an empty channel", r.repository));
            }
        }
        if let Some((ns, _)) = self.namespaces.iter().find(|(_, c)| c.trim().is_empty()) {
            return Err(format!("slack.namespaces.{ns} is an empty channel"));
        }
        Ok(())
    }

    /// The channel of a run in `namespace` for `repository` (see the module docs), `None` when no
    /// setting applies. Pure.
    pub fn channel_for(&self, namespace: &str, repository: &str) -> Option<&str> {
        self.repositories
            .iter()
            .find(|r| glob(&r.repository).is_ok_and(|g| g.is_match(repository)))
            .map(|r| r.channel.as_str())
            .or_else(|| self.namespaces.get(namespace).map(String::as_str))
            .or(self.channel.as_deref())
    }

    /// The bound of one call.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> SlackConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn the_repository_pattern_wins_then_the_namespace_then_the_default() {
        let c = cfg("tokenSecret: {name: s, key: token}\nchannel: CDEF\nnamespaces: {web: CWEB}\n\
                     repositories: [{repository: 'octo-org/api-*', channel: CAPI}]\n");
        c.validate().unwrap();
        assert_eq!(c.channel_for("web", "Octo-Org/API-server"), Some("CAPI"));
        assert_eq!(c.channel_for("web", "octo-org/site"), Some("CWEB"));
        assert_eq!(c.channel_for("other", "octo-org/site"), Some("CDEF"));
        let none = cfg("tokenSecret: {name: s, key: token}\n");
        assert_eq!(none.channel_for("web", "octo-org/site"), None);
    }

    #[test]
    fn exactly_one_credential_and_valid_patterns() {
        assert!(cfg("channel: C1").validate().unwrap_err().contains("tokenSecret"));
        let both = cfg("tokenSecret: {name: s, key: t}\nwebhookUrlSecret: {name: s, key: u}\n");
        assert!(both.validate().unwrap_err().contains("not both"));
        let bad = cfg("tokenSecret: {name: s, key: t}\nrepositories: [{repository: 'a/[b', channel: C}]\n");
        assert!(bad.validate().unwrap_err().contains("'a/[b'"));
        let zero = cfg("tokenSecret: {name: s, key: t}\nrequestTimeoutSeconds: 0\n");
        assert!(zero.validate().unwrap_err().contains("requestTimeoutSeconds"));
    }
}
