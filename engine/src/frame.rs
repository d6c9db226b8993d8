//! Decoded video pictures as the decoders give them: planar YUV 4:2:0 (I420), kept that way through
//! the pipeline. Only what a stage needs is converted to RGB — the detector's small letterboxed input,
//! a region around a face for alignment, a whole frame for a snapshot — so a frame that is looked at
//! only by the motion gate is never converted at all.
//!
//! Colour conversion is limited-range BT.601, the H.264/H.265 default when a stream signals nothing
//! else, with the nearest chroma sample (as openh264's own converter does).

use image::RgbImage;

/// A picture in I420: a full-resolution luma plane and two half-resolution chroma planes, each
/// stored without padding (stride = width of the plane).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YuvFrame {
    width: u32,
    height: u32,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

/// A borrowed luma plane, possibly with row padding: what the motion gate reads, straight from a
/// decoder's picture before (and usually instead of) copying it out.
#[derive(Clone, Copy, Debug)]
pub struct LumaView<'a> {
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next (≥ width).
    pub stride: usize,
    pub data: &'a [u8],
}

impl LumaView<'_> {
    /// Row `y` (`width` bytes), or `None` when the plane is shorter than its dimensions say.
    #[inline]
    pub fn row(&self, y: usize) -> Option<&[u8]> {
        self.data.get(y * self.stride..y * self.stride + self.width as usize)
    }
}

impl<'a> From<&'a YuvFrame> for LumaView<'a> {
    fn from(f: &'a YuvFrame) -> Self {
        LumaView { width: f.width, height: f.height, stride: f.width as usize, data: &f.y }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("picture of {width}×{height} is outside the supported 16..=8192 px")]
    BadDimensions { width: usize, height: usize },
    #[error("a {plane} plane of {len} bytes with stride {stride} cannot hold {rows} rows of {cols}")]
    ShortPlane { plane: &'static str, len: usize, stride: usize, rows: usize, cols: usize },
}

/// Limited-range BT.601, in 1/1024 fixed point.
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (i32::from(y) - 16) * 1192; // 1.164
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 512) >> 10).clamp(0, 255) as u8;
    [clamp(c + 1634 * e), clamp(c - 401 * d - 832 * e), clamp(c + 2066 * d)]
}

