//! The failure, read from GitHub before triage (issue 9).
//!
//! A run whose `spec.failure` has no excerpt (what the Argo Events Sensor makes from a real
//! `workflow_job` delivery) is read from GitHub once, through [`GitHub::read_failure`]: the job
//! log's tail, the failed steps, check outputs and annotations, the changed files, the failing
//! step's command and the pull request. Triage runs on that text **after the controller masked
//! it** ([`Masker`] with the client's own secret values and the known token formats), and the
//! result is stored in the run's context ConfigMap (`<run>-context`, key [`FAILURE_KEY`]) next to
//! the bounded excerpt, so later reconciles (and a restarted controller) read the ConfigMap instead
//! of GitHub. The raw log is never stored: only triage's bounded excerpt of the masked text.
//!
//! Not having a log is never a failed run: `LogFetched=False` with [`Reason::LogExpired`],
//! [`Reason::LogUnreachable`] or [`Reason::NoJobLog`], and triage goes on with names and
//! annotations. Transient GitHub errors (rate limits, 5xx, timeouts) requeue the run
//! ([`super::Error::GitHub`]); permanent ones are recorded as `LogFetched=False`,
//! [`Reason::GitHubRejected`], and the run goes on from its spec.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, ResourceExt};
use serde::{Deserialize, Serialize};

use super::{Context, Error, Result};
use crate::agent::context::{Masker, strip_control};
use crate::crd::conditions::Reason;
use crate::crd::{HealingRun, SourceEvent};
use crate::github::{FailureEvent, FailureQuery, FailureReport, GitHub, LogFetch, Target};
use crate::resources::configmap;
use crate::triage::{self, TriageInput, TriageResult};

/// Key of the context ConfigMap that holds what was read from GitHub ([`ReadFailure`] as JSON).
pub const FAILURE_KEY: &str = "failure.json";

/// How reading the log went, as the `LogFetched` condition reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogOutcome {
    /// The condition holds (the log's tail was read).
    pub fetched: bool,
    /// The condition's reason ([`Reason::LogRead`], [`Reason::LogExpired`] …), as its string.
    pub reason: String,
    /// For people.
    pub message: String,
}

/// The failing step's command from the workflow file at `headSha` (`jobs.<job>.steps[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The job's key under `jobs:`.
    pub job: String,
    /// The step's name.
    pub step: String,
    /// Its `run:` script (absent for a `uses:` step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Its `working-directory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    /// Its `shell`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Why the script cannot be re-run as written (a `uses:` step, `${{ }}` expressions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unusable: Option<String>,
}

/// The pull request the failing commit belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRecord {
    /// Its number.
    pub number: i64,
    /// A link for people.
    pub url: String,
    /// Its head branch.
    pub head_ref: String,
    /// Its base branch.
    pub base_ref: String,
    /// The head lives in a fork.
    pub fork: bool,
}

/// What the controller read from GitHub about a run's failure, masked and bounded; stored in the
/// context ConfigMap under [`FAILURE_KEY`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadFailure {
    /// How reading the log went.
    pub log: LogOutcome,
    /// Bytes of log text triage saw (the tail, plus check outputs and annotations).
    pub log_bytes: u64,
    /// The workflow's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_name: Option<String>,
    /// The job's (or check's) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// The Actions job id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<i64>,
    /// The workflow run id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// Steps whose conclusion was `failure`.
    #[serde(default)]
    pub failed_steps: Vec<String>,
    /// Paths the failing commit changed (against the pull request's base, else its parent).
    #[serde(default)]
    pub changed_files: Vec<String>,
    /// Check run annotations read.
    #[serde(default)]
    pub annotations: usize,
    /// The failing step's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepRecord>,
    /// The pull request of the failing commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRecord>,
    /// The check run is the GitHub Actions app's copy of a `workflow_job`.
    #[serde(default)]
    pub actions_check_run: bool,
    /// What could not be read (other than the log).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Triage's answer on the masked text (its excerpt is the bounded, masked excerpt).
    pub triage: TriageResult,
}

