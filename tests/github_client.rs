//! The GitHub client (`src/github/`) against the loopback GitHub, which checks every request
//! against GitHub's own OpenAPI description. No control plane needed.

mod loopback_github;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ci_healer::crd::SecretKeyRef;
use ci_healer::github::config::AppIdentity;
use ci_healer::github::http::{Call, Transport};
use ci_healer::github::*;
use loopback_github::*;

const REPO: &str = "octo-org/web";
const LOG: &str = "tests/fixtures/triage/logs/other/cidiff-Quick_Checks-run104.log";
const WORKFLOW: &str = "name: CI\non: [pull_request]\njobs:\n  linters:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: yarn run format-check\n        working-directory: web\n";

struct Seeded {
    base: String,
    head: String,
}

/// A repository with `main`, a feature branch with one commit, its PR #7, a workflow run and a
/// failed job whose log is a real GitHub Actions log.
fn seed(gh: &LoopbackGitHub, installation: Option<i64>) -> Seeded {
    let mut st = gh.state();
    let r = st.add_repo(REPO);
    r.installation_id = installation;
    let base = r.commit(CommitSpec {
        files: vec![
            ("package.json".into(), Some("{\"scripts\":{\"format-check\":\"prettier --check .\"}}\n".into())),
            ("web/src/greet.ts".into(), Some("export const greet = (n: string) => `hi ${n}`;\n".into())),
            (".github/workflows/ci.yml".into(), Some(WORKFLOW.into())),
            ("README.md".into(), Some("hello\n".into())),
        ],
        message: "base".into(),
        author_login: Some("octocat".into()),
        ..Default::default()
    });
    let head = r.commit(CommitSpec {
        parent: Some(base.clone()),
        files: vec![("web/src/greet.ts".into(), Some("export const greet = (n:string)=>`hi ${n}`\n".into()))],
        message: "greet: shorter".into(),
        author_login: Some("octocat".into()),
        ..Default::default()
    });
    r.refs.insert("heads/main".into(), base.clone());
    r.refs.insert("heads/feature".into(), head.clone());
    r.protected.insert("main".into());
    r.pulls.push(Pull {
        number: 7,
        title: "Shorter greet".into(),
        head_ref: "feature".into(),
        head_sha: head.clone(),
        base_ref: "main".into(),
        ..Default::default()
    });
    r.runs.insert(
        2202229078,
        WorkflowRun {
            id: 2202229078,
            path: ".github/workflows/ci.yml".into(),
            head_sha: head.clone(),
            head_branch: "feature".into(),
            ..Default::default()
        },
    );
    r.jobs.insert(
        289782451,
        Job {
            id: 289782451,
            run_id: 2202229078,
            name: "linters".into(),
            head_sha: head.clone(),
            head_branch: "feature".into(),
            steps: vec![
                Step { name: "Set up job".into(), conclusion: "success".into() },
                Step { name: "Run yarn run format-check".into(), conclusion: "failure".into() },
            ],
            log: Log::Text(std::fs::read_to_string(LOG).unwrap()),
            ..Default::default()
        },
    );
    r.collaborators.insert("octocat".into(), "write".into());
    Seeded { base, head }
}

fn token_client(gh: &LoopbackGitHub, token: &str) -> RestGitHub {
    gh.state().auth.tokens.insert(token.into(), "healer-bot".into());
    let cfg = GitHubConfig {
        api_url: gh.api_url(),
        token_secret: Some(SecretKeyRef { name: "gh".into(), key: "token".into() }),
        ..Default::default()
    };
    let secrets = SecretSource::Static(HashMap::from([("gh/token".to_string(), token.to_string())]));
    RestGitHub::new(Arc::new(Identity::new(cfg, secrets, None).unwrap()))
}

