//! `POST /graphql`, GitHub's GraphQL endpoint, for the one mutation ci-healer sends there:
//! `markPullRequestReadyForReview` (GitHub's REST API cannot take a pull request out of draft).
//!
//! Every request is checked against GitHub's own GraphQL schema by graphql-js, the reference
//! implementation (`hack/github-graphql-check.mjs` with the npm package `@octokit/graphql-schema`,
//! installed by `hack/install-test-tools.sh`): a query GitHub would refuse is a violation, and is
//! answered as GitHub answers one (HTTP 200 with `errors`).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::state::State;

/// The tools folder `hack/install-test-tools.sh` fills (`$CIHEALER_CACHE/tools`).
fn tools_dir() -> PathBuf {
    let cache = std::env::var("CIHEALER_CACHE").map(PathBuf::from).unwrap_or_else(|_| {
        let base = std::env::var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache"));
        base.join("ci-healer")
    });
    cache.join("tools")
}

/// What GitHub's schema says is wrong with the request `body` (empty when it is valid).
pub async fn check(body: &[u8]) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/github-graphql-check.mjs");
    let mut child = match tokio::process::Command::new("node")
        .arg(script)
        .arg(tools_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return vec![format!("loopback: cannot run node for the GraphQL check: {e}")],
    };
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(body).await;
    }
    let out = match child.wait_with_output().await {
        Ok(o) => o,
        Err(e) => return vec![format!("loopback: the GraphQL check failed: {e}")],
    };
    match serde_json::from_slice::<Value>(&out.stdout) {
        Ok(v) => v["errors"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_string)).collect(),
        Err(_) => vec![format!(
            "loopback: the GraphQL check printed no verdict (run hack/install-test-tools.sh): {}",
            String::from_utf8_lossy(&out.stderr).lines().take(3).collect::<Vec<_>>().join(" ")
        )],
    }
}

/// A pull request's global node id, as the loopback's REST answers give it (`node_id`).
pub fn pull_node_id(repository: &str, number: i64) -> String {
    format!("PR_{repository}#{number}")
}

/// Carry out a request the schema accepted. Returns the operation (its first field, e.g.
/// `markPullRequestReadyForReview`) and GitHub's answer.
pub fn handle(st: &mut State, body: &Value) -> (String, Value) {
    let query = body["query"].as_str().unwrap_or("");
    if !query.contains("markPullRequestReadyForReview") {
        return (
            "unsupported".into(),
            json!({"errors": [{"message": "loopback: only markPullRequestReadyForReview is served"}]}),
        );
    }
    let op = "markPullRequestReadyForReview".to_string();
    let Some(id) = body["variables"].as_object().and_then(|v| v.values().find_map(Value::as_str)) else {
        return (op, json!({"errors": [{"message": "loopback: pass the pull request's id as a variable"}]}));
    };
    for r in st.repos.values_mut() {
        let full = r.full_name();
        if let Some(p) = r.pulls.iter_mut().find(|p| pull_node_id(&full, p.number) == id) {
            p.draft = false;
            let answer = json!({"data": {"markPullRequestReadyForReview": {"pullRequest": {"isDraft": false, "number": p.number}}}});
            return (op, answer);
        }
    }
    let answer = json!({
        "data": {"markPullRequestReadyForReview": null},
        "errors": [{"type": "NOT_FOUND", "path": ["markPullRequestReadyForReview"],
                    "message": format!("Could not resolve to a node with the global id of '{id}'")}]
    });
    (op, answer)
}
