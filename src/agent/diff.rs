//! The change an agent made, as git sees it, and the guard rails it must pass: protected paths,
//! weakened tests, size caps. Computing the diff runs git; the guards are pure functions.

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::Regex;

use super::process;
use crate::contract::Diffstat;

/// Paths protected by default: CI definitions, security folders, dependency lock files and pinned
/// requirement files (a dependency change is a supply-chain decision people make, not a CI fix).
/// Manifests (`Cargo.toml`, `package.json`, `go.mod`, `pyproject.toml`) stay editable: fixing a build
/// may need a feature flag. Profiles can drop these with `defaultProtectedPaths: false`.
pub const DEFAULT_PROTECTED: &[&str] = &[
    ".github/workflows/**",
    ".github/actions/**",
    ".github/ci-healer.yml",
    "CODEOWNERS",
    ".gitlab-ci.yml",
    "**/security/**",
    "Cargo.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lockb",
    "go.sum",
    "poetry.lock",
    "Pipfile.lock",
    "uv.lock",
    "requirements*.txt",
    "Gemfile.lock",
    "composer.lock",
];

/// How a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new file (`A` in `git diff --name-status`).
    Added,
    /// An edited file (anything else).
    Modified,
    /// A removed file (`D`).
    Deleted,
}

/// One changed file, with `git diff --numstat` counts (binary files count 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The path, relative to the repository root.
    pub path: String,
    /// Added, modified or deleted.
    pub kind: ChangeKind,
    /// Lines added.
    pub insertions: u32,
    /// Lines removed.
    pub deletions: u32,
}

/// The workspace's change against the failing commit.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceDiff {
    /// `git diff --binary` output (applies with `git apply` on the failing commit).
    pub patch: String,
    /// The changed files, in `git diff --numstat` order.
    pub files: Vec<FileChange>,
}

impl WorkspaceDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The files and lines changed, in the API's signed counts.
    pub fn diffstat(&self) -> Diffstat {
        // The API's counts are signed (i64); the runtime's are unsigned and converted here.
        Diffstat {
            files: i64::try_from(self.files.len()).unwrap_or(i64::MAX),
            insertions: self.files.iter().map(|f| i64::from(f.insertions)).sum(),
            deletions: self.files.iter().map(|f| i64::from(f.deletions)).sum(),
        }
    }
}

/// Why a git command failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started (not installed, no such directory).
    #[error("cannot run git: {0}")]
    Start(#[from] std::io::Error),
    /// git ran longer than 300 s.
    #[error("git {0} timed out")]
    TimedOut(String),
    /// git exited non-zero; its stderr is the detail.
    #[error("git {command} failed: {stderr}")]
    Failed {
        /// The arguments, joined.
        command: String,
        /// git's stderr, trimmed.
        stderr: String,
    },
}

/// Run git in `dir`; returns stdout. Errors: [`GitError`] (git missing, a timeout after 300 s, or
/// a non-zero exit with its stderr).
pub async fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(args).current_dir(dir).env("GIT_TERMINAL_PROMPT", "0");
    cmd.stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .map_err(|_| GitError::TimedOut(args.first().unwrap_or(&"").to_string()))??;
    if !out.status.success() {
        return Err(GitError::Failed {
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The workspace's change (tracked edits, new untracked files not ignored by `.gitignore`, deletions)
/// against `base` (the failing commit). Renames show as delete + add. Errors: git failures.
pub async fn workspace_diff(ws: &Path, base: &str) -> Result<WorkspaceDiff, GitError> {
    git(ws, &["add", "--all", "--intent-to-add"]).await?;
    let patch = git(ws, &["diff", "--binary", "--no-color", "--no-ext-diff", "--no-renames", base]).await?;
    let numstat = git(ws, &["diff", "--numstat", "--no-renames", base]).await?;
    let status = git(ws, &["diff", "--name-status", "--no-renames", base]).await?;
    process::write_record("diff", &serde_json::json!({"bytes": patch.len()}));
    Ok(WorkspaceDiff { files: parse_stats(&numstat, &status), patch })
}

fn parse_stats(numstat: &str, name_status: &str) -> Vec<FileChange> {
    let kinds: std::collections::HashMap<&str, ChangeKind> = name_status
        .lines()
        .filter_map(|l| {
            let (k, p) = l.split_once('\t')?;
            let kind = match k.chars().next()? {
                'A' => ChangeKind::Added,
                'D' => ChangeKind::Deleted,
                _ => ChangeKind::Modified,
            };
            Some((p, kind))
        })
        .collect();
    numstat
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, '\t');
            let ins = it.next()?.parse().unwrap_or(0);
            let del = it.next()?.parse().unwrap_or(0);
            let path = it.next()?;
            Some(FileChange {
                path: path.into(),
                kind: *kinds.get(path).unwrap_or(&ChangeKind::Modified),
                insertions: ins,
                deletions: del,
            })
        })
        .collect()
}

