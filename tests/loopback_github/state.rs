//! What the loopback GitHub holds: repositories with git objects (blobs, trees, commits, refs),
//! pull requests, comments, labels, check runs, statuses, workflow runs, jobs and their logs, and
//! the identities it accepts. Seeded from a [`Seed`] (YAML for the example binary, struct literals in
//! tests), changed by the requests it answers, read by tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A 40-hex-digit object id of `kind` over `content` (not git's SHA-1; stable and distinct).
pub fn object_id(kind: &str, content: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(content);
    hex::encode(h.finalize())[..40].to_string()
}

/// A commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Commit {
    pub sha: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    /// The GitHub user GitHub links to the author, when any.
    #[serde(default)]
    pub author_login: Option<String>,
    /// `User` or `Bot`.
    #[serde(default)]
    pub author_type: Option<String>,
    pub date: String,
    /// Signed by GitHub (made by an App through the API).
    #[serde(default)]
    pub verified: bool,
}

/// A tree: path → (mode, blob id). Flat (full paths), which is what the API exposes to clients.
pub type Tree = BTreeMap<String, (String, String)>;

/// A pull request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pull {
    pub number: i64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub body: String,
    pub head_ref: String,
    #[serde(default)]
    pub head_sha: String,
    /// `owner/name` of the head repository (another one for a fork). Default: this repository.
    #[serde(default)]
    pub head_repo: Option<String>,
    pub base_ref: String,
    #[serde(default = "open")]
    pub state: String,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default = "octocat")]
    pub user: String,
    #[serde(default)]
    pub maintainer_can_modify: bool,
}

fn open() -> String {
    "open".into()
}
fn octocat() -> String {
    "octocat".into()
}

/// An issue or pull request comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueComment {
    pub id: i64,
    pub issue_number: i64,
    pub body: String,
    pub user: String,
    /// How many times it was edited.
    pub edits: u32,
}

/// A reaction on an issue comment (`POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    pub id: i64,
    pub comment_id: i64,
    /// `+1`, `-1`, `laugh`, `confused`, `heart`, `hooray`, `rocket` or `eyes`.
    pub content: String,
    pub user: String,
}

/// A pull request review (`POST /repos/{owner}/{repo}/pulls/{pull_number}/reviews`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub id: i64,
    pub pull_number: i64,
    pub commit_id: String,
    /// `COMMENT`, `APPROVE`, `REQUEST_CHANGES` (`PENDING` when absent).
    pub event: String,
    pub body: String,
    pub user: String,
    pub comments: Vec<ReviewComment>,
}

/// A review comment on a line (or lines) of a pull request's diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewComment {
    pub path: String,
    pub line: i64,
    #[serde(default)]
    pub start_line: Option<i64>,
    pub side: String,
    pub body: String,
}

/// A check run annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    pub path: String,
    pub start_line: i64,
    pub end_line: i64,
    pub level: String,
    pub message: String,
    #[serde(default)]
    pub title: Option<String>,
}

/// A check run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRun {
    pub id: i64,
    pub name: String,
    pub head_sha: String,
    #[serde(default = "completed")]
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub details_url: Option<String>,
    /// The App that owns it (`github-actions` for Actions jobs).
    #[serde(default = "actions_slug")]
    pub app_slug: String,
    #[serde(default)]
    pub check_suite_id: i64,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    /// How many times it was updated.
    #[serde(default)]
    pub updates: u32,
}

fn completed() -> String {
    "completed".into()
}
fn actions_slug() -> String {
    "github-actions".into()
}

/// A commit status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub id: i64,
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

/// A workflow run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRun {
    pub id: i64,
    #[serde(default = "ci")]
    pub name: String,
    /// The workflow file, e.g. `.github/workflows/ci.yml`.
    pub path: String,
    pub head_sha: String,
    pub head_branch: String,
    #[serde(default = "one")]
    pub run_attempt: i64,
}

