//! Logs (tracing-subscriber) and Prometheus metrics (prometheus-client, OpenMetrics text format).
//!
//! Every metric is named `cihealer_…` in base units (seconds, tokens, US dollars), counters end in
//! `_total`, and [`CATALOGUE`] lists each with its type and labels (the README's metric table is
//! generated from it, and a test pins a real scrape against it). Label values are bounded: stable
//! reasons, phases, classes, profiles, namespaces, and repositories up to
//! `--metrics-repository-limit` distinct values ([`RepositoryLabel`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};

use kube::ResourceExt;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::contract::settings::LlmProvider;
use crate::crd::conditions::{self, RunCondition};
use crate::crd::{HealingAttempt, HealingAttemptStatus, HealingRun, HealingRunStatus, RunPhase};

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

/// `controller`: `HealingRun` or `HealingAttempt`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `HealingRun` or `HealingAttempt`.
    pub controller: String,
}

/// A failed reconcile: the controller and the error's [`crate::crd::conditions::Reason`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `HealingRun` or `HealingAttempt`.
    pub controller: String,
    /// The error's stable reason (`Conflict`, `UnknownProfile`, …), never its message.
    pub reason: String,
}

/// `phase`: a [`RunPhase`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// The new phase (`Running`, `Fixed`, …).
    pub phase: String,
}

/// Where a run came from and how triage routed it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// The HealingRun's namespace.
    pub namespace: String,
    /// `owner/name`, or `_other` past the repository limit, or empty when the label is off.
    pub repository: String,
    /// The triage class (`rust_fmt`, …), empty before triage.
    pub failure_class: String,
    /// The agent profile (`rust`, `frontend`, …), empty before triage.
    pub agent: String,
}

/// A finished run: [`RunLabels`] and its final phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishedRunLabels {
    /// Where the run came from and how it was routed.
    #[prometheus(flatten)]
    pub run: RunLabels,
    /// `Fixed`, `Escalated` or `Aborted`.
    pub phase: String,
}

/// A finished attempt: its run's [`RunLabels`], its phase and reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// The attempt's run.
    #[prometheus(flatten)]
    pub run: RunLabels,
    /// `Succeeded` or `Failed`.
    pub outcome: String,
    /// `ValidationPassed`, or the attempt's `failureReason` (`ValidationFailed`, `VerdictMissing`, …).
    pub reason: String,
}

/// One step of an attempt pod.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// `checkout`, `agent` or `validate`.
    pub step: String,
    /// The agent profile (`rust`, `frontend`, …).
    pub agent: String,
    /// The attempt's outcome (`Succeeded`, `Failed`).
    pub outcome: String,
}

/// LLM usage of an attempt's agent step.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LlmLabels {
    /// The HealingRun's namespace.
    pub namespace: String,
    /// The agent profile (`rust`, `frontend`, …).
    pub agent: String,
    /// `anthropic` or `openai-compatible` (the wire format).
    pub provider: String,
    /// The model name as the profile sets it.
    pub model: String,
}

/// LLM tokens: [`LlmLabels`] and the direction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// Who used the tokens.
    #[prometheus(flatten)]
    pub llm: LlmLabels,
    /// `input` (prompt, cache reads and writes included) or `output`.
    pub direction: String,
}

/// `cihealer_github_requests_total`'s labels: one finished GitHub REST call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GitHubCallLabels {
    /// GitHub's OpenAPI `operationId`, e.g. `pulls/create` (a fixed set: the calls the client makes).
    pub operation: String,
    /// `ok`, `not_modified`, `rate_limited`, `server_error`, `transport_error` or `client_error`
    /// ([`crate::github::http::CallRecord::outcome`]).
    pub outcome: String,
}

/// `cihealer_slack_notifications_total`'s labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlackLabels {
    /// `sent` (the message or thread caught up), `unavailable` (5xx, 429, timeout, paused: tried
    /// again later) or `rejected` (Slack refused for good).
    pub outcome: String,
}

/// `cihealer_commands_total`'s labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    /// The `/healer` command: `fix`, `retry`, `approve`, `deny`, `abort`, `resolve`, `help`,
    /// `unknown`, or `none` (no `/healer` line).
    pub command: String,
    /// The final phase, lowercase: `applied`, `refused` or `ignored`.
    pub outcome: String,
}

