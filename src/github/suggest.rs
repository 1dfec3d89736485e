//! GitHub suggestion blocks for a kept patch (issue 9, `propose` mode): each hunk of the patch as a
//! suggested change on the failing pull request's diff, which a reviewer applies with GitHub's
//! "Commit suggestion" button.
//!
//! GitHub documents suggested changes as pull request **review comments** whose body holds a
//! ```` ```suggestion ```` fenced block: the block's lines replace the commented line (`line`) or
//! lines (`start_line` to `line`), on the `RIGHT` side of the diff. A review comment can only sit on
//! a line the pull request's diff shows; so the patch is offered as suggestions only when **every**
//! hunk fits: the patch modifies files in place (no new, deleted or renamed files, no binary), and
//! each hunk's lines are lines the pull request's diff shows on its right side (from the `patch`
//! field of `GET /repos/{owner}/{repo}/pulls/{pull_number}/files`). Applying every suggestion then
//! gives exactly the patch. Otherwise the patch stays in the comment only. Pure.

use std::collections::{BTreeMap, BTreeSet};

use diffy::Line;
use diffy::patch_set::{FileOperation, ParseOptions, PatchKind, PatchSet};

/// One suggested change: replace lines `start_line..=line` of `path` (at the pull request's head,
/// the failing commit) with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The file, relative to the repository root.
    pub path: String,
    /// The first line replaced (1-based).
    pub start_line: i64,
    /// The last line replaced (1-based; equal to `start_line` for one line).
    pub line: i64,
    /// The new lines, each ending in `\n` (empty: the lines are deleted).
    pub replacement: String,
}

impl Suggestion {
    /// The review comment's body: a ```` ```suggestion ```` block its content cannot close.
    pub fn body(&self) -> String {
        let mut fence = "```".to_string();
        while self.replacement.contains(&fence) {
            fence.push('`');
        }
        format!("{fence}suggestion\n{}{fence}", self.replacement)
    }
}

/// The right-side (new) line numbers a unified diff of one file shows (context and added lines),
/// from GitHub's `patch` field of a pull request file. Pure.
pub fn right_side_lines(patch: &str) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    let mut next: Option<i64> = None;
    for l in patch.lines() {
        if let Some(rest) = l.strip_prefix("@@ ") {
            // `@@ -a,b +c,d @@ …`
            next = rest
                .split_whitespace()
                .find_map(|p| p.strip_prefix('+'))
                .and_then(|r| r.split(',').next())
                .and_then(|n| n.parse().ok());
            continue;
        }
        let Some(n) = next.as_mut() else { continue };
        match l.as_bytes().first() {
            Some(b'+') | Some(b' ') => {
                out.insert(*n);
                *n += 1;
            }
            // An empty context line (some tools strip the space).
            None => {
                out.insert(*n);
                *n += 1;
            }
            _ => {}
        }
    }
    out
}

