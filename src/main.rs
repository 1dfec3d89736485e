//! `healer`: the ci-healer binary. The controller and every attempt-pod step are subcommands of it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "healer", version, about = "ci-healer: a Kubernetes operator that heals failing CI")]
struct Cli {
    #[command(flatten)]
    log: ci_healer::telemetry::LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (HealingRun → HealingAttempt → Job).
    Controller(ci_healer::controller::Args),
    /// Print the CustomResourceDefinitions as YAML.
    Crd,
    /// Serve the read-only web view of runs (from a watch cache; live over Server-Sent Events).
    Dashboard(ci_healer::dashboard::Args),
    /// Serve `POST /webhooks/github`: signed GitHub deliveries in, HealingRuns out (without Argo Events).
    Webhook(ci_healer::intake::Args),
    /// Triage a CI log: failing step, diagnostics, class, profile, error hash, excerpt (JSON).
    Triage(ci_healer::triage::cli::TriageArgs),
    /// Attempt-pod step: copy this binary to a shared volume.
    InstallBinary(ci_healer::agent::cli::InstallBinaryArgs),
    /// Attempt-pod step: clone the repository at the failing commit.
    Checkout(ci_healer::agent::cli::CheckoutArgs),
    /// Attempt-pod step: change the workspace (fixers, LLM agent).
    Agent(ci_healer::agent::cli::AgentArgs),
    /// Attempt-pod step: judge the change and write the verdict.
    Validate(ci_healer::agent::cli::ValidateArgs),
    /// Attempt-pod sidecar: hold the LLM key and add it to the agent's provider requests.
    LlmProxy(ci_healer::agent::llm::proxy::ProxyArgs),
    /// Development only: stand in for the kubelet, running attempt Jobs' steps as host processes.
    #[cfg(feature = "dev")]
    HostRunner(ci_healer::runner::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ci_healer::telemetry::init_logging(&cli.log);
    let result = match cli.command {
        // Synchronous and short: no runtime, whose worker threads cost more than triage itself.
        Command::Triage(args) => ci_healer::triage::cli::run(args),
        command => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            rt.block_on(run(command))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "healer failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The commands that run on the tokio runtime (all but `triage`).
async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Controller(args) => {
            ci_healer::controller::run(args).await.map(|_| ExitCode::SUCCESS).map_err(Into::into)
        }
        Command::Dashboard(args) => {
            ci_healer::dashboard::run(args).await.map(|_| ExitCode::SUCCESS).map_err(Into::into)
        }
        Command::Webhook(args) => ci_healer::intake::run(args).await.map(|_| ExitCode::SUCCESS).map_err(Into::into),
        Command::Crd => {
            print!("{}", ci_healer::crd::crds_yaml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Triage(args) => ci_healer::triage::cli::run(args),
        Command::InstallBinary(args) => ci_healer::agent::cli::install_binary(args),
        Command::Checkout(args) => ci_healer::agent::cli::checkout(args).await,
        Command::Agent(args) => ci_healer::agent::cli::agent(args).await,
        Command::Validate(args) => ci_healer::agent::cli::validate(args).await,
        Command::LlmProxy(args) => {
            ci_healer::agent::llm::proxy::run(args).await.map(|_| ExitCode::SUCCESS).map_err(Into::into)
        }
        #[cfg(feature = "dev")]
        Command::HostRunner(args) => ci_healer::runner::run(args).await.map(|_| ExitCode::SUCCESS).map_err(Into::into),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn every_pod_step_is_a_subcommand() {
        let cli = Cli::command();
        for step in ci_healer::contract::Step::ALL {
            assert!(cli.find_subcommand(step.subcommand()).is_some(), "healer {} is missing", step.subcommand());
        }
        assert!(cli.find_subcommand(ci_healer::contract::proxy::SUBCOMMAND).is_some(), "healer llm-proxy is missing");
    }
}
