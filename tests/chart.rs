//! The Helm chart: rendered output and generated copies match the code, the API server accepts every
//! object, and the controller works under exactly the RBAC the chart grants.

mod support;

use std::time::{Duration, Instant};

use ci_healer::crd::{FailureExcerpt, FailureSource, HealingPolicy, HealingRun, HealingRunSpec};
use ci_healer::runner::sim;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};

fn read(path: &str) -> String {
    std::fs::read_to_string(support::root().join(path)).unwrap_or_default()
}

#[test]
fn generated_copies_match() {
    let rendered = support::render_chart("ci-healer", &[]);
    assert!(
        rendered == read("charts/rendered/ci-healer.yaml"),
        "charts/rendered/ci-healer.yaml is stale: run `make generate`"
    );
    let rbac = support::render_chart(
        "ci-healer",
        &["--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"],
    );
    assert!(rbac == read("config/rbac/controller.yaml"), "config/rbac/controller.yaml is stale: run `make generate`");
    assert!(
        read("charts/ci-healer/crds/cihealer.dev.yaml") == ci_healer::crd::crds_yaml(),
        "charts/ci-healer/crds/ is stale: run `make generate`"
    );
    let cfg = ci_healer::config::ControllerConfig::load(&support::root().join("config/samples/controller-config.yaml"))
        .unwrap();
    assert_eq!(cfg.git_token_secret.unwrap().name, "ci-healer-github");
    // The ConfigMap the chart renders is a valid controller config.
    let docs: Vec<serde_json::Value> =
        serde_yaml_ng::Deserializer::from_str(&rendered).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    let cm = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    ci_healer::config::ControllerConfig::from_yaml(cm["data"]["config.yaml"].as_str().unwrap())
        .expect("chart config parses");
}

#[test]
fn api_server_accepts_the_rendered_chart() {
    let (_, _) = support::kubectl(&["create", "namespace", "ci-healer"]);
    // Server-side apply: one request per object, so it cannot race the RBAC test that applies the
    // same ServiceAccount (a client-side apply reads, then creates).
    let (ok, out) = support::kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=ci-healer-chart-test",
        "--dry-run=server",
        "-f",
        support::root().join("charts/rendered/ci-healer.yaml").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    for kind in
        ["serviceaccount/ci-healer", "clusterrole.rbac.authorization.k8s.io/ci-healer", "deployment.apps/ci-healer"]
    {
        assert!(out.contains(kind), "{kind} missing in {out}");
    }
}

/// The chart's ServiceAccount, ClusterRole and ClusterRoleBinding exactly as `helm template` renders
/// them, re-aimed at the test: the ServiceAccount in `ns`, the ClusterRole and its binding named
/// `ci-healer-<ns>` (so tests that edit the rules do not share one), and `edit` applied to the
/// ClusterRole's rules first. Returns a kubeconfig that impersonates the ServiceAccount, so every
/// request made with it is authorised as the chart's controller is.
async fn install_chart_rbac(
    client: &kube::Client,
    ns: &str,
    edit: impl FnOnce(&mut Vec<PolicyRule>),
) -> std::path::PathBuf {
    let rendered = support::render_chart(
        ns,
        &["--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"],
    );
    let docs: Vec<serde_json::Value> =
        serde_yaml_ng::Deserializer::from_str(&rendered).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    let doc = |kind: &str| {
        docs.iter().find(|d| d["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {rendered}")).clone()
    };
    let name = format!("ci-healer-{ns}");
    let sa: ServiceAccount = serde_json::from_value(doc("ServiceAccount")).unwrap();
    assert_eq!(sa.metadata.namespace.as_deref(), Some(ns));
    let sa_name = sa.name_any();
    Api::<ServiceAccount>::namespaced(client.clone(), ns).create(&PostParams::default(), &sa).await.unwrap();
    let mut role: ClusterRole = serde_json::from_value(doc("ClusterRole")).unwrap();
    role.metadata.name = Some(name.clone());
    edit(role.rules.get_or_insert_default());
    Api::<ClusterRole>::all(client.clone()).create(&PostParams::default(), &role).await.unwrap();
    let mut binding: ClusterRoleBinding = serde_json::from_value(doc("ClusterRoleBinding")).unwrap();
    binding.metadata.name = Some(name.clone());
    binding.role_ref.name = name;
    let subjects = binding.subjects.as_ref().unwrap();
    assert_eq!((subjects[0].name.as_str(), subjects[0].namespace.as_deref()), (sa_name.as_str(), Some(ns)));
    Api::<ClusterRoleBinding>::all(client.clone()).create(&PostParams::default(), &binding).await.unwrap();

    let mut kc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(support::kubeconfig()).unwrap()).unwrap();
    kc["users"][0]["user"]["as"] = format!("system:serviceaccount:{ns}:{sa_name}").into();
    let path = std::env::temp_dir().join(format!("kubeconfig-{ns}"));
    std::fs::write(&path, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    path
}

