//! Failure classes and the classifier.
//!
//! Evidence, strongest first: a sender's `error_type` naming a class; diagnostics (each tool maps to a
//! class: clippy → `rust_clippy`, tsc → `frontend_types`, helm → `helm` …; ecosystem-neutral formats
//! such as TAP take their ecosystem from [`super::ecosystem`]); log signals (`test result: FAILED`,
//! `Resource not accessible by integration`, `ECONNRESET` …); the failed step's, job's and
//! workflow's names (an ecosystem word such as `yarn` or `cargo` combined with a kind word such as
//! `format`, `lint`, `test`); the changed files' kinds. Scores are summed per class; the confidence is
//! the winner's share, damped when the evidence is thin.
//!
//! A network or environment failure (a package host that failed, a missing daemon or system
//! package) causes the errors after it (`mocha: not found`, `ModuleNotFoundError`, a missing
//! header): when one is found, the evidence that follows it counts a fifth, so the cause wins.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::ecosystem::{Ecosystem, EcosystemGuess};
use super::parsers::{Diagnostic, Severity, Signal, Tool};

/// The failure classes triage assigns (serialised in snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// rustc errors (`error[E0308]`), cargo build failures.
    RustBuild,
    /// clippy lints.
    RustClippy,
    /// cargo test failures (panics, `test … FAILED`).
    RustTest,
    /// `cargo fmt --check` diffs.
    RustFmt,
    /// TypeScript type errors (tsc).
    FrontendTypes,
    /// JavaScript-ecosystem linters: eslint, stylelint, markdownlint, editorconfig checkers,
    /// size-limit budgets.
    FrontendLint,
    /// Prettier `--check` / `--list-different`.
    FrontendFormat,
    /// JavaScript test runners: jest, vitest, mocha, jasmine, karma, ava, tape/TAP, node:test.
    FrontendTest,
    /// JavaScript bundlers and task runners: webpack, gulp, grunt.
    FrontendBuild,
    /// Dependency resolution and lockfiles (npm `ERESOLVE`, cargo `failed to select a version`,
    /// `go.mod` not tidy).
    Dependency,
    /// `docker build` / buildx failures, hadolint.
    DockerBuild,
    /// helm lint/template/install/upgrade failures.
    Helm,
    /// Kubernetes manifests and infrastructure configuration (kubectl, kubeconform, yamllint,
    /// Terraform, Ansible).
    K8sManifest,
    /// Invalid GitHub Actions workflow files (actionlint, `Invalid workflow file`).
    WorkflowSyntax,
    /// The job's token lacks a permission (`Resource not accessible by integration`).
    Permissions,
    /// The runner itself failed or a transient network error: re-run (default `rerunClasses`).
    InfraFlake,
    /// A package host, registry or download failed: DNS, TLS, connection refused, HTTP 4xx/5xx
    /// from npm, yarn, pnpm, pip, cargo, the Go module proxy, apt, Maven, RubyGems, Composer,
    /// helm repositories, curl/wget/git fetches. Routes to `infrastructure`; add it to
    /// `rerunClasses` to re-run instead.
    Network,
    /// The build environment lacks something: a daemon (`Cannot connect to the Docker daemon`), a
    /// cluster, a system package (`E: Unable to locate package`), a command (`command not found`).
    Environment,
    /// Nothing recognisable.
    Unknown,
}

impl FailureClass {
    /// Every class, in declaration order.
    pub const ALL: [FailureClass; 19] = [
        FailureClass::RustBuild,
        FailureClass::RustClippy,
        FailureClass::RustTest,
        FailureClass::RustFmt,
        FailureClass::FrontendTypes,
        FailureClass::FrontendLint,
        FailureClass::FrontendFormat,
        FailureClass::FrontendTest,
        FailureClass::FrontendBuild,
        FailureClass::Dependency,
        FailureClass::DockerBuild,
        FailureClass::Helm,
        FailureClass::K8sManifest,
        FailureClass::WorkflowSyntax,
        FailureClass::Permissions,
        FailureClass::InfraFlake,
        FailureClass::Network,
        FailureClass::Environment,
        FailureClass::Unknown,
    ];

