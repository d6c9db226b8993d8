//! The still-image pipeline on real photos and real models: who matches whom, how many faces.

mod common;

use panoptes_engine::embed::cosine;
use panoptes_engine::pipeline::FacePipeline;

const THRESHOLD: f32 = 0.55;

fn single_embedding(p: &mut FacePipeline, name: &str) -> Vec<f32> {
    let faces = p.analyze_bytes(&common::photo_bytes(name)).expect("analyze");
    assert_eq!(faces.len(), 1, "{name}: expected one face, found {}", faces.len());
    faces[0].embedding.clone()
}

#[test]
fn the_three_obama_photos_match_each_other_above_the_threshold() {
    let mut p = common::pipeline();
    let e: Vec<Vec<f32>> =
        ["obama.jpg", "obama2.jpg", "obama3.jpg"].iter().map(|n| single_embedding(&mut p, n)).collect();
    for i in 0..3 {
        for j in i + 1..3 {
            let s = cosine(&e[i], &e[j]);
            assert!(s >= THRESHOLD, "obama photos {i} and {j}: cosine {s:.3} below {THRESHOLD}");
        }
    }
}

#[test]
fn biden_and_tom_hanks_do_not_match_obama() {
    let mut p = common::pipeline();
    let obama = single_embedding(&mut p, "obama.jpg");
    let biden = single_embedding(&mut p, "biden.jpg");
    let s = cosine(&obama, &biden);
    assert!(s < THRESHOLD, "biden vs obama: cosine {s:.3} reaches the threshold");

    // InsightFace's Tom Hanks photo is already an aligned 112×112 ArcFace crop (the face fills the
    // frame, so no detector sees a face in it): it goes straight to the embedder.
    let hanks = p.decode(&common::photo_bytes("Tom_Hanks_54745.png")).unwrap();
    assert_eq!(hanks.dimensions(), (112, 112));
    let e = p.embedder().embed(&[&hanks]).unwrap().remove(0);
    let s = cosine(&obama, &e);
    assert!(s < THRESHOLD, "tom hanks vs obama: cosine {s:.3} reaches the threshold");
    // and he does match himself after a round trip through a padded frame and the full pipeline
    let mut canvas = image::RgbImage::from_pixel(448, 448, image::Rgb([128, 128, 128]));
    image::imageops::overlay(
        &mut canvas,
        &image::imageops::resize(&hanks, 224, 224, image::imageops::FilterType::Triangle),
        112,
        112,
    );
    let faces = p.analyze(&canvas).unwrap();
    assert_eq!(faces.len(), 1, "the padded crop should show one face");
    let again = cosine(&e, &faces[0].embedding);
    assert!(again >= THRESHOLD, "tom hanks re-detected: cosine {again:.3} to his crop");
}

#[test]
fn t1_yields_six_faces_with_the_full_range_model() {
    let mut p = common::pipeline();
    let faces = p.analyze_bytes(&common::photo_bytes("t1.jpg")).expect("analyze");
    assert_eq!(faces.len(), 6);
    for f in &faces {
        assert!(f.face.score >= 0.5);
        let n: f32 = f.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "embedding not unit length: {n}");
        assert!(f.aligned.image.dimensions() == (112, 112));
    }
    // distinct people in one photo never match each other
    for i in 0..faces.len() {
        for j in i + 1..faces.len() {
            assert!(cosine(&faces[i].embedding, &faces[j].embedding) < THRESHOLD);
        }
    }
}

#[test]
fn mesh_refinement_and_detector_keypoints_agree_on_identity() {
    let mut refined = common::pipeline();
    let mut plain = common::pipeline_with(&panoptes_engine::pipeline::PipelineConfig {
        align: panoptes_engine::align::AlignConfig { mesh_refinement: false, ..Default::default() },
        ..Default::default()
    });
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg"] {
        let a = refined.analyze_bytes(&common::photo_bytes(name)).unwrap();
        let b = plain.analyze_bytes(&common::photo_bytes(name)).unwrap();
        assert!(a[0].aligned.refined, "{name}: the mesh should refine a frontal face");
        assert!(!b[0].aligned.refined);
        let s = cosine(&a[0].embedding, &b[0].embedding);
        assert!(s > 0.8, "{name}: refined and keypoint-only alignment disagree (cosine {s:.3})");
    }
}

#[test]
fn a_batch_of_frames_gives_the_same_faces_as_one_frame_at_a_time() {
    let mut p = common::pipeline();
    let names = ["obama.jpg", "t1.jpg", "biden.jpg"];
    let images: Vec<_> = names.iter().map(|n| p.decode(&common::photo_bytes(n)).unwrap()).collect();
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let batched = p.analyze_batch(&refs).unwrap();
    assert_eq!(batched.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 6, 1]);
    for (img, faces) in images.iter().zip(&batched) {
        let single = p.analyze(img).unwrap();
        assert_eq!(single.len(), faces.len());
        for (a, b) in single.iter().zip(faces) {
            assert!((a.face.bbox.x - b.face.bbox.x).abs() < 0.5 && (a.face.bbox.y - b.face.bbox.y).abs() < 0.5);
            assert!(cosine(&a.embedding, &b.embedding) > 0.999);
        }
    }
}

#[test]
fn cuda_requested_without_a_cuda_runtime_falls_back_to_the_cpu() {
    let mut config = panoptes_engine::pipeline::PipelineConfig::default();
    config.session.provider = panoptes_engine::runtime::Provider::Cuda;
    let mut p = common::pipeline_with(&config);
    // The project's ONNX Runtime is the CPU build: the session must still load and work.
    assert_eq!(p.provider(), panoptes_engine::runtime::Provider::Cpu);
    assert_eq!(p.analyze_bytes(&common::photo_bytes("obama.jpg")).unwrap().len(), 1);
}
