//! Metrics, alerts and the Grafana dashboard, checked by the real tools:
//!
//! - a real `/metrics` scrape after a run that is fixed, one that escalates, one that is skipped and
//!   one that duplicates another: every metric of `telemetry::CATALOGUE` is there with its type and
//!   label set, `promtool check metrics` accepts the scrape, and every metric the Grafana dashboard
//!   and the alert rules query exists in it;
//! - `promtool check rules` and `promtool test rules` (alert unit tests in
//!   `tests/fixtures/prometheus/rules_test.yaml`) on the rules the chart ships, and the chart renders
//!   them as a PrometheusRule only when the Prometheus Operator's API exists;
//! - the generated copies (the dashboard JSON in the chart, the README's metric table) match the
//!   code (`CIHEALER_BLESS=1` rewrites them; `make generate` does).
//!
//! promtool comes from Debian's `prometheus` package through `hack/install-test-tools.sh` (its
//! cache, `~/.cache/ci-healer/tools/bin`), or `CIHEALER_PROMTOOL`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use ci_healer::contract::Outcome;
use ci_healer::contract::verdict::{Diffstat, StepDurations, TokenUsage, Verdict};
use ci_healer::crd::HealingRun;
use ci_healer::dashboard::grafana;
use ci_healer::telemetry::{self, CATALOGUE};
use kube::ResourceExt;
use kube::api::PostParams;
use support::{Apis, ControllerProcess, finish_attempt};

fn promtool() -> PathBuf {
    if let Ok(p) = std::env::var("CIHEALER_PROMTOOL") {
        return p.into();
    }
    let cache = std::env::var("CIHEALER_CACHE").map(PathBuf::from).unwrap_or_else(|_| {
        std::env::var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"))
            .join("ci-healer")
    });
    let p = cache.join("tools/bin/promtool");
    assert!(p.exists(), "no promtool at {}: run hack/install-test-tools.sh (make tools)", p.display());
    p
}

fn run_promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(support::root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(support::root().join(path)).unwrap_or_default()
}

fn bless() -> bool {
    std::env::var("CIHEALER_BLESS").is_ok_and(|v| v == "1")
}

const TABLE_BEGIN: &str = "<!-- metrics table: generated from src/telemetry.rs (CATALOGUE) by `make generate` -->\n";
const TABLE_END: &str = "<!-- end of metrics table -->";

#[test]
fn generated_copies_match_the_code() {
    let json = grafana::dashboard_json();
    if bless() {
        std::fs::write(support::root().join(grafana::PATH), &json).unwrap();
    }
    assert!(read(grafana::PATH) == json, "{} is stale: run `make generate`", grafana::PATH);

    let readme = read("README.md");
    let (before, rest) = readme.split_once(TABLE_BEGIN).expect("README.md has the metrics table markers");
    let (_, after) = rest.split_once(TABLE_END).expect("README.md has the end marker of the metrics table");
    let want = format!("{before}{TABLE_BEGIN}{}{TABLE_END}{after}", telemetry::catalogue_markdown());
    if bless() {
        std::fs::write(support::root().join("README.md"), &want).unwrap();
    }
    assert!(read("README.md") == want, "README.md's metrics table is stale: run `make generate`");
}

#[test]
fn promtool_checks_and_unit_tests_the_alert_rules() {
    let (ok, out) = run_promtool(&["check", "rules", "charts/ci-healer/files/prometheus-rules.yaml"], None);
    assert!(ok, "promtool check rules:\n{out}");
    let (ok, out) = run_promtool(&["test", "rules", "tests/fixtures/prometheus/rules_test.yaml"], None);
    assert!(ok && out.contains("SUCCESS"), "promtool test rules:\n{out}");
}

fn docs(yaml: &str) -> Vec<serde_json::Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|d: &serde_json::Value| !d.is_null())
        .collect()
}

