//! The loopback GitHub as a process, for `make run-local` (dev only: an example binary, never part of
//! `healer`). It answers GitHub's REST API as GitHub's OpenAPI description documents it, checks every
//! request against that description, and keeps what it received for `GET /_loopback/requests`,
//! `/_loopback/state` and `/_loopback/violations`.
//!
//! ```sh
//! cargo run --example loopback_github -- --seed seed.yaml --url-file url.txt
//! ```

#[path = "../tests/loopback_github/mod.rs"]
mod loopback_github;

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(about = "A loopback GitHub for ci-healer's local runs")]
struct Args {
    /// The seed: identities, repositories (mirrored from local git repositories), runs, jobs, logs.
    #[arg(long)]
    seed: PathBuf,
    /// Write the API base URL here once listening.
    #[arg(long)]
    url_file: Option<PathBuf>,
    /// Serve under a prefix, e.g. `/api/v3` (GitHub Enterprise Server).
    #[arg(long, default_value = "")]
    prefix: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.seed).unwrap_or_else(|e| panic!("{}: {e}", args.seed.display()));
    let seed: loopback_github::Seed =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", args.seed.display()));
    let gh =
        loopback_github::LoopbackGitHub::start(loopback_github::Options { prefix: args.prefix, ..Default::default() })
            .await;
    gh.state().apply(seed).unwrap_or_else(|e| panic!("seed: {e}"));
    let url = gh.api_url();
    eprintln!("loopback GitHub listening on {url}");
    if let Some(f) = &args.url_file {
        std::fs::write(f, &url).expect("write the URL file");
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
