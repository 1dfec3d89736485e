//! What the pages show, computed from the cache: pure functions from cached objects (and `now`) to
//! serialisable page models that the templates render. Nothing here touches the network.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use super::cache::{AttemptDoc, FilesDoc, RunDoc};

/// The phases the summary always shows, in their life order; other phases a controller reports are
/// appended after them.
pub const CARD_PHASES: [&str; 6] = ["Queued", "Running", "Fixed", "Escalated", "Aborted", "Resolved"];
/// Runs per page unless the query asks otherwise.
pub const DEFAULT_PER_PAGE: usize = 50;
/// The most runs one page shows.
pub const MAX_PER_PAGE: usize = 200;

/// The phase a run is in; a run the controller has not seen yet is `Queued` (the API's default).
pub fn phase_of(run: &RunDoc) -> &str {
    run.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Queued")
}

fn seconds_between(a: &Time, b: &Time) -> f64 {
    (b.0.as_millisecond() - a.0.as_millisecond()) as f64 / 1000.0
}

/// Time to fix, in seconds: from the run's creation (the failure's delivery) to its validated fix.
/// `None` unless the run is `Fixed`.
pub fn time_to_fix(run: &RunDoc) -> Option<f64> {
    let st = run.status.as_ref()?;
    if st.phase.as_deref() != Some("Fixed") {
        return None;
    }
    Some(seconds_between(run.metadata.creation_timestamp.as_ref()?, st.completion_time.as_ref()?).max(0.0))
}

/// The value below which `q` (0..=1) of `values` lie (nearest rank); `None` for no values.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

/// `1.2 s`, `45 s`, `3 m 05 s`, `2 h 10 m`, `3 d 4 h`.
pub fn fmt_duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 10.0 {
        return format!("{s:.1} s");
    }
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} m {:02} s", s / 60, s % 60),
        3600..86400 => format!("{} h {:02} m", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86400, (s % 86400) / 3600),
    }
}

fn ago(t: Option<&Time>, now: &Time) -> String {
    t.map(|t| format!("{} ago", fmt_duration(seconds_between(t, now)))).unwrap_or_default()
}

fn rfc3339(t: Option<&Time>) -> String {
    t.map(|t| t.0.to_string()).unwrap_or_default()
}

fn percent(num: usize, den: usize) -> Option<String> {
    (den > 0).then(|| format!("{:.0} %", 100.0 * num as f64 / den as f64))
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const COMPONENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encode one URL query value or path segment.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

/// How to link to the code host.
#[derive(Clone, Debug)]
pub struct Links {
    /// The web base URL of GitHub (or GitHub Enterprise), without a trailing slash.
    pub github: String,
}

impl Default for Links {
    fn default() -> Self {
        Self { github: "https://github.com".into() }
    }
}

impl Links {
    fn repo(&self, repository: &str) -> String {
        format!("{}/{}", self.github, repository)
    }
    fn branch(&self, repository: &str, branch: &str) -> String {
        let path = branch.split('/').map(enc).collect::<Vec<_>>().join("/");
        format!("{}/{}/tree/{path}", self.github, repository)
    }
    fn commit(&self, repository: &str, sha: &str) -> String {
        format!("{}/{}/commit/{}", self.github, repository, enc(sha))
    }
    fn workflow_run(&self, repository: &str, run_id: i64, attempt: Option<i64>) -> String {
        match attempt {
            Some(a) if a > 1 => format!("{}/{}/actions/runs/{run_id}/attempts/{a}", self.github, repository),
            _ => format!("{}/{}/actions/runs/{run_id}", self.github, repository),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The runs table and the summary cards.

/// The runs table's query: filters and the page. Every field is optional; empty strings mean "any".
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct RunQuery {
    /// Only runs in this namespace.
    pub namespace: String,
    /// Only runs of this repository (`owner/name`, case-insensitive).
    pub repository: String,
    /// Only runs in this phase.
    pub phase: String,
    /// Only runs of this failure class.
    pub class: String,
    /// 1-based page number.
    pub page: Option<usize>,
    /// Runs per page (1 to [`MAX_PER_PAGE`]).
    pub per_page: Option<usize>,
}

impl RunQuery {
    fn matches(&self, r: &RunDoc) -> bool {
        let st = r.status.as_ref();
        (self.namespace.is_empty() || r.metadata.namespace.as_deref() == Some(self.namespace.as_str()))
            && (self.repository.is_empty() || r.spec.source.repository.eq_ignore_ascii_case(&self.repository))
            && (self.phase.is_empty() || phase_of(r) == self.phase)
            && (self.class.is_empty() || st.and_then(|s| s.failure_class.as_deref()) == Some(self.class.as_str()))
    }

    /// The query string for this query on another page (`page=0` keeps the current one).
    pub fn href(&self, page: usize) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("namespace", &self.namespace),
            ("repository", &self.repository),
            ("phase", &self.phase),
            ("class", &self.class),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", enc(v)));
            }
        }
        if let Some(pp) = self.per_page.filter(|&p| p != DEFAULT_PER_PAGE) {
            parts.push(format!("per_page={pp}"));
        }
        let page = if page == 0 { self.page.unwrap_or(1) } else { page };
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() { "?".into() } else { format!("?{}", parts.join("&")) }
    }
}

/// One summary card.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct PhaseCount {
    /// The phase.
    pub phase: String,
    /// Runs in it.
    pub count: usize,
}

/// The summary cards over every cached run.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Summary {
    /// Runs cached.
    pub total: usize,
    /// Runs per phase: [`CARD_PHASES`] first, then any other phase seen.
    pub phases: Vec<PhaseCount>,
    /// Fixed ÷ (Fixed + Escalated), as `NN %`; absent before any run ended either way.
    pub success_rate: Option<String>,
    /// Median time to fix of the Fixed runs.
    pub median_time_to_fix: Option<String>,
    /// 95th percentile time to fix.
    pub p95_time_to_fix: Option<String>,
}

