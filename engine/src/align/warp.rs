//! Bilinear resampling of an image through a similarity transform (the warpAffine convention: output
//! pixel (u, v) takes the source at T⁻¹(u, v); outside the source is black).

use image::{Rgb, RgbImage};

use super::similarity::Similarity;
use crate::geometry::Point;

/// Renders the `width`×`height` output of `src_to_dst` applied to `src`.
pub fn warp(src: &RgbImage, src_to_dst: &Similarity, width: u32, height: u32) -> RgbImage {
    let inv = src_to_dst.inverse();
    let (sw, sh) = (src.width() as i64, src.height() as i64);
    let raw = src.as_raw();
    let px = |x: i64, y: i64| -> [f32; 3] {
        if x < 0 || y < 0 || x >= sw || y >= sh {
            return [0.0; 3];
        }
        let i = ((y * sw + x) * 3) as usize;
        [raw[i] as f32, raw[i + 1] as f32, raw[i + 2] as f32]
    };
    let mut out = RgbImage::new(width, height);
    for v in 0..height {
        for u in 0..width {
            let s = inv.apply(Point::new(u as f32, v as f32));
            let (x0, y0) = (s.x.floor(), s.y.floor());
            let (fx, fy) = (s.x - x0, s.y - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let (p00, p10, p01, p11) = (px(x0, y0), px(x0 + 1, y0), px(x0, y0 + 1), px(x0 + 1, y0 + 1));
            let mut c = [0u8; 3];
            for k in 0..3 {
                let top = p00[k] + (p10[k] - p00[k]) * fx;
                let bottom = p01[k] + (p11[k] - p01[k]) * fx;
                c[k] = (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8;
            }
            out.put_pixel(u, v, Rgb(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_copies_and_translation_shifts() {
        let mut src = RgbImage::new(8, 8);
        src.put_pixel(3, 4, Rgb([10, 20, 30]));
        let id = Similarity { a: 1.0, b: 0.0, tx: 0.0, ty: 0.0 };
        assert_eq!(warp(&src, &id, 8, 8), src);
        let shift = Similarity { a: 1.0, b: 0.0, tx: 2.0, ty: 1.0 };
        let out = warp(&src, &shift, 8, 8);
        assert_eq!(out.get_pixel(5, 5), &Rgb([10, 20, 30]));
        assert_eq!(out.get_pixel(0, 0), &Rgb([0, 0, 0]));
    }
}
