//! The CRDs apply to the real API server without a single warning: no unknown `format`
//! (`uint32`, `uint64`, `uint`: the API conventions allow no unsigned integers), no `maximum` that
//! does not fit its format, nothing the API server would print as `Warning:`.

mod support;

use ci_healer::crd::{HealingAttempt, HealingCommand, HealingRun};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{CustomResourceExt, ResourceExt};

/// Server-side apply `crd` (a dry run when `dry_run`); returns the HTTP status and the `Warning`
/// headers of the response.
async fn apply(
    client: &kube::Client,
    crd: &CustomResourceDefinition,
    dry_run: bool,
) -> (http::StatusCode, Vec<String>) {
    let mut pp = PatchParams::apply("ci-healer-tests").force();
    pp.dry_run = dry_run;
    let req = kube::core::Request::new("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        .patch(&crd.name_any(), &pp, &Patch::Apply(crd))
        .expect("build the apply request");
    let resp = client.send(req.map(kube::client::Body::from)).await.expect("apply the CRD");
    let warnings = resp
        .headers()
        .get_all(http::header::WARNING)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (resp.status(), warnings)
}

#[tokio::test]
async fn server_side_apply_of_the_crds_returns_no_warning_header() {
    let client = support::client().await;
    for crd in [HealingRun::crd(), HealingAttempt::crd(), HealingCommand::crd()] {
        let name = crd.name_any();
        let (status, warnings) = apply(&client, &crd, false).await;
        assert!(status.is_success(), "applying {name} answered {status}");
        assert!(warnings.is_empty(), "applying {name} warned: {warnings:#?}");
    }

    // The check can fail: the same CRD under another group, with one unsigned field as `schemars`
    // writes it for a `u32`, draws the API server's warning.
    let mut probe = serde_json::to_value(HealingRun::crd()).unwrap();
    probe["metadata"]["name"] = "healingruns.warning-probe.cihealer.dev".into();
    probe["spec"]["group"] = "warning-probe.cihealer.dev".into();
    probe["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["probe"] =
        serde_json::json!({"type": "integer", "format": "uint32", "minimum": 0});
    let probe: CustomResourceDefinition = serde_json::from_value(probe).unwrap();
    let (status, warnings) = apply(&client, &probe, true).await;
    assert!(status.is_success(), "{status}");
    assert!(warnings.iter().any(|w| w.contains("unrecognized format") && w.contains("uint32")), "{warnings:?}");
}

#[tokio::test]
async fn kubectl_apply_server_side_of_the_committed_crds_prints_no_warning() {
    let _ = support::client().await;
    let crds = support::root().join("crds/cihealer.dev.yaml");
    let (ok, out) = support::kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=ci-healer-tests",
        "-f",
        crds.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(!out.to_lowercase().contains("warning"), "kubectl printed a warning:\n{out}");
    assert!(out.contains("healingruns.cihealer.dev serverside-applied"), "{out}");
}
