//! One pure mapping from a GitHub delivery to the object it creates (a HealingRun for a failure, a
//! HealingCommand for a `/healer` comment): the same filters and the same names as the Argo Events
//! Sensor (`config/argo-events/sensor.yaml`), in Rust, for ci-healer's own receiver
//! ([`super::receiver`]). [`deliver`] is the entry point; [`map`] handles failures and [`command`]
//! comments.
//!
//! `tests/argo_events.rs` runs every real payload (and the derived ones) through Argo Events' own
//! code and through [`deliver`], and requires the same object (name, labels, spec) or, when Argo
//! drops the delivery, a [`Dropped`] that names the filter Argo's report names. A change to one side
//! fails that test until the other follows.
//!
//! | event | handled when | name |
//! |---|---|---|
//! | `workflow_job` | `completed`, conclusion `failure` | `gh-<run id>-<run attempt>-<job id>` |
//! | `check_run` | `completed`, conclusion `failure`, not the GitHub Actions app's, not ci-healer's own check | `gh-check-run-<id>` |
//! | `check_suite` | `completed`, conclusion `failure`, not the GitHub Actions app's | `gh-check-suite-<id>` |
//! | `status` | state `failure` or `error`, not ci-healer's own status | `gh-status-<id>` |
//!
//! Every kind also needs a branch (`ci-healer/*` branches are dropped) and a sender that is no bot
//! (`type: Bot`, or a login ending in `[bot]`).
//!
//! An `issue_comment` delivery becomes a HealingCommand named `ghc-<comment id>` (so a redelivery
//! collides) when its action is `created` (an edit or a deletion is no command), its author is no
//! bot (`comment.user.type: Bot`, or a login ending in `[bot]`), its body is at most
//! [`MAX_COMMENT_CHARS`] characters (GitHub's cap, and the CRD's) and one of its lines starts with
//! `/healer` as a word, after optional whitespace ([`is_command`]). Intake only records the comment;
//! the controller decides who may command and what the command does (see
//! [`crate::crd::HealingCommand`]).
//!
//! Filters are checked in the Sensor's order and the
//! first that says no is the answer. As in Argo, a filter's field that is absent drops the delivery
//! (Argo reports it as a filter error), and a filter compares the field's text as gjson prints it
//! (null is the empty string).
//!
//! Where Argo would create an object that the API server then refuses (a required field of the
//! wrong JSON type, an id that is not an integer), [`map`] refuses first with
//! [`Dropped::Missing`]: neither creates a run.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::crd::{
    FailureSource, HealingCommand, HealingCommandSpec, HealingPolicy, HealingRun, HealingRunSpec, Provider, SourceEvent,
};

/// The label both intakes set on the runs they create (Argo Events adds its own `events.argoproj.io/*`
/// labels next to it).
pub const CREATED_BY: &str = "app.kubernetes.io/created-by";

/// The name of ci-healer's own check run and commit status (`github.checkRunName`'s default): a
/// failed report of ci-healer's is never a failure to heal.
pub const OWN_CHECK: &str = "ci-healer";

/// The GitHub App whose check runs and suites copy workflow jobs and runs.
pub const ACTIONS_APP: &str = "github-actions";

/// The event a `/healer` comment arrives in (`X-GitHub-Event`).
pub const COMMAND_EVENT: &str = "issue_comment";

/// The Sensor's dependency (and trigger) for `/healer` comments.
pub const COMMAND_DEPENDENCY: &str = "healer-command";

/// What a comment's line starts with to be a command (followed by whitespace or the line's end).
pub const COMMAND_PREFIX: &str = "/healer";

/// The longest comment body that is recorded, in characters (Unicode scalar values): GitHub's cap on
/// a comment, and the CRD's `spec.body` `maxLength`.
pub const MAX_COMMENT_CHARS: usize = 65_536;

/// Which intake created a run: the value of its [`CREATED_BY`] label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// The Argo Events Sensor (`argo-events`).
    ArgoEvents,
    /// ci-healer's own receiver, `healer webhook` (`ci-healer-webhook`).
    Webhook,
}

impl Intake {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Intake::ArgoEvents => "argo-events",
            Intake::Webhook => "ci-healer-webhook",
        }
    }
}

/// The event kinds that can start a run (`X-GitHub-Event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `workflow_job`.
    WorkflowJob,
    /// `check_run`.
    CheckRun,
    /// `check_suite`.
    CheckSuite,
    /// `status`.
    Status,
}

impl Kind {
    /// Every kind, in the Sensor's order.
    pub const ALL: [Kind; 4] = [Kind::WorkflowJob, Kind::CheckRun, Kind::CheckSuite, Kind::Status];

