//! Triage on generated inputs: bad input (binary garbage, invalid UTF-8, huge logs, huge lines, ANSI
//! storms), hash stability, routing config, and the tool formats the real corpus lacks (written here
//! after each tool's documented output format).

use std::time::{Duration, Instant};

use ci_healer::triage::{Limits, RouteAction, RoutingConfig, Severity, Tool, TriageInput, TriageResult, triage};

fn run(log: &[u8]) -> TriageResult {
    triage(&TriageInput { log, ..Default::default() }, &RoutingConfig::default())
}

fn assert_sane(r: &TriageResult) {
    assert!(
        r.error_hash.len() == 16 && r.error_hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{}",
        r.error_hash
    );
    assert!(r.excerpt.len() <= Limits::default().max_excerpt_bytes, "excerpt of {} bytes", r.excerpt.len());
    assert!(!r.excerpt.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "control characters in the excerpt");
    assert!((0.0..=1.0).contains(&r.confidence));
}

/// A small deterministic PRNG (xorshift) for garbage.
fn garbage(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn binary_garbage_is_reported_not_fatal() {
    let r = run(&garbage(1 << 20, 0x9E37_79B9_7F4A_7C15));
    assert_sane(&r);
    assert!(r.unreadable.iter().any(|u| u.starts_with("invalid UTF-8")), "{:?}", r.unreadable);
    assert!(r.unreadable.iter().any(|u| u.starts_with("binary content")), "{:?}", r.unreadable);
}

#[test]
fn invalid_utf8_inside_a_real_error_still_parses() {
    let mut log = b"src/main.rs:4:18: error[E0308]: mismatched types \xff\xfe here\n".to_vec();
    log.extend_from_slice(b"error: could not compile `x` due to 1 previous error\n");
    let r = run(&log);
    assert_sane(&r);
    let d = &r.diagnostics[0];
    assert_eq!((d.file.as_deref(), d.line, d.code.as_deref()), (Some("src/main.rs"), Some(4), Some("E0308")));
    assert!(d.message.contains('\u{FFFD}'));
    assert_eq!(r.unreadable, ["invalid UTF-8: 2 sequences replaced with U+FFFD"]);
    assert_eq!(r.profile, "rust");
}

#[test]
fn a_100_mb_log_is_scanned_from_its_tail_in_bounded_time() {
    let line = b"2024-01-01T10:00:00.1234567Z compiling something unremarkable here, nothing to see\n";
    let mut log = Vec::with_capacity(100 << 20);
    while log.len() < (100 << 20) - 200 {
        log.extend_from_slice(line);
    }
    log.extend_from_slice(b"2024-01-01T10:00:01.0000000Z error[E0425]: cannot find value `x` in this scope\n");
    log.extend_from_slice(b"2024-01-01T10:00:01.0000000Z   --> src/lib.rs:7:13\n");
    let t = Instant::now();
    // Debug builds are slow: scan a smaller tail here; the cap is what is under test.
    let limits = Limits { max_scan_bytes: 4 << 20, ..Limits::default() };
    let r = ci_healer::triage::triage_with_limits(
        &TriageInput { log: &log, ..Default::default() },
        &RoutingConfig::default(),
        &limits,
    );
    assert!(t.elapsed() < Duration::from_secs(20), "took {:?}", t.elapsed());
    assert_sane(&r);
    let note = r.unreadable.iter().find(|u| u.starts_with("log truncated")).expect("truncation reported");
    assert!(note.contains(&format!("of {} bytes", log.len())), "{note}");
    let d = r.diagnostics.iter().find(|d| d.code.as_deref() == Some("E0425")).expect("tail error found");
    assert_eq!((d.file.as_deref(), d.line), (Some("src/lib.rs"), Some(7)));
    // Line numbers still refer to the whole log.
    let total_lines = log.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(d.log_line, total_lines - 1);
}

#[test]
fn a_single_10_mb_line_is_cut() {
    let mut log = vec![b'a'; 10 << 20];
    log.extend_from_slice(b"\nerror: linking with `cc` failed: exit status: 1\n");
    let r = run(&log);
    assert_sane(&r);
    assert!(r.unreadable.iter().any(|u| u == "1 lines longer than 65536 bytes were cut"), "{:?}", r.unreadable);
    assert!(r.excerpt.contains("error: linking with `cc` failed"));
}

#[test]
fn ansi_storms_are_stripped() {
    let mut log = Vec::new();
    for i in 0..20_000 {
        log.extend_from_slice(
            format!("\x1b[1;31m\x1b[0m\x1b]8;;http://x\x07\x1b[2K\r\x1b[{i}Gprogress {i}%\x1b[0m\r").as_bytes(),
        );
    }
    log.extend_from_slice(
        b"\n\x1b[31merror\x1b[0m: \x1b[1mcould not compile `app`\x1b[0m\n\x1b[31mFAIL\x1b[0m src/app.test.ts\n",
    );
    let r = run(&log);
    assert_sane(&r);
    assert!(r.excerpt.contains("progress 19999%"), "{}", r.excerpt);
    assert!(!r.excerpt.contains('\x1b'));
    assert!(r.diagnostics.iter().any(|d| d.tool == Tool::Jest && d.file.as_deref() == Some("src/app.test.ts")));
}

#[test]
fn empty_and_whitespace_logs() {
    for log in [&b""[..], b"\n\n\n", b"\r\n \t\r\n"] {
        let r = run(log);
        assert_sane(&r);
        assert_eq!((r.failure_class.as_str(), r.confidence, r.profile.as_str()), ("unknown", 0.0, "general"));
    }
}

#[test]
fn excerpt_stays_within_budget_with_many_errors() {
    let mut log = String::new();
    for i in 0..50_000 {
        log.push_str(&format!("src/file{i}.ts({i},5): error TS2304: Cannot find name 'x{i}'.\n"));
    }
    let r = run(log.as_bytes());
    assert_sane(&r);
    assert!(r.excerpt.len() > 60_000, "budget used: {}", r.excerpt.len());
    assert_eq!(r.diagnostics.len(), ci_healer::triage::MAX_RESULT_DIAGNOSTICS);
    assert!(r.unreadable.iter().any(|u| u.starts_with("diagnostics capped at 2000")));
    assert_eq!(r.profile, "frontend");
}

fn gh(lines: &[&str], stamp: &str) -> String {
    lines.iter().map(|l| format!("{stamp} {l}\n")).collect()
}

#[test]
fn hash_is_stable_across_reruns_and_different_for_different_failures() {
    let run1 = [
        "##[group]Run cargo test",
        "cargo test",
        "##[endgroup]",
        "   Compiling app v0.1.0 (/home/runner/work/app/app)",
        "    Finished test [unoptimized] target(s) in 41.27s",
        "     Running unittests src/lib.rs (target/debug/deps/app-3f2a9c1b7d4e5f60)",
        "thread 'tests::adds' panicked at src/lib.rs:10:5:",
        "assertion `left == right` failed",
        "test tests::adds ... FAILED",
        "test result: FAILED. 3 passed; 1 failed; 0 ignored; finished in 0.02s",
        "##[error]Process completed with exit code 101.",
    ];
    let a = gh(&run1, "2024-01-01T10:00:00.1234567Z");
    // A rerun on another commit: other timestamps, durations, hashes, and the assertion moved 2 lines.
    let mut run2 = run1.to_vec();
    run2[4] = "    Finished test [unoptimized] target(s) in 12.03s";
    run2[5] = "     Running unittests src/lib.rs (target/debug/deps/app-9e8d7c6b5a4f3e21)";
    run2[6] = "thread 'tests::adds' panicked at src/lib.rs:12:5:";
    run2[9] = "test result: FAILED. 4 passed; 1 failed; 0 ignored; finished in 0.05s";
    let b = format!("2024-02-02T11:11:11.7654321Z setting up\n{}", gh(&run2, "2024-02-02T11:11:12.0000000Z"));
    let ra = run(a.as_bytes());
    let rb = run(b.as_bytes());
    assert_eq!(ra.error_hash, rb.error_hash);
    assert_eq!((ra.failure_class.as_str(), ra.failing_step.as_deref()), ("rust_test", Some("Run cargo test")));
    let d = ra.diagnostics.iter().find(|d| d.tool == Tool::CargoTest && d.file.is_some()).expect("panic parsed");
    assert_eq!((d.file.as_deref(), d.line, d.column), (Some("src/lib.rs"), Some(10), Some(5)));
    assert_eq!(d.message, "test tests::adds panicked: assertion `left == right` failed");
    // A different failing test hashes differently.
    let mut run3 = run1.to_vec();
    run3[6] = "thread 'tests::subtracts' panicked at src/lib.rs:20:5:";
    run3[8] = "test tests::subtracts ... FAILED";
    let rc = run(gh(&run3, "2024-01-01T10:00:00.1234567Z").as_bytes());
    assert_ne!(ra.error_hash, rc.error_hash);
}

#[test]
fn hash_of_unparsed_failures_ignores_volatile_parts() {
    let a = "Step 3/4 : deploy\nconnecting to 10.0.0.12:443 took 120ms\nfatal: the remote end hung up unexpectedly (request 5f0c6d8e-1d2b-4c7e-9f1a-2b3c4d5e6f70)\n";
    let b = "Step 3/4 : deploy\nconnecting to 10.0.0.13:443 took 98ms\nfatal: the remote end hung up unexpectedly (request 0a1b2c3d-1d2b-4c7e-9f1a-2b3c4d5e6f71)\n";
    let c = "Step 3/4 : deploy\nfatal: repository 'https://example.invalid/x.git/' not found\n";
    assert_eq!(run(a.as_bytes()).error_hash, run(b.as_bytes()).error_hash);
    assert_ne!(run(a.as_bytes()).error_hash, run(c.as_bytes()).error_hash);
}

#[test]
fn formats_without_real_fixtures() {
    // rustfmt --check
    let r = run(b"Diff in /home/runner/work/app/app/src/lib.rs:12:\n-fn f( ) {}\n+fn f() {}\n");
    assert_eq!(
        (r.diagnostics[0].tool, r.diagnostics[0].line, r.failure_class.as_str()),
        (Tool::Rustfmt, Some(12), "rust_fmt")
    );
    // prettier --check (3.x)
    let r = run(b"Checking formatting...\n[warn] src/app.tsx\n[warn] src/util.ts\n[warn] Code style issues found in 2 files. Run Prettier with --write to fix.\n");
    assert_eq!(r.diagnostics.iter().filter(|d| d.tool == Tool::Prettier).count(), 2);
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("frontend_format", "frontend"));
    // jest
    let r = run(b"FAIL src/sum.test.js\n  \xe2\x97\x8f sum \xe2\x80\xba adds 1 + 2 to equal 3\n\n    expect(received).toBe(expected)\nTests:       1 failed, 3 passed, 4 total\n");
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.tool == Tool::Jest && d.message == "test failed: sum \u{203a} adds 1 + 2 to equal 3")
    );
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("frontend_test", "frontend"));
    // vitest
    let r = run(
        " FAIL  src/math.test.ts > math > multiplies\nAssertionError: expected 6 to be 7\n Test Files  1 failed (1)\n"
            .as_bytes(),
    );
    let d = &r.diagnostics[0];
    assert_eq!(
        (d.tool, d.file.as_deref(), d.message.as_str()),
        (Tool::Vitest, Some("src/math.test.ts"), "test failed: math > multiplies")
    );
    assert_eq!(r.failure_class, "frontend_test");
    // npm 10 dependency resolution
    let r = run(b"npm error code ERESOLVE\nnpm error ERESOLVE unable to resolve dependency tree\nnpm error While resolving: app@1.0.0\n");
    assert_eq!(
        (r.diagnostics[0].code.as_deref(), r.diagnostics[0].message.as_str()),
        (Some("ERESOLVE"), "ERESOLVE unable to resolve dependency tree")
    );
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("dependency", "frontend"));
    // pnpm frozen lockfile
    let r = run(b" ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with \"frozen-lockfile\" because pnpm-lock.yaml is not up to date with package.json\n");
    assert_eq!(
        (r.diagnostics[0].tool, r.diagnostics[0].code.as_deref()),
        (Tool::Pnpm, Some("ERR_PNPM_OUTDATED_LOCKFILE"))
    );
    assert_eq!(r.profile, "frontend");
    // yarn berry
    let r =
        run("➤ YN0028: The lockfile would have been modified by this install, which is explicitly forbidden.\n"
            .as_bytes());
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("dependency", "frontend"));
    // pytest
    let r = run(b"FAILED tests/test_api.py::test_login - AssertionError: assert 401 == 200\n==== 1 failed, 12 passed in 3.21s ====\n");
    let d = &r.diagnostics[0];
    assert_eq!(
        (d.tool, d.file.as_deref(), d.code.as_deref()),
        (Tool::Pytest, Some("tests/test_api.py"), Some("test_login"))
    );
    assert_eq!(r.profile, "general");
    // docker build (BuildKit)
    let r = run(b"#12 [build 4/6] RUN npm ci\n#12 ERROR: process \"/bin/sh -c npm ci\" did not complete successfully: exit code: 1\nERROR: failed to solve: process \"/bin/sh -c npm ci\" did not complete successfully: exit code: 1\n");
    assert!(r.diagnostics.iter().all(|d| d.tool == Tool::Docker));
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("docker_build", "infrastructure"));
    // kubectl
    let r = run(b"The Deployment \"web\" is invalid: spec.template.spec.containers[0].image: Required value\n");
    assert_eq!((r.diagnostics[0].tool, r.failure_class.as_str()), (Tool::Kubernetes, "k8s_manifest"));
    // GitHub permissions
    let r = run(b"##[error]Resource not accessible by integration\nremote: Permission to octo/app.git denied to github-actions[bot].\nfatal: unable to access 'https://github.com/octo/app/': The requested URL returned error: 403\n");
    assert!(r.diagnostics.iter().all(|d| d.tool == Tool::GithubActions && d.code.as_deref() == Some("permissions")));
    assert_eq!((r.failure_class.as_str(), r.profile.as_str()), ("permissions", "general"));
    // GitHub workflow file errors
    let r = run(b"Invalid workflow file: .github/workflows/ci.yml#L12\nThe workflow is not valid. .github/workflows/ci.yml (Line: 12, Col: 5): Unexpected value 'foo'\n");
    let d = r.diagnostics.iter().find(|d| d.line == Some(12) && d.column == Some(5)).expect("workflow error");
    assert_eq!((d.file.as_deref(), d.message.as_str()), (Some(".github/workflows/ci.yml"), "Unexpected value 'foo'"));
    assert_eq!(r.failure_class, "workflow_syntax");
}

