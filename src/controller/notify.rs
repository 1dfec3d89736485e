//! Slack (issue 10): one message per run, posted when the run is first seen (Queued, or Running
//! when its first reconcile already starts an attempt), **updated in place** (`chat.update`) as it
//! moves, with one thread reply per attempt (started, then finished with its verdict).
//!
//! - What was sent is kept in `status.slack`: the channel and `ts` Slack answered with, a digest of
//!   the message last sent (an update is sent only when the rendered message changes), the phase
//!   last shown, and how many thread replies were sent (the replies are a fixed sequence: attempt 1
//!   started, attempt 1 finished, attempt 2 started, …, so the next ones to send follow from it).
//! - **A restart never posts a second message**: before the first post, the controller looks for the
//!   run's message in the channel (`conversations.history` since the run's creation, matching the
//!   run's marker: its namespace, name and uid, in the message's text) and adopts it. That covers a
//!   controller killed after Slack answered the post and before the status write. Slack offers bots
//!   no cheap search, and the published Web API description has no message metadata, so the text
//!   carries the marker. Needs the bot's `channels:history` (or `groups:history`) scope and a
//!   channel id in the config; without them (Slack answers `missing_scope`, `channel_not_found`)
//!   the post goes ahead, so such a crash can then cost one duplicate message. A thread reply sent
//!   in that window may be sent twice (at most the replies of one reconcile).
//! - A status write that fails after Slack answered (409 Conflict) does not resend: what this
//!   process sent is also kept in memory until the run's status shows it.
//! - An incoming webhook cannot update or thread: the run gets one message when it is first seen
//!   and one when it reaches a final phase.
//! - **Slack never delays or fails a run**: this step never returns an error. A transient failure
//!   (5xx, 429 with `Retry-After`, a timeout) sets `Notified=False`, [`Reason::SlackUnavailable`],
//!   and asks for a requeue after Slack's `Retry-After` (or a short backoff); the run's own
//!   transitions are written in the same reconcile as usual, and the message catches up with the
//!   run's current state when Slack answers. The client pauses its calls while Slack asked to wait
//!   ([`crate::notify::client`]), so a reconcile does not wait on Slack. A permanent refusal
//!   (`channel_not_found`, `invalid_auth`, `not_in_channel`, …) sets `Notified=False`,
//!   [`Reason::SlackRejected`], with a Warning Event, and that state counts as sent (the next state
//!   tries again; no retry loop on a refusal).
//! - The text is masked with the client's secret values (and the known token patterns) before it
//!   leaves, as the GitHub report is.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use super::state::AttemptView;
use crate::agent::context::Masker;
use crate::crd::conditions::{self, Reason, RunCondition};
use crate::crd::run::SlackMessageRef;
use crate::crd::{AttemptPhase, HealingRun, HealingRunStatus, RunPhase};
use crate::notify::render::{self, AttemptNote, RunSummary};
use crate::notify::{Message, Mode, Posted, Slack, SlackConfig};

/// What this process sent per run uid while the run's status does not show it yet (its write
/// failed or is under way); removed once the status shows it.
static SENT: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, SlackMessageRef>>> =
    std::sync::LazyLock::new(Default::default);

/// The wait before trying again after a transient failure without a `Retry-After`.
const RETRY: Duration = Duration::from_secs(5);

/// What one notify step did.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Requeue the run after this long: Slack has not caught up yet.
    pub retry_after: Option<Duration>,
    /// The message of a Warning Event: Slack refused for good.
    pub warning: Option<String>,
}

/// The attempt budget the run's message shows: `policy.maxAttempts` after the latest retry. Pure.
fn max_attempts(run: &HealingRun, status: &HealingRunStatus) -> i32 {
    status.retried_after_attempt.unwrap_or(0) + run.spec.policy.max_attempts.max(1)
}

