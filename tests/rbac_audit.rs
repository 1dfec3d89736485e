//! The chart's RBAC is minimal: every verb it grants a ci-healer component is one that component was
//! seen using in the API server's audit log of a full test run, and nothing the components did falls
//! outside what the chart grants.
//!
//! Every ci-healer process sends `User-Agent: ci-healer/<version> (<component>)`
//! (`ci_healer::kube_client`), and the local control plane's audit policy records every request at
//! level Metadata (`hack/control-plane.sh`), with the user agent, verb, resource and subresource. The
//! API server, not this test, decides which RBAC verb a request is (`verb` in the audit event).
//!
//! `make test` writes the time its `cargo test` starts to `target/rbac-audit-since`, runs every test,
//! then runs this one (`--ignored`): only events received after that time count. Run by hand after a
//! full `cargo test --locked`, with `CIHEALER_AUDIT_SINCE=<RFC 3339 time>` or the file.
//!
//! The chart is rendered with every component on (`webhook.enabled`, `dashboard.enabled`, a GitHub
//! token Secret and a Slack token Secret), so the Roles of all of them are checked:
//!
//! | component (`User-Agent`) | its rules in the chart |
//! |---|---|
//! | `controller` | ClusterRole `ci-healer`, Roles `ci-healer-github-identity`, `ci-healer-slack` |
//! | `webhook` | Role `ci-healer-webhook` |
//! | `dashboard` | ClusterRole `ci-healer-dashboard` |

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::rbac::v1::PolicyRule;

/// One RBAC permission: API group ("" for the core group), resource (with `/subresource`), verb.
type Grant = (String, String, String);

/// The rules the rendered chart gives each component, keyed by the component's `User-Agent` name.
fn chart_grants() -> BTreeMap<&'static str, BTreeSet<Grant>> {
    let rendered = support::render_chart(
        "ci-healer",
        &[
            "--set",
            "webhook.enabled=true",
            "--set",
            "dashboard.enabled=true",
            "--set",
            "config.github.tokenSecret.name=github-token",
            "--set",
            "config.github.tokenSecret.key=token",
            "--set",
            "config.slack.tokenSecret.name=slack-token",
            "--set",
            "config.slack.tokenSecret.key=token",
        ],
    );
    let owner = |role: &str| match role {
        "ci-healer" | "ci-healer-github-identity" | "ci-healer-slack" => Some("controller"),
        "ci-healer-webhook" => Some("webhook"),
        "ci-healer-dashboard" => Some("dashboard"),
        _ => None,
    };
    let mut grants: BTreeMap<&'static str, BTreeSet<Grant>> = BTreeMap::new();
    let mut roles = 0;
    for doc in serde_yaml_ng::Deserializer::from_str(&rendered) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
        if !matches!(v["kind"].as_str(), Some("Role" | "ClusterRole")) {
            continue;
        }
        let name = v["metadata"]["name"].as_str().unwrap();
        let component = owner(name).unwrap_or_else(|| panic!("a Role this test does not know: {name}"));
        roles += 1;
        let rules: Vec<PolicyRule> = serde_json::from_value(v["rules"].clone()).unwrap();
        for r in rules {
            assert!(r.non_resource_urls.is_none(), "{name}: non-resource rules are not expected");
            for g in r.api_groups.unwrap_or_default() {
                for res in r.resources.clone().unwrap_or_default() {
                    for verb in &r.verbs {
                        assert!(g != "*" && res != "*" && verb != "*", "{name}: a wildcard rule ({g} {res} {verb})");
                        grants.entry(component).or_default().insert((g.clone(), res.clone(), verb.clone()));
                    }
                }
            }
        }
    }
    assert_eq!(roles, 5, "the chart rendered with every component on has 5 Roles/ClusterRoles");
    grants
}

/// The audit log and its rotated backups (`audit-<time>.log`), as `hack/control-plane.sh` keeps them.
fn audit_files() -> Vec<PathBuf> {
    let out = std::process::Command::new("bash")
        .arg(support::root().join("hack/control-plane.sh"))
        .arg("audit-log")
        .output()
        .unwrap();
    let log = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let dir = log.parent().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("audit") && n.ends_with(".log")
        })
        .collect();
    files.sort();
    files
}

/// When the test run started: `CIHEALER_AUDIT_SINCE`, or `target/rbac-audit-since` (written by `make test`).
fn since() -> String {
    if let Ok(s) = std::env::var("CIHEALER_AUDIT_SINCE") {
        return s.trim().to_string();
    }
    let f = support::root().join("target/rbac-audit-since");
    std::fs::read_to_string(&f)
        .unwrap_or_else(|e| {
            panic!("{}: {e}; run `make test` (it writes the file), or set CIHEALER_AUDIT_SINCE", f.display())
        })
        .trim()
        .to_string()
}

