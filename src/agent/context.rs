//! The failure context an agent sees: the excerpt (bounded, ANSI and control characters stripped,
//! secrets masked) and the triage answer, read from the context dir (the run's context ConfigMap:
//! [`paths::context::EXCERPT`], [`paths::context::TRIAGE`]).
//!
//! Masking covers common token formats (GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_`, AWS
//! access keys, Slack `xox?-`, PEM private key blocks, `Bearer …`, `sk-…` API keys, GitLab `glpat-`,
//! password assignments) and the exact values
//! of every secret file mounted into the step (the `*_FILE` variables of [`crate::contract::env`]).

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use crate::contract::memory::MemoryContext;
use crate::contract::proxy::KeyFingerprint;
use crate::contract::{env, paths};

/// What replaces a secret.
pub const MASK: &str = "[MASKED]";

static PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)",
        r"\bgh[pousr]_[A-Za-z0-9]{20,255}\b",
        r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
        r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",
        r"(?i)\baws_?secret_?access_?key\b\s*[:=]\s*['\x22]?[A-Za-z0-9/+=]{40}",
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}",
        r"\bsk-[A-Za-z0-9_-]{16,}",
        r"\bglpat-[A-Za-z0-9_-]{20,}",
        // A password assignment (`DB_PASSWORD=…`, `password: …`): its value, whatever its format.
        r"(?i)\b\w*(password|passwd)\b\s*[:=]\s*['\x22]?[^\s'\x22]{4,}",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("mask pattern compiles"))
    .collect()
});

static ANSI: LazyLock<Regex> = LazyLock::new(|| {
    // CSI sequences, OSC sequences (terminated by BEL or ST), and lone two-byte escapes.
    Regex::new(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]").expect("ansi regex")
});

/// Masks secrets in text: known token formats, literal values (each at least 6 bytes long), and
/// secrets known only by a [`KeyFingerprint`] (the LLM key, which only the `llm-proxy` sidecar
/// holds): every token of the fingerprint's length that matches it.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    literals: Vec<String>,
    fingerprints: Vec<KeyFingerprint>,
}

impl Masker {
    /// A masker for the given literal secret values (shorter than 6 bytes are ignored: masking "abc"
    /// everywhere would destroy the text and reveal the secret's length pattern).
    pub fn new(literals: impl IntoIterator<Item = String>) -> Self {
        let mut literals: Vec<String> =
            literals.into_iter().map(|s| s.trim().to_string()).filter(|s| s.len() >= 6).collect();
        // Longest first, so a secret containing another is masked whole.
        literals.sort_by_key(|s| std::cmp::Reverse(s.len()));
        literals.dedup();
        Self { literals, fingerprints: vec![] }
    }

    /// Add a secret known only by its fingerprint: a token of its length (delimited by characters
    /// other than ASCII letters, digits, `-` and `_`) whose salted hash matches is masked.
    pub fn add_fingerprint(&mut self, fp: KeyFingerprint) {
        if fp.length >= 6 && !self.fingerprints.contains(&fp) {
            self.fingerprints.push(fp);
        }
    }

    fn mask_fingerprints(&self, text: &str) -> String {
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        let bytes = text.as_bytes();
        let mut hits: Vec<(usize, usize)> = Vec::new();
        for fp in &self.fingerprints {
            let n = fp.length;
            let mut i = 0;
            while i + n <= bytes.len() {
                let starts = i == 0 || !word(bytes[i - 1]);
                let ends = i + n == bytes.len() || !word(bytes[i + n]);
                if starts && ends && bytes[i].is_ascii_graphic() && fp.matches(&bytes[i..i + n]) {
                    hits.push((i, i + n));
                    i += n;
                } else {
                    i += 1;
                }
            }
        }
        if hits.is_empty() {
            return text.to_string();
        }
        hits.sort();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (a, b) in hits {
            if a < at || !text.is_char_boundary(a) || !text.is_char_boundary(b) {
                continue;
            }
            out.push_str(&text[at..a]);
            out.push_str(MASK);
            at = b;
        }
        out.push_str(&text[at..]);
        out
    }

