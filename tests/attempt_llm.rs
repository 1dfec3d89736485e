//! The built-in LLM agent through the real steps, against loopback servers speaking the Anthropic
//! Messages API and OpenAI chat completions: scripted answers, retries, failures, masking.

mod support;

use std::time::Duration;

use ci_healer::contract::Outcome;
use support::attempt::*;

fn llm_setup(provider: &str, url: &str, key: Option<&str>) -> AttemptSetup {
    let mut s = AttemptSetup::new("rust", "rust_test", OFF_BY_ONE_EXCERPT);
    s.settings.fixers = Some(vec![]);
    s.settings.validation_commands = vec!["cargo test --quiet".into()];
    s.settings.llm = Some(llm_settings(provider, url));
    s.llm_key = key.map(String::from);
    s
}

#[tokio::test]
async fn anthropic_answer_that_deletes_a_test_is_refused() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let llm = ScriptedLlm::start(vec![anthropic_text(DELETE_TEST_ANSWER, 1200, 150)]).await;
    let setup = llm_setup("anthropic", &llm.url, Some("anthropic-key-123456"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let v = run.verdict();
    assert_eq!((v.outcome, v.reason.as_str()), (Outcome::Refused, "TestWeakened"), "{v:?}\n{}", run.all_logs());
    assert!(v.summary.contains("removes 1 test definition"), "{}", v.summary);
    assert_eq!(v.tokens, Some(ci_healer::contract::TokenUsage { input: 1200, output: 150, ..Default::default() }));
    let diag: ci_healer::contract::AgentReport =
        serde_json::from_str(run.step("agent").message.as_deref().unwrap()).unwrap();
    assert_eq!(diag.diagnosis, "the test is wrong.");

    let reqs = llm.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.headers["x-api-key"], "anthropic-key-123456");
    assert_eq!(r.headers["anthropic-version"], "2023-06-01");
    assert_eq!(r.body["model"], "test-model");
    assert_eq!(r.body["max_tokens"], 1024);
    assert!(content_text(&r.body["system"]).contains("never delete, skip or weaken tests"));
    assert!(r.body.get("temperature").is_none(), "the Messages API has no temperature: {}", r.body);
    let prompt = r.message_text(0);
    assert_eq!(r.body["messages"][0]["role"], "user");
    for needle in [
        "assertion `left == right` failed",
        "## File `src/lib.rs`",
        "x + 2",
        "`cargo test --quiet`",
        "```diff",
        "Never delete, skip",
    ] {
        assert!(prompt.contains(needle), "prompt lacks {needle:?}:\n{prompt}");
    }
}