fn ci() -> String {
    "CI".into()
}
fn one() -> i64 {
    1
}

/// A job's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Log {
    /// No log (404).
    #[default]
    Missing,
    /// The log text (GitHub's format: RFC 3339 timestamps, `##[…]` markers).
    Text(String),
    /// The log expired (410).
    Expired,
    /// `total` bytes of generated filler lines ending with `tail` (streamed, never held whole).
    Generated { total: u64, tail: String },
}

/// A job step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub name: String,
    pub conclusion: String,
}

/// An Actions job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: i64,
    pub run_id: i64,
    pub name: String,
    #[serde(default = "ci")]
    pub workflow_name: String,
    #[serde(default)]
    pub head_sha: String,
    #[serde(default)]
    pub head_branch: String,
    #[serde(default = "failure")]
    pub conclusion: String,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub log: Log,
    /// How many times it was re-run through the API.
    #[serde(default)]
    pub reruns: u32,
}

fn failure() -> String {
    "failure".into()
}

/// One repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Repo {
    pub id: i64,
    pub owner: String,
    pub name: String,
    #[serde(default)]
    pub blobs: BTreeMap<String, Vec<u8>>,
    #[serde(default)]
    pub trees: BTreeMap<String, Tree>,
    #[serde(default)]
    pub commits: BTreeMap<String, Commit>,
    /// `heads/<branch>` → commit.
    #[serde(default)]
    pub refs: BTreeMap<String, String>,
    #[serde(default)]
    pub protected: BTreeSet<String>,
    #[serde(default)]
    pub pulls: Vec<Pull>,
    #[serde(default)]
    pub comments: Vec<IssueComment>,
    /// Reactions on issue comments.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    #[serde(default)]
    pub reviews: Vec<Review>,
    #[serde(default)]
    pub check_runs: Vec<CheckRun>,
    #[serde(default)]
    pub statuses: Vec<Status>,
    #[serde(default)]
    pub runs: BTreeMap<i64, WorkflowRun>,
    #[serde(default)]
    pub jobs: BTreeMap<i64, Job>,
    /// login → permission (`admin`, `write`, `read` …).
    #[serde(default)]
    pub collaborators: BTreeMap<String, String>,
    /// The App installation that reaches this repository.
    #[serde(default)]
    pub installation_id: Option<i64>,
}

impl Repo {
    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// Store a blob; returns its id.
    pub fn put_blob(&mut self, content: Vec<u8>) -> String {
        let id = object_id("blob", &content);
        self.blobs.insert(id.clone(), content);
        id
    }

    /// Store a tree; returns its id.
    pub fn put_tree(&mut self, tree: Tree) -> String {
        let id = object_id("tree", serde_json::to_string(&tree).unwrap().as_bytes());
        self.trees.insert(id.clone(), tree);
        id
    }

    /// Make a commit of `files` (path → content) on `parent`'s tree (files with `None` are deleted);
    /// returns its id. `sha` forces the id (to mirror a real git repository).
    pub fn commit(&mut self, spec: CommitSpec) -> String {
        let mut tree: Tree = spec
            .parent
            .as_ref()
            .and_then(|p| self.commits.get(p))
            .and_then(|c| self.trees.get(&c.tree))
            .cloned()
            .unwrap_or_default();
        for (path, content) in spec.files {
            match content {
                Some(c) => {
                    let mode = if spec.executable.contains(&path) { "100755" } else { "100644" };
                    let blob = self.put_blob(c.into_bytes());
                    tree.insert(path, (mode.into(), blob));
                }
                None => {
                    tree.remove(&path);
                }
            }
        }
        let tree_id = self.put_tree(tree);
        let mut c = Commit {
            sha: String::new(),
            tree: tree_id,
            parents: spec.parent.into_iter().collect(),
            message: spec.message,
            author_name: spec.author_login.clone().unwrap_or_else(|| "Mona Lisa".into()),
            author_email: "mona@example.com".into(),
            author_type: Some(
                if spec.author_login.as_deref().is_some_and(|l| l.ends_with("[bot]")) { "Bot" } else { "User" }.into(),
            ),
            author_login: spec.author_login,
            date: "2024-05-01T10:00:00Z".into(),
            verified: false,
        };
        c.sha = spec.sha.unwrap_or_else(|| object_id("commit", serde_json::to_string(&c).unwrap().as_bytes()));
        let sha = c.sha.clone();
        self.commits.insert(sha.clone(), c);
        sha
    }

