//! The Argo Events manifests in config/argo-events/, run by Argo Events' own code (the evaluator in
//! hack/argo-eval, see tests/support/argo_eval.rs): Argo decodes and validates them; the real failed
//! `workflow_job` delivery becomes a HealingRun that the API server accepts from the Sensor's
//! ServiceAccount and that config/samples/ holds; failed `check_run`, `check_suite` and `status`
//! deliveries become theirs; a `/healer` comment (`issue_comment`) becomes a HealingCommand; a
//! redelivery collides; other deliveries are dropped by the filter meant to drop them; and every
//! payload gives the same answer through the Sensor and through the receiver's mapping
//! (`ci_healer::intake::map`).

mod support;

use std::path::{Path, PathBuf};

use ci_healer::crd::{HealingCommand, HealingRun, SourceEvent};
use ci_healer::intake::map::{self, COMMAND_DEPENDENCY, COMMAND_EVENT, Dropped, Intake, Kind, Mapped};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use support::argo_eval::{self, Delivery, Report};

const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
/// The Sensor's name (config/argo-events/sensor.yaml).
const SENSOR: &str = "ci-healer-ci-failures";
/// The action-timestamp label the k8s trigger adds on create: the time of creation.
const ACTION_TIMESTAMP: &str = "events.argoproj.io/action-timestamp";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(support::root().join("tests/fixtures/payloads").join(name)).unwrap()
}

fn failure() -> Value {
    serde_json::from_slice(&fixture("workflow_job-failure.json")).unwrap()
}

/// The shipped manifests on one delivery.
fn evaluate(event: &str, body: &[u8]) -> Report {
    evaluate_with(&[&argo_eval::shipped()], event, body)
}

fn evaluate_with(manifests: &[&Path], event: &str, body: &[u8]) -> Report {
    let report = argo_eval::evaluate(manifests, &Delivery { event, id: DELIVERY, body });
    assert_eq!(report.error, None, "{report:#?}");
    report
}

fn evaluate_value(body: &Value) -> Report {
    evaluate("workflow_job", &serde_json::to_vec(body).unwrap())
}

/// The one object the Sensor creates for this report, with no fallback printed by Argo's code.
fn created_run(report: &Report) -> Value {
    let created = report.created();
    assert_eq!(created.len(), 1, "exactly one HealingRun: {report:#?}");
    for e in report.executions() {
        assert!(e.argo_output.is_empty(), "a parameter fell back instead of resolving: {:?}", e.argo_output);
    }
    created[0].clone()
}

fn sample_path() -> PathBuf {
    support::root().join("config/samples/healingrun-from-workflow-job.yaml")
}

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The Argo Events version the evaluator is pinned to (hack/argo-eval/go.mod).
fn pinned_argo_version() -> String {
    let gomod = std::fs::read_to_string(support::root().join("hack/argo-eval/go.mod")).unwrap();
    gomod
        .lines()
        .find_map(|l| l.trim().strip_prefix("github.com/argoproj/argo-events "))
        .map(|v| v.split_whitespace().next().unwrap().to_string())
        .expect("go.mod requires github.com/argoproj/argo-events")
}

