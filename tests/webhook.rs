//! ci-healer's own GitHub webhook receiver (`healer webhook`, src/intake/receiver.rs) on the local
//! control plane, as the chart's `ci-healer-webhook` ServiceAccount (its Role applied from the
//! rendered chart, every request impersonating it): signed deliveries of the real payloads in,
//! HealingRuns out; signed `/healer` comments in, HealingCommands out (a bot's or an edited comment
//! makes none); every bad delivery answered with its status and nothing created; 50 concurrent
//! redeliveries of one delivery make exactly one run; a silent API server is answered within
//! GitHub's 10 seconds; and the `healer webhook` binary serves the same.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ci_healer::crd::{HealingCommand, HealingRun, SourceEvent};
use ci_healer::intake::map::CREATED_BY;
use ci_healer::intake::receiver::{self, App, DROPPED_HEADER, PATH, Settings};
use ci_healer::intake::signature::sign;
use kube::{Api, Client, ResourceExt};

const SECRET: &[u8] = b"It's a Secret to Everybody";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(support::root().join("tests/fixtures/payloads").join(name)).unwrap()
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("webhook");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The secret as a mounted Secret's file holds it (with a trailing newline, as `echo` writes it).
fn secret_file(ns: &str) -> PathBuf {
    let f = out_dir().join(format!("secret-{ns}"));
    std::fs::write(&f, [SECRET, b"\n"].concat()).unwrap();
    f
}

/// The chart's webhook objects rendered for `ns` (the API server accepts them all, dry run), its
/// ServiceAccount, Role and RoleBinding applied, and a client that impersonates the ServiceAccount.
async fn chart_identity(ns: &str) -> (Client, PathBuf) {
    let rendered =
        support::render_chart(ns, &["--set", "webhook.enabled=true", "--show-only", "templates/webhook.yaml"]);
    let file = out_dir().join(format!("chart-webhook-{ns}.yaml"));
    std::fs::write(&file, &rendered).unwrap();
    let apply = |f: &PathBuf, dry: bool| {
        let mut args = vec!["apply", "--server-side", "--force-conflicts", "--field-manager=webhook-test"];
        if dry {
            args.push("--dry-run=server");
        }
        args.extend(["-f", f.to_str().unwrap()]);
        support::kubectl(&args)
    };
    let (ok, out) = apply(&file, true);
    assert!(
        ok && out.contains("deployment.apps/ci-healer-webhook") && out.contains("service/ci-healer-webhook"),
        "{out}"
    );
    // The identity only: a Deployment here would wait for a kubelet and an image.
    let rbac: Vec<&str> = rendered
        .split("\n---")
        .filter(|d| ["kind: ServiceAccount", "kind: Role\n", "kind: RoleBinding"].iter().any(|k| d.contains(k)))
        .collect();
    assert_eq!(rbac.len(), 3, "{rendered}");
    let rbac_file = out_dir().join(format!("chart-webhook-rbac-{ns}.yaml"));
    std::fs::write(&rbac_file, rbac.join("\n---")).unwrap();
    let (ok, out) = apply(&rbac_file, false);
    assert!(ok, "{out}");
    let as_sa = format!("--as=system:serviceaccount:{ns}:ci-healer-webhook");
    let can = |verb: &str, what: &str| support::kubectl(&["auth", "can-i", verb, what, "-n", ns, &as_sa]).1;
    assert_eq!(can("create", "healingruns.cihealer.dev").trim(), "yes");
    assert_eq!(can("create", "healingcommands.cihealer.dev").trim(), "yes");
    for (verb, what) in [
        ("get", "healingruns.cihealer.dev"),
        ("get", "healingcommands.cihealer.dev"),
        ("delete", "healingcommands.cihealer.dev"),
        ("patch", "healingcommands.cihealer.dev/status"),
        ("update", "healingruns.cihealer.dev/status"),
        ("delete", "healingruns.cihealer.dev"),
        ("update", "healingruns.cihealer.dev"),
        ("get", "secrets"),
        ("create", "jobs"),
    ] {
        assert_eq!(can(verb, what).trim(), "no", "the receiver's ServiceAccount may not {verb} {what}");
    }
    let mut kc = kube::config::Kubeconfig::read_from(support::kubeconfig()).unwrap();
    for a in &mut kc.auth_infos {
        a.auth_info.as_mut().unwrap().impersonate = Some(format!("system:serviceaccount:{ns}:ci-healer-webhook"));
    }
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    (Client::try_from(cfg).unwrap(), file)
}

