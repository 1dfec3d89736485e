//! Infrastructure and platform: docker build, helm, kubectl/kubeconform, GitHub Actions workflow and
//! permission errors, and class signals for infrastructure flakes.
//!
//! ```text
//! ERROR: failed to solve: process "/bin/sh -c npm ci" did not complete successfully: exit code: 1
//! #12 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2
//! The command '/bin/sh -c make' returned a non-zero code: 2                 (classic builder)
//! Error: INSTALLATION FAILED: validation: chart.metadata.type must be application or library
//! ==> Linting ./chart   then   [ERROR] Chart.yaml: version is required
//! The Deployment "web" is invalid: spec.template.spec.containers[0].image: Required value
//! error: error validating "deploy.yaml": error validating data: …
//! Invalid workflow file: .github/workflows/ci.yml#L12
//! .github/workflows/ci.yml (Line: 12, Col: 5): Unexpected value 'foo'
//! HttpError: Resource not accessible by integration
//! remote: Permission to owner/repo.git denied to github-actions[bot].
//! ```

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::{Diagnostic, Needle, Severity, Sink, State, Tool};

static FAILED_TO_SOLVE: Needle = super::needle!("failed to solve: ");
static HELM_IN_PROGRESS: Needle = super::needle!("another operation (install/upgrade/rollback) is in progress");
static SPACE_FAILED: Needle = super::needle!(" FAILED: ");
static DOCKERFILE: Needle = super::needle!("Dockerfile");
static CONTAINERFILE: Needle = super::needle!("Containerfile");
use crate::triage::classify::FailureClass;
use crate::triage::extract::Log;

static DOCKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(?:#\d+ )?(?i:error:?) (?:failed to solve: )?((?:process "(.*)" did not complete successfully.*)|failed to (?:solve|compute cache key|read dockerfile|build|fetch).*|.*(?:dockerfile|docker build).*)$"#)
        .expect("static regex")
});
static DOCKER_STEP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^ERROR \[([^\]]+)\] (.*)$").expect("static regex"));
static DOCKER_CLASSIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^The command '(.*)' returned a non-zero code: (\d+)").expect("static regex"));
static HADOLINT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\S*(?:Dockerfile|Containerfile)\S*):(\d+) ((?:DL|SC)\d{4}) (error|warning|info|style): (.*)$")
        .expect("static regex")
});
static HELM_ERROR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Error: ((?:INSTALLATION|UPGRADE|ROLLBACK|UNINSTALLATION) FAILED: .*|.*(?:chart|Chart\.yaml|helm |release|templates/|values don't meet|\.tgz).*)$")
        .expect("static regex")
});
static HELM_LINT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[(ERROR|WARNING)\] ([^:]*): (.*)$").expect("static regex"));
static KUBE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(?:error: error validating "([^"]+)": (.*)|error: unable to recognize "([^"]+)": (.*)|The (\w+) "([^"]+)" is invalid: (.*)|(\S+\.ya?ml) - (\S+ \S+) is invalid: (.*)|Error from server \((\w+)\)(?: when creating "([^"]+)")?: (.*))$"#)
        .expect("static regex")
});
static WORKFLOW_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\.github/workflows/[^\s#:]+?\.ya?ml)(?:#L(\d+)| \(Line: (\d+), Col: (\d+)\):?)\s*(.*)$")
        .expect("static regex")
});
static PERMISSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(resource not accessible by (?:integration|personal access token)|permission to \S+ denied to \S+|the requested url returned error: 403|\b403\b[^\n]{0,40}\b(?:forbidden|permission)|\b(?:forbidden|permission denied)\b[^\n]{0,40}\b403\b|refusing to allow an? (?:github app|oauth app|personal access token) to create or update workflow|must have (?:admin|write|push) (?:rights|access)|insufficient (?:permission|scope)s?\b)")
        .expect("static regex")
});

