//! PostgreSQL goes away for 20 s while detections flow, then comes back, under a real `panoptes
//! serve` (Obama enrolled; a camera whose clip shows him for 1 s in every 2.5 s, with a 1 s cooldown,
//! so each showing is a new appearance and an event): the engine keeps running,
//! `/readyz` and uncached writes answer 503 with a JSON error, the cached camera list is still served,
//! every detection event waits in the sink's buffer and is written when the database returns — the
//! rows equal the events the matcher emitted, none overflowed — and the engine needs no restart.
//! The test runs its own PostgreSQL cluster (scripts/pg with PANOPTES_PG_DIR) so it can stop it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::KillOnDrop;

/// `scripts/pg <verb>` on the cluster in `dir`; its output (the URL for `start`).
fn pg(dir: &Path, verb: &str) -> String {
    let out = Command::new(common::root().join("scripts/pg"))
        .arg(verb)
        .env("PANOPTES_PG_DIR", dir)
        .output()
        .expect("scripts/pg");
    assert!(out.status.success(), "scripts/pg {verb}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The cluster is stopped when the test ends, however it ends.
struct Cluster(std::path::PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(common::root().join("scripts/pg")).arg("stop").env("PANOPTES_PG_DIR", &self.0).output();
    }
}

#[tokio::test]
async fn detections_made_while_postgresql_is_down_are_all_written_when_it_returns() {
    let work = common::temp_dir("db-outage");
    let pg_dir = work.join("pg");
    let url = pg(&pg_dir, "start");
    let _cluster = Cluster(pg_dir.clone());

    common::enroll_with_cli(&url, "Barack Obama", "obama.jpg");

    let clip = common::comings_and_goings_clip(&work);
    let port = common::free_port();
    let mut engine = KillOnDrop(
        common::serve_command(&url, port, &work.join("snapshots"))
            .env("PANOPTES_STREAMING__COOLDOWN_SECS", "1")
            // The person is away 1.5 s between showings: each showing is a track, and an appearance.
            .env("PANOPTES_TRACKING__LOST_SECS", "0.3")
            .env("PANOPTES_STREAMING__DEMO_CLIP", format!("\"{}\"", common::path_str(&clip)))
            .spawn()
            .expect("start panoptes serve"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let limit = Duration::from_secs(60);
    common::eventually(
        "detections are stored",
        limit,
        || async { common::api_request("GET", &format!("{api}/api/v1/detections?limit=1"), None) },
        |r| r.as_ref().is_some_and(|(s, b)| *s == 200 && b["items"].as_array().is_some_and(|i| !i.is_empty())),
    )
    .await;
    let (status, cameras) = common::api_request("GET", &format!("{api}/api/v1/cameras"), None).expect("camera list");
    assert_eq!(status, 200);
    let demo = cameras["items"].as_array().unwrap().iter().find(|c| c["name"] == "demo").expect("demo camera")["id"]
        .as_i64()
        .unwrap();

    // The outage.
    pg(&pg_dir, "stop");
    let (stopped, stopped_at) = (Instant::now(), chrono::Utc::now());
    let readyz = common::eventually(
        "/readyz reports the database",
        limit,
        || async { common::api_request("GET", &format!("{api}/readyz"), None) },
        |r| r.as_ref().is_some_and(|(s, _)| *s == 503),
    )
    .await
    .unwrap();
    assert_eq!(readyz.1["error"]["code"], "database_unavailable", "{}", readyz.1);
    let body = serde_json::json!({ "name": "added-during-outage", "url": "rtsp://192.0.2.1/stream" });
    let (status, refused) = common::api_request("POST", &format!("{api}/api/v1/cameras"), Some(body)).expect("answer");
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "database_unavailable", "{refused}");
    assert!(refused["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{refused}");
    let (status, _) = common::api_request("GET", &format!("{api}/api/v1/cameras"), None).expect("answer");
    assert_eq!(status, 200, "the camera list is served from cache during the outage");
    common::eventually(
        "events wait in the sink",
        limit,
        || async { common::api_metric(&api, "panoptes_sink_buffered_events") },
        |n| *n > 0.0,
    )
    .await;
    if let Some(rest) = Duration::from_secs(20).checked_sub(stopped.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let waiting = common::api_metric(&api, "panoptes_sink_buffered_events");
    assert!(engine.0.try_wait().unwrap().is_none(), "the engine kept running through the outage");

    // The database returns on the same port; the engine reconnects by itself.
    assert_eq!(pg(&pg_dir, "start"), url);
    let restarted_at = chrono::Utc::now();
    common::eventually(
        "/readyz is ready again",
        limit,
        || async { common::api_request("GET", &format!("{api}/readyz"), None) },
        |r| r.as_ref().is_some_and(|(s, _)| *s == 200),
    )
    .await;
    // Stop the camera so the counts settle, then compare what the matcher emitted with what is stored.
    let (status, _) = common::api_request(
        "PATCH",
        &format!("{api}/api/v1/cameras/{demo}"),
        Some(serde_json::json!({ "enabled": false })),
    )
    .unwrap();
    assert_eq!(status, 200);
    let settled = common::eventually(
        "every emitted event is stored",
        limit,
        || async {
            let emitted = common::api_metric(&api, "panoptes_detection_events_total") as i64;
            let buffered = common::api_metric(&api, "panoptes_sink_buffered_events") as i64;
            (emitted, buffered, common::count_rows(&url, "SELECT count(*) FROM detections", &[]).await)
        },
        |(emitted, buffered, rows)| *buffered == 0 && emitted == rows,
    )
    .await;
    assert_eq!(common::api_metric(&api, "panoptes_sink_overflow_total"), 0.0);
    assert_eq!(common::api_metric(&api, "panoptes_detection_events_dropped_total"), 0.0);
    assert!(
        common::api_metric(&api, "panoptes_sink_write_failures_total") > 0.0,
        "writes failed during the outage and were retried"
    );
    let during = common::count_rows(
        &url,
        "SELECT count(*) FROM detections WHERE detected_at BETWEEN $1 AND $2",
        &[&stopped_at, &restarted_at],
    )
    .await;
    eprintln!(
        "outage: {waiting} events waited, {during} made during it stored; rows {} = events {}",
        settled.2, settled.0
    );
    assert!(during >= 5 && waiting >= 5.0, "events of the outage were buffered ({waiting}) and stored ({during})");
    assert!(settled.2 > during, "events before and after the outage are stored too");
    assert!(engine.0.try_wait().unwrap().is_none(), "no restart was needed");
}
