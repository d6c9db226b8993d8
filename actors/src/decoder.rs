//! The decoder actor: one per camera, on one of the engine's decoder threads. It decodes the camera's
//! access units (libavcodec or openh264), samples pictures at the camera's analysis rate, and sends a
//! sample on only when the motion gate sees change (or its refresh is due, or a track of the camera
//! is still deciding who it is), through a latest-wins slot; frames that nothing moved in are counted and noted on the camera's feed so the worker keeps
//! its tracks alive. A non-reference picture that will not be sampled is not decoded at all. Pictures
//! stay in YUV. Corrupt data and lost references make it wait for the next keyframe; a panic inside
//! the decoder is caught, counted as a restart, and decoding resumes with a fresh decoder.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::{DateTime, Utc};
use panoptes_engine::decode::{self, Codec, DecoderBackend, VideoDecoder};
use panoptes_engine::frame::{LumaView, YuvFrame};
use panoptes_engine::motion::{MaskRegion, MotionConfig, MotionGate, Region, Verdict};
use tracing::{error, warn};

use crate::instruments;
use crate::latest::LatestSlot;
use crate::messages::EncodedFrame;

/// A sampled picture waiting for analysis.
pub struct SampledFrame {
    pub camera_id: i64,
    /// Shared with the tracks and snapshots made from it.
    pub frame: Arc<YuvFrame>,
    /// When its access unit arrived from the camera (the start of capture→decision latency).
    pub received_at: Instant,
    /// The same moment on the wall clock (the capture time recorded with what is seen in it).
    pub captured_at: DateTime<Utc>,
    /// Where something moved in it (from the motion gate): the detector looks closer there.
    pub regions: Vec<Region>,
    /// The camera connection it came over ([`crate::messages::EncodedFrame::connection`]).
    pub connection: u64,
}

/// What a camera's decoder shares with the worker that analyses it.
#[derive(Default)]
pub struct CameraFeed {
    /// The newest sample waiting for analysis (latest wins).
    pub slot: LatestSlot<SampledFrame>,
    /// The newest frame the motion gate found unchanged since the last sample sent on.
    still_until: Mutex<Option<(Instant, DateTime<Utc>)>>,
    gated: AtomicU64,
    /// Set by the worker while a track of this camera is still deciding who it is: its frames then
    /// go to analysis even when the motion gate finds nothing moved (a stranger or a watchlist face
    /// standing still must not wait for the next refresh to be recognised).
    deciding: std::sync::atomic::AtomicBool,
}

impl CameraFeed {
    /// Nothing moved in the sample taken at `at`.
    fn note_still(&self, at: Instant, wall: DateTime<Utc>) {
        self.gated.fetch_add(1, Ordering::Relaxed);
        *self.still_until.lock().unwrap_or_else(|p| p.into_inner()) = Some((at, wall));
    }

