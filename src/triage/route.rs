//! Routing: from a classified failure to an agent profile or a re-run.
//!
//! The `routing:` key of the controller config (YAML, camelCase, unknown fields rejected):
//!
//! ```yaml
//! routing:
//!   fallbackProfile: general          # default "general"
//!   rerunClasses: [infra_flake]       # default [infra_flake]: answered with action "rerun"
//!   rules:                            # ordered, first match wins; empty: the built-in defaults
//!     - name: web-lint
//!       workflow: "^CI$"              # regex, case-insensitive, on the workflow name
//!       job: "lint|format"            # regex on the job name or any failed step name
//!       log: "ERR_PNPM_"              # regex on the excerpt
//!       changedFiles: ["web/**"]      # globs; any changed file matching any glob
//!       classes: [frontend_lint, frontend_format]
//!       tools: [eslint, prettier]     # any error diagnostic from one of these tools
//!       ecosystems: [javascript]      # the job's ecosystem, when at least ecosystemConfidence sure
//!       profile: frontend             # default: fallbackProfile
//!       action: agent                 # or rerun; default: rerun for rerunClasses, else agent
//!   ecosystemConfidence: 0.5          # default 0.5 (0.0 to 1.0)
//! ```
//!
//! A rule matches when every condition it sets holds. Without rules the built-in defaults apply:
//! rust classes → `rust`; frontend classes, and `dependency` failures from npm/pnpm/yarn → `frontend`;
//! `dependency` from cargo → `rust`; `docker_build`, `helm`, `k8s_manifest`, `network`,
//! `environment`, `infra_flake` → `infrastructure`; `workflow_syntax`, `permissions` → `general`;
//! then, for `unknown` and `dependency` failures, a confident ecosystem: rust → `rust`,
//! javascript → `frontend`, infrastructure → `infrastructure`. A class in `rerunClasses` is
//! answered with a re-run unless the matching rule sets `action`; anything unmatched goes to
//! `fallbackProfile`.

use std::fmt;
use std::sync::LazyLock;

use globset::{GlobBuilder, GlobMatcher};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::classify::FailureClass;
use super::ecosystem::{Ecosystem, EcosystemGuess};
use super::parsers::Tool;

/// What to do about the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RouteAction {
    /// Run agent attempts with the chosen profile.
    #[default]
    Agent,
    /// The failure looks flaky or infrastructural: ask CI to re-run instead of changing code.
    Rerun,
}

/// Routing rules from the controller config (`routing:`); ordered, falling back to `fallbackProfile`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoutingConfig {
    /// The profile when no rule matches. Default `general`.
    #[serde(default = "default_fallback")]
    pub fallback_profile: String,
    /// Ordered rules; first match wins. Empty: [`RoutingConfig::default_rules`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RoutingRule>,
    /// Classes answered with [`RouteAction::Rerun`] unless the matching rule sets `action`.
    /// Default `[infra_flake]`; add `network` to re-run package-host failures.
    #[serde(default = "default_rerun_classes")]
    pub rerun_classes: Vec<FailureClass>,
    /// How sure (0.0 to 1.0) the ecosystem guess must be for a rule's `ecosystems` to hold.
    /// Default 0.5.
    #[serde(default = "default_ecosystem_confidence")]
    pub ecosystem_confidence: f32,
}

fn default_ecosystem_confidence() -> f32 {
    0.5
}

fn default_fallback() -> String {
    "general".into()
}

fn default_rerun_classes() -> Vec<FailureClass> {
    vec![FailureClass::InfraFlake]
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            fallback_profile: default_fallback(),
            rules: Vec::new(),
            rerun_classes: default_rerun_classes(),
            ecosystem_confidence: default_ecosystem_confidence(),
        }
    }
}

/// One routing rule. Unset conditions always hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoutingRule {
    /// A name reported in [`super::TriageResult::matched_rule`]; default `rules[<index>]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Case-insensitive regex on the workflow name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Pattern>,
    /// Case-insensitive regex on the job name or any failed step name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Pattern>,
    /// Case-insensitive regex on the excerpt (the failure lines and diagnostics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Pattern>,
    /// Globs (`**` crosses directories, `*` does not); any changed file matching any glob.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_files: Vec<GlobPattern>,
    /// The failure class is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<FailureClass>,
    /// An error diagnostic came from one of these tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// The job's ecosystem is one of these, guessed at least `ecosystemConfidence` sure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecosystems: Vec<Ecosystem>,
    /// The profile to use; default the fallback profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Default [`RouteAction::Agent`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RouteAction>,
}

