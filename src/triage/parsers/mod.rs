//! Structured diagnostics and class signals from a cleaned log.
//!
//! [`parse`] walks the lines once. A cheap gate (an Aho-Corasick keyword scan and a `file:line`
//! shape check) decides which lines the regex parsers see, so throughput stays in the hundreds of
//! MB/s. Parsers per concern:
//! - [`rust`]: rustc/cargo/clippy human output (`error[E0308]: …` + `--> file:line:col`), cargo test
//!   (`thread '…' panicked at file:line:col`, `test x ... FAILED`), rustfmt (`Diff in file:line:`);
//! - [`node`]: tsc, eslint (stylish, compact), stylelint, prettier `--check`, jest, vitest, npm, pnpm,
//!   yarn;
//! - [`infra`]: docker build (BuildKit and classic), hadolint, helm, kubectl/kubeconform, actionlint and
//!   GitHub workflow errors, GitHub permission errors, infrastructure flakes;
//! - [`misc`]: go build/test, pytest and Python linters, javac/maven/gradle;
//! - [`location`]: the generic `file:line[:col]: [severity] [code] message [rule]` family (gcc style,
//!   tsc, eslint unix, yamllint parsable, actionlint, flake8, mypy, go, cargo short format …);
//! - [`json`]: whole-document JSON reports (rustc/cargo `--message-format=json`, eslint `-f json`,
//!   hadolint, dockerfilelint, npm/pnpm audit, kube-score, kube-linter, tflint, trivy).

pub mod infra;
pub mod json;
pub mod jstest;
pub mod jstools;
pub mod location;
pub mod misc;
pub mod network;
pub mod node;
pub mod rust;

use std::collections::HashSet;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

use super::Limits;
use super::classify::FailureClass;
use super::extract::{Log, Marker};

/// How bad a diagnostic is. Orders errors first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// An error: the check failed.
    Error,
    /// A warning.
    Warning,
    /// Notes, infos, style hints.
    Note,
}

/// The tool that produced a diagnostic (serialised in snake_case, e.g. `cargo_test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    /// rustc (human `error[E…]` + `-->` or `--message-format=json`).
    Rustc,
    /// clippy lints.
    Clippy,
    /// `rustfmt --check` / `cargo fmt --check` diffs.
    Rustfmt,
    /// libtest (`cargo test`) failures and panics.
    CargoTest,
    /// cargo's own errors (dependency resolution, build scripts).
    Cargo,
    /// The TypeScript compiler.
    Tsc,
    /// eslint (stylish, compact, unix, JSON).
    Eslint,
    /// stylelint.
    Stylelint,
    /// tslint, standard, remark-lint and other JS-ecosystem linters.
    NodeLint,
    /// prettier `--check` / `--list-different`.
    Prettier,
    /// jest.
    Jest,
    /// vitest.
    Vitest,
    /// npm (`npm ERR!` / `npm error` codes).
    Npm,
    /// pnpm (`ERR_PNPM_*`).
    Pnpm,
    /// yarn 1 and yarn berry (`YNxxxx`).
    Yarn,
    /// pytest.
    Pytest,
    /// flake8, pylint, mypy, black, isort, bandit.
    Python,
    /// go build / vet / the Go module proxy.
    Go,
    /// go test.
    GoTest,
    /// javac, maven, gradle.
    Java,
    /// docker build (BuildKit and classic) and the docker CLI.
    Docker,
    /// hadolint.
    Hadolint,
    /// helm.
    Helm,
    /// yamllint.
    Yamllint,
    /// kubectl, kubeconform, kube-linter, kube-score.
    Kubernetes,
    /// tflint, trivy config scans.
    Terraform,
    /// ansible-lint.
    Ansible,
    /// dotenv-linter.
    Dotenv,
    /// actionlint.
    Actionlint,
    /// GitHub Actions runtime errors: permissions, invalid workflow files.
    GithubActions,
    /// mocha's spec reporter (`  1) suite` … `AssertionError`, `N failing`).
    Mocha,
    /// The Test Anything Protocol (`not ok 3 - name` with a YAML block): tape, node-tap, node:test
    /// `--test-reporter=tap`, prove, bats. Ecosystem-neutral.
    Tap,
    /// jasmine's console reporter (`Failures:` `1) spec` `Message:`).
    Jasmine,
    /// karma's progress reporter (`Chrome Headless … spec FAILED`).
    Karma,
    /// ava's reporter (`✘ [fail]: title`, `✖ title`).
    Ava,
    /// node:test's spec reporter (`✖ title (1.2ms)`).
    NodeTest,
    /// markdownlint-cli / markdownlint-cli2 (`file:line[:col] MD022/alias message`).
    Markdownlint,
    /// editorconfig-checker, eclint, lintspaces. Ecosystem-neutral.
    Editorconfig,
    /// size-limit budgets (`Package size limit has exceeded by …`).
    SizeLimit,
    /// gulp task errors (`'task' errored after …`).
    Gulp,
    /// grunt warnings (`Warning: … Use --force to continue.`, `Aborted due to warnings.`).
    Grunt,
    /// webpack (`ERROR in ./src/x.js`, `Module not found`).
    Webpack,
    /// apt / apt-get / dpkg.
    Apt,
    /// pip.
    Pip,
    /// curl and wget.
    Curl,
    /// git fetches and clones.
    Git,
    /// gpg / dirmngr key fetches.
    Gpg,
    /// The shell (`command not found`).
    Shell,
    /// Ruby, RSpec, minitest, RuboCop, RubyGems, Bundler.
    Ruby,
    /// PHP, PHPUnit, Composer.
    Php,
    /// C and C++: gcc, clang, the linker, make, CMake, ctest.
    Native,
    /// A `file:line` diagnostic from an unrecognised tool.
    Generic,
}

