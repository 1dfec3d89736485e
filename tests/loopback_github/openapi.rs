//! GitHub's own OpenAPI description (`@octokit/openapi`, `generated/api.github.com.json`, installed by
//! `hack/install-test-tools.sh`): which operation a request is, whether the request is one GitHub
//! would accept (method, path, parameters, required fields, field types), the example answer of the
//! operation, and whether an answer has the documented shape.
//!
//! Schemas are OpenAPI 3.0 Schema Objects; they are checked with the `jsonschema` crate as JSON
//! Schema draft 4 after the OpenAPI-only keywords are translated: `nullable: true` becomes
//! `anyOf [schema, {type: null}]`, `$ref`s to `#/components/schemas/*` are bundled as
//! `definitions`, `oneOf` is checked as `anyOf` (GitHub's description has `oneOf`s whose branches
//! overlap, which real GitHub accepts), and `format` is not asserted (GitHub uses its own formats,
//! such as `repo.nwo`).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{Map, Value, json};

/// The pinned package version (`hack/install-test-tools.sh` installs it).
pub const OCTOKIT_OPENAPI_VERSION: &str = "23.0.2";

/// Where the description is: `$CIHEALER_GITHUB_OPENAPI`, else the test-tools cache.
pub fn spec_path() -> PathBuf {
    if let Ok(p) = std::env::var("CIHEALER_GITHUB_OPENAPI") {
        return PathBuf::from(p);
    }
    let cache = std::env::var("CIHEALER_CACHE").map(PathBuf::from).unwrap_or_else(|_| {
        let base = std::env::var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache"));
        base.join("ci-healer")
    });
    cache.join(format!("tools/octokit-openapi-{OCTOKIT_OPENAPI_VERSION}/api.github.com.json"))
}

/// One operation of the description.
#[derive(Debug)]
pub struct Operation {
    /// `operationId`, e.g. `pulls/create`.
    pub id: String,
    /// Lowercase method.
    pub method: String,
    /// The path template, e.g. `/repos/{owner}/{repo}/pulls`.
    pub template: String,
    segments: Vec<String>,
    op: Value,
}

/// The loaded description.
pub struct Spec {
    doc: Value,
    ops: Vec<Operation>,
    validators: Mutex<HashMap<String, Option<Arc<jsonschema::Validator>>>>,
}

static SPEC: LazyLock<Arc<Spec>> = LazyLock::new(|| {
    let p = spec_path();
    let text = std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "GitHub's OpenAPI description is not at {} ({e}): run `make tools` (hack/install-test-tools.sh installs @octokit/openapi@{OCTOKIT_OPENAPI_VERSION})",
            p.display()
        )
    });
    Arc::new(Spec::parse(&text))
});

/// The description, loaded once per process.
pub fn spec() -> Arc<Spec> {
    SPEC.clone()
}

/// A request as the checker sees it.
pub struct RequestView<'a> {
    /// Uppercase or lowercase method.
    pub method: &'a str,
    /// The path, without the API prefix and query.
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// The JSON body, when one was sent.
    pub body: Option<&'a Value>,
    /// Whether bytes were sent that are not JSON.
    pub body_not_json: bool,
}

/// Percent-decode a path segment (`plus_is_space`: a query component, where `+` is a space).
pub fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if plus_is_space && b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parameters and their values matched from a path.
pub type PathParams = HashMap<String, String>;

