//! The JavaScript/TypeScript ecosystem: eslint, stylelint, remark (stylish tables), eslint compact,
//! prettier `--check`, jest, vitest, npm, pnpm and yarn. tsc and eslint's unix format are in
//! [`super::location`].
//!
//! ```text
//! /path/to/file.js                                   (stylish: a path header, then a table)
//!   2:10  error  'x' is defined but never used  no-unused-vars
//! /path/to/file.js: line 2, col 10, Error - 'x' is defined but never used. (no-unused-vars)
//! [warn] src/app.ts                                  (prettier --check)
//! [warn] Code style issues found in 2 files. Run Prettier with --write to fix.
//! FAIL src/sum.test.ts                               (jest)
//!   ● sum › adds numbers
//!  FAIL  src/sum.test.ts > sum > adds numbers        (vitest)
//! npm ERR! code ERESOLVE / npm error code ERESOLVE
//!  ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with "frozen-lockfile" …
//! error An unexpected error occurred: "…".            (yarn 1)
//! ➤ YN0028: The lockfile would have been modified by this install, which is explicitly forbidden.
//! ```

use std::sync::LazyLock;

use regex::Regex;

use super::{Diagnostic, Severity, Sink, State, Tool, collapse_ws};
use crate::triage::classify::{FailureClass, is_network_code};
use crate::triage::extract::Log;

static STYLISH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s+(\d+):(\d+)\s+(error|warning|✖|⚠|×|‼)\s+(.+?)\s*$").expect("static regex"));
static COMPACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+?): line (\d+), col (\d+), (Error|Warning) - (.+?)(?: \(([^()\s]+)\))?$").expect("static regex")
});
static JEST_FAIL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*FAIL\s+(\S+)(?:\s+>\s+(.+))?").expect("static regex"));
static NPM_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^npm (?:ERR!|error) code ([A-Z][A-Z0-9_]+)").expect("static regex"));
static PNPM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(ERR_PNPM_[A-Z0-9_]+)\s+(.*)$").expect("static regex"));
static YARN_BERRY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^➤ (YN\d{4}): (.*)$").expect("static regex"));

/// npm/pnpm/yarn codes that mean dependency resolution or lockfile trouble.
fn dependency_code(code: &str) -> bool {
    const CODES: &[&str] = &[
        "ERESOLVE",
        "E404",
        "ETARGET",
        "EINTEGRITY",
        "ENOVERSIONS",
        "ENOTARGET",
        "EBADENGINE",
        "ENOTSUP",
        "EUSAGE",
        "E401",
        "ERR_PNPM_OUTDATED_LOCKFILE",
        "ERR_PNPM_FETCH_404",
        "ERR_PNPM_NO_MATCHING_VERSION",
        "ERR_PNPM_LOCKFILE_CONFIG_MISMATCH",
        "ERR_PNPM_PEER_DEP_ISSUES",
        "ERR_PNPM_UNSUPPORTED_ENGINE",
        "ERR_PNPM_FROZEN_LOCKFILE_WITH_OUTDATED_LOCKFILE",
        "YN0028",
        "YN0018",
        "YN0035",
        "YN0082",
        "YN0060",
    ];
    CODES.contains(&code)
}

/// Codes of a runner that ran out of room: a re-run on another runner may pass.
fn flake_code(code: &str) -> bool {
    matches!(code, "ENOSPC" | "ENOMEM")
}

fn ext_of(path: &str) -> &str {
    let base = path.rsplit(['/', '\\']).next().unwrap_or(path);
    base.rsplit_once('.').map(|(_, e)| e).unwrap_or("")
}

/// The tool of a stylish table, from the header file's extension.
fn stylish_tool(file: &str) -> Tool {
    match ext_of(file).to_ascii_lowercase().as_str() {
        "css" | "scss" | "sass" | "less" => Tool::Stylelint,
        "md" | "mdx" | "markdown" => Tool::NodeLint,
        "yml" | "yaml" => Tool::Yamllint,
        _ => Tool::Eslint,
    }
}

