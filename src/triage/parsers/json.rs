//! JSON reports. A log whose first non-blank character is `{` or `[` is read as a stream of JSON
//! values (one document, or JSON lines); otherwise single lines starting with `{` are tried.
//!
//! Shapes understood:
//! - cargo `--message-format=json`: `{"reason":"compiler-message","message":{…rustc diagnostic…}}`;
//! - rustc `--error-format=json`: `{"$message_type":"diagnostic","message":…,"level":…,"spans":[…],"code":{"code":…}}`
//!   (primary span gives file/line/column);
//! - eslint `-f json`: `[{"filePath":…,"messages":[{"ruleId","severity":1|2,"message","line","column"}]}]`;
//! - hadolint `-f json`: `[{"file","line","column","code","level","message"}]`;
//! - dockerfilelint: `{"error":{"data":[{"message","line","level"}]},"warn":…}`;
//! - npm audit v2 `{"auditReportVersion":2,"vulnerabilities":{name:{severity,via:[…]}}}`, npm v1 and
//!   pnpm audit `{"advisories":{id:{module_name,title,severity}}}`;
//! - kube-score: `[{"object_name","file_name","file_row","checks":[{"check":{"id","name"},"grade","comments":[{"summary"}]}]}]`;
//! - kube-linter: `{"Reports":[{"Diagnostic":{"Message"},"Check","Object":{"Metadata":{"FilePath"}}}]}`;
//! - tflint: `{"issues":[{"rule":{"name","severity"},"message","range":{"filename","start":{"line","column"}}}]}`;
//! - trivy: `{"Results":[{"Target","Misconfigurations":[…],"Vulnerabilities":[…]}]}`.

use serde_json::Value;

use super::{Diagnostic, Severity, Sink, Tool};
use crate::triage::classify::FailureClass;
use crate::triage::extract::Log;

/// Whole-document JSON is only tried up to this size (a `Value` tree costs several times the text).
const MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// Parse `text` as a stream of JSON values when it starts like JSON. Returns true when the whole text
/// was JSON (then single-line JSON parsing is skipped).
pub(crate) fn parse_document(text: &str, log: &Log<'_>, sink: &mut Sink<'_>, notes: &mut Vec<String>) -> bool {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return false;
    }
    if text.len() > MAX_DOCUMENT_BYTES {
        notes.push(format!("JSON report larger than {MAX_DOCUMENT_BYTES} bytes: read line by line only"));
        return false;
    }
    let first_number = log.lines.first().map_or(1, |l| l.number);
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut newline_pos = 0usize;
    let mut line_no = first_number;
    let mut start = 0usize;
    loop {
        match stream.next() {
            Some(Ok(v)) => {
                // Line number of the value's start: count newlines up to the previous end + leading ws.
                let lead = text[start..].len() - text[start..].trim_start().len();
                let begin = start + lead;
                line_no += memchr::memchr_iter(b'\n', &text.as_bytes()[newline_pos..begin]).count();
                newline_pos = begin;
                walk(&v, line_no, sink);
                start = stream.byte_offset();
            }
            Some(Err(e)) => {
                if start == 0 {
                    return false;
                }
                notes.push(format!("JSON report unreadable after byte {start}: {e}"));
                return false;
            }
            None => return true,
        }
    }
}

/// One line that starts with `{`: a cargo or rustc JSON message.
pub(crate) fn parse_line(t: &str, number: usize, sink: &mut Sink<'_>) {
    if !(t.contains("\"message\"") || t.contains("\"reason\"")) {
        return;
    }
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        walk(&v, number, sink);
    }
}

fn s<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str)
}
fn n(v: &Value, k: &str) -> Option<u32> {
    v.get(k).and_then(Value::as_i64).and_then(|x| u32::try_from(x).ok()).filter(|&x| x > 0)
}

