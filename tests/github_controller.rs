//! The controller (a real `healer controller` subprocess on the local control plane) reading
//! failures from the loopback GitHub, which checks every request against GitHub's OpenAPI
//! description (`tests/loopback_github/`).

mod loopback_github;
mod support;

use std::time::Duration;

use ci_healer::crd::HealingRun;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use loopback_github::*;
use support::{Apis, ControllerProcess};

const REPO: &str = "Codertocat/Hello-World";
const OTHER_REPO: &str = "octo-org/other";
const HEAD: &str = "3484a3fb816e0859fd6e1cea078d76385ff50625";
const JOB: i64 = 289782451;
const RUN: i64 = 2202229078;
/// A real tsc failure log (reviewdog/errorformat, MIT; see tests/fixtures/triage/PROVENANCE.md).
const LOG: &str = "tests/fixtures/triage/logs/frontend/errorformat-tsc.log";
const WORKFLOW: &str = "name: CodeQL\non: [push]\njobs:\n  linters:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: yarn run format-check\n        working-directory: web\n";
/// The controller's token: planted in the log, so a leak anywhere would show.
const TOKEN: &str = "ghp_canaryTOKEN0000000000000000000000009";

fn seed(gh: &LoopbackGitHub, log: Log) {
    let mut st = gh.state();
    st.auth.tokens.insert(TOKEN.into(), "healer-bot".into());
    let r = st.add_repo(REPO);
    let base = r.commit(CommitSpec {
        files: vec![
            ("package.json".into(), Some("{\"scripts\":{\"format-check\":\"prettier --check .\"}}\n".into())),
            ("web/tsc.ts".into(), Some("export const f = (x: number) => x;\n".into())),
            (".github/workflows/codeql.yml".into(), Some(WORKFLOW.into())),
        ],
        message: "base".into(),
        author_login: Some("octocat".into()),
        ..Default::default()
    });
    r.commit(CommitSpec {
        parent: Some(base),
        files: vec![("web/tsc.ts".into(), Some("export const f = (x, y) => x + y;\n".into()))],
        message: "tsc: two arguments".into(),
        author_login: Some("Codertocat".into()),
        sha: Some(HEAD.into()),
        ..Default::default()
    });
    r.refs.insert("heads/main".into(), HEAD.into());
    r.runs.insert(
        RUN,
        WorkflowRun {
            id: RUN,
            path: ".github/workflows/codeql.yml".into(),
            head_sha: HEAD.into(),
            head_branch: "main".into(),
            ..Default::default()
        },
    );
    r.jobs.insert(
        JOB,
        Job {
            id: JOB,
            run_id: RUN,
            name: "linters".into(),
            workflow_name: "CodeQL".into(),
            head_sha: HEAD.into(),
            head_branch: "main".into(),
            steps: vec![
                Step { name: "Set up job".into(), conclusion: "success".into() },
                Step { name: "Run yarn run format-check".into(), conclusion: "failure".into() },
            ],
            log,
            ..Default::default()
        },
    );
    st.add_repo(OTHER_REPO);
}

fn real_log() -> Log {
    let raw = std::fs::read_to_string(support::root().join(LOG)).unwrap();
    Log::Text(github_log_format(&format!("{raw}Authorization: token {TOKEN}\n")))
}

/// The sample run (the Sensor's output for the real `workflow_job` delivery): no excerpt.
fn sample_run(ns: &str, name: &str, repo: &str) -> HealingRun {
    let text =
        std::fs::read_to_string(support::root().join("config/samples/healingrun-from-workflow-job.yaml")).unwrap();
    let mut run: HealingRun = serde_yaml_ng::from_str(&text).unwrap();
    run.metadata.namespace = Some(ns.into());
    run.metadata.name = Some(name.into());
    run.spec.source.repository = repo.into();
    assert!(run.spec.failure.is_none(), "the Sensor's run carries no log");
    run
}

/// A namespace with the token Secret, and a controller whose config points at the loopback and
/// allows `allowed` for that namespace (and `other_ns: [OTHER_REPO]`).
async fn setup(
    gh: &LoopbackGitHub,
    prefix: &str,
    allowed: &str,
) -> (Client, Apis, ControllerProcess, std::path::PathBuf) {
    setup_with(gh, prefix, allowed, "").await
}

/// [`setup`], with more lines under the config's `github:` (each indented by two spaces).
async fn setup_with(
    gh: &LoopbackGitHub,
    prefix: &str,
    allowed: &str,
    github_extra: &str,
) -> (Client, Apis, ControllerProcess, std::path::PathBuf) {
    support::github::controller(prefix, &gh.api_url(), TOKEN, |ns| {
        format!(
            "{github_extra}allowedRepositories:\n  {ns}: [\"{allowed}\"]\n  some-other-namespace: [\"{OTHER_REPO}\"]\n"
        )
    })
    .await
}

fn cond(run: &HealingRun, t: &str) -> Option<(String, String, String)> {
    let c = run.status.as_ref()?.conditions.iter().find(|c| c.type_ == t)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn wait_cond(apis: &Apis, name: &str, t: &str, timeout: Duration) -> HealingRun {
    support::wait_for(&format!("{t} on {name}"), timeout, || async {
        let r = apis.runs.get(name).await.ok()?;
        cond(&r, t).map(|_| r)
    })
    .await
}

/// Wait for an Event with `reason` about run `name` (Events follow the status write).
async fn wait_event(apis: &Apis, name: &str, reason: &str) {
    support::wait_for(&format!("Event {reason} about {name}"), Duration::from_secs(10), || async {
        apis.event_reasons("HealingRun", name).await.iter().any(|e| e == reason).then_some(())
    })
    .await
}

/// Make run `name` reconcile again (an annotation change, as a resync or a restart's first list).
async fn poke(apis: &Apis, name: &str) {
    // A merge patch carries no resourceVersion, so the controller's own status writes in between
    // cannot make it conflict (a get-then-replace did: CI saw a 409 here).
    let patch = serde_json::json!({"metadata": {"annotations": {"poke": jiff::Timestamp::now().to_string()}}});
    apis.runs.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(patch)).await.unwrap();
}

fn assert_clean(gh: &LoopbackGitHub) {
    let v = gh.violations();
    assert!(v.is_empty(), "requests GitHub's OpenAPI description does not allow:\n{}", v.join("\n"));
}

#[tokio::test]
async fn a_run_without_an_excerpt_is_triaged_from_the_job_log_read_from_github() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    let (client, apis, ctrl, _cfg) = setup(&gh, "gh-read", "Codertocat").await;
    let name = "gh-2202229078-1-289782451";
    apis.runs.create(&PostParams::default(), &sample_run(&apis.ns, name, REPO)).await.unwrap();

    let run = wait_cond(&apis, name, "Triaged", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&run, "LogFetched").expect("LogFetched");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "LogRead"), "{message}");

    // Triage saw the log: the class is the one the tsc log gives, not the one the names alone give.
    let raw = std::fs::read_to_string(support::root().join(LOG)).unwrap();
    let (steps, files) = (vec!["Run yarn run format-check".to_string()], vec!["web/tsc.ts".to_string()]);
    let routing = ci_healer::triage::RoutingConfig::default();
    let triage_of = |log: &[u8], changed_files: &[String]| {
        let input = ci_healer::triage::TriageInput {
            log,
            workflow_name: Some("CodeQL"),
            job_name: Some("linters"),
            failed_steps: &steps,
            changed_files,
            error_type: None,
            repository_languages: &[],
        };
        ci_healer::triage::triage(&input, &routing)
    };
    let from_log = triage_of(raw.as_bytes(), &files);
    let from_names = triage_of(b"", &[]);
    assert_ne!(from_log.failure_class, from_names.failure_class, "the fixture must tell the two apart");
    let class = run.status.as_ref().unwrap().failure_class.map(|c| c.as_str().to_string());
    assert_eq!(class.as_deref(), Some(from_log.failure_class.as_str()));

    // The context ConfigMap holds the masked, bounded excerpt and what was read; never the token.
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &apis.ns).get(&format!("{name}-context")).await.unwrap();
    let data = cm.data.unwrap();
    let excerpt = &data["excerpt.txt"];
    assert!(excerpt.contains("TS7006"), "{excerpt}");
    let read: serde_json::Value = serde_json::from_str(&data["failure.json"]).unwrap();
    assert_eq!(read["changedFiles"], serde_json::json!(["web/tsc.ts"]));
    assert_eq!(read["failedSteps"], serde_json::json!(["Run yarn run format-check"]));
    assert_eq!(read["step"]["run"], "yarn run format-check");
    assert_eq!(read["step"]["workingDirectory"], "web");
    for (k, v) in &data {
        assert!(!v.contains(TOKEN), "the token leaked into ConfigMap key {k}");
    }

    // What GitHub received: the job, its log, the run, the workflow file, the commit; each once,
    // in that order, and nothing GitHub's description does not allow.
    let ops = gh.operations();
    for op in ["actions/get-job-for-workflow-run", "actions/download-job-logs-for-workflow-run"] {
        assert_eq!(ops.iter().filter(|o| *o == op).count(), 1, "{op} once: {ops:?}");
    }
    let pos = |op: &str| ops.iter().position(|o| o == op).unwrap_or_else(|| panic!("no {op} in {ops:?}"));
    assert!(pos("actions/get-job-for-workflow-run") < pos("actions/download-job-logs-for-workflow-run"));
    assert_clean(&gh);
    assert!(gh.blob_requests().iter().all(|b| !b.had_authorization), "credentials sent to the log storage");

    // Later reconciles read the ConfigMap, not GitHub.
    let n = gh.requests().len();
    poke(&apis, name).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(gh.requests().len(), n, "a later reconcile called GitHub again");

    // No token in the run's status, its Events or the controller's log.
    let run = apis.runs.get(name).await.unwrap();
    assert!(!serde_json::to_string(&run).unwrap().contains(TOKEN));
    for e in apis.events_about("HealingRun", name).await {
        assert!(!e.message.unwrap_or_default().contains(TOKEN));
    }
    assert!(apis.event_reasons("HealingRun", name).await.iter().any(|r| r == "FailureRead"));
    assert!(!ctrl.logs().contains(TOKEN), "the token leaked into the controller's log");
}

