//! The controller, as a real subprocess, against the local kube-apiserver and etcd. A kubelet
//! stand-in finishes attempt pods with the termination messages each test chooses.

mod support;

use std::time::Duration;

use ci_healer::contract::Outcome;
use ci_healer::crd::{HealingRun, RunPhase, SourceEvent};
use kube::ResourceExt;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{Apis, ControllerProcess, finish_attempt, verdict};

/// The run controller's reconcile count on `/metrics`.
const RUN_RECONCILES: &str = r#"cihealer_reconciles_total{controller="HealingRun"}"#;
/// The attempt controller's reconcile count on `/metrics`.
const ATTEMPT_RECONCILES: &str = r#"cihealer_reconciles_total{controller="HealingAttempt"}"#;

/// The sample HealingRun (made by the Sensor from the real failed `workflow_job` delivery).
fn sample_run(ns: &str) -> HealingRun {
    let text =
        std::fs::read_to_string(support::root().join("config/samples/healingrun-from-workflow-job.yaml")).unwrap();
    let mut run: HealingRun = serde_yaml_ng::from_str(&text).unwrap();
    run.metadata.namespace = Some(ns.into());
    run
}

fn run_named(ns: &str, name: &str) -> HealingRun {
    let mut r = sample_run(ns);
    r.metadata.name = Some(name.into());
    r
}

async fn setup(prefix: &str) -> (Apis, ControllerProcess) {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, prefix).await;
    let ctrl = ControllerProcess::start(&ns, None);
    (Apis::new(&client, &ns), ctrl)
}

/// Wait until the run controller has reconciled `run` again after this call: annotate it (a watch
/// event) and wait until its reconcile count on `/metrics` passes the count before. Whatever the
/// controller would still do at rest (a 4th Job, a Job for a duplicate, a status write), it has
/// then had the chance to do; the fixed sleeps this replaces only hoped so.
async fn reconciled_again(apis: &Apis, ctrl: &ControllerProcess, run: &str) {
    let before = ctrl.metric(RUN_RECONCILES).await;
    let poke = Patch::Merge(json!({"metadata": {"annotations": {"test.cihealer.dev/poke": before.to_string()}}}));
    apis.runs.patch(run, &PatchParams::default(), &poke).await.unwrap();
    support::wait_for(&format!("the run controller to reconcile {run} again"), Duration::from_secs(20), || async {
        (ctrl.metric(RUN_RECONCILES).await > before).then_some(())
    })
    .await;
}

fn cond<'a>(run: &'a HealingRun, t: &str) -> (&'a str, &'a str) {
    let c = run
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .unwrap_or_else(|| panic!("no {t} condition"));
    (c.status.as_str(), c.reason.as_str())
}

