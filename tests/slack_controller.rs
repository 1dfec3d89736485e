//! Slack (issue 10): the controller (a real `healer controller` subprocess on the local control
//! plane) keeps one Slack message per run, updated in place, with a thread reply per attempt,
//! against the loopback Slack, which checks every request against Slack's published Web API
//! description (`tests/loopback_slack/`). A kubelet stand-in finishes attempt pods.

mod loopback_slack;
mod support;

use std::time::{Duration, Instant};

use ci_healer::contract::Outcome;
use ci_healer::crd::HealingRun;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use loopback_slack::{Fault, LoopbackSlack, Recorded};
use serde_json::json;
use support::{Apis, ControllerProcess, finish_attempt, verdict};

/// The bot token: also planted in an attempt's summary, so a leak anywhere would show.
const TOKEN: &str = "xoxb-1111111111-2222222222-canaryTOKENslack00";
const CHANNEL: &str = "C0HEALER01";

fn sample_run(ns: &str, name: &str) -> HealingRun {
    let text =
        std::fs::read_to_string(support::root().join("config/samples/healingrun-from-workflow-job.yaml")).unwrap();
    let mut run: HealingRun = serde_yaml_ng::from_str(&text).unwrap();
    run.metadata.namespace = Some(ns.into());
    run.metadata.name = Some(name.into());
    run
}

/// A namespace with the token Secret and a controller configured for the loopback Slack.
async fn setup(slack: &LoopbackSlack, prefix: &str) -> (Apis, ControllerProcess, std::path::PathBuf) {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, prefix).await;
    support::create_secret(&client, &ns, "slack", "token", format!("{TOKEN}\n").into_bytes()).await;
    let config = format!(
        "slack:\n  apiUrl: {}\n  tokenSecret: {{name: slack, key: token}}\n  secretNamespace: {ns}\n  \
         requestTimeoutSeconds: 5\n  channel: C0OTHER001\n  namespaces:\n    {ns}: {CHANNEL}\n",
        slack.api_url()
    );
    let path = std::env::temp_dir().join(format!("ci-healer-slack-{ns}.yaml"));
    std::fs::write(&path, config).unwrap();
    let ctrl = ControllerProcess::start(&ns, Some(&path));
    (Apis::new(&client, &ns), ctrl, path)
}

fn cond(run: &HealingRun, t: &str) -> Option<(String, String)> {
    let c = run.status.as_ref()?.conditions.iter().find(|c| c.type_ == t)?;
    Some((c.status.clone(), c.reason.clone()))
}

/// The headline words of the root message's successive texts (post, then each update).
fn root_states(reqs: &[Recorded]) -> Vec<String> {
    reqs.iter()
        .filter(|r| {
            r.status == 200
                && r.error.is_none()
                && (r.method == "chat.update" || (r.method == "chat.postMessage" && r.body.get("thread_ts").is_none()))
        })
        .map(|r| r.body["text"].as_str().unwrap_or("").split(':').next().unwrap_or("").to_string())
        .collect()
}

fn thread_replies(slack: &LoopbackSlack) -> Vec<String> {
    slack.messages().into_iter().filter(|m| m.thread_ts.is_some()).map(|m| m.text).collect()
}

/// No request, message or block carries the token.
fn assert_no_secret(slack: &LoopbackSlack) {
    for r in slack.requests() {
        assert!(!r.body.to_string().contains("canaryTOKEN"), "the token left in {}: {}", r.method, r.body);
    }
    for m in slack.messages() {
        assert!(!m.text.contains("canaryTOKEN") && !m.blocks.to_string().contains("canaryTOKEN"), "{m:?}");
    }
}

/// Wait until the run's message shows `headline` and `Notified` is True.
async fn until_shown(slack: &LoopbackSlack, apis: &Apis, name: &str, headline: &str) -> HealingRun {
    support::wait_for(&format!("Slack to show {headline} for {name}"), Duration::from_secs(60), || async {
        let root = slack.messages().into_iter().find(|m| m.thread_ts.is_none())?;
        let run = apis.runs.get(name).await.ok()?;
        (root.text.starts_with(&format!("{headline}:"))
            && cond(&run, "Notified").map(|c| c.0).as_deref() == Some("True"))
        .then_some(run)
    })
    .await
}

