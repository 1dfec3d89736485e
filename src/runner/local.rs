//! Running a pod's containers as local processes: the kubelet's part, without images.
//!
//! Init containers run in order, then the main containers; a failing init container stops the pod
//! (as `restartPolicy: Never` does). An init container with `restartPolicy: Always` is a native
//! sidecar, run as the kubelet runs one (Kubernetes "Sidecar Containers"): it is started in its
//! place among the init containers, and the next container starts once its `startupProbe` passes
//! (only `tcpSocket` probes are run here; without a probe, once it has started); it keeps running
//! through the later init containers and the main containers, is restarted if it exits, and is
//! stopped (SIGTERM, then SIGKILL after the grace period) once the main containers have ended or
//! an init container has failed. One deviation: a sidecar that exits before its startup probe
//! passes fails the pod instead of being restarted in a crash loop until the deadline.
//!
//! Every pod shares the host's network namespace here, so the ports the pod's containers declare
//! (`ports[].containerPort`) are mapped to free host ports, and `127.0.0.1:<containerPort>` /
//! `localhost:<containerPort>` in any container's arguments and env values are rewritten to the
//! host port: two pods that both listen on the contract's port do not collide. Each volume becomes a folder; each container's `volumeMounts`
//! map their `mountPath` to that folder, and every command argument, env value and `workingDir` that
//! starts with a mount path is rewritten to the folder (a mount at `/tmp` only as the exact value,
//! e.g. `TMPDIR=/tmp`: on the host, paths below `/tmp` are the runner's and the tests' own). `terminationMessagePath` maps to a file per
//! container. The healer image's own binary (`/usr/local/bin/healer`) resolves to the given
//! executable. ConfigMap and Secret volumes are filled from [`Materials`] (Secret files mode 0400).
//! Images are ignored: the host's tools stand in for every image, with a few image-style variables
//! (`PATH`, `CARGO_HOME`, `RUSTUP_HOME` …) passed through from the runner's own environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::sim::StepOutcome;
use crate::contract::paths::{IMAGE_BINARY, TMP_DIR};

/// Env vars passed from the runner's environment to every step, as an image's `ENV` would set them.
pub const PASSTHROUGH_ENV: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOROOT",
    "GOPATH",
    "GOCACHE",
    "GOMODCACHE",
    "GOFLAGS",
    "GOPROXY",
    "NODE_PATH",
    "npm_config_cache",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Files of ConfigMap and Secret volumes, by volume name: file name → bytes.
pub type Materials = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// How to run a pod locally.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The `healer` executable standing in for the healer image's `/usr/local/bin/healer`.
    pub healer_binary: PathBuf,
    /// Folder under which the pod's folders are created.
    pub root: PathBuf,
    /// Extra env for every step (e.g. `RUST_LOG`), applied before the pod's env.
    pub extra_env: Vec<(String, String)>,
    /// Stop the pod after this long (the Job's `activeDeadlineSeconds`).
    pub deadline: Option<Duration>,
}

/// A finished container.
#[derive(Debug, Clone)]
pub struct ContainerRun {
    /// Exit code, termination message and times, as the kubelet reports them.
    pub outcome: StepOutcome,
    /// Path of the container's log (stdout and stderr).
    pub log: PathBuf,
    /// Wall-clock time from start to exit.
    pub elapsed: Duration,
}

/// Storage I/O counters from Linux `/proc/<pid>/io`. A process's counters include those of the
/// children it has waited for, so `/proc/self/io` deltas of the runner cover every step's tools.
/// `rchar`/`wchar` count bytes passed to read/write syscalls (page cache included); `read_bytes` /
/// `write_bytes` what reached the block layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Bytes passed to read-like syscalls (`rchar`).
    pub rchar: u64,
    /// Bytes passed to write-like syscalls (`wchar`).
    pub wchar: u64,
    /// Bytes fetched from the block layer (`read_bytes`).
    pub read_bytes: u64,
    /// Bytes sent to the block layer (`write_bytes`).
    pub write_bytes: u64,
}

