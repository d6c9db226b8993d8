//! Letterboxing a view of an image into the detector's square input tensor (RGB, NCHW, x/127.5 − 1),
//! and the inverse mapping from normalised detector coordinates back to image pixels.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use super::tiling::View;
use crate::frame::{yuv_to_rgb, YuvFrame};
use crate::geometry::Point;

/// How a view was placed in the square input: scaled by `scale`, then offset by `pad` pixels.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    pub view: View,
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    pub side: f32,
}

impl Placement {
    pub fn new(view: View, side: u32) -> Placement {
        let scale = side as f32 / view.width.max(view.height) as f32;
        let (w, h) = scaled_size(view, scale);
        Placement { view, scale, pad_x: ((side - w) / 2) as f32, pad_y: ((side - h) / 2) as f32, side: side as f32 }
    }

    /// Normalised input coordinates → source image pixels.
    pub fn to_image(&self, p: Point) -> Point {
        Point::new(
            self.view.x as f32 + (p.x * self.side - self.pad_x) / self.scale,
            self.view.y as f32 + (p.y * self.side - self.pad_y) / self.scale,
        )
    }
}

fn scaled_size(view: View, scale: f32) -> (u32, u32) {
    (((view.width as f32 * scale).round() as u32).max(1), ((view.height as f32 * scale).round() as u32).max(1))
}

/// Writes one view into `out` (3 × side × side floats, NCHW plane order) and returns its placement.
pub fn letterbox_into(
    resizer: &mut Resizer,
    image: &RgbImage,
    view: View,
    side: u32,
    out: &mut [f32],
) -> Result<Placement, String> {
    let placement = Placement::new(view, side);
    let (w, h) = scaled_size(view, placement.scale);
    let src =
        ImageRef::new(image.width(), image.height(), image.as_raw(), PixelType::U8x3).map_err(|e| e.to_string())?;
    let mut dst = Image::new(w, h, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).crop(
        view.x as f64,
        view.y as f64,
        view.width as f64,
        view.height as f64,
    );
    resizer.resize(&src, &mut dst, &options).map_err(|e| e.to_string())?;

    // Padding is black, i.e. −1 after normalisation.
    out.fill(-1.0);
    let plane = (side * side) as usize;
    let (px, py) = (placement.pad_x as usize, placement.pad_y as usize);
    let buf = dst.buffer();
    for y in 0..h as usize {
        let row = &buf[y * w as usize * 3..(y + 1) * w as usize * 3];
        let base = (y + py) * side as usize + px;
        for (x, rgb) in row.chunks_exact(3).enumerate() {
            out[base + x] = rgb[0] as f32 / 127.5 - 1.0;
            out[plane + base + x] = rgb[1] as f32 / 127.5 - 1.0;
            out[2 * plane + base + x] = rgb[2] as f32 / 127.5 - 1.0;
        }
    }
    Ok(placement)
}

/// Like [`letterbox_into`] for a YUV 4:2:0 frame: each plane's view is downscaled to the detector's
/// size first and only those few pixels are converted to RGB, so a 720p frame costs a 192×108
/// conversion, never a full-resolution RGB copy.
pub fn letterbox_yuv_into(
    resizer: &mut Resizer,
    frame: &YuvFrame,
    view: View,
    side: u32,
    out: &mut [f32],
) -> Result<Placement, String> {
    let placement = Placement::new(view, side);
    let (w, h) = scaled_size(view, placement.scale);
    let (fw, fh) = frame.dimensions();
    let (cw, ch) = (fw.div_ceil(2), fh.div_ceil(2));
    let (u_plane, v_plane) = frame.chroma();
    let mut plane = |data: &[u8], pw: u32, ph: u32, crop: (f64, f64, f64, f64)| -> Result<Vec<u8>, String> {
        let src = ImageRef::new(pw, ph, data, PixelType::U8).map_err(|e| e.to_string())?;
        let mut dst = Image::new(w, h, PixelType::U8);
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
            .crop(crop.0, crop.1, crop.2, crop.3);
        resizer.resize(&src, &mut dst, &options).map_err(|e| e.to_string())?;
        Ok(dst.into_vec())
    };
    let full = (view.x as f64, view.y as f64, view.width as f64, view.height as f64);
    let half = (
        full.0 / 2.0,
        full.1 / 2.0,
        (full.2 / 2.0).min(cw as f64 - full.0 / 2.0),
        (full.3 / 2.0).min(ch as f64 - full.1 / 2.0),
    );
    let y = plane(frame.luma(), fw, fh, full)?;
    let u = plane(u_plane, cw, ch, half)?;
    let v = plane(v_plane, cw, ch, half)?;

    out.fill(-1.0);
    let plane_len = (side * side) as usize;
    let (px, py) = (placement.pad_x as usize, placement.pad_y as usize);
    for row in 0..h as usize {
        let base = (row + py) * side as usize + px;
        for col in 0..w as usize {
            let i = row * w as usize + col;
            let [r, g, b] = yuv_to_rgb(y[i], u[i], v[i]);
            out[base + col] = r as f32 / 127.5 - 1.0;
            out[plane_len + base + col] = g as f32 / 127.5 - 1.0;
            out[2 * plane_len + base + col] = b as f32 / 127.5 - 1.0;
        }
    }
    Ok(placement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_view_is_padded_top_and_bottom_and_maps_back() {
        let view = View { x: 100, y: 50, width: 400, height: 200 };
        let p = Placement::new(view, 192);
        assert_eq!(p.scale, 192.0 / 400.0);
        assert_eq!(p.pad_x, 0.0);
        assert_eq!(p.pad_y, 48.0);
        let centre = p.to_image(Point::new(0.5, 0.5));
        assert!((centre.x - 300.0).abs() < 1e-3 && (centre.y - 150.0).abs() < 1e-3);
    }

    #[test]
    fn a_yuv_frame_letterboxes_like_its_rgb_conversion() {
        let mut img = RgbImage::new(320, 180);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([(x % 256) as u8, (y * 255 / 180) as u8, ((x + y) % 200) as u8]);
        }
        let frame = YuvFrame::from_rgb(&img);
        let view = View { x: 0, y: 0, width: 320, height: 180 };
        let (mut a, mut b) = (vec![0.0; 3 * 64 * 64], vec![0.0; 3 * 64 * 64]);
        let mut r = Resizer::new();
        letterbox_into(&mut r, &frame.to_rgb(), view, 64, &mut a).unwrap();
        let p = letterbox_yuv_into(&mut r, &frame, view, 64, &mut b).unwrap();
        assert_eq!(p.pad_y, 14.0);
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst < 0.1, "largest difference {worst} (of a range of 2)");
    }

    #[test]
    fn letterbox_writes_normalised_planes_with_black_padding() {
        let img = RgbImage::from_pixel(40, 20, image::Rgb([255, 0, 127]));
        let mut out = vec![0.0; 3 * 16 * 16];
        let mut r = Resizer::new();
        let p = letterbox_into(&mut r, &img, View { x: 0, y: 0, width: 40, height: 20 }, 16, &mut out).unwrap();
        assert_eq!(p.pad_y, 4.0);
        assert_eq!(out[0], -1.0); // padding row
        let inside = 8 * 16 + 8;
        assert!((out[inside] - 1.0).abs() < 1e-6);
        assert!((out[256 + inside] + 1.0).abs() < 1e-6);
        assert!(out[512 + inside].abs() < 0.01);
    }
}
