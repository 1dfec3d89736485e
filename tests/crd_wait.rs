//! The controller waits for its CRDs instead of crashing: against a second, empty control plane it
//! reports not ready and keeps waiting; once the CRDs are applied it starts and reports ready.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::ControllerProcess;

/// A second local control plane on its own ports and folder; stopped on drop.
struct EmptyControlPlane {
    dir: PathBuf,
    kubeconfig: PathBuf,
}

/// The main control plane's port (from the environment `hack/control-plane.sh` reads) plus 5, so
/// helpers that each run their own control plane (ports 10 apart) never share the second one.
fn port_beside(var: &str, default: u16) -> String {
    let base = std::env::var(var).ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(default);
    (base + 5).to_string()
}

impl EmptyControlPlane {
    fn cmd(dir: &PathBuf, verb: &str) -> Command {
        let mut c = Command::new("bash");
        c.arg(support::root().join("hack/control-plane.sh"))
            .arg(verb)
            .env("CIHEALER_CP_DIR", dir)
            .env("CIHEALER_API_PORT", port_beside("CIHEALER_API_PORT", 26443))
            .env("CIHEALER_ETCD_PORT", port_beside("CIHEALER_ETCD_PORT", 23790))
            // The API server and etcd are all this test needs.
            .env("CIHEALER_CP_CONTROLLERS", "0");
        c
    }

    fn start() -> Self {
        let dir = match std::env::var_os("CIHEALER_CP_DIR") {
            Some(d) => PathBuf::from(format!("{}-empty", PathBuf::from(d).display())),
            None => std::env::temp_dir().join("ci-healer-empty-control-plane"),
        };
        let out = Self::cmd(&dir, "start").output().expect("run control-plane.sh");
        assert!(out.status.success(), "second control plane: {}", String::from_utf8_lossy(&out.stderr));
        Self { kubeconfig: dir.join("kubeconfig"), dir }
    }
}

impl Drop for EmptyControlPlane {
    fn drop(&mut self) {
        let _ = Self::cmd(&self.dir, "stop").output();
    }
}

#[tokio::test]
async fn controller_waits_for_its_crds_then_starts() {
    let cp = EmptyControlPlane::start();
    let ctrl = ControllerProcess::start_with_kubeconfig("default", None, &cp.kubeconfig);
    ctrl.wait_log("waiting for the HealingRun and HealingAttempt CRDs", Duration::from_secs(30)).await;
    let readyz = ctrl.http_get("/readyz").await;
    assert!(readyz.starts_with("HTTP/1.1 503"), "not ready while waiting: {readyz}");
    assert!(ctrl.http_get("/healthz").await.starts_with("HTTP/1.1 200"), "alive while waiting");

    // Install the CRDs on that control plane; the controller notices and starts.
    let kc = kube::config::Kubeconfig::read_from(&cp.kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    support::install_crds(&client).await;
    ctrl.wait_log("controllers started", Duration::from_secs(30)).await;
    assert!(ctrl.http_get("/readyz").await.starts_with("HTTP/1.1 200"));
    assert!(!ctrl.logs().contains("panicked"), "{}", ctrl.logs());
}
