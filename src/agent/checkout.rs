//! `healer checkout`: a shallow clone of the failing commit into the workspace.
//!
//! `git init`, `git fetch --depth 1 origin <sha>` (protocol v2 serves any reachable commit; GitHub
//! does), `git checkout --detach`. A short SHA (7–39 digits) cannot be fetched by name, so the branch
//! is fetched (depth 50) and the SHA resolved in it. The token (the file named by
//! [`env::GIT_TOKEN_FILE`]) reaches git only through a credential helper that reads the file when git asks: it is never on a command
//! line, in the environment of git, in `.git/config` or in a log. Failures end the step with a precise
//! reason: `CommitNotFound`, `AccessDenied`, `RepositoryNotFound`, `CheckoutFailed`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::process::Command;

use super::context::Masker;
use crate::contract::{Step, StepContext, env};

/// Lock files that tools create when a repository does not track them; untracked ones are ignored.
pub const GENERATED_LOCKS: &[&str] =
    &["Cargo.lock", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "go.sum", "poetry.lock", "uv.lock"];

/// Where to clone from and what.
#[derive(Debug, Clone)]
pub struct CheckoutPlan {
    /// Clone URL: the context's `repo_url`, else `<gitBaseUrl or https://github.com>/<repository>.git`.
    pub url: String,
    /// The failing commit.
    pub sha: String,
    /// The branch, used for short SHAs.
    pub branch: Option<String>,
    /// The workspace.
    pub dir: PathBuf,
    /// The token file, if one is mounted.
    pub token_file: Option<PathBuf>,
}

/// A checkout failure with its stable reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct CheckoutError {
    /// `CommitNotFound`, `AccessDenied`, `RepositoryNotFound`, `CheckoutFailed` or `CheckoutMisconfigured`.
    pub reason: &'static str,
    /// Masked and bounded; never contains the token.
    pub message: String,
}

impl CheckoutPlan {
    /// Build the plan from the checkout step's environment ([`StepContext::from_env`]).
    /// Errors: `CheckoutMisconfigured` when the repository or SHA is missing.
    pub fn from_env() -> Result<Self, CheckoutError> {
        let ctx = StepContext::from_env(Step::Checkout)
            .map_err(|e| CheckoutError { reason: "CheckoutMisconfigured", message: e.to_string() })?;
        Self::from_context(&ctx)
    }

    /// Build the plan from a step context. Errors: `CheckoutMisconfigured` when the repository or
    /// SHA is missing.
    pub fn from_context(ctx: &StepContext) -> Result<Self, CheckoutError> {
        let mis = |m: String| CheckoutError { reason: "CheckoutMisconfigured", message: m };
        let src = ctx.source.clone().unwrap_or_default();
        let set = |v: &str| Some(v.to_string()).filter(|v| !v.trim().is_empty());
        let sha = set(&src.head_sha).ok_or_else(|| mis(format!("{} is not set", env::HEAD_SHA)))?;
        let url = match &ctx.repo_url {
            Some(u) => u.clone(),
            None => {
                let repo = set(&src.repository).ok_or_else(|| mis(format!("{} is not set", env::REPOSITORY)))?;
                let base = ctx.git_base_url.clone().unwrap_or_else(|| "https://github.com".into());
                format!("{}/{}.git", base.trim_end_matches('/'), repo.trim_end_matches(".git"))
            }
        };
        Ok(Self {
            url,
            sha: sha.trim().to_lowercase(),
            branch: set(&src.branch),
            dir: ctx.workspace.clone(),
            token_file: ctx.git_token_file.clone(),
        })
    }
}

/// Classify git's stderr into a reason.
pub fn classify(stderr: &str) -> &'static str {
    let s = stderr.to_lowercase();
    if s.contains("not our ref")
        || s.contains("couldn't find remote ref")
        || s.contains("no such remote ref")
        || s.contains("unadvertised object")
        || s.contains("not a valid commit")
        || s.contains("did not match any")
        || s.contains("reference is not a tree")
        || s.contains("bad object")
        || s.contains("unknown revision")
        || s.contains("needed a single revision")
    {
        "CommitNotFound"
    } else if s.contains("repository not found")
        || s.contains("does not appear to be a git repository")
        || (s.contains("repository '") && s.contains("' not found"))
        || s.contains("error: 404")
    {
        "RepositoryNotFound"
    } else if s.contains("authentication failed")
        || s.contains("could not read username")
        || s.contains("could not read password")
        || s.contains("permission denied")
        || s.contains("error: 403")
        || s.contains("error: 401")
        || s.contains("access denied")
        || s.contains("invalid username or password")
    {
        "AccessDenied"
    } else {
        "CheckoutFailed"
    }
}

