//! The excerpt given to agents: at most `max_bytes` bytes of UTF-8 text, no ANSI or control
//! characters except newline and tab. Layout:
//!
//! ```text
//! failing step: Run cargo test
//! command:
//!   cargo test --all
//! diagnostics: 2 errors, 1 warning
//!   error rustc[E0308] src/main.rs:4:18: mismatched types
//! --- log lines 120-135 ---
//! <cleaned log lines around the failure>
//! ```
//!
//! The log blocks are built around the lines that look most like the failure (diagnostics, `##[error]`
//! markers, failure keywords; never CI-runner boilerplate, see [`super::boilerplate`]), preferring
//! the failing step, widened upwards over the lines that lead into them and downwards over indented
//! continuation lines (stack traces, rustc snippets), merged, and chosen by score until the budget is
//! spent; the blocks of the first and the last failure come first.

use std::fmt::Write;

use super::extract::{Log, Marker};
use super::parsers::{Parsed, Severity};

/// Lines of context before an anchor.
const BEFORE: usize = 2;
/// Lines of context after an anchor (before continuation lines are followed).
const AFTER: usize = 3;
/// A block follows continuation lines for at most this many lines.
const MAX_BLOCK: usize = 60;
/// Longer lines are cut in the excerpt.
const MAX_EXCERPT_LINE: usize = 2048;
/// Anchors need at least this score (see [`Parsed::line_scores`]).
const MIN_ANCHOR: u8 = 3;
/// A block is widened upwards over at most this many more non-blank lines that lead into its
/// anchor (a failing test's title above its assertion, a task header above its error).
const LEAD_IN: usize = 8;
/// Extra score of the blocks holding the first and the last anchor: a long log's budget goes to
/// its first failure (often the cause) and its last (the summary) before the ones between.
const FIRST_LAST_BONUS: f32 = 4.0;

struct Block {
    start: usize,
    end: usize,
    score: f32,
}

fn push_line(out: &mut String, text: &str) {
    let cut = super::extract::floor_char_boundary(text, MAX_EXCERPT_LINE);
    out.push_str(&text[..cut]);
    if cut < text.len() {
        out.push('…');
    }
    out.push('\n');
}

fn line_cost(text: &str) -> usize {
    text.len().min(MAX_EXCERPT_LINE + 3) + 1
}

fn is_continuation(t: &str) -> bool {
    t.starts_with(' ')
        || t.starts_with('\t')
        || t.starts_with("at ")
        || t.starts_with("Caused by")
        || t.starts_with('|')
}

/// Build the excerpt. `focus` indexes `log.steps`.
pub fn build(
    log: &Log<'_>,
    parsed: &Parsed,
    focus: Option<usize>,
    failing_step: Option<&str>,
    max_bytes: usize,
) -> String {
    let mut out = String::new();
    if let Some(step) = failing_step {
        let _ = writeln!(out, "failing step: {}", truncate(step, 512));
    }
    // The failing step's command (the header group's lines after the `Run …` line).
    if let Some(i) = focus {
        let step = &log.steps[i];
        let header: Vec<&str> = (step.header.start + 1..step.header.end)
            .map(|j| log.lines[j].text.as_ref())
            .take_while(|t| !t.starts_with("shell: "))
            .filter(|t| !t.trim().is_empty())
            .take(20)
            .collect();
        if !header.is_empty() {
            out.push_str("command:\n");
            let mut used = 0;
            for h in header {
                used += h.len();
                if used > 2048 {
                    break;
                }
                out.push_str("  ");
                push_line(&mut out, h);
            }
        }
    }
    diagnostics_section(&mut out, parsed, max_bytes / 4);
    let budget = max_bytes.saturating_sub(out.len());
    blocks_section(&mut out, log, parsed, focus, budget);
    if out.len() > max_bytes {
        let cut = super::extract::floor_char_boundary(&out, max_bytes);
        out.truncate(cut);
    }
    out
}

fn truncate(s: &str, max: usize) -> &str {
    &s[..super::extract::floor_char_boundary(s, max)]
}

fn diagnostics_section(out: &mut String, parsed: &Parsed, budget: usize) {
    let diags = &parsed.diagnostics;
    if diags.is_empty() {
        return;
    }
    let errors = diags.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = diags.iter().filter(|d| d.severity == Severity::Warning).count();
    let start = out.len();
    let _ =
        writeln!(out, "diagnostics: {errors} errors, {warnings} warnings, {} notes", diags.len() - errors - warnings);
    let mut order: Vec<usize> = (0..diags.len()).collect();
    order.sort_by_key(|&i| (diags[i].severity, i));
    let mut shown = 0;
    for &i in &order {
        let d = &diags[i];
        let mut line = String::new();
        let sev = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        let _ = write!(line, "  {sev} {}", d.tool.as_str());
        if let Some(c) = &d.code {
            let _ = write!(line, "[{}]", truncate(c, 200));
        }
        if let Some(f) = &d.file {
            let _ = write!(line, " {}", truncate(f, 512));
            if let Some(l) = d.line {
                let _ = write!(line, ":{l}");
                if let Some(c) = d.column {
                    let _ = write!(line, ":{c}");
                }
            }
        }
        let _ = write!(line, ": {} (log line {})", d.message, d.log_line);
        if out.len() - start + line.len() + 40 > budget {
            break;
        }
        out.push_str(&line);
        out.push('\n');
        shown += 1;
    }
    if shown < diags.len() {
        let _ = writeln!(out, "  … {} more", diags.len() - shown);
    }
}

