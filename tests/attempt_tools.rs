//! The built-in agent's tool loop through the real steps, against the loopback providers (Anthropic
//! tool use, OpenAI function calling), with scripted sessions in the providers' real shapes: the
//! tools read, search and edit the real checkout, run the real validation command (`cargo test`),
//! and the validate step judges the result independently.

mod support;

use ci_healer::contract::Outcome;
use serde_json::{Value, json};
use support::attempt::*;

fn setup(provider: &str, url: &str, key: &str) -> AttemptSetup {
    let mut s = AttemptSetup::new("rust", "rust_test", OFF_BY_ONE_EXCERPT);
    s.settings.fixers = Some(vec![]);
    s.settings.validation_commands = vec!["cargo test --quiet".into()];
    s.settings.llm = Some(llm_settings(provider, url));
    s.llm_key = Some(key.into());
    s
}

const SECRET: &str = "ghp_0123456789abcdefghijABCDEFGHIJ012345";

fn files_with_secret() -> Vec<(&'static str, String)> {
    let mut f = crate_files(OFF_BY_ONE);
    f.push(("config/deploy.env", format!("GITHUB_TOKEN={SECRET}\n")));
    f
}

/// The tool results of the last user message of a request (Anthropic `tool_result` blocks).
fn tool_results(r: &Recorded) -> Vec<(String, String, bool)> {
    let m = r.body["messages"].as_array().unwrap().last().unwrap().clone();
    m["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            (b["tool_use_id"].as_str().unwrap().to_string(), content_text_or_str(&b["content"]), b["is_error"] == true)
        })
        .collect()
}

fn content_text_or_str(v: &Value) -> String {
    content_text(v)
}

fn agent_record(run: &PodRun) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.dirs.volumes.join("workspace/.healer/agent.json")).unwrap())
        .unwrap()
}

#[tokio::test]
async fn anthropic_tool_use_reads_edits_validates_and_finishes() {
    let repo = repo(&as_refs(&files_with_secret()));
    let llm = ScriptedLlm::start(vec![
        anthropic_tools(
            Some("I'll read the function under test and the deploy config."),
            vec![
                tool_use("toolu_01A", "read_file", json!({"path": "src/lib.rs"})),
                tool_use("toolu_01B", "read_file", json!({"path": "config/deploy.env"})),
            ],
            (2100, 70, 0, 3400),
        ),
        anthropic_tools(
            None,
            vec![tool_use("toolu_02", "search", json!({"pattern": "add_one\\(", "path": "src"}))],
            (180, 40, 3400, 0),
        ),
        anthropic_tools(
            Some("`add_one` adds 2; the test expects 1."),
            vec![tool_use(
                "toolu_03",
                "edit_file",
                json!({"path": "src/lib.rs", "old_string": "    x + 2\n", "new_string": "    x + 1\n"}),
            )],
            (260, 60, 3580, 0),
        ),
        anthropic_tools(None, vec![tool_use("toolu_04", "run_validation", json!({}))], (90, 30, 3840, 0)),
        anthropic_tools(
            None,
            vec![tool_use("toolu_05", "finish", json!({"diagnosis": "add_one added 2 instead of 1; it now adds 1."}))],
            (120, 35, 3930, 0),
        ),
    ])
    .await;
    let s = setup("anthropic", &llm.url, "anthropic-key-123456");
    let run = run_local(&job(&repo, &s), &s, vec![]).await;
    let v = run.verdict();
    assert_eq!((v.outcome, v.reason.as_str()), (Outcome::Passed, "ValidationPassed"), "{v:?}\n{}", run.all_logs());
    let report: ci_healer::contract::AgentReport =
        serde_json::from_str(run.step("agent").message.as_deref().unwrap()).unwrap();
    assert_eq!(report.diagnosis, "add_one added 2 instead of 1; it now adds 1.");
    let patch = ci_healer::contract::patch::extract(&run.logs["validate"]).map(str::to_string).unwrap();
    assert!(patch.contains("-    x + 2\n+    x + 1\n") && !patch.contains("deploy.env"), "{patch}");

    let reqs = llm.requests();
    assert_eq!(reqs.len(), 5);
    for r in &reqs {
        let names: Vec<&str> =
            r.body["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["list_files", "search", "read_file", "edit_file", "write_file", "run_validation", "finish"]);
        assert_eq!(r.body["system"][0]["cache_control"]["type"], "ephemeral", "the stable prefix is cached");
        assert!(r.body.get("temperature").is_none());
    }
    let first = tool_results(&reqs[1]);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].0, "toolu_01A");
    assert!(first[0].1.starts_with("1\tpub fn add_one(x: i32) -> i32 {\n2\t    x + 2\n"), "{}", first[0].1);
    assert!(first[1].1.contains("GITHUB_TOKEN=[MASKED]") && !first[1].1.contains(SECRET), "{}", first[1].1);
    assert_eq!(
        tool_results(&reqs[2])[0].1,
        "src/lib.rs:1: pub fn add_one(x: i32) -> i32 {\nsrc/lib.rs:9:         assert_eq!(super::add_one(1), 2);"
    );
    assert_eq!(tool_results(&reqs[3])[0].1, "replaced 1 occurrence(s) in src/lib.rs");
    let validation = &tool_results(&reqs[4])[0];
    assert!(!validation.2 && validation.1.contains("passed: `cargo test --quiet`"), "{validation:?}");

    // Every tool call is in the step's log, masked; usage with the cache is recorded.
    let log = &run.logs["agent"];
    for tool in ["read_file", "search", "edit_file", "run_validation", "finish"] {
        assert!(log.lines().any(|l| l.contains("tool call") && l.contains(tool)), "{tool} not logged:\n{log}");
    }
    assert!(!run.all_logs().contains(SECRET));
    let rec = agent_record(&run);
    assert_eq!(rec["cacheReadTokens"], 3400 + 3580 + 3840 + 3930);
    assert_eq!(rec["cacheWriteTokens"], 3400);
    assert_eq!(
        (rec["requests"].as_u64(), rec["toolCalls"].as_u64(), rec["turns"].as_u64()),
        (Some(5), Some(6), Some(1))
    );
    assert_eq!(rec["method"], "llm/tools");
    let calls = std::fs::read_to_string(run.dirs.volumes.join("workspace/.healer/tool-calls.jsonl")).unwrap();
    assert_eq!(calls.lines().count(), 6);
}

