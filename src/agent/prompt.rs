//! The prompt the agent gives a model (or an external agent): a minijinja template per profile
//! (`config/prompts/<profile>.md.j2`, embedded; `llm.promptTemplate` names a file that replaces it),
//! filled with the masked excerpt, the files the diagnostics point to and the validation commands.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::context::Masker;

/// The shared answer format, included by every template as `{% include "format" %}`.
pub const FORMAT_TEMPLATE: &str = include_str!("../../config/prompts/_format.md.j2");
const RUST: &str = include_str!("../../config/prompts/rust.md.j2");
const FRONTEND: &str = include_str!("../../config/prompts/frontend.md.j2");
const INFRASTRUCTURE: &str = include_str!("../../config/prompts/infrastructure.md.j2");
const GENERAL: &str = include_str!("../../config/prompts/general.md.j2");

/// The system prompt of the built-in agent.
pub const SYSTEM: &str = "You are ci-healer, an automated repair agent for failing CI jobs. You change source code only \
through the tools or the answer format you are given. You fix causes, never symptoms: you never delete, skip or weaken tests, \
never touch CI workflows, lock files or security code, and you say so when you cannot find a safe fix.";

/// Most files quoted in a prompt.
pub const MAX_FILES: usize = 8;
/// Most bytes of one quoted file (32 KiB); larger files (and binary ones) are left out.
pub const MAX_FILE_BYTES: usize = 32 * 1024;
/// Most bytes quoted from all files together (96 KiB).
pub const MAX_TOTAL_FILE_BYTES: usize = 96 * 1024;

/// The built-in template of a profile (`rust`, `frontend`, `infrastructure`; anything else: `general`).
pub fn builtin_template(profile: &str) -> &'static str {
    match profile {
        "rust" => RUST,
        "frontend" => FRONTEND,
        "infrastructure" => INFRASTRUCTURE,
        _ => GENERAL,
    }
}

/// A quoted file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QuotedFile {
    /// The path, relative to the repository root.
    pub path: String,
    /// The Markdown code-fence language (`rust`, `ts` …; empty when unknown).
    pub lang: String,
    /// The file's text (masked, capped).
    pub content: String,
}

/// Everything a template can use.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PromptVars {
    /// The repository, `owner/name`.
    pub repository: String,
    /// The branch the failing commit was built on.
    pub branch: String,
    /// The failing commit.
    pub head_sha: String,
    /// The agent profile (`rust`, `frontend` …).
    pub profile: String,
    /// The triage class (`rust_clippy`, `frontend_types` …).
    pub failure_class: String,
    /// The failing CI step's name, when known.
    pub failing_step: Option<String>,
    /// A person's hint from a `retry` (the context's `hint.txt`), masked.
    pub hint: Option<String>,
    /// The failing lines of the log (masked).
    pub excerpt: String,
    /// Files the excerpt points at, quoted.
    pub files: Vec<QuotedFile>,
    /// Tracked paths of the repository (capped).
    pub tree: Vec<String>,
    /// The commands validation runs.
    pub validation_commands: Vec<String>,
    /// True for an external agent: it edits the workspace itself instead of answering with a change.
    pub external: bool,
    /// True when the model works through tools (see [`super::tools`]) instead of answering with a diff.
    pub tools: bool,
    /// The repository's own instructions for agents (see [`super::instructions`]).
    pub instructions: Vec<QuotedFile>,
    /// `agentHints` from the repository's `.github/ci-healer.yml`.
    pub agent_hints: Option<String>,
    /// Validated fixes of the same failure class in this repository (see [`super::memory`]).
    pub past_fixes: Vec<PastFixExample>,
}

/// A past fix quoted in the prompt: the run that validated it, its diagnosis and its patch (masked).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PastFixExample {
    /// The HealingRun that validated the fix.
    pub source_run: String,
    /// Its diagnosis, one paragraph.
    pub summary: String,
    /// The patch, a unified diff (masked).
    pub patch: String,
}

/// How the model (or agent) is asked to make its change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Through tool calls (read, search, edit, run validation, finish).
    Tools,
    /// In the answer: one ```diff block or `<file>` blocks.
    Diff,
    /// An external agent edits the workspace itself.
    External,
}

/// Why a prompt could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The profile's `promptTemplate` file cannot be read.
    #[error("cannot read prompt template {path}: {source}")]
    Read {
        /// The template file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The template does not parse.
    #[error("prompt template is invalid: {0:#}")]
    Template(#[from] minijinja::Error),
    /// The template parses but does not render with the prompt's variables.
    #[error("prompt template does not render: {0:#}")]
    Render(minijinja::Error),
}

/// Render `template` (or the profile's built-in one) with `vars`; the result is masked again.
/// Errors: the template file cannot be read or does not render ([`PromptError`]).
pub fn render(
    profile: &str,
    template_file: Option<&Path>,
    vars: &PromptVars,
    masker: &Masker,
) -> Result<String, PromptError> {
    let source = match template_file {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|source| PromptError::Read { path: p.display().to_string(), source })?
        }
        None => builtin_template(profile).to_string(),
    };
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_template_owned("format", FORMAT_TEMPLATE.to_string())?;
    env.add_template_owned("prompt", source)?;
    let out = env.get_template("prompt")?.render(minijinja::value::Serde(vars)).map_err(PromptError::Render)?;
    Ok(masker.mask(&out))
}