    /// The kind of an `X-GitHub-Event` value, if it is one that can start a run.
    pub fn parse(event: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == event)
    }

    /// GitHub's name of the event.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::WorkflowJob => "workflow_job",
            Kind::CheckRun => "check_run",
            Kind::CheckSuite => "check_suite",
            Kind::Status => "status",
        }
    }

    /// The Sensor's dependency for this kind.
    pub const fn dependency(self) -> &'static str {
        match self {
            Kind::WorkflowJob => "workflow-job-failed",
            Kind::CheckRun => "check-run-failed",
            Kind::CheckSuite => "check-suite-failed",
            Kind::Status => "status-failed",
        }
    }

    /// The run's `spec.source.event`.
    pub const fn source_event(self) -> SourceEvent {
        match self {
            Kind::WorkflowJob => SourceEvent::WorkflowJob,
            Kind::CheckRun => SourceEvent::CheckRun,
            Kind::CheckSuite => SourceEvent::CheckSuite,
            Kind::Status => SourceEvent::Status,
        }
    }
}

/// Why a delivery starts no run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// The event kind is none that starts a run or carries a command (`ping`, `pull_request`, …).
    Unhandled {
        /// The `X-GitHub-Event` value.
        event: String,
    },
    /// A filter said no: not a failure, an own branch or check, a bot sender, an Actions copy; for a
    /// comment: not a new comment, a bot author, too long, no `/healer` line.
    Filtered {
        /// The Sensor's filter path, e.g. `body.workflow_job.conclusion`.
        path: &'static str,
        /// What the filter wants.
        rule: &'static str,
        /// What the delivery had (`absent` when the field is missing).
        got: String,
    },
    /// A field the run needs is absent or of the wrong JSON type.
    Missing {
        /// The Sensor's parameter path, e.g. `body.workflow_job.head_sha`.
        path: &'static str,
    },
}

impl Dropped {
    /// The filter or parameter path, for a [`Dropped::Filtered`] or [`Dropped::Missing`].
    pub fn path(&self) -> Option<&'static str> {
        match self {
            Dropped::Unhandled { .. } => None,
            Dropped::Filtered { path, .. } | Dropped::Missing { path } => Some(path),
        }
    }
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dropped::Unhandled { event } => {
                write!(f, "event '{}' starts no run and carries no command", clip(event, 64))
            }
            Dropped::Filtered { path, rule, got } => write!(f, "{path} {rule}, got {}", clip(got, 64)),
            Dropped::Missing { path } => write!(f, "{path} is missing or has the wrong type"),
        }
    }
}

fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

/// One delivery: its `X-GitHub-Event`, its `X-GitHub-Delivery` id (`None` when the header is
/// absent) and its parsed body.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `X-GitHub-Event`.
    pub event: &'a str,
    /// `X-GitHub-Delivery`.
    pub id: Option<&'a str>,
    /// The payload.
    pub body: &'a Value,
}

/// What a delivery creates.
#[derive(Debug, Clone)]
pub enum Mapped {
    /// A failure's HealingRun ([`map`]).
    Run(Box<HealingRun>),
    /// A `/healer` comment's HealingCommand ([`command`]).
    Command(Box<HealingCommand>),
}

impl Mapped {
    /// The object's name.
    pub fn name(&self) -> &str {
        let meta = match self {
            Mapped::Run(r) => &r.metadata,
            Mapped::Command(c) => &c.metadata,
        };
        meta.name.as_deref().unwrap_or_default()
    }

    /// The object's kind, as the API names it (`HealingRun`, `HealingCommand`).
    pub const fn kind(&self) -> &'static str {
        match self {
            Mapped::Run(_) => "HealingRun",
            Mapped::Command(_) => "HealingCommand",
        }
    }
}

/// The object `delivery` creates in `namespace`, labelled as made by `intake`: a HealingRun for a
/// failure ([`map`]), a HealingCommand for a `/healer` comment ([`command`]); or why it creates
/// none. Pure.
pub fn deliver(delivery: &Delivery, namespace: &str, intake: Intake) -> Result<Mapped, Dropped> {
    if delivery.event == COMMAND_EVENT {
        command(delivery, namespace, intake).map(|c| Mapped::Command(Box::new(c)))
    } else {
        map(delivery, namespace, intake).map(|r| Mapped::Run(Box::new(r)))
    }
}

