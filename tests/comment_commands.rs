//! `/healer` comment commands (issue 10 item 3): HealingCommand objects, created here as intake
//! creates them, answered by a real `healer controller` subprocess on the local control plane with
//! the loopback GitHub (which checks every request against GitHub's OpenAPI description).

mod loopback_github;
mod support;

use std::time::Duration;

use ci_healer::crd::{HealingCommand, HealingCommandSpec, HealingRun};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use loopback_github::*;
use support::{Apis, ControllerProcess};

const REPO: &str = "Codertocat/Hello-World";
const HEAD: &str = "3484a3fb816e0859fd6e1cea078d76385ff50625";
const JOB: i64 = 289782451;
const RUN: i64 = 2202229078;
/// The failing pull request.
const PR: i64 = 12;
const LOG: &str = "tests/fixtures/triage/logs/frontend/errorformat-tsc.log";
const WORKFLOW: &str = "name: CodeQL\non: [push]\njobs:\n  linters:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: yarn run format-check\n        working-directory: web\n";
const TOKEN: &str = "ghp_canaryTOKEN0000000000000000000000009";
/// The controller's login (the token's user).
const BOT: &str = "healer-bot";
const PATCH: &str = "diff --git a/web/tsc.ts b/web/tsc.ts\n--- a/web/tsc.ts\n+++ b/web/tsc.ts\n@@ -1 +1 @@\n-export const f = (x, y) => x + y;\n+export const f = (x: number, y: number) => x + y;\n";

/// The repository with a failing commit on `feature`, pull request #12 of it, its Actions job, and
/// the collaborators: `reviewer` (write) and `Codertocat` (admin, who pushed the failing commit).
fn seed(gh: &LoopbackGitHub) {
    let mut st = gh.state();
    st.auth.tokens.insert(TOKEN.into(), BOT.into());
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
        parent: Some(base.clone()),
        files: vec![("web/tsc.ts".into(), Some("export const f = (x, y) => x + y;\n".into()))],
        message: "tsc: two arguments".into(),
        author_login: Some("Codertocat".into()),
        sha: Some(HEAD.into()),
        ..Default::default()
    });
    r.refs.insert("heads/main".into(), base);
    r.refs.insert("heads/feature".into(), HEAD.into());
    r.runs.insert(
        RUN,
        WorkflowRun {
            id: RUN,
            path: ".github/workflows/codeql.yml".into(),
            head_sha: HEAD.into(),
            head_branch: "feature".into(),
            run_attempt: 1,
            ..Default::default()
        },
    );
    let raw = std::fs::read_to_string(support::root().join(LOG)).unwrap();
    r.jobs.insert(
        JOB,
        Job {
            id: JOB,
            run_id: RUN,
            name: "linters".into(),
            workflow_name: "CodeQL".into(),
            head_sha: HEAD.into(),
            head_branch: "feature".into(),
            steps: vec![
                Step { name: "Set up job".into(), conclusion: "success".into() },
                Step { name: "Run yarn run format-check".into(), conclusion: "failure".into() },
            ],
            log: Log::Text(github_log_format(&raw)),
            ..Default::default()
        },
    );
    r.pulls.push(Pull {
        number: PR,
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
    r.collaborators.insert("reviewer".into(), "write".into());
    r.collaborators.insert("Codertocat".into(), "admin".into());
    r.collaborators.insert("visitor".into(), "read".into());
}

/// A namespace with the token Secret and a controller allowed to heal `Codertocat/*` there.
async fn setup(gh: &LoopbackGitHub, prefix: &str) -> (Client, Apis, ControllerProcess, std::path::PathBuf) {
    setup_with(gh, prefix, "").await
}

/// [`setup`], with `extra` appended to the controller config.
async fn setup_with(
    gh: &LoopbackGitHub,
    prefix: &str,
    extra: &str,
) -> (Client, Apis, ControllerProcess, std::path::PathBuf) {
    support::github::controller(prefix, &gh.api_url(), TOKEN, |ns| {
        format!("allowedRepositories:\n  {ns}: [\"Codertocat\"]\n{extra}")
    })
    .await
}

/// The sample run (the Sensor's output for the real `workflow_job` delivery, sent by
/// `Codertocat`), on `feature`, in `propose` mode.
fn sample_run(ns: &str, name: &str) -> HealingRun {
    let text =
        std::fs::read_to_string(support::root().join("config/samples/healingrun-from-workflow-job.yaml")).unwrap();
    let mut run: HealingRun = serde_yaml_ng::from_str(&text).unwrap();
    run.metadata.namespace = Some(ns.into());
    run.metadata.name = Some(name.into());
    run.spec.source.branch = "feature".into();
    run
}

/// Create run `name`, pass its first attempt with [`PATCH`] kept, and wait until it is Fixed and
/// has reported on pull request #12.
async fn fixed_run(apis: &Apis, client: &Client, name: &str) {
    apis.runs.create(&PostParams::default(), &sample_run(&apis.ns, name)).await.unwrap();
    finish_attempt(apis, client, name, 1).await;
    apis.run_phase(name, "Fixed").await;
    support::wait_for("the report on #12", Duration::from_secs(30), || async {
        let r = apis.runs.get(name).await.ok()?.status?.report?;
        (r.pull_request_number == Some(PR) && r.reported.as_deref() == Some("Fixed")).then_some(())
    })
    .await;
}

/// Attempt `n` of run `name` passes with [`PATCH`] kept.
async fn finish_attempt(apis: &Apis, client: &Client, name: &str, n: i32) {
    let attempt = format!("{name}-{n}");
    let job = apis.job(&attempt).await;
    let cm = ConfigMap {
        metadata: ObjectMeta { name: Some(format!("{attempt}-patch")), ..Default::default() },
        data: Some([("patch.diff".to_string(), PATCH.to_string())].into()),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), &apis.ns).create(&PostParams::default(), &cm).await.unwrap();
    let status = serde_json::json!({"status": {"patchConfigMap": format!("{attempt}-patch")}});
    apis.attempts
        .patch_status(&attempt, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(status))
        .await
        .unwrap();
    let verdict = support::verdict(ci_healer::contract::Outcome::Passed, "ValidationPassed", "tsc passes");
    support::finish_attempt(apis, &job, &verdict).await;
}

