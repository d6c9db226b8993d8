//! Messages between pipeline actors.

use std::sync::Arc;

use actix::Message;
use panoptes_engine::detect::Face;
use panoptes_engine::frame::YuvFrame;
use panoptes_engine::source::annexb::AccessUnit;
use panoptes_engine::track::identity::{Evidence, Identity};
use panoptes_engine::track::{EndedTrack, TrackEmbedding};

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
    /// Which of the camera's connections it came over (counted from 1). A new one means the stream
    /// broke in between: what is seen after is not continuous with what was seen before.
    pub connection: u64,
    /// Which of the camera's streams it came from.
    pub stream: StreamRole,
}

/// A camera's stream: its only one, or one of a main stream and substream pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamRole {
    /// A camera with one stream: it is decoded and analysed.
    #[default]
    Single,
    /// The substream (`detect_url`): decoded and analysed.
    Detect,
    /// The main stream of a camera with a substream: read at its keyframes for faces.
    Main,
}

impl StreamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamRole::Single => "single",
            StreamRole::Detect => "detect",
            StreamRole::Main => "main",
        }
    }
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
            connection: 1,
            stream: StreamRole::Single,
        }
    }
}

/// What happened to a tracked face, as the inference worker tells the matcher.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub enum TrackEvent {
    /// The track's identity settled (or changed, on evidence): a person, or unknown.
    Identified(Identified),
    /// The track has ended (the face left, or the camera stopped).
    Ended { camera_id: i64, track: EndedTrack<Arc<YuvFrame>> },
}

#[derive(Debug, Clone)]
pub struct Identified {
    pub camera_id: i64,
    pub track_id: u64,
    pub identity: Identity,
    /// What the identity rests on (best and runner-up person, embeddings).
    pub evidence: Evidence,
    /// When the track began (capture time of its first frame).
    pub first_seen: chrono::DateTime<chrono::Utc>,
    /// The face that settled it, in the frame it was seen in (the first snapshot).
    pub face: Face,
    pub frame: Arc<YuvFrame>,
    pub captured_at: chrono::DateTime<chrono::Utc>,
    /// Its quality (a better face of the same appearance replaces the snapshot at its end).
    pub quality: f32,
    /// Cropped from the camera's main stream (`face` and `frame` are the main stream's).
    pub from_main: bool,
    /// The track's best embedded face so far (the appearance keeps it).
    pub embedding: Option<TrackEmbedding>,
}

/// A whole detection to store at once (a sighting with no track behind it, e.g. from tests).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct DetectionEvent(pub panoptes_engine::storage::NewDetection);

/// An appearance that began: its row is written and its live event published now.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct AppearanceStarted {
    /// The matcher's name for the appearance, for the updates that follow.
    pub key: u64,
    pub row: panoptes_engine::storage::NewDetection,
}

/// A newer version of an appearance's row (its track ended, a better snapshot, another track joined).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct AppearanceUpdated {
    pub key: u64,
    pub row: panoptes_engine::storage::NewDetection,
}

/// The appearance will not change again: once its last version is written the sink forgets it.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct AppearanceClosed {
    pub key: u64,
}
