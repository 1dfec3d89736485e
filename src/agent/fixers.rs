//! Deterministic fixers (cheap, no tokens) and the default validation commands, both chosen from the
//! failure class (triage's `failureClass`), or from the excerpt when the class is unknown.
//!
//! A fixer runs only when its tool is installed in the step's image and the repository has the
//! files it works on (e.g. `Cargo.toml` for cargo). Each runs in the workspace with a timeout.

use std::path::Path;
use std::time::Duration;

use super::process;

/// A known fixer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixer {
    /// Name used in `settings.fixers` (`cargo-fmt`, `cargo-clippy`, `prettier`, `eslint`, `ruff-check`,
    /// `ruff-format`, `gofmt`, `go-mod-tidy`).
    pub name: &'static str,
    /// The executable that must be present (on `PATH`, or in `node_modules/.bin`).
    pub tool: &'static str,
    /// Files (any of) that show the repository uses the tool; empty: no requirement.
    pub markers: &'static [&'static str],
    /// The fix command (`sh -c` in the workspace); `{tool}` is replaced by the resolved tool path.
    pub fix: &'static str,
    /// The matching check command, used as a validation command when none is configured.
    pub check: &'static str,
}

/// Every fixer ci-healer knows.
pub const FIXERS: &[Fixer] = &[
    Fixer {
        name: "cargo-fmt",
        tool: "cargo",
        markers: &["Cargo.toml"],
        fix: "{tool} fmt --all",
        check: "cargo fmt --all -- --check",
    },
    Fixer {
        name: "cargo-clippy",
        tool: "cargo",
        markers: &["Cargo.toml"],
        fix: "{tool} clippy --fix --allow-dirty --allow-staged --allow-no-vcs --all-targets --quiet",
        check: "cargo clippy --all-targets -- -D warnings",
    },
    Fixer {
        name: "prettier",
        tool: "prettier",
        markers: &["package.json", ".prettierrc", ".prettierrc.json", "prettier.config.js"],
        fix: "{tool} --write .",
        check: "{tool} --check .",
    },
    Fixer {
        name: "eslint",
        tool: "eslint",
        markers: &[
            "eslint.config.js",
            "eslint.config.mjs",
            ".eslintrc.json",
            ".eslintrc.js",
            ".eslintrc.cjs",
            ".eslintrc",
        ],
        fix: "{tool} --fix .",
        check: "{tool} .",
    },
    Fixer { name: "ruff-check", tool: "ruff", markers: &[], fix: "{tool} check --fix .", check: "ruff check ." },
    Fixer { name: "ruff-format", tool: "ruff", markers: &[], fix: "{tool} format .", check: "ruff format --check ." },
    Fixer {
        name: "gofmt",
        tool: "gofmt",
        markers: &["go.mod"],
        fix: "{tool} -w .",
        check: "test -z \"$(gofmt -l . | tee /dev/stderr)\"",
    },
    Fixer { name: "go-mod-tidy", tool: "go", markers: &["go.mod"], fix: "{tool} mod tidy", check: "go mod tidy -diff" },
];

/// Look a fixer up by name.
pub fn by_name(name: &str) -> Option<&'static Fixer> {
    FIXERS.iter().find(|f| f.name == name)
}

/// The fixers a failure class calls for. Unknown classes fall back to what the excerpt mentions.
pub fn for_class(class: &str, excerpt: &str) -> Vec<&'static str> {
    let c = class.to_lowercase();
    let named: &[&str] = match c.as_str() {
        "rust_fmt" | "rust_format" | "rustfmt" => &["cargo-fmt"],
        "rust_clippy" | "rust_lint" | "clippy" => &["cargo-clippy"],
        "frontend_format" | "js_format" | "ts_format" | "prettier" => &["prettier"],
        "frontend_lint" | "js_lint" | "ts_lint" | "eslint" => &["eslint", "prettier"],
        "python_lint" | "ruff" => &["ruff-check"],
        "python_format" => &["ruff-format"],
        "go_fmt" | "go_format" | "gofmt" => &["gofmt"],
        "go_mod" | "go_mod_tidy" => &["go-mod-tidy"],
        _ => &[],
    };
    if !named.is_empty() {
        return named.to_vec();
    }
    if c != "unknown" && !c.is_empty() {
        // A known class that no fixer addresses (a compile error, a failing test): the LLM's job.
        return vec![];
    }
    let e = excerpt.to_lowercase();
    let mut v = Vec::new();
    if e.contains("cargo fmt") || e.contains("rustfmt") || (e.contains("diff in ") && e.contains(".rs")) {
        v.push("cargo-fmt");
    }
    if e.contains("clippy") {
        v.push("cargo-clippy");
    }
    if e.contains("prettier") || e.contains("code style issues found") {
        v.push("prettier");
    }
    if e.contains("eslint") {
        v.push("eslint");
    }
    if e.contains("ruff") {
        v.push(if e.contains("would reformat") { "ruff-format" } else { "ruff-check" });
    }
    if e.contains("gofmt") {
        v.push("gofmt");
    }
    if e.contains("go mod tidy") || e.contains("missing go.sum entry") {
        v.push("go-mod-tidy");
    }
    v
}

