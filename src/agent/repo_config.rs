//! A repository's own `.github/ci-healer.yml`, read at the failing commit (`headSha`, with
//! `git show`, never from the workspace an agent edits) and merged under the cluster's policy
//! ([`RepoConfigPolicy`], part of the profile settings): the cluster decides what a repository may
//! ask for, and a repository can only make healing stricter unless the cluster allows more.
//!
//! ```yaml
//! enabled: false                 # opt out: no attempt changes anything (RepositoryOptedOut)
//! protectedPaths: ["db/migrations/**"]   # added to the protected paths
//! validationCommands: ["make check"]     # added to (or, if the cluster allows, replacing) the checks
//! neverFixBranches: ["release/*"]        # branches (globs) never healed (BranchNeverFixed)
//! agentHints: "Use the workspace's `just` recipes."   # quoted in the prompt (≤ 4 KiB)
//! maxAttempts: 2                 # at most the cluster's maxAttempts (read by the controller)
//! ```
//!
//! Unknown keys and values of the wrong type are reported in [`Merged::notes`], never silently
//! ignored; a file that is not YAML is reported and treated as absent.

use globset::{Glob, GlobSetBuilder};
use serde::Deserialize;

pub use crate::contract::settings::{RepoConfigPolicy, RepoValidationCommands};

/// The path of the file in the repository.
pub const PATH: &str = ".github/ci-healer.yml";
/// Most bytes of `agentHints` quoted in the prompt.
pub const MAX_HINTS_BYTES: usize = 4096;

/// The file as the repository wrote it.
#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepoConfig {
    /// `false` opts the repository out of healing.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Globs added to the protected paths.
    #[serde(default)]
    pub protected_paths: Vec<String>,
    /// Commands that must pass on the changed workspace.
    #[serde(default)]
    pub validation_commands: Vec<String>,
    /// Branch globs never healed.
    #[serde(default)]
    pub never_fix_branches: Vec<String>,
    /// Free text for the agent.
    #[serde(default)]
    pub agent_hints: Option<String>,
    /// Most attempts per run.
    #[serde(default)]
    pub max_attempts: Option<i32>,
}

/// What applies after merging the repository's file under the cluster's policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Merged {
    /// The repository opted out (and the cluster lets it).
    pub opted_out: bool,
    /// The branch matches one of the repository's never-fix globs.
    pub branch_never_fixed: Option<String>,
    /// Protected paths to add.
    pub protected_paths: Vec<String>,
    /// The validation commands in force (the profile's or class's `base`, merged).
    pub validation_commands: Vec<String>,
    /// Hints for the prompt, bounded.
    pub agent_hints: Option<String>,
    /// The repository's `maxAttempts`, capped by the cluster's.
    pub max_attempts: Option<i32>,
    /// What was refused or could not be read, for the log and the step's record.
    pub notes: Vec<String>,
}

/// Parse the file. Errors: not YAML, unknown keys, wrong types (serde's message).
pub fn parse(text: &str) -> Result<RepoConfig, String> {
    if text.trim().is_empty() {
        return Ok(RepoConfig::default());
    }
    serde_yaml_ng::from_str(text).map_err(|e| format!("{PATH} is not valid: {e}"))
}

