//! The `file:line[:col]` family, shared by many tools (the errorformat `%f:%l:%c: %m` family):
//!
//! ```text
//! src/main.rs:3:5: warning: unused import: `std::process`        (cargo --message-format=short)
//! tsc.ts(3,13): error TS7006: Parameter 'y' implicitly has an 'any' type.
//! src/a.ts:3:13 - error TS7006: …                               (tsc --pretty)
//! path/to/file1.ts[418, 38]: ' should be "                       (tslint)
//! test.yaml:4:13: "foo" is invalid as permission … [permissions] (actionlint)
//! file.yml:6:2: [warning] missing starting space in comment (comments)   (yamllint -f parsable)
//! main.yml:1: [E201] Trailing whitespace                         (ansible-lint)
//! .env:1 Leading space detected                                  (dotenv-linter)
//! ./num_guess.py:4:1: F401 'sys' imported but unused             (flake8)
//! fs/cs/backend/log.py:16: error: "LogRecord" has no attribute … (mypy)
//! ./commands.go:395:20: undefined: command.TfversionCommand     (go build / vet)
//! [ERROR] /src/A.java:[12,5] cannot find symbol                  (maven)
//! [java] /src/File.java:59: error: ';' expected                  (ant/javac)
//! Dockerfile:15 DL3008 warning: Pin versions in apt get install   (hadolint tty)
//! ```
//! The tool is inferred from the file's extension and the message's shape.

use std::sync::LazyLock;

use regex::Regex;

use super::{Diagnostic, Severity, Sink, Tool, collapse_ws};
use crate::triage::extract::Log;

static SEVERITY_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\[?(error|warning|warn|note|info|fatal|style|critical|low|medium|high)\]?(?:\[([A-Za-z0-9_:-]+)\]|\s+([A-Z]{1,4}\d{3,5}))?\s*:?\s+").expect("static regex")
});
static CODE_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[?([A-Z]{1,4}\d{2,5})(?:\[[a-z_]+\])?(?:,[^\]]*)?\]?:?\s+").expect("static regex"));
static TRAILING_RULE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s[\[(]([a-z@][a-z0-9_/@-]*[a-z0-9])[\])]$").expect("static regex"));

/// Whether `rest` may start a [`SEVERITY_PREFIX`] match: `[`, or a letter that starts one of its
/// words in any case; non-ASCII too, since Unicode case folding matches `ſ` (U+017F) for `s`.
/// A cheap test that skips the capture search on most lines; never false when the regex matches.
fn may_start_severity(rest: &str) -> bool {
    rest.as_bytes().first().is_some_and(|&c| {
        !c.is_ascii()
            || matches!(
                c.to_ascii_lowercase(),
                b'[' | b'e' | b'w' | b'n' | b'i' | b'f' | b's' | b'c' | b'l' | b'm' | b'h'
            )
    })
}

/// actionlint's rule names (`[rule]` at the end of a message).
const ACTIONLINT_RULES: &[&str] = &[
    "syntax-check",
    "expression",
    "permissions",
    "events",
    "job-needs",
    "matrix",
    "runner-label",
    "credentials",
    "deprecated-commands",
    "action",
    "shellcheck",
    "pyflakes",
    "id",
    "glob",
    "workflow-call",
    "env-var",
    "if-cond",
    "shell-name",
    "secrets",
    "inputs",
    "yaml-syntax",
    "timeout-minutes",
    "cron",
    "jobs",
    "name",
    "shell",
];

fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Whether `file` looks like a file path, not a timestamp, address or word.
fn plausible_file(file: &str) -> bool {
    let base = basename(file);
    if matches!(base, "Dockerfile" | "Containerfile" | "Makefile" | "Jenkinsfile" | "Gemfile" | "Rakefile")
        || base.starts_with("Dockerfile.")
    {
        return true;
    }
    if file.contains("://") || file.len() > 400 {
        return false;
    }
    match base.rsplit_once('.') {
        Some(("", ext)) => !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        Some((_, ext)) => ext.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) && ext.len() <= 12,
        None => false,
    }
}

/// A split `file:line[:col]: rest` line.
struct Loc<'t> {
    file: &'t str,
    line: Option<u32>,
    column: Option<u32>,
    /// `file[l, c]` (tslint).
    bracket: bool,
    rest: &'t str,
}

