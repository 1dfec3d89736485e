//! A controller wired to a loopback GitHub (`tests/loopback_github`): one namespace with the token
//! Secret `github-token` (key `token`) and a `healer controller` subprocess whose config points
//! `github.apiUrl` at the loopback. Shared by the GitHub-facing tests (`github_controller`,
//! `comment_commands`).

use std::path::PathBuf;

use kube::Client;

use super::{Apis, ControllerProcess};

/// Make a namespace named after `prefix` with the Secret `github-token` holding `token`, write the
/// controller config, and start the controller there.
///
/// The config is `github:` with `apiUrl: <api_url>`, `tokenSecret: {name: github-token, key: token}`,
/// `secretNamespace: <ns>` and `requestTimeoutSeconds: 10`, followed by `rest(ns)` verbatim (more
/// two-space-indented `github:` keys first if needed, then `allowedRepositories` and any other
/// top-level keys). Returns the admin client, the namespace's APIs, the controller and the config
/// file's path.
pub async fn controller(
    prefix: &str,
    api_url: &str,
    token: &str,
    rest: impl FnOnce(&str) -> String,
) -> (Client, Apis, ControllerProcess, PathBuf) {
    let client = super::client().await;
    super::install_crds(&client).await;
    let ns = super::namespace(&client, prefix).await;
    super::create_secret(&client, &ns, "github-token", "token", token.as_bytes().to_vec()).await;
    let config = format!(
        "github:\n  apiUrl: {api_url}\n  tokenSecret: {{name: github-token, key: token}}\n  secretNamespace: {ns}\n  \
         requestTimeoutSeconds: 10\n{}",
        rest(&ns)
    );
    let path = std::env::temp_dir().join(format!("ci-healer-github-{ns}.yaml"));
    std::fs::write(&path, config).unwrap();
    let ctrl = ControllerProcess::start(&ns, Some(&path));
    (client.clone(), Apis::new(&client, &ns), ctrl, path)
}