/// What each component did: (group, resource, verb) → (requests, requests the API server refused with 403).
type Usage = BTreeMap<&'static str, BTreeMap<Grant, (u64, u64)>>;

fn usage(files: &[PathBuf], since: &str) -> (Usage, u64) {
    let mut used = Usage::new();
    let mut seen = 0;
    let since: jiff::Timestamp = since.parse().expect("an RFC 3339 start time");
    for f in files {
        read(f, since, &mut used, &mut seen);
    }
    (used, seen)
}

fn read(f: &Path, since: jiff::Timestamp, used: &mut Usage, seen: &mut u64) {
    use std::io::BufRead;
    let file = std::fs::File::open(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    for line in std::io::BufReader::new(file).lines() {
        let line = line.unwrap();
        // Cheap filter first: the log holds every client's requests.
        if !line.contains("\"userAgent\":\"ci-healer/") {
            continue;
        }
        let e: serde_json::Value = serde_json::from_str(&line).unwrap();
        // One event per request: ResponseComplete, or ResponseStarted for a watch (its complete
        // event comes only when it ends).
        let stage = e["stage"].as_str().unwrap_or_default();
        let verb = e["verb"].as_str().unwrap_or_default();
        if !(stage == "ResponseComplete" || (stage == "ResponseStarted" && verb == "watch")) {
            continue;
        }
        if stage == "ResponseComplete" && verb == "watch" {
            continue;
        }
        let at: jiff::Timestamp = e["requestReceivedTimestamp"].as_str().unwrap().parse().unwrap();
        if at < since {
            continue;
        }
        let ua = e["userAgent"].as_str().unwrap();
        let component = match ua.rsplit_once('(').map(|(_, c)| c.trim_end_matches(')')) {
            Some("controller") => "controller",
            Some("webhook") => "webhook",
            Some("dashboard") => "dashboard",
            // The host runner is the test stand-in for a kubelet; the chart never installs it.
            Some("host-runner") => continue,
            _ => panic!("a ci-healer User-Agent with no known component: {ua}"),
        };
        let Some(obj) = e.get("objectRef") else { continue };
        let mut resource = obj["resource"].as_str().unwrap_or_default().to_string();
        if let Some(sub) = obj["subresource"].as_str() {
            resource = format!("{resource}/{sub}");
        }
        let group = obj["apiGroup"].as_str().unwrap_or_default().to_string();
        let code = e["responseStatus"]["code"].as_u64().unwrap_or_default();
        let entry = used.entry(component).or_default().entry((group, resource, verb.to_string())).or_default();
        entry.0 += 1;
        if code == 403 {
            entry.1 += 1;
        }
        *seen += 1;
    }
}

#[test]
#[ignore = "reads the audit log of a full test run: `make test` runs it after `cargo test`"]
fn every_verb_the_chart_grants_is_used_and_nothing_used_is_ungranted() {
    let grants = chart_grants();
    let files = audit_files();
    let since = since();
    let (used, seen) = usage(&files, &since);
    assert!(seen > 0, "no ci-healer request in the audit log since {since} ({files:?}): did the tests run?");

    let mut unused = Vec::new();
    let mut ungranted = Vec::new();
    println!("\n{:<11} {:<22} {:<34} {:<17} {:>9}", "component", "group", "resource", "verb", "requests");
    for (component, granted) in &grants {
        let did = used.get(component).cloned().unwrap_or_default();
        for g in granted {
            let n = did.get(g).map_or(0, |u| u.0);
            println!("{component:<11} {:<22} {:<34} {:<17} {n:>9}", g.0, g.1, g.2);
            if n == 0 {
                unused.push(format!("{component}: {} {} {}", g.0, g.1, g.2));
            }
        }
        for (g, (n, refused)) in &did {
            if !granted.contains(g) {
                ungranted.push(format!("{component}: {} {} {} ({n} requests, {refused} refused)", g.0, g.1, g.2));
            }
        }
    }
    for c in used.keys() {
        assert!(grants.contains_key(c), "the chart grants {c} nothing, yet it made requests");
    }
    println!("{seen} ci-healer requests since {since} in {} audit file(s)\n", files.len());
    assert!(
        ungranted.is_empty(),
        "requests the chart's RBAC does not grant (a real install refuses them):\n{}",
        ungranted.join("\n")
    );
    assert!(
        unused.is_empty(),
        "verbs the chart grants that no test saw used (remove them, or test what needs them):\n{}",
        unused.join("\n")
    );
}
