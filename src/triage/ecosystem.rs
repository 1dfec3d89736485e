//! The failing job's ecosystem, scored from every hint triage has, for when no parser names the
//! failure (or names it in an ecosystem-neutral format such as TAP): a confident ecosystem routes to
//! its profile even when the class is `unknown`.
//!
//! Evidence, weakest first (each adds to one ecosystem's score; the confidence is the winner's share
//! of the total, damped while the total is small):
//! - the repository's languages (GitHub's `GET /repos/{owner}/{repo}/languages`: language name →
//!   bytes of code), as shares of the total;
//! - the changed files' extensions and manifest names (`package.json`, `Cargo.toml`, `go.mod` …);
//! - the log's own signals: toolchain banners and commands (`> app@1.0.0 test` from npm, `yarn run
//!   v1.22`, `Compiling x v0.1.0` from cargo, `go: downloading`, `Collecting` from pip, BuildKit's
//!   `#5 [2/4] RUN`), paths and manifests (`node_modules/`, `site-packages/`, `Cargo.toml`, `go.mod`,
//!   `pom.xml`), and the files the diagnostics name (by extension);
//! - the failing step's name and command (`Run npm test`, `cargo test --all`), counted most.
//!
//! Scanning is bounded: the failing step's lines and the log's last [`MAX_SCAN_LINES`] lines are
//! looked at, through one Aho-Corasick automaton; a GitHub Actions job's set-up section (before its
//! first step) is not, unless it is where the job failed.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

use super::extract::Log;
use super::parsers::Diagnostic;

/// An ecosystem: the toolchain family of a failing job (serialised in snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ecosystem {
    /// cargo, rustc, clippy, rustfmt.
    Rust,
    /// Node.js, npm/yarn/pnpm, browsers: JavaScript, TypeScript, CSS and their tools.
    Javascript,
    /// The Go toolchain.
    Go,
    /// CPython, pip, pytest and the Python linters.
    Python,
    /// Java, Kotlin, Scala: javac, Maven, Gradle.
    Jvm,
    /// Ruby, Bundler, RSpec.
    Ruby,
    /// PHP, Composer, PHPUnit.
    Php,
    /// .NET: dotnet, MSBuild, NuGet.
    Dotnet,
    /// C and C++: gcc, clang, make, CMake.
    Native,
    /// Containers, charts, clusters and cloud: docker, helm, kubectl, terraform.
    Infrastructure,
}

impl Ecosystem {
    /// Every ecosystem, in declaration order.
    pub const ALL: [Ecosystem; 10] = [
        Ecosystem::Rust,
        Ecosystem::Javascript,
        Ecosystem::Go,
        Ecosystem::Python,
        Ecosystem::Jvm,
        Ecosystem::Ruby,
        Ecosystem::Php,
        Ecosystem::Dotnet,
        Ecosystem::Native,
        Ecosystem::Infrastructure,
    ];

