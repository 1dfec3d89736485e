//! GitHub, both ways: read a failure from GitHub (the job's log tail, failed steps, check run
//! output and annotations, changed files, the failing step's command), and put the result back
//! (a draft pull request built through the Git Data API, a check run or commit status, one comment
//! edited in place, labels, job re-runs).
//!
//! The controller sees the small [`GitHub`] trait; [`RestGitHub`] implements it on octocrab
//! ([`http::Transport`] adds the bounds, rate limits and conditional requests every call gets).
//! Tests and `make run-local` drive the real implementation against a loopback server that speaks
//! GitHub's OpenAPI description (`tests/loopback_github/`), never a mock of this trait.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | the `github:` section of the controller config |
//! | [`identity`] | App (JWT → installation token) or token credentials from Secrets; one client per installation |
//! | [`http`] | timeouts, size bounds, rate limits, 5xx backoff, ETags |
//! | [`log`] | the job log's tail, streamed with a byte cap |
//! | [`workflow`] | the failing step's `run:` from the workflow file |
//! | [`patch`] | the kept patch applied to the files at `headSha` (diffy) |
//! | [`allow`] | which namespace may heal which repository |
//! | [`suggest`] | a kept patch as GitHub suggestion blocks on a pull request's diff |
//! | [`rest`] | the REST calls behind each [`GitHub`] method |

pub mod allow;
pub mod config;
pub mod error;
pub mod guard;
pub mod http;
pub mod identity;
pub mod log;
pub mod patch;
pub mod render;
pub mod rest;
pub mod suggest;
pub mod workflow;

pub use config::GitHubConfig;
pub use error::{Error, Result};
pub use identity::{Identity, IdentityKind, SecretSource};
pub use rest::RestGitHub;
pub use workflow::StepCommand;

/// The repository a call acts on, and the App installation that reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `owner/name`.
    pub repository: String,
    /// The delivery's `installation.id`, when it had one (App identities only).
    pub installation_id: Option<i64>,
}

impl Target {
    /// A target without an installation hint.
    pub fn new(repository: impl Into<String>) -> Self {
        Self { repository: repository.into(), installation_id: None }
    }
    /// `(owner, name)`.
    pub fn split(&self) -> (&str, &str) {
        self.repository.split_once('/').unwrap_or((&self.repository, ""))
    }
}

/// The webhook event a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureEvent {
    /// `workflow_job` (completed, failure): the job is a GitHub Actions job.
    WorkflowJob,
    /// `check_run` (completed, failure/timed_out): any App's check, or an Actions job.
    CheckRun,
    /// `check_suite` (completed, failure): the failing check runs of its head SHA.
    CheckSuite,
    /// `status` (failure/error): a commit status; the failing check runs of the commit.
    Status,
}

/// What a HealingRun knows about its failure, in GitHub's ids.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureQuery {
    /// The repository and installation.
    pub target: Target,
    /// The event kind.
    pub event: FailureEvent,
    /// The failing commit.
    pub head_sha: String,
    /// The branch it was built on.
    pub branch: String,
    /// The Actions job id (`workflow_job.id`).
    pub job_id: Option<i64>,
    /// The workflow run id.
    pub run_id: Option<i64>,
    /// The check run id (`check_run.id`).
    pub check_run_id: Option<i64>,
    /// The check suite id (`check_suite.id`).
    pub check_suite_id: Option<i64>,
    /// The job's or check's name, as the delivery had it.
    pub job_name: Option<String>,
    /// Failed steps, as the delivery had them.
    pub failed_steps: Vec<String>,
    /// A commit status's context and description (`status` events).
    pub status_text: Option<String>,
}

/// How reading the log went. Not having a log is never a failed run: triage goes on with names and
/// annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFetch {
    /// Read: `kept` bytes of the tail of `total` (when known).
    Fetched {
        /// Bytes kept.
        kept: u64,
        /// The log's size, when known.
        total: Option<u64>,
    },
    /// The log expired (410): the repository's log retention.
    Expired,
    /// The log could not be read (404, 403, a transport failure after retries): `reason` is the
    /// error's [`Error::reason`].
    Unreachable {
        /// A stable reason.
        reason: &'static str,
        /// What happened.
        message: String,
    },
    /// The failure has no job log (a check run of another App, a commit status): its output and
    /// annotations stand in for it.
    NoLog,
}

