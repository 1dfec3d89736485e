//! Triage on real CI and tool output (tests/fixtures/triage, see PROVENANCE.md there): each parser
//! is pinned on the files, lines and messages the source's own ground truth gives.

use std::path::PathBuf;

use ci_healer::triage::{Diagnostic, RouteAction, RoutingConfig, Severity, Tool, TriageInput, TriageResult, triage};

fn fixture(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triage").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn run(rel: &str) -> TriageResult {
    triage(&TriageInput { log: &fixture(rel), ..Default::default() }, &RoutingConfig::default())
}

fn find<'a>(r: &'a TriageResult, file: &str, line: u32) -> &'a Diagnostic {
    r.diagnostics
        .iter()
        .find(|d| d.file.as_deref() == Some(file) && d.line == Some(line))
        .unwrap_or_else(|| panic!("no diagnostic at {file}:{line} in {:#?}", r.diagnostics))
}

fn assert_hash_shape(h: &str) {
    assert!(h.len() == 16 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{h}");
}

#[test]
fn rustc_short_format_matches_errorformat_ground_truth() {
    let r = run("logs/rust/errorformat-cargo-check.log");
    let d = find(&r, "src/main.rs", 3);
    assert_eq!((d.tool, d.column, d.severity), (Tool::Rustc, Some(5), Severity::Warning));
    assert_eq!(d.message, "unused import: `std::process`");
    assert_eq!(find(&r, "src/main.rs", 6).message, "unused `std::result::Result` that must be used");
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("rust_build", "rust"));
}

#[test]
fn clippy_human_output_lines_match_the_ui_test_markers() {
    let r = run("logs/rust/clippy-ui-len_zero.log");
    // `//~^ len_zero` on line 84 of the UI test's source: the lint is on line 83.
    let d = find(&r, "tests/ui/len_zero.rs", 83);
    assert_eq!((d.tool, d.column, d.severity), (Tool::Clippy, Some(8), Severity::Error));
    assert_eq!(d.code.as_deref(), Some("clippy::len_zero"));
    assert_eq!(d.message, "length comparison to zero");
    // The second occurrence has no note naming the lint; the code is carried over.
    assert_eq!(find(&r, "tests/ui/len_zero.rs", 88).code.as_deref(), Some("clippy::len_zero"));
    assert_eq!(find(&r, "tests/ui/len_zero.rs", 98).code.as_deref(), Some("clippy::comparison_to_empty"));
    // Every `//~` marker of the source is a diagnostic line.
    let src = String::from_utf8(fixture("logs/rust/clippy-ui-len_zero.source.rs")).unwrap();
    for (i, l) in src.lines().enumerate() {
        if let Some(p) = l.find("//~^") {
            let carets = l[p + 3..].chars().take_while(|&c| c == '^').count();
            let line = (i + 1 - carets) as u32;
            assert!(r.diagnostics.iter().any(|d| d.line == Some(line)), "marker for line {line} not parsed");
        }
    }
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("rust_clippy", "rust"));
    assert!(r.excerpt.contains("--> tests/ui/len_zero.rs:83:8"));
}

#[test]
fn clippy_2018_output_with_deny_and_warn() {
    let r = run("logs/rust/analysis-model-cargo-clippy-2018.log");
    let d = find(&r, "src/fs.rs", 11);
    assert_eq!((d.severity, d.column), (Severity::Error, Some(31)));
    assert_eq!(d.code.as_deref(), Some("clippy::clone_double_ref"));
    assert!(d.message.starts_with("using `clone` on a double-reference"));
    assert_eq!(find(&r, "build.rs", 9).code.as_deref(), Some("clippy::needless_borrow"));
    assert_eq!(r.failure_class, "rust_clippy");
}

#[test]
fn cargo_json_messages() {
    let r = run("logs/rust/analysis-model-CargoCheck.json");
    let d = find(&r, "packages/secspc/src/main.rs", 14);
    assert_eq!((d.tool, d.column, d.code.as_deref()), (Tool::Rustc, Some(5), Some("unused_imports")));
    assert_eq!(d.message, "unused import: `secsp_analysis::input::FileId`");
    let d = find(&r, "packages/secspc/src/main.rs", 68);
    assert_eq!((d.tool, d.code.as_deref()), (Tool::Clippy, Some("clippy::redundant_closure")));
    // `1 warning emitted` is a summary, not a diagnostic.
    assert!(!r.diagnostics.iter().any(|d| d.message.contains("emitted")));
    assert_eq!(r.profile, "rust");
}