/// `cihealer_github_rate_limit_wait_seconds`' labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GitHubOperationLabels {
    /// GitHub's OpenAPI `operationId` of the rate-limited call.
    pub operation: String,
}

/// A run the controller does not heal (or not by itself), and why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    /// The HealingRun's namespace.
    pub namespace: String,
    /// The `Accepted=False` reason (`UnknownProfile`, `ModeNotImplemented`, `ProviderNotSupported`);
    /// the webhook receiver's loop prevention and opt-outs add theirs.
    pub reason: String,
}

/// A namespace and repository.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepositoryLabels {
    /// The HealingRun's namespace.
    pub namespace: String,
    /// `owner/name`, or `_other` past the repository limit, or empty when the label is off.
    pub repository: String,
}

/// The binary's version.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version (`CARGO_PKG_VERSION`).
    pub version: String,
}

/// One metric as a scrape shows it: the family name (counters without their `_total` suffix, as
/// OpenMetrics names families), its type and its labels, in the order a sample carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricInfo {
    /// The family name (`# TYPE` line).
    pub name: &'static str,
    /// `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
    /// Label names, in order.
    pub labels: &'static [&'static str],
    /// What it counts, in which unit.
    pub help: &'static str,
}

const RUN: &[&str] = &["namespace", "repository", "failure_class", "agent"];

/// Every metric the controller exports. The README's table is generated from this list
/// (`healer metrics-table`), and `tests/metrics.rs` checks a real scrape against it.
pub const CATALOGUE: &[MetricInfo] = &[
    MetricInfo {
        name: "cihealer_runs_finished",
        kind: "counter",
        labels: &["namespace", "repository", "failure_class", "agent", "phase"],
        help: "HealingRuns that reached a final phase (Fixed, Escalated, Aborted)",
    },
    MetricInfo {
        name: "cihealer_run_transitions",
        kind: "counter",
        labels: &["phase"],
        help: "HealingRun phase transitions by new phase",
    },
    MetricInfo {
        name: "cihealer_runs",
        kind: "gauge",
        labels: &["namespace", "phase"],
        help: "HealingRuns in the controller's cache by phase (Queued is the work waiting)",
    },
    MetricInfo {
        name: "cihealer_time_to_fix_seconds",
        kind: "histogram",
        labels: RUN,
        help: "Seconds from the failure's delivery (the HealingRun's creation) to a validated fix",
    },
    MetricInfo {
        name: "cihealer_time_to_pr_seconds",
        kind: "histogram",
        labels: RUN,
        help: "Seconds from the failure's delivery (the HealingRun's creation) to its draft pull request (Delivered=True)",
    },
    MetricInfo {
        name: "cihealer_run_attempts",
        kind: "histogram",
        labels: &["namespace", "phase"],
        help: "Attempts a finished HealingRun started, by final phase",
    },
    MetricInfo {
        name: "cihealer_attempts_finished",
        kind: "counter",
        labels: &["namespace", "repository", "failure_class", "agent", "outcome", "reason"],
        help: "HealingAttempts finished by outcome and reason",
    },
    MetricInfo {
        name: "cihealer_attempt_step_duration_seconds",
        kind: "histogram",
        labels: &["step", "agent", "outcome"],
        help: "Seconds each step of an attempt pod took (checkout, agent, validate), as its verdict reports",
    },
    MetricInfo {
        name: "cihealer_llm_tokens",
        kind: "counter",
        labels: &["namespace", "agent", "provider", "model", "direction"],
        help: "LLM tokens the agent steps used, as the providers reported them",
    },
    MetricInfo {
        name: "cihealer_llm_cost_usd",
        kind: "counter",
        labels: &["namespace", "agent", "provider", "model"],
        help: "Estimated LLM cost in US dollars, from the profile's price table (llm.price, llmPrices)",
    },
    MetricInfo {
        name: "cihealer_runs_deduplicated",
        kind: "counter",
        labels: &["namespace", "repository"],
        help: "HealingRuns found to duplicate an active run (same repository, head SHA and error hash)",
    },
    MetricInfo {
        name: "cihealer_runs_skipped",
        kind: "counter",
        labels: &["namespace", "reason"],
        help: "HealingRuns the controller does not heal, by reason",
    },
    MetricInfo { name: "cihealer_jobs_created", kind: "counter", labels: &[], help: "Attempt Jobs created" },
    MetricInfo {
        name: "cihealer_slack_notifications",
        kind: "counter",
        labels: &["outcome"],
        help: "Tries to bring a run's Slack message up to date, by outcome (sent, unavailable: retried later, rejected: refused for good)",
    },
    MetricInfo {
        name: "cihealer_commands",
        kind: "counter",
        labels: &["command", "outcome"],
        help: "/healer comment commands answered, by command and outcome (applied, refused, ignored)",
    },
    MetricInfo {
        name: "cihealer_github_requests",
        kind: "counter",
        labels: &["operation", "outcome"],
        help: "GitHub REST calls by operationId and outcome (ok, not_modified, rate_limited, server_error, transport_error, client_error)",
    },
    MetricInfo {
        name: "cihealer_github_rate_limit_wait_seconds",
        kind: "histogram",
        labels: &["operation"],
        help: "Waits GitHub asked for when it rate-limited a call (Retry-After, x-ratelimit-reset), in seconds; the run requeues after it",
    },
    MetricInfo {
        name: "cihealer_reconciles",
        kind: "counter",
        labels: &["controller"],
        help: "Reconciliations by controller",
    },
    MetricInfo {
        name: "cihealer_reconcile_errors",
        kind: "counter",
        labels: &["controller", "reason"],
        help: "Failed reconciliations by controller and reason",
    },
    MetricInfo {
        name: "cihealer_reconcile_duration_seconds",
        kind: "histogram",
        labels: &["controller"],
        help: "Reconciliation duration in seconds",
    },
    MetricInfo {
        name: "cihealer_last_reconcile_timestamp_seconds",
        kind: "gauge",
        labels: &["controller"],
        help: "Unix time of the last finished reconcile, by controller",
    },
    MetricInfo {
        name: "cihealer_status_writes",
        kind: "counter",
        labels: &["controller"],
        help: "Status writes (server-side apply of the status subresource) by controller",
    },
    MetricInfo {
        name: "cihealer_leader",
        kind: "gauge",
        labels: &[],
        help: "1 when this replica holds the leader Lease (or runs without leader election), else 0",
    },
    MetricInfo {
        name: "cihealer_build_info",
        kind: "gauge",
        labels: &["version"],
        help: "Always 1; the version of the running binary",
    },
];

