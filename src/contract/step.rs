//! The steps of an attempt pod, in the order Kubernetes runs them.

/// One step of an attempt pod. `prepare`, `checkout` and `agent` are init containers (Kubernetes
/// runs them in order and stops at the first failure); `validate` is the one main container, whose
/// termination message carries the [`Verdict`](super::Verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Copies the `healer` binary into the shared bin volume (`healer install-binary`).
    Prepare,
    /// Fetches the failing commit into the workspace (`healer checkout`); sees the git token only.
    Checkout,
    /// Changes the workspace (`healer agent`, or an external agent); sees the LLM key only.
    Agent,
    /// Judges the change and writes the verdict (`healer validate`); sees no secret.
    Validate,
}

impl Step {
    /// Every step, in the order the pod runs them.
    pub const ALL: [Step; 4] = [Step::Prepare, Step::Checkout, Step::Agent, Step::Validate];
    /// The steps that run as init containers, in order.
    pub const INIT: [Step; 3] = [Step::Prepare, Step::Checkout, Step::Agent];

    /// The container name (`prepare`, `checkout`, `agent`, `validate`), also the value of
    /// [`env::STEP`](super::env::STEP) and the name of the step's record in the state dir.
    pub const fn name(self) -> &'static str {
        match self {
            Step::Prepare => "prepare",
            Step::Checkout => "checkout",
            Step::Agent => "agent",
            Step::Validate => "validate",
        }
    }

    /// The `healer` subcommand the step runs by default.
    pub const fn subcommand(self) -> &'static str {
        match self {
            Step::Prepare => "install-binary",
            Step::Checkout => "checkout",
            Step::Agent => "agent",
            Step::Validate => "validate",
        }
    }

    /// The step of a container name; `None` for any other name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The CamelCase reason of a step that failed without writing its own (`CheckoutFailed` …).
    pub const fn failed_reason(self) -> &'static str {
        match self {
            Step::Prepare => "PrepareFailed",
            Step::Checkout => "CheckoutFailed",
            Step::Agent => "AgentFailed",
            Step::Validate => "ValidateFailed",
        }
    }

    /// Whether the step works on the repository (checkout, agent, validate) and so gets the
    /// attempt's source and settings; `prepare` only copies a binary.
    pub const fn works_on_source(self) -> bool {
        !matches!(self, Step::Prepare)
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reasons_are_camel_case() {
        for s in Step::ALL {
            assert_eq!(Step::from_name(s.name()), Some(s));
            let r = s.failed_reason();
            assert!(r.ends_with("Failed") && r.starts_with(|c: char| c.is_ascii_uppercase()), "{r}");
        }
        assert_eq!(Step::from_name("sidecar"), None);
        assert_eq!(Step::INIT.iter().chain([Step::Validate].iter()).copied().collect::<Vec<_>>(), Step::ALL);
        assert!(!Step::Prepare.works_on_source() && Step::Validate.works_on_source());
    }
}