#[tokio::test]
async fn a_repository_outside_the_namespaces_allowance_gets_no_github_call() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    // This namespace may heal Codertocat/*; octo-org/other is allowed only to another namespace.
    let (_client, apis, _ctrl, _cfg) = setup(&gh, "gh-allow", "Codertocat/Hello-*").await;
    apis.runs.create(&PostParams::default(), &sample_run(&apis.ns, "other", OTHER_REPO)).await.unwrap();
    apis.runs.create(&PostParams::default(), &sample_run(&apis.ns, "mine", REPO)).await.unwrap();

    let refused = wait_cond(&apis, "other", "Accepted", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&refused, "Accepted").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "RepositoryNotAllowed"), "{message}");
    assert!(message.contains(OTHER_REPO) && message.contains("Codertocat/Hello-*"), "{message}");
    let allowed = wait_cond(&apis, "mine", "LogFetched", Duration::from_secs(60)).await;
    assert_eq!(cond(&allowed, "Accepted").unwrap().1, "SpecValid");
    // Every request GitHub got was about the allowed repository.
    let reqs = gh.requests();
    assert!(!reqs.is_empty());
    for r in reqs {
        assert!(!r.path.contains("octo-org/other"), "a call for the refused repository: {} {}", r.method, r.path);
    }
    assert_clean(&gh);
}

#[tokio::test]
async fn an_expired_log_is_a_false_condition_not_a_failed_run() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, Log::Expired);
    // GitHub refuses the commit status for good (422): a False condition, not a failed run either.
    gh.fault(Fault::status("repos/create-commit-status", 422, 100));
    let (_client, apis, _ctrl, _cfg) = setup(&gh, "gh-expired", "Codertocat").await;
    apis.runs.create(&PostParams::default(), &sample_run(&apis.ns, "expired", REPO)).await.unwrap();
    let run = wait_cond(&apis, "expired", "LogFetched", Duration::from_secs(60)).await;
    let (status, reason, _) = cond(&run, "LogFetched").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "LogExpired"));
    // Triage went on with the names, and the run heals.
    let run = apis.run_phase("expired", "Running").await;
    assert_eq!(cond(&run, "Triaged").unwrap().0, "True");
    let (status, reason, message) = cond(&run, "Reported").expect("Reported");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "GitHubRejected"), "{message}");
    assert!(message.contains("Running/1"), "{message}");
    wait_event(&apis, "expired", "GitHubRejected").await;
    // Refused once for that state: no retry loop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tries = gh.operations().iter().filter(|o| *o == "repos/create-commit-status").count();
    assert_eq!(tries, 1, "{:?}", gh.operations());
    assert_clean(&gh);
}

#[tokio::test]
async fn a_secondary_rate_limit_makes_the_run_wait_then_go_on() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    gh.fault(Fault::secondary_rate_limit("actions/get-job-for-workflow-run", 3, 1));
    let (_client, apis, ctrl, _cfg) = setup(&gh, "gh-ratelimit", "Codertocat").await;
    apis.runs.create(&PostParams::default(), &sample_run(&apis.ns, "limited", REPO)).await.unwrap();
    let run = wait_cond(&apis, "limited", "LogFetched", Duration::from_secs(60)).await;
    assert_eq!(cond(&run, "LogFetched").unwrap().1, "LogRead");
    let jobs: Vec<_> =
        gh.requests().into_iter().filter(|r| r.operation == "actions/get-job-for-workflow-run").collect();
    assert_eq!(
        jobs.iter().map(|r| r.status).collect::<Vec<_>>(),
        [403, 200],
        "one limited call, then one after the wait"
    );
    assert!(ctrl.logs().contains("GitHub asked to wait"), "the wait is logged");
    // …and counted: the limited call, the call after the wait, and the wait GitHub asked for.
    let op = r#"operation="actions/get-job-for-workflow-run""#;
    let metrics = ctrl.http_get("/metrics").await;
    assert_eq!(
        ctrl.metric(&format!(r#"cihealer_github_requests_total{{{op},outcome="rate_limited"}}"#)).await,
        1.0,
        "{metrics}"
    );
    assert_eq!(ctrl.metric(&format!(r#"cihealer_github_requests_total{{{op},outcome="ok"}}"#)).await, 1.0, "{metrics}");
    assert_eq!(ctrl.metric(&format!("cihealer_github_rate_limit_wait_seconds_count{{{op}}}")).await, 1.0);
    assert_eq!(
        ctrl.metric(&format!("cihealer_github_rate_limit_wait_seconds_sum{{{op}}}")).await,
        3.0,
        "Retry-After: 3"
    );
    let run = apis.run_phase("limited", "Running").await;
    assert!(run.name_any() == "limited");
    assert_clean(&gh);
}

const FIXED: &str = "export const f = (x: number, y: number) => x + y;\n";
const PATCH: &str = "diff --git a/web/tsc.ts b/web/tsc.ts\n--- a/web/tsc.ts\n+++ b/web/tsc.ts\n@@ -1 +1 @@\n-export const f = (x, y) => x + y;\n+export const f = (x: number, y: number) => x + y;\n";

/// Run `name` in pull-request mode on `branch` through one passing attempt whose kept patch is
/// [`PATCH`] (the kubelet stand-in plays the pod; the patch ConfigMap is what the validate step's
/// log would have given).
async fn heal(apis: &Apis, client: &Client, name: &str, branch: &str) {
    let mut run = sample_run(&apis.ns, name, REPO);
    run.spec.source.branch = branch.into();
    run.spec.policy.mode = ci_healer::crd::HealingMode::PullRequest;
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    pass_attempt(apis, client, name, PATCH).await;
}

/// Attempt 1 of run `name` passes with `patch` kept.
async fn pass_attempt(apis: &Apis, client: &Client, name: &str, patch: &str) {
    pass_attempt_with(apis, client, name, patch, None).await;
}

/// [`pass_attempt`], with the LLM tokens its verdict reports.
async fn pass_attempt_with(
    apis: &Apis,
    client: &Client,
    name: &str,
    patch: &str,
    tokens: Option<ci_healer::contract::TokenUsage>,
) {
    let mut verdict: ci_healer::contract::Verdict =
        serde_json::from_str(&support::verdict(ci_healer::contract::Outcome::Passed, "ValidationPassed", "tsc passes"))
            .unwrap();
    verdict.tokens = tokens;
    pass_attempt_n(apis, client, name, 1, patch, verdict).await;
}

/// Attempt `n` of run `name` passes with `patch` kept and `verdict` in its termination message.
async fn pass_attempt_n(
    apis: &Apis,
    client: &Client,
    name: &str,
    n: i32,
    patch: &str,
    verdict: ci_healer::contract::Verdict,
) {
    let job = apis.job(&format!("{name}-{n}")).await;
    let cm = ConfigMap {
        metadata: ObjectMeta { name: Some(format!("{name}-{n}-patch")), ..Default::default() },
        data: Some([("patch.diff".to_string(), patch.to_string())].into()),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), &apis.ns).create(&PostParams::default(), &cm).await.unwrap();
    let status = serde_json::json!({"status": {"patchConfigMap": format!("{name}-{n}-patch")}});
    apis.attempts
        .patch_status(&format!("{name}-{n}"), &kube::api::PatchParams::default(), &kube::api::Patch::Merge(status))
        .await
        .unwrap();
    support::finish_attempt(apis, &job, &verdict.to_termination_message()).await;
}

#[tokio::test]
async fn a_fixed_run_opens_one_draft_pull_request_into_the_failing_branch_even_after_a_restart() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    gh.state().repo_mut(REPO).unwrap().refs.insert("heads/feature".into(), HEAD.into());
    let (client, apis, mut ctrl, cfg) = setup(&gh, "gh-pr", "Codertocat").await;
    let name = "pr-run";
    heal(&apis, &client, name, "feature").await;
    let run = wait_cond(&apis, name, "Delivered", Duration::from_secs(90)).await;
    let (status, reason, message) = cond(&run, "Delivered").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "PullRequestOpened"), "{message}");
    let pr = run.status.as_ref().unwrap().pull_request.clone().expect("status.pullRequest");
    assert_eq!(pr.head_ref, format!("ci-healer/{name}"));
    assert_eq!(pr.state, "open");
    {
        let st = gh.state();
        let r = st.repo(REPO).unwrap();
        let pulls: Vec<_> = r.pulls.iter().filter(|p| p.head_ref == pr.head_ref).collect();
        assert_eq!(pulls.len(), 1);
        let p = pulls[0];
        assert!(p.draft, "a draft");
        assert_eq!((p.number, p.base_ref.as_str()), (pr.number, "feature"), "into the failing branch");
        assert!(p.title.starts_with("ci-healer:"), "{}", p.title);
        assert!(p.labels.iter().any(|l| l == "ci-healer"), "{:?}", p.labels);
        let c = &r.commits[&r.refs[&format!("heads/{}", pr.head_ref)]];
        assert_eq!(c.parents, [HEAD.to_string()], "the fix commit's parent is the failing commit");
        assert_eq!(r.file(&c.sha, "web/tsc.ts").unwrap().1, FIXED.as_bytes());
        assert_eq!(r.refs["heads/feature"], HEAD, "nothing was pushed to the failing branch");
        assert!(!p.body.contains(TOKEN));
        assert!(p.body.contains("**Spent:** 1 attempt") && p.body.contains("| 1 of 3 | Succeeded |"), "{}", p.body);
    }
    // The API calls one delivered fix cost, from the loopback's request log.
    let reqs = gh.requests();
    eprintln!("API calls for one delivered fix ({}):", reqs.len());
    for r in &reqs {
        eprintln!("  {:>3} {:<6} {:<48} {}", r.seq, r.method, r.operation, r.status);
    }
    // 25 to read, check and deliver, and the commit status of each reported state (Running/1, Fixed/#n).
    assert!(reqs.len() <= 27, "{} calls", reqs.len());
    let statuses: Vec<_> = gh.state().repo(REPO).unwrap().statuses.iter().map(|s| s.state.clone()).collect();
    assert_eq!(statuses, ["pending", "success"], "a plain token reports with commit statuses");
    assert_eq!(gh.operations().iter().filter(|o| *o == "pulls/create").count(), 1);
    assert_clean(&gh);
    // Time to pull request: observed once, with the run's labels, within the run's age.
    let class = run.status.as_ref().unwrap().failure_class.unwrap().as_str().to_string();
    let agent = run.status.as_ref().unwrap().agent.clone().unwrap_or_default();
    let series = format!(
        r#"cihealer_time_to_pr_seconds{{namespace="{}",repository="{REPO}",failure_class="{class}",agent="{agent}"}}"#,
        apis.ns
    );
    let count = |s: &str| s.replacen('{', "_count{", 1);
    let sum = |s: &str| s.replacen('{', "_sum{", 1);
    assert_eq!(ctrl.metric(&count(&series)).await, 1.0, "{}", ctrl.http_get("/metrics").await);
    let age = run.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "Delivered").unwrap();
    let age = age.last_transition_time.0.duration_since(run.metadata.creation_timestamp.clone().unwrap().0);
    // The API server keeps whole seconds of the condition's time; the controller saw its own clock.
    let secs = ctrl.metric(&sum(&series)).await;
    assert!(
        (age.as_secs_f64()..age.as_secs_f64() + 1.0).contains(&secs),
        "creation → Delivered=True: {secs} s, {age:?}"
    );
    assert!(ctrl.http_get("/metrics").await.contains("# TYPE cihealer_time_to_pr_seconds histogram"));

    // A restarted controller finds what it did and opens nothing more.
    ctrl.kill();
    let _ctrl = ControllerProcess::start(&apis.ns, Some(&cfg));
    poke(&apis, name).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(gh.operations().iter().filter(|o| *o == "pulls/create").count(), 1, "a second pull request");
    assert_eq!(gh.state().repo(REPO).unwrap().pulls.len(), 1);
    let run = apis.runs.get(name).await.unwrap();
    assert_eq!(run.status.unwrap().pull_request.unwrap().number, pr.number);
    assert_eq!(_ctrl.metric(&count(&series)).await, 0.0, "the restarted controller counted the delivery again");
}

