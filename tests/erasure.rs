//! Erasure of a person through the API, on a real PostgreSQL with the real models and real snapshot
//! files: by default their embeddings, enrolment photos and face snapshots go (their appearances stay
//! as unknown faces, with their context frames); with `?erase=all` every trace goes. Afterwards a
//! `pg_dump` of the whole database holds neither their name nor (erase=all) their snapshots, and no
//! file of theirs is left on disk. The erasure is recorded, without the name.

mod common;

use std::path::Path;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{test, web, App};
use chrono::{Duration, Utc};
use panoptes_api::config::{ApiKeyConfig, Role};
use panoptes_api::{ApiConfig, AppState};
use panoptes_engine::snapshot::{SnapshotConfig, SnapshotKind, SnapshotStore};
use panoptes_engine::storage::{NewDetection, Store};
use panoptes_engine::track::TrackEmbedding;
use serde_json::Value;

const ADMIN: &str = "erasure-admin-key-0123456789";
const VIEWER: &str = "erasure-viewer-key-0123456789";
const BOUNDARY: &str = "panoptes-erasure-boundary";

fn enrollment(name: &str, photos: &[&str]) -> test::TestRequest {
    let mut b = Vec::new();
    b.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n").bytes());
    for p in photos {
        b.extend(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"{p}\"\r\n\r\n")
                .bytes(),
        );
        b.extend(common::photo_bytes(p));
        b.extend_from_slice(b"\r\n");
    }
    b.extend(format!("--{BOUNDARY}--\r\n").bytes());
    test::TestRequest::post()
        .uri("/api/v1/persons")
        .insert_header(("X-API-Key", ADMIN))
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}")))
        .set_payload(b)
}

/// Three appearances of `person` on `camera`, each with its snapshot, and one the database refused
/// (kept in the dead-letter table); answers the four snapshot stems.
async fn appearances_of(
    store: &Store,
    snapshots: &SnapshotStore,
    camera: i64,
    person: i64,
    photo: &str,
) -> Vec<String> {
    let mut p = common::pipeline();
    let image = p.decode(&common::photo_bytes(photo)).unwrap();
    let analyzed = p.analyze(&image).unwrap().remove(0);
    let face = analyzed.face.bbox;
    let kept = TrackEmbedding { model: p.model().clone(), quality: 0.5, vector: analyzed.embedding.into() };
    let mut stems = Vec::new();
    let mut rows = Vec::new();
    for minutes in [50, 30, 10] {
        let at = Utc::now() - Duration::minutes(minutes);
        let stem = snapshots.write(camera, at, &image, &face).unwrap();
        rows.push(NewDetection {
            snapshot_path: Some(stem.clone()),
            face: Some(Arc::new(kept.clone())),
            ..NewDetection::single(camera, at, Some(person), 0.8, 0.9, face)
        });
        stems.push(stem);
    }
    store.insert_detections(&rows).await.unwrap();
    let at = Utc::now() - Duration::minutes(5);
    let stem = snapshots.write(camera, at, &image, &face).unwrap();
    let refused = NewDetection {
        snapshot_path: Some(stem.clone()),
        ..NewDetection::single(camera, at, Some(person), 0.8, 0.9, face)
    };
    store.dead_letter_detection(&refused, "refused in the test").await.unwrap();
    stems.push(stem);
    stems
}

fn has_picture(snapshots: &SnapshotStore, stem: &str, kind: SnapshotKind) -> bool {
    snapshots.read(stem, kind).is_ok()
}

