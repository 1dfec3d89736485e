//! Memory of past fixes, as the controller hands it to an attempt pod: the
//! [`super::paths::context::MEMORY`] file of the run's context ConfigMap (JSON, [`MemoryContext`]).
//!
//! The controller picks the entries ([`crate::controller::memory`]); the agent step re-applies
//! [`MemoryContext::replay`] on the first attempt and offers [`MemoryContext::examples`] to the model.

use serde::{Deserialize, Serialize};

/// One validated fix the cluster remembers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PastFix {
    /// The memory ConfigMap that holds it.
    pub entry: String,
    /// The HealingRun whose attempt validated it.
    pub source_run: String,
    /// Triage's class of the failure it fixed (`rust_build`, `frontend_types` …).
    pub failure_class: String,
    /// Triage's error hash of the failure it fixed.
    pub error_hash: String,
    /// The fixing attempt's diagnosis (masked, bounded), empty when it gave none.
    #[serde(default)]
    pub summary: String,
    /// The unified diff, against the commit that failed then.
    pub patch: String,
}

/// What an attempt may reuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MemoryContext {
    /// A validated fix of the same error hash in the same repository: the first attempt re-applies
    /// it without a model (zero tokens) and validates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<PastFix>,
    /// Validated fixes of the same failure class in the same repository, newest first, offered to
    /// the model as examples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<PastFix>,
}

impl MemoryContext {
    /// Whether there is nothing to reuse.
    pub fn is_empty(&self) -> bool {
        self.replay.is_none() && self.examples.is_empty()
    }
}
