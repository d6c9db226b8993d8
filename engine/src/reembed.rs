//! Galleries that follow a model change. Every engine on a database compares faces with the vectors
//! of one model, the database's *active* model (`storage::gallery_model`). An engine started with
//! another embedder makes it the *target*: the kept enrollment photos are embedded again with it,
//! in the background, by one engine at a time (an advisory lock), while the active model's gallery
//! goes on serving; once every photo has a vector of the target (or is recorded as one it cannot
//! embed, reported by person), the target becomes active and every engine switches its gallery and
//! its embedders together (`gallery_sync`). `panoptes reembed` runs the same job by hand.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::embed::{ModelId, ModelInfo};
use crate::enrollment::embed_kept_photo;
use crate::pipeline::FacePipeline;
use crate::runtime::ModelError;
use crate::storage::{EmbeddingCoverage, GalleryModelState, NewEmbedding, StorageError, Store};

/// Photos read and embedded per round trip.
const BATCH: i64 = 16;

#[derive(Debug, thiserror::Error)]
pub enum ReembedError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("loading the target model's pipeline")]
    Model(#[from] ModelError),
    #[error("the re-embedding task failed: {0}")]
    Task(String),
}

/// Loads a pipeline of the model to switch to (the engine's configured embedder).
pub type PipelineLoader = Arc<dyn Fn() -> Result<FacePipeline, ModelError> + Send + Sync>;

/// The model this engine serves with: the database's active model when this engine can load it
/// (its pipeline is switched to it), else the pipeline's own, with a warning — vectors of the two are
/// never compared, so the gallery is then the pipeline's model's, possibly incomplete.
pub async fn serving_model(store: &Store, pipeline: &mut FacePipeline) -> Result<ModelInfo, StorageError> {
    let state = match store.gallery_model().await? {
        Some(s) => s,
        None => store.aim_gallery_model(pipeline.model(), "start").await?,
    };
    if &state.active != pipeline.model() {
        match pipeline.follow(&state.active) {
            Ok(_) => tracing::info!(active = %state.active, "serving with the database's gallery model"),
            Err(e) => tracing::warn!(
                active = %state.active,
                using = %pipeline.model(),
                error = %e,
                "cannot load the model the database's gallery serves with; comparing with this engine's own model's vectors only"
            ),
        }
    }
    Ok(pipeline.model_info().clone())
}

/// Where a switch stands, for the log, `/api/v1/admin/stats` and the metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SwitchStatus {
    /// `None` until the first check.
    pub state: Option<GalleryModelState>,
    /// The target model's coverage of the kept photos.
    pub target: EmbeddingCoverage,
    /// This engine is the one embedding them now.
    pub running_here: bool,
}

/// Shared between the re-embedding loop and whoever reports on it.
pub type SharedSwitchStatus = Arc<Mutex<SwitchStatus>>;

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassOutcome {
    pub embedded: u64,
    pub failed: u64,
    /// Another engine holds the lock: nothing was done here.
    pub busy_elsewhere: bool,
    /// The target became the active model in this pass.
    pub activated: Option<ModelId>,
}

/// Embeds kept photos with the target model and switches the gallery once they all are.
pub struct Reembedder {
    store: Store,
    /// The model this engine can embed for: its configured embedder.
    model: ModelId,
    /// Loads a pipeline of `model` when there is work for it (it is dropped after: most of an
    /// engine's life there is none).
    load: PipelineLoader,
    node: String,
    status: SharedSwitchStatus,
}

impl Reembedder {
    pub fn new(store: Store, model: ModelId, load: PipelineLoader, node: &str) -> Self {
        Self { store, model, load, node: node.to_string(), status: SharedSwitchStatus::default() }
    }

    pub fn status(&self) -> SharedSwitchStatus {
        self.status.clone()
    }

