//! The provider wire formats: the committed schemas are what the official SDKs export (drift test),
//! the loopback providers' checks reject what the real APIs reject, and the requests ci-healer
//! builds pass them.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use ci_healer::agent::llm::{Block, ChatRequest, Client, Message, Role, ToolSpec};
use ci_healer::contract::LlmSettings;
use serde_json::json;
use support::llm::{self, Api, check_reply, check_request};

/// Regenerates the schemas from the pinned SDKs (PyPI, cached in ~/.cache/ci-healer) into a temporary
/// directory and compares them with the committed ones.
#[test]
fn committed_schemas_match_what_the_pinned_sdks_export() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("bash")
        .arg(root.join("hack/provider-schemas/generate.sh"))
        .arg(out.path())
        .output()
        .expect("generate.sh runs");
    assert!(st.status.success(), "generate.sh failed:\n{}", String::from_utf8_lossy(&st.stderr));
    let committed = root.join("tests/fixtures/provider-schemas");
    let mut compared = 0;
    for api in ["anthropic", "openai"] {
        for entry in std::fs::read_dir(out.path().join(api)).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let fresh = std::fs::read_to_string(&p).unwrap();
            let old = std::fs::read_to_string(committed.join(api).join(&name)).unwrap_or_default();
            assert!(
                fresh == old,
                "tests/fixtures/provider-schemas/{api}/{name} drifted from the SDK's export: run hack/provider-schemas/generate.sh"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 6);
}

fn anthropic_headers() -> BTreeMap<String, String> {
    BTreeMap::from([("x-api-key".into(), "k".into()), ("anthropic-version".into(), "2023-06-01".into())])
}

fn openai_headers() -> BTreeMap<String, String> {
    BTreeMap::from([("authorization".into(), "Bearer k".into())])
}