#[test]
fn manifests_decode_into_argo_types_and_pass_argo_validation() {
    let report = argo_eval::check(&[&argo_eval::shipped()]);
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(report.argo_events, pinned_argo_version());
    let m = report.manifests.unwrap();
    assert_eq!(m.event_sources.len(), 1);
    let es = &m.event_sources[0];
    let gh = &es["spec"]["github"]["ci-failures"];
    assert_eq!(
        gh["webhookSecret"],
        json!({"name": "ci-healer-github-webhook", "key": "secret"}),
        "deliveries are verified against a Secret"
    );
    let events: Vec<&str> = gh["events"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    for event in Kind::ALL.map(|k| k.as_str()).into_iter().chain([COMMAND_EVENT]) {
        assert!(events.contains(&event), "the EventSource subscribes to {event}: {events:?}");
    }
    assert_eq!(gh["contentType"], "json");

    assert_eq!(m.sensors.len(), 1);
    let sensor = &m.sensors[0];
    assert_eq!(sensor["metadata"]["name"], SENSOR);
    let deps = sensor["spec"]["dependencies"].as_array().unwrap();
    let names: Vec<&str> = deps.iter().map(|d| d["name"].as_str().unwrap()).collect();
    let want: Vec<&str> = Kind::ALL.map(|k| k.dependency()).into_iter().chain([COMMAND_DEPENDENCY]).collect();
    assert_eq!(names, want, "one dependency per event kind, and one for /healer comments");
    for dep in deps {
        assert_eq!((&dep["eventSourceName"], &dep["eventName"]), (&es["metadata"]["name"], &json!("ci-failures")));
    }
    // One trigger per dependency, each firing on its own: without `conditions` a trigger waits for
    // ALL the Sensor's dependencies, and no delivery is of two kinds.
    let triggers = sensor["spec"]["triggers"].as_array().unwrap();
    let conditions: Vec<&str> = triggers.iter().map(|t| t["template"]["conditions"].as_str().unwrap_or("")).collect();
    assert_eq!(conditions, names, "each trigger names exactly its own dependency");
    for t in triggers {
        let k8s = &t["template"]["k8s"];
        assert_eq!(k8s["operation"], "create", "a redelivery must collide, not overwrite");
    }
    // The Sensor runs as the ServiceAccount that rbac.yaml lets create HealingRuns and HealingCommands.
    let rbac = yaml_docs(&argo_eval::shipped().join("rbac.yaml"));
    let sa = rbac.iter().find(|d| d["kind"] == "ServiceAccount").unwrap();
    assert_eq!(sensor["spec"]["template"]["serviceAccountName"], sa["metadata"]["name"]);
    let created_kinds: Vec<&Value> =
        triggers.iter().map(|t| &t["template"]["k8s"]["source"]["resource"]["kind"]).collect();
    assert_eq!(created_kinds.iter().filter(|k| **k == "HealingCommand").count(), 1, "{created_kinds:?}");
}

/// Argo would silently ignore a misspelt field and its validation rejects a bad operator: the
/// evaluator refuses both, so a Sensor that Argo misreads cannot pass these tests.
#[test]
fn the_evaluator_refuses_what_argo_would_misread_or_reject() {
    let dir = tempfile::tempdir().unwrap();
    let sensor = std::fs::read_to_string(argo_eval::shipped().join("sensor.yaml")).unwrap();
    std::fs::copy(argo_eval::shipped().join("eventsource.yaml"), dir.path().join("eventsource.yaml")).unwrap();
    let cases = [
        (sensor.replace("dataKey: body.repository.full_name", "dataKy: body.repository.full_name"), "unknown field"),
        (sensor.replace("dataLogicalOperator: and", "dataLogicalOperator: xor"), "logical operator"),
        (sensor.replace("eventName: ci-failures", "eventName: ci-failure"), "no eventsource"),
    ];
    for (text, want) in cases {
        std::fs::write(dir.path().join("sensor.yaml"), &text).unwrap();
        let report = argo_eval::check(&[dir.path()]);
        let err = report.error.unwrap_or_default();
        assert!(err.to_lowercase().contains(want), "want {want:?} in {err:?}");
    }
}

#[test]
fn real_failure_becomes_a_healingrun_with_typed_fields() {
    let report = evaluate("workflow_job", &fixture("workflow_job-failure.json"));
    let delivery = report.delivery.as_ref().unwrap();
    assert_eq!((delivery.status, delivery.published), (200, true), "{delivery:?}");
    assert!(delivery.subscribed, "the EventSource subscribes to workflow_job");
    // The event as the GitHub EventSource publishes it: Go's canonical header names, the payload as body.
    let event = report.event.as_ref().unwrap();
    assert_eq!(event["context"]["source"], "github-ci");
    assert_eq!(event["context"]["subject"], "ci-failures");
    assert_eq!(event["context"]["type"], "github");
    assert_eq!(event["data"]["headers"]["X-Github-Event"], json!(["workflow_job"]));
    assert_eq!(event["data"]["headers"]["X-Github-Delivery"], json!([DELIVERY]));
    assert_eq!(event["data"]["body"]["workflow_job"], failure()["workflow_job"]);
    assert_eq!(report.dependency("workflow-job-failed").outcome, "passed");

    let run = created_run(&report);
    assert_eq!(run["metadata"]["name"], "gh-2202229078-1-289782451");
    assert_eq!(run["metadata"]["namespace"], "ci-healer");
    let src = &run["spec"]["source"];
    assert_eq!(src["repository"], "Codertocat/Hello-World");
    assert_eq!(src["branch"], "main");
    assert_eq!(src["headSha"], "3484a3fb816e0859fd6e1cea078d76385ff50625");
    assert_eq!(src["deliveryId"], DELIVERY);
    assert_eq!(src["workflowName"], "CodeQL");
    assert_eq!(src["jobName"], "linters");
    assert_eq!(src["runId"], 2202229078i64, "integers stay JSON numbers (useRawData)");
    assert_eq!(src["runAttempt"], 1);
    assert_eq!(src["jobId"], 289782451);
    assert_eq!(src["url"], "https://github.com/octo-org/octo-repo/runs/1291536064");
    assert_eq!(src["sender"], "Codertocat");
    assert_eq!(src["failedSteps"], json!(["Run yarn run format-check"]));
    assert_eq!(run["metadata"]["labels"]["events.argoproj.io/sensor"], SENSOR);
    assert_eq!(run["metadata"]["labels"]["events.argoproj.io/trigger"], "workflow-job");
    let typed: HealingRun = serde_json::from_value(run).unwrap();
    assert_eq!(typed.spec.policy.max_attempts, 3);
}

/// The samples are the evaluator's output, less the creation-time label: the HealingRun of the real
/// failure, and the HealingCommand of a derived `/healer approve` comment.
#[test]
fn sample_matches_what_the_sensor_produces() {
    let cases = [
        (
            sample_path(),
            "workflow_job",
            "workflow_job-failure.json",
            "the real GitHub delivery",
            "@octokit/webhooks-examples, MIT",
        ),
        (
            support::root().join("config/samples/healingcommand-from-issue-comment.yaml"),
            COMMAND_EVENT,
            "derived/issue_comment-healer-approve.json",
            "the derived GitHub delivery",
            "a real @octokit/webhooks-examples comment, MIT, its body replaced; see PROVENANCE.md",
        ),
    ];
    for (path, event, file, what, source) in cases {
        let mut object = created_run(&evaluate(event, &fixture(file)));
        object["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove(ACTION_TIMESTAMP)
            .expect("the trigger labels its objects");
        let generated = format!(
            "# Generated by tests/argo_events.rs: what Argo Events {} (hack/argo-eval) creates from\n\
             # config/argo-events/ and {what} tests/fixtures/payloads/{file}\n\
             # ({source}), less the label {ACTION_TIMESTAMP} (the time of creation).\n\
             # Regenerate: CIHEALER_BLESS=1 cargo test --test argo_events\n{}",
            pinned_argo_version(),
            serde_yaml_ng::to_string(&object).unwrap()
        );
        if std::env::var_os("CIHEALER_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale; run CIHEALER_BLESS=1 cargo test --test argo_events",
            path.display()
        );
    }
}

/// A namespace with config/argo-events/rbac.yaml applied, and a client acting as the Sensor's
/// ServiceAccount in it.
async fn sensor_namespace(admin: &Client) -> (String, Client) {
    let ns = support::namespace(admin, "argo").await;
    let pp = PatchParams::apply("ci-healer-tests").force();
    let mut sa_name = String::new();
    for mut doc in yaml_docs(&argo_eval::shipped().join("rbac.yaml")) {
        doc["metadata"]["namespace"] = ns.clone().into();
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        match doc["kind"].as_str().unwrap() {
            "ServiceAccount" => {
                sa_name = name.clone();
                let sa: ServiceAccount = serde_json::from_value(doc).unwrap();
                Api::<ServiceAccount>::namespaced(admin.clone(), &ns)
                    .patch(&name, &pp, &Patch::Apply(&sa))
                    .await
                    .unwrap();
            }
            "Role" => {
                let r: Role = serde_json::from_value(doc).unwrap();
                Api::<Role>::namespaced(admin.clone(), &ns).patch(&name, &pp, &Patch::Apply(&r)).await.unwrap();
            }
            "RoleBinding" => {
                for s in doc["subjects"].as_array_mut().unwrap() {
                    s["namespace"] = ns.clone().into();
                }
                let rb: RoleBinding = serde_json::from_value(doc).unwrap();
                Api::<RoleBinding>::namespaced(admin.clone(), &ns).patch(&name, &pp, &Patch::Apply(&rb)).await.unwrap();
            }
            other => panic!("unexpected {other} in rbac.yaml"),
        }
    }
    let mut kc = kube::config::Kubeconfig::read_from(support::kubeconfig()).unwrap();
    for a in &mut kc.auth_infos {
        a.auth_info.as_mut().unwrap().impersonate = Some(format!("system:serviceaccount:{ns}:{sa_name}"));
    }
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    (ns, Client::try_from(cfg).unwrap())
}

/// Send the create request the trigger sent (its resource path, its object) to the API server,
/// as the Sensor's ServiceAccount, with strict field validation: an unknown field is an error
/// rather than silently pruned.
async fn send_create(client: &Client, ns: &str, report: &Report, object: &Value) -> Result<Value, kube::Error> {
    let req = report
        .executions()
        .flat_map(|e| &e.requests)
        .find(|r| r.object.as_ref() == Some(object))
        .expect("the request that carried this object");
    let (gv, resource) = req.resource.rsplit_once('/').unwrap();
    let mut object = object.clone();
    object["metadata"]["namespace"] = ns.into();
    let url = format!("/apis/{gv}/namespaces/{ns}/{resource}?fieldValidation=Strict");
    let http = http::Request::post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&object).unwrap())
        .unwrap();
    client.request::<Value>(http).await
}