fn settings(ns: &str) -> Settings {
    Settings { namespace: ns.into(), max_body_bytes: 64 << 10, api_timeout: Duration::from_secs(5) }
}

/// Serve the receiver on a free loopback port; returns its URL.
async fn serve(app: App) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver::router(app)).await.unwrap() });
    format!("http://{addr}{PATH}")
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// One delivery as GitHub sends it: event, delivery id, content type and (unless `signature` says
/// otherwise) the body's signature under [`SECRET`].
struct Sent {
    status: u16,
    dropped: Option<String>,
    body: String,
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<String>,
) -> Sent {
    let mut req = http
        .post(url)
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header("Content-Type", "application/json")
        .header("User-Agent", "GitHub-Hookshot/test")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("X-Hub-Signature-256", s);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let dropped = r.headers().get(DROPPED_HEADER).map(|v| v.to_str().unwrap().to_string());
    Sent { status, dropped, body: r.text().await.unwrap() }
}

async fn signed(http: &reqwest::Client, url: &str, event: &str, delivery: &str, body: &[u8]) -> Sent {
    send(http, url, event, delivery, body, Some(sign(SECRET, body))).await
}

#[tokio::test]
async fn every_delivery_gets_its_answer_and_only_failures_make_runs() {
    let admin = support::client().await;
    support::install_crds(&admin).await;
    let ns = support::namespace(&admin, "webhook").await;
    let (client, _) = chart_identity(&ns).await;
    let url = serve(App::new(client, secret_file(&ns), settings(&ns))).await;
    let http = http();
    let runs = Api::<HealingRun>::namespaced(admin.clone(), &ns);
    let failure = fixture("workflow_job-failure.json");

    // Refused before anything is read: no signature, a wrong one, another secret's, a malformed one.
    let r = send(&http, &url, "workflow_job", "d-unsigned", &failure, None).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("missing X-Hub-Signature-256"), "{}", r.body);
    let mut tampered = failure.clone();
    tampered.extend_from_slice(b" ");
    let r = send(&http, &url, "workflow_job", "d-tampered", &tampered, Some(sign(SECRET, &failure))).await;
    assert_eq!(r.status, 401, "a signature of another body: {}", r.body);
    let r = send(&http, &url, "workflow_job", "d-other", &failure, Some(sign(b"another secret", &failure))).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = send(&http, &url, "workflow_job", "d-sha1", &failure, Some("sha1=0123".into())).await;
    assert_eq!(r.status, 401, "{}", r.body);
    // Over the cap (64 KiB here): 413, signed or not.
    let big = [b"{\"pad\":\"".as_slice(), &vec![b'x'; 70 << 10], b"\"}"].concat();
    assert_eq!(signed(&http, &url, "workflow_job", "d-big", &big).await.status, 413);
    // Signed but malformed JSON, and a handled kind whose run would lack a field.
    let r = signed(&http, &url, "workflow_job", "d-json", b"{\"action\": \"completed\",").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("malformed JSON"), "{}", r.body);
    let mut no_sha: serde_json::Value = serde_json::from_slice(&failure).unwrap();
    no_sha["workflow_job"].as_object_mut().unwrap().remove("head_sha");
    let r = signed(&http, &url, "workflow_job", "d-nosha", &serde_json::to_vec(&no_sha).unwrap()).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("body.workflow_job.head_sha"), "{}", r.body);
    // ping, other kinds, and handled kinds that are no failure of ours to heal: nothing created.
    let r = signed(&http, &url, "ping", "d-ping", br#"{"zen":"Design for failure.","hook_id":1}"#).await;
    assert_eq!((r.status, r.body.trim()), (200, "pong"));
    for (event, file, why) in [
        ("pull_request", "github/pull_request/1.json", "starts no run"),
        ("issue_comment", "github/issue_comment/1.json", "must have a line that starts with /healer"),
        ("workflow_job", "workflow_job-success.json", "body.workflow_job.conclusion"),
        ("workflow_job", "workflow_job-in_progress.json", "body.action"),
        ("check_run", "check_run-failure.json", "GitHub Actions app"),
        ("check_suite", "derived/check_suite-failure-actions.json", "GitHub Actions app"),
    ] {
        let r = signed(&http, &url, event, &format!("d-{event}"), &fixture(file)).await;
        assert_eq!(r.status, 204, "{file}: {}", r.body);
        let dropped = r.dropped.unwrap_or_default();
        assert!(dropped.contains(why), "{file}: {DROPPED_HEADER}: {dropped}");
    }
    assert!(runs.list(&Default::default()).await.unwrap().items.is_empty(), "no run for any of those");

    // The failures: one run each, named from the delivery's ids, with the delivery recorded.
    for (event, file, name, kind) in [
        ("workflow_job", "workflow_job-failure.json", "gh-2202229078-1-289782451", SourceEvent::WorkflowJob),
        ("check_run", "derived/check_run-failure-other-app.json", "gh-check-run-128620228", SourceEvent::CheckRun),
        ("check_suite", "derived/check_suite-failure.json", "gh-check-suite-118578147", SourceEvent::CheckSuite),
        ("status", "derived/status-failure.json", "gh-status-6805126730", SourceEvent::Status),
    ] {
        let delivery = format!("delivery-{event}");
        let r = signed(&http, &url, event, &delivery, &fixture(file)).await;
        assert_eq!(r.status, 201, "{file}: {}", r.body);
        assert!(r.body.contains(name), "{}", r.body);
        let run = runs.get(name).await.unwrap();
        assert_eq!(run.spec.source.event, kind);
        assert_eq!(run.spec.source.delivery_id.as_deref(), Some(delivery.as_str()));
        assert_eq!(run.labels()[CREATED_BY], "ci-healer-webhook");
        // GitHub's redelivery: the same body, a new delivery id; the run's name collides.
        let r = signed(&http, &url, event, &format!("{delivery}-again"), &fixture(file)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.starts_with("duplicate"), "{}", r.body);
    }
    assert_eq!(runs.list(&Default::default()).await.unwrap().items.len(), 4);
}