#[test]
fn the_loopback_checks_reject_what_the_apis_reject() {
    let ok = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(check_request(Api::Anthropic, &anthropic_headers(), &ok), Vec::<String>::new());
    let mut with_temp = ok.clone();
    with_temp["temperature"] = json!(0.2);
    let e = check_request(Api::Anthropic, &anthropic_headers(), &with_temp);
    assert!(e.iter().any(|e| e.contains("temperature")), "{e:?}");
    let empty_turn = json!({"model": "m", "max_tokens": 1, "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}, {"role": "user", "content": "again"}]});
    let e = check_request(Api::Anthropic, &anthropic_headers(), &empty_turn);
    assert!(e.iter().any(|e| e.contains("non-empty content")), "{e:?}");
    let unanswered = json!({"model": "m", "max_tokens": 1, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {}}]},
        {"role": "user", "content": "go on"}]});
    let e = check_request(Api::Anthropic, &anthropic_headers(), &unanswered);
    assert!(e.iter().any(|e| e.contains("without tool_result")), "{e:?}");
    assert!(!check_request(Api::Anthropic, &BTreeMap::new(), &ok).is_empty(), "headers are required");
    let mut no_max = ok.clone();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    assert!(!check_request(Api::Anthropic, &anthropic_headers(), &no_max).is_empty(), "max_tokens is required");

    let ok = json!({"model": "gpt-4o", "max_tokens": 100, "temperature": 0.2, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(check_request(Api::OpenAi, &openai_headers(), &ok), Vec::<String>::new());
    let mut o3 = ok.clone();
    o3["model"] = json!("o3-mini");
    let e = check_request(Api::OpenAi, &openai_headers(), &o3);
    assert!(
        e.iter().any(|e| e.contains("max_completion_tokens")) && e.iter().any(|e| e.contains("temperature")),
        "{e:?}"
    );
    let mut typo = ok.clone();
    typo["max_token"] = json!(1);
    assert!(!check_request(Api::OpenAi, &openai_headers(), &typo).is_empty(), "unknown parameters are rejected");

    // Replies: the SDK's response models.
    assert_eq!(check_reply(Api::Anthropic, 200, &llm::anthropic_text("x", 1, 1).body), Vec::<String>::new());
    let mut bad = llm::anthropic_text("x", 1, 1).body;
    bad.as_object_mut().unwrap().remove("usage");
    assert!(!check_reply(Api::Anthropic, 200, &bad).is_empty());
    bad = llm::anthropic_text("x", 1, 1).body;
    bad["stop_reason"] = json!("length");
    assert!(!check_reply(Api::Anthropic, 200, &bad).is_empty(), "an OpenAI stop reason is not an Anthropic one");
    assert_eq!(check_reply(Api::OpenAi, 200, &llm::openai_text("x", 1, 1).body), Vec::<String>::new());
    assert_eq!(
        check_reply(Api::OpenAi, 200, &llm::openai_tool_calls(&[("call_1", "finish", json!({}))], 1, 1).body),
        Vec::<String>::new()
    );
    let mut bad = llm::openai_text("x", 1, 1).body;
    bad["choices"][0]["finish_reason"] = json!("end_turn");
    assert!(!check_reply(Api::OpenAi, 200, &bad).is_empty());
    assert_eq!(check_reply(Api::Anthropic, 529, &llm::error_reply(529, &[]).body), Vec::<String>::new());
}

fn settings(provider: &str, model: &str, base: &str) -> LlmSettings {
    serde_json::from_value(json!({"provider": provider, "model": model, "baseUrl": base, "temperature": 0.3})).unwrap()
}

/// A conversation with every block kind ci-healer sends: text, a tool round trip, a refused tool.
fn conversation() -> Vec<Message> {
    vec![
        Message::user("Fix the failing test."),
        Message {
            role: Role::Assistant,
            blocks: vec![
                Block::Text("Reading.".into()),
                Block::ToolUse { id: "toolu_1".into(), name: "read_file".into(), input: json!({"path": "src/lib.rs"}) },
                Block::ToolUse { id: "toolu_2".into(), name: "read_file".into(), input: json!({"path": "../x"}) },
            ],
        },
        Message {
            role: Role::User,
            blocks: vec![
                Block::ToolResult { tool_use_id: "toolu_1".into(), content: "1\tfn a() {}\n".into(), is_error: false },
                Block::ToolResult { tool_use_id: "toolu_2".into(), content: "outside".into(), is_error: true },
                Block::Text("(1 turn(s) left.)".into()),
            ],
        },
        Message::assistant(""),
    ]
}

#[test]
fn requests_ci_healer_builds_pass_the_sdk_schemas() {
    let tools = [ToolSpec {
        name: "read_file",
        description: "Read a file.".into(),
        input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    }];
    let msgs = conversation();
    for cache in [false, true] {
        for tools in [&tools[..], &[]] {
            let req =
                ChatRequest { system: "sys", messages: &msgs, max_tokens: 512, temperature: Some(0.3), tools, cache };
            let c = Client::new(&settings("anthropic", "claude-sonnet-4-5", "http://127.0.0.1:1"), "k".into()).unwrap();
            let (url, body) = c.request(&req);
            assert!(url.ends_with("/v1/messages"));
            if !tools.is_empty() {
                assert_eq!(check_request(Api::Anthropic, &anthropic_headers(), &body), Vec::<String>::new(), "{body}");
            }
            for (model, base) in [
                ("gpt-4o", "https://api.openai.com/v1"),
                ("o4-mini", "http://127.0.0.1:1/v1"),
                ("qwen2.5-coder", "http://127.0.0.1:1/v1"),
            ] {
                let c = Client::new(&settings("openai-compatible", model, base), "k".into()).unwrap();
                let (url, body) = c.request(&req);
                assert!(url.ends_with("/chat/completions"));
                if !tools.is_empty() {
                    assert_eq!(
                        check_request(Api::OpenAi, &openai_headers(), &body),
                        Vec::<String>::new(),
                        "{model}: {body}"
                    );
                }
                let official_or_reasoning = base.contains("api.openai.com") || model.starts_with('o');
                assert_eq!(body.get("max_completion_tokens").is_some(), official_or_reasoning, "{model}: {body}");
                assert_eq!(body.get("max_tokens").is_some(), !official_or_reasoning, "{model}: {body}");
                assert_eq!(body.get("temperature").is_some(), !model.starts_with('o'), "{model}: {body}");
            }
        }
    }
}
