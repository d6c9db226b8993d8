//! The inference worker: owns its ONNX Runtime sessions (one pipeline per worker) and a face tracker
//! per camera. It takes the newest waiting frame of each of its cameras — frames of several cameras
//! waiting together go through the detector as one batch, straight from YUV — follows each face from
//! frame to frame, and embeds a face only when its track needs it: when it starts, while its identity
//! is unsettled, and when its face is clearly better than before (at most a few times per track).
//! Settled identities and ended tracks go to the matcher. Run each worker in its own arbiter:
//! inference blocks its thread.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use panoptes_engine::detect::tiling::View;
use panoptes_engine::detect::{Face, Picture};
use panoptes_engine::frame::YuvFrame;
use panoptes_engine::gallery::Gallery;
use panoptes_engine::pipeline::{FaceEmbedding, FacePipeline};
use panoptes_engine::runtime::{ModelError, Provider};
use panoptes_engine::stream_pair::{main_face, position_at, StreamScale};
use panoptes_engine::track::identity::{Comparison, Identity, IdentityChange};
use panoptes_engine::track::quality::face_quality;
use panoptes_engine::track::{BestFace, FaceTracker, TrackConfig, TrackEmbedding};
use serde::Serialize;
use tracing::warn;

use crate::decoder::{CameraFeed, FrameReady, SampledFrame};
use crate::instruments::{self, FaceOutcome};
use crate::latency_record::LatencyRecord;
use crate::latest_frames::{AnalysedFrame, FaceMark, LatestFrames};
use crate::load::{LoadFigures, LoadWindow};
use crate::main_stream::{MainPicture, StreamMode};
use crate::messages::{Identified, TrackEvent};

/// The window over which latency and utilisation are measured for load decisions.
const LOAD_WINDOW: Duration = Duration::from_secs(5);
/// How often tracks of cameras that send no frame (all still, or stopped) are checked for their end.
const EXPIRE_EVERY: Duration = Duration::from_millis(500);
/// Persons each embedding is compared with (the best, the runner-up and a few more, so that the
/// runner-up over the whole track is known).
const COMPARED_PERSONS: usize = 5;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct WorkerStats {
    pub provider: Option<Provider>,
    /// Frames analysed (the detector ran on them).
    pub frames: u64,
    pub batches: u64,
    /// Faces detected (all frames).
    pub faces: u64,
    /// Faces embedded (what the tracker asked for).
    pub embeddings: u64,
    /// Faces the tracker asked for that were turned too far to embed (`align.max_yaw_degrees`).
    pub faces_too_turned: u64,
    /// Faces embedded from a main-stream picture (cameras with a substream).
    pub main_embeddings: u64,
    /// Faces placed in a main-stream picture and not found there (hidden at that moment).
    pub main_faces_not_found: u64,
    pub tracks_started: u64,
    pub tracks_active: u64,
    pub errors: u64,
    /// Panics caught inside inference (each lost its batch and counts as an error too).
    pub restarts: u64,
    /// Track events the matcher could not take (its mailbox was full).
    pub events_dropped: u64,
    /// Cameras whose frames this worker currently takes.
    pub cameras: usize,
    pub load: LoadFigures,
}

#[derive(Message)]
#[rtype(result = "WorkerStats")]
pub struct GetWorkerStats;

/// Ends every track now (the engine is stopping): their appearances are completed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndAllTracks;

struct CameraState {
    feed: Arc<CameraFeed>,
    tracker: FaceTracker<Arc<YuvFrame>>,
    /// The arrival time of the newest frame of this camera the worker has looked at (analysed, or
    /// found still by the motion gate): the camera's own clock, by which its tracks are lost. A
    /// worker that falls behind (a busy CPU) does not end tracks whose faces it has not yet had the
    /// chance to see; frames replaced by newer ones (latest-wins) are not misses either.
    clock: Option<Instant>,
    /// When (by the wall clock) the worker last looked at a frame of this camera. A camera is stalled
    /// when this is old, not when the frame looked at is old: a worker far behind its camera is busy,
    /// and the camera has not stopped.
    looked_at: Option<Instant>,
    /// The camera connection of the frames looked at last: a frame of a new one ends every track,
    /// since the stream broke in between (a camera back from an outage starts new appearances).
    connection: Option<u64>,
}

impl CameraState {
    fn saw(&mut self, at: Instant) {
        self.clock = Some(self.clock.map_or(at, |c| c.max(at)));
        self.looked_at = Some(Instant::now());
    }