impl Tool {
    /// The snake_case name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Rustc => "rustc",
            Tool::Clippy => "clippy",
            Tool::Rustfmt => "rustfmt",
            Tool::CargoTest => "cargo_test",
            Tool::Cargo => "cargo",
            Tool::Tsc => "tsc",
            Tool::Eslint => "eslint",
            Tool::Stylelint => "stylelint",
            Tool::NodeLint => "node_lint",
            Tool::Prettier => "prettier",
            Tool::Jest => "jest",
            Tool::Vitest => "vitest",
            Tool::Npm => "npm",
            Tool::Pnpm => "pnpm",
            Tool::Yarn => "yarn",
            Tool::Pytest => "pytest",
            Tool::Python => "python",
            Tool::Go => "go",
            Tool::GoTest => "go_test",
            Tool::Java => "java",
            Tool::Docker => "docker",
            Tool::Hadolint => "hadolint",
            Tool::Helm => "helm",
            Tool::Yamllint => "yamllint",
            Tool::Kubernetes => "kubernetes",
            Tool::Terraform => "terraform",
            Tool::Ansible => "ansible",
            Tool::Dotenv => "dotenv",
            Tool::Actionlint => "actionlint",
            Tool::GithubActions => "github_actions",
            Tool::Mocha => "mocha",
            Tool::Tap => "tap",
            Tool::Jasmine => "jasmine",
            Tool::Karma => "karma",
            Tool::Ava => "ava",
            Tool::NodeTest => "node_test",
            Tool::Markdownlint => "markdownlint",
            Tool::Editorconfig => "editorconfig",
            Tool::SizeLimit => "size_limit",
            Tool::Gulp => "gulp",
            Tool::Grunt => "grunt",
            Tool::Webpack => "webpack",
            Tool::Apt => "apt",
            Tool::Pip => "pip",
            Tool::Curl => "curl",
            Tool::Git => "git",
            Tool::Gpg => "gpg",
            Tool::Shell => "shell",
            Tool::Ruby => "ruby",
            Tool::Php => "php",
            Tool::Native => "native",
            Tool::Generic => "generic",
        }
    }
}

/// One structured diagnostic: where, how bad, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// The tool that printed it.
    pub tool: Tool,
    /// The file as the tool printed it (relative or absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// How bad it is.
    pub severity: Severity,
    /// The tool's code or rule: `E0308`, `clippy::needless_return`, `TS2345`, `no-unused-vars`,
    /// `ERESOLVE`, `syntax-check` …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The message, one line (continuations joined with a space), at most 1 KiB.
    pub message: String,
    /// 1-based line of the log where the diagnostic starts.
    pub log_line: usize,
}

impl Diagnostic {
    /// A diagnostic without location.
    pub fn new(tool: Tool, severity: Severity, message: impl Into<String>, log_line: usize) -> Self {
        let mut message: String = message.into();
        truncate_message(&mut message);
        Self { tool, file: None, line: None, column: None, severity, code: None, message, log_line }
    }

    /// Set the file, line and column.
    pub fn at(mut self, file: impl Into<String>, line: Option<u32>, column: Option<u32>) -> Self {
        self.file = Some(file.into());
        self.line = line;
        self.column = column;
        self
    }

