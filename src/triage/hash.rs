//! The error hash: 16 lowercase hex digits (`[0-9a-f]{16}`, the first 8 bytes of a SHA-256), the
//! same for the same failure across reruns and commits, different for different failures. It is a
//! label value and drives dedup.
//!
//! What is hashed, by preference:
//! 1. the error diagnostics (warnings when there are no errors), each as tool, code, file and
//!    normalised message — without line or column, deduplicated and sorted (parallel test output
//!    reorders);
//! 2. else the log's failure lines (the highest-scored lines of the failing step), normalised;
//! 3. else (no log) the normalised workflow, job and failed-step names.
//!
//! Normalisation removes what changes between runs: timestamps, durations, UUIDs, hex ids (commit
//! SHAs, container ids), temporary and runner workspace paths, then every remaining digit run becomes
//! `#`, and whitespace is collapsed.

use std::sync::LazyLock;

use regex::Regex;
use sha2::{Digest, Sha256};

use super::extract::Log;
use super::parsers::{Diagnostic, Parsed, Severity};

/// What the hash is computed from.
pub struct HashInput<'a> {
    /// What the parsers found.
    pub parsed: &'a Parsed,
    /// The parsed log.
    pub log: &'a Log<'a>,
    /// Index of the failing step in `log.steps`.
    pub focus: Option<usize>,
    /// The workflow's name.
    pub workflow_name: Option<&'a str>,
    /// The job's name.
    pub job_name: Option<&'a str>,
    /// The failed steps' names from the webhook.
    pub failed_steps: &'a [String],
}

/// At most this many signatures or lines go into the hash.
const MAX_PARTS: usize = 64;
/// At most this many diagnostics (the first in log order) are considered.
const MAX_DIAGNOSTICS: usize = 128;

static VOLATILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?:\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?|\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b)",
        r"|(?:\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)",
        r"|(?:(?:/private)?/var/folders/\S*|/tmp/\S*|/home/runner/work/_temp/\S*|[A-Za-z]:\\Users\\[^\\\s]+\\AppData\\Local\\Temp\\\S*|[A-Za-z]:\\a\\_temp\\\S*)",
        r"|(?:/home/runner/work/[^/\s]+/[^/\s]+/|/github/workspace/|/__w/[^/\s]+/[^/\s]+/|[A-Za-z]:\\a\\[^\\\s]+\\[^\\\s]+\\)",
        r"|(?:\b\d+(?:\.\d+)?\s?(?:ns|µs|us|ms|s|sec|secs|seconds|m|min|mins|minutes|h)\b)",
        r"|(?:\b(?:0x)?[0-9a-fA-F]{7,}\b)",
        r"|(?:\d+)",
    ))
    .expect("static regex")
});

/// Normalise one message or line for hashing (see the module docs).
pub fn normalise(s: &str) -> String {
    let volatile_path = |s: &str| {
        ["/tmp/", "/var/folders/", "/home/runner/", "/github/workspace/", "/__w/"].iter().any(|p| s.contains(p))
    };
    if !s.bytes().any(|c| c.is_ascii_digit() || c == b'\\') && !volatile_path(s) {
        return super::parsers::collapse_ws(s);
    }
    // Spans come from a DFA search (no captures); the kind of each span is read off its text.
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for m in VOLATILE.find_iter(s) {
        out.push_str(&s[last..m.start()]);
        last = m.end();
        let t = m.as_str();
        let b = t.as_bytes();
        let hex = t.strip_prefix("0x").unwrap_or(t);
        if b[0] == b'/' || t.contains('\\') {
            let temp = t.starts_with("/tmp/")
                || t.contains("/var/folders/")
                || t.starts_with("/home/runner/work/_temp/")
                || t.contains("\\AppData\\Local\\Temp\\")
                || t.contains("\\a\\_temp\\");
            out.push_str(if temp { "<tmp>" } else { "" });
        } else if t.len() == 36 && t.bytes().filter(|&c| c == b'-').count() == 4 {
            out.push_str("<uuid>");
        } else if t.contains(':') {
            out.push_str("<ts>");
        } else if hex.len() >= 7 && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            // Only hex strings with a digit are ids; words like `accepted` stay.
            if hex.bytes().any(|c| c.is_ascii_digit()) { out.push_str("<hex>") } else { out.push_str(t) }
        } else if t.bytes().all(|c| c.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str("<dur>");
        }
    }
    out.push_str(&s[last..]);
    super::parsers::collapse_ws(&out)
}

