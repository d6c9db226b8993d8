//! Per-stage cost of the face pipeline on real photos and real models (ONNX Runtime on the CPU, 2
//! intra-op threads as configured by default). Needs scripts/setup.sh to have fetched the models.
//! cargo bench -p panoptes-engine --bench pipeline

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use panoptes_engine::align::{align_with_keypoints, mesh::MeshRefiner};
use panoptes_engine::detect::{DetectorConfig, DetectorModel, FaceDetector};
use panoptes_engine::embed::{self, Embedder};
use panoptes_engine::image_input::{decode_rgb, ImageLimits};
use panoptes_engine::runtime::{Runtime, SessionSettings};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn photo(name: &str) -> image::RgbImage {
    let bytes = std::fs::read(root().join("tests/data/photos").join(name)).expect("test photos: run scripts/setup.sh");
    decode_rgb(&bytes, &ImageLimits::default()).expect("decode")
}

fn stages(c: &mut Criterion) {
    let rt = Runtime::load(&root().join(".local/onnxruntime/libonnxruntime.so"))
        .expect("ONNX Runtime: run scripts/setup.sh");
    let models = root().join("models/onnx");
    let settings = SessionSettings::default();
    let t1 = photo("t1.jpg");
    let obama = photo("obama2.jpg");
    let jpeg = std::fs::read(root().join("tests/data/photos/obama2.jpg")).expect("photo");

    let mut g = c.benchmark_group("pipeline");
    g.sample_size(30);
    g.bench_function("decode_jpeg_obama2_960x720", |b| {
        b.iter(|| decode_rgb(&jpeg, &ImageLimits::default()).expect("decode"))
    });

    for model in [DetectorModel::FullRange, DetectorModel::Back] {
        let mut det = FaceDetector::load(&rt, &models, DetectorConfig { model, ..Default::default() }, &settings)
            .expect("detector");
        g.bench_function(format!("detect_{model:?}_t1_1280x886"), |b| b.iter(|| det.detect(&t1).expect("detect")));
    }
    let mut batched = FaceDetector::load(&rt, &models, DetectorConfig::default(), &settings).expect("detector");
    g.bench_function("detect_FullRange_batch4_per_batch", |b| {
        b.iter(|| batched.detect_batch(&[&t1, &obama, &t1, &obama]).expect("detect"))
    });

    let mut det = FaceDetector::load(&rt, &models, DetectorConfig::default(), &settings).expect("detector");
    let face = det.detect(&obama).expect("detect")[0];
    g.bench_function("align_keypoints_112", |b| b.iter(|| align_with_keypoints(&obama, &face).expect("align")));
    let mut mesh = MeshRefiner::load(&rt, &models, &settings).expect("mesh");
    g.bench_function("align_mesh_refine", |b| b.iter(|| mesh.refine(&obama, &face).expect("mesh")));

    let crop = align_with_keypoints(&obama, &face).expect("align").image;
    for name in [embed::SFACE, embed::MOBILEFACENET] {
        let spec = embed::resolve_spec(name, None).expect("built-in embedder");
        let mut emb = Embedder::load(&rt, &models, &spec, &settings).expect("embedder");
        g.bench_function(format!("embed_{name}_1"), |b| b.iter(|| emb.embed(&[&crop]).expect("embed")));
        let batch = [&crop; 8];
        g.bench_function(format!("embed_{name}_batch8_per_batch"), |b| b.iter(|| emb.embed(&batch).expect("embed")));
    }
    g.finish();
}

/// Decoding a 720p clip (ffmpeg/x264 from a real photo) with each backend, per frame; pictures are
/// decoded but not copied out (as for frames no analysis samples).
fn decode(c: &mut Criterion) {
    use panoptes_engine::decode::{self, Codec, DecoderBackend};
    use panoptes_engine::source::annexb::access_units;
    let dir = std::env::temp_dir().join(format!("panoptes-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut g = c.benchmark_group("decode_h264_720p");
    g.sample_size(20);
    for (name, opts) in [
        ("baseline", &["-profile:v", "baseline", "-g", "20"][..]),
        ("high_bframes", &["-profile:v", "high", "-bf", "3", "-g", "20"][..]),
    ] {
        let clip = dir.join(format!("{name}.h264"));
        let ok = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-loop", "1", "-i"])
            .arg(root().join("tests/data/photos/t1.jpg"))
            .args(["-t", "3", "-r", "10", "-vf", "scale=1280:720", "-c:v", "libx264", "-pix_fmt", "yuv420p"])
            .args(opts)
            .arg(&clip)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "ffmpeg is needed for the decode benchmark (scripts/setup.sh installs it)");
        let aus = access_units(&std::fs::read(&clip).expect("clip"));
        g.throughput(criterion::Throughput::Elements(aus.len() as u64));
        for backend in [DecoderBackend::Libav, DecoderBackend::Openh264] {
            g.bench_function(format!("{name}_{}", backend.as_str()), |b| {
                b.iter(|| {
                    let mut d = decode::open(backend, Codec::H264).expect("decoder");
                    let mut n = 0;
                    for (tag, au) in aus.iter().enumerate() {
                        n += d.decode(&au.data, au.is_keyframe, tag as u64, &mut |_, _| false).expect("decode").len();
                    }
                    n + d.flush(&mut |_, _| false).expect("flush").len()
                })
            });
        }
    }
    g.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, stages, decode);
criterion_main!(benches);
