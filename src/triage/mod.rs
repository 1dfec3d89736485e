//! Triage: from a failed CI job (its log, names and changed files) to a failure class, an agent
//! profile, an error hash for dedup and a bounded excerpt for the agent.
//!
//! The pipeline, one module per concern:
//!
//! 1. [`extract`]: decode the raw bytes (any bytes: invalid UTF-8, ANSI, control characters, GitHub
//!    Actions timestamps and `##[group]`/`##[error]` markers, `gh run view --log` tab-separated
//!    prefixes) into cleaned lines, find the steps and the failing step. Bounded: only the last
//!    [`Limits::max_scan_bytes`] bytes are scanned and lines are cut at [`Limits::max_line_bytes`].
//! 2. [`parsers`]: structured [`Diagnostic`]s (rustc/cargo human and JSON, clippy, rustfmt, cargo test,
//!    tsc, eslint, stylelint, prettier, jest, vitest, npm/pnpm/yarn, pytest and Python linters, go,
//!    javac/maven/gradle, docker, hadolint, helm, yamllint, kube-linter/kube-score, tflint, trivy,
//!    actionlint, GitHub permission errors) and class [`parsers::Signal`]s from log patterns.
//! 3. [`classify`]: a failure class with a confidence, from diagnostics, signals, names, changed files.
//! 4. [`route`]: the `routing:` rules of the controller config pick a profile or a re-run.
//! 5. [`hash`]: a 16-hex-digit error hash, stable across reruns and commits of the same failure.
//! 6. [`excerpt`]: the bounded text the agent sees.
//!
//! The controller depends only on [`TriageInput`], [`TriageResult`], [`RoutingConfig`] and [`triage`].
//!
//! Library errors: triage itself cannot fail (any bytes are a log); reading a routing config is the
//! one fallible step ([`cli::RoutingFileError`]). `anyhow` is used only at the CLI edge.

#![warn(missing_docs)]

pub mod boilerplate;
pub mod classify;
pub mod cli;
pub mod ecosystem;
pub mod excerpt;
pub mod extract;
pub mod hash;
pub mod parsers;
pub mod route;

use serde::{Deserialize, Serialize};

pub use classify::FailureClass;
pub use ecosystem::{Ecosystem, EcosystemGuess};
pub use parsers::{Diagnostic, Severity, Tool};
pub use route::{RouteAction, RoutingConfig, RoutingRule};

/// What triage looks at. `log` may be any bytes (invalid UTF-8, ANSI, GitHub Actions markers).
#[derive(Debug, Clone, Default)]
pub struct TriageInput<'a> {
    /// The raw job log (plain text, GitHub Actions raw log, `gh run view --log` output or a tool's
    /// JSON report). May be empty (a webhook without a log).
    pub log: &'a [u8],
    /// The workflow's name (`workflow_job.workflow_name`).
    pub workflow_name: Option<&'a str>,
    /// The job's name (`workflow_job.name`).
    pub job_name: Option<&'a str>,
    /// Names of the steps GitHub reported as failed (`workflow_job.steps[].name` with conclusion
    /// `failure`), e.g. `Run yarn run format-check`.
    pub failed_steps: &'a [String],
    /// Paths changed by the failing commit or pull request, relative to the repository root.
    pub changed_files: &'a [String],
    /// A sender-provided hint, e.g. a failure class name such as `rust_fmt`.
    pub error_type: Option<&'a str>,
    /// The repository's languages as GitHub reports them (`GET /repos/{owner}/{repo}/languages`):
    /// (linguist language name, bytes of code). Empty when unknown.
    pub repository_languages: &'a [(String, u64)],
}

/// Resource bounds for one triage. All sizes in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Only the last this-many bytes of the log are scanned (failures sit at the end). Default 16 MiB.
    pub max_scan_bytes: usize,
    /// Longer lines are cut (on a character boundary) before parsing. Default 64 KiB.
    pub max_line_bytes: usize,
    /// At most this many diagnostics are kept. Default 2000.
    pub max_diagnostics: usize,
    /// The excerpt is at most this many bytes of UTF-8. Default 64 KiB.
    pub max_excerpt_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_scan_bytes: 16 << 20, max_line_bytes: 64 << 10, max_diagnostics: 2000, max_excerpt_bytes: 64 << 10 }
    }
}

/// The triage verdict for one failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriageResult {
    /// One of the [`FailureClass`] names, e.g. `rust_fmt`, `frontend_format`, `unknown`.
    pub failure_class: String,
    /// 0.0 to 1.0: how sure the classifier is.
    pub confidence: f32,
    /// The agent profile to use (`general`, `rust`, `frontend`, `infrastructure` by default).
    pub profile: String,
    /// The job's ecosystem ([`Ecosystem`], e.g. `javascript`), from the log's toolchain signals,
    /// the failing step, the changed files and the repository's languages; absent without any hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem: Option<Ecosystem>,
    /// 0.0 to 1.0: how sure the ecosystem guess is. A guess of at least the routing config's
    /// `ecosystemConfidence` routes an `unknown` failure to the ecosystem's profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecosystem_confidence: Option<f32>,
    /// Run an agent, or ask CI to re-run (flaky or infrastructural failures).
    pub action: RouteAction,
    /// 16 lowercase hex digits (`[0-9a-f]{16}`); stable across reruns of the same failure.
    pub error_hash: String,
    /// The step that failed, when known (from the webhook, else from the log's markers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_step: Option<String>,
    /// The excerpt given to agents: at most [`Limits::max_excerpt_bytes`] bytes, no ANSI or control
    /// characters except newline and tab.
    pub excerpt: String,
    /// The structured diagnostics found, errors first, at most 200 (the excerpt lists more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
    /// The name of the routing rule that matched (`default:<n>` for built-in rules), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_rule: Option<String>,
    /// What could not be read, e.g. `invalid UTF-8: 12 bytes replaced`, `log truncated: scanned
    /// the last 16777216 of 104857600 bytes`. Empty when everything was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// How many diagnostics [`TriageResult::diagnostics`] carries at most.
