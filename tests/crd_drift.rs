//! The committed CRD YAML must be what the Rust types generate (`make generate` rewrites it).

#[test]
fn committed_crds_match_the_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/cihealer.dev.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = ci_healer::crd::crds_yaml();
    assert!(
        committed == generated,
        "{} differs from `healer crd`; run `make generate` and commit the result",
        path.display()
    );
}

#[test]
fn crds_carry_the_schema_invariants() {
    let yaml = ci_healer::crd::crds_yaml();
    for needle in [
        "headSha must be 7 to 40 lowercase hex digits",
        "repository must be 'owner/name'",
        "maxAttempts must be between 1 and 10",
        "spec.source is immutable",
        "a HealingAttempt''s spec is immutable",
        "(git check-ref-format)",
        "x-kubernetes-list-map-keys",
        "shortNames:\n    - hrun",
        "shortNames:\n    - hatt",
        "jsonPath: .status.shortSha",
        "subresources:\n      status: {}",
    ] {
        assert!(yaml.contains(needle), "CRD YAML lacks {needle:?}");
    }
}
