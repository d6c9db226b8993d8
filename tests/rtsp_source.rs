//! The RTSP source against a real GStreamer RTSP server streaming a clip of a real face.

mod common;

use std::time::Duration;

use panoptes_engine::decode::{self, Codec, DecoderBackend};
use panoptes_engine::embed::cosine;
use panoptes_engine::source::rtsp::{RtspSource, RtspTransport};
use panoptes_engine::source::SourceError;

const STEP: Duration = Duration::from_secs(10);

/// Reads access units until `n` frames are decoded (bounded by a generous guard against hangs).
async fn frames(src: &mut RtspSource, n: usize) -> Vec<image::RgbImage> {
    let mut dec = decode::open(DecoderBackend::Openh264, Codec::H264).unwrap();
    let mut out = Vec::new();
    let guard = tokio::time::timeout(Duration::from_secs(30), async {
        let mut tag = 0;
        while out.len() < n {
            let au = src.next_access_unit().await.expect("stream").expect("stream ended early");
            tag += 1;
            if let Ok(pictures) = dec.decode(&au.data, au.is_keyframe, tag, &mut |_, _| true) {
                out.extend(pictures.into_iter().filter_map(|p| p.frame).map(|f| f.to_rgb()));
            }
        }
    });
    guard.await.expect("no frames from the RTSP server within 30 s");
    out
}

#[tokio::test]
async fn tcp_and_udp_deliver_decodable_frames_whose_face_is_recognised() {
    let clip = common::h264_clip(&common::photo("obama2.jpg"), 4, &["-profile:v", "baseline", "-g", "10"], "rtsp");
    let server = common::RtspServer::start(&clip, 10);
    let mut p = common::pipeline();
    let still = p.analyze_bytes(&common::photo_bytes("obama2.jpg")).unwrap().remove(0).embedding;
    for transport in [RtspTransport::Tcp, RtspTransport::Udp] {
        let mut src = RtspSource::connect(&server.url(), transport, STEP).await.expect("connect");
        let got = frames(&mut src, 12).await;
        assert_eq!(got[0].dimensions(), (1280, 720));
        let faces = p.analyze(got.last().unwrap()).unwrap();
        assert_eq!(faces.len(), 1, "{transport:?}");
        let s = cosine(&still, &faces[0].embedding);
        assert!(s >= 0.55, "{transport:?}: cosine {s:.3} between the streamed face and the photo");
    }
}

#[tokio::test]
async fn unknown_paths_refused_connections_and_bad_urls_are_specific_errors() {
    let clip = common::h264_clip(&common::photo("obama.jpg"), 1, &["-profile:v", "baseline"], "rtsp-errors");
    let server = common::RtspServer::start(&clip, 10);
    let missing = format!("rtsp://viewer:hunter2@127.0.0.1:{}/nope", server.port);
    let e = RtspSource::connect(&missing, RtspTransport::Tcp, STEP).await.err().expect("404");
    let msg = e.to_string();
    assert!(matches!(e, SourceError::Rtsp { stage: "describe", .. }), "{msg}");
    assert!(!msg.contains("hunter2") && !msg.contains("viewer"), "credentials leaked: {msg}");
    assert!(msg.contains("/nope"), "{msg}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = RtspSource::connect(&format!("rtsp://127.0.0.1:{closed}/cam1"), RtspTransport::Tcp, STEP)
        .await
        .err()
        .expect("refused");
    assert!(matches!(e, SourceError::Rtsp { .. }), "{e}");

    let e = RtspSource::connect("http://127.0.0.1/cam1", RtspTransport::Tcp, STEP).await.err().expect("scheme");
    assert!(matches!(e, SourceError::BadUrl { .. }), "{e}");
}

#[tokio::test]
async fn a_server_that_accepts_but_never_answers_times_out() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let e = RtspSource::connect(&format!("rtsp://127.0.0.1:{port}/cam1"), RtspTransport::Tcp, Duration::from_secs(1))
        .await
        .err()
        .expect("timeout");
    assert!(matches!(e, SourceError::Timeout { stage: "describe", .. }), "{e}");
    drop(silent);
}