#[tokio::test]
async fn real_payload_run_is_fixed_after_one_passing_attempt() {
    let (apis, ctrl) = setup("fixed").await;
    let run = apis.runs.create(&PostParams::default(), &sample_run(&apis.ns)).await.unwrap();
    let name = run.name_any();

    let job = apis.job(&format!("{name}-1")).await;
    // The Job is the pure builder's: owned by the attempt, no token, backoffLimit 0.
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(job.owner_references()[0].kind, "HealingAttempt");
    assert_eq!(spec.template.spec.as_ref().unwrap().automount_service_account_token, Some(false));

    let running = apis.run_phase(&name, "Running").await;
    assert_eq!(running.status.as_ref().unwrap().current_attempt, Some(1));

    finish_attempt(&apis, &job, &verdict(Outcome::Passed, "ValidationPassed", "prettier --check passes")).await;
    let fixed = apis.run_phase(&name, "Fixed").await;
    let st = fixed.status.as_ref().unwrap();
    assert_eq!(st.attempts, 1);
    assert_eq!(st.short_sha.as_deref(), Some("3484a3f"));
    assert_eq!(st.patch.as_ref().unwrap().attempt, format!("{name}-1"));
    assert_eq!(st.patch.as_ref().unwrap().diffstat.as_ref().unwrap().files, 1);
    assert!(st.completion_time.is_some() && st.start_time.is_some());
    assert_eq!(st.observed_generation, fixed.metadata.generation);
    assert_eq!(cond(&fixed, "Accepted"), ("True", "SpecValid"));
    assert_eq!(cond(&fixed, "Triaged"), ("True", "Classified"));
    assert_eq!(cond(&fixed, "Duplicate"), ("False", "NoActiveDuplicate"));
    assert_eq!(cond(&fixed, "Healing"), ("False", "Fixed"));
    assert_eq!(cond(&fixed, "Fixed"), ("True", "ValidationPassed"));
    let hash = st.error_hash.clone().unwrap();
    assert_eq!(fixed.labels().get("cihealer.dev/error-hash"), Some(&hash));

    let attempt = apis.attempts.get(&format!("{name}-1")).await.unwrap();
    let ast = attempt.status.unwrap();
    assert_eq!(ast.verdict.unwrap().reason, "ValidationPassed");
    assert_eq!(ast.diagnosis.as_deref(), Some("reformatted src/lib.rs"));

    // Events on the run, in order of the transitions. The passing attempt's verdict is its own
    // Event; the run's Fixed Event quotes it, so the run does not repeat it.
    let reasons = apis.event_reasons("HealingRun", &name).await;
    for want in ["Triaged", "AttemptStarted", "Fixed"] {
        assert!(reasons.iter().any(|r| r == want), "missing Event {want} in {reasons:?}");
    }
    assert!(!reasons.iter().any(|r| r == "AttemptSucceeded"), "the verdict once, on the attempt: {reasons:?}");
    // (No AttemptRunning required: a pod that finishes before the controller sees it running goes
    // from Pending straight to Succeeded.)
    let attempt_reasons = apis.event_reasons("HealingAttempt", &format!("{name}-1")).await;
    assert!(attempt_reasons.iter().any(|r| r == "AttemptSucceeded"), "missing AttemptSucceeded in {attempt_reasons:?}");

    // What `kubectl get` shows: printer columns.
    let (ok, out) = support::kubectl(&["get", "healingruns", "-n", &apis.ns, "-o", "wide"]);
    assert!(ok, "{out}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PHASE", "ATTEMPTS", "REPOSITORY", "BRANCH", "SHA", "CLASS", "AGENT", "AGE"]);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..6], [name.as_str(), "Fixed", "1", "Codertocat/Hello-World", "main", "3484a3f"]);
    let (ok, out) = support::kubectl(&["get", "hrun", "-n", &apis.ns]);
    assert!(ok && out.contains("Fixed"), "short name works: {out}");
    let (ok, out) = support::kubectl(&["describe", "healingrun", &name, "-n", &apis.ns]);
    assert!(ok && out.contains("ValidationPassed") && out.contains("passed validation"), "{out}");
    // An identical server-side apply leaves resourceVersion unchanged, so count the writes instead:
    // reconcile both objects again (an annotation is a watch event) and the status-write count of
    // each controller stays where it was.
    let run_writes = r#"cihealer_status_writes_total{controller="HealingRun"}"#;
    let att_writes = r#"cihealer_status_writes_total{controller="HealingAttempt"}"#;
    let (runs_before, atts_before) = (ctrl.metric(run_writes).await, ctrl.metric(att_writes).await);
    assert!(runs_before >= 1.0 && atts_before >= 1.0, "status writes are counted: {runs_before} {atts_before}");
    let (run_rec, att_rec) = (ctrl.metric(RUN_RECONCILES).await, ctrl.metric(ATTEMPT_RECONCILES).await);
    let poke = Patch::Merge(json!({"metadata": {"annotations": {"test.cihealer.dev/poke": "1"}}}));
    apis.runs.patch(&name, &PatchParams::default(), &poke).await.unwrap();
    apis.attempts.patch(&format!("{name}-1"), &PatchParams::default(), &poke).await.unwrap();
    let rv_run = apis.runs.get(&name).await.unwrap().resource_version();
    let rv_att = apis.attempts.get(&format!("{name}-1")).await.unwrap().resource_version();
    let c = &ctrl;
    support::wait_for("both controllers to reconcile the poked objects", Duration::from_secs(20), move || async move {
        (c.metric(RUN_RECONCILES).await > run_rec && c.metric(ATTEMPT_RECONCILES).await > att_rec).then_some(())
    })
    .await;
    assert_eq!(ctrl.metric(run_writes).await, runs_before, "status written again by a reconcile at rest");
    assert_eq!(ctrl.metric(att_writes).await, atts_before, "attempt status written again by a reconcile at rest");
    // Nothing changes any more, so the controller writes nothing: after those reconciles the
    // resourceVersions are where the poke left them.
    assert_eq!(apis.runs.get(&name).await.unwrap().resource_version(), rv_run, "no-op writes to the run");
    assert_eq!(
        apis.attempts.get(&format!("{name}-1")).await.unwrap().resource_version(),
        rv_att,
        "no-op writes to the attempt"
    );

    // Metrics and health, from the controller's own server.
    let metrics = ctrl.http_get("/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    for line in [
        r#"cihealer_run_transitions_total{phase="Fixed"} 1"#,
        r#"cihealer_run_transitions_total{phase="Running"} 1"#,
        "cihealer_jobs_created_total 1",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    let finished = metrics.lines().find(|l| l.starts_with("cihealer_attempts_finished_total{")).unwrap_or_default();
    assert!(
        finished.starts_with(&format!(
            r#"cihealer_attempts_finished_total{{namespace="{}",repository="Codertocat/Hello-World","#,
            apis.ns
        )) && finished.ends_with(r#",outcome="Succeeded",reason="ValidationPassed"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("cihealer_reconcile_duration_seconds_bucket"), "{metrics}");
    assert!(ctrl.http_get("/readyz").await.starts_with("HTTP/1.1 200"));
    assert!(ctrl.http_get("/healthz").await.starts_with("HTTP/1.1 200"));
    // The log names each transition.
    let logs = ctrl.logs();
    for want in ["created HealingAttempt", "created Job", "reason=\"Fixed\""] {
        assert!(logs.contains(want), "missing {want} in logs:\n{logs}");
    }
}

#[tokio::test]
async fn failing_attempts_escalate_after_exactly_three() {
    let (apis, ctrl) = setup("escalate").await;
    let run = apis.runs.create(&PostParams::default(), &sample_run(&apis.ns)).await.unwrap();
    let name = run.name_any();
    for n in 1..=3 {
        let job = apis.job(&format!("{name}-{n}")).await;
        finish_attempt(
            &apis,
            &job,
            &verdict(Outcome::Failed, "ValidationFailed", &format!("prettier --check still fails ({n})")),
        )
        .await;
    }
    let esc = apis.run_phase(&name, "Escalated").await;
    let st = esc.status.as_ref().unwrap();
    assert_eq!(st.attempts, 3);
    assert_eq!(st.escalation_reason.as_deref(), Some("all 3 attempts failed; the last failed with ValidationFailed"));
    assert_eq!(cond(&esc, "Escalated"), ("True", "AttemptsExhausted"));
    // Let a wrong controller reconcile the escalated run once more (it would make a 4th), then count.
    reconciled_again(&apis, &ctrl, &name).await;
    assert_eq!(apis.job_names().await, [format!("{name}-1"), format!("{name}-2"), format!("{name}-3")]);
    assert_eq!(apis.attempts.list(&ListParams::default()).await.unwrap().items.len(), 3);
    let reasons = apis.event_reasons("HealingRun", &name).await;
    assert_eq!(apis.event_count("HealingRun", &name, "AttemptFailed").await, 3, "{reasons:?}");
    assert_eq!(apis.event_count("HealingRun", &name, "AttemptStarted").await, 3, "{reasons:?}");
    for n in 1..=3 {
        assert_eq!(apis.event_count("HealingAttempt", &format!("{name}-{n}"), "AttemptFailed").await, 1);
    }
    assert!(reasons.iter().any(|r| r == "Escalated"), "{reasons:?}");
    // Each attempt's Event on the run names that attempt as its related object (events.k8s.io/v1).
    let evs = kube::Api::<k8s_openapi::api::events::v1::Event>::namespaced(apis.client.clone(), &apis.ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut related: Vec<String> = evs
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str()))
        .filter(|e| e.reason.as_deref() == Some("AttemptFailed"))
        .filter_map(|e| e.related.as_ref()?.name.clone())
        .collect();
    related.sort();
    assert_eq!(related, [format!("{name}-1"), format!("{name}-2"), format!("{name}-3")]);
}

#[tokio::test]
async fn a_pod_without_a_verdict_is_a_failed_attempt_and_the_next_one_starts() {
    let (apis, _ctrl) = setup("noverdict").await;
    let run = apis.runs.create(&PostParams::default(), &sample_run(&apis.ns)).await.unwrap();
    let name = run.name_any();
    let job = apis.job(&format!("{name}-1")).await;
    // The agent claims success on stdout, but validate leaves no verdict.
    finish_attempt(&apis, &job, "").await;
    apis.job(&format!("{name}-2")).await;
    let a1 = apis.attempts.get(&format!("{name}-1")).await.unwrap();
    assert_eq!(a1.status.unwrap().failure_reason.as_deref(), Some("VerdictMissing"));

    // A checkout step that fails with its own reason.
    let job2 = apis.job(&format!("{name}-2")).await;
    let outcomes = [
        ci_healer::runner::sim::StepOutcome::new("prepare", 0, None),
        ci_healer::runner::sim::StepOutcome::new(
            "checkout",
            128,
            Some(r#"{"reason":"CommitNotFound","message":"3484a3f is not in Codertocat/Hello-World"}"#),
        ),
    ];
    support::report_pod(&apis, &job2, &outcomes).await;
    apis.job(&format!("{name}-3")).await;
    let a2 = apis.attempts.get(&format!("{name}-2")).await.unwrap().status.unwrap();
    assert_eq!(a2.failure_reason.as_deref(), Some("CommitNotFound"));
}

#[tokio::test]
async fn abort_during_an_attempt_stops_the_job() {
    let (apis, ctrl) = setup("abort").await;
    let run = apis.runs.create(&PostParams::default(), &sample_run(&apis.ns)).await.unwrap();
    let name = run.name_any();
    let job = apis.job(&format!("{name}-1")).await;
    let pod = support::start_attempt_pod(&apis, &job).await;
    apis.run_phase(&name, "Running").await;

    // The documented command: kubectl patch hrun NAME --type merge -p '{"spec":{"action":"abort"}}'
    let (ok, out) = support::kubectl(&[
        "patch",
        "hrun",
        &name,
        "-n",
        &apis.ns,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"action":"abort"}}"#,
    ]);
    assert!(ok, "{out}");
    let aborted = apis.run_phase(&name, "Aborted").await;
    assert_eq!(cond(&aborted, "Aborted"), ("True", "AbortRequested"));

    support::wait_gone(&apis.jobs, &job.name_any()).await;
    support::wait_gone(&apis.pods, &pod.name_any()).await;
    // The controller deletes the Job, then writes the attempt's status: wait for it.
    support::wait_for("the attempt to fail as Aborted", Duration::from_secs(20), || async {
        let a = apis.attempts.get(&format!("{name}-1")).await.ok()?.status?;
        (a.failure_reason.as_deref() == Some("Aborted")).then_some(())
    })
    .await;
    reconciled_again(&apis, &ctrl, &name).await;
    assert!(apis.job_names().await.is_empty(), "no further attempt after an abort");
    assert_eq!(apis.runs.get(&name).await.unwrap().status.unwrap().phase, Some(RunPhase::Aborted));
}