    /// Set the code.
    pub fn code(mut self, code: impl Into<String>) -> Self {
        let c: String = code.into();
        self.code = (!c.is_empty()).then_some(c);
        self
    }
}

const MAX_MESSAGE_BYTES: usize = 1024;

fn truncate_message(m: &mut String) {
    let t = m.trim();
    if t.len() != m.len() {
        *m = t.to_string();
    }
    if m.len() > MAX_MESSAGE_BYTES {
        let cut = super::extract::floor_char_boundary(m, MAX_MESSAGE_BYTES);
        m.truncate(cut);
        m.push('…');
    }
}

/// Evidence for a class from a log pattern that is not a diagnostic (e.g. `test result: FAILED`,
/// `Resource not accessible by integration`, `ECONNRESET`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    /// The class the pattern points to.
    pub class: FailureClass,
    /// Relative strength; a diagnostic counts about 1.
    pub weight: f32,
    /// Index into [`Log::lines`].
    pub line: usize,
}

/// Everything the parsers found.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Deduplicated diagnostics in log order, at most [`Limits::max_diagnostics`].
    pub diagnostics: Vec<Diagnostic>,
    /// Class signals (not diagnostics), in log order.
    pub signals: Vec<Signal>,
    /// Per line (index into [`Log::lines`]): how much the line looks like a failure, 0 to 10.
    pub line_scores: Vec<u8>,
    /// Notes for [`super::TriageResult::unreadable`].
    pub notes: Vec<String>,
}

/// What a line parser returns.
pub(crate) struct Sink<'p> {
    /// Where diagnostics go.
    pub out: &'p mut Vec<Diagnostic>,
    /// Where signals go.
    pub signals: &'p mut Vec<Signal>,
    /// Hashes of (tool, file, line, column, message) already pushed.
    seen: HashSet<u64>,
}

impl Sink<'_> {
    /// Push `d` unless an equal one (tool, file, line, column, message) is there.
    pub fn push(&mut self, d: Diagnostic) {
        use std::hash::{Hash, Hasher};
        let mut h = Fnv64(0xcbf2_9ce4_8422_2325);
        (d.tool, &d.file, d.line, d.column, &d.message).hash(&mut h);
        if self.seen.insert(h.finish()) {
            self.out.push(d);
        }
    }
    /// Record a class signal on line index `line`.
    pub fn signal(&mut self, class: FailureClass, weight: f32, line: usize) {
        self.signals.push(Signal { class, weight, line });
    }
}

/// FNV-1a, 64 bit: a fast hasher for the deduplication keys (not exposed to untrusted collisions
/// beyond dropping a duplicate-looking diagnostic).
struct Fnv64(u64);

impl std::hash::Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// A keyword that may start a permission error (checked by the permission regex).
pub(crate) const FLAG_PERMISSION: u8 = 1;
/// A keyword that may start an infrastructure-flake message (checked by the flake patterns).
pub(crate) const FLAG_FLAKE: u8 = 2;
/// Go module files are mentioned (`go.mod/go.sum are not up-to-date`).
pub(crate) const FLAG_GOMOD: u8 = 4;
/// A workflow file is mentioned (`.github/workflows/…`).
pub(crate) const FLAG_WORKFLOW: u8 = 8;
/// A kubectl/kubeconform-style message may follow.
pub(crate) const FLAG_KUBE: u8 = 16;
/// A network, registry or environment failure may be on the line (checked by [`network`]).
pub(crate) const FLAG_NET: u8 = 32;