/// One annotation of a check run (`GET /repos/{owner}/{repo}/check-runs/{id}/annotations`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Annotation {
    /// File path relative to the repository root.
    pub path: String,
    /// First line (1-based).
    pub start_line: i64,
    /// Last line.
    #[serde(default)]
    pub end_line: i64,
    /// `notice`, `warning` or `failure`.
    #[serde(default)]
    pub annotation_level: Option<String>,
    /// The message.
    #[serde(default)]
    pub message: Option<String>,
    /// The title.
    #[serde(default)]
    pub title: Option<String>,
}

/// The pull request a failing commit belongs to (`GET /repos/{owner}/{repo}/commits/{sha}/pulls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestInfo {
    /// The number.
    pub number: i64,
    /// A link for people.
    pub html_url: String,
    /// The head branch.
    pub head_ref: String,
    /// `owner/name` of the head repository (another one for a fork; empty when it was deleted).
    pub head_repository: String,
    /// The base branch.
    pub base_ref: String,
    /// The head lives in a fork: ci-healer cannot push a fix there.
    pub fork: bool,
    /// `open` or `closed`.
    pub state: String,
}

/// Everything read about a failure before triage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FailureReport {
    /// Text for triage: the job log tail(s), then check outputs and annotations. Raw: the caller
    /// masks secrets before storing anything.
    pub log: Vec<u8>,
    /// How reading the log went (`None` when no log was looked for).
    pub log_fetch: Option<LogFetch>,
    /// The workflow's name.
    pub workflow_name: Option<String>,
    /// The job's (or check's) name.
    pub job_name: Option<String>,
    /// The Actions job id, when the failure is an Actions job (also for an Actions check run).
    pub job_id: Option<i64>,
    /// The workflow run id.
    pub run_id: Option<i64>,
    /// Steps whose conclusion was `failure`.
    pub failed_steps: Vec<String>,
    /// Check run annotations.
    pub annotations: Vec<Annotation>,
    /// Paths changed by the failing commit (against the PR's base, else the parent).
    pub changed_files: Vec<String>,
    /// The failing step's command, from the workflow file at `headSha`.
    pub step: Option<StepCommand>,
    /// Why there is no usable step command, when there is none.
    pub step_note: Option<String>,
    /// The pull request of the failing branch.
    pub pull_request: Option<PullRequestInfo>,
    /// The check run was created by the GitHub Actions app: it duplicates its `workflow_job`.
    pub actions_check_run: bool,
    /// The check runs read (suites and statuses), as `name (conclusion)`.
    pub checks_read: Vec<String>,
    /// Notes on what could not be read (other than the log).
    pub notes: Vec<String>,
}

/// A commit, as the loop-prevention rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitFacts {
    /// The SHA.
    pub sha: String,
    /// The message.
    pub message: String,
    /// The GitHub login of the author, when GitHub linked one.
    pub author_login: Option<String>,
    /// The GitHub login of the committer, when GitHub linked one.
    pub committer_login: Option<String>,
    /// The author is a bot (`type: Bot`, or a `[bot]` login).
    pub by_bot: bool,
}

/// The failing branch and repository, for the loop-prevention rules and the head-SHA re-check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BranchFacts {
    /// The branch's current head (`None`: the branch is gone).
    pub head: Option<String>,
    /// GitHub marks the branch protected.
    pub protected: bool,
    /// The failing commit.
    pub head_commit: Option<CommitFacts>,
    /// The branch's last commits, newest first.
    pub recent: Vec<CommitFacts>,
    /// Open pull requests whose head branch starts with ci-healer's prefix.
    pub open_healer_pulls: i32,
    /// The login of the controller's identity.
    pub bot_login: String,
}

