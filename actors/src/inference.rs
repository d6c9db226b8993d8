//! The inference worker: owns its ONNX Runtime sessions (one pipeline per worker), takes the newest
//! waiting frame of each of its cameras, finds and embeds every face — frames of several cameras that
//! are waiting together go through the detector as one batch — searches the gallery and reports each
//! face to the matcher. Run each worker in its own arbiter: inference blocks its thread.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use image::RgbImage;
use panoptes_engine::gallery::Gallery;
use panoptes_engine::pipeline::FacePipeline;
use panoptes_engine::runtime::Provider;
use serde::Serialize;
use tracing::warn;

use crate::decoder::{DecodedFrame, FrameReady};
use crate::instruments::{self, FaceOutcome};
use crate::latency_record::LatencyRecord;
use crate::latest::LatestSlot;
use crate::latest_frames::{AnalysedFrame, FaceMark, LatestFrames};
use crate::load::{LoadFigures, LoadWindow};
use crate::messages::FaceObservation;

/// The window over which latency and utilisation are measured for load decisions.
const LOAD_WINDOW: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct WorkerStats {
    pub provider: Option<Provider>,
    pub frames: u64,
    pub batches: u64,
    pub faces: u64,
    pub errors: u64,
    /// Panics caught inside inference (each lost its batch and counts as an error too).
    pub restarts: u64,
    /// Observations the matcher could not take (its mailbox was full).
    pub observations_dropped: u64,
    /// Cameras whose frames this worker currently takes.
    pub cameras: usize,
    pub load: LoadFigures,
}

#[derive(Message)]
#[rtype(result = "WorkerStats")]
pub struct GetWorkerStats;

pub struct InferenceWorker {
    pipeline: FacePipeline,
    gallery: Arc<RwLock<Gallery>>,
    threshold: f32,
    matcher: Recipient<FaceObservation>,
    /// Every camera slot this worker has been woken for; a slot only this map still holds belongs
    /// to a stopped camera and is forgotten.
    slots: HashMap<i64, Arc<LatestSlot<DecodedFrame>>>,
    max_batch: usize,
    load: LoadWindow,
    stats: WorkerStats,
    latest: Option<LatestFrames>,
    /// Every decided frame's capture→decision latency (the engine's, shared by its workers).
    latencies: Option<Arc<LatencyRecord>>,
    /// This worker's place in the pool (the `worker` label of its metrics).
    index: usize,
    #[cfg(feature = "fault-injection")]
    panic_armed: bool,
}

