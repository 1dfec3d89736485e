//! The contract between the controller and an attempt pod: what the Job builder writes and the
//! pod's steps read, in one module both sides compile against.
//!
//! | module | what crosses the boundary |
//! |---|---|
//! | [`step`] | the four steps ([`Step`]): container names, subcommands, failure reasons |
//! | [`paths`] | mount paths, the context ConfigMap's keys, the patch ConfigMap's key |
//! | [`proxy`] | the LLM credential proxy sidecar: container, port, error header |
//! | [`env`] | every environment variable name, and the typed [`StepContext`] both sides use |
//! | [`settings`] | the profile settings frozen into `spec.settings` ([`AgentSettings`]) |
//! | [`verdict`] | termination messages: [`Verdict`], [`StepFailure`], [`AgentReport`] |
//! | [`patch`] | the patch in the validate step's log, between [`patch::BEGIN`] and [`patch::END`] |
//!
//! It depends on nothing else in the crate, so `crd`, `resources`, `agent` and `controller` can all
//! use it without a cycle.

pub mod env;
pub mod memory;
pub mod patch;
pub mod paths;
pub mod proxy;
pub mod settings;
pub mod step;
pub mod verdict;

pub use env::{ExternalAgentEnv, Source, StepContext};
pub use settings::{AgentSettings, LlmProvider, LlmSettings};
pub use step::Step;
pub use verdict::{
    AgentReport, Diffstat, MAX_PROTECTED_PATHS, MAX_VERDICT_BYTES, Outcome, StepDurations, StepFailure, TokenUsage,
    Verdict, VerdictError,
};