    /// A masker for the secret files this step has: every variable [`env::is_secret_file_var`]
    /// accepts that names a readable file. Also each line of a multi-line file.
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// [`Self::from_env`] over the given `(name, value)` pairs.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut vals = Vec::new();
        for (k, v) in vars {
            if env::is_secret_file_var(&k)
                && let Ok(s) = std::fs::read_to_string(&v)
            {
                vals.extend(s.lines().map(str::to_string));
                vals.push(s);
            }
        }
        Self::new(vals)
    }

    /// Add a literal secret value.
    pub fn add(&mut self, secret: &str) {
        let s = secret.trim();
        if s.len() >= 6 && !self.literals.iter().any(|l| l == s) {
            self.literals.push(s.to_string());
            self.literals.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Mask every string of a JSON value in place (object keys are left as they are: they are the
    /// shape's field names, not text). Used on what the controller stores or sends as JSON: triage's
    /// answer, a Slack message's blocks.
    pub fn mask_json(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = self.mask(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|v| self.mask_json(v)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|v| self.mask_json(v)),
            _ => {}
        }
    }

    /// Replace every secret in `text` by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let mut out = if self.fingerprints.is_empty() { text.to_string() } else { self.mask_fingerprints(text) };
        for l in &self.literals {
            if out.contains(l.as_str()) {
                out = out.replace(l.as_str(), MASK);
            }
        }
        for re in PATTERNS.iter() {
            if re.is_match(&out) {
                out = re.replace_all(&out, MASK).into_owned();
            }
        }
        out
    }
}

/// Remove ANSI escape sequences and control characters other than newline and tab; `\r\n` becomes
/// `\n`, a lone `\r` (progress bars) keeps only what followed it on that line.
pub fn strip_control(text: &str) -> String {
    let no_ansi = ANSI.replace_all(text, "");
    let mut out = String::with_capacity(no_ansi.len());
    for line in no_ansi.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line = line.rsplit('\r').next().unwrap_or(line);
        out.extend(line.chars().filter(|c| !c.is_control() || *c == '\t'));
        out.push('\n');
    }
    out.pop();
    out
}

/// Cut `text` to at most `max` bytes, keeping the head and the tail (errors appear at both ends of
/// a build log) around a marker line.
pub fn bound(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let marker = format!("\n[… {} bytes elided …]\n", text.len().saturating_sub(max));
    let budget = max.saturating_sub(marker.len());
    let mut head = budget / 3;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - (budget - head);
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}{}{}", &text[..head], marker, &text[tail..])
}

/// Sanitise a log for an agent or a status: strip control characters, mask, then bound to `max` bytes.
pub fn sanitize(text: &str, masker: &Masker, max: usize) -> String {
    bound(&masker.mask(&strip_control(text)), max)
}

/// The failure context of an attempt.
#[derive(Debug, Clone, Default)]
pub struct FailureContext {
    /// The sanitised excerpt.
    pub excerpt: String,
    /// Triage's failure class (`rust_fmt`, `rust_clippy`, `frontend_format` …), `unknown` when absent.
    pub failure_class: String,
    /// The failing CI step's name, when triage knew it.
    pub failing_step: Option<String>,
    /// A person's hint from a `retry` ([`paths::context::HINT`]), sanitised and bounded to 4 KiB.
    pub hint: Option<String>,
    /// Past fixes the controller offers ([`paths::context::MEMORY`]); empty when absent or unreadable.
    pub memory: MemoryContext,
}

