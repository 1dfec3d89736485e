//! Rust: rustc/cargo/clippy human diagnostics, cargo test failures, rustfmt `--check` diffs.
//!
//! Formats (rustc's `HumanEmitter`, libtest, rustfmt):
//! ```text
//! error[E0308]: mismatched types
//!   --> src/main.rs:4:18
//!    = note: `#[warn(clippy::needless_return)]` on by default
//! thread 'tests::it_works' panicked at src/lib.rs:10:5:      (Rust ≥ 1.73; message on the next line)
//! thread 'tests::it_works' panicked at 'msg', src/lib.rs:10:5 (older)
//! test tests::it_works ... FAILED
//! Diff in /home/runner/work/x/x/src/lib.rs:12:               (also `Diff in … at line 12:`)
//! ```

use std::sync::LazyLock;

use regex::Regex;

use super::{Diagnostic, Severity, Sink, State, Tool};
use crate::triage::classify::FailureClass;
use crate::triage::extract::Log;

/// `error[E0308]: msg` / `warning: msg` (one optional leading blank) → (is_error, code, message).
fn split_head(t: &str) -> Option<(bool, Option<&str>, &str)> {
    let t = t.strip_prefix(' ').unwrap_or(t);
    let (is_error, rest) = match t.strip_prefix("error") {
        Some(r) => (true, r),
        None => (false, t.strip_prefix("warning")?),
    };
    let (code, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let end = r.find(']')?;
            let code = &r[..end];
            if code.is_empty() || !code.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'-')) {
                return None;
            }
            (Some(code), &r[end + 1..])
        }
        None => (None, rest),
    };
    let msg = rest.strip_prefix(": ")?;
    (!msg.trim().is_empty()).then_some((is_error, code, msg))
}

/// `E0308`-style compiler error codes (as opposed to lint names).
fn is_error_code(c: &str) -> bool {
    c.len() == 5 && c.starts_with('E') && c[1..].bytes().all(|b| b.is_ascii_digit())
}

/// `  --> src/main.rs:4:18` → (file, line, column).
fn split_arrow(t: &str) -> Option<(&str, Option<u32>, Option<u32>)> {
    let rest = t.trim_start().strip_prefix("--> ")?.trim_end();
    let mut it = rest.rsplitn(3, ':');
    let col = it.next()?.parse().ok();
    let line = it.next()?.parse().ok();
    let file = it.next()?;
    (line.is_some() && col.is_some() && !file.is_empty()).then_some((file, line, col))
}

/// The lint a note names: `clippy::needless_return` (also `-D clippy::needless-return`, the
/// rust-clippy docs URL) or a rustc lint in `#[warn(unused_imports)]`.
fn lint_in(t: &str) -> Option<(bool, String)> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect::<String>()
            .replace('-', "_")
    };
    if let Some(p) = t.find("clippy::") {
        let name = ident(&t[p + 8..]);
        return (!name.is_empty()).then(|| (true, format!("clippy::{name}")));
    }
    if t.contains("rust-clippy")
        && let Some(p) = t.find("index.html#")
    {
        let name = ident(&t[p + 11..]);
        return (!name.is_empty()).then(|| (true, format!("clippy::{name}")));
    }
    for pre in ["#[warn(", "#[deny("] {
        if let Some(p) = t.find(pre) {
            let name = ident(&t[p + pre.len()..]);
            return (!name.is_empty()).then_some((false, name));
        }
    }
    None
}

static PANIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^thread '([^']*)' panicked at (?:'(.*)', )?(.+?):(\d+):(\d+):?$").expect("static regex")
});
static TEST_FAILED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^test (\S+) \.\.\. FAILED$").expect("static regex"));
static CARGO_DEPENDENCY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(failed to select a version|no matching package named|failed to get `|failed to load source for dependency|the lock file .* needs to be updated|cannot update the lock file|failed to download|package collision)")
        .expect("static regex")
});
static DIFF_IN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Diff in (.+?)(?: at line |:)(\d+):?\s*$").expect("static regex"));

/// Messages of rustc/cargo summary lines that are not diagnostics themselves.
fn summary_class(msg: &str) -> Option<Option<FailureClass>> {
    if msg.starts_with("could not compile") || msg.starts_with("aborting due to") {
        return Some(Some(FailureClass::RustBuild));
    }
    if msg.starts_with("test failed, to rerun") || msg.starts_with("1 target failed") || msg.contains("targets failed")
    {
        return Some(Some(FailureClass::RustTest));
    }
    if msg.contains("generated ") && msg.contains(" warning")
        || msg.ends_with("warnings emitted")
        || msg.ends_with("warning emitted")
        || msg.starts_with("build failed")
        || msg.starts_with("Some errors have detailed")
        || msg.starts_with("For more information about")
    {
        return Some(None);
    }
    None
}

/// Parse line `i`; true when it was recognised.
pub(crate) fn parse_line(log: &Log<'_>, i: usize, state: &mut State, sink: &mut Sink<'_>) -> bool {
    let t: &str = &log.lines[i].text;
    if t.starts_with("error") || t.starts_with("warning") || t.starts_with(" error") || t.starts_with(" warning") {
        return head(log, i, state, sink);
    }
    if t.starts_with("thread '")
        && let Some(c) = PANIC.captures(t)
    {
        let mut msg = c.get(2).map(|m| m.as_str().to_string()).unwrap_or_default();
        if msg.is_empty() {
            msg = log.lines.get(i + 1).map(|l| l.text.trim().to_string()).unwrap_or_default();
        }
        let d = Diagnostic::new(
            Tool::CargoTest,
            Severity::Error,
            format!("test {} panicked: {msg}", &c[1]),
            log.lines[i].number,
        )
        .at(&c[3], c[4].parse().ok(), c[5].parse().ok());
        sink.push(d);
        return true;
    }
    if t.starts_with("test ") {
        if let Some(c) = TEST_FAILED.captures(t) {
            sink.push(
                Diagnostic::new(
                    Tool::CargoTest,
                    Severity::Error,
                    format!("test {} failed", &c[1]),
                    log.lines[i].number,
                )
                .code(&c[1]),
            );
            return true;
        }
        if t.starts_with("test result: FAILED") {
            sink.signal(FailureClass::RustTest, 2.0, i);
            return true;
        }
    }
    if t.starts_with("Diff in ")
        && let Some(c) = DIFF_IN.captures(t)
    {
        let d = Diagnostic::new(
            Tool::Rustfmt,
            Severity::Error,
            "code is not formatted (rustfmt --check)",
            log.lines[i].number,
        )
        .at(&c[1], c[2].parse().ok(), None);
        sink.push(d);
        return true;
    }
    false
}

fn head(log: &Log<'_>, i: usize, state: &mut State, sink: &mut Sink<'_>) -> bool {
    let t: &str = &log.lines[i].text;
    let Some((is_error, code, msg)) = split_head(t) else { return false };
    let msg = msg.trim();
    if let Some(class) = summary_class(msg) {
        if let Some(class) = class {
            sink.signal(class, 1.5, i);
        }
        return true;
    }
    let severity = if is_error { Severity::Error } else { Severity::Warning };
    let mut code = code.map(str::to_string);
    let mut loc = None;
    let mut clippy = code.as_deref().is_some_and(|c| c.starts_with("clippy::"));
    // Look ahead through the block: `-->` location, notes naming the lint.
    for l in log.lines.iter().skip(i + 1).take(60) {
        let lt: &str = &l.text;
        if lt.trim().is_empty() || lt.starts_with("error") || lt.starts_with("warning") {
            break;
        }
        if loc.is_none()
            && let Some((f, line, col)) = split_arrow(lt)
        {
            loc = Some((f.to_string(), line, col));
            continue;
        }
        // Lints are named in `= note:` / `= help:` lines.
        let tt = lt.trim_start();
        if !(tt.starts_with('=') || tt.starts_with("note") || tt.starts_with("help")) {
            continue;
        }
        if let Some((is_clippy, name)) = lint_in(lt) {
            if is_clippy {
                clippy = true;
                if code.as_deref().is_none_or(|c| !c.starts_with("clippy::"))
                    && code.as_deref().is_none_or(|c| !c.starts_with('E'))
                {
                    code = Some(name);
                }
            } else if code.is_none() {
                code = Some(name);
            }
        }
    }
    if loc.is_none() && code.is_none() {
        // Not a rustc diagnostic (`error: …` is common); cargo's own errors are.
        let class = if CARGO_DEPENDENCY.is_match(msg) {
            FailureClass::Dependency
        } else if msg.starts_with("failed to run custom build command") || msg.starts_with("linking with") {
            FailureClass::RustBuild
        } else {
            return false;
        };
        sink.signal(class, 1.0, i);
        sink.push(Diagnostic::new(Tool::Cargo, severity, msg, log.lines[i].number));
        return true;
    }
    // Later occurrences of a lint repeat the message without the note naming it.
    match &code {
        Some(c) if !is_error_code(c) && state.lint_by_message.len() < 10_000 => {
            state.lint_by_message.insert(msg.to_string(), c.clone());
        }
        None => {
            if let Some(c) = state.lint_by_message.get(msg) {
                clippy |= c.starts_with("clippy::");
                code = Some(c.clone());
            }
        }
        _ => {}
    }
    let tool = if clippy { Tool::Clippy } else { Tool::Rustc };
    let mut d = Diagnostic::new(tool, severity, msg, log.lines[i].number);
    if let Some((f, l, col)) = loc {
        d = d.at(f, l, col);
    }
    if let Some(code) = code {
        d = d.code(code);
    }
    sink.push(d);
    true
}