async fn no_pull_request(branch: &str, want: &str) {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    {
        // The branch `moved` has moved away from the failing commit: it points at HEAD's parent, a
        // commit the loopback knows (an unknown SHA would be a broken seed, not a moved branch).
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        let base = r.commits[HEAD].parents[0].clone();
        r.refs.insert("heads/moved".into(), base);
    }
    let (client, apis, _ctrl, _cfg) = setup(&gh, "gh-nopr", "Codertocat").await;
    let name = "nopr";
    heal(&apis, &client, name, branch).await;
    let run = wait_cond(&apis, name, "Delivered", Duration::from_secs(90)).await;
    let (status, reason, message) = cond(&run, "Delivered").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", want), "{message}");
    assert!(run.status.as_ref().unwrap().pull_request.is_none());
    assert_eq!(run.status.unwrap().phase.map(|p| p.as_str()), Some("Fixed"), "the patch stays proposed");
    wait_event(&apis, name, want).await;
    assert!(gh.state().repo(REPO).unwrap().pulls.is_empty());
    // No write but the commit statuses that report the run (the token cannot create check runs).
    let writes: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.operation != "repos/create-commit-status")
        .collect();
    assert!(writes.is_empty(), "writes to GitHub: {writes:?}");
    let st = gh.state();
    let last = st.repo(REPO).unwrap().statuses.last().cloned().expect("a commit status");
    assert_eq!((last.context.as_str(), last.state.as_str(), last.sha.as_str()), ("ci-healer", "success", HEAD));
    drop(st);
    assert_clean(&gh);
}

#[tokio::test]
async fn a_moved_branch_gets_no_pull_request() {
    no_pull_request("moved", "BranchMoved").await;
}

#[tokio::test]
async fn a_never_fix_branch_gets_no_pull_request() {
    no_pull_request("main", "ProtectedBranch").await;
}