fn api_status(r: Result<Value, kube::Error>) -> (u16, String) {
    match r {
        Ok(v) => (201, v.to_string()),
        Err(kube::Error::Api(s)) => (s.code, s.message),
        Err(e) => panic!("not an API answer: {e}"),
    }
}

#[tokio::test]
async fn the_api_server_accepts_it_from_the_sensors_service_account_and_a_redelivery_collides() {
    let admin = support::client().await;
    support::install_crds(&admin).await;
    let (ns, sensor) = sensor_namespace(&admin).await;
    let report = evaluate("workflow_job", &fixture("workflow_job-failure.json"));
    let run = created_run(&report);
    let stored =
        send_create(&sensor, &ns, &report, &run).await.expect("the API server accepts the Sensor's HealingRun");
    assert_eq!(stored["metadata"]["name"], "gh-2202229078-1-289782451");
    assert_eq!(stored["spec"]["source"], run["spec"]["source"], "nothing pruned or defaulted away");
    let typed: HealingRun = serde_json::from_value(stored).unwrap();
    assert_eq!(typed.spec.source.run_id, Some(2202229078));
    // The same delivery again: the same name, so the create collides and no second run exists.
    let (code, msg) = api_status(send_create(&sensor, &ns, &report, &run).await);
    assert_eq!(code, 409, "a redelivery collides: {msg}");
    let runs = Api::<HealingRun>::namespaced(admin.clone(), &ns);
    assert_eq!(runs.list(&Default::default()).await.unwrap().items.len(), 1);
    // The Sensor may create HealingRuns and nothing else.
    match Api::<HealingRun>::namespaced(sensor.clone(), &ns)
        .delete(&typed.metadata.name.unwrap(), &Default::default())
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("the Sensor's ServiceAccount must not delete runs: {other:?}"),
    }
}

