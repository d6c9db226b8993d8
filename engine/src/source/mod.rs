//! Where video comes from: RTSP cameras and video files, as access units of H.264 or H.265.

pub mod annexb;
pub mod backoff;
pub mod camera_url;
pub mod clock;
pub mod file;
pub mod h265;
pub mod length_prefixed;
pub mod rtsp;

use std::time::Duration;

/// Every message names the camera by its URL without credentials.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("invalid camera URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("camera {camera}: RTSP {stage} failed: {detail}")]
    Rtsp { camera: String, stage: &'static str, detail: String },
    #[error("camera {camera}: RTSP {stage} timed out after {after:?}")]
    Timeout { camera: String, stage: &'static str, after: Duration },
    /// The stream or file holds no video Panoptes can decode (MJPEG, MPEG-4 part 2, audio only…).
    /// Retrying soon would not change it: the camera waits longer before trying again.
    #[error("{camera}: {found}, which Panoptes cannot decode (it takes H.264 or H.265 video)")]
    UnsupportedCodec { camera: String, found: String },
    #[error("video file {path}: {detail}")]
    File { path: String, detail: String },
}

impl SourceError {
    /// An error that retrying at the usual backoff would only repeat (the codec, not the network).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, SourceError::UnsupportedCodec { .. })
    }
}
