//! BlazeFace SSD anchors: fixed-size anchors whose centres sit on each feature-map cell, emitted in
//! the order the models' outputs use (row y, then column x, then anchor within the cell).

use crate::geometry::Point;

/// One feature-map layer: its grid side and the number of anchors per cell.
#[derive(Clone, Copy, Debug)]
pub struct AnchorLayer {
    pub grid: usize,
    pub per_cell: usize,
}

/// Anchor centres, normalised to [0, 1] of the square input.
pub fn anchor_centres(layers: &[AnchorLayer]) -> Vec<Point> {
    let mut out = Vec::new();
    for layer in layers {
        let g = layer.grid as f32;
        for y in 0..layer.grid {
            for x in 0..layer.grid {
                for _ in 0..layer.per_cell {
                    out.push(Point::new((x as f32 + 0.5) / g, (y as f32 + 0.5) / g));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_range_has_2304_anchors_in_row_major_order() {
        let a = anchor_centres(&[AnchorLayer { grid: 48, per_cell: 1 }]);
        assert_eq!(a.len(), 2304);
        assert_eq!(a[0], Point::new(0.5 / 48.0, 0.5 / 48.0));
        assert_eq!(a[1], Point::new(1.5 / 48.0, 0.5 / 48.0));
        assert_eq!(a[48], Point::new(0.5 / 48.0, 1.5 / 48.0));
    }

    #[test]
    fn back_and_short_range_have_896_anchors() {
        let a = anchor_centres(&[AnchorLayer { grid: 16, per_cell: 2 }, AnchorLayer { grid: 8, per_cell: 6 }]);
        assert_eq!(a.len(), 896);
        // two anchors per cell share a centre; the second layer starts after 512
        assert_eq!(a[0], a[1]);
        assert_eq!(a[512], Point::new(0.5 / 8.0, 0.5 / 8.0));
        assert_eq!(a[517], a[512]);
        assert_ne!(a[518], a[512]);
    }
}
