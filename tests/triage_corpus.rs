//! Triage on the corpus of real tool output (tests/fixtures/triage/corpus, see PROVENANCE.md there):
//! the behaviours the triage issue asks for, each pinned on logs the tools printed.

use std::path::PathBuf;

use ci_healer::triage::{Ecosystem, RouteAction, RoutingConfig, Tool, TriageInput, TriageResult, triage};

fn corpus(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triage/corpus").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn run(rel: &str) -> TriageResult {
    triage(&TriageInput { log: &corpus(rel), ..Default::default() }, &RoutingConfig::default())
}

fn labelled(rel_log: &str) -> Vec<String> {
    let log = String::from_utf8_lossy(&corpus(rel_log)).into_owned();
    let raw: Vec<&str> = log.split('\n').collect();
    let gt = String::from_utf8(corpus(&rel_log.replace(".log", ".groundtruth"))).unwrap();
    let mut out = Vec::new();
    for l in gt.lines() {
        let r = l.trim_start_matches("E ");
        let (a, b) = r.split_once('-').map_or((r, r), |(a, b)| (a, b));
        for n in a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap() {
            let t = ci_healer::triage::extract::display_text(raw[n - 1]);
            if !t.trim().is_empty() {
                out.push(t.trim().to_string());
            }
        }
    }
    out
}

#[test]
fn javascript_runners_are_frontend_tests() {
    for (log, tool) in [
        ("logs/frontend/mocha-assert-strict.log", Tool::Mocha),
        ("logs/frontend/jasmine-expectations-and-spies.log", Tool::Jasmine),
        ("logs/frontend/karma-jasmine-chrome-headless.log", Tool::Karma),
        ("logs/frontend/ava-assertion.log", Tool::Ava),
        ("logs/frontend/node-test-spec-reporter.log", Tool::NodeTest),
    ] {
        let r = run(log);
        assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("frontend_test", "frontend"), "{log}");
        assert!(r.diagnostics.iter().any(|d| d.tool == tool), "{log}: {:#?}", r.diagnostics);
    }
    // mocha: the failing test's title, its error and the test file's frame.
    let r = run("logs/frontend/mocha-assert-strict.log");
    let d = r.diagnostics.iter().find(|d| d.tool == Tool::Mocha).unwrap();
    assert!(d.message.starts_with("array "), "{}", d.message);
    assert!(d.file.as_deref().is_some_and(|f| f.ends_with("test/array.spec.js")), "{d:?}");
}

#[test]
fn tap_takes_its_class_from_the_ecosystem() {
    // tape under npm: JavaScript.
    let r = run("logs/frontend/tape-deep-equal.log");
    assert!(r.diagnostics.iter().any(|d| d.tool == Tool::Tap && d.message.contains("operator: deepEqual")));
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("frontend_test", "frontend"));
    assert_eq!(r.ecosystem, Some(Ecosystem::Javascript));
    // prove: the same protocol in a Perl job is not a frontend failure.
    let r = run("logs/other/prove-failure.log");
    assert!(r.diagnostics.iter().any(|d| d.tool == Tool::Tap));
    assert_eq!(r.profile, "general");
}

#[test]
fn linters_budgets_and_tasks() {
    for (log, class) in [
        ("logs/frontend/markdownlint-cli.log", "frontend_lint"),
        ("logs/frontend/markdownlint-cli2.log", "frontend_lint"),
        ("logs/frontend/size-limit-exceeded.log", "frontend_lint"),
        ("logs/frontend/editorconfig-checker.log", "frontend_lint"),
        ("logs/frontend/stylelint-16-string.log", "frontend_lint"),
        ("logs/frontend/gulp-task-error.log", "frontend_build"),
        ("logs/frontend/grunt-task-failed.log", "frontend_build"),
        ("logs/frontend/prettier-1-check.log", "frontend_format"),
        ("logs/frontend/prettier-1-list-different.log", "frontend_format"),
    ] {
        let r = run(log);
        assert_eq!((r.failure_class.as_str(), r.profile.as_str()), (class, "frontend"), "{log}: {:#?}", r.diagnostics);
    }
}

#[test]
fn a_network_failure_wins_over_the_error_it_causes() {
    // npm ci cannot reach the registry; `npm test` then finds no mocha.
    let r = run("logs/infrastructure/npm-ci-econnrefused-then-test.log");
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("network", "infrastructure"));
    // pip cannot reach its index; pytest then cannot import the package.
    let r = run("logs/infrastructure/pip-index-refused-then-pytest.log");
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("network", "infrastructure"));
    // apt has no such package; gcc then misses its header.
    let r = run("logs/infrastructure/apt-install-unable-to-locate-then-gcc.log");
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("environment", "infrastructure"));
    // A test that cannot reach its own database is still a test failure.
    let r = run("logs/frontend/mocha-before-hook-econnrefused.log");
    assert_eq!(r.failure_class, "frontend_test");
}

