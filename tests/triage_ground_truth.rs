//! Triage against the ground truths that came with its fixtures: each errorformat test input
//! (`*.log`) has the tool's expected `file|line col N …| message` lines next to it (`*.ok.txt`,
//! reviewdog/errorformat's `.ok` files, see tests/fixtures/triage/PROVENANCE.md). Every entry must
//! be a diagnostic triage finds, at the same file, line and column, with the same message start.

use std::path::{Path, PathBuf};

use ci_healer::triage::{RoutingConfig, Severity, TriageInput, triage};

/// One expected diagnostic of an `.ok.txt` file.
#[derive(Debug)]
struct Expected {
    file: String,
    line: u32,
    column: Option<u32>,
    severity: Option<Severity>,
    message: String,
}

/// Parse errorformat's `.ok` lines (`file|line col N[ severity[ code]]| message`); a line without
/// `|` continues the previous message.
fn parse_ok(text: &str) -> Vec<Expected> {
    let mut out: Vec<Expected> = Vec::new();
    for l in text.lines() {
        let parts: Vec<&str> = l.splitn(3, '|').collect();
        let [file, loc, message] = parts[..] else {
            if let Some(last) = out.last_mut() {
                last.message.push(' ');
                last.message.push_str(l.trim());
            }
            continue;
        };
        let words: Vec<&str> = loc.split_whitespace().collect();
        let Some(line) = words.first().and_then(|w| w.parse().ok()) else { continue };
        let column = words.iter().position(|w| *w == "col").and_then(|i| words.get(i + 1)).and_then(|c| c.parse().ok());
        let severity = words.iter().find_map(|w| match *w {
            "error" => Some(Severity::Error),
            "warning" => Some(Severity::Warning),
            _ => None,
        });
        out.push(Expected { file: file.trim().into(), line, column, severity, message: message.trim().into() });
    }
    out
}

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triage/logs");
    let mut oks = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.to_string_lossy().ends_with(".ok.txt") {
                oks.push(p);
            }
        }
    }
    oks.sort();
    oks
}

/// The first words of a message, without the tool's decorations (yamllint's `[error]`, eslint's
/// padding), for a comparison that does not depend on how a parser joins continuation lines.
fn message_start(m: &str) -> String {
    let m = m.trim();
    let m = m.strip_prefix("[warning] ").or_else(|| m.strip_prefix("[error] ")).unwrap_or(m);
    let m = m.strip_prefix("warning: ").or_else(|| m.strip_prefix("error: ")).unwrap_or(m);
    m.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

/// Whether triage's `found` message is the expected one: their first words agree, up to four or
/// as many as `found` has (a parser that keeps the rule id apart, as eslint's stylish output allows,
/// reports `Missing semicolon` where errorformat's `.ok` line reads `Missing semicolon   semi`).
fn same_message(found: &str, expected: &str) -> bool {
    let (f, e) = (message_start(found), message_start(expected));
    let f: Vec<&str> = f.split_whitespace().collect();
    let e: Vec<&str> = e.split_whitespace().collect();
    !f.is_empty() && e.len() >= f.len() && e[..f.len()] == f[..]
}

#[test]
fn every_ground_truth_entry_is_a_diagnostic_triage_finds() {
    let oks = fixtures();
    assert!(oks.len() >= 4, "the errorformat ground truths are present: {oks:?}");
    for ok in oks {
        let log = PathBuf::from(ok.to_string_lossy().replace(".ok.txt", ".log"));
        let expected = parse_ok(&std::fs::read_to_string(&ok).unwrap());
        assert!(!expected.is_empty(), "{} has no entries", ok.display());
        let raw = std::fs::read(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let r = triage(&TriageInput { log: &raw, ..Default::default() }, &RoutingConfig::default());
        for e in &expected {
            let found = r.diagnostics.iter().find(|d| {
                d.file.as_deref() == Some(e.file.as_str())
                    && d.line == Some(e.line)
                    && (e.column.is_none() || d.column == e.column)
                    && same_message(&d.message, &e.message)
            });
            let d = found.unwrap_or_else(|| {
                panic!(
                    "{}: no diagnostic for {e:?}; triage found:\n{:#?}",
                    ok.file_name().unwrap().to_string_lossy(),
                    r.diagnostics.iter().map(|d| (&d.file, d.line, d.column, &d.message)).collect::<Vec<_>>()
                )
            });
            if let Some(s) = e.severity {
                assert_eq!(d.severity, s, "{e:?}");
            }
        }
    }
}

#[test]
fn the_ground_truth_format_is_read_as_errorformat_writes_it() {
    let e = parse_ok(
        "tsc.ts|5 col 12 error 2345| Argument of type 'boolean'.\nType 'boolean' is not assignable.\nsrc/a.rs|3 col 5| warning: x\n",
    );
    assert_eq!(e.len(), 2);
    assert_eq!(
        (e[0].file.as_str(), e[0].line, e[0].column, e[0].severity),
        ("tsc.ts", 5, Some(12), Some(Severity::Error))
    );
    assert_eq!(e[0].message, "Argument of type 'boolean'. Type 'boolean' is not assignable.");
    assert_eq!((e[1].line, e[1].severity), (3, None));
    assert_eq!(message_start("[error] line too long (122 > 80 characters)"), "line too long (122");
    assert_eq!(message_start("warning: unused import: `std::process`"), "unused import: `std::process`");
}
