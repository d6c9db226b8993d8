//! `panoptes eval`: how well the engine recognises and finds faces, measured.
//!
//! - `eval recognition --photos DIR --pairs FILE`: every photo's largest face is embedded; each pair
//!   (file_x, file_y, same[, condition]) is scored by cosine similarity; the report gives accuracy at
//!   the configured threshold, TAR at FAR 1 % and 0.1 %, the best threshold's accuracy, ROC AUC, the
//!   figures per condition, and every photo refused with the reason.
//! - `eval detection`: the test group photo (six faces) shrunk until its faces are 60 … 20 px, at
//!   three light levels, pasted into a 1280×720 scene; faces found / present, false detections and
//!   time per frame, for each way the detector can scan a frame.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use image::RgbImage;
use panoptes::Settings;
use panoptes_engine::detect::tiling::{TilingConfig, View};
use panoptes_engine::detect::{DetectorModel, Face, Picture};
use panoptes_engine::evaluation::{verification_report, ScoredPair, VerificationReport};
use panoptes_engine::frame::YuvFrame;
use panoptes_engine::geometry::BBox;
use panoptes_engine::pipeline::FacePipeline;
use panoptes_engine::runtime::Runtime;
use panoptes_engine::track::quality::{face_quality, Quality};
use serde::Serialize;

/// The false-accept rates TAR is reported at.
const FARS: [f64; 2] = [0.01, 0.001];

/// One line of the pairs file.
struct PairSpec {
    x: String,
    y: String,
    same: bool,
    condition: Option<String>,
}

fn parse_pairs(text: &str, file: &Path) -> Result<Vec<PairSpec>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let same = match fields.get(2).map(|s| s.to_ascii_lowercase()) {
            Some(s) if matches!(s.as_str(), "yes" | "true" | "1") => true,
            Some(s) if matches!(s.as_str(), "no" | "false" | "0") => false,
            // A header line.
            _ if out.is_empty() && n == 0 => continue,
            other => bail!(
                "{}:{}: expected file_x,file_y,same(yes|no)[,condition]; the third field is {other:?}",
                file.display(),
                n + 1
            ),
        };
        if fields.len() < 3 || fields[0].is_empty() || fields[1].is_empty() {
            bail!("{}:{}: expected file_x,file_y,same(yes|no)[,condition]", file.display(), n + 1);
        }
        let condition = fields.get(3).filter(|c| !c.is_empty()).map(|c| c.to_string());
        out.push(PairSpec { x: fields[0].into(), y: fields[1].into(), same, condition });
    }
    if out.is_empty() {
        bail!("{} holds no pairs", file.display());
    }
    Ok(out)
}

#[derive(Serialize)]
struct Refused {
    photo: String,
    reason: String,
}

#[derive(Serialize)]
struct ConditionFigures {
    condition: String,
    genuine_pairs: usize,
    impostor_pairs: usize,
    /// Same-person pairs accepted at the threshold.
    tar: Option<f64>,
    /// Different-person pairs accepted at the threshold.
    far: Option<f64>,
    /// The probes' face quality as the tracker judges it (mean over pairs; 0..1).
    sharpness: f32,
    frontal: f32,
    /// Same-person pairs whose probe is below `tracking.min_sharpness`: a track would not be
    /// embedded from such a face (it waits for a better one).
    genuine_below_min_sharpness: usize,
}

#[derive(Serialize)]
struct RecognitionReport {
    photos: usize,
    pairs: usize,
    /// Pairs left out because a photo of theirs was refused.
    pairs_skipped: usize,
    refused: Vec<Refused>,
    #[serde(flatten)]
    figures: Option<VerificationReport>,
    by_condition: Vec<ConditionFigures>,
}

