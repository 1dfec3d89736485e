//! Dashboard benchmark: the runs page's latency with 10,000 runs cached, and the cache's memory with
//! 10,000 runs and 30,000 attempts, each next to a bare baseline measured in the same run.
//!
//! `cargo bench --bench dashboard` (also part of `make bench`). No cluster needed: the objects are
//! built with the controller's own types and builders, serialised as the API server sends them
//! (with `managedFields`), and fed through the same deserialise → slim → store path the dashboard's
//! watches use. The pages are fetched over loopback HTTP from the real axum router.
//!
//! Baselines: for latency, a route on the same server that returns a pre-rendered copy of the same
//! page (the HTTP and axum floor); for memory, a plain kube-runtime reflector of the full typed
//! objects (what a controller-style cache would hold).
//!
//! Environment: `DASHBOARD_BENCH_RUNS` (10000), `DASHBOARD_BENCH_ATTEMPTS_PER_RUN` (3),
//! `DASHBOARD_BENCH_REQUESTS` (400 per URL).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ci_healer::config::ControllerConfig;
use ci_healer::contract::verdict::{Outcome, StepDurations, TokenUsage, Verdict};
use ci_healer::crd::{
    AttemptPhase, Diffstat, FailureSource, HealingAttempt, HealingAttemptStatus, HealingRun, HealingRunSpec,
    HealingRunStatus, PatchRef, RunPhase,
};
use ci_healer::dashboard::cache::{self, AttemptDoc, Cache, FilesDoc, RunDoc};
use ci_healer::dashboard::view::Links;
use ci_healer::dashboard::web;
use ci_healer::resources::{attempt::build_attempt, configmap};
use ci_healer::triage::FailureClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, FieldsV1, ManagedFieldsEntry, Time};
use kube::Resource;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::Event;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            CURRENT.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_add(new_size, Ordering::Relaxed);
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn heap() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()).unwrap_or(0) * 4096
}

/// This thread's time on a CPU, in nanoseconds (`/proc/thread-self/schedstat`, first field): what a
/// page costs, whatever else the machine is running.
fn thread_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    s.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Median and 99th percentile of the thread CPU time of `n` calls of `f`, in milliseconds.
fn cpu_per_call(n: usize, mut f: impl FnMut() -> usize) -> (f64, f64, usize) {
    let mut v = Vec::with_capacity(n);
    let mut bytes = 0;
    for _ in 0..n {
        let start = thread_cpu_ns();
        bytes = f();
        v.push(thread_cpu_ns() - start);
    }
    v.sort();
    let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1] as f64 / 1e6;
    (at(0.5), at(0.99), bytes)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

const REPOS: [&str; 8] = [
    "octo-org/engine",
    "octo-org/web",
    "octo-org/infra",
    "octo-org/docs",
    "acme/api",
    "acme/mobile",
    "acme/platform",
    "acme/tools",
];
const CLASSES: [&str; 6] = ["rust_fmt", "rust_clippy", "frontend_format", "frontend_types", "infra_flake", "unknown"];
const PHASES: [RunPhase; 5] =
    [RunPhase::Fixed, RunPhase::Escalated, RunPhase::Running, RunPhase::Queued, RunPhase::Aborted];

fn t(s: i64) -> Time {
    Time(jiff::Timestamp::from_second(1_780_000_000 + s).unwrap())
}

/// What the API server adds to every object: one managedFields entry per writer.
fn managed(manager: &str, subresource: Option<&str>, fields: serde_json::Value, at: i64) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        api_version: Some("cihealer.dev/v1alpha1".into()),
        fields_type: Some("FieldsV1".into()),
        fields_v1: Some(FieldsV1(fields)),
        manager: Some(manager.into()),
        operation: Some(if subresource.is_some() { "Apply" } else { "Update" }.into()),
        subresource: subresource.map(String::from),
        time: Some(t(at)),
    }
}

