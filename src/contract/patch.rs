//! How the validate step hands the patch to the controller: printed to its log between two
//! delimiter lines, read back through the API server's `GET /api/v1/namespaces/{ns}/pods/{name}/log`.
//! The verdict's `patchSha256` lets the controller check that it read the whole patch.

/// Line that opens the patch in the validate step's log.
pub const BEGIN: &str = "-----BEGIN CI-HEALER PATCH-----";
/// Line that closes the patch in the validate step's log.
pub const END: &str = "-----END CI-HEALER PATCH-----";

/// The patch as the validate step prints it: the delimiters on their own lines around the diff.
pub fn frame(patch: &str) -> String {
    let mut s = String::with_capacity(patch.len() + BEGIN.len() + END.len() + 3);
    s.push_str(BEGIN);
    s.push('\n');
    s.push_str(patch);
    if !patch.ends_with('\n') {
        s.push('\n');
    }
    s.push_str(END);
    s.push('\n');
    s
}

/// The patch inside the last complete framed block of `log` (a step may print more than one), or
/// `None` when the log has no complete block.
pub fn extract(log: &str) -> Option<&str> {
    let begin = format!("{BEGIN}\n");
    let start = log.rfind(&begin)? + begin.len();
    let body = &log[start..];
    let end = if body.starts_with(END) { 0 } else { body.find(&format!("\n{END}"))? + 1 };
    Some(&body[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_patch_round_trips_and_the_last_block_wins() {
        let p = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
        let log = format!("noise\n{}more noise\n", frame(p));
        assert_eq!(extract(&log), Some(p));
        assert_eq!(extract("nothing"), None);
        assert_eq!(extract(&format!("{BEGIN}\nunterminated\n")), None);
        assert_eq!(extract(&format!("{BEGIN}\n{END}\n")), Some(""));
        let two = format!("{}{}", frame("first\n"), frame("second\n"));
        assert_eq!(extract(&two), Some("second\n"));
        assert_eq!(extract(&frame("no newline")), Some("no newline\n"));
    }
}