/// Count runs per phase and compute the success rate and time to fix.
pub fn summary(runs: &[Arc<RunDoc>]) -> Summary {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ttf = Vec::new();
    for r in runs {
        *counts.entry(phase_of(r)).or_default() += 1;
        ttf.extend(time_to_fix(r));
    }
    let mut phases: Vec<PhaseCount> = CARD_PHASES
        .iter()
        .map(|p| PhaseCount { phase: p.to_string(), count: counts.get(p).copied().unwrap_or(0) })
        .collect();
    phases.extend(
        counts
            .iter()
            .filter(|(p, _)| !CARD_PHASES.contains(p))
            .map(|(p, n)| PhaseCount { phase: p.to_string(), count: *n }),
    );
    let fixed = counts.get("Fixed").copied().unwrap_or(0);
    let escalated = counts.get("Escalated").copied().unwrap_or(0);
    Summary {
        total: runs.len(),
        phases,
        success_rate: percent(fixed, fixed + escalated),
        median_time_to_fix: quantile(&mut ttf, 0.5).map(fmt_duration),
        p95_time_to_fix: quantile(&mut ttf, 0.95).map(fmt_duration),
    }
}

/// One row of the runs table.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct RunRow {
    /// Namespace.
    pub namespace: String,
    /// Run name.
    pub name: String,
    /// The run page.
    pub href: String,
    /// `owner/name`.
    pub repository: String,
    /// The repository on GitHub.
    pub repository_href: String,
    /// Branch.
    pub branch: String,
    /// First 7 characters of the head SHA.
    pub short_sha: String,
    /// The commit on GitHub.
    pub sha_href: String,
    /// Phase.
    pub phase: String,
    /// Failure class.
    pub class: String,
    /// Agent profile.
    pub agent: String,
    /// `started/max`.
    pub attempts: String,
    /// `3 m ago`.
    pub age: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// Time to fix, for Fixed runs.
    pub time_to_fix: String,
}

/// One page of the runs table.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct RunTable {
    /// The rows of this page, newest first.
    pub rows: Vec<RunRow>,
    /// Runs that match the filters.
    pub matching: usize,
    /// This page (1-based).
    pub page: usize,
    /// Pages in all (at least 1).
    pub pages: usize,
    /// Query string of the previous page.
    pub prev: Option<String>,
    /// Query string of the next page.
    pub next: Option<String>,
    /// The query, for the filter form.
    pub query: RunQuery,
    /// Runs per page.
    pub per_page: usize,
}

fn row(r: &RunDoc, links: &Links, now: &Time) -> RunRow {
    let st = r.status.as_ref();
    let src = &r.spec.source;
    let ns = r.metadata.namespace.clone().unwrap_or_default();
    let name = r.metadata.name.clone().unwrap_or_default();
    let sha: String = src.head_sha.chars().take(7).collect();
    RunRow {
        href: format!("/runs/{}/{}", enc(&ns), enc(&name)),
        namespace: ns,
        name,
        repository: src.repository.clone(),
        repository_href: links.repo(&src.repository),
        branch: src.branch.clone(),
        sha_href: links.commit(&src.repository, &src.head_sha),
        short_sha: st.and_then(|s| s.short_sha.clone()).unwrap_or(sha),
        phase: phase_of(r).to_string(),
        class: st.and_then(|s| s.failure_class.clone()).unwrap_or_default(),
        agent: st.and_then(|s| s.agent.clone()).unwrap_or_default(),
        attempts: format!("{}/{}", st.map(|s| s.attempts).unwrap_or(0), r.spec.policy.max_attempts.unwrap_or(3)),
        age: ago(r.metadata.creation_timestamp.as_ref(), now),
        created: rfc3339(r.metadata.creation_timestamp.as_ref()),
        time_to_fix: time_to_fix(r).map(fmt_duration).unwrap_or_default(),
    }
}

/// Sort runs newest first, then by namespace and name (the runs table's order).
pub fn newest_first(runs: &mut [Arc<RunDoc>]) {
    runs.sort_unstable_by(|a, b| {
        let (a, b) = (&a.metadata, &b.metadata);
        let ts =
            |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| m.creation_timestamp.as_ref().map(|t| t.0);
        ts(b).cmp(&ts(a)).then_with(|| a.namespace.cmp(&b.namespace)).then_with(|| a.name.cmp(&b.name))
    });
}

/// Filter runs already in [`newest_first`] order and cut one page.
pub fn run_table(sorted: &[Arc<RunDoc>], query: &RunQuery, links: &Links, now: &Time) -> RunTable {
    let matching: Vec<&RunDoc> = sorted.iter().map(|r| r.as_ref()).filter(|r| query.matches(r)).collect();
    let per_page = query.per_page.unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE);
    let pages = matching.len().div_ceil(per_page).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let rows = matching.iter().skip((page - 1) * per_page).take(per_page).map(|r| row(r, links, now)).collect();
    RunTable {
        rows,
        matching: matching.len(),
        page,
        pages,
        prev: (page > 1).then(|| query.href(page - 1)),
        next: (page < pages).then(|| query.href(page + 1)),
        query: RunQuery { page: Some(page), per_page: Some(per_page), ..query.clone() },
        per_page,
    }
}

/// The choices of the filter form: every value present in the cache.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct FilterOptions {
    /// Namespaces with runs.
    pub namespaces: Vec<String>,
    /// Repositories with runs.
    pub repositories: Vec<String>,
    /// Phases present (and the card phases).
    pub phases: Vec<String>,
    /// Failure classes present.
    pub classes: Vec<String>,
}