/// The loop-prevention rules in the controller: a failure on ci-healer's own branch is skipped
/// before any GitHub call, a failure whose head commit ci-healer's identity made is skipped after
/// reading the branch only; neither starts an attempt or reads the log.
#[tokio::test]
async fn failures_on_ci_healers_own_branch_or_commit_are_skipped_without_an_attempt() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    // A commit made by the controller's identity (the token's login) on branch `fixed`.
    let own = {
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        let sha = r.commit(CommitSpec {
            parent: Some(HEAD.into()),
            files: vec![("web/tsc.ts".into(), Some(FIXED.into()))],
            message: "ci-healer: annotate the arguments".into(),
            author_login: Some("healer-bot".into()),
            ..Default::default()
        });
        r.refs.insert("heads/fixed".into(), sha.clone());
        sha
    };
    let (_client, apis, _ctrl, _cfg) = setup(&gh, "gh-skip", "Codertocat").await;

    let mut run = sample_run(&apis.ns, "own-branch", REPO);
    run.spec.source.branch = "ci-healer/gh-earlier".into();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    let r = wait_cond(&apis, "own-branch", "Skipped", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&r, "Skipped").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "OwnBranch"), "{message}");
    assert_eq!(r.status.as_ref().unwrap().phase.map(|p| p.as_str()), Some("Skipped"));
    assert!(gh.requests().is_empty(), "no GitHub call for ci-healer's own branch: {:?}", gh.operations());

    let mut run = sample_run(&apis.ns, "own-commit", REPO);
    run.spec.source.branch = "fixed".into();
    run.spec.source.head_sha = own.clone();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    let r = wait_cond(&apis, "own-commit", "Skipped", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&r, "Skipped").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "OwnCommit"), "{message}");
    assert!(message.contains(&own[..7]) && message.contains("healer-bot"), "{message}");
    assert_eq!(r.status.as_ref().unwrap().phase.map(|p| p.as_str()), Some("Skipped"));
    // Only the branch was read (who am I, the branch, its last commits, the open pull requests):
    // no log, no job, no write.
    let ops = gh.operations();
    assert_eq!(
        ops,
        ["users/get-authenticated", "repos/get-branch", "repos/list-commits", "pulls/list"],
        "the requests GitHub received"
    );
    assert!(gh.requests().iter().all(|r| r.method == "GET"));

    for name in ["own-branch", "own-commit"] {
        wait_event(&apis, name, "Skipped").await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(apis.job_names().await.is_empty(), "no attempt for a skipped run");
    assert!(apis.attempts.list(&Default::default()).await.unwrap().items.is_empty());

    // The cooldown: a failure of a new commit on `feature` right after a run for that branch started
    // is skipped, with no attempt; the earlier run heals.
    let later = {
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        let sha = r.commit(CommitSpec {
            parent: Some(HEAD.into()),
            files: vec![("web/tsc.ts".into(), Some("export const f = (x, y, z) => x + y + z;\n".into()))],
            message: "tsc: three arguments".into(),
            author_login: Some("Codertocat".into()),
            ..Default::default()
        });
        r.refs.insert("heads/feature".into(), sha.clone());
        sha
    };
    let mut run = sample_run(&apis.ns, "first", REPO);
    run.spec.source.branch = "feature".into();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    apis.run_phase("first", "Running").await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // creation times have whole seconds
    let mut run = sample_run(&apis.ns, "second", REPO);
    run.spec.source.branch = "feature".into();
    run.spec.source.head_sha = later.clone();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    let r = wait_cond(&apis, "second", "Skipped", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&r, "Skipped").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Cooldown"), "{message}");
    assert!(message.contains("run first"), "{message}");
    assert_eq!(r.status.as_ref().unwrap().phase.map(|p| p.as_str()), Some("Skipped"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!apis.job_names().await.iter().any(|j| j.starts_with("second")), "no attempt for a cooled-down run");
    assert_clean(&gh);
}

/// A flaky failure (a reset connection to the package registry) is re-run on GitHub once instead
/// of an attempt; a failure of the re-run (run attempt 2) is healed normally.
#[tokio::test]
async fn a_flaky_failure_is_rerun_on_github_instead_of_an_attempt() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    // Derived from npm's own wording for ECONNRESET (as tests/triage_inputs.rs has it).
    let log = "npm error code ECONNRESET\nnpm error network aborted\nnpm error network This is a problem related to network connectivity.\n";
    seed(&gh, Log::Text(github_log_format(log)));
    let (_client, apis, _ctrl, _cfg) = setup(&gh, "gh-flake", "Codertocat").await;
    apis.runs.create(&PostParams::default(), &sample_run(&apis.ns, "flaky", REPO)).await.unwrap();
    let r = wait_cond(&apis, "flaky", "Rerun", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&r, "Rerun").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "RerunRequested"), "{message}");
    let st = r.status.as_ref().unwrap();
    assert_eq!(st.phase.map(|p| p.as_str()), Some("Rerun"));
    assert_eq!(st.failure_class.map(|c| c.as_str()), Some("infra_flake"));
    let writes: Vec<_> = gh.requests().into_iter().filter(|r| r.method != "GET").collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        (writes[0].operation.as_str(), writes[0].path.as_str()),
        ("actions/re-run-job-for-workflow-run", format!("/repos/{REPO}/actions/jobs/{JOB}/rerun").as_str())
    );
    assert_eq!(gh.state().repo(REPO).unwrap().jobs[&JOB].reruns, 1);
    wait_event(&apis, "flaky", "RerunRequested").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(apis.job_names().await.is_empty(), "no attempt for a re-run flake");

    // The re-run failed too: run attempt 2 of the same job is healed with an attempt.
    let mut again = sample_run(&apis.ns, "flaky-again", REPO);
    again.spec.source.run_attempt = Some(2);
    apis.runs.create(&PostParams::default(), &again).await.unwrap();
    apis.job("flaky-again-1").await;
    let r = apis.runs.get("flaky-again").await.unwrap();
    let (status, reason, _) = cond(&r, "Rerun").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "RerunNotImplemented"));
    assert_eq!(gh.state().repo(REPO).unwrap().jobs[&JOB].reruns, 1, "re-run once, not twice");
    assert_clean(&gh);
}

/// The body a recorded request sent, as `(status, conclusion)` of a check run.
fn check_state(r: &Recorded) -> (String, Option<String>) {
    let b = r.body.clone().unwrap_or_default();
    (b["status"].as_str().unwrap_or_default().to_string(), b["conclusion"].as_str().map(str::to_string))
}

/// The controller reports through a GitHub App: one `ci-healer` check run on the head SHA
/// (`in_progress` while healing, then `completed`/`success` with the pull request) and one comment
/// on the failing branch's pull request, each created once and then edited in place (by the ids in
/// `status.report`). A transient GitHub error requeues the report; a restarted controller whose
/// status lost those ids finds both again (the check run's `external_id`, the comment's hidden
/// marker) and creates nothing.
#[tokio::test]
async fn one_check_run_and_one_pull_request_comment_are_edited_in_place_even_after_a_restart() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    let (private, public) = app_keypair();
    {
        let mut st = gh.state();
        st.auth.app = Some(App { id: 4242, slug: "ci-healer".into(), public_key_pem: public, token_ttl_seconds: 3600 });
        let r = st.repo_mut(REPO).unwrap();
        r.installation_id = Some(77);
        r.refs.insert("heads/feature".into(), HEAD.into());
        r.pulls.push(Pull {
            number: 12,
            title: "Two arguments".into(),
            body: String::new(),
            head_ref: "feature".into(),
            head_sha: HEAD.into(),
            head_repo: None,
            base_ref: "main".into(),
            state: "open".into(),
            draft: false,
            labels: vec![],
            user: "Codertocat".into(),
            maintainer_can_modify: false,
        });
    }
    // GitHub fails the first check run creation: the run requeues and reports again.
    gh.fault(Fault::status("checks/create", 502, 1));
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "gh-report").await;
    support::create_secret(&client, &ns, "github-app", "key.pem", private.clone().into_bytes()).await;
    let config = format!(
        "github:\n  apiUrl: {}\n  app: {{appId: 4242, privateKeySecret: {{name: github-app, key: key.pem}}}}\n  \
         secretNamespace: {ns}\n  requestTimeoutSeconds: 10\nallowedRepositories:\n  {ns}: [\"Codertocat\"]\n",
        gh.api_url()
    );
    let cfg = std::env::temp_dir().join(format!("ci-healer-github-{ns}.yaml"));
    std::fs::write(&cfg, config).unwrap();
    let mut ctrl = ControllerProcess::start(&ns, Some(&cfg));
    let apis = Apis::new(&client, &ns);
    let name = "reported";
    heal(&apis, &client, name, "feature").await;
    let run = wait_cond(&apis, name, "Delivered", Duration::from_secs(90)).await;
    let pr = run.status.as_ref().unwrap().pull_request.clone().expect("status.pullRequest");
    let fixed = format!("Fixed/#{}", pr.number);
    let report = support::wait_for("the Fixed report", Duration::from_secs(30), || async {
        let r = apis.runs.get(name).await.ok()?.status?.report?;
        (r.reported.as_deref() == Some(fixed.as_str())).then_some(r)
    })
    .await;
    let run = apis.runs.get(name).await.unwrap();
    let (status, reason, message) = cond(&run, "Reported").expect("Reported");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "ReportSent"), "{message}");
    let count = |op: &str, code: u16| gh.requests().iter().filter(|r| r.operation == op && r.status == code).count();
    assert_eq!(count("checks/create", 502), 1, "the fault was hit: {:?}", gh.operations());
    assert_eq!((count("checks/create", 201), count("issues/create-comment", 201)), (1, 1), "{:?}", gh.operations());
    assert!(count("checks/update", 200) >= 1 && count("issues/update-comment", 200) >= 1, "{:?}", gh.operations());
    // The check run moved in_progress → completed/success; the last word is success.
    let states: Vec<_> = gh
        .requests()
        .iter()
        .filter(|r| (r.operation == "checks/create" || r.operation == "checks/update") && r.status < 300)
        .map(check_state)
        .collect();
    assert_eq!(states.first().map(|s| s.0.as_str()), Some("in_progress"), "{states:?}");
    assert_eq!(states.last(), Some(&("completed".to_string(), Some("success".to_string()))), "{states:?}");
    let key = format!("{ns}/{name}");
    {
        let st = gh.state();
        let r = st.repo(REPO).unwrap();
        let runs: Vec<_> = r.check_runs.iter().filter(|c| c.name == "ci-healer").collect();
        assert_eq!(runs.len(), 1, "one check run");
        let c = runs[0];
        assert_eq!(
            (c.head_sha.as_str(), c.status.as_str(), c.conclusion.as_deref()),
            (HEAD, "completed", Some("success"))
        );
        assert_eq!(c.external_id.as_deref(), Some(key.as_str()));
        assert_eq!(c.app_slug, "ci-healer");
        assert_eq!(report.check_run_id, Some(c.id));
        assert_eq!(c.details_url.as_deref(), Some(pr.url.as_str()), "the check run links the fix");
        assert_eq!(r.comments.len(), 1, "one comment");
        let m = &r.comments[0];
        assert_eq!((m.issue_number, Some(m.id)), (12, report.comment_id), "on the failing branch's pull request");
        assert!(m.edits >= 1, "edited in place, not re-posted");
        assert!(m.body.contains(&format!("<!-- ci-healer:run={key} -->")), "{}", m.body);
        assert!(m.body.contains(&format!("draft pull request #{}", pr.number)), "{}", m.body);
        for text in [Some(&m.body), c.summary.as_ref(), c.text.as_ref(), c.title.as_ref()].into_iter().flatten() {
            assert!(!text.contains(TOKEN), "the token in a report: {text}");
            assert!(!text.contains("PRIVATE KEY"), "the App key in a report: {text}");
        }
    }
    assert_clean(&gh);

    // A restarted controller whose status lost the ids edits the same check run and comment.
    ctrl.kill();
    let lost = serde_json::json!({"status": {"report": null}});
    apis.runs.patch_status(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(lost)).await.unwrap();
    gh.clear_requests();
    let _ctrl = ControllerProcess::start(&ns, Some(&cfg));
    let again = support::wait_for("the report after the restart", Duration::from_secs(60), || async {
        apis.runs.get(name).await.ok()?.status?.report.filter(|r| r.reported.is_some())
    })
    .await;
    assert_eq!((again.check_run_id, again.comment_id), (report.check_run_id, report.comment_id));
    let ops = gh.operations();
    assert!(!ops.iter().any(|o| o == "checks/create" || o == "issues/create-comment"), "re-created: {ops:?}");
    for op in ["checks/list-for-ref", "checks/update", "issues/list-comments", "issues/update-comment"] {
        assert!(ops.iter().any(|o| o == op), "{op} missing after the restart: {ops:?}");
    }
    {
        let st = gh.state();
        let r = st.repo(REPO).unwrap();
        assert_eq!((r.check_runs.iter().filter(|c| c.name == "ci-healer").count(), r.comments.len()), (1, 1));
    }
    assert_clean(&gh);
}