fn app_client(gh: &LoopbackGitHub, ttl: u64) -> RestGitHub {
    let (private, public) = app_keypair();
    gh.state().auth.app =
        Some(App { id: 4242, slug: "ci-healer".into(), public_key_pem: public, token_ttl_seconds: ttl });
    let cfg = GitHubConfig {
        api_url: gh.api_url(),
        app: Some(AppIdentity {
            app_id: 4242,
            private_key_secret: SecretKeyRef { name: "app".into(), key: "key.pem".into() },
            installation_id: None,
        }),
        ..Default::default()
    };
    let secrets = SecretSource::Static(HashMap::from([("app/key.pem".to_string(), private)]));
    RestGitHub::new(Arc::new(Identity::new(cfg, secrets, None).unwrap()))
}

fn query(s: &Seeded, event: FailureEvent) -> FailureQuery {
    FailureQuery {
        target: Target::new(REPO),
        event,
        head_sha: s.head.clone(),
        branch: "feature".into(),
        job_id: Some(289782451),
        run_id: Some(2202229078),
        check_run_id: None,
        check_suite_id: None,
        job_name: Some("linters".into()),
        failed_steps: vec![],
        status_text: None,
    }
}

fn assert_clean(gh: &LoopbackGitHub) {
    let v = gh.violations();
    assert!(v.is_empty(), "requests or answers that GitHub's OpenAPI description does not allow:\n{}", v.join("\n"));
}

#[tokio::test]
async fn a_workflow_job_is_read_with_its_log_tail_step_command_and_changed_files() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, None);
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000001");
    let r = client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap();
    assert_clean(&gh);

    let log = String::from_utf8_lossy(&r.log);
    assert!(log.contains("##[error]Process completed with exit code 1."), "the tail holds the error");
    assert!(matches!(r.log_fetch, Some(LogFetch::Fetched { total: Some(58938), .. })), "{:?}", r.log_fetch);
    assert_eq!(r.failed_steps, ["Run yarn run format-check"]);
    let step = r.step.as_ref().expect("the failing step from the workflow file at headSha");
    assert_eq!(step.run.as_deref(), Some("yarn run format-check"));
    assert_eq!(step.working_directory.as_deref(), Some("web"));
    assert!(r.step_note.is_none(), "{:?}", r.step_note);
    assert_eq!(r.changed_files, ["web/src/greet.ts"], "against the PR's base");
    let pr = r.pull_request.as_ref().unwrap();
    assert_eq!((pr.number, pr.fork, pr.base_ref.as_str()), (7, false, "main"));

    // The log came from the storage origin with a suffix range and without our credentials.
    let blobs = gh.blob_requests();
    assert_eq!(blobs.len(), 1);
    assert!(!blobs[0].had_authorization, "credentials must not follow the redirect to another origin");
    assert_eq!(blobs[0].range.as_deref(), Some("bytes=-4194304"));
    assert_eq!(
        gh.operations(),
        [
            "actions/get-job-for-workflow-run",
            "actions/download-job-logs-for-workflow-run",
            "actions/get-workflow-run",
            "repos/get-content",
            "repos/list-pull-requests-associated-with-commit",
            "pulls/list-files",
        ]
    );
    assert!(gh.requests().iter().all(|r| r.auth == "token:healer-bot"));
}

#[tokio::test]
async fn a_log_larger_than_the_tail_is_cut_to_its_end_in_either_storage_mode() {
    for ignores_range in [false, true] {
        let gh = LoopbackGitHub::start(Options { blob_ignores_range: ignores_range, ..Default::default() }).await;
        let s = seed(&gh, None);
        let tail = "2024-05-01T10:09:59.0000000Z error[E0308]: mismatched types\n2024-05-01T10:09:59.1000000Z ##[error]Process completed with exit code 101.\n";
        gh.state().repo_mut(REPO).unwrap().jobs.get_mut(&289782451).unwrap().log =
            Log::Generated { total: 12 << 20, tail: tail.into() };
        let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000002");
        let r = client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap();
        assert!(r.log.len() <= 4 << 20, "at most the tail is kept: {}", r.log.len());
        assert!(r.log.ends_with(tail.as_bytes()), "ignores_range={ignores_range}");
        assert!(r.log.starts_with(b"2024-05-01T10:00:00.0000000Z npm verb"), "the tail starts at a line");
        assert!(matches!(r.log_fetch, Some(LogFetch::Fetched { total: Some(t), .. }) if t == 12 << 20));
        let sent = gh.blob_requests()[0].bytes;
        if ignores_range {
            assert_eq!(sent, 12 << 20);
        } else {
            assert_eq!(sent, 4 << 20, "only the tail crossed the wire");
        }
        assert_clean(&gh);
    }
}