/// `/healer` comments through the receiver: a signed `/healer approve` on a pull request makes one
/// HealingCommand with the comment as GitHub sent it; GitHub's redelivery (a new delivery id) is a
/// duplicate; a bot's command, an edited comment, a deleted one and a mention make none, each
/// answered 204 with the filter that dropped it; an unsigned command is refused.
#[tokio::test]
async fn a_signed_healer_comment_makes_one_command_and_a_redelivery_is_a_duplicate() {
    let admin = support::client().await;
    support::install_crds(&admin).await;
    let ns = support::namespace(&admin, "webhook-cmd").await;
    let (client, _) = chart_identity(&ns).await;
    let url = serve(App::new(client, secret_file(&ns), settings(&ns))).await;
    let http = http();
    let commands = Api::<HealingCommand>::namespaced(admin.clone(), &ns);
    let approve = fixture("derived/issue_comment-healer-approve.json");

    let r = send(&http, &url, "issue_comment", "d-unsigned", &approve, None).await;
    assert_eq!(r.status, 401, "{}", r.body);
    for (file, why) in [
        ("derived/issue_comment-healer-bot.json", "body.comment.user.type must not be a bot"),
        ("derived/issue_comment-healer-edited.json", "body.action must be created"),
        ("github/issue_comment/6.json", "body.action must be created"),
        ("derived/issue_comment-healer-mention.json", "must have a line that starts with /healer"),
    ] {
        let r = signed(&http, &url, "issue_comment", "d-dropped", &fixture(file)).await;
        assert_eq!(r.status, 204, "{file}: {}", r.body);
        let dropped = r.dropped.unwrap_or_default();
        assert!(dropped.contains(why), "{file}: {DROPPED_HEADER}: {dropped}");
    }
    assert!(commands.list(&Default::default()).await.unwrap().items.is_empty(), "no command for any of those");

    let r = signed(&http, &url, "issue_comment", "d-approve", &approve).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.contains("created HealingCommand") && r.body.contains("ghc-492700400"), "{}", r.body);
    let cmd = commands.get("ghc-492700400").await.unwrap();
    let s = &cmd.spec;
    assert_eq!(
        (s.repository.as_str(), s.issue_number, s.pull_request, s.comment_id),
        ("Codertocat/Hello-World", 1, true, 492700400)
    );
    assert_eq!(
        (s.author.as_str(), s.author_type.as_deref(), s.body.as_str()),
        ("Codertocat", Some("User"), "/healer approve")
    );
    assert_eq!(s.delivery_id.as_deref(), Some("d-approve"));
    assert_eq!(cmd.labels()[CREATED_BY], "ci-healer-webhook");
    assert_eq!(cmd.status, None, "intake records the comment; the controller answers it");
    // GitHub's redelivery: the same body, a new delivery id; the command's name collides.
    let r = signed(&http, &url, "issue_comment", "d-approve-again", &approve).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.starts_with("duplicate: HealingCommand"), "{}", r.body);
    let items = commands.list(&Default::default()).await.unwrap().items;
    assert_eq!(items.len(), 1, "one command per comment");
    assert_eq!(items[0].spec.delivery_id.as_deref(), Some("d-approve"), "the first delivery's, untouched");
    assert!(
        Api::<HealingRun>::namespaced(admin, &ns).list(&Default::default()).await.unwrap().items.is_empty(),
        "a comment starts no run by itself"
    );
}