/// What the run's message shows. Pure.
pub fn summary(run: &HealingRun, status: &HealingRunStatus) -> RunSummary {
    let src = &run.spec.source;
    let phase = status.phase.unwrap_or_default();
    let cond = match phase {
        RunPhase::Aborted => Some(RunCondition::Aborted),
        RunPhase::Denied => Some(RunCondition::Denied),
        RunPhase::Resolved => Some(RunCondition::Resolved),
        RunPhase::Skipped => Some(RunCondition::Skipped),
        RunPhase::Rerun => Some(RunCondition::Rerun),
        RunPhase::Fixed => Some(RunCondition::Fixed),
        _ => None,
    };
    let job = match (&src.workflow_name, &src.job_name) {
        (Some(w), Some(j)) => Some(format!("{w} / {j}")),
        (w, j) => w.clone().or_else(|| j.clone()),
    };
    RunSummary {
        key: format!("{}/{}", run.namespace().unwrap_or_default(), run.name_any()),
        uid: run.metadata.uid.clone().unwrap_or_default(),
        repository: src.repository.clone(),
        branch: src.branch.clone(),
        head_sha: src.head_sha.clone(),
        job,
        job_url: src.url.clone(),
        phase: phase.as_str().into(),
        failure_class: status.failure_class.map(|c| c.as_str().to_string()),
        agent: status.agent.clone(),
        attempt: status.current_attempt,
        max_attempts: max_attempts(run, status),
        pull_request: status.pull_request.as_ref().map(|p| (p.number, p.url.clone())),
        escalation_reason: status.escalation_reason.clone(),
        message: cond.and_then(|t| conditions::get(&status.conditions, t)).map(|c| c.message.clone()),
    }
}

/// The thread replies of the attempts so far, in the order they are sent: each attempt's start,
/// then its end once it finished. Pure.
pub fn attempt_notes(run: &HealingRun, status: &HealingRunStatus, attempts: &[AttemptView]) -> Vec<AttemptNote> {
    let mut sorted: Vec<&AttemptView> = attempts.iter().collect();
    sorted.sort_by_key(|a| a.number);
    let max = max_attempts(run, status);
    let mut out = Vec::new();
    for a in sorted {
        let note = AttemptNote { number: a.number, max_attempts: max.max(a.number), ..Default::default() };
        out.push(note.clone());
        if matches!(a.phase, AttemptPhase::Succeeded | AttemptPhase::Failed) {
            out.push(AttemptNote {
                finished: Some(a.phase.as_str().into()),
                reason: a.failure_reason.clone(),
                summary: a.summary.clone(),
                ..note
            });
        }
    }
    out
}

/// A short digest of a message (what `status.slack.digest` keeps).
pub fn digest(m: &Message) -> String {
    let mut h = Sha256::new();
    h.update(m.text.as_bytes());
    h.update(serde_json::to_vec(&m.blocks).unwrap_or_default());
    hex::encode(&h.finalize()[..8])
}

fn masked(m: Message, masker: &Masker) -> Message {
    let mut blocks = m.blocks;
    blocks.iter_mut().for_each(|b| masker.mask_json(b));
    Message { text: masker.mask(&m.text), blocks }
}

