//! End to end on the local control plane: the controller (subprocess) creates attempt Jobs, the
//! host runner (subprocess) runs their pods as local processes, serves their logs as a kubelet would,
//! and the controller keeps the validated patch it reads through `pods/log`.
//!
//! Needs `hack/control-plane.sh start`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ci_healer::crd::{FailureExcerpt, FailureSource, HealingAttempt, HealingPolicy, HealingRun, HealingRunSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use support::attempt::*;

fn write_config(dir: &Path, rust_settings: serde_json::Value, llm_secret: bool) -> std::path::PathBuf {
    let mut rust = serde_json::json!({"image": "docker.io/library/rust:1.95", "settings": rust_settings});
    if llm_secret {
        rust["llmApiKeySecret"] = serde_json::json!({"name": "llm", "key": "api-key"});
    }
    let cfg = serde_json::json!({
        "healerImage": "healer:test",
        "profiles": {"general": {"image": "docker.io/library/buildpack-deps:bookworm"}, "rust": rust}
    });
    let p = dir.join("config.yaml");
    std::fs::write(&p, serde_yaml_ng::to_string(&cfg).unwrap()).unwrap();
    p
}

fn healing_run(name: &str, repo: &Repo, excerpt: &str, max_attempts: i32) -> HealingRun {
    HealingRun::new(
        name,
        HealingRunSpec {
            source: FailureSource {
                repository: REPO.into(),
                branch: "main".into(),
                head_sha: repo.sha.clone(),
                ..Default::default()
            },
            failure: Some(FailureExcerpt { excerpt: excerpt.into(), error_type: None }),
            policy: HealingPolicy { max_attempts, agent: "rust".into(), ..Default::default() },
            action: None,
            action_request: None,
        },
    )
}

/// A fresh clone of the failing commit with `patch` applied (`git apply` must accept it).
fn patched_checkout(repo: &Repo, patch: &str) -> tempfile::TempDir {
    let check = tempfile::tempdir().unwrap();
    git(check.path(), &["init", "-q"]);
    git(check.path(), &["fetch", "-q", &format!("{}/{REPO}.git", repo.base_url), &repo.sha]);
    git(check.path(), &["checkout", "-q", &repo.sha]);
    std::fs::write(check.path().join("fix.diff"), patch).unwrap();
    git(check.path(), &["apply", "fix.diff"]);
    check
}

async fn wait_terminal(
    apis: &support::Apis,
    name: &str,
    ctl: &support::ControllerProcess,
    runner: &support::HostRunner,
) -> HealingRun {
    let runs = apis_runs(apis);
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let r = runs.get(name).await.unwrap();
        if r.status.as_ref().and_then(|s| s.phase).is_some_and(|p| p.is_terminal()) {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run {name} did not finish: {:?}\n--- controller\n{}\n--- host runner\n{}",
            r.status,
            ctl.logs(),
            runner.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The scripted Anthropic provider with `replies`, its key in Secret `llm`, and the host runner and
/// controller of `ns` configured for the rust profile to use it (no fixers, `cargo test`, one turn).
async fn with_scripted_llm(
    client: &kube::Client,
    ns: &str,
    repo: &Repo,
    replies: Vec<Reply>,
) -> (ScriptedLlm, support::HostRunner, support::ControllerProcess, tempfile::TempDir) {
    let llm = ScriptedLlm::start(replies).await;
    let secret: Secret = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "llm"}, "stringData": {"api-key": "e2e-key-0123456789"}}),
    )
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &secret).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        serde_json::json!({
            "gitBaseUrl": repo.base_url, "fixers": [], "validationCommands": ["cargo test --quiet"],
            "llm": {"provider": "anthropic", "baseUrl": llm.url, "model": "claude-test", "maxTurns": 1, "maxRetries": 1, "initialBackoffMillis": 50}
        }),
        true,
    );
    let runner = support::HostRunner::start(ns);
    let ctl = support::ControllerProcess::start(ns, Some(&cfg));
    (llm, runner, ctl, tmp)
}

fn apis_runs(apis: &support::Apis) -> Api<HealingRun> {
    Api::namespaced(apis.client.clone(), &apis.ns)
}

