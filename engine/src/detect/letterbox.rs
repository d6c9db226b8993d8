//! Letterboxing a view of an image into the detector's square input tensor (RGB, NCHW, x/127.5 − 1),
//! and the inverse mapping from normalised detector coordinates back to image pixels.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use super::tiling::View;
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
