//! Alert rules on the real engine (the assembly `panoptes serve` runs) and the real models: rules set
//! through the API decide which appearances reach the live event stream, while every appearance is
//! still stored; config-file rules are listed read-only in the site's time zone; bad rules get a 4xx
//! naming the field; each change is audited; persons get groups that rules pick them by.

mod common;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test;
use common::operator_api::*;
use panoptes_engine::alerts::RuleSpec;
use serde_json::{json, Value};

fn rules() -> test::TestRequest {
    test::TestRequest::post().uri("/api/v1/alert-rules")
}

#[actix_web::test]
async fn rules_decide_what_reaches_the_live_events_and_every_appearance_is_still_stored() {
    let db = common::fresh_database().await;
    let mut settings = common::engine_settings(&db, "rules");
    settings.api.keys = keys();
    settings.alerts.timezone = "Europe/Paris".into();
    let from_file: RuleSpec = serde_json::from_value(json!({"name": "Night watch", "who": "anyone", "enabled": false,
        "windows": [{"start": "22:00", "end": "06:00"}]}))
    .unwrap();
    settings.alerts.rules = vec![from_file];
    let media = std::path::PathBuf::from(&settings.api.media_root);
    let engine = common::start_engine(settings).await;
    let store = engine.store().clone();
    let app = app(&engine).await;
    let obama = enroll(&app, "Barack Obama", "obama.jpg").await;
    let clip = clip_of(&common::photo("obama2.jpg"), "rules-obama");
    std::fs::copy(&clip, media.join("door.h264")).unwrap();
    std::fs::copy(&clip, media.join("hall.h264")).unwrap();
    let camera = |name: &str, file: &str| {
        as_admin(test::TestRequest::post().uri("/api/v1/cameras"))
            .set_json(json!({"name": name, "url": file, "enabled": false}))
    };
    let (_, door) = call(&app, camera("door", "door.h264")).await;
    let (_, hall) = call(&app, camera("hall", "hall.h264")).await;
    let (door, hall) = (door["id"].as_i64().expect("door"), hall["id"].as_i64().expect("hall"));

    // Bad rules: each a 4xx naming what is wrong, and nothing stored.
    let cases = vec![
        (
            json!({"name": "x", "windows": [{"start": "25:00", "end": "06:00"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_rule",
            "windows[0]",
        ),
        (
            json!({"name": "x", "who": "unknown", "person_ids": [obama]}),
            StatusCode::BAD_REQUEST,
            "invalid_rule",
            "person_ids",
        ),
        (json!({"name": "x", "outputs": []}), StatusCode::BAD_REQUEST, "invalid_rule", "outputs"),
        (json!({"name": "x", "colour": "red"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "colour"),
        (json!({"name": "x", "outputs": ["pager"]}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "pager"),
        (
            json!({"name": "x", "camera_ids": [987654]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "camera_not_found",
            "camera_ids[0]",
        ),
        (
            json!({"name": "x", "person_ids": [987654]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "person_not_found",
            "person_ids[0]",
        ),
        (
            json!({"name": "x", "who": "unknown", "unknown_ids": [987654]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_identity_not_found",
            "unknown_ids[0]",
        ),
        (json!({"name": "night WATCH"}), StatusCode::CONFLICT, "rule_name_taken", "config file"),
    ];
    for (body, status, code, names) in cases {
        let (s, r) = call(&app, as_admin(rules()).set_json(&body)).await;
        assert_eq!((s, r["error"]["code"].as_str()), (status, Some(code)), "{body}: {r}");
        assert!(r["error"]["message"].as_str().is_some_and(|m| m.contains(names)), "{body}: {r}");
    }
    let (s, r) = call(&app, as_viewer(rules()).set_json(json!({"name": "x"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{r}");
    assert!(store.list_alert_rules().await.unwrap().is_empty(), "a refused rule was stored");

    // Obama at the door reaches the live events; nobody else and nowhere else does.
    let spec = json!({"name": "Obama at the door", "person_ids": [obama], "camera_ids": [door], "outputs": ["events"]});
    let (s, created) = call(&app, as_admin(rules()).set_json(&spec)).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let rule_id = created["id"].as_i64().expect("rule id");
    assert_eq!((&created["source"], &created["updated_by"]), (&json!("api"), &json!("key:ops")), "{created}");
    let (s, r) = call(&app, as_admin(rules()).set_json(json!({"name": "obama AT the door"}))).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("rule_name_taken")), "{r}");

    let (s, listed) = call(&app, as_viewer(test::TestRequest::get().uri("/api/v1/alert-rules"))).await;
    assert_eq!((s, listed["timezone"].as_str()), (StatusCode::OK, Some("Europe/Paris")), "{listed}");
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{listed}");
    assert_eq!(
        (&items[0]["name"], &items[0]["source"], &items[0]["id"]),
        (&json!("Night watch"), &json!("config"), &Value::Null)
    );
    assert_eq!(items[1]["id"].as_i64(), Some(rule_id), "{listed}");

    let resp = test::call_service(&app, as_viewer(test::TestRequest::get().uri("/api/v1/events")).to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = Box::pin(resp.into_body());
    let enable = |id: i64| {
        as_admin(test::TestRequest::patch().uri(&format!("/api/v1/cameras/{id}"))).set_json(json!({"enabled": true}))
    };
    // The hall first: its appearance is stored but announced nowhere, so the first event is the door's.
    let (s, r) = call(&app, enable(hall)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let in_hall = appearance(&store, hall, "Obama in the hall", |d| d.person_id == Some(obama)).await;
    let (s, r) = call(&app, enable(door)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let event = common::first_sse_event(&mut body, Duration::from_secs(120)).await;
    assert_eq!((event["camera_id"].as_i64(), event["person_id"].as_i64()), (Some(door), Some(obama)), "{event}");
    assert_eq!(event["alerts"], json!([{"id": rule_id, "name": "Obama at the door"}]), "{event}");
    assert_eq!(event["stage"], "began", "{event}");
    assert_eq!(store.get_detection(in_hall.id).await.unwrap().map(|d| d.person_id), Some(Some(obama)));

    // Replaced (disabled), then deleted; each change is audited.
    let put = |id: i64| as_admin(test::TestRequest::put().uri(&format!("/api/v1/alert-rules/{id}")));
    let (s, r) = call(&app, put(rule_id).set_json(json!({"name": "Obama at the door", "enabled": false}))).await;
    assert_eq!((s, &r["enabled"]), (StatusCode::OK, &json!(false)), "{r}");
    let (s, r) = call(&app, put(987654).set_json(json!({"name": "ghost"}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{r}");
    let (s, r) = call(&app, as_viewer(test::TestRequest::get().uri(&format!("/api/v1/alert-rules/{rule_id}")))).await;
    assert_eq!((s, &r["enabled"], &r["camera_ids"]), (StatusCode::OK, &json!(false), &json!([])), "{r}");
    let delete = |id: i64| as_admin(test::TestRequest::delete().uri(&format!("/api/v1/alert-rules/{id}")));
    let (s, _) = call(&app, delete(rule_id)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, r) = call(&app, delete(rule_id)).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{r}");
    let (_, audit) = call(&app, as_admin(test::TestRequest::get().uri("/api/v1/audit"))).await;
    let target = format!("alert_rule:{rule_id}");
    for action in ["create_alert_rule", "update_alert_rule", "delete_alert_rule"] {
        assert!(
            audit["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == action && e["target"] == target.as_str()),
            "{action} not audited: {audit}"
        );
    }

    // Groups: set on a person (kept once each, without regard to case), refused when blank.
    let patch = as_admin(test::TestRequest::patch().uri(&format!("/api/v1/persons/{obama}")));
    let (s, r) = call(&app, patch.set_json(json!({"groups": ["Staff", "staff", " VIP "]}))).await;
    assert_eq!((s, &r["groups"]), (StatusCode::OK, &json!(["Staff", "VIP"])), "{r}");
    let patch = as_admin(test::TestRequest::patch().uri(&format!("/api/v1/persons/{obama}")));
    let (s, r) = call(&app, patch.set_json(json!({"groups": [""]}))).await;
    assert_eq!((s, r["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_groups")), "{r}");
    let by_group = json!({"name": "Staff anywhere", "groups": ["staff"]});
    let (s, r) = call(&app, as_admin(rules()).set_json(&by_group)).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert!(engine.api_state().rules.current().uses_groups());
    engine.shutdown().await;
}