fn help(name: &str) -> &'static str {
    CATALOGUE.iter().find(|m| m.name.strip_prefix("cihealer_") == Some(name)).map(|m| m.help).unwrap_or("")
}

/// The metric table for the README: name (as queried), type, labels, meaning.
pub fn catalogue_markdown() -> String {
    let mut out = String::from("| metric | type | labels | meaning |\n|---|---|---|---|\n");
    for m in CATALOGUE {
        let name = if m.kind == "counter" { format!("{}_total", m.name) } else { m.name.to_string() };
        let labels = if m.labels.is_empty() { "—".to_string() } else { m.labels.join(", ") };
        out.push_str(&format!("| `{name}` | {} | {labels} | {} |\n", m.kind, m.help));
    }
    out
}

/// How many distinct repositories the `repository` label takes: up to `limit` values as they are
/// first seen, then `_other`; a limit of 0 turns the label off (always empty, so Prometheus drops
/// it). Bounds the series of a large fleet: set `--metrics-repository-limit` (default 100).
#[derive(Debug)]
pub struct RepositoryLabel {
    limit: usize,
    seen: Mutex<HashSet<String>>,
}

/// The `repository` value of repositories past the limit.
pub const OTHER_REPOSITORY: &str = "_other";

impl RepositoryLabel {
    /// A label that keeps up to `limit` repositories (0: off).
    pub fn new(limit: usize) -> Self {
        Self { limit, seen: Mutex::new(HashSet::new()) }
    }

    /// The label value for `repository`.
    pub fn value(&self, repository: &str) -> String {
        if self.limit == 0 {
            return String::new();
        }
        let mut seen = self.seen.lock().expect("repository label set");
        if seen.contains(repository) {
            return repository.to_string();
        }
        if seen.len() < self.limit {
            seen.insert(repository.to_string());
            return repository.to_string();
        }
        OTHER_REPOSITORY.to_string()
    }
}

/// The default `--metrics-repository-limit`.
pub const DEFAULT_REPOSITORY_LIMIT: usize = 100;

/// `cihealer_runs{namespace, phase}`, counted from the run controller's reflector at scrape time.
#[derive(Debug, Default, Clone)]
struct RunsByPhase(Arc<OnceLock<Store<HealingRun>>>);

