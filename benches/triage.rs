//! `cargo bench --bench triage`: triage quality and cost on the labelled real logs.
//!
//! Two labelled sets, each a `labels.csv` (path, category, ground-truth file …):
//! - the team's shared data (`$CIHEALER_SHARED_DATA`, default `<crate>/../shared/data`,
//!   `logs/labels.csv`), skipped with a note when absent;
//! - the corpus in the repository (`tests/fixtures/triage/corpus/labels.csv`: real tool output
//!   made by `make_corpus.py`, with a `kind` and `language` column).
//!
//! It prints a markdown table:
//! - routing accuracy per category (rust → rust, frontend → frontend, infrastructure → infrastructure,
//!   github_workflow → general, other → general) and per kind, from the log alone (no names, no
//!   changed files);
//! - extraction hit rate: logs with ground truth (`*.ok.txt` parsed diagnostics, `*.groundtruth` line
//!   ranges, clippy `//~` markers in `*.source.rs`) whose labelled failure lines appear in the
//!   excerpt (a log hits when ≥ 80 % of its labelled lines do; the strict 100 % rate is shown too);
//! - throughput in MB/s over both sets on one thread (looped until ≥ 1 s of thread CPU time), next
//!   to a bare baseline measured in the same run (UTF-8 validation and a newline count over the same
//!   bytes: the floor any line-based reader pays);
//! - the `healer triage --file` process on a small log against a bare `healer --version` process,
//!   medians of interleaved runs (the difference is what triage costs beyond process start);
//! - peak heap memory while triaging the largest log (a counting global allocator);
//! - every log that is misrouted or whose labelled lines are missing, and why.
//!
//! The report is also written into `docs/triage-bench.md` between `<!-- bench:start -->` and
//! `<!-- bench:end -->`, and its main table into `README.md` between `<!-- triage-bench:start -->`
//! and `<!-- triage-bench:end -->` (the rest of both files is kept).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ci_healer::triage::{RoutingConfig, TriageInput, TriageResult, triage};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Minimal RFC 4180 CSV reader (quoted fields, doubled quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn data_dir() -> PathBuf {
    match std::env::var_os("CIHEALER_SHARED_DATA") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    }
}