/// Merge `file` (the file's text at the failing commit, if any) under `policy`, for `branch`, on top
/// of the `base` validation commands and the cluster's `max_attempts`.
pub fn merge(
    file: Option<&str>,
    policy: &RepoConfigPolicy,
    branch: &str,
    base: &[String],
    max_attempts: Option<i32>,
) -> Merged {
    let mut m = Merged { validation_commands: base.to_vec(), ..Default::default() };
    let Some(text) = file else { return m };
    if !policy.enabled {
        m.notes.push(format!("{PATH} is present but the cluster does not read repository config"));
        return m;
    }
    let cfg = match parse(text) {
        Ok(c) => c,
        Err(e) => {
            m.notes.push(e);
            return m;
        }
    };
    if cfg.enabled == Some(false) {
        if policy.allow_opt_out {
            m.opted_out = true;
        } else {
            m.notes.push("the repository asks to opt out; the cluster does not allow opting out".into());
        }
    }
    for g in &cfg.never_fix_branches {
        match Glob::new(g) {
            Ok(glob) if glob.compile_matcher().is_match(branch) => {
                m.branch_never_fixed.get_or_insert_with(|| g.clone());
            }
            Ok(_) => {}
            Err(e) => m.notes.push(format!("neverFixBranches {g:?} is not a glob: {e}")),
        }
    }
    let mut b = GlobSetBuilder::new();
    for p in &cfg.protected_paths {
        match Glob::new(p) {
            Ok(g) => {
                b.add(g);
                m.protected_paths.push(p.clone());
            }
            Err(e) => m.notes.push(format!("protectedPaths {p:?} is not a glob: {e}")),
        }
    }
    let extra: Vec<String> =
        cfg.validation_commands.iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
    if !extra.is_empty() {
        match policy.validation_commands {
            RepoValidationCommands::Ignore => {
                m.notes.push("the repository's validationCommands are ignored: the cluster does not allow them".into());
            }
            RepoValidationCommands::Add => {
                for c in extra {
                    if !m.validation_commands.contains(&c) {
                        m.validation_commands.push(c);
                    }
                }
            }
            RepoValidationCommands::Replace => m.validation_commands = extra,
        }
    }
    if let Some(h) = cfg.agent_hints.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        if policy.allow_agent_hints {
            m.agent_hints = Some(super::context::bound(h, MAX_HINTS_BYTES));
        } else {
            m.notes.push("the repository's agentHints are ignored: the cluster does not allow them".into());
        }
    }
    if let Some(n) = cfg.max_attempts {
        let cap = max_attempts.unwrap_or(i32::MAX);
        if n < 1 {
            m.notes.push(format!("maxAttempts {n} is below 1 and is ignored"));
        } else if n > cap {
            m.notes.push(format!("maxAttempts {n} is above the cluster's {cap}; {cap} applies"));
            m.max_attempts = Some(cap);
        } else {
            m.max_attempts = Some(n);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RepoConfigPolicy {
        RepoConfigPolicy::default()
    }

    #[test]
    fn merges_under_the_cluster_policy() {
        let base = vec!["cargo test".to_string()];
        let file = "enabled: true\nprotectedPaths: [\"db/migrations/**\"]\nvalidationCommands: [\"make check\", \"cargo test\"]\nneverFixBranches: [\"release/*\"]\nagentHints: Use just.\nmaxAttempts: 5\n";
        let m = merge(Some(file), &policy(), "main", &base, Some(3));
        assert_eq!(m.validation_commands, ["cargo test", "make check"], "added, not replacing, by default");
        assert_eq!(m.protected_paths, ["db/migrations/**"]);
        assert_eq!(m.agent_hints.as_deref(), Some("Use just."));
        assert_eq!(m.max_attempts, Some(3));
        assert!(m.notes.iter().any(|n| n.contains("above the cluster's 3")), "{:?}", m.notes);
        assert_eq!(m.branch_never_fixed, None);
        assert_eq!(
            merge(Some(file), &policy(), "release/1.2", &base, None).branch_never_fixed.as_deref(),
            Some("release/*")
        );

        let strict = RepoConfigPolicy {
            validation_commands: RepoValidationCommands::Ignore,
            allow_agent_hints: false,
            allow_opt_out: false,
            ..policy()
        };
        let m = merge(
            Some("enabled: false\nvalidationCommands: [\"true\"]\nagentHints: hi\n"),
            &strict,
            "main",
            &base,
            None,
        );
        assert!(!m.opted_out && m.validation_commands == base && m.agent_hints.is_none());
        assert_eq!(m.notes.len(), 3, "{:?}", m.notes);
        let replace = RepoConfigPolicy { validation_commands: RepoValidationCommands::Replace, ..policy() };
        assert_eq!(
            merge(Some("validationCommands: [\"make ci\"]"), &replace, "main", &base, None).validation_commands,
            ["make ci"]
        );
        assert!(merge(Some("enabled: false"), &policy(), "main", &base, None).opted_out);
        let off = RepoConfigPolicy { enabled: false, ..policy() };
        assert!(!merge(Some("enabled: false"), &off, "main", &base, None).opted_out);
    }

    #[test]
    fn bad_files_are_reported_not_ignored() {
        let m = merge(Some("enabeld: false\n"), &policy(), "main", &[], None);
        assert!(!m.opted_out && m.notes[0].contains("unknown field `enabeld`"), "{:?}", m.notes);
        let m = merge(Some("maxAttempts: many\n"), &policy(), "main", &[], None);
        assert!(m.notes[0].contains("maxAttempts"), "{:?}", m.notes);
        assert_eq!(merge(None, &policy(), "main", &["x".into()], None).validation_commands, ["x"]);
    }
}
