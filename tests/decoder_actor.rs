//! Camera → decoder → a deliberately slow consumer: frames are sampled at the analysis rate, the
//! slow consumer always gets the newest frame, the backlog is counted as drops, and garbage input
//! never stops the decoder.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use panoptes_actors::camera::{CameraActor, CameraConfig};
use panoptes_actors::decoder::{DecoderActor, DecoderOptions, DecoderStats, FrameReady, GetDecoderStats};
use panoptes_actors::messages::EncodedFrame;
use panoptes_engine::motion::MotionConfig;
use panoptes_engine::source::annexb::AccessUnit;

/// Takes each ready frame and then blocks its thread for `work`, like an overloaded inference worker.
struct SlowConsumer {
    work: Duration,
    taken: Arc<AtomicUsize>,
}

impl Actor for SlowConsumer {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4);
    }
}

impl Handler<FrameReady> for SlowConsumer {
    type Result = ();
    fn handle(&mut self, msg: FrameReady, _: &mut Self::Context) {
        if let Some(f) = msg.feed.slot.take() {
            assert_eq!(f.frame.dimensions(), (1280, 720));
            self.taken.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(self.work);
        }
    }
}

async fn stats_after(dec: &Addr<DecoderActor>, limit: Duration, pred: impl Fn(&DecoderStats) -> bool) -> DecoderStats {
    common::eventually(
        "decoder stats",
        limit,
        || async { dec.send(GetDecoderStats).await.expect("decoder alive") },
        pred,
    )
    .await
}

#[actix_web::test]
async fn a_slow_consumer_gets_the_latest_frames_and_the_rest_are_counted_as_dropped() {
    let clip = common::h264_clip(&common::photo("obama.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "decoder");
    let taken = Arc::new(AtomicUsize::new(0));
    // The consumer runs on its own thread so its blocking work stalls nobody else.
    let arbiter = Arbiter::new();
    let t = taken.clone();
    let consumer = SlowConsumer::start_in_arbiter(&arbiter.handle(), move |_| SlowConsumer {
        work: Duration::from_millis(400),
        taken: t,
    });
    // Every sample goes on (the motion gate would hold back most samples of a still scene).
    let options =
        DecoderOptions { motion: MotionConfig { enabled: false, ..MotionConfig::default() }, ..Default::default() };
    let decoder = DecoderActor::with_options(1, 10.0, consumer.recipient(), options).start();
    let mut cam_cfg = CameraConfig::new(1, common::path_str(&clip));
    cam_cfg.file_fps = 10.0;
    let _cam = CameraActor::new(cam_cfg, decoder.clone().recipient()).start();

    let s = stats_after(&decoder, Duration::from_secs(30), |s| s.sampled >= 20).await;
    assert!(s.decoded >= s.sampled, "{s:?}");
    assert!(s.dropped_for_inference > 0, "a consumer 4× slower than the sample rate must cause drops: {s:?}");
    assert_eq!(s.corrupt, 0);
    let consumed = taken.load(Ordering::SeqCst) as u64;
    // every sampled frame was either analysed, dropped, or is the one still waiting
    assert!(consumed + s.dropped_for_inference + 1 >= s.sampled, "consumed {consumed}, {s:?}");
    arbiter.stop();
}

#[actix_web::test]
async fn random_bytes_do_not_stop_the_decoder() {
    let taken = Arc::new(AtomicUsize::new(0));
    let consumer = SlowConsumer { work: Duration::ZERO, taken: taken.clone() }.start();
    let decoder = DecoderActor::new(9, 5.0, consumer.recipient()).start();
    let mut seed = 7u32;
    for i in 0..200 {
        let mut data = vec![0, 0, 0, 1, if i % 10 == 0 { 0x65 } else { 0x41 }];
        data.extend((0..3000).map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        }));
        let unit = AccessUnit::new(data, i % 10 == 0);
        // send (not do_send): waits for mailbox room instead of ignoring the bound
        decoder.send(EncodedFrame::arriving_now(9, unit)).await.expect("decoder alive");
    }
    let s = decoder.send(GetDecoderStats).await.expect("decoder survived garbage");
    assert!(s.corrupt + s.restarts > 0, "{s:?}");
    // and it still decodes a real clip afterwards
    let clip =
        common::h264_clip(&common::photo("obama.jpg"), 1, &["-profile:v", "baseline", "-g", "10"], "after-garbage");
    for unit in panoptes_engine::source::annexb::access_units(&std::fs::read(&clip).unwrap()) {
        decoder.send(EncodedFrame::arriving_now(9, unit)).await.unwrap();
    }
    let after = decoder.send(GetDecoderStats).await.unwrap();
    assert!(after.decoded > s.decoded, "{after:?}");
}

