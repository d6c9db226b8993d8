//! Keeps an engine's in-memory gallery index equal to the embeddings (and negatives) in PostgreSQL when they change
//! elsewhere — `panoptes enroll` or `persons delete` from the command line, an enrollment through
//! another engine's API — and on the database's active model when that changes (a model switch
//! completed by any engine: `reembed`). This engine's own API changes the index directly; the check
//! here is two cheap queries, and only a difference rebuilds the index (off to the side, then swapped
//! in). Inference pipelines follow the gallery's model before their next comparison.

use std::sync::RwLock;

use crate::embed::{EmbedderCatalog, ModelId, ModelInfo};
use crate::gallery::{Gallery, GallerySignature};
use crate::storage::{StorageError, Store};

/// Every stored embedding and negative of `model`, indexed. Rows the index refuses are logged and
/// skipped.
pub async fn read_gallery(store: &Store, model: &ModelInfo) -> Result<Gallery, StorageError> {
    let rows = store.embeddings_for_model(&model.id).await?;
    let mut gallery = Gallery::new(model.clone());
    for r in rows {
        if let Err(e) = gallery.insert(r.id, r.person_id, &r.vector) {
            tracing::warn!(embedding_id = r.id, error = %e, "skipping a stored embedding");
        }
    }
    for r in store.negatives_for_model(&model.id).await? {
        if let Err(e) = gallery.insert_negative(r.id, r.person_id, &r.vector) {
            tracing::warn!(negative_id = r.id, error = %e, "skipping a stored negative");
        }
    }
    Ok(gallery)
}

/// Remembers the last stored state it loaded, so that rows the index refuses do not cause a rebuild
/// at every check, and a model it cannot load, so that it is warned about once.
pub struct GallerySync {
    catalog: EmbedderCatalog,
    last_loaded: Option<GallerySignature>,
    cannot_load: Option<ModelId>,
}

impl GallerySync {
    /// `catalog`: where the embedder of a newly active model comes from.
    pub fn new(catalog: EmbedderCatalog) -> Self {
        Self { catalog, last_loaded: None, cannot_load: None }
    }

    /// Rebuilds the index when the database's active model or its stored embeddings differ from it;
    /// returns whether it did.
    pub async fn refresh(&mut self, store: &Store, gallery: &RwLock<Gallery>) -> Result<bool, StorageError> {
        let (mut info, held) = {
            let g = gallery.read().unwrap_or_else(|p| p.into_inner());
            (g.info().clone(), g.signature())
        };
        let mut switched = false;
        if let Some(state) = store.gallery_model().await? {
            if state.active != info.id && self.cannot_load.as_ref() != Some(&state.active) {
                let catalog = self.catalog.clone();
                let active = state.active.clone();
                let loaded = tokio::task::spawn_blocking(move || catalog.load_model(&active).map(|e| e.info().clone()))
                    .await
                    .map_err(|e| StorageError::Unavailable(format!("loading the new model failed: {e}")))?;
                match loaded {
                    Ok(new) => {
                        tracing::info!(from = %info.id, to = %new.id, "the database's gallery model changed; switching");
                        info = new;
                        switched = true;
                    }
                    Err(e) => {
                        tracing::warn!(
                            active = %state.active,
                            error = %e,
                            "the database's gallery serves with a model this engine cannot load; keeping its own"
                        );
                        self.cannot_load = Some(state.active.clone());
                    }
                }
            }
        }
        let stored = store.embedding_signature(&info.id).await?;
        if !switched && (stored == held || Some(stored) == self.last_loaded) {
            return Ok(false);
        }
        let fresh = read_gallery(store, &info).await?;
        let (before, after) = (held.count, fresh.len());
        *gallery.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        self.last_loaded = Some(stored);
        if switched {
            tracing::info!(model = %info.id, embeddings = after, "gallery switched to the new model");
        } else {
            tracing::info!(before, after, "gallery re-read: its embeddings were changed outside this engine's API");
        }
        Ok(true)
    }
}
