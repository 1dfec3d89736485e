//! The Grafana dashboard for ci-healer's metrics, built in code and committed as
//! `charts/ci-healer/files/grafana-dashboard.json` (the chart ships it in a ConfigMap labelled
//! `grafana_dashboard`). `make generate` rewrites the file; `tests/observability.rs` fails when the
//! committed copy drifts, and checks that every metric a panel queries exists in a real scrape.
//!
//! The JSON follows Grafana's dashboard model (schema version 39): rows of `stat`, `timeseries`
//! and `table` panels on a 24-column grid, a Prometheus data-source variable, and `namespace` and
//! `repository` variables read from the metrics' labels. Panels query the raw metrics (not the
//! recording rules), so the dashboard works without the PrometheusRule.

use serde_json::{Value, json};

/// Where the chart keeps the generated dashboard, relative to the repository root.
pub const PATH: &str = "charts/ci-healer/files/grafana-dashboard.json";

/// The label filter every run-level query carries.
const SEL: &str = r#"namespace=~"$namespace", repository=~"$repository""#;

struct Grid {
    panels: Vec<Value>,
    id: u64,
    x: u64,
    y: u64,
    row_h: u64,
}

impl Grid {
    fn new() -> Self {
        Self { panels: Vec::new(), id: 0, x: 0, y: 0, row_h: 0 }
    }

    fn next_id(&mut self) -> u64 {
        self.id += 1;
        self.id
    }

    fn row(&mut self, title: &str) {
        self.y += self.row_h;
        self.x = 0;
        self.row_h = 0;
        let id = self.next_id();
        self.panels.push(json!({
            "type": "row", "id": id, "title": title, "collapsed": false, "panels": [],
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
        }));
        self.y += 1;
    }

    fn place(&mut self, w: u64, h: u64, mut panel: Value) {
        if self.x + w > 24 {
            self.y += self.row_h;
            self.x = 0;
            self.row_h = 0;
        }
        panel["id"] = json!(self.next_id());
        panel["gridPos"] = json!({"h": h, "w": w, "x": self.x, "y": self.y});
        panel["datasource"] = datasource();
        self.x += w;
        self.row_h = self.row_h.max(h);
        self.panels.push(panel);
    }
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn targets(queries: &[(&str, &str)]) -> Value {
    let refs = ["A", "B", "C", "D", "E", "F"];
    Value::Array(
        queries
            .iter()
            .zip(refs)
            .map(|((expr, legend), r)| {
                json!({"refId": r, "datasource": datasource(), "expr": expr, "legendFormat": legend, "range": true})
            })
            .collect(),
    )
}

fn stat(title: &str, description: &str, expr: &str, unit: &str) -> Value {
    json!({
        "type": "stat", "title": title, "description": description,
        "targets": targets(&[(expr, "")]),
        "fieldConfig": {"defaults": {"unit": unit, "decimals": if unit == "percentunit" { 1 } else { 0 }}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
                    "colorMode": "value", "graphMode": "none", "textMode": "auto"},
    })
}

fn series(title: &str, description: &str, queries: &[(&str, &str)], unit: &str) -> Value {
    json!({
        "type": "timeseries", "title": title, "description": description,
        "targets": targets(queries),
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10}}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    })
}

fn table(title: &str, description: &str, queries: &[(&str, &str)], unit: &str) -> Value {
    let mut t = targets(queries);
    for q in t.as_array_mut().into_iter().flatten() {
        q["format"] = json!("table");
        q["instant"] = json!(true);
        q["range"] = json!(false);
    }
    json!({
        "type": "table", "title": title, "description": description, "targets": t,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "transformations": [{"id": "merge", "options": {}},
                            {"id": "organize", "options": {"excludeByName": {"Time": true}}}],
        "options": {"showHeader": true},
    })
}

/// Success rate (fixed over fixed + escalated) grouped by `by`, over `window`.
fn success_rate(by: &str, window: &str) -> String {
    format!(
        r#"sum by ({by}) (increase(cihealer_runs_finished_total{{{SEL}, phase="Fixed"}}[{window}])) / sum by ({by}) (increase(cihealer_runs_finished_total{{{SEL}, phase=~"Fixed|Escalated"}}[{window}]))"#
    )
}

fn time_to_fix(q: &str, by: &str, window: &str) -> String {
    quantile("cihealer_time_to_fix_seconds", q, by, window)
}

