//! The attempt Job, built by a pure function from its HealingAttempt, and read back by another.
//!
//! Pod layout (steps run in order as init containers, so each starts only when the previous succeeded):
//!
//! | step        | image            | does                                                     | secrets           |
//! |-------------|------------------|----------------------------------------------------------|-------------------|
//! | `prepare`   | healer image     | copies `healer` to `/healer/bin` (like Tekton/Argo)       | none              |
//! | `checkout`  | healer image     | clones the failing commit into `/workspace/src`           | git token (file)  |
//! | `llm-proxy` | healer image     | native sidecar: adds the LLM key to the agent's requests  | LLM key (file)    |
//! | `agent`     | profile / agent  | changes the workspace; calls the LLM through `llm-proxy`  | none              |
//! | `validate`  | profile          | judges the change; verdict → termination message          | none              |
//!
//! `llm-proxy` ([`crate::contract::proxy`]) exists only when the profile has an LLM key Secret. It
//! is a Kubernetes native sidecar: an init container with `restartPolicy: Always`, which the kubelet
//! starts before `agent` (once its TCP startup probe passes), keeps running through `agent` and
//! `validate`, and stops when `validate` has ended; its exit does not count towards the pod's
//! phase. The steps that run the repository's code (`agent`, `validate`) never mount the key.
//!
//! The Job follows the Kubernetes Job API (`batch/v1`): `backoffLimit: 0` (a failed attempt is the
//! run's business, not the Job's), `activeDeadlineSeconds`, `ttlSecondsAfterFinished`,
//! `restartPolicy: Never`, no service-account token, non-root, resource requests and limits. Every
//! container (steps and sidecar) has a read-only root filesystem; the steps write only to their
//! volumes: `workspace` (checkout, state, build caches, `HOME`), `tmp` at `/tmp` (`TMPDIR`) and, for
//! `prepare`, `healer-bin`.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, KeyToPath, Pod, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext, TCPSocketAction,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use super::labels::{self, Component};
use crate::agent::context::Masker;
use crate::contract::paths::{
    BIN_DIR, CONTEXT_DIR, GIT_SECRET_DIR, GIT_TOKEN_FILE_NAME, IMAGE_BINARY, LLM_KEY_FILE_NAME, LLM_SECRET_DIR,
    TERMINATION_LOG, TMP_DIR, WORKSPACE_DIR,
};
use crate::contract::{AgentReport, Source, Step, StepContext, StepFailure, Verdict, VerdictError, env, paths, proxy};
use crate::crd::{HealingAttempt, StepSpec};

/// UID and GID the steps run as.
pub const RUN_AS: i64 = 65532;

/// Name of the Job for an attempt: the attempt's own name (`<run>-<n>`), so a restart finds it again.
pub fn job_name(attempt: &HealingAttempt) -> String {
    attempt.name_any()
}

/// Labels shared by an attempt, its Job and its pod ([`labels::for_child`]).
pub fn attempt_labels(attempt: &HealingAttempt) -> BTreeMap<String, String> {
    labels::for_child(Component::Attempt, &attempt.spec.run_name, Some((&attempt.name_any(), attempt.spec.attempt)))
}

/// What the controller tells `step` of `attempt` through its environment (see [`StepContext`]):
/// every step gets the run, attempt, profile and the pod's paths; the work steps also get the
/// attempt's name, source and settings; `checkout` gets the git token's path and `agent` the
/// `llm-proxy` sidecar's URL, each only when its Secret is configured (no step gets the LLM key's
/// path: only the sidecar mounts it). Pure.
pub fn step_context(attempt: &HealingAttempt, step: Step) -> StepContext {
    let spec = &attempt.spec;
    let mut ctx = StepContext::new(step, &spec.run_name, spec.attempt, &spec.profile);
    if step.works_on_source() {
        ctx.attempt_name = Some(attempt.name_any());
        ctx.source = spec.source.as_ref().map(|s| Source {
            repository: s.repository.clone(),
            branch: s.branch.clone(),
            head_sha: s.head_sha.clone(),
        });
        ctx.git_base_url = spec.settings.as_ref().and_then(|s| s.git_base_url.clone());
        ctx.settings = spec.settings.clone();
    }
    if step == Step::Checkout && spec.git_token_secret.is_some() {
        ctx.git_token_file = Some(paths::git_token_file().into());
    }
    if step == proxy::CLIENT_STEP && spec.llm_api_key_secret.is_some() {
        ctx.llm_proxy_url = Some(proxy::url());
    }
    ctx
}

