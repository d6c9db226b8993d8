//! Messages between pipeline actors.

use actix::Message;
use panoptes_engine::source::annexb::AccessUnit;

/// One encoded picture from a camera, stamped when it arrived.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct EncodedFrame {
    pub camera_id: i64,
    pub unit: AccessUnit,
    /// When it arrived (for latency).
    pub received_at: std::time::Instant,
    /// The same moment on the wall clock: the capture time recorded with what is seen in it.
    pub captured_at: chrono::DateTime<chrono::Utc>,
    /// Reference pictures this camera could not hand over so far (the decoder's mailbox was full).
    /// When it grows, the pictures that follow are damaged until the next keyframe.
    pub references_lost: u64,
}

impl EncodedFrame {
    /// An access unit arriving now, with nothing lost before it.
    pub fn arriving_now(camera_id: i64, unit: AccessUnit) -> EncodedFrame {
        EncodedFrame {
            camera_id,
            unit,
            received_at: std::time::Instant::now(),
            captured_at: chrono::Utc::now(),
            references_lost: 0,
        }
    }
}

/// One face seen by inference, with its best gallery match (person set only above the threshold).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct FaceObservation {
    pub camera_id: i64,
    pub person_id: Option<i64>,
    pub score: f32,
    pub det_score: f32,
    pub bbox: panoptes_engine::geometry::BBox,
    pub seen_at: chrono::DateTime<chrono::Utc>,
    pub received_at: std::time::Instant,
    /// The analysed frame, for the snapshot of a detection.
    pub frame: std::sync::Arc<image::RgbImage>,
}

/// A detection to store.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DetectionEvent(pub panoptes_engine::storage::NewDetection);
