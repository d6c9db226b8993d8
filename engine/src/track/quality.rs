//! How good a detected face is for recognition and for the snapshot: its size, its sharpness and how
//! squarely it faces the camera, each in 0..1, multiplied. A track is embedded again only when its
//! face is clearly better than the best it was embedded from, and its snapshot is its best face.

use serde::Serialize;

use crate::detect::Face;
use crate::frame::YuvFrame;

/// Faces this wide (px) or wider score full marks for size; the embedder sees 112 px.
const FULL_SIZE_PX: f32 = 160.0;
/// Sharpness is measured on the face resampled to this many pixels across, so it does not depend on
/// the face's size in the frame (a small face upscaled is blurry; a large one downscaled is sharp).
const PROBE: usize = 48;
/// Mean absolute Laplacian (grey levels) of a crisp face at the probe size.
const CRISP: f32 = 12.0;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Quality {
    pub size: f32,
    pub sharpness: f32,
    pub frontal: f32,
    /// The product of the three.
    pub score: f32,
}

/// The quality of `face` in `frame`.
pub fn face_quality(face: &Face, frame: &YuvFrame) -> Quality {
    let size = (face.bbox.width.min(face.bbox.height) / FULL_SIZE_PX).clamp(0.0, 1.0);
    let sharpness = (sharpness(face, frame) / CRISP).clamp(0.05, 1.0);
    let frontal = frontalness(face);
    Quality { size, sharpness, frontal, score: size * sharpness * frontal }
}

/// 1 for a face looking at the camera, falling as it turns: the nose tip's horizontal offset from
/// the midpoint of the eyes, relative to the eyes' distance (0 frontal, ~0.5 in profile).
pub fn frontalness(face: &Face) -> f32 {
    let [l, r, nose, ..] = face.keypoints;
    let eyes = ((r.x - l.x).powi(2) + (r.y - l.y).powi(2)).sqrt();
    if !(eyes.is_finite() && eyes > 1e-3) {
        return 0.1;
    }
    let mid = l.midpoint(r);
    // The nose sits below the eye line even when frontal: only its offset along the eye line counts.
    let along = ((nose.x - mid.x) * (r.x - l.x) + (nose.y - mid.y) * (r.y - l.y)).abs() / eyes;
    (1.0 - 2.0 * along / eyes).clamp(0.1, 1.0)
}

/// Mean absolute 4-neighbour Laplacian of the face's luma resampled to PROBE×PROBE (nearest).
fn sharpness(face: &Face, frame: &YuvFrame) -> f32 {
    let (w, h) = (frame.width() as f32, frame.height() as f32);
    let b = face.bbox;
    let (x0, y0) = (b.x.max(0.0), b.y.max(0.0));
    let (x1, y1) = (b.right().min(w - 1.0), b.bottom().min(h - 1.0));
    if x1 - x0 < 4.0 || y1 - y0 < 4.0 {
        return 0.0;
    }
    let luma = frame.luma();
    let stride = frame.width() as usize;
    let mut probe = [0f32; PROBE * PROBE];
    for py in 0..PROBE {
        let sy = (y0 + (py as f32 + 0.5) * (y1 - y0) / PROBE as f32) as usize;
        for px in 0..PROBE {
            let sx = (x0 + (px as f32 + 0.5) * (x1 - x0) / PROBE as f32) as usize;
            probe[py * PROBE + px] = f32::from(luma[sy * stride + sx]);
        }
    }
    let mut sum = 0.0;
    for y in 1..PROBE - 1 {
        for x in 1..PROBE - 1 {
            let c = probe[y * PROBE + x];
            let lap = 4.0 * c
                - probe[y * PROBE + x - 1]
                - probe[y * PROBE + x + 1]
                - probe[(y - 1) * PROBE + x]
                - probe[(y + 1) * PROBE + x];
            sum += lap.abs();
        }
    }
    sum / ((PROBE - 2) * (PROBE - 2)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{BBox, Point};

    fn face(x: f32, size: f32, nose_dx: f32) -> Face {
        let (cx, cy) = (x + size / 2.0, 60.0 + size / 2.0);
        let eye = size / 4.0;
        Face {
            bbox: BBox { x, y: 60.0, width: size, height: size },
            score: 0.9,
            keypoints: [
                Point::new(cx - eye, cy - eye / 2.0),
                Point::new(cx + eye, cy - eye / 2.0),
                Point::new(cx + nose_dx * eye * 2.0, cy),
                Point::new(cx, cy + eye),
                Point::new(cx - 2.0 * eye, cy),
                Point::new(cx + 2.0 * eye, cy),
            ],
        }
    }

    #[test]
    fn frontal_faces_score_higher_than_turned_ones() {
        assert!((frontalness(&face(0.0, 100.0, 0.0)) - 1.0).abs() < 1e-4);
        assert!(frontalness(&face(0.0, 100.0, 0.25)) < 0.6);
        assert!(frontalness(&face(0.0, 100.0, 0.45)) <= 0.15);
    }

    #[test]
    fn a_textured_face_is_sharper_than_a_flat_one_and_bigger_is_better() {
        let mut img = image::RgbImage::from_pixel(400, 300, image::Rgb([120, 120, 120]));
        for y in 60..220 {
            for x in 200..360 {
                let v = if (x / 3 + y / 3) % 2 == 0 { 60 } else { 200 };
                img.put_pixel(x, y, image::Rgb([v, v, v]));
            }
        }
        let frame = YuvFrame::from_rgb(&img);
        let flat = face_quality(&face(20.0, 150.0, 0.0), &frame);
        let textured = face_quality(&face(205.0, 150.0, 0.0), &frame);
        assert!(textured.sharpness > 3.0 * flat.sharpness, "{textured:?} vs {flat:?}");
        let small = face_quality(&face(205.0, 60.0, 0.0), &frame);
        assert!(small.size < textured.size && small.score < textured.score);
    }
}
