//! Face detection with the BlazeFace family: letterboxed views (whole frame and optional tiles) run as
//! one batch, anchors decoded to boxes and six keypoints, clusters merged by weighted NMS.

pub mod anchors;
pub mod letterbox;
pub mod nms;
pub mod tiling;

use std::path::Path;

use fast_image_resize::Resizer;
use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use self::anchors::{anchor_centres, AnchorLayer};
use self::letterbox::{letterbox_into, letterbox_yuv_into, Placement};
use self::tiling::{views, TilingConfig, View};
use crate::frame::YuvFrame;
use crate::geometry::{BBox, Point};
use crate::runtime::{io_name, ModelError, Provider, Runtime, SessionSettings};

/// Which BlazeFace model to run.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DetectorModel {
    /// 192×192, faces up to ~5 m from the camera (the default).
    #[default]
    FullRange,
    /// 256×256 "back camera" model: better on small faces.
    Back,
    /// 128×128 selfie model: faces close to the camera only.
    ShortRange,
}

impl DetectorModel {
    pub fn file_name(self) -> &'static str {
        match self {
            DetectorModel::FullRange => "face_detection_full_range.onnx",
            DetectorModel::Back => "face_detection_back.onnx",
            DetectorModel::ShortRange => "face_detection_short_range.onnx",
        }
    }

    pub fn input_side(self) -> u32 {
        match self {
            DetectorModel::FullRange => 192,
            DetectorModel::Back => 256,
            DetectorModel::ShortRange => 128,
        }
    }

    fn anchor_layers(self) -> &'static [AnchorLayer] {
        match self {
            DetectorModel::FullRange => &[AnchorLayer { grid: 48, per_cell: 1 }],
            DetectorModel::Back | DetectorModel::ShortRange => {
                &[AnchorLayer { grid: 16, per_cell: 2 }, AnchorLayer { grid: 8, per_cell: 6 }]
            }
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    pub model: DetectorModel,
    /// Minimum detection score (after the sigmoid) of a candidate.
    pub score_threshold: f32,
    /// IoU above which candidates are merged by weighted NMS.
    pub nms_iou: f32,
    /// Largest batch sent to ONNX Runtime at once.
    pub max_batch: usize,
    pub tiling: TilingConfig,
    /// The model that looks closer at the regions where something moved (video only), or none
    /// (`""` or `"none"` in the configuration).
    #[serde(deserialize_with = "model_or_none")]
    pub region_model: Option<DetectorModel>,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            model: DetectorModel::FullRange,
            score_threshold: 0.5,
            nms_iou: 0.3,
            max_batch: 16,
            tiling: TilingConfig::default(),
            region_model: Some(DetectorModel::Back),
        }
    }
}

/// A model name, or `""`/`"none"` for no model (TOML has no null).
fn model_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DetectorModel>, D::Error> {
    let name = String::deserialize(d)?;
    match name.as_str() {
        "" | "none" => Ok(None),
        other => DetectorModel::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(other)).map(Some),
    }
}

/// A detected face in image pixels. Keypoints: 0 eye on the image's left, 1 the other eye,
/// 2 nose tip, 3 mouth centre, 4 and 5 ear tragions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Face {
    pub bbox: BBox,
    pub score: f32,
    pub keypoints: [Point; 6],
}

/// What the detector can look at: a still image, or a decoded video frame kept in YUV.
#[derive(Clone, Copy)]
pub enum Picture<'a> {
    Rgb(&'a RgbImage),
    Yuv(&'a YuvFrame),
}

impl Picture<'_> {
    fn dimensions(&self) -> (u32, u32) {
        match self {
            Picture::Rgb(i) => i.dimensions(),
            Picture::Yuv(f) => f.dimensions(),
        }
    }
}

pub struct FaceDetector {
    session: Session,
    config: DetectorConfig,
    anchors: Vec<Point>,
    input: String,
    regressors: String,
    classifiers: String,
    resizer: Resizer,
    tensor: Vec<f32>,
    provider: Provider,
}

const MODEL: &str = "face detector";

impl FaceDetector {
    pub fn load(
        runtime: &Runtime,
        models_dir: &Path,
        config: DetectorConfig,
        settings: &SessionSettings,
    ) -> Result<Self, ModelError> {
        let path = models_dir.join(config.model.file_name());
        let (session, provider) = runtime.session_on(&path, settings)?;
        let input = io_name(&session, false, 0, MODEL)?;
        // The converted models name their outputs differently; the regressor output is the 16-wide one.
        let (a, b) = (io_name(&session, true, 0, MODEL)?, io_name(&session, true, 1, MODEL)?);
        let (regressors, classifiers) = if a.contains("class") { (b, a) } else { (a, b) };
        let anchors = anchor_centres(config.model.anchor_layers());
        Ok(Self {
            session,
            config,
            anchors,
            input,
            regressors,
            classifiers,
            resizer: Resizer::new(),
            tensor: Vec::new(),
            provider,
        })
    }

    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Where this detector's session runs (after any CUDA fallback).
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Faces in one image, best first.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Face>, ModelError> {
        Ok(self.detect_batch(&[image])?.pop().unwrap_or_default())
    }

