//! Controller benchmark on the local control plane (kube-apiserver, etcd, the real
//! kube-controller-manager and kube-scheduler; `make control-plane`), with the release build of
//! `healer controller` as a subprocess. Every figure stands next to a bare client doing the same API
//! work in the same run:
//!
//! - **P1 latency**: a HealingRun created → its first Job seen on a watch, over sequential runs, next
//!   to a bare create of a HealingRun → its watch event (no controller in that namespace).
//! - **P2 burst**: N runs created at once (concurrency C) → N Jobs, next to a bare client creating the
//!   same objects (run, attempt, Job: copies of what the controller made) with the same concurrency.
//!   Also the time the run creates themselves took, and the controller's CPU seconds per 1,000 runs.
//! - **P3 writes**: the controller's writes (create/update/patch/delete) per attempt lifecycle (run
//!   created → attempt Succeeded → run Fixed), counted from the API server's audit log
//!   (`hack/control-plane.sh audit-log`; the controller's requests are told apart by impersonating a
//!   user of its own), sequential and in the burst, and its writes per minute at rest with the burst's
//!   runs settled. The bare figure is what a lifecycle needs at least: the attempt, the Job and one
//!   status write each for the run's Running and Fixed.
//! - **P4 memory**: the controller's resident set (`VmRSS`) idle and with the burst's runs, attempts,
//!   Jobs and pods in its caches, next to a bare process that only reflects the same four kinds.
//!
//! The test plays the kubelet (the pods are bound by the real scheduler to a Node registered here and
//! finished with a passing verdict); nothing runs in them.
//!
//! `cargo bench --bench controller` (`make bench`). Environment: `BENCH_SEQ` (P1 runs, default 200),
//! `BENCH_BURST` (P2 runs, default 1000), `BENCH_CONCURRENCY` (default 32), `BENCH_LIFECYCLES` (P3
//! sequential lifecycles, default 20), `BENCH_REST_SECONDS` (default 60).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ci_healer::contract::Outcome;
use ci_healer::crd::{HealingAttempt, HealingRun, RunPhase};
use ci_healer::runner::sim::{self, StepOutcome};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use support::Apis;

/// The user the benchmark's controllers act as (impersonated by the admin credentials), so their
/// requests can be told apart from the benchmark's own in the audit log.
const CONTROLLER_USER: &str = "bench:ci-healer-controller";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The `p`-quantile (0..=1) of `v` (nearest rank).
fn quantile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[i]
}

/// The admin kubeconfig with `as: CONTROLLER_USER` (groups `system:masters`), written to `dir`.
fn impersonating_kubeconfig(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(support::kubeconfig()).unwrap();
    let mut kc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    for u in kc["users"].as_sequence_mut().unwrap() {
        let user = u["user"].as_mapping_mut().unwrap();
        user.insert("as".into(), CONTROLLER_USER.into());
        user.insert("as-groups".into(), serde_yaml_ng::Value::Sequence(vec!["system:masters".into()]));
    }
    let p = dir.join("controller.kubeconfig");
    std::fs::write(&p, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    p
}

/// `healer controller` (release build) for one namespace, with the production defaults (Lease of
/// 15 s, info logs); killed on drop.
struct Controller {
    child: Child,
    log: PathBuf,
}

impl Controller {
    async fn start(ns: &str, kubeconfig: &Path, dir: &Path) -> Self {
        let log = dir.join(format!("controller-{ns}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_healer"))
            .args(["controller", "--namespace", ns, "--metrics-addr", "127.0.0.1:0"])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .env("HEALER_CRD_WAIT_SECONDS", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start healer controller");
        let c = Self { child, log };
        let log = c.log.clone();
        support::wait_for("the controller to start", Duration::from_secs(60), || {
            let log = log.clone();
            async move { std::fs::read_to_string(&log).ok()?.contains("controllers started").then_some(()) }
        })
        .await;
        c
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    ticks / hz
}

/// Resident set of a process in MiB (`VmRSS` of `/proc/<pid>/status`).
fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The sample HealingRun named `name` in `ns`, with its own head SHA (so no run duplicates another).
fn run_object(ns: &str, name: &str, i: usize) -> HealingRun {
    let text =
        std::fs::read_to_string(support::root().join("config/samples/healingrun-from-workflow-job.yaml")).unwrap();
    let mut run: HealingRun = serde_yaml_ng::from_str(&text).unwrap();
    run.metadata = kube::api::ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() };
    run.spec.source.head_sha = format!("{:040x}", 0xbe4c_0000_0000u64 + i as u64);
    run
}

/// Names of the Jobs of `ns` as a watch sees them, first sight only.
fn watch_jobs(client: &Client, ns: &str) -> tokio::sync::mpsc::UnboundedReceiver<(String, Instant)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let jobs = Api::<Job>::namespaced(client.clone(), ns);
    tokio::spawn(async move {
        let mut seen = HashSet::new();
        let mut s = watcher(jobs, watcher::Config::default()).applied_objects().boxed();
        while let Some(Ok(j)) = s.next().await {
            if seen.insert(j.name_any()) && tx.send((j.name_any(), Instant::now())).is_err() {
                return;
            }
        }
    });
    rx
}

/// Names of the HealingRuns of `ns` as a watch sees them, first sight only.
fn watch_runs(client: &Client, ns: &str) -> tokio::sync::mpsc::UnboundedReceiver<(String, Instant)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let runs = Api::<HealingRun>::namespaced(client.clone(), ns);
    tokio::spawn(async move {
        let mut seen = HashSet::new();
        let mut s = watcher(runs, watcher::Config::default()).applied_objects().boxed();
        while let Some(Ok(r)) = s.next().await {
            if seen.insert(r.name_any()) && tx.send((r.name_any(), Instant::now())).is_err() {
                return;
            }
        }
    });
    rx
}