impl InferenceWorker {
    pub fn new(
        pipeline: FacePipeline,
        gallery: Arc<RwLock<Gallery>>,
        threshold: f32,
        matcher: Recipient<FaceObservation>,
    ) -> Self {
        let stats = WorkerStats { provider: Some(pipeline.provider()), ..WorkerStats::default() };
        Self {
            pipeline,
            gallery,
            threshold,
            matcher,
            slots: HashMap::new(),
            max_batch: 8,
            load: LoadWindow::new(LOAD_WINDOW),
            stats,
            latest: None,
            latencies: None,
            index: 0,
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

    /// Forgets slots only this worker still holds (their cameras stopped).
    fn forget_stopped(&mut self) {
        let latest = &self.latest;
        self.slots.retain(|id, slot| {
            let alive = Arc::strong_count(slot) > 1;
            if !alive {
                if let Some(l) = latest {
                    l.remove(*id);
                }
            }
            alive
        });
    }

    /// The waking camera's frame first, then whatever other cameras have waiting.
    fn collect(&mut self, first: i64) -> Vec<DecodedFrame> {
        self.forget_stopped();
        let mut frames = Vec::new();
        if let Some(f) = self.slots.get(&first).and_then(|s| s.take()) {
            frames.push(f);
        }
        for (id, slot) in &self.slots {
            if frames.len() >= self.max_batch {
                break;
            }
            if *id != first {
                frames.extend(slot.take());
            }
        }
        frames
    }

    fn analyse(&mut self, frames: Vec<DecodedFrame>) {
        let started = Instant::now();
        let images: Vec<Arc<RgbImage>> = frames.iter().map(|f| f.image.clone()).collect();
        let refs: Vec<&RgbImage> = images.iter().map(|i| i.as_ref()).collect();
        // A panic inside inference loses this batch, not the worker and its cameras.
        let pipeline = &mut self.pipeline;
        #[cfg(feature = "fault-injection")]
        let panic_now = std::mem::take(&mut self.panic_armed);
        let result = match catch_unwind(AssertUnwindSafe(|| {
            #[cfg(feature = "fault-injection")]
            if panic_now {
                crate::fault_injection::panic_now("inference");
            }
            pipeline.analyze_batch(&refs)
        })) {
            Ok(r) => r,
            Err(_) => {
                self.stats.errors += 1;
                self.stats.restarts += 1;
                instruments::actor_restarted("inference");
                let cameras: Vec<i64> = frames.iter().map(|f| f.camera_id).collect();
                tracing::error!(?cameras, "inference panicked; the batch is dropped and the worker goes on");
                return;
            }
        };
        let done = Instant::now();
        let waits: Vec<Duration> = frames.iter().map(|f| started.saturating_duration_since(f.received_at)).collect();
        instruments::inference_batch(self.index, self.pipeline.provider().as_str(), &waits, done - started);
        self.stats.batches += 1;
        self.stats.frames += frames.len() as u64;
        let analysed = match result {
            Ok(a) => a,
            Err(e) => {
                self.stats.errors += 1;
                let cameras: Vec<i64> = frames.iter().map(|f| f.camera_id).collect();
                warn!(?cameras, error = %e, "inference failed on a batch of frames");
                return;
            }
        };
        let busy_each = done.duration_since(started) / frames.len().max(1) as u32;
        let seen_at = Utc::now();
        let gallery = self.gallery.read().unwrap_or_else(|p| p.into_inner());
        for ((frame, image), faces) in frames.iter().zip(&images).zip(analysed) {
            let latency = done.duration_since(frame.received_at);
            self.load.record(done, latency, busy_each);
            instruments::frames_analysed(frame.camera_id, 1);
            instruments::capture_to_decision(frame.camera_id, latency);
            if let Some(record) = &self.latencies {
                record.record(latency);
            }
            let mut marks = Vec::with_capacity(faces.len());
            for face in faces {
                self.stats.faces += 1;
                let best = gallery.search(&face.embedding, 1);
                let (person_id, score) = match best.ok().and_then(|m| m.into_iter().next()) {
                    Some(m) if m.score >= self.threshold => (Some(m.person_id), m.score),
                    Some(m) => (None, m.score),
                    None => (None, 0.0),
                };
                let outcome = if person_id.is_some() { FaceOutcome::Matched } else { FaceOutcome::Unknown };
                instruments::faces_detected(frame.camera_id, outcome, 1);
                let obs = FaceObservation {
                    camera_id: frame.camera_id,
                    person_id,
                    score,
                    det_score: face.face.score,
                    bbox: face.face.bbox,
                    seen_at,
                    received_at: frame.received_at,
                    frame: image.clone(),
                };
                marks.push(FaceMark { bbox: face.face.bbox, person_id, score });
                if self.matcher.try_send(obs).is_err() {
                    self.stats.observations_dropped += 1;
                }
            }
            if let Some(latest) = &self.latest {
                latest.put(frame.camera_id, AnalysedFrame { frame: image.clone(), faces: marks, analysed_at: seen_at });
            }
        }
    }
}

impl Actor for InferenceWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // One wake-up per camera is outstanding at most; this bounds the number of cameras a worker
        // can hold before wake-ups are retried by the decoders.
        ctx.set_mailbox_capacity(256);
    }
}

impl Handler<FrameReady> for InferenceWorker {
    type Result = ();

    fn handle(&mut self, msg: FrameReady, _: &mut Self::Context) {
        // A restarted camera brings a new slot: the newest one is the live one.
        self.slots.insert(msg.camera_id, msg.slot);
        let frames = self.collect(msg.camera_id);
        if !frames.is_empty() {
            self.analyse(frames);
        }
    }
}

impl Handler<GetWorkerStats> for InferenceWorker {
    type Result = MessageResult<GetWorkerStats>;

    fn handle(&mut self, _: GetWorkerStats, _: &mut Self::Context) -> Self::Result {
        self.forget_stopped();
        MessageResult(WorkerStats { cameras: self.slots.len(), load: self.load.figures(Instant::now()), ..self.stats })
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<crate::fault_injection::InjectPanic> for InferenceWorker {
    type Result = ();

    fn handle(&mut self, _: crate::fault_injection::InjectPanic, _: &mut Self::Context) {
        self.panic_armed = true;
    }
}