    /// Mirror commit `rev` of the git repository at `dir` (its files, message, author; its id is
    /// git's SHA). Errors: git failures.
    pub fn import_git(&mut self, dir: &std::path::Path, rev: &str) -> Result<String, String> {
        let git = |args: &[&str]| -> Result<Vec<u8>, String> {
            let o =
                std::process::Command::new("git").args(args).current_dir(dir).output().map_err(|e| e.to_string())?;
            if !o.status.success() {
                return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&o.stderr)));
            }
            Ok(o.stdout)
        };
        let meta =
            String::from_utf8(git(&["log", "-1", "--format=%H%n%P%n%an%n%ae%n%B", rev])?).map_err(|e| e.to_string())?;
        let mut lines = meta.lines();
        let sha = lines.next().unwrap_or("").to_string();
        let parent = lines.next().unwrap_or("").split_whitespace().next().map(str::to_string);
        let author = lines.next().unwrap_or("").to_string();
        let _email = lines.next();
        let message = lines.collect::<Vec<_>>().join("\n");
        let listing = git(&["ls-tree", "-r", "-z", &sha])?;
        let mut tree = Tree::new();
        for entry in listing.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let text = String::from_utf8_lossy(entry);
            let (meta, path) = text.split_once('\t').ok_or("bad ls-tree line")?;
            let mut parts = meta.split_whitespace();
            let mode = parts.next().unwrap_or("100644").to_string();
            let kind = parts.next().unwrap_or("blob");
            let id = parts.next().unwrap_or("").to_string();
            if kind != "blob" {
                continue;
            }
            let content = git(&["cat-file", "blob", &id])?;
            self.blobs.insert(id.clone(), content);
            tree.insert(path.to_string(), (mode, id));
        }
        let tree_id = self.put_tree(tree);
        self.commits.insert(
            sha.clone(),
            Commit {
                sha: sha.clone(),
                tree: tree_id,
                parents: parent.into_iter().collect(),
                message,
                author_name: author.clone(),
                author_email: "dev@example.com".into(),
                author_login: Some(author),
                author_type: Some("User".into()),
                date: "2024-05-01T10:00:00Z".into(),
                verified: false,
            },
        );
        Ok(sha)
    }

    /// The file at `path` in commit `sha`: (mode, content).
    pub fn file(&self, sha: &str, path: &str) -> Option<(String, Vec<u8>)> {
        let c = self.commits.get(sha)?;
        let (mode, blob) = self.trees.get(&c.tree)?.get(path)?;
        Some((mode.clone(), self.blobs.get(blob)?.clone()))
    }

    /// Commit `sha` resolved from a SHA or a branch name.
    pub fn resolve(&self, rev: &str) -> Option<String> {
        if self.commits.contains_key(rev) {
            return Some(rev.to_string());
        }
        self.refs.get(&format!("heads/{rev}")).cloned()
    }

    /// The commits reachable from `sha`, first parents only, newest first.
    pub fn history(&self, sha: &str, n: usize) -> Vec<&Commit> {
        let mut out = Vec::new();
        let mut cur = self.commits.get(sha);
        while let Some(c) = cur {
            if out.len() >= n {
                break;
            }
            out.push(c);
            cur = c.parents.first().and_then(|p| self.commits.get(p));
        }
        out
    }

    /// The unified diff hunks of `path` from commit `a` to commit `b`, as GitHub's `patch` field of
    /// a pull request file has them (hunks only, no `---`/`+++` header); `None` for a binary file.
    pub fn file_patch(&self, a: Option<&str>, b: &str, path: &str) -> Option<String> {
        let text = |s: Option<&str>| -> Option<String> {
            match s.and_then(|s| self.file(s, path)) {
                Some((_, bytes)) => String::from_utf8(bytes).ok(),
                None => Some(String::new()),
            }
        };
        let (old, new) = (text(a)?, text(Some(b))?);
        let full = diffy::create_patch(&old, &new).to_string();
        let start = full.find("@@")?;
        Some(full[start..].to_string())
    }

    /// Paths that differ between commit `a` and commit `b`.
    pub fn diff_paths(&self, a: Option<&str>, b: &str) -> Vec<String> {
        let tree = |s: Option<&str>| {
            s.and_then(|s| self.commits.get(s)).and_then(|c| self.trees.get(&c.tree)).cloned().unwrap_or_default()
        };
        let (ta, tb) = (tree(a), tree(Some(b)));
        let mut out: BTreeSet<String> = BTreeSet::new();
        for (p, v) in &tb {
            if ta.get(p) != Some(v) {
                out.insert(p.clone());
            }
        }
        for p in ta.keys() {
            if !tb.contains_key(p) {
                out.insert(p.clone());
            }
        }
        out.into_iter().collect()
    }
}