/// A fix pull request to open.
#[derive(Debug, Clone, PartialEq)]
pub struct PullRequestRequest {
    /// The repository and installation.
    pub target: Target,
    /// The failing branch (the pull request's base).
    pub base_branch: String,
    /// The commit the patch was made against; the base branch must still point at it.
    pub head_sha: String,
    /// The fix branch, e.g. `ci-healer/<run>`: deterministic, so a restart finds it.
    pub head_ref: String,
    /// The kept patch (`git diff --binary` against `head_sha`).
    pub patch: Vec<u8>,
    /// The fix commit's message.
    pub commit_message: String,
    /// The pull request's title.
    pub title: String,
    /// The pull request's body.
    pub body: String,
    /// Labels of the pull request.
    pub labels: Vec<String>,
    /// Open it as a draft (true unless the fix was approved beforehand: `autoApprove`).
    pub draft: bool,
}

/// A pull request ci-healer opened (the run's `status.pullRequest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestRef {
    /// The number.
    pub number: i64,
    /// A link for people.
    pub url: String,
    /// The head branch.
    pub head_ref: String,
    /// `open`, `closed` or `merged`.
    pub state: String,
}

/// What delivering a fix did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A new draft pull request.
    Opened(PullRequestRef),
    /// The pull request for this branch existed already (a restart, a redelivery).
    Existing(PullRequestRef),
    /// The failing branch moved since `head_sha`: no pull request.
    BranchMoved {
        /// Its head now (`None`: the branch is gone).
        current: Option<String>,
    },
    /// Refused: `reason` is stable (e.g. `PatchDoesNotApply`, `BranchExists`).
    Refused {
        /// A stable CamelCase reason.
        reason: &'static str,
        /// What a person should know.
        message: String,
    },
}

/// The state a check run (or commit status) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// `queued`: the run waits (behind a duplicate, for its claim) (status: `pending`).
    Queued,
    /// `in_progress` (status: `pending`).
    InProgress,
    /// Completed `success`.
    Success,
    /// Completed `failure`.
    Failure,
    /// Completed `action_required` (people must act; status: `failure`).
    ActionRequired,
    /// Completed `neutral` (status: `success`).
    Neutral,
    /// Completed `skipped` (status: `success`).
    Skipped,
}

/// The check run's (or commit status's) content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutput {
    /// The state.
    pub state: CheckState,
    /// The output title (a status's description, cut to 140 characters).
    pub title: String,
    /// Markdown summary (≤ 65535 characters).
    pub summary: String,
    /// Markdown details (≤ 65535 characters).
    pub text: Option<String>,
    /// A link for people (the PR, the run).
    pub details_url: Option<String>,
}

/// Ids of what a run has reported, kept in its status so later reports edit instead of adding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportIds {
    /// The check run's id (App identities).
    pub check_run_id: Option<i64>,
    /// The pull request comment's id.
    pub comment_id: Option<i64>,
}

/// One report of a run's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRequest {
    /// The repository and installation.
    pub target: Target,
    /// The failing commit.
    pub head_sha: String,
    /// A key unique to the run (`<namespace>/<name>`): the check run's `external_id` and the
    /// comment's hidden marker, so a restarted controller finds what it reported.
    pub key: String,
    /// The check run (or status).
    pub check: CheckOutput,
    /// The pull request comment: `(number, markdown)`.
    pub comment: Option<(i64, String)>,
    /// What was reported before.
    pub known: ReportIds,
}

/// A kept patch offered as suggested changes in a review of pull request `number`.
#[derive(Debug, Clone, PartialEq)]
pub struct SuggestRequest {
    /// The repository and installation.
    pub target: Target,
    /// The failing pull request.
    pub number: i64,
    /// The failing commit: the patch's base, and the commit the review comments are on.
    pub head_sha: String,
    /// The run's key (`<namespace>/<name>`): the review body's hidden marker, so a restarted
    /// controller finds its review instead of posting a second one.
    pub key: String,
    /// The review's text (the marker is added).
    pub body: String,
    /// The kept patch (`git diff` against `head_sha`).
    pub patch: Vec<u8>,
}