    /// Faces in each of several images (e.g. frames of several cameras), run as shared batches.
    pub fn detect_batch(&mut self, images: &[&RgbImage]) -> Result<Vec<Vec<Face>>, ModelError> {
        let pictures: Vec<Picture> = images.iter().map(|i| Picture::Rgb(i)).collect();
        self.detect_pictures(&pictures, self.config.score_threshold)
    }

    /// Faces scoring at least `min_score` in each of several pictures, run as shared batches. A
    /// tracker asks for candidates below the configured threshold to keep faces it already follows.
    pub fn detect_pictures(&mut self, pictures: &[Picture], min_score: f32) -> Result<Vec<Vec<Face>>, ModelError> {
        let tiling = self.config.tiling.clone();
        self.scan(pictures, |w, h, _| views(w, h, &tiling), min_score)
    }

    /// Faces in regions of interest only (`regions[i]` for picture `i`, e.g. where something moved),
    /// each seen close (see [`tiling::region_view`]): small faces there are found at about their own
    /// resolution. Pictures without regions cost nothing.
    pub fn detect_regions(
        &mut self,
        pictures: &[Picture],
        regions: &[Vec<View>],
        min_score: f32,
    ) -> Result<Vec<Vec<Face>>, ModelError> {
        let side = self.config.model.input_side();
        let close = |w, h, i: usize| -> Vec<View> {
            regions.get(i).into_iter().flatten().filter_map(|r| tiling::region_view(w, h, *r, side)).collect()
        };
        self.scan(pictures, close, min_score)
    }

    /// Runs the views `views_of(width, height, index)` of every picture as shared batches.
    fn scan(
        &mut self,
        pictures: &[Picture],
        views_of: impl Fn(u32, u32, usize) -> Vec<View>,
        min_score: f32,
    ) -> Result<Vec<Vec<Face>>, ModelError> {
        let mut jobs: Vec<(usize, View)> = Vec::new();
        for (i, pic) in pictures.iter().enumerate() {
            let (w, h) = pic.dimensions();
            if w == 0 || h == 0 {
                continue;
            }
            jobs.extend(views_of(w, h, i).into_iter().map(|v| (i, v)));
        }
        let mut candidates: Vec<Vec<Face>> = vec![Vec::new(); pictures.len()];
        for chunk in jobs.chunks(self.config.max_batch.max(1)) {
            self.run_chunk(pictures, chunk, min_score, &mut candidates)?;
        }
        Ok(candidates.into_iter().map(|c| nms::weighted_nms(c, self.config.nms_iou)).collect())
    }

    fn run_chunk(
        &mut self,
        images: &[Picture],
        chunk: &[(usize, View)],
        min_score: f32,
        out: &mut [Vec<Face>],
    ) -> Result<(), ModelError> {
        let side = self.config.model.input_side();
        let per = (3 * side * side) as usize;
        self.tensor.resize(per * chunk.len(), 0.0);
        let mut placements = Vec::with_capacity(chunk.len());
        for (k, (i, view)) in chunk.iter().enumerate() {
            let tensor = &mut self.tensor[k * per..(k + 1) * per];
            let p = match images[*i] {
                Picture::Rgb(img) => letterbox_into(&mut self.resizer, img, *view, side, tensor),
                Picture::Yuv(frame) => letterbox_yuv_into(&mut self.resizer, frame, *view, side, tensor),
            }
            .map_err(|message| ModelError::Inference { model: MODEL, message })?;
            placements.push(p);
        }
        let infer_err = |e: ort::Error| ModelError::Inference { model: MODEL, message: e.to_string() };
        let input = TensorRef::from_array_view(([chunk.len(), 3, side as usize, side as usize], &self.tensor[..]))
            .map_err(infer_err)?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => input]).map_err(infer_err)?;
        let (_, reg) = outputs[self.regressors.as_str()].try_extract_tensor::<f32>().map_err(infer_err)?;
        let (_, cls) = outputs[self.classifiers.as_str()].try_extract_tensor::<f32>().map_err(infer_err)?;
        let n = self.anchors.len();
        if reg.len() != chunk.len() * n * 16 || cls.len() != chunk.len() * n {
            return Err(ModelError::Interface {
                model: MODEL.into(),
                message: format!(
                    "expected {} anchors × 16 regressors, got {} values",
                    n,
                    reg.len() / chunk.len().max(1)
                ),
            });
        }
        for (k, ((i, view), placement)) in chunk.iter().zip(&placements).enumerate() {
            let faces = decode(
                &reg[k * n * 16..(k + 1) * n * 16],
                &cls[k * n..(k + 1) * n],
                &self.anchors,
                side as f32,
                min_score,
            );
            let (img_w, img_h) = images[*i].dimensions();
            for f in faces {
                let face = to_image_coords(&f, placement);
                if is_tile_edge_cut(&face.bbox, *view, img_w, img_h) {
                    continue;
                }
                out[*i].push(face);
            }
        }
        Ok(())
    }
}

