//! R5 (issue 12): no secret leaks, end to end. A HealingRun is healed by a real `healer controller`
//! subprocess with the host runner (the attempt pod's steps as local processes), the built-in LLM
//! agent against the loopback Anthropic provider (tool use), the loopback GitHub (the job log is
//! read from it, the fix delivered as a draft pull request, the run reported with commit statuses
//! and a comment on the failing branch's pull request) and the loopback Slack (one message, thread
//! replies). Canary secrets are planted
//!
//! - in the **failure log** GitHub serves, one of every format the masker knows (README "Inside an
//!   attempt", `agent::context` PATTERNS) and the controller's own GitHub token;
//! - in the **mounted Secrets**: the LLM API key, the git token, the GitHub token, the Slack token;
//! - in **files of the repository**: a `.env` the model reads with `read_file`, and `AGENTS.md`,
//!   which the prompt quotes;
//! - in the **LLM's answers**: token-shaped strings in its text, in a tool call's arguments, and in
//!   the `finish` diagnosis (with the LLM key and the Slack token echoed);
//!
//! and then everything is scanned: both CRDs' full objects (status included), Jobs and Pods
//! (termination messages), every Event and every ConfigMap of the namespace, the controller's log,
//! the host runner's log and every step's log, the patch, the dashboard's pages (`healer
//! dashboard`) and the controller's `/metrics`, and every request (body, query, headers; Git Data
//! API blobs decoded from base64) the loopback GitHub, Slack and LLM servers received. No canary
//! holds a character that JSON or HTML would escape, so an escaped copy cannot hide.
//!
//! A second run carries the same log as an inline `spec.failure.excerpt` (propose mode, re-healed
//! from the remembered fix): its spec is where those canaries were planted, so only that field is
//! left out of the scan. Expected: 0 hits, except each credential in
//! the one header it is for (the LLM key in `x-api-key` to the provider, the GitHub token in
//! `Authorization` to GitHub, the Slack token in `Authorization` to Slack), and the model's own
//! words going back to the same model as the conversation's assistant turns.
//!
//! Repository content is the repository's: it is masked by pattern wherever it leaves the pod
//! (the prompt, tool results sent to the provider, logs), since a `.env` or a config file with a
//! secret-shaped value is exactly what must not reach a third-party LLM. The patch is the
//! exception by design: it is the repository's own change and goes back only to the repository (its
//! bytes must stay exact to apply), so it is kept unmasked; here the fix does not touch the files
//! holding the canaries, and the scan proves no canary reached the patch.

mod loopback_github;
mod loopback_slack;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ci_healer::crd::{HealingAttempt, HealingRun};
use k8s_openapi::api::batch::v1::Job as K8sJob;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Pod, Secret};
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use loopback_github::{LoopbackGitHub, Options};
use loopback_slack::LoopbackSlack;
use serde_json::{Value, json};
use support::attempt::*;

// ----- the canaries ---------------------------------------------------------------------------

/// The mounted Secrets. The LLM key and the git token have no known format (only the literal
/// masking of mounted secret files can catch them); the GitHub token neither (the controller masks
/// its own token by value); the Slack token is a bot token.
const LLM_KEY: &str = "r5-canary-llm-key-5e6f7a8b9c";
const GIT_TOKEN: &str = "r5-canary-git-token-1c2d3e4f";
const GITHUB_TOKEN: &str = "r5-canary-github-token-9d8e7f6a";
const SLACK_TOKEN: &str = "xoxb-5555555555-6666666666-r5canarySlackToken";

