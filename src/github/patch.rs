//! From the kept patch (`git diff --binary` against `headSha`) to the files of the fix commit, with
//! the diffy crate: which files the patch needs at `headSha`, and their new content.
//!
//! The controller applies the patch itself, to the files it reads from GitHub at `headSha`, so the
//! write token never reaches the attempt pod that made the patch. Pure: no I/O.

use std::collections::BTreeMap;

use diffy::patch_set::{FileMode, FileOperation, ParseOptions, PatchKind, PatchSet};

/// What happens to one path in the fix commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The path relative to the repository root.
    pub path: String,
    /// The new content; `None` deletes the file.
    pub content: Option<Vec<u8>>,
    /// The git file mode (`100644`, `100755`, `120000`).
    pub mode: &'static str,
}

/// Why a patch cannot become a commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// Not a git diff diffy can read.
    #[error("the patch cannot be parsed: {0}")]
    Parse(String),
    /// A hunk does not apply to the file at `headSha`.
    #[error("the patch does not apply to {path} at the failing commit: {message}")]
    DoesNotApply {
        /// The file.
        path: String,
        /// diffy's message.
        message: String,
    },
    /// The patch changes a file the caller did not provide.
    #[error("the patch changes {0}, which does not exist at the failing commit")]
    MissingFile(String),
    /// A submodule change or a copy, which a fix commit does not make.
    #[error("the patch {0}, which ci-healer does not commit")]
    Unsupported(String),
}

/// One file operation of the patch, before the originals are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOp {
    /// The path before the change (`None` for a new file).
    pub old_path: Option<String>,
    /// The path after the change (`None` for a deleted file).
    pub new_path: Option<String>,
}

fn mode_str(m: Option<&FileMode>) -> Option<&'static str> {
    m.map(|m| match m {
        FileMode::Regular => "100644",
        FileMode::Executable => "100755",
        FileMode::Symlink => "120000",
        FileMode::Gitlink => "160000",
    })
}

fn strip(path: &[u8]) -> String {
    let p = String::from_utf8_lossy(path).into_owned();
    // `git diff` prefixes a/ and b/.
    p.strip_prefix("a/").or_else(|| p.strip_prefix("b/")).map(str::to_string).unwrap_or(p)
}

fn parse(patch: &[u8]) -> Result<Vec<diffy::patch_set::FilePatch<'_, [u8]>>, PatchError> {
    PatchSet::parse_bytes(patch, ParseOptions::gitdiff())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PatchError::Parse(e.to_string()))
}

/// The files the patch reads and writes, in patch order. Errors: an unreadable patch.
pub fn operations(patch: &[u8]) -> Result<Vec<FileOp>, PatchError> {
    Ok(parse(patch)?
        .iter()
        .map(|fp| match fp.operation() {
            FileOperation::Create(p) => FileOp { old_path: None, new_path: Some(strip(p)) },
            FileOperation::Delete(p) => FileOp { old_path: Some(strip(p)), new_path: None },
            FileOperation::Modify { original, modified } => {
                FileOp { old_path: Some(strip(original)), new_path: Some(strip(modified)) }
            }
            FileOperation::Rename { from, to } | FileOperation::Copy { from, to } => {
                FileOp { old_path: Some(strip(from)), new_path: Some(strip(to)) }
            }
        })
        .collect())
}

