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
    DetectionEvent(NewDetection::single(
        camera_id,
        Utc::now(),
        None,
        score,
        0.9,
        BBox { x: 1.0, y: 2.0, width: 30.0, height: 30.0 },
    ))
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

/// A row that can never be written — its person was deleted between the match and the write, a
/// foreign-key violation — must not hold back the rows of every camera behind it: the batch is
/// written row by row, the refused row is kept in the dead-letter table with the reason and counted,
/// and the shutdown drain still succeeds.
#[actix_web::test]
async fn a_row_the_database_refuses_for_good_is_kept_aside_and_the_others_are_written() {
    let (store, _) = common::fresh_store().await;
    let cam = store.create_camera("c", "rtsp://127.0.0.1/x", 5.0, false).await.unwrap();
    let other = store.create_camera("d", "rtsp://127.0.0.1/y", 5.0, false).await.unwrap();
    let gone = store.create_person("Left", &serde_json::json!({})).await.unwrap();
    store.delete_person(gone.id).await.unwrap();
    let sink = DetectionSink::new(store.clone(), 100).with_flush_interval(Duration::from_millis(100)).start();
    sink.send(event(cam.id, 0.1)).await.unwrap();
    let mut orphan = event(cam.id, 0.9);
    orphan.0.person_id = Some(gone.id);
    sink.send(orphan).await.unwrap();
    for i in 0..3 {
        sink.send(event(other.id, 0.2 + i as f32 / 10.0)).await.unwrap();
    }
    // Resolved: every row written or kept aside. An empty buffer alone is not enough: a batch being
    // written is out of the buffer and not yet counted (a busy machine caught the test there).
    let stats = common::eventually(
        "the batch resolved",
        Duration::from_secs(20),
        || async { sink.send(GetSinkStats).await.unwrap() },
        |s| s.buffered == 0 && s.written + s.dead_lettered >= 5,
    )
    .await;
    assert_eq!((stats.written, stats.dead_lettered), (4, 1), "{stats:?}");
    assert_eq!(store.detections_for_camera(cam.id, 10).await.unwrap().len(), 1);
    assert_eq!(store.detections_for_camera(other.id, 10).await.unwrap().len(), 3);
    let kept = store.dead_letter_detections().await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0["person_id"], gone.id);
    assert!(kept[0].1.contains("foreign key"), "the reason is kept: {}", kept[0].1);

    // Later rows flow as before, and the drain at shutdown has nothing stuck to fail on.
    sink.send(event(cam.id, 0.5)).await.unwrap();
    let mut orphan = event(cam.id, 0.6);
    orphan.0.person_id = Some(gone.id);
    sink.send(orphan).await.unwrap();
    assert_eq!(sink.send(Drain).await.unwrap(), Ok(1));
    assert_eq!(store.dead_letter_detections().await.unwrap().len(), 2);
    assert_eq!(store.detections_for_camera(cam.id, 10).await.unwrap().len(), 2);
}

/// Each event gets a row id before it is written (the live event names it), and writing a row again —
/// a retry after an acknowledgement lost with the connection — leaves one row.
#[actix_web::test]
async fn events_get_their_row_id_before_the_write_and_a_rewrite_stores_nothing_twice() {
    let (store, _) = common::fresh_store().await;
    let cam = store.create_camera("c", "rtsp://127.0.0.1/x", 5.0, false).await.unwrap();
    let (tx, mut rx) = tokio::sync::broadcast::channel(16);
    let sink = DetectionSink::new(store.clone(), 100).with_events(tx).start();
    actix::clock::sleep(Duration::from_millis(300)).await; // the first ids are reserved at start
    sink.send(event(cam.id, 0.7)).await.unwrap();
    let live = rx.recv().await.unwrap().detection;
    let id = live.id.expect("the live event carries its row id");
    common::eventually(
        "the row written",
        Duration::from_secs(10),
        || async { store.get_detection(id).await.unwrap() },
        |r| r.is_some(),
    )
    .await;
    store.insert_detections(std::slice::from_ref(&live)).await.unwrap();
    assert_eq!(store.detections_for_camera(cam.id, 10).await.unwrap().len(), 1);
}

/// An appearance's update that overtakes its start (the matcher sends no such thing any more, but a
/// start dropped from a full mailbox and re-sent would do the same) is the same row: one row, one id.
#[actix_web::test]
async fn an_update_that_overtakes_its_start_is_the_same_row() {
    use panoptes_actors::messages::{AppearanceStarted, AppearanceUpdated};
    let (store, _) = common::fresh_store().await;
    let cam = store.create_camera("c", "rtsp://127.0.0.1/x", 5.0, false).await.unwrap();
    let sink = DetectionSink::new(store.clone(), 100).with_flush_interval(Duration::from_secs(3600)).start();
    let DetectionEvent(row) = event(cam.id, 0.7);
    let mut later = row.clone();
    later.last_seen_at = Some(Utc::now());
    later.frames = 9;
    sink.send(AppearanceUpdated { key: 1, row: later.clone() }).await.unwrap();
    // Written in between, as a periodic flush would.
    sink.send(Drain).await.unwrap().unwrap();
    sink.send(AppearanceStarted { key: 1, row: later }).await.unwrap();
    sink.send(Drain).await.unwrap().unwrap();
    let rows = store.detections_for_camera(cam.id, 10).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
}