/// A failure reported by another App's check run (`check_run` event) or by a commit status
/// (`status` event) has no job log: the controller reads the check run's output (title, summary,
/// text) and its annotations (`GET …/check-runs/{id}/annotations`), or, for a status, the failing
/// check runs of the head SHA read the same way, and triage runs on that text.
#[tokio::test]
async fn a_check_run_or_status_failure_is_triaged_from_the_check_runs_output_and_annotations() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    const CHECK: i64 = 128620228;
    // The check's output quotes the compiler (the tsc fixture's lines); its annotation names the line.
    let raw = std::fs::read_to_string(support::root().join(LOG)).unwrap();
    {
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        r.check_runs.push(CheckRun {
            id: CHECK,
            name: "Octocoders-types".into(),
            head_sha: HEAD.into(),
            conclusion: Some("failure".into()),
            title: Some("3 type errors".into()),
            summary: Some("tsc --noEmit failed".into()),
            text: Some(raw.clone()),
            app_slug: "octocoders".into(),
            check_suite_id: 118578147,
            annotations: vec![Annotation {
                path: "web/tsc.ts".into(),
                start_line: 1,
                end_line: 1,
                level: "failure".into(),
                message: "Parameter 'x' implicitly has an 'any' type.".into(),
                title: Some("TS7006".into()),
            }],
            ..Default::default()
        });
    }
    let (client, apis, _ctrl, _cfg) = setup(&gh, "gh-check", "Codertocat").await;
    let mut run = sample_run(&apis.ns, "from-check", REPO);
    let src = &mut run.spec.source;
    src.event = ci_healer::crd::SourceEvent::CheckRun;
    src.job_id = Some(CHECK);
    src.job_name = Some("Octocoders-types".into());
    src.workflow_name = None;
    src.run_id = None;
    src.failed_steps.clear();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();

    let run = wait_cond(&apis, "from-check", "Triaged", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&run, "LogFetched").expect("LogFetched");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NoJobLog"), "{message}");
    // Triage saw the check's output: the class its text gives, not the one the names alone give.
    let routing = ci_healer::triage::RoutingConfig::default();
    let triage_of = |log: &[u8]| {
        let input = ci_healer::triage::TriageInput {
            log,
            job_name: Some("Octocoders-types"),
            changed_files: &[],
            failed_steps: &[],
            ..Default::default()
        };
        ci_healer::triage::triage(&input, &routing)
    };
    let from_output = triage_of(raw.as_bytes());
    let from_names = triage_of(b"");
    assert_ne!(from_output.failure_class, from_names.failure_class, "the fixture must tell the two apart");
    let class = run.status.as_ref().unwrap().failure_class.map(|c| c.as_str().to_string());
    assert_eq!(class.as_deref(), Some(from_output.failure_class.as_str()));
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &apis.ns).get("from-check-context").await.unwrap();
    let data = cm.data.unwrap();
    assert!(data["excerpt.txt"].contains("TS7006"), "{}", data["excerpt.txt"]);
    let read: serde_json::Value = serde_json::from_str(&data["failure.json"]).unwrap();
    assert_eq!(read["annotations"], 1, "{read}");
    assert_eq!(read["actionsCheckRun"], false);
    assert_eq!(read["changedFiles"], serde_json::json!(["web/tsc.ts"]));
    // What GitHub received: the check run, then its annotations; no job, no log.
    let ops = gh.operations();
    let pos = |op: &str| ops.iter().position(|o| o == op).unwrap_or_else(|| panic!("no {op} in {ops:?}"));
    assert!(pos("checks/get") < pos("checks/list-annotations"), "{ops:?}");
    let paths: Vec<_> = gh.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.contains(&format!("/repos/{REPO}/check-runs/{CHECK}/annotations")), "{paths:?}");
    for op in ["actions/get-job-for-workflow-run", "actions/download-job-logs-for-workflow-run"] {
        assert!(!ops.iter().any(|o| o == op), "{op} for a check run of another App: {ops:?}");
    }
    assert_clean(&gh);

    // A commit status on the same commit: the failing check runs of the head SHA, each read alike.
    gh.clear_requests();
    let mut run = sample_run(&apis.ns, "from-status", REPO);
    let src = &mut run.spec.source;
    src.event = ci_healer::crd::SourceEvent::Status;
    src.job_id = None;
    src.run_id = None;
    src.job_name = Some("ci/octocoders".into());
    src.workflow_name = None;
    src.failed_steps.clear();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    let run = wait_cond(&apis, "from-status", "Triaged", Duration::from_secs(60)).await;
    let class = run.status.as_ref().unwrap().failure_class.map(|c| c.as_str().to_string());
    assert_eq!(class.as_deref(), Some(from_output.failure_class.as_str()));
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &apis.ns).get("from-status-context").await.unwrap();
    let data = cm.data.unwrap();
    assert!(data["excerpt.txt"].contains("TS7006"), "{}", data["excerpt.txt"]);
    let ops = gh.operations();
    let pos = |op: &str| ops.iter().position(|o| o == op).unwrap_or_else(|| panic!("no {op} in {ops:?}"));
    assert!(pos("checks/list-for-ref") < pos("checks/list-annotations"), "{ops:?}");
    let listed = gh.requests().into_iter().find(|r| r.operation == "checks/list-for-ref").unwrap();
    assert_eq!(listed.path, format!("/repos/{REPO}/commits/{HEAD}/check-runs"));
    assert_clean(&gh);
}

/// A pull request of the loopback's shape.
fn pull(number: i64, head_ref: &str, head_repo: Option<&str>, state: &str, labels: &[&str]) -> Pull {
    Pull {
        number,
        title: format!("change {number}"),
        body: String::new(),
        head_ref: head_ref.into(),
        head_sha: HEAD.into(),
        head_repo: head_repo.map(str::to_string),
        base_ref: "main".into(),
        state: state.into(),
        draft: false,
        labels: labels.iter().map(|l| l.to_string()).collect(),
        user: "Codertocat".into(),
        maintainer_can_modify: false,
    }
}

/// While a run heals the failure of a pull request, that pull request carries the configured
/// healing labels (`ci-healer` and Renovate's `stop-updating` here); they come off when the run
/// ends, once, and a restarted controller does not label again.
#[tokio::test]
async fn the_failing_pull_request_is_labelled_while_the_run_heals() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    {
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        r.refs.insert("heads/feature".into(), HEAD.into());
        r.pulls.push(pull(12, "feature", None, "open", &["bug"]));
    }
    let (client, apis, mut ctrl, cfg) =
        setup_with(&gh, "gh-labels", "Codertocat", "  healingLabels: [ci-healer, stop-updating]\n").await;
    let name = "labelled";
    let mut run = sample_run(&apis.ns, name, REPO);
    run.spec.source.branch = "feature".into();
    run.spec.policy.mode = ci_healer::crd::HealingMode::PullRequest;
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    apis.job(&format!("{name}-1")).await;
    // Healing: the labels are on #12, next to its own.
    let labels_of_12 = || gh.state().repo(REPO).unwrap().pulls.iter().find(|p| p.number == 12).unwrap().labels.clone();
    support::wait_for("the healing labels on #12", Duration::from_secs(30), || async {
        (labels_of_12() == ["bug", "ci-healer", "stop-updating"]).then_some(())
    })
    .await;
    let r = wait_cond(&apis, name, "Labeled", Duration::from_secs(10)).await;
    let (status, reason, message) = cond(&r, "Labeled").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "LabelsAdded"), "{message}");
    assert_eq!(r.status.as_ref().unwrap().phase.map(|p| p.as_str()), Some("Running"));

    // The run ends (fixed, a draft pull request): the labels come off #12, its own label stays.
    pass_attempt(&apis, &client, name, PATCH).await;
    let r = support::wait_for("Labeled=False", Duration::from_secs(90), || async {
        let r = apis.runs.get(name).await.ok()?;
        (cond(&r, "Labeled")?.0 == "False").then_some(r)
    })
    .await;
    let (_, reason, message) = cond(&r, "Labeled").unwrap();
    assert_eq!(reason, "LabelsRemoved", "{message}");
    assert_eq!(labels_of_12(), ["bug"]);
    let fix = r.status.as_ref().unwrap().pull_request.clone().expect("the fix pull request");
    // What GitHub received, in order: one add on #12, the fix pull request's own label, one removal
    // of each healing label from #12.
    let label_calls: Vec<(String, String, Option<serde_json::Value>)> = gh
        .requests()
        .into_iter()
        .filter(|r| r.operation.starts_with("issues/") && r.operation.contains("label"))
        .map(|r| (r.operation, r.path, r.body))
        .collect();
    let on = |n: i64| format!("/repos/{REPO}/issues/{n}/labels");
    assert_eq!(
        label_calls,
        [
            ("issues/add-labels".into(), on(12), Some(serde_json::json!({"labels": ["ci-healer", "stop-updating"]}))),
            ("issues/add-labels".into(), on(fix.number), Some(serde_json::json!({"labels": ["ci-healer"]}))),
            ("issues/remove-label".into(), format!("{}/ci-healer", on(12)), None),
            ("issues/remove-label".into(), format!("{}/stop-updating", on(12)), None),
        ],
        "{:?}",
        gh.operations()
    );
    assert_clean(&gh);

    // A restarted controller labels nothing again.
    ctrl.kill();
    gh.clear_requests();
    let _ctrl = ControllerProcess::start(&apis.ns, Some(&cfg));
    poke(&apis, name).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!gh.operations().iter().any(|o| o.contains("label")), "{:?}", gh.operations());
    assert_eq!(labels_of_12(), ["bug"]);
}

