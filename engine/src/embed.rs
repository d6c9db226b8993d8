//! Face embeddings: 112×112 crops aligned to the ArcFace template → L2-normalised vectors, tagged with
//! the model that made them so that vectors of different models are never compared.
//!
//! Everything that differs between embedding models — the file, the channel order, the input scaling
//! and the scores that decide a match — is an [`EmbedderSpec`], read from config
//! (`[pipeline.embedders.NAME]`). The two models `models/fetch.sh` provides are built in; a model a
//! user brings (ArcFace R100, AdaFace: any ONNX model taking N×3×112×112 ArcFace-aligned crops and
//! giving N×D vectors) is one more entry, not a code change (docs/operations.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::RgbImage;
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::align::ALIGNED_SIDE;
use crate::runtime::{io_name, ModelError, Runtime, SessionSettings};

pub const SFACE: &str = "sface";
pub const MOBILEFACENET: &str = "mobilefacenet";
/// The embedder used when the config names none (chosen by measurement: BENCHMARKS.md).
pub const DEFAULT_EMBEDDER: &str = SFACE;
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

/// The order of the colour planes a model takes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// The scores that decide who a face is, on one model's scale (cosine similarities of unit vectors).
/// They differ between models: SFace's genuine pairs score lower than MobileFaceNet's, and so do its
/// impostors.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Judgement {
    /// A face at or above this (robust, quality-weighted) score against a person may be them.
    pub match_threshold: f32,
    /// One embedding this close to a person, with the margin, settles a track at once.
    pub instant_match_score: f32,
    /// The best person must lead the runner-up by this much; closer, the answer is "don't know".
    pub margin: f32,
}

/// How one embedding model is fed and judged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EmbedderSpec {
    pub name: String,
    /// The ONNX file, relative to the models directory unless absolute.
    pub file: PathBuf,
    pub channels: ChannelOrder,
    /// Each input value is (pixel − mean) / std, pixels in 0..255.
    pub mean: f32,
    pub std: f32,
    pub judgement: Judgement,
}

/// One `[pipeline.embedders.NAME]` entry. For the built-in models every key is optional (the
/// measured defaults fill in); for another model, `file`, `mean`, `std` and `match_threshold` are
/// required.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedderEntry {
    pub file: Option<PathBuf>,
    pub channels: Option<ChannelOrder>,
    pub mean: Option<f32>,
    pub std: Option<f32>,
    pub match_threshold: Option<f32>,
    pub instant_match_score: Option<f32>,
    pub margin: Option<f32>,
}

/// The built-in models, as `models/fetch.sh` provides them, with thresholds chosen by
/// `panoptes eval recognition` and `panoptes eval video` (BENCHMARKS.md).
pub fn built_in(name: &str) -> Option<EmbedderSpec> {
    match name {
        // OpenCV Zoo's SFace: the graph scales its input itself, so it takes raw 0..255 RGB.
        SFACE => Some(EmbedderSpec {
            name: SFACE.into(),
            file: "sface.onnx".into(),
            channels: ChannelOrder::Rgb,
            mean: 0.0,
            std: 1.0,
            // Above every different-person pair of the evaluation set (highest 0.401); instant well
            // above that (same-person median 0.744).
            judgement: Judgement { match_threshold: 0.42, instant_match_score: 0.55, margin: 0.08 },
        }),
        MOBILEFACENET => Some(EmbedderSpec {
            name: MOBILEFACENET.into(),
            file: "mobilefacenet.onnx".into(),
            channels: ChannelOrder::Rgb,
            mean: 127.5,
            std: 128.0,
            // Different-person pairs reach 0.535 on the evaluation set.
            judgement: Judgement { match_threshold: 0.55, instant_match_score: 0.70, margin: 0.08 },
        }),
        _ => None,
    }
}

