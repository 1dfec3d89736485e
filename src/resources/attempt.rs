//! The HealingAttempt for attempt `n` of a run, built by a pure function from the run and the config.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use crate::config::{ControllerConfig, ProfileStep};
use crate::contract::Step;
use crate::contract::paths::BINARY;
use crate::crd::{AttemptSource, HealingAttempt, HealingAttemptSpec, HealingRun};
use crate::resources::configmap;
use crate::resources::labels::{self, Component};

/// `<run>-<n>`: deterministic, so a restarted controller finds the attempt it already created.
pub fn attempt_name(run: &str, n: i32) -> String {
    format!("{run}-{n}")
}

/// Build attempt `n` of `run` with the named profile, freezing the profile's images and commands
/// into the spec. Returns `None` when the profile is not configured.
pub fn build_attempt(
    run: &HealingRun,
    n: i32,
    profile_name: &str,
    config: &ControllerConfig,
) -> Option<HealingAttempt> {
    let profile = config.profiles.get(profile_name)?;
    let owner = run.controller_owner_ref(&())?;
    let name = attempt_name(&run.name_any(), n);
    let checkout =
        ProfileStep { command: vec![BINARY.into(), Step::Checkout.subcommand().into()], ..Default::default() };
    Some(HealingAttempt {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: run.namespace(),
            labels: Some(labels::for_child(Component::Attempt, &run.name_any(), Some((&name, n)))),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: HealingAttemptSpec {
            run_name: run.name_any(),
            attempt: n,
            profile: profile_name.into(),
            healer_image: config.healer_image.clone(),
            checkout: checkout.resolve(&config.healer_image),
            agent: profile.agent.resolve(&profile.image),
            validate: profile.validate.resolve(&profile.image),
            active_deadline_seconds: config.attempt.active_deadline_seconds,
            ttl_seconds_after_finished: config.attempt.ttl_seconds_after_finished,
            git_token_secret: config.git_token_secret.clone(),
            llm_api_key_secret: profile.llm_api_key_secret.clone(),
            context_config_map: Some(configmap::context_name(&run.name_any())),
            source: Some(AttemptSource {
                repository: run.spec.source.repository.clone(),
                branch: run.spec.source.branch.clone(),
                head_sha: run.spec.source.head_sha.clone(),
            }),
            settings: Some({
                let mut s = profile.settings.clone();
                if let Some(l) = s.llm.as_mut()
                    && l.price.is_none()
                {
                    l.price = config.llm_prices.get(&l.model).cloned();
                }
                for p in &run.spec.policy.protected_paths {
                    if !s.protected_paths.contains(p) {
                        s.protected_paths.push(p.clone());
                    }
                }
                s
            }),
        },
        status: None,
    })
}