#[tokio::test]
async fn an_expired_log_is_reported_and_the_rest_is_still_read() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, None);
    gh.state().repo_mut(REPO).unwrap().jobs.get_mut(&289782451).unwrap().log = Log::Expired;
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000003");
    let r = client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap();
    assert_eq!(r.log_fetch, Some(LogFetch::Expired));
    assert!(r.log.is_empty());
    assert_eq!(r.failed_steps, ["Run yarn run format-check"]);
    assert!(r.step.is_some() && !r.changed_files.is_empty());
    assert_clean(&gh);
}

#[tokio::test]
async fn a_secondary_rate_limit_is_a_transient_error_with_its_wait() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, None);
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000004");
    gh.fault(Fault::secondary_rate_limit("actions/get-job-for-workflow-run", 7, 1));
    let e = client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(e.reason(), "GitHubRateLimited");
    // It was one request, not a retry loop; the next try goes through.
    assert_eq!(gh.requests().len(), 1);
    client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap();
    assert_clean(&gh);
}

#[tokio::test]
async fn a_primary_rate_limit_stops_calls_until_the_reset() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, None);
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000005");
    gh.fault(Fault::primary_rate_limit("actions/get-job-for-workflow-run", 120, 1));
    let e = client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap_err();
    assert!(
        matches!(e, Error::RateLimited { kind: "primary", retry_after, .. } if retry_after > Duration::from_secs(100)),
        "{e}"
    );
    // No request leaves until the reset: the client knows the limit is used up.
    let e = client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { kind: "primary", .. }), "{e}");
    assert_eq!(gh.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_only() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, None);
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000006");
    gh.fault(Fault::status("actions/get-job-for-workflow-run", 502, 2));
    client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap();
    assert_eq!(gh.operations().iter().filter(|o| *o == "actions/get-job-for-workflow-run").count(), 3);
    // A write that got a 5xx is not repeated blindly: the caller looks it up first.
    gh.fault(Fault::status("actions/re-run-job-for-workflow-run", 503, 1));
    let e = client.rerun_job(&Target::new(REPO), 289782451).await.unwrap_err();
    assert!(matches!(e, Error::Server { status: 503, attempts: 1, .. }), "{e}");
    assert_eq!(gh.state().repo(REPO).unwrap().jobs[&289782451].reruns, 0);
    client.rerun_job(&Target::new(REPO), 289782451).await.unwrap();
    assert_eq!(gh.state().repo(REPO).unwrap().jobs[&289782451].reruns, 1);
    assert_clean(&gh);
}

#[tokio::test]
async fn a_github_app_mints_one_installation_token_and_reuses_it() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, Some(77));
    let client = app_client(&gh, 3600);
    client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap();
    client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap();
    let reqs = gh.requests();
    assert_eq!(reqs[0].operation, "apps/get-repo-installation");
    assert_eq!(reqs[0].auth, "jwt");
    assert_eq!(reqs[1].operation, "apps/create-installation-access-token");
    assert_eq!(
        reqs.iter().filter(|r| r.operation == "apps/create-installation-access-token").count(),
        1,
        "the token is cached"
    );
    assert!(reqs[2..].iter().all(|r| r.auth == "installation:77"), "{reqs:#?}");
    assert_clean(&gh);

    // A token that is about to expire (inside octocrab's 30 s margin) is minted again.
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, Some(77));
    let client = app_client(&gh, 20);
    let mut q = query(&s, FailureEvent::WorkflowJob);
    q.target.installation_id = Some(77); // the delivery's installation.id: no lookup
    client.read_failure(&q).await.unwrap();
    let ops = gh.operations();
    assert!(!ops.contains(&"apps/get-repo-installation".to_string()));
    assert!(ops.iter().filter(|o| *o == "apps/create-installation-access-token").count() > 1);

    // An installation token reaches only its own repositories.
    gh.state().add_repo("other/repo");
    let e = client
        .read_failure(&FailureQuery {
            target: Target { repository: "other/repo".into(), installation_id: Some(77) },
            ..q
        })
        .await;
    assert!(e.unwrap().log_fetch.is_some_and(|l| matches!(l, LogFetch::Unreachable { .. })));
}