impl Spec {
    fn parse(text: &[u8]) -> Self {
        let doc: Value = serde_json::from_slice(text).expect("the OpenAPI description is JSON");
        let mut ops = Vec::new();
        for (template, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    continue;
                }
                ops.push(Operation {
                    id: op["operationId"].as_str().unwrap_or("").to_string(),
                    method: method.clone(),
                    template: template.clone(),
                    segments: template.trim_start_matches('/').split('/').map(str::to_string).collect(),
                    op: op.clone(),
                });
            }
        }
        Self { doc, ops, validators: Mutex::new(HashMap::new()) }
    }

    /// The operation `path` and `method` are, with its path parameters. A template's last parameter
    /// may span several segments (`/contents/{path}`, `/git/ref/{ref}`, `/branches/{branch}`), as
    /// GitHub's routes allow. Literal segments win over parameters.
    pub fn find(&self, method: &str, path: &str) -> Option<(&Operation, PathParams)> {
        let m = method.to_ascii_lowercase();
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut best: Option<(usize, &Operation, PathParams)> = None;
        for op in self.ops.iter().filter(|o| o.method == m) {
            let n = op.segments.len();
            // Only parameters GitHub documents as holding slashes may span segments.
            let greedy_last = op.segments.last().is_some_and(|s| matches!(s.as_str(), "{path}" | "{ref}" | "{branch}"));
            if !(segs.len() == n || (greedy_last && segs.len() > n)) {
                continue;
            }
            let mut params = PathParams::new();
            let mut literals = 0;
            let mut ok = true;
            for (i, t) in op.segments.iter().enumerate() {
                let value = if i == n - 1 && segs.len() > n { segs[i..].join("/") } else { segs[i].to_string() };
                if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    if value.is_empty() {
                        ok = false;
                        break;
                    }
                    params.insert(name.to_string(), decode(&value, false));
                } else if *t == value {
                    literals += 1;
                } else {
                    ok = false;
                    break;
                }
            }
            let exact = (segs.len() == n) as usize;
            let score = literals * 2 + exact;
            if ok && best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, op, params));
            }
        }
        best.map(|(_, o, p)| (o, p))
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let ptr = r.trim_start_matches('#');
                self.doc.pointer(ptr).unwrap_or(v)
            }
            None => v,
        }
    }

    /// Every way `req` differs from what GitHub documents for its operation (empty: it is a request
    /// GitHub would accept).
    pub fn check_request(&self, op: &Operation, params: &PathParams, req: &RequestView<'_>) -> Vec<String> {
        let mut problems = Vec::new();
        let declared: Vec<&Value> = op
            .op
            .get("parameters")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|p| self.resolve(p)).collect())
            .unwrap_or_default();
        for p in &declared {
            let name = p["name"].as_str().unwrap_or("");
            let schema = &p["schema"];
            let value = match p["in"].as_str() {
                Some("path") => params.get(name).cloned(),
                Some("query") => req.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
                _ => continue,
            };
            match value {
                None if p["required"].as_bool() == Some(true) => {
                    problems.push(format!("{}: missing required parameter {name}", op.id))
                }
                None => {}
                Some(v) => {
                    if let Some(why) = self.check_scalar(schema, &v) {
                        problems.push(format!("{}: parameter {name}={v:?} {why}", op.id));
                    }
                }
            }
        }
        for (k, _) in req.query {
            if !declared.iter().any(|p| p["in"] == "query" && p["name"] == k.as_str()) {
                problems.push(format!("{}: query parameter {k} is not documented", op.id));
            }
        }
        let body_spec = op.op.get("requestBody").map(|b| self.resolve(b));
        match (body_spec, req.body) {
            (None, Some(b)) if !b.as_object().is_some_and(Map::is_empty) => {
                problems.push(format!("{}: sends a body, which the operation does not take", op.id))
            }
            (Some(spec), None) if spec["required"].as_bool() == Some(true) => {
                problems.push(format!("{}: the request body is required", op.id))
            }
            (Some(spec), Some(body)) => {
                let schema = &spec["content"]["application/json"]["schema"];
                if schema.is_null() {
                    problems.push(format!("{}: the operation takes no JSON body", op.id));
                } else if let Some(v) = self.validator(&format!("{} request", op.id), schema) {
                    for e in v.iter_errors(body) {
                        problems.push(format!("{}: request body {}: {e}", op.id, e.instance_path()));
                    }
                }
            }
            _ => {}
        }
        if req.body_not_json {
            problems.push(format!("{}: the request body is not JSON", op.id));
        }
        problems
    }

    fn check_scalar(&self, schema: &Value, v: &str) -> Option<String> {
        let schema = self.resolve(schema);
        if let Some(values) = schema.get("enum").and_then(Value::as_array)
            && !values.iter().any(|e| e.as_str() == Some(v))
        {
            return Some(format!("is not one of {values:?}"));
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("integer") if v.parse::<i64>().is_err() => Some("is not an integer".into()),
            Some("boolean") if v != "true" && v != "false" => Some("is not a boolean".into()),
            _ => None,
        }
    }

    /// The documented example answer of `op` for `status`, if the description has one.
    pub fn example(&self, op: &Operation, status: u16) -> Option<Value> {
        let resp = self.resolve(op.op.get("responses")?.get(status.to_string())?);
        let examples = resp.get("content")?.get("application/json")?.get("examples")?.as_object()?;
        let first = examples.get("default").or_else(|| examples.values().next())?;
        Some(self.resolve(first).get("value")?.clone())
    }

    /// Every way `body` differs from the documented answer of `op` for `status` (empty when it
    /// matches or the description has no schema for it).
    pub fn check_response(&self, op: &Operation, status: u16, body: &Value) -> Vec<String> {
        let Some(resp) = op.op.get("responses").and_then(|r| r.get(status.to_string())) else {
            return if (200..300).contains(&status) {
                vec![format!("{}: status {status} is not documented", op.id)]
            } else {
                vec![]
            };
        };
        let schema = &self.resolve(resp)["content"]["application/json"]["schema"];
        if schema.is_null() {
            return vec![];
        }
        match self.validator(&format!("{} {status}", op.id), schema) {
            Some(v) => {
                v.iter_errors(body).map(|e| format!("{} answer {status} {}: {e}", op.id, e.instance_path())).collect()
            }
            None => vec![],
        }
    }

    fn validator(&self, key: &str, schema: &Value) -> Option<Arc<jsonschema::Validator>> {
        if let Some(v) = self.validators.lock().unwrap().get(key) {
            return v.clone();
        }
        let mut defs = BTreeSet::new();
        let mut root = self.convert(schema, &mut defs);
        let mut definitions = Map::new();
        let mut todo: Vec<String> = defs.iter().cloned().collect();
        while let Some(name) = todo.pop() {
            if definitions.contains_key(&name) {
                continue;
            }
            let mut more = BTreeSet::new();
            let s = &self.doc["components"]["schemas"][&name];
            definitions.insert(name.clone(), self.convert(s, &mut more));
            todo.extend(more.into_iter().filter(|m| !definitions.contains_key(m)));
        }
        if let Value::Object(m) = &mut root {
            m.insert("definitions".into(), Value::Object(definitions));
        } else {
            root = json!({"allOf": [root], "definitions": definitions});
        }
        let built = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(false)
            .build(&root)
            .map_err(|e| eprintln!("[loopback-github] cannot compile the schema of {key}: {e}"))
            .ok()
            .map(Arc::new);
        self.validators.lock().unwrap().insert(key.to_string(), built.clone());
        built
    }

    /// An OpenAPI 3.0 Schema Object as JSON Schema draft 4 (see the module docs).
    fn convert(&self, s: &Value, defs: &mut BTreeSet<String>) -> Value {
        let Some(obj) = s.as_object() else { return s.clone() };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            if let Some(name) = r.strip_prefix("#/components/schemas/") {
                defs.insert(name.to_string());
                return json!({"$ref": format!("#/definitions/{name}")});
            }
            return self.convert(self.resolve(s), defs);
        }
        let mut out = Map::new();
        for (k, v) in obj {
            match k.as_str() {
                "properties" | "patternProperties" => {
                    let props =
                        v.as_object().map(|m| m.iter().map(|(pk, pv)| (pk.clone(), self.convert(pv, defs))).collect());
                    out.insert(k.clone(), Value::Object(props.unwrap_or_default()));
                }
                "items" | "not" => {
                    out.insert(k.clone(), self.convert(v, defs));
                }
                "additionalProperties" => {
                    out.insert(k.clone(), if v.is_object() { self.convert(v, defs) } else { v.clone() });
                }
                "allOf" | "anyOf" | "oneOf" => {
                    let list: Vec<Value> =
                        v.as_array().map(|a| a.iter().map(|x| self.convert(x, defs)).collect()).unwrap_or_default();
                    let key = if k == "oneOf" { "anyOf" } else { k.as_str() };
                    out.insert(key.into(), Value::Array(list));
                }
                "required" if v.as_array().is_some_and(Vec::is_empty) => {}
                "type" | "enum" | "required" | "minimum" | "maximum" | "minLength" | "maxLength" | "pattern"
                | "minItems" | "maxItems" | "uniqueItems" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf"
                | "minProperties" | "maxProperties" => {
                    out.insert(k.clone(), v.clone());
                }
                _ => {} // description, example, nullable, format, readOnly, discriminator, x-*: not assertions
            }
        }
        let converted = Value::Object(out);
        if obj.get("nullable").and_then(Value::as_bool) == Some(true) {
            json!({"anyOf": [converted, {"type": "null"}]})
        } else {
            converted
        }
    }
}
