//! Drawing face boxes and names onto a frame for the live camera snapshot. Names need a TrueType
//! font (DejaVu Sans from Debian's fonts-dejavu-core by default); without one, boxes are drawn alone.

use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use image::{Rgb, RgbImage};
use panoptes_engine::geometry::BBox;

const FONT_PATHS: &[&str] =
    &["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf"];

fn font() -> Option<&'static FontVec> {
    static FONT: OnceLock<Option<FontVec>> = OnceLock::new();
    FONT.get_or_init(|| {
        let found = FONT_PATHS.iter().find_map(|p| std::fs::read(p).ok().and_then(|b| FontVec::try_from_vec(b).ok()));
        if found.is_none() {
            tracing::warn!("no TrueType font found ({FONT_PATHS:?}); live snapshots show boxes without names");
        }
        found
    })
    .as_ref()
}

pub const KNOWN: Rgb<u8> = Rgb([40, 200, 80]);
pub const UNKNOWN: Rgb<u8> = Rgb([230, 60, 50]);

/// A hollow rectangle `thickness` px wide, clipped to the image.
pub fn draw_box(img: &mut RgbImage, b: &BBox, colour: Rgb<u8>, thickness: u32) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (b.x.round() as i64, b.y.round() as i64);
    let (x1, y1) = ((b.x + b.width).round() as i64, (b.y + b.height).round() as i64);
    let t = i64::from(thickness);
    let mut put = |x: i64, y: i64| {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            img.put_pixel(x as u32, y as u32, colour);
        }
    };
    for x in x0..=x1 {
        for k in 0..t {
            put(x, y0 + k);
            put(x, y1 - k);
        }
    }
    for y in y0..=y1 {
        for k in 0..t {
            put(x0 + k, y);
            put(x1 - k, y);
        }
    }
}

/// `text` in white on a `colour` band whose bottom-left corner is at (x, y).
pub fn draw_label(img: &mut RgbImage, x: f32, y: f32, text: &str, colour: Rgb<u8>) {
    let Some(font) = font() else { return };
    let scaled = font.as_scaled(PxScale::from(18.0));
    let width: f32 = text.chars().map(|c| scaled.h_advance(scaled.glyph_id(c))).sum::<f32>() + 6.0;
    let height = scaled.height() + 4.0;
    let top = (y - height).max(0.0);
    for py in top as u32..((top + height) as u32).min(img.height()) {
        for px in x.max(0.0) as u32..((x + width) as u32).min(img.width()) {
            img.put_pixel(px, py, colour);
        }
    }
    let mut caret = x + 3.0;
    for c in text.chars() {
        let mut glyph = scaled.scaled_glyph(c);
        glyph.position = ab_glyph::point(caret, top + 2.0 + scaled.ascent());
        caret += scaled.h_advance(glyph.id);
        let Some(outline) = font.outline_glyph(glyph) else { continue };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let (px, py) = (bounds.min.x as i64 + i64::from(gx), bounds.min.y as i64 + i64::from(gy));
            if px < 0 || py < 0 || px >= i64::from(img.width()) || py >= i64::from(img.height()) {
                return;
            }
            let p = img.get_pixel_mut(px as u32, py as u32);
            for ch in 0..3 {
                p.0[ch] = (f32::from(p.0[ch]) * (1.0 - coverage) + 255.0 * coverage) as u8;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_clipped_to_the_image() {
        let mut img = RgbImage::new(50, 40);
        draw_box(&mut img, &BBox { x: 30.0, y: 20.0, width: 100.0, height: 100.0 }, KNOWN, 2);
        assert_eq!(*img.get_pixel(30, 25), KNOWN);
        assert_eq!(*img.get_pixel(10, 10), Rgb([0, 0, 0]));
        draw_box(&mut img, &BBox { x: -10.0, y: -10.0, width: 5.0, height: 5.0 }, UNKNOWN, 2);
    }
}
