//! JavaScript test runners beyond jest/vitest, and the Test Anything Protocol, each by its
//! reporter's documented output:
//!
//! ```text
//!   3 failing                                                (mocha: Base.epilogue)
//!   1) array                                                 (mocha: Base.list, one entry per failure:
//!        finds an element:                                    the full title, then the error)
//!      AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:
//! not ok 2 keeps empty fields as zero                        (TAP 13/14: tape, node-tap, node:test
//!   ---                                                       --test-reporter=tap, prove, bats;
//!     operator: deepEqual                                     a YAML diagnostic block may follow)
//!     at: Test.<anonymous> (/w/test/parse.js:6:5)
//! Failures:                                                  (jasmine ConsoleReporter)
//! 1) Player plays a song
//!   Message:
//!     Expected false to be true.
//! Chrome Headless 120.0 (Linux x86_64) calc adds FAILED      (karma progress/dots reporter)
//!   ✘ [fail]: keeps values in range                          (ava ≥ 4;  ava 3: `  ✖ title`)
//!   ✖ is FIFO (10.0ms)                                       (node:test spec reporter)
//! ```
//! TAP is a protocol, not a JavaScript tool: its diagnostics are [`Tool::Tap`], whose class comes
//! from the job's ecosystem.

use std::sync::LazyLock;

use regex::Regex;

use super::{Diagnostic, Severity, Sink, State, Tool};
use crate::triage::classify::FailureClass;
use crate::triage::extract::Log;

