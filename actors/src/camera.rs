//! The camera actor: owns one source (RTSP or file), waits for the first keyframe, forwards access
//! units to its consumer with `try_send` (a full consumer mailbox drops the frame and counts it; the
//! camera never blocks), and on any failure — refused, timeout, teardown, or no frame for
//! `stall_timeout` — reconnects after an exponential, jittered backoff. A stream in a codec the
//! decoders cannot take (MJPEG, audio only…) is retried only every few minutes: the camera's own
//! settings must change first, and hammering it would change nothing. A file camera that does not loop
//! finishes at the end of its file. Its state is visible through `GetStatus`. Each camera runs its own
//! task: one camera down never affects another.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use panoptes_engine::source::annexb::AccessUnit;
use panoptes_engine::source::backoff::Backoff;
use panoptes_engine::source::camera_url::redact;
use panoptes_engine::source::file::FileSource;
use panoptes_engine::source::rtsp::{RtspSource, RtspTransport};
use panoptes_engine::source::SourceError;
use serde::Serialize;
use tracing::{info, warn, Instrument};

use crate::messages::{EncodedFrame, StreamRole};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    Connecting,
    Streaming,
    Backoff,
    /// The stream's codec cannot be decoded (the reason is the last error); tried again every
    /// [`UNSUPPORTED_RETRY`].
    Unsupported,
    /// A file camera that does not loop has played its file.
    Finished,
    Stopped,
}

/// How long a camera whose stream cannot be decoded waits before trying again.
pub const UNSUPPORTED_RETRY: Duration = Duration::from_secs(300);

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Streaming => "streaming",
            CameraState::Backoff => "backoff",
            CameraState::Unsupported => "unsupported",
            CameraState::Finished => "finished",
            CameraState::Stopped => "stopped",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CameraStatus {
    pub state: CameraState,
    pub last_error: Option<String>,
    pub reconnects: u64,
    pub frames_received: u64,
    /// Frames dropped because the consumer's mailbox was full.
    pub frames_dropped: u64,
    /// File cameras: frames delivered more than a frame interval late (the source fell behind its
    /// own rate; a live camera would have sent them on time).
    pub frames_late: u64,
    /// Measured over the last few seconds.
    pub fps: f32,
}

#[derive(Clone, Debug)]
pub struct CameraConfig {
    pub id: i64,
    /// rtsp://, rtsps://, or a path to a video file (a container at its own rate, a raw Annex-B
    /// file at `file_fps`).
    pub url: String,
    pub transport: RtspTransport,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub file_fps: f32,
    /// File cameras: start again at the end of the file (otherwise the camera finishes).
    pub looping: bool,
    /// Which of the camera's streams this actor reads.
    pub stream: StreamRole,
    /// A main stream hands on only its keyframes (all that is decoded of it) unless this is set: by
    /// the decoder, when the substream is down and the main stream is analysed in its place.
    pub forward_all: Arc<AtomicBool>,
}

impl CameraConfig {
    pub fn new(id: i64, url: impl Into<String>) -> Self {
        Self {
            id,
            url: url.into(),
            transport: RtspTransport::Tcp,
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            file_fps: 10.0,
            looping: true,
            stream: StreamRole::Single,
            forward_all: Arc::new(AtomicBool::new(false)),
        }
    }
}

#[derive(Message)]
#[rtype(result = "CameraStatus")]
pub struct GetStatus;

/// Stops the camera (its task is aborted; the decoder behind it stops when its last address drops).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct StopCamera;

pub struct CameraActor {
    config: CameraConfig,
    consumer: Recipient<EncodedFrame>,
    status: Arc<Mutex<CameraStatus>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl CameraActor {
    pub fn new(config: CameraConfig, consumer: Recipient<EncodedFrame>) -> Self {
        let status = CameraStatus {
            state: CameraState::Connecting,
            last_error: None,
            reconnects: 0,
            frames_received: 0,
            frames_dropped: 0,
            frames_late: 0,
            fps: 0.0,
        };
        Self { config, consumer, status: Arc::new(Mutex::new(status)), task: None }
    }
}

impl Actor for CameraActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        let span = tracing::info_span!(
            "camera",
            camera_id = self.config.id,
            stream = self.config.stream.as_str(),
            url = %redact(&self.config.url)
        );
        let run = run_camera(self.config.clone(), self.consumer.clone(), self.status.clone()).instrument(span);
        self.task = Some(actix::spawn(run));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        update(&self.status, |s| s.state = CameraState::Stopped);
    }
}

impl Handler<StopCamera> for CameraActor {
    type Result = ();