/// Every row of every table of the database, as `pg_dump --data-only` writes it.
fn dump(url: &str) -> String {
    let out = std::process::Command::new("pg_dump").args(["--data-only", "--dbname", url]).output().expect("pg_dump");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn count(url: &str, sql: &str, id: i64) -> i64 {
    common::count_rows(url, sql, &[&id]).await
}

#[actix_web::test]
async fn an_erased_person_leaves_nothing_in_rows_or_on_disk_and_the_erasure_is_recorded_without_the_name() {
    let (store, url) = common::fresh_store().await;
    let p = common::pipeline();
    let gallery = common::gallery_for(&store, &p).await;
    let key = |name: &str, role, key: &str| ApiKeyConfig {
        name: name.into(),
        role: Some(role),
        key: key.into(),
        key_sha256: String::new(),
    };
    let config = ApiConfig {
        keys: vec![key("dpo", Role::Admin, ADMIN), key("wall", Role::Viewer, VIEWER)],
        ..ApiConfig::default()
    };
    let mut state = AppState::new(store.clone(), gallery, config).unwrap();
    state.analyzer = panoptes_api::analyzer::Analyzer::new(vec![p]);
    let snapshot_dir = common::temp_dir("erasure-snapshots");
    let snapshots = Arc::new(
        SnapshotStore::new(&SnapshotConfig { dir: common::path_str(&snapshot_dir), ..SnapshotConfig::default() })
            .unwrap(),
    );
    state.snapshots = Some(snapshots.clone());
    let state = web::Data::new(state);
    let app = test::init_service(
        App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(panoptes_api::guard::guard))
            .configure(panoptes_api::configure),
    )
    .await;
    let call = |req: test::TestRequest| {
        let app = &app;
        async move {
            let resp = test::call_service(app, req.to_request()).await;
            let status = resp.status();
            (status, serde_json::from_slice::<Value>(&test::read_body(resp).await).unwrap_or(Value::Null))
        }
    };
    let delete =
        |path: String, key: &str| test::TestRequest::delete().uri(&path).insert_header(("X-API-Key", key.to_string()));

    let (s, ada) = call(enrollment("Ada Erasable", &["obama.jpg", "obama3.jpg"])).await;
    assert_eq!(s, StatusCode::CREATED, "{ada}");
    let ada = ada["person"]["id"].as_i64().unwrap();
    let (s, bob) = call(enrollment("Bob Everything", &["biden.jpg"])).await;
    assert_eq!(s, StatusCode::CREATED, "{bob}");
    let bob = bob["person"]["id"].as_i64().unwrap();
    let camera = store.create_camera("lobby", "rtsp://192.0.2.1/stream", 5.0, false).await.unwrap().id;
    let ada_stems = appearances_of(&store, &snapshots, camera, ada, "obama2.jpg").await;
    let bob_stems = appearances_of(&store, &snapshots, camera, bob, "biden.jpg").await;

    // Bad requests change nothing: an unknown scope, a viewer key, a person who does not exist.
    let (s, e) = call(delete(format!("/api/v1/persons/{ada}?erase=everything"), ADMIN)).await;
    assert_eq!((s, e["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{e}");
    let (s, _) = call(delete(format!("/api/v1/persons/{ada}"), VIEWER)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(delete("/api/v1/persons/999999".into(), ADMIN)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(store.person(ada).await.unwrap().is_some());
    assert!(ada_stems.iter().all(|s| has_picture(&snapshots, s, SnapshotKind::Face)));

    // The default erasure: biometric data goes, the appearances stay as unknown faces.
    let (s, r) = call(delete(format!("/api/v1/persons/{ada}"), ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["scope"], "biometrics");
    let removed = &r["removed"];
    assert_eq!(
        [
            &removed["embeddings"],
            &removed["photos"],
            &removed["face_snapshots"],
            &removed["frame_snapshots"],
            &removed["detections"]
        ],
        [2, 2, 4, 0, 0],
        "{r}"
    );
    assert_eq!(r["detections_unlinked"], 3, "{r}");
    assert_eq!(removed["appearance_faces"], 3, "the embeddings of their appearances' faces: {r}");
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM appearance_faces f JOIN detections d ON d.id = f.detection_id WHERE d.camera_id = $1",
            camera
        )
        .await,
        3,
        "only Bob's appearances keep their faces"
    );
    assert_eq!(r["requested_by"], "key:dpo", "{r}");
    for (table, column) in [
        ("persons", "id"),
        ("face_embeddings", "person_id"),
        ("person_photos", "person_id"),
        ("detections", "person_id"),
    ] {
        assert_eq!(count(&url, &format!("SELECT count(*) FROM {table} WHERE {column} = $1"), ada).await, 0, "{table}");
    }
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM detections_dead_letter WHERE detection->>'person_id' = $1::bigint::text",
            ada
        )
        .await,
        0
    );
    for stem in &ada_stems {
        assert!(!has_picture(&snapshots, stem, SnapshotKind::Face), "face picture {stem} left");
        assert!(has_picture(&snapshots, stem, SnapshotKind::Frame), "context frame {stem} should stay");
    }
    assert_eq!(
        count(&url, "SELECT count(*) FROM detections WHERE person_id IS NULL AND camera_id = $1", camera).await,
        3,
        "Ada's appearances stay, unlinked"
    );
    let everything = dump(&url);
    assert!(!everything.contains("Ada Erasable"), "the name is still in the database");
    // Bob is untouched.
    assert!(everything.contains("Bob Everything"));
    assert!(bob_stems.iter().all(|s| has_picture(&snapshots, s, SnapshotKind::Face)));
    assert_eq!(store.person(bob).await.unwrap().map(|p| p.faces), Some(1));

    // Every trace.
    let (s, r) = call(delete(format!("/api/v1/persons/{bob}?erase=all"), ADMIN)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let removed = &r["removed"];
    assert_eq!(
        [
            &removed["embeddings"],
            &removed["photos"],
            &removed["face_snapshots"],
            &removed["frame_snapshots"],
            &removed["detections"],
            &removed["dead_letters"]
        ],
        [1, 1, 4, 4, 3, 1],
        "{r}"
    );
    assert_eq!(r["detections_unlinked"], 0, "{r}");
    let everything = dump(&url);
    assert!(!everything.contains("Bob Everything"), "the name is still in the database");
    for stem in &bob_stems {
        assert!(!everything.contains(stem.as_str()), "snapshot {stem} still named in the database");
        assert!(
            !has_picture(&snapshots, stem, SnapshotKind::Face) && !has_picture(&snapshots, stem, SnapshotKind::Frame)
        );
    }
    let left: Vec<_> =
        walk(&snapshot_dir).into_iter().filter(|f| bob_stems.iter().any(|s| f.contains(s.as_str()))).collect();
    assert!(left.is_empty(), "files of Bob left on disk: {left:?}");

    // The record: what, by whom, when; no name.
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_web::rt::spawn(conn);
    let rows = client
        .query("SELECT person_id, scope, removed, requested_by, erased_at <= now() FROM erasures ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let record = |i: usize| -> (i64, String, Value, String, bool) {
        let r = &rows[i];
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
    };
    assert_eq!(record(0).0, ada);
    assert_eq!((record(0).1.as_str(), record(0).3.as_str(), record(0).4), ("biometrics", "key:dpo", true));
    assert_eq!(record(0).2["embeddings"], 2);
    assert_eq!((record(1).0, record(1).1.as_str()), (bob, "all"));
    assert_eq!(record(1).2["detections"], 3);

    // Erasing again: there is nobody to erase.
    let (s, _) = call(delete(format!("/api/v1/persons/{bob}?erase=all"), ADMIN)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // An appearance of Bob's still open at the erasure, written when it ended: the database refuses
    // it (Bob is gone) and the sink keeps it as a dead letter; the next retention sweep removes it and
    // its pictures.
    let mut p = common::pipeline();
    let image = p.decode(&common::photo_bytes("biden.jpg")).unwrap();
    let face = p.analyze(&image).unwrap().remove(0).face.bbox;
    let stem = snapshots.write(camera, Utc::now(), &image, &face).unwrap();
    let late = NewDetection {
        snapshot_path: Some(stem.clone()),
        ..NewDetection::single(camera, Utc::now(), Some(bob), 0.8, 0.9, face)
    };
    assert!(
        store.insert_detections(std::slice::from_ref(&late)).await.is_err(),
        "a row naming an erased person is refused"
    );
    store.dead_letter_detection(&late, "violates foreign key constraint").await.unwrap();
    let counters = panoptes_engine::retention::RetentionCounters::default();
    let config = panoptes_engine::retention::RetentionConfig::default();
    let report =
        panoptes_engine::retention::sweep(&store, Some(&snapshots), &config, Utc::now(), &counters).await.unwrap();
    assert_eq!(report.erased_leftovers, 1, "{report:?}");
    assert!(
        !has_picture(&snapshots, &stem, SnapshotKind::Face) && !has_picture(&snapshots, &stem, SnapshotKind::Frame)
    );
    let refused = "SELECT count(*) FROM detections_dead_letter WHERE detection->>'person_id' = $1::bigint::text";
    assert_eq!(count(&url, refused, bob).await, 0);
}

/// Every file under `dir`, as paths relative to it.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}