/// A protected-path pattern that is not a valid glob.
#[derive(Debug, thiserror::Error)]
#[error("protected path {pattern:?}: {source}")]
pub struct InvalidGlob {
    /// The pattern as given.
    pub pattern: String,
    /// globset's reason.
    pub source: globset::Error,
}

/// Compile protected-path globs. A pattern without `/` matches the file name at any depth
/// (like `.gitignore`); `**` crosses directories, `*` does not. Errors: [`InvalidGlob`].
pub fn protected_set(patterns: &[String]) -> Result<GlobSet, InvalidGlob> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let p = p.trim().trim_start_matches("./");
        if p.is_empty() {
            continue;
        }
        let full = if p.contains('/') { p.trim_start_matches('/').to_string() } else { format!("**/{p}") };
        b.add(
            GlobBuilder::new(&full)
                .literal_separator(true)
                .build()
                .map_err(|source| InvalidGlob { pattern: p.to_string(), source })?,
        );
    }
    b.build().map_err(|source| InvalidGlob { pattern: patterns.join(", "), source })
}

/// Every changed path that a protected glob matches, in the diff's order.
pub fn protected_hits<'a>(files: &'a [FileChange], set: &GlobSet) -> Vec<&'a str> {
    files.iter().map(|f| f.path.as_str()).filter(|p| set.is_match(p)).collect()
}

/// Whether a path looks like a test file (Rust `tests/`, Go `_test.go`, Python `test_*.py`,
/// JS/TS `*.test.*`/`*.spec.*`/`__tests__/`, Java `*Test.java`, Ruby `_spec.rb`).
pub fn is_test_path(path: &str) -> bool {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(^|/)(tests?|__tests__|spec|specs)/|_test\.go$|(^|/)test_[^/]*\.py$|_test\.py$|\.(test|spec)\.[cm]?[jt]sx?$|Tests?\.(java|kt|cs)$|_spec\.rb$")
            .expect("test path regex")
    });
    RE.is_match(path)
}