/// A case-insensitive regular expression (the `regex` crate's syntax), compiled when the config is
/// read. Errors: invalid syntax, or a compiled size over 1 MiB.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Compile `source`.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let regex = RegexBuilder::new(source).case_insensitive(true).size_limit(1 << 20).build()?;
        Ok(Self { source: source.to_string(), regex })
    }
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}
impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}
impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(&s).map_err(|e| serde::de::Error::custom(format!("invalid regex {s:?}: {e}")))
    }
}

/// A path glob (`globset` syntax, `*` within a path component, `**` across), compiled when read.
#[derive(Clone)]
pub struct GlobPattern {
    source: String,
    matcher: GlobMatcher,
}

impl GlobPattern {
    /// Compile `source`. Errors: invalid glob syntax.
    pub fn new(source: &str) -> Result<Self, globset::Error> {
        let matcher = GlobBuilder::new(source).literal_separator(true).build()?.compile_matcher();
        Ok(Self { source: source.to_string(), matcher })
    }
    /// Whether `path` (relative to the repository root) matches.
    pub fn is_match(&self, path: &str) -> bool {
        self.matcher.is_match(path.trim_start_matches("./"))
    }
}

impl fmt::Debug for GlobPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}
impl PartialEq for GlobPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Serialize for GlobPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}
impl<'de> Deserialize<'de> for GlobPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        GlobPattern::new(&s).map_err(|e| serde::de::Error::custom(format!("invalid glob {s:?}: {e}")))
    }
}

static DEFAULT_RULES: LazyLock<Vec<RoutingRule>> = LazyLock::new(|| {
    use FailureClass as C;
    let rule = |name: &str, classes: &[C], tools: &[Tool], profile: &str| RoutingRule {
        name: Some(format!("default:{name}")),
        classes: classes.to_vec(),
        tools: tools.to_vec(),
        profile: Some(profile.to_string()),
        ..Default::default()
    };
    let eco = |name: &str, e: Ecosystem, profile: &str| RoutingRule {
        name: Some(format!("default:{name}")),
        classes: vec![C::Unknown, C::Dependency],
        ecosystems: vec![e],
        profile: Some(profile.to_string()),
        ..Default::default()
    };
    vec![
        rule("rust", &[C::RustBuild, C::RustClippy, C::RustTest, C::RustFmt], &[], "rust"),
        rule(
            "frontend",
            &[C::FrontendTypes, C::FrontendLint, C::FrontendFormat, C::FrontendTest, C::FrontendBuild],
            &[],
            "frontend",
        ),
        rule("frontend-dependency", &[C::Dependency], &[Tool::Npm, Tool::Pnpm, Tool::Yarn], "frontend"),
        rule("rust-dependency", &[C::Dependency], &[Tool::Cargo], "rust"),
        rule(
            "infrastructure",
            &[C::DockerBuild, C::Helm, C::K8sManifest, C::Network, C::Environment, C::InfraFlake],
            &[],
            "infrastructure",
        ),
        rule("general", &[C::WorkflowSyntax, C::Permissions], &[], "general"),
        eco("rust-ecosystem", Ecosystem::Rust, "rust"),
        eco("frontend-ecosystem", Ecosystem::Javascript, "frontend"),
        eco("infrastructure-ecosystem", Ecosystem::Infrastructure, "infrastructure"),
    ]
});

impl RoutingConfig {
    /// The built-in rules used when [`RoutingConfig::rules`] is empty.
    pub fn default_rules() -> &'static [RoutingRule] {
        &DEFAULT_RULES
    }

    /// The rules in effect.
    pub fn effective_rules(&self) -> &[RoutingRule] {
        if self.rules.is_empty() { Self::default_rules() } else { &self.rules }
    }

    /// Check that the fallback and every rule's profile are among `profiles`, and that
    /// `ecosystemConfidence` is within 0.0 to 1.0. Errors name the rule or field.
    pub fn validate(&self, profiles: &[&str]) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.ecosystem_confidence) {
            return Err(format!("routing.ecosystemConfidence {} is not within 0.0 to 1.0", self.ecosystem_confidence));
        }
        if !profiles.contains(&self.fallback_profile.as_str()) {
            return Err(format!("routing.fallbackProfile '{}' is not a configured profile", self.fallback_profile));
        }
        for (i, r) in self.effective_rules().iter().enumerate() {
            if let Some(p) = &r.profile
                && !profiles.contains(&p.as_str())
            {
                let name = r.name.clone().unwrap_or_else(|| format!("rules[{i}]"));
                return Err(format!("routing rule '{name}' names profile '{p}', which is not configured"));
            }
        }
        Ok(())
    }
}

