//! Anthropic Messages API (`POST {base}/v1/messages`, headers `x-api-key` and
//! `anthropic-version: 2023-06-01`): request body and response parsing, following the anthropic
//! Python SDK 2.14.0 (`MessageCreateParamsNonStreaming`, `Message`; the schemas exported from it are
//! in `tests/fixtures/provider-schemas/anthropic/`).
//!
//! Request: `{"model", "max_tokens", "system": [text blocks], "messages": [{"role", "content"}],
//! "tools"?}`; no `temperature` (the current API has none). Content is a string for a plain text
//! message and blocks otherwise (`text`, `tool_use`, `tool_result`). With caching on, `cache_control:
//! {"type": "ephemeral"}` marks the system prompt, the first user message (the repository's
//! instructions and files) and the newest message: three of the four breakpoints the API allows.
//!
//! Response: `{"content": [{"type": "text"|"tool_use"|…}], "stop_reason", "stop_details",
//! "usage": {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}}`.

use serde_json::{Value, json};

use super::{Block, ChatRequest, ChatResponse, Message, Role, StopReason, Usage};

/// The `anthropic-version` header value.
pub const API_VERSION: &str = "2023-06-01";

fn cache_control() -> Value {
    json!({"type": "ephemeral"})
}

fn block_json(b: &Block) -> Option<Value> {
    Some(match b {
        Block::Text(t) if t.trim().is_empty() => return None,
        Block::Text(t) => json!({"type": "text", "text": t}),
        Block::ToolUse { id, name, input } => {
            let input = if input.is_object() { input.clone() } else { json!({}) };
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        Block::ToolResult { tool_use_id, content, is_error } => {
            let mut r = json!({"type": "tool_result", "tool_use_id": tool_use_id, "is_error": is_error});
            // An empty string content is rejected like an empty text block; leave it out instead.
            if !content.is_empty() {
                r["content"] = json!(content);
            }
            r
        }
        Block::Raw(v) => v.clone(),
    })
}

fn message_json(m: &Message, cache: bool) -> Value {
    let role = if m.role == Role::User { "user" } else { "assistant" };
    let mut blocks: Vec<Value> = m.blocks.iter().filter_map(block_json).collect();
    if !cache && blocks.len() == 1 && blocks[0]["type"] == "text" {
        return json!({"role": role, "content": blocks[0]["text"]});
    }
    if cache && let Some(last) = blocks.last_mut() {
        last["cache_control"] = cache_control();
    }
    json!({"role": role, "content": blocks})
}

/// The JSON body of a Messages API request. Messages without content are left out (the API rejects
/// them); `temperature` is never sent (see [`super::takes_temperature`]).
pub fn request_body(model: &str, req: &ChatRequest<'_>) -> Value {
    let kept: Vec<&Message> = req.messages.iter().filter(|m| !m.is_empty()).collect();
    let last = kept.len().saturating_sub(1);
    let messages: Vec<Value> =
        kept.iter().enumerate().map(|(i, m)| message_json(m, req.cache && (i == 0 || i == last))).collect();
    let mut system = json!({"type": "text", "text": req.system});
    if req.cache {
        system["cache_control"] = cache_control();
    }
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens,
        "system": [system],
        "messages": messages,
    });
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
    }
    body
}