    /// The snake_case name, e.g. `rust_fmt`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::RustBuild => "rust_build",
            FailureClass::RustClippy => "rust_clippy",
            FailureClass::RustTest => "rust_test",
            FailureClass::RustFmt => "rust_fmt",
            FailureClass::FrontendTypes => "frontend_types",
            FailureClass::FrontendLint => "frontend_lint",
            FailureClass::FrontendFormat => "frontend_format",
            FailureClass::FrontendTest => "frontend_test",
            FailureClass::FrontendBuild => "frontend_build",
            FailureClass::Dependency => "dependency",
            FailureClass::DockerBuild => "docker_build",
            FailureClass::Helm => "helm",
            FailureClass::K8sManifest => "k8s_manifest",
            FailureClass::WorkflowSyntax => "workflow_syntax",
            FailureClass::Permissions => "permissions",
            FailureClass::InfraFlake => "infra_flake",
            FailureClass::Network => "network",
            FailureClass::Environment => "environment",
            FailureClass::Unknown => "unknown",
        }
    }

    /// Parse a snake_case name (case-insensitive, `-` accepted for `_`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The network codes of [`is_network_code`] that name a transient condition (a reset or timed-out
/// connection, a DNS lookup that may succeed next time, a gateway or rate limit): a re-run likely
/// passes, so they are [`FailureClass::InfraFlake`], not [`FailureClass::Network`].
pub fn is_transient_network_code(code: &str) -> bool {
    matches!(code, "ECONNRESET" | "ETIMEDOUT" | "EAI_AGAIN" | "ERR_SOCKET_TIMEOUT" | "E429" | "E502" | "E503" | "E504")
}

/// npm/pnpm/yarn codes of a package host that failed (HTTP 4xx/5xx, DNS, TLS, connection), as
/// opposed to a resolution problem of the project's own dependencies.
pub fn is_network_code(code: &str) -> bool {
    matches!(
        code,
        "E401"
            | "E403"
            | "E404"
            | "E407"
            | "E429"
            | "E500"
            | "E502"
            | "E503"
            | "E504"
            | "ECONNREFUSED"
            | "ECONNRESET"
            | "ENOTFOUND"
            | "EAI_AGAIN"
            | "ETIMEDOUT"
            | "ENETUNREACH"
            | "EHOSTUNREACH"
            | "ERR_SOCKET_TIMEOUT"
            | "ENEEDAUTH"
            | "CERT_HAS_EXPIRED"
            | "DEPTH_ZERO_SELF_SIGNED_CERT"
            | "SELF_SIGNED_CERT_IN_CHAIN"
            | "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
            | "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
            | "ERR_TLS_CERT_ALTNAME_INVALID"
            | "EPROTO"
    ) || code.starts_with("ERR_PNPM_FETCH_")
        || code.starts_with("ERR_PNPM_META_FETCH")
}