/// Decodes raw outputs into faces in normalised input coordinates.
pub fn decode(reg: &[f32], cls: &[f32], anchors: &[Point], side: f32, threshold: f32) -> Vec<Face> {
    let mut out = Vec::new();
    for (i, (anchor, logit)) in anchors.iter().zip(cls).enumerate() {
        let score = 1.0 / (1.0 + (-logit.clamp(-80.0, 80.0)).exp());
        if score < threshold {
            continue;
        }
        let r = &reg[i * 16..(i + 1) * 16];
        let (cx, cy) = (r[0] / side + anchor.x, r[1] / side + anchor.y);
        let (w, h) = (r[2] / side, r[3] / side);
        let mut keypoints = [Point::default(); 6];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = Point::new(r[4 + 2 * k] / side + anchor.x, r[5 + 2 * k] / side + anchor.y);
        }
        out.push(Face { bbox: BBox { x: cx - w / 2.0, y: cy - h / 2.0, width: w, height: h }, score, keypoints });
    }
    out
}

fn to_image_coords(f: &Face, p: &Placement) -> Face {
    let tl = p.to_image(Point::new(f.bbox.x, f.bbox.y));
    let br = p.to_image(Point::new(f.bbox.right(), f.bbox.bottom()));
    Face {
        bbox: BBox::from_corners(tl.x, tl.y, br.x, br.y),
        score: f.score,
        keypoints: f.keypoints.map(|k| p.to_image(k)),
    }
}

/// A face touching a tile border that is not also the image border is cut by the tile; the overlapping
/// neighbour (or the whole-frame view) sees it whole, so the cut copy is dropped.
fn is_tile_edge_cut(b: &BBox, v: View, img_w: u32, img_h: u32) -> bool {
    const MARGIN: f32 = 2.0;
    let whole = v.x == 0 && v.y == 0 && v.width == img_w && v.height == img_h;
    if whole {
        return false;
    }
    (v.x > 0 && b.x < v.x as f32 + MARGIN)
        || (v.y > 0 && b.y < v.y as f32 + MARGIN)
        || (v.x + v.width < img_w && b.right() > (v.x + v.width) as f32 - MARGIN)
        || (v.y + v.height < img_h && b.bottom() > (v.y + v.height) as f32 - MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_model_is_a_model_name_or_none() {
        let parse = |v: &str| serde_json::from_str::<DetectorConfig>(&format!("{{\"region_model\": {v}}}"));
        assert_eq!(parse("\"back\"").unwrap().region_model, Some(DetectorModel::Back));
        assert_eq!(parse("\"\"").unwrap().region_model, None);
        assert_eq!(parse("\"none\"").unwrap().region_model, None);
        assert!(parse("\"huge\"").unwrap_err().to_string().contains("huge"));
        assert_eq!(DetectorConfig::default().region_model, Some(DetectorModel::Back));
    }

    #[test]
    fn decode_applies_sigmoid_threshold_and_anchor_offsets() {
        let anchors = vec![Point::new(0.25, 0.25), Point::new(0.75, 0.75)];
        let mut reg = vec![0.0; 32];
        // second anchor: centre shifted by +19.2 px on a 192 input (= +0.1), 96 px box
        reg[16] = 19.2;
        reg[18] = 96.0;
        reg[19] = 96.0;
        let cls = vec![-3.0, 3.0];
        let faces = decode(&reg, &cls, &anchors, 192.0, 0.5);
        assert_eq!(faces.len(), 1);
        let f = faces[0];
        assert!((f.score - 0.952_574_1).abs() < 1e-5);
        assert!((f.bbox.center().x - 0.85).abs() < 1e-6);
        assert!((f.bbox.width - 0.5).abs() < 1e-6);
        assert_eq!(f.keypoints[0], Point::new(0.75, 0.75));
    }

    #[test]
    fn extreme_logits_do_not_overflow() {
        let anchors = vec![Point::new(0.5, 0.5)];
        let faces = decode(&[0.0; 16], &[1e30], &anchors, 128.0, 0.5);
        assert_eq!(faces.len(), 1);
        assert_eq!(faces[0].score, 1.0);
    }

    #[test]
    fn faces_cut_by_inner_tile_edges_are_dropped() {
        let tile = View { x: 100, y: 0, width: 200, height: 200 };
        let inside = BBox { x: 150.0, y: 50.0, width: 40.0, height: 40.0 };
        let cut = BBox { x: 280.0, ..inside };
        assert!(!is_tile_edge_cut(&inside, tile, 1000, 200));
        assert!(is_tile_edge_cut(&cut, tile, 1000, 200));
        // the image's own border is not a cut
        let edge = BBox { x: 0.0, ..inside };
        assert!(!is_tile_edge_cut(&edge, View { x: 0, y: 0, width: 200, height: 200 }, 1000, 200));
    }
}