fn normalise_path(p: &str) -> String {
    let p = p.replace('\\', "/");
    let n = normalise(&p);
    n.trim_start_matches("./").to_string()
}

/// `tool|code|normalised file|normalised message`. `paths` remembers the normalised files (a log
/// names the same few files in many diagnostics).
fn signature<'d>(d: &'d Diagnostic, paths: &mut std::collections::HashMap<&'d str, String>) -> String {
    let file: &str = match d.file.as_deref() {
        Some(f) => paths.entry(f).or_insert_with(|| normalise_path(f)),
        None => "",
    };
    let code = d.code.as_deref().unwrap_or_default();
    let message = normalise(&d.message);
    let tool = d.tool.as_str();
    let mut s = String::with_capacity(tool.len() + code.len() + file.len() + message.len() + 3);
    for (i, part) in [tool, code, file, &message].into_iter().enumerate() {
        if i > 0 {
            s.push('|');
        }
        s.push_str(part);
    }
    s
}

fn finish(kind: &str, parts: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for p in parts {
        h.update([0]);
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// Compute the error hash. Always 16 lowercase hex digits.
pub fn error_hash(input: &HashInput<'_>) -> String {
    let diags = &input.parsed.diagnostics;
    for sev in [Severity::Error, Severity::Warning] {
        let mut paths = std::collections::HashMap::new();
        let mut sigs: Vec<String> = diags
            .iter()
            .filter(|d| d.severity == sev)
            .take(MAX_DIAGNOSTICS)
            .map(|d| signature(d, &mut paths))
            .collect();
        if !sigs.is_empty() {
            sigs.sort();
            sigs.dedup();
            sigs.truncate(MAX_PARTS);
            return finish("diagnostics-v1", &sigs);
        }
    }
    let log = input.log;
    let range = match input.focus {
        Some(i) => log.steps[i].lines.clone(),
        None => 0..log.lines.len(),
    };
    let scores = &input.parsed.line_scores;
    // The last failure-looking lines are the most specific.
    let mut picked: Vec<usize> =
        range.clone().rev().filter(|&i| scores.get(i).copied().unwrap_or(0) >= 4).take(MAX_PARTS * 2).collect();
    picked.reverse();
    let mut seen = std::collections::HashSet::new();
    let mut lines: Vec<String> = Vec::new();
    for i in picked {
        let n = normalise(&log.lines[i].text);
        if !n.is_empty() && seen.insert(n.clone()) {
            lines.push(n);
        }
    }
    if lines.is_empty() {
        // No failure-looking line: the step's (or log's) last non-empty lines.
        let mut tail: Vec<String> =
            range.rev().map(|i| normalise(&log.lines[i].text)).filter(|n| !n.is_empty()).take(20).collect();
        tail.reverse();
        lines = tail;
    }
    if !lines.is_empty() {
        // The last lines are the most specific; keep those when there are many.
        let skip = lines.len().saturating_sub(MAX_PARTS);
        return finish("lines-v1", &lines[skip..]);
    }
    let mut names: Vec<String> =
        vec![input.workflow_name.map(name_norm).unwrap_or_default(), input.job_name.map(name_norm).unwrap_or_default()];
    let mut steps: Vec<String> = input.failed_steps.iter().map(|s| name_norm(s)).filter(|s| !s.is_empty()).collect();
    steps.sort();
    steps.dedup();
    names.extend(steps);
    finish("names-v1", &names)
}

/// Names: lowercase, whitespace collapsed (matrix values are kept: `test (ubuntu, 1.80)` differs
/// from `test (macos, 1.80)`).
fn name_norm(s: &str) -> String {
    super::parsers::collapse_ws(&s.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_strips_volatile_parts() {
        assert_eq!(
            normalise(
                "2024-01-01T10:00:00.1234567Z /home/runner/work/repo/repo/src/a.rs took 12.5s in /tmp/abc123/x id 4e8932e579d2"
            ),
            "<ts> src/a.rs took <dur> in <tmp> id <hex>"
        );
        assert_eq!(
            normalise("expected 4 but found 2, run 5f0c6d8e-1d2b-4c7e-9f1a-2b3c4d5e6f70"),
            "expected # but found #, run <uuid>"
        );
        assert_eq!(normalise("accepted   feedface"), "accepted feedface");
    }
}