/// Dispatch on the shape of one JSON value.
fn walk(v: &Value, line: usize, sink: &mut Sink<'_>) {
    match v {
        Value::Array(items) => {
            for it in items.iter().take(10_000) {
                if it.get("filePath").is_some() && it.get("messages").is_some() {
                    eslint(it, line, sink);
                } else if it.get("object_name").is_some() && it.get("checks").is_some() {
                    kube_score(it, line, sink);
                } else if it.get("code").is_some() && it.get("level").is_some() && it.get("line").is_some() {
                    hadolint(it, line, sink);
                } else if it.is_object() {
                    walk(it, line, sink);
                }
            }
        }
        Value::Object(o) => {
            if s(v, "reason") == Some("compiler-message") {
                if let Some(m) = o.get("message") {
                    rustc(m, line, sink);
                }
            } else if (o.contains_key("spans") && o.contains_key("level"))
                || s(v, "$message_type") == Some("diagnostic")
            {
                rustc(v, line, sink);
            } else if o.contains_key("auditReportVersion") || o.contains_key("advisories") {
                audit(v, line, sink);
            } else if let Some(r) = o.get("Reports").and_then(Value::as_array) {
                for rep in r.iter().take(10_000) {
                    let msg =
                        rep.pointer("/Diagnostic/Message").and_then(Value::as_str).unwrap_or("kube-linter finding");
                    let mut d = Diagnostic::new(Tool::Kubernetes, Severity::Error, msg, line);
                    if let Some(f) = rep.pointer("/Object/Metadata/FilePath").and_then(Value::as_str) {
                        d = d.at(f, None, None);
                    }
                    if let Some(c) = s(rep, "Check") {
                        d = d.code(c);
                    }
                    sink.push(d);
                }
            } else if let Some(issues) = o.get("issues").and_then(Value::as_array) {
                for is in issues.iter().take(10_000) {
                    let sev = match is.pointer("/rule/severity").and_then(Value::as_str) {
                        Some("error") => Severity::Error,
                        Some("warning") => Severity::Warning,
                        _ => Severity::Note,
                    };
                    let mut d = Diagnostic::new(Tool::Terraform, sev, s(is, "message").unwrap_or("tflint issue"), line);
                    if let Some(f) = is.pointer("/range/filename").and_then(Value::as_str) {
                        let l = is.pointer("/range/start").and_then(|st| n(st, "line"));
                        let c = is.pointer("/range/start").and_then(|st| n(st, "column"));
                        d = d.at(f, l, c);
                    }
                    if let Some(r) = is.pointer("/rule/name").and_then(Value::as_str) {
                        d = d.code(r);
                    }
                    sink.push(d);
                }
            } else if let Some(results) = o.get("Results").and_then(Value::as_array) {
                trivy(results, line, sink);
            } else if o.contains_key("error") || o.contains_key("warn") {
                dockerfilelint(v, line, sink);
            }
        }
        _ => {}
    }
}

fn rustc(m: &Value, line: usize, sink: &mut Sink<'_>) {
    let Some(msg) = s(m, "message") else { return };
    let sev = match s(m, "level") {
        Some("error") | Some("error: internal compiler error") => Severity::Error,
        Some("warning") => Severity::Warning,
        Some(_) => Severity::Note,
        None => return,
    };
    let code = m.pointer("/code/code").and_then(Value::as_str);
    let spans = m.get("spans").and_then(Value::as_array);
    let primary = spans
        .and_then(|sp| sp.iter().find(|x| x.get("is_primary").and_then(Value::as_bool) == Some(true)).or(sp.first()));
    if primary.is_none() && code.is_none() && (msg.ends_with("emitted") || msg.starts_with("aborting due to")) {
        return;
    }
    let tool = if code.is_some_and(|c| c.starts_with("clippy::")) { Tool::Clippy } else { Tool::Rustc };
    let mut d = Diagnostic::new(tool, sev, msg, line);
    if let Some(p) = primary
        && let Some(f) = s(p, "file_name")
    {
        d = d.at(f, n(p, "line_start"), n(p, "column_start"));
    }
    if let Some(c) = code {
        d = d.code(c);
    }
    sink.push(d);
}

fn eslint(it: &Value, line: usize, sink: &mut Sink<'_>) {
    let file = s(it, "filePath").unwrap_or("");
    for m in it.get("messages").and_then(Value::as_array).into_iter().flatten().take(10_000) {
        let sev =
            if m.get("severity").and_then(Value::as_i64) == Some(2) { Severity::Error } else { Severity::Warning };
        let mut d = Diagnostic::new(Tool::Eslint, sev, s(m, "message").unwrap_or(""), line).at(
            file,
            n(m, "line"),
            n(m, "column"),
        );
        if let Some(r) = s(m, "ruleId") {
            d = d.code(r);
        }
        sink.push(d);
    }
}

fn hadolint(it: &Value, line: usize, sink: &mut Sink<'_>) {
    let sev = match s(it, "level") {
        Some("error") => Severity::Error,
        Some("warning") => Severity::Warning,
        _ => Severity::Note,
    };
    let mut d = Diagnostic::new(Tool::Hadolint, sev, s(it, "message").unwrap_or(""), line).at(
        s(it, "file").unwrap_or("Dockerfile"),
        n(it, "line"),
        n(it, "column"),
    );
    if let Some(c) = s(it, "code") {
        d = d.code(c);
    }
    sink.push(d);
}