/// Post comment `id` by `author` on #12 in the loopback, and create its HealingCommand as intake
/// does (`ghc-<id>`).
async fn comment(gh: &LoopbackGitHub, apis: &Apis, id: i64, author: &str, author_type: &str, body: &str) {
    gh.state().repo_mut(REPO).unwrap().comments.push(IssueComment {
        id,
        issue_number: PR,
        body: body.into(),
        user: author.into(),
        edits: 0,
    });
    let cmd = HealingCommand::new(
        &format!("ghc-{id}"),
        HealingCommandSpec {
            repository: REPO.into(),
            issue_number: PR,
            pull_request: true,
            comment_id: id,
            author: author.into(),
            author_type: Some(author_type.into()),
            body: body.into(),
            url: Some(format!("https://github.com/{REPO}/pull/{PR}#issuecomment-{id}")),
            delivery_id: Some(format!("delivery-{id}")),
            ..Default::default()
        },
    );
    commands(apis).create(&PostParams::default(), &cmd).await.unwrap();
}

fn commands(apis: &Apis) -> Api<HealingCommand> {
    Api::namespaced(apis.client.clone(), &apis.ns)
}

/// Wait until command `ghc-<id>` reaches `phase`.
async fn command_phase(apis: &Apis, id: i64, phase: &str) -> HealingCommand {
    let api = commands(apis);
    support::wait_for(&format!("ghc-{id} {phase}"), Duration::from_secs(45), || async {
        let c = api.get(&format!("ghc-{id}")).await.ok()?;
        (c.status.as_ref()?.phase?.as_str() == phase).then_some(c)
    })
    .await
}

/// The reactions on comment `id`, as `(content, user)`.
fn reactions(gh: &LoopbackGitHub, id: i64) -> Vec<(String, String)> {
    let st = gh.state();
    st.repo(REPO)
        .unwrap()
        .reactions
        .iter()
        .filter(|r| r.comment_id == id)
        .map(|r| (r.content.clone(), r.user.clone()))
        .collect()
}

