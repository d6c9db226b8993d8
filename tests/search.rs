//! Search by face on the real engine (the assembly `panoptes serve` runs) and the real models:
//! appearances on three cameras are found by a photo or by one of them, a person's own appearances
//! first; filters, pages and the audit trail; an erased person's faces stop answering at once; bad
//! requests get their own 4xx and change nothing.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test;
use common::operator_api::*;
use panoptes_engine::geometry::BBox;
use panoptes_engine::storage::NewDetection;
use serde_json::{json, Value};

/// A search by `photo` (a file of the test photos) with the query string `query`.
fn by_photo(photo: &str, query: &str) -> test::TestRequest {
    let bytes = common::photo_bytes(photo);
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{photo}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend(format!("\r\n--{BOUNDARY}--\r\n").bytes());
    test::TestRequest::post()
        .uri(&format!("/api/v1/search?{query}"))
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}")))
        .set_payload(body)
}

fn by_detection(id: i64, query: &str) -> test::TestRequest {
    test::TestRequest::post().uri(&format!("/api/v1/search?{query}")).set_json(json!({ "detection_id": id }))
}

/// (detection id, camera id, score) of each hit, in the answer's order.
fn hits(r: &Value) -> Vec<(i64, i64, f64)> {
    r["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no hits in {r}"))
        .iter()
        .map(|h| {
            (h["detection_id"].as_i64().unwrap(), h["camera_id"].as_i64().unwrap_or(-1), h["score"].as_f64().unwrap())
        })
        .collect()
}

