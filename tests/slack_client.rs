//! The Slack client (`src/notify/client.rs`) against the loopback Slack, which checks each request
//! against Slack's published Web API description: posting, updating, threads, finding a message
//! again, Slack's errors, `429` with `Retry-After`, 5xx, and incoming webhooks.

mod loopback_slack;

use std::time::Duration;

use ci_healer::notify::client::CredentialSource;
use ci_healer::notify::{Error, Message, Mode, Posted, Slack, SlackClient, SlackConfig};
use loopback_slack::{Fault, LoopbackSlack};
use serde_json::json;

const TOKEN: &str = "xoxb-1111111111-2222222222-canaryTOKENslack00";

fn config(api_url: &str, webhook: bool) -> SlackConfig {
    let cred = if webhook { "webhookUrlSecret" } else { "tokenSecret" };
    serde_yaml_ng::from_str(&format!("apiUrl: {api_url}\n{cred}: {{name: s, key: k}}\nrequestTimeoutSeconds: 2\n"))
        .unwrap()
}

fn client(slack: &LoopbackSlack, token: &str) -> SlackClient {
    SlackClient::new(&config(&slack.api_url(), false), CredentialSource::Static(token.into())).unwrap()
}

fn msg(text: &str) -> Message {
    Message { text: text.into(), blocks: vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})] }
}

#[tokio::test]
async fn post_update_reply_and_find_speak_slacks_documented_web_api() {
    let slack = LoopbackSlack::start(TOKEN, &[("C0HEALER01", "ci")]).await;
    let c = client(&slack, TOKEN);
    assert_eq!(c.mode(), Mode::WebApi);
    let p = c.post("ci", &msg("Queued: o/r — ci-healer run ns/r (uid-1)"), None).await.unwrap().unwrap();
    assert_eq!(p.channel, "C0HEALER01", "Slack answers with the channel id for a name");
    c.update(&p, &msg("Fixed: o/r — ci-healer run ns/r (uid-1)")).await.unwrap();
    c.post(&p.channel, &msg("Attempt 1 of 3 started"), Some(&p.ts)).await.unwrap();
    let found = c.find("C0HEALER01", "ci-healer run ns/r (uid-1)", 0).await.unwrap();
    assert_eq!(found, Some(p.clone()));
    assert_eq!(c.find("C0HEALER01", "ci-healer run ns/other (uid-2)", 0).await.unwrap(), None);
    assert_eq!(slack.violations(), Vec::<String>::new());
    let reqs = slack.requests();
    let ops: Vec<&str> = reqs.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        ops,
        ["chat.postMessage", "chat.update", "chat.postMessage", "conversations.history", "conversations.history"]
    );
    assert_eq!(reqs[1].body["ts"], json!(p.ts));
    assert_eq!(reqs[2].body["thread_ts"], json!(p.ts));
    let msgs = slack.messages();
    assert_eq!((msgs[0].text.as_str(), msgs[0].updates), ("Fixed: o/r — ci-healer run ns/r (uid-1)", 1));
}

#[tokio::test]
async fn slacks_refusals_are_permanent_and_never_show_the_token() {
    let slack = LoopbackSlack::start(TOKEN, &[("C0HEALER01", "ci")]).await;
    let e = client(&slack, TOKEN).post("C0NOSUCH01", &msg("x"), None).await.unwrap_err();
    assert!(matches!(&e, Error::Api { error, .. } if error == "channel_not_found"), "{e}");
    assert!(!e.is_transient());
    let wrong = client(&slack, "xoxb-wrong-token-000000");
    let e = wrong.post("C0HEALER01", &msg("x"), None).await.unwrap_err();
    assert!(matches!(&e, Error::Api { error, .. } if error == "invalid_auth"), "{e}");
    let e = client(&slack, TOKEN)
        .update(&Posted { channel: "C0HEALER01".into(), ts: "1.000001".into() }, &msg("x"))
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::Api { error, .. } if error == "message_not_found"), "{e}");
    assert!(!format!("{e} {e:?}").contains("canaryTOKEN"));
    assert_eq!(slack.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_429_pauses_the_client_for_retry_after_and_a_500_for_a_backoff() {
    let slack = LoopbackSlack::start(TOKEN, &[("C0HEALER01", "ci")]).await;
    let c = client(&slack, TOKEN);
    slack.fault(Fault::RateLimited(2));
    let e = c.post("C0HEALER01", &msg("x"), None).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(2)), "{e}");
    assert!(e.is_transient());
    // While paused, calls fail at once without reaching Slack.
    let e = c.post("C0HEALER01", &msg("x"), None).await.unwrap_err();
    assert!(matches!(e, Error::Paused { remaining } if remaining <= Duration::from_secs(2)), "{e}");
    assert_eq!(slack.faulted(), 1);
    slack.clear_fault();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    c.post("C0HEALER01", &msg("x"), None).await.unwrap();
    slack.fault(Fault::ServerError);
    let e = c.post("C0HEALER01", &msg("x"), None).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable { status: 500, .. }), "{e}");
    assert!(matches!(c.post("C0HEALER01", &msg("x"), None).await.unwrap_err(), Error::Paused { .. }));
    assert_eq!(slack.faulted(), 2);
}

#[tokio::test]
async fn an_incoming_webhook_posts_text_and_blocks_and_cannot_update() {
    let slack = LoopbackSlack::start(TOKEN, &[]).await;
    let url = slack.webhook_url();
    let c = SlackClient::new(&config(&slack.api_url(), true), CredentialSource::Static(url.clone())).unwrap();
    assert_eq!(c.mode(), Mode::Webhook);
    assert_eq!(c.post("ignored", &msg("Queued: o/r"), None).await.unwrap(), None);
    let m = slack.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].text, "Queued: o/r");
    assert!(matches!(
        c.update(&Posted { channel: String::new(), ts: String::new() }, &msg("x")).await,
        Err(Error::Api { .. })
    ));
    assert_eq!(c.find("x", "y", 0).await.unwrap(), None);
    let bad = SlackClient::new(&config(&slack.api_url(), true), CredentialSource::Static(format!("{url}x"))).unwrap();
    let e = bad.post("", &msg("x"), None).await.unwrap_err();
    assert!(matches!(&e, Error::Api { error, .. } if error == "no_service"), "{e}");
    assert!(!e.to_string().contains("canaryWEBHOOK"), "the webhook URL is a secret: {e}");
    assert_eq!(slack.violations(), Vec::<String>::new());
}