/// The distinct values of each filter.
pub fn filter_options(runs: &[Arc<RunDoc>]) -> FilterOptions {
    let (mut ns, mut repos, mut phases, mut classes) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for r in runs {
        ns.extend(r.metadata.namespace.as_deref());
        repos.insert(r.spec.source.repository.as_str());
        phases.insert(phase_of(r));
        classes.extend(r.status.as_ref().and_then(|s| s.failure_class.as_deref()));
    }
    let mut ordered: Vec<String> = CARD_PHASES.iter().map(|p| p.to_string()).collect();
    ordered.extend(phases.into_iter().filter(|p| !CARD_PHASES.contains(p)).map(String::from));
    FilterOptions {
        namespaces: ns.into_iter().map(String::from).collect(),
        repositories: repos.into_iter().map(String::from).collect(),
        phases: ordered,
        classes: classes.into_iter().map(String::from).collect(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Per-repository, per-class and per-agent figures.

/// Figures for one group of runs (a repository, a class or an agent).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct GroupStats {
    /// The repository, class or agent.
    pub key: String,
    /// The runs table filtered to this group, when the table has such a filter.
    pub href: Option<String>,
    /// Runs.
    pub runs: usize,
    /// Queued or Running.
    pub active: usize,
    /// Fixed.
    pub fixed: usize,
    /// Escalated.
    pub escalated: usize,
    /// Any other final phase (Aborted, Resolved, …).
    pub other: usize,
    /// Fixed ÷ (Fixed + Escalated).
    pub success_rate: Option<String>,
    /// Median time to fix.
    pub median_time_to_fix: Option<String>,
    /// Attempts per run, mean.
    pub attempts_per_run: String,
    /// Tokens the attempts' agents used (input + output), when any reported them.
    pub tokens: i64,
    /// The newest run's age.
    pub last_run: String,
}

/// How to group runs on the figures page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// `spec.source.repository`.
    Repository,
    /// `status.failureClass`.
    Class,
    /// `status.agent`.
    Agent,
}

/// Group runs and compute each group's figures, most runs first. `tokens` maps (namespace, run) to
/// the tokens its attempts used.
pub fn group_stats(
    runs: &[Arc<RunDoc>],
    by: GroupBy,
    tokens: &BTreeMap<(String, String), i64>,
    now: &Time,
) -> Vec<GroupStats> {
    let mut groups: BTreeMap<String, Vec<&RunDoc>> = BTreeMap::new();
    for r in runs {
        let st = r.status.as_ref();
        let key = match by {
            GroupBy::Repository => r.spec.source.repository.to_ascii_lowercase(),
            GroupBy::Class => st.and_then(|s| s.failure_class.clone()).unwrap_or_else(|| "(not triaged)".into()),
            GroupBy::Agent => st.and_then(|s| s.agent.clone()).unwrap_or_else(|| "(not triaged)".into()),
        };
        groups.entry(key).or_default().push(r);
    }
    let mut out: Vec<GroupStats> = groups
        .into_iter()
        .map(|(key, rs)| {
            let count = |p: &str| rs.iter().filter(|r| phase_of(r) == p).count();
            let (fixed, escalated) = (count("Fixed"), count("Escalated"));
            let active = count("Queued") + count("Running");
            let mut ttf: Vec<f64> = rs.iter().filter_map(|r| time_to_fix(r)).collect();
            let attempts: i64 = rs.iter().map(|r| r.status.as_ref().map(|s| s.attempts).unwrap_or(0)).sum();
            let newest = rs.iter().filter_map(|r| r.metadata.creation_timestamp.as_ref()).max_by_key(|t| t.0);
            let href = match by {
                GroupBy::Repository => Some(format!("/?repository={}", enc(&key))),
                GroupBy::Class if !key.starts_with('(') => Some(format!("/?class={}", enc(&key))),
                _ => None,
            };
            let tokens = rs
                .iter()
                .map(|r| {
                    let k =
                        (r.metadata.namespace.clone().unwrap_or_default(), r.metadata.name.clone().unwrap_or_default());
                    tokens.get(&k).copied().unwrap_or(0)
                })
                .sum();
            GroupStats {
                href,
                runs: rs.len(),
                active,
                fixed,
                escalated,
                other: rs.len() - fixed - escalated - active,
                success_rate: percent(fixed, fixed + escalated),
                median_time_to_fix: quantile(&mut ttf, 0.5).map(fmt_duration),
                attempts_per_run: format!("{:.1}", attempts as f64 / rs.len() as f64),
                tokens,
                last_run: ago(newest, now),
                key,
            }
        })
        .collect();
    out.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.key.cmp(&b.key)));
    out
}

/// Tokens used per run, summed over its attempts' verdicts.
pub fn tokens_per_run(attempts: &[Arc<AttemptDoc>]) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for a in attempts {
        let t = a.status.as_ref().and_then(|s| s.verdict.as_ref()).and_then(|v| v.tokens.as_ref());
        if let Some(t) = t {
            let k = (a.metadata.namespace.clone().unwrap_or_default(), a.spec.run_name.clone());
            *out.entry(k).or_default() += t.input + t.output;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// The run page.

/// A labelled value, optionally a link.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Field {
    /// What it is.
    pub label: String,
    /// The value.
    pub value: String,
    /// Where it links to.
    pub href: Option<String>,
}

fn field(label: &str, value: impl Into<String>, href: Option<String>) -> Field {
    Field { label: label.into(), value: value.into(), href }
}

/// One step of an attempt, as a bar of the timeline.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct StepBar {
    /// `checkout`, `agent`, `validate`.
    pub step: String,
    /// `2.5 s`.
    pub duration: String,
    /// Where the bar starts, in percent of the longest attempt's steps (the steps run in order).
    pub offset: f64,
    /// Width in percent of the longest attempt's steps.
    pub width: f64,
}

/// One attempt on the timeline.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct AttemptRow {
    /// 1-based number.
    pub number: i64,
    /// The HealingAttempt's name.
    pub name: String,
    /// Phase.
    pub phase: String,
    /// Profile.
    pub profile: String,
    /// RFC 3339 start time.
    pub started: String,
    /// Start to finish (or to now, while running).
    pub duration: String,
    /// The steps with their durations.
    pub steps: Vec<StepBar>,
    /// The verdict's outcome (`passed`, …).
    pub outcome: String,
    /// The verdict's reason, or why the attempt failed.
    pub reason: String,
    /// The verdict's summary.
    pub summary: String,
    /// What the agent said.
    pub diagnosis: String,
    /// `1 file, +3 −2`.
    pub diffstat: String,
    /// `in 120 / out 80`.
    pub tokens: String,
    /// The Job's name (for `kubectl logs`).
    pub job: String,
    /// Whether this attempt's patch is the run's kept patch.
    pub kept: bool,
}

/// One line of a rendered diff.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct DiffLine {
    /// `add`, `del`, `ctx`, `hunk` or `meta`.
    pub kind: &'static str,
    /// Line number in the old file.
    pub old: Option<usize>,
    /// Line number in the new file.
    pub new: Option<usize>,
    /// The line as in the patch.
    pub text: String,
}

/// One file of a rendered diff.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct DiffFile {
    /// The file's path (the new one; the old one for a deletion).
    pub path: String,
    /// Lines added.
    pub added: usize,
    /// Lines removed.
    pub removed: usize,
    /// Its lines.
    pub lines: Vec<DiffLine>,
}

