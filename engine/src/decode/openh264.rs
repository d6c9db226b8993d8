//! The openh264 backend (compiled in, H.264 only). Flushing is off (`Flush::NoFlush`) so that streams
//! with B-frames decode in order; openh264 gives no timing with its pictures, so a picture is tagged
//! with the access unit that let it out.

use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use super::{DecodeError, DecodeStats, DecodedPicture, DecoderBackend, KeyframeGate, VideoDecoder, WantPicture};
use crate::frame::LumaView;
use crate::frame::YuvFrame;

pub struct OpenH264Decoder {
    decoder: Decoder,
    gate: KeyframeGate,
    stats: DecodeStats,
}

impl OpenH264Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| DecodeError::Init { backend: "openh264", detail: e.to_string() })?;
        Ok(Self { decoder, gate: KeyframeGate::default(), stats: DecodeStats::default() })
    }
}

impl VideoDecoder for OpenH264Decoder {
    fn backend(&self) -> DecoderBackend {
        DecoderBackend::Openh264
    }

    fn decode(
        &mut self,
        unit: &[u8],
        is_keyframe: bool,
        tag: u64,
        want: &mut WantPicture<'_>,
    ) -> Result<Vec<DecodedPicture>, DecodeError> {
        if !self.gate.admit(is_keyframe, &mut self.stats) {
            return Ok(Vec::new());
        }
        match self.decoder.decode(unit) {
            Ok(Some(yuv)) => {
                self.stats.frames += 1;
                let frame = if want(tag, luma(&yuv)) { Some(copy(&yuv)?) } else { None };
                Ok(vec![DecodedPicture { tag, frame, damaged: false }])
            }
            // Held for reordering: with keyframes only nothing follows to push it out.
            Ok(None) if self.gate.keyframes_only() => {
                let mut pictures = self.flush(want)?;
                for p in &mut pictures {
                    p.tag = tag;
                }
                Ok(pictures)
            }
            Ok(None) => Ok(Vec::new()),
            Err(e) => {
                self.stats.corrupt += 1;
                Err(DecodeError::Corrupt { bytes: unit.len(), detail: e.to_string() })
            }
        }
    }

    fn flush(&mut self, want: &mut WantPicture<'_>) -> Result<Vec<DecodedPicture>, DecodeError> {
        let frames =
            self.decoder.flush_remaining().map_err(|e| DecodeError::Corrupt { bytes: 0, detail: e.to_string() })?;
        self.stats.frames += frames.len() as u64;
        frames
            .iter()
            .map(|yuv| {
                let frame = if want(u64::MAX, luma(yuv)) { Some(copy(yuv)?) } else { None };
                Ok(DecodedPicture { tag: u64::MAX, frame, damaged: false })
            })
            .collect()
    }

    fn set_keyframes_only(&mut self, on: bool) {
        self.gate.set_keyframes_only(on);
    }

    fn resync(&mut self) {
        self.gate.close();
    }

    fn stats(&self) -> DecodeStats {
        self.stats
    }
}

fn luma<'a>(yuv: &'a DecodedYUV<'_>) -> LumaView<'a> {
    let (width, height) = yuv.dimensions();
    LumaView { width: width as u32, height: height as u32, stride: yuv.strides().0, data: yuv.y() }
}

fn copy(yuv: &DecodedYUV<'_>) -> Result<YuvFrame, DecodeError> {
    let (width, height) = yuv.dimensions();
    let (sy, su, sv) = yuv.strides();
    YuvFrame::from_planes(width, height, [yuv.y(), yuv.u(), yuv.v()], [sy, su, sv]).map_err(DecodeError::Picture)
}