/// What routing looks at.
#[derive(Debug, Default, Clone)]
pub struct RouteQuery<'a> {
    /// The failure class's name.
    pub class: &'a str,
    /// The workflow's name.
    pub workflow_name: Option<&'a str>,
    /// The job's name.
    pub job_name: Option<&'a str>,
    /// The failed steps' names.
    pub step_names: Vec<&'a str>,
    /// Changed files, relative to the repository root.
    pub changed_files: &'a [String],
    /// The excerpt (rules' `log` patterns search it).
    pub excerpt: &'a str,
    /// Tools of the error diagnostics.
    pub tools: Vec<Tool>,
    /// The job's ecosystem and how sure triage is of it.
    pub ecosystem: Option<EcosystemGuess>,
    /// The least confidence at which `ecosystems` conditions hold ([`RoutingConfig::ecosystem_confidence`]).
    pub min_ecosystem_confidence: f32,
}

/// The routing answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDecision {
    /// The profile to use.
    pub profile: String,
    /// Agent or re-run.
    pub action: RouteAction,
    /// The rule that matched (`default:<name>`, the rule's name or `rules[<index>]`).
    pub rule: Option<String>,
}

impl RoutingRule {
    /// Whether every condition of the rule holds for `q`.
    pub fn matches(&self, q: &RouteQuery<'_>) -> bool {
        if let Some(p) = &self.workflow
            && !q.workflow_name.is_some_and(|w| p.is_match(w))
        {
            return false;
        }
        if let Some(p) = &self.job
            && !(q.job_name.is_some_and(|j| p.is_match(j)) || q.step_names.iter().any(|s| p.is_match(s)))
        {
            return false;
        }
        if let Some(p) = &self.log
            && !p.is_match(q.excerpt)
        {
            return false;
        }
        if !self.changed_files.is_empty()
            && !q.changed_files.iter().any(|f| self.changed_files.iter().any(|g| g.is_match(f)))
        {
            return false;
        }
        if !self.classes.is_empty() && !self.classes.iter().any(|c| c.as_str() == q.class) {
            return false;
        }
        if !self.tools.is_empty() && !self.tools.iter().any(|t| q.tools.contains(t)) {
            return false;
        }
        if !self.ecosystems.is_empty()
            && !q
                .ecosystem
                .is_some_and(|g| g.confidence >= q.min_ecosystem_confidence && self.ecosystems.contains(&g.ecosystem))
        {
            return false;
        }
        true
    }
}

