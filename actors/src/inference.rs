//! The inference worker: owns its ONNX Runtime sessions (one pipeline per worker), takes the newest
//! waiting frame of a camera, finds and embeds every face, searches the gallery and reports each face
//! to the matcher. Run each worker in its own arbiter: inference blocks its thread.

use std::sync::{Arc, RwLock};

use actix::prelude::*;
use chrono::Utc;
use panoptes_engine::gallery::Gallery;
use panoptes_engine::pipeline::FacePipeline;
use tracing::warn;

use crate::decoder::FrameReady;
use crate::messages::FaceObservation;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkerStats {
    pub frames: u64,
    pub faces: u64,
    pub errors: u64,
    /// Observations the matcher could not take (its mailbox was full).
    pub observations_dropped: u64,
}

#[derive(Message)]
#[rtype(result = "WorkerStats")]
pub struct GetWorkerStats;

pub struct InferenceWorker {
    pipeline: FacePipeline,
    gallery: Arc<RwLock<Gallery>>,
    threshold: f32,
    matcher: Recipient<FaceObservation>,
    stats: WorkerStats,
}

impl InferenceWorker {
    pub fn new(
        pipeline: FacePipeline,
        gallery: Arc<RwLock<Gallery>>,
        threshold: f32,
        matcher: Recipient<FaceObservation>,
    ) -> Self {
        Self { pipeline, gallery, threshold, matcher, stats: WorkerStats::default() }
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
        let Some(frame) = msg.slot.take() else { return };
        self.stats.frames += 1;
        let faces = match self.pipeline.analyze(&frame.image) {
            Ok(f) => f,
            Err(e) => {
                self.stats.errors += 1;
                warn!(camera_id = frame.camera_id, error = %e, "inference failed on a frame");
                return;
            }
        };
        let seen_at = Utc::now();
        for face in faces {
            self.stats.faces += 1;
            let best = self.gallery.read().unwrap_or_else(|p| p.into_inner()).search(&face.embedding, 1);
            let (person_id, score) = match best.ok().and_then(|m| m.into_iter().next()) {
                Some(m) if m.score >= self.threshold => (Some(m.person_id), m.score),
                Some(m) => (None, m.score),
                None => (None, 0.0),
            };
            let obs = FaceObservation {
                camera_id: frame.camera_id,
                person_id,
                score,
                det_score: face.face.score,
                bbox: face.face.bbox,
                seen_at,
                received_at: frame.received_at,
            };
            if self.matcher.try_send(obs).is_err() {
                self.stats.observations_dropped += 1;
            }
        }
    }
}

impl Handler<GetWorkerStats> for InferenceWorker {
    type Result = MessageResult<GetWorkerStats>;

    fn handle(&mut self, _: GetWorkerStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.stats)
    }
}