/// The comments on #12 that quote command `ghc-<id>`'s marker.
fn replies(gh: &LoopbackGitHub, ns: &str, id: i64) -> Vec<String> {
    let marker = format!("<!-- ci-healer:command={ns}/ghc-{id} -->");
    let st = gh.state();
    st.repo(REPO).unwrap().comments.iter().filter(|c| c.body.contains(&marker)).map(|c| c.body.clone()).collect()
}

/// What the command controller asked of GitHub: `(method, operation, path)` of the permission
/// look-ups, reactions, and comments listed or posted on #12 (the run's own report also comments
/// there, through `issues/update-comment` after its first post).
fn command_requests(gh: &LoopbackGitHub) -> Vec<(String, String, String)> {
    gh.requests()
        .into_iter()
        .filter(|r| {
            matches!(
                r.operation.as_str(),
                "repos/get-collaborator-permission-level"
                    | "reactions/create-for-issue-comment"
                    | "issues/create-comment"
                    | "pulls/get"
                    | "checks/list-for-ref"
            )
        })
        .map(|r| (r.method, r.operation, r.path))
        .collect()
}

fn permission(login: &str) -> (String, String, String) {
    (
        "GET".into(),
        "repos/get-collaborator-permission-level".into(),
        format!("/repos/{REPO}/collaborators/{login}/permission"),
    )
}

fn reaction(id: i64) -> (String, String, String) {
    (
        "POST".into(),
        "reactions/create-for-issue-comment".into(),
        format!("/repos/{REPO}/issues/comments/{id}/reactions"),
    )
}

fn reply() -> (String, String, String) {
    ("POST".into(), "issues/create-comment".into(), format!("/repos/{REPO}/issues/{PR}/comments"))
}

fn assert_clean(gh: &LoopbackGitHub) {
    let v = gh.violations();
    assert!(v.is_empty(), "requests GitHub's OpenAPI description does not allow:\n{}", v.join("\n"));
}

/// The newest `status.history` entry of run `name` once it has `n` entries.
async fn history_entry(apis: &Apis, name: &str, n: usize) -> ci_healer::crd::run::ActionRecord {
    support::wait_for(&format!("{name}'s history entry {n}"), Duration::from_secs(30), || async {
        let r = apis.runs.get(name).await.ok()?;
        let h = r.status?.history;
        (h.len() == n).then(|| h.last().cloned()).flatten()
    })
    .await
}

async fn wait_event(apis: &Apis, kind: &str, name: &str, reason: &str) {
    support::wait_for(&format!("Event {reason} about {kind} {name}"), Duration::from_secs(15), || async {
        apis.event_reasons(kind, name).await.iter().any(|e| e == reason).then_some(())
    })
    .await
}

/// One command by `reviewer`, relayed and applied: the run's history says `action`, from a
/// comment, by `reviewer`; the comment got `eyes` then `+1`; GitHub saw exactly the permission
/// look-up and the two reactions.
async fn applied(gh: &LoopbackGitHub, apis: &Apis, run: &str, id: i64, body: &str, action: &str, n: usize) {
    gh.clear_requests();
    comment(gh, apis, id, "reviewer", "User", body).await;
    let cmd = command_phase(apis, id, "Applied").await;
    let st = cmd.status.clone().unwrap();
    assert_eq!((st.command.as_deref(), st.run_name.as_deref()), (Some(action), Some(run)), "{st:?}");
    assert_eq!(st.reactions, ["eyes", "+1"]);
    assert!(st.request_key.is_some());
    assert_eq!(cmd.owner_references().iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), [run]);
    let h = history_entry(apis, run, n).await;
    assert_eq!(
        (h.action.as_str(), h.source.as_str(), h.actor.as_str(), h.request_id.as_deref()),
        (action, "comment", "reviewer", Some(format!("comment-{id}").as_str()))
    );
    assert_eq!(format!("{:?}", h.result), "Applied", "{}", h.message);
    assert_eq!(reactions(gh, id), [("eyes".into(), BOT.into()), ("+1".into(), BOT.into())]);
    assert_eq!(command_requests(gh), [permission("reviewer"), reaction(id), reaction(id)]);
    wait_event(apis, "HealingCommand", &format!("ghc-{id}"), "CommandApplied").await;
}