/// Validation commands for a failure class when the profile configures none: the check commands of
/// the class's fixers, or the build/test command of the class. Empty when nothing fits.
pub fn default_validation(class: &str, excerpt: &str, ws: &Path) -> Vec<String> {
    let c = class.to_lowercase();
    let direct: Option<&str> = match c.as_str() {
        "rust_compile" | "rust_build" => Some("cargo build --all-targets"),
        "rust_test" => Some("cargo test"),
        "go_build" | "go_compile" => Some("go build ./..."),
        "go_vet" => Some("go vet ./..."),
        "go_test" => Some("go test ./..."),
        "python_test" => Some("python -m pytest -q"),
        "frontend_build" => Some("npm run build"),
        "frontend_test" => Some("npm test"),
        _ => None,
    };
    if let Some(d) = direct {
        return vec![d.into()];
    }
    for_class(class, excerpt).into_iter().filter_map(by_name).map(|f| check_command(f, ws)).collect()
}

/// The check command of a fixer with `{tool}` resolved for the workspace.
pub fn check_command(f: &Fixer, ws: &Path) -> String {
    f.check.replace("{tool}", &tool_invocation(f.tool, ws))
}

fn tool_invocation(tool: &str, ws: &Path) -> String {
    let local = ws.join("node_modules/.bin").join(tool);
    if local.is_file() { format!("./node_modules/.bin/{tool}") } else { tool.to_string() }
}

/// Whether `f` can run here: the tool is installed and the repository has one of its markers.
pub fn available(f: &Fixer, ws: &Path) -> bool {
    let tool = ws.join("node_modules/.bin").join(f.tool).is_file() || process::on_path(f.tool).is_some();
    let marker = f.markers.is_empty() || f.markers.iter().any(|m| ws.join(m).exists());
    tool && marker
}

/// What one fixer did.
#[derive(Debug, Clone, PartialEq)]
pub struct FixerRun {
    /// The fixer's name (`cargo-fmt`, `prettier` …).
    pub name: String,
    /// `ran`, `failed` or `skipped` (tool or repository files missing).
    pub status: &'static str,
    /// How long it ran, in seconds.
    pub seconds: f64,
    /// Tail of the output, for diagnostics.
    pub output: String,
}

/// Run the named fixers in order in `ws` (each at most `timeout`). Unknown names are reported as skipped.
pub async fn run_fixers(names: &[String], ws: &Path, timeout: Duration) -> Vec<FixerRun> {
    let mut out = Vec::new();
    for name in names {
        let Some(f) = by_name(name) else {
            out.push(FixerRun { name: name.clone(), status: "skipped", seconds: 0.0, output: "unknown fixer".into() });
            continue;
        };
        if !available(f, ws) {
            out.push(FixerRun {
                name: name.clone(),
                status: "skipped",
                seconds: 0.0,
                output: format!("{} not installed or not used here", f.tool),
            });
            continue;
        }
        let cmd = f.fix.replace("{tool}", &tool_invocation(f.tool, ws));
        tracing::info!(fixer = f.name, command = %cmd, "running fixer");
        match process::shell(&cmd, ws, timeout).await {
            Ok(o) => out.push(FixerRun {
                name: name.clone(),
                status: if o.success() { "ran" } else { "failed" },
                seconds: o.elapsed.as_secs_f64(),
                output: process::last_bytes(&o.output, 2000).to_string(),
            }),
            Err(e) => out.push(FixerRun { name: name.clone(), status: "failed", seconds: 0.0, output: e.to_string() }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_choose_fixers_and_checks() {
        assert_eq!(for_class("rust_fmt", ""), ["cargo-fmt"]);
        assert_eq!(for_class("rust_test", "clippy"), Vec::<&str>::new());
        assert_eq!(for_class("unknown", "Diff in /src/lib.rs at line 3"), ["cargo-fmt"]);
        assert_eq!(
            for_class("unknown", "[warn] src/a.ts\n[warn] Code style issues found in the above file. Run Prettier"),
            ["prettier"]
        );
        let ws = Path::new("/nonexistent");
        assert_eq!(default_validation("rust_clippy", "", ws), ["cargo clippy --all-targets -- -D warnings"]);
        assert_eq!(default_validation("frontend_format", "", ws), ["prettier --check ."]);
        assert_eq!(default_validation("rust_test", "", ws), ["cargo test"]);
        assert!(default_validation("unknown", "segfault", ws).is_empty());
    }
}