static PATH_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s'\x22(\[<:=])((?:[A-Za-z]:)?[A-Za-z0-9_.@/\\-]*[A-Za-z0-9_-]\.(?:rs|ts|tsx|js|jsx|mjs|cjs|vue|svelte|py|go|java|kt|rb|c|h|cc|cpp|hpp|cs|ya?ml|json|toml|tf|sh|css|scss|html|md|proto))(?::(\d+))?")
        .expect("path regex")
});

/// Files of the workspace the excerpt points at (in order of first mention, deduplicated), read and
/// masked, within [`MAX_FILES`], [`MAX_FILE_BYTES`] and [`MAX_TOTAL_FILE_BYTES`]. Absolute CI paths
/// (`/home/runner/work/repo/repo/src/x.rs`) are matched by their longest suffix that exists here.
pub fn files_from_excerpt(excerpt: &str, ws: &Path, masker: &Masker) -> Vec<QuotedFile> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut total = 0;
    let mut out = Vec::new();
    for cap in PATH_RE.captures_iter(excerpt) {
        if out.len() >= MAX_FILES {
            break;
        }
        let raw = cap[1].replace('\\', "/");
        let Some(rel) = resolve(&raw, ws) else {
            continue;
        };
        if seen.contains(&rel) {
            continue;
        }
        seen.push(rel.clone());
        let Ok(bytes) = std::fs::read(ws.join(&rel)) else {
            continue;
        };
        if bytes.len() > MAX_FILE_BYTES || total + bytes.len() > MAX_TOTAL_FILE_BYTES || bytes.contains(&0) {
            continue;
        }
        total += bytes.len();
        let path = rel.to_string_lossy().to_string();
        let lang = rel.extension().and_then(|e| e.to_str()).unwrap_or("").to_string();
        out.push(QuotedFile { path, lang, content: masker.mask(&String::from_utf8_lossy(&bytes)) });
    }
    out
}

fn resolve(raw: &str, ws: &Path) -> Option<PathBuf> {
    let parts: Vec<&str> = raw.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        return None;
    }
    (0..parts.len()).map(|i| parts[i..].join("/")).map(PathBuf::from).find(|rel| {
        let full = ws.join(rel);
        full.is_file()
            && !rel.starts_with(".git")
            && full.canonicalize().ok().zip(ws.canonicalize().ok()).is_some_and(|(f, w)| f.starts_with(w))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_and_renders_every_builtin_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "pub fn f() {}\n").unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\n").unwrap();
        let excerpt = "error[E0308]: mismatched types\n --> src/lib.rs:3:5\n  at /home/runner/work/r/r/src/lib.rs:3\n see ../etc/passwd.rs and Cargo.toml";
        let m = Masker::default();
        let files = files_from_excerpt(excerpt, dir.path(), &m);
        assert_eq!(files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["src/lib.rs", "Cargo.toml"]);
        let vars = PromptVars {
            repository: "o/r".into(),
            excerpt: excerpt.into(),
            files,
            validation_commands: vec!["cargo test".into()],
            failure_class: "rust_compile".into(),
            ..Default::default()
        };
        for p in ["rust", "frontend", "infrastructure", "general"] {
            let out = render(p, None, &vars, &m).unwrap();
            assert!(
                out.contains("pub fn f() {}") && out.contains("`cargo test`") && out.contains("```diff"),
                "{p}: {out}"
            );
            assert!(out.contains("Never delete, skip"), "{p}");
        }
    }

    #[test]
    fn a_reviewers_hint_reaches_every_profiles_prompt() {
        let m = Masker::default();
        let vars = PromptVars { hint: Some("keep the public API unchanged".into()), ..Default::default() };
        for p in ["rust", "frontend", "infrastructure", "general"] {
            let out = render(p, None, &vars, &m).unwrap();
            assert!(out.contains("A reviewer's hint") && out.contains("keep the public API unchanged"), "{p}");
        }
        let out = render("rust", None, &PromptVars::default(), &m).unwrap();
        assert!(!out.contains("A reviewer's hint"));
    }

    #[test]
    fn past_fixes_are_quoted_masked_for_every_profile_and_absent_without_memory() {
        use crate::contract::memory::{MemoryContext, PastFix};
        let fix = |run: &str, patch: &str| PastFix {
            entry: format!("healer-fix-{run}"),
            source_run: run.into(),
            failure_class: "rust_build".into(),
            error_hash: "h".into(),
            summary: format!("cause found in {run}"),
            patch: patch.into(),
        };
        let memory = MemoryContext {
            replay: Some(fix("same-error", "-a\n+b\n")),
            examples: vec![fix("older", "+token ghp_0123456789abcdefghijABCDEFGHIJ0123\n")],
        };
        let m = Masker::default();
        let vars = PromptVars {
            past_fixes: super::super::memory::examples(&memory, &m),
            failure_class: "rust_build".into(),
            ..Default::default()
        };
        for p in ["rust", "frontend", "infrastructure", "general"] {
            let out = render(p, None, &vars, &m).unwrap();
            assert!(out.contains("## Past fixes in this repository"), "{p}: {out}");
            let first = out.find("From run `same-error`").expect("the same error's fix");
            let second = out.find("From run `older`: cause found in older").expect("the class example");
            assert!(first < second, "{p}");
            assert!(out.contains("did not pass here") && out.contains("+b"), "{p}");
            assert!(!out.contains("ghp_0123") && out.contains(super::super::context::MASK), "{p}");
        }
        let none = render("rust", None, &PromptVars::default(), &m).unwrap();
        assert!(!none.contains("Past fixes"), "{none}");
    }
}