fn dockerfilelint(v: &Value, line: usize, sink: &mut Sink<'_>) {
    for (key, sev) in [("error", Severity::Error), ("warn", Severity::Warning), ("info", Severity::Note)] {
        for e in v.pointer(&format!("/{key}/data")).and_then(Value::as_array).into_iter().flatten().take(10_000) {
            let mut d = Diagnostic::new(Tool::Hadolint, sev, s(e, "message").unwrap_or(""), line);
            d = d.at("Dockerfile", n(e, "line"), None);
            sink.push(d);
        }
    }
}

fn audit(v: &Value, line: usize, sink: &mut Sink<'_>) {
    let sev_of = |x: Option<&str>| match x {
        Some("critical") | Some("high") => Severity::Error,
        Some("moderate") | Some("medium") => Severity::Warning,
        _ => Severity::Note,
    };
    let mut any = false;
    if let Some(vulns) = v.get("vulnerabilities").and_then(Value::as_object) {
        for (name, vu) in vulns.iter().take(10_000) {
            let title = vu
                .get("via")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find_map(|x| s(x, "title")))
                .unwrap_or("vulnerable dependency");
            sink.push(
                Diagnostic::new(Tool::Npm, sev_of(s(vu, "severity")), format!("{name}: {title}"), line).code("audit"),
            );
            any = true;
        }
    }
    if let Some(adv) = v.get("advisories").and_then(Value::as_object) {
        for (_, a) in adv.iter().take(10_000) {
            let module = s(a, "module_name").unwrap_or("package");
            let title = s(a, "title").unwrap_or("vulnerable dependency");
            sink.push(
                Diagnostic::new(Tool::Pnpm, sev_of(s(a, "severity")), format!("{module}: {title}"), line).code("audit"),
            );
            any = true;
        }
    }
    if any {
        sink.signal(FailureClass::Dependency, 3.0, 0);
    }
}

fn kube_score(it: &Value, line: usize, sink: &mut Sink<'_>) {
    let file = s(it, "file_name");
    let row = n(it, "file_row");
    let object = s(it, "object_name").unwrap_or("object");
    for c in it.get("checks").and_then(Value::as_array).into_iter().flatten().take(10_000) {
        let grade = c.get("grade").and_then(Value::as_i64).unwrap_or(10);
        if grade >= 10 || c.get("skipped").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let name = c.pointer("/check/name").and_then(Value::as_str).unwrap_or("check");
        let summary = c
            .get("comments")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find_map(|x| s(x, "summary")))
            .unwrap_or("");
        let sev = if grade <= 1 { Severity::Error } else { Severity::Warning };
        let mut d = Diagnostic::new(Tool::Kubernetes, sev, format!("{object}: {name}: {summary}"), line);
        if let Some(f) = file {
            d = d.at(f, row, None);
        }
        if let Some(id) = c.pointer("/check/id").and_then(Value::as_str) {
            d = d.code(id);
        }
        sink.push(d);
    }
}

fn trivy(results: &[Value], line: usize, sink: &mut Sink<'_>) {
    let sev_of = |x: Option<&str>| match x {
        Some("CRITICAL") | Some("HIGH") => Severity::Error,
        Some("MEDIUM") => Severity::Warning,
        _ => Severity::Note,
    };
    for r in results.iter().take(10_000) {
        let target = s(r, "Target").unwrap_or("");
        for m in r.get("Misconfigurations").and_then(Value::as_array).into_iter().flatten().take(10_000) {
            let msg = s(m, "Message").or(s(m, "Title")).unwrap_or("misconfiguration");
            let l = m.pointer("/CauseMetadata/StartLine").and_then(Value::as_i64).and_then(|x| u32::try_from(x).ok());
            let tool = if s(r, "Type").is_some_and(|t| t.eq_ignore_ascii_case("dockerfile")) {
                Tool::Hadolint
            } else {
                Tool::Terraform
            };
            let mut d = Diagnostic::new(tool, sev_of(s(m, "Severity")), msg, line).at(target, l, None);
            if let Some(id) = s(m, "ID") {
                d = d.code(id);
            }
            sink.push(d);
        }
        for vu in r.get("Vulnerabilities").and_then(Value::as_array).into_iter().flatten().take(10_000) {
            let msg =
                format!("{}: {}", s(vu, "PkgName").unwrap_or("package"), s(vu, "Title").unwrap_or("vulnerability"));
            let mut d = Diagnostic::new(Tool::Terraform, sev_of(s(vu, "Severity")), msg, line).at(target, None, None);
            if let Some(id) = s(vu, "VulnerabilityID") {
                d = d.code(id);
            }
            sink.push(d);
        }
    }
}
