//! H.264 decoding with openh264 into RGB frames. Flushing is off (`Flush::NoFlush`) so that streams
//! with B-frames decode in order; nothing is fed until the first keyframe, since a client that joins
//! mid-GOP would otherwise hand the decoder P-frames without parameter sets.

use image::RgbImage;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("could not create the H.264 decoder: {0}")]
    Init(String),
    #[error("corrupt H.264 data ({bytes} bytes): {detail}")]
    Corrupt { bytes: usize, detail: String },
    #[error("decoded frame of {width}×{height} is outside the supported 16..=8192 px")]
    BadDimensions { width: usize, height: usize },
}

/// Counters a caller exports as metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub access_units: u64,
    pub frames: u64,
    pub skipped_before_keyframe: u64,
    pub corrupt: u64,
}

pub struct H264Decoder {
    decoder: Decoder,
    seen_keyframe: bool,
    stats: DecodeStats,
}

impl H264Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| DecodeError::Init(e.to_string()))?;
        Ok(Self { decoder, seen_keyframe: false, stats: DecodeStats::default() })
    }

    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// Something before the next access unit was lost or could not be decoded: the pictures that
    /// follow would be decoded from missing references (smeared), so nothing is fed to the decoder
    /// until the next keyframe.
    pub fn resync(&mut self) {
        self.seen_keyframe = false;
    }

    /// Decodes one access unit (Annex-B, start codes included). Returns a frame when the decoder has
    /// one ready; with B-frames that may be an earlier picture than this access unit's.
    pub fn decode(&mut self, access_unit: &[u8], is_keyframe: bool) -> Result<Option<RgbImage>, DecodeError> {
        Ok(self.decode_picture_if(access_unit, is_keyframe, || true)?.flatten())
    }

    /// Like [`decode`](Self::decode), but converts the decoded frame to RGB only when `wanted()` says
    /// so (a camera analysed at 5 of its 10 fps need not pay for converting the other 5). The outer
    /// `Option` says whether a frame was decoded, the inner one holds the picture when wanted.
    pub fn decode_picture_if(
        &mut self,
        access_unit: &[u8],
        is_keyframe: bool,
        wanted: impl FnOnce() -> bool,
    ) -> Result<Option<Option<RgbImage>>, DecodeError> {
        self.stats.access_units += 1;
        if !self.seen_keyframe {
            if !is_keyframe {
                self.stats.skipped_before_keyframe += 1;
                return Ok(None);
            }
            self.seen_keyframe = true;
        }
        match self.decoder.decode(access_unit) {
            Ok(Some(yuv)) => {
                self.stats.frames += 1;
                if wanted() {
                    Ok(Some(Some(to_rgb(&yuv)?)))
                } else {
                    Ok(Some(None))
                }
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.stats.corrupt += 1;
                Err(DecodeError::Corrupt { bytes: access_unit.len(), detail: e.to_string() })
            }
        }
    }

    /// Frames still held by the decoder at the end of a stream.
    pub fn flush(&mut self) -> Result<Vec<RgbImage>, DecodeError> {
        let frames =
            self.decoder.flush_remaining().map_err(|e| DecodeError::Corrupt { bytes: 0, detail: e.to_string() })?;
        let out = frames.iter().map(to_rgb).collect::<Result<Vec<_>, _>>()?;
        self.stats.frames += out.len() as u64;
        Ok(out)
    }
}

fn to_rgb(yuv: &DecodedYUV<'_>) -> Result<RgbImage, DecodeError> {
    let (width, height) = yuv.dimensions();
    if !(16..=8192).contains(&width) || !(16..=8192).contains(&height) {
        return Err(DecodeError::BadDimensions { width, height });
    }
    let mut buf = vec![0u8; width * height * 3];
    yuv.write_rgb8(&mut buf);
    RgbImage::from_raw(width as u32, height as u32, buf).ok_or(DecodeError::BadDimensions { width, height })
}
