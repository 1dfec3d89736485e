//! The dashboard's HTTP server (axum): server-rendered pages (minijinja templates compiled into the
//! binary), a stylesheet and one small script served from the binary, and Server-Sent Events that
//! push re-rendered fragments when the cache changes. The tables and pages work without JavaScript;
//! the script only swaps in the fragments the event stream sends.
//!
//! Routes: `/` (summary cards and the runs table; query: `namespace`, `repository`, `phase`,
//! `class`, `page`, `per_page`), `/runs/{namespace}/{name}` (the run page), `/repositories`
//! (figures per repository, class and agent), `…/events` (SSE for each page), `/static/…`,
//! `/healthz`, `/readyz` (200 once the cache holds its first complete list).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::reflector::ObjectRef;
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use tokio::sync::broadcast::error::RecvError;

use super::cache::{Cache, Change, FilesDoc, RunDoc};
use super::view::{self, GroupBy, Links, RunQuery};
use crate::resources::attempt::attempt_name;
use crate::resources::configmap;

/// How long a live page waits for more changes before it re-renders (changes often come in bursts:
/// an attempt's status, then its run's).
pub const DEBOUNCE: Duration = Duration::from_millis(100);

const STYLE: &str = include_str!("static/style.css");
const SCRIPT: &str = include_str!("static/live.js");
/// Nothing outside the dashboard is loaded: no CDN, no inline script, no frames.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The state the handlers share.
pub struct App {
    cache: Cache,
    templates: Environment<'static>,
    links: Links,
    ready: AtomicBool,
    /// The runs in table order with their summary, recomputed only when the cache changes.
    index: Mutex<Option<Arc<IndexSnapshot>>>,
    /// The figures page, recomputed when the cache changes (or its ages are 10 s old).
    figures: Mutex<Option<(u64, i64, Arc<Value>)>>,
}

/// What every runs-table request shares until the cache changes.
struct IndexSnapshot {
    version: u64,
    sorted: Vec<Arc<RunDoc>>,
    summary: Value,
    options: Value,
}

/// A page that cannot be rendered (a template error: a bug, logged).
#[derive(Debug)]
pub struct RenderError(String);

impl IntoResponse for RenderError {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.0).into_response()
    }
}

impl App {
    /// An app over `cache`, linking to the code host through `links`.
    pub fn new(cache: Cache, links: Links) -> Arc<Self> {
        Arc::new(Self {
            cache,
            templates: templates(),
            links,
            ready: AtomicBool::new(false),
            index: Mutex::new(None),
            figures: Mutex::new(None),
        })
    }