static TEST_DEF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(#\[(tokio::|async_std::)?test\b|#\[(rstest|test_case|proptest)\b|(async\s+)?def\s+test_?\w*\s*\(|func\s+(Test|Benchmark|Fuzz)\w*\s*\(|(it|test|describe|context)\s*(\.each\b.*)?\(|@Test\b)",
    )
    .expect("test definition regex")
});
static SKIP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"#\[ignore\b|cfg_attr\([^)]*ignore|\b(it|test|describe|context)\.(skip|todo)\s*\(|\b(xit|xtest|xdescribe|xcontext)\s*\(|\b(it|test|describe)\.only\s*\(|@pytest\.mark\.(skip|skipif|xfail)\b|@unittest\.(skip|skipIf|skipUnless|expectedFailure)\b|pytest\.skip\s*\(|\bt\.(Skip|SkipNow|Skipf)\s*\(|@(Disabled|Ignore)\b",
    )
    .expect("skip regex")
});
static ASSERTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(assert(_eq|_ne|_matches)?!|assert\b|self\.assert\w*\(|expect\(|require\.\w+\(|assert\.\w+\(|t\.(Error|Errorf|Fatal|Fatalf)\()")
        .expect("assertion regex")
});

fn is_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("//") || t.starts_with("/*") || t.starts_with('*') || t.starts_with("# ") || t == "#"
}

/// Why a change weakens the tests, if it does: a test file deleted, test definitions removed (net),
/// a skip/ignore/only marker added, or assertions removed (net) from a test file.
pub fn weakened_tests(diff: &WorkspaceDiff) -> Option<String> {
    if let Some(f) = diff.files.iter().find(|f| f.kind == ChangeKind::Deleted && is_test_path(&f.path)) {
        return Some(format!("the change deletes the test file {}", f.path));
    }
    for (path, added, removed) in per_file_lines(&diff.patch) {
        let count = |lines: &[&str], re: &Regex| lines.iter().filter(|l| !is_comment(l) && re.is_match(l)).count();
        let (defs_added, defs_removed) = (count(&added, &TEST_DEF), count(&removed, &TEST_DEF));
        if defs_removed > defs_added {
            return Some(format!("the change removes {} test definition(s) from {path}", defs_removed - defs_added));
        }
        if let Some(l) = added.iter().find(|l| !is_comment(l) && SKIP.is_match(l)) {
            return Some(format!("the change skips or narrows tests in {path}: `{}`", l.trim()));
        }
        let in_test = is_test_path(&path)
            || removed.iter().chain(added.iter()).any(|l| l.contains("#[cfg(test)]") || TEST_DEF.is_match(l));
        if in_test {
            let (a, r) = (count(&added, &ASSERTION), count(&removed, &ASSERTION));
            if r > a {
                return Some(format!("the change removes {} assertion(s) from tests in {path}", r - a));
            }
        }
    }
    None
}

/// Added and removed lines of each file in a unified diff.
fn per_file_lines(patch: &str) -> Vec<(String, Vec<&str>, Vec<&str>)> {
    let mut out: Vec<(String, Vec<&str>, Vec<&str>)> = Vec::new();
    let mut in_hunk = false;
    for line in patch.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let path = rest.rsplit_once(" b/").map(|(_, b)| b).unwrap_or(rest).to_string();
            out.push((path, Vec::new(), Vec::new()));
            in_hunk = false;
            continue;
        }
        if line.starts_with("@@") {
            in_hunk = true;
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        if !in_hunk {
            continue;
        }
        if let Some(a) = line.strip_prefix('+') {
            cur.1.push(a);
        } else if let Some(r) = line.strip_prefix('-') {
            cur.2.push(r);
        }
    }
    out
}

/// Why the change is too large, if it is.
pub fn too_large(diff: &WorkspaceDiff, max_files: u32, max_lines: u32) -> Option<String> {
    let st = diff.diffstat();
    if st.files > i64::from(max_files) {
        return Some(format!("the change touches {} files (cap {max_files})", st.files));
    }
    if st.insertions + st.deletions > i64::from(max_lines) {
        return Some(format!("the change has {} changed lines (cap {max_lines})", st.insertions + st.deletions));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(patch: &str, files: Vec<FileChange>) -> WorkspaceDiff {
        WorkspaceDiff { patch: patch.into(), files }
    }
    fn fc(path: &str, kind: ChangeKind) -> FileChange {
        FileChange { path: path.into(), kind, insertions: 1, deletions: 1 }
    }

    #[test]
    fn protected_globs_follow_gitignore_rules() {
        let pats: Vec<String> =
            DEFAULT_PROTECTED.iter().map(|s| s.to_string()).chain(["docs/*.md".to_string()]).collect();
        let set = protected_set(&pats).unwrap();
        for p in [
            ".github/workflows/ci.yml",
            "Cargo.lock",
            "crates/a/Cargo.lock",
            "web/package-lock.json",
            "src/security/x.rs",
            "security/a",
            "requirements-dev.txt",
            "docs/a.md",
        ] {
            assert!(set.is_match(p), "{p} should be protected");
        }
        for p in ["Cargo.toml", "src/lib.rs", ".github/CODEOWNERS.bak", "docs/sub/a.md", "package.json"] {
            assert!(!set.is_match(p), "{p} should not be protected");
        }
    }

    #[test]
    fn detects_weakened_tests() {
        let removed_fn = "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,9 +1,3 @@\n pub fn f() {}\n-    #[test]\n-    fn adds() {\n-        assert_eq!(f(), ());\n-    }\n";
        assert!(
            weakened_tests(&d(removed_fn, vec![fc("src/lib.rs", ChangeKind::Modified)]))
                .unwrap()
                .contains("removes 1 test")
        );
        let ignore = "diff --git a/src/lib.rs b/src/lib.rs\n@@ -1 +1,2 @@\n+    #[ignore]\n     #[test]\n";
        assert!(weakened_tests(&d(ignore, vec![])).unwrap().contains("#[ignore]"));
        let js = "diff --git a/a.test.ts b/a.test.ts\n@@ -1 +1 @@\n-it('works', () => {\n+it.skip('works', () => {\n";
        assert!(weakened_tests(&d(js, vec![])).is_some());
        let py = "diff --git a/test_a.py b/test_a.py\n@@ -1 +1,2 @@\n+@pytest.mark.skip(reason='x')\n def test_a():\n";
        assert!(weakened_tests(&d(py, vec![])).is_some());
        let go =
            "diff --git a/a_test.go b/a_test.go\n@@ -1 +1,2 @@\n func TestA(t *testing.T) {\n+\tt.Skip(\"later\")\n";
        assert!(weakened_tests(&d(go, vec![])).is_some());
        let commented = "diff --git a/src/lib.rs b/src/lib.rs\n@@ -1 +1 @@\n-    #[test]\n+    // #[test]\n";
        assert!(weakened_tests(&d(commented, vec![])).is_some());
        assert!(
            weakened_tests(&d("", vec![fc("tests/it.rs", ChangeKind::Deleted)]))
                .unwrap()
                .contains("deletes the test file")
        );
        // Ordinary code: iterator .skip(1), a fixed assertion, a renamed variable.
        let ok = "diff --git a/src/lib.rs b/src/lib.rs\n@@ -1,3 +1,3 @@\n-    let x = v.iter().nth(1);\n+    let x = v.iter().skip(1).next();\n-        assert_eq!(f(), 1);\n+        assert_eq!(f(), 2);\n";
        assert_eq!(weakened_tests(&d(ok, vec![fc("src/lib.rs", ChangeKind::Modified)])), None);
    }

    #[test]
    fn test_paths_by_language_and_what_is_not_one() {
        for p in [
            "tests/it.rs",
            "crates/a/tests/x.rs",
            "pkg/a_test.go",
            "test_a.py",
            "pkg/test_b.py",
            "pkg/b_test.py",
            "web/a.test.ts",
            "web/a.spec.jsx",
            "web/__tests__/a.js",
            "src/FooTest.java",
            "spec/a_spec.rb",
        ] {
            assert!(is_test_path(p), "{p} is a test file");
        }
        for p in ["src/lib.rs", "src/testing.rs", "README.md", "web/attest.ts", "pkg/latest.go", "contest/a.py"] {
            assert!(!is_test_path(p), "{p} is not a test file");
        }
        // Deleting an ordinary file is not deleting a test.
        assert_eq!(weakened_tests(&d("", vec![fc("src/old.rs", ChangeKind::Deleted)])), None);
    }

    #[test]
    fn markers_in_comments_of_every_style_are_not_counted() {
        // Each comment style once: a skip marker or a test definition commented out and added is
        // not a weakening (a removed test definition is: see `detects_weakened_tests`).
        for line in ["// xit('later', () => {", "/* it.skip('x') */", " * @Disabled", "# @pytest.mark.skip", "#"] {
            let patch = format!("diff --git a/a.test.ts b/a.test.ts\n@@ -1 +1,2 @@\n+{line}\n it('works', () => {{\n");
            assert_eq!(weakened_tests(&d(&patch, vec![])), None, "{line}");
        }
    }

    #[test]
    fn assertions_removed_next_to_test_code_in_a_source_file_are_a_weakening() {
        // Not a test path: the file holds tests because the change touches `#[cfg(test)]` code, or
        // because it touches a test definition (kept, so no definition is removed).
        let cfg = "diff --git a/src/lib.rs b/src/lib.rs\n@@ -1,3 +1,2 @@\n-#[cfg(test)]\n+#[cfg(test)]\n-        assert_eq!(f(), 1);\n";
        assert!(weakened_tests(&d(cfg, vec![])).unwrap().contains("removes 1 assertion(s) from tests in src/lib.rs"));
        let def = "diff --git a/src/lib.rs b/src/lib.rs\n@@ -1,3 +1,2 @@\n-    #[test]\n+    #[test]\n-        assert!(ok());\n";
        assert!(weakened_tests(&d(def, vec![])).unwrap().contains("removes 1 assertion(s)"));
        // The same removal in code with no test nearby is ordinary code.
        let plain = "diff --git a/src/lib.rs b/src/lib.rs\n@@ -1,2 +1,1 @@\n-        assert!(ok());\n";
        assert_eq!(weakened_tests(&d(plain, vec![])), None);
    }

    #[test]
    fn size_caps_and_stats() {
        let files =
            parse_stats("3\t1\tsrc/a.rs\n-\t-\timg.png\n0\t5\told.rs\n", "M\tsrc/a.rs\nA\timg.png\nD\told.rs\n");
        let kinds: Vec<_> = files.iter().map(|f| (f.path.as_str(), f.kind, f.insertions, f.deletions)).collect();
        assert_eq!(
            kinds,
            [
                ("src/a.rs", ChangeKind::Modified, 3, 1),
                // A binary file's numstat is `-`: no line counts.
                ("img.png", ChangeKind::Added, 0, 0),
                ("old.rs", ChangeKind::Deleted, 0, 5),
            ]
        );
        let w = d("", files);
        assert_eq!(w.diffstat(), Diffstat { files: 3, insertions: 3, deletions: 6 });
        assert!(too_large(&w, 2, 100).unwrap().contains("3 files"));
        assert!(too_large(&w, 10, 5).unwrap().contains("9 changed lines"));
        assert_eq!(too_large(&w, 10, 100), None);
        // The caps are inclusive: exactly 3 files and 9 changed lines are allowed.
        assert_eq!(too_large(&w, 3, 9), None);
    }
}
