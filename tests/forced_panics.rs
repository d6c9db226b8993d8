//! Panics forced inside the H.264 decoder and inside inference (feature `fault-injection`, on in the
//! suite only), on real clips and the real models: each is caught, counted in
//! `panoptes_actor_restarts_total{actor}`, and the actor goes on with the next frames.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use panoptes_actors::camera::{CameraActor, CameraConfig};
use panoptes_actors::decoder::{DecoderActor, DecoderOptions, FrameReady, GetDecoderStats};
use panoptes_actors::fault_injection::InjectPanic;
use panoptes_actors::inference::{GetWorkerStats, InferenceWorker};
use panoptes_actors::messages::{EncodedFrame, TrackEvent};
use panoptes_engine::motion::MotionConfig;

/// Takes decoded frames as they come.
struct Drain;

impl Actor for Drain {
    type Context = Context<Self>;
}

impl Handler<FrameReady> for Drain {
    type Result = ();
    fn handle(&mut self, msg: FrameReady, _: &mut Self::Context) {
        msg.feed.slot.take();
    }
}

/// Counts the track events inference sends.
struct Observations(Arc<AtomicUsize>);

impl Actor for Observations {
    type Context = Context<Self>;
}

impl Handler<TrackEvent> for Observations {
    type Result = ();
    fn handle(&mut self, _: TrackEvent, _: &mut Self::Context) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The restart counter for `actor` in this process's exposition.
fn restarts_metric(actor: &str) -> f64 {
    let handle = panoptes_api::prometheus::install().expect("the Prometheus recorder");
    let wanted = format!("panoptes_actor_restarts_total{{actor=\"{actor}\"}} ");
    handle.render().lines().find_map(|l| l.strip_prefix(&wanted).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[actix_web::test]
async fn a_panic_inside_the_decoder_is_caught_counted_and_decoding_resumes() {
    panoptes_api::prometheus::install();
    let clip = common::h264_clip(&common::photo("obama.jpg"), 5, &["-profile:v", "baseline", "-g", "10"], "panic-dec");
    let units = panoptes_engine::source::annexb::access_units(&std::fs::read(&clip).expect("clip"));
    assert!(units.len() >= 40, "{} access units", units.len());
    let decoder = DecoderActor::new(3, 5.0, Drain.start().recipient()).start();
    let send = |unit| {
        let d = decoder.clone();
        async move { d.send(EncodedFrame::arriving_now(3, unit)).await.expect("alive") }
    };
    let mut units = units.into_iter();
    for unit in units.by_ref().take(15) {
        send(unit).await;
    }
    let before = decoder.send(GetDecoderStats).await.unwrap();
    assert!(before.decoded >= 14 && before.restarts == 0, "{before:?}");

    decoder.send(InjectPanic).await.unwrap();
    let rest: Vec<_> = units.collect();
    let n = rest.len() as u64;
    for unit in rest {
        send(unit).await;
    }
    let after = decoder.send(GetDecoderStats).await.expect("the decoder actor survived its panic");
    assert_eq!(after.restarts, 1, "{after:?}");
    // The unit that panicked is lost, and a fresh decoder cannot use the P-frames before the next
    // keyframe (at most 9 with -g 10); everything from there on is decoded.
    assert!(after.decoded >= before.decoded + n - 10, "{before:?} → {after:?} over {n} units");
    assert!(restarts_metric("decoder") >= 1.0);
}

#[actix_web::test]
async fn a_panic_inside_inference_loses_one_batch_and_the_worker_goes_on() {
    panoptes_api::prometheus::install();
    let (store, _) = common::fresh_store().await;
    let p = common::pipeline();
    let gallery = common::gallery_for(&store, &p).await;
    let seen = Arc::new(AtomicUsize::new(0));
    let observations = Observations(seen.clone()).start();
    let arbiter = Arbiter::new();
    let worker = InferenceWorker::start_in_arbiter(&arbiter.handle(), move |_| {
        InferenceWorker::new(p, gallery, observations.recipient())
    });
    let clip = common::h264_clip(&common::photo("obama2.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "panic-inf");
    // Every sample analysed (a still scene would otherwise be analysed only every 2 s).
    let options =
        DecoderOptions { motion: MotionConfig { enabled: false, ..MotionConfig::default() }, ..Default::default() };
    let decoder = DecoderActor::with_options(4, 5.0, worker.clone().recipient(), options).start();
    let mut config = CameraConfig::new(4, common::path_str(&clip));
    config.file_fps = 10.0;
    let _camera = CameraActor::new(config, decoder.recipient()).start();

    let stats = || async { worker.send(GetWorkerStats).await.expect("the worker is alive") };
    let before = common::eventually("frames analysed", Duration::from_secs(60), stats, |s| s.frames >= 5).await;
    assert!(before.faces >= 5, "a face in every analysed frame: {before:?}");
    assert!(seen.load(Ordering::SeqCst) >= 1, "the face's track settled (unknown: nobody is enrolled)");

    worker.send(InjectPanic).await.unwrap();
    let after = common::eventually("the worker to go on after its panic", Duration::from_secs(60), stats, |s| {
        s.restarts == 1 && s.frames >= before.frames + 10
    })
    .await;
    assert_eq!(after.restarts, 1, "{after:?}");
    assert!(after.faces >= before.faces + 10, "faces still found after the panic: {after:?}");
    assert!(restarts_metric("inference") >= 1.0);
    arbiter.stop();
}
