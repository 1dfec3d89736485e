//! Logs (tracing-subscriber) and Prometheus metrics (prometheus-client, OpenMetrics text format).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::contract::env;

/// Logging flags shared by every subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// Log filter in `RUST_LOG` syntax.
    #[arg(long, env = env::LOG_FILTER, default_value = "info,kube=warn", global = true)]
    pub log_filter: String,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = env::LOG_FORMAT, default_value = "text", value_parser = ["text", "json"], global = true)]
    pub log_format: String,
}

/// Install the global subscriber; logs go to stderr so step output on stdout stays clean.
pub fn init_logging(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colour only for a person at a terminal; never in files or log pipelines.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if args.log_format == "json" { builder.json().try_init() } else { builder.try_init() };
}

/// The `controller` label: the kind a controller reconciles (`HealingRun`, `HealingAttempt`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `HealingRun` or `HealingAttempt`.
    pub controller: String,
}

/// The labels of a failed reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `HealingRun` or `HealingAttempt`.
    pub controller: String,
    /// The error's stable reason (`Conflict`, `UnknownProfile`, …), never its message.
    pub reason: String,
}

/// The label of a run's phase transition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// The new phase (`Running`, `Fixed`, …).
    pub phase: String,
}

/// The labels of a finished attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `Succeeded` or `Failed`.
    pub outcome: String,
    /// The verdict's or failed step's reason (`ValidationPassed`, `TestWeakened`, `CommitNotFound` …).
    pub reason: String,
}

/// The controller's metrics (OpenMetrics, prefix `cihealer_`). Label values are stable reasons,
/// never object names.
#[derive(Clone)]
pub struct Metrics {
    /// `cihealer_reconciles_total{controller}`: reconciles started.
    pub reconciles: Family<ControllerLabels, Counter>,
    /// `cihealer_reconcile_errors_total{controller,reason}`: reconciles that failed.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// `cihealer_reconcile_duration_seconds{controller}`: reconcile duration, seconds.
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    /// `cihealer_run_transitions_total{phase}`: HealingRun phase changes by new phase.
    pub run_transitions: Family<PhaseLabels, Counter>,
    /// `cihealer_attempts_finished_total{outcome,reason}`: HealingAttempts that ended.
    pub attempts_finished: Family<OutcomeLabels, Counter>,
    /// `cihealer_jobs_created_total`: attempt Jobs created.
    pub jobs_created: Counter,
    /// `cihealer_status_writes_total{controller}`: status writes (server-side apply of the status
    /// subresource); a controller at rest writes none.
    pub status_writes: Family<ControllerLabels, Counter>,
}

impl Metrics {
    /// Create the metrics and register them under the `cihealer` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 14))),
            run_transitions: Family::default(),
            attempts_finished: Family::default(),
            jobs_created: Counter::default(),
            status_writes: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("cihealer");
        r.register("reconciles", "Reconciliations by controller", m.reconciles.clone());
        r.register("reconcile_errors", "Failed reconciliations by controller and reason", m.reconcile_errors.clone());
        r.register("reconcile_duration_seconds", "Reconciliation duration in seconds", m.reconcile_duration.clone());
        r.register("run_transitions", "HealingRun phase transitions by new phase", m.run_transitions.clone());
        r.register("attempts_finished", "HealingAttempts finished by outcome and reason", m.attempts_finished.clone());
        r.register("jobs_created", "Attempt Jobs created", m.jobs_created.clone());
        r.register(
            "status_writes",
            "Status writes (server-side apply of the status subresource) by controller",
            m.status_writes.clone(),
        );
        m
    }
}