    /// Takes what the motion gate found still since the worker last asked: the tracks are held
    /// through it, and the camera's clock moves on to it.
    fn take_still(&mut self) {
        if let Some((at, wall)) = self.feed.take_still() {
            self.tracker.hold_still(at, wall);
            self.saw(at);
        }
    }

    /// The time tracks are lost by: the camera's clock, or the wall clock once the camera has sent
    /// nothing to look at for [`STALLED_AFTER`] (a stalled camera's faces are gone).
    fn expiry_clock(&self, wall: Instant) -> Instant {
        match (self.clock, self.looked_at) {
            (Some(c), Some(looked)) if wall.saturating_duration_since(looked) < STALLED_AFTER => c,
            _ => wall,
        }
    }
}

/// A camera with no frame looked at for this long is stalled: its tracks are lost by the wall clock.
const STALLED_AFTER: Duration = Duration::from_secs(10);

/// A face the tracker wants embedded.
struct EmbedJob {
    frame: usize,
    track_id: u64,
    /// In the analysed frame's pixels, or (main jobs) placed in the main picture's.
    face: Face,
    quality: f32,
    /// Embed from this main-stream picture instead of the analysed frame.
    main: Option<MainPicture>,
}

/// A main-stream picture older than this, relative to the analysed frame, is not used (a GOP of up
/// to 2 s, and some slack).
const MAIN_MAX_AGE_SECS: f64 = 2.5;
/// A main picture may be captured this much after the newest analysed frame (the main stream
/// arrives ahead of its substream): the track's newest position is used.
const MAIN_MAX_AHEAD_SECS: f64 = 0.5;

pub struct InferenceWorker {
    pipeline: FacePipeline,
    gallery: Arc<RwLock<Gallery>>,
    matcher: Recipient<TrackEvent>,
    /// Every camera this worker has been woken for; a feed only this map still holds belongs to a
    /// stopped camera, whose tracks are then ended.
    cameras: HashMap<i64, CameraState>,
    tracking: TrackConfig,
    max_batch: usize,
    load: LoadWindow,
    stats: WorkerStats,
    latest: Option<LatestFrames>,
    /// Every decided frame's capture→decision latency (the engine's, shared by its workers).
    latencies: Option<Arc<LatencyRecord>>,
    /// This worker's place in the pool (the `worker` label of its metrics).
    index: usize,
    /// The gallery generation the tracks were last judged against.
    gallery_generation: u64,
    #[cfg(feature = "fault-injection")]
    panic_armed: bool,
}

impl InferenceWorker {
    pub fn new(pipeline: FacePipeline, gallery: Arc<RwLock<Gallery>>, matcher: Recipient<TrackEvent>) -> Self {
        let stats = WorkerStats { provider: Some(pipeline.provider()), ..WorkerStats::default() };
        Self {
            pipeline,
            gallery,
            matcher,
            cameras: HashMap::new(),
            tracking: TrackConfig::default(),
            max_batch: 8,
            load: LoadWindow::new(LOAD_WINDOW),
            stats,
            latest: None,
            latencies: None,
            index: 0,
            gallery_generation: 0,
            #[cfg(feature = "fault-injection")]
            panic_armed: false,
        }
    }

    /// This worker's place in the pool, for its metrics (default 0).
    pub fn with_index(mut self, index: usize) -> Self {
        self.index = index;
        self
    }

    /// Most frames analysed together (default 8).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }

    pub fn with_tracking(mut self, tracking: TrackConfig) -> Self {
        self.tracking = tracking;
        self
    }

    /// Publish each camera's newest analysed frame and faces (for live snapshots).
    pub fn with_latest_frames(mut self, latest: LatestFrames) -> Self {
        self.latest = Some(latest);
        self
    }

    /// Record every decided frame's latency in `record`.
    pub fn with_latency_record(mut self, record: Arc<LatencyRecord>) -> Self {
        self.latencies = Some(record);
        self
    }

    fn send(&mut self, event: TrackEvent) {
        if self.matcher.try_send(event).is_err() {
            self.stats.events_dropped += 1;
            warn!(worker = self.index, "the matcher's mailbox is full; a track event was dropped");
        }
    }