impl IoCounters {
    /// `/proc/self/io` of this process, or `None` off Linux.
    pub fn of_self() -> Option<Self> {
        read_proc_io("self")
    }

    /// `self - earlier`, saturating.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            rchar: self.rchar.saturating_sub(earlier.rchar),
            wchar: self.wchar.saturating_sub(earlier.wchar),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
        }
    }
}

/// The pod's folders.
#[derive(Debug, Clone)]
pub struct PodDirs {
    /// The pod's own folder.
    pub root: PathBuf,
    /// `<root>/volumes/<name>`: one folder per pod volume (emptyDir, projected, ConfigMap).
    pub volumes: PathBuf,
    /// `<root>/logs/<container>.log`: each container's stdout and stderr.
    pub logs: PathBuf,
    /// `<root>/termination/<container>`: each container's termination-message file.
    pub term: PathBuf,
}

impl PodDirs {
    /// Folders for pod `ns/name` under `root`.
    pub fn new(root: &Path, ns: &str, name: &str) -> Self {
        let r = root.join(format!("{ns}_{name}"));
        Self { volumes: r.join("volumes"), logs: r.join("logs"), term: r.join("termination"), root: r }
    }

    /// The log file of a container.
    pub fn log(&self, container: &str) -> PathBuf {
        self.logs.join(format!("{container}.log"))
    }
}

/// Create the pod's volume folders and fill ConfigMap/Secret volumes. Errors: I/O.
pub fn materialise(pod: &Pod, dirs: &PodDirs, materials: &Materials) -> std::io::Result<()> {
    for d in [&dirs.volumes, &dirs.logs, &dirs.term] {
        std::fs::create_dir_all(d)?;
    }
    let spec = pod.spec.clone().unwrap_or_default();
    for v in spec.volumes.unwrap_or_default() {
        let dir = dirs.volumes.join(&v.name);
        std::fs::create_dir_all(&dir)?;
        let data = materials.get(&v.name);
        let (items, mode) = if let Some(s) = &v.secret {
            (s.items.clone(), s.default_mode.unwrap_or(0o644))
        } else if let Some(c) = &v.config_map {
            (c.items.clone(), c.default_mode.unwrap_or(0o644))
        } else {
            continue;
        };
        let Some(data) = data else { continue };
        let files: Vec<(String, String, i32)> = match items {
            Some(items) => items.into_iter().map(|i| (i.key, i.path, i.mode.unwrap_or(mode))).collect(),
            None => data.keys().map(|k| (k.clone(), k.clone(), mode)).collect(),
        };
        for (key, path, mode) in files {
            if let Some(bytes) = data.get(&key) {
                let p = dir.join(&path);
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&p, bytes)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    // The runner's user must still read what it wrote (0400 stays owner-readable).
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode((mode as u32) & 0o777 | 0o400))?;
                }
            }
        }
    }
    Ok(())
}

/// The path rewriting of one container.
#[derive(Debug, Clone)]
pub struct PathMap {
    /// (mountPath, folder), longest mount path first.
    mounts: Vec<(String, PathBuf)>,
    healer_binary: PathBuf,
    /// (containerPort, host port) of the pod's declared ports.
    ports: Vec<(u16, u16)>,
}

