//! The newest analysed frame of each camera with the faces found in it, for the API's live snapshot
//! (`/api/v1/cameras/{id}/snapshot.jpg`). One frame per camera is held (shared with the pipeline, not
//! copied); entries of stopped cameras are removed by the worker that owned them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use panoptes_engine::frame::YuvFrame;
use panoptes_engine::geometry::BBox;

#[derive(Clone, Debug)]
pub struct FaceMark {
    pub bbox: BBox,
    /// Set when the face matched someone above the threshold.
    pub person_id: Option<i64>,
    pub score: f32,
}

#[derive(Debug)]
pub struct AnalysedFrame {
    /// Kept in YUV: converted to RGB only when someone asks for the picture.
    pub frame: Arc<YuvFrame>,
    pub faces: Vec<FaceMark>,
    pub analysed_at: DateTime<Utc>,
}

#[derive(Clone, Default)]
pub struct LatestFrames(Arc<RwLock<HashMap<i64, Arc<AnalysedFrame>>>>);

impl LatestFrames {
    pub fn put(&self, camera_id: i64, frame: AnalysedFrame) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(camera_id, Arc::new(frame));
    }

    pub fn get(&self, camera_id: i64) -> Option<Arc<AnalysedFrame>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(&camera_id).cloned()
    }

    pub fn remove(&self, camera_id: i64) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).remove(&camera_id);
    }
}
