//! The `github:` section of the controller config: the identity (a GitHub App, or a token), the API
//! base URL, the call bounds, and what the controller does on GitHub (check run name, labels, pull
//! request rules, loop prevention). Secrets are named, never inlined.
//!
//! ```yaml
//! github:
//!   apiUrl: https://api.github.com            # GitHub Enterprise Server: https://HOST/api/v3
//!   app:                                      # recommended: check runs, verified commits
//!     appId: 123456
//!     privateKeySecret: {name: ci-healer-github-app, key: private-key.pem}
//!   # tokenSecret: {name: ci-healer-github-token, key: token}   # or a token: commit statuses
//!   pullRequest: {titlePrefix: "ci-healer:", maxOpenPerRepository: 5}
//!   loopPrevention: {cooldownSeconds: 600, botCommits: 4}
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::crd::SecretKeyRef;

/// GitHub settings of the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitHubConfig {
    /// REST API base URL. Default `https://api.github.com`; GitHub Enterprise Server:
    /// `https://HOST/api/v3`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Authenticate as a GitHub App installation (check runs, verified commits, per-repository
    /// installation tokens that expire after an hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppIdentity>,
    /// Or authenticate with a token (fine-grained personal access token): the controller then
    /// reports with commit statuses, because only Apps may create check runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<SecretKeyRef>,
    /// Namespace of the Secrets above. Default: `$POD_NAMESPACE`, else the watched namespace, else
    /// `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_namespace: Option<String>,
    /// The login commits and comments of this identity carry (`<app-slug>[bot]` for an App); read
    /// from `GET /app` or `GET /user` when unset. Used by the loop-prevention rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_login: Option<String>,
    /// Seconds one API call may take, body included. Default 30.
    #[serde(default = "default_timeout")]
    pub request_timeout_seconds: i64,
    /// Largest JSON answer read, in bytes. Default 8 MiB.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: i64,
    /// Bytes kept from the end of a job log. Default 4 MiB.
    #[serde(default = "default_tail")]
    pub log_tail_bytes: i64,
    /// Bytes read at most from a job log when the server ignores the range request. Default 256 MiB.
    #[serde(default = "default_max_read")]
    pub log_max_read_bytes: i64,
    /// The check run's name (and a commit status's context). Default `ci-healer`.
    #[serde(default = "default_check_name")]
    pub check_run_name: String,
    /// Labels put on the failing pull request while a run heals it and removed when the run ends,
    /// so update bots leave the branch alone. Default `[ci-healer]`; Renovate's `stop-updating` can
    /// be added.
    #[serde(default = "default_healing_labels")]
    pub healing_labels: Vec<String>,
    /// Pull-request mode rules.
    #[serde(default)]
    pub pull_request: PullRequestSettings,
    /// Loop prevention and opt-outs.
    #[serde(default)]
    pub loop_prevention: LoopPrevention,
}

/// A GitHub App identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppIdentity {
    /// The App's id (the App's settings page, "App ID").
    pub app_id: i64,
    /// The Secret key holding the App's private key (PEM, as GitHub generates it).
    pub private_key_secret: SecretKeyRef,
    /// A fixed installation id. Default: the delivery's `installation.id`, else
    /// `GET /repos/{owner}/{repo}/installation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<i64>,
}

/// What `mode: pull-request` may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PullRequestSettings {
    /// Prefix of the pull request's title. Default `ci-healer:`.
    #[serde(default = "default_title_prefix")]
    pub title_prefix: String,
    /// Labels of the fix pull request. Default `[ci-healer]`.
    #[serde(default = "default_healing_labels")]
    pub labels: Vec<String>,
    /// Branches never fixed by a pull request (globs). Default `main`, `master`, `trunk`, `develop`,
    /// `release/*`, `release-*`, `releases/*`.
    #[serde(default = "default_never_fix")]
    pub never_fix_branches: Vec<String>,
    /// Whether a branch GitHub marks protected may get a fix pull request. Default false.
    #[serde(default)]
    pub allow_protected_branches: bool,
    /// Most open ci-healer pull requests per repository; more skip the run. Default 5.
    #[serde(default = "default_max_open")]
    pub max_open_per_repository: i32,
}

/// Loop prevention and opt-outs; each rule ends a run as skipped with its own reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoopPrevention {
    /// A run for the same repository and branch started within this many seconds skips. Default
    /// 600; 0 disables.
    #[serde(default = "default_cooldown")]
    pub cooldown_seconds: i64,
    /// When this many of the branch's last commits are all by bots, the run skips (autofix.ci's
    /// rule). Default 4; 0 disables.
    #[serde(default = "default_bot_commits")]
    pub bot_commits: i32,
    /// Markers in the head commit's message that opt out. Default `[skip-healer]`, `[skip ci-healer]`.
    #[serde(default = "default_markers")]
    pub skip_markers: Vec<String>,
    /// Branch prefix of ci-healer's own branches. Default `ci-healer/`.
    #[serde(default = "default_branch_prefix")]
    pub branch_prefix: String,
}

