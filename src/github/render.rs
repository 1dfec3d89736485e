//! What people read on GitHub, rendered from the run's state: the check run's output, the one pull
//! request comment, and the fix pull request's title, body and commit message. Pure; GitHub's size
//! limits (65536 characters for a comment or a check run's text) are respected.

use super::{CheckOutput, CheckState};

/// GitHub's limit on a comment body and a check run summary or text, in characters.
pub const MAX_MARKDOWN: usize = 65_000;

/// One attempt, as the reports list it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttemptRow {
    /// 1-based.
    pub number: i32,
    /// `Pending`, `Running`, `Succeeded`, `Failed`.
    pub phase: String,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// The verdict's summary.
    pub summary: Option<String>,
    /// LLM tokens it used.
    pub tokens: Option<i64>,
}

/// The run, as the reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunView {
    /// `<namespace>/<name>`.
    pub key: String,
    /// `owner/name`.
    pub repository: String,
    /// The failing branch.
    pub branch: String,
    /// The failing commit.
    pub head_sha: String,
    /// The workflow's name.
    pub workflow: Option<String>,
    /// The job's name.
    pub job: Option<String>,
    /// The failing step.
    pub step: Option<String>,
    /// A link to the failing job.
    pub job_url: Option<String>,
    /// `Queued`, `Running`, `Fixed`, `Escalated`, `Aborted`, `Denied`, `Resolved`, `Skipped`, `Rerun`.
    pub phase: String,
    /// The reason of the run's last transition.
    pub reason: Option<String>,
    /// Its message.
    pub message: Option<String>,
    /// Triage's class.
    pub failure_class: Option<String>,
    /// The agent's diagnosis of the passing attempt.
    pub diagnosis: Option<String>,
    /// The attempts so far.
    pub attempts: Vec<AttemptRow>,
    /// The run's attempt limit.
    pub max_attempts: i32,
    /// `(files, insertions, deletions)` of the kept patch.
    pub diffstat: Option<(i64, i64, i64)>,
    /// The validation commands that passed.
    pub validation_commands: Vec<String>,
    /// The fix pull request: `(number, url)`.
    pub pull_request: Option<(i64, String)>,
    /// The kept patch, shown in `propose` mode.
    pub patch: Option<String>,
    /// `propose` or `pull-request`.
    pub mode: String,
    /// The patch is also on the pull request's diff as GitHub suggestion blocks (a review).
    pub suggested: bool,
    /// The fix pull request is opened ready for review (auto-approved), not as a draft.
    pub ready: bool,
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// Escape text for a Markdown table cell or a line.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ").replace('<', "&lt;")
}

/// A fenced block that its content cannot close.
fn fenced(lang: &str, body: &str) -> String {
    let mut fence = "```".to_string();
    while body.contains(&fence) {
        fence.push('`');
    }
    format!("{fence}{lang}\n{}\n{fence}\n", body.trim_end_matches('\n'))
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(80)).collect();
    out.push_str("\n\n… (cut to GitHub's size limit)\n");
    out
}

fn what_failed(v: &RunView) -> String {
    let mut parts = Vec::new();
    if let Some(w) = &v.workflow {
        parts.push(format!("workflow **{}**", md(w)));
    }
    if let Some(j) = &v.job {
        parts.push(match &v.job_url {
            Some(u) => format!("job [**{}**]({u})", md(j)),
            None => format!("job **{}**", md(j)),
        });
    }
    if let Some(s) = &v.step {
        parts.push(format!("step **{}**", md(s)));
    }
    let head = if parts.is_empty() { "CI".to_string() } else { parts.join(", ") };
    format!("{head} on `{}` at `{}`", md(&v.branch), short(&v.head_sha))
}

fn attempts_table(v: &RunView) -> String {
    if v.attempts.is_empty() {
        return String::new();
    }
    let mut t = String::from("| attempt | result | reason | tokens |\n|---|---|---|---|\n");
    for a in &v.attempts {
        t.push_str(&format!(
            "| {} of {} | {} | {} | {} |\n",
            a.number,
            v.max_attempts,
            md(&a.phase),
            md(a.reason.as_deref().or(a.summary.as_deref()).unwrap_or("")),
            a.tokens.map(|t| t.to_string()).unwrap_or_else(|| "–".into())
        ));
    }
    t
}

fn diffstat(v: &RunView) -> Option<String> {
    v.diffstat.map(|(f, i, d)| format!("{f} file{} changed, +{i} −{d}", if f == 1 { "" } else { "s" }))
}

fn how_to_act(v: &RunView) -> String {
    let (ns, name) = v.key.split_once('/').unwrap_or(("", &v.key));
    format!(
        "To stop this run: `kubectl patch hrun {name} -n {ns} --type merge -p '{{\"spec\":{{\"action\":\"abort\"}}}}'`; \
         `kubectl describe hrun {name} -n {ns}` shows why it is where it is. People with write access may \
         also comment `/healer approve`, `/healer deny <reason>`, `/healer retry <hint>`, `/healer abort` or \
         `/healer resolve` (`/healer help` lists them)."
    )
}

