//! The decoder actor: one per camera, on one of the engine's decoder threads. It decodes the camera's
//! access units (libavcodec or openh264), samples pictures at the camera's analysis rate, and sends a
//! sample on only when the motion gate sees change (or its refresh is due, or a track of the camera
//! is still deciding who it is), through a latest-wins slot; frames that nothing moved in are counted and noted on the camera's feed so the worker keeps
//! its tracks alive. A non-reference picture that will not be sampled is not decoded at all. Pictures
//! stay in YUV. Corrupt data and lost references make it wait for the next keyframe; a panic inside
//! the decoder is caught, counted as a restart, and decoding resumes with a fresh decoder.
//!
//! A camera with a substream sends both its streams here: the substream is decoded and sampled as
//! above, the main stream's keyframes are decoded alone while the camera has tracks and kept for the
//! worker ([`crate::main_stream`]); a stream silent for 3 s makes the camera run on the other.

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
use panoptes_engine::source::clock::CaptureTime;
use panoptes_engine::stream_pair::check::check_aspect;
use tracing::{error, warn};

use crate::instruments;
use crate::latest::LatestSlot;
use crate::main_stream::{MainPicture, MainPictures, StreamMode, TimeSource};
use crate::messages::{EncodedFrame, StreamRole};

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
    /// The camera connection it came over ([`crate::messages::EncodedFrame::connection`]), changed
    /// too when the camera switches the stream it analyses (its pictures' coordinates change).
    pub connection: u64,
    /// When it was captured, on the clock the camera's streams share (a paired camera's main
    /// pictures are placed by it); `None` for a camera with one stream.
    pub capture: Option<CaptureTime>,
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
    /// A paired camera's main-stream pictures and mode.
    pub main: MainPictures,
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
    /// How the camera's streams are used now.
    pub stream_mode: StreamMode,
    /// Paired cameras: what relates the two streams' pictures in time.
    pub time_source: Option<TimeSource>,
    /// Main-stream keyframes decoded (paired cameras).
    pub main_keyframes_decoded: u64,
    /// Main-stream keyframes not decoded because no face of the camera needed them.
    pub main_keyframes_idle: u64,
    /// Faces embedded from main-stream pictures.
    pub main_embeddings: u64,
    /// Switches between the modes (a stream failed or came back).
    pub mode_switches: u64,
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
    /// The camera has a substream: its units arrive as [`StreamRole::Detect`], the main stream's as
    /// [`StreamRole::Main`].
    pub paired: Option<PairedStreams>,
}

/// How a paired camera's streams reach its decoder.
#[derive(Clone, Debug)]
pub struct PairedStreams {
    /// Shared with the main stream's camera actor, which hands on only keyframes unless it is set (the
    /// decoder sets it while the substream is down and the main stream is analysed instead).
    pub forward_all: Arc<std::sync::atomic::AtomicBool>,
    /// What the streams' capture times come from once both carry them (RTCP, or file positions).
    pub clock: TimeSource,
}

