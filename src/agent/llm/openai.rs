//! OpenAI chat completions (`POST {base}/chat/completions`, `Authorization: Bearer <key>`), as
//! OpenAI, Gemini's OpenAI-compatible endpoint, Grok, vLLM and Ollama serve it.
//!
//! Request: `{"model", "messages": [{"role": "system"|"user"|"assistant", "content"}], "temperature",
//! "max_tokens"}`. Response: `choices[0].message.content`, `usage.prompt_tokens`, `usage.completion_tokens`.

use serde_json::{Value, json};

use super::{ChatRequest, ChatResponse, Role};

/// The JSON body of a chat completions request.
pub fn request_body(model: &str, req: &ChatRequest<'_>) -> Value {
    let mut messages = vec![json!({"role": "system", "content": req.system})];
    messages.extend(
        req.messages
            .iter()
            .map(|m| json!({"role": if m.role == Role::User { "user" } else { "assistant" }, "content": m.content})),
    );
    json!({
        "model": model,
        "messages": messages,
        "temperature": req.temperature,
        "max_tokens": req.max_tokens,
    })
}

/// Parse a chat completions response. Errors: not that shape.
pub fn parse_response(body: &str) -> Result<ChatResponse, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let msg = &v["choices"][0]["message"];
    if msg.is_null() {
        return Err("no `choices[0].message`".into());
    }
    Ok(ChatResponse {
        text: msg["content"].as_str().unwrap_or("").to_string(),
        input_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::llm::Message;

    #[test]
    fn wire_format() {
        let msgs = [
            Message { role: Role::User, content: "hi".into() },
            Message { role: Role::Assistant, content: "ok".into() },
        ];
        let b =
            request_body("gpt-x", &ChatRequest { system: "sys", messages: &msgs, max_tokens: 100, temperature: 0.5 });
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][2]["role"], "assistant");
        let r = parse_response(r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}"#).unwrap();
        assert_eq!((r.text.as_str(), r.input_tokens, r.output_tokens), ("x", 7, 2));
        assert!(parse_response(r#"{"choices":[]}"#).is_err());
    }
}
