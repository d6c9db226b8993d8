//! A file source: plays a video file as a camera would stream it — any container libavformat reads
//! (MP4, MKV, MOV, MPEG-TS) or a raw Annex-B H.264/H.265 file — in real time, looping at the end
//! unless told not to. Containers play at their own timestamps; raw files carry no timing and play
//! at a given rate. The file is read a few packets at a time on the blocking pool, so a camera holds
//! a few packets however long the file, and a slow disk never holds up the thread other cameras'
//! network I/O runs on. A frame delivered more than a frame interval after it was due is counted, and the
//! schedule then resumes from there: like a camera, the file never bursts to catch up.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ffmpeg_next as ffmpeg;
use tokio::time::Instant;

use super::annexb::AccessUnit;
use super::clock::CaptureTime;
use super::length_prefixed::LengthPrefixed;
use super::{h265, SourceError};
use crate::decode::Codec;

/// Units read in one trip to the blocking pool (a few hundred kB at most at camera bitrates).
const READ_AHEAD: usize = 8;

/// What a video file holds, as far as playing it goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileInfo {
    pub codec: Codec,
    /// Pictures per second it plays at.
    pub fps: f32,
    /// Raw Annex-B (no timing of its own: plays at the rate it was given).
    pub raw: bool,
}

/// One pass through the file: the open demuxer and how to turn its packets into access units.
struct Demuxer {
    input: ffmpeg::format::context::Input,
    stream: usize,
    time_base: f64,
    codec: Codec,
    raw: bool,
    fps: f32,
    rewrite: Option<LengthPrefixed>,
    h265_references: h265::ReferenceTracker,
}

/// Why a file cannot be played.
enum FileError {
    /// Video in a codec the decoders do not take (what was found).
    Unsupported(String),
    Other(String),
}

impl From<String> for FileError {
    fn from(detail: String) -> Self {
        FileError::Other(detail)
    }
}

impl From<ffmpeg::Error> for FileError {
    fn from(e: ffmpeg::Error) -> Self {
        FileError::Other(e.to_string())
    }
}

/// A unit read from the file, with its time in the file (seconds; `None`: untimed).
struct Timed {
    unit: AccessUnit,
    at: Option<f64>,
}

impl Demuxer {
    fn open(path: &Path, raw_fps: f32) -> Result<Demuxer, FileError> {
        crate::decode::libav::init();
        let input = ffmpeg::format::input(path)?;
        let video = input.streams().best(ffmpeg::media::Type::Video).ok_or_else(|| {
            let kinds: Vec<String> = input.streams().map(|s| format!("{:?}", s.parameters().medium())).collect();
            format!("no video stream (streams: {})", if kinds.is_empty() { "none".into() } else { kinds.join(", ") })
        })?;
        let parameters = video.parameters();
        let codec = match parameters.id() {
            ffmpeg::codec::Id::H264 => Codec::H264,
            ffmpeg::codec::Id::HEVC => Codec::H265,
            other => return Err(FileError::Unsupported(format!("the file holds {} video", other.name()))),
        };
        // SAFETY: the parameters belong to the open input; extradata is `extradata_size` bytes or null.
        let extradata = unsafe {
            let p = parameters.as_ptr();
            match (*p).extradata.is_null() || (*p).extradata_size <= 0 {
                true => &[][..],
                false => std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize),
            }
        };
        let rewrite = LengthPrefixed::from_extradata(codec, extradata).map_err(|e| format!("its {e}"))?;
        let format = input.format().name().to_string();
        let raw = matches!(format.as_str(), "h264" | "hevc");
        let time_base = f64::from(video.time_base());
        let rate = f64::from(video.avg_frame_rate());
        let fps = match raw || !(rate.is_finite() && rate > 0.0 && rate <= 240.0) {
            true => raw_fps,
            false => rate as f32,
        };
        let stream = video.index();
        Ok(Demuxer {
            input,
            stream,
            time_base,
            codec,
            raw,
            fps,
            rewrite,
            h265_references: h265::ReferenceTracker::default(),
        })
    }

    fn info(&self) -> FileInfo {
        FileInfo { codec: self.codec, fps: self.fps, raw: self.raw }
    }

    /// The next access unit of the video stream; `None` at the end of the file.
    fn next(&mut self) -> Result<Option<Timed>, FileError> {
        loop {
            // A new packet each time: av_read_frame does not release the one it is given, so reusing
            // one would keep every packet of the file (its buffer is freed when the packet drops).
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            if packet.stream() != self.stream {
                continue;
            }
            let Some(data) = packet.data() else { continue };
            let keyframe = packet.is_key();
            let data = match &self.rewrite {
                Some(r) => r.to_annexb(data, keyframe).map_err(|e| format!("a damaged sample: {e}"))?,
                None => data.to_vec(),
            };
            let at = match self.raw {
                true => None,
                false => packet.dts().or(packet.pts()).map(|t| t as f64 * self.time_base),
            };
            let unit = match self.codec {
                Codec::H264 => AccessUnit::new(data, keyframe),
                Codec::H265 => {
                    let is_reference = self.h265_references.is_reference(&data);
                    AccessUnit::of(Codec::H265, data, keyframe, is_reference)
                }
            };
            return Ok(Some(Timed { unit, at }));
        }
    }
}