/// Infrastructure flakes: the failure is not in the code; a re-run likely passes. The first
/// patterns name the runner or a host that is overloaded (strong); the last one a bare connection
/// code, which a test that talks to its own services prints too (weak: the test runner's own
/// diagnostics outweigh it).
static FLAKE: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)no space left on device",
        r"(?i)the runner has received a shutdown signal|lost communication with the server|hosted runner encountered an error",
        r"(?i)\b(?:502 bad gateway|503 service unavailable|504 gateway time-?out)\b",
        r"(?i)api rate limit exceeded|toomanyrequests: you have reached your pull rate limit",
        r"(?i)\bexit code 137\b|\bOOMKilled\b|the runner has run out of memory",
        r"(?i)\b(?:ECONNRESET|ETIMEDOUT|EAI_AGAIN|ECONNREFUSED)\b|socket hang up|connection reset by peer|tls handshake timeout|i/o timeout",
    ])
    .expect("static regex set")
});

/// Signals that are cheap to check on any candidate line.
pub(crate) fn signals(t: &str, i: usize, flags: u8, sink: &mut Sink<'_>) {
    if flags & super::FLAG_FLAKE != 0 {
        let m = FLAKE.matches(t);
        if m.iter().any(|k| k < 5) {
            sink.signal(FailureClass::InfraFlake, 4.0, i);
        } else if m.matched(5) {
            sink.signal(FailureClass::InfraFlake, 1.0, i);
        }
    }
    if flags & super::FLAG_GOMOD != 0
        && (t.contains("go.mod/go.sum are not up-to-date")
            || t.contains("updates to go.mod needed")
            || t.contains("missing go.sum entry"))
    {
        sink.signal(FailureClass::Dependency, 2.0, i);
    }
}

/// Lines worth the docker and helm regexes: `ERROR…`/`error…`/`#N ERROR`/`Error: `.
fn is_docker_candidate(t: &str) -> bool {
    let b = t.as_bytes();
    let rest = if b.first() == Some(&b'#') {
        let d = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        t[(1 + d).min(t.len())..].trim_start()
    } else {
        t
    };
    rest.starts_with("ERROR") || rest.starts_with("error") || rest.starts_with("Error: ")
}

