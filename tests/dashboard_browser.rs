//! `healer dashboard` in a real headless Chromium (Debian's `chromium`, driven over WebDriver by
//! `chromedriver` through fantoccini), against the local control plane: the runs table shows the runs
//! this test created (filters and pagination work), a run page shows its attempts and its patch, a
//! status change made by the test reaches an open page through Server-Sent Events within 2 seconds,
//! and screenshots of the summary and the run page are written to the test's output folder
//! (`target/tmp/dashboard/`; `CIHEALER_BLESS=1` also copies the run page to `docs/images/`).
//!
//! Chromium and chromedriver come from `hack/install-test-tools.sh` (apt-get, as `make tools` runs
//! it); `CIHEALER_CHROMIUM` and `CIHEALER_CHROMEDRIVER` name other binaries.

mod support;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ci_healer::config::ControllerConfig;
use ci_healer::crd::HealingRun;
use ci_healer::resources::{attempt::build_attempt, configmap};
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const TOKEN: &str = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
const PATCH: &str = "diff --git a/src/lib.rs b/src/lib.rs\nindex 1111111..2222222 100644\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n pub fn answer() -> u32 {\n-    41\n+    42\n }\n";

/// `healer dashboard` as a subprocess for one namespace; killed on drop.
struct Dashboard {
    child: Child,
    log: PathBuf,
}

impl Dashboard {
    /// Start it with `kubeconfig` (see [`chart_identity`]).
    fn start(ns: &str, kubeconfig: &std::path::Path) -> Self {
        let log = out_dir().join(format!("dashboard-{ns}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_healer"))
            .args(["dashboard", "--namespace", ns, "--addr", "127.0.0.1:0"])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start healer dashboard");
        Self { child, log }
    }

    /// The base URL it logged, once its cache is complete.
    async fn url(&self) -> String {
        let log = self.log.clone();
        support::wait_for("the dashboard's cache and address", Duration::from_secs(30), || {
            let log = log.clone();
            async move {
                let text = std::fs::read_to_string(&log).ok()?;
                text.contains("dashboard cache is complete").then_some(())?;
                let url = text.lines().find_map(|l| l.split("url=").nth(1))?.split_whitespace().next()?;
                Some(url.trim_end_matches('/').to_string())
            }
        })
        .await
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver on a free port, driving a headless Chromium; killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        let bin = std::env::var("CIHEALER_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let log = out_dir().join("chromedriver.log");
        // Its own process group, so that dropping it also ends the Chromium it started, even when
        // the test panics before closing the session.
        let child = Command::new(&bin)
            .arg("--port=0")
            .process_group(0)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin} ({e}): install it with hack/install-test-tools.sh"));
        let start = Instant::now();
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(p) = text.split("started successfully on port ").nth(1) {
                break p.trim_end_matches(|c: char| !c.is_ascii_digit()).split('.').next().unwrap().parse().unwrap();
            }
            assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not start: {text}");
            std::thread::sleep(Duration::from_millis(50));
        };
        Self { child, port }
    }

    async fn session(&self) -> Browser {
        let chromium = std::env::var("CIHEALER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = tempfile::tempdir().unwrap().keep();
        // The flags that work as root on this machine's closed network (no sandbox, no background
        // connections to Google's hosts), and a fresh profile.
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-quic", "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                         format!("--user-data-dir={}", profile.display())]
            }
        });
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps.as_object().unwrap().clone());
        builder.connect(&format!("http://127.0.0.1:{}", self.port)).await.expect("WebDriver session in Chromium")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A kubeconfig that acts as the chart's dashboard ServiceAccount: the chart's dashboard objects are