#[tokio::test]
async fn a_second_run_for_the_same_failure_is_a_duplicate_and_starts_no_job() {
    let (apis, ctrl) = setup("dedup").await;
    let first = apis.runs.create(&PostParams::default(), &sample_run(&apis.ns)).await.unwrap().name_any();
    apis.job(&format!("{first}-1")).await;
    // The same job re-run on GitHub: a new delivery, run attempt 2, same commit and failure.
    let mut second = run_named(&apis.ns, "gh-2202229078-2-289782452");
    second.spec.source.run_attempt = Some(2);
    second.spec.source.job_id = Some(289782452);
    let second = apis.runs.create(&PostParams::default(), &second).await.unwrap().name_any();

    let runs = apis.runs.clone();
    let dup = support::wait_for("the second run to be marked duplicate", Duration::from_secs(30), || {
        let runs = runs.clone();
        let second = second.clone();
        async move {
            let r = runs.get(&second).await.ok()?;
            r.status.as_ref()?.duplicate_of.is_some().then_some(r)
        }
    })
    .await;
    let st = dup.status.as_ref().unwrap();
    assert_eq!(st.duplicate_of.as_deref(), Some(first.as_str()));
    assert_eq!(st.phase, Some(RunPhase::Queued));
    assert_eq!(cond(&dup, "Duplicate"), ("True", "DuplicateOfActiveRun"));
    assert_eq!(st.attempts, 0);
    reconciled_again(&apis, &ctrl, &second).await;
    assert_eq!(apis.job_names().await, [format!("{first}-1")], "the duplicate starts no Job");

    // When the first is fixed, the duplicate ends Fixed too, still without a Job of its own.
    let job = apis.job(&format!("{first}-1")).await;
    finish_attempt(&apis, &job, &verdict(Outcome::Passed, "ValidationPassed", "formatted")).await;
    apis.run_phase(&first, "Fixed").await;
    let d = apis.run_phase(&second, "Fixed").await;
    assert_eq!(cond(&d, "Fixed"), ("True", "DuplicateFixed"));
    assert_eq!(apis.job_names().await, [format!("{first}-1")]);

    // A different failure on the same commit is not a duplicate.
    let mut other = run_named(&apis.ns, "gh-2202229078-1-289782999");
    other.spec.source.job_name = Some("unit-tests".into());
    other.spec.source.failed_steps = vec!["Run cargo test".into()];
    let other = apis.runs.create(&PostParams::default(), &other).await.unwrap().name_any();
    apis.job(&format!("{other}-1")).await;
}