    /// Ends the tracks of stopped cameras (feeds only this worker still holds) and forgets them.
    fn forget_stopped(&mut self) {
        let stopped: Vec<i64> =
            self.cameras.iter().filter(|(_, c)| Arc::strong_count(&c.feed) == 1).map(|(id, _)| *id).collect();
        for id in stopped {
            if let Some(mut cam) = self.cameras.remove(&id) {
                for track in cam.tracker.end_all() {
                    self.send(TrackEvent::Ended { camera_id: id, track });
                }
            }
            if let Some(l) = &self.latest {
                l.remove(id);
            }
        }
    }

    /// Ends tracks that have not been seen for their lost time, also on cameras that send no frames.
    fn expire(&mut self) {
        let now = Instant::now();
        let mut ended = Vec::new();
        for (id, cam) in self.cameras.iter_mut() {
            cam.take_still();
            let clock = cam.expiry_clock(now);
            ended.extend(cam.tracker.expire(clock).into_iter().map(|t| (*id, t)));
            cam.feed.set_deciding(cam.tracker.deciding());
        }
        for (camera_id, track) in ended {
            self.send(TrackEvent::Ended { camera_id, track });
        }
    }

    /// The waking camera's frame first, then whatever other cameras have waiting.
    fn collect(&mut self, first: i64) -> Vec<SampledFrame> {
        self.forget_stopped();
        let mut frames = Vec::new();
        if let Some(f) = self.cameras.get(&first).and_then(|c| c.feed.slot.take()) {
            frames.push(f);
        }
        for (id, cam) in &self.cameras {
            if frames.len() >= self.max_batch {
                break;
            }
            if *id != first {
                frames.extend(cam.feed.slot.take());
            }
        }
        frames
    }

    /// When the gallery has changed since the tracks were last judged, tracks that are not a person
    /// get embeddings again: whoever was just enrolled may be standing in view. When it has switched
    /// models, the pipeline embeds with the new one from now on.
    fn follow_gallery(&mut self) {
        let (generation, model) = {
            let g = self.gallery.read().unwrap_or_else(|p| p.into_inner());
            (g.generation(), g.model().clone())
        };
        if generation != self.gallery_generation {
            self.gallery_generation = generation;
            for cam in self.cameras.values_mut() {
                cam.tracker.gallery_changed();
            }
        }
        match self.pipeline.follow(&model) {
            Ok(true) => tracing::info!(worker = self.index, %model, "embedding with the gallery's new model"),
            Ok(false) => {}
            // Vectors of the two models are never compared: `identify` skips the faces until it can.
            Err(e) => warn!(worker = self.index, %model, error = %e, "cannot load the gallery's model"),
        }
    }

