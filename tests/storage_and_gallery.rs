//! Schema, enrollment and the gallery against a real PostgreSQL server.

mod common;

use panoptes_engine::enrollment::{enroll_photo, EnrollError, EnrollmentPolicy};
use panoptes_engine::gallery_sync::read_gallery;
use panoptes_engine::storage::{migrations, Store};

#[tokio::test]
async fn migrations_are_versioned_and_idempotent() {
    let url = common::fresh_database().await;
    let store = Store::connect(&url, 2).await.unwrap();
    // a second engine starting on the same database applies nothing
    let again = Store::connect(&url, 2).await.unwrap();
    let client = panoptes_engine::storage::connect_client(&url).await.unwrap();
    let versions: Vec<i32> = client
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=migrations::latest_version()).collect::<Vec<_>>(), "each version applied once");
    let tables: Vec<String> = client
        .query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        tables,
        [
            "alert_rules",
            "api_keys",
            "appearance_faces",
            "audit_log",
            "camera_leases",
            "cameras",
            "detection_reviews",
            "detections",
            "detections_dead_letter",
            "engine_flags",
            "engine_nodes",
            "erasures",
            "face_embeddings",
            "gallery_model",
            "person_negatives",
            "person_photos",
            "persons",
            "reembed_failures",
            "schema_migrations",
            "unknown_identities"
        ]
    );
    let indexes: Vec<String> = client
        .query("SELECT indexname::text FROM pg_indexes WHERE tablename = 'detections'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(indexes.contains(&"detections_camera_time_idx".to_string()));
    assert!(indexes.contains(&"detections_person_time_idx".to_string()));
    store.ping().await.unwrap();
    again.ping().await.unwrap();
}

#[tokio::test]
async fn enrolled_faces_survive_a_restart_and_deletion_empties_the_gallery() {
    let (store, url) = common::fresh_store().await;
    let mut p = common::pipeline();
    let gallery = common::gallery_for(&store, &p).await;
    let policy = EnrollmentPolicy::default();
    let obama = store.create_person("Barack Obama", &serde_json::json!({"team": "demo"})).await.unwrap();
    for photo in ["obama.jpg", "obama3.jpg"] {
        let e = enroll_photo(&mut p, &store, &gallery, &policy, obama.id, &common::photo_bytes(photo)).await.unwrap();
        assert!(e.embedding_id.is_some());
    }
    // the same photo twice is recognised, not stored again
    let dup =
        enroll_photo(&mut p, &store, &gallery, &policy, obama.id, &common::photo_bytes("obama.jpg")).await.unwrap();
    assert!(dup.embedding_id.is_none());
    // refusals store nothing
    let err =
        enroll_photo(&mut p, &store, &gallery, &policy, obama.id, &common::photo_bytes("t1.jpg")).await.unwrap_err();
    assert!(matches!(err, EnrollError::SeveralFaces(6)));
    assert_eq!(gallery.read().unwrap().len(), 2);

    // A new process (fresh store and gallery) finds the same vectors, bit for bit.
    let store2 = Store::connect(&url, 2).await.unwrap();
    let reloaded = read_gallery(&store2, p.model_info()).await.unwrap();
    assert_eq!(reloaded.len(), 2);
    let probe = p.analyze_bytes(&common::photo_bytes("obama2.jpg")).unwrap().remove(0).embedding;
    let live = gallery.read().unwrap().search(p.model(), &probe, 5).unwrap();
    let cold = reloaded.search(p.model(), &probe, 5).unwrap();
    assert_eq!(live, cold);
    assert_eq!(cold.len(), 1, "one person, however many faces");
    assert_eq!(cold[0].person_id, obama.id);
    assert!(cold[0].score >= 0.55);

    let listed = store2.list_persons(Some("OBAMA"), 10, 0).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].faces, 2);
    assert_eq!(listed[0].metadata["team"], "demo");
    assert!(store2.list_persons(Some("%"), 10, 0).await.unwrap().is_empty(), "LIKE wildcards are escaped");

    assert!(store2.delete_person(obama.id).await.unwrap());
    assert!(!store2.delete_person(obama.id).await.unwrap());
    assert_eq!(gallery.write().unwrap().remove_person(obama.id), 2);
    assert!(read_gallery(&store2, p.model_info()).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    // Port 1 on loopback: nothing listens there.
    let err = Store::connect("postgresql://postgres@127.0.0.1:1/panoptes", 1).await.err().expect("must fail");
    assert!(err.to_string().contains("database unavailable"), "{err}");
    let bad = Store::new("postgresql://[not a url", 1).err().expect("must fail");
    assert!(bad.to_string().contains("invalid database URL"), "{bad}");
}