/// checked by the API server (server-side dry run), its ClusterRole is applied and bound in `ns`,
/// and every request the dashboard makes is then authorised as that ServiceAccount.
fn chart_identity(ns: &str) -> PathBuf {
    let rendered =
        support::render_chart(ns, &["--set", "dashboard.enabled=true", "--show-only", "templates/dashboard.yaml"]);
    let file = out_dir().join(format!("chart-dashboard-{ns}.yaml"));
    std::fs::write(&file, &rendered).unwrap();
    let (ok, out) = support::kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=dashboard-test",
        "--dry-run=server",
        "-f",
        file.to_str().unwrap(),
    ]);
    assert!(ok && out.contains("deployment.apps/ci-healer-dashboard"), "{out}");
    let role = rendered.split("\n---").find(|d| d.contains("kind: ClusterRole\n")).expect("the chart's ClusterRole");
    let role_file = out_dir().join("chart-dashboard-clusterrole.yaml");
    std::fs::write(&role_file, role).unwrap();
    let (ok, out) = support::kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=dashboard-test",
        "-f",
        role_file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(role).unwrap();
    for rule in parsed["rules"].as_sequence().unwrap() {
        for verb in rule["verbs"].as_sequence().unwrap() {
            assert!(["get", "list", "watch"].contains(&verb.as_str().unwrap()), "read-only, not {verb:?}");
        }
        assert!(!rule["resources"].as_sequence().unwrap().iter().any(|r| r.as_str() == Some("secrets")));
    }
    let (ok, out) = support::kubectl(&["create", "serviceaccount", "ci-healer-dashboard", "-n", ns]);
    assert!(ok, "{out}");
    let (ok, out) = support::kubectl(&[
        "create",
        "rolebinding",
        "ci-healer-dashboard",
        "-n",
        ns,
        "--clusterrole=ci-healer-dashboard",
        &format!("--serviceaccount={ns}:ci-healer-dashboard"),
    ]);
    assert!(ok, "{out}");
    let mut kc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(support::kubeconfig()).unwrap()).unwrap();
    kc["users"][0]["user"]["as"] = format!("system:serviceaccount:{ns}:ci-healer-dashboard").into();
    let path = out_dir().join(format!("kubeconfig-dashboard-{ns}"));
    std::fs::write(&path, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    path
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn text(b: &Browser, css: &str) -> String {
    b.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

/// `attr` of every element matching `css`, read in one script so a live (SSE) update that replaces
/// the elements between a lookup and a read cannot leave a stale element reference.
async fn all_attr(b: &Browser, css: &str, attr: &str) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.getAttribute(arguments[1])).filter(v => v !== null)";
    let v = b.execute(script, vec![json!(css), json!(attr)]).await.unwrap();
    serde_json::from_value(v).unwrap()
}

