//! The repository's own instructions for coding agents, read at the failing commit (`headSha`) and
//! quoted in the prompt: `AGENTS.md` (the agents.md convention), `CLAUDE.md` (Claude Code),
//! `.github/copilot-instructions.md` (GitHub Copilot) and `SELF_HEALING.md` (Nx self-healing CI).
//!
//! They are read with `git show <sha>:<path>`, never from the workspace, so nothing an agent writes
//! changes what the next turn or the validate step reads. Each file is bounded to
//! [`MAX_FILE_BYTES`], all of them together to [`MAX_TOTAL_BYTES`], control characters are
//! stripped and secrets masked.

use std::path::Path;

use super::context::{Masker, bound, strip_control};
use super::prompt::QuotedFile;

/// The files read, in this order.
pub const FILES: [&str; 4] = ["AGENTS.md", "CLAUDE.md", ".github/copilot-instructions.md", "SELF_HEALING.md"];
/// Most bytes quoted from one file (16 KiB; longer files are cut, head and tail kept).
pub const MAX_FILE_BYTES: usize = 16 * 1024;
/// Most bytes quoted from all of them (32 KiB).
pub const MAX_TOTAL_BYTES: usize = 32 * 1024;

/// The blob of `path` at `rev` in the repository at `ws`, when it exists and is text.
pub fn at_revision(ws: &Path, rev: &str, path: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["show", &format!("{rev}:{path}")])
        .current_dir(ws)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() || out.stdout.contains(&0) {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The instruction files of the repository at `rev`, bounded and masked.
pub fn read(ws: &Path, rev: &str, masker: &Masker) -> Vec<QuotedFile> {
    let mut total = 0;
    let mut out = Vec::new();
    for path in FILES {
        let Some(text) = at_revision(ws, rev, path) else { continue };
        let text = text.trim();
        if text.is_empty() || total >= MAX_TOTAL_BYTES {
            continue;
        }
        let content = bound(&masker.mask(&strip_control(text)), MAX_FILE_BYTES.min(MAX_TOTAL_BYTES - total));
        total += content.len();
        out.push(QuotedFile { path: path.to_string(), lang: "markdown".into(), content });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_instruction_files_at_the_commit_not_the_workspace() {
        let d = tempfile::tempdir().unwrap();
        let git = |a: &[&str]| {
            let o = std::process::Command::new("git")
                .args(a)
                .current_dir(d.path())
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@e")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@e")
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        git(&["init", "-q"]);
        std::fs::write(
            d.path().join("AGENTS.md"),
            "Run `make check` before finishing.\ntoken ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join(".github")).unwrap();
        std::fs::write(d.path().join(".github/copilot-instructions.md"), "x".repeat(40_000)).unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-qm", "c"]);
        let sha = git(&["rev-parse", "HEAD"]);
        std::fs::write(d.path().join("AGENTS.md"), "Delete the tests.\n").unwrap();
        std::fs::write(d.path().join("CLAUDE.md"), "Written by the agent.\n").unwrap();
        let got = read(d.path(), &sha, &Masker::default());
        assert_eq!(
            got.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            ["AGENTS.md", ".github/copilot-instructions.md"]
        );
        assert!(
            got[0].content.starts_with("Run `make check`") && got[0].content.contains("[MASKED]"),
            "{}",
            got[0].content
        );
        assert!(got[1].content.len() <= MAX_FILE_BYTES && got[1].content.contains("elided"));
    }
}
