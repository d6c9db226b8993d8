//! Face embeddings with MobileFaceNet: 112×112 aligned RGB crops → L2-normalised 192-d vectors, tagged
//! with the model's name and version so vectors of different models are never compared.

use std::path::Path;

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::align::ALIGNED_SIDE;
use crate::runtime::{io_name, ModelError, Runtime, SessionSettings};

pub const EMBEDDER_FILE: &str = "mobilefacenet.onnx";
pub const EMBEDDER_NAME: &str = "mobilefacenet";
pub const EMBEDDING_DIM: usize = 192;
const MODEL: &str = "face embedder";

/// Identifies the model that produced a vector: its name and the first 16 hex digits of the weights'
/// sha256, so that any change of weights is a new version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ModelId {
    pub name: String,
    pub version: String,
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

pub struct Embedder {
    session: Session,
    input: String,
    output: String,
    model: ModelId,
    tensor: Vec<f32>,
}

impl Embedder {
    pub fn load(runtime: &Runtime, models_dir: &Path, settings: &SessionSettings) -> Result<Self, ModelError> {
        let path = models_dir.join(EMBEDDER_FILE);
        let session = runtime.session(&path, settings)?;
        let bytes =
            std::fs::read(&path).map_err(|e| ModelError::ModelLoad { path: path.clone(), message: e.to_string() })?;
        let digest = Sha256::digest(&bytes);
        let version: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let input = io_name(&session, false, 0, MODEL)?;
        let output = io_name(&session, true, 0, MODEL)?;
        Ok(Self { session, input, output, model: ModelId { name: EMBEDDER_NAME.into(), version }, tensor: Vec::new() })
    }

    pub fn model(&self) -> &ModelId {
        &self.model
    }

    /// One unit vector per aligned 112×112 crop.
    pub fn embed(&mut self, crops: &[&RgbImage]) -> Result<Vec<Vec<f32>>, ModelError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let side = ALIGNED_SIDE as usize;
        let plane = side * side;
        self.tensor.resize(crops.len() * 3 * plane, 0.0);
        for (k, crop) in crops.iter().enumerate() {
            if crop.width() != ALIGNED_SIDE || crop.height() != ALIGNED_SIDE {
                return Err(ModelError::Inference {
                    model: MODEL,
                    message: format!("crop is {}×{}, expected 112×112", crop.width(), crop.height()),
                });
            }
            let t = &mut self.tensor[k * 3 * plane..(k + 1) * 3 * plane];
            for (i, p) in crop.pixels().enumerate() {
                t[i] = (p[0] as f32 - 127.5) / 128.0;
                t[plane + i] = (p[1] as f32 - 127.5) / 128.0;
                t[2 * plane + i] = (p[2] as f32 - 127.5) / 128.0;
            }
        }
        let err = |e: ort::Error| ModelError::Inference { model: MODEL, message: e.to_string() };
        let input = TensorRef::from_array_view(([crops.len(), 3, side, side], &self.tensor[..])).map_err(err)?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => input]).map_err(err)?;
        let (_, data) = outputs[self.output.as_str()].try_extract_tensor::<f32>().map_err(err)?;
        if data.len() != crops.len() * EMBEDDING_DIM {
            return Err(ModelError::Interface {
                model: MODEL.into(),
                message: format!("expected {EMBEDDING_DIM}-d embeddings, got {} values", data.len()),
            });
        }
        Ok(data.chunks_exact(EMBEDDING_DIM).map(l2_normalized).collect())
    }
}

/// The vector scaled to unit length (a zero vector stays zero).
pub fn l2_normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_vectors_have_unit_length_and_cosine_is_scale_free() {
        let v = l2_normalized(&[3.0, 4.0]);
        assert_eq!(v, vec![0.6, 0.8]);
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert_eq!(l2_normalized(&[0.0, 0.0]), vec![0.0, 0.0]);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
