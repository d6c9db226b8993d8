//! Small faces in large frames: ~40 px faces in a 1920×1080 frame are found when tiling is on, and a
//! 30 px face walking through a 720p camera view is found by the default configuration (the region
//! model looking closer where something moved).

mod common;

use std::time::Duration;

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

/// A 30 px face walking through a 1280×720 camera view, on a file camera through the whole engine.
/// With the default configuration the motion gate hands the detector the region where it moved and
/// the region model finds it there in nearly every analysed frame (the whole-frame pass sees a 30 px
/// face at 4–5 px of its input, and finds it now and then at best).
#[actix_web::test]
async fn a_30px_face_walking_through_a_720p_view_is_found_by_the_default_configuration() {
    use common::scenes::{background, encode_camera_clip, head, scene};
    use panoptes_actors::scheduler::GetSchedulerStats;
    let mut p = common::pipeline();
    let bg = background(&p);
    let small = head(&mut p, "obama2.jpg", 30.0);
    let frames: Vec<_> = (0..60i64)
        .map(|i| match i {
            10..50 => scene(&bg, &[(&small, 300 + 8 * (i - 10), 330)], i as u32),
            _ => scene(&bg, &[], i as u32),
        })
        .collect();
    let clip = encode_camera_clip(frames, &common::temp_dir("small-face"), "walk-30px");

    let default = panoptes::Settings::default().pipeline.detector.region_model;
    assert_eq!(default, Some(panoptes_engine::detect::DetectorModel::Back));
    let mut faces_found = Vec::new();
    for region_model in [default, None] {
        let (store, db) = common::fresh_store().await;
        let mut settings = common::engine_settings(&db, "small-face");
        settings.pipeline.detector.region_model = region_model;
        store.create_camera("far end", &common::path_str(&clip), 5.0, true).await.unwrap();
        let engine = common::start_engine(settings).await;
        let stats = || async { engine.scheduler().send(GetSchedulerStats).await.unwrap().workers };
        // One pass of the 6 s clip, after the camera has started.
        common::eventually("the camera analyses frames", Duration::from_secs(20), stats, |w| {
            w.iter().map(|w| w.frames).sum::<u64>() > 0
        })
        .await;
        actix::clock::sleep(Duration::from_secs(7)).await;
        let w = stats().await;
        let (faces, tracks) = (w.iter().map(|w| w.faces).sum::<u64>(), w.iter().map(|w| w.tracks_started).sum::<u64>());
        eprintln!("region model {region_model:?}: {faces} faces detected, {tracks} tracks");
        faces_found.push((faces, tracks));
        engine.shutdown().await;
    }
    // About 20 analysed frames show the face.
    let (with, without) = (faces_found[0], faces_found[1]);
    assert!(with.0 >= 15 && with.1 >= 1, "the default found {with:?}");
    assert!(with.0 >= 3 * without.0, "the region model found {with:?}, the whole frame alone {without:?}");
}
