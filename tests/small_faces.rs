//! Small faces in large frames: ~40 px faces in a 1920×1080 frame are found when tiling is on.

mod common;

use panoptes_engine::detect::tiling::TilingConfig;
use panoptes_engine::detect::{DetectorConfig, FaceDetector};
use panoptes_engine::runtime::SessionSettings;

/// t1.jpg (six faces of ~95–135 px) shrunk so its faces are ~40 px, pasted into a grey 1080p frame.
fn crowd_frame(scale: f32) -> (image::RgbImage, f32) {
    let mut p = common::pipeline();
    let t1 = p.decode(&common::photo_bytes("t1.jpg")).unwrap();
    let mean_face: f32 = {
        let faces = p.detector().detect(&t1).unwrap();
        faces.iter().map(|f| f.bbox.width).sum::<f32>() / faces.len() as f32
    };
    let (w, h) = ((t1.width() as f32 * scale) as u32, (t1.height() as f32 * scale) as u32);
    let small = image::imageops::resize(&t1, w, h, image::imageops::FilterType::Triangle);
    let mut frame = image::RgbImage::from_pixel(1920, 1080, image::Rgb([90, 90, 90]));
    image::imageops::overlay(&mut frame, &small, 700, 500);
    (frame, mean_face * scale)
}

fn detector(tiling: bool) -> FaceDetector {
    let config =
        DetectorConfig { tiling: TilingConfig { enabled: tiling, ..Default::default() }, ..Default::default() };
    FaceDetector::load(&common::runtime(), &common::models_dir(), config, &SessionSettings::default()).unwrap()
}

#[test]
fn tiling_finds_40px_faces_in_a_1080p_frame_that_the_whole_frame_pass_misses() {
    let (frame, face_px) = crowd_frame(0.38);
    assert!((35.0..=48.0).contains(&face_px), "faces are {face_px:.0} px");
    let whole = detector(false).detect(&frame).unwrap();
    let tiled = detector(true).detect(&frame).unwrap();
    eprintln!("faces of ~{face_px:.0} px: whole frame {} / tiled {}", whole.len(), tiled.len());
    assert!(whole.len() <= 1, "without tiles the 192 px input should not resolve {face_px:.0} px faces");
    assert!(tiled.len() >= 5, "tiling found only {} of 6 faces", tiled.len());
    // every face lies where t1 was pasted, and none is reported twice across tile overlaps
    for f in &tiled {
        let c = f.bbox.center();
        assert!(c.x > 700.0 && c.y > 500.0, "{c:?}");
        assert!(f.bbox.width > 20.0 && f.bbox.width < 80.0, "{:?}", f.bbox);
    }
    for i in 0..tiled.len() {
        for j in i + 1..tiled.len() {
            assert!(tiled[i].bbox.iou(&tiled[j].bbox) < 0.3, "duplicate face across tiles");
        }
    }
}