#[tokio::test]
async fn a_real_clippy_failure_reaches_fixed_with_a_patch_configmap() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "att-e2e-clippy").await;
    let apis = support::Apis::new(&client, &ns);
    let repo = repo(&as_refs(&crate_files("pub fn next(x: i32) -> i32 {\n    return x + 1;\n}\n")));
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        serde_json::json!({"gitBaseUrl": repo.base_url, "fixers": ["cargo-clippy"], "validationCommands": ["cargo clippy --all-targets -- -D warnings"]}),
        false,
    );
    let runner = support::HostRunner::start(&ns);
    let ctl = support::ControllerProcess::start(&ns, Some(&cfg));
    let excerpt = "error: unneeded `return` statement\n --> src/lib.rs:2:5\n  = note: `-D clippy::needless-return` implied by `-D warnings`\n";
    apis_runs(&apis).create(&PostParams::default(), &healing_run("clippy", &repo, excerpt, 2)).await.unwrap();

    let run = wait_terminal(&apis, "clippy", &ctl, &runner).await;
    let st = run.status.clone().unwrap();
    assert_eq!(format!("{:?}", st.phase.unwrap()), "Fixed", "{st:?}\n{}\n{}", ctl.logs(), runner.logs());
    let patch_ref = st.patch.expect("patch ref");
    let cm_name = patch_ref.config_map.expect("patch ConfigMap");
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns).get(&cm_name).await.unwrap();
    let patch = &cm.data.unwrap()["patch.diff"];
    assert!(patch.contains("-    return x + 1;") && patch.contains("+    x + 1"), "{patch}");
    assert_eq!(cm.metadata.owner_references.unwrap()[0].kind, "HealingAttempt");

    // The patch applies to the failing commit and the tree passes clippy.
    let check = patched_checkout(&repo, patch);
    let out = Command::new("cargo")
        .args(["clippy", "--quiet", "--", "-D", "warnings"])
        .current_dir(check.path())
        .env("CARGO_TARGET_DIR", check.path().join("t"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // `kubectl logs` works through the API server and the runner's kubelet endpoint.
    let pods = Api::<Pod>::namespaced(client.clone(), &ns).list(&ListParams::default()).await.unwrap();
    let pod = pods.items.first().expect("attempt pod");
    assert_eq!(pod.spec.as_ref().unwrap().node_name.as_deref(), Some(support::node_for(&ns).as_str()));
    let (ok, out) = support::kubectl(&["-n", &ns, "logs", &pod.name_any(), "-c", "checkout"]);
    assert!(ok && out.contains("checked out"), "{out}");
}

#[tokio::test]
async fn a_real_rustfmt_failure_reaches_fixed_with_a_patch_configmap() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "att-e2e-fmt").await;
    let apis = support::Apis::new(&client, &ns);
    let repo = repo(&as_refs(&crate_files("pub fn next(x:i32)->i32{\n    x+1\n}\n")));
    let tmp = tempfile::tempdir().unwrap();
    // No fixers or validation commands configured: triage's class (rust_fmt) chooses `cargo fmt`
    // and its check.
    let cfg = write_config(tmp.path(), serde_json::json!({"gitBaseUrl": repo.base_url}), false);
    let runner = support::HostRunner::start(&ns);
    let ctl = support::ControllerProcess::start(&ns, Some(&cfg));
    let excerpt = "Diff in /home/runner/work/demo/demo/src/lib.rs at line 1:\n-pub fn next(x:i32)->i32{\n+pub fn next(x: i32) -> i32 {\n##[error]Process completed with exit code 1.\n";
    apis_runs(&apis).create(&PostParams::default(), &healing_run("fmt", &repo, excerpt, 1)).await.unwrap();

    let run = wait_terminal(&apis, "fmt", &ctl, &runner).await;
    let st = run.status.clone().unwrap();
    assert_eq!(format!("{:?}", st.phase.unwrap()), "Fixed", "{st:?}\n{}\n{}", ctl.logs(), runner.logs());
    assert_eq!(st.failure_class.map(|c| c.as_str()), Some("rust_fmt"));
    let cm_name = st.patch.expect("patch ref").config_map.expect("patch ConfigMap");
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns).get(&cm_name).await.unwrap();
    let patch = &cm.data.unwrap()["patch.diff"];
    assert!(patch.contains("-pub fn next(x:i32)->i32{") && patch.contains("+pub fn next(x: i32) -> i32 {"), "{patch}");

    // The patch applies to the failing commit and `cargo fmt --check` passes on the result.
    let check = patched_checkout(&repo, patch);
    let out = Command::new("cargo").args(["fmt", "--check"]).current_dir(check.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // Deleting the run removes everything it owns through ownerReferences (the real garbage
    // collector; the host runner finishes its pod's deletion as a kubelet does): the attempt, its
    // Job and pod, the context ConfigMap and the patch ConfigMap.
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let pod = pods.list(&ListParams::default()).await.unwrap().items.remove(0).name_any();
    apis_runs(&apis).delete("fmt", &Default::default()).await.unwrap();
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    support::wait_gone(&Api::<HealingAttempt>::namespaced(client.clone(), &ns), "fmt-1").await;
    support::wait_gone(&apis.jobs, "fmt-1").await;
    support::wait_gone(&pods, &pod).await;
    support::wait_gone(&cms, &cm_name).await;
    support::wait_gone(&cms, "fmt-context").await;
}

