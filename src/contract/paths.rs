//! Where things are inside an attempt pod: the volumes the Job mounts and the files on them.
//!
//! The controller's Job builder mounts these paths; the steps find them through the environment
//! ([`super::env`]), so the host runner can map each mount to a local folder.

/// Folder of the shared `healer-bin` volume; `prepare` copies the binary here.
pub const BIN_DIR: &str = "/healer/bin";
/// The `healer` binary inside the pod, after `prepare` (the first word of every later step's command).
pub const BINARY: &str = "/healer/bin/healer";
/// Where the healer image keeps its own binary (the `prepare` step runs it).
pub const IMAGE_BINARY: &str = "/usr/local/bin/healer";
/// The shared `workspace` volume (an `emptyDir`).
pub const WORKSPACE_DIR: &str = "/workspace";
/// The repository checkout, below the workspace volume.
pub const SOURCE_DIR: &str = "/workspace/src";
/// Step records, build caches and the prompt, below the workspace volume but outside the repository.
pub const STATE_DIR: &str = "/workspace/.healer";
/// `HOME` of every step, on the writable workspace volume (the root filesystem may be read-only).
pub const HOME_DIR: &str = "/workspace/home";
/// The run's context ConfigMap, mounted read-only.
pub const CONTEXT_DIR: &str = "/healer/context";
/// The git token's folder, mounted into `checkout` only.
pub const GIT_SECRET_DIR: &str = "/healer/secrets/git";
/// The file name of the git token in [`GIT_SECRET_DIR`].
pub const GIT_TOKEN_FILE_NAME: &str = "token";
/// The LLM API key's folder, mounted into the `llm-proxy` sidecar only ([`super::proxy`]).
pub const LLM_SECRET_DIR: &str = "/healer/secrets/llm";
/// The file name of the LLM API key in [`LLM_SECRET_DIR`].
pub const LLM_KEY_FILE_NAME: &str = "api-key";
/// A writable `emptyDir` for temporary files (`TMPDIR`): every container's root filesystem is
/// read-only.
pub const TMP_DIR: &str = "/tmp";
/// Kubernetes' default `terminationMessagePath`; the kubelet reads at most 4096 bytes of it.
pub const TERMINATION_LOG: &str = "/dev/termination-log";

/// Keys of the run's context ConfigMap (files in [`CONTEXT_DIR`]).
pub mod context {
    /// The bounded, masked failure excerpt (UTF-8 text).
    pub const EXCERPT: &str = "excerpt.txt";
    /// Triage's answer as JSON (`failureClass`, `failingStep`, … of `TriageResult`).
    pub const TRIAGE: &str = "triage.json";
    /// A person's hint for the agent, from a `retry` (UTF-8 text; absent without one).
    pub const HINT: &str = "hint.txt";
    /// Past fixes the attempt may reuse, as JSON ([`crate::contract::memory::MemoryContext`]);
    /// absent when the cluster remembers none.
    pub const MEMORY: &str = "memory.json";
}

/// The key of an attempt's patch ConfigMap that holds the unified diff.
pub const PATCH_KEY: &str = "patch.diff";

/// The path of the git token file inside the `checkout` step.
pub fn git_token_file() -> String {
    format!("{GIT_SECRET_DIR}/{GIT_TOKEN_FILE_NAME}")
}

/// The path of the LLM API key file inside the `llm-proxy` sidecar.
pub fn llm_key_file() -> String {
    format!("{LLM_SECRET_DIR}/{LLM_KEY_FILE_NAME}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_paths_sit_on_their_volumes() {
        assert!(BINARY.starts_with(BIN_DIR));
        for p in [SOURCE_DIR, STATE_DIR, HOME_DIR] {
            assert!(p.starts_with(&format!("{WORKSPACE_DIR}/")), "{p}");
        }
        assert_eq!(git_token_file(), "/healer/secrets/git/token");
        assert_eq!(llm_key_file(), "/healer/secrets/llm/api-key");
    }
}