impl PathMap {
    /// The map of `c` in pod folders `dirs`; its termination message path maps to `term_file`.
    pub fn new(c: &Container, dirs: &PodDirs, term_file: &Path, healer_binary: &Path) -> Self {
        let mut mounts: Vec<(String, PathBuf)> = c
            .volume_mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let mut p = dirs.volumes.join(&m.name);
                if let Some(sub) = m.sub_path.filter(|s| !s.is_empty()) {
                    p = p.join(sub);
                }
                (m.mount_path.trim_end_matches('/').to_string(), p)
            })
            .collect();
        let tmp = c.termination_message_path.clone().unwrap_or_else(|| "/dev/termination-log".into());
        mounts.push((tmp, term_file.to_path_buf()));
        mounts.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
        Self { mounts, healer_binary: healer_binary.to_path_buf(), ports: vec![] }
    }

    /// The same map, also rewriting loopback addresses of the pod's declared ports
    /// (`(containerPort, host port)` pairs, see [`PodPorts`]).
    pub fn with_ports(mut self, ports: &[(u16, u16)]) -> Self {
        self.ports = ports.to_vec();
        self
    }

    /// `s` with `127.0.0.1:<containerPort>` and `localhost:<containerPort>` (not followed by a
    /// digit) rewritten to `127.0.0.1:<host port>`.
    fn map_ports(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (cp, hp) in &self.ports {
            for host in ["127.0.0.1", "localhost"] {
                let needle = format!("{host}:{cp}");
                let mut rebuilt = String::new();
                let mut rest = out.as_str();
                while let Some(i) = rest.find(&needle) {
                    let after = &rest[i + needle.len()..];
                    rebuilt.push_str(&rest[..i]);
                    if after.starts_with(|c: char| c.is_ascii_digit()) {
                        rebuilt.push_str(&needle);
                    } else {
                        rebuilt.push_str(&format!("127.0.0.1:{hp}"));
                    }
                    rest = after;
                }
                rebuilt.push_str(rest);
                out = rebuilt;
            }
        }
        out
    }

    /// Rewrite `s` when it is a mount path or below one, and the loopback addresses of the pod's
    /// declared ports; other strings are returned unchanged.
    pub fn map(&self, s: &str) -> String {
        if s == IMAGE_BINARY {
            return self.healer_binary.display().to_string();
        }
        for (m, dir) in &self.mounts {
            if s == m {
                return dir.display().to_string();
            }
            if m == TMP_DIR {
                continue;
            }
            if let Some(rest) = s.strip_prefix(m.as_str()).and_then(|r| r.strip_prefix('/')) {
                return dir.join(rest).display().to_string();
            }
        }
        self.map_ports(s)
    }
}

/// Run one container to completion. `cancel` resolves when the pod is gone (the process is then killed).
pub async fn run_container(
    c: &Container,
    dirs: &PodDirs,
    opts: &LocalOptions,
    cancel: impl std::future::Future<Output = ()>,
) -> ContainerRun {
    run_container_with(c, dirs, opts, cancel, &[], None).await
}