/// Poll the page until `f` holds (every 25 ms), or panic after `timeout`.
async fn until(b: &Browser, what: &str, timeout: Duration, css: &str, f: impl Fn(&str) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
            && f(&t)
        {
            return start.elapsed();
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Wait until the page that a click navigated to has loaded: its URL contains `part` and its
/// `document.readyState` is `complete`. Panics after 10 s.
async fn navigated(b: &Browser, part: &str) {
    let start = Instant::now();
    loop {
        let url = b.current_url().await.unwrap();
        let state = b.execute("return document.readyState", vec![]).await.unwrap();
        if url.as_str().contains(part) && state == json!("complete") {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no page with {part} in its URL loaded (at {url})");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Wait until the page's EventSource is open.
async fn live(b: &Browser) {
    let start = Instant::now();
    while b.execute("return document.body.getAttribute('data-live-state')", vec![]).await.unwrap() != json!("open") {
        assert!(start.elapsed() < Duration::from_secs(5), "the page's EventSource did not open");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn save_screenshot(b: &Browser, name: &str) -> PathBuf {
    let png = b.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = out_dir().join(name);
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {}", path.display());
    path
}

fn run_object(ns: &str, name: &str, repo: &str, branch: &str) -> HealingRun {
    serde_json::from_value(json!({
        "apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"source": {"repository": repo, "branch": branch, "headSha": "3484a3fb816e0859fd6e1cea078d76385ff50625",
                            "workflowName": "CI", "jobName": "lint", "runId": 2202229078i64, "runAttempt": 1,
                            "jobId": 289782451, "url": format!("https://github.com/{repo}/actions/runs/2202229078/job/289782451"),
                            "failedSteps": ["Run cargo fmt --check"], "sender": "octocat"},
                 "failure": {"excerpt": format!("Diff in src/lib.rs; token {TOKEN}")}}
    }))
    .unwrap()
}

async fn put_status(api: &Api<HealingRun>, name: &str, status: serde_json::Value) {
    let patch = json!({"apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingRun", "status": status});
    api.patch_status(name, &PatchParams::apply("dashboard-test").force(), &Patch::Apply(patch)).await.unwrap();
}

/// Create a run like the controller leaves it: status, attempts with verdicts, context and patch
/// ConfigMaps.
async fn seed(client: &kube::Client, ns: &str) {
    let runs = Api::<HealingRun>::namespaced(client.clone(), ns);
    let attempts = Api::<ci_healer::crd::HealingAttempt>::namespaced(client.clone(), ns);
    let cms = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let cfg = ControllerConfig::default();
    let now = jiff::Timestamp::now();
    let pp = PostParams::default();

    // A run fixed on its second attempt.
    let fixed = runs.create(&pp, &run_object(ns, "fixed-run", "octo-org/engine", "feature/fmt")).await.unwrap();
    let triage = json!({"failureClass": "rust_fmt", "confidence": 0.92, "profile": "rust", "action": "agent",
                        "errorHash": "0f0f0f0f0f0f0f0f", "failingStep": "Run cargo fmt --check",
                        "excerpt": "", "diagnostics": [{"tool": "rustfmt"}]});
    let excerpt = format!("Diff in src/lib.rs at line 2:\n-    41\n+    42\nauth: {TOKEN}\n");
    cms.create(&pp, &configmap::build_context(&fixed, &excerpt, &triage.to_string()).unwrap()).await.unwrap();
    for (n, phase, outcome, reason, summary, d) in [
        (1, "Failed", "failed", "ValidationFailed", "cargo fmt --check still fails", (0.4, 12.0, 2.0)),
        (2, "Succeeded", "passed", "ValidationPassed", "1 file(s) changed; passed: cargo fmt --check", (0.4, 6.5, 2.1)),
    ] {
        let a = attempts.create(&pp, &build_attempt(&fixed, n, "rust", &cfg).unwrap()).await.unwrap();
        let st = json!({"apiVersion": "cihealer.dev/v1alpha1", "kind": "HealingAttempt", "status": {
            "phase": phase, "jobName": a.name_any(),
            "startTime": (now - jiff::SignedDuration::from_secs(60 - 20 * n as i64)).to_string(),
            "completionTime": (now - jiff::SignedDuration::from_secs(45 - 20 * n as i64)).to_string(),
            "failureReason": (phase == "Failed").then_some(reason),
            "patchConfigMap": (phase == "Succeeded").then(|| configmap::patch_name(&a.name_any())),
            "diagnosis": if n == 2 { "cargo fmt reformatted src/lib.rs" } else { "the LLM proposed an unrelated change" },
            "verdict": {"outcome": outcome, "reason": reason, "summary": summary,
                        "diffstat": {"files": 1, "insertions": 1, "deletions": 1},
                        "tokens": {"input": 1200 * n, "output": 300 * n},
                        "durations": {"checkoutSeconds": d.0, "agentSeconds": d.1, "validateSeconds": d.2}}}});
        attempts
            .patch_status(&a.name_any(), &PatchParams::apply("dashboard-test").force(), &Patch::Apply(st))
            .await
            .unwrap();
        if phase == "Succeeded" {
            cms.create(&pp, &configmap::build_patch(&a, PATCH).unwrap()).await.unwrap();
        }
    }
    let cond = |t: &str, s: &str, r: &str, m: &str| json!({"type": t, "status": s, "reason": r, "message": m, "lastTransitionTime": now.to_string()});
    put_status(&runs, "fixed-run", json!({
        "phase": "Fixed", "attempts": 2, "currentAttempt": 2, "shortSha": "3484a3f", "failureClass": "rust_fmt",
        "agent": "rust", "errorHash": "0f0f0f0f0f0f0f0f",
        "patch": {"attempt": "fixed-run-2", "configMap": "fixed-run-2-patch", "diffstat": {"files": 1, "insertions": 1, "deletions": 1}},
        "startTime": (now - jiff::SignedDuration::from_secs(40)).to_string(), "completionTime": now.to_string(),
        "conditions": [cond("Accepted", "True", "SpecValid", "the spec is valid"),
                       cond("Fixed", "True", "ValidationPassed", "attempt 2 passed validation")]})).await;

    // A run in flight, for the live update.
    runs.create(&pp, &run_object(ns, "running-run", "octo-org/web", "main")).await.unwrap();
    put_status(
        &runs,
        "running-run",
        json!({"phase": "Running", "attempts": 1, "currentAttempt": 1,
        "failureClass": "frontend_format", "agent": "frontend",
        "conditions": [cond("Healing", "True", "AttemptRunning", "attempt 1 is running")]}),
    )
    .await;

    // Enough escalated and queued runs for three pages of five.
    for i in 0..11 {
        let name = format!("bulk-{i:02}");
        runs.create(&pp, &run_object(ns, &name, "octo-org/infra", "main")).await.unwrap();
        let phase = if i % 2 == 0 { "Escalated" } else { "Queued" };
        put_status(
            &runs,
            &name,
            json!({"phase": phase, "failureClass": "infra_flake", "attempts": 0,
            "escalationReason": (phase == "Escalated").then_some("3 attempts failed validation")}),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "dash").await;
    seed(&client, &ns).await;
    let dashboard = Dashboard::start(&ns, &chart_identity(&ns));
    let url = dashboard.url().await;

    // Without JavaScript: the table, its filters and its pages are plain HTML.
    let html = reqwest::get(format!("{url}/?phase=Escalated&per_page=5")).await.unwrap().text().await.unwrap();
    assert_eq!(html.matches("<tr data-run=").count(), 5, "{html}");
    assert!(html.contains("page 1 of 2") && html.contains("rel=\"next\""), "pagination links: {html}");
    assert!(!html.contains(TOKEN));

    let driver = Driver::start();
    let b = driver.session().await;

    // The runs table shows the runs this test created, newest first.
    b.goto(&format!("{url}/")).await.unwrap();
    let rows = all_attr(&b, "tr[data-run]", "data-run").await;
    assert_eq!(rows.len(), 13, "{rows:?}");
    for name in ["fixed-run", "running-run", "bulk-00", "bulk-10"] {
        assert!(rows.contains(&format!("{ns}/{name}")), "{name} in {rows:?}");
    }
    assert_eq!(text(&b, "[data-phase-count=Escalated] .n").await, "6");
    assert_eq!(text(&b, "[data-figure=success-rate] .n").await, "14 %", "1 fixed of 7 fixed or escalated");
    live(&b).await;
    save_screenshot(&b, "summary.png").await;

    // Filters through the form, as a person uses it.
    b.find(Locator::Css("select[name=phase]")).await.unwrap().select_by_value("Escalated").await.unwrap();
    b.find(Locator::Css("select[name=per_page]")).await.unwrap().select_by_value("20").await.unwrap();
    b.find(Locator::Css("form.filters button")).await.unwrap().click().await.unwrap();
    // A click that submits a form does not wait for the next page (WebDriver's Element Click).
    navigated(&b, "phase=Escalated").await;
    let rows = all_attr(&b, "tr[data-run]", "data-run").await;
    assert_eq!(rows.len(), 6, "only Escalated runs: {rows:?}");
    // Pagination: five per page, three pages, the next link leads on.
    b.goto(&format!("{url}/?per_page=5")).await.unwrap();
    let first = all_attr(&b, "tr[data-run]", "data-run").await;
    b.find(Locator::Css("a[rel=next]")).await.unwrap().click().await.unwrap();
    until(&b, "the second page", Duration::from_secs(10), "p.count", |t| t.contains("page 2 of 3")).await;
    let second = all_attr(&b, "tr[data-run]", "data-run").await;
    assert_eq!((first.len(), second.len()), (5, 5));
    assert!(first.iter().all(|r| !second.contains(r)), "pages do not overlap");
    assert!(text(&b, "p.count").await.contains("page 2 of 3"));

    // The run page: source, triage, the masked excerpt, the attempt timeline and the patch.
    b.goto(&format!("{url}/runs/{ns}/fixed-run")).await.unwrap();
    assert_eq!(text(&b, "[data-field=phase]").await, "Fixed");
    let attempts = all_attr(&b, "li.attempt", "data-attempt").await;
    assert_eq!(attempts, ["1", "2"]);
    assert!(text(&b, "li[data-attempt='1']").await.contains("ValidationFailed"));
    assert!(text(&b, "li[data-attempt='2']").await.contains("kept patch"));
    assert_eq!(text(&b, "li[data-attempt='2'] [data-step=agent]").await, "6.5 s");
    assert_eq!(text(&b, "table.diff caption").await, "src/lib.rs +1 −1");
    assert_eq!(text(&b, "table.diff tr.add td.code").await, "+    42");
    assert_eq!(text(&b, "table.diff tr.del td.code").await, "-    41");
    let excerpt = text(&b, "pre.excerpt").await;
    assert!(excerpt.contains("[MASKED]") && !excerpt.contains(TOKEN), "{excerpt}");
    let body = b.source().await.unwrap();
    assert!(!body.contains(TOKEN), "no token anywhere on the page");
    assert!(body.contains("https://github.com/octo-org/engine/tree/feature/fmt"), "branch link");
    assert!(body.contains("kubectl logs -n ") && body.contains("job/fixed-run-2 -c validate"));
    b.set_window_size(1400, 1900).await.unwrap();
    let shot = save_screenshot(&b, "run.png").await;
    if std::env::var_os("CIHEALER_BLESS").is_some() {
        std::fs::create_dir_all(support::root().join("docs/images")).unwrap();
        std::fs::copy(&shot, support::root().join("docs/images/dashboard-run.png")).unwrap();
    }
    b.set_window_size(1400, 1000).await.unwrap();

    // Live: a status change made now appears on the open page within 2 s, without a reload.
    b.goto(&format!("{url}/runs/{ns}/running-run")).await.unwrap();
    assert_eq!(text(&b, "[data-field=phase]").await, "Running");
    live(&b).await;
    b.execute("window.__marker = 'same page'", vec![]).await.unwrap();
    let runs = Api::<HealingRun>::namespaced(client.clone(), &ns);
    let start = Instant::now();
    put_status(
        &runs,
        "running-run",
        json!({"phase": "Escalated", "attempts": 1,
        "escalationReason": "attempt 1 of 1 failed: ValidationFailed"}),
    )
    .await;
    until(&b, "the page to show Escalated", Duration::from_secs(2), "[data-field=phase]", |t| t == "Escalated").await;
    let seen = start.elapsed();
    println!("status change → open page: {} ms", seen.as_millis());
    assert!(seen < Duration::from_secs(2), "took {seen:?}");
    assert!(text(&b, "[data-field=escalation-reason]").await.contains("ValidationFailed"));
    assert_eq!(b.execute("return window.__marker", vec![]).await.unwrap(), json!("same page"), "no reload");

    b.close().await.unwrap();
    let log = std::fs::read_to_string(&dashboard.log).unwrap();
    assert!(!log.contains("forbidden"), "the chart's dashboard RBAC is missing a permission:\n{log}");
}
