//! The Kubernetes client every ci-healer process builds: the usual credentials (`KUBECONFIG`, the
//! kubeconfig file, or the in-cluster ServiceAccount, as [`kube::Config::infer`] finds them), plus a
//! `User-Agent` header that names the component.
//!
//! The API server records that header in every audit event (`userAgent`), so an audit log tells the
//! controller's requests apart from the receiver's, the dashboard's, or a test's. The chart's RBAC
//! check reads it (`tests/rbac_audit.rs`): every verb the chart grants a component is one that
//! component was seen using.

use http::{HeaderValue, header::USER_AGENT};
use kube::{Client, Config};

/// A ci-healer process that talks to the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `healer controller`: the HealingRun, HealingAttempt and HealingCommand controllers.
    Controller,
    /// `healer webhook`: GitHub's signed deliveries in, HealingRuns and HealingCommands out.
    Webhook,
    /// `healer dashboard`: the read-only web view.
    Dashboard,
    /// `healer host-runner`: the development stand-in for a kubelet (never installed by the chart).
    HostRunner,
}

impl Component {
    /// The component's name in the `User-Agent`: `controller`, `webhook`, `dashboard`, `host-runner`.
    pub fn name(self) -> &'static str {
        match self {
            Component::Controller => "controller",
            Component::Webhook => "webhook",
            Component::Dashboard => "dashboard",
            Component::HostRunner => "host-runner",
        }
    }

    /// The `User-Agent` value: `ci-healer/<version> (<component>)`, e.g. `ci-healer/0.1.0 (controller)`.
    pub fn user_agent(self) -> String {
        format!("{USER_AGENT_PRODUCT}/{} ({})", env!("CARGO_PKG_VERSION"), self.name())
    }
}

/// The product token every ci-healer `User-Agent` starts with.
pub const USER_AGENT_PRODUCT: &str = "ci-healer";

/// A client for `component`, with credentials found as [`kube::Config::infer`] finds them.
///
/// Errors: no kubeconfig and no in-cluster credentials ([`kube::Error::InferConfig`]), or a client
/// that cannot be built from them (TLS set-up).
pub async fn client(component: Component) -> Result<Client, kube::Error> {
    let mut config = Config::infer().await.map_err(kube::Error::InferConfig)?;
    let ua =
        HeaderValue::from_str(&component.user_agent()).expect("a User-Agent of ASCII letters, digits and punctuation");
    config.headers.push((USER_AGENT, ua));
    Client::try_from(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_names_the_component_and_version() {
        assert_eq!(Component::Controller.user_agent(), format!("ci-healer/{} (controller)", env!("CARGO_PKG_VERSION")));
        assert_eq!(
            Component::HostRunner.user_agent(),
            format!("ci-healer/{} (host-runner)", env!("CARGO_PKG_VERSION"))
        );
    }
}