    /// Up to when the scene has been unchanged since the worker last asked (then forgotten).
    pub fn take_still(&self) -> Option<(Instant, DateTime<Utc>)> {
        self.still_until.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Samples the motion gate held back.
    pub fn gated(&self) -> u64 {
        self.gated.load(Ordering::Relaxed)
    }

    /// Whether a track of this camera is still deciding who it is.
    pub fn set_deciding(&self, deciding: bool) {
        self.deciding.store(deciding, Ordering::Relaxed);
    }

    fn deciding(&self) -> bool {
        self.deciding.load(Ordering::Relaxed)
    }
}

/// "A frame of this camera is waiting in its feed."
#[derive(Message)]
#[rtype(result = "()")]
pub struct FrameReady {
    pub camera_id: i64,
    pub feed: Arc<CameraFeed>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct DecoderStats {
    pub backend: Option<DecoderBackend>,
    /// The analysis rate this decoder samples at now.
    pub analysis_fps: f32,
    pub decoded: u64,
    /// Non-reference pictures not decoded because no sample was due (or it could wait for the next
    /// picture).
    pub skipped: u64,
    pub sampled: u64,
    /// Samples the motion gate held back (nothing moved).
    pub gated: u64,
    pub corrupt: u64,
    pub restarts: u64,
    /// Access units not decoded because a reference before them was lost or corrupt: decoding waits
    /// for the next keyframe rather than show smeared pictures.
    pub skipped_after_loss: u64,
    /// Samples replaced before inference took them.
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

/// Replaces the camera's motion mask.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct SetMotionMask(pub Vec<MaskRegion>);

/// How a camera's decoder works.
#[derive(Clone, Debug, Default)]
pub struct DecoderOptions {
    pub backend: DecoderBackend,
    pub motion: MotionConfig,
    pub mask: Vec<MaskRegion>,
    /// Decode every access unit and sample nothing (a benchmark's decoding floor).
    pub decode_only: bool,
}

/// Arrival times of the access units whose pictures have not left the decoder yet (B-frames).
const PENDING_TIMES: usize = 64;

pub struct DecoderActor {
    camera_id: i64,
    options: DecoderOptions,
    decoder: Option<Box<dyn VideoDecoder>>,
    /// The codec the decoder was opened for.
    codec: Option<Codec>,
    interval: Duration,
    next_due: Option<Instant>,
    feed: Arc<CameraFeed>,
    gate: MotionGate,
    consumer: Recipient<FrameReady>,
    /// A wake-up could not be delivered (consumer mailbox full): retry with the next frame.
    owe_wake: bool,
    /// The camera's count of lost references as of the last access unit.
    references_lost: u64,
    /// The camera connection of the newest access unit.
    connection: u64,
    /// Waiting for a keyframe after a loss.
    resyncing: bool,
    next_tag: u64,
    times: VecDeque<(u64, Instant, DateTime<Utc>)>,
    stats: DecoderStats,
    #[cfg(feature = "fault-injection")]
    panic_armed: bool,
}

impl DecoderActor {
    pub fn new(camera_id: i64, analysis_fps: f32, consumer: Recipient<FrameReady>) -> Self {
        Self::with_options(camera_id, analysis_fps, consumer, DecoderOptions::default())
    }

    pub fn with_options(
        camera_id: i64,
        analysis_fps: f32,
        consumer: Recipient<FrameReady>,
        options: DecoderOptions,
    ) -> Self {
        let fps = if analysis_fps.is_finite() && analysis_fps > 0.0 { analysis_fps } else { 5.0 };
        let gate = MotionGate::new(options.motion.clone(), options.mask.clone());
        Self {
            camera_id,
            stats: DecoderStats { backend: Some(options.backend), ..DecoderStats::default() },
            options,
            decoder: None,
            codec: None,
            interval: Duration::from_secs_f32(1.0 / fps),
            next_due: None,
            feed: Arc::new(CameraFeed::default()),
            gate,
            consumer,
            owe_wake: false,
            references_lost: 0,
            connection: 0,
            resyncing: false,
            next_tag: 0,
            times: VecDeque::new(),
            #[cfg(feature = "fault-injection")]
            panic_armed: false,
        }
    }

    /// Whether a sample is due at `now`; if so the next one is scheduled.
    fn take_due(next_due: &mut Option<Instant>, interval: Duration, now: Instant) -> bool {
        if next_due.is_some_and(|due| now < due) {
            return false;
        }
        // Schedule from the due time, not from now, so the average rate holds; a late frame does not
        // create a debt of frames to sample in a burst.
        let next = next_due.unwrap_or(now) + interval;
        *next_due = Some(if next > now { next } else { now + interval });
        true
    }

    /// Sends a sample the motion gate let through on to analysis.
    fn send_on(&mut self, frame: YuvFrame, received_at: Instant, captured_at: DateTime<Utc>, regions: Vec<Region>) {
        let sampled = SampledFrame {
            camera_id: self.camera_id,
            frame: Arc::new(frame),
            received_at,
            captured_at,
            regions,
            connection: self.connection,
        };
        let was_empty = self.feed.slot.put(sampled);
        if was_empty || self.owe_wake {
            let wake = FrameReady { camera_id: self.camera_id, feed: self.feed.clone() };
            self.owe_wake = self.consumer.try_send(wake).is_err();
        }
    }

    /// A decoder for `codec` (a new one when the stream's codec changed, e.g. the camera was switched
    /// from H.264 to H.265). openh264 takes H.264 only: H.265 goes to libavcodec whatever the setting.
    fn open_decoder(&mut self, codec: Codec) -> bool {
        if self.decoder.is_some() && self.codec == Some(codec) {
            return true;
        }
        let backend = match (self.options.backend, codec) {
            (DecoderBackend::Openh264, Codec::H265) => DecoderBackend::Libav,
            (backend, _) => backend,
        };
        match decode::open(backend, codec) {
            Ok(d) => {
                if self.codec.is_some_and(|c| c != codec) {
                    tracing::info!(camera_id = self.camera_id, codec = codec.as_str(), "the stream's codec changed");
                }
                self.decoder = Some(d);
                self.codec = Some(codec);
                self.stats.backend = Some(backend);
                true
            }
            Err(e) => {
                error!(camera_id = self.camera_id, error = %e, "cannot create a decoder");
                false
            }
        }
    }

    fn resync(&mut self) {
        self.resyncing = true;
        if let Some(d) = self.decoder.as_mut() {
            d.resync();
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
        self.connection = frame.connection;
        if !self.open_decoder(frame.unit.codec) {
            return;
        }
        if frame.references_lost > self.references_lost {
            self.references_lost = frame.references_lost;
            if !self.resyncing {
                warn!(
                    camera_id = self.camera_id,
                    "a reference picture was lost before the decoder; waiting for the next keyframe"
                );
            }
            self.resync();
        }
        if self.resyncing {
            if !frame.unit.is_keyframe {
                self.stats.skipped_after_loss += 1;
                return;
            }
            self.resyncing = false;
        }
        let now = Instant::now();
        let decode_only = self.options.decode_only;
        // Nothing refers to this picture and no sample is due: it need not be decoded at all. A sample
        // due less than half an interval ago waits for the next picture (most likely a reference,
        // decoded anyway): the average rate holds, since the schedule stays on its grid.
        let can_wait = self.next_due.is_some_and(|d| now < d + self.interval / 2);
        if !decode_only && !frame.unit.is_reference && can_wait {
            self.stats.skipped += 1;
            return;
        }
        let tag = self.next_tag;
        self.next_tag += 1;
        if self.times.len() == PENDING_TIMES {
            self.times.pop_front();
        }
        self.times.push_back((tag, frame.received_at, frame.captured_at));
        let (next_due, interval, gate, feed, stats) =
            (&mut self.next_due, self.interval, &mut self.gate, &self.feed, &mut self.stats);
        let times = &self.times;
        // Where something moved in each picture let through, by tag.
        let mut moved: Vec<(u64, Vec<Region>)> = Vec::new();
        let Some(decoder) = self.decoder.as_mut() else { return };
        let started = Instant::now();
        #[cfg(feature = "fault-injection")]
        let panic_now = std::mem::take(&mut self.panic_armed);
        let result = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(feature = "fault-injection")]
            if panic_now {
                crate::fault_injection::panic_now("the video decoder");
            }
            // A picture is sampled when due; the motion gate reads its luma inside the decoder, and only
            // a sample it lets through (or one a deciding track needs) is copied out.
            let mut want = |tag: u64, luma: LumaView<'_>| {
                if decode_only || !Self::take_due(next_due, interval, now) {
                    return false;
                }
                stats.sampled += 1;
                let (at, wall) = arrival(times, tag).unwrap_or((frame.received_at, frame.captured_at));
                let verdict = gate.judge(luma, at);
                if verdict == Verdict::Moved {
                    let config = gate.config();
                    moved.push((tag, gate.moved_regions(config.regions as usize, config.region_min_blocks as usize)));
                }
                if verdict.analyse() || feed.deciding() {
                    return true;
                }
                feed.note_still(at, wall);
                false
            };
            decoder.decode(&frame.unit.data, frame.unit.is_keyframe, tag, &mut want)
        }));
        instruments::decode_duration(started.elapsed());
        match result {
            Ok(Ok(pictures)) => {
                for p in pictures {
                    if p.damaged {
                        self.stats.corrupt += 1;
                        warn!(
                            camera_id = self.camera_id,
                            "a damaged picture (concealed errors); waiting for the next keyframe"
                        );
                        self.resync();
                        break;
                    }
                    self.stats.decoded += 1;
                    let Some(picture) = p.frame else { continue };
                    let (received_at, captured_at) =
                        arrival(&self.times, p.tag).unwrap_or((frame.received_at, frame.captured_at));
                    let regions = moved.iter_mut().find(|(t, _)| *t == p.tag).map(|(_, r)| std::mem::take(r));
                    self.send_on(picture, received_at, captured_at, regions.unwrap_or_default());
                }
            }
            Ok(Err(e)) => {
                self.stats.corrupt += 1;
                warn!(camera_id = self.camera_id, error = %e, "corrupt video data; waiting for the next keyframe");
                self.resync();
            }
            Err(_) => {
                // The decoder's state is unknown after a panic: start again at the next keyframe.
                self.stats.restarts += 1;
                instruments::actor_restarted("decoder");
                self.decoder = None;
                error!(camera_id = self.camera_id, "the video decoder panicked; restarting it");
            }
        }
        // Times of pictures that will never come out (skipped by the decoder) age out.
        while self.times.front().is_some_and(|(t, _, _)| tag.saturating_sub(*t) >= PENDING_TIMES as u64 / 2) {
            self.times.pop_front();
        }
    }
}

/// When the access unit tagged `tag` arrived (monotonic and wall clock).
fn arrival(times: &VecDeque<(u64, Instant, DateTime<Utc>)>, tag: u64) -> Option<(Instant, DateTime<Utc>)> {
    times.iter().find(|(t, _, _)| *t == tag).map(|(_, r, c)| (*r, *c))
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

impl Handler<SetMotionMask> for DecoderActor {
    type Result = ();

    fn handle(&mut self, SetMotionMask(mask): SetMotionMask, _: &mut Self::Context) {
        self.options.mask = mask.clone();
        self.gate = MotionGate::new(self.options.motion.clone(), mask);
    }
}

impl Handler<GetDecoderStats> for DecoderActor {
    type Result = MessageResult<GetDecoderStats>;

    fn handle(&mut self, _: GetDecoderStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(DecoderStats {
            dropped_for_inference: self.feed.slot.dropped(),
            gated: self.feed.gated(),
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