#[tokio::test]
async fn openai_function_calling_fixes_the_failure() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let llm = ScriptedLlm::start(vec![
        openai_tool_calls(&[("call_abc1", "list_files", json!({}))], 1900, 20),
        openai_tool_calls(
            &[("call_abc2", "read_file", json!({"path": "src/lib.rs", "start_line": 1, "end_line": 3}))],
            2000,
            25,
        ),
        openai_tool_calls(
            &[(
                "call_abc3",
                "write_file",
                json!({"path": "src/lib.rs", "content": OFF_BY_ONE.replace("x + 2", "x + 1")}),
            )],
            2100,
            120,
        ),
        openai_tool_calls(&[("call_abc4", "finish", json!({"diagnosis": "add_one added 2."}))], 2300, 15),
    ])
    .await;
    let s = setup("openai-compatible", &format!("{}/v1", llm.url), "openai-key-abcdef");
    let run = run_local(&job(&repo, &s), &s, vec![]).await;
    assert_eq!(run.verdict().outcome, Outcome::Passed, "{}", run.all_logs());
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[0].body["tools"][2]["function"]["name"], "read_file");
    assert_eq!(reqs[0].body["tools"][2]["type"], "function");
    let m = reqs[2].body["messages"].as_array().unwrap();
    let tool_msg = m.last().unwrap();
    assert_eq!((tool_msg["role"].as_str(), tool_msg["tool_call_id"].as_str()), (Some("tool"), Some("call_abc2")));
    assert_eq!(
        tool_msg["content"],
        "1\tpub fn add_one(x: i32) -> i32 {\n2\t    x + 2\n3\t}\n[lines 1–3 of 11; read on with start_line 4]\n"
    );
    assert_eq!(m[m.len() - 2]["content"], Value::Null, "an assistant turn with only tool calls has content null");
    assert_eq!(tool_results_openai(&reqs[1]), ".gitignore\nCargo.toml\nsrc/lib.rs");
}