/// Every delivery the Sensor must drop, each by the filter meant for it. Real payloads, and copies
/// of the real failure edited as the case says (derived payloads).
#[test]
fn dropped_deliveries_name_the_filter_that_dropped_them() {
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut p = failure();
        f(&mut p);
        serde_json::to_vec(&p).unwrap()
    };
    let edit_of = |file: &str, f: &dyn Fn(&mut Value)| {
        let mut p: Value = serde_json::from_slice(&fixture(file)).unwrap();
        f(&mut p);
        serde_json::to_vec(&p).unwrap()
    };
    let wj = "workflow-job-failed";
    let cases: Vec<(&str, &str, Vec<u8>, &str, &str)> = vec![
        ("a successful job", "workflow_job", fixture("workflow_job-success.json"), wj, "body.workflow_job.conclusion"),
        ("an in-progress job", "workflow_job", fixture("workflow_job-in_progress.json"), wj, "body.action"),
        (
            "the GitHub Actions app's failed check run: the copy of its workflow_job",
            "check_run",
            fixture("check_run-failure.json"),
            "check-run-failed",
            "[body.check_run.app.slug,!null]|0",
        ),
        (
            "the GitHub Actions app's failed check suite (derived)",
            "check_suite",
            fixture("derived/check_suite-failure-actions.json"),
            "check-suite-failed",
            "[body.check_suite.app.slug,!null]|0",
        ),
        (
            "ci-healer's own failed check run (derived)",
            "check_run",
            edit_of("derived/check_run-failure-other-app.json", &|p| p["check_run"]["name"] = "ci-healer".into()),
            "check-run-failed",
            "body.check_run.name",
        ),
        (
            "ci-healer's own failed commit status (derived)",
            "status",
            edit_of("derived/status-failure.json", &|p| p["context"] = "ci-healer".into()),
            "status-failed",
            "body.context",
        ),
        (
            "a pending commit status (derived)",
            "status",
            edit_of("derived/status-failure.json", &|p| p["state"] = "pending".into()),
            "status-failed",
            "body.state",
        ),
        (
            "a commit status on no branch (derived)",
            "status",
            edit_of("derived/status-failure.json", &|p| p["branches"] = json!([])),
            "status-failed",
            "body.branches.0.name",
        ),
        (
            "a failed check suite on ci-healer's branch (derived)",
            "check_suite",
            edit_of("derived/check_suite-failure.json", &|p| p["check_suite"]["head_branch"] = "ci-healer/x".into()),
            "check-suite-failed",
            "body.check_suite.head_branch",
        ),
        (
            "a failed check run from a bot (derived)",
            "check_run",
            edit_of("derived/check_run-failure-other-app.json", &|p| p["sender"]["type"] = "Bot".into()),
            "check-run-failed",
            "body.sender.type",
        ),
        (
            "the failure's body under another event",
            "check_run",
            fixture("workflow_job-failure.json"),
            "check-run-failed",
            "body.check_run.conclusion",
        ),
        (
            "a conclusion that only starts with failure (derived)",
            "workflow_job",
            edit(&|p| p["workflow_job"]["conclusion"] = "failure_extra".into()),
            wj,
            "body.workflow_job.conclusion",
        ),
        (
            "the operator's own branch (derived)",
            "workflow_job",
            edit(&|p| p["workflow_job"]["head_branch"] = "ci-healer/fix-2202229078".into()),
            wj,
            "body.workflow_job.head_branch",
        ),
        (
            "a job without a branch, head_branch null (derived)",
            "workflow_job",
            edit(&|p| p["workflow_job"]["head_branch"] = Value::Null),
            wj,
            "body.workflow_job.head_branch",
        ),
        (
            "a bot sender by type (derived)",
            "workflow_job",
            edit(&|p| p["sender"]["type"] = "Bot".into()),
            wj,
            "body.sender.type",
        ),
        (
            "a bot sender by login (derived)",
            "workflow_job",
            edit(&|p| p["sender"]["login"] = "ci-healer[bot]".into()),
            wj,
            "body.sender.login",
        ),
        (
            "a real new comment without a command",
            COMMAND_EVENT,
            fixture("github/issue_comment/1.json"),
            COMMAND_DEPENDENCY,
            "body.comment.body",
        ),
        (
            "a real deleted comment",
            COMMAND_EVENT,
            fixture("github/issue_comment/6.json"),
            COMMAND_DEPENDENCY,
            "body.action",
        ),
        (
            "an edited comment with a command (derived)",
            COMMAND_EVENT,
            fixture("derived/issue_comment-healer-edited.json"),
            COMMAND_DEPENDENCY,
            "body.action",
        ),
        (
            "a command mentioned inside a sentence (derived)",
            COMMAND_EVENT,
            fixture("derived/issue_comment-healer-mention.json"),
            COMMAND_DEPENDENCY,
            "body.comment.body",
        ),
        (
            "a bot's command, by type and login (derived, both filters)",
            COMMAND_EVENT,
            fixture("derived/issue_comment-healer-bot.json"),
            COMMAND_DEPENDENCY,
            "body.comment.user.type",
        ),
        (
            "a bot's command by login only (derived)",
            COMMAND_EVENT,
            edit_of("derived/issue_comment-healer-approve.json", &|p| {
                p["comment"]["user"]["login"] = "ci-healer[bot]".into()
            }),
            COMMAND_DEPENDENCY,
            "body.comment.user.login",
        ),
        (
            "a command over 65,536 characters (derived)",
            COMMAND_EVENT,
            edit_of("derived/issue_comment-healer-approve.json", &|p| {
                p["comment"]["body"] = format!("/healer deny {}", "ü".repeat(65_536 - 12)).into()
            }),
            COMMAND_DEPENDENCY,
            "body.comment.body",
        ),
    ];
    for (what, event, body, dep_name, path) in cases {
        let report = evaluate(event, &body);
        assert!(report.created().is_empty(), "{what}: nothing is created: {report:#?}");
        let dep = report.dependency(dep_name);
        // `error`: a filter's field is absent, and Argo discards the event with a warning.
        assert!(["dropped", "error"].contains(&dep.outcome.as_str()), "{what}: {dep:?}");
        let by_path = |r: &String| r.contains(&format!(" {path} ")) || r.contains(&format!("'{path}'"));
        assert!(dep.reasons.iter().any(by_path), "{what}: dropped by {path}: {:?}", dep.reasons);
        // The real failure passes every other filter, so its edited copies fail this one only.
        if what.ends_with("(derived)") {
            assert!(dep.reasons.iter().all(by_path), "{what}: dropped by {path} only: {:?}", dep.reasons);
        }
        // Every other dependency waits for another event kind.
        for other in report.sensors[0].dependencies.iter().filter(|d| d.name != dep_name) {
            assert_eq!(other.outcome, "dropped", "{what}: {other:?}");
            assert!(
                other.reasons.iter().any(|r| r.starts_with("data filter headers.X-Github-Event.0 ")),
                "{what}: {other:?}"
            );
        }
        assert!(report.sensors[0].triggers.iter().all(|t| t.outcome == "not-fired"), "{what}: {report:#?}");
        if what.starts_with("a command over") {
            // The length filter said no, not the command's: the body has its /healer line.
            assert!(
                dep.reasons.iter().all(|r| r.starts_with("data filter body.comment.body (number <= [\"65536\"])")),
                "{what}: {:?}",
                dep.reasons.iter().map(|r| r.chars().take(80).collect::<String>()).collect::<Vec<_>>()
            );
        }
    }
}

