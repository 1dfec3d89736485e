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
    /// A repository language and its size, `NAME=BYTES` as GitHub's languages endpoint reports it
    /// (repeatable; in the environment, one per line), e.g. `--language TypeScript=120000`.
    #[arg(long = "language", env = env::REPOSITORY_LANGUAGES, value_delimiter = '\n', value_parser = parse_language)]
    pub languages: Vec<(String, u64)>,
}

/// `NAME=BYTES` → (name, bytes). Errors: no `=`, or bytes not a non-negative integer.
fn parse_language(s: &str) -> Result<(String, u64), String> {
    let (name, bytes) = s.rsplit_once('=').ok_or_else(|| format!("expected NAME=BYTES, got {s:?}"))?;
    let bytes = bytes.trim().parse().map_err(|_| format!("bytes in {s:?} are not a non-negative integer"))?;
    Ok((name.trim().to_string(), bytes))
}

/// Read the `routing:` key of a controller config file (YAML; other keys are ignored; no key: the
/// built-in routing). Errors: see [`RoutingFileError`].
pub fn load_routing(path: &Path) -> Result<RoutingConfig, RoutingFileError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| RoutingFileError::Read { path: path.to_path_buf(), source })?;
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|source| RoutingFileError::Yaml { path: path.to_path_buf(), source })?;
    match doc.get("routing") {
        Some(r) => serde_yaml_ng::from_value(r.clone())
            .map_err(|source| RoutingFileError::Routing { path: path.to_path_buf(), source }),
        None => Ok(RoutingConfig::default()),
    }
}

/// Why a routing config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RoutingFileError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("invalid YAML in {}: {source}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's error (with line and column).
        source: serde_yaml_ng::Error,
    },
    /// The `routing` key is not a valid [`RoutingConfig`]: an unknown field, a bad regex or
    /// glob, an unknown class, tool or ecosystem.
    #[error("invalid routing section in {}: {source}", path.display())]
    Routing {
        /// The file.
        path: PathBuf,
        /// The deserialiser's error.
        source: serde_yaml_ng::Error,
    },
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
    let languages = args.languages.clone();
    let input = super::TriageInput {
        log: &log,
        workflow_name: args.workflow.as_deref(),
        job_name: args.job.as_deref(),
        failed_steps: &args.steps,
        changed_files: &args.changed_files,
        error_type: args.error_type.as_deref(),
        repository_languages: &languages,
    };
    let result = super::triage(&input, &routing);
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(ExitCode::SUCCESS)
}