/// The HealingRun `delivery` starts, in `namespace`, labelled as made by `intake`; or why it starts
/// none (an `issue_comment` starts none: see [`command`]). Pure.
pub fn map(delivery: &Delivery, namespace: &str, intake: Intake) -> Result<HealingRun, Dropped> {
    let Some(kind) = Kind::parse(delivery.event) else {
        return Err(Dropped::Unhandled { event: delivery.event.to_string() });
    };
    let b = Body(delivery.body);
    filters(kind, &b)?;
    let id = delivery.id.ok_or(Dropped::Missing { path: "headers.X-Github-Delivery.0" })?;
    let (name, source) = match kind {
        Kind::WorkflowJob => workflow_job(&b)?,
        Kind::CheckRun => check_run(&b)?,
        Kind::CheckSuite => check_suite(&b)?,
        Kind::Status => status(&b)?,
    };
    let source = FailureSource {
        provider: Provider::Github,
        event: kind.source_event(),
        repository: b.string("body.repository.full_name", &["repository", "full_name"])?,
        delivery_id: Some(id.to_string()),
        sender: Some(b.string("body.sender.login", &["sender", "login"])?),
        ..source
    };
    Ok(new_run(&name, namespace, source, intake.as_str()))
}

/// The HealingRun intake makes of a failure: `name` in `namespace`, `source` as given, no excerpt
/// (the controller reads the log from GitHub), intake's policy (3 attempts, the `auto` agent, the
/// rest defaulted), labelled [`CREATED_BY`]` = created_by`. Shared by the Sensor mapping, the
/// receiver and `/healer fix`, so a run looks the same whoever made it. Pure.
pub fn new_run(name: &str, namespace: &str, source: FailureSource, created_by: &str) -> HealingRun {
    let mut run = HealingRun::new(
        name,
        HealingRunSpec {
            source,
            failure: None,
            policy: HealingPolicy { max_attempts: 3, agent: "auto".into(), ..Default::default() },
            action: None,
            action_request: None,
        },
    );
    run.metadata.namespace = Some(namespace.to_string());
    run.metadata.labels = Some(BTreeMap::from([(CREATED_BY.to_string(), created_by.to_string())]));
    run
}

/// The name of the run for a failed workflow job: `gh-<run id>-<run attempt>-<job id>`, unique per
/// job and re-run, so a redelivery of the same `workflow_job` collides.
pub fn workflow_job_run_name(run_id: i64, run_attempt: i64, job_id: i64) -> String {
    format!("gh-{run_id}-{run_attempt}-{job_id}")
}

/// The name of the run for a failed check run: `gh-check-run-<check run id>`.
pub fn check_run_run_name(id: i64) -> String {
    format!("gh-check-run-{id}")
}

/// The HealingCommand an `issue_comment` `delivery` records, in `namespace`, labelled as made by
/// `intake`, named `ghc-<comment.id>`; or why it records none (the Sensor's `healer-command`
/// filters, in its order: the action, a bot author, the body's length, a `/healer` line). Any
/// other event is [`Dropped::Unhandled`]. Pure.
pub fn command(delivery: &Delivery, namespace: &str, intake: Intake) -> Result<HealingCommand, Dropped> {
    if delivery.event != COMMAND_EVENT {
        return Err(Dropped::Unhandled { event: delivery.event.to_string() });
    }
    let b = Body(delivery.body);
    b.require("body.action", &["action"], "must be created (an edited or deleted comment is no command)", |s| {
        s == "created"
    })?;
    b.require("body.comment.user.type", &["comment", "user", "type"], "must not be a bot", |s| s != "Bot")?;
    b.require("body.comment.user.login", &["comment", "user", "login"], "must not be a bot", |s| {
        !s.ends_with("[bot]")
    })?;
    b.require("body.comment.body", &["comment", "body"], "must be at most 65536 characters", |s| {
        s.chars().count() <= MAX_COMMENT_CHARS
    })?;
    b.require("body.comment.body", &["comment", "body"], "must have a line that starts with /healer", is_command)?;
    let id = delivery.id.ok_or(Dropped::Missing { path: "headers.X-Github-Delivery.0" })?;
    let comment_id = b.positive("body.comment.id", &["comment", "id"])?;
    let spec = HealingCommandSpec {
        provider: Provider::Github,
        repository: b.string("body.repository.full_name", &["repository", "full_name"])?,
        issue_number: b.positive("body.issue.number", &["issue", "number"])?,
        // Present and not null: the issue is a pull request.
        pull_request: b.at(&["issue", "pull_request"]).is_some_and(|v| !v.is_null()),
        comment_id,
        author: b.string("body.comment.user.login", &["comment", "user", "login"])?,
        author_type: b.nullable("body.comment.user.type", &["comment", "user", "type"])?,
        body: b.string("body.comment.body", &["comment", "body"])?,
        url: b.nullable("body.comment.html_url", &["comment", "html_url"])?,
        delivery_id: Some(id.to_string()),
    };
    let mut cmd = HealingCommand::new(&format!("ghc-{comment_id}"), spec);
    cmd.metadata.namespace = Some(namespace.to_string());
    cmd.metadata.labels = Some(BTreeMap::from([(CREATED_BY.to_string(), intake.as_str().to_string())]));
    Ok(cmd)
}

