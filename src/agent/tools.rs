//! The tools the built-in agent offers a model (Anthropic tool use, OpenAI function calling): list
//! and search files, read a file or a line range, edit (exact-string replace) or write a whole file,
//! run the validation commands (the failing step's check), and finish with a diagnosis.
//!
//! Every path is relative to the repository root and stays inside it (no absolute paths, no `..`,
//! nothing under `.git`, symlinks resolved); writes to protected paths are refused with the reason
//! the validate step would give. Every result is masked and bounded ([`ToolLimits`]), and every call
//! is logged (tool, masked arguments, outcome, bytes) and appended to `<state>/tool-calls.jsonl`.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use globset::GlobSet;
use serde_json::{Value, json};

use super::context::Masker;
use super::llm::ToolSpec;
use super::{diff, process, validate};

/// Bounds of the tool loop.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolLimits {
    /// Most model requests in one attempt (each answer with tool calls is one). Default 40.
    pub max_requests: u32,
    /// Wall time the loop may take, model and tools together. Default 20 minutes.
    pub wall_time: Duration,
    /// Most bytes of one tool result sent back (the tail of command output, the head of a listing).
    /// Default 16 KiB.
    pub max_output_bytes: usize,
    /// Most entries `list_files` returns. Default 400.
    pub max_list_entries: usize,
    /// Most matches `search` returns. Default 100.
    pub max_search_results: usize,
    /// Most lines `read_file` returns at once. Default 2000.
    pub max_read_lines: usize,
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self {
            max_requests: 40,
            wall_time: Duration::from_secs(20 * 60),
            max_output_bytes: 16 * 1024,
            max_list_entries: 400,
            max_search_results: 100,
            max_read_lines: 2000,
        }
    }
}

/// What a tool call gave.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutcome {
    /// A result for the model (`is_error` for a refused or failed call).
    Result {
        /// The text for the model (masked, capped).
        content: String,
        /// The call was refused or failed.
        is_error: bool,
    },
    /// The model is done: `finish` with its diagnosis.
    Finish {
        /// The model's diagnosis.
        diagnosis: String,
    },
}

impl ToolOutcome {
    fn ok(s: impl Into<String>) -> Self {
        ToolOutcome::Result { content: s.into(), is_error: false }
    }
    fn err(s: impl Into<String>) -> Self {
        ToolOutcome::Result { content: s.into(), is_error: true }
    }
}

/// The tools over one workspace.
pub struct Toolbox<'a> {
    ws: PathBuf,
    validation: Vec<String>,
    timeout: Duration,
    masker: &'a Masker,
    protected: GlobSet,
    limits: ToolLimits,
    /// Files changed by `edit_file` / `write_file` since the start.
    pub edits: u32,
    /// Whether the validation commands passed on the current workspace (`None`: not run since the
    /// last edit).
    pub validated: Option<bool>,
    /// Number of calls made, for the record.
    pub calls: u32,
}

/// The names of the tools, as the model sees them.
pub const TOOL_NAMES: [&str; 7] =
    ["list_files", "search", "read_file", "edit_file", "write_file", "run_validation", "finish"];

