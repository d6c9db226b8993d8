//! `panoptes backup` and `panoptes restore` (the real binary, Debian's pg_dump, pg_restore and psql)
//! on a real engine database: a person enrolled from a photo (embedding and photo stored), a camera,
//! appearances with snapshot files (encrypted and plain). Restored into a new empty database and
//! snapshot directory, every table's rows, the sequences and the files are identical and the gallery
//! loads with the same embeddings. A damaged backup and a non-empty target are refused untouched.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Duration, TimeZone, Utc};
use panoptes_engine::enrollment::{enroll_photo, EnrollmentPolicy};
use panoptes_engine::gallery_sync::read_gallery;
use panoptes_engine::geometry::BBox;
use panoptes_engine::snapshot::{SnapshotConfig, SnapshotStore};
use panoptes_engine::storage::{connect_client, NewDetection, Store};

/// An engine's database and snapshot directory with one of everything.
struct Site {
    db: String,
    snapshots: PathBuf,
}

async fn populated_site(tag: &str) -> Site {
    let (store, db) = common::fresh_store().await;
    let mut pipeline = common::pipeline();
    let gallery = common::gallery_for(&store, &pipeline).await;
    let obama = store.create_person("Barack Obama", &serde_json::json!({ "team": "blue" })).await.unwrap();
    enroll_photo(
        &mut pipeline,
        &store,
        &gallery,
        &EnrollmentPolicy::default(),
        obama.id,
        &common::photo_bytes("obama.jpg"),
    )
    .await
    .expect("enrol");
    let camera = store.create_camera("lobby", "rtsp://cam.example/lobby", 5.0, false).await.unwrap();

    let snapshots = common::temp_dir(tag).join("snapshots");
    let frame = image::open(common::photo("obama.jpg")).expect("photo").to_rgb8();
    let face = BBox { x: 100.0, y: 60.0, width: 120.0, height: 150.0 };
    let encrypted = SnapshotStore::new(&SnapshotConfig {
        dir: common::path_str(&snapshots),
        encryption_key: "42".repeat(32),
        ..SnapshotConfig::default()
    })
    .unwrap();
    let plain =
        SnapshotStore::new(&SnapshotConfig { dir: common::path_str(&snapshots), ..SnapshotConfig::default() }).unwrap();
    let start = Utc.with_ymd_and_hms(2026, 12, 4, 9, 30, 0).unwrap();
    let mut rows = Vec::new();
    for i in 0..3 {
        let at = start + Duration::seconds(40 * i);
        let snapshots = if i == 1 { &plain } else { &encrypted };
        let stem = snapshots.write(camera.id, at, &frame, &face).expect("snapshot");
        let person = if i == 2 { None } else { Some(obama.id) };
        let mut d = NewDetection::single(camera.id, at, person, 0.71, 0.98, face);
        d.snapshot_path = Some(stem);
        d.last_seen_at = Some(at + Duration::seconds(3));
        rows.push(d);
    }
    store.insert_detections(&rows).await.expect("detections");
    store.close();
    Site { db, snapshots }
}

