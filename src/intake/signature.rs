//! GitHub's webhook signature: `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body
//! keyed with the webhook's secret. Compared in constant time ([`hmac::Mac::verify_slice`]).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No `X-Hub-Signature-256` header.
    Missing,
    /// The header is not `sha256=` and 64 hex digits.
    Malformed,
    /// The HMAC does not match.
    Mismatch,
}

impl Refused {
    /// For people (the 401 answer's body).
    pub const fn message(self) -> &'static str {
        match self {
            Refused::Missing => "missing X-Hub-Signature-256: set the webhook's secret",
            Refused::Malformed => "X-Hub-Signature-256 is not sha256=<64 hex digits>",
            Refused::Mismatch => "X-Hub-Signature-256 does not match the body: wrong secret or altered body",
        }
    }
}

/// `sha256=<hex>` for `body` under `secret`: the header value GitHub sends (and the GitHub Actions
/// snippet in the README computes with openssl).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Check `header` (the `X-Hub-Signature-256` value, if any) against `body` and `secret`. Constant
/// time in the signature's bytes. Pure.
pub fn verify(secret: &[u8], header: Option<&[u8]>, body: &[u8]) -> Result<(), Refused> {
    let header = header.ok_or(Refused::Missing)?;
    let hex_digits = header.strip_prefix(b"sha256=").ok_or(Refused::Malformed)?;
    if hex_digits.len() != 64 {
        return Err(Refused::Malformed);
    }
    let expected = hex::decode(hex_digits).map_err(|_| Refused::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| Refused::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
    #[test]
    fn githubs_documented_example() {
        let want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(b"It's a Secret to Everybody", b"Hello, World!"), want);
        assert_eq!(verify(b"It's a Secret to Everybody", Some(want.as_bytes()), b"Hello, World!"), Ok(()));
    }

    #[test]
    fn refusals() {
        let good = sign(b"s", b"body");
        assert_eq!(verify(b"s", None, b"body"), Err(Refused::Missing));
        assert_eq!(verify(b"other", Some(good.as_bytes()), b"body"), Err(Refused::Mismatch));
        assert_eq!(verify(b"s", Some(good.as_bytes()), b"body!"), Err(Refused::Mismatch));
        assert_eq!(verify(b"s", Some(good.replace("sha256=", "sha1=").as_bytes()), b"body"), Err(Refused::Malformed));
        assert_eq!(verify(b"s", Some(&good.as_bytes()[..70]), b"body"), Err(Refused::Malformed));
        let not_hex = format!("sha256={}", "zz".repeat(32));
        assert_eq!(verify(b"s", Some(not_hex.as_bytes()), b"body"), Err(Refused::Malformed));
        let upper = format!("sha256={}", good[7..].to_uppercase());
        assert_eq!(verify(b"s", Some(upper.as_bytes()), b"body"), Ok(()), "hex digits in either case");
    }
}
