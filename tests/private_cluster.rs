//! The private PostgreSQL cluster that `scripts/run.sh` runs the engine on (`scripts/pg`, through
//! `scripts/setup.sh`) keeps fsync on, so a power cut cannot lose enrollments and detections; only a
//! throwaway cluster asked for with PANOPTES_PG_FSYNC=off (the test suite's) runs without it.

mod common;

use std::path::Path;
use std::process::Command;

fn pg(dir: &Path, verb: &str, fsync: Option<&str>) -> String {
    let mut c = Command::new(common::root().join("scripts/pg"));
    c.arg(verb).env("PANOPTES_PG_DIR", dir).env_remove("PANOPTES_PG_FSYNC");
    if let Some(f) = fsync {
        c.env("PANOPTES_PG_FSYNC", f);
    }
    let out = c.output().expect("scripts/pg");
    assert!(out.status.success(), "scripts/pg {verb}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn show_fsync(url: &str) -> String {
    let client = panoptes_engine::storage::connect_client(url).await.expect("connect");
    client.query_one("SHOW fsync", &[]).await.expect("SHOW fsync").get(0)
}

/// Stops the cluster when the test ends, however it ends.
struct Stop<'a>(&'a Path);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = Command::new(common::root().join("scripts/pg")).arg("stop").env("PANOPTES_PG_DIR", self.0).output();
    }
}

#[tokio::test]
async fn the_default_cluster_keeps_fsync_on_and_only_a_throwaway_one_turns_it_off() {
    let dir = common::temp_dir("pg-fsync");
    // PostgreSQL runs as the postgres user under root: it must be able to reach the directory.
    let _ = Command::new("chmod").args(["755"]).arg(&dir).status();
    let _stop = Stop(&dir);
    let url = pg(&dir, "start", None);
    assert_eq!(show_fsync(&url).await, "on", "the cluster scripts/run.sh uses must be durable");
    // Asked again with the suite's setting, the same cluster is restarted without fsync…
    let url = pg(&dir, "start", Some("off"));
    assert_eq!(show_fsync(&url).await, "off");
    // …and a plain start (run.sh after the suite) makes it durable again.
    let url = pg(&dir, "start", None);
    assert_eq!(show_fsync(&url).await, "on");
    let out = Command::new(common::root().join("scripts/pg"))
        .args(["start"])
        .env("PANOPTES_PG_DIR", &dir)
        .env("PANOPTES_PG_FSYNC", "sometimes")
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown setting is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("PANOPTES_PG_FSYNC"));
}
