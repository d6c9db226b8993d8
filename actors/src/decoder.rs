//! The decoder actor: decodes one camera's access units with openh264 (every frame, as H.264
//! requires), samples decoded pictures at the camera's analysis rate, and hands the sample to
//! inference through a latest-wins slot. Corrupt data is counted and skipped; a panic inside the
//! decoder is caught, counted as a restart, and decoding resumes with a fresh decoder.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use image::RgbImage;
use panoptes_engine::decode::h264::H264Decoder;
use tracing::{error, warn};

use crate::instruments;
use crate::latest::LatestSlot;
use crate::messages::EncodedFrame;

/// A sampled picture waiting for analysis.
pub struct DecodedFrame {
    pub camera_id: i64,
    /// Shared with the observations made from it (snapshots are cut from it later).
    pub image: Arc<RgbImage>,
    /// When its access unit arrived from the camera (the start of capture→decision latency).
    pub received_at: Instant,
}

/// "A frame of this camera is waiting in its slot."
#[derive(Message)]
#[rtype(result = "()")]
pub struct FrameReady {
    pub camera_id: i64,
    pub slot: Arc<LatestSlot<DecodedFrame>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct DecoderStats {
    /// The analysis rate this decoder samples at now.
    pub analysis_fps: f32,
    pub decoded: u64,
    pub sampled: u64,
    pub corrupt: u64,
    pub restarts: u64,
    /// Access units not decoded because a reference before them was lost or corrupt: decoding waits
    /// for the next keyframe rather than show smeared pictures.
    pub skipped_after_loss: u64,
    /// Sampled frames replaced before inference took them.
    pub dropped_for_inference: u64,
}

#[derive(Message)]
#[rtype(result = "DecoderStats")]
pub struct GetDecoderStats;

/// Changes the rate at which decoded pictures are sampled for analysis (load shedding, or a new
/// configured rate).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct SetAnalysisFps(pub f32);

pub struct DecoderActor {
    camera_id: i64,
    decoder: Option<H264Decoder>,
    interval: Duration,
    next_due: Option<Instant>,
    slot: Arc<LatestSlot<DecodedFrame>>,
    consumer: Recipient<FrameReady>,
    /// A wake-up could not be delivered (consumer mailbox full): retry with the next frame.
    owe_wake: bool,
    /// The camera's count of lost references as of the last access unit.
    references_lost: u64,
    /// Waiting for a keyframe after a loss.
    resyncing: bool,
    stats: DecoderStats,
    #[cfg(feature = "fault-injection")]
    panic_armed: bool,
}

impl DecoderActor {
    pub fn new(camera_id: i64, analysis_fps: f32, consumer: Recipient<FrameReady>) -> Self {
        let fps = if analysis_fps.is_finite() && analysis_fps > 0.0 { analysis_fps } else { 5.0 };
        Self {
            camera_id,
            decoder: None,
            interval: Duration::from_secs_f32(1.0 / fps),
            next_due: None,
            slot: Arc::new(LatestSlot::default()),
            consumer,
            owe_wake: false,
            references_lost: 0,
            resyncing: false,
            stats: DecoderStats::default(),
            #[cfg(feature = "fault-injection")]
            panic_armed: false,
        }
    }

    /// Whether the frame being decoded now is due for analysis; if so the next one is scheduled.
    fn take_due(next_due: &mut Option<Instant>, interval: Duration) -> bool {
        let now = Instant::now();
        if next_due.is_some_and(|due| now < due) {
            return false;
        }
        // Schedule from the due time, not from now, so the average rate holds; a late frame does not
        // create a debt of frames to sample in a burst.
        let next = next_due.unwrap_or(now) + interval;
        *next_due = Some(if next > now { next } else { now + interval });
        true
    }

    fn sample(&mut self, image: RgbImage, received_at: Instant) {
        self.stats.sampled += 1;
        let was_empty = self.slot.put(DecodedFrame { camera_id: self.camera_id, image: Arc::new(image), received_at });
        if was_empty || self.owe_wake {
            let wake = FrameReady { camera_id: self.camera_id, slot: self.slot.clone() };
            self.owe_wake = self.consumer.try_send(wake).is_err();
        }
    }
}

impl Actor for DecoderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(64);
    }
}

impl Handler<EncodedFrame> for DecoderActor {
    type Result = ();

    fn handle(&mut self, frame: EncodedFrame, _: &mut Self::Context) {
        if self.decoder.is_none() {
            match H264Decoder::new() {
                Ok(d) => self.decoder = Some(d),
                Err(e) => {
                    error!(camera_id = self.camera_id, error = %e, "cannot create a decoder");
                    return;
                }
            }
        }
        let Some(decoder) = self.decoder.as_mut() else { return };
        if frame.references_lost > self.references_lost {
            self.references_lost = frame.references_lost;
            if !self.resyncing {
                warn!(
                    camera_id = self.camera_id,
                    "a reference picture was lost before the decoder; waiting for the next keyframe"
                );
            }
            self.resyncing = true;
            decoder.resync();
        }
        if self.resyncing {
            if !frame.unit.is_keyframe {
                self.stats.skipped_after_loss += 1;
                return;
            }
            self.resyncing = false;
        }
        let (next_due, interval) = (&mut self.next_due, self.interval);
        let started = Instant::now();
        #[cfg(feature = "fault-injection")]
        let panic_now = std::mem::take(&mut self.panic_armed);
        let result = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(feature = "fault-injection")]
            if panic_now {
                crate::fault_injection::panic_now("the H.264 decoder");
            }
            // Only sampled frames are converted to RGB.
            decoder.decode_picture_if(&frame.unit.data, frame.unit.is_keyframe, || Self::take_due(next_due, interval))
        }));
        instruments::decode_duration(started.elapsed());
        match result {
            Ok(Ok(Some(picture))) => {
                self.stats.decoded += 1;
                if let Some(image) = picture {
                    self.sample(image, frame.received_at);
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                self.stats.corrupt += 1;
                warn!(camera_id = self.camera_id, error = %e, "corrupt H.264 data; waiting for the next keyframe");
                self.resyncing = true;
                if let Some(d) = self.decoder.as_mut() {
                    d.resync();
                }
            }
            Err(_) => {
                // The decoder's state is unknown after a panic: start again at the next keyframe.
                self.stats.restarts += 1;
                instruments::actor_restarted("decoder");
                self.decoder = None;
                error!(camera_id = self.camera_id, "the H.264 decoder panicked; restarting it");
            }
        }
    }
}

impl Handler<SetAnalysisFps> for DecoderActor {
    type Result = ();

    fn handle(&mut self, SetAnalysisFps(fps): SetAnalysisFps, _: &mut Self::Context) {
        if fps.is_finite() && fps > 0.0 {
            self.interval = Duration::from_secs_f32(1.0 / fps);
            // Apply at once rather than after the old (possibly long) interval.
            self.next_due = self.next_due.map(|due| due.min(Instant::now() + self.interval));
        }
    }
}

impl Handler<GetDecoderStats> for DecoderActor {
    type Result = MessageResult<GetDecoderStats>;

    fn handle(&mut self, _: GetDecoderStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(DecoderStats {
            dropped_for_inference: self.slot.dropped(),
            analysis_fps: 1.0 / self.interval.as_secs_f32(),
            ..self.stats
        })
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::fault_injection::InjectPanic> for DecoderActor {
    type Result = ();

    fn handle(&mut self, _: crate::fault_injection::InjectPanic, _: &mut Self::Context) {
        self.panic_armed = true;
    }
}