/// In the failure log, one of each masked format (the value is what must never show up again).
const LOG_CANARIES: &[(&str, &str, &str)] = &[
    ("log: GitHub classic token", "GITHUB_TOKEN=", "ghp_R5canaryLogGhp0123456789abcdefABCDEF"),
    ("log: GitHub fine-grained token", "token ", "github_pat_11R5CANARY0_r5canaryLogFineGrained0123456789"),
    ("log: GitLab token", "CI_JOB_TOKEN=", "glpat-R5canaryLogGitLab012345"),
    ("log: AWS access key id", "AWS_ACCESS_KEY_ID=", "AKIAR5CANARYKEY12345"),
    ("log: AWS secret access key", "aws_secret_access_key = ", "R5canaryLogAwsSecret0123456789abcdefGHIJ"),
    ("log: password assignment", "DB_PASSWORD=", "R5canaryLogPassw0rd!"),
    ("log: Slack token", "SLACK_WEBHOOK_TOKEN=", "xoxp-R5canaryLogSlack-0123456789"),
    ("log: Bearer token", "Authorization: Bearer ", "R5canaryLogBearer.eyJhbGciOiJIUzI1NiJ9.sig"),
    ("log: API key sk-", "OPENAI_API_KEY=", "sk-R5canaryLogOpenAi0123456789"),
    ("log: the controller's GitHub token", "Authorization: token ", GITHUB_TOKEN),
];
/// A PEM private key block in the log: its body line is the canary.
const LOG_PEM_BODY: &str = "MIIEr5canaryLogPemBodyQUFBQUFBQUFBQUFB";

/// In the repository: a `.env` the model reads, and `AGENTS.md`, which the prompt quotes.
const REPO_DOTENV_PASSWORD: &str = "R5canaryRepoDbPassw0rd";
const REPO_DOTENV_KEY: &str = "sk-R5canaryRepoStripe0123456789";
const REPO_AGENTS_TOKEN: &str = "glpat-R5canaryRepoAgentsMd0123";

/// In the LLM's answers: its text, a tool call's arguments, its `finish` diagnosis.
const LLM_TEXT_TOKEN: &str = "ghp_R5canaryLlmText0123456789abcdefABCDEF";
const LLM_TOOL_TOKEN: &str = "xoxb-R5canaryLlmToolArg-0123456789";
const LLM_FINISH_TOKEN: &str = "AKIAR5CANARYLLMFIN01";

/// Where a canary was planted (what decides the one place it may legitimately appear).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Origin {
    Log,
    Secret,
    Repository,
    /// The model's own words (they go back to the same provider as assistant turns).
    LlmAnswer,
}

struct Canary {
    name: String,
    value: String,
    origin: Origin,
}

fn canaries() -> Vec<Canary> {
    let c = |name: &str, value: &str, origin| Canary { name: name.into(), value: value.into(), origin };
    let mut v: Vec<Canary> = LOG_CANARIES.iter().map(|(n, _, value)| c(n, value, Origin::Log)).collect();
    v.push(c("log: PEM private key", LOG_PEM_BODY, Origin::Log));
    v.extend([
        c("Secret: LLM API key", LLM_KEY, Origin::Secret),
        c("Secret: git token", GIT_TOKEN, Origin::Secret),
        c("Secret: Slack token", SLACK_TOKEN, Origin::Secret),
        c("repository: .env password", REPO_DOTENV_PASSWORD, Origin::Repository),
        c("repository: .env API key", REPO_DOTENV_KEY, Origin::Repository),
        c("repository: AGENTS.md token", REPO_AGENTS_TOKEN, Origin::Repository),
        c("LLM answer: text", LLM_TEXT_TOKEN, Origin::LlmAnswer),
        c("LLM answer: tool call arguments", LLM_TOOL_TOKEN, Origin::LlmAnswer),
        c("LLM answer: finish diagnosis", LLM_FINISH_TOKEN, Origin::LlmAnswer),
    ]);
    // The GitHub token is both in the log and a mounted Secret: listed once (as the log's).
    v
}

/// The failing job's log: `cargo test` output whose failing test printed its environment, the way a
/// debug step or a panicking test that dumps its config leaks secrets into CI logs.
fn failure_log() -> String {
    let mut s = String::from(
        "   Compiling demo v0.1.0 (/home/runner/work/demo/demo)\n    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.52s\n     Running unittests src/lib.rs (target/debug/deps/demo-1d2c3b4a5f6e7d8c)\n\nrunning 1 test\ntest tests::adds_one ... FAILED\n\nfailures:\n\n---- tests::adds_one stdout ----\nconfig loaded from the environment:\n",
    );
    for (_, prefix, value) in LOG_CANARIES {
        s.push_str(&format!("  {prefix}{value}\n"));
    }
    s.push_str(&format!(
        "  DEPLOY_KEY=-----BEGIN OPENSSH PRIVATE KEY-----\n{LOG_PEM_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
    ));
    s.push_str(
        "\nthread 'tests::adds_one' panicked at src/lib.rs:9:9:\nassertion `left == right` failed\n  left: 3\n right: 2\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n\nfailures:\n    tests::adds_one\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\nerror: test failed, to rerun pass `--lib`\n##[error]Process completed with exit code 101.\n",
    );
    s
}

