//! Keeping a passed attempt's patch: read it from the validate step's log (between the
//! [`patch::BEGIN`]/[`patch::END`] delimiters) through the API server's `pods/{name}/log` endpoint, check it
//! against the verdict's `patchSha256`, and store it in a ConfigMap `<attempt>-patch` owned by the
//! attempt (at most [`MAX_PATCH_BYTES`]; a larger patch is not stored and the attempt's Event says so).

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::LogParams;
use kube::{Api, ResourceExt};
use sha2::{Digest, Sha256};

use super::apply::{self, Notice};
use super::{Context, Error, Result};
use crate::contract::{Step, Verdict, patch};
use crate::crd::HealingAttempt;
use crate::crd::conditions::Reason;
use crate::resources::configmap;

/// Largest patch kept in a ConfigMap (ConfigMaps are capped at 1 MiB; leave room for the rest).
pub const MAX_PATCH_BYTES: usize = 512 * 1024;

/// Why a patch could not be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchProblem {
    /// The log has no complete [`patch::BEGIN`] … [`patch::END`] block.
    NotInLog,
    /// The patch's SHA-256 differs from the verdict's `patchSha256`.
    ChecksumMismatch {
        /// The verdict's `patchSha256`.
        expected: String,
        /// The SHA-256 of what the log holds.
        actual: String,
    },
    /// The patch is larger than [`MAX_PATCH_BYTES`].
    TooLarge(usize),
}

impl PatchProblem {
    /// A stable reason, for Events.
    pub fn reason(&self) -> Reason {
        match self {
            PatchProblem::NotInLog => Reason::PatchNotInLog,
            PatchProblem::ChecksumMismatch { .. } => Reason::PatchChecksumMismatch,
            PatchProblem::TooLarge(_) => Reason::PatchTooLargeToKeep,
        }
    }

    fn message(&self) -> String {
        match self {
            PatchProblem::NotInLog => {
                "the validate step's log has no complete patch block; the patch was not kept".into()
            }
            PatchProblem::ChecksumMismatch { expected, actual } => {
                format!(
                    "the patch in the log has SHA-256 {actual}, the verdict says {expected}; the patch was not kept"
                )
            }
            PatchProblem::TooLarge(n) => format!(
                "the patch is {n} bytes, more than the {MAX_PATCH_BYTES} bytes a ConfigMap may keep; it was not stored"
            ),
        }
    }
}

/// Extract the patch between the delimiters of a validate log and check it. Pure.
/// The last complete block wins (a step may print more than one).
pub fn patch_from_log(log: &str, verdict: &Verdict) -> std::result::Result<String, PatchProblem> {
    let patch = patch::extract(log).ok_or(PatchProblem::NotInLog)?;
    if let Some(expected) = &verdict.patch_sha256 {
        let actual = hex::encode(Sha256::digest(patch.as_bytes()));
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(PatchProblem::ChecksumMismatch { expected: expected.clone(), actual });
        }
    }
    if patch.len() > MAX_PATCH_BYTES {
        return Err(PatchProblem::TooLarge(patch.len()));
    }
    Ok(patch.to_string())
}

/// Store the patch of a passed attempt. Returns the ConfigMap's name, or `None` when there is no patch
/// to keep (no pod, no patch in the log, checksum mismatch, too large: each is reported as a Warning
/// Event on the attempt). Errors: transient API failures (retried by the caller's backoff).
pub async fn keep_patch(
    attempt: &HealingAttempt,
    pod: Option<&str>,
    verdict: &Verdict,
    ctx: &Context,
) -> Result<Option<String>> {
    let Some(pod) = pod else { return Ok(None) };
    if verdict.patch_sha256.is_none() {
        return Ok(None);
    }
    let ns = attempt.namespace().ok_or(Error::MissingNamespace)?;
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns);
    let lp = LogParams {
        container: Some(Step::Validate.name().into()),
        limit_bytes: Some(4 * MAX_PATCH_BYTES as i64),
        ..Default::default()
    };
    let log = match pods.logs(pod, &lp).await {
        Ok(l) => l,
        // The pod (or its node) is gone: the log cannot come back, so say so instead of retrying forever.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 400 => {
            let note = format!("cannot read the validate step's log: {}", s.message);
            warn(attempt, ctx, Reason::PatchLogUnavailable, &note).await;
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let kept = match patch_from_log(&log, verdict) {
        Ok(p) => p,
        Err(problem) => {
            warn(attempt, ctx, problem.reason(), &problem.message()).await;
            return Ok(None);
        }
    };
    let Some(cm) = configmap::build_patch(attempt, &kept) else {
        return Ok(None);
    };
    let name = configmap::patch_name(&attempt.name_any());
    apply::apply_object::<ConfigMap>(ctx, &cm).await?;
    tracing::info!(attempt = %attempt.name_any(), namespace = %ns, configmap = %name, bytes = kept.len(), "kept the patch");
    Ok(Some(name))
}

async fn warn(attempt: &HealingAttempt, ctx: &Context, reason: Reason, note: &str) {
    tracing::warn!(attempt = %attempt.name_any(), reason = reason.as_str(), "{note}");
    apply::publish(ctx, attempt, Notice::warning(reason, note).action(Reason::KeepPatch)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Outcome;
    use crate::contract::patch::{BEGIN as PATCH_BEGIN, END as PATCH_END};

    fn v(sha: Option<String>) -> Verdict {
        Verdict { patch_sha256: sha, ..Verdict::new(Outcome::Passed, "ValidationPassed", "") }
    }

    #[test]
    fn extracts_and_checks_the_patch() {
        let p = "diff --git a/x b/x\n@@ -1 +1 @@\n-a\n+b\n";
        let sha = hex::encode(Sha256::digest(p.as_bytes()));
        let log = format!("verdict: Passed\n{PATCH_BEGIN}\n{p}{PATCH_END}\n");
        assert_eq!(patch_from_log(&log, &v(Some(sha.clone()))).unwrap(), p);
        assert!(matches!(patch_from_log(&log, &v(Some("00".into()))), Err(PatchProblem::ChecksumMismatch { .. })));
        assert_eq!(patch_from_log("no patch", &v(Some(sha))), Err(PatchProblem::NotInLog));
        let big = format!("{PATCH_BEGIN}\n{}\n{PATCH_END}\n", "x".repeat(MAX_PATCH_BYTES + 1));
        assert!(matches!(patch_from_log(&big, &v(None)), Err(PatchProblem::TooLarge(_))));
    }
}
