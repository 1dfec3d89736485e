//! `HealingRun` (`cihealer.dev/v1alpha1`): one failed CI job that ci-healer tries to heal.
//!
//! Created by an Argo Events Sensor from a GitHub `workflow_job` / `check_run` delivery (see
//! `config/argo-events/`), or by hand. The spec says where the failure came from and what the
//! operator may do about it; the status follows the Kubernetes API conventions (phase for
//! `kubectl get`, `metav1.Condition`s keyed by `type` for machines).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Diffstat;
use crate::triage::FailureClass;

/// Desired state of a HealingRun: the failure's origin, an optional excerpt, the healing policy.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cihealer.dev",
    version = "v1alpha1",
    kind = "HealingRun",
    plural = "healingruns",
    shortname = "hrun",
    category = "cihealer",
    namespaced,
    status = "HealingRunStatus",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Attempts","type":"integer","jsonPath":".status.attempts"}"#,
    printcolumn = r#"{"name":"Repository","type":"string","jsonPath":".spec.source.repository"}"#,
    printcolumn = r#"{"name":"Branch","type":"string","jsonPath":".spec.source.branch"}"#,
    printcolumn = r#"{"name":"SHA","type":"string","jsonPath":".status.shortSha"}"#,
    printcolumn = r#"{"name":"Class","type":"string","jsonPath":".status.failureClass","priority":1}"#,
    printcolumn = r#"{"name":"Agent","type":"string","jsonPath":".status.agent","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct HealingRunSpec {
    /// Where the failure came from: provider, repository, commit and the CI job that failed.
    /// Immutable: it identifies the failure (the dedup key is a function of it).
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf")
        .message("spec.source is immutable: it identifies the failure; create a new HealingRun for another commit or job"))]
    pub source: FailureSource,
    /// An inline excerpt of the failing log, for senders that have it. Bounded to 64 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureExcerpt>,
    /// What the operator may do: how many attempts, whether it may open a pull request, which agent.
    #[serde(default)]
    pub policy: HealingPolicy,
    /// What a person asked for: `abort`, `approve`, `deny`, `retry` or `resolve` (see [`RunAction`]),
    /// e.g. `kubectl patch hrun NAME --type merge -p '{"spec":{"action":"abort"}}'`. Each request
    /// (the action with its `actionRequest`) is acted on once, recorded in `status.history`, and then
    /// cleared from the spec by the controller, so the same command sent again is a new request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RunAction>,
    /// Who asks for `action`, from where, and its arguments. In a cluster with the chart's admission
    /// policies, `requestedBy` is the API server's `request.userInfo.username` (set by the
    /// MutatingAdmissionPolicy, checked by the ValidatingAdmissionPolicy), never a typed claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_request: Option<ActionRequest>,
}

/// Who asked for a run's `spec.action`, from where, and its arguments.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ActionRequest {
    /// The person: a Kubernetes username for `kubectl` (enforced by the chart's admission policy),
    /// a GitHub login for `comment`, a Slack user for `slack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub requested_by: Option<String>,
    /// Where the request came from. Only the controller's ServiceAccount may write `comment` or `slack`.
    #[serde(default)]
    pub source: ActionSource,
    /// Any string that makes a repeated request new (e.g. a second `retry` with the same hint); an
    /// unchanged request is acted on only once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub id: Option<String>,
    /// `deny`: why the fix is refused, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,
    /// `retry`: a hint for the agent, passed to the new attempts in their context (`hint.txt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub hint: Option<String>,
    /// `retry`: another agent profile for the new attempts (a profile in the controller's config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')")
        .message("actionRequest.agent must be a profile name (lowercase letters, digits and '-')"))]
    #[schemars(length(max = 63))]
    pub agent: Option<String>,
}

/// Where an action request came from.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ActionSource {
    /// A Kubernetes user edited the run (`kubectl patch`).
    #[default]
    Kubectl,
    /// A `/healer` comment on GitHub, relayed by the controller.
    Comment,
    /// A Slack interaction, relayed by the controller.
    Slack,
}