fn cond(type_: &str, status: bool, reason: &str, message: &str, at: i64) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: Some(1),
        last_transition_time: t(at),
    }
}

fn full_run(i: usize) -> HealingRun {
    let repo = REPOS[i % REPOS.len()];
    let class = CLASSES[i % CLASSES.len()];
    let phase = PHASES[i % PHASES.len()];
    let name = format!("gh-{}-1-{}", 2_200_000_000 + i, 289_000_000 + i);
    let sha = format!("{:040x}", (i as u128) * 0x9e37_79b9_7f4a_7c15);
    let mut run = HealingRun::new(
        &name,
        HealingRunSpec {
            source: FailureSource {
                repository: repo.into(),
                branch: format!("feature/change-{}", i % 97),
                head_sha: sha.clone(),
                delivery_id: Some(format!("72d3162e-cc78-11e3-81ab-{:012x}", i)),
                workflow_name: Some("CI".into()),
                job_name: Some("lint".into()),
                run_id: Some(2_200_000_000 + i as i64),
                run_attempt: Some(1),
                job_id: Some(289_000_000 + i as i64),
                url: Some(format!(
                    "https://github.com/{repo}/actions/runs/{}/job/{}",
                    2_200_000_000 + i,
                    289_000_000 + i
                )),
                sender: Some("octocat".into()),
                failed_steps: vec!["Run cargo fmt --all -- --check".into()],
                ..Default::default()
            },
            failure: None,
            policy: Default::default(),
            action: None,
            action_request: None,
        },
    );
    let created = i as i64 * 7;
    run.metadata.namespace = Some(format!("team-{}", i % 4));
    run.metadata.uid = Some(format!("{:08x}-0000-4000-8000-{:012x}", i, i));
    run.metadata.resource_version = Some(format!("{}", 100_000 + i));
    run.metadata.generation = Some(1);
    run.metadata.creation_timestamp = Some(t(created));
    run.metadata.labels = Some(
        [
            ("app.kubernetes.io/created-by".to_string(), "argo-events".to_string()),
            ("cihealer.dev/error-hash".to_string(), format!("{:016x}", i * 31)),
        ]
        .into(),
    );
    let final_ = phase.is_terminal();
    run.status = Some(HealingRunStatus {
        phase: Some(phase),
        observed_generation: Some(1),
        conditions: vec![
            cond("Accepted", true, "SpecValid", "the spec is valid", created),
            cond("Triaged", true, "Classified", &format!("classified as {class} (confidence 0.92)"), created),
            cond("Duplicate", false, "NoActiveDuplicate", "no other active run heals the same failure", created),
            cond("Healing", !final_, "AttemptRunning", "attempt 3 of 3 is running", created + 1),
            cond("Fixed", phase == RunPhase::Fixed, "ValidationPassed", "attempt 3 passed validation", created + 90),
        ],
        short_sha: Some(sha[..7].into()),
        failure_class: Some(FailureClass::parse(class).expect("a class name")),
        agent: Some("rust".into()),
        error_hash: Some(format!("{:016x}", i * 31)),
        attempts: 3,
        current_attempt: Some(3),
        patch: (phase == RunPhase::Fixed).then(|| PatchRef {
            attempt: format!("{name}-3"),
            config_map: Some(format!("{name}-3-patch")),
            diffstat: Some(Diffstat { files: 1, insertions: 3, deletions: 1 }),
            protected_paths: vec![],
        }),
        escalation_reason: (phase == RunPhase::Escalated).then(|| "3 attempts failed validation".into()),
        duplicate_of: None,
        pull_request: None,
        report: None,
        start_time: Some(t(created + 1)),
        usage: None,
        completion_time: final_.then(|| t(created + 60 + (i as i64 % 600))),
        ..Default::default()
    });
    run.metadata.managed_fields = Some(vec![
        managed(
            "argo-events",
            None,
            serde_json::json!({"f:metadata": {"f:labels": {".": {}, "f:app.kubernetes.io/created-by": {}}},
                "f:spec": {".": {}, "f:policy": {".": {}, "f:agent": {}, "f:maxAttempts": {}, "f:mode": {}},
                "f:source": {".": {}, "f:branch": {}, "f:deliveryId": {}, "f:event": {}, "f:failedSteps": {}, "f:headSha": {},
                "f:jobId": {}, "f:jobName": {}, "f:provider": {}, "f:repository": {}, "f:runAttempt": {}, "f:runId": {},
                "f:sender": {}, "f:url": {}, "f:workflowName": {}}}}),
            created,
        ),
        managed(
            "ci-healer",
            Some("status"),
            serde_json::json!({"f:status": {"f:agent": {}, "f:attempts": {}, "f:conditions": {
                "k:{\"type\":\"Accepted\"}": {".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:observedGeneration": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
                "k:{\"type\":\"Triaged\"}": {".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:observedGeneration": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
                "k:{\"type\":\"Duplicate\"}": {".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:observedGeneration": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
                "k:{\"type\":\"Healing\"}": {".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:observedGeneration": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
                "k:{\"type\":\"Fixed\"}": {".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:observedGeneration": {}, "f:reason": {}, "f:status": {}, "f:type": {}}},
                "f:currentAttempt": {}, "f:errorHash": {}, "f:failureClass": {}, "f:observedGeneration": {}, "f:phase": {},
                "f:shortSha": {}, "f:startTime": {}}}),
            created + 90,
        ),
    ]);
    run
}

fn full_attempt(run: &HealingRun, n: i32, config: &ControllerConfig) -> HealingAttempt {
    let mut a = build_attempt(run, n, "rust", config).expect("the default config has a rust profile");
    let created = run.metadata.creation_timestamp.as_ref().unwrap().0.as_second() - 1_780_000_000 + n as i64 * 20;
    a.metadata.uid = Some(format!("{:08x}-1111-4000-8000-{:012x}", n, created));
    a.metadata.resource_version = Some(format!("{}", 500_000 + created));
    a.metadata.generation = Some(1);
    a.metadata.creation_timestamp = Some(t(created));
    let passed = n == 3;
    a.status = Some(HealingAttemptStatus {
        phase: Some(if passed { AttemptPhase::Succeeded } else { AttemptPhase::Failed }),
        observed_generation: Some(1),
        conditions: vec![
            cond(
                "JobCreated",
                true,
                "JobCreated",
                &format!("Job {} carries out the attempt", a.metadata.name.as_ref().unwrap()),
                created,
            ),
            cond(
                "Completed",
                true,
                if passed { "ValidationPassed" } else { "ValidationFailed" },
                "Passed: ValidationPassed 1 file(s) changed; passed: cargo fmt --check",
                created + 15,
            ),
        ],
        job_name: a.metadata.name.clone(),
        verdict: Some(Verdict {
            outcome: if passed { Outcome::Passed } else { Outcome::Failed },
            reason: if passed { "ValidationPassed" } else { "ValidationFailed" }.into(),
            summary: "1 file(s) changed; passed: cargo fmt --all -- --check".into(),
            diffstat: Some(Diffstat { files: 1, insertions: 3, deletions: 1 }),
            tokens: Some(TokenUsage { input: 2400, output: 600, ..Default::default() }),
            durations: Some(StepDurations {
                checkout_seconds: Some(0.4),
                agent_seconds: Some(6.5),
                validate_seconds: Some(2.1),
            }),
            patch_sha256: Some(format!("{:064x}", created)),
            protected_paths: vec![],
        }),
        diagnosis: Some("cargo fmt reformatted src/lib.rs".into()),
        failure_reason: (!passed).then(|| "ValidationFailed".into()),
        patch_config_map: passed.then(|| configmap::patch_name(a.metadata.name.as_ref().unwrap())),
        start_time: Some(t(created + 1)),
        completion_time: Some(t(created + 15)),
    });
    a.metadata.managed_fields = Some(vec![
        managed(
            "ci-healer",
            None,
            serde_json::json!({"f:metadata": {"f:labels": {}, "f:ownerReferences": {}}, "f:spec": {}}),
            created,
        ),
        managed(
            "ci-healer",
            Some("status"),
            serde_json::json!({"f:status": {"f:conditions": {}, "f:jobName": {}, "f:phase": {}, "f:verdict": {}}}),
            created + 15,
        ),
    ]);
    a
}

/// Feed `bytes` (an object as the API server sends it) into a store the way a watch does.
fn ingest<K>(writer: &mut Writer<K>, bytes: &[u8], slim: fn(&mut K))
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + 'static,
{
    let mut obj: K = serde_json::from_slice(bytes).expect("the object deserialises");
    slim(&mut obj);
    writer.apply_watcher_event(&Event::Apply(obj));
}

struct Latency {
    p50: Duration,
    p99: Duration,
    max: Duration,
    bytes: usize,
}

/// GET every URL `n` times, round-robin (so a change in the machine's load hits every case alike),
/// after 20 warm-up rounds.
async fn measure(client: &reqwest::Client, urls: &[String], n: usize) -> Vec<Latency> {
    let mut samples = vec![Vec::with_capacity(n); urls.len()];
    let mut bytes = vec![0; urls.len()];
    for round in 0..n + 20 {
        for (i, url) in urls.iter().enumerate() {
            let start = Instant::now();
            let body =
                client.get(url).send().await.expect("GET").error_for_status().expect("200").bytes().await.unwrap();
            let took = start.elapsed();
            if round >= 20 {
                samples[i].push(took);
                bytes[i] = body.len();
            }
        }
    }
    samples
        .into_iter()
        .zip(bytes)
        .map(|(mut s, bytes)| {
            s.sort();
            let at = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
            Latency { p50: at(0.50), p99: at(0.99), max: *s.last().unwrap(), bytes }
        })
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let n_runs = env_or("DASHBOARD_BENCH_RUNS", 10_000);
    let per_run = env_or("DASHBOARD_BENCH_ATTEMPTS_PER_RUN", 3) as i32;
    let requests = env_or("DASHBOARD_BENCH_REQUESTS", 400);
    let config = ControllerConfig::default();
    // reqwest is built without a default TLS provider (the crate picks ring); plain HTTP here.
    let _ = rustls::crypto::ring::default_provider().install_default();

    // Memory: the dashboard's projections.
    let rss_before = rss_bytes();
    let base = heap();
    let (runs, mut runs_w) = reflector::store::<RunDoc>();
    let (attempts, mut attempts_w) = reflector::store::<AttemptDoc>();
    let (files, mut files_w) = reflector::store::<FilesDoc>();
    let (mut json_runs, mut json_attempts) = (0usize, 0usize);
    for i in 0..n_runs {
        let run = full_run(i);
        let bytes = serde_json::to_vec(&run).unwrap();
        json_runs += bytes.len();
        ingest(&mut runs_w, &bytes, cache::slim_run);
        for n in 1..=per_run {
            let bytes = serde_json::to_vec(&full_attempt(&run, n, &config)).unwrap();
            json_attempts += bytes.len();
            ingest(&mut attempts_w, &bytes, cache::slim_attempt);
        }
    }
    let ours = heap() - base;
    let rss_ours = rss_bytes();

    // The ConfigMaps the run pages read (a context per run, a patch per fixed run), reported apart.
    let base_files = heap();
    let mut json_files = 0usize;
    for i in 0..n_runs {
        let run = full_run(i);
        let excerpt = format!(
            "error[E0308]: mismatched types\n --> src/lib.rs:{i}:5\n{}",
            "   |     ^^^^ expected `u32`, found `&str`\n".repeat(40)
        );
        let triage = serde_json::json!({"failureClass": "rust_clippy", "confidence": 0.92, "profile": "rust", "action": "agent",
            "errorHash": "0f0f0f0f0f0f0f0f", "excerpt": excerpt, "diagnostics": [{"tool": "rustc", "message": "mismatched types"}]});
        let mut cms = vec![configmap::build_context(&run, &excerpt, &triage.to_string()).unwrap()];
        if run.status.as_ref().and_then(|s| s.patch.as_ref()).is_some() {
            let patch = format!(
                "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -{i},3 +{i},3 @@\n fn f() {{\n-    let x: u32 = \"1\";\n+    let x: u32 = 1;\n }}\n"
            );
            cms.push(configmap::build_patch(&full_attempt(&run, 3, &config), &patch).unwrap());
        }
        for cm in cms {
            let bytes = serde_json::to_vec(&cm).unwrap();
            json_files += bytes.len();
            ingest(&mut files_w, &bytes, cache::slim_files);
        }
    }
    let ours_files = heap() - base_files;

    // Baseline: a plain reflector of the full typed objects, from the same bytes.
    let base_full = heap();
    let (full_runs, mut full_runs_w) = reflector::store::<HealingRun>();
    let (full_attempts, mut full_attempts_w) = reflector::store::<HealingAttempt>();
    for i in 0..n_runs {
        let run = full_run(i);
        ingest(&mut full_runs_w, &serde_json::to_vec(&run).unwrap(), |_| {});
        for n in 1..=per_run {
            ingest(&mut full_attempts_w, &serde_json::to_vec(&full_attempt(&run, n, &config)).unwrap(), |_| {});
        }
    }
    let full = heap() - base_full;
    assert_eq!((full_runs.len(), full_attempts.len()), (runs.len(), attempts.len()));
    drop((full_runs, full_runs_w, full_attempts, full_attempts_w));

    // Latency: the real router over loopback HTTP, next to a pre-rendered copy of the same page.
    let cache = Cache::from_stores(runs.clone(), attempts.clone(), files.clone());
    let app_cache = cache.clone();
    let app = web::App::new(cache, Links::default());
    app.set_ready();
    let server_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let addr = server_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    });
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let page = client_rt.block_on(async {
        let app = app.clone();
        server_rt.spawn(async move {
            let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
            axum::serve(listener, web::router(app)).await.unwrap();
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.get(format!("http://{addr}/")).send().await.unwrap().text().await.unwrap()
    });
    assert!(page.contains("data-run="), "the runs page lists runs");
    let bare_addr = server_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body: &'static str = Box::leak(page.clone().into_boxed_str());
        let bare =
            axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(body) }));
        tokio::spawn(async move { axum::serve(listener, bare).await.unwrap() });
        addr
    });
    let some_run =
        runs.state().iter().find(|r| r.status.as_ref().and_then(|s| s.patch.as_ref()).is_some()).cloned().unwrap();
    let run_url = format!(
        "http://{addr}/runs/{}/{}",
        some_run.metadata.namespace.as_deref().unwrap(),
        some_run.metadata.name.as_deref().unwrap()
    );
    let cases = [
        ("bare baseline: same bytes, pre-rendered", format!("http://{bare_addr}/")),
        ("runs page `/` (50 newest of all)", format!("http://{addr}/")),
        (
            "runs page, filtered `/?phase=Escalated&repository=acme/api`",
            format!("http://{addr}/?phase=Escalated&repository=acme%2Fapi"),
        ),
        ("runs page, deep `/?page=150`", format!("http://{addr}/?page=150")),
        ("run page (3 attempts, patch)", run_url),
        ("repositories page", format!("http://{addr}/repositories")),
    ];
    let urls: Vec<String> = cases.iter().map(|(_, u)| u.clone()).collect();
    let latencies = client_rt.block_on(measure(&client, &urls, requests));
    let results: Vec<(&str, Latency)> = cases.iter().map(|(n, _)| *n).zip(latencies).collect();

    // The same pages rendered in-process, timed in thread CPU time (independent of the machine's load).
    let (ns, name) = (some_run.metadata.namespace.clone().unwrap(), some_run.metadata.name.clone().unwrap());
    let q = |s: &str| -> ci_healer::dashboard::view::RunQuery { serde_urlencoded_like(s) };
    let cpu = [
        ("runs page `/`", cpu_per_call(requests, || app.index_html(&q("")).unwrap().len())),
        (
            "runs page, filtered",
            cpu_per_call(requests, || app.index_html(&q("phase=Escalated&repository=acme/api")).unwrap().len()),
        ),
        ("runs page, deep", cpu_per_call(requests, || app.index_html(&q("page=150")).unwrap().len())),
        ("run page", cpu_per_call(requests, || app.run_html(&ns, &name).unwrap().unwrap().len())),
        ("repositories page", cpu_per_call(requests, || app.repositories_html().unwrap().len())),
    ];
    // With the cache changing before every request (no memoised sort or summary): the worst case.
    let cold = cpu_per_call(requests.min(100), || {
        app_cache.notify(ci_healer::dashboard::cache::Change::All);
        app.index_html(&q("")).unwrap().len()
    });

    println!(
        "Dashboard bench: {n_runs} runs, {} attempts, {requests} requests per URL (after 20 warm-up), loopback HTTP, one server thread\n",
        n_runs * per_run as usize
    );
    println!("| page | p50 (ms) | p99 (ms) | max (ms) | bytes |");
    println!("|---|---|---|---|---|");
    for (name, l) in &results {
        println!("| {name} | {} | {} | {} | {} |", ms(l.p50), ms(l.p99), ms(l.max), l.bytes);
    }
    println!();
    println!("| page, rendered in-process | CPU p50 (ms) | CPU p99 (ms) | bytes |");
    println!("|---|---|---|---|");
    for (name, (p50, p99, bytes)) in &cpu {
        println!("| {name} | {p50:.2} | {p99:.2} | {bytes} |");
    }
    println!(
        "| runs page `/`, the cache changed before each request (re-sort, re-count) | {:.2} | {:.2} | {} |",
        cold.0, cold.1, cold.2
    );
    println!();
    println!("| cache | objects | JSON from the API server (MiB) | heap held (MiB) | bytes per object |");
    println!("|---|---|---|---|---|");
    let objects = n_runs * (1 + per_run as usize);
    println!(
        "| bare baseline: kube-runtime reflector of the full HealingRun and HealingAttempt types | {objects} | {:.1} | {:.1} | {} |",
        mib(json_runs + json_attempts),
        mib(full),
        full / objects
    );
    println!(
        "| dashboard: slim projections of runs and attempts | {objects} | {:.1} | {:.1} | {} |",
        mib(json_runs + json_attempts),
        mib(ours),
        ours / objects
    );
    println!(
        "| dashboard: + the runs' context and patch ConfigMaps (masked excerpt ≤ 16 KiB, patch) | {} | {:.1} | {:.1} | {} |",
        files.len(),
        mib(json_files),
        mib(ours_files),
        ours_files / files.len().max(1)
    );
    println!(
        "\nprocess RSS: {:.1} MiB before filling, {:.1} MiB with the runs and attempts cached (bench process, includes the allocator's slack)",
        mib(rss_before),
        mib(rss_ours)
    );
}

/// A query string as the router's `Query` extractor reads it (`a=b&c=d`, values percent-decoded).
fn serde_urlencoded_like(s: &str) -> ci_healer::dashboard::view::RunQuery {
    let mut m = serde_json::Map::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy().to_string();
        let v = match v.parse::<u64>() {
            Ok(n) if k == "page" || k == "per_page" => serde_json::Value::from(n),
            _ => serde_json::Value::from(v),
        };
        m.insert(k.to_string(), v);
    }
    serde_json::from_value(serde_json::Value::Object(m)).unwrap()
}