    /// Mark the cache as complete (`/readyz` answers 200 from then on).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    fn now() -> Time {
        Time(jiff::Timestamp::now())
    }

    fn render(&self, name: &str, ctx: Value) -> Result<String, RenderError> {
        self.templates.get_template(name).and_then(|t| t.render(ctx)).map_err(|e| {
            tracing::error!(template = name, error = %e, "cannot render");
            RenderError(format!("cannot render {name}: {e}"))
        })
    }

    /// The sorted runs, summary and filter choices at the cache's current version. Computed once
    /// per change (sorting 10,000 runs takes milliseconds; a page view then only filters and cuts).
    fn index_snapshot(&self) -> Arc<IndexSnapshot> {
        let version = self.cache.version();
        let mut memo = self.index.lock().expect("index memo");
        if let Some(s) = memo.as_ref().filter(|s| s.version == version) {
            return s.clone();
        }
        let mut sorted = self.cache.runs.state();
        view::newest_first(&mut sorted);
        let snapshot = Arc::new(IndexSnapshot {
            version,
            summary: Value::from(Serde(view::summary(&sorted))),
            options: Value::from(Serde(view::filter_options(&sorted))),
            sorted,
        });
        *memo = Some(snapshot.clone());
        snapshot
    }

    fn index_context(&self, query: &RunQuery) -> Value {
        let snap = self.index_snapshot();
        context! {
            summary => snap.summary.clone(),
            table => Serde(view::run_table(&snap.sorted, query, &self.links, &Self::now())),
            options => snap.options.clone(),
            ready => self.ready.load(Ordering::Relaxed),
            events => with_version(format!("/events{}", query.href(0)), snap.version),
        }
    }

    /// The runs page (`/`): summary cards, the filter form and one page of the runs table.
    pub fn index_html(&self, query: &RunQuery) -> Result<String, RenderError> {
        self.render("index.html", self.index_context(query))
    }

    /// The run page's context, or `None` when the run is not in the cache. Attempts and ConfigMaps
    /// are looked up by their deterministic names, never by scanning the stores.
    fn run_context(&self, ns: &str, name: &str) -> Option<Value> {
        let version = self.cache.version();
        let run = self.cache.runs.get(&ObjectRef::new(name).within(ns))?;
        let started = run.status.as_ref().map(|s| s.attempts).unwrap_or(0);
        let most = started.max(run.spec.policy.max_attempts.unwrap_or(0)).clamp(0, 64) as i32;
        let attempts: Vec<_> = (1..=most)
            .filter_map(|n| self.cache.attempts.get(&ObjectRef::new(&attempt_name(name, n)).within(ns)))
            .collect();
        let file = |cm: &str| -> Option<Arc<FilesDoc>> { self.cache.files.get(&ObjectRef::new(cm).within(ns)) };
        let context_cm = file(&configmap::context_name(name));
        let patch_cm =
            run.status.as_ref().and_then(|s| s.patch.as_ref()).and_then(|p| p.config_map.as_deref()).and_then(file);
        let page =
            view::run_page(&run, &attempts, context_cm.as_deref(), patch_cm.as_deref(), &self.links, &Self::now());
        let events = with_version(format!("/runs/{}/{}/events?", view::enc(ns), view::enc(name)), version);
        Some(context! { run => Serde(&page), events => events })
    }

    /// The run page, or `None` when the cache holds no such run.
    pub fn run_html(&self, ns: &str, name: &str) -> Option<Result<String, RenderError>> {
        self.run_context(ns, name).map(|ctx| self.render("run.html", ctx))
    }

    /// The figures page (`/repositories`): by repository, by failure class, by agent profile.
    pub fn repositories_html(&self) -> Result<String, RenderError> {
        let (version, tick) = (self.cache.version(), jiff::Timestamp::now().as_second() / 10);
        let ctx = {
            let mut memo = self.figures.lock().expect("figures memo");
            match memo.as_ref().filter(|(v, t, _)| *v == version && *t == tick) {
                Some((_, _, ctx)) => ctx.clone(),
                None => {
                    let runs = self.cache.runs.state();
                    let tokens = view::tokens_per_run(&self.cache.attempts.state());
                    let now = Self::now();
                    let ctx = Arc::new(context! {
                        summary => Serde(view::summary(&runs)),
                        repositories => Serde(view::group_stats(&runs, GroupBy::Repository, &tokens, &now)),
                        classes => Serde(view::group_stats(&runs, GroupBy::Class, &tokens, &now)),
                        agents => Serde(view::group_stats(&runs, GroupBy::Agent, &tokens, &now)),
                        events => "",
                    });
                    *memo = Some((version, tick, ctx.clone()));
                    ctx
                }
            }
        };
        self.render("repositories.html", (*ctx).clone())
    }
}

/// Append `v=<version>` to an events URL whose query string has begun (`…?` or `…?a=b`).
fn with_version(url: String, version: u64) -> String {
    let sep = if url.ends_with('?') { "" } else { "&" };
    format!("{url}{sep}v={version}")
}

/// The cache version a page was rendered at (`?v=`), sent back by its event stream.
#[derive(serde::Deserialize, Default)]
struct Since {
    v: Option<u64>,
}

fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("index.html", include_str!("templates/index.html")),
        ("cards.html", include_str!("templates/cards.html")),
        ("table.html", include_str!("templates/table.html")),
        ("run.html", include_str!("templates/run.html")),
        ("run_live.html", include_str!("templates/run_live.html")),
        ("repositories.html", include_str!("templates/repositories.html")),
        ("missing.html", include_str!("templates/missing.html")),
    ] {
        env.add_template(name, source).expect("dashboard templates compile");
    }
    env
}

