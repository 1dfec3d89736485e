#![warn(missing_docs)]
//! ci-healer: a Kubernetes operator that heals failing CI.
//!
//! A failed GitHub `workflow_job` becomes a [`crd::HealingRun`]; the controller triages it, runs up to
//! `maxAttempts` [`crd::HealingAttempt`]s (one Job each, whose validation step alone decides success) and
//! keeps the validated patch, or escalates to people.

pub mod agent;
pub mod config;
pub mod contract;
pub mod controller;
pub mod crd;
pub mod dashboard;
pub mod github;
pub mod intake;
pub mod kube_client;
pub mod notify;
pub mod resources;
#[cfg(feature = "dev")]
pub mod runner;
pub mod telemetry;
pub mod triage;
