//! Reading a raw CI log: decoding, cleaning, GitHub Actions markers, steps and the failing step.
//!
//! Understood layouts:
//! - plain text (any tool's output);
//! - the GitHub Actions raw job log: every line prefixed by an RFC 3339 timestamp with 7 fractional
//!   digits and a space (`2024-01-01T10:00:00.1234567Z `), workflow commands rendered as
//!   `##[group]`, `##[endgroup]`, `##[error]`, `##[warning]`, `##[notice]`, `##[debug]`,
//!   `##[command]`; each step's header is a group named `Run <action or first script line>`, and
//!   `Post job cleanup.` opens the post steps;
//! - `gh run view --log` output: `<job>\t<step>\t<timestamp> <text>` per line.
//!
//! Cleaning removes the timestamp, ANSI escape sequences (CSI, OSC, two-byte escapes), other C0/C1
//! control characters except tab, and everything up to the last carriage return of a line
//! (progress bars overwrite themselves).

use std::borrow::Cow;
use std::ops::Range;

use super::Limits;

/// The decoded, possibly truncated, log text and notes about what could not be read.
#[derive(Debug)]
pub struct Decoded<'a> {
    /// The scanned part of the log as UTF-8 (invalid sequences replaced by U+FFFD).
    pub text: Cow<'a, str>,
    /// Human-readable notes about skipped or replaced input (see [`super::TriageResult::unreadable`]).
    pub notes: Vec<String>,
    /// Number of lines skipped before `text` (so `text`'s first line is line `skipped_lines + 1`).
    pub skipped_lines: usize,
}

/// Decode `bytes`: keep the last `limits.max_scan_bytes` (starting at a line boundary when one is
/// near), replace invalid UTF-8, and note binary content. Never fails.
pub fn decode<'a>(bytes: &'a [u8], limits: &Limits) -> Decoded<'a> {
    let mut notes = Vec::new();
    let mut start = 0;
    let mut skipped_lines = 0;
    if bytes.len() > limits.max_scan_bytes {
        start = bytes.len() - limits.max_scan_bytes;
        // Start on a line boundary if one is within a line's length.
        let probe_end = (start + limits.max_line_bytes).min(bytes.len());
        if let Some(nl) = memchr::memchr(b'\n', &bytes[start..probe_end]) {
            start += nl + 1;
        }
        skipped_lines = memchr::memchr_iter(b'\n', &bytes[..start]).count();
        notes.push(format!(
            "log truncated: scanned the last {} of {} bytes ({} lines skipped)",
            bytes.len() - start,
            bytes.len(),
            skipped_lines
        ));
    }
    let window = &bytes[start..];
    let nuls = memchr::memchr_iter(0, window).count();
    if nuls > 0 {
        notes.push(format!("binary content: {nuls} NUL bytes removed"));
    }
    let text = match std::str::from_utf8(window) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(window),
    };
    if let Cow::Owned(s) = &text {
        let replaced = s.matches('\u{FFFD}').count() - count_literal_replacement(window);
        notes.push(format!("invalid UTF-8: {replaced} sequences replaced with U+FFFD"));
    }
    Decoded { text, notes, skipped_lines }
}

/// U+FFFD characters that were already in the input (so they are not counted as invalid input).
fn count_literal_replacement(bytes: &[u8]) -> usize {
    memchr::memmem::find_iter(bytes, "\u{FFFD}".as_bytes()).count()
}

/// A GitHub Actions workflow-command marker at the start of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// No marker.
    None,
    /// `##[error]`: an error annotation (or the step's `Process completed with exit code N.`).
    Error,
    /// `##[warning]`.
    Warning,
    /// `##[notice]`.
    Notice,
    /// `##[group]`: a collapsible group starts; `Run …` groups start steps.
    Group,
    /// `##[endgroup]`.
    EndGroup,
    /// `##[command]` or `[command]`: a command the runner executed.
    Command,
    /// `##[debug]`.
    Debug,
}