/// Apply `patch` to `originals` (path → content at `headSha`, with its git mode) and return the
/// changes of the fix commit, one per path, deletions included.
/// Errors: see [`PatchError`].
pub fn apply(
    patch: &[u8],
    originals: &BTreeMap<String, (Vec<u8>, &'static str)>,
) -> Result<Vec<FileChange>, PatchError> {
    let mut out: Vec<FileChange> = Vec::new();
    for fp in parse(patch)? {
        let new_mode = mode_str(fp.new_mode());
        let (old, new) = match fp.operation() {
            FileOperation::Create(p) => (None, Some(strip(p))),
            FileOperation::Delete(p) => (Some(strip(p)), None),
            FileOperation::Modify { original, modified } => (Some(strip(original)), Some(strip(modified))),
            FileOperation::Rename { from, to } => (Some(strip(from)), Some(strip(to))),
            FileOperation::Copy { .. } => return Err(PatchError::Unsupported("copies a file".into())),
        };
        if new_mode == Some("160000") || mode_str(fp.old_mode()) == Some("160000") {
            return Err(PatchError::Unsupported("changes a submodule".into()));
        }
        let base: (Vec<u8>, &'static str) = match &old {
            None => (Vec::new(), "100644"),
            Some(p) => originals.get(p).cloned().ok_or_else(|| PatchError::MissingFile(p.clone()))?,
        };
        let Some(new_path) = new else {
            out.push(FileChange { path: old.expect("a delete has a path"), content: None, mode: base.1 });
            continue;
        };
        let content = match fp.patch() {
            PatchKind::Text(p) => diffy::apply_bytes(&base.0, p)
                .map_err(|e| PatchError::DoesNotApply { path: new_path.clone(), message: e.to_string() })?,
            PatchKind::Binary(b) => b
                .apply(&base.0)
                .map_err(|e| PatchError::DoesNotApply { path: new_path.clone(), message: e.to_string() })?,
        };
        if let Some(o) = old.as_ref().filter(|o| **o != new_path) {
            out.push(FileChange { path: o.clone(), content: None, mode: base.1 });
        }
        out.push(FileChange { path: new_path, content: Some(content), mode: new_mode.unwrap_or(base.1) });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `git diff --binary` of a modify, an add, a delete and a mode change, applied with
    /// diffy, must give what git itself gives.
    #[test]
    fn applies_a_real_git_diff_like_git_does() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let git = |args: &[&str]| {
            let o = std::process::Command::new("git")
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .current_dir(d)
                .output()
                .unwrap();
            assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
            o.stdout
        };
        git(&["init", "-q", "-b", "main"]);
        std::fs::create_dir(d.join("src")).unwrap();
        std::fs::write(d.join("src/lib.rs"), "fn a() {}\nfn b() {}\nfn c() {}\n").unwrap();
        std::fs::write(d.join("gone.txt"), "bye\n").unwrap();
        std::fs::write(d.join("run.sh"), "echo hi\n").unwrap();
        std::fs::write(d.join("logo.bin"), [0u8, 1, 2, 255, 0, 10]).unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "base"]);
        let base = String::from_utf8(git(&["rev-parse", "HEAD"])).unwrap();
        std::fs::write(d.join("src/lib.rs"), "fn a() {}\nfn b() { 1 }\nfn c() {}\n").unwrap();
        std::fs::remove_file(d.join("gone.txt")).unwrap();
        std::fs::write(d.join("src/new.rs"), "pub const X: u8 = 1;\n").unwrap();
        std::fs::write(d.join("logo.bin"), [0u8, 1, 2, 254, 0, 10, 7]).unwrap();
        std::process::Command::new("chmod").args(["+x", "run.sh"]).current_dir(d).status().unwrap();
        git(&["add", "--all", "--intent-to-add"]);
        let patch = git(&["diff", "--binary", "--no-color", "--no-ext-diff", "--no-renames", base.trim()]);

        let ops = operations(&patch).unwrap();
        let olds: Vec<_> = ops.iter().filter_map(|o| o.old_path.clone()).collect();
        assert!(olds.contains(&"src/lib.rs".to_string()) && olds.contains(&"gone.txt".to_string()));
        let mut originals = BTreeMap::new();
        originals.insert("src/lib.rs".to_string(), (b"fn a() {}\nfn b() {}\nfn c() {}\n".to_vec(), "100644"));
        originals.insert("gone.txt".to_string(), (b"bye\n".to_vec(), "100644"));
        originals.insert("run.sh".to_string(), (b"echo hi\n".to_vec(), "100644"));
        originals.insert("logo.bin".to_string(), (vec![0u8, 1, 2, 255, 0, 10], "100644"));
        let changes = apply(&patch, &originals).unwrap();
        let by: BTreeMap<_, _> = changes.iter().map(|c| (c.path.as_str(), c)).collect();
        assert_eq!(by["src/lib.rs"].content.as_deref(), Some(&b"fn a() {}\nfn b() { 1 }\nfn c() {}\n"[..]));
        assert_eq!(by["gone.txt"].content, None);
        assert_eq!(by["src/new.rs"].content.as_deref(), Some(&b"pub const X: u8 = 1;\n"[..]));
        assert_eq!(by["src/new.rs"].mode, "100644");
        assert_eq!(by["run.sh"].mode, "100755");
        assert_eq!(by["logo.bin"].content.as_deref(), Some(&[0u8, 1, 2, 254, 0, 10, 7][..]));
    }

    #[test]
    fn refuses_what_does_not_apply() {
        let patch = b"diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n";
        let mut originals = BTreeMap::new();
        assert!(matches!(apply(patch, &originals), Err(PatchError::MissingFile(p)) if p == "x"));
        originals.insert("x".to_string(), (b"something else\n".to_vec(), "100644"));
        assert!(matches!(apply(patch, &originals), Err(PatchError::DoesNotApply { .. })));
        assert!(matches!(apply(b"not a patch", &originals), Err(PatchError::Parse(_))));
    }
}
