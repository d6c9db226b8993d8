//! Scenes composed from the test photos for the tracking and appearance tests: heads cut from the
//! photos (the real detector finds their faces), pasted on a real face-less background with sensor
//! noise, and encoded as a camera would (Main profile, B-frames, a camera-like bitrate).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use image::RgbImage;
use panoptes_engine::pipeline::FacePipeline;

pub const W: u32 = 1280;
pub const H: u32 = 720;

/// A head cut from a test photo, scaled so that its face is a given width.
pub struct Head {
    pub image: RgbImage,
}

/// The photo's largest face with half its width of margin around it (head and shoulders), scaled so
/// that the face is `face_px` wide.
pub fn head(p: &mut FacePipeline, photo: &str, face_px: f32) -> Head {
    let img = p.decode(&super::photo_bytes(photo)).expect("decode test photo");
    let faces = p.detector().detect(&img).expect("detect");
    let f = faces.iter().max_by(|a, b| a.bbox.width.total_cmp(&b.bbox.width)).expect("the photo shows a face");
    let m = f.bbox.width * 0.5;
    let (x, y) = ((f.bbox.x - m).max(0.0) as u32, (f.bbox.y - m).max(0.0) as u32);
    let (w, h) = ((f.bbox.width + 2.0 * m) as u32, (f.bbox.height + 2.0 * m) as u32);
    let (w, h) = (w.min(img.width() - x), h.min(img.height() - y));
    let crop = image::imageops::crop_imm(&img, x, y, w, h).to_image();
    let scale = face_px / f.bbox.width;
    let (sw, sh) = (((w as f32 * scale) as u32).max(1), ((h as f32 * scale) as u32).max(1));
    Head { image: image::imageops::resize(&crop, sw, sh, image::imageops::FilterType::Triangle) }
}

/// The centre of a head pasted at `(x, y)`: where its face is.
pub fn centre(h: &Head, x: i64, y: i64) -> (f32, f32) {
    (x as f32 + h.image.width() as f32 / 2.0, y as f32 + h.image.height() as f32 / 2.0)
}

/// The corridor: the lower third of obama2.jpg (a desk and a wall, no face), at 720p.
pub fn background(p: &FacePipeline) -> RgbImage {
    let img = p.decode(&super::photo_bytes("obama2.jpg")).expect("decode test photo");
    let (w, h) = (img.width() / 3 * 2, img.height() / 3);
    let crop = image::imageops::crop_imm(&img, 0, img.height() - h, w, h).to_image();
    image::imageops::resize(&crop, W, H, image::imageops::FilterType::Triangle)
}

/// Sensor noise (±3 grey levels), different in every frame, as a camera's P-frames carry.
pub fn with_noise(img: &RgbImage, seed: u32) -> RgbImage {
    let mut out = img.clone();
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for p in out.pixels_mut() {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let n = ((s >> 24) % 7) as i16 - 3;
        for c in p.0.iter_mut() {
            *c = (i16::from(*c) + n).clamp(0, 255) as u8;
        }
    }
    out
}

/// One frame: the background (with noise) and heads at the given top-left corners, later ones in front.
pub fn scene(bg: &RgbImage, heads: &[(&Head, i64, i64)], seed: u32) -> RgbImage {
    let mut img = with_noise(bg, seed);
    for (h, x, y) in heads {
        image::imageops::overlay(&mut img, &h.image, *x, *y);
    }
    img
}

/// Encodes 10 fps frames as Annex-B H.264 the way a camera does: Main profile, 2 B-frames, a
/// keyframe every 2 s, 1.5 Mbit/s.
pub fn encode_camera_clip(frames: impl IntoIterator<Item = RgbImage>, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.h264"));
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &format!("{W}x{H}"), "-r", "10"])
        .args(["-i", "-", "-c:v", "libx264", "-profile:v", "main", "-bf", "2", "-g", "20", "-b:v", "1500k"])
        .args(["-maxrate", "2000k", "-bufsize", "2000k", "-pix_fmt", "yuv420p"])
        .arg(&out)
        .stdin(Stdio::piped())
        .spawn()
        .expect("ffmpeg (installed by scripts/setup.sh)");
    {
        let mut stdin = ffmpeg.stdin.take().expect("ffmpeg's stdin");
        for f in frames {
            assert_eq!(f.dimensions(), (W, H));
            stdin.write_all(f.as_raw()).expect("write a frame to ffmpeg");
        }
    }
    assert!(ffmpeg.wait().expect("ffmpeg ran").success(), "ffmpeg failed for {name}");
    out
}
