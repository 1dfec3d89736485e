//! Invalid HealingRuns are rejected by the real API server, with messages a person understands.

mod support;

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use ci_healer::crd::HealingRun;

fn run(name: &str, source: serde_json::Value, policy: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun",
        "metadata": {"name": name},
        "spec": {"source": source, "policy": policy}
    })
}

fn good_source() -> serde_json::Value {
    json!({"repository": "octo-org/octo-repo", "branch": "main", "headSha": "3484a3fb816e0859fd6e1cea078d76385ff50625"})
}

#[tokio::test]
async fn invalid_specs_are_rejected_with_clear_messages() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "admission").await;
    // Raw JSON so the typed client cannot hide what the API server says.
    let api = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        &ns,
        &kube::api::ApiResource::erase::<HealingRun>(&()),
    );
    let mut bad_sha = good_source();
    bad_sha["headSha"] = "not-a-sha".into();
    let mut short_sha = good_source();
    short_sha["headSha"] = "abc12".into();
    let mut empty_repo = good_source();
    empty_repo["repository"] = "".into();
    let mut malformed_repo = good_source();
    malformed_repo["repository"] = "just-a-name".into();
    let mut empty_branch = good_source();
    empty_branch["branch"] = "".into();
    let branch = |b: &str| {
        let mut s = good_source();
        s["branch"] = b.into();
        s
    };

    let cases = [
        ("bad-sha", run("bad-sha", bad_sha, json!({})), "headSha must be 7 to 40 lowercase hex digits"),
        ("short-sha", run("short-sha", short_sha, json!({})), "headSha must be 7 to 40 lowercase hex digits"),
        ("empty-repo", run("empty-repo", empty_repo, json!({})), "repository must be 'owner/name'"),
        ("malformed-repo", run("malformed-repo", malformed_repo, json!({})), "repository must be 'owner/name'"),
        ("empty-branch", run("empty-branch", empty_branch, json!({})), "branch must not be empty"),
        // git check-ref-format --branch rejects each of these.
        ("dotdot-branch", run("dotdot-branch", branch("main..x"), json!({})), "branch must not contain '..'"),
        ("space-branch", run("space-branch", branch("my branch"), json!({})), "branch must not contain whitespace"),
        ("tilde-branch", run("tilde-branch", branch("main~1"), json!({})), "any of ~ ^ : ? * ["),
        ("glob-branch", run("glob-branch", branch("feat*"), json!({})), "any of ~ ^ : ? * ["),
        ("reflog-branch", run("reflog-branch", branch("main@{1}"), json!({})), "'@{'"),
        ("at-branch", run("at-branch", branch("@"), json!({})), "nor be '@'"),
        ("double-slash-branch", run("double-slash-branch", branch("a//b"), json!({})), "'//'"),
        ("slash-branch", run("slash-branch", branch("feature/"), json!({})), "nor end with '/' or '.'"),
        ("dash-branch", run("dash-branch", branch("-x"), json!({})), "must not start with '/' or '-'"),
        ("dot-end-branch", run("dot-end-branch", branch("v1."), json!({})), "nor end with '/' or '.'"),
        ("hidden-branch", run("hidden-branch", branch("a/.b"), json!({})), "may start with '.' or end with '.lock'"),
        ("lock-branch", run("lock-branch", branch("a.lock/b"), json!({})), "may start with '.' or end with '.lock'"),
        (
            "zero-attempts",
            run("zero-attempts", good_source(), json!({"maxAttempts": 0})),
            "maxAttempts must be between 1 and 10",
        ),
        (
            "many-attempts",
            run("many-attempts", good_source(), json!({"maxAttempts": 11})),
            "maxAttempts must be between 1 and 10",
        ),
        (
            "bad-mode",
            run("bad-mode", good_source(), json!({"mode": "yolo"})),
            r#"Unsupported value: "yolo": supported values: "propose", "pull-request""#,
        ),
        (
            "bad-agent",
            run("bad-agent", good_source(), json!({"agent": "Not A Profile"})),
            "agent must be 'auto' or a profile name",
        ),
        (
            "no-source",
            json!({"apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun", "metadata": {"name": "no-source"}, "spec": {}}),
            "spec.source: Required value",
        ),
    ];
    for (name, obj, want) in cases {
        let obj: kube::api::DynamicObject = serde_json::from_value(obj).unwrap();
        match api.create(&PostParams::default(), &obj).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 422, "{name}: {s:?}");
                assert!(s.message.contains(want), "{name}: message {:?} lacks {want:?}", s.message);
            }
            other => panic!("{name}: expected a 422 rejection, got {other:?}"),
        }
    }

    // And a valid one, with the defaults filled in by the schema.
    let ok: kube::api::DynamicObject = serde_json::from_value(run("valid", good_source(), json!({}))).unwrap();
    let created = api.create(&PostParams::default(), &ok).await.expect("a valid run is accepted");
    assert_eq!(created.data["spec"]["policy"]["maxAttempts"], 3);
    assert_eq!(created.data["spec"]["policy"]["mode"], "propose");
    assert_eq!(created.data["spec"]["policy"]["agent"], "auto");
    assert_eq!(created.data["spec"]["source"]["provider"], "github");

    // Branch names git accepts are accepted.
    for (name, b) in
        [("slashed", "feature/x-1"), ("dotted", "release/v1.2"), ("bot", "dependabot/npm_and_yarn/a-1.2.3")]
    {
        let ok: kube::api::DynamicObject = serde_json::from_value(run(name, branch(b), json!({}))).unwrap();
        api.create(&PostParams::default(), &ok).await.unwrap_or_else(|e| panic!("{b}: {e}"));
    }
}