/// Split a unified diff (`git diff` output, or plain `diff -u`) into files and classified, numbered
/// lines. A hunk ends when its header's line counts are used up, so a removed line that starts with
/// `--` is never mistaken for the next file's header.
pub fn render_diff(patch: &str) -> Vec<DiffFile> {
    let mut files: Vec<DiffFile> = Vec::new();
    // Next line numbers, and lines left in the current hunk (old side, new side).
    let (mut old, mut new, mut old_left, mut new_left) = (0usize, 0usize, 0usize, 0usize);
    for line in patch.lines() {
        let in_hunk = old_left > 0 || new_left > 0;
        if in_hunk {
            let (kind, o, n) = match line.as_bytes().first() {
                Some(b'+') => {
                    new_left = new_left.saturating_sub(1);
                    new += 1;
                    ("add", None, Some(new - 1))
                }
                Some(b'-') => {
                    old_left = old_left.saturating_sub(1);
                    old += 1;
                    ("del", Some(old - 1), None)
                }
                Some(b'\\') => ("meta", None, None),
                _ => {
                    old_left = old_left.saturating_sub(1);
                    new_left = new_left.saturating_sub(1);
                    old += 1;
                    new += 1;
                    ("ctx", Some(old - 1), Some(new - 1))
                }
            };
            push(&mut files, kind, o, n, line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let path = rest.rsplit_once(" b/").map(|(_, b)| b.to_string()).unwrap_or_else(|| rest.to_string());
            files.push(DiffFile { path, added: 0, removed: 0, lines: Vec::new() });
            continue;
        } else if let Some(p) = line.strip_prefix("--- ") {
            // A plain `diff -u` has no `diff --git` line: a new file starts at its `---` header.
            if files.last().is_none_or(|f| f.lines.iter().any(|l| l.kind == "hunk")) {
                files.push(DiffFile { path: String::new(), added: 0, removed: 0, lines: Vec::new() });
            }
            if let Some(f) = files.last_mut().filter(|f| f.path.is_empty()) {
                f.path = p.strip_prefix("a/").unwrap_or(p).to_string();
            }
            // The file headers are shown as the file's caption, not as lines.
            continue;
        } else if let Some(p) = line.strip_prefix("+++ ") {
            if let Some(f) = files.last_mut()
                && p != "/dev/null"
            {
                f.path = p.strip_prefix("b/").unwrap_or(p).to_string();
            }
            continue;
        } else if line.starts_with("@@") {
            // @@ -old_start[,old_len] +new_start[,new_len] @@ section
            let mut ranges = line.split_whitespace().skip(1).take(2).map(|s| {
                let mut it = s.get(1..).unwrap_or("").split(',').map(|n| n.parse::<usize>().ok());
                (it.next().flatten().unwrap_or(1), it.next().flatten().unwrap_or(1))
            });
            ((old, old_left), (new, new_left)) = (ranges.next().unwrap_or((1, 1)), ranges.next().unwrap_or((1, 1)));
            if files.is_empty() {
                files.push(DiffFile { path: String::new(), added: 0, removed: 0, lines: Vec::new() });
            }
            push(&mut files, "hunk", None, None, line);
            continue;
        }
        if files.is_empty() {
            files.push(DiffFile { path: String::new(), added: 0, removed: 0, lines: Vec::new() });
        }
        push(&mut files, "meta", None, None, line);
    }
    files
}

fn push(files: &mut [DiffFile], kind: &'static str, old: Option<usize>, new: Option<usize>, text: &str) {
    if let Some(f) = files.last_mut() {
        match kind {
            "add" => f.added += 1,
            "del" => f.removed += 1,
            _ => {}
        }
        f.lines.push(DiffLine { kind, old, new, text: text.to_string() });
    }
}

/// The kept patch, rendered.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct PatchView {
    /// The attempt that produced it.
    pub attempt: String,
    /// The ConfigMap that holds it.
    pub config_map: String,
    /// `1 file, +3 −2`.
    pub diffstat: String,
    /// The files.
    pub files: Vec<DiffFile>,
    /// The patch was longer than the dashboard keeps; the command prints it whole.
    pub truncated: bool,
    /// The ConfigMap is not (or no longer) in the cache.
    pub missing: bool,
    /// The command that applies it to a checkout.
    pub apply_command: String,
}

/// A person's action on the run, from `status.history`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct HistoryRow {
    /// When.
    pub time: String,
    /// What (`approve`, `retry`, …).
    pub action: String,
    /// Who.
    pub actor: String,
    /// Where from (`kubectl`, `comment`, `slack`).
    pub source: String,
    /// What came of it.
    pub result: String,
    /// Any other fields, `key=value`.
    pub other: String,
}

fn history_row(v: &serde_json::Value) -> HistoryRow {
    let obj = v.as_object().cloned().unwrap_or_default();
    let mut used = BTreeSet::new();
    let mut pick = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| {
                let s = obj.get(*k)?;
                used.insert(k.to_string());
                Some(match s {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            })
            .unwrap_or_default()
    };
    let time = pick(&["time", "timestamp", "at"]);
    let action = pick(&["action", "type"]);
    let actor = pick(&["actor", "user", "requestedBy"]);
    let source = pick(&["source", "via"]);
    let result = pick(&["result", "outcome", "message"]);
    let other = obj
        .iter()
        .filter(|(k, _)| !used.contains(k.as_str()))
        .map(|(k, v)| format!("{k}={}", v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
        .collect::<Vec<_>>()
        .join(", ");
    HistoryRow { time, action, actor, source, result, other }
}

/// A command people can run about the run.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct CommandRow {
    /// What it does.
    pub what: String,
    /// The exact `kubectl` command.
    pub kubectl: String,
    /// The `/healer` comment that does the same on the pull request, if there is one.
    pub comment: Option<String>,
}

/// An action a person can ask of a run through `spec.action`: the table the run page's commands
/// come from. `tests` check it lists exactly the values the CRD's schema allows.
pub struct ActionDoc {
    /// The `spec.action` value.
    pub action: &'static str,
    /// What it does, for people.
    pub what: &'static str,
    /// The `/healer` comment command that does the same, where one exists.
    pub comment: Option<&'static str>,
    /// The phases in which the controller acts on it.
    pub phases: &'static [&'static str],
}