/// Remove `verb` on `resource` from every rule (and a rule left with no verb), as a chart that
/// forgot it would.
fn without(resource: &'static str, verb: &'static str) -> impl FnOnce(&mut Vec<PolicyRule>) {
    move |rules| {
        let before: usize = rules.iter().map(|r| r.verbs.len()).sum();
        for r in rules.iter_mut().filter(|r| r.resources.as_ref().is_some_and(|rs| rs.iter().any(|x| x == resource))) {
            assert!(r.resources.as_ref().unwrap().len() == 1, "rule {r:?} covers more than {resource}");
            r.verbs.retain(|v| v != verb);
        }
        rules.retain(|r| !r.verbs.is_empty());
        assert_eq!(
            rules.iter().map(|r| r.verbs.len()).sum::<usize>(),
            before - 1,
            "the chart grants no {verb} on {resource}"
        );
    }
}

/// The first request the API server refused the controller, from its log.
fn forbidden(ctrl: &support::ControllerProcess) -> Option<String> {
    ctrl.logs().lines().find(|l| l.contains("forbidden")).map(str::to_string)
}

/// Poll `f` every 200 ms until it returns `Some`; `Err` with the line as soon as the controller logs
/// a refused request; panic after `timeout`.
async fn until<T, Fut>(
    what: &str,
    ctrl: &support::ControllerProcess,
    runner: &support::HostRunner,
    mut f: impl FnMut() -> Fut,
) -> Result<T, String>
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(line) = forbidden(ctrl) {
            return Err(line);
        }
        if let Some(v) = f().await {
            return Ok(v);
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "timed out waiting for {what}\n--- controller\n{}\n--- host runner\n{}",
            ctrl.logs(),
            runner.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn run(name: &str, sha: &str, agent: &str, excerpt: &str) -> HealingRun {
    HealingRun::new(
        name,
        HealingRunSpec {
            source: FailureSource {
                repository: support::attempt::REPO.into(),
                branch: "main".into(),
                head_sha: sha.into(),
                ..Default::default()
            },
            failure: Some(FailureExcerpt { excerpt: excerpt.into(), error_type: None }),
            policy: HealingPolicy { max_attempts: 1, agent: agent.into(), ..Default::default() },
            action: None,
            action_request: None,
        },
    )
}

/// The controller under the chart's RBAC (edited by `edit`), impersonating the chart's
/// ServiceAccount, with the host runner running the attempt pods as local processes:
///
/// - run `fmt`: a real rustfmt failure in a real git repository; `cargo fmt` fixes it, `cargo fmt
///   --check` validates it, and the controller reads the patch from the validate step's log
///   (`pods/log get`) and keeps it in a ConfigMap (`configmaps create`) and says so in an Event;
/// - run `abort`, at the same time: its agent step runs (a long `sleep`) when a person aborts the
///   run; the controller deletes the Job (`jobs delete`) and its pods (`pods deletecollection`) and
///   records the attempt as aborted.
///
/// `Err` with the log line as soon as the API server refuses the controller anything.
async fn heal_and_abort_under_the_chart_rbac(
    prefix: &str,
    edit: impl FnOnce(&mut Vec<PolicyRule>),
) -> Result<(), String> {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, prefix).await;
    let apis = support::Apis::new(&client, &ns);
    let kubeconfig = install_chart_rbac(&client, &ns, edit).await;
    let repo = support::attempt::repo(&support::attempt::as_refs(&support::attempt::crate_files(
        "pub fn next(x:i32)->i32{\n    x+1\n}\n",
    )));
    let later = support::attempt::git(&repo.dir.path().join("work"), &["rev-parse", "HEAD"]);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("config.yaml");
    let settings = serde_json::json!({"gitBaseUrl": repo.base_url});
    std::fs::write(
        &cfg,
        serde_yaml_ng::to_string(&serde_json::json!({
            "healerImage": "healer:test",
            // One remembered fix per repository: `fmt`'s fix makes the controller forget the older one
            // planted below (`configmaps delete`, the retention bound).
            "memory": {"maxEntriesPerRepository": 1},
            "profiles": {
                "rust": {"image": "docker.io/library/rust:1.95", "settings": settings},
                "general": {
                    "image": "docker.io/library/buildpack-deps:bookworm",
                    "agent": {"command": ["sleep", "300"]},
                    "settings": settings,
                },
            }
        }))
        .unwrap(),
    )
    .unwrap();
    // An older remembered fix of another failure in the same repository.
    let older = {
        let mut r = run("older", &repo.sha, "rust", "old failure");
        r.metadata.namespace = Some(ns.clone());
        let st = ci_healer::crd::HealingRunStatus {
            error_hash: Some("0123456789abcdef".into()),
            failure_class: Some(ci_healer::triage::FailureClass::RustClippy),
            ..Default::default()
        };
        ci_healer::controller::memory::build_entry(&r, &st, "older-1", "--- a/old\n+++ b/old\n", "an older fix")
            .unwrap()
    };
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    cms.create(&PostParams::default(), &older).await.unwrap();
    let runner = support::HostRunner::start(&ns);
    let ctrl = support::ControllerProcess::start_with_kubeconfig(&ns, Some(&cfg), &kubeconfig);
    let fmt_excerpt = "Diff in /home/runner/work/demo/demo/src/lib.rs at line 1:\n-pub fn next(x:i32)->i32{\n+pub fn next(x: i32) -> i32 {\n##[error]Process completed with exit code 1.\n";
    apis.runs.create(&PostParams::default(), &run("fmt", &repo.sha, "rust", fmt_excerpt)).await.unwrap();
    let abort_excerpt = "error: could not compile `demo` (lib) due to 1 previous error\n";
    apis.runs.create(&PostParams::default(), &run("abort", &later, "general", abort_excerpt)).await.unwrap();

    // The abort, while the attempt's agent step runs on the host runner.
    let job =
        until("Job abort-1", &ctrl, &runner, || async { apis.jobs.get_opt("abort-1").await.ok().flatten() }).await?;
    let lp = ListParams::default().labels(&format!("{}={}", sim::JOB_NAME_LABEL, job.name_any()));
    let pod = until("the agent step of abort-1 running", &ctrl, &runner, || async {
        let pods = apis.pods.list(&lp).await.ok()?.items;
        pods.into_iter().find(|p| {
            let st = p.status.as_ref().and_then(|s| s.init_container_statuses.as_ref());
            st.is_some_and(|st| {
                st.iter().any(|c| c.name == "agent" && c.state.as_ref().is_some_and(|s| s.running.is_some()))
            })
        })
    })
    .await?;
    let (ok, out) = support::kubectl(&[
        "-n",
        &ns,
        "patch",
        "hrun",
        "abort",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"action":"abort"}}"#,
    ]);
    assert!(ok, "{out}");
    let attempt = until("attempt abort-1 recorded as aborted", &ctrl, &runner, || async {
        let a = apis.attempts.get("abort-1").await.ok()?;
        (a.status.as_ref()?.failure_reason.as_deref() == Some("Aborted")).then_some(a)
    })
    .await?;
    assert_eq!(format!("{:?}", attempt.status.unwrap().phase.unwrap()), "Failed");
    until("Job abort-1 deleted", &ctrl, &runner, || async {
        apis.jobs.get_opt("abort-1").await.unwrap().is_none().then_some(())
    })
    .await?;
    until("the pod of abort-1 deleted", &ctrl, &runner, || async {
        apis.pods.get_opt(&pod.name_any()).await.unwrap().is_none().then_some(())
    })
    .await?;
    until("run abort Aborted", &ctrl, &runner, || async {
        let r = apis.runs.get("abort").await.ok()?;
        (format!("{:?}", r.status?.phase?) == "Aborted").then_some(())
    })
    .await?;

    // The heal, with a real patch read from the validate step's log.
    let st = until("run fmt finished", &ctrl, &runner, || async {
        let s = apis.runs.get("fmt").await.ok()?.status?;
        s.phase.is_some_and(|p| p.is_terminal()).then_some(s)
    })
    .await?;
    assert_eq!(format!("{:?}", st.phase.unwrap()), "Fixed", "{st:?}\n{}\n{}", ctrl.logs(), runner.logs());
    let cm_name = st.patch.expect("patch ref").config_map.expect("patch ConfigMap");
    let cm = Api::<ConfigMap>::namespaced(client.clone(), &ns).get(&cm_name).await.unwrap();
    let patch = &cm.data.unwrap()["patch.diff"];
    assert!(patch.contains("-pub fn next(x:i32)->i32{") && patch.contains("+pub fn next(x: i32) -> i32 {"), "{patch}");
    until("the Fixed Event", &ctrl, &runner, || async {
        (apis.event_count("HealingRun", "fmt", "Fixed").await >= 1).then_some(())
    })
    .await?;
    until("the older remembered fix forgotten", &ctrl, &runner, || async {
        cms.get_opt(&older.name_any()).await.unwrap().is_none().then_some(())
    })
    .await?;
    // Nothing refused up to here, including what the controller did after the last wait.
    if let Some(line) = forbidden(&ctrl) {
        return Err(line);
    }

    let name = format!("ci-healer-{ns}");
    let _ = Api::<ClusterRoleBinding>::all(client.clone()).delete(&name, &DeleteParams::default()).await;
    let _ = Api::<ClusterRole>::all(client.clone()).delete(&name, &DeleteParams::default()).await;
    Ok(())
}