/// At most `github.pullRequest.maxOpenPerRepository` open ci-healer pull requests per repository:
/// a pull-request-mode run beyond that is skipped (`TooManyOpenPullRequests`) before any attempt.
/// Only ci-healer's own open pull requests count: not a closed one, not a fork's branch of the same
/// name, not a person's.
#[tokio::test]
async fn a_repository_with_too_many_open_ci_healer_pull_requests_gets_no_attempt() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    {
        let mut st = gh.state();
        st.add_repo("someone/Hello-World");
        let r = st.repo_mut(REPO).unwrap();
        r.refs.insert("heads/feature".into(), HEAD.into());
        for (n, head) in [(1, "ci-healer/a"), (2, "ci-healer/b")] {
            r.refs.insert(format!("heads/{head}"), HEAD.into());
            r.pulls.push(pull(n, head, None, "open", &["ci-healer"]));
        }
        r.pulls.push(pull(3, "ci-healer/c", None, "closed", &["ci-healer"]));
        r.pulls.push(pull(4, "ci-healer/d", Some("someone/Hello-World"), "open", &[]));
        r.pulls.push(pull(5, "feature", None, "open", &[]));
    }
    // Another commit, for a run that is not a duplicate of the first (no cooldown here).
    let other = gh.state().repo_mut(REPO).unwrap().commit(CommitSpec {
        parent: Some(HEAD.into()),
        files: vec![("web/tsc.ts".into(), Some("export const f = (x, y, z) => x + y + z;\n".into()))],
        message: "tsc: three arguments".into(),
        author_login: Some("Codertocat".into()),
        ..Default::default()
    });
    let (_client, apis, _ctrl, _cfg) = setup_with(
        &gh,
        "gh-cap",
        "Codertocat",
        "  pullRequest: {maxOpenPerRepository: 3}\n  loopPrevention: {cooldownSeconds: 0}\n",
    )
    .await;
    // Two of ci-healer's are open, the cap is 3: the run heals.
    let mut run = sample_run(&apis.ns, "under", REPO);
    run.spec.source.branch = "feature".into();
    run.spec.policy.mode = ci_healer::crd::HealingMode::PullRequest;
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    apis.job("under-1").await;
    // A third opens: the next run is skipped before any attempt, with its own reason.
    {
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        r.refs.insert("heads/ci-healer/e".into(), HEAD.into());
        r.pulls.push(pull(6, "ci-healer/e", None, "open", &["ci-healer"]));
    }
    let mut run = sample_run(&apis.ns, "over", REPO);
    run.spec.source.branch = "feature".into();
    run.spec.source.job_id = Some(JOB + 1);
    run.spec.policy.mode = ci_healer::crd::HealingMode::PullRequest;
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    let r = wait_cond(&apis, "over", "Skipped", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&r, "Skipped").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "TooManyOpenPullRequests"), "{message}");
    assert!(message.contains("3 open ci-healer pull requests (at most 3)"), "{message}");
    assert_eq!(r.status.as_ref().unwrap().phase.map(|p| p.as_str()), Some("Skipped"));
    wait_event(&apis, "over", "Skipped").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!apis.job_names().await.iter().any(|j| j.starts_with("over")), "no attempt beyond the cap");
    // The count came from the open pull requests GitHub listed.
    let lists: Vec<_> = gh.requests().into_iter().filter(|r| r.operation == "pulls/list").collect();
    assert!(lists.iter().any(|r| r.query.iter().any(|(k, v)| k == "state" && v == "open")), "{lists:?}");
    // A propose-mode run opens no pull request: the cap does not apply.
    let mut run = sample_run(&apis.ns, "proposed", REPO);
    run.spec.source.branch = "feature".into();
    run.spec.source.head_sha = other;
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    apis.job("proposed-1").await;
    assert_clean(&gh);
}

/// `propose` mode on a pull request: the fixed run's one comment carries the patch, and, because
/// the patch's hunk sits on a line of the pull request's diff, the same patch is offered as a
/// GitHub suggestion block in one review (`POST …/pulls/{n}/reviews`, `event: COMMENT`) that a
/// reviewer applies with "Commit suggestion". A restarted controller that lost its report finds
/// the review by its marker and posts no second one.
#[tokio::test]
async fn a_proposed_fix_is_offered_as_a_suggestion_on_the_pull_requests_diff() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    {
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        let base = r.commits[HEAD].parents[0].clone();
        r.refs.insert("heads/develop".into(), base);
        r.refs.insert("heads/feature".into(), HEAD.into());
        let mut p = pull(12, "feature", None, "open", &[]);
        p.base_ref = "develop".into();
        r.pulls.push(p);
    }
    let (client, apis, mut ctrl, cfg) = setup(&gh, "gh-suggest", "Codertocat").await;
    let name = "proposed";
    let mut run = sample_run(&apis.ns, name, REPO);
    run.spec.source.branch = "feature".into();
    assert_eq!(run.spec.policy.mode, ci_healer::crd::HealingMode::Propose);
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    pass_attempt(&apis, &client, name, PATCH).await;
    let report = support::wait_for("the Fixed report", Duration::from_secs(60), || async {
        let r = apis.runs.get(name).await.ok()?.status?.report?;
        (r.reported.as_deref() == Some("Fixed")).then_some(r)
    })
    .await;
    {
        let st = gh.state();
        let r = st.repo(REPO).unwrap();
        assert!(r.pulls.iter().all(|p| p.number == 12), "propose mode opens no pull request");
        assert_eq!(r.reviews.len(), 1, "one review");
        let v = &r.reviews[0];
        assert_eq!((v.pull_number, v.commit_id.as_str(), v.event.as_str()), (12, HEAD, "COMMENT"));
        assert!(v.body.contains(&format!("<!-- ci-healer:suggestions={}/{name} -->", apis.ns)), "{}", v.body);
        assert_eq!(v.comments.len(), 1, "{:?}", v.comments);
        let c = &v.comments[0];
        assert_eq!((c.path.as_str(), c.line, c.start_line, c.side.as_str()), ("web/tsc.ts", 1, None, "RIGHT"));
        assert_eq!(c.body, format!("```suggestion\n{FIXED}```"));
        // The one comment carries the patch and points at the suggestions.
        assert_eq!(r.comments.len(), 1);
        let m = &r.comments[0];
        assert_eq!((m.issue_number, Some(m.id)), (12, report.comment_id));
        assert!(m.body.contains("```diff\n") && m.body.contains(&format!("+{FIXED}")), "{}", m.body);
        assert!(m.body.contains("suggested changes"), "{}", m.body);
    }
    let ops = gh.operations();
    let pos = |op: &str| ops.iter().position(|o| o == op).unwrap_or_else(|| panic!("no {op} in {ops:?}"));
    assert!(pos("pulls/list-reviews") < pos("pulls/create-review"), "{ops:?}");
    assert_clean(&gh);

    // A restart that lost the report: the review is found, not posted again.
    ctrl.kill();
    let lost = serde_json::json!({"status": {"report": null}});
    apis.runs.patch_status(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(lost)).await.unwrap();
    gh.clear_requests();
    let _ctrl = ControllerProcess::start(&apis.ns, Some(&cfg));
    support::wait_for("the report after the restart", Duration::from_secs(60), || async {
        apis.runs.get(name).await.ok()?.status?.report.filter(|r| r.reported.is_some())
    })
    .await;
    let ops = gh.operations();
    assert!(ops.iter().any(|o| o == "pulls/list-reviews"), "{ops:?}");
    assert!(!ops.iter().any(|o| o == "pulls/create-review"), "{ops:?}");
    assert_eq!(gh.state().repo(REPO).unwrap().reviews.len(), 1);
    assert_clean(&gh);
}

