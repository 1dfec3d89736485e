//! OpenAI chat completions (`POST {base}/chat/completions`, `Authorization: Bearer <key>`), as
//! OpenAI, Gemini's OpenAI-compatible endpoint, Grok, vLLM and Ollama serve it, following the openai
//! Python SDK 3.57.0 (`CompletionCreateParamsNonStreaming`, `ChatCompletion`; the schemas exported
//! from it are in `tests/fixtures/provider-schemas/openai/`).
//!
//! Request: `{"model", "messages": [{"role": "system"|"user"|"assistant"|"tool", …}],
//! "max_completion_tokens"|"max_tokens", "temperature"?, "tools"?}`. An assistant turn that called
//! tools carries `tool_calls` (and `content: null` when it said nothing); each result is a
//! `role: "tool"` message with its `tool_call_id`. OpenAI caches prompt prefixes by itself and reports
//! `usage.prompt_tokens_details.cached_tokens`.
//!
//! Response: `choices[0].message` (`content` may be `null`, `refusal`, `tool_calls`),
//! `choices[0].finish_reason`, `usage`.

use serde_json::{Value, json};

use super::{Block, ChatRequest, ChatResponse, Role, StopReason, Usage};

/// The JSON body of a chat completions request. `max_completion_tokens` replaces `max_tokens` when
/// `completion_tokens_field` (see [`super::uses_max_completion_tokens`]); `temperature` is sent only
/// when the request has one and the model family takes it.
pub fn request_body(model: &str, req: &ChatRequest<'_>, completion_tokens_field: bool) -> Value {
    let mut messages = vec![json!({"role": "system", "content": req.system})];
    for m in req.messages {
        match m.role {
            Role::User => {
                let mut text = String::new();
                for b in &m.blocks {
                    match b {
                        Block::ToolResult { tool_use_id, content, is_error } => {
                            let content = if *is_error { format!("ERROR: {content}") } else { content.clone() };
                            messages.push(json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}));
                        }
                        Block::Text(t) => text.push_str(t),
                        _ => {}
                    }
                }
                if !text.trim().is_empty() {
                    messages.push(json!({"role": "user", "content": text}));
                }
            }
            Role::Assistant => {
                let text = m.text();
                let calls: Vec<Value> = m
                    .blocks
                    .iter()
                    .filter_map(|b| match b {
                        Block::ToolUse { id, name, input } => Some(json!({
                            "id": id, "type": "function",
                            "function": {"name": name, "arguments": match input {
                                Value::String(raw) => raw.clone(),
                                v => v.to_string(),
                            }}
                        })),
                        _ => None,
                    })
                    .collect();
                if text.trim().is_empty() && calls.is_empty() {
                    continue;
                }
                let mut msg = json!({"role": "assistant", "content": if text.trim().is_empty() { Value::Null } else { json!(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = json!(calls);
                }
                messages.push(msg);
            }
        }
    }
    let mut body = json!({"model": model, "messages": messages});
    let cap = if completion_tokens_field { "max_completion_tokens" } else { "max_tokens" };
    body[cap] = json!(req.max_tokens);
    if let Some(t) = req.temperature.filter(|_| super::takes_temperature(super::LlmProvider::OpenaiCompatible, model)) {
        body["temperature"] = json!(t);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema
                }})
            })
            .collect();
    }
    body
}