/// Whether a comment's `body` holds a command: a line (split at `\n`) that starts, after optional
/// ASCII whitespace, with [`COMMAND_PREFIX`] followed by ASCII whitespace or the line's end. The
/// Sensor's filter is Go's `(?m)^\s*/healer(\s|$)`, which says the same (`\s` is ASCII whitespace
/// there). `/healers` and `x /healer` are no commands.
pub fn is_command(body: &str) -> bool {
    body.split('\n').any(|line| {
        line.trim_start_matches(|c: char| c.is_ascii_whitespace())
            .strip_prefix(COMMAND_PREFIX)
            .is_some_and(|rest| rest.chars().next().is_none_or(|c| c.is_ascii_whitespace()))
    })
}

/// One kind's filters, each a path (as the Sensor writes it) and the keys that reach it.
struct Filters {
    action: Option<Filter>,
    conclusion: Filter,
    app: Option<Filter>,
    own_name: Option<Filter>,
    branch: Filter,
}

/// The Sensor's filters for `kind`, in its order.
fn filters(kind: Kind, b: &Body) -> Result<(), Dropped> {
    const ACTION: Option<Filter> = Some(("body.action", &["action"]));
    let f = match kind {
        Kind::WorkflowJob => Filters {
            action: ACTION,
            conclusion: ("body.workflow_job.conclusion", &["workflow_job", "conclusion"]),
            app: None,
            own_name: None,
            branch: ("body.workflow_job.head_branch", &["workflow_job", "head_branch"]),
        },
        Kind::CheckRun => Filters {
            action: ACTION,
            conclusion: ("body.check_run.conclusion", &["check_run", "conclusion"]),
            app: Some(("[body.check_run.app.slug,!null]|0", &["check_run", "app", "slug"])),
            own_name: Some(("body.check_run.name", &["check_run", "name"])),
            branch: ("body.check_run.check_suite.head_branch", &["check_run", "check_suite", "head_branch"]),
        },
        Kind::CheckSuite => Filters {
            action: ACTION,
            conclusion: ("body.check_suite.conclusion", &["check_suite", "conclusion"]),
            app: Some(("[body.check_suite.app.slug,!null]|0", &["check_suite", "app", "slug"])),
            own_name: None,
            branch: ("body.check_suite.head_branch", &["check_suite", "head_branch"]),
        },
        Kind::Status => Filters {
            action: None,
            conclusion: ("body.state", &["state"]),
            app: None,
            own_name: Some(("body.context", &["context"])),
            branch: ("body.branches.0.name", &["branches", "0", "name"]),
        },
    };
    if let Some((path, at)) = f.action {
        b.require(path, at, "must be completed", |s| s == "completed")?;
    }
    let (path, at) = f.conclusion;
    match kind {
        Kind::Status => b.require(path, at, "must be failure or error", |s| s == "failure" || s == "error")?,
        _ => b.require(path, at, "must be failure", |s| s == "failure")?,
    }
    if let Some((path, at)) = f.app {
        // `[path,!null]|0`: an app without a slug reads as null, printed "", which is not Actions.
        if b.at(at).is_some() {
            b.require(path, at, "must not be the GitHub Actions app (its workflow_job heals it)", |s| {
                s != ACTIONS_APP
            })?;
        }
    }
    if let Some((path, at)) = f.own_name {
        b.require(path, at, "must not be ci-healer's own check", |s| s != OWN_CHECK)?;
    }
    let (path, at) = f.branch;
    b.require(path, at, "must name a branch", |s| !s.is_empty())?;
    b.require(path, at, "must not be one of ci-healer's branches", |s| !s.starts_with("ci-healer/"))?;
    b.require("body.sender.type", &["sender", "type"], "must not be a bot", |s| s != "Bot")?;
    b.require("body.sender.login", &["sender", "login"], "must not be a bot", |s| !s.ends_with("[bot]"))?;
    Ok(())
}

