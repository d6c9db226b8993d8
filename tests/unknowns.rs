//! Unknown identities on the real engine (the assembly `panoptes serve` runs) and the real models:
//! one unenrolled face seen on two cameras becomes one unknown identity; named, it is a person, and
//! their next appearance is recognised. A viewer may list but not name; bad names get their own 4xx.

mod common;

use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test;
use common::operator_api::*;
use panoptes_engine::storage::Store;
use serde_json::json;

/// Stops camera `id` (its appearance ends and is written as ended) without unlinking its rows.
async fn disable<S>(app: &S, id: i64)
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let req = test::TestRequest::patch().uri(&format!("/api/v1/cameras/{id}")).set_json(json!({"enabled": false}));
    let (s, r) = call(app, as_admin(req)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
}

/// The unknown identity appearance `id` is grouped into, once it is (up to two minutes).
async fn identity_of(store: &Store, id: i64) -> i64 {
    let grouped = common::eventually(
        &format!("appearance {id} grouped"),
        Duration::from_secs(120),
        || async { store.get_detection(id).await.unwrap() },
        |d| d.as_ref().is_some_and(|d| d.unknown_id.is_some()),
    )
    .await;
    grouped.and_then(|d| d.unknown_id).expect("grouped")
}

#[actix_web::test]
async fn one_stranger_on_two_cameras_is_one_identity_and_once_named_is_recognised() {
    let (engine, media) = engine("unknowns").await;
    let store = engine.store().clone();
    let app = app(&engine).await;
    let obama = enroll(&app, "Barack Obama", "obama.jpg").await;
    let clip = clip_of(&common::photo("biden.jpg"), "unknowns-biden");

    // The same stranger at the front door, then at the back door.
    let front = add_camera(&app, &media, &clip, "front door", "front.h264").await;
    let first = appearance(&store, front, "the stranger at the front door", |d| d.person_id.is_none()).await;
    disable(&app, front).await;
    let identity = identity_of(&store, first.id).await;
    // An alert rule on that identity: it is judged when the next appearance joins it.
    let rule =
        json!({"name": "The stranger returns", "who": "unknown", "unknown_ids": [identity], "outputs": ["events"]});
    let (s, r) = call(&app, as_admin(test::TestRequest::post().uri("/api/v1/alert-rules")).set_json(&rule)).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let mut live = engine.api_state().events.subscribe();
    let back = add_camera(&app, &media, &clip, "back door", "back.h264").await;
    let second = appearance(&store, back, "the stranger at the back door", |d| d.person_id.is_none()).await;
    disable(&app, back).await;
    assert_eq!(identity_of(&store, second.id).await, identity, "the same face became two identities");
    let announced = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match live.recv().await {
                Ok(e) if e.grouped.is_some() => return e,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("live events closed: {e}"),
            }
        }
    })
    .await
    .expect("the appearance joining the identity was not announced");
    let grouped = announced.grouped.clone().unwrap();
    assert_eq!((announced.detection.id, grouped.unknown_id, grouped.days), (Some(second.id), identity, 1));
    let routing = engine.api_state().rules.current().route(&announced);
    assert_eq!(routing.alerts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["The stranger returns"]);
    assert!(routing.reaches(panoptes_engine::alerts::Output::Events));
    assert!(!routing.reaches(panoptes_engine::alerts::Output::Webhooks));
    let (s, r) =
        call(&app, as_viewer(test::TestRequest::get().uri(&format!("/api/v1/detections/{}", second.id)))).await;
    assert_eq!((s, r["unknown_id"].as_i64()), (StatusCode::OK, Some(identity)), "{r}");

    // Listed for anyone who may read, with both cameras.
    let (s, r) = call(&app, as_viewer(test::TestRequest::get().uri("/api/v1/unknowns"))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{r}");
    let u = &items[0];
    assert_eq!(u["id"].as_i64(), Some(identity), "{r}");
    assert!(u["appearances"].as_i64().unwrap() >= 2, "{r}");
    let cameras: Vec<i64> = u["cameras"].as_array().unwrap().iter().filter_map(|c| c.as_i64()).collect();
    assert!(cameras.contains(&front) && cameras.contains(&back), "{r}");
    assert!(u["best_face_url"].as_str().is_some_and(|s| s.contains("kind=face")), "{r}");
    assert!(u["first_seen_at"].as_str().is_some() && u["last_seen_at"].as_str().is_some(), "{r}");

    // Naming it: refused for a viewer, for an identity that does not exist, for a name taken, and
    // for a body that is neither a name nor a person.
    let name = |id: i64| test::TestRequest::post().uri(&format!("/api/v1/unknowns/{id}/name"));
    let cases = vec![
        (as_viewer(name(identity).set_json(json!({"name": "Joe Biden"}))), StatusCode::FORBIDDEN, "forbidden"),
        (as_admin(name(999_999).set_json(json!({"name": "Joe Biden"}))), StatusCode::NOT_FOUND, "not_found"),
        (as_admin(name(identity).set_json(json!({"name": "barack obama"}))), StatusCode::CONFLICT, "name_taken"),
        (as_admin(name(identity).set_json(json!({}))), StatusCode::UNPROCESSABLE_ENTITY, "name_or_person_required"),
        (as_admin(name(identity).set_json(json!({"name": "  "}))), StatusCode::UNPROCESSABLE_ENTITY, "invalid_name"),
        (as_admin(name(identity).set_json(json!({"person_id": 424242}))), StatusCode::NOT_FOUND, "not_found"),
        (
            as_admin(name(identity).insert_header(("Content-Type", "application/json")).set_payload("{\"name\": ")),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ];
    for (req, status, code) in cases {
        let (s, r) = call(&app, req).await;
        assert_eq!((s, r["error"]["code"].as_str()), (status, Some(code)), "{r}");
    }
    assert_eq!(store.person_named("Joe Biden").await.unwrap(), None, "a refused naming created a person");
    let (s, _) = call(&app, as_admin(test::TestRequest::get().uri(&format!("/api/v1/persons/{obama}")))).await;
    assert_eq!(s, StatusCode::OK);

    let (s, r) = call(&app, as_admin(name(identity).set_json(json!({"name": "Joe Biden"})))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let biden = r["person_id"].as_i64().expect("person id");
    assert!(!r["enrolled"].as_array().unwrap().is_empty(), "{r}");
    let (s, r) = call(&app, as_admin(name(identity).set_json(json!({"name": "Joe Biden"})))).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("already_named")), "{r}");
    // Merging: refused for a viewer, into itself, into an identity that does not exist, and for a
    // named identity.
    let merge = |id: i64| test::TestRequest::post().uri(&format!("/api/v1/unknowns/{id}/merge"));
    let cases = vec![
        (as_viewer(merge(identity).set_json(json!({"into": 1}))), StatusCode::FORBIDDEN, "forbidden"),
        (
            as_admin(merge(identity).set_json(json!({"into": identity}))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "same_identity",
        ),
        (as_admin(merge(identity).set_json(json!({"into": 999_999}))), StatusCode::NOT_FOUND, "not_found"),
        (as_admin(merge(999_998).set_json(json!({"into": identity}))), StatusCode::NOT_FOUND, "not_found"),
        (as_admin(merge(identity).set_json(json!({"with": 3}))), StatusCode::BAD_REQUEST, "invalid_json"),
    ];
    for (req, status, code) in cases {
        let (s, r) = call(&app, req).await;
        assert_eq!((s, r["error"]["code"].as_str()), (status, Some(code)), "{r}");
    }
    let row = store.get_detection(first.id).await.unwrap().unwrap();
    assert_eq!((row.person_id, row.review.as_deref()), (Some(biden), Some("confirmed")), "{row:?}");

    // Named identities leave the list (and are listed with named=true).
    let (_, r) = call(&app, as_viewer(test::TestRequest::get().uri("/api/v1/unknowns"))).await;
    assert_eq!(r["items"].as_array().map(Vec::len), Some(0), "{r}");
    let (_, r) = call(&app, as_viewer(test::TestRequest::get().uri("/api/v1/unknowns?named=true"))).await;
    assert_eq!(r["items"][0]["named_person_id"].as_i64(), Some(biden), "{r}");

    // The next appearance is recognised.
    let side = add_camera(&app, &media, &clip, "side door", "side.h264").await;
    let recognised = appearance(&store, side, "Joe Biden recognised", |d| d.person_id == Some(biden)).await;
    eprintln!("recognised after naming: score {:.3}", recognised.score);

    let (s, audit) = call(&app, as_admin(test::TestRequest::get().uri("/api/v1/audit"))).await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let target = format!("unknown:{identity}");
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "name_unknown" && e["target"] == target.as_str()),
        "{audit}"
    );

    // Erasing the person takes the named identity and the grouping with them: their appearances do
    // not come back as a stranger's.
    let erase = as_admin(test::TestRequest::delete().uri(&format!("/api/v1/persons/{biden}")));
    let (s, r) = call(&app, erase).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    for named in ["false", "true"] {
        let (_, r) =
            call(&app, as_viewer(test::TestRequest::get().uri(&format!("/api/v1/unknowns?named={named}")))).await;
        assert_eq!(r["items"].as_array().map(Vec::len), Some(0), "{r}");
    }
    let row = store.get_detection(first.id).await.unwrap().unwrap();
    assert_eq!((row.person_id, row.unknown_id), (None, None), "{row:?}");
    engine.shutdown().await;
}