impl<'a> Toolbox<'a> {
    /// Tools over `ws`; `validation` are the commands `run_validation` runs (each with `timeout`),
    /// `protected` the globs no write may touch.
    pub fn new(
        ws: &Path,
        validation: Vec<String>,
        timeout: Duration,
        masker: &'a Masker,
        protected: GlobSet,
        limits: ToolLimits,
    ) -> Self {
        Self {
            ws: ws.to_path_buf(),
            validation,
            timeout,
            masker,
            protected,
            limits,
            edits: 0,
            validated: None,
            calls: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &ToolLimits {
        &self.limits
    }

    /// The tool definitions (name, description, JSON Schema of the input).
    pub fn specs(&self) -> Vec<ToolSpec> {
        let commands = self.validation.iter().enumerate().map(|(i, c)| format!("{i}: `{c}`")).collect::<Vec<_>>();
        let s =
            |name: &'static str, description: String, input_schema: Value| ToolSpec { name, description, input_schema };
        vec![
            s(
                "list_files",
                format!(
                    "List the repository's files (tracked and untracked, not ignored) under a directory. At most {} entries.",
                    self.limits.max_list_entries
                ),
                json!({"type": "object", "properties": {
                    "path": {"type": "string", "description": "Directory relative to the repository root; default the root."}
                }, "additionalProperties": false}),
            ),
            s(
                "search",
                format!(
                    "Search the repository's text files for a regular expression (Rust regex syntax). Returns `path:line: text`, at most {} matches.",
                    self.limits.max_search_results
                ),
                json!({"type": "object", "properties": {
                    "pattern": {"type": "string", "description": "Regular expression."},
                    "path": {"type": "string", "description": "Directory or file to search in; default the root."}
                }, "required": ["pattern"], "additionalProperties": false}),
            ),
            s(
                "read_file",
                format!(
                    "Read a file, numbered `N\\tline` (numbers are not part of the file). At most {} lines at once; give start_line/end_line (1-based, inclusive) for a range.",
                    self.limits.max_read_lines
                ),
                json!({"type": "object", "properties": {
                    "path": {"type": "string"},
                    "start_line": {"type": "integer", "minimum": 1},
                    "end_line": {"type": "integer", "minimum": 1}
                }, "required": ["path"], "additionalProperties": false}),
            ),
            s(
                "edit_file",
                "Replace an exact string in a file. old_string must occur exactly once (or set replace_all), character for character including indentation; no line numbers.".into(),
                json!({"type": "object", "properties": {
                    "path": {"type": "string"},
                    "old_string": {"type": "string"},
                    "new_string": {"type": "string"},
                    "replace_all": {"type": "boolean"}
                }, "required": ["path", "old_string", "new_string"], "additionalProperties": false}),
            ),
            s(
                "write_file",
                "Write a whole file (created if missing, replaced otherwise).".into(),
                json!({"type": "object", "properties": {
                    "path": {"type": "string"},
                    "content": {"type": "string"}
                }, "required": ["path", "content"], "additionalProperties": false}),
            ),
            s(
                "run_validation",
                format!(
                    "Run the validation commands on the current files and get their exit code and the tail of their output. Commands: {}. Give `command` (the index) to run one; default all, in order, stopping at the first failure.",
                    if commands.is_empty() { "none configured".to_string() } else { commands.join(", ") }
                ),
                json!({"type": "object", "properties": {
                    "command": {"type": "integer", "minimum": 0}
                }, "additionalProperties": false}),
            ),
            s(
                "finish",
                "End the work with a one-paragraph diagnosis of the failure's cause and what you changed. The validation commands are run once more; if they fail you get their output and can continue.".into(),
                json!({"type": "object", "properties": {
                    "diagnosis": {"type": "string"}
                }, "required": ["diagnosis"], "additionalProperties": false}),
            ),
        ]
    }

    /// Run one call. Never fails: problems become an error result the model can read.
    pub async fn call(&mut self, name: &str, input: &Value) -> ToolOutcome {
        self.calls += 1;
        let start = Instant::now();
        let outcome = if !input.is_object() {
            ToolOutcome::err(format!(
                "the arguments of {name} must be a JSON object, got: {}",
                bounded(&input.to_string(), 200)
            ))
        } else {
            match name {
                "list_files" => self.list_files(input).await,
                "search" => self.search(input).await,
                "read_file" => self.read_file(input),
                "edit_file" => self.edit_file(input),
                "write_file" => self.write_file(input),
                "run_validation" => self.run_validation(input).await,
                "finish" => {
                    ToolOutcome::Finish { diagnosis: str_arg(input, "diagnosis").unwrap_or_default().to_string() }
                }
                other => ToolOutcome::err(format!("unknown tool {other:?}; the tools are {}", TOOL_NAMES.join(", "))),
            }
        };
        let outcome = match outcome {
            ToolOutcome::Result { content, is_error } => ToolOutcome::Result {
                content: self.masker.mask(&bounded_tail(&content, self.limits.max_output_bytes)),
                is_error,
            },
            ToolOutcome::Finish { diagnosis } => ToolOutcome::Finish { diagnosis: self.masker.mask(&diagnosis) },
        };
        self.log(name, input, &outcome, start.elapsed());
        outcome
    }

    fn log(&self, name: &str, input: &Value, outcome: &ToolOutcome, took: Duration) {
        // Arguments are masked and cut: file contents the model writes stay out of the log.
        let mut args = input.clone();
        if let Some(o) = args.as_object_mut() {
            for v in o.values_mut() {
                if let Value::String(s) = v
                    && s.len() > 200
                {
                    *v = json!(format!("{}… ({} bytes)", &s[..floor_char(s, 200)], s.len()));
                }
            }
        }
        let args = self.masker.mask(&args.to_string());
        let (ok, bytes) = match outcome {
            ToolOutcome::Result { content, is_error } => (!is_error, content.len()),
            ToolOutcome::Finish { diagnosis } => (true, diagnosis.len()),
        };
        tracing::info!(tool = name, args = %args, ok, result_bytes = bytes, seconds = took.as_secs_f64(), "tool call");
        let line = json!({"tool": name, "args": args, "ok": ok, "resultBytes": bytes, "seconds": took.as_secs_f64()});
        let dir = process::state_dir();
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("tool-calls.jsonl")) {
            use std::io::Write;
            let _ = writeln!(f, "{line}");
        }
    }

    /// Resolve a model-given path inside the workspace. Errors: outside it, or under `.git`.
    fn resolve(&self, raw: &str) -> Result<(String, PathBuf), String> {
        let rel = raw.trim().trim_start_matches("./");
        let rel = if rel.is_empty() { "." } else { rel };
        let p = Path::new(rel);
        if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_))) {
            return Err(format!(
                "{raw:?} is not a path inside the repository (give it relative to the root, without `..`)"
            ));
        }
        let clean: PathBuf = p.components().filter(|c| matches!(c, Component::Normal(_))).collect();
        if clean.starts_with(".git") {
            return Err("the .git directory is not part of the change".into());
        }
        let full = self.ws.join(&clean);
        // Symlinks must not lead out: check the deepest existing ancestor.
        let root = self.ws.canonicalize().map_err(|e| e.to_string())?;
        let mut probe = full.clone();
        while !probe.exists() {
            if !probe.pop() {
                break;
            }
        }
        if let Ok(c) = probe.canonicalize()
            && !c.starts_with(&root)
        {
            return Err(format!("{raw:?} leads outside the repository"));
        }
        Ok((clean.to_string_lossy().to_string(), full))
    }

    async fn files(&self, under: &str) -> Result<Vec<String>, String> {
        let out = diff::git(&self.ws, &["ls-files", "--cached", "--others", "--exclude-standard", "--", under])
            .await
            .map_err(|e| e.to_string())?;
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v.dedup();
        v.retain(|f| self.ws.join(f).is_file());
        Ok(v)
    }

    async fn list_files(&self, input: &Value) -> ToolOutcome {
        let (rel, _) = match self.resolve(str_arg(input, "path").unwrap_or(".")) {
            Ok(r) => r,
            Err(e) => return ToolOutcome::err(e),
        };
        let rel = if rel.is_empty() { ".".to_string() } else { rel };
        match self.files(&rel).await {
            Err(e) => ToolOutcome::err(e),
            Ok(v) if v.is_empty() => ToolOutcome::ok(format!("no files under {rel}")),
            Ok(v) => {
                let n = v.len();
                let mut s = v.into_iter().take(self.limits.max_list_entries).collect::<Vec<_>>().join("\n");
                if n > self.limits.max_list_entries {
                    s.push_str(&format!("\n… and {} more (list a subdirectory)", n - self.limits.max_list_entries));
                }
                ToolOutcome::ok(s)
            }
        }
    }

    async fn search(&self, input: &Value) -> ToolOutcome {
        let Some(pattern) = str_arg(input, "pattern") else {
            return ToolOutcome::err("search needs `pattern`");
        };
        let re = match regex::RegexBuilder::new(pattern).size_limit(1 << 20).build() {
            Ok(r) => r,
            Err(e) => return ToolOutcome::err(format!("invalid regular expression: {e}")),
        };
        let (rel, _) = match self.resolve(str_arg(input, "path").unwrap_or(".")) {
            Ok(r) => r,
            Err(e) => return ToolOutcome::err(e),
        };
        let rel = if rel.is_empty() { ".".to_string() } else { rel };
        let files = match self.files(&rel).await {
            Ok(f) => f,
            Err(e) => return ToolOutcome::err(e),
        };
        let mut hits = Vec::new();
        let mut more = 0usize;
        for f in files {
            let Ok(bytes) = std::fs::read(self.ws.join(&f)) else { continue };
            if bytes.len() > 2 * 1024 * 1024 || bytes.contains(&0) {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            for (i, line) in text.lines().enumerate() {
                if re.is_match(line) {
                    if hits.len() < self.limits.max_search_results {
                        hits.push(format!("{f}:{}: {}", i + 1, bounded(line.trim_end(), 240)));
                    } else {
                        more += 1;
                    }
                }
            }
        }
        if hits.is_empty() {
            return ToolOutcome::ok(format!("no match for /{pattern}/ under {rel}"));
        }
        let mut s = hits.join("\n");
        if more > 0 {
            s.push_str(&format!("\n… and {more} more matches (narrow the pattern or the path)"));
        }
        ToolOutcome::ok(s)
    }

    fn read_file(&self, input: &Value) -> ToolOutcome {
        let Some(path) = str_arg(input, "path") else {
            return ToolOutcome::err("read_file needs `path`");
        };
        let (rel, full) = match self.resolve(path) {
            Ok(r) => r,
            Err(e) => return ToolOutcome::err(e),
        };
        let bytes = match std::fs::read(&full) {
            Ok(b) => b,
            Err(e) => return ToolOutcome::err(format!("cannot read {rel}: {e}")),
        };
        if bytes.contains(&0) {
            return ToolOutcome::err(format!("{rel} is a binary file ({} bytes)", bytes.len()));
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let total = lines.len();
        let start = input["start_line"].as_u64().unwrap_or(1).max(1) as usize;
        let end = input["end_line"].as_u64().map(|e| e as usize).unwrap_or(total).min(total);
        if start > total.max(1) {
            return ToolOutcome::err(format!("{rel} has {total} lines; start_line {start} is past its end"));
        }
        let end = end.min(start + self.limits.max_read_lines - 1);
        let mut out = String::new();
        let mut budget = self.limits.max_output_bytes.saturating_sub(200);
        let mut last = start.saturating_sub(1);
        for (i, l) in lines.iter().enumerate().take(end).skip(start - 1) {
            let row = format!("{}\t{}\n", i + 1, l);
            if row.len() > budget {
                break;
            }
            budget -= row.len();
            out.push_str(&row);
            last = i + 1;
        }
        if last < total {
            out.push_str(&format!("[lines {start}–{last} of {total}; read on with start_line {}]\n", last + 1));
        }
        if total == 0 {
            out.push_str(&format!("[{rel} is empty]\n"));
        }
        ToolOutcome::ok(out)
    }

    fn writable(&self, path: &str) -> Result<(String, PathBuf), String> {
        let (rel, full) = self.resolve(path)?;
        if rel.is_empty() || full.is_dir() {
            return Err(format!("{path:?} is a directory"));
        }
        if self.protected.is_match(&rel) {
            return Err(format!(
                "{rel} is a protected path: the built-in agent may not change it. Fix the cause elsewhere."
            ));
        }
        Ok((rel, full))
    }

    fn edit_file(&mut self, input: &Value) -> ToolOutcome {
        let (Some(path), Some(old), Some(new)) =
            (str_arg(input, "path"), str_arg(input, "old_string"), str_arg(input, "new_string"))
        else {
            return ToolOutcome::err("edit_file needs `path`, `old_string` and `new_string`");
        };
        let (rel, full) = match self.writable(path) {
            Ok(r) => r,
            Err(e) => return ToolOutcome::err(e),
        };
        let text = match std::fs::read_to_string(&full) {
            Ok(t) => t,
            Err(e) => return ToolOutcome::err(format!("cannot read {rel}: {e} (write_file creates files)")),
        };
        if old.is_empty() {
            return ToolOutcome::err("old_string is empty; use write_file to replace a whole file");
        }
        if old == new {
            return ToolOutcome::err("old_string and new_string are the same");
        }
        let n = text.matches(old).count();
        let all = input["replace_all"].as_bool().unwrap_or(false);
        let updated = match n {
            0 => {
                return ToolOutcome::err(format!(
                    "old_string does not occur in {rel}; read the file again and copy the text exactly (without line numbers)"
                ));
            }
            1 => text.replacen(old, new, 1),
            _ if all => text.replace(old, new),
            _ => {
                return ToolOutcome::err(format!(
                    "old_string occurs {n} times in {rel}; add surrounding lines to make it unique, or set replace_all"
                ));
            }
        };
        if let Err(e) = std::fs::write(&full, updated) {
            return ToolOutcome::err(format!("cannot write {rel}: {e}"));
        }
        self.edits += 1;
        self.validated = None;
        ToolOutcome::ok(format!("replaced {} occurrence(s) in {rel}", if all { n } else { 1 }))
    }

    fn write_file(&mut self, input: &Value) -> ToolOutcome {
        let (Some(path), Some(content)) = (str_arg(input, "path"), str_arg(input, "content")) else {
            return ToolOutcome::err("write_file needs `path` and `content`");
        };
        let (rel, full) = match self.writable(path) {
            Ok(r) => r,
            Err(e) => return ToolOutcome::err(e),
        };
        if let Some(dir) = full.parent()
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            return ToolOutcome::err(format!("cannot create the directory of {rel}: {e}"));
        }
        if let Err(e) = std::fs::write(&full, content) {
            return ToolOutcome::err(format!("cannot write {rel}: {e}"));
        }
        self.edits += 1;
        self.validated = None;
        ToolOutcome::ok(format!("wrote {rel} ({} bytes)", content.len()))
    }

    /// Run all the validation commands (or the one at `index`); `Ok` with a summary when they
    /// pass, `Err` with the failing command's output.
    pub async fn validate(&mut self, index: Option<usize>) -> Result<String, String> {
        let commands: Vec<String> = match index {
            Some(i) => match self.validation.get(i) {
                Some(c) => vec![c.clone()],
                None => {
                    return Err(format!(
                        "there is no validation command {i} (0–{})",
                        self.validation.len().saturating_sub(1)
                    ));
                }
            },
            None => self.validation.clone(),
        };
        if commands.is_empty() {
            return Err("no validation commands are configured for this failure".into());
        }
        let result = validate::run_commands(&commands, &self.ws, self.timeout, self.masker).await;
        if index.is_none() {
            self.validated = Some(result.is_ok());
        }
        match result {
            Ok(()) => {
                Ok(format!("passed: {}", commands.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")))
            }
            Err((_, out)) => Err(out),
        }
    }

    async fn run_validation(&mut self, input: &Value) -> ToolOutcome {
        let index = input["command"].as_u64().map(|i| i as usize);
        match self.validate(index).await {
            Ok(s) => ToolOutcome::ok(s),
            Err(out) => ToolOutcome::err(out),
        }
    }
}

fn str_arg<'v>(input: &'v Value, key: &str) -> Option<&'v str> {
    input.get(key).and_then(Value::as_str)
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The first `max` bytes of `s`, with a marker when cut.
fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max { s.to_string() } else { format!("{}…", &s[..floor_char(s, max)]) }
}