/// Bring the run's Slack message (and thread) up to date with `status`, recording what was sent in
/// `status.slack` and the `Notified` condition. Never fails: see the module docs.
pub async fn notify(
    run: &HealingRun,
    slack: &dyn Slack,
    config: &SlackConfig,
    attempts: &[AttemptView],
    status: &mut HealingRunStatus,
    now: Time,
    metrics: &crate::telemetry::Metrics,
) -> Outcome {
    let Some(phase) = status.phase else { return Outcome::default() };
    let ns = run.namespace().unwrap_or_default();
    let channel = match slack.mode() {
        Mode::WebApi => match config.channel_for(&ns, &run.spec.source.repository) {
            Some(c) => c.to_string(),
            None => return Outcome::default(),
        },
        Mode::Webhook => String::new(),
    };
    // What this process sent last wins over the status: a status write that failed after Slack
    // answered (a 409 Conflict) must not make the next reconcile send it again.
    let uid = run.metadata.uid.clone().unwrap_or_default();
    let mut sent = {
        let mut mem = SENT.lock().expect("sent");
        match mem.get(&uid) {
            Some(m) if status.slack.as_ref() == Some(m) => {
                mem.remove(&uid);
                status.slack.clone()
            }
            Some(m) => Some(m.clone()),
            None => status.slack.clone(),
        }
    };
    // A run skipped or re-run before anything was shown makes no noise.
    if sent.is_none() && matches!(phase, RunPhase::Skipped | RunPhase::Rerun) {
        return Outcome::default();
    }
    let mut masker = Masker::new(slack.secret_values());
    for v in slack.secret_values() {
        masker.add(&v);
    }
    let summary = summary(run, status);
    let message = masked(render::run_message(&summary), &masker);
    let digest = digest(&message);
    let result = match slack.mode() {
        Mode::WebApi => {
            let notes: Vec<Message> = attempt_notes(run, status, attempts)
                .iter()
                .map(|n| masked(render::attempt_message(n), &masker))
                .collect();
            web_api(slack, run, &channel, (&message, &digest, phase), &notes, &mut sent).await
        }
        Mode::Webhook => webhook(slack, &message, phase, &digest, &mut sent).await,
    };
    let key = phase.as_str();
    let (ok, reason, text, outcome) = match result {
        Ok(None) => {
            remember(uid, &sent, status);
            return Outcome::default();
        }
        Ok(Some(what)) => (true, Reason::SlackNotified, format!("Slack shows {key}: {what}"), Outcome::default()),
        Err(e) if e.is_transient() => {
            let wait = e.retry_after().unwrap_or(RETRY).max(Duration::from_secs(1));
            tracing::info!(run = %run.name_any(), namespace = %ns, error = %e, retry_in_seconds = wait.as_secs(), "Slack has not caught up with {key}");
            // A stable message (no countdown): an unchanged condition writes no status, so a paused
            // client does not make the run reconcile in a loop.
            let why = match &e {
                crate::notify::Error::Paused { .. } => conditions::get(&status.conditions, RunCondition::Notified)
                    .filter(|c| c.reason == Reason::SlackUnavailable.as_str())
                    .map(|c| c.message.clone())
                    .unwrap_or_else(|| format!("Slack does not show {key} yet (Slack asked to wait); the message catches up when Slack answers")),
                e => format!("Slack does not show {key} yet ({e}); the message catches up when Slack answers"),
            };
            (false, Reason::SlackUnavailable, why, Outcome { retry_after: Some(wait), warning: None })
        }
        Err(e) => {
            tracing::warn!(run = %run.name_any(), namespace = %ns, error = %e, "Slack refused the message for {key}");
            // The refused state counts as sent: the next state tries again.
            let s = sent.get_or_insert_with(SlackMessageRef::default);
            s.digest = Some(digest.clone());
            s.phase = Some(key.into());
            let m = format!("Slack refused the message for {key}: {}", masker.mask(&e.to_string()));
            let repeated = conditions::get(&status.conditions, RunCondition::Notified)
                .is_some_and(|c| c.reason == Reason::SlackRejected.as_str() && c.message == m);
            (false, Reason::SlackRejected, m.clone(), Outcome { retry_after: None, warning: (!repeated).then_some(m) })
        }
    };
    let label = match reason {
        Reason::SlackNotified => "sent",
        Reason::SlackUnavailable => "unavailable",
        _ => "rejected",
    };
    metrics.slack_notifications.get_or_create(&crate::telemetry::SlackLabels { outcome: label.into() }).inc();
    conditions::set(
        &mut status.conditions,
        conditions::new(RunCondition::Notified, ok, reason, text, run.metadata.generation, now),
    );
    remember(uid, &sent, status);
    outcome
}

/// Keep `sent` in memory while it is ahead of the status, and put it in the status.
fn remember(uid: String, sent: &Option<SlackMessageRef>, status: &mut HealingRunStatus) {
    if let Some(s) = sent
        && status.slack.as_ref() != Some(s)
    {
        SENT.lock().expect("sent").insert(uid, s.clone());
    }
    status.slack = sent.clone();
}