/// The spec fields the dedup key depends on cannot change under a live run, and an attempt's spec
/// is frozen at creation; what people may change (policy, action) still changes.
#[tokio::test]
async fn the_source_of_a_run_and_the_spec_of_an_attempt_are_immutable() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "immutable").await;
    let runs = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        &ns,
        &kube::api::ApiResource::erase::<HealingRun>(&()),
    );
    let obj: kube::api::DynamicObject = serde_json::from_value(run("live", good_source(), json!({}))).unwrap();
    runs.create(&PostParams::default(), &obj).await.unwrap();
    let merge = |v: serde_json::Value| Patch::Merge(v);
    for patch in [
        json!({"spec": {"source": {"headSha": "0000000000000000000000000000000000000000"}}}),
        json!({"spec": {"source": {"repository": "octo-org/other"}}}),
        json!({"spec": {"source": {"branch": "other"}}}),
    ] {
        match runs.patch("live", &PatchParams::default(), &merge(patch.clone())).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 422, "{patch}: {s:?}");
                assert!(s.message.contains("spec.source is immutable"), "{patch}: {}", s.message);
            }
            other => panic!("{patch}: expected a 422 rejection, got {other:?}"),
        }
    }
    let (ok, out) = support::kubectl(&[
        "patch",
        "hrun",
        "live",
        "-n",
        &ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"source":{"headSha":"abcdef1"}}}"#,
    ]);
    assert!(!ok && out.contains("spec.source is immutable"), "kubectl patch of headSha: {out}");
    let changed = runs
        .patch(
            "live",
            &PatchParams::default(),
            &merge(json!({"spec": {"policy": {"maxAttempts": 2}, "action": "abort"}})),
        )
        .await
        .expect("policy and action stay mutable");
    assert_eq!(changed.data["spec"]["policy"]["maxAttempts"], 2);

    let attempts = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        &ns,
        &kube::api::ApiResource::erase::<ci_healer::crd::HealingAttempt>(&()),
    );
    let attempt: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingAttempt", "metadata": {"name": "live-1"},
        "spec": {"runName": "live", "attempt": 1, "profile": "rust", "healerImage": "healer:test",
                 "checkout": {"image": "healer:test"}, "agent": {"image": "rust:1"}, "validate": {"image": "rust:1"},
                 "activeDeadlineSeconds": 600, "ttlSecondsAfterFinished": 60}
    }))
    .unwrap();
    attempts.create(&PostParams::default(), &attempt).await.unwrap();
    match attempts.patch("live-1", &PatchParams::default(), &merge(json!({"spec": {"profile": "frontend"}}))).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 422, "{s:?}");
            assert!(s.message.contains("spec is immutable"), "{}", s.message);
        }
        other => panic!("expected a 422 rejection, got {other:?}"),
    }
    attempts
        .patch_status("live-1", &PatchParams::default(), &merge(json!({"status": {"phase": "Running"}})))
        .await
        .expect("the status stays writable");
}