/// The query for `run`'s failure, in GitHub's ids.
pub fn query(run: &HealingRun) -> FailureQuery {
    let src = &run.spec.source;
    let event = match src.event {
        SourceEvent::CheckRun => FailureEvent::CheckRun,
        SourceEvent::CheckSuite => FailureEvent::CheckSuite,
        SourceEvent::Status => FailureEvent::Status,
        SourceEvent::WorkflowJob | SourceEvent::WorkflowRun | SourceEvent::Generic => FailureEvent::WorkflowJob,
    };
    FailureQuery {
        target: Target::new(src.repository.clone()),
        event,
        head_sha: src.head_sha.clone(),
        branch: src.branch.clone(),
        job_id: src.job_id,
        run_id: src.run_id,
        // A job's id is also its check run's id.
        check_run_id: (event == FailureEvent::CheckRun).then_some(src.job_id).flatten(),
        check_suite_id: (event == FailureEvent::CheckSuite).then_some(src.check_suite_id).flatten(),
        job_name: src.job_name.clone(),
        failed_steps: src.failed_steps.clone(),
        // A commit status's context and description are all GitHub says about an external failure.
        status_text: (event == FailureEvent::Status)
            .then(|| {
                let context = src.job_name.as_deref().unwrap_or("status");
                src.description.as_deref().map(|d| format!("{context}: {d}"))
            })
            .flatten(),
    }
}

/// Whether the run's failure is read from GitHub (when a client is configured): its spec has no
/// excerpt. Pure.
pub fn wanted(run: &HealingRun) -> bool {
    run.spec.failure.as_ref().is_none_or(|f| f.excerpt.trim().is_empty())
}

/// The stored read, when an earlier reconcile made it. Errors: the API server.
pub async fn stored(run: &HealingRun, ctx: &Context) -> Result<Option<ReadFailure>> {
    let ns = run.namespace().ok_or(Error::MissingNamespace)?;
    let cm = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&configmap::context_name(&run.name_any()))
        .await?;
    let owned =
        cm.as_ref().is_some_and(|c| c.owner_references().iter().any(|o| Some(&o.uid) == run.metadata.uid.as_ref()));
    Ok(cm
        .filter(|_| owned)
        .and_then(|c| c.data?.remove(FAILURE_KEY))
        .and_then(|s| serde_json::from_str::<ReadFailure>(&s).ok()))
}

/// A masker of the controller's own secret values (the GitHub client's token or App key, the Slack
/// client's token or webhook URL; each line of a multi-line one too) and the known token formats:
/// what masks failure text before the controller stores any of it.
pub fn own_masker(ctx: &Context) -> Masker {
    let mut values: Vec<String> = ctx.github.iter().flat_map(|g| g.secret_values()).collect();
    values.extend(ctx.slack.iter().flat_map(|s| s.secret_values()));
    let mut masker = Masker::new(values.clone());
    values.iter().flat_map(|v| v.lines()).for_each(|l| masker.add(l));
    masker
}

/// Read the failure from GitHub, mask it, triage it. Errors: a transient GitHub error (the run
/// requeues; [`crate::github::Error::retry_after`] says when). A permanent one is recorded in the
/// result's [`LogOutcome`] and the run goes on from its spec.
pub async fn fetch(run: &HealingRun, gh: &dyn GitHub, ctx: &Context) -> Result<ReadFailure> {
    let q = query(run);
    let src = &run.spec.source;
    let report = match gh.read_failure(&q).await {
        Ok(r) => r,
        Err(e) if e.is_transient() => return Err(Error::GitHub(e)),
        Err(e) => {
            tracing::warn!(run = %run.name_any(), reason = e.reason(), error = %e, "GitHub refused to show the failure; triaging from the spec");
            FailureReport {
                log_fetch: Some(LogFetch::Unreachable {
                    reason: Reason::GitHubRejected.as_str(),
                    message: e.to_string(),
                }),
                ..Default::default()
            }
        }
    };
    let mut masker = own_masker(ctx);
    for s in gh.secret_values() {
        masker.add(&s);
        s.lines().for_each(|l| masker.add(l));
    }
    let text = masker.mask(&strip_control(&String::from_utf8_lossy(&report.log)));
    let failed_steps =
        if report.failed_steps.is_empty() { src.failed_steps.clone() } else { report.failed_steps.clone() };
    let workflow_name = report.workflow_name.clone().or_else(|| src.workflow_name.clone());
    let job_name = report.job_name.clone().or_else(|| src.job_name.clone());
    let input = TriageInput {
        log: text.as_bytes(),
        workflow_name: workflow_name.as_deref(),
        job_name: job_name.as_deref(),
        failed_steps: &failed_steps,
        changed_files: &report.changed_files,
        error_type: run.spec.failure.as_ref().and_then(|f| f.error_type.as_deref()),
        repository_languages: &[],
    };
    let mut triage = triage::triage(&input, &ctx.config.routing);
    // Triage copies lines of the masked text; mask once more so nothing it derived escapes.
    triage.excerpt = masker.mask(&triage.excerpt);
    let log = log_outcome(report.log_fetch.as_ref());
    Ok(ReadFailure {
        log,
        log_bytes: text.len() as u64,
        workflow_name,
        job_name,
        job_id: report.job_id.or(src.job_id),
        run_id: report.run_id.or(src.run_id),
        failed_steps,
        changed_files: report.changed_files.clone(),
        annotations: report.annotations.len(),
        step: report.step.as_ref().map(|s| StepRecord {
            job: s.job.clone(),
            step: s.step.clone(),
            run: s.run.as_ref().map(|r| masker.mask(r)),
            working_directory: s.working_directory.clone(),
            shell: s.shell.clone(),
            unusable: s.unusable().map(str::to_string),
        }),
        pull_request: report.pull_request.as_ref().map(|p| PullRecord {
            number: p.number,
            url: p.html_url.clone(),
            head_ref: p.head_ref.clone(),
            base_ref: p.base_ref.clone(),
            fork: p.fork,
        }),
        actions_check_run: report.actions_check_run,
        notes: report.notes.iter().chain(report.step_note.iter()).map(|n| masker.mask(n)).collect(),
        triage,
    })
}

