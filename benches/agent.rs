//! Agent benchmark: scripted provider sessions on three small real repositories (a Rust compile
//! error, a TypeScript type error, a failing `node --test` test), each run through the real attempt
//! steps (checkout → agent → validate, real cargo / tsc / node) twice: with the tool loop (Anthropic
//! tool use) and with the single-shot diff format (`toolUse: false`), against the loopback provider.
//!
//! The transcripts are written in the API's real shapes; the token counts are not scripted: the
//! loopback estimates them from what ci-healer actually sends (4 bytes a token) and models
//! Anthropic's prompt cache (a prefix up to a `cache_control` breakpoint seen before is read, a new
//! one written). Cost uses the price table below (USD per million tokens). Prints one row per case
//! and mode: outcome, turns, requests, tokens (input, of which cache reads and writes; output), cost
//! and wall time.
//!
//! `cargo bench --bench agent` (env `AGENT_BENCH_ITERS`, default 3; medians of the wall time).

#[path = "../tests/fixtures/attempt/common.rs"]
mod common;

use std::time::Duration;

use ci_healer::contract::Outcome;
use common::*;
use serde_json::{Value, json};

/// List prices of claude-sonnet-4-5 (USD per million tokens): input, output, cache read, cache write.
const PRICE: [&str; 4] = ["3", "15", "0.30", "3.75"];

