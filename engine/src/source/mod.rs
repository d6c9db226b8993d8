//! Where video comes from: RTSP cameras and Annex-B H.264 byte streams.

pub mod annexb;
pub mod backoff;
pub mod camera_url;
pub mod file;
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
    #[error("camera {camera}: the stream offers no H.264 video")]
    NoH264 { camera: String },
    #[error("video file {path}: {detail}")]
    File { path: String, detail: String },
}