/// The class a tool's diagnostics point to (`None`: no opinion, or an ecosystem-neutral format, see
/// [`neutral_kind`]; [`FailureClass::Unknown`]: a real failure in an ecosystem without a specialist
/// class, e.g. Go or Python). A diagnostic whose code is `network` or `environment` is of that class
/// whatever its tool.
pub fn class_of(d: &Diagnostic) -> Option<FailureClass> {
    match d.code.as_deref() {
        Some("network") => return Some(FailureClass::Network),
        Some("environment") => return Some(FailureClass::Environment),
        _ => {}
    }
    Some(match d.tool {
        Tool::Rustc => FailureClass::RustBuild,
        Tool::Clippy => FailureClass::RustClippy,
        Tool::Rustfmt => FailureClass::RustFmt,
        Tool::CargoTest => FailureClass::RustTest,
        Tool::Cargo => return None,
        Tool::Tsc => FailureClass::FrontendTypes,
        Tool::Eslint | Tool::Stylelint | Tool::NodeLint | Tool::Markdownlint | Tool::SizeLimit => {
            FailureClass::FrontendLint
        }
        Tool::Prettier => FailureClass::FrontendFormat,
        Tool::Jest | Tool::Vitest | Tool::Mocha | Tool::Jasmine | Tool::Karma | Tool::Ava | Tool::NodeTest => {
            FailureClass::FrontendTest
        }
        Tool::Gulp | Tool::Grunt | Tool::Webpack => FailureClass::FrontendBuild,
        Tool::Npm | Tool::Pnpm | Tool::Yarn => match d.code.as_deref() {
            Some(c) if is_transient_network_code(c) => FailureClass::InfraFlake,
            Some(c) if is_network_code(c) => FailureClass::Network,
            Some("ENOSPC" | "ENOMEM") => FailureClass::InfraFlake,
            _ => FailureClass::Dependency,
        },
        Tool::Pytest
        | Tool::Python
        | Tool::Pip
        | Tool::Go
        | Tool::GoTest
        | Tool::Java
        | Tool::Ruby
        | Tool::Php
        | Tool::Native => FailureClass::Unknown,
        Tool::Docker | Tool::Hadolint => FailureClass::DockerBuild,
        Tool::Helm => FailureClass::Helm,
        Tool::Yamllint | Tool::Kubernetes | Tool::Terraform | Tool::Ansible | Tool::Dotenv => FailureClass::K8sManifest,
        Tool::Actionlint => FailureClass::WorkflowSyntax,
        Tool::GithubActions => match d.code.as_deref() {
            Some("permissions") => FailureClass::Permissions,
            _ => FailureClass::WorkflowSyntax,
        },
        Tool::Tap
        | Tool::Editorconfig
        | Tool::Generic
        | Tool::Apt
        | Tool::Curl
        | Tool::Git
        | Tool::Gpg
        | Tool::Shell => {
            return None;
        }
    })
}

/// What kind of check an ecosystem-neutral format reports (TAP is a test protocol; editorconfig
/// checkers lint any text): its class comes from the job's ecosystem (TAP in a Node.js job is
/// `frontend_test`, in a Perl job `unknown`).
pub fn neutral_kind(tool: Tool) -> Option<&'static str> {
    match tool {
        Tool::Tap => Some("test"),
        Tool::Editorconfig => Some("lint"),
        _ => None,
    }
}

/// The ecosystem a tool belongs to, if it has one.
pub fn tool_ecosystem(tool: Tool) -> Option<Ecosystem> {
    Some(match tool {
        Tool::Rustc | Tool::Clippy | Tool::Rustfmt | Tool::CargoTest | Tool::Cargo => Ecosystem::Rust,
        Tool::Tsc
        | Tool::Eslint
        | Tool::Stylelint
        | Tool::NodeLint
        | Tool::Prettier
        | Tool::Jest
        | Tool::Vitest
        | Tool::Npm
        | Tool::Pnpm
        | Tool::Yarn
        | Tool::Mocha
        | Tool::Jasmine
        | Tool::Karma
        | Tool::Ava
        | Tool::NodeTest
        | Tool::Markdownlint
        | Tool::SizeLimit
        | Tool::Gulp
        | Tool::Grunt
        | Tool::Webpack => Ecosystem::Javascript,
        Tool::Pytest | Tool::Python | Tool::Pip => Ecosystem::Python,
        Tool::Go | Tool::GoTest => Ecosystem::Go,
        Tool::Java => Ecosystem::Jvm,
        Tool::Ruby => Ecosystem::Ruby,
        Tool::Php => Ecosystem::Php,
        Tool::Native => Ecosystem::Native,
        Tool::Docker | Tool::Hadolint | Tool::Helm | Tool::Kubernetes | Tool::Terraform | Tool::Ansible => {
            Ecosystem::Infrastructure
        }
        _ => return None,
    })
}

