//! Network, registry and environment failures: a package host, registry or download that failed
//! (class `network`), or a build environment that lacks a daemon, cluster, system package or
//! command (class `environment`). Each rule names the client's own message:
//!
//! ```text
//! Err:2 http://deb.debian.org/debian bookworm Release  404  Not Found         (apt)
//! E: Failed to fetch http://…/Packages  Temporary failure resolving 'deb.debian.org'
//! E: The repository 'http://… bookworm Release' does not have a Release file. / is not signed.
//! W: GPG error: http://… InRelease: The following signatures couldn't be verified … NO_PUBKEY …
//! E: Unable to locate package libfoo-dev                                        (environment)
//! WARNING: Retrying (Retry(total=1, …)) after connection broken by 'NewConnectionError(…)'  (pip)
//! Could not fetch URL https://…/simple/flask/: There was a problem confirming the ssl certificate
//! main.go:6:2: github.com/x/y@v1.6.0: Get "https://proxy.golang.org/…": dial tcp: lookup …: no such host
//! go: github.com/x/y@v1.6.0: reading https://proxy.golang.org/…: 404 Not Found
//! failed to get successful HTTP response from `https://index.crates.io/config.json`, got 500 (cargo)
//! warning: spurious network error (2 tries remaining): [7] Couldn't connect to server
//! Could not transfer artifact g:a:pom:1 from/to central (https://…): Connect to … failed (Maven)
//! Unable to download data from https://rubygems.org/ - Errno::ECONNREFUSED  (RubyGems; Bundler:
//! Could not fetch specs from …)
//! The "https://repo.packagist.org/packages.json" file could not be downloaded   (Composer)
//! curl: (35) OpenSSL SSL_connect: SSL_ERROR_SYSCALL / curl: (6) Could not resolve host: x
//! fatal: unable to access 'https://…/x.git/': Could not resolve host: …          (git)
//! gpg: keyserver receive failed: No keyserver available
//! Error: looks like "https://…" is not a valid chart repository or cannot be reached   (helm)
//! Error response from daemon: Get "https://registry-1.docker.io/v2/": net/http: TLS handshake timeout
//! ERROR: Cannot connect to the Docker daemon at unix:///var/run/docker.sock.   (environment)
//! The connection to the server localhost:8080 was refused - did you specify the right host or port?
//! info There appears to be trouble with the npm registry (returned undefined). Retrying…  (yarn 1)
//! bash: line 1: terraform: command not found                                    (environment)
//! make: *** [Makefile:2: lint] Error 127        (GNU make: the recipe's program was not found)
//! ```
//! npm's and pnpm's codes (`E404`, `ECONNREFUSED`, `ERR_PNPM_FETCH_404` …) are read in
//! [`super::node`]. Rules are checked only on lines that carry one of their keywords.

use std::sync::LazyLock;

use regex::RegexSet;

use super::{Diagnostic, Severity, Sink, Tool};
use crate::triage::classify::FailureClass;