fn tool_results_openai(r: &Recorded) -> String {
    r.body["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn deleting_the_test_through_the_tools_is_still_refused_by_validate() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let tests_block = &OFF_BY_ONE[OFF_BY_ONE.find("\n#[cfg(test)]").unwrap()..];
    let llm = ScriptedLlm::start(vec![
        anthropic_tools(
            Some("The test is wrong; removing it."),
            vec![tool_use(
                "toolu_1",
                "edit_file",
                json!({"path": "src/lib.rs", "old_string": tests_block, "new_string": "\n"}),
            )],
            (2000, 80, 0, 0),
        ),
        anthropic_tools(
            None,
            vec![tool_use("toolu_2", "finish", json!({"diagnosis": "the test is wrong."}))],
            (2100, 20, 0, 0),
        ),
    ])
    .await;
    let s = setup("anthropic", &llm.url, "anthropic-key-123456");
    let run = run_local(&job(&repo, &s), &s, vec![]).await;
    let v = run.verdict();
    assert_eq!((v.outcome, v.reason.as_str()), (Outcome::Refused, "TestWeakened"), "{v:?}\n{}", run.all_logs());
    assert!(v.summary.contains("removes 1 test definition"), "{}", v.summary);
}

#[tokio::test]
async fn a_failing_finish_gets_the_validation_output_and_the_model_goes_on() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let llm = ScriptedLlm::start(vec![
        anthropic_tools(
            None,
            vec![tool_use(
                "toolu_1",
                "edit_file",
                json!({"path": "src/lib.rs", "old_string": "x + 2", "new_string": "x + 3"}),
            )],
            (2000, 50, 0, 0),
        ),
        anthropic_tools(
            None,
            vec![tool_use("toolu_2", "finish", json!({"diagnosis": "off by one."}))],
            (2100, 20, 0, 0),
        ),
        anthropic_tools(
            Some("Still wrong: it must add 1."),
            vec![tool_use(
                "toolu_3",
                "edit_file",
                json!({"path": "src/lib.rs", "old_string": "x + 3", "new_string": "x + 1"}),
            )],
            (2900, 50, 0, 0),
        ),
        anthropic_tools(
            None,
            vec![tool_use("toolu_4", "finish", json!({"diagnosis": "add_one must add 1."}))],
            (3000, 20, 0, 0),
        ),
    ])
    .await;
    let mut s = setup("anthropic", &llm.url, "anthropic-key-123456");
    s.settings.llm.as_mut().unwrap().max_turns = 3;
    let run = run_local(&job(&repo, &s), &s, vec![]).await;
    assert_eq!(run.verdict().outcome, Outcome::Passed, "{}", run.all_logs());
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 4);
    let r = tool_results(&reqs[2]);
    assert!(
        r[0].2 && r[0].1.contains("Not finished: the validation commands fail") && r[0].1.contains("left: 4"),
        "{r:?}"
    );
    assert!(
        content_text(&reqs[2].body["messages"].as_array().unwrap().last().unwrap()["content"])
            .contains("(2 turn(s) left.)")
    );
    assert_eq!(agent_record(&run)["turns"], 2);
}

#[tokio::test]
async fn the_budget_caps_each_answer_and_ends_the_attempt() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let llm = ScriptedLlm::start(vec![
        anthropic_tools(None, vec![tool_use("toolu_1", "read_file", json!({"path": "src/lib.rs"}))], (2200, 50, 0, 0)),
        anthropic_tools(None, vec![tool_use("toolu_2", "read_file", json!({"path": "Cargo.toml"}))], (2300, 40, 0, 0)),
        anthropic_text(FIX_ANSWER, 1, 1),
    ])
    .await;
    let mut s = setup("anthropic", &llm.url, "anthropic-key-123456");
    let l = s.settings.llm.as_mut().unwrap();
    l.token_budget = 6000;
    l.max_tokens_per_turn = 4096;
    let run = run_local(&job(&repo, &s), &s, vec![]).await;
    let (reason, msg) = run.failure("agent");
    assert_eq!(reason, "BudgetExhausted", "{msg}\n{}", run.all_logs());
    assert!(msg.contains("4590 tokens used of a budget of 6000"), "{msg}");
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2, "the third request would not fit the budget");
    assert_eq!(reqs[0].body["max_tokens"], 4096);
    assert_eq!(reqs[1].body["max_tokens"], 6000 - 2250 - 2200, "max_tokens is what is left after the input");
    assert_eq!(llm.unserved(), 1);
}

#[tokio::test]
async fn a_server_without_tools_gets_the_diff_format() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let no_tools = Reply {
        status: 400,
        headers: vec![],
        body: json!({"error": {"message": "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set", "type": "BadRequestError", "param": null, "code": null}}),
    };
    let llm = ScriptedLlm::start(vec![no_tools, openai_text(FIX_ANSWER, 900, 80)]).await;
    let s = setup("openai-compatible", &format!("{}/v1", llm.url), "openai-key-abcdef");
    let run = run_local(&job(&repo, &s), &s, vec![]).await;
    assert_eq!(run.verdict().outcome, Outcome::Passed, "{}", run.all_logs());
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].body.get("tools").is_some());
    assert!(reqs[1].body.get("tools").is_none(), "{}", reqs[1].body);
    assert!(reqs[1].message_text(1).contains("a unified diff in a single fenced block"), "diff-format prompt");
    assert!(agent_record(&run)["method"].as_str().unwrap().starts_with("llm/"), "{}", agent_record(&run));
}