/// Keywords, matched ASCII-case-insensitively: (pattern, failure score for the excerpt, flags).
const KEYWORDS: &[(&str, u8, u8)] = &[
    ("error", 4, 0),
    ("fail", 4, 0),
    ("fatal", 4, 0),
    ("panic", 4, 0),
    ("exception", 4, 0),
    ("traceback", 4, 0),
    ("denied", 4, FLAG_PERMISSION),
    ("forbidden", 4, FLAG_PERMISSION),
    ("not accessible", 4, FLAG_PERMISSION),
    ("permission", 2, FLAG_PERMISSION),
    ("403", 0, FLAG_PERMISSION | FLAG_NET),
    ("insufficient", 2, FLAG_PERMISSION),
    ("refusing to allow", 4, FLAG_PERMISSION),
    ("must have", 0, FLAG_PERMISSION),
    ("✖", 4, 0),
    ("✘", 4, 0),
    ("×", 4, 0),
    ("●", 3, 0),
    ("-->", 3, 0),
    ("assert", 3, 0),
    ("err!", 4, 0),
    ("warning", 2, 0),
    ("[warn]", 2, 0),
    ("cannot", 2, 0),
    ("could not", 2, FLAG_FLAKE | FLAG_NET),
    ("couldn't", 2, 0),
    ("unable to", 2, 0),
    ("invalid", 2, 0),
    ("undefined", 2, 0),
    ("undeclared", 2, 0),
    ("timed out", 2, 0),
    ("timeout", 2, FLAG_FLAKE | FLAG_NET),
    ("exit code", 2, FLAG_FLAKE),
    ("exit status", 2, 0),
    ("aborting", 2, 0),
    ("missing", 2, 0),
    ("expected", 2, 0),
    ("unexpected", 2, 0),
    ("would reformat", 3, 0),
    ("diff in", 3, 0),
    ("not up-to-date", 3, 0),
    ("go.mod", 1, FLAG_GOMOD),
    ("go.sum", 1, FLAG_GOMOD),
    (".github/workflows/", 1, FLAG_WORKFLOW),
    ("unable to recognize", 4, FLAG_KUBE),
    ("error from server", 4, FLAG_KUBE),
    ("is invalid:", 4, FLAG_KUBE),
    ("error validating", 4, FLAG_KUBE),
    ("killed", 2, FLAG_FLAKE),
    ("no space left", 4, FLAG_FLAKE),
    ("econn", 4, FLAG_FLAKE | FLAG_NET),
    ("etimedout", 4, FLAG_FLAKE),
    ("eai_again", 4, FLAG_FLAKE),
    ("socket hang up", 4, FLAG_FLAKE),
    ("connection reset", 4, FLAG_FLAKE),
    ("shutdown signal", 4, FLAG_FLAKE),
    ("lost communication", 4, FLAG_FLAKE),
    ("runner encountered", 4, FLAG_FLAKE),
    ("bad gateway", 4, FLAG_FLAKE),
    ("service unavailable", 4, FLAG_FLAKE),
    ("gateway time", 4, FLAG_FLAKE),
    ("rate limit", 2, FLAG_FLAKE),
    ("oomkilled", 4, FLAG_FLAKE),
    ("out of memory", 4, FLAG_FLAKE),
    ("not ok ", 4, 0),
    ("code style issues", 4, 0),
    ("limit has exceeded", 4, 0),
    ("wrong amount", 3, 0),
    ("wrong line ending", 3, 0),
    ("wrong indent", 3, 0),
    ("trailing whitespace", 3, 0),
    ("line too long", 3, 0),
    ("err:", 4, FLAG_NET),
    ("retrying", 2, FLAG_NET),
    ("could not fetch", 4, FLAG_NET),
    ("could not resolve", 4, FLAG_NET),
    ("resolving '", 2, FLAG_NET),
    ("unable to access", 4, FLAG_NET),
    ("could not read", 2, FLAG_NET),
    ("keyserver", 2, FLAG_NET),
    ("connection refused", 4, FLAG_NET),
    ("connect to ", 1, FLAG_NET),
    ("dial tcp", 4, FLAG_NET),
    ("no such host", 4, FLAG_NET),
    ("not found", 2, FLAG_NET),
    ("404", 1, FLAG_NET),
    ("spurious network", 4, FLAG_NET),
    ("successful http response", 4, FLAG_NET),
    ("couldn't connect", 4, FLAG_NET),
    ("could not transfer", 4, FLAG_NET),
    ("could not get resource", 4, FLAG_NET),
    ("received status code", 4, FLAG_NET),
    ("unable to download", 4, FLAG_NET),
    ("could not be downloaded", 4, FLAG_NET),
    ("curl error", 4, FLAG_NET),
    ("curl: (", 4, FLAG_NET),
    ("error response from daemon", 4, FLAG_NET),
    ("docker daemon", 4, FLAG_NET),
    ("not a valid chart repository", 4, FLAG_NET),
    ("connection to the server", 4, FLAG_NET),
    ("unable to connect to the server", 4, FLAG_NET),
    ("cluster unreachable", 4, FLAG_NET),
    ("server api group list", 4, FLAG_NET),
    ("no cached repository", 4, FLAG_NET),
    ("unable to locate package", 4, FLAG_NET),
    ("no installation candidate", 4, FLAG_NET),
    ("gpg error", 4, FLAG_NET),
    ("no_pubkey", 4, FLAG_NET),
    ("is not signed", 4, FLAG_NET),
    ("release file", 4, FLAG_NET),
    ("index files failed", 4, FLAG_NET),
    ("hash sum mismatch", 4, FLAG_NET),
    ("ssl", 2, FLAG_NET),
    ("certificate", 2, FLAG_NET),
    ("x509", 2, FLAG_NET),
    ("tls handshake", 4, FLAG_NET),
    ("service not known", 4, FLAG_NET),
    ("name resolution", 4, FLAG_NET),
    ("getaddrinfo", 4, FLAG_NET),
    ("trouble with", 4, FLAG_NET),
    ("request failed", 4, FLAG_NET),
    ("unexpected error occurred", 4, FLAG_NET),
    ("lookup disabled", 4, FLAG_NET),
    ("i/o timeout", 4, FLAG_NET),
    ("unexpected eof", 2, FLAG_NET),
    ("failed to do request", 4, FLAG_NET),
    ("failed to resolve source", 4, FLAG_NET),
    ("failed to fetch", 4, FLAG_NET),
    ("failed to download", 4, FLAG_NET),
    ("could not download", 4, FLAG_NET),
    ("failed to query", 4, FLAG_NET),
    ("pull access denied", 4, FLAG_NET),
    ("failed to authorize", 4, FLAG_NET),
    ("max retries exceeded", 4, FLAG_NET),
    ("read timed out", 4, FLAG_NET),
    ("proxyerror", 4, FLAG_NET),
    ("http error", 4, FLAG_NET),
    ("oserror", 4, FLAG_NET),
    ("fetcher due to", 4, FLAG_NET),
    ("network error", 4, FLAG_NET),
    ("httperror", 4, FLAG_NET),
    ("transportexception", 4, FLAG_NET),
    ("ssh: ", 2, FLAG_NET),
    ("connection timed out", 4, FLAG_NET),
    ("no such file or directory", 2, FLAG_NET),
    // GNU make's status of a recipe whose program was not found (checked by [`network`]).
    ("error 127", 4, FLAG_NET),
];

