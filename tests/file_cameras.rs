//! File cameras from the containers installers test with (MP4, MKV, MOV) and raw Annex-B, in H.264
//! and H.265: each plays at its own frame rate and every unit it hands on decodes; a ten-minute file
//! is read a few packets at a time; a file that does not loop finishes; a file in a codec we cannot
//! decode, a file without video and a file that is not video each get their own error.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use panoptes_actors::camera::{CameraActor, CameraConfig, CameraState, CameraStatus, GetStatus};
use panoptes_actors::messages::EncodedFrame;
use panoptes_engine::decode::{self, Codec, DecoderBackend, VideoDecoder};
use panoptes_engine::source::file::FileSource;

/// What a camera handed on, decoded as the decoder actor would.
#[derive(Default)]
struct Decoded {
    units: usize,
    pictures: usize,
    codecs: Vec<Codec>,
    errors: Vec<String>,
    /// Each unit's capture time (its position in the clip, counted on across loops).
    captures: Vec<Option<i64>>,
}

/// Stands in for the decoder actor: decodes every unit with libavcodec and counts the pictures.
struct Decoding {
    decoder: Option<Box<dyn VideoDecoder>>,
    seen: Arc<Mutex<Decoded>>,
}

impl Actor for Decoding {
    type Context = Context<Self>;
}

impl Handler<EncodedFrame> for Decoding {
    type Result = ();
    fn handle(&mut self, f: EncodedFrame, _: &mut Self::Context) {
        let mut seen = self.seen.lock().unwrap();
        seen.units += 1;
        seen.captures.push(f.unit.capture.map(|c| c.0));
        if !seen.codecs.contains(&f.unit.codec) {
            seen.codecs.push(f.unit.codec);
        }
        let decoder = self.decoder.get_or_insert_with(|| decode::open(DecoderBackend::Libav, f.unit.codec).unwrap());
        match decoder.decode(&f.unit.data, f.unit.is_keyframe, 0, &mut |_, _| false) {
            Ok(p) => seen.pictures += p.len(),
            Err(e) => seen.errors.push(e.to_string()),
        }
    }
}

async fn status(cam: &Addr<CameraActor>) -> CameraStatus {
    cam.send(GetStatus).await.expect("camera actor alive")
}

fn file_camera(id: i64, path: &Path) -> (Addr<CameraActor>, Arc<Mutex<Decoded>>) {
    let seen = Arc::new(Mutex::new(Decoded::default()));
    let sink = Decoding { decoder: None, seen: seen.clone() }.start();
    let cam = CameraActor::new(CameraConfig::new(id, common::path_str(path)), sink.recipient()).start();
    (cam, seen)
}

