//! The failing step's own command, from the workflow file at the failing commit.
//!
//! A workflow run names its file (`GET /repos/{owner}/{repo}/actions/runs/{run_id}` → `path`, e.g.
//! `.github/workflows/ci.yml`); the file at `headSha` is parsed with a YAML library, the job is found
//! by its `name:` or key (a matrix job's name carries ` (a, b)`), and the step by its `name:` (an
//! unnamed step shows as `Run <first line of run>` or `Run <uses>`). Its `run:` script, with the
//! `working-directory` and `shell` that apply (step, then job `defaults.run`, then workflow
//! `defaults.run`), becomes a validation command, so validation re-runs what actually failed.
//! A step that `uses:` an action, or whose script needs `${{ }}` expressions this side cannot
//! evaluate, gives no command.

use serde_yaml_ng::Value;

/// The failing step as the workflow file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCommand {
    /// The job's key under `jobs:`.
    pub job: String,
    /// The step's display name.
    pub step: String,
    /// The `run:` script (absent for `uses:` steps).
    pub run: Option<String>,
    /// The action of a `uses:` step.
    pub uses: Option<String>,
    /// `working-directory`, when set.
    pub working_directory: Option<String>,
    /// `shell`, when set (GitHub's default on Linux runners is `bash -e {0}`).
    pub shell: Option<String>,
}

impl StepCommand {
    /// Why this step's script cannot be re-run as written, if it cannot: a `uses:` step, or a
    /// script or setting with `${{ }}` expressions.
    pub fn unusable(&self) -> Option<&'static str> {
        let Some(run) = &self.run else { return Some("the step uses an action, not a run: script") };
        let expr = |s: &Option<String>| s.as_deref().is_some_and(|s| s.contains("${{"));
        if run.contains("${{") || expr(&self.working_directory) || expr(&self.shell) {
            return Some("the step's script uses ${{ }} expressions, which only GitHub Actions can evaluate");
        }
        None
    }

    /// One `sh -c` command that runs the script the way the runner does: in the working directory,
    /// with the step's shell (`bash` → `bash --noprofile --norc -eo pipefail {0}`, `sh` → `sh -e {0}`,
    /// `python` → `python {0}`, a custom shell's `{0}` template as written; unset → `bash -e {0}`),
    /// from a temporary script file. `None` when [`StepCommand::unusable`].
    pub fn validation_command(&self) -> Option<String> {
        if self.unusable().is_some() {
            return None;
        }
        let run = self.run.as_deref()?;
        let template = match self.shell.as_deref().map(str::trim) {
            None | Some("") => "bash -e {0}".to_string(),
            Some("bash") => "bash --noprofile --norc -eo pipefail {0}".to_string(),
            Some("sh") => "sh -e {0}".to_string(),
            Some("python") => "python {0}".to_string(),
            Some(custom) if custom.contains("{0}") => custom.to_string(),
            Some(custom) => format!("{custom} {{0}}"),
        };
        let mut cmd = String::new();
        if let Some(wd) = self.working_directory.as_deref().filter(|w| !w.trim().is_empty()) {
            cmd.push_str(&format!("cd {} && ", quote(wd)));
        }
        cmd.push_str(&format!(
            "f=$(mktemp) && printf '%s\\n' {} > \"$f\" && {}",
            quote(run),
            template.replace("{0}", "\"$f\"")
        ));
        Some(cmd)
    }
}

/// Quote for POSIX sh: `'…'` with `'` written as `'\''`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Why the step could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// Not YAML, or not a mapping with `jobs:`.
    #[error("the workflow file is not valid: {0}")]
    Invalid(String),
    /// No job with that name or key.
    #[error("no job named '{0}' in the workflow")]
    NoJob(String),
    /// The job has no step with that name.
    #[error("job '{job}' has no step named '{step}'")]
    NoStep {
        /// The job key.
        job: String,
        /// The step name looked for.
        step: String,
    },
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The display name of a step as GitHub shows it.
fn step_display_name(step: &Value) -> Option<String> {
    if let Some(n) = str_of(step, "name") {
        return Some(n.trim().to_string());
    }
    if let Some(run) = str_of(step, "run") {
        return Some(format!("Run {}", run.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim()));
    }
    str_of(step, "uses").map(|u| format!("Run {}", u.trim()))
}

/// Whether the job (key, `name:`) is the one GitHub reports as `job_name`.
fn job_matches(key: &str, job: &Value, job_name: &str) -> bool {
    let wanted = job_name.trim();
    // A matrix job is reported as "<name> (v1, v2)".
    let base = wanted.rsplit_once(" (").filter(|(_, rest)| rest.ends_with(')')).map(|(b, _)| b).unwrap_or(wanted);
    let name = str_of(job, "name").map(str::trim);
    for candidate in [wanted, base] {
        if key == candidate || name == Some(candidate) {
            return true;
        }
        // A name with expressions matches on its literal prefix.
        if let Some(n) = name
            && let Some((prefix, _)) = n.split_once("${{")
            && !prefix.trim().is_empty()
            && candidate.starts_with(prefix.trim())
        {
            return true;
        }
    }
    false
}