/// A filter's path and the keys that reach it.
type Filter = (&'static str, &'static [&'static str]);

fn workflow_job(b: &Body) -> Result<(String, FailureSource), Dropped> {
    let job = |k: &'static str, path: &'static str| b.int(path, &["workflow_job", k]);
    let run_id = job("run_id", "body.workflow_job.run_id")?;
    let run_attempt = job("run_attempt", "body.workflow_job.run_attempt")?;
    let job_id = job("id", "body.workflow_job.id")?;
    let steps = b
        .at(&["workflow_job", "steps"])
        .and_then(Value::as_array)
        .ok_or(Dropped::Missing { path: "body.workflow_job.steps" })?;
    let failed_steps = steps
        .iter()
        .filter(|s| s.get("conclusion").and_then(Value::as_str) == Some("failure"))
        .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    let source = FailureSource {
        branch: b.string("body.workflow_job.head_branch", &["workflow_job", "head_branch"])?,
        head_sha: b.string("body.workflow_job.head_sha", &["workflow_job", "head_sha"])?,
        // `[path,!null]|0`: absent and null alike are no name.
        workflow_name: match b.at(&["workflow_job", "workflow_name"]) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(Dropped::Missing { path: "body.workflow_job.workflow_name" }),
        },
        job_name: Some(b.string("body.workflow_job.name", &["workflow_job", "name"])?),
        run_id: Some(run_id),
        run_attempt: Some(run_attempt),
        job_id: Some(job_id),
        url: b.nullable("body.workflow_job.html_url", &["workflow_job", "html_url"])?,
        failed_steps,
        ..Default::default()
    };
    Ok((workflow_job_run_name(run_id, run_attempt, job_id), source))
}

fn check_run(b: &Body) -> Result<(String, FailureSource), Dropped> {
    let id = b.int("body.check_run.id", &["check_run", "id"])?;
    let source = FailureSource {
        branch: b.string("body.check_run.check_suite.head_branch", &["check_run", "check_suite", "head_branch"])?,
        head_sha: b.string("body.check_run.head_sha", &["check_run", "head_sha"])?,
        job_name: Some(b.string("body.check_run.name", &["check_run", "name"])?),
        job_id: Some(id),
        check_suite_id: Some(b.int("body.check_run.check_suite.id", &["check_run", "check_suite", "id"])?),
        url: b.nullable("body.check_run.html_url", &["check_run", "html_url"])?,
        ..Default::default()
    };
    Ok((check_run_run_name(id), source))
}

fn check_suite(b: &Body) -> Result<(String, FailureSource), Dropped> {
    let id = b.int("body.check_suite.id", &["check_suite", "id"])?;
    let source = FailureSource {
        branch: b.string("body.check_suite.head_branch", &["check_suite", "head_branch"])?,
        head_sha: b.string("body.check_suite.head_sha", &["check_suite", "head_sha"])?,
        check_suite_id: Some(id),
        ..Default::default()
    };
    Ok((format!("gh-check-suite-{id}"), source))
}

fn status(b: &Body) -> Result<(String, FailureSource), Dropped> {
    let id = b.int("body.id", &["id"])?;
    let source = FailureSource {
        branch: b.string("body.branches.0.name", &["branches", "0", "name"])?,
        head_sha: b.string("body.sha", &["sha"])?,
        job_name: Some(b.string("body.context", &["context"])?),
        description: b.nullable("body.description", &["description"])?,
        url: b.nullable("body.target_url", &["target_url"])?,
        ..Default::default()
    };
    Ok((format!("gh-status-{id}"), source))
}

/// The payload, read the way the Sensor's gjson paths read it.
struct Body<'a>(&'a Value);

