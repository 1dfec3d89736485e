//! Invalid HealingRuns are rejected by the real API server, with messages a person understands.

mod support;

use kube::api::PostParams;
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

    let cases = [
        ("bad-sha", run("bad-sha", bad_sha, json!({})), "headSha must be 7 to 40 lowercase hex digits"),
        ("short-sha", run("short-sha", short_sha, json!({})), "headSha must be 7 to 40 lowercase hex digits"),
        ("empty-repo", run("empty-repo", empty_repo, json!({})), "repository must be 'owner/name'"),
        ("malformed-repo", run("malformed-repo", malformed_repo, json!({})), "repository must be 'owner/name'"),
        ("empty-branch", run("empty-branch", empty_branch, json!({})), "branch must not be empty"),
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
}
