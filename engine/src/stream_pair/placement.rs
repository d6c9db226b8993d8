//! Where a face tracked in the substream lies in a main-stream picture. The main stream is read at its
//! keyframes, so its picture is usually from another moment than the substream frame being analysed
//! (up to a GOP earlier): the face is placed by the track's position at the main picture's capture
//! time, then scaled. The embedder re-detects the face around that place at full resolution, so a
//! placement a few pixels off costs nothing; one that misses finds no face and is not used.

use super::check::StreamScale;
use crate::detect::Face;
use crate::geometry::{BBox, Point};
use crate::source::clock::CaptureTime;

/// The box of a track at `at`, from its history of `(capture time, box)` (oldest first), linearly
/// between the two samples around it. A moment before the history began is unknown (`None`); one
/// after its end, up to `max_ahead_secs`, takes the newest box.
pub fn position_at(history: &[(CaptureTime, BBox)], at: CaptureTime, max_ahead_secs: f64) -> Option<BBox> {
    let first = history.first()?;
    let last = history.last()?;
    if at < first.0 {
        return None;
    }
    if at >= last.0 {
        return (at.secs_since(last.0) <= max_ahead_secs).then_some(last.1);
    }
    let i = history.partition_point(|(t, _)| *t <= at);
    let ((t0, a), (t1, b)) = (history[i - 1], history[i]);
    let span = t1.secs_since(t0);
    let f = if span > 0.0 { (at.secs_since(t0) / span) as f32 } else { 0.0 };
    let mix = |p: f32, q: f32| p + (q - p) * f;
    Some(BBox { x: mix(a.x, b.x), y: mix(a.y, b.y), width: mix(a.width, b.width), height: mix(a.height, b.height) })
}

/// `face` (seen in the substream with box `now`) placed where the track was at the main picture's
/// moment (`then`, substream pixels), in main-stream pixels.
pub fn main_face(face: &Face, then: BBox, scale: StreamScale) -> Face {
    let (cx, cy) = (face.bbox.center().x, face.bbox.center().y);
    let (tx, ty) = (then.center().x, then.center().y);
    // keep the face's own size and keypoints, moved with the track's centre
    let (dx, dy) = (tx - cx, ty - cy);
    let map = |p: Point| Point::new((p.x + dx) * scale.x, (p.y + dy) * scale.y);
    let bbox = BBox {
        x: (face.bbox.x + dx) * scale.x,
        y: (face.bbox.y + dy) * scale.y,
        width: face.bbox.width * scale.x,
        height: face.bbox.height * scale.y,
    };
    Face { bbox, score: face.score, keypoints: face.keypoints.map(map) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bbox(x: f32) -> BBox {
        BBox { x, y: 10.0, width: 12.0, height: 14.0 }
    }

    #[test]
    fn the_track_is_placed_between_its_samples_and_not_before_them() {
        let t = CaptureTime::from_secs;
        let history = [(t(1.0), bbox(100.0)), (t(1.2), bbox(120.0)), (t(1.4), bbox(160.0))];
        assert_eq!(position_at(&history, t(0.9), 0.5), None);
        assert_eq!(position_at(&history, t(1.1), 0.5).unwrap().x, 110.0);
        assert_eq!(position_at(&history, t(1.3), 0.5).unwrap().x, 140.0);
        assert_eq!(position_at(&history, t(1.6), 0.5).unwrap().x, 160.0);
        assert_eq!(position_at(&history, t(2.0), 0.5), None, "too far past the newest sample");
    }

    #[test]
    fn a_face_moves_with_its_track_and_scales_into_main_pixels() {
        let face = Face { bbox: bbox(100.0), score: 0.9, keypoints: [Point::new(103.0, 15.0); 6] };
        let mapped = main_face(&face, bbox(90.0), StreamScale { x: 3.0, y: 3.0 });
        assert_eq!(mapped.bbox, BBox { x: 270.0, y: 30.0, width: 36.0, height: 42.0 });
        assert_eq!(mapped.keypoints[0], Point::new(279.0, 45.0));
    }
}