fn expected_profile(category: &str) -> &'static str {
    match category {
        "rust" => "rust",
        "frontend" => "frontend",
        "infrastructure" => "infrastructure",
        _ => "general",
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Ground-truth probes for one log: strings that must appear in the excerpt (line mode: whole trimmed
/// lines; substring mode: collapsed-whitespace substrings).
enum Truth {
    Lines(Vec<String>),
    Substrings(Vec<String>),
}

fn ground_truth(dir: &Path, log_path: &Path, log_bytes: &[u8], gt_file: &str) -> Option<Truth> {
    if gt_file.is_empty() {
        return None;
    }
    let gt = std::fs::read_to_string(dir.join(gt_file)).ok()?;
    if gt_file.ends_with(".ok.txt") {
        // `file|line col N severity| message`, continuation lines without `|` extend the message.
        let mut probes: Vec<String> = Vec::new();
        for l in gt.lines() {
            match l.splitn(3, '|').nth(2) {
                Some(msg) => probes.push(collapse(msg)),
                None if !l.trim().is_empty() => {
                    if let Some(last) = probes.last_mut() {
                        last.push(' ');
                        last.push_str(&collapse(l));
                    }
                }
                None => {}
            }
        }
        probes.retain(|p| !p.is_empty());
        return Some(Truth::Substrings(probes));
    }
    if gt_file.ends_with(".groundtruth") {
        let text = String::from_utf8_lossy(log_bytes);
        let raw: Vec<&str> = text.split('\n').collect();
        let mut lines = Vec::new();
        for l in gt.lines() {
            let Some(range) = l.strip_prefix("E ") else { continue };
            let (a, b) = match range.split_once('-') {
                Some((a, b)) => (a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?),
                None => {
                    let a = range.trim().parse::<usize>().ok()?;
                    (a, a)
                }
            };
            for n in a..=b {
                if let Some(r) = raw.get(n - 1) {
                    let t = ci_healer::triage::extract::display_text(r);
                    let t = t.trim();
                    if !t.is_empty() {
                        lines.push(t.to_string());
                    }
                }
            }
        }
        return Some(Truth::Lines(lines));
    }
    if gt_file.ends_with(".source.rs") {
        // `//~^^ lint` marks the line `^`-count lines above; `//~|` repeats the previous line.
        let log_text = String::from_utf8_lossy(log_bytes);
        let file = log_text
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("--> "))
            .and_then(|l| l.split(':').next())?
            .to_string();
        let mut probes = Vec::new();
        for (i, l) in gt.lines().enumerate() {
            if let Some(p) = l.find("//~") {
                let rest = &l[p + 3..];
                let carets = rest.chars().take_while(|&c| c == '^').count();
                if rest.starts_with('|') {
                    continue;
                }
                let line = i + 1 - carets;
                probes.push(format!("{file}:{line}:"));
            }
        }
        probes.dedup();
        let _ = log_path;
        return Some(Truth::Substrings(probes));
    }
    None
}

fn recall(truth: &Truth, excerpt: &str) -> (usize, usize) {
    match truth {
        Truth::Lines(lines) => {
            let set: HashSet<&str> = excerpt.lines().map(str::trim).collect();
            let hit = lines.iter().filter(|l| set.contains(l.as_str()) || excerpt.contains(l.as_str())).count();
            (hit, lines.len())
        }
        Truth::Substrings(ps) => {
            let ex = collapse(excerpt);
            let hit = ps.iter().filter(|p| ex.contains(p.as_str())).count();
            (hit, ps.len())
        }
    }
}

/// This thread's CPU time in ns (Linux `/proc/thread-self/schedstat`, first field), if available.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

fn run(log: &[u8], routing: &RoutingConfig) -> TriageResult {
    triage(&TriageInput { log, ..Default::default() }, routing)
}

struct Case {
    set: &'static str,
    dir: PathBuf,
    path: String,
    category: String,
    subcategory: String,
    kind: String,
    language: String,
    bytes: Vec<u8>,
    gt_file: String,
}

fn load(set: &'static str, dir: &Path, labels: &Path, out: &mut Vec<Case>) -> Result<usize, String> {
    let text = std::fs::read_to_string(labels).map_err(|e| format!("{}: {e}", labels.display()))?;
    let rows = parse_csv(&text);
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name);
    let need = |name: &str| col(name).ok_or_else(|| format!("{} has no column {name}", labels.display()));
    let (c_path, c_cat, c_gt) = (need("path")?, need("category")?, need("ground_truth_file")?);
    let (c_sub, c_kind, c_lang) = (col("subcategory"), col("kind"), col("language"));
    let before = out.len();
    for r in &rows[1..] {
        if r.len() <= c_gt {
            continue;
        }
        let Ok(bytes) = std::fs::read(dir.join(&r[c_path])) else {
            eprintln!("missing {}", r[c_path]);
            continue;
        };
        let get = |c: Option<usize>| c.and_then(|c| r.get(c)).cloned().unwrap_or_default();
        out.push(Case {
            set,
            dir: dir.to_path_buf(),
            path: r[c_path].clone(),
            category: r[c_cat].clone(),
            subcategory: get(c_sub),
            kind: get(c_kind),
            language: get(c_lang),
            bytes,
            gt_file: r[c_gt].clone(),
        });
    }
    Ok(out.len() - before)
}

