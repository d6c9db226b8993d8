//! The metrics the actors record as things happen: latency and batch-size histograms, and the
//! per-camera face counts. Counters the actors already keep for the API (frames, drops, reconnects,
//! restarts, sink figures) are read when `/metrics` is scraped instead, so the API and Prometheus
//! never disagree. Every name here is listed, with its labels, in docs/metrics.md.

use std::time::Duration;

use metrics::{counter, histogram};

pub const CAPTURE_TO_DECISION_SECONDS: &str = "panoptes_capture_to_decision_seconds";
pub const DECODE_DURATION_SECONDS: &str = "panoptes_decode_duration_seconds";
pub const INFERENCE_QUEUE_SECONDS: &str = "panoptes_inference_queue_seconds";
pub const INFERENCE_BATCH_DURATION_SECONDS: &str = "panoptes_inference_batch_duration_seconds";
pub const INFERENCE_BATCH_FRAMES: &str = "panoptes_inference_batch_frames";
pub const FRAMES_ANALYSED_TOTAL: &str = "panoptes_frames_analysed_total";
pub const FACES_DETECTED_TOTAL: &str = "panoptes_faces_detected_total";
pub const ACTOR_RESTARTS_TOTAL: &str = "panoptes_actor_restarts_total";
pub const DETECTION_EVENTS_TOTAL: &str = "panoptes_detection_events_total";
pub const SNAPSHOT_WRITE_DURATION_SECONDS: &str = "panoptes_snapshot_write_duration_seconds";
pub const CONTROL_MESSAGES_FAILED_TOTAL: &str = "panoptes_control_messages_failed_total";
pub const SCHEDULER_TICK_SECONDS: &str = "panoptes_scheduler_tick_seconds";

/// Whether a detected face matched an enrolled person (above the threshold) or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaceOutcome {
    Matched,
    Unknown,
}

impl FaceOutcome {
    fn label(self) -> &'static str {
        match self {
            FaceOutcome::Matched => "matched",
            FaceOutcome::Unknown => "unknown",
        }
    }
}

/// The time from a frame's arrival to the decision on its faces.
pub fn capture_to_decision(camera_id: i64, elapsed: Duration) {
    histogram!(CAPTURE_TO_DECISION_SECONDS, "camera" => camera_id.to_string()).record(elapsed.as_secs_f64());
}

/// One phase of a scheduler tick: `database` (cameras read, leases renewed and claimed), `apply`
/// (pipelines started, stopped, rates set), `status` (every camera and decoder asked for its figures).
pub fn scheduler_tick(phase: &'static str, elapsed: Duration) {
    histogram!(SCHEDULER_TICK_SECONDS, "phase" => phase).record(elapsed.as_secs_f64());
}

/// The time one access unit took to decode (and, when sampled, to convert to RGB).
pub fn decode_duration(elapsed: Duration) {
    histogram!(DECODE_DURATION_SECONDS).record(elapsed.as_secs_f64());
}

/// One batch through an inference worker: how long each frame waited for it, how many frames
/// it held and how long the models took.
pub fn inference_batch(worker: usize, provider: &'static str, waits: &[Duration], elapsed: Duration) {
    let worker = worker.to_string();
    let queue = histogram!(INFERENCE_QUEUE_SECONDS, "worker" => worker.clone());
    for w in waits {
        queue.record(w.as_secs_f64());
    }
    let labels = [("worker", worker), ("provider", provider.to_string())];
    histogram!(INFERENCE_BATCH_FRAMES, &labels).record(waits.len() as f64);
    histogram!(INFERENCE_BATCH_DURATION_SECONDS, &labels).record(elapsed.as_secs_f64());
}

/// The control messages whose delivery failures are counted (the `message` label of
/// `panoptes_control_messages_failed_total`).
pub const CONTROL_MESSAGES: &[&str] = &["stop_camera", "set_analysis_fps", "set_motion_mask"];

/// A control message (see [`crate::control`]) could not be delivered after its retries.
pub fn control_message_failed(message: &'static str) {
    counter!(CONTROL_MESSAGES_FAILED_TOTAL, "message" => message).increment(1);
}

/// The actors whose restarts are counted (the `actor` label of `panoptes_actor_restarts_total`).
pub const RESTARTING_ACTORS: &[&str] = &["decoder", "inference"];

/// A supervised actor (or the decoder inside one) was restarted after a panic.
pub fn actor_restarted(actor: &'static str) {
    counter!(ACTOR_RESTARTS_TOTAL, "actor" => actor).increment(1);
}

// The per-camera counters take a count so the exposition can create them at zero with the camera.

pub fn frames_analysed(camera_id: i64, n: u64) {
    counter!(FRAMES_ANALYSED_TOTAL, "camera" => camera_id.to_string()).increment(n);
}

pub fn faces_detected(camera_id: i64, outcome: FaceOutcome, n: u64) {
    counter!(FACES_DETECTED_TOTAL, "camera" => camera_id.to_string(), "outcome" => outcome.label()).increment(n);
}

/// Detection events that left the matcher (one per appearance).
pub fn detection_events(camera_id: i64, n: u64) {
    counter!(DETECTION_EVENTS_TOTAL, "camera" => camera_id.to_string()).increment(n);
}

pub fn snapshot_written(elapsed: Duration) {
    histogram!(SNAPSHOT_WRITE_DURATION_SECONDS).record(elapsed.as_secs_f64());
}
