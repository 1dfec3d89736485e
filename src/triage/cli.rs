//! `healer triage`: triage a log from a file or standard input and print the result as JSON
//! ([`super::TriageResult`], camelCase).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::RoutingConfig;
use crate::contract::env;

/// Arguments of `healer triage`.
#[derive(clap::Args, Debug)]
pub struct TriageArgs {
    /// Read the log from this file instead of standard input.
    #[arg(long, env = env::TRIAGE_FILE)]
    pub file: Option<PathBuf>,
    /// The controller config file (YAML); only its `routing:` key is used. Default: built-in routing.
    #[arg(long, env = env::CONFIG)]
    pub config: Option<PathBuf>,
    /// The workflow's name, if known.
    #[arg(long, env = env::WORKFLOW_NAME)]
    pub workflow: Option<String>,
    /// The job's name, if known.
    #[arg(long, env = env::JOB_NAME)]
    pub job: Option<String>,
    /// A failed step's name (repeatable; in the environment, one per line).
    #[arg(long = "step", env = env::FAILED_STEPS, value_delimiter = '\n')]
    pub steps: Vec<String>,
    /// A changed file, relative to the repository root (repeatable; in the environment, one per line).
    #[arg(long = "changed-file", env = env::CHANGED_FILES, value_delimiter = '\n')]
    pub changed_files: Vec<String>,
    /// A sender's hint, e.g. a failure class name.
    #[arg(long, env = env::ERROR_TYPE)]
    pub error_type: Option<String>,
}

/// Read the `routing:` key of a controller config file. Errors: unreadable file, invalid YAML, or an
/// invalid `routing` section (unknown fields, bad regex or glob, unknown class).
pub fn load_routing(path: &Path) -> anyhow::Result<RoutingConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).with_context(|| format!("invalid YAML in {}", path.display()))?;
    match doc.get("routing") {
        Some(r) => serde_yaml_ng::from_value(r.clone())
            .with_context(|| format!("invalid routing section in {}", path.display())),
        None => Ok(RoutingConfig::default()),
    }
}

/// Run `healer triage`. Errors: the log or config cannot be read, or the config is invalid.
pub fn run(args: TriageArgs) -> anyhow::Result<ExitCode> {
    let mut log = Vec::new();
    match &args.file {
        Some(p) => log = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => {
            std::io::stdin().read_to_end(&mut log)?;
        }
    }
    let routing = match &args.config {
        Some(p) => load_routing(p)?,
        None => RoutingConfig::default(),
    };
    let input = super::TriageInput {
        log: &log,
        workflow_name: args.workflow.as_deref(),
        job_name: args.job.as_deref(),
        failed_steps: &args.steps,
        changed_files: &args.changed_files,
        error_type: args.error_type.as_deref(),
    };
    let result = super::triage(&input, &routing);
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(ExitCode::SUCCESS)
}