/// A failed check run of another CI app, a failed check suite and a failed or erroring commit status
/// (derived from real deliveries): each becomes a HealingRun of its kind, named from the delivery's
/// ids, with the fields the controller reads for that kind; the API server accepts it from the
/// Sensor's ServiceAccount, and a redelivery collides.
#[tokio::test]
async fn each_failure_kind_becomes_its_run_and_a_redelivery_collides() {
    let admin = support::client().await;
    support::install_crds(&admin).await;
    let (ns, sensor) = sensor_namespace(&admin).await;
    let sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    let cases: Vec<(&str, &str, &str, SourceEvent, Value)> = vec![
        (
            "check_run",
            "derived/check_run-failure-other-app.json",
            "gh-check-run-128620228",
            SourceEvent::CheckRun,
            json!({"provider": "github", "event": "check_run", "repository": "Codertocat/Hello-World",
                   "branch": "changes", "headSha": sha, "deliveryId": DELIVERY, "jobName": "Octocoders-linter",
                   "jobId": 128620228, "checkSuiteId": 118578147,
                   "url": "https://github.com/Codertocat/Hello-World/runs/128620228", "sender": "Codertocat"}),
        ),
        (
            "check_suite",
            "derived/check_suite-failure.json",
            "gh-check-suite-118578147",
            SourceEvent::CheckSuite,
            json!({"provider": "github", "event": "check_suite", "repository": "Codertocat/Hello-World",
                   "branch": "changes", "headSha": sha, "deliveryId": DELIVERY, "checkSuiteId": 118578147,
                   "sender": "Codertocat"}),
        ),
        (
            "status",
            "derived/status-failure.json",
            "gh-status-6805126730",
            SourceEvent::Status,
            json!({"provider": "github", "event": "status", "repository": "Codertocat/Hello-World",
                   "branch": "master", "headSha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "deliveryId": DELIVERY,
                   "jobName": "ci/circleci: build", "description": "Build failed: 3 tests failed", "sender": "Codertocat"}),
        ),
        (
            "status",
            "derived/status-error.json",
            "gh-status-2",
            SourceEvent::Status,
            json!({"provider": "github", "event": "status", "repository": "Codertocat/Hello-World",
                   "branch": "master", "headSha": "4544205a385319fd846d5df4ed2e3b8173529d78", "deliveryId": DELIVERY,
                   "jobName": "default", "sender": "Codertocat"}),
        ),
    ];
    let runs = Api::<HealingRun>::namespaced(admin.clone(), &ns);
    for (event, file, name, kind, source) in cases {
        let report = evaluate(event, &fixture(file));
        assert!(report.delivery.as_ref().unwrap().subscribed, "the EventSource subscribes to {event}");
        let run = created_run(&report);
        assert_eq!(run["metadata"]["name"], name, "{file}");
        assert_eq!(run["metadata"]["labels"]["events.argoproj.io/trigger"], event.replace('_', "-"), "{file}");
        let stored = send_create(&sensor, &ns, &report, &run).await.unwrap_or_else(|e| panic!("{file}: {e}"));
        // A null the delivery had (target_url, description) reaches the API server as null (useRawData),
        // never as the string "null"; the typed run reads it as absent.
        let mut got = stored["spec"]["source"].clone();
        got.as_object_mut().unwrap().retain(|_, v| !v.is_null());
        assert_eq!(got, source, "{file}");
        for (k, v) in stored["spec"]["source"].as_object().unwrap() {
            assert_ne!(v, "null", "{file}: {k}");
        }
        let typed: HealingRun = serde_json::from_value(stored).unwrap();
        assert_eq!(typed.spec.source.event, kind);
        let (code, msg) = api_status(send_create(&sensor, &ns, &report, &run).await);
        assert_eq!(code, 409, "{file}: a redelivery collides: {msg}");
    }
    assert_eq!(runs.list(&Default::default()).await.unwrap().items.len(), 4, "one run per failure");
}

