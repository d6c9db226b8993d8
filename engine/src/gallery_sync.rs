//! Keeps an engine's in-memory gallery index equal to the embeddings in PostgreSQL when they change
//! elsewhere: `panoptes enroll` or `persons delete` from the command line, or an enrollment through
//! another engine's API. This engine's own API changes the index directly; the check here is a cheap
//! aggregate query, and only a difference rebuilds the index (off to the side, then swapped in).

use std::sync::RwLock;

use crate::embed::{ModelId, EMBEDDING_DIM};
use crate::gallery::{Gallery, GallerySignature};
use crate::storage::{StorageError, Store};

/// Every stored embedding of `model`, indexed. Rows the index refuses are logged and skipped.
pub async fn read_gallery(store: &Store, model: &ModelId) -> Result<Gallery, StorageError> {
    let rows = store.embeddings_for_model(model).await?;
    let mut gallery = Gallery::new(model.clone(), EMBEDDING_DIM);
    for r in rows {
        if let Err(e) = gallery.insert(r.id, r.person_id, &r.vector) {
            tracing::warn!(embedding_id = r.id, error = %e, "skipping a stored embedding");
        }
    }
    Ok(gallery)
}

/// Remembers the last stored state it loaded, so that rows the index refuses do not cause a rebuild
/// at every check.
#[derive(Debug, Default)]
pub struct GallerySync {
    last_loaded: Option<GallerySignature>,
}

impl GallerySync {
    /// Rebuilds the index when the stored embeddings differ from it; returns whether it did.
    pub async fn refresh(&mut self, store: &Store, gallery: &RwLock<Gallery>) -> Result<bool, StorageError> {
        let (model, held) = {
            let g = gallery.read().unwrap_or_else(|p| p.into_inner());
            (g.model().clone(), g.signature())
        };
        let stored = store.embedding_signature(&model).await?;
        if stored == held || Some(stored) == self.last_loaded {
            return Ok(false);
        }
        let fresh = read_gallery(store, &model).await?;
        let (before, after) = (held.count, fresh.len());
        *gallery.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        self.last_loaded = Some(stored);
        tracing::info!(before, after, "gallery re-read: its embeddings were changed outside this engine's API");
        Ok(true)
    }
}
