//! The labels on everything the controller creates, in one place.
//!
//! Every object gets the recommended labels (`app.kubernetes.io/name`, `…/managed-by`,
//! `…/component`); children say which run and attempt they belong to, so
//! `kubectl get hatt,jobs,pods,cm -l cihealer.dev/run=NAME` finds a run's whole tree.

use std::collections::BTreeMap;

/// Label naming the HealingRun an attempt, Job, pod or ConfigMap belongs to.
pub const RUN: &str = "cihealer.dev/run";
/// Label naming the HealingAttempt a Job, pod or patch ConfigMap belongs to.
pub const ATTEMPT: &str = "cihealer.dev/attempt";
/// Label with the attempt number, on attempts, Jobs and pods.
pub const ATTEMPT_NUMBER: &str = "cihealer.dev/attempt-number";
/// Label on runs carrying the error hash (part of the dedup key), set by the controller.
pub const ERROR_HASH: &str = "cihealer.dev/error-hash";
/// Label on remembered fixes: the first 16 hex digits of the SHA-256 of the lower-cased
/// `owner/name` (a label value cannot hold `/`).
pub const REPOSITORY_HASH: &str = "cihealer.dev/repository-hash";
/// Label on remembered fixes: triage's failure class of the failure they fixed.
pub const FAILURE_CLASS: &str = "cihealer.dev/failure-class";
/// Label on remembered fixes: `validated` (reusable) or `denied` (a person refused it; never reused).
pub const MEMORY_STATE: &str = "cihealer.dev/memory-state";
/// Label on remembered fixes: the run that validated them (they are not owned by it, so they
/// outlive it).
pub const SOURCE_RUN: &str = "cihealer.dev/source-run";
/// `app.kubernetes.io/name`.
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/managed-by`.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/component`.
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// The value of [`NAME`] and [`MANAGED_BY`] on everything the controller creates.
pub const CI_HEALER: &str = "ci-healer";
/// Selects everything the controller created (`app.kubernetes.io/managed-by=ci-healer`).
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=ci-healer";

/// What a labelled object is, the value of [`COMPONENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// A HealingAttempt, its Job and its pod.
    Attempt,
    /// A run's context ConfigMap (excerpt and triage result).
    Context,
    /// An attempt's patch ConfigMap.
    Patch,
    /// A remembered fix (a ConfigMap that outlives its run).
    Memory,
    /// A failure's dedup claim (a ConfigMap held by the one run that acts on the failure).
    Claim,
}

impl Component {
    /// The label value: `attempt`, `context`, `patch`, `memory`, `claim`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Component::Attempt => "attempt",
            Component::Context => "context",
            Component::Patch => "patch",
            Component::Memory => "memory",
            Component::Claim => "claim",
        }
    }

    /// The selector for this component (`app.kubernetes.io/component=attempt`, …).
    pub fn selector(self) -> String {
        format!("{COMPONENT}={}", self.as_str())
    }
}

/// The labels of a `component` that belongs to `run`, and to attempt `attempt` (name, number) when given.
pub fn for_child(component: Component, run: &str, attempt: Option<(&str, i32)>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        (NAME.to_string(), CI_HEALER.to_string()),
        (MANAGED_BY.to_string(), CI_HEALER.to_string()),
        (COMPONENT.to_string(), component.as_str().to_string()),
        (RUN.to_string(), run.to_string()),
    ]);
    if let Some((name, n)) = attempt {
        l.insert(ATTEMPT.into(), name.into());
        l.insert(ATTEMPT_NUMBER.into(), n.to_string());
    }
    l
}

/// The selector of an attempt's pods (`cihealer.dev/attempt=<name>`).
pub fn attempt_selector(attempt: &str) -> String {
    format!("{ATTEMPT}={attempt}")
}

/// The selector of a run's attempts (`cihealer.dev/run=<name>`).
pub fn run_selector(run: &str) -> String {
    format!("{RUN}={run}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_carry_the_recommended_labels_and_their_owners() {
        let l = for_child(Component::Attempt, "r", Some(("r-2", 2)));
        assert_eq!(l[NAME], "ci-healer");
        assert_eq!(l[MANAGED_BY], "ci-healer");
        assert_eq!(l[COMPONENT], "attempt");
        assert_eq!((l[RUN].as_str(), l[ATTEMPT].as_str(), l[ATTEMPT_NUMBER].as_str()), ("r", "r-2", "2"));
        let c = for_child(Component::Context, "r", None);
        assert!(!c.contains_key(ATTEMPT) && c[COMPONENT] == "context");
        assert_eq!(MANAGED_SELECTOR, format!("{MANAGED_BY}={CI_HEALER}"));
        assert_eq!(Component::Attempt.selector(), "app.kubernetes.io/component=attempt");
        assert_eq!(attempt_selector("r-2"), "cihealer.dev/attempt=r-2");
    }
}
