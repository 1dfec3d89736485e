//! `healer triage`: triage a log from a file or standard input and print the result as JSON.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `healer triage`.
#[derive(clap::Args, Debug)]
pub struct TriageArgs {
    /// Read the log from this file instead of standard input.
    #[arg(long, env = "HEALER_TRIAGE_FILE")]
    pub file: Option<PathBuf>,
    /// The workflow's name, if known.
    #[arg(long, env = "HEALER_WORKFLOW_NAME")]
    pub workflow: Option<String>,
    /// The job's name, if known.
    #[arg(long, env = "HEALER_JOB_NAME")]
    pub job: Option<String>,
    /// A failed step's name (repeatable).
    #[arg(long = "step")]
    pub steps: Vec<String>,
}

/// Run `healer triage`. Errors: the file cannot be read.
pub fn run(args: TriageArgs) -> anyhow::Result<ExitCode> {
    let mut log = Vec::new();
    match &args.file {
        Some(p) => log = std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        None => {
            std::io::stdin().read_to_end(&mut log)?;
        }
    }
    let input = super::TriageInput {
        log: &log,
        workflow_name: args.workflow.as_deref(),
        job_name: args.job.as_deref(),
        failed_steps: &args.steps,
        changed_files: &[],
        error_type: None,
    };
    let result = super::triage(&input, &super::RoutingConfig::default());
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(ExitCode::SUCCESS)
}