/// After a reference picture is lost (the camera could not hand it to a full decoder mailbox) or
/// found corrupt, the pictures that follow refer to something the decoder never had: they are not
/// decoded — nothing smeared reaches the detector — until the next keyframe.
#[actix_web::test]
async fn after_a_lost_or_corrupt_reference_the_decoder_waits_for_the_next_keyframe() {
    let clip = common::h264_clip(&common::photo("obama.jpg"), 3, &["-profile:v", "baseline", "-g", "10"], "loss");
    let units = panoptes_engine::source::annexb::access_units(&std::fs::read(&clip).unwrap());
    assert_eq!(units.len(), 30);
    assert!(units[0].is_keyframe && units[10].is_keyframe && units[20].is_keyframe && !units[5].is_keyframe);
    let taken = Arc::new(AtomicUsize::new(0));
    let consumer = SlowConsumer { work: Duration::ZERO, taken }.start();
    let decoder = DecoderActor::new(4, 5.0, consumer.recipient()).start();
    let mut lost = 0;
    for (i, unit) in units.into_iter().enumerate() {
        let mut unit = unit;
        match i {
            // P-frame 5 never reaches the decoder: the camera counts it lost on the next frame.
            5 => {
                assert!(unit.is_reference);
                lost += 1;
                continue;
            }
            // P-frame 15 arrives damaged.
            15 => unit.data.truncate(unit.data.len() / 3),
            _ => {}
        }
        let mut frame = EncodedFrame::arriving_now(4, unit);
        frame.references_lost = lost;
        decoder.send(frame).await.unwrap();
    }
    let s = decoder.send(GetDecoderStats).await.unwrap();
    eprintln!("after a loss and a damaged unit: {s:?}");
    // 0–4 decode; 6–9 wait for keyframe 10; 10–14 decode; 15 is corrupt, so 16–19 wait for
    // keyframe 20; 20–29 decode.
    assert_eq!((s.decoded, s.corrupt, s.skipped_after_loss), (20, 1, 8), "{s:?}");
}

/// Hands each ready frame back at once and, when told to, says a track of the camera is still
/// deciding who it is (as the inference worker does).
struct DecidingConsumer {
    deciding: bool,
    taken: Arc<AtomicUsize>,
}

impl Actor for DecidingConsumer {
    type Context = Context<Self>;
}

impl Handler<FrameReady> for DecidingConsumer {
    type Result = ();
    fn handle(&mut self, msg: FrameReady, _: &mut Self::Context) {
        msg.feed.set_deciding(self.deciding);
        if msg.feed.slot.take().is_some() {
            self.taken.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A face that stands still in view: the motion gate holds back every sample after the first, so a
/// track that has not yet settled who it is would wait 2 s for each refresh. While the worker says a
/// track is deciding, the still samples go on to analysis; once it has decided, they are gated again.
#[actix_web::test]
async fn a_still_scene_is_gated_unless_a_track_is_still_deciding() {
    let clip = common::h264_clip(&common::photo("obama.jpg"), 3, &["-profile:v", "baseline", "-g", "10"], "deciding");
    let units = panoptes_engine::source::annexb::access_units(&std::fs::read(&clip).unwrap());
    let mut analysed = Vec::new();
    for deciding in [false, true] {
        let taken = Arc::new(AtomicUsize::new(0));
        let consumer = DecidingConsumer { deciding, taken: taken.clone() }.start();
        // Every unit is due (1,000 fps sampling): the gate alone decides what goes on.
        let decoder = DecoderActor::new(5, 1000.0, consumer.recipient()).start();
        for unit in units.iter().cloned() {
            decoder.send(EncodedFrame::arriving_now(5, unit)).await.unwrap();
            // Let the consumer answer before the next picture, as a worker keeping up would.
            actix::clock::sleep(Duration::from_millis(5)).await;
        }
        let s = decoder.send(GetDecoderStats).await.unwrap();
        assert_eq!(s.sampled, 30, "{s:?}");
        analysed.push((taken.load(Ordering::SeqCst), s.gated));
    }
    // Without a deciding track: the first picture, then the still scene is gated (a refresh at most).
    assert!(analysed[0].0 <= 2 && analysed[0].1 >= 28, "{analysed:?}");
    // With one: only the first picture goes before the worker says so; every later one goes on.
    assert!(analysed[1].0 >= 29 && analysed[1].1 <= 1, "{analysed:?}");
}