impl Collector for RunsByPhase {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.0.get() else { return Ok(()) };
        let mut counts: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
        for r in store.state() {
            let phase = r.status.as_ref().and_then(|s| s.phase).unwrap_or_default().as_str();
            *counts.entry((r.namespace().unwrap_or_default(), phase)).or_default() += 1;
        }
        let mut family = encoder.encode_descriptor("runs", help("runs"), None, MetricType::Gauge)?;
        for ((namespace, phase), n) in counts {
            let labels = RepositoryPhaseLabels { namespace, phase: phase.to_string() };
            ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The controller's metrics (see [`CATALOGUE`]).
#[derive(Clone)]
pub struct Metrics {
    /// `cihealer_reconciles_total{controller}`: reconciles started.
    pub reconciles: Family<ControllerLabels, Counter>,
    /// `cihealer_reconcile_errors_total{controller,reason}`: reconciles that failed.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// `cihealer_reconcile_duration_seconds{controller}`: reconcile duration, seconds.
    pub reconcile_duration: Family<ControllerLabels, Histogram>,
    /// `cihealer_last_reconcile_timestamp_seconds{controller}`: Unix time of the last reconcile, seconds.
    pub last_reconcile: Family<ControllerLabels, Gauge<f64, AtomicU64>>,
    /// `cihealer_run_transitions_total{phase}`: HealingRun phase changes by new phase.
    pub run_transitions: Family<PhaseLabels, Counter>,
    /// `cihealer_runs_finished_total{namespace,repository,failure_class,agent,phase}`: runs that reached a final phase.
    pub runs_finished: Family<FinishedRunLabels, Counter>,
    /// `cihealer_time_to_fix_seconds`: from the run's creation to its Fixed status, seconds.
    pub time_to_fix: Family<RunLabels, Histogram>,
    /// `cihealer_time_to_pr_seconds{namespace,repository,failure_class,agent}`: from the run's creation
    /// to the `Delivered=True` condition's `lastTransitionTime` (the draft pull request opened or found
    /// by the controller in `mode: pull-request`), seconds; buckets [`TIME_TO_FIX_BUCKETS`].
    pub time_to_pr: Family<RunLabels, Histogram>,
    /// `cihealer_run_attempts{namespace,phase}`: attempts a finished run used.
    pub run_attempts: Family<RepositoryPhaseLabels, Histogram>,
    /// `cihealer_attempts_finished_total{…run labels,outcome,reason}`: HealingAttempts that ended.
    pub attempts_finished: Family<AttemptLabels, Counter>,
    /// `cihealer_attempt_step_duration_seconds{step,agent,outcome}`: duration of an attempt pod's step, seconds.
    pub step_duration: Family<StepLabels, Histogram>,
    /// `cihealer_llm_tokens_total{namespace,agent,provider,model,direction}`: LLM tokens used.
    pub llm_tokens: Family<TokenLabels, Counter>,
    /// `cihealer_llm_cost_usd_total{namespace,agent,provider,model}`: estimated LLM cost, US dollars (from the price table).
    pub llm_cost: Family<LlmLabels, Counter<f64, AtomicU64>>,
    /// `cihealer_runs_deduplicated_total{namespace,repository}`: runs marked duplicate of another.
    pub runs_deduplicated: Family<RepositoryLabels, Counter>,
    /// `cihealer_runs_skipped_total{namespace,reason}`: runs not healed (`Accepted=False`), by reason.
    pub runs_skipped: Family<SkipLabels, Counter>,
    /// `cihealer_jobs_created_total`: attempt Jobs created.
    pub jobs_created: Counter,
    /// `cihealer_github_requests_total{operation,outcome}`: GitHub REST calls (fed by [`Metrics::github_observer`]).
    pub github_requests: Family<GitHubCallLabels, Counter>,
    /// `cihealer_github_rate_limit_wait_seconds{operation}`: the wait of each rate-limited GitHub call, seconds.
    pub github_rate_limit_wait: Family<GitHubOperationLabels, Histogram>,
    /// `cihealer_slack_notifications_total{outcome}`: tries to bring a run's Slack message up to date.
    pub slack_notifications: Family<SlackLabels, Counter>,
    /// `cihealer_commands_total{command,outcome}`: `/healer` comment commands answered.
    pub commands: Family<CommandLabels, Counter>,
    /// `cihealer_status_writes_total{controller}`: status writes (server-side apply of the status
    /// subresource); a controller at rest writes none.
    pub status_writes: Family<ControllerLabels, Counter>,
    /// `cihealer_leader`: 1 while this replica holds the leader Lease, else 0.
    pub leader: Gauge,
    repository: Arc<RepositoryLabel>,
    runs: RunsByPhase,
}

/// `cihealer_run_attempts`' labels: namespace and final phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepositoryPhaseLabels {
    /// The HealingRun's namespace.
    pub namespace: String,
    /// The run's final phase.
    pub phase: String,
}

/// `cihealer_time_to_fix_seconds` buckets, in seconds: 30 s to 2 h, with 5 and 10 minutes (the
/// alert thresholds) as bucket bounds so the p95 alert is exact there.
pub const TIME_TO_FIX_BUCKETS: [f64; 12] =
    [30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0];

impl Metrics {
    /// Create the metrics with the default repository limit and register them under `cihealer_`.
    pub fn register(registry: &mut Registry) -> Self {
        Self::register_with(registry, DEFAULT_REPOSITORY_LIMIT)
    }