fn repository_files() -> Vec<(&'static str, String)> {
    let mut f = crate_files(OFF_BY_ONE);
    f.push((".env", format!("DATABASE_URL=postgres://app@db/app\nDATABASE_PASSWORD={REPO_DOTENV_PASSWORD}\nSTRIPE_KEY={REPO_DOTENV_KEY}\n")));
    f.push((
        "AGENTS.md",
        format!("# Notes for agents\n\nRun `cargo test`. The staging deploy token is {REPO_AGENTS_TOKEN} (do not commit it).\n"),
    ));
    f.push((".github/workflows/ci.yml", WORKFLOW.into()));
    f
}

const WORKFLOW: &str = "name: CI\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: cargo test\n";
const RUN_ID: i64 = 7001;
const JOB_ID: i64 = 7002;
const CHANNEL: &str = "C0R5SECRET";

/// The model's session: read `.env` and the code, search for a token (a tool call whose arguments
/// carry a canary), fix the code, finish with a diagnosis that echoes secrets.
fn llm_session() -> Vec<Reply> {
    vec![
        anthropic_tools(
            Some(&format!(
                "The log shows a leaked token {LLM_TEXT_TOKEN}; I'll read the code and the .env it came from."
            )),
            vec![
                tool_use("toolu_01A", "read_file", json!({"path": "src/lib.rs"})),
                tool_use("toolu_01B", "read_file", json!({"path": ".env"})),
                tool_use("toolu_01C", "search", json!({"pattern": LLM_TOOL_TOKEN, "path": "."})),
            ],
            (2100, 70, 0, 3400),
        ),
        anthropic_tools(
            None,
            vec![tool_use(
                "toolu_02",
                "edit_file",
                json!({"path": "src/lib.rs", "old_string": "    x + 2\n", "new_string": "    x + 1\n"}),
            )],
            (260, 60, 3580, 0),
        ),
        anthropic_tools(
            Some(&format!("Done. Note: keys {LLM_FINISH_TOKEN} and {LLM_KEY} appeared in the log.")),
            vec![tool_use(
                "toolu_03",
                "finish",
                json!({"diagnosis": format!(
                    "add_one added 2 instead of 1. Rotate {LLM_FINISH_TOKEN}, {LLM_KEY} and {SLACK_TOKEN}: they were printed."
                )}),
            )],
            (120, 35, 3930, 0),
        ),
    ]
}

// ----- the scan -------------------------------------------------------------------------------

/// One place scanned: its items (label, text).
struct Place {
    name: String,
    items: Vec<(String, String)>,
    /// Canaries allowed in this place (the one legitimate place of a credential).
    allowed: Vec<String>,
    /// For LLM request bodies: the same text without the assistant turns, where the model's own
    /// words are not counted. `None` elsewhere.
    without_assistant: Option<Vec<String>>,
}

impl Place {
    fn new(name: &str, items: Vec<(String, String)>) -> Self {
        Self { name: name.into(), items, allowed: vec![], without_assistant: None }
    }
}

struct Hit {
    place: String,
    item: String,
    canary: String,
    context: String,
}

fn scan(places: &[Place], canaries: &[Canary]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for p in places {
        for (i, (label, text)) in p.items.iter().enumerate() {
            for c in canaries {
                if p.allowed.contains(&c.value) {
                    continue;
                }
                let hay = match (&p.without_assistant, c.origin) {
                    (Some(w), Origin::LlmAnswer) => &w[i],
                    _ => text,
                };
                if let Some(at) = hay.find(&c.value) {
                    let from = hay[..at].char_indices().rev().nth(60).map_or(0, |(i, _)| i);
                    let to = (at + c.value.len() + 40).min(hay.len());
                    let to = (to..=hay.len()).find(|&i| hay.is_char_boundary(i)).unwrap_or(hay.len());
                    hits.push(Hit {
                        place: p.name.clone(),
                        item: label.clone(),
                        canary: c.name.clone(),
                        context: hay[from..to].replace('\n', "⏎"),
                    });
                }
            }
        }
    }
    hits
}

