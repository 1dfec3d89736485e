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

#[path = "../tests/fixtures/attempt/agent_cases.rs"]
mod cases;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use cases::*;
use ci_healer::contract::Outcome;
use serde_json::Value;
use support::attempt::*;

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