impl Default for PullRequestSettings {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

impl Default for LoopPrevention {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

impl Default for GitHubConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

impl GitHubConfig {
    /// Check the settings. Errors: a message naming the field.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.app, &self.token_secret) {
            (Some(_), Some(_)) => return Err("github: set either app or tokenSecret, not both".into()),
            (None, None) => return Err("github: set app (recommended) or tokenSecret".into()),
            _ => {}
        }
        let url: http::Uri = self.api_url.parse().map_err(|e| format!("github.apiUrl '{}': {e}", self.api_url))?;
        if url.scheme().is_none() || url.authority().is_none() {
            return Err(format!("github.apiUrl '{}' must be an absolute http(s) URL", self.api_url));
        }
        for (name, v, min) in [
            ("requestTimeoutSeconds", self.request_timeout_seconds, 1),
            ("maxResponseBytes", self.max_response_bytes, 1024),
            ("logTailBytes", self.log_tail_bytes, 1024),
            ("logMaxReadBytes", self.log_max_read_bytes, 1024),
        ] {
            if v < min {
                return Err(format!("github.{name} must be at least {min}"));
            }
        }
        for g in &self.pull_request.never_fix_branches {
            globset::Glob::new(g).map_err(|e| format!("github.pullRequest.neverFixBranches '{g}': {e}"))?;
        }
        Ok(())
    }

    /// The bounds of one call.
    pub fn limits(&self) -> super::http::Limits {
        super::http::Limits {
            request_timeout: Duration::from_secs(self.request_timeout_seconds.max(1) as u64),
            max_response_bytes: self.max_response_bytes.max(1024) as usize,
            ..Default::default()
        }
    }

    /// The bounds of a log fetch.
    pub fn log_limits(&self) -> super::log::LogLimits {
        super::log::LogLimits {
            tail_bytes: self.log_tail_bytes.max(1024) as usize,
            max_read_bytes: self.log_max_read_bytes.max(1024) as u64,
        }
    }

    /// Whether `branch` is on the never-fix list.
    pub fn never_fix(&self, branch: &str) -> bool {
        self.pull_request
            .never_fix_branches
            .iter()
            .filter_map(|g| globset::Glob::new(g).ok())
            .any(|g| g.compile_matcher().is_match(branch))
    }
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}
fn default_timeout() -> i64 {
    30
}
fn default_max_response() -> i64 {
    8 << 20
}
fn default_tail() -> i64 {
    4 << 20
}
fn default_max_read() -> i64 {
    256 << 20
}
fn default_check_name() -> String {
    "ci-healer".into()
}
fn default_healing_labels() -> Vec<String> {
    vec!["ci-healer".into()]
}
fn default_title_prefix() -> String {
    "ci-healer:".into()
}
fn default_never_fix() -> Vec<String> {
    ["main", "master", "trunk", "develop", "release/*", "release-*", "releases/*"].map(String::from).to_vec()
}
fn default_max_open() -> i32 {
    5
}
fn default_cooldown() -> i64 {
    600
}
fn default_bot_commits() -> i32 {
    4
}
fn default_markers() -> Vec<String> {
    vec!["[skip-healer]".into(), "[skip ci-healer]".into()]
}
fn default_branch_prefix() -> String {
    "ci-healer/".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c: GitHubConfig = serde_yaml_ng::from_str("tokenSecret: {name: gh, key: token}").unwrap();
        c.validate().unwrap();
        assert_eq!(c.api_url, "https://api.github.com");
        assert_eq!(c.pull_request.title_prefix, "ci-healer:");
        assert_eq!(c.loop_prevention.cooldown_seconds, 600);
        assert!(c.never_fix("main") && c.never_fix("release/1.2") && c.never_fix("release-7"));
        assert!(!c.never_fix("feature/x"));
        assert!(GitHubConfig::default().validate().unwrap_err().contains("set app"));
        let bad: GitHubConfig = serde_yaml_ng::from_str("tokenSecret: {name: gh, key: t}\napiUrl: not a url").unwrap();
        assert!(bad.validate().unwrap_err().contains("apiUrl"));
        let unknown = serde_yaml_ng::from_str::<GitHubConfig>("tokenSecrets: {}").unwrap_err().to_string();
        assert!(unknown.contains("unknown field `tokenSecrets`"), "{unknown}");
    }
}