/// The GitHub Actions app's check run copies its workflow job (same id). The Sensor and the receiver
/// drop such deliveries; one created another way ends `Skipped`, reason `ActionsCheckRun`, naming the
/// job's run, and starts no Job (no GitHub identity needed: the job's run is in the namespace).
#[tokio::test]
async fn an_actions_check_run_that_gets_through_is_skipped_as_the_copy_of_its_job() {
    let (apis, ctrl) = setup("actions-check").await;
    let job_run = apis.runs.create(&PostParams::default(), &sample_run(&apis.ns)).await.unwrap().name_any();
    apis.job(&format!("{job_run}-1")).await;
    let mut check = run_named(&apis.ns, "gh-check-run-289782451");
    let src = &mut check.spec.source;
    src.event = SourceEvent::CheckRun;
    (src.run_id, src.run_attempt, src.workflow_name, src.failed_steps) = (None, None, None, Vec::new());
    src.check_suite_id = Some(118578147);
    apis.runs.create(&PostParams::default(), &check).await.unwrap();
    let skipped = apis.run_phase("gh-check-run-289782451", "Skipped").await;
    assert_eq!(cond(&skipped, "Skipped"), ("True", "ActionsCheckRun"));
    let message = &skipped.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "Skipped").unwrap().message;
    assert!(message.contains(&job_run), "{message}");
    reconciled_again(&apis, &ctrl, "gh-check-run-289782451").await;
    assert_eq!(apis.job_names().await, vec![format!("{job_run}-1")], "no Job for the copy");
}