/// Two identities an operator says are one stranger: the appearances move, the merged identity goes,
/// the audit says who; a named identity or one of another embedder is refused.
#[actix_web::test]
async fn merging_two_unknown_identities_moves_their_appearances() {
    use panoptes_engine::storage::unknowns::MergeOutcome;
    let (store, _) = common::fresh_store().await;
    let camera = store.create_camera("gate", "rtsp://127.0.0.1/gate", 5.0, false).await.unwrap();
    let model = panoptes_engine::embed::ModelId { name: "sface".into(), version: "test".into() };
    let bbox = panoptes_engine::geometry::BBox { x: 0.0, y: 0.0, width: 40.0, height: 40.0 };
    let mut identities = Vec::new();
    for _ in 0..3 {
        let mut d = panoptes_engine::storage::NewDetection::single(camera.id, chrono::Utc::now(), None, 0.1, 0.9, bbox);
        d.last_seen_at = Some(d.detected_at);
        let id = store.insert_detection(&d).await.unwrap();
        identities.push(store.group_appearance(id, None, &model).await.unwrap().expect("grouped"));
    }
    let (a, b, named) = (identities[0], identities[1], identities[2]);
    let person = store.create_person("Named Stranger", &json!({})).await.unwrap();
    assert!(store.mark_unknown_named(named, person.id, "key:ops", json!({})).await.unwrap());

    assert_eq!(store.merge_unknowns(a, named, "key:ops").await.unwrap(), MergeOutcome::Named(named));
    assert_eq!(store.merge_unknowns(a, 999_999, "key:ops").await.unwrap(), MergeOutcome::NotFound(999_999));
    assert_eq!(store.merge_unknowns(a, b, "key:ops").await.unwrap(), MergeOutcome::Merged { appearances: 1 });
    assert_eq!(store.unknown(a).await.unwrap(), None, "the merged identity is gone");
    assert_eq!(store.unknown(b).await.unwrap().map(|u| u.appearances), Some(2));
    let audit = store.list_audit(None, 10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "merge_unknown" && e.target == format!("unknown:{a}")), "{audit:?}");
}