#[test]
fn infrastructure_flakes_are_rerun() {
    let r = run(b"npm error code ECONNRESET\nnpm error network aborted\nnpm error network This is a problem related to network connectivity.\n");
    assert_eq!((r.failure_class.as_str(), r.action), ("infra_flake", RouteAction::Rerun));
    let r = run(
        b"##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped.\n",
    );
    assert_eq!((r.failure_class.as_str(), r.action), ("infra_flake", RouteAction::Rerun));
    let r = run(b"write /var/lib/docker/tmp/x: no space left on device\n");
    assert_eq!(r.action, RouteAction::Rerun);
}

#[test]
fn configured_rules_come_first() {
    let cfg: RoutingConfig = serde_yaml_ng::from_str(
        "fallbackProfile: general\nrerunClasses: []\nrules:\n  - name: e2e-flaky\n    job: e2e\n    action: rerun\n  - name: web\n    changedFiles: ['web/**']\n    profile: frontend\n",
    )
    .unwrap();
    let files = vec!["web/src/a.ts".to_string()];
    let input = TriageInput { log: b"error: something broke\n", changed_files: &files, ..Default::default() };
    let r = triage(&input, &cfg);
    assert_eq!((r.profile.as_str(), r.matched_rule.as_deref()), ("frontend", Some("web")));
    let input = TriageInput { log: b"x", job_name: Some("E2E (chromium)"), ..Default::default() };
    let r = triage(&input, &cfg);
    assert_eq!((r.action, r.matched_rule.as_deref()), (RouteAction::Rerun, Some("e2e-flaky")));
    // With rules configured and flakes not in rerunClasses, a flake goes to the fallback agent.
    let r = triage(&TriageInput { log: b"socket hang up\n", ..Default::default() }, &cfg);
    assert_eq!(
        (r.failure_class.as_str(), r.action, r.profile.as_str()),
        ("infra_flake", RouteAction::Agent, "general")
    );
}

#[test]
fn result_serialises_camel_case_with_diagnostics() {
    let r = run(b"src/main.rs:3:5: warning: unused import: `std::process`\n");
    let v: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(v["failureClass"], "rust_build");
    assert_eq!(v["diagnostics"][0]["tool"], "rustc");
    assert_eq!(v["diagnostics"][0]["severity"], "warning");
    assert_eq!(v["diagnostics"][0]["logLine"], 1);
    assert_eq!(v["action"], "agent");
    assert_eq!(r.diagnostics[0].severity, Severity::Warning);
}