impl ActionSource {
    /// The serialised name: `kubectl`, `comment`, `slack`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActionSource::Kubectl => "kubectl",
            ActionSource::Comment => "comment",
            ActionSource::Slack => "slack",
        }
    }
}

/// The CI failure a HealingRun heals, in GitHub's terms (workflow run, job, head SHA, delivery).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FailureSource {
    /// The code host. Only `github` is acted upon today.
    #[serde(default)]
    pub provider: Provider,
    /// The repository as `owner/name`, e.g. `octo-org/octo-repo`.
    #[x_kube(validation = kube::core::Rule::new(
        "self.matches('^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$')"
    ).message("repository must be 'owner/name', e.g. octo-org/octo-repo"))]
    #[schemars(length(min = 1, max = 140))]
    pub repository: String,
    /// The branch the failing commit was built on (GitHub `head_branch`); a valid git branch name
    /// (`git check-ref-format --branch`).
    #[x_kube(
        validation = kube::core::Rule::new("self != ''").message("branch must not be empty"),
        validation = kube::core::Rule::new(r"!self.matches('[\\x00-\\x20\\x7f~^:?*\\[\\\\]')")
            .message("branch must not contain whitespace, control characters or any of ~ ^ : ? * [ \\ (git check-ref-format)"),
        validation = kube::core::Rule::new("!self.contains('..') && !self.contains('@{') && !self.contains('//') && self != '@'")
            .message("branch must not contain '..', '@{' or '//', nor be '@' (git check-ref-format)"),
        validation = kube::core::Rule::new("!self.startsWith('/') && !self.startsWith('-') && !self.endsWith('/') && !self.endsWith('.')")
            .message("branch must not start with '/' or '-', nor end with '/' or '.' (git check-ref-format)"),
        validation = kube::core::Rule::new(r"!self.matches('(^|/)\\.') && !self.matches('\\.lock(/|$)')")
            .message("no part of branch between slashes may start with '.' or end with '.lock' (git check-ref-format)"),
    )]
    #[schemars(length(max = 255))]
    pub branch: String,
    /// The commit that failed (GitHub `head_sha`): 7 to 40 lowercase hex digits.
    #[x_kube(validation = kube::core::Rule::new("self.matches('^[0-9a-f]{7,40}$')")
        .message("headSha must be 7 to 40 lowercase hex digits (a git commit SHA)"))]
    #[schemars(length(max = 40))]
    pub head_sha: String,
    /// The webhook event that reported the failure.
    #[serde(default)]
    pub event: SourceEvent,
    /// The webhook delivery id (`X-GitHub-Delivery`), for tracing a run back to its delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub delivery_id: Option<String>,
    /// The workflow's name (`workflow_job.workflow_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub workflow_name: Option<String>,
    /// The job's name (`workflow_job.name` or `check_run.name`; a status's `context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub job_name: Option<String>,
    /// The workflow run id (`workflow_job.run_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub run_id: Option<i64>,
    /// The workflow run attempt, starting at 1 (`workflow_job.run_attempt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub run_attempt: Option<i64>,
    /// The job id (`workflow_job.id`), which is also its check run id; for a `check_run` event,
    /// the check run's id (`check_run.id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub job_id: Option<i64>,
    /// The check suite's id (`check_suite.id`, or `check_run.check_suite.id`): a `check_suite`
    /// failure is read from that suite's failing check runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub check_suite_id: Option<i64>,
    /// A commit status's description (`status` events), for triage: external CI systems put their
    /// one-line verdict there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// A link for people to the failing job (`workflow_job.html_url`, `check_run.html_url`, a
    /// status's `target_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,
    /// The login that caused the event (`sender.login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub sender: Option<String>,
    /// Names of the steps whose conclusion was `failure`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 255)))]
    pub failed_steps: Vec<String>,
}