#[tokio::test]
async fn openai_compatible_diff_fixes_a_compile_error() {
    let lib = "pub fn answer() -> i32 {\n    let n: i32 = \"42\";\n    n\n}\n";
    let repo = repo(&as_refs(&crate_files(lib)));
    let excerpt = "error[E0308]: mismatched types\n --> src/lib.rs:2:18\n  |\n2 |     let n: i32 = \"42\";\n  |            ---   ^^^^ expected `i32`, found `&str`\n";
    let answer = "Diagnosis: a string literal is assigned to an i32.\n\n```diff\ndiff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,4 +1,4 @@\n pub fn answer() -> i32 {\n-    let n: i32 = \"42\";\n+    let n: i32 = 42;\n     n\n }\n```\n";
    let llm = ScriptedLlm::start(vec![openai_text(answer, 900, 80)]).await;
    let mut setup = llm_setup("openai-compatible", &format!("{}/v1", llm.url), Some("openai-key-abcdef"));
    setup.failure_class = "rust_compile".into();
    setup.excerpt = excerpt.into();
    setup.settings.validation_commands = vec![];
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let v = run.verdict();
    assert_eq!((v.outcome, v.reason.as_str()), (Outcome::Passed, "ValidationPassed"), "{v:?}\n{}", run.all_logs());
    assert!(v.summary.contains("cargo build --all-targets"), "class default validation: {}", v.summary);
    assert_eq!(v.tokens, Some(ci_healer::contract::TokenUsage { input: 900, output: 80, ..Default::default() }));
    let patch = ci_healer::contract::patch::extract(&run.logs["validate"]).map(str::to_string).unwrap();
    assert!(patch.contains("+    let n: i32 = 42;"), "{patch}");

    let r = &llm.requests()[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.headers["authorization"], "Bearer openai-key-abcdef");
    assert_eq!(r.body["model"], "test-model");
    assert_eq!(r.body["max_tokens"], 1024);
    assert!((r.body["temperature"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    assert_eq!(r.body["messages"][0]["role"], "system");
    assert!(r.message_text(1).contains("expected `i32`, found `&str`"));
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured_then_succeeds() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let llm =
        ScriptedLlm::start(vec![error_reply(429, &[("retry-after", "1")]), anthropic_text(FIX_ANSWER, 100, 20)]).await;
    let setup = llm_setup("anthropic", &llm.url, Some("anthropic-key-123456"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    assert_eq!(run.verdict().outcome, Outcome::Passed, "{}", run.all_logs());
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(950), "Retry-After: 1 was not honoured: {gap:?}");
}

#[tokio::test]
async fn server_errors_exhaust_the_retries_with_a_precise_reason() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let llm = ScriptedLlm::start(vec![
        error_reply(503, &[]),
        error_reply(502, &[]),
        error_reply(529, &[]),
        anthropic_text(FIX_ANSWER, 1, 1),
    ])
    .await;
    let setup = llm_setup("anthropic", &llm.url, Some("anthropic-key-123456"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let (reason, msg) = run.failure("agent");
    assert_eq!(reason, "ProviderUnavailable", "{msg}");
    assert!(msg.contains("HTTP 529") && msg.contains("3 attempt(s)") && msg.contains("scripted 529"), "{msg}");
    assert_eq!(llm.requests().len(), 3, "maxRetries 2 = 3 attempts");
    assert!(run.outcomes.iter().all(|o| o.name != "validate"));
}

#[tokio::test]
async fn an_answer_without_a_change_and_a_diff_that_does_not_apply_are_reported() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let prose = "Diagnosis: I am not sure what is wrong here; please check the test.";
    let llm = ScriptedLlm::start(vec![anthropic_text(prose, 10, 5), anthropic_text(prose, 10, 5)]).await;
    let mut setup = llm_setup("anthropic", &llm.url, Some("anthropic-key-123456"));
    setup.settings.llm.as_mut().unwrap().max_turns = 2;
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    assert_eq!(run.failure("agent").0, "NoUsableChange", "{}", run.all_logs());
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    let second = reqs[1].body["messages"].as_array().unwrap();
    assert_eq!(second.len(), 3, "prompt, answer, feedback");
    assert!(content_text(&second[2]["content"]).contains("no change in the required format"));

    let bad = "Diagnosis: off by one.\n\n```diff\ndiff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n pub fn add_two(x: i64) -> i64 {\n-    x + 3\n+    x + 1\n }\n```\n";
    let llm = ScriptedLlm::start(vec![anthropic_text(bad, 10, 5)]).await;
    let setup = llm_setup("anthropic", &llm.url, Some("anthropic-key-123456"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let (reason, msg) = run.failure("agent");
    assert_eq!(reason, "PatchDoesNotApply", "{msg}");
    assert!(msg.contains("patch does not apply") || msg.contains("patch failed"), "{msg}");
}

#[tokio::test]
async fn missing_key_file_and_unreachable_provider_have_precise_reasons() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let setup = llm_setup("anthropic", "http://127.0.0.1:9", None);
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let (reason, msg) = run.failure("agent");
    assert_eq!(reason, "ApiKeyMissing", "{msg}");

    // A port nobody listens on.
    let port = { std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port() };
    let setup = llm_setup("openai-compatible", &format!("http://127.0.0.1:{port}/v1"), Some("openai-key-abcdef"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let (reason, msg) = run.failure("agent");
    assert_eq!(reason, "ProviderUnreachable", "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("3 attempt(s)"), "{msg}");
}

#[tokio::test]
async fn secrets_never_reach_the_prompt_logs_or_verdict() {
    let key = "zz-custom-llm-key-7f3a9c2e";
    let gh = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let llm = ScriptedLlm::start(vec![anthropic_text(
        &format!("Diagnosis: the key {key} is irrelevant.\n\n{}", &FIX_ANSWER[FIX_ANSWER.find("```").unwrap()..]),
        10,
        5,
    )])
    .await;
    let mut setup = llm_setup("anthropic", &llm.url, Some(key));
    setup.excerpt = format!("{OFF_BY_ONE_EXCERPT}\nenv: LLM_KEY={key} GITHUB_TOKEN={gh}\nAuthorization: Bearer {gh}\n");
    setup.git_token = Some(gh.into());
    let run = run_local(&job(&repo, &setup), &setup, vec![("RUST_LOG".into(), "debug".into())]).await;
    assert_eq!(run.verdict().outcome, Outcome::Passed, "{}", run.all_logs());
    let body = serde_json::to_string(&llm.requests()[0].body).unwrap();
    assert!(body.contains("[MASKED]"), "the excerpt was masked, not dropped");
    let prompt_file = std::fs::read_to_string(run.dirs.volumes.join("workspace/.healer/prompt.md")).unwrap();
    let verdict = run.step("validate").message.clone().unwrap();
    let agent_msg = run.step("agent").message.clone().unwrap();
    for (what, text) in [
        ("request body", &body),
        ("prompt file", &prompt_file),
        ("logs", &run.all_logs()),
        ("verdict", &verdict),
        ("agent report", &agent_msg),
    ] {
        assert!(!text.contains(key), "the LLM key leaked into the {what}");
        assert!(!text.contains(gh), "the GitHub token leaked into the {what}");
    }
    assert_eq!(llm.requests()[0].headers["x-api-key"], key, "the key is only sent as the provider's header");
}

// ----- stop reasons and wire defects, each with a real-shaped body ----------------------------

fn agent_log_has(run: &PodRun, needle: &str) -> bool {
    run.logs.get("agent").is_some_and(|l| l.contains(needle))
}

#[tokio::test]
async fn a_cut_off_answer_is_never_applied_and_is_asked_again_with_a_note() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    // A complete diff block (a new file) followed by an answer cut off at max_tokens.
    let partial = "Diagnosis: add_one adds 2.\n\n```diff\ndiff --git a/src/partial.rs b/src/partial.rs\nnew file mode 100644\n--- /dev/null\n+++ b/src/partial.rs\n@@ -0,0 +1 @@\n+pub fn half() {}\n```\n\nAnd then in src/lib.rs:\n\n```diff\ndiff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n pub fn add_one(x: i32) -> i32 {\n-    x + 2\n";
    let cut = anthropic_reply(
        vec![text_block(partial)],
        "max_tokens",
        serde_json::json!({"input_tokens": 500, "output_tokens": 1024}),
    );
    let llm = ScriptedLlm::start(vec![cut, anthropic_text(FIX_ANSWER, 600, 90)]).await;
    let setup = llm_setup("anthropic", &llm.url, Some("anthropic-key-123456"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let v = run.verdict();
    assert_eq!((v.outcome, v.reason.as_str()), (Outcome::Passed, "ValidationPassed"), "{v:?}\n{}", run.all_logs());
    let patch = ci_healer::contract::patch::extract(&run.logs["validate"]).map(str::to_string).unwrap();
    assert!(!patch.contains("partial.rs"), "the cut-off answer's complete block was applied: {patch}");
    assert!(patch.contains("+    x + 1"), "{patch}");
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    let second = reqs[1].body["messages"].as_array().unwrap();
    assert_eq!(second[1]["role"], "assistant", "the cut-off answer is kept as context");
    let note = content_text(&second[2]["content"]);
    assert!(
        note.contains("cut off at the output limit of 1024 tokens") && note.contains("none of it was applied"),
        "{note}"
    );
    assert_eq!(v.tokens, Some(ci_healer::contract::TokenUsage { input: 1100, output: 1114, ..Default::default() }));
}

#[tokio::test]
async fn openai_length_is_retried_and_reasoning_models_get_max_completion_tokens() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let cut = openai_reply(
        serde_json::json!({"role": "assistant", "content": "Diagnosis: add_one adds 2.\n\n```diff\ndiff --git a/src/lib.rs b/src/lib.rs\n--- a/src"}),
        "length",
        400,
        1024,
    );
    let llm = ScriptedLlm::start(vec![cut, openai_text(FIX_ANSWER, 450, 80)]).await;
    let mut setup = llm_setup("openai-compatible", &format!("{}/v1", llm.url), Some("openai-key-abcdef"));
    setup.settings.llm.as_mut().unwrap().model = "o3-mini".into();
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    assert_eq!(run.verdict().outcome, Outcome::Passed, "{}", run.all_logs());
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.body["max_completion_tokens"], 1024, "{}", r.body);
        assert!(r.body.get("max_tokens").is_none() && r.body.get("temperature").is_none(), "{}", r.body);
    }
    let m = reqs[1].body["messages"].as_array().unwrap();
    assert!(content_text(&m.last().unwrap()["content"]).contains("cut off"), "{m:?}");
}

#[tokio::test]
async fn a_refusal_ends_the_attempt_with_provider_refused_and_its_text() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let refusal = Reply {
        status: 200,
        headers: vec![],
        body: serde_json::json!({
            "id": "msg_01Refusal", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "I can't help with modifying this code."}],
            "stop_reason": "refusal", "stop_sequence": null,
            "stop_details": {"type": "refusal", "category": "cyber", "explanation": "The request could enable cyber harm."},
            "usage": {"input_tokens": 800, "output_tokens": 12}
        }),
    };
    let llm = ScriptedLlm::start(vec![refusal, anthropic_text(FIX_ANSWER, 1, 1)]).await;
    let setup = llm_setup("anthropic", &llm.url, Some("anthropic-key-123456"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let (reason, msg) = run.failure("agent");
    assert_eq!(reason, "ProviderRefused", "{msg}\n{}", run.all_logs());
    assert!(msg.contains("I can't help with modifying this code.") && msg.contains("could enable cyber harm"), "{msg}");
    assert_eq!(llm.requests().len(), 1, "a refusal is not retried");
    assert!(run.outcomes.iter().all(|o| o.name != "validate"));

    // OpenAI: `message.refusal` with `content: null`.
    let refusal = openai_reply(
        serde_json::json!({"role": "assistant", "content": null, "refusal": "I'm sorry, I can't assist with that."}),
        "stop",
        700,
        9,
    );
    let llm = ScriptedLlm::start(vec![refusal]).await;
    let setup = llm_setup("openai-compatible", &format!("{}/v1", llm.url), Some("openai-key-abcdef"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let (reason, msg) = run.failure("agent");
    assert_eq!(reason, "ProviderRefused", "{msg}");
    assert!(msg.contains("I can't assist with that."), "{msg}");
}

#[tokio::test]
async fn an_empty_answer_is_never_sent_back_as_an_empty_turn() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let empty = anthropic_reply(vec![], "end_turn", serde_json::json!({"input_tokens": 700, "output_tokens": 1}));
    let llm = ScriptedLlm::start(vec![empty, anthropic_text(FIX_ANSWER, 710, 80)]).await;
    let setup = llm_setup("anthropic", &llm.url, Some("anthropic-key-123456"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    assert_eq!(run.verdict().outcome, Outcome::Passed, "{}", run.all_logs());
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    let m = reqs[1].body["messages"].as_array().unwrap();
    assert_eq!(m.len(), 1, "no empty assistant turn, the note joins the user turn: {m:?}");
    assert!(content_text(&m[0]["content"]).ends_with("Your previous answer was empty. Continue with the task."));
    // The loopback provider rejects empty content, as the API does (the check itself is tested in
    // provider_schemas.rs); dropping `llm` fails the test if it saw one.
}

#[tokio::test]
async fn openai_content_null_is_retried_and_content_filter_ends_the_attempt() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let null = openai_reply(serde_json::json!({"role": "assistant", "content": null}), "stop", 500, 0);
    let filtered = openai_reply(serde_json::json!({"role": "assistant", "content": null}), "content_filter", 510, 0);
    let llm = ScriptedLlm::start(vec![null, filtered]).await;
    let setup = llm_setup("openai-compatible", &format!("{}/v1", llm.url), Some("openai-key-abcdef"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    let (reason, msg) = run.failure("agent");
    assert_eq!(reason, "ProviderContentFiltered", "{msg}\n{}", run.all_logs());
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    let m = reqs[1].body["messages"].as_array().unwrap();
    assert_eq!(m.len(), 2, "system and user only: {m:?}");
}

#[tokio::test]
async fn pause_turn_is_continued_and_text_blocks_join_without_newlines() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let paused = anthropic_reply(
        vec![text_block("Looking at src/lib.rs.")],
        "pause_turn",
        serde_json::json!({"input_tokens": 600, "output_tokens": 8}),
    );
    // The fix split inside a diff line across two text blocks: joined with "\n" it would not apply.
    let at = FIX_ANSWER.find("+    x + 1").unwrap() + 4;
    let split = anthropic_reply(
        vec![text_block(&FIX_ANSWER[..at]), text_block(&FIX_ANSWER[at..])],
        "end_turn",
        serde_json::json!({"input_tokens": 620, "output_tokens": 80}),
    );
    let llm = ScriptedLlm::start(vec![paused, split]).await;
    let setup = llm_setup("anthropic", &llm.url, Some("anthropic-key-123456"));
    let run = run_local(&job(&repo, &setup), &setup, vec![]).await;
    assert_eq!(run.verdict().outcome, Outcome::Passed, "{}", run.all_logs());
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    let m = reqs[1].body["messages"].as_array().unwrap();
    assert_eq!(m.last().unwrap()["role"], "assistant", "the paused turn is sent back to be continued");
    assert_eq!(content_text(&m.last().unwrap()["content"]), "Looking at src/lib.rs.");
    assert!(agent_log_has(&run, "PauseTurn"), "{}", run.logs["agent"]);
}

// ----- the key is out of reach of the repository's code -----------------------------------------

/// A repository whose `build.rs` hunts for the LLM key (`tests/fixtures/hostile/build.rs`) while
/// the agent step validates the model's fix with `cargo test`, and again in the validate step. The
/// key lives only in the `llm-proxy` sidecar: the build script finds it nowhere (its environment,
/// every file below the agent container's mounts, `/proc/*/environ` and `/proc/*/cmdline` of every
/// process it can read, the sidecar's included), finds the control strings planted where it must
/// find them, and the provider still gets the key in `x-api-key` through the proxy.
///
/// What the host runner cannot show: its containers are processes of one user in one mount and
/// PID namespace, so the sidecar's Secret folder and its `/proc/<pid>/mem` stay reachable by path
/// here; a kubelet mounts the Secret into the sidecar's mount namespace only, and gives the pod
/// its own PID namespace (with `shareProcessNamespace` unset, the default, each container its own).
#[tokio::test]
async fn a_hostile_build_script_finds_no_llm_key_while_the_loop_works_through_the_proxy() {
    let key = "sk-ant-canary-5be1f07d9c2a4e38";
    let control = "control-3c9e1a7b";
    let reversed = |s: &str| s.chars().rev().collect::<String>();
    let build_rs = std::fs::read_to_string(support::root().join("tests/fixtures/hostile/build.rs"))
        .unwrap()
        .replace("@KEY_REVERSED@", &reversed(key))
        .replace("@CONTROL_REVERSED@", &reversed(control));
    assert!(!build_rs.contains(key) && !build_rs.contains(control));
    let mut files = crate_files(OFF_BY_ONE);
    files.push(("build.rs", build_rs));
    let repo = repo(&as_refs(&files));
    let llm = ScriptedLlm::start(vec![anthropic_text(FIX_ANSWER, 10, 5)]).await;
    let mut setup = llm_setup("anthropic", &llm.url, Some(key));
    setup.excerpt = format!("{OFF_BY_ONE_EXCERPT}\n{control}\n");
    let job = job(&repo, &setup);
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let agent = pod.init_containers.as_ref().unwrap().iter().find(|c| c.name == "agent").unwrap().clone();
    let reports = tempfile::tempdir().unwrap();
    let report_dir = reports.path().to_path_buf();
    let run = run_local_with(&job, &setup, |dirs| {
        let roots: Vec<String> =
            agent.volume_mounts.iter().flatten().map(|m| dirs.volumes.join(&m.name).display().to_string()).collect();
        assert!(!agent.volume_mounts.iter().flatten().any(|m| m.name == "llm-api-key"));
        vec![
            ("SCAN_ROOTS".into(), roots.join(":")),
            ("SCAN_REPORT_DIR".into(), report_dir.display().to_string()),
            ("SCAN_CONTROL".into(), control.into()),
        ]
    })
    .await;
    assert_eq!(run.verdict().outcome, Outcome::Passed, "{}", run.all_logs());

    // The loop worked through the proxy: the provider got the key, in its header only.
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 1, "{}", run.all_logs());
    assert_eq!(reqs[0].headers["x-api-key"], key);
    assert_eq!(reqs[0].headers["anthropic-version"], "2023-06-01");
    assert!(run.logs["llm-proxy"].contains("forwarded"), "{}", run.all_logs());

    // The build script ran in the agent step (validating the fix) and found nothing.
    let mut scans: Vec<(String, String)> = std::fs::read_dir(reports.path())
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().to_string(), std::fs::read_to_string(e.path()).unwrap()))
        .collect();
    scans.sort();
    assert!(
        scans.iter().any(|(n, _)| n.starts_with("scan-agent-")),
        "the build script ran in the agent step: {scans:?}\n{}",
        run.all_logs()
    );
    for (name, report) in &scans {
        let field = |line: &str, k: &str| -> u64 {
            let l = report.lines().find(|l| l.starts_with(line)).unwrap_or_else(|| panic!("{name}: {report}"));
            l.split(' ').find_map(|f| f.strip_prefix(&format!("{k}="))).unwrap().parse().unwrap()
        };
        for what in ["env ", "files ", "environ ", "cmdline "] {
            assert_eq!(field(what, "key"), 0, "{name} found the key:\n{report}");
            assert!(field(what, "scanned") > 0, "{name} scanned no {what}:\n{report}");
        }
        // Controls: the search does find what is within its reach.
        assert!(field("env ", "control") > 0, "{name}: {report}");
        assert!(field("files ", "control") > 0, "{name}: the context mount holds the control\n{report}");
        assert!(field("environ ", "control") > 0, "{name}: {report}");
        assert!(!report.contains(key), "{name}");
        if name.starts_with("scan-agent-") {
            assert!(report.contains("proxy-seen=true"), "{name}: the sidecar's /proc entries were read\n{report}");
        }
    }
}