async fn wait_named(rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>, name: &str) -> Instant {
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => panic!("timed out waiting for {name} on a watch"),
            m = rx.recv() => {
                let (n, at) = m.expect("watch ended");
                if n == name {
                    return at;
                }
            }
        }
    }
}

async fn wait_count(rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>, n: usize, what: &str) -> Instant {
    let mut seen = 0;
    let mut last = Instant::now();
    let deadline = tokio::time::sleep(Duration::from_secs(900));
    tokio::pin!(deadline);
    while seen < n {
        tokio::select! {
            _ = &mut deadline => panic!("timed out: {seen} of {n} {what}"),
            m = rx.recv() => { last = m.expect("watch ended").1; seen += 1; }
        }
    }
    last
}

/// One audit event, the fields counted here.
#[derive(Debug, Clone)]
struct Request {
    verb: String,
    resource: String,
    at: jiff::Timestamp,
}

/// The controller's requests in `ns` (ResponseComplete stage) from the audit log.
fn controller_requests(ns: &str) -> Vec<Request> {
    let out = Command::new("bash")
        .arg(support::root().join("hack/control-plane.sh"))
        .arg("audit-log")
        .output()
        .expect("control-plane.sh audit-log");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(CONTROLLER_USER) && l.contains(ns))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["stage"] == "ResponseComplete" && e["impersonatedUser"]["username"] == CONTROLLER_USER)
        .filter(|e| e["objectRef"]["namespace"] == ns)
        .map(|e| {
            let o = &e["objectRef"];
            let mut resource = o["resource"].as_str().unwrap_or("").to_string();
            if let Some(s) = o["subresource"].as_str() {
                resource = format!("{resource}/{s}");
            }
            Request {
                verb: e["verb"].as_str().unwrap_or("").into(),
                resource,
                at: e["requestReceivedTimestamp"].as_str().and_then(|t| t.parse().ok()).unwrap_or_default(),
            }
        })
        .collect()
}

