//! The libavcodec backend: Debian's FFmpeg through `ffmpeg-next`, one thread per decoder (cameras are
//! spread over decoder threads instead). Pictures keep the tag of their access unit as the packet's
//! presentation timestamp, so with B-frames each picture is matched to the unit it came from.

use std::sync::Once;

use ffmpeg_next as ffmpeg;

use super::{Codec, DecodeError, DecodeStats, DecodedPicture, DecoderBackend, KeyframeGate, VideoDecoder, WantPicture};
use crate::frame::LumaView;
use crate::frame::YuvFrame;

pub struct LibavDecoder {
    decoder: ffmpeg::decoder::Video,
    frame: ffmpeg::frame::Video,
    gate: KeyframeGate,
    stats: DecodeStats,
}

// The decoder context is used by one thread at a time (the decoder actor that owns it).
unsafe impl Send for LibavDecoder {}

static INIT: Once = Once::new();

/// Once per process, before any libavcodec or libavformat call.
pub(crate) fn init() {
    INIT.call_once(|| {
        let _ = ffmpeg::init();
        // FFmpeg logs every concealed error to stderr; the engine counts and logs them itself.
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

impl LibavDecoder {
    pub fn new(codec: Codec) -> Result<Self, DecodeError> {
        init();
        let init = |detail: String| DecodeError::Init { backend: "libav", detail };
        let id = match codec {
            Codec::H264 => ffmpeg::codec::Id::H264,
            Codec::H265 => ffmpeg::codec::Id::HEVC,
        };
        let found =
            ffmpeg::decoder::find(id).ok_or_else(|| init(format!("FFmpeg has no {} decoder", codec.as_str())))?;
        let mut context = ffmpeg::codec::Context::new_with_codec(found);
        context.set_threading(ffmpeg::threading::Config {
            kind: ffmpeg::threading::Type::None,
            count: 1,
            ..Default::default()
        });
        let decoder = context.decoder().video().map_err(|e| init(e.to_string()))?;
        Ok(Self {
            decoder,
            frame: ffmpeg::frame::Video::empty(),
            gate: KeyframeGate::default(),
            stats: DecodeStats::default(),
        })
    }

    /// Takes every picture the decoder has ready.
    fn drain(&mut self, want: &mut WantPicture<'_>) -> Result<Vec<DecodedPicture>, DecodeError> {
        let mut out = Vec::new();
        while self.decoder.receive_frame(&mut self.frame).is_ok() {
            self.stats.frames += 1;
            let tag = self.frame.pts().map_or(u64::MAX, |p| p as u64);
            // libavcodec conceals broken slices instead of failing; it says so on the frame.
            // SAFETY: the frame was just filled by the decoder; these are plain integer fields.
            let damaged = unsafe {
                let f = self.frame.as_ptr();
                (*f).decode_error_flags != 0 || (*f).flags & ffmpeg::ffi::AV_FRAME_FLAG_CORRUPT != 0
            };
            if damaged {
                self.stats.corrupt += 1;
            }
            let luma = LumaView {
                width: self.frame.width(),
                height: self.frame.height(),
                stride: self.frame.stride(0),
                data: self.frame.data(0),
            };
            let frame = if !damaged && want(tag, luma) { Some(copy(&self.frame)?) } else { None };
            out.push(DecodedPicture { tag, frame, damaged });
        }
        Ok(out)
    }
}

impl VideoDecoder for LibavDecoder {
    fn backend(&self) -> DecoderBackend {
        DecoderBackend::Libav
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
        let mut packet = ffmpeg::Packet::copy(unit);
        packet.set_pts(Some(tag as i64));
        let sent = self.decoder.send_packet(&packet);
        // The pictures that are ready come out either way (a full decoder refuses input until drained).
        let mut pictures = self.drain(want)?;
        if let Err(e) = sent {
            if is_again(&e) {
                self.decoder.send_packet(&packet).map_err(|e| self.corrupt(unit, e))?;
                pictures.extend(self.drain(want)?);
            } else {
                return Err(self.corrupt(unit, e));
            }
        }
        if self.gate.keyframes_only() {
            // Nothing follows to push the keyframe's picture out of the reorder buffer: drain it now.
            pictures.extend(self.flush(want)?);
        }
        Ok(pictures)
    }

    fn flush(&mut self, want: &mut WantPicture<'_>) -> Result<Vec<DecodedPicture>, DecodeError> {
        let _ = self.decoder.send_eof();
        let pictures = self.drain(want)?;
        self.decoder.flush();
        Ok(pictures)
    }

    fn set_keyframes_only(&mut self, on: bool) {
        self.gate.set_keyframes_only(on);
    }

    fn resync(&mut self) {
        self.gate.close();
        // Drop the references the damaged pictures would be decoded from.
        self.decoder.flush();
    }

    fn stats(&self) -> DecodeStats {
        self.stats
    }
}

impl LibavDecoder {
    fn corrupt(&mut self, unit: &[u8], e: ffmpeg::Error) -> DecodeError {
        self.stats.corrupt += 1;
        DecodeError::Corrupt { bytes: unit.len(), detail: e.to_string() }
    }
}

fn is_again(e: &ffmpeg::Error) -> bool {
    matches!(e, ffmpeg::Error::Other { errno } if *errno == ffmpeg::util::error::EAGAIN)
}

fn copy(f: &ffmpeg::frame::Video) -> Result<YuvFrame, DecodeError> {
    use ffmpeg::format::Pixel;
    match f.format() {
        Pixel::YUV420P | Pixel::YUVJ420P => {}
        other => return Err(DecodeError::PixelFormat(format!("{other:?}"))),
    }
    let (w, h) = (f.width() as usize, f.height() as usize);
    YuvFrame::from_planes(w, h, [f.data(0), f.data(1), f.data(2)], [f.stride(0), f.stride(1), f.stride(2)])
        .map_err(DecodeError::Picture)
}