/// `/healer` comments (derived from real `issue_comment` deliveries): each becomes a HealingCommand
/// named `ghc-<comment id>` with the comment as GitHub sent it; the API server accepts it from the
/// Sensor's ServiceAccount (strict field validation), a redelivery collides, and the Sensor may not
/// read or delete what it made. A bot's command, an edited comment and a mention make none.
#[tokio::test]
async fn each_healer_comment_becomes_its_command_and_a_redelivery_collides() {
    let admin = support::client().await;
    support::install_crds(&admin).await;
    let (ns, sensor) = sensor_namespace(&admin).await;
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "derived/issue_comment-healer-approve.json",
            "ghc-492700400",
            json!({"provider": "github", "repository": "Codertocat/Hello-World", "issueNumber": 1,
                   "pullRequest": true, "commentId": 492700400, "author": "Codertocat", "authorType": "User",
                   "body": "/healer approve",
                   "url": "https://github.com/Codertocat/Hello-World/issues/1#issuecomment-492700400",
                   "deliveryId": DELIVERY}),
        ),
        (
            "derived/issue_comment-healer-retry.json",
            "ghc-2",
            json!({"provider": "github", "repository": "Codertocat/Hello-World", "issueNumber": 1,
                   "pullRequest": false, "commentId": 2, "author": "Codertocat", "authorType": "User",
                   "body": "Flaky again, the cache key changed.\r\n\r\n/healer retry pin the lockfile first",
                   "url": "https://octocoders.github.io/Codertocat/Hello-World/issues/1#issuecomment-2",
                   "deliveryId": DELIVERY}),
        ),
    ];
    let commands = Api::<HealingCommand>::namespaced(admin.clone(), &ns);
    for (file, name, spec) in &cases {
        let report = evaluate(COMMAND_EVENT, &fixture(file));
        assert!(report.delivery.as_ref().unwrap().subscribed, "the EventSource subscribes to issue_comment");
        assert_eq!(report.dependency(COMMAND_DEPENDENCY).outcome, "passed", "{file}");
        let cmd = created_run(&report);
        assert_eq!((&cmd["kind"], &cmd["metadata"]["name"]), (&json!("HealingCommand"), &json!(name)), "{file}");
        assert_eq!(cmd["metadata"]["labels"]["events.argoproj.io/trigger"], COMMAND_DEPENDENCY, "{file}");
        let stored = send_create(&sensor, &ns, &report, &cmd).await.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(&stored["spec"], spec, "{file}: nothing pruned, defaulted or typed wrong");
        let typed: HealingCommand = serde_json::from_value(stored).unwrap();
        assert_eq!(typed.metadata.labels.unwrap()[map::CREATED_BY], "argo-events");
        // The same delivery again: the same name, so the create collides.
        let (code, msg) = api_status(send_create(&sensor, &ns, &report, &cmd).await);
        assert_eq!(code, 409, "{file}: a redelivery collides: {msg}");
    }
    // The third derived command: leading spaces before `/healer` (same comment id as the approve, so
    // it collides too: one comment, one command).
    let report = evaluate(COMMAND_EVENT, &fixture("derived/issue_comment-healer-abort.json"));
    let cmd = created_run(&report);
    assert_eq!(
        (cmd["metadata"]["name"].as_str(), cmd["spec"]["body"].as_str()),
        (Some("ghc-492700400"), Some("  /healer abort"))
    );
    assert_eq!(api_status(send_create(&sensor, &ns, &report, &cmd).await).0, 409);
    for file in [
        "derived/issue_comment-healer-bot.json",
        "derived/issue_comment-healer-edited.json",
        "derived/issue_comment-healer-mention.json",
        "github/issue_comment/1.json",
    ] {
        let report = evaluate(COMMAND_EVENT, &fixture(file));
        assert!(report.created().is_empty(), "{file}: no command: {report:#?}");
        assert_ne!(report.dependency(COMMAND_DEPENDENCY).outcome, "passed", "{file}");
    }
    let stored = commands.list(&Default::default()).await.unwrap().items;
    let mut names: Vec<String> = stored.iter().map(|c| c.metadata.name.clone().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["ghc-2", "ghc-492700400"], "one command per comment");
    // The Sensor may create commands and nothing else.
    for r in [
        Api::<HealingCommand>::namespaced(sensor.clone(), &ns).get("ghc-2").await.map(drop),
        Api::<HealingCommand>::namespaced(sensor.clone(), &ns).delete("ghc-2", &Default::default()).await.map(drop),
    ] {
        match r {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
            other => panic!("the Sensor's ServiceAccount may only create commands: {other:?}"),
        }
    }
}

