//! Running a pod's containers as local processes: the kubelet's part, without images.
//!
//! Init containers run in order, then the main containers; a failing init container stops the pod
//! (as `restartPolicy: Never` does). Each volume becomes a folder; each container's `volumeMounts`
//! map their `mountPath` to that folder, and every command argument, env value and `workingDir` that
//! starts with a mount path is rewritten to the folder. `terminationMessagePath` maps to a file per
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
use crate::contract::paths::IMAGE_BINARY;

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
        Self { mounts, healer_binary: healer_binary.to_path_buf() }
    }

    /// Rewrite `s` when it is a mount path or below one; other strings are returned unchanged.
    pub fn map(&self, s: &str) -> String {
        if s == IMAGE_BINARY {
            return self.healer_binary.display().to_string();
        }
        for (m, dir) in &self.mounts {
            if s == m {
                return dir.display().to_string();
            }
            if let Some(rest) = s.strip_prefix(m.as_str()).and_then(|r| r.strip_prefix('/')) {
                return dir.join(rest).display().to_string();
            }
        }
        s.to_string()
    }
}

/// Run one container to completion. `cancel` resolves when the pod is gone (the process is then killed).
pub async fn run_container(
    c: &Container,
    dirs: &PodDirs,
    opts: &LocalOptions,
    cancel: impl std::future::Future<Output = ()>,
) -> ContainerRun {
    let term = dirs.term.join(&c.name);
    let _ = std::fs::write(&term, b"");
    let map = PathMap::new(c, dirs, &term, &opts.healer_binary);
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
    let code = tokio::select! {
        st = child.wait() => st.map(|s| s.code().unwrap_or(137)).unwrap_or(128),
        _ = cancel => { kill(pid).await; 137 }
        _ = tokio::time::sleep(deadline) => { kill(pid).await; 137 }
    };
    let msg = std::fs::read_to_string(&term).ok().filter(|m| !m.trim().is_empty());
    finish(code, msg)
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

/// Run every container of `pod` in order (init containers, then main containers), stopping after a
/// failed init container. `on_step` is called after each container (for status reports); `alive` is
/// polled (every 250 ms) while a container runs and stops the pod when it returns false (the pod is
/// being deleted).
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
    for (i, c) in init.iter().chain(spec.containers.iter()).enumerate() {
        let remaining = deadline.map(|d| d.saturating_sub(started.elapsed()));
        if remaining == Some(Duration::ZERO) {
            break;
        }
        let o = LocalOptions { deadline: remaining, ..opts.clone() };
        let cancel = async {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if !alive().await {
                    break;
                }
            }
        };
        let run = run_container(c, dirs, &o, cancel).await;
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