/// One cleaned log line.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// The text without timestamp, marker, ANSI or control characters; at most `max_line_bytes`.
    pub text: Cow<'a, str>,
    /// 1-based line number in the original log.
    pub number: usize,
    /// Byte offset of the raw line in the decoded text.
    pub start: usize,
    /// The workflow-command marker, if any.
    pub marker: Marker,
    /// Index into [`Log::steps`], or `u32::MAX` when the log has no steps.
    pub step: u32,
}

/// A step of a GitHub Actions job log.
#[derive(Debug, Clone)]
pub struct Step {
    /// `Run <command>` / `Run <owner/action@ref>` / `Post job cleanup` / the `gh` step column.
    pub name: String,
    /// Line indices (into [`Log::lines`]) of the step, header included.
    pub lines: Range<usize>,
    /// Line indices of the header group (`##[group]Run …` to `##[endgroup]`): the script and env.
    pub header: Range<usize>,
    /// Number of `##[error]` lines in the step.
    pub errors: usize,
    /// A post step (`Post job cleanup.`, `Post Run …`).
    pub post: bool,
}

/// The layout a log was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Anything else.
    Plain,
    /// Timestamped GitHub Actions raw log.
    GithubActions,
    /// `gh run view --log`: job and step columns before the timestamp.
    GhCli,
}

/// A parsed log: cleaned lines and steps.
#[derive(Debug)]
pub struct Log<'a> {
    /// The cleaned lines, in log order.
    pub lines: Vec<Line<'a>>,
    /// The job's steps (empty for a plain log).
    pub steps: Vec<Step>,
    /// The layout the log was recognised as.
    pub format: LogFormat,
    /// The step holding the last `##[error]` (not a post step), if any.
    pub failing_step: Option<usize>,
    /// Notes about lines that were cut.
    pub notes: Vec<String>,
}

impl<'a> Log<'a> {
    /// Split and clean `text` (from [`decode`]). Linear in `text.len()`.
    pub fn parse(text: &'a str, limits: &Limits) -> Self {
        Self::parse_from(text, limits, 0)
    }