/// The keywords as an Aho-Corasick automaton of `kind`: leftmost-longest, ASCII case ignored.
fn keyword_automaton(kind: aho_corasick::AhoCorasickKind) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .kind(Some(kind))
        .build(KEYWORDS.iter().map(|(k, _, _)| k))
        .expect("static keyword automaton")
}

static KEYWORD_AC: LazyLock<AhoCorasick> = LazyLock::new(|| keyword_automaton(aho_corasick::AhoCorasickKind::DFA));

/// The keywords as one case-insensitive regex (the lazy DFA scans whole texts fastest). Longest
/// first, so that of the keywords starting at one place the longest matches (as in
/// [`KEYWORD_AC`]): `failed to fetch` carries [`FLAG_NET`], `fail` does not.
static KEYWORD_RE: LazyLock<regex::Regex> = LazyLock::new(|| {
    let mut keys: Vec<&str> = KEYWORDS.iter().map(|(k, _, _)| *k).collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    let alts: Vec<String> = keys.iter().map(|k| regex::escape(k)).collect();
    regex::RegexBuilder::new(&format!("(?i-u:{})", alts.join("|")))
        .unicode(false)
        .build()
        .expect("static keyword regex")
});

/// [`KEYWORD_RE`]'s matches for short texts: the same keywords in a contiguous-NFA Aho-Corasick
/// automaton (leftmost-longest, ASCII case ignored: the same matches as the regex, whose
/// alternatives are tried longest first). It is built in microseconds where the regex's lazy DFA
/// spends milliseconds determinising states on its first texts, so a `healer triage` process on a
/// small log never builds the regex.
static KEYWORD_NFA: LazyLock<AhoCorasick> =
    LazyLock::new(|| keyword_automaton(aho_corasick::AhoCorasickKind::ContiguousNFA));

/// Texts up to this many bytes are scanned with [`KEYWORD_NFA`], longer ones with [`KEYWORD_RE`]
/// (and every text once the process [`is_warm`]).
const KEYWORD_NFA_MAX_BYTES: usize = 16 << 10;

/// Log bytes this process has triaged so far (see [`is_warm`]).
static TRIAGED_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Once a process has triaged this many log bytes, small texts too are scanned with the automata
/// that are fast per byte but slow to build ([`KEYWORD_RE`]'s lazy DFA, the ecosystem signals'
/// Aho-Corasick DFA). Building both costs a few milliseconds; the contiguous NFAs cost about as
/// much more per MiB scanned, so a controller that triages many logs pays the build back after
/// about this many bytes, and a `healer triage` process on one small log never builds them. The
/// automata find the same matches, so only the speed depends on it.
pub const WARM_AFTER_BYTES: usize = 1 << 20;