fn digits(b: &[u8], i: usize) -> (Option<u32>, usize) {
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        j += 1;
    }
    if j == i || j - i > 9 {
        return (None, i);
    }
    (std::str::from_utf8(&b[i..j]).ok().and_then(|x| x.parse().ok()), j)
}

/// Split `file:l[:c]`, `file(l[,c])`, `file[l, c]` or `file:[l,c]` off the start of `t` (after
/// blanks and an optional `[TAG] ` prefix), followed by `:`, ` -` or a blank and a non-empty rest.
/// Hand-written: a regex with captures costs too much on long lines.
fn split_location(t: &str) -> Option<Loc<'_>> {
    let mut s = t.trim_start();
    if s.starts_with('[') {
        let p = s.find(']')?;
        if p > 16 {
            return None;
        }
        s = s[p + 1..].trim_start();
    }
    let b = s.as_bytes();
    for i in 1..b.len() {
        let c = b[i];
        if c.is_ascii_whitespace()
            || matches!(c, b')' | b']' | b'<' | b'>' | b'"' | b'\'' | b'|' | b',' | b'*' | b'?' | b';' | b'=')
        {
            return None;
        }
        if !matches!(c, b':' | b'(' | b'[') {
            continue;
        }
        let file = &s[..i];
        let (line, column, bracket, mut j) = match c {
            b':' if b.get(i + 1) == Some(&b'[') => {
                let (l, j) = digits(b, i + 2);
                if l.is_none() || b.get(j) != Some(&b',') {
                    continue;
                }
                let (col, j) = digits(b, j + 1);
                if b.get(j) != Some(&b']') {
                    continue;
                }
                (l, col, false, j + 1)
            }
            b':' => {
                let (l, mut j) = digits(b, i + 1);
                if l.is_none() {
                    if i == 1 && b.get(2).is_some_and(|x| *x == b'\\' || *x == b'/') {
                        continue; // `C:\path` drive letter
                    }
                    return None;
                }
                let mut col = None;
                if b.get(j) == Some(&b':') {
                    let (cl, k) = digits(b, j + 1);
                    if cl.is_some() {
                        col = cl;
                        j = k;
                    }
                }
                (l, col, false, j)
            }
            _ => {
                let close = if c == b'(' { b')' } else { b']' };
                let (l, mut j) = digits(b, i + 1);
                l?;
                let mut col = None;
                if b.get(j) == Some(&b',') {
                    j += 1;
                    while b.get(j) == Some(&b' ') {
                        j += 1;
                    }
                    let (cl, k) = digits(b, j);
                    col = cl;
                    j = k;
                }
                if b.get(j) != Some(&close) {
                    return None;
                }
                (l, col, c == b'[', j + 1)
            }
        };
        // Separator: `:`, ` - ` or blanks.
        match b.get(j) {
            Some(b':') => j += 1,
            Some(b' ') | Some(b'\t') => {}
            _ => return None,
        }
        while b.get(j).is_some_and(|x| *x == b' ' || *x == b'\t') {
            j += 1;
        }
        if b.get(j) == Some(&b'-') && b.get(j + 1) == Some(&b' ') {
            j += 2;
        }
        let rest = s[j..].trim();
        if rest.is_empty() {
            return None;
        }
        return Some(Loc { file, line, column, bracket, rest });
    }
    None
}