/// The spec of embedder `name`: the built-in one with `entry`'s keys over it, or a model the user
/// described in full.
pub fn resolve_spec(name: &str, entry: Option<&EmbedderEntry>) -> Result<EmbedderSpec, ModelError> {
    let invalid = |message: String| ModelError::EmbedderConfig { name: name.to_string(), message };
    let empty = EmbedderEntry::default();
    let e = entry.unwrap_or(&empty);
    let spec = match built_in(name) {
        Some(base) => EmbedderSpec {
            name: name.to_string(),
            file: e.file.clone().unwrap_or(base.file),
            channels: e.channels.unwrap_or(base.channels),
            mean: e.mean.unwrap_or(base.mean),
            std: e.std.unwrap_or(base.std),
            judgement: Judgement {
                match_threshold: e.match_threshold.unwrap_or(base.judgement.match_threshold),
                instant_match_score: e.instant_match_score.unwrap_or(base.judgement.instant_match_score),
                margin: e.margin.unwrap_or(base.judgement.margin),
            },
        },
        None => {
            if entry.is_none() {
                return Err(invalid(format!(
                    "no such embedder: the built-in ones are {SFACE} and {MOBILEFACENET}; describe another in [pipeline.embedders.{name}]"
                )));
            }
            let need = |v: Option<f32>, key: &str| {
                v.ok_or_else(|| invalid(format!("{key} is required for a model that is not built in")))
            };
            let file =
                e.file.clone().ok_or_else(|| invalid("file is required for a model that is not built in".into()))?;
            let match_threshold = need(e.match_threshold, "match_threshold")?;
            EmbedderSpec {
                name: name.to_string(),
                file,
                channels: e.channels.unwrap_or(ChannelOrder::Rgb),
                mean: need(e.mean, "mean")?,
                std: need(e.std, "std")?,
                judgement: Judgement {
                    match_threshold,
                    instant_match_score: e.instant_match_score.unwrap_or((match_threshold + 0.15).min(1.0)),
                    margin: e.margin.unwrap_or(0.08),
                },
            }
        }
    };
    let j = spec.judgement;
    if !(spec.std.is_finite() && spec.std != 0.0 && spec.mean.is_finite()) {
        return Err(invalid(format!("mean {} and std {} must be finite and std non-zero", spec.mean, spec.std)));
    }
    if !(-1.0..=1.0).contains(&j.match_threshold) || !(-1.0..=1.0).contains(&j.instant_match_score) {
        return Err(invalid("match_threshold and instant_match_score must be between -1 and 1".into()));
    }
    if !(0.0..=1.0).contains(&j.margin) {
        return Err(invalid(format!("margin must be between 0 and 1, got {}", j.margin)));
    }
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        return Err(invalid("an embedder's name is 1-64 letters, digits, '_', '-' or '.'".into()));
    }
    Ok(spec)
}

/// What a gallery needs to know of the model its vectors come from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelInfo {
    pub id: ModelId,
    pub dim: usize,
    pub judgement: Judgement,
}

/// Every embedder this process may use, loadable by name: the configured one, and the one whose
/// gallery serves while a switch between them is under way.
#[derive(Clone)]
pub struct EmbedderCatalog {
    runtime: Runtime,
    models_dir: PathBuf,
    session: SessionSettings,
    entries: BTreeMap<String, EmbedderEntry>,
}

impl EmbedderCatalog {
    pub fn new(
        runtime: &Runtime,
        models_dir: &Path,
        session: &SessionSettings,
        entries: &BTreeMap<String, EmbedderEntry>,
    ) -> Self {
        Self {
            runtime: runtime.clone(),
            models_dir: models_dir.to_path_buf(),
            session: session.clone(),
            entries: entries.clone(),
        }
    }

    pub fn spec(&self, name: &str) -> Result<EmbedderSpec, ModelError> {
        resolve_spec(name, self.entries.get(name))
    }

    /// Loads embedder `name` as configured.
    pub fn load(&self, name: &str) -> Result<Embedder, ModelError> {
        Embedder::load(&self.runtime, &self.models_dir, &self.spec(name)?, &self.session)
    }

    /// Loads the embedder that made vectors of `model`: its name must be known here and its file
    /// must hold the same weights.
    pub fn load_model(&self, model: &ModelId) -> Result<Embedder, ModelError> {
        let embedder = self.load(&model.name)?;
        if embedder.model() != model {
            return Err(ModelError::EmbedderConfig {
                name: model.name.clone(),
                message: format!(
                    "the stored vectors come from {model}, but {} holds version {}",
                    embedder.path.display(),
                    embedder.model().version
                ),
            });
        }
        Ok(embedder)
    }
}

pub struct Embedder {
    session: Session,
    input: String,
    output: String,
    spec: EmbedderSpec,
    path: PathBuf,
    info: ModelInfo,
    tensor: Vec<f32>,
}