/// Two engines on one database: what one enrolls or deletes reaches the other's index at its next
/// check, and an engine whose own index already matches the database rebuilds nothing.
#[tokio::test]
async fn a_gallery_follows_enrollments_and_deletions_made_elsewhere() {
    use panoptes_engine::gallery_sync::GallerySync;
    let (store, _) = common::fresh_store().await;
    let mut p = common::pipeline();
    let (here, there) = (common::gallery_for(&store, &p).await, common::gallery_for(&store, &p).await);
    let (mut sync_here, mut sync_there) =
        (GallerySync::new(p.catalog().clone()), GallerySync::new(p.catalog().clone()));
    assert!(!sync_there.refresh(&store, &there).await.unwrap(), "nothing stored, nothing to do");

    let obama = store.create_person("Barack Obama", &serde_json::json!({})).await.unwrap();
    let policy = EnrollmentPolicy::default();
    enroll_photo(&mut p, &store, &here, &policy, obama.id, &common::photo_bytes("obama.jpg")).await.unwrap();
    assert!(!sync_here.refresh(&store, &here).await.unwrap(), "the enrolling engine's index already holds it");
    assert!(sync_there.refresh(&store, &there).await.unwrap());
    let probe = p.analyze_bytes(&common::photo_bytes("obama2.jpg")).unwrap().remove(0).embedding;
    let found = there.read().unwrap().search(p.model(), &probe, 1).unwrap();
    assert_eq!(found.first().map(|m| m.person_id), Some(obama.id), "the other engine recognises him now");
    assert!(!sync_there.refresh(&store, &there).await.unwrap(), "no change, no rebuild");

    // Deleted from the command line: both engines let go of him.
    assert!(store.delete_person(obama.id).await.unwrap());
    assert!(sync_here.refresh(&store, &here).await.unwrap());
    assert!(sync_there.refresh(&store, &there).await.unwrap());
    assert!(here.read().unwrap().is_empty() && there.read().unwrap().is_empty());
}

/// Eight engines offering the demo camera at the same moment: one camera, no error; offered again on
/// a database whose cameras were all deleted, nothing is added.
#[tokio::test]
async fn the_demo_camera_is_offered_once_in_a_databases_life() {
    let (store, _) = common::fresh_store().await;
    let offers = (0..8).map(|_| {
        let s = store.clone();
        tokio::spawn(async move { s.offer_demo_camera("demo", "/clips/demo.h264", 5.0).await })
    });
    let mut added = 0;
    for offer in offers {
        if offer.await.unwrap().expect("no offer fails, however many race").is_some() {
            added += 1;
        }
    }
    assert_eq!(added, 1);
    let cams = store.list_cameras().await.unwrap();
    assert_eq!(cams.len(), 1);
    store.delete_camera(cams[0].id).await.unwrap();
    assert!(store.offer_demo_camera("demo", "/clips/demo.h264", 5.0).await.unwrap().is_none());
    assert!(store.list_cameras().await.unwrap().is_empty());

    // A database that already had cameras (created before the demo existed) never gets one.
    let (other, _) = common::fresh_store().await;
    let cam = other.create_camera("gate", "rtsp://10.0.0.9/s", 5.0, true).await.unwrap();
    other.delete_camera(cam.id).await.unwrap();
    assert!(other.offer_demo_camera("demo", "/clips/demo.h264", 5.0).await.unwrap().is_none());
}

/// Leases are shared in proportion to what each node says it can carry: a node of capacity 4 beside
/// one of 2 holds 4 of 6 cameras; when the first advertises less (it is shedding load), it stops
/// cameras, releases their leases once they have stopped, and the other claims them.
#[tokio::test]
async fn leases_follow_each_nodes_capacity() {
    let (store, _db) = common::fresh_store().await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            store.create_camera(&format!("cap-{i}"), &format!("rtsp://192.0.2.1/{i}"), 5.0, true).await.unwrap().id,
        );
    }
    let ttl = std::time::Duration::from_secs(15);
    // Both nodes heartbeat first, then share.
    store.sync_leases("big", 4.0, ttl, &ids, &[]).await.unwrap();
    store.sync_leases("small", 2.0, ttl, &ids, &[]).await.unwrap();
    let big = store.sync_leases("big", 4.0, ttl, &ids, &[]).await.unwrap();
    let small = store.sync_leases("small", 2.0, ttl, &ids, &[]).await.unwrap();
    assert_eq!((big.held.len(), small.held.len()), (4, 2), "big {:?}, small {:?}", big.held, small.held);
    assert_eq!(big.live_nodes, 2);

    // "big" is saturated and advertises a quarter of its capacity: it should run 2, but keeps the
    // leases of the two it still runs until it has stopped them, so "small" finds nothing to claim
    // yet and a camera is never analysed by both.
    let running_on_big = big.held.clone();
    let big = store.sync_leases("big", 1.0, ttl, &ids, &running_on_big).await.unwrap();
    assert_eq!(big.held.len(), 2, "big should run 2: {:?}", big.held);
    let small = store.sync_leases("small", 2.0, ttl, &ids, &small.held).await.unwrap();
    assert_eq!(small.held.len(), 2, "claimed from under a node still running them: {:?}", small.held);
    let owners = store.lease_owners().await.unwrap();
    assert_eq!(owners.iter().filter(|(_, node)| node == "big").count(), 4, "{owners:?}");
    // Stopped: the next sync gives the two up and "small" takes them.
    let big = store.sync_leases("big", 1.0, ttl, &ids, &big.held).await.unwrap();
    let small = store.sync_leases("small", 2.0, ttl, &ids, &small.held).await.unwrap();
    assert_eq!((big.held.len(), small.held.len()), (2, 4), "big {:?}, small {:?}", big.held, small.held);
    let owners = store.lease_owners().await.unwrap();
    assert_eq!(owners.len(), 6, "every camera has exactly one node: {owners:?}");
}
