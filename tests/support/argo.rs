//! An evaluator of the parts of an Argo Events Sensor that ci-healer's Sensor uses, following the Argo
//! Events documentation (sensors/filters/data.md, filters/expr.md, triggers/trigger-parameterization.md):
//!
//! - the event payload of a GitHub EventSource is `{"headers": {Name: [values]}, "body": <delivery>}`;
//! - data filters: `path` is a gjson path; string values are regular expressions, any may match; all
//!   filters must pass (`dataLogicalOperator: and`);
//! - expr filters: govaluate expressions over named gjson `fields`; the subset used here is clauses
//!   joined by `&&` with `==`, `!=`, `=~`, `!~` against string literals;
//! - parameters: `dataKey` (gjson path) or `dataTemplate` (Go template over `.Input`), then set at
//!   `dest` (an sjson path) as a string, or as raw JSON with `useRawData: true`.
//!
//! Unsupported syntax panics, so the Sensor cannot drift into something this evaluator misreads.

use serde_json::{Map, Value};

/// A GitHub EventSource event: headers as Go's `http.Header` (canonical names, list values) and body.
pub fn github_event(event: &str, delivery: &str, body: &Value) -> String {
    serde_json::json!({
        "headers": {"X-Github-Event": [event], "X-Github-Delivery": [delivery], "Content-Type": ["application/json"]},
        "body": body,
    })
    .to_string()
}

/// Evaluate the first dependency's filters and the first trigger's k8s resource for `event`.
/// Returns `None` when the filters drop the event.
pub fn apply_sensor(sensor: &Value, event: &str) -> Option<Value> {
    let dep = &sensor["spec"]["dependencies"][0];
    if !passes_filters(&dep["filters"], event) {
        return None;
    }
    let k8s = &sensor["spec"]["triggers"][0]["template"]["k8s"];
    assert_eq!(k8s["operation"], "create", "the trigger must create, so a redelivery collides");
    let mut resource = k8s["source"]["resource"].clone();
    for p in k8s["parameters"].as_array().expect("parameters") {
        let src = &p["src"];
        let raw = src["useRawData"].as_bool().unwrap_or(false);
        let value: Value = if let Some(key) = src["dataKey"].as_str() {
            let v = gjson::get(event, key);
            assert!(v.exists(), "dataKey {key} not found in the event");
            if raw { serde_json::from_str(v.json()).expect("raw JSON") } else { Value::String(v.to_string()) }
        } else if let Some(t) = src["dataTemplate"].as_str() {
            Value::String(render_template(t, event))
        } else {
            panic!("parameter without dataKey or dataTemplate: {p}");
        };
        set_path(&mut resource, p["dest"].as_str().expect("dest"), value);
    }
    Some(resource)
}

fn passes_filters(filters: &Value, event: &str) -> bool {
    if let Some(op) = filters["dataLogicalOperator"].as_str() {
        assert_eq!(op, "and", "only dataLogicalOperator: and is evaluated");
    }
    for f in filters["data"].as_array().into_iter().flatten() {
        assert_eq!(f["type"], "string", "only string data filters are evaluated");
        let v = gjson::get(event, f["path"].as_str().unwrap());
        if !v.exists() {
            return false;
        }
        let s = v.to_string();
        let any = f["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|re| regex::Regex::new(re.as_str().unwrap()).unwrap().is_match(&s));
        if !any {
            return false;
        }
    }
    for e in filters["exprs"].as_array().into_iter().flatten() {
        let fields: Vec<(String, String)> = e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (f["name"].as_str().unwrap().to_string(), gjson::get(event, f["path"].as_str().unwrap()).to_string())
            })
            .collect();
        if !eval_expr(e["expr"].as_str().unwrap(), &fields) {
            return false;
        }
    }
    true
}

fn eval_expr(expr: &str, fields: &[(String, String)]) -> bool {
    let clause = regex::Regex::new(r#"^\s*(\w+)\s*(==|!=|=~|!~)\s*"((?:[^"\\]|\\.)*)"\s*$"#).unwrap();
    expr.split("&&").all(|c| {
        let m = clause.captures(c).unwrap_or_else(|| panic!("unsupported expr clause: {c}"));
        let field = &fields.iter().find(|(n, _)| n == &m[1]).unwrap_or_else(|| panic!("unknown field {}", &m[1])).1;
        // govaluate string literals unescape backslashes.
        let lit = m[3].replace("\\\\", "\\").replace("\\\"", "\"");
        match &m[2] {
            "==" => field == &lit,
            "!=" => field != &lit,
            "=~" => regex::Regex::new(&lit).unwrap().is_match(field),
            "!~" => !regex::Regex::new(&lit).unwrap().is_match(field),
            _ => unreachable!(),
        }
    })
}

fn render_template(t: &str, event: &str) -> String {
    let re = regex::Regex::new(r"\{\{\s*\.Input\.([A-Za-z0-9_.\-]+)\s*\}\}").unwrap();
    let out = re.replace_all(t, |c: &regex::Captures| {
        let v = gjson::get(event, &c[1]);
        assert!(v.exists(), "template key {} not found", &c[1]);
        v.to_string()
    });
    assert!(!out.contains("{{"), "unsupported template syntax in {t}");
    out.into_owned()
}

fn set_path(obj: &mut Value, path: &str, value: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            cur.as_object_mut().expect("object at dest").insert(part.to_string(), value);
            return;
        }
        let map = cur.as_object_mut().expect("object on dest path");
        cur = map.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
}