/// The headline of the run's current state.
pub fn headline(v: &RunView) -> String {
    let attempt = v.attempts.last().map(|a| a.number).unwrap_or(0);
    match v.phase.as_str() {
        "Queued" => "ci-healer is looking at this failure".into(),
        "Running" => format!("ci-healer is healing this failure (attempt {attempt} of {})", v.max_attempts),
        "Fixed" => match (&v.pull_request, v.mode.as_str()) {
            (Some((n, _)), _) => format!("ci-healer fixed this failure: draft pull request #{n}"),
            _ => "ci-healer found a fix; the patch is below (not pushed: mode propose)".into(),
        },
        "Escalated" => "ci-healer could not fix this failure; a person should look".into(),
        "Aborted" => "ci-healer stopped: the run was aborted".into(),
        "Denied" => "ci-healer's fix was refused by a reviewer; nothing is delivered".into(),
        "Resolved" => "a person resolved this failure; ci-healer stopped".into(),
        "Skipped" => format!("ci-healer skipped this failure ({})", v.reason.as_deref().unwrap_or("skipped")),
        "Rerun" => "ci-healer re-ran the failed job: the failure looks flaky".into(),
        other => format!("ci-healer: {other}"),
    }
}

/// The markdown shared by the comment and the check run's text.
fn details(v: &RunView, with_patch: bool) -> String {
    let mut s = format!("Failure: {}.\n\n", what_failed(v));
    if let Some(c) = &v.failure_class {
        s.push_str(&format!("Triage: `{}`.\n\n", md(c)));
    }
    if let Some(m) = v.message.as_deref().filter(|m| !m.is_empty()) {
        s.push_str(&format!("{}\n\n", md(m)));
    }
    if let Some(d) = v.diagnosis.as_deref().filter(|d| !d.is_empty()) {
        s.push_str(&format!("**Diagnosis:** {}\n\n", md(d)));
    }
    if let Some(ds) = diffstat(v) {
        s.push_str(&format!("**Change:** {ds}.\n\n"));
    }
    if !v.validation_commands.is_empty() {
        s.push_str("**Validation that passed:**\n\n");
        for c in &v.validation_commands {
            s.push_str(&fenced("sh", c));
        }
        s.push('\n');
    }
    s.push_str(&attempts_table(v));
    if let Some((n, url)) = &v.pull_request {
        s.push_str(&format!(
            "\nThe fix: [#{n}]({url}) (draft, into `{}`; review it, mark it ready, merge it — or close it to deny).\n",
            md(&v.branch)
        ));
    }
    if with_patch && let Some(p) = &v.patch {
        if v.suggested {
            s.push_str(
                "\nThe patch is also on this pull request's diff as suggested changes (ci-healer's review): \
                 **Commit suggestion** applies them.\n",
            );
        }
        s.push_str("\nThe patch (apply with `git apply`):\n\n");
        s.push_str(&fenced("diff", &cut(p, MAX_MARKDOWN / 2)));
    }
    s.push_str(&format!("\n<sub>{} · HealingRun `{}`</sub>\n", how_to_act(v), md(&v.key)));
    s
}

/// The one pull request comment, edited in place as the run moves.
pub fn comment(v: &RunView) -> String {
    cut(&format!("### {}\n\n{}", headline(v), details(v, v.pull_request.is_none())), MAX_MARKDOWN)
}

/// The check run (or commit status) for the run's state. Without a pull request the check run's
/// text carries the comment's content, patch included.
pub fn check_output(v: &RunView, has_pull_request_comment: bool) -> CheckOutput {
    let state = match v.phase.as_str() {
        "Fixed" => CheckState::Success,
        "Escalated" => CheckState::ActionRequired,
        "Aborted" | "Rerun" | "Denied" | "Resolved" => CheckState::Neutral,
        "Skipped" => CheckState::Skipped,
        "Queued" => CheckState::Queued,
        _ => CheckState::InProgress,
    };
    let summary = cut(&format!("{}.\n\n{}", headline(v), attempts_table(v)), MAX_MARKDOWN);
    let text = (!has_pull_request_comment).then(|| cut(&details(v, true), MAX_MARKDOWN));
    CheckOutput {
        state,
        title: headline(v),
        summary,
        text,
        details_url: v.pull_request.as_ref().map(|(_, u)| u.clone()).or_else(|| v.job_url.clone()),
    }
}

/// The fix pull request's title: `<prefix> fix <job> (<class>)`.
pub fn pr_title(prefix: &str, v: &RunView) -> String {
    let what = v.job.as_deref().or(v.step.as_deref()).unwrap_or("CI");
    let class = v.failure_class.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
    format!("{} fix {what}{class}", prefix.trim_end()).chars().take(250).collect()
}