impl YuvFrame {
    /// Copies a decoder's planes (which may carry row padding) into a frame of its own.
    pub fn from_planes(
        width: usize,
        height: usize,
        planes: [&[u8]; 3],
        strides: [usize; 3],
    ) -> Result<YuvFrame, FrameError> {
        if !(16..=8192).contains(&width) || !(16..=8192).contains(&height) {
            return Err(FrameError::BadDimensions { width, height });
        }
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let copy = |plane: &'static str, data: &[u8], stride: usize, cols: usize, rows: usize| {
            if stride < cols || data.len() < stride * (rows - 1) + cols {
                return Err(FrameError::ShortPlane { plane, len: data.len(), stride, rows, cols });
            }
            let mut out = Vec::with_capacity(cols * rows);
            for r in 0..rows {
                out.extend_from_slice(&data[r * stride..r * stride + cols]);
            }
            Ok(out)
        };
        Ok(YuvFrame {
            width: width as u32,
            height: height as u32,
            y: copy("Y", planes[0], strides[0], width, height)?,
            u: copy("U", planes[1], strides[1], cw, ch)?,
            v: copy("V", planes[2], strides[2], cw, ch)?,
        })
    }

    /// A frame converted from RGB (tests, and still images run through the video path).
    pub fn from_rgb(img: &RgbImage) -> YuvFrame {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let mut y = vec![0u8; w * h];
        let (mut u, mut v) = (vec![0u8; cw * ch], vec![0u8; cw * ch]);
        let raw = img.as_raw();
        for row in 0..h {
            for col in 0..w {
                let p = &raw[(row * w + col) * 3..][..3];
                let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
                y[row * w + col] = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round().clamp(0.0, 255.0) as u8;
                if row % 2 == 0 && col % 2 == 0 {
                    let i = (row / 2) * cw + col / 2;
                    u[i] = (128.0 - 0.148 * r - 0.291 * g + 0.439 * b).round().clamp(0.0, 255.0) as u8;
                    v[i] = (128.0 + 0.439 * r - 0.368 * g - 0.071 * b).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        YuvFrame { width: w as u32, height: h as u32, y, u, v }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The luma plane, `width` bytes per row.
    pub fn luma(&self) -> &[u8] {
        &self.y
    }

    /// The chroma planes, `width.div_ceil(2)` bytes per row.
    pub fn chroma(&self) -> (&[u8], &[u8]) {
        (&self.u, &self.v)
    }

    /// Bytes held by the picture.
    pub fn byte_len(&self) -> usize {
        self.y.len() + self.u.len() + self.v.len()
    }

    /// The colour of one pixel (clamped to the picture).
    #[inline]
    pub fn rgb_at(&self, x: u32, y: u32) -> [u8; 3] {
        let (x, y) = (x.min(self.width - 1) as usize, y.min(self.height - 1) as usize);
        let cw = (self.width as usize).div_ceil(2);
        let c = (y / 2) * cw + x / 2;
        yuv_to_rgb(self.y[y * self.width as usize + x], self.u[c], self.v[c])
    }

    /// The whole picture in RGB (snapshots).
    pub fn to_rgb(&self) -> RgbImage {
        self.region_rgb(0, 0, self.width, self.height)
    }

    /// An RGB copy of the rectangle at (`x`, `y`) of `width`×`height`, clipped to the picture (at least
    /// one pixel). Alignment works on such a region around a face instead of the whole frame.
    pub fn region_rgb(&self, x: u32, y: u32, width: u32, height: u32) -> RgbImage {
        let x0 = x.min(self.width - 1);
        let y0 = y.min(self.height - 1);
        let w = width.clamp(1, self.width - x0);
        let h = height.clamp(1, self.height - y0);
        let mut out = vec![0u8; (w * h * 3) as usize];
        let cw = (self.width as usize).div_ceil(2);
        for row in 0..h as usize {
            let sy = y0 as usize + row;
            let yrow = &self.y[sy * self.width as usize..];
            let (urow, vrow) = (&self.u[(sy / 2) * cw..], &self.v[(sy / 2) * cw..]);
            let dst = &mut out[row * w as usize * 3..][..w as usize * 3];
            for (col, px) in dst.chunks_exact_mut(3).enumerate() {
                let sx = x0 as usize + col;
                px.copy_from_slice(&yuv_to_rgb(yrow[sx], urow[sx / 2], vrow[sx / 2]));
            }
        }
        RgbImage::from_raw(w, h, out).unwrap_or_else(|| RgbImage::new(1, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_white_and_primaries_convert_as_bt601_limited_range() {
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        let [r, g, b] = yuv_to_rgb(81, 90, 240); // BT.601 red
        assert!(r > 250 && g < 5 && b < 5, "{r} {g} {b}");
    }

    #[test]
    fn rgb_round_trips_within_rounding_and_regions_are_clipped() {
        let mut img = RgbImage::new(32, 18);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([(x * 8) as u8, (y * 14) as u8, 128]);
        }
        let frame = YuvFrame::from_rgb(&img);
        assert_eq!(frame.byte_len(), 32 * 18 + 2 * 16 * 9);
        // Even pixels carry their own chroma: they come back within rounding.
        let back = frame.to_rgb();
        for (a, b) in img.get_pixel(10, 6).0.iter().zip(back.get_pixel(10, 6).0.iter()) {
            assert!(
                (i32::from(*a) - i32::from(*b)).abs() <= 3,
                "{:?} vs {:?}",
                img.get_pixel(10, 6),
                back.get_pixel(10, 6)
            );
        }
        let region = frame.region_rgb(30, 10, 100, 100);
        assert_eq!(region.dimensions(), (2, 8));
        assert_eq!(region.get_pixel(0, 0), back.get_pixel(30, 10));
    }

    #[test]
    fn padded_decoder_planes_are_copied_tightly_and_short_ones_refused() {
        let (w, h) = (16, 16);
        let y = vec![50u8; 32 * h];
        let c = vec![128u8; 16 * 8];
        let f = YuvFrame::from_planes(w, h, [&y, &c, &c], [32, 16, 16]).unwrap();
        assert_eq!(f.luma().len(), 256);
        assert!(matches!(
            YuvFrame::from_planes(w, h, [&y[..100], &c, &c], [32, 16, 16]),
            Err(FrameError::ShortPlane { plane: "Y", .. })
        ));
        assert!(matches!(YuvFrame::from_planes(4, 4, [&y, &c, &c], [4, 2, 2]), Err(FrameError::BadDimensions { .. })));
    }
}