    fn analyse(&mut self, frames: Vec<SampledFrame>) {
        let started = Instant::now();
        self.follow_gallery();
        let low_score = self.tracking.low_score;
        let pipeline = &mut self.pipeline;
        #[cfg(feature = "fault-injection")]
        let panic_now = std::mem::take(&mut self.panic_armed);
        // A panic inside inference loses this batch, not the worker and its cameras.
        let detected = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(feature = "fault-injection")]
            if panic_now {
                crate::fault_injection::panic_now("inference");
            }
            let pictures: Vec<Picture> = frames.iter().map(|f| Picture::Yuv(&f.frame)).collect();
            let regions: Vec<Vec<View>> = frames
                .iter()
                .map(|f| f.regions.iter().map(|r| View { x: r.x, y: r.y, width: r.width, height: r.height }).collect())
                .collect();
            pipeline.detect_frames(&pictures, &regions, low_score)
        }));
        let detections = match self.checked(detected, &frames) {
            Some(d) => d,
            None => return,
        };
        // Track, and gather the faces that need an embedding.
        let mut jobs = Vec::new();
        let mut ended = Vec::new();
        let mut assigned_per_frame = Vec::with_capacity(frames.len());
        for (i, (frame, faces)) in frames.iter().zip(&detections).enumerate() {
            self.stats.faces += faces.len() as u64;
            let Some(cam) = self.cameras.get_mut(&frame.camera_id) else {
                assigned_per_frame.push(Vec::new());
                continue;
            };
            cam.take_still();
            if cam.connection.is_some_and(|c| c != frame.connection) {
                ended.extend(cam.tracker.end_all().into_iter().map(|t| (frame.camera_id, t)));
            }
            cam.connection = Some(frame.connection);
            cam.saw(frame.received_at);
            let qualities: Vec<_> = faces.iter().map(|f| face_quality(f, &frame.frame)).collect();
            let update = cam.tracker.update(faces, &qualities, frame.received_at, frame.captured_at, &frame.frame);
            self.stats.tracks_started += update.started.len() as u64;
            let paired = frame.capture.is_some() && cam.feed.main.mode() == StreamMode::Paired;
            cam.tracker.set_paired(paired);
            // The main-stream picture faces of this frame may be cropped from.
            let main = match (paired, frame.capture) {
                (true, Some(capture)) => {
                    cam.tracker.note_positions(capture, &update.assigned, faces);
                    cam.feed.main.newest_near(capture, MAIN_MAX_AGE_SECS, MAIN_MAX_AHEAD_SECS)
                }
                _ => None,
            };
            for (d, track) in update.assigned.iter().enumerate() {
                let Some(track_id) = *track else { continue };
                if let Some(picture) = main.as_ref().filter(|m| cam.tracker.wants_main_embedding(track_id, m.seq)) {
                    let placed = cam
                        .tracker
                        .track(track_id)
                        .and_then(|t| position_at(t.history(), picture.capture, MAIN_MAX_AHEAD_SECS));
                    if let Some(then) = placed {
                        let scale = StreamScale::between(picture.frame.dimensions(), frame.frame.dimensions());
                        jobs.push(EmbedJob {
                            frame: i,
                            track_id,
                            face: main_face(&faces[d], then, scale),
                            quality: qualities[d].score,
                            main: Some(picture.clone()),
                        });
                        continue;
                    }
                }
                if cam.tracker.wants_embedding(track_id, &qualities[d]) {
                    jobs.push(EmbedJob { frame: i, track_id, face: faces[d], quality: qualities[d].score, main: None });
                }
            }
            ended.extend(update.ended.into_iter().map(|t| (frame.camera_id, t)));
            assigned_per_frame.push(update.assigned);
        }
        for (camera_id, track) in ended {
            self.send(TrackEvent::Ended { camera_id, track });
        }
        let embedded = self.embed(&frames, &jobs);
        let done = Instant::now();
        let waits: Vec<Duration> = frames.iter().map(|f| started.saturating_duration_since(f.received_at)).collect();
        instruments::inference_batch(self.index, self.pipeline.provider().as_str(), &waits, done - started);
        self.stats.batches += 1;
        self.stats.frames += frames.len() as u64;
        self.stats.embeddings +=
            embedded.iter().filter(|(e, _)| matches!(e, FaceEmbedding::Embedded { .. })).count() as u64;

        // Identities from the embeddings.
        let gallery = self.gallery.clone();
        let gallery = gallery.read().unwrap_or_else(|p| p.into_inner());
        let (model, judgement) = (self.pipeline.model().clone(), gallery.judgement());
        let mut identified = Vec::new();
        for (job, (embedded, seen)) in jobs.iter().zip(embedded) {
            let frame = &frames[job.frame];
            let vector = match embedded {
                FaceEmbedding::Embedded { vector, .. } => vector,
                missed => {
                    let too_turned = matches!(missed, FaceEmbedding::TooTurned { .. });
                    self.stats.faces_too_turned += u64::from(too_turned);
                    // A main picture that gave nothing is not tried again for this track.
                    if let (Some(m), Some(cam)) = (&job.main, self.cameras.get_mut(&frame.camera_id)) {
                        self.stats.main_faces_not_found += u64::from(!too_turned);
                        cam.tracker.main_picture_tried(job.track_id, m.seq);
                    }
                    continue;
                }
            };
            // A main-stream face is judged, kept and shown as found in its picture.
            let (picture, quality) = match &job.main {
                Some(m) => (m.frame.clone(), face_quality(&seen, &m.frame).score),
                None => (frame.frame.clone(), job.quality),
            };
            let found = match gallery.search(&model, &vector, COMPARED_PERSONS) {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(camera_id = frame.camera_id, error = %e, "face not compared");
                    continue;
                }
            };
            let comparison = Comparison::from_search(&found, COMPARED_PERSONS);
            let Some(cam) = self.cameras.get_mut(&frame.camera_id) else { continue };
            let change = match &job.main {
                Some(m) => {
                    self.stats.main_embeddings += 1;
                    cam.feed.main.count_embedded();
                    let change = cam.tracker.add_main_embedding(job.track_id, m.seq, quality, comparison, &judgement);
                    let best = BestFace {
                        quality,
                        face: seen,
                        frame: m.frame.clone(),
                        captured_at: frame.captured_at,
                        from_main: true,
                    };
                    cam.tracker.offer_main_face(job.track_id, best);
                    change
                }
                None => cam.tracker.add_embedding(job.track_id, quality, comparison, &judgement),
            };
            let kept = TrackEmbedding { model: model.clone(), quality, vector: vector.into() };
            cam.tracker.offer_embedding(job.track_id, kept);
            let Some(track) = cam.tracker.track(job.track_id) else { continue };
            let outcome = if track.identity.person().is_some() { FaceOutcome::Matched } else { FaceOutcome::Unknown };
            instruments::faces_detected(frame.camera_id, outcome, 1);
            let Some(change) = change else { continue };
            identified.push(Identified {
                camera_id: frame.camera_id,
                track_id: job.track_id,
                identity: change.to(),
                evidence: track.evidence(),
                first_seen: track.first_seen,
                face: seen,
                frame: picture,
                captured_at: frame.captured_at,
                quality,
                from_main: job.main.is_some(),
                embedding: track.best_embedding.clone(),
            });
            if let IdentityChange::Changed { from, to } = change {
                tracing::info!(
                    camera_id = frame.camera_id,
                    track = job.track_id,
                    ?from,
                    ?to,
                    "a track's identity changed on new evidence"
                );
            }
        }
        drop(gallery);
        for event in identified {
            self.send(TrackEvent::Identified(event));
        }

        let busy_each = done.duration_since(started) / frames.len().max(1) as u32;
        for (frame, (faces, assigned)) in frames.iter().zip(detections.iter().zip(&assigned_per_frame)) {
            let latency = done.duration_since(frame.received_at);
            self.load.record(done, latency, busy_each);
            instruments::frames_analysed(frame.camera_id, 1);
            instruments::capture_to_decision(frame.camera_id, latency);
            if let Some(record) = &self.latencies {
                record.record(latency);
            }
            if let (Some(latest), Some(cam)) = (&self.latest, self.cameras.get(&frame.camera_id)) {
                let marks = faces
                    .iter()
                    .zip(assigned)
                    .filter_map(|(f, t)| {
                        let track = cam.tracker.track((*t)?)?;
                        let (person_id, score) = match track.identity {
                            Identity::Person { person_id, score } => (Some(person_id), score),
                            _ => (None, track.best_match_score()),
                        };
                        Some(FaceMark { bbox: f.bbox, person_id, score })
                    })
                    .collect();
                latest.put(
                    frame.camera_id,
                    AnalysedFrame { frame: frame.frame.clone(), faces: marks, analysed_at: frame.captured_at },
                );
            }
        }
        for frame in &frames {
            if let Some(cam) = self.cameras.get(&frame.camera_id) {
                cam.feed.set_deciding(cam.tracker.deciding());
                // Main-stream keyframes are decoded only while a face may need them.
                cam.feed.main.set_wanted(!cam.tracker.tracks().is_empty());
            }
        }
        self.stats.tracks_active = self.cameras.values().map(|c| c.tracker.tracks().len() as u64).sum();
    }

    /// The detector's result, or `None` (counted and logged) when it failed or panicked.
    fn checked<T>(&mut self, result: std::thread::Result<Result<T, ModelError>>, frames: &[SampledFrame]) -> Option<T> {
        let cameras = || frames.iter().map(|f| f.camera_id).collect::<Vec<_>>();
        match result {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.stats.errors += 1;
                warn!(cameras = ?cameras(), error = %e, "inference failed on a batch of frames");
                None
            }
            Err(_) => {
                self.stats.errors += 1;
                self.stats.restarts += 1;
                instruments::actor_restarted("inference");
                tracing::error!(cameras = ?cameras(), "inference panicked; the batch is dropped and the worker goes on");
                None
            }
        }
    }

    /// Runs each model once on a blank 720p frame, so that the first camera's first frame does not
    /// pay for ONNX Runtime's first-run allocations (and memory is measured with them).
    fn warm_up(&mut self) {
        let blank = YuvFrame::from_rgb(&image::RgbImage::new(1280, 720));
        let face = Face {
            bbox: panoptes_engine::geometry::BBox { x: 560.0, y: 280.0, width: 160.0, height: 160.0 },
            score: 1.0,
            keypoints: [
                panoptes_engine::geometry::Point::new(600.0, 330.0),
                panoptes_engine::geometry::Point::new(680.0, 330.0),
                panoptes_engine::geometry::Point::new(640.0, 370.0),
                panoptes_engine::geometry::Point::new(640.0, 400.0),
                panoptes_engine::geometry::Point::new(570.0, 340.0),
                panoptes_engine::geometry::Point::new(710.0, 340.0),
            ],
        };
        let pipeline = &mut self.pipeline;
        let warmed = catch_unwind(AssertUnwindSafe(|| {
            pipeline.detector().detect_pictures(&[Picture::Yuv(&blank)], 0.5)?;
            pipeline.embed_faces(&blank, &[face])
        }));
        if !matches!(warmed, Ok(Ok(_))) {
            warn!(worker = self.index, "the models' warm-up run failed; the first frames will show why");
        }
    }

    /// Embeddings for the jobs (all faces of one picture in one call), each with the face as found
    /// (main jobs: re-detected in the main picture).
    fn embed(&mut self, frames: &[SampledFrame], jobs: &[EmbedJob]) -> Vec<(FaceEmbedding, Face)> {
        let mut out: Vec<(FaceEmbedding, Face)> = jobs.iter().map(|j| (FaceEmbedding::NotAligned, j.face)).collect();
        // One group per analysed frame, and one per main picture.
        let mut groups: Vec<(usize, Option<u64>)> = Vec::new();
        for j in jobs {
            let key = (j.frame, j.main.as_ref().map(|m| m.seq));
            if !groups.contains(&key) {
                groups.push(key);
            }
        }
        for (frame_index, seq) in groups {
            let idx: Vec<usize> = (0..jobs.len())
                .filter(|&j| jobs[j].frame == frame_index && jobs[j].main.as_ref().map(|m| m.seq) == seq)
                .collect();
            let Some(&first) = idx.first() else { continue };
            let faces: Vec<Face> = idx.iter().map(|&j| jobs[j].face).collect();
            let frame = &frames[frame_index];
            let pipeline = &mut self.pipeline;
            let result = catch_unwind(AssertUnwindSafe(|| match &jobs[first].main {
                Some(m) => pipeline.embed_placed_faces(&m.frame, &faces),
                None => pipeline
                    .embed_faces(&frame.frame, &faces)
                    .map(|e| e.into_iter().zip(faces.iter().copied()).collect()),
            }));
            if let Some(embeddings) = self.checked(result, std::slice::from_ref(frame)) {
                for (j, e) in idx.into_iter().zip(embeddings) {
                    out[j] = e;
                }
            }
        }
        out
    }
}