/// The code host a failure came from. Only `github` is acted upon today; the others are accepted by
/// the schema and answered with `Accepted=False` (`ProviderNotSupported`).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// GitHub or GitHub Enterprise.
    #[default]
    Github,
    /// GitLab (not supported yet).
    Gitlab,
    /// Any other sender (not supported yet).
    Generic,
}

impl Provider {
    /// The serialised name: `github`, `gitlab`, `generic`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Generic => "generic",
        }
    }
}

/// The webhook event kind that reported the failure, named as GitHub names its events.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SourceEvent {
    /// `workflow_job` (a GitHub Actions job completed).
    #[default]
    WorkflowJob,
    /// `workflow_run` (a whole workflow run completed).
    WorkflowRun,
    /// `check_run` (a check of any CI app completed).
    CheckRun,
    /// `check_suite` (a suite of checks completed).
    CheckSuite,
    /// `status` (a commit status from an external CI).
    Status,
    /// Any other sender.
    Generic,
}

/// A bounded inline excerpt of the failing log.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FailureExcerpt {
    /// Log lines around the failure, at most 65536 bytes.
    #[schemars(length(max = 65536))]
    pub excerpt: String,
    /// The sender's own label for the failure, if it has one (e.g. `rust_fmt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub error_type: Option<String>,
}

/// What ci-healer may do for this run.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealingPolicy {
    /// How many HealingAttempts to run before escalating to people, 1 to 10.
    #[serde(default = "default_max_attempts")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 10")
        .message("maxAttempts must be between 1 and 10"))]
    pub max_attempts: i32,
    /// `propose` keeps a validated patch for people to apply; `pull-request` pushes it and opens a PR.
    #[serde(default)]
    pub mode: HealingMode,
    /// `auto` lets triage pick the agent profile; otherwise the name of a profile in the controller's config.
    #[serde(default = "default_agent")]
    #[x_kube(validation = kube::core::Rule::new("self == 'auto' || self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')")
        .message("agent must be 'auto' or a profile name (lowercase letters, digits and '-')"))]
    #[schemars(length(max = 63))]
    pub agent: String,
    /// Extra paths (globs) the agent must not touch, added to the profile's protected paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub protected_paths: Vec<String>,
}

impl Default for HealingPolicy {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            mode: HealingMode::default(),
            agent: default_agent(),
            protected_paths: Vec::new(),
        }
    }
}

fn default_max_attempts() -> i32 {
    3
}
fn default_agent() -> String {
    "auto".into()
}

/// How a validated fix leaves the cluster.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HealingMode {
    /// Keep the patch in the cluster for people to review; push nothing (the safe default).
    #[default]
    #[serde(rename = "propose")]
    Propose,
    /// Push a branch and open a pull request into the failing branch (not implemented yet: answered
    /// with `Accepted=False`, `ModeNotImplemented`).
    #[serde(rename = "pull-request")]
    PullRequest,
}

impl HealingMode {
    /// The serialised name: `propose`, `pull-request`.
    pub const fn as_str(self) -> &'static str {
        match self {
            HealingMode::Propose => "propose",
            HealingMode::PullRequest => "pull-request",
        }
    }
}

/// An action a person asks of a run. An action that does not fit the run's phase is refused with
/// the `ActionApplied=False` condition and a history entry saying why.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RunAction {
    /// Stop the running attempt and end the run as Aborted (a run that is not final yet).
    Abort,
    /// Accept a Fixed run's patch (`Approved=True`); refused for the person who triggered the failing
    /// run unless the controller config allows self-approval.
    Approve,
    /// Refuse a Fixed run's patch: the run ends Denied, with `actionRequest.reason` recorded.
    Deny,
    /// Start `policy.maxAttempts` more attempts on an Escalated or Denied run, optionally with a
    /// hint and another agent profile; at most `actions.maxRetries` times (controller config).
    Retry,
    /// A person fixed it: the run ends Resolved and any running attempt stops.
    Resolve,
}