pub fn recognition(
    settings: &Settings,
    photos: &Path,
    pairs_file: &Path,
    threshold: Option<f32>,
    json: bool,
) -> Result<()> {
    let text = std::fs::read_to_string(pairs_file).with_context(|| format!("reading {}", pairs_file.display()))?;
    let specs = parse_pairs(&text, pairs_file)?;
    let min_sharpness = settings.tracking.min_sharpness;
    let mut pipeline = panoptes::context::load_pipeline(settings)?;
    let threshold = threshold.unwrap_or(pipeline.model_info().judgement.match_threshold);

    // Each photo once: its largest face's embedding, or why there is none.
    let mut names: Vec<&str> = specs.iter().flat_map(|p| [p.x.as_str(), p.y.as_str()]).collect();
    names.sort_unstable();
    names.dedup();
    let mut embeddings: HashMap<&str, (Vec<f32>, Quality)> = HashMap::new();
    let mut refused = Vec::new();
    for name in &names {
        let path = photos.join(name);
        let result = std::fs::read(&path)
            .map_err(|e| format!("cannot read it: {e}"))
            .and_then(|bytes| pipeline.decode(&bytes).map_err(|e| e.to_string()))
            .and_then(|image| {
                let faces = pipeline.analyze(&image).map_err(|e| e.to_string())?;
                let largest = faces
                    .into_iter()
                    .max_by(|a, b| a.face.bbox.area().total_cmp(&b.face.bbox.area()))
                    .ok_or_else(|| "no face found".to_string())?;
                // The quality the tracker would give this face in a video frame.
                let quality = face_quality(&largest.face, &YuvFrame::from_rgb(&image));
                Ok((largest.embedding, quality))
            });
        match result {
            Ok(e) => {
                embeddings.insert(name, e);
            }
            Err(reason) => refused.push(Refused { photo: name.to_string(), reason }),
        }
    }

    let mut scored = Vec::new();
    let mut by_condition: BTreeMap<String, Vec<(ScoredPair, Quality)>> = BTreeMap::new();
    for spec in &specs {
        let (Some((x, qx)), Some((y, qy))) = (embeddings.get(spec.x.as_str()), embeddings.get(spec.y.as_str())) else {
            continue;
        };
        let pair = ScoredPair { score: x.iter().zip(y).map(|(a, b)| a * b).sum(), same: spec.same };
        scored.push(pair);
        if let Some(c) = &spec.condition {
            // The probe is the pair's first photo (the condition is its); its quality is what the
            // tracker would judge.
            let _ = qy;
            by_condition.entry(c.clone()).or_default().push((pair, *qx));
        }
    }
    let by_condition = by_condition
        .into_iter()
        .map(|(condition, pairs)| {
            let rate = |same: bool| {
                let kind: Vec<&ScoredPair> = pairs.iter().map(|(p, _)| p).filter(|p| p.same == same).collect();
                (
                    kind.len(),
                    (!kind.is_empty())
                        .then(|| kind.iter().filter(|p| p.score >= threshold).count() as f64 / kind.len() as f64),
                )
            };
            let ((g, tar), (i, far)) = (rate(true), rate(false));
            let mean = |f: fn(&Quality) -> f32| pairs.iter().map(|(_, q)| f(q)).sum::<f32>() / pairs.len() as f32;
            let genuine_below_min_sharpness =
                pairs.iter().filter(|(p, q)| p.same && q.sharpness < min_sharpness).count();
            ConditionFigures {
                condition,
                genuine_pairs: g,
                impostor_pairs: i,
                tar,
                far,
                sharpness: mean(|q| q.sharpness),
                frontal: mean(|q| q.frontal),
                genuine_below_min_sharpness,
            }
        })
        .collect();
    let report = RecognitionReport {
        photos: names.len(),
        pairs: scored.len(),
        pairs_skipped: specs.len() - scored.len(),
        refused,
        figures: verification_report(&scored, threshold, &FARS),
        by_condition,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_recognition(&report);
    }
    if report.figures.is_none() {
        bail!("the pairs left after refusals need at least one same-person and one different-person pair");
    }
    Ok(())
}

fn pct(v: f64) -> String {
    format!("{:.1} %", v * 100.0)
}

