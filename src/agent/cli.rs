//! Subcommands run inside the attempt pod.

use std::path::PathBuf;
use std::process::ExitCode;

/// `healer install-binary --to PATH`: copy this executable to PATH (the pod's shared bin volume).
#[derive(clap::Args, Debug)]
pub struct InstallBinaryArgs {
    #[arg(long, env = "HEALER_INSTALL_TO")]
    pub to: PathBuf,
}

/// `healer checkout` arguments.
#[derive(clap::Args, Debug)]
pub struct CheckoutArgs {}

/// `healer agent` arguments.
#[derive(clap::Args, Debug)]
pub struct AgentArgs {}

/// `healer validate` arguments.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {}

/// Copy the running executable to `args.to`, mode 0755. Errors: I/O.
pub fn install_binary(args: InstallBinaryArgs) -> anyhow::Result<ExitCode> {
    let me = std::env::current_exe()?;
    if let Some(dir) = args.to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(&me, &args.to)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.to, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn checkout(_args: CheckoutArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("healer checkout is not implemented yet")
}

pub async fn agent(_args: AgentArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("healer agent is not implemented yet")
}

pub async fn validate(_args: ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("healer validate is not implemented yet")
}