/// [`run_container`] with the pod's port map, and, when `grace` is set, a graceful stop on
/// `cancel`: SIGTERM to the container's process group, SIGKILL after `grace` (how the kubelet stops
/// a sidecar); the exit code is then the container's own.
async fn run_container_with(
    c: &Container,
    dirs: &PodDirs,
    opts: &LocalOptions,
    cancel: impl std::future::Future<Output = ()>,
    ports: &[(u16, u16)],
    grace: Option<Duration>,
) -> ContainerRun {
    let term = dirs.term.join(&c.name);
    let _ = std::fs::write(&term, b"");
    let map = PathMap::new(c, dirs, &term, &opts.healer_binary).with_ports(ports);
    let log_path = dirs.log(&c.name);
    let started = Time(jiff::Timestamp::now());
    let start = Instant::now();
    let mut argv: Vec<String> = c.command.clone().unwrap_or_default();
    argv.extend(c.args.clone().unwrap_or_default());
    let argv: Vec<String> = argv.iter().map(|a| map.map(a)).collect();
    let finish = |code: i32, msg: Option<String>| ContainerRun {
        outcome: StepOutcome {
            name: c.name.clone(),
            exit_code: code,
            message: msg,
            started_at: Some(started.clone()),
            finished_at: Some(Time(jiff::Timestamp::now())),
        },
        log: log_path.clone(),
        elapsed: start.elapsed(),
    };
    let Some(program) = argv.first() else {
        let _ = std::fs::write(&log_path, b"no command: the image's entrypoint cannot run on the host\n");
        return finish(128, Some("the container has no command; the host runner cannot run image entrypoints".into()));
    };
    let log = match std::fs::File::create(&log_path) {
        Ok(f) => f,
        Err(e) => return finish(128, Some(format!("cannot create the log file: {e}"))),
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&argv[1..]).env_clear();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    for k in PASSTHROUGH_ENV {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    // An image sets these for its toolchain; the host keeps them under the runner's HOME.
    if std::env::var_os("CARGO_HOME").is_none() {
        cmd.env("CARGO_HOME", format!("{home}/.cargo"));
    }
    if std::env::var_os("RUSTUP_HOME").is_none() {
        cmd.env("RUSTUP_HOME", format!("{home}/.rustup"));
    }
    for (k, v) in &opts.extra_env {
        cmd.env(k, v);
    }
    for e in c.env.clone().unwrap_or_default() {
        if let Some(v) = e.value {
            let v = map.map(&v);
            if e.name == "HOME" {
                let _ = std::fs::create_dir_all(&v);
            }
            cmd.env(&e.name, v);
        }
    }
    let wd = c.working_dir.as_deref().map(|w| map.map(w)).unwrap_or_else(|| dirs.root.display().to_string());
    let _ = std::fs::create_dir_all(&wd);
    cmd.current_dir(&wd).stdin(Stdio::null()).kill_on_drop(true);
    match log.try_clone() {
        Ok(l2) => {
            cmd.stdout(Stdio::from(log)).stderr(Stdio::from(l2));
        }
        Err(e) => return finish(128, Some(format!("cannot share the log file: {e}"))),
    }
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            let msg = format!("cannot start {program}: {e}");
            let _ = std::fs::write(&log_path, format!("{msg}\n"));
            return finish(127, Some(msg));
        }
    };
    let pid = child.id();
    let deadline = opts.deadline.unwrap_or(Duration::from_secs(24 * 3600));
    let exit = |st: std::io::Result<std::process::ExitStatus>| st.map(|s| exit_code(&s)).unwrap_or(128);
    let code = tokio::select! {
        st = child.wait() => exit(st),
        _ = cancel => match (grace, pid) {
            (Some(g), Some(p)) => {
                crate::agent::process::signal_process_group(p, "TERM").await;
                match tokio::time::timeout(g, child.wait()).await {
                    Ok(st) => exit(st),
                    Err(_) => { kill(pid).await; 137 }
                }
            }
            _ => { kill(pid).await; 137 }
        },
        _ = tokio::time::sleep(deadline) => { kill(pid).await; 137 }
    };
    let msg = std::fs::read_to_string(&term).ok().filter(|m| !m.trim().is_empty());
    finish(code, msg)
}

/// The exit code the kubelet reports: the process's own, or 128 + the signal that ended it.
fn exit_code(s: &std::process::ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = s.signal() {
            return 128 + sig;
        }
    }
    s.code().unwrap_or(137)
}

async fn kill(pid: Option<u32>) {
    if let Some(pid) = pid {
        crate::agent::process::kill_process_group(pid).await;
    }
}

/// `/proc/<pid>/io` of a live process (Linux; `pid` may be `self`), or `None`.
pub fn read_proc_io(pid: &str) -> Option<IoCounters> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let mut c = IoCounters::default();
    for line in s.lines() {
        let (k, v) = line.split_once(':')?;
        let v: u64 = v.trim().parse().ok()?;
        match k {
            "rchar" => c.rchar = v,
            "wchar" => c.wchar = v,
            "read_bytes" => c.read_bytes = v,
            "write_bytes" => c.write_bytes = v,
            _ => {}
        }
    }
    Some(c)
}