/// deny, retry, abort and resolve by comment, one after another on one run (Fixed → Denied →
/// Running → Aborted → Resolved), each recorded in the run's history as a comment by its author.
#[tokio::test]
async fn deny_retry_abort_and_resolve_by_comment_reach_their_phases() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh);
    let (client, apis, _ctrl, _cfg) = setup(&gh, "cmd-actions").await;
    let name = "commanded";
    fixed_run(&apis, &client, name).await;

    applied(&gh, &apis, name, 1001, "Not like this.\n/healer deny the fix hides a real bug", "deny", 1).await;
    let run = apis.run_phase(name, "Denied").await;
    let h = run.status.as_ref().unwrap().history.last().unwrap().clone();
    assert!(h.message.contains("the fix hides a real bug"), "{}", h.message);
    wait_event(&apis, "HealingRun", name, "DeniedByReviewer").await;

    applied(&gh, &apis, name, 1002, "/healer retry use the lockfile's version", "retry", 2).await;
    let run = apis.run_phase(name, "Running").await;
    let retry = run.status.as_ref().unwrap().retry.clone().expect("status.retry");
    assert_eq!(retry.hint.as_deref(), Some("use the lockfile's version"));
    wait_event(&apis, "HealingRun", name, "RetryRequested").await;
    apis.job(&format!("{name}-2")).await;

    applied(&gh, &apis, name, 1003, "/healer abort", "abort", 3).await;
    apis.run_phase(name, "Aborted").await;
    wait_event(&apis, "HealingRun", name, "AbortRequested").await;

    applied(&gh, &apis, name, 1004, "/healer resolve", "resolve", 4).await;
    apis.run_phase(name, "Resolved").await;
    wait_event(&apis, "HealingRun", name, "ResolvedByPerson").await;

    // None of them needed a reply.
    for id in 1001..=1004 {
        assert!(replies(&gh, &apis.ns, id).is_empty());
    }
    assert_clean(&gh);
}