/// Every `spec.action` value the API accepts.
pub const ACTIONS: &[ActionDoc] = &[
    ActionDoc {
        action: "abort",
        what: "Abort the run (stops the running attempt's Job)",
        comment: None,
        phases: &["Queued", "Running"],
    },
    ActionDoc { action: "approve", what: "Accept the kept fix", comment: None, phases: &["Fixed"] },
    ActionDoc { action: "deny", what: "Refuse the kept fix (the run ends Denied)", comment: None, phases: &["Fixed"] },
    ActionDoc {
        action: "retry",
        what: "Start more attempts (optionally with a hint in spec.actionRequest.hint)",
        comment: None,
        phases: &["Escalated", "Denied"],
    },
    ActionDoc {
        action: "resolve",
        what: "Say a person fixed it (the run ends Resolved; stops anything in flight)",
        comment: None,
        phases: &["Queued", "Running", "Fixed", "Escalated", "Aborted", "Denied"],
    },
];

/// The commands for a run in its current phase.
pub fn commands(ns: &str, name: &str, phase: &str, job: Option<&str>, patch_cm: Option<&str>) -> Vec<CommandRow> {
    let mut out = vec![
        CommandRow {
            what: "Why the run is where it is".into(),
            kubectl: format!("kubectl describe healingrun {name} -n {ns}"),
            comment: None,
        },
        CommandRow {
            what: "Its attempts".into(),
            kubectl: format!("kubectl get healingattempts -n {ns} -l cihealer.dev/run={name}"),
            comment: None,
        },
    ];
    if let Some(job) = job {
        out.push(CommandRow {
            what: "The latest attempt's validation log".into(),
            kubectl: format!("kubectl logs -n {ns} job/{job} -c validate"),
            comment: None,
        });
    }
    if let Some(cm) = patch_cm {
        out.push(CommandRow {
            what: "Apply the kept patch to a checkout of the failing commit".into(),
            kubectl: apply_command(ns, cm),
            comment: None,
        });
    }
    for a in ACTIONS.iter().filter(|a| a.phases.contains(&phase)) {
        out.push(CommandRow {
            what: a.what.into(),
            kubectl: format!(
                "kubectl patch healingrun {name} -n {ns} --type merge -p '{{\"spec\":{{\"action\":\"{}\"}}}}'",
                a.action
            ),
            comment: a.comment.map(String::from),
        });
    }
    out
}

fn apply_command(ns: &str, cm: &str) -> String {
    format!("kubectl get configmap {cm} -n {ns} -o jsonpath='{{.data.patch\\.diff}}' | git apply")
}

/// A condition, for the conditions table.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ConditionRow {
    /// Type.
    pub type_: String,
    /// `True`/`False`/`Unknown`.
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// For people.
    pub message: String,
    /// `3 m ago`.
    pub since: String,
}

/// Triage's answer as the run page shows it.
#[derive(Serialize, Clone, Debug, PartialEq, Default)]
pub struct TriageView {
    /// Class.
    pub class: String,
    /// `92 %`.
    pub confidence: String,
    /// The agent profile the attempts use.
    pub agent: String,
    /// The error hash.
    pub error_hash: String,
    /// The failing step.
    pub failing_step: String,
    /// The routing rule that matched.
    pub matched_rule: String,
    /// Structured diagnostics found.
    pub diagnostics: usize,
    /// What triage could not read.
    pub unreadable: Vec<String>,
}

/// Everything the run page shows.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct RunPage {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Phase.
    pub phase: String,
    /// `3 m ago`.
    pub age: String,
    /// `started/max`.
    pub attempts: String,
    /// Time to fix (Fixed runs).
    pub time_to_fix: String,
    /// Repository, branch, SHA, workflow, job, step, delivery, with GitHub links.
    pub source: Vec<Field>,
    /// Triage's answer.
    pub triage: TriageView,
    /// The masked, bounded excerpt.
    pub excerpt: Option<String>,
    /// The attempt timeline, in order.
    pub attempts_timeline: Vec<AttemptRow>,
    /// The kept patch.
    pub patch: Option<PatchView>,
    /// The pull request, once one is opened.
    pub pull_request: Vec<Field>,
    /// Why the run was escalated.
    pub escalation_reason: Option<String>,
    /// The run this one duplicates, with its page.
    pub duplicate_of: Option<Field>,
    /// People's actions.
    pub history: Vec<HistoryRow>,
    /// Conditions.
    pub conditions: Vec<ConditionRow>,
    /// Status fields this dashboard does not know, as JSON.
    pub other_status: Vec<Field>,
    /// Commands.
    pub commands: Vec<CommandRow>,
}

fn diffstat_text(files: i64, ins: i64, del: i64) -> String {
    format!("{files} file{}, +{ins} −{del}", if files == 1 { "" } else { "s" })
}

