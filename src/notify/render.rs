//! The Slack message of a run and the thread reply of an attempt, rendered from plain values. Pure.
//!
//! Block Kit (<https://api.slack.com/block-kit>): a `section` with the state, a `section` with
//! `fields` (repository, branch, class, agent, attempt n of N, pull request), a `section` with the
//! escalation reason or the last transition's message, and a `context` naming the run. The `text`
//! fallback says the same in one line; it ends with the run's [`marker`], which a restarted controller
//! looks for in the channel's history. Text is escaped as Slack's `mrkdwn` requires (`&`, `<`, `>`)
//! and bounded to Block Kit's limits (3000 characters a section, 2000 a field).

use serde_json::{Value, json};

use super::Message;

/// What a run's message shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSummary {
    /// `<namespace>/<name>`.
    pub key: String,
    /// The run's uid (in the marker).
    pub uid: String,
    /// `owner/name`.
    pub repository: String,
    /// The failing branch.
    pub branch: String,
    /// The failing commit.
    pub head_sha: String,
    /// The failing workflow and job, as `workflow / job`.
    pub job: Option<String>,
    /// A link to the failing job.
    pub job_url: Option<String>,
    /// The phase: `Queued`, `Running`, `Fixed`, `Escalated`, `Aborted`, `Denied`, `Resolved`, `Skipped`, `Rerun`.
    pub phase: String,
    /// Triage's class.
    pub failure_class: Option<String>,
    /// The agent profile.
    pub agent: Option<String>,
    /// The attempt running or run last.
    pub attempt: Option<i32>,
    /// The attempt budget (`policy.maxAttempts`, plus a retry's).
    pub max_attempts: i32,
    /// The fix pull request: `(number, url)`.
    pub pull_request: Option<(i64, String)>,
    /// Why the run was escalated.
    pub escalation_reason: Option<String>,
    /// The message of the run's last transition (why it was aborted, denied, skipped, …).
    pub message: Option<String>,
}

/// An attempt's thread reply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttemptNote {
    /// 1-based.
    pub number: i32,
    /// The attempt budget.
    pub max_attempts: i32,
    /// `None` when it started; its final phase (`Succeeded`, `Failed`) when it finished.
    pub finished: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    /// The verdict's summary.
    pub summary: Option<String>,
}

/// Escape `s` for Slack's `mrkdwn` (`&`, `<`, `>`), on one line, at most `max` characters.
pub fn escape(s: &str, max: usize) -> String {
    let mut out: String = s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    if out.chars().count() > max {
        out = out.chars().take(max.saturating_sub(1)).collect::<String>() + "…";
    }
    out
}

/// The text a restarted controller looks for in the channel's history: unique per run (its uid).
pub fn marker(key: &str, uid: &str) -> String {
    format!("ci-healer run {key} ({uid})")
}

/// The emoji and words of a phase.
pub fn headline(phase: &str) -> (&'static str, &'static str) {
    match phase {
        "Queued" => (":hourglass:", "Queued"),
        "Running" => (":hammer_and_wrench:", "Healing"),
        "Fixed" => (":white_check_mark:", "Fixed"),
        "Escalated" => (":rotating_light:", "Escalated to people"),
        "Aborted" => (":no_entry_sign:", "Aborted"),
        "Denied" => (":x:", "Denied by a reviewer"),
        "Resolved" => (":ballot_box_with_check:", "Resolved by a person"),
        "Skipped" => (":fast_forward:", "Skipped"),
        "Rerun" => (":repeat:", "Re-run requested"),
        _ => (":grey_question:", "Unknown"),
    }
}

fn attempt_text(r: &RunSummary) -> Option<String> {
    r.attempt.filter(|n| *n > 0).map(|n| format!("{n} of {}", r.max_attempts))
}

/// The run's one message. Pure.
pub fn run_message(r: &RunSummary) -> Message {
    let (emoji, words) = headline(&r.phase);
    let repo = escape(&r.repository, 200);
    let branch = escape(&r.branch, 200);
    let mut head = format!("{emoji} *{words}* · `{repo}` on `{branch}`");
    if let Some(j) = &r.job {
        let job = escape(j, 300);
        head.push_str(&match &r.job_url {
            Some(u) => format!(" · <{}|{job}>", escape(u, 500)),
            None => format!(" · {job}"),
        });
    }
    let mut fields = vec![
        format!("*Repository*\n{repo}"),
        format!("*Branch*\n{branch} @ {}", escape(&r.head_sha[..r.head_sha.len().min(7)], 7)),
    ];
    if let Some(c) = &r.failure_class {
        fields.push(format!("*Class*\n{}", escape(c, 100)));
    }
    if let Some(a) = &r.agent {
        fields.push(format!("*Agent*\n{}", escape(a, 100)));
    }
    if let Some(a) = attempt_text(r) {
        fields.push(format!("*Attempt*\n{a}"));
    }
    if let Some((n, url)) = &r.pull_request {
        fields.push(format!("*Pull request*\n<{}|#{n}>", escape(url, 500)));
    }
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": head}}),
        json!({"type": "section", "fields": fields.iter().map(|f| json!({"type": "mrkdwn", "text": f})).collect::<Vec<Value>>()}),
    ];
    let detail = match (&r.escalation_reason, &r.message) {
        (Some(e), _) if r.phase == "Escalated" => Some(format!("*Why:* {}", escape(e, 2800))),
        (_, Some(m)) if !m.is_empty() && !matches!(r.phase.as_str(), "Queued" | "Running") => Some(escape(m, 2900)),
        _ => None,
    };
    if let Some(d) = &detail {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": d}}));
    }
    let mark = marker(&r.key, &r.uid);
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(&mark, 2000)}]}));
    let mut text = format!("{words}: {} on {}", r.repository, r.branch);
    if let Some(c) = &r.failure_class {
        text.push_str(&format!(" ({c})"));
    }
    if let Some(a) = attempt_text(r) {
        text.push_str(&format!(", attempt {a}"));
    }
    if let Some((n, url)) = &r.pull_request {
        text.push_str(&format!(", pull request #{n} {url}"));
    }
    if r.phase == "Escalated"
        && let Some(e) = &r.escalation_reason
    {
        text.push_str(&format!(": {e}"));
    }
    text.push_str(&format!(" — {mark}"));
    Message { text: escape(&text, 3000), blocks }
}

