//! The metrics catalogue (docs/metrics.md), the engine's `/metrics` and the Grafana dashboards agree:
//! a real `panoptes serve` with its demo file camera and an enrolled person, scraped by a real
//! Prometheus (Debian's) configured from the root `prometheus.yml`, answers every dashboard query with
//! data, and exports exactly the metrics the catalogue lists, with the catalogued types.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, KillOnDrop};

fn get_text(url: &str) -> Option<String> {
    ureq::get(url).timeout(Duration::from_secs(10)).call().ok()?.into_string().ok()
}

/// (name → type) from the catalogue's tables: rows whose first cell is a `code` name.
fn catalogue() -> BTreeMap<String, String> {
    let doc = std::fs::read_to_string(common::root().join("docs/metrics.md")).expect("docs/metrics.md");
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_string(), cells.get(2)?.to_string()))
        })
        .collect()
}

/// (name → type) from the `# TYPE` lines of an exposition.
fn exported(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("# TYPE ")?.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect()
}

/// Every PromQL expression of every dashboard, with the dashboard's file name; a `label_values(m, l)`
/// variable query becomes the query `m` (it has data when the series exist).
fn dashboard_queries() -> Vec<(String, String)> {
    let dir = common::root().join("grafana/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("grafana/dashboards").flatten().map(|e| e.path()).collect();
    files.sort();
    let mut out = Vec::new();
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("dashboard JSON");
        for panel in d["panels"].as_array().expect("panels") {
            for t in panel["targets"].as_array().expect("targets") {
                out.push((format!("{name}: {}", panel["title"]), t["expr"].as_str().expect("expr").to_string()));
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let def = v["definition"].as_str().unwrap_or_default();
            let inner = def.strip_prefix("label_values(").and_then(|s| s.strip_suffix(')')).expect("label_values");
            out.push((format!("{name}: variable {}", v["name"]), inner.split(',').next().unwrap().trim().to_string()));
        }
    }
    assert!(out.len() > 40, "the dashboards hold {} queries", out.len());
    out
}

/// What Grafana substitutes before sending a query.
fn as_grafana_sends(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m").replace("$camera", ".*")
}

fn has_data(prometheus: u16, expr: &str) -> Result<bool, String> {
    let url = format!("http://127.0.0.1:{prometheus}/api/v1/query");
    let body: serde_json::Value = ureq::get(&url)
        .query("query", &as_grafana_sends(expr))
        .timeout(Duration::from_secs(10))
        .call()
        .map_err(|e| format!("{e}"))?
        .into_json()
        .map_err(|e| format!("{e}"))?;
    if body["status"] != "success" {
        return Err(body.to_string());
    }
    Ok(body["data"]["result"].as_array().is_some_and(|r| !r.is_empty()))
}

#[tokio::test]
async fn a_real_prometheus_finds_data_for_every_dashboard_query_and_every_catalogued_metric() {
    let root = common::root();
    let config = root.join("prometheus.yml");
    let check = Command::new("promtool").arg("check").arg("config").arg(&config).output().expect("promtool");
    assert!(check.status.success(), "promtool: {}", String::from_utf8_lossy(&check.stderr));
    assert!(Path::new(&root.join(".local/demo/lobby.h264")).is_file(), "scripts/setup.sh makes the demo clip");

    // Obama is enrolled before the engine starts; the demo camera (his photo, looped) will match.
    let db = common::fresh_database().await;
    common::enroll_with_cli(&db, "Barack Obama", "obama.jpg");

    let (port, prom_port) = (free_port(), free_port());
    let work = common::temp_dir("metrics");
    let _engine =
        KillOnDrop(common::serve_command(&db, port, &work.join("snapshots")).spawn().expect("start panoptes serve"));
    let api = format!("http://127.0.0.1:{port}");
    let health = format!("{api}/healthz");
    common::eventually(
        "the engine answers /healthz",
        Duration::from_secs(60),
        || async { get_text(&health) },
        |h| h.is_some(),
    )
    .await;

    // The project's prometheus.yml, pointed at this engine and scraping every second.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("127.0.0.1:8080") && text.contains("scrape_interval: 15s"), "{text}");
    let text = text
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("scrape_interval: 15s", "scrape_interval: 1s");
    std::fs::write(work.join("prometheus.yml"), text).unwrap();
    let _prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", common::path_str(&work.join("prometheus.yml"))))
            .arg(format!("--storage.tsdb.path={}", common::path_str(&work.join("tsdb"))))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus (scripts/setup.sh installs it)"),
    );

    // Operators' traffic meanwhile: camera list (cache), a person lookup, a missing resource (404).
    let queries = dashboard_queries();
    let deadline = Instant::now() + Duration::from_secs(120);
    let missing = loop {
        for path in
            ["/api/v1/cameras", "/api/v1/cameras", "/api/v1/persons/1", "/api/v1/persons/1", "/api/v1/cameras/999999"]
        {
            let _ = get_text(&format!("{api}{path}"));
        }
        let missing: Vec<String> = queries
            .iter()
            .filter_map(|(panel, expr)| match has_data(prom_port, expr) {
                Ok(true) => None,
                Ok(false) => Some(format!("{panel}: no data for {expr}")),
                Err(e) => Some(format!("{panel}: {expr} failed: {e}")),
            })
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(missing.is_empty(), "{} of {} dashboard queries:\n{}", missing.len(), queries.len(), missing.join("\n"));

    // The exposition holds exactly the catalogue, type for type.
    let exposition = get_text(&format!("{api}/metrics")).expect("/metrics");
    let (documented, exported) = (catalogue(), exported(&exposition));
    let undocumented: BTreeSet<_> = exported.keys().filter(|k| !documented.contains_key(*k)).collect();
    let unexported: BTreeSet<_> = documented.keys().filter(|k| !exported.contains_key(*k)).collect();
    assert!(undocumented.is_empty(), "exported but not in docs/metrics.md: {undocumented:?}");
    assert!(unexported.is_empty(), "in docs/metrics.md but not exported: {unexported:?}");
    for (name, kind) in &exported {
        assert_eq!(&documented[name], kind, "type of {name}");
    }
    // Route labels are patterns, never raw paths with ids.
    assert!(exposition.contains("route=\"/api/v1/cameras/{id}\""), "route patterns");
    assert!(!exposition.contains("/api/v1/cameras/999999"), "raw paths must not become labels");
}