pub struct FileSource {
    path: PathBuf,
    name: String,
    raw_fps: f32,
    looping: bool,
    /// Taken while a read runs on the blocking pool.
    demuxer: Option<Demuxer>,
    info: FileInfo,
    pacing: Pacing,
    /// Units read but not yet due, and whether the file's end came after them.
    ahead: VecDeque<Timed>,
    at_end: bool,
    /// Units delivered in this pass (an empty pass means the file holds no video we can read).
    units_in_pass: u64,
    late: u64,
}

/// When each unit is due: from its time in the file (or its index, for raw files), one pass after
/// another, shifted whenever the reader fell behind.
struct Pacing {
    period: Duration,
    origin: Instant,
    /// The first unit's time in this pass, and the latest unit's offset from it.
    first_at: Option<f64>,
    offset: Duration,
    /// The length of the passes played before this one: the clip position of a unit is
    /// `played + offset`, its capture time (two renditions of one clip line up by it).
    played: Duration,
}

impl Pacing {
    fn new(fps: f32) -> Pacing {
        Pacing {
            period: Duration::from_secs_f32(1.0 / fps),
            origin: Instant::now(),
            first_at: None,
            offset: Duration::ZERO,
            played: Duration::ZERO,
        }
    }

    /// The due time of the next unit (`at`: its time in the file). Timestamps that go backwards or
    /// jump ahead by more than a few seconds (a damaged file) count as one frame interval.
    fn due(&mut self, at: Option<f64>, index_in_pass: u64) -> Instant {
        let offset = match (at, self.first_at) {
            (Some(t), None) => {
                self.first_at = Some(t);
                Duration::ZERO
            }
            (Some(t), Some(first)) => {
                let o = Duration::try_from_secs_f64(t - first).unwrap_or(Duration::ZERO);
                if o < self.offset || o > self.offset + Duration::from_secs(5) {
                    self.offset + self.period
                } else {
                    o
                }
            }
            (None, _) => self.period * index_in_pass as u32,
        };
        self.offset = offset;
        self.origin + offset
    }

    /// A new pass begins one frame interval after the last unit of this one.
    fn next_pass(&mut self) {
        self.origin += self.offset + self.period;
        self.played += self.offset + self.period;
        self.first_at = None;
        self.offset = Duration::ZERO;
    }
}

