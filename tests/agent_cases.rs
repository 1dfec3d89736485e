//! The tool loop fixes the agent benchmark's three cases (a Rust compile error, a TypeScript type
//! error, a failing `node --test` test) through the real attempt steps (checkout → agent →
//! validate, real cargo / tsc / node) against the scripted Anthropic provider, which checks every
//! request against the SDK-derived schemas. `cargo bench --bench agent` prints their figures.

#[path = "fixtures/attempt/agent_cases.rs"]
mod cases;
mod support;

use cases::*;
use ci_healer::contract::Outcome;
use support::attempt::*;

async fn fixes(case: Case) {
    let repo = repo(&as_refs(&case.files));
    let replies: Vec<Reply> =
        case.tools.iter().map(|(text, calls)| anthropic_tools(*text, calls.clone(), (0, 0, 0, 0))).collect();
    let answers = replies.len();
    let llm = ScriptedLlm::start(replies).await.with_estimated_usage();
    let s = setup(&case, &llm.url, true, &tools_path());
    let run = run_local(&job(&repo, &s), &s, vec![]).await;
    let v = run.verdict();
    assert_eq!(v.outcome, Outcome::Passed, "{}: {v:?}\n{}", case.name, run.all_logs());
    // The whole transcript was played: every scripted answer was asked for, through the tools.
    assert_eq!(llm.requests().len(), answers, "{}", case.name);
    assert_eq!(llm.unserved(), 0, "{}", case.name);
    assert!(llm.requests()[0].body["tools"].as_array().is_some_and(|t| !t.is_empty()), "{}", case.name);
    let t = v.tokens.clone().expect("tokens");
    assert!(t.cache_read > 0 && t.cost_micro_usd.is_some_and(|c| c > 0), "{}: {t:?}", case.name);
    let diffstat = v.diffstat.clone().expect("diffstat");
    assert_eq!((diffstat.files, diffstat.insertions, diffstat.deletions), (1, 1, 1), "{}", case.name);
}

#[tokio::test]
async fn the_tool_loop_fixes_rust_build() {
    fixes(rust_build()).await;
}

#[tokio::test]
async fn the_tool_loop_fixes_frontend_types() {
    fixes(frontend_types()).await;
}

#[tokio::test]
async fn the_tool_loop_fixes_frontend_test() {
    fixes(frontend_test()).await;
}