/// Build the complete Job for `attempt`. Pure; `default_resources` fills steps that set none.
pub fn build_job(attempt: &HealingAttempt, default_resources: &ResourceRequirements) -> Job {
    let spec = &attempt.spec;
    let labels = attempt_labels(attempt);
    let owner = attempt.controller_owner_ref(&()).expect("a HealingAttempt from the API server has a name and uid");

    let mount = |name: &str, path: &str, ro: bool| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: ro.then_some(true),
        ..Default::default()
    };
    let context_mount = spec.context_config_map.as_ref().map(|_| mount("context", CONTEXT_DIR, true));

    // Every container's root filesystem is read-only; what a step writes goes to its volumes: the
    // workspace (the checkout, state, caches and HOME), `tmp` (TMPDIR) and, for `prepare`, the bin
    // volume.
    let step = |step: Step, s: &StepSpec, extra_mounts: Vec<VolumeMount>| {
        let mut env: Vec<EnvVar> = step_context(attempt, step).to_env().into_iter().map(|(k, v)| env(k, &v)).collect();
        env.extend(s.env.iter().map(|e| self::env(&e.name, &e.value)));
        let mut mounts = vec![
            mount("healer-bin", BIN_DIR, step != Step::Prepare),
            mount("workspace", WORKSPACE_DIR, false),
            mount("tmp", TMP_DIR, false),
        ];
        mounts.extend(context_mount.clone());
        mounts.extend(extra_mounts);
        Container {
            name: step.name().into(),
            image: Some(s.image.clone()),
            command: Some(s.command.clone()).filter(|c| !c.is_empty()),
            env: Some(env),
            volume_mounts: Some(mounts),
            working_dir: Some(WORKSPACE_DIR.into()),
            resources: Some(s.resources.clone().unwrap_or_else(|| default_resources.clone())),
            termination_message_path: Some(TERMINATION_LOG.into()),
            termination_message_policy: Some("File".into()),
            security_context: Some(container_security()),
            ..Default::default()
        }
    };

    let small = ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), k8s_openapi::apimachinery::pkg::api::resource::Quantity("50m".into())),
            ("memory".into(), k8s_openapi::apimachinery::pkg::api::resource::Quantity("64Mi".into())),
        ])),
        limits: Some(BTreeMap::from([
            ("cpu".into(), k8s_openapi::apimachinery::pkg::api::resource::Quantity("500m".into())),
            ("memory".into(), k8s_openapi::apimachinery::pkg::api::resource::Quantity("256Mi".into())),
        ])),
        ..Default::default()
    };
    let prepare = StepSpec {
        image: spec.healer_image.clone(),
        command: vec![IMAGE_BINARY.into(), Step::Prepare.subcommand().into(), "--to".into(), paths::BINARY.into()],
        env: vec![],
        resources: Some(small.clone()),
    };

    let git_mounts = spec.git_token_secret.iter().map(|_| mount("git-token", GIT_SECRET_DIR, true)).collect();
    let sidecar = spec.llm_api_key_secret.as_ref().map(|_| {
        let llm = spec.settings.as_ref().and_then(|s| s.llm.clone());
        let provider = llm.as_ref().map(|l| l.provider).unwrap_or_default();
        let upstream = llm.as_ref().map_or_else(|| provider.default_base_url().to_string(), |l| l.effective_base_url());
        let port = i32::from(proxy::PORT);
        Container {
            name: proxy::CONTAINER.into(),
            image: Some(spec.healer_image.clone()),
            command: Some(vec![IMAGE_BINARY.into(), proxy::SUBCOMMAND.into()]),
            env: Some(vec![
                self::env(env::LLM_PROXY_LISTEN, &proxy::listen_addr()),
                self::env(env::LLM_PROXY_UPSTREAM, &upstream),
                self::env(env::LLM_PROXY_PROVIDER, provider.name()),
                self::env(env::LLM_API_KEY_FILE, &paths::llm_key_file()),
            ]),
            // A native sidecar: started before `agent`, running until the main container ends.
            restart_policy: Some("Always".into()),
            ports: Some(vec![ContainerPort {
                name: Some(proxy::PORT_NAME.into()),
                container_port: port,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            startup_probe: Some(Probe {
                tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(port), host: None }),
                period_seconds: Some(1),
                failure_threshold: Some(30),
                ..Default::default()
            }),
            volume_mounts: Some(vec![mount("llm-api-key", LLM_SECRET_DIR, true)]),
            resources: Some(small.clone()),
            termination_message_path: Some(TERMINATION_LOG.into()),
            termination_message_policy: Some("File".into()),
            security_context: Some(container_security()),
            ..Default::default()
        }
    });

    let mut volumes = vec![empty_dir("healer-bin"), empty_dir("workspace"), empty_dir("tmp")];
    if let Some(cm) = &spec.context_config_map {
        volumes.push(Volume {
            name: "context".into(),
            config_map: Some(ConfigMapVolumeSource { name: cm.clone(), optional: Some(false), ..Default::default() }),
            ..Default::default()
        });
    }
    for (vol, secret, file) in [
        ("git-token", &spec.git_token_secret, GIT_TOKEN_FILE_NAME),
        ("llm-api-key", &spec.llm_api_key_secret, LLM_KEY_FILE_NAME),
    ] {
        if let Some(s) = secret {
            volumes.push(Volume {
                name: vol.into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(s.name.clone()),
                    items: Some(vec![KeyToPath { key: s.key.clone(), path: file.into(), mode: Some(0o400) }]),
                    default_mode: Some(0o400),
                    optional: Some(false),
                }),
                ..Default::default()
            });
        }
    }

    let pod_spec = PodSpec {
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            fs_group: Some(RUN_AS),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
            ..Default::default()
        }),
        init_containers: Some(
            [
                Some(step(Step::Prepare, &prepare, vec![])),
                Some(step(Step::Checkout, &spec.checkout, git_mounts)),
                sidecar,
                Some(step(Step::Agent, &spec.agent, vec![])),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
        containers: vec![step(Step::Validate, &spec.validate, vec![])],
        volumes: Some(volumes),
        ..Default::default()
    };

    Job {
        metadata: ObjectMeta {
            name: Some(job_name(attempt)),
            namespace: attempt.namespace(),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(spec.active_deadline_seconds),
            ttl_seconds_after_finished: Some(spec.ttl_seconds_after_finished),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(pod_spec),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

fn empty_dir(name: &str) -> Volume {
    Volume { name: name.into(), empty_dir: Some(Default::default()), ..Default::default() }
}

fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
        ..Default::default()
    }
}

/// An attempt Job as observed through its Job and pods.
#[derive(Debug, Clone, PartialEq)]
pub enum JobObservation {
    /// No Job exists yet.
    Missing,
    /// The Job exists; no pod is running yet.
    Pending,
    /// A pod is running steps.
    Running {
        /// When the pod started.
        started: Option<Time>,
    },
    /// The validate step wrote a verdict.
    Judged {
        /// The verdict from the validate step's termination message.
        verdict: Verdict,
        /// The agent's diagnosis, from its [`AgentReport`].
        diagnosis: Option<String>,
        /// When the pod started.
        started: Option<Time>,
        /// When the validate step finished.
        finished: Option<Time>,
    },
    /// The attempt ended without a usable verdict.
    Failed {
        /// The failed step's reason (`CommitNotFound`, `<Step>Failed`), Kubernetes' Job condition
        /// reason (`DeadlineExceeded`), or the controller's (`VerdictMissing`, `VerdictMalformed`,
        /// `PodFailed`, `JobFailed`).
        reason: String,
        /// For people.
        message: String,
        /// The agent's diagnosis, if it got that far.
        diagnosis: Option<String>,
        /// When the pod started.
        started: Option<Time>,
        /// When it ended.
        finished: Option<Time>,
    },
}

/// Read an attempt's outcome from its Job and the pods labelled with the attempt. Pure.
///
/// The verdict comes only from the validate container's termination message; a step that failed
/// earlier is reported with its own reason (`<Step>Failed`, or the reason the step wrote); a Job that
/// Kubernetes failed (`DeadlineExceeded`, `BackoffLimitExceeded`) or completed without a verdict gives
/// that reason (`VerdictMissing`).
///
/// Every text a pod wrote (the verdict's summary, the diagnosis, a step's failure message) is masked
/// here with the known token formats ([`Masker`]) before the controller stores, logs or reports it:
/// the steps mask their own output, but a pod runs the repository's code and is not trusted to.
pub fn observe(job: Option<&Job>, pods: &[Pod]) -> JobObservation {
    let m = Masker::default();
    match observe_unmasked(job, pods) {
        JobObservation::Judged { mut verdict, diagnosis, started, finished } => {
            verdict.summary = m.mask(&verdict.summary);
            JobObservation::Judged { verdict, diagnosis: diagnosis.map(|d| m.mask(&d)), started, finished }
        }
        JobObservation::Failed { reason, message, diagnosis, started, finished } => JobObservation::Failed {
            reason,
            message: m.mask(&message),
            diagnosis: diagnosis.map(|d| m.mask(&d)),
            started,
            finished,
        },
        other => other,
    }
}

fn observe_unmasked(job: Option<&Job>, pods: &[Pod]) -> JobObservation {
    let Some(job) = job else {
        return JobObservation::Missing;
    };
    let pod = pods.iter().max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    let status = pod.and_then(|p| p.status.as_ref());
    let started =
        status.and_then(|s| s.start_time.clone()).or_else(|| job.status.as_ref().and_then(|s| s.start_time.clone()));
    let job_finished = job.status.as_ref().and_then(|s| s.completion_time.clone());

    let diagnosis = status
        .and_then(|s| s.init_container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == Step::Agent.name()))
        .and_then(|c| AgentReport::diagnosis_from(c.state.as_ref()?.terminated.as_ref()?.message.as_deref()));

    // 1. The validate step ended: its termination message is the verdict, or the attempt failed.
    if let Some(term) = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == Step::Validate.name()))
        .and_then(|c| c.state.as_ref()?.terminated.as_ref())
    {
        let finished = term.finished_at.clone().or(job_finished);
        return match Verdict::from_termination_message(term.message.as_deref()) {
            Ok(verdict) => JobObservation::Judged { verdict, diagnosis, started, finished },
            Err(VerdictError::Missing) => JobObservation::Failed {
                reason: "VerdictMissing".into(),
                message: format!("the validate step exited with code {} without writing a verdict", term.exit_code),
                diagnosis,
                started,
                finished,
            },
            Err(VerdictError::Malformed(e)) => JobObservation::Failed {
                reason: "VerdictMalformed".into(),
                message: format!("the validate step's termination message is not a verdict: {e}"),
                diagnosis,
                started,
                finished,
            },
        };
    }

    // 2. An earlier step failed: report it with the step's own reason when it wrote one. The
    //    `llm-proxy` sidecar is blamed only when no step failed (the kubelet stops it, with a
    //    signal, whenever the pod ends).
    if let Some((name, term)) = status.and_then(|s| s.init_container_statuses.as_ref()).and_then(|cs| {
        let failed = |c: &k8s_openapi::api::core::v1::ContainerStatus| {
            let t = c.state.as_ref()?.terminated.as_ref()?;
            (t.exit_code != 0).then(|| (c.name.clone(), t.clone()))
        };
        cs.iter()
            .filter(|c| c.name != proxy::CONTAINER)
            .find_map(failed)
            .or_else(|| cs.iter().filter(|c| c.name == proxy::CONTAINER).find_map(failed))
    }) {
        let (reason, message) =
            match StepFailure::from_termination_message(term.message.as_deref(), &step_reason(&name)) {
                Some(f) => (f.reason, f.message),
                None => (step_reason(&name), format!("step {name} exited with code {}", term.exit_code)),
            };
        return JobObservation::Failed {
            reason,
            message,
            diagnosis,
            started,
            finished: term.finished_at.or(job_finished),
        };
    }

    // 3. Kubernetes ended the Job (deadline, backoff) or it completed without a verdict.
    if let Some(conds) = job.status.as_ref().and_then(|s| s.conditions.as_ref()) {
        if let Some(c) = conds.iter().find(|c| c.type_ == "Failed" && c.status == "True") {
            return JobObservation::Failed {
                reason: c.reason.clone().unwrap_or_else(|| "JobFailed".into()),
                message: c.message.clone().unwrap_or_else(|| "the Job failed".into()),
                diagnosis,
                started,
                finished: c.last_transition_time.clone().or(job_finished),
            };
        }
        if conds.iter().any(|c| c.type_ == "Complete" && c.status == "True") {
            return JobObservation::Failed {
                reason: "VerdictMissing".into(),
                message: "the Job completed but no validate step status was found".into(),
                diagnosis,
                started,
                finished: job_finished,
            };
        }
    }
    if status.and_then(|s| s.phase.as_deref()) == Some("Failed") {
        return JobObservation::Failed {
            reason: "PodFailed".into(),
            message: status.and_then(|s| s.message.clone()).unwrap_or_else(|| "the attempt pod failed".into()),
            diagnosis,
            started,
            finished: job_finished,
        };
    }
    match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => JobObservation::Running { started },
        _ => JobObservation::Pending,
    }
}