/// Ask for `action` on run `name` as `who` (a merge patch of the spec, as `kubectl patch` sends).
async fn act(apis: &Apis, name: &str, action: &str, who: &str, reason: Option<&str>) {
    let mut req = serde_json::json!({"requestedBy": who});
    if let Some(r) = reason {
        req["reason"] = serde_json::json!(r);
    }
    let patch = serde_json::json!({"spec": {"action": action, "actionRequest": req}});
    apis.runs.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(patch)).await.unwrap();
}

/// `deny` on a delivered fix (issue 10): the run ends Denied, and its draft pull request is closed
/// (never merged) with one comment saying who refused it and why, and its `ci-healer/<run>` branch
/// is deleted; a restarted controller does none of it twice.
#[tokio::test]
async fn denying_a_delivered_fix_closes_its_pull_request_and_deletes_its_branch() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    gh.state().repo_mut(REPO).unwrap().refs.insert("heads/feature".into(), HEAD.into());
    let (client, apis, mut ctrl, cfg) = setup(&gh, "gh-deny", "Codertocat").await;
    let name = "denied";
    heal(&apis, &client, name, "feature").await;
    let run = wait_cond(&apis, name, "Delivered", Duration::from_secs(90)).await;
    let pr = run.status.as_ref().unwrap().pull_request.clone().expect("status.pullRequest");
    let branch = format!("heads/ci-healer/{name}");
    assert!(gh.state().repo(REPO).unwrap().refs.contains_key(&branch));
    gh.clear_requests();

    act(&apis, name, "deny", "reviewer", Some("the change hides a real bug")).await;
    apis.run_phase(name, "Denied").await;
    let run = support::wait_for("status.pullRequest closed", Duration::from_secs(30), || async {
        let r = apis.runs.get(name).await.ok()?;
        (r.status.as_ref()?.pull_request.as_ref()?.state == "closed").then_some(r)
    })
    .await;
    assert_eq!(run.status.as_ref().unwrap().phase.map(|p| p.as_str()), Some("Denied"));
    wait_event(&apis, name, "PullRequestClosed").await;
    {
        let st = gh.state();
        let r = st.repo(REPO).unwrap();
        let p = r.pulls.iter().find(|p| p.number == pr.number).unwrap();
        assert_eq!(p.state, "closed", "closed, not merged");
        assert!(!r.refs.contains_key(&branch), "the fix branch is deleted");
        assert_eq!(r.refs["heads/feature"], HEAD, "the failing branch is untouched");
        let on_fix: Vec<_> = r.comments.iter().filter(|c| c.issue_number == pr.number).collect();
        assert_eq!(on_fix.len(), 1, "one closing comment");
        let body = &on_fix[0].body;
        assert!(body.contains("denied by reviewer") && body.contains("the change hides a real bug"), "{body}");
        assert!(body.contains(&format!("The branch `ci-healer/{name}` is deleted")), "{body}");
    }
    // What GitHub received to close it: the comment, the close, the branch deletion, in that order.
    let writes: Vec<(String, String, String)> = gh
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.operation != "repos/create-commit-status")
        .map(|r| (r.method, r.operation, r.path))
        .collect();
    assert_eq!(
        writes,
        [
            ("POST".into(), "issues/create-comment".into(), format!("/repos/{REPO}/issues/{}/comments", pr.number)),
            ("PATCH".into(), "pulls/update".into(), format!("/repos/{REPO}/pulls/{}", pr.number)),
            ("DELETE".into(), "git/delete-ref".into(), format!("/repos/{REPO}/git/refs/heads/ci-healer/{name}")),
        ]
    );
    let close = gh.requests().into_iter().find(|r| r.operation == "pulls/update").unwrap();
    assert_eq!(close.body, Some(serde_json::json!({"state": "closed"})));
    assert_clean(&gh);

    // A restart: nothing is closed, commented or deleted again.
    ctrl.kill();
    gh.clear_requests();
    let _ctrl = ControllerProcess::start(&apis.ns, Some(&cfg));
    poke(&apis, name).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let writes: Vec<_> = gh.requests().into_iter().filter(|r| r.method != "GET").map(|r| r.operation).collect();
    assert!(writes.is_empty(), "{writes:?}");
}

/// `approve` in `propose` mode (issue 10): the kept patch becomes the draft pull request that
/// `pull-request` mode would have opened, into the failing branch; the failing run's sender cannot
/// approve it alone.
#[tokio::test]
async fn approving_a_proposed_fix_opens_its_draft_pull_request() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    gh.state().repo_mut(REPO).unwrap().refs.insert("heads/feature".into(), HEAD.into());
    let (client, apis, _ctrl, _cfg) = setup(&gh, "gh-approve", "Codertocat").await;
    let name = "approved";
    let mut run = sample_run(&apis.ns, name, REPO);
    run.spec.source.branch = "feature".into();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    pass_attempt(&apis, &client, name, PATCH).await;
    apis.run_phase(name, "Fixed").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(gh.state().repo(REPO).unwrap().pulls.is_empty(), "propose mode: no pull request before approval");

    // The failing run's sender may not approve alone.
    act(&apis, name, "approve", "Codertocat", None).await;
    let r = support::wait_for("the refused approval", Duration::from_secs(30), || async {
        let r = apis.runs.get(name).await.ok()?;
        (r.status.as_ref()?.history.len() == 1).then_some(r)
    })
    .await;
    assert_eq!(cond(&r, "ActionApplied").unwrap().1, "SelfApprovalRefused");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(gh.state().repo(REPO).unwrap().pulls.is_empty());

    act(&apis, name, "approve", "reviewer", None).await;
    let run = wait_cond(&apis, name, "Delivered", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&run, "Delivered").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "PullRequestOpened"), "{message}");
    assert_eq!(cond(&run, "Approved").unwrap().0, "True");
    let pr = run.status.as_ref().unwrap().pull_request.clone().expect("status.pullRequest");
    {
        let st = gh.state();
        let r = st.repo(REPO).unwrap();
        assert_eq!(r.pulls.len(), 1);
        let p = &r.pulls[0];
        assert!(p.draft, "a draft");
        assert_eq!((p.number, p.base_ref.as_str(), p.head_ref.as_str()), (pr.number, "feature", pr.head_ref.as_str()));
        let c = &r.commits[&r.refs[&format!("heads/{}", pr.head_ref)]];
        assert_eq!(c.parents, [HEAD.to_string()]);
        assert_eq!(r.file(&c.sha, "web/tsc.ts").unwrap().1, FIXED.as_bytes());
    }
    assert_eq!(gh.operations().iter().filter(|o| *o == "pulls/create").count(), 1);
    assert_clean(&gh);
}

/// `actions.autoApprove` (issue 10): a fix that deterministic fixers alone made (no LLM tokens,
/// the built-in agent step) goes straight to a pull request ready for review, approved by the
/// controller; a fix that used LLM tokens stays a proposal for a person to approve.
#[tokio::test]
async fn a_zero_token_fix_is_auto_approved_into_a_ready_pull_request() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    let other = {
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        r.refs.insert("heads/feature".into(), HEAD.into());
        let sha = r.commit(CommitSpec {
            parent: Some(HEAD.into()),
            files: vec![("web/tsc.ts".into(), Some("export const g = (x, y) => x - y;\n".into()))],
            message: "tsc: g".into(),
            author_login: Some("Codertocat".into()),
            ..Default::default()
        });
        r.refs.insert("heads/llm".into(), sha.clone());
        sha
    };
    let (client, apis, _ctrl, _cfg) = setup_with(&gh, "gh-auto", "Codertocat", "actions: {autoApprove: true}\n").await;
    // Deterministic: propose mode, no tokens.
    let name = "formatted";
    let mut run = sample_run(&apis.ns, name, REPO);
    run.spec.source.branch = "feature".into();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    pass_attempt(&apis, &client, name, PATCH).await;
    let run = wait_cond(&apis, name, "Delivered", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&run, "Delivered").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "PullRequestOpened"), "{message}");
    assert!(message.contains("ready-for-review pull request"), "{message}");
    let (status, reason, _) = cond(&run, "Approved").expect("Approved");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "AutoApproved"));
    wait_event(&apis, name, "AutoApproved").await;
    let pr = run.status.as_ref().unwrap().pull_request.clone().unwrap();
    {
        let st = gh.state();
        let p = st.repo(REPO).unwrap().pulls.iter().find(|p| p.number == pr.number).cloned().unwrap();
        assert!(!p.draft, "ready for review, not a draft");
        assert_eq!(p.base_ref, "feature");
    }
    let create = gh.requests().into_iter().find(|r| r.operation == "pulls/create").unwrap();
    assert_eq!(create.body.as_ref().unwrap()["draft"], false);

    // The LLM made this one: no approval without a person, no pull request.
    let name = "by-llm";
    let mut run = sample_run(&apis.ns, name, REPO);
    run.spec.source.branch = "llm".into();
    run.spec.source.head_sha = other;
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    let patch = "diff --git a/web/tsc.ts b/web/tsc.ts\n--- a/web/tsc.ts\n+++ b/web/tsc.ts\n@@ -1 +1 @@\n-export const g = (x, y) => x - y;\n+export const g = (x: number, y: number) => x - y;\n";
    let tokens = ci_healer::contract::TokenUsage { input: 1200, output: 300, ..Default::default() };
    pass_attempt_with(&apis, &client, name, patch, Some(tokens)).await;
    let run = apis.run_phase(name, "Fixed").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let run = apis.runs.get(&run.name_any()).await.unwrap();
    assert!(cond(&run, "Approved").is_none() && cond(&run, "Delivered").is_none(), "{:?}", run.status);
    assert_eq!(gh.operations().iter().filter(|o| *o == "pulls/create").count(), 1);
    assert_clean(&gh);
}

