//! What the outputs (live events, webhooks, MQTT) are handed: an appearance as it begins, or an
//! unknown appearance as it joins its identity once it has ended.

use crate::storage::{Detection, NewDetection};

/// An unknown appearance given its identity by the grouping (`crate::unknowns`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grouped {
    pub unknown_id: i64,
    /// Distinct days (site time) on which the identity has been seen, this appearance included.
    pub days: u32,
}

#[derive(Clone, Debug)]
pub struct LiveEvent {
    pub detection: NewDetection,
    /// `None`: the appearance has just begun.
    pub grouped: Option<Grouped>,
}

impl LiveEvent {
    pub fn began(detection: NewDetection) -> LiveEvent {
        LiveEvent { detection, grouped: None }
    }

    /// A stored unknown appearance that has just joined its identity; `None` when its camera has
    /// been deleted meanwhile (nothing to announce it on).
    pub fn grouped(d: Detection, grouped: Grouped) -> Option<LiveEvent> {
        let detection = NewDetection {
            id: Some(d.id),
            camera_id: d.camera_id?,
            detected_at: d.detected_at,
            last_seen_at: d.last_seen_at,
            person_id: d.person_id,
            score: d.score,
            best_score: d.best_score.unwrap_or(d.score),
            det_score: d.det_score.unwrap_or_default(),
            bbox: d.bbox,
            frames: d.frames,
            snapshot_path: d.snapshot_path,
            evidence: d.evidence,
            face: None,
        };
        Some(LiveEvent { detection, grouped: Some(grouped) })
    }

    pub fn stage(&self) -> &'static str {
        if self.grouped.is_some() {
            "grouped"
        } else {
            "began"
        }
    }
}

impl From<NewDetection> for LiveEvent {
    fn from(detection: NewDetection) -> Self {
        LiveEvent::began(detection)
    }
}