/// The pod's declared container ports mapped to free host ports: `(containerPort, host port)`.
#[derive(Debug, Clone, Default)]
pub struct PodPorts(pub Vec<(u16, u16)>);

impl PodPorts {
    /// Pick a free loopback port for every `ports[].containerPort` of `pod`'s containers. Errors: no
    /// free port.
    pub fn allocate(pod: &Pod) -> std::io::Result<Self> {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut out: Vec<(u16, u16)> = Vec::new();
        for c in spec.init_containers.iter().flatten().chain(spec.containers.iter()) {
            for p in c.ports.iter().flatten() {
                let Ok(cp) = u16::try_from(p.container_port) else { continue };
                if out.iter().any(|(c, _)| *c == cp) {
                    continue;
                }
                let hp = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
                out.push((cp, hp));
            }
        }
        Ok(Self(out))
    }

    /// The host port of `container_port`, or the port itself when it is not declared.
    pub fn host(&self, container_port: u16) -> u16 {
        self.0.iter().find(|(c, _)| *c == container_port).map_or(container_port, |(_, h)| *h)
    }
}

/// Whether `c` is a native sidecar: an init container with `restartPolicy: Always`.
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// A running sidecar: stop it through `stop`; its task returns its last run.
struct Sidecar {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<ContainerRun>,
}

/// The grace period of a container stopped by the kubelet: the pod's
/// `terminationGracePeriodSeconds` (Kubernetes' default 30 s).
fn grace_period(pod: &Pod) -> Duration {
    let s = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
    Duration::from_secs(s.max(0) as u64)
}

/// Start sidecar `c` in its own task. It is restarted whenever it exits after it has started (with
/// the kubelet's back-off, 1 s doubling to 10 s, shortened here); `started` turns true once its
/// startup probe passes (see [`startup_probe`]).
fn start_sidecar(c: &Container, dirs: &PodDirs, opts: &LocalOptions, ports: &PodPorts, grace: Duration) -> Sidecar {
    let (stop, mut stop_rx) = tokio::sync::watch::channel(false);
    let (c, dirs, opts, ports) = (c.clone(), dirs.clone(), opts.clone(), ports.clone());
    let task = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(250);
        loop {
            let mut rx = stop_rx.clone();
            let cancel = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            let run = run_container_with(&c, &dirs, &opts, cancel, &ports.0, Some(grace)).await;
            if *stop_rx.borrow() {
                return run;
            }
            tracing::warn!(container = %c.name, exit_code = run.outcome.exit_code, "sidecar exited; restarting it");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop_rx.wait_for(|s| *s) => return run,
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    });
    Sidecar { stop, task }
}