impl RunAction {
    /// The serialised name: `abort`, `approve`, `deny`, `retry`, `resolve`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunAction::Abort => "abort",
            RunAction::Approve => "approve",
            RunAction::Deny => "deny",
            RunAction::Retry => "retry",
            RunAction::Resolve => "resolve",
        }
    }

    /// Every action, in declaration order.
    pub const ALL: [RunAction; 5] =
        [RunAction::Abort, RunAction::Approve, RunAction::Deny, RunAction::Retry, RunAction::Resolve];

    /// Parse the serialised name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Where a run is in its life, for `kubectl get`. Conditions carry the detail.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RunPhase {
    /// Accepted, not attempting yet (also: waiting behind the run it duplicates).
    #[default]
    Queued,
    /// An attempt is running.
    Running,
    /// An attempt's validation passed; the patch is kept.
    Fixed,
    /// Attempts ran out (or the run cannot proceed); people must look.
    Escalated,
    /// A person aborted the run.
    Aborted,
    /// A person refused the fix (`spec.action: deny`).
    Denied,
    /// A person fixed the failure themselves (`spec.action: resolve`).
    Resolved,
    /// ci-healer did not heal: a loop-prevention or opt-out rule holds (the `Skipped` condition's
    /// reason says which, e.g. `OwnBranch`, `OwnCommit`). Not a failure; no attempt ran.
    Skipped,
    /// The failure looks flaky: GitHub was asked to re-run the failed job instead of an attempt (the
    /// `Rerun` condition says when). A second failure of that job after the re-run heals normally.
    Rerun,
}

impl RunPhase {
    /// Fixed, Escalated, Aborted, Denied, Resolved, Skipped and Rerun are final: the controller
    /// starts nothing more unless a person asks (`retry` an Escalated or Denied run).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Fixed | Self::Escalated | Self::Aborted | Self::Denied | Self::Resolved | Self::Skipped | Self::Rerun
        )
    }

    /// Every phase, in declaration order.
    pub const ALL: [RunPhase; 9] = [
        Self::Queued,
        Self::Running,
        Self::Fixed,
        Self::Escalated,
        Self::Aborted,
        Self::Denied,
        Self::Resolved,
        Self::Skipped,
        Self::Rerun,
    ];

    /// The phase as the API writes it (`Queued`, `Running`, `Fixed`, `Escalated`, `Aborted`,
    /// `Denied`, `Resolved`, `Skipped`, `Rerun`), also the `phase` label of
    /// `cihealer_run_transitions_total`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Running => "Running",
            Self::Fixed => "Fixed",
            Self::Escalated => "Escalated",
            Self::Aborted => "Aborted",
            Self::Denied => "Denied",
            Self::Resolved => "Resolved",
            Self::Skipped => "Skipped",
            Self::Rerun => "Rerun",
        }
    }
}

impl std::fmt::Display for RunPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The patch a run kept: which attempt produced it and where it is stored.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PatchRef {
    /// The HealingAttempt whose validation passed.
    pub attempt: String,
    /// The ConfigMap that holds the patch (key `patch.diff`), if it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// Size of the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffstat: Option<Diffstat>,
    /// The protected paths the patch touches (from the attempt's verdict): such a fix waits for a
    /// person's `approve` before it is delivered, whatever the mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(max = 255)))]
    pub protected_paths: Vec<String>,
}

