//! The dashboard's cache: kube-runtime reflectors over HealingRuns, HealingAttempts and the
//! controller's ConfigMaps, holding slim projections of each object.
//!
//! Every page is answered from these stores; the API server is only ever watched (one list, then a
//! watch per kind), never asked per page view. The projections keep what the pages show and drop the
//! rest at ingest (`managedFields`, annotations, an attempt's step specs and settings, ConfigMap keys
//! the dashboard does not show), so 10,000 runs with 30,000 attempts stay small (see
//! `benches/dashboard.rs`). Enum-valued fields are read as strings, so a newer controller's phases,
//! reasons and fields (`status.history`, `status.pullRequest`, …) never break an older dashboard:
//! unknown status fields are kept in `extra` and shown as they are.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::{Deserialize, Deserializer};
use tokio::sync::broadcast;

use crate::agent::context::{Masker, bound, strip_control};
use crate::crd::{HealingAttempt, HealingRun};
use crate::resources::labels::{MANAGED_SELECTOR, RUN as LABEL_RUN};

/// At most this many bytes of a run's excerpt are kept (masked, head and tail).
pub const MAX_EXCERPT_BYTES: usize = 16 * 1024;
/// At most this many bytes of a patch are kept for rendering; a larger one is shown cut, with the
/// `kubectl` command that prints it whole.
pub const MAX_PATCH_BYTES: usize = 256 * 1024;

/// Implements [`kube::Resource`] for a projection by delegating to the full type, so the group,
/// version, kind and plural are written once (by the CRD or k8s-openapi).
macro_rules! projection_of {
    ($view:ty, $full:ty) => {
        impl Resource for $view {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;
            fn kind(dt: &()) -> Cow<'_, str> {
                <$full as Resource>::kind(dt)
            }
            fn group(dt: &()) -> Cow<'_, str> {
                <$full as Resource>::group(dt)
            }
            fn version(dt: &()) -> Cow<'_, str> {
                <$full as Resource>::version(dt)
            }
            fn plural(dt: &()) -> Cow<'_, str> {
                <$full as Resource>::plural(dt)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// A HealingRun as the dashboard keeps it.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RunDoc {
    /// Name, namespace, creationTimestamp, labels (managedFields and annotations dropped).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `spec.source`, `spec.policy`, `spec.action` (the inline excerpt is not kept).
    #[serde(default)]
    pub spec: RunSpecDoc,
    /// The status, if the controller wrote one.
    #[serde(default)]
    pub status: Option<RunStatusDoc>,
}
projection_of!(RunDoc, HealingRun);

/// `HealingRun.spec`, without `failure` (the raw excerpt is shown masked from the context ConfigMap).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RunSpecDoc {
    /// Where the failure came from.
    pub source: SourceDoc,
    /// What ci-healer may do.
    pub policy: PolicyDoc,
    /// What a person asked for (`abort`, …), as written.
    pub action: Option<String>,
}

/// `HealingRun.spec.source`, in GitHub's terms.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SourceDoc {
    /// `github`, …
    pub provider: Option<String>,
    /// `owner/name`.
    pub repository: String,
    /// The branch the failing commit was built on.
    pub branch: String,
    /// The failing commit.
    pub head_sha: String,
    /// The webhook event kind (`workflow_job`, `check_run`, …).
    pub event: Option<String>,
    /// `X-GitHub-Delivery`.
    pub delivery_id: Option<String>,
    /// `workflow_job.workflow_name`.
    pub workflow_name: Option<String>,
    /// `workflow_job.name`.
    pub job_name: Option<String>,
    /// The workflow run id.
    pub run_id: Option<i64>,
    /// The workflow run attempt (from 1).
    pub run_attempt: Option<i64>,
    /// The job id (also its check run id).
    pub job_id: Option<i64>,
    /// `workflow_job.html_url`.
    pub url: Option<String>,
    /// `sender.login`.
    pub sender: Option<String>,
    /// The steps whose conclusion was `failure`.
    pub failed_steps: Vec<String>,
}

/// `HealingRun.spec.policy`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyDoc {
    /// 1 to 10 (the API defaults it to 3).
    pub max_attempts: Option<i64>,
    /// `propose` or `pull-request`.
    pub mode: Option<String>,
    /// `auto` or a profile name.
    pub agent: Option<String>,
}

