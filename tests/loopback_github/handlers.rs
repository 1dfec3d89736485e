//! One handler per GitHub operation the controller uses: each reads and changes [`State`] the way
//! GitHub documents and answers with the operation's documented example overlaid with the state's
//! values (so an answer has every field real GitHub sends). Operations it does not implement answer
//! 501 and are recorded as violations, so a test never passes by accident.

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::{Value, json};

use super::openapi::{Operation, PathParams, Spec};
use super::state::*;

/// Who sent a request, from its `Authorization` header.
#[derive(Debug, Clone, PartialEq)]
pub enum Who {
    /// No header.
    Anonymous,
    /// A valid App JWT.
    App(i64),
    /// A valid installation token.
    Installation(i64),
    /// A personal access token of `login`.
    Token(String),
    /// A header that is not a valid credential (expired, unknown, bad signature).
    Invalid(String),
}

impl Who {
    /// For the request record.
    pub fn label(&self) -> String {
        match self {
            Who::Anonymous => "none".into(),
            Who::App(_) => "jwt".into(),
            Who::Installation(id) => format!("installation:{id}"),
            Who::Token(l) => format!("token:{l}"),
            Who::Invalid(why) => format!("invalid:{why}"),
        }
    }
}

/// A request to handle.
pub struct Ctx<'a> {
    pub op: &'a Operation,
    pub params: &'a PathParams,
    pub query: &'a [(String, String)],
    pub body: Option<&'a Value>,
    pub who: &'a Who,
    /// `http://host:port[/api/v3]`, for URLs in answers.
    pub base: &'a str,
    /// The blob storage's base URL, for log redirects.
    pub blob_base: &'a str,
    pub spec: &'a Spec,
}

/// An answer.
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self { status, body: Some(body), headers: vec![] }
    }
    /// GitHub's error shape.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(
            status,
            json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.to_string()}),
        )
    }
    fn validation(message: &str, field: &str, code: &str) -> Self {
        Self::json(
            422,
            json!({"message": "Validation Failed", "errors": [{"resource": "Resource", "field": field, "code": code, "message": message}],
                   "documentation_url": "https://docs.github.com/rest", "status": "422"}),
        )
    }
}