#[test]
fn rustc_json_diagnostic() {
    let r = run("rust-json/cargo-rustfix/everything/E0178.json");
    let d = find(&r, "./tests/everything/E0178.rs", 6);
    assert_eq!(
        (d.tool, d.severity, d.column, d.code.as_deref()),
        (Tool::Rustc, Severity::Error, Some(8), Some("E0178"))
    );
    assert_eq!(d.message, "expected a path on the left-hand side of `+`, not `&'a Foo`");
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("rust_build", "rust"));
}

#[test]
fn tsc_with_continuation_line() {
    let r = run("logs/frontend/errorformat-tsc.log");
    let d = find(&r, "tsc.ts", 5);
    assert_eq!((d.tool, d.column, d.code.as_deref()), (Tool::Tsc, Some(12), Some("TS2345")));
    assert_eq!(
        d.message,
        "Argument of type 'boolean' is not assignable to parameter of type 'number | string'. Type 'boolean' is not assignable to type 'string'."
    );
    assert_eq!(find(&r, "tsc.ts", 11).message, "Cannot find name 'error'.");
    assert_eq!(r.diagnostics.len(), 3);
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("frontend_types", "frontend"));
}

#[test]
fn eslint_stylish_compact_and_json() {
    let r = run("logs/frontend/errorformat-eslint.log");
    let d = find(&r, "/path/to/eslint.js", 3);
    assert_eq!((d.tool, d.column, d.code.as_deref()), (Tool::Eslint, Some(3), Some("indent")));
    assert_eq!(d.message, "Expected indentation of 4 spaces but found 2");
    assert_eq!(r.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count(), 1);
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("frontend_lint", "frontend"));

    let r = run("logs/frontend/errorformat-eslint-compact.log");
    let d = find(&r, "/path/to/eslint.js", 6);
    assert_eq!((d.column, d.code.as_deref()), (Some(5), Some("no-unused-vars")));
    assert_eq!(d.message, "'unusedvar' is assigned a value but never used.");
    assert_eq!(r.diagnostics.len(), 7);

    let r = run("logs/frontend/analysis-model-eslint_eslint.json");
    let d = find(&r, "/var/lib/jenkins/workspace/eslint/fullOfProblems.js", 2);
    assert_eq!((d.severity, d.column, d.code.as_deref()), (Severity::Error, Some(9), Some("use-isnan")));
    assert_eq!(r.profile, "frontend");
}

#[test]
fn stylelint_and_tslint() {
    let r = run("logs/frontend/errorformat-stylelint.log");
    let d = find(&r, "renderer/style.css", 46);
    assert_eq!((d.tool, d.severity), (Tool::Stylelint, Severity::Error));
    assert_eq!(d.code.as_deref(), Some("shorthand-property-no-redundant-values"));
    assert_eq!(d.message, "Unexpected longhand value '0px 5px 0 5px' instead of '0px 5px 0'");
    let r = run("logs/frontend/errorformat-tslint.log");
    let d = find(&r, "path/to/file2.ts", 216);
    assert_eq!((d.column, d.message.as_str()), (Some(13), "forbidden 'var' keyword, use 'let' or 'const' instead"));
    assert_eq!(r.profile, "frontend");
}

#[test]
fn npm_audit_is_a_frontend_dependency_failure() {
    let r = run("logs/frontend/analysis-model-npm-audit.json");
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.tool == Tool::Npm && d.message.starts_with("connect: methodOverride Middleware"))
    );
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("dependency", "frontend"));
    assert_eq!(r.matched_rule.as_deref(), Some("default:frontend-dependency"));
}