/// A commit to make with [`Repo::commit`].
#[derive(Debug, Clone, Default)]
pub struct CommitSpec {
    pub parent: Option<String>,
    pub files: Vec<(String, Option<String>)>,
    pub executable: Vec<String>,
    pub message: String,
    pub author_login: Option<String>,
    pub sha: Option<String>,
}

// Defaults equal to the serde defaults, for struct literals in tests.
macro_rules! serde_default {
    ($t:ty, $json:tt) => {
        impl Default for $t {
            fn default() -> Self {
                serde_json::from_value(serde_json::json!($json)).expect("defaults")
            }
        }
    };
}
serde_default!(Pull, {"number": 0, "headRef": "", "baseRef": ""});
serde_default!(CheckRun, {"id": 0, "name": "", "headSha": ""});
serde_default!(Job, {"id": 0, "runId": 0, "name": ""});

/// Who the loopback accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// Personal access tokens and the login each belongs to.
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
    /// A GitHub App.
    #[serde(default)]
    pub app: Option<App>,
}

/// A GitHub App the loopback knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: i64,
    #[serde(default = "slug")]
    pub slug: String,
    /// The App's public key (PEM), which verifies its JWTs.
    pub public_key_pem: String,
    /// Seconds an installation token lives. Default 3600.
    #[serde(default = "hour")]
    pub token_ttl_seconds: u64,
}

fn slug() -> String {
    "ci-healer".into()
}
fn hour() -> u64 {
    3600
}

/// An installation token the loopback minted.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub installation_id: i64,
    pub expires: Instant,
}

/// The whole state.
#[derive(Debug, Default)]
pub struct State {
    pub repos: BTreeMap<String, Repo>,
    pub auth: Auth,
    pub minted: BTreeMap<String, MintedToken>,
    pub next_id: i64,
}

impl State {
    /// A fresh id (for pulls, comments, check runs …).
    pub fn id(&mut self) -> i64 {
        self.next_id += 1;
        1_000_000 + self.next_id
    }

    /// The repository `owner/name` (case-insensitive).
    pub fn repo(&self, full: &str) -> Option<&Repo> {
        self.repos.get(&full.to_ascii_lowercase())
    }

    /// The repository `owner/name`, mutable.
    pub fn repo_mut(&mut self, full: &str) -> Option<&mut Repo> {
        self.repos.get_mut(&full.to_ascii_lowercase())
    }

