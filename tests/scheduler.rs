//! The scheduler on a real PostgreSQL with real models: it follows the cameras table, shares cameras
//! between engine nodes through leases (a dead node's cameras move), and sheds analysis rate when
//! latency exceeds the budget.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix::prelude::*;
use panoptes::Engine;
use panoptes_actors::camera::CameraState;
use panoptes_actors::scheduler::{CameraReport, GetSchedulerStats, ListCameraStatus, Scheduler, StopScheduler};

async fn until(s: &Addr<Scheduler>, what: &str, pred: impl Fn(&[CameraReport]) -> bool) -> Vec<CameraReport> {
    common::eventually(what, Duration::from_secs(30), || async { s.send(ListCameraStatus).await.unwrap() }, |r| pred(r))
        .await
}

/// An engine as `serve` assembles it, on database `db`, with 3 s leases.
async fn engine(db: &str, node: &str, tweak: impl FnOnce(&mut panoptes::Settings)) -> Engine {
    let mut settings = common::engine_settings(db, node);
    settings.streaming.lease_ttl_secs = 3;
    tweak(&mut settings);
    common::start_engine(settings).await
}

fn ids(r: &[CameraReport]) -> HashSet<i64> {
    r.iter().map(|c| c.id).collect()
}

#[actix_web::test]
async fn cameras_start_and_stop_with_the_database_rows() {
    let (store, db) = common::fresh_store().await;
    let engine = engine(&db, "solo", |_| {}).await;
    let scheduler = engine.scheduler().clone();
    until(&scheduler, "empty", |r| r.is_empty()).await;

    let clip = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "sched");
    let a = store.create_camera("a", &common::path_str(&clip), 5.0, true).await.unwrap();
    let _off = store.create_camera("disabled", &common::path_str(&clip), 5.0, false).await.unwrap();
    let r = until(&scheduler, "camera a streaming", |r| {
        r.len() == 1 && r[0].status.as_ref().is_some_and(|s| s.state == CameraState::Streaming)
    })
    .await;
    assert_eq!(r[0].id, a.id);
    assert_eq!(store.lease_owners().await.unwrap(), vec![(a.id, "solo".to_string())]);

    assert!(store.delete_camera(a.id).await.unwrap());
    until(&scheduler, "camera a stopped", |r| r.is_empty()).await;
    engine.shutdown().await;
}

#[actix_web::test]
async fn two_nodes_share_the_cameras_and_a_dead_nodes_cameras_are_taken_over() {
    let (store, db) = common::fresh_store().await;
    let clip = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "lease");
    let mut all = HashSet::new();
    for i in 0..4 {
        all.insert(store.create_camera(&format!("cam{i}"), &common::path_str(&clip), 2.0, true).await.unwrap().id);
    }
    let node_a = engine(&db, "node-a", |_| {}).await;
    let node_b = engine(&db, "node-b", |_| {}).await;
    let (a, b) = (node_a.scheduler().clone(), node_b.scheduler().clone());

    // Both nodes run cameras, no camera runs twice, and together they run all of them.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ra, rb) = (ids(&a.send(ListCameraStatus).await.unwrap()), ids(&b.send(ListCameraStatus).await.unwrap()));
        assert!(ra.is_disjoint(&rb), "a camera runs on both nodes: {ra:?} {rb:?}");
        if !ra.is_empty() && !rb.is_empty() && ra.union(&rb).copied().collect::<HashSet<_>>() == all {
            eprintln!("node-a runs {ra:?}, node-b runs {rb:?}");
            break;
        }
        assert!(Instant::now() < deadline, "cameras not shared between the nodes: {ra:?} {rb:?}");
        actix::clock::sleep(Duration::from_millis(200)).await;
    }
    let owners: HashSet<String> = store.lease_owners().await.unwrap().into_iter().map(|(_, n)| n).collect();
    assert_eq!(owners, HashSet::from(["node-a".to_string(), "node-b".to_string()]));

    // node-a dies without releasing anything; node-b takes every camera once the leases expire.
    let died = Instant::now();
    a.send(StopScheduler { release_leases: false }).await.unwrap();
    let r = until(&b, "node-b runs every camera", |r| ids(r) == all).await;
    eprintln!("takeover after {:?}", died.elapsed());
    assert!(died.elapsed() < Duration::from_secs(30));
    assert_eq!(r.len(), 4);
    let stats = b.send(GetSchedulerStats).await.unwrap();
    assert_eq!((stats.node_id.as_str(), stats.cameras), ("node-b", 4));
    node_b.shutdown().await;
    assert!(store.lease_owners().await.unwrap().is_empty(), "a graceful stop releases the leases");
    drop(node_a);
}