#[tokio::test]
async fn restarting_the_controller_mid_attempt_keeps_one_job_per_attempt() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "restart").await;
    let apis = Apis::new(&client, &ns);
    let mut ctrl = ControllerProcess::start(&ns, None);
    let name = apis.runs.create(&PostParams::default(), &sample_run(&ns)).await.unwrap().name_any();
    let job1 = apis.job(&format!("{name}-1")).await;
    support::start_attempt_pod(&apis, &job1).await;
    apis.run_phase(&name, "Running").await;

    // Kill it in the middle of attempt 1 and start a new one; assert only once the new one holds the
    // Lease (a few seconds after start: the old Lease must expire) and has reconciled the run.
    ctrl.kill();
    let mut ctrl = ControllerProcess::start(&ns, None);
    ctrl.wait_log("acquired leadership", Duration::from_secs(30)).await;
    let c = &ctrl;
    support::wait_for("the new leader to reconcile the run", Duration::from_secs(20), move || async move {
        (c.metric(RUN_RECONCILES).await >= 1.0 && c.metric(ATTEMPT_RECONCILES).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(apis.job_names().await, [format!("{name}-1")]);
    finish_attempt(&apis, &job1, &verdict(Outcome::Failed, "ValidationFailed", "still failing")).await;
    let job2 = apis.job(&format!("{name}-2")).await;

    // Kill it right after it created attempt 2's Job, then kill its successor right after that one
    // takes the Lease (in the middle of its first reconciles).
    ctrl.kill();
    let mut ctrl = ControllerProcess::start(&ns, None);
    ctrl.wait_log("acquired leadership", Duration::from_secs(30)).await;
    ctrl.kill();
    let ctrl = ControllerProcess::start(&ns, None);
    finish_attempt(&apis, &job2, &verdict(Outcome::Passed, "ValidationPassed", "fixed")).await;
    let fixed = apis.run_phase(&name, "Fixed").await;
    assert_eq!(fixed.status.unwrap().attempts, 2);
    reconciled_again(&apis, &ctrl, &name).await;
    assert_eq!(apis.job_names().await, [format!("{name}-1"), format!("{name}-2")]);
    for j in [&job1, &job2] {
        let pods = apis
            .pods
            .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={}", j.name_any())))
            .await
            .unwrap();
        assert_eq!(pods.items.len(), 1, "one pod per Job");
    }
    assert!(!ctrl.logs().contains("panicked"), "{}", ctrl.logs());
}

#[tokio::test]
async fn an_unknown_profile_sets_accepted_false_and_waits_for_a_fix() {
    let (apis, _ctrl) = setup("badprofile").await;
    let mut run = sample_run(&apis.ns);
    run.spec.policy.agent = "quantum".into();
    let name = apis.runs.create(&PostParams::default(), &run).await.unwrap().name_any();
    let runs = apis.runs.clone();
    let r = support::wait_for("Accepted=False", Duration::from_secs(30), || {
        let runs = runs.clone();
        let name = name.clone();
        async move {
            let r = runs.get(&name).await.ok()?;
            r.status.as_ref()?.conditions.iter().any(|c| c.type_ == "Accepted" && c.status == "False").then_some(r)
        }
    })
    .await;
    assert_eq!(cond(&r, "Accepted"), ("False", "UnknownProfile"));
    let msg = &r.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "Accepted").unwrap().message;
    assert!(msg.contains("'quantum' is not a configured profile"), "{msg}");
    assert!(apis.job_names().await.is_empty());
    // Fixing the spec lets it proceed.
    apis.runs
        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"policy": {"agent": "frontend"}}})))
        .await
        .unwrap();
    apis.job(&format!("{name}-1")).await;
    // The attempt controller may create the Job before the run's status write lands: wait for it.
    let r = support::wait_for("Accepted=True", Duration::from_secs(30), || {
        let (runs, name) = (runs.clone(), name.clone());
        async move {
            let r = runs.get(&name).await.ok()?;
            r.status.as_ref()?.conditions.iter().any(|c| c.type_ == "Accepted" && c.status == "True").then_some(r)
        }
    })
    .await;
    assert_eq!(cond(&r, "Accepted"), ("True", "SpecValid"));
    assert_eq!(r.status.unwrap().agent.as_deref(), Some("frontend"));
}