/// Route: first matching rule (its action, else a re-run for `rerunClasses`), then `rerunClasses`,
/// then the fallback profile. `q.min_ecosystem_confidence` is taken from `cfg`.
pub fn route(cfg: &RoutingConfig, q: &RouteQuery<'_>) -> RouteDecision {
    let q = &RouteQuery { min_ecosystem_confidence: cfg.ecosystem_confidence, ..q.clone() };
    let rerun = cfg.rerun_classes.iter().any(|c| c.as_str() == q.class);
    for (i, r) in cfg.effective_rules().iter().enumerate() {
        if r.matches(q) {
            let action = r.action.unwrap_or(if rerun { RouteAction::Rerun } else { RouteAction::Agent });
            return RouteDecision {
                profile: r.profile.clone().unwrap_or_else(|| cfg.fallback_profile.clone()),
                action,
                rule: Some(r.name.clone().unwrap_or_else(|| format!("rules[{i}]"))),
            };
        }
    }
    if rerun {
        return RouteDecision {
            profile: cfg.fallback_profile.clone(),
            action: RouteAction::Rerun,
            rule: Some("rerunClasses".into()),
        };
    }
    RouteDecision { profile: cfg.fallback_profile.clone(), action: RouteAction::Agent, rule: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(class: &str) -> RouteQuery<'_> {
        RouteQuery { class, ..Default::default() }
    }

    #[test]
    fn defaults_route_by_class() {
        let cfg = RoutingConfig::default();
        assert_eq!(route(&cfg, &q("rust_fmt")).profile, "rust");
        assert_eq!(route(&cfg, &q("frontend_types")).profile, "frontend");
        assert_eq!(route(&cfg, &q("helm")).profile, "infrastructure");
        assert_eq!(route(&cfg, &q("permissions")).profile, "general");
        assert_eq!(route(&cfg, &q("unknown")).profile, "general");
        assert_eq!(route(&cfg, &q("dependency")).profile, "general");
        let mut dq = q("dependency");
        dq.tools = vec![Tool::Npm];
        assert_eq!(route(&cfg, &dq).profile, "frontend");
        let d = route(&cfg, &q("infra_flake"));
        assert_eq!((d.action, d.profile.as_str()), (RouteAction::Rerun, "infrastructure"));
        let d = route(&cfg, &q("network"));
        assert_eq!((d.action, d.profile.as_str()), (RouteAction::Agent, "infrastructure"));
        let rerun_network = RoutingConfig { rerun_classes: vec![FailureClass::Network], ..RoutingConfig::default() };
        let d = route(&rerun_network, &q("network"));
        assert_eq!((d.action, d.profile.as_str()), (RouteAction::Rerun, "infrastructure"));
        // A confident ecosystem routes an unknown class; a doubtful one does not.
        let mut uq = q("unknown");
        uq.ecosystem = Some(EcosystemGuess { ecosystem: Ecosystem::Javascript, confidence: 0.8 });
        assert_eq!(route(&cfg, &uq).profile, "frontend");
        uq.ecosystem = Some(EcosystemGuess { ecosystem: Ecosystem::Javascript, confidence: 0.3 });
        assert_eq!(route(&cfg, &uq).profile, "general");
        uq.ecosystem = Some(EcosystemGuess { ecosystem: Ecosystem::Python, confidence: 0.9 });
        assert_eq!(route(&cfg, &uq).profile, "general");
        assert!(cfg.validate(&["general", "rust", "frontend", "infrastructure"]).is_ok());
        assert!(cfg.validate(&["general"]).unwrap_err().contains("default:rust"));
    }

    #[test]
    fn yaml_rules_first_match_wins() {
        let cfg: RoutingConfig = serde_yaml_ng::from_str(
            "fallbackProfile: general\nrules:\n  - name: docs\n    changedFiles: ['docs/**']\n    profile: general\n  - job: 'e2e'\n    classes: [frontend_test]\n    action: rerun\n  - workflow: '^release$'\n    log: 'helm'\n    profile: infrastructure\n",
        )
        .unwrap();
        let files = vec!["docs/a/b.md".to_string()];
        let mut query = q("rust_build");
        query.changed_files = &files;
        assert_eq!(route(&cfg, &query).rule.as_deref(), Some("docs"));
        let mut query = q("frontend_test");
        query.job_name = Some("E2E tests");
        let d = route(&cfg, &query);
        assert_eq!((d.action, d.rule.as_deref()), (RouteAction::Rerun, Some("rules[1]")));
        let mut query = q("unknown");
        query.workflow_name = Some("Release");
        query.excerpt = "Error: UPGRADE FAILED (helm)";
        assert_eq!(route(&cfg, &query).profile, "infrastructure");
        // Rules given: no built-in defaults.
        assert_eq!(route(&cfg, &q("rust_build")).profile, "general");
    }

    #[test]
    fn bad_config_is_rejected() {
        let e = serde_yaml_ng::from_str::<RoutingConfig>("rules: [{job: '('}]").unwrap_err().to_string();
        assert!(e.contains("invalid regex"), "{e}");
        let e = serde_yaml_ng::from_str::<RoutingConfig>("rules: [{classes: [rust_bild]}]").unwrap_err().to_string();
        assert!(e.contains("unknown variant"), "{e}");
        let e = serde_yaml_ng::from_str::<RoutingConfig>("fallback: x").unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
        let e = serde_yaml_ng::from_str::<RoutingConfig>("rules: [{changedFiles: ['a/[']}]").unwrap_err().to_string();
        assert!(e.contains("invalid glob"), "{e}");
    }
}