#[tokio::test]
async fn the_same_branch_read_twice_costs_a_304() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, None);
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000007");
    let t = Target::new(REPO);
    let a = client.branch_facts(&t, "feature", &s.head, 4, "ci-healer/").await.unwrap();
    gh.clear_requests();
    let b = client.branch_facts(&t, "feature", &s.head, 4, "ci-healer/").await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.head.as_deref(), Some(s.head.as_str()));
    assert_eq!(a.recent.len(), 2);
    assert_eq!(a.head_commit.as_ref().unwrap().message, "greet: shorter");
    assert!(!a.protected);
    let reqs = gh.requests();
    let branch = reqs.iter().find(|r| r.operation == "repos/get-branch").unwrap();
    assert!(branch.if_none_match.is_some() && branch.status == 304, "{branch:?}");
    assert!(client.branch_facts(&t, "main", &s.base, 0, "ci-healer/").await.unwrap().protected);
    assert_clean(&gh);
}

fn fix_patch() -> Vec<u8> {
    b"diff --git a/web/src/greet.ts b/web/src/greet.ts\nindex 1111111..2222222 100644\n--- a/web/src/greet.ts\n+++ b/web/src/greet.ts\n@@ -1 +1 @@\n-export const greet = (n:string)=>`hi ${n}`\n+export const greet = (n: string) => `hi ${n}`;\n".to_vec()
}

fn pr_request(s: &Seeded) -> PullRequestRequest {
    PullRequestRequest {
        target: Target::new(REPO),
        base_branch: "feature".into(),
        head_sha: s.head.clone(),
        head_ref: "ci-healer/gh-1-1-2".into(),
        patch: fix_patch(),
        commit_message: "ci-healer: format web/src/greet.ts".into(),
        title: "ci-healer: fix linters".into(),
        body: "body".into(),
        labels: vec!["ci-healer".into()],
        draft: true,
    }
}

#[tokio::test]
async fn a_fix_becomes_one_verified_draft_pull_request_into_the_failing_branch() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, Some(9));
    let client = app_client(&gh, 3600);
    let req = pr_request(&s);
    let d = client.deliver_pull_request(&req).await.unwrap();
    let Delivery::Opened(pr) = d else { panic!("{d:?}") };
    assert_clean(&gh);
    let writes: Vec<String> = gh.requests().into_iter().filter(|r| r.method != "GET").map(|r| r.operation).collect();
    assert_eq!(
        writes,
        [
            "apps/create-installation-access-token",
            "git/create-blob",
            "git/create-tree",
            "git/create-commit",
            "git/create-ref",
            "pulls/create",
            "issues/add-labels"
        ]
    );
    {
        let st = gh.state();
        let r = st.repo(REPO).unwrap();
        let p = r.pulls.iter().find(|p| p.number == pr.number).unwrap();
        assert!(p.draft);
        assert_eq!((p.base_ref.as_str(), p.head_ref.as_str()), ("feature", "ci-healer/gh-1-1-2"));
        assert_eq!(p.labels, ["ci-healer"]);
        assert_eq!(r.refs["heads/feature"], s.head, "the failing branch is never pushed to");
        let c = &r.commits[&r.refs["heads/ci-healer/gh-1-1-2"]];
        assert_eq!(c.parents, std::slice::from_ref(&s.head));
        assert!(c.verified, "an App's API commit is signed by GitHub");
        assert_eq!(r.file(&c.sha, "web/src/greet.ts").unwrap().1, b"export const greet = (n: string) => `hi ${n}`;\n");
        assert_eq!(r.file(&c.sha, "README.md").unwrap().1, b"hello\n", "the rest of the tree is kept");
    }
    // Again (a restart after "PR opened"): found, nothing written.
    gh.clear_requests();
    assert_eq!(client.deliver_pull_request(&req).await.unwrap(), Delivery::Existing(pr.clone()));
    assert!(gh.requests().iter().all(|r| r.method == "GET"));
    assert_eq!(gh.state().repo(REPO).unwrap().pulls.len(), 2);
}