#[tokio::test]
async fn a_host_that_never_resolves_is_an_error_naming_no_credentials() {
    // `.invalid` never resolves (RFC 6761), with or without a resolver.
    let started = std::time::Instant::now();
    let e = RtspSource::connect("rtsp://admin:hunter2@camera.invalid/stream1", RtspTransport::Tcp, STEP)
        .await
        .err()
        .expect("no such host");
    let msg = e.to_string();
    assert!(matches!(e, SourceError::Rtsp { .. } | SourceError::Timeout { .. }), "{msg}");
    assert!(msg.contains("camera.invalid"), "the error names the host: {msg}");
    assert!(!msg.contains("hunter2") && !msg.contains("admin"), "credentials leaked: {msg}");
    assert!(started.elapsed() < STEP * 3, "bounded by the step timeout");
}

#[tokio::test]
async fn garbage_in_answer_to_describe_is_an_error_not_a_crash() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten().take(2) {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let mut garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
            garbage.splice(0..0, b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 4000\r\n\r\n".iter().copied());
            let _ = conn.write_all(&garbage);
        }
    });
    let e = RtspSource::connect(&format!("rtsp://127.0.0.1:{port}/cam1"), RtspTransport::Tcp, STEP)
        .await
        .err()
        .expect("garbage is refused");
    assert!(matches!(e, SourceError::Rtsp { .. } | SourceError::Timeout { .. }), "{e}");
}

#[tokio::test]
async fn rtp_timestamps_jumping_backwards_neither_break_the_stream_nor_its_pictures() {
    use common::scripted_rtsp::{Script, ScriptedRtspServer};
    let clip = common::h264_clip(&common::photo("obama.jpg"), 3, &["-profile:v", "baseline", "-g", "10"], "ts-back");
    // Every 30 units (one loop of the clip) the RTP clock goes 5 s back at unit 15.
    let server = ScriptedRtspServer::start(&clip, 25, Script::TimestampsBack { at: 15, secs: 5 });
    let mut src = RtspSource::connect(&server.url(), RtspTransport::Tcp, STEP).await.expect("connect");
    let mut dec = decode::open(DecoderBackend::Openh264, Codec::H264).unwrap();
    let (mut units, mut pictures) = (0, 0);
    tokio::time::timeout(Duration::from_secs(30), async {
        while units < 70 {
            let au = src.next_access_unit().await.expect("no error across the jumps").expect("stream ended early");
            units += 1;
            if let Ok(p) = dec.decode(&au.data, au.is_keyframe, units, &mut |_, _| false) {
                pictures += p.len();
            }
        }
    })
    .await
    .expect("70 access units within 30 s");
    // Three backward jumps crossed: every unit arrived and decoded, on the one connection.
    assert_eq!(pictures, 70);
    assert_eq!(server.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Capture times come from the stream's RTCP sender reports: none before the first report, then one
/// per frame that advances with the frames (0.1 s at 10 fps) and stays within network delay of the
/// arrival time (the server's clock is this machine's).
#[tokio::test]
async fn capture_times_follow_the_rtcp_sender_reports() {
    let clip = common::h264_clip(&common::photo("obama2.jpg"), 4, &["-profile:v", "baseline", "-g", "10"], "rtcp");
    let server = common::RtspServer::start(&clip, 10);
    let mut src = RtspSource::connect(&server.url(), RtspTransport::Tcp, STEP).await.expect("connect");
    let mut stamped = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while stamped.len() < 30 {
            let au = src.next_access_unit().await.expect("stream").expect("stream ended early");
            let arrived = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
            if let Some(c) = au.capture {
                stamped.push((c.secs(), arrived));
            }
        }
    })
    .await
    .expect("30 frames with capture times within 30 s (GStreamer sends a sender report every few seconds)");
    for w in stamped.windows(2) {
        let step = w[1].0 - w[0].0;
        assert!((step - 0.1).abs() < 0.02, "capture times step by {step:.3} s at 10 fps: {stamped:?}");
    }
    let lags: Vec<f64> = stamped.iter().map(|(c, a)| a - c).collect();
    let (min, max) = lags.iter().fold((f64::MAX, f64::MIN), |(lo, hi), l| (lo.min(*l), hi.max(*l)));
    eprintln!("arrival − capture: {min:.3} … {max:.3} s");
    assert!(min > -0.5 && max < 2.0, "capture times far from arrival: {min:.3} … {max:.3} s");
    assert!(max - min < 0.5, "capture − arrival drifts: {min:.3} … {max:.3} s");
}