/// Parse line `i` as `file:line…: message`; true when it was recognised.
pub(crate) fn parse_line(log: &Log<'_>, i: usize, sink: &mut Sink<'_>) -> bool {
    let t: &str = &log.lines[i].text;
    let Some(loc) = split_location(t) else { return false };
    let Loc { file, line, column, bracket, rest } = loc;
    if !plausible_file(file) {
        return false;
    }
    let mut rest = rest;
    // Severity and code prefixes, in either order.
    let mut severity = None;
    let mut code: Option<String> = None;
    let mut bracket_severity = false;
    for _ in 0..2 {
        if severity.is_none()
            && may_start_severity(rest)
            && let Some(m) = SEVERITY_PREFIX.captures(rest)
        {
            bracket_severity = m[0].starts_with('[');
            severity = Some(match m[1].to_ascii_lowercase().as_str() {
                "error" | "fatal" | "critical" | "high" => Severity::Error,
                "warning" | "warn" | "medium" => Severity::Warning,
                _ => Severity::Note,
            });
            if let Some(cd) = m.get(2).or(m.get(3)) {
                code = Some(cd.as_str().to_string());
            }
            rest = &rest[m.get(0).map_or(0, |m| m.end())..];
            continue;
        }
        if code.is_none()
            && rest.starts_with(|c: char| c == '[' || c.is_ascii_uppercase())
            && let Some(m) = CODE_PREFIX.captures(rest)
        {
            code = Some(m[1].to_string());
            rest = &rest[m.get(0).map_or(0, |m| m.end())..];
            continue;
        }
        break;
    }
    // The rule regex ends in `[\])]$`: only a line ending in `]` or `)` can match.
    let rule = rest
        .ends_with([']', ')'])
        .then(|| TRAILING_RULE.captures(rest))
        .flatten()
        .map(|m| (m[1].to_string(), m.get(0).map_or(rest.len(), |x| x.start())));
    let ext = basename(file).rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let lower_path = file.to_ascii_lowercase();
    let base = basename(file);
    let tool = match ext.as_str() {
        "rs" => {
            if code.as_deref().is_some_and(|c| c.contains("clippy")) {
                Tool::Clippy
            } else {
                Tool::Rustc
            }
        }
        "ts" | "tsx" | "mts" | "cts" | "js" | "jsx" | "mjs" | "cjs" | "vue" | "svelte" => {
            if code.as_deref().is_some_and(|c| c.starts_with("TS")) {
                Tool::Tsc
            } else if bracket {
                Tool::NodeLint
            } else {
                Tool::Eslint
            }
        }
        "css" | "scss" | "sass" | "less" => Tool::Stylelint,
        "md" | "mdx" | "html" => Tool::NodeLint,
        "py" | "pyi" => Tool::Python,
        "go" => Tool::Go,
        "java" | "kt" | "kts" | "scala" | "groovy" => Tool::Java,
        "tf" | "hcl" | "tfvars" => Tool::Terraform,
        "c" | "h" | "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" | "m" | "mm" => Tool::Native,
        "rb" | "rake" | "gemspec" => Tool::Ruby,
        "php" => Tool::Php,
        "env" => Tool::Dotenv,
        "yml" | "yaml" => {
            let actionlint_rule =
                rule.as_ref().is_some_and(|(r, _)| ACTIONLINT_RULES.contains(&r.as_str())) && rest.ends_with(']');
            if actionlint_rule
                || lower_path.contains(".github/workflows/")
                || base == "action.yml"
                || base == "action.yaml"
            {
                Tool::Actionlint
            } else if bracket_severity {
                Tool::Yamllint
            } else if code.as_deref().is_some_and(|c| c.starts_with('E') || c.starts_with('W')) {
                Tool::Ansible
            } else if lower_path.contains("templates/")
                || base.eq_ignore_ascii_case("chart.yaml")
                || base.starts_with("values")
            {
                Tool::Helm
            } else if lower_path.contains("k8s")
                || lower_path.contains("kube")
                || lower_path.contains("manifest")
                || lower_path.contains("deploy")
            {
                Tool::Kubernetes
            } else {
                Tool::Yamllint
            }
        }
        _ if base.starts_with("Dockerfile") || base.starts_with("Containerfile") => Tool::Hadolint,
        _ => Tool::Generic,
    };
    // Default severities: linters with codes (flake8 `W…`/`C…`) warn; compilers error.
    let severity = severity.unwrap_or_else(|| match code.as_deref().and_then(|c| c.chars().next()) {
        Some('W') | Some('C') | Some('R') | Some('I') if tool == Tool::Python => Severity::Warning,
        _ if tool == Tool::Dotenv => Severity::Warning,
        _ => Severity::Error,
    });
    let mut message = rest.to_string();
    if let Some((r, start)) = &rule
        && code.is_none()
        && matches!(tool, Tool::Actionlint | Tool::Yamllint | Tool::Go | Tool::Eslint | Tool::Generic | Tool::Python)
    {
        code = Some(r.clone());
        message = rest[..*start].trim_end().to_string();
    }
    // tsc continues a message on indented lines.
    if tool == Tool::Tsc {
        for l in log.lines.iter().skip(i + 1).take(8) {
            if l.text.starts_with("  ") && !l.text.trim().is_empty() && split_location(&l.text).is_none() {
                message.push(' ');
                message.push_str(l.text.trim());
            } else {
                break;
            }
        }
    }
    let mut d = Diagnostic::new(tool, severity, collapse_ws(&message), log.lines[i].number).at(file, line, column);
    if let Some(code) = code {
        d = d.code(code);
    }
    sink.push(d);
    true
}