#[tokio::test]
async fn fifty_concurrent_redeliveries_of_one_delivery_make_exactly_one_run() {
    let admin = support::client().await;
    support::install_crds(&admin).await;
    let ns = support::namespace(&admin, "webhook-50").await;
    let (client, _) = chart_identity(&ns).await;
    let url = serve(App::new(client, secret_file(&ns), settings(&ns))).await;
    let http = http();
    let body = fixture("workflow_job-failure.json");
    let sends = (0..50).map(|i| {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        tokio::spawn(async move { signed(&http, &url, "workflow_job", &format!("redelivery-{i}"), &body).await })
    });
    let mut statuses = Vec::new();
    for s in futures::future::join_all(sends).await {
        let s = s.unwrap();
        statuses.push(s.status);
        assert!(s.status == 201 || (s.status == 200 && s.body.starts_with("duplicate")), "{} {}", s.status, s.body);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 49, "{statuses:?}");
    let items = Api::<HealingRun>::namespaced(admin, &ns).list(&Default::default()).await.unwrap().items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].name_any(), "gh-2202229078-1-289782451");
}

/// An API server that accepts connections and never answers: the receiver answers 504 after its
/// API timeout, well within the 10 seconds GitHub waits.
#[tokio::test]
async fn a_silent_api_server_is_answered_within_githubs_ten_seconds() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept() {
            conns.push(c);
            if conns.len() > 4 {
                break;
            }
        }
    });
    let cfg = kube::Config::new(format!("http://{addr}").parse().unwrap());
    let client = Client::try_from(cfg).unwrap();
    let ns = "silent";
    let s = Settings { api_timeout: Duration::from_millis(1500), ..settings(ns) };
    let url = serve(App::new(client, secret_file(ns), s)).await;
    let start = Instant::now();
    let r = signed(&http(), &url, "workflow_job", "d-silent", &fixture("workflow_job-failure.json")).await;
    let took = start.elapsed();
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(r.body.contains("redeliver later"), "{}", r.body);
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    drop(held);
}