    /// [`Log::parse`] for a text whose first line is line `skipped_lines + 1` of the original log.
    pub fn parse_from(text: &'a str, limits: &Limits, skipped_lines: usize) -> Self {
        let format = detect_format(text);
        let mut lines = Vec::with_capacity(text.len() / 64 + 1);
        let mut steps: Vec<Step> = Vec::new();
        let mut cut = 0usize;
        let mut in_header = false;
        let mut gh_step: Option<&str> = None;
        let text = text.strip_suffix('\n').unwrap_or(text);
        // Controls other than tab, CR, LF and ESC are rare: when the text has none, lines without
        // ESC need no cleaning scan.
        let rare_controls = text.bytes().fold(false, |acc, c| {
            acc | ((c < 0x20) & (c != b'\t') & (c != b'\n') & (c != b'\r') & (c != 0x1b)) | (c == 0x7f) | (c == 0xC2)
        });
        let mut offset = 0usize;
        let bytes = text.as_bytes();
        let mut line_start = 0usize;
        let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
        for (i, end) in ends.enumerate() {
            // `\n` is ASCII, so both ends are char boundaries.
            let raw = &text[line_start..end];
            line_start = end + 1;
            let number = skipped_lines + i + 1;
            let raw_len = raw.len();
            // Every trailing carriage return ends the line (`\r\n`, and `\r\r\n` from a CRLF
            // writer behind a terminal that adds its own `\r`).
            let mut raw = raw.trim_end_matches('\r');
            // Carriage returns inside overwrite the line (progress bars): keep the last segment,
            // before the length cut so a long progress line keeps its final state.
            if let Some(cr) = memchr::memrchr(b'\r', raw.as_bytes()) {
                raw = &raw[cr + 1..];
            }
            if raw.len() > limits.max_line_bytes {
                raw = &raw[..floor_char_boundary(raw, limits.max_line_bytes)];
                cut += 1;
            }
            let mut step_col = None;
            if format == LogFormat::GhCli
                && let Some((step, rest)) = split_gh_cli(raw)
            {
                step_col = Some(step);
                raw = rest;
            }
            let (text, marker) = clean_line_with(raw, rare_controls, false);
            let idx = lines.len();
            // Steps.
            let starts_step = match (format, step_col) {
                (LogFormat::GhCli, Some(s)) => {
                    let new = gh_step != Some(s);
                    gh_step = Some(s);
                    new.then(|| s.to_string())
                }
                _ => {
                    if marker == Marker::Group && text.starts_with("Run ") {
                        Some(text.to_string())
                    } else if marker == Marker::None && text == "Post job cleanup." {
                        Some("Post job cleanup".to_string())
                    } else {
                        None
                    }
                }
            };
            if let Some(name) = starts_step {
                if let Some(last) = steps.last_mut() {
                    last.lines.end = idx;
                    if last.header.end > idx {
                        last.header.end = idx;
                    }
                }
                let post = name.starts_with("Post ") || name == "Post job cleanup" || name == "Complete job";
                in_header = marker == Marker::Group;
                let header_end = if in_header { usize::MAX } else { idx + 1 };
                steps.push(Step { name, lines: idx..usize::MAX, header: idx..header_end, errors: 0, post });
            } else if in_header && marker == Marker::EndGroup {
                in_header = false;
                if let Some(last) = steps.last_mut() {
                    last.header.end = idx + 1;
                }
            }
            if marker == Marker::Error
                && let Some(last) = steps.last_mut()
            {
                last.errors += 1;
            }
            let step = if steps.is_empty() { u32::MAX } else { (steps.len() - 1) as u32 };
            lines.push(Line { text, number, start: offset, marker, step });
            offset += raw_len + 1;
        }
        let n = lines.len();
        for s in &mut steps {
            if s.lines.end > n {
                s.lines.end = n;
            }
            if s.header.end > s.lines.end {
                s.header.end = s.lines.end;
            }
        }
        let failing_step = steps.iter().rposition(|s| s.errors > 0 && !s.post);
        let mut notes = Vec::new();
        if cut > 0 {
            notes.push(format!("{cut} lines longer than {} bytes were cut", limits.max_line_bytes));
        }
        Log { lines, steps, format, failing_step, notes }
    }

    /// The step to focus on: the one whose name matches a failed step reported by GitHub, else the
    /// step holding the last `##[error]`.
    pub fn focus_step(&self, failed_steps: &[String]) -> Option<usize> {
        for f in failed_steps {
            let f = f.trim();
            if f.is_empty() {
                continue;
            }
            if let Some(i) = self.steps.iter().rposition(|s| s.name.eq_ignore_ascii_case(f)) {
                return Some(i);
            }
            if let Some(i) =
                self.steps.iter().rposition(|s| s.name.len() > 4 && (s.name.contains(f) || f.contains(s.name.as_str())))
            {
                return Some(i);
            }
        }
        self.failing_step
    }
}

fn detect_format(text: &str) -> LogFormat {
    for line in text.lines().filter(|l| !l.trim().is_empty()).take(20) {
        if split_gh_cli(line).is_some() {
            return LogFormat::GhCli;
        }
        if timestamp_len(line.as_bytes()) > 0 {
            return LogFormat::GithubActions;
        }
    }
    LogFormat::Plain
}

/// `job\tstep\t<timestamp> rest` → `(step, "<timestamp> rest")`.
fn split_gh_cli(line: &str) -> Option<(&str, &str)> {
    let t1 = memchr::memchr(b'\t', line.as_bytes())?;
    let t2 = t1 + 1 + memchr::memchr(b'\t', &line.as_bytes()[t1 + 1..])?;
    let rest = &line[t2 + 1..];
    (timestamp_len(rest.as_bytes()) > 0).then(|| (&line[t1 + 1..t2], rest))
}