/// `HealingRun.status`. Phases are strings so that phases a newer controller adds are shown, not
/// rejected; fields this dashboard does not know yet land in [`RunStatusDoc::extra`].
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct RunStatusDoc {
    /// `Queued`, `Running`, `Fixed`, `Escalated`, `Aborted`, or a phase added later.
    pub phase: Option<String>,
    /// The generation this status was computed from.
    pub observed_generation: Option<i64>,
    /// `metav1.Condition`s keyed by type.
    pub conditions: Vec<Condition>,
    /// First 7 characters of the head SHA.
    pub short_sha: Option<String>,
    /// Triage's class.
    pub failure_class: Option<String>,
    /// The agent profile.
    pub agent: Option<String>,
    /// The dedup hash.
    pub error_hash: Option<String>,
    /// Attempts started.
    pub attempts: i64,
    /// The attempt running or run last.
    pub current_attempt: Option<i64>,
    /// The kept patch.
    pub patch: Option<PatchDoc>,
    /// Why people must look.
    pub escalation_reason: Option<String>,
    /// The run this one waits behind.
    pub duplicate_of: Option<String>,
    /// When the first attempt started.
    pub start_time: Option<Time>,
    /// When the run reached a final phase.
    pub completion_time: Option<Time>,
    /// The pull request that carries the fix (`{number, url, headRef, state}`), once a controller
    /// delivers fixes as PRs.
    pub pull_request: Option<serde_json::Value>,
    /// People's actions on the run (`[{action, actor, source, time, result, …}]`), once a controller
    /// records them.
    pub history: Vec<serde_json::Value>,
    /// Every other status field, as written (tokens, cost, …), shown as it is.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `HealingRun.status.patch`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PatchDoc {
    /// The attempt whose validation passed.
    pub attempt: String,
    /// The ConfigMap holding `patch.diff`.
    pub config_map: Option<String>,
    /// Size of the change.
    pub diffstat: Option<DiffstatDoc>,
}

/// Files and lines changed.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct DiffstatDoc {
    /// Files changed.
    pub files: i64,
    /// Lines added.
    pub insertions: i64,
    /// Lines removed.
    pub deletions: i64,
}

/// A HealingAttempt as the dashboard keeps it: its number and profile, and its status.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct AttemptDoc {
    /// Name, namespace, creationTimestamp.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The run, the number and the profile (step specs and settings are not kept).
    #[serde(default)]
    pub spec: AttemptSpecDoc,
    /// The status, if any.
    #[serde(default)]
    pub status: Option<AttemptStatusDoc>,
}
projection_of!(AttemptDoc, HealingAttempt);

/// The part of `HealingAttempt.spec` the pages show.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AttemptSpecDoc {
    /// The HealingRun it belongs to.
    pub run_name: String,
    /// 1-based number.
    pub attempt: i64,
    /// The agent profile.
    pub profile: String,
}

/// `HealingAttempt.status`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AttemptStatusDoc {
    /// `Pending`, `Running`, `Succeeded`, `Failed`, or a phase added later.
    pub phase: Option<String>,
    /// `JobCreated`, `Completed`, … (emptied as the attempt enters the cache, see [`slim_attempt`]).
    pub conditions: Vec<Condition>,
    /// The `Completed` condition's message (why an attempt without a verdict failed), filled by
    /// [`slim_attempt`].
    #[serde(skip)]
    pub completed_message: Option<String>,
    /// The Job that carries it out.
    pub job_name: Option<String>,
    /// The validation step's verdict.
    pub verdict: Option<VerdictDoc>,
    /// What the agent said it found and changed.
    pub diagnosis: Option<String>,
    /// Why it failed (CamelCase).
    pub failure_reason: Option<String>,
    /// The ConfigMap with its patch.
    pub patch_config_map: Option<String>,
    /// When the pod started.
    pub start_time: Option<Time>,
    /// When it finished.
    pub completion_time: Option<Time>,
    /// Every other status field, as written.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The validation step's verdict (see [`crate::verdict::Verdict`]).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct VerdictDoc {
    /// `passed`, `failed`, `refused`, `error`.
    pub outcome: String,
    /// CamelCase reason.
    pub reason: String,
    /// For people.
    pub summary: String,
    /// Size of the change.
    pub diffstat: Option<DiffstatDoc>,
    /// Tokens the LLM agent used.
    pub tokens: Option<TokensDoc>,
    /// Seconds per step.
    pub durations: Option<DurationsDoc>,
}

