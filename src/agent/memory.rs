//! Memory of past fixes, inside the attempt pod: the controller puts the validated fixes this run may
//! reuse into the context dir ([`crate::contract::memory::MemoryContext`], picked by
//! [`crate::controller::memory::select`]).
//!
//! - [`replay`]: on the **first** attempt, a validated fix of the same error hash is re-applied with
//!   `git apply` (no model, zero tokens) and checked with the validation commands; when it does not
//!   apply or does not pass, the workspace is reset and the agent goes on as if there were none (the
//!   fix is then still offered as an example). The validate step judges a replayed change like any
//!   other (protected paths, weakened tests, validation commands).
//! - [`examples`]: fixes of the same failure class, quoted in the prompt (masked).

use std::path::Path;
use std::time::Duration;

use super::context::Masker;
use super::prompt::PastFixExample;
use super::{diff, process, validate};
use crate::contract::memory::{MemoryContext, PastFix};

/// What [`replay`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Nothing to replay (not the first attempt, or no fix of this error hash is remembered).
    None,
    /// The fix applies and the validation commands pass: the diagnosis to report.
    Applied {
        /// The remembered fix's diagnosis, reported as this attempt's.
        diagnosis: String,
    },
    /// The fix was tried and dropped (the workspace is back at the failing commit): why.
    Dropped {
        /// Why it was dropped (does not apply, or a validation command failed).
        why: String,
    },
}

/// Re-apply the remembered fix of `memory` in `ws` on attempt 1 and run `validation` (within
/// `timeout` each). See the module docs.
pub async fn replay(
    memory: &MemoryContext,
    attempt: i32,
    ws: &Path,
    validation: &[String],
    timeout: Duration,
    masker: &Masker,
) -> Replay {
    let Some(fix) = memory.replay.as_ref().filter(|_| attempt == 1) else { return Replay::None };
    let file = process::state_dir().join("memory-replay.diff");
    if let Err(e) = std::fs::create_dir_all(process::state_dir()).and_then(|_| std::fs::write(&file, &fix.patch)) {
        return Replay::Dropped { why: format!("cannot write the remembered patch: {e}") };
    }
    let file = file.to_string_lossy().into_owned();
    if let Err(e) = diff::git(ws, &["apply", "--whitespace=nowarn", &file]).await {
        return Replay::Dropped { why: format!("the remembered fix {} does not apply here: {e:#}", fix.entry) };
    }
    if !validation.is_empty()
        && let Err(e) = validate::run_commands(validation, ws, timeout, masker).await
    {
        let _ = diff::git(ws, &["reset", "-q", "--hard", "HEAD"]).await;
        let _ = diff::git(ws, &["clean", "-q", "-fd"]).await;
        return Replay::Dropped {
            why: format!("the remembered fix {} applies but the validation commands fail: {}", fix.entry, e.1),
        };
    }
    Replay::Applied { diagnosis: diagnosis(fix) }
}

fn diagnosis(fix: &PastFix) -> String {
    let mut d = format!(
        "re-applied the fix validated in run {} (remembered as {}) for the same error; no model was used",
        fix.source_run, fix.entry
    );
    if !fix.summary.trim().is_empty() {
        d.push_str(". Its diagnosis: ");
        d.push_str(fix.summary.trim());
    }
    d
}

/// The examples of `memory` for the prompt, masked: the fix of the same error first (when the model
/// runs, re-applying it did not do), then those of the same class.
pub fn examples(memory: &MemoryContext, masker: &Masker) -> Vec<PastFixExample> {
    let same_error = memory.replay.iter().map(|f| PastFixExample {
        source_run: f.source_run.clone(),
        summary: format!(
            "(the same error; re-applying this fix as it is did not pass here) {}",
            masker.mask(&f.summary)
        ),
        patch: masker.mask(&f.patch),
    });
    same_error
        .chain(memory.examples.iter().map(|f| PastFixExample {
            source_run: f.source_run.clone(),
            summary: masker.mask(&f.summary),
            patch: masker.mask(&f.patch),
        }))
        .collect()
}
