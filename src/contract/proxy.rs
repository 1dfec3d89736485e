//! The LLM credential proxy of an attempt pod: a Kubernetes native sidecar (an init container with
//! `restartPolicy: Always`, started before the `agent` step and running until the pod's main
//! container ends) that is the only container mounting the LLM key Secret.
//!
//! The `agent` step's LLM client (the built-in agent, or an external agent given the proxy as its
//! provider base URL) sends its requests without a key to `http://127.0.0.1:`[`PORT`]; the proxy
//! drops any authentication header it gets, adds the provider's own (Anthropic `x-api-key`,
//! OpenAI-style `Authorization: Bearer`), forwards only to paths below the configured provider base
//! URL (anything else: `403`), and streams the answer back. So the repository's code that the
//! agent and validate steps run (build scripts, test suites) finds no key in its environment,
//! its files or `/proc`.

use super::step::Step;

/// The sidecar's container name.
pub const CONTAINER: &str = "llm-proxy";
/// The `healer` subcommand the sidecar runs.
pub const SUBCOMMAND: &str = "llm-proxy";
/// The loopback port it listens on, declared as the container's `containerPort` (the pod's own
/// network namespace: every attempt pod may use the same port).
pub const PORT: u16 = 8719;
/// The name of the declared port (`ports[].name`, at most 15 characters).
pub const PORT_NAME: &str = "llm-proxy";
/// Response header the proxy sets on an answer it made itself rather than relayed from the
/// provider; the value is a stable reason: [`REASON_UNREACHABLE`], [`REASON_KEY_MISSING`],
/// [`REASON_FORBIDDEN`].
pub const ERROR_HEADER: &str = "x-healer-proxy-error";
/// [`ERROR_HEADER`] of a `502`: the provider could not be reached (connection or timeout).
pub const REASON_UNREACHABLE: &str = "ProviderUnreachable";
/// [`ERROR_HEADER`] of a `401`: the mounted key file is missing or blank.
pub const REASON_KEY_MISSING: &str = "ApiKeyMissing";
/// [`ERROR_HEADER`] of a `403`: the request's path is not below the provider's base URL.
pub const REASON_FORBIDDEN: &str = "PathNotAllowed";
/// The value an external agent gets in the variable named by
/// [`super::env::EXPORT_API_KEY_AS`]: not a key; the proxy replaces whatever header carries it.
pub const PLACEHOLDER_KEY: &str = "ci-healer-llm-proxy-adds-the-key";

/// The step that talks to the proxy; the sidecar is started right before it.
pub const CLIENT_STEP: Step = Step::Agent;

/// The address the proxy listens on: `127.0.0.1:<PORT>`.
pub fn listen_addr() -> String {
    format!("127.0.0.1:{PORT}")
}

/// The proxy's base URL as the agent step sees it: `http://127.0.0.1:<PORT>`.
pub fn url() -> String {
    format!("http://{}", listen_addr())
}

/// The proxy's own endpoint (never forwarded: no provider API has a path starting with `/.`):
/// `GET` answers the key's [`KeyFingerprint`] as JSON, so the agent step can mask the key in what
/// it prints and sends without ever holding it.
pub const FINGERPRINT_PATH: &str = "/.ci-healer/key-fingerprint";

/// A salted SHA-256 of the LLM key: `sha256` is the lowercase hex of SHA-256(`salt` ‖ key), `length`
/// the key's length in bytes. The salt is random per proxy start, so the fingerprint is no
/// precomputable lookup; a high-entropy key cannot be recovered from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyFingerprint {
    /// Hex salt.
    pub salt: String,
    /// Hex SHA-256 of salt followed by the key.
    pub sha256: String,
    /// The key's length in bytes.
    pub length: usize,
}

impl KeyFingerprint {
    /// The fingerprint of `key` with `salt`.
    pub fn of(key: &str, salt: &str) -> Self {
        Self { salt: salt.into(), sha256: Self::digest(salt, key.as_bytes()), length: key.len() }
    }

    fn digest(salt: &str, candidate: &[u8]) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(salt.as_bytes());
        h.update(candidate);
        hex::encode(h.finalize())
    }

    /// Whether `candidate` is the key.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        candidate.len() == self.length && Self::digest(&self.salt, candidate) == self.sha256
    }
}
