//! Attempt pod benchmark: the fmt and clippy cases run through the real steps (prepare → checkout →
//! agent → validate) as local processes, timed from the first step's start to the verdict, with the
//! bytes read and written by all step processes and their tools (Linux `/proc/self/io` deltas: a
//! process's counters include the children it has waited for).
//!
//! `cargo bench --bench attempt` (env `ATTEMPT_BENCH_ITERS`, default 5).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use ci_healer::runner::local::IoCounters;
use support::attempt::*;

struct Sample {
    total: Duration,
    steps: Vec<(String, f64)>,
    io: IoCounters,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / (1024.0 * 1024.0))
}

fn main() {
    let iters: usize = std::env::var("ATTEMPT_BENCH_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let fmt = crate_files(
        "pub fn add(a: i32,b: i32)->i32{a+b}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() { assert_eq!(super::add(1, 2), 3); }\n}\n",
    );
    let clippy = crate_files(
        "pub fn next(x: i32) -> i32 {\n    return x + 1;\n}\n\npub fn empty(v: &[i32]) -> bool {\n    v.len() == 0\n}\n",
    );
    type Case = (&'static str, Vec<(&'static str, String)>, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        ("rust_fmt", fmt, "rust_fmt", "Diff in /src/lib.rs at line 1:\n"),
        ("rust_clippy", clippy, "rust_clippy", "error: unneeded `return` statement\n --> src/lib.rs:2:5\n"),
    ];
    println!(
        "attempt pod benchmark: {iters} iteration(s) per case, medians (cold target dir each run: every attempt pod starts empty)\n"
    );
    println!(
        "| case        | pod start → verdict (s) | checkout (s) | agent (s) | validate (s) | read (MiB, rchar) | written (MiB, wchar) | disk read (MiB) | disk written (MiB) | outcome |"
    );
    println!(
        "|-------------|-------------------------|--------------|-----------|--------------|-------------------|----------------------|-----------------|--------------------|---------|"
    );
    for (name, files, class, excerpt) in cases {
        let repo = repo(&as_refs(&files));
        let setup = AttemptSetup::new("rust", class, excerpt);
        let job = job(&repo, &setup);
        let mut samples = Vec::new();
        let mut outcome = String::new();
        for _ in 0..iters {
            let before = IoCounters::of_self().unwrap_or_default();
            let run = rt.block_on(run_local(&job, &setup, vec![]));
            let io = IoCounters::of_self().unwrap_or_default().since(&before);
            let v = run.verdict();
            outcome = format!("{:?}/{}", v.outcome, v.reason);
            let d = v.durations.clone().unwrap_or_default();
            samples.push(Sample {
                total: run.elapsed,
                steps: vec![
                    ("checkout".into(), d.checkout_seconds.unwrap_or(0.0)),
                    ("agent".into(), d.agent_seconds.unwrap_or(0.0)),
                    ("validate".into(), d.validate_seconds.unwrap_or(0.0)),
                ],
                io,
            });
        }
        let m = |f: &dyn Fn(&Sample) -> f64| median(samples.iter().map(f).collect());
        let step = |i: usize| m(&|s: &Sample| s.steps[i].1);
        println!(
            "| {name:<11} | {:>23.2} | {:>12.2} | {:>9.2} | {:>12.2} | {:>17} | {:>20} | {:>15} | {:>18} | {outcome} |",
            m(&|s| s.total.as_secs_f64()),
            step(0),
            step(1),
            step(2),
            mib(m(&|s| s.io.rchar as f64) as u64),
            mib(m(&|s| s.io.wchar as f64) as u64),
            mib(m(&|s| s.io.read_bytes as f64) as u64),
            mib(m(&|s| s.io.write_bytes as f64) as u64),
        );
    }
}
