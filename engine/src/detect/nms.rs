//! MediaPipe's weighted non-maximum suppression: every cluster of overlapping candidates becomes one
//! face whose box and keypoints are the score-weighted mean of the cluster, scored by its best member.

use super::Face;
use crate::geometry::{BBox, Point};

pub fn weighted_nms(mut candidates: Vec<Face>, iou_threshold: f32) -> Vec<Face> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out = Vec::new();
    while let Some(top) = candidates.first().copied() {
        let (cluster, rest): (Vec<Face>, Vec<Face>) =
            candidates.into_iter().partition(|c| top.bbox.iou(&c.bbox) > iou_threshold || *c == top);
        candidates = rest;
        let total: f32 = cluster.iter().map(|c| c.score).sum();
        let (mut x1, mut y1, mut x2, mut y2) = (0.0, 0.0, 0.0, 0.0);
        let mut keypoints = [Point::default(); 6];
        for c in &cluster {
            let w = c.score / total;
            x1 += c.bbox.x * w;
            y1 += c.bbox.y * w;
            x2 += c.bbox.right() * w;
            y2 += c.bbox.bottom() * w;
            for (k, p) in keypoints.iter_mut().zip(c.keypoints.iter()) {
                k.x += p.x * w;
                k.y += p.y * w;
            }
        }
        out.push(Face { bbox: BBox::from_corners(x1, y1, x2, y2), score: top.score, keypoints });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, score: f32) -> Face {
        Face { bbox: BBox { x, y: 0.0, width: 10.0, height: 10.0 }, score, keypoints: [Point::new(x, 0.0); 6] }
    }

    #[test]
    fn overlapping_candidates_merge_by_score_weight_and_keep_the_best_score() {
        let out = weighted_nms(vec![face(0.0, 0.6), face(1.0, 0.9), face(50.0, 0.7)], 0.3);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 0.9);
        let expected_x = (0.0 * 0.6 + 1.0 * 0.9) / 1.5;
        assert!((out[0].bbox.x - expected_x).abs() < 1e-5);
        assert!((out[0].keypoints[2].x - expected_x).abs() < 1e-5);
        assert_eq!(out[1].bbox.x, 50.0);
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(weighted_nms(Vec::new(), 0.3).is_empty());
    }
}