    /// Add an empty repository (id from the sequence) and return it.
    pub fn add_repo(&mut self, full: &str) -> &mut Repo {
        let id = self.id();
        let (owner, name) = full.split_once('/').expect("owner/name");
        self.repos.entry(full.to_ascii_lowercase()).or_insert_with(|| Repo {
            id,
            owner: owner.into(),
            name: name.into(),
            ..Default::default()
        })
    }

    /// Mint an installation token valid for the App's TTL.
    pub fn mint(&mut self, installation_id: i64) -> (String, Duration) {
        let ttl = Duration::from_secs(self.auth.app.as_ref().map(|a| a.token_ttl_seconds).unwrap_or(3600));
        let n = self.id();
        let token = format!("ghs_{}", &object_id("token", format!("{installation_id}-{n}").as_bytes())[..36]);
        self.minted.insert(token.clone(), MintedToken { installation_id, expires: Instant::now() + ttl });
        (token, ttl)
    }
}

/// A seed for the example binary (`--seed seed.yaml`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seed {
    /// Identities accepted.
    #[serde(default)]
    pub auth: Auth,
    /// App public key from a file (instead of `auth.app.publicKeyPem`).
    #[serde(default)]
    pub app_public_key_file: Option<PathBuf>,
    /// Repositories.
    #[serde(default)]
    pub repositories: Vec<RepoSeed>,
}

/// One repository of a [`Seed`].
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepoSeed {
    pub full_name: String,
    /// Mirror commits of a local git repository: `[dir, rev]`; the branch names point at them.
    #[serde(default)]
    pub import_git: Option<(PathBuf, String)>,
    #[serde(default)]
    pub branches: BTreeMap<String, String>,
    #[serde(default)]
    pub protected: Vec<String>,
    #[serde(default)]
    pub pulls: Vec<Pull>,
    #[serde(default)]
    pub runs: Vec<WorkflowRun>,
    #[serde(default)]
    pub jobs: Vec<JobSeed>,
    #[serde(default)]
    pub installation_id: Option<i64>,
    #[serde(default)]
    pub collaborators: BTreeMap<String, String>,
}

/// A job of a [`RepoSeed`], with its log from a file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSeed {
    #[serde(flatten)]
    pub job: Job,
    /// The log, read from a file (a raw log; converted to GitHub's format with timestamps).
    #[serde(default)]
    pub log_file: Option<PathBuf>,
}

/// Prefix each line with an RFC 3339 timestamp, as GitHub's job logs are written.
pub fn github_log_format(raw: &str) -> String {
    raw.lines()
        .enumerate()
        .map(|(i, l)| format!("2024-05-01T10:00:{:02}.{:07}Z {l}\n", (i / 1000) % 60, i % 10_000_000))
        .collect()
}

impl State {
    /// Apply a seed. Errors: an unreadable file or git repository.
    pub fn apply(&mut self, seed: Seed) -> Result<(), String> {
        self.auth = seed.auth;
        if let (Some(app), Some(f)) = (self.auth.app.as_mut(), seed.app_public_key_file) {
            app.public_key_pem = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        }
        for r in seed.repositories {
            let repo = self.add_repo(&r.full_name);
            let mut imported = None;
            if let Some((dir, rev)) = &r.import_git {
                imported = Some(repo.import_git(dir, rev)?);
            }
            for (b, target) in r.branches {
                let sha = if target == "HEAD" || target.is_empty() {
                    imported.clone().ok_or("HEAD needs importGit")?
                } else {
                    target
                };
                repo.refs.insert(format!("heads/{b}"), sha);
            }
            repo.protected.extend(r.protected);
            repo.pulls.extend(r.pulls);
            for run in r.runs {
                repo.runs.insert(run.id, run);
            }
            for j in r.jobs {
                let mut job = j.job;
                if let Some(f) = j.log_file {
                    let raw = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
                    job.log = Log::Text(github_log_format(&raw));
                }
                repo.jobs.insert(job.id, job);
            }
            repo.installation_id = r.installation_id;
            repo.collaborators = r.collaborators;
        }
        Ok(())
    }
}