#[tokio::test]
async fn the_repositorys_instructions_and_config_reach_the_prompt_and_validation() {
    let mut files = crate_files(OFF_BY_ONE);
    files.push(("AGENTS.md", "# Agents\n\nKeep functions pure; run `cargo test --quiet` before you finish.\n".into()));
    files.push((
        ".github/ci-healer.yml",
        "agentHints: Arithmetic helpers live in src/lib.rs.\nvalidationCommands: [\"test -f src/lib.rs\"]\nprotectedPaths: [\"Cargo.toml\"]\n".into(),
    ));
    let first = repo(&as_refs(&files));
    let llm = ScriptedLlm::start(vec![anthropic_text(FIX_ANSWER, 3000, 90)]).await;
    let s = setup("anthropic", &llm.url, "anthropic-key-123456");
    let run = run_local(&job(&first, &s), &s, vec![]).await;
    let v = run.verdict();
    assert_eq!(v.outcome, Outcome::Passed, "{}", run.all_logs());
    assert!(
        v.summary.contains("cargo test --quiet; test -f src/lib.rs"),
        "the repository's command is added: {}",
        v.summary
    );
    let prompt = llm.requests()[0].message_text(0);
    assert!(
        prompt.contains("## The repository's instructions for agents") && prompt.contains("### `AGENTS.md`"),
        "{prompt}"
    );
    assert!(prompt.contains("Keep functions pure; run `cargo test --quiet` before you finish."), "{prompt}");
    assert!(prompt.contains("Arithmetic helpers live in src/lib.rs."), "{prompt}");
    let first = &llm.requests()[0].body["messages"][0]["content"];
    assert_eq!(first[0]["cache_control"]["type"], "ephemeral", "the instructions are in the cached prefix");

    // The repository opts out: nothing is asked, nothing changes.
    let mut files = crate_files(OFF_BY_ONE);
    files.push((".github/ci-healer.yml", "enabled: false\n".into()));
    let opted_out = repo(&as_refs(&files));
    let llm = ScriptedLlm::start(vec![anthropic_text(FIX_ANSWER, 1, 1)]).await;
    let s = setup("anthropic", &llm.url, "anthropic-key-123456");
    let run = run_local(&job(&opted_out, &s), &s, vec![]).await;
    assert_eq!(run.failure("agent").0, "RepositoryOptedOut");
    assert_eq!(llm.requests().len(), 0);
}

fn priced(s: &mut AttemptSetup, budget: Option<&str>) {
    let l = s.settings.llm.as_mut().unwrap();
    l.price = Some(ci_healer::contract::settings::ModelPrice {
        input: "3".into(),
        output: "15".into(),
        cache_read: Some("0.30".into()),
        cache_write: Some("3.75".into()),
    });
    l.cost_budget_usd = budget.map(str::to_string);
}