/// (pattern, tool, class, severity is error).
const RULES: &[(&str, Tool, FailureClass, bool)] = &[
    // apt.
    (r"^Err:\d+ \S+", Tool::Apt, FailureClass::Network, true),
    (r"^[EW]: Failed to fetch ", Tool::Apt, FailureClass::Network, true),
    (
        r"^E: The repository '.*' (?:does not have a Release file|is not signed|no longer has a Release file)",
        Tool::Apt,
        FailureClass::Network,
        true,
    ),
    (r"^W: GPG error: |NO_PUBKEY [0-9A-F]{8,}|EXPKEYSIG [0-9A-F]{8,}", Tool::Apt, FailureClass::Network, true),
    (r"^E: Some index files failed to download", Tool::Apt, FailureClass::Network, true),
    (r"Temporary failure resolving '|Hash Sum mismatch", Tool::Apt, FailureClass::Network, true),
    (
        r"^E: (?:Unable to locate package \S+|Package '\S+' has no installation candidate|Couldn't find any package by)",
        Tool::Apt,
        FailureClass::Environment,
        true,
    ),
    // pip.
    (r"^WARNING: Retrying \(Retry\(.*\)\) after connection broken by", Tool::Pip, FailureClass::Network, true),
    (r"^Could not fetch URL \S+: ", Tool::Pip, FailureClass::Network, true),
    (
        r"(?:HTTPSConnectionPool|HTTPConnectionPool)\(host=.*(?:Max retries exceeded|Read timed out)|ReadTimeoutError|ProxyError\(",
        Tool::Pip,
        FailureClass::Network,
        true,
    ),
    (
        r"^ERROR: (?:HTTP error \d{3} while getting|Could not install packages due to an OSError: (?:HTTPS?ConnectionPool|\[Errno 1(?:04|10|11|13)\]))",
        Tool::Pip,
        FailureClass::Network,
        true,
    ),
    // Go module proxy and VCS.
    (
        r#"(?:^go: |: )\S+@\S+: (?:reading |Get "|verifying \S+: )?\S*(?:https?://\S+)?.*(?:: (?:40[134]|410|429|5\d\d) [A-Z][A-Za-z ]+$|dial tcp|no such host|connection refused|i/o timeout|TLS handshake timeout|x509: |unexpected EOF)"#,
        Tool::Go,
        FailureClass::Network,
        true,
    ),
    (r"^go: .*module lookup disabled by GOPROXY=off", Tool::Go, FailureClass::Environment, true),
    // cargo.
    (
        r"failed to get successful HTTP response from|spurious network error|failed to download from `|download of \S+ failed|failed to query replaced source registry|\[\d+\] (?:Couldn't connect to server|Couldn't resolve host name|SSL connect error|Timeout was reached)",
        Tool::Cargo,
        FailureClass::Network,
        true,
    ),
    // Maven, Gradle.
    (
        r"Could not transfer (?:artifact|metadata) \S+ (?:from/to|to) \S+|Connect to \S+ \[[^\]]*\] failed: |Could not GET '\S+'\. Received status code \d{3}|Could not get resource '\S+'",
        Tool::Java,
        FailureClass::Network,
        true,
    ),
    // RubyGems, Bundler.
    (
        r"Unable to download data from \S+ - |Could not fetch specs from \S+|Bundler::HTTPError|Network error while fetching|Retrying fetcher due to error",
        Tool::Ruby,
        FailureClass::Network,
        true,
    ),
    // Composer.
    (
        r#"The "\S+" file could not be downloaded|curl error \d+ while downloading \S+|\[Composer\\Downloader\\TransportException\]"#,
        Tool::Php,
        FailureClass::Network,
        true,
    ),
    // curl, wget, git, ssh, gpg.
    (r"^curl: \((?:5|6|7|18|22|28|35|47|52|56|58|60|77|92)\) ", Tool::Curl, FailureClass::Network, true),
    (
        r"ERROR (?:40[134]|410|429|5\d\d): |unable to resolve host address|failed: Connection refused\.|failed: Connection timed out\.",
        Tool::Curl,
        FailureClass::Network,
        true,
    ),
    (
        // git's transport errors (curl's messages after the URL); a 401/403 is a permission, not the network.
        r"^fatal: unable to access '[^']+': (?:Could not resolve |Failed to connect |Couldn't connect |Connection |Operation timed out|Recv failure|Send failure|Empty reply|(?:Open|Libre)?SSL|gnutls|schannel|server certificate|SSL certificate|The requested URL returned error: (?:404|408|429|5\d\d)|HTTP/2 stream|RPC failed)|^ssh: Could not resolve hostname |^ssh: connect to host \S+ port \d+: ",
        Tool::Git,
        FailureClass::Network,
        true,
    ),
    (
        r"^gpg: keyserver (?:receive|refresh|send) failed: |^gpg: keybox .* failed to fetch|dirmngr.* (?:failed|error)",
        Tool::Gpg,
        FailureClass::Network,
        true,
    ),
    // yarn 1.
    (
        r#"There appears to be trouble with (?:the npm registry|your network connection)|^error An unexpected error occurred: "https?://\S+: (?:getaddrinfo|connect|Request failed|ESOCKETTIMEDOUT|ETIMEDOUT|socket hang up|self.signed|unable to|certificate)|ResponseError: Request failed "\d{3}"#,
        Tool::Yarn,
        FailureClass::Network,
        true,
    ),
    // Containers and charts.
    (
        r#"Error response from daemon: (?:Get|Head|Post) "?https?://|Error response from daemon: (?:manifest for \S+ not found|pull access denied|unauthorized|received unexpected HTTP status: 5\d\d)|failed to resolve source metadata for \S+|failed to do request: |failed to fetch (?:anonymous )?token|failed to authorize: "#,
        Tool::Docker,
        FailureClass::Network,
        true,
    ),
    (
        r"Cannot connect to the Docker daemon at |docker: command not found|Is the docker daemon running\?",
        Tool::Docker,
        FailureClass::Environment,
        true,
    ),
    (
        r#"^Error: looks like "\S+" is not a valid chart repository or cannot be reached|^Error: (?:failed to download|could not download) "?\S+|^Error: failed to fetch https?://\S+"#,
        Tool::Helm,
        FailureClass::Network,
        true,
    ),
    (
        r"^Error: (?:Kubernetes cluster unreachable|no cached repository for \S+ found)",
        Tool::Helm,
        FailureClass::Environment,
        true,
    ),
    (
        r"The connection to the server \S+ was refused - did you specify the right host or port\?|^Unable to connect to the server: |couldn't get current server API group list",
        Tool::Kubernetes,
        FailureClass::Environment,
        true,
    ),
    // TLS and DNS, any client.
    (
        r"SSL connect error|SSL certificate problem: |certificate verify failed|CERTIFICATE_VERIFY_FAILED|x509: certificate |unable to get local issuer certificate|Could not resolve host: \S+|Name or service not known|getaddrinfo (?:ENOTFOUND|EAI_AGAIN) ",
        Tool::Curl,
        FailureClass::Network,
        true,
    ),
    // Commands.
    (
        r"(?:^|: )[\w./-]+: (?:command )?not found$|^/usr/bin/env: '[^']+': No such file or directory",
        Tool::Shell,
        FailureClass::Environment,
        true,
    ),
    // GNU make runs a simple recipe line without a shell: a missing program is make's own
    // `make: NAME: Command not found` (make < 4.3) or `make: NAME: No such file or directory`,
    // then `make: *** [Makefile:2: lint] Error 127`. 127 is the status POSIX gives a command that
    // is not found (Shell Command Language, 2.8.2 "Exit Status for Commands"); make reports it as is.
    (
        r"^make(?:\[\d+\])?: (?:\*\*\* \[[^\]]*\] Error 127$|[\w./+-]+: Command not found$)",
        Tool::Shell,
        FailureClass::Environment,
        true,
    ),
];