    /// One pass: when this engine's model is the target, embeds every kept photo lacking its vector
    /// (progress logged per batch), then makes it active when none is left. `progress` is called
    /// after each batch.
    pub async fn pass(&self, mut progress: impl FnMut(&SwitchStatus)) -> Result<PassOutcome, ReembedError> {
        let mut outcome = PassOutcome::default();
        let Some(state) = self.store.gallery_model().await? else { return Ok(outcome) };
        let model = self.model.clone();
        self.publish(&state).await?;
        if state.target != model {
            // Another engine set another target: this one cannot embed for it.
            return Ok(outcome);
        }
        let mut pending = self.store.photos_to_embed(&model, BATCH).await?;
        if !pending.is_empty() {
            let Some(_lock) = self.store.try_reembed_lock().await? else {
                outcome.busy_elsewhere = true;
                return Ok(outcome);
            };
            self.set_running(true);
            let coverage = self.store.embedding_coverage(&model).await?;
            tracing::info!(
                from = %state.active,
                to = %model,
                photos = coverage.photos,
                left = coverage.pending(),
                "re-embedding the kept enrollment photos with the target model"
            );
            let load = self.load.clone();
            let loaded =
                tokio::task::spawn_blocking(move || load()).await.map_err(|e| ReembedError::Task(e.to_string()))?;
            let pipeline = Arc::new(Mutex::new(loaded?));
            if pipeline.lock().unwrap_or_else(|p| p.into_inner()).model() != &model {
                return Err(ReembedError::Task(format!("the pipeline loaded does not embed with {model}")));
            }
            // Re-read after the lock: another engine may have done them meanwhile.
            pending = self.store.photos_to_embed(&model, BATCH).await?;
            while !pending.is_empty() {
                for photo in pending {
                    let pipeline = pipeline.clone();
                    let jpeg = photo.jpeg;
                    let result = tokio::task::spawn_blocking(move || {
                        let mut p = pipeline.lock().unwrap_or_else(|p| p.into_inner());
                        embed_kept_photo(&mut p, &jpeg)
                    })
                    .await
                    .map_err(|e| ReembedError::Task(e.to_string()))?;
                    match result {
                        Ok(face) => {
                            let b = face.face.bbox;
                            self.store
                                .add_embedding(&NewEmbedding {
                                    person_id: photo.person_id,
                                    model: &model,
                                    vector: &face.embedding,
                                    source_sha256: &photo.source_sha256,
                                    face_box: b,
                                    det_score: face.face.score,
                                })
                                .await?;
                            outcome.embedded += 1;
                        }
                        Err(e) => {
                            let reason = e.to_string();
                            tracing::warn!(
                                person = %photo.person_name,
                                person_id = photo.person_id,
                                photo_id = photo.photo_id,
                                model = %model,
                                %reason,
                                "a kept enrollment photo cannot be embedded with the new model"
                            );
                            self.store.record_reembed_failure(photo.photo_id, &model, &reason).await?;
                            outcome.failed += 1;
                        }
                    }
                }
                let status = self.publish(&state).await?;
                tracing::info!(
                    model = %model,
                    embedded = status.target.embedded,
                    failed = status.target.failed,
                    left = status.target.pending(),
                    "re-embedding progress"
                );
                progress(&status);
                pending = self.store.photos_to_embed(&model, BATCH).await?;
            }
            self.set_running(false);
        }
        if state.active != model && self.store.activate_target(&model, &self.node).await? {
            let coverage = self.store.embedding_coverage(&model).await?;
            let failed: Vec<&str> = coverage.failures.iter().map(|f| f.person.as_str()).collect();
            tracing::info!(
                from = %state.active,
                to = %model,
                photos = coverage.embedded,
                "the gallery now serves with the new model; every engine on the database follows"
            );
            if !failed.is_empty() || !coverage.without_photos.is_empty() {
                tracing::warn!(
                    cannot_be_embedded = ?failed,
                    no_kept_photo = ?coverage.without_photos,
                    "these persons have photos the new model could not embed, or none kept: enroll them again"
                );
            }
            outcome.activated = Some(model.clone());
        }
        if let Some(state) = self.store.gallery_model().await? {
            progress(&self.publish(&state).await?);
        }
        Ok(outcome)
    }

    fn set_running(&self, running: bool) {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).running_here = running;
    }

    /// Reads the target's coverage and publishes it with `state`.
    async fn publish(&self, state: &GalleryModelState) -> Result<SwitchStatus, StorageError> {
        let target = self.store.embedding_coverage(&state.target).await?;
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        s.state = Some(state.clone());
        s.target = target;
        Ok(s.clone())
    }
}
