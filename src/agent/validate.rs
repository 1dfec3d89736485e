//! `healer validate`: judges the workspace independently of the agent.
//!
//! Order: diff against the failing commit → refuse when empty (`NoChange`), weakening tests
//! (`TestWeakened`) or too large (`PatchTooLarge`) → run the validation commands
//! (`ValidationFailed`, `ValidationTimedOut`) → `ValidationPassed`. A change that touches protected
//! paths (workflows, security, dependency manifests, the policy's and the repository's globs) is
//! judged like any other, and its verdict names those paths (`protectedPaths`): the controller holds
//! such a fix for a person's `approve` instead of delivering it. Nothing the agent wrote is read
//! except the workspace itself and its token count (for the verdict's record).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::context::{FailureContext, Masker};
use super::diff::{self, DEFAULT_PROTECTED};
use super::{fixers, process};
use crate::contract::{AgentSettings, Outcome, Step, StepDurations, TokenUsage, Verdict};

/// What validation needs.
#[derive(Debug, Clone)]
pub struct ValidateInput {
    /// The repository checkout, as the agent left it.
    pub workspace: PathBuf,
    /// The failing commit (full SHA from the checkout record, or the head SHA the controller sent).
    pub base: String,
    /// The attempt's settings (validation commands, guard rails).
    pub settings: AgentSettings,
    /// The failure (its class chooses default validation commands).
    pub context: FailureContext,
}

/// The verdict and, when the change is non-empty and within caps, the patch (for the log).
#[derive(Debug, Clone)]
pub struct Judgement {
    /// The verdict for the termination message.
    pub verdict: Verdict,
    /// The patch for the log (absent when empty or too large).
    pub patch: Option<String>,
}

/// The validation commands in force: the profile's, else the failure class's defaults.
pub fn validation_commands(settings: &AgentSettings, ctx: &FailureContext, ws: &Path) -> Vec<String> {
    if !settings.validation_commands.is_empty() {
        return settings.validation_commands.clone();
    }
    let named: Option<Vec<String>> =
        settings.fixers.as_ref().filter(|f| !f.is_empty()).map(|names| {
            names.iter().filter_map(|n| fixers::by_name(n)).map(|f| fixers::check_command(f, ws)).collect()
        });
    match named {
        Some(v) if !v.is_empty() => v,
        _ => fixers::default_validation(&ctx.failure_class, &ctx.excerpt, ws),
    }
}

/// Run `commands` in order in `ws`; the first failure is returned as `(reason, summary)`.
pub async fn run_commands(
    commands: &[String],
    ws: &Path,
    timeout: Duration,
    masker: &Masker,
) -> Result<(), (&'static str, String)> {
    for c in commands {
        match process::shell(c, ws, timeout).await {
            Ok(o) if o.success() => {}
            Ok(o) if o.timed_out => {
                return Err(("ValidationTimedOut", format!("`{c}` did not finish within {}s", timeout.as_secs())));
            }
            Ok(o) => {
                let out = masker.mask(&super::context::strip_control(process::last_bytes(&o.output, 4000)));
                let code = o.code.map(|c| c.to_string()).unwrap_or_else(|| "signal".into());
                return Err(("ValidationFailed", format!("`{c}` failed (exit {code}):\n{out}")));
            }
            Err(e) => return Err(("ValidationFailed", format!("`{c}` could not start: {e}"))),
        }
    }
    Ok(())
}

/// Judge the workspace. Never fails: problems become an `error` verdict.
pub async fn judge(input: &ValidateInput, masker: &Masker) -> Judgement {
    let start = Instant::now();
    let mut j = judge_inner(input, masker).await;
    let mut d = StepDurations {
        checkout_seconds: process::read_record(Step::Checkout.name()).and_then(|r| r["seconds"].as_f64()),
        agent_seconds: process::read_record(Step::Agent.name()).and_then(|r| r["seconds"].as_f64()),
        validate_seconds: None,
    };
    d.validate_seconds = Some(start.elapsed().as_secs_f64());
    j.verdict.durations = Some(d);
    j.verdict.tokens = process::read_record(Step::Agent.name())
        .and_then(|r| serde_json::from_value::<TokenUsage>(r["tokens"].clone()).ok())
        .filter(|t| t.total() > 0);
    j.verdict.summary = masker.mask(&j.verdict.summary);
    j
}

