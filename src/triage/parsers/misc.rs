//! Go, Python and JVM build and test output (these route to the `general` profile).
//!
//! ```text
//! --- FAIL: TestCloud_config (0.00s)                     (go test)
//! FAIL    github.com/hashicorp/terraform/internal/cloud    0.574s
//! panic: runtime error: invalid memory address or nil pointer dereference
//! FAILED tests/test_x.py::test_y - AssertionError: boom  (pytest -rA summary)
//! would reformat /app/main.py                            (black --check)
//! ERROR: /app/main.py Imports are incorrectly sorted and/or formatted.   (isort --check)
//! [ERROR] /src/main/java/A.java:[12,5] cannot find symbol                (maven; also via location)
//! > Task :app:test FAILED                                 (gradle)
//! LogDifferTest > testGithubParsing() FAILED             (gradle test)
//! ```

use std::sync::LazyLock;

use regex::Regex;

use super::{Diagnostic, Severity, Sink, State, Tool};
use crate::triage::extract::Log;

static GO_FAIL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*--- FAIL: (\S+)").expect("static regex"));
static PYTEST_FAILED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(FAILED|ERROR) (\S+?\.py)(?:::(\S+))?(?: - (.*))?$").expect("static regex"));
static GRADLE_TEST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(\S+) > (.+) FAILED$").expect("static regex"));
static GRADLE_TASK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^> Task (\S+) FAILED$").expect("static regex"));

/// Parse line `i`; true when it was recognised.
pub(crate) fn parse_line(log: &Log<'_>, i: usize, _state: &mut State, sink: &mut Sink<'_>) -> bool {
    let t: &str = &log.lines[i].text;
    let number = log.lines[i].number;
    if t.trim_start().starts_with("--- FAIL: ")
        && let Some(c) = GO_FAIL.captures(t)
    {
        // Subtests are indented; keep only top-level tests as diagnostics.
        if !t.starts_with(' ') {
            sink.push(
                Diagnostic::new(Tool::GoTest, Severity::Error, format!("test {} failed", &c[1]), number).code(&c[1]),
            );
        }
        return true;
    }
    if let Some(rest) = t.strip_prefix("panic: ") {
        sink.push(Diagnostic::new(Tool::GoTest, Severity::Error, format!("panic: {}", rest.trim()), number));
        return true;
    }
    if t.starts_with("FAIL\t") {
        return true;
    }
    if (t.starts_with("FAILED ") || t.starts_with("ERROR "))
        && let Some(c) = PYTEST_FAILED.captures(t)
    {
        let test = c.get(3).map(|m| m.as_str()).unwrap_or("");
        let msg = match c.get(4) {
            Some(m) => format!("{test}: {}", m.as_str()),
            None => format!("{test} failed"),
        };
        sink.push(Diagnostic::new(Tool::Pytest, Severity::Error, msg, number).at(&c[2], None, None).code(test));
        return true;
    }
    if let Some(file) = t.strip_prefix("would reformat ") {
        sink.push(Diagnostic::new(Tool::Python, Severity::Error, "file is not formatted (black --check)", number).at(
            file.trim(),
            None,
            None,
        ));
        return true;
    }
    if let Some(rest) = t.strip_prefix("ERROR: ")
        && let Some((file, msg)) = rest.split_once(" Imports are incorrectly sorted")
    {
        let _ = msg;
        sink.push(
            Diagnostic::new(Tool::Python, Severity::Error, "imports are incorrectly sorted (isort --check)", number)
                .at(file.trim(), None, None),
        );
        return true;
    }
    if t.starts_with("> Task ")
        && let Some(c) = GRADLE_TASK.captures(t)
    {
        sink.push(Diagnostic::new(Tool::Java, Severity::Error, format!("task {} failed", &c[1]), number));
        return true;
    }
    if t.ends_with(" FAILED")
        && t.contains(" > ")
        && let Some(c) = GRADLE_TEST.captures(t)
    {
        sink.push(
            Diagnostic::new(Tool::Java, Severity::Error, format!("test {} > {} failed", &c[1], &c[2]), number)
                .code(&c[1]),
        );
        return true;
    }
    if let Some(rest) = t.strip_prefix("[ERROR] ")
        && (rest.starts_with("Failed to execute goal") || rest.starts_with("COMPILATION ERROR"))
    {
        sink.push(Diagnostic::new(Tool::Java, Severity::Error, rest, number));
        return true;
    }
    false
}