/// approve by comment, after refusing a self-approval (with a reply quoting the run) and a
/// non-collaborator (with a reply; the run unchanged), ignoring a bot (no GitHub write) and
/// answering `/healer help`; a restarted controller posts no second reply or reaction.
#[tokio::test]
async fn approve_by_comment_refuses_self_approval_and_strangers_and_ignores_bots() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh);
    let (client, apis, mut ctrl, cfg) = setup(&gh, "cmd-approve").await;
    let name = "approvable";
    fixed_run(&apis, &client, name).await;

    // The person whose push failed may not approve alone: the run refuses, the comment says why.
    gh.clear_requests();
    comment(&gh, &apis, 2001, "Codertocat", "User", "/healer approve").await;
    let cmd = command_phase(&apis, 2001, "Refused").await;
    assert_eq!(cmd.status.as_ref().unwrap().reactions, ["eyes", "-1"]);
    let h = history_entry(&apis, name, 1).await;
    assert_eq!(
        (h.source.as_str(), h.actor.as_str(), format!("{:?}", h.result)),
        ("comment", "Codertocat", "Refused".into())
    );
    let r = replies(&gh, &apis.ns, 2001);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].contains("@Codertocat") && r[0].contains("cannot approve its fix alone"), "{}", r[0]);
    assert_eq!(reactions(&gh, 2001), [("eyes".into(), BOT.into()), ("-1".into(), BOT.into())]);
    assert_eq!(command_requests(&gh), [permission("Codertocat"), reaction(2001), reply(), reaction(2001)]);
    wait_event(&apis, "HealingCommand", "ghc-2001", "CommandRefused").await;
    wait_event(&apis, "HealingRun", name, "SelfApprovalRefused").await;

    // Read access is not enough: a reply, and nothing changes.
    gh.clear_requests();
    comment(&gh, &apis, 2002, "visitor", "User", "/healer approve").await;
    let cmd = command_phase(&apis, 2002, "Refused").await;
    let st = cmd.status.clone().unwrap();
    assert!(st.run_name.is_none() && st.reactions.is_empty(), "{st:?}");
    let r = replies(&gh, &apis.ns, 2002);
    assert_eq!(r.len(), 1);
    assert!(r[0].contains("@visitor, only people with write access") && r[0].contains("`read`"), "{}", r[0]);
    assert_eq!(command_requests(&gh), [permission("visitor"), reply()]);
    // And no permission at all (GitHub answers 404 for a non-collaborator).
    gh.clear_requests();
    comment(&gh, &apis, 2003, "stranger", "User", "/healer abort").await;
    command_phase(&apis, 2003, "Refused").await;
    assert!(replies(&gh, &apis.ns, 2003)[0].contains("`none`"));
    assert_eq!(command_requests(&gh), [permission("stranger"), reply()]);
    let run = apis.runs.get(name).await.unwrap();
    assert_eq!(run.status.as_ref().unwrap().history.len(), 1, "the refused commands changed nothing");
    assert_eq!(run.status.as_ref().unwrap().phase.map(|p| p.as_str()), Some("Fixed"));

    // A bot is ignored: no GitHub call about it at all.
    gh.clear_requests();
    comment(&gh, &apis, 2004, "dependabot[bot]", "Bot", "/healer approve").await;
    let cmd = command_phase(&apis, 2004, "Ignored").await;
    assert!(cmd.status.unwrap().message.unwrap().contains("bot"));
    assert_eq!(command_requests(&gh), []);
    assert!(gh.requests().iter().all(|r| r.method == "GET" || r.operation == "repos/create-commit-status"));

    // help answers anyone who asks; GitHub failing the first post (502) costs a retry, not a
    // second reply.
    gh.clear_requests();
    gh.fault(Fault::status("issues/create-comment", 502, 1));
    comment(&gh, &apis, 2005, "visitor", "User", "/healer help").await;
    command_phase(&apis, 2005, "Applied").await;
    let r = replies(&gh, &apis.ns, 2005);
    assert_eq!(r.len(), 1);
    assert!(r[0].contains("`/healer retry [hint…]`") && r[0].contains("`/healer approve`"), "{}", r[0]);
    assert_eq!(command_requests(&gh), [reply(), reply()]);
    let posts: Vec<u16> =
        gh.requests().iter().filter(|r| r.operation == "issues/create-comment").map(|r| r.status).collect();
    assert_eq!(posts, [502, 201]);
    // An unknown command gets the list too.
    comment(&gh, &apis, 2006, "reviewer", "User", "/healer merge it").await;
    command_phase(&apis, 2006, "Refused").await;
    assert!(replies(&gh, &apis.ns, 2006)[0].contains("`/healer merge` is not a command I know"));

    // Another reviewer approves: the draft pull request opens.
    applied(&gh, &apis, name, 2007, "/healer approve", "approve", 2).await;
    let run = support::wait_for("Delivered", Duration::from_secs(60), || async {
        let r = apis.runs.get(name).await.ok()?;
        r.status.as_ref()?.pull_request.is_some().then_some(r)
    })
    .await;
    wait_event(&apis, "HealingRun", name, "ApprovedByReviewer").await;
    assert_eq!(gh.state().repo(REPO).unwrap().pulls.len(), 2, "#12 and the fix's draft");
    assert!(run.status.unwrap().conditions.iter().any(|c| c.type_ == "Approved" && c.status == "True"));

    // A restart: no command posts or reacts again.
    let before: Vec<_> = (2001..=2007).map(|id| (replies(&gh, &apis.ns, id).len(), reactions(&gh, id).len())).collect();
    ctrl.kill();
    gh.clear_requests();
    let _ctrl = ControllerProcess::start(&apis.ns, Some(&cfg));
    tokio::time::sleep(Duration::from_secs(8)).await;
    let writes: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.operation == "reactions/create-for-issue-comment" || r.operation == "issues/create-comment")
        .map(|r| r.path)
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    let after: Vec<_> = (2001..=2007).map(|id| (replies(&gh, &apis.ns, id).len(), reactions(&gh, id).len())).collect();
    assert_eq!(before, after);
    assert_eq!(before, [(1, 2), (1, 0), (1, 0), (0, 0), (1, 0), (1, 0), (0, 2)]);
    assert_clean(&gh);
}