    /// The snake_case name, e.g. `javascript`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Rust => "rust",
            Ecosystem::Javascript => "javascript",
            Ecosystem::Go => "go",
            Ecosystem::Python => "python",
            Ecosystem::Jvm => "jvm",
            Ecosystem::Ruby => "ruby",
            Ecosystem::Php => "php",
            Ecosystem::Dotnet => "dotnet",
            Ecosystem::Native => "native",
            Ecosystem::Infrastructure => "infrastructure",
        }
    }

    /// The ecosystem of a GitHub linguist language name (`TypeScript`, `Rust`, `HCL` …), if any.
    /// Markup and data languages (Markdown, JSON, YAML alone) have none.
    pub fn of_language(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "rust" => Ecosystem::Rust,
            "javascript" | "typescript" | "css" | "scss" | "sass" | "less" | "vue" | "svelte" | "html" | "astro"
            | "coffeescript" | "mdx" => Ecosystem::Javascript,
            "go" => Ecosystem::Go,
            "python" | "cython" | "jupyter notebook" => Ecosystem::Python,
            "java" | "kotlin" | "scala" | "groovy" | "clojure" => Ecosystem::Jvm,
            "ruby" => Ecosystem::Ruby,
            "php" | "blade" | "hack" => Ecosystem::Php,
            "c#" | "f#" | "visual basic .net" | "powershell" => Ecosystem::Dotnet,
            "c" | "c++" | "objective-c" | "cmake" | "makefile" | "assembly" | "cuda" => Ecosystem::Native,
            "dockerfile" | "hcl" | "smarty" | "mustache" | "go template" | "jsonnet" | "nix" | "bicep" => {
                Ecosystem::Infrastructure
            }
            _ => return None,
        })
    }

    /// The ecosystem a file belongs to, from its name or extension (`None` for neutral files such as
    /// `README.md` or `config.yaml`).
    pub fn of_path(path: &str) -> Option<Self> {
        let p = path.trim();
        let base = p.rsplit(['/', '\\']).next().unwrap_or(p);
        let lower = base.to_ascii_lowercase();
        Some(match lower.as_str() {
            "cargo.toml" | "cargo.lock" | "rust-toolchain" | "rust-toolchain.toml" | "clippy.toml" | "rustfmt.toml" => {
                Ecosystem::Rust
            }
            "package.json" | "package-lock.json" | "yarn.lock" | "pnpm-lock.yaml" | "tsconfig.json" | ".npmrc"
            | ".nvmrc" | ".eslintrc" | ".eslintrc.json" | ".eslintrc.js" | ".prettierrc" | "gulpfile.js"
            | "gruntfile.js" | "karma.conf.js" | ".stylelintrc" | ".stylelintrc.json" | ".markdownlint.json" => {
                Ecosystem::Javascript
            }
            "go.mod" | "go.sum" | "go.work" => Ecosystem::Go,
            "requirements.txt" | "setup.py" | "setup.cfg" | "pyproject.toml" | "pipfile" | "pipfile.lock"
            | "poetry.lock" | "tox.ini" | "conftest.py" => Ecosystem::Python,
            "pom.xml" | "build.gradle" | "build.gradle.kts" | "settings.gradle" | "gradlew" | "build.sbt" => {
                Ecosystem::Jvm
            }
            "gemfile" | "gemfile.lock" | "rakefile" | ".rubocop.yml" => Ecosystem::Ruby,
            "composer.json" | "composer.lock" | "phpunit.xml" | "phpunit.xml.dist" => Ecosystem::Php,
            "cmakelists.txt" | "makefile" | "configure.ac" | "meson.build" => Ecosystem::Native,
            "dockerfile"
            | "containerfile"
            | "chart.yaml"
            | "kustomization.yaml"
            | "docker-compose.yml"
            | "docker-compose.yaml"
            | "helmfile.yaml"
            | "skaffold.yaml" => Ecosystem::Infrastructure,
            _ if lower.starts_with("dockerfile.") || lower.ends_with(".dockerfile") => Ecosystem::Infrastructure,
            _ => {
                let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
                match ext {
                    "rs" => Ecosystem::Rust,
                    "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" | "vue" | "svelte" | "css" | "scss"
                    | "sass" | "less" | "astro" => Ecosystem::Javascript,
                    "go" => Ecosystem::Go,
                    "py" | "pyi" | "ipynb" => Ecosystem::Python,
                    "java" | "kt" | "kts" | "scala" | "groovy" | "clj" => Ecosystem::Jvm,
                    "rb" | "erb" | "gemspec" | "rake" => Ecosystem::Ruby,
                    "php" => Ecosystem::Php,
                    "cs" | "fs" | "vb" | "csproj" | "fsproj" | "sln" | "razor" => Ecosystem::Dotnet,
                    "c" | "h" | "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" | "m" | "mm" | "cu" => Ecosystem::Native,
                    "tf" | "tfvars" | "hcl" => Ecosystem::Infrastructure,
                    _ => return None,
                }
            }
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The ecosystem triage settled on and how sure it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EcosystemGuess {
    /// The winning ecosystem.
    pub ecosystem: Ecosystem,
    /// 0.0 to 1.0: the winner's share of all ecosystem evidence, damped while the evidence is thin.
    pub confidence: f32,
}

/// Everything the ecosystem score looks at.
#[derive(Debug, Default)]
pub struct EcosystemEvidence<'a> {
    /// The parsed log (its last [`MAX_SCAN_LINES`] lines are scanned).
    pub log: Option<&'a Log<'a>>,
    /// The lines of the failing step (indices into the log's lines); signals there count double.
    pub focus_lines: Option<std::ops::Range<usize>>,
    /// The diagnostics the parsers found (their files' extensions vote).
    pub diagnostics: &'a [Diagnostic],
    /// The failing step's name and command lines (`Run npm test`, `npm test`).
    pub step_texts: Vec<&'a str>,
    /// The job's and workflow's names.
    pub names: Vec<&'a str>,
    /// Changed files, relative to the repository root.
    pub changed_files: &'a [String],
    /// The repository's languages: (GitHub linguist name, bytes of code).
    pub languages: &'a [(String, u64)],
}

/// Besides the failing step, at most this many of the log's last lines are scanned for signals.
pub const MAX_SCAN_LINES: usize = 3_000;

/// Log signals: (pattern, ecosystem, weight). Matched ASCII-case-sensitively anywhere in a line;
/// patterns are specific enough (a tool's banner, a path, a manifest name) to be taken at their word.
const SIGNALS: &[(&str, Ecosystem, f32)] = &[
    // Node.js and its package managers.
    ("node_modules/", Ecosystem::Javascript, 1.0),
    ("npm ERR!", Ecosystem::Javascript, 1.5),
    ("npm error ", Ecosystem::Javascript, 1.5),
    ("npm warn ", Ecosystem::Javascript, 0.5),
    ("npm WARN ", Ecosystem::Javascript, 0.5),
    ("yarn run v", Ecosystem::Javascript, 3.0),
    ("yarn install v", Ecosystem::Javascript, 3.0),
    ("$ yarn ", Ecosystem::Javascript, 2.0),
    ("ERR_PNPM_", Ecosystem::Javascript, 2.0),
    (" ELIFECYCLE ", Ecosystem::Javascript, 2.0),
    ("node:internal/", Ecosystem::Javascript, 1.5),
    ("Node.js v", Ecosystem::Javascript, 2.0),
    ("package.json", Ecosystem::Javascript, 1.0),
    ("npx ", Ecosystem::Javascript, 1.0),
    ("$ npm ", Ecosystem::Javascript, 2.0),
    ("$ node ", Ecosystem::Javascript, 2.0),
    ("at Object.<anonymous> (", Ecosystem::Javascript, 1.0),
    ("at Context.<anonymous> (", Ecosystem::Javascript, 1.5),
    ("at UserContext.<anonymous> (", Ecosystem::Javascript, 1.5),
    ("webpack ", Ecosystem::Javascript, 1.0),
    // Rust.
    ("Cargo.toml", Ecosystem::Rust, 1.5),
    ("Cargo.lock", Ecosystem::Rust, 1.5),
    ("   Compiling ", Ecosystem::Rust, 1.0),
    ("    Finished ", Ecosystem::Rust, 1.0),
    ("     Running ", Ecosystem::Rust, 1.0),
    ("error: could not compile `", Ecosystem::Rust, 3.0),
    ("rustc ", Ecosystem::Rust, 1.0),
    ("cargo ", Ecosystem::Rust, 1.0),
    (".cargo/registry", Ecosystem::Rust, 1.5),
    // Go.
    ("go: downloading ", Ecosystem::Go, 2.0),
    ("go: finding ", Ecosystem::Go, 2.0),
    ("go.mod", Ecosystem::Go, 1.5),
    ("go.sum", Ecosystem::Go, 1.5),
    ("--- FAIL: ", Ecosystem::Go, 2.0),
    ("=== RUN ", Ecosystem::Go, 1.0),
    ("go build", Ecosystem::Go, 1.0),
    ("go test", Ecosystem::Go, 1.0),
    ("go vet", Ecosystem::Go, 1.0),
    ("goroutine ", Ecosystem::Go, 1.0),
    ("proxy.golang.org", Ecosystem::Go, 1.5),
    // Python.
    ("Traceback (most recent call last)", Ecosystem::Python, 2.0),
    ("site-packages/", Ecosystem::Python, 1.5),
    ("Collecting ", Ecosystem::Python, 1.0),
    ("pip install", Ecosystem::Python, 1.5),
    ("Looking in indexes:", Ecosystem::Python, 2.0),
    ("requirements.txt", Ecosystem::Python, 1.5),
    ("pyproject.toml", Ecosystem::Python, 1.5),
    ("test session starts", Ecosystem::Python, 3.0),
    ("python -m ", Ecosystem::Python, 1.0),
    ("python3 ", Ecosystem::Python, 1.0),
    (".py\", line ", Ecosystem::Python, 1.5),
    // JVM.
    ("[INFO] BUILD", Ecosystem::Jvm, 3.0),
    ("[ERROR] BUILD", Ecosystem::Jvm, 3.0),
    ("[INFO] Scanning for projects", Ecosystem::Jvm, 3.0),
    ("pom.xml", Ecosystem::Jvm, 1.5),
    ("build.gradle", Ecosystem::Jvm, 1.5),
    ("> Task :", Ecosystem::Jvm, 2.0),
    ("BUILD FAILED in ", Ecosystem::Jvm, 2.0),
    ("\tat java.", Ecosystem::Jvm, 1.5),
    ("\tat org.", Ecosystem::Jvm, 1.0),
    ("mvn ", Ecosystem::Jvm, 1.0),
    ("gradlew", Ecosystem::Jvm, 1.5),
    // Ruby.
    ("Gemfile", Ecosystem::Ruby, 1.5),
    ("bundle exec", Ecosystem::Ruby, 2.0),
    ("rspec ./", Ecosystem::Ruby, 2.0),
    (".rb:", Ecosystem::Ruby, 1.0),
    ("gem install", Ecosystem::Ruby, 1.0),
    ("rubygems", Ecosystem::Ruby, 1.0),
    // PHP.
    ("composer.json", Ecosystem::Php, 1.5),
    ("composer install", Ecosystem::Php, 2.0),
    ("PHPUnit ", Ecosystem::Php, 2.0),
    (".php:", Ecosystem::Php, 1.0),
    ("PHP Parse error", Ecosystem::Php, 2.0),
    ("PHP Fatal error", Ecosystem::Php, 2.0),
    // .NET.
    ("dotnet ", Ecosystem::Dotnet, 1.5),
    ("MSBuild", Ecosystem::Dotnet, 1.5),
    (".csproj", Ecosystem::Dotnet, 2.0),
    ("NuGet", Ecosystem::Dotnet, 1.0),
    // C and C++.
    ("CMakeLists.txt", Ecosystem::Native, 2.0),
    ("CMake Error", Ecosystem::Native, 2.0),
    ("make: *** ", Ecosystem::Native, 1.0),
    ("make[", Ecosystem::Native, 0.5),
    ("collect2: error", Ecosystem::Native, 2.0),
    ("gcc ", Ecosystem::Native, 1.0),
    ("g++ ", Ecosystem::Native, 1.0),
    ("clang", Ecosystem::Native, 0.5),
    ("ctest", Ecosystem::Native, 1.0),
    // Containers, charts, clusters.
    ("Dockerfile", Ecosystem::Infrastructure, 1.5),
    ("docker build", Ecosystem::Infrastructure, 2.0),
    ("docker pull", Ecosystem::Infrastructure, 2.0),
    ("docker push", Ecosystem::Infrastructure, 2.0),
    ("buildx", Ecosystem::Infrastructure, 2.0),
    ("failed to solve", Ecosystem::Infrastructure, 3.0),
    ("Docker daemon", Ecosystem::Infrastructure, 2.0),
    ("helm ", Ecosystem::Infrastructure, 1.5),
    ("Chart.yaml", Ecosystem::Infrastructure, 2.0),
    ("kubectl", Ecosystem::Infrastructure, 1.5),
    ("terraform", Ecosystem::Infrastructure, 1.5),
    ("kustomize", Ecosystem::Infrastructure, 1.5),
    ("apiVersion:", Ecosystem::Infrastructure, 0.5),
];

/// The signals as an Aho-Corasick automaton of `kind`: leftmost-first, case kept.
fn signal_automaton(kind: aho_corasick::AhoCorasickKind) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .kind(Some(kind))
        .build(SIGNALS.iter().map(|(p, _, _)| p))
        .expect("static ecosystem automaton")
}

static SIGNAL_AC: LazyLock<AhoCorasick> = LazyLock::new(|| signal_automaton(aho_corasick::AhoCorasickKind::DFA));

/// [`SIGNAL_AC`] as a contiguous NFA (the same matches): built in microseconds instead of the DFA's
/// milliseconds, slower per byte. Logs up to [`SIGNAL_NFA_MAX_BYTES`] use it, so a `healer triage`
/// process on a small log never builds the DFA.
static SIGNAL_NFA: LazyLock<AhoCorasick> =
    LazyLock::new(|| signal_automaton(aho_corasick::AhoCorasickKind::ContiguousNFA));

/// Logs of at most this many bytes are scanned with [`SIGNAL_NFA`], longer ones with [`SIGNAL_AC`]
/// (and every log once the process [`is_warm`](super::parsers::is_warm)).
const SIGNAL_NFA_MAX_BYTES: usize = 32 << 10;

/// The ecosystem of a command or step-name word (`npm`, `cargo`, `pytest`, `helm` …).
fn word_ecosystem(w: &str) -> Option<Ecosystem> {
    Some(match w {
        "cargo" | "rustc" | "rustup" | "clippy" | "rustfmt" | "nextest" | "rust" | "msrv" => Ecosystem::Rust,
        "npm" | "npx" | "yarn" | "pnpm" | "node" | "nodejs" | "bun" | "deno" | "jest" | "vitest" | "mocha"
        | "karma" | "jasmine" | "ava" | "tape" | "eslint" | "prettier" | "stylelint" | "tsc" | "webpack" | "vite"
        | "gulp" | "grunt" | "lerna" | "nx" | "turbo" | "markdownlint" | "playwright" | "cypress" | "frontend"
        | "typescript" | "javascript" => Ecosystem::Javascript,
        "go" | "golang" | "golangci" | "gofmt" | "gotestsum" | "staticcheck" => Ecosystem::Go,
        "pip" | "pip3" | "python" | "python3" | "pytest" | "tox" | "nox" | "poetry" | "flake8" | "mypy" | "ruff"
        | "black" | "pylint" | "isort" | "pipenv" | "uv" | "django" => Ecosystem::Python,
        "mvn" | "mvnw" | "maven" | "gradle" | "gradlew" | "sbt" | "java" | "javac" | "kotlin" => Ecosystem::Jvm,
        "bundle" | "bundler" | "rake" | "rspec" | "rubocop" | "gem" | "ruby" | "rails" => Ecosystem::Ruby,
        "composer" | "phpunit" | "php" | "phpstan" | "psalm" | "artisan" => Ecosystem::Php,
        "dotnet" | "msbuild" | "nuget" => Ecosystem::Dotnet,
        "cmake" | "ctest" | "make" | "gcc" | "clang" | "meson" | "ninja" | "bazel" => Ecosystem::Native,
        "docker" | "buildx" | "helm" | "kubectl" | "kustomize" | "terraform" | "tflint" | "hadolint" | "ansible"
        | "kubeconform" | "helmfile" | "skaffold" | "deploy" | "deployment" | "infra" | "k8s" | "kubernetes"
        | "container" | "image" => Ecosystem::Infrastructure,
        _ => return None,
    })
}

fn name_words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && w.len() < 32)
        .map(str::to_ascii_lowercase)
}