/// The router with every route; `app` is shared by all requests.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/events", get(index_events))
        .route("/runs/{namespace}/{name}", get(run_page))
        .route("/runs/{namespace}/{name}/events", get(run_events))
        .route("/repositories", get(repositories))
        .route("/static/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/static/live.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Links to GitHub do not carry the dashboard's address.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

async fn readyz(State(app): State<Arc<App>>) -> (StatusCode, &'static str) {
    match app.ready.load(Ordering::Relaxed) {
        true => (StatusCode::OK, "ready"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "listing HealingRuns, HealingAttempts and ConfigMaps"),
    }
}

async fn index(State(app): State<Arc<App>>, Query(query): Query<RunQuery>) -> Result<Html<String>, RenderError> {
    app.index_html(&query).map(Html)
}

async fn run_page(State(app): State<Arc<App>>, Path((ns, name)): Path<(String, String)>) -> Response {
    match app.run_html(&ns, &name) {
        Some(Ok(html)) => Html(html).into_response(),
        Some(Err(e)) => e.into_response(),
        None => {
            let body = app.render("missing.html", context! { namespace => ns, name => name, events => "" });
            (StatusCode::NOT_FOUND, Html(body.unwrap_or_default())).into_response()
        }
    }
}

async fn repositories(State(app): State<Arc<App>>) -> Result<Html<String>, RenderError> {
    app.repositories_html().map(Html)
}

type EventStream = Sse<KeepAliveStream<std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>>>;

/// An event stream that sends `render()`'s events after every change that `wanted` accepts
/// (debounced by [`DEBOUNCE`]), and at once if the cache changed since the page was rendered at
/// version `since` (or `since` is unknown). A receiver that fell behind re-renders once.
fn live(
    app: Arc<App>,
    since: Option<u64>,
    wanted: impl Fn(&Change) -> bool + Send + Sync + 'static,
    render: impl Fn(&App) -> Vec<Event> + Send + Sync + 'static,
) -> EventStream {
    use futures::StreamExt;
    let rx = app.cache.subscribe();
    let (wanted, render) = (Arc::new(wanted), Arc::new(render));
    let first = since != Some(app.cache.version());
    let stream = futures::stream::unfold((app, rx, first), move |(app, mut rx, first)| {
        let (wanted, render) = (wanted.clone(), render.clone());
        async move {
            if !first {
                loop {
                    match rx.recv().await {
                        Ok(c) if wanted(&c) => break,
                        Ok(_) => continue,
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return None,
                    }
                }
                tokio::time::sleep(DEBOUNCE).await;
                while rx.try_recv().is_ok() {}
            }
            let events = render(&app);
            Some((futures::stream::iter(events.into_iter().map(Ok)), (app, rx, false)))
        }
    });
    Sse::new(stream.flatten().boxed()).keep_alive(KeepAlive::default())
}

async fn index_events(
    State(app): State<Arc<App>>,
    Query(query): Query<RunQuery>,
    Query(since): Query<Since>,
) -> EventStream {
    live(
        app,
        since.v,
        |_| true,
        move |app| {
            let ctx = app.index_context(&query);
            let mut out = Vec::new();
            for (event, template) in [("summary", "cards.html"), ("table", "table.html")] {
                if let Ok(html) = app.render(template, ctx.clone()) {
                    out.push(Event::default().event(event).data(html));
                }
            }
            out
        },
    )
}

async fn run_events(
    State(app): State<Arc<App>>,
    Path((ns, name)): Path<(String, String)>,
    Query(since): Query<Since>,
) -> EventStream {
    let (ns2, name2) = (ns.clone(), name.clone());
    live(
        app,
        since.v,
        move |c| match c {
            Change::Run(n, r) => *n == ns2 && *r == name2,
            Change::All => true,
        },
        move |app| {
            let html = match app.run_context(&ns, &name) {
                Some(ctx) => app.render("run_live.html", ctx).unwrap_or_default(),
                None => "<p class=\"gone\">This run is no longer in the cluster.</p>".into(),
            };
            vec![Event::default().event("run").data(html)]
        },
    )
}
