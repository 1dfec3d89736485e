//! [`GitHub`] on GitHub's REST API, through [`Transport`]. Each method is a short sequence of
//! documented calls (the `operationId` of each is given to the transport for metrics), written so a
//! repeat after a crash finds what the first try made instead of making it again.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::error::{Error, Result};
use super::http::{Call, Transport, encode_segment};
use super::identity::{Identity, IdentityKind};
use super::log::fetch_job_log;
use super::patch::{self, PatchError};
use super::workflow;
use super::*;

/// Most changed files read (GitHub's compare and PR files endpoints stop at 3000; triage needs a few).
const MAX_CHANGED_FILES: usize = 300;
/// Most annotations read per check run.
const MAX_ANNOTATIONS: usize = 200;
/// Most check runs read for a suite or a status.
const MAX_CHECKS: usize = 5;
/// Most pages read when looking for ci-healer's comment among a pull request's comments.
const MAX_COMMENT_PAGES: u32 = 10;

/// [`GitHub`] over the REST API.
#[derive(Debug, Clone)]
pub struct RestGitHub {
    identity: Arc<Identity>,
}

impl RestGitHub {
    /// A client acting as `identity`.
    pub fn new(identity: Arc<Identity>) -> Self {
        Self { identity }
    }

    /// The identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn transport(&self, t: &Target) -> Result<Arc<Transport>> {
        match self.identity.transport(&t.repository, t.installation_id).await {
            Err(e @ Error::Unauthorized { .. }) => {
                self.identity.invalidate().await;
                Err(e)
            }
            other => other,
        }
    }
}

// The narrow shapes of GitHub's answers this module reads (unknown fields are ignored).

#[derive(Deserialize, Default)]
struct JobStep {
    name: String,
    #[serde(default)]
    conclusion: Option<String>,
}

#[derive(Deserialize)]
struct Job {
    id: i64,
    run_id: i64,
    #[serde(default)]
    run_attempt: Option<i64>,
    name: String,
    #[serde(default)]
    workflow_name: Option<String>,
    #[serde(default)]
    steps: Vec<JobStep>,
}

#[derive(Deserialize)]
struct WorkflowRun {
    #[serde(default)]
    path: String,
}

#[derive(Deserialize, Default)]
struct Output {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    annotations_count: i64,
}

#[derive(Deserialize, Default)]
struct AppRef {
    #[serde(default)]
    slug: Option<String>,
}

#[derive(Deserialize)]
struct CheckRun {
    id: i64,
    name: String,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    output: Output,
    #[serde(default)]
    app: Option<AppRef>,
    #[serde(default)]
    html_url: Option<String>,
    #[serde(default)]
    check_suite: Option<IdRef>,
}

#[derive(Deserialize)]
struct IdRef {
    id: i64,
}

#[derive(Deserialize)]
struct CheckRunList {
    check_runs: Vec<CheckRun>,
}

#[derive(Deserialize)]
struct RepoName {
    #[serde(default)]
    full_name: String,
}

#[derive(Deserialize)]
struct PullEnd {
    #[serde(rename = "ref")]
    ref_: String,
    #[serde(default)]
    sha: String,
    #[serde(default)]
    repo: Option<RepoName>,
}

#[derive(Deserialize)]
struct Pull {
    number: i64,
    #[serde(default)]
    node_id: String,
    #[serde(default)]
    draft: bool,
    html_url: String,
    state: String,
    #[serde(default)]
    merged_at: Option<String>,
    head: PullEnd,
    base: PullEnd,
}

impl Pull {
    fn to_ref(&self) -> PullRequestRef {
        let state = if self.merged_at.is_some() { "merged".to_string() } else { self.state.clone() };
        PullRequestRef { number: self.number, url: self.html_url.clone(), head_ref: self.head.ref_.clone(), state }
    }
}

#[derive(Deserialize)]
struct ChangedFile {
    filename: String,
    /// The file's diff hunks (absent for binary or very large diffs).
    #[serde(default)]
    patch: Option<String>,
}

#[derive(Deserialize)]
struct Review {
    id: i64,
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize, Default)]
struct UserRef {
    #[serde(default)]
    login: Option<String>,
    #[serde(default, rename = "type")]
    type_: Option<String>,
}

#[derive(Deserialize)]
struct GitPerson {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct CommitDetail {
    message: String,
    #[serde(default)]
    author: Option<GitPerson>,
}

#[derive(Deserialize)]
struct Commit {
    sha: String,
    commit: CommitDetail,
    #[serde(default)]
    author: Option<UserRef>,
    #[serde(default)]
    committer: Option<UserRef>,
    #[serde(default)]
    files: Option<Vec<ChangedFile>>,
}

impl Commit {
    fn facts(&self) -> CommitFacts {
        let author = self.author.as_ref();
        let login = author.and_then(|a| a.login.clone());
        let git_name = self.commit.author.as_ref().and_then(|a| a.name.clone()).unwrap_or_default();
        let by_bot = author.and_then(|a| a.type_.as_deref()) == Some("Bot")
            || login.as_deref().is_some_and(|l| l.ends_with("[bot]"))
            || git_name.ends_with("[bot]");
        CommitFacts {
            sha: self.sha.clone(),
            message: self.commit.message.clone(),
            author_login: login,
            committer_login: self.committer.as_ref().and_then(|c| c.login.clone()),
            by_bot,
        }
    }
}

#[derive(Deserialize)]
struct Branch {
    commit: ShaRef,
    #[serde(default)]
    protected: bool,
}

#[derive(Deserialize)]
struct ShaRef {
    sha: String,
}

#[derive(Deserialize)]
struct GitCommit {
    sha: String,
    tree: ShaRef,
    #[serde(default)]
    parents: Vec<ShaRef>,
}

#[derive(Deserialize)]
struct GitRef {
    object: ShaRef,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default, rename = "type")]
    type_: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    content: Option<String>,
    sha: String,
}