#[tokio::test]
async fn a_crash_between_branch_and_pull_request_leaves_one_pull_request() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, Some(9));
    let client = app_client(&gh, 3600);
    let req = pr_request(&s);
    let hold = gh.hold("pulls/create");
    let c2 = client.clone();
    let r2 = req.clone();
    let task = tokio::spawn(async move { c2.deliver_pull_request(&r2).await });
    tokio::time::timeout(Duration::from_secs(60), hold.wait_held()).await.expect("the PR request arrives");
    task.abort(); // the controller dies with the request in flight
    let _ = task.await;
    hold.release();
    assert!(gh.state().repo(REPO).unwrap().refs.contains_key("heads/ci-healer/gh-1-1-2"), "the branch was created");
    let d = client.deliver_pull_request(&req).await.unwrap();
    assert!(matches!(d, Delivery::Opened(_)), "{d:?}");
    let st = gh.state();
    let r = st.repo(REPO).unwrap();
    assert_eq!(r.pulls.iter().filter(|p| p.head_ref == "ci-healer/gh-1-1-2").count(), 1);
    assert_eq!(
        r.commits.values().filter(|c| c.parents == [s.head.clone()] && c.message.starts_with("ci-healer")).count(),
        1,
        "the branch's commit was reused"
    );
    drop(st);
    assert_clean(&gh);
}

#[tokio::test]
async fn a_moved_branch_or_a_foreign_branch_gets_no_pull_request() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, None);
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000008");
    let mut req = pr_request(&s);
    req.head_sha = s.base.clone(); // the branch has moved past the failing commit
    assert_eq!(
        client.deliver_pull_request(&req).await.unwrap(),
        Delivery::BranchMoved { current: Some(s.head.clone()) }
    );
    assert!(gh.requests().iter().all(|r| r.method == "GET"), "nothing written");
    // Someone else's branch of the same name is never overwritten.
    gh.state().repo_mut(REPO).unwrap().refs.insert("heads/ci-healer/gh-1-1-2".into(), s.base.clone());
    let d = client.deliver_pull_request(&pr_request(&s)).await.unwrap();
    assert!(matches!(d, Delivery::Refused { reason: "BranchExists", .. }), "{d:?}");
    // A patch that does not apply at headSha is refused, not half-committed.
    let mut bad = pr_request(&s);
    bad.head_ref = "ci-healer/other".into();
    bad.patch =
        b"diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-something else\n+x\n"
            .to_vec();
    let d = client.deliver_pull_request(&bad).await.unwrap();
    assert!(matches!(d, Delivery::Refused { reason: "PatchDoesNotApply", .. }), "{d:?}");
    assert_clean(&gh);
}

fn report(s: &Seeded, state: CheckState, known: ReportIds, comment: &str) -> ReportRequest {
    ReportRequest {
        target: Target::new(REPO),
        head_sha: s.head.clone(),
        key: "team/gh-1-1-2".into(),
        check: CheckOutput {
            state,
            title: format!("{state:?}"),
            summary: "summary".into(),
            text: Some("text".into()),
            details_url: None,
        },
        comment: Some((7, comment.into())),
        known,
    }
}