#[test]
fn helm_lint_and_install() {
    let r = run("logs/infrastructure/helm-lint-chart-with-bad-subcharts.log");
    assert!(r.diagnostics.iter().any(|d| d.tool == Tool::Helm
        && d.message == "unable to load chart: error unpacking subchart bad-subchart in chart-with-bad-subcharts: validation: chart.metadata.name is required"));
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("helm", "infrastructure"));
    let r = run("logs/infrastructure/helm-install-chart-bad-type.log");
    assert_eq!(
        r.diagnostics[0].message,
        "INSTALLATION FAILED: validation: chart.metadata.type must be application or library"
    );
    assert_eq!(r.profile, "infrastructure");
}

#[test]
fn yamllint_hadolint_kubelinter_tflint() {
    let r = run("logs/infrastructure/errorformat-yamllint.log");
    let d = r
        .diagnostics
        .iter()
        .find(|d| d.file.as_deref() == Some("foo/widget.yml") && d.column == Some(1))
        .expect("widget.yml:1:1");
    assert_eq!(
        (d.tool, d.severity, d.line, d.code.as_deref()),
        (Tool::Yamllint, Severity::Warning, Some(1), Some("document-start"))
    );
    assert_eq!(d.message, "missing document start \"---\"");
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("k8s_manifest", "infrastructure"));

    let r = run("logs/infrastructure/analysis-model-hadolint.json");
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.tool == Tool::Hadolint && d.code.as_deref() == Some("DL3008") && d.line == Some(15))
    );
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("docker_build", "infrastructure"));

    let r = run("logs/infrastructure/analysis-model-kubelinter.json");
    let d =
        r.diagnostics.iter().find(|d| d.code.as_deref() == Some("no-read-only-root-fs")).expect("kube-linter check");
    assert_eq!(
        (d.file.as_deref(), d.message.as_str()),
        (Some("k8s/pod.yaml"), "container \"sec-ctx-demo\" does not have a read-only root file system")
    );
    assert_eq!(r.profile, "infrastructure");

    let r = run("logs/infrastructure/analysis-model-tflint.json");
    let d = find(&r, "modules/aws/main.tf", 10);
    assert_eq!(
        (d.code.as_deref(), d.message.as_str()),
        (Some("aws_instance_invalid_ami"), "Search base image 'ami-invalid' does not exist")
    );
    assert_eq!(r.profile, "infrastructure");
}

#[test]
fn actionlint_is_a_workflow_problem() {
    let r = run("logs/github_workflow/actionlint-invalid_permissions.log");
    let d = find(&r, "test.yaml", 4);
    assert_eq!((d.tool, d.column, d.code.as_deref()), (Tool::Actionlint, Some(13), Some("permissions")));
    assert_eq!(
        d.message,
        "\"foo\" is invalid as permission of scope \"contents\". available values are \"read\", \"write\", \"none\""
    );
    assert_eq!(r.diagnostics.len(), 12);
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("workflow_syntax", "general"));
}

/// Ground-truth `E` line ranges of a cidiff log, cleaned like the excerpt.
fn labelled_lines(log: &str, gt: &str) -> Vec<String> {
    let raw: Vec<String> = String::from_utf8_lossy(&fixture(log)).split('\n').map(str::to_string).collect();
    let gt = String::from_utf8(fixture(gt)).unwrap();
    let mut out = Vec::new();
    for l in gt.lines() {
        let Some(r) = l.strip_prefix("E ") else { continue };
        let (a, b) = r
            .split_once('-')
            .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
            .unwrap_or_else(|| {
                let a = r.parse().unwrap();
                (a, a)
            });
        for n in a..=b {
            let t = ci_healer::triage::extract::display_text(&raw[n - 1]);
            if !t.trim().is_empty() {
                out.push(t.trim().to_string());
            }
        }
    }
    out
}

#[test]
fn github_actions_go_test_failure() {
    let r = run("logs/other/cidiff-Quick_Checks-run104.log");
    assert_eq!(r.failing_step.as_deref(), Some("Run go test ./..."));
    let d = r.diagnostics.iter().find(|d| d.tool == Tool::GoTest).expect("go test failure");
    assert_eq!((d.code.as_deref(), d.log_line), (Some("TestCloud_configWithEnvVars"), 639));
    let d = find(&r, "testing.go", 192);
    assert_eq!(d.message, "missing API token");
    // Go has no specialist profile.
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("unknown", "general"));
    for l in
        labelled_lines("logs/other/cidiff-Quick_Checks-run104.log", "logs/other/cidiff-Quick_Checks-run104.groundtruth")
    {
        assert!(r.excerpt.contains(&l), "labelled line missing from the excerpt: {l}");
    }
    assert!(!r.excerpt.contains("2022-04-12T"), "timestamps are stripped");
}