/// Score the ecosystems and return the winner, or `None` when nothing hints at one.
pub fn guess(ev: &EcosystemEvidence<'_>) -> Option<EcosystemGuess> {
    let mut score = [0f32; Ecosystem::ALL.len()];
    // Repository languages: up to 2 points, by share of bytes.
    let total: u64 = ev.languages.iter().map(|(_, b)| *b).sum();
    if total > 0 {
        for (name, bytes) in ev.languages {
            if let Some(e) = Ecosystem::of_language(name) {
                score[e.index()] += 2.0 * (*bytes as f32 / total as f32);
            }
        }
    }
    // Changed files: up to 3 points, by share.
    let mut files = [0f32; Ecosystem::ALL.len()];
    let mut nfiles = 0f32;
    for f in ev.changed_files.iter().take(10_000) {
        if let Some(e) = Ecosystem::of_path(f) {
            files[e.index()] += 1.0;
            nfiles += 1.0;
        }
    }
    if nfiles > 0.0 {
        for (s, f) in score.iter_mut().zip(files) {
            *s += 3.0 * f / nfiles;
        }
    }
    // Names: the failing step's name and command count 3 per word (once per ecosystem and text),
    // the job's and workflow's 1.5.
    for (texts, w) in [(&ev.step_texts, 3.0f32), (&ev.names, 1.5f32)] {
        for t in texts.iter() {
            let mut seen = [false; Ecosystem::ALL.len()];
            for word in name_words(t).take(64) {
                if let Some(e) = word_ecosystem(&word)
                    && !seen[e.index()]
                {
                    seen[e.index()] = true;
                    score[e.index()] += w;
                }
            }
        }
    }
    // Diagnostics' files: 1 point each, at most 6 per ecosystem.
    let mut diag = [0f32; Ecosystem::ALL.len()];
    for d in ev.diagnostics.iter().take(2000) {
        if let Some(e) = d.file.as_deref().and_then(Ecosystem::of_path) {
            diag[e.index()] += 1.0;
        }
        if let Some(e) = super::classify::tool_ecosystem(d.tool) {
            diag[e.index()] += 1.0;
        }
    }
    for (s, d) in score.iter_mut().zip(diag) {
        *s += d.min(6.0);
    }
    // Log signals, at most 8 per ecosystem.
    if let Some(log) = ev.log {
        let mut sig = [0f32; Ecosystem::ALL.len()];
        let n = log.lines.len();
        let tail = n.saturating_sub(MAX_SCAN_LINES)..n;
        let focus = ev.focus_lines.clone().unwrap_or(0..0);
        let before_tail = focus.start.min(tail.start)..focus.end.min(tail.start);
        let log_bytes = log.lines.last().map_or(0, |l| l.start + l.text.len());
        let small = log_bytes <= SIGNAL_NFA_MAX_BYTES && !super::parsers::is_warm();
        let signals: &AhoCorasick = if small { &SIGNAL_NFA } else { &SIGNAL_AC };
        for i in before_tail.chain(tail) {
            let l = &log.lines[i];
            let in_focus = focus.contains(&i);
            // A GitHub Actions job's set-up (the lines before its first step: runner, image, action
            // downloads, an action's own container build) describes the runner and the actions,
            // not the repository.
            if l.step == u32::MAX && !log.steps.is_empty() && !in_focus {
                continue;
            }
            for m in signals.find_iter(l.text.as_ref()) {
                let (_, e, w) = SIGNALS[m.pattern().as_usize()];
                sig[e.index()] += if in_focus { w * 2.0 } else { w };
            }
            // npm's lifecycle banner: `> name@1.0.0 script`.
            if l.text.starts_with("> ") && is_npm_banner(&l.text) {
                sig[Ecosystem::Javascript.index()] += 3.0;
            }
        }
        for (s, g) in score.iter_mut().zip(sig) {
            *s += g.min(8.0);
        }
    }
    let total: f32 = score.iter().sum();
    let (best, top) =
        score.iter().enumerate().fold((0usize, 0f32), |(bi, bs), (i, &s)| if s > bs { (i, s) } else { (bi, bs) });
    if top <= 0.0 {
        return None;
    }
    let share = top / total;
    let strength = 1.0 - (-top / 3.0).exp();
    let confidence = ((share * strength) * 100.0).round() / 100.0;
    Some(EcosystemGuess { ecosystem: Ecosystem::ALL[best], confidence: confidence.clamp(0.0, 1.0) })
}