fn blocks_section(out: &mut String, log: &Log<'_>, parsed: &Parsed, focus: Option<usize>, budget: usize) {
    let n = log.lines.len();
    if n == 0 || budget < 64 {
        return;
    }
    let scores = &parsed.line_scores;
    let (region, header) = match focus {
        Some(i) => (log.steps[i].lines.clone(), log.steps[i].header.clone()),
        None => (0..n, 0..0),
    };
    let anchor = |i: usize| {
        scores.get(i).copied().unwrap_or(0) >= MIN_ANCHOR
            && !header.contains(&i)
            && !log.lines[i].text.trim().is_empty()
    };
    let mut anchors: Vec<usize> = region.clone().filter(|&i| anchor(i)).collect();
    let mut outside: Vec<usize> = Vec::new();
    if focus.is_some() {
        // Errors outside the failing step (e.g. an earlier step's output) count, but less.
        outside = (0..n).filter(|&i| !region.contains(&i) && anchor(i) && scores[i] >= 8).collect();
    }
    // The failing step's last lines (the summary before `Process completed with exit code`).
    let mut tail = Vec::new();
    let mut j = region.end;
    while j > region.start && tail.len() < 6 {
        j -= 1;
        let l = &log.lines[j];
        if header.contains(&j) {
            break;
        }
        if !l.text.trim().is_empty() && l.marker != Marker::EndGroup {
            tail.push(j);
        }
    }
    if anchors.is_empty() && focus.is_none() {
        // Nothing looks like a failure: the end of the log.
        anchors.extend(tail.iter().copied());
    }
    let mut blocks: Vec<Block> = Vec::new();
    let make = |a: usize, weight: f32| -> Block {
        // Blocks stay inside the failing step when the anchor is in it.
        let (lo, hi) = if region.contains(&a) { (region.start, region.end) } else { (0, n) };
        let mut start = a.saturating_sub(BEFORE).max(lo);
        // Lead-in: the non-blank lines right above, up to a blank line.
        let mut lead = 0;
        while start > lo
            && lead < LEAD_IN
            && !log.lines[start - 1].text.trim().is_empty()
            && !header.contains(&(start - 1))
        {
            start -= 1;
            lead += 1;
        }
        let mut end = (a + 1 + AFTER).min(hi);
        // Follow indented continuations (stack traces, snippets), across single blank lines.
        while end < hi && end - a < MAX_BLOCK {
            let t: &str = &log.lines[end].text;
            let blank_then_more = t.trim().is_empty() && end + 1 < hi && is_continuation(&log.lines[end + 1].text);
            if !(is_continuation(t) || blank_then_more) {
                break;
            }
            end += 1;
        }
        let recency = if n > 0 { a as f32 / n as f32 } else { 0.0 };
        Block { start, end, score: f32::from(scores.get(a).copied().unwrap_or(0)) * weight + recency }
    };
    let (first, last) = (anchors.first().copied(), anchors.last().copied());
    for &a in &anchors {
        let mut b = make(a, 1.0);
        if Some(a) == first || Some(a) == last {
            b.score += FIRST_LAST_BONUS;
        }
        blocks.push(b);
    }
    for &a in &outside {
        blocks.push(make(a, 0.5));
    }
    if let (Some(&last), Some(&first)) = (tail.first(), tail.last()) {
        blocks.push(Block { start: first, end: last + 1, score: 9.0 });
    }
    // Merge overlapping or adjacent blocks.
    blocks.sort_by_key(|b| b.start);
    let mut merged: Vec<Block> = Vec::new();
    for b in blocks {
        match merged.last_mut() {
            Some(m) if b.start <= m.end + 1 => {
                m.end = m.end.max(b.end);
                m.score = m.score.max(b.score) + 0.05;
            }
            _ => merged.push(b),
        }
    }
    // Choose by score within the budget.
    let cost = |b: &Block| -> usize { 32 + (b.start..b.end).map(|i| line_cost(&log.lines[i].text)).sum::<usize>() };
    let mut order: Vec<usize> = (0..merged.len()).collect();
    order.sort_by(|&a, &b| merged[b].score.total_cmp(&merged[a].score).then(b.cmp(&a)));
    let mut chosen: Vec<(usize, usize)> = Vec::new();
    let mut left = budget;
    for i in order {
        let b = &merged[i];
        let c = cost(b);
        if c <= left {
            chosen.push((b.start, b.end));
            left -= c;
        } else if left > 256 {
            // Take the start of the block that fits.
            let mut end = b.start;
            let mut used = 32;
            while end < b.end && used + line_cost(&log.lines[end].text) <= left {
                used += line_cost(&log.lines[end].text);
                end += 1;
            }
            if end > b.start {
                chosen.push((b.start, end));
                left -= used;
            }
        }
        if left < 64 {
            break;
        }
    }
    chosen.sort();
    for (s, e) in chosen {
        let _ = writeln!(out, "--- log lines {}-{} ---", log.lines[s].number, log.lines[e - 1].number);
        for l in &log.lines[s..e] {
            push_line(out, &l.text);
        }
    }
}