#[test]
fn github_actions_go_build_errors_from_error_markers() {
    let r = run("logs/other/cidiff-Quick_Checks-run118.log");
    let d = find(&r, "internal/command/cliconfig/credentials_test.go", 109);
    assert_eq!((d.tool, d.column, d.message.as_str()), (Tool::Go, Some(9), "undefined: os"));
    for l in
        labelled_lines("logs/other/cidiff-Quick_Checks-run118.log", "logs/other/cidiff-Quick_Checks-run118.groundtruth")
    {
        assert!(r.excerpt.contains(&l), "labelled line missing from the excerpt: {l}");
    }
}

#[test]
fn gh_cli_log_with_job_and_step_columns() {
    let r = run("logs/other/cidiff-breakages-cidiff_11.log");
    assert_eq!(r.failing_step.as_deref(), Some("build cidiff"));
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.tool == Tool::Java && d.message == "test LogDifferTest > testGithubParsing() failed")
    );
    for l in
        labelled_lines("logs/other/cidiff-breakages-cidiff_11.log", "logs/other/cidiff-breakages-cidiff_11.groundtruth")
    {
        assert!(r.excerpt.contains(&l), "labelled line missing from the excerpt: {l}");
    }
    assert!(!r.excerpt.contains("build-test-deploy\t"), "job column stripped");
    assert_eq!(r.profile, "general");
}

#[test]
fn unsafe_repository_chunk_without_parser() {
    let r = run("logs/github_workflow/cidiff-breakages-cv_45.log");
    for l in labelled_lines(
        "logs/github_workflow/cidiff-breakages-cv_45.log",
        "logs/github_workflow/cidiff-breakages-cv_45.groundtruth",
    ) {
        assert!(r.excerpt.contains(&l), "labelled line missing from the excerpt: {l}");
    }
    assert_eq!(r.profile, "general");
    assert_hash_shape(&r.error_hash);
}

#[test]
fn python_linters() {
    let r = run("logs/other/errorformat-flake8.log");
    let d = find(&r, "./num_guess.py", 9);
    assert_eq!((d.tool, d.column, d.code.as_deref()), (Tool::Python, Some(80), Some("E501")));
    assert_eq!(d.message, "line too long (82 > 79 characters)");
    let r = run("logs/other/errorformat-mypy.log");
    let d = find(&r, "/path/to/another/file.py", 234);
    assert_eq!((d.severity, d.message.as_str()), (Severity::Warning, "Warning message with $ characters!"));
    assert_eq!(r.profile, "general");
}

#[test]
fn webhook_without_log_routes_by_names() {
    let payload: serde_json::Value = serde_json::from_slice(&fixture("payloads/workflow_job/2.json")).unwrap();
    let job = &payload["workflow_job"];
    let failed: Vec<String> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["conclusion"] == "failure")
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(failed, ["Run yarn run format-check"]);
    let input = TriageInput {
        log: b"",
        workflow_name: job["workflow_name"].as_str(),
        job_name: job["name"].as_str(),
        failed_steps: &failed,
        ..Default::default()
    };
    let r = triage(&input, &RoutingConfig::default());
    assert_eq!(
        (r.failure_class.as_str(), r.profile.as_str(), r.action),
        ("frontend_format", "frontend", RouteAction::Agent)
    );
    assert_eq!(r.failing_step.as_deref(), Some("Run yarn run format-check"));
    assert_hash_shape(&r.error_hash);
    // The same job failing again hashes the same; another job does not.
    assert_eq!(triage(&input, &RoutingConfig::default()).error_hash, r.error_hash);
    let other = TriageInput { job_name: Some("tests"), ..input.clone() };
    assert_ne!(triage(&other, &RoutingConfig::default()).error_hash, r.error_hash);
}
