//! People's actions by kubectl, on the local control plane: the chart's admission policies pin
//! `requestedBy` to the caller (two impersonated users), and each action reaches its phase with a
//! `status.history` entry and an Event, with the controller as a real subprocess.

mod support;

use std::time::Duration;

use ci_healer::contract::Outcome;
use ci_healer::crd::{ActionResult, HealingRun, RunAction};
use kube::ResourceExt;
use kube::api::PostParams;
use serde_json::json;
use support::{Apis, ControllerProcess, finish_attempt, verdict};

/// Apply the chart's admission policies, bound to `ns` only (so parallel tests are not affected),
/// with (`mutate`) or without the MutatingAdmissionPolicy; wait until they act.
async fn install_policies(apis: &Apis, mutate: bool) {
    let mut args = vec!["--show-only", "templates/admission-policy.yaml"];
    if mutate {
        args.extend(["--api-versions", "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"]);
    }
    let text = support::render_chart("ci-healer", &args);
    let ns = &apis.ns;
    let mut docs = Vec::new();
    for d in serde_yaml_ng::Deserializer::from_str(&text) {
        let mut v: serde_json::Value = serde::Deserialize::deserialize(d).unwrap();
        if v.is_null() {
            continue;
        }
        let name = format!("{}-{ns}", v["metadata"]["name"].as_str().unwrap());
        v["metadata"]["name"] = name.clone().into();
        if v["kind"].as_str().unwrap().ends_with("Binding") {
            v["spec"]["policyName"] = name.into();
            v["spec"]["matchResources"] =
                json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}});
        }
        docs.push(v);
    }
    assert_eq!(docs.len(), if mutate { 4 } else { 2 }, "{text}");
    let file = std::env::temp_dir().join(format!("ci-healer-policies-{ns}.json"));
    std::fs::write(&file, serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": docs})).unwrap())
        .unwrap();
    let (ok, out) = support::kubectl(&["apply", "--server-side", "-f", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    let _ = std::fs::remove_file(&file);
    // Users who may edit runs in the namespace (and nothing else).
    let (ok, out) = support::kubectl(&[
        "create",
        "role",
        "hrun-editor",
        "-n",
        ns,
        "--verb=get,list,watch,patch,update",
        "--resource=healingruns.cihealer.dev",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = support::kubectl(&[
        "create",
        "rolebinding",
        "hrun-editors",
        "-n",
        ns,
        "--role=hrun-editor",
        "--user=alice",
        "--user=bob",
        "--user=Codertocat",
    ]);
    assert!(ok, "{out}");
}

fn sample_run(ns: &str, name: &str) -> HealingRun {
    let text =
        std::fs::read_to_string(support::root().join("config/samples/healingrun-from-workflow-job.yaml")).unwrap();
    let mut run: HealingRun = serde_yaml_ng::from_str(&text).unwrap();
    run.metadata.namespace = Some(ns.into());
    run.metadata.name = Some(name.into());
    run
}

/// `kubectl patch hrun NAME --type merge -p PATCH --as USER`.
fn patch_as(apis: &Apis, user: &str, name: &str, patch: serde_json::Value) -> (bool, String) {
    support::kubectl(&[
        "patch",
        "hrun",
        name,
        "-n",
        &apis.ns,
        "--as",
        user,
        "--type",
        "merge",
        "-p",
        &patch.to_string(),
    ])
}

/// Retry `f` until the policies (which the API server loads asynchronously) answer as expected.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn admission_policies_pin_requested_by_to_the_caller() {
    let client = support::client().await;
    support::install_crds(&client).await;

    // Validation only (Kubernetes 1.30+): a claim must be the caller's own name.
    let ns = support::namespace(&client, "vap").await;
    let apis = Apis::new(&client, &ns);
    install_policies(&apis, false).await;
    apis.runs.create(&PostParams::default(), &sample_run(&ns, "r")).await.unwrap();
    let forged = json!({"spec": {"action": "abort", "actionRequest": {"requestedBy": "alice"}}});
    eventually("the ValidatingAdmissionPolicy to reject a forged requestedBy", || {
        // A forged patch that landed before the policy loaded would make every later identical
        // patch a no-op that the policy does not judge: clear the action first (not judged).
        let _ = patch_as(&apis, "bob", "r", json!({"spec": {"action": null, "actionRequest": null}}));
        let (ok, out) = patch_as(&apis, "bob", "r", forged.clone());
        !ok && out.contains("spec.actionRequest.requestedBy must be your own username, bob")
    })
    .await;
    let (ok, out) = patch_as(&apis, "bob", "r", json!({"spec": {"action": "abort"}}));
    assert!(!ok && out.contains("must be your own username, bob"), "a request naming nobody is refused: {out}");
    let (ok, out) = patch_as(
        &apis,
        "bob",
        "r",
        json!({"spec": {"action": "abort", "actionRequest": {"requestedBy": "bob", "source": "comment"}}}),
    );
    assert!(!ok && out.contains("only ci-healer's controller relays"), "{out}");
    let (ok, out) =
        patch_as(&apis, "bob", "r", json!({"spec": {"action": "abort", "actionRequest": {"requestedBy": "bob"}}}));
    assert!(ok, "bob may name himself: {out}");
    let r = apis.runs.get("r").await.unwrap();
    assert_eq!(r.spec.action_request.unwrap().requested_by.as_deref(), Some("bob"));
    // Edits that do not touch the action are not judged.
    let (ok, out) = patch_as(&apis, "alice", "r", json!({"metadata": {"labels": {"team": "web"}}}));
    assert!(ok, "{out}");

    // With the MutatingAdmissionPolicy (Kubernetes 1.36+) the one-line command names the caller.
    let ns = support::namespace(&client, "map").await;
    let apis = Apis::new(&client, &ns);
    install_policies(&apis, true).await;
    apis.runs.create(&PostParams::default(), &sample_run(&ns, "r")).await.unwrap();
    eventually("the MutatingAdmissionPolicy to set requestedBy", || {
        let _ = patch_as(&apis, "alice", "r", json!({"spec": {"action": null, "actionRequest": null}}));
        let (ok, _) = patch_as(&apis, "alice", "r", json!({"spec": {"action": "abort"}}));
        // Before the API server has loaded the policies the same patch is admitted unchanged: wait
        // until the stored request names the caller, not only until the patch is accepted.
        let (read, who) =
            support::kubectl(&["get", "hrun", "r", "-n", &apis.ns, "-o", "jsonpath={.spec.actionRequest.requestedBy}"]);
        ok && read && who.trim() == "alice"
    })
    .await;
    let r = apis.runs.get("r").await.unwrap();
    let req = r.spec.action_request.unwrap();
    assert_eq!((req.requested_by.as_deref(), req.source.as_str()), (Some("alice"), "kubectl"));
    // bob claims to be alice: the policy writes bob.
    let (ok, out) = patch_as(
        &apis,
        "bob",
        "r",
        json!({"spec": {"action": "resolve", "actionRequest": {"requestedBy": "alice", "id": "2"}}}),
    );
    assert!(ok, "{out}");
    let r = apis.runs.get("r").await.unwrap();
    assert_eq!(r.spec.action_request.unwrap().requested_by.as_deref(), Some("bob"));
}

fn history_of(r: &HealingRun) -> Vec<(RunAction, String, ActionResult)> {
    r.status.as_ref().unwrap().history.iter().map(|h| (h.action, h.actor.clone(), h.result)).collect()
}

fn condition(r: &HealingRun, t: &str) -> Option<(String, String, String)> {
    let c = r.status.as_ref()?.conditions.iter().find(|c| c.type_ == t)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Wait until the run's history has `n` entries (and the controller cleared the handled request).
async fn wait_history(apis: &Apis, name: &str, n: usize) -> HealingRun {
    let runs = apis.runs.clone();
    support::wait_for(&format!("{n} history entries on {name}"), Duration::from_secs(45), || {
        let runs = runs.clone();
        let name = name.to_string();
        async move {
            let r = runs.get(&name).await.ok()?;
            (r.status.as_ref()?.history.len() == n && r.spec.action.is_none()).then_some(r)
        }
    })
    .await
}

#[tokio::test]
async fn each_action_by_kubectl_reaches_its_phase_with_history_and_an_event() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "actions").await;
    let apis = Apis::new(&client, &ns);
    install_policies(&apis, true).await;
    let _ctrl = ControllerProcess::start(&ns, None);
    let action = |a: &str| json!({"spec": {"action": a}});

    // A fixed run: the failing run's sender cannot approve it; another person can; then deny.
    let name = "fix";
    apis.runs.create(&PostParams::default(), &sample_run(&ns, name)).await.unwrap();
    let job = apis.job(&format!("{name}-1")).await;
    finish_attempt(&apis, &job, &verdict(Outcome::Passed, "ValidationPassed", "cargo fmt --check passes")).await;
    apis.run_phase(name, "Fixed").await;
    eventually("the MutatingAdmissionPolicy", || patch_as(&apis, "Codertocat", name, action("approve")).0).await;
    let r = wait_history(&apis, name, 1).await;
    assert_eq!(history_of(&r), [(RunAction::Approve, "Codertocat".into(), ActionResult::Refused)]);
    let (status, reason, message) = condition(&r, "ActionApplied").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "SelfApprovalRefused"));
    assert!(message.contains("cannot approve its fix alone"), "{message}");
    assert!(condition(&r, "Approved").is_none());
    // The same one-line command by someone else is a new request.
    let (ok, out) = patch_as(&apis, "alice", name, action("approve"));
    assert!(ok, "{out}");
    let r = wait_history(&apis, name, 2).await;
    assert_eq!(r.status.as_ref().unwrap().phase.unwrap().as_str(), "Fixed");
    assert_eq!(condition(&r, "Approved").unwrap().1, "ApprovedByReviewer");
    assert!(condition(&r, "Approved").unwrap().2.contains("alice (kubectl)"));
    let (ok, out) = patch_as(
        &apis,
        "bob",
        name,
        json!({"spec": {"action": "deny", "actionRequest": {"reason": "the change hides a real bug"}}}),
    );
    assert!(ok, "{out}");
    let r = apis.run_phase(name, "Denied").await;
    let r = if r.status.as_ref().unwrap().history.len() == 3 { r } else { wait_history(&apis, name, 3).await };
    let last = r.status.as_ref().unwrap().history.last().unwrap().clone();
    assert_eq!((last.action, last.actor.as_str(), last.result), (RunAction::Deny, "bob", ActionResult::Applied));
    assert!(last.message.contains("the change hides a real bug"), "{}", last.message);
    assert_eq!(condition(&r, "Denied").unwrap().1, "DeniedByReviewer");

    // Retry the denied run with a hint: attempt 2 starts and its context carries the hint.
    let (ok, out) = patch_as(
        &apis,
        "bob",
        name,
        json!({"spec": {"action": "retry", "actionRequest": {"hint": "keep the public API unchanged"}}}),
    );
    assert!(ok, "{out}");
    let job2 = apis.job(&format!("{name}-2")).await;
    let r = apis.run_phase(name, "Running").await;
    assert_eq!(r.status.as_ref().unwrap().retries, 1);
    let cm: k8s_openapi::api::core::v1::ConfigMap =
        kube::Api::namespaced(client.clone(), &ns).get(&format!("{name}-context")).await.unwrap();
    assert_eq!(cm.data.unwrap()["hint.txt"], "keep the public API unchanged");
    // Resolve while attempt 2 runs: Resolved, and its Job is stopped.
    support::start_attempt_pod(&apis, &job2).await;
    let (ok, out) = patch_as(&apis, "alice", name, action("resolve"));
    assert!(ok, "{out}");
    let r = apis.run_phase(name, "Resolved").await;
    assert_eq!(condition(&r, "Resolved").unwrap().1, "ResolvedByPerson");
    support::wait_gone(&apis.jobs, &job2.name_any()).await;
    // An action that does not fit: resolving again is refused with a message, nothing changes.
    let (ok, out) = patch_as(&apis, "alice", name, action("resolve"));
    assert!(ok, "{out}");
    let r = wait_history(&apis, name, 6).await;
    let (status, reason, message) = condition(&r, "ActionApplied").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "ActionNotApplicable"));
    assert!(message.contains("Resolved"), "{message}");
    assert_eq!(r.status.as_ref().unwrap().phase.unwrap().as_str(), "Resolved");
    let actors: Vec<_> =
        history_of(&r).into_iter().map(|(a, who, res)| format!("{}:{who}:{res:?}", a.as_str())).collect();
    assert_eq!(
        actors,
        [
            "approve:Codertocat:Refused",
            "approve:alice:Applied",
            "deny:bob:Applied",
            "retry:bob:Applied",
            "resolve:alice:Applied",
            "resolve:alice:Refused"
        ]
    );
    // One Event per handled request.
    for (reason, n) in [
        ("SelfApprovalRefused", 1),
        ("ApprovedByReviewer", 1),
        ("DeniedByReviewer", 1),
        ("RetryRequested", 1),
        ("ResolvedByPerson", 1),
        ("ActionNotApplicable", 1),
    ] {
        assert_eq!(apis.event_count("HealingRun", name, reason).await, n, "Events {reason}");
    }
    // kubectl describe shows who asked and the outcome.
    let (ok, out) = support::kubectl(&["describe", "hrun", name, "-n", &ns]);
    assert!(ok && out.contains("History") && out.contains("Actor") && out.contains("alice"), "{out}");

    // Abort by kubectl during an attempt.
    let name = "stop";
    apis.runs.create(&PostParams::default(), &sample_run(&ns, name)).await.unwrap();
    let job = apis.job(&format!("{name}-1")).await;
    apis.run_phase(name, "Running").await;
    let (ok, out) = patch_as(&apis, "bob", name, action("abort"));
    assert!(ok, "{out}");
    let r = apis.run_phase(name, "Aborted").await;
    assert!(condition(&r, "Aborted").unwrap().2.contains("bob (kubectl)"));
    support::wait_gone(&apis.jobs, &job.name_any()).await;
    let r = wait_history(&apis, name, 1).await;
    assert_eq!(history_of(&r), [(RunAction::Abort, "bob".into(), ActionResult::Applied)]);
    assert_eq!(apis.event_count("HealingRun", name, "AbortRequested").await, 1);
}