/// Count `bytes` more triaged log bytes; whether the process had triaged at least
/// [`WARM_AFTER_BYTES`] before them.
fn note_triaged(bytes: usize) -> bool {
    TRIAGED_BYTES.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed) >= WARM_AFTER_BYTES
}

/// Whether this process has triaged at least [`WARM_AFTER_BYTES`] of logs (before the current
/// one): then small texts are scanned with the automata that are fast per byte.
pub fn is_warm() -> bool {
    TRIAGED_BYTES.load(std::sync::atomic::Ordering::Relaxed) >= WARM_AFTER_BYTES
}

/// The longest keyword, in bytes (a match of [`KEYWORD_RE`] is at most this long).
const MAX_KEYWORD_BYTES: usize = 32;

/// Score and flags of each keyword by its ASCII-lowercased bytes (the first keyword of that
/// spelling, as a search of [`KEYWORDS`] would find).
static KEYWORD_BY_TEXT: LazyLock<std::collections::HashMap<Vec<u8>, (u8, u8)>> = LazyLock::new(|| {
    let mut map = std::collections::HashMap::with_capacity(KEYWORDS.len());
    for &(k, s, f) in KEYWORDS {
        debug_assert!(k.len() <= MAX_KEYWORD_BYTES, "{k}");
        map.entry(k.to_ascii_lowercase().into_bytes()).or_insert((s, f));
    }
    map
});

/// The score and flags of the keyword `m` spells (ASCII case ignored), if it is one.
fn keyword_of(m: &str) -> Option<&'static (u8, u8)> {
    let b = m.as_bytes();
    if b.len() > MAX_KEYWORD_BYTES {
        return None;
    }
    let mut buf = [0u8; MAX_KEYWORD_BYTES];
    for (o, c) in buf.iter_mut().zip(b) {
        *o = c.to_ascii_lowercase();
    }
    KEYWORD_BY_TEXT.get(&buf[..b.len()])
}

/// Highest keyword score in `text` (0 when none) and the union of the matched keywords' flags.
pub fn scan_keywords(text: &str) -> (u8, u8) {
    let mut score = 0;
    let mut flags = 0;
    for m in KEYWORD_AC.find_iter(text) {
        let (_, s, f) = KEYWORDS[m.pattern().as_usize()];
        score = score.max(s);
        flags |= f;
    }
    (score, flags)
}

/// Highest keyword score in `text` (0 when none).
pub fn keyword_score(text: &str) -> u8 {
    scan_keywords(text).0
}

/// `file:12`, `file(12,`, `file[12,` or `file:[12,` in the line's first token (after blanks and an
/// optional `[TAG]`): the shape [`location`] parses.
pub fn has_location_shape(text: &str) -> bool {
    let mut s = text.trim_start();
    if s.starts_with('[') {
        match s.find(']') {
            Some(p) if p <= 16 => s = s[p + 1..].trim_start(),
            _ => return false,
        }
    }
    let b = s.as_bytes();
    let end = memchr::memchr2(b' ', b'\t', b).unwrap_or(b.len());
    // tslint's `file.ts[418, 38]:` has a blank inside the brackets.
    let tok = &b[..(end + 2).min(b.len())];
    memchr::memchr3_iter(b':', b'(', b'[', tok)
        .any(|i| tok.get(i + 1).is_some_and(|&n| n.is_ascii_digit() || n == b'['))
}