#[tokio::test]
async fn a_first_llm_attempt_that_deletes_a_test_leads_to_a_second_attempt() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "att-e2e-llm").await;
    let apis = support::Apis::new(&client, &ns);
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let replies = vec![anthropic_text(DELETE_TEST_ANSWER, 500, 60), anthropic_text(FIX_ANSWER, 520, 40)];
    let (llm, runner, ctl, _tmp) = with_scripted_llm(&client, &ns, &repo, replies).await;
    apis_runs(&apis).create(&PostParams::default(), &healing_run("llm", &repo, OFF_BY_ONE_EXCERPT, 3)).await.unwrap();

    let run = wait_terminal(&apis, "llm", &ctl, &runner).await;
    let st = run.status.clone().unwrap();
    assert_eq!(format!("{:?}", st.phase.unwrap()), "Fixed", "{st:?}\n{}\n{}", ctl.logs(), runner.logs());
    assert_eq!(st.attempts, 2);
    let attempts = Api::<HealingAttempt>::namespaced(client.clone(), &ns);
    let first = attempts.get("llm-1").await.unwrap().status.unwrap();
    assert_eq!(first.failure_reason.as_deref(), Some("TestWeakened"), "{first:?}");
    let second = attempts.get("llm-2").await.unwrap().status.unwrap();
    assert_eq!(second.verdict.as_ref().unwrap().tokens.as_ref().unwrap().input, 520);
    assert_eq!(second.diagnosis.as_deref(), Some("add_one adds 2 instead of 1."));
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get(second.patch_config_map.as_deref().unwrap())
        .await
        .unwrap();
    assert!(cm.data.unwrap()["patch.diff"].contains("+    x + 1"));
    assert_eq!(llm.requests().len(), 2);
    // The key reached the provider through the pod's `llm-proxy` native sidecar, which the host
    // runner ran next to the agent and validate steps and stopped afterwards; the pod's phase came
    // from its main container, so the real Job controller completed the Job.
    assert!(llm.requests().iter().all(|r| r.headers["x-api-key"] == "e2e-key-0123456789"));
    let pods = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=llm-2"))
        .await
        .unwrap()
        .items;
    for pod in pods {
        let status = pod.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Succeeded"), "{status:?}");
        let proxy = status.init_container_statuses.unwrap().into_iter().find(|c| c.name == "llm-proxy").unwrap();
        let term = proxy.state.unwrap().terminated.unwrap();
        assert_eq!(term.exit_code, 0, "stopped with SIGTERM, it exits cleanly: {term:?}");
    }
    let jobs = Api::<k8s_openapi::api::batch::v1::Job>::namespaced(client.clone(), &ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Gone (TTL-after-finished) or Complete; the Job controller catches up with the pod's phase.
    while let Some(job) = jobs.get_opt("llm-2").await.unwrap() {
        let conds = job.status.unwrap_or_default().conditions.unwrap_or_default();
        if conds.iter().any(|c| c.type_ == "Complete" && c.status == "True") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "Job llm-2 not Complete: {conds:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Memory of past fixes on the real control plane: a fix an LLM found is remembered in a ConfigMap
/// that outlives its run; the same failure on a later commit is fixed by re-applying it on the
/// first attempt with zero tokens and no request to the provider; once a person denies the
/// remembered fix, it is never reused (the next run asks the model again, without it).
#[tokio::test]
async fn a_remembered_fix_heals_a_repeated_failure_with_zero_tokens_until_it_is_denied() {
    use ci_healer::resources::labels;
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "att-e2e-memory").await;
    let apis = support::Apis::new(&client, &ns);
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    // The branch tip: a later commit with the same bug.
    let later = git(&repo.dir.path().join("work"), &["rev-parse", "HEAD"]);
    assert_ne!(later, repo.sha);
    let replies = vec![anthropic_text(FIX_ANSWER, 520, 40), anthropic_text(FIX_ANSWER, 530, 40)];
    let (llm, runner, ctl, _tmp) = with_scripted_llm(&client, &ns, &repo, replies).await;
    let runs = apis_runs(&apis);
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let memory_selector = "app.kubernetes.io/component=memory";

    // 1. The model fixes it; the fix is remembered, owned by nobody.
    runs.create(&PostParams::default(), &healing_run("first", &repo, OFF_BY_ONE_EXCERPT, 1)).await.unwrap();
    let first = wait_terminal(&apis, "first", &ctl, &runner).await.status.unwrap();
    assert_eq!(format!("{:?}", first.phase.unwrap()), "Fixed", "{first:?}\n{}\n{}", ctl.logs(), runner.logs());
    assert_eq!(first.usage.as_ref().unwrap().input, 520);
    let remembered = async || {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let l = cms.list(&ListParams::default().labels(memory_selector)).await.unwrap().items;
            if !l.is_empty() || std::time::Instant::now() > deadline {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let entries = remembered().await;
    assert_eq!(entries.len(), 1, "{}", ctl.logs());
    let entry = &entries[0];
    assert!(entry.metadata.owner_references.as_ref().is_none_or(|o| o.is_empty()), "{entry:?}");
    assert_eq!(entry.labels()[labels::MEMORY_STATE], "validated");
    assert_eq!(entry.labels()[labels::SOURCE_RUN], "first");
    assert_eq!(entry.labels()[labels::FAILURE_CLASS], first.failure_class.unwrap().as_str());
    assert_eq!(entry.annotations()["cihealer.dev/repository"], REPO);
    assert!(entry.data.as_ref().unwrap()["patch.diff"].contains("+    x + 1"));

    // The run that made it goes; the memory stays.
    runs.delete("first", &Default::default()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while runs.get_opt("first").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "run first was not deleted");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(cms.get_opt(&entry.name_any()).await.unwrap().is_some());

    // 2. The same failure on a later commit: re-applied, validated, zero tokens, no request.
    let mut again = healing_run("again", &repo, OFF_BY_ONE_EXCERPT, 1);
    again.spec.source.head_sha = later.clone();
    runs.create(&PostParams::default(), &again).await.unwrap();
    let st = wait_terminal(&apis, "again", &ctl, &runner).await.status.unwrap();
    assert_eq!(format!("{:?}", st.phase.unwrap()), "Fixed", "{st:?}\n{}\n{}", ctl.logs(), runner.logs());
    assert_eq!(llm.requests().len(), 1, "the memory hit asked the model");
    let a = Api::<HealingAttempt>::namespaced(client.clone(), &ns).get("again-1").await.unwrap().status.unwrap();
    // Zero tokens: the verdict and the run carry token usage only when a model ran.
    assert_eq!(a.verdict.as_ref().unwrap().tokens, None, "{a:?}");
    assert_eq!(st.usage, None, "{st:?}");
    let diagnosis = a.diagnosis.as_deref().unwrap_or("");
    assert!(diagnosis.contains("re-applied the fix validated in run first"), "{a:?}");
    assert!(diagnosis.contains("no model was used") && diagnosis.contains("add_one adds 2 instead of 1"), "{a:?}");
    let cm = cms.get(a.patch_config_map.as_deref().unwrap()).await.unwrap();
    let patch = &cm.data.unwrap()["patch.diff"];
    assert!(patch.contains("+    x + 1"), "{patch}");
    // The patch from memory applies to the later commit and its tests pass there.
    let at_later = Repo { dir: tempfile::tempdir().unwrap(), base_url: repo.base_url.clone(), sha: later.clone() };
    let check = patched_checkout(&at_later, patch);
    let out = Command::new("cargo")
        .args(["test", "--quiet"])
        .current_dir(check.path())
        .env("CARGO_TARGET_DIR", check.path().join("t"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The same patch is remembered once.
    assert_eq!(cms.list(&ListParams::default().labels(memory_selector)).await.unwrap().items.len(), 1);

    // 3. A person denies the remembered fix: it is never offered again.
    let (ok, out) = support::kubectl(&[
        "-n",
        &ns,
        "label",
        "cm",
        &entry.name_any(),
        "cihealer.dev/memory-state=denied",
        "--overwrite",
    ]);
    assert!(ok, "{out}");
    let mut third = healing_run("third", &repo, OFF_BY_ONE_EXCERPT, 1);
    third.spec.source.head_sha = later;
    runs.create(&PostParams::default(), &third).await.unwrap();
    let st = wait_terminal(&apis, "third", &ctl, &runner).await.status.unwrap();
    assert_eq!(format!("{:?}", st.phase.unwrap()), "Fixed", "{st:?}\n{}\n{}", ctl.logs(), runner.logs());
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2, "the denied fix was reused");
    assert!(!reqs[1].body.to_string().contains("Past fixes in this repository"), "the denied fix was offered");
    assert_eq!(st.usage.as_ref().unwrap().input, 530);
    let context = cms.get("third-context").await.unwrap().data.unwrap();
    assert!(!context.contains_key("memory.json"), "{context:?}");
    // Validated again, the same patch stays denied.
    let e = cms.get(&entry.name_any()).await.unwrap();
    assert_eq!(e.labels()[labels::MEMORY_STATE], "denied");
}
