//! Keeping a passed attempt's patch: read it from the validate step's log (between the verdict's
//! PATCH_BEGIN/PATCH_END delimiters), check it against the verdict's `patchSha256`, and store it in a
//! ConfigMap owned by the attempt.
//! PLACEHOLDER (spine issue): the attempt-runtime issue implements it.

use k8s_openapi::api::core::v1::Pod;

use super::{Context, Result};
use crate::crd::HealingAttempt;
use crate::verdict::Verdict;

/// Store the patch of a passed attempt. Returns the ConfigMap's name, or `None` when there is no patch
/// to keep. Errors: transient API failures (retried by the caller's backoff).
pub async fn keep_patch(
    _attempt: &HealingAttempt,
    _pod: Option<&Pod>,
    _verdict: &Verdict,
    _ctx: &Context,
) -> Result<Option<String>> {
    Ok(None)
}
