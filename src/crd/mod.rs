//! The API of ci-healer, group `cihealer.dev`, version `v1alpha1`: [`HealingRun`], [`HealingAttempt`]
//! and [`HealingCommand`].
//!
//! `healer crd` prints the CustomResourceDefinitions; `crds/` holds the committed copies and
//! `tests/crd_drift.rs` fails when they differ from what these types generate.

pub mod attempt;
pub mod command;
pub mod conditions;
pub mod run;

pub use crate::contract::Diffstat;
pub use attempt::{
    AttemptPhase, AttemptSource, EnvVar, HealingAttempt, HealingAttemptSpec, HealingAttemptStatus, SecretKeyRef,
    StepSpec,
};
pub use command::{CommandPhase, HealingCommand, HealingCommandSpec, HealingCommandStatus};
pub use run::{
    ActionRecord, ActionRequest, ActionResult, ActionSource, FailureExcerpt, FailureSource, HealingMode, HealingPolicy,
    HealingRun, HealingRunSpec, HealingRunStatus, PatchRef, Provider, RunAction, RunPhase, SourceEvent,
};

use kube::CustomResourceExt;

/// The API group of every ci-healer kind.
pub const GROUP: &str = "cihealer.dev";

/// The CRDs as one multi-document YAML stream, as `healer crd` prints it and `crds/` stores it.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in [HealingRun::crd(), HealingAttempt::crd(), HealingCommand::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd).expect("CRD serialises to YAML"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: impl serde::Serialize) -> String {
        serde_json::to_value(v).unwrap().as_str().unwrap().to_string()
    }

    #[test]
    fn names_for_people_and_metrics_are_the_api_names() {
        for p in [
            RunPhase::Queued,
            RunPhase::Running,
            RunPhase::Fixed,
            RunPhase::Escalated,
            RunPhase::Aborted,
            RunPhase::Skipped,
            RunPhase::Rerun,
        ] {
            assert_eq!(json(p), p.as_str());
        }
        for p in [AttemptPhase::Pending, AttemptPhase::Running, AttemptPhase::Succeeded, AttemptPhase::Failed] {
            assert_eq!(json(p), p.as_str());
        }
        for p in [Provider::Github, Provider::Gitlab, Provider::Generic] {
            assert_eq!(json(p), p.as_str());
        }
        for m in [HealingMode::Propose, HealingMode::PullRequest] {
            assert_eq!(json(m), m.as_str());
        }
    }
}