/// The reason of a step that failed without writing one: [`Step::failed_reason`], or `<Name>Failed`
/// in CamelCase for a container that is not one of the four steps (`llm-proxy`: `LlmProxyFailed`).
fn step_reason(step: &str) -> String {
    if let Some(s) = Step::from_name(step) {
        return s.failed_reason().into();
    }
    let cap: String = step
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        })
        .collect();
    format!("{cap}Failed")
}

/// The pods of an attempt are found by this label selector.
pub fn pod_selector(attempt_name: &str) -> String {
    labels::attempt_selector(attempt_name)
}

/// True when `job` is a Job this attempt owns (guards against a same-named foreign Job).
pub fn is_owned_by(job: &Job, attempt: &HealingAttempt) -> bool {
    let uid = attempt.meta().uid.as_deref();
    job.owner_references().iter().any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, PodStatus,
    };

    use super::*;
    use crate::contract::{Outcome, Verdict};
    use crate::crd::{HealingAttemptSpec, SecretKeyRef};

    fn attempt() -> HealingAttempt {
        let step =
            |image: &str, cmd: &str| StepSpec { image: image.into(), command: vec![cmd.into()], ..Default::default() };
        let mut a = HealingAttempt::new(
            "r-2",
            HealingAttemptSpec {
                run_name: "r".into(),
                attempt: 2,
                profile: "rust".into(),
                healer_image: "healer:1".into(),
                checkout: step("healer:1", "checkout"),
                agent: step("rust:1.95", "agent"),
                validate: step("rust:1.95", "validate"),
                active_deadline_seconds: 900,
                ttl_seconds_after_finished: 60,
                git_token_secret: Some(SecretKeyRef { name: "gh".into(), key: "token".into() }),
                llm_api_key_secret: Some(SecretKeyRef { name: "llm".into(), key: "key".into() }),
                context_config_map: Some("r-context".into()),
                source: None,
                settings: None,
            },
        );
        a.metadata.namespace = Some("ns".into());
        a.metadata.uid = Some("uid-2".into());
        a
    }

    fn mounts(c: &Container) -> Vec<String> {
        c.volume_mounts.iter().flatten().map(|m| m.name.clone()).collect()
    }

    #[test]
    fn job_is_complete_safe_and_gives_each_step_only_its_secret() {
        let defaults = crate::config::AttemptDefaults::default().resources;
        let job = build_job(&attempt(), &defaults);
        assert_eq!(job.metadata.name.as_deref(), Some("r-2"));
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("HealingAttempt", "uid-2", Some(true))
        );
        let l = job.metadata.labels.as_ref().unwrap();
        assert_eq!(l[labels::RUN], "r");
        assert_eq!(l[labels::ATTEMPT], "r-2");
        assert_eq!(l[labels::ATTEMPT_NUMBER], "2");
        assert_eq!(l[labels::COMPONENT], "attempt");

        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(900));
        assert_eq!(spec.ttl_seconds_after_finished, Some(60));
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.security_context.as_ref().unwrap().run_as_non_root, Some(true));

        let inits = pod.init_containers.as_ref().unwrap();
        let names: Vec<_> = inits.iter().chain(&pod.containers).map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["prepare", "checkout", "llm-proxy", "agent", "validate"]);
        for c in inits.iter().chain(&pod.containers) {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
            if c.name != proxy::CONTAINER {
                // Writable volumes where a step writes: the workspace (HOME below it) and TMPDIR.
                assert!(mounts(c).contains(&"workspace".to_string()) && mounts(c).contains(&"tmp".to_string()));
                let env: BTreeMap<_, _> =
                    c.env.iter().flatten().map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or(""))).collect();
                assert_eq!((env["HOME"], env["TMPDIR"]), (paths::HOME_DIR, TMP_DIR), "{}", c.name);
            }
            assert_eq!(sc.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_string()][..]));
            assert!(c.resources.as_ref().unwrap().limits.is_some(), "{} has limits", c.name);
            let secret_mounts: Vec<_> =
                mounts(c).into_iter().filter(|m| m == "git-token" || m == "llm-api-key").collect();
            let want: &[&str] = match c.name.as_str() {
                "checkout" => &["git-token"],
                "llm-proxy" => &["llm-api-key"],
                _ => &[],
            };
            assert_eq!(secret_mounts, want, "{} sees only its own secret", c.name);
            let key_vars: Vec<_> = c.env.iter().flatten().filter(|e| e.name == env::LLM_API_KEY_FILE).collect();
            assert_eq!(key_vars.len(), usize::from(c.name == proxy::CONTAINER), "{} knows the key file", c.name);
        }
        // The proxy is a native sidecar, started (probe) before the agent, on the loopback port.
        let proxy = &inits[2];
        assert_eq!(proxy.restart_policy.as_deref(), Some("Always"));
        assert_eq!(proxy.ports.as_ref().unwrap()[0].container_port, i32::from(proxy::PORT));
        let probe = proxy.startup_probe.as_ref().unwrap().tcp_socket.as_ref().unwrap();
        assert_eq!(probe.port, IntOrString::Int(i32::from(proxy::PORT)));
        assert!(
            inits
                .iter()
                .chain(&pod.containers)
                .filter(|c| c.name != proxy::CONTAINER)
                .all(|c| c.restart_policy.is_none())
        );
        let proxy_env: BTreeMap<_, _> =
            proxy.env.iter().flatten().map(|e| (e.name.as_str(), e.value.as_deref().unwrap_or(""))).collect();
        assert_eq!(proxy_env[env::LLM_PROXY_UPSTREAM], "https://api.anthropic.com");
        assert_eq!(proxy_env[env::LLM_PROXY_PROVIDER], "anthropic");
        assert_eq!(proxy_env[env::LLM_API_KEY_FILE], paths::llm_key_file());
        // Without a key Secret there is no sidecar.
        let mut no_key = attempt();
        no_key.spec.llm_api_key_secret = None;
        let j = build_job(&no_key, &defaults);
        let p = j.spec.unwrap().template.spec.unwrap();
        let names: Vec<_> = p.init_containers.unwrap().iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, ["prepare", "checkout", "agent"]);
        assert_eq!(pod.containers[0].image.as_deref(), Some("rust:1.95"));
        assert_eq!(inits[0].image.as_deref(), Some("healer:1"));
    }

    /// What the builder puts in each container's environment is what that step reads back
    /// through the contract: the same [`StepContext`], so no variable can drift on one side.
    #[test]
    fn each_step_reads_back_the_context_the_builder_wrote() {
        let mut a = attempt();
        a.spec.source = Some(crate::crd::AttemptSource {
            repository: "o/r".into(),
            branch: "main".into(),
            head_sha: "3484a3f".into(),
        });
        a.spec.settings =
            Some(crate::contract::AgentSettings { git_base_url: Some("file:///remotes".into()), ..Default::default() });
        let job = build_job(&a, &Default::default());
        let pod = job.spec.unwrap().template.spec.unwrap();
        for c in pod.init_containers.unwrap().iter().chain(&pod.containers).filter(|c| c.name != proxy::CONTAINER) {
            let step = Step::from_name(&c.name).unwrap();
            let env: BTreeMap<String, String> =
                c.env.iter().flatten().map(|e| (e.name.clone(), e.value.clone().unwrap_or_default())).collect();
            let read = StepContext::from_lookup(step, |k| env.get(k).cloned()).unwrap();
            assert_eq!(read, step_context(&a, step), "{}", c.name);
            assert_eq!(read.git_token_file.is_some(), step == Step::Checkout, "{}", c.name);
            assert_eq!(read.llm_proxy_url.is_some(), step == Step::Agent, "{}", c.name);
            assert_eq!(read.settings.is_some(), step != Step::Prepare, "{}", c.name);
        }
    }

    fn job_with(conds: &[(&str, &str)]) -> Job {
        let mut j = build_job(&attempt(), &Default::default());
        j.status = Some(JobStatus {
            conditions: Some(
                conds
                    .iter()
                    .map(|(t, r)| JobCondition {
                        type_: t.to_string(),
                        status: "True".into(),
                        reason: Some(r.to_string()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        j
    }

    fn terminated(name: &str, code: i32, msg: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    message: Some(msg.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(phase: &str, inits: Vec<ContainerStatus>, mains: Vec<ContainerStatus>) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                init_container_statuses: Some(inits),
                container_statuses: Some(mains),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn passed() -> String {
        Verdict {
            outcome: Outcome::Passed,
            reason: "ValidationPassed".into(),
            summary: "ok".into(),
            diffstat: None,
            tokens: None,
            durations: None,
            patch_sha256: None,
            protected_paths: vec![],
        }
        .to_termination_message()
    }

    /// A pod runs the repository's code: whatever it wrote is masked before the controller keeps it.
    #[test]
    fn what_a_pod_wrote_is_masked_before_the_controller_keeps_it() {
        let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
        let verdict = Verdict {
            summary: format!("passed; GITHUB_TOKEN={token}"),
            ..Verdict::new(Outcome::Passed, "ValidationPassed", "")
        };
        let report = terminated("agent", 0, &format!(r#"{{"diagnosis":"found {token} in .env"}}"#));
        let p = pod("Succeeded", vec![report], vec![terminated("validate", 0, &verdict.to_termination_message())]);
        match observe(Some(&job_with(&[])), &[p]) {
            JobObservation::Judged { verdict, diagnosis, .. } => {
                assert!(!verdict.summary.contains(token) && verdict.summary.contains("passed"), "{}", verdict.summary);
                let d = diagnosis.unwrap();
                assert!(!d.contains(token) && d.contains(".env"), "{d}");
            }
            o => panic!("{o:?}"),
        }
        let failed = terminated("checkout", 128, &format!(r#"{{"reason":"AccessDenied","message":"token {token}"}}"#));
        match observe(Some(&job_with(&[])), &[pod("Failed", vec![failed], vec![])]) {
            JobObservation::Failed { reason, message, .. } => {
                assert_eq!(reason, "AccessDenied");
                assert!(!message.contains(token), "{message}");
            }
            o => panic!("{o:?}"),
        }
    }

    /// Reads every way an attempt pod can end back into one observation.
    #[test]
    fn observe_table() {
        let ok = |n: &str| terminated(n, 0, "");
        let running_validate = ContainerStatus {
            name: "validate".into(),
            state: Some(ContainerState { running: Some(ContainerStateRunning::default()), ..Default::default() }),
            ..Default::default()
        };
        let agent_report = terminated("agent", 0, r#"{"diagnosis":"removed needless return"}"#);
        // (case, Job, pods, Ok(observation kind) or Err((failure reason, message fragment)))
        type Case<'a> = (&'a str, Option<Job>, Vec<Pod>, Result<&'a str, (&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            ("no Job", None, vec![], Ok("Missing")),
            ("Job without a pod", Some(job_with(&[])), vec![], Ok("Pending")),
            (
                "pod running",
                Some(job_with(&[])),
                vec![pod("Running", vec![ok("prepare")], vec![running_validate])],
                Ok("Running"),
            ),
            (
                "validate passed",
                Some(job_with(&[("Complete", "CompletionsReached")])),
                vec![pod(
                    "Succeeded",
                    vec![ok("prepare"), ok("checkout"), agent_report.clone()],
                    vec![terminated("validate", 0, &passed())],
                )],
                Ok("Judged"),
            ),
            (
                "validate left no verdict",
                Some(job_with(&[])),
                vec![pod("Succeeded", vec![agent_report.clone()], vec![terminated("validate", 0, "")])],
                Err(("VerdictMissing", "without writing a verdict")),
            ),
            (
                "the agent's claim is not a verdict",
                Some(job_with(&[])),
                vec![pod("Succeeded", vec![], vec![terminated("validate", 0, "all fixed, trust me")])],
                Err(("VerdictMalformed", "not a verdict")),
            ),
            (
                "checkout wrote its reason",
                Some(job_with(&[("Failed", "BackoffLimitExceeded")])),
                vec![pod(
                    "Failed",
                    vec![ok("prepare"), terminated("checkout", 128, r#"{"reason":"CommitNotFound","message":"gone"}"#)],
                    vec![],
                )],
                Err(("CommitNotFound", "gone")),
            ),
            (
                "agent failed with plain text",
                Some(job_with(&[])),
                vec![pod("Failed", vec![ok("prepare"), ok("checkout"), terminated("agent", 1, "boom")], vec![])],
                Err(("AgentFailed", "boom")),
            ),
            (
                "the agent failed; the stopped proxy sidecar is not blamed",
                Some(job_with(&[])),
                vec![pod(
                    "Failed",
                    vec![
                        ok("prepare"),
                        ok("checkout"),
                        terminated("llm-proxy", 143, ""),
                        terminated("agent", 1, "boom"),
                    ],
                    vec![],
                )],
                Err(("AgentFailed", "boom")),
            ),
            (
                "only the proxy sidecar failed",
                Some(job_with(&[])),
                vec![pod("Failed", vec![ok("prepare"), ok("checkout"), terminated("llm-proxy", 1, "")], vec![])],
                Err(("LlmProxyFailed", "step llm-proxy exited with code 1")),
            ),
            (
                "deadline with no pod status",
                Some(job_with(&[("Failed", "DeadlineExceeded")])),
                vec![],
                Err(("DeadlineExceeded", "")),
            ),
            (
                "complete without a validate status",
                Some(job_with(&[("Complete", "CompletionsReached")])),
                vec![],
                Err(("VerdictMissing", "no validate step status")),
            ),
        ];
        for (name, job, pods, want) in cases {
            let got = observe(job.as_ref(), &pods);
            match (want, &got) {
                (Ok("Missing"), JobObservation::Missing)
                | (Ok("Pending"), JobObservation::Pending)
                | (Ok("Running"), JobObservation::Running { .. }) => {}
                (Ok("Judged"), JobObservation::Judged { verdict, diagnosis, .. }) => {
                    assert_eq!(verdict.outcome, Outcome::Passed, "{name}");
                    assert_eq!(diagnosis.as_deref(), Some("removed needless return"), "{name}");
                }
                (Err((reason, msg)), JobObservation::Failed { reason: r, message, .. }) => {
                    assert_eq!(r, reason, "{name}");
                    assert!(message.contains(msg), "{name}: {message}");
                }
                (want, got) => panic!("{name}: want {want:?}, got {got:?}"),
            }
        }
    }
}