/// Everything the classifier looks at.
#[derive(Debug, Default)]
pub struct Evidence<'a> {
    /// The parsers' diagnostics.
    pub diagnostics: &'a [Diagnostic],
    /// The parsers' class signals.
    pub signals: &'a [Signal],
    /// The workflow's name.
    pub workflow_name: Option<&'a str>,
    /// The job's name.
    pub job_name: Option<&'a str>,
    /// The failed step names (from the webhook or the log).
    pub step_names: Vec<&'a str>,
    /// Changed files, relative to the repository root.
    pub changed_files: &'a [String],
    /// A sender's hint naming a class.
    pub error_type: Option<&'a str>,
    /// Log line indices of the failing step; evidence inside it counts more.
    pub focus_lines: Option<Range<usize>>,
    /// Log line numbers (1-based) of the failing step.
    pub focus_numbers: Option<Range<usize>>,
    /// The job's ecosystem ([`super::ecosystem::guess`]): classes ecosystem-neutral diagnostics.
    pub ecosystem: Option<EcosystemGuess>,
}

/// The classifier's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The winning class ([`FailureClass::Unknown`] when nothing scored).
    pub class: FailureClass,
    /// 0.0 to 1.0.
    pub confidence: f32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Eco {
    Rust,
    Frontend,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fmt,
    Lint,
    Test,
    Types,
    Build,
    Deps,
}

/// Words in names: (word, ecosystem, kind, direct class).
fn name_word(w: &str) -> (Option<Eco>, Option<Kind>, Option<FailureClass>) {
    use Eco::*;
    use Kind::*;
    match w {
        "cargo" | "rust" | "rustc" | "crate" | "crates" | "msrv" => (Some(Rust), None, None),
        "clippy" => (Some(Rust), Some(Lint), None),
        "rustfmt" => (Some(Rust), Some(Fmt), None),
        "nextest" => (Some(Rust), Some(Test), None),
        "yarn" | "npm" | "pnpm" | "node" | "nodejs" | "frontend" | "web" | "ui" | "js" | "javascript" | "react"
        | "vue" | "angular" | "svelte" | "next" | "vite" | "webpack" | "storybook" | "bun" | "deno" => {
            (Some(Frontend), None, None)
        }
        "eslint" | "stylelint" | "tslint" => (Some(Frontend), Some(Lint), None),
        "prettier" => (Some(Frontend), Some(Fmt), None),
        "tsc" | "typescript" | "typecheck" => (Some(Frontend), Some(Types), None),
        "jest" | "vitest" | "playwright" | "cypress" | "mocha" | "karma" => (Some(Frontend), Some(Test), None),
        "fmt" | "format" | "formatting" | "formatter" => (None, Some(Fmt), None),
        "lint" | "lints" | "linter" | "linters" | "linting" => (None, Some(Lint), None),
        "test" | "tests" | "testing" | "unit" | "e2e" | "spec" | "integration" => (None, Some(Test), None),
        "types" | "type" => (None, Some(Types), None),
        "build" | "compile" | "check" => (None, Some(Build), None),
        "install" | "deps" | "dependencies" | "dependency" | "audit" | "lockfile" => (None, Some(Deps), None),
        "docker" | "dockerfile" | "buildx" | "hadolint" | "container" | "image" => {
            (None, None, Some(FailureClass::DockerBuild))
        }
        "helm" | "chart" | "charts" => (None, None, Some(FailureClass::Helm)),
        "kubectl" | "kustomize" | "kubeconform" | "kubeval" | "manifests" | "k8s" | "kubernetes" | "terraform"
        | "tflint" | "yamllint" | "ansible" => (None, None, Some(FailureClass::K8sManifest)),
        "actionlint" => (None, None, Some(FailureClass::WorkflowSyntax)),
        _ => (None, None, None),
    }
}