#[test]
fn the_chart_ships_the_rules_only_with_the_prometheus_operator_and_the_dashboard_configmap() {
    let plain = docs(&support::render_chart("ci-healer", &[]));
    assert!(!plain.iter().any(|d| d["kind"] == "PrometheusRule"), "no PrometheusRule without the operator's API");
    assert!(!plain.iter().any(|d| d["metadata"]["name"] == "ci-healer-grafana-dashboard"), "the dashboard is opt-in");
    let with_grafana = docs(&support::render_chart("ci-healer", &["--set", "grafanaDashboard.enabled=true"]));
    let cm = with_grafana
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "ci-healer-grafana-dashboard")
        .expect("the Grafana dashboard ConfigMap");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let json: serde_json::Value = serde_json::from_str(cm["data"]["ci-healer.json"].as_str().unwrap()).unwrap();
    assert_eq!(json, grafana::dashboard(), "the ConfigMap carries the generated dashboard");

    let with_operator = docs(&support::render_chart(
        "ci-healer",
        &[
            "--api-versions",
            "monitoring.coreos.com/v1/PrometheusRule",
            "--set",
            "prometheusRule.labels.release=kube-prometheus-stack",
        ],
    ));
    let rule = with_operator.iter().find(|d| d["kind"] == "PrometheusRule").expect("a PrometheusRule");
    assert_eq!(rule["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let file: serde_json::Value =
        serde_yaml_ng::from_str(&read("charts/ci-healer/files/prometheus-rules.yaml")).unwrap();
    assert_eq!(rule["spec"], file, "the PrometheusRule's spec is the rule file promtool checks");
}

/// GET `/metrics` asking for `accept`; returns the content type and the body.
async fn scrape(addr: &str, accept: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let ct = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_string))
        .unwrap_or_default();
    (ct, body.to_string())
}

/// Families of an OpenMetrics scrape: name → (type, label names of its samples, `le` left out).
fn families(openmetrics: &str) -> BTreeMap<String, (String, BTreeSet<Vec<String>>)> {
    let mut out: BTreeMap<String, (String, BTreeSet<Vec<String>>)> = BTreeMap::new();
    let mut current = String::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            current = name.to_string();
            out.insert(current.clone(), (kind.to_string(), BTreeSet::new()));
        } else if !line.starts_with('#') && !line.is_empty() {
            let labels = match line.split_once('{') {
                Some((_, rest)) => rest
                    .split_once('}')
                    .unwrap()
                    .0
                    .split(',')
                    .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
                    .filter(|k| k != "le")
                    .collect(),
                None => Vec::new(),
            };
            out.get_mut(&current).expect("a sample after its TYPE line").1.insert(labels);
        }
    }
    out
}

fn verdict(outcome: Outcome, reason: &str, tokens: (i64, i64, i64)) -> String {
    Verdict {
        outcome,
        reason: reason.into(),
        summary: format!("{reason} (observability test)"),
        diffstat: Some(Diffstat { files: 1, insertions: 2, deletions: 1 }),
        tokens: Some(TokenUsage {
            input: tokens.0,
            output: tokens.1,
            cost_micro_usd: Some(tokens.2),
            ..Default::default()
        }),
        durations: Some(StepDurations {
            checkout_seconds: Some(1.5),
            agent_seconds: Some(42.0),
            validate_seconds: Some(7.25),
        }),
        patch_sha256: None,
        protected_paths: vec![],
    }
    .to_termination_message()
}

fn run(ns: &str, name: &str, job: &str, agent: &str, max_attempts: i32) -> HealingRun {
    let text = read("config/samples/healingrun-from-workflow-job.yaml");
    let mut r: HealingRun = serde_yaml_ng::from_str(&text).unwrap();
    r.metadata.namespace = Some(ns.into());
    r.metadata.name = Some(name.into());
    r.spec.source.job_name = Some(job.into());
    r.spec.source.failed_steps = vec![format!("Run {job}")];
    r.spec.policy.agent = agent.into();
    r.spec.policy.max_attempts = max_attempts;
    r
}