/// Tokens an LLM agent used.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct TokensDoc {
    /// Input tokens.
    pub input: i64,
    /// Output tokens.
    pub output: i64,
}

/// Seconds each step of an attempt took.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct DurationsDoc {
    /// The checkout step, in seconds.
    pub checkout_seconds: Option<f64>,
    /// The agent step, in seconds.
    pub agent_seconds: Option<f64>,
    /// The validate step, in seconds.
    pub validate_seconds: Option<f64>,
}

/// One of the controller's ConfigMaps (a run's context or an attempt's patch), reduced to what the
/// pages show. The excerpt and the patch are masked (known token formats) and bounded at ingest.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct FilesDoc {
    /// Name, namespace, labels (`cihealer.dev/run`, `cihealer.dev/attempt`).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The keys the dashboard reads; every other key is dropped while parsing.
    #[serde(default)]
    pub data: FilesData,
}
projection_of!(FilesDoc, ConfigMap);

/// The ConfigMap keys the dashboard reads.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct FilesData {
    /// An attempt's patch (`patch.diff`).
    #[serde(rename = "patch.diff")]
    pub patch: Option<String>,
    /// A run's failure excerpt (`excerpt.txt`).
    #[serde(rename = "excerpt.txt")]
    pub excerpt: Option<String>,
    /// Triage's answer (`triage.json`), without its copy of the excerpt.
    #[serde(rename = "triage.json", deserialize_with = "triage_summary")]
    pub triage: Option<TriageSummary>,
}

/// What the run page shows of triage's answer ([`crate::triage::TriageResult`]).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct TriageSummary {
    /// The class.
    pub failure_class: String,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// The profile triage chose.
    pub profile: String,
    /// `agent` or `rerun`.
    pub action: Option<String>,
    /// The failing step, when known.
    pub failing_step: Option<String>,
    /// The routing rule that matched.
    pub matched_rule: Option<String>,
    /// How many structured diagnostics triage found.
    #[serde(deserialize_with = "count")]
    pub diagnostics: usize,
    /// What triage could not read.
    pub unreadable: Vec<String>,
}

fn triage_summary<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TriageSummary>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    // A ConfigMap someone else wrote may hold anything: show what parses, never fail the object.
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

fn count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    Ok(Vec::<serde::de::IgnoredAny>::deserialize(d)?.len())
}

/// What changed, for the live pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A run, one of its attempts or one of its ConfigMaps changed (namespace, run name).
    Run(String, String),
    /// The cache was (re)listed: everything may have changed.
    All,
}

/// The three stores and the change feed the pages read.
#[derive(Clone)]
pub struct Cache {
    /// HealingRuns.
    pub runs: Store<RunDoc>,
    /// HealingAttempts.
    pub attempts: Store<AttemptDoc>,
    /// The controller's ConfigMaps (`app.kubernetes.io/managed-by=ci-healer`).
    pub files: Store<FilesDoc>,
    changes: broadcast::Sender<Change>,
    version: Arc<AtomicU64>,
}