/// The `LogFetched` condition for a log fetch. Pure.
pub fn log_outcome(f: Option<&LogFetch>) -> LogOutcome {
    let (fetched, reason, message) = match f {
        Some(LogFetch::Fetched { kept, total }) => (
            true,
            Reason::LogRead,
            match total {
                Some(t) if t > kept => format!("read the last {kept} bytes of the job log ({t} bytes)"),
                _ => format!("read the job log ({kept} bytes)"),
            },
        ),
        Some(LogFetch::Expired) => (
            false,
            Reason::LogExpired,
            "the job log has expired (GitHub answered 410); triage uses names and annotations".into(),
        ),
        Some(LogFetch::Unreachable { reason, message }) if *reason == Reason::GitHubRejected.as_str() => {
            (false, Reason::GitHubRejected, format!("{message}; triage uses the spec's names"))
        }
        Some(LogFetch::Unreachable { reason, message }) => {
            (false, Reason::LogUnreachable, format!("{reason}: {message}; triage uses names and annotations"))
        }
        Some(LogFetch::NoLog) | None => (
            false,
            Reason::NoJobLog,
            "the failure has no job log; triage uses the check's output and annotations".into(),
        ),
    };
    LogOutcome { fetched, reason: reason.as_str().into(), message }
}

/// The stored reason as a [`Reason`] (an unknown string, from an older controller, is `LogUnreachable`).
pub fn reason_of(o: &LogOutcome) -> Reason {
    Reason::ALL.iter().copied().find(|r| r.as_str() == o.reason).unwrap_or(Reason::LogUnreachable)
}

/// The context ConfigMap of `run` with what was read: the masked excerpt, triage's answer and the
/// [`ReadFailure`]. `None` when the run has no name or uid.
pub fn context_configmap(run: &HealingRun, read: &ReadFailure) -> Result<Option<ConfigMap>> {
    let mut cm = configmap::build_context(run, &read.triage.excerpt, &serde_json::to_string_pretty(&read.triage)?);
    if let Some(data) = cm.as_mut().and_then(|c| c.data.as_mut()) {
        data.insert(FAILURE_KEY.into(), serde_json::to_string_pretty(read)?);
    }
    Ok(cm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_log_fetch_has_its_condition() {
        fn r(f: Option<&LogFetch>) -> (bool, Reason) {
            let o = log_outcome(f);
            (o.fetched, reason_of(&o))
        }
        assert_eq!(r(Some(&LogFetch::Fetched { kept: 10, total: Some(100) })), (true, Reason::LogRead));
        assert!(log_outcome(Some(&LogFetch::Fetched { kept: 10, total: Some(100) })).message.contains("last 10 bytes"));
        assert_eq!(r(Some(&LogFetch::Expired)), (false, Reason::LogExpired));
        assert_eq!(r(Some(&LogFetch::NoLog)), (false, Reason::NoJobLog));
        assert_eq!(
            r(Some(&LogFetch::Unreachable { reason: "GitHubNotFound", message: "404".into() })),
            (false, Reason::LogUnreachable)
        );
        assert_eq!(
            r(Some(&LogFetch::Unreachable { reason: Reason::GitHubRejected.as_str(), message: "403".into() })),
            (false, Reason::GitHubRejected)
        );
    }
}