impl FailureContext {
    /// Read the excerpt and triage's answer from `dir` (either may be missing), sanitised with
    /// `masker` and bounded to `max_bytes`.
    pub fn load(dir: &Path, masker: &Masker, max_bytes: usize) -> Self {
        let raw = std::fs::read(dir.join(paths::context::EXCERPT)).unwrap_or_default();
        let excerpt = sanitize(&String::from_utf8_lossy(&raw), masker, max_bytes);
        let triage: serde_json::Value = std::fs::read_to_string(dir.join(paths::context::TRIAGE))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let failure_class = triage.get("failureClass").and_then(|v| v.as_str()).unwrap_or("unknown").to_string();
        let failing_step = triage.get("failingStep").and_then(|v| v.as_str()).map(str::to_string);
        let hint = std::fs::read(dir.join(paths::context::HINT))
            .ok()
            .map(|raw| sanitize(&String::from_utf8_lossy(&raw), masker, 4096))
            .filter(|h| !h.trim().is_empty());
        let memory = match std::fs::read_to_string(dir.join(paths::context::MEMORY)) {
            Ok(s) => serde_json::from_str(&s).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the remembered fixes are unreadable; ignoring them");
                MemoryContext::default()
            }),
            Err(_) => MemoryContext::default(),
        };
        Self { excerpt, failure_class, failing_step, hint, memory }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_known_only_by_its_fingerprint_is_masked_as_a_whole_token() {
        let key = "zz-custom-llm-key-7f3a9c2e";
        let mut m = Masker::default();
        m.add_fingerprint(KeyFingerprint::of(key, "5a17"));
        let text = format!("LLM_KEY={key}\n{key}. and \"{key}\" but not x{key} nor {key}x; é {key}");
        assert_eq!(
            m.mask(&text),
            format!("LLM_KEY={MASK}\n{MASK}. and \"{MASK}\" but not x{key} nor {key}x; é {MASK}")
        );
        assert_eq!(m.mask("nothing here"), "nothing here");
        assert!(!KeyFingerprint::of(key, "5a17").matches(b"zz-custom-llm-key-7f3a9c2f"));
    }

    #[test]
    fn every_string_of_a_json_value_is_masked_and_its_keys_and_numbers_kept() {
        let secret = "s3cr3t-value-1234";
        let m = Masker::new([secret.to_string()]);
        let mut v = serde_json::json!({
            "text": format!("token {secret}"),
            "blocks": [{"type": "section", "fields": [secret, 7, null, true]}],
            secret: {"nested": {"deeper": [format!("{secret}!")]}}
        });
        m.mask_json(&mut v);
        let want = serde_json::json!({
            "text": format!("token {MASK}"),
            "blocks": [{"type": "section", "fields": [MASK, 7, null, true]}],
            secret: {"nested": {"deeper": [format!("{MASK}!")]}}
        });
        assert_eq!(v, want);
    }

    /// [`Masker::from_env`] reads this process's environment, which a unit test must not change
    /// (other tests run in parallel threads): the test runs itself again as a child process with the git
    /// token's file variable naming a secret file, and the child checks the masking.
    #[test]
    fn from_env_masks_the_secret_files_the_environment_names() {
        let name = "agent::context::tests::from_env_masks_the_secret_files_the_environment_names";
        if std::env::var_os("MASKER_TEST_CHILD").is_some() {
            let out = Masker::from_env().mask("token from-a-mounted-file and line-two-of-it");
            assert_eq!(out, format!("token {MASK} and {MASK}"));
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "from-a-mounted-file\nline-two-of-it\n").unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--test-threads=1"])
            .env("MASKER_TEST_CHILD", "1")
            .env(env::GIT_TOKEN_FILE, &secret)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn masks_known_formats_and_literals() {
        let m = Masker::new(["s3cr3t-value-42".to_string(), "abc".to_string()]);
        let text = "token ghp_0123456789abcdefghijABCDEFGHIJ0123 key AKIAIOSFODNN7EXAMPLE slack xoxb-1234-5678-abcdefghij \
                    auth: Bearer eyJhbGciOiJIUzI1NiJ9.abc sk-proj-abcdefghijklmnop1234 github_pat_11AAAAAAA0123456789_abcdefghijklmnopqrstuv \
                    literal s3cr3t-value-42 abc\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\nafter";
        let out = m.mask(text);
        for s in ["ghp_", "AKIA", "xoxb-", "eyJhbG", "sk-proj", "github_pat_", "s3cr3t", "MIIE"] {
            assert!(!out.contains(s), "{s} leaked: {out}");
        }
        assert!(out.contains("abc\n"), "short literals are not masked: {out}");
        assert!(out.ends_with("after"));
    }

    /// Every token format the README and this module list, one at a time, with the text around it
    /// left intact.
    #[test]
    fn masks_each_listed_token_format() {
        let cases: &[(&str, &str)] = &[
            ("GitHub personal access token", "ghp_0123456789abcdefghijABCDEFGHIJ0123"),
            ("GitHub OAuth token", "gho_0123456789abcdefghijABCDEFGHIJ0123"),
            ("GitHub user-to-server token", "ghu_0123456789abcdefghijABCDEFGHIJ0123"),
            ("GitHub server-to-server token", "ghs_0123456789abcdefghijABCDEFGHIJ0123"),
            ("GitHub refresh token", "ghr_0123456789abcdefghijABCDEFGHIJ0123"),
            ("GitHub fine-grained token", "github_pat_11AAAAAAA0123456789_abcdefghijklmnopqrstuv"),
            ("AWS access key id", "AKIAIOSFODNN7EXAMPLE"),
            ("AWS temporary access key id", "ASIAIOSFODNN7EXAMPLE"),
            ("AWS secret access key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            ("AWS secret access key, env style", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            ("Slack bot token", "xoxb-1234-5678-abcdefghij"),
            ("Slack user token", "xoxp-1234-5678-abcdefghij"),
            ("bearer token", "Bearer eyJhbGciOiJIUzI1NiJ9.abc"),
            ("OpenAI-style API key", "sk-proj-abcdefghijklmnop1234"),
            ("Anthropic API key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
            ("GitLab personal access token", "glpat-abcdefghij0123456789"),
            ("password assignment", "DATABASE_PASSWORD=hunter2-R5-canary"),
            ("password in YAML", "password: 'c0rrect-h0rse'"),
            ("RSA private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"),
            (
                "OpenSSH private key",
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
            ),
            ("PKCS#8 private key", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----"),
            ("a truncated private key", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB"),
        ];
        let m = Masker::default();
        for (name, secret) in cases {
            let text = format!("before {secret} after");
            let out = m.mask(&text);
            assert!(out.contains(MASK), "{name} not masked: {out}");
            assert!(out.starts_with("before "), "{name}: {out}");
            // Nothing that identifies the secret survives: no 6-character window of its value.
            let value = secret.rsplit(['=', ' ', '\n']).next().unwrap_or(secret);
            let chars: Vec<char> = value.chars().collect();
            for w in chars.windows(6) {
                let w: String = w.iter().collect();
                assert!(!out.contains(&w), "{name}: {w:?} leaked in {out}");
            }
            if !name.contains("truncated") {
                assert!(out.ends_with(" after"), "{name}: {out}");
            }
        }
        // Ordinary text stays as it was.
        for plain in ["skip-this step", "the ghost_ town", "AKIA is short", "bearer of bad news", "xox-1"] {
            assert_eq!(m.mask(plain), plain);
        }
    }

    #[test]
    fn literal_secrets_come_from_the_mounted_secret_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "multi-line-secret-1\nsecond-line-secret\n").unwrap();
        let other = dir.path().join("not-a-secret");
        std::fs::write(&other, "plain-value-here").unwrap();
        let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let m = Masker::from_vars([
            (env::GIT_TOKEN_FILE.to_string(), path(&token)),
            (env::CONFIG.to_string(), path(&other)),
            ("SOME_FILE".to_string(), path(&other)),
            (env::LLM_API_KEY_FILE.to_string(), path(&dir.path().join("missing"))),
        ]);
        let out = m.mask("a multi-line-secret-1 b second-line-secret c plain-value-here");
        assert_eq!(out, format!("a {MASK} b {MASK} c plain-value-here"));
        let mut m = Masker::new(["abcdefgh".to_string(), "abcdefgh-longer".to_string(), "abcdefgh".to_string()]);
        assert_eq!(m.mask("x abcdefgh-longer y abcdefgh"), format!("x {MASK} y {MASK}"), "longest first");
        m.add("  added-secret  ");
        m.add("short");
        assert_eq!(m.mask("added-secret short"), format!("{MASK} short"));
    }

    #[test]
    fn the_failure_context_is_read_sanitised_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(paths::context::EXCERPT),
            "\x1b[31merror\x1b[0m token ghp_0123456789abcdefghijABCDEFGHIJ0123\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(paths::context::TRIAGE), r#"{"failureClass":"rust_fmt","failingStep":"fmt"}"#)
            .unwrap();
        let c = FailureContext::load(dir.path(), &Masker::default(), 1000);
        assert_eq!(c.excerpt, format!("error token {MASK}\n"));
        assert_eq!((c.failure_class.as_str(), c.failing_step.as_deref()), ("rust_fmt", Some("fmt")));
        let empty = FailureContext::load(&dir.path().join("nothing"), &Masker::default(), 1000);
        assert_eq!((empty.excerpt.as_str(), empty.failure_class.as_str(), empty.failing_step), ("", "unknown", None));
        let long = tempfile::tempdir().unwrap();
        std::fs::write(long.path().join(paths::context::EXCERPT), "a".repeat(5000)).unwrap();
        assert!(FailureContext::load(long.path(), &Masker::default(), 300).excerpt.len() <= 300);
    }

    #[test]
    fn bound_keeps_short_text_and_cuts_on_char_boundaries() {
        assert_eq!(bound("short", 10), "short");
        assert_eq!(bound("exact", 5), "exact");
        let s = "é".repeat(400);
        let b = bound(&s, 200);
        assert!(b.len() <= 200 && b.contains("elided"), "{}", b.len());
        let head = b.split('\n').next().unwrap();
        assert!(!head.is_empty() && head.chars().all(|c| c == 'é'));
        assert_eq!(sanitize("\x1b[1mok\x1b[0m", &Masker::default(), 100), "ok");
    }

    #[test]
    fn bound_cuts_the_head_back_and_the_tail_forward_to_char_boundaries() {
        // Both cut points (a third of the budget for the head, the rest for the tail) fall inside a
        // two-byte character: the head ends before it and the tail starts after it, so the result is
        // exactly this, 90 of the 91 bytes allowed.
        let text = "é".repeat(60) + &"ü".repeat(60);
        let b = bound(&text, 91);
        assert_eq!(b, format!("{}\n[… 149 bytes elided …]\n{}", "é".repeat(10), "ü".repeat(21)));
        assert_eq!(b.len(), 90);
    }

    #[test]
    fn strips_ansi_and_control_and_bounds() {
        let s = strip_control("\x1b[1;31merror\x1b[0m: bad\r\nprogress 10%\rprogress 100%\n\x07bell\x1b]0;title\x07ok");
        assert_eq!(s, "error: bad\nprogress 100%\nbellok");
        let long = "a".repeat(1000) + &"z".repeat(1000);
        let b = bound(&long, 300);
        assert!(b.len() <= 300, "{}", b.len());
        assert!(b.starts_with('a') && b.ends_with('z') && b.contains("elided"));
    }
}