fn print_recognition(r: &RecognitionReport) {
    println!("{} photos, {} pairs scored, {} skipped (a photo refused)", r.photos, r.pairs, r.pairs_skipped);
    for f in &r.refused {
        println!("  refused {}: {}", f.photo, f.reason);
    }
    let Some(f) = &r.figures else { return };
    println!("{} same-person pairs, {} different-person pairs", f.genuine_pairs, f.impostor_pairs);
    println!("at threshold {:.3}: accuracy {}, TAR {}, FAR {}", f.threshold, pct(f.accuracy), pct(f.tar), pct(f.far));
    println!("best threshold {:.3}: accuracy {}", f.best_threshold, pct(f.best_accuracy));
    for t in &f.tar_at_far {
        match (t.tar, t.threshold) {
            (Some(tar), Some(th)) => println!("TAR at FAR {}: {} (threshold {:.3})", pct(t.far), pct(tar), th),
            _ => println!("TAR at FAR {}: not measurable with {} different-person pairs", pct(t.far), f.impostor_pairs),
        }
    }
    println!("ROC AUC {:.4}", f.roc_auc);
    println!(
        "scores: same person p5 {:.3}, median {:.3}; different persons median {:.3}, p99 {:.3}, highest {:.3}",
        f.genuine_p5, f.genuine_p50, f.impostor_p50, f.impostor_p99, f.impostor_max
    );
    if !r.by_condition.is_empty() {
        println!("\nby condition, at threshold {:.3} (probe quality as the tracker judges it):", f.threshold);
        println!(
            "{:<24} {:>8} {:>9} {:>10} {:>9} {:>10} {:>8} {:>14}",
            "condition", "genuine", "TAR", "impostor", "FAR", "sharpness", "frontal", "not embedded¹"
        );
        for c in &r.by_condition {
            let show = |v: Option<f64>| v.map_or("—".to_string(), pct);
            println!(
                "{:<24} {:>8} {:>9} {:>10} {:>9} {:>10.2} {:>8.2} {:>14}",
                c.condition,
                c.genuine_pairs,
                show(c.tar),
                c.impostor_pairs,
                show(c.far),
                c.sharpness,
                c.frontal,
                c.genuine_below_min_sharpness
            );
        }
        println!(
            "¹ same-person pairs whose probe is below tracking.min_sharpness: a track that has shown a sharper face is not embedded from it"
        );
    }
}

/// One way of scanning a frame: a model over the whole frame (with tiles or not), and a model that
/// looks closer at the region where the faces appeared, as the motion gate hands it on.
struct Scan {
    name: &'static str,
    whole: DetectorModel,
    tiles: bool,
    region: Option<DetectorModel>,
}

const SCANS: [Scan; 6] = [
    Scan { name: "full-range", whole: DetectorModel::FullRange, tiles: false, region: None },
    Scan { name: "back-256", whole: DetectorModel::Back, tiles: false, region: None },
    Scan { name: "full-range + tiles (480)", whole: DetectorModel::FullRange, tiles: true, region: None },
    Scan { name: "back-256 + tiles (480)", whole: DetectorModel::Back, tiles: true, region: None },
    Scan {
        name: "full-range + region full-range",
        whole: DetectorModel::FullRange,
        tiles: false,
        region: Some(DetectorModel::FullRange),
    },
    Scan {
        name: "full-range + region back-256",
        whole: DetectorModel::FullRange,
        tiles: false,
        region: Some(DetectorModel::Back),
    },
];

/// Face sizes (mean width, px) and light levels the group is shown at.
const SIZES: [f32; 6] = [60.0, 48.0, 40.0, 32.0, 26.0, 20.0];
const LIGHTS: [f32; 3] = [1.0, 0.45, 0.25];

#[derive(Serialize)]
struct DetectionRow {
    scan: &'static str,
    light: f32,
    /// Faces found of those present, per size in `sizes`.
    found: Vec<usize>,
    present: usize,
    false_detections: usize,
    ms_per_frame: f64,
}

#[derive(Serialize)]
struct DetectionReport {
    frame: (u32, u32),
    sizes: Vec<f32>,
    rows: Vec<DetectionRow>,
}

/// A frame: the corridor-like background (a face-less crop of `scene`) with `group` pasted at
/// `at`, all scaled by `light`.
fn compose(background: &RgbImage, group: &RgbImage, at: (u32, u32), light: f32) -> RgbImage {
    let mut frame = background.clone();
    image::imageops::overlay(&mut frame, group, i64::from(at.0), i64::from(at.1));
    for p in frame.pixels_mut() {
        p.0 = p.0.map(|c| (f32::from(c) * light).round().clamp(0.0, 255.0) as u8);
    }
    frame
}