impl Cache {
    /// Subscribe to changes (each live page holds one receiver).
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Announce a change to the live pages (used by the watch tasks, and by tests and benches that
    /// fill the stores themselves).
    pub fn notify(&self, change: Change) {
        self.version.fetch_add(1, Ordering::SeqCst);
        // No receiver (no open page) is not an error.
        let _ = self.changes.send(change);
    }

    /// How many changes the cache has seen: a page records it when it renders, and its event
    /// stream sends a fresh render at once only if the cache moved on in between.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// A cache over stores the caller fills (benches and tests); see [`reflector::store`].
    pub fn from_stores(runs: Store<RunDoc>, attempts: Store<AttemptDoc>, files: Store<FilesDoc>) -> Self {
        Self { runs, attempts, files, changes: broadcast::channel(1024).0, version: Arc::default() }
    }

    /// True once every store has its first complete list.
    pub async fn wait_until_ready(&self) {
        let _ = self.runs.wait_until_ready().await;
        let _ = self.attempts.wait_until_ready().await;
        let _ = self.files.wait_until_ready().await;
    }

    /// Watch the three kinds in `namespace` (all namespaces when `None`) and keep the stores current.
    /// Returns the cache at once and the future that drives the watches (run it on a task; it ends
    /// only when the process does). Watch errors (the API server restarting, RBAC) are logged and
    /// retried with kube-runtime's default backoff.
    pub fn watch(client: Client, namespace: Option<&str>) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (runs, runs_w) = reflector::store::<RunDoc>();
        let (attempts, attempts_w) = reflector::store::<AttemptDoc>();
        let (files, files_w) = reflector::store::<FilesDoc>();
        let cache = Self::from_stores(runs, attempts, files);
        let api = |c: &Client| match namespace {
            Some(ns) => {
                (Api::namespaced(c.clone(), ns), Api::namespaced(c.clone(), ns), Api::namespaced(c.clone(), ns))
            }
            None => (Api::all(c.clone()), Api::all(c.clone()), Api::all(c.clone())),
        };
        let (runs_api, attempts_api, files_api): (Api<RunDoc>, Api<AttemptDoc>, Api<FilesDoc>) = api(&client);
        let owned = watcher::Config::default().labels(MANAGED_SELECTOR);

        let c = cache.clone();
        let runs_task =
            watcher(runs_api, watcher::Config::default()).default_backoff().modify(slim_run).reflect(runs_w).for_each(
                move |ev| {
                    announce(&c, ev, "HealingRun", |r: &RunDoc| r.metadata.name.clone());
                    async {}
                },
            );
        let c = cache.clone();
        let attempts_task = watcher(attempts_api, watcher::Config::default())
            .default_backoff()
            .modify(slim_attempt)
            .reflect(attempts_w)
            .for_each(move |ev| {
                announce(&c, ev, "HealingAttempt", |a: &AttemptDoc| Some(a.spec.run_name.clone()));
                async {}
            });
        let c = cache.clone();
        let files_task =
            watcher(files_api, owned).default_backoff().modify(slim_files).reflect(files_w).for_each(move |ev| {
                announce(&c, ev, "ConfigMap", |f: &FilesDoc| f.metadata.labels.as_ref()?.get(LABEL_RUN).cloned());
                async {}
            });
        let driver = async move {
            tokio::join!(runs_task, attempts_task, files_task);
        };
        (cache, driver)
    }
}

fn announce<K: Resource>(
    cache: &Cache,
    ev: Result<watcher::Event<K>, watcher::Error>,
    kind: &str,
    run_of: impl Fn(&K) -> Option<String>,
) {
    match ev {
        Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => {
            if let (Some(ns), Some(run)) = (o.meta().namespace.clone(), run_of(&o)) {
                cache.notify(Change::Run(ns, run));
            }
        }
        Ok(watcher::Event::InitDone) => cache.notify(Change::All),
        Ok(_) => {}
        Err(e) => tracing::warn!(kind, error = %e, "watch failed; retrying with backoff"),
    }
}

/// Keep the name, namespace and creation time of an object (and, for ConfigMaps, the run label):
/// the store keys by name and namespace, the pages sort by creation time, nothing else is read.
fn slim_meta(m: &mut ObjectMeta) {
    *m = ObjectMeta {
        name: m.name.take(),
        namespace: m.namespace.take(),
        creation_timestamp: m.creation_timestamp.take(),
        deletion_timestamp: m.deletion_timestamp.take(),
        ..Default::default()
    };
}

/// Drop what no page shows from a run as it enters the cache.
pub fn slim_run(r: &mut RunDoc) {
    slim_meta(&mut r.metadata);
}

/// Drop what no page shows from an attempt as it enters the cache: its conditions are folded into
/// [`AttemptStatusDoc::completed_message`] (what the run page shows of them).
pub fn slim_attempt(a: &mut AttemptDoc) {
    slim_meta(&mut a.metadata);
    if let Some(st) = a.status.as_mut() {
        let conditions = std::mem::take(&mut st.conditions);
        st.completed_message = conditions.into_iter().find(|c| c.type_ == "Completed").map(|c| c.message);
    }
}

