//! The detection sink against a real PostgreSQL: batches land, and a drain at shutdown writes what is
//! still buffered.

mod common;

use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use panoptes_actors::messages::DetectionEvent;
use panoptes_actors::sink::{DetectionSink, Drain, GetSinkStats};
use panoptes_engine::geometry::BBox;
use panoptes_engine::storage::NewDetection;

fn event(camera_id: i64, score: f32) -> DetectionEvent {
    DetectionEvent(NewDetection {
        camera_id,
        detected_at: Utc::now(),
        person_id: None,
        score,
        det_score: 0.9,
        bbox: BBox { x: 1.0, y: 2.0, width: 30.0, height: 30.0 },
        snapshot_path: None,
    })
}

#[actix_web::test]
async fn a_drain_at_shutdown_writes_every_buffered_event_once() {
    let (store, _) = common::fresh_store().await;
    let cam = store.create_camera("c", "rtsp://127.0.0.1/x", 5.0, false).await.unwrap();
    // No periodic flush during the test: only the drain can write.
    let sink = DetectionSink::new(store.clone(), 100).with_flush_interval(Duration::from_secs(3600)).start();
    for i in 0..7 {
        sink.send(event(cam.id, i as f32 / 10.0)).await.unwrap();
    }
    assert_eq!(sink.send(GetSinkStats).await.unwrap().buffered, 7);
    assert_eq!(sink.send(Drain).await.unwrap(), Ok(7));
    assert_eq!(store.detections_for_camera(cam.id, 100).await.unwrap().len(), 7);
    assert_eq!(sink.send(Drain).await.unwrap(), Ok(0), "nothing is written twice");
    assert_eq!(store.detections_for_camera(cam.id, 100).await.unwrap().len(), 7);
}

#[actix_web::test]
async fn a_full_buffer_drops_the_oldest_and_counts_it() {
    let (store, _) = common::fresh_store().await;
    let cam = store.create_camera("c", "rtsp://127.0.0.1/x", 5.0, false).await.unwrap();
    let sink = DetectionSink::new(store.clone(), 3).with_flush_interval(Duration::from_secs(3600)).start();
    for i in 0..5 {
        sink.send(event(cam.id, i as f32)).await.unwrap();
    }
    let stats = sink.send(GetSinkStats).await.unwrap();
    assert_eq!((stats.buffered, stats.overflow), (3, 2));
    sink.send(Drain).await.unwrap().unwrap();
    let mut scores: Vec<f32> =
        store.detections_for_camera(cam.id, 10).await.unwrap().into_iter().map(|r| r.1).collect();
    scores.sort_by(f32::total_cmp);
    assert_eq!(scores, vec![2.0, 3.0, 4.0], "the newest three are kept");
}
