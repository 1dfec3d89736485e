//! `cargo bench --bench triage`: triage quality and cost on the labelled real logs.
//!
//! Reads `logs/labels.csv` under the shared data directory (`$CIHEALER_SHARED_DATA`, default
//! `<crate>/../shared/data`) and prints a markdown table:
//! - routing accuracy per category (rust → rust, frontend → frontend, infrastructure → infrastructure,
//!   github_workflow → general, other → general), from the log alone (no names, no changed files);
//! - extraction hit rate: logs with ground truth (`*.ok.txt` parsed diagnostics, `*.groundtruth` line
//!   ranges, clippy `//~` markers in `*.source.rs`) whose labelled failure lines appear in the
//!   excerpt (a log hits when ≥ 80 % of its labelled lines do; the strict 100 % rate is shown too);
//! - throughput in MB/s over the whole corpus on one thread (looped until ≥ 1 s);
//! - peak heap memory while triaging the largest log (a counting global allocator).
//!
//! The table is also written into `docs/triage-bench.md` between `<!-- bench:start -->` and
//! `<!-- bench:end -->` (the rest of that file is kept).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
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

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let dir = data_dir();
    let labels_path = dir.join("logs/labels.csv");
    let Ok(labels) = std::fs::read_to_string(&labels_path) else {
        eprintln!("no labelled logs at {} (set CIHEALER_SHARED_DATA)", labels_path.display());
        return;
    };
    let rows = parse_csv(&labels);
    let header = &rows[0];
    let col =
        |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("labels.csv has no column {name}"));
    let (c_path, c_cat, c_sub, c_gt) = (col("path"), col("category"), col("subcategory"), col("ground_truth_file"));
    let routing = RoutingConfig::default();

    struct Case {
        path: String,
        category: String,
        subcategory: String,
        bytes: Vec<u8>,
        gt_file: String,
    }
    let mut cases = Vec::new();
    for r in &rows[1..] {
        if r.len() <= c_gt {
            continue;
        }
        let Ok(bytes) = std::fs::read(dir.join(&r[c_path])) else {
            eprintln!("missing {}", r[c_path]);
            continue;
        };
        cases.push(Case {
            path: r[c_path].clone(),
            category: r[c_cat].clone(),
            subcategory: r[c_sub].clone(),
            bytes,
            gt_file: r[c_gt].clone(),
        });
    }

    // Routing and extraction.
    let mut per_cat: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut misroutes = Vec::new();
    let mut extraction = Vec::new();
    for c in &cases {
        let r = run(&c.bytes, &routing);
        let want = expected_profile(&c.category);
        let e = per_cat.entry(c.category.clone()).or_default();
        e.1 += 1;
        if r.profile == want {
            e.0 += 1;
        } else {
            misroutes.push(format!(
                "| `{}` | {} ({}) | {} | {} ({:.2}) |",
                c.path, c.category, c.subcategory, want, r.profile, r.confidence
            ));
        }
        if let Some(truth) = ground_truth(&dir, Path::new(&c.path), &c.bytes, &c.gt_file) {
            let (hit, total) = recall(&truth, &r.excerpt);
            extraction.push((c.path.clone(), hit, total, r.excerpt.len()));
        }
    }
    let (ok, all) = per_cat.values().fold((0, 0), |(a, b), (x, y)| (a + x, b + y));

    // Throughput: whole corpus, one thread, ≥ 1 s. Wall time, and this thread's CPU time (the
    // machine may be shared; CPU time is what one core delivers).
    let total_bytes: usize = cases.iter().map(|c| c.bytes.len()).sum();
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let mut iters = 0usize;
    while start.elapsed() < Duration::from_secs(1) || iters < 3 {
        for c in &cases {
            std::hint::black_box(run(std::hint::black_box(&c.bytes), &routing));
        }
        iters += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let mbps = (total_bytes * iters) as f64 / secs / 1e6;
    let cpu_secs = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1e9),
        _ => None,
    };

    // Peak memory on the largest log.
    let largest = cases.iter().max_by_key(|c| c.bytes.len()).expect("at least one log");
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = run(&largest.bytes, &routing);
    let peak = PEAK.load(Ordering::Relaxed) - base;
    drop(r);

    // Report.
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Command: `cargo bench --bench triage` (release, one thread; data: `shared/data/logs/labels.csv`)\n"
    );
    let _ = writeln!(t, "| metric | value | goal |");
    let _ = writeln!(t, "|---|---|---|");
    for (cat, (k, n)) in &per_cat {
        let _ = writeln!(
            t,
            "| routing accuracy: {cat} (→ {}) | {k}/{n} = {:.1} % | |",
            expected_profile(cat),
            100.0 * *k as f64 / *n as f64
        );
    }
    let _ = writeln!(
        t,
        "| **routing accuracy: overall** | **{ok}/{all} = {:.1} %** | ≥ 95 % |",
        100.0 * ok as f64 / all as f64
    );
    let hits = extraction.iter().filter(|(_, h, n, _)| *n == 0 || *h * 5 >= *n * 4).count();
    let strict = extraction.iter().filter(|(_, h, n, _)| h == n).count();
    let (lh, ln) = extraction.iter().fold((0, 0), |(a, b), (_, h, n, _)| (a + h, b + n));
    let _ = writeln!(
        t,
        "| **extraction hit rate** (≥ 80 % of labelled lines in the excerpt) | **{hits}/{} = {:.1} %** | ≥ 90 % |",
        extraction.len(),
        100.0 * hits as f64 / extraction.len() as f64
    );
    let _ = writeln!(
        t,
        "| extraction hit rate, strict (100 % of labelled lines) | {strict}/{} = {:.1} % | |",
        extraction.len(),
        100.0 * strict as f64 / extraction.len() as f64
    );
    let _ = writeln!(t, "| labelled lines found in excerpts | {lh}/{ln} = {:.1} % | |", 100.0 * lh as f64 / ln as f64);
    match cpu_secs {
        Some(cpu) => {
            let cpu_mbps = (total_bytes * iters) as f64 / cpu / 1e6;
            let _ = writeln!(
                t,
                "| **throughput, one core** ({} logs, {:.2} MB, {iters} passes, {cpu:.2} s of thread CPU time) | **{cpu_mbps:.0} MB/s** | ≥ 200 MB/s |",
                cases.len(),
                total_bytes as f64 / 1e6
            );
            let _ = writeln!(
                t,
                "| throughput, wall clock ({secs:.2} s; lower when the machine is shared) | {mbps:.0} MB/s | |"
            );
        }
        None => {
            let _ = writeln!(
                t,
                "| **throughput** ({} logs, {:.2} MB, {iters} passes in {secs:.2} s wall clock) | **{mbps:.0} MB/s** | ≥ 200 MB/s |",
                cases.len(),
                total_bytes as f64 / 1e6
            );
        }
    }
    let _ = writeln!(
        t,
        "| peak heap while triaging the largest log (`{}`, {} bytes) | {} bytes ({:.1}× the log) | |",
        largest.path,
        largest.bytes.len(),
        peak,
        peak as f64 / largest.bytes.len() as f64
    );
    if !misroutes.is_empty() {
        let _ = writeln!(
            t,
            "\nMisrouted logs:\n\n| log | label (subcategory) | expected | got (confidence) |\n|---|---|---|---|"
        );
        for m in &misroutes {
            let _ = writeln!(t, "{m}");
        }
    }
    let misses: Vec<_> = extraction.iter().filter(|(_, h, n, _)| *h * 5 < *n * 4 || h != n).collect();
    if !misses.is_empty() {
        let _ = writeln!(
            t,
            "\nLogs whose labelled lines are not all in the excerpt:\n\n| log | labelled lines found | excerpt bytes |\n|---|---|---|"
        );
        for (p, h, n, len) in misses {
            let _ = writeln!(t, "| `{p}` | {h}/{n} | {len} |");
        }
    }
    println!("{t}");

    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/triage-bench.md");
    let old = std::fs::read_to_string(&doc)
        .unwrap_or_else(|_| "# Triage benchmark\n\n<!-- bench:start -->\n<!-- bench:end -->\n".into());
    let new = match (old.find("<!-- bench:start -->"), old.find("<!-- bench:end -->")) {
        (Some(a), Some(b)) if a < b => format!("{}<!-- bench:start -->\n{t}{}", &old[..a], &old[b..]),
        _ => format!("{old}\n<!-- bench:start -->\n{t}<!-- bench:end -->\n"),
    };
    if let Some(parent) = doc.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match std::fs::write(&doc, new) {
        Ok(()) => eprintln!("wrote {}", doc.display()),
        Err(e) => eprintln!("cannot write {}: {e}", doc.display()),
    }
}