/// The last `max` bytes of `s` (where command errors are), with a marker when cut.
fn bounded_tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let tail = process::last_bytes(s, max.saturating_sub(64));
    format!("[… {} bytes cut …]\n{tail}", s.len() - tail.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let g = |a: &[&str]| {
            assert!(std::process::Command::new("git").args(a).current_dir(d.path()).output().unwrap().status.success())
        };
        g(&["init", "-q"]);
        std::fs::create_dir_all(d.path().join("src")).unwrap();
        std::fs::write(d.path().join("src/lib.rs"), "fn a() {}\nfn b() {}\nfn a2() {}\n").unwrap();
        std::fs::create_dir_all(d.path().join(".github/workflows")).unwrap();
        std::fs::write(d.path().join(".github/workflows/ci.yml"), "on: push\n").unwrap();
        g(&["add", "-A"]);
        d
    }

    fn tb<'a>(d: &Path, m: &'a Masker) -> Toolbox<'a> {
        let globs: Vec<String> = diff::DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect();
        Toolbox::new(
            d,
            vec!["true".into(), "echo broken; exit 3".into()],
            Duration::from_secs(10),
            m,
            diff::protected_set(&globs).unwrap(),
            ToolLimits::default(),
        )
    }

    fn text(o: ToolOutcome) -> (String, bool) {
        match o {
            ToolOutcome::Result { content, is_error } => (content, is_error),
            f => panic!("{f:?}"),
        }
    }

    #[tokio::test]
    async fn tools_read_search_edit_and_stay_inside() {
        let d = ws();
        let m = Masker::new(["sekret-value-1".to_string()]);
        let mut t = tb(d.path(), &m);
        assert_eq!(
            text(t.call("list_files", &json!({})).await),
            (".github/workflows/ci.yml\nsrc/lib.rs".into(), false)
        );
        let (s, _) = text(t.call("search", &json!({"pattern": r"fn a\d?\("})).await);
        assert_eq!(s, "src/lib.rs:1: fn a() {}\nsrc/lib.rs:3: fn a2() {}");
        let (s, _) = text(t.call("read_file", &json!({"path": "src/lib.rs", "start_line": 2, "end_line": 2})).await);
        assert_eq!(s, "2\tfn b() {}\n[lines 2–2 of 3; read on with start_line 3]\n");
        let (s, e) =
            text(t.call("edit_file", &json!({"path": "src/lib.rs", "old_string": "fn a", "new_string": "fn z"})).await);
        assert!(e && s.contains("occurs 2 times"), "{s}");
        let (s, e) = text(
            t.call(
                "edit_file",
                &json!({"path": "src/lib.rs", "old_string": "fn b() {}", "new_string": "fn b() { sekret-value-1 }"}),
            )
            .await,
        );
        assert!(!e, "{s}");
        assert_eq!(t.edits, 1);
        let (s, _) = text(t.call("read_file", &json!({"path": "src/lib.rs"})).await);
        assert!(s.contains("[MASKED]") && !s.contains("sekret"), "results are masked: {s}");
        for bad in ["../x", "/etc/passwd", ".git/config"] {
            let (s, e) = text(t.call("read_file", &json!({"path": bad})).await);
            assert!(e, "{bad}: {s}");
        }
        let (s, e) = text(t.call("write_file", &json!({"path": ".github/workflows/ci.yml", "content": "x"})).await);
        assert!(e && s.contains("protected"), "{s}");
        let (s, e) = text(t.call("write_file", &json!({"path": "src/new/mod.rs", "content": "pub fn n() {}\n"})).await);
        assert!(!e, "{s}");
        assert_eq!(std::fs::read_to_string(d.path().join("src/new/mod.rs")).unwrap(), "pub fn n() {}\n");
        let (s, e) = text(t.call("run_validation", &json!({})).await);
        assert!(e && s.contains("broken") && s.contains("exit 3"), "{s}");
        assert_eq!(t.validated, Some(false));
        let (s, e) = text(t.call("run_validation", &json!({"command": 0})).await);
        assert!(!e && s.contains("passed"), "{s}");
        let (_, e) = text(t.call("nope", &json!({})).await);
        assert!(e);
        assert_eq!(
            t.call("finish", &json!({"diagnosis": "done"})).await,
            ToolOutcome::Finish { diagnosis: "done".into() }
        );
        let (_, e) = text(t.call("read_file", &json!("src/lib.rs")).await);
        assert!(e, "non-object arguments are refused");
    }

    #[test]
    fn bounded_tail_keeps_the_end() {
        let s = "a".repeat(1000) + "END";
        let b = bounded_tail(&s, 200);
        assert!(b.len() <= 200 && b.ends_with("END") && b.starts_with("[…"), "{b}");
    }
}