fn combine(eco: Option<Eco>, kind: Option<Kind>) -> Option<FailureClass> {
    use FailureClass as C;
    Some(match (eco?, kind) {
        (Eco::Rust, Some(Kind::Fmt)) => C::RustFmt,
        (Eco::Rust, Some(Kind::Lint)) => C::RustClippy,
        (Eco::Rust, Some(Kind::Test)) => C::RustTest,
        (Eco::Rust, Some(Kind::Deps)) => C::Dependency,
        (Eco::Rust, _) => C::RustBuild,
        (Eco::Frontend, Some(Kind::Fmt)) => C::FrontendFormat,
        (Eco::Frontend, Some(Kind::Lint)) => C::FrontendLint,
        (Eco::Frontend, Some(Kind::Test)) => C::FrontendTest,
        (Eco::Frontend, Some(Kind::Types)) => C::FrontendTypes,
        (Eco::Frontend, Some(Kind::Build)) => C::FrontendBuild,
        (Eco::Frontend, Some(Kind::Deps)) => C::Dependency,
        (Eco::Frontend, None) => C::FrontendLint,
    })
}

/// Split a name into lowercase words (`Run yarn run format-check` → run, yarn, run, format, check).
/// Path arguments (`./internal/terraform`) are skipped: their words name directories, not tools;
/// action references (`docker/build-push-action@v5`) are kept.
fn words(name: &str) -> impl Iterator<Item = String> + '_ {
    name.split_whitespace()
        .filter(|tok| !tok.contains('/') || tok.contains('@'))
        .flat_map(|tok| tok.split(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
}

fn file_class(path: &str) -> Option<(Option<Eco>, Option<FailureClass>)> {
    let p = path.to_ascii_lowercase();
    let base = p.rsplit('/').next().unwrap_or(&p);
    if p.starts_with(".github/workflows/") || p.contains("/.github/workflows/") {
        return Some((None, Some(FailureClass::WorkflowSyntax)));
    }
    if base.starts_with("dockerfile") || base.ends_with(".dockerfile") || base == "containerfile" {
        return Some((None, Some(FailureClass::DockerBuild)));
    }
    if base == "chart.yaml" || base == "values.yaml" || p.contains("charts/") {
        return Some((None, Some(FailureClass::Helm)));
    }
    let ext = base.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "rs" => Some((Some(Eco::Rust), None)),
        _ if base == "cargo.toml" || base == "cargo.lock" => Some((Some(Eco::Rust), None)),
        "ts" | "tsx" | "js" | "jsx" | "mjs" | "cjs" | "vue" | "svelte" | "css" | "scss" | "less" => {
            Some((Some(Eco::Frontend), None))
        }
        _ if base == "package.json"
            || base == "package-lock.json"
            || base == "yarn.lock"
            || base == "pnpm-lock.yaml" =>
        {
            Some((Some(Eco::Frontend), None))
        }
        "tf" => Some((None, Some(FailureClass::K8sManifest))),
        "yaml" | "yml" if p.contains("k8s") || p.contains("kube") || p.contains("manifest") || p.contains("deploy") => {
            Some((None, Some(FailureClass::K8sManifest)))
        }
        _ => None,
    }
}