pub fn detection(settings: &Settings, photos: &Path, json: bool) -> Result<()> {
    let read = |name: &str| -> Result<RgbImage> {
        let path: PathBuf = photos.join(name);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("reading {} (models/fetch.sh puts it there)", path.display()))?;
        Ok(panoptes_engine::image_input::decode_rgb(&bytes, &settings.pipeline.images)?)
    };
    let group = read("t1.jpg")?;
    let scene = read("obama2.jpg")?;
    let (w, h) = (1280u32, 720u32);
    // The lower-left third of the portrait holds no face: a plausible wall.
    let wall =
        image::imageops::crop_imm(&scene, 0, scene.height() * 2 / 3, scene.width() / 3, scene.height() / 3).to_image();
    let background = image::imageops::resize(&wall, w, h, image::imageops::FilterType::Triangle);

    let runtime = Runtime::load(&settings.models.onnxruntime)?;
    // Each way of scanning as the engine runs it: a pipeline whose detectors are set so.
    let load = |scan: &Scan| -> Result<FacePipeline> {
        let mut config = settings.pipeline.clone();
        config.detector.model = scan.whole;
        config.detector.tiling = TilingConfig { enabled: scan.tiles, ..TilingConfig::default() };
        config.detector.region_model = scan.region;
        Ok(FacePipeline::load(&runtime, &settings.models.dir, &config)?)
    };
    // Ground truth: the group photo at full size, where every face is large.
    let truth = load(&SCANS[0])?.detector().detect(&group)?;
    if truth.len() != 6 {
        bail!("the group photo t1.jpg should show 6 faces at full size; the detector found {}", truth.len());
    }
    let mean_face = truth.iter().map(|f| f.bbox.width).sum::<f32>() / truth.len() as f32;

    let mut rows = Vec::new();
    for scan in &SCANS {
        let mut pipeline = load(scan)?;
        for &light in &LIGHTS {
            let mut found = Vec::new();
            let (mut false_detections, mut spent, mut frames) = (0, 0.0, 0);
            for &size in &SIZES {
                let k = size / mean_face;
                let (gw, gh) = ((group.width() as f32 * k) as u32, (group.height() as f32 * k) as u32);
                let small = image::imageops::resize(&group, gw, gh, image::imageops::FilterType::Triangle);
                let at = (w / 2 - gw / 2 + 173, h / 2 - gh / 2 + 61);
                let frame = compose(&background, &small, at, light);
                let expected: Vec<BBox> = truth
                    .iter()
                    .map(|f| BBox {
                        x: at.0 as f32 + f.bbox.x * k,
                        y: at.1 as f32 + f.bbox.y * k,
                        width: f.bbox.width * k,
                        height: f.bbox.height * k,
                    })
                    .collect();
                let regions = vec![vec![View { x: at.0, y: at.1, width: gw, height: gh }]];
                let started = Instant::now();
                let faces: Vec<Face> = pipeline
                    .detect_frames(&[Picture::Rgb(&frame)], &regions, settings.pipeline.detector.score_threshold)?
                    .pop()
                    .unwrap_or_default();
                spent += started.elapsed().as_secs_f64();
                frames += 1;
                let hit = |b: &BBox| faces.iter().any(|f| f.bbox.iou(b) >= 0.3);
                found.push(expected.iter().filter(|b| hit(b)).count());
                false_detections += faces.iter().filter(|f| !expected.iter().any(|b| f.bbox.iou(b) >= 0.3)).count();
            }
            rows.push(DetectionRow {
                scan: scan.name,
                light,
                found,
                present: truth.len(),
                false_detections,
                ms_per_frame: spent * 1000.0 / frames as f64,
            });
        }
    }
    let report = DetectionReport { frame: (w, h), sizes: SIZES.to_vec(), rows };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("faces found of 6 in a {w}×{h} frame, by face width; light 1 = the photo's own, 0.25 = a quarter of it");
    let sizes: Vec<String> = SIZES.iter().map(|s| format!("{s:.0} px")).collect();
    println!(
        "{:<32} {:>5} {} {:>7} {:>9}",
        "scan",
        "light",
        sizes.iter().map(|s| format!("{s:>6}")).collect::<String>(),
        "false",
        "ms/frame"
    );
    for r in &report.rows {
        let found: String = r.found.iter().map(|n| format!("{:>6}", n)).collect();
        println!("{:<32} {:>5.2} {found} {:>7} {:>9.1}", r.scan, r.light, r.false_detections, r.ms_per_frame);
    }
    Ok(())
}