/// The `q` quantile of histogram `metric` over `window`, grouped `by` (comma-separated labels, or "").
fn quantile(metric: &str, q: &str, by: &str, window: &str) -> String {
    let by = if by.is_empty() { "le".to_string() } else { format!("{by}, le") };
    format!(r#"histogram_quantile({q}, sum by ({by}) (rate({metric}_bucket{{{SEL}}}[{window}])))"#)
}

fn variable(name: &str, label: &str, query: &str) -> Value {
    json!({
        "name": name, "label": label, "type": "query", "datasource": datasource(),
        "query": {"query": query, "refId": name}, "definition": query,
        "includeAll": true, "multi": true, "allValue": ".*",
        "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
        "refresh": 2, "sort": 1,
    })
}

/// The dashboard, as Grafana imports it.
pub fn dashboard() -> Value {
    let mut g = Grid::new();
    let finished =
        |phase: &str| format!(r#"sum(increase(cihealer_runs_finished_total{{{SEL}, phase="{phase}"}}[$__range]))"#);

    g.row("Fleet");
    g.place(4, 4, stat("Fixed", "Runs that reached Fixed in the time range.", &finished("Fixed"), "short"));
    g.place(4, 4, stat("Escalated", "Runs escalated to people in the time range.", &finished("Escalated"), "short"));
    g.place(4, 4, stat("Aborted", "Runs a person aborted in the time range.", &finished("Aborted"), "short"));
    g.place(4, 4, stat("Success rate", "Fixed / (Fixed + Escalated) in the time range.",
        &format!(r#"sum(increase(cihealer_runs_finished_total{{{SEL}, phase="Fixed"}}[$__range])) / sum(increase(cihealer_runs_finished_total{{{SEL}, phase=~"Fixed|Escalated"}}[$__range]))"#), "percentunit"));
    g.place(
        4,
        4,
        stat(
            "Time to fix (median)",
            "Delivery of the failure to a validated fix, 50th percentile.",
            &time_to_fix("0.5", "", "$__range"),
            "s",
        ),
    );
    g.place(
        4,
        4,
        stat(
            "Time to fix (p95)",
            "Delivery of the failure to a validated fix, 95th percentile.",
            &time_to_fix("0.95", "", "$__range"),
            "s",
        ),
    );
    g.place(
        12,
        8,
        series(
            "Runs by phase (now)",
            "HealingRuns in the controller's cache; Queued is the work waiting.",
            &[(r#"sum by (phase) (cihealer_runs{namespace=~"$namespace"})"#, "{{phase}}")],
            "short",
        ),
    );
    g.place(
        12,
        8,
        series(
            "Runs finished",
            "Runs reaching a final phase, per hour.",
            &[(&format!(r#"sum by (phase) (increase(cihealer_runs_finished_total{{{SEL}}}[1h]))"#), "{{phase}}")],
            "short",
        ),
    );
    g.place(
        24,
        8,
        series(
            "Time to fix and time to pull request (p95)",
            "95th percentile over 1 hour, from the failure's delivery to a validated fix and to the draft pull request (mode: pull-request).",
            &[
                (&time_to_fix("0.95", "", "1h"), "time to fix"),
                (&quantile("cihealer_time_to_pr_seconds", "0.95", "", "1h"), "time to pull request"),
            ],
            "s",
        ),
    );

    g.row("By repository, class and agent");
    g.place(
        12,
        8,
        table(
            "Repositories",
            "Per repository over the time range: success rate, runs finished, p95 time to fix.",
            &[
                (&success_rate("namespace, repository", "$__range"), "success rate"),
                (
                    &format!(
                        r#"sum by (namespace, repository) (increase(cihealer_runs_finished_total{{{SEL}}}[$__range]))"#
                    ),
                    "runs",
                ),
                (&time_to_fix("0.95", "namespace, repository", "$__range"), "time to fix p95"),
            ],
            "short",
        ),
    );
    g.place(
        12,
        8,
        series(
            "Time to fix p95 by repository",
            "95th percentile over 1 hour.",
            &[(&time_to_fix("0.95", "repository", "1h"), "{{repository}}")],
            "s",
        ),
    );
    g.place(
        8,
        8,
        series(
            "Success rate by failure class",
            "Fixed / (Fixed + Escalated) over 6 hours.",
            &[(&success_rate("failure_class", "6h"), "{{failure_class}}")],
            "percentunit",
        ),
    );
    g.place(
        8,
        8,
        series(
            "Success rate by agent",
            "Fixed / (Fixed + Escalated) over 6 hours, by agent profile.",
            &[(&success_rate("agent", "6h"), "{{agent}}")],
            "percentunit",
        ),
    );
    g.place(
        8,
        8,
        series(
            "Time to fix p95 by class",
            "95th percentile over 1 hour.",
            &[(&time_to_fix("0.95", "failure_class", "1h"), "{{failure_class}}")],
            "s",
        ),
    );

    g.row("Attempts");
    g.place(
        8,
        8,
        series(
            "Attempts finished by reason",
            "Per hour.",
            &[(
                &format!(r#"sum by (outcome, reason) (increase(cihealer_attempts_finished_total{{{SEL}}}[1h]))"#),
                "{{outcome}} {{reason}}",
            )],
            "short",
        ),
    );
    g.place(8, 8, series("Attempts per finished run", "Mean attempts a run started, by final phase.",
        &[(r#"sum by (phase) (rate(cihealer_run_attempts_sum{namespace=~"$namespace"}[1h])) / sum by (phase) (rate(cihealer_run_attempts_count{namespace=~"$namespace"}[1h]))"#, "{{phase}}")], "short"));
    g.place(
        8,
        8,
        series(
            "Step duration p95",
            "Checkout, agent and validate steps of attempt pods, 95th percentile over 1 hour.",
            &[(
                "histogram_quantile(0.95, sum by (step, le) (rate(cihealer_attempt_step_duration_seconds_bucket[1h])))",
                "{{step}}",
            )],
            "s",
        ),
    );

    g.row("Escalations, dedup and skips");
    g.place(
        8,
        8,
        series(
            "Escalations by repository",
            "Runs escalated to people, per hour.",
            &[(
                &format!(
                    r#"sum by (repository) (increase(cihealer_runs_finished_total{{{SEL}, phase="Escalated"}}[1h]))"#
                ),
                "{{repository}}",
            )],
            "short",
        ),
    );
    g.place(8, 8, series("Escalation share", "Escalated / finished over 6 hours (the alert fires above 30 %).",
        &[(&format!(r#"sum(increase(cihealer_runs_finished_total{{{SEL}, phase="Escalated"}}[6h])) / sum(increase(cihealer_runs_finished_total{{{SEL}}}[6h]))"#), "escalated")], "percentunit"));
    g.place(
        8,
        8,
        series(
            "Deduplicated and skipped runs",
            "Per hour: duplicates of an active run; runs not healed, by reason.",
            &[
                (&format!(r#"sum(increase(cihealer_runs_deduplicated_total{{{SEL}}}[1h]))"#), "deduplicated"),
                (
                    r#"sum by (reason) (increase(cihealer_runs_skipped_total{namespace=~"$namespace"}[1h]))"#,
                    "skipped: {{reason}}",
                ),
            ],
            "short",
        ),
    );

    g.row("LLM tokens and cost");
    g.place(
        8,
        8,
        series(
            "Tokens",
            "LLM tokens per hour, by model and direction.",
            &[(
                r#"sum by (model, direction) (increase(cihealer_llm_tokens_total{namespace=~"$namespace"}[1h]))"#,
                "{{model}} {{direction}}",
            )],
            "short",
        ),
    );
    g.place(
        8,
        8,
        series(
            "Estimated cost",
            "US dollars per hour, from the profiles' price tables.",
            &[(r#"sum by (model) (increase(cihealer_llm_cost_usd_total{namespace=~"$namespace"}[1h]))"#, "{{model}}")],
            "currencyUSD",
        ),
    );
    g.place(8, 8, stat("Cost per fix", "Estimated LLM cost over the time range divided by the runs fixed.",
        &format!(r#"sum(increase(cihealer_llm_cost_usd_total{{namespace=~"$namespace"}}[$__range])) / sum(increase(cihealer_runs_finished_total{{{SEL}, phase="Fixed"}}[$__range]))"#), "currencyUSD"));

    g.row("Controller health");
    g.place(
        6,
        8,
        series(
            "Reconciles and errors",
            "Per second, by controller; errors by reason.",
            &[
                ("sum by (controller) (rate(cihealer_reconciles_total[5m]))", "{{controller}}"),
                (
                    "sum by (controller, reason) (rate(cihealer_reconcile_errors_total[5m]))",
                    "{{controller}} error {{reason}}",
                ),
            ],
            "reqps",
        ),
    );
    g.place(6, 8, series("Reconcile duration p99", "By controller.",
        &[("histogram_quantile(0.99, sum by (controller, le) (rate(cihealer_reconcile_duration_seconds_bucket[5m])))", "{{controller}}")], "s"));
    g.place(
        6,
        8,
        series(
            "Since the last reconcile",
            "Seconds since a reconcile finished, by controller.",
            &[("time() - max by (controller) (cihealer_last_reconcile_timestamp_seconds)", "{{controller}}")],
            "s",
        ),
    );
    g.place(
        6,
        8,
        series(
            "Leader, Jobs and status writes",
            "Replicas holding the Lease; Jobs created and status writes per second.",
            &[
                ("sum(cihealer_leader)", "leaders"),
                ("sum(rate(cihealer_jobs_created_total[5m]))", "Jobs created"),
                ("sum by (controller) (rate(cihealer_status_writes_total[5m]))", "status writes {{controller}}"),
            ],
            "short",
        ),
    );
    g.place(
        12,
        8,
        series(
            "GitHub calls",
            "GitHub REST calls per second by outcome (rate_limited: GitHub asked the controller to wait).",
            &[("sum by (outcome) (rate(cihealer_github_requests_total[5m]))", "{{outcome}}")],
            "reqps",
        ),
    );
    g.place(
        12,
        8,
        series(
            "GitHub rate-limit waits",
            "Seconds of rate-limit wait GitHub asked for, per hour, by operation.",
            &[("sum by (operation) (increase(cihealer_github_rate_limit_wait_seconds_sum[1h]))", "{{operation}}")],
            "s",
        ),
    );
    g.place(
        24,
        3,
        stat("Version", "The running controller's version.", "max by (version) (cihealer_build_info)", "short"),
    );
    if let Some(last) = g.panels.last_mut() {
        last["options"]["textMode"] = json!("name");
        last["targets"][0]["legendFormat"] = json!("{{version}}");
    }

    json!({
        "title": "ci-healer",
        "uid": "ci-healer",
        "description": "Runs, time to fix, success by repository, class and agent, LLM tokens and cost, controller health.",
        "tags": ["ci-healer", "kubernetes"],
        "editable": true,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "timezone": "",
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1},
            variable("namespace", "Namespace", "label_values(cihealer_runs, namespace)"),
            variable("repository", "Repository", r#"label_values(cihealer_runs_finished_total{namespace=~"$namespace"}, repository)"#),
        ]},
        "panels": g.panels,
    })
}

/// The dashboard as the committed file holds it (pretty JSON and a final newline).
pub fn dashboard_json() -> String {
    let mut s = serde_json::to_string_pretty(&dashboard()).expect("a JSON value serialises");
    s.push('\n');
    s
}

/// Every `cihealer_…` metric family the panels and variables query (counters by their family name,
/// histogram series by the histogram's name).
pub fn queried_metrics() -> std::collections::BTreeSet<String> {
    let text = dashboard().to_string();
    let mut out = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices("cihealer_") {
        let name: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        let family = ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_string();
        out.insert(family);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_do_not_overlap_and_ids_are_unique() {
        let d = dashboard();
        let panels = d["panels"].as_array().unwrap();
        let mut ids = std::collections::HashSet::new();
        let mut cells = std::collections::HashSet::new();
        for p in panels {
            assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate id");
            let g = &p["gridPos"];
            let (x, y, w, h) = (
                g["x"].as_u64().unwrap(),
                g["y"].as_u64().unwrap(),
                g["w"].as_u64().unwrap(),
                g["h"].as_u64().unwrap(),
            );
            assert!(x + w <= 24, "{} is wider than the grid", p["title"]);
            for cx in x..x + w {
                for cy in y..y + h {
                    assert!(cells.insert((cx, cy)), "{} overlaps another panel", p["title"]);
                }
            }
        }
    }

    #[test]
    fn queries_name_only_catalogued_metrics() {
        let known: std::collections::HashSet<_> = crate::telemetry::CATALOGUE.iter().map(|m| m.name).collect();
        let queried = queried_metrics();
        assert!(queried.len() >= 10, "{queried:?}");
        for m in &queried {
            assert!(known.contains(m.as_str()), "the dashboard queries {m}, which the controller does not export");
        }
    }
}