    /// Create the metrics, keeping up to `repository_limit` repositories as label values (0: no
    /// repository label), and register them under the `cihealer` prefix.
    pub fn register_with(registry: &mut Registry, repository_limit: usize) -> Self {
        let m = Self {
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 14))),
            last_reconcile: Family::default(),
            run_transitions: Family::default(),
            runs_finished: Family::default(),
            time_to_fix: Family::new_with_constructor(|| Histogram::new(TIME_TO_FIX_BUCKETS)),
            time_to_pr: Family::new_with_constructor(|| Histogram::new(TIME_TO_FIX_BUCKETS)),
            run_attempts: Family::new_with_constructor(|| Histogram::new([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0])),
            attempts_finished: Family::default(),
            step_duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.5, 2.0, 14))),
            llm_tokens: Family::default(),
            llm_cost: Family::default(),
            runs_deduplicated: Family::default(),
            runs_skipped: Family::default(),
            jobs_created: Counter::default(),
            github_requests: Family::default(),
            github_rate_limit_wait: Family::new_with_constructor(|| {
                Histogram::new([1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0])
            }),
            slack_notifications: Family::default(),
            commands: Family::default(),
            status_writes: Family::default(),
            leader: Gauge::default(),
            repository: Arc::new(RepositoryLabel::new(repository_limit)),
            runs: RunsByPhase::default(),
        };
        let r = registry.sub_registry_with_prefix("cihealer");
        macro_rules! reg {
            ($name:literal, $metric:expr) => {
                r.register($name, help($name), $metric)
            };
        }
        reg!("runs_finished", m.runs_finished.clone());
        reg!("run_transitions", m.run_transitions.clone());
        reg!("time_to_fix_seconds", m.time_to_fix.clone());
        reg!("time_to_pr_seconds", m.time_to_pr.clone());
        reg!("run_attempts", m.run_attempts.clone());
        reg!("attempts_finished", m.attempts_finished.clone());
        reg!("attempt_step_duration_seconds", m.step_duration.clone());
        reg!("llm_tokens", m.llm_tokens.clone());
        reg!("llm_cost_usd", m.llm_cost.clone());
        reg!("runs_deduplicated", m.runs_deduplicated.clone());
        reg!("runs_skipped", m.runs_skipped.clone());
        reg!("jobs_created", m.jobs_created.clone());
        reg!("github_requests", m.github_requests.clone());
        reg!("github_rate_limit_wait_seconds", m.github_rate_limit_wait.clone());
        reg!("slack_notifications", m.slack_notifications.clone());
        reg!("commands", m.commands.clone());
        reg!("reconciles", m.reconciles.clone());
        reg!("reconcile_errors", m.reconcile_errors.clone());
        reg!("reconcile_duration_seconds", m.reconcile_duration.clone());
        reg!("last_reconcile_timestamp_seconds", m.last_reconcile.clone());
        reg!("status_writes", m.status_writes.clone());
        reg!("leader", m.leader.clone());
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").into() }).set(1);
        reg!("build_info", build);
        r.register_collector(Box::new(m.runs.clone()));
        m
    }

    /// Count `cihealer_runs` from `store` from now on (the run controller's reflector).
    pub fn watch_runs(&self, store: Store<HealingRun>) {
        let _ = self.runs.0.set(store);
    }

    /// The labels of `run` (its status as given, which may be newer than the object's).
    pub fn run_labels(&self, run: &HealingRun, status: Option<&HealingRunStatus>) -> RunLabels {
        let status = status.or(run.status.as_ref());
        RunLabels {
            namespace: run.namespace().unwrap_or_default(),
            repository: self.repository.value(&run.spec.source.repository),
            failure_class: status.and_then(|s| s.failure_class).map(|c| c.as_str().to_string()).unwrap_or_default(),
            agent: status.and_then(|s| s.agent.clone()).unwrap_or_default(),
        }
    }

    /// Record a run's status change from `old` to `new`: phase transitions, a final phase (with time to
    /// fix and attempts per run), a pull request delivered (time to PR), a duplicate found, a run skipped. Each is counted once, on the write
    /// that changes it, so a restarted controller (which finds the status already written) never
    /// counts it again.
    pub fn run_status_changed(&self, run: &HealingRun, old: Option<&HealingRunStatus>, new: &HealingRunStatus) {
        let old_phase = old.and_then(|s| s.phase);
        let ns = run.namespace().unwrap_or_default();
        if let Some(p) = new.phase.filter(|p| Some(*p) != old_phase) {
            self.run_transitions.get_or_create(&PhaseLabels { phase: p.as_str().into() }).inc();
            if p.is_terminal() {
                let labels = self.run_labels(run, Some(new));
                self.runs_finished
                    .get_or_create(&FinishedRunLabels { run: labels.clone(), phase: p.as_str().into() })
                    .inc();
                self.run_attempts
                    .get_or_create(&RepositoryPhaseLabels { namespace: ns.clone(), phase: p.as_str().into() })
                    .observe(f64::from(new.attempts.max(0)));
                if p == RunPhase::Fixed
                    && let Some(seconds) =
                        seconds_between(run.metadata.creation_timestamp.as_ref(), new.completion_time.as_ref())
                {
                    self.time_to_fix.get_or_create(&labels).observe(seconds);
                }
            }
        }
        let empty = Vec::new();
        let old_conditions = old.map(|s| &s.conditions).unwrap_or(&empty);
        let became = |t: RunCondition, status: &str| {
            conditions::get(&new.conditions, t).filter(|c| c.status == status).filter(|c| {
                conditions::get(old_conditions, t).map(|o| (&o.status, &o.reason)) != Some((&c.status, &c.reason))
            })
        };
        if let Some(c) = became(RunCondition::Delivered, conditions::TRUE)
            && let Some(seconds) =
                seconds_between(run.metadata.creation_timestamp.as_ref(), Some(&c.last_transition_time))
        {
            self.time_to_pr.get_or_create(&self.run_labels(run, Some(new))).observe(seconds);
        }
        if became(RunCondition::Duplicate, conditions::TRUE).is_some() {
            let repository = self.repository.value(&run.spec.source.repository);
            self.runs_deduplicated.get_or_create(&RepositoryLabels { namespace: ns.clone(), repository }).inc();
        }
        if let Some(c) = became(RunCondition::Accepted, conditions::FALSE) {
            self.runs_skipped.get_or_create(&SkipLabels { namespace: ns.clone(), reason: c.reason.clone() }).inc();
        }
    }

    /// The observer the GitHub client calls after every REST call ([`crate::github::http::Observer`]):
    /// counts it by operation and outcome, and records a rate limit's wait.
    pub fn github_observer(&self) -> crate::github::http::Observer {
        let (requests, waits) = (self.github_requests.clone(), self.github_rate_limit_wait.clone());
        Arc::new(move |c: &crate::github::http::CallRecord| {
            let operation = c.operation.to_string();
            requests.get_or_create(&GitHubCallLabels { operation: operation.clone(), outcome: c.outcome.into() }).inc();
            if let Some(w) = c.wait {
                waits.get_or_create(&GitHubOperationLabels { operation }).observe(w.as_secs_f64());
            }
        })
    }

    /// Record an attempt that reached a final phase (`status`): its outcome and reason, its steps'
    /// durations, its LLM tokens and cost. `run` gives the class and repository labels (when the run
    /// is gone, the attempt's own source and profile).
    pub fn attempt_finished(&self, attempt: &HealingAttempt, run: Option<&HealingRun>, status: &HealingAttemptStatus) {
        let Some(phase) = status.phase.filter(|p| p.is_terminal()) else { return };
        let outcome = phase.as_str().to_string();
        let mut labels = match run {
            Some(r) => self.run_labels(r, None),
            None => RunLabels {
                namespace: attempt.namespace().unwrap_or_default(),
                repository: attempt
                    .spec
                    .source
                    .as_ref()
                    .map(|s| self.repository.value(&s.repository))
                    .unwrap_or_default(),
                failure_class: String::new(),
                agent: String::new(),
            },
        };
        labels.agent = attempt.spec.profile.clone();
        let reason = status
            .failure_reason
            .clone()
            .unwrap_or_else(|| crate::crd::conditions::Reason::ValidationPassed.as_str().into());
        self.attempts_finished
            .get_or_create(&AttemptLabels { run: labels.clone(), outcome: outcome.clone(), reason })
            .inc();
        let Some(verdict) = &status.verdict else { return };
        if let Some(d) = &verdict.durations {
            for (step, seconds) in
                [("checkout", d.checkout_seconds), ("agent", d.agent_seconds), ("validate", d.validate_seconds)]
            {
                if let Some(s) = seconds.filter(|s| s.is_finite() && *s >= 0.0) {
                    let l = StepLabels { step: step.into(), agent: labels.agent.clone(), outcome: outcome.clone() };
                    self.step_duration.get_or_create(&l).observe(s);
                }
            }
        }
        if let Some(t) = verdict.tokens.as_ref().filter(|t| t.input > 0 || t.output > 0) {
            let llm = attempt.spec.settings.as_ref().and_then(|s| s.llm.as_ref());
            let llm = LlmLabels {
                namespace: labels.namespace.clone(),
                agent: labels.agent.clone(),
                provider: llm.map(|l| provider_name(l.provider)).unwrap_or("unknown").into(),
                model: llm.map(|l| l.model.clone()).unwrap_or_else(|| "unknown".into()),
            };
            for (direction, n) in [("input", t.input), ("output", t.output)] {
                let l = TokenLabels { llm: llm.clone(), direction: direction.into() };
                self.llm_tokens.get_or_create(&l).inc_by(u64::try_from(n).unwrap_or(0));
            }
            if let Some(micros) = t.cost_micro_usd.filter(|m| *m > 0) {
                self.llm_cost.get_or_create(&llm).inc_by(micros as f64 / 1e6);
            }
        }
    }

    /// Count a `/healer` command that reached a final phase.
    pub fn command_finished(&self, command: &str, phase: crate::crd::CommandPhase) {
        let outcome = phase.as_str().to_ascii_lowercase();
        self.commands.get_or_create(&CommandLabels { command: command.into(), outcome }).inc();
    }

    /// Record this replica's leadership (1: it reconciles; 0: it waits or lost the Lease).
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }
}