/// Run every parser over `log` (and `text`, its decoded source, for whole-document JSON reports).
///
/// `focus` (an index into `log.steps`, the failing step) limits the keyword scan to that step's
/// lines: other steps' lines are still parsed when they carry a `file:line` location, a
/// workflow-command marker or a parser's line prefix, but do not become failure anchors by keyword.
pub fn parse(log: &Log<'_>, text: &str, focus: Option<usize>, limits: &Limits) -> Parsed {
    let mut diagnostics = Vec::new();
    let mut signals = Vec::new();
    let mut notes = Vec::new();
    let mut sink = Sink { out: &mut diagnostics, signals: &mut signals, seen: HashSet::new() };
    let whole_json = json::parse_document(text, log, &mut sink, &mut notes);
    let warm = note_triaged(text.len());
    let n = log.lines.len();
    let mut line_scores = vec![0u8; n];
    // Keywords: one Aho-Corasick pass over the whole text, matches mapped to lines by offset (much
    // cheaper than a search per line). `gh run view --log` lines carry job and step names, so those
    // logs are scanned per cleaned line.
    let mut kw_scores = vec![0u8; n];
    let mut kw_flags = vec![0u8; n];
    if log.format == super::extract::LogFormat::GhCli {
        for (i, l) in log.lines.iter().enumerate() {
            (kw_scores[i], kw_flags[i]) = scan_keywords(&l.text);
        }
    } else if n > 0 {
        let lines = match focus {
            Some(f) => log.steps[f].lines.clone(),
            None => 0..n,
        };
        let (from, to) = match (log.lines.get(lines.start), log.lines.get(lines.end)) {
            (Some(a), Some(b)) => (a.start, b.start.min(text.len())),
            (Some(a), None) => (a.start, text.len()),
            _ => (0, 0),
        };
        let mut li = lines.start;
        let region = text.get(from..to).unwrap_or("");
        let mut mark = |at: usize, m: &str| {
            while li + 1 < n && log.lines[li + 1].start <= at {
                li += 1;
            }
            if let Some(&(s, f)) = keyword_of(m) {
                kw_scores[li] = kw_scores[li].max(s);
                kw_flags[li] |= f;
            }
        };
        if !warm && region.len() <= KEYWORD_NFA_MAX_BYTES {
            for m in KEYWORD_NFA.find_iter(region) {
                mark(from + m.start(), &region[m.range()]);
            }
        } else {
            for m in KEYWORD_RE.find_iter(region) {
                mark(from + m.start(), m.as_str());
            }
        }
    }
    let mut state = State::default();
    let mut capped = false;
    for i in 0..n {
        let line = &log.lines[i];
        let t: &str = &line.text;
        let (kw, flags) = (kw_scores[i], kw_flags[i]);
        state.flags = flags;
        let mut score = kw;
        match line.marker {
            Marker::Error => score = if t.starts_with("Process completed with exit code") { 3 } else { 8 },
            Marker::Warning => score = score.max(3),
            Marker::Group | Marker::EndGroup | Marker::Debug | Marker::Command => score = score.min(1),
            _ => {}
        }
        if capped {
            line_scores[i] = score;
            continue;
        }
        let before = sink.out.len();
        let special = |t: &str| {
            t.starts_with(|c: char| c == '{' || c == '[' || !c.is_ascii())
                || t.starts_with("---")
                || t.starts_with("FAIL")
                || t.starts_with("test ")
                || t.starts_with("==> ")
        };
        if kw > 0
            || flags != 0
            || special(t)
            || has_location_shape(t)
            || jstest::wants(&state, t)
            || jstools::wants(&state, t)
        {
            if !whole_json && t.starts_with('{') {
                json::parse_line(t, line.number, &mut sink);
            }
            let _ = (flags & FLAG_NET != 0 && network::parse_line(t, i, line.number, &mut sink))
                || rust::parse_line(log, i, &mut state, &mut sink)
                || node::parse_line(log, i, &mut state, &mut sink)
                || jstest::parse_line(log, i, &mut state, &mut sink)
                || jstools::parse_line(log, i, &mut state, &mut sink)
                || infra::parse_line(log, i, &mut state, &mut sink)
                || misc::parse_line(log, i, &mut state, &mut sink)
                || location::parse_line(log, i, &mut sink);
            infra::signals(t, i, flags, &mut sink);
        }
        if sink.out.len() > before {
            let sev = sink.out[before..].iter().map(|d| d.severity).min().unwrap_or(Severity::Note);
            score = score.max(match sev {
                Severity::Error => 10,
                Severity::Warning => 5,
                Severity::Note => 2,
            });
        } else if score > 0 && line.marker != Marker::Error && super::boilerplate::is_boilerplate(t) {
            // A runner's set-up or notice, whatever words it has, never anchors the excerpt.
            score = 0;
        }
        line_scores[i] = score;
        if sink.out.len() >= limits.max_diagnostics {
            capped = true;
            notes.push(format!("diagnostics capped at {}; later ones are not listed", limits.max_diagnostics));
        }
    }
    diagnostics.truncate(limits.max_diagnostics);
    Parsed { diagnostics, signals, line_scores, notes }
}

/// Test helper: the diagnostics of a plain `text` with the default limits and no focus step.
#[cfg(test)]
pub(crate) fn parse_text(text: &str) -> Vec<Diagnostic> {
    let log = Log::parse(text, &Limits::default());
    parse(&log, text, None, &Limits::default()).diagnostics
}

