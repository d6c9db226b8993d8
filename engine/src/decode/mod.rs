//! Video decoding behind one trait, with two backends: openh264 (bundled, no system library, H.264
//! only) and libavcodec (Debian's FFmpeg through `ffmpeg-next`: faster, and H.265). Decoders hand out
//! pictures in YUV 4:2:0 — and only the pictures the caller wants, so a camera analysed at 5 of its
//! 10 fps never copies out the other 5, and a sample the motion gate finds still (it reads the
//! decoder's own luma plane) is not copied either — tagged with the access unit they came from (with
//! B-frames a picture leaves the decoder after later units went in).
//!
//! Nothing is decoded before the first keyframe, nor after a loss until the next one: a decoder fed
//! P-frames without their references shows smeared pictures.

pub mod libav;
pub mod openh264;

use serde::{Deserialize, Serialize};

use crate::frame::{FrameError, LumaView, YuvFrame};

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("could not create the {backend} decoder: {detail}")]
    Init { backend: &'static str, detail: String },
    #[error("corrupt video data ({bytes} bytes): {detail}")]
    Corrupt { bytes: usize, detail: String },
    #[error("a decoded picture cannot be used")]
    Picture(#[source] FrameError),
    #[error("the decoder produced pixel format {0}, not 8-bit YUV 4:2:0")]
    PixelFormat(String),
}

/// Which decoder implementation to run (`streaming.decoder`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum DecoderBackend {
    /// FFmpeg's libavcodec (H.264 and H.265): ~1.5–2× faster than openh264 on Main/High profile.
    #[default]
    Libav,
    /// Cisco's openh264, compiled into the binary (H.264 only).
    Openh264,
}

impl DecoderBackend {
    /// The backend that decodes `codec` when this one is configured: openh264 takes H.264 only, so
    /// H.265 goes to libavcodec whatever the setting.
    pub fn for_codec(self, codec: Codec) -> DecoderBackend {
        match (self, codec) {
            (DecoderBackend::Openh264, Codec::H265) => DecoderBackend::Libav,
            (backend, _) => backend,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DecoderBackend::Libav => "libav",
            DecoderBackend::Openh264 => "openh264",
        }
    }
}

impl std::str::FromStr for DecoderBackend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "libav" => Ok(DecoderBackend::Libav),
            "openh264" => Ok(DecoderBackend::Openh264),
            other => Err(format!("unknown decoder {other:?} (expected libav or openh264)")),
        }
    }
}

/// The video codecs a stream may carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    #[default]
    H264,
    H265,
}

impl Codec {
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }
}

/// Counters a caller exports as metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    pub access_units: u64,
    pub frames: u64,
    pub skipped_before_keyframe: u64,
    /// Access units not fed because the decoder was asked for keyframes only.
    pub skipped_non_key: u64,
    pub corrupt: u64,
}

/// Asked for each picture leaving the decoder, with its tag and its luma plane (still inside the
/// decoder): whether to copy the picture out.
pub type WantPicture<'w> = dyn FnMut(u64, LumaView<'_>) -> bool + 'w;

/// A picture that left the decoder: `tag` is the one given with its access unit; `frame` holds the
/// picture when the caller wanted it.
#[derive(Debug)]
pub struct DecodedPicture {
    pub tag: u64,
    pub frame: Option<YuvFrame>,
    /// The decoder concealed errors in it (a slice was missing or broken): the picture is smeared,
    /// and so will be those that refer to it until the next keyframe.
    pub damaged: bool,
}

pub trait VideoDecoder: Send {
    fn backend(&self) -> DecoderBackend;

    /// Decodes one access unit (Annex-B, start codes included). Returns the pictures that left the
    /// decoder, asking `want` for each whether to copy it out.
    fn decode(
        &mut self,
        unit: &[u8],
        is_keyframe: bool,
        tag: u64,
        want: &mut WantPicture<'_>,
    ) -> Result<Vec<DecodedPicture>, DecodeError>;

    /// Pictures still held at the end of a stream.
    fn flush(&mut self, want: &mut WantPicture<'_>) -> Result<Vec<DecodedPicture>, DecodeError>;

    /// Something before the next access unit was lost or could not be decoded: nothing more is fed
    /// until the next keyframe.
    fn resync(&mut self);

    /// Keyframes only: every other access unit is skipped unread, and each keyframe's picture leaves
    /// the decoder with it (not after the pictures that would have followed, as with B-frames). About
    /// one picture per GOP, for a stream only looked at now and then (a camera's main stream, where
    /// the faces are found on its substream).
    fn set_keyframes_only(&mut self, on: bool);

    fn stats(&self) -> DecodeStats;
}

/// A decoder of `codec` with `backend`.
pub fn open(backend: DecoderBackend, codec: Codec) -> Result<Box<dyn VideoDecoder>, DecodeError> {
    Ok(match (backend, codec) {
        (DecoderBackend::Openh264, Codec::H264) => Box::new(openh264::OpenH264Decoder::new()?),
        (DecoderBackend::Openh264, Codec::H265) => {
            return Err(DecodeError::Init { backend: "openh264", detail: "openh264 decodes H.264 only".into() })
        }
        (DecoderBackend::Libav, codec) => Box::new(libav::LibavDecoder::new(codec)?),
    })
}

/// The keyframe gate every backend keeps: closed at the start and after `resync`, opened by a keyframe.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeyframeGate {
    open: bool,
    keyframes_only: bool,
}

impl KeyframeGate {
    pub(crate) fn keyframes_only(&self) -> bool {
        self.keyframes_only
    }

    /// Leaving keyframes-only waits for the next keyframe: the pictures between were never decoded,
    /// so the ones after them could not be.
    pub(crate) fn set_keyframes_only(&mut self, on: bool) {
        if self.keyframes_only && !on {
            self.open = false;
        }
        self.keyframes_only = on;
    }

    /// Whether this access unit may be fed to the decoder.
    pub(crate) fn admit(&mut self, is_keyframe: bool, stats: &mut DecodeStats) -> bool {
        stats.access_units += 1;
        if !self.open && !is_keyframe {
            stats.skipped_before_keyframe += 1;
            return false;
        }
        if self.keyframes_only && !is_keyframe {
            stats.skipped_non_key += 1;
            return false;
        }
        self.open = true;
        true
    }

    pub(crate) fn close(&mut self) {
        self.open = false;
    }
}