#[tokio::test]
async fn one_check_run_and_one_comment_are_edited_in_place_even_after_a_restart() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, Some(9));
    let client = app_client(&gh, 3600);
    let ids = client.report(&report(&s, CheckState::InProgress, ReportIds::default(), "healing…")).await.unwrap();
    let ids2 = client.report(&report(&s, CheckState::InProgress, ids.clone(), "attempt 2")).await.unwrap();
    assert_eq!(ids, ids2);
    // A restarted controller that lost the ids finds both by the run's key.
    let ids3 = client.report(&report(&s, CheckState::Success, ReportIds::default(), "fixed")).await.unwrap();
    assert_eq!(ids, ids3);
    let st = gh.state();
    let r = st.repo(REPO).unwrap();
    let runs: Vec<_> = r.check_runs.iter().filter(|c| c.name == "ci-healer").collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].status.as_str(), runs[0].conclusion.as_deref(), runs[0].updates),
        ("completed", Some("success"), 2)
    );
    assert_eq!(runs[0].external_id.as_deref(), Some("team/gh-1-1-2"));
    assert_eq!(r.comments.len(), 1);
    assert_eq!(r.comments[0].edits, 2);
    assert!(
        r.comments[0].body.ends_with("fixed") && r.comments[0].body.contains("<!-- ci-healer:run=team/gh-1-1-2 -->")
    );
    drop(st);
    assert_clean(&gh);
}

#[tokio::test]
async fn a_token_identity_reports_with_a_commit_status() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, None);
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000009");
    assert_eq!(client.kind(), IdentityKind::Token);
    client.report(&report(&s, CheckState::InProgress, ReportIds::default(), "x")).await.unwrap();
    client.report(&report(&s, CheckState::ActionRequired, ReportIds::default(), "y")).await.unwrap();
    let st = gh.state();
    let r = st.repo(REPO).unwrap();
    assert!(r.check_runs.iter().all(|c| c.name != "ci-healer"));
    let states: Vec<_> = r.statuses.iter().map(|s| (s.context.as_str(), s.state.as_str())).collect();
    assert_eq!(states, [("ci-healer", "pending"), ("ci-healer", "failure")]);
    drop(st);
    assert_clean(&gh);
}

#[tokio::test]
async fn check_runs_of_other_apps_are_read_with_their_annotations() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let s = seed(&gh, None);
    {
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        r.check_runs.push(CheckRun {
            id: 128620228,
            name: "Octocoders-linter".into(),
            head_sha: s.head.clone(),
            conclusion: Some("failure".into()),
            title: Some("2 lint errors".into()),
            summary: Some("eslint found problems".into()),
            app_slug: "octocoders".into(),
            check_suite_id: 118578147,
            annotations: vec![loopback_github::Annotation {
                path: "web/src/greet.ts".into(),
                start_line: 1,
                end_line: 1,
                level: "failure".into(),
                message: "Missing semicolon.".into(),
                title: Some("semi".into()),
            }],
            ..Default::default()
        });
        r.check_runs.push(CheckRun {
            id: 5,
            name: "ci-healer".into(),
            head_sha: s.head.clone(),
            conclusion: Some("failure".into()),
            app_slug: "ci-healer".into(),
            check_suite_id: 118578147,
            ..Default::default()
        });
    }
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000010");
    let mut q = query(&s, FailureEvent::CheckRun);
    q.check_run_id = Some(128620228);
    let r = client.read_failure(&q).await.unwrap();
    assert_eq!(r.log_fetch, Some(LogFetch::NoLog));
    assert!(!r.actions_check_run);
    let text = String::from_utf8_lossy(&r.log);
    assert!(text.contains("web/src/greet.ts:1: failure: semi: Missing semicolon."), "{text}");
    assert_eq!(r.annotations.len(), 1);
    // A suite: its failing check runs, not ci-healer's own.
    let mut q = query(&s, FailureEvent::CheckSuite);
    q.check_suite_id = Some(118578147);
    let r = client.read_failure(&q).await.unwrap();
    assert_eq!(r.checks_read, ["Octocoders-linter (failure)"]);
    assert_clean(&gh);
}

#[tokio::test]
async fn labels_reruns_and_permissions() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let _s = seed(&gh, None);
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000011");
    let t = Target::new(REPO);
    client.set_labels(&t, 7, &["ci-healer".into(), "stop-updating".into()], &[]).await.unwrap();
    client.set_labels(&t, 7, &[], &["stop-updating".into(), "never-there".into()]).await.unwrap();
    assert_eq!(gh.state().repo(REPO).unwrap().pulls[0].labels, ["ci-healer"]);
    assert_eq!(client.permission(&t, "octocat").await.unwrap(), "write");
    assert_eq!(client.permission(&t, "stranger").await.unwrap(), "none");
    assert_clean(&gh);
}