#[derive(Deserialize)]
struct Comment {
    id: i64,
    #[serde(default)]
    body: Option<String>,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

/// Encode a repository path for `/contents/{path}`: each segment percent-encoded, `/` kept.
fn content_path(path: &str) -> String {
    path.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

/// The hidden marker that identifies a run's comment.
pub fn comment_marker(key: &str) -> String {
    format!("<!-- ci-healer:run={key} -->")
}

/// Modes from `index <a>..<b> <mode>` header lines, by new path (git prints the mode there when a
/// modified file keeps it). Pure.
fn index_modes(patch: &[u8]) -> BTreeMap<String, &'static str> {
    let text = String::from_utf8_lossy(patch);
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            current = rest.rsplit_once(" b/").map(|(_, b)| b.to_string());
        } else if let (Some(path), Some(rest)) = (&current, line.strip_prefix("index ")) {
            let mode = match rest.split_whitespace().nth(1) {
                Some("100755") => "100755",
                Some("120000") => "120000",
                _ => "100644",
            };
            out.insert(path.clone(), mode);
        }
    }
    out
}

impl RestGitHub {
    async fn job(&self, t: &Transport, target: &Target, job_id: i64) -> Result<Job> {
        let (o, r) = target.split();
        t.json(&Call::get("actions/get-job-for-workflow-run", format!("/repos/{o}/{r}/actions/jobs/{job_id}"))).await
    }

    async fn check_run(&self, t: &Transport, target: &Target, id: i64) -> Result<CheckRun> {
        let (o, r) = target.split();
        t.json(&Call::get("checks/get", format!("/repos/{o}/{r}/check-runs/{id}"))).await
    }

    async fn annotations(&self, t: &Transport, target: &Target, id: i64) -> Result<Vec<Annotation>> {
        let (o, r) = target.split();
        let mut out = Vec::new();
        for page in 1..=(MAX_ANNOTATIONS / 100) as u32 {
            let batch: Vec<Annotation> = t
                .json(
                    &Call::get("checks/list-annotations", format!("/repos/{o}/{r}/check-runs/{id}/annotations"))
                        .query("per_page", 100)
                        .query("page", page),
                )
                .await?;
            let n = batch.len();
            out.extend(batch);
            if n < 100 {
                break;
            }
        }
        Ok(out)
    }

    /// The failing check runs of a suite, or of a commit.
    async fn failing_checks(
        &self,
        t: &Transport,
        target: &Target,
        suite: Option<i64>,
        sha: &str,
    ) -> Result<Vec<CheckRun>> {
        let (o, r) = target.split();
        let call = match suite {
            Some(id) => Call::get("checks/list-for-suite", format!("/repos/{o}/{r}/check-suites/{id}/check-runs")),
            None => Call::get("checks/list-for-ref", format!("/repos/{o}/{r}/commits/{sha}/check-runs")),
        }
        .query("filter", "latest")
        .query("status", "completed")
        .query("per_page", 100);
        let list: CheckRunList = t.json(&call).await?;
        Ok(list
            .check_runs
            .into_iter()
            .filter(|c| matches!(c.conclusion.as_deref(), Some("failure" | "timed_out" | "startup_failure")))
            .filter(|c| c.name != self.identity.config().check_run_name)
            .take(MAX_CHECKS)
            .collect())
    }

    async fn pull_for_commit(&self, t: &Transport, target: &Target, sha: &str, branch: &str) -> Result<Option<Pull>> {
        let (o, r) = target.split();
        let pulls: Vec<Pull> = t
            .json(
                &Call::get(
                    "repos/list-pull-requests-associated-with-commit",
                    format!("/repos/{o}/{r}/commits/{sha}/pulls"),
                )
                .conditional(),
            )
            .await?;
        // The pull request of the failing branch, open first.
        let mut pulls: Vec<Pull> = pulls.into_iter().filter(|p| p.head.ref_ == branch || p.head.sha == sha).collect();
        pulls.sort_by_key(|p| (p.state != "open", -p.number));
        Ok(pulls.into_iter().next())
    }

    async fn changed_files(
        &self,
        t: &Transport,
        target: &Target,
        sha: &str,
        pull: Option<&Pull>,
    ) -> Result<Vec<String>> {
        let (o, r) = target.split();
        let mut out = Vec::new();
        if let Some(p) = pull {
            for page in 1..=(MAX_CHANGED_FILES / 100) as u32 {
                let batch: Vec<ChangedFile> = t
                    .json(
                        &Call::get("pulls/list-files", format!("/repos/{o}/{r}/pulls/{}/files", p.number))
                            .query("per_page", 100)
                            .query("page", page),
                    )
                    .await?;
                let n = batch.len();
                out.extend(batch.into_iter().map(|f| f.filename));
                if n < 100 {
                    break;
                }
            }
        } else {
            let c: Commit = t.json(&Call::get("repos/get-commit", format!("/repos/{o}/{r}/commits/{sha}"))).await?;
            out.extend(c.files.unwrap_or_default().into_iter().map(|f| f.filename).take(MAX_CHANGED_FILES));
        }
        Ok(out)
    }