fn json_items<T: serde::Serialize + ResourceExt>(list: &[T]) -> Vec<(String, String)> {
    list.iter().map(|o| (o.name_any(), serde_json::to_string(o).unwrap())).collect()
}

/// A JSON body with every `{"content": <base64>, "encoding": "base64"}` (Git Data API blobs)
/// decoded next to it, so a secret cannot hide in base64.
fn with_decoded_blobs(body: &Value) -> String {
    use base64::Engine;
    let mut out = body.to_string();
    if body["encoding"] == "base64"
        && let Some(c) = body["content"].as_str()
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(c.replace('\n', ""))
    {
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(&bytes));
    }
    out
}

/// The request body without its assistant turns (Anthropic `messages[]` with `role: assistant`).
fn without_assistant_turns(body: &Value) -> String {
    let mut b = body.clone();
    if let Some(m) = b.get_mut("messages").and_then(Value::as_array_mut) {
        m.retain(|m| m["role"] != "assistant");
    }
    b.to_string()
}

fn headers_text(headers: &[(String, String)], skip: &[&str]) -> String {
    headers
        .iter()
        .filter(|(k, _)| !skip.contains(&k.to_ascii_lowercase().as_str()))
        .map(|(k, v)| format!("{k}: {v}\n"))
        .collect()
}

/// Every file under `dir` whose parent directory is `logs` or `termination` (the host runner's
/// step logs and termination messages), as (relative path, text).
fn step_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                // Not the pod's volumes: the workspace is the repository itself, and the secret
                // volumes are the mounts.
                if p.file_name().is_some_and(|n| n != "volumes") {
                    stack.push(p);
                }
            } else if ft.is_file()
                && p.parent().and_then(|d| d.file_name()).is_some_and(|n| n == "logs" || n == "termination")
            {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()));
            }
        }
    }
    out.sort();
    out
}

/// `healer dashboard` for one namespace (admin kubeconfig); killed on drop.
struct Dashboard {
    child: std::process::Child,
    log: tempfile::NamedTempFile,
}

impl Dashboard {
    fn start(ns: &str) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_healer"))
            .args(["dashboard", "--namespace", ns, "--addr", "127.0.0.1:0"])
            .env("KUBECONFIG", support::kubeconfig())
            .env("RUST_LOG", "info,kube=warn")
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("start healer dashboard");
        Self { child, log }
    }

    /// The base URL it logged, once its cache is complete.
    async fn url(&self) -> String {
        let log = self.log.path().to_path_buf();
        support::wait_for("the dashboard's cache and address", Duration::from_secs(30), || {
            let log = log.clone();
            async move {
                let text = std::fs::read_to_string(&log).ok()?;
                text.contains("dashboard cache is complete").then_some(())?;
                let url = text.lines().find_map(|l| l.split("url=").nth(1))?.split_whitespace().next()?;
                Some(url.trim_end_matches('/').to_string())
            }
        })
        .await
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- the test -------------------------------------------------------------------------------

async fn secret(client: &kube::Client, ns: &str, name: &str, key: &str, value: &str) {
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": name}, "stringData": {key: value}})).unwrap();
    Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &s).await.unwrap();
}

