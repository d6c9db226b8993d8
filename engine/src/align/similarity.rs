//! Closed-form least-squares similarity transform (uniform scale, rotation, translation) between two
//! point sets. Unlike a generic SVD (Umeyama) solver it cannot return a reflection, so it is safe with
//! as few as two points.

use crate::geometry::Point;

/// Maps p to (a·x − b·y + tx, b·x + a·y + ty).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// The transform minimising Σ‖T(src_i) − dst_i‖². `None` when the source points coincide.
    pub fn fit(src: &[Point], dst: &[Point]) -> Option<Similarity> {
        let n = src.len().min(dst.len());
        if n < 2 {
            return None;
        }
        let mean = |pts: &[Point]| {
            let (sx, sy) = pts[..n].iter().fold((0.0f64, 0.0f64), |(x, y), p| (x + p.x as f64, y + p.y as f64));
            (sx / n as f64, sy / n as f64)
        };
        let (mx, my) = mean(src);
        let (nx, ny) = mean(dst);
        let (mut dot, mut cross, mut norm) = (0.0f64, 0.0f64, 0.0f64);
        for (p, q) in src[..n].iter().zip(&dst[..n]) {
            let (px, py) = (p.x as f64 - mx, p.y as f64 - my);
            let (qx, qy) = (q.x as f64 - nx, q.y as f64 - ny);
            dot += px * qx + py * qy;
            cross += px * qy - py * qx;
            norm += px * px + py * py;
        }
        if norm < 1e-9 {
            return None;
        }
        let (a, b) = (dot / norm, cross / norm);
        let tx = nx - (a * mx - b * my);
        let ty = ny - (b * mx + a * my);
        Some(Similarity { a: a as f32, b: b as f32, tx: tx as f32, ty: ty as f32 })
    }

    /// Scale, rotation (radians) and translation.
    pub fn from_parts(scale: f32, angle: f32, tx: f32, ty: f32) -> Similarity {
        Similarity { a: scale * angle.cos(), b: scale * angle.sin(), tx, ty }
    }

    pub fn apply(&self, p: Point) -> Point {
        Point::new(self.a * p.x - self.b * p.y + self.tx, self.b * p.x + self.a * p.y + self.ty)
    }

    pub fn scale(&self) -> f32 {
        (self.a * self.a + self.b * self.b).sqrt()
    }

    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(p: Point, q: Point) -> bool {
        (p.x - q.x).abs() < 1e-3 && (p.y - q.y).abs() < 1e-3
    }

    #[test]
    fn recovers_a_known_transform_exactly() {
        let t = Similarity::from_parts(2.5, 0.3, 10.0, -4.0);
        let src = [Point::new(1.0, 2.0), Point::new(30.0, 5.0), Point::new(12.0, 40.0), Point::new(-7.0, 9.0)];
        let dst: Vec<Point> = src.iter().map(|p| t.apply(*p)).collect();
        let fit = Similarity::fit(&src, &dst).unwrap();
        for p in src {
            assert!(close(fit.apply(p), t.apply(p)));
        }
        assert!(close(fit.inverse().apply(fit.apply(src[2])), src[2]));
    }

    #[test]
    fn two_points_never_mirror() {
        // Two points: a reflection would fit too; the similarity must keep orientation.
        let src = [Point::new(0.0, 0.0), Point::new(10.0, 0.0)];
        let dst = [Point::new(0.0, 0.0), Point::new(0.0, 10.0)];
        let t = Similarity::fit(&src, &dst).unwrap();
        // a point above the segment (negative y) must land on the rotated side, not the mirrored one
        let q = t.apply(Point::new(5.0, -5.0));
        assert!(close(q, Point::new(5.0, 5.0)), "{q:?}");
    }

    #[test]
    fn coincident_points_have_no_transform() {
        let p = [Point::new(3.0, 3.0); 3];
        assert!(Similarity::fit(&p, &p).is_none());
    }
}