pub const MAX_RESULT_DIAGNOSTICS: usize = 200;

/// Classify, route and hash one failure with the default [`Limits`]. Never panics; bounded in time
/// and memory (linear in `min(log.len(), max_scan_bytes)`).
pub fn triage(input: &TriageInput<'_>, routing: &RoutingConfig) -> TriageResult {
    triage_with_limits(input, routing, &Limits::default())
}

/// [`triage`] with explicit resource bounds.
pub fn triage_with_limits(input: &TriageInput<'_>, routing: &RoutingConfig, limits: &Limits) -> TriageResult {
    let decoded = extract::decode(input.log, limits);
    let log = extract::Log::parse_from(&decoded.text, limits, decoded.skipped_lines);
    let mut unreadable = decoded.notes.clone();
    unreadable.extend(log.notes.iter().cloned());

    let focus = log.focus_step(input.failed_steps);
    let parsed = parsers::parse(&log, &decoded.text, focus, limits);
    unreadable.extend(parsed.notes.iter().cloned());

    let failing_step = input
        .failed_steps
        .iter()
        .find(|s| !s.trim().is_empty())
        .cloned()
        .or_else(|| focus.map(|i| log.steps[i].name.clone()));

    let focus_lines = focus.map(|i| log.steps[i].lines.clone());
    let focus_numbers = focus_lines
        .as_ref()
        .filter(|r| !r.is_empty())
        .map(|r| log.lines[r.start].number..log.lines[r.end - 1].number + 1);
    let step_texts: Vec<&str> = match focus {
        Some(i) => {
            let st = &log.steps[i];
            std::iter::once(st.name.as_str())
                .chain((st.header.start + 1..st.header.end).take(8).map(|j| log.lines[j].text.as_ref()))
                .collect()
        }
        None => Vec::new(),
    };
    let ecosystem = ecosystem::guess(&ecosystem::EcosystemEvidence {
        log: Some(&log),
        focus_lines: focus_lines.clone(),
        diagnostics: &parsed.diagnostics,
        step_texts: step_texts.into_iter().chain(input.failed_steps.iter().map(String::as_str)).collect(),
        names: input.job_name.into_iter().chain(input.workflow_name).collect(),
        changed_files: input.changed_files,
        languages: input.repository_languages,
    });
    let verdict = classify::classify(&classify::Evidence {
        diagnostics: &parsed.diagnostics,
        signals: &parsed.signals,
        workflow_name: input.workflow_name,
        job_name: input.job_name,
        step_names: failing_step.as_deref().into_iter().collect(),
        changed_files: input.changed_files,
        error_type: input.error_type,
        focus_lines,
        focus_numbers,
        ecosystem,
    });

    let excerpt = excerpt::build(&log, &parsed, focus, failing_step.as_deref(), limits.max_excerpt_bytes);

    let mut tools: Vec<Tool> = Vec::new();
    for d in parsed.diagnostics.iter().filter(|d| d.severity == Severity::Error) {
        if !tools.contains(&d.tool) {
            tools.push(d.tool);
        }
    }
    let route = route::route(
        routing,
        &route::RouteQuery {
            class: verdict.class.as_str(),
            workflow_name: input.workflow_name,
            job_name: input.job_name,
            step_names: failing_step
                .as_deref()
                .into_iter()
                .chain(input.failed_steps.iter().map(String::as_str))
                .collect(),
            changed_files: input.changed_files,
            excerpt: &excerpt,
            tools,
            ecosystem,
            min_ecosystem_confidence: routing.ecosystem_confidence,
        },
    );

    let error_hash = hash::error_hash(&hash::HashInput {
        parsed: &parsed,
        log: &log,
        focus,
        workflow_name: input.workflow_name,
        job_name: input.job_name,
        failed_steps: input.failed_steps,
    });

    let mut diagnostics = parsed.diagnostics;
    diagnostics.sort_by_key(|d| (d.severity, d.log_line));
    diagnostics.truncate(MAX_RESULT_DIAGNOSTICS);

    TriageResult {
        failure_class: verdict.class.as_str().to_string(),
        confidence: verdict.confidence,
        profile: route.profile,
        ecosystem: ecosystem.map(|g| g.ecosystem),
        ecosystem_confidence: ecosystem.map(|g| g.confidence),
        action: route.action,
        error_hash,
        failing_step,
        excerpt,
        diagnostics,
        matched_rule: route.rule,
        unreadable,
    }
}