/// Deep-merge `ours` over `base`: objects merge key by key, everything else is replaced.
pub fn overlay(base: Value, ours: Value) -> Value {
    match (base, ours) {
        (Value::Object(mut b), Value::Object(o)) => {
            for (k, v) in o {
                let merged = match b.remove(&k) {
                    Some(old) => overlay(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Object(b)
        }
        (_, o) => o,
    }
}

impl Ctx<'_> {
    fn p(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }
    fn q(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn num(&self, name: &str) -> i64 {
        self.p(name).parse().unwrap_or(-1)
    }
    fn page(&self) -> (usize, usize) {
        let per = self.q("per_page").and_then(|v| v.parse().ok()).unwrap_or(30usize).clamp(1, 100);
        let page = self.q("page").and_then(|v| v.parse().ok()).unwrap_or(1usize).max(1);
        (per, page)
    }
    fn b(&self, key: &str) -> Option<&Value> {
        self.body.and_then(|b| b.get(key))
    }
    fn bs(&self, key: &str) -> Option<String> {
        self.b(key).and_then(Value::as_str).map(str::to_string)
    }
    /// The example answer for `status`, overlaid with `ours`.
    fn shaped(&self, status: u16, ours: Value) -> Value {
        match self.spec.example(self.op, status) {
            Some(ex) => overlay(ex, ours),
            None => ours,
        }
    }
    /// A list answer: each item is the example's first item overlaid.
    fn shaped_list(&self, status: u16, items: Vec<Value>) -> Value {
        let first = self.spec.example(self.op, status).and_then(|e| e.as_array().and_then(|a| a.first().cloned()));
        Value::Array(items.into_iter().map(|i| first.clone().map(|f| overlay(f, i.clone())).unwrap_or(i)).collect())
    }
    fn login(&self) -> String {
        match self.who {
            Who::Token(l) => l.clone(),
            _ => "ci-healer[bot]".into(),
        }
    }
    fn repo_url(&self, r: &Repo) -> String {
        format!("{}/repos/{}", self.base, r.full_name())
    }
}

fn page<T: Clone>(items: &[T], per: usize, page: usize) -> Vec<T> {
    items.iter().skip((page - 1) * per).take(per).cloned().collect()
}

fn user(login: &str) -> Value {
    let bot = login.ends_with("[bot]");
    json!({"login": login, "type": if bot { "Bot" } else { "User" }, "html_url": format!("https://github.com/{login}")})
}

fn repo_obj(ctx: &Ctx, r: &Repo) -> Value {
    json!({"id": r.id, "name": r.name, "full_name": r.full_name(), "owner": user(&r.owner), "url": ctx.repo_url(r),
           "html_url": format!("https://github.com/{}", r.full_name()), "fork": false})
}

fn pull_obj(ctx: &Ctx, st: &State, r: &Repo, p: &Pull) -> Value {
    let head_repo_name = p.head_repo.clone().unwrap_or_else(|| r.full_name());
    let head_repo = match st.repo(&head_repo_name) {
        Some(hr) => repo_obj(ctx, hr),
        None => {
            let (o, n) = head_repo_name.split_once('/').unwrap_or(("", ""));
            json!({"id": 1, "name": n, "full_name": head_repo_name, "owner": user(o), "fork": true})
        }
    };
    let base_sha = r.resolve(&p.base_ref).unwrap_or_default();
    json!({
        "id": p.number * 10, "node_id": super::graphql::pull_node_id(&r.full_name(), p.number),
        "number": p.number, "state": p.state, "title": p.title, "body": p.body, "draft": p.draft,
        "url": format!("{}/pulls/{}", ctx.repo_url(r), p.number),
        "html_url": format!("https://github.com/{}/pull/{}", r.full_name(), p.number),
        "user": user(&p.user),
        "labels": p.labels.iter().map(|l| label_obj(l)).collect::<Vec<_>>(),
        "head": {"ref": p.head_ref, "sha": p.head_sha, "label": format!("{}:{}", head_repo_name.split('/').next().unwrap_or(""), p.head_ref),
                 "repo": head_repo, "user": user(head_repo_name.split('/').next().unwrap_or(""))},
        "base": {"ref": p.base_ref, "sha": base_sha, "label": format!("{}:{}", r.owner, p.base_ref), "repo": repo_obj(ctx, r), "user": user(&r.owner)},
        "merged_at": null, "merged": false, "maintainer_can_modify": p.maintainer_can_modify,
        // The description's own example lists teams without their required `type`: not copied.
        "requested_teams": [], "requested_reviewers": [], "assignees": [], "assignee": null,
    })
}

fn label_obj(name: &str) -> Value {
    json!({"id": 1, "node_id": "LA_1", "url": format!("https://api.github.com/labels/{name}"), "name": name,
           "description": "", "color": "ededed", "default": false})
}

fn check_obj(ctx: &Ctx, r: &Repo, c: &CheckRun) -> Value {
    json!({
        "id": c.id, "name": c.name, "head_sha": c.head_sha, "status": c.status, "conclusion": c.conclusion,
        "external_id": c.external_id, "details_url": c.details_url,
        "url": format!("{}/check-runs/{}", ctx.repo_url(r), c.id),
        "html_url": format!("https://github.com/{}/runs/{}", r.full_name(), c.id),
        "output": {"title": c.title, "summary": c.summary, "text": c.text, "annotations_count": c.annotations.len(),
                   "annotations_url": format!("{}/check-runs/{}/annotations", ctx.repo_url(r), c.id)},
        "check_suite": {"id": c.check_suite_id},
        "app": {"slug": c.app_slug, "name": c.app_slug},
        "pull_requests": [],
    })
}

fn git_commit_obj(ctx: &Ctx, r: &Repo, c: &Commit) -> Value {
    let person = json!({"name": c.author_name, "email": c.author_email, "date": c.date});
    json!({
        "sha": c.sha, "node_id": format!("C_{}", &c.sha[..8.min(c.sha.len())]),
        "url": format!("{}/git/commits/{}", ctx.repo_url(r), c.sha),
        "html_url": format!("https://github.com/{}/commit/{}", r.full_name(), c.sha),
        "author": person, "committer": person, "message": c.message,
        "tree": {"sha": c.tree, "url": format!("{}/git/trees/{}", ctx.repo_url(r), c.tree)},
        "parents": c.parents.iter().map(|p| json!({"sha": p, "url": format!("{}/git/commits/{p}", ctx.repo_url(r)),
                                                    "html_url": format!("https://github.com/{}/commit/{p}", r.full_name())})).collect::<Vec<_>>(),
        "verification": {"verified": c.verified, "reason": if c.verified { "valid" } else { "unsigned" }, "signature": null, "payload": null, "verified_at": null},
    })
}

fn commit_obj(ctx: &Ctx, r: &Repo, c: &Commit, files: Option<Vec<String>>) -> Value {
    let gc = git_commit_obj(ctx, r, c);
    let linked = c
        .author_login
        .as_ref()
        .map(|l| overlay(user(l), json!({"type": c.author_type.clone().unwrap_or_else(|| "User".into())})));
    let mut v = json!({
        "sha": c.sha, "node_id": gc["node_id"], "url": format!("{}/commits/{}", ctx.repo_url(r), c.sha),
        "html_url": gc["html_url"], "comments_url": format!("{}/commits/{}/comments", ctx.repo_url(r), c.sha),
        "commit": {"author": gc["author"], "committer": gc["committer"], "message": c.message, "tree": gc["tree"],
                   "url": gc["url"], "comment_count": 0, "verification": gc["verification"]},
        "author": linked.clone().unwrap_or(Value::Null), "committer": linked.unwrap_or(Value::Null),
        "parents": gc["parents"],
    });
    if let Some(files) = files {
        v["files"] = Value::Array(files.iter().map(|f| file_entry(ctx, r, f, &c.sha)).collect());
        v["stats"] = json!({"total": files.len(), "additions": files.len(), "deletions": 0});
    }
    v
}

fn file_entry(ctx: &Ctx, r: &Repo, path: &str, sha: &str) -> Value {
    json!({"sha": sha, "filename": path, "status": "modified", "additions": 1, "deletions": 0, "changes": 1,
           "blob_url": format!("https://github.com/{}/blob/{sha}/{path}", r.full_name()),
           "raw_url": format!("https://github.com/{}/raw/{sha}/{path}", r.full_name()),
           "contents_url": format!("{}/contents/{path}?ref={sha}", ctx.repo_url(r))})
}

fn b64_lines(bytes: &[u8]) -> String {
    let s = base64::engine::general_purpose::STANDARD.encode(bytes);
    s.as_bytes().chunks(60).map(|c| std::str::from_utf8(c).unwrap().to_string() + "\n").collect()
}

/// Handle one request against the state.
pub fn handle(st: &mut State, ctx: &Ctx) -> Reply {
    // Identity endpoints first: they need the App's JWT.
    let app_only = matches!(
        ctx.op.id.as_str(),
        "apps/get-authenticated" | "apps/create-installation-access-token" | "apps/get-repo-installation"
    );
    match (app_only, ctx.who) {
        (_, Who::Invalid(why)) => return Reply::error(401, &format!("Bad credentials ({why})")),
        (true, Who::App(_)) => {}
        (true, _) => return Reply::error(401, "A JSON web token could not be decoded"),
        (false, Who::App(_)) => {
            return Reply::error(403, "This endpoint requires an installation access token, not a JWT");
        }
        (false, Who::Anonymous) => return Reply::error(401, "Requires authentication"),
        _ => {}
    }
    match ctx.op.id.as_str() {
        "apps/get-authenticated" => {
            let app = st.auth.app.clone().expect("an App JWT verified");
            return Reply::json(200, ctx.shaped(200, json!({"id": app.id, "slug": app.slug, "name": app.slug})));
        }
        "apps/create-installation-access-token" => {
            let id = ctx.num("installation_id");
            if !st.repos.values().any(|r| r.installation_id == Some(id)) {
                return Reply::error(404, "Not Found");
            }
            let (token, ttl) = st.mint(id);
            let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(ttl.as_secs() as i64);
            return Reply::json(
                201,
                ctx.shaped(201, json!({"token": token, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(), "repository_selection": "selected"})),
            );
        }
        "users/get-authenticated" => return Reply::json(200, ctx.shaped(200, user(&ctx.login()))),
        _ => {}
    }
    let full = format!("{}/{}", ctx.p("owner"), ctx.p("repo"));
    let Some(repo) = st.repo(&full).cloned() else { return Reply::error(404, "Not Found") };
    if ctx.op.id == "apps/get-repo-installation" {
        return match repo.installation_id {
            Some(id) => Reply::json(
                200,
                ctx.shaped(200, json!({"id": id, "account": user(&repo.owner), "app_slug": "ci-healer"})),
            ),
            None => Reply::error(404, "Not Found"),
        };
    }
    // An installation token reaches only its installation's repositories; GitHub answers 404.
    if let Who::Installation(id) = ctx.who
        && repo.installation_id != Some(*id)
    {
        return Reply::error(404, "Not Found");
    }
    let is_pat = matches!(ctx.who, Who::Token(_));
    let r = &repo;
    match ctx.op.id.as_str() {
        "actions/get-job-for-workflow-run" => {
            let Some(j) = r.jobs.get(&ctx.num("job_id")) else { return Reply::error(404, "Not Found") };
            let steps: Vec<Value> = j
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| json!({"name": s.name, "status": "completed", "conclusion": s.conclusion, "number": i + 1,
                                     "started_at": "2024-05-01T10:00:00Z", "completed_at": "2024-05-01T10:01:00Z"}))
                .collect();
            let run_attempt = r.runs.get(&j.run_id).map(|x| x.run_attempt).unwrap_or(1);
            Reply::json(
                200,
                ctx.shaped(
                    200,
                    json!({"id": j.id, "run_id": j.run_id, "name": j.name, "workflow_name": j.workflow_name, "head_sha": j.head_sha,
                           "head_branch": j.head_branch, "status": "completed", "conclusion": j.conclusion, "steps": steps,
                           "created_at": "2024-05-01T09:59:00Z", "started_at": "2024-05-01T10:00:00Z", "completed_at": "2024-05-01T10:01:00Z",
                           "run_attempt": run_attempt,
                           "url": format!("{}/actions/jobs/{}", ctx.repo_url(r), j.id),
                           "run_url": format!("{}/actions/runs/{}", ctx.repo_url(r), j.run_id),
                           "check_run_url": format!("{}/check-runs/{}", ctx.repo_url(r), j.id),
                           "html_url": format!("https://github.com/{}/actions/runs/{}/job/{}", r.full_name(), j.run_id, j.id)}),
                ),
            )
        }
        "actions/download-job-logs-for-workflow-run" => {
            let Some(j) = r.jobs.get(&ctx.num("job_id")) else { return Reply::error(404, "Not Found") };
            match j.log {
                Log::Missing => Reply::error(404, "Not Found"),
                Log::Expired => Reply::error(410, "Gone"),
                _ => {
                    let sig = object_id("sig", format!("{}-{}", r.full_name(), j.id).as_bytes());
                    let loc = format!("{}/logs/{}/{}?urlSignature={sig}", ctx.blob_base, r.full_name(), j.id);
                    Reply { status: 302, body: None, headers: vec![("location".into(), loc)] }
                }
            }
        }
        "actions/get-workflow-run" => {
            let Some(run) = r.runs.get(&ctx.num("run_id")) else { return Reply::error(404, "Not Found") };
            Reply::json(
                200,
                ctx.shaped(
                    200,
                    json!({"id": run.id, "name": run.name, "path": run.path, "head_sha": run.head_sha, "head_branch": run.head_branch,
                           "run_attempt": run.run_attempt, "url": format!("{}/actions/runs/{}", ctx.repo_url(r), run.id),
                           "repository": repo_obj(ctx, r), "head_repository": repo_obj(ctx, r)}),
                ),
            )
        }
        "actions/re-run-job-for-workflow-run" => {
            let id = ctx.num("job_id");
            match st.repo_mut(&full).and_then(|r| r.jobs.get_mut(&id)) {
                Some(j) => {
                    j.reruns += 1;
                    Reply::json(201, json!({}))
                }
                None => Reply::error(404, "Not Found"),
            }
        }
        "checks/get" => match r.check_runs.iter().find(|c| c.id == ctx.num("check_run_id")) {
            Some(c) => Reply::json(200, ctx.shaped(200, check_obj(ctx, r, c))),
            None => Reply::error(404, "Not Found"),
        },
        "checks/list-annotations" => {
            let Some(c) = r.check_runs.iter().find(|c| c.id == ctx.num("check_run_id")) else { return Reply::error(404, "Not Found") };
            let (per, pg) = ctx.page();
            let items: Vec<Value> = page(&c.annotations, per, pg)
                .iter()
                .map(|a| json!({"path": a.path, "start_line": a.start_line, "end_line": a.end_line, "annotation_level": a.level,
                                "message": a.message, "title": a.title, "raw_details": null, "start_column": null, "end_column": null,
                                "blob_href": format!("https://github.com/{}/blob/{}/{}", r.full_name(), c.head_sha, a.path)}))
                .collect();
            Reply::json(200, ctx.shaped_list(200, items))
        }
        "checks/list-for-ref" | "checks/list-for-suite" => {
            let mut runs: Vec<&CheckRun> = if ctx.op.id == "checks/list-for-suite" {
                let s = ctx.num("check_suite_id");
                r.check_runs.iter().filter(|c| c.check_suite_id == s).collect()
            } else {
                let sha = r.resolve(ctx.p("ref")).unwrap_or_else(|| ctx.p("ref").to_string());
                r.check_runs.iter().filter(|c| c.head_sha == sha).collect()
            };
            if let Some(n) = ctx.q("check_name") {
                runs.retain(|c| c.name == n);
            }
            if let Some(s) = ctx.q("status") {
                runs.retain(|c| c.status == s);
            }
            let (per, pg) = ctx.page();
            let items: Vec<Value> = page(&runs, per, pg).iter().map(|c| check_obj(ctx, r, c)).collect();
            let first = ctx.spec.example(ctx.op, 200).and_then(|e| e["check_runs"].as_array().and_then(|a| a.first().cloned()));
            let items: Vec<Value> = items.into_iter().map(|i| first.clone().map(|f| overlay(f, i.clone())).unwrap_or(i)).collect();
            Reply::json(200, json!({"total_count": runs.len(), "check_runs": items}))
        }
        "checks/create" | "checks/update" => {
            if is_pat {
                return Reply::error(403, "You must authenticate via a GitHub App.");
            }
            let id = if ctx.op.id == "checks/create" { st.id() } else { ctx.num("check_run_id") };
            let repo = st.repo_mut(&full).expect("exists");
            let existing = repo.check_runs.iter().position(|c| c.id == id);
            if ctx.op.id == "checks/update" && existing.is_none() {
                return Reply::error(404, "Not Found");
            }
            if ctx.op.id == "checks/create" && !repo.commits.contains_key(&ctx.bs("head_sha").unwrap_or_default()) {
                return Reply::validation("No commit found for SHA", "head_sha", "invalid");
            }
            let mut c = existing.map(|i| repo.check_runs[i].clone()).unwrap_or_else(|| CheckRun {
                id,
                name: ctx.bs("name").unwrap_or_default(),
                head_sha: ctx.bs("head_sha").unwrap_or_default(),
                status: "queued".into(),
                app_slug: "ci-healer".into(),
                ..Default::default()
            });
            if let Some(s) = ctx.bs("status") {
                c.status = s;
            }
            if let Some(conclusion) = ctx.bs("conclusion") {
                c.conclusion = Some(conclusion);
                c.status = "completed".into();
            }
            if let Some(e) = ctx.bs("external_id") {
                c.external_id = Some(e);
            }
            if let Some(u) = ctx.bs("details_url") {
                c.details_url = Some(u);
            }
            if let Some(o) = ctx.b("output") {
                c.title = o.get("title").and_then(Value::as_str).map(str::to_string).or(c.title);
                c.summary = o.get("summary").and_then(Value::as_str).map(str::to_string).or(c.summary);
                c.text = o.get("text").and_then(Value::as_str).map(str::to_string).or(c.text);
            }
            let status = match existing {
                Some(i) => {
                    c.updates += 1;
                    repo.check_runs[i] = c.clone();
                    200
                }
                None => {
                    repo.check_runs.push(c.clone());
                    201
                }
            };
            let repo = repo.clone();
            Reply::json(status, ctx.shaped(status, check_obj(ctx, &repo, &c)))
        }
        "repos/create-commit-status" => {
            let id = st.id();
            let sha = ctx.p("sha").to_string();
            let s = Status {
                id,
                sha: sha.clone(),
                state: ctx.bs("state").unwrap_or_default(),
                context: ctx.bs("context").unwrap_or_else(|| "default".into()),
                description: ctx.bs("description"),
                target_url: ctx.bs("target_url"),
            };
            st.repo_mut(&full).expect("exists").statuses.push(s.clone());
            Reply::json(
                201,
                ctx.shaped(201, json!({"id": id, "state": s.state, "context": s.context, "description": s.description,
                                       "target_url": s.target_url, "creator": user(&ctx.login()),
                                       "url": format!("{}/statuses/{sha}", ctx.repo_url(r))})),
            )
        }
        "repos/list-pull-requests-associated-with-commit" => {
            let sha = ctx.p("commit_sha");
            let items: Vec<Value> = r
                .pulls
                .iter()
                .filter(|p| p.head_sha == sha || r.history(&p.head_sha, 250).iter().any(|c| c.sha == sha))
                .map(|p| pull_obj(ctx, st, r, p))
                .collect();
            Reply::json(200, ctx.shaped_list(200, items))
        }
        "pulls/list" => {
            let state = ctx.q("state").unwrap_or("open");
            let mut pulls: Vec<&Pull> = r.pulls.iter().filter(|p| state == "all" || p.state == state).collect();
            if let Some(h) = ctx.q("head") {
                let (owner, branch) = h.split_once(':').unwrap_or((&r.owner, h));
                pulls.retain(|p| {
                    p.head_ref == branch
                        && p.head_repo.as_deref().unwrap_or(&r.full_name()).split('/').next().is_some_and(|o| o.eq_ignore_ascii_case(owner))
                });
            }
            if let Some(b) = ctx.q("base") {
                pulls.retain(|p| p.base_ref == b);
            }
            let (per, pg) = ctx.page();
            let items: Vec<Value> = page(&pulls, per, pg).iter().map(|p| pull_obj(ctx, st, r, p)).collect();
            Reply::json(200, ctx.shaped_list(200, items))
        }
        "pulls/create" => {
            let head = ctx.bs("head").unwrap_or_default();
            let base = ctx.bs("base").unwrap_or_default();
            let head_branch = head.split_once(':').map(|(_, b)| b.to_string()).unwrap_or(head.clone());
            let Some(head_sha) = r.resolve(&head_branch).filter(|_| r.refs.contains_key(&format!("heads/{head_branch}"))) else {
                return Reply::validation("head does not exist", "head", "invalid");
            };
            if !r.refs.contains_key(&format!("heads/{base}")) {
                return Reply::validation("base does not exist", "base", "invalid");
            }
            if r.pulls.iter().any(|p| p.head_ref == head_branch && p.base_ref == base && p.state == "open") {
                return Reply::validation(&format!("A pull request already exists for {}:{head_branch}.", r.owner), "", "custom");
            }
            let number = r.pulls.iter().map(|p| p.number).max().unwrap_or(0) + 1;
            let p = Pull {
                number,
                title: ctx.bs("title").unwrap_or_default(),
                body: ctx.bs("body").unwrap_or_default(),
                head_ref: head_branch,
                head_sha,
                head_repo: None,
                base_ref: base,
                state: "open".into(),
                draft: ctx.b("draft").and_then(Value::as_bool).unwrap_or(false),
                labels: vec![],
                user: ctx.login(),
                maintainer_can_modify: ctx.b("maintainer_can_modify").and_then(Value::as_bool).unwrap_or(false),
            };
            st.repo_mut(&full).expect("exists").pulls.push(p.clone());
            let r = st.repo(&full).expect("exists").clone();
            Reply::json(201, ctx.shaped(201, pull_obj(ctx, st, &r, &p)))
        }
        "pulls/get" => match r.pulls.iter().find(|p| p.number == ctx.num("pull_number")) {
            Some(p) => Reply::json(200, ctx.shaped(200, pull_obj(ctx, st, r, p))),
            None => Reply::error(404, "Not Found"),
        },
        "reactions/create-for-issue-comment" => {
            let id = ctx.num("comment_id");
            if !r.comments.iter().any(|c| c.id == id) {
                return Reply::error(404, "Not Found");
            }
            let content = ctx.bs("content").unwrap_or_default();
            let login = ctx.login();
            // GitHub answers 200 with the existing reaction when this user reacted so already.
            if let Some(x) = r.reactions.iter().find(|x| x.comment_id == id && x.content == content && x.user == login) {
                return Reply::json(200, ctx.shaped(200, reaction_obj(x)));
            }
            let x = Reaction { id: st.id(), comment_id: id, content, user: login };
            st.repo_mut(&full).expect("exists").reactions.push(x.clone());
            Reply::json(201, ctx.shaped(201, reaction_obj(&x)))
        }
        "pulls/update" => {
            let n = ctx.num("pull_number");
            if let Some(state) = ctx.bs("state")
                && state != "open"
                && state != "closed"
            {
                return Reply::validation("state must be open or closed", "state", "invalid");
            }
            let repo = st.repo_mut(&full).expect("exists");
            let Some(p) = repo.pulls.iter_mut().find(|p| p.number == n) else { return Reply::error(404, "Not Found") };
            if let Some(state) = ctx.bs("state") {
                p.state = state;
            }
            if let Some(t) = ctx.bs("title") {
                p.title = t;
            }
            if let Some(b) = ctx.bs("body") {
                p.body = b;
            }
            let p = p.clone();
            let r = st.repo(&full).expect("exists").clone();
            Reply::json(200, ctx.shaped(200, pull_obj(ctx, st, &r, &p)))
        }
        "git/delete-ref" => {
            let name = ctx.p("ref").to_string();
            let repo = st.repo_mut(&full).expect("exists");
            if repo.refs.remove(&name).is_none() {
                return Reply::json(422, json!({"message": "Reference does not exist", "documentation_url": "https://docs.github.com/rest/git/refs#delete-a-reference", "status": "422"}));
            }
            Reply { status: 204, body: None, headers: vec![] }
        }
        "pulls/list-files" => {
            let Some(p) = r.pulls.iter().find(|p| p.number == ctx.num("pull_number")) else { return Reply::error(404, "Not Found") };
            let base = r.resolve(&p.base_ref);
            let files = r.diff_paths(base.as_deref(), &p.head_sha);
            let (per, pg) = ctx.page();
            let items: Vec<Value> = page(&files, per, pg)
                .iter()
                .map(|f| {
                    let mut e = file_entry(ctx, r, f, &p.head_sha);
                    if let Some(patch) = r.file_patch(base.as_deref(), &p.head_sha, f) {
                        e["patch"] = json!(patch);
                    }
                    e
                })
                .collect();
            Reply::json(200, ctx.shaped_list(200, items))
        }
        "pulls/list-reviews" => {
            let n = ctx.num("pull_number");
            if !r.pulls.iter().any(|p| p.number == n) {
                return Reply::error(404, "Not Found");
            }
            let mine: Vec<&Review> = r.reviews.iter().filter(|v| v.pull_number == n).collect();
            let (per, pg) = ctx.page();
            let items: Vec<Value> = page(&mine, per, pg).iter().map(|v| review_obj(ctx, r, v)).collect();
            Reply::json(200, ctx.shaped_list(200, items))
        }
        "pulls/create-review" => {
            let n = ctx.num("pull_number");
            let Some(p) = r.pulls.iter().find(|p| p.number == n) else { return Reply::error(404, "Not Found") };
            let commit_id = ctx.bs("commit_id").unwrap_or_else(|| p.head_sha.clone());
            if !r.commits.contains_key(&commit_id) {
                return Reply::validation("commit_id is not part of the pull request", "commit_id", "invalid");
            }
            // GitHub resolves each comment against the pull request's diff: a line the diff does not
            // show (on that side) cannot carry a comment.
            let base = r.resolve(&p.base_ref);
            let mut comments = Vec::new();
            for c in ctx.b("comments").and_then(Value::as_array).cloned().unwrap_or_default() {
                let path = c["path"].as_str().unwrap_or_default().to_string();
                let line = c["line"].as_i64();
                let start = c["start_line"].as_i64();
                let side = c["side"].as_str().unwrap_or("RIGHT").to_string();
                let shown: BTreeSet<i64> = r
                    .file_patch(base.as_deref(), &commit_id, &path)
                    .filter(|_| r.diff_paths(base.as_deref(), &commit_id).contains(&path))
                    .map(|patch| right_side(&patch))
                    .unwrap_or_default();
                let Some(line) = line else {
                    return Reply::validation("a review comment needs line (position is deprecated)", "comments", "missing_field");
                };
                let first = start.unwrap_or(line);
                if side != "RIGHT" || first > line || !(first..=line).all(|l| shown.contains(&l)) {
                    return Reply::json(
                        422,
                        json!({"message": "Unprocessable Entity", "errors": ["Line could not be resolved"],
                               "documentation_url": "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request", "status": "422"}),
                    );
                }
                comments.push(ReviewComment { path, line, start_line: start, side, body: c["body"].as_str().unwrap_or_default().to_string() });
            }
            let id = st.id();
            let v = Review {
                id,
                pull_number: n,
                commit_id,
                event: ctx.bs("event").unwrap_or_else(|| "PENDING".into()),
                body: ctx.bs("body").unwrap_or_default(),
                user: ctx.login(),
                comments,
            };
            st.repo_mut(&full).expect("exists").reviews.push(v.clone());
            Reply::json(200, ctx.shaped(200, review_obj(ctx, r, &v)))
        }
        "issues/add-labels" => {
            let n = ctx.num("issue_number");
            let names: Vec<String> = match ctx.body {
                Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                Some(b) => b["labels"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default(),
                None => vec![],
            };
            let repo = st.repo_mut(&full).expect("exists");
            let Some(p) = repo.pulls.iter_mut().find(|p| p.number == n) else { return Reply::error(404, "Not Found") };
            for l in names {
                if !p.labels.contains(&l) {
                    p.labels.push(l);
                }
            }
            let items = p.labels.iter().map(|l| label_obj(l)).collect();
            Reply::json(200, ctx.shaped_list(200, items))
        }
        "issues/remove-label" => {
            let n = ctx.num("issue_number");
            let name = ctx.p("name").to_string();
            let repo = st.repo_mut(&full).expect("exists");
            let Some(p) = repo.pulls.iter_mut().find(|p| p.number == n) else { return Reply::error(404, "Not Found") };
            if !p.labels.contains(&name) {
                return Reply::error(404, "Label does not exist");
            }
            p.labels.retain(|l| *l != name);
            let items = p.labels.iter().map(|l| label_obj(l)).collect();
            Reply::json(200, ctx.shaped_list(200, items))
        }
        "issues/list-comments" => {
            let n = ctx.num("issue_number");
            let mine: Vec<&IssueComment> = r.comments.iter().filter(|c| c.issue_number == n).collect();
            let (per, pg) = ctx.page();
            let items: Vec<Value> = page(&mine, per, pg).iter().map(|c| comment_obj(ctx, r, c)).collect();
            Reply::json(200, ctx.shaped_list(200, items))
        }
        "issues/create-comment" => {
            let n = ctx.num("issue_number");
            if !r.pulls.iter().any(|p| p.number == n) {
                return Reply::error(404, "Not Found");
            }
            let id = st.id();
            let c = IssueComment { id, issue_number: n, body: ctx.bs("body").unwrap_or_default(), user: ctx.login(), edits: 0 };
            st.repo_mut(&full).expect("exists").comments.push(c.clone());
            Reply::json(201, ctx.shaped(201, comment_obj(ctx, r, &c)))
        }
        "issues/update-comment" => {
            let id = ctx.num("comment_id");
            let repo = st.repo_mut(&full).expect("exists");
            let Some(c) = repo.comments.iter_mut().find(|c| c.id == id) else { return Reply::error(404, "Not Found") };
            c.body = ctx.bs("body").unwrap_or_default();
            c.edits += 1;
            let c = c.clone();
            Reply::json(200, ctx.shaped(200, comment_obj(ctx, r, &c)))
        }
        "repos/get-commit" => {
            let Some(sha) = r.resolve(ctx.p("ref")) else { return Reply::validation("No commit found for SHA", "ref", "invalid") };
            let c = &r.commits[&sha];
            let files = r.diff_paths(c.parents.first().map(String::as_str), &sha);
            Reply::json(200, ctx.shaped(200, commit_obj(ctx, r, c, Some(files))))
        }
        "repos/list-commits" => {
            let start = ctx.q("sha").and_then(|s| r.resolve(s)).or_else(|| r.resolve("main"));
            let Some(start) = start else { return Reply::error(404, "Not Found") };
            let (per, pg) = ctx.page();
            let all: Vec<Commit> = r.history(&start, per * pg).into_iter().cloned().collect();
            let items: Vec<Value> = page(&all, per, pg).iter().map(|c| commit_obj(ctx, r, c, None)).collect();
            Reply::json(200, ctx.shaped_list(200, items))
        }
        "repos/get-content" => {
            let rev = ctx.q("ref").map(str::to_string).or_else(|| r.resolve("main"));
            let Some(sha) = rev.and_then(|v| r.resolve(&v)) else { return Reply::error(404, "No commit found for the ref") };
            let path = ctx.p("path");
            let Some((_mode, content)) = r.file(&sha, path) else { return Reply::error(404, "Not Found") };
            let tree = &r.trees[&r.commits[&sha].tree];
            let blob = tree[path].1.clone();
            let large = content.len() > 1_000_000;
            let name = path.rsplit('/').next().unwrap_or(path);
            Reply::json(
                200,
                overlay(
                    ctx.spec.example(ctx.op, 200).filter(|e| e.is_object()).unwrap_or(json!({})),
                    json!({"type": "file", "encoding": if large { "none" } else { "base64" }, "size": content.len(), "name": name, "path": path,
                           "content": if large { String::new() } else { b64_lines(&content) }, "sha": blob,
                           "url": format!("{}/contents/{path}?ref={sha}", ctx.repo_url(r)),
                           "git_url": format!("{}/git/blobs/{blob}", ctx.repo_url(r)),
                           "html_url": format!("https://github.com/{}/blob/{sha}/{path}", r.full_name()),
                           "download_url": format!("https://raw.githubusercontent.com/{}/{sha}/{path}", r.full_name()),
                           "_links": {"self": format!("{}/contents/{path}", ctx.repo_url(r)), "git": null, "html": null}}),
                ),
            )
        }
        "git/get-blob" => match r.blobs.get(ctx.p("file_sha")) {
            Some(b) => Reply::json(
                200,
                ctx.shaped(200, json!({"sha": ctx.p("file_sha"), "content": b64_lines(b), "encoding": "base64", "size": b.len(),
                                       "url": format!("{}/git/blobs/{}", ctx.repo_url(r), ctx.p("file_sha"))})),
            ),
            None => Reply::error(404, "Not Found"),
        },
        "repos/get-branch" => {
            let b = ctx.p("branch");
            let Some(sha) = r.refs.get(&format!("heads/{b}")) else { return Reply::error(404, "Branch not found") };
            let c = &r.commits[sha];
            Reply::json(
                200,
                ctx.shaped(200, json!({"name": b, "commit": commit_obj(ctx, r, c, None), "protected": r.protected.contains(b),
                                       "protection_url": format!("{}/branches/{b}/protection", ctx.repo_url(r))})),
            )
        }
        "git/get-ref" => {
            let name = ctx.p("ref");
            match r.refs.get(name) {
                Some(sha) => Reply::json(
                    200,
                    ctx.shaped(200, json!({"ref": format!("refs/{name}"), "node_id": "REF_1", "url": format!("{}/git/refs/{name}", ctx.repo_url(r)),
                                           "object": {"type": "commit", "sha": sha, "url": format!("{}/git/commits/{sha}", ctx.repo_url(r))}})),
                ),
                None => Reply::error(404, "Not Found"),
            }
        }
        "git/get-commit" => match r.commits.get(ctx.p("commit_sha")) {
            Some(c) => Reply::json(200, ctx.shaped(200, git_commit_obj(ctx, r, c))),
            None => Reply::error(404, "Not Found"),
        },
        "git/create-blob" => {
            let content = ctx.bs("content").unwrap_or_default();
            let bytes = match ctx.bs("encoding").as_deref() {
                Some("base64") => match base64::engine::general_purpose::STANDARD.decode(content.replace('\n', "")) {
                    Ok(b) => b,
                    Err(_) => return Reply::validation("content is not valid Base64", "content", "invalid"),
                },
                _ => content.into_bytes(),
            };
            let sha = st.repo_mut(&full).expect("exists").put_blob(bytes);
            Reply::json(201, json!({"sha": sha, "url": format!("{}/git/blobs/{sha}", ctx.repo_url(r))}))
        }
        "git/create-tree" => {
            let mut tree = match ctx.bs("base_tree") {
                Some(t) => match r.trees.get(&t) {
                    Some(t) => t.clone(),
                    None => return Reply::validation("base_tree is not a tree", "base_tree", "invalid"),
                },
                None => Tree::new(),
            };
            let repo = st.repo_mut(&full).expect("exists");
            for e in ctx.b("tree").and_then(Value::as_array).cloned().unwrap_or_default() {
                let path = e["path"].as_str().unwrap_or("").to_string();
                let mode = e["mode"].as_str().unwrap_or("100644").to_string();
                match (&e["sha"], e.get("content").and_then(Value::as_str)) {
                    (Value::Null, None) if e.get("sha").is_some() => {
                        tree.remove(&path);
                    }
                    (Value::String(sha), _) => {
                        if !repo.blobs.contains_key(sha) {
                            return Reply::validation(&format!("tree.sha {sha} is not a valid blob"), "tree.sha", "invalid");
                        }
                        tree.insert(path, (mode, sha.clone()));
                    }
                    (_, Some(content)) => {
                        let sha = repo.put_blob(content.as_bytes().to_vec());
                        tree.insert(path, (mode, sha));
                    }
                    _ => return Reply::validation("each tree entry needs sha or content", "tree", "invalid"),
                }
            }
            let sha = repo.put_tree(tree.clone());
            let entries: Vec<Value> = tree
                .iter()
                .map(|(p, (m, s))| json!({"path": p, "mode": m, "type": "blob", "sha": s, "size": repo.blobs.get(s).map(Vec::len).unwrap_or(0),
                                          "url": format!("{}/git/blobs/{s}", ctx.repo_url(r))}))
                .collect();
            Reply::json(201, ctx.shaped(201, json!({"sha": sha, "url": format!("{}/git/trees/{sha}", ctx.repo_url(r)), "tree": entries, "truncated": false})))
        }
        "git/create-commit" => {
            let tree = ctx.bs("tree").unwrap_or_default();
            if !r.trees.contains_key(&tree) {
                return Reply::validation("tree is not a valid tree", "tree", "invalid");
            }
            let parents: Vec<String> =
                ctx.b("parents").and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
            if parents.iter().any(|p| !r.commits.contains_key(p)) {
                return Reply::validation("parent is not a valid commit", "parents", "invalid");
            }
            let signed_by_github = matches!(ctx.who, Who::Installation(_)) && ctx.b("author").is_none() && ctx.b("committer").is_none() && ctx.b("signature").is_none();
            let login = ctx.login();
            let n = st.id();
            let mut c = Commit {
                sha: String::new(),
                tree,
                parents,
                message: ctx.bs("message").unwrap_or_default(),
                author_name: ctx.b("author").and_then(|a| a["name"].as_str()).map(str::to_string).unwrap_or(login.clone()),
                author_email: ctx.b("author").and_then(|a| a["email"].as_str()).map(str::to_string).unwrap_or_else(|| format!("{n}+{login}@users.noreply.github.com")),
                author_type: Some(if login.ends_with("[bot]") { "Bot" } else { "User" }.into()),
                author_login: Some(login),
                date: jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                verified: signed_by_github,
            };
            c.sha = object_id("commit", format!("{}{n}", serde_json::to_string(&c).unwrap()).as_bytes());
            st.repo_mut(&full).expect("exists").commits.insert(c.sha.clone(), c.clone());
            Reply::json(201, ctx.shaped(201, git_commit_obj(ctx, r, &c)))
        }
        "git/create-ref" => {
            let full_ref = ctx.bs("ref").unwrap_or_default();
            let Some(name) = full_ref.strip_prefix("refs/").filter(|n| n.contains('/')) else {
                return Reply::validation("ref must start with refs/ and have two slashes", "ref", "invalid");
            };
            let sha = ctx.bs("sha").unwrap_or_default();
            if !r.commits.contains_key(&sha) {
                return Reply::validation("Object does not exist", "sha", "invalid");
            }
            if r.refs.contains_key(name) {
                return Reply::json(422, json!({"message": "Reference already exists", "documentation_url": "https://docs.github.com/rest", "status": "422"}));
            }
            st.repo_mut(&full).expect("exists").refs.insert(name.to_string(), sha.clone());
            Reply::json(
                201,
                ctx.shaped(201, json!({"ref": full_ref, "node_id": "REF_1", "url": format!("{}/git/{full_ref}", ctx.repo_url(r)),
                                       "object": {"type": "commit", "sha": sha, "url": format!("{}/git/commits/{sha}", ctx.repo_url(r))}})),
            )
        }
        "repos/get-collaborator-permission-level" => match r.collaborators.get(ctx.p("username")) {
            Some(p) => Reply::json(
                200,
                ctx.shaped(200, json!({"permission": p, "role_name": p, "user": overlay(user(ctx.p("username")), json!({"role_name": p}))})),
            ),
            None => Reply::error(404, "Not Found"),
        },
        other => Reply::error(501, &format!("the loopback GitHub does not implement {other}")),
    }
}

/// The right-side line numbers a file's diff hunks show (context and added lines).
fn right_side(patch: &str) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    let mut next = 0i64;
    for l in patch.lines() {
        if let Some(rest) = l.strip_prefix("@@ -") {
            let plus = rest.split(' ').nth(1).unwrap_or("+0");
            next = plus.trim_start_matches('+').split(',').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        } else if l.starts_with('+') || l.starts_with(' ') {
            out.insert(next);
            next += 1;
        }
    }
    out
}

fn review_obj(ctx: &Ctx, r: &Repo, v: &Review) -> Value {
    let state = match v.event.as_str() {
        "APPROVE" => "APPROVED",
        "REQUEST_CHANGES" => "CHANGES_REQUESTED",
        "COMMENT" => "COMMENTED",
        _ => "PENDING",
    };
    json!({"id": v.id, "node_id": format!("PRR_{}", v.id), "user": user(&v.user), "body": v.body, "state": state,
           "commit_id": v.commit_id, "author_association": "NONE",
           "html_url": format!("https://github.com/{}/pull/{}#pullrequestreview-{}", r.full_name(), v.pull_number, v.id),
           "pull_request_url": format!("{}/pulls/{}", ctx.repo_url(r), v.pull_number),
           "_links": {"html": {"href": format!("https://github.com/{}/pull/{}#pullrequestreview-{}", r.full_name(), v.pull_number, v.id)},
                      "pull_request": {"href": format!("{}/pulls/{}", ctx.repo_url(r), v.pull_number)}}})
}

fn reaction_obj(x: &Reaction) -> Value {
    json!({"id": x.id, "node_id": format!("REA_{}", x.id), "user": user(&x.user), "content": x.content,
           "created_at": "2024-05-01T10:00:00Z"})
}

fn comment_obj(ctx: &Ctx, r: &Repo, c: &IssueComment) -> Value {
    json!({"id": c.id, "node_id": format!("IC_{}", c.id), "body": c.body, "user": user(&c.user),
           "url": format!("{}/issues/comments/{}", ctx.repo_url(r), c.id),
           "html_url": format!("https://github.com/{}/pull/{}#issuecomment-{}", r.full_name(), c.issue_number, c.id),
           "issue_url": format!("{}/issues/{}", ctx.repo_url(r), c.issue_number),
           "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T10:00:00Z", "author_association": "NONE"})
}
