//! The first picture of a stream, to check a pair of streams before a camera is added: connect (or
//! open the file), read to the first keyframe and decode it alone.

use std::path::Path;
use std::time::Duration;

use crate::decode::{self, DecodeError, DecoderBackend};
use crate::frame::YuvFrame;
use crate::source::annexb::AccessUnit;
use crate::source::file::FileSource;
use crate::source::rtsp::{RtspSource, RtspTransport};
use crate::source::SourceError;

#[derive(Debug, thiserror::Error)]
pub enum FirstPictureError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{stream}: cannot decode its first keyframe")]
    Decode {
        stream: String,
        #[source]
        source: DecodeError,
    },
    #[error("{stream}: no keyframe within {after:?}")]
    NoKeyframe { stream: String, after: Duration },
}

/// Reads `url` (rtsp://, rtsps://, or a file path) up to its first keyframe and decodes it, all
/// within `timeout`.
pub async fn first_picture(
    url: &str,
    transport: RtspTransport,
    file_fps: f32,
    timeout: Duration,
) -> Result<YuvFrame, FirstPictureError> {
    let no_keyframe =
        || FirstPictureError::NoKeyframe { stream: crate::source::camera_url::redact(url), after: timeout };
    let read = async {
        if crate::source::camera_url::is_rtsp(url) {
            let mut source = RtspSource::connect(url, transport, timeout).await?;
            while let Some(unit) = source.next_access_unit().await? {
                if unit.is_keyframe {
                    return Ok(Some(unit));
                }
            }
            Ok(None)
        } else {
            let mut source = FileSource::open(Path::new(url), file_fps, false).await?;
            // a file is read at its own pace; its first keyframe comes within its first GOP
            while let Some(unit) = source.next_access_unit().await? {
                if unit.is_keyframe {
                    return Ok(Some(unit));
                }
            }
            Ok(None)
        }
    };
    let unit: AccessUnit = match tokio::time::timeout(timeout, read).await {
        Ok(Ok(Some(unit))) => unit,
        Ok(Ok(None)) | Err(_) => return Err(no_keyframe()),
        Ok(Err(e)) => return Err(FirstPictureError::Source(e)),
    };
    let decode_error = |source| FirstPictureError::Decode { stream: crate::source::camera_url::redact(url), source };
    let mut decoder = decode::open(DecoderBackend::Libav, unit.codec).map_err(decode_error)?;
    decoder.set_keyframes_only(true);
    let mut pictures = decoder.decode(&unit.data, true, 0, &mut |_, _| true).map_err(decode_error)?;
    if pictures.is_empty() {
        pictures = decoder.flush(&mut |_, _| true).map_err(decode_error)?;
    }
    pictures.into_iter().find_map(|p| p.frame).ok_or_else(no_keyframe)
}
