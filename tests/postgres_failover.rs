//! PostgreSQL failover under a real `panoptes serve`: a primary (scripts/pg) and a streaming standby
//! made from it with `pg_basebackup -R` (Debian's PostgreSQL), the engine given both hosts with
//! `target_session_attrs=read-write`. Detections flow (Obama enrolled; the demo camera shows him for
//! 1 s in every 2.5 s, each showing an appearance); the primary is stopped mid-stream and the standby
//! promoted. The engine finds the new primary on its own within 30 s (measured), `/readyz` answers
//! 503 meanwhile and 200 after, and every detection event emitted is stored exactly once.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::KillOnDrop;

fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Debian's PostgreSQL (scripts/setup.sh installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL version")
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root (PostgreSQL refuses root).
fn as_pg(tool: &str) -> Command {
    let bin = pg_bin().join(tool);
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

fn run(c: &mut Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn scripts_pg(dir: &Path, verb: &str) -> String {
    run(
        Command::new(common::root().join("scripts/pg")).arg(verb).env("PANOPTES_PG_DIR", dir),
        &format!("scripts/pg {verb}"),
    )
}

/// Both clusters are stopped when the test ends, however it ends.
struct Clusters(Vec<PathBuf>);

impl Drop for Clusters {
    fn drop(&mut self) {
        for data in &self.0 {
            let _ = as_pg("pg_ctl").arg("-D").arg(data).args(["-m", "immediate", "-w", "stop"]).output();
        }
    }
}

#[tokio::test]
async fn the_engine_follows_a_promoted_standby_and_stores_every_detection_once() {
    let work = common::temp_dir("pg-failover");
    let primary_dir = work.join("primary");
    let primary_url = scripts_pg(&primary_dir, "start");
    let primary_port: u16 = std::fs::read_to_string(primary_dir.join("port")).unwrap().trim().parse().unwrap();
    let mut clusters = Clusters(vec![primary_dir.join("data")]);

    // The standby: a base backup of the primary that follows it (-R writes standby.signal and
    // primary_conninfo), on its own port.
    let standby_dir = work.join("standby");
    std::fs::create_dir_all(&standby_dir).unwrap();
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        run(Command::new("chown").args(["postgres:postgres"]).arg(&standby_dir), "chown standby dir");
    }
    let standby_data = standby_dir.join("data");
    run(
        as_pg("pg_basebackup")
            .args(["-h", "127.0.0.1", "-p", &primary_port.to_string(), "-U", "postgres", "-R", "-X", "stream", "-D"])
            .arg(&standby_data),
        "pg_basebackup",
    );
    clusters.0.push(standby_data.clone());
    let standby_port = common::free_port();
    run(
        as_pg("pg_ctl")
            .arg("-D")
            .arg(&standby_data)
            .arg("-l")
            .arg(standby_dir.join("server.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-p {standby_port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                common::path_str(&standby_dir)
            ))
            .arg("start"),
        "start the standby",
    );
    let standby_url = format!("postgresql://postgres@127.0.0.1:{standby_port}/panoptes");
    let in_recovery = || async {
        let client = panoptes_engine::storage::connect_client(&standby_url).await.ok()?;
        client.query_one("SELECT pg_is_in_recovery()", &[]).await.ok().map(|r| r.get::<_, bool>(0))
    };
    assert_eq!(in_recovery().await, Some(true), "the standby follows the primary");

    common::enroll_with_cli(&primary_url, "Barack Obama", "obama.jpg");
    let both = format!(
        "postgresql://postgres@127.0.0.1:{primary_port},127.0.0.1:{standby_port}/panoptes?target_session_attrs=read-write"
    );
    let clip = common::comings_and_goings_clip(&work);
    let port = common::free_port();
    let engine = KillOnDrop(
        common::serve_command(&both, port, &work.join("snapshots"))
            .env("PANOPTES_STREAMING__COOLDOWN_SECS", "1")
            .env("PANOPTES_TRACKING__LOST_SECS", "0.3")
            .env("PANOPTES_STREAMING__DEMO_CLIP", format!("\"{}\"", common::path_str(&clip)))
            .spawn()
            .expect("start panoptes serve"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let limit = Duration::from_secs(60);
    common::eventually(
        "detections are stored on the primary",
        limit,
        || async { common::count_rows(&primary_url, "SELECT count(*) FROM detections", &[]).await },
        |n| *n >= 3,
    )
    .await;

    // The primary goes away mid-stream (a clean stop: what it committed has reached the standby).
    scripts_pg(&primary_dir, "stop");
    let stopped = Instant::now();
    let readyz = common::eventually(
        "/readyz reports the database",
        limit,
        || async { common::api_request("GET", &format!("{api}/readyz"), None) },
        |r| r.as_ref().is_some_and(|(s, _)| *s == 503),
    )
    .await
    .unwrap();
    assert_eq!(readyz.1["error"]["code"], "database_unavailable", "{}", readyz.1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The standby is promoted (what an operator or a failover manager does).
    run(as_pg("pg_ctl").arg("-D").arg(&standby_data).args(["-w", "promote"]), "promote the standby");
    assert_eq!(in_recovery().await, Some(false), "the standby is the primary now");
    common::eventually(
        "/readyz is ready on the new primary",
        Duration::from_secs(30),
        || async { common::api_request("GET", &format!("{api}/readyz"), None) },
        |r| r.as_ref().is_some_and(|(s, _)| *s == 200),
    )
    .await;
    let recovered = stopped.elapsed();
    eprintln!(
        "primary stopped -> engine ready on the promoted standby: {:.1} s (promotion 3 s after the stop)",
        recovered.as_secs_f64()
    );
    assert!(recovered < Duration::from_secs(30));

    // New detections land on the new primary; then the camera is stopped and the counts compared.
    let before = common::count_rows(&standby_url, "SELECT count(*) FROM detections", &[]).await;
    common::eventually(
        "detections are stored on the new primary",
        limit,
        || async { common::count_rows(&standby_url, "SELECT count(*) FROM detections", &[]).await },
        |n| *n > before + 2,
    )
    .await;
    let (status, cameras) = common::api_request("GET", &format!("{api}/api/v1/cameras"), None).expect("camera list");
    assert_eq!(status, 200);
    let demo = cameras["items"].as_array().unwrap().iter().find(|c| c["name"] == "demo").expect("demo camera")["id"]
        .as_i64()
        .unwrap();
    let (status, _) = common::api_request(
        "PATCH",
        &format!("{api}/api/v1/cameras/{demo}"),
        Some(serde_json::json!({ "enabled": false })),
    )
    .unwrap();
    assert_eq!(status, 200);
    let settled = common::eventually(
        "every emitted event is stored once",
        limit,
        || async {
            let emitted = common::api_metric(&api, "panoptes_detection_events_total") as i64;
            let buffered = common::api_metric(&api, "panoptes_sink_buffered_events") as i64;
            (emitted, buffered, common::count_rows(&standby_url, "SELECT count(*) FROM detections", &[]).await)
        },
        |(emitted, buffered, stored)| *buffered == 0 && emitted == stored,
    )
    .await;
    let distinct =
        common::count_rows(&standby_url, "SELECT count(DISTINCT (camera_id, detected_at)) FROM detections", &[]).await;
    assert_eq!(distinct, settled.2, "no appearance stored twice");
    assert_eq!(common::api_metric(&api, "panoptes_sink_overflow_total"), 0.0);
    eprintln!("events emitted {} = rows stored {}", settled.0, settled.2);
    let mut engine = engine;
    assert!(engine.0.try_wait().unwrap().is_none(), "no restart was needed");
}