#[tokio::test]
async fn controller_heals_and_aborts_under_the_charts_rbac_only() {
    heal_and_abort_under_the_chart_rbac("rbac", |_| {}).await.expect("the chart's RBAC is missing a permission");
}

// The deliberate bugs: a chart that forgot one verb the controller needs. Each must fail the test
// above, with the refused request named.

#[tokio::test]
async fn the_rbac_test_catches_a_chart_without_pods_log_get() {
    let err = heal_and_abort_under_the_chart_rbac("rbac-log", without("pods/log", "get")).await.unwrap_err();
    assert!(
        err.contains(r#"cannot get resource \"pods/log\""#) || err.contains(r#"cannot get resource "pods/log""#),
        "{err}"
    );
}

#[tokio::test]
async fn the_rbac_test_catches_a_chart_without_jobs_delete() {
    let err = heal_and_abort_under_the_chart_rbac("rbac-job", without("jobs", "delete")).await.unwrap_err();
    assert!(err.contains("cannot delete resource") && err.contains("jobs"), "{err}");
}

#[tokio::test]
async fn the_rbac_test_catches_a_chart_without_pods_deletecollection() {
    let err = heal_and_abort_under_the_chart_rbac("rbac-pods", without("pods", "deletecollection")).await.unwrap_err();
    assert!(err.contains("cannot deletecollection resource") && err.contains("pods"), "{err}");
}

/// With a GitHub identity in `config.github`, the chart lets the controller's ServiceAccount `get`
/// exactly the Secrets it names, in `github.secretNamespace`; no other Secret, no list or watch.
/// Without one it renders nothing of the kind (the default render above has no Secret rule).
#[test]
fn the_controller_may_get_only_the_github_identitys_secrets() {
    let ns = "chart-github-secrets";
    let rendered = support::render_chart(
        "ci-healer",
        &[
            "--show-only",
            "templates/github-secret-rbac.yaml",
            "--set",
            "config.github.app.appId=4242",
            "--set",
            "config.github.app.privateKeySecret.name=ci-healer-github-app",
            "--set",
            "config.github.app.privateKeySecret.key=private-key.pem",
            "--set",
            &format!("config.github.secretNamespace={ns}"),
        ],
    );
    assert!(!read("charts/rendered/ci-healer.yaml").contains("secrets"), "no Secret rule without config.github");
    let _ = support::kubectl(&["create", "namespace", ns]);
    let path = std::env::temp_dir().join("ci-healer-chart-github-secrets.yaml");
    std::fs::write(&path, &rendered).unwrap();
    let (ok, out) = support::kubectl(&["apply", "--server-side", "--force-conflicts", "-f", path.to_str().unwrap()]);
    assert!(ok, "{out}");
    let sa = "--as=system:serviceaccount:ci-healer:ci-healer";
    let can = |verb: &str, what: &str| support::kubectl(&["auth", "can-i", verb, what, "-n", ns, sa]).1;
    assert_eq!(can("get", "secret/ci-healer-github-app").trim(), "yes");
    for (verb, what) in [
        ("get", "secret/another"),
        ("list", "secrets"),
        ("watch", "secrets"),
        ("update", "secret/ci-healer-github-app"),
    ] {
        assert_eq!(can(verb, what).trim(), "no", "{verb} {what}");
    }
    let (_, elsewhere) =
        support::kubectl(&["auth", "can-i", "get", "secret/ci-healer-github-app", "-n", "default", sa]);
    assert_eq!(elsewhere.trim(), "no", "only in github.secretNamespace");
}

/// Attempt pods get a NetworkPolicy in each namespace that runs them: the API server accepts it, it
/// selects exactly the pods the controller's own Job builder labels (a real attempt Job's pod
/// template, not a copy of its labels), and it allows no ingress and no cluster-internal egress:
/// only DNS in kube-system and HTTPS outside the private, CGNAT and link-local ranges.
#[test]
fn attempt_pods_get_a_network_policy_that_cuts_the_cluster_off() {
    let ns = "chart-attempt-netpol";
    let rendered = support::render_chart(
        "ci-healer",
        &[
            "--show-only",
            "templates/attempt-networkpolicy.yaml",
            "--set",
            &format!("attemptNetworkPolicy.namespaces={{{ns},{ns}-b}}"),
        ],
    );
    let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&rendered)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|d: &serde_json::Value| !d.is_null())
        .collect();
    assert_eq!(
        docs.iter().map(|d| d["metadata"]["namespace"].as_str().unwrap()).collect::<Vec<_>>(),
        [ns, &format!("{ns}-b")],
        "one policy per listed namespace"
    );
    let policy = &docs[0];
    assert_eq!(policy["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
    assert_eq!(policy["spec"]["ingress"], serde_json::json!([]), "no ingress");

    // It selects the pods of a Job built by the controller's builder, and nothing else it builds.
    let repo = support::attempt::Repo {
        dir: tempfile::tempdir().unwrap(),
        base_url: "file:///nowhere".into(),
        sha: "0".repeat(40),
    };
    let job = support::attempt::job(&repo, &support::attempt::AttemptSetup::new("rust", "rust_fmt", "error"));
    let pod_labels = job.spec.unwrap().template.metadata.unwrap().labels.unwrap();
    let selector = policy["spec"]["podSelector"]["matchLabels"].as_object().unwrap();
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(pod_labels.get(k).map(String::as_str), v.as_str(), "attempt pods carry {k}={v}");
    }
    let context_labels =
        ci_healer::resources::labels::for_child(ci_healer::resources::labels::Component::Context, "r", None);
    assert!(
        selector.iter().any(|(k, v)| context_labels.get(k).map(String::as_str) != v.as_str()),
        "the selector is narrower than 'managed by ci-healer'"
    );

    // Egress: DNS to kube-system's DNS pods, and HTTPS to 0.0.0.0/0 minus the cluster-internal ranges.
    let egress = policy["spec"]["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 2, "{egress:?}");
    assert_eq!(egress[0]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "kube-system");
    assert!(egress[0]["ports"].as_array().unwrap().iter().all(|p| p["port"] == 53));
    let block = &egress[1]["to"][0]["ipBlock"];
    assert_eq!(block["cidr"], "0.0.0.0/0");
    for internal in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"] {
        assert!(block["except"].as_array().unwrap().iter().any(|c| c == internal), "{internal} excluded");
    }
    assert_eq!(egress[1]["ports"], serde_json::json!([{"protocol": "TCP", "port": 443}]));

    // The API server accepts it as rendered.
    let _ = support::kubectl(&["create", "namespace", ns]);
    let _ = support::kubectl(&["create", "namespace", &format!("{ns}-b")]);
    let path = std::env::temp_dir().join("ci-healer-chart-attempt-netpol.yaml");
    std::fs::write(&path, &rendered).unwrap();
    let (ok, out) = support::kubectl(&["apply", "--server-side", "--dry-run=server", "-f", path.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(out.matches("networkpolicy.networking.k8s.io/ci-healer-attempts").count(), 2, "{out}");

    // Off means off.
    let off = support::render_chart("ci-healer", &["--set", "attemptNetworkPolicy.enabled=false"]);
    assert!(!off.contains("kind: NetworkPolicy"));
}

/// With `config.slack`, the chart lets the controller's ServiceAccount `get` exactly the Secret it
/// names, in `slack.secretNamespace`; no other Secret, no list or watch. The config the chart
/// renders is one the controller loads.
#[test]
fn the_controller_may_get_only_the_slack_secret() {
    let ns = "chart-slack-secret";
    let set = [
        "--set",
        "config.slack.tokenSecret.name=ci-healer-slack",
        "--set",
        "config.slack.tokenSecret.key=token",
        "--set",
        "config.slack.channel=C0123456789",
        "--set",
        &format!("config.slack.secretNamespace={ns}"),
    ];
    let only = |template: &'static str| {
        let mut args = vec!["--show-only", template];
        args.extend(set);
        support::render_chart("ci-healer", &args)
    };
    let rendered = only("templates/slack-secret-rbac.yaml");
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_yaml_ng::from_str(&only("templates/configmap.yaml")).unwrap();
    let cfg = ci_healer::config::ControllerConfig::from_yaml(&cm.data.unwrap()["config.yaml"]).unwrap();
    let slack = cfg.slack.unwrap();
    assert_eq!(slack.channel_for("any", "o/r"), Some("C0123456789"));
    assert_eq!(slack.token_secret.unwrap().name, "ci-healer-slack");

    let _ = support::kubectl(&["create", "namespace", ns]);
    let path = std::env::temp_dir().join("ci-healer-chart-slack-secret.yaml");
    std::fs::write(&path, &rendered).unwrap();
    let (ok, out) = support::kubectl(&["apply", "--server-side", "--force-conflicts", "-f", path.to_str().unwrap()]);
    assert!(ok, "{out}");
    let sa = "--as=system:serviceaccount:ci-healer:ci-healer";
    let can = |verb: &str, what: &str| support::kubectl(&["auth", "can-i", verb, what, "-n", ns, sa]).1;
    assert_eq!(can("get", "secret/ci-healer-slack").trim(), "yes");
    for (verb, what) in
        [("get", "secret/another"), ("list", "secrets"), ("watch", "secrets"), ("update", "secret/ci-healer-slack")]
    {
        assert_eq!(can(verb, what).trim(), "no", "{verb} {what}");
    }
    let (_, elsewhere) = support::kubectl(&["auth", "can-i", "get", "secret/ci-healer-slack", "-n", "default", sa]);
    assert_eq!(elsewhere.trim(), "no", "only in slack.secretNamespace");
}
