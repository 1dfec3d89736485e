//! `HealingCommand` (`cihealer.dev/v1alpha1`): one `/healer` comment on GitHub, as intake received it.
//!
//! Intake (the Argo Events Sensor's `issue_comment` trigger, or `healer webhook`) creates one per
//! comment, named `ghc-<comment id>` so a redelivery collides, with the comment as GitHub sent it
//! (`issue_comment` event, action `created`). Intake holds no GitHub identity, so it cannot tell who
//! may command: the controller does. It checks the author's permission on the repository
//! (`GET /repos/{owner}/{repo}/collaborators/{username}/permission`), finds the run the comment is
//! about, relays the command to that run's `spec.action` with `actionRequest.source: comment`
//! (only the controller's ServiceAccount may write that source), acknowledges the comment with a
//! reaction, and answers refusals and `/healer help` with a reply comment. The spec is immutable;
//! `status` says what became of the command.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::run::Provider;

/// Desired state of a HealingCommand: the comment as GitHub delivered it. Immutable.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "cihealer.dev",
    version = "v1alpha1",
    kind = "HealingCommand",
    plural = "healingcommands",
    shortname = "hcmd",
    category = "cihealer",
    namespaced,
    status = "HealingCommandStatus",
    printcolumn = r#"{"name":"Repository","type":"string","jsonPath":".spec.repository"}"#,
    printcolumn = r#"{"name":"Number","type":"integer","jsonPath":".spec.issueNumber"}"#,
    printcolumn = r#"{"name":"Author","type":"string","jsonPath":".spec.author"}"#,
    printcolumn = r#"{"name":"Command","type":"string","jsonPath":".status.command"}"#,
    printcolumn = r#"{"name":"Run","type":"string","jsonPath":".status.runName"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self == oldSelf")
    .message("a HealingCommand's spec is immutable: it is the comment as GitHub delivered it"))]
pub struct HealingCommandSpec {
    /// The code host. Only `github` is acted upon.
    #[serde(default)]
    pub provider: Provider,
    /// The repository as `owner/name` (`repository.full_name`).
    #[x_kube(validation = kube::core::Rule::new(
        "self.matches('^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$')"
    ).message("repository must be 'owner/name', e.g. octo-org/octo-repo"))]
    #[schemars(length(min = 1, max = 140))]
    pub repository: String,
    /// The issue or pull request the comment is on (`issue.number`).
    #[schemars(range(min = 1))]
    pub issue_number: i64,
    /// Whether that issue is a pull request (`issue.pull_request` is present).
    #[serde(default)]
    pub pull_request: bool,
    /// The comment's id (`comment.id`): the reaction and the reply name it.
    #[schemars(range(min = 1))]
    pub comment_id: i64,
    /// Who wrote the comment (`comment.user.login`).
    #[schemars(length(min = 1, max = 255))]
    pub author: String,
    /// The author's account type (`comment.user.type`: `User`, `Bot` or `Organization`). Bots'
    /// commands are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub author_type: Option<String>,
    /// The comment's text (`comment.body`, at most GitHub's 65,536 characters). The command is its
    /// first line that starts with `/healer`.
    #[schemars(length(max = 65536))]
    pub body: String,
    /// A link for people to the comment (`comment.html_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,
    /// The webhook delivery id (`X-GitHub-Delivery`), for tracing the command back to its delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub delivery_id: Option<String>,
}

/// What became of a command.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CommandPhase {
    /// Received; not handled yet.
    #[default]
    Pending,
    /// Relayed to its run (`status.runName`), which is now acting on it; the run's
    /// `status.history` says the outcome.
    Relayed,
    /// Done: the run recorded the action as applied, `/healer fix` started a run, or `/healer help`
    /// was answered.
    Applied,
    /// Refused, with a reply on GitHub saying why (no write access, no run to act on, the run
    /// refused the action, an unknown command).
    Refused,
    /// Not a command for ci-healer to answer (a bot's comment, an edited comment); nothing was
    /// posted.
    Ignored,
}

impl CommandPhase {
    /// Applied, Refused and Ignored are final.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Applied | Self::Refused | Self::Ignored)
    }

    /// The phase as the API writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Relayed => "Relayed",
            Self::Applied => "Applied",
            Self::Refused => "Refused",
            Self::Ignored => "Ignored",
        }
    }
}

impl std::fmt::Display for CommandPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Observed state of a HealingCommand.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealingCommandStatus {
    /// Pending, Relayed, Applied, Refused or Ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<CommandPhase>,
    /// The generation of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions, keyed by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The command as parsed: `fix`, `retry`, `approve`, `deny`, `abort`, `resolve` or `help`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The HealingRun the command acts on (or, for `/healer fix`, the run it started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    /// The run's request key for the relayed action (its `status.history` entry carries it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_key: Option<String>,
    /// For people: what happened, or why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The reaction the controller left on the comment (`eyes` when relayed, `+1` applied, `-1`
    /// refused), so a restart does not react twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<String>,
    /// The controller's reply comment, once posted (found by its marker after a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_comment_id: Option<i64>,
}