/// Parse a Messages API response: the blocks in order, the stop reason (with a refusal's
/// explanation) and the usage. Errors: not that shape.
pub fn parse_response(body: &str) -> Result<ChatResponse, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let content = v["content"].as_array().ok_or("no `content` array")?;
    let mut blocks = Vec::new();
    for b in content {
        blocks.push(match b["type"].as_str() {
            Some("text") => Block::Text(b["text"].as_str().unwrap_or("").to_string()),
            Some("tool_use") => Block::ToolUse {
                id: b["id"].as_str().ok_or("a tool_use block without `id`")?.to_string(),
                name: b["name"].as_str().ok_or("a tool_use block without `name`")?.to_string(),
                input: b["input"].clone(),
            },
            _ => Block::Raw(b.clone()),
        });
    }
    let stop = match v["stop_reason"].as_str() {
        Some("end_turn") => StopReason::EndTurn,
        Some("stop_sequence") => StopReason::StopSequence,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some("pause_turn") => StopReason::PauseTurn,
        Some("refusal") => StopReason::Refusal,
        Some("model_context_window_exceeded") => StopReason::ContextWindowExceeded,
        Some(other) => StopReason::Other(other.to_string()),
        None => StopReason::Other("none".into()),
    };
    let refusal = (stop == StopReason::Refusal).then(|| {
        let d = &v["stop_details"];
        let mut parts = Vec::new();
        if let Some(c) = d["category"].as_str() {
            parts.push(format!("category {c}"));
        }
        if let Some(e) = d["explanation"].as_str() {
            parts.push(e.to_string());
        }
        parts.join(": ")
    });
    let u = &v["usage"];
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    let cache_write = n("cache_creation_input_tokens");
    let cache_read = n("cache_read_input_tokens");
    Ok(ChatResponse {
        blocks,
        stop,
        refusal: refusal.filter(|r| !r.is_empty()),
        usage: Usage {
            input: n("input_tokens") + cache_write + cache_read,
            output: n("output_tokens"),
            cache_read,
            cache_write,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::llm::ToolSpec;

    fn req<'a>(msgs: &'a [Message], tools: &'a [ToolSpec], cache: bool) -> ChatRequest<'a> {
        ChatRequest { system: "sys", messages: msgs, max_tokens: 100, temperature: Some(0.3), tools, cache }
    }

    #[test]
    fn request_has_no_temperature_no_empty_turns_and_cache_breakpoints() {
        let msgs = [Message::user("hi"), Message::assistant(""), Message::user("again")];
        let b = request_body("claude-x", &req(&msgs, &[], false));
        assert!(b.get("temperature").is_none(), "{b}");
        assert_eq!(b["messages"].as_array().unwrap().len(), 2, "the empty assistant turn is not sent: {b}");
        assert_eq!(b["messages"][0]["content"], "hi");
        assert_eq!(b["system"][0]["text"], "sys");
        assert!(b["system"][0].get("cache_control").is_none());
        let tools = [ToolSpec { name: "read_file", description: "d".into(), input_schema: json!({"type": "object"}) }];
        let b = request_body("claude-x", &req(&msgs, &tools, true));
        assert_eq!(b["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(b["messages"][0]["content"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(b["messages"][1]["content"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn response_blocks_are_joined_without_separators() {
        let r = parse_response(r#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"```diff\n-a"},{"type":"text","text":"\n+b\n```"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":3,"cache_read_input_tokens":90,"cache_creation_input_tokens":5}}"#).unwrap();
        assert_eq!(r.text(), "```diff\n-a\n+b\n```");
        assert_eq!(r.usage, Usage { input: 105, output: 3, cache_read: 90, cache_write: 5 });
        assert_eq!(r.stop, StopReason::EndTurn);
        assert!(parse_response("{}").is_err());
    }

    #[test]
    fn tool_use_only_answers_and_refusals_are_read() {
        let r = parse_response(r#"{"id":"msg_2","type":"message","role":"assistant","model":"m","content":[{"type":"tool_use","id":"toolu_1","name":"read_file","input":{"path":"src/lib.rs"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}"#).unwrap();
        assert_eq!(r.stop, StopReason::ToolUse);
        assert_eq!(r.tool_uses().next(), Some(("toolu_1", "read_file", &json!({"path": "src/lib.rs"}))));
        let r = parse_response(r#"{"id":"msg_3","type":"message","role":"assistant","model":"m","content":[],"stop_reason":"refusal","stop_details":{"type":"refusal","category":"cyber","explanation":"I can't help with that."},"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":0}}"#).unwrap();
        assert_eq!(r.stop, StopReason::Refusal);
        assert_eq!(r.refusal.as_deref(), Some("category cyber: I can't help with that."));
    }
}
