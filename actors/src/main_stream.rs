//! The main stream of a camera that detects on its substream: its keyframes, decoded alone when a
//! face of the camera may need them, kept as the pictures faces are cropped from; and the mode the
//! pair runs in when one of its streams fails.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use panoptes_engine::frame::YuvFrame;
use panoptes_engine::source::clock::CaptureTime;

/// How a camera's streams are used now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamMode {
    /// One stream, decoded and analysed.
    #[default]
    Single,
    /// Detection and tracking on the substream; faces cropped from the main stream's keyframes.
    Paired,
    /// The main stream is down (or silent): the camera runs on its substream alone.
    DetectOnly,
    /// The substream is down: the main stream is decoded and analysed in its place, as a camera
    /// with one stream (load shedding applies as usual).
    MainOnly,
    /// The main stream does not show the substream's view (another aspect ratio): it is ignored.
    Mismatch,
}

impl StreamMode {
    fn code(self) -> u8 {
        self as u8
    }

    fn of(code: u8) -> StreamMode {
        match code {
            1 => StreamMode::Paired,
            2 => StreamMode::DetectOnly,
            3 => StreamMode::MainOnly,
            4 => StreamMode::Mismatch,
            _ => StreamMode::Single,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Single => "single",
            StreamMode::Paired => "paired",
            StreamMode::DetectOnly => "detect_only",
            StreamMode::MainOnly => "main_only",
            StreamMode::Mismatch => "mismatch",
        }
    }
}

/// What relates the two streams' pictures in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// RTCP sender reports (the camera's clock).
    Rtcp,
    /// Presentation times (file cameras: the position in the clip).
    Pts,
    /// Arrival times: a stream sent no sender report yet (network and encoder delays differ between
    /// streams, so a face may be placed less exactly; the embedder's re-detection absorbs it).
    Arrival,
}

/// A decoded main-stream keyframe.
#[derive(Clone)]
pub struct MainPicture {
    /// Counts the camera's main pictures: a track embeds each at most once.
    pub seq: u64,
    pub capture: CaptureTime,
    pub frame: Arc<YuvFrame>,
}

/// Main pictures kept: the newest keyframe and the one before (a face seen now may have been hidden
/// at the newest). At 1080p each is 3.1 MB.
const KEPT: usize = 2;

/// The main-stream side of a camera's feed, shared by its decoder and the worker analysing it.
#[derive(Default)]
pub struct MainPictures {
    pictures: Mutex<VecDeque<MainPicture>>,
    mode: AtomicU8,
    /// Set by the worker while the camera has tracks: only then are main keyframes decoded.
    wanted: std::sync::atomic::AtomicBool,
    /// Faces of the camera embedded from its main pictures (counted by the worker).
    embedded: std::sync::atomic::AtomicU64,
}

impl MainPictures {
    pub fn put(&self, picture: MainPicture) {
        let mut p = self.pictures.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() == KEPT {
            p.pop_front();
        }
        p.push_back(picture);
    }

    pub fn clear(&self) {
        self.pictures.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The newest picture captured at most `max_age_secs` before `at` (or up to `max_ahead_secs`
    /// after it: the main stream may arrive ahead of the substream).
    pub fn newest_near(&self, at: CaptureTime, max_age_secs: f64, max_ahead_secs: f64) -> Option<MainPicture> {
        let p = self.pictures.lock().unwrap_or_else(|e| e.into_inner());
        p.iter()
            .rev()
            .find(|m| {
                let age = at.secs_since(m.capture);
                age <= max_age_secs && -age <= max_ahead_secs
            })
            .cloned()
    }

    pub fn mode(&self) -> StreamMode {
        StreamMode::of(self.mode.load(Ordering::Relaxed))
    }

    pub(crate) fn set_mode(&self, mode: StreamMode) {
        self.mode.store(mode.code(), Ordering::Relaxed);
    }

    pub fn set_wanted(&self, wanted: bool) {
        self.wanted.store(wanted, Ordering::Relaxed);
    }

    pub(crate) fn count_embedded(&self) {
        self.embedded.fetch_add(1, Ordering::Relaxed);
    }

    pub fn embedded(&self) -> u64 {
        self.embedded.load(Ordering::Relaxed)
    }

    pub(crate) fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(seq: u64, secs: f64) -> MainPicture {
        MainPicture {
            seq,
            capture: CaptureTime::from_secs(secs),
            frame: Arc::new(YuvFrame::from_rgb(&image::RgbImage::new(16, 16))),
        }
    }

    #[test]
    fn the_newest_picture_near_a_moment_is_found_and_old_ones_age_out() {
        let main = MainPictures::default();
        main.put(picture(1, 10.0));
        main.put(picture(2, 12.0));
        main.put(picture(3, 14.0));
        let seq = |m: Option<MainPicture>| m.map(|m| m.seq);
        assert_eq!(seq(main.newest_near(CaptureTime::from_secs(14.5), 2.5, 0.5)), Some(3));
        assert_eq!(seq(main.newest_near(CaptureTime::from_secs(13.0), 2.5, 0.5)), Some(2), "14.0 is too far ahead");
        assert_eq!(seq(main.newest_near(CaptureTime::from_secs(11.0), 2.5, 0.5)), None, "10.0 was dropped");
        assert_eq!(seq(main.newest_near(CaptureTime::from_secs(20.0), 2.5, 0.5)), None, "all too old");
    }
}