fn verdict(outcome: Outcome, reason: &str, summary: impl Into<String>) -> Verdict {
    Verdict::new(outcome, reason, summary)
}

async fn judge_inner(input: &ValidateInput, masker: &Masker) -> Judgement {
    let ws = &input.workspace;
    if !ws.join(".git").exists() {
        return Judgement {
            verdict: verdict(Outcome::Error, "WorkspaceMissing", format!("no git checkout at {}", ws.display())),
            patch: None,
        };
    }
    let d = match diff::workspace_diff(ws, &input.base).await {
        Ok(d) => d,
        Err(e) => {
            return Judgement { verdict: verdict(Outcome::Error, "DiffFailed", e.to_string()), patch: None };
        }
    };
    if d.is_empty() {
        return Judgement {
            verdict: verdict(Outcome::Refused, "NoChange", "the agent left the workspace unchanged"),
            patch: None,
        };
    }
    let stat = d.diffstat();
    let sha = hex::encode(Sha256::digest(d.patch.as_bytes()));
    let with = |mut v: Verdict, keep_patch: bool| {
        v.diffstat = Some(stat.clone());
        if keep_patch {
            v.patch_sha256 = Some(sha.clone());
        }
        Judgement { verdict: v, patch: keep_patch.then(|| d.patch.clone()) }
    };
    let s = &input.settings;
    if let Some(why) = diff::too_large(&d, s.files_cap(), s.lines_cap()) {
        return with(verdict(Outcome::Refused, "PatchTooLarge", why), false);
    }
    let mut globs: Vec<String> =
        if s.default_protected_paths { DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect() } else { vec![] };
    globs.extend(s.protected_paths.iter().cloned());
    // The repository's own config, read at the failing commit (never from the changed workspace).
    let repo = super::repo_config::merge(
        super::instructions::at_revision(ws, &input.base, super::repo_config::PATH).as_deref(),
        &s.repository_config,
        "",
        &validation_commands(s, &input.context, ws),
        None,
    );
    globs.extend(repo.protected_paths.iter().cloned());
    let protected: Vec<String> = match diff::protected_set(&globs) {
        Ok(set) => diff::protected_hits(&d.files, &set).into_iter().map(str::to_string).collect(),
        Err(e) => {
            return with(verdict(Outcome::Error, "InvalidProtectedPath", e.to_string()), false);
        }
    };
    if let Some(why) = diff::weakened_tests(&d) {
        return with(verdict(Outcome::Refused, "TestWeakened", why), true);
    }
    let commands = repo.validation_commands;
    if commands.is_empty() {
        return with(
            verdict(
                Outcome::Error,
                "NoValidationCommands",
                format!(
                    "no validation commands are configured or known for failure class {}",
                    input.context.failure_class
                ),
            ),
            true,
        );
    }
    match run_commands(&commands, ws, s.validation_timeout(), masker).await {
        Ok(()) => {
            let mut summary = format!("{} file(s) changed; passed: {}", stat.files, commands.join("; "));
            if !protected.is_empty() {
                summary.push_str(&format!(
                    "; touches protected path(s) {}: held for a person's approval",
                    protected.join(", ")
                ));
            }
            let mut v = verdict(Outcome::Passed, "ValidationPassed", summary);
            v.protected_paths = protected
                .into_iter()
                .take(crate::contract::MAX_PROTECTED_PATHS)
                .map(|p| p.chars().take(255).collect())
                .collect();
            with(v, true)
        }
        Err((reason, summary)) => with(verdict(Outcome::Failed, reason, summary), true),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    const RUST_TESTS: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";
    const IT_RS: &str =
        "#[test]\nfn adds() {\n    assert_eq!(demo::add(1, 2), 3);\n    assert_eq!(demo::add(2, 2), 4);\n}\n";
    const JS_TEST: &str = "describe('add', () => {\n  it('adds', () => {\n    expect(add(1, 2)).toBe(3);\n  });\n});\n";
    const JAVA_TEST: &str = "class AddTest {\n  @Test\n  void adds() {\n    assertEquals(3, add(1, 2));\n  }\n}\n";

    /// A real repository at its failing commit; `change` then edits the working tree as an agent would.
    fn judged(change: impl FnOnce(&Path), settings: AgentSettings) -> Verdict {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        git(ws, &["init", "-q", "-b", "main"]);
        for (p, c) in [
            ("src/lib.rs", RUST_TESTS),
            ("tests/it.rs", IT_RS),
            ("web/add.test.js", JS_TEST),
            ("java/AddTest.java", JAVA_TEST),
            ("docs/guide.md", "# Guide\n"),
        ] {
            std::fs::create_dir_all(ws.join(p).parent().unwrap()).unwrap();
            std::fs::write(ws.join(p), c).unwrap();
        }
        git(ws, &["add", "-A"]);
        git(ws, &["commit", "-q", "-m", "failing commit"]);
        let base = git(ws, &["rev-parse", "HEAD"]);
        change(ws);
        let input = ValidateInput { workspace: ws.to_path_buf(), base, settings, context: FailureContext::default() };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(judge(&input, &Masker::default())).verdict
    }

    fn edit(path: &'static str, from: &'static str, to: &'static str) -> impl FnOnce(&Path) {
        move |ws: &Path| {
            let text = std::fs::read_to_string(ws.join(path)).unwrap();
            assert!(text.contains(from), "{path} lacks {from:?}");
            std::fs::write(ws.join(path), text.replacen(from, to, 1)).unwrap();
        }
    }

    fn passing() -> AgentSettings {
        AgentSettings { validation_commands: vec!["true".into()], ..Default::default() }
    }

    /// Every way a change can weaken the tests, judged on a real git repository by the real
    /// validate step (the diff is git's), next to changes that must pass.
    #[test]
    fn judge_table() {
        type Change = Box<dyn FnOnce(&Path)>;
        let cases: Vec<(&str, Change, AgentSettings, Outcome, &str)> = vec![
            (
                "a real fix passes",
                Box::new(edit("src/lib.rs", "a + b", "b + a")),
                passing(),
                Outcome::Passed,
                "ValidationPassed",
            ),
            ("no change", Box::new(|_: &Path| {}), passing(), Outcome::Refused, "NoChange"),
            (
                "removed assertions",
                Box::new(edit("tests/it.rs", "    assert_eq!(demo::add(2, 2), 4);\n", "")),
                passing(),
                Outcome::Refused,
                "TestWeakened",
            ),
            (
                "a weakened assertion is a changed one, not a removed one",
                Box::new(edit("tests/it.rs", "demo::add(2, 2), 4", "demo::add(2, 2), 4 + 0")),
                passing(),
                Outcome::Passed,
                "ValidationPassed",
            ),
            (
                "xit(",
                Box::new(edit("web/add.test.js", "  it('adds'", "  xit('adds'")),
                passing(),
                Outcome::Refused,
                "TestWeakened",
            ),
            (
                ".only(",
                Box::new(edit("web/add.test.js", "describe('add'", "describe.only('add'")),
                passing(),
                Outcome::Refused,
                "TestWeakened",
            ),
            (
                "@Disabled",
                Box::new(edit("java/AddTest.java", "  @Test\n", "  @Disabled\n  @Test\n")),
                passing(),
                Outcome::Refused,
                "TestWeakened",
            ),
            (
                "#[ignore]",
                Box::new(edit("tests/it.rs", "#[test]\n", "#[test]\n#[ignore]\n")),
                passing(),
                Outcome::Refused,
                "TestWeakened",
            ),
            (
                "a deleted test file",
                Box::new(|ws: &Path| std::fs::remove_file(ws.join("tests/it.rs")).unwrap()),
                passing(),
                Outcome::Refused,
                "TestWeakened",
            ),
            (
                "a path protected only by the run's policy passes, held for approval",
                Box::new(edit("docs/guide.md", "# Guide", "# Guide, edited")),
                AgentSettings { protected_paths: vec!["docs/**".into()], ..passing() },
                Outcome::Passed,
                "ValidationPassed",
            ),
            (
                "the same path without that policy",
                Box::new(edit("docs/guide.md", "# Guide", "# Guide, edited")),
                passing(),
                Outcome::Passed,
                "ValidationPassed",
            ),
            (
                "a workflow file is protected by default, and still judged",
                Box::new(|ws: &Path| {
                    std::fs::create_dir_all(ws.join(".github/workflows")).unwrap();
                    std::fs::write(ws.join(".github/workflows/ci.yml"), "on: push\n").unwrap();
                }),
                AgentSettings { validation_commands: vec!["exit 3".into()], ..Default::default() },
                Outcome::Failed,
                "ValidationFailed",
            ),
            (
                "too many changed lines",
                Box::new(edit("src/lib.rs", "a + b", "a + b\n    // one\n    // two\n    // three")),
                AgentSettings { max_changed_lines: 2, ..passing() },
                Outcome::Refused,
                "PatchTooLarge",
            ),
            (
                "a failing validation command",
                Box::new(edit("src/lib.rs", "a + b", "b + a")),
                AgentSettings { validation_commands: vec!["exit 3".into()], ..Default::default() },
                Outcome::Failed,
                "ValidationFailed",
            ),
        ];
        for (name, change, settings, outcome, reason) in cases {
            let v = judged(change, settings);
            assert_eq!((v.outcome, v.reason.as_str()), (outcome, reason), "{name}: {}", v.summary);
            if outcome == Outcome::Passed || reason == "TestWeakened" {
                assert!(v.patch_sha256.is_some(), "{name}: the patch is kept for people to read");
            }
        }
    }

    #[test]
    fn a_refusal_names_what_it_refused() {
        let v = judged(Box::new(edit("tests/it.rs", "    assert_eq!(demo::add(2, 2), 4);\n", "")), passing());
        assert!(v.summary.contains("removes 1 assertion(s) from tests in tests/it.rs"), "{}", v.summary);
        let v = judged(Box::new(|ws: &Path| std::fs::remove_file(ws.join("tests/it.rs")).unwrap()), passing());
        assert!(v.summary.contains("deletes the test file tests/it.rs"), "{}", v.summary);
    }

    #[test]
    fn a_passing_change_names_every_protected_path_it_touches() {
        let v = judged(
            Box::new(|ws: &Path| {
                std::fs::write(ws.join("docs/guide.md"), "# G\n").unwrap();
                std::fs::create_dir_all(ws.join(".github/workflows")).unwrap();
                std::fs::write(ws.join(".github/workflows/ci.yml"), "on: push\n").unwrap();
                std::fs::write(ws.join("src/lib.rs"), RUST_TESTS.replace("a + b", "b + a")).unwrap();
            }),
            AgentSettings { protected_paths: vec!["docs/**".into()], ..passing() },
        );
        assert_eq!(v.outcome, Outcome::Passed, "{}", v.summary);
        assert_eq!(v.protected_paths, vec![".github/workflows/ci.yml".to_string(), "docs/guide.md".into()]);
        assert!(v.summary.contains("held for a person's approval"), "{}", v.summary);
        assert_eq!(v.diffstat.as_ref().map(|d| d.files), Some(3));
        // An unprotected change names none.
        let v = judged(Box::new(edit("src/lib.rs", "a + b", "b + a")), passing());
        assert!(v.protected_paths.is_empty(), "{:?}", v.protected_paths);
    }
}