/// The fix pull request's body: what failed, the diagnosis, the diffstat, the validation that
/// passed, the attempts and tokens, and how to approve or deny.
pub fn pr_body(v: &RunView) -> String {
    let tokens: i64 = v.attempts.iter().filter_map(|a| a.tokens).sum();
    let mut s = format!(
        "ci-healer made this change to fix a failing CI run. **Review it before you merge it**: {}\
         ci-healer never merges or pushes to `{}`.\n\n",
        if v.ready {
            "deterministic fixers alone made it, so it was approved without a person (actions.autoApprove); "
        } else {
            "it is a draft, and "
        },
        md(&v.branch)
    );
    s.push_str(&details(v, false));
    s.push_str(&format!(
        "\n**Spent:** {} attempt{}{}.\n\n**Approve:** mark this pull request ready for review and merge it. **Deny:** close it.\n",
        v.attempts.len(),
        if v.attempts.len() == 1 { "" } else { "s" },
        if tokens > 0 { format!(", {tokens} LLM tokens") } else { String::new() }
    ));
    cut(&s, MAX_MARKDOWN)
}

/// The fix commit's message.
pub fn commit_message(v: &RunView) -> String {
    let mut m = format!("ci-healer: fix {}", v.job.as_deref().unwrap_or("CI"));
    if let Some(c) = &v.failure_class {
        m.push_str(&format!(" ({c})"));
    }
    m.push_str(&format!(
        "\n\nFailure: {} at {} on {}.\n",
        v.step.as_deref().unwrap_or("the failing step"),
        short(&v.head_sha),
        v.branch
    ));
    if let Some(d) = &v.diagnosis {
        m.push_str(&format!("\n{d}\n"));
    }
    m.push_str(&format!("\nHealingRun: {}\n", v.key));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(phase: &str) -> RunView {
        RunView {
            key: "team/gh-1-1-2".into(),
            repository: "o/r".into(),
            branch: "feature".into(),
            head_sha: "3484a3fb816e0859fd6e1cea078d76385ff50625".into(),
            workflow: Some("CI".into()),
            job: Some("linters".into()),
            step: Some("Run yarn run format-check".into()),
            job_url: Some("https://github.com/o/r/actions/runs/1/job/2".into()),
            phase: phase.into(),
            failure_class: Some("frontend_format".into()),
            attempts: vec![AttemptRow {
                number: 1,
                phase: "Succeeded".into(),
                tokens: Some(1200),
                ..Default::default()
            }],
            max_attempts: 3,
            diffstat: Some((1, 1, 1)),
            validation_commands: vec!["yarn run format-check".into()],
            patch: Some("diff --git a/x b/x\n```\n-a\n+b\n".into()),
            mode: "propose".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_comment_and_the_check_say_the_same() {
        let v = view("Fixed");
        let c = comment(&v);
        assert!(c.starts_with("### ci-healer found a fix"), "{c}");
        assert!(c.contains("````diff\n"), "a fence the patch cannot close: {c}");
        assert!(c.contains("workflow **CI**, job [**linters**](https://github.com/o/r/actions/runs/1/job/2), step **Run yarn run format-check** on `feature` at `3484a3f`"));
        assert!(c.contains("| 1 of 3 | Succeeded |  | 1200 |"));
        assert!(!c.contains("suggested changes"));
        let suggested = RunView { suggested: true, ..view("Fixed") };
        assert!(comment(&suggested).contains("as suggested changes (ci-healer's review)"));
        let out = check_output(&v, false);
        assert_eq!(out.state, CheckState::Success);
        assert!(out.text.as_deref().unwrap().contains("````diff"), "without a PR comment the check carries the patch");
        assert!(check_output(&v, true).text.is_none());
        assert_eq!(check_output(&view("Escalated"), true).state, CheckState::ActionRequired);
        assert_eq!(check_output(&view("Running"), true).state, CheckState::InProgress);
        assert_eq!(check_output(&view("Skipped"), true).state, CheckState::Skipped);
        assert_eq!(check_output(&view("Queued"), true).state, CheckState::Queued);
    }

    #[test]
    fn the_pull_request_says_what_a_reviewer_needs() {
        let mut v = view("Fixed");
        v.pull_request = Some((12, "https://github.com/o/r/pull/12".into()));
        v.diagnosis = Some("prettier reformatted greet.ts".into());
        assert_eq!(pr_title("ci-healer:", &v), "ci-healer: fix linters (frontend_format)");
        let b = pr_body(&v);
        for needle in [
            "draft",
            "never merges",
            "**Diagnosis:** prettier reformatted greet.ts",
            "1 file changed, +1 −1",
            "yarn run format-check",
            "1200 LLM tokens",
            "**Deny:** close it",
            "kubectl patch hrun gh-1-1-2 -n team",
        ] {
            assert!(b.contains(needle), "{needle} missing from:\n{b}");
        }
        assert!(!b.contains("```diff"), "the PR shows its own diff");
        assert!(!pr_body(&RunView { ready: true, ..v.clone() }).contains("it is a draft"));
        assert!(comment(&v).contains("draft pull request #12"));
        assert!(commit_message(&v).starts_with("ci-healer: fix linters (frontend_format)\n\n"));
        let long = RunView { patch: Some("x".repeat(200_000)), ..view("Fixed") };
        assert!(comment(&long).chars().count() <= MAX_MARKDOWN);
    }
}