/// The suggestions that make up `patch`, when every hunk fits on the lines the pull request's diff
/// shows (`shown`: path → right-side line numbers, see [`right_side_lines`]); `None` when any part
/// of the patch does not fit (or the patch cannot be read). Pure.
pub fn suggestions(patch: &[u8], shown: &BTreeMap<String, BTreeSet<i64>>) -> Option<Vec<Suggestion>> {
    let files = PatchSet::parse_bytes(patch, ParseOptions::gitdiff()).collect::<Result<Vec<_>, _>>().ok()?;
    if files.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for fp in &files {
        let FileOperation::Modify { original, modified } = fp.operation() else { return None };
        let strip = |p: &[u8]| {
            let p = String::from_utf8_lossy(p).into_owned();
            p.strip_prefix("a/").or_else(|| p.strip_prefix("b/")).map(str::to_string).unwrap_or(p)
        };
        let path = strip(original);
        if path != strip(modified) || fp.old_mode() != fp.new_mode() {
            return None;
        }
        let PatchKind::Text(p) = fp.patch() else { return None };
        let lines_shown = shown.get(&path)?;
        for h in p.hunks() {
            // Old-side line number of each line of the hunk (context and deletions), in order.
            let mut old_no = h.old_range().start() as i64;
            let mut rows: Vec<(Option<i64>, &Line<'_, [u8]>)> = Vec::new();
            for l in h.lines() {
                match l {
                    Line::Context(_) | Line::Delete(_) => {
                        rows.push((Some(old_no), l));
                        old_no += 1;
                    }
                    Line::Insert(_) => rows.push((None, l)),
                }
            }
            let changed = |r: &(Option<i64>, &Line<'_, [u8]>)| !matches!(r.1, Line::Context(_));
            let first = rows.iter().position(changed)?;
            let last = rows.iter().rposition(changed)?;
            let (mut lo, mut hi) = (first, last);
            // A pure insertion replaces the context line before it (or after it) with itself plus
            // the new lines: a suggestion must sit on an existing line.
            if rows[lo..=hi].iter().all(|r| r.0.is_none()) {
                if lo > 0 {
                    lo -= 1;
                } else if hi + 1 < rows.len() {
                    hi += 1;
                } else {
                    return None;
                }
            }
            let olds: Vec<i64> = rows[lo..=hi].iter().filter_map(|r| r.0).collect();
            let (start, end) = (*olds.first()?, *olds.last()?);
            if !(start..=end).all(|n| lines_shown.contains(&n)) {
                return None;
            }
            let mut replacement = Vec::new();
            for r in &rows[lo..=hi] {
                if let Line::Context(t) | Line::Insert(t) = r.1 {
                    replacement.extend_from_slice(t);
                    if !t.ends_with(b"\n") {
                        replacement.push(b'\n');
                    }
                }
            }
            out.push(Suggestion {
                path: path.clone(),
                start_line: start,
                line: end,
                replacement: String::from_utf8(replacement).ok()?,
            });
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PR_DIFF: &str =
        "@@ -1,3 +1,4 @@\n const a = 1;\n-const b = 2;\n+const b = 3;\n+const c = 4;\n const d = 5;\n";

    fn shown() -> BTreeMap<String, BTreeSet<i64>> {
        [("web/x.ts".to_string(), right_side_lines(PR_DIFF))].into()
    }

    #[test]
    fn the_right_side_of_a_pull_request_diff() {
        assert_eq!(right_side_lines(PR_DIFF).into_iter().collect::<Vec<_>>(), [1, 2, 3, 4]);
        let two = "@@ -10,2 +10,2 @@ fn x\n a\n-b\n+c\n@@ -40 +40,2 @@\n z\n+y\n";
        assert_eq!(right_side_lines(two).into_iter().collect::<Vec<_>>(), [10, 11, 40, 41]);
    }

    #[test]
    fn a_patch_on_lines_of_the_diff_becomes_suggestions() {
        // Replace line 3 (`const c = 4;`), insert after line 4.
        let patch = b"diff --git a/web/x.ts b/web/x.ts\n--- a/web/x.ts\n+++ b/web/x.ts\n@@ -2,3 +2,4 @@\n const b = 3;\n-const c = 4;\n+const c: number = 4;\n const d = 5;\n+const e = 6;\n";
        let s = suggestions(patch, &shown()).expect("fits");
        assert_eq!(
            s,
            [Suggestion {
                path: "web/x.ts".into(),
                start_line: 3,
                line: 4,
                replacement: "const c: number = 4;\nconst d = 5;\nconst e = 6;\n".into()
            }]
        );
        assert_eq!(s[0].body(), "```suggestion\nconst c: number = 4;\nconst d = 5;\nconst e = 6;\n```");
        // A deleted line: an empty suggestion.
        let del = b"diff --git a/web/x.ts b/web/x.ts\n--- a/web/x.ts\n+++ b/web/x.ts\n@@ -1,3 +1,2 @@\n const a = 1;\n-const b = 3;\n const c = 4;\n";
        let s = suggestions(del, &shown()).unwrap();
        assert_eq!((s[0].start_line, s[0].line, s[0].replacement.as_str()), (2, 2, ""));
    }

    #[test]
    fn a_patch_that_does_not_fit_stays_a_patch() {
        // Line 9 is not in the pull request's diff.
        let off = b"diff --git a/web/x.ts b/web/x.ts\n--- a/web/x.ts\n+++ b/web/x.ts\n@@ -9 +9 @@\n-x\n+y\n";
        assert_eq!(suggestions(off, &shown()), None);
        // Another file, a new file, a rename, garbage.
        let other = b"diff --git a/y.ts b/y.ts\n--- a/y.ts\n+++ b/y.ts\n@@ -1 +1 @@\n-x\n+y\n";
        assert_eq!(suggestions(other, &shown()), None);
        let new = b"diff --git a/web/n.ts b/web/n.ts\nnew file mode 100644\n--- /dev/null\n+++ b/web/n.ts\n@@ -0,0 +1 @@\n+x\n";
        assert_eq!(suggestions(new, &shown()), None);
        assert_eq!(suggestions(b"not a patch", &shown()), None);
        // One hunk fits, the other does not: nothing (the suggestions must add up to the patch).
        let half = b"diff --git a/web/x.ts b/web/x.ts\n--- a/web/x.ts\n+++ b/web/x.ts\n@@ -2 +2 @@\n-const b = 3;\n+const b = 7;\n@@ -20 +20 @@\n-x\n+y\n";
        assert_eq!(suggestions(half, &shown()), None);
    }
}
