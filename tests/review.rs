//! An operator's review on the real engine (the assembly `panoptes serve` runs) and the real models:
//! a rejected false match stops on a replay of the same clip, and can be undone; confirming a face
//! from a harder clip raises the person's score on the next appearance; a viewer may do neither;
//! the audit trail lists each action; bad requests get their own 4xx and change nothing.

mod common;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test;
use common::operator_api::*;
use panoptes_engine::geometry::BBox;
use panoptes_engine::storage::{DetectionFilter, NewDetection};
use serde_json::json;

#[actix_web::test]
async fn a_rejected_false_match_stops_on_a_replay_and_the_rejection_can_be_undone() {
    let (engine, media) = engine("review-reject").await;
    let store = engine.store().clone();
    let app = app(&engine).await;
    // An operator enrolled the wrong photo: "Pat Doe" shows Barack Obama. The camera then sees Obama
    // (another photo of him) and takes him for Pat Doe: a false match.
    let pat = enroll(&app, "Pat Doe", "obama2.jpg").await;
    let clip = clip_of(&common::photo("obama.jpg"), "review-obama");
    let door1 = add_camera(&app, &media, &clip, "door 1", "door-1.h264").await;
    let matched = appearance(&store, door1, "appearance of Pat Doe", |d| d.person_id == Some(pat)).await;
    eprintln!("false match: score {:.3}", matched.score);
    let reject = |who: fn(test::TestRequest) -> test::TestRequest| {
        who(test::TestRequest::post().uri(&format!("/api/v1/detections/{}/reject", matched.id)))
    };

    let (s, r) = call(&app, reject(as_viewer)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer rejected a match: {r}");
    let (s, r) = call(&app, reject(as_admin)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((r["review"].as_str(), r["person_id"].as_i64()), (Some("rejected"), Some(pat)), "{r}");
    let (s, r) = call(&app, reject(as_admin)).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_reviewed")), "{r}");
    let row = store.get_detection(matched.id).await.unwrap().unwrap();
    assert_eq!((row.person_id, row.review.as_deref()), (None, Some("rejected")));

    // The same clip again, on another camera: Obama is seen (an unknown face now), never Pat Doe.
    delete_camera(&app, door1).await;
    let door2 = add_camera(&app, &media, &clip, "door 2", "door-2.h264").await;
    let replay = appearance(&store, door2, "appearance on the replay", |_| true).await;
    // Its later embeddings must not turn it into Pat Doe either.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let filter = DetectionFilter { camera_id: Some(door2), ..DetectionFilter::default() };
    let rows = store.list_detections(&filter, None, 50).await.unwrap();
    assert!(rows.iter().all(|d| d.person_id != Some(pat)), "the rejected face matched Pat Doe again: {rows:?}");
    assert_eq!(replay.evidence.decision.as_deref(), Some("unknown"), "{replay:?}");
    delete_camera(&app, door2).await;
    // Still stands after the engine wrote the appearance again (it was open when rejected).
    let row = store.get_detection(matched.id).await.unwrap().unwrap();
    assert_eq!((row.person_id, row.review.as_deref()), (None, Some("rejected")), "{row:?}");

    // Undone: the appearance is Pat Doe's again and the negative is gone.
    let undo = || test::TestRequest::delete().uri(&format!("/api/v1/detections/{}/review", matched.id));
    let (s, r) = call(&app, as_viewer(undo())).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{r}");
    let (s, r) = call(&app, as_admin(undo())).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["person_id"].as_i64(), Some(pat), "{r}");
    let (s, r) = call(&app, as_admin(undo())).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("not_reviewed")), "{r}");
    assert_eq!(engine.gallery().read().unwrap().negatives(), 0);
    let row = store.get_detection(matched.id).await.unwrap().unwrap();
    assert_eq!((row.person_id, row.review), (Some(pat), None));

    // The audit trail: who did what, newest first; viewers may not read it.
    for path in ["/api/v1/audit", "/api/v1/aud%69t"] {
        let (s, _) = call(&app, as_viewer(test::TestRequest::get().uri(path))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
    let (s, audit) = call(&app, as_admin(test::TestRequest::get().uri("/api/v1/audit"))).await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let entries: Vec<(String, String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
                e["target"].as_str().unwrap().into(),
            )
        })
        .collect();
    let target = format!("detection:{}", matched.id);
    assert_eq!(
        entries,
        vec![("key:ops".into(), "undo_reject".into(), target.clone()), ("key:ops".into(), "reject".into(), target)]
    );

    // Rejected again, then Pat Doe is erased: the negative goes with them, and the appearance is no
    // longer held as reviewed (it is open to review, as the engine left it).
    let (s, r) = call(&app, reject(as_admin)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let erase = as_admin(test::TestRequest::delete().uri(&format!("/api/v1/persons/{pat}")));
    let (s, r) = call(&app, erase).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((r["removed"]["negatives"].as_i64(), r["removed"]["reviews"].as_i64()), (Some(1), Some(1)), "{r}");
    let row = store.get_detection(matched.id).await.unwrap().unwrap();
    assert_eq!((row.person_id, row.review), (None, None));
    assert_eq!(engine.gallery().read().unwrap().negatives(), 0);
    engine.shutdown().await;
}