/// Find the step `step_name` of job `job_name` in the workflow `yaml`. A single job in the file is
/// taken when the job name matches nothing (reusable or renamed jobs).
pub fn find_step(yaml: &str, job_name: &str, step_name: &str) -> Result<StepCommand, WorkflowError> {
    let doc: Value = serde_yaml_ng::from_str(yaml).map_err(|e| WorkflowError::Invalid(e.to_string()))?;
    let jobs = doc.get("jobs").and_then(Value::as_mapping).ok_or_else(|| WorkflowError::Invalid("no jobs:".into()))?;
    let mut found = jobs.iter().filter_map(|(k, v)| Some((k.as_str()?, v))).find(|(k, v)| job_matches(k, v, job_name));
    if found.is_none() && jobs.len() == 1 {
        found = jobs.iter().next().and_then(|(k, v)| Some((k.as_str()?, v)));
    }
    let (key, job) = found.ok_or_else(|| WorkflowError::NoJob(job_name.into()))?;
    let steps = job.get("steps").and_then(Value::as_sequence).cloned().unwrap_or_default();
    let wanted = step_name.trim();
    let step = steps
        .iter()
        .find(|s| step_display_name(s).as_deref() == Some(wanted))
        .ok_or_else(|| WorkflowError::NoStep { job: key.into(), step: step_name.into() })?;
    let default = |field: &str| {
        str_of(step, field)
            .or_else(|| job.get("defaults").and_then(|d| d.get("run")).and_then(|r| str_of(r, field)))
            .or_else(|| doc.get("defaults").and_then(|d| d.get("run")).and_then(|r| str_of(r, field)))
            .map(str::to_string)
    };
    Ok(StepCommand {
        job: key.into(),
        step: wanted.into(),
        run: str_of(step, "run").map(str::to_string),
        uses: str_of(step, "uses").map(str::to_string),
        working_directory: default("working-directory"),
        shell: default("shell"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WF: &str = r#"
name: CI
on: [push, pull_request]
defaults:
  run:
    shell: bash
jobs:
  linters:
    runs-on: ubuntu-latest
    defaults:
      run:
        working-directory: web
    steps:
      - uses: actions/checkout@v4
      - name: Install
        run: yarn install --frozen-lockfile
      - run: |
          yarn run format-check
          echo done
  test:
    name: test ${{ matrix.os }}
    strategy: {matrix: {os: [ubuntu-latest]}}
    steps:
      - name: Cargo test
        run: cargo test --workspace
        working-directory: crates/core
        shell: sh
      - name: Deploy
        run: ./deploy.sh ${{ secrets.TOKEN }}
      - name: Lint
        uses: actions/lint@v1
"#;

    #[test]
    fn finds_unnamed_and_named_steps_with_their_defaults() {
        let s = find_step(WF, "linters", "Run yarn run format-check").unwrap();
        assert_eq!(s.job, "linters");
        assert_eq!(s.run.as_deref(), Some("yarn run format-check\necho done\n"));
        assert_eq!(s.working_directory.as_deref(), Some("web"), "job defaults");
        assert_eq!(s.shell.as_deref(), Some("bash"), "workflow defaults");
        let cmd = s.validation_command().unwrap();
        assert_eq!(
            cmd,
            "cd 'web' && f=$(mktemp) && printf '%s\\n' 'yarn run format-check\necho done\n' > \"$f\" && bash --noprofile --norc -eo pipefail \"$f\""
        );

        let t = find_step(WF, "test ubuntu-latest", "Cargo test").unwrap();
        assert_eq!((t.working_directory.as_deref(), t.shell.as_deref()), (Some("crates/core"), Some("sh")));
        assert!(t.validation_command().unwrap().ends_with("sh -e \"$f\""));
        // Expressions and actions give no command.
        assert!(find_step(WF, "test (ubuntu-latest)", "Deploy").unwrap().validation_command().is_none());
        let lint = find_step(WF, "test ubuntu-latest", "Lint").unwrap();
        assert_eq!(lint.uses.as_deref(), Some("actions/lint@v1"));
        assert!(lint.unusable().unwrap().contains("action"));
    }

    #[test]
    fn missing_jobs_and_steps_are_errors() {
        assert!(matches!(find_step(WF, "nope", "x"), Err(WorkflowError::NoJob(_))));
        assert!(matches!(find_step(WF, "linters", "Nope"), Err(WorkflowError::NoStep { .. })));
        assert!(matches!(find_step("a: [", "j", "s"), Err(WorkflowError::Invalid(_))));
    }

    #[test]
    fn the_command_runs_the_script_in_a_real_shell() {
        let s = StepCommand {
            job: "j".into(),
            step: "s".into(),
            run: Some("echo \"it's $((1 + 2))\" > out.txt\ntest -s out.txt".into()),
            uses: None,
            working_directory: Some("sub dir".into()),
            shell: Some("bash".into()),
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub dir")).unwrap();
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(s.validation_command().unwrap())
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(std::fs::read_to_string(dir.path().join("sub dir/out.txt")).unwrap(), "it's 3\n");
        // `-eo pipefail`: a failing line fails the command.
        let failing = StepCommand { run: Some("false | true\necho after".into()), working_directory: None, ..s };
        let st =
            std::process::Command::new("sh").arg("-c").arg(failing.validation_command().unwrap()).status().unwrap();
        assert!(!st.success());
    }
}
