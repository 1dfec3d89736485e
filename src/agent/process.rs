//! Running tools from the steps: shell commands with a timeout (the whole process group is killed
//! when it expires), output captured and bounded, and the environment every tool gets.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::contract::{env, paths};

/// Most bytes of a command's output kept (the tail is kept: that is where errors are).
pub const MAX_OUTPUT: usize = 256 * 1024;

/// A finished (or stopped) command.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// Exit code; `None` when killed by a signal or the timeout.
    pub code: Option<i32>,
    /// The timeout stopped it (its whole process group was killed).
    pub timed_out: bool,
    /// stdout followed by stderr (for shell commands: both interleaved), at most [`MAX_OUTPUT`] bytes.
    pub output: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl CmdOutput {
    /// Exit code 0 within the timeout.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

fn dir_from_env(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(default))
}

/// The state dir ([`env::STATE_DIR`], default [`paths::STATE_DIR`]), outside the repository: build
/// caches and step records live here.
pub fn state_dir() -> PathBuf {
    dir_from_env(env::STATE_DIR, paths::STATE_DIR)
}

/// The repository checkout ([`env::WORKSPACE`], default [`paths::SOURCE_DIR`]).
pub fn workspace() -> PathBuf {
    dir_from_env(env::WORKSPACE, paths::SOURCE_DIR)
}

/// Environment every tool run by a step gets: build output outside the repository (so it never
/// shows up in the diff), no colours, no interactive prompts.
pub fn tool_env(cmd: &mut Command) {
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.env("CARGO_TARGET_DIR", state_dir().join("target"));
    }
    cmd.env("CARGO_TERM_COLOR", "never")
        .env("NO_COLOR", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("CI", "true")
        .env("npm_config_update_notifier", "false");
}

/// Run `sh -c <script>` in `dir` with stderr merged into stdout. Errors: the shell cannot start.
pub async fn shell(script: &str, dir: &Path, timeout: Duration) -> std::io::Result<CmdOutput> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("exec 2>&1\n{script}")).current_dir(dir);
    run(cmd, timeout).await
}

/// Run `program args…` in `dir`. Errors: the program cannot start (e.g. not installed).
pub async fn program(program: &str, args: &[&str], dir: &Path, timeout: Duration) -> std::io::Result<CmdOutput> {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    run(cmd, timeout).await
}

/// Run a prepared command with [`tool_env`], capture its output, stop it after `timeout`.
pub async fn run(mut cmd: Command, timeout: Duration) -> std::io::Result<CmdOutput> {
    tool_env(&mut cmd);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let read = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let _ = tokio::join!(out.read_to_end(&mut a), err.read_to_end(&mut b));
        a.extend(b);
        a
    };
    let both = async { tokio::join!(read, child.wait()) };
    match tokio::time::timeout(timeout, both).await {
        Ok((bytes, status)) => {
            let status = status?;
            Ok(CmdOutput { code: status.code(), timed_out: false, output: tail(&bytes), elapsed: start.elapsed() })
        }
        Err(_) => {
            if let Some(pid) = pid {
                kill_process_group(pid).await;
            }
            Ok(CmdOutput {
                code: None,
                timed_out: true,
                output: format!("timed out after {}s", timeout.as_secs()),
                elapsed: start.elapsed(),
            })
        }
    }
}

/// Send SIGKILL to the process group `pgid` (a child started with `process_group(0)`, so the
/// group holds it and everything it started). See [`signal_process_group`].
pub async fn kill_process_group(pgid: u32) {
    signal_process_group(pgid, "KILL").await;
}

/// Send `signal` (a name `kill -s` takes: `KILL`, `TERM`, `CONT` …) to the process group `pgid`
/// with `kill -s SIGNAL -- -PGID`. The `--` matters: procps-ng 4.0.2's `kill -KILL -PGID` (Debian
/// bookworm) sends the signal to pid -1, every process the caller may signal, instead of the group.
pub async fn signal_process_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill").args(["-s", signal, "--", &format!("-{pgid}")]).status().await;
}

fn tail(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.len() <= MAX_OUTPUT {
        return s.into_owned();
    }
    let mut cut = s.len() - MAX_OUTPUT;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    s[cut..].to_string()
}

/// Last `max` bytes of `s`, on a char boundary.
pub fn last_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = s.len() - max;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    &s[cut..]
}

/// Whether `name` is an executable on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// Write a step's termination message ([`env::TERMINATION_MESSAGE_PATH`], default
/// [`paths::TERMINATION_LOG`]). Errors: the file cannot be written.
pub fn write_termination_message(msg: &str) -> std::io::Result<()> {
    std::fs::write(dir_from_env(env::TERMINATION_MESSAGE_PATH, paths::TERMINATION_LOG), msg)
}

/// Record a step's facts in the state dir (`<name>.json`, `name` usually a [`Step::name`](crate::contract::Step::name))
/// for later steps (durations, tokens).
pub fn write_record(step: &str, value: &serde_json::Value) {
    let dir = state_dir();
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("{step}.json")), value.to_string());
}

/// Read a record written by [`write_record`].
pub fn read_record(step: &str) -> Option<serde_json::Value> {
    let s = std::fs::read_to_string(state_dir().join(format!("{step}.json"))).ok()?;
    serde_json::from_str(&s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process state letter of `pid` from `/proc/<pid>/stat` (`T` stopped, `S` sleeping).
    fn state(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        stat.rsplit(')').next().unwrap().trim_start().chars().next().unwrap()
    }

    /// A signal to one process group reaches that group only. Probed with SIGCONT, which is harmless
    /// if it escapes: a stopped bystander in another group must stay stopped (`kill -CONT -PGID`
    /// without `--` would continue every process, the bug SIGKILL would turn into killing them).
    #[tokio::test]
    async fn a_group_signal_reaches_only_that_group() {
        let spawn = || {
            let mut c = Command::new("sleep");
            c.arg("30").process_group(0).kill_on_drop(true);
            c.spawn().unwrap()
        };
        let (mut target, mut bystander) = (spawn(), spawn());
        let (t, b) = (target.id().unwrap(), bystander.id().unwrap());
        for pid in [t, b] {
            Command::new("kill").args(["-s", "STOP", &pid.to_string()]).status().await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while state(t) != 'T' || state(b) != 'T' {
            assert!(Instant::now() < deadline, "sleep was not stopped");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        signal_process_group(t, "CONT").await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while state(t) == 'T' {
            assert!(Instant::now() < deadline, "the target group was not continued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(state(b), 'T', "the signal escaped the group: a process in another group was continued");
        kill_process_group(t).await;
        let st = tokio::time::timeout(Duration::from_secs(5), target.wait()).await.unwrap().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(9), "{st:?}");
        kill_process_group(b).await;
        bystander.wait().await.unwrap();
    }
}
