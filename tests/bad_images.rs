//! Bad input to the image path: each case gets its own error, never a panic.

mod common;

use panoptes_engine::enrollment::{select_face, EnrollError, EnrollmentPolicy};
use panoptes_engine::image_input::ImageError;
use panoptes_engine::pipeline::PipelineError;

fn image_error(bytes: &[u8]) -> ImageError {
    let mut p = common::pipeline();
    match p.analyze_bytes(bytes) {
        Err(PipelineError::Image(e)) => e,
        Err(other) => panic!("expected an image error, got {other}"),
        Ok(faces) => panic!("expected an image error, got {} faces", faces.len()),
    }
}

/// A PNG consisting of a valid signature and IHDR chunk only, claiming the given size.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&crc32fast::hash(&chunk).to_be_bytes());
    out
}

#[test]
fn a_zero_byte_file_is_empty() {
    assert_eq!(image_error(&[]), ImageError::Empty);
}

#[test]
fn a_truncated_jpeg_is_reported_as_truncated() {
    let full = common::photo_bytes("obama.jpg");
    assert_eq!(image_error(&full[..full.len() / 2]), ImageError::TruncatedJpeg);
}

#[test]
fn a_20000_pixel_png_header_is_refused_before_decoding() {
    match image_error(&png_header(20_000, 20_000)) {
        ImageError::DimensionsTooLarge { width, height, .. } => {
            assert_eq!((width, height), (20_000, 20_000))
        }
        other => panic!("expected DimensionsTooLarge, got {other:?}"),
    }
}

#[test]
fn a_png_cut_after_its_header_is_corrupt() {
    // A plausible size passes the size check and then fails on the missing pixel data.
    assert!(matches!(image_error(&png_header(64, 64)), ImageError::Corrupt { format: "PNG", .. }));
}

#[test]
fn random_bytes_and_other_formats_are_unsupported() {
    assert_eq!(image_error(b"GIF89a\x01\x00\x01\x00"), ImageError::UnsupportedFormat);
    let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    assert_eq!(image_error(&noise), ImageError::UnsupportedFormat);
}

#[test]
fn an_image_with_no_face_finds_none_and_enrollment_says_so() {
    // A smooth gradient with a few shapes: a valid photo without any face.
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        let inside = (x / 80 + y / 80) % 3 == 0;
        image::Rgb([(x / 3) as u8, (y / 2) as u8, if inside { 200 } else { 40 }])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode_image(&img).unwrap();
    let mut p = common::pipeline();
    let faces = p.analyze_bytes(&jpeg).expect("a valid image");
    assert!(faces.is_empty(), "found {} faces in a gradient", faces.len());
    assert!(matches!(select_face(&faces, &EnrollmentPolicy::default()), Err(EnrollError::NoFace)));
}

#[test]
fn enrollment_refuses_group_photos_and_small_faces() {
    let mut p = common::pipeline();
    let group = p.analyze_bytes(&common::photo_bytes("t1.jpg")).unwrap();
    assert!(matches!(select_face(&group, &EnrollmentPolicy::default()), Err(EnrollError::SeveralFaces(6))));
    let one = p.analyze_bytes(&common::photo_bytes("obama.jpg")).unwrap();
    let strict = EnrollmentPolicy { min_face_px: 10_000.0, ..Default::default() };
    assert!(matches!(select_face(&one, &strict), Err(EnrollError::FaceTooSmall { .. })));
    assert!(select_face(&one, &EnrollmentPolicy::default()).is_ok());
}