/// A bare path line (a stylish table header).
fn is_path_line(t: &str) -> bool {
    let t = t.trim_end();
    !t.is_empty()
        && t.len() < 512
        && !t.starts_with(char::is_whitespace)
        && !t.contains(char::is_whitespace)
        && (t.contains('.') || t.contains('/'))
        && !t.ends_with(':')
}

/// Parse line `i`; true when it was recognised.
pub(crate) fn parse_line(log: &Log<'_>, i: usize, state: &mut State, sink: &mut Sink<'_>) -> bool {
    let t: &str = &log.lines[i].text;
    let number = log.lines[i].number;
    let first = t.as_bytes().first().copied().unwrap_or(0);
    if (first == b' ' || first == b'\t')
        && t.trim_start().starts_with(|c: char| c.is_ascii_digit())
        && let Some(c) = STYLISH.captures(t)
    {
        // Find the header path above the table.
        let file = match &state.stylish {
            Some((last, file)) if *last + 1 == i => file.clone(),
            _ => {
                let header = log.lines[i.saturating_sub(64)..i].iter().rev().find(|l| is_path_line(&l.text));
                let Some(header) = header else { return false };
                header.text.trim().to_string()
            }
        };
        state.stylish = Some((i, file.clone()));
        let severity = match &c[3] {
            "error" | "✖" | "×" => Severity::Error,
            _ => Severity::Warning,
        };
        let rest = &c[4];
        let (msg, rule) = match rest.rfind("  ") {
            Some(p) if !rest[p..].trim().contains(' ') => (rest[..p].trim(), Some(rest[p..].trim())),
            _ => (rest, None),
        };
        let tool = stylish_tool(&file);
        let mut rule = rule.map(|r| r.trim_matches(|c| c == '(' || c == ')').to_string());
        if tool == Tool::NodeLint {
            // remark prints `rule-name remark-lint` after the message.
            rule = None;
        }
        let mut d =
            Diagnostic::new(tool, severity, collapse_ws(msg), number).at(file, c[1].parse().ok(), c[2].parse().ok());
        if let Some(r) = rule {
            d = d.code(r);
        }
        sink.push(d);
        return true;
    }
    if t.contains(": line ")
        && let Some(c) = COMPACT.captures(t)
    {
        let severity = if &c[4] == "Error" { Severity::Error } else { Severity::Warning };
        let mut d =
            Diagnostic::new(Tool::Eslint, severity, &c[5], number).at(&c[1], c[2].parse().ok(), c[3].parse().ok());
        if let Some(r) = c.get(6) {
            d = d.code(r.as_str());
        }
        sink.push(d);
        return true;
    }
    if let Some(rest) = t.strip_prefix("[warn] ").or_else(|| t.strip_prefix("[error] ")) {
        let rest = rest.trim();
        if rest.starts_with("Code style issues") || rest.contains("Forgot to run Prettier") {
            sink.signal(FailureClass::FrontendFormat, 3.0, i);
            return true;
        }
        if !rest.contains(' ') && rest.contains('.') {
            sink.push(
                Diagnostic::new(Tool::Prettier, Severity::Error, "file is not formatted (prettier --check)", number)
                    .at(rest, None, None),
            );
            return true;
        }
        if t.starts_with("[error] ") {
            // `[error] src/a.ts: SyntaxError: Unexpected token (3:5)`
            if let Some((file, msg)) = rest.split_once(": ")
                && !file.contains(' ')
                && file.contains('.')
            {
                sink.push(Diagnostic::new(Tool::Prettier, Severity::Error, msg, number).at(file, None, None));
                return true;
            }
        }
        return false;
    }
    let tt = t.trim_start();
    if tt.starts_with("FAIL ") || tt.starts_with("FAIL\t") {
        if let Some(c) = JEST_FAIL.captures(t) {
            let file = &c[1];
            let ext = ext_of(file);
            if matches!(ext, "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" | "mts" | "cts" | "vue" | "svelte") {
                let (tool, msg) = match c.get(2) {
                    Some(name) => (Tool::Vitest, format!("test failed: {}", name.as_str().trim())),
                    None => (Tool::Jest, "test suite failed".to_string()),
                };
                sink.push(Diagnostic::new(tool, Severity::Error, msg, number).at(file, None, None));
                return true;
            }
        }
        return false;
    }
    if let Some(name) = tt.strip_prefix("● ") {
        if name.contains(" › ") || name.starts_with("Test suite failed to run") {
            sink.push(Diagnostic::new(Tool::Jest, Severity::Error, format!("test failed: {}", name.trim()), number));
            return true;
        }
        return false;
    }
    if let Some(name) = tt.strip_prefix("× ").or_else(|| tt.strip_prefix("✗ ")) {
        sink.push(Diagnostic::new(Tool::Vitest, Severity::Error, format!("test failed: {}", name.trim()), number));
        return true;
    }
    if tt.starts_with("Tests:") && tt.contains(" failed") || tt.starts_with("Test Files ") && tt.contains(" failed") {
        sink.signal(FailureClass::FrontendTest, 2.0, i);
        return true;
    }
    if t.starts_with("npm ") {
        if let Some(c) = NPM_CODE.captures(t) {
            let code = &c[1];
            if code == "ELIFECYCLE" {
                return true;
            }
            // The message is on the following `npm ERR!` lines.
            let msg = log.lines[i + 1..]
                .iter()
                .take(6)
                .map(|l| l.text.trim_start_matches("npm ERR!").trim_start_matches("npm error").trim())
                .find(|m| !m.is_empty() && !m.starts_with("code "))
                .unwrap_or(code)
                .to_string();
            if crate::triage::classify::is_transient_network_code(code) {
                sink.signal(FailureClass::InfraFlake, 4.0, i);
            } else if is_network_code(code) {
                sink.signal(FailureClass::Network, super::network::WEIGHT, i);
            } else if dependency_code(code) {
                sink.signal(FailureClass::Dependency, 2.0, i);
            } else if flake_code(code) {
                sink.signal(FailureClass::InfraFlake, 4.0, i);
            }
            sink.push(Diagnostic::new(Tool::Npm, Severity::Error, msg, number).code(code));
            return true;
        }
        if t.starts_with("npm ERR! Missing script") || t.starts_with("npm error Missing script") {
            sink.push(Diagnostic::new(
                Tool::Npm,
                Severity::Error,
                t.split_once(' ').map(|x| x.1).unwrap_or(t).trim_start_matches("ERR! "),
                number,
            ));
            return true;
        }
        return false;
    }
    if t.contains("ERR_PNPM_")
        && let Some(c) = PNPM.captures(t)
    {
        let code = &c[1];
        if code == "ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL" || code == "ERR_PNPM_RECURSIVE_EXEC_FIRST_FAIL" {
            return true;
        }
        if crate::triage::classify::is_transient_network_code(code) {
            sink.signal(FailureClass::InfraFlake, 4.0, i);
        } else if is_network_code(code) {
            sink.signal(FailureClass::Network, super::network::WEIGHT, i);
        } else if dependency_code(code) {
            sink.signal(FailureClass::Dependency, 2.0, i);
        } else if flake_code(code) {
            sink.signal(FailureClass::InfraFlake, 4.0, i);
        }
        sink.push(Diagnostic::new(Tool::Pnpm, Severity::Error, &c[2], number).code(code));
        return true;
    }
    if let Some(rest) = t.strip_prefix("error ") {
        // yarn 1.
        if rest.starts_with("Command failed with exit code") {
            return true;
        }
        if rest.contains("lockfile")
            || rest.contains("Couldn't find")
            || rest.contains("package")
            || rest.contains("resolve")
        {
            sink.signal(FailureClass::Dependency, 1.5, i);
            sink.push(Diagnostic::new(Tool::Yarn, Severity::Error, rest, number));
            return true;
        }
        if rest.starts_with("An unexpected error occurred") {
            sink.push(Diagnostic::new(Tool::Yarn, Severity::Error, rest, number));
            return true;
        }
        return false;
    }
    if t.starts_with("➤ YN")
        && let Some(c) = YARN_BERRY.captures(t)
    {
        let code = &c[1];
        if dependency_code(code) || code == "YN0001" || code == "YN0009" {
            if dependency_code(code) {
                sink.signal(FailureClass::Dependency, 2.0, i);
            }
            sink.push(Diagnostic::new(Tool::Yarn, Severity::Error, &c[2], number).code(code));
            return true;
        }
    }
    false
}