#[tokio::test]
async fn one_message_per_run_is_updated_through_every_state_with_a_reply_per_attempt() {
    let slack = LoopbackSlack::start(TOKEN, &[(CHANNEL, "ci-healer"), ("C0OTHER001", "general")]).await;
    let (apis, _ctrl, _cfg) = setup(&slack, "slack-states").await;
    let name = "gh-slack-1";
    apis.runs.create(&PostParams::default(), &sample_run(&apis.ns, name)).await.unwrap();
    until_shown(&slack, &apis, name, "Healing").await;
    for n in 1..=2 {
        let job = apis.job(&format!("{name}-{n}")).await;
        let summary = format!("prettier --check still fails ({n}); token {TOKEN}");
        finish_attempt(&apis, &job, &verdict(Outcome::Failed, "ValidationFailed", &summary)).await;
    }
    let job = apis.job(&format!("{name}-3")).await;
    finish_attempt(&apis, &job, &verdict(Outcome::Failed, "ValidationFailed", "still failing (3)")).await;
    apis.run_phase(name, "Escalated").await;
    let run = until_shown(&slack, &apis, name, "Escalated to people").await;
    // The three attempts' replies are sent after the message shows the final state (one reconcile).
    support::wait_for("six thread replies", Duration::from_secs(30), || async {
        (thread_replies(&slack).len() == 6).then_some(())
    })
    .await;

    let reqs = slack.requests();
    assert_eq!(slack.violations(), Vec::<String>::new());
    // Exactly one message in the channel: looked for once, posted once, then only updated.
    let roots: Vec<_> = slack.messages().into_iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(roots.len(), 1, "{roots:#?}");
    assert_eq!(roots[0].channel, CHANNEL, "the namespace's channel, not the default");
    let ops: Vec<&str> = reqs.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(ops[..2], ["conversations.history", "chat.postMessage"], "{ops:?}");
    assert_eq!(ops.iter().filter(|o| **o == "conversations.history").count(), 1, "{ops:?}");
    let mut states = root_states(&reqs);
    states.dedup();
    assert!(matches!(states.first().map(String::as_str), Some("Queued" | "Healing")), "{states:?}");
    assert_eq!(states.last().map(String::as_str), Some("Escalated to people"), "{states:?}");
    assert!(states.iter().all(|s| s == "Healing" || s == "Queued" || s == "Escalated to people"), "{states:?}");
    // Each update names the message the post created.
    let root_ts = roots[0].ts.clone();
    for r in reqs.iter().filter(|r| r.method == "chat.update") {
        assert_eq!((r.body["channel"].as_str(), r.body["ts"].as_str()), (Some(CHANNEL), Some(root_ts.as_str())));
    }
    // The message's fields and the escalation reason.
    let root = &roots[0];
    assert!(root.text.contains("Codertocat/Hello-World on main"), "{}", root.text);
    assert!(root.text.contains("attempt 3 of 3"), "{}", root.text);
    assert!(root.text.contains(": all 3 attempts failed; the last failed with ValidationFailed"), "{}", root.text);
    assert!(
        root.text.ends_with(&format!("ci-healer run {}/{name} ({})", apis.ns, run.uid().unwrap())),
        "{}",
        root.text
    );
    // One reply per attempt start and end, in the thread, in order; the token is masked.
    let replies = thread_replies(&slack);
    assert_eq!(replies[0], "Attempt 1 of 3 started");
    assert!(
        replies[1].starts_with("Attempt 1 of 3 failed (ValidationFailed): prettier --check still fails (1); token "),
        "{}",
        replies[1]
    );
    assert_eq!(replies[2], "Attempt 2 of 3 started");
    assert_eq!(replies[4], "Attempt 3 of 3 started");
    assert_eq!(replies[5], "Attempt 3 of 3 failed (ValidationFailed): still failing (3)");
    assert!(
        slack
            .messages()
            .iter()
            .filter(|m| m.thread_ts.is_some())
            .all(|m| m.thread_ts.as_deref() == Some(root_ts.as_str()))
    );
    let st = run.status.unwrap();
    let kept = st.slack.unwrap();
    assert_eq!(
        (kept.channel.as_str(), kept.ts.as_str(), kept.phase.as_deref()),
        (CHANNEL, root_ts.as_str(), Some("Escalated"))
    );
    assert_no_secret(&slack);
}