/// An attempt's thread reply: started, or finished with its verdict. Pure.
pub fn attempt_message(a: &AttemptNote) -> Message {
    let text = match &a.finished {
        None => format!("Attempt {} of {} started", a.number, a.max_attempts),
        Some(phase) => {
            let mut t = format!("Attempt {} of {} {}", a.number, a.max_attempts, phase.to_lowercase());
            if let Some(r) = a.reason.as_deref().filter(|_| phase != "Succeeded") {
                t.push_str(&format!(" ({r})"));
            }
            if let Some(s) = &a.summary {
                t.push_str(&format!(": {s}"));
            }
            t
        }
    };
    let emoji = match a.finished.as_deref() {
        None => ":arrow_forward:",
        Some("Succeeded") => ":white_check_mark:",
        Some(_) => ":x:",
    };
    let text = escape(&text, 2900);
    Message {
        blocks: vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("{emoji} {text}")}})],
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunSummary {
        RunSummary {
            key: "team/gh-1".into(),
            uid: "0d6f".into(),
            repository: "octo-org/web".into(),
            branch: "feature/<x>".into(),
            head_sha: "3484a3fb816e0859".into(),
            job: Some("CI / lint".into()),
            job_url: Some("https://github.com/octo-org/web/actions/runs/1/job/2".into()),
            phase: "Running".into(),
            failure_class: Some("rust_fmt".into()),
            agent: Some("rust".into()),
            attempt: Some(2),
            max_attempts: 3,
            ..Default::default()
        }
    }

    #[test]
    fn the_message_shows_every_field_escaped_and_ends_with_the_marker() {
        let m = run_message(&run());
        assert_eq!(
            m.text,
            "Healing: octo-org/web on feature/&lt;x&gt; (rust_fmt), attempt 2 of 3 — ci-healer run team/gh-1 (0d6f)"
        );
        let fields = m.blocks[1]["fields"].as_array().unwrap();
        let texts: Vec<&str> = fields.iter().map(|f| f["text"].as_str().unwrap()).collect();
        assert_eq!(
            texts,
            [
                "*Repository*\nocto-org/web",
                "*Branch*\nfeature/&lt;x&gt; @ 3484a3f",
                "*Class*\nrust_fmt",
                "*Agent*\nrust",
                "*Attempt*\n2 of 3"
            ]
        );
        assert!(
            m.blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("<https://github.com/octo-org/web/actions/runs/1/job/2|CI / lint>")
        );
        assert_eq!(m.blocks.last().unwrap()["type"], "context");
    }

    #[test]
    fn escalation_and_pull_request_are_shown() {
        let mut r = run();
        r.phase = "Escalated".into();
        r.escalation_reason = Some("all 3 attempts failed".into());
        let m = run_message(&r);
        assert!(m.text.contains(": all 3 attempts failed — "), "{}", m.text);
        assert_eq!(m.blocks[2]["text"]["text"], "*Why:* all 3 attempts failed");
        r.phase = "Fixed".into();
        r.pull_request = Some((7, "https://github.com/octo-org/web/pull/7".into()));
        let m = run_message(&r);
        assert!(
            m.text.starts_with("Fixed: ") && m.text.contains("pull request #7 https://github.com/octo-org/web/pull/7")
        );
    }

    #[test]
    fn attempt_replies_say_started_and_the_verdict() {
        let mut a = AttemptNote { number: 1, max_attempts: 3, ..Default::default() };
        assert_eq!(attempt_message(&a).text, "Attempt 1 of 3 started");
        a.finished = Some("Failed".into());
        a.reason = Some("ValidationFailed".into());
        a.summary = Some("cargo fmt --check still fails".into());
        assert_eq!(attempt_message(&a).text, "Attempt 1 of 3 failed (ValidationFailed): cargo fmt --check still fails");
        assert_eq!(escape(&"x".repeat(10), 5), "xxxx…");
    }
}