impl Actor for InferenceWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // One wake-up per camera is outstanding at most; this bounds the number of cameras a worker
        // can hold before wake-ups are retried by the decoders.
        ctx.set_mailbox_capacity(256);
        self.warm_up();
        ctx.run_interval(EXPIRE_EVERY, |act, _| {
            act.forget_stopped();
            act.expire();
        });
    }
}

impl Handler<FrameReady> for InferenceWorker {
    type Result = ();

    fn handle(&mut self, msg: FrameReady, _: &mut Self::Context) {
        // A restarted camera brings a new feed: the newest one is the live one.
        let tracking = self.tracking.clone();
        let cam = self.cameras.entry(msg.camera_id).or_insert_with(|| CameraState {
            feed: msg.feed.clone(),
            tracker: FaceTracker::new(tracking),
            clock: None,
            looked_at: None,
            connection: None,
        });
        if !Arc::ptr_eq(&cam.feed, &msg.feed) {
            cam.feed = msg.feed;
        }
        let frames = self.collect(msg.camera_id);
        if !frames.is_empty() {
            self.analyse(frames);
        }
    }
}

impl Handler<EndAllTracks> for InferenceWorker {
    type Result = ();

    fn handle(&mut self, _: EndAllTracks, _: &mut Self::Context) {
        let mut ended = Vec::new();
        for (id, cam) in self.cameras.iter_mut() {
            ended.extend(cam.tracker.end_all().into_iter().map(|t| (*id, t)));
        }
        for (camera_id, track) in ended {
            self.send(TrackEvent::Ended { camera_id, track });
        }
    }
}

impl Handler<GetWorkerStats> for InferenceWorker {
    type Result = MessageResult<GetWorkerStats>;

    fn handle(&mut self, _: GetWorkerStats, _: &mut Self::Context) -> Self::Result {
        self.forget_stopped();
        MessageResult(WorkerStats {
            cameras: self.cameras.len(),
            load: self.load.figures(Instant::now()),
            ..self.stats
        })
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::fault_injection::InjectPanic> for InferenceWorker {
    type Result = ();

    fn handle(&mut self, _: crate::fault_injection::InjectPanic, _: &mut Self::Context) {
        self.panic_armed = true;
    }
}