#[test]
fn network_failures_route_to_infrastructure_or_rerun_when_configured() {
    for log in [
        "logs/infrastructure/npm-install-registry-404.log",
        "logs/infrastructure/go-proxy-404.log",
        "logs/infrastructure/cargo-registry-500.log",
        "logs/infrastructure/apt-update-repo-404.log",
        "logs/infrastructure/curl-ssl-connect-error.log",
        "logs/infrastructure/maven-mirror-refused.log",
    ] {
        let r = run(log);
        assert_eq!(
            (r.failure_class.as_str(), r.profile.as_str(), r.action),
            ("network", "infrastructure", RouteAction::Agent),
            "{log}"
        );
    }
    let cfg: RoutingConfig = serde_yaml_ng::from_str("rerunClasses: [infra_flake, network]").unwrap();
    let r = triage(&TriageInput { log: &corpus("logs/infrastructure/go-proxy-404.log"), ..Default::default() }, &cfg);
    assert_eq!((r.profile.as_str(), r.action), ("infrastructure", RouteAction::Rerun));
}

#[test]
fn cr_cr_lf_logs_keep_their_failure_lines() {
    for log in ["logs/frontend/crlf-mocha.log", "logs/rust/crlf-cargo-test.log", "logs/other/crlf-pytest.log"] {
        assert!(corpus(log).windows(3).any(|w| w == b"\r\r\n"), "{log} has no \\r\\r\\n endings");
        let r = run(log);
        let lines = labelled(log);
        assert!(!lines.is_empty());
        let missing: Vec<_> = lines.iter().filter(|l| !r.excerpt.contains(l.as_str())).collect();
        assert!(missing.is_empty(), "{log}: {missing:?}\n{}", r.excerpt);
    }
}

#[test]
fn the_ecosystem_routes_what_no_parser_names() {
    // A Node.js crash outside any test runner: no runner diagnostic, but npm's banner and node's
    // frames say JavaScript.
    let r = run("logs/frontend/node-uncaught-exception.log");
    assert_eq!(r.ecosystem, Some(Ecosystem::Javascript));
    assert_eq!(r.profile, "frontend");
    // The failing step's command alone names the tool and the kind of step.
    let log = b"Process exited with an unexpected status\n";
    let steps = vec!["Run npm run e2e".to_string()];
    let r = triage(&TriageInput { log, failed_steps: &steps, ..Default::default() }, &RoutingConfig::default());
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("frontend_test", "frontend"));
    // Behind a step whose command says nothing, the repository's languages alone are the weakest
    // hint: guessed, but not enough to leave the general profile.
    let langs = vec![("TypeScript".to_string(), 50_000u64), ("CSS".to_string(), 4_000)];
    let steps = vec!["Run ./scripts/ci.sh".to_string()];
    let r = triage(
        &TriageInput { log, failed_steps: &steps, repository_languages: &langs, ..Default::default() },
        &RoutingConfig::default(),
    );
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("unknown", "general"), "{r:?}");
    assert_eq!(r.ecosystem, Some(Ecosystem::Javascript));
    assert!(r.ecosystem_confidence.unwrap() < RoutingConfig::default().ecosystem_confidence, "{r:?}");
    // With the run's changed files agreeing, the ecosystem is confident and routes.
    let files = vec!["web/src/App.tsx".to_string(), "web/package.json".to_string()];
    let r = triage(
        &TriageInput {
            log,
            failed_steps: &steps,
            repository_languages: &langs,
            changed_files: &files,
            ..Default::default()
        },
        &RoutingConfig::default(),
    );
    assert_eq!(r.profile, "frontend", "{r:?}");
    assert!(r.ecosystem_confidence.unwrap() >= RoutingConfig::default().ecosystem_confidence, "{r:?}");
    // Neither: no ecosystem, the general profile.
    let r = triage(&TriageInput { log, failed_steps: &steps, ..Default::default() }, &RoutingConfig::default());
    assert_eq!((r.failure_class.as_str(), r.profile.as_str(), r.ecosystem), ("unknown", "general", None), "{r:?}");
}

#[test]
fn corpus_routing_holds() {
    // The bench prints the figures; this pins that the corpus stays routed.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triage/corpus");
    let labels = std::fs::read_to_string(dir.join("labels.csv")).unwrap();
    let mut ok = 0;
    let mut all = 0;
    let mut wrong = Vec::new();
    for line in labels.lines().skip(1) {
        let mut cols = line.splitn(3, ',');
        let (path, cat) = (cols.next().unwrap(), cols.next().unwrap());
        let want = match cat {
            "rust" => "rust",
            "frontend" => "frontend",
            "infrastructure" => "infrastructure",
            _ => "general",
        };
        let r = run(path);
        all += 1;
        if r.profile == want {
            ok += 1;
        } else {
            wrong.push(format!("{path}: {} ({})", r.profile, r.failure_class));
        }
    }
    assert!(all >= 150, "{all} logs");
    assert!(ok * 100 >= all * 95, "{ok}/{all} routed right; wrong: {wrong:#?}");
}
