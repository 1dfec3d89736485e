//! Loop prevention and opt-outs: whether a run should heal at all. Each rule has its own reason;
//! a run that one of them stops ends `Skipped` (not failed). Pure.
//!
//! | rule | reason |
//! |---|---|
//! | the failing branch is one of ci-healer's (`ci-healer/*`) | `OwnBranch` |
//! | the head commit was made by ci-healer's identity | `OwnCommit` |
//! | the head commit's message has `[skip-healer]` or `[skip ci-healer]` | `SkipMarker` |
//! | the branch's last N commits (default 4) are all by bots (autofix.ci's rule) | `BotCommits` |
//! | a run for the same repository and branch started within the cooldown (default 10 min) | `Cooldown` |
//! | the repository has N (default 5) open ci-healer pull requests | `TooManyOpenPullRequests` |

use std::time::Duration;

use super::BranchFacts;
use super::config::LoopPrevention;

/// Why a run is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// A stable CamelCase reason (see the module table).
    pub reason: &'static str,
    /// What a person reads.
    pub message: String,
}

/// The rules that need nothing from GitHub: run before any call.
pub fn check_branch(branch: &str, rules: &LoopPrevention) -> Option<Skip> {
    (!rules.branch_prefix.is_empty() && branch.starts_with(&rules.branch_prefix)).then(|| Skip {
        reason: "OwnBranch",
        message: format!(
            "branch {branch} is one of ci-healer's own ({}*); ci-healer never heals its own fixes",
            rules.branch_prefix
        ),
    })
}

/// The cooldown: `since_last_run` is how long ago the newest other run for the same repository and
/// branch started (from the cluster's runs).
pub fn check_cooldown(since_last_run: Option<Duration>, other: Option<&str>, rules: &LoopPrevention) -> Option<Skip> {
    let window = Duration::from_secs(rules.cooldown_seconds.max(0) as u64);
    let since = since_last_run?;
    (window > Duration::ZERO && since < window).then(|| Skip {
        reason: "Cooldown",
        message: format!(
            "run {} for the same repository and branch started {}s ago, within the {}s cooldown",
            other.unwrap_or("another run"),
            since.as_secs(),
            window.as_secs()
        ),
    })
}

/// The rules that read the branch from GitHub.
pub fn check_facts(facts: &BranchFacts, rules: &LoopPrevention, max_open: i32) -> Option<Skip> {
    let me = facts.bot_login.to_ascii_lowercase();
    if let Some(head) = &facts.head_commit {
        let ours = |l: &Option<String>| l.as_deref().is_some_and(|l| !me.is_empty() && l.eq_ignore_ascii_case(&me));
        if ours(&head.author_login) || ours(&head.committer_login) {
            return Some(Skip {
                reason: "OwnCommit",
                message: format!(
                    "the head commit {} was made by ci-healer's identity ({})",
                    short(&head.sha),
                    facts.bot_login
                ),
            });
        }
        let msg = head.message.to_ascii_lowercase();
        if let Some(m) = rules.skip_markers.iter().find(|m| !m.is_empty() && msg.contains(&m.to_ascii_lowercase())) {
            return Some(Skip { reason: "SkipMarker", message: format!("the head commit's message contains {m}") });
        }
    }
    let n = rules.bot_commits.max(0) as usize;
    if n > 0 && facts.recent.len() >= n && facts.recent.iter().take(n).all(|c| c.by_bot) {
        return Some(Skip {
            reason: "BotCommits",
            message: format!("the last {n} commits on the branch are all by bots; a person should look first"),
        });
    }
    if max_open > 0 && facts.open_healer_pulls >= max_open {
        return Some(Skip {
            reason: "TooManyOpenPullRequests",
            message: format!(
                "the repository has {} open ci-healer pull requests (at most {max_open}); review or close some first",
                facts.open_healer_pulls
            ),
        });
    }
    None
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::CommitFacts;

    fn commit(login: &str, msg: &str, bot: bool) -> CommitFacts {
        CommitFacts {
            sha: "abcdef0123".into(),
            message: msg.into(),
            author_login: Some(login.into()),
            committer_login: None,
            by_bot: bot,
        }
    }

    fn facts(head: CommitFacts, recent: Vec<CommitFacts>, open: i32) -> BranchFacts {
        BranchFacts {
            head: Some(head.sha.clone()),
            head_commit: Some(head),
            recent,
            open_healer_pulls: open,
            bot_login: "ci-healer[bot]".into(),
            ..Default::default()
        }
    }

    #[test]
    fn each_rule_has_its_reason() {
        let r = LoopPrevention::default();
        assert_eq!(check_branch("ci-healer/gh-1-1-2", &r).unwrap().reason, "OwnBranch");
        assert!(check_branch("feature/ci-healer", &r).is_none());
        let human = commit("octocat", "fix", false);
        let reason = |f: BranchFacts| check_facts(&f, &r, 5).map(|s| s.reason);
        assert_eq!(reason(facts(commit("CI-Healer[bot]", "ci-healer: fix", true), vec![], 0)), Some("OwnCommit"));
        assert_eq!(reason(facts(commit("octocat", "wip [skip-healer]", false), vec![], 0)), Some("SkipMarker"));
        assert_eq!(reason(facts(commit("octocat", "WIP [Skip CI-Healer]", false), vec![], 0)), Some("SkipMarker"));
        let bots = vec![commit("renovate[bot]", "a", true); 4];
        assert_eq!(reason(facts(commit("renovate[bot]", "a", true), bots.clone(), 0)), Some("BotCommits"));
        let mut mixed = bots.clone();
        mixed[3] = human.clone();
        assert_eq!(reason(facts(commit("renovate[bot]", "a", true), mixed, 0)), None, "one person in the last 4");
        assert_eq!(
            reason(facts(commit("renovate[bot]", "a", true), bots[..3].to_vec(), 0)),
            None,
            "fewer than 4 commits"
        );
        assert_eq!(reason(facts(human.clone(), vec![human.clone()], 5)), Some("TooManyOpenPullRequests"));
        assert_eq!(reason(facts(human.clone(), vec![human], 4)), None);
        let off = LoopPrevention { bot_commits: 0, cooldown_seconds: 0, ..r.clone() };
        assert!(check_facts(&facts(commit("renovate[bot]", "a", true), bots, 0), &off, 5).is_none());
        assert_eq!(check_cooldown(Some(Duration::from_secs(30)), Some("gh-1"), &r).unwrap().reason, "Cooldown");
        assert!(check_cooldown(Some(Duration::from_secs(601)), None, &r).is_none());
        assert!(check_cooldown(Some(Duration::from_secs(1)), None, &off).is_none());
        assert!(check_cooldown(None, None, &r).is_none());
    }
}