/// The Web API: find or post the message, update it when it changed, send the thread replies not
/// sent yet. Progress is kept in `sent` as it is made. Returns what was sent (`None`: nothing).
async fn web_api(
    slack: &dyn Slack,
    run: &HealingRun,
    channel: &str,
    (message, digest, phase): (&Message, &str, RunPhase),
    notes: &[Message],
    sent: &mut Option<SlackMessageRef>,
) -> crate::notify::Result<Option<String>> {
    let mut did = Vec::new();
    let phase = Some(phase.as_str().to_string());
    let have_ts = sent.as_ref().is_some_and(|s| !s.ts.is_empty());
    if !have_ts && sent.as_ref().and_then(|s| s.digest.as_deref()) != Some(digest) {
        let key = format!("{}/{}", run.namespace().unwrap_or_default(), run.name_any());
        let marker = render::marker(&key, run.metadata.uid.as_deref().unwrap_or_default());
        let since = run.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()).unwrap_or(0) - 60;
        let found = match slack.find(channel, &marker, since).await {
            Ok(f) => f,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tracing::debug!(run = %run.name_any(), error = %e, "cannot look for an earlier message; posting");
                None
            }
        };
        match found {
            Some(p) => {
                *sent = Some(SlackMessageRef { channel: p.channel, ts: p.ts, ..Default::default() });
                did.push("found the message posted before a restart".to_string());
            }
            None => {
                let p = slack
                    .post(channel, message, None)
                    .await?
                    .unwrap_or(Posted { channel: channel.into(), ts: String::new() });
                *sent = Some(SlackMessageRef {
                    channel: p.channel,
                    ts: p.ts,
                    digest: Some(digest.into()),
                    phase: phase.clone(),
                    replies: 0,
                });
                did.push("posted the message".to_string());
            }
        }
    }
    let Some(s) = sent.as_mut().filter(|s| !s.ts.is_empty()) else {
        return Ok((!did.is_empty()).then(|| did.join(", ")));
    };
    if s.digest.as_deref() != Some(digest) {
        slack.update(&Posted { channel: s.channel.clone(), ts: s.ts.clone() }, message).await?;
        s.digest = Some(digest.into());
        s.phase = phase;
        did.push("updated the message".into());
    }
    let from = usize::try_from(s.replies.max(0)).unwrap_or(0);
    for note in notes.iter().skip(from) {
        slack.post(&s.channel.clone(), note, Some(&s.ts.clone())).await?;
        s.replies += 1;
    }
    let replies = usize::try_from(s.replies.max(0)).unwrap_or(0).saturating_sub(from);
    if replies > 0 {
        did.push(format!("{replies} thread repl{}", if replies == 1 { "y" } else { "ies" }));
    }
    Ok((!did.is_empty()).then(|| format!("{} in {} (ts {})", did.join(", "), s.channel, s.ts)))
}

/// An incoming webhook: one post when the run is first seen, one when it reaches a final phase.
async fn webhook(
    slack: &dyn Slack,
    message: &Message,
    phase: RunPhase,
    digest: &str,
    sent: &mut Option<SlackMessageRef>,
) -> crate::notify::Result<Option<String>> {
    let shown_final =
        sent.as_ref().and_then(|s| s.phase.as_deref()).and_then(phase_of).is_some_and(RunPhase::is_terminal);
    let wanted = match sent {
        None => true,
        Some(_) => phase.is_terminal() && !shown_final,
    };
    if !wanted {
        return Ok(None);
    }
    slack.post("", message, None).await?;
    *sent =
        Some(SlackMessageRef { digest: Some(digest.into()), phase: Some(phase.as_str().into()), ..Default::default() });
    Ok(Some("posted through the incoming webhook".into()))
}

fn phase_of(s: &str) -> Option<RunPhase> {
    RunPhase::ALL.iter().copied().find(|p| p.as_str() == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_attempt_gets_a_start_and_an_end_reply_in_order() {
        let run: HealingRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun",
            "metadata": {"name": "r", "namespace": "n"},
            "spec": {"source": {"provider": "github", "repository": "o/r", "branch": "main", "headSha": "abc"},
                     "policy": {"maxAttempts": 2}}
        }))
        .unwrap();
        let a = |n, phase| AttemptView {
            number: n,
            name: format!("r-{n}"),
            phase,
            failure_reason: None,
            summary: None,
            patch_config_map: None,
            diffstat: None,
            tokens: None,
            protected_paths: vec![],
        };
        let notes = attempt_notes(
            &run,
            &HealingRunStatus::default(),
            &[a(2, AttemptPhase::Running), a(1, AttemptPhase::Failed)],
        );
        let texts: Vec<String> = notes.iter().map(|n| render::attempt_message(n).text).collect();
        assert_eq!(texts, ["Attempt 1 of 2 started", "Attempt 1 of 2 failed", "Attempt 2 of 2 started"]);
    }
}