fn is_write(r: &Request) -> bool {
    matches!(r.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection")
}

fn breakdown(reqs: &[&Request]) -> String {
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for r in reqs {
        *m.entry(format!("{} {}", r.verb, r.resource)).or_default() += 1;
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    v.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
}

/// A copy of `obj` that a client can create: server-set metadata and status removed, `name` set,
/// owned by `owner` (kind, name, uid) if given.
fn creatable(obj: &serde_json::Value, name: &str, owner: Option<(&str, &str, &str)>) -> serde_json::Value {
    let mut o = obj.clone();
    let m = o["metadata"].as_object_mut().unwrap();
    for k in ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink"] {
        m.remove(k);
    }
    m.insert("name".into(), name.into());
    if let Some((kind, n, uid)) = owner {
        let api = if kind == "HealingRun" || kind == "HealingAttempt" { "cihealer.dev/v1alpha1" } else { "batch/v1" };
        m.insert(
            "ownerReferences".into(),
            serde_json::json!([{"apiVersion": api, "kind": kind, "name": n, "uid": uid, "controller": true, "blockOwnerDeletion": true}]),
        );
    }
    o.as_object_mut().unwrap().remove("status");
    o
}

/// A Job as a client may create it: without the selector and labels the API server adds.
fn creatable_job(job: &serde_json::Value, name: &str, owner: (&str, &str, &str)) -> serde_json::Value {
    let mut j = creatable(job, name, Some(owner));
    j["spec"].as_object_mut().unwrap().remove("selector");
    for labels in [&mut j["spec"]["template"]["metadata"]["labels"]] {
        if let Some(l) = labels.as_object_mut() {
            l.retain(|k, _| !k.contains("controller-uid") && !k.contains("job-name"));
        }
    }
    if let Some(l) = j["metadata"]["labels"].as_object_mut() {
        l.retain(|k, _| !k.contains("controller-uid") && !k.contains("job-name"));
    }
    j
}

/// Play the kubelet for every pod of `ns` that is bound and not finished: report it Running, then
/// finished with a passing verdict. Returns how many were finished.
async fn finish_all_pods(apis: &Apis, expected: usize, concurrency: usize) -> usize {
    let node = support::node_for(&apis.ns);
    let pods = support::wait_for("every pod bound", Duration::from_secs(600), || {
        let (pods, node) = (apis.pods.clone(), node.clone());
        async move {
            let l = pods.list(&ListParams::default()).await.ok()?.items;
            let bound: Vec<Pod> = l
                .into_iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str()))
                .collect();
            (bound.len() >= expected).then_some(bound)
        }
    })
    .await;
    let verdict = support::verdict(Outcome::Passed, "ValidationPassed", "ok");
    let client = apis.client.clone();
    futures::stream::iter(pods)
        .map(|p| {
            let (client, verdict) = (client.clone(), verdict.clone());
            async move {
                let done = [
                    StepOutcome::new("prepare", 0, None),
                    StepOutcome::new("checkout", 0, None),
                    StepOutcome::new("agent", 0, None),
                ];
                let p = sim::report_running(&client, &p, &done).await?;
                let all = [
                    StepOutcome::new("prepare", 0, None),
                    StepOutcome::new("checkout", 0, None),
                    StepOutcome::new("agent", 0, Some(r#"{"diagnosis":"bench"}"#)),
                    StepOutcome::new("validate", 0, Some(&verdict)),
                ];
                sim::report_finished(&client, &p, &all).await
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await
        .expect("report pods")
        .len()
}

async fn wait_all_fixed(apis: &Apis, n: usize) {
    support::wait_for(&format!("{n} runs Fixed"), Duration::from_secs(900), || {
        let runs = apis.runs.clone();
        async move {
            let l = runs.list(&ListParams::default()).await.ok()?.items;
            let fixed = l.iter().filter(|r| r.status.as_ref().and_then(|s| s.phase) == Some(RunPhase::Fixed)).count();
            (fixed >= n).then_some(())
        }
    })
    .await;
}

/// `BENCH_REFLECT_NS` set: this process is the bare P4 client. It reflects runs, attempts, Jobs and
/// pods of that namespace (full objects, as a plain kube-runtime reflector keeps them), then prints
/// its `VmRSS` in MiB and exits.
async fn bare_reflector(ns: &str) {
    let client = support::client().await;
    async fn reflect<K>(api: Api<K>) -> reflector::Store<K>
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let (reader, writer) = reflector::store();
        let stream = reflector(writer, watcher(api, watcher::Config::default())).applied_objects();
        tokio::spawn(async move { stream.for_each(|_| async {}).await });
        reader.wait_until_ready().await.expect("reflector ready");
        reader
    }
    let a = reflect(Api::<HealingRun>::namespaced(client.clone(), ns)).await;
    let b = reflect(Api::<HealingAttempt>::namespaced(client.clone(), ns)).await;
    let c = reflect(Api::<Job>::namespaced(client.clone(), ns)).await;
    let d = reflect(Api::<Pod>::namespaced(client.clone(), ns)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("{} {} {} {} {:.1}", a.len(), b.len(), c.len(), d.len(), rss_mib(std::process::id()));
}

fn bare_reflector_rss(ns: &str) -> (String, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_REFLECT_NS", ns)
        .stderr(Stdio::inherit())
        .output()
        .expect("bare reflector");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<&str> = text.split_whitespace().collect();
    let rss = v.last().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (v[..v.len().saturating_sub(1)].join("/"), rss)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if let Ok(ns) = std::env::var("BENCH_REFLECT_NS") {
        rt.block_on(bare_reflector(&ns));
        return;
    }
    rt.block_on(bench());
}

struct Row {
    figure: String,
    controller: String,
    bare: String,
    ratio: String,
    goal: String,
}

fn row(figure: &str, controller: String, bare: String, ratio: String, goal: &str) -> Row {
    Row { figure: figure.into(), controller, bare, ratio, goal: goal.into() }
}

async fn bench() {
    let seq = env_usize("BENCH_SEQ", 200);
    let burst = env_usize("BENCH_BURST", 1000);
    let conc = env_usize("BENCH_CONCURRENCY", 32);
    let lifecycles = env_usize("BENCH_LIFECYCLES", 20);
    let rest = env_usize("BENCH_REST_SECONDS", 60) as u64;
    let client = support::client().await;
    support::install_crds(&client).await;
    let dir = tempfile::Builder::new().prefix("ci-healer-bench-").tempdir().unwrap();
    let kc = impersonating_kubeconfig(dir.path());
    let mut rows = Vec::new();
    let mut namespaces = Vec::new();
    println!(
        "controller benchmark: release build, local control plane with the real kube-controller-manager and kube-scheduler"
    );
    println!(
        "P1 {seq} sequential runs; P2 burst of {burst} runs at concurrency {conc}; P3 {lifecycles} sequential lifecycles, {rest} s at rest\n"
    );

    // P1: latency to the first Job, next to a bare create → watch event.
    let bare_ns = support::namespace(&client, "bench-bare").await;
    let p1_ns = support::namespace(&client, "bench-p1").await;
    namespaces.extend([bare_ns.clone(), p1_ns.clone()]);
    let bare = Apis::new(&client, &bare_ns);
    let p1 = Apis::new(&client, &p1_ns);
    support::ensure_node(&bare).await;
    support::ensure_node(&p1).await;
    let ctrl1 = Controller::start(&p1_ns, &kc, dir.path()).await;
    let mut rx = watch_runs(&client, &bare_ns);
    let mut bare_lat = Vec::new();
    for i in 0..seq {
        let name = format!("rt-{i}");
        let t0 = Instant::now();
        bare.runs.create(&PostParams::default(), &run_object(&bare_ns, &name, i)).await.unwrap();
        bare_lat.push(wait_named(&mut rx, &name).await.duration_since(t0).as_secs_f64() * 1000.0);
    }
    drop(rx);
    let mut rx = watch_jobs(&client, &p1_ns);
    let mut ctrl_lat = Vec::new();
    for i in 0..seq {
        let name = format!("p1-{i}");
        let t0 = Instant::now();
        p1.runs.create(&PostParams::default(), &run_object(&p1_ns, &name, i)).await.unwrap();
        ctrl_lat.push(wait_named(&mut rx, &format!("{name}-1")).await.duration_since(t0).as_secs_f64() * 1000.0);
    }
    drop(rx);
    for (q, label, goal) in [
        (0.5, "P1 run → first Job, p50 (ms)", "≤ 3× bare, ≤ 50 ms"),
        (0.99, "P1 run → first Job, p99 (ms)", "≤ 250 ms"),
    ] {
        let (c, b) = (quantile(&ctrl_lat, q), quantile(&bare_lat, q));
        rows.push(row(label, format!("{c:.1}"), format!("{b:.1}"), format!("{:.1}×", c / b), goal));
    }
    // The objects the controller made, as templates for the bare burst.
    let run_tmpl = serde_json::to_value(p1.runs.get("p1-0").await.unwrap()).unwrap();
    let attempt_tmpl = serde_json::to_value(p1.attempts.get("p1-0-1").await.unwrap()).unwrap();
    let job_tmpl = serde_json::to_value(p1.jobs.get("p1-0-1").await.unwrap()).unwrap();
    drop(ctrl1);

    // P2: a burst, next to a bare client making the run, attempt and Job itself.
    let p2_ns = support::namespace(&client, "bench-p2").await;
    let bare2_ns = support::namespace(&client, "bench-p2-bare").await;
    namespaces.extend([p2_ns.clone(), bare2_ns.clone()]);
    let p2 = Apis::new(&client, &p2_ns);
    let bare2 = Apis::new(&client, &bare2_ns);
    support::ensure_node(&p2).await;
    support::ensure_node(&bare2).await;

    let mut rx = watch_jobs(&client, &bare2_ns);
    let t0 = Instant::now();
    futures::stream::iter(0..burst)
        .map(|i| {
            let (b, ns) = (bare2.clone(), bare2_ns.clone());
            let (rt, at, jt) = (&run_tmpl, &attempt_tmpl, &job_tmpl);
            async move {
                let name = format!("b-{i}");
                let mut run = creatable(rt, &name, None);
                run["metadata"]["namespace"] = ns.clone().into();
                run["spec"]["source"]["headSha"] = format!("{:040x}", i).into();
                let run: HealingRun = serde_json::from_value(run).unwrap();
                let run = b.runs.create(&PostParams::default(), &run).await?;
                let an = format!("{name}-1");
                let mut att = creatable(at, &an, Some(("HealingRun", &name, &run.uid().unwrap())));
                att["metadata"]["namespace"] = ns.clone().into();
                att["spec"]["runName"] = name.clone().into();
                let att: HealingAttempt = serde_json::from_value(att).unwrap();
                let att = b.attempts.create(&PostParams::default(), &att).await?;
                let mut job = creatable_job(jt, &an, ("HealingAttempt", &an, &att.uid().unwrap()));
                job["metadata"]["namespace"] = ns.into();
                let job: Job = serde_json::from_value(job).unwrap();
                b.jobs.create(&PostParams::default(), &job).await.map(|_| ())
            }
        })
        .buffer_unordered(conc)
        .try_collect::<Vec<_>>()
        .await
        .expect("bare burst");
    let bare_burst = wait_count(&mut rx, burst, "bare Jobs").await.duration_since(t0).as_secs_f64();
    drop(rx);

    let ctrl2 = Controller::start(&p2_ns, &kc, dir.path()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = rss_mib(ctrl2.pid());
    let cpu0 = cpu_seconds(ctrl2.pid());
    let mut rx = watch_jobs(&client, &p2_ns);
    let t0 = Instant::now();
    futures::stream::iter(0..burst)
        .map(|i| {
            let (p, ns) = (p2.clone(), p2_ns.clone());
            async move { p.runs.create(&PostParams::default(), &run_object(&ns, &format!("p2-{i}"), i)).await.map(|_| ()) }
        })
        .buffer_unordered(conc)
        .try_collect::<Vec<_>>()
        .await
        .expect("burst of runs");
    let creates = t0.elapsed().as_secs_f64();
    let ctrl_burst = wait_count(&mut rx, burst, "Jobs").await.duration_since(t0).as_secs_f64();
    drop(rx);
    let cpu_to_jobs = cpu_seconds(ctrl2.pid()) - cpu0;
    rows.push(row(
        &format!("P2 {burst} runs → {burst} Jobs (s)"),
        format!("{ctrl_burst:.1}"),
        format!("{bare_burst:.1}"),
        format!("{:.1}×", ctrl_burst / bare_burst),
        "≤ 2× bare",
    ));
    rows.push(row(
        &format!("P2 the {burst} run creates alone (s)"),
        format!("{creates:.1}"),
        "—".into(),
        "—".into(),
        "(controller running)",
    ));

    // Settle the burst: every pod finishes with a passing verdict; every run goes Fixed.
    let t_settle = Instant::now();
    finish_all_pods(&p2, burst, conc.min(16)).await;
    wait_all_fixed(&p2, burst).await;
    let settle = t_settle.elapsed().as_secs_f64();
    let cpu_total = cpu_seconds(ctrl2.pid()) - cpu0;
    rows.push(row(
        "CPU s per 1,000 runs (to Jobs; whole lifecycle)",
        format!("{:.1}; {:.1}", cpu_to_jobs * 1000.0 / burst as f64, cpu_total * 1000.0 / burst as f64),
        "—".into(),
        "—".into(),
        "",
    ));
    let burst_writes = controller_requests(&p2_ns).into_iter().filter(is_write).count();

    // P3 at rest: nothing changes; the controller should write nothing (the leader Lease aside).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let from = jiff::Timestamp::now();
    tokio::time::sleep(Duration::from_secs(rest)).await;
    let to = jiff::Timestamp::now();
    let reqs = controller_requests(&p2_ns);
    let at_rest: Vec<&Request> = reqs.iter().filter(|r| r.at >= from && r.at < to).collect();
    let per_min = |v: &[&Request]| v.len() as f64 * 60.0 / rest as f64;
    let rest_writes: Vec<&Request> =
        at_rest.iter().copied().filter(|r| is_write(r) && r.resource != "leases").collect();
    let lease_writes: Vec<&Request> =
        at_rest.iter().copied().filter(|r| is_write(r) && r.resource == "leases").collect();
    let rest_reads: Vec<&Request> =
        at_rest.iter().copied().filter(|r| !is_write(r) && r.resource != "leases").collect();

    // P4: memory with the burst's objects cached.
    let rss_full = rss_mib(ctrl2.pid());
    let (counts, bare_rss) = bare_reflector_rss(&p2_ns);
    drop(ctrl2);

    // P3: writes per lifecycle, sequential.
    let p3_ns = support::namespace(&client, "bench-p3").await;
    namespaces.push(p3_ns.clone());
    let p3 = Apis::new(&client, &p3_ns);
    let ctrl3 = Controller::start(&p3_ns, &kc, dir.path()).await;
    for i in 0..lifecycles {
        let name = format!("p3-{i}");
        p3.runs.create(&PostParams::default(), &run_object(&p3_ns, &name, i)).await.unwrap();
        let job = p3.job(&format!("{name}-1")).await;
        support::finish_attempt(&p3, &job, &support::verdict(Outcome::Passed, "ValidationPassed", "ok")).await;
        p3.run_phase(&name, "Fixed").await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(ctrl3);
    let reqs3 = controller_requests(&p3_ns);
    let writes3: Vec<&Request> = reqs3.iter().filter(|r| is_write(r) && r.resource != "leases").collect();
    let reads3: Vec<&Request> = reqs3.iter().filter(|r| !is_write(r) && r.resource != "leases").collect();
    rows.push(row(
        "P3 writes per lifecycle (sequential)",
        format!("{:.1}", writes3.len() as f64 / lifecycles as f64),
        "4".into(),
        format!("{:.1}×", writes3.len() as f64 / lifecycles as f64 / 4.0),
        "≤ 8",
    ));
    rows.push(row(
        "P3 writes per lifecycle (burst, incl. Lease)",
        format!("{:.1}", burst_writes as f64 / burst as f64),
        "4".into(),
        format!("{:.1}×", burst_writes as f64 / burst as f64 / 4.0),
        "≤ 8",
    ));
    rows.push(row(
        "P3 reads per lifecycle (sequential)",
        format!("{:.1}", reads3.len() as f64 / lifecycles as f64),
        "0".into(),
        "—".into(),
        "a watch cache answers them",
    ));
    rows.push(row(
        &format!("P3 writes/min at rest, {burst} settled runs"),
        format!("{:.1} (+{:.1} Lease)", per_min(&rest_writes), per_min(&lease_writes)),
        "0".into(),
        "—".into(),
        "0",
    ));
    rows.push(row(
        &format!("P3 reads/min at rest, {burst} settled runs"),
        format!("{:.1}", per_min(&rest_reads)),
        "0".into(),
        "—".into(),
        "",
    ));
    rows.push(row("P4 RSS idle (MiB)", format!("{rss_idle:.1}"), "—".into(), "—".into(), ""));
    rows.push(row(
        &format!("P4 RSS, cached runs/attempts/Jobs/pods {counts} (MiB)"),
        format!("{rss_full:.1}"),
        format!("{bare_rss:.1}"),
        format!("{:.1}×", rss_full / bare_rss),
        "≤ 64 MiB at 10,000 runs",
    ));
    rows.push(row(
        &format!("P2 settle: {burst} pods finished → runs Fixed (s)"),
        format!("{settle:.1}"),
        "—".into(),
        "—".into(),
        "",
    ));

    println!("| figure | controller | bare client | ratio | goal |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!("| {} | {} | {} | {} | {} |", r.figure, r.controller, r.bare, r.ratio, r.goal);
    }
    println!("\nP3 writes per {lifecycles} sequential lifecycles: {}", breakdown(&writes3));
    println!("P3 reads per {lifecycles} sequential lifecycles: {}", breakdown(&reads3));
    println!("P3 at rest ({rest} s): writes {}; reads {}", breakdown(&rest_writes), breakdown(&rest_reads));
    println!(
        "bare burst: run, attempt and Job created per item (copies of the controller's, P1); bare P3 minimum: attempt + Job + run status Running + run status Fixed"
    );

    // Clean up: the namespace controller (kube-controller-manager) removes everything in them.
    let nss = Api::<Namespace>::all(client.clone());
    for ns in namespaces {
        let _ = nss.delete(&ns, &DeleteParams::background()).await;
    }
}