static AVA_FAIL: super::Needle = super::needle!("✘ [fail]: ");
static TAP_NOT_OK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\s*)not ok (\d+)(?: -)?(?: (.*?))?\s*$").expect("static regex"));
static KARMA_FAILED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^((?:Headless)?(?:Chrome|Chromium|Firefox|Safari|PhantomJS|Edge|Electron|Opera|IE|Mobile Safari)[^()]*)\([^)]*\) (.+?) (FAILED|ERROR)$")
        .expect("static regex")
});
/// A stack frame's location: `(file:line:col)` or `at file:line:col`.
static FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\(|at )((?:file://)?[^()\s]+?):(\d+):(\d+)\)?\s*$").expect("static regex"));

/// The first stack frame in `lines` that is the project's code (not `node_modules`, not `node:`).
fn project_frame(log: &Log<'_>, from: usize, max: usize) -> Option<(String, u32, u32)> {
    for l in log.lines.iter().skip(from).take(max) {
        let t: &str = &l.text;
        if !(t.contains(':') && (t.trim_start().starts_with("at ") || t.trim_start().starts_with("at: "))) {
            continue;
        }
        if t.contains("node_modules") || t.contains("node:") || t.contains("<Jasmine>") {
            continue;
        }
        if let Some(c) = FRAME.captures(t) {
            let file = c[1].trim_start_matches("file://").to_string();
            return Some((file, c[2].parse().ok()?, c[3].parse().ok()?));
        }
    }
    None
}

fn with_frame(d: Diagnostic, frame: Option<(String, u32, u32)>) -> Diagnostic {
    match frame {
        Some((f, l, c)) => d.at(f, Some(l), Some(c)),
        None => d,
    }
}

/// Whether `t` is mocha's epilogue count (`  3 failing`).
fn mocha_failing(t: &str) -> bool {
    t.strip_prefix("  ")
        .and_then(|r| r.strip_suffix(" failing"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `  1) title` at exactly two blanks (mocha's list of failures).
fn mocha_entry(t: &str) -> Option<&str> {
    let r = t.strip_prefix("  ")?;
    let d = r.bytes().take_while(u8::is_ascii_digit).count();
    if d == 0 || d > 5 {
        return None;
    }
    r[d..].strip_prefix(") ")
}

/// Whether the parser needs to see line `i` although no keyword is on it (inside a runner's
/// failure list).
pub(crate) fn wants(state: &State, t: &str) -> bool {
    (state.mocha_failing && t.starts_with("  ")) || (state.jasmine_failures && !t.is_empty())
}

/// Parse line `i`; true when it was recognised.
pub(crate) fn parse_line(log: &Log<'_>, i: usize, state: &mut State, sink: &mut Sink<'_>) -> bool {
    let t: &str = &log.lines[i].text;
    let number = log.lines[i].number;
    // mocha.
    if mocha_failing(t) {
        state.mocha_failing = true;
        sink.signal(FailureClass::FrontendTest, 2.0, i);
        return true;
    }
    if state.mocha_failing
        && let Some(first) = mocha_entry(t)
    {
        // The title runs over more-indented lines up to one ending with `:`; then the error.
        let mut title = first.trim().to_string();
        let mut j = i + 1;
        if !title.ends_with(':') {
            while let Some(l) = log.lines.get(j) {
                let lt = l.text.trim();
                if lt.is_empty() || j - i > 8 {
                    break;
                }
                title.push(' ');
                title.push_str(lt);
                j += 1;
                if lt.ends_with(':') {
                    break;
                }
            }
        } else {
            j = i + 1;
        }
        let title = title.trim_end_matches(':').to_string();
        let error = log.lines[j.min(log.lines.len())..]
            .iter()
            .take(4)
            .map(|l| l.text.trim())
            .find(|x| !x.is_empty())
            .unwrap_or("")
            .to_string();
        let msg = if error.is_empty() { format!("test failed: {title}") } else { format!("{title}: {error}") };
        let d = Diagnostic::new(Tool::Mocha, Severity::Error, msg, number);
        sink.push(with_frame(d, project_frame(log, j, 40)));
        return true;
    }
    // TAP.
    let tt = t.trim_start();
    if tt.starts_with("not ok ")
        && let Some(c) = TAP_NOT_OK.captures(t)
    {
        let name = c.get(3).map_or("", |m| m.as_str());
        let directive = name.rsplit_once(" # ").map(|(_, d)| d.trim().to_ascii_uppercase());
        if directive.as_deref().is_some_and(|d| d.starts_with("TODO") || d.starts_with("SKIP")) {
            return true;
        }
        let name = name.split(" # time=").next().unwrap_or(name).trim();
        // The YAML block: operator, expected, actual, at/location, error.
        let mut extra: Vec<String> = Vec::new();
        let mut frame = None;
        let indent = c[1].len();
        if log.lines.get(i + 1).is_some_and(|l| l.text.trim() == "---") {
            for l in log.lines.iter().skip(i + 2).take(60) {
                let lt = l.text.trim();
                if lt == "..." || l.text.len() - l.text.trim_start().len() <= indent && !lt.is_empty() {
                    break;
                }
                for key in ["operator: ", "expected: ", "actual: ", "error: "] {
                    if let Some(v) = lt.strip_prefix(key)
                        && !v.starts_with('|')
                        && extra.len() < 4
                    {
                        extra.push(format!("{}{}", key, v.trim().trim_matches('\'')));
                    }
                }
                if frame.is_none()
                    && let Some(v) = lt.strip_prefix("at: ").or_else(|| lt.strip_prefix("location: "))
                    && let Some(fc) = FRAME.captures(&format!("at {}", v.trim_matches('\'')))
                {
                    frame = Some((fc[1].to_string(), fc[2].parse().unwrap_or(0), fc[3].parse().unwrap_or(0)));
                }
            }
        }
        let mut msg = format!("not ok {}", &c[2]);
        if !name.is_empty() {
            msg.push_str(" - ");
            msg.push_str(name);
        }
        if !extra.is_empty() {
            msg.push_str(" (");
            msg.push_str(&extra.join(", "));
            msg.push(')');
        }
        sink.push(with_frame(Diagnostic::new(Tool::Tap, Severity::Error, msg, number).code(&c[2]), frame));
        return true;
    }
    // jasmine.
    if t == "Failures:" {
        state.jasmine_failures = true;
        return true;
    }
    if state.jasmine_failures {
        let d = t.bytes().take_while(u8::is_ascii_digit).count();
        if d > 0 && t[d..].starts_with(") ") {
            let spec = t[d + 2..].trim();
            let msg = log.lines[i + 1..]
                .iter()
                .take(6)
                .skip_while(|l| l.text.trim() != "Message:")
                .nth(1)
                .map(|l| l.text.trim().to_string())
                .unwrap_or_default();
            let d = Diagnostic::new(Tool::Jasmine, Severity::Error, format!("{spec}: {msg}"), number);
            sink.push(with_frame(d, project_frame(log, i + 1, 30)));
            return true;
        }
        if t.contains(" specs, ") || t.contains(" spec, ") {
            state.jasmine_failures = false;
            if !t.contains(" 0 failures") {
                sink.signal(FailureClass::FrontendTest, 2.0, i);
            }
            return true;
        }
        return false;
    }
    // karma.
    if (t.ends_with(" FAILED") || t.ends_with(" ERROR"))
        && t.contains(") ")
        && let Some(c) = KARMA_FAILED.captures(t)
    {
        let msg = log
            .lines
            .get(i + 1)
            .map(|l| l.text.trim())
            .filter(|m| !m.is_empty())
            .map_or_else(|| format!("{} {}", &c[2], &c[3]), |m| format!("{}: {m}", &c[2]));
        let d = Diagnostic::new(Tool::Karma, Severity::Error, msg, number).code(c[1].trim());
        sink.push(with_frame(d, project_frame(log, i + 1, 20)));
        return true;
    }
    // ava ≥ 4.
    if let Some(p) = AVA_FAIL.find(t) {
        let title = t[p + "✘ [fail]: ".len()..].trim();
        sink.push(Diagnostic::new(Tool::Ava, Severity::Error, format!("test failed: {title}"), number));
        return true;
    }
    // node:test spec reporter: `✖ title (1.2ms)`; ava 3: `  ✖ title`.
    if let Some(rest) = tt.strip_prefix("✖ ") {
        if rest.starts_with("failing tests") || rest.contains(" problem") {
            return false;
        }
        if let Some(title) = rest.strip_suffix(')').and_then(|r| r.rsplit_once(" (")).and_then(|(title, dur)| {
            (dur.ends_with("ms") && dur.bytes().next().is_some_and(|b| b.is_ascii_digit())).then_some(title)
        }) {
            sink.push(Diagnostic::new(Tool::NodeTest, Severity::Error, format!("test failed: {title}"), number));
            return true;
        }
        if t.starts_with("  ✖ ") {
            sink.push(Diagnostic::new(Tool::Ava, Severity::Error, format!("test failed: {}", rest.trim()), number));
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::parsers::parse_text as parse;

    #[test]
    fn mocha_entries_carry_title_error_and_frame() {
        let d = parse(
            "  0 passing (9ms)\n  1 failing\n\n  1) array\n       finds an element:\n\n      AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:\n      at Context.<anonymous> (test/array.spec.js:6:12)\n      at process.processImmediate (node:internal/timers:483:21)\n",
        );
        let m = d.iter().find(|d| d.tool == Tool::Mocha).expect("mocha diagnostic");
        assert_eq!(
            m.message,
            "array finds an element: AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:"
        );
        assert_eq!((m.file.as_deref(), m.line), (Some("test/array.spec.js"), Some(6)));
    }

    #[test]
    fn tap_not_ok_with_yaml_block_and_skips() {
        let d = parse(
            "TAP version 13\nnot ok 2 keeps zero\n  ---\n    operator: deepEqual\n    expected: [ 1, 0 ]\n    actual:   [ 1 ]\n    at: Test.<anonymous> (/w/test/parse.js:6:5)\n  ...\nnot ok 3 later # TODO not yet\n",
        );
        let taps: Vec<_> = d.iter().filter(|d| d.tool == Tool::Tap).collect();
        assert_eq!(taps.len(), 1, "{d:#?}");
        assert_eq!(taps[0].message, "not ok 2 - keeps zero (operator: deepEqual, expected: [ 1, 0 ], actual: [ 1 ])");
        assert_eq!((taps[0].file.as_deref(), taps[0].line), (Some("/w/test/parse.js"), Some(6)));
    }

    #[test]
    fn karma_jasmine_ava_node_test() {
        let d = parse(
            "Chrome Headless 156.0.0.0 (Linux 0.0.0) calc divides exactly FAILED\n\tExpected 3 to be 3.5.\n\t    at UserContext.<anonymous> (test/calc.spec.js:3:56)\n",
        );
        assert_eq!(d[0].tool, Tool::Karma);
        assert_eq!(d[0].message, "calc divides exactly: Expected 3 to be 3.5.");
        assert_eq!(d[0].line, Some(3));
        let d = parse(
            "Failures:\n1) Player plays a song\n  Message:\n    Expected false to be true.\n  Stack:\n\n1 spec, 1 failure\n",
        );
        assert_eq!(
            (d[0].tool, d[0].message.as_str()),
            (Tool::Jasmine, "Player plays a song: Expected false to be true.")
        );
        let d = parse("  ✘ [fail]: keeps values in range Difference\n  ✖ is FIFO (10.009933ms)\n");
        assert_eq!((d[0].tool, d[1].tool), (Tool::Ava, Tool::NodeTest));
    }
}