#[tokio::test]
async fn cost_with_cache_reads_is_recorded_and_the_money_budget_caps_answers() {
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    // input = uncached + read + write as Anthropic reports them separately.
    let llm = ScriptedLlm::start(vec![
        anthropic_tools(
            None,
            vec![tool_use("toolu_1", "read_file", json!({"path": "src/lib.rs"}))],
            (200, 50, 0, 4000),
        ),
        anthropic_tools(
            None,
            vec![tool_use(
                "toolu_2",
                "edit_file",
                json!({"path": "src/lib.rs", "old_string": "x + 2", "new_string": "x + 1"}),
            )],
            (300, 60, 4000, 0),
        ),
        anthropic_tools(
            None,
            vec![tool_use("toolu_3", "finish", json!({"diagnosis": "off by one."}))],
            (100, 20, 4300, 0),
        ),
    ])
    .await;
    let mut s = setup("anthropic", &llm.url, "anthropic-key-123456");
    priced(&mut s, None);
    let run = run_local(&job(&repo, &s), &s, vec![]).await;
    let v = run.verdict();
    assert_eq!(v.outcome, Outcome::Passed, "{}", run.all_logs());
    let t = v.tokens.clone().unwrap();
    assert_eq!(
        (t.input, t.output, t.cache_read, t.cache_write),
        (200 + 4000 + 300 + 4000 + 100 + 4300, 130, 8300, 4000)
    );
    // 600 uncached × 3 + 8300 read × 0.30 + 4000 written × 3.75 + 130 out × 15 = 1800 + 2490 + 15000 + 1950.
    assert_eq!(t.cost_micro_usd, Some(21_240));
    assert_eq!(agent_record(&run)["costMicroUsd"], 21_240);

    // A budget of 0.03 USD: after the first answer (0.016350 USD) the second may use what the rest
    // pays for after its input (4200 tokens read from the cache: 0.001260 USD), 826 tokens; after the
    // second (0.011100 USD) too little is left for a third.
    let llm = ScriptedLlm::start(vec![
        anthropic_tools(
            None,
            vec![tool_use("toolu_1", "read_file", json!({"path": "src/lib.rs"}))],
            (200, 50, 0, 4000),
        ),
        anthropic_tools(
            None,
            vec![tool_use("toolu_2", "read_file", json!({"path": "Cargo.toml"}))],
            (300, 600, 4000, 0),
        ),
        anthropic_text(FIX_ANSWER, 1, 1),
    ])
    .await;
    let mut s = setup("anthropic", &llm.url, "anthropic-key-123456");
    priced(&mut s, Some("0.03"));
    let run = run_local(&job(&repo, &s), &s, vec![]).await;
    let (reason, msg) = run.failure("agent");
    assert_eq!(reason, "BudgetExhausted", "{msg}\n{}", run.all_logs());
    assert!(msg.contains("0.027450 USD spent of a budget of 0.030000 USD"), "{msg}");
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body["max_tokens"], 1024);
    assert_eq!(reqs[1].body["max_tokens"], 826, "the second answer is capped by the money left");
}

/// A remembered fix of the same error that applies but no longer passes is dropped (the workspace
/// goes back to the failing commit) and the model is asked, with that fix and the class's other
/// past fixes quoted in the prompt as examples; on a later attempt nothing is replayed.
#[tokio::test]
async fn a_remembered_fix_that_no_longer_passes_becomes_an_example_for_the_model() {
    use ci_healer::contract::memory::{MemoryContext, PastFix};
    let repo = repo(&as_refs(&crate_files(OFF_BY_ONE)));
    let wrong = "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n pub fn add_one(x: i32) -> i32 {\n-    x + 2\n+    x + 3\n }\n";
    let fix = |entry: &str, run: &str, patch: &str| PastFix {
        entry: entry.into(),
        source_run: run.into(),
        failure_class: "rust_test".into(),
        error_hash: "e1".into(),
        summary: format!("the fix of {run}"),
        patch: patch.into(),
    };
    let memory = MemoryContext {
        replay: Some(fix("healer-fix-0001", "last-week", wrong)),
        examples: vec![fix("healer-fix-0002", "last-month", "diff --git a/src/b.rs b/src/b.rs\n+// an older fix\n")],
    };
    let llm = ScriptedLlm::start(vec![anthropic_text(FIX_ANSWER, 900, 60)]).await;
    let mut s = setup("anthropic", &llm.url, "anthropic-key-123456");
    s.memory = Some(serde_json::to_string(&memory).unwrap());
    let run = run_local(&job(&repo, &s), &s, vec![]).await;
    let v = run.verdict();
    assert_eq!(v.outcome, Outcome::Passed, "{}", run.all_logs());
    assert!(run.all_logs().contains("the remembered fix healer-fix-0001 applies but the validation commands fail"));
    assert_eq!(v.tokens.as_ref().map(|t| t.input), Some(900));
    assert_eq!(llm.requests().len(), 1);
    let prompt = llm.requests()[0].message_text(0);
    assert!(prompt.contains("## Past fixes in this repository"), "{prompt}");
    let same = prompt.find("From run `last-week`").expect("the dropped fix is an example");
    let older = prompt.find("From run `last-month`: the fix of last-month").expect("the class example");
    assert!(same < older && prompt.contains("+    x + 3") && prompt.contains("did not pass here"), "{prompt}");
    // The change is the model's alone: nothing of the dropped replay is left.
    let lib = std::fs::read_to_string(run.workspace().join("src/lib.rs")).unwrap();
    assert!(lib.contains("x + 1") && !lib.contains("x + 3"), "{lib}");
    assert!(agent_record(&run)["method"].as_str().unwrap().starts_with("llm/"), "{}", agent_record(&run));
}
