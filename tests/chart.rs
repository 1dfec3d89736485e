//! The Helm chart: rendered output and generated copies match the code, the API server accepts every
//! object, and the controller works under exactly the RBAC the chart grants.

mod support;

use std::time::Duration;

use ci_healer::contract::Outcome;
use kube::ResourceExt;
use kube::api::PostParams;

fn read(path: &str) -> String {
    std::fs::read_to_string(support::root().join(path)).unwrap_or_default()
}

#[test]
fn generated_copies_match() {
    let rendered = support::helm(&["template", "ci-healer", "charts/ci-healer", "--namespace", "ci-healer"]);
    assert!(
        rendered == read("charts/rendered/ci-healer.yaml"),
        "charts/rendered/ci-healer.yaml is stale: run `make generate`"
    );
    let rbac = support::helm(&[
        "template",
        "ci-healer",
        "charts/ci-healer",
        "--namespace",
        "ci-healer",
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
    ]);
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

/// With a GitHub identity in `config.github`, the chart lets the controller's ServiceAccount `get`
/// exactly the Secrets it names, in `github.secretNamespace`; no other Secret, no list or watch.
/// Without one it renders nothing of the kind (the default render above has no Secret rule).
#[test]
fn the_controller_may_get_only_the_github_identitys_secrets() {
    let ns = "chart-github-secrets";
    let rendered = support::helm(&[
        "template",
        "ci-healer",
        "charts/ci-healer",
        "--namespace",
        "ci-healer",
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
    ]);
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

#[tokio::test]
async fn controller_heals_under_the_charts_rbac_only() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "rbac").await;
    // The chart's ClusterRole, bound to a ServiceAccount in this namespace.
    let _ = support::kubectl(&["create", "namespace", "ci-healer"]);
    let (ok, out) = support::kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        support::root().join("config/rbac/controller.yaml").to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = support::kubectl(&["create", "serviceaccount", "ci-healer", "-n", &ns]);
    assert!(ok, "{out}");
    let (ok, out) = support::kubectl(&[
        "create",
        "clusterrolebinding",
        &format!("ci-healer-{ns}"),
        "--clusterrole=ci-healer",
        &format!("--serviceaccount={ns}:ci-healer"),
    ]);
    assert!(ok, "{out}");
    // A kubeconfig that impersonates the ServiceAccount: every request is authorised as it.
    let mut kc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(support::kubeconfig()).unwrap()).unwrap();
    kc["users"][0]["user"]["as"] = format!("system:serviceaccount:{ns}:ci-healer").into();
    let path = std::env::temp_dir().join(format!("kubeconfig-{ns}"));
    std::fs::write(&path, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    let ctrl = support::ControllerProcess::start_with_kubeconfig(&ns, None, &path);

    let apis = support::Apis::new(&client, &ns);
    let text = read("config/samples/healingrun-from-workflow-job.yaml");
    let mut run: ci_healer::crd::HealingRun = serde_yaml_ng::from_str(&text).unwrap();
    run.metadata.namespace = Some(ns.clone());
    let name = apis.runs.create(&PostParams::default(), &run).await.unwrap().name_any();
    let job = apis.job(&format!("{name}-1")).await;
    support::finish_attempt(&apis, &job, &support::verdict(Outcome::Passed, "ValidationPassed", "ok")).await;
    apis.run_phase(&name, "Fixed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = ctrl.logs();
    assert!(!logs.contains("forbidden"), "the chart's RBAC is missing a permission:\n{logs}");
    assert!(apis.event_count("HealingRun", &name, "Fixed").await >= 1, "Events are allowed too");
}