    /// The file at `sha` with its content, or `None` when absent. Files over 1 MB come from the blob.
    async fn file_at(&self, t: &Transport, target: &Target, path: &str, sha: &str) -> Result<Option<Vec<u8>>> {
        let (o, r) = target.split();
        let call =
            Call::get("repos/get-content", format!("/repos/{o}/{r}/contents/{}", content_path(path))).query("ref", sha);
        let c: Content = match t.json(&call).await {
            Err(Error::NotFound { .. }) => return Ok(None),
            other => other?,
        };
        if c.type_ != "file" {
            return Ok(None);
        }
        if c.encoding.as_deref() == Some("base64")
            && let Some(bytes) = c.content.as_deref().and_then(b64)
        {
            return Ok(Some(bytes));
        }
        #[derive(Deserialize)]
        struct Blob {
            content: String,
        }
        let blob: Blob = t.json(&Call::get("git/get-blob", format!("/repos/{o}/{r}/git/blobs/{}", c.sha))).await?;
        Ok(b64(&blob.content))
    }

    async fn step_command(
        &self,
        t: &Transport,
        target: &Target,
        run_id: i64,
        sha: &str,
        job_name: &str,
        step: &str,
    ) -> std::result::Result<StepCommand, String> {
        let (o, r) = target.split();
        let run: WorkflowRun = t
            .json(&Call::get("actions/get-workflow-run", format!("/repos/{o}/{r}/actions/runs/{run_id}")))
            .await
            .map_err(|e| format!("cannot read workflow run {run_id}: {e}"))?;
        if run.path.is_empty() {
            return Err(format!("workflow run {run_id} names no workflow file"));
        }
        // A dynamic workflow path looks like `.github/workflows/ci.yml@refs/heads/main`.
        let path = run.path.split('@').next().unwrap_or(&run.path).to_string();
        let file = self
            .file_at(t, target, &path, sha)
            .await
            .map_err(|e| format!("cannot read {path} at {sha}: {e}"))?
            .ok_or_else(|| format!("{path} does not exist at {sha}"))?;
        workflow::find_step(&String::from_utf8_lossy(&file), job_name, step).map_err(|e| format!("{path}: {e}"))
    }