/// A stream silent this long counts as down (the pair falls back to the other).
const STREAM_SILENT: Duration = Duration::from_secs(3);

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
    times: VecDeque<(u64, Instant, DateTime<Utc>, Option<CaptureTime>)>,
    stats: DecoderStats,
    /// The main stream of a paired camera.
    main: MainStream,
    /// Bumped whenever the analysed stream changes (folded into [`SampledFrame::connection`]).
    epoch: u64,
    /// When the substream last delivered a unit.
    last_detect: Option<Instant>,
    /// Size of the last analysed picture of the substream (for the main stream's check).
    detect_size: Option<(u32, u32)>,
    /// Whether the substream's newest unit carried a capture time.
    detect_clocked: bool,
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
        let feed = Arc::new(CameraFeed::default());
        let stream_mode = if options.paired.is_some() { StreamMode::Paired } else { StreamMode::Single };
        feed.main.set_mode(stream_mode);
        Self {
            camera_id,
            stats: DecoderStats { backend: Some(options.backend), stream_mode, ..DecoderStats::default() },
            options,
            decoder: None,
            codec: None,
            interval: Duration::from_secs_f32(1.0 / fps),
            next_due: None,
            feed,
            gate,
            consumer,
            owe_wake: false,
            references_lost: 0,
            connection: 0,
            resyncing: false,
            next_tag: 0,
            times: VecDeque::new(),
            main: MainStream::default(),
            epoch: 0,
            last_detect: None,
            detect_size: None,
            detect_clocked: false,
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
    fn send_on(
        &mut self,
        frame: YuvFrame,
        (received_at, captured_at, capture): (Instant, DateTime<Utc>, Option<CaptureTime>),
        regions: Vec<Region>,
    ) {
        if self.stats.stream_mode != StreamMode::MainOnly {
            self.detect_size = Some(frame.dimensions());
        }
        let sampled = SampledFrame {
            camera_id: self.camera_id,
            frame: Arc::new(frame),
            received_at,
            captured_at,
            regions,
            connection: self.connection,
            capture,
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
        let backend = self.options.backend.for_codec(codec);
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
        if self.options.paired.is_some() {
            self.last_detect = Some(Instant::now());
            ctx.run_interval(Duration::from_millis(500), |actor, _| actor.watch_streams());
        }
    }
}

impl Handler<EncodedFrame> for DecoderActor {
    type Result = ();

    fn handle(&mut self, frame: EncodedFrame, _: &mut Self::Context) {
        match (frame.stream, self.stats.stream_mode) {
            (StreamRole::Main, StreamMode::MainOnly) => {
                self.main.heard(&frame);
                self.analyse_unit(frame);
            }
            (StreamRole::Main, _) => self.main_unit(frame),
            (StreamRole::Detect, mode) => {
                self.last_detect = Some(Instant::now());
                self.detect_clocked = frame.unit.capture.is_some();
                if mode == StreamMode::MainOnly {
                    // The substream is back: analyse it again from its first keyframe.
                    if !frame.unit.is_keyframe {
                        return;
                    }
                    let back = if self.main.recently_heard() { StreamMode::Paired } else { StreamMode::DetectOnly };
                    self.switch_mode(back, "the substream is back");
                }
                self.analyse_unit(frame);
            }
            (StreamRole::Single, _) => self.analyse_unit(frame),
        }
    }
}

/// A paired camera's main stream, as its decoder sees it.
struct MainStream {
    decoder: Option<Box<dyn VideoDecoder>>,
    codec: Option<Codec>,
    last_unit: Instant,
    connection: u64,
    /// Whether its newest unit carried a capture time.
    clocked: bool,
    /// Its view was compared with the substream's (on its first keyframe decoded).
    checked: bool,
    next_seq: u64,
}

impl Default for MainStream {
    fn default() -> Self {
        MainStream {
            decoder: None,
            codec: None,
            last_unit: Instant::now(),
            connection: 0,
            clocked: false,
            checked: false,
            next_seq: 1,
        }
    }
}

impl MainStream {
    fn heard(&mut self, frame: &EncodedFrame) {
        self.last_unit = Instant::now();
        self.clocked = frame.unit.capture.is_some();
    }

    fn recently_heard(&self) -> bool {
        self.last_unit.elapsed() < STREAM_SILENT
    }
}

impl DecoderActor {
    /// The capture time a paired camera's pictures are related by: the streams' own once both carry
    /// one, arrival time until then.
    fn capture_of(&self, own: Option<CaptureTime>, arrived: DateTime<Utc>) -> Option<CaptureTime> {
        if self.stats.stream_mode == StreamMode::Single {
            return None;
        }
        match (own, self.detect_clocked && self.main.clocked) {
            (Some(c), true) => Some(c),
            _ => Some(CaptureTime(arrived.timestamp_micros())),
        }
    }

    fn switch_mode(&mut self, mode: StreamMode, why: &str) {
        if self.stats.stream_mode == mode {
            return;
        }
        tracing::info!(
            camera_id = self.camera_id,
            mode = mode.as_str(),
            why,
            "the camera's streams are used differently"
        );
        let analysed_changes = (self.stats.stream_mode == StreamMode::MainOnly) != (mode == StreamMode::MainOnly);
        self.stats.stream_mode = mode;
        self.stats.mode_switches += 1;
        self.feed.main.set_mode(mode);
        self.feed.main.clear();
        if let Some(p) = &self.options.paired {
            p.forward_all.store(mode == StreamMode::MainOnly, Ordering::Relaxed);
        }
        if analysed_changes {
            // Another stream is analysed: a fresh decoder from its next keyframe, and tracks end (the
            // pictures' coordinates change).
            self.decoder = None;
            self.resyncing = true;
            self.next_due = None;
            self.times.clear();
            self.epoch += 1;
        }
    }

    /// Every half second: which streams are alive, and what the camera runs on.
    fn watch_streams(&mut self) {
        let detect_alive = self.last_detect.is_some_and(|t| t.elapsed() < STREAM_SILENT);
        let main_alive = self.main.recently_heard();
        match self.stats.stream_mode {
            StreamMode::Paired if !detect_alive && main_alive => {
                self.switch_mode(StreamMode::MainOnly, "the substream is down: decoding the main stream instead")
            }
            StreamMode::Paired if !main_alive => {
                self.switch_mode(StreamMode::DetectOnly, "the main stream is down: running on the substream alone")
            }
            StreamMode::DetectOnly if main_alive => self.switch_mode(StreamMode::Paired, "the main stream is back"),
            StreamMode::DetectOnly if !detect_alive && main_alive => {
                self.switch_mode(StreamMode::MainOnly, "the substream is down: decoding the main stream instead")
            }
            _ => {}
        }
    }

    /// A main-stream unit of a paired camera: its keyframes are decoded when a face may need them
    /// (and the first, to check the view), and kept for the worker.
    fn main_unit(&mut self, frame: EncodedFrame) {
        self.main.heard(&frame);
        if frame.connection != self.main.connection {
            self.main.connection = frame.connection;
            self.feed.main.clear();
        }
        if self.stats.stream_mode == StreamMode::Mismatch || !frame.unit.is_keyframe {
            return;
        }
        if self.main.checked && !self.feed.main.wanted() && !self.options.decode_only {
            self.stats.main_keyframes_idle += 1;
            return;
        }
        if self.main.decoder.is_none() || self.main.codec != Some(frame.unit.codec) {
            match decode::open(self.options.backend.for_codec(frame.unit.codec), frame.unit.codec) {
                Ok(mut d) => {
                    d.set_keyframes_only(true);
                    self.main.decoder = Some(d);
                    self.main.codec = Some(frame.unit.codec);
                }
                Err(e) => {
                    error!(camera_id = self.camera_id, error = %e, "cannot create the main stream's decoder");
                    return;
                }
            }
        }
        let Some(decoder) = self.main.decoder.as_mut() else { return };
        let seq = self.main.next_seq;
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| decoder.decode(&frame.unit.data, true, seq, &mut |_, _| true)));
        instruments::decode_duration(started.elapsed());
        let picture = match result {
            Ok(Ok(pictures)) => pictures.into_iter().find(|p| !p.damaged).and_then(|p| p.frame),
            Ok(Err(e)) => {
                warn!(camera_id = self.camera_id, error = %e, "a corrupt main-stream keyframe");
                None
            }
            Err(_) => {
                instruments::actor_restarted("decoder");
                self.main.decoder = None;
                error!(camera_id = self.camera_id, "the main stream's decoder panicked; restarting it");
                None
            }
        };
        let Some(picture) = picture else { return };
        self.main.next_seq += 1;
        self.stats.main_keyframes_decoded += 1;
        if !self.main.checked {
            let Some(detect) = self.detect_size else { return };
            if let Err(e) = check_aspect(picture.dimensions(), detect) {
                error!(camera_id = self.camera_id, error = %e, "the main stream is ignored");
                self.switch_mode(StreamMode::Mismatch, "the streams' aspect ratios differ");
                return;
            }
            self.main.checked = true;
        }
        let Some(capture) = self.capture_of(frame.unit.capture, frame.captured_at) else { return };
        self.feed.main.put(MainPicture { seq, capture, frame: Arc::new(picture) });
    }

    /// Decodes and samples one unit of the analysed stream.
    fn analyse_unit(&mut self, frame: EncodedFrame) {
        self.connection = frame.connection.wrapping_add(self.epoch << 32);
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
        let capture = self.capture_of(frame.unit.capture, frame.captured_at);
        self.times.push_back((tag, frame.received_at, frame.captured_at, capture));
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
                let (at, wall, _) = arrival(times, tag).unwrap_or((frame.received_at, frame.captured_at, capture));
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
                    let times = arrival(&self.times, p.tag).unwrap_or((frame.received_at, frame.captured_at, capture));
                    let regions = moved.iter_mut().find(|(t, _)| *t == p.tag).map(|(_, r)| std::mem::take(r));
                    self.send_on(picture, times, regions.unwrap_or_default());
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
        while self.times.front().is_some_and(|(t, _, _, _)| tag.saturating_sub(*t) >= PENDING_TIMES as u64 / 2) {
            self.times.pop_front();
        }
    }
}

type UnitTimes = (Instant, DateTime<Utc>, Option<CaptureTime>);

/// When the access unit tagged `tag` arrived (monotonic and wall clock), and was captured.
fn arrival(times: &VecDeque<(u64, Instant, DateTime<Utc>, Option<CaptureTime>)>, tag: u64) -> Option<UnitTimes> {
    times.iter().find(|(t, _, _, _)| *t == tag).map(|(_, r, c, k)| (*r, *c, *k))
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
        let time_source = self.options.paired.as_ref().map(|p| match self.detect_clocked && self.main.clocked {
            true => p.clock,
            false => TimeSource::Arrival,
        });
        MessageResult(DecoderStats {
            time_source,
            main_embeddings: self.feed.main.embedded(),
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