/// Observed state of a HealingRun.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealingRunStatus {
    /// Queued, Running, Fixed, Escalated, Aborted, Denied or Resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RunPhase>,
    /// The generation of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions, keyed by type: Accepted, Triaged, Duplicate, Healing, Fixed, Escalated, Aborted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The first 7 characters of the head SHA, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_sha: Option<String>,
    /// The failure class triage assigned (e.g. `rust_fmt`, `frontend_format`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_class: Option<FailureClass>,
    /// The agent profile that attempts use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// A stable hash of the failure (normalised), used for dedup; also the `cihealer.dev/error-hash` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_hash: Option<String>,
    /// How many attempts have been started.
    #[serde(default)]
    pub attempts: i32,
    /// Tokens (with the prompt-cache reads and writes) and cost of all attempts together, from their
    /// verdicts; the cost only when the profile has a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::contract::TokenUsage>,
    /// The number of the attempt that is running or ran last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_attempt: Option<i32>,
    /// The validated patch, once a run is Fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchRef>,
    /// Why the run was escalated to people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation_reason: Option<String>,
    /// The active run for the same repository, head SHA and error hash that this one waits behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// When the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the run reached a final phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// How many `retry` actions were applied.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i32,
    /// The last attempt number before the latest `retry`; the attempts after it get a fresh budget
    /// of `policy.maxAttempts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_after_attempt: Option<i32>,
    /// The agent profile and hint the latest `retry` asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryRequest>,
    /// The people's actions on this run, oldest first, at most 20 (older entries are dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub history: Vec<ActionRecord>,
    /// The Slack message that follows this run (channel and `ts`), so a restarted controller updates
    /// it instead of posting another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackMessageRef>,
    /// The draft pull request that delivers the fix (`mode: pull-request`), once opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestStatus>,
    /// What the controller reported on GitHub for this run (the check run or commit status, the
    /// one pull request comment), so later reports edit them instead of adding new ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportStatus>,
}

/// The run's reports on GitHub: ids of what was created, and the state last reported.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReportStatus {
    /// The `ci-healer` check run on the head SHA (App identities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_run_id: Option<i64>,
    /// The run's one comment on the failing branch's pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<i64>,
    /// The pull request that comment is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request_number: Option<i64>,
    /// The phase (and delivery) last reported, e.g. `Running/1`, `Fixed`, `Fixed/Delivered`: a
    /// report is sent only when this changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<String>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// What the latest `retry` asked for.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RetryRequest {
    /// The agent profile for the new attempts, when the request named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The hint for the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// One person's action on a run, as the controller handled it.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    /// The action asked for.
    pub action: RunAction,
    /// Who asked (`spec.actionRequest.requestedBy`; `unknown` when the request named nobody).
    pub actor: String,
    /// Where the request came from.
    pub source: ActionSource,
    /// When the controller handled it.
    pub time: Time,
    /// `Applied` or `Refused`.
    pub result: ActionResult,
    /// What happened, for people.
    pub message: String,
    /// The metadata.generation of the spec that carried the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// A digest of the request (action and actionRequest, 16 hex digits): the same request is
    /// never handled twice.
    pub request_key: String,
    /// The request's `actionRequest.id`, when it had one: a relayed `/healer` comment finds its
    /// outcome by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub request_id: Option<String>,
}

/// The outcome of a person's action.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionResult {
    /// The action took effect.
    Applied,
    /// The action did not fit the run (the message says why); nothing changed.
    Refused,
}

/// A Slack message (Slack's `chat.postMessage` answer: `channel` and `ts`).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SlackMessageRef {
    /// The channel id Slack answered with (empty for an incoming webhook, or when Slack refused the post).
    #[serde(default)]
    pub channel: String,
    /// The message's timestamp id (`ts`), which `chat.update` names (empty for an incoming webhook,
    /// or when Slack refused the post).
    #[serde(default)]
    pub ts: String,
    /// A digest of the message last sent, so an unchanged state is not re-sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The run phase the message last showed (`Queued`, `Running`, `Fixed`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// How many thread replies were sent (each attempt's start, then its end, in order).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replies: i32,
}

/// A fix pull request the controller opened (GitHub's pull request number, link and head branch).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestStatus {
    /// The pull request's number.
    pub number: i64,
    /// A link for people (`html_url`).
    pub url: String,
    /// The head branch, `ci-healer/<run>`.
    pub head_ref: String,
    /// `open`, `closed` or `merged`, as last seen.
    pub state: String,
    /// Whether it is ready for review: `true` once opened ready (`autoApprove`) or marked ready
    /// after a person's `approve` (GraphQL `markPullRequestReadyForReview`); `false` when GitHub
    /// refused to mark it (a Warning Event says why; not retried); absent while a draft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_for_review: Option<bool>,
}