/// What offering suggestions did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suggested {
    /// A review with `count` suggestion comments was posted.
    Posted {
        /// The review's id.
        review_id: i64,
        /// Its suggestion comments.
        count: usize,
    },
    /// The run's review was there already (a restart).
    Existing {
        /// The review's id.
        review_id: i64,
    },
    /// The patch does not fit on the lines of the pull request's diff (see [`suggest`]): no review.
    DoesNotFit,
}

/// Closing a fix pull request a person refused (`deny`) or stopped (`abort`).
#[derive(Debug, Clone, PartialEq)]
pub struct CloseRequest {
    /// The repository and installation.
    pub target: Target,
    /// The fix pull request.
    pub number: i64,
    /// The run's key (`<namespace>/<name>`): the closing comment's hidden marker, so a restarted
    /// controller does not comment twice.
    pub key: String,
    /// The closing comment (markdown; the marker is added).
    pub comment: String,
    /// The fix branch to delete (`ci-healer/<run>`), when the fix is refused.
    pub delete_branch: Option<String>,
}

/// The newest failure of a pull request's head, for `/healer fix`: what intake would have made a
/// run of, had its delivery arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestFailure {
    /// The pull request's head commit (`head.sha`).
    pub head_sha: String,
    /// The pull request's head branch (`head.ref`).
    pub branch: String,
    /// The pull request is closed or merged.
    pub closed: bool,
    /// The newest failed check run of the head commit (`None`: nothing failed).
    pub check: Option<FailedCheck>,
}

/// A failed check run (`conclusion` `failure`, `timed_out` or `startup_failure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCheck {
    /// The check run id (for a GitHub Actions job, also the job id).
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its check suite's id.
    pub check_suite_id: Option<i64>,
    /// A link for people (`html_url`).
    pub url: Option<String>,
    /// The Actions job behind it, when the GitHub Actions app made the check run
    /// (`GET /repos/{owner}/{repo}/actions/jobs/{job_id}`).
    pub job: Option<FailedJob>,
}

/// The GitHub Actions job of a failed check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJob {
    /// The workflow run id.
    pub run_id: i64,
    /// The workflow run attempt (1-based).
    pub run_attempt: i64,
    /// The workflow's name.
    pub workflow_name: Option<String>,
    /// Steps whose conclusion was `failure`.
    pub failed_steps: Vec<String>,
}

/// Everything the controller asks of GitHub. One method per step of the run; each is idempotent.
#[async_trait::async_trait]
pub trait GitHub: Send + Sync {
    /// App or token (check runs or commit statuses).
    fn kind(&self) -> IdentityKind;

    /// Secret values this client holds (token, private key), for masking.
    fn secret_values(&self) -> Vec<String>;

    /// Read the failure: log tail, failed steps, check outputs and annotations, changed files,
    /// the failing step's command, the pull request. A missing log is reported in
    /// [`FailureReport::log_fetch`], not as an error. Errors: transient failures and rate limits,
    /// an unusable identity, a repository the identity cannot reach.
    async fn read_failure(&self, q: &FailureQuery) -> Result<FailureReport>;

    /// The branch's head and protection, its head commit and last `recent` commits, and the number
    /// of open pull requests whose head starts with `prefix`.
    async fn branch_facts(
        &self,
        target: &Target,
        branch: &str,
        head_sha: &str,
        recent: usize,
        prefix: &str,
    ) -> Result<BranchFacts>;

    /// Re-check the head SHA, then build the fix commit through the Git Data API (blobs, a tree on
    /// `head_sha`'s tree, a commit whose parent is `head_sha`, the ref `head_ref`) and open a
    /// draft pull request into `base_branch`. Never pushes to `base_branch`, never merges; finds an
    /// existing branch and pull request before creating anything.
    async fn deliver_pull_request(&self, req: &PullRequestRequest) -> Result<Delivery>;

    /// Create or edit the run's check run (App) or set its commit status (token), and create or
    /// edit its one pull request comment. Returns the ids to keep.
    async fn report(&self, req: &ReportRequest) -> Result<ReportIds>;