/// Cross-line state of the line parsers.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Inside `helm lint` output (`==> Linting …`).
    pub helm_lint: bool,
    /// [`FLAG_PERMISSION`] / [`FLAG_FLAKE`] of the current line.
    pub flags: u8,
    /// Lint codes by message: rustc and clippy name a lint only at its first occurrence.
    pub lint_by_message: std::collections::HashMap<String, String>,
    /// The last stylish-table row (line index) and its file header.
    pub stylish: Option<(usize, String)>,
    /// After mocha's `N failing`: the list of failures follows.
    pub mocha_failing: bool,
    /// After jasmine's `Failures:`, until its `N specs, M failures`.
    pub jasmine_failures: bool,
    /// After a `prettier --list-different` command: bare file lines are unformatted files.
    pub prettier_list: bool,
    /// After an editorconfig-checker `file:` header.
    pub editorconfig: bool,
    /// After a lintspaces `File: …` header.
    pub lintspaces: bool,
    /// The file of the current editorconfig-checker or lintspaces block.
    pub editorconfig_file: String,
}

/// A [`Needle`] for a string literal, built on first use.
macro_rules! needle {
    ($s:literal) => {
        $crate::triage::parsers::Needle::from_lazy(std::sync::LazyLock::new(|| memchr::memmem::Finder::new($s)))
    };
}
pub(crate) use needle;

/// A substring search built once: `str::find`/`contains` build a two-way searcher on every call,
/// which costs more than the search itself on the short lines the parsers look at.
pub(crate) struct Needle(LazyLock<memchr::memmem::Finder<'static>>);

impl Needle {
    /// Wrap a lazily built finder; use [`needle!`].
    pub(crate) const fn from_lazy(finder: LazyLock<memchr::memmem::Finder<'static>>) -> Self {
        Self(finder)
    }
    /// Byte offset of the first occurrence in `t` (a char boundary: the needle is valid UTF-8).
    pub(crate) fn find(&self, t: &str) -> Option<usize> {
        self.0.find(t.as_bytes())
    }
    /// Whether `t` contains the needle.
    pub(crate) fn is_in(&self, t: &str) -> bool {
        self.find(t).is_some()
    }
}

/// Collapse runs of whitespace into one space.
pub fn collapse_ws(s: &str) -> String {
    let t = s.trim();
    let b = t.as_bytes();
    if !b.iter().any(|&c| c == b'\t' || c == b'\n' || c == b'\r') && !b.windows(2).any(|w| w == b"  ") {
        return t.to_string();
    }
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The small-text automaton finds exactly the regex's matches: same starts, same keywords
    /// (longest at a start, ASCII case ignored, non-ASCII marks byte for byte).
    #[test]
    fn keyword_automaton_matches_the_keyword_regex() {
        let mut text = String::new();
        for (k, _, _) in KEYWORDS {
            text.push_str(&format!("x {k} {} {}y\n", k.to_ascii_uppercase(), k.replace(' ', "")));
        }
        text.push_str("Failed to fetch https://x: ERROR 404 Not Found; could not resolve host ✖ ×●\n");
        let by_regex: Vec<(usize, &str)> = KEYWORD_RE.find_iter(&text).map(|m| (m.start(), m.as_str())).collect();
        let by_nfa: Vec<(usize, &str)> = KEYWORD_NFA.find_iter(&text).map(|m| (m.start(), &text[m.range()])).collect();
        assert!(by_regex.len() > KEYWORDS.len(), "{}", by_regex.len());
        assert_eq!(by_nfa, by_regex);
    }

    /// After [`WARM_AFTER_BYTES`] of triaged logs the process switches a small log's scans to the
    /// automata that are fast per byte: the same diagnostics, signals and line scores as before.
    #[test]
    fn a_warm_process_finds_what_a_cold_one_does() {
        let small = "npm error code E404\nsrc/a.ts(3,5): error TS2322: Type 'x' is not assignable\n\
            Error: failed to fetch https://x\nmake: *** [Makefile:2: lint] Error 127\n";
        let run = |t: &str| {
            let log = Log::parse(t, &Limits::default());
            let p = parse(&log, t, None, &Limits::default());
            (p.diagnostics, p.signals, p.line_scores)
        };
        let before = run(small);
        let filler = "ok: nothing failed here, only a warning about timeouts\n".repeat(WARM_AFTER_BYTES / 50 + 1);
        run(&filler);
        assert!(is_warm());
        assert_eq!(run(small), before);
        assert!(!before.0.is_empty());
    }
}
