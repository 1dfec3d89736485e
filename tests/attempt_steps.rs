//! The attempt pod's steps, for real: the Job the controller builds is run as local processes
//! (checkout → agent → validate, the real `healer` binary), against real git repositories with real
//! rustfmt, clippy, prettier (npm) and a shell-script external agent. No cluster needed.

mod support;

use ci_healer::contract::Outcome;
use support::attempt::*;

const FMT_EXCERPT: &str = "Run cargo fmt --all -- --check\nDiff in /home/runner/work/demo/demo/src/lib.rs at line 1:\n-pub fn add(a: i32,b: i32)->i32{a+b}\n+pub fn add(a: i32, b: i32) -> i32 {\n##[error]Process completed with exit code 1.\n";

fn cargo_clippy_passes(ws: &std::path::Path) {
    let target = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("cargo")
        .args(["clippy", "--quiet", "--", "-D", "warnings"])
        .current_dir(ws)
        .env("CARGO_TARGET_DIR", target.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo clippy -- -D warnings on the patched tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn rustfmt_violation_is_healed_by_the_fixer() {
    let files = crate_files(
        "pub fn add(a: i32,b: i32)->i32{a+b}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(super::add(1, 2), 3); }\n}\n",
    );
    let repo = repo(&as_refs(&files));
    let setup = AttemptSetup::new("rust", "rust_fmt", FMT_EXCERPT);
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    for s in ["prepare", "checkout", "agent", "validate"] {
        assert_eq!(run.step(s).exit_code, 0, "{s}\n{}", run.all_logs());
    }
    let v = run.verdict();
    assert_eq!((v.outcome, v.reason.as_str()), (Outcome::Passed, "ValidationPassed"), "{v:?}\n{}", run.all_logs());
    assert!(v.summary.contains("cargo fmt --all -- --check"), "{}", v.summary);
    let patch = ci_healer::contract::patch::extract(&run.logs["validate"])
        .map(str::to_string)
        .expect("patch in the validate log");
    assert!(patch.contains("+pub fn add(a: i32, b: i32) -> i32 {"), "{patch}");
    assert_eq!(
        v.patch_sha256.as_deref(),
        Some(
            ci_healer::controller::patch::patch_from_log(&run.logs["validate"], v)
                .map(|p| {
                    use sha2::Digest;
                    hex::encode(sha2::Sha256::digest(p.as_bytes()))
                })
                .unwrap()
                .as_str()
        )
    );
    assert_eq!(v.diffstat.as_ref().unwrap().files, 1);
    let diag: ci_healer::contract::AgentReport =
        serde_json::from_str(run.step("agent").message.as_deref().unwrap()).unwrap();
    assert!(diag.diagnosis.contains("cargo-fmt"), "{diag:?}");
    assert!(v.tokens.is_none(), "fixers use no tokens");
    // The build output stayed out of the repository and out of the patch.
    assert!(!patch.contains("target/"));
    cargo_clippy_passes(&run.workspace());
}

#[tokio::test]
async fn clippy_lint_is_healed_by_clippy_fix() {
    let files = crate_files(
        "pub fn next(x: i32) -> i32 {\n    return x + 1;\n}\n\npub fn empty(v: &[i32]) -> bool {\n    v.len() == 0\n}\n",
    );
    let repo = repo(&as_refs(&files));
    let excerpt = "error: unneeded `return` statement\n --> src/lib.rs:2:5\n  |\n2 |     return x + 1;\n  |\n  = note: `-D clippy::needless-return` implied by `-D warnings`\nerror: length comparison to zero\n --> src/lib.rs:6:5\n";
    let setup = AttemptSetup::new("rust", "rust_clippy", excerpt);
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let v = run.verdict();
    assert_eq!((v.outcome, v.reason.as_str()), (Outcome::Passed, "ValidationPassed"), "{v:?}\n{}", run.all_logs());
    assert!(v.summary.contains("cargo clippy --all-targets -- -D warnings"), "{}", v.summary);
    let patch = ci_healer::contract::patch::extract(&run.logs["validate"]).map(str::to_string).unwrap();
    assert!(patch.contains("-    return x + 1;") && patch.contains("+    x + 1"), "{patch}");
    assert!(patch.contains("v.is_empty()"), "{patch}");
    let d = v.durations.as_ref().unwrap();
    assert!(d.checkout_seconds.is_some() && d.agent_seconds.is_some() && d.validate_seconds.is_some(), "{d:?}");
    cargo_clippy_passes(&run.workspace());
}

#[tokio::test]
async fn prettier_from_npm_heals_a_frontend_format_failure() {
    let files = vec![
        ("package.json", "{\n  \"name\": \"web\",\n  \"private\": true\n}\n"),
        ("src/app.ts", "export const   config = {a:1,\n  b:  'two'}\n"),
        ("src/ok.ts", "export const ok = 1;\n"),
    ];
    let repo = repo(&files);
    let excerpt = "> prettier --check .\nChecking formatting...\n[warn] src/app.ts\n[warn] Code style issues found in the above file. Run Prettier with --write to fix.\n";
    let setup = AttemptSetup::new("frontend", "frontend_format", excerpt);
    let run = run_local(&job(&repo, &setup), &setup, vec![("PATH".into(), tools_path())]).await;
    let v = run.verdict();
    assert_eq!((v.outcome, v.reason.as_str()), (Outcome::Passed, "ValidationPassed"), "{v:?}\n{}", run.all_logs());
    assert!(v.summary.contains("prettier --check ."), "{}", v.summary);
    let patch = ci_healer::contract::patch::extract(&run.logs["validate"]).map(str::to_string).unwrap();
    assert!(patch.contains("+export const config = { a: 1, b: \"two\" };"), "{patch}");
    assert!(!patch.contains("package.json") && !patch.contains("ok.ts"), "{patch}");
}

#[tokio::test]
async fn external_agent_script_edits_the_workspace() {
    let files = crate_files(
        "pub fn add_one(x: i32) -> i32 {\n    x + 2\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds_one() {\n        assert_eq!(super::add_one(1), 2);\n    }\n}\n",
    );
    let repo = repo(&as_refs(&files));
    let scripts = tempfile::tempdir().unwrap();
    let script = scripts.path().join("fix.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nset -eu\ntest -s \"$HEALER_PROMPT_FILE\"\ngrep -q 'assertion' \"$HEALER_PROMPT_FILE\"\ngrep -q 'Edit the files in this repository directly' \"$HEALER_PROMPT_FILE\"\n\
         test \"$(pwd)\" = \"$HEALER_WORKSPACE\"\necho \"validation: $HEALER_VALIDATION_COMMANDS\"\nsed -i 's/x + 2/x + 1/' src/lib.rs\n\
         echo 'add_one added two instead of one' > \"$HEALER_DIAGNOSIS_FILE\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut setup = AttemptSetup::new(
        "general",
        "rust_test",
        "thread 'tests::adds_one' panicked at src/lib.rs:9:9:\nassertion `left == right` failed\n  left: 3\n right: 2\n",
    );
    setup.agent_command = Some(exec_command(script.to_str().unwrap()));
    setup.settings.validation_commands = vec!["cargo test --quiet".into()];
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    assert!(run.logs["agent"].contains("validation: cargo test --quiet"), "{}", run.all_logs());
    let diag: ci_healer::contract::AgentReport =
        serde_json::from_str(run.step("agent").message.as_deref().unwrap()).unwrap();
    assert_eq!(diag.diagnosis, "add_one added two instead of one");
    let v = run.verdict();
    assert_eq!((v.outcome, v.reason.as_str()), (Outcome::Passed, "ValidationPassed"), "{v:?}\n{}", run.all_logs());
}

#[tokio::test]
async fn external_agent_failure_and_unchanged_workspace_have_precise_reasons() {
    let files = crate_files("pub fn f() {}\n");
    let repo = repo(&as_refs(&files));
    let scripts = tempfile::tempdir().unwrap();
    let failing = scripts.path().join("fail.sh");
    std::fs::write(&failing, "#!/bin/sh\necho 'model quota exceeded' >&2\nexit 3\n").unwrap();
    let idle = scripts.path().join("idle.sh");
    std::fs::write(&idle, "#!/bin/sh\nexit 0\n").unwrap();
    for s in [&failing, &idle] {
        std::fs::set_permissions(s, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let mut setup = AttemptSetup::new("general", "rust_test", "boom");
    setup.settings.validation_commands = vec!["true".into()];
    setup.agent_command = Some(exec_command(failing.to_str().unwrap()));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let (reason, msg) = run.failure("agent");
    assert_eq!(reason, "ExternalAgentFailed");
    assert!(msg.contains("exited with 3") && msg.contains("model quota exceeded"), "{msg}");
    assert!(run.outcomes.iter().all(|o| o.name != "validate"), "validate does not run after a failed agent");

    setup.agent_command = Some(exec_command(idle.to_str().unwrap()));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    assert_eq!((run.verdict().outcome, run.verdict().reason.as_str()), (Outcome::Refused, "NoChange"));
}

#[tokio::test]
async fn checkout_reports_missing_commits_and_repositories() {
    let files = crate_files("pub fn f() {}\n");
    let mut r = repo(&as_refs(&files));
    let setup = AttemptSetup::new("rust", "rust_fmt", "x");
    r.sha = "0123456789abcdef0123456789abcdef01234567".into();
    let run = run_local(&job(&r, &setup), &setup, vec![]).await;
    let (reason, msg) = run.failure("checkout");
    assert_eq!(reason, "CommitNotFound", "{msg}");
    assert!(run.outcomes.iter().all(|o| o.name != "agent"));

    r.base_url = format!("{}/elsewhere", r.base_url);
    let run = run_local(&job(&r, &setup), &setup, vec![]).await;
    assert_eq!(run.failure("checkout").0, "RepositoryNotFound", "{}", run.all_logs());
}

#[tokio::test]
async fn git_token_is_used_through_the_credential_helper_and_never_logged() {
    let files = crate_files("pub fn add(a: i32,b: i32)->i32{a+b}\n");
    let repo = repo(&as_refs(&files));
    let mut setup = AttemptSetup::new("rust", "rust_fmt", FMT_EXCERPT);
    let token = "ghp_TOKENVALUE0123456789abcdefghijklmnop";
    setup.git_token = Some(token.into());
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    assert_eq!(run.verdict().outcome, Outcome::Passed, "{}", run.all_logs());
    assert!(!run.all_logs().contains(token));
    let cfg = std::fs::read_to_string(run.workspace().join(".git/config")).unwrap();
    assert!(!cfg.contains(token) && !cfg.contains("credential"), "{cfg}");
}

#[tokio::test]
async fn a_change_to_protected_paths_passes_held_for_approval_and_size_caps_refuse_the_change() {
    let files = crate_files("pub fn f() {}\n");
    let repo = repo(&as_refs(&files));
    let scripts = tempfile::tempdir().unwrap();
    let s = scripts.path().join("edit.sh");
    std::fs::write(&s, "#!/bin/sh\nmkdir -p .github/workflows\necho 'on: push' > .github/workflows/ci.yml\necho '// x' >> src/lib.rs\n").unwrap();
    std::fs::set_permissions(&s, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut setup = AttemptSetup::new("general", "unknown", "x");
    setup.settings.validation_commands = vec!["true".into()];
    setup.agent_command = Some(exec_command(s.to_str().unwrap()));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    // Judged like any change, and the verdict names the protected path: the controller holds the
    // fix for a person's approval instead of delivering it.
    assert_eq!(
        (run.verdict().outcome, run.verdict().reason.as_str()),
        (Outcome::Passed, "ValidationPassed"),
        "{}",
        run.all_logs()
    );
    assert_eq!(run.verdict().protected_paths, [".github/workflows/ci.yml"]);
    assert!(run.verdict().summary.contains(".github/workflows/ci.yml"));

    setup.settings.max_changed_files = 1;
    setup.settings.default_protected_paths = false;
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    assert_eq!(run.verdict().reason, "PatchTooLarge");

    // The run's spec.policy.protectedPaths reach the attempt's settings.
    let cfg = ci_healer::config::ControllerConfig::default();
    let a = ci_healer::resources::attempt::build_attempt(&support::attempt::run(&repo, &["src/**"]), 1, "rust", &cfg)
        .unwrap();
    assert_eq!(a.spec.settings.unwrap().protected_paths, ["src/**"]);
}