#[tokio::test]
async fn pull_request_mode_is_reported_as_not_implemented_instead_of_silently_proposing() {
    let (apis, _ctrl) = setup("prmode").await;
    let mut run = sample_run(&apis.ns);
    run.spec.policy.mode = ci_healer::crd::HealingMode::PullRequest;
    let name = apis.runs.create(&PostParams::default(), &run).await.unwrap().name_any();
    let runs = apis.runs.clone();
    let r = support::wait_for("Accepted=False", Duration::from_secs(30), || {
        let runs = runs.clone();
        let name = name.clone();
        async move {
            let r = runs.get(&name).await.ok()?;
            r.status.as_ref()?.conditions.iter().any(|c| c.type_ == "Accepted" && c.status == "False").then_some(r)
        }
    })
    .await;
    assert_eq!(cond(&r, "Accepted"), ("False", "ModeNotImplemented"));
    assert!(apis.job_names().await.is_empty(), "no attempt for a mode nothing implements");
    // The Event follows the status write: wait for it rather than race it.
    support::wait_for("the InvalidSpec Event", Duration::from_secs(10), || async {
        apis.event_reasons("HealingRun", &name).await.iter().any(|e| e == "InvalidSpec").then_some(())
    })
    .await;
    apis.runs
        .patch(&name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"policy": {"mode": "propose"}}})))
        .await
        .unwrap();
    apis.job(&format!("{name}-1")).await;
    assert_eq!(cond(&apis.runs.get(&name).await.unwrap(), "Accepted"), ("True", "SpecValid"));
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "leader").await;
    let apis = Apis::new(&client, &ns);
    let mut a = ControllerProcess::start(&ns, None);
    a.wait_log("acquired leadership", Duration::from_secs(20)).await;
    let b = ControllerProcess::start(&ns, None);
    b.wait_log("waiting for leadership", Duration::from_secs(20)).await;

    let name = apis.runs.create(&PostParams::default(), &sample_run(&ns)).await.unwrap().name_any();
    let job1 = apis.job(&format!("{name}-1")).await;
    assert!(!b.logs().contains("acquired leadership"), "the standby must not lead while the leader lives");
    assert!(!b.logs().contains("created"), "the standby must not act:\n{}", b.logs());

    a.kill();
    b.wait_log("acquired leadership", Duration::from_secs(20)).await;
    finish_attempt(&apis, &job1, &verdict(Outcome::Passed, "ValidationPassed", "ok")).await;
    apis.run_phase(&name, "Fixed").await;
    assert_eq!(apis.job_names().await, [format!("{name}-1")]);
}