/// Searches with `req` until the answer covers every camera of `cameras` (the index reads new faces
/// every 2 s; a busy machine runs the models slowly).
async fn search_until_found<S>(app: &S, req: impl Fn() -> test::TestRequest, cameras: &[i64]) -> Value
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, r) = call(app, req()).await;
        if s == StatusCode::OK {
            let seen: HashSet<i64> = hits(&r).iter().map(|h| h.1).collect();
            if cameras.iter().all(|c| seen.contains(c)) {
                return r;
            }
        }
        assert!(Instant::now() < deadline, "search never found appearances of every camera {cameras:?}: {s} {r}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[actix_web::test]
async fn search_finds_a_persons_appearances_first_across_cameras_and_pages_exactly() {
    let (engine, media) = engine("search").await;
    let store = engine.store().clone();
    let app = app(&engine).await;
    let obama = enroll(&app, "Barack Obama", "obama.jpg").await;
    // Obama on two cameras (two other photos of him), Biden on a third.
    let door =
        add_camera(&app, &media, &clip_of(&common::photo("obama2.jpg"), "search-obama2"), "door", "door.h264").await;
    let yard =
        add_camera(&app, &media, &clip_of(&common::photo("obama3.jpg"), "search-obama3"), "yard", "yard.h264").await;
    let lobby =
        add_camera(&app, &media, &clip_of(&common::photo("biden.jpg"), "search-biden"), "lobby", "lobby.h264").await;
    let biden = appearance(&store, lobby, "Biden's appearance", |_| true).await;
    for camera in [door, yard] {
        appearance(&store, camera, "Obama's appearance", |_| true).await;
    }
    // Every camera's faces in the index, then the cameras stopped so that the stored faces hold
    // still while the pages are compared.
    search_until_found(&app, || as_viewer(by_photo("obama.jpg", "")), &[door, yard, lobby]).await;
    for camera in [door, yard, lobby] {
        let req =
            test::TestRequest::patch().uri(&format!("/api/v1/cameras/{camera}")).set_json(json!({"enabled": false}));
        let (s, r) = call(&app, as_admin(req)).await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }
    tokio::time::sleep(Duration::from_secs(5)).await;

    // By photo, as a viewer: Obama's appearances (door, yard) all rank before Biden's (lobby).
    let (s, r) = call(&app, as_viewer(by_photo("obama.jpg", "limit=100"))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let all = hits(&r);
    eprintln!("search by photo: {all:?}");
    assert!(all.windows(2).all(|w| w[0].2 >= w[1].2), "not ranked by score: {all:?}");
    let first_biden = all.iter().position(|h| h.1 == lobby).expect("Biden's appearance answers too");
    let last_obama = all.iter().rposition(|h| h.1 == door || h.1 == yard).expect("Obama's appearances answer");
    assert!(last_obama < first_biden, "a stranger ranked before one of Obama's appearances: {all:?}");
    assert_eq!(r["query"]["kind"], "photo", "{r}");
    let top = &r["hits"][0];
    assert!(top["score"].as_f64().unwrap() > 0.5, "{top}");
    assert!(top["snapshot_url"].as_str().is_some_and(|u| u.ends_with("/snapshot.jpg")), "{top}");
    let obama_hits: Vec<i64> = all.iter().filter(|h| h.1 != lobby).map(|h| h.0).collect();

    // By a stored appearance: Biden's own appearance first, scoring 1 with itself.
    let (s, r) = call(&app, as_viewer(by_detection(biden.id, ""))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let by_biden = hits(&r);
    assert_eq!(by_biden[0].0, biden.id, "{r}");
    assert!(by_biden[0].2 > 0.999, "{r}");

    // Filters: one camera; a minimum score; a time range before every appearance.
    let (s, r) = call(&app, as_viewer(by_photo("obama.jpg", &format!("camera_id={lobby}")))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(!hits(&r).is_empty() && hits(&r).iter().all(|h| h.1 == lobby), "{r}");
    let (s, r) = call(&app, as_viewer(by_photo("obama.jpg", &format!("camera_id={door},{yard}&min_score=0.3")))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(hits(&r).iter().all(|h| (h.1 == door || h.1 == yard) && h.2 >= 0.3), "{r}");
    let (s, r) = call(&app, as_viewer(by_photo("obama.jpg", "until=2020-01-01T00:00:00Z"))).await;
    assert_eq!((s, hits(&r).len()), (StatusCode::OK, 0), "{r}");

    // Pages of one follow the one long page exactly.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=1&cursor={c}"),
            None => "limit=1".to_string(),
        };
        let (s, r) = call(&app, as_viewer(by_photo("obama.jpg", &q))).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        paged.extend(hits(&r).into_iter().map(|h| h.0));
        match r["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(paged.len() <= all.len(), "pages run past the answer: {paged:?}");
    }
    assert_eq!(paged, all.iter().map(|h| h.0).collect::<Vec<_>>());

    // Every search is in the audit trail, with who searched and by what.
    let (s, audit) = call(&app, as_admin(test::TestRequest::get().uri("/api/v1/audit?limit=1000"))).await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let searches: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "search")
        .map(|e| (e["actor"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert!(searches.contains(&("key:guard", "photo")), "{audit}");
    let by_detection_target = format!("detection:{}", biden.id);
    assert!(searches.contains(&("key:guard", by_detection_target.as_str())), "{audit}");

    // Obama erased: his matched appearances' faces stop answering at once, whatever the index holds.
    let (s, r) = call(&app, as_admin(test::TestRequest::delete().uri(&format!("/api/v1/persons/{obama}")))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, r) = call(&app, as_viewer(by_photo("obama.jpg", "limit=100"))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let left: Vec<i64> = hits(&r).iter().map(|h| h.0).collect();
    let matched: Vec<i64> = obama_hits.iter().copied().filter(|id| !left.contains(id)).collect();
    assert!(!matched.is_empty(), "none of Obama's appearances was erased with him: {left:?}");
    for id in &matched {
        let row = store.get_detection(*id).await.unwrap();
        assert!(row.as_ref().is_none_or(|d| d.person_id.is_none()), "an erased appearance still answers: {row:?}");
    }
    engine.shutdown().await;
}

#[actix_web::test]
async fn bad_search_requests_get_their_own_errors() {
    let (engine, _media) = engine("search-bad").await;
    let store = engine.store().clone();
    let app = app(&engine).await;
    let camera = store.create_camera("lobby", "lobby.h264", 5.0, false).await.unwrap();
    let face = BBox { x: 10.0, y: 10.0, width: 100.0, height: 100.0 };
    // An appearance whose face was not kept.
    let faceless = store
        .insert_detection(&NewDetection::single(camera.id, chrono::Utc::now(), None, 0.0, 0.9, face))
        .await
        .unwrap();
    let audit_before = store.list_audit(None, 1000).await.unwrap().len();

    let cases: Vec<(test::TestRequest, StatusCode, &str)> = vec![
        (by_photo("Tom_Hanks_54745.png", ""), StatusCode::UNPROCESSABLE_ENTITY, "no_face"),
        (by_photo("t1.jpg", ""), StatusCode::UNPROCESSABLE_ENTITY, "several_faces"),
        (by_detection(999_999, ""), StatusCode::NOT_FOUND, "not_found"),
        (by_detection(faceless, ""), StatusCode::CONFLICT, "no_stored_face"),
        (by_detection(faceless, "cursor=nonsense"), StatusCode::BAD_REQUEST, "invalid_cursor"),
        (by_detection(faceless, "limit=0"), StatusCode::BAD_REQUEST, "invalid_query"),
        (by_detection(faceless, "min_score=2"), StatusCode::BAD_REQUEST, "invalid_query"),
        (by_detection(faceless, "camera_id=1,x"), StatusCode::BAD_REQUEST, "invalid_query"),
        (
            by_detection(faceless, "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z"),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (by_detection(faceless, "person_id=3"), StatusCode::BAD_REQUEST, "invalid_query"),
        (
            test::TestRequest::post()
                .uri("/api/v1/search")
                .insert_header(("Content-Type", "application/json"))
                .set_payload("{\"detection_id\": "),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            test::TestRequest::post()
                .uri("/api/v1/search")
                .insert_header(("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}")))
                .set_payload(format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{BOUNDARY}--\r\n"
                )),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_photo",
        ),
    ];
    for (req, status, code) in cases {
        let (s, r) = call(&app, as_viewer(req)).await;
        assert_eq!((s, r["error"]["code"].as_str()), (status, Some(code)), "{r}");
    }
    // Without a key: refused before anything is read.
    let (s, _) = call(&app, by_detection(faceless, "")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Nothing was searched, so nothing was recorded, and the appearance is as it was.
    assert_eq!(store.list_audit(None, 1000).await.unwrap().len(), audit_before);
    assert!(store.get_detection(faceless).await.unwrap().is_some());
    engine.shutdown().await;
}

/// A face of `model` for appearance rows written directly (no camera, no models).
fn stored_face(
    model: &panoptes_engine::embed::ModelId,
    seed: f32,
) -> std::sync::Arc<panoptes_engine::track::TrackEmbedding> {
    let v: Vec<f32> = (0..128).map(|i| ((i as f32 + 1.0) * seed).sin()).collect();
    std::sync::Arc::new(panoptes_engine::track::TrackEmbedding { model: model.clone(), quality: 0.9, vector: v.into() })
}

#[actix_web::test]
async fn the_index_follows_faces_written_replaced_and_deleted_in_the_database() {
    use panoptes_engine::embed::{Judgement, ModelId, ModelInfo};
    use panoptes_engine::search::sync::IndexSync;
    use panoptes_engine::search::AppearanceIndex;
    use std::sync::{Arc, RwLock};

    let (store, _url) = common::fresh_store().await;
    let id = ModelId { name: "sface".into(), version: "test".into() };
    let judgement = Judgement { match_threshold: 0.4, instant_match_score: 0.6, margin: 0.05 };
    let model = ModelInfo { id: id.clone(), dim: 128, judgement };
    let camera = store.create_camera("gate", "gate.h264", 5.0, false).await.unwrap();
    let face = BBox { x: 10.0, y: 10.0, width: 100.0, height: 100.0 };
    let row = |seed: f32| {
        let mut d = NewDetection::single(camera.id, chrono::Utc::now(), None, 0.0, 0.9, face);
        d.face = Some(stored_face(&id, seed));
        d
    };
    let first = store.insert_detection(&row(0.1)).await.unwrap();
    let index = Arc::new(RwLock::new(AppearanceIndex::new(id.clone(), 128)));
    let mut sync = IndexSync::new().with_reconcile_every(Duration::ZERO);
    let r = sync.refresh(&store, &index, &model).await.expect("first read");
    assert!(r.rebuilt && index.read().unwrap().read_whole());
    assert_eq!(index.read().unwrap().len(), 1);

    // Written since: read; written again with a better face: replaced, not added.
    let second = store.insert_detection(&row(0.2)).await.unwrap();
    let r = sync.refresh(&store, &index, &model).await.unwrap();
    assert_eq!((r.written, index.read().unwrap().len()), (1, 2), "{r:?}");
    let mut better = row(0.3);
    better.id = Some(second);
    store.insert_detection(&better).await.unwrap();
    let r = sync.refresh(&store, &index, &model).await.unwrap();
    assert_eq!((r.written, index.read().unwrap().len()), (1, 2), "{r:?}");
    let query = stored_face(&id, 0.3);
    let (found, _) = index.read().unwrap().candidates(&query.vector, 1, &Default::default()).unwrap();
    assert_eq!(found[0].detection_id, second);

    // Nothing new: nothing read.
    let r = sync.refresh(&store, &index, &model).await.unwrap();
    assert_eq!(r.written, 0, "{r:?}");

    // Deleted in the database (retention of faces): dropped from the index at the next comparison.
    let n = store.delete_expired_appearance_faces(chrono::Utc::now(), 10).await.unwrap();
    assert_eq!(n, 2);
    let r = sync.refresh(&store, &index, &model).await.unwrap();
    assert_eq!((r.removed, index.read().unwrap().len()), (2, 0), "{r:?}");
    assert!(!index.read().unwrap().contains(first));

    // The gallery's model changes: the index is read anew for it (no faces of that model yet).
    let other = ModelInfo { id: ModelId { name: "mobilefacenet".into(), version: "x".into() }, dim: 128, judgement };
    store.insert_detection(&row(0.4)).await.unwrap();
    let r = sync.refresh(&store, &index, &other).await.unwrap();
    assert!(r.rebuilt, "{r:?}");
    assert_eq!((index.read().unwrap().model(), index.read().unwrap().len()), (&other.id, 0));
}