#[tokio::test]
async fn an_aborted_run_shows_aborted_and_a_restart_never_posts_a_second_message() {
    let slack = LoopbackSlack::start(TOKEN, &[(CHANNEL, "ci-healer")]).await;
    let (apis, mut ctrl, cfg) = setup(&slack, "slack-restart").await;
    let name = "gh-slack-2";
    apis.runs.create(&PostParams::default(), &sample_run(&apis.ns, name)).await.unwrap();
    let run = until_shown(&slack, &apis, name, "Healing").await;
    let ts = run.status.as_ref().unwrap().slack.as_ref().unwrap().ts.clone();

    // The controller dies after Slack answered and before its status write: the status forgets
    // the message (what a lost write leaves).
    ctrl.kill();
    let forget = Patch::Merge(json!({"status": {"slack": null}}));
    apis.runs.patch_status(name, &PatchParams::default(), &forget).await.unwrap();
    let _ctrl2 = ControllerProcess::start(&apis.ns, Some(&cfg));
    let (ok, out) = support::kubectl(&[
        "patch",
        "hrun",
        name,
        "-n",
        &apis.ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"action":"abort"}}"#,
    ]);
    assert!(ok, "{out}");
    apis.run_phase(name, "Aborted").await;
    let run = until_shown(&slack, &apis, name, "Aborted").await;

    let roots: Vec<_> = slack.messages().into_iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(roots.len(), 1, "a restart posts no second message: {roots:#?}");
    assert_eq!(roots[0].ts, ts);
    assert!(roots[0].updates >= 1);
    let ops: Vec<String> = slack.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(ops.iter().filter(|o| *o == "conversations.history").count(), 2, "{ops:?}");
    assert_eq!(run.status.unwrap().slack.unwrap().ts, ts, "the found message is recorded again");
    assert_eq!(slack.violations(), Vec::<String>::new());
    assert_no_secret(&slack);
}

#[tokio::test]
async fn a_run_goes_on_while_slack_answers_500_and_429_and_the_message_catches_up() {
    let slack = LoopbackSlack::start(TOKEN, &[(CHANNEL, "ci-healer")]).await;
    slack.fault(Fault::ServerError);
    let (apis, ctrl, _cfg) = setup(&slack, "slack-down").await;
    let name = "gh-slack-3";
    apis.runs.create(&PostParams::default(), &sample_run(&apis.ns, name)).await.unwrap();
    // The run moves while Slack fails: attempt 1 starts, fails, attempt 2 starts.
    let job = apis.job(&format!("{name}-1")).await;
    let running = apis.run_phase(name, "Running").await;
    let t0 = Instant::now();
    finish_attempt(&apis, &job, &verdict(Outcome::Failed, "ValidationFailed", "still fails")).await;
    apis.job(&format!("{name}-2")).await;
    let moved = t0.elapsed();
    // A failing Slack adds no wait of its own to the run's transitions (the controller_e2e runs
    // take about as long without Slack).
    assert!(moved < Duration::from_secs(20), "the run was held back: {moved:?}");
    let run = apis.runs.get(name).await.unwrap();
    assert_eq!(cond(&run, "Notified").map(|c| c.1).as_deref(), Some("SlackUnavailable"), "{:?}", run.status);
    assert!(slack.faulted() >= 1);
    assert!(slack.messages().is_empty());
    assert!(running.status.as_ref().unwrap().slack.is_none());
    // Slack rate-limits for a while: the run still moves (attempt 2 passes: Fixed).
    slack.fault(Fault::RateLimited(2));
    let faulted_before = slack.faulted();
    let job = apis.job(&format!("{name}-2")).await;
    finish_attempt(&apis, &job, &support::verdict(Outcome::Passed, "ValidationPassed", "reformatted")).await;
    apis.run_phase(name, "Fixed").await;
    support::wait_for("a 429 answer", Duration::from_secs(30), || async {
        (slack.faulted() > faulted_before).then_some(())
    })
    .await;
    let rate_limited = apis.runs.get(name).await.unwrap();
    assert_eq!(cond(&rate_limited, "Notified").map(|c| c.1).as_deref(), Some("SlackUnavailable"));
    // Slack is back: the message catches up with the run's current state, posted once.
    slack.clear_fault();
    let caught_up = Instant::now();
    until_shown(&slack, &apis, name, "Fixed").await;
    support::wait_for("four thread replies", Duration::from_secs(30), || async {
        (thread_replies(&slack).len() == 4).then_some(())
    })
    .await;
    let roots: Vec<_> = slack.messages().into_iter().filter(|m| m.thread_ts.is_none()).collect();
    assert_eq!(roots.len(), 1, "{roots:#?}");
    assert!(roots[0].text.contains("attempt 2 of 3"), "{}", roots[0].text);
    // While Slack asked to wait, the client did not hammer it: a bounded number of faulted calls.
    let faulted = slack.faulted();
    assert!(faulted < 40, "{faulted} calls while Slack was down or rate-limited");
    eprintln!(
        "Slack down: the run moved from attempt 1's end to attempt 2's Job in {moved:?}; {faulted} faulted calls; \
         caught up {:?} after Slack came back; reconciles {}",
        caught_up.elapsed(),
        ctrl.metric(r#"cihealer_reconciles_total{controller="HealingRun"}"#).await
    );
    assert_eq!(slack.violations(), Vec::<String>::new());
    assert_no_secret(&slack);
}