/// Clone `plan.sha` into `plan.dir`. Returns the full SHA checked out. Errors: [`CheckoutError`].
pub async fn checkout(plan: &CheckoutPlan, masker: &Masker) -> Result<String, CheckoutError> {
    let start = Instant::now();
    if let Some(f) = &plan.token_file
        && !f.is_file()
    {
        return Err(CheckoutError {
            reason: "AccessDenied",
            message: format!("the git token file {} is missing", f.display()),
        });
    }
    std::fs::create_dir_all(&plan.dir).map_err(|e| CheckoutError {
        reason: "CheckoutFailed",
        message: format!("cannot create {}: {e}", plan.dir.display()),
    })?;
    let run = |args: Vec<String>| git(plan, args, masker);
    run(vec!["init".into(), "-q".into()]).await?;
    // Keep build output out of the diff even when the repository does not ignore it.
    let exclude = plan.dir.join(".git/info/exclude");
    let _ = std::fs::create_dir_all(exclude.parent().expect("has parent"));
    let _ = std::fs::write(&exclude, "target/\nnode_modules/\n__pycache__/\n.ruff_cache/\n.pytest_cache/\n.healer/\n");
    let _ = run(vec!["remote".into(), "remove".into(), "origin".into()]).await;
    run(vec!["remote".into(), "add".into(), "origin".into(), plan.url.clone()]).await?;

    let full = plan.sha.len() == 40;
    if full {
        run(vec![
            "fetch".into(),
            "-q".into(),
            "--no-tags".into(),
            "--depth".into(),
            "1".into(),
            "origin".into(),
            plan.sha.clone(),
        ])
        .await?;
    } else {
        let branch = plan.branch.clone().ok_or(CheckoutError {
            reason: "CommitNotFound",
            message: format!("the short SHA {} needs a branch to resolve it in", plan.sha),
        })?;
        run(vec![
            "fetch".into(),
            "-q".into(),
            "--no-tags".into(),
            "--depth".into(),
            "50".into(),
            "origin".into(),
            format!("refs/heads/{branch}"),
        ])
        .await?;
    }
    let resolved = run(vec![
        "rev-parse".into(),
        "--verify".into(),
        "--quiet".into(),
        format!("{}^{{commit}}", if full { "FETCH_HEAD" } else { &plan.sha }),
    ])
    .await
    .map_err(|_| CheckoutError {
        reason: "CommitNotFound",
        message: format!("commit {} is not in {}", plan.sha, masker.mask(&plan.url)),
    })?;
    let resolved = resolved.trim().to_string();
    if !resolved.starts_with(&plan.sha) {
        return Err(CheckoutError {
            reason: "CommitNotFound",
            message: format!("fetched {resolved}, expected {}", plan.sha),
        });
    }
    run(vec!["checkout".into(), "-q".into(), "--detach".into(), resolved.clone()]).await?;
    // Tools generate lock files a repository may not track (a library's Cargo.lock): those are build
    // output, not part of a change.
    let tracked = run(vec!["ls-files".into()]).await.unwrap_or_default();
    let mut exclude_text = std::fs::read_to_string(&exclude).unwrap_or_default();
    for lock in GENERATED_LOCKS {
        if !tracked.lines().any(|l| l == *lock || l.ends_with(&format!("/{lock}"))) {
            exclude_text.push_str(lock);
            exclude_text.push('\n');
        }
    }
    let _ = std::fs::write(&exclude, exclude_text);
    super::process::write_record(
        Step::Checkout.name(),
        &serde_json::json!({"sha": resolved, "seconds": start.elapsed().as_secs_f64()}),
    );
    Ok(resolved)
}

async fn git(plan: &CheckoutPlan, args: Vec<String>, masker: &Masker) -> Result<String, CheckoutError> {
    let mut cmd = Command::new("git");
    cmd.current_dir(&plan.dir).env("GIT_TERMINAL_PROMPT", "0").env("GIT_ASKPASS", "true").env_remove("SSH_ASKPASS");
    if let Some(f) = &plan.token_file {
        // The helper reads the file itself when git needs credentials; only its path is passed.
        cmd.env(env::GIT_TOKEN_FILE, f);
        cmd.env("GIT_CONFIG_COUNT", "2")
            .env("GIT_CONFIG_KEY_0", "credential.helper")
            .env("GIT_CONFIG_VALUE_0", "")
            .env("GIT_CONFIG_KEY_1", "credential.helper")
            .env("GIT_CONFIG_VALUE_1", credential_helper());
    }
    cmd.args(&args).stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(600), cmd.output())
        .await
        .map_err(|_| CheckoutError {
            reason: "CheckoutFailed",
            message: format!("git {} timed out after 600s", args[0]),
        })?
        .map_err(|e| CheckoutError { reason: "CheckoutFailed", message: format!("cannot run git: {e}") })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = super::context::bound(&masker.mask(&format!("git {} failed: {}", args[0], stderr.trim())), 1024);
    Err(CheckoutError { reason: classify(&stderr), message })
}

/// The git credential helper (`credential.helper`, a shell function) that answers `get` with the
/// token read from the file named by [`env::GIT_TOKEN_FILE`] at the moment git asks.
fn credential_helper() -> String {
    format!(
        r#"!f() {{ test "$1" = get || exit 0; echo username=x-access-token; printf 'password=%s\n' "$(cat "${}")"; }}; f"#,
        env::GIT_TOKEN_FILE
    )
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn classifies_git_errors() {
        assert_eq!(classify("fatal: remote error: upload-pack: not our ref 0123"), "CommitNotFound");
        assert_eq!(classify("fatal: couldn't find remote ref refs/heads/x"), "CommitNotFound");
        assert_eq!(
            classify("remote: Repository not found.\nfatal: repository 'https://github.com/a/b.git/' not found"),
            "RepositoryNotFound"
        );
        assert_eq!(
            classify(
                "fatal: '/tmp/x.git' does not appear to be a git repository\nPlease make sure you have the correct access rights"
            ),
            "RepositoryNotFound"
        );
        assert_eq!(classify("fatal: Authentication failed for 'https://github.com/a/b.git/'"), "AccessDenied");
        assert_eq!(
            classify("fatal: could not read Username for 'https://github.com': terminal prompts disabled"),
            "AccessDenied"
        );
        assert_eq!(
            classify("fatal: unable to access 'https://x/': The requested URL returned error: 403"),
            "AccessDenied"
        );
        assert_eq!(classify("fatal: something else"), "CheckoutFailed");
    }
}