/// The OpenMetrics content type (what Prometheus asks for first).
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The Prometheus text format 0.0.4 content type (older scrapers, `curl`, `promtool check metrics`).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Encode `registry` for a scraper that sent `accept` (the HTTP `Accept` header): OpenMetrics when
/// it asks for `application/openmetrics-text` (as Prometheus does), else the Prometheus text format
/// 0.0.4, the exposition format negotiation of the Prometheus client libraries. Returns the content
/// type and the body. Errors: a metric could not be encoded (a bug).
pub fn encode_for(accept: Option<&str>, registry: &Registry) -> Result<(&'static str, String), std::fmt::Error> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, registry)?;
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        Ok((OPENMETRICS_CONTENT_TYPE, body))
    } else {
        Ok((TEXT_CONTENT_TYPE, openmetrics_to_text(&body)))
    }
}

/// Rewrite OpenMetrics text (as prometheus-client writes it) in the Prometheus text format 0.0.4:
/// counter families are named by their `_total` samples, `# UNIT` and `# EOF` are dropped. Samples
/// are unchanged (their names are already the same in both formats).
pub fn openmetrics_to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "gauge" | "histogram" | "summary" => (name.to_string(), kind),
                _ => (name.to_string(), "untyped"),
            };
            if let Some(h) = help.take() {
                let text = h.strip_prefix("# HELP ").and_then(|r| r.split_once(' ')).map(|(_, t)| t).unwrap_or("");
                out.push_str(&format!("# HELP {name} {}\n", text.replace("\\\"", "\"")));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The `provider` label of an LLM wire format.
fn provider_name(p: LlmProvider) -> &'static str {
    match p {
        LlmProvider::Anthropic => "anthropic",
        LlmProvider::OpenaiCompatible => "openai-compatible",
    }
}

