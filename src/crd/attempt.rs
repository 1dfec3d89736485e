//! `HealingAttempt` (`cihealer.dev/v1alpha1`): one try at healing a run, carried out by one Job.
//!
//! Created by the HealingRun controller, owned by its run (ownerReference, controller=true) and named
//! `<run>-<n>`. Its spec is complete and frozen at creation: the Job is built from it alone, so a
//! config change or a controller restart never changes an attempt that already started.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::contract::{AgentSettings, Verdict};

/// Desired state of a HealingAttempt: the resolved agent profile and the pod's steps. Immutable:
/// frozen at creation, so a config change never alters an attempt that already started.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cihealer.dev",
    version = "v1alpha1",
    kind = "HealingAttempt",
    plural = "healingattempts",
    shortname = "hatt",
    category = "cihealer",
    namespaced,
    status = "HealingAttemptStatus",
    printcolumn = r#"{"name":"Run","type":"string","jsonPath":".spec.runName"}"#,
    printcolumn = r#"{"name":"Attempt","type":"integer","jsonPath":".spec.attempt"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Profile","type":"string","jsonPath":".spec.profile"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.failureReason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("self == oldSelf")
    .message("a HealingAttempt's spec is immutable: it is frozen when the attempt is created"))]
pub struct HealingAttemptSpec {
    /// The HealingRun this attempt belongs to (also its controller ownerReference).
    pub run_name: String,
    /// 1-based attempt number within the run.
    #[schemars(range(min = 1, max = 10))]
    pub attempt: i32,
    /// The agent profile the attempt runs (a key of `profiles` in the controller config).
    pub profile: String,
    /// Image that carries the `healer` binary; its first step copies the binary into the pod.
    pub healer_image: String,
    /// Clones the repository at the failing commit into the workspace.
    pub checkout: StepSpec,
    /// Changes the code: deterministic fixers, the LLM agent or an external agent image.
    pub agent: StepSpec,
    /// Judges the change independently of the agent and writes the verdict.
    pub validate: StepSpec,
    /// Seconds the Job may run before Kubernetes stops it (`activeDeadlineSeconds`).
    #[schemars(range(min = 30))]
    pub active_deadline_seconds: i64,
    /// Seconds a finished Job is kept before Kubernetes deletes it (`ttlSecondsAfterFinished`).
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: i32,
    /// The Secret key holding the git token, mounted into the checkout step only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_token_secret: Option<SecretKeyRef>,
    /// The Secret key holding the LLM provider's API key, mounted into the attempt pod's `llm-proxy`
    /// sidecar only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_api_key_secret: Option<SecretKeyRef>,
    /// The ConfigMap holding the attempt's context (`excerpt.txt`, `attempt.json`), mounted read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_config_map: Option<String>,
    /// The failing commit to check out, copied from the run's `spec.source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<AttemptSource>,
    /// The profile's step settings (fixers, LLM, validation commands, guard rails), frozen at creation,
    /// with the run's `spec.policy.protectedPaths` added. Passed to the work steps as JSON in their environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<AgentSettings>,
}

/// The commit an attempt works on.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AttemptSource {
    /// `owner/name`.
    pub repository: String,
    /// The branch the failing commit was built on.
    pub branch: String,
    /// The failing commit (7 to 40 hex digits).
    pub head_sha: String,
}

/// One step of the attempt pod: an image and the command it runs.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StepSpec {
    /// Container image (a toolchain image for agent and validate: rust, node, python, go …).
    pub image: String,
    /// Entrypoint and arguments, exec form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Extra environment (non-secret) for this step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// CPU and memory requests and limits; the controller's defaults apply when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// A plain environment variable (secrets are never passed this way).
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A reference to one key of a Secret in the attempt's namespace.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key within its `data`.
    pub key: String,
}

/// Where an attempt is in its life.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AttemptPhase {
    /// Created; the Job is not running yet.
    #[default]
    Pending,
    /// The Job's pod is running.
    Running,
    /// The validation step passed the change.
    Succeeded,
    /// The change was refused, validation failed, or the pod ended without a readable verdict.
    Failed,
}

impl AttemptPhase {
    /// Succeeded and Failed are final: the attempt's Job is done with.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }

    /// The phase as the API writes it (`Pending`, `Running`, `Succeeded`, `Failed`), also the
    /// `outcome` label of `cihealer_attempts_finished_total`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }
}

impl std::fmt::Display for AttemptPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Observed state of a HealingAttempt.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HealingAttemptStatus {
    /// Pending, Running, Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<AttemptPhase>,
    /// The generation of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions, keyed by type: JobCreated, Completed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The Job that carries out the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// The validation step's verdict, read from its termination message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// What the agent said it found and changed (one paragraph, bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
    /// Why the attempt failed, as a CamelCase reason (e.g. `ValidationFailed`, `VerdictMissing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// The ConfigMap holding the attempt's patch (key `patch.diff`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_config_map: Option<String>,
    /// When the pod started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the attempt reached Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}
