//! The face pipeline: decode → detect → align → embed, for photos and for video frames.

use std::path::Path;

use image::RgbImage;
use serde::Deserialize;

use crate::align::{AlignConfig, AlignedFace, Aligner};
use crate::detect::nms::weighted_nms;
use crate::detect::tiling::{TilingConfig, View};
use crate::detect::{DetectorConfig, Face, FaceDetector, Picture};
use crate::embed::{Embedder, EmbedderCatalog, EmbedderEntry, ModelId, ModelInfo, DEFAULT_EMBEDDER};
use crate::frame::YuvFrame;
use crate::geometry::Point;
use crate::image_input::{decode_rgb, ImageError, ImageLimits};
use crate::runtime::{ModelError, Provider, Runtime, SessionSettings};

/// A face detected again on the region around it is known to be there: a weak score still counts.
const REDETECT_MIN_SCORE: f32 = 0.3;
/// The second detection must be the same face (a neighbour's may be in the region too).
const REDETECT_MIN_IOU: f32 = 0.3;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    pub detector: DetectorConfig,
    pub align: AlignConfig,
    /// The embedding model faces are compared with: a built-in one (`sface`, `mobilefacenet`) or one
    /// described in `embedders`.
    pub embedder: String,
    /// Per-model settings (file, input scaling, thresholds), over the built-in defaults.
    pub embedders: std::collections::BTreeMap<String, EmbedderEntry>,
    pub session: SessionSettings,
    pub images: ImageLimits,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            detector: DetectorConfig::default(),
            align: AlignConfig::default(),
            embedder: DEFAULT_EMBEDDER.into(),
            embedders: Default::default(),
            session: SessionSettings::default(),
            images: ImageLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Of the faces found around a placed face, the one nearest its place, of a like size (half to twice
/// as large) and within one face size of it.
fn nearest_alike(placed: &Face, found: Vec<Face>) -> Option<Face> {
    let size = placed.bbox.width.max(placed.bbox.height).max(1.0);
    let c = placed.bbox.center();
    found
        .into_iter()
        .filter_map(|f| {
            let ratio = f.bbox.width.max(f.bbox.height) / size;
            let fc = f.bbox.center();
            let distance = ((fc.x - c.x).powi(2) + (fc.y - c.y).powi(2)).sqrt() / size;
            ((0.5..=2.0).contains(&ratio) && distance <= 1.0).then_some((distance, f))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, f)| f)
}

/// A face found in an image, with its embedding.
#[derive(Clone, Debug)]
pub struct AnalyzedFace {
    pub face: Face,
    pub aligned: AlignedFace,
    pub embedding: Vec<f32>,
}

/// What became of a video face handed to [`FacePipeline::embed_faces`].
#[derive(Clone, Debug, PartialEq)]
pub enum FaceEmbedding {
    Embedded {
        vector: Vec<f32>,
        yaw_degrees: Option<f32>,
    },
    /// Turned further than `align.max_yaw_degrees`: its embedding would say little of who it is (a
    /// profile scores low against its own person's frontal photos), so the embedder is not run.
    TooTurned {
        yaw_degrees: f32,
    },
    /// No alignment could be found (degenerate keypoints).
    NotAligned,
    /// A face placed in a picture from another moment (a main-stream keyframe) was not found there
    /// (hidden, or it moved otherwise than its track): nothing is embedded.
    NotFound,
}

impl FaceEmbedding {
    pub fn vector(&self) -> Option<&[f32]> {
        match self {
            FaceEmbedding::Embedded { vector, .. } => Some(vector),
            _ => None,
        }
    }
}

pub struct FacePipeline {
    detector: FaceDetector,
    /// Looks closer at where something moved in a video frame (`detector.region_model`).
    region_detector: Option<FaceDetector>,
    aligner: Aligner,
    embedder: Embedder,
    /// Where another embedder comes from when the gallery's model changes.
    catalog: EmbedderCatalog,
    limits: ImageLimits,
    max_yaw_degrees: f32,
}

impl FacePipeline {
    pub fn load(runtime: &Runtime, models_dir: &Path, config: &PipelineConfig) -> Result<Self, ModelError> {
        let detector = FaceDetector::load(runtime, models_dir, config.detector.clone(), &config.session)?;
        let region_detector = match config.detector.region_model {
            Some(model) => {
                // Regions are scanned one view each: no tiles, and no region model of its own.
                let region = DetectorConfig {
                    model,
                    tiling: TilingConfig::default(),
                    region_model: None,
                    ..config.detector.clone()
                };
                Some(FaceDetector::load(runtime, models_dir, region, &config.session)?)
            }
            None => None,
        };
        let catalog = EmbedderCatalog::new(runtime, models_dir, &config.session, &config.embedders);
        Ok(Self {
            detector,
            region_detector,
            aligner: Aligner::load(runtime, models_dir, &config.align, &config.session)?,
            embedder: catalog.load(&config.embedder)?,
            catalog,
            limits: config.images.clone(),
            max_yaw_degrees: config.align.max_yaw_degrees,
        })
    }

    pub fn model(&self) -> &ModelId {
        self.embedder.model()
    }

    pub fn model_info(&self) -> &ModelInfo {
        self.embedder.info()
    }

    pub fn catalog(&self) -> &EmbedderCatalog {
        &self.catalog
    }

    /// Embeds with `model` from now on (loading it when another is in use): the gallery this
    /// pipeline's faces are compared with has switched models. Returns whether it changed.
    pub fn follow(&mut self, model: &ModelId) -> Result<bool, ModelError> {
        if self.embedder.model() == model {
            return Ok(false);
        }
        self.embedder = self.catalog.load_model(model)?;
        Ok(true)
    }

    /// The largest yaw (degrees) at which a video face is still embedded.
    pub fn max_yaw_degrees(&self) -> f32 {
        self.max_yaw_degrees
    }

    pub fn detector(&mut self) -> &mut FaceDetector {
        &mut self.detector
    }

    pub fn embedder(&mut self) -> &mut Embedder {
        &mut self.embedder
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage, ImageError> {
        decode_rgb(bytes, &self.limits)
    }

    /// Faces in video frames: each whole frame, and closer, with the region model, where something
    /// moved in it (`regions[i]` for frame `i`; none: the whole frame only). The two views' faces are
    /// merged (weighted NMS), so a face seen by both is one face.
    pub fn detect_frames(
        &mut self,
        pictures: &[Picture],
        regions: &[Vec<View>],
        min_score: f32,
    ) -> Result<Vec<Vec<Face>>, ModelError> {
        let mut faces = self.detector.detect_pictures(pictures, min_score)?;
        let Some(region_detector) = self.region_detector.as_mut() else { return Ok(faces) };
        if regions.iter().all(Vec::is_empty) {
            return Ok(faces);
        }
        let closer = region_detector.detect_regions(pictures, regions, min_score)?;
        let iou = self.detector.config().nms_iou;
        for (found, more) in faces.iter_mut().zip(closer) {
            if !more.is_empty() {
                found.extend(more);
                *found = weighted_nms(std::mem::take(found), iou);
            }
        }
        Ok(faces)
    }

    /// Where inference runs (after any CUDA fallback).
    pub fn provider(&self) -> Provider {
        self.detector.provider()
    }

    /// Every face in the image, best detection score first.
    pub fn analyze(&mut self, image: &RgbImage) -> Result<Vec<AnalyzedFace>, ModelError> {
        Ok(self.analyze_batch(&[image])?.pop().unwrap_or_default())
    }

    /// Every face in each of several images (frames of several cameras): detection runs as shared
    /// batches and all faces are embedded together, which amortises per-call overhead.
    pub fn analyze_batch(&mut self, images: &[&RgbImage]) -> Result<Vec<Vec<AnalyzedFace>>, ModelError> {
        let detections = self.detector.detect_batch(images)?;
        let mut aligned = Vec::new();
        for (i, faces) in detections.into_iter().enumerate() {
            for face in faces {
                if let Some(a) = self.aligner.align(images[i], &face)? {
                    aligned.push((i, face, a));
                }
            }
        }
        let crops: Vec<&RgbImage> = aligned.iter().map(|(_, _, a)| &a.image).collect();
        let embeddings = self.embedder.embed(&crops)?;
        let mut out: Vec<Vec<AnalyzedFace>> = (0..images.len()).map(|_| Vec::new()).collect();
        for ((i, face, aligned), embedding) in aligned.into_iter().zip(embeddings) {
            out[i].push(AnalyzedFace { face, aligned, embedding });
        }
        Ok(out)
    }

    /// Embeds the given faces of one video frame (detected on it earlier); `None` for a face that
    /// could not be aligned. Each face is aligned on an RGB copy of the region around it — large
    /// enough for the mesh's rotated crop and the template warp — never on the whole frame.
    ///
    /// The whole-frame detection is too coarse to align on: a 720p frame reaches the detector at
    /// 192 px, one detector pixel is ~7 frame pixels, and an 80–100 px face's eyes come out 15–25 px
    /// off, which swings its match against its own enrollment between 0.1 and 0.8 as it moves by a
    /// pixel. So the region is detected again at its own scale (one small detector run per embedded
    /// face, batched) and the face found there, overlapping the first, is aligned: 0.80–0.82 steady
    /// on the same faces (`tests/appearances.rs`).
    pub fn embed_faces(&mut self, frame: &YuvFrame, faces: &[Face]) -> Result<Vec<FaceEmbedding>, ModelError> {
        Ok(self.embed_regions(frame, faces, false)?.into_iter().map(|(e, _)| e).collect())
    }

    /// Embeds faces placed in `frame` from elsewhere (a substream's track mapped into a main-stream
    /// picture of another moment): each must be found again near its place, at a similar size, or it
    /// is [`FaceEmbedding::NotFound`]; the placed keypoints (scaled from a small face) are never
    /// aligned on. Returns, with each, the face as found in `frame`.
    pub fn embed_placed_faces(
        &mut self,
        frame: &YuvFrame,
        faces: &[Face],
    ) -> Result<Vec<(FaceEmbedding, Face)>, ModelError> {
        self.embed_regions(frame, faces, true)
    }

    fn embed_regions(
        &mut self,
        frame: &YuvFrame,
        faces: &[Face],
        placed: bool,
    ) -> Result<Vec<(FaceEmbedding, Face)>, ModelError> {
        let mut regions = Vec::with_capacity(faces.len());
        for face in faces {
            let size = face.bbox.width.max(face.bbox.height);
            let c = face.bbox.center();
            let half = 1.2 * size + 2.0;
            let x0 = (c.x - half).max(0.0).floor() as u32;
            let y0 = (c.y - half).max(0.0).floor() as u32;
            let side = (2.0 * half).ceil() as u32;
            let region = frame.region_rgb(x0, y0, side, side);
            let shift = |p: Point| Point::new(p.x - x0 as f32, p.y - y0 as f32);
            let local = Face {
                bbox: crate::geometry::BBox { x: face.bbox.x - x0 as f32, y: face.bbox.y - y0 as f32, ..face.bbox },
                score: face.score,
                keypoints: face.keypoints.map(shift),
            };
            regions.push((region, local, (x0 as f32, y0 as f32)));
        }
        let pictures: Vec<Picture> = regions.iter().map(|(r, _, _)| Picture::Rgb(r)).collect();
        let redetected = self.detector.detect_pictures(&pictures, REDETECT_MIN_SCORE)?;
        let mut out: Vec<(FaceEmbedding, Face)> = faces.iter().map(|f| (FaceEmbedding::NotAligned, *f)).collect();
        let mut aligned = Vec::with_capacity(faces.len());
        for (i, ((region, local, (x0, y0)), found)) in regions.iter().zip(redetected).enumerate() {
            let found = match placed {
                false => found
                    .into_iter()
                    .map(|f| (f.bbox.iou(&local.bbox), f))
                    .filter(|(iou, _)| *iou >= REDETECT_MIN_IOU)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, f)| f),
                true => nearest_alike(local, found),
            };
            let face = match (found, placed) {
                (Some(f), _) => f,
                (None, false) => *local,
                (None, true) => {
                    out[i].0 = FaceEmbedding::NotFound;
                    continue;
                }
            };
            let shift = |p: Point| Point::new(p.x + x0, p.y + y0);
            out[i].1 = Face {
                bbox: crate::geometry::BBox { x: face.bbox.x + x0, y: face.bbox.y + y0, ..face.bbox },
                score: face.score,
                keypoints: face.keypoints.map(shift),
            };
            let Some(a) = self.aligner.align(region, &face)? else { continue };
            match a.yaw_degrees {
                Some(yaw) if self.too_turned(yaw) => out[i].0 = FaceEmbedding::TooTurned { yaw_degrees: yaw },
                _ => aligned.push((i, a)),
            }
        }
        let crops: Vec<&RgbImage> = aligned.iter().map(|(_, a)| &a.image).collect();
        let embeddings = self.embedder.embed(&crops)?;
        for ((i, a), vector) in aligned.into_iter().zip(embeddings) {
            out[i].0 = FaceEmbedding::Embedded { vector, yaw_degrees: a.yaw_degrees };
        }
        Ok(out)
    }

    /// Whether a face turned by `yaw` degrees is beyond `align.max_yaw_degrees` (0: no limit).
    pub fn too_turned(&self, yaw: f32) -> bool {
        self.max_yaw_degrees > 0.0 && yaw.abs() > self.max_yaw_degrees
    }

    pub fn analyze_bytes(&mut self, bytes: &[u8]) -> Result<Vec<AnalyzedFace>, PipelineError> {
        let image = self.decode(bytes)?;
        Ok(self.analyze(&image)?)
    }
}
