//! The still-image face pipeline: decode → detect → align → embed.

use std::path::Path;

use image::RgbImage;
use serde::Deserialize;

use crate::align::{AlignConfig, AlignedFace, Aligner};
use crate::detect::{DetectorConfig, Face, FaceDetector};
use crate::embed::{Embedder, ModelId};
use crate::image_input::{decode_rgb, ImageError, ImageLimits};
use crate::runtime::{ModelError, Provider, Runtime, SessionSettings};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    pub detector: DetectorConfig,
    pub align: AlignConfig,
    pub session: SessionSettings,
    pub images: ImageLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A face found in an image, with its embedding.
#[derive(Clone, Debug)]
pub struct AnalyzedFace {
    pub face: Face,
    pub aligned: AlignedFace,
    pub embedding: Vec<f32>,
}

pub struct FacePipeline {
    detector: FaceDetector,
    aligner: Aligner,
    embedder: Embedder,
    limits: ImageLimits,
}

impl FacePipeline {
    pub fn load(runtime: &Runtime, models_dir: &Path, config: &PipelineConfig) -> Result<Self, ModelError> {
        Ok(Self {
            detector: FaceDetector::load(runtime, models_dir, config.detector.clone(), &config.session)?,
            aligner: Aligner::load(runtime, models_dir, &config.align, &config.session)?,
            embedder: Embedder::load(runtime, models_dir, &config.session)?,
            limits: config.images.clone(),
        })
    }

    pub fn model(&self) -> &ModelId {
        self.embedder.model()
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

    pub fn analyze_bytes(&mut self, bytes: &[u8]) -> Result<Vec<AnalyzedFace>, PipelineError> {
        let image = self.decode(bytes)?;
        Ok(self.analyze(&image)?)
    }
}
