//! What reading a camera's streams costs in decoding, as % of one core per camera at 10 fps (issue
//! 25: detect on the substream, recognise from the main stream). The walk-through of setup.sh at
//! 1080p (the main stream, 4 Mbit/s, B-frames) and its 640×360 rendition (the substream):
//!
//! - the main stream decoded whole (a camera run on its main stream alone);
//! - the substream decoded whole;
//! - the main stream's keyframes only, at GOPs of 1, 2 and 4 s (re-encoded here from the 1080p clip
//!   with ffmpeg, into target/bench-clips/).
//!
//! Decoding only (libavcodec, one thread per camera as the engine runs it): detection, tracking and
//! embedding are not in these figures. Each figure is the thread's CPU time over the clip's length,
//! the median of 5 passes.
//!
//! cargo bench -p panoptes-engine --bench decode

use std::path::{Path, PathBuf};

use panoptes_engine::decode::{self, Codec, DecoderBackend};
use panoptes_engine::source::annexb::{access_units, AccessUnit};

const FPS: f64 = 10.0;
const PASSES: usize = 5;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn thread_cpu_secs() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a plain out-parameter for the calling thread's CPU clock.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// The 1080p clip re-encoded with a GOP of `gop` frames (made once).
fn with_gop(main: &Path, gop: u32) -> PathBuf {
    let dir = root().join("target/bench-clips");
    std::fs::create_dir_all(&dir).expect("target/bench-clips");
    let out = dir.join(format!("walkthrough-1080p-g{gop}.h264"));
    if !out.exists() {
        let tmp = out.with_extension("tmp.h264");
        let status = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-r", "10", "-i"])
            .arg(main)
            .args(["-c:v", "libx264", "-profile:v", "main", "-bf", "2", "-g", &gop.to_string()])
            .args(["-b:v", "4000k", "-maxrate", "4000k", "-bufsize", "4000k", "-pix_fmt", "yuv420p"])
            .arg(&tmp)
            .status()
            .expect("ffmpeg (installed by scripts/setup.sh)");
        assert!(status.success(), "ffmpeg could not re-encode {}", main.display());
        std::fs::rename(&tmp, &out).expect("rename");
    }
    out
}

/// CPU seconds per second of video (1.0 = one core) and the pictures decoded per pass.
fn cost(units: &[AccessUnit], keyframes_only: bool) -> (f64, u64) {
    let mut runs = Vec::with_capacity(PASSES);
    let mut pictures = 0;
    for _ in 0..PASSES {
        let mut dec = decode::open(DecoderBackend::Libav, Codec::H264).expect("libavcodec");
        dec.set_keyframes_only(keyframes_only);
        let start = thread_cpu_secs();
        for (tag, au) in units.iter().enumerate() {
            // Pictures are copied out as the engine copies the ones it analyses.
            dec.decode(&au.data, au.is_keyframe, tag as u64, &mut |_, _| true).expect("clean clip");
        }
        dec.flush(&mut |_, _| true).expect("flush");
        runs.push(thread_cpu_secs() - start);
        pictures = dec.stats().frames;
    }
    runs.sort_by(f64::total_cmp);
    (runs[PASSES / 2] / (units.len() as f64 / FPS), pictures)
}

fn main() {
    let demo = root().join(".local/demo");
    let main = demo.join("walkthrough-1080p.h264");
    let sub = demo.join("walkthrough-360p.h264");
    let read =
        |p: &Path| access_units(&std::fs::read(p).unwrap_or_else(|_| panic!("{}: run scripts/setup.sh", p.display())));
    println!("{:<44} {:>12} {:>9}", "stream", "% of a core", "pictures");
    let row = |what: &str, (share, pictures): (f64, u64)| println!("{what:<44} {:>11.1}% {pictures:>9}", share * 100.0);
    let main_units = read(&main);
    row("1080p main, every frame (GOP 2 s)", cost(&main_units, false));
    row("640x360 sub, every frame (GOP 2 s)", cost(&read(&sub), false));
    for gop in [10, 20, 40] {
        let units = read(&with_gop(&main, gop));
        row(&format!("1080p main, keyframes only (GOP {} s)", gop as f64 / FPS), cost(&units, true));
    }
}
