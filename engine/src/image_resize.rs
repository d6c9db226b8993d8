//! Downscaling and JPEG re-encoding of still images (enrollment photos, snapshots).

use std::io::Cursor;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{PixelType, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;

/// The image scaled so its longest side is at most `max_side`, and the scale applied (1.0 when it was
/// already small enough; the image is then copied, which is cheap next to inference).
pub fn fit_within(image: &RgbImage, max_side: u32) -> Result<(RgbImage, f32), String> {
    let longest = image.width().max(image.height());
    if longest <= max_side || longest == 0 {
        return Ok((image.clone(), 1.0));
    }
    let scale = max_side as f32 / longest as f32;
    let w = ((image.width() as f32 * scale).round() as u32).max(1);
    let h = ((image.height() as f32 * scale).round() as u32).max(1);
    let src =
        ImageRef::new(image.width(), image.height(), image.as_raw(), PixelType::U8x3).map_err(|e| e.to_string())?;
    let mut dst = Image::new(w, h, PixelType::U8x3);
    Resizer::new().resize(&src, &mut dst, &ResizeOptions::new()).map_err(|e| e.to_string())?;
    let out = RgbImage::from_raw(w, h, dst.into_vec()).ok_or("resized buffer has the wrong size")?;
    Ok((out, w as f32 / image.width() as f32))
}

/// The image as JPEG at `quality` (1–100).
pub fn jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, quality).encode_image(image).map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

/// JPEG at the best quality (85 down to 40) that fits in `max_bytes`; the smallest tried otherwise.
pub fn jpeg_at_most(image: &RgbImage, max_bytes: usize) -> Vec<u8> {
    let mut last = Vec::new();
    for quality in [85u8, 75, 65, 50, 40] {
        let Ok(encoded) = jpeg(image, quality) else { continue };
        last = encoded;
        if last.len() <= max_bytes {
            break;
        }
    }
    last
}