    fn handle(&mut self, _: StopCamera, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<GetStatus> for CameraActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.status.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

fn update(status: &Mutex<CameraStatus>, f: impl FnOnce(&mut CameraStatus)) {
    f(&mut status.lock().unwrap_or_else(|p| p.into_inner()));
}

enum Source {
    Rtsp(RtspSource),
    // Boxed: a file source holds its read buffer state, several times the size of an RTSP session handle.
    File(Box<FileSource>),
}

impl Source {
    async fn open(c: &CameraConfig) -> Result<Source, SourceError> {
        if c.url.contains("://") {
            Ok(Source::Rtsp(RtspSource::connect(&c.url, c.transport, c.connect_timeout).await?))
        } else {
            Ok(Source::File(Box::new(FileSource::open(&PathBuf::from(&c.url), c.file_fps, c.looping).await?)))
        }
    }

    async fn next(&mut self) -> Result<Option<AccessUnit>, SourceError> {
        match self {
            Source::Rtsp(s) => s.next_access_unit().await,
            Source::File(f) => f.next_access_unit().await,
        }
    }

    fn late_frames(&self) -> u64 {
        match self {
            Source::Rtsp(_) => 0,
            Source::File(f) => f.late_frames(),
        }
    }
}

/// How a stream ended.
enum Ended {
    /// Failed (why): reconnect after the backoff.
    Failed(String),
    /// A file that does not loop reached its end.
    Finished,
}

/// Connect → stream → (failure) → backoff → connect …, until the actor stops and aborts the task.
async fn run_camera(config: CameraConfig, consumer: Recipient<EncodedFrame>, status: Arc<Mutex<CameraStatus>>) {
    let mut backoff = Backoff::new(config.backoff_initial, config.backoff_max, config.id as u64);
    let mut connection = 0u64;
    loop {
        update(&status, |s| s.state = CameraState::Connecting);
        let (error, state, delay) = match Source::open(&config).await {
            Ok(source) => {
                connection += 1;
                match stream(&config, source, &consumer, &status, &mut backoff, connection).await {
                    Ended::Failed(e) => (e, CameraState::Backoff, backoff.next_delay()),
                    Ended::Finished => {
                        info!("the file has played to its end; the camera is finished (it does not loop)");
                        update(&status, |s| {
                            s.state = CameraState::Finished;
                            s.fps = 0.0;
                        });
                        return;
                    }
                }
            }
            Err(e) if e.is_unsupported() => (e.to_string(), CameraState::Unsupported, UNSUPPORTED_RETRY),
            Err(e) => (e.to_string(), CameraState::Backoff, backoff.next_delay()),
        };
        warn!(error = %error, retry_in = ?delay, "camera failed; reconnecting");
        update(&status, |s| {
            s.state = state;
            s.last_error = Some(status_line(&error));
            s.reconnects += 1;
            s.fps = 0.0;
        });
        tokio::time::sleep(delay).await;
    }
}

/// The error as the camera's status shows it: its first line, at most 300 characters. Some errors
/// carry a hex dump of the offending bytes on the following lines (retina's framing errors): the log
/// line keeps it, the status and the API answer stay readable.
fn status_line(error: &str) -> String {
    let first = error.lines().next().unwrap_or("");
    let mut line: String = first.chars().take(300).collect();
    if line.len() < error.trim_end().len() {
        line.push_str(" …");
    }
    line
}

/// Forwards frames until the source fails (or a file ends); returns how it ended.
async fn stream(
    config: &CameraConfig,
    mut source: Source,
    consumer: &Recipient<EncodedFrame>,
    status: &Mutex<CameraStatus>,
    backoff: &mut Backoff,
    connection: u64,
) -> Ended {
    let mut keyframe_seen = false;
    let mut window = (Instant::now(), 0u32);
    let mut references_lost = 0u64;
    // Lateness of earlier connections stays counted.
    let late_before = status.lock().unwrap_or_else(|p| p.into_inner()).frames_late;
    loop {
        let unit = match tokio::time::timeout(config.stall_timeout, source.next()).await {
            Ok(Ok(Some(u))) => u,
            Ok(Ok(None)) if matches!(source, Source::File(_)) => return Ended::Finished,
            Ok(Ok(None)) => return Ended::Failed("the server ended the stream".into()),
            Ok(Err(e)) => return Ended::Failed(e.to_string()),
            Err(_) => return Ended::Failed(format!("no frame for {:?} (stalled)", config.stall_timeout)),
        };
        if !keyframe_seen {
            if !unit.is_keyframe {
                continue;
            }
            keyframe_seen = true;
            backoff.reset();
            info!("streaming");
            update(status, |s| s.state = CameraState::Streaming);
        }
        window.1 += 1;
        let elapsed = window.0.elapsed();
        let fps = if elapsed >= Duration::from_secs(2) {
            let f = window.1 as f32 / elapsed.as_secs_f32();
            window = (Instant::now(), 0);
            Some(f)
        } else {
            None
        };
        // Counted as received (the stream is alive) even when not handed on.
        let hand_on =
            config.stream != StreamRole::Main || unit.is_keyframe || config.forward_all.load(Ordering::Relaxed);
        if !hand_on {
            update(status, |s| {
                s.frames_received += 1;
                if let Some(f) = fps {
                    s.fps = f;
                }
            });
            continue;
        }
        let is_reference = unit.is_reference;
        let frame = EncodedFrame {
            camera_id: config.id,
            unit,
            received_at: Instant::now(),
            captured_at: chrono::Utc::now(),
            references_lost,
            connection,
            stream: config.stream,
        };
        let sent = consumer.try_send(frame);
        if sent.is_err() && is_reference {
            references_lost += 1;
        }
        let late = late_before + source.late_frames();
        update(status, |s| {
            s.frames_late = late;
            s.frames_received += 1;
            if sent.is_err() {
                s.frames_dropped += 1;
            }
            if let Some(f) = fps {
                s.fps = f;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::status_line;

    #[test]
    fn status_lines_keep_the_first_line_and_say_when_they_cut() {
        assert_eq!(status_line("connection refused"), "connection refused");
        assert_eq!(status_line("framing error: byte 9\n0000: e2 8d\n"), "framing error: byte 9 …");
        let long = "x".repeat(400);
        assert_eq!(status_line(&long).chars().count(), 302);
    }
}