    /// Read one Actions job: its steps, its log tail, its workflow step command.
    async fn read_job(
        &self,
        t: &Transport,
        q: &FailureQuery,
        job_id: i64,
        budget: usize,
        out: &mut FailureReport,
    ) -> Result<()> {
        let job = match self.job(t, &q.target, job_id).await {
            Ok(j) => Some(j),
            Err(e) if !e.is_transient() => {
                out.notes.push(format!("cannot read job {job_id}: {e}"));
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(j) = &job {
            out.workflow_name = out.workflow_name.clone().or(j.workflow_name.clone());
            out.job_name = out.job_name.clone().or(Some(j.name.clone()));
            out.run_id = out.run_id.or(Some(j.run_id));
            out.job_id = out.job_id.or(Some(j.id));
            for s in j.steps.iter().filter(|s| s.conclusion.as_deref() == Some("failure")) {
                if !out.failed_steps.contains(&s.name) {
                    out.failed_steps.push(s.name.clone());
                }
            }
        }
        if out.failed_steps.is_empty() {
            out.failed_steps = q.failed_steps.clone();
        }
        let (owner, repo) = q.target.split();
        let mut limits = self.identity.config().log_limits();
        limits.tail_bytes = limits.tail_bytes.min(budget.max(1024));
        let fetched = match fetch_job_log(t, owner, repo, job_id, limits).await {
            Ok(tail) => {
                let kept = tail.bytes.len() as u64;
                out.log.extend_from_slice(&tail.bytes);
                if !out.log.ends_with(b"\n") && !out.log.is_empty() {
                    out.log.push(b'\n');
                }
                LogFetch::Fetched { kept, total: tail.total_bytes }
            }
            Err(Error::Gone { .. }) => LogFetch::Expired,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => LogFetch::Unreachable { reason: e.reason(), message: e.to_string() },
        };
        // The first log outcome decides the condition; later jobs (suites) only add text.
        if out.log_fetch.is_none() || matches!(fetched, LogFetch::Fetched { .. }) {
            out.log_fetch = Some(fetched);
        }
        if out.step.is_none()
            && let (Some(j), Some(step)) = (&job, out.failed_steps.first().cloned())
        {
            match self.step_command(t, &q.target, j.run_id, &q.head_sha, &j.name, &step).await {
                Ok(cmd) => {
                    out.step_note = cmd.unusable().map(str::to_string);
                    out.step = Some(cmd);
                }
                Err(note) => out.step_note = Some(note),
            }
        }
        Ok(())
    }

    /// Read one check run: its output and annotations; an Actions check run is read as its job.
    async fn read_check(
        &self,
        t: &Transport,
        q: &FailureQuery,
        c: &CheckRun,
        budget: usize,
        out: &mut FailureReport,
    ) -> Result<()> {
        let actions = c.app.as_ref().and_then(|a| a.slug.as_deref()) == Some("github-actions");
        out.checks_read.push(format!("{} ({})", c.name, c.conclusion.as_deref().unwrap_or("unknown")));
        out.job_name = out.job_name.clone().or(Some(c.name.clone()));
        let mut text = String::new();
        for part in [&c.output.title, &c.output.summary, &c.output.text].into_iter().flatten() {
            if !part.trim().is_empty() {
                text.push_str(part.trim_end());
                text.push('\n');
            }
        }
        if c.output.annotations_count > 0 {
            match self.annotations(t, &q.target, c.id).await {
                Ok(anns) => {
                    for a in &anns {
                        text.push_str(&format!(
                            "{}:{}: {}: {}{}\n",
                            a.path,
                            a.start_line,
                            a.annotation_level.as_deref().unwrap_or("failure"),
                            a.title.as_deref().map(|t| format!("{t}: ")).unwrap_or_default(),
                            a.message.as_deref().unwrap_or("")
                        ));
                    }
                    out.annotations.extend(anns);
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(e) => out.notes.push(format!("cannot read the annotations of check run {}: {e}", c.id)),
            }
        }
        if actions {
            // An Actions check run is its job (same id): read the job's log.
            self.read_job(t, q, c.id, budget, out).await?;
        } else if out.log_fetch.is_none() {
            out.log_fetch = Some(LogFetch::NoLog);
        }
        out.log.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

#[async_trait::async_trait]
impl GitHub for RestGitHub {
    fn kind(&self) -> IdentityKind {
        self.identity.kind()
    }

    fn secret_values(&self) -> Vec<String> {
        self.identity.secret_values()
    }

    async fn read_failure(&self, q: &FailureQuery) -> Result<FailureReport> {
        let t = self.transport(&q.target).await?;
        let t = t.as_ref();
        let budget = self.identity.config().log_limits().tail_bytes;
        let mut out = FailureReport { failed_steps: Vec::new(), ..Default::default() };
        match q.event {
            FailureEvent::WorkflowJob => {
                if let Some(id) = q.job_id {
                    self.read_job(t, q, id, budget, &mut out).await?;
                } else {
                    out.log_fetch = Some(LogFetch::Unreachable {
                        reason: "NoJobId",
                        message: "the run names no job id (spec.source.jobId)".into(),
                    });
                }
            }
            FailureEvent::CheckRun => {
                let id = q.check_run_id.or(q.job_id);
                match id {
                    Some(id) => match self.check_run(t, &q.target, id).await {
                        Ok(c) => {
                            out.actions_check_run =
                                c.app.as_ref().and_then(|a| a.slug.as_deref()) == Some("github-actions");
                            self.read_check(t, q, &c, budget, &mut out).await?;
                        }
                        Err(e) if e.is_transient() => return Err(e),
                        Err(e) => {
                            out.log_fetch = Some(LogFetch::Unreachable { reason: e.reason(), message: e.to_string() })
                        }
                    },
                    None => {
                        out.log_fetch = Some(LogFetch::Unreachable {
                            reason: "NoCheckRunId",
                            message: "the run names no check run id (spec.source.checkRunId)".into(),
                        })
                    }
                }
            }
            FailureEvent::CheckSuite | FailureEvent::Status => {
                if let Some(text) = &q.status_text {
                    out.log.extend_from_slice(format!("{text}\n").as_bytes());
                }
                let suite = if q.event == FailureEvent::CheckSuite { q.check_suite_id } else { None };
                let checks = self.failing_checks(t, &q.target, suite, &q.head_sha).await?;
                if checks.is_empty() {
                    out.log_fetch = Some(LogFetch::NoLog);
                    out.notes.push(format!("no failing check runs on {}", q.head_sha));
                }
                let share = budget / checks.len().max(1);
                for c in &checks {
                    self.read_check(t, q, c, share, &mut out).await?;
                }
            }
        }
        if out.failed_steps.is_empty() {
            out.failed_steps = q.failed_steps.clone();
        }
        out.job_name = q.job_name.clone().or(out.job_name);
        let pull = match self.pull_for_commit(t, &q.target, &q.head_sha, &q.branch).await {
            Ok(p) => p,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                out.notes.push(format!("cannot list the pull requests of {}: {e}", q.head_sha));
                None
            }
        };
        match self.changed_files(t, &q.target, &q.head_sha, pull.as_ref()).await {
            Ok(files) => out.changed_files = files,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => out.notes.push(format!("cannot list the changed files: {e}")),
        }
        out.pull_request = pull.map(|p| {
            let head_repository = p.head.repo.as_ref().map(|r| r.full_name.clone()).unwrap_or_default();
            let fork = !head_repository.eq_ignore_ascii_case(&q.target.repository);
            PullRequestInfo {
                number: p.number,
                html_url: p.html_url,
                head_ref: p.head.ref_,
                head_repository,
                base_ref: p.base.ref_,
                fork,
                state: p.state,
            }
        });
        Ok(out)
    }

    async fn branch_facts(
        &self,
        target: &Target,
        branch: &str,
        head_sha: &str,
        recent: usize,
        prefix: &str,
    ) -> Result<BranchFacts> {
        let t = self.transport(target).await?;
        let (o, r) = target.split();
        let mut facts = BranchFacts { bot_login: self.identity.bot_login().await?, ..Default::default() };
        match t
            .json::<Branch>(&Call::get("repos/get-branch", format!("/repos/{o}/{r}/branches/{branch}")).conditional())
            .await
        {
            Ok(b) => {
                facts.head = Some(b.commit.sha);
                facts.protected = b.protected;
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        if recent > 0 && facts.head.is_some() {
            let commits: Vec<Commit> = t
                .json(
                    &Call::get("repos/list-commits", format!("/repos/{o}/{r}/commits"))
                        .query("sha", branch)
                        .query("per_page", recent)
                        .conditional(),
                )
                .await?;
            facts.recent = commits.iter().map(Commit::facts).collect();
        }
        facts.head_commit = match facts.recent.iter().find(|c| c.sha == head_sha) {
            Some(c) => Some(c.clone()),
            None => match t
                .json::<Commit>(&Call::get("repos/get-commit", format!("/repos/{o}/{r}/commits/{head_sha}")))
                .await
            {
                Ok(c) => Some(c.facts()),
                Err(Error::NotFound { .. } | Error::Rejected { .. }) => None,
                Err(e) => return Err(e),
            },
        };
        let mut open = 0;
        for page in 1..=3u32 {
            let pulls: Vec<Pull> = t
                .json(
                    &Call::get("pulls/list", format!("/repos/{o}/{r}/pulls"))
                        .query("state", "open")
                        .query("per_page", 100)
                        .query("page", page)
                        .conditional(),
                )
                .await?;
            // ci-healer's own: a head branch with its prefix in this repository (a fork's branch of
            // the same name is someone else's).
            open += pulls
                .iter()
                .filter(|p| p.head.ref_.starts_with(prefix))
                .filter(|p| p.head.repo.as_ref().is_some_and(|h| h.full_name.eq_ignore_ascii_case(&target.repository)))
                .count() as i32;
            if pulls.len() < 100 {
                break;
            }
        }
        facts.open_healer_pulls = open;
        Ok(facts)
    }

    async fn deliver_pull_request(&self, req: &PullRequestRequest) -> Result<Delivery> {
        let t = self.transport(&req.target).await?;
        let (o, r) = req.target.split();
        // 1. The head-SHA re-check, right before anything is written.
        let base = format!("/repos/{o}/{r}/git/ref/heads/{}", req.base_branch);
        let current = match t.json::<GitRef>(&Call::get("git/get-ref", base)).await {
            Ok(g) => Some(g.object.sha),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if current.as_deref() != Some(req.head_sha.as_str()) {
            return Ok(Delivery::BranchMoved { current });
        }
        // 2. A pull request from this branch already (a restart after "PR opened").
        let head_label = format!("{o}:{}", req.head_ref);
        let existing: Vec<Pull> = t
            .json(
                &Call::get("pulls/list", format!("/repos/{o}/{r}/pulls"))
                    .query("head", &head_label)
                    .query("state", "all"),
            )
            .await?;
        if let Some(p) = existing.iter().find(|p| p.head.ref_ == req.head_ref) {
            return Ok(Delivery::Existing(p.to_ref()));
        }
        // 3. The fix commit's files: the patch applied to the files at head_sha.
        let ops = match patch::operations(&req.patch) {
            Ok(ops) => ops,
            Err(e) => return Ok(Delivery::Refused { reason: "PatchUnreadable", message: e.to_string() }),
        };
        let modes = index_modes(&req.patch);
        let mut originals = BTreeMap::new();
        for path in ops.iter().filter_map(|op| op.old_path.clone()) {
            if originals.contains_key(&path) {
                continue;
            }
            if let Some(bytes) = self.file_at(&t, &req.target, &path, &req.head_sha).await? {
                let mode = modes.get(&path).copied().unwrap_or("100644");
                originals.insert(path, (bytes, mode));
            }
        }
        let changes = match patch::apply(&req.patch, &originals) {
            Ok(c) if !c.is_empty() => c,
            Ok(_) => {
                return Ok(Delivery::Refused { reason: "PatchEmpty", message: "the patch changes nothing".into() });
            }
            Err(e @ (PatchError::DoesNotApply { .. } | PatchError::MissingFile(_))) => {
                return Ok(Delivery::Refused { reason: "PatchDoesNotApply", message: e.to_string() });
            }
            Err(e) => return Ok(Delivery::Refused { reason: "PatchUnsupported", message: e.to_string() }),
        };
        // 4. Blobs and a tree on head_sha's tree: content-addressed, so a repeat yields the same SHAs.
        let head_commit: GitCommit =
            t.json(&Call::get("git/get-commit", format!("/repos/{o}/{r}/git/commits/{}", req.head_sha))).await?;
        let mut entries = Vec::new();
        for c in &changes {
            let sha = match &c.content {
                Some(bytes) => {
                    let body = json!({"content": base64::engine::general_purpose::STANDARD.encode(bytes), "encoding": "base64"});
                    let blob: ShaRef =
                        t.json(&Call::post("git/create-blob", format!("/repos/{o}/{r}/git/blobs"), body)).await?;
                    serde_json::Value::String(blob.sha)
                }
                None => serde_json::Value::Null,
            };
            entries.push(json!({"path": c.path, "mode": c.mode, "type": "blob", "sha": sha}));
        }
        let tree: ShaRef = t
            .json(&Call::post(
                "git/create-tree",
                format!("/repos/{o}/{r}/git/trees"),
                json!({"base_tree": head_commit.tree.sha, "tree": entries}),
            ))
            .await?;
        // 5. The branch: reuse ours (same tree on head_sha), refuse one that holds other work.
        let ref_path = format!("/repos/{o}/{r}/git/ref/heads/{}", req.head_ref);
        let ours = |g: &GitCommit| {
            g.tree.sha == tree.sha && g.parents.iter().map(|p| p.sha.as_str()).eq([req.head_sha.as_str()])
        };
        let existing_ref = match t.json::<GitRef>(&Call::get("git/get-ref", ref_path.clone())).await {
            Ok(g) => Some(g.object.sha),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if let Some(sha) = existing_ref {
            let c: GitCommit =
                t.json(&Call::get("git/get-commit", format!("/repos/{o}/{r}/git/commits/{sha}"))).await?;
            if !ours(&c) {
                return Ok(Delivery::Refused {
                    reason: "BranchExists",
                    message: format!(
                        "branch {} exists and holds other commits; ci-healer does not overwrite it",
                        req.head_ref
                    ),
                });
            }
        } else {
            let commit: GitCommit = t
                .json(&Call::post(
                    "git/create-commit",
                    format!("/repos/{o}/{r}/git/commits"),
                    json!({"message": req.commit_message, "tree": tree.sha, "parents": [req.head_sha]}),
                ))
                .await?;
            let created = t
                .send(&Call::post(
                    "git/create-ref",
                    format!("/repos/{o}/{r}/git/refs"),
                    json!({"ref": format!("refs/heads/{}", req.head_ref), "sha": commit.sha}),
                ))
                .await;
            match created {
                Ok(_) => {}
                // Another reconcile created it between the check and now: it must be ours.
                Err(Error::Rejected { status: 422, .. }) => {
                    let g: GitRef = t.json(&Call::get("git/get-ref", ref_path.clone())).await?;
                    let c: GitCommit = t
                        .json(&Call::get("git/get-commit", format!("/repos/{o}/{r}/git/commits/{}", g.object.sha)))
                        .await?;
                    if !ours(&c) {
                        return Ok(Delivery::Refused {
                            reason: "BranchExists",
                            message: format!("branch {} was created by someone else", req.head_ref),
                        });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // 6. The draft pull request into the failing branch.
        let body = json!({
            "title": req.title, "head": req.head_ref, "base": req.base_branch, "body": req.body,
            "draft": req.draft, "maintainer_can_modify": true,
        });
        let pull: Pull = match t.json(&Call::post("pulls/create", format!("/repos/{o}/{r}/pulls"), body)).await {
            Ok(p) => p,
            Err(Error::Rejected { status: 422, message, .. }) if message.contains("already exists") => {
                let again: Vec<Pull> = t
                    .json(
                        &Call::get("pulls/list", format!("/repos/{o}/{r}/pulls"))
                            .query("head", &head_label)
                            .query("state", "all"),
                    )
                    .await?;
                match again.into_iter().find(|p| p.head.ref_ == req.head_ref) {
                    Some(p) => return Ok(Delivery::Existing(p.to_ref())),
                    None => {
                        return Err(Error::Rejected {
                            method: "POST".into(),
                            path: format!("/repos/{o}/{r}/pulls"),
                            status: 422,
                            message,
                        });
                    }
                }
            }
            Err(e) => return Err(e),
        };
        if !req.labels.is_empty() {
            self.set_labels(&req.target, pull.number, &req.labels, &[]).await?;
        }
        Ok(Delivery::Opened(pull.to_ref()))
    }

    async fn report(&self, req: &ReportRequest) -> Result<ReportIds> {
        let t = self.transport(&req.target).await?;
        let (o, r) = req.target.split();
        let cfg = self.identity.config();
        let mut ids = req.known.clone();
        let clip = |s: &str, n: usize| -> String { s.chars().take(n).collect() };
        match self.identity.kind() {
            IdentityKind::App => {
                let (status, conclusion) = match req.check.state {
                    CheckState::Queued => ("queued", None),
                    CheckState::InProgress => ("in_progress", None),
                    CheckState::Success => ("completed", Some("success")),
                    CheckState::Failure => ("completed", Some("failure")),
                    CheckState::ActionRequired => ("completed", Some("action_required")),
                    CheckState::Neutral => ("completed", Some("neutral")),
                    CheckState::Skipped => ("completed", Some("skipped")),
                };
                let mut output =
                    json!({"title": clip(&req.check.title, 255), "summary": clip(&req.check.summary, 65000)});
                if let Some(text) = &req.check.text {
                    output["text"] = json!(clip(text, 65000));
                }
                let mut body = json!({"status": status, "output": output, "external_id": req.key});
                if let Some(c) = conclusion {
                    body["conclusion"] = json!(c);
                    body["completed_at"] = json!(jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                }
                if let Some(u) = &req.check.details_url {
                    body["details_url"] = json!(u);
                }
                if ids.check_run_id.is_none() {
                    let list: CheckRunList = t
                        .json(
                            &Call::get(
                                "checks/list-for-ref",
                                format!("/repos/{o}/{r}/commits/{}/check-runs", req.head_sha),
                            )
                            .query("check_name", &cfg.check_run_name)
                            .query("filter", "all"),
                        )
                        .await?;
                    ids.check_run_id = list
                        .check_runs
                        .iter()
                        .find(|c| c.external_id.as_deref() == Some(req.key.as_str()))
                        .map(|c| c.id);
                }
                let updated = match ids.check_run_id {
                    Some(id) => match t
                        .send(&Call::patch("checks/update", format!("/repos/{o}/{r}/check-runs/{id}"), body.clone()))
                        .await
                    {
                        Ok(_) => true,
                        Err(Error::NotFound { .. }) => false,
                        Err(e) => return Err(e),
                    },
                    None => false,
                };
                if !updated {
                    let mut create = body;
                    create["name"] = json!(cfg.check_run_name);
                    create["head_sha"] = json!(req.head_sha);
                    let c: CheckRun =
                        t.json(&Call::post("checks/create", format!("/repos/{o}/{r}/check-runs"), create)).await?;
                    ids.check_run_id = Some(c.id);
                }
            }
            IdentityKind::Token => {
                let state = match req.check.state {
                    CheckState::Queued | CheckState::InProgress => "pending",
                    CheckState::Success | CheckState::Neutral | CheckState::Skipped => "success",
                    CheckState::Failure | CheckState::ActionRequired => "failure",
                };
                let mut body =
                    json!({"state": state, "context": cfg.check_run_name, "description": clip(&req.check.title, 140)});
                if let Some(u) = &req.check.details_url {
                    body["target_url"] = json!(u);
                }
                t.send(&Call::post(
                    "repos/create-commit-status",
                    format!("/repos/{o}/{r}/statuses/{}", req.head_sha),
                    body,
                ))
                .await?;
            }
        }
        if let Some((number, markdown)) = &req.comment {
            let marker = comment_marker(&req.key);
            let body = json!({"body": format!("{marker}\n{markdown}")});
            if ids.comment_id.is_none() {
                'pages: for page in 1..=MAX_COMMENT_PAGES {
                    let comments: Vec<Comment> = t
                        .json(
                            &Call::get("issues/list-comments", format!("/repos/{o}/{r}/issues/{number}/comments"))
                                .query("per_page", 100)
                                .query("page", page),
                        )
                        .await?;
                    if let Some(c) = comments.iter().find(|c| c.body.as_deref().is_some_and(|b| b.contains(&marker))) {
                        ids.comment_id = Some(c.id);
                        break 'pages;
                    }
                    if comments.len() < 100 {
                        break;
                    }
                }
            }
            let edited = match ids.comment_id {
                Some(id) => match t
                    .send(&Call::patch(
                        "issues/update-comment",
                        format!("/repos/{o}/{r}/issues/comments/{id}"),
                        body.clone(),
                    ))
                    .await
                {
                    Ok(_) => true,
                    Err(Error::NotFound { .. }) => false,
                    Err(e) => return Err(e),
                },
                None => false,
            };
            if !edited {
                let c: Comment = t
                    .json(&Call::post(
                        "issues/create-comment",
                        format!("/repos/{o}/{r}/issues/{number}/comments"),
                        body,
                    ))
                    .await?;
                ids.comment_id = Some(c.id);
            }
        }
        Ok(ids)
    }

    async fn set_labels(&self, target: &Target, number: i64, add: &[String], remove: &[String]) -> Result<()> {
        let t = self.transport(target).await?;
        let (o, r) = target.split();
        if !add.is_empty() {
            t.send(&Call::post(
                "issues/add-labels",
                format!("/repos/{o}/{r}/issues/{number}/labels"),
                json!({"labels": add}),
            ))
            .await?;
        }
        for l in remove {
            let call = Call::delete(
                "issues/remove-label",
                format!("/repos/{o}/{r}/issues/{number}/labels/{}", encode_segment(l)),
            );
            match t.send(&call).await {
                Ok(_) | Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn suggest(&self, req: &SuggestRequest) -> Result<Suggested> {
        let t = self.transport(&req.target).await?;
        let (o, r) = req.target.split();
        let n = req.number;
        let marker = format!("<!-- ci-healer:suggestions={} -->", req.key);
        for page in 1..=MAX_COMMENT_PAGES {
            let reviews: Vec<Review> = t
                .json(
                    &Call::get("pulls/list-reviews", format!("/repos/{o}/{r}/pulls/{n}/reviews"))
                        .query("per_page", 100)
                        .query("page", page),
                )
                .await?;
            if let Some(rv) = reviews.iter().find(|rv| rv.body.as_deref().is_some_and(|b| b.contains(&marker))) {
                return Ok(Suggested::Existing { review_id: rv.id });
            }
            if reviews.len() < 100 {
                break;
            }
        }
        let mut shown = BTreeMap::new();
        for page in 1..=(MAX_CHANGED_FILES / 100) as u32 {
            let batch: Vec<ChangedFile> = t
                .json(
                    &Call::get("pulls/list-files", format!("/repos/{o}/{r}/pulls/{n}/files"))
                        .query("per_page", 100)
                        .query("page", page),
                )
                .await?;
            let len = batch.len();
            for f in batch {
                shown.insert(f.filename, f.patch.as_deref().map(suggest::right_side_lines).unwrap_or_default());
            }
            if len < 100 {
                break;
            }
        }
        let Some(list) = suggest::suggestions(&req.patch, &shown).filter(|l| !l.is_empty()) else {
            return Ok(Suggested::DoesNotFit);
        };
        let comments: Vec<serde_json::Value> = list
            .iter()
            .map(|s| {
                let mut c = json!({"path": s.path, "line": s.line, "side": "RIGHT", "body": s.body()});
                if s.start_line < s.line {
                    c["start_line"] = json!(s.start_line);
                    c["start_side"] = json!("RIGHT");
                }
                c
            })
            .collect();
        let body = json!({
            "commit_id": req.head_sha, "event": "COMMENT",
            "body": format!("{marker}\n{}", req.body), "comments": comments,
        });
        let review: Review =
            t.json(&Call::post("pulls/create-review", format!("/repos/{o}/{r}/pulls/{n}/reviews"), body)).await?;
        Ok(Suggested::Posted { review_id: review.id, count: list.len() })
    }

    async fn close_pull_request(&self, req: &CloseRequest) -> Result<()> {
        let t = self.transport(&req.target).await?;
        let (o, r) = req.target.split();
        let n = req.number;
        let marker = format!("<!-- ci-healer:closed={} -->", req.key);
        let mut found = false;
        for page in 1..=MAX_COMMENT_PAGES {
            let comments: Vec<Comment> = t
                .json(
                    &Call::get("issues/list-comments", format!("/repos/{o}/{r}/issues/{n}/comments"))
                        .query("per_page", 100)
                        .query("page", page),
                )
                .await?;
            if comments.iter().any(|c| c.body.as_deref().is_some_and(|b| b.contains(&marker))) {
                found = true;
                break;
            }
            if comments.len() < 100 {
                break;
            }
        }
        if !found {
            t.send(&Call::post(
                "issues/create-comment",
                format!("/repos/{o}/{r}/issues/{n}/comments"),
                json!({"body": format!("{marker}\n{}", req.comment)}),
            ))
            .await?;
        }
        t.send(&Call::patch("pulls/update", format!("/repos/{o}/{r}/pulls/{n}"), json!({"state": "closed"}))).await?;
        if let Some(branch) = &req.delete_branch {
            let path = format!("/repos/{o}/{r}/git/refs/heads/{}", branch);
            match t.send(&Call::delete("git/delete-ref", path)).await {
                // Gone already (a repeat, or a person deleted it): GitHub answers 422 or 404.
                Ok(_) | Err(Error::NotFound { .. }) | Err(Error::Rejected { status: 422, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn rerun_job(&self, target: &Target, job_id: i64) -> Result<()> {
        let t = self.transport(target).await?;
        let (o, r) = target.split();
        t.send(&Call::post(
            "actions/re-run-job-for-workflow-run",
            format!("/repos/{o}/{r}/actions/jobs/{job_id}/rerun"),
            json!({}),
        ))
        .await?;
        Ok(())
    }

    async fn permission(&self, target: &Target, login: &str) -> Result<String> {
        let t = self.transport(target).await?;
        let (o, r) = target.split();
        #[derive(Deserialize)]
        struct Permission {
            permission: String,
        }
        let call = Call::get(
            "repos/get-collaborator-permission-level",
            format!("/repos/{o}/{r}/collaborators/{}/permission", encode_segment(login)),
        );
        match t.json::<Permission>(&call).await {
            Ok(p) => Ok(p.permission),
            Err(Error::NotFound { .. }) => Ok("none".into()),
            Err(e) => Err(e),
        }
    }

    async fn login(&self) -> Result<String> {
        self.identity.bot_login().await
    }

    async fn react(&self, target: &Target, comment_id: i64, content: &str) -> Result<()> {
        let t = self.transport(target).await?;
        let (o, r) = target.split();
        t.send(&Call::post(
            "reactions/create-for-issue-comment",
            format!("/repos/{o}/{r}/issues/comments/{comment_id}/reactions"),
            json!({"content": content}),
        ))
        .await?;
        Ok(())
    }

    async fn comment_once(&self, target: &Target, number: i64, marker: &str, body: &str) -> Result<i64> {
        let t = self.transport(target).await?;
        let (o, r) = target.split();
        for page in 1..=MAX_COMMENT_PAGES {
            let comments: Vec<Comment> = t
                .json(
                    &Call::get("issues/list-comments", format!("/repos/{o}/{r}/issues/{number}/comments"))
                        .query("per_page", 100)
                        .query("page", page),
                )
                .await?;
            if let Some(c) = comments.iter().find(|c| c.body.as_deref().is_some_and(|b| b.contains(marker))) {
                return Ok(c.id);
            }
            if comments.len() < 100 {
                break;
            }
        }
        let c: Comment = t
            .json(&Call::post(
                "issues/create-comment",
                format!("/repos/{o}/{r}/issues/{number}/comments"),
                json!({"body": format!("{marker}\n{body}")}),
            ))
            .await?;
        Ok(c.id)
    }

    async fn mark_ready_for_review(&self, target: &Target, number: i64) -> Result<bool> {
        let t = self.transport(target).await?;
        let (o, r) = target.split();
        let pull: Pull = t.json(&Call::get("pulls/get", format!("/repos/{o}/{r}/pulls/{number}"))).await?;
        if !pull.draft {
            return Ok(false);
        }
        let query = "mutation($id: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $id}) \
                     { pullRequest { isDraft number } } }";
        let body = json!({"query": query, "variables": {"id": pull.node_id}});
        let answer: serde_json::Value =
            t.json(&Call::post("graphql/markPullRequestReadyForReview", "/graphql", body)).await?;
        if let Some(errors) = answer.get("errors").and_then(|e| e.as_array()).filter(|e| !e.is_empty()) {
            let message: Vec<&str> = errors.iter().filter_map(|e| e["message"].as_str()).collect();
            return Err(Error::Rejected {
                method: "POST".into(),
                path: "/graphql".into(),
                status: 200,
                message: message.join("; "),
            });
        }
        Ok(true)
    }

    async fn latest_failure(&self, target: &Target, number: i64) -> Result<LatestFailure> {
        let t = self.transport(target).await?;
        let (o, r) = target.split();
        let pull: Pull = t.json(&Call::get("pulls/get", format!("/repos/{o}/{r}/pulls/{number}"))).await?;
        let sha = pull.head.sha.clone();
        let list: CheckRunList = t
            .json(
                &Call::get("checks/list-for-ref", format!("/repos/{o}/{r}/commits/{sha}/check-runs"))
                    .query("filter", "latest")
                    .query("status", "completed")
                    .query("per_page", 100),
            )
            .await?;
        let newest = list
            .check_runs
            .into_iter()
            .filter(|c| matches!(c.conclusion.as_deref(), Some("failure" | "timed_out" | "startup_failure")))
            .filter(|c| c.name != self.identity.config().check_run_name)
            .max_by_key(|c| c.id);
        let check = match newest {
            None => None,
            Some(c) => {
                let by_actions = c.app.as_ref().and_then(|a| a.slug.as_deref()) == Some("github-actions");
                let job = match by_actions {
                    true => {
                        let j = self.job(&t, target, c.id).await?;
                        Some(FailedJob {
                            run_id: j.run_id,
                            run_attempt: j.run_attempt.unwrap_or(1),
                            workflow_name: j.workflow_name,
                            failed_steps: j
                                .steps
                                .into_iter()
                                .filter(|s| s.conclusion.as_deref() == Some("failure"))
                                .map(|s| s.name)
                                .collect(),
                        })
                    }
                    false => None,
                };
                Some(FailedCheck {
                    id: c.id,
                    name: c.name,
                    check_suite_id: c.check_suite.map(|s| s.id),
                    url: c.html_url,
                    job,
                })
            }
        };
        Ok(LatestFailure { head_sha: sha, branch: pull.head.ref_, closed: pull.state != "open", check })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_from_index_lines() {
        let p = b"diff --git a/run.sh b/run.sh\nindex 1111111..2222222 100755\n--- a/run.sh\n+++ b/run.sh\n\
                  diff --git a/x.txt b/x.txt\nindex 1..2 100644\n";
        let m = index_modes(p);
        assert_eq!(m["run.sh"], "100755");
        assert_eq!(m["x.txt"], "100644");
    }

    #[test]
    fn content_paths_keep_slashes() {
        assert_eq!(content_path(".github/workflows/ci build.yml"), ".github/workflows/ci%20build.yml");
    }
}