/// The receiver's mapping (`ci_healer::intake::map`) and the Sensor give the same answer for every
/// delivery: every real payload in tests/fixtures/payloads/github (all kinds, handled or not), the
/// derived ones, and the edits of the dropped-deliveries table. Created: the same name, labels (less
/// the `events.argoproj.io/*` labels Argo's trigger adds) and spec, compared as the typed HealingRun
/// (so a null Argo passes and a field the mapping leaves out agree, as the API server stores both).
/// Dropped: the mapping names a filter that Argo's report names too.
#[test]
fn the_sensor_and_the_receivers_mapping_agree_on_every_payload() {
    let dir = support::root().join("tests/fixtures/payloads");
    let mut deliveries: Vec<(String, String, Vec<u8>)> = Vec::new();
    for kind_dir in std::fs::read_dir(dir.join("github")).unwrap() {
        let kind_dir = kind_dir.unwrap().path();
        if !kind_dir.is_dir() {
            continue;
        }
        let event = kind_dir.file_name().unwrap().to_str().unwrap().to_string();
        for f in std::fs::read_dir(&kind_dir).unwrap() {
            let f = f.unwrap().path();
            deliveries.push((
                format!("github/{event}/{}", f.file_name().unwrap().to_str().unwrap()),
                event.clone(),
                std::fs::read(&f).unwrap(),
            ));
        }
    }
    assert!(deliveries.len() >= 60, "the real payloads are there: {}", deliveries.len());
    for f in std::fs::read_dir(dir.join("derived")).unwrap() {
        let f = f.unwrap().path();
        let file = f.file_name().unwrap().to_str().unwrap().to_string();
        let event = Kind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain([COMMAND_EVENT])
            .filter(|k| file.starts_with(k))
            .max_by_key(|k| k.len())
            .unwrap();
        deliveries.push((format!("derived/{file}"), event.to_string(), std::fs::read(&f).unwrap()));
    }
    // Edits of the real failure: each filter's refusal, nulls and a missing field.
    type Edit = fn(&mut Value);
    let edits: Vec<(&str, Edit)> = vec![
        ("bot type", |p| p["sender"]["type"] = "Bot".into()),
        ("bot login", |p| p["sender"]["login"] = "ci-healer[bot]".into()),
        ("own branch", |p| p["workflow_job"]["head_branch"] = "ci-healer/x".into()),
        ("null branch", |p| p["workflow_job"]["head_branch"] = Value::Null),
        ("null workflow name and url", |p| {
            p["workflow_job"]["workflow_name"] = Value::Null;
            p["workflow_job"]["html_url"] = Value::Null;
        }),
        ("no workflow name", |p| {
            p["workflow_job"].as_object_mut().unwrap().remove("workflow_name");
        }),
        ("no head sha", |p| {
            p["workflow_job"].as_object_mut().unwrap().remove("head_sha");
        }),
        ("no sender", |p| {
            p.as_object_mut().unwrap().remove("sender");
        }),
    ];
    for (what, f) in edits {
        let mut p = failure();
        f(&mut p);
        deliveries.push((format!("edit: {what}"), "workflow_job".into(), serde_json::to_vec(&p).unwrap()));
    }
    // Edits of a `/healer` comment: the body's cap (in characters, not bytes), whitespace, nulls,
    // a missing or mistyped field.
    let comment_edits: Vec<(&str, Edit)> = vec![
        ("at the cap", |p| p["comment"]["body"] = format!("/healer deny {}", "ü".repeat(65_536 - 13)).into()),
        ("over the cap", |p| p["comment"]["body"] = format!("/healer deny {}", "ü".repeat(65_536 - 12)).into()),
        ("command on a later line after blank ones", |p| {
            p["comment"]["body"] = "LGTM\n\n \t\n\t/healer approve".into()
        }),
        ("prefix of a longer word", |p| p["comment"]["body"] = "/healers approve".into()),
        ("command alone, then CRLF", |p| p["comment"]["body"] = "/healer\r\n".into()),
        ("non-breaking space before", |p| p["comment"]["body"] = "\u{a0}/healer approve".into()),
        ("null body", |p| p["comment"]["body"] = Value::Null),
        ("null pull_request", |p| p["issue"]["pull_request"] = Value::Null),
        ("null html_url", |p| p["comment"]["html_url"] = Value::Null),
        ("null user", |p| p["comment"]["user"] = Value::Null),
        ("null user type", |p| p["comment"]["user"]["type"] = Value::Null),
        ("no comment id", |p| {
            p["comment"].as_object_mut().unwrap().remove("id");
        }),
        ("no issue number", |p| {
            p["issue"].as_object_mut().unwrap().remove("number");
        }),
        ("a numeric body", |p| p["comment"]["body"] = json!(7)),
    ];
    for (what, f) in comment_edits {
        let mut p: Value = serde_json::from_slice(&fixture("derived/issue_comment-healer-approve.json")).unwrap();
        f(&mut p);
        deliveries.push((format!("edit: comment {what}"), COMMAND_EVENT.into(), serde_json::to_vec(&p).unwrap()));
    }

    let (mut created, mut commands, mut dropped) = (0, 0, 0);
    for (what, event, body) in &deliveries {
        let report = evaluate(event, body);
        let value: Value = serde_json::from_slice(body).unwrap();
        let mapped =
            map::deliver(&map::Delivery { event, id: Some(DELIVERY), body: &value }, "ci-healer", Intake::ArgoEvents);
        let argo = report.created();
        // The dependency that handles this event kind.
        let dependency = || {
            if event == COMMAND_EVENT { COMMAND_DEPENDENCY } else { Kind::parse(event).unwrap().dependency() }
        };
        match mapped {
            Ok(Mapped::Run(run)) => {
                assert_eq!(argo.len(), 1, "{what}: the mapping makes {:?}, the Sensor {report:#?}", run.metadata.name);
                let mut theirs: HealingRun = serde_json::from_value(argo[0].clone()).unwrap();
                theirs.metadata.labels.as_mut().unwrap().retain(|k, _| !k.starts_with("events.argoproj.io/"));
                assert_eq!(run.metadata.name, theirs.metadata.name, "{what}");
                assert_eq!(run.metadata.namespace, theirs.metadata.namespace, "{what}");
                assert_eq!(run.metadata.labels, theirs.metadata.labels, "{what}");
                assert_eq!(run.spec, theirs.spec, "{what}");
                created += 1;
            }
            Ok(Mapped::Command(cmd)) => {
                assert_eq!(argo.len(), 1, "{what}: the mapping makes {:?}, the Sensor {report:#?}", cmd.metadata.name);
                assert_eq!(argo[0]["kind"], "HealingCommand", "{what}");
                for e in report.executions() {
                    assert!(e.argo_output.is_empty(), "{what}: a parameter fell back: {:?}", e.argo_output);
                }
                let mut theirs: HealingCommand = serde_json::from_value(argo[0].clone()).unwrap();
                theirs.metadata.labels.as_mut().unwrap().retain(|k, _| !k.starts_with("events.argoproj.io/"));
                assert_eq!(cmd.metadata.name, theirs.metadata.name, "{what}");
                assert_eq!(cmd.metadata.namespace, theirs.metadata.namespace, "{what}");
                assert_eq!(cmd.metadata.labels, theirs.metadata.labels, "{what}");
                assert_eq!(cmd.spec, theirs.spec, "{what}");
                commands += 1;
            }
            Err(d) => {
                assert!(argo.is_empty(), "{what}: the Sensor creates {argo:?}; the mapping drops it: {d}");
                match &d {
                    Dropped::Unhandled { .. } => {
                        for dep in &report.sensors[0].dependencies {
                            assert_eq!(dep.outcome, "dropped", "{what}: {dep:?}");
                        }
                    }
                    Dropped::Filtered { path, .. } => {
                        let dep = report.dependency(dependency());
                        assert!(
                            dep.reasons
                                .iter()
                                .any(|r| r.contains(&format!(" {path} ")) || r.contains(&format!("'{path}'"))),
                            "{what}: the mapping drops it by {path}; the Sensor: {dep:?}"
                        );
                    }
                    Dropped::Missing { path } => {
                        let dep = report.dependency(dependency());
                        assert_eq!(dep.outcome, "passed", "{what}: only a trigger parameter is missing ({path})");
                        let trigger = report.sensors[0].triggers.iter().find(|t| t.conditions == dependency()).unwrap();
                        assert_eq!(trigger.outcome, "error", "{what}: {path}: {trigger:?}");
                    }
                }
                dropped += 1;
            }
        }
    }
    eprintln!(
        "{} deliveries: {created} runs and {commands} commands created by both, {dropped} dropped by both",
        deliveries.len()
    );
    assert!(created >= 6, "the failures of every kind are created: {created}");
    assert!(commands >= 6, "the /healer comments are recorded: {commands}");
}

