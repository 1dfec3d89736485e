//! Fuzz the webhook receiver's parse-and-map path (`ci_healer::intake::receiver::decide`: size cap,
//! signature, headers, JSON, the Sensor's filters and names) with arbitrary bodies and headers. It
//! must not panic; a run is created only for a correctly signed delivery of one of the four kinds,
//! and a command only for a signed `issue_comment`, each with a name the API server accepts (an
//! RFC 1123 subdomain `gh-…` or `ghc-…`) and the delivery recorded.
//!
//! Input: byte 0 picks the event (`workflow_job`, `check_run`, `check_suite`, `status`, `ping`,
//! another kind, `issue_comment`, or one read from the input), byte 1's low bits pick the signature (correct, none,
//! wrong, or fuzzed bytes) and whether a delivery id is sent; the rest is the body. Seeds: the real
//! payloads in tests/fixtures/payloads with their event byte (`fuzz/seed-webhook.sh`).
//!
//! Run: `fuzz/seed-webhook.sh && cargo +nightly fuzz run webhook -- -max_len=65536`
#![no_main]

use std::time::Duration;

use ci_healer::intake::map::Mapped;
use ci_healer::intake::receiver::{Decision, Incoming, Settings, decide};
use ci_healer::intake::signature::sign;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret";
const EVENTS: [&str; 7] = ["workflow_job", "check_run", "check_suite", "status", "ping", "pull_request", "issue_comment"];

fuzz_target!(|data: &[u8]| {
    let [pick, flags, rest @ ..] = data else { return };
    let (event, body): (&[u8], &[u8]) = match EVENTS.get(*pick as usize) {
        Some(e) => (e.as_bytes(), rest),
        // Any other first byte: the event header is read from the input, up to a NUL.
        None => match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        },
    };
    let good = sign(SECRET, body);
    let signature: Option<Vec<u8>> = match flags & 3 {
        0 => Some(good.clone().into_bytes()),
        1 => None,
        2 => Some(sign(b"another secret", body).into_bytes()),
        _ => Some(body.iter().take(71).copied().collect()),
    };
    let delivery: Option<&[u8]> = (flags & 4 == 0).then_some(b"72d3162e-cc78-11e3-81ab-4c9367dc0958");
    let settings = Settings { namespace: "ci-healer".into(), max_body_bytes: 32 << 10, api_timeout: Duration::from_secs(5) };
    let req = Incoming { event: Some(event), delivery, signature: signature.as_deref(), content_type: Some(b"application/json"), body };
    match decide(&req, SECRET, &settings) {
        Decision::Create(made) => {
            assert!(body.len() <= settings.max_body_bytes);
            assert_eq!(signature.as_deref(), Some(good.as_bytes()), "created only when signed");
            let name = made.name();
            let (meta, prefix, delivery_id) = match &made {
                Mapped::Run(run) => (&run.metadata, "gh-", run.spec.source.delivery_id.is_some()),
                Mapped::Command(cmd) => {
                    assert_eq!(event, b"issue_comment");
                    assert!(cmd.spec.body.chars().count() <= 65_536);
                    (&cmd.metadata, "ghc-", cmd.spec.delivery_id.is_some())
                }
            };
            assert!(name.starts_with(prefix) && name.len() <= 253, "{name}");
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{name}");
            assert!(!name.ends_with('-'), "{name}");
            assert_eq!(meta.namespace.as_deref(), Some("ci-healer"));
            assert!(delivery_id);
            // The object serialises (what the API client sends).
            match &made {
                Mapped::Run(run) => serde_json::to_vec(&**run).unwrap(),
                Mapped::Command(cmd) => serde_json::to_vec(&**cmd).unwrap(),
            };
        }
        Decision::Answer { status, message } => {
            assert!([200, 204, 400, 401, 413, 415].contains(&status), "{status} {message}");
            if status == 200 {
                assert_eq!(event, b"ping");
            }
        }
    }
});
