//! JavaScript-ecosystem linters, budgets, bundlers and task runners, each by its documented output:
//!
//! ```text
//! README.md:3 MD022/blanks-around-headings Headings should … [Context: "## Usage"]   (markdownlint-cli,
//! README.md:6:1 error MD004/ul-style Unordered list style                            markdownlint-cli2;
//! README.md:3: MD022 Headers should be surrounded by blank lines                    Ruby mdl)
//! src/app.js:                                       (editorconfig-checker: a file header, then
//!     2: Trailing whitespace                       tab-indented `line: message` rows)
//!     02:12 ❌ unexpected trailing whitespace  (EditorConfig trim_trailing_whitespace …)   (eclint)
//! Line: 2 Unexpected trailing spaces found. [warning]                          (lintspaces, after `File: …`)
//!   Package size limit has exceeded by 1.05 kB                                  (size-limit)
//! [09:30:52] 'templates' errored after 1.27 ms                                  (gulp 4/5)
//! Warning: Task "lint-json" failed. Use --force to continue.                    (grunt)
//! ERROR in ./src/index.js 2:0-30                                                (webpack 4/5)
//! Code style issues found in the above file(s). Forgot to run Prettier?         (prettier 1.x/2.x --check)
//! > prettier --list-different 'src/**/*.js'    then one unformatted file per line
//! ```

use std::sync::LazyLock;

use regex::Regex;

use super::{Diagnostic, Severity, Sink, State, Tool};
use crate::triage::classify::FailureClass;
use crate::triage::extract::Log;

static LIMIT_EXCEEDED: super::Needle = super::needle!(" limit has exceeded by ");
static MARKDOWNLINT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\S+?\.(?:md|mdx|markdown|MD)):(\d+)(?::(\d+))?:? (?:(error|warning) )?(MD\d{3})((?:/[\w-]+)*) (.+)$")
        .expect("static regex")
});
static ECLINT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s+(\d+):(\d+) ❌ (.+?)(?:\s{2,}\(EditorConfig (\w+).*)?$").expect("static regex"));
static GULP_ERRORED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[\d\d:\d\d:\d\d\] '([^']+)' errored after (.+)$").expect("static regex"));
static WEBPACK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^ERROR in (\S+)(?: (\d+):(\d+)(?:-\S+)?)?\s*$").expect("static regex"));

/// A bare relative or absolute path line (a file name a tool lists on its own).
fn bare_path(t: &str) -> Option<&str> {
    let t = t.trim();
    let ok = !t.is_empty()
        && t.len() < 512
        && !t.contains(char::is_whitespace)
        && !t.ends_with(':')
        && t.rsplit('/').next().is_some_and(|b| {
            b.rsplit_once('.').is_some_and(|(n, e)| {
                !n.is_empty() && (1..=10).contains(&e.len()) && e.bytes().all(|c| c.is_ascii_alphanumeric())
            })
        });
    ok.then_some(t)
}

/// Whether the parser needs to see line `i` although no keyword is on it.
pub(crate) fn wants(state: &State, t: &str) -> bool {
    (state.prettier_list && !t.is_empty())
        || (state.editorconfig && t.starts_with('\t'))
        || (state.lintspaces && t.starts_with("Line: "))
        || t.starts_with("> ")
        || t.starts_with("File: ")
        || (t.ends_with(':') && !t.starts_with(' ') && !t.contains(' '))
}