#[tokio::test]
async fn a_leftover_attempt_of_a_deleted_run_blocks_nothing_and_starts_nothing() {
    let (apis, ctrl) = setup("leftover").await;
    let run = sample_run(&apis.ns);
    let name = run.metadata.name.clone().unwrap();
    // What a deleted run with the same name left behind before the garbage collector got to it. The
    // real garbage collector deletes it (its owner's uid does not exist); a finalizer holds it
    // while the test looks, as any finalizer of a slow cleanup would.
    let leftover: ci_healer::crd::HealingAttempt = serde_json::from_value(json!({
        "apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingAttempt",
        "metadata": {"name": format!("{name}-1"), "finalizers": ["cihealer.dev/test-hold"], "ownerReferences": [{
            "apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun", "name": name,
            "uid": "00000000-0000-0000-0000-000000000001", "controller": true}]},
        "spec": {"runName": name, "attempt": 1, "profile": "frontend", "healerImage": "healer:test",
                 "checkout": {"image": "healer:test"}, "agent": {"image": "node:22"}, "validate": {"image": "node:22"},
                 "activeDeadlineSeconds": 600, "ttlSecondsAfterFinished": 60}
    }))
    .unwrap();
    apis.attempts.create(&PostParams::default(), &leftover).await.unwrap();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();
    ctrl.wait_log("AttemptNameTaken", Duration::from_secs(20)).await;
    let attempts = apis.attempts.clone();
    let attempt_name = format!("{name}-1");
    support::wait_for("the garbage collector to delete the leftover", Duration::from_secs(30), || {
        let (attempts, n) = (attempts.clone(), attempt_name.clone());
        async move { attempts.get(&n).await.ok()?.metadata.deletion_timestamp.map(|_| ()) }
    })
    .await;
    assert!(apis.job_names().await.is_empty(), "no Job for a leftover attempt");

    // The garbage collector's deletion completes; the run then starts its own attempt.
    let release = json!({"metadata": {"finalizers": null}});
    apis.attempts.patch(&attempt_name, &PatchParams::default(), &Patch::Merge(&release)).await.unwrap();
    let job = apis.job(&attempt_name).await;
    let attempt = apis.attempts.get(&attempt_name).await.unwrap();
    let run_uid = apis.runs.get(&name).await.unwrap().metadata.uid;
    assert_eq!(Some(&attempt.owner_references()[0].uid), run_uid.as_ref());
    finish_attempt(&apis, &job, &verdict(Outcome::Passed, "ValidationPassed", "ok")).await;
    apis.run_phase(&name, "Fixed").await;
}