/// `healer webhook` as a process: flags and environment, the secret file, the log line with the
/// delivery id.
#[tokio::test]
async fn the_healer_webhook_binary_serves_the_receiver() {
    let admin = support::client().await;
    support::install_crds(&admin).await;
    let ns = support::namespace(&admin, "webhook-bin").await;
    let (_, _) = chart_identity(&ns).await;
    let mut kc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(support::kubeconfig()).unwrap()).unwrap();
    kc["users"][0]["user"]["as"] = format!("system:serviceaccount:{ns}:ci-healer-webhook").into();
    let kubeconfig = out_dir().join(format!("kubeconfig-{ns}"));
    std::fs::write(&kubeconfig, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    let log = out_dir().join(format!("healer-webhook-{ns}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_healer"))
        .args(["webhook", "--addr", "127.0.0.1:0", "--namespace", &ns])
        .env("HEALER_WEBHOOK_SECRET_FILE", secret_file(&ns))
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _guard = Kill(child);
    let addr = support::wait_for("the receiver's address in its log", Duration::from_secs(20), || {
        let log = log.clone();
        async move {
            let text = std::fs::read_to_string(&log).ok()?;
            let line = text.lines().find(|l| l.contains("serving the GitHub webhook receiver"))?;
            Some(line.split("addr=").nth(1)?.split_whitespace().next()?.to_string())
        }
    })
    .await;
    let url = format!("http://{addr}{PATH}");
    let http = http();
    let r = signed(&http, &url, "ping", "d-ping", b"{}").await;
    assert_eq!(r.status, 200);
    let r = signed(&http, &url, "workflow_job", "bin-delivery-1", &fixture("workflow_job-failure.json")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(send(&http, &url, "workflow_job", "bin-delivery-2", b"{}", None).await.status, 401);
    let run = Api::<HealingRun>::namespaced(admin.clone(), &ns).get("gh-2202229078-1-289782451").await.unwrap();
    assert_eq!(run.spec.source.delivery_id.as_deref(), Some("bin-delivery-1"));
    // A `/healer` comment becomes a HealingCommand, made by the binary under the chart's Role.
    let approve = fixture("derived/issue_comment-healer-approve.json");
    let r = signed(&http, &url, "issue_comment", "bin-delivery-3", &approve).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(Api::<HealingCommand>::namespaced(admin, &ns).list(&Default::default()).await.unwrap().items.len(), 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().any(|l| l.contains("bin-delivery-1") && l.contains("created")),
        "a log line names the delivery and what became of it:\n{text}"
    );
    assert!(!text.contains(std::str::from_utf8(SECRET).unwrap()), "the secret is never logged");
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The README's GitHub Actions snippet (for repositories that cannot add a webhook), run as a
/// workflow step would run it (`bash -eo pipefail`), with a stand-in `gh` that answers the jobs of a
/// run attempt: its signed `workflow_job` delivery creates the run the real delivery would.
#[tokio::test]
async fn the_readmes_actions_snippet_posts_a_signed_failure() {
    let readme = std::fs::read_to_string(support::root().join("README.md")).unwrap();
    let block = readme.split("```yaml\n  ci-healer:").nth(1).expect("the snippet").split("```").next().unwrap();
    let script: String = block
        .split("run: |\n")
        .nth(1)
        .expect("its run: step")
        .lines()
        .map(|l| l.strip_prefix("          ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let admin = support::client().await;
    support::install_crds(&admin).await;
    let ns = support::namespace(&admin, "webhook-actions").await;
    let (client, _) = chart_identity(&ns).await;
    let url = serve(App::new(client, secret_file(&ns), settings(&ns))).await;

    // `gh api repos/…/actions/runs/ID/attempts/N/jobs --jq FILTER`: the jobs as GitHub's REST API lists
    // them (a job object is a delivery's workflow_job), one failed and one that passed.
    let dir = tempfile::tempdir().unwrap();
    let failed: serde_json::Value = serde_json::from_slice(&fixture("workflow_job-failure.json")).unwrap();
    let mut passed = failed["workflow_job"].clone();
    passed["id"] = 1.into();
    passed["conclusion"] = "success".into();
    let jobs = serde_json::json!({"total_count": 2, "jobs": [passed, failed["workflow_job"]]});
    std::fs::write(dir.path().join("jobs.json"), jobs.to_string()).unwrap();
    let gh = dir.path().join("gh");
    std::fs::write(
        &gh,
        "#!/usr/bin/env bash\nset -eu\n[ \"$1 $2 $3\" = \"api repos/Codertocat/Hello-World/actions/runs/2202229078/attempts/1/jobs --jq\" ] || { echo \"unexpected: $*\" >&2; exit 2; }\njq -r \"$4\" \"$(dirname \"$0\")/jobs.json\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&gh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The receiver runs on this test's runtime: the script must not block it.
    let out = tokio::process::Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
        .env("PATH", format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap()))
        .env("GH_TOKEN", "unused")
        .env("HEALER_URL", &url)
        .env("HEALER_SECRET", std::str::from_utf8(SECRET).unwrap())
        .env("GITHUB_REPOSITORY", "Codertocat/Hello-World")
        .env("GITHUB_RUN_ID", "2202229078")
        .env("GITHUB_RUN_ATTEMPT", "1")
        .env("GITHUB_ACTOR", "Codertocat")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{script}\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("created HealingRun"), "{stdout}");
    let items = Api::<HealingRun>::namespaced(admin, &ns).list(&Default::default()).await.unwrap().items;
    assert_eq!(items.len(), 1, "one run: the failed job only");
    let s = &items[0].spec.source;
    assert_eq!(items[0].name_any(), "gh-2202229078-1-289782451");
    assert_eq!(s.delivery_id.as_deref(), Some("actions-289782451"));
    assert_eq!((s.workflow_name.as_deref(), s.job_name.as_deref()), (Some("CodeQL"), Some("linters")));
    assert_eq!(s.failed_steps, vec!["Run yarn run format-check"]);
}
