//! The still-image face pipeline: decode → detect → align → embed.

use std::path::Path;

use image::RgbImage;
use serde::Deserialize;

use crate::align::{AlignConfig, AlignedFace, Aligner};
use crate::detect::{DetectorConfig, Face, FaceDetector};
use crate::embed::{Embedder, ModelId};
use crate::image_input::{decode_rgb, ImageError, ImageLimits};
use crate::runtime::{ModelError, Runtime, SessionSettings};

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

    /// Every face in the image, best detection score first.
    pub fn analyze(&mut self, image: &RgbImage) -> Result<Vec<AnalyzedFace>, ModelError> {
        let faces = self.detector.detect(image)?;
        let mut aligned = Vec::with_capacity(faces.len());
        for face in faces {
            if let Some(a) = self.aligner.align(image, &face)? {
                aligned.push((face, a));
            }
        }
        let crops: Vec<&RgbImage> = aligned.iter().map(|(_, a)| &a.image).collect();
        let embeddings = self.embedder.embed(&crops)?;
        Ok(aligned
            .into_iter()
            .zip(embeddings)
            .map(|((face, aligned), embedding)| AnalyzedFace { face, aligned, embedding })
            .collect())
    }

    pub fn analyze_bytes(&mut self, bytes: &[u8]) -> Result<Vec<AnalyzedFace>, PipelineError> {
        let image = self.decode(bytes)?;
        Ok(self.analyze(&image)?)
    }
}