impl Body<'_> {
    /// The value at `keys` (an array index is a decimal key), if present.
    fn at(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter().try_fold(self.0, |v, k| match v {
            Value::Object(m) => m.get(*k),
            Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
    }

    /// A data filter of type string: the field's text as gjson prints it must satisfy `ok`; an
    /// absent field drops the delivery too (Argo: "path does not exist").
    fn require(
        &self,
        path: &'static str,
        keys: &[&str],
        rule: &'static str,
        ok: impl Fn(&str) -> bool,
    ) -> Result<(), Dropped> {
        let Some(v) = self.at(keys) else {
            return Err(Dropped::Filtered { path, rule, got: "absent".into() });
        };
        let text = gjson_text(v);
        if ok(&text) { Ok(()) } else { Err(Dropped::Filtered { path, rule, got: v.to_string() }) }
    }

    /// A required string parameter.
    fn string(&self, path: &'static str, keys: &[&str]) -> Result<String, Dropped> {
        self.at(keys).and_then(Value::as_str).map(str::to_string).ok_or(Dropped::Missing { path })
    }

    /// A parameter GitHub may send as null (`useRawData`): null is none; absent is an error, as in Argo.
    fn nullable(&self, path: &'static str, keys: &[&str]) -> Result<Option<String>, Dropped> {
        match self.at(keys) {
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(Dropped::Missing { path }),
        }
    }

    /// A required integer of at least 1 (a comment id, an issue number: the CRD's minimum).
    fn positive(&self, path: &'static str, keys: &[&str]) -> Result<i64, Dropped> {
        self.int(path, keys).ok().filter(|n| *n >= 1).ok_or(Dropped::Missing { path })
    }

    /// A required non-negative integer (an id, a run attempt).
    fn int(&self, path: &'static str, keys: &[&str]) -> Result<i64, Dropped> {
        self.at(keys).and_then(Value::as_i64).filter(|n| *n >= 0).ok_or(Dropped::Missing { path })
    }
}

/// gjson's `Result.String()`: a string as itself, null as empty, anything else as its JSON text.
fn gjson_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workflow_job() -> Value {
        json!({
            "action": "completed",
            "workflow_job": {
                "id": 289782451, "run_id": 2202229078i64, "run_attempt": 1, "name": "linters",
                "workflow_name": "CodeQL", "head_branch": "main", "head_sha": "3484a3fb816e0859fd6e1cea078d76385ff50625",
                "conclusion": "failure", "html_url": "https://github.com/o/r/runs/1",
                "steps": [{"name": "Set up job", "conclusion": "success"}, {"name": "Run yarn run format-check", "conclusion": "failure"}]
            },
            "repository": {"full_name": "Codertocat/Hello-World"},
            "sender": {"login": "Codertocat", "type": "User"}
        })
    }

    fn deliver(event: &str, body: &Value) -> Result<HealingRun, Dropped> {
        map(&Delivery { event, id: Some("d-1"), body }, "ci-healer", Intake::Webhook)
    }

    #[test]
    fn a_failed_job_becomes_a_run_named_from_its_ids() {
        let run = deliver("workflow_job", &workflow_job()).unwrap();
        assert_eq!(run.metadata.name.as_deref(), Some("gh-2202229078-1-289782451"));
        assert_eq!(run.metadata.labels.unwrap()[CREATED_BY], "ci-healer-webhook");
        let s = run.spec.source;
        assert_eq!(
            (s.event, s.run_id, s.job_id, s.delivery_id.as_deref()),
            (SourceEvent::WorkflowJob, Some(2202229078), Some(289782451), Some("d-1"))
        );
        assert_eq!(s.failed_steps, vec!["Run yarn run format-check"]);
        assert_eq!(s.sender.as_deref(), Some("Codertocat"));
    }

    /// Each filter, in the Sensor's order, with what it saw.
    #[test]
    fn each_filter_drops_what_it_is_meant_to() {
        let edit = |f: &dyn Fn(&mut Value)| {
            let mut v = workflow_job();
            f(&mut v);
            v
        };
        let cases: Vec<(&str, Value, &str)> = vec![
            ("in progress", edit(&|v| v["action"] = "in_progress".into()), "body.action"),
            ("success", edit(&|v| v["workflow_job"]["conclusion"] = "success".into()), "body.workflow_job.conclusion"),
            (
                "a prefix of failure",
                edit(&|v| v["workflow_job"]["conclusion"] = "failure_x".into()),
                "body.workflow_job.conclusion",
            ),
            ("no branch", edit(&|v| v["workflow_job"]["head_branch"] = Value::Null), "body.workflow_job.head_branch"),
            (
                "own branch",
                edit(&|v| v["workflow_job"]["head_branch"] = "ci-healer/x".into()),
                "body.workflow_job.head_branch",
            ),
            ("bot type", edit(&|v| v["sender"]["type"] = "Bot".into()), "body.sender.type"),
            ("bot login", edit(&|v| v["sender"]["login"] = "renovate[bot]".into()), "body.sender.login"),
            (
                "no sender",
                edit(&|v| {
                    v.as_object_mut().unwrap().remove("sender");
                }),
                "body.sender.type",
            ),
        ];
        for (what, body, path) in cases {
            let err = deliver("workflow_job", &body).unwrap_err();
            assert_eq!(err.path(), Some(path), "{what}: {err}");
            assert!(matches!(err, Dropped::Filtered { .. }), "{what}");
        }
        assert_eq!(deliver("ping", &json!({})).unwrap_err(), Dropped::Unhandled { event: "ping".into() });
        let no_sha = edit(&|v| {
            v["workflow_job"].as_object_mut().unwrap().remove("head_sha");
        });
        assert_eq!(
            deliver("workflow_job", &no_sha).unwrap_err(),
            Dropped::Missing { path: "body.workflow_job.head_sha" }
        );
        let float_id = edit(&|v| v["workflow_job"]["id"] = json!(1.5));
        assert_eq!(deliver("workflow_job", &float_id).unwrap_err(), Dropped::Missing { path: "body.workflow_job.id" });
        let no_id = map(&Delivery { event: "workflow_job", id: None, body: &workflow_job() }, "ns", Intake::Webhook);
        assert_eq!(no_id.unwrap_err(), Dropped::Missing { path: "headers.X-Github-Delivery.0" });
    }

    #[test]
    fn checks_and_statuses_have_their_own_names_and_guards() {
        let check_run = |slug: &str, name: &str| {
            json!({
                "action": "completed",
                "check_run": {"id": 128620228, "name": name, "head_sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
                    "conclusion": "failure", "html_url": null, "app": {"slug": slug},
                    "check_suite": {"id": 118578147, "head_branch": "changes"}},
                "repository": {"full_name": "o/r"}, "sender": {"login": "u", "type": "User"}
            })
        };
        let run = deliver("check_run", &check_run("octo-ci", "lint")).unwrap();
        assert_eq!(run.metadata.name.as_deref(), Some("gh-check-run-128620228"));
        let s = &run.spec.source;
        assert_eq!((s.job_id, s.check_suite_id, s.url.as_deref()), (Some(128620228), Some(118578147), None));
        assert_eq!(
            deliver("check_run", &check_run(ACTIONS_APP, "lint")).unwrap_err().path(),
            Some("[body.check_run.app.slug,!null]|0")
        );
        let mut no_slug = check_run("x", "lint");
        no_slug["check_run"]["app"].as_object_mut().unwrap().remove("slug");
        assert!(deliver("check_run", &no_slug).is_ok(), "an app without a slug is not Actions");
        assert_eq!(
            deliver("check_run", &check_run("octo-ci", OWN_CHECK)).unwrap_err().path(),
            Some("body.check_run.name")
        );

        let status = |state: &str, context: &str, branches: Value| {
            json!({"id": 6805126730i64, "sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "state": state,
                   "context": context, "description": "3 tests failed", "target_url": "https://ci.example/1",
                   "branches": branches, "repository": {"full_name": "o/r"}, "sender": {"login": "u", "type": "User"}})
        };
        let one = json!([{"name": "main"}]);
        for state in ["failure", "error"] {
            let run = deliver("status", &status(state, "ci/build", one.clone())).unwrap();
            assert_eq!(run.metadata.name.as_deref(), Some("gh-status-6805126730"));
            assert_eq!(run.spec.source.description.as_deref(), Some("3 tests failed"));
            assert_eq!(run.spec.source.job_name.as_deref(), Some("ci/build"));
        }
        assert_eq!(
            deliver("status", &status("pending", "ci/build", one.clone())).unwrap_err().path(),
            Some("body.state")
        );
        assert_eq!(deliver("status", &status("failure", OWN_CHECK, one)).unwrap_err().path(), Some("body.context"));
        let err = deliver("status", &status("failure", "ci/build", json!([]))).unwrap_err();
        assert_eq!(
            err,
            Dropped::Filtered { path: "body.branches.0.name", rule: "must name a branch", got: "absent".into() }
        );
    }

    fn comment(body: &str) -> Value {
        json!({
            "action": "created",
            "issue": {"number": 7, "pull_request": {"url": "https://api.github.com/repos/o/r/pulls/7"}},
            "comment": {"id": 1362021374i64, "body": body, "html_url": "https://github.com/o/r/pull/7#issuecomment-1362021374",
                "user": {"login": "octocat", "type": "User"}},
            "repository": {"full_name": "Codertocat/Hello-World"},
            "sender": {"login": "octocat", "type": "User"}
        })
    }

    #[test]
    fn a_healer_comment_becomes_a_command_named_from_its_id() {
        let body = comment("Thanks!\r\n\r\n  /healer retry try the other lockfile\r\n");
        let Mapped::Command(cmd) =
            super::deliver(&Delivery { event: "issue_comment", id: Some("d-1"), body: &body }, "ns", Intake::Webhook)
                .unwrap()
        else {
            panic!("a comment makes a HealingCommand");
        };
        assert_eq!(cmd.metadata.name.as_deref(), Some("ghc-1362021374"));
        assert_eq!(cmd.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(cmd.metadata.labels.as_ref().unwrap()[CREATED_BY], "ci-healer-webhook");
        assert_eq!(
            cmd.spec,
            HealingCommandSpec {
                provider: Provider::Github,
                repository: "Codertocat/Hello-World".into(),
                issue_number: 7,
                pull_request: true,
                comment_id: 1362021374,
                author: "octocat".into(),
                author_type: Some("User".into()),
                body: "Thanks!\r\n\r\n  /healer retry try the other lockfile\r\n".into(),
                url: Some("https://github.com/o/r/pull/7#issuecomment-1362021374".into()),
                delivery_id: Some("d-1".into()),
            }
        );
        // On an issue (no `pull_request`, or null): not a pull request.
        for pr in [None, Some(Value::Null)] {
            let mut b = comment("/healer help");
            match pr {
                None => drop(b["issue"].as_object_mut().unwrap().remove("pull_request")),
                Some(v) => b["issue"]["pull_request"] = v,
            }
            assert!(
                !command(&Delivery { event: "issue_comment", id: Some("d"), body: &b }, "ns", Intake::ArgoEvents)
                    .unwrap()
                    .spec
                    .pull_request
            );
        }
        // A failure is still a run through `deliver`.
        let wj = workflow_job();
        assert!(matches!(
            super::deliver(&Delivery { event: "workflow_job", id: Some("d"), body: &wj }, "ns", Intake::Webhook),
            Ok(Mapped::Run(_))
        ));
    }

    #[test]
    fn a_command_is_a_line_that_starts_with_healer() {
        for yes in [
            "/healer",
            "/healer approve",
            "  /healer fix",
            "\t/healer deny no",
            "LGTM\n/healer approve",
            "a\r\n/healer\r\n",
            "x\n \n /healer retry",
        ] {
            assert!(is_command(yes), "{yes:?}");
        }
        for no in [
            "",
            "healer approve",
            "/healers approve",
            "please /healer approve",
            "`/healer approve`",
            "> /healer approve",
            "/Healer approve",
            "\u{a0}/healer approve",
            "/healer-approve",
        ] {
            assert!(!is_command(no), "{no:?}");
        }
    }

    /// Each comment filter, in the Sensor's order, with what it saw.
    #[test]
    fn each_comment_filter_drops_what_it_is_meant_to() {
        let edit = |f: &dyn Fn(&mut Value)| {
            let mut v = comment("/healer approve");
            f(&mut v);
            v
        };
        let run =
            |body: &Value| command(&Delivery { event: "issue_comment", id: Some("d-1"), body }, "ns", Intake::Webhook);
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            ("edited", edit(&|v| v["action"] = "edited".into()), "body.action", "must be created"),
            ("deleted", edit(&|v| v["action"] = "deleted".into()), "body.action", "must be created"),
            ("bot type", edit(&|v| v["comment"]["user"]["type"] = "Bot".into()), "body.comment.user.type", "bot"),
            (
                "bot login",
                edit(&|v| v["comment"]["user"]["login"] = "ci-healer[bot]".into()),
                "body.comment.user.login",
                "bot",
            ),
            ("no user", edit(&|v| v["comment"]["user"] = Value::Null), "body.comment.user.type", "bot"),
            ("no command", edit(&|v| v["comment"]["body"] = "LGTM, thanks".into()), "body.comment.body", "/healer"),
            ("null body", edit(&|v| v["comment"]["body"] = Value::Null), "body.comment.body", "/healer"),
            (
                "too long",
                edit(&|v| v["comment"]["body"] = format!("/healer retry {}", "é".repeat(MAX_COMMENT_CHARS)).into()),
                "body.comment.body",
                "65536 characters",
            ),
        ];
        for (what, body, path, rule) in cases {
            let err = run(&body).unwrap_err();
            assert_eq!(err.path(), Some(path), "{what}: {err}");
            assert!(err.to_string().contains(rule), "{what}: {err}");
            assert!(matches!(err, Dropped::Filtered { .. }), "{what}");
        }
        // At the cap exactly, counted in characters (not bytes): recorded.
        let at_cap = format!("/healer {}", "é".repeat(MAX_COMMENT_CHARS - 8));
        assert_eq!(run(&edit(&|v| v["comment"]["body"] = at_cap.clone().into())).unwrap().spec.body, at_cap);
        // Fields the object needs, of the wrong type or missing: refused before the API server would.
        for (what, body, path) in [
            ("float id", edit(&|v| v["comment"]["id"] = json!(1.5)), "body.comment.id"),
            ("zero issue", edit(&|v| v["issue"]["number"] = json!(0)), "body.issue.number"),
            ("numeric type", edit(&|v| v["comment"]["user"]["type"] = json!(1)), "body.comment.user.type"),
            (
                "no repository",
                edit(&|v| drop(v.as_object_mut().unwrap().remove("repository"))),
                "body.repository.full_name",
            ),
        ] {
            assert_eq!(run(&body).unwrap_err(), Dropped::Missing { path }, "{what}");
        }
        let no_id = command(
            &Delivery { event: "issue_comment", id: None, body: &comment("/healer abort") },
            "ns",
            Intake::Webhook,
        );
        assert_eq!(no_id.unwrap_err(), Dropped::Missing { path: "headers.X-Github-Delivery.0" });
        assert_eq!(
            command(&Delivery { event: "workflow_job", id: Some("d"), body: &workflow_job() }, "ns", Intake::Webhook)
                .unwrap_err(),
            Dropped::Unhandled { event: "workflow_job".into() }
        );
    }
}