/// Fields GitHub may send as null or (older GitHub Enterprise Server) not at all: the run is still
/// created and accepted, without them; a required field that is missing fails the trigger, naming it.
#[tokio::test]
async fn null_and_missing_fields() {
    let admin = support::client().await;
    support::install_crds(&admin).await;

    let mut nulls = failure();
    nulls["workflow_job"]["workflow_name"] = Value::Null;
    nulls["workflow_job"]["html_url"] = Value::Null;
    let mut missing = failure();
    missing["workflow_job"].as_object_mut().unwrap().remove("workflow_name");
    let mut no_failed_step = failure();
    for s in no_failed_step["workflow_job"]["steps"].as_array_mut().unwrap() {
        s["conclusion"] = "success".into();
    }
    for (what, payload) in
        [("null (derived)", &nulls), ("missing (derived)", &missing), ("no failed step (derived)", &no_failed_step)]
    {
        let report = evaluate_value(payload);
        let run = created_run(&report);
        let (ns, sensor) = sensor_namespace(&admin).await;
        let stored = send_create(&sensor, &ns, &report, &run).await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let typed: HealingRun = serde_json::from_value(stored).unwrap();
        let src = &typed.spec.source;
        match what {
            "null (derived)" => {
                assert_eq!((src.workflow_name.as_deref(), src.url.as_deref()), (None, None), "not the string \"null\"");
            }
            "missing (derived)" => assert_eq!(src.workflow_name, None),
            _ => assert!(src.failed_steps.is_empty()),
        }
        assert_eq!(src.job_name.as_deref(), Some("linters"), "{what}");
    }

    let mut no_sha = failure();
    no_sha["workflow_job"].as_object_mut().unwrap().remove("head_sha");
    let report = evaluate_value(&no_sha);
    assert!(report.created().is_empty());
    let trigger = &report.sensors[0].triggers[0];
    assert_eq!(trigger.outcome, "error");
    let err = trigger.executions[0].error.as_deref().unwrap();
    assert!(err.contains("dest spec.source.headSha"), "{err}");
}

/// The Sensor as it was: the name printed from float64s. Argo's code builds
/// `gh-2.202229078e+09-1-2.89782451e+08`, which the API server refuses, so this check fails for
/// a template that is wrong in a real cluster.
#[tokio::test]
async fn a_name_printed_from_floats_is_refused_by_the_api_server() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(argo_eval::shipped().join("eventsource.yaml"), dir.path().join("eventsource.yaml")).unwrap();
    let sensor = std::fs::read_to_string(argo_eval::shipped().join("sensor.yaml")).unwrap();
    assert!(sensor.contains("{{ int64 .Input"), "the shipped template converts the numbers");
    std::fs::write(dir.path().join("sensor.yaml"), sensor.replace("{{ int64 .Input", "{{ .Input")).unwrap();
    let report = evaluate_with(&[dir.path()], "workflow_job", &fixture("workflow_job-failure.json"));
    let run = created_run(&report);
    assert_eq!(run["metadata"]["name"], "gh-2.202229078e+09-1-2.89782451e+08");

    let admin = support::client().await;
    support::install_crds(&admin).await;
    let (ns, sensor) = sensor_namespace(&admin).await;
    let (code, msg) = api_status(send_create(&sensor, &ns, &report, &run).await);
    assert_eq!(code, 422, "{msg}");
    assert!(msg.contains("RFC 1123"), "{msg}");
}