#[actix_web::test]
async fn confirming_a_face_from_a_harder_clip_raises_the_persons_score_on_the_next_appearance() {
    let (engine, media) = engine("review-confirm").await;
    let store = engine.store().clone();
    let app = app(&engine).await;
    let obama_id = enroll(&app, "Barack Obama", "obama.jpg").await;
    // The harder clip: the same man on another day, turned a little, in poor light.
    let hard_photo = common::temp_dir("review-hard").join("obama2-dim.png");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(common::photo("obama2.jpg"))
        .args(["-vf", "eq=brightness=-0.05:contrast=0.9"])
        .arg(&hard_photo)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let clip = clip_of(&hard_photo, "review-obama-hard");
    let hall1 = add_camera(&app, &media, &clip, "hall 1", "hall-1.h264").await;
    let first = appearance(&store, hall1, "appearance", |_| true).await;
    let before = if first.person_id == Some(obama_id) { first.score } else { 0.0 };
    eprintln!("before: {:?} score {:.3} ({:?})", first.person_id, first.score, first.evidence);

    let confirm = |who: fn(test::TestRequest) -> test::TestRequest| {
        who(test::TestRequest::post().uri(&format!("/api/v1/detections/{}/confirm", first.id)))
            .set_json(json!({ "person_id": obama_id }))
    };
    let (s, r) = call(&app, confirm(as_viewer)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer confirmed a face: {r}");
    let (s, r) = call(&app, confirm(as_admin)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(r["embedding_id"].as_i64().is_some(), "no face enrolled: {r}");
    let (s, r) = call(&app, confirm(as_admin)).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_reviewed")), "{r}");
    let (s, person) = call(&app, as_admin(test::TestRequest::get().uri(&format!("/api/v1/persons/{obama_id}")))).await;
    assert_eq!((s, person["faces"].as_i64()), (StatusCode::OK, Some(2)), "{person}");

    // The same harder clip again: Obama, and closer than before.
    delete_camera(&app, hall1).await;
    let hall2 = add_camera(&app, &media, &clip, "hall 2", "hall-2.h264").await;
    let next = appearance(&store, hall2, "appearance of Barack Obama", |d| d.person_id == Some(obama_id)).await;
    eprintln!("after: score {:.3} ({:?})", next.score, next.evidence);
    assert!(next.score > before + 0.05, "score {:.3} after confirming, {before:.3} before", next.score);

    let (_, audit) = call(&app, as_admin(test::TestRequest::get().uri("/api/v1/audit?limit=5"))).await;
    let first_entry = &audit["entries"][0];
    assert_eq!(
        (first_entry["actor"].as_str(), first_entry["action"].as_str(), first_entry["details"]["person_id"].as_i64()),
        (Some("key:ops"), Some("confirm"), Some(obama_id)),
        "{audit}"
    );
    engine.shutdown().await;
}

/// Bad review requests: each its own 4xx, and nothing changes.
#[actix_web::test]
async fn bad_review_requests_get_their_own_errors_and_change_nothing() {
    let (engine, _media) = engine("review-bad").await;
    let store = engine.store().clone();
    let app = app(&engine).await;
    let obama = enroll(&app, "Barack Obama", "obama.jpg").await;
    let camera = store.create_camera("lobby", "lobby.h264", 5.0, false).await.unwrap();
    let face = BBox { x: 10.0, y: 10.0, width: 100.0, height: 100.0 };
    // A match whose face was not kept, and an unknown face.
    let matched = store
        .insert_detection(&NewDetection::single(camera.id, chrono::Utc::now(), Some(obama), 0.7, 0.9, face))
        .await
        .unwrap();
    let unknown = store
        .insert_detection(&NewDetection::single(camera.id, chrono::Utc::now(), None, 0.0, 0.9, face))
        .await
        .unwrap();
    let post = |path: String| as_admin(test::TestRequest::post().uri(&path));

    let cases: Vec<(test::TestRequest, StatusCode, &str)> = vec![
        (post("/api/v1/detections/999999/confirm".into()), StatusCode::NOT_FOUND, "not_found"),
        (post("/api/v1/detections/999999/reject".into()), StatusCode::NOT_FOUND, "not_found"),
        (post(format!("/api/v1/detections/{matched}/confirm")), StatusCode::CONFLICT, "no_stored_face"),
        (post(format!("/api/v1/detections/{matched}/reject")), StatusCode::CONFLICT, "no_stored_face"),
        (post(format!("/api/v1/detections/{unknown}/reject")), StatusCode::CONFLICT, "not_matched"),
        (post(format!("/api/v1/detections/{unknown}/confirm")), StatusCode::UNPROCESSABLE_ENTITY, "person_required"),
        (
            post(format!("/api/v1/detections/{unknown}/confirm")).set_json(json!({"person_id": 424242})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            post(format!("/api/v1/detections/{matched}/confirm"))
                .insert_header(("Content-Type", "application/json"))
                .set_payload("{\"person_id\": "),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            post(format!("/api/v1/detections/{matched}/confirm")).set_json(json!({"person": obama})),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            as_admin(test::TestRequest::delete().uri(&format!("/api/v1/detections/{matched}/review"))),
            StatusCode::CONFLICT,
            "not_reviewed",
        ),
        (as_admin(test::TestRequest::get().uri("/api/v1/audit?limit=0")), StatusCode::BAD_REQUEST, "invalid_limit"),
    ];
    for (req, status, code) in cases {
        let (s, r) = call(&app, req).await;
        assert_eq!((s, r["error"]["code"].as_str()), (status, Some(code)), "{r}");
    }
    let rows = store.list_detections(&DetectionFilter::default(), None, 10).await.unwrap();
    assert!(rows.iter().all(|d| d.review.is_none()), "{rows:?}");
    assert_eq!(rows.iter().find(|d| d.id == matched).and_then(|d| d.person_id), Some(obama));
    let (_, audit) = call(&app, as_admin(test::TestRequest::get().uri("/api/v1/audit"))).await;
    assert_eq!(audit["entries"].as_array().map(Vec::len), Some(0), "{audit}");
    engine.shutdown().await;
}
