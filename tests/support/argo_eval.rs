//! Argo Events' own code on our manifests: runs the Sensor evaluator (`hack/argo-eval`, a Go program
//! built from the `github.com/argoproj/argo-events` module by `hack/argo-eval.sh`) and reads its JSON.
//!
//! [`evaluate`] sends one GitHub delivery to the real GitHub EventSource listener and runs every
//! Sensor's dependencies and triggers on the event it publishes; [`check`] decodes and validates the
//! manifests only. The report types mirror `hack/argo-eval` (`Output`, `SensorReport`, …).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

/// The evaluator binary: built (or found in `~/.cache/ci-healer/bin`) once per test process.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new("bash")
            .arg(super::root().join("hack/argo-eval.sh"))
            .arg("build")
            .stderr(Stdio::inherit())
            .output()
            .expect("run hack/argo-eval.sh build");
        assert!(out.status.success(), "hack/argo-eval.sh build failed (Go and the Go module proxy are needed)");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// `config/argo-events/`, the manifests the project ships.
pub fn shipped() -> PathBuf {
    super::root().join("config/argo-events")
}

/// What one evaluator run printed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The Argo Events module version the evaluator is built from.
    pub argo_events: String,
    /// Why nothing was evaluated (invalid manifests or input).
    #[serde(default)]
    pub error: Option<String>,
    /// With `--check`: the EventSources and Sensors as Argo's types decode them.
    #[serde(default)]
    pub manifests: Option<Manifests>,
    #[serde(default)]
    pub delivery: Option<DeliveryReport>,
    /// The event as a Sensor sees it: `context` (CloudEvent attributes) and `data`
    /// (`{"headers": …, "body": …}`).
    #[serde(default)]
    pub event: Option<Value>,
    #[serde(default)]
    pub sensors: Vec<SensorReport>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifests {
    pub event_sources: Vec<Value>,
    pub sensors: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    pub event_source: String,
    pub event_name: String,
    pub github_event: String,
    /// The EventSource's `events` list holds this event (GitHub sends only those).
    pub subscribed: bool,
    /// The listener's HTTP answer.
    pub status: u16,
    pub response: String,
    pub published: bool,
    #[serde(default)]
    pub filtered_by: Option<String>,
    #[serde(default)]
    pub unevaluated: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SensorReport {
    pub name: String,
    pub namespace: String,
    pub dependencies: Vec<DependencyReport>,
    pub triggers: Vec<TriggerReport>,
}

/// `outcome`: `passed`, `dropped` (reasons name the filters that said no and the value they saw),
/// `error` (Argo discards the event with a warning) or `not-routed`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyReport {
    pub name: String,
    pub event_source_name: String,
    pub event_name: String,
    pub outcome: String,
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// `outcome`: `fired`, `not-fired` (see `reason`) or `error` (an execution's `error` says which
/// parameter or request failed; Argo then creates nothing).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerReport {
    pub name: String,
    pub conditions: String,
    pub outcome: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub executions: Vec<Execution>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub requests: Vec<Request>,
    #[serde(default)]
    pub error: Option<String>,
    /// What Argo's code printed, e.g. a template that fell back to its key or default.
    #[serde(default)]
    pub argo_output: Vec<String>,
}

/// One API request the trigger sent (client-go's fake dynamic client recorded it).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub verb: String,
    /// `group/version/resource`, e.g. `cihealer.dev/v1alpha1/healingruns`.
    pub resource: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub object: Option<Value>,
}

impl Report {
    /// Every object a trigger created, in Sensor and trigger order.
    pub fn created(&self) -> Vec<&Value> {
        self.executions()
            .flat_map(|e| &e.requests)
            .filter(|r| r.verb == "create")
            .filter_map(|r| r.object.as_ref())
            .collect()
    }

    pub fn executions(&self) -> impl Iterator<Item = &Execution> {
        self.sensors.iter().flat_map(|s| &s.triggers).flat_map(|t| &t.executions)
    }

    /// The dependency named `name` in any Sensor.
    pub fn dependency(&self, name: &str) -> &DependencyReport {
        self.sensors
            .iter()
            .flat_map(|s| &s.dependencies)
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no dependency {name} in {self:#?}"))
    }
}

/// One delivery: the `X-GitHub-Event`, the `X-GitHub-Delivery` id and the body bytes as GitHub
/// sends them.
pub struct Delivery<'a> {
    pub event: &'a str,
    pub id: &'a str,
    pub body: &'a [u8],
}

/// Run the manifests under `manifests` (files or directories) on `delivery`. Panics when the
/// evaluator fails to run or prints something that is not its report.
pub fn evaluate(manifests: &[&Path], delivery: &Delivery) -> Report {
    let mut args = manifest_args(manifests);
    args.extend(["--event", delivery.event, "--delivery", delivery.id, "--body", "-"].map(String::from));
    // Fixed CloudEvent attributes keep the output (and the committed sample) deterministic.
    args.extend(
        ["--event-id", "0123456789abcdef0123456789abcdef", "--event-time", "2024-01-01T00:00:00Z"].map(String::from),
    );
    run(&args, delivery.body)
}

/// Decode and validate the manifests only (`--check`).
pub fn check(manifests: &[&Path]) -> Report {
    let mut args = manifest_args(manifests);
    args.push("--check".into());
    run(&args, b"")
}

fn manifest_args(manifests: &[&Path]) -> Vec<String> {
    manifests.iter().flat_map(|m| ["-f".to_string(), m.display().to_string()]).collect()
}

fn run(args: &[String], stdin: &[u8]) -> Report {
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Sensor evaluator");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "argo-eval {args:?} printed no report ({e}; exit {:?}):\n{text}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