/// Protected paths (issue 10): a validated fix whose verdict names protected paths is held, even in
/// `pull-request` mode and with `autoApprove` on, with `Approved=False/ProtectedPathNeedsApproval`
/// and an Event; only a person's `approve` delivers it.
#[tokio::test]
async fn a_fix_touching_a_protected_path_waits_for_a_persons_approval() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    gh.state().repo_mut(REPO).unwrap().refs.insert("heads/feature".into(), HEAD.into());
    let (client, apis, _ctrl, _cfg) =
        setup_with(&gh, "gh-protected", "Codertocat", "actions: {autoApprove: true}\n").await;
    let name = "protected";
    let mut run = sample_run(&apis.ns, name, REPO);
    run.spec.source.branch = "feature".into();
    run.spec.policy.mode = ci_healer::crd::HealingMode::PullRequest;
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    let verdict = ci_healer::contract::Verdict {
        protected_paths: vec!["web/tsc.ts".into()],
        ..ci_healer::contract::Verdict::new(ci_healer::contract::Outcome::Passed, "ValidationPassed", "tsc passes")
    };
    pass_attempt_n(&apis, &client, name, 1, PATCH, verdict).await;
    let run = wait_cond(&apis, name, "Approved", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&run, "Approved").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ProtectedPathNeedsApproval"), "{message}");
    assert!(message.contains("web/tsc.ts"), "{message}");
    assert_eq!(run.status.as_ref().unwrap().patch.as_ref().unwrap().protected_paths, ["web/tsc.ts"]);
    wait_event(&apis, name, "ProtectedPathNeedsApproval").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(gh.state().repo(REPO).unwrap().pulls.is_empty(), "held: no pull request before a person approves");
    assert!(cond(&apis.runs.get(name).await.unwrap(), "Delivered").is_none());

    act(&apis, name, "approve", "reviewer", None).await;
    let run = wait_cond(&apis, name, "Delivered", Duration::from_secs(60)).await;
    let (status, reason, message) = cond(&run, "Delivered").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "PullRequestOpened"), "{message}");
    assert_eq!(cond(&run, "Approved").unwrap().1, "ApprovedByReviewer");
    assert_eq!(gh.state().repo(REPO).unwrap().pulls.len(), 1);
    assert_clean(&gh);
}

/// `retry` after `deny` (issue 10): the retried run's new fix is delivered again, on a branch of its
/// own (`ci-healer/<run>-retry-1`), never onto the denied pull request; `abort` on that Fixed run
/// closes its open pull request (the branch stays, for people to read).
#[tokio::test]
async fn a_retried_denied_fix_is_delivered_again_and_abort_closes_its_pull_request() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    gh.state().repo_mut(REPO).unwrap().refs.insert("heads/feature".into(), HEAD.into());
    let (client, apis, _ctrl, _cfg) = setup(&gh, "gh-retry-deny", "Codertocat").await;
    let name = "retried";
    heal(&apis, &client, name, "feature").await;
    let run = wait_cond(&apis, name, "Delivered", Duration::from_secs(90)).await;
    let first = run.status.as_ref().unwrap().pull_request.clone().expect("status.pullRequest");
    act(&apis, name, "deny", "reviewer", Some("wrong fix")).await;
    apis.run_phase(name, "Denied").await;
    support::wait_for("the denied pull request closed", Duration::from_secs(30), || async {
        let st = gh.state();
        (st.repo(REPO)?.pulls.iter().find(|p| p.number == first.number)?.state == "closed").then_some(())
    })
    .await;

    act(&apis, name, "retry", "reviewer", None).await;
    apis.run_phase(name, "Running").await;
    let verdict = ci_healer::contract::Verdict::new(ci_healer::contract::Outcome::Passed, "ValidationPassed", "again");
    pass_attempt_n(&apis, &client, name, 2, PATCH, verdict).await;
    let run = support::wait_for("the retried fix delivered", Duration::from_secs(90), || async {
        let r = apis.runs.get(name).await.ok()?;
        let c = cond(&r, "Delivered")?;
        (c.0 == "True").then_some(r)
    })
    .await;
    let second = run.status.as_ref().unwrap().pull_request.clone().expect("status.pullRequest");
    assert_eq!(second.head_ref, format!("ci-healer/{name}-retry-1"));
    assert_ne!(second.number, first.number);
    {
        let st = gh.state();
        let r = st.repo(REPO).unwrap();
        assert_eq!(r.pulls.len(), 2);
        assert_eq!(r.pulls.iter().find(|p| p.number == second.number).unwrap().state, "open");
    }

    act(&apis, name, "abort", "reviewer", None).await;
    apis.run_phase(name, "Aborted").await;
    support::wait_for("the retried pull request closed", Duration::from_secs(30), || async {
        let st = gh.state();
        (st.repo(REPO)?.pulls.iter().find(|p| p.number == second.number)?.state == "closed").then_some(())
    })
    .await;
    let st = gh.state();
    let r = st.repo(REPO).unwrap();
    assert!(r.refs.contains_key(&format!("heads/ci-healer/{name}-retry-1")), "abort keeps the branch");
    let closing: Vec<_> = r.comments.iter().filter(|c| c.issue_number == second.number).collect();
    assert_eq!(closing.len(), 1, "one closing comment");
    assert!(closing[0].body.contains("aborted by reviewer"), "{}", closing[0].body);
    drop(st);
    assert_clean(&gh);
}

/// `approve` in `pull-request` mode (issue 10): the run's draft pull request is taken out of draft
/// through GitHub's GraphQL mutation `markPullRequestReadyForReview` (the loopback checks the
/// request against GitHub's GraphQL schema with graphql-js), once, even after a restart.
#[tokio::test]
async fn approving_a_delivered_draft_marks_it_ready_for_review_through_graphql() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh, real_log());
    gh.state().repo_mut(REPO).unwrap().refs.insert("heads/feature".into(), HEAD.into());
    let (client, apis, mut ctrl, cfg) = setup(&gh, "gh-ready", "Codertocat").await;
    let name = "ready";
    heal(&apis, &client, name, "feature").await;
    let run = wait_cond(&apis, name, "Delivered", Duration::from_secs(90)).await;
    let pr = run.status.as_ref().unwrap().pull_request.clone().expect("status.pullRequest");
    assert_eq!(pr.ready_for_review, None);
    assert!(gh.state().repo(REPO).unwrap().pulls.iter().find(|p| p.number == pr.number).unwrap().draft);
    gh.clear_requests();

    act(&apis, name, "approve", "reviewer", None).await;
    let run = support::wait_for("status.pullRequest.readyForReview", Duration::from_secs(60), || async {
        let r = apis.runs.get(name).await.ok()?;
        (r.status.as_ref()?.pull_request.as_ref()?.ready_for_review == Some(true)).then_some(r)
    })
    .await;
    assert_eq!(cond(&run, "Approved").unwrap().1, "ApprovedByReviewer");
    wait_event(&apis, name, "PullRequestReady").await;
    assert!(!gh.state().repo(REPO).unwrap().pulls.iter().find(|p| p.number == pr.number).unwrap().draft);
    let graphql: Vec<_> = gh.requests().into_iter().filter(|r| r.operation.starts_with("graphql")).collect();
    assert_eq!(graphql.len(), 1, "{graphql:?}");
    assert_eq!(graphql[0].operation, "graphql/markPullRequestReadyForReview");
    assert_eq!(graphql[0].path, "/graphql");
    let body = graphql[0].body.clone().unwrap();
    assert_eq!(body["variables"]["id"], serde_json::json!(format!("PR_{REPO}#{}", pr.number)));
    assert_clean(&gh);

    // A restart marks nothing again.
    ctrl.kill();
    gh.clear_requests();
    let _ctrl = ControllerProcess::start(&apis.ns, Some(&cfg));
    poke(&apis, name).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let writes: Vec<_> = gh.requests().into_iter().filter(|r| r.method != "GET").map(|r| r.operation).collect();
    assert!(writes.is_empty(), "{writes:?}");
}
