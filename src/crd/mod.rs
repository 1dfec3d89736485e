//! The API of ci-healer, group `cihealer.dev`, version `v1alpha1`: [`HealingRun`] and [`HealingAttempt`].
//!
//! `healer crd` prints both CustomResourceDefinitions; `crds/` holds the committed copies and
//! `tests/crd_drift.rs` fails when they differ from what these types generate.

pub mod attempt;
pub mod conditions;
pub mod run;

pub use crate::contract::Diffstat;
pub use attempt::{
    AttemptPhase, AttemptSource, EnvVar, HealingAttempt, HealingAttemptSpec, HealingAttemptStatus, SecretKeyRef,
    StepSpec,
};
pub use run::{
    FailureExcerpt, FailureSource, HealingMode, HealingPolicy, HealingRun, HealingRunSpec, HealingRunStatus, PatchRef,
    Provider, RunAction, RunPhase, SourceEvent,
};

use kube::CustomResourceExt;

/// The API group of every ci-healer kind.
pub const GROUP: &str = "cihealer.dev";
/// Label on attempts, Jobs, pods and ConfigMaps naming the HealingRun they belong to.
pub const LABEL_RUN: &str = "cihealer.dev/run";
/// Label on Jobs, pods and ConfigMaps naming the HealingAttempt they belong to.
pub const LABEL_ATTEMPT: &str = "cihealer.dev/attempt";
/// Label on runs carrying the error hash (dedup key part), set by the controller.
pub const LABEL_ERROR_HASH: &str = "cihealer.dev/error-hash";
/// Label on attempts and Jobs with the attempt number.
pub const LABEL_ATTEMPT_NUMBER: &str = "cihealer.dev/attempt-number";
/// `app.kubernetes.io/managed-by` value on everything the controller creates.
pub const MANAGED_BY: &str = "ci-healer";

/// Both CRDs as one multi-document YAML stream, as `healer crd` prints it and `crds/` stores it.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in [HealingRun::crd(), HealingAttempt::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd).expect("CRD serialises to YAML"));
    }
    out
}
