//! The camera actor against a real GStreamer RTSP server that is killed and restarted, and against a
//! file source: state, reconnects and frame flow as an operator sees them.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use panoptes_actors::camera::{CameraActor, CameraConfig, CameraState, CameraStatus, GetStatus};
use panoptes_actors::messages::EncodedFrame;

/// Stands in for the decoder: counts frames, with a small bounded mailbox.
struct Counter(Arc<AtomicUsize>);

impl Actor for Counter {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(8);
    }
}

impl Handler<EncodedFrame> for Counter {
    type Result = ();
    fn handle(&mut self, _: EncodedFrame, _: &mut Self::Context) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

async fn wait_for(
    cam: &Addr<CameraActor>,
    what: &str,
    limit: Duration,
    pred: impl Fn(&CameraStatus) -> bool,
) -> CameraStatus {
    common::eventually(what, limit, || async { cam.send(GetStatus).await.expect("camera actor alive") }, pred).await
}

#[actix_web::test]
async fn a_dropped_rtsp_camera_backs_off_and_streams_again_when_the_server_returns() {
    let clip = common::h264_clip(&common::photo("obama.jpg"), 3, &["-profile:v", "baseline", "-g", "10"], "camera");
    let server = common::RtspServer::start(&clip, 10);
    let port = server.port;
    let frames = Arc::new(AtomicUsize::new(0));
    let counter = Counter(frames.clone()).start();
    let mut config = CameraConfig::new(7, format!("rtsp://operator:s3cret@127.0.0.1:{port}/cam1"));
    config.stall_timeout = Duration::from_secs(2);
    let cam = CameraActor::new(config, counter.recipient()).start();

    let s = wait_for(&cam, "streaming", Duration::from_secs(30), |s| {
        s.state == CameraState::Streaming && s.frames_received > 20
    })
    .await;
    assert_eq!(s.reconnects, 0);
    assert!(frames.load(Ordering::SeqCst) > 0);

    drop(server); // the camera goes away mid-stream
    let s =
        wait_for(&cam, "backoff after the server died", Duration::from_secs(30), |s| s.state == CameraState::Backoff)
            .await;
    let err = s.last_error.clone().unwrap_or_default();
    assert!(!err.contains("s3cret") && !err.contains("operator"), "credentials in the error: {err}");

    actix::clock::sleep(Duration::from_secs(5)).await;
    let _server = common::RtspServer::start_on(&clip, 10, port);
    let before = s.frames_received;
    let s = wait_for(&cam, "streaming again", Duration::from_secs(60), |s| {
        s.state == CameraState::Streaming && s.frames_received > before + 10
    })
    .await;
    assert!(s.reconnects >= 1);
}

#[actix_web::test]
async fn a_file_camera_streams_at_its_rate_and_a_missing_file_backs_off_with_the_reason() {
    let clip = common::h264_clip(&common::photo("biden.jpg"), 2, &["-profile:v", "baseline", "-g", "10"], "filecam");
    let frames = Arc::new(AtomicUsize::new(0));
    let counter = Counter(frames.clone()).start();
    let cam = CameraActor::new(CameraConfig::new(1, common::path_str(&clip)), counter.clone().recipient()).start();
    let s =
        wait_for(&cam, "file streaming", Duration::from_secs(20), |s| s.state == CameraState::Streaming && s.fps > 0.0)
            .await;
    // paced like a camera: never faster than its frame rate (no burst through the whole file)
    assert!(s.fps < 15.0, "a 10 fps file measured {} fps", s.fps);

    let missing = CameraActor::new(CameraConfig::new(2, "/nonexistent/clip.h264"), counter.recipient()).start();
    let s = wait_for(&missing, "backoff", Duration::from_secs(10), |s| s.state == CameraState::Backoff).await;
    assert!(s.last_error.unwrap_or_default().contains("/nonexistent/clip.h264"));
    // the healthy camera is unaffected
    let before = cam.send(GetStatus).await.unwrap().frames_received;
    actix::clock::sleep(Duration::from_secs(1)).await;
    assert!(cam.send(GetStatus).await.unwrap().frames_received > before);
}

#[actix_web::test]
async fn an_rtsp_camera_gone_for_a_minute_comes_back_and_the_other_cameras_keep_their_rate() {
    let clip = common::h264_clip(&common::photo("obama.jpg"), 3, &["-profile:v", "baseline", "-g", "10"], "minute");
    let server = common::RtspServer::start(&clip, 10);
    let port = server.port;
    let (rtsp_frames, file_frames) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let rtsp_sink = Counter(rtsp_frames.clone()).start();
    let file_sink = Counter(file_frames.clone()).start();
    let mut config = CameraConfig::new(1, format!("rtsp://127.0.0.1:{port}/cam1"));
    config.stall_timeout = Duration::from_secs(2);
    let cam = CameraActor::new(config, rtsp_sink.recipient()).start();
    let _other = CameraActor::new(CameraConfig::new(2, common::path_str(&clip)), file_sink.recipient()).start();
    wait_for(&cam, "streaming", Duration::from_secs(30), |s| {
        s.state == CameraState::Streaming && s.frames_received > 20
    })
    .await;

    drop(server);
    wait_for(&cam, "backoff", Duration::from_secs(30), |s| s.state == CameraState::Backoff).await;
    let (t0, other0) = (std::time::Instant::now(), file_frames.load(Ordering::SeqCst));
    actix::clock::sleep(Duration::from_secs(60)).await;
    // Meanwhile the file camera delivered at its 10 fps: nothing of the other camera's retries leaks.
    let other_fps = (file_frames.load(Ordering::SeqCst) - other0) as f64 / t0.elapsed().as_secs_f64();
    assert!(other_fps > 8.0, "the other camera dropped to {other_fps:.1} fps");
    let during = cam.send(GetStatus).await.unwrap();
    assert!(during.reconnects >= 3, "retried with backoff during the minute: {during:?}");
    assert!(during.last_error.is_some());

    // Back after a minute: the capped backoff (30 s) brings the camera back without anyone's help.
    let _server = common::RtspServer::start_on(&clip, 10, port);
    let before = during.frames_received;
    wait_for(&cam, "streaming again", Duration::from_secs(60), |s| {
        s.state == CameraState::Streaming && s.frames_received > before + 10
    })
    .await;
}

#[actix_web::test]
async fn garbage_after_play_makes_the_camera_reconnect_while_the_other_cameras_keep_their_rate() {
    use common::scripted_rtsp::{Script, ScriptedRtspServer};
    let clip = common::h264_clip(&common::photo("obama.jpg"), 3, &["-profile:v", "baseline", "-g", "10"], "garbage");
    // The first connection turns to random bytes after 20 access units; later ones are clean.
    let server = ScriptedRtspServer::start(&clip, 10, Script::GarbageAfter { after: 20 });
    let (rtsp_frames, file_frames) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut config = CameraConfig::new(1, server.url());
    config.stall_timeout = Duration::from_secs(2);
    let cam = CameraActor::new(config, Counter(rtsp_frames.clone()).start().recipient()).start();
    let _other = CameraActor::new(
        CameraConfig::new(2, common::path_str(&clip)),
        Counter(file_frames.clone()).start().recipient(),
    )
    .start();
    let (t0, other0) = (std::time::Instant::now(), file_frames.load(Ordering::SeqCst));

    let s = wait_for(&cam, "streaming again after the garbage", Duration::from_secs(40), |s| {
        s.reconnects >= 1 && s.state == CameraState::Streaming && s.frames_received > 40
    })
    .await;
    let error = s.last_error.clone().unwrap_or_default();
    assert!(error.contains("127.0.0.1") && error.contains("RTSP"), "the error names the camera: {s:?}");
    assert!(!error.contains('\n') && error.len() < 400, "a one-line status, not retina's hex dump: {error}");
    assert!(server.connections.load(Ordering::SeqCst) >= 2);
    let other_fps = (file_frames.load(Ordering::SeqCst) - other0) as f64 / t0.elapsed().as_secs_f64();
    assert!(other_fps > 8.0, "the other camera dropped to {other_fps:.1} fps");
}