#[tokio::test]
async fn a_real_scrape_after_fixed_escalated_skipped_and_duplicate_runs() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "metrics").await;
    let config = std::env::temp_dir().join(format!("observability-{ns}.yaml"));
    std::fs::write(
        &config,
        "profiles:\n  general: {image: docker.io/library/buildpack-deps:bookworm}\n  rust:\n    image: docker.io/library/rust:1.95\n    settings: {llm: {provider: anthropic, model: claude-sonnet-4-5}}\n",
    )
    .unwrap();
    let ctrl = ControllerProcess::start(&ns, Some(&config));
    let apis = Apis::new(&client, &ns);
    let pp = PostParams::default();

    // Fixed on its first attempt; a second delivery of the same failure is its duplicate.
    let fixed = apis.runs.create(&pp, &run(&ns, "fixed", "fmt", "rust", 3)).await.unwrap().name_any();
    let job = apis.job(&format!("{fixed}-1")).await;
    let mut dup = run(&ns, "fixed-again", "fmt", "rust", 3);
    dup.spec.source.run_attempt = Some(2);
    let dup = apis.runs.create(&pp, &dup).await.unwrap().name_any();
    let runs = apis.runs.clone();
    support::wait_for("the duplicate", Duration::from_secs(30), || {
        let (runs, dup) = (runs.clone(), dup.clone());
        async move { runs.get(&dup).await.ok()?.status?.duplicate_of.map(|_| ()) }
    })
    .await;
    finish_attempt(&apis, &job, &verdict(Outcome::Passed, "ValidationPassed", (1200, 300, 8100))).await;
    apis.run_phase(&fixed, "Fixed").await;
    // Escalated after its only attempt fails.
    let escalated = apis.runs.create(&pp, &run(&ns, "escalated", "tests", "rust", 1)).await.unwrap().name_any();
    let job = apis.job(&format!("{escalated}-1")).await;
    finish_attempt(&apis, &job, &verdict(Outcome::Failed, "ValidationFailed", (5000, 900, 28500))).await;
    apis.run_phase(&escalated, "Escalated").await;
    // Skipped: a profile the config does not have.
    let skipped = apis.runs.create(&pp, &run(&ns, "skipped", "lint", "no-such-profile", 3)).await.unwrap().name_any();
    let runs = apis.runs.clone();
    support::wait_for("Accepted=False", Duration::from_secs(30), || {
        let (runs, skipped) = (runs.clone(), skipped.clone());
        async move {
            let r = runs.get(&skipped).await.ok()?;
            r.status?.conditions.iter().any(|c| c.type_ == "Accepted" && c.status == "False").then_some(())
        }
    })
    .await;
    apis.run_phase(&dup, "Fixed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let addr = ctrl.metrics_addr().await;
    let (ct, om) = scrape(&addr, "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5").await;
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(om.ends_with("# EOF\n"), "an OpenMetrics exposition ends with # EOF");
    std::fs::create_dir_all(support::root().join("target/tmp")).unwrap();
    std::fs::write(support::root().join("target/tmp/observability-scrape.txt"), &om).unwrap();

    // Names, types and label sets, as the catalogue pins them.
    let fams = families(&om);
    // Observed only with a `github:` config (time to PR also needs `mode: pull-request`):
    // tests/github_controller.rs checks them in its own real scrape.
    const WITH_GITHUB: &[&str] = &[
        "cihealer_time_to_pr_seconds",
        "cihealer_github_requests",
        "cihealer_github_rate_limit_wait_seconds",
        "cihealer_commands",
    ];
    // Observed only with a `slack:` config (tests/slack_controller.rs runs the controller with one).
    const WITH_SLACK: &[&str] = &["cihealer_slack_notifications"];
    for m in CATALOGUE.iter().filter(|m| !WITH_GITHUB.contains(&m.name) && !WITH_SLACK.contains(&m.name)) {
        let (kind, label_sets) =
            fams.get(m.name).unwrap_or_else(|| panic!("{} is missing from the scrape:\n{om}", m.name));
        assert_eq!(kind, m.kind, "{} has type {kind}", m.name);
        let want: Vec<String> = m.labels.iter().map(|s| s.to_string()).collect();
        assert!(label_sets.iter().all(|l| *l == want), "{}: label sets {label_sets:?}, want {want:?}", m.name);
    }
    for name in fams.keys() {
        assert!(CATALOGUE.iter().any(|m| m.name == name), "{name} is exported but not in the catalogue");
    }
    // The values these runs must have produced.
    let has = |line: &str| assert!(om.lines().any(|l| l == line), "missing `{line}` in\n{om}");
    let run_labels = |class: &str| {
        format!(r#"namespace="{ns}",repository="Codertocat/Hello-World",failure_class="{class}",agent="rust""#)
    };
    let class_of = |name: &str| {
        let apis = apis.clone();
        let name = name.to_string();
        async move { apis.runs.get(&name).await.unwrap().status.unwrap().failure_class.unwrap().as_str().to_string() }
    };
    let (fixed_class, esc_class) = (class_of(&fixed).await, class_of(&escalated).await);
    has(&format!(r#"cihealer_runs_finished_total{{{},phase="Fixed"}} 2"#, run_labels(&fixed_class)));
    has(&format!(r#"cihealer_runs_finished_total{{{},phase="Escalated"}} 1"#, run_labels(&esc_class)));
    has(&format!(r#"cihealer_time_to_fix_seconds_count{{{}}} 2"#, run_labels(&fixed_class)));
    has(&format!(
        r#"cihealer_attempts_finished_total{{{},outcome="Succeeded",reason="ValidationPassed"}} 1"#,
        run_labels(&fixed_class)
    ));
    has(&format!(
        r#"cihealer_attempts_finished_total{{{},outcome="Failed",reason="ValidationFailed"}} 1"#,
        run_labels(&esc_class)
    ));
    has(&format!(
        r#"cihealer_llm_tokens_total{{namespace="{ns}",agent="rust",provider="anthropic",model="claude-sonnet-4-5",direction="input"}} 6200"#
    ));
    has(&format!(
        r#"cihealer_llm_tokens_total{{namespace="{ns}",agent="rust",provider="anthropic",model="claude-sonnet-4-5",direction="output"}} 1200"#
    ));
    has(&format!(
        r#"cihealer_llm_cost_usd_total{{namespace="{ns}",agent="rust",provider="anthropic",model="claude-sonnet-4-5"}} 0.0366"#
    ));
    has(r#"cihealer_attempt_step_duration_seconds_sum{step="agent",agent="rust",outcome="Succeeded"} 42.0"#);
    has(&format!(r#"cihealer_runs_deduplicated_total{{namespace="{ns}",repository="Codertocat/Hello-World"}} 1"#));
    has(&format!(r#"cihealer_runs_skipped_total{{namespace="{ns}",reason="UnknownProfile"}} 1"#));
    has(&format!(r#"cihealer_runs{{namespace="{ns}",phase="Fixed"}} 2"#));
    has(&format!(r#"cihealer_runs{{namespace="{ns}",phase="Queued"}} 1"#));
    has("cihealer_leader 1");

    // promtool lints the Prometheus text format (what a scraper that does not ask for OpenMetrics gets).
    let (ct, text) = scrape(&addr, "*/*").await;
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let (ok, out) = run_promtool(&["check", "metrics"], Some(&text));
    assert!(ok, "promtool check metrics:\n{out}\n{text}");

    // Every metric a dashboard panel or an alert queries is in the scrape.
    let exported: BTreeSet<&str> = fams.keys().map(String::as_str).collect();
    for m in grafana::queried_metrics() {
        let ok = exported.contains(m.as_str()) || WITH_GITHUB.contains(&m.as_str());
        assert!(ok, "the Grafana dashboard queries {m}, absent from a real scrape");
    }
    let rules = read("charts/ci-healer/files/prometheus-rules.yaml");
    for (i, _) in rules.match_indices("cihealer_").filter(|(i, _)| !rules[..*i].ends_with(':')) {
        let name: String = rules[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let family = ["_bucket", "_total"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
        assert!(exported.contains(family), "the alert rules query {name}, absent from a real scrape");
    }
}