    /// Add and remove labels of issue or pull request `number` (a missing label is not an error).
    async fn set_labels(&self, target: &Target, number: i64, add: &[String], remove: &[String]) -> Result<()>;

    /// Offer a kept patch as GitHub suggestion blocks: one review (`event: COMMENT`) on pull
    /// request `number` with a suggestion comment per hunk, when every hunk fits on the lines its
    /// diff shows ([`suggest::suggestions`]). Finds the run's earlier review (by the marker in its
    /// body) before posting (`GET`/`POST /repos/{owner}/{repo}/pulls/{pull_number}/reviews`).
    async fn suggest(&self, req: &SuggestRequest) -> Result<Suggested>;

    /// Close a fix pull request: one comment saying why (found by its marker before posting:
    /// `POST /repos/{owner}/{repo}/issues/{number}/comments`), the pull request closed
    /// (`PATCH /repos/{owner}/{repo}/pulls/{pull_number}`, `state: closed`; never merged), and its
    /// branch deleted when asked (`DELETE /repos/{owner}/{repo}/git/refs/heads/{branch}`; a branch
    /// already gone is not an error). Each step is idempotent.
    async fn close_pull_request(&self, req: &CloseRequest) -> Result<()>;

    /// Re-run one Actions job (`POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun`).
    async fn rerun_job(&self, target: &Target, job_id: i64) -> Result<()>;

    /// A user's permission on the repository: `admin`, `maintain`, `write`, `triage`, `read` or `none`
    /// (`GET /repos/{owner}/{repo}/collaborators/{username}/permission`).
    async fn permission(&self, target: &Target, login: &str) -> Result<String>;

    /// The login of the controller's own identity (`github.botLogin`, else `<slug>[bot]` from
    /// `GET /app` for an App, else `login` from `GET /user` for a token).
    async fn login(&self) -> Result<String>;

    /// React to an issue or pull request comment with `content` (`+1`, `-1`, `eyes`, …):
    /// `POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions`. GitHub answers 200 with
    /// the existing reaction when the identity reacted so already, so a repeat adds nothing.
    async fn react(&self, target: &Target, comment_id: i64, content: &str) -> Result<()>;

    /// Post `body` as a comment on issue or pull request `number` with the hidden `marker`
    /// prepended, unless a comment carrying `marker` exists (found first through
    /// `GET /repos/{owner}/{repo}/issues/{issue_number}/comments`); returns the comment's id
    /// (`POST /repos/{owner}/{repo}/issues/{issue_number}/comments`).
    async fn comment_once(&self, target: &Target, number: i64, marker: &str, body: &str) -> Result<i64>;

    /// The newest failure of pull request `number`'s head commit: the pull request
    /// (`GET /repos/{owner}/{repo}/pulls/{pull_number}`), its head's completed check runs
    /// (`GET /repos/{owner}/{repo}/commits/{ref}/check-runs`), the failed one with the highest id
    /// (ci-healer's own check excluded), and for a GitHub Actions check run its job
    /// (`GET /repos/{owner}/{repo}/actions/jobs/{job_id}`).
    async fn latest_failure(&self, target: &Target, number: i64) -> Result<LatestFailure>;

    /// Take pull request `number` out of draft, for a person's `approve`: read it
    /// (`GET /repos/{owner}/{repo}/pulls/{pull_number}`: its `node_id` and `draft`), and when it is
    /// still a draft, GitHub's GraphQL mutation `markPullRequestReadyForReview` (`POST /graphql`;
    /// GitHub's REST API cannot undraft). Returns whether it was a draft. Errors: transient
    /// failures, and GraphQL `errors` as [`Error::Rejected`] (status 200). Not yet for GitHub
    /// Enterprise Server: the request goes to `<apiUrl>/graphql`, while GHES serves GraphQL at
    /// `/api/graphql` beside the REST base `/api/v3`.
    async fn mark_ready_for_review(&self, target: &Target, number: i64) -> Result<bool>;
}