/// Parse line `i`; true when it was recognised.
pub(crate) fn parse_line(log: &Log<'_>, i: usize, state: &mut State, sink: &mut Sink<'_>) -> bool {
    let t: &str = &log.lines[i].text;
    let number = log.lines[i].number;
    let first = t.as_bytes().first().copied().unwrap_or(0);
    // Permission errors can be anywhere in a line.
    if state.flags & super::FLAG_PERMISSION != 0 && PERMISSION.is_match(t) {
        let msg = t.trim();
        sink.signal(FailureClass::Permissions, 4.0, i);
        sink.push(Diagnostic::new(Tool::GithubActions, Severity::Error, msg, number).code("permissions"));
        return true;
    }
    if state.flags & super::FLAG_WORKFLOW != 0
        && (t.contains("(Line: ") || t.contains("Invalid workflow file") || t.contains("#L"))
        && let Some(c) = WORKFLOW_LINE.captures(t)
    {
        let line = c.get(2).or(c.get(3)).and_then(|m| m.as_str().parse().ok());
        let col = c.get(4).and_then(|m| m.as_str().parse().ok());
        let msg = match c[5].trim() {
            "" => log
                .lines
                .get(i + 1)
                .map(|l| l.text.trim().to_string())
                .unwrap_or_else(|| "invalid workflow file".into()),
            m => m.to_string(),
        };
        sink.signal(FailureClass::WorkflowSyntax, 4.0, i);
        sink.push(
            Diagnostic::new(Tool::GithubActions, Severity::Error, msg, number).at(&c[1], line, col).code("workflow"),
        );
        return true;
    }
    // BuildKit's summary, also inside another tool's message (`buildx failed with: ERROR: failed to
    // solve: …` from docker/build-push-action).
    if let Some(p) = FAILED_TO_SOLVE.find(t) {
        sink.push(Diagnostic::new(Tool::Docker, Severity::Error, t[p..].trim(), number).code("failed-to-solve"));
        return true;
    }
    // helm's release lock: a previous install/upgrade/rollback is still pending.
    if let Some(p) = HELM_IN_PROGRESS.find(t) {
        let start = t[..p].rfind("Error: ").map_or(0, |e| e + "Error: ".len());
        sink.push(
            Diagnostic::new(Tool::Helm, Severity::Error, t[start..].trim(), number).code("operation-in-progress"),
        );
        return true;
    }
    if let Some(p) = SPACE_FAILED.find(t)
        && let Some(kind) =
            ["INSTALLATION", "UPGRADE", "ROLLBACK", "UNINSTALLATION"].iter().find(|k| t[..p].ends_with(*k))
    {
        let start = p - kind.len();
        sink.push(Diagnostic::new(Tool::Helm, Severity::Error, t[start..].trim(), number));
        return true;
    }
    match first {
        b'#' | b'E' | b'e' if is_docker_candidate(t) => {
            if let Some(c) = DOCKER.captures(t) {
                sink.push(Diagnostic::new(Tool::Docker, Severity::Error, c[1].trim(), number));
                return true;
            }
            if let Some(c) = DOCKER_STEP.captures(t) {
                sink.push(Diagnostic::new(
                    Tool::Docker,
                    Severity::Error,
                    format!("[{}] {}", &c[1], c[2].trim()),
                    number,
                ));
                return true;
            }
            if t.starts_with("Error: ")
                && let Some(c) = HELM_ERROR.captures(t)
            {
                sink.push(Diagnostic::new(Tool::Helm, Severity::Error, &c[1], number));
                return true;
            }
        }
        b'T' => {
            if let Some(c) = DOCKER_CLASSIC.captures(t) {
                sink.push(Diagnostic::new(
                    Tool::Docker,
                    Severity::Error,
                    format!("'{}' returned a non-zero code: {}", &c[1], &c[2]),
                    number,
                ));
                return true;
            }
        }
        b'=' if t.starts_with("==> Linting") => {
            state.helm_lint = true;
            return true;
        }
        b'[' if state.helm_lint => {
            if let Some(c) = HELM_LINT.captures(t) {
                let sev = if &c[1] == "ERROR" { Severity::Error } else { Severity::Warning };
                let mut msg = c[3].trim().to_string();
                // Details follow on tab-indented lines.
                if let Some(next) = log.lines.get(i + 1)
                    && next.text.starts_with('\t')
                {
                    msg.push_str(": ");
                    msg.push_str(next.text.trim());
                }
                let mut d = Diagnostic::new(Tool::Helm, sev, msg, number);
                if !c[2].trim().is_empty() {
                    d = d.at(c[2].trim(), None, None);
                }
                sink.push(d);
                return true;
            }
        }
        _ => {}
    }
    if (DOCKERFILE.is_in(t) || CONTAINERFILE.is_in(t))
        && let Some(c) = HADOLINT.captures(t)
    {
        let sev = match &c[4] {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            _ => Severity::Note,
        };
        sink.push(Diagnostic::new(Tool::Hadolint, sev, &c[5], number).at(&c[1], c[2].parse().ok(), None).code(&c[3]));
        return true;
    }
    if state.flags & super::FLAG_KUBE != 0
        && let Some(c) = KUBE.captures(t)
    {
        let d =
            if let Some(f) = c.get(1) {
                Diagnostic::new(Tool::Kubernetes, Severity::Error, &c[2], number).at(f.as_str(), None, None)
            } else if let Some(f) = c.get(3) {
                Diagnostic::new(Tool::Kubernetes, Severity::Error, &c[4], number).at(f.as_str(), None, None)
            } else if let Some(kind) = c.get(5) {
                Diagnostic::new(
                    Tool::Kubernetes,
                    Severity::Error,
                    format!("{} {:?} is invalid: {}", kind.as_str(), &c[6], &c[7]),
                    number,
                )
            } else if let Some(f) = c.get(8) {
                Diagnostic::new(Tool::Kubernetes, Severity::Error, format!("{} is invalid: {}", &c[9], &c[10]), number)
                    .at(f.as_str(), None, None)
            } else {
                let mut d =
                    Diagnostic::new(Tool::Kubernetes, Severity::Error, format!("{}: {}", &c[11], &c[13]), number);
                if let Some(f) = c.get(12) {
                    d = d.at(f.as_str(), None, None);
                }
                d
            };
        sink.push(d);
        return true;
    }
    false
}
