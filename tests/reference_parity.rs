//! The Rust pipeline against an independent Python reference (tests/reference/face_reference.py, run in
//! the models' venv with onnxruntime, numpy and Pillow): same boxes, same embeddings of the same crop.

mod common;

use std::collections::HashMap;
use std::process::Command;

use panoptes_engine::embed::cosine;
use panoptes_engine::pipeline::PipelineConfig;

fn reference(mode: &str, paths: &[String]) -> serde_json::Value {
    let out = Command::new(common::venv_python())
        .arg(common::root().join("tests/reference/face_reference.py"))
        .arg(mode)
        .arg(common::models_dir())
        .args(paths)
        .output()
        .expect("run the Python reference");
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("reference JSON")
}

#[test]
fn detector_boxes_agree_with_the_python_reference_within_a_few_pixels() {
    let names = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "t1.jpg"];
    let paths: Vec<String> = names.iter().map(|n| common::path_str(&common::photo(n))).collect();
    let py = reference("detect", &paths);
    let mut p = common::pipeline();
    for path in &paths {
        let img = p.decode(&std::fs::read(path).unwrap()).unwrap();
        let ours = p.detector().detect(&img).unwrap();
        let theirs = py[path].as_array().expect("faces array");
        assert_eq!(ours.len(), theirs.len(), "{path}: face count differs");
        for t in theirs {
            let b: Vec<f32> = t["box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let tb = panoptes_engine::geometry::BBox { x: b[0], y: b[1], width: b[2], height: b[3] };
            let best = ours.iter().max_by(|a, c| a.bbox.iou(&tb).total_cmp(&c.bbox.iou(&tb))).unwrap();
            // Resampling differs (Pillow vs fast_image_resize), so allow 3 px or 2 % of the face.
            let tol = 3.0f32.max(0.02 * tb.width);
            for (o, t) in [
                (best.bbox.x, tb.x),
                (best.bbox.y, tb.y),
                (best.bbox.right(), tb.right()),
                (best.bbox.bottom(), tb.bottom()),
            ] {
                assert!((o - t).abs() <= tol, "{path}: box edge {o:.1} vs reference {t:.1} (tolerance {tol:.1})");
            }
            let ts = t["score"].as_f64().unwrap() as f32;
            assert!((best.score - ts).abs() < 0.03, "{path}: score {} vs {ts}", best.score);
        }
    }
}

/// Each shipped embedder's vectors of the engine's own aligned crops, against the reference's.
fn embeddings_agree(embedder: &str, mode: &str, dim: usize) {
    let dir = common::temp_dir(&format!("parity-{embedder}"));
    let config = PipelineConfig { embedder: embedder.into(), ..PipelineConfig::default() };
    let mut p = common::pipeline_with(&config);
    let mut ours: HashMap<String, Vec<f32>> = HashMap::new();
    for name in ["obama.jpg", "biden.jpg", "t1.jpg"] {
        for (i, f) in p.analyze_bytes(&common::photo_bytes(name)).unwrap().into_iter().enumerate() {
            let crop = dir.join(format!("{name}-{i}.png"));
            f.aligned.image.save(&crop).unwrap();
            ours.insert(common::path_str(&crop), f.embedding);
        }
    }
    assert_eq!(ours.len(), 8);
    let paths: Vec<String> = ours.keys().cloned().collect();
    let py = reference(mode, &paths);
    for (path, v) in &ours {
        let theirs: Vec<f32> = py[path].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert_eq!((v.len(), theirs.len()), (dim, dim), "{embedder}: vector lengths");
        let s = cosine(v, &theirs);
        assert!(s >= 0.999, "{embedder}, {path}: cosine {s:.5} to the reference embedding");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn mobilefacenet_embeddings_of_the_same_aligned_crop_agree_with_the_python_reference() {
    embeddings_agree("mobilefacenet", "embed", 192);
}

#[test]
fn sface_embeddings_of_the_same_aligned_crop_agree_with_the_python_reference() {
    embeddings_agree("sface", "embed-sface", 128);
}
