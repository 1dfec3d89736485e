//! Anthropic Messages API (`POST {base}/v1/messages`, headers `x-api-key` and
//! `anthropic-version: 2023-06-01`): request body and response parsing.
//!
//! Request: `{"model", "max_tokens", "temperature", "system", "messages": [{"role", "content"}]}`.
//! Response: `{"content": [{"type": "text", "text"}…], "usage": {"input_tokens", "output_tokens"}}`.

use serde_json::{Value, json};

use super::{ChatRequest, ChatResponse, Role};

/// The `anthropic-version` header value.
pub const API_VERSION: &str = "2023-06-01";

/// The JSON body of a Messages API request.
pub fn request_body(model: &str, req: &ChatRequest<'_>) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": if m.role == Role::User { "user" } else { "assistant" }, "content": m.content}))
        .collect();
    json!({
        "model": model,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "system": req.system,
        "messages": messages,
    })
}

/// Parse a Messages API response: the text blocks joined, and the usage. Errors: not that shape.
pub fn parse_response(body: &str) -> Result<ChatResponse, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let blocks = v["content"].as_array().ok_or("no `content` array")?;
    let text: String =
        blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join("\n");
    Ok(ChatResponse {
        text,
        input_tokens: v["usage"]["input_tokens"].as_u64().unwrap_or(0)
            + v["usage"]["cache_creation_input_tokens"].as_u64().unwrap_or(0)
            + v["usage"]["cache_read_input_tokens"].as_u64().unwrap_or(0),
        output_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::llm::Message;

    #[test]
    fn wire_format() {
        let msgs = [Message { role: Role::User, content: "hi".into() }];
        let b = request_body(
            "claude-x",
            &ChatRequest { system: "sys", messages: &msgs, max_tokens: 100, temperature: 0.0 },
        );
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["system"], "sys");
        let r = parse_response(r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":3}}"#).unwrap();
        assert_eq!((r.text.as_str(), r.input_tokens, r.output_tokens), ("a\nb", 10, 3));
        assert!(parse_response("{}").is_err());
    }
}