/// A Job with the attempt's name that the attempt does not own (someone else's, without the
/// controller's labels) is neither adopted nor replaced: the attempt reports `JobNameTaken` and the
/// Job stays as it was. Such a Job is not in the controller's Job cache (it watches its own Jobs
/// only), so this is also the path on which the API server is asked: creating the Job answers 409,
/// and the GET that follows shows whose it is.
#[tokio::test]
async fn a_foreign_job_with_the_attempts_name_is_reported_and_left_alone() {
    let (apis, _ctrl) = setup("jobtaken").await;
    let run = run_named(&apis.ns, "gh-2202229078-1-289782453");
    let name = format!("{}-1", run.name_any());
    let foreign: k8s_openapi::api::batch::v1::Job = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"team": "someone-else"}},
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "work", "image": "registry.example/work:1"}]}}}
    }))
    .unwrap();
    apis.jobs.create(&PostParams::default(), &foreign).await.unwrap();
    apis.runs.create(&PostParams::default(), &run).await.unwrap();

    let attempts = apis.attempts.clone();
    let taken = support::wait_for("the attempt to report the name taken", Duration::from_secs(30), || {
        let (attempts, name) = (attempts.clone(), name.clone());
        async move {
            let a = attempts.get(&name).await.ok()?;
            let c = a.status.as_ref()?.conditions.iter().find(|c| c.type_ == "JobCreated")?.clone();
            (c.status == "False").then_some(c)
        }
    })
    .await;
    assert_eq!(taken.reason, "JobNameTaken", "{taken:?}");
    let job = apis.jobs.get(&name).await.unwrap();
    assert!(job.metadata.owner_references.is_none(), "not adopted: {:?}", job.metadata.owner_references);
    assert_eq!(job.labels().get("team").map(String::as_str), Some("someone-else"));
    assert_eq!(job.spec.and_then(|s| s.suspend), Some(true), "not edited");
    assert_eq!(apis.job_names().await, [name], "no second Job");
}