/// `/healer fix` starts one run for the pull request's newest failed check, named as intake names
/// that job's `workflow_job` delivery; a second `/healer fix` is told the run exists.
#[tokio::test]
async fn healer_fix_starts_one_run_for_the_newest_failure() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh);
    {
        let mut st = gh.state();
        let r = st.repo_mut(REPO).unwrap();
        let check = |id: i64, name: &str, conclusion: &str, app: &str| CheckRun {
            id,
            name: name.into(),
            head_sha: HEAD.into(),
            status: "completed".into(),
            conclusion: Some(conclusion.into()),
            external_id: None,
            title: None,
            summary: None,
            text: None,
            details_url: None,
            app_slug: app.into(),
            check_suite_id: 5,
            annotations: vec![],
            updates: 0,
        };
        r.check_runs.push(check(100, "lint (other CI)", "failure", "other-ci"));
        r.check_runs.push(check(JOB, "linters", "failure", "github-actions"));
        r.check_runs.push(check(JOB + 1, "tests", "success", "github-actions"));
    }
    let (_client, apis, _ctrl, _cfg) = setup(&gh, "cmd-fix").await;
    let want = format!("gh-{RUN}-1-{JOB}");
    // The reaction fails once (502) after the run was created: the retry finds the run this
    // command made (not "exists already") and reacts once.
    gh.fault(Fault::status("reactions/create-for-issue-comment", 502, 1));

    comment(&gh, &apis, 3001, "reviewer", "User", "/healer fix").await;
    let cmd = command_phase(&apis, 3001, "Applied").await;
    let st = cmd.status.clone().unwrap();
    assert_eq!((st.command.as_deref(), st.run_name.as_deref()), (Some("fix"), Some(want.as_str())));
    assert_eq!(st.reactions, ["+1"]);
    let run = apis.runs.get(&want).await.unwrap();
    let src = &run.spec.source;
    assert_eq!(
        (src.branch.as_str(), src.head_sha.as_str(), src.sender.as_deref(), src.job_id, src.run_id, src.run_attempt),
        ("feature", HEAD, Some("reviewer"), Some(JOB), Some(RUN), Some(1))
    );
    assert_eq!(src.failed_steps, ["Run yarn run format-check"]);
    assert_eq!(cmd.owner_references()[0].name, want);
    assert_eq!(reactions(&gh, 3001), [("+1".into(), BOT.into())]);
    let pull = ("GET".to_string(), "pulls/get".to_string(), format!("/repos/{REPO}/pulls/{PR}"));
    let checks =
        ("GET".to_string(), "checks/list-for-ref".to_string(), format!("/repos/{REPO}/commits/{HEAD}/check-runs"));
    let reqs: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| {
            matches!(
                r.operation.as_str(),
                "repos/get-collaborator-permission-level"
                    | "pulls/get"
                    | "checks/list-for-ref"
                    | "reactions/create-for-issue-comment"
            )
        })
        .map(|r| ((r.method, r.operation, r.path), r.status))
        .collect();
    assert_eq!(
        reqs,
        [
            (permission("reviewer"), 200),
            (pull.clone(), 200),
            (checks.clone(), 200),
            (reaction(3001), 502),
            (pull, 200),
            (checks, 200),
            (reaction(3001), 201),
        ]
    );
    assert_eq!(apis.runs.list(&Default::default()).await.unwrap().items.len(), 1);
    wait_event(&apis, "HealingCommand", "ghc-3001", "RunStartedByComment").await;

    comment(&gh, &apis, 3002, "reviewer", "User", "/healer fix").await;
    command_phase(&apis, 3002, "Refused").await;
    let r = replies(&gh, &apis.ns, 3002);
    assert_eq!(r.len(), 1);
    assert!(r[0].contains(&format!("already has a run for the newest failure of #{PR} (`{want}`")), "{}", r[0]);
    let runs = apis.runs.list(&Default::default()).await.unwrap().items;
    assert_eq!(runs.iter().map(|r| r.name_any()).collect::<Vec<_>>(), [want]);
    assert_clean(&gh);
}

