//! The scheduler follows the cameras table: added, disabled and removed cameras start and stop.

mod common;

use std::time::Duration;

use actix::prelude::*;
use panoptes_actors::camera::CameraState;
use panoptes_actors::inference::InferenceWorker;
use panoptes_actors::matcher::MatcherActor;
use panoptes_actors::scheduler::{CameraReport, ListCameraStatus, Scheduler};
use panoptes_actors::sink::DetectionSink;

async fn until(s: &Addr<Scheduler>, what: &str, pred: impl Fn(&[CameraReport]) -> bool) -> Vec<CameraReport> {
    common::eventually(what, Duration::from_secs(30), || async { s.send(ListCameraStatus).await.unwrap() }, |r| pred(r))
        .await
}

#[actix_web::test]
async fn cameras_start_and_stop_with_the_database_rows() {
    let (store, _) = common::fresh_store().await;
    let p = common::pipeline();
    let gallery = common::gallery_for(&store, &p).await;
    let sink = DetectionSink::new(store.clone(), 1000).start();
    let matcher = MatcherActor::new(Duration::from_secs(30), false, sink.recipient()).start();
    let arbiter = Arbiter::new();
    let (g, m) = (gallery.clone(), matcher.recipient());
    let worker = InferenceWorker::start_in_arbiter(&arbiter.handle(), move |_| InferenceWorker::new(p, g, 0.55, m));
    let scheduler = Scheduler::new(store.clone(), vec![worker], Duration::from_secs(1)).start();
    until(&scheduler, "empty", |r| r.is_empty()).await;

    let clip = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "sched");
    let a = store.create_camera("a", &common::path_str(&clip), 5.0, true).await.unwrap();
    let _off = store.create_camera("disabled", &common::path_str(&clip), 5.0, false).await.unwrap();
    let r = until(&scheduler, "camera a streaming", |r| {
        r.len() == 1 && r[0].status.as_ref().is_some_and(|s| s.state == CameraState::Streaming)
    })
    .await;
    assert_eq!(r[0].id, a.id);

    assert!(store.delete_camera(a.id).await.unwrap());
    until(&scheduler, "camera a stopped", |r| r.is_empty()).await;
    arbiter.stop();
}
