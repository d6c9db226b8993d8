//! Messages between pipeline actors.

use actix::Message;
use panoptes_engine::source::annexb::AccessUnit;

/// One encoded picture from a camera, stamped when it arrived.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct EncodedFrame {
    pub camera_id: i64,
    pub unit: AccessUnit,
    pub received_at: std::time::Instant,
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