fn pct(k: usize, n: usize) -> String {
    if n == 0 { "–".into() } else { format!("{k}/{n} = {:.1} %", 100.0 * k as f64 / n as f64) }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Wall time of one process run, in ms.
fn time_process(bin: &Path, args: &[&str]) -> f64 {
    let t = Instant::now();
    let out = Command::new(bin).args(args).output().expect("run healer");
    assert!(out.status.success(), "healer {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = data_dir();
    let corpus = crate_dir.join("tests/fixtures/triage/corpus");
    let routing = RoutingConfig::default();
    let mut cases = Vec::new();
    let mut sources = Vec::new();
    match load("shared", &shared, &shared.join("logs/labels.csv"), &mut cases) {
        Ok(n) => sources.push(format!("`shared/data/logs/labels.csv` ({n} logs)")),
        Err(e) => eprintln!("shared data skipped: {e} (set CIHEALER_SHARED_DATA)"),
    }
    match load("corpus", &corpus, &corpus.join("labels.csv"), &mut cases) {
        Ok(n) => sources.push(format!("`tests/fixtures/triage/corpus/labels.csv` ({n} logs)")),
        Err(e) => eprintln!("corpus skipped: {e}"),
    }
    if cases.is_empty() {
        eprintln!("no labelled logs");
        return;
    }

    // Routing and extraction.
    let mut per_cat: BTreeMap<String, [(usize, usize); 2]> = BTreeMap::new();
    let mut per_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misroutes = Vec::new();
    let mut extraction = Vec::new();
    let mut recognised = (0usize, 0usize);
    for c in &cases {
        let r = run(&c.bytes, &routing);
        let want = expected_profile(&c.category);
        let si = usize::from(c.set == "corpus");
        let e = &mut per_cat.entry(c.category.clone()).or_default()[si];
        e.1 += 1;
        recognised.1 += 1;
        if r.failure_class != "unknown" {
            recognised.0 += 1;
        }
        let ok = r.profile == want;
        if ok {
            e.0 += 1;
        }
        if !c.kind.is_empty() {
            let k = per_kind.entry(c.kind.clone()).or_default();
            k.1 += 1;
            k.0 += usize::from(ok);
        }
        if !ok {
            let eco = match (r.ecosystem, r.ecosystem_confidence) {
                (Some(e), Some(x)) => format!("{} {x:.2}", e.as_str()),
                _ => "none".into(),
            };
            let why = match r.diagnostics.first() {
                Some(d) => format!(
                    "first diagnostic: {} `{}`",
                    d.tool.as_str(),
                    d.message.chars().take(60).collect::<String>().replace('|', "/")
                ),
                None => "no diagnostic".into(),
            };
            let label = if c.subcategory.is_empty() { &c.kind } else { &c.subcategory };
            misroutes.push(format!(
                "| `{}` | {} ({}) | {} | {} ({}, {:.2}; ecosystem {eco}) | {why} |",
                c.path, c.category, label, want, r.profile, r.failure_class, r.confidence
            ));
        }
        if let Some(truth) = ground_truth(&c.dir, Path::new(&c.path), &c.bytes, &c.gt_file) {
            let (hit, total) = recall(&truth, &r.excerpt);
            let missing: Vec<String> = match &truth {
                Truth::Lines(ls) => ls.iter().filter(|l| !r.excerpt.contains(l.as_str())).take(2).cloned().collect(),
                Truth::Substrings(ps) => {
                    let ex = collapse(&r.excerpt);
                    ps.iter().filter(|p| !ex.contains(p.as_str())).take(2).cloned().collect()
                }
            };
            extraction.push((c.set, c.path.clone(), hit, total, r.excerpt.len(), missing));
        }
    }

    // Throughput: both sets, one thread, ≥ 1 s of this thread's CPU time (the machine may be
    // shared); the bare baseline over the same bytes in the same run.
    let total_bytes: usize = cases.iter().map(|c| c.bytes.len()).sum();
    let measure = |f: &dyn Fn(&[u8])| -> (usize, f64, f64) {
        let cpu0 = thread_cpu_ns();
        let start = Instant::now();
        let mut iters = 0usize;
        loop {
            for c in &cases {
                f(std::hint::black_box(&c.bytes));
            }
            iters += 1;
            let cpu = match (cpu0, thread_cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64 / 1e9,
                _ => start.elapsed().as_secs_f64(),
            };
            if (cpu >= 1.0 && iters >= 3) || start.elapsed() > Duration::from_secs(30) {
                return (iters, cpu, start.elapsed().as_secs_f64());
            }
        }
    };
    let (iters, cpu, wall) = measure(&|b| {
        std::hint::black_box(run(b, &routing));
    });
    let (b_iters, b_cpu, _) = measure(&|b| {
        let ok = std::str::from_utf8(b).is_ok();
        std::hint::black_box((ok, memchr::memchr_iter(b'\n', b).count()));
    });
    let mbps = (total_bytes * iters) as f64 / cpu / 1e6;
    let wall_mbps = (total_bytes * iters) as f64 / wall / 1e6;
    let base_mbps = (total_bytes * b_iters) as f64 / b_cpu / 1e6;

    // The process: `healer triage --file <small log>` against `healer --version`.
    let small = cases
        .iter()
        .filter(|c| (1000..=4000).contains(&c.bytes.len()))
        .min_by_key(|c| c.bytes.len().abs_diff(2048))
        .unwrap_or(&cases[0]);
    let small_path = small.dir.join(&small.path);
    let bin = Path::new(env!("CARGO_BIN_EXE_healer"));
    let small_arg = small_path.to_string_lossy().to_string();
    let (mut bare, mut tri) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        time_process(bin, &["--version"]);
        time_process(bin, &["triage", "--file", &small_arg]);
    }
    for _ in 0..40 {
        bare.push(time_process(bin, &["--version"]));
        tri.push(time_process(bin, &["triage", "--file", &small_arg]));
    }
    let (bare_ms, tri_ms) = (median(bare), median(tri));

    // Peak memory on the largest log.
    let largest = cases.iter().max_by_key(|c| c.bytes.len()).expect("at least one log");
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = run(&largest.bytes, &routing);
    let peak = PEAK.load(Ordering::Relaxed) - base;
    drop(r);

    // Report.
    let mut t = String::new();
    let _ = writeln!(t, "Command: `cargo bench --bench triage` (release, one thread; data: {})\n", sources.join(", "));
    let _ = writeln!(t, "| metric | shared set | corpus | all | goal |");
    let _ = writeln!(t, "|---|---|---|---|---|");
    let mut tot = [(0usize, 0usize); 3];
    for (cat, v) in &per_cat {
        let all = (v[0].0 + v[1].0, v[0].1 + v[1].1);
        for (i, x) in [v[0], v[1], all].into_iter().enumerate() {
            tot[i].0 += x.0;
            tot[i].1 += x.1;
        }
        let _ = writeln!(
            t,
            "| routing: {cat} (→ {}) | {} | {} | {} | |",
            expected_profile(cat),
            pct(v[0].0, v[0].1),
            pct(v[1].0, v[1].1),
            pct(all.0, all.1)
        );
    }
    let _ = writeln!(
        t,
        "| **routing accuracy, overall** | {} | {} | **{}** | ≥ 95 % |",
        pct(tot[0].0, tot[0].1),
        pct(tot[1].0, tot[1].1),
        pct(tot[2].0, tot[2].1)
    );
    let _ = writeln!(t, "| logs recognised (class not `unknown`) | | | {} | |", pct(recognised.0, recognised.1));
    let ext = |set: Option<&str>, strict: bool| {
        let v: Vec<_> = extraction.iter().filter(|e| set.is_none_or(|s| e.0 == s)).collect();
        let hits = v.iter().filter(|e| if strict { e.2 == e.3 } else { e.3 == 0 || e.2 * 5 >= e.3 * 4 }).count();
        pct(hits, v.len())
    };
    let _ = writeln!(
        t,
        "| **extraction hit rate** (≥ 80 % of labelled lines in the excerpt) | {} | {} | **{}** | ≥ 90 % |",
        ext(Some("shared"), false),
        ext(Some("corpus"), false),
        ext(None, false)
    );
    let _ = writeln!(
        t,
        "| extraction hit rate, strict (100 % of labelled lines) | {} | {} | {} | |",
        ext(Some("shared"), true),
        ext(Some("corpus"), true),
        ext(None, true)
    );
    let (lh, ln) = extraction.iter().fold((0, 0), |(a, b), e| (a + e.2, b + e.3));
    let _ = writeln!(t, "| labelled lines found in excerpts | | | {} | |", pct(lh, ln));
    let _ = writeln!(
        t,
        "| **throughput, one core** ({} logs, {:.2} MB, {iters} passes, {cpu:.2} s of thread CPU time) | | | **{mbps:.0} MB/s** | ≥ 200 MB/s |",
        cases.len(),
        total_bytes as f64 / 1e6
    );
    let _ = writeln!(
        t,
        "| throughput, wall clock ({wall:.2} s; lower when the machine is shared) | | | {wall_mbps:.0} MB/s | |"
    );
    let _ = writeln!(
        t,
        "| bare baseline: UTF-8 check + newline count over the same bytes, one core | | | {base_mbps:.0} MB/s | |"
    );
    let _ = writeln!(
        t,
        "| **`healer triage --file` beyond process start** (`{}`, {} bytes; median of 40 interleaved runs: triage {tri_ms:.2} ms, bare `healer --version` {bare_ms:.2} ms) | | | **{:.2} ms** | ≤ 5 ms |",
        small.path,
        small.bytes.len(),
        tri_ms - bare_ms
    );
    let _ = writeln!(
        t,
        "| peak heap while triaging the largest log (`{}`, {} bytes) | | | {} bytes ({:.1}× the log) | |",
        largest.path,
        largest.bytes.len(),
        peak,
        peak as f64 / largest.bytes.len() as f64
    );
    if !per_kind.is_empty() {
        let _ = writeln!(t, "\nRouting per kind (corpus):\n\n| kind | routed right |\n|---|---|");
        for (k, (a, n)) in &per_kind {
            let _ = writeln!(t, "| {k} | {} |", pct(*a, *n));
        }
        let mut langs: BTreeMap<&str, usize> = BTreeMap::new();
        for c in cases.iter().filter(|c| c.set == "corpus") {
            *langs.entry(c.language.as_str()).or_default() += 1;
        }
        let _ = writeln!(
            t,
            "\nCorpus languages: {}.",
            langs.iter().map(|(l, n)| format!("{l} {n}")).collect::<Vec<_>>().join(", ")
        );
    }
    if !misroutes.is_empty() {
        let _ = writeln!(
            t,
            "\nMisrouted logs:\n\n| log | label | expected | got (class, confidence; ecosystem) | why |\n|---|---|---|---|---|"
        );
        for m in &misroutes {
            let _ = writeln!(t, "{m}");
        }
    }
    let misses: Vec<_> = extraction.iter().filter(|e| e.2 != e.3).collect();
    if !misses.is_empty() {
        let _ = writeln!(
            t,
            "\nLogs whose labelled lines are not all in the excerpt:\n\n| log | labelled lines found | excerpt bytes | first missing |\n|---|---|---|---|"
        );
        for (set, p, h, n, len, missing) in misses {
            let m =
                missing.first().map(|m| m.chars().take(70).collect::<String>().replace('|', "/")).unwrap_or_default();
            let _ = writeln!(t, "| `{set}:{p}` | {h}/{n} | {len} | `{m}` |");
        }
    }
    println!("{t}");

    let doc = crate_dir.join("docs/triage-bench.md");
    let old = std::fs::read_to_string(&doc)
        .unwrap_or_else(|_| "# Triage benchmark\n\n<!-- bench:start -->\n<!-- bench:end -->\n".into());
    let new = match (old.find("<!-- bench:start -->"), old.find("<!-- bench:end -->")) {
        (Some(a), Some(b)) if a < b => format!("{}<!-- bench:start -->\n{t}{}", &old[..a], &old[b..]),
        _ => format!("{old}\n<!-- bench:start -->\n{t}<!-- bench:end -->\n"),
    };
    match std::fs::write(&doc, new) {
        Ok(()) => eprintln!("wrote {}", doc.display()),
        Err(e) => eprintln!("cannot write {}: {e}", doc.display()),
    }
    // The README's Triage section carries the main table (up to the per-kind table).
    let readme = crate_dir.join("README.md");
    let main_table = t.split("\nRouting per kind").next().unwrap_or(&t).trim_end();
    if let Ok(old) = std::fs::read_to_string(&readme)
        && let (Some(a), Some(b)) = (old.find("<!-- triage-bench:start -->"), old.find("<!-- triage-bench:end -->"))
        && a < b
    {
        let new = format!("{}<!-- triage-bench:start -->\n{main_table}\n{}", &old[..a], &old[b..]);
        match std::fs::write(&readme, new) {
            Ok(()) => eprintln!("wrote {}", readme.display()),
            Err(e) => eprintln!("cannot write {}: {e}", readme.display()),
        }
    }
}