/// Parse line `i`; true when it was recognised.
pub(crate) fn parse_line(log: &Log<'_>, i: usize, state: &mut State, sink: &mut Sink<'_>) -> bool {
    let t: &str = &log.lines[i].text;
    let number = log.lines[i].number;
    // A script banner (`> prettier --list-different …` from npm, `$ prettier -l …` from yarn)
    // or a runner's command line starts or ends a prettier file list.
    if let Some(cmd) = t.strip_prefix("> ").or_else(|| t.strip_prefix("$ ")) {
        state.prettier_list = cmd.contains("prettier") && (cmd.contains("--list-different") || cmd.contains(" -l "));
        return false;
    }
    if state.prettier_list {
        if let Some(p) = bare_path(t) {
            sink.push(
                Diagnostic::new(
                    Tool::Prettier,
                    Severity::Error,
                    "file is not formatted (prettier --list-different)",
                    number,
                )
                .at(p, None, None),
            );
            return true;
        }
        if !t.trim().is_empty() {
            state.prettier_list = false;
        }
    }
    if t.starts_with("Code style issues found in") || t.contains("Forgot to run Prettier?") {
        // prettier --check without `[warn]` prefixes (1.x): the files are listed above.
        sink.signal(FailureClass::FrontendFormat, 3.0, i);
        for l in log.lines[i.saturating_sub(200)..i].iter().rev() {
            if l.text.starts_with("Checking formatting") {
                break;
            }
            if let Some(p) = bare_path(&l.text) {
                sink.push(
                    Diagnostic::new(
                        Tool::Prettier,
                        Severity::Error,
                        "file is not formatted (prettier --check)",
                        l.number,
                    )
                    .at(p, None, None),
                );
            }
        }
        return true;
    }
    if t.contains("MD")
        && let Some(c) = MARKDOWNLINT.captures(t)
    {
        let sev = if c.get(4).is_some_and(|s| s.as_str() == "warning") { Severity::Warning } else { Severity::Error };
        let code = format!("{}{}", &c[5], &c[6]);
        sink.push(
            Diagnostic::new(Tool::Markdownlint, sev, &c[7], number)
                .at(&c[1], c[2].parse().ok(), c.get(3).and_then(|m| m.as_str().parse().ok()))
                .code(code),
        );
        return true;
    }
    // editorconfig-checker: `file:` header, `\t<line>[-<line>]: message` or `\tmessage` rows.
    if !t.starts_with(' ') && !t.starts_with('\t') && t.ends_with(':') && !t.contains(' ') && t.len() > 1 {
        state.editorconfig = bare_path(&t[..t.len() - 1]).is_some();
        if state.editorconfig {
            state.editorconfig_file = t[..t.len() - 1].to_string();
        }
        return false;
    }
    if state.editorconfig && t.starts_with('\t') {
        let row = t.trim();
        let (line, msg) = match row.split_once(": ") {
            Some((n, m)) if n.split('-').all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit())) => {
                (n.split('-').next().and_then(|x| x.parse().ok()), m)
            }
            _ => (None, row),
        };
        if msg.is_empty() {
            return false;
        }
        sink.push(Diagnostic::new(Tool::Editorconfig, Severity::Error, msg, number).at(
            state.editorconfig_file.clone(),
            line,
            None,
        ));
        return true;
    }
    if t.contains('❌')
        && let Some(c) = ECLINT.captures(t)
    {
        let file = log.lines[i.saturating_sub(200)..i]
            .iter()
            .rev()
            .find_map(|l| bare_path(&l.text).filter(|_| !l.text.starts_with(' ')).map(str::to_string));
        let mut d = Diagnostic::new(Tool::Editorconfig, Severity::Error, c[3].trim(), number);
        if let Some(f) = file {
            d = d.at(f, c[1].parse().ok(), c[2].parse().ok());
        }
        if let Some(rule) = c.get(4) {
            d = d.code(rule.as_str());
        }
        sink.push(d);
        return true;
    }
    if let Some(f) = t.strip_prefix("File: ") {
        state.lintspaces = true;
        state.editorconfig_file = f.trim().to_string();
        return false;
    }
    if state.lintspaces
        && let Some(rest) = t.strip_prefix("Line: ")
        && let Some((n, msg)) = rest.split_once(' ')
    {
        let sev = if msg.ends_with("[warning]") { Severity::Warning } else { Severity::Error };
        let msg = msg.trim_end_matches("[warning]").trim_end_matches("[error]").trim();
        sink.push(Diagnostic::new(Tool::Editorconfig, sev, msg, number).at(
            state.editorconfig_file.clone(),
            n.parse().ok(),
            None,
        ));
        return true;
    }
    if let Some(p) = LIMIT_EXCEEDED.find(t) {
        // The entry's name (its path) is the nearest non-blank line above without a `:`.
        let name = log.lines[i.saturating_sub(4)..i]
            .iter()
            .rev()
            .map(|l| l.text.trim())
            .find(|x| !x.is_empty() && !x.contains(": "))
            .map(str::to_string);
        let mut d = Diagnostic::new(Tool::SizeLimit, Severity::Error, t[..p].trim().to_string() + &t[p..], number);
        if let Some(n) = name {
            d = d.at(n, None, None);
        }
        sink.push(d);
        return true;
    }
    if t.starts_with('[')
        && t.contains("' errored after ")
        && let Some(c) = GULP_ERRORED.captures(t)
    {
        let err = log
            .lines
            .get(i + 1)
            .map(|l| l.text.as_ref())
            .filter(|x| x.starts_with('['))
            .and_then(|x| x.split_once("] "))
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_default();
        let msg = if err.is_empty() { format!("task '{}' errored", &c[1]) } else { format!("task '{}': {err}", &c[1]) };
        sink.push(Diagnostic::new(Tool::Gulp, Severity::Error, msg, number).code(&c[1]));
        return true;
    }
    if let Some(rest) = t.strip_prefix("Warning: ")
        && rest.contains("Use --force to continue")
    {
        let msg = rest.split(" Use --force to continue").next().unwrap_or(rest).trim();
        sink.push(Diagnostic::new(Tool::Grunt, Severity::Error, msg, number));
        return true;
    }
    if t.starts_with("Aborted due to warnings.") {
        sink.signal(FailureClass::FrontendBuild, 2.0, i);
        return true;
    }
    if let Some(rest) = t.strip_prefix("Fatal error: ") {
        // grunt's fatal errors (a missing task or Gruntfile).
        if log.lines[i.saturating_sub(20)..i]
            .iter()
            .any(|l| l.text.starts_with("Running \"") || l.text.contains("grunt"))
        {
            sink.push(Diagnostic::new(Tool::Grunt, Severity::Error, rest, number));
            return true;
        }
    }
    if t.starts_with("ERROR in ")
        && let Some(c) = WEBPACK.captures(t)
    {
        let msg = log.lines.get(i + 1).map(|l| l.text.trim().to_string()).filter(|m| !m.is_empty());
        let mut d =
            Diagnostic::new(Tool::Webpack, Severity::Error, msg.unwrap_or_else(|| "build error".into()), number).at(
                c[1].to_string(),
                c.get(2).and_then(|m| m.as_str().parse().ok()),
                c.get(3).and_then(|m| m.as_str().parse().ok()),
            );
        if let Some(m) = d.message.split(':').next()
            && m.starts_with("Module not found")
        {
            d = d.code("module-not-found");
        }
        sink.push(d);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::parsers::parse_text as parse;

    #[test]
    fn markdownlint_formats() {
        let d = parse(
            "README.md:8:81 MD013/line-length Line length [Expected: 80; Actual: 112]\nREADME.md:6:1 error MD004/ul-style Unordered list style\ndocs/a.md:3: MD022 Headers should be surrounded by blank lines\n",
        );
        assert_eq!(d.len(), 3, "{d:#?}");
        assert_eq!((d[0].code.as_deref(), d[0].line, d[0].column), (Some("MD013/line-length"), Some(8), Some(81)));
        assert!(d.iter().all(|d| d.tool == Tool::Markdownlint));
    }

    #[test]
    fn editorconfig_checkers() {
        let d = parse(
            "src/app.js:\n\tWrong line endings or no final newline\n\t2: Trailing whitespace\n\t2-5: Wrong amount of left-padding spaces(want multiple of 4)\n\n5 errors found\n",
        );
        assert_eq!(d.len(), 3, "{d:#?}");
        assert_eq!((d[1].file.as_deref(), d[1].line), (Some("src/app.js"), Some(2)));
        let d = parse(
            "src/app.js\n    02:12 ❌ unexpected trailing whitespace            (EditorConfig trim_trailing_whitespace https://goo.gl/oo8iVb)\n",
        );
        assert_eq!(
            (d[0].tool, d[0].code.as_deref(), d[0].line),
            (Tool::Editorconfig, Some("trim_trailing_whitespace"), Some(2))
        );
        let d = parse("File: /w/src/app.js\nLine: 2 Unexpected trailing spaces found. [warning]\n");
        assert_eq!((d[0].severity, d[0].line), (Severity::Warning, Some(2)));
    }

    #[test]
    fn budgets_tasks_bundlers_and_prettier_lists() {
        let d = parse("  dist/index.js\n  Package size limit has exceeded by 1.05 kB\n  Size limit: 1 kB\n");
        assert_eq!((d[0].tool, d[0].file.as_deref()), (Tool::SizeLimit, Some("dist/index.js")));
        let d = parse("[09:30:52] 'templates' errored after 1.27 ms\n[09:30:52] Error: missing placeholder\n");
        assert_eq!(d[0].message, "task 'templates': Error: missing placeholder");
        let d = parse(
            "Running \"check\" task\nWarning: version 1.0.0 is not a pre-release Use --force to continue.\n\nAborted due to warnings.\n",
        );
        assert_eq!((d[0].tool, d[0].message.as_str()), (Tool::Grunt, "version 1.0.0 is not a pre-release"));
        let d = parse("ERROR in ./src/index.js 2:0-30\nModule not found: Error: Can't resolve './x.css' in '/w/src'\n");
        assert_eq!((d[0].tool, d[0].line, d[0].code.as_deref()), (Tool::Webpack, Some(2), Some("module-not-found")));
        let d = parse("\n> app@1.0.0 lint\n> prettier --list-different 'src/**/*.js'\n\nsrc/a.js\nsrc/b.css\n");
        assert_eq!(d.iter().filter(|d| d.tool == Tool::Prettier).count(), 2, "{d:#?}");
        let d = parse(
            "Checking formatting...\nsrc/a.js\nCode style issues found in the above file(s). Forgot to run Prettier?\n",
        );
        assert_eq!(d[0].file.as_deref(), Some("src/a.js"));
    }
}