#[tokio::test]
async fn github_enterprise_server_under_api_v3() {
    let gh = LoopbackGitHub::start(Options { prefix: "/api/v3".into(), ..Default::default() }).await;
    let s = seed(&gh, None);
    assert!(gh.api_url().ends_with("/api/v3"));
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000012");
    let r = client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap();
    assert!(matches!(r.log_fetch, Some(LogFetch::Fetched { .. })));
    assert!(gh.requests().iter().all(|r| r.status < 400), "{:#?}", gh.requests());
    assert_clean(&gh);
}

/// The loopback's own check works: a request GitHub would refuse is caught.
#[tokio::test]
async fn a_misspelt_field_fails_against_githubs_description() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    let _ = seed(&gh, None);
    gh.state().auth.tokens.insert("ghp_x00000000000000000000000000000000000000".into(), "u".into());
    let crab = octocrab::Octocrab::builder()
        .base_uri(gh.api_url())
        .unwrap()
        .personal_token("ghp_x00000000000000000000000000000000000000".to_string())
        .build()
        .unwrap();
    let t = Transport::new(crab, Default::default(), None);
    let e = t
        .send(&Call::post(
            "pulls/create",
            format!("/repos/{REPO}/pulls"),
            serde_json::json!({"titel": "x", "head": "feature", "base": 7}),
        ))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Rejected { status: 422, .. }), "{e}");
    let v = gh.violations();
    assert!(v.iter().any(|m| m.contains("/base")), "a wrong type is caught: {v:?}");
    let e = t.send(&Call::get("x", format!("/repos/{REPO}/pull/7"))).await.unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }));
    assert!(gh.violations().iter().any(|m| m.contains("not an operation of GitHub's REST API")));
    let _ = t.send(&Call::get("pulls/list", format!("/repos/{REPO}/pulls")).query("stat", "open")).await;
    assert!(gh.violations().iter().any(|m| m.contains("query parameter stat is not documented")));
}

/// Peak memory of reading a 100 MiB job log (run on purpose:
/// `cargo test --release --test github_client -- --ignored --nocapture peak_memory`). The log storage
/// ignores `Range` (the worst case: all 100 MiB cross the wire) and generates the log as it streams,
/// so the process's peak RSS growth is the client's. Prints the baseline (the same process before the
/// fetch) next to it.
#[tokio::test]
#[ignore]
async fn peak_memory_of_a_100_mib_log() {
    fn hwm_kib() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let l = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        l.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    let gh = LoopbackGitHub::start(Options { blob_ignores_range: true, ..Default::default() }).await;
    let s = seed(&gh, None);
    let tail = "2024-05-01T10:09:59.0000000Z ##[error]Process completed with exit code 1.\n";
    gh.state().repo_mut(REPO).unwrap().jobs.get_mut(&289782451).unwrap().log =
        Log::Generated { total: 100 << 20, tail: tail.into() };
    let client = token_client(&gh, "ghp_loopbacktoken000000000000000000000099");
    client.branch_facts(&Target::new(REPO), "feature", &s.head, 1, "ci-healer/").await.unwrap();
    let before = hwm_kib();
    let start = std::time::Instant::now();
    let r = client.read_failure(&query(&s, FailureEvent::WorkflowJob)).await.unwrap();
    let secs = start.elapsed().as_secs_f64();
    let after = hwm_kib();
    assert!(r.log.ends_with(tail.as_bytes()));
    assert_eq!(gh.blob_requests()[0].bytes, 100 << 20, "all of it crossed the wire");
    println!("| measure | peak RSS (KiB) |");
    println!("|---|---|");
    println!("| baseline: loopback + client, before the fetch | {before} |");
    println!("| after reading a 100 MiB log (tail kept: {} bytes, {secs:.2} s) | {after} |", r.log.len());
    println!("| growth | {} |", after.saturating_sub(before));
}