/// `panoptes ARGS` on database `db` and snapshot directory `snapshots`: (success, stdout, stderr).
fn panoptes(db: &str, snapshots: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_panoptes"))
        .current_dir(common::root())
        .env("PANOPTES_DATABASE_URL", db)
        .env("PANOPTES_SNAPSHOTS__DIR", format!("\"{}\"", common::path_str(snapshots)))
        .args(args)
        .output()
        .expect("run panoptes");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Every table of `public` with its rows as JSON in a fixed order, and every sequence's position.
async fn database_image(db: &str) -> BTreeMap<String, String> {
    let client = connect_client(db).await.expect("connect");
    let tables: Vec<String> = client
        .query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut image = BTreeMap::new();
    for t in tables {
        let sql = format!("SELECT coalesce(json_agg(x ORDER BY x::text), '[]')::text FROM public.{t} x");
        image.insert(t.clone(), client.query_one(&sql, &[]).await.unwrap().get(0));
    }
    let sequences: Vec<String> = client
        .query(
            "SELECT sequencename || '=' || coalesce(last_value, 0) FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    image.insert("(sequences)".into(), sequences.join(", "));
    image
}

/// Relative path → bytes of every file under `dir`.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                pending.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

async fn relation_count(db: &str) -> i64 {
    common::count_rows(
        db,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
        &[],
    )
    .await
}

#[tokio::test]
async fn a_backup_restored_into_an_empty_database_gives_back_every_row_and_snapshot_file() {
    let site = populated_site("backup-source").await;
    let backup = common::temp_dir("backup-out").join("nightly-1");
    let (ok, stdout, stderr) = panoptes(&site.db, &site.snapshots, &["backup", &common::path_str(&backup)]);
    assert!(ok, "backup: {stderr}");
    assert!(stdout.contains("1 persons, 1 face embeddings, 1 person photos, 1 cameras, 3 detections"), "{stdout}");
    assert!(!backup.with_file_name(".nightly-1.partial").exists(), "the work directory is gone");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o700, "for its owner only");

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["schema_version"], panoptes_engine::storage::migrations::latest_version());
    assert_eq!(manifest["panoptes_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["rows"]["detections"], 3);
    assert_eq!(
        manifest["embedding_models"][0]["name"],
        panoptes_engine::embed::DEFAULT_EMBEDDER,
        "the shipped embedder"
    );
    assert_eq!(manifest["embedding_models"][0]["embeddings"], 1);
    assert_eq!(manifest["snapshots"]["files"], 6, "a face and a frame per appearance");
    let source_files = files(&site.snapshots);
    assert_eq!(source_files.len(), 6);
    assert_eq!(
        manifest["snapshots"]["bytes"].as_u64().unwrap(),
        source_files.values().map(|b| b.len() as u64).sum::<u64>()
    );
    assert_eq!(source_files.keys().filter(|p| p.to_string_lossy().ends_with(".enc")).count(), 4);

    // A new, empty database and snapshot directory.
    let target_db = common::fresh_database().await;
    let target_snapshots = common::temp_dir("backup-target").join("snapshots");
    let (ok, stdout, stderr) = panoptes(&target_db, &target_snapshots, &["restore", &common::path_str(&backup)]);
    assert!(ok, "restore: {stderr}");
    assert!(stdout.contains("6 snapshot files"), "{stdout}");

    let (before, after) = (database_image(&site.db).await, database_image(&target_db).await);
    assert_eq!(before.keys().collect::<Vec<_>>(), after.keys().collect::<Vec<_>>(), "the same tables");
    for (table, rows) in &before {
        assert_eq!(rows, &after[table], "table {table}");
    }
    assert!(before["detections"].contains("2026-12-04"), "the image holds the rows: {}", before["detections"]);
    assert_eq!(source_files, files(&target_snapshots), "the snapshot files, byte for byte");

    // The restored gallery is the same, and its snapshots decrypt with the site's key.
    let pipeline = common::pipeline();
    let (source, restored) = (Store::connect(&site.db, 1).await.unwrap(), Store::connect(&target_db, 1).await.unwrap());
    let model = pipeline.model().clone();
    let a = source.embeddings_for_model(&model).await.unwrap();
    let b = restored.embeddings_for_model(&model).await.unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(
        a.iter().map(|e| (e.id, e.person_id, e.vector.clone())).collect::<Vec<_>>(),
        b.iter().map(|e| (e.id, e.person_id, e.vector.clone())).collect::<Vec<_>>()
    );
    let gallery = read_gallery(&restored, pipeline.model_info()).await.unwrap();
    assert_eq!(gallery.len(), 1);
    let best = gallery.search(pipeline.model(), &b[0].vector, 1).unwrap();
    assert_eq!(best[0].person_id, b[0].person_id);
    let detection = restored.list_detections(&Default::default(), None, 10).await.unwrap();
    let stem = detection.iter().find_map(|d| d.snapshot_path.clone()).expect("a snapshot");
    let keyed = SnapshotStore::new(&SnapshotConfig {
        dir: common::path_str(&target_snapshots),
        encryption_key: "42".repeat(32),
        ..SnapshotConfig::default()
    })
    .unwrap();
    let jpeg = keyed.read(&stem, panoptes_engine::snapshot::SnapshotKind::Face).expect("read the restored snapshot");
    assert!(image::load_from_memory(&jpeg).is_ok());
}

#[tokio::test]
async fn a_damaged_backup_or_a_target_in_use_is_refused_and_nothing_is_touched() {
    let site = populated_site("backup-refusals").await;
    let work = common::temp_dir("backup-refusals-out");
    let backup = work.join("good");
    let (ok, _, stderr) = panoptes(&site.db, &site.snapshots, &["backup", &common::path_str(&backup)]);
    assert!(ok, "backup: {stderr}");
    // A backup never lands on another.
    let (ok, _, stderr) = panoptes(&site.db, &site.snapshots, &["backup", &common::path_str(&backup)]);
    assert!(!ok && stderr.contains("exists and is not empty"), "{stderr}");

    // One byte of the dump changed.
    let damaged = work.join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    for (rel, bytes) in files(&backup) {
        std::fs::create_dir_all(damaged.join(&rel).parent().unwrap()).unwrap();
        std::fs::write(damaged.join(rel), bytes).unwrap();
    }
    let dump = damaged.join("database.dump");
    let mut bytes = std::fs::read(&dump).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&dump, bytes).unwrap();
    let empty_db = common::fresh_database().await;
    let empty_snapshots = common::temp_dir("backup-refusals-target").join("snapshots");
    let (ok, _, stderr) = panoptes(&empty_db, &empty_snapshots, &["restore", &common::path_str(&damaged)]);
    assert!(!ok);
    assert!(
        stderr.contains("does not match the backup's manifest") && stderr.contains("Nothing was restored"),
        "{stderr}"
    );
    assert_eq!(relation_count(&empty_db).await, 0, "the target database is untouched");
    assert!(!empty_snapshots.exists(), "no snapshot written");
    // Not even --force on the site's own database gets past the check.
    let image = database_image(&site.db).await;
    let (ok, _, stderr) = panoptes(&site.db, &site.snapshots, &["restore", "--force", &common::path_str(&damaged)]);
    assert!(!ok && stderr.contains("does not match the backup's manifest"), "{stderr}");
    assert_eq!(database_image(&site.db).await, image);

    // A snapshot file changed.
    std::fs::copy(backup.join("database.dump"), &dump).unwrap();
    let snapshot = files(&damaged.join("snapshots")).into_keys().next().unwrap();
    std::fs::write(damaged.join("snapshots").join(&snapshot), b"not the picture").unwrap();
    let (ok, _, stderr) = panoptes(&empty_db, &empty_snapshots, &["restore", &common::path_str(&damaged)]);
    assert!(!ok && stderr.contains("snapshot files") && stderr.contains("do not match"), "{stderr}");
    assert_eq!(relation_count(&empty_db).await, 0);

    // No manifest: not a backup.
    let (ok, _, stderr) = panoptes(&empty_db, &empty_snapshots, &["restore", &common::path_str(&work)]);
    assert!(!ok && stderr.contains("holds no manifest.json"), "{stderr}");

    // A database in use is refused without --force, and says how to go on.
    let (ok, _, stderr) = panoptes(&site.db, &site.snapshots, &["restore", &common::path_str(&backup)]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("is not empty") && stderr.contains("--force"), "{stderr}");
    assert!(stderr.contains("1 persons"), "says what it holds: {stderr}");
    assert_eq!(database_image(&site.db).await, image);

    // --force replaces it: a person added and an appearance's snapshot written after the backup go;
    // a file that is no snapshot stays.
    let store = Store::connect(&site.db, 1).await.unwrap();
    store.create_person("Added later", &serde_json::json!({})).await.unwrap();
    store.close();
    let later = site.snapshots.join("2026-12-05/cam-1/120000.000-9.face.jpg.enc");
    std::fs::create_dir_all(later.parent().unwrap()).unwrap();
    std::fs::write(&later, b"a face the backup does not know").unwrap();
    std::fs::write(site.snapshots.join("NOTES.txt"), b"the operator's").unwrap();
    let (ok, stdout, stderr) = panoptes(&site.db, &site.snapshots, &["restore", "--force", &common::path_str(&backup)]);
    assert!(ok, "restore --force: {stderr}");
    assert!(stdout.contains("1 snapshot files of the replaced database deleted"), "{stdout}");
    assert_eq!(database_image(&site.db).await, image, "the database is the backup's again");
    assert!(!later.exists() && !site.snapshots.join("2026-12-05").exists());
    assert!(site.snapshots.join("NOTES.txt").exists());
    assert!(stderr.contains("left in place (not a snapshot file): NOTES.txt"), "{stderr}");

    // A running engine's database is not replaced.
    let client = connect_client(&site.db).await.unwrap();
    client.execute("INSERT INTO engine_nodes (node_id) VALUES ('node-a')", &[]).await.unwrap();
    let (ok, _, stderr) = panoptes(&site.db, &site.snapshots, &["restore", "--force", &common::path_str(&backup)]);
    assert!(!ok && stderr.contains("engines are running on this database (node-a)"), "{stderr}");
}
