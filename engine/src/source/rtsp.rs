//! RTSP cameras through retina: DESCRIBE → SETUP of the first H.264 video stream → PLAY, delivering
//! Annex-B access units with parameter sets before each keyframe (retina's SIMPLE frame format).

use std::time::Duration;

use futures::StreamExt;
use retina::client::{Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport};
use retina::codec::{CodecItem, FrameFormat};
use serde::{Deserialize, Serialize};

use super::annexb::AccessUnit;
use super::camera_url::CameraUrl;
use super::SourceError;

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
    demuxed: Demuxed,
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
        let stream = session
            .streams()
            .iter()
            .position(|s| s.media() == "video" && s.encoding_name().eq_ignore_ascii_case("h264"))
            .ok_or_else(|| SourceError::NoH264 { camera: camera.clone() })?;
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
        Ok(Self { camera, demuxed })
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
                    return Ok(Some(AccessUnit::new(f.into_data(), is_keyframe)));
                }
                Some(Ok(_)) => continue, // audio, RTCP, metadata
            }
        }
    }
}
