//! Lines every run of a well-known CI runner prints, whatever failed: the runner's set-up, checkout
//! and environment notices. They carry failure-looking words (`sudo`, `warning`, `error` in a
//! tool's version banner, `permission`) but are never the failure, so they never anchor an
//! excerpt block.
//!
//! Sources: the GitHub Actions runner's `Set up job` and `Complete job` output and the
//! `actions/checkout` / `actions/setup-*` messages; Travis CI's worker and build-system banners and
//! its container-infrastructure (sudo) notice; GitLab Runner's job preamble; CircleCI's
//! `Spin up environment`; Azure Pipelines' agent preamble; Jenkins' pipeline and SCM lines.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Anchored, Input, MatchKind, StartKind};

/// Line starts (after leading blanks) of runner boilerplate.
const PREFIXES: &[&str] = &[
    // GitHub Actions runner and first-party actions.
    "Current runner version:",
    "Runner name:",
    "Runner group name:",
    "Machine name:",
    "Operating System",
    "Runner Image",
    "Image: ",
    "Version: ",
    "Included Software: ",
    "Image Release: ",
    "GITHUB_TOKEN Permissions",
    "Secret source:",
    "Prepare workflow directory",
    "Prepare all required actions",
    "Getting action download info",
    "Download action repository",
    "Download immutable action package",
    "Complete job name:",
    "Cleaning up orphan processes",
    "Terminate orphan process:",
    "Evaluate and set job outputs",
    "Evaluate and set environment url",
    "Uploading runner diagnostic logs",
    "Syncing repository:",
    "Getting Git version info",
    "Temporarily overriding HOME=",
    "Adding repository directory to the temporary git global config as a safe directory",
    "Deleting the contents of ",
    "Initializing the repository",
    "Disabling automatic garbage collection",
    "Setting up auth",
    "Fetching the repository",
    "Determining the checkout info",
    "Checking out the ref",
    "Removing SSH command configuration",
    "Removing HTTP extra header",
    "Removing auth",
    "hint: Using 'master' as the name for the initial branch",
    "hint: is subject to change",
    "hint: of your new repositories",
    "hint: to use in all of your new repositories",
    "hint: call:",
    "hint: ",
    "Attempting to download ",
    "Acquiring ",
    "Extracting ",
    "Adding to the cache",
    "Environment details",
    "Found in cache @ ",
    "Cache not found for input keys:",
    "Cache restored from key:",
    "Post job cleanup.",
    "[command]/usr/bin/git ",
    "[command]/usr/bin/tar ",
    // Travis CI.
    "travis_fold:",
    "travis_time:",
    "Worker information",
    "hostname: ",
    "version: v",
    "instance: ",
    "startup: ",
    "Build system information",
    "Build language: ",
    "Build group: ",
    "Build dist: ",
    "Build id: ",
    "Runtime kernel version: ",
    "travis-build version: ",
    "Build image provisioning date and time",
    "Operating System Details",
    "Systemd Version",
    "Cookbooks Version",
    "This job is running on container-based infrastructure",
    "If you require sudo, add 'sudo: required'",
    "sudo: unable to resolve host",
    "Setting environment variables from ",
    "Updating gpg keys",
    "Disabling Gradle daemon",
    "Using worker: ",
    "Installing an SSH key",
    "Fingerprint: ",
    "Done. Your build exited with",
    // GitLab Runner.
    "Running with gitlab-runner ",
    "Preparing the \"",
    "Using Docker executor with image",
    "Using docker image ",
    "Pulling docker image ",
    "Preparing environment",
    "Running on runner-",
    "Getting source from Git repository",
    "Fetching changes with git depth",
    "Reinitialized existing Git repository",
    "Initialized empty Git repository",
    "Created fresh repository.",
    "Skipping Git submodules setup",
    "Executing \"step_script\" stage of the job script",
    "Cleaning up project directory and file based variables",
    "Cleaning up file based variables",
    "Uploading artifacts for failed job",
    // CircleCI.
    "Build-agent version ",
    "System information:",
    "Server Version: ",
    "Storage Driver: ",
    "Backing Filesystem: ",
    "Cgroup Driver: ",
    "Cgroup Version: ",
    "Kernel Version: ",
    "OSType: ",
    "Architecture: ",
    "Starting container ",
    "Warning: No authentication provided, using CircleCI credentials",
    "image cache not found on this host",
    // Azure Pipelines.
    "Agent name:",
    "Agent machine name:",
    "Current agent version:",
    "Agent running as:",
    "Prepare build directory.",
    "Set build variables.",
    "Download all required tasks.",
    "Downloading task: ",
    "Checking job knob settings.",
    "Finished checking job knob settings.",
    "Start tracking orphan processes.",
    // Jenkins.
    "Started by ",
    "Running in Durability level",
    "[Pipeline] ",
    "Building in workspace ",
    "The recommended git tool is",
    "using credential ",
    "Cloning the remote Git repository",
    "Fetching upstream changes from",
    "Checking out Revision ",
    "Commit message: ",
    "First time build. Skipping changelog.",
    " > git ",
];

/// Phrases anywhere in a line: GitHub's deprecation notices on every run of an old workflow.
const CONTAINS: &[&str] = &[
    "actions are deprecated",
    "command is deprecated and will be disabled soon",
    "use a deprecated Node.js version",
    "Please update the following actions to use Node.js",
    "is deprecated and will be removed. Please use",
    "This job is running on container-based infrastructure, which does not allow use of 'sudo'",
];

static PREFIX_AC: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .start_kind(StartKind::Anchored)
        .build(PREFIXES)
        .expect("static boilerplate automaton")
});

static CONTAINS_AC: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(CONTAINS).expect("static boilerplate automaton"));

/// Whether `text` (a cleaned line) is CI-runner boilerplate.
pub fn is_boilerplate(text: &str) -> bool {
    let t = text.trim_start();
    PREFIX_AC.find(Input::new(t).anchored(Anchored::Yes)).is_some() || CONTAINS_AC.is_match(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_preambles_are_boilerplate_failures_are_not() {
        assert!(is_boilerplate(
            "This job is running on container-based infrastructure, which does not allow use of 'sudo', setuid, and setgid executables."
        ));
        assert!(is_boilerplate("  GITHUB_TOKEN Permissions"));
        assert!(is_boilerplate(
            "Node.js 16 actions are deprecated. Please update the following actions to use Node.js 20: actions/checkout@v3."
        ));
        assert!(is_boilerplate("travis_fold:start:install"));
        assert!(!is_boilerplate("npm error code E404"));
        assert!(!is_boilerplate("Error: Process completed with exit code 1."));
    }
}