fn seconds_between(
    from: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    to: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
) -> Option<f64> {
    let d = to?.0.duration_since(from?.0).as_secs_f64();
    (d >= 0.0).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_counters_become_total_families_in_the_text_format() {
        let om = "# HELP cihealer_reconciles Reconciliations.\n# TYPE cihealer_reconciles counter\ncihealer_reconciles_total{controller=\"HealingRun\"} 3\n# HELP cihealer_leader Leader.\n# TYPE cihealer_leader gauge\ncihealer_leader 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP cihealer_reconciles_total Reconciliations.\n# TYPE cihealer_reconciles_total counter\ncihealer_reconciles_total{controller=\"HealingRun\"} 3\n# HELP cihealer_leader Leader.\n# TYPE cihealer_leader gauge\ncihealer_leader 1\n"
        );
    }

    #[test]
    fn repository_label_is_capped_and_can_be_turned_off() {
        let l = RepositoryLabel::new(2);
        assert_eq!(l.value("a/x"), "a/x");
        assert_eq!(l.value("a/y"), "a/y");
        assert_eq!(l.value("a/z"), OTHER_REPOSITORY);
        assert_eq!(l.value("a/x"), "a/x", "a repository seen before the cap keeps its value");
        assert_eq!(RepositoryLabel::new(0).value("a/x"), "");
    }

    #[test]
    fn time_to_pr_is_observed_once_when_delivered_turns_true() {
        use crate::crd::{FailureSource, HealingPolicy, HealingRunSpec, conditions::Reason};
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        let mut run = HealingRun::new(
            "r",
            HealingRunSpec {
                source: FailureSource { repository: "o/r".into(), branch: "main".into(), ..Default::default() },
                failure: None,
                policy: HealingPolicy::default(),
                action: None,
                action_request: None,
            },
        );
        run.metadata.namespace = Some("ns".into());
        let created = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        run.metadata.creation_timestamp = Some(Time(created));
        let at = |s: i64| Time(jiff::Timestamp::from_second(1_700_000_000 + s).unwrap());
        let fixed = HealingRunStatus { phase: Some(RunPhase::Fixed), ..Default::default() };
        let mut delivered = fixed.clone();
        let c = |ok| conditions::new(RunCondition::Delivered, ok, Reason::PullRequestOpened, "", None, at(150));
        delivered.conditions.push(c(true));
        let mut refused = fixed.clone();
        refused.conditions.push(c(false));
        m.run_status_changed(&run, None, &fixed);
        m.run_status_changed(&run, Some(&fixed), &refused);
        m.run_status_changed(&run, Some(&fixed), &delivered);
        // A later write that keeps the condition (a restarted controller, a status refresh) does not count again.
        m.run_status_changed(&run, Some(&delivered), &delivered);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let labels = r#"namespace="ns",repository="o/r",failure_class="",agent="""#;
        assert!(text.contains(&format!("cihealer_time_to_pr_seconds_count{{{labels}}} 1\n")), "{text}");
        assert!(text.contains(&format!("cihealer_time_to_pr_seconds_sum{{{labels}}} 150.0\n")), "{text}");
    }

    #[test]
    fn every_registered_metric_is_in_the_catalogue_and_has_help() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        // Touch every family so the scrape shows it.
        m.leader.set(1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split_whitespace().nth(2).unwrap();
            let info = CATALOGUE.iter().find(|i| i.name == name);
            assert!(info.is_some_and(|i| !i.help.is_empty()), "{name} is not in CATALOGUE");
        }
        let names: HashSet<_> = CATALOGUE.iter().map(|i| i.name).collect();
        assert_eq!(names.len(), CATALOGUE.len(), "names are unique");
        for i in CATALOGUE {
            assert!(!help(i.name.strip_prefix("cihealer_").unwrap()).is_empty());
            let unit_ok = match i.kind {
                "counter" => !i.name.ends_with("_total"),
                "histogram" => i.name.ends_with("_seconds") || i.name == "cihealer_run_attempts",
                _ => true,
            };
            assert!(unit_ok, "{} breaks the naming rules", i.name);
        }
    }
}