/// A finished command about no run is deleted `actions.commandTtlSeconds` after it was made; one
/// about a run is owned by the run and stays with it. A command about a repository outside the
/// namespace's allowance is ignored without a GitHub call.
#[tokio::test]
async fn a_finished_command_about_no_run_is_deleted_after_its_ttl() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh);
    let (client, apis, _ctrl, _cfg) = setup_with(&gh, "cmd-ttl", "actions: {commandTtlSeconds: 4}\n").await;
    let name = "kept";
    fixed_run(&apis, &client, name).await;
    comment(&gh, &apis, 4001, "renovate[bot]", "Bot", "/healer deny").await;
    comment(&gh, &apis, 4002, "reviewer", "User", "/healer deny not this way").await;
    command_phase(&apis, 4001, "Ignored").await;
    command_phase(&apis, 4002, "Applied").await;
    // A repository the namespace may not heal: ignored without a GitHub call.
    let elsewhere = HealingCommand::new(
        "ghc-4003",
        HealingCommandSpec {
            repository: "octo-org/other".into(),
            issue_number: 3,
            pull_request: true,
            comment_id: 4003,
            author: "reviewer".into(),
            author_type: Some("User".into()),
            body: "/healer fix".into(),
            ..Default::default()
        },
    );
    commands(&apis).create(&PostParams::default(), &elsewhere).await.unwrap();
    let cmd = command_phase(&apis, 4003, "Ignored").await;
    assert!(cmd.status.unwrap().message.unwrap().contains("does not allow"));
    assert!(gh.requests().iter().all(|r| !r.path.contains("octo-org")), "{:?}", gh.operations());
    support::wait_gone(&commands(&apis), "ghc-4001").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kept = commands(&apis).get("ghc-4002").await.unwrap();
    assert_eq!(kept.owner_references()[0].name, name);
    assert_clean(&gh);
}

/// The controller fails right after relaying (GitHub answers the `eyes` reaction 502), as a crash
/// between the relay and the status write would leave it: the retry finds the request in the run
/// (pending or in its history) and never relays it a second time; the comment gets one `+1`.
#[tokio::test]
async fn a_failure_after_the_relay_never_relays_twice() {
    let gh = LoopbackGitHub::start(Options::default()).await;
    seed(&gh);
    let (client, apis, _ctrl, _cfg) = setup(&gh, "cmd-once").await;
    let name = "once";
    fixed_run(&apis, &client, name).await;
    gh.fault(Fault::status("reactions/create-for-issue-comment", 502, 1));
    comment(&gh, &apis, 6001, "reviewer", "User", "/healer deny not this way").await;
    let cmd = command_phase(&apis, 6001, "Applied").await;
    apis.run_phase(name, "Denied").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let run = apis.runs.get(name).await.unwrap();
    let history = run.status.unwrap().history;
    assert_eq!(history.len(), 1, "relayed once: {history:?}");
    assert_eq!(history[0].request_id.as_deref(), Some("comment-6001"));
    let got = reactions(&gh, 6001);
    assert_eq!(got.iter().filter(|(c, _)| c == "+1").count(), 1, "{got:?}");
    assert!(got.iter().filter(|(c, _)| c == "eyes").count() <= 1, "{got:?}");
    assert_eq!(cmd.status.unwrap().reactions.last().map(String::as_str), Some("+1"));
    let posts: Vec<u16> = gh
        .requests()
        .iter()
        .filter(|r| r.operation == "reactions/create-for-issue-comment")
        .map(|r| r.status)
        .collect();
    assert_eq!(posts[0], 502);
    assert_clean(&gh);
}
