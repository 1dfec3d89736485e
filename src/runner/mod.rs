//! The host runner: stands in for the kubelet (and the Job controller) on a control plane without
//! nodes, running an attempt Job's steps as local processes.
//! PLACEHOLDER (spine issue): the attempt-runtime issue implements it.

pub mod sim;

/// `healer host-runner` arguments.
#[derive(clap::Args, Debug)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("healer host-runner is not implemented yet")
}