impl Embedder {
    pub fn load(
        runtime: &Runtime,
        models_dir: &Path,
        spec: &EmbedderSpec,
        settings: &SessionSettings,
    ) -> Result<Self, ModelError> {
        let path = models_dir.join(&spec.file);
        let session = runtime.session(&path, settings)?;
        let bytes =
            std::fs::read(&path).map_err(|e| ModelError::ModelLoad { path: path.clone(), message: e.to_string() })?;
        let digest = Sha256::digest(&bytes);
        let version: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let input = io_name(&session, false, 0, MODEL)?;
        let output = io_name(&session, true, 0, MODEL)?;
        let interface =
            |message: String| ModelError::Interface { model: format!("{} ({})", spec.name, path.display()), message };
        let input_shape = session.inputs()[0].dtype().tensor_shape().map(|s| s.to_vec()).unwrap_or_default();
        let side = i64::from(ALIGNED_SIDE);
        if !(input_shape.len() == 4 && input_shape[1] == 3 && input_shape[2..] == [side, side]) {
            return Err(interface(format!("expects input of shape {input_shape:?}; an embedder takes N×3×112×112")));
        }
        let dim = match session.outputs()[0].dtype().tensor_shape().map(|s| s.to_vec()).as_deref() {
            Some([_, d]) if *d > 0 => *d as usize,
            other => return Err(interface(format!("gives output of shape {other:?}; an embedder gives N×D vectors"))),
        };
        let info = ModelInfo { id: ModelId { name: spec.name.clone(), version }, dim, judgement: spec.judgement };
        Ok(Self { session, input, output, spec: spec.clone(), path, info, tensor: Vec::new() })
    }

    pub fn model(&self) -> &ModelId {
        &self.info.id
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn spec(&self) -> &EmbedderSpec {
        &self.spec
    }

    /// One unit vector per aligned 112×112 crop.
    pub fn embed(&mut self, crops: &[&RgbImage]) -> Result<Vec<Vec<f32>>, ModelError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let side = ALIGNED_SIDE as usize;
        let plane = side * side;
        self.tensor.resize(crops.len() * 3 * plane, 0.0);
        let (mean, scale) = (self.spec.mean, 1.0 / self.spec.std);
        let order = match self.spec.channels {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        };
        for (k, crop) in crops.iter().enumerate() {
            if crop.width() != ALIGNED_SIDE || crop.height() != ALIGNED_SIDE {
                return Err(ModelError::Inference {
                    model: MODEL,
                    message: format!("crop is {}×{}, expected 112×112", crop.width(), crop.height()),
                });
            }
            let t = &mut self.tensor[k * 3 * plane..(k + 1) * 3 * plane];
            for (i, p) in crop.pixels().enumerate() {
                for (c, &source) in order.iter().enumerate() {
                    t[c * plane + i] = (f32::from(p[source]) - mean) * scale;
                }
            }
        }
        let err = |e: ort::Error| ModelError::Inference { model: MODEL, message: e.to_string() };
        let input = TensorRef::from_array_view(([crops.len(), 3, side, side], &self.tensor[..])).map_err(err)?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => input]).map_err(err)?;
        let (_, data) = outputs[self.output.as_str()].try_extract_tensor::<f32>().map_err(err)?;
        let dim = self.info.dim;
        if data.len() != crops.len() * dim {
            return Err(ModelError::Interface {
                model: self.spec.name.clone(),
                message: format!("expected {dim}-d embeddings, got {} values for {} crops", data.len(), crops.len()),
            });
        }
        Ok(data.chunks_exact(dim).map(l2_normalized).collect())
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

    #[test]
    fn built_in_embedders_take_overrides_and_other_models_must_be_described() {
        let tuned = EmbedderEntry { match_threshold: Some(0.45), ..EmbedderEntry::default() };
        let s = resolve_spec(SFACE, Some(&tuned)).unwrap();
        assert_eq!(s.judgement.match_threshold, 0.45);
        assert_eq!(s.file, PathBuf::from("sface.onnx"));
        assert_eq!(resolve_spec(MOBILEFACENET, None).unwrap().mean, 127.5);

        let unknown = resolve_spec("arcface_r100", None).unwrap_err().to_string();
        assert!(unknown.contains("arcface_r100") && unknown.contains("[pipeline.embedders.arcface_r100]"), "{unknown}");
        let partial = EmbedderEntry { file: Some("r100.onnx".into()), ..EmbedderEntry::default() };
        let missing = resolve_spec("arcface_r100", Some(&partial)).unwrap_err().to_string();
        assert!(missing.contains("match_threshold is required"), "{missing}");
        let full = EmbedderEntry {
            file: Some("r100.onnx".into()),
            channels: Some(ChannelOrder::Bgr),
            mean: Some(127.5),
            std: Some(127.5),
            match_threshold: Some(0.3),
            ..EmbedderEntry::default()
        };
        let s = resolve_spec("arcface_r100", Some(&full)).unwrap();
        assert_eq!((s.channels, s.judgement.margin), (ChannelOrder::Bgr, 0.08));
        let zero_std = EmbedderEntry { std: Some(0.0), ..full };
        assert!(resolve_spec("arcface_r100", Some(&zero_std)).is_err());
    }
}
