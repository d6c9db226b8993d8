//! When a picture was captured, on a clock a camera's streams share, so that a picture of its
//! substream can be paired with the main-stream picture nearest in time.
//!
//! - RTSP: each stream's RTCP sender reports tie its RTP timestamps to the camera's wall clock (NTP);
//!   a camera stamps its main stream and substream from the same clock, so their capture times compare
//!   even though their RTP timestamps start at random values.
//! - Files: the position in the clip (presentation time, or index ÷ rate for raw files), counted on
//!   across loops: two renditions of one clip line up by content.

/// Microseconds on a clock the streams of one camera share (see the module's notes). Not comparable
/// between cameras, nor between an RTSP and a file stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaptureTime(pub i64);

impl CaptureTime {
    pub fn from_secs(secs: f64) -> CaptureTime {
        CaptureTime((secs * 1e6).round() as i64)
    }

    pub fn secs(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// `self − earlier` in seconds (negative when `earlier` is later).
    pub fn secs_since(self, earlier: CaptureTime) -> f64 {
        (self.0 - earlier.0) as f64 / 1e6
    }
}

/// Seconds since the Unix epoch of a 64-bit NTP timestamp (32.32 fixed point, epoch 1900).
pub fn ntp_unix_secs(ntp: u64) -> f64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800 << 32;
    let since = ntp.wrapping_sub(NTP_UNIX_OFFSET);
    (since >> 32) as f64 + (since & 0xffff_ffff) as f64 / 4_294_967_296.0
}

/// Maps a stream's extended RTP timestamps to capture times by its latest RTCP sender report.
#[derive(Clone, Copy, Debug, Default)]
pub struct RtcpClock {
    /// The latest report: its RTP timestamp (on the frames' extended timeline) and its NTP time.
    report: Option<(i64, f64)>,
}

impl RtcpClock {
    /// A sender report: `rtp` (extended, as the frames' timestamps) was captured at `ntp`.
    pub fn sender_report(&mut self, rtp: i64, ntp: u64) {
        self.report = Some((rtp, ntp_unix_secs(ntp)));
    }

    /// When the frame stamped `rtp` (extended) was captured; `None` before the first report.
    pub fn capture(&self, rtp: i64, clock_rate: u32) -> Option<CaptureTime> {
        let (at_rtp, at_secs) = self.report?;
        if clock_rate == 0 {
            return None;
        }
        Some(CaptureTime::from_secs(at_secs + (rtp - at_rtp) as f64 / clock_rate as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_is_read_as_unix_seconds() {
        let ntp = ((2_208_988_800u64 + 1_700_000_000) << 32) | (1u64 << 31);
        assert_eq!(ntp_unix_secs(ntp), 1_700_000_000.5);
    }

    #[test]
    fn frames_are_placed_from_the_latest_report_at_90_khz() {
        let mut clock = RtcpClock::default();
        assert_eq!(clock.capture(1000, 90_000), None, "no report yet");
        let ntp = (2_208_988_800u64 + 100) << 32;
        clock.sender_report(90_000, ntp);
        assert_eq!(clock.capture(90_000, 90_000), Some(CaptureTime::from_secs(100.0)));
        assert_eq!(clock.capture(99_000, 90_000), Some(CaptureTime::from_secs(100.1)));
        // frames before the report (B-frames, or the report came late) lie before it
        assert_eq!(clock.capture(81_000, 90_000), Some(CaptureTime::from_secs(99.9)));
        // a later report moves the mapping (camera clock drift is followed)
        clock.sender_report(180_000, (2_208_988_800u64 + 101) << 32 | (1u64 << 30));
        assert_eq!(clock.capture(180_000, 90_000), Some(CaptureTime::from_secs(101.25)));
    }

    #[test]
    fn two_streams_with_different_rtp_origins_agree_on_capture_time() {
        let (mut main, mut sub) = (RtcpClock::default(), RtcpClock::default());
        let ntp = (2_208_988_800u64 + 5_000) << 32;
        main.sender_report(3_000_000_000, ntp);
        sub.sender_report(12_345, ntp);
        let m = main.capture(3_000_000_000 + 45_000, 90_000).unwrap();
        let s = sub.capture(12_345 + 45_000, 90_000).unwrap();
        assert_eq!(m, s);
        assert_eq!(m.secs_since(CaptureTime::from_secs(5_000.0)), 0.5);
    }
}