/// Mask and bound a ConfigMap's excerpt and patch as it enters the cache, so no page can show an
/// unmasked token even if the controller stored one.
pub fn slim_files(f: &mut FilesDoc) {
    let run = f.metadata.labels.as_mut().and_then(|l| l.remove(LABEL_RUN));
    slim_meta(&mut f.metadata);
    f.metadata.labels = run.map(|r| BTreeMap::from([(LABEL_RUN.to_string(), r)]));
    let masker = Masker::default();
    if let Some(e) = f.data.excerpt.as_mut() {
        *e = bound(&masker.mask(&strip_control(e)), MAX_EXCERPT_BYTES);
    }
    if let Some(p) = f.data.patch.as_mut() {
        let mut masked = masker.mask(p);
        if masked.len() > MAX_PATCH_BYTES {
            let mut cut = MAX_PATCH_BYTES;
            while !masked.is_char_boundary(cut) {
                cut -= 1;
            }
            masked.truncate(cut);
        }
        *p = masked;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::verdict::{Outcome, StepDurations, TokenUsage, Verdict};
    use crate::crd::{
        Diffstat, FailureExcerpt, FailureSource, HealingAttemptSpec, HealingAttemptStatus, HealingPolicy,
        HealingRunSpec, HealingRunStatus, PatchRef, RunAction, RunPhase,
    };

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    /// Every field the pages show survives the trip from the controller's types (as the API server
    /// returns them) into the projections. A renamed field in `crd/` fails here.
    #[test]
    fn projections_read_what_the_controller_writes() {
        let mut run = HealingRun::new(
            "r1",
            HealingRunSpec {
                source: FailureSource {
                    repository: "octo/repo".into(),
                    branch: "feature".into(),
                    head_sha: "0123456789abcdef0123456789abcdef01234567".into(),
                    delivery_id: Some("d-1".into()),
                    workflow_name: Some("CI".into()),
                    job_name: Some("lint".into()),
                    run_id: Some(11),
                    run_attempt: Some(2),
                    job_id: Some(33),
                    url: Some("https://github.com/octo/repo/actions/runs/11/job/33".into()),
                    sender: Some("octocat".into()),
                    failed_steps: vec!["Run cargo fmt".into()],
                    ..Default::default()
                },
                failure: Some(FailureExcerpt { excerpt: "raw log".into(), error_type: None }),
                policy: HealingPolicy { max_attempts: 4, ..Default::default() },
                action: Some(RunAction::Abort),
                action_request: None,
            },
        );
        run.metadata.namespace = Some("ns".into());
        run.status = Some(HealingRunStatus {
            phase: Some(RunPhase::Fixed),
            observed_generation: Some(2),
            short_sha: Some("0123456".into()),
            failure_class: Some(crate::triage::FailureClass::RustFmt),
            agent: Some("rust".into()),
            error_hash: Some("00ff00ff00ff00ff".into()),
            attempts: 2,
            current_attempt: Some(2),
            patch: Some(PatchRef {
                attempt: "r1-2".into(),
                config_map: Some("r1-2-patch".into()),
                diffstat: Some(Diffstat { files: 1, insertions: 3, deletions: 2 }),
                protected_paths: vec![],
            }),
            escalation_reason: Some("why".into()),
            duplicate_of: Some("r0".into()),
            start_time: Some(t(100)),
            completion_time: Some(t(200)),
            ..Default::default()
        });
        let doc: RunDoc = serde_json::from_value(serde_json::to_value(&run).unwrap()).unwrap();
        let (src, st) = (&doc.spec.source, doc.status.as_ref().unwrap());
        assert_eq!(src.repository, "octo/repo");
        assert_eq!(src.branch, "feature");
        assert_eq!(src.head_sha, run.spec.source.head_sha);
        assert_eq!(src.provider.as_deref(), Some("github"));
        assert_eq!(src.event.as_deref(), Some("workflow_job"));
        assert_eq!(src.delivery_id.as_deref(), Some("d-1"));
        assert_eq!((src.workflow_name.as_deref(), src.job_name.as_deref()), (Some("CI"), Some("lint")));
        assert_eq!((src.run_id, src.run_attempt, src.job_id), (Some(11), Some(2), Some(33)));
        assert_eq!(src.url, run.spec.source.url);
        assert_eq!(src.sender.as_deref(), Some("octocat"));
        assert_eq!(src.failed_steps, ["Run cargo fmt"]);
        assert_eq!(doc.spec.policy.max_attempts, Some(4));
        assert_eq!(doc.spec.policy.mode.as_deref(), Some("propose"));
        assert_eq!(doc.spec.policy.agent.as_deref(), Some("auto"));
        assert_eq!(doc.spec.action.as_deref(), Some("abort"));
        assert_eq!(st.phase.as_deref(), Some("Fixed"));
        assert_eq!(st.observed_generation, Some(2));
        assert_eq!(st.short_sha.as_deref(), Some("0123456"));
        assert_eq!((st.failure_class.as_deref(), st.agent.as_deref()), (Some("rust_fmt"), Some("rust")));
        assert_eq!(st.error_hash.as_deref(), Some("00ff00ff00ff00ff"));
        assert_eq!((st.attempts, st.current_attempt), (2, Some(2)));
        let p = st.patch.as_ref().unwrap();
        assert_eq!((p.attempt.as_str(), p.config_map.as_deref()), ("r1-2", Some("r1-2-patch")));
        assert_eq!(p.diffstat, Some(DiffstatDoc { files: 1, insertions: 3, deletions: 2 }));
        assert_eq!(st.escalation_reason.as_deref(), Some("why"));
        assert_eq!(st.duplicate_of.as_deref(), Some("r0"));
        assert_eq!((st.start_time.clone(), st.completion_time.clone()), (Some(t(100)), Some(t(200))));
        // Every status field the controller writes is a named field here: nothing lands in `extra`.
        assert!(st.extra.is_empty(), "status fields the dashboard does not name: {:?}", st.extra.keys());

        let mut attempt = HealingAttempt::new(
            "r1-2",
            HealingAttemptSpec {
                run_name: "r1".into(),
                attempt: 2,
                profile: "rust".into(),
                healer_image: "img".into(),
                checkout: Default::default(),
                agent: Default::default(),
                validate: Default::default(),
                active_deadline_seconds: 600,
                ttl_seconds_after_finished: 60,
                git_token_secret: None,
                llm_api_key_secret: None,
                context_config_map: None,
                source: None,
                settings: None,
            },
        );
        attempt.status = Some(HealingAttemptStatus {
            phase: Some(crate::crd::AttemptPhase::Succeeded),
            job_name: Some("r1-2".into()),
            verdict: Some(Verdict {
                outcome: Outcome::Passed,
                reason: "ValidationPassed".into(),
                summary: "cargo fmt --check passed".into(),
                diffstat: Some(Diffstat { files: 1, insertions: 3, deletions: 2 }),
                tokens: Some(TokenUsage { input: 10, output: 20, ..Default::default() }),
                durations: Some(StepDurations {
                    checkout_seconds: Some(1.5),
                    agent_seconds: Some(2.5),
                    validate_seconds: Some(3.5),
                }),
                patch_sha256: Some("ab".into()),
                protected_paths: vec![],
            }),
            diagnosis: Some("formatted".into()),
            failure_reason: Some("X".into()),
            patch_config_map: Some("r1-2-patch".into()),
            start_time: Some(t(110)),
            completion_time: Some(t(190)),
            ..Default::default()
        });
        let doc: AttemptDoc = serde_json::from_value(serde_json::to_value(&attempt).unwrap()).unwrap();
        assert_eq!((doc.spec.run_name.as_str(), doc.spec.attempt, doc.spec.profile.as_str()), ("r1", 2, "rust"));
        let st = doc.status.unwrap();
        assert_eq!(st.phase.as_deref(), Some("Succeeded"));
        assert_eq!(st.job_name.as_deref(), Some("r1-2"));
        let v = st.verdict.unwrap();
        assert_eq!((v.outcome.as_str(), v.reason.as_str()), ("passed", "ValidationPassed"));
        assert_eq!(v.summary, "cargo fmt --check passed");
        assert_eq!(v.tokens, Some(TokensDoc { input: 10, output: 20 }));
        let d = v.durations.unwrap();
        assert_eq!((d.checkout_seconds, d.agent_seconds, d.validate_seconds), (Some(1.5), Some(2.5), Some(3.5)));
        assert_eq!(st.diagnosis.as_deref(), Some("formatted"));
        assert_eq!(st.failure_reason.as_deref(), Some("X"));
        assert_eq!(st.patch_config_map.as_deref(), Some("r1-2-patch"));
        assert_eq!((st.start_time, st.completion_time), (Some(t(110)), Some(t(190))));
        assert!(st.extra.is_empty(), "attempt status fields the dashboard does not name: {:?}", st.extra.keys());
    }

    #[test]
    fn unknown_phases_and_fields_are_kept_not_rejected() {
        let doc: RunDoc = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r", "namespace": "n"},
            "spec": {"source": {"repository": "o/r", "branch": "b", "headSha": "abcdef0", "provider": "gitea"}},
            "status": {"phase": "Resolved", "history": [{"action": "resolve", "actor": "alice"}],
                       "pullRequest": {"number": 7, "url": "https://github.com/o/r/pull/7"},
                       "tokens": {"input": 5}}
        }))
        .unwrap();
        let st = doc.status.unwrap();
        assert_eq!(st.phase.as_deref(), Some("Resolved"));
        assert_eq!(st.history.len(), 1);
        assert_eq!(st.pull_request.unwrap()["number"], 7);
        assert_eq!(st.extra["tokens"]["input"], 5);
        assert_eq!(doc.spec.source.provider.as_deref(), Some("gitea"));
    }

    #[test]
    fn attempts_keep_only_what_pages_show() {
        let mut a: AttemptDoc = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-1", "namespace": "n", "uid": "u", "resourceVersion": "9",
                         "labels": {"cihealer.dev/run": "r"}, "managedFields": [{"manager": "ci-healer"}],
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"runName": "r", "attempt": 1, "profile": "rust", "healerImage": "img", "checkout": {"image": "x"}},
            "status": {"phase": "Failed", "failureReason": "VerdictMissing", "conditions": [
                {"type": "JobCreated", "status": "True", "reason": "JobCreated", "message": "Job r-1", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Completed", "status": "True", "reason": "VerdictMissing", "message": "the pod ended without a verdict", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap();
        slim_attempt(&mut a);
        assert_eq!(a.metadata.name.as_deref(), Some("r-1"));
        assert!(a.metadata.creation_timestamp.is_some());
        assert!(a.metadata.uid.is_none() && a.metadata.labels.is_none() && a.metadata.managed_fields.is_none());
        let st = a.status.unwrap();
        assert!(st.conditions.is_empty());
        assert_eq!(st.completed_message.as_deref(), Some("the pod ended without a verdict"));
    }

    #[test]
    fn configmaps_keep_only_what_pages_show_masked() {
        let triage = serde_json::json!({"failureClass": "rust_fmt", "confidence": 0.9, "profile": "rust",
            "action": "agent", "errorHash": "x", "excerpt": "big", "diagnostics": [{"a": 1}, {"b": 2}]});
        let mut f: FilesDoc = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-context", "namespace": "n", "labels": {"cihealer.dev/run": "r"},
                         "managedFields": [{"manager": "ci-healer"}]},
            "data": {"excerpt.txt": "error \x1b[31mred\x1b[0m token ghp_0123456789abcdefghij0123456789abcd",
                     "triage.json": triage.to_string(), "other": "dropped"}
        }))
        .unwrap();
        slim_files(&mut f);
        assert!(f.metadata.managed_fields.is_none());
        assert_eq!(f.metadata.labels.as_ref().unwrap().get(LABEL_RUN).map(String::as_str), Some("r"));
        let e = f.data.excerpt.unwrap();
        assert_eq!(e, "error red token [MASKED]");
        let t = f.data.triage.unwrap();
        assert_eq!((t.failure_class.as_str(), t.confidence, t.diagnostics), ("rust_fmt", 0.9, 2));
        // A triage.json that is not triage's answer is shown as absent, not an error.
        let f: FilesDoc =
            serde_json::from_value(serde_json::json!({"metadata": {}, "data": {"triage.json": "not json"}})).unwrap();
        assert_eq!(f.data.triage, None);
    }
}
