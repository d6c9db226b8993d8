//! The scheduler on a real PostgreSQL with real models: it follows the cameras table, shares cameras
//! between engine nodes through leases (a dead node's cameras move), and sheds analysis rate when
//! latency exceeds the budget.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix::prelude::*;
use panoptes_actors::camera::CameraState;
use panoptes_actors::inference::InferenceWorker;
use panoptes_actors::matcher::MatcherActor;
use panoptes_actors::scheduler::{
    CameraReport, GetSchedulerStats, ListCameraStatus, Scheduler, SchedulerConfig, StopScheduler,
};
use panoptes_actors::sink::DetectionSink;
use panoptes_engine::storage::Store;

async fn until(s: &Addr<Scheduler>, what: &str, pred: impl Fn(&[CameraReport]) -> bool) -> Vec<CameraReport> {
    common::eventually(what, Duration::from_secs(30), || async { s.send(ListCameraStatus).await.unwrap() }, |r| pred(r))
        .await
}

/// One inference worker (real models) feeding a matcher and sink on `store`.
async fn worker(store: &Store) -> (Addr<InferenceWorker>, Arbiter) {
    let p = common::pipeline();
    let gallery = common::gallery_for(store, &p).await;
    let sink = DetectionSink::new(store.clone(), 1000).start();
    let matcher = MatcherActor::new(Duration::from_secs(30), false, sink.recipient()).start();
    let arbiter = Arbiter::new();
    let (g, m) = (gallery.clone(), matcher.recipient());
    let worker = InferenceWorker::start_in_arbiter(&arbiter.handle(), move |_| InferenceWorker::new(p, g, 0.55, m));
    (worker, arbiter)
}

fn config(node: &str) -> SchedulerConfig {
    SchedulerConfig { node_id: node.into(), lease_ttl: Duration::from_secs(3), ..SchedulerConfig::default() }
}

fn ids(r: &[CameraReport]) -> HashSet<i64> {
    r.iter().map(|c| c.id).collect()
}

#[actix_web::test]
async fn cameras_start_and_stop_with_the_database_rows() {
    let (store, _) = common::fresh_store().await;
    let (worker, arbiter) = worker(&store).await;
    let scheduler = Scheduler::new(store.clone(), vec![worker], config("solo")).start();
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
    scheduler.send(StopScheduler { release_leases: true }).await.unwrap();
    arbiter.stop();
}

#[actix_web::test]
async fn two_nodes_share_the_cameras_and_a_dead_nodes_cameras_are_taken_over() {
    let (store, _) = common::fresh_store().await;
    let clip = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "lease");
    let mut all = HashSet::new();
    for i in 0..4 {
        all.insert(store.create_camera(&format!("cam{i}"), &common::path_str(&clip), 2.0, true).await.unwrap().id);
    }
    let (worker, arbiter) = worker(&store).await;
    let a = Scheduler::new(store.clone(), vec![worker.clone()], config("node-a")).start();
    let b = Scheduler::new(store.clone(), vec![worker], config("node-b")).start();

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
    b.send(StopScheduler { release_leases: true }).await.unwrap();
    assert!(store.lease_owners().await.unwrap().is_empty(), "a graceful stop releases the leases");
    arbiter.stop();
}

#[actix_web::test]
async fn latency_over_budget_lowers_the_analysis_rate() {
    let (store, _) = common::fresh_store().await;
    let clip = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "shed");
    let cam = store.create_camera("busy", &common::path_str(&clip), 5.0, true).await.unwrap();
    let (worker, arbiter) = worker(&store).await;
    // A budget no real frame can meet: every window is "overloaded".
    let cfg = SchedulerConfig { latency_budget: Duration::from_millis(1), min_fps: 1.0, ..config("shed") };
    let scheduler = Scheduler::new(store.clone(), vec![worker], cfg).start();
    let r = until(&scheduler, "rate shed to the floor", |r| r.len() == 1 && r[0].analysis_fps <= 1.0).await;
    assert_eq!((r[0].id, r[0].target_fps), (cam.id, 5.0));
    let stats = scheduler.send(GetSchedulerStats).await.unwrap();
    assert!(stats.sheds >= 4, "5 → 3.5 → 2.45 → 1.7 → 1.2 → 1.0 takes several steps, saw {}", stats.sheds);
    // The decoder follows: over 4 s at 1 fps it samples about 4 frames, not 20.
    let before = r[0].decoder.unwrap().sampled;
    actix::clock::sleep(Duration::from_secs(4)).await;
    let after = scheduler.send(ListCameraStatus).await.unwrap()[0].decoder.unwrap().sampled;
    assert!(after - before <= 7, "sampled {} frames in 4 s at 1 fps", after - before);
    scheduler.send(StopScheduler { release_leases: true }).await.unwrap();
    arbiter.stop();
}