static SET: LazyLock<RegexSet> =
    LazyLock::new(|| RegexSet::new(RULES.iter().map(|(p, ..)| *p)).expect("static regex set"));

/// Weight of a network or environment signal: it outweighs the errors it causes.
pub const WEIGHT: f32 = 5.0;

/// Parse line `i` (its text `t`, log line `number`); true when a rule matched.
pub(crate) fn parse_line(t: &str, i: usize, number: usize, sink: &mut Sink<'_>) -> bool {
    let t = t.trim_end();
    // Most lines match no rule: a plain search answers that faster than collecting every match.
    if !SET.is_match(t) {
        return false;
    }
    let matches = SET.matches(t);
    let Some(k) = matches.iter().next() else { return false };
    let (_, tool, class, _) = RULES[k];
    let code = if class == FailureClass::Environment { "environment" } else { "network" };
    // `command not found` is often the consequence of an earlier failure: weaker.
    let weight = if tool == Tool::Shell { WEIGHT * 0.6 } else { WEIGHT };
    sink.signal(class, weight, i);
    sink.push(Diagnostic::new(tool, Severity::Error, t.trim(), number).code(code));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::Limits;
    use crate::triage::extract::Log;
    use crate::triage::parsers;

    fn classes(text: &str) -> Vec<(Tool, Option<String>)> {
        let log = Log::parse(text, &Limits::default());
        parsers::parse(&log, text, None, &Limits::default()).diagnostics.into_iter().map(|d| (d.tool, d.code)).collect()
    }

    #[test]
    fn package_hosts_and_environments() {
        let net = Some("network".to_string());
        let env = Some("environment".to_string());
        for (line, tool, code) in [
            ("Err:2 http://127.0.0.1:41033/debian bookworm Release", Tool::Apt, &net),
            ("E: Unable to locate package libzstd-ng-dev", Tool::Apt, &env),
            (
                "W: GPG error: http://x bookworm InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 0E98404D386FA1D9",
                Tool::Apt,
                &net,
            ),
            (
                "WARNING: Retrying (Retry(total=1, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError()': /simple/requests/",
                Tool::Pip,
                &net,
            ),
            (
                "go: github.com/google/uuid@v1.6.0: reading http://127.0.0.1:33577/github.com/google/uuid/@v/v1.6.0.mod: 404 Not Found",
                Tool::Go,
                &net,
            ),
            (
                "main.go:6:2: github.com/google/uuid@v1.6.0: Get \"https://goproxy.invalid/x.zip\": dial tcp: lookup goproxy.invalid: no such host",
                Tool::Go,
                &net,
            ),
            ("curl: (35) OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to 127.0.0.1:443", Tool::Curl, &net),
            (
                "fatal: unable to access 'https://git.example.invalid/a.git/': Could not resolve host: git.example.invalid",
                Tool::Git,
                &net,
            ),
            (
                "ERROR: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
                Tool::Docker,
                &env,
            ),
            (
                "The connection to the server localhost:8080 was refused - did you specify the right host or port?",
                Tool::Kubernetes,
                &env,
            ),
            ("bash: line 1: terraform: command not found", Tool::Shell, &env),
            ("make: *** [Makefile:2: lint] Error 127", Tool::Shell, &env),
            ("make[1]: *** [sub.mk:4: all] Error 127", Tool::Shell, &env),
            ("make: golangci-lint: Command not found", Tool::Shell, &env),
        ] {
            let got = classes(&format!("{line}\n"));
            assert!(got.iter().any(|(t, c)| *t == tool && c == code), "{line}: {got:?}");
        }
        // A test that cannot reach its own database is a test failure, not a network failure.
        assert!(
            classes("     Error: connect ECONNREFUSED 127.0.0.1:5439\n")
                .iter()
                .all(|(_, c)| c.as_deref() != Some("network"))
        );
        // npm prints Node's TLS verification codes (`DEPTH_ZERO_SELF_SIGNED_CERT`,
        // `SELF_SIGNED_CERT_IN_CHAIN` …: OpenSSL's X509 verify errors as Node names them) after
        // `npm error code`, like its `E…` codes: a registry that cannot be trusted.
        for code in ["DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"] {
            for prefix in ["npm error code", "npm ERR! code"] {
                let text = format!(
                    "{prefix} {code}\nnpm error request to https://r.example/x failed, reason: self-signed certificate\n"
                );
                let log = Log::parse(&text, &Limits::default());
                let parsed = parsers::parse(&log, &text, None, &Limits::default());
                assert!(
                    parsed.diagnostics.iter().any(|d| d.tool == Tool::Npm && d.code.as_deref() == Some(code)),
                    "{text}: {:?}",
                    parsed.diagnostics
                );
                assert!(parsed.signals.iter().any(|s| s.class == FailureClass::Network), "{text}");
            }
        }
        // Another exit status of a recipe is the recipe's own failure.
        assert!(
            classes("make: *** [Makefile:2: test] Error 1\n").iter().all(|(_, c)| c.as_deref() != Some("environment"))
        );
    }
}