#[actix_web::test]
async fn latency_over_budget_lowers_the_analysis_rate() {
    let (store, db) = common::fresh_store().await;
    let clip = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "shed");
    let cam = store.create_camera("busy", &common::path_str(&clip), 5.0, true).await.unwrap();
    // A budget no real frame can meet: every window is "overloaded".
    let engine = engine(&db, "shed", |s| {
        s.streaming.latency_budget_ms = 1;
        s.streaming.min_fps = 1.0;
    })
    .await;
    let scheduler = engine.scheduler().clone();
    let r = until(&scheduler, "rate shed to the floor", |r| r.len() == 1 && r[0].analysis_fps <= 1.0).await;
    assert_eq!((r[0].id, r[0].target_fps), (cam.id, 5.0));
    let stats = scheduler.send(GetSchedulerStats).await.unwrap();
    assert!(stats.sheds >= 4, "5 → 3.5 → 2.45 → 1.7 → 1.2 → 1.0 takes several steps, saw {}", stats.sheds);
    // The decoder follows: over 4 s at 1 fps it samples about 4 frames, not 20.
    let before = r[0].decoder.unwrap().sampled;
    actix::clock::sleep(Duration::from_secs(4)).await;
    let after = scheduler.send(ListCameraStatus).await.unwrap()[0].decoder.unwrap().sampled;
    assert!(after - before <= 7, "sampled {} frames in 4 s at 1 fps", after - before);
    engine.shutdown().await;
}

/// Renaming a camera, or changing its analysis rate, keeps its RTSP session: only a new URL (or
/// transport) reconnects. The new rate reaches the running decoder.
#[actix_web::test]
async fn only_a_change_of_the_stream_restarts_a_camera_pipeline() {
    use common::scripted_rtsp::{Script, ScriptedRtspServer};
    use std::sync::atomic::Ordering;
    let (store, db) = common::fresh_store().await;
    let clip = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "rename");
    let server = ScriptedRtspServer::start(&clip, 10, Script::Clean);
    let engine = engine(&db, "rename", |_| {}).await;
    let scheduler = engine.scheduler().clone();
    let cam = store.create_camera("door", &server.url(), 5.0, true).await.unwrap();
    let streaming =
        |r: &[CameraReport]| r.len() == 1 && r[0].status.as_ref().is_some_and(|s| s.state == CameraState::Streaming);
    let r = until(&scheduler, "streaming", streaming).await;
    let received = r[0].status.as_ref().unwrap().frames_received;
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);

    let patch = |name: Option<&str>, url: Option<String>, fps: Option<f32>| panoptes_engine::storage::CameraPatch {
        name: name.map(str::to_string),
        url,
        analysis_fps: fps,
        ..Default::default()
    };
    store.update_camera(cam.id, &patch(Some("front door"), None, Some(2.0))).await.unwrap();
    let r = until(&scheduler, "the new rate in force at the decoder", |r| {
        r.len() == 1 && r[0].name == "front door" && r[0].decoder.is_some_and(|d| (d.analysis_fps - 2.0).abs() < 1e-3)
    })
    .await;
    assert_eq!((r[0].analysis_fps, r[0].target_fps), (2.0, 2.0));
    actix::clock::sleep(Duration::from_secs(2)).await;
    let r = scheduler.send(ListCameraStatus).await.unwrap();
    let now = r[0].status.as_ref().unwrap().frames_received;
    assert!(now > received, "the same session kept counting ({received} → {now}), not a new one from 0");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "a rename or a new rate reconnected the camera");

    // A new URL is a new stream: that one reconnects.
    store.update_camera(cam.id, &patch(None, Some(format!("{}?profile=2", server.url())), None)).await.unwrap();
    common::eventually(
        "a second connection for the new URL",
        Duration::from_secs(30),
        || async { server.connections.load(Ordering::SeqCst) },
        |n| *n == 2,
    )
    .await;
    until(&scheduler, "streaming again", streaming).await;

    // So does reading the same stream differently: a new stall timeout (the mask alone would not).
    let options = panoptes_engine::storage::CameraOptions { stall_timeout_secs: Some(30.0), ..Default::default() };
    let new_options = panoptes_engine::storage::CameraPatch { options: Some(options), ..Default::default() };
    store.update_camera(cam.id, &new_options).await.unwrap();
    common::eventually(
        "a third connection for the new stall timeout",
        Duration::from_secs(30),
        || async { server.connections.load(Ordering::SeqCst) },
        |n| *n == 3,
    )
    .await;
    until(&scheduler, "streaming again", streaming).await;
    engine.shutdown().await;
}
