//! RTSP cameras through retina: DESCRIBE → SETUP of the first H.264 or H.265 video stream → PLAY,
//! delivering Annex-B access units with parameter sets before each keyframe (retina's SIMPLE frame
//! format). A camera offering neither (MJPEG, audio only…) is an error naming what it offers.

use std::time::Duration;

use futures::StreamExt;
use retina::client::{Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};
use serde::{Deserialize, Serialize};

use super::annexb::AccessUnit;
use super::camera_url::CameraUrl;
use super::clock::RtcpClock;
use super::{h265, SourceError};
use crate::decode::Codec;

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum RtspTransport {
    /// RTP interleaved on the RTSP connection: works through NAT and firewalls (default).
    #[default]
    Tcp,
    /// RTP over UDP: LAN only (retina has no reorder buffer).
    Udp,
}

impl RtspTransport {
    /// The name used in the API and the `cameras.transport` column.
    pub fn as_str(self) -> &'static str {
        match self {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
        }
    }
}

impl std::str::FromStr for RtspTransport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(RtspTransport::Tcp),
            "udp" => Ok(RtspTransport::Udp),
            other => Err(format!("unknown RTSP transport {other:?} (expected tcp or udp)")),
        }
    }
}

pub struct RtspSource {
    camera: String,
    codec: Codec,
    demuxed: Demuxed,
    h265_references: h265::ReferenceTracker,
    /// Capture times from the stream's RTCP sender reports.
    clock: RtcpClock,
}

impl RtspSource {
    /// Connects and starts playing; each step is bounded by `timeout`.
    pub async fn connect(raw_url: &str, transport: RtspTransport, timeout: Duration) -> Result<Self, SourceError> {
        let camera_url = CameraUrl::parse(raw_url)?;
        let camera = camera_url.url.to_string();
        let err = |stage: &'static str| {
            let camera = camera.clone();
            move |e: retina::Error| SourceError::Rtsp { camera: camera.clone(), stage, detail: e.to_string() }
        };
        let timed = |stage: &'static str| {
            let camera = camera.clone();
            move |_| SourceError::Timeout { camera: camera.clone(), stage, after: timeout }
        };
        let options = SessionOptions::default().creds(camera_url.credentials.clone()).user_agent("panoptes".into());
        let mut session = tokio::time::timeout(timeout, Session::describe(camera_url.url.clone(), options))
            .await
            .map_err(timed("describe"))?
            .map_err(err("describe"))?;
        let codec_of = |s: &retina::client::Stream| match s.media() {
            "video" if s.encoding_name().eq_ignore_ascii_case("h264") => Some(Codec::H264),
            "video" if s.encoding_name().eq_ignore_ascii_case("h265") => Some(Codec::H265),
            _ => None,
        };
        let Some((stream, codec)) = session.streams().iter().enumerate().find_map(|(i, s)| Some((i, codec_of(s)?)))
        else {
            let offered: Vec<String> =
                session.streams().iter().map(|s| format!("{}/{}", s.media(), s.encoding_name())).collect();
            let found = match offered.is_empty() {
                true => "the camera offers no stream".to_string(),
                false => format!("the camera offers {}", offered.join(", ")),
            };
            return Err(SourceError::UnsupportedCodec { camera: camera.clone(), found });
        };
        let transport = match transport {
            RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
            RtspTransport::Udp => Transport::Udp(Default::default()),
        };
        let setup = SetupOptions::default().transport(transport).frame_format(FrameFormat::SIMPLE);
        tokio::time::timeout(timeout, session.setup(stream, setup))
            .await
            .map_err(timed("setup"))?
            .map_err(err("setup"))?;
        let playing = tokio::time::timeout(timeout, session.play(PlayOptions::default()))
            .await
            .map_err(timed("play"))?
            .map_err(err("play"))?;
        let demuxed = playing.demuxed().map_err(err("demux"))?;
        Ok(Self {
            camera,
            codec,
            demuxed,
            h265_references: h265::ReferenceTracker::default(),
            clock: RtcpClock::default(),
        })
    }

    /// The codec of the stream being played.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The camera URL without credentials, for logs.
    pub fn camera(&self) -> &str {
        &self.camera
    }

    /// The next video access unit; `Ok(None)` when the server ended the session.
    pub async fn next_access_unit(&mut self) -> Result<Option<AccessUnit>, SourceError> {
        loop {
            match self.demuxed.next().await {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(SourceError::Rtsp {
                        camera: self.camera.clone(),
                        stage: "stream",
                        detail: e.to_string(),
                    })
                }
                Some(Ok(CodecItem::VideoFrame(f))) => {
                    let is_keyframe = f.is_random_access_point();
                    let stamp = f.timestamp();
                    let capture = self.clock.capture(stamp.timestamp(), stamp.clock_rate().get());
                    let data = f.into_data();
                    let unit = match self.codec {
                        Codec::H264 => AccessUnit::new(data, is_keyframe),
                        Codec::H265 => {
                            let is_reference = self.h265_references.is_reference(&data);
                            AccessUnit::of(Codec::H265, data, is_keyframe, is_reference)
                        }
                    };
                    return Ok(Some(unit.captured_at(capture)));
                }
                Some(Ok(CodecItem::Rtcp(rtcp))) => {
                    // A sender report, placed by retina on the frames' extended RTP timeline.
                    let report = rtcp.pkts().find_map(|p| p.as_sender_report().ok().flatten());
                    if let (Some(rtp), Some(report)) = (rtcp.rtp_timestamp(), report) {
                        self.clock.sender_report(rtp.timestamp(), report.ntp_timestamp().0);
                    }
                }
                Some(Ok(_)) => continue, // audio, metadata
            }
        }
    }
}