/// Classify. Deterministic; ties go to the class declared first.
pub fn classify(ev: &Evidence<'_>) -> Verdict {
    let mut score = [0f32; FailureClass::ALL.len()];
    let in_focus_number = |n: usize| ev.focus_numbers.as_ref().is_none_or(|r| r.contains(&n));
    let in_focus_line = |i: usize| ev.focus_lines.as_ref().is_none_or(|r| r.contains(&i));

    // Diagnostics, capped per class so one verbose tool does not drown everything else.
    // A network or environment failure causes what follows it: later evidence counts a fifth.
    let cause_number = ev
        .diagnostics
        .iter()
        .filter(|d| {
            d.severity == Severity::Error
                && matches!(
                    class_of(d),
                    Some(FailureClass::Network | FailureClass::Environment | FailureClass::InfraFlake)
                )
        })
        .map(|d| d.log_line)
        .filter(|&n| in_focus_number(n))
        .min();
    let cause_line = ev
        .signals
        .iter()
        .filter(|s| {
            matches!(s.class, FailureClass::Network | FailureClass::Environment | FailureClass::InfraFlake)
                && s.weight >= 2.0
        })
        .map(|s| s.line)
        .filter(|&i| in_focus_line(i))
        .min();
    let eco_class = |kind: &str| -> FailureClass {
        let k = if kind == "test" { Kind::Test } else { Kind::Lint };
        match ev.ecosystem.filter(|g| g.confidence >= 0.3).map(|g| g.ecosystem) {
            Some(Ecosystem::Rust) => combine(Some(Eco::Rust), Some(k)).unwrap_or(FailureClass::Unknown),
            Some(Ecosystem::Javascript) => combine(Some(Eco::Frontend), Some(k)).unwrap_or(FailureClass::Unknown),
            _ => FailureClass::Unknown,
        }
    };
    let mut diag = [0f32; FailureClass::ALL.len()];
    let mut eco_votes = [0f32; 2];
    for d in ev.diagnostics {
        let Some(c) = class_of(d).or_else(|| neutral_kind(d.tool).map(eco_class)) else { continue };
        let secondary = cause_number.is_some_and(|n| d.log_line > n)
            && !matches!(c, FailureClass::Network | FailureClass::Environment);
        let w = match d.severity {
            Severity::Error => 1.0,
            Severity::Warning => 0.4,
            Severity::Note => 0.1,
        } * if in_focus_number(d.log_line) { 1.0 } else { 0.3 }
            * if secondary { 0.2 } else { 1.0 };
        diag[c.index()] += w;
        match c {
            FailureClass::RustBuild | FailureClass::RustClippy | FailureClass::RustTest | FailureClass::RustFmt => {
                eco_votes[0] += w
            }
            FailureClass::FrontendTypes
            | FailureClass::FrontendLint
            | FailureClass::FrontendFormat
            | FailureClass::FrontendTest
            | FailureClass::FrontendBuild => eco_votes[1] += w,
            _ => {}
        }
    }
    for (s, d) in score.iter_mut().zip(diag) {
        *s += d.min(6.0);
    }
    // A clippy run also reports rustc's own lints: when clippy findings exist, rustc warnings are clippy's.
    // Lint diagnostics (no `E0xxx` code) in a run that has clippy findings are clippy's too.
    if diag[FailureClass::RustClippy.index()] > 0.0 {
        let is_lint = |d: &&Diagnostic| {
            d.tool == Tool::Rustc
                && !d
                    .code
                    .as_deref()
                    .is_some_and(|c| c.len() == 5 && c.starts_with('E') && c[1..].bytes().all(|b| b.is_ascii_digit()))
        };
        let moved: f32 =
            ev.diagnostics.iter().filter(is_lint).map(|d| if d.severity == Severity::Error { 1.0 } else { 0.4 }).sum();
        let build = FailureClass::RustBuild.index();
        score[build] = (diag[build] - moved).clamp(0.0, 6.0);
        score[FailureClass::RustClippy.index()] = (diag[FailureClass::RustClippy.index()] + moved).min(6.0);
    }

    // Signals.
    let mut sig = [0f32; FailureClass::ALL.len()];
    for s in ev.signals {
        let secondary = cause_line.is_some_and(|l| s.line > l)
            && !matches!(s.class, FailureClass::Network | FailureClass::Environment);
        sig[s.class.index()] +=
            s.weight * if in_focus_line(s.line) { 1.0 } else { 0.4 } * if secondary { 0.2 } else { 1.0 };
    }
    for (s, g) in score.iter_mut().zip(sig) {
        *s += g.min(8.0);
    }

    // Names: the failed step counts most, then the job, then the workflow.
    let names: Vec<(&str, f32)> = ev
        .step_names
        .iter()
        .map(|s| (*s, 3.0))
        .chain(ev.job_name.map(|j| (j, 2.0)))
        .chain(ev.workflow_name.map(|w| (w, 1.0)))
        .collect();
    let mut name_eco: Vec<Option<Eco>> = Vec::new();
    for (name, _) in &names {
        let e = words(name).filter_map(|w| name_word(&w).0).next();
        name_eco.push(e);
    }
    let mut file_eco = [0usize; 2];
    for f in ev.changed_files.iter().take(10_000) {
        if let Some((e, c)) = file_class(f) {
            match e {
                Some(Eco::Rust) => file_eco[0] += 1,
                Some(Eco::Frontend) => file_eco[1] += 1,
                None => {}
            }
            if let Some(c) = c {
                score[c.index()] += 0.5 / (1.0 + score[c.index()]);
            }
        }
    }
    // The ecosystem when a name has a kind but no ecosystem word.
    let global_eco = name_eco.iter().flatten().next().copied().or_else(|| {
        let rust = eco_votes[0] + file_eco[0] as f32 * 0.2;
        let fe = eco_votes[1] + file_eco[1] as f32 * 0.2;
        if rust > fe {
            Some(Eco::Rust)
        } else if fe > rust {
            Some(Eco::Frontend)
        } else {
            None
        }
    });
    for ((name, w), own_eco) in names.iter().zip(&name_eco) {
        let mut kinds: Vec<Kind> = Vec::new();
        for word in words(name) {
            let (e, k, c) = name_word(&word);
            if let Some(c) = c {
                score[c.index()] += w;
            }
            if let Some(k) = k
                && !kinds.contains(&k)
            {
                kinds.push(k);
            }
            let _ = e;
        }
        let eco = own_eco.or(global_eco);
        if kinds.is_empty()
            && let Some(c) = combine(*own_eco, None)
        {
            score[c.index()] += w * 0.5;
        }
        // The most specific kind wins within one name (format-check: format over check).
        let rank = |k: &Kind| match k {
            Kind::Fmt => 0,
            Kind::Types => 1,
            Kind::Lint => 2,
            Kind::Test => 3,
            Kind::Deps => 4,
            Kind::Build => 5,
        };
        if let Some(k) = kinds.iter().min_by_key(|k| rank(k))
            && let Some(c) = combine(eco, Some(*k))
        {
            score[c.index()] += w;
        }
    }

    // The sender's hint.
    if let Some(c) = ev.error_type.and_then(FailureClass::parse) {
        score[c.index()] += 5.0;
    }

    let total: f32 = score.iter().sum();
    let (best, top) = score
        .iter()
        .enumerate()
        .fold((FailureClass::Unknown.index(), 0f32), |(bi, bs), (i, &s)| if s > bs { (i, s) } else { (bi, bs) });
    if top <= 0.0 {
        return Verdict { class: FailureClass::Unknown, confidence: 0.0 };
    }
    let share = top / total;
    let strength = 1.0 - (-top / 2.0).exp();
    let confidence = ((share * strength) * 100.0).round() / 100.0;
    Verdict { class: FailureClass::ALL[best], confidence: confidence.clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_alone_classify_the_webhook_case() {
        let v = classify(&Evidence {
            workflow_name: Some("CodeQL"),
            job_name: Some("linters"),
            step_names: vec!["Run yarn run format-check"],
            ..Default::default()
        });
        assert_eq!(v.class, FailureClass::FrontendFormat);
        assert!(v.confidence > 0.3, "{v:?}");
    }

    #[test]
    fn cargo_names() {
        let v = classify(&Evidence {
            job_name: Some("clippy"),
            step_names: vec!["Run cargo clippy -- -D warnings"],
            ..Default::default()
        });
        assert_eq!(v.class, FailureClass::RustClippy);
        let v = classify(&Evidence { step_names: vec!["Run cargo fmt --check"], ..Default::default() });
        assert_eq!(v.class, FailureClass::RustFmt);
    }

    #[test]
    fn no_evidence_is_unknown_with_zero_confidence() {
        let v = classify(&Evidence::default());
        assert_eq!((v.class, v.confidence), (FailureClass::Unknown, 0.0));
    }

    #[test]
    fn class_names_round_trip() {
        for c in FailureClass::ALL {
            assert_eq!(FailureClass::parse(c.as_str()), Some(c));
        }
    }
}
