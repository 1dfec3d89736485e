//! Fuzz the controller's readers of what an attempt pod leaves in its containers' termination
//! messages (the pod's own, untrusted output): the validate step's verdict, a failed step's
//! `StepFailure` and the agent's report. They must not panic on any text; a message that parses as a
//! verdict must serialise back within `MAX_VERDICT_BYTES` and read back as the same outcome and reason.
//!
//! Run: `cargo +nightly fuzz run verdict -- -max_len=16384`
#![no_main]

use ci_healer::contract::verdict::{AgentReport, MAX_VERDICT_BYTES, StepFailure, Verdict};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let message = Some(text.as_ref());
    if let Ok(v) = Verdict::from_termination_message(message) {
        let again = v.to_termination_message();
        assert!(again.len() <= MAX_VERDICT_BYTES || v.summary.is_empty(), "{} bytes", again.len());
        let back = Verdict::from_termination_message(Some(&again)).expect("a written verdict reads back");
        assert_eq!((back.outcome, back.reason), (v.outcome, v.reason));
    }
    if let Some(f) = StepFailure::from_termination_message(message, "StepFailed") {
        assert!(ci_healer::contract::verdict::is_reason(&f.reason), "{:?}", f.reason);
    }
    let _ = AgentReport::diagnosis_from(message);
});