/// npm (and pnpm) print `> name@version script` before running a package script.
fn is_npm_banner(t: &str) -> bool {
    let rest = &t[2..];
    let Some(at) = rest[1.min(rest.len())..].find('@').map(|p| p + 1) else { return false };
    let name = &rest[..at];
    let after = &rest[at + 1..];
    !name.is_empty()
        && !name.contains(' ')
        && after.starts_with(|c: char| c.is_ascii_digit())
        && after.split_once(' ').is_some_and(|(v, script)| v.contains('.') && !script.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::Limits;

    /// Small logs are scanned with the NFA, large ones with the DFA: both find the same signals.
    #[test]
    fn signal_nfa_and_dfa_find_the_same_matches() {
        let mut text = String::new();
        for (p, _, _) in SIGNALS {
            text.push_str(&format!("a{p}b {p}{p}\n"));
        }
        let find = |ac: &AhoCorasick| -> Vec<(usize, usize)> {
            ac.find_iter(&text).map(|m| (m.start(), m.pattern().as_usize())).collect()
        };
        let dfa = find(&SIGNAL_AC);
        assert!(dfa.len() > SIGNALS.len(), "{}", dfa.len());
        assert_eq!(find(&SIGNAL_NFA), dfa);
    }

    #[test]
    fn npm_banner_and_node_paths_say_javascript() {
        let log = Log::parse(
            "\n> app@1.0.0 test\n> tape test/*.js\n\nnot ok 1 should be equal\n  at: Test.<anonymous> (/w/node_modules/x.js:1:1)\n",
            &Limits::default(),
        );
        let g = guess(&EcosystemEvidence { log: Some(&log), ..Default::default() }).unwrap();
        assert_eq!(g.ecosystem, Ecosystem::Javascript);
        assert!(g.confidence > 0.7, "{g:?}");
    }

    #[test]
    fn job_setup_is_not_evidence() {
        // An action's container build in `Set up job`, then a failing step with no toolchain hint.
        let text = "2024-01-01T10:00:00.0000000Z ##[group]Build container for action use: 'x/Dockerfile'.\n\
            2024-01-01T10:00:00.0000000Z ##[command]/usr/bin/docker build -t a:b -f x/Dockerfile x\n\
            2024-01-01T10:00:00.0000000Z Step 1/3 : FROM alpine:3\n\
            2024-01-01T10:00:00.0000000Z ##[endgroup]\n\
            2024-01-01T10:00:01.0000000Z ##[group]Run ./make-pdf\n\
            2024-01-01T10:00:01.0000000Z ##[endgroup]\n\
            2024-01-01T10:00:02.0000000Z fatal: something went wrong\n\
            2024-01-01T10:00:02.0000000Z ##[error]Process completed with exit code 1.\n";
        let log = Log::parse(text, &Limits::default());
        assert_eq!(guess(&EcosystemEvidence { log: Some(&log), ..Default::default() }), None);
        // The same output in a plain log (no steps) does count.
        let plain =
            "/usr/bin/docker build -t a:b -f x/Dockerfile x\nStep 1/3 : FROM alpine:3\nfatal: something went wrong\n";
        let log = Log::parse(plain, &Limits::default());
        let g = guess(&EcosystemEvidence { log: Some(&log), ..Default::default() }).unwrap();
        assert_eq!(g.ecosystem, Ecosystem::Infrastructure);
    }

    #[test]
    fn step_command_and_repository_languages() {
        let langs = vec![("Go".to_string(), 9000u64), ("Shell".to_string(), 100)];
        let g = guess(&EcosystemEvidence {
            step_texts: vec!["Run go test ./..."],
            languages: &langs,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(g.ecosystem, Ecosystem::Go);
        let files = vec!["web/src/App.tsx".to_string(), "web/package.json".to_string()];
        let g = guess(&EcosystemEvidence { changed_files: &files, ..Default::default() }).unwrap();
        assert_eq!(g.ecosystem, Ecosystem::Javascript);
        assert!(guess(&EcosystemEvidence::default()).is_none());
    }

    #[test]
    fn paths_and_languages_map() {
        assert_eq!(Ecosystem::of_path("crates/x/Cargo.toml"), Some(Ecosystem::Rust));
        assert_eq!(Ecosystem::of_path("Dockerfile.dev"), Some(Ecosystem::Infrastructure));
        assert_eq!(Ecosystem::of_path("README.md"), None);
        assert_eq!(Ecosystem::of_language("TypeScript"), Some(Ecosystem::Javascript));
        assert_eq!(Ecosystem::of_language("Markdown"), None);
        assert!(is_npm_banner("> @acme/web@2.1.0 lint"));
        assert!(!is_npm_banner("> Task :app:test FAILED"));
    }
}