struct Case {
    name: &'static str,
    class: &'static str,
    profile: &'static str,
    files: Vec<(&'static str, String)>,
    excerpt: &'static str,
    validation: &'static str,
    /// The tool-loop transcript: one entry per answer (optional text, tool calls).
    tools: Vec<(Option<&'static str>, Vec<Value>)>,
    /// The single-shot answer (diagnosis and a diff).
    diff: &'static str,
}

fn rust_build() -> Case {
    let lib = "/// The port to listen on, from `PORT` or 8080.\npub fn port(var: Option<&str>) -> u16 {\n    var.and_then(|v| v.parse().ok()).unwrap_or(\"8080\")\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn default_port() {\n        assert_eq!(super::port(None), 8080);\n    }\n}\n";
    Case {
        name: "rust_build",
        class: "rust_compile",
        profile: "rust",
        files: crate_files(lib),
        excerpt: "error[E0308]: mismatched types\n --> src/lib.rs:3:48\n  |\n3 |     var.and_then(|v| v.parse().ok()).unwrap_or(\"8080\")\n  |                                      --------- ^^^^^^ expected `u16`, found `&str`\n  |                                      |\n  |                                      arguments to this method are incorrect\n\nFor more information about this error, try `rustc --explain E0308`.\nerror: could not compile `demo` (lib) due to 1 previous error\n",
        validation: "cargo build --all-targets --quiet",
        tools: vec![
            (
                Some("The default is a string literal where a `u16` is expected."),
                vec![tool_use("toolu_01", "read_file", json!({"path": "src/lib.rs"}))],
            ),
            (
                None,
                vec![tool_use(
                    "toolu_02",
                    "edit_file",
                    json!({"path": "src/lib.rs", "old_string": ".unwrap_or(\"8080\")", "new_string": ".unwrap_or(8080)"}),
                )],
            ),
            (None, vec![tool_use("toolu_03", "run_validation", json!({}))]),
            (
                None,
                vec![tool_use(
                    "toolu_04",
                    "finish",
                    json!({"diagnosis": "`port` fell back to the string \"8080\" where a u16 is expected; it now falls back to 8080."}),
                )],
            ),
        ],
        diff: "Diagnosis: `port` falls back to the string \"8080\" where a u16 is expected.\n\n```diff\ndiff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,4 +1,4 @@\n /// The port to listen on, from `PORT` or 8080.\n pub fn port(var: Option<&str>) -> u16 {\n-    var.and_then(|v| v.parse().ok()).unwrap_or(\"8080\")\n+    var.and_then(|v| v.parse().ok()).unwrap_or(8080)\n }\n```\n",
    }
}

fn frontend_types() -> Case {
    let user = "export interface User {\n  name: string;\n  email: string;\n}\n\nexport function greet(user: User): string {\n  return `Hello, ${user.nmae}!`;\n}\n";
    let files = vec![
        ("package.json", "{\n  \"name\": \"demo-web\",\n  \"private\": true,\n  \"type\": \"module\",\n  \"scripts\": { \"typecheck\": \"tsc --noEmit -p .\" }\n}\n".to_string()),
        ("tsconfig.json", "{\n  \"compilerOptions\": { \"strict\": true, \"target\": \"ES2022\", \"module\": \"ES2022\", \"moduleResolution\": \"bundler\", \"noEmit\": true },\n  \"include\": [\"src\"]\n}\n".to_string()),
        ("src/user.ts", user.to_string()),
        ("src/index.ts", "import { greet } from \"./user\";\n\nconsole.log(greet({ name: \"Ada\", email: \"ada@example.com\" }));\n".to_string()),
    ];
    Case {
        name: "frontend_types",
        class: "frontend_types",
        profile: "frontend",
        files,
        excerpt: "> demo-web@ typecheck\n> tsc --noEmit -p .\n\nsrc/user.ts(7,26): error TS2551: Property 'nmae' does not exist on type 'User'. Did you mean 'name'?\n##[error]Process completed with exit code 2.\n",
        validation: "tsc --noEmit -p .",
        tools: vec![
            (None, vec![tool_use("toolu_01", "search", json!({"pattern": "nmae"}))]),
            (
                Some("A typo: `nmae` for `name`."),
                vec![tool_use(
                    "toolu_02",
                    "edit_file",
                    json!({"path": "src/user.ts", "old_string": "user.nmae", "new_string": "user.name"}),
                )],
            ),
            (None, vec![tool_use("toolu_03", "run_validation", json!({}))]),
            (
                None,
                vec![tool_use(
                    "toolu_04",
                    "finish",
                    json!({"diagnosis": "greet read the misspelt property `nmae`; it reads `name`."}),
                )],
            ),
        ],
        diff: "Diagnosis: `greet` reads the misspelt property `nmae`.\n\n```diff\ndiff --git a/src/user.ts b/src/user.ts\n--- a/src/user.ts\n+++ b/src/user.ts\n@@ -5,5 +5,5 @@ export interface User {\n \n export function greet(user: User): string {\n-  return `Hello, ${user.nmae}!`;\n+  return `Hello, ${user.name}!`;\n }\n```\n",
    }
}

fn frontend_test() -> Case {
    let files = vec![
        ("package.json", "{\n  \"name\": \"demo-cart\",\n  \"private\": true,\n  \"type\": \"module\",\n  \"scripts\": { \"test\": \"node --test\" }\n}\n".to_string()),
        ("src/cart.js", "/** Total price of the items, in cents. */\nexport function total(items) {\n  return items.reduce((sum, item) => sum + item.price, 0) * (items.length > 0 ? 1 : 0) - items.length;\n}\n".to_string()),
        ("test/cart.test.js", "import { test } from \"node:test\";\nimport assert from \"node:assert/strict\";\nimport { total } from \"../src/cart.js\";\n\ntest(\"sums the prices\", () => {\n  assert.equal(total([{ price: 250 }, { price: 100 }]), 350);\n});\n\ntest(\"empty cart\", () => {\n  assert.equal(total([]), 0);\n});\n".to_string()),
    ];
    Case {
        name: "frontend_test",
        class: "frontend_test",
        profile: "frontend",
        files,
        excerpt: "> demo-cart@ test\n> node --test\n\n✖ sums the prices (1.1ms)\n  AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:\n\n  348 !== 350\n\n      at TestContext.<anonymous> (file:///home/runner/work/demo-cart/demo-cart/test/cart.test.js:6:10)\nℹ tests 2\nℹ pass 1\nℹ fail 1\n",
        validation: "node --test",
        tools: vec![
            (
                None,
                vec![
                    tool_use("toolu_01", "read_file", json!({"path": "test/cart.test.js"})),
                    tool_use("toolu_02", "read_file", json!({"path": "src/cart.js"})),
                ],
            ),
            (
                Some("`total` subtracts the item count."),
                vec![tool_use(
                    "toolu_03",
                    "edit_file",
                    json!({"path": "src/cart.js", "old_string": "  return items.reduce((sum, item) => sum + item.price, 0) * (items.length > 0 ? 1 : 0) - items.length;\n", "new_string": "  return items.reduce((sum, item) => sum + item.price, 0);\n"}),
                )],
            ),
            (None, vec![tool_use("toolu_04", "run_validation", json!({}))]),
            (
                None,
                vec![tool_use(
                    "toolu_05",
                    "finish",
                    json!({"diagnosis": "total subtracted one cent per item; it now sums the prices."}),
                )],
            ),
        ],
        diff: "Diagnosis: `total` subtracts one cent per item.\n\n```diff\ndiff --git a/src/cart.js b/src/cart.js\n--- a/src/cart.js\n+++ b/src/cart.js\n@@ -1,4 +1,4 @@\n /** Total price of the items, in cents. */\n export function total(items) {\n-  return items.reduce((sum, item) => sum + item.price, 0) * (items.length > 0 ? 1 : 0) - items.length;\n+  return items.reduce((sum, item) => sum + item.price, 0);\n }\n```\n",
    }
}

struct Row {
    outcome: String,
    turns: u64,
    requests: u64,
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
    cost_micros: u64,
    wall: Duration,
}

fn setup(case: &Case, url: &str, tools: bool, path: &str) -> AttemptSetup {
    let mut s = AttemptSetup::new(case.profile, case.class, case.excerpt);
    s.settings.fixers = Some(vec![]);
    s.settings.validation_commands = vec![format!("PATH={path} {}", case.validation)];
    let mut llm = llm_settings("anthropic", url);
    llm.max_turns = 3;
    llm.max_tokens_per_turn = 4096;
    llm.tool_use = tools;
    llm.price = Some(ci_healer::contract::settings::ModelPrice {
        input: PRICE[0].into(),
        output: PRICE[1].into(),
        cache_read: Some(PRICE[2].into()),
        cache_write: Some(PRICE[3].into()),
    });
    s.settings.llm = Some(llm);
    s.llm_key = Some("bench-key-0123456789".into());
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn run_case(case: &Case, tools: bool, iters: usize, path: &str) -> Row {
    let repo = repo(&as_refs(&case.files));
    let mut walls = Vec::new();
    let mut row = None;
    for _ in 0..iters {
        let replies: Vec<Reply> = if tools {
            case.tools.iter().map(|(text, calls)| anthropic_tools(*text, calls.clone(), (0, 0, 0, 0))).collect()
        } else {
            vec![anthropic_text(case.diff, 0, 0)]
        };
        let llm = ScriptedLlm::start(replies).await.with_estimated_usage();
        let s = setup(case, &llm.url, tools, path);
        let run = run_local(&job(&repo, &s), &s, vec![]).await;
        walls.push(run.elapsed);
        let v = run.verdict();
        let rec: Value = serde_json::from_str(
            &std::fs::read_to_string(run.dirs.volumes.join("workspace/.healer/agent.json")).unwrap_or_default(),
        )
        .unwrap_or_default();
        let n = |k: &str| rec[k].as_u64().unwrap_or(0);
        let t = v.tokens.clone().unwrap_or_default();
        row = Some(Row {
            outcome: format!("{:?} {}", v.outcome, v.reason),
            turns: n("turns"),
            requests: n("requests"),
            input: t.input as u64,
            cache_read: t.cache_read as u64,
            cache_write: t.cache_write as u64,
            output: t.output as u64,
            cost_micros: t.cost_micro_usd.unwrap_or(0) as u64,
            wall: Duration::ZERO,
        });
        assert_eq!(
            v.outcome,
            Outcome::Passed,
            "{} ({}): {v:?}\n{}",
            case.name,
            if tools { "tools" } else { "diff" },
            run.all_logs()
        );
    }
    let mut r = row.unwrap();
    r.wall = median(walls);
    r
}

fn main() {
    let iters: usize = std::env::var("AGENT_BENCH_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    let path = tools_path();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "agent benchmark: scripted Anthropic sessions through the real steps; tokens estimated by the loopback (4 bytes/token, prompt cache modelled); prices ${}/${}/${}/${} per MTok (input/output/cache read/cache write); wall time median of {iters}\n",
        PRICE[0], PRICE[1], PRICE[2], PRICE[3]
    );
    println!(
        "| case | mode | outcome | turns | requests | input tokens | of which cache reads | cache writes | output tokens | cost (USD) | wall (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for case in [rust_build(), frontend_types(), frontend_test()] {
        for tools in [true, false] {
            let r = rt.block_on(run_case(&case, tools, iters, &path));
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |",
                case.name,
                if tools { "tool loop" } else { "single-shot diff" },
                r.outcome,
                r.turns,
                r.requests,
                r.input,
                r.cache_read,
                r.cache_write,
                r.output,
                ci_healer::agent::cost::format_usd(r.cost_micros),
                r.wall.as_secs_f64()
            );
        }
    }
}
