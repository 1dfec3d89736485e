//! Fuzz the triage pipeline (extraction, parsers, classification, routing, hash, excerpt) with
//! arbitrary bytes: it must not panic, must keep the excerpt within its byte bound and free of
//! control characters, and must always produce a 16-hex-digit hash.
//!
//! Run: `cargo +nightly fuzz run triage -- -max_len=262144`
#![no_main]

use ci_healer::triage::{Limits, RoutingConfig, TriageInput, triage_with_limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits so the fuzzer also exercises truncation paths.
    let limits = Limits { max_scan_bytes: 64 << 10, max_line_bytes: 4096, max_diagnostics: 200, max_excerpt_bytes: 8192 };
    let steps = vec!["Run cargo test".to_string()];
    let input = TriageInput { log: data, failed_steps: &steps, ..Default::default() };
    let r = triage_with_limits(&input, &RoutingConfig::default(), &limits);
    assert!(r.excerpt.len() <= limits.max_excerpt_bytes, "excerpt {} bytes", r.excerpt.len());
    assert!(!r.excerpt.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "control character in excerpt");
    assert!(r.error_hash.len() == 16 && r.error_hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    assert!((0.0..=1.0).contains(&r.confidence));
    // Whole-log defaults too (bigger bounds, same invariants).
    let r = ci_healer::triage::triage(&TriageInput { log: data, ..Default::default() }, &RoutingConfig::default());
    assert!(r.excerpt.len() <= Limits::default().max_excerpt_bytes);
});