#[actix_web::test]
async fn containers_and_raw_files_in_h264_and_h265_play_at_their_own_rate_and_decode() {
    let photo = common::photo("obama2.jpg");
    let h264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25"];
    let clips: Vec<(PathBuf, Codec, f64)> = vec![
        (common::video_clip(&photo, 3, 25, &h264, "h264-25.mp4"), Codec::H264, 25.0),
        (common::video_clip(&photo, 3, 30, &h264, "h264-30.mp4"), Codec::H264, 30.0),
        (common::h265_clip(&photo, 3, 25, "h265-25.mp4"), Codec::H265, 25.0),
        (common::h265_clip(&photo, 3, 30, "h265-30.mp4"), Codec::H265, 30.0),
        (common::h265_clip(&photo, 3, 25, "h265-25.mkv"), Codec::H265, 25.0),
        (common::video_clip(&photo, 3, 30, &h264, "h264-30.mov"), Codec::H264, 30.0),
        // Raw Annex-B carries no timing: it plays at the configured file rate (10 fps).
        (common::h265_clip(&photo, 3, 25, "h265-raw.h265"), Codec::H265, 10.0),
    ];
    let cameras: Vec<_> = clips.iter().enumerate().map(|(i, (path, _, _))| file_camera(i as i64 + 1, path)).collect();
    for (cam, _) in &cameras {
        common::eventually("streaming", Duration::from_secs(20), || status(cam), |s| s.state == CameraState::Streaming)
            .await;
    }
    // The rate over a window of 6 s (two passes of each 3 s file: looping keeps the rate).
    let before: Vec<u64> = futures::future::join_all(cameras.iter().map(|(c, _)| status(c)))
        .await
        .iter()
        .map(|s| s.frames_received)
        .collect();
    let t0 = Instant::now();
    actix::clock::sleep(Duration::from_secs(6)).await;
    let after = futures::future::join_all(cameras.iter().map(|(c, _)| status(c))).await;
    let elapsed = t0.elapsed().as_secs_f64();
    for (((path, codec, fps), (_, seen)), (s, b)) in clips.iter().zip(&cameras).zip(after.iter().zip(&before)) {
        let name = path.file_name().unwrap().to_string_lossy();
        let measured = (s.frames_received - b) as f64 / elapsed;
        eprintln!("{name}: {measured:.1} fps (file {fps}), late {}, {:?}", s.frames_late, s.state);
        assert!((measured - fps).abs() <= fps * 0.08, "{name}: {measured:.1} fps, the file's rate is {fps}");
        assert_eq!(s.state, CameraState::Streaming, "{name}: {s:?}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.codecs, [*codec], "{name}");
        assert!(seen.errors.is_empty(), "{name}: {:?}", seen.errors);
        // Capture times are the position in the clip and keep increasing across loops (6 s of a 3 s
        // clip), one frame interval apart in decoding order (B-frames are stamped by decoding time).
        let captures: Vec<i64> = seen.captures.iter().map(|c| c.expect("a file unit has a capture time")).collect();
        assert!(captures.windows(2).all(|w| w[1] > w[0]), "{name}: capture times go back");
        let span = (captures[captures.len() - 1] - captures[0]) as f64 / 1e6;
        let expected = (captures.len() - 1) as f64 / fps;
        // As loose as the rate check above (a container's own timestamps, e.g. MKV's milliseconds).
        let tolerance = 0.08 * expected + 0.2;
        assert!(
            (span - expected).abs() < tolerance,
            "{name}: {span:.2} s of capture time over {} units",
            captures.len()
        );
        // Every unit decodes to a picture (a few are still inside the decoder: B-frame reordering).
        assert!(
            seen.pictures + 4 >= seen.units && seen.units > 0,
            "{name}: {} units, {} pictures",
            seen.units,
            seen.pictures
        );
    }
}

/// Resident memory of this process (kB).
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[actix_web::test]
async fn a_ten_minute_file_is_read_a_few_packets_at_a_time() {
    // Ten minutes of noisy 320×180 video at 10 fps and ~1 Mbit/s: a ~75 MB file, bigger than any
    // growth the assertion allows.
    let long = common::temp_dir("long").join("ten-minutes.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=10:duration=600"])
        .args(["-vf", "noise=alls=30:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1M"])
        .args(["-g", "50", "-pix_fmt", "yuv420p"])
        .arg(&long)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let size = std::fs::metadata(&long).unwrap().len();
    let short = common::video_clip(&common::photo("biden.jpg"), 2, 10, &["-c:v", "libx264"], "short.mp4");

    // Warm up the demuxer's own allocations on the short file first.
    FileSource::measure(&short, 10.0).await.unwrap();
    let before = rss_kb();
    let (info, duration) = FileSource::measure(&long, 10.0).await.unwrap();
    let grown_mb = rss_kb().saturating_sub(before) as f64 / 1024.0;
    eprintln!("{} MB file, {duration:?} at {} fps: RSS grew {grown_mb:.1} MB", size / 1_000_000, info.fps);
    assert_eq!((info.codec, info.fps), (Codec::H264, 10.0));
    assert!((duration.as_secs_f64() - 600.0).abs() < 1.0, "{duration:?}");
    assert!(size > 40_000_000, "the file must be larger than the growth allowed: {size} bytes");
    assert!(grown_mb < 16.0, "reading a {} MB file grew memory by {grown_mb:.1} MB", size / 1_000_000);
}

#[actix_web::test]
async fn a_file_that_does_not_loop_finishes_and_bad_files_say_why() {
    let photo = common::photo("biden.jpg");
    let once = common::video_clip(&photo, 1, 25, &["-c:v", "libx264"], "once.mp4");
    let seen = Arc::new(Mutex::new(Decoded::default()));
    let sink = Decoding { decoder: None, seen: seen.clone() }.start();
    let mut config = CameraConfig::new(1, common::path_str(&once));
    config.looping = false;
    let cam = CameraActor::new(config, sink.clone().recipient()).start();
    let s =
        common::eventually("finished", Duration::from_secs(20), || status(&cam), |s| s.state == CameraState::Finished)
            .await;
    assert_eq!(s.frames_received, 25, "{s:?}");
    assert_eq!(s.last_error, None);

    // MPEG-4 part 2 video: a codec we cannot decode, named, and not retried at the usual backoff.
    let mpeg4 = common::video_clip(&photo, 1, 10, &["-c:v", "mpeg4"], "mpeg4.mp4");
    // Audio only, and a file that is no video at all.
    let audio = common::temp_dir("audio").join("sound.m4a");
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=1"])
        .arg(&audio)
        .status()
        .unwrap();
    assert!(made.success());
    let text = common::temp_dir("text").join("notes.mp4");
    std::fs::write(&text, "not a video, whatever its name says").unwrap();
    let mut cams = Vec::new();
    for (id, path) in [(2, &mpeg4), (3, &audio), (4, &text)] {
        cams.push(CameraActor::new(CameraConfig::new(id, common::path_str(path)), sink.clone().recipient()).start());
    }
    let unsupported = common::eventually(
        "unsupported",
        Duration::from_secs(10),
        || status(&cams[0]),
        |s| s.state == CameraState::Unsupported,
    )
    .await;
    let why = unsupported.last_error.unwrap_or_default();
    assert!(why.contains("holds mpeg4 video") && why.contains("mpeg4.mp4"), "{why}");
    for (cam, words) in [(&cams[1], "no video stream"), (&cams[2], "notes.mp4")] {
        let s =
            common::eventually("backoff", Duration::from_secs(10), || status(cam), |s| s.state == CameraState::Backoff)
                .await;
        let why = s.last_error.unwrap_or_default();
        assert!(why.contains(words), "{why}");
    }
    // Still waiting out its long retry, not hammering the file.
    actix::clock::sleep(Duration::from_secs(3)).await;
    let again = status(&cams[0]).await;
    assert_eq!((again.state, again.reconnects), (CameraState::Unsupported, 1), "{again:?}");
}