/// Assemble the run page from the cached run, its attempts (any order) and its ConfigMaps.
pub fn run_page(
    run: &RunDoc,
    attempts: &[Arc<AttemptDoc>],
    context: Option<&FilesDoc>,
    patch: Option<&FilesDoc>,
    links: &Links,
    now: &Time,
) -> RunPage {
    let st = run.status.clone().unwrap_or_default();
    let src = &run.spec.source;
    let ns = run.metadata.namespace.clone().unwrap_or_default();
    let name = run.metadata.name.clone().unwrap_or_default();
    let phase = phase_of(run).to_string();

    let mut source = vec![
        field("Repository", &src.repository, Some(links.repo(&src.repository))),
        field("Branch", &src.branch, Some(links.branch(&src.repository, &src.branch))),
        field("Head SHA", &src.head_sha, Some(links.commit(&src.repository, &src.head_sha))),
    ];
    if let Some(w) = &src.workflow_name {
        let href = src.run_id.map(|id| links.workflow_run(&src.repository, id, src.run_attempt));
        source.push(field("Workflow", w, href));
    }
    if let Some(j) = &src.job_name {
        source.push(field("Job", j, src.url.clone()));
    }
    if !src.failed_steps.is_empty() {
        source.push(field("Failing step", src.failed_steps.join(", "), None));
    }
    if let Some(e) = &src.event {
        source.push(field("Event", e, None));
    }
    if let Some(d) = &src.delivery_id {
        source.push(field("Delivery", d, None));
    }
    if let Some(s) = &src.sender {
        source.push(field("Sender", s, Some(format!("{}/{}", links.github, enc(s)))));
    }
    source.push(field("Mode", run.spec.policy.mode.clone().unwrap_or_else(|| "propose".into()), None));

    let t = context.and_then(|c| c.data.triage.clone()).unwrap_or_default();
    let triage = TriageView {
        class: st.failure_class.clone().unwrap_or(t.failure_class),
        confidence: if t.profile.is_empty() { String::new() } else { format!("{:.0} %", t.confidence * 100.0) },
        agent: st.agent.clone().unwrap_or(t.profile),
        error_hash: st.error_hash.clone().unwrap_or_default(),
        failing_step: t.failing_step.unwrap_or_default(),
        matched_rule: t.matched_rule.unwrap_or_default(),
        diagnostics: t.diagnostics,
        unreadable: t.unreadable,
    };

    let mut ordered: Vec<&AttemptDoc> = attempts.iter().map(|a| a.as_ref()).collect();
    ordered.sort_by_key(|a| a.spec.attempt);
    let kept = st.patch.as_ref().map(|p| p.attempt.clone());
    let longest = ordered
        .iter()
        .filter_map(|a| a.status.as_ref()?.verdict.as_ref()?.durations.as_ref())
        .map(|d| d.checkout_seconds.unwrap_or(0.0) + d.agent_seconds.unwrap_or(0.0) + d.validate_seconds.unwrap_or(0.0))
        .fold(0.0f64, f64::max);
    let timeline: Vec<AttemptRow> = ordered
        .iter()
        .map(|a| {
            let ast = a.status.clone().unwrap_or_default();
            let v = ast.verdict.clone().unwrap_or_default();
            let d = v.durations.clone().unwrap_or_default();
            let pct = |s: f64| if longest > 0.0 { (1000.0 * s / longest).round() / 10.0 } else { 0.0 };
            let mut at = 0.0;
            let steps =
                [("checkout", d.checkout_seconds), ("agent", d.agent_seconds), ("validate", d.validate_seconds)]
                    .into_iter()
                    .filter_map(|(step, s)| {
                        let s = s?;
                        let bar =
                            StepBar { step: step.into(), duration: fmt_duration(s), offset: pct(at), width: pct(s) };
                        at += s;
                        Some(bar)
                    })
                    .collect();
            let end = ast.completion_time.clone().unwrap_or_else(|| now.clone());
            let aname = a.metadata.name.clone().unwrap_or_default();
            AttemptRow {
                number: a.spec.attempt,
                phase: ast.phase.clone().unwrap_or_else(|| "Pending".into()),
                profile: a.spec.profile.clone(),
                started: rfc3339(ast.start_time.as_ref()),
                duration: ast.start_time.as_ref().map(|s| fmt_duration(seconds_between(s, &end))).unwrap_or_default(),
                steps,
                outcome: v.outcome.clone(),
                reason: ast.failure_reason.clone().unwrap_or(v.reason.clone()),
                summary: if v.summary.is_empty() {
                    ast.completed_message.clone().unwrap_or_default()
                } else {
                    v.summary.clone()
                },
                diagnosis: ast.diagnosis.clone().unwrap_or_default(),
                diffstat: v.diffstat.map(|d| diffstat_text(d.files, d.insertions, d.deletions)).unwrap_or_default(),
                tokens: v.tokens.map(|t| format!("in {} / out {}", t.input, t.output)).unwrap_or_default(),
                job: ast.job_name.clone().unwrap_or_default(),
                kept: kept.as_deref() == Some(aname.as_str()),
                name: aname,
            }
        })
        .collect();

    let patch_view = st.patch.as_ref().map(|p| {
        let cm = p.config_map.clone().unwrap_or_default();
        let text = patch.and_then(|f| f.data.patch.clone());
        PatchView {
            attempt: p.attempt.clone(),
            diffstat: p
                .diffstat
                .as_ref()
                .map(|d| diffstat_text(d.files, d.insertions, d.deletions))
                .unwrap_or_default(),
            files: text.as_deref().map(render_diff).unwrap_or_default(),
            truncated: text.as_ref().is_some_and(|t| t.len() >= super::cache::MAX_PATCH_BYTES),
            missing: text.is_none(),
            apply_command: apply_command(&ns, &cm),
            config_map: cm,
        }
    });

    let pull_request = st
        .pull_request
        .as_ref()
        .and_then(|v| v.as_object())
        .map(|o| {
            let url = o.get("url").and_then(|u| u.as_str()).map(String::from);
            let mut rows = Vec::new();
            if let Some(n) = o.get("number") {
                rows.push(field("Pull request", format!("#{n}"), url.clone()));
            }
            for (k, label) in [("state", "State"), ("headRef", "Head ref")] {
                if let Some(s) = o.get(k).and_then(|s| s.as_str()) {
                    rows.push(field(label, s, None));
                }
            }
            if rows.is_empty() && url.is_some() {
                rows.push(field("Pull request", url.clone().unwrap_or_default(), url));
            }
            rows
        })
        .unwrap_or_default();

    let conditions = st
        .conditions
        .iter()
        .map(|c| ConditionRow {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            since: ago(Some(&c.last_transition_time), now),
        })
        .collect();

    let job = timeline.last().map(|a| a.job.clone()).filter(|j| !j.is_empty());
    let commands =
        commands(&ns, &name, &phase, job.as_deref(), st.patch.as_ref().and_then(|p| p.config_map.as_deref()));
    RunPage {
        attempts: format!("{}/{}", st.attempts, run.spec.policy.max_attempts.unwrap_or(3)),
        time_to_fix: time_to_fix(run).map(fmt_duration).unwrap_or_default(),
        age: ago(run.metadata.creation_timestamp.as_ref(), now),
        source,
        triage,
        excerpt: context.and_then(|c| c.data.excerpt.clone()).filter(|e| !e.trim().is_empty()),
        attempts_timeline: timeline,
        patch: patch_view,
        pull_request,
        escalation_reason: st.escalation_reason.clone(),
        duplicate_of: st
            .duplicate_of
            .as_ref()
            .map(|d| field("Duplicate of", d, Some(format!("/runs/{}/{}", enc(&ns), enc(d))))),
        history: st.history.iter().map(history_row).collect(),
        conditions,
        other_status: st
            .extra
            .iter()
            .map(|(k, v)| field(k, serde_json::to_string(v).unwrap_or_default(), None))
            .collect(),
        commands,
        namespace: ns,
        name,
        phase,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::cache::{AttemptStatusDoc, DurationsDoc, RunStatusDoc, VerdictDoc};

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    fn run(ns: &str, name: &str, repo: &str, created: i64, phase: Option<&str>, done: Option<i64>) -> Arc<RunDoc> {
        let mut r = RunDoc::default();
        r.metadata.name = Some(name.into());
        r.metadata.namespace = Some(ns.into());
        r.metadata.creation_timestamp = Some(t(created));
        r.spec.source.repository = repo.into();
        r.spec.source.branch = "main".into();
        r.spec.source.head_sha = "abcdef0123".into();
        r.status = phase.map(|p| RunStatusDoc {
            phase: Some(p.into()),
            failure_class: Some("rust_fmt".into()),
            completion_time: done.map(t),
            attempts: 1,
            ..Default::default()
        });
        Arc::new(r)
    }

    #[test]
    fn summary_counts_phases_success_and_time_to_fix() {
        let runs = vec![
            run("a", "r1", "o/x", 0, Some("Fixed"), Some(60)),
            run("a", "r2", "o/x", 0, Some("Fixed"), Some(180)),
            run("a", "r3", "o/x", 0, Some("Escalated"), Some(100)),
            run("a", "r4", "o/y", 0, Some("Running"), None),
            run("a", "r5", "o/y", 0, None, None),
            run("a", "r6", "o/y", 0, Some("Skipped"), Some(1)),
        ];
        let s = summary(&runs);
        let count = |p: &str| s.phases.iter().find(|c| c.phase == p).map(|c| c.count);
        assert_eq!(s.total, 6);
        assert_eq!(
            (count("Queued"), count("Running"), count("Fixed"), count("Escalated")),
            (Some(1), Some(1), Some(2), Some(1))
        );
        assert_eq!(count("Resolved"), Some(0), "card phases are shown even when empty");
        assert_eq!(s.phases.last().unwrap().phase, "Skipped", "an unknown phase gets its own card, last");
        assert_eq!(s.success_rate.as_deref(), Some("67 %"));
        assert_eq!(s.median_time_to_fix.as_deref(), Some("1 m 00 s"));
        assert_eq!(s.p95_time_to_fix.as_deref(), Some("3 m 00 s"));
        assert_eq!(summary(&[]).success_rate, None);
    }

    #[test]
    fn table_filters_sorts_and_paginates() {
        let mut runs: Vec<Arc<RunDoc>> =
            (0..7).map(|i| run("a", &format!("r{i}"), "o/x", i, Some("Fixed"), Some(i + 5))).collect();
        runs.push(run("b", "other", "O/Y", 100, Some("Escalated"), Some(200)));
        newest_first(&mut runs);
        let now = t(1000);
        let q = RunQuery { per_page: Some(3), ..Default::default() };
        let p1 = run_table(&runs, &q, &Links::default(), &now);
        assert_eq!((p1.matching, p1.pages, p1.page), (8, 3, 1));
        assert_eq!(p1.rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["other", "r6", "r5"]);
        assert_eq!(p1.prev, None);
        assert_eq!(p1.next.as_deref(), Some("?per_page=3&page=2"));
        let p3 = run_table(&runs, &RunQuery { page: Some(99), ..q.clone() }, &Links::default(), &now);
        assert_eq!(p3.page, 3, "a page past the end shows the last one");
        assert_eq!(p3.rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["r1", "r0"]);
        let f = RunQuery { repository: "o/y".into(), ..Default::default() };
        let t1 = run_table(&runs, &f, &Links::default(), &now);
        assert_eq!(t1.rows.len(), 1, "repository filter is case-insensitive");
        assert_eq!(t1.rows[0].href, "/runs/b/other");
        assert_eq!(t1.rows[0].sha_href, "https://github.com/O/Y/commit/abcdef0123");
        let f = RunQuery { phase: "Escalated".into(), namespace: "a".into(), ..Default::default() };
        assert_eq!(run_table(&runs, &f, &Links::default(), &now).matching, 0);
        let f = RunQuery { class: "rust_fmt".into(), namespace: "a".into(), ..Default::default() };
        assert_eq!(run_table(&runs, &f, &Links::default(), &now).matching, 7);
        let q = RunQuery { repository: "o/x y".into(), phase: "Fixed".into(), ..Default::default() };
        assert_eq!(q.href(2), "?repository=o%2Fx%20y&phase=Fixed&page=2");
        let opts = filter_options(&runs);
        assert_eq!(opts.namespaces, ["a", "b"]);
        assert_eq!(opts.repositories, ["O/Y", "o/x"]);
        assert_eq!(opts.classes, ["rust_fmt"]);
    }

    #[test]
    fn groups_by_repository_class_and_agent() {
        let runs = vec![
            run("a", "r1", "o/x", 0, Some("Fixed"), Some(10)),
            run("a", "r2", "O/X", 5, Some("Escalated"), Some(10)),
            run("a", "r3", "o/y", 0, Some("Running"), None),
        ];
        let g = group_stats(&runs, GroupBy::Repository, &BTreeMap::from([(("a".into(), "r1".into()), 30)]), &t(65));
        assert_eq!(g[0].key, "o/x");
        assert_eq!((g[0].runs, g[0].fixed, g[0].escalated, g[0].active), (2, 1, 1, 0));
        assert_eq!(g[0].success_rate.as_deref(), Some("50 %"));
        assert_eq!(g[0].median_time_to_fix.as_deref(), Some("10 s"));
        assert_eq!(g[0].tokens, 30);
        assert_eq!(g[0].last_run, "1 m 00 s ago");
        assert_eq!(g[1].active, 1);
        assert_eq!(g[0].href.as_deref(), Some("/?repository=o%2Fx"));
        let c = group_stats(&runs, GroupBy::Class, &BTreeMap::new(), &t(65));
        assert_eq!((c.len(), c[0].runs), (1, 3));
    }

    #[test]
    fn diff_is_split_into_files_and_numbered_lines() {
        let patch = "diff --git a/src/a.rs b/src/a.rs\nindex 1..2 100644\n--- a/src/a.rs\n+++ b/src/a.rs\n@@ -3,3 +3,3 @@ fn x()\n keep\n-old\n+new\n keep2\ndiff --git a/gone.txt b/gone.txt\ndeleted file mode 100644\n--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n\\ No newline at end of file\n";
        let files = render_diff(patch);
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].path.as_str(), files[0].added, files[0].removed), ("src/a.rs", 1, 1));
        let kinds: Vec<_> = files[0].lines.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, ["meta", "hunk", "ctx", "del", "add", "ctx"]);
        let del = &files[0].lines[3];
        assert_eq!((del.old, del.new, del.text.as_str()), (Some(4), None, "-old"));
        let add = &files[0].lines[4];
        assert_eq!((add.old, add.new), (None, Some(4)));
        assert_eq!(files[0].lines[5].old, Some(5));
        assert_eq!((files[1].path.as_str(), files[1].removed), ("gone.txt", 1));
        assert_eq!(files[1].lines.last().unwrap().kind, "meta");
        // A plain `diff -u` without git headers.
        let files = render_diff("--- a.txt\n+++ a.txt\n@@ -1 +1 @@\n-a\n+b\n");
        assert_eq!((files.len(), files[0].path.as_str(), files[0].added), (1, "a.txt", 1));
        // Removed lines that look like headers stay lines of their hunk; the next file starts after.
        let files = render_diff(
            "--- a.md\n+++ a.md\n@@ -1,2 +1,1 @@\n--- a rule\n keep\n--- b.md\n+++ b.md\n@@ -1 +1 @@\n-x\n+y\n",
        );
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].path.as_str(), files[0].removed, files[0].lines[1].kind), ("a.md", 1, "del"));
        assert_eq!((files[1].path.as_str(), files[1].added), ("b.md", 1));
    }

    #[test]
    fn run_page_shows_timeline_patch_and_future_fields() {
        let mut r = (*run("ns", "r1", "o/x", 0, Some("Fixed"), Some(90))).clone();
        r.spec.source.workflow_name = Some("CI".into());
        r.spec.source.run_id = Some(5);
        r.spec.source.run_attempt = Some(2);
        r.spec.source.job_name = Some("lint".into());
        r.spec.source.url = Some("https://github.com/o/x/actions/runs/5/job/6".into());
        let st = r.status.as_mut().unwrap();
        st.attempts = 2;
        st.patch = Some(crate::dashboard::cache::PatchDoc {
            attempt: "r1-2".into(),
            config_map: Some("r1-2-patch".into()),
            diffstat: None,
        });
        st.history = vec![
            serde_json::json!({"action": "retry", "actor": "alice", "source": "kubectl", "time": "t", "hint": "x"}),
        ];
        st.pull_request =
            Some(serde_json::json!({"number": 9, "url": "https://github.com/o/x/pull/9", "state": "open"}));
        st.extra.insert("tokens".into(), serde_json::json!({"input": 1}));
        let attempt = |n: i64, phase: &str, reason: &str, d: (f64, f64, f64)| {
            let mut a = AttemptDoc::default();
            a.metadata.name = Some(format!("r1-{n}"));
            a.spec.attempt = n;
            a.spec.run_name = "r1".into();
            a.status = Some(AttemptStatusDoc {
                phase: Some(phase.into()),
                start_time: Some(t(10 * n)),
                completion_time: Some(t(10 * n + 8)),
                job_name: Some(format!("r1-{n}")),
                verdict: Some(VerdictDoc {
                    reason: reason.into(),
                    durations: Some(DurationsDoc {
                        checkout_seconds: Some(d.0),
                        agent_seconds: Some(d.1),
                        validate_seconds: Some(d.2),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
            Arc::new(a)
        };
        let attempts = vec![
            attempt(2, "Succeeded", "ValidationPassed", (1.0, 2.0, 1.0)),
            attempt(1, "Failed", "ValidationFailed", (1.0, 6.0, 1.0)),
        ];
        let mut patch = FilesDoc::default();
        patch.data.patch = Some("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n".into());
        let page = run_page(&r, &attempts, None, Some(&patch), &Links::default(), &t(100));
        assert_eq!(page.attempts_timeline.iter().map(|a| a.number).collect::<Vec<_>>(), [1, 2], "in order");
        let bars = &page.attempts_timeline[0].steps;
        assert_eq!((bars[1].offset, bars[1].width), (12.5, 75.0), "bars are relative to the longest attempt");
        assert_eq!(page.attempts_timeline[1].steps[2].offset, 37.5, "steps follow each other");
        assert_eq!(page.attempts_timeline[1].reason, "ValidationPassed");
        assert!(page.attempts_timeline[1].kept && !page.attempts_timeline[0].kept);
        assert_eq!(page.attempts_timeline[0].duration, "8.0 s");
        let p = page.patch.unwrap();
        assert_eq!((p.files.len(), p.missing), (1, false));
        assert!(p.apply_command.contains("configmap r1-2-patch -n ns"));
        let wf = page.source.iter().find(|f| f.label == "Workflow").unwrap();
        assert_eq!(wf.href.as_deref(), Some("https://github.com/o/x/actions/runs/5/attempts/2"));
        assert_eq!(page.history[0].actor, "alice");
        assert_eq!(page.history[0].other, "hint=x");
        assert_eq!(page.pull_request[0].value, "#9");
        assert_eq!(page.other_status[0].label, "tokens");
        assert_eq!(page.time_to_fix, "1 m 30 s");
        assert!(page.commands.iter().any(|c| c.kubectl == "kubectl logs -n ns job/r1-2 -c validate"));
        assert!(!page.commands.iter().any(|c| c.kubectl.contains("abort")), "no abort for a final run");
    }

    #[test]
    fn abort_is_offered_while_a_run_is_active() {
        let c = commands("ns", "r", "Running", None, None);
        assert!(
            c.iter()
                .any(|c| c.kubectl
                    == r#"kubectl patch healingrun r -n ns --type merge -p '{"spec":{"action":"abort"}}'"#)
        );
    }

    /// The commands table lists exactly the `spec.action` values the CRD accepts, so a new action
    /// (approve, deny, retry, …) fails here until the run page offers it.
    #[test]
    fn actions_table_matches_the_schema() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(crate::crd::HealingRun::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        let allowed: BTreeSet<String> = spec["action"]["enum"]
            .as_array()
            .expect("spec.action is an enum")
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        let listed: BTreeSet<String> = ACTIONS.iter().map(|a| a.action.to_string()).collect();
        assert_eq!(listed, allowed);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(0.42), "0.4 s");
        assert_eq!(fmt_duration(42.0), "42 s");
        assert_eq!(fmt_duration(185.0), "3 m 05 s");
        assert_eq!(fmt_duration(7260.0), "2 h 01 m");
        assert_eq!(fmt_duration(90000.0), "1 d 1 h");
        assert_eq!(quantile(&mut [3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(quantile(&mut [1.0, 2.0, 3.0, 4.0], 0.95), Some(4.0));
    }
}