/// Length of a leading `YYYY-MM-DDTHH:MM:SS(.fraction)?Z ` timestamp, or 0.
pub fn timestamp_len(b: &[u8]) -> usize {
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < SHAPE.len() + 2 {
        return 0;
    }
    for (c, s) in b.iter().zip(SHAPE) {
        let ok = if *s == b'd' { c.is_ascii_digit() } else { c == s };
        if !ok {
            return 0;
        }
    }
    let mut i = SHAPE.len();
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if b.get(i) != Some(&b'Z') {
        return 0;
    }
    i += 1;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// The text triage shows for one raw log line: without the `gh run view --log` job/step columns,
/// timestamp, marker, ANSI and control characters (as in the excerpt).
pub fn display_text(raw: &str) -> String {
    let raw = split_gh_cli(raw).map_or(raw, |(_, rest)| rest);
    clean_line(raw).0.into_owned()
}

/// Clean one raw line: timestamp, marker, carriage returns, ANSI and control characters.
pub fn clean_line(raw: &str) -> (Cow<'_, str>, Marker) {
    clean_line_with(raw, true, true)
}

/// [`clean_line`]; `rare_controls: false` promises the line has no control characters other than
/// tab, CR and ESC (and no C1 controls), which makes the scan a `memchr`.
/// `carriage_returns: false` promises the caller already kept only the last `\r` segment.
fn clean_line_with(raw: &str, rare_controls: bool, carriage_returns: bool) -> (Cow<'_, str>, Marker) {
    let mut s = raw.trim_end_matches('\r');
    let ts = timestamp_len(s.as_bytes());
    s = &s[ts..];
    if carriage_returns && let Some(cr) = memchr::memrchr(b'\r', s.as_bytes()) {
        s = &s[cr + 1..];
    }
    let text = if rare_controls || memchr::memchr(0x1b, s.as_bytes()).is_some() {
        strip_controls(s)
    } else {
        Cow::Borrowed(s)
    };
    let (marker, skip) = marker_of(&text);
    let text = match text {
        Cow::Borrowed(b) => Cow::Borrowed(&b[skip..]),
        Cow::Owned(mut o) => {
            o.drain(..skip);
            Cow::Owned(o)
        }
    };
    (text, marker)
}

fn marker_of(s: &str) -> (Marker, usize) {
    if let Some(rest) = s.strip_prefix("##[")
        && let Some(end) = rest.find(']')
    {
        let m = match &rest[..end] {
            "error" => Marker::Error,
            "warning" => Marker::Warning,
            "notice" => Marker::Notice,
            "group" => Marker::Group,
            "endgroup" => Marker::EndGroup,
            "command" => Marker::Command,
            "debug" => Marker::Debug,
            _ => return (Marker::None, 0),
        };
        return (m, 3 + end + 1);
    }
    if s.starts_with("[command]") {
        return (Marker::Command, "[command]".len());
    }
    (Marker::None, 0)
}

/// Remove ANSI escape sequences and control characters (keeps tab). Borrows when nothing to remove.
pub fn strip_controls(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    let dirty = b.iter().enumerate().any(|(i, &c)| {
        (c < 0x20 && c != b'\t') || c == 0x7f || (c == 0xC2 && b.get(i + 1).is_some_and(|n| (0x80..=0x9F).contains(n)))
    });
    if !dirty {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                // CSI: ESC [ parameters intermediates final (0x40..=0x7E).
                Some('[') => {
                    chars.next();
                    for n in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&n) {
                            break;
                        }
                    }
                }
                // OSC / DCS / PM / APC: up to BEL or ESC \.
                Some(']') | Some('P') | Some('^') | Some('_') => {
                    chars.next();
                    while let Some(n) = chars.next() {
                        if n == '\u{7}' {
                            break;
                        }
                        if n == '\u{1b}' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\u{9b}' => {
                for n in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&n) {
                        break;
                    }
                }
            }
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The largest index `<= max` that is a char boundary of `s`.
pub fn floor_char_boundary(s: &str, max: usize) -> usize {
    if max >= s.len() {
        return s.len();
    }
    let mut i = max;
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_timestamps_markers_and_ansi() {
        let (t, m) = clean_line("2024-01-01T10:00:00.1234567Z ##[error]\u{1b}[31mboom\u{1b}[0m\r");
        assert_eq!((t.as_ref(), m), ("boom", Marker::Error));
        let (t, m) = clean_line("50%\r75%\r100% done");
        assert_eq!((t.as_ref(), m), ("100% done", Marker::None));
        let (t, _) = clean_line("a\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{7}\u{0}b");
        assert_eq!(t, "alinkb");
    }

    #[test]
    fn cr_cr_lf_line_endings_keep_their_text() {
        // A CRLF writer behind a pty (Windows runners, `script`): every line ends in `\r\r\n`.
        let text = "2024-01-01T10:00:00.0000000Z ##[group]Run npm test\r\r\n\
            2024-01-01T10:00:00.0000000Z ##[endgroup]\r\r\n\
            2024-01-01T10:00:01.0000000Z   1) Array\r\r\n\
            50%\r100% AssertionError: expected 1 to equal 2\r\r\n\
            ##[error]Process completed with exit code 1.\r\r\n";
        let log = Log::parse(text, &Limits::default());
        let texts: Vec<&str> = log.lines.iter().map(|l| l.text.as_ref()).collect();
        assert_eq!(
            texts,
            [
                "Run npm test",
                "",
                "  1) Array",
                "100% AssertionError: expected 1 to equal 2",
                "Process completed with exit code 1."
            ]
        );
        assert_eq!(log.steps.len(), 1);
        assert_eq!(log.failing_step, Some(0));
        assert_eq!(clean_line("boom\r\r").0, "boom");
        assert_eq!(display_text("x\r\r"), "x");
    }

    #[test]
    fn finds_steps_and_failing_step() {
        let text = "2024-01-01T10:00:00.0000000Z ##[group]Run actions/checkout@v4\n\
            2024-01-01T10:00:00.0000000Z with: x\n\
            2024-01-01T10:00:00.0000000Z ##[endgroup]\n\
            2024-01-01T10:00:01.0000000Z ##[group]Run cargo test\n\
            2024-01-01T10:00:01.0000000Z cargo test\n\
            2024-01-01T10:00:01.0000000Z ##[endgroup]\n\
            2024-01-01T10:00:02.0000000Z test result: FAILED\n\
            2024-01-01T10:00:02.0000000Z ##[error]Process completed with exit code 101.\n\
            2024-01-01T10:00:03.0000000Z Post job cleanup.\n";
        let log = Log::parse(text, &Limits::default());
        assert_eq!(log.format, LogFormat::GithubActions);
        assert_eq!(log.steps.len(), 3);
        assert_eq!(log.failing_step, Some(1));
        assert_eq!(log.steps[1].name, "Run cargo test");
        assert_eq!(log.steps[1].lines, 3..8);
        assert_eq!(log.steps[1].header, 3..6);
        assert_eq!(log.lines[6].text, "test result: FAILED");
        assert_eq!(log.lines[6].number, 7);
    }

    #[test]
    fn gh_cli_columns_are_steps() {
        let text = "build\tSet up job\t2021-12-01T13:01:04.3785538Z hello\n\
            build\tbuild cidiff\t2021-12-01T13:01:04.3785538Z > Task :test FAILED\n\
            build\tbuild cidiff\t2021-12-01T13:01:04.7408115Z ##[error]Process completed with exit code 1.\n";
        let log = Log::parse(text, &Limits::default());
        assert_eq!(log.format, LogFormat::GhCli);
        assert_eq!(log.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["Set up job", "build cidiff"]);
        assert_eq!(log.failing_step, Some(1));
        assert_eq!(log.lines[1].text, "> Task :test FAILED");
    }
}