impl FileSource {
    /// Opens `path`; a raw Annex-B file plays at `raw_fps`, a container at its own rate.
    pub async fn open(path: &Path, raw_fps: f32, looping: bool) -> Result<FileSource, SourceError> {
        let name = path.display().to_string();
        if !(raw_fps.is_finite() && raw_fps > 0.0 && raw_fps <= 240.0) {
            return Err(SourceError::File { path: name, detail: format!("frame rate {raw_fps} outside 0..=240") });
        }
        let demuxer = open_blocking(path.to_path_buf(), raw_fps).await.map_err(|e| error(&name, e))?;
        let info = demuxer.info();
        Ok(FileSource {
            path: path.to_path_buf(),
            name,
            raw_fps,
            looping,
            demuxer: Some(demuxer),
            info,
            pacing: Pacing::new(info.fps),
            ahead: VecDeque::new(),
            at_end: false,
            units_in_pass: 0,
            late: 0,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn info(&self) -> FileInfo {
        self.info
    }

    /// Frames delivered more than one frame interval after they were due (the reader fell behind).
    pub fn late_frames(&self) -> u64 {
        self.late
    }

    /// The next access unit at its due time; `Ok(None)` at the end of a non-looping file.
    pub async fn next_access_unit(&mut self) -> Result<Option<AccessUnit>, SourceError> {
        let Some(timed) = self.read_unit().await? else { return Ok(None) };
        let due = self.pacing.due(timed.at, self.units_in_pass - 1);
        let now = Instant::now();
        if now > due + self.pacing.period {
            // Behind: deliver at once, count it, and resume the schedule from here.
            self.late += 1;
            self.pacing.origin += now - due;
        } else {
            tokio::time::sleep_until(due).await;
        }
        let position = self.pacing.played + self.pacing.offset;
        Ok(Some(timed.unit.captured_at(Some(CaptureTime(position.as_micros() as i64)))))
    }

    /// Reads through the whole file once, as fast as it goes, without decoding: what it holds and
    /// how long one pass plays.
    pub async fn measure(path: &Path, raw_fps: f32) -> Result<(FileInfo, Duration), SourceError> {
        let name = path.display().to_string();
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut demuxer = Demuxer::open(&path, raw_fps)?;
            let mut pacing = Pacing::new(demuxer.fps);
            let mut units = 0u64;
            while let Some(timed) = demuxer.next()? {
                pacing.due(timed.at, units);
                units += 1;
            }
            if units == 0 {
                return Err(FileError::Other("no video access unit in the file".into()));
            }
            Ok((demuxer.info(), pacing.offset + pacing.period))
        })
        .await
        .map_err(|e| FileError::Other(e.to_string()))
        .and_then(|r| r)
        .map_err(|e| error(&name, e))
    }

    async fn read_unit(&mut self) -> Result<Option<Timed>, SourceError> {
        loop {
            if let Some(timed) = self.ahead.pop_front() {
                self.units_in_pass += 1;
                return Ok(Some(timed));
            }
            if self.at_end {
                if self.units_in_pass == 0 {
                    return Err(error(&self.name, FileError::Other("no video access unit in the file".into())));
                }
                if !self.looping {
                    return Ok(None);
                }
                self.restart().await?;
                self.pacing.next_pass();
                continue;
            }
            let Some(mut demuxer) = self.demuxer.take() else {
                // A read was cancelled half-way (the camera stopped): this pass is over.
                self.restart().await?;
                continue;
            };
            // Several units per trip to the blocking pool: each trip costs two thread switches.
            let (demuxer, read) = tokio::task::spawn_blocking(move || {
                let mut units = Vec::with_capacity(READ_AHEAD);
                while units.len() < READ_AHEAD {
                    match demuxer.next() {
                        Ok(Some(timed)) => units.push(timed),
                        Ok(None) => return (demuxer, Ok((units, true))),
                        Err(e) => return (demuxer, Err(e)),
                    }
                }
                (demuxer, Ok((units, false)))
            })
            .await
            .map_err(|e| error(&self.name, FileError::Other(e.to_string())))?;
            self.demuxer = Some(demuxer);
            let (units, at_end) = read.map_err(|e| error(&self.name, e))?;
            self.ahead.extend(units);
            self.at_end = at_end;
        }
    }

    async fn restart(&mut self) -> Result<(), SourceError> {
        let demuxer = open_blocking(self.path.clone(), self.raw_fps).await.map_err(|e| error(&self.name, e))?;
        self.demuxer = Some(demuxer);
        self.ahead.clear();
        self.at_end = false;
        self.units_in_pass = 0;
        Ok(())
    }
}

async fn open_blocking(path: PathBuf, raw_fps: f32) -> Result<Demuxer, FileError> {
    tokio::task::spawn_blocking(move || Demuxer::open(&path, raw_fps))
        .await
        .map_err(|e| FileError::Other(e.to_string()))?
}

fn error(name: &str, e: FileError) -> SourceError {
    match e {
        FileError::Unsupported(found) => SourceError::UnsupportedCodec { camera: format!("video file {name}"), found },
        FileError::Other(detail) => SourceError::File { path: name.to_string(), detail },
    }
}
