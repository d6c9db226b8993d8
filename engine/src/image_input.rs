//! Decoding of user-supplied still images (JPEG, PNG, WebP) into RGB, with size limits checked before any
//! pixel buffer is allocated and EXIF orientation applied so that faces are upright.

use std::io::Cursor;

use image::{ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use serde::Deserialize;

/// What an input image may be; defaults suit phone photos and camera frames.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageLimits {
    /// Largest accepted encoded file, in bytes.
    pub max_bytes: usize,
    /// Largest accepted width or height, in pixels (checked from the header, before decoding).
    pub max_side: u32,
    /// Largest accepted width × height, in pixels.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self { max_bytes: 10 * 1024 * 1024, max_side: 12_000, max_pixels: 50_000_000 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("the image file is {bytes} bytes, more than the {max} bytes allowed")]
    FileTooLarge { bytes: usize, max: usize },
    #[error("unsupported image format: only JPEG, PNG and WebP are accepted")]
    UnsupportedFormat,
    #[error(
        "the image is {width}×{height} pixels, more than the {max_side} px per side or {max_pixels} pixels allowed"
    )]
    DimensionsTooLarge { width: u32, height: u32, max_side: u32, max_pixels: u64 },
    #[error("the JPEG data is truncated (no end-of-image marker after the last scan)")]
    TruncatedJpeg,
    #[error("the {format} image is corrupt or truncated: {detail}")]
    Corrupt { format: &'static str, detail: String },
}

impl ImageError {
    /// A stable machine-readable code, for API error bodies and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::Empty => "empty_image",
            ImageError::FileTooLarge { .. } => "image_file_too_large",
            ImageError::UnsupportedFormat => "unsupported_image_format",
            ImageError::DimensionsTooLarge { .. } => "image_too_large",
            ImageError::TruncatedJpeg => "truncated_image",
            ImageError::Corrupt { .. } => "corrupt_image",
        }
    }
}

/// Decodes a JPEG, PNG or WebP (lossy or lossless; an animation's first frame) into upright RGB.
pub fn decode_rgb(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::FileTooLarge { bytes: bytes.len(), max: limits.max_bytes });
    }
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)) => f,
        _ => return Err(ImageError::UnsupportedFormat),
    };
    let format_name = match format {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        _ => "WebP",
    };
    // The JPEG decoder fills a cut-off scan with grey instead of failing: check the markers ourselves.
    if format == ImageFormat::Jpeg && !jpeg_has_end_after_last_scan(bytes) {
        return Err(ImageError::TruncatedJpeg);
    }
    let corrupt = |e: image::ImageError| ImageError::Corrupt { format: format_name, detail: e.to_string() };

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4).saturating_add(64 << 20));
    reader.limits(decoder_limits);
    let mut decoder = match reader.into_decoder() {
        Ok(d) => d,
        Err(image::ImageError::Limits(_)) => {
            // Re-read just the header to report the real size.
            let (width, height) = header_dimensions(bytes, format).unwrap_or((0, 0));
            return Err(ImageError::DimensionsTooLarge {
                width,
                height,
                max_side: limits.max_side,
                max_pixels: limits.max_pixels,
            });
        }
        Err(e) => return Err(corrupt(e)),
    };
    let (width, height) = decoder.dimensions();
    if width == 0
        || height == 0
        || width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(ImageError::DimensionsTooLarge {
            width,
            height,
            max_side: limits.max_side,
            max_pixels: limits.max_pixels,
        });
    }
    let orientation = decoder.orientation().map_err(corrupt)?;
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

/// Size from the header alone: PNG's IHDR sits at a fixed offset; JPEG's frame header is found by the
/// decoder without allocating pixels.
fn header_dimensions(bytes: &[u8], format: ImageFormat) -> Option<(u32, u32)> {
    if format == ImageFormat::Png {
        let ihdr = bytes.get(12..24)?;
        if &ihdr[..4] != b"IHDR" {
            return None;
        }
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        return Some((be(&ihdr[4..8]), be(&ihdr[8..12])));
    }
    let mut header = ImageReader::with_format(Cursor::new(bytes), format);
    header.no_limits();
    header.into_dimensions().ok()
}

/// True when an end-of-image marker (FF D9) follows the last start-of-scan (FF DA). Entropy-coded data
/// cannot contain either marker (0xFF is byte-stuffed), so a cut-off file fails this test.
fn jpeg_has_end_after_last_scan(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    let last_eoi = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    match (last_sos, last_eoi) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_jpeg() -> Vec<u8> {
        let img = RgbImage::from_pixel(16, 16, image::Rgb([200, 100, 50]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut out).encode_image(&img).unwrap();
        out
    }

    #[test]
    fn empty_input_is_its_own_error() {
        assert_eq!(decode_rgb(&[], &ImageLimits::default()), Err(ImageError::Empty));
    }

    #[test]
    fn text_is_an_unsupported_format() {
        assert_eq!(decode_rgb(b"hello, not an image", &ImageLimits::default()), Err(ImageError::UnsupportedFormat));
    }

    #[test]
    fn a_complete_jpeg_decodes_and_a_cut_one_is_truncated() {
        let jpeg = tiny_jpeg();
        let img = decode_rgb(&jpeg, &ImageLimits::default()).unwrap();
        assert_eq!(img.dimensions(), (16, 16));
        let cut = &jpeg[..jpeg.len() - 20];
        assert_eq!(decode_rgb(cut, &ImageLimits::default()), Err(ImageError::TruncatedJpeg));
    }

    fn tiny_webp() -> Vec<u8> {
        let img = RgbImage::from_pixel(16, 16, image::Rgb([200, 100, 50]));
        let mut out = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .encode(img.as_raw(), 16, 16, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    #[test]
    fn webp_decodes_and_a_cut_one_is_corrupt() {
        let webp = tiny_webp();
        let img = decode_rgb(&webp, &ImageLimits::default()).unwrap();
        assert_eq!(img.get_pixel(3, 3), &image::Rgb([200, 100, 50]));
        let cut = &webp[..webp.len() / 2];
        assert!(matches!(decode_rgb(cut, &ImageLimits::default()), Err(ImageError::Corrupt { format: "WebP", .. })));
        let limits = ImageLimits { max_side: 8, ..Default::default() };
        assert!(matches!(decode_rgb(&webp, &limits), Err(ImageError::DimensionsTooLarge { width: 16, .. })));
    }

    #[test]
    fn file_size_limit_is_checked_first() {
        let limits = ImageLimits { max_bytes: 10, ..Default::default() };
        assert!(matches!(decode_rgb(&tiny_jpeg(), &limits), Err(ImageError::FileTooLarge { max: 10, .. })));
    }
}