/// Wait until sidecar `c` counts as started: its `startupProbe.tcpSocket` port accepts a
/// connection (polled every 100 ms, for at most `failureThreshold × periodSeconds`, Kubernetes'
/// defaults 3 × 10 s), or at once without such a probe. False when the probe never passed or the
/// sidecar ended first.
async fn startup_probe(c: &Container, ports: &PodPorts, sidecar: &Sidecar) -> bool {
    let Some(probe) = c.startup_probe.as_ref() else { return true };
    let Some(tcp) = probe.tcp_socket.as_ref() else { return true };
    let port = match &tcp.port {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => u16::try_from(*p).ok(),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    };
    let Some(port) = port else { return false };
    let addr = format!("127.0.0.1:{}", ports.host(port));
    let window = Duration::from_secs(
        (probe.failure_threshold.unwrap_or(3).max(1) as u64) * (probe.period_seconds.unwrap_or(10).max(1) as u64),
    );
    let start = Instant::now();
    while start.elapsed() < window {
        if sidecar.task.is_finished() {
            return false;
        }
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Run every container of `pod` in order (init containers, then main containers), stopping after a
/// failed init container; native sidecars (see the module docs) run alongside the later containers
/// and are stopped at the end, their runs last in the result. `on_step` is called after each
/// container (for status reports); `alive` is polled (every 250 ms) while a container runs and
/// stops the pod when it returns false (the pod is being deleted).
pub async fn run_pod<F, Fut, A, AFut>(
    pod: &Pod,
    dirs: &PodDirs,
    opts: &LocalOptions,
    mut on_step: F,
    alive: A,
) -> Vec<ContainerRun>
where
    F: FnMut(Vec<StepOutcome>) -> Fut,
    Fut: std::future::Future<Output = ()>,
    A: Fn() -> AFut,
    AFut: std::future::Future<Output = bool>,
{
    let spec = pod.spec.clone().unwrap_or_default();
    let mut runs: Vec<ContainerRun> = Vec::new();
    let started = Instant::now();
    let deadline = opts.deadline;
    let init = spec.init_containers.unwrap_or_default();
    let n_init = init.len();
    let ports = match PodPorts::allocate(pod) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "no free host port for the pod's declared ports");
            PodPorts::default()
        }
    };
    let grace = grace_period(pod);
    let mut sidecars: Vec<(String, Sidecar)> = Vec::new();
    for (i, c) in init.iter().chain(spec.containers.iter()).enumerate() {
        let remaining = deadline.map(|d| d.saturating_sub(started.elapsed()));
        if remaining == Some(Duration::ZERO) {
            break;
        }
        let o = LocalOptions { deadline: remaining, ..opts.clone() };
        if i < n_init && is_sidecar(c) {
            let sidecar = start_sidecar(c, dirs, &o, &ports, grace);
            let ok = startup_probe(c, &ports, &sidecar).await;
            sidecars.push((c.name.clone(), sidecar));
            if !ok {
                tracing::warn!(container = %c.name, "sidecar did not pass its startup probe; failing the pod");
                break;
            }
            continue;
        }
        let cancel = async {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if !alive().await {
                    break;
                }
            }
        };
        let run = run_container_with(c, dirs, &o, cancel, &ports.0, None).await;
        let failed = run.outcome.exit_code != 0;
        runs.push(run);
        on_step(runs.iter().map(|r| r.outcome.clone()).collect()).await;
        if failed && i < n_init {
            break;
        }
        if !alive().await {
            break;
        }
    }
    // The main containers ended (or an init container failed, or the pod is being deleted): stop
    // the sidecars, the last started first.
    for (name, sc) in sidecars.into_iter().rev() {
        let _ = sc.stop.send(true);
        match sc.task.await {
            Ok(run) => runs.push(run),
            Err(e) => tracing::warn!(container = %name, error = %e, "sidecar task failed"),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::VolumeMount;

    #[test]
    fn mount_paths_are_rewritten_longest_first() {
        let c = Container {
            name: "agent".into(),
            volume_mounts: Some(vec![
                VolumeMount { name: "workspace".into(), mount_path: "/workspace".into(), ..Default::default() },
                VolumeMount { name: "healer-bin".into(), mount_path: "/healer/bin".into(), ..Default::default() },
                VolumeMount { name: "context".into(), mount_path: "/healer/context".into(), ..Default::default() },
            ]),
            ..Default::default()
        };
        let dirs = PodDirs::new(Path::new("/r"), "ns", "p");
        let m = PathMap::new(&c, &dirs, Path::new("/r/ns_p/termination/agent"), Path::new("/bin/healer"));
        assert_eq!(m.map("/workspace/src"), "/r/ns_p/volumes/workspace/src");
        assert_eq!(m.map("/workspace"), "/r/ns_p/volumes/workspace");
        assert_eq!(m.map("/workspaces"), "/workspaces");
        assert_eq!(m.map("/healer/bin/healer"), "/r/ns_p/volumes/healer-bin/healer");
        assert_eq!(m.map("/dev/termination-log"), "/r/ns_p/termination/agent");
        assert_eq!(m.map("/usr/local/bin/healer"), "/bin/healer");
        assert_eq!(m.map("cargo"), "cargo");
    }
}
