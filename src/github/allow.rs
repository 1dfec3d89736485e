//! Who may heal what. The controller's GitHub identity serves the whole cluster, so a HealingRun in
//! any namespace could otherwise make it read the logs of, and open pull requests on, any repository
//! that identity reaches (a confused deputy). The controller config allows repositories per
//! namespace; a run outside its namespace's allowance is refused before any GitHub call.
//!
//! ```yaml
//! allowedRepositories:
//!   team-web: [octo-org/web, octo-org/design-*]   # owner/name, globs on the name
//!   platform: [octo-org]                          # an owner: all of its repositories
//! ```
//!
//! Matching is case-insensitive, as GitHub's names are. A namespace that is not listed may heal
//! nothing (the default is empty).

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

/// Repository patterns per namespace: `owner`, `owner/name`, or `owner/<glob>` (`*`, `?`, `[…]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RepositoryAllowlist(pub BTreeMap<String, Vec<String>>);

fn matcher(pattern: &str) -> Result<(String, Option<GlobMatcher>), String> {
    let p = pattern.trim();
    let (owner, name) = match p.split_once('/') {
        Some((o, n)) => (o, Some(n)),
        None => (p, None),
    };
    let valid_owner = !owner.is_empty() && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid_owner || name.is_some_and(|n| n.is_empty() || n.contains('/')) {
        return Err(format!("'{pattern}' is not an owner or an owner/name pattern (e.g. octo-org or octo-org/web-*)"));
    }
    let glob = match name {
        None | Some("*") => None,
        Some(n) => Some(
            GlobBuilder::new(n)
                .case_insensitive(true)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("'{pattern}': {e}"))?
                .compile_matcher(),
        ),
    };
    Ok((owner.to_ascii_lowercase(), glob))
}

impl RepositoryAllowlist {
    /// No namespace allows anything.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }

    /// Check every pattern. Errors: a message naming the namespace and the bad pattern.
    pub fn validate(&self) -> Result<(), String> {
        for (ns, patterns) in &self.0 {
            for p in patterns {
                matcher(p).map_err(|e| format!("allowedRepositories.{ns}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Whether runs in `namespace` may act on `repository` (`owner/name`).
    pub fn allows(&self, namespace: &str, repository: &str) -> bool {
        let Some((owner, name)) = repository.split_once('/') else { return false };
        self.0
            .get(namespace)
            .into_iter()
            .flatten()
            .filter_map(|p| matcher(p).ok())
            .any(|(o, glob)| o.eq_ignore_ascii_case(owner) && glob.is_none_or(|g| g.is_match(name)))
    }

    /// The patterns of `namespace` (empty when it is not listed), for messages.
    pub fn patterns(&self, namespace: &str) -> &[String] {
        self.0.get(namespace).map(Vec::as_slice).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_per_namespace_only() {
        let a: RepositoryAllowlist = serde_yaml_ng::from_str(
            "team-web: [octo-org/web, octo-org/design-*]\nplatform: [Octo-Org]\nsolo: ['me/*']",
        )
        .unwrap();
        a.validate().unwrap();
        assert!(a.allows("team-web", "octo-org/web"));
        assert!(a.allows("team-web", "OCTO-ORG/Web"), "case-insensitive");
        assert!(a.allows("team-web", "octo-org/design-system"));
        assert!(!a.allows("team-web", "octo-org/api"));
        assert!(!a.allows("team-web", "other/web"));
        assert!(a.allows("platform", "octo-org/api"));
        assert!(a.allows("solo", "me/anything"));
        assert!(!a.allows("unlisted", "octo-org/web"), "a namespace that is not listed heals nothing");
        assert!(!a.allows("platform", "not-a-repo"));
    }

    #[test]
    fn bad_patterns_are_named() {
        let a: RepositoryAllowlist = serde_yaml_ng::from_str("ns: ['octo/a/b']").unwrap();
        assert!(a.validate().unwrap_err().contains("allowedRepositories.ns: 'octo/a/b'"));
        let a: RepositoryAllowlist = serde_yaml_ng::from_str("ns: ['/x']").unwrap();
        assert!(a.validate().is_err());
    }
}