/// Parse a chat completions response: `content` (absent or `null` is no text), `tool_calls`,
/// `refusal`, `finish_reason` and the usage. Errors: not that shape.
pub fn parse_response(body: &str) -> Result<ChatResponse, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let choice = &v["choices"][0];
    let msg = &choice["message"];
    if msg.is_null() {
        return Err("no `choices[0].message`".into());
    }
    let mut blocks = Vec::new();
    if let Some(t) = msg["content"].as_str() {
        blocks.push(Block::Text(t.to_string()));
    }
    for c in msg["tool_calls"].as_array().into_iter().flatten() {
        let f = &c["function"];
        let raw = f["arguments"].as_str().unwrap_or("");
        let input = match serde_json::from_str::<Value>(raw) {
            Ok(v) if v.is_object() => v,
            _ => Value::String(raw.to_string()),
        };
        blocks.push(Block::ToolUse {
            id: c["id"].as_str().ok_or("a tool call without `id`")?.to_string(),
            name: f["name"].as_str().ok_or("a tool call without `function.name`")?.to_string(),
            input,
        });
    }
    let refusal = msg["refusal"].as_str().filter(|r| !r.is_empty()).map(str::to_string);
    let stop = if refusal.is_some() {
        StopReason::Refusal
    } else {
        match choice["finish_reason"].as_str() {
            Some("stop") => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            Some("tool_calls") => StopReason::ToolUse,
            Some("content_filter") => StopReason::ContentFilter,
            Some(other) => StopReason::Other(other.to_string()),
            None => StopReason::Other("none".into()),
        }
    };
    let u = &v["usage"];
    Ok(ChatResponse {
        blocks,
        stop,
        refusal,
        usage: Usage {
            input: u["prompt_tokens"].as_u64().unwrap_or(0),
            output: u["completion_tokens"].as_u64().unwrap_or(0),
            cache_read: u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0),
            cache_write: u["prompt_tokens_details"]["cache_write_tokens"].as_u64().unwrap_or(0),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::llm::{Message, ToolSpec};

    #[test]
    fn wire_format() {
        let msgs = [
            Message::user("hi"),
            Message {
                role: Role::Assistant,
                blocks: vec![Block::ToolUse {
                    id: "call_1".into(),
                    name: "read_file".into(),
                    input: json!({"path": "a"}),
                }],
            },
            Message {
                role: Role::User,
                blocks: vec![Block::ToolResult { tool_use_id: "call_1".into(), content: "x".into(), is_error: false }],
            },
            Message::assistant(""),
        ];
        let tools = [ToolSpec { name: "read_file", description: "d".into(), input_schema: json!({"type": "object"}) }];
        let req = ChatRequest {
            system: "sys",
            messages: &msgs,
            max_tokens: 100,
            temperature: Some(0.5),
            tools: &tools,
            cache: true,
        };
        let b = request_body("gpt-x", &req, false);
        let m = b["messages"].as_array().unwrap();
        assert_eq!(m.len(), 4, "system, user, assistant tool call, tool result; no empty assistant turn: {b}");
        assert_eq!(m[2]["content"], Value::Null);
        assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], r#"{"path":"a"}"#);
        assert_eq!(m[3]["role"], "tool");
        assert_eq!((b["max_tokens"].as_u64(), b.get("max_completion_tokens")), (Some(100), None));
        assert!((b["temperature"].as_f64().unwrap() - 0.5).abs() < 1e-6);
        let b = request_body("o3-mini", &req, true);
        assert_eq!((b["max_completion_tokens"].as_u64(), b.get("max_tokens")), (Some(100), None));
        assert!(b.get("temperature").is_none(), "reasoning models take no temperature: {b}");
        let r = parse_response(r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9,"prompt_tokens_details":{"cached_tokens":4}}}"#).unwrap();
        assert_eq!((r.text().as_str(), r.usage.input, r.usage.output, r.usage.cache_read), ("x", 7, 2, 4));
        assert!(parse_response(r#"{"choices":[]}"#).is_err());
    }

    #[test]
    fn null_content_tool_calls_refusal_and_filter() {
        let r = parse_response(r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"search","arguments":"{\"pattern\":\"fn\"}"}}]},"finish_reason":"tool_calls"}]}"#).unwrap();
        assert_eq!(r.stop, StopReason::ToolUse);
        assert_eq!(r.text(), "");
        assert_eq!(r.tool_uses().next(), Some(("call_9", "search", &json!({"pattern": "fn"}))));
        let r = parse_response(r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#).unwrap();
        assert_eq!((r.stop, r.refusal.as_deref()), (StopReason::Refusal, Some("I can't help with that.")));
        let r = parse_response(r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null},"finish_reason":"content_filter"}]}"#).unwrap();
        assert_eq!(r.stop, StopReason::ContentFilter);
    }
}