#[tokio::test]
async fn canary_secrets_planted_everywhere_are_found_nowhere() {
    // The repository: checked out by the attempt from a local bare remote, mirrored into the
    // loopback GitHub at the same commit (the fix pull request is built there).
    let repo = repo(&as_refs(&repository_files()));
    let gh = LoopbackGitHub::start(Options::default()).await;
    {
        let mut st = gh.state();
        st.auth.tokens.insert(GITHUB_TOKEN.into(), "healer-bot".into());
        let r = st.add_repo(REPO);
        let sha = r.import_git(&repo.dir.path().join("work"), &repo.sha).expect("mirror the failing commit");
        assert_eq!(sha, repo.sha);
        r.refs.insert("heads/feature".into(), repo.sha.clone());
        r.runs.insert(
            RUN_ID,
            loopback_github::WorkflowRun {
                id: RUN_ID,
                path: ".github/workflows/ci.yml".into(),
                head_sha: repo.sha.clone(),
                head_branch: "feature".into(),
                ..Default::default()
            },
        );
        r.jobs.insert(
            JOB_ID,
            loopback_github::Job {
                id: JOB_ID,
                run_id: RUN_ID,
                name: "test".into(),
                workflow_name: "CI".into(),
                head_sha: repo.sha.clone(),
                head_branch: "feature".into(),
                steps: vec![
                    loopback_github::Step { name: "Set up job".into(), conclusion: "success".into() },
                    loopback_github::Step { name: "Run cargo test".into(), conclusion: "failure".into() },
                ],
                log: loopback_github::Log::Text(loopback_github::github_log_format(&failure_log())),
                ..Default::default()
            },
        );
        r.pulls.push(loopback_github::Pull {
            number: 3,
            title: "Adds one".into(),
            head_ref: "feature".into(),
            head_sha: repo.sha.clone(),
            base_ref: "main".into(),
            user: "octocat".into(),
            ..Default::default()
        });
    }
    let slack = LoopbackSlack::start(SLACK_TOKEN, &[(CHANNEL, "ci-healer")]).await;
    let llm = ScriptedLlm::start(llm_session()).await;

    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "secrets-r5").await;
    let apis = support::Apis::new(&client, &ns);
    secret(&client, &ns, "llm", "api-key", LLM_KEY).await;
    secret(&client, &ns, "git", "token", GIT_TOKEN).await;
    secret(&client, &ns, "github-token", "token", GITHUB_TOKEN).await;
    secret(&client, &ns, "slack", "token", SLACK_TOKEN).await;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = json!({
        "healerImage": "healer:test",
        "gitTokenSecret": {"name": "git", "key": "token"},
        "profiles": {"general": {"image": "docker.io/library/buildpack-deps:bookworm"}, "rust": {
            "image": "docker.io/library/rust:1.95",
            "llmApiKeySecret": {"name": "llm", "key": "api-key"},
            "settings": {
                "gitBaseUrl": repo.base_url, "fixers": [], "validationCommands": ["cargo test --quiet"],
                "llm": {"provider": "anthropic", "baseUrl": llm.url, "model": "claude-test", "maxTurns": 1,
                        "maxRetries": 1, "initialBackoffMillis": 50}
            }
        }},
        "github": {"apiUrl": gh.api_url(), "tokenSecret": {"name": "github-token", "key": "token"},
                   "secretNamespace": ns, "requestTimeoutSeconds": 10},
        "allowedRepositories": {ns.clone(): [REPO]},
        "slack": {"apiUrl": slack.api_url(), "tokenSecret": {"name": "slack", "key": "token"},
                  "secretNamespace": ns, "requestTimeoutSeconds": 5, "channel": CHANNEL},
    });
    let cfg_path = tmp.path().join("config.yaml");
    std::fs::write(&cfg_path, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
    let runner = support::HostRunner::start(&ns);
    let ctl = support::ControllerProcess::start(&ns, Some(&cfg_path));

    // The run the Sensor makes from the `workflow_job` delivery: no excerpt, the log is read from
    // GitHub.
    let name = "r5-canaries";
    let run: HealingRun = serde_json::from_value(json!({
        "apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "source": {"provider": "github", "event": "workflow_job", "repository": REPO, "branch": "feature",
                       "headSha": repo.sha, "workflowName": "CI", "jobName": "test", "runId": RUN_ID,
                       "runAttempt": 1, "jobId": JOB_ID, "failedSteps": ["Run cargo test"], "sender": "octocat"},
            "policy": {"agent": "rust", "maxAttempts": 1, "mode": "pull-request"}
        }
    }))
    .unwrap();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();

    // Healed: Fixed, delivered as a pull request, reported, notified.
    let done =
        support::wait_for("the run Fixed, delivered, reported and notified", Duration::from_secs(300), || async {
            assert!(!ctl.logs().contains("healer failed"), "the controller stopped:\n{}", ctl.logs());
            let r = apis.runs.get(name).await.ok()?;
            let st = r.status.as_ref()?;
            let is = |t: &str| st.conditions.iter().any(|c| c.type_ == t && c.status == "True");
            if st.phase.is_some_and(|p| p.is_terminal()) && format!("{:?}", st.phase?) != "Fixed" {
                panic!(
                    "the run ended {:?}\n{st:#?}\n--- controller\n{}\n--- host runner\n{}",
                    st.phase,
                    ctl.logs(),
                    runner.logs()
                );
            }
            let reported =
                st.report.as_ref().and_then(|r| r.reported.as_deref()).is_some_and(|k| k.starts_with("Fixed/#"));
            let shown = st.slack.as_ref().and_then(|s| s.phase.as_deref()) == Some("Fixed");
            (is("Delivered") && reported && shown).then_some(r)
        })
        .await;
    let st = done.status.clone().unwrap();
    let pr = st.pull_request.clone().expect("status.pullRequest");

    // The second run: the same failure as an inline excerpt in the spec (what a sender other than
    // the Sensor may post), in propose mode, on the branch tip (a later commit with the same bug).
    // The earlier fix is remembered: it is re-applied without the model.
    let later = git(&repo.dir.path().join("work"), &["rev-parse", "HEAD"]);
    {
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        r.import_git(&repo.dir.path().join("work"), &later).expect("mirror the later commit");
        r.refs.insert("heads/main".into(), later.clone());
    }
    let inline = "r5-inline-excerpt";
    let run: HealingRun = serde_json::from_value(json!({
        "apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun",
        "metadata": {"name": inline, "namespace": ns},
        "spec": {
            "source": {"provider": "github", "repository": REPO, "branch": "main", "headSha": later},
            "failure": {"excerpt": failure_log()},
            "policy": {"agent": "rust", "maxAttempts": 1, "mode": "propose"}
        }
    }))
    .unwrap();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    support::wait_for("the inline run Fixed, reported and notified", Duration::from_secs(300), || async {
        assert!(!ctl.logs().contains("healer failed"), "the controller stopped:\n{}", ctl.logs());
        let r = apis.runs.get(inline).await.ok()?;
        let st = r.status.as_ref()?;
        if st.phase.is_some_and(|p| p.is_terminal()) && format!("{:?}", st.phase?) != "Fixed" {
            panic!(
                "the run ended {:?}\n{st:#?}\n--- controller\n{}\n--- host runner\n{}",
                st.phase,
                ctl.logs(),
                runner.logs()
            );
        }
        let reported = st.report.as_ref().and_then(|r| r.reported.as_deref()) == Some("Fixed");
        let shown = st.slack.as_ref().and_then(|s| s.phase.as_deref()) == Some("Fixed");
        (reported && shown).then_some(r)
    })
    .await;
    // Let the last thread replies and Events settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let reqs = llm.requests();
    let patch_cm = st.patch.as_ref().and_then(|p| p.config_map.clone()).expect("a kept patch");
    let patch = cms.get(&patch_cm).await.unwrap().data.unwrap()["patch.diff"].clone();

    // ----- the scan
    let mut places = Vec::new();
    let mut runs = apis.runs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(runs.len(), 2);
    for r in &mut runs {
        // Where the canaries of the inline run were planted (its sender's own text).
        if let Some(f) = r.spec.failure.as_mut() {
            f.excerpt = "<planted>".into();
        }
    }
    places.push(Place::new("HealingRun (spec and status)", json_items(&runs)));
    let attempts = Api::<HealingAttempt>::namespaced(client.clone(), &ns).list(&ListParams::default()).await.unwrap();
    places.push(Place::new("HealingAttempt (spec and status)", json_items(&attempts.items)));
    let jobs = Api::<K8sJob>::namespaced(client.clone(), &ns).list(&ListParams::default()).await.unwrap();
    places.push(Place::new("Job", json_items(&jobs.items)));
    let pods = Api::<Pod>::namespaced(client.clone(), &ns).list(&ListParams::default()).await.unwrap();
    places.push(Place::new("Pod (termination messages)", json_items(&pods.items)));
    let events = Api::<Event>::namespaced(client.clone(), &ns).list(&ListParams::default()).await.unwrap();
    places.push(Place::new("Event", json_items(&events.items)));
    let all_cms = cms.list(&ListParams::default()).await.unwrap();
    places.push(Place::new("ConfigMap", json_items(&all_cms.items)));
    places.push(Place::new("patch", vec![(patch_cm.clone(), patch.clone())]));
    places.push(Place::new("controller log", vec![("controller".into(), ctl.logs())]));
    places.push(Place::new("host runner log", vec![("host-runner".into(), runner.logs())]));
    let steps = step_files(&runner.pods_dir());
    assert!(steps.iter().any(|(p, _)| p.ends_with("logs/agent.log")), "no step logs found: {steps:?}");
    places.push(Place::new("step logs and termination messages", steps));
    // The same step logs through the API server (`kubectl logs`), while the pod is there.
    let mut via_api = Vec::new();
    for p in &pods.items {
        for c in ["prepare", "checkout", "llm-proxy", "agent", "validate"] {
            let lp = kube::api::LogParams { container: Some(c.into()), ..Default::default() };
            if let Ok(text) = Api::<Pod>::namespaced(client.clone(), &ns).logs(&p.name_any(), &lp).await {
                via_api.push((format!("{}/{c}", p.name_any()), text));
            }
        }
    }
    places.push(Place::new("step logs (pods/log)", via_api));

    // What people see: the dashboard's pages (and its log), the controller's metrics.
    let dashboard = Dashboard::start(&ns);
    let base = dashboard.url().await;
    let mut pages = Vec::new();
    for path in ["/".to_string(), "/repositories".into(), format!("/runs/{ns}/{name}"), format!("/runs/{ns}/{inline}")]
    {
        let resp = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        pages.push((path, resp.text().await.unwrap()));
    }
    assert!(pages[2].1.contains("[MASKED]"), "the run page shows the masked excerpt:\n{}", pages[2].1);
    pages.push(("dashboard log".into(), dashboard.logs()));
    places.push(Place::new("dashboard pages and log", pages));
    places.push(Place::new("controller /metrics", vec![("/metrics".into(), ctl.http_get("/metrics").await)]));

    let gh_reqs = gh.requests();
    places.push(Place::new(
        "GitHub requests (path, query, body, headers but Authorization)",
        gh_reqs
            .iter()
            .map(|r| {
                let body = r.body.as_ref().map(with_decoded_blobs).unwrap_or_default();
                (
                    format!("#{} {}", r.seq, r.operation),
                    format!(
                        "{} {} {:?}\n{}\n{body}",
                        r.method,
                        r.path,
                        r.query,
                        headers_text(&r.headers, &["authorization"])
                    ),
                )
            })
            .collect(),
    ));
    let mut gh_auth = Place::new(
        "GitHub Authorization headers",
        gh_reqs
            .iter()
            .map(|r| (format!("#{} {}", r.seq, r.operation), headers_text(&r.headers, &[]).to_string()))
            .map(|(l, h)| (l, h.lines().filter(|l| l.starts_with("authorization:")).collect::<Vec<_>>().join("\n")))
            .collect(),
    );
    gh_auth.allowed = vec![GITHUB_TOKEN.into()];
    places.push(gh_auth);
    places.push(Place::new(
        "GitHub log storage requests",
        gh.blob_requests().iter().map(|b| (b.path.clone(), format!("{b:?}"))).collect(),
    ));

    let slack_reqs = slack.requests();
    places.push(Place::new(
        "Slack requests (body, headers but Authorization)",
        slack_reqs
            .iter()
            .map(|r| {
                (
                    format!("#{} {}", r.seq, r.method),
                    format!("{}\n{}", headers_text(&r.headers, &["authorization"]), r.body),
                )
            })
            .collect(),
    ));
    let mut slack_auth = Place::new(
        "Slack Authorization headers",
        slack_reqs
            .iter()
            .map(|r| {
                let h = r.headers.iter().filter(|(k, _)| k == "authorization").map(|(_, v)| v.as_str());
                (format!("#{} {}", r.seq, r.method), h.collect::<Vec<_>>().join("\n"))
            })
            .collect(),
    );
    slack_auth.allowed = vec![SLACK_TOKEN.into()];
    places.push(slack_auth);

    let mut llm_bodies = Place::new(
        "LLM requests (body, headers but x-api-key)",
        reqs.iter()
            .enumerate()
            .map(|(i, r)| {
                let h: Vec<(String, String)> = r.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                (format!("#{} {}", i + 1, r.path), format!("{}\n{}", headers_text(&h, &["x-api-key"]), r.body))
            })
            .collect(),
    );
    llm_bodies.without_assistant = Some(
        reqs.iter()
            .map(|r| {
                let h: Vec<(String, String)> = r.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                format!("{}\n{}", headers_text(&h, &["x-api-key"]), without_assistant_turns(&r.body))
            })
            .collect(),
    );
    places.push(llm_bodies);
    let mut llm_auth = Place::new(
        "LLM x-api-key headers",
        reqs.iter()
            .enumerate()
            .map(|(i, r)| (format!("#{}", i + 1), r.headers.get("x-api-key").cloned().unwrap_or_default()))
            .collect(),
    );
    llm_auth.allowed = vec![LLM_KEY.into()];
    places.push(llm_auth);

    let canaries = canaries();
    let hits = scan(&places, &canaries);
    let mut per_place: BTreeMap<&str, usize> = BTreeMap::new();
    for h in &hits {
        *per_place.entry(h.place.as_str()).or_default() += 1;
    }
    eprintln!("\nR5 secret scan: {} canaries, run {name} Fixed, pull request #{}", canaries.len(), pr.number);
    eprintln!("| place scanned | items | bytes | hits |\n|---|---|---|---|");
    for p in &places {
        let bytes: usize = p.items.iter().map(|(_, t)| t.len()).sum();
        eprintln!("| {} | {} | {} | {} |", p.name, p.items.len(), bytes, per_place.get(p.name.as_str()).unwrap_or(&0));
    }
    for h in &hits {
        eprintln!("HIT {} in {} / {}: …{}…", h.canary, h.place, h.item, h.context);
    }
    // Each place held something to scan.
    for p in &places {
        if !p.name.starts_with("step logs (pods/log)") && !p.name.starts_with("GitHub log storage") {
            assert!(!p.items.is_empty(), "nothing scanned in {}", p.name);
        }
    }
    // The one legitimate place of each credential was used (so the allowance is not a blind spot).
    assert!(reqs.iter().all(|r| r.headers.get("x-api-key").map(String::as_str) == Some(LLM_KEY)));
    assert!(gh_reqs.iter().filter(|r| r.auth.starts_with("token:")).count() >= 5, "GitHub got the token");
    assert!(
        slack_reqs
            .iter()
            .all(|r| r.headers.iter().any(|(k, v)| k == "authorization" && v == &format!("Bearer {SLACK_TOKEN}")))
    );
    assert_eq!(gh.violations(), Vec::<String>::new());
    assert_eq!(slack.violations(), Vec::<String>::new());
    assert!(hits.is_empty(), "{} secret(s) leaked; see the HIT lines above", hits.len());

    // The canaries did reach every way in (else the scan would prove nothing).
    for run in [name, inline] {
        let context = cms.get(&format!("{run}-context")).await.unwrap().data.unwrap();
        let masked = context["excerpt.txt"].matches("[MASKED]").count();
        assert!(
            masked >= LOG_CANARIES.len(),
            "{run}: the log's canaries did not reach the excerpt masked ({masked} masks):\n{}",
            context["excerpt.txt"]
        );
    }
    // The attempt pods mounted the canary Secrets (the git token, the LLM key).
    for j in &jobs.items {
        let volumes = j.spec.as_ref().and_then(|s| s.template.spec.as_ref()).map(|p| p.volumes.clone());
        let secrets: Vec<String> =
            volumes.flatten().unwrap_or_default().into_iter().filter_map(|v| v.secret?.secret_name).collect();
        assert!(secrets.contains(&"git".into()) && secrets.contains(&"llm".into()), "{}: {secrets:?}", j.name_any());
    }
    assert_eq!(reqs.len(), 3, "the model's session ran: {reqs:#?}");
    let prompt = reqs[0].message_text(0);
    assert!(prompt.contains("The staging deploy token is [MASKED]"), "AGENTS.md is quoted, masked:\n{prompt}");
    let second = reqs[1].body.to_string();
    assert!(
        second.contains("DATABASE_URL=postgres://app@db/app") && second.contains("STRIPE_KEY=[MASKED]"),
        ".env was read, masked: {second}"
    );
    let attempt = apis.attempts.get(&format!("{name}-1")).await.unwrap();
    let diagnosis = attempt.status.as_ref().and_then(|s| s.diagnosis.clone()).unwrap_or_default();
    assert!(diagnosis.starts_with("add_one added 2 instead of 1. Rotate [MASKED]"), "{diagnosis}");
    assert!(patch.contains("+    x + 1"), "{patch}");
    assert!(gh.operations().iter().any(|o| o == "pulls/create"), "{:?}", gh.operations());
    assert!(gh.operations().iter().any(|o| o == "issues/create-comment"), "{:?}", gh.operations());
    assert!(!slack.requests().is_empty());
}
